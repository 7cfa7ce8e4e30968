/*
 * File helpers on POSIX: atomic durable writes, bounded reads, symlink
 * publishing and the state directory's lock.
 *
 * Every failure names the path and the system's words for errno; errno is
 * saved before anything else can change it.  Temp files and links are made
 * next to their final name (same directory, so rename() is atomic) and are
 * removed again when anything fails.
 */
#define _GNU_SOURCE /* renameat2(RENAME_EXCHANGE) when the C library has it */
#include "../fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../err.h"

/* Attempts at a fresh temp name before giving up (stale temps of a dead process). */
#define TEMP_ATTEMPTS 100

/* Makes temp names unique between the threads of one process. */
static atomic_uint temp_counter;

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

/* The one place where errno becomes an err_code. */
static int
errno_code(int e)
{
    switch (e) {
    case ENOENT:
        return -E_NOT_FOUND;
    case EACCES:
    case EPERM:
    case EROFS:
        return -E_DENIED;
    case EEXIST:
        return -E_EXISTS;
    case ENOMEM:
        return -E_NOMEM;
    case EFBIG:
    case ENAMETOOLONG:
        return -E_TOO_BIG;
    default:
        return -E_IO;
    }
}

/* Sets "cannot WHAT PATH: strerror(e)" and returns the matching code. */
static int
fail(char **cause, int e, const char *what, const char *path)
{
    err_set(cause, "cannot %s %s: %s", what, path, strerror(e));
    return errno_code(e);
}

/* Directory part of path ("." when none), heap; NULL on allocation failure. */
static char *
dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    while (slash != NULL && slash > path && slash[1] == '\0') {
        /* "a/b/" names b: look for the slash before it. */
        const char *p = slash - 1;

        while (p > path && *p != '/')
            p--;
        slash = *p == '/' ? p : NULL;
    }
    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* "PATH.KIND-PID-N", unique in this process; NULL on allocation failure. */
static char *
temp_name(const char *path, const char *kind)
{
    char *s = NULL;

    err_set(&s, "%s.%s-%ld-%u", path, kind, (long)getpid(),
            atomic_fetch_add(&temp_counter, 1) + 1);
    return s;
}

int
fsutil_read_file(const char *path, size_t max, unsigned char **out, size_t *len, char **cause)
{
    struct stat st;
    unsigned char *buf = NULL;
    size_t got = 0, size;
    int fd, rc = 0;

    *out = NULL;
    *len = 0;
    /* O_NONBLOCK: a FIFO put in the file's place must not hang the reader. */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0)
        return fail(cause, errno, "read", path);
    if (fstat(fd, &st) != 0) {
        rc = fail(cause, errno, "read", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        err_set(cause, "cannot read %s: not a regular file", path);
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (st.st_size < 0 || (unsigned long long)st.st_size > (unsigned long long)max) {
        err_set(cause, "cannot read %s: it has %lld bytes, more than the %zu accepted", path,
                (long long)st.st_size, max);
        rc = -E_TOO_BIG;
        goto out;
    }
    size = (size_t)st.st_size;
    if ((buf = malloc(size + 1)) == NULL) {
        err_set(cause, "cannot read %s: out of memory", path);
        rc = -E_NOMEM;
        goto out;
    }
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = fail(cause, errno, "read", path);
            goto out;
        }
        if (n == 0)
            break; /* the file shrank meanwhile: what was read is what it holds */
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

/* Writes all of data, resuming after signals and short writes; -1 with errno. */
static int
write_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int
fsutil_fsync_dir(const char *path, char **cause)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return fail(cause, errno, "open directory", path);
    /* Some file systems cannot sync a directory (EINVAL); they need not. */
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = fail(cause, errno, "sync directory", path);
    close(fd);
    return rc;
}

/*
 * Creates path exclusively with exactly `mode` (the umask does not apply),
 * writes data and fsyncs it.  Messages name `shown` (the file the caller is
 * writing, which is not the temp name).  A file this call created is removed
 * again on failure; -E_EXISTS when path exists.
 */
static int
create_file(const char *path, const char *shown, const void *data, size_t len, int mode,
            char **cause)
{
    int fd, rc = 0;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, (mode_t)mode);
    if (fd < 0)
        return fail(cause, errno, "create", shown);
    if (fchmod(fd, (mode_t)mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        rc = fail(cause, errno, "write", shown);
        if (rc != -E_NOMEM && rc != -E_DENIED && rc != -E_TOO_BIG)
            rc = -E_IO;
    }
    if (close(fd) != 0 && rc == 0) {
        /* NFS reports some write errors only here. */
        rc = fail(cause, errno, "write", shown);
        rc = rc == -E_NOMEM ? rc : -E_IO;
    }
    if (rc != 0)
        (void)unlink(path);
    return rc;
}

