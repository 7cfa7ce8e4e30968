/*
 * AIA caIssuers fetches on the agent's loop: one libcurl multi handle driven
 * by curl_multi_socket_action, a uv_poll per socket and a uv_timer, so a
 * server that never answers holds a socket, not a thread of the pool the
 * CPU work shares.  Each fetch is bounded: http:// only, no redirect, a
 * connect and a total deadline, AIA_MAX_REPLY bytes; at most
 * AIA_MAX_CONNECTIONS run at once and the others wait in order.
 *
 * Loop thread only.  (acme-http.c drives ACME the same way; it belongs to a
 * higher layer, and the two differ in what they allow: redirects, TLS,
 * connection reuse.)
 */
#ifndef CERTAGENT_AIA_H
#define CERTAGENT_AIA_H

#include <stddef.h>
#include <uv.h>

#include "trust.h"

/* The largest reply accepted. */
#define AIA_MAX_REPLY (64 * 1024)
/* Fetches running at once, in all (each holds one socket). */
#define AIA_MAX_CONNECTIONS 4
/* A connection that is not up after this long fails (capped by the total deadline). */
#define AIA_CONNECT_TIMEOUT_MS 3000L

struct aia;
struct aia_fetch;

/*
 * Called on the loop once the fetch ended, with its result filled in; the
 * fetch is gone by then (forget its pointer).
 */
typedef void (*aia_done_fn)(void *arg);

int aia_new(uv_loop_t *loop, struct aia **out, char **cause);
/*
 * Cancels every fetch (their callbacks are not called: cancel them first if
 * they must be) and frees once libuv has closed the handles.
 */
void aia_free(struct aia *aia);

/*
 * Fetches result->url (http:// only) into result->data or result->error,
 * giving up timeout_ms after it started (it may first wait for a free
 * connection).  result must stay valid until done is called or the fetch
 * is cancelled.  On failure nothing was started.
 */
int aia_fetch_start(struct aia *aia, long timeout_ms, struct trust_fetched *result,
                    aia_done_fn done, void *arg, struct aia_fetch **out, char **cause);
/* Stops a fetch (queued or running) at once: its socket is closed, done is not called. */
void aia_fetch_cancel(struct aia_fetch *fetch);

/* Fetches running and waiting, for logs and tests. */
size_t aia_running(const struct aia *aia);
size_t aia_waiting(const struct aia *aia);

#endif
