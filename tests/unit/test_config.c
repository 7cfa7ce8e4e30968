/* certagent.json: defaults, unknown keys, wrong types and values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "err.h"

static int
parse(const char *text, struct config *c, char ***w, size_t *nw, char **cause)
{
    assert_int_equal(config_defaults(c), 0);
    return config_parse(text, strlen(text), c, w, nw, cause);
}

static void
test_defaults(void **state)
{
    struct config c;

    (void)state;
    assert_int_equal(config_defaults(&c), 0);
    assert_string_equal(c.log_level, "info");
    assert_string_equal(c.default_key, "ec256");
    assert_int_equal(c.socket_mode, 0660);
    assert_int_equal(c.selfsigned_days, 365);
    assert_null(c.socket);
    assert_null(c.state_dir);
    config_free(&c);
}

static void
test_full_example(void **state)
{
    struct config c;
    char **w = NULL;
    size_t nw = 0;
    const char *text = "{\"socket\": \"/run/x.sock\", \"socket_group\": \"certagent\","
                       " \"socket_mode\": \"0600\", \"state_dir\": \"/srv/certs\","
                       " \"log_level\": \"debug\", \"default_key\": \"rsa3072\","
                       " \"selfsigned_days\": 90, \"max_connections\": 50}";

    (void)state;
    assert_int_equal(parse(text, &c, &w, &nw, NULL), 0);
    assert_int_equal(nw, 0);
    assert_string_equal(c.socket, "/run/x.sock");
    assert_string_equal(c.socket_group, "certagent");
    assert_int_equal(c.socket_mode, 0600);
    assert_string_equal(c.state_dir, "/srv/certs");
    assert_string_equal(c.log_level, "debug");
    assert_string_equal(c.default_key, "rsa3072");
    assert_int_equal(c.selfsigned_days, 90);
    assert_int_equal(c.max_connections, 50);
    config_free(&c);
}

static void
test_unknown_key_warns(void **state)
{
    struct config c;
    char **w = NULL;
    size_t nw = 0;

    (void)state;
    assert_int_equal(parse("{\"log_levle\": \"debug\", \"log_level\": \"warn\"}", &c, &w, &nw,
                           NULL),
                     0);
    assert_int_equal(nw, 1);
    assert_non_null(strstr(w[0], "$.log_levle"));
    assert_non_null(strstr(w[0], "unknown"));
    assert_string_equal(c.log_level, "warn");
    config_free_warnings(w, nw);
    config_free(&c);
}

static void
expect_error(const char *text, const char *fragment)
{
    struct config c;
    char *cause = NULL;

    assert_int_equal(parse(text, &c, NULL, NULL, &cause), -E_BAD_INPUT);
    assert_non_null(cause);
    if (strstr(cause, fragment) == NULL)
        fail_msg("cause '%s' lacks '%s'", cause, fragment);
    free(cause);
    config_free(&c);
}

static void
test_bad_values(void **state)
{
    (void)state;
    expect_error("{\"log_level\": 3}", "$.log_level: expected a string, got a number");
    expect_error("{\"log_level\": \"loud\"}", "$.log_level: 'loud'");
    expect_error("{\"selfsigned_days\": \"90\"}", "$.selfsigned_days: expected an integer");
    expect_error("{\"selfsigned_days\": 0}", "out of range");
    expect_error("{\"selfsigned_days\": 1.5}", "a fraction");
    expect_error("{\"socket_mode\": 660}", "$.socket_mode");
    expect_error("{\"socket_mode\": \"0999\"}", "not an octal mode");
    expect_error("{\"default_key\": \"dsa\"}", "$.default_key");
    expect_error("{\"socket\": \"\"}", "must not be empty");
    expect_error("[1, 2]", "expected an object");
    expect_error("{\"log_level\": \"info\",\n\"socket\": }", "line 2");
}

static void
test_restart_needed(void **state)
{
    struct config a, b;
    char *r;

    (void)state;
    assert_int_equal(parse("{\"log_level\": \"info\"}", &a, NULL, NULL, NULL), 0);
    assert_int_equal(parse("{\"log_level\": \"debug\", \"socket\": \"/x\"}", &b, NULL, NULL,
                           NULL),
                     0);
    r = config_restart_needed(&a, &b);
    assert_non_null(r);
    assert_string_equal(r, "socket");
    free(r);
    assert_null(config_restart_needed(&a, &a));
    config_free(&a);
    config_free(&b);
}

static void
test_docs_cover_every_key(void **state)
{
    const struct config_key_doc *docs;
    size_t n = config_key_docs(&docs);

    (void)state;
    assert_int_equal(n, 9 + 9 /* trust_* and probe* keys */);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(docs[i].name);
        assert_true(strlen(docs[i].doc) > 10);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_example),
        cmocka_unit_test(test_unknown_key_warns),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_restart_needed),
        cmocka_unit_test(test_docs_cover_every_key),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
