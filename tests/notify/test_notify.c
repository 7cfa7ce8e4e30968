/*
 * Units of the alerts: the notify config object (every member checked, the
 * path of a bad one named), e-mail addresses, the MIME message, the webhook
 * headers file (mode and lines).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "alert-log.h"
#include "config-notify.h"
#include "config.h"
#include "err.h"
#include "notify-send.h"
#include "notify.h"

/* Parses a whole config; 0 or the error (cause in *cause). */
static int
parse(const char *json, struct config *c, char **cause)
{
    int rc;

    *cause = NULL;
    assert_int_equal(config_defaults(c), 0);
    rc = config_parse(json, strlen(json), c, NULL, NULL, cause);
    return rc;
}

static void
expect_bad(const char *json, const char *words)
{
    struct config c;
    char *cause = NULL;

    assert_int_equal(parse(json, &c, &cause), -E_BAD_INPUT);
    assert_non_null(cause);
    if (strstr(cause, words) == NULL)
        fail_msg("'%s' lacks '%s'", cause, words);
    free(cause);
    config_free(&c);
}

static void
test_good(void **state)
{
    struct config c;
    char *cause = NULL, buf[64];

    (void)state;
    assert_int_equal(
        parse(
            "{\"notify\": {\"email\": {\"smtp_url\": \"smtp://m.example:587\", "
            "\"from\": \"a@example.com\", \"to\": [\"ops@example.com\", \"x@y.example\"], "
            "\"username\": \"u\", \"password_file\": \"/p\"}, \"webhooks\": [{\"url\": "
            "\"https://h.example/x\", \"format\": \"teams\"}], \"report\": \"weekly Mon 07:30\", "
            "\"repeat_hours\": 0}}",
            &c, &cause),
        0);
    assert_non_null(c.notify);
    assert_int_equal(c.notify->tls, CONFIG_NOTIFY_TLS_STARTTLS);
    assert_int_equal(c.notify->to.n, 2);
    assert_int_equal(c.notify->nwebhooks, 1);
    assert_int_equal(c.notify->webhooks[0].format, CONFIG_NOTIFY_FORMAT_TEAMS);
    assert_int_equal(c.notify->report, CONFIG_NOTIFY_REPORT_WEEKLY);
    assert_int_equal(c.notify->report_wday, 1);
    assert_int_equal(c.notify->repeat_hours, 0);
    assert_int_equal(c.notify->retry_seconds, 60);
    config_notify_report_text(c.notify, buf, sizeof(buf));
    assert_string_equal(buf, "weekly mon 07:30");
    config_free(&c);
    /* smtps:// is implicit TLS by default. */
    assert_int_equal(parse("{\"notify\": {\"email\": {\"smtp_url\": \"smtps://m:465\", "
                           "\"from\": \"a@b.example\", \"to\": [\"o@b.example\"]}, "
                           "\"report\": \"daily 23:59\"}}",
                           &c, &cause),
                     0);
    assert_int_equal(c.notify->tls, CONFIG_NOTIFY_TLS_IMPLICIT);
    assert_int_equal(c.notify->report, CONFIG_NOTIFY_REPORT_DAILY);
    config_free(&c);
}

