/* certagent.json: defaults, unknown keys, wrong types and values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config-cluster.h"
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
    assert_int_equal(c.renew_after_revoke, 1); /* a revoked ACME certificate renews at once */
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
    assert_int_equal(
        parse("{\"log_levle\": \"debug\", \"log_level\": \"warn\"}", &c, &w, &nw, NULL), 0);
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
    assert_int_equal(parse("{\"log_level\": \"debug\", \"socket\": \"/x\"}", &b, NULL, NULL, NULL),
                     0);
    r = config_restart_needed(&a, &b);
    assert_non_null(r);
    assert_string_equal(r, "socket");
    free(r);
    assert_null(config_restart_needed(&a, &a));
    config_free(&a);
    config_free(&b);
}

/* A reload takes exactly the keys the table marks reloadable; the rest keep running values. */
static void
test_take_reloadable(void **state)
{
    struct config run, loaded;
    const struct config_key_doc *docs;
    size_t ndocs = config_key_docs(&docs);
    char *r;

    (void)state;
    assert_int_equal(parse("{\"log_level\": \"info\", \"socket\": \"/run/a.sock\", "
                           "\"warn_days\": 30, \"probes\": [\"https://a:1\"]}",
                           &run, NULL, NULL, NULL),
                     0);
    assert_int_equal(parse("{\"log_level\": \"debug\", \"socket\": \"/run/b.sock\", "
                           "\"warn_days\": 9, \"probes\": [\"https://b:2\", \"https://c:3\"], "
                           "\"metrics_listen\": \"127.0.0.1:9\", \"hook_timeout\": 7, "
                           "\"http01_listen\": [\"127.0.0.1:8\"]}",
                           &loaded, NULL, NULL, NULL),
                     0);
    config_take_reloadable(&run, &loaded);
    assert_string_equal(run.log_level, "debug");
    assert_int_equal(run.warn_days, 9);
    assert_int_equal(run.hook_timeout, 7);
    assert_int_equal(run.probes.n, 2);
    assert_string_equal(run.probes.items[1], "https://c:3");
    assert_int_equal(run.http01_listen.n, 1);
    /* Not reloadable: the running values stay, the loaded ones are still there to compare. */
    assert_string_equal(run.socket, "/run/a.sock");
    assert_null(run.metrics_listen);
    assert_string_equal(loaded.socket, "/run/b.sock");
    r = config_restart_needed(&run, &loaded);
    assert_non_null(r);
    assert_string_equal(r, "socket, metrics_listen");
    free(r);
    /* The replaced values went to loaded, so that freeing it frees them. */
    assert_string_equal(loaded.log_level, "info");
    assert_int_equal(loaded.probes.n, 1);
    /* Every reloadable key is one the table knows: the doc table says the same. */
    for (size_t i = 0; i < ndocs; i++)
        if (strcmp(docs[i].name, "socket") == 0 || strcmp(docs[i].name, "metrics_listen") == 0)
            assert_int_equal(docs[i].reloadable, 0);
    config_free(&run);
    config_free(&loaded);
}

static void
test_docs_cover_every_key(void **state)
{
    const struct config_key_doc *docs;
    size_t n = config_key_docs(&docs);

    struct config c;

    (void)state;
    assert_int_equal(
        n, 15 + 10 /* trust_* and probe* keys */ + 9 /* renewal and hooks */ +
               4 /* status, metrics, logs */ + 2 /* ipc_frame_timeout and acme_http_timeout */ +
               1 /* operate_group */ + 4 /* responder_* connection limits */ +
               5 /* IPC limits: hello, idle, per uid, reserved, partial frames */ +
               5 /* dashboard_* */ + 1 /* notify */ +
               2 /* served_check_interval and served_grace */ + 1 /* cluster (the fleet) */ +
               5 /* fallback_cas, fallback_after, on_expiry, last_resort_* */ + 1 /* canaries */);
    /* The ACME keys: a default CA, no dns-01 hook until one is configured. */
    assert_int_equal(config_defaults(&c), 0);
    assert_string_equal(c.default_ca, "letsencrypt");
    assert_null(c.dns01_hook);
    assert_int_equal(c.acme_cas.n, 0);
    config_free(&c);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(docs[i].name);
        assert_true(strlen(docs[i].doc) > 10);
    }
}

