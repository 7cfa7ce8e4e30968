/*
 * The renewal scheduler (renew.h).  First step: the object and the info
 * query, so that the status report can be built against it; the planning
 * and the renewals follow.
 */
#include <stdlib.h>

#include "agent.h"
#include "err.h"
#include "renew.h"

struct renew {
    struct agent *agent;
};

int
renew_new(struct agent *agent, struct renew **out, char **cause)
{
    struct renew *r = calloc(1, sizeof(*r));

    (void)cause;
    if (r == NULL)
        return -E_NOMEM;
    r->agent = agent;
    *out = r;
    return 0;
}

void
renew_start(struct renew *r)
{
    (void)r;
}

void
renew_stop(struct renew *r)
{
    (void)r;
}

void
renew_free(struct renew *r)
{
    free(r);
}

void
renew_changed(struct renew *r, const char *name)
{
    (void)r;
    (void)name;
}

void
renew_reload(struct renew *r)
{
    (void)r;
}

int
renew_info_get(const struct renew *r, const char *name, struct renew_info *out)
{
    (void)r;
    (void)name;
    (void)out;
    return -E_NOT_FOUND;
}

unsigned
renew_running(const struct renew *r)
{
    (void)r;
    return 0;
}
