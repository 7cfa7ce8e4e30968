#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <unistd.h>

#include "endpoint.h"
#include "err.h"
#include "version.h"

struct connect_state {
    uv_connect_t req;
    int status;
    int done;
};

struct write_state {
    uv_write_t req;
    int status;
    int done;
};

static char read_buf[64 * 1024];

static void
on_connect(uv_connect_t *req, int status)
{
    struct connect_state *st = (struct connect_state *)req;

    st->status = status;
    st->done = 1;
}

static void
on_write(uv_write_t *req, int status)
{
    struct write_state *st = (struct write_state *)req;

    st->status = status;
    st->done = 1;
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct client *c = s->data;

    if (n < 0) {
        if (n == UV_EOF)
            c->eof = 1;
        else
            c->io_error = (int)n;
        uv_read_stop(s);
        return;
    }
    if (n > 0 && proto_reader_feed(&c->reader, buf->base, (size_t)n) != 0)
        c->io_error = UV_ENOMEM;
    uv_read_stop(s); /* hand control back to the caller after each read */
}

/* Next frame from the agent; 0 ok, negative on EOF/error. */
static int
next_msg(struct client *c, struct proto_msg *msg, char **cause)
{
    for (;;) {
        int rc = proto_reader_next(&c->reader, msg, cause);

        if (rc == 1)
            return 0;
        if (rc < 0)
            return rc;
        if (c->eof) {
            err_set(cause, "the agent closed the connection");
            return -E_IO;
        }
        if (c->io_error) {
            err_set(cause, "reading from the agent: %s", uv_strerror(c->io_error));
            return -E_IO;
        }
        if ((rc = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read)) != 0) {
            err_set(cause, "reading from the agent: %s", uv_strerror(rc));
            return -E_IO;
        }
        uv_run(&c->loop, UV_RUN_ONCE);
    }
}

static int
send_all(struct client *c, char *data, size_t len, char **cause)
{
    struct write_state st;
    uv_buf_t buf = uv_buf_init(data, (unsigned)len);
    int rc;

    memset(&st, 0, sizeof(st));
    if ((rc = uv_write(&st.req, (uv_stream_t *)&c->pipe, &buf, 1, on_write)) != 0) {
        err_set(cause, "writing to the agent: %s", uv_strerror(rc));
        return -E_IO;
    }
    while (!st.done)
        uv_run(&c->loop, UV_RUN_ONCE);
    if (st.status != 0) {
        err_set(cause, "writing to the agent: %s", uv_strerror(st.status));
        return -E_IO;
    }
    return 0;
}

void
client_request_begin(struct client *c, struct proto_writer *w, enum proto_op op, size_t nargs)
{
    proto_writer_init(w);
    msgpack_pack_map(&w->pk, 3);
    proto_pack_kv_uint(&w->pk, "id", ++c->next_id);
    proto_pack_kv_str(&w->pk, "op", proto_op_name(op));
    proto_pack_str(&w->pk, "args");
    msgpack_pack_map(&w->pk, nargs);
}

