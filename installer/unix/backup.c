/*
 * Copying the state directory on Unix: directories, regular files and
 * symlinks (live/NAME) with their modes, owners and times; sockets, other
 * special files and the agent's .lock are not state and are skipped.
 */
#include "../backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fsutil.h"

static int
io_error(char **cause, const char *what, const char *path)
{
    int err = errno;

    err_set(cause, "cannot %s %s: %s", what, path, strerror(err));
    return err == ENOSPC ? -E_IO : err == EACCES || err == EPERM ? -E_DENIED : -E_IO;
}

/* Owner and times of dst from st; chown only works for root, which the installers are. */
static void
keep_owner(int fd, const struct stat *st)
{
    struct timespec times[2] = {st->st_atim, st->st_mtim};

    if (geteuid() == 0 && fchown(fd, st->st_uid, st->st_gid) != 0) {
        /* The mode below still keeps the copy private. */
    }
    futimens(fd, times);
}

static int
copy_file(const char *src, const char *dst, const struct stat *st, char **cause)
{
    char buf[65536];
    int in = -1, out = -1, rc = 0;
    ssize_t n;

    if ((in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return io_error(cause, "open", src);
    /* Created private, given the source's mode once the owner is right. */
    if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
        rc = io_error(cause, "create", dst);
        goto out;
    }
    while ((n = read(in, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = io_error(cause, "read", src);
            goto out;
        }
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));

            if (w < 0) {
                if (errno == EINTR)
                    continue;
                rc = io_error(cause, "write", dst);
                goto out;
            }
            done += w;
        }
    }
    keep_owner(out, st);
    if (fchmod(out, st->st_mode & 07777) != 0)
        rc = io_error(cause, "set the mode of", dst);
    else if (fsync(out) != 0)
        rc = io_error(cause, "fsync", dst);
out:
    if (out >= 0 && close(out) != 0 && rc == 0)
        rc = io_error(cause, "close", dst);
    if (in >= 0)
        close(in);
    return rc;
}

static int
copy_link(const char *src, const char *dst, const struct stat *st, char **cause)
{
    char target[4096];
    ssize_t n = readlink(src, target, sizeof(target) - 1);

    if (n < 0)
        return io_error(cause, "read the link", src);
    target[n] = '\0';
    if (symlink(target, dst) != 0)
        return io_error(cause, "create the link", dst);
    if (geteuid() == 0 && lchown(dst, st->st_uid, st->st_gid) != 0) {
        /* A root-owned link is harmless. */
    }
    return 0;
}

static int copy_dir(const char *src, const char *dst, const struct stat *st, char **cause);

static int
copy_entry(const char *src, const char *dst, char **cause)
{
    struct stat st;

    if (lstat(src, &st) != 0)
        return io_error(cause, "read", src);
    if (S_ISDIR(st.st_mode))
        return copy_dir(src, dst, &st, cause);
    if (S_ISREG(st.st_mode))
        return copy_file(src, dst, &st, cause);
    if (S_ISLNK(st.st_mode))
        return copy_link(src, dst, &st, cause);
    return 0; /* a socket or fifo: not state */
}

static int
copy_dir(const char *src, const char *dst, const struct stat *st, char **cause)
{
    DIR *d = NULL;
    struct dirent *e;
    int rc = 0, fd;

    /* Private while it fills; its own mode at the end. */
    if (mkdir(dst, 0700) != 0)
        return io_error(cause, "create", dst);
    if ((d = opendir(src)) == NULL)
        return io_error(cause, "read", src);
    for (;;) {
        char *from, *to;

        errno = 0;
        if ((e = readdir(d)) == NULL) {
            if (errno != 0)
                rc = io_error(cause, "read", src);
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, ".lock") == 0)
            continue;
        from = fsutil_join(src, e->d_name);
        to = fsutil_join(dst, e->d_name);
        rc = from != NULL && to != NULL ? copy_entry(from, to, cause) : -E_NOMEM;
        free(from);
        free(to);
        if (rc != 0)
            break;
    }
    closedir(d);
    if (rc != 0)
        return rc;
    if ((fd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return io_error(cause, "open", dst);
    keep_owner(fd, st);
    if (fchmod(fd, st->st_mode & 07777) != 0)
        rc = io_error(cause, "set the mode of", dst);
    else if (fsync(fd) != 0)
        rc = io_error(cause, "fsync", dst);
    close(fd);
    return rc;
}

int
backup_copy_tree(const char *src, const char *dst, char **cause)
{
    struct stat st;

    if (stat(src, &st) != 0)
        return io_error(cause, "read", src);
    if (!S_ISDIR(st.st_mode)) {
        err_set(cause, "%s is not a directory", src);
        return -E_BAD_INPUT;
    }
    return copy_dir(src, dst, &st, cause);
}
