#include "etcd.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "http-loop.h"
#include "log.h"

/* The largest reply of one call, and the longest line of a watch stream. */
#define ETCD_MAX_REPLY (8 * 1024 * 1024)
#define ETCD_CONNECT_MS 2000L
#define ETCD_WATCH_RETRY_MIN_MS 100
#define ETCD_WATCH_RETRY_MAX_MS 5000

enum etcd_kind { KIND_CALL, KIND_WATCH };

/* What an easy handle's CURLOPT_PRIVATE points at: a call or a watch. */
struct etcd_xfer {
    enum etcd_kind kind;
    CURL *easy;
    struct curl_slist *headers;
    char *buf;
    size_t len;
    int too_big;
    char errbuf[CURL_ERROR_SIZE];
};

struct etcd_call {
    struct etcd_xfer x; /* first: the easy handle's private pointer is the call */
    struct etcd *etcd;
    struct etcd_call *prev, *next;
    char *path;
    char *body;
    etcd_cb cb;
    void *arg;
    size_t ep;    /* the member asked now */
    size_t tried; /* members asked so far */
    char *last_cause;
};

struct etcd_watch {
    struct etcd_xfer x; /* first, as in a call */
    struct etcd *etcd;
    struct etcd_watch *prev, *next;
    char *key, *end; /* the range, base64 */
    int64_t next_rev;
    size_t ep;
    int running, connected, stopping;
    unsigned retry_ms;
    uv_timer_t timer;
    etcd_event_fn ev;
    etcd_up_fn up;
    void *arg;
};

struct etcd {
    uv_loop_t *loop;
    struct http_loop *hl;
    CURLM *multi;
    char **endpoints;
    size_t n;
    char *trust, *cert_file, *key_file;
    long timeout_ms;
    size_t cur; /* the member that answered last */
    uint64_t requests;
    int reachable;
    struct etcd_call *calls;
    struct etcd_watch *watches;
    char *last_error;     /* the words of the last call no member answered */
    uint64_t last_answer; /* uv_now of the last call a member answered (0: none yet) */
};

static void on_progress(void *arg);
static void on_watch_data(struct etcd_watch *w);

char *
etcd_b64(const void *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);

    if (out == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

int
etcd_unb64(const char *text, unsigned char **out, size_t *len)
{
    size_t n = strlen(text), pad = 0;
    unsigned char *buf;
    int got;

    *out = NULL;
    *len = 0;
    if (n % 4 != 0 || n > (size_t)ETCD_MAX_REPLY)
        return -E_BAD_INPUT;
    if ((buf = malloc(n / 4 * 3 + 1)) == NULL)
        return -E_NOMEM;
    if (n > 0 && (got = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)n)) < 0) {
        free(buf);
        return -E_BAD_INPUT;
    }
    if (n > 0 && text[n - 1] == '=')
        pad++;
    if (n > 1 && text[n - 2] == '=')
        pad++;
    *len = n / 4 * 3 - pad;
    buf[*len] = '\0';
    *out = buf;
    return 0;
}

int
etcd_add_b64(cJSON *obj, const char *name, const void *data, size_t len)
{
    char *s = etcd_b64(data, len);
    int rc = -E_NOMEM;

    if (s != NULL && cJSON_AddStringToObject(obj, name, s) != NULL)
        rc = 0;
    free(s);
    return rc;
}

cJSON *
etcd_txn_op(cJSON *ops, const char *type, const char *key)
{
    cJSON *op = cJSON_CreateObject(), *in;

    if (op == NULL)
        return NULL;
    if (!cJSON_AddItemToArray(ops, op)) {
        cJSON_Delete(op);
        return NULL;
    }
    if ((in = cJSON_AddObjectToObject(op, type)) == NULL ||
        etcd_add_b64(in, "key", key, strlen(key)) != 0)
        return NULL;
    return in;
}

cJSON *
etcd_txn_if_absent(const char *key, cJSON **success)
{
    cJSON *body = cJSON_CreateObject(), *cmp, *c;

    if (body == NULL || (cmp = cJSON_AddArrayToObject(body, "compare")) == NULL ||
        (c = cJSON_CreateObject()) == NULL)
        goto fail;
    if (!cJSON_AddItemToArray(cmp, c)) {
        cJSON_Delete(c);
        goto fail;
    }
    if (etcd_add_b64(c, "key", key, strlen(key)) != 0 ||
        cJSON_AddStringToObject(c, "target", "CREATE") == NULL ||
        cJSON_AddStringToObject(c, "create_revision", "0") == NULL ||
        (*success = cJSON_AddArrayToObject(body, "success")) == NULL)
        goto fail;
    return body;
fail:
    cJSON_Delete(body);
    return NULL;
}

