#include "ops.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>

#include "acme.h"
#include "agent.h"
#include "err.h"
#include "log.h"
#include "ops-trust.h"
#include "pem.h"
#include "probe.h"
#include "status.h"
#include "store-pack.h"
#include "store.h"
#include "strv.h"
#include "version.h"

typedef int (*op_handler)(struct request *req);

static int op_hello(struct request *req);
static int op_ping(struct request *req);
static int op_version(struct request *req);
static int op_status(struct request *req);
static int op_list(struct request *req);

/*
 * The right each op needs (platform.h, enum peer_right; the table of
 * docs/security.md).  read: the store's public view.  operate: ops that make
 * the agent reach the network for the peer (probe, verify's AIA fetches) or
 * show what a stranger need not see (logs with hook output, metrics, the
 * trust store, CAs, accounts).  verify needs operate even when AIA fetching
 * is off: its report lists the trust store's anchors and intermediates (as
 * trust list does), a certificate of the peer's makes it an oracle of what
 * the store trusts, and it takes a pool thread.  change: everything that
 * changes the store or its deployment, and export (it reads keys).
 */
static const struct op_entry {
    enum proto_op op;
    op_handler handler;
    enum peer_right right;
} op_table[] = {
    {PROTO_OP_HELLO, op_hello, PEER_RIGHT_READ},
    {PROTO_OP_PING, op_ping, PEER_RIGHT_READ},
    {PROTO_OP_VERSION, op_version, PEER_RIGHT_READ},
    {PROTO_OP_STATUS, op_status, PEER_RIGHT_READ},
    {PROTO_OP_LIST, op_list, PEER_RIGHT_READ},
    {PROTO_OP_SHOW, ops_show, PEER_RIGHT_READ},
    {PROTO_OP_IMPORT, ops_import, PEER_RIGHT_CHANGE},
    {PROTO_OP_SELFSIGNED, ops_selfsigned, PEER_RIGHT_CHANGE},
    {PROTO_OP_EXPORT, ops_export, PEER_RIGHT_CHANGE},
    {PROTO_OP_REMOVE, ops_remove, PEER_RIGHT_CHANGE},
    {PROTO_OP_ROLLBACK, ops_rollback, PEER_RIGHT_CHANGE},
    {PROTO_OP_SET, ops_set, PEER_RIGHT_CHANGE},
    {PROTO_OP_DEPLOY, ops_deploy, PEER_RIGHT_CHANGE},
    {PROTO_OP_REQUEST, ops_request, PEER_RIGHT_CHANGE},
    {PROTO_OP_RENEW, ops_renew, PEER_RIGHT_CHANGE},
    {PROTO_OP_REVOKE, ops_revoke, PEER_RIGHT_CHANGE},
    {PROTO_OP_CA_ADD, ops_ca_add, PEER_RIGHT_CHANGE},
    {PROTO_OP_CA_LIST, ops_ca_list, PEER_RIGHT_OPERATE},
    {PROTO_OP_CA_REMOVE, ops_ca_remove, PEER_RIGHT_CHANGE},
    {PROTO_OP_ACCOUNT_REGISTER, ops_account, PEER_RIGHT_CHANGE},
    {PROTO_OP_ACCOUNT_SHOW, ops_account, PEER_RIGHT_OPERATE},
    {PROTO_OP_ACCOUNT_ROLLOVER, ops_account, PEER_RIGHT_CHANGE},
    {PROTO_OP_ACCOUNT_DEACTIVATE, ops_account, PEER_RIGHT_CHANGE},
    {PROTO_OP_ACCOUNT_IMPORT, ops_account, PEER_RIGHT_CHANGE},
    {PROTO_OP_TRUST_ADD, ops_trust_add, PEER_RIGHT_CHANGE},
    {PROTO_OP_TRUST_LIST, ops_trust_list, PEER_RIGHT_OPERATE},
    {PROTO_OP_TRUST_REMOVE, ops_trust_remove, PEER_RIGHT_CHANGE},
    {PROTO_OP_TRUST_SHOW, ops_trust_show, PEER_RIGHT_OPERATE},
    {PROTO_OP_VERIFY, ops_verify, PEER_RIGHT_OPERATE},
    {PROTO_OP_PROBE, ops_probe, PEER_RIGHT_OPERATE},
    {PROTO_OP_METRICS, ops_metrics, PEER_RIGHT_OPERATE},
    {PROTO_OP_LOGS, ops_logs, PEER_RIGHT_OPERATE},
    {PROTO_OP_NOTIFY_TEST, ops_notify_test, PEER_RIGHT_CHANGE},
    {PROTO_OP_NOTIFY_STATUS, ops_notify_status, PEER_RIGHT_OPERATE},
    {PROTO_OP_ACK, ops_ack, PEER_RIGHT_CHANGE},
    {PROTO_OP_REPORT_SEND, ops_report_send, PEER_RIGHT_CHANGE},
    {PROTO_OP_REPORT, ops_report, PEER_RIGHT_READ},
    {PROTO_OP_FLEET_STATUS, ops_fleet_status, PEER_RIGHT_OPERATE},
    {PROTO_OP_FLEET_FORGET, ops_fleet_forget, PEER_RIGHT_CHANGE},
    {PROTO_OP_CANARY_RUN, ops_canary_run, PEER_RIGHT_CHANGE},
    {PROTO_OP_CANARY_STATUS, ops_canary_status, PEER_RIGHT_READ},
};

