/*
 * The fleet's issuing lock (fleet-lock.h): one key per shared name under
 * /certagent/FLEET/locks/, created only when absent and bound to the node's
 * lease.
 */
#include "fleet-lock.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy.h"
#include "err.h"
#include "etcd.h"
#include "fleet-int.h"
#include "fleet.h"
#include "log.h"
#include "store.h"

/* One name this node asked the lock of, or holds. */
struct fleet_locks {
    struct fleet_locks *next;
    struct fleet *fleet;
    char *name;
    int64_t rev; /* the lock key's create_revision once held; 0 while asked */
    int release; /* fleet_unlock came: delete after the publication */
    char *cur;   /* the fleet's current record of name (text) read with the lock */
    size_t cur_len;
    struct etcd_call *call;
    fleet_lock_cb cb;
    void *arg;
};

static struct fleet_locks *
lock_find(const struct fleet *fleet, const char *name)
{
    for (struct fleet_locks *l = *fleet_locks_slot((struct fleet *)fleet); l != NULL;
         l = l->next) {
        if (strcmp(l->name, name) == 0)
            return l;
    }
    return NULL;
}

static void
lock_drop(struct fleet_locks *l)
{
    struct fleet_locks **pp;

    for (pp = fleet_locks_slot(l->fleet); *pp != NULL; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    if (l->cur != NULL) {
        OPENSSL_cleanse(l->cur, l->cur_len);
        free(l->cur);
    }
    free(l->name);
    free(l);
}

void
fleet_lock_key(const struct fleet *fleet, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%slocks/%s", fleet_prefix(fleet), name);
}

int
fleet_shared(const struct fleet *fleet, const char *name)
{
    const struct cert_settings *s;

    /* A version taken from the fleet sets "shared" (fleet_mark_shared); --no-shared clears it. */
    return fleet_enabled(fleet) && (s = deploy_settings(fleet_deploy(fleet), name)) != NULL &&
           s->shared;
}

int64_t
fleet_lock_revision(const struct fleet *fleet, const char *name)
{
    const struct fleet_locks *l = fleet != NULL ? lock_find(fleet, name) : NULL;

    return l != NULL ? l->rev : 0;
}

/* The first kv of responses[i]'s range, or NULL. */
static const cJSON *
range_kv(const cJSON *reply, int i)
{
    const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "responses"), i);

    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                                  cJSON_GetObjectItemCaseSensitive(r, "response_range"), "kvs"),
                              0);
}

/* A kv's value decoded (NUL-terminated), or NULL. */
static char *
kv_value(const cJSON *kv, size_t *len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(kv, "value");
    unsigned char *out = NULL;

    *len = 0;
    if (!cJSON_IsString(v) || etcd_unb64(v->valuestring, &out, len) != 0)
        return NULL;
    return (char *)out;
}

static void
on_locked(void *arg, int rc, const char *cause, const cJSON *reply)
{
    struct fleet_locks *l = arg;
    struct fleet_current cur = {NULL, 0, NULL};
    const cJSON *kv;
    cJSON *o = NULL, *who = NULL;
    char *holder = NULL, *words = NULL;
    size_t hlen = 0;
    fleet_lock_cb cb = l->cb;
    void *cbarg = l->arg;

    l->call = NULL;
    if (rc != 0) {
        err_set(&words,
                "the fleet's etcd cannot be reached (%s); a shared name is not ordered "
                "without the fleet's lock",
                cause != NULL ? cause : "no answer");
        lock_drop(l);
        cb(cbarg, -E_UNAVAILABLE, words, &cur);
        goto out;
    }
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "succeeded"))) {
        const cJSON *node;

        holder = kv_value(range_kv(reply, 0), &hlen);
        who = holder != NULL ? cJSON_ParseWithLength(holder, hlen) : NULL;
        node = cJSON_GetObjectItemCaseSensitive(who, "node");
        err_set(&words,
                "node '%s' of the fleet holds the lock of '%s' and is renewing it; this node "
                "takes the new version when it comes",
                cJSON_IsString(node) ? node->valuestring : "?", l->name);
        lock_drop(l);
        cb(cbarg, -E_BUSY, words, &cur);
        goto out;
    }
    l->rev = etcd_int(cJSON_GetObjectItemCaseSensitive(reply, "header"), "revision");
    kv = range_kv(reply, 1);
    if ((l->cur = kv_value(kv, &l->cur_len)) != NULL &&
        (o = cJSON_ParseWithLength(l->cur, l->cur_len)) != NULL) {
        const cJSON *ser = cJSON_GetObjectItemCaseSensitive(o, "serial");
        const cJSON *na = cJSON_GetObjectItemCaseSensitive(o, "not_after");
        const cJSON *node = cJSON_GetObjectItemCaseSensitive(o, "node");

        cur.serial = cJSON_IsString(ser) ? ser->valuestring : NULL;
        cur.not_after = cJSON_IsNumber(na) ? (int64_t)na->valuedouble : 0;
        cur.node = cJSON_IsString(node) ? node->valuestring : NULL;
    }
    log_info("fleet: node '%s' took the lock of '%s'", fleet_node(l->fleet), l->name);
    cb(cbarg, 0, NULL, &cur);