/* acme_cas: CAs by name with a directory URL and an optional trust file; errors name the CA. */
static void
test_acme_cas(void **state)
{
    static const char good[] =
        "{\"acme_cas\": {\"step\": {\"directory\": \"https://ca.internal/acme/dir\", "
        "\"trust\": \"/etc/ssl/step-root.pem\"}, \"other\": {\"directory\": "
        "\"https://other.test/dir\"}}}";
    static const char *const bad[] = {
        "{\"acme_cas\": []}",
        "{\"acme_cas\": {\"x\": \"https://x.test/dir\"}}",
        "{\"acme_cas\": {\"x\": {\"trust\": \"/f\"}}}",
        "{\"acme_cas\": {\"x\": {\"directory\": \"ftp://x.test/dir\"}}}",
        "{\"acme_cas\": {\"x\": {\"directory\": \"https://x.test\", \"trust\": 3}}}",
        /* Registration on first use: a missing EAB file, a key id without its file. */
        "{\"acme_cas\": {\"x\": {\"directory\": \"https://x.test\", \"auto_register\": true, "
        "\"eab_kid\": \"k\", \"eab_hmac_file\": \"/nonexistent/eab-hmac\"}}}",
        "{\"acme_cas\": {\"x\": {\"directory\": \"https://x.test\", \"eab_kid\": \"k\"}}}",
        "{\"acme_cas\": {\"x\": {\"directory\": \"https://x.test\", \"auto_register\": 1}}}",
    };
    struct config c;
    char **w = NULL, *cause = NULL, *restart;
    size_t nw = 0;
    struct config d;

    (void)state;
    assert_int_equal(config_defaults(&c), 0);
    assert_int_equal(config_parse(good, strlen(good), &c, &w, &nw, &cause), 0);
    assert_int_equal(nw, 0);
    assert_int_equal(c.acme_cas.n, 2);
    assert_string_equal(c.acme_cas.items[0].name, "step");
    assert_string_equal(c.acme_cas.items[0].directory, "https://ca.internal/acme/dir");
    assert_string_equal(c.acme_cas.items[0].trust, "/etc/ssl/step-root.pem");
    assert_null(c.acme_cas.items[1].trust);
    /* Changing the CAs needs a restart. */
    assert_int_equal(config_defaults(&d), 0);
    restart = config_restart_needed(&c, &d);
    assert_non_null(restart);
    assert_non_null(strstr(restart, "acme_cas"));
    free(restart);
    config_free(&d);
    config_free(&c);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(config_defaults(&c), 0);
        assert_int_equal(config_parse(bad[i], strlen(bad[i]), &c, &w, &nw, &cause), -E_BAD_INPUT);
        assert_non_null(strstr(cause, "$.acme_cas"));
        free(cause);
        cause = NULL;
        config_free(&c);
    }
}

/* http01_listen, tls_alpn01_listen and challenge_listen_always: defaults, values, errors. */
static void
test_challenge_listen(void **state)
{
    struct config c, d;
    char *r;

    (void)state;
    assert_int_equal(config_defaults(&c), 0);
    assert_int_equal(c.http01_listen.n, 2);
    assert_string_equal(c.http01_listen.items[0], "0.0.0.0:80");
    assert_string_equal(c.http01_listen.items[1], "[::]:80");
    assert_int_equal(c.tls_alpn01_listen.n, 2);
    assert_string_equal(c.tls_alpn01_listen.items[0], "0.0.0.0:443");
    assert_string_equal(c.tls_alpn01_listen.items[1], "[::]:443");
    assert_int_equal(c.challenge_listen_always, 0);
    config_free(&c);

    assert_int_equal(parse("{\"http01_listen\": [\"127.0.0.1:5002\"],"
                           " \"tls_alpn01_listen\": [\"[::1]:5001\", \"192.0.2.7:443\"],"
                           " \"challenge_listen_always\": true}",
                           &c, NULL, NULL, NULL),
                     0);
    assert_int_equal(c.http01_listen.n, 1);
    assert_string_equal(c.http01_listen.items[0], "127.0.0.1:5002");
    assert_int_equal(c.tls_alpn01_listen.n, 2);
    assert_string_equal(c.tls_alpn01_listen.items[0], "[::1]:5001");
    assert_string_equal(c.tls_alpn01_listen.items[1], "192.0.2.7:443");
    assert_int_equal(c.challenge_listen_always, 1);
    /* Reloadable: a changed list needs no restart. */
    assert_int_equal(config_defaults(&d), 0);
    r = config_restart_needed(&c, &d);
    assert_null(r);
    config_free(&d);
    config_free(&c);

    expect_error("{\"http01_listen\": \"0.0.0.0:80\"}",
                 "$.http01_listen: expected an array of strings, got a string");
    expect_error("{\"http01_listen\": []}", "$.http01_listen: needs 1 to 64 entries");
    expect_error("{\"http01_listen\": [\"0.0.0.0:80\", 80]}",
                 "$.http01_listen[1]: expected a string, got a number");
    expect_error("{\"http01_listen\": [\"localhost:80\"]}",
                 "$.http01_listen[0]: 'localhost:80' is not ADDR:PORT");
    expect_error("{\"tls_alpn01_listen\": [\"::1:443\"]}", "'::1:443' is not ADDR:PORT");
    expect_error("{\"tls_alpn01_listen\": [\"0.0.0.0:70000\"]}", "is not ADDR:PORT");
    expect_error("{\"tls_alpn01_listen\": [\"0.0.0.0:0\"]}", "is not ADDR:PORT");
    expect_error("{\"tls_alpn01_listen\": [\"0.0.0.0\"]}", "is not ADDR:PORT");
    expect_error("{\"tls_alpn01_listen\": [\"[]:443\"]}", "is not ADDR:PORT");
    expect_error("{\"tls_alpn01_listen\": [\"[1]:443\"]}", "is not ADDR:PORT");
    expect_error("{\"tls_alpn01_listen\": [\"[127.0.0.1]:443\"]}", "is not ADDR:PORT");
    expect_error("{\"tls_alpn01_listen\": [\"256.0.0.1:443\"]}", "is not ADDR:PORT");
    expect_error("{\"tls_alpn01_listen\": [\"1.2.3:443\"]}", "is not ADDR:PORT");
    expect_error("{\"challenge_listen_always\": 1}",
                 "$.challenge_listen_always: expected true or false, got a number");
}

