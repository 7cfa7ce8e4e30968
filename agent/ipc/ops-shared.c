/*
 * certctl request NAME --shared in a fleet: the order runs under the fleet's
 * lock of NAME (fleet-lock.h), as renewals do, so that two nodes asked for
 * the same shared name at once order it once; when the fleet already has a
 * version of NAME and this node none, the node takes that one instead of
 * ordering.
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
    if ((rc = acme_request(s->agent->acme, &s->args, &obs, &words)) != 0) {
        fleet_unlock(s->agent->fleet, s->name);
        s->user.done(s->user.arg, rc, words != NULL ? words : err_message(rc), NULL, NULL);
        shared_free(s);
    }
    free(words);
}

int
ops_request_shared(struct agent *agent, const struct acme_order_args *a,
                   const struct acme_observer *obs, char **cause)
{
    struct shared_order *s = calloc(1, sizeof(*s));
    int rc = -E_NOMEM;

    if (s == NULL)
        return -E_NOMEM;
    s->agent = agent;
    s->user = *obs;
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
