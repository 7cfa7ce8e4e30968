/*
 * fsutil on POSIX: atomic writes that replace content and leave no temp
 * file (also when the write fails), exact modes, bounded reads, mkdir -p,
 * tree removal that does not follow links, publishing a directory by a link
 * (also over an old real directory), the exclusive lock, and directories
 * outside the store: walked without following links, refused when another
 * user owns or may write to them, written relative to the opened directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "fsutil.h"
#include "strv.h"
#include "tdir.h"

struct fx {
    char dir[64];
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/fsutil-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    int rc = fsutil_remove_tree(f->dir, NULL);

    free(f);
    return rc;
}

/* dir/rel; the test fails on allocation failure. */
static char *
at(const struct fx *f, const char *rel)
{
    char *p = fsutil_join(f->dir, rel);

    assert_non_null(p);
    return p;
}

static int
mode_of(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static void
assert_file_is(const char *path, const char *want)
{
    unsigned char *data = NULL;
    size_t len = 0;

    assert_int_equal(fsutil_read_file(path, 1 << 20, &data, &len, NULL), 0);
    assert_int_equal(len, strlen(want));
    assert_string_equal((char *)data, want);
    free(data);
}

static void
test_join(void **state)
{
    char *s;

    (void)state;
    s = fsutil_join("a", "b");
    assert_string_equal(s, "a/b");
    free(s);
    s = fsutil_join("/var/lib/", "x");
    assert_string_equal(s, "/var/lib/x");
    free(s);
}

static void
test_write_atomic_replaces_content_and_mode(void **state)
{
    struct fx *f = *state;
    char *p = at(f, "state.json"), names[256];
    mode_t old = umask(077);

    assert_int_equal(fsutil_write_atomic(p, "first\n", 6, 0600, NULL), 0);
    assert_file_is(p, "first\n");
    assert_int_equal(mode_of(p), 0600);
    /* The umask (077 here) narrows nothing that was asked for. */
    assert_int_equal(fsutil_write_atomic(p, "second, longer\n", 15, 0644, NULL), 0);
    umask(old);
    assert_file_is(p, "second, longer\n");
    assert_int_equal(mode_of(p), 0644);
    assert_int_equal(fsutil_write_atomic(p, "", 0, 0644, NULL), 0);
    assert_file_is(p, "");
    /* No temp file stays next to it. */
    tdir_list(f->dir, names, sizeof(names));
    assert_string_equal(names, "state.json");
    free(p);
}

static void
test_write_atomic_failure_leaves_old_content_and_no_temp(void **state)
{
    struct fx *f = *state;
    char *p = at(f, "cert.pem"), *sub = at(f, "sub"), *in_sub = at(f, "nodir/cert.pem");
    char *cause = NULL, names[256];
    int status;
    pid_t pid;

    assert_int_equal(fsutil_write_atomic(p, "OLD\n", 4, 0644, NULL), 0);
    /*
     * A write that fails half way (a file size limit, as a full disk would):
     * the old content stays, the temp file goes, the cause names the file.
     */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static char big[65536];
        struct rlimit rl = {4096, 4096};
        char *why = NULL;
        int rc;

        memset(big, 'x', sizeof(big));
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(2);
        rc = fsutil_write_atomic(p, big, sizeof(big), 0644, &why);
        _exit(rc == -E_TOO_BIG && why != NULL && strstr(why, p) != NULL &&
                      strstr(why, "File too large") != NULL
                  ? 0
                  : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_file_is(p, "OLD\n");
    tdir_list(f->dir, names, sizeof(names));
    assert_string_equal(names, "cert.pem");

    /* A directory in the way: the rename fails, the temp file is removed. */
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_not_equal(fsutil_write_atomic(sub, "x", 1, 0644, &cause), 0);
    assert_non_null(strstr(cause, sub));
    tdir_list(f->dir, names, sizeof(names));
    assert_string_equal(names, "cert.pem sub");

    /* A missing directory: not found, and the message names the file. */
    assert_int_equal(fsutil_write_atomic(in_sub, "x", 1, 0644, &cause), -E_NOT_FOUND);
    assert_non_null(strstr(cause, in_sub));
    assert_non_null(strstr(cause, "No such file or directory"));
    free(cause);
    free(p);
    free(sub);
    free(in_sub);
}

static void
test_write_new_is_exclusive(void **state)
{
    struct fx *f = *state;
    char *p = at(f, "privkey.pem"), *cause = NULL;

    assert_int_equal(fsutil_write_new(p, "KEY\n", 4, 0600, NULL), 0);
    assert_int_equal(mode_of(p), 0600);
    assert_int_equal(fsutil_write_new(p, "OTHER\n", 6, 0600, &cause), -E_EXISTS);
    assert_non_null(strstr(cause, p));
    assert_file_is(p, "KEY\n");
    free(cause);
    free(p);
}

static void
test_read_file_is_bounded(void **state)
{
    struct fx *f = *state;
    char *p = at(f, "f"), *missing = at(f, "missing"), *fifo = at(f, "fifo"), *cause = NULL;
    unsigned char *data = (unsigned char *)"untouched";
    size_t len = 99;

    assert_int_equal(fsutil_write_atomic(p, "0123456789", 10, 0644, NULL), 0);
    assert_int_equal(fsutil_read_file(p, 10, &data, &len, NULL), 0);
    assert_int_equal(len, 10);
    assert_int_equal(data[10], '\0');
    free(data);
    /* One byte over the limit is refused before anything is allocated. */
    assert_int_equal(fsutil_read_file(p, 9, &data, &len, &cause), -E_TOO_BIG);
    assert_null(data);
    assert_int_equal(len, 0);
    assert_non_null(strstr(cause, p));
    assert_int_equal(fsutil_read_file(missing, 10, &data, &len, &cause), -E_NOT_FOUND);
    assert_non_null(strstr(cause, missing));
    /* Not a regular file: refused, and a FIFO does not hang the reader. */
    assert_int_equal(fsutil_read_file(f->dir, 10, &data, &len, NULL), -E_BAD_INPUT);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(fsutil_read_file(fifo, 10, &data, &len, NULL), -E_BAD_INPUT);
    free(cause);
    free(p);
    free(missing);
    free(fifo);
}

static void
test_mkdir_p(void **state)
{
    struct fx *f = *state;
    char *deep = at(f, "a/b/c"), *a = at(f, "a"), *file = at(f, "file");
    char *under_file = at(f, "file/x"), *cause = NULL;

    assert_int_equal(fsutil_mkdir_p(deep, 0700, NULL), 0);
    assert_true(fsutil_is_dir(deep));
    assert_int_equal(mode_of(a), 0700);
    assert_int_equal(mode_of(deep), 0700);
    /* Existing is fine. */
    assert_int_equal(fsutil_mkdir_p(deep, 0700, NULL), 0);
    assert_int_equal(fsutil_mkdir(deep, 0700, NULL), -E_EXISTS);
    /* A file in the way is an error that names it. */
    assert_int_equal(fsutil_write_atomic(file, "x", 1, 0644, NULL), 0);
    assert_int_not_equal(fsutil_mkdir_p(file, 0700, &cause), 0);
    assert_non_null(strstr(cause, file));
    assert_int_not_equal(fsutil_mkdir_p(under_file, 0700, &cause), 0);
    assert_non_null(strstr(cause, "file"));
    free(cause);
    free(deep);
    free(a);
    free(file);
    free(under_file);
}

static void
test_rename_and_remove_tree_do_not_follow_links(void **state)
{
    struct fx *f = *state;
    char *outside = at(f, "outside"), *kept = at(f, "outside/kept"), *tree = at(f, "tree");
    char *deep = at(f, "tree/d1/d2"), *file = at(f, "tree/d1/d2/f");
    char *link = at(f, "tree/d1/link"), *from = at(f, "from"), *to = at(f, "to");

    assert_int_equal(fsutil_mkdir_p(outside, 0700, NULL), 0);
    assert_int_equal(fsutil_write_new(kept, "keep me", 7, 0644, NULL), 0);
    assert_int_equal(fsutil_mkdir_p(deep, 0700, NULL), 0);
    assert_int_equal(fsutil_write_new(file, "x", 1, 0600, NULL), 0);
    assert_int_equal(symlink(outside, link), 0);
    assert_int_equal(fsutil_remove_tree(tree, NULL), 0);
    assert_false(fsutil_exists(tree));
    /* The link went, not what it pointed to. */
    assert_file_is(kept, "keep me");
    /* A missing path is not an error. */
    assert_int_equal(fsutil_remove_tree(tree, NULL), 0);

    assert_int_equal(fsutil_write_new(from, "moved", 5, 0644, NULL), 0);
    assert_int_equal(fsutil_rename(from, to, NULL), 0);
    assert_false(fsutil_exists(from));
    assert_file_is(to, "moved");
    assert_int_equal(fsutil_rename(from, to, NULL), -E_NOT_FOUND);
    free(outside);
    free(kept);
    free(tree);
    free(deep);
    free(file);
    free(link);
    free(from);
    free(to);
}

static void
test_publish_dir_replaces_link_and_old_directory(void **state)
{
    struct fx *f = *state;
    char *live = at(f, "live"), *link = at(f, "live/web"), *seen = at(f, "live/web/cert.pem");
    char *v1 = at(f, "certs/web/v1"), *v2 = at(f, "certs/web/v2");
    char *c1 = at(f, "certs/web/v1/cert.pem"), *c2 = at(f, "certs/web/v2/cert.pem");
    char *old_file = at(f, "live/web/old.pem"), *target = NULL, *cause = NULL, names[256];

    assert_int_equal(fsutil_mkdir_p(v1, 0700, NULL), 0);
    assert_int_equal(fsutil_mkdir_p(v2, 0700, NULL), 0);
    assert_int_equal(fsutil_mkdir_p(live, 0755, NULL), 0);
    assert_int_equal(fsutil_write_new(c1, "ONE", 3, 0644, NULL), 0);
    assert_int_equal(fsutil_write_new(c2, "TWO", 3, 0644, NULL), 0);

    assert_int_equal(fsutil_read_published(link, &target, NULL), -E_NOT_FOUND);
    assert_int_equal(fsutil_publish_dir("../certs/web/v1", link, NULL), 0);
    assert_true(fsutil_is_published(link));
    assert_file_is(seen, "ONE");
    assert_int_equal(fsutil_publish_dir("../certs/web/v2", link, NULL), 0);
    assert_file_is(seen, "TWO");
    assert_int_equal(fsutil_read_published(link, &target, NULL), 0);
    assert_string_equal(target, "../certs/web/v2");
    free(target);
    tdir_list(live, names, sizeof(names));
    assert_string_equal(names, "web");

    /* A real directory there (an older layout) is replaced by the link. */
    assert_int_equal(fsutil_unpublish(link, NULL), 0);
    assert_false(fsutil_exists(link));
    assert_int_equal(fsutil_unpublish(link, NULL), 0);
    assert_int_equal(fsutil_mkdir(link, 0755, NULL), 0);
    assert_int_equal(fsutil_write_new(old_file, "OLD", 3, 0644, NULL), 0);
    assert_false(fsutil_is_published(link));
    assert_int_equal(fsutil_read_published(link, &target, &cause), -E_BAD_INPUT);
    assert_int_equal(fsutil_unpublish(link, &cause), -E_BAD_INPUT);
    assert_int_equal(fsutil_publish_dir("../certs/web/v1", link, NULL), 0);
    assert_true(fsutil_is_published(link));
    assert_file_is(seen, "ONE");
    assert_false(fsutil_exists(old_file));
    tdir_list(live, names, sizeof(names));
    assert_string_equal(names, "web");
    free(cause);
    free(live);
    free(link);
    free(seen);
    free(v1);
    free(v2);
    free(c1);
    free(c2);
    free(old_file);
}

/* Runs fsutil_lock on path in a child process; returns its result. */
static int
lock_in_child(const char *path)
{
    int status, h = -1;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        int rc = fsutil_lock(path, &h, NULL);

        _exit(rc == 0 ? 0 : rc == -E_BUSY ? 1 : 2);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status) == 0 ? 0 : WEXITSTATUS(status) == 1 ? -E_BUSY : -E_IO;
}

static void
test_lock_is_exclusive(void **state)
{
    struct fx *f = *state;
    char *p = at(f, ".lock"), *cause = NULL;
    int h = -1, h2 = -1;

    assert_int_equal(fsutil_lock(p, &h, NULL), 0);
    assert_true(h >= 0);
    assert_int_equal(mode_of(p), 0600);
    /* Another process is refused; so is a second lock in this one. */
    assert_int_equal(lock_in_child(p), -E_BUSY);
    assert_int_equal(fsutil_lock(p, &h2, &cause), -E_BUSY);
    assert_int_equal(h2, -1);
    assert_non_null(strstr(cause, p));
    /* The first lock is still held after the refused attempt. */
    assert_int_equal(lock_in_child(p), -E_BUSY);
    fsutil_unlock(h);
    assert_int_equal(lock_in_child(p), 0);
    free(cause);
    free(p);
}

/* Directories outside the store: fsutil_dir_open and friends. */

static void
test_dir_open_creates_and_writes(void **state)
{
    struct fx *f = *state;
    char *d = at(f, "a/b"), *file = at(f, "a/b/privkey.pem"), *cause = NULL, names[256];
    struct fsutil_dir *dir = NULL;
    char **v = NULL;
    size_t n = 0;

    /* Missing without FSUTIL_DIR_CREATE: not found, nothing made. */
    assert_int_equal(fsutil_dir_open(d, 0, 0755, &dir, &cause), -E_NOT_FOUND);
    assert_null(dir);
    assert_non_null(strstr(cause, "does not exist"));
    free(cause);
    cause = NULL;
    tdir_list(f->dir, names, sizeof(names));
    assert_string_equal(names, "");
    /* Created with exactly the mode asked, whatever the umask. */
    umask(027);
    assert_int_equal(fsutil_dir_open(d, FSUTIL_DIR_CREATE, 0755, &dir, &cause), 0);
    umask(022);
    assert_int_equal(mode_of(d), 0755);
    assert_string_equal(fsutil_dir_path(dir), d);
    assert_int_equal(fsutil_dir_write(dir, "privkey.pem", "key", 3, 0600, &cause), 0);
    assert_int_equal(fsutil_dir_write(dir, "privkey.pem", "key2", 4, 0600, &cause), 0);
    assert_file_is(file, "key2");
    assert_int_equal(mode_of(file), 0600);
    tdir_list(d, names, sizeof(names));
    assert_string_equal(names, "privkey.pem");
    assert_int_equal(fsutil_dir_list(dir, &v, &n, &cause), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0], "privkey.pem");
    strv_free(v, n);
    /* A name with a separator is not a file of this directory. */
    assert_int_equal(fsutil_dir_write(dir, "../x", "x", 1, 0600, &cause), -E_BAD_INPUT);
    free(cause);
    cause = NULL;
    assert_int_equal(fsutil_dir_remove(dir, "privkey.pem", &cause), 0);
    assert_int_equal(fsutil_dir_remove(dir, "privkey.pem", &cause), 0);
    assert_false(fsutil_exists(file));
    fsutil_dir_free(dir);
    fsutil_dir_free(NULL);
    /* Relative paths are refused. */
    assert_int_equal(fsutil_dir_open("tmp/x", 0, 0755, &dir, &cause), -E_BAD_INPUT);
    free(cause);
    free(d);
    free(file);
}

