#include "acme-http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "http-loop.h"
#include "log.h"
#include "platform.h"
#include "strv.h"
#include <strings.h>

#define MAX_HEADER_VALUE 8192
#define MAX_LINKS 32

struct http_req;

struct acme_http {
    struct http_loop *hl;
    CURLM *multi; /* hl's */
    char *user_agent;
    struct http_req *reqs; /* in flight, for free */
    int closing;
};

struct http_req {
    struct acme_http *http;
    struct http_req *prev, *next;
    CURL *easy;
    struct curl_slist *headers;
    acme_http_cb cb;
    void *arg;
    struct acme_http_response *resp;
    int too_big;
    char errbuf[CURL_ERROR_SIZE];
};

static void check_done(struct acme_http *http);

static void
on_progress(void *arg)
{
    check_done(arg);
}

int
acme_http_new(uv_loop_t *loop, const char *user_agent, struct acme_http **out, char **cause)
{
    struct acme_http *http;
    int rc;

    *out = NULL;
    if ((http = calloc(1, sizeof(*http))) == NULL ||
        (http->user_agent = strdup(user_agent)) == NULL) {
        free(http);
        return -E_NOMEM;
    }
    if ((rc = http_loop_new(loop, "acme", on_progress, http, &http->hl, cause)) != 0) {
        free(http->user_agent);
        free(http);
        return rc;
    }
    http->multi = http_loop_multi(http->hl);
    curl_multi_setopt(http->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    /* HTTP/1.1 CAs get a few parallel connections; HTTP/2 ones share one. */
    curl_multi_setopt(http->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 4L);
    curl_multi_setopt(http->multi, CURLMOPT_MAXCONNECTS, 16L);
    *out = http;
    return 0;
}

static char *
trimmed_dup(const char *s, size_t len)
{
    char *r;

    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n'))
        len--;
    if ((r = malloc(len + 1)) == NULL)
        return NULL;
    memcpy(r, s, len);
    r[len] = '\0';
    return r;
}

static void
set_header(char **slot, const char *v, size_t len)
{
    free(*slot);
    *slot = trimmed_dup(v, len);
}

/* Splits a Link header value at commas outside <...> and quotes. */
static void
add_links(struct acme_http_response *resp, const char *v, size_t len)
{
    size_t start = 0;
    int in_angle = 0, in_quote = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i < len && v[i] == '<' && !in_quote)
            in_angle = 1;
        else if (i < len && v[i] == '>' && !in_quote)
            in_angle = 0;
        else if (i < len && v[i] == '"' && !in_angle)
            in_quote = !in_quote;
        if (i == len || (v[i] == ',' && !in_angle && !in_quote)) {
            char **grown;
            char *one;

            if (resp->nlinks >= MAX_LINKS)
                return;
            if ((one = trimmed_dup(v + start, i - start)) == NULL)
                return;
            if (*one == '\0' ||
                (grown = realloc(resp->links, (resp->nlinks + 1) * sizeof(*grown))) == NULL) {
                free(one);
            } else {
                resp->links = grown;
                resp->links[resp->nlinks++] = one;
            }
            start = i + 1;
        }
    }
}

void
acme_http_header(struct acme_http_response *resp, const char *buf, size_t len)
{
    size_t namelen;
    const char *colon;

    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* A new response (after 100-continue or similar): start over. */
        free(resp->content_type);
        free(resp->location);
        free(resp->retry_after);
        resp->content_type = resp->location = resp->retry_after = NULL;
        return;
    }
    if ((colon = memchr(buf, ':', len)) == NULL || len > MAX_HEADER_VALUE)
        return;
    namelen = (size_t)(colon - buf);
#define IS(name) (namelen == sizeof(name) - 1 && strncasecmp(buf, name, namelen) == 0)
    if (IS("replay-nonce"))
        set_header(&resp->nonce, colon + 1, len - namelen - 1);
    else if (IS("location"))
        set_header(&resp->location, colon + 1, len - namelen - 1);
    else if (IS("content-type"))
        set_header(&resp->content_type, colon + 1, len - namelen - 1);
    else if (IS("retry-after"))
        set_header(&resp->retry_after, colon + 1, len - namelen - 1);
    else if (IS("link"))
        add_links(resp, colon + 1, len - namelen - 1);
#undef IS
}

static size_t
on_header(char *buf, size_t size, size_t n, void *userp)
{
    struct http_req *r = userp;

    acme_http_header(r->resp, buf, size * n);
    return size * n;
}

static size_t
on_body(char *buf, size_t size, size_t n, void *userp)
{
    struct http_req *r = userp;
    struct acme_http_response *resp = r->resp;
    size_t len = size * n;
    char *grown;

    if (resp->body_len + len > ACME_HTTP_MAX_BODY) {
        r->too_big = 1;
        return 0;
    }
    if ((grown = realloc(resp->body, resp->body_len + len + 1)) == NULL)
        return 0;
    resp->body = grown;
    memcpy(resp->body + resp->body_len, buf, len);
    resp->body_len += len;
    resp->body[resp->body_len] = '\0';
    return len;
}

static void
req_unlink(struct http_req *r)
{
    struct acme_http *http = r->http;

    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        http->reqs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
}

