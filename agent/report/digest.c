/*
 * The status report as a message (digest.h).  It is rendered from the
 * status document that status.c packs for STATE/status.json, so the
 * warnings, their sentences and the counts are the ones `certctl status`
 * shows; this file only orders and formats them.
 */
#include "digest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "err.h"
#include "proto.h"
#include "status.h"
#include "sys.h"

/* Text lines are wrapped here (mail clients show 78 columns comfortably). */
#define WRAP_COLUMNS 76

/* Colours of the levels (HTML): background, text. */
static const char *const level_bg[] = {"#e6f4ea", "#fef7e0", "#fce8e6"};
static const char *const level_fg[] = {"#137333", "#8a5a00", "#a50e0e"};

void
digest_clear(struct digest *d)
{
    if (d == NULL)
        return;
    free(d->subject);
    free(d->text);
    free(d->html);
    d->subject = d->text = d->html = NULL;
}

void
digest_host(char *buf, size_t len)
{
    size_t n = len;

    if (len == 0)
        return;
    if (uv_os_gethostname(buf, &n) != 0 || buf[0] == '\0')
        snprintf(buf, len, "localhost");
}

void
digest_format_time(int64_t t, char *buf, size_t len)
{
    struct tm tm;

    if (t == 0 || sys_gmtime(t, &tm) != 0) {
        snprintf(buf, len, "-");
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02d %02d:%02d UTC", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min);
}

int
digest_html_escape(struct metrics_buf *b, const char *s, size_t len)
{
    int rc = 0;
    size_t run = 0;

    for (size_t i = 0; i < len && rc == 0; i++) {
        const char *rep = NULL;

        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        case '\0':
            rep = "";
            break;
        default:
            break;
        }
        if (rep == NULL) {
            run++;
            continue;
        }
        if (run > 0)
            rc = metrics_append(b, "%.*s", (int)run, s + i - run);
        run = 0;
        rc = rc ? rc : metrics_append(b, "%s", rep);
    }
    if (rc == 0 && run > 0)
        rc = metrics_append(b, "%.*s", (int)run, s + len - run);
    return rc;
}

/* ---- reading the document ---- */

const char *
digest_str(const msgpack_object *m, const char *key, size_t *len)
{
    const char *s;

    if (proto_get_str(m, key, &s, len) != 0) {
        *len = 0;
        return "";
    }
    return s;
}

int64_t
digest_int(const msgpack_object *m, const char *key)
{
    int64_t v;

    return proto_get_int(m, key, &v) == 0 ? v : 0;
}

int
digest_level(const msgpack_object *m)
{
    size_t len;
    const char *h = digest_str(m, "health", &len);

    if (len == 0)
        h = digest_str(m, "level", &len);
    if (len == 8 && memcmp(h, "critical", 8) == 0)
        return STATUS_CRITICAL;
    if (len == 7 && memcmp(h, "warning", 7) == 0)
        return STATUS_WARNING;
    return STATUS_OK;
}

static int
compare_rows(const void *pa, const void *pb)
{
    const msgpack_object *a = *(const msgpack_object *const *)pa;
    const msgpack_object *b = *(const msgpack_object *const *)pb;
    int la = digest_level(a), lb = digest_level(b);
    int64_t ea = digest_int(a, "not_after"), eb = digest_int(b, "not_after");
    size_t na, nb;
    const char *sa, *sb;
    int c;

    if (la != lb)
        return lb - la;
    if (ea != eb)
        return ea < eb ? -1 : 1;
    sa = digest_str(a, "name", &na);
    sb = digest_str(b, "name", &nb);
    c = memcmp(sa, sb, na < nb ? na : nb);
    return c != 0 ? c : na < nb ? -1 : na > nb ? 1 : 0;
}

int
digest_sorted_rows(const msgpack_object *doc, const msgpack_object ***rows, size_t *n)
{
    const msgpack_object_array *a;
    const msgpack_object **v;
    size_t k = 0;

    *rows = NULL;
    *n = 0;
    if (proto_get_array(doc, "certificates", &a) != 0 || a->size == 0)
        return 0;
    if ((v = calloc(a->size, sizeof(*v))) == NULL)
        return -E_NOMEM;
    for (uint32_t i = 0; i < a->size; i++) {
        if (a->ptr[i].type == MSGPACK_OBJECT_MAP)
            v[k++] = &a->ptr[i];
    }
    qsort(v, k, sizeof(*v), compare_rows);
    *rows = v;
    *n = k;
    return 0;
}

