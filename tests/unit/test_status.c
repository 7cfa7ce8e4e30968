/*
 * The status report's pure parts: the expiry thresholds, Prometheus label
 * escaping, and the log ring (wrap, resize, name filter, threads).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>

#include "err.h"
#include "log.h"
#include "status.h"

#define DAY 86400

/* The level of a certificate of `lifetime` days with `left` seconds to go. */
static int
level_at(int64_t lifetime_days, int64_t left, int warn_days, int critical_days)
{
    int64_t nb = 1700000000, na = nb + lifetime_days * DAY;

    return status_expiry_level(nb, na, na - left, warn_days, critical_days, NULL);
}

static void
test_six_day(void **state)
{
    (void)state;
    /* A quarter of 6 days is 36 h, a tenth 14.4 h; the caps (30, 7 days) do not bite. */
    assert_int_equal(level_at(6, 3 * DAY, 30, 7), STATUS_OK);
    assert_int_equal(level_at(6, 36 * 3600 + 60, 30, 7), STATUS_OK);
    assert_int_equal(level_at(6, 36 * 3600 - 60, 30, 7), STATUS_WARNING);
    assert_int_equal(level_at(6, 15 * 3600, 30, 7), STATUS_WARNING);
    assert_int_equal(level_at(6, 14 * 3600, 30, 7), STATUS_CRITICAL);
}

static void
test_47_and_90_day(void **state)
{
    int64_t threshold = 0;
    int64_t nb = 1700000000;

    (void)state;
    /* 47 days: warn under 11.75 days, critical under 4.7. */
    assert_int_equal(level_at(47, 12 * DAY, 30, 7), STATUS_OK);
    assert_int_equal(level_at(47, 11 * DAY, 30, 7), STATUS_WARNING);
    assert_int_equal(level_at(47, 5 * DAY, 30, 7), STATUS_WARNING);
    assert_int_equal(level_at(47, 4 * DAY, 30, 7), STATUS_CRITICAL);
    /* 90 days: a quarter is 22.5 days (under warn_days), a tenth 9 days, capped to 7. */
    assert_int_equal(level_at(90, 23 * DAY, 30, 7), STATUS_OK);
    assert_int_equal(level_at(90, 22 * DAY, 30, 7), STATUS_WARNING);
    assert_int_equal(level_at(90, 8 * DAY, 30, 7), STATUS_WARNING);
    assert_int_equal(level_at(90, 6 * DAY, 30, 7), STATUS_CRITICAL);
    assert_int_equal(status_expiry_level(nb, nb + 90 * DAY, nb + 84 * DAY, 30, 7, &threshold),
                     STATUS_CRITICAL);
    assert_int_equal(threshold, 7 * DAY);
}

static void
test_one_year_and_caps(void **state)
{
    (void)state;
    /* 365 days: a quarter (91 days) is capped by warn_days 30, a tenth by critical_days 7. */
    assert_int_equal(level_at(365, 31 * DAY, 30, 7), STATUS_OK);
    assert_int_equal(level_at(365, 29 * DAY, 30, 7), STATUS_WARNING);
    assert_int_equal(level_at(365, 8 * DAY, 30, 7), STATUS_WARNING);
    assert_int_equal(level_at(365, 6 * DAY, 30, 7), STATUS_CRITICAL);
    /* Other caps from the config. */
    assert_int_equal(level_at(365, 50 * DAY, 60, 14), STATUS_WARNING);
    assert_int_equal(level_at(365, 13 * DAY, 60, 14), STATUS_CRITICAL);
    assert_int_equal(level_at(365, 29 * DAY, 10, 3), STATUS_OK);
    assert_int_equal(level_at(365, 9 * DAY, 10, 3), STATUS_WARNING);
}

static void
test_expired(void **state)
{
    int64_t nb = 1700000000;

    (void)state;
    assert_int_equal(level_at(365, 0, 30, 7), STATUS_CRITICAL);
    assert_int_equal(level_at(6, -DAY, 30, 7), STATUS_CRITICAL);
    /* Not yet valid but long: judged by what is left. */
    assert_int_equal(status_expiry_level(nb, nb + 365 * DAY, nb - DAY, 30, 7, NULL), STATUS_OK);
    /* A zero lifetime is expired the moment it starts. */
    assert_int_equal(status_expiry_level(nb, nb, nb, 30, 7, NULL), STATUS_CRITICAL);
    assert_string_equal(status_level_name(STATUS_OK), "ok");
    assert_string_equal(status_level_name(STATUS_WARNING), "warning");
    assert_string_equal(status_level_name(STATUS_CRITICAL), "critical");
}

static void
test_label_escaping(void **state)
{
    struct metrics_buf b = {NULL, 0, 0};

    (void)state;
    assert_int_equal(metrics_escape_label(&b, "plain-name.example"), 0);
    assert_int_equal(metrics_append(&b, "|"), 0);
    assert_int_equal(metrics_escape_label(&b, "a\\b\"c\nd"), 0);
    assert_string_equal(b.p, "plain-name.example|a\\\\b\\\"c\\nd");
    /* Growth past the first allocation keeps everything. */
    for (int i = 0; i < 2000; i++)
        assert_int_equal(metrics_append(&b, "%d\"", i % 10), 0);
    assert_int_equal(b.len, strlen(b.p));
    assert_int_equal(b.len, strlen("plain-name.example|a\\\\b\\\"c\\nd") + 4000);
    free(b.p);
}

