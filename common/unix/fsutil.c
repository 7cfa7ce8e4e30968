/* File helpers on POSIX: atomic durable writes, bounded reads, symlink publishing. */
#include "../fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../err.h"

char *
fsutil_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int slash = la > 0 && a[la - 1] != '/';
    char *s = malloc(la + (size_t)slash + lb + 1);

    if (s == NULL)
        return NULL;
    memcpy(s, a, la);
    if (slash)
        s[la] = '/';
    memcpy(s + la + (size_t)slash, b, lb + 1);
    return s;
}

static int
errno_code(int e)
{
    switch (e) {
    case ENOENT:
        return -E_NOT_FOUND;
    case EACCES:
    case EPERM:
        return -E_DENIED;
    case EEXIST:
        return -E_EXISTS;
    case ENOMEM:
        return -E_NOMEM;
    default:
        return -E_IO;
    }
}

int
fsutil_read_file(const char *path, size_t max, unsigned char **out, size_t *len, char **cause)
{
    struct stat st;
    unsigned char *buf = NULL;
    size_t got = 0;
    int fd, rc = 0;

    *out = NULL;
    *len = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = errno_code(errno);
        err_set(cause, "cannot read %s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) != 0) {
        rc = errno_code(errno);
        err_set(cause, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        err_set(cause, "%s is not a regular file", path);
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((size_t)st.st_size > max) {
        err_set(cause, "%s is %lld bytes; at most %zu are accepted", path,
                (long long)st.st_size, max);
        rc = -E_TOO_BIG;
        goto out;
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = errno_code(errno);
            err_set(cause, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break; /* the file shrank meanwhile */
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

static int
write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Directory part of path ("." when none), heap. */
static char *
dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

int
fsutil_fsync_dir(const char *path, char **cause)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0) {
        err_set(cause, "cannot open directory %s: %s", path, strerror(errno));
        return errno_code(errno);
    }
    if (fsync(fd) != 0 && errno != EINVAL) {
        err_set(cause, "cannot sync directory %s: %s", path, strerror(errno));
        rc = -E_IO;
    }
    close(fd);
    return rc;
}

static int
write_fd_file(const char *path, int flags, const void *data, size_t len, int mode, char **cause)
{
    int fd, rc = 0;

    if ((fd = open(path, flags | O_WRONLY | O_CLOEXEC, (mode_t)mode)) < 0) {
        err_set(cause, "cannot create %s: %s", path, strerror(errno));
        return errno_code(errno);
    }
    /* The umask must not widen or narrow what was asked for. */
    if (fchmod(fd, (mode_t)mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        err_set(cause, "cannot write %s: %s", path, strerror(errno));
        rc = errno_code(errno);
        if (rc != -E_NOMEM)
            rc = -E_IO;
    }
    if (close(fd) != 0 && rc == 0) {
        err_set(cause, "cannot write %s: %s", path, strerror(errno));
        rc = -E_IO;
    }
    return rc;
}

int
fsutil_write_new(const char *path, const void *data, size_t len, int mode, char **cause)
{
    int rc = write_fd_file(path, O_CREAT | O_EXCL, data, len, mode, cause);

    if (rc != 0 && rc != -E_EXISTS)
        unlink(path);
    return rc;
}

int
fsutil_write_atomic(const char *path, const void *data, size_t len, int mode, char **cause)
{
    char *tmp = NULL, *dir = NULL;
    size_t n = strlen(path) + 32;
    int rc;

    if ((tmp = malloc(n)) == NULL || (dir = dir_of(path)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    for (int attempt = 0;; attempt++) {
        snprintf(tmp, n, "%s.tmp-%ld-%d", path, (long)getpid(), attempt);
        rc = write_fd_file(tmp, O_CREAT | O_EXCL, data, len, mode, cause);
        if (rc != -E_EXISTS || attempt > 100)
            break;
    }
    if (rc != 0) {
        if (rc != -E_EXISTS)
            unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        err_set(cause, "cannot replace %s: %s", path, strerror(errno));
        rc = errno_code(errno);
        unlink(tmp);
        goto out;
    }
    rc = fsutil_fsync_dir(dir, cause);
out:
    free(tmp);
    free(dir);
    return rc;
}

int
fsutil_mkdir_p(const char *path, int mode, char **cause)
{
    char *p = strdup(path);
    struct stat st;
    int rc = 0;

    if (p == NULL)
        return -E_NOMEM;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        {
            char c = *s;

            *s = '\0';
            if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST) {
                err_set(cause, "cannot create directory %s: %s", p, strerror(errno));
                rc = errno_code(errno);
                goto out;
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        err_set(cause, "%s exists and is not a directory", path);
        rc = -E_EXISTS;
    }
out:
    free(p);
    return rc;
}

int
fsutil_rename(const char *from, const char *to, char **cause)
{
    char *d1 = NULL, *d2 = NULL;
    int rc = 0;

    if (rename(from, to) != 0) {
        err_set(cause, "cannot rename %s to %s: %s", from, to, strerror(errno));
        return errno_code(errno);
    }
    if ((d1 = dir_of(to)) == NULL || (d2 = dir_of(from)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if ((rc = fsutil_fsync_dir(d1, cause)) == 0 && strcmp(d1, d2) != 0)
        rc = fsutil_fsync_dir(d2, cause);
out:
    free(d1);
    free(d2);
    return rc;
}

static int
remove_tree_at(int parent, const char *name, const char *shown, char **cause)
{
    struct stat st;
    int fd, rc = 0;
    DIR *d;
    struct dirent *e;

    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : -E_IO;
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(parent, name, 0) != 0 && errno != ENOENT) {
            err_set(cause, "cannot remove %s: %s", shown, strerror(errno));
            return -E_IO;
        }
        return 0;
    }
    if ((fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        err_set(cause, "cannot open %s: %s", shown, strerror(errno));
        return -E_IO;
    }
    if ((d = fdopendir(fd)) == NULL) {
        close(fd);
        return -E_IO;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        rc = remove_tree_at(dirfd(d), e->d_name, shown, cause);
    }
    closedir(d);
    if (rc == 0 && unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
        err_set(cause, "cannot remove %s: %s", shown, strerror(errno));
        rc = -E_IO;
    }
    return rc;
}

int
fsutil_remove_tree(const char *path, char **cause)
{
    return remove_tree_at(AT_FDCWD, path, path, cause);
}

int
fsutil_publish_dir(const char *target, const char *linkpath, char **cause)
{
    char *tmp = NULL, *dir = NULL;
    size_t n = strlen(linkpath) + 32;
    struct stat st;
    int rc = 0;

    if ((tmp = malloc(n)) == NULL || (dir = dir_of(linkpath)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    snprintf(tmp, n, "%s.tmp-%ld", linkpath, (long)getpid());
    unlink(tmp);
    if (symlink(target, tmp) != 0) {
        err_set(cause, "cannot create link %s: %s", tmp, strerror(errno));
        rc = errno_code(errno);
        goto out;
    }
    /* A real directory in the way (an older layout) is removed first. */
    if (lstat(linkpath, &st) == 0 && S_ISDIR(st.st_mode) &&
        (rc = fsutil_remove_tree(linkpath, cause)) != 0) {
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, linkpath) != 0) {
        err_set(cause, "cannot replace %s: %s", linkpath, strerror(errno));
        rc = errno_code(errno);
        unlink(tmp);
        goto out;
    }
    rc = fsutil_fsync_dir(dir, cause);
out:
    free(tmp);
    free(dir);
    return rc;
}

int
fsutil_read_published(const char *linkpath, char **target, char **cause)
{
    char buf[PATH_MAX];
    ssize_t n = readlink(linkpath, buf, sizeof(buf) - 1);

    *target = NULL;
    if (n < 0) {
        if (errno == ENOENT)
            return -E_NOT_FOUND;
        err_set(cause, "cannot read link %s: %s", linkpath, strerror(errno));
        return errno == EINVAL ? -E_BAD_INPUT : -E_IO;
    }
    buf[n] = '\0';
    if ((*target = strdup(buf)) == NULL)
        return -E_NOMEM;
    return 0;
}

int
fsutil_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

int
fsutil_lock(const char *path, int *handle, char **cause)
{
    struct flock fl;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    *handle = -1;
    if (fd < 0) {
        err_set(cause, "cannot open lock file %s: %s", path, strerror(errno));
        return errno_code(errno);
    }
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int e = errno;

        close(fd);
        if (e == EACCES || e == EAGAIN) {
            err_set(cause, "%s is locked by another process", path);
            return -E_BUSY;
        }
        err_set(cause, "cannot lock %s: %s", path, strerror(e));
        return -E_IO;
    }
    *handle = fd;
    return 0;
}

void
fsutil_unlock(int handle)
{
    if (handle >= 0)
        close(handle);
}

int
fsutil_unpublish(const char *linkpath, char **cause)
{
    char *dir;
    int rc;

    if (unlink(linkpath) != 0) {
        if (errno == ENOENT)
            return 0;
        err_set(cause, "cannot remove %s: %s", linkpath, strerror(errno));
        return errno_code(errno);
    }
    if ((dir = dir_of(linkpath)) == NULL)
        return -E_NOMEM;
    rc = fsutil_fsync_dir(dir, cause);
    free(dir);
    return rc;
}

int
fsutil_is_published(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

int
fsutil_mkdir(const char *path, int mode, char **cause)
{
    if (mkdir(path, (mode_t)mode) != 0) {
        err_set(cause, "cannot create directory %s: %s", path, strerror(errno));
        return errno_code(errno);
    }
    return 0;
}

int
fsutil_is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void
fsutil_rmdir(const char *path)
{
    (void)rmdir(path);
}
