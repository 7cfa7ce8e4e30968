/*
 * certctl request NAME --shared in a fleet: the order runs under the fleet's
 * lock of NAME (fleet-lock.h), as renewals do, so that two nodes asked for
 * the same shared name at once order it once; when the fleet already has a
 * version of NAME and this node none, the node takes that one instead of
 * ordering.  The same path orders a name from its definition in etcd when no
 * node of the fleet holds it yet (fleet-def.h: ops_shared_order_def).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"
#include "agent.h"
#include "err.h"
#include "fleet-def.h"
#include "fleet-lock.h"
#include "fleet.h"
#include "keys.h"
#include "log.h"
#include "ops.h"
#include "store.h"
#include "strv.h"

struct shared_order {
    struct agent *agent;
    struct acme_order_args args; /* its strings below */
    char *name, *ca, *key_type, *challenge, *preferred_chain, *profile, *email;
    char **dns, **ips;
    struct acme_observer user;
    unsigned tries; /* of the lock, when etcd did not answer in time */
    int from_def;   /* ordered from the definition in etcd, not by certctl request */
};

/* A busy etcd (every member timed out) gets this many tries before the request fails. */
#define LOCK_TRIES 3

static char *
dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void
shared_free(struct shared_order *s)
{
    free(s->name);
    free(s->ca);
    free(s->key_type);
    free(s->challenge);
    free(s->preferred_chain);
    free(s->profile);
    free(s->email);
    strv_free(s->dns, s->args.ndns);
    strv_free(s->ips, s->args.nips);
    free(s);
}

static void
shared_progress(void *arg, const char *message, unsigned done, unsigned total)
{
    struct shared_order *s = arg;

    if (s->user.progress != NULL)
        s->user.progress(s->user.arg, message, done, total);
}

/* The order ended: the lock goes once its version is published. */
static void
shared_done(void *arg, int rc, const char *cause, const char *detail, const cJSON *result)
{
    struct shared_order *s = arg;

    fleet_unlock(s->agent->fleet, s->name);
    s->user.done(s->user.arg, rc, cause, detail, result);
    shared_free(s);
}

static void
on_locked(void *arg, int rc, const char *cause, const struct fleet_current *cur)
{
    struct shared_order *s = arg;
    struct acme_observer obs = {shared_progress, shared_done, s};
    char *words = NULL;

    if (rc == -E_UNAVAILABLE && ++s->tries < LOCK_TRIES) {
        log_info("'%s': %s; asking again", s->name, cause != NULL ? cause : "no lock");
        if (fleet_lock(s->agent->fleet, s->name, on_locked, s, &words) == 0)
            return;
        rc = -E_UNAVAILABLE;
        cause = words;
    }
    if (rc != 0) {
        s->user.done(s->user.arg, rc, cause, NULL, NULL);
        shared_free(s);
        free(words);
        return;
    }
    if (cur->serial != NULL && store_find(s->agent->store, s->name) == NULL) {
        /* Another node of the fleet issued it already and this node has none: take it. */
        cJSON *res = cJSON_CreateObject();

        log_info("'%s': the fleet has it already (serial %s from node '%s'); taking that "
                 "version instead of ordering",
                 s->name, cur->serial, cur->node != NULL ? cur->node : "?");
        fleet_take_current(s->agent->fleet, s->name);
        fleet_unlock(s->agent->fleet, s->name);
        cJSON_AddStringToObject(res, "name", s->name);
        cJSON_AddStringToObject(res, "serial", cur->serial);
        cJSON_AddNumberToObject(res, "not_after", (double)cur->not_after);
        cJSON_AddStringToObject(res, "from_fleet", cur->node != NULL ? cur->node : "");
        s->user.done(s->user.arg, 0, NULL, NULL, res);
        cJSON_Delete(res);
        shared_free(s);
        return;
    }
    if (s->from_def)
        log_info("fleet: ordering '%s' from its definition (no node holds it yet)", s->name);
    if ((rc = acme_request(s->agent->acme, &s->args, &obs, &words)) != 0) {
        fleet_unlock(s->agent->fleet, s->name);
        s->user.done(s->user.arg, rc, words != NULL ? words : err_message(rc), NULL, NULL);
        shared_free(s);
    }
    free(words);
}

