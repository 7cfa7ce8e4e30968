/* The portable part of paths.h; the defaults are in unix/paths.c and win/paths.c. */
#include "paths.h"

#include <stdlib.h>
#include <string.h>

void
paths_free(struct paths *p)
{
    free(p->config);
    free(p->state_dir);
    free(p->socket);
    memset(p, 0, sizeof(*p));
}
