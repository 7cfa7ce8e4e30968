/*
 * Deploy through its own inputs (env, store, hooks): a certificate that
 * changes (EVENT_CERT_CHANGED) reaches its files target and its deploy
 * hook, the result is published (EVENT_DEPLOY_RESULT), a target that cannot
 * be written is a failure with words until a deploy succeeds, and the
 * settings and deployed.json are kept in the state directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "deploy.h"
#include "service-fixture.h"

struct dfx {
    struct service_fixture f;
    struct deploy *d;
    char target[300];
    /* The last EVENT_DEPLOY_RESULT seen. */
    int results;
    int got; /* set by each result */
    int rc;
    unsigned version;
    char cause[512];
    int saved;
};

static void
on_result(void *arg, const struct event *ev)
{
    struct dfx *x = arg;

    x->results++;
    x->got = 1;
    x->rc = ev->rc;
    x->version = ev->version;
    snprintf(x->cause, sizeof(x->cause), "%s", ev->cause != NULL ? ev->cause : "");
}

static void
on_saved(void *arg, int rc, const char *cause)
{
    struct dfx *x = arg;

    if (rc != 0)
        fail_msg("settings not saved: %s", cause != NULL ? cause : "?");
    x->saved = 1;
}

static int
setup(void **state)
{
    struct dfx *x = calloc(1, sizeof(*x));
    char *cause = NULL;

    fixture_init(&x->f);
    snprintf(x->target, sizeof(x->target), "%s/target", x->f.state_dir);
    if (deploy_open(&x->f.env, x->f.store, x->f.hooks, &x->d, &cause) != 0)
        fail_msg("deploy_open: %s", cause);
    assert_int_equal(events_subscribe(x->f.events, EVENT_MASK(EVENT_DEPLOY_RESULT), on_result, x),
                     0);
    *state = x;
    return 0;
}

static int
teardown(void **state)
{
    struct dfx *x = *state;

    deploy_stop(x->d);
    fixture_drain(&x->f);
    deploy_free(x->d);
    fixture_free(&x->f);
    free(x);
    return 0;
}

/* Applies a JSON text of settings changes to name and waits for the save. */
static void
change(struct dfx *x, const char *name, const char *json)
{
    cJSON *c = cJSON_Parse(json);
    char *cause = NULL;

    assert_non_null(c);
    x->saved = 0;
    if (deploy_settings_change(x->d, name, c, on_saved, x, &cause) != 0)
        fail_msg("settings %s: %s", json, cause);
    cJSON_Delete(c);
    assert_int_equal(fixture_run_until(&x->f, &x->saved, 10000), 0);
}

/* Publishes what a commit publishes and waits for the deploy's result. */
static void
cert_changed(struct dfx *x, const char *name, unsigned version)
{
    struct event ev = {.type = EVENT_CERT_CHANGED, .name = name, .version = version};

    x->got = 0;
    events_publish(x->f.events, &ev);
    if (fixture_run_until(&x->f, &x->got, 10000) != 0)
        fail_msg("no deploy result for '%s' after 10 s", name);
}

static void
test_target_and_hook(void **state)
{
    struct dfx *x = *state;
    char json[1024], path[400], *text, *cert;
    unsigned v;
    struct stat st;

    snprintf(json, sizeof(json),
             "{\"add_files\": [\"%s\"], \"deploy_hook\": \"echo \\\"$CERTAGENT_NAME "
             "$CERTAGENT_VERSION\\\" >> %s/hook.out\"}",
             x->target, x->f.state_dir);
    change(x, "web", json);
    /* The settings are on disk, in the state directory the env names. */
    snprintf(path, sizeof(path), "%s/settings.json", x->f.state_dir);
    assert_non_null(text = fixture_read(path));
    assert_non_null(strstr(text, x->target));
    free(text);

    v = fixture_add_cert(&x->f, "web", "www.example.test", CERT_SOURCE_SELFSIGNED, 60, 86400);
    cert_changed(x, "web", v);
    assert_int_equal(x->rc, 0);
    assert_int_equal(x->version, v);
    /* The files target: the store's certificate, its full chain and its key (0600). */
    snprintf(path, sizeof(path), "%s/live/web/cert.pem", x->f.state_dir);
    assert_non_null(cert = fixture_read(path));
    snprintf(path, sizeof(path), "%s/fullchain.pem", x->target);
    assert_non_null(text = fixture_read(path));
    assert_string_equal(text, cert);
    free(text);
    free(cert);
    snprintf(path, sizeof(path), "%s/privkey.pem", x->target);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* The hook ran once, with the name and the version in its environment. */
    snprintf(path, sizeof(path), "%s/hook.out", x->f.state_dir);
    assert_non_null(text = fixture_read(path));
    snprintf(json, sizeof(json), "web %u\n", v);
    assert_string_equal(text, json);
    free(text);
    /* deployed.json records the version (written soon after, many changes in one write). */
    snprintf(path, sizeof(path), "%s/deployed.json", x->f.state_dir);
    snprintf(json, sizeof(json), "\"web\":%u", v);
    assert_int_equal(fixture_wait_file(&x->f, path, json, 10000), 0);
    assert_null(deploy_error(x->d, "web", NULL, NULL));
}