char *
etcd_prefix_end(const char *prefix)
{
    char *end = strdup(prefix);
    size_t n = end != NULL ? strlen(end) : 0;

    if (end == NULL || n == 0)
        return end;
    end[n - 1] = (char)(end[n - 1] + 1); /* the prefixes used end in '/' */
    return end;
}

int64_t
etcd_int(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (cJSON_IsString(v))
        return strtoll(v->valuestring, NULL, 10);
    if (cJSON_IsNumber(v))
        return (int64_t)v->valuedouble;
    return 0;
}

static void
free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int
etcd_new(uv_loop_t *loop, const struct etcd_options *opts, struct etcd **out, char **cause)
{
    struct etcd *e = calloc(1, sizeof(*e));
    int rc = -E_NOMEM;

    *out = NULL;
    if (e == NULL)
        return -E_NOMEM;
    e->loop = loop;
    e->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 5000;
    if (opts->nendpoints == 0) {
        err_set(cause, "no etcd endpoint");
        rc = -E_BAD_INPUT;
        goto fail;
    }
    if ((e->endpoints = calloc(opts->nendpoints, sizeof(char *))) == NULL)
        goto fail;
    for (; e->n < opts->nendpoints; e->n++) {
        if ((e->endpoints[e->n] = strdup(opts->endpoints[e->n])) == NULL)
            goto fail;
        /* "https://h:p/" and "https://h:p" are the same member. */
        if (e->endpoints[e->n][0] != '\0' &&
            e->endpoints[e->n][strlen(e->endpoints[e->n]) - 1] == '/')
            e->endpoints[e->n][strlen(e->endpoints[e->n]) - 1] = '\0';
    }
    if ((opts->trust != NULL && (e->trust = strdup(opts->trust)) == NULL) ||
        (opts->cert_file != NULL && (e->cert_file = strdup(opts->cert_file)) == NULL) ||
        (opts->key_file != NULL && (e->key_file = strdup(opts->key_file)) == NULL))
        goto fail;
    if ((rc = http_loop_new(loop, "etcd", on_progress, e, &e->hl, cause)) != 0)
        goto fail;
    e->multi = http_loop_multi(e->hl);
    *out = e;
    return 0;
fail:
    free_strv(e->endpoints, e->n);
    free(e->trust);
    free(e->cert_file);
    free(e->key_file);
    free(e);
    return rc;
}

uint64_t
etcd_requests(const struct etcd *etcd)
{
    return etcd != NULL ? etcd->requests : 0;
}

int
etcd_reachable(const struct etcd *etcd)
{
    return etcd != NULL && etcd->reachable;
}

const char *
etcd_last_error(const struct etcd *etcd)
{
    return etcd != NULL ? etcd->last_error : NULL;
}

uint64_t
etcd_last_answer(const struct etcd *etcd)
{
    return etcd != NULL ? etcd->last_answer : 0;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct etcd_xfer *x = arg;
    size_t n = size * nmemb;
    char *nb;

    if (n > ETCD_MAX_REPLY || x->len + n > ETCD_MAX_REPLY) {
        x->too_big = 1;
        return 0;
    }
    if ((nb = realloc(x->buf, x->len + n + 1)) == NULL)
        return 0;
    memcpy(nb + x->len, data, n);
    x->buf = nb;
    x->len += n;
    nb[x->len] = '\0';
    if (x->kind == KIND_WATCH) {
        /* The stream's messages are complete lines: take them as they come. */
        on_watch_data((struct etcd_watch *)(void *)x);
    }
    return n;
}