/* cluster: the fleet's object, each mistake named by its sub-key. */
static void
cluster_refused(const char *json, const char *words)
{
    struct config c;
    char *cause = NULL;

    assert_int_equal(parse(json, &c, NULL, NULL, &cause), -E_BAD_INPUT);
    assert_non_null(cause);
    if (strstr(cause, words) == NULL)
        fail_msg("expected '%s' in: %s", words, cause);
    free(cause);
    config_free(&c);
}

/* The staging canaries: defaults, the built-in staging directory, and bad input named. */
static void
test_canaries(void **state)
{
    struct config c;
    char *cause = NULL;

    (void)state;
    assert_int_equal(parse("{\"canaries\": [{\"ca\": \"letsencrypt\", \"name\": "
                           "\"canary.example.com\"}, {\"ca\": \"x\", \"name\": \"*.example.com\", "
                           "\"challenge\": \"dns-01\", \"directory\": \"http://127.0.0.1:4/d\", "
                           "\"every\": \"12h\", \"deadline\": 30, \"roots\": \"r.pem\"}]}",
                           &c, NULL, NULL, &cause),
                     0);
    assert_int_equal(c.canaries.n, 2);
    assert_string_equal(c.canaries.items[0].directory,
                        "https://acme-staging-v02.api.letsencrypt.org/directory");
    assert_string_equal(c.canaries.items[0].challenge, "http-01");
    assert_int_equal(c.canaries.items[0].every, 86400);
    assert_int_equal(c.canaries.items[0].deadline, 600);
    assert_null(c.canaries.items[0].roots);
    assert_int_equal(c.canaries.items[1].every, 12 * 3600);
    assert_int_equal(c.canaries.items[1].deadline, 30);
    assert_string_equal(c.canaries.items[1].roots, "r.pem");
    config_free(&c);
    assert_int_equal(config_canary_interval("7d"), 7 * 86400);
    assert_int_equal(config_canary_interval("30m"), 1800);
    assert_int_equal(config_canary_interval("90"), -1);
    assert_int_equal(config_canary_interval("d"), -1);
    expect_error("{\"canaries\": {}}", "$.canaries: expected an array");
    expect_error("{\"canaries\": [{\"name\": \"a.example.com\"}]}", "\"ca\" and \"name\" are "
                                                                    "required");
    expect_error("{\"canaries\": [{\"ca\": \"letsencrypt\", \"name\": \"a.example.com\"}, "
                 "{\"ca\": \"letsencrypt\", \"name\": \"b.example.com\"}]}",
                 "$.canaries[1].ca: CA 'letsencrypt' has a canary already");
    expect_error("{\"canaries\": [{\"ca\": \"letsencrypt\", \"name\": \"*.example.com\"}]}",
                 "$.canaries[0].name: the wildcard name *.example.com cannot be validated with "
                 "http-01");
    expect_error("{\"canaries\": [{\"ca\": \"letsencrypt\", \"name\": \"a.example.com\", "
                 "\"directory\": \"http://acme.example.com/d\"}]}",
                 "$.canaries[0].directory: 'http://acme.example.com/d' is not an https:// URL");
    expect_error("{\"canaries\": [{\"ca\": \"zerossl\", \"name\": \"a.example.com\"}]}",
                 "CA 'zerossl' has no built-in staging directory");
    expect_error("{\"canaries\": [{\"ca\": \"letsencrypt\", \"name\": \"a.example.com\", "
                 "\"every\": \"10s\"}]}",
                 "$.canaries[0].every: '10s' is not a duration");
    expect_error("{\"canaries\": [{\"ca\": \"letsencrypt\", \"name\": \"a b\"}]}",
                 "$.canaries[0].name: 'a b' is not a DNS name");
    expect_error("{\"canaries\": [{\"ca\": \"letsencrypt\", \"name\": \"a.example.com\", "
                 "\"every\": \"1d\", \"nope\": 1}]}",
                 "$.canaries[0].nope: unknown member");
}

