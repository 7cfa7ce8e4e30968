#include "server.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "err.h"
#include "log.h"
#include "ops-trust.h"
#include "ops.h"

struct write_req {
    uv_write_t req;
    struct client *client;
    char *data;
    size_t len;  /* bytes still to write (counted in pending_write) */
    size_t size; /* bytes of data that held the frame, wiped before it is freed */
};

/*
 * One read buffer for the whole loop: reads are consumed before the next one.
 * Requests carry passwords and keys (import, account import, ca add): every
 * buffer that held a frame, this one included, is wiped once consumed, and so
 * is every reply (export returns keys) before it is freed.
 */
static char read_buffer[64 * 1024];

static void client_close(struct client *client);
static void client_arm(struct client *client);

/* Frees a buffer that held a frame, wiping it first (it may hold a secret). */
static void
frame_free(char *data, size_t size)
{
    if (data != NULL) {
        OPENSSL_cleanse(data, size);
        free(data);
    }
}

int
server_client_alive(const struct client *client)
{
    return client != NULL && !client->closing;
}

void
server_client_ref(struct client *client)
{
    if (client != NULL)
        client->refs++;
}

static void
client_free(struct client *client)
{
    proto_reader_destroy(&client->reader);
    free(client);
}

/*
 * Every unref is an end of activity (a read, a write, a job): the client is
 * active now, and its next deadline (idle, once nothing holds it) is armed.
 */
void
server_client_unref(struct client *client)
{
    if (client == NULL)
        return;
    if (--client->refs == 0) {
        client_free(client);
        return;
    }
    if (!client->closing) {
        client->last_active = uv_now(client->server->agent->loop);
        client_arm(client);
    }
}

/* Gives up the client's partial frame (it is being dropped): memory and accounting. */
static void
client_release_reader(struct client *client)
{
    client->server->partial_bytes -= client->partial_held;
    client->partial_held = 0;
    proto_reader_destroy(&client->reader);
}

static void unlink_client(struct client *client);

static void
on_client_closed(uv_handle_t *handle)
{
    struct client *client = handle->data;

    unlink_client(client);
    /* Its network work (probes, AIA fetches) stops with it. */
    if (client->net_jobs > 0)
        ops_trust_client_gone(client);
    server_client_unref(client);
}

static void
unlink_client(struct client *client)
{
    struct server *server = client->server;

    if (client->prev != NULL)
        client->prev->next = client->next;
    else if (server->clients == client)
        server->clients = client->next;
    if (client->next != NULL)
        client->next->prev = client->prev;
    client->prev = client->next = NULL;
    server->nclients--;
}

static void
client_close(struct client *client)
{
    client->closing = 1;
    client_release_reader(client);
    if (!uv_is_closing((uv_handle_t *)&client->pipe))
        uv_close((uv_handle_t *)&client->pipe, on_client_closed);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
    struct client *client = req->data;

    (void)status;
    free(req);
    client_close(client);
}

void
server_drop(struct client *client, const char *why)
{
    uv_shutdown_t *req;

    if (client->closing)
        return;
    log_debug("client %llu (%s, pid %ld): dropped: %s", (unsigned long long)client->number,
              client->peer.name, client->peer.pid, why);
    client->closing = 1;
    uv_read_stop((uv_stream_t *)&client->pipe);
    client_release_reader(client);
    /*
     * Flush what is queued (an error reply, typically), then close.  A
     * client that does not read is closed at once: it would never drain.
     */
    if (client->pending_write < SERVER_MAX_PENDING_WRITE / 2 &&
        (req = malloc(sizeof(*req))) != NULL) {
        req->data = client;
        if (uv_shutdown(req, (uv_stream_t *)&client->pipe, on_shutdown) == 0)
            return;
        free(req);
    }
    client_close(client);
}

static void
on_write(uv_write_t *req, int status)
{
    struct write_req *wr = (struct write_req *)req;
    struct client *client = wr->client;

    client->pending_write -= wr->len;
    client->writes--;
    frame_free(wr->data, wr->size);
    free(wr);
    if (status < 0 && status != UV_ECANCELED && !client->closing)
        server_drop(client, uv_strerror(status));
    server_client_unref(client);
}