/* Drops the easy handle of x (out of the multi handle first when running). */
static void
xfer_reset(struct etcd *etcd, struct etcd_xfer *x, int in_multi)
{
    if (x->easy != NULL) {
        if (in_multi)
            curl_multi_remove_handle(etcd->multi, x->easy);
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    free(x->buf);
    x->buf = NULL;
    x->len = 0;
    x->too_big = 0;
    x->errbuf[0] = '\0';
}

/* A POST of body to endpoint ep + path, added to the multi handle. */
static int
xfer_start(struct etcd *etcd, struct etcd_xfer *x, size_t ep, const char *path, const char *body,
           long timeout_ms)
{
    char url[1024];
    CURL *h;

    if ((size_t)snprintf(url, sizeof(url), "%s%s", etcd->endpoints[ep], path) >= sizeof(url))
        return -E_BAD_INPUT;
    if ((h = x->easy = curl_easy_init()) == NULL ||
        (x->headers = curl_slist_append(NULL, "Content-Type: application/json")) == NULL)
        return -E_NOMEM;
    if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ETCD_CONNECT_MS) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 10L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 5L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, body) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERAGENT, "certagent") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEDATA, x) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)x) != CURLE_OK ||
        (etcd->trust != NULL && curl_easy_setopt(h, CURLOPT_CAINFO, etcd->trust) != CURLE_OK) ||
        (etcd->cert_file != NULL &&
         (curl_easy_setopt(h, CURLOPT_SSLCERT, etcd->cert_file) != CURLE_OK ||
          curl_easy_setopt(h, CURLOPT_SSLKEY, etcd->key_file) != CURLE_OK)))
        return -E_INTERNAL;
    if (curl_multi_add_handle(etcd->multi, h) != CURLM_OK)
        return -E_INTERNAL;
    etcd->requests++;
    return 0;
}

/* Calls */

static void
call_unlink(struct etcd_call *c)
{
    struct etcd *etcd = c->etcd;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else if (etcd->calls == c)
        etcd->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void
call_free(struct etcd_call *c, int in_multi)
{
    xfer_reset(c->etcd, &c->x, in_multi);
    free(c->path);
    free(c->body);
    free(c->last_cause);
    free(c);
}

static void
call_finish(struct etcd_call *c, int rc, const char *cause, const cJSON *reply)
{
    etcd_cb cb = c->cb;
    void *arg = c->arg;

    call_unlink(c);
    if (rc == 0)
        c->etcd->reachable = 1;
    else if (rc == -E_UNAVAILABLE)
        c->etcd->reachable = 0;
    if (rc == 0)
        c->etcd->last_answer = uv_now(c->etcd->loop);
    if (rc == -E_UNAVAILABLE && cause != NULL) {
        free(c->etcd->last_error);
        c->etcd->last_error = strdup(cause);
    }
    cb(arg, rc, cause, reply);
    call_free(c, 0);
}

/* Starts the call on the next member it has not asked, or ends it. */
static void
call_next(struct etcd_call *c)
{
    struct etcd *etcd = c->etcd;
    int rc;

    while (c->tried < etcd->n) {
        c->ep = (etcd->cur + c->tried) % etcd->n;
        c->tried++;
        xfer_reset(etcd, &c->x, 0);
        if ((rc = xfer_start(etcd, &c->x, c->ep, c->path, c->body, etcd->timeout_ms)) == 0)
            return;
        free(c->last_cause);
        c->last_cause = NULL;
        err_set(&c->last_cause, "%s: cannot start the request (%s)", etcd->endpoints[c->ep],
                err_name(rc));
        xfer_reset(etcd, &c->x, 0);
    }
    {
        char *words = NULL;

        err_set(&words, "no etcd member answered (last: %s)",
                c->last_cause != NULL ? c->last_cause : "none tried");
        call_finish(c, -E_UNAVAILABLE, words, NULL);
        free(words);
    }
}

/* The member answered (or failed): the reply, a refusal, or the next member. */
static void
call_done(struct etcd_call *c, CURLcode code)
{
    struct etcd *etcd = c->etcd;
    long status = 0;
    cJSON *reply = NULL;
    char *words = NULL;
    const char *ep = etcd->endpoints[c->ep];

    curl_multi_remove_handle(etcd->multi, c->x.easy);
    if (code != CURLE_OK || c->x.too_big) {
        err_set(&words, "%s: %s", ep,
                c->x.too_big     ? "the reply is too large"
                : c->x.errbuf[0] ? c->x.errbuf
                                 : curl_easy_strerror(code));
        goto next;
    }
    curl_easy_getinfo(c->x.easy, CURLINFO_RESPONSE_CODE, &status);
    reply = c->x.buf != NULL ? cJSON_ParseWithLength(c->x.buf, c->x.len) : NULL;
    if (status >= 500 || status == 0) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(reply, "message");

        err_set(&words, "%s: HTTP %ld%s%s", ep, status, cJSON_IsString(m) ? ": " : "",
                cJSON_IsString(m) ? m->valuestring : "");
        goto next;
    }
    if (status != 200 || !cJSON_IsObject(reply) ||
        cJSON_GetObjectItemCaseSensitive(reply, "error") != NULL) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(reply, "message");

        err_set(&words, "%s refused %s: HTTP %ld%s%s", ep, c->path, status,
                cJSON_IsString(m) ? ": " : "", cJSON_IsString(m) ? m->valuestring : "");
        etcd->cur = c->ep;
        call_finish(c, status == 200 ? -E_PROTO : -E_BAD_INPUT, words, NULL);
        goto out;
    }
    etcd->cur = c->ep;
    call_finish(c, 0, NULL, reply);
    goto out;
