/*
 * The alert ops (notify/notify.c): notify test (a test message through each
 * channel, answered when every channel has answered), notify status (the
 * spool and the channels), ack (stop the reminders of an open problem),
 * report_send (certctl report --send: the status report by e-mail now).
 */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "err.h"
#include "log.h"
#include "notify.h"
#include "ops.h"
#include "server.h"

struct test_req {
    struct client *client;
    uint64_t id;
};

static void
on_test(void *arg, const struct notify_test_result *r, size_t n)
{
    struct test_req *t = arg;
    struct proto_writer w;
    size_t failed = 0;

    if (server_client_alive(t->client)) {
        proto_writer_init(&w);
        proto_begin_result(&w.pk, t->id, 2);
        proto_pack_str(&w.pk, "results");
        msgpack_pack_array(&w.pk, n);
        for (size_t i = 0; i < n; i++) {
            failed += r[i].rc != 0;
            msgpack_pack_map(&w.pk, 4);
            proto_pack_kv_str(&w.pk, "channel", r[i].channel);
            proto_pack_kv_bool(&w.pk, "ok", r[i].rc == 0);
            if (r[i].reply != NULL)
                proto_pack_kv_str(&w.pk, "reply", r[i].reply);
            else
                proto_pack_kv_nil(&w.pk, "reply");
            if (r[i].error != NULL)
                proto_pack_kv_str(&w.pk, "error", r[i].error);
            else
                proto_pack_kv_nil(&w.pk, "error");
        }
        proto_pack_kv_uint(&w.pk, "failed", failed);
        server_send_writer(t->client, t->id, &w);
    }
    server_client_unref(t->client);
    free(t);
}

int
ops_notify_test(struct request *req)
{
    struct test_req *t;
    char *channel = NULL;
    int rc;

    if ((rc = ops_arg_str(req, "channel", 0, &channel)) != 0)
        return rc;
    if (channel != NULL && strcmp(channel, "email") != 0 && strcmp(channel, "webhook") != 0) {
        err_set(&req->cause, "--channel: '%s' is not email or webhook", channel);
        free(channel);
        return -E_BAD_INPUT;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        free(channel);
        return -E_NOMEM;
    }
    t->client = req->client;
    t->id = req->id;
    server_client_ref(req->client);
    if ((rc = notify_test(req->agent->notify, channel, on_test, t, &req->cause)) != 0) {
        server_client_unref(req->client);
        free(t);
    }
    free(channel);
    return rc;
}

int
ops_notify_status(struct request *req)
{
    struct proto_writer w;

    proto_writer_init(&w);
    proto_begin_result(&w.pk, req->id, NOTIFY_STATUS_FIELDS);
    notify_pack_status(req->agent->notify, &w.pk);
    server_send_writer(req->client, req->id, &w);
    return 0;
}

int
ops_ack(struct request *req)
{
    struct proto_writer w;
    char *name = NULL, *code = NULL;
    int rc;

    if ((rc = ops_arg_str(req, "name", 1, &name)) != 0 ||
        (rc = ops_arg_str(req, "code", 0, &code)) != 0 ||
        (rc = notify_ack(req->agent->notify, name, code, &req->cause)) != 0)
        goto out;
    proto_writer_init(&w);
    proto_begin_result(&w.pk, req->id, 2);
    proto_pack_kv_str(&w.pk, "name", name);
    if (code != NULL)
        proto_pack_kv_str(&w.pk, "code", code);
    else
        proto_pack_kv_nil(&w.pk, "code");
    server_send_writer(req->client, req->id, &w);
out:
    free(name);
    free(code);
    return rc;
}

int
ops_report_send(struct request *req)
{
    struct proto_writer w;
    char subject[512];
    int rc;

    if ((rc = notify_send_report(req->agent->notify, subject, sizeof(subject), &req->cause)) != 0)
        return rc;
    proto_writer_init(&w);
    proto_begin_result(&w.pk, req->id, 2);
    proto_pack_kv_str(&w.pk, "subject", subject);
    proto_pack_kv_bool(&w.pk, "spooled", 1);
    server_send_writer(req->client, req->id, &w);
    return 0;
}
