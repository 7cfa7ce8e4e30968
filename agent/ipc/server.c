#include "server.h"

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
    size_t len;
};

/* One read buffer for the whole loop: reads are consumed before the next one. */
static char read_buffer[64 * 1024];

static void client_close(struct client *client);

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

void
server_client_unref(struct client *client)
{
    if (client != NULL && --client->refs == 0)
        client_free(client);
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
    free(wr->data);
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
    uv_buf_t buf;
    int n;

    if (client->closing) {
        free(data);
        return;
    }
    /* Fast path: the socket takes it all now, no request needed. */
    if (client->pending_write == 0) {
        buf = uv_buf_init(data, (unsigned)len);
        n = uv_try_write((uv_stream_t *)&client->pipe, &buf, 1);
        if (n == (int)len) {
            free(data);
            return;
        }
        if (n > 0) {
            memmove(data, data + n, len - (size_t)n);
            len -= (size_t)n;
        } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
            free(data);
            server_drop(client, uv_strerror(n));
            return;
        }
    }
    if (!client->in_request && client->pending_write + len > SERVER_MAX_PENDING_WRITE) {
        free(data);
        drop_not_reading(client);
        return;
    }
    if ((wr = malloc(sizeof(*wr))) == NULL) {
        free(data);
        server_drop(client, "out of memory");
        return;
    }
    wr->client = client;
    wr->data = data;
    wr->len = len;
    buf = uv_buf_init(data, (unsigned)len);
    if ((n = uv_write(&wr->req, (uv_stream_t *)&client->pipe, &buf, 1, on_write)) != 0) {
        free(data);
        free(wr);
        server_drop(client, uv_strerror(n));
        return;
    }
    client->pending_write += len;
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

/*
 * Every SERVER_FRAME_SWEEP_MS while some client has a partial frame: drops the
 * clients that began a frame more than ipc_frame_timeout seconds ago (a
 * slowloris peer would otherwise hold a connection and its buffer forever).
 * Stops itself when no client has a partial frame, so an idle agent sleeps.
 */
static void
on_frame_sweep(uv_timer_t *timer)
{
    struct server *server = timer->data;
    uint64_t now = uv_now(timer->loop);
    uint64_t limit = (uint64_t)server->agent->config.ipc_frame_timeout * 1000u;
    int partial = 0;

    for (struct client *c = server->clients; c != NULL; c = c->next) {
        if (c->closing || c->frame_started == 0)
            continue;
        if (now - c->frame_started < limit) {
            partial = 1;
            continue;
        }
        log_warn("client %llu (%s, pid %ld) did not complete a frame within %d s "
                 "(ipc_frame_timeout; %zu bytes of it received); dropping it",
                 (unsigned long long)c->number, c->peer.name, c->peer.pid,
                 server->agent->config.ipc_frame_timeout, proto_reader_pending(&c->reader));
        c->frame_started = 0;
        server_send_error(c, 0, E_PROTO,
                          "the frame was not completed in time (ipc_frame_timeout)");
        server_drop(c, "frame timeout");
    }
    if (!partial)
        uv_timer_stop(timer);
}

/* Notes when the client's partial frame began; completed says a frame ended in this read. */
static void
frame_progress(struct client *client, int completed)
{
    struct server *server = client->server;
    uv_loop_t *loop = server->agent->loop;
    int rc;

    if (client->closing || proto_reader_pending(&client->reader) == 0) {
        client->frame_started = 0;
        return;
    }
    if (client->frame_started != 0 && !completed)
        return;
    client->frame_started = uv_now(loop);
    if (server->frame_sweep_init && !uv_is_active((uv_handle_t *)&server->frame_sweep) &&
        (rc = uv_timer_start(&server->frame_sweep, on_frame_sweep, SERVER_FRAME_SWEEP_MS,
                             SERVER_FRAME_SWEEP_MS)) != 0)
        log_error("cannot start the IPC frame timer: %s", uv_strerror(rc));
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
    if (proto_reader_feed(&client->reader, buf->base, (size_t)nread) != 0) {
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
    free(cause);
    server_client_unref(client);
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
    if (server->nclients > (size_t)server->agent->config.max_connections) {
        log_warn("refusing connection from %s (pid %ld): %zu clients already (max_connections)",
                 client->peer.name, client->peer.pid, server->nclients - 1);
        server_send_error(client, 0, E_UNAVAILABLE,
                          "the agent serves too many connections; try again later");
        server_drop(client, "too many connections");
        return;
    }
    if ((rc = uv_read_start((uv_stream_t *)&client->pipe, on_alloc, on_read)) != 0) {
        log_warn("cannot read from client: %s", uv_strerror(rc));
        client_close(client);
    }
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
    if ((rc = uv_timer_init(agent->loop, &server->frame_sweep)) != 0) {
        err_set(cause, "cannot create the IPC frame timer: %s", uv_strerror(rc));
        rc = -E_INTERNAL;
        goto fail_close;
    }
    server->frame_sweep.data = server;
    server->frame_sweep_init = 1;
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
    if (server->frame_sweep_init) {
        uv_timer_stop(&server->frame_sweep);
        uv_close((uv_handle_t *)&server->frame_sweep, NULL);
        server->frame_sweep_init = 0;
    }
    for (struct client *c = server->clients; c != NULL; c = c->next)
        client_close(c);
    free(server->path);
    server->path = NULL;
}
