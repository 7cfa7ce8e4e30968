/*
 * The renewal scheduler through its own inputs (env, store, deploy, and the
 * way to make a self-signed version that agent.c hands it): a self-signed
 * certificate set to renew itself and due is renewed once with its names,
 * key type and lifetime; the plan, the history and STATE/renew.json follow;
 * a failed attempt is retried after renew_retry_min with the words kept; a
 * certificate not set to renew itself is never renewed.  The "make" here
 * commits a real new version to the store and publishes what the commit
 * path publishes, as ipc/ops-cert.c does.
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
#include "err.h"
#include "renew.h"
#include "service-fixture.h"

#define DAY 86400

struct rfx {
    struct service_fixture f;
    struct deploy *d;
    struct renew *r;
    /* What the scheduler asked for. */
    int calls;
    char name[64], dns[128], key_type[32];
    unsigned days;
    int fail_with; /* 0: succeed; else the error to report */
    int done;      /* set when the scheduler was told the outcome */
    unsigned long renew_states;
    int saved;
};

static void
on_renew_state(void *arg, const struct event *ev)
{
    struct rfx *x = arg;

    (void)ev;
    x->renew_states++;
}

static int
make_selfsigned(void *ctx, const char *name, const char *const *dns, size_t ndns,
                const char *const *ips, size_t nips, const char *key_type, unsigned days,
                void (*done)(void *arg, int rc, const char *cause), void *arg, char **cause)
{
    struct rfx *x = ctx;

    (void)ips;
    (void)nips;
    (void)cause;
    x->calls++;
    snprintf(x->name, sizeof(x->name), "%s", name);
    snprintf(x->dns, sizeof(x->dns), "%s", ndns > 0 ? dns[0] : "");
    snprintf(x->key_type, sizeof(x->key_type), "%s", key_type);
    x->days = days;
    if (x->fail_with != 0) {
        done(arg, x->fail_with, "the disk is full");
    } else {
        unsigned v = fixture_add_cert(&x->f, name, dns[0], CERT_SOURCE_SELFSIGNED, 300,
                                      (int64_t)days * DAY);

        events_publish(x->f.events,
                       &(struct event){.type = EVENT_CERT_CHANGED, .name = name, .version = v});
        done(arg, 0, NULL);
    }
    x->done = 1;
    return 0;
}

static void
on_saved(void *arg, int rc, const char *cause)
{
    struct rfx *x = arg;

    if (rc != 0)
        fail_msg("settings not saved: %s", cause != NULL ? cause : "?");
    x->saved = 1;
}

static int
setup(void **state)
{
    struct rfx *x = calloc(1, sizeof(*x));
    char *cause = NULL;

    fixture_init(&x->f);
    if (deploy_open(&x->f.env, x->f.store, x->f.hooks, &x->d, &cause) != 0)
        fail_msg("deploy_open: %s", cause);
    assert_int_equal(
        events_subscribe(x->f.events, EVENT_MASK(EVENT_RENEW_STATE), on_renew_state, x), 0);
    *state = x;
    return 0;
}

static void
start(struct rfx *x)
{
    char *cause = NULL;

    if (renew_new(&x->f.env, x->f.store, NULL, x->d,
                  &(struct renew_selfsigned){make_selfsigned, x}, &x->r, &cause) != 0)
        fail_msg("renew_new: %s", cause);
    renew_start(x->r);
}

static int
teardown(void **state)
{
    struct rfx *x = *state;

    renew_stop(x->r);
    deploy_stop(x->d);
    fixture_drain(&x->f);
    renew_free(x->r);
    deploy_free(x->d);
    fixture_free(&x->f);
    free(x);
    return 0;
}

static void
auto_renew(struct rfx *x, const char *name)
{
    cJSON *c = cJSON_Parse("{\"auto_renew\": true}");
    char *cause = NULL;

    x->saved = 0;
    if (deploy_settings_change(x->d, name, c, on_saved, x, &cause) != 0)
        fail_msg("auto_renew: %s", cause);
    cJSON_Delete(c);
    assert_int_equal(fixture_run_until(&x->f, &x->saved, 10000), 0);
    /* As certctl set does: the scheduler plans the name again. */
    events_publish_name(x->f.events, EVENT_SETTINGS_CHANGED, name);
}

