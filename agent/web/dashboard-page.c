/*
 * The dashboard's page (dashboard.h: dashboard_page): one HTML document with
 * a stylesheet in its head, no script, no external resource.  The rows come
 * from the status document in the report's order (digest_sorted_rows: worst
 * first); every value is escaped (digest_html_escape).  The lifetime bar is
 * a box whose width is the share of the lifetime left.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard.h"
#include "digest.h"
#include "err.h"
#include "proto.h"
#include "status.h"
#include "store.h"

/* Next renewals listed, soonest first. */
#define NEXT_RENEWALS_MAX 20
/* Versions of a certificate shown as its recent renewals. */
#define HISTORY_MAX 3

static const char *const level_class[] = {"ok", "warning", "critical"};
static const char *const level_word[] = {"OK", "WARNING", "CRITICAL"};

static const char style[] =
    "body{font-family:system-ui,Arial,Helvetica,sans-serif;margin:0;color:#202124;"
    "background:#fafafa}"
    "header{padding:16px 24px;color:#fff}"
    "header.ok{background:#137333}header.warning{background:#b06000}"
    "header.critical{background:#a50e0e}"
    "header h1{margin:0;font-size:28px}header p{margin:4px 0 0 0}"
    "main{padding:8px 24px 24px 24px}"
    "h2{font-size:18px;margin:24px 0 8px 0}"
    "table{border-collapse:collapse;width:100%;background:#fff}"
    "th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e0e0e0;vertical-align:top;"
    "font-size:13px}"
    "th{background:#f1f3f4}"
    ".lv{font-weight:bold;white-space:nowrap}"
    ".lv.ok{color:#137333}.lv.warning{color:#8a5a00}.lv.critical{color:#a50e0e}"
    "tr.critical td:first-child{border-left:4px solid #a50e0e}"
    "tr.warning td:first-child{border-left:4px solid #e37400}"
    "tr.ok td:first-child{border-left:4px solid #34a853}"
    ".names,.hist{color:#5f6368;font-size:12px}"
    ".bar{width:120px;height:10px;background:#e0e0e0;border-radius:2px;overflow:hidden}"
    ".bar span{display:block;height:10px}"
    ".bar .ok{background:#34a853}.bar .warning{background:#f9ab00}"
    ".bar .critical{background:#d93025}"
    "ul{margin:0;padding-left:20px}li{margin:3px 0;font-size:13px}"
    "code{font-size:12px}"
    "footer{color:#777;font-size:12px;padding:0 24px 24px 24px}";

static int
esc(struct metrics_buf *b, const char *s, size_t len)
{
    return digest_html_escape(b, s, len);
}

static int
esc_str(struct metrics_buf *b, const char *s)
{
    return digest_html_escape(b, s, strlen(s));
}

static int
esc_field(struct metrics_buf *b, const msgpack_object *m, const char *key)
{
    size_t len;
    const char *s = digest_str(m, key, &len);

    return esc(b, s, len);
}

/* A row's names, escaped. */
static int
names_cell(struct metrics_buf *b, const msgpack_object *row)
{
    struct metrics_buf names = {0};
    int rc = digest_names(row, &names);

    rc = rc ? rc : esc(b, names.p, names.len);
    free(names.p);
    return rc;
}

/* The versions of name, newest first: its recent renewals. */
static int
history_cell(struct metrics_buf *b, const struct store *store, const char *name, size_t nlen)
{
    char key[512];
    const struct store_cert *cert;
    int rc = 0;
    size_t shown = 0;

    if (store == NULL || nlen >= sizeof(key))
        return 0;
    memcpy(key, name, nlen);
    key[nlen] = '\0';
    if ((cert = store_find(store, key)) == NULL)
        return 0;
    for (size_t i = cert->nversions; i > 0 && shown < HISTORY_MAX && rc == 0; i--, shown++) {
        const struct store_version *v = &cert->versions[i - 1];
        char date[32];

        digest_format_time(v->created, date, sizeof(date));
        rc = metrics_append(b, "%sv%u %s (%s)", shown > 0 ? "<br>" : "", v->version, date,
                            store_source_name(v->source));
    }
    if (rc == 0 && cert->nversions > HISTORY_MAX)
        rc = metrics_append(b, "<br>%zu older", cert->nversions - HISTORY_MAX);
    return rc;
}