static void
req_free(struct http_req *r)
{
    if (r->easy != NULL) {
        curl_multi_remove_handle(r->http->multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->headers);
    acme_http_response_free(r->resp);
    free(r);
}

static void
finish(struct http_req *r, CURLcode code)
{
    struct acme_http_response *resp = r->resp;
    acme_http_cb cb = r->cb;
    void *arg = r->arg;

    if (code != CURLE_OK) {
        if (r->too_big)
            err_set(&resp->error, "the reply is larger than %d bytes", ACME_HTTP_MAX_BODY);
        else
            err_set(&resp->error, "%s",
                    r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(code));
        resp->status = 0;
    } else {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp->status);
    }
    if (resp->body == NULL && (resp->body = strdup("")) == NULL && resp->error == NULL)
        err_set(&resp->error, "out of memory");
    r->resp = NULL;
    req_unlink(r);
    req_free(r);
    cb(arg, resp);
}

static void
check_done(struct acme_http *http)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(http->multi, &left)) != NULL) {
        struct http_req *r = NULL;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r != NULL)
            finish(r, msg->data.result);
    }
}

int
acme_http_send(struct acme_http *http, const struct acme_http_request *req, acme_http_cb cb,
               void *arg, char **cause)
{
    struct http_req *r;
    CURL *e;
    char accept[128];
    long sslopts = platform_http_ssl_options();
    CURLMcode mc;
    int rc = -E_NOMEM;

    if (http->closing) {
        err_set(cause, "the agent is stopping");
        return -E_UNAVAILABLE;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL || (r->resp = calloc(1, sizeof(*r->resp))) == NULL) {
        free(r);
        return -E_NOMEM;
    }
    r->http = http;
    r->cb = cb;
    r->arg = arg;
    if ((e = r->easy = curl_easy_init()) == NULL)
        goto fail;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_USERAGENT, http->user_agent);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 15000L);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    if (req->ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file);
    else if (sslopts != 0)
        curl_easy_setopt(e, CURLOPT_SSL_OPTIONS, sslopts);
    if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)req->body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body != NULL ? req->body : "");
        if ((r->headers = curl_slist_append(r->headers, "Content-Type: application/jose+json")) ==
            NULL)
            goto fail;
    }
    if (req->accept != NULL) {
        struct curl_slist *h;

        snprintf(accept, sizeof(accept), "Accept: %s", req->accept);
        if ((h = curl_slist_append(r->headers, accept)) == NULL)
            goto fail;
        r->headers = h;
    }
    if (r->headers != NULL)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    if ((mc = curl_multi_add_handle(http->multi, e)) != CURLM_OK) {
        err_set(cause, "cannot start an HTTP request: %s", curl_multi_strerror(mc));
        rc = -E_INTERNAL;
        goto fail;
    }
    r->next = http->reqs;
    if (http->reqs != NULL)
        http->reqs->prev = r;
    http->reqs = r;
    return 0;
fail:
    if (r->easy != NULL) {
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    curl_slist_free_all(r->headers);
    acme_http_response_free(r->resp);
    free(r);
    return rc;
}

void
acme_http_free(struct acme_http *http)
{
    if (http == NULL || http->closing)
        return;
    http->closing = 1;
    while (http->reqs != NULL) {
        struct http_req *r = http->reqs;

        err_set(&r->resp->error, "cancelled");
        finish(r, CURLE_ABORTED_BY_CALLBACK);
    }
    http_loop_free(http->hl);
    free(http->user_agent);
    free(http);
}

void
acme_http_response_free(struct acme_http_response *resp)
{
    if (resp == NULL)
        return;
    free(resp->error);
    free(resp->body);
    free(resp->content_type);
    free(resp->location);
    free(resp->nonce);
    free(resp->retry_after);
    strv_free(resp->links, resp->nlinks);
    free(resp);
}

long
acme_http_retry_after(const char *value, long long now)
{
    char *end;
    long long v;
    time_t when;

    if (value == NULL || *value == '\0')
        return -1;
    if (*value >= '0' && *value <= '9') {
        v = strtoll(value, &end, 10);
        if (*end != '\0' || v < 0)
            return -1;
        return v > 86400 * 30 ? 86400 * 30 : (long)v;
    }
    /* IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT"; curl parses HTTP dates. */
    when = curl_getdate(value, NULL);
    if (when == (time_t)-1)
        return -1;
    if ((long long)when <= now)
        return 0;
    v = (long long)when - now;
    return v > 86400 * 30 ? 86400 * 30 : (long)v;
}

size_t
acme_http_links(const struct acme_http_response *resp, const char *rel, char ***urls)
{
    size_t n = 0;

    *urls = NULL;
    for (size_t i = 0; i < resp->nlinks; i++) {
        const char *l = resp->links[i], *gt, *p;
        char want1[64], want2[64];
        char **grown;

        if (l[0] != '<' || (gt = strchr(l, '>')) == NULL)
            continue;
        snprintf(want1, sizeof(want1), "rel=\"%s\"", rel);
        snprintf(want2, sizeof(want2), "rel=%s", rel);
        p = gt + 1;
        if (strstr(p, want1) == NULL) {
            const char *q = strstr(p, want2);
            size_t wl = strlen(want2);

            if (q == NULL || (q[wl] != '\0' && q[wl] != ';' && q[wl] != ' '))
                continue;
        }
        if ((grown = realloc(*urls, (n + 1) * sizeof(*grown))) == NULL)
            break;
        *urls = grown;
        if (((*urls)[n] = trimmed_dup(l + 1, (size_t)(gt - l - 1))) == NULL)
            break;
        n++;
    }
    return n;
}