/* "remove of 'web' failed: no certificate named 'web'" (the name when the request has one). */
static void
log_failed_change(struct request *req, int rc)
{
    char *name = NULL, *line = NULL;

    if (req->args == NULL || proto_get_strdup(req->args, "name", &name) != 0)
        name = NULL;
    if (name != NULL)
        err_set(&line, "%s of '%s' failed: %s", proto_op_name(req->op), name,
                req->cause != NULL ? req->cause : err_message(rc));
    else
        err_set(&line, "%s failed: %s", proto_op_name(req->op),
                req->cause != NULL ? req->cause : err_message(rc));
    ops_log_failure(req->client, rc, line != NULL ? line : "a change failed");
    free(line);
    free(name);
}

void
ops_dispatch(struct client *client, const msgpack_object *msg)
{
    struct request req;
    const msgpack_object *args;
    const struct op_entry *entry = NULL;
    const char *opname = NULL;
    size_t oplen = 0;
    int rc;

    memset(&req, 0, sizeof(req));
    req.agent = client->server->agent;
    req.client = client;
    if (proto_get_uint(msg, "id", &req.id) != 0 ||
        proto_get_str(msg, "op", &opname, &oplen) != 0) {
        log_warn("client %llu (%s, pid %ld) sent a request without id or op; dropping it",
                 (unsigned long long)client->number, client->peer.name, client->peer.pid);
        server_send_error(client, req.id, E_PROTO, "a request needs an integer id and an op");
        server_drop(client, "request without id or op");
        return;
    }
    req.op = proto_op_from_name(opname, oplen);
    if (!client->hello_done && req.op != PROTO_OP_HELLO) {
        server_send_error(client, req.id, E_PROTO, "the first request must be hello");
        server_drop(client, "no hello");
        return;
    }
    for (size_t i = 0; i < sizeof(op_table) / sizeof(op_table[0]); i++) {
        if (op_table[i].op == req.op)
            entry = &op_table[i];
    }
    if (entry == NULL) {
        char msgbuf[128];

        snprintf(msgbuf, sizeof(msgbuf), "unknown operation '%.*s'",
                 (int)(oplen > 64 ? 64 : oplen), opname);
        server_send_error(client, req.id, E_UNKNOWN_OP, msgbuf);
        return;
    }
    args = proto_get(msg, "args");
    if (args != NULL && args->type != MSGPACK_OBJECT_MAP && args->type != MSGPACK_OBJECT_NIL) {
        server_send_error(client, req.id, E_BAD_INPUT, "args must be a map");
        return;
    }
    req.args = (args != NULL && args->type == MSGPACK_OBJECT_MAP) ? args : NULL;
    if (req.agent->stopping && req.op != PROTO_OP_HELLO) {
        server_send_error(client, req.id, E_UNAVAILABLE, "the agent is shutting down");
        return;
    }
    if (!server_acl_allow(client, req.id, entry->right, proto_op_name(req.op)))
        return;
    if ((rc = entry->handler(&req)) != 0) {
        /* A change turned down or failed at once is logged (those queued log when done). */
        if (entry->right == PEER_RIGHT_CHANGE)
            log_failed_change(&req, rc);
        server_send_error(client, req.id, rc, req.cause);
        if (rc == -E_VERSION)
            server_drop(client, "protocol version mismatch");
    }
    free(req.cause);
}

