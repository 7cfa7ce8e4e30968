/*
 * Handlers of the settings and deploy ops: `set` changes a certificate's
 * settings (deploy targets, hooks, auto_renew, renew_before_days) and
 * replies with them once saved; `deploy` deploys the current version again
 * and runs the deploy hooks, replying with the outcome.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "deploy.h"
#include "err.h"
#include "events.h"
#include "fallback.h"
#include "log.h"
#include "ops.h"
#include "served.h"
#include "server.h"
#include "store.h"

struct deploy_waiter {
    struct agent *agent;
    struct client *client;
    uint64_t id;
    char *name;
    int deploy_after; /* set: the settings added a target, deploy once saved */
    int wait_served;  /* deploy --wait-served: reply once the served check has a verdict */
};

static struct deploy_waiter *
waiter_new(struct request *req, const char *name)
{
    struct deploy_waiter *w = calloc(1, sizeof(*w));

    if (w == NULL || (w->name = strdup(name)) == NULL) {
        free(w);
        return NULL;
    }
    w->agent = req->agent;
    w->client = req->client;
    w->id = req->id;
    server_client_ref(w->client);
    return w;
}

static void
waiter_free(struct deploy_waiter *w)
{
    server_client_unref(w->client);
    free(w->name);
    free(w);
}

static void
reply(struct deploy_waiter *w, int rc, const char *cause, int with_settings)
{
    struct proto_writer pw;
    const struct store_cert *c = store_find(w->agent->store, w->name);
    cJSON *s;

    if (!server_client_alive(w->client))
        return;
    proto_writer_init(&pw);
    if (rc != 0) {
        proto_pack_error(&pw.pk, w->id, rc < 0 ? -rc : rc, cause != NULL ? cause : err_message(rc),
                         NULL);
        server_send_writer(w->client, w->id, &pw);
        return;
    }
    proto_begin_result(&pw.pk, w->id, with_settings ? 3 : 2);
    proto_pack_kv_str(&pw.pk, "name", w->name);
    proto_pack_kv_uint(&pw.pk, "version", c != NULL ? c->current : 0);
    if (with_settings) {
        s = deploy_settings_json(w->agent->deploy, w->name);
        proto_pack_str(&pw.pk, "settings");
        if (s != NULL)
            proto_pack_json(&pw.pk, s);
        else
            msgpack_pack_map(&pw.pk, 0);
        cJSON_Delete(s);
    }
    server_send_writer(w->client, w->id, &pw);
}

/* deploy --wait-served: the served check's verdict, with every endpoint's result. */
static void
served_checked(void *arg, int rc, const char *cause)
{
    struct deploy_waiter *w = arg;
    const struct store_cert *c = store_find(w->agent->store, w->name);
    struct proto_writer pw;
    char *words = NULL;

    if (!server_client_alive(w->client))
        goto out;
    proto_writer_init(&pw);
    if (rc != 0) {
        err_set(&words,
                "deployed, but not served: %s; reload the service (or fix the deploy hook) and "
                "run certctl deploy %s --wait-served again",
                cause != NULL ? cause : err_message(rc), w->name);
        proto_pack_error(&pw.pk, w->id, rc < 0 ? -rc : rc, words, NULL);
    } else {
        proto_begin_result(&pw.pk, w->id, 3);
        proto_pack_kv_str(&pw.pk, "name", w->name);
        proto_pack_kv_uint(&pw.pk, "version", c != NULL ? c->current : 0);
        proto_pack_str(&pw.pk, "served");
        served_pack(w->agent->served, w->name, &pw.pk);
    }
    server_send_writer(w->client, w->id, &pw);
out:
    free(words);
    waiter_free(w);
}

static void
deployed(void *arg, int rc, const char *cause)
{
    struct deploy_waiter *w = arg;
    char *words = NULL;

    if (rc == 0 && w->wait_served) {
        char *why = NULL;
        int src = served_wait(w->agent->served, w->name, served_checked, w, &why);

        if (src == 0) {
            free(why);
            return;
        }
        reply(w, src, why, 0);
        free(why);
        waiter_free(w);
        return;
    }

    if (rc != 0 && w->deploy_after)
        err_set(&words,
                "the settings were saved, but deploying the current version failed: "
                "%s",
                cause != NULL ? cause : err_message(rc));
    reply(w, rc, words != NULL ? words : cause, w->deploy_after);
    free(words);
    waiter_free(w);
}

