#include "backup.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "fsutil.h"
#include "sys.h"

int
backup_state(const char *state_dir, const char *from, char **backup, char **cause)
{
    char stamp[32], *dst = NULL, *tmp = NULL;
    size_t n = strlen(state_dir);
    struct tm tm;
    int rc;

    *backup = NULL;
    if (!fsutil_is_dir(state_dir))
        return -E_NOT_FOUND;
    /* The sibling of the directory itself, not of its last separator. */
    while (n > 1 && (state_dir[n - 1] == '/' || state_dir[n - 1] == '\\'))
        n--;
    if (sys_gmtime((int64_t)time(NULL), &tm) != 0 ||
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0) {
        err_set(cause, "cannot read the clock");
        return -E_INTERNAL;
    }
    err_set(&dst, "%.*s.bak-%s-%s", (int)n, state_dir, from, stamp);
    err_set(&tmp, "%.*s.bak-%s-%s.partial", (int)n, state_dir, from, stamp);
    if (dst == NULL || tmp == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if (fsutil_exists(dst)) {
        err_set(cause, "%s already exists", dst);
        rc = -E_EXISTS;
        goto out;
    }
    /* A partial copy left by an interrupted check is not a backup: start over. */
    if ((rc = fsutil_remove_tree(tmp, cause)) != 0)
        goto out;
    if ((rc = backup_copy_tree(state_dir, tmp, cause)) != 0 ||
        (rc = fsutil_rename(tmp, dst, cause)) != 0) {
        fsutil_remove_tree(tmp, NULL);
        goto out;
    }
    *backup = dst;
    dst = NULL;
out:
    free(dst);
    free(tmp);
    return rc;
}
