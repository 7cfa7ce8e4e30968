/*
 * The logs op: recent lines from the log ring (log.c), filtered by
 * certificate name (log_line_mentions) and level, and with follow, new
 * lines as they come ("items" events) until the client goes away.
 *
 * A follower that does not read is dropped once more than
 * LOGS_FOLLOW_MAX_PENDING bytes wait for it, so it never holds the loop or
 * memory.  Pool threads log too: the ring wakes the loop with a uv_async_t.
 */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "err.h"
#include "log.h"
#include "ops.h"
#include "server.h"

#define LOGS_DEFAULT_LINES 100
#define LOGS_FOLLOW_MAX_PENDING (1024u * 1024)
/* Lines per "items" event. */
#define LOGS_BATCH 256
/* How often followers whose client went away are looked for. */
#define LOGS_SWEEP_MS 1000

struct follower {
    struct follower *next;
    struct client *client;
    uint64_t id;
    uint64_t last; /* newest sequence number sent */
    char *name;
    int level;
    uint64_t sent;
};

struct ops_logs {
    uv_loop_t *loop;
    uv_async_t async;
    uv_timer_t sweep;
    int handles; /* async and sweep are initialised */
    int stopping;
    struct follower *followers;
};

/* A copy of a line that passed the filter. */
struct line {
    uint64_t seq;
    int64_t time;
    int level;
    char *text;
};

/* Collects the last `max` lines that pass the filter (a ring of copies). */
struct collect {
    const char *name;
    int level;
    struct line *v;
    size_t max, n, head; /* v[head] is the oldest once n == max */
    int nomem;
};

static void
collect_line(void *arg, uint64_t seq, int64_t time, enum log_level level, const char *text)
{
    struct collect *c = arg;
    struct line *slot;
    char *copy;

    if ((int)level > c->level || (c->name != NULL && !log_line_mentions(text, c->name)))
        return;
    if (c->max == 0)
        return;
    if ((copy = strdup(text)) == NULL) {
        c->nomem = 1;
        return;
    }
    if (c->n < c->max) {
        slot = &c->v[(c->head + c->n) % c->max];
        c->n++;
    } else {
        slot = &c->v[c->head];
        free(slot->text);
        c->head = (c->head + 1) % c->max;
    }
    slot->seq = seq;
    slot->time = time;
    slot->level = (int)level;
    slot->text = copy;
}

static void
collect_free(struct collect *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[(c->head + i) % c->max].text);
    free(c->v);
}

static void
pack_line(msgpack_packer *pk, const struct line *l)
{
    msgpack_pack_map(pk, 4);
    proto_pack_kv_uint(pk, "seq", l->seq);
    proto_pack_kv_int(pk, "time", l->time);
    proto_pack_kv_str(pk, "level", log_level_name((enum log_level)l->level));
    proto_pack_kv_str(pk, "text", l->text);
}

/* Sends the collected lines as "items" events; returns how many. */
static size_t
send_lines(struct client *client, uint64_t id, const struct collect *c)
{
    size_t i = 0;

    while (i < c->n) {
        struct proto_writer w;
        size_t batch = c->n - i > LOGS_BATCH ? LOGS_BATCH : c->n - i;

        ops_items_begin(&w, id, batch);
        for (size_t k = 0; k < batch; k++)
            pack_line(&w.pk, &c->v[(c->head + i + k) % c->max]);
        server_send_writer(client, id, &w);
        i += batch;
    }
    return c->n;
}

static void
follower_free(struct follower *f)
{
    server_client_unref(f->client);
    free(f->name);
    free(f);
}

/* The final reply of a follow (the agent stops). */
static void
follower_end(struct follower *f, const char *why)
{
    if (server_client_alive(f->client)) {
        struct proto_writer w;

        proto_writer_init(&w);
        proto_begin_result(&w.pk, f->id, 2);
        proto_pack_kv_uint(&w.pk, "count", f->sent);
        proto_pack_kv_str(&w.pk, "ended", why);
        server_send_writer(f->client, f->id, &w);
    }
    follower_free(f);
}

/* Delivers new lines to every follower; drops the gone and the slow ones. */
static void
deliver(struct ops_logs *l)
{
    struct follower **pp = &l->followers;

    while (*pp != NULL) {
        struct follower *f = *pp;
        struct collect c;
        uint64_t lost = 0;

        if (!server_client_alive(f->client) ||
            f->client->pending_write > LOGS_FOLLOW_MAX_PENDING) {
            *pp = f->next;
            if (server_client_alive(f->client)) {
                log_warn("logs: client %llu (%s, pid %ld) follows the log but does not read "
                         "it; dropping it",
                         (unsigned long long)f->client->number, f->client->peer.name,
                         f->client->peer.pid);
                server_drop(f->client, "it follows the log but does not read it");
            }
            follower_free(f);
            continue;
        }
        memset(&c, 0, sizeof(c));
        c.name = f->name;
        c.level = f->level;
        c.max = LOGS_BATCH * 4;
        if ((c.v = calloc(c.max, sizeof(*c.v))) != NULL) {
            uint64_t newest = log_ring_read(f->last, collect_line, &c, &lost);

            /* Lines beyond c.max in one wake-up count as lost too. */
            f->sent += send_lines(f->client, f->id, &c);
            f->last = newest;
            if (lost > 0)
                ops_progress(f->client, f->id, "log lines were lost (the ring wrapped)", lost, 0);
        }
        collect_free(&c);
        pp = &f->next;
    }
}

