#include "aia.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "http-loop.h"
#include "log.h"

struct aia_fetch {
    struct aia *aia;
    struct aia_fetch *prev, *next; /* in running or waiting */
    CURL *easy;
    struct trust_fetched *result;
    long timeout_ms;
    aia_done_fn done;
    void *arg;
    int running;
    int too_big;
    unsigned char *body;
    size_t len;
    char errbuf[CURL_ERROR_SIZE];
};

/* A fetch list in order of arrival. */
struct fetch_list {
    struct aia_fetch *head, *tail;
    size_t n;
};

struct aia {
    struct http_loop *hl;
    CURLM *multi; /* hl's */
    int closing;
    struct fetch_list running, waiting;
};

static void check_done(struct aia *aia);

static void
list_add(struct fetch_list *l, struct aia_fetch *f)
{
    f->next = NULL;
    f->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = f;
    else
        l->head = f;
    l->tail = f;
    l->n++;
}

static void
list_del(struct fetch_list *l, struct aia_fetch *f)
{
    if (f->prev != NULL)
        f->prev->next = f->next;
    else
        l->head = f->next;
    if (f->next != NULL)
        f->next->prev = f->prev;
    else
        l->tail = f->prev;
    f->prev = f->next = NULL;
    l->n--;
}

static void
on_progress(void *arg)
{
    check_done(arg);
}

int
aia_new(uv_loop_t *loop, struct aia **out, char **cause)
{
    struct aia *aia = calloc(1, sizeof(*aia));
    int rc;

    *out = NULL;
    if (aia == NULL)
        return -E_NOMEM;
    if ((rc = http_loop_new(loop, "AIA", on_progress, aia, &aia->hl, cause)) != 0) {
        free(aia);
        return rc;
    }
    aia->multi = http_loop_multi(aia->hl);
    if (curl_multi_setopt(aia->multi, CURLMOPT_MAXCONNECTS, 0L) != CURLM_OK) {
        err_set(cause, "cannot set up libcurl");
        aia_free(aia);
        return -E_INTERNAL;
    }
    *out = aia;
    return 0;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct aia_fetch *f = arg;
    size_t n = size * nmemb;
    unsigned char *nb;

    if (n > AIA_MAX_REPLY || f->len + n > AIA_MAX_REPLY) {
        f->too_big = 1;
        return 0; /* libcurl stops with CURLE_WRITE_ERROR */
    }
    if ((nb = realloc(f->body, f->len + n + 1)) == NULL)
        return 0;
    memcpy(nb + f->len, data, n);
    f->body = nb;
    f->len += n;
    nb[f->len] = '\0';
    return n;
}

/* Frees a fetch that is in no list and no longer in the multi handle. */
static void
fetch_free(struct aia_fetch *f)
{
    if (f->easy != NULL)
        curl_easy_cleanup(f->easy);
    free(f->body);
    free(f);
}

/* Takes f out of the multi handle and its list. */
static void
fetch_detach(struct aia_fetch *f)
{
    struct aia *aia = f->aia;

    if (f->running) {
        curl_multi_remove_handle(aia->multi, f->easy);
        list_del(&aia->running, f);
        f->running = 0;
    } else {
        list_del(&aia->waiting, f);
    }
}

static void start_waiting(struct aia *aia);