out:
    cJSON_Delete(o);
    cJSON_Delete(who);
    free(holder);
    free(words);
}

int
fleet_lock(struct fleet *fleet, const char *name, fleet_lock_cb cb, void *arg, char **cause)
{
    struct fleet_locks *l = NULL;
    cJSON *body = NULL, *ok, *fail, *put;
    char key[512], cur[512], lease[32], value[256];
    int64_t id = fleet_lease_id(fleet);
    int rc = -E_NOMEM;

    if (id == 0) {
        err_set(cause, "this node is not in the fleet now (etcd not reached yet); a shared name "
                       "is not ordered without the fleet's lock");
        return -E_UNAVAILABLE;
    }
    if (lock_find(fleet, name) != NULL) {
        err_set(cause, "this node is already renewing '%s' under the fleet's lock", name);
        return -E_BUSY;
    }
    fleet_lock_key(fleet, name, key, sizeof(key));
    snprintf(cur, sizeof(cur), "%scerts/%s/current", fleet_prefix(fleet), name);
    snprintf(lease, sizeof(lease), "%lld", (long long)id);
    snprintf(value, sizeof(value), "{\"node\":\"%s\",\"lease\":%lld}", fleet_node(fleet),
             (long long)id);
    if ((l = calloc(1, sizeof(*l))) == NULL || (l->name = strdup(name)) == NULL)
        goto out;
    l->fleet = fleet;
    l->cb = cb;
    l->arg = arg;
    if ((body = etcd_txn_if_absent(key, &ok)) == NULL ||
        (fail = cJSON_AddArrayToObject(body, "failure")) == NULL ||
        (put = etcd_txn_op(ok, "request_put", key)) == NULL ||
        etcd_add_b64(put, "value", value, strlen(value)) != 0 ||
        cJSON_AddStringToObject(put, "lease", lease) == NULL ||
        etcd_txn_op(ok, "request_range", cur) == NULL ||
        etcd_txn_op(fail, "request_range", key) == NULL ||
        etcd_txn_op(fail, "request_range", cur) == NULL)
        goto out;
    l->next = *fleet_locks_slot(fleet);
    *fleet_locks_slot(fleet) = l;
    if ((rc = etcd_call(fleet_etcd(fleet), "/v3/kv/txn", body, on_locked, l, &l->call, cause)) !=
        0) {
        body = NULL;
        lock_drop(l);
        l = NULL;
        goto out;
    }
    body = NULL;
    l = NULL;
    rc = 0;
out:
    cJSON_Delete(body);
    if (l != NULL) {
        free(l->name);
        free(l);
    }
    return rc;
}

static void
on_unlocked(void *arg, int rc, const char *cause, const cJSON *reply)
{
    struct fleet_locks *l = arg;

    l->call = NULL;
    if (rc != 0)
        log_warn("fleet: could not release the lock of '%s' (%s); it goes with the node's "
                 "lease",
                 l->name, cause != NULL ? cause : "no answer");
    else if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "succeeded")))
        log_warn("fleet: the lock of '%s' was no longer this node's (its lease expired)", l->name);
    else
        log_info("fleet: node '%s' released the lock of '%s'", fleet_node(l->fleet), l->name);
    lock_drop(l);
}

