/*
 * Handlers of the ACME ops: request, renew, revoke, ca_*, account_*.  Each
 * hands the work to acme.c with an observer that streams progress events to
 * the client and sends the final reply, as long as the client is connected;
 * a client that goes away does not stop the order.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include <string.h>
#include <time.h>

#include "acme.h"
#include "agent.h"
#include "err.h"
#include "fleet-lock.h"
#include "keys.h"
#include "log.h"
#include "ops.h"
#include "renew.h"
#include "server.h"
#include "store.h"
#include "strv.h"
#include "sys.h"

struct waiter {
    struct agent *agent;
    struct client *client;
    uint64_t id;
    unsigned steps;
    /* renew --all: one reply for many orders */
    cJSON *results;
    unsigned pending;
    unsigned failed;
};

static struct waiter *
waiter_new(struct request *req)
{
    struct waiter *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->agent = req->agent;
    w->client = req->client;
    w->id = req->id;
    server_client_ref(w->client);
    return w;
}

static void
waiter_free(struct waiter *w)
{
    server_client_unref(w->client);
    cJSON_Delete(w->results);
    free(w);
}

static void
send_error(struct client *client, uint64_t id, int rc, const char *cause, const char *detail)
{
    struct proto_writer w;

    proto_writer_init(&w);
    proto_pack_error(&w.pk, id, rc < 0 ? -rc : rc, cause, detail);
    server_send_writer(client, id, &w);
}

static void
send_result(struct client *client, uint64_t id, const cJSON *result)
{
    struct proto_writer w;
    const cJSON *c;
    size_t n = 0;

    proto_writer_init(&w);
    cJSON_ArrayForEach(c, result) n++;
    proto_begin_result(&w.pk, id, n);
    cJSON_ArrayForEach(c, result)
    {
        proto_pack_str(&w.pk, c->string != NULL ? c->string : "");
        proto_pack_json(&w.pk, c);
    }
    server_send_writer(client, id, &w);
}

static void
on_progress(void *arg, const char *message, unsigned done, unsigned total)
{
    struct waiter *w = arg;

    (void)done;
    (void)total;
    w->steps++;
    if (server_client_alive(w->client))
        ops_progress(w->client, w->id, message, w->steps, 0);
}

static void
on_done(void *arg, int rc, const char *cause, const char *detail, const cJSON *result)
{
    struct waiter *w = arg;

    if (server_client_alive(w->client)) {
        if (rc != 0)
            send_error(w->client, w->id, rc, cause, detail);
        else
            send_result(w->client, w->id, result);
    }
    waiter_free(w);
}

static struct acme_observer
observer(struct waiter *w)
{
    struct acme_observer obs = {on_progress, on_done, w};

    return obs;
}

static int
arg_bool(struct request *req, const char *key)
{
    int v = 0;

    if (req->args != NULL && proto_get_bool(req->args, key, &v) == 0)
        return v;
    return 0;
}

/* request */

