/*
 * A libcurl multi handle driven by the libuv loop (agent/base/http-loop.c):
 * its sockets watched with uv_poll, its deadlines with a uv_timer, through
 * curl_multi_socket_action.  ACME (acme/acme-http.c) and AIA fetching
 * (trust/aia.c) each own one and add their easy handles to it.
 */
#ifndef CERTAGENT_HTTP_LOOP_H
#define CERTAGENT_HTTP_LOOP_H

#include <curl/curl.h>
#include <uv.h>

struct http_loop;

/* Called after libcurl made progress: the owner reads curl_multi_info_read. */
typedef void (*http_loop_progress_fn)(void *arg);

/* who names the owner in log lines ("acme", "AIA").  0, or -E_* with *cause. */
int http_loop_new(uv_loop_t *loop, const char *who, http_loop_progress_fn progress, void *arg,
                  struct http_loop **out, char **cause);
/* The multi handle, for options and easy handles. */
CURLM *http_loop_multi(struct http_loop *hl);
/*
 * Once the owner has removed its easy handles: cleans up the multi handle
 * (the sockets of cached connections are handed back and unwatched) and
 * closes the timer; progress is not called again, and the memory goes once
 * the loop has closed the handles.  NULL is a no-op.
 */
void http_loop_free(struct http_loop *hl);

#endif