/* ---- the subject ---- */

static void
upper(char *s)
{
    for (; *s; s++) {
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 'a' + 'A');
    }
}

static int
make_subject(const msgpack_object *doc, const char *host, char **out)
{
    struct metrics_buf b = {NULL, 0, 0};
    size_t hlen;
    const char *h = digest_str(doc, "health", &hlen);
    char health[16];
    int64_t expired = digest_int(doc, "expired"), expiring = digest_int(doc, "expiring");
    int64_t warnings = digest_int(doc, "warnings_count"), count = digest_int(doc, "count");
    int rc;

    snprintf(health, sizeof(health), "%.*s", (int)(hlen > 0 ? hlen : 2), hlen > 0 ? h : "ok");
    upper(health);
    rc = metrics_append(&b, "[certagent] %s: %s", host, health);
    if (rc == 0 && expired > 0)
        rc = metrics_append(&b, ", %lld expired", (long long)expired);
    if (rc == 0 && expiring > 0)
        rc = metrics_append(&b, ", %lld expiring", (long long)expiring);
    if (rc == 0 && warnings > 0)
        rc = metrics_append(&b, ", %lld warning%s", (long long)warnings, warnings == 1 ? "" : "s");
    if (rc == 0 && expired == 0 && expiring == 0 && warnings == 0)
        rc = metrics_append(&b, ", %lld certificate%s", (long long)count, count == 1 ? "" : "s");
    if (rc == 0) {
        /* A subject is one line: a host name never holds a line break, but be sure. */
        for (size_t i = 0; i < b.len; i++) {
            if ((unsigned char)b.p[i] < 0x20)
                b.p[i] = ' ';
        }
    }
    if (rc != 0) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    return 0;
}

/* ---- the text ---- */

/*
 * Appends words of s[0, len) wrapped at WRAP_COLUMNS, the first line after
 * col columns already used, the next ones indented by indent spaces.
 * Control characters become spaces (a CA's words may hold line breaks).
 */
static int
text_wrapped(struct metrics_buf *b, const char *s, size_t len, size_t col, size_t indent)
{
    size_t i = 0;
    int rc = 0, first = 1;

    while (i < len && rc == 0) {
        size_t start, wlen;

        while (i < len && ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f))
            i++;
        if (i >= len)
            break;
        start = i;
        while (i < len && (unsigned char)s[i] > 0x20 && s[i] != 0x7f)
            i++;
        wlen = i - start;
        if (!first && col + 1 + wlen > WRAP_COLUMNS && col > indent) {
            rc = metrics_append(b, "\n%*s", (int)indent, "");
            col = indent;
        } else if (!first) {
            rc = metrics_append(b, " ");
            col++;
        }
        rc = rc ? rc : metrics_append(b, "%.*s", (int)wlen, s + start);
        col += wlen;
        first = 0;
    }
    return rc ? rc : metrics_append(b, "\n");
}

/* A field line: "  Label:        value" with the value wrapped. */
static int
text_field(struct metrics_buf *b, const char *label, const char *value, size_t len)
{
    int rc = metrics_append(b, "  %-14s", label);

    return rc ? rc : text_wrapped(b, value, len, 16, 16);
}

int
digest_names(const msgpack_object *row, struct metrics_buf *out)
{
    static const char *const keys[] = {"dns", "ips"};
    int rc = 0;

    for (size_t k = 0; k < 2 && rc == 0; k++) {
        const msgpack_object_array *a;

        if (proto_get_array(row, keys[k], &a) != 0)
            continue;
        for (uint32_t i = 0; i < a->size && rc == 0; i++) {
            if (a->ptr[i].type != MSGPACK_OBJECT_STR)
                continue;
            rc = metrics_append(out, "%s%.*s", out->len > 0 ? ", " : "",
                                (int)a->ptr[i].via.str.size, a->ptr[i].via.str.ptr);
        }
    }
    /* metrics_append of nothing leaves p NULL: callers want a string. */
    return rc ? rc : metrics_append(out, "%s", "");
}

