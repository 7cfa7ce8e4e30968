/*
 * The agent's events (agent/base/events.c): masks, order of delivery,
 * nested publishes, subscribers that come and go during a delivery, and
 * the counters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "events.h"

/* What the subscribers saw, in order: "A:cert_changed:web" ... */
static char seen[1024];

static void
note(const char *who, const struct event *ev)
{
    size_t used = strlen(seen);

    snprintf(seen + used, sizeof(seen) - used, "%s%s:%s:%s", used > 0 ? " " : "", who,
             event_type_name(ev->type), ev->name != NULL ? ev->name : "-");
}

static void
sub_a(void *arg, const struct event *ev)
{
    (void)arg;
    note("A", ev);
}

static void
sub_b(void *arg, const struct event *ev)
{
    (void)arg;
    note("B", ev);
}

static int
setup(void **state)
{
    struct events *ev = NULL;

    seen[0] = '\0';
    if (events_new(&ev) != 0)
        return -1;
    *state = ev;
    return 0;
}

static int
teardown(void **state)
{
    events_free(*state);
    return 0;
}

static void
test_mask_and_order(void **state)
{
    struct events *ev = *state;

    assert_int_equal(events_subscribe(ev, EVENT_MASK(EVENT_CERT_CHANGED), sub_a, NULL), 0);
    assert_int_equal(events_subscribe(ev, EVENT_MASK_ALL, sub_b, NULL), 0);
    events_publish_name(ev, EVENT_CERT_CHANGED, "web");
    events_publish_name(ev, EVENT_RENEW_STATE, NULL);
    assert_string_equal(seen, "A:cert_changed:web B:cert_changed:web B:renew_state:-");
    assert_int_equal(events_published(ev, EVENT_CERT_CHANGED), 1);
    assert_int_equal(events_published(ev, EVENT_RENEW_STATE), 1);
    assert_int_equal(events_published(ev, EVENT_DEPLOY_RESULT), 0);
}

static void
test_unsubscribe(void **state)
{
    struct events *ev = *state;

    assert_int_equal(events_subscribe(ev, EVENT_MASK_ALL, sub_a, NULL), 0);
    assert_int_equal(events_subscribe(ev, EVENT_MASK_ALL, sub_b, NULL), 0);
    events_unsubscribe(ev, sub_a, NULL);
    events_unsubscribe(ev, sub_a, NULL); /* unknown now: fine */
    events_publish_name(ev, EVENT_STATUS_STALE, NULL);
    assert_string_equal(seen, "B:status_stale:-");
    /* The same function with another argument is another subscription. */
    assert_int_equal(events_subscribe(ev, EVENT_MASK_ALL, sub_a, &seen), 0);
    events_unsubscribe(ev, sub_a, NULL);
    seen[0] = '\0';
    events_publish_name(ev, EVENT_STATUS_STALE, NULL);
    assert_string_equal(seen, "B:status_stale:- A:status_stale:-");
}

/* Nested: a subscriber that publishes; one that removes the next; one that adds one. */
static struct events *the_events;

static void
sub_republish(void *arg, const struct event *ev)
{
    (void)arg;
    note("R", ev);
    if (ev->type == EVENT_CERT_CHANGED)
        events_publish_name(the_events, EVENT_RENEW_STATE, ev->name);
}

static void
sub_remove_b(void *arg, const struct event *ev)
{
    (void)arg;
    note("X", ev);
    events_unsubscribe(the_events, sub_b, NULL);
}

static void
sub_add_a(void *arg, const struct event *ev)
{
    (void)arg;
    note("Y", ev);
    /* Many, so that the array must grow (move) during the delivery. */
    for (int i = 0; i < 20; i++)
        assert_int_equal(events_subscribe(the_events, EVENT_MASK_ALL, sub_a, NULL), 0);
    events_unsubscribe(the_events, sub_add_a, NULL);
}

static void
test_nested(void **state)
{
    struct events *ev = *state;

    the_events = ev;
    assert_int_equal(events_subscribe(ev, EVENT_MASK_ALL, sub_republish, NULL), 0);
    assert_int_equal(events_subscribe(ev, EVENT_MASK_ALL, sub_b, NULL), 0);
    events_publish_name(ev, EVENT_CERT_CHANGED, "mail");
    /* The nested event reaches everyone before the outer one goes on. */
    assert_string_equal(seen, "R:cert_changed:mail R:renew_state:mail B:renew_state:mail "
                              "B:cert_changed:mail");
}

static void
test_change_during_delivery(void **state)
{
    struct events *ev = *state;

    the_events = ev;
    assert_int_equal(events_subscribe(ev, EVENT_MASK_ALL, sub_add_a, NULL), 0);
    assert_int_equal(events_subscribe(ev, EVENT_MASK_ALL, sub_remove_b, NULL), 0);
    assert_int_equal(events_subscribe(ev, EVENT_MASK_ALL, sub_b, NULL), 0);
    events_publish_name(ev, EVENT_DEPLOY_RESULT, "web");
    /* Those added during the delivery wait for the next event; B was removed before its turn. */
    assert_string_equal(seen, "Y:deploy_result:web X:deploy_result:web");
    seen[0] = '\0';
    events_publish_name(ev, EVENT_DEPLOY_RESULT, "web");
    /* Y removed itself, X is still there, the 20 A came after. */
    assert_int_equal(strncmp(seen, "X:deploy_result:web A:deploy_result:web", 39), 0);
    {
        int count = 0;

        for (const char *p = seen; (p = strstr(p, "A:")) != NULL; p++)
            count++;
        assert_int_equal(count, 20);
    }
}

static void
test_names(void **state)
{
    (void)state;
    assert_string_equal(event_type_name(EVENT_CONFIG_RELOADED), "config_reloaded");
    assert_string_equal(event_type_name(EVENT_SETTINGS_CHANGED), "settings_changed");
    assert_string_equal(event_type_name((enum event_type)99), "unknown");
    /* Nothing to publish to: no crash. */
    events_publish_name(NULL, EVENT_CERT_CHANGED, "x");
    assert_int_equal(events_published(NULL, EVENT_CERT_CHANGED), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mask_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsubscribe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_during_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