static int
request_shared(struct agent *agent, const struct acme_order_args *a,
               const struct acme_observer *obs, int from_def, char **cause)
{
    struct shared_order *s = calloc(1, sizeof(*s));
    int rc = -E_NOMEM;

    if (s == NULL)
        return -E_NOMEM;
    s->agent = agent;
    s->user = *obs;
    s->from_def = from_def;
    s->args = *a;
    s->args.ndns = s->args.nips = 0;
    if ((s->name = strdup(a->name)) == NULL ||
        (a->ca != NULL && (s->ca = strdup(a->ca)) == NULL) ||
        (a->key_type != NULL && (s->key_type = dup_or_null(a->key_type)) == NULL) ||
        (a->challenge != NULL && (s->challenge = dup_or_null(a->challenge)) == NULL) ||
        (a->preferred_chain != NULL &&
         (s->preferred_chain = dup_or_null(a->preferred_chain)) == NULL) ||
        (a->profile != NULL && (s->profile = dup_or_null(a->profile)) == NULL) ||
        (a->email != NULL && (s->email = dup_or_null(a->email)) == NULL) ||
        strv_dup(&s->dns, &s->args.ndns, a->dns, a->ndns) != 0 ||
        strv_dup(&s->ips, &s->args.nips, a->ips, a->nips) != 0)
        goto fail;
    s->args.name = s->name;
    s->args.ca = s->ca;
    s->args.key_type = s->key_type;
    s->args.challenge = s->challenge;
    s->args.preferred_chain = s->preferred_chain;
    s->args.profile = s->profile;
    s->args.email = s->email;
    s->args.dns = (const char *const *)s->dns;
    s->args.ips = (const char *const *)s->ips;
    if ((rc = fleet_lock(agent->fleet, s->name, on_locked, s, cause)) != 0)
        goto fail;
    return 0;
fail:
    shared_free(s);
    return rc;
}

int
ops_request_shared(struct agent *agent, const struct acme_order_args *a,
                   const struct acme_observer *obs, char **cause)
{
    return request_shared(agent, a, obs, 0, cause);
}

/* An order of a name from its definition (fleet-def.h). */
struct def_order {
    char *name;
    void (*done)(void *arg, int rc);
    void *arg;
};

static void
def_order_done(void *arg, int rc, const char *cause, const char *detail, const cJSON *result)
{
    struct def_order *o = arg;
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(result, "from_fleet");
    const cJSON *serial = cJSON_GetObjectItemCaseSensitive(result, "serial");

    (void)detail;
    if (rc == 0 && cJSON_IsString(from))
        log_info("fleet: '%s' was not ordered from its definition: node '%s' of the fleet "
                 "had it already",
                 o->name, from->valuestring);
    else if (rc == 0)
        log_info("fleet: ordered '%s' from its definition (serial %s)", o->name,
                 cJSON_IsString(serial) ? serial->valuestring : "?");
    else if (rc == -E_BUSY || rc == -E_UNAVAILABLE)
        log_debug("fleet: '%s' is not ordered from its definition now: %s; checking again "
                  "later",
                  o->name, cause != NULL ? cause : err_message(rc));
    else
        log_warn("fleet: could not order '%s' from its definition: %s", o->name,
                 cause != NULL ? cause : err_message(rc));
    o->done(o->arg, rc);
    free(o->name);
    free(o);
}

/* More entries than a certificate may name (the CA's limit is lower): a definition to refuse
 * before anything is allocated for it. */
#define DEF_MAX_NAMES 100

/* The optional string key of a definition: *out borrowed, NULL when absent or null. */
static int
def_string(const cJSON *def, const char *key, const char **out, char **cause)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(def, key);

    *out = NULL;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
        err_set(cause, "its \"%s\" is not a non-empty string", key);
        return -E_BAD_INPUT;
    }
    *out = v->valuestring;
    return 0;
}

/* The optional list of strings key of a definition: *out (caller frees) and *n. */
static int
def_strings(const cJSON *def, const char *key, char ***out, size_t *n, char **cause)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(def, key), *it;
    const char *items[DEF_MAX_NAMES];
    size_t count = 0;

    *out = NULL;
    *n = 0;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > DEF_MAX_NAMES) {
        err_set(cause, "its \"%s\" is not a list of at most %d strings", key, DEF_MAX_NAMES);
        return -E_BAD_INPUT;
    }
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it)) {
            err_set(cause, "its \"%s\" holds something else than strings", key);
            return -E_BAD_INPUT;
        }
        items[count++] = it->valuestring;
    }
    return strv_dup(out, n, items, count) != 0 ? -E_NOMEM : 0;
}