/* The fetch ended with code: its result in words or bytes, then the callback. */
static void
finish(struct aia_fetch *f, CURLcode code)
{
    struct aia *aia = f->aia;
    struct trust_fetched *r = f->result;
    aia_done_fn done = f->done;
    void *arg = f->arg;
    long status = 0;
    char words[CURL_ERROR_SIZE + 64];

    words[0] = '\0';
    if (f->too_big || code == CURLE_FILESIZE_EXCEEDED)
        snprintf(words, sizeof(words), "the reply is larger than %d KiB", AIA_MAX_REPLY / 1024);
    else if (code != CURLE_OK)
        snprintf(words, sizeof(words), "%s",
                 f->errbuf[0] != '\0' ? f->errbuf : curl_easy_strerror(code));
    else if (curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        snprintf(words, sizeof(words), "no HTTP status");
    else if (status >= 300 && status < 400)
        snprintf(words, sizeof(words), "HTTP status %ld (redirects are not followed)", status);
    else if (status != 200)
        snprintf(words, sizeof(words), "HTTP status %ld", status);
    if (words[0] != '\0') {
        r->error = strdup(words);
    } else {
        r->data = f->body;
        r->len = f->len;
        f->body = NULL;
    }
    fetch_detach(f);
    fetch_free(f);
    start_waiting(aia);
    done(arg);
}

static void
check_done(struct aia *aia)
{
    CURLMsg *msg;
    int left = 0;

    while ((msg = curl_multi_info_read(aia->multi, &left)) != NULL) {
        struct aia_fetch *f = NULL;

        if (msg->msg != CURLMSG_DONE)
            continue;
        if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f) != CURLE_OK ||
            f == NULL)
            continue;
        finish(f, msg->data.result);
    }
}

/* Bounds of every fetch: http only, no redirect, deadlines, size, no kept connection. */
static int
setup_easy(struct aia_fetch *f)
{
    CURL *h = f->easy;
    long connect_ms =
        f->timeout_ms < AIA_CONNECT_TIMEOUT_MS ? f->timeout_ms : AIA_CONNECT_TIMEOUT_MS;

    if (curl_easy_setopt(h, CURLOPT_URL, f->result->url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, f->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE, (long)AIA_MAX_REPLY) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERAGENT, "certagent") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, f->errbuf) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEDATA, f) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)f) != CURLE_OK)
        return -E_INTERNAL;
    return 0;
}

/* Moves waiting fetches into the multi handle while there is room. */
static void
start_waiting(struct aia *aia)
{
    while (!aia->closing && aia->waiting.head != NULL && aia->running.n < AIA_MAX_CONNECTIONS) {
        struct aia_fetch *f = aia->waiting.head;
        CURLMcode mc;

        list_del(&aia->waiting, f);
        if ((mc = curl_multi_add_handle(aia->multi, f->easy)) != CURLM_OK) {
            aia_done_fn done = f->done;
            void *arg = f->arg;

            f->result->error = strdup(curl_multi_strerror(mc));
            fetch_free(f);
            done(arg);
            continue;
        }
        f->running = 1;
        list_add(&aia->running, f);
    }
}

int
aia_fetch_start(struct aia *aia, long timeout_ms, struct trust_fetched *result, aia_done_fn done,
                void *arg, struct aia_fetch **out, char **cause)
{
    struct aia_fetch *f;

    *out = NULL;
    if (result->url == NULL || strncasecmp(result->url, "http://", 7) != 0) {
        err_set(cause, "only http:// URLs are fetched");
        return -E_BAD_INPUT;
    }
    if ((f = calloc(1, sizeof(*f))) == NULL)
        return -E_NOMEM;
    f->aia = aia;
    f->result = result;
    f->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
    f->done = done;
    f->arg = arg;
    if ((f->easy = curl_easy_init()) == NULL || setup_easy(f) != 0) {
        fetch_free(f);
        err_set(cause, "cannot set up the download");
        return -E_INTERNAL;
    }
    list_add(&aia->waiting, f);
    *out = f;
    start_waiting(aia);
    return 0;
}

void
aia_fetch_cancel(struct aia_fetch *f)
{
    struct aia *aia;

    if (f == NULL)
        return;
    aia = f->aia;
    fetch_detach(f);
    fetch_free(f);
    start_waiting(aia);
}

size_t
aia_running(const struct aia *aia)
{
    return aia != NULL ? aia->running.n : 0;
}

size_t
aia_waiting(const struct aia *aia)
{
    return aia != NULL ? aia->waiting.n : 0;
}

void
aia_free(struct aia *aia)
{
    if (aia == NULL || aia->closing)
        return;
    aia->closing = 1;
    while (aia->running.head != NULL)
        aia_fetch_cancel(aia->running.head);
    while (aia->waiting.head != NULL)
        aia_fetch_cancel(aia->waiting.head);
    http_loop_free(aia->hl);
    free(aia);
}