static int
cert_row(struct metrics_buf *b, const msgpack_object *row, const struct store *store, int64_t now)
{
    int level = digest_level(row), rc;
    int64_t not_before = digest_int(row, "not_before"), not_after = digest_int(row, "not_after");
    int64_t days = digest_int(row, "days_left"), next = digest_int(row, "next_renewal");
    int64_t last = digest_int(row, "last_attempt"), life = not_after - not_before, pct;
    size_t nlen, calen, rlen, elen;
    const char *name = digest_str(row, "name", &nlen), *ca = digest_str(row, "ca", &calen);
    const char *result = digest_str(row, "last_result", &rlen),
               *err = digest_str(row, "last_error", &elen);
    char date[32];

    pct = life > 0 && not_after > now ? (not_after - now) * 100 / life : 0;
    if (pct > 100)
        pct = 100;
    rc = metrics_append(b, "<tr class=\"%s\"><td class=\"lv %s\">%s</td><td><b>",
                        level_class[level], level_class[level], level_word[level]);
    rc = rc ? rc : esc(b, name, nlen);
    rc = rc ? rc : metrics_append(b, "</b><div class=\"names\">");
    rc = rc ? rc : names_cell(b, row);
    rc = rc ? rc : metrics_append(b, "</div></td><td>");
    rc = rc ? rc : esc_field(b, row, "source");
    if (rc == 0 && calen > 0) {
        rc = metrics_append(b, "<div class=\"names\">CA ");
        rc = rc ? rc : esc(b, ca, calen);
        rc = rc ? rc : metrics_append(b, "</div>");
    }
    digest_format_time(not_after, date, sizeof(date));
    rc = rc ? rc : metrics_append(b, "</td><td>%s</td>", date);
    if (rc == 0 && not_after <= now)
        rc = metrics_append(b, "<td class=\"lv critical\">expired</td>");
    else if (rc == 0)
        rc = metrics_append(b, "<td>%lld</td>", (long long)days);
    rc = rc ? rc
            : metrics_append(b,
                             "<td><div class=\"bar\" title=\"%lld%% of the lifetime left\">"
                             "<span class=\"%s\" style=\"width:%lld%%\"></span></div></td>",
                             (long long)pct, level_class[level], (long long)pct);
    if (rc == 0) {
        int in_progress = 0;

        proto_get_bool(row, "in_progress", &in_progress);
        digest_format_time(next, date, sizeof(date));
        rc = metrics_append(b, "<td>%s", in_progress ? "in progress" : next != 0 ? date : "-");
        if (rc == 0 && next != 0 && !in_progress) {
            size_t len;
            const char *why = digest_str(row, "next_reason", &len);

            if (len > 0) {
                rc = metrics_append(b, "<div class=\"names\">");
                rc = rc ? rc : esc(b, why, len);
                rc = rc ? rc : metrics_append(b, "</div>");
            }
        }
        rc = rc ? rc : metrics_append(b, "</td>");
    }
    digest_format_time(last, date, sizeof(date));
    rc = rc ? rc : metrics_append(b, "<td>%s", rlen > 0 ? date : "-");
    if (rc == 0 && rlen > 0) {
        rc = metrics_append(b, "<div class=\"lv %s\">", rlen == 2 ? "ok" : "critical");
        rc = rc ? rc : esc(b, result, rlen);
        rc = rc ? rc : metrics_append(b, "</div>");
        if (rc == 0 && elen > 0) {
            rc = metrics_append(b, "<div class=\"names\">");
            rc = rc ? rc : esc(b, err, elen);
            rc = rc ? rc : metrics_append(b, "</div>");
        }
    }
    rc = rc ? rc : metrics_append(b, "</td><td class=\"hist\">");
    rc = rc ? rc : history_cell(b, store, name, nlen);
    return rc ? rc : metrics_append(b, "</td></tr>\n");
}