static void
on_async(uv_async_t *a)
{
    deliver(a->data);
}

static void
on_sweep(uv_timer_t *t)
{
    deliver(t->data);
}

/* Any thread, under the logger's lock. */
static void
on_line(void *arg)
{
    struct ops_logs *l = arg;

    uv_async_send(&l->async);
}

static int
start_handles(struct ops_logs *l, char **cause)
{
    int rc;

    if (l->handles)
        return 0;
    if ((rc = uv_async_init(l->loop, &l->async, on_async)) != 0) {
        err_set(cause, "cannot follow the log: %s", uv_strerror(rc));
        return -E_INTERNAL;
    }
    if ((rc = uv_timer_init(l->loop, &l->sweep)) != 0) {
        uv_close((uv_handle_t *)&l->async, NULL);
        err_set(cause, "cannot follow the log: %s", uv_strerror(rc));
        return -E_INTERNAL;
    }
    l->async.data = l->sweep.data = l;
    l->handles = 1;
    if (uv_timer_start(&l->sweep, on_sweep, LOGS_SWEEP_MS, LOGS_SWEEP_MS) != 0)
        log_warn("logs: the sweep of gone followers does not run");
    log_ring_set_notify(on_line, l);
    return 0;
}

int
ops_logs(struct request *req)
{
    struct ops_logs *l = req->agent->logs;
    struct collect c;
    struct follower *f = NULL;
    uint64_t lines = LOGS_DEFAULT_LINES, newest, lost = 0;
    char *level = NULL;
    int follow = 0, rc;
    struct proto_writer w;
    const msgpack_object *fo;

    memset(&c, 0, sizeof(c));
    c.level = LOG_LEVEL_DEBUG;
    if ((rc = ops_arg_uint(req, "lines", 0, &lines)) != 0 ||
        (rc = ops_arg_str(req, "name", 0, (char **)&c.name)) != 0 ||
        (rc = ops_arg_str(req, "level", 0, &level)) != 0)
        goto out;
    if (level != NULL && (c.level = log_level_parse(level)) < 0) {
        err_set(&req->cause, "unknown level '%s': use error, warn, info or debug", level);
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (req->args != NULL && (fo = proto_get(req->args, "follow")) != NULL &&
        fo->type == MSGPACK_OBJECT_BOOLEAN)
        follow = fo->via.boolean;
    if (lines > LOG_RING_MAX)
        lines = LOG_RING_MAX;
    c.max = (size_t)lines;
    if (c.max > 0 && (c.v = calloc(c.max, sizeof(*c.v))) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if (follow) {
        if (l->stopping) {
            err_set(&req->cause, "the agent is stopping");
            rc = -E_UNAVAILABLE;
            goto out;
        }
        if ((f = calloc(1, sizeof(*f))) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
        if ((rc = start_handles(l, &req->cause)) != 0)
            goto out;
    }
    newest = log_ring_read(0, collect_line, &c, &lost);
    if (c.nomem) {
        rc = -E_NOMEM;
        goto out;
    }
    send_lines(req->client, req->id, &c);
    if (follow) {
        f->client = req->client;
        f->id = req->id;
        f->last = newest;
        f->level = c.level;
        f->name = (char *)c.name;
        f->sent = c.n;
        c.name = NULL;
        server_client_ref(req->client);
        f->next = l->followers;
        l->followers = f;
        f = NULL;
        /* The client learns that following began (and may stop waiting for old lines). */
        ops_progress(req->client, req->id, "following the log", c.n, 0);
    } else {
        proto_writer_init(&w);
        proto_begin_result(&w.pk, req->id, 2);
        proto_pack_kv_uint(&w.pk, "count", c.n);
        proto_pack_kv_uint(&w.pk, "ring_lines", (uint64_t)req->agent->config.log_ring_lines);
        server_send_writer(req->client, req->id, &w);
    }
out:
    free(f);
    free((char *)c.name);
    free(level);
    collect_free(&c);
    return rc;
}

int
ops_logs_new(uv_loop_t *loop, struct ops_logs **out)
{
    struct ops_logs *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return -E_NOMEM;
    l->loop = loop;
    *out = l;
    return 0;
}

void
ops_logs_stop(struct ops_logs *l)
{
    if (l == NULL || l->stopping)
        return;
    l->stopping = 1;
    log_ring_set_notify(NULL, NULL);
    while (l->followers != NULL) {
        struct follower *f = l->followers;

        l->followers = f->next;
        follower_end(f, "the agent is stopping");
    }
    if (l->handles) {
        uv_close((uv_handle_t *)&l->async, NULL);
        uv_close((uv_handle_t *)&l->sweep, NULL);
    }
}

void
ops_logs_free(struct ops_logs *l)
{
    if (l == NULL)
        return;
    log_ring_set_notify(NULL, NULL);
    while (l->followers != NULL) {
        struct follower *f = l->followers;

        l->followers = f->next;
        follower_free(f);
    }
    free(l);
}
