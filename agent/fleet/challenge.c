/*
 * Challenge answers of shared orders in etcd (fleet-challenge.h).
 */
#include "fleet-challenge.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "etcd.h"
#include "fleet-int.h"
#include "log.h"

/* A put or a lookup in flight. */
struct token_call {
    struct etcd_call *call;
    void (*done)(void *arg, int rc);
    void (*reply)(void *rarg, const char *keyauth);
    void *arg;
};

static void
token_key(const struct fleet *fleet, const char *token, char *buf, size_t size)
{
    snprintf(buf, size, "%schallenges/%s", fleet_prefix(fleet), token);
}

static void
on_put(void *arg, int rc, const char *cause, const cJSON *reply)
{
    struct token_call *t = arg;

    (void)reply;
    if (rc != 0)
        log_warn("fleet: could not share a challenge answer: %s", cause ? cause : "error");
    t->done(t->arg, rc);
    free(t);
}

void *
fleet_token_put(struct fleet *fleet, const char *token, const char *keyauth,
                void (*done)(void *arg, int rc), void *arg)
{
    struct token_call *t = NULL;
    cJSON *body = NULL;
    char key[512], lease[32], *cause = NULL;
    int64_t id = fleet != NULL ? fleet_lease_id(fleet) : 0;

    if (id == 0)
        return NULL;
    token_key(fleet, token, key, sizeof(key));
    snprintf(lease, sizeof(lease), "%lld", (long long)id);
    if ((t = calloc(1, sizeof(*t))) == NULL || (body = cJSON_CreateObject()) == NULL ||
        etcd_add_b64(body, "key", key, strlen(key)) != 0 ||
        etcd_add_b64(body, "value", keyauth, strlen(keyauth)) != 0 ||
        cJSON_AddStringToObject(body, "lease", lease) == NULL) {
        cJSON_Delete(body);
        free(t);
        return NULL;
    }
    t->done = done;
    t->arg = arg;
    if (etcd_call(fleet_etcd(fleet), "/v3/kv/put", body, on_put, t, &t->call, &cause) != 0) {
        log_warn("fleet: could not share a challenge answer: %s", cause ? cause : "error");
        free(cause);
        free(t);
        return NULL;
    }
    return t;
}

void
fleet_token_cancel(struct fleet *fleet, void *handle)
{
    struct token_call *t = handle;

    (void)fleet;
    if (t == NULL)
        return;
    etcd_call_cancel(t->call);
    free(t);
}

static void
on_deleted(void *arg, int rc, const char *cause, const cJSON *reply)
{
    (void)arg;
    (void)reply;
    if (rc != 0)
        log_debug("fleet: could not delete a challenge answer (%s); it goes with the lease",
                  cause ? cause : "error");
}

void
fleet_token_delete(struct fleet *fleet, const char *token)
{
    cJSON *body;
    char key[512], *cause = NULL;

    if (fleet == NULL || fleet_lease_id(fleet) == 0 || (body = cJSON_CreateObject()) == NULL)
        return;
    token_key(fleet, token, key, sizeof(key));
    if (etcd_add_b64(body, "key", key, strlen(key)) != 0) {
        cJSON_Delete(body);
        return;
    }
    if (etcd_call(fleet_etcd(fleet), "/v3/kv/deleterange", body, on_deleted, NULL, NULL, &cause) !=
        0)
        free(cause);
}

static void
on_looked_up(void *arg, int rc, const char *cause, const cJSON *reply)
{
    struct token_call *t = arg;
    const cJSON *kv = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "kvs"), 0);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(kv, "value");
    unsigned char *ka = NULL;
    size_t len = 0;

    if (rc != 0)
        log_debug("fleet: cannot look a challenge answer up: %s", cause ? cause : "error");
    else if (cJSON_IsString(v) && etcd_unb64(v->valuestring, &ka, &len) == 0 &&
             memchr(ka, '\0', len) != NULL) {
        free(ka);
        ka = NULL;
    }
    t->reply(t->arg, (const char *)ka);
    free(ka);
    free(t);
}

void *
fleet_token_lookup(struct fleet *fleet, const char *token,
                   void (*reply)(void *rarg, const char *keyauth), void *rarg)
{
    struct token_call *t = NULL;
    cJSON *body = NULL;
    char key[512], *cause = NULL;

    if (fleet == NULL || fleet_lease_id(fleet) == 0)
        return NULL;
    token_key(fleet, token, key, sizeof(key));
    if ((t = calloc(1, sizeof(*t))) == NULL || (body = cJSON_CreateObject()) == NULL ||
        etcd_add_b64(body, "key", key, strlen(key)) != 0) {
        cJSON_Delete(body);
        free(t);
        return NULL;
    }
    t->reply = reply;
    t->arg = rarg;
    if (etcd_call(fleet_etcd(fleet), "/v3/kv/range", body, on_looked_up, t, &t->call, &cause) !=
        0) {
        free(cause);
        free(t);
        return NULL;
    }
    return t;
}

void
fleet_token_lookup_cancel(struct fleet *fleet, void *handle)
{
    fleet_token_cancel(fleet, handle);
}