/* The lines that describe one row, in words; the same facts for text and HTML. */
struct row_words {
    char expires[96];
    char next[128];
    char last[64];
    const char *last_result; /* "ok", "failed", "" */
    size_t last_result_len;
    const char *last_error;
    size_t last_error_len;
    char source[160];
};

static void
describe(const msgpack_object *row, int64_t now, struct row_words *w)
{
    size_t slen, calen, rlen;
    const char *source = digest_str(row, "source", &slen);
    const char *ca = digest_str(row, "ca", &calen);
    const char *reason = digest_str(row, "next_reason", &rlen);
    int64_t not_after = digest_int(row, "not_after"), days = digest_int(row, "days_left");
    int64_t next = digest_int(row, "next_renewal"), last = digest_int(row, "last_attempt");
    int in_progress = 0, auto_renew = 0;
    char date[32];

    (void)now;
    proto_get_bool(row, "in_progress", &in_progress);
    proto_get_bool(row, "auto_renew", &auto_renew);
    if (calen > 0)
        snprintf(w->source, sizeof(w->source), "%.*s (CA %.*s)", (int)slen, source, (int)calen,
                 ca);
    else
        snprintf(w->source, sizeof(w->source), "%.*s", (int)slen, source);
    digest_format_time(not_after, date, sizeof(date));
    if (days < 0 || not_after <= now)
        snprintf(w->expires, sizeof(w->expires), "%s (expired)", date);
    else
        snprintf(w->expires, sizeof(w->expires), "%s (%lld day%s left)", date, (long long)days,
                 days == 1 ? "" : "s");
    if (in_progress)
        snprintf(w->next, sizeof(w->next), "in progress now");
    else if (next != 0) {
        digest_format_time(next, date, sizeof(date));
        snprintf(w->next, sizeof(w->next), "%s%s%.*s%s", date, rlen > 0 ? " (" : "", (int)rlen,
                 reason, rlen > 0 ? ")" : "");
    } else {
        snprintf(w->next, sizeof(w->next), "%s",
                 auto_renew ? "not planned" : "none (not renewed by the agent)");
    }
    digest_format_time(last, w->last, sizeof(w->last));
    w->last_result = digest_str(row, "last_result", &w->last_result_len);
    w->last_error = digest_str(row, "last_error", &w->last_error_len);
}

static const char *const level_word[] = {"OK", "WARNING", "CRITICAL"};

static int
text_row(struct metrics_buf *b, const msgpack_object *row, int64_t now)
{
    struct metrics_buf names = {NULL, 0, 0};
    struct row_words w;
    const msgpack_object_array *warnings;
    size_t nlen;
    const char *name = digest_str(row, "name", &nlen);
    int level = digest_level(row), rc;

    describe(row, now, &w);
    rc = metrics_append(b, "\n%-9s %.*s\n", level_word[level], (int)nlen, name);
    rc = rc ? rc : digest_names(row, &names);
    rc = rc ? rc : text_field(b, "Names:", names.p, names.len);
    rc = rc ? rc : text_field(b, "Source:", w.source, strlen(w.source));
    rc = rc ? rc : text_field(b, "Expires:", w.expires, strlen(w.expires));
    rc = rc ? rc : text_field(b, "Next renewal:", w.next, strlen(w.next));
    if (rc == 0 && w.last_result_len > 0) {
        rc =
            metrics_append(b, "  %-14s%s, %.*s%s", "Last attempt:", w.last, (int)w.last_result_len,
                           w.last_result, w.last_error_len > 0 ? ": " : "");
        rc = rc ? rc
                : text_wrapped(b, w.last_error, w.last_error_len,
                               16 + strlen(w.last) + 2 + w.last_result_len + 2, 16);
    } else if (rc == 0) {
        rc = text_field(b, "Last attempt:", "none", 4);
    }
    if (rc == 0 && proto_get_array(row, "warnings", &warnings) == 0 && warnings->size > 0) {
        rc = metrics_append(b, "  Warnings:\n");
        for (uint32_t i = 0; i < warnings->size && rc == 0; i++) {
            const msgpack_object *wo = &warnings->ptr[i];
            size_t llen, clen, mlen;
            const char *lv = digest_str(wo, "level", &llen), *code = digest_str(wo, "code", &clen);
            const char *msg = digest_str(wo, "message", &mlen);
            char head[80];
            int n =
                snprintf(head, sizeof(head), "    - %.*s (%.*s): ", (int)(llen > 10 ? 10 : llen),
                         lv, (int)(clen > 40 ? 40 : clen), code);

            rc = metrics_append(b, "%s", head);
            rc = rc ? rc : text_wrapped(b, msg, mlen, (size_t)n, 6);
        }
    }
    free(names.p);
    return rc;
}

