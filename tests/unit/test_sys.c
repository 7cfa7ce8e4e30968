/*
 * The config file check of common/unix/sys.c (sys_config_check) and its use
 * by config_load: a config another user could write is refused, naming the
 * file and its owner; the agent's own and root's are read.  The attacks
 * (a file or directory owned by nobody, or writable by others) need root to
 * set up with chown; without root those cases are skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "err.h"
#include "sys.h"

struct fixture {
    char dir[64];
    char file[128];
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    FILE *fp;

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/certagent-sys-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->file, sizeof(f->file), "%s/certagent.json", f->dir);
    if ((fp = fopen(f->file, "w")) == NULL)
        return -1;
    fputs("{\"log_level\": \"debug\"}\n", fp);
    fclose(fp);
    chmod(f->file, 0644);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    unlink(f->file);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* sys_config_check(path) must be -E_DENIED with words holding each of the needles. */
static void
assert_refused(const char *path, const char *needle1, const char *needle2)
{
    char *cause = NULL;

    assert_int_equal(sys_config_check(path, &cause), -E_DENIED);
    assert_non_null(cause);
    if (strstr(cause, needle1) == NULL || strstr(cause, needle2) == NULL)
        fail_msg("'%s' lacks '%s' or '%s'", cause, needle1, needle2);
    free(cause);
}

static void
test_own_file_accepted(void **state)
{
    struct fixture *f = *state;
    struct config c;
    char **warnings = NULL, *cause = NULL;
    size_t nwarnings = 0;

    assert_int_equal(sys_config_check(f->file, &cause), 0);
    assert_null(cause);
    /* Group-writable is fine when the group is the agent's own. */
    assert_int_equal(chown(f->file, (uid_t)-1, getegid()), 0);
    assert_int_equal(chmod(f->file, 0664), 0);
    assert_int_equal(sys_config_check(f->file, &cause), 0);
    assert_int_equal(config_defaults(&c), 0);
    assert_int_equal(config_load(f->file, &c, &warnings, &nwarnings, &cause), 0);
    assert_string_equal(c.log_level, "debug");
    config_free(&c);
    config_free_warnings(warnings, nwarnings);
}

static void
test_missing_and_odd(void **state)
{
    struct fixture *f = *state;
    char missing[160], *cause = NULL;

    snprintf(missing, sizeof(missing), "%s/nothing.json", f->dir);
    assert_int_equal(sys_config_check(missing, &cause), 0); /* reading it reports that */
    assert_int_equal(sys_config_check(f->dir, &cause), -E_BAD_INPUT);
    assert_non_null(strstr(cause, "not a regular file"));
    free(cause);
}

static void
test_world_writable_refused(void **state)
{
    struct fixture *f = *state;
    struct config c;
    char **warnings = NULL, *cause = NULL;
    size_t nwarnings = 0;

    assert_int_equal(chmod(f->file, 0666), 0);
    assert_refused(f->file, f->file, "writable by every user (mode 0666)");
    /* config_load refuses it before reading. */
    assert_int_equal(config_defaults(&c), 0);
    assert_int_equal(config_load(f->file, &c, &warnings, &nwarnings, &cause), -E_DENIED);
    assert_non_null(strstr(cause, "deploy_hook"));
    free(cause);
    config_free(&c);
    config_free_warnings(warnings, nwarnings);
    /* A directory others may write lets them swap the file; a sticky one does not. */
    assert_int_equal(chmod(f->file, 0644), 0);
    assert_int_equal(chmod(f->dir, 0777), 0);
    assert_refused(f->file, "which holds config file", "writable by every user (mode 0777)");
    assert_int_equal(chmod(f->dir, 01777), 0);
    assert_int_equal(sys_config_check(f->file, &cause), 0);
    assert_int_equal(chmod(f->dir, 0700), 0);
}

static void
test_other_owner_refused(void **state)
{
    struct fixture *f = *state;

    if (geteuid() != 0) {
        print_message("skipped: chown needs root\n");
        return;
    }
    /* A file nobody owns: nobody could write a deploy_hook that root runs. */
    assert_int_equal(chown(f->file, 65534, (gid_t)-1), 0);
    assert_refused(f->file, f->file, "uid 65534");
    assert_int_equal(chown(f->file, 0, 0), 0);
    /* Writable by a group other than root's. */
    assert_int_equal(chown(f->file, (uid_t)-1, 65534), 0);
    assert_int_equal(chmod(f->file, 0664), 0);
    assert_refused(f->file, "writable by group", "gid 65534");
    assert_int_equal(chown(f->file, (uid_t)-1, 0), 0);
    assert_int_equal(sys_config_check(f->file, NULL), 0);
    /* A directory nobody owns. */
    assert_int_equal(chown(f->dir, 65534, (gid_t)-1), 0);
    assert_refused(f->file, "which holds config file", "uid 65534");
    assert_int_equal(chown(f->dir, 0, 0), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_own_file_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_odd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_world_writable_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_owner_refused, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