static void
test_cluster(void **state)
{
    static const char key_path[] = "test_config_fleet.key";
    struct config c;
    char json[512], *cause = NULL;
    FILE *f;

    (void)state;
    assert_int_equal(config_defaults(&c), 0);
    assert_null(c.cluster);
    config_free(&c);
    cluster_refused("{\"cluster\": []}", "$.cluster: expected an object");
    cluster_refused("{\"cluster\": {\"etcd\": [\"https://a:1\"], \"nope\": 1}}",
                    "$.cluster.nope: unknown key");
    cluster_refused("{\"cluster\": {\"fleet\": \"p\"}}", "$.cluster.etcd");
    cluster_refused("{\"cluster\": {\"etcd\": [\"http://10.0.0.1:2379\"], \"fleet\": \"p\"}}",
                    "only on a loopback");
    cluster_refused("{\"cluster\": {\"etcd\": [\"ftp://a\"], \"fleet\": \"p\"}}",
                    "$.cluster.etcd[0]");
    cluster_refused("{\"cluster\": {\"etcd\": [\"https://a:1\"], \"fleet\": \"a/b\"}}",
                    "$.cluster.fleet: name the fleet");
    cluster_refused("{\"cluster\": {\"etcd\": [\"https://a:1\"], \"fleet\": \"p\"}}",
                    "$.cluster.fleet_key_file: required");
    cluster_refused("{\"cluster\": {\"etcd\": [\"https://a:1\"], \"fleet\": \"p\", "
                    "\"fleet_grace\": 1}}",
                    "$.cluster.fleet_grace");
    /* A key file of 31 bytes is refused with its size. */
    assert_non_null(f = fopen(key_path, "wb"));
    assert_int_equal(fwrite("0123456789012345678901234567890", 1, 31, f), 31);
    fclose(f);
    snprintf(json, sizeof(json),
             "{\"cluster\": {\"etcd\": [\"https://a:1\"], \"fleet\": \"p\", "
             "\"fleet_key_file\": \"%s\", \"node\": \"n1\"}}",
             key_path);
    cluster_refused(json, "holds 31 bytes, not exactly 32");
    remove(key_path);
    /* Loopback http:// is accepted (and marked insecure); other hosts are not. */
    assert_true(config_cluster_loopback_url("http://127.0.0.1:2379"));
    assert_true(config_cluster_loopback_url("http://[::1]:2379"));
    assert_true(config_cluster_loopback_url("http://localhost:2379/"));
    assert_false(config_cluster_loopback_url("http://127.0.0.1.evil.test:2379"));
    assert_false(config_cluster_loopback_url("http://localhost.evil.test"));
    assert_false(config_cluster_loopback_url("http://10.0.0.1"));
    assert_true(config_cluster_name_ok("prod-1.web_a"));
    assert_false(config_cluster_name_ok(".."));
    assert_false(config_cluster_name_ok("a/b"));
    assert_false(config_cluster_name_ok(""));
    (void)cause;
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
        cmocka_unit_test(test_take_reloadable),
        cmocka_unit_test(test_docs_cover_every_key),
        cmocka_unit_test(test_challenge_listen),
        cmocka_unit_test(test_acme_cas),
        cmocka_unit_test(test_cluster),
        cmocka_unit_test(test_canaries),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
