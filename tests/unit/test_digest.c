/*
 * The status report as a message (report/digest.c), from a hand-made status
 * document: the order (worst first, then sooner expiry, then name), the
 * subject, HTML escaping of everything that comes from certificates and CAs,
 * and the text's line breaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "digest.h"
#include "err.h"
#include "proto.h"
#include "status.h"

#define NOW 1800000000
#define DAY 86400

struct row {
    const char *name, *health, *dns, *last_error, *warning_level, *warning;
    int64_t days;
};

static void
pack_row(msgpack_packer *pk, const struct row *r)
{
    msgpack_pack_map(pk, r->warning != NULL ? 12 : 11);
    proto_pack_kv_str(pk, "name", r->name);
    proto_pack_kv_str(pk, "source", "acme");
    proto_pack_kv_str(pk, "ca", "le<&>");
    proto_pack_kv_int(pk, "not_after", NOW + r->days * DAY);
    proto_pack_kv_int(pk, "days_left", r->days);
    proto_pack_kv_str(pk, "health", r->health);
    proto_pack_kv_int(pk, "next_renewal", NOW + 3600);
    proto_pack_kv_str(pk, "next_reason", "retry");
    proto_pack_kv_int(pk, "last_attempt", NOW - 60);
    if (r->last_error != NULL)
        proto_pack_kv_str(pk, "last_result", "failed");
    else
        proto_pack_kv_str(pk, "last_result", "ok");
    proto_pack_str(pk, "dns");
    msgpack_pack_array(pk, 1);
    proto_pack_str(pk, r->dns);
    if (r->warning != NULL) {
        proto_pack_str(pk, "warnings");
        msgpack_pack_array(pk, 1);
        msgpack_pack_map(pk, 3);
        proto_pack_kv_str(pk, "code", "renewal_failing");
        proto_pack_kv_str(pk, "level", r->warning_level);
        proto_pack_kv_str(pk, "message", r->warning);
    }
}

/* A document of the rows given, in that order. */
static void
make_doc(msgpack_sbuffer *sb, const struct row *rows, size_t n, const char *health)
{
    msgpack_packer pk;

    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 10);
    proto_pack_kv_str(&pk, "agent", "26.2.0");
    proto_pack_kv_str(&pk, "health", health);
    proto_pack_kv_uint(&pk, "count", n);
    proto_pack_kv_uint(&pk, "expired", 0);
    proto_pack_kv_uint(&pk, "expiring", 1);
    proto_pack_kv_uint(&pk, "warnings_count", 2);
    proto_pack_kv_uint(&pk, "warn_days", 30);
    proto_pack_kv_uint(&pk, "certs_ok", 1);
    proto_pack_kv_uint(&pk, "certs_warning", 1);
    proto_pack_str(&pk, "certificates");
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++)
        pack_row(&pk, &rows[i]);
}

