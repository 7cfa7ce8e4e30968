/*
 * The status report through its own inputs (env, store, trust, deploy and
 * what the agent says of itself): a certificate near its end is "expiring"
 * (critical under a tenth of its lifetime), a failed deploy raises
 * deploy_failing with the deploy's words and the next good deploy clears it,
 * a self-signed one says self_signed_in_use once its PEM was checked in the
 * pool, and STATE/status.json is written again when a certificate changes
 * (EVENT_CERT_CHANGED).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deploy.h"
#include "status.h"
#include "service-fixture.h"
#include "trust.h"

#define DAY 86400

struct sfx {
    struct service_fixture f;
    struct trust *trust;
    struct deploy *d;
    struct status *st;
    size_t connections;
    int saved, deployed;
};

static void
on_saved(void *arg, int rc, const char *cause)
{
    (void)rc;
    (void)cause;
    ((struct sfx *)arg)->saved = 1;
}

static void
on_deploy_result(void *arg, const struct event *ev)
{
    (void)ev;
    ((struct sfx *)arg)->deployed = 1;
}

static int
setup(void **state)
{
    struct sfx *x = calloc(1, sizeof(*x));
    char *cause = NULL;
    struct status_inputs in;

    fixture_init(&x->f);
    if (trust_open(x->f.state_dir, &x->trust, &cause) != 0)
        fail_msg("trust_open: %s", cause);
    if (deploy_open(&x->f.env, x->f.store, x->f.hooks, &x->d, &cause) != 0)
        fail_msg("deploy_open: %s", cause);
    memset(&in, 0, sizeof(in));
    in.store = x->f.store;
    in.trust = x->trust;
    in.deploy = x->d;
    in.started = (int64_t)time(NULL);
    in.socket_path = "/run/test.sock";
    in.config_path = "/etc/test.json";
    in.connections = &x->connections;
    if (status_new(&x->f.env, &in, &x->st, &cause) != 0 || status_start(x->st, &cause) != 0)
        fail_msg("status: %s", cause);
    assert_int_equal(
        events_subscribe(x->f.events, EVENT_MASK(EVENT_DEPLOY_RESULT), on_deploy_result, x), 0);
    *state = x;
    return 0;
}

static int
teardown(void **state)
{
    struct sfx *x = *state;

    status_stop(x->st);
    deploy_stop(x->d);
    fixture_drain(&x->f);
    status_free(x->st);
    deploy_free(x->d);
    trust_close(x->trust);
    fixture_free(&x->f);
    free(x);
    return 0;
}

/* The warning of code in the evaluation of name, or NULL. */
static const struct status_warning *
warning(struct sfx *x, const char *name, const char *code, struct status_eval *ev)
{
    status_evaluate(x->st, store_find(x->f.store, name), (int64_t)time(NULL), ev);
    for (size_t i = 0; i < ev->nwarnings; i++)
        if (strcmp(ev->w[i].code, code) == 0)
            return &ev->w[i];
    return NULL;
}

static void
publish_changed(struct sfx *x, const char *name, unsigned v)
{
    events_publish(x->f.events,
                   &(struct event){.type = EVENT_CERT_CHANGED, .name = name, .version = v});
}

static void
test_expiring_levels(void **state)
{
    struct sfx *x = *state;
    struct status_eval ev;
    const struct status_warning *w;

    /* 90 days long: 20 days left is under a quarter (warning), 5 under a tenth (critical). */
    fixture_add_cert(&x->f, "soon", "soon.example.test", CERT_SOURCE_IMPORT, 70 * DAY, 20 * DAY);
    fixture_add_cert(&x->f, "now", "now.example.test", CERT_SOURCE_IMPORT, 85 * DAY, 5 * DAY);
    fixture_add_cert(&x->f, "fine", "fine.example.test", CERT_SOURCE_IMPORT, 10 * DAY, 80 * DAY);
    assert_non_null(w = warning(x, "soon", "expiring", &ev));
    assert_int_equal(w->level, STATUS_WARNING);
    assert_non_null(w = warning(x, "now", "expiring", &ev));
    assert_int_equal(w->level, STATUS_CRITICAL);
    assert_int_equal(ev.level, STATUS_CRITICAL);
    assert_null(warning(x, "fine", "expiring", &ev));
}

static void
test_deploy_failing_follows_deploys(void **state)
{
    struct sfx *x = *state;
    struct status_eval ev;
    const struct status_warning *w;
    char json[600], blocker[400];
    cJSON *c;
    FILE *fp;
    unsigned v;

    snprintf(blocker, sizeof(blocker), "%s/blocker", x->f.state_dir);
    assert_non_null(fp = fopen(blocker, "w"));
    fclose(fp);
    snprintf(json, sizeof(json), "{\"add_files\": [\"%s/sub\"]}", blocker);
    assert_non_null(c = cJSON_Parse(json));
    assert_int_equal(deploy_settings_change(x->d, "web", c, on_saved, x, NULL), 0);
    cJSON_Delete(c);
    assert_int_equal(fixture_run_until(&x->f, &x->saved, 10000), 0);
    v = fixture_add_cert(&x->f, "web", "www.example.test", CERT_SOURCE_IMPORT, DAY, 80 * DAY);
    publish_changed(x, "web", v);
    assert_int_equal(fixture_run_until(&x->f, &x->deployed, 10000), 0);
    assert_non_null(w = warning(x, "web", "deploy_failing", &ev));
    assert_non_null(strstr(w->message, "blocker/sub"));
    /* Fixed, deployed again: the warning is gone. */
    assert_int_equal(remove(blocker), 0);
    x->deployed = 0;
    publish_changed(x, "web", v);
    assert_int_equal(fixture_run_until(&x->f, &x->deployed, 10000), 0);
    assert_null(warning(x, "web", "deploy_failing", &ev));
}

static void
test_status_file_follows_changes(void **state)
{
    struct sfx *x = *state;
    struct status_eval ev;
    char path[400];
    unsigned v;

    snprintf(path, sizeof(path), "%s/status.json", x->f.state_dir);
    v = fixture_add_cert(&x->f, "lab", "lab.example.test", CERT_SOURCE_SELFSIGNED, 60, 300 * DAY);
    publish_changed(x, "lab", v);
    /* The report names the certificate, and the agent's own words. */
    assert_int_equal(fixture_wait_file(&x->f, path, "\"lab\"", 10000), 0);
    assert_int_equal(fixture_wait_file(&x->f, path, "/run/test.sock", 10000), 0);
    /* Once the pool checked the PEM, the self-signed warning is there (and the file says so). */
    assert_int_equal(fixture_wait_file(&x->f, path, "self_signed_in_use", 10000), 0);
    assert_non_null(warning(x, "lab", "self_signed_in_use", &ev));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_expiring_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy_failing_follows_deploys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_file_follows_changes, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