static void
test_failure_until_fixed(void **state)
{
    struct dfx *x = *state;
    char json[600], blocker[400];
    unsigned v, ev;
    FILE *fp;

    /* The target's parent is a file: the directory cannot be made. */
    snprintf(blocker, sizeof(blocker), "%s/blocker", x->f.state_dir);
    assert_non_null(fp = fopen(blocker, "w"));
    fclose(fp);
    snprintf(json, sizeof(json), "{\"add_files\": [\"%s/sub\"]}", blocker);
    change(x, "mail", json);
    v = fixture_add_cert(&x->f, "mail", "mail.example.test", CERT_SOURCE_IMPORT, 60, 86400);
    cert_changed(x, "mail", v);
    assert_int_not_equal(x->rc, 0);
    assert_int_equal(x->version, v);
    /* The words name the target, and the status report's source says the same. */
    assert_non_null(strstr(x->cause, "blocker/sub"));
    assert_non_null(deploy_error(x->d, "mail", &ev, NULL));
    assert_int_equal(ev, v);
    assert_non_null(strstr(deploy_error(x->d, "mail", NULL, NULL), "blocker/sub"));

    /* Fixed: the next deploy succeeds and the error is gone. */
    assert_int_equal(remove(blocker), 0);
    cert_changed(x, "mail", v);
    assert_int_equal(x->rc, 0);
    assert_null(deploy_error(x->d, "mail", NULL, NULL));
}

static void
test_no_targets_is_a_success(void **state)
{
    struct dfx *x = *state;
    unsigned v =
        fixture_add_cert(&x->f, "plain", "plain.example.test", CERT_SOURCE_SELFSIGNED, 60, 86400);

    cert_changed(x, "plain", v);
    assert_int_equal(x->rc, 0);
    assert_int_equal(x->results, 1);
    assert_null(deploy_error(x->d, "plain", NULL, NULL));
}

/* A refused change: its words contain want, and the settings stay as they were. */
static void
refused(struct dfx *x, const char *name, const char *json, const char *want)
{
    cJSON *c = cJSON_Parse(json), *before = deploy_settings_json(x->d, name), *after;
    char *cause = NULL, *a, *b;

    assert_non_null(c);
    assert_int_not_equal(deploy_settings_change(x->d, name, c, on_saved, x, &cause), 0);
    if (cause == NULL || strstr(cause, want) == NULL)
        fail_msg("%s: '%s' without '%s'", json, cause != NULL ? cause : "(no words)", want);
    after = deploy_settings_json(x->d, name);
    a = cJSON_PrintUnformatted(before);
    b = cJSON_PrintUnformatted(after);
    assert_string_equal(a, b);
    free(a);
    free(b);
    free(cause);
    cJSON_Delete(before);
    cJSON_Delete(after);
    cJSON_Delete(c);
}

/*
 * check_served: URLs the probe's parser accepts, each with an optional server
 * name; the same URL again changes its server name; bad ones are refused with
 * the option named and nothing changed; kept in settings.json.
 */
static void
test_check_served_settings(void **state)
{
    struct dfx *x = *state;
    const struct cert_settings *s;
    char *text = NULL, path[400];

    change(x, "web",
           "{\"add_served\": [{\"url\": \"https://127.0.0.1:8443\", \"sni\": "
           "\"www.example.com\"}, \"imap+starttls://mail.example.com\"]}");
    assert_non_null(s = deploy_settings(x->d, "web"));
    assert_int_equal(s->nserved, 2);
    assert_string_equal(s->served[0].url, "https://127.0.0.1:8443");
    assert_string_equal(s->served[0].sni, "www.example.com");
    assert_null(s->served[1].sni);
    change(x, "web",
           "{\"add_served\": [{\"url\": \"https://127.0.0.1:8443\", \"sni\": \"a.test\"}]}");
    assert_int_equal(deploy_settings(x->d, "web")->nserved, 2);
    assert_string_equal(deploy_settings(x->d, "web")->served[0].sni, "a.test");
    refused(x, "web", "{\"add_served\": [\"gopher://a.test\"]}",
            "--check-served: 'gopher://a.test': unknown scheme");
    refused(x, "web", "{\"add_served\": [\"https://\"]}", "no host");
    refused(x, "web", "{\"add_served\": [\"https://a.test:0\"]}",
            "port must be a number from 1 to 65535");
    refused(x, "web", "{\"add_served\": [{\"url\": \"https://a.test\", \"sni\": \"a b\"}]}",
            "--served-sni 'a b' is not a DNS name");
    refused(x, "web", "{\"add_served\": [{\"url\": \"https://a.test\", \"sni\": \"10.0.0.1\"}]}",
            "is not a DNS name");
    refused(x, "web", "{\"remove_served\": [\"https://nowhere.test\"]}",
            "is not a --check-served URL of this certificate");
    refused(x, "web", "{\"add_served\": 5}", "add_served must be an array");
    snprintf(path, sizeof(path), "%s/settings.json", x->f.state_dir);
    assert_non_null(text = fixture_read(path));
    assert_non_null(strstr(text, "\"check_served\""));
    assert_non_null(strstr(text, "imap+starttls://mail.example.com"));
    free(text);
    change(x, "web",
           "{\"remove_served\": [\"https://127.0.0.1:8443\", "
           "\"imap+starttls://mail.example.com\"]}");
    assert_null(deploy_settings(x->d, "web")); /* nothing left: the entry goes */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_target_and_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_served_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_until_fixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_targets_is_a_success, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
