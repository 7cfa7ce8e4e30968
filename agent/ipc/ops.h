/*
 * Requests: the op table (ops.c) and the handlers (ops.c for the session and
 * read-only ops, ops-cert.c for the ones that change or export certificates).
 * A handler either replies at once or queues a job whose disk and crypto work
 * runs in the libuv thread pool, so the loop never blocks.
 */
#ifndef CERTAGENT_OPS_H
#define CERTAGENT_OPS_H

#include <stdint.h>
#include <uv.h>

#include "err.h"
#include "proto.h"

struct agent;
struct client;

struct request {
    struct agent *agent;
    struct client *client;
    uint64_t id;
    enum proto_op op;
    const msgpack_object *args; /* a map; valid only during the handler */
    char *cause;                /* words for an error the handler returns */
};

/* Handles one decoded frame from client. */
void ops_dispatch(struct client *client, const msgpack_object *msg);

struct job;
typedef void (*job_fn)(struct job *job);

/*
 * A unit of work for the thread pool.  run (pool thread) does the work and,
 * on success, packs the complete reply into `reply`; done (loop thread, may
 * be NULL) commits to the index and logs; then the reply or the error
 * (rc, cause) is sent and release frees the containing object.
 */
struct job {
    uv_work_t work;
    struct agent *agent;
    struct client *client;
    uint64_t id;
    enum proto_op op;
    job_fn run;
    job_fn done;
    job_fn release;
    int rc;
    char *cause;
    struct proto_writer reply;
};

/* Queues job; on failure returns a negative code and the caller still owns job. */
int ops_job_queue(struct request *req, struct job *job, job_fn run, job_fn done, job_fn release);

/* Sends a progress event for request id. */
/*
 * Starts an "items" event of request id in w (initialised here): the caller
 * packs the n items, then sends w with server_send_writer.
 */
void ops_items_begin(struct proto_writer *w, uint64_t id, size_t n);
void ops_progress(struct client *client, uint64_t id, const char *message, uint64_t done,
                  uint64_t total);

/* Argument helpers: 0, or -E_BAD_INPUT with req->cause naming the argument. */
int ops_arg_str(struct request *req, const char *key, int required, char **out);
int ops_arg_strs(struct request *req, const char *key, char ***out, size_t *n);
int ops_arg_uint(struct request *req, const char *key, int required, uint64_t *out);
int ops_arg_bin(struct request *req, const char *key, int required, unsigned char **out,
                size_t *len);
/*
 * Adds a warning for the reply to the array *v of *n: the sentence fmt
 * formats, cut at 511 bytes; dropped once OPS_MAX_WARNINGS are in or when out
 * of memory.  Free the array with strv_free.
 */
#define OPS_MAX_WARNINGS 8
void ops_warn(char ***v, size_t *n, const char *fmt, ...) ERR_PRINTF(3, 4);

/*
 * Logs a failed operation once, with who asked (client NULL: the agent itself):
 * at warn when the agent could not do what it was asked (a file, the crypto,
 * the CA, memory: logs --level warn shows it), at info when it refused input
 * (malformed, an unknown name, a duplicate, busy, denied: the client was told).
 * what is the sentence, "import of 'web' failed: ..."; it must hold no secret.
 */
void ops_log_failure(const struct client *client, int rc, const char *what);

/* ops-cert.c */
int ops_show(struct request *req);
int ops_import(struct request *req);
int ops_selfsigned(struct request *req);
int ops_export(struct request *req);
int ops_remove(struct request *req);
int ops_rollback(struct request *req);

/*
 * Commits a certificate the agent obtained itself (ACME) as a new version of
 * name, through the same checks as an import (key match, chain order), with
 * meta_json stored in meta.json.  The reply (as for import) goes to client
 * (may be NULL) under id; notify (may be NULL) is called on the loop with the
 * outcome.  -E_BUSY when another change to name is in flight.
 */
enum cert_source;
typedef void (*ops_cert_notify)(void *arg, int rc, const char *cause);
int ops_cert_store(struct agent *agent, struct client *client, uint64_t id, enum proto_op op,
                   const char *name, enum cert_source source, const char *fullchain_pem,
                   const char *key_pem, const char *meta_json, ops_cert_notify notify, void *arg,
                   char **cause);

