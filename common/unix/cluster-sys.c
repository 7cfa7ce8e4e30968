#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "cluster-sys.h"

int
cluster_sys_check_private(const char *path, char **cause)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        err_set(cause, "cannot check fleet key file %s: %s", path, strerror(errno));
        return -E_IO;
    }
    if ((st.st_mode & 077) != 0) {
        err_set(cause,
                "fleet key file %s has mode %04o: others may read it; it must be 0600 (chmod 600 "
                "%s)",
                path, (unsigned)(st.st_mode & 07777), path);
        return -E_DENIED;
    }
    return 0;
}

int
cluster_sys_hostname(char *buf, size_t size)
{
    if (size == 0 || gethostname(buf, size) != 0)
        return -1;
    buf[size - 1] = '\0';
    buf[strcspn(buf, ".")] = '\0';
    return buf[0] != '\0' ? 0 : -1;
}