static void
test_dir_open_refuses_links(void **state)
{
    struct fx *f = *state;
    char *real = at(f, "protected"), *link = at(f, "certs"), *under = at(f, "certs/sub");
    char *victim = at(f, "protected/victim"), *cause = NULL, names[256];
    struct fsutil_dir *dir = NULL;

    assert_int_equal(mkdir(real, 0700), 0);
    assert_int_equal(fsutil_write_atomic(victim, "old", 3, 0600, NULL), 0);
    assert_int_equal(symlink(real, link), 0);
    /* The link is refused as the last directory and on the way, and nothing is created. */
    assert_int_equal(fsutil_dir_open(link, FSUTIL_DIR_CREATE, 0755, &dir, &cause), -E_DENIED);
    assert_null(dir);
    assert_non_null(strstr(cause, link));
    assert_non_null(strstr(cause, "is a symbolic link"));
    free(cause);
    cause = NULL;
    assert_int_equal(fsutil_dir_open(under, FSUTIL_DIR_CREATE, 0755, &dir, &cause), -E_DENIED);
    assert_non_null(strstr(cause, "is a symbolic link"));
    free(cause);
    cause = NULL;
    tdir_list(real, names, sizeof(names));
    assert_string_equal(names, "victim");
    /* A link at the file's name is replaced, never written through. */
    assert_int_equal(fsutil_dir_open(f->dir, 0, 0755, &dir, &cause), 0);
    assert_int_equal(unlink(link), 0);
    assert_int_equal(symlink(victim, link), 0);
    assert_int_equal(fsutil_dir_write(dir, "certs", "new", 3, 0644, &cause), 0);
    assert_file_is(victim, "old");
    assert_int_equal(mode_of(link) & 0777, 0644);
    assert_file_is(link, "new");
    fsutil_dir_free(dir);
    free(real);
    free(link);
    free(under);
    free(victim);
}