/* Argument helpers. */

static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};

static const msgpack_object *
args_of(struct request *req)
{
    return req->args != NULL ? req->args : &empty_map;
}

int
ops_arg_str(struct request *req, const char *key, int required, char **out)
{
    int rc = proto_get_strdup(args_of(req), key, out);

    *out = rc == 0 ? *out : NULL;
    if (rc == -E_NOT_FOUND && !required)
        return 0;
    if (rc == -E_NOT_FOUND)
        err_set(&req->cause, "missing argument '%s'", key);
    else if (rc != 0)
        err_set(&req->cause, "argument '%s' must be a string", key);
    return rc == -E_NOMEM ? rc : rc != 0 ? -E_BAD_INPUT : 0;
}

void
ops_warn(char ***v, size_t *n, const char *fmt, ...)
{
    va_list ap;

    if (*n >= OPS_MAX_WARNINGS)
        return;
    va_start(ap, fmt);
    strv_vaddf(v, n, 511, fmt, ap);
    va_end(ap);
}

int
ops_arg_strs(struct request *req, const char *key, char ***out, size_t *n)
{
    const msgpack_object_array *a = NULL;
    char **v = NULL;
    int rc;

    *out = NULL;
    *n = 0;
    rc = proto_get_array(args_of(req), key, &a);
    if (rc == -E_NOT_FOUND)
        return 0;
    if (rc != 0 || a->size > 1000) {
        err_set(&req->cause, "argument '%s' must be a list of at most 1000 strings", key);
        return -E_BAD_INPUT;
    }
    if (a->size == 0)
        return 0;
    if ((v = calloc(a->size, sizeof(*v))) == NULL)
        return -E_NOMEM;
    for (uint32_t i = 0; i < a->size; i++) {
        if ((rc = proto_strdup(&a->ptr[i], &v[i])) != 0) {
            strv_free(v, i);
            err_set(&req->cause, "argument '%s' must be a list of strings", key);
            return rc == -E_NOMEM ? rc : -E_BAD_INPUT;
        }
    }
    *out = v;
    *n = a->size;
    return 0;
}

int
ops_arg_uint(struct request *req, const char *key, int required, uint64_t *out)
{
    int rc = proto_get_uint(args_of(req), key, out);

    if (rc == -E_NOT_FOUND && !required)
        return 0;
    if (rc == -E_NOT_FOUND)
        err_set(&req->cause, "missing argument '%s'", key);
    else if (rc != 0)
        err_set(&req->cause, "argument '%s' must be a non-negative integer", key);
    return rc != 0 ? -E_BAD_INPUT : 0;
}