static int
make_text(const msgpack_object *doc, const msgpack_object **rows, size_t n, const char *host,
          const char *subject, int64_t now, char **out)
{
    struct metrics_buf b = {NULL, 0, 0}, summary = {NULL, 0, 0};
    char date[32];
    int64_t count = digest_int(doc, "count"), warnings = digest_int(doc, "warnings_count");
    int rc;

    digest_format_time(now, date, sizeof(date));
    rc = metrics_append(&b, "%s\n\n", subject);
    rc = rc ? rc
            : metrics_append(&summary, "Status report of the certificate agent on %s, %s.", host,
                             date);
    rc = rc ? rc : text_wrapped(&b, summary.p, summary.len, 0, 0);
    summary.len = 0;
    rc = rc ? rc
            : metrics_append(
                  &summary,
                  "%lld certificate%s: %lld ok, %lld warning, %lld critical; %lld "
                  "expired, %lld expiring within %lld days; %lld warning%s.",
                  (long long)count, count == 1 ? "" : "s", (long long)digest_int(doc, "certs_ok"),
                  (long long)digest_int(doc, "certs_warning"),
                  (long long)digest_int(doc, "certs_critical"),
                  (long long)digest_int(doc, "expired"), (long long)digest_int(doc, "expiring"),
                  (long long)digest_int(doc, "warn_days"), (long long)warnings,
                  warnings == 1 ? "" : "s");
    rc = rc ? rc : text_wrapped(&b, summary.p, summary.len, 0, 0);
    free(summary.p);
    if (rc == 0 && n == 0)
        rc = metrics_append(&b, "\nThe store holds no certificate.\n");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = text_row(&b, rows[i], now);
    if (rc == 0) {
        size_t alen;
        const char *agent = digest_str(doc, "agent", &alen);

        rc = metrics_append(&b, "\n-- \ncertagent %.*s; certctl status shows the same on %s.\n",
                            (int)alen, agent, host);
    }
    if (rc != 0) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    return 0;
}

/* ---- the HTML ---- */

static int
html_text(struct metrics_buf *b, const char *s)
{
    return digest_html_escape(b, s, strlen(s));
}

/* A cell: <td style=...>escaped text</td>. */
static int
html_cell(struct metrics_buf *b, const char *s, size_t len)
{
    int rc = metrics_append(b, "<td style=\"padding:6px 8px;border-bottom:1px solid #dddddd;"
                               "vertical-align:top;font-size:13px;\">");

    rc = rc ? rc : digest_html_escape(b, s, len);
    return rc ? rc : metrics_append(b, "</td>");
}

