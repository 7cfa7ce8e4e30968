/* The string arrays of common/strv.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "strv.h"

static void
test_dup(void **state)
{
    const char *const src[] = {"www.example.test", "example.test", ""};
    char **v = (char **)src;
    size_t n = 99;

    (void)state;
    assert_int_equal(strv_dup(&v, &n, src, 3), 0);
    assert_int_equal(n, 3);
    assert_ptr_not_equal(v[0], src[0]);
    assert_string_equal(v[0], "www.example.test");
    assert_string_equal(v[1], "example.test");
    assert_string_equal(v[2], "");
    strv_free(v, n);
    assert_int_equal(strv_dup(&v, &n, src, 0), 0);
    assert_null(v);
    assert_int_equal(n, 0);
    strv_free(NULL, 5);
}

static void
test_addf(void **state)
{
    char **v = NULL, long_name[2000];
    size_t n = 0;

    (void)state;
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(strv_addf(&v, &n, 511, "'%s' expires in %d days", "www", 5), 0);
    assert_int_equal(strv_addf(&v, &n, 511, "subject %s", long_name), 0);
    assert_int_equal(strv_addf(&v, &n, 3, "%s", "abcdef"), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "'www' expires in 5 days");
    assert_int_equal(strlen(v[1]), 511);
    assert_memory_equal(v[1], "subject xxx", 11);
    assert_string_equal(v[2], "abc");
    strv_free(v, n);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dup),
        cmocka_unit_test(test_addf),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
