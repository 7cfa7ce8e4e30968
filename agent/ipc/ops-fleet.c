/*
 * The fleet's ops: fleet_status (certctl fleet status and fleet nodes), the
 * nodes of the fleet and its certificates by node, read from etcd by the
 * fleet's view (fleet/view.c) and answered when etcd has; fleet_forget
 * (certctl fleet forget NODE), a node that is gone taken off the view.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "agent.h"
#include "err.h"
#include "fleet.h"
#include "ops.h"
#include "server.h"
#include "view.h"

struct fleet_req {
    struct client *client;
    uint64_t id;
};

static void
on_view(void *arg, int rc, const char *cause, const cJSON *doc)
{
    struct fleet_req *f = arg;
    struct proto_writer w;
    const cJSON *it;
    size_t n = 0;

    if (server_client_alive(f->client)) {
        if (rc != 0) {
            server_send_error(f->client, f->id, rc,
                              cause != NULL ? cause : "the fleet's etcd did not answer");
        } else {
            cJSON_ArrayForEach(it, doc) n++;
            proto_writer_init(&w);
            proto_begin_result(&w.pk, f->id, n);
            cJSON_ArrayForEach(it, doc)
            {
                proto_pack_str(&w.pk, it->string);
                proto_pack_json(&w.pk, it);
            }
            server_send_writer(f->client, f->id, &w);
        }
    }
    server_client_unref(f->client);
    free(f);
}

int
ops_fleet_status(struct request *req)
{
    struct fleet_req *f;
    int rc;

    if ((f = calloc(1, sizeof(*f))) == NULL)
        return -E_NOMEM;
    f->client = req->client;
    f->id = req->id;
    server_client_ref(req->client);
    if ((rc = view_query(fleet_view(req->agent->fleet), on_view, f, &req->cause)) != 0) {
        server_client_unref(req->client);
        free(f);
    }
    return rc;
}

static void
on_forgotten(void *arg, int rc, const char *cause)
{
    struct fleet_req *f = arg;
    struct proto_writer w;

    if (server_client_alive(f->client)) {
        if (rc != 0) {
            server_send_error(f->client, f->id, rc, cause != NULL ? cause : err_message(rc));
        } else {
            proto_writer_init(&w);
            proto_begin_result(&w.pk, f->id, 0);
            server_send_writer(f->client, f->id, &w);
        }
    }
    server_client_unref(f->client);
    free(f);
}

int
ops_fleet_forget(struct request *req)
{
    struct fleet_req *f;
    char *node = NULL;
    int rc;

    if ((rc = ops_arg_str(req, "node", 1, &node)) != 0)
        return rc;
    if ((f = calloc(1, sizeof(*f))) == NULL) {
        free(node);
        return -E_NOMEM;
    }
    f->client = req->client;
    f->id = req->id;
    server_client_ref(req->client);
    if ((rc = view_forget(fleet_view(req->agent->fleet), node, on_forgotten, f, &req->cause)) !=
        0) {
        server_client_unref(req->client);
        free(f);
    }
    free(node);
    return rc;
}