static void
render(const struct row *rows, size_t n, const char *health, struct digest *d)
{
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    size_t off = 0;
    char *cause = NULL;

    make_doc(&sb, rows, n, health);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(digest_render(&u.data, "host<1>", NOW, d, &cause), 0);
    assert_null(cause);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

static const struct row rows[] = {
    {"b-ok", "ok", "b.example", NULL, NULL, NULL, 80},
    {"a-ok", "ok", "a.example", NULL, NULL, NULL, 80},
    {"warn", "warning", "w.example", "boom", "warning",
     "warn: renewal failing: <script>alert(1)</script> & \"quoted\" 'words'", 60},
    {"crit-late", "critical", "cl.example", NULL, NULL, NULL, 5},
    {"crit-soon", "critical", "cs.example", NULL, NULL, NULL, 2},
};

static size_t
pos(const char *hay, const char *needle)
{
    const char *p = strstr(hay, needle);

    assert_non_null(p);
    return (size_t)(p - hay);
}

static void
test_order(void **state)
{
    struct digest d;

    (void)state;
    render(rows, 5, "critical", &d);
    /* critical (sooner expiry first), warning, ok (by name). */
    assert_true(pos(d.text, "CRITICAL  crit-soon") < pos(d.text, "CRITICAL  crit-late"));
    assert_true(pos(d.text, "CRITICAL  crit-late") < pos(d.text, "WARNING   warn"));
    assert_true(pos(d.text, "WARNING   warn") < pos(d.text, "OK        a-ok"));
    assert_true(pos(d.text, "OK        a-ok") < pos(d.text, "OK        b-ok"));
    /* The same order in the HTML. */
    assert_true(pos(d.html, "<b>crit-soon</b>") < pos(d.html, "<b>crit-late</b>"));
    assert_true(pos(d.html, "<b>warn</b>") < pos(d.html, "<b>a-ok</b>"));
    assert_string_equal(d.subject, "[certagent] host<1>: CRITICAL, 1 expiring, 2 warnings");
    digest_clear(&d);
    digest_clear(&d); /* twice is harmless */
}

static void
test_html_escaped(void **state)
{
    struct digest d;

    (void)state;
    render(rows, 5, "warning", &d);
    assert_non_null(strstr(d.html, "<!DOCTYPE html>"));
    assert_non_null(strstr(d.html, "</html>"));
    assert_null(strstr(d.html, "<script>"));
    assert_null(strstr(d.html, "le<&>"));
    assert_null(strstr(d.html, "host<1>"));
    assert_non_null(strstr(d.html,
                           "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot; "
                           "&#39;words&#39;"));
    assert_non_null(strstr(d.html, "acme (CA le&lt;&amp;&gt;)"));
    assert_non_null(strstr(d.html, "<title>[certagent] host&lt;1&gt;: WARNING"));
    /* No external resources. */
    assert_null(strstr(d.html, "http://"));
    assert_null(strstr(d.html, "https://"));
    assert_null(strstr(d.html, "src="));
    /* The text is not escaped. */
    assert_non_null(strstr(d.text, "<script>alert(1)</script>"));
    digest_clear(&d);
}

static void
test_escape_function(void **state)
{
    struct metrics_buf b = {NULL, 0, 0};
    static const char in[] = "a<b>&\"c'd\0e";

    (void)state;
    assert_int_equal(digest_html_escape(&b, in, sizeof(in) - 1), 0);
    assert_string_equal(b.p, "a&lt;b&gt;&amp;&quot;c&#39;de");
    free(b.p);
}

static void
test_text_wrapped(void **state)
{
    struct row r = {"long", "warning", "l.example", "x", "warning", NULL, 40};
    char msg[600];
    struct digest d;
    const char *line;

    (void)state;
    memset(msg, 0, sizeof(msg));
    for (size_t i = 0, used = 0; i < 60; i++)
        used += (size_t)snprintf(msg + used, sizeof(msg) - used, "%s",
                                 i == 30 ? "line\nbreak " : "word ");
    r.warning = msg;
    render(&r, 1, "warning", &d);
    line = d.text;
    while (line != NULL && *line != '\0') {
        const char *nl = strchr(line, '\n');
        size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);

        assert_true(len <= 80);
        line = nl != NULL ? nl + 1 : NULL;
    }
    /* A CA's line break does not break the layout. */
    assert_non_null(strstr(d.text, "line break"));
    digest_clear(&d);
}

static void
test_empty_and_ok(void **state)
{
    struct digest d;
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    msgpack_packer pk;
    size_t off = 0;
    char *cause = NULL;

    (void)state;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    proto_pack_kv_str(&pk, "health", "ok");
    proto_pack_kv_uint(&pk, "count", 0);
    proto_pack_str(&pk, "certificates");
    msgpack_pack_array(&pk, 0);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(digest_render(&u.data, "h", NOW, &d, &cause), 0);
    assert_string_equal(d.subject, "[certagent] h: OK, 0 certificates");
    assert_non_null(strstr(d.text, "The store holds no certificate."));
    digest_clear(&d);
    /* Not a status document. */
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 0);
    off = 0;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(digest_render(&u.data, "h", NOW, &d, &cause), -E_BAD_INPUT);
    assert_non_null(cause);
    assert_null(d.subject);
    free(cause);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),           cmocka_unit_test(test_html_escaped),
        cmocka_unit_test(test_escape_function), cmocka_unit_test(test_text_wrapped),
        cmocka_unit_test(test_empty_and_ok),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