/* The client lets its replies pile up (SERVER_MAX_PENDING_WRITE): closed at once. */
static void
drop_not_reading(struct client *client)
{
    log_warn("client %llu (%s, pid %ld) does not read its replies; dropping it",
             (unsigned long long)client->number, client->peer.name, client->peer.pid);
    client_close(client);
}

/* Queues a frame (header included) to the client; takes ownership of data. */
static void
server_send(struct client *client, char *data, size_t len)
{
    struct write_req *wr;
    size_t size = len;
    uv_buf_t buf;
    int n;

    if (client->closing) {
        frame_free(data, size);
        return;
    }
    /* Fast path: the socket takes it all now, no request needed. */
    if (client->pending_write == 0) {
        buf = uv_buf_init(data, (unsigned)len);
        n = uv_try_write((uv_stream_t *)&client->pipe, &buf, 1);
        if (n == (int)len) {
            frame_free(data, size);
            return;
        }
        if (n > 0) {
            memmove(data, data + n, len - (size_t)n);
            len -= (size_t)n;
        } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
            frame_free(data, size);
            server_drop(client, uv_strerror(n));
            return;
        }
    }
    if (!client->in_request && client->pending_write + len > SERVER_MAX_PENDING_WRITE) {
        frame_free(data, size);
        drop_not_reading(client);
        return;
    }
    if ((wr = malloc(sizeof(*wr))) == NULL) {
        frame_free(data, size);
        server_drop(client, "out of memory");
        return;
    }
    wr->client = client;
    wr->data = data;
    wr->len = len;
    wr->size = size;
    buf = uv_buf_init(data, (unsigned)len);
    if ((n = uv_write(&wr->req, (uv_stream_t *)&client->pipe, &buf, 1, on_write)) != 0) {
        frame_free(data, size);
        free(wr);
        server_drop(client, uv_strerror(n));
        return;
    }
    client->pending_write += len;
    client->writes++;
    server_client_ref(client);
}

void
server_send_writer(struct client *client, uint64_t id, struct proto_writer *w)
{
    char *data = NULL;
    size_t len = 0;
    int rc;

    rc = proto_writer_finish(w, &data, &len);
    proto_writer_destroy(w);
    if (rc == 0) {
        server_send(client, data, len);
        return;
    }
    server_send_error(client, id, rc,
                      rc == -E_TOO_BIG ? "the reply exceeds the 1 MiB frame limit" : NULL);
}

void
server_send_error(struct client *client, uint64_t id, int code, const char *message)
{
    struct proto_writer w;
    char *data = NULL;
    size_t len = 0;

    proto_writer_init(&w);
    proto_pack_error(&w.pk, id, code, message, NULL);
    if (proto_writer_finish(&w, &data, &len) == 0)
        server_send(client, data, len);
    proto_writer_destroy(&w);
}

static void
on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)handle;
    (void)suggested;
    *buf = uv_buf_init(read_buffer, sizeof(read_buffer));
}

/* Why a client's deadline is due. */
enum deadline {
    DEADLINE_NONE,
    DEADLINE_FRAME, /* a frame begun and not completed (ipc_frame_timeout) */
    DEADLINE_HELLO, /* no hello yet (ipc_hello_timeout) */
    DEADLINE_IDLE,  /* nothing in flight, not following the log (ipc_idle_timeout) */
};

/*
 * The client's next deadline (uv_now() time) and its kind, 0 when it has none.
 * A client is idle when only its handle and its writes in flight hold it (no
 * job, no logs --follow) and it is not in the middle of a frame; a slow reader
 * of a large reply is active as long as its writes complete.
 */