static int
warnings_section(struct metrics_buf *b, const msgpack_object **rows, size_t n)
{
    int rc = metrics_append(b, "<h2 id=\"warnings\">Warnings</h2>\n<ul>\n");
    size_t shown = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        const msgpack_object_array *w;

        if (proto_get_array(rows[i], "warnings", &w) != 0)
            continue;
        for (uint32_t k = 0; k < w->size && rc == 0; k++, shown++) {
            int level = digest_level(&w->ptr[k]);

            rc = metrics_append(b, "<li><span class=\"lv %s\">%s</span> <code>",
                                level_class[level], level_word[level]);
            rc = rc ? rc : esc_field(b, &w->ptr[k], "code");
            rc = rc ? rc : metrics_append(b, "</code> ");
            rc = rc ? rc : esc_field(b, &w->ptr[k], "message");
            rc = rc ? rc : metrics_append(b, "</li>\n");
        }
    }
    if (rc == 0 && shown == 0)
        rc = metrics_append(b, "<li>None.</li>\n");
    return rc ? rc : metrics_append(b, "</ul>\n");
}

static int
compare_next(const void *pa, const void *pb)
{
    int64_t a = digest_int(*(const msgpack_object *const *)pa, "next_renewal");
    int64_t b = digest_int(*(const msgpack_object *const *)pb, "next_renewal");

    return a < b ? -1 : a > b;
}

static int
next_section(struct metrics_buf *b, const msgpack_object **rows, size_t n)
{
    const msgpack_object **planned = n > 0 ? calloc(n, sizeof(*planned)) : NULL;
    size_t k = 0;
    int rc;

    if (n > 0 && planned == NULL)
        return -E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (digest_int(rows[i], "next_renewal") != 0)
            planned[k++] = rows[i];
    }
    qsort(planned, k, sizeof(*planned), compare_next);
    rc = metrics_append(b, "<h2 id=\"renewals\">Next renewals</h2>\n<ul>\n");
    for (size_t i = 0; i < k && i < NEXT_RENEWALS_MAX && rc == 0; i++) {
        char date[32];
        size_t len;
        const char *why = digest_str(planned[i], "next_reason", &len);

        digest_format_time(digest_int(planned[i], "next_renewal"), date, sizeof(date));
        rc = metrics_append(b, "<li>%s: <b>", date);
        rc = rc ? rc : esc_field(b, planned[i], "name");
        rc = rc ? rc : metrics_append(b, "</b>%s", len > 0 ? " (" : "");
        rc = rc ? rc : esc(b, why, len);
        rc = rc ? rc : metrics_append(b, "%s</li>\n", len > 0 ? ")" : "");
    }
    if (rc == 0 && k > NEXT_RENEWALS_MAX)
        rc = metrics_append(b, "<li>and %zu more</li>\n", k - NEXT_RENEWALS_MAX);
    if (rc == 0 && k == 0)
        rc = metrics_append(b, "<li>None planned.</li>\n");
    free(planned);
    return rc ? rc : metrics_append(b, "</ul>\n");
}

/* The probes' last results (the summary's "probes"). */
static int
probes_section(struct metrics_buf *b, const msgpack_object *doc)
{
    const msgpack_object_array *p;
    int rc = metrics_append(b, "<h2 id=\"probes\">Probes</h2>\n");

    if (rc != 0)
        return rc;
    if (proto_get_array(doc, "probes", &p) != 0 || p->size == 0)
        return metrics_append(b, "<p>No probe is configured (the probes key).</p>\n");
    rc = metrics_append(b, "<table><tr><th>Result</th><th>URL</th><th>TLS</th><th>Days left</th>"
                           "<th>Problems</th></tr>\n");
    for (uint32_t i = 0; i < p->size && rc == 0; i++) {
        const msgpack_object *r = &p->ptr[i], *w = proto_get(r, "warnings");
        int ok = 0;
        size_t elen;
        const char *err = digest_str(r, "error", &elen);

        proto_get_bool(r, "ok", &ok);
        rc = metrics_append(b, "<tr class=\"%s\"><td class=\"lv %s\">%s</td><td>",
                            ok ? "ok" : "critical", ok ? "ok" : "critical", ok ? "OK" : "PROBLEM");
        rc = rc ? rc : esc_field(b, r, "url");
        rc = rc ? rc : metrics_append(b, "</td><td>");
        rc = rc ? rc : esc_field(b, r, "version");
        rc = rc ? rc
                : metrics_append(b, "</td><td>%lld</td><td>",
                                 (long long)digest_int(r, "days_left"));
        rc = rc ? rc : esc(b, err, elen);
        for (uint32_t k = 0;
             rc == 0 && w != NULL && w->type == MSGPACK_OBJECT_ARRAY && k < w->via.array.size;
             k++) {
            const msgpack_object *x = &w->via.array.ptr[k];

            rc = metrics_append(b, "<div>");
            if (rc == 0 && x->type == MSGPACK_OBJECT_STR)
                rc = esc(b, x->via.str.ptr, x->via.str.size);
            else if (rc == 0 && x->type == MSGPACK_OBJECT_MAP)
                rc = esc_field(b, x, "message");
            rc = rc ? rc : metrics_append(b, "</div>");
        }
        rc = rc ? rc : metrics_append(b, "</td></tr>\n");
    }
    return rc ? rc : metrics_append(b, "</table>\n");
}

