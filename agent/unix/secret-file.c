#include "secret-file.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

int
platform_secret_file_check(const char *path, const char *key, char **cause)
{
    struct stat sb;

    if (stat(path, &sb) != 0) {
        err_set(cause, "%s: cannot read %s: %s", key, path, strerror(errno));
        return errno == ENOENT ? -E_NOT_FOUND : -E_IO;
    }
    if (!S_ISREG(sb.st_mode)) {
        err_set(cause, "%s: %s is not a regular file", key, path);
        return -E_BAD_INPUT;
    }
    if ((sb.st_mode & 077) != 0) {
        err_set(cause,
                "%s: %s has mode %04o, so other users may read its secret; make it 0600 "
                "(chmod 600 %s)",
                key, path, (unsigned)(sb.st_mode & 07777), path);
        return -E_DENIED;
    }
    if (sb.st_uid != 0 && sb.st_uid != geteuid()) {
        err_set(cause, "%s: %s belongs to uid %lu, neither root nor the agent's user", key, path,
                (unsigned long)sb.st_uid);
        return -E_DENIED;
    }
    return 0;
}
