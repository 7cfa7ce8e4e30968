/*
 * A client of etcd v3 through its JSON gateway (POST /v3/kv/range, /v3/kv/put,
 * /v3/kv/txn, /v3/kv/deleterange, /v3/lease/grant, /v3/lease/keepalive,
 * /v3/watch; keys and values base64), with libcurl on the agent's loop
 * (base/http-loop.c).  Every call tries the endpoints in turn, starting with
 * the last one that answered; a member that fails (no connection, a TLS
 * failure, an HTTP error other than a refusal of the request, no reply in
 * time) is skipped for the rest of the call.  A watch is a long-lived
 * streaming POST that reconnects (to the next member) and resumes from the
 * revision after the last one it delivered.
 *
 * Loop thread only.
 */
#ifndef CERTAGENT_ETCD_H
#define CERTAGENT_ETCD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct cJSON;
struct etcd;
struct etcd_call;
struct etcd_watch;

struct etcd_options {
    char *const *endpoints; /* "https://HOST:PORT" (http:// for loopback) */
    size_t nendpoints;
    const char *trust;     /* PEM file of trusted CAs; NULL: the system store */
    const char *cert_file; /* client certificate (PEM, chain allowed); NULL: none */
    const char *key_file;  /* its key */
    long timeout_ms;       /* one call on one member; 0: 5000 */
};

int etcd_new(uv_loop_t *loop, const struct etcd_options *opts, struct etcd **out, char **cause);
/* Cancels calls (their callbacks are not called) and watches; frees once libuv is done. */
void etcd_free(struct etcd *etcd);
/* HTTP requests started so far (calls, their retries on other members, watch connections). */
uint64_t etcd_requests(const struct etcd *etcd);
/* Is the cluster reachable (the last call or watch connection got an answer)? */
int etcd_reachable(const struct etcd *etcd);
/* The words of the last call that no member answered (borrowed), or NULL. */
const char *etcd_last_error(const struct etcd *etcd);
/*
 * uv_now of the last call a member answered (0: none yet).  Calls go through the
 * cluster's leader, so a member without quorum does not count (a watch does).
 */
uint64_t etcd_last_answer(const struct etcd *etcd);

/*
 * rc 0: reply is the gateway's JSON object (borrowed for the callback).
 * Else -E_UNAVAILABLE (no member answered; cause names the last failure) or
 * -E_PROTO / -E_BAD_INPUT (the answer was not what the gateway sends, or it
 * refused the request).
 */
typedef void (*etcd_cb)(void *arg, int rc, const char *cause, const struct cJSON *reply);

/*
 * POSTs body (taken: freed by the call) to path ("/v3/kv/range") on the
 * members in turn.  *out (may be NULL) lets the caller cancel it.
 */
int etcd_call(struct etcd *etcd, const char *path, struct cJSON *body, etcd_cb cb, void *arg,
              struct etcd_call **out, char **cause);
/* The callback is not called.  NULL is a no-op. */
void etcd_call_cancel(struct etcd_call *call);

/*
 * A watch of every key under prefix from revision start (0: from now): ev(arg,
 * event, revision) for each event (the gateway's {"type": "PUT"|"DELETE",
 * "kv": {...}}), up(arg, connected) when the stream is set up (1) or lost (0),
 * and up(arg, ETCD_WATCH_COMPACTED) when etcd compacted the history the watch
 * was to resume from: the events in between are gone, so the caller reads the
 * keys again (the watch itself goes on from the compacted revision).
 */
#define ETCD_WATCH_COMPACTED (-1)
typedef void (*etcd_event_fn)(void *arg, const struct cJSON *event, int64_t revision);
typedef void (*etcd_up_fn)(void *arg, int connected);
int etcd_watch_start(struct etcd *etcd, const char *prefix, int64_t start, etcd_event_fn ev,
                     etcd_up_fn up, void *arg, struct etcd_watch **out, char **cause);
void etcd_watch_stop(struct etcd_watch *w);

/* Standard base64 (as the gateway wants bytes): heap string or NULL. */
char *etcd_b64(const void *data, size_t len);
/* Decodes base64 text; 0 or -E_BAD_INPUT.  *out is NUL-terminated (not counted). */
int etcd_unb64(const char *text, unsigned char **out, size_t *len);
/* Adds member name = base64(s) to obj.  0 or -E_NOMEM. */
int etcd_add_b64(struct cJSON *obj, const char *name, const void *data, size_t len);
/*
 * Appends {type: {"key": base64(key)}} to a txn's op list ("request_put",
 * "request_range", "request_delete_range") and returns the inner object (for
 * a put's value and lease), or NULL when out of memory.
 */
struct cJSON *etcd_txn_op(struct cJSON *ops, const char *type, const char *key);
/*
 * A txn body whose one compare holds when key does not exist (its
 * create_revision is 0), with its "success" op list in *success; NULL when
 * out of memory.
 */
struct cJSON *etcd_txn_if_absent(const char *key, struct cJSON **success);
/* The end of the range of every key that starts with prefix (prefix + 1 at its last byte). */
char *etcd_prefix_end(const char *prefix);
/* An int64 the gateway sends as a string ("12") or a number; 0 when absent. */
int64_t etcd_int(const struct cJSON *obj, const char *name);

#endif