int
ops_shared_order_def(void *ctx, const char *name, const char *def_json,
                     void (*done)(void *arg, int rc), void *arg, char **cause)
{
    struct agent *agent = ctx;
    struct acme_order_args a;
    struct acme_observer obs = {NULL, def_order_done, NULL};
    struct def_order *o = NULL;
    cJSON *def = cJSON_Parse(def_json);
    char **dns = NULL, **ips = NULL, *why = NULL;
    size_t ndns = 0, nips = 0;
    enum key_type kt;
    int rc;

    memset(&a, 0, sizeof(a));
    if (!cJSON_IsObject(def)) {
        err_set(&why, "it is not a JSON object");
        rc = -E_BAD_INPUT;
        goto out;
    }
    /* The checks of certctl request, before the lock: a bad definition is not ordered. */
    if ((rc = def_strings(def, "names", &dns, &ndns, &why)) != 0 ||
        (rc = def_strings(def, "ips", &ips, &nips, &why)) != 0 ||
        (rc = def_string(def, "ca", &a.ca, &why)) != 0 ||
        (rc = def_string(def, "key_type", &a.key_type, &why)) != 0 ||
        (rc = def_string(def, "challenge", &a.challenge, &why)) != 0 ||
        (rc = def_string(def, "preferred_chain", &a.preferred_chain, &why)) != 0 ||
        (rc = def_string(def, "profile", &a.profile, &why)) != 0)
        goto out;
    if (ndns + nips == 0) {
        err_set(&why, "it names no DNS name and no IP address");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((rc = keys_names_check((const char *const *)dns, ndns, (const char *const *)ips, nips,
                               &why)) != 0 ||
        (a.key_type != NULL && (rc = keys_type_parse(a.key_type, &kt, &why)) != 0))
        goto out;
    if (a.challenge != NULL && strcmp(a.challenge, "http-01") != 0 &&
        strcmp(a.challenge, "dns-01") != 0 && strcmp(a.challenge, "tls-alpn-01") != 0) {
        err_set(&why, "unknown challenge '%s'", a.challenge);
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (a.ca == NULL && agent->config.default_ca == NULL) {
        err_set(&why, "it names no CA and this node has no default_ca");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (a.ca != NULL && !acme_ca_known(agent->acme, a.ca)) {
        err_set(&why, "it names CA '%s', which this node does not know", a.ca);
        rc = -E_BAD_INPUT;
        goto out;
    }
    a.name = name;
    a.dns = (const char *const *)dns;
    a.ndns = ndns;
    a.ips = (const char *const *)ips;
    a.nips = nips;
    /* No agree_tos: the node orders with the account it has at the CA (or one the config
     * lets it register, "auto_register"). */
    if ((o = calloc(1, sizeof(*o))) == NULL || (o->name = strdup(name)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    o->done = done;
    o->arg = arg;
    obs.arg = o;
    if ((rc = request_shared(agent, &a, &obs, 1, cause)) == 0)
        o = NULL;
out:
    if (rc == -E_BAD_INPUT && why != NULL) {
        err_set(cause, "its definition in etcd is not one to order: %s", why);
    }
    if (o != NULL) {
        free(o->name);
        free(o);
    }
    free(why);
    strv_free(dns, ndns);
    strv_free(ips, nips);
    cJSON_Delete(def);
    return rc;
}

void
ops_shared_define(struct agent *agent, const struct acme_order_args *a, const char *const *tags,
                  size_t ntags)
{
    cJSON *o = cJSON_CreateObject(), *arr;
    char *text = NULL;

    if (o == NULL)
        return;
    if ((arr = cJSON_AddArrayToObject(o, "names")) != NULL)
        for (size_t i = 0; i < a->ndns; i++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(a->dns[i]));
    if ((arr = cJSON_AddArrayToObject(o, "ips")) != NULL)
        for (size_t i = 0; i < a->nips; i++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(a->ips[i]));
#define ADD(k, v)                                                                                 \
    if ((v) != NULL)                                                                              \
        cJSON_AddStringToObject(o, k, v);
    ADD("ca", a->ca != NULL ? a->ca : agent->config.default_ca)
    ADD("key_type", a->key_type)
    ADD("challenge", a->challenge)
    ADD("preferred_chain", a->preferred_chain)
    ADD("profile", a->profile)
#undef ADD
    if ((arr = cJSON_AddArrayToObject(o, "tags")) != NULL)
        for (size_t i = 0; i < ntags; i++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(tags[i]));
    if ((text = cJSON_PrintUnformatted(o)) != NULL)
        fleet_def_put(agent->fleet, a->name, text);
    free(text);
    cJSON_Delete(o);
}