int
ops_request(struct request *req)
{
    struct acme_order_args a;
    char *name = NULL, *ca = NULL, *key = NULL, *chall = NULL, *pc = NULL, *profile = NULL;
    char *email = NULL, **dns = NULL, **ips = NULL, **tags = NULL;
    size_t ndns = 0, nips = 0, ntags = 0;
    struct waiter *w = NULL;
    struct acme_observer obs;
    int rc;

    if ((rc = ops_arg_str(req, "name", 1, &name)) != 0 ||
        (rc = ops_arg_strs(req, "dns", &dns, &ndns)) != 0 ||
        (rc = ops_arg_strs(req, "ips", &ips, &nips)) != 0 ||
        (rc = ops_arg_str(req, "ca", 0, &ca)) != 0 ||
        (rc = ops_arg_str(req, "key", 0, &key)) != 0 ||
        (rc = ops_arg_str(req, "challenge", 0, &chall)) != 0 ||
        (rc = ops_arg_str(req, "preferred_chain", 0, &pc)) != 0 ||
        (rc = ops_arg_str(req, "profile", 0, &profile)) != 0 ||
        (rc = ops_arg_str(req, "email", 0, &email)) != 0 ||
        (rc = ops_arg_strs(req, "tags", &tags, &ntags)) != 0)
        goto out;
    if ((w = waiter_new(req)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    memset(&a, 0, sizeof(a));
    a.name = name;
    a.ca = ca;
    a.dns = (const char *const *)dns;
    a.ndns = ndns;
    a.ips = (const char *const *)ips;
    a.nips = nips;
    a.key_type = key;
    a.challenge = chall;
    a.preferred_chain = pc;
    a.profile = profile;
    a.require_profile = arg_bool(req, "require_profile");
    a.agree_tos = arg_bool(req, "agree_tos");
    a.email = email;
    obs = observer(w);
    if (fleet_shared(req->agent->fleet, name)) {
        ops_shared_define(req->agent, &a, (const char *const *)tags, ntags);
        rc = ops_request_shared(req->agent, &a, &obs, &req->cause);
    } else if (ntags > 0) {
        err_set(&req->cause, "--tag needs a shared certificate in a fleet (--shared, and the "
                             "cluster key in the config)");
        rc = -E_BAD_INPUT;
    } else {
        rc = acme_request(req->agent->acme, &a, &obs, &req->cause);
    }
    if (rc == 0)
        w = NULL;
out:
    if (w != NULL)
        waiter_free(w);
    free(name);
    free(ca);
    free(key);
    free(chall);
    free(pc);
    free(profile);
    free(email);
    strv_free(dns, ndns);
    strv_free(ips, nips);
    strv_free(tags, ntags);
    return rc;
}

/* renew NAME | --all [--force] */

struct renew_one {
    struct waiter *w;
    char *name;
};

static void
renew_all_progress(void *arg, const char *message, unsigned done, unsigned total)
{
    struct renew_one *r = arg;
    char buf[600];

    snprintf(buf, sizeof(buf), "%s: %s", r->name, message);
    on_progress(r->w, buf, done, total);
}

/* One order of renew --all ended, or the hold was released: reply after the last. */
static void
renew_all_release(struct waiter *w)
{
    if (--w->pending > 0)
        return;
    cJSON_AddNumberToObject(w->results, "failed", w->failed);
    if (server_client_alive(w->client))
        send_result(w->client, w->id, w->results);
    waiter_free(w);
}

static void
renew_all_done(void *arg, int rc, const char *cause, const char *detail, const cJSON *result)
{
    struct renew_one *r = arg;
    struct waiter *w = r->w;
    cJSON *o = cJSON_CreateObject();

    (void)detail;
    if (o != NULL) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(result, "version");

        cJSON_AddStringToObject(o, "name", r->name);
        cJSON_AddBoolToObject(o, "ok", rc == 0);
        if (rc == 0 && cJSON_IsNumber(v))
            cJSON_AddNumberToObject(o, "version", v->valuedouble);
        if (rc != 0)
            cJSON_AddStringToObject(o, "error", cause != NULL ? cause : err_message(rc));
        cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(w->results, "renewed"), o);
    }
    if (rc != 0)
        w->failed++;
    free(r->name);
    free(r);
    renew_all_release(w);
}

/*
 * Why renew NAME (without --force) does nothing now, and what will happen
 * instead: when the agent renews it, or that it never does by itself.
 */
static void
not_due_cause(struct request *req, struct renew *renew, const char *name,
              const struct store_version *v, int64_t now)
{
    struct renew_info info;
    char when[32];
    long long days = (long long)((v->not_after - now) / 86400);

    if (renew_info_get(renew, name, &info) != 0) {
        err_set(&req->cause, "'%s' is being planned; try again in a moment", name);
    } else if (!info.auto_renew) {
        err_set(&req->cause,
                "'%s' is not renewed automatically (%s, auto-renew off) and expires in %lld "
                "days: certctl renew %s --force renews it now; certctl set %s --auto-renew %s "
                "lets the agent renew it",
                name, store_source_name(v->source), days, name, name,
                v->source == CERT_SOURCE_ACME ? "default" : "yes");
    } else if (info.next == 0) {
        err_set(&req->cause,
                "'%s' is not due for renewal and being planned (expires in %lld days); use "
                "--force to renew now",
                name, days);
    } else {
        sys_format_time(info.next, when, sizeof(when));
        err_set(&req->cause,
                "'%s' is not due for renewal: the agent renews it at %s (expires in %lld "
                "days); use --force to renew now",
                name, when, days);
    }
}

