/*
 * Prometheus metrics (text exposition format 0.0.4): the text, built on the
 * loop from the store, the scheduler and the warnings, and a loopback
 * HTTP/1.1 listener that serves it at GET /metrics.  The listener is the
 * challenge responders' TCP plumbing (challenge-net.c: the same limits per
 * address and in all, first-byte and whole-request deadlines, eviction of
 * idle connections, from the responder_* keys) and their request parser
 * (challenge-http.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "challenge-http.h"
#include "challenge-net.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "renew.h"
#include "status.h"
#include "served.h"
#include "store.h"
#include "version.h"

#define METRICS_PATH "/metrics"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

int
metrics_append(struct metrics_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        size_t room = b->cap - b->len;

        va_start(ap, fmt);
        n = vsnprintf(b->p != NULL ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -E_INTERNAL;
        if ((size_t)n < room)
            break;
        {
            size_t cap = b->cap ? b->cap * 2 : 4096;
            char *p;

            while (cap - b->len <= (size_t)n)
                cap *= 2;
            if ((p = realloc(b->p, cap)) == NULL)
                return -E_NOMEM;
            b->p = p;
            b->cap = cap;
        }
    }
    b->len += (size_t)n;
    return 0;
}

int
metrics_escape_label(struct metrics_buf *b, const char *value)
{
    int rc = 0;

    for (const char *p = value; *p && rc == 0; p++) {
        if (*p == '\\')
            rc = metrics_append(b, "\\\\");
        else if (*p == '"')
            rc = metrics_append(b, "\\\"");
        else if (*p == '\n')
            rc = metrics_append(b, "\\n");
        else
            rc = metrics_append(b, "%c", *p);
    }
    return rc;
}

static int
family(struct metrics_buf *b, const char *name, const char *type, const char *help)
{
    return metrics_append(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{name="N"[,source="S",ca="C"]} */
static int
sample_head(struct metrics_buf *b, const char *metric, const char *cert, const char *source,
            const char *ca)
{
    int rc = metrics_append(b, "%s{name=\"", metric);

    rc = rc ? rc : metrics_escape_label(b, cert);
    if (source != NULL) {
        rc = rc ? rc : metrics_append(b, "\",source=\"");
        rc = rc ? rc : metrics_escape_label(b, source);
        rc = rc ? rc : metrics_append(b, "\",ca=\"");
        rc = rc ? rc : metrics_escape_label(b, ca != NULL ? ca : "");
    }
    return rc ? rc : metrics_append(b, "\"}");
}

enum cert_metric {
    M_NOT_AFTER,
    M_NOT_BEFORE,
    M_ATTEMPTS,
    M_FAILURES,
    M_LAST_SUCCESS,
    M_NEXT,
    M_COUNT
};

static const struct {
    const char *name, *type, *help;
} cert_metrics[M_COUNT] = {
    {"certagent_certificate_not_after_seconds", "gauge",
     "End of validity of the current version (Unix seconds)."},
    {"certagent_certificate_not_before_seconds", "gauge",
     "Start of validity of the current version (Unix seconds)."},
    {"certagent_renewal_attempts_total", "counter", "Renewal attempts."},
    {"certagent_renewal_failures_total", "counter", "Failed renewal attempts."},
    {"certagent_renewal_last_success_seconds", "gauge",
     "Time of the last successful renewal (Unix seconds)."},
    {"certagent_renewal_next_seconds", "gauge",
     "Time of the next planned renewal (Unix seconds)."},
};

/* One family over every certificate. */
static int
cert_family(struct status *st, struct metrics_buf *b, enum cert_metric m)
{
    const struct status_inputs *in = status_inputs_of(st);
    size_t total = store_count(in->store);
    int rc = family(b, cert_metrics[m].name, cert_metrics[m].type, cert_metrics[m].help);

    for (size_t i = 0; i < total && rc == 0; i++) {
        const struct store_cert *cert = store_at(in->store, i);
        const struct store_version *v = store_current(cert);
        struct renew_info ri;
        int have;
        int64_t value = 0;

        if (cert->current == 0 || v == NULL)
            continue;
        memset(&ri, 0, sizeof(ri));
        have = in->renew != NULL && renew_info_get(in->renew, cert->name, &ri) == 0;
        if (m >= M_ATTEMPTS && !have)
            continue;
        switch (m) {
        case M_NOT_AFTER:
            value = v->not_after;
            break;
        case M_NOT_BEFORE:
            value = v->not_before;
            break;
        case M_ATTEMPTS:
            value = (int64_t)ri.attempts_total;
            break;
        case M_FAILURES:
            value = (int64_t)ri.failures_total;
            break;
        case M_LAST_SUCCESS:
            value = ri.last_success;
            break;
        case M_NEXT:
            value = ri.next;
            break;
        default:
            break;
        }
        if ((m == M_LAST_SUCCESS || m == M_NEXT) && value == 0)
            continue;
        rc = sample_head(b, cert_metrics[m].name, cert->name,
                         m <= M_NOT_BEFORE ? store_source_name(v->source) : NULL, ri.ca);
        rc = rc ? rc : metrics_append(b, " %lld\n", (long long)value);
    }
    return rc;
}

