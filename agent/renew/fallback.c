/* Fallback CAs: the choice of CA per attempt and the check of the names (fallback.h). */
#include "fallback.h"

#include <string.h>

#include "acme.h"
#include "err.h"

size_t
fallback_index(size_t n, unsigned failures, unsigned after, int64_t due_at, int64_t not_after,
               int64_t now)
{
    size_t i;

    if (n < 2)
        return 0;
    if (after < 1)
        after = 1;
    i = (size_t)(failures / after) % n;
    /* Less than a third of the time left at due time remains: do not wait for the count. */
    if (i == 0 && failures > 0 && due_at > 0 && not_after > due_at &&
        not_after - now < (not_after - due_at) / 3)
        i = 1;
    return i;
}

int
fallback_check(struct acme *acme, const char *key, const char *const *cas, size_t n, char **cause)
{
    for (size_t i = 0; i < n; i++) {
        if (!acme_ca_known(acme, cas[i])) {
            err_set(cause,
                    "%s: no CA named '%s' (certctl ca list shows the CAs; certctl ca add %s "
                    "--directory URL adds one)",
                    key, cas[i], cas[i]);
            return -E_BAD_INPUT;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cas[i], cas[j]) == 0) {
                err_set(cause, "%s: CA '%s' is named twice; name each fallback CA once", key,
                        cas[i]);
                return -E_BAD_INPUT;
            }
        }
    }
    return 0;
}