static void
test_dir_open_refuses_writable_and_foreign(void **state)
{
    struct fx *f = *state;
    char *d = at(f, "www"), *sub = at(f, "www/site"), *dotdot = at(f, "www/site/../site");
    char *cause = NULL;
    struct fsutil_dir *dir = NULL;

    assert_int_equal(mkdir(d, 0755), 0);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(chmod(d, 0775), 0);
    assert_int_equal(fsutil_dir_open(sub, 0, 0755, &dir, &cause), -E_DENIED);
    assert_non_null(strstr(cause, "www is writable by group (mode 0775)"));
    free(cause);
    cause = NULL;
    assert_int_equal(chmod(d, 0757), 0);
    assert_int_equal(fsutil_dir_open(sub, 0, 0755, &dir, &cause), -E_DENIED);
    assert_non_null(strstr(cause, "www is writable by others (mode 0757)"));
    free(cause);
    cause = NULL;
    /* Sticky and world-writable (like /tmp): fine on the way, not as the last directory. */
    assert_int_equal(chmod(d, 01777), 0);
    assert_int_equal(fsutil_dir_open(sub, 0, 0755, &dir, &cause), 0);
    fsutil_dir_free(dir);
    dir = NULL;
    assert_int_equal(fsutil_dir_open(d, 0, 0755, &dir, &cause), -E_DENIED);
    assert_non_null(strstr(cause, "www is writable by group and others (mode 1777)"));
    free(cause);
    cause = NULL;
    assert_int_equal(chmod(d, 0755), 0);
    /* ".." goes to the parent of what was walked. */
    assert_int_equal(fsutil_dir_open(dotdot, 0, 0755, &dir, &cause), 0);
    assert_string_equal(fsutil_dir_path(dir), sub);
    fsutil_dir_free(dir);
    dir = NULL;
    if (geteuid() == 0) {
        /* Another user's directory (root only can make one). */
        assert_int_equal(chown(sub, 65534, 65534), 0);
        assert_int_equal(fsutil_dir_open(sub, 0, 0755, &dir, &cause), -E_DENIED);
        assert_non_null(strstr(cause, "site is owned by uid 65534"));
        free(cause);
        cause = NULL;
        /* In a sticky directory, another user's directory is refused on the way too. */
        assert_int_equal(chmod(d, 01777), 0);
        free(dotdot);
        dotdot = at(f, "www/site/x");
        assert_int_equal(fsutil_dir_open(dotdot, FSUTIL_DIR_CREATE, 0755, &dir, &cause),
                         -E_DENIED);
        assert_non_null(strstr(cause, "site is owned by uid 65534"));
        assert_false(fsutil_exists(dotdot));
        free(cause);
    }
    free(d);
    free(sub);
    free(dotdot);
}

