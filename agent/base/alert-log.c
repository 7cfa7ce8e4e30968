#include "alert-log.h"

#include <string.h>

/* The warning codes and their numbers: never renumber one, only add (docs/notifications.md). */
static const char *const codes[] = {
    NULL,                         /* 0: any other */
    "expiring",                   /* 1 */
    "renewal_failing",            /* 2 */
    "chain_incomplete",           /* 3 */
    "chain_expired_intermediate", /* 4 */
    "weak_key",                   /* 5 */
    "weak_signature",             /* 6 */
    "self_signed_in_use",         /* 7 */
    "revoked",                    /* 8 */
    "ca_unknown",                 /* 9 */
    "deploy_failing",             /* 10 */
    "notify_failing",             /* 11 */
};

unsigned
alert_log_event_id(const char *code, int recovered)
{
    unsigned n = 0;

    for (unsigned i = 1; code != NULL && i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (strcmp(codes[i], code) == 0)
            n = i;
    }
    return (recovered ? 2000u : 1000u) + n;
}
