/*
 * Copying the state directory on Windows: every directory of the copy is
 * created with the protected DACL of a private directory (SYSTEM,
 * Administrators, owner; fsutil_mkdir with 0700), which the copied files
 * inherit, so no key in the backup is readable by Users even though
 * ProgramData is.  live\NAME directories are copies already.
 */
#include "../backup.h"

#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "err.h"
#include "fsutil.h"

static int
copy_dir(const char *src, const char *dst, char **cause)
{
    WIN32_FIND_DATAA fd;
    HANDLE find;
    char *pattern = fsutil_join(src, "*");
    int rc;

    if (pattern == NULL)
        return -E_NOMEM;
    if ((rc = fsutil_mkdir(dst, 0700, cause)) != 0) {
        free(pattern);
        return rc;
    }
    find = FindFirstFileA(pattern, &fd);
    free(pattern);
    if (find == INVALID_HANDLE_VALUE) {
        err_set(cause, "cannot read directory %s (error %lu)", src, (unsigned long)GetLastError());
        return -E_IO;
    }
    do {
        char *from, *to;

        /* The agent's .lock is not state, and a running agent holds it locked. */
        if (strcmp(fd.cFileName, ".") == 0 || strcmp(fd.cFileName, "..") == 0 ||
            strcmp(fd.cFileName, ".lock") == 0)
            continue;
        from = fsutil_join(src, fd.cFileName);
        to = fsutil_join(dst, fd.cFileName);
        if (from == NULL || to == NULL) {
            rc = -E_NOMEM;
        } else if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
            rc = copy_dir(from, to, cause);
        } else if (!CopyFileA(from, to, TRUE)) {
            err_set(cause, "cannot copy %s to %s (error %lu)", from, to,
                    (unsigned long)GetLastError());
            rc = -E_IO;
        }
        free(from);
        free(to);
    } while (rc == 0 && FindNextFileA(find, &fd));
    FindClose(find);
    return rc;
}

int
backup_copy_tree(const char *src, const char *dst, char **cause)
{
    if (!fsutil_is_dir(src)) {
        err_set(cause, "%s is not a directory", src);
        return -E_BAD_INPUT;
    }
    return copy_dir(src, dst, cause);
}