static void
saved(void *arg, int rc, const char *cause)
{
    struct deploy_waiter *w = arg;

    if (rc == 0) {
        log_info("settings of '%s' changed", w->name);
        events_publish_name(w->agent->events, EVENT_SETTINGS_CHANGED, w->name);
        if (w->deploy_after && store_find(w->agent->store, w->name) != NULL) {
            /* A new target receives the current version at once. */
            deploy_changed(w->agent->deploy, w->name, deployed, w);
            return;
        }
    }
    reply(w, rc, cause, 1);
    waiter_free(w);
}

/*
 * auto_renew true on an imported certificate would be shown but never acted
 * on (there is no CA to renew it with): refused, with what to do instead.
 */
static int
refuse_auto_renew_import(struct request *req, const char *name, const cJSON *changes)
{
    const struct store_cert *c = store_find(req->agent->store, name);
    const struct store_version *v = c != NULL ? store_current(c) : NULL;

    if (v == NULL || v->source != CERT_SOURCE_IMPORT ||
        !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(changes, "auto_renew")))
        return 0;
    err_set(&req->cause,
            "'%s' was imported: certagent has no CA to renew it with, so auto-renew would "
            "never act; to have it renewed, get it from a CA with certctl request %s --dns "
            "NAME --ca CA, or import each new version with certctl import %s --cert FILE",
            name, name, name);
    return -E_BAD_INPUT;
}

/* Fallback CAs must exist and be named once (deploy checks the shape only). */
static int
refuse_bad_fallback(struct request *req, const cJSON *changes)
{
    const cJSON *fb = cJSON_GetObjectItemCaseSensitive(changes, "fallback_cas"), *it;
    const char *names[8];
    size_t n = 0;

    if (!cJSON_IsArray(fb))
        return 0;
    cJSON_ArrayForEach(it, fb)
    {
        if (!cJSON_IsString(it) || n == sizeof(names) / sizeof(names[0]))
            return 0; /* deploy's check words it */
        names[n++] = it->valuestring;
    }
    return fallback_check(req->agent->acme, "--fallback-ca", names, n, &req->cause);
}

int
ops_set(struct request *req)
{
    const msgpack_object *m = NULL;
    struct deploy_waiter *w = NULL;
    cJSON *changes = NULL;
    char *name = NULL;
    int rc;

    if ((rc = ops_arg_str(req, "name", 1, &name)) != 0)
        return rc;
    if ((rc = proto_get_map(req->args, "settings", &m)) != 0) {
        err_set(&req->cause, "'settings' must be a map of the settings to change");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((changes = proto_to_json(m)) == NULL || (w = waiter_new(req, name)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if ((rc = refuse_auto_renew_import(req, name, changes)) != 0)
        goto out;
    if ((rc = refuse_bad_fallback(req, changes)) != 0)
        goto out;
    w->deploy_after = cJSON_GetObjectItemCaseSensitive(changes, "add_files") != NULL ||
                      cJSON_GetObjectItemCaseSensitive(changes, "add_pfx") != NULL ||
                      cJSON_GetObjectItemCaseSensitive(changes, "add_store") != NULL;
    if ((rc = deploy_settings_change(req->agent->deploy, name, changes, saved, w, &req->cause)) ==
        0)
        w = NULL;
out:
    if (w != NULL)
        waiter_free(w);
    cJSON_Delete(changes);
    free(name);
    return rc;
}

int
ops_deploy(struct request *req)
{
    struct deploy_waiter *w;
    char *name = NULL;
    uint64_t wait = 0;
    int rc;

    if ((rc = ops_arg_str(req, "name", 1, &name)) != 0)
        return rc;
    if (store_find(req->agent->store, name) == NULL) {
        err_set(&req->cause, "no certificate named '%s'", name);
        free(name);
        return -E_NOT_FOUND;
    }
    if ((rc = ops_arg_uint(req, "wait_served", 0, &wait)) != 0) {
        free(name);
        return rc;
    }
    if (wait) {
        size_t n = 0;

        served_endpoints(req->agent->served, name, &n, NULL);
        if (n == 0) {
            err_set(&req->cause,
                    "'%s' has no URL to check: add one with certctl set %s --check-served URL",
                    name, name);
            free(name);
            return -E_BAD_INPUT;
        }
    }
    if ((w = waiter_new(req, name)) == NULL) {
        free(name);
        return -E_NOMEM;
    }
    free(name);
    w->wait_served = wait != 0;
    deploy_changed(req->agent->deploy, w->name, deployed, w);
    return 0;
}
