/*
 * The staging canaries' ops (renew/canary.c): canary_status, every configured
 * canary's last result; canary_run [ca], run them now, with progress, and
 * answer their results once all have ended.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "canary.h"
#include "err.h"
#include "ops.h"
#include "server.h"

struct canary_req {
    struct agent *agent;
    struct client *client;
    uint64_t id;
    char *ca;
};

/* Sends doc's members as the reply's map. */
static void
send_doc(struct client *client, uint64_t id, const cJSON *doc)
{
    struct proto_writer w;
    const cJSON *it;
    size_t n = 0;

    cJSON_ArrayForEach(it, doc) n++;
    proto_writer_init(&w);
    proto_begin_result(&w.pk, id, n);
    cJSON_ArrayForEach(it, doc)
    {
        proto_pack_str(&w.pk, it->string);
        proto_pack_json(&w.pk, it);
    }
    server_send_writer(client, id, &w);
}

/* The canaries of a reply: all, or the one of ca. */
static cJSON *
status_doc(struct agent *agent, const char *ca)
{
    cJSON *doc = canary_status_json(agent->canary), *list, *it, *next;

    list = cJSON_GetObjectItemCaseSensitive(doc, "canaries");
    for (it = list != NULL ? list->child : NULL; ca != NULL && it != NULL; it = next) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "ca");

        next = it->next;
        if (!cJSON_IsString(c) || strcmp(c->valuestring, ca) != 0)
            cJSON_Delete(cJSON_DetachItemViaPointer(list, it));
    }
    return doc;
}

static void
on_progress(void *arg, const char *words)
{
    struct canary_req *r = arg;

    if (server_client_alive(r->client))
        ops_progress(r->client, r->id, words, 0, 0);
}

static void
on_done(void *arg)
{
    struct canary_req *r = arg;

    if (server_client_alive(r->client)) {
        cJSON *doc = status_doc(r->agent, r->ca);

        if (doc != NULL)
            send_doc(r->client, r->id, doc);
        else
            server_send_error(r->client, r->id, -E_NOMEM, "out of memory");
        cJSON_Delete(doc);
    }
    server_client_unref(r->client);
    free(r->ca);
    free(r);
}

int
ops_canary_run(struct request *req)
{
    struct canary_req *r;
    char *ca = NULL;
    int rc;

    if ((rc = ops_arg_str(req, "ca", 0, &ca)) != 0)
        return rc;
    if ((r = calloc(1, sizeof(*r))) == NULL) {
        free(ca);
        return -E_NOMEM;
    }
    r->agent = req->agent;
    r->client = req->client;
    r->id = req->id;
    r->ca = ca;
    server_client_ref(req->client);
    if ((rc = canary_run(req->agent->canary, ca, on_progress, on_done, r, &req->cause)) != 0) {
        server_client_unref(req->client);
        free(r->ca);
        free(r);
    }
    return rc;
}

int
ops_canary_status(struct request *req)
{
    cJSON *doc = status_doc(req->agent, NULL);

    if (doc == NULL)
        return -E_NOMEM;
    send_doc(req->client, req->id, doc);
    cJSON_Delete(doc);
    return 0;
}