static uint64_t
client_deadline(const struct client *c, enum deadline *kind)
{
    const struct config *cfg = &c->server->agent->config;
    uint64_t due = 0, d;

    *kind = DEADLINE_NONE;
    if (c->closing)
        return 0;
    if (c->frame_started != 0) {
        due = c->frame_started + (uint64_t)cfg->ipc_frame_timeout * 1000u;
        *kind = DEADLINE_FRAME;
    }
    if (!c->hello_done) {
        d = c->connected_at + (uint64_t)cfg->ipc_hello_timeout * 1000u;
        if (due == 0 || d < due) {
            due = d;
            *kind = DEADLINE_HELLO;
        }
    } else if (cfg->ipc_idle_timeout > 0 && c->frame_started == 0 && c->refs <= 1 + c->writes) {
        due = c->last_active + (uint64_t)cfg->ipc_idle_timeout * 1000u;
        *kind = DEADLINE_IDLE;
    }
    return due;
}

static void on_sweep(uv_timer_t *timer);

/* Arms the sweep for due unless it runs before then already. */
static void
sweep_arm(struct server *server, uint64_t due)
{
    uint64_t now;
    int rc;

    if (!server->sweep_init || (server->sweep_due != 0 && server->sweep_due <= due))
        return;
    now = uv_now(server->agent->loop);
    if (due < now)
        due = now;
    if ((rc = uv_timer_start(&server->sweep, on_sweep, due - now, 0)) != 0) {
        log_error("cannot start the IPC deadline timer: %s", uv_strerror(rc));
        return;
    }
    server->sweep_due = due;
}

static void
client_arm(struct client *client)
{
    enum deadline kind;
    uint64_t due = client_deadline(client, &kind);

    if (due != 0)
        sweep_arm(client->server, due);
}

/* Drops a client whose deadline passed, with a log line that names the setting. */
static void
expire(struct client *c, enum deadline kind)
{
    const struct config *cfg = &c->server->agent->config;

    switch (kind) {
    case DEADLINE_FRAME:
        log_warn("client %llu (%s, pid %ld) did not complete a frame within %d s "
                 "(ipc_frame_timeout; %zu bytes of it received); dropping it",
                 (unsigned long long)c->number, c->peer.name, c->peer.pid, cfg->ipc_frame_timeout,
                 proto_reader_pending(&c->reader));
        c->frame_started = 0;
        server_send_error(c, 0, E_PROTO,
                          "the frame was not completed in time (ipc_frame_timeout)");
        server_drop(c, "frame timeout");
        break;
    case DEADLINE_HELLO:
        log_warn("client %llu (%s, pid %ld) did not say hello within %d s (ipc_hello_timeout); "
                 "dropping it",
                 (unsigned long long)c->number, c->peer.name, c->peer.pid, cfg->ipc_hello_timeout);
        server_send_error(c, 0, E_PROTO, "no hello in time (ipc_hello_timeout)");
        server_drop(c, "hello timeout");
        break;
    case DEADLINE_IDLE:
        log_info("client %llu (%s, pid %ld) was idle for %d s (ipc_idle_timeout); closing it",
                 (unsigned long long)c->number, c->peer.name, c->peer.pid, cfg->ipc_idle_timeout);
        server_drop(c, "idle timeout");
        break;
    case DEADLINE_NONE:
        break;
    }
}

/*
 * At the earliest deadline of all clients: drops those due (a slowloris peer,
 * a peer that never says hello, an idle one would otherwise hold a slot and
 * its buffer forever) and arms itself for the next.  Not armed when no client
 * has a deadline, so an idle agent sleeps.
 */
static void
on_sweep(uv_timer_t *timer)
{
    struct server *server = timer->data;
    uint64_t now = uv_now(timer->loop), next = 0, due;
    enum deadline kind;

    server->sweep_due = 0;
    for (struct client *c = server->clients; c != NULL; c = c->next) {
        if ((due = client_deadline(c, &kind)) == 0)
            continue;
        if (due <= now + SERVER_SWEEP_SLACK_MS)
            expire(c, kind);
        else if (next == 0 || due < next)
            next = due;
    }
    if (next != 0)
        sweep_arm(server, next);
}

