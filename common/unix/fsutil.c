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
#include "../strv.h"

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
 * Creates name (relative to the directory dirfd, or a path with AT_FDCWD)
 * exclusively with exactly `mode` (the umask does not apply), never through a
 * link, writes data and fsyncs it.  Messages name `shown` (the file the
 * caller is writing, which is not the temp name).  A file this call created
 * is removed again on failure; -E_EXISTS when name exists.
 */
static int
create_file_at(int dirfd, const char *name, const char *shown, const void *data, size_t len,
               int mode, char **cause)
{
    int fd, rc = 0;

    fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                (mode_t)mode);
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
        (void)unlinkat(dirfd, name, 0);
    return rc;
}

int
fsutil_write_new(const char *path, const void *data, size_t len, int mode, char **cause)
{
    return create_file_at(AT_FDCWD, path, path, data, len, mode, cause);
}

/*
 * The one atomic replace: a temp file beside name in the directory dirfd
 * (shown as dirshown), renamed over name, then the directory fsynced.  shown
 * is the path of name, for messages.
 */
static int
write_atomic_at(int dirfd, const char *dirshown, const char *name, const char *shown,
                const void *data, size_t len, int mode, char **cause)
{
    char *tmp = NULL;
    int rc = -E_EXISTS;

    /* A name already taken can only be a stale temp of a dead process: take the next. */
    for (int attempt = 0; attempt < TEMP_ATTEMPTS && rc == -E_EXISTS; attempt++) {
        free(tmp);
        if ((tmp = temp_name(name, "tmp")) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
        rc = create_file_at(dirfd, tmp, shown, data, len, mode, cause);
    }
    if (rc != 0)
        goto out;
    if (renameat(dirfd, tmp, dirfd, name) != 0) {
        rc = fail(cause, errno, "replace", shown);
        (void)unlinkat(dirfd, tmp, 0);
        goto out;
    }
    /* Some file systems cannot sync a directory (EINVAL); they need not. */
    if (fsync(dirfd) != 0 && errno != EINVAL)
        rc = fail(cause, errno, "sync directory", dirshown);
out:
    if (rc == -E_NOMEM)
        err_set(cause, "cannot write %s: out of memory", shown);
    free(tmp);
    return rc;
}

/* The last component of path (after the last '/'); path itself when none. */
static const char *
base_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash != NULL ? slash + 1 : path;
}

int
fsutil_write_atomic(const char *path, const void *data, size_t len, int mode, char **cause)
{
    char *dir = NULL;
    int dirfd = -1, rc;

    if ((dir = dir_of(path)) == NULL) {
        err_set(cause, "cannot write %s: out of memory", path);
        rc = -E_NOMEM;
        goto out;
    }
    if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = fail(cause, errno, "create", path);
        goto out;
    }
    rc = write_atomic_at(dirfd, dir, base_of(path), path, data, len, mode, cause);
out:
    if (dirfd >= 0)
        close(dirfd);
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

/* Directories outside the store, walked without following planted links. */

/* Links followed and ".." taken in one walk before it is refused as a loop. */
#define WALK_HOPS_MAX 40

/* O_PATH opens a directory that this user may search but not read. */
#ifdef O_PATH
#define WALK_OPEN (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#else
#define WALK_OPEN (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#endif

struct fsutil_dir {
    int fd;     /* O_RDONLY: for writes, renames, fsync and listing */
    char *path; /* as resolved, without "." or ".." */
};

/* May files of this owner be trusted: root or the user this process runs as? */
static int
owner_ok(uid_t uid)
{
    return uid == 0 || uid == geteuid();
}

/* Refuses what another user owns, with words naming shown. */
static int
check_owner(const struct stat *st, const char *shown, char **cause)
{
    if (owner_ok(st->st_uid))
        return 0;
    if (geteuid() == 0)
        err_set(cause, "%s is owned by uid %lu, not by root", shown, (unsigned long)st->st_uid);
    else
        err_set(cause, "%s is owned by uid %lu, neither root nor this user (uid %lu)", shown,
                (unsigned long)st->st_uid, (unsigned long)geteuid());
    return -E_DENIED;
}