static void
test_write_safe(void **state)
{
    struct fx *f = *state;
    char *p = at(f, "out/cert.pem"), *rel = at(f, "rel.pem"), *cause = NULL, cwd[512];

    assert_int_equal(fsutil_write_safe(p, 0, "x", 1, 0644, &cause), -E_NOT_FOUND);
    free(cause);
    cause = NULL;
    assert_int_equal(fsutil_write_safe(p, FSUTIL_DIR_CREATE, "x", 1, 0644, &cause), 0);
    assert_file_is(p, "x");
    /* A relative path is taken from the working directory. */
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(f->dir), 0);
    assert_int_equal(fsutil_write_safe("rel.pem", 0, "y", 1, 0600, &cause), 0);
    assert_int_equal(chdir(cwd), 0);
    assert_file_is(rel, "y");
    assert_int_equal(mode_of(rel), 0600);
    free(p);
    free(rel);
}

static void
test_check_program(void **state)
{
    struct fx *f = *state;
    char *real = at(f, "real"), *prog = at(f, "real/hook"), *bin = at(f, "bin");
    char *via_dir = at(f, "bin/hook"), *alias = at(f, "real/alias"), *open_dir = at(f, "open");
    char *open_link = at(f, "open/hook"), *cause = NULL;

    assert_int_equal(mkdir(real, 0755), 0);
    assert_int_equal(fsutil_write_atomic(prog, "#!/bin/sh\n", 10, 0755, NULL), 0);
    assert_int_equal(fsutil_check_program(prog, &cause), 0);
    /* Links in checked directories are followed: bin -> real, alias -> hook. */
    assert_int_equal(symlink("real", bin), 0);
    assert_int_equal(symlink("hook", alias), 0);
    assert_int_equal(fsutil_check_program(via_dir, &cause), 0);
    assert_int_equal(fsutil_check_program(alias, &cause), 0);
    assert_int_equal(fsutil_check_program("/bin/sh", &cause), 0);
    /* A program that group may write to is refused, also through links. */
    assert_int_equal(chmod(prog, 0775), 0);
    assert_int_equal(fsutil_check_program(alias, &cause), -E_DENIED);
    assert_non_null(strstr(cause, "hook is writable by group (mode 0775)"));
    free(cause);
    cause = NULL;
    assert_int_equal(chmod(prog, 0755), 0);
    /* A link in a directory others may write to is not followed. */
    assert_int_equal(mkdir(open_dir, 0777), 0);
    assert_int_equal(chmod(open_dir, 0777), 0);
    assert_int_equal(symlink(prog, open_link), 0);
    assert_int_equal(fsutil_check_program(open_link, &cause), -E_DENIED);
    assert_non_null(strstr(cause, "open is writable by group and others (mode 0777)"));
    free(cause);
    cause = NULL;
    /* A directory is no program. */
    assert_int_equal(fsutil_check_program(real, &cause), -E_BAD_INPUT);
    free(cause);
    free(real);
    free(prog);
    free(bin);
    free(via_dir);
    free(alias);
    free(open_dir);
    free(open_link);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join),
        cmocka_unit_test_setup_teardown(test_write_atomic_replaces_content_and_mode, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_atomic_failure_leaves_old_content_and_no_temp,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_new_is_exclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_file_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_and_remove_tree_do_not_follow_links, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_publish_dir_replaces_link_and_old_directory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lock_is_exclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_open_creates_and_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_open_refuses_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_open_refuses_writable_and_foreign, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_safe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_program, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