/* Deletes the lock key if it is still the one this node made. */
static void
release(struct fleet_locks *l)
{
    cJSON *body = cJSON_CreateObject(), *cmp, *c, *ok;
    char key[512], rev[32], *cause = NULL;

    fleet_lock_key(l->fleet, l->name, key, sizeof(key));
    snprintf(rev, sizeof(rev), "%lld", (long long)l->rev);
    if (body == NULL || (cmp = cJSON_AddArrayToObject(body, "compare")) == NULL ||
        (c = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(cmp, c) ||
        etcd_add_b64(c, "key", key, strlen(key)) != 0 ||
        cJSON_AddStringToObject(c, "target", "CREATE") == NULL ||
        cJSON_AddStringToObject(c, "create_revision", rev) == NULL ||
        (ok = cJSON_AddArrayToObject(body, "success")) == NULL ||
        etcd_txn_op(ok, "request_delete_range", key) == NULL) {
        cJSON_Delete(body);
        lock_drop(l);
        return;
    }
    if (etcd_call(fleet_etcd(l->fleet), "/v3/kv/txn", body, on_unlocked, l, &l->call, &cause) !=
        0) {
        log_warn("fleet: could not release the lock of '%s' (%s); it goes with the node's "
                 "lease",
                 l->name, cause != NULL ? cause : "error");
        free(cause);
        lock_drop(l);
    }
}

void
fleet_unlock(struct fleet *fleet, const char *name)
{
    struct fleet_locks *l = fleet != NULL ? lock_find(fleet, name) : NULL;

    if (l == NULL || l->rev == 0 || l->release)
        return;
    l->release = 1;
    if (!fleet_publishing(fleet, name))
        release(l);
}

void
fleet_lock_published(struct fleet *fleet, const char *name)
{
    struct fleet_locks *l = lock_find(fleet, name);

    if (l != NULL && l->rev != 0 && l->release && l->call == NULL)
        release(l);
}

void
fleet_take_current(struct fleet *fleet, const char *name)
{
    struct fleet_locks *l = lock_find(fleet, name);

    if (l != NULL && l->cur != NULL)
        fleet_take_record(fleet, name, l->cur, l->cur_len);
}

void
fleet_fence(const struct fleet *fleet, const char *name, cJSON *compare)
{
    int64_t rev = fleet_lock_revision(fleet, name);
    cJSON *c;
    char key[512], text[32];

    if (rev == 0 || (c = cJSON_CreateObject()) == NULL)
        return;
    fleet_lock_key(fleet, name, key, sizeof(key));
    snprintf(text, sizeof(text), "%lld", (long long)rev);
    if (!cJSON_AddItemToArray(compare, c)) {
        cJSON_Delete(c);
        return;
    }
    etcd_add_b64(c, "key", key, strlen(key));
    cJSON_AddStringToObject(c, "target", "CREATE");
    cJSON_AddStringToObject(c, "create_revision", text);
}

char *
fleet_meta_acme(const unsigned char *meta, size_t len)
{
    cJSON *root = meta != NULL ? cJSON_ParseWithLength((const char *)meta, len) : NULL;
    cJSON *a =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "extra"), "acme");
    char *text = NULL;

    if (cJSON_IsObject(a)) {
        /* The order and the account are this node's: another node uses its own. */
        cJSON_DeleteItemFromObjectCaseSensitive(a, "order");
        cJSON_DeleteItemFromObjectCaseSensitive(a, "account");
        cJSON_DeleteItemFromObjectCaseSensitive(a, "last_resort");
        text = cJSON_PrintUnformatted(a);
    }
    cJSON_Delete(root);
    return text;
}

void
fleet_mark_shared(struct fleet *fleet, const char *name)
{
    const struct cert_settings *s = deploy_settings(fleet_deploy(fleet), name);
    cJSON *changes;
    char *cause = NULL;

    if (s != NULL && s->shared)
        return;
    if ((changes = cJSON_CreateObject()) == NULL ||
        cJSON_AddTrueToObject(changes, "shared") == NULL ||
        deploy_settings_change(fleet_deploy(fleet), name, changes, NULL, NULL, &cause) != 0)
        log_warn("fleet: could not mark '%s' as shared: %s", name, cause ? cause : "error");
    free(cause);
    cJSON_Delete(changes);
}

void
fleet_locks_stop(struct fleet *fleet)
{
    for (struct fleet_locks *l = *fleet_locks_slot(fleet); l != NULL; l = l->next) {
        etcd_call_cancel(l->call);
        l->call = NULL;
    }
}

void
fleet_locks_free(struct fleet *fleet)
{
    fleet_locks_stop(fleet);
    while (*fleet_locks_slot(fleet) != NULL)
        lock_drop(*fleet_locks_slot(fleet));
}