/* Refuses what group or others may write to. */
static int
check_writable(const struct stat *st, const char *shown, char **cause)
{
    mode_t w = st->st_mode & (S_IWGRP | S_IWOTH);

    if (w == 0)
        return 0;
    err_set(cause, "%s is writable by %s (mode %04o)", shown,
            w == (S_IWGRP | S_IWOTH) ? "group and others"
            : w == S_IWGRP           ? "group"
                                     : "others",
            (unsigned)(st->st_mode & 07777));
    return -E_DENIED;
}

/*
 * A directory on the way: trusted owner and not writable by others, except
 * that a sticky directory (/tmp) is fine on the way (not last): there only
 * the owner of the next component, which is checked in turn, can replace it.
 */
static int
check_dir(int fd, const char *shown, int last, char **cause)
{
    struct stat st;
    int rc;

    if (fstat(fd, &st) != 0)
        return fail(cause, errno, "check", shown);
    if (!S_ISDIR(st.st_mode)) {
        err_set(cause, "%s is not a directory", shown);
        return -E_BAD_INPUT;
    }
    if ((rc = check_owner(&st, shown, cause)) != 0)
        return rc;
    if (!last && (st.st_mode & S_ISVTX))
        return 0;
    return check_writable(&st, shown, cause);
}

/* Growing path text for messages and for the walk's restarts. */
static int
path_append(char **path, const char *comp, size_t len)
{
    size_t have = strlen(*path);
    char *p = realloc(*path, have + 1 + len + 1);

    if (p == NULL)
        return -E_NOMEM;
    p[have] = '/';
    memcpy(p + have + 1, comp, len);
    p[have + 1 + len] = '\0';
    *path = p;
    return 0;
}

/* "HEAD/TAIL" (TAIL may be empty), heap; NULL on allocation failure. */
static char *
path_concat(const char *head, const char *tail)
{
    char *s = NULL;

    err_set(&s, "%s/%s", head, tail);
    return s;
}

/* Where a walk stands: a checked directory, its resolved path, what is left. */
struct walk {
    int fd;
    char *shown;     /* resolved, "" for the root */
    char *remaining; /* the path still to walk, absolute, restarted from the root */
    unsigned hops;
};

/* Starts (again) at the root with remaining. */
static int
walk_restart(struct walk *w, char *remaining, char **cause)
{
    if (w->fd >= 0)
        close(w->fd);
    free(w->shown);
    free(w->remaining);
    w->remaining = remaining;
    w->shown = strdup("");
    if (remaining == NULL || w->shown == NULL) {
        w->fd = -1;
        err_set(cause, "cannot check a path: out of memory");
        return -E_NOMEM;
    }
    if (++w->hops > WALK_HOPS_MAX) {
        w->fd = -1;
        err_set(cause, "%s: too many symbolic links or '..'", remaining);
        return -E_BAD_INPUT;
    }
    if ((w->fd = open("/", WALK_OPEN)) < 0)
        return fail(cause, errno, "open directory", "/");
    return 0;
}

/*
 * Replaces the walk by dir/target/rest (target absolute: target/rest), the
 * resolved prefix being link-free, so that the restart sees what the kernel
 * would.  ".." is walked as a link to the parent.
 */
static int
walk_jump(struct walk *w, const char *target, const char *rest, char **cause)
{
    char *head = NULL, *remaining;

    if (target[0] == '/') {
        head = strdup(target);
    } else {
        err_set(&head, "%s/%s", w->shown, target);
    }
    remaining = head != NULL ? path_concat(head, rest) : NULL;
    free(head);
    return walk_restart(w, remaining, cause);
}

/*
 * Opens name in the walk's directory, creating it when asked; *fd, or 1 for
 * a link when follow, or an error.
 */