int
ops_renew(struct request *req)
{
    struct renew *renew = req->agent->renew;
    struct store *store = req->agent->store;
    struct waiter *w = NULL;
    struct acme_observer obs;
    char *name = NULL;
    int64_t now = (int64_t)time(NULL);
    int rc, all = arg_bool(req, "all"), force = arg_bool(req, "force");

    if ((rc = ops_arg_str(req, "name", !all, &name)) != 0)
        return rc;
    if ((w = waiter_new(req)) == NULL) {
        free(name);
        return -E_NOMEM;
    }
    if (!all) {
        const struct store_cert *c = store_find(store, name);
        const struct store_version *v = c != NULL ? store_current(c) : NULL;

        if (v == NULL) {
            err_set(&req->cause, "no certificate named '%s'", name);
            rc = -E_NOT_FOUND;
        } else if (v->source == CERT_SOURCE_IMPORT) {
            err_set(&req->cause,
                    "'%s' was imported; certagent cannot renew it (use certctl "
                    "request to get one from a CA, or import its next version)",
                    name);
            rc = -E_BAD_INPUT;
        } else if (!force && !renew_due(renew, name)) {
            not_due_cause(req, renew, name, v, now);
            rc = -E_BAD_INPUT;
        } else {
            obs = observer(w);
            if ((rc = renew_now(renew, name, &obs, &req->cause)) == 0)
                w = NULL;
        }
        goto out;
    }
    if ((w->results = cJSON_CreateObject()) == NULL ||
        cJSON_AddArrayToObject(w->results, "renewed") == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    w->pending = 1; /* a hold until every order is started */
    for (size_t i = 0; i < store_count(store); i++) {
        const struct store_cert *c = store_at(store, i);
        const struct store_version *v = store_current(c);
        struct renew_one *r;
        char *cause = NULL;
        int one;

        struct renew_info info;

        /* Everything the scheduler renews: ACME, and self-signed set to auto_renew. */
        if (v == NULL || renew_info_get(renew, c->name, &info) != 0 || !info.auto_renew ||
            (!force && !renew_due(renew, c->name)))
            continue;
        if ((r = calloc(1, sizeof(*r))) == NULL || (r->name = strdup(c->name)) == NULL) {
            free(r);
            continue;
        }
        r->w = w;
        obs.progress = renew_all_progress;
        obs.done = renew_all_done;
        obs.arg = r;
        w->pending++;
        if ((one = renew_now(renew, c->name, &obs, &cause)) != 0)
            renew_all_done(r, one, cause, NULL, NULL);
        free(cause);
    }
    renew_all_release(w);
    w = NULL;
out:
    if (w != NULL)
        waiter_free(w);
    free(name);
    return rc;
}

/* revoke */

/* A revocation the CA accepted, while the store records it. */
struct revoke_wait {
    struct waiter *w;
    cJSON *result;
};

static void
revoke_wait_free(struct revoke_wait *rw)
{
    if (rw->w != NULL)
        waiter_free(rw->w);
    cJSON_Delete(rw->result);
    free(rw);
}

/* The store has recorded the revocation (or could not): the client gets the CA's answer. */
static void
revoke_recorded(void *arg, int rc, const char *cause)
{
    struct revoke_wait *rw = arg;
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rw->result, "name"));

    if (rc != 0) {
        log_error("'%s' was revoked at its CA, but the store could not record it (%s); status "
                  "does not show it revoked: run certctl renew %s --force to replace it",
                  name != NULL ? name : "?", cause != NULL ? cause : err_message(rc),
                  name != NULL ? name : "NAME");
    }
    cJSON_AddBoolToObject(rw->result, "recorded", rc == 0);
    on_done(rw->w, 0, NULL, NULL, rw->result);
    rw->w = NULL;
    revoke_wait_free(rw);
}