next:
    log_debug("etcd: %s", words);
    free(c->last_cause);
    c->last_cause = words;
    words = NULL;
    call_next(c);
out:
    cJSON_Delete(reply);
    free(words);
}

int
etcd_call(struct etcd *etcd, const char *path, cJSON *body, etcd_cb cb, void *arg,
          struct etcd_call **out, char **cause)
{
    struct etcd_call *c = NULL;
    int rc = -E_NOMEM;

    if (out != NULL)
        *out = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL || (c->path = strdup(path)) == NULL ||
        (c->body = cJSON_PrintUnformatted(body)) == NULL) {
        err_set(cause, "out of memory");
        goto fail;
    }
    cJSON_Delete(body);
    c->x.kind = KIND_CALL;
    c->etcd = etcd;
    c->cb = cb;
    c->arg = arg;
    c->next = etcd->calls;
    if (etcd->calls != NULL)
        etcd->calls->prev = c;
    etcd->calls = c;
    if (out != NULL)
        *out = c;
    call_next(c); /* may finish the call at once (no member could be asked) */
    return 0;
fail:
    cJSON_Delete(body);
    if (c != NULL) {
        free(c->path);
        free(c);
    }
    return rc;
}

void
etcd_call_cancel(struct etcd_call *c)
{
    if (c == NULL)
        return;
    call_unlink(c);
    call_free(c, c->x.easy != NULL);
}

/* Watches */

static void watch_connect(struct etcd_watch *w);

static void
on_watch_timer(uv_timer_t *t)
{
    watch_connect(t->data);
}

static void
watch_lost(struct etcd_watch *w, const char *why)
{
    struct etcd *etcd = w->etcd;

    if (w->connected) {
        w->connected = 0;
        log_info("etcd: the watch of the fleet's keys was lost (%s); reconnecting", why);
        if (w->up != NULL)
            w->up(w->arg, 0);
    } else {
        log_debug("etcd: watch: %s", why);
        etcd->reachable = 0;
    }
    w->ep = (w->ep + 1) % etcd->n;
    uv_timer_start(&w->timer, on_watch_timer, w->retry_ms, 0);
    w->retry_ms =
        w->retry_ms * 2 > ETCD_WATCH_RETRY_MAX_MS ? ETCD_WATCH_RETRY_MAX_MS : w->retry_ms * 2;
}

/* One message of the stream. */
static int
watch_message(struct etcd_watch *w, const cJSON *msg)
{
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(msg, "result"), *evs, *ev;

    if (!cJSON_IsObject(res))
        return -1;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "canceled"))) {
        int64_t compact = etcd_int(res, "compact_revision");

        if (compact > w->next_rev) {
            log_warn("etcd: the fleet's history before revision %lld was compacted while "
                     "the watch was away; reading the fleet's keys again",
                     (long long)compact);
            w->next_rev = compact;
            if (w->up != NULL)
                w->up(w->arg, ETCD_WATCH_COMPACTED);
        }
        return -1;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "created")) && !w->connected) {
        w->connected = 1;
        w->retry_ms = ETCD_WATCH_RETRY_MIN_MS;
        w->etcd->reachable = 1;
        if (w->up != NULL)
            w->up(w->arg, 1);
    }
    evs = cJSON_GetObjectItemCaseSensitive(res, "events");
    cJSON_ArrayForEach(ev, evs)
    {
        const cJSON *kv = cJSON_GetObjectItemCaseSensitive(ev, "kv");
        int64_t rev = etcd_int(kv, "mod_revision");

        if (w->stopping)
            return 0;
        if (rev >= w->next_rev)
            w->next_rev = rev + 1;
        w->ev(w->arg, ev, rev);
    }
    return 0;
}

static void
on_watch_data(struct etcd_watch *w)
{
    char *nl;

    while (!w->stopping && w->x.buf != NULL && (nl = memchr(w->x.buf, '\n', w->x.len)) != NULL) {
        size_t line = (size_t)(nl - w->x.buf);
        cJSON *msg = cJSON_ParseWithLength(w->x.buf, line);

        memmove(w->x.buf, nl + 1, w->x.len - line - 1);
        w->x.len -= line + 1;
        w->x.buf[w->x.len] = '\0';
        if (msg != NULL)
            watch_message(w, msg);
        cJSON_Delete(msg);
    }
}