struct seen {
    uint64_t first, last;
    size_t n;
    char texts[8][64];
};

static void
remember(void *arg, uint64_t seq, int64_t time, enum log_level level, const char *text)
{
    struct seen *s = arg;

    (void)time;
    (void)level;
    if (s->n == 0)
        s->first = seq;
    s->last = seq;
    if (s->n < 8)
        snprintf(s->texts[s->n], sizeof(s->texts[0]), "%s", text);
    s->n++;
}

static void
test_ring_wraps(void **state)
{
    struct seen s;
    uint64_t newest, lost = 0, base;

    (void)state;
    assert_int_equal(log_ring_resize(4), 0);
    memset(&s, 0, sizeof(s));
    base = log_ring_read(0, remember, &s, NULL);
    for (int i = 0; i < 10; i++)
        log_info("line %d", i);
    memset(&s, 0, sizeof(s));
    newest = log_ring_read(0, remember, &s, NULL);
    assert_int_equal(newest, base + 10);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.texts[0], "line 6");
    assert_string_equal(s.texts[3], "line 9");
    /* Reading after a sequence number: only newer lines, and what was lost. */
    memset(&s, 0, sizeof(s));
    log_ring_read(base + 2, remember, &s, &lost);
    assert_int_equal(lost, 4);
    assert_int_equal(s.first, base + 7);
    memset(&s, 0, sizeof(s));
    log_ring_read(newest, remember, &s, &lost);
    assert_int_equal(s.n, 0);
    assert_int_equal(lost, 0);
    /* Shrinking keeps the newest; growing keeps them all. */
    assert_int_equal(log_ring_resize(2), 0);
    memset(&s, 0, sizeof(s));
    log_ring_read(0, remember, &s, NULL);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.texts[0], "line 8");
    assert_int_equal(log_ring_resize(100), 0);
    log_info("line 10");
    memset(&s, 0, sizeof(s));
    log_ring_read(0, remember, &s, NULL);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.texts[2], "line 10");
    /* Zero keeps nothing. */
    assert_int_equal(log_ring_resize(0), 0);
    log_info("dropped");
    memset(&s, 0, sizeof(s));
    log_ring_read(0, remember, &s, NULL);
    assert_int_equal(s.n, 0);
    assert_int_equal(log_ring_resize(LOG_RING_MAX + 1), -E_BAD_INPUT);
}

static void
test_mentions(void **state)
{
    (void)state;
    assert_true(log_line_mentions("imported 'www' version 1", "www"));
    assert_true(log_line_mentions("renewal of www failed", "www"));
    assert_true(log_line_mentions("www", "www"));
    assert_true(log_line_mentions("names: a,www,b", "www"));
    /* Not a part of another name or a domain. */
    assert_false(log_line_mentions("imported 'www2' version 1", "www"));
    assert_false(log_line_mentions("CN=www.example.test", "www"));
    assert_false(log_line_mentions("imported 'my-www'", "www"));
    assert_false(log_line_mentions("anything", ""));
    /* A later occurrence counts. */
    assert_true(log_line_mentions("www2 then 'www'", "www"));
}

#define THREADS 4
#define PER_THREAD 500

static void
writer(void *arg)
{
    int id = *(int *)arg;

    for (int i = 0; i < PER_THREAD; i++)
        log_info("thread %d line %d", id, i);
}

struct order {
    uint64_t prev;
    size_t n;
    int ordered;
};

static void
check_order(void *arg, uint64_t seq, int64_t time, enum log_level level, const char *text)
{
    struct order *o = arg;

    (void)time;
    (void)level;
    if ((o->prev != 0 && seq != o->prev + 1) || strncmp(text, "thread ", 7) != 0)
        o->ordered = 0;
    o->prev = seq;
    o->n++;
}

static void
count_notify(void *arg)
{
    (*(unsigned *)arg)++;
}

static void
test_ring_threads(void **state)
{
    uv_thread_t t[THREADS];
    int ids[THREADS];
    struct order o = {0, 0, 1};
    unsigned notified = 0;
    uint64_t before, after;

    (void)state;
    assert_int_equal(log_ring_resize(THREADS * PER_THREAD), 0);
    before = log_ring_read(0, check_order, &o, NULL);
    log_ring_set_notify(count_notify, &notified);
    for (int i = 0; i < THREADS; i++) {
        ids[i] = i;
        assert_int_equal(uv_thread_create(&t[i], writer, &ids[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(uv_thread_join(&t[i]), 0);
    log_ring_set_notify(NULL, NULL);
    memset(&o, 0, sizeof(o));
    o.ordered = 1;
    after = log_ring_read(before, check_order, &o, NULL);
    assert_int_equal(after - before, THREADS * PER_THREAD);
    assert_int_equal(o.n, THREADS * PER_THREAD);
    assert_true(o.ordered);
    /* The notification ran under the lock once per line: no increment was lost. */
    assert_int_equal(notified, THREADS * PER_THREAD);
    log_ring_free();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_six_day),           cmocka_unit_test(test_47_and_90_day),
        cmocka_unit_test(test_one_year_and_caps), cmocka_unit_test(test_expired),
        cmocka_unit_test(test_label_escaping),    cmocka_unit_test(test_ring_wraps),
        cmocka_unit_test(test_mentions),          cmocka_unit_test(test_ring_threads),
    };

    /* Quiet: lines go to the ring; stderr gets only errors. */
    log_init(LOG_SINK_STDERR, LOG_LEVEL_INFO);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