/* Notes when the client's partial frame began; completed says a frame ended in this read. */
static void
frame_progress(struct client *client, int completed)
{
    if (client->closing || proto_reader_pending(&client->reader) == 0) {
        client->frame_started = 0;
        return;
    }
    if (client->frame_started != 0 && !completed)
        return;
    client->frame_started = uv_now(client->server->agent->loop);
}

/*
 * May the client change the store?  Looked up once, when a limit makes it
 * matter: the group database (getgrouplist, maybe over the network) is not
 * asked on the loop for every connection.
 */
static int
client_privileged(struct client *c)
{
    if (c->privileged < 0)
        c->privileged =
            platform_peer_has_right(&c->peer, PEER_RIGHT_CHANGE, c->server->socket_gid, -1);
    return c->privileged;
}

/* Is a a better victim than b when partial frames take too much memory? */
static int
partial_victim_before(struct client *a, struct client *b)
{
    if (client_privileged(a) != client_privileged(b))
        return !client_privileged(a);
    if (a->frame_started != b->frame_started)
        return a->frame_started < b->frame_started;
    return a->partial_held > b->partial_held;
}

/*
 * Counts the client's partial frame in the total of all clients and, past
 * ipc_partial_limit_mib, drops clients until the total fits: first those who
 * may not change the store, the oldest partial frame first (a slow sender
 * holds one long; a legitimate client completes its frame as fast as it
 * writes), then the largest.
 */
static void
partial_bound(struct client *client)
{
    struct server *server = client->server;
    size_t held = client->closing ? 0 : proto_reader_pending(&client->reader);
    size_t limit = (size_t)server->agent->config.ipc_partial_limit_mib * 1024u * 1024u;
    uint64_t now = uv_now(server->agent->loop);

    server->partial_bytes = server->partial_bytes - client->partial_held + held;
    client->partial_held = held;
    while (server->partial_bytes > limit) {
        struct client *victim = NULL;

        for (struct client *c = server->clients; c != NULL; c = c->next) {
            if (!c->closing && c->partial_held > 0 &&
                (victim == NULL || partial_victim_before(c, victim)))
                victim = c;
        }
        if (victim == NULL)
            break;
        log_warn("client %llu (%s, pid %ld) dropped: the incomplete frames of all clients hold "
                 "%zu bytes, over ipc_partial_limit_mib (%d MiB); its own, %zu bytes begun "
                 "%llu ms ago, is the oldest",
                 (unsigned long long)victim->number, victim->peer.name, victim->peer.pid,
                 server->partial_bytes, server->agent->config.ipc_partial_limit_mib,
                 victim->partial_held, (unsigned long long)(now - victim->frame_started));
        server_send_error(victim, 0, E_UNAVAILABLE,
                          "the agent holds too many incomplete frames; try again later");
        server_drop(victim, "incomplete frames over ipc_partial_limit_mib");
    }
}

static void
on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct client *client = stream->data;
    struct proto_msg msg;
    char *cause = NULL;
    int rc, completed = 0;

    if (nread < 0) {
        if (nread != UV_EOF && proto_reader_pending(&client->reader) > 0)
            log_debug("client %llu: read error: %s", (unsigned long long)client->number,
                      uv_strerror((int)nread));
        else if (proto_reader_pending(&client->reader) > 0)
            log_info("client %llu (%s, pid %ld) disconnected in the middle of a frame",
                     (unsigned long long)client->number, client->peer.name, client->peer.pid);
        client_close(client);
        return;
    }
    if (nread == 0)
        return;
    rc = proto_reader_feed(&client->reader, buf->base, (size_t)nread);
    OPENSSL_cleanse(buf->base, (size_t)nread);
    if (rc != 0) {
        server_drop(client, "out of memory");
        return;
    }
    /* Keep the client alive while its requests run: a reply may drop it. */
    server_client_ref(client);
    while (!client->closing && (rc = proto_reader_next(&client->reader, &msg, &cause)) != 0) {
        if (rc < 0) {
            log_warn("client %llu (%s, pid %ld) sent a bad frame: %s; dropping it",
                     (unsigned long long)client->number, client->peer.name, client->peer.pid,
                     cause != NULL ? cause : err_message(rc));
            server_send_error(client, 0, rc, cause);
            server_drop(client, "bad frame");
            break;
        }
        client->server->requests++;
        completed = 1;
        if (client->pending_write > SERVER_MAX_PENDING_WRITE) {
            proto_msg_free(&msg);
            drop_not_reading(client);
            break;
        }
        /* The reply to this request may be large (status, list): it is not capped. */
        client->in_request = 1;
        ops_dispatch(client, &msg.root);
        client->in_request = 0;
        proto_msg_free(&msg);
    }
    frame_progress(client, completed);
    partial_bound(client);
    free(cause);
    /* Arms the client's next deadline (its frame, hello or idle time). */
    server_client_unref(client);
}

