#include "http-loop.h"

#include <stdlib.h>

#include "err.h"
#include "log.h"

struct http_loop {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    const char *who;
    http_loop_progress_fn progress;
    void *arg;
    unsigned open_handles; /* the timer and one uv_poll per socket */
    int closing;
};

/* A socket libcurl asked us to watch. */
struct watch {
    uv_poll_t poll;
    struct http_loop *hl;
    curl_socket_t fd;
};

static void
maybe_release(struct http_loop *hl)
{
    if (hl->closing && hl->open_handles == 0)
        free(hl);
}

static void
watch_closed(uv_handle_t *h)
{
    struct watch *w = h->data;
    struct http_loop *hl = w->hl;

    free(w);
    hl->open_handles--;
    maybe_release(hl);
}

static void
on_poll(uv_poll_t *poll, int status, int events)
{
    struct watch *w = poll->data;
    struct http_loop *hl = w->hl;
    int flags = 0, running = 0;

    if (hl->closing)
        return;
    if (status < 0)
        flags |= CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(hl->multi, w->fd, flags, &running);
    hl->progress(hl->arg);
}

/* CURLMOPT_SOCKETFUNCTION: starts, changes or ends the watch of socket s. */
static int
on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct http_loop *hl = userp;
    struct watch *w = socketp;
    int events = 0, rc;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (w != NULL) {
            uv_poll_stop(&w->poll);
            uv_close((uv_handle_t *)&w->poll, watch_closed);
            curl_multi_assign(hl->multi, s, NULL);
        }
        return 0;
    }
    if (w == NULL) {
        if ((w = calloc(1, sizeof(*w))) == NULL)
            return -1;
        w->hl = hl;
        w->fd = s;
        if ((rc = uv_poll_init_socket(hl->loop, &w->poll, s)) != 0) {
            log_error("%s: cannot watch a socket: %s", hl->who, uv_strerror(rc));
            free(w);
            return -1;
        }
        w->poll.data = w;
        hl->open_handles++;
        curl_multi_assign(hl->multi, s, w);
    }
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    if ((rc = uv_poll_start(&w->poll, events, on_poll)) != 0) {
        log_error("%s: cannot poll a socket: %s", hl->who, uv_strerror(rc));
        return -1;
    }
    return 0;
}

static void
on_timer(uv_timer_t *t)
{
    struct http_loop *hl = t->data;
    int running = 0;

    if (hl->closing)
        return;
    curl_multi_socket_action(hl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    hl->progress(hl->arg);
}

/* CURLMOPT_TIMERFUNCTION: when libcurl wants to be called for its deadlines. */
static int
on_timeout(CURLM *multi, long timeout_ms, void *userp)
{
    struct http_loop *hl = userp;

    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&hl->timer);
    else
        uv_timer_start(&hl->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void
timer_closed(uv_handle_t *h)
{
    struct http_loop *hl = h->data;

    hl->open_handles--;
    maybe_release(hl);
}

int
http_loop_new(uv_loop_t *loop, const char *who, http_loop_progress_fn progress, void *arg,
              struct http_loop **out, char **cause)
{
    static int global_done;
    struct http_loop *hl;
    int rc;

    *out = NULL;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            err_set(cause, "cannot initialise libcurl");
            return -E_INTERNAL;
        }
        global_done = 1;
    }
    if ((hl = calloc(1, sizeof(*hl))) == NULL)
        return -E_NOMEM;
    hl->loop = loop;
    hl->who = who;
    hl->progress = progress;
    hl->arg = arg;
    if ((hl->multi = curl_multi_init()) == NULL) {
        free(hl);
        err_set(cause, "cannot create a libcurl multi handle");
        return -E_INTERNAL;
    }
    if ((rc = uv_timer_init(loop, &hl->timer)) != 0) {
        curl_multi_cleanup(hl->multi);
        free(hl);
        err_set(cause, "cannot create a timer: %s", uv_strerror(rc));
        return -E_INTERNAL;
    }
    hl->timer.data = hl;
    hl->open_handles = 1;
    if (curl_multi_setopt(hl->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(hl->multi, CURLMOPT_SOCKETDATA, hl) != CURLM_OK ||
        curl_multi_setopt(hl->multi, CURLMOPT_TIMERFUNCTION, on_timeout) != CURLM_OK ||
        curl_multi_setopt(hl->multi, CURLMOPT_TIMERDATA, hl) != CURLM_OK) {
        err_set(cause, "cannot set up libcurl");
        http_loop_free(hl);
        return -E_INTERNAL;
    }
    *out = hl;
    return 0;
}

CURLM *
http_loop_multi(struct http_loop *hl)
{
    return hl->multi;
}

void
http_loop_free(struct http_loop *hl)
{
    if (hl == NULL || hl->closing)
        return;
    hl->closing = 1;
    /* The sockets libcurl still holds are handed back (CURL_POLL_REMOVE) here. */
    curl_multi_cleanup(hl->multi);
    hl->multi = NULL;
    uv_timer_stop(&hl->timer);
    uv_close((uv_handle_t *)&hl->timer, timer_closed);
}