static void
test_due_selfsigned_renews_once(void **state)
{
    struct rfx *x = *state;
    struct renew_info ri;
    char path[400];
    int64_t before = (int64_t)time(NULL);

    /* 30 days of lifetime with one hour left: far past the point a third is left. */
    fixture_add_cert(&x->f, "web", "www.example.test", CERT_SOURCE_SELFSIGNED, 30 * DAY - 3600,
                     3600);
    auto_renew(x, "web");
    start(x);
    assert_int_equal(fixture_run_until(&x->f, &x->done, 10000), 0);
    assert_int_equal(x->calls, 1);
    assert_string_equal(x->name, "web");
    assert_string_equal(x->dns, "www.example.test");
    assert_string_equal(x->key_type, "ec256");
    assert_int_equal(x->days, 30);
    /* The history and the new plan: the new version is 30 days long, renewed in ~20. */
    assert_int_equal(renew_info_get(x->r, "web", &ri), 0);
    assert_int_equal(ri.last_ok, 1);
    assert_int_equal(ri.failures, 0);
    assert_int_equal(ri.attempts_total, 1);
    assert_true(ri.last_success >= before);
    snprintf(path, sizeof(path), "%s/renew.json", x->f.state_dir);
    assert_int_equal(fixture_wait_file(&x->f, path, "\"web\"", 10000), 0);
    assert_int_equal(renew_info_get(x->r, "web", &ri), 0);
    assert_true(ri.next > before + 19 * DAY && ri.next < before + 21 * DAY);
    assert_true(x->renew_states > 0);
    /* Nothing more is due: no second renewal. */
    x->done = 0;
    assert_int_not_equal(fixture_run_until(&x->f, &x->done, 300), 0);
    assert_int_equal(x->calls, 1);
}

static void
test_failure_is_retried_with_words(void **state)
{
    struct rfx *x = *state;
    struct renew_info ri;
    int64_t before = (int64_t)time(NULL);

    x->f.config.renew_retry_min = 120;
    x->fail_with = -E_IO;
    fixture_add_cert(&x->f, "mail", "mail.example.test", CERT_SOURCE_SELFSIGNED, 10 * DAY, 600);
    auto_renew(x, "mail");
    start(x);
    assert_int_equal(fixture_run_until(&x->f, &x->done, 10000), 0);
    assert_int_equal(renew_info_get(x->r, "mail", &ri), 0);
    assert_int_equal(ri.last_ok, 0);
    assert_int_equal(ri.failures, 1);
    assert_non_null(ri.last_error);
    assert_non_null(strstr(ri.last_error, "the disk is full"));
    assert_string_equal(ri.next_reason, "retry");
    assert_true(ri.next >= before + 120 && ri.next <= (int64_t)time(NULL) + 120);
}

static void
test_not_set_to_renew_is_left_alone(void **state)
{
    struct rfx *x = *state;
    struct renew_info ri;

    /* Self-signed without auto_renew, and imported: due, but never renewed. */
    fixture_add_cert(&x->f, "lab", "lab.example.test", CERT_SOURCE_SELFSIGNED, 30 * DAY, 60);
    fixture_add_cert(&x->f, "old", "old.example.test", CERT_SOURCE_IMPORT, 30 * DAY, 60);
    start(x);
    assert_int_not_equal(fixture_run_until(&x->f, &x->done, 500), 0);
    assert_int_equal(x->calls, 0);
    assert_int_equal(renew_info_get(x->r, "lab", &ri), 0);
    assert_int_equal(ri.auto_renew, 0);
    assert_int_equal(renew_info_get(x->r, "old", &ri), 0);
    assert_int_equal(ri.auto_renew, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_due_selfsigned_renews_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_is_retried_with_words, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_set_to_renew_is_left_alone, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