int
fsutil_write_new(const char *path, const void *data, size_t len, int mode, char **cause)
{
    return create_file(path, path, data, len, mode, cause);
}

int
fsutil_write_atomic(const char *path, const void *data, size_t len, int mode, char **cause)
{
    char *tmp = NULL, *dir = NULL;
    int rc = -E_EXISTS;

    if ((dir = dir_of(path)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    /* A name already taken can only be a stale temp of a dead process: take the next. */
    for (int attempt = 0; attempt < TEMP_ATTEMPTS && rc == -E_EXISTS; attempt++) {
        free(tmp);
        if ((tmp = temp_name(path, "tmp")) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
        rc = create_file(tmp, path, data, len, mode, cause);
    }
    if (rc != 0)
        goto out;
    if (rename(tmp, path) != 0) {
        rc = fail(cause, errno, "replace", path);
        (void)unlink(tmp);
        goto out;
    }
    rc = fsutil_fsync_dir(dir, cause);
out:
    if (rc == -E_NOMEM)
        err_set(cause, "cannot write %s: out of memory", path);
    free(tmp);
    free(dir);
    return rc;
}

int
fsutil_mkdir(const char *path, int mode, char **cause)
{
    if (mkdir(path, (mode_t)mode) != 0)
        return fail(cause, errno, "create directory", path);
    return 0;
}

int
fsutil_mkdir_p(const char *path, int mode, char **cause)
{
    char *p = NULL;
    struct stat st;
    int rc = 0;

    if (path[0] == '\0') {
        err_set(cause, "cannot create a directory with an empty name");
        return -E_BAD_INPUT;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if ((p = strdup(path)) == NULL) {
        err_set(cause, "cannot create directory %s: out of memory", path);
        return -E_NOMEM;
    }
    /* Each prefix ending before a '/' (and the whole path), shortest first. */
    for (char *s = p + 1;; s++) {
        char c = *s;

        if (c != '/' && c != '\0')
            continue;
        *s = '\0';
        if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST) {
            rc = fail(cause, errno, "create directory", p);
            goto out;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    if (stat(path, &st) != 0) {
        rc = fail(cause, errno, "create directory", path);
    } else if (!S_ISDIR(st.st_mode)) {
        err_set(cause, "cannot create directory %s: something else has that name", path);
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
        int e = errno;

        err_set(cause, "cannot rename %s to %s: %s", from, to, strerror(e));
        return errno_code(e);
    }
    if ((d1 = dir_of(to)) == NULL || (d2 = dir_of(from)) == NULL) {
        err_set(cause, "cannot sync the rename of %s: out of memory", from);
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

/*
 * Removes name (relative to the directory parent) and, when it is a real
 * directory, everything below it.  Symlinks are removed, never followed.
 * shown is the path of name, for messages.
 */
static int
remove_at(int parent, const char *name, const char *shown, char **cause)
{
    struct stat st;
    struct dirent *e;
    DIR *d = NULL;
    int fd, rc = 0;

    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : fail(cause, errno, "remove", shown);
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(parent, name, 0) != 0 && errno != ENOENT)
            return fail(cause, errno, "remove", shown);
        return 0;
    }
    /* O_NOFOLLOW: a directory swapped for a link meanwhile is not entered. */
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : fail(cause, errno, "remove", shown);
    if ((d = fdopendir(fd)) == NULL) {
        rc = fail(cause, errno, "remove", shown);
        close(fd);
        return rc;
    }
    for (;;) {
        char *child;

        errno = 0;
        if ((e = readdir(d)) == NULL) {
            if (errno != 0)
                rc = fail(cause, errno, "list", shown);
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if ((child = fsutil_join(shown, e->d_name)) == NULL) {
            err_set(cause, "cannot remove %s: out of memory", shown);
            rc = -E_NOMEM;
            break;
        }
        rc = remove_at(dirfd(d), e->d_name, child, cause);
        free(child);
        if (rc != 0)
            break;
    }
    closedir(d);
    if (rc == 0 && unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
        rc = fail(cause, errno, "remove", shown);
    return rc;
}

int
fsutil_remove_tree(const char *path, char **cause)
{
    return remove_at(AT_FDCWD, path, path, cause);
}

/*
 * linkpath is a real directory (an older layout): puts the link made at tmp
 * in its place and sets *old to where the directory went, for the caller to
 * remove.  With renameat2(RENAME_EXCHANGE) the swap is atomic; otherwise the
 * directory is renamed aside first, so that readers see the old directory
 * whole, then (for an instant) nothing, then the link, never a half-removed
 * directory.
 */
static int
replace_directory(const char *tmp, const char *linkpath, char **old, char **cause)
{
    char *aside = NULL;
    int rc = 0;

    *old = NULL;
#ifdef RENAME_EXCHANGE
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, linkpath, RENAME_EXCHANGE) == 0) {
        if ((*old = strdup(tmp)) == NULL) {
            err_set(cause, "cannot remove the old directory %s: out of memory", tmp);
            return -E_NOMEM;
        }
        return 0;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return fail(cause, errno, "replace", linkpath);
#endif
    if ((aside = temp_name(linkpath, "old")) == NULL) {
        err_set(cause, "cannot replace %s: out of memory", linkpath);
        return -E_NOMEM;
    }
    if (rename(linkpath, aside) != 0) {
        rc = fail(cause, errno, "replace", linkpath);
        goto out;
    }
    if (rename(tmp, linkpath) != 0) {
        rc = fail(cause, errno, "replace", linkpath);
        (void)rename(aside, linkpath); /* put the directory back */
        goto out;
    }
    *old = aside;
    aside = NULL;
out:
    free(aside);
    return rc;
}

int
fsutil_publish_dir(const char *target, const char *linkpath, char **cause)
{
    char *tmp = NULL, *dir = NULL, *old = NULL;
    struct stat st;
    int rc = 0, linked = 0;

    if ((dir = dir_of(linkpath)) == NULL || (tmp = temp_name(linkpath, "tmp")) == NULL) {
        err_set(cause, "cannot publish %s: out of memory", linkpath);
        rc = -E_NOMEM;
        goto out;
    }
    (void)unlink(tmp); /* a stale one of a dead process that had our pid */
    if (symlink(target, tmp) != 0) {
        rc = fail(cause, errno, "create link", tmp);
        goto out;
    }
    linked = 1;
    if (lstat(linkpath, &st) == 0 && S_ISDIR(st.st_mode)) {
        if ((rc = replace_directory(tmp, linkpath, &old, cause)) != 0)
            goto out;
    } else if (rename(tmp, linkpath) != 0) {
        rc = fail(cause, errno, "replace", linkpath);
        goto out;
    }
    linked = 0; /* the link is at linkpath now */
    if ((rc = fsutil_fsync_dir(dir, cause)) == 0 && old != NULL)
        rc = fsutil_remove_tree(old, cause);
out:
    if (linked)
        (void)unlink(tmp);
    free(old);
    free(tmp);
    free(dir);
    return rc;
}

int
fsutil_read_published(const char *linkpath, char **target, char **cause)
{
    char buf[PATH_MAX];
    ssize_t n = readlink(linkpath, buf, sizeof(buf));

    *target = NULL;
    if (n < 0) {
        int e = errno;

        if (e == ENOENT)
            return -E_NOT_FOUND;
        if (e == EINVAL) {
            err_set(cause, "%s is not a link", linkpath);
            return -E_BAD_INPUT;
        }
        return fail(cause, e, "read link", linkpath);
    }
    if ((size_t)n >= sizeof(buf)) {
        err_set(cause, "cannot read link %s: its target is too long", linkpath);
        return -E_TOO_BIG;
    }
    if ((*target = strndup(buf, (size_t)n)) == NULL) {
        err_set(cause, "cannot read link %s: out of memory", linkpath);
        return -E_NOMEM;
    }
    return 0;
}

int
fsutil_unpublish(const char *linkpath, char **cause)
{
    struct stat st;
    char *dir;
    int rc;

    if (lstat(linkpath, &st) != 0)
        return errno == ENOENT ? 0 : fail(cause, errno, "remove", linkpath);
    if (!S_ISLNK(st.st_mode)) {
        err_set(cause, "cannot remove %s: it is not a link this program made", linkpath);
        return -E_BAD_INPUT;
    }
    if (unlink(linkpath) != 0)
        return errno == ENOENT ? 0 : fail(cause, errno, "remove", linkpath);
    if ((dir = dir_of(linkpath)) == NULL) {
        err_set(cause, "cannot sync the removal of %s: out of memory", linkpath);
        return -E_NOMEM;
    }
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

int
fsutil_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

/*
 * flock() rather than fcntl() locks: a flock belongs to the open file, so a
 * second fsutil_lock in the same process is refused too, and closing some
 * other descriptor of the file does not silently drop the lock.
 */
int
fsutil_lock(const char *path, int *handle, char **cause)
{
    int fd;

    *handle = -1;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0)
        return fail(cause, errno, "open lock file", path);
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;

        if (e == EINTR)
            continue;
        close(fd);
        if (e == EWOULDBLOCK) {
            err_set(cause, "%s is locked by another process", path);
            return -E_BUSY;
        }
        return fail(cause, e, "lock", path);
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