/* A new self-signed version of name (automatic renewal), as ops_cert_store. */
int ops_cert_selfsigned(struct agent *agent, const char *name, const char *const *dns, size_t ndns,
                        const char *const *ips, size_t nips, const char *key_type, unsigned days,
                        ops_cert_notify notify, void *arg, char **cause);
/* The same, with meta_json stored as the version's meta.json "extra" (the last resort). */
int ops_cert_selfsigned_meta(struct agent *agent, const char *name, const char *const *dns,
                             size_t ndns, const char *const *ips, size_t nips,
                             const char *key_type, unsigned days, const char *meta_json,
                             ops_cert_notify notify, void *arg, char **cause);

/*
 * Records that version of name was revoked at its CA at `when` for reason
 * (ops_revoke, after the CA accepted it), then publishes EVENT_CERT_REVOKED;
 * notify as for ops_cert_store.  -E_BUSY when another change is in flight.
 */
int ops_cert_revoked(struct agent *agent, const char *name, unsigned version, int64_t when,
                     const char *reason, ops_cert_notify notify, void *arg, char **cause);

/* ops-status.c */
int ops_status(struct request *req);
int ops_metrics(struct request *req);

/* ops-report.c: the status report's text (report/digest.c), in chunks. */
int ops_report(struct request *req);

/* ops-deploy.c */
int ops_set(struct request *req);
int ops_deploy(struct request *req);

/* ops-acme.c */
int ops_request(struct request *req);
/* A request of a shared name in a fleet: the order runs under the fleet's lock (ops-shared.c). */
struct acme_order_args;
struct acme_observer;
int ops_request_shared(struct agent *agent, const struct acme_order_args *a,
                       const struct acme_observer *obs, char **cause);
/* Orders name from its definition in etcd (fleet-def.h: fleet_def_order_fn); ctx: the agent. */
int ops_shared_order_def(void *ctx, const char *name, const char *def_json,
                         void (*done)(void *arg, int rc), void *arg, char **cause);
/* Puts the definition of a shared name (names, CA, key type, challenge, tags) in etcd. */
void ops_shared_define(struct agent *agent, const struct acme_order_args *a,
                       const char *const *tags, size_t ntags);
int ops_renew(struct request *req);
int ops_revoke(struct request *req);
int ops_ca_add(struct request *req);
int ops_ca_list(struct request *req);
int ops_ca_remove(struct request *req);
/* Adds each CA's state (last success, failures in a row, fallback order, canary) to the
 * objects of acme_ca_list's array (ops-ca-state.c). */
void ops_ca_state_add(struct agent *agent, struct cJSON *list);
/* account_register, account_show, account_rollover, account_deactivate */
int ops_account(struct request *req);

struct store_cert;
/*
 * Streams every current certificate as "items" events of at most
 * PROTO_ITEMS_BATCH entries (a listing of thousands would not fit one
 * frame), row packing each.  Returns how many were sent.
 */
typedef void (*ops_row_fn)(void *arg, msgpack_packer *pk, const struct store_cert *cert);
long ops_stream_certs(struct request *req, ops_row_fn row, void *arg);

/*
 * ops-logs.c: the logs op, and its followers (certctl logs --follow), which
 * live until the client goes away or the agent stops.
 */
struct ops_logs;
int ops_logs_new(uv_loop_t *loop, struct ops_logs **out);
int ops_logs(struct request *req);
void ops_logs_stop(struct ops_logs *l);
void ops_logs_free(struct ops_logs *l);

/* ops-notify.c: notify test, notify status, ack */
int ops_notify_test(struct request *req);
int ops_notify_status(struct request *req);
int ops_ack(struct request *req);
int ops_report_send(struct request *req);

/* ops-fleet.c: fleet status and fleet nodes (the fleet's view, fleet/view.c). */
int ops_fleet_status(struct request *req);
int ops_fleet_forget(struct request *req);

/* ops-canary.c: canary_run (certctl canary run [CA]) and canary_status (renew/canary.c). */
int ops_canary_run(struct request *req);
int ops_canary_status(struct request *req);

#endif