static int
html_row(struct metrics_buf *b, const msgpack_object *row, int64_t now)
{
    struct metrics_buf names = {NULL, 0, 0};
    struct row_words w;
    const msgpack_object_array *warnings;
    size_t nlen;
    const char *name = digest_str(row, "name", &nlen);
    int level = digest_level(row), rc;

    describe(row, now, &w);
    rc = metrics_append(b,
                        "<tr><td bgcolor=\"%s\" style=\"padding:6px 8px;border-bottom:1px solid "
                        "#dddddd;vertical-align:top;font-size:12px;font-weight:bold;color:%s;"
                        "background-color:%s;\">%s</td>",
                        level_bg[level], level_fg[level], level_bg[level], level_word[level]);
    rc = rc ? rc
            : metrics_append(b, "<td style=\"padding:6px 8px;border-bottom:1px solid #dddddd;"
                                "vertical-align:top;font-size:13px;\"><b>");
    rc = rc ? rc : digest_html_escape(b, name, nlen);
    rc = rc ? rc : metrics_append(b, "</b><br><span style=\"color:#555555;font-size:12px;\">");
    rc = rc ? rc : digest_names(row, &names);
    rc = rc ? rc : digest_html_escape(b, names.p, names.len);
    rc = rc ? rc : metrics_append(b, "</span></td>");
    rc = rc ? rc : html_cell(b, w.source, strlen(w.source));
    rc = rc ? rc : html_cell(b, w.expires, strlen(w.expires));
    rc = rc ? rc : html_cell(b, w.next, strlen(w.next));
    if (rc == 0) {
        struct metrics_buf last = {NULL, 0, 0};

        if (w.last_result_len > 0)
            rc = metrics_append(&last, "%s, %.*s%s%.*s", w.last, (int)w.last_result_len,
                                w.last_result, w.last_error_len > 0 ? ": " : "",
                                (int)w.last_error_len, w.last_error);
        else
            rc = metrics_append(&last, "none");
        rc = rc ? rc : html_cell(b, last.p, last.len);
        free(last.p);
    }
    rc = rc ? rc : metrics_append(b, "</tr>\n");
    if (rc == 0 && proto_get_array(row, "warnings", &warnings) == 0 && warnings->size > 0) {
        rc = metrics_append(b, "<tr><td style=\"border-bottom:1px solid #dddddd;\"></td>"
                               "<td colspan=\"5\" style=\"padding:2px 8px 8px 8px;"
                               "border-bottom:1px solid #dddddd;font-size:13px;\">");
        for (uint32_t i = 0; i < warnings->size && rc == 0; i++) {
            const msgpack_object *wo = &warnings->ptr[i];
            size_t llen, clen, mlen;
            const char *lv = digest_str(wo, "level", &llen), *code = digest_str(wo, "code", &clen);
            const char *msg = digest_str(wo, "message", &mlen);
            int wl = llen == 8 ? STATUS_CRITICAL : STATUS_WARNING;

            rc = metrics_append(b,
                                "<div style=\"margin:2px 0;\"><span style=\"color:%s;"
                                "font-weight:bold;\">",
                                level_fg[wl]);
            rc = rc ? rc : digest_html_escape(b, lv, llen);
            rc = rc ? rc : metrics_append(b, "</span> <code style=\"font-size:12px;\">");
            rc = rc ? rc : digest_html_escape(b, code, clen);
            rc = rc ? rc : metrics_append(b, "</code>: ");
            rc = rc ? rc : digest_html_escape(b, msg, mlen);
            rc = rc ? rc : metrics_append(b, "</div>");
        }
        rc = rc ? rc : metrics_append(b, "</td></tr>\n");
    }
    free(names.p);
    return rc;
}