static void
revoke_progress(void *arg, const char *message, unsigned done, unsigned total)
{
    struct revoke_wait *rw = arg;

    on_progress(rw->w, message, done, total);
}

static void
revoke_done(void *arg, int rc, const char *cause, const char *detail, const cJSON *result)
{
    struct revoke_wait *rw = arg;
    struct waiter *w = rw->w;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(result, "name");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(result, "version");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(result, "reason");
    char *why = NULL;
    int rec;

    if (rc != 0 || !cJSON_IsString(name) || !cJSON_IsNumber(version) ||
        (rw->result = cJSON_Duplicate(result, 1)) == NULL) {
        on_done(w, rc, cause, detail, result);
        rw->w = NULL;
        revoke_wait_free(rw);
        return;
    }
    /* Recorded in the store: status shows it, the scheduler replaces it (renew_after_revoke). */
    if ((rec = ops_cert_revoked(w->agent, name->valuestring, (unsigned)version->valuedouble,
                                (int64_t)time(NULL), cJSON_GetStringValue(reason), revoke_recorded,
                                rw, &why)) != 0)
        revoke_recorded(rw, rec, why != NULL ? why : err_message(rec));
    free(why);
}

int
ops_revoke(struct request *req)
{
    struct revoke_wait *rw = NULL;
    struct acme_observer obs;
    char *name = NULL, *reason = NULL;
    int rc;

    if ((rc = ops_arg_str(req, "name", 1, &name)) != 0 ||
        (rc = ops_arg_str(req, "reason", 0, &reason)) != 0)
        goto out;
    if ((rw = calloc(1, sizeof(*rw))) == NULL || (rw->w = waiter_new(req)) == NULL) {
        free(rw);
        rw = NULL;
        rc = -E_NOMEM;
        goto out;
    }
    obs.progress = revoke_progress;
    obs.done = revoke_done;
    obs.arg = rw;
    if ((rc = acme_revoke(req->agent->acme, name, reason, &obs, &req->cause)) == 0)
        rw = NULL;
out:
    if (rw != NULL)
        revoke_wait_free(rw);
    free(name);
    free(reason);
    return rc;
}

/* CAs */

static void
reply_json(struct request *req, const cJSON *result)
{
    send_result(req->client, req->id, result);
}