/*
 * Refuses the client with E_UNAVAILABLE.  The log line (why) is written at
 * most once a second, with the number refused in between: a peer that
 * connects in a loop cannot flood the log.
 */
static void
refuse(struct client *client, const char *why, const char *message)
{
    struct server *server = client->server;
    uint64_t now = uv_now(server->agent->loop);

    if (server->refused_logged_at == 0 || now - server->refused_logged_at >= 1000) {
        if (server->refused_unlogged > 0)
            log_warn("refusing connection from %s (pid %ld): %s (and %lu more refused since "
                     "the last such line)",
                     client->peer.name, client->peer.pid, why, server->refused_unlogged);
        else
            log_warn("refusing connection from %s (pid %ld): %s", client->peer.name,
                     client->peer.pid, why);
        server->refused_logged_at = now;
        server->refused_unlogged = 0;
    } else {
        server->refused_unlogged++;
    }
    server_send_error(client, 0, E_UNAVAILABLE, message);
    server_drop(client, "refused");
}

/*
 * May this new client be served?  At most max_connections clients; of those,
 * reserved_connections slots (at most half) are for peers who may change the
 * store, and a peer who may not holds at most max_connections_per_uid: other
 * users' idle connections cannot lock root out.  Only live clients count, the
 * new one included: a client being closed (refused, dropped, gone) holds no
 * slot, or a burst of refused connections still flushing their refusal would
 * lock root out of its reserve.  Refuses it and returns 0 when not.
 */
static int
admit(struct server *server, struct client *client)
{
    const struct config *cfg = &server->agent->config;
    size_t max = (size_t)cfg->max_connections;
    size_t reserve = (size_t)cfg->reserved_connections, same_uid = 0, live = 0;
    char why[160];

    if (reserve > max / 2)
        reserve = max / 2;
    for (struct client *c = server->clients; c != NULL; c = c->next) {
        if (c->closing)
            continue;
        live++;
        same_uid += c->peer.uid == client->peer.uid;
    }
    if (live > max) {
        snprintf(why, sizeof(why), "%zu clients already (max_connections)", live - 1);
        refuse(client, why, "the agent serves too many connections; try again later");
        return 0;
    }
    if (live > max - reserve && !client_privileged(client)) {
        snprintf(why, sizeof(why),
                 "%zu clients already; the %zu slots left are reserved for users who may "
                 "change the store (reserved_connections)",
                 live - 1, max - live + 1);
        refuse(client, why, "the agent serves too many connections; try again later");
        return 0;
    }
    if (same_uid > (size_t)cfg->max_connections_per_uid && !client_privileged(client)) {
        snprintf(why, sizeof(why),
                 "%zu connections of this user already (max_connections_per_uid)", same_uid - 1);
        refuse(client, why,
               "too many connections from this user (max_connections_per_uid); close some and "
               "try again");
        return 0;
    }
    return 1;
}