int
ops_arg_bin(struct request *req, const char *key, int required, unsigned char **out, size_t *len)
{
    const char *p = NULL;
    int rc = proto_get_bin(args_of(req), key, &p, len);

    *out = NULL;
    if (rc == -E_NOT_FOUND && !required) {
        *len = 0;
        return 0;
    }
    if (rc != 0) {
        err_set(&req->cause,
                rc == -E_NOT_FOUND ? "missing argument '%s'" : "argument '%s' must be bytes", key);
        return -E_BAD_INPUT;
    }
    /* One extra NUL so that PEM parsers may treat it as text. */
    if ((*out = malloc(*len + 1)) == NULL)
        return -E_NOMEM;
    if (*len > 0)
        memcpy(*out, p, *len); /* p may be NULL for empty bytes */
    (*out)[*len] = '\0';
    return 0;
}

/* Jobs. */

static void
job_work(uv_work_t *work)
{
    struct job *job = (struct job *)work;

    job->run(job);
}

static void
job_after(uv_work_t *work, int status)
{
    struct job *job = (struct job *)work;
    struct client *client = job->client;

    if (status == UV_ECANCELED && job->rc == 0) {
        job->rc = -E_UNAVAILABLE;
        err_set(&job->cause, "the agent is shutting down");
    }
    if (job->done != NULL)
        job->done(job);
    if (server_client_alive(client)) {
        if (job->rc == 0) {
            server_send_writer(client, job->id, &job->reply);
        } else {
            proto_writer_destroy(&job->reply);
            server_send_error(client, job->id, job->rc, job->cause);
        }
    } else {
        proto_writer_destroy(&job->reply);
    }
    job->agent->jobs--;
    free(job->cause);
    job->cause = NULL;
    server_client_unref(client);
    job->release(job);
}

int
ops_job_queue(struct request *req, struct job *job, job_fn run, job_fn done, job_fn release)
{
    int rc;

    job->agent = req->agent;
    job->client = req->client;
    job->id = req->id;
    job->op = req->op;
    job->run = run;
    job->done = done;
    job->release = release;
    job->rc = 0;
    job->cause = NULL;
    proto_writer_init(&job->reply);
    if ((rc = uv_queue_work(req->agent->loop, &job->work, job_work, job_after)) != 0) {
        proto_writer_destroy(&job->reply);
        err_set(&req->cause, "cannot queue work: %s", uv_strerror(rc));
        return -E_INTERNAL;
    }
    server_client_ref(req->client);
    req->agent->jobs++;
    return 0;
}

/* Codes of a request the agent turned down rather than one it failed to carry out. */
static int
is_refusal(int rc)
{
    switch (rc < 0 ? -rc : rc) {
    case E_BAD_INPUT:
    case E_NOT_FOUND:
    case E_EXISTS:
    case E_DENIED:
    case E_BUSY:
    case E_TOO_BIG:
        return 1;
    default:
        return 0;
    }
}

void
ops_log_failure(const struct client *client, int rc, const char *what)
{
    enum log_level level = is_refusal(rc) ? LOG_LEVEL_INFO : LOG_LEVEL_WARN;

    if (client == NULL)
        log_msg(level, "%s [%s]", what, err_name(rc));
    else
        log_msg(level, "%s (uid %ld, pid %ld): %s [%s]", client->peer.name, client->peer.uid,
                client->peer.pid, what, err_name(rc));
}

void
ops_items_begin(struct proto_writer *w, uint64_t id, size_t n)
{
    proto_writer_init(w);
    msgpack_pack_map(&w->pk, 3);
    proto_pack_kv_uint(&w->pk, "id", id);
    proto_pack_kv_str(&w->pk, "event", "items");
    proto_pack_str(&w->pk, "items");
    msgpack_pack_array(&w->pk, n);
}

void
ops_progress(struct client *client, uint64_t id, const char *message, uint64_t done,
             uint64_t total)
{
    struct proto_writer w;

    proto_writer_init(&w);
    msgpack_pack_map(&w.pk, 5);
    proto_pack_kv_uint(&w.pk, "id", id);
    proto_pack_kv_str(&w.pk, "event", "progress");
    proto_pack_kv_str(&w.pk, "message", message);
    proto_pack_kv_uint(&w.pk, "done", done);
    proto_pack_kv_uint(&w.pk, "total", total);
    server_send_writer(client, id, &w);
}