static void
test_bad(void **state)
{
    (void)state;
    expect_bad("{\"notify\": []}", "$.notify: expected an object");
    expect_bad("{\"notify\": {\"emial\": {}}}", "$.notify.emial: unknown key");
    expect_bad("{\"notify\": {\"email\": {\"from\": \"a@b.c\", \"to\": [\"o@b.c\"]}}}",
               "$.notify.email.smtp_url: missing");
    expect_bad("{\"notify\": {\"email\": {\"smtp_url\": \"http://m\", \"from\": \"a@b.c\", "
               "\"to\": [\"o@b.c\"]}}}",
               "not an smtp:// or smtps:// URL");
    expect_bad("{\"notify\": {\"email\": {\"smtp_url\": \"smtp://m\", \"from\": \"a@b.c\", "
               "\"to\": [\"o@b.c\", \"ops\"]}}}",
               "$.notify.email.to[1]: 'ops' is not an e-mail address");
    expect_bad("{\"notify\": {\"email\": {\"smtp_url\": \"smtp://m\", \"from\": \"a@b.c\", "
               "\"to\": []}}}",
               "$.notify.email.to: expected an array of 1 to 32");
    expect_bad("{\"notify\": {\"email\": {\"smtp_url\": \"smtp://m\", \"from\": \"a@b.c\", "
               "\"to\": [\"o@b.c\"], \"username\": \"u\"}}}",
               "$.notify.email.password_file: missing");
    expect_bad("{\"notify\": {\"email\": {\"smtp_url\": \"smtp://m\", \"from\": \"a@b.c\", "
               "\"to\": [\"o@b.c\"], \"tls\": \"implicit\"}}}",
               "tls implicit needs an smtps:// URL");
    expect_bad("{\"notify\": {\"email\": {\"smtp_url\": \"smtps://m\", \"from\": \"a@b.c\", "
               "\"to\": [\"o@b.c\"], \"tls\": \"none\"}}}",
               "$.notify.email.tls: an smtps:// URL is implicit TLS");
    expect_bad("{\"notify\": {\"webhooks\": [{\"url\": \"ftp://x\"}]}}",
               "$.notify.webhooks[0].url: 'ftp://x' is not an http:// or https:// URL");
    expect_bad("{\"notify\": {\"webhooks\": [{\"url\": \"http://x\", \"format\": \"xml\"}]}}",
               "$.notify.webhooks[0].format: 'xml' is not json, slack or teams");
    expect_bad("{\"notify\": {\"report\": \"daily 7:00\"}}", "$.notify.report: 'daily 7:00'");
    expect_bad("{\"notify\": {\"report\": \"weekly funday 07:00\"}}", "is not \"daily HH:MM\"");
    expect_bad("{\"notify\": {\"report\": \"daily 07:00\"}}", "set $.notify.email too");
    expect_bad("{\"notify\": {\"repeat_hours\": -1}}",
               "$.notify.repeat_hours: expected an integer");
}

static void
test_addresses(void **state)
{
    (void)state;
    assert_true(config_notify_address_ok("ops@example.com"));
    assert_true(config_notify_address_ok("first.last+tag@sub.example.co"));
    assert_false(config_notify_address_ok("ops"));
    assert_false(config_notify_address_ok("@example.com"));
    assert_false(config_notify_address_ok("ops@"));
    assert_false(config_notify_address_ok("a@b@c"));
    assert_false(config_notify_address_ok("Ops <ops@example.com>"));
    assert_false(config_notify_address_ok("ops@example.com\r\nBcc: x@y"));
    assert_false(config_notify_address_ok("ops@ex..ample"));
}

static void
test_mime(void **state)
{
    const char *to[] = {"a@example.com", "b@example.com"};
    char *m;

    (void)state;
    m = notify_mime_build("from@example.com", to, 2, "host1", "[certagent] h\r\nBcc: evil@x",
                          "plain text", "<p>html</p>", 0);
    assert_non_null(m);
    assert_non_null(strstr(m, "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"));
    assert_non_null(strstr(m, "To: a@example.com,\r\n b@example.com\r\n"));
    /* A line break in the subject cannot add a header. */
    assert_null(strstr(m, "\r\nBcc:"));
    assert_non_null(strstr(m, "Content-Type: multipart/alternative; boundary="));
    assert_non_null(strstr(m, "Content-Type: text/plain; charset=utf-8"));
    assert_non_null(strstr(m, "Content-Type: text/html; charset=utf-8"));
    assert_non_null(strstr(m, "cGxhaW4gdGV4dA==")); /* base64 of "plain text" */
    free(m);
    /* A subject with UTF-8 is encoded. */
    m = notify_mime_build("f@e.x", to, 1, "h", "caf\xc3\xa9", "t", NULL, 0);
    assert_non_null(strstr(m, "Subject: =?UTF-8?B?Y2Fmw6k=?="));
    assert_null(strstr(m, "multipart"));
    free(m);
}

