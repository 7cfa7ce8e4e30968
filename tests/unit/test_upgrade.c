/* The installers' upgrade check: every decision and the version's edge cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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
    assert_int_equal(decide("27.0.0", "26.1.0", 1, "because --force"),
                     UPGRADE_FORCED_DOWNGRADE);
    assert_int_equal(decide("v23", "26.1.0", 0, "installed version is invalid"),
                     UPGRADE_BAD_VERSION);
    assert_int_equal(decide("23.1.2", "26.x", 0, "new version is invalid"),
                     UPGRADE_BAD_VERSION);
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_installed_from_state),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