static char *
json_strdup(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

static void
render_progress(struct client *c, const msgpack_object *m)
{
    char *text = NULL;
    uint64_t done = 0, total = 0;

    if (c->json_progress) {
        cJSON *j = proto_to_json(m);
        char *s;

        if (j != NULL) {
            cJSON_DeleteItemFromObject(j, "id");
            /* On stderr: stdout holds the run's one JSON object (the result). */
            if ((s = cJSON_PrintUnformatted(j)) != NULL) {
                fprintf(stderr, "%s\n", s);
                fflush(stderr);
            }
            free(s);
            cJSON_Delete(j);
        }
        return;
    }
    if (!c->show_progress)
        return;
    proto_get_strdup(m, "message", &text);
    proto_get_uint(m, "done", &done);
    proto_get_uint(m, "total", &total);
    if (total > 1)
        fprintf(stderr, "certctl: %s (%llu/%llu)\n", text ? text : "working",
                (unsigned long long)done, (unsigned long long)total);
    else
        fprintf(stderr, "certctl: %s...\n", text ? text : "working");
    free(text);
}

int
client_request_finish(struct client *c, struct proto_writer *w, struct reply *reply, char **cause)
{
    uint64_t id = c->next_id, got;
    char *data = NULL, *send_cause = NULL;
    size_t len = 0;
    int rc, send_rc;

    memset(reply, 0, sizeof(*reply));
    rc = proto_writer_finish(w, &data, &len);
    if (rc != 0 && w->sbuf.data != NULL)
        OPENSSL_cleanse(w->sbuf.data, w->sbuf.size);
    proto_writer_destroy(w);
    if (rc != 0) {
        err_set(cause, rc == -E_TOO_BIG ? "the request exceeds the 1 MiB frame limit (are the "
                                          "files too large?)"
                                        : "cannot build the request");
        return rc;
    }
    send_rc = send_all(c, data, len, &send_cause);
    /* Requests carry secrets (PFX passwords, keys): none stays in freed memory. */
    OPENSSL_cleanse(data, len);
    free(data);
    for (;;) {
        struct proto_msg msg;
        const msgpack_object *o;
        int ok = 0;

        /* An agent that refused us (id 0, below) may have closed before we wrote: its
         * refusal is still there to read, and says more than the failed write. */
        if ((rc = next_msg(c, &msg, send_rc != 0 ? NULL : cause)) != 0) {
            if (send_rc != 0) {
                *cause = send_cause;
                return send_rc;
            }
            return rc;
        }
        proto_get_bool(&msg.root, "ok", &ok);
        /* Id 0: the agent refuses the connection itself (too many connections, no hello). */
        if (proto_get_uint(&msg.root, "id", &got) != 0 ||
            (got != id && (got != 0 || ok || proto_get(&msg.root, "event") != NULL)) ||
            (send_rc != 0 && got != 0)) {
            proto_msg_free(&msg);
            continue;
        }
        free(send_cause);
        send_cause = NULL;
        if ((o = proto_get(&msg.root, "event")) != NULL) {
            if (proto_str_eq(o, "progress")) {
                render_progress(c, &msg.root);
            } else if (proto_str_eq(o, "items")) {
                const msgpack_object *items = proto_get(&msg.root, "items");
                cJSON *arr = items != NULL ? proto_to_json(items) : NULL;
                cJSON *it, *next;

                if (c->on_items != NULL) {
                    if (arr != NULL)
                        c->on_items(c->on_items_arg, arr);
                    cJSON_Delete(arr);
                    proto_msg_free(&msg);
                    continue;
                }
                if (reply->items == NULL)
                    reply->items = cJSON_CreateArray();
                for (it = arr != NULL ? arr->child : NULL; it != NULL; it = next) {
                    next = it->next;
                    cJSON_AddItemToArray(reply->items, cJSON_DetachItemViaPointer(arr, it));
                }
                cJSON_Delete(arr);
            }
            proto_msg_free(&msg);
            continue;
        }
        reply->ok = ok;
        if (ok) {
            o = proto_get(&msg.root, "result");
            reply->result = o != NULL ? proto_to_json(o) : cJSON_CreateObject();
        } else {
            o = proto_get(&msg.root, "error");
            cJSON *err = o != NULL ? proto_to_json(o) : NULL;

            reply->code = err ? json_strdup(err, "code") : NULL;
            reply->message = err ? json_strdup(err, "message") : NULL;
            reply->detail = err ? json_strdup(err, "detail") : NULL;
            cJSON_Delete(err);
            if (reply->code == NULL)
                reply->code = strdup("E_PROTO");
        }
        proto_msg_free(&msg);
        return 0;
    }
}

void
reply_free(struct reply *r)
{
    cJSON_Delete(r->result);
    cJSON_Delete(r->items);
    free(r->code);
    free(r->message);
    free(r->detail);
    memset(r, 0, sizeof(*r));
}

int
client_open(struct client *c, const char *path, char **cause)
{
    struct connect_state st;
    struct proto_writer w;
    struct reply reply;
    int rc;

    memset(c, 0, sizeof(*c));
    proto_reader_init(&c->reader);
    if ((rc = uv_loop_init(&c->loop)) != 0) {
        err_set(cause, "cannot start: %s", uv_strerror(rc));
        return -E_INTERNAL;
    }
    if ((rc = uv_pipe_init(&c->loop, &c->pipe, 0)) != 0) {
        uv_loop_close(&c->loop);
        err_set(cause, "cannot start: %s", uv_strerror(rc));
        return -E_INTERNAL;
    }
    c->pipe.data = c;
    c->open = 1;
    /* Nothing is sent before certctl knows the other end is the agent. */
    endpoint_init();
    if ((rc = endpoint_check_path(path, cause)) != 0)
        return rc;
    memset(&st, 0, sizeof(st));
    uv_pipe_connect(&st.req, &c->pipe, path, on_connect);
    while (!st.done)
        uv_run(&c->loop, UV_RUN_ONCE);
    if (st.status != 0) {
        err_set(cause, "%s", uv_strerror(st.status));
        return -E_UNAVAILABLE;
    }
    if ((rc = endpoint_check_server(&c->pipe, cause)) != 0)
        return rc;
    client_request_begin(c, &w, PROTO_OP_HELLO, 2);
    proto_pack_kv_uint(&w.pk, "proto", PROTO_VERSION);
    proto_pack_kv_str(&w.pk, "client", "certctl " CERTAGENT_VERSION);
    if ((rc = client_request_finish(c, &w, &reply, cause)) != 0)
        return rc == -E_IO ? -E_UNAVAILABLE : rc;
    if (!reply.ok) {
        err_set(cause, "%s", reply.message ? reply.message : "the agent refused hello");
        rc = reply.code != NULL && strcmp(reply.code, "E_VERSION") == 0 ? -E_VERSION : -E_PROTO;
        reply_free(&reply);
        return rc;
    }
    c->agent_version = json_strdup(reply.result, "agent");
    reply_free(&reply);
    return 0;
}

static void
on_close(uv_handle_t *h)
{
    (void)h;
}

void
client_close(struct client *c)
{
    if (!c->open)
        return;
    uv_close((uv_handle_t *)&c->pipe, on_close);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    proto_reader_destroy(&c->reader);
    free(c->agent_version);
    c->open = 0;
}
