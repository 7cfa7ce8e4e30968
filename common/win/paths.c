/*
 * Windows locations: config and state under %ProgramData%\certagent, the
 * named pipe \\.\pipe\certagent.  The agent is a machine service, so the
 * same paths serve every user.
 */
#include "../paths.h"

#include <stdlib.h>
#include <string.h>

#include "../err.h"
#include "../fsutil.h"

static char *
program_data(void)
{
    const char *pd = getenv("ProgramData");

    return fsutil_join(pd != NULL && pd[0] != '\0' ? pd : "C:\\ProgramData", "certagent");
}

int
paths_system(struct paths *p)
{
    char *base = program_data();

    memset(p, 0, sizeof(*p));
    if (base == NULL)
        return -E_NOMEM;
    p->config = fsutil_join(base, "certagent.json");
    p->state_dir = fsutil_join(base, "state");
    p->socket = strdup("\\\\.\\pipe\\certagent");
    p->system = 1;
    free(base);
    if (p->config == NULL || p->state_dir == NULL || p->socket == NULL) {
        paths_free(p);
        return -E_NOMEM;
    }
    return 0;
}

int
paths_default(struct paths *p)
{
    return paths_system(p);
}