int
metrics_text(struct status *st, char **out, size_t *len)
{
    const struct status_inputs *in = status_inputs_of(st);
    struct metrics_buf b = {NULL, 0, 0};
    struct status_eval *ev = malloc(sizeof(*ev));
    size_t total = store_count(in->store);
    int64_t now = (int64_t)time(NULL);
    int rc, health = STATUS_OK;

    *out = NULL;
    *len = 0;
    if (ev == NULL)
        return -E_NOMEM;
    rc = family(&b, "certagent_up", "gauge", "The agent answers (always 1 when scraped).");
    rc = rc ? rc : metrics_append(&b, "certagent_up 1\n");
    rc = rc ? rc : family(&b, "certagent_info", "gauge", "The agent's version.");
    rc = rc ? rc : metrics_append(&b, "certagent_info{version=\"");
    rc = rc ? rc : metrics_escape_label(&b, CERTAGENT_VERSION);
    rc = rc ? rc : metrics_append(&b, "\"} 1\n");
    rc = rc ? rc : family(&b, "certagent_certificates", "gauge", "Certificates in the store.");
    rc = rc ? rc : metrics_append(&b, "certagent_certificates %zu\n", total);
    for (int m = 0; m < M_COUNT && rc == 0; m++)
        rc = cert_family(st, &b, (enum cert_metric)m);
    rc = rc ? rc
            : family(&b, "certagent_certificate_warnings", "gauge",
                     "Warnings of the status report (1 per warning).");
    for (size_t i = 0; i < total && rc == 0; i++) {
        const struct store_cert *cert = store_at(in->store, i);

        if (cert->current == 0)
            continue;
        status_evaluate(st, cert, now, ev);
        if (ev->level > health)
            health = ev->level;
        for (size_t k = 0; k < ev->nwarnings && rc == 0; k++) {
            rc = metrics_append(&b, "certagent_certificate_warnings{name=\"");
            rc = rc ? rc : metrics_escape_label(&b, cert->name);
            rc = rc ? rc
                    : metrics_append(&b, "\",code=\"%s\",level=\"%s\"} 1\n", ev->w[k].code,
                                     status_level_name(ev->w[k].level));
        }
    }
    rc = rc ? rc
            : family(&b, "certagent_served_matches", "gauge",
                     "1 when the --check-served URL served the current version at its last "
                     "check, 0 when it served another certificate or was unreachable.");
    for (size_t i = 0; i < total && rc == 0; i++) {
        const struct store_cert *cert = store_at(in->store, i);
        size_t n = 0;
        const struct served_endpoint *e = served_endpoints(in->served, cert->name, &n, NULL);

        for (size_t k = 0; k < n && rc == 0; k++) {
            if (e[k].result == SERVED_PENDING)
                continue;
            rc = metrics_append(&b, "certagent_served_matches{name=\"");
            rc = rc ? rc : metrics_escape_label(&b, cert->name);
            rc = rc ? rc : metrics_append(&b, "\",url=\"");
            rc = rc ? rc : metrics_escape_label(&b, e[k].url);
            rc = rc ? rc : metrics_append(&b, "\"} %d\n", e[k].result == SERVED_MATCH);
        }
    }
    rc = rc ? rc
            : family(&b, "certagent_health", "gauge",
                     "Overall health: 0 OK, 1 WARNING, 2 CRITICAL.");
    rc = rc ? rc : metrics_append(&b, "certagent_health %d\n", health);
    free(ev);
    if (rc != 0) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

/* The listener. */

struct metrics_http {
    struct challenge_net net;
    struct status *st;
    char *addr;
};

/* Splits "ADDR:PORT" / "[ADDR]:PORT" and checks that ADDR is a loopback address. */
int
metrics_http_check(const char *addr, char **cause)
{
    const char *colon = strrchr(addr, ':');
    char host[64];
    size_t hlen;
    long port = 0;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    static const unsigned char loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

    if (colon == NULL || colon == addr || colon[1] == '\0')
        goto bad;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9' || port > 65535)
            goto bad;
        port = port * 10 + (*p - '0');
    }
    if (port > 65535)
        goto bad;
    hlen = (size_t)(colon - addr);
    if (addr[0] == '[') {
        if (hlen < 3 || addr[hlen - 1] != ']')
            goto bad;
        addr++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        goto bad;
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    if (uv_ip4_addr(host, (int)port, &in4) == 0) {
        if (((const unsigned char *)&in4.sin_addr)[0] == 127)
            return 0;
    } else if (uv_ip6_addr(host, (int)port, &in6) == 0) {
        if (memcmp(&in6.sin6_addr, loop6, 16) == 0)
            return 0;
    } else {
        goto bad;
    }
    err_set(cause,
            "metrics_listen: %s is not a loopback address; the metrics listener serves "
            "127.0.0.1 or [::1] only (put a reverse proxy in front to expose it)",
            host);
    return -E_BAD_INPUT;
bad:
    err_set(cause, "metrics_listen: '%s' is not ADDR:PORT (e.g. \"127.0.0.1:9464\")", addr);
    return -E_BAD_INPUT;
}

static void
send_error(struct challenge_conn *conn, int status, const char *reason, const char *extra)
{
    char body[96];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, reason);

    challenge_http_send(conn, status, reason, "text/plain", extra, body, (size_t)n, 0);
}