int
dashboard_page(const msgpack_object *doc, const struct store *store, const char *host, int64_t now,
               int refresh, struct metrics_buf *out)
{
    const msgpack_object **rows = NULL;
    size_t n = 0;
    int level = digest_level(doc), rc;
    char date[32];

    if ((rc = digest_sorted_rows(doc, &rows, &n)) != 0)
        return rc;
    digest_format_time(now, date, sizeof(date));
    rc = metrics_append(out,
                        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                        "<meta http-equiv=\"refresh\" content=\"%d\">"
                        "<meta name=\"viewport\" content=\"width=device-width\">"
                        "<title>%s: certagent on ",
                        refresh, level_word[level]);
    rc = rc ? rc : esc_str(out, host);
    rc = rc ? rc : metrics_append(out, "</title><style>%s</style></head>\n<body>\n", style);
    rc = rc ? rc
            : metrics_append(out, "<header class=\"%s\"><h1>%s</h1><p>certagent on <b>",
                             level_class[level], level_word[level]);
    rc = rc ? rc : esc_str(out, host);
    rc = rc ? rc
            : metrics_append(
                  out,
                  "</b>: %lld certificates, %lld ok, %lld warning, %lld critical; %lld expired, "
                  "%lld expiring within %lld days; %lld warnings. As of %s, reloads every %d s."
                  "</p></header>\n<main>\n",
                  (long long)digest_int(doc, "count"), (long long)digest_int(doc, "certs_ok"),
                  (long long)digest_int(doc, "certs_warning"),
                  (long long)digest_int(doc, "certs_critical"),
                  (long long)digest_int(doc, "expired"), (long long)digest_int(doc, "expiring"),
                  (long long)digest_int(doc, "warn_days"),
                  (long long)digest_int(doc, "warnings_count"), date, refresh);
    rc = rc ? rc
            : metrics_append(out, "<h2 id=\"certificates\">Certificates</h2>\n<table>"
                                  "<tr><th>Health</th><th>Certificate</th><th>Source</th>"
                                  "<th>Expires</th><th>Days left</th><th>Lifetime left</th>"
                                  "<th>Next renewal</th><th>Last attempt</th>"
                                  "<th>Recent renewals</th></tr>\n");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = cert_row(out, rows[i], store, now);
    if (rc == 0 && n == 0)
        rc =
            metrics_append(out, "<tr><td colspan=\"9\">The store holds no certificate.</td></tr>");
    rc = rc ? rc : metrics_append(out, "</table>\n");
    rc = rc ? rc : warnings_section(out, rows, n);
    rc = rc ? rc : next_section(out, rows, n);
    rc = rc ? rc : probes_section(out, doc);
    rc = rc ? rc : metrics_append(out, "</main>\n<footer>certagent ");
    rc = rc ? rc : esc_field(out, doc, "agent");
    rc = rc ? rc
            : metrics_append(out, "; the same document as JSON: <a href=\"/status.json\">"
                                  "/status.json</a>.</footer>\n</body></html>\n");
    free(rows);
    return rc;
}