static int
walk_open(struct walk *w, const char *name, const char *shown, unsigned flags, int mode,
          int follow, int *fd, char **cause)
{
    int created = 0;

    *fd = openat(w->fd, name, WALK_OPEN);
    if (*fd < 0 && errno == ENOENT && (flags & FSUTIL_DIR_CREATE)) {
        created = mkdirat(w->fd, name, (mode_t)mode) == 0;
        if (!created && errno != EEXIST)
            return fail(cause, errno, "create directory", shown);
        *fd = openat(w->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        /* Exactly mode, as files get: the umask does not apply. */
        if (*fd >= 0 && created && fchmod(*fd, (mode_t)mode) != 0) {
            int e = errno;

            close(*fd);
            *fd = -1;
            return fail(cause, e, "create directory", shown);
        }
    }
    if (*fd < 0) {
        int e = errno;
        struct stat st;

        if ((e == ELOOP || e == ENOTDIR) && fstatat(w->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISLNK(st.st_mode) && follow)
                return 1;
            if (S_ISLNK(st.st_mode)) {
                err_set(cause, "%s is a symbolic link", shown);
                return -E_DENIED;
            }
            return fail(cause, ENOTDIR, "open directory", shown);
        }
        if (e == ENOENT) {
            err_set(cause, "%s does not exist", shown);
            return -E_NOT_FOUND;
        }
        return fail(cause, e, "open directory", shown);
    }
    return 0;
}

/* Follows the link name in the walk's directory when it may be trusted (see fsutil_check_program).
 */
static int
walk_follow(struct walk *w, const char *name, const char *shown, const char *rest, char **cause)
{
    char target[PATH_MAX];
    struct stat st;
    ssize_t n;
    int rc;

    if (fstatat(w->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return fail(cause, errno, "check", shown);
    if ((rc = check_owner(&st, shown, cause)) != 0)
        return rc;
    if ((n = readlinkat(w->fd, name, target, sizeof(target))) < 0)
        return fail(cause, errno, "read link", shown);
    if ((size_t)n >= sizeof(target)) {
        err_set(cause, "cannot read link %s: its target is too long", shown);
        return -E_TOO_BIG;
    }
    target[n] = '\0';
    return walk_jump(w, target, rest, cause);
}

/*
 * Walks the absolute path as directories, checking each (see
 * fsutil_dir_open); follow: trusted links are followed instead of refused.
 * On success w->fd is the last directory and w->shown its resolved path.
 */
static int
walk_dirs(struct walk *w, const char *path, unsigned flags, int mode, int follow, char **cause)
{
    int rc;

    w->fd = -1;
    w->shown = w->remaining = NULL;
    w->hops = 0;
    if (path[0] != '/') {
        err_set(cause, "%s is not an absolute path", path);
        return -E_BAD_INPUT;
    }
    if ((rc = walk_restart(w, strdup(path), cause)) != 0)
        return rc;
    for (const char *p = w->remaining;;) {
        const char *comp, *end;
        char *name = NULL, *shown = NULL;
        int fd = -1;

        while (*p == '/')
            p++;
        comp = p;
        end = strchr(comp, '/');
        if (end == NULL)
            end = comp + strlen(comp);
        p = end;
        while (*p == '/')
            p++;
        if (end == comp) {
            /* The root is the last directory: the walk checks it here. */
            return check_dir(w->fd, w->shown[0] != '\0' ? w->shown : "/", 1, cause);
        }
        if ((size_t)(end - comp) == 1 && comp[0] == '.')
            continue;
        if ((rc = check_dir(w->fd, w->shown[0] != '\0' ? w->shown : "/", 0, cause)) != 0)
            return rc;
        if ((size_t)(end - comp) == 2 && comp[0] == '.' && comp[1] == '.') {
            /* The resolved prefix has no link: its parent is the text before its last '/'. */
            char *slash = strrchr(w->shown, '/');

            if (slash != NULL)
                *slash = '\0';
            if ((rc = walk_jump(w, w->shown[0] != '\0' ? w->shown : "/", p, cause)) != 0)
                return rc;
            p = w->remaining;
            continue;
        }
        if ((name = strndup(comp, (size_t)(end - comp))) == NULL ||
            (shown = strdup(w->shown)) == NULL || path_append(&shown, name, strlen(name)) != 0) {
            free(name);
            free(shown);
            err_set(cause, "cannot check %s: out of memory", path);
            return -E_NOMEM;
        }
        rc = walk_open(w, name, shown, flags, mode, follow, &fd, cause);
        if (rc == 1) {
            rc = walk_follow(w, name, shown, p, cause);
            free(name);
            free(shown);
            if (rc != 0)
                return rc;
            p = w->remaining;
            continue;
        }
        free(name);
        if (rc != 0) {
            free(shown);
            return rc;
        }
        close(w->fd);
        w->fd = fd;
        free(w->shown);
        w->shown = shown;
    }
}

static void
walk_end(struct walk *w)
{
    if (w->fd >= 0)
        close(w->fd);
    free(w->shown);
    free(w->remaining);
}

int
fsutil_dir_open(const char *path, unsigned flags, int mode, struct fsutil_dir **out, char **cause)
{
    struct fsutil_dir *dir = NULL;
    struct walk w;
    int rc;

    *out = NULL;
    if ((rc = walk_dirs(&w, path, flags, mode, 0, cause)) != 0)
        goto out;
    if ((dir = calloc(1, sizeof(*dir))) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    /* The walk's descriptor may be O_PATH: reopen it for writes and fsync. */
    if ((dir->fd = openat(w.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = fail(cause, errno, "open directory", w.shown[0] != '\0' ? w.shown : "/");
        free(dir);
        dir = NULL;
        goto out;
    }
    if (w.shown[0] != '\0') {
        dir->path = w.shown;
        w.shown = NULL;
    } else {
        dir->path = strdup("/");
    }
    if (dir->path == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    *out = dir;
    dir = NULL;
out:
    if (rc == -E_NOMEM)
        err_set(cause, "cannot open directory %s: out of memory", path);
    fsutil_dir_free(dir);
    walk_end(&w);
    return rc;
}

void
fsutil_dir_free(struct fsutil_dir *dir)
{
    if (dir == NULL)
        return;
    if (dir->fd >= 0)
        close(dir->fd);
    free(dir->path);
    free(dir);
}

const char *
fsutil_dir_path(const struct fsutil_dir *dir)
{
    return dir->path;
}

/* A plain file name: not empty, no '/', not "." or "..". */
static int
name_ok(const char *name, const struct fsutil_dir *dir, char **cause)
{
    if (name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
        strcmp(name, "..") != 0)
        return 0;
    err_set(cause, "'%s' is not a file name in %s", name, dir->path);
    return -E_BAD_INPUT;
}

int
fsutil_dir_write(struct fsutil_dir *dir, const char *name, const void *data, size_t len, int mode,
                 char **cause)
{
    char *shown;
    int rc;

    if ((rc = name_ok(name, dir, cause)) != 0)
        return rc;
    if ((shown = fsutil_join(dir->path, name)) == NULL) {
        err_set(cause, "cannot write %s: out of memory", name);
        return -E_NOMEM;
    }
    rc = write_atomic_at(dir->fd, dir->path, name, shown, data, len, mode, cause);
    free(shown);
    return rc;
}

int
fsutil_dir_remove(struct fsutil_dir *dir, const char *name, char **cause)
{
    char *shown;
    int rc = 0;

    if ((rc = name_ok(name, dir, cause)) != 0)
        return rc;
    if (unlinkat(dir->fd, name, 0) == 0) {
        if (fsync(dir->fd) != 0 && errno != EINVAL)
            rc = fail(cause, errno, "sync directory", dir->path);
    } else if (errno != ENOENT) {
        int e = errno;

        if ((shown = fsutil_join(dir->path, name)) == NULL)
            return -E_NOMEM;
        rc = fail(cause, e, "remove", shown);
        free(shown);
    }
    return rc;
}

int
fsutil_dir_list(struct fsutil_dir *dir, char ***names, size_t *n, char **cause)
{
    struct dirent *e;
    char **v = NULL;
    size_t cap = 0;
    DIR *d = NULL;
    int fd, rc = 0;

    *names = NULL;
    *n = 0;
    if ((fd = openat(dir->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return fail(cause, errno, "list", dir->path);
    if ((d = fdopendir(fd)) == NULL) {
        rc = fail(cause, errno, "list", dir->path);
        close(fd);
        return rc;
    }
    for (;;) {
        struct stat st;

        errno = 0;
        if ((e = readdir(d)) == NULL) {
            if (errno != 0)
                rc = fail(cause, errno, "list", dir->path);
            break;
        }
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (*n == cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            char **nv = realloc(v, ncap * sizeof(*v));

            if (nv == NULL) {
                rc = -E_NOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        if ((v[*n] = strdup(e->d_name)) == NULL) {
            rc = -E_NOMEM;
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (rc == -E_NOMEM)
        err_set(cause, "cannot list %s: out of memory", dir->path);
    if (rc != 0) {
        strv_free(v, *n);
        v = NULL;
        *n = 0;
    }
    *names = v;
    return rc;
}

int
fsutil_write_safe(const char *path, unsigned flags, const void *data, size_t len, int mode,
                  char **cause)
{
    struct fsutil_dir *dir = NULL;
    char *abs = NULL, *parent = NULL, cwd[PATH_MAX];
    int rc;

    if (path[0] != '/') {
        /* getcwd gives a path without links, walked and checked like the rest. */
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            rc = fail(cause, errno, "find the working directory for", path);
            goto out;
        }
        abs = path_concat(cwd, path);
    } else {
        abs = strdup(path);
    }
    if (abs == NULL || (parent = dir_of(abs)) == NULL) {
        err_set(cause, "cannot write %s: out of memory", path);
        rc = -E_NOMEM;
        goto out;
    }
    if ((rc = fsutil_dir_open(parent, flags, 0755, &dir, cause)) != 0)
        goto out;
    rc = fsutil_dir_write(dir, base_of(abs), data, len, mode, cause);
out:
    fsutil_dir_free(dir);
    free(parent);
    free(abs);
    return rc;
}

int
fsutil_check_program(const char *path, char **cause)
{
    char *remaining = NULL, *parent = NULL;
    struct walk w;
    int rc = 0;

    memset(&w, 0, sizeof(w));
    w.fd = -1;
    if ((remaining = strdup(path)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    for (unsigned links = 0;; links++) {
        const char *base;
        struct stat st;
        char *shown = NULL;

        walk_end(&w);
        free(parent);
        if ((parent = dir_of(remaining)) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
        base = base_of(remaining);
        if ((rc = walk_dirs(&w, parent, 0, 0, 1, cause)) != 0)
            goto out;
        if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
            err_set(cause, "%s is not a program file", path);
            rc = -E_BAD_INPUT;
            goto out;
        }
        if ((shown = fsutil_join(w.shown[0] != '\0' ? w.shown : "/", base)) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
        if (fstatat(w.fd, base, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = fail(cause, errno, "check", shown);
        } else if (S_ISLNK(st.st_mode) && links < WALK_HOPS_MAX) {
            /* walk_follow checks the link's owner and restarts the walk at its target. */
            if ((rc = walk_follow(&w, base, shown, "", cause)) == 0) {
                free(remaining);
                remaining = w.remaining;
                w.remaining = NULL;
                /* path_concat left a trailing '/': the target is a file. */
                if (remaining[0] != '\0' && remaining[strlen(remaining) - 1] == '/')
                    remaining[strlen(remaining) - 1] = '\0';
            }
            free(shown);
            if (rc != 0)
                goto out;
            continue;
        } else if (!S_ISREG(st.st_mode)) {
            err_set(cause, "%s is not a regular file", shown);
            rc = -E_BAD_INPUT;
        } else if ((rc = check_owner(&st, shown, cause)) == 0) {
            rc = check_writable(&st, shown, cause);
        }
        free(shown);
        goto out;
    }
out:
    if (rc == -E_NOMEM)
        err_set(cause, "cannot check %s: out of memory", path);
    walk_end(&w);
    free(parent);
    free(remaining);
    return rc;
}
