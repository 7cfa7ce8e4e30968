/* YEAR.MINOR.PATCH parsing and numeric comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "version.h"

static int
cmp(const char *a, const char *b)
{
    struct version va, vb;

    assert_int_equal(version_parse(a, &va, NULL), 0);
    assert_int_equal(version_parse(b, &vb, NULL), 0);
    return version_compare(&va, &vb);
}

static void
test_compare(void **state)
{
    (void)state;
    assert_true(cmp("23.1.10", "23.1.2") > 0);
    assert_true(cmp("23.1.2", "23.1.10") < 0);
    assert_int_equal(cmp("23.1", "23.1.0"), 0);
    assert_int_equal(cmp("26", "26.0.0"), 0);
    assert_true(cmp("26.1.0", "23.1.2") > 0);
    assert_true(cmp("23.2.0", "23.1.99") > 0);
    assert_true(cmp("100.0.0", "99.99.99") > 0);
    assert_int_equal(cmp("023.01.002", "23.1.2"), 0);
}

static void
test_rejects(void **state)
{
    static const char *const bad[] = {"",   "v23.1.2", "23..1",      "23.1.2.3", "23.1.",
                                      ".1", "23.a.1",  "23.1.2-rc1", " 23.1.2",  "1234567890.1.1"};
    struct version v;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *cause = NULL;

        assert_int_equal(version_parse(bad[i], &v, &cause), -E_BAD_INPUT);
        assert_non_null(cause);
        free(cause);
    }
    assert_int_equal(version_parse(NULL, &v, NULL), -E_BAD_INPUT);
}

static void
test_parts(void **state)
{
    struct version v;

    (void)state;
    assert_int_equal(version_parse("26.1.0", &v, NULL), 0);
    assert_int_equal(v.year, 26);
    assert_int_equal(v.minor, 1);
    assert_int_equal(v.patch, 0);
    assert_int_equal(version_parse(CERTAGENT_VERSION, &v, NULL), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_parts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