static void
write_file(const char *path, const char *text, int mode)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, (mode_t)mode), 0);
}

static void
test_headers_file(void **state)
{
    char dir[] = "/tmp/test-notify-XXXXXX", path[64];
    struct curl_slist *l = NULL;
    char *cause = NULL;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/h", dir);
    write_file(path, "# token\n\nAuthorization: Bearer abc\r\nX-Team: ops\n", 0600);
    assert_int_equal(notify_headers_read(path, "k", &l, &cause), 0);
    assert_string_equal(l->data, "Authorization: Bearer abc");
    assert_string_equal(l->next->data, "X-Team: ops");
    assert_null(l->next->next);
    curl_slist_free_all(l);
    /* Readable by others: refused, naming the key and the fix. */
    write_file(path, "Authorization: Bearer abc\n", 0644);
    assert_int_equal(notify_headers_read(path, "k", &l, &cause), -E_DENIED);
    assert_non_null(strstr(cause, "chmod 600"));
    free(cause);
    cause = NULL;
    /* A bad line: its number, not its content. */
    write_file(path, "Authorization: Bearer abc\nsecret-token-without-name\n", 0600);
    assert_int_equal(notify_headers_read(path, "k", &l, &cause), -E_BAD_INPUT);
    assert_non_null(strstr(cause, "line 2"));
    assert_null(strstr(cause, "secret-token"));
    free(cause);
    cause = NULL;
    unlink(path);
    assert_int_equal(notify_headers_read(path, "k", &l, &cause), -E_NOT_FOUND);
    free(cause);
    rmdir(dir);
}

static void
test_report_next(void **state)
{
    struct config_notify c;
    /* Thursday 2026-12-03 10:00:00 UTC. */
    int64_t now = 1796292000;

    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    memset(&c, 0, sizeof(c));
    assert_int_equal(notify_report_next(&c, now), 0);
    c.report = CONFIG_NOTIFY_REPORT_DAILY;
    c.report_hour = 7;
    assert_int_equal(notify_report_next(&c, now), now + 21 * 3600); /* tomorrow 07:00 */
    c.report_hour = 11;
    c.report_minute = 30;
    assert_int_equal(notify_report_next(&c, now), now + 5400); /* today 11:30 */
    c.report = CONFIG_NOTIFY_REPORT_WEEKLY;
    c.report_wday = 1; /* Monday 2026-12-07 11:30 */
    assert_int_equal(notify_report_next(&c, now), now + 4 * 86400 + 5400);
    c.report_wday = 4; /* Thursday: today, later */
    assert_int_equal(notify_report_next(&c, now), now + 5400);
    c.report_hour = 9; /* Thursday, but earlier: next week */
    assert_int_equal(notify_report_next(&c, now), now + 7 * 86400 - 3600 + 1800);
}

/* The Event Log IDs are a contract with monitoring: they never change. */
static void
test_event_ids(void **state)
{
    (void)state;
    assert_int_equal(alert_log_event_id("expiring", 0), 1001);
    assert_int_equal(alert_log_event_id("renewal_failing", 0), 1002);
    assert_int_equal(alert_log_event_id("deploy_failing", 0), 1010);
    assert_int_equal(alert_log_event_id("notify_failing", 0), 1011);
    assert_int_equal(alert_log_event_id("expiring", 1), 2001);
    assert_int_equal(alert_log_event_id("no_such_code", 0), 1000);
    assert_int_equal(alert_log_event_id(NULL, 1), 2000);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),         cmocka_unit_test(test_bad),
        cmocka_unit_test(test_addresses),    cmocka_unit_test(test_mime),
        cmocka_unit_test(test_headers_file), cmocka_unit_test(test_report_next),
        cmocka_unit_test(test_event_ids),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