int
ops_ca_add(struct request *req)
{
    char *name = NULL, *dir = NULL;
    unsigned char *trust = NULL;
    size_t tlen = 0;
    struct waiter *w = NULL;
    struct acme_observer obs;
    int rc;

    if ((rc = ops_arg_str(req, "name", 1, &name)) != 0 ||
        (rc = ops_arg_str(req, "directory", 1, &dir)) != 0 ||
        (rc = ops_arg_bin(req, "trust", 0, &trust, &tlen)) != 0)
        goto out;
    if (tlen > 256 * 1024) {
        err_set(&req->cause, "the trust file is larger than 256 KiB");
        rc = -E_TOO_BIG;
        goto out;
    }
    if ((w = waiter_new(req)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    obs = observer(w);
    if ((rc = acme_ca_add(req->agent->acme, name, dir, (const char *)trust, &obs, &req->cause)) ==
        0)
        w = NULL;
out:
    if (w != NULL)
        waiter_free(w);
    free(name);
    free(dir);
    free(trust);
    return rc;
}

int
ops_ca_list(struct request *req)
{
    cJSON *res = cJSON_CreateObject(), *list = acme_ca_list(req->agent->acme);

    if (res == NULL || list == NULL) {
        cJSON_Delete(res);
        cJSON_Delete(list);
        return -E_NOMEM;
    }
    ops_ca_state_add(req->agent, list);
    cJSON_AddItemToObject(res, "cas", list);
    cJSON_AddStringToObject(res, "default_ca",
                            req->agent->config.default_ca != NULL ? req->agent->config.default_ca
                                                                  : "");
    reply_json(req, res);
    cJSON_Delete(res);
    return 0;
}

/* The certificates that renew with CA name (their current version says so), as a JSON
 * array of names; NULL when out of memory.  *unknown counts the ACME certificates whose
 * CA the scheduler has not read yet (just after start or a change). */
static cJSON *
ca_users(struct agent *agent, const char *name, size_t *unknown)
{
    cJSON *names = cJSON_CreateArray();
    size_t n = store_count(agent->store);

    *unknown = 0;
    for (size_t i = 0; names != NULL && i < n; i++) {
        const struct store_cert *c = store_at(agent->store, i);
        const struct store_version *v = c->current != 0 ? store_current(c) : NULL;
        struct renew_info ri;

        if (v == NULL || v->source != CERT_SOURCE_ACME)
            continue;
        if (renew_info_get(agent->renew, c->name, &ri) != 0 || ri.loading) {
            (*unknown)++;
            continue;
        }
        if (ri.ca == NULL || strcmp(ri.ca, name) != 0)
            continue;
        cJSON_AddItemToArray(names, cJSON_CreateString(c->name));
    }
    return names;
}

/* "www, api, mail" (the first few, then "and N more"). */
static void
names_text(const cJSON *names, char *buf, size_t len)
{
    const cJSON *it;
    size_t used = 0, shown = 0, total = (size_t)cJSON_GetArraySize(names);

    buf[0] = '\0';
    cJSON_ArrayForEach(it, names)
    {
        if (shown == 10 || !cJSON_IsString(it)) {
            snprintf(buf + used, len - used, " and %zu more", total - shown);
            break;
        }
        used += (size_t)snprintf(buf + used, len - used, "%s%s", shown > 0 ? ", " : "",
                                 it->valuestring);
        if (used >= len)
            break;
        shown++;
    }
}

/* ca remove --force: the reply names the certificates left without their CA. */
static void
ca_remove_done(void *arg, int rc, const char *cause, const char *detail, const cJSON *result)
{
    struct waiter *w = arg;
    cJSON *res = NULL;

    if (rc == 0 && cJSON_GetArraySize(w->results) > 0) {
        char list[400];
        int n = cJSON_GetArraySize(w->results);

        names_text(w->results, list, sizeof(list));
        log_warn("ACME CA '%s' removed with --force while %d certificate%s renew%s with it "
                 "(%s): %s renewal%s will fail until the CA is added again",
                 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(result, "name")), n,
                 n == 1 ? "" : "s", n == 1 ? "s" : "", list, n == 1 ? "its" : "their",
                 n == 1 ? "" : "s");
    }
    if (rc == 0 && result != NULL && (res = cJSON_Duplicate(result, 1)) != NULL &&
        w->results != NULL) {
        cJSON_AddItemToObject(res, "certificates", w->results);
        w->results = NULL;
    }
    on_done(w, rc, cause, detail, res != NULL ? res : result);
    cJSON_Delete(res);
}

int
ops_ca_remove(struct request *req)
{
    char *name = NULL;
    struct waiter *w = NULL;
    struct acme_observer obs;
    cJSON *users = NULL;
    char list[400];
    size_t unknown = 0;
    int rc, n, force = arg_bool(req, "force");

    if ((rc = ops_arg_str(req, "name", 1, &name)) != 0)
        goto out;
    if ((rc = acme_ca_removable(req->agent->acme, name, &req->cause)) != 0)
        goto out;
    rc = -E_NOMEM;
    if ((users = ca_users(req->agent, name, &unknown)) == NULL)
        goto out;
    if (unknown > 0 && !force) {
        /* Not knowing whether they renew with it is not knowing that it is unused. */
        err_set(&req->cause,
                "cannot tell yet whether CA '%s' is in use: the agent is still reading %zu "
                "certificate%s' details; try again in a moment, or remove the CA anyway with "
                "'certctl ca remove %s --force'",
                name, unknown, unknown == 1 ? "" : "s", name);
        rc = -E_BUSY;
        goto out;
    }
    n = cJSON_GetArraySize(users);
    names_text(users, list, sizeof(list));
    if (n > 0 && !force) {
        /* Removing it would leave their renewals failing with "no CA named ...". */
        err_set(&req->cause,
                "CA '%s' is in use: %d certificate%s renew%s with it (%s). Get %s from "
                "another CA (certctl request NAME --dns ... --ca CA) or remove %s (certctl "
                "remove NAME) first, or remove the CA anyway with 'certctl ca remove %s "
                "--force' (status then warns for %s)",
                name, n, n == 1 ? "" : "s", n == 1 ? "s" : "", list, n == 1 ? "it" : "them",
                n == 1 ? "it" : "them", name, n == 1 ? "it" : "them");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((w = waiter_new(req)) == NULL)
        goto out;
    obs = observer(w);
    obs.done = ca_remove_done;
    w->results = users;
    users = NULL;
    if ((rc = acme_ca_remove(req->agent->acme, name, &obs, &req->cause)) != 0)
        waiter_free(w);
out:
    cJSON_Delete(users);
    free(name);
    return rc;
}

/* Accounts */

static const char *
ca_or_default(struct request *req, char *ca)
{
    return ca != NULL ? ca : req->agent->config.default_ca;
}

int
ops_account(struct request *req)
{
    struct acme *acme = req->agent->acme;
    char *ca = NULL, *email = NULL, *kid = NULL, *hmac = NULL, *key = NULL;
    struct waiter *w = NULL;
    struct acme_observer obs;
    struct acme_account_args a;
    const char *caname;
    int rc;

    if ((rc = ops_arg_str(req, "ca", 0, &ca)) != 0 ||
        (rc = ops_arg_str(req, "email", 0, &email)) != 0 ||
        (rc = ops_arg_str(req, "eab_kid", 0, &kid)) != 0 ||
        (rc = ops_arg_str(req, "eab_hmac", 0, &hmac)) != 0 ||
        (rc = ops_arg_str(req, "key", 0, &key)) != 0)
        goto out;
    caname = ca_or_default(req, ca);
    if (caname == NULL) {
        err_set(&req->cause, "give --ca (no default_ca is configured)");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((w = waiter_new(req)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    obs = observer(w);
    switch (req->op) {
    case PROTO_OP_ACCOUNT_REGISTER:
        memset(&a, 0, sizeof(a));
        a.ca = caname;
        a.email = email;
        a.eab_kid = kid;
        a.eab_hmac = hmac;
        a.key_type = key;
        a.agree_tos = arg_bool(req, "agree_tos");
        rc = acme_account_register(acme, &a, &obs, &req->cause);
        break;
    case PROTO_OP_ACCOUNT_SHOW:
        rc = acme_account_show(acme, caname, &obs, &req->cause);
        break;
    case PROTO_OP_ACCOUNT_ROLLOVER:
        rc = acme_account_rollover(acme, caname, key, &obs, &req->cause);
        break;
    case PROTO_OP_ACCOUNT_DEACTIVATE:
        rc = acme_account_deactivate(acme, caname, &obs, &req->cause);
        break;
    case PROTO_OP_ACCOUNT_IMPORT: {
        unsigned char *pem = NULL;
        size_t len = 0;
        char *url = NULL;

        if ((rc = ops_arg_str(req, "url", 1, &url)) == 0 &&
            (rc = ops_arg_bin(req, "key_pem", 1, &pem, &len)) == 0)
            rc = acme_account_import(acme, caname, url, (const char *)pem, len, &obs, &req->cause);
        if (pem != NULL)
            keys_free_secret(pem, len);
        free(url);
        break;
    }
    default:
        rc = -E_INTERNAL;
        break;
    }
    if (rc == 0)
        w = NULL;
out:
    if (w != NULL)
        waiter_free(w);
    free(ca);
    free(email);
    free(kid);
    if (hmac != NULL) {
        /* The EAB key is a secret. */
        OPENSSL_cleanse(hmac, strlen(hmac));
        free(hmac);
    }
    free(key);
    return rc;
}