static void
answer(struct metrics_http *m, struct challenge_conn *conn, const char *head, size_t end)
{
    const char *method, *path;
    size_t mlen, plen, len = 0;
    char *text = NULL;
    int head_only;

    if (challenge_http_parse_head(head, end, &method, &mlen, &path, &plen) != 0) {
        send_error(conn, 400, "Bad Request", "");
        return;
    }
    head_only = mlen == 4 && memcmp(method, "HEAD", 4) == 0;
    if (!head_only && !(mlen == 3 && memcmp(method, "GET", 3) == 0)) {
        log_debug("metrics: %s: %.*s: 405", conn->peer, (int)mlen, method);
        send_error(conn, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
        return;
    }
    if (plen != strlen(METRICS_PATH) || memcmp(path, METRICS_PATH, plen) != 0) {
        log_debug("metrics: %s: %.*s: 404", conn->peer, (int)(plen > 64 ? 64 : plen), path);
        send_error(conn, 404, "Not Found", "");
        return;
    }
    if (metrics_text(m->st, &text, &len) != 0) {
        send_error(conn, 500, "Internal Server Error", "");
        return;
    }
    challenge_http_send(conn, 200, "OK", METRICS_TYPE, "", text, len, head_only);
    free(text);
}

static void
on_data(struct challenge_conn *conn, const char *data, size_t len)
{
    const char *head;
    size_t end = challenge_http_feed(conn, data, len, &head);

    if (end > 0)
        answer(conn->net->owner, conn, head, end);
}

static const struct challenge_net_ops metrics_ops = {challenge_http_conn_open, on_data,
                                                     challenge_http_conn_close};

static void
on_released(void *owner)
{
    struct metrics_http *m = owner;

    free(m->addr);
    free(m);
}

int
metrics_http_start(struct status *st, uv_loop_t *loop, const struct config *config,
                   struct metrics_http **out, char **cause)
{
    struct metrics_http *m;
    const char *addr = config->metrics_listen;
    const char *addrs[1] = {addr};
    int rc;

    *out = NULL;
    if ((rc = metrics_http_check(addr, cause)) != 0)
        return rc;
    if ((m = calloc(1, sizeof(*m))) == NULL || (m->addr = strdup(addr)) == NULL) {
        free(m);
        return -E_NOMEM;
    }
    m->st = st;
    challenge_net_init(&m->net, loop, "metrics", 9464, &metrics_ops, m, on_released);
    challenge_net_use_config(&m->net, config);
    if ((rc = challenge_net_configure(&m->net, addrs, 1, 1, cause)) != 0) {
        challenge_net_close(&m->net);
        return rc;
    }
    log_info("metrics: serving http://%s%s (port %d)", addr, METRICS_PATH,
             challenge_net_port(&m->net, 0));
    *out = m;
    return 0;
}

void
metrics_http_close(struct metrics_http *m)
{
    if (m != NULL)
        challenge_net_close(&m->net);
}