static void
watch_connect(struct etcd_watch *w)
{
    struct etcd *etcd = w->etcd;
    cJSON *body = cJSON_CreateObject(), *cr = cJSON_AddObjectToObject(body, "create_request");
    char rev[32], *text = NULL;

    xfer_reset(etcd, &w->x, 0);
    snprintf(rev, sizeof(rev), "%lld", (long long)w->next_rev);
    if (cr == NULL || cJSON_AddStringToObject(cr, "key", w->key) == NULL ||
        cJSON_AddStringToObject(cr, "range_end", w->end) == NULL ||
        (w->next_rev > 0 && cJSON_AddStringToObject(cr, "start_revision", rev) == NULL) ||
        (text = cJSON_PrintUnformatted(body)) == NULL ||
        xfer_start(etcd, &w->x, w->ep, "/v3/watch", text, 0) != 0) {
        xfer_reset(etcd, &w->x, 0);
        watch_lost(w, "cannot start the request");
    } else {
        w->running = 1;
    }
    free(text);
    cJSON_Delete(body);
}

static void
watch_done(struct etcd_watch *w, CURLcode code)
{
    char why[CURL_ERROR_SIZE + 128];

    snprintf(why, sizeof(why), "%s: %s", w->etcd->endpoints[w->ep],
             code != CURLE_OK ? (w->x.errbuf[0] ? w->x.errbuf : curl_easy_strerror(code))
                              : "the stream ended");
    curl_multi_remove_handle(w->etcd->multi, w->x.easy);
    w->running = 0;
    xfer_reset(w->etcd, &w->x, 0);
    watch_lost(w, why);
}

int
etcd_watch_start(struct etcd *etcd, const char *prefix, int64_t start, etcd_event_fn ev,
                 etcd_up_fn up, void *arg, struct etcd_watch **out, char **cause)
{
    struct etcd_watch *w = calloc(1, sizeof(*w));
    char *end = etcd_prefix_end(prefix);

    *out = NULL;
    if (w == NULL || end == NULL || (w->key = etcd_b64(prefix, strlen(prefix))) == NULL ||
        (w->end = etcd_b64(end, strlen(end))) == NULL) {
        free(end);
        if (w != NULL) {
            free(w->key);
            free(w);
        }
        err_set(cause, "out of memory");
        return -E_NOMEM;
    }
    free(end);
    w->x.kind = KIND_WATCH;
    w->etcd = etcd;
    w->next_rev = start;
    w->ep = etcd->cur;
    w->retry_ms = ETCD_WATCH_RETRY_MIN_MS;
    w->ev = ev;
    w->up = up;
    w->arg = arg;
    uv_timer_init(etcd->loop, &w->timer);
    w->timer.data = w;
    w->next = etcd->watches;
    if (etcd->watches != NULL)
        etcd->watches->prev = w;
    etcd->watches = w;
    watch_connect(w);
    *out = w;
    return 0;
}

static void
on_watch_closed(uv_handle_t *h)
{
    struct etcd_watch *w = h->data;

    free(w->key);
    free(w->end);
    free(w);
}

void
etcd_watch_stop(struct etcd_watch *w)
{
    struct etcd *etcd;

    if (w == NULL || w->stopping)
        return;
    etcd = w->etcd;
    w->stopping = 1;
    if (w->prev != NULL)
        w->prev->next = w->next;
    else if (etcd->watches == w)
        etcd->watches = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    xfer_reset(etcd, &w->x, w->running);
    w->running = 0;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_watch_closed);
}

static void
on_progress(void *arg)
{
    struct etcd *etcd = arg;
    CURLMsg *msg;
    int left = 0;

    while ((msg = curl_multi_info_read(etcd->multi, &left)) != NULL) {
        struct etcd_xfer *x = NULL;

        if (msg->msg != CURLMSG_DONE)
            continue;
        if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x) != CURLE_OK ||
            x == NULL)
            continue;
        if (x->kind == KIND_CALL)
            call_done((struct etcd_call *)(void *)x, msg->data.result);
        else
            watch_done((struct etcd_watch *)(void *)x, msg->data.result);
    }
}

void
etcd_free(struct etcd *etcd)
{
    if (etcd == NULL)
        return;
    while (etcd->calls != NULL)
        etcd_call_cancel(etcd->calls);
    while (etcd->watches != NULL)
        etcd_watch_stop(etcd->watches);
    http_loop_free(etcd->hl);
    free_strv(etcd->endpoints, etcd->n);
    free(etcd->trust);
    free(etcd->cert_file);
    free(etcd->key_file);
    free(etcd->last_error);
    free(etcd);
}