static int
make_html(const msgpack_object *doc, const msgpack_object **rows, size_t n, const char *host,
          const char *subject, int64_t now, char **out)
{
    static const char *const heads[] = {"Health",  "Certificate",  "Source",
                                        "Expires", "Next renewal", "Last attempt"};
    struct metrics_buf b = {NULL, 0, 0};
    size_t hlen;
    const char *h = digest_str(doc, "health", &hlen);
    int level = hlen == 8 ? STATUS_CRITICAL : hlen == 7 ? STATUS_WARNING : STATUS_OK;
    char date[32];
    int rc;

    (void)h;
    digest_format_time(now, date, sizeof(date));
    rc = metrics_append(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                            "<meta name=\"viewport\" content=\"width=device-width\"><title>");
    rc = rc ? rc : html_text(&b, subject);
    rc = rc ? rc
            : metrics_append(&b, "</title></head>\n<body style=\"margin:0;padding:16px;"
                                 "background-color:#ffffff;color:#202124;font-family:Arial,"
                                 "Helvetica,sans-serif;\">\n");
    rc = rc ? rc
            : metrics_append(&b,
                             "<table role=\"presentation\" width=\"100%%\" cellpadding=\"0\" "
                             "cellspacing=\"0\" border=\"0\"><tr><td bgcolor=\"%s\" "
                             "style=\"padding:12px 16px;background-color:%s;color:%s;"
                             "font-size:20px;font-weight:bold;\">%s</td></tr>"
                             "<tr><td style=\"padding:8px 16px;font-size:14px;\">",
                             level_bg[level], level_bg[level], level_fg[level], level_word[level]);
    rc = rc ? rc : metrics_append(&b, "Status report of the certificate agent on <b>");
    rc = rc ? rc : html_text(&b, host);
    rc = rc ? rc : metrics_append(&b, "</b>, %s.<br>", date);
    rc = rc ? rc
            : metrics_append(
                  &b,
                  "%lld certificates: %lld ok, %lld warning, %lld critical; %lld expired, "
                  "%lld expiring within %lld days; %lld warnings.</td></tr></table>\n",
                  (long long)digest_int(doc, "count"), (long long)digest_int(doc, "certs_ok"),
                  (long long)digest_int(doc, "certs_warning"),
                  (long long)digest_int(doc, "certs_critical"),
                  (long long)digest_int(doc, "expired"), (long long)digest_int(doc, "expiring"),
                  (long long)digest_int(doc, "warn_days"),
                  (long long)digest_int(doc, "warnings_count"));
    if (rc == 0 && n == 0)
        rc =
            metrics_append(&b, "<p style=\"font-size:14px;\">The store holds no certificate.</p>");
    if (rc == 0 && n > 0) {
        rc = metrics_append(&b, "<table width=\"100%%\" cellpadding=\"0\" cellspacing=\"0\" "
                                "border=\"0\" style=\"border-collapse:collapse;margin-top:8px;\">"
                                "<tr>");
        for (size_t i = 0; i < 6 && rc == 0; i++)
            rc = metrics_append(&b,
                                "<th align=\"left\" bgcolor=\"#f1f3f4\" style=\"padding:6px 8px;"
                                "background-color:#f1f3f4;font-size:12px;text-align:left;\">%s"
                                "</th>",
                                heads[i]);
        rc = rc ? rc : metrics_append(&b, "</tr>\n");
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = html_row(&b, rows[i], now);
        rc = rc ? rc : metrics_append(&b, "</table>\n");
    }
    rc = rc ? rc
            : metrics_append(&b, "<p style=\"color:#777777;font-size:12px;\">certagent; "
                                 "<code>certctl status</code> shows the same on ");
    rc = rc ? rc : html_text(&b, host);
    rc = rc ? rc : metrics_append(&b, ".</p>\n</body></html>\n");
    if (rc != 0) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    return 0;
}

int
digest_render(const msgpack_object *doc, const char *host, int64_t now, struct digest *out,
              char **cause)
{
    const msgpack_object **rows = NULL;
    size_t n = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (doc->type != MSGPACK_OBJECT_MAP || proto_get(doc, "certificates") == NULL) {
        err_set(cause, "the status document has no certificates");
        return -E_BAD_INPUT;
    }
    if ((rc = digest_sorted_rows(doc, &rows, &n)) != 0 ||
        (rc = make_subject(doc, host, &out->subject)) != 0 ||
        (rc = make_text(doc, rows, n, host, out->subject, now, &out->text)) != 0 ||
        (rc = make_html(doc, rows, n, host, out->subject, now, &out->html)) != 0) {
        err_set(cause, "cannot build the status report: %s", err_message(rc));
        digest_clear(out);
    }
    free(rows);
    return rc;
}

int
digest_build(struct status *st, int64_t now, struct digest *out, char **cause)
{
    msgpack_sbuffer doc;
    msgpack_unpacked u;
    size_t off = 0;
    char host[256];
    int rc;

    memset(out, 0, sizeof(*out));
    msgpack_sbuffer_init(&doc);
    msgpack_unpacked_init(&u);
    if ((rc = status_pack_document(st, now, &doc)) != 0) {
        err_set(cause, "cannot build the status report: %s", err_message(rc));
        goto out;
    }
    if (msgpack_unpack_next(&u, doc.data, doc.size, &off) != MSGPACK_UNPACK_SUCCESS) {
        rc = -E_NOMEM;
        err_set(cause, "cannot build the status report: %s", err_message(rc));
        goto out;
    }
    digest_host(host, sizeof(host));
    rc = digest_render(&u.data, host, now, out, cause);
out:
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&doc);
    return rc;
}
