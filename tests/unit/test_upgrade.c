/* The installers' upgrade check: every decision and the version's edge cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backup.h"
#include "err.h"
#include "fsutil.h"
#include "upgrade.h"

static enum upgrade_decision
decide(const char *installed, const char *new_version, int force, const char *fragment)
{
    char *msg = NULL;
    enum upgrade_decision d = upgrade_decide(installed, new_version, force, &msg);

    assert_non_null(msg);
    if (fragment != NULL && strstr(msg, fragment) == NULL)
        fail_msg("message '%s' lacks '%s'", msg, fragment);
    free(msg);
    return d;
}

static void
test_decisions(void **state)
{
    (void)state;
    assert_int_equal(decide(NULL, "26.1.0", 0, "fresh install"), UPGRADE_FRESH);
    assert_int_equal(decide("23.1.2", "26.1.0", 0, "upgrading"), UPGRADE_ALLOWED);
    assert_int_equal(decide("23.1.10", "26.1.0", 0, NULL), UPGRADE_ALLOWED);
    assert_int_equal(decide("25.9.9", "26.1.0", 0, NULL), UPGRADE_ALLOWED);
    /* The minimum itself is allowed; just below is refused, with the way out. */
    assert_int_equal(decide("23.1.1", "26.1.0", 0, "Upgrade to 23.1.2 first"),
                     UPGRADE_REFUSED_TOO_OLD);
    assert_int_equal(decide("23.0.99", "26.1.0", 0, "Nothing was changed"),
                     UPGRADE_REFUSED_TOO_OLD);
    assert_int_equal(decide("22", "26.1.0", 1, NULL), UPGRADE_REFUSED_TOO_OLD);
    assert_int_equal(decide("26.1.0", "26.1.0", 0, "already installed"), UPGRADE_SAME);
    assert_int_equal(decide("26.1", "26.1.0", 0, NULL), UPGRADE_SAME);
    assert_int_equal(decide("26.1.1", "26.1.0", 0, "--force"), UPGRADE_REFUSED_DOWNGRADE);
    assert_int_equal(decide("27.0.0", "26.1.0", 1, "because --force"), UPGRADE_FORCED_DOWNGRADE);
    assert_int_equal(decide("v23", "26.1.0", 0, "installed version is invalid"),
                     UPGRADE_BAD_VERSION);
    assert_int_equal(decide("23.1.2", "26.x", 0, "new version is invalid"), UPGRADE_BAD_VERSION);
}

static void
test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(upgrade_exit_code(UPGRADE_FRESH), 0);
    assert_int_equal(upgrade_exit_code(UPGRADE_ALLOWED), 0);
    assert_int_equal(upgrade_exit_code(UPGRADE_SAME), 0);
    assert_int_equal(upgrade_exit_code(UPGRADE_FORCED_DOWNGRADE), 0);
    assert_int_equal(upgrade_exit_code(UPGRADE_REFUSED_TOO_OLD), 3);
    assert_int_equal(upgrade_exit_code(UPGRADE_REFUSED_DOWNGRADE), 4);
    assert_int_equal(upgrade_exit_code(UPGRADE_BAD_VERSION), 2);
}

static void
test_installed_from_state(void **state)
{
    const char *dir = "upgrade-test.tmp"; /* in ctest's working directory, on any platform */
    char *path, *version = NULL;
    const char *text = "{\"schema\": 1, \"written_by\": \"23.1.10\"}\n";

    (void)state;
    fsutil_remove_tree(dir, NULL);
    assert_int_equal(fsutil_mkdir_p(dir, 0700, NULL), 0);
    assert_int_equal(upgrade_installed_version(dir, &version, NULL), -E_NOT_FOUND);
    path = fsutil_join(dir, "state.json");
    assert_int_equal(fsutil_write_atomic(path, text, strlen(text), 0644, NULL), 0);
    assert_int_equal(upgrade_installed_version(dir, &version, NULL), 0);
    assert_string_equal(version, "23.1.10");
    free(version);
    assert_int_equal(fsutil_write_atomic(path, "{}", 2, 0644, NULL), 0);
    assert_int_equal(upgrade_installed_version(dir, &version, NULL), -E_BAD_INPUT);
    fsutil_remove_tree(dir, NULL);
    free(path);
}

/* The backup before an upgrade: a whole copy beside the state, never over an existing one. */
static void
test_backup(void **state)
{
    const char *dir = "backup-test.tmp";
    char *sub, *file, *copy = NULL, *copied, *cause = NULL;
    unsigned char *data = NULL;
    size_t len = 0;

    (void)state;
    fsutil_remove_tree(dir, NULL);
    assert_int_equal(backup_state(dir, "23.1.2", &copy, NULL), -E_NOT_FOUND);
    assert_null(copy);
    sub = fsutil_join(dir, "certs");
    file = fsutil_join(sub, "privkey.pem");
    assert_int_equal(fsutil_mkdir_p(sub, 0700, NULL), 0);
    assert_int_equal(fsutil_write_atomic(file, "key", 3, 0600, NULL), 0);
    assert_int_equal(backup_state(dir, "23.1.2", &copy, &cause), 0);
    assert_null(cause);
    assert_non_null(strstr(copy, "backup-test.tmp.bak-23.1.2-"));
    copied = fsutil_join(copy, "certs");
    free(file);
    file = fsutil_join(copied, "privkey.pem");
    assert_int_equal(fsutil_read_file(file, 100, &data, &len, NULL), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "key", 3);
    /* Never over an existing directory. */
    assert_true(backup_copy_tree(dir, copy, &cause) < 0);
    assert_non_null(cause);
    free(cause);
    fsutil_remove_tree(copy, NULL);
    fsutil_remove_tree(dir, NULL);
    free(data);
    free(file);
    free(copied);
    free(copy);
    free(sub);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_installed_from_state),
        cmocka_unit_test(test_backup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