/* Session ops. */

static int
op_hello(struct request *req)
{
    struct proto_writer w;
    uint64_t proto = 0;
    char *client_name = NULL;
    int rc;

    if ((rc = ops_arg_uint(req, "proto", 1, &proto)) != 0)
        return rc;
    if ((rc = ops_arg_str(req, "client", 0, &client_name)) != 0)
        return rc;
    if (proto != PROTO_VERSION) {
        err_set(&req->cause,
                "protocol version mismatch: the agent speaks protocol %d, the client %llu; "
                "use the certctl that comes with this agent (%s)",
                PROTO_VERSION, (unsigned long long)proto, CERTAGENT_VERSION);
        free(client_name);
        return -E_VERSION;
    }
    req->client->hello_done = 1;
    log_debug("client %llu: %s (uid %ld, pid %ld) says hello as %s",
              (unsigned long long)req->client->number, req->client->peer.name,
              req->client->peer.uid, req->client->peer.pid,
              client_name != NULL ? client_name : "?");
    free(client_name);
    proto_writer_init(&w);
    proto_begin_result(&w.pk, req->id, 2);
    proto_pack_kv_uint(&w.pk, "proto", PROTO_VERSION);
    proto_pack_kv_str(&w.pk, "agent", CERTAGENT_VERSION);
    server_send_writer(req->client, req->id, &w);
    return 0;
}

static int
op_ping(struct request *req)
{
    struct proto_writer w;

    proto_writer_init(&w);
    proto_begin_result(&w.pk, req->id, 0);
    server_send_writer(req->client, req->id, &w);
    return 0;
}

static int
op_version(struct request *req)
{
    struct proto_writer w;

    proto_writer_init(&w);
    proto_begin_result(&w.pk, req->id, 3);
    proto_pack_kv_str(&w.pk, "agent", CERTAGENT_VERSION);
    proto_pack_kv_uint(&w.pk, "proto", PROTO_VERSION);
    proto_pack_kv_str(&w.pk, "openssl", OpenSSL_version(OPENSSL_VERSION));
    server_send_writer(req->client, req->id, &w);
    return 0;
}

long
ops_stream_certs(struct request *req, ops_row_fn row, void *arg)
{
    struct store *store = req->agent->store;
    size_t total = store_count(store), i = 0;
    long sent = 0;

    while (i < total) {
        struct proto_writer w;
        size_t batch = 0, start = i;

        /* Count the batch first: msgpack arrays are length-prefixed. */
        while (i < total && batch < PROTO_ITEMS_BATCH) {
            if (store_at(store, i)->current != 0)
                batch++;
            i++;
        }
        if (batch == 0)
            break;
        ops_items_begin(&w, req->id, batch);
        for (size_t j = start; j < i; j++) {
            if (store_at(store, j)->current != 0)
                row(arg, &w.pk, store_at(store, j));
        }
        server_send_writer(req->client, req->id, &w);
        sent += (long)batch;
    }
    return sent;
}

static void
list_row(void *arg, msgpack_packer *pk, const struct store_cert *cert)
{
    store_pack_cert(pk, cert, *(const int64_t *)arg);
}

static int
op_list(struct request *req)
{
    struct proto_writer w;
    int64_t now = (int64_t)time(NULL);
    long n = ops_stream_certs(req, list_row, &now);

    proto_writer_init(&w);
    proto_begin_result(&w.pk, req->id, 1);
    proto_pack_kv_uint(&w.pk, "count", (uint64_t)n);
    server_send_writer(req->client, req->id, &w);
    return 0;
}

static int
op_status(struct request *req)
{
    /* The report with warnings and health: ops-status.c. */
    return ops_status(req);
}