static void
on_connection(uv_stream_t *listener, int status)
{
    struct server *server = listener->data;
    struct client *client;
    int rc;

    if (status < 0) {
        log_warn("accept failed: %s", uv_strerror(status));
        return;
    }
    if ((client = calloc(1, sizeof(*client))) == NULL) {
        log_error("out of memory accepting a connection");
        return;
    }
    client->server = server;
    client->refs = 1;
    client->number = ++server->next_number;
    proto_reader_init(&client->reader);
    if ((rc = uv_pipe_init(listener->loop, &client->pipe, 0)) != 0) {
        log_error("cannot accept a connection: %s", uv_strerror(rc));
        client_free(client);
        return;
    }
    client->pipe.data = client;
    client->next = server->clients;
    if (server->clients != NULL)
        server->clients->prev = client;
    server->clients = client;
    server->nclients++;
    if ((rc = uv_accept(listener, (uv_stream_t *)&client->pipe)) != 0) {
        log_warn("accept failed: %s", uv_strerror(rc));
        client_close(client);
        return;
    }
    if (server->agent->stopping) {
        client_close(client);
        return;
    }
    platform_peer_get(&client->pipe, &client->peer);
    client->privileged = -1; /* looked up when a limit makes it matter */
    if (!admit(server, client))
        return;
    if ((rc = uv_read_start((uv_stream_t *)&client->pipe, on_alloc, on_read)) != 0) {
        log_warn("cannot read from client: %s", uv_strerror(rc));
        client_close(client);
        return;
    }
    client->connected_at = client->last_active = uv_now(listener->loop);
    client_arm(client);
}

int
server_start(struct server *server, struct agent *agent, const char *path, char **cause)
{
    int rc, stale = 0;

    memset(server, 0, sizeof(*server));
    server->agent = agent;
    server->socket_gid = -1;
    if ((server->path = strdup(path)) == NULL)
        return -E_NOMEM;
    if ((rc = platform_socket_prepare(path, &stale, cause)) != 0)
        goto fail;
    if (stale)
        log_info("removed stale socket %s left by an agent that did not stop cleanly", path);
    if ((rc = uv_pipe_init(agent->loop, &server->listener, 0)) != 0) {
        err_set(cause, "cannot create the IPC listener: %s", uv_strerror(rc));
        rc = -E_IO;
        goto fail;
    }
    server->listener.data = server;
    if ((rc = platform_socket_bind(&server->listener, path)) != 0) {
        err_set(cause, "cannot listen on %s: %s", path, uv_strerror(rc));
        uv_close((uv_handle_t *)&server->listener, NULL);
        rc = rc == UV_EADDRINUSE ? -E_BUSY : -E_IO;
        goto fail;
    }
    server->listening = 1;
    if ((rc = uv_timer_init(agent->loop, &server->sweep)) != 0) {
        err_set(cause, "cannot create the IPC deadline timer: %s", uv_strerror(rc));
        rc = -E_INTERNAL;
        goto fail_close;
    }
    server->sweep.data = server;
    server->sweep_init = 1;
    if ((rc = platform_socket_secure(&server->listener, path, agent->config.socket_group,
                                     agent->config.socket_mode, &server->socket_gid, cause)) != 0)
        goto fail_close;
    if ((rc = uv_listen((uv_stream_t *)&server->listener, 511, on_connection)) != 0) {
        err_set(cause, "cannot listen on %s: %s", path, uv_strerror(rc));
        rc = -E_IO;
        goto fail_close;
    }
    return 0;
fail_close:
    server_stop(server);
    return rc;
fail:
    free(server->path);
    server->path = NULL;
    return rc;
}

void
server_stop(struct server *server)
{
    if (server->listening) {
        uv_close((uv_handle_t *)&server->listener, NULL);
        platform_socket_remove(server->path);
        server->listening = 0;
    }
    if (server->sweep_init) {
        uv_timer_stop(&server->sweep);
        uv_close((uv_handle_t *)&server->sweep, NULL);
        server->sweep_init = 0;
        server->sweep_due = 0;
    }
    for (struct client *c = server->clients; c != NULL; c = c->next)
        client_close(c);
    free(server->path);
    server->path = NULL;
}
