#include "fleet.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config-cluster.h"
#include "config.h"
#include "deploy.h"
#include "env.h"
#include "err.h"
#include "etcd.h"
#include "fleet-def.h"
#include "fleet-int.h"
#include "fleet-lock.h"
#include "events.h"
#include "fsutil.h"
#include "log.h"
#include "record.h"
#include "store.h"
#include "version.h"
#include "view.h"

/* The node's lease: its key goes 15 s after the node stops renewing it. */
#define FLEET_LEASE_TTL 15
#define FLEET_KEEPALIVE_MS 5000
#define FLEET_RETRY_MS 2000

/* A record waiting for the commit of an earlier one of the same name. */
struct fleet_sync {
    struct fleet_sync *next;
    struct fleet *fleet;
    char *name;
    char *serial;
    unsigned version;
    char *waiting; /* the newest record text that arrived meanwhile, or NULL */
    size_t waiting_len;
};

/* A version of a shared certificate on its way to etcd. */
struct fleet_pub {
    struct fleet_pub *next;
    struct fleet *fleet;
    uv_work_t work;
    char *name;
    unsigned local; /* the store's version */
    char *serial;
    int64_t not_after;
    unsigned char *fullchain, *key;
    size_t fullchain_len, key_len;
    int rc;
    char *cause;
    int again;           /* another change came while this one was on its way */
    unsigned *jobs;      /* the agent's count of thread-pool jobs */
    unsigned char *meta; /* the version's meta.json */
    size_t meta_len;
};

struct fleet {
    const struct env *env;
    struct store *store;
    struct deploy *deploy;
    struct fleet_pub *pubs;
    struct fleet_commit commit;
    const struct config_cluster *cfg;
    struct etcd *etcd;
    struct etcd_watch *watch;
    struct etcd_call *call; /* grant, announce, keepalive or catch-up in flight */
    unsigned char key[FLEETKEY_LEN];
    char *prefix;    /* /certagent/FLEET/ */
    char *certs;     /* /certagent/FLEET/certs/ */
    char *cert_file; /* client certificate (a store's live files or the config's) */
    char *key_file;
    int64_t lease; /* 0: none held */
    int joined;    /* announced and caught up */
    int resync;    /* the watch's history was compacted: read the keys again */
    int stopping;
    uv_timer_t timer; /* keep-alive and retries */
    struct fleet_sync *syncs;
    struct view *view; /* view.c: this node's status in etcd, fleet_behind/_unreachable */
    char *join_warned; /* the reason of the join failure logged as a warning, until a join */
    struct fleet_locks *locks; /* lock.c */
    struct fleet_defs *defs;   /* def.c */
    int (*ca_known)(void *ctx, const char *ca);
    void *ca_ctx;
    fleet_def_order_fn def_order; /* fleet_set_def_order */
    void *def_order_ctx;
};

static void join(struct fleet *fleet);
static void publish_all(struct fleet *fleet);
static void defs_sweep(struct fleet *fleet, const cJSON *kvs);

int
fleet_new(const struct env *env, struct store *store, struct deploy *deploy,
          const struct fleet_commit *commit, struct fleet **out, char **cause)
{
    struct fleet *f = calloc(1, sizeof(*f));

    (void)cause;
    *out = NULL;
    if (f == NULL)
        return -E_NOMEM;
    f->env = env;
    f->store = store;
    f->deploy = deploy;
    f->commit = *commit;
    f->cfg = env->config->cluster;
    if (f->cfg != NULL && view_new(&(struct view_inputs){env, store, deploy, f->cfg->fleet,
                                                         f->cfg->node, f->cfg->fleet_grace},
                                   &f->view) != 0) {
        free(f);
        return -E_NOMEM;
    }
    uv_timer_init(env->loop, &f->timer);
    f->timer.data = f;
    *out = f;
    return 0;
}

int
fleet_enabled(const struct fleet *fleet)
{
    return fleet != NULL && fleet->cfg != NULL;
}

int
fleet_reachable(const struct fleet *fleet)
{
    return fleet != NULL && etcd_reachable(fleet->etcd);
}

uint64_t
fleet_etcd_requests(const struct fleet *fleet)
{
    return fleet != NULL ? etcd_requests(fleet->etcd) : 0;
}

static void
on_retry(uv_timer_t *t)
{
    join(t->data);
}

static void
retry_later(struct fleet *fleet)
{
    if (!fleet->stopping)
        uv_timer_start(&fleet->timer, on_retry, FLEET_RETRY_MS, 0);
}

static struct fleet_sync *
sync_find(struct fleet *fleet, const char *name)
{
    for (struct fleet_sync *s = fleet->syncs; s != NULL; s = s->next) {
        if (strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

static void sync_record(struct fleet *fleet, const char *name, const char *text, size_t len);

static void
sync_done(void *arg, int rc, const char *cause)
{
    struct fleet_sync *s = arg, **pp;
    struct fleet *fleet = s->fleet;

    if (fleet == NULL) /* the fleet stopped while the commit ran */
        goto out;
    for (pp = &fleet->syncs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    if (rc == 0) {
        log_info("fleet: stored '%s' fleet version %u (serial %s) from the fleet", s->name,
                 s->version, s->serial);
        fleet_mark_shared(fleet, s->name);
    } else
        log_warn("fleet: could not store '%s' fleet version %u: %s (%s)", s->name, s->version,
                 cause != NULL ? cause : "failed", err_name(rc));
    if (s->waiting != NULL && !fleet->stopping)
        sync_record(fleet, s->name, s->waiting, s->waiting_len);
out:
    free(s->waiting);
    free(s->name);
    free(s->serial);
    free(s);
}

/* A record of name (its text from etcd): opened, compared with the store, stored. */
static void
sync_record(struct fleet *fleet, const char *name, const char *text, size_t len)
{
    struct fleet_record rec;
    const struct store_cert *cert;
    const struct store_version *cur = NULL;
    struct fleet_sync *s;
    char *cause = NULL;
    int rc;

    if ((s = sync_find(fleet, name)) != NULL) {
        char *copy = malloc(len + 1);

        if (copy != NULL) {
            memcpy(copy, text, len);
            copy[len] = '\0';
            free(s->waiting);
            s->waiting = copy;
            s->waiting_len = len;
        }
        return;
    }
    if (!fleet_def_allows(fleet, name)) {
        log_debug("fleet: '%s' is for other tags; not taken", name);
        return;
    }
    if ((rc = record_open(fleet->key, fleet->cfg->fleet, name, text, len, &rec, &cause)) != 0) {
        log_warn("fleet: refused the record of '%s': %s; the local store is unchanged", name,
                 cause != NULL ? cause : err_name(rc));
        free(cause);
        return;
    }
    view_record(fleet->view, name, rec.version, rec.serial, rec.not_after, rec.node);
    if (view_left(fleet->deploy, name)) {
        log_info("fleet: '%s' left the fleet on this node, so its fleet version %u is not "
                 "taken (certctl set %s --shared takes the fleet's next version)",
                 name, rec.version, name);
        goto out;
    }
    if ((cert = store_find(fleet->store, name)) != NULL && cert->current != 0)
        cur = store_current(cert);
    if (cur != NULL && record_same_serial(cur->serial, rec.serial)) {
        log_debug("fleet: '%s' is up to date (serial %s)", name, rec.serial);
        goto out;
    }
    /* A tie (two versions issued in the same second) goes to the fleet's record, what every
     * node takes: keeping the local one would leave the nodes on two serials for good. */
    if (cur != NULL && cur->not_after > rec.not_after) {
        log_info("fleet: '%s': the local version %u expires later than the fleet's "
                 "version %u (serial %s); keeping the local one",
                 name, cert->current, rec.version, rec.serial);
        goto out;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL || (s->name = strdup(name)) == NULL ||
        (s->serial = strdup(rec.serial)) == NULL) {
        if (s != NULL) {
            free(s->name);
            free(s);
        }
        log_error("fleet: out of memory taking '%s'", name);
        goto out;
    }
    s->fleet = fleet;
    s->version = rec.version;
    s->next = fleet->syncs;
    fleet->syncs = s;
    log_info("fleet: taking '%s' fleet version %u (serial %s, issued by node %s)", name,
             rec.version, rec.serial, rec.node);
    rc = fleet_commit_with_acme(fleet, name, &rec, sync_done, s, &cause);
    if (rc != 0) {
        sync_done(s, rc, cause);
        free(cause);
    }
out:
    record_clear(&rec);
}

/*
 * The certificate name of a key of the certs/ range (caller frees) when the key is
 * NAME/current or NAME/def (*is_def), else NULL.  The name is not checked yet.
 */
static char *
cert_kv_name(struct fleet *fleet, const cJSON *kv, int *is_def)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(kv, "key");
    unsigned char *key = NULL;
    size_t klen = 0, plen = strlen(fleet->certs);
    char *name = NULL, *slash;

    if (!cJSON_IsString(k) || etcd_unb64(k->valuestring, &key, &klen) != 0 || klen <= plen ||
        memcmp(key, fleet->certs, plen) != 0)
        goto out;
    if ((name = strdup((char *)key + plen)) == NULL || (slash = strchr(name, '/')) == NULL ||
        (strcmp(slash, "/current") != 0 && strcmp(slash, "/def") != 0)) {
        free(name);
        name = NULL;
        goto out;
    }
    *is_def = strcmp(slash, "/def") == 0;
    *slash = '\0';
out:
    free(key);
    return name;
}

/* A key of the certs/ range: NAME/def definitions and NAME/current records; the rest is not
 * ours yet.  pass: 1 definitions only, 0 records only, -1 both. */
static void
on_cert_kv(struct fleet *fleet, const cJSON *kv, int pass)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(kv, "value");
    unsigned char *val = NULL;
    size_t vlen = 0;
    char *name;
    int is_def = 0;

    if ((name = cert_kv_name(fleet, kv, &is_def)) == NULL || (pass >= 0 && pass != is_def))
        goto out;
    if (store_name_valid(name, NULL) != 0) {
        log_warn("fleet: ignored a record under an invalid certificate name in etcd");
        goto out;
    }
    if (!cJSON_IsString(v) || etcd_unb64(v->valuestring, &val, &vlen) != 0) {
        log_warn("fleet: refused the record of '%s': its value is not base64; the local store "
                 "is unchanged",
                 name);
        goto out;
    }
    if (is_def) {
        fleet_def_seen(fleet, name, (char *)val, vlen);
    } else {
        /* Even one that does not open: some node ordered it, none orders it from its
         * definition again. */
        fleet_def_record_seen(fleet, name);
        sync_record(fleet, name, (char *)val, vlen);
    }
out:
    if (val != NULL) {
        OPENSSL_cleanse(val, vlen);
        free(val);
    }
    free(name);
}

static void
on_watch_event(void *arg, const cJSON *event, int64_t revision)
{
    struct fleet *fleet = arg;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(event, "type");
    const cJSON *kv = cJSON_GetObjectItemCaseSensitive(event, "kv");

    (void)revision;
    /* PUT is the default and the gateway leaves it out. */
    if (type != NULL && cJSON_IsString(type) && strcmp(type->valuestring, "DELETE") == 0) {
        int is_def = 0;
        char *name = cert_kv_name(fleet, kv, &is_def);

        /* A deleted definition: no node orders it from there any more. */
        if (name != NULL && is_def && store_name_valid(name, NULL) == 0)
            fleet_def_gone(fleet, name);
        free(name);
        return;
    }
    if (type != NULL && cJSON_IsString(type) && strcmp(type->valuestring, "PUT") != 0)
        return;
    on_cert_kv(fleet, kv, -1);
}

static void
on_watch_up(void *arg, int connected)
{
    struct fleet *fleet = arg;

    if (connected == ETCD_WATCH_COMPACTED) {
        /* Records put and definitions deleted while the watch was away are not in what it
         * sends from now: join() reads the keys again (now, or after the call in flight). */
        fleet->resync = 1;
        if (fleet->call == NULL && !fleet->stopping)
            uv_timer_start(&fleet->timer, on_retry, 0, 0);
    } else if (connected) {
        log_debug("fleet: watching the fleet's certificates");
    }
}

static void
on_catch_up(void *arg, int rc, const char *cause, const cJSON *reply)
{
    struct fleet *fleet = arg;
    const cJSON *kv;
    int64_t rev;
    char *words = NULL;

    fleet->call = NULL;
    if (rc != 0) {
        log_warn("fleet: cannot read the fleet's certificates: %s; retrying", cause);
        fleet->resync = fleet->joined; /* a read again after a compaction: not done yet */
        retry_later(fleet);
        return;
    }
    rev = etcd_int(cJSON_GetObjectItemCaseSensitive(reply, "header"), "revision");
    /* Definitions first: they say whether this node takes the records. */
    cJSON_ArrayForEach(kv, cJSON_GetObjectItemCaseSensitive(reply, "kvs"))
        on_cert_kv(fleet, kv, 1);
    cJSON_ArrayForEach(kv, cJSON_GetObjectItemCaseSensitive(reply, "kvs"))
        on_cert_kv(fleet, kv, 0);
    if (fleet->joined)
        defs_sweep(fleet, cJSON_GetObjectItemCaseSensitive(reply, "kvs"));
    if (fleet->watch == NULL &&
        etcd_watch_start(fleet->etcd, fleet->certs, rev + 1, on_watch_event, on_watch_up, fleet,
                         &fleet->watch, &words) != 0) {
        log_error("fleet: cannot watch the fleet's certificates: %s", words ? words : "?");
        free(words);
    }
    if (fleet->joined) {
        log_info("fleet: read the fleet's certificates again (revision %lld)", (long long)rev);
        uv_timer_start(&fleet->timer, on_retry, FLEET_KEEPALIVE_MS, 0);
        return;
    }
    fleet->joined = 1;
    view_joined(fleet->view);
    log_info("fleet: node '%s' joined fleet '%s' (%zu etcd endpoints)", fleet->cfg->node,
             fleet->cfg->fleet, fleet->cfg->netcd);
    publish_all(fleet);
    uv_timer_start(&fleet->timer, on_retry, FLEET_KEEPALIVE_MS, 0);
}

/* After a read again: the definitions this node knows that etcd no longer has were deleted
 * while the watch was away. */
static void
defs_sweep(struct fleet *fleet, const cJSON *kvs)
{
    const cJSON *kv;
    char **names = calloc((size_t)cJSON_GetArraySize(kvs) + 1, sizeof(*names));
    size_t n = 0;
    int is_def;

    if (names == NULL)
        return;
    cJSON_ArrayForEach(kv, kvs)
    {
        char *name = cert_kv_name(fleet, kv, &is_def);

        if (name != NULL && is_def)
            names[n++] = name;
        else
            free(name);
    }
    fleet_defs_sweep(fleet, (const char *const *)names, n);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void
catch_up(struct fleet *fleet)
{
    cJSON *body = cJSON_CreateObject();
    char *end = etcd_prefix_end(fleet->certs), *cause = NULL;

    if (body == NULL || end == NULL ||
        etcd_add_b64(body, "key", fleet->certs, strlen(fleet->certs)) != 0 ||
        etcd_add_b64(body, "range_end", end, strlen(end)) != 0) {
        cJSON_Delete(body);
        free(end);
        retry_later(fleet);
        return;
    }
    free(end);
    if (etcd_call(fleet->etcd, "/v3/kv/range", body, on_catch_up, fleet, &fleet->call, &cause) !=
        0) {
        log_warn("fleet: %s", cause ? cause : "cannot read the fleet's certificates");
        free(cause);
        retry_later(fleet);
    }
}

static void
on_announced(void *arg, int rc, const char *cause, const cJSON *reply)
{
    struct fleet *fleet = arg;

    (void)reply;
    fleet->call = NULL;
    if (rc != 0) {
        log_warn("fleet: cannot announce node '%s': %s; retrying", fleet->cfg->node, cause);
        retry_later(fleet);
        return;
    }
    if (fleet->joined)
        uv_timer_start(&fleet->timer, on_retry, FLEET_KEEPALIVE_MS, 0);
    else
        catch_up(fleet);
}

/* nodes/NODE: who this node is, bound to the lease. */
static void
announce(struct fleet *fleet)
{
    cJSON *body = cJSON_CreateObject(), *info = cJSON_CreateObject(), *tags;
    char key[512], lease[32], *text = NULL, *cause = NULL;

    snprintf(key, sizeof(key), "%snodes/%s", fleet->prefix, fleet->cfg->node);
    snprintf(lease, sizeof(lease), "%lld", (long long)fleet->lease);
    if (info != NULL && cJSON_AddStringToObject(info, "node", fleet->cfg->node) != NULL &&
        cJSON_AddStringToObject(info, "version", CERTAGENT_VERSION) != NULL &&
        cJSON_AddNumberToObject(info, "started", (double)time(NULL)) != NULL &&
        (tags = cJSON_AddArrayToObject(info, "tags")) != NULL) {
        for (size_t i = 0; i < fleet->cfg->ntags; i++)
            cJSON_AddItemToArray(tags, cJSON_CreateString(fleet->cfg->tags[i]));
        text = cJSON_PrintUnformatted(info);
    }
    cJSON_Delete(info);
    if (body == NULL || text == NULL || etcd_add_b64(body, "key", key, strlen(key)) != 0 ||
        etcd_add_b64(body, "value", text, strlen(text)) != 0 ||
        cJSON_AddStringToObject(body, "lease", lease) == NULL) {
        cJSON_Delete(body);
        free(text);
        retry_later(fleet);
        return;
    }
    free(text);
    if (etcd_call(fleet->etcd, "/v3/kv/put", body, on_announced, fleet, &fleet->call, &cause) !=
        0) {
        free(cause);
        retry_later(fleet);
    }
}

/*
 * Has a join failure been said since the last join?  Remembers why: once a
 * warning, then the debug log (the reason of one member's TLS failure varies
 * from try to try).
 */
static int
join_said_before(struct fleet *fleet, const char *why)
{
    if (fleet->join_warned != NULL)
        return 1;
    fleet->join_warned = strdup(why);
    return 0;
}

static void
on_granted(void *arg, int rc, const char *cause, const cJSON *reply)
{
    struct fleet *fleet = arg;

    fleet->call = NULL;
    if (rc != 0 || (fleet->lease = etcd_int(reply, "ID")) == 0) {
        const char *why = cause != NULL ? cause : "etcd granted no lease";

        /* A warning the first time, then the debug log: retries every 2 s must not flood
         * the log (fleet_unreachable says that it lasts, view.c). */
        log_msg(join_said_before(fleet, why) ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN,
                "fleet: cannot join fleet '%s': %s; retrying", fleet->cfg->fleet, why);
        retry_later(fleet);
        return;
    }
    free(fleet->join_warned);
    fleet->join_warned = NULL;
    announce(fleet);
}

static void
on_kept_alive(void *arg, int rc, const char *cause, const cJSON *reply)
{
    struct fleet *fleet = arg;
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(reply, "result");

    fleet->call = NULL;
    if (rc != 0) {
        log_debug("fleet: keep-alive failed: %s", cause);
        retry_later(fleet);
        return;
    }
    if (etcd_int(res, "TTL") <= 0) {
        log_info("fleet: the lease of node '%s' expired; joining again", fleet->cfg->node);
        fleet->lease = 0;
        join(fleet);
        return;
    }
    uv_timer_start(&fleet->timer, on_retry, FLEET_KEEPALIVE_MS, 0);
}

/* The next step: a lease, the announcement, the catch-up, or a keep-alive. */
static void
join(struct fleet *fleet)
{
    cJSON *body = cJSON_CreateObject();
    char id[32], *cause = NULL;
    int rc;

    if (fleet->stopping || fleet->call != NULL || body == NULL) {
        cJSON_Delete(body);
        return;
    }
    if (fleet->resync && fleet->joined && fleet->lease != 0) {
        cJSON_Delete(body);
        fleet->resync = 0;
        etcd_watch_stop(fleet->watch);
        fleet->watch = NULL;
        catch_up(fleet);
        return;
    }
    if (fleet->lease == 0) {
        cJSON_AddNumberToObject(body, "TTL", FLEET_LEASE_TTL);
        rc = etcd_call(fleet->etcd, "/v3/lease/grant", body, on_granted, fleet, &fleet->call,
                       &cause);
    } else if (!fleet->joined) {
        cJSON_Delete(body);
        announce(fleet);
        return;
    } else {
        snprintf(id, sizeof(id), "%lld", (long long)fleet->lease);
        cJSON_AddStringToObject(body, "ID", id);
        rc = etcd_call(fleet->etcd, "/v3/lease/keepalive", body, on_kept_alive, fleet,
                       &fleet->call, &cause);
    }
    if (rc != 0) {
        log_warn("fleet: %s", cause != NULL ? cause : "cannot reach etcd");
        free(cause);
        retry_later(fleet);
    }
}

/* Publishing */

static void maybe_publish(struct fleet *fleet, const char *name);

static void
pub_end(struct fleet_pub *p)
{
    struct fleet *fleet = p->fleet;
    struct fleet_pub **pp;
    int again = p->again;
    char *name = p->name;

    if (fleet != NULL) {
        for (pp = &fleet->pubs; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        }
    }
    if (p->key != NULL) {
        OPENSSL_cleanse(p->key, p->key_len);
        free(p->key);
    }
    free(p->fullchain);
    free(p->meta);
    free(p->serial);
    free(p->cause);
    free(p);
    if (fleet != NULL && again && !fleet->stopping)
        maybe_publish(fleet, name);
    else if (fleet != NULL)
        fleet_lock_published(fleet, name);
    free(name);
}

static void
on_published(void *arg, int rc, const char *cause, const cJSON *reply)
{
    struct fleet_pub *p = arg;

    if (p->fleet == NULL) {
        pub_end(p);
        return;
    }
    if (rc != 0)
        log_warn("fleet: could not publish '%s' version %u: %s", p->name, p->local, cause);
    else if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "succeeded")))
        log_warn("fleet: another node wrote a version of '%s' first; version %u of this node "
                 "was not published",
                 p->name, p->local);
    else
        log_info("fleet: published '%s' (local version %u, serial %s) to fleet '%s'", p->name,
                 p->local, p->serial, p->fleet->cfg->fleet);
    pub_end(p);
}

/* The fleet's current record of the name read: write the next one unless it is ours already. */
static void
on_pub_read(void *arg, int rc, const char *cause, const cJSON *reply)
{
    struct fleet_pub *p = arg;
    struct fleet *fleet = p->fleet;
    const cJSON *kv = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "kvs"), 0);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(kv, "value");
    struct fleet_record rec;
    unsigned char *old = NULL;
    size_t oldlen = 0;
    cJSON *o = NULL, *body = NULL, *cmp, *c, *ops, *op, *put;
    char key[512], rev[32], *text = NULL, *words = NULL;
    unsigned next = 1;

    if (fleet == NULL) {
        pub_end(p);
        return;
    }
    if (rc != 0) {
        log_warn("fleet: could not publish '%s': %s", p->name, cause);
        pub_end(p);
        return;
    }
    snprintf(key, sizeof(key), "%s%s/current", fleet->certs, p->name);
    if (cJSON_IsString(v) && etcd_unb64(v->valuestring, &old, &oldlen) == 0 &&
        (o = cJSON_ParseWithLength((char *)old, oldlen)) != NULL) {
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "version");
        const cJSON *ser = cJSON_GetObjectItemCaseSensitive(o, "serial");
        const cJSON *na = cJSON_GetObjectItemCaseSensitive(o, "not_after");

        if (cJSON_IsString(ser) && record_same_serial(ser->valuestring, p->serial)) {
            log_debug("fleet: '%s' serial %s is the fleet's already", p->name, p->serial);
            goto out;
        }
        /* On a tie only the lock's holder replaces the fleet's version (it just ordered
         * under the lock); the others take the fleet's, so that all end on one serial. */
        if (cJSON_IsNumber(na) && ((int64_t)na->valuedouble > p->not_after ||
                                   ((int64_t)na->valuedouble == p->not_after &&
                                    fleet_lock_revision(fleet, p->name) == 0))) {
            log_info("fleet: the fleet's version of '%s' expires no earlier than local version "
                     "%u; not published",
                     p->name, p->local);
            /* An older local version (an order that ended late) gives way to the fleet's. */
            sync_record(fleet, p->name, (char *)old, oldlen);
            goto out;
        }
        if (cJSON_IsNumber(ver) && ver->valuedouble >= 1 && ver->valuedouble < 4e9)
            next = (unsigned)ver->valuedouble + 1;
    }
    memset(&rec, 0, sizeof(rec));
    rec.version = next;
    rec.serial = p->serial;
    rec.not_after = p->not_after;
    rec.node = fleet->cfg->node;
    rec.fullchain = (char *)p->fullchain;
    rec.key_pem = (char *)p->key;
    rec.acme = fleet_meta_acme(p->meta, p->meta_len);
    rc = record_seal(fleet->key, fleet->cfg->fleet, p->name, &rec, &text, &words);
    free(rec.acme);
    if (rc != 0) {
        log_error("fleet: could not publish '%s': %s", p->name, words ? words : "?");
        goto out;
    }
    /* Fencing: the put happens only if the key is still what was read. */
    snprintf(rev, sizeof(rev), "%lld", (long long)etcd_int(kv, "mod_revision"));
    body = cJSON_CreateObject();
    cmp = cJSON_AddArrayToObject(body, "compare");
    c = cJSON_CreateObject();
    cJSON_AddItemToArray(cmp, c);
    etcd_add_b64(c, "key", key, strlen(key));
    if (kv != NULL) {
        cJSON_AddStringToObject(c, "target", "MOD");
        cJSON_AddStringToObject(c, "mod_revision", rev);
    } else {
        cJSON_AddStringToObject(c, "target", "CREATE");
        cJSON_AddStringToObject(c, "create_revision", "0");
    }
    fleet_fence(fleet, p->name, cmp);
    ops = cJSON_AddArrayToObject(body, "success");
    op = cJSON_CreateObject();
    cJSON_AddItemToArray(ops, op);
    put = cJSON_AddObjectToObject(op, "request_put");
    if (put == NULL || etcd_add_b64(put, "key", key, strlen(key)) != 0 ||
        etcd_add_b64(put, "value", text, strlen(text)) != 0) {
        cJSON_Delete(body);
        goto out;
    }
    if (etcd_call(fleet->etcd, "/v3/kv/txn", body, on_published, p, NULL, &words) != 0) {
        log_warn("fleet: could not publish '%s': %s", p->name, words ? words : "?");
        goto out;
    }
    p = NULL;
out:
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    free(words);
    free(old);
    cJSON_Delete(o);
    if (p != NULL)
        pub_end(p);
}

static void
pub_read_files(uv_work_t *w)
{
    struct fleet_pub *p = w->data;

    /* The fleet outlives the job: fleet_free comes after the agent waited for its jobs. */
    p->rc = store_read_file(p->fleet->store, p->name, p->local, "fullchain.pem", &p->fullchain,
                            &p->fullchain_len, &p->cause);
    if (p->rc == 0)
        p->rc = store_read_file(p->fleet->store, p->name, p->local, "privkey.pem", &p->key,
                                &p->key_len, &p->cause);
    if (p->rc == 0) /* how it was ordered, for the node that renews it next */
        (void)store_read_file(p->fleet->store, p->name, p->local, "meta.json", &p->meta,
                              &p->meta_len, NULL);
}

static void
pub_files_read(uv_work_t *w, int status)
{
    struct fleet_pub *p = w->data;
    struct fleet *fleet = p->fleet;
    cJSON *body;
    char key[512], *words = NULL;

    (*p->jobs)--;
    if (fleet == NULL || fleet->stopping) {
        pub_end(p);
        return;
    }
    if (status != 0 || p->rc != 0) {
        log_warn("fleet: could not publish '%s': %s", p->name,
                 p->cause != NULL ? p->cause : "the store's files could not be read");
        pub_end(p);
        return;
    }
    snprintf(key, sizeof(key), "%s%s/current", fleet->certs, p->name);
    if ((body = cJSON_CreateObject()) == NULL ||
        etcd_add_b64(body, "key", key, strlen(key)) != 0 ||
        etcd_call(fleet->etcd, "/v3/kv/range", body, on_pub_read, p, NULL, &words) != 0) {
        log_warn("fleet: could not publish '%s': %s", p->name, words ? words : "out of memory");
        free(words);
        pub_end(p);
    }
}

/* name's current version goes to the fleet when it is shared and was made on this node. */
static void
maybe_publish(struct fleet *fleet, const char *name)
{
    const struct cert_settings *s = deploy_settings(fleet->deploy, name);
    const struct store_cert *cert = store_find(fleet->store, name);
    const struct store_version *cur;
    struct fleet_pub *p;

    if (!fleet->joined || fleet->stopping ||
        ((s == NULL || !s->shared) && fleet_lock_revision(fleet, name) == 0) || cert == NULL ||
        cert->current == 0 || (cur = store_current(cert)) == NULL ||
        cur->source == CERT_SOURCE_FLEET || !cur->has_key)
        return;
    for (p = fleet->pubs; p != NULL; p = p->next) {
        if (strcmp(p->name, name) == 0) {
            p->again = 1;
            return;
        }
    }
    if ((p = calloc(1, sizeof(*p))) == NULL || (p->name = strdup(name)) == NULL ||
        (p->serial = strdup(cur->serial != NULL ? cur->serial : "")) == NULL) {
        if (p != NULL) {
            free(p->name);
            free(p);
        }
        return;
    }
    p->fleet = fleet;
    p->jobs = fleet->env->jobs;
    p->local = cert->current;
    p->not_after = cur->not_after;
    p->work.data = p;
    p->next = fleet->pubs;
    fleet->pubs = p;
    if (uv_queue_work(fleet->env->loop, &p->work, pub_read_files, pub_files_read) != 0) {
        log_warn("fleet: could not publish '%s': the thread pool refused the job", name);
        pub_end(p);
        return;
    }
    (*fleet->env->jobs)++;
}

static void
on_event(void *arg, const struct event *ev)
{
    if (ev->name != NULL)
        maybe_publish(arg, ev->name);
}

/* At join: every shared certificate this node made and the fleet may not have. */
static void
publish_all(struct fleet *fleet)
{
    for (size_t i = 0; i < store_count(fleet->store); i++)
        maybe_publish(fleet, store_at(fleet->store, i)->name);
}

/* The client certificate's files: the store's live copy of client_cert, or the config's. */
static int
client_files(struct fleet *fleet, char **cause)
{
    const struct config_cluster *c = fleet->cfg;
    char *live = NULL, *dir = NULL;
    int rc = -E_NOMEM;

    if (c->client_cert == NULL) {
        if (c->client_cert_file != NULL &&
            ((fleet->cert_file = strdup(c->client_cert_file)) == NULL ||
             (fleet->key_file = strdup(c->client_key_file)) == NULL))
            return -E_NOMEM;
        return 0;
    }
    if (store_find(fleet->store, c->client_cert) == NULL) {
        err_set(cause,
                "cluster.client_cert names '%s', which is not in the store (import it with "
                "certctl import %s --cert FILE --key FILE)",
                c->client_cert, c->client_cert);
        return -E_NOT_FOUND;
    }
    if ((live = fsutil_join(store_state_dir(fleet->store), "live")) == NULL ||
        (dir = fsutil_join(live, c->client_cert)) == NULL ||
        (fleet->cert_file = fsutil_join(dir, "fullchain.pem")) == NULL ||
        (fleet->key_file = fsutil_join(dir, "privkey.pem")) == NULL)
        goto out;
    rc = 0;
out:
    free(live);
    free(dir);
    return rc;
}

int
fleet_start(struct fleet *fleet, char **cause)
{
    const struct config_cluster *c = fleet->cfg;
    struct etcd_options opts;
    size_t n;
    int rc;

    if (c == NULL) {
        view_note_left(fleet->store, fleet->deploy);
        return 0;
    }
    if ((rc = fleetkey_read(c->fleet_key_file, fleet->key, cause)) != 0 ||
        (rc = client_files(fleet, cause)) != 0)
        return rc;
    n = strlen(c->fleet) + 32;
    if ((fleet->prefix = malloc(n)) == NULL || (fleet->certs = malloc(n)) == NULL)
        return -E_NOMEM;
    snprintf(fleet->prefix, n, "/certagent/%s/", c->fleet);
    snprintf(fleet->certs, n, "/certagent/%s/certs/", c->fleet);
    for (size_t i = 0; i < c->netcd; i++) {
        if (strncmp(c->etcd[i], "http://", 7) == 0)
            log_warn("fleet: etcd endpoint %s is plain http:// (accepted on loopback only): "
                     "nothing protects the fleet's traffic there",
                     c->etcd[i]);
    }
    memset(&opts, 0, sizeof(opts));
    opts.endpoints = c->etcd;
    opts.nendpoints = c->netcd;
    opts.trust = c->trust;
    opts.cert_file = fleet->cert_file;
    opts.key_file = fleet->key_file;
    view_check_client_cert(fleet->cert_file);
    if ((rc = etcd_new(fleet->env->loop, &opts, &fleet->etcd, cause)) != 0 ||
        (rc = view_start(fleet->view, fleet->etcd)) != 0)
        return rc;
    if ((rc = events_subscribe(fleet->env->events,
                               EVENT_MASK(EVENT_CERT_CHANGED) | EVENT_MASK(EVENT_SETTINGS_CHANGED),
                               on_event, fleet)) != 0)
        return rc;
    join(fleet);
    return 0;
}

void
fleet_stop(struct fleet *fleet)
{
    if (fleet == NULL || fleet->stopping)
        return;
    fleet->stopping = 1;
    view_stop(fleet->view);
    events_unsubscribe(fleet->env->events, on_event, fleet);
    uv_timer_stop(&fleet->timer);
    etcd_call_cancel(fleet->call);
    fleet->call = NULL;
    etcd_watch_stop(fleet->watch);
    fleet->watch = NULL;
    fleet_defs_stop(fleet);
    fleet_locks_stop(fleet);
}

static void
on_closed(uv_handle_t *h)
{
    struct fleet *fleet = h->data;

    free(fleet);
}

void
fleet_free(struct fleet *fleet)
{
    if (fleet == NULL)
        return;
    fleet_stop(fleet);
    while (fleet->syncs != NULL) {
        struct fleet_sync *s = fleet->syncs;

        /* A commit in flight calls sync_done later: it must find its fleet gone. */
        fleet->syncs = s->next;
        s->next = NULL;
        s->fleet = NULL;
    }
    /* Publications: those in the thread pool end in pub_files_read (stopping), the rest
     * in their etcd callbacks, which etcd_free cancels. */
    while (fleet->pubs != NULL) {
        struct fleet_pub *p = fleet->pubs;

        fleet->pubs = p->next;
        p->next = NULL;
        p->fleet = NULL;
    }
    view_free(fleet->view);
    free(fleet->join_warned);
    fleet_locks_free(fleet);
    fleet_defs_free(fleet);
    etcd_free(fleet->etcd);
    OPENSSL_cleanse(fleet->key, sizeof(fleet->key));
    free(fleet->prefix);
    free(fleet->certs);
    free(fleet->cert_file);
    free(fleet->key_file);
    uv_close((uv_handle_t *)&fleet->timer, on_closed);
}

struct view *
fleet_view(const struct fleet *fleet)
{
    return fleet != NULL ? fleet->view : NULL;
}

/* For lock.c (fleet-int.h) */

struct etcd *
fleet_etcd(const struct fleet *fleet)
{
    return fleet->etcd;
}

int64_t
fleet_lease_id(const struct fleet *fleet)
{
    return fleet->joined && !fleet->stopping ? fleet->lease : 0;
}

const char *
fleet_prefix(const struct fleet *fleet)
{
    return fleet->prefix;
}

const char *
fleet_node(const struct fleet *fleet)
{
    return fleet->cfg->node;
}

struct fleet_locks **
fleet_locks_slot(struct fleet *fleet)
{
    return &fleet->locks;
}

struct store *
fleet_store(const struct fleet *fleet)
{
    return fleet->store;
}

struct deploy *
fleet_deploy(const struct fleet *fleet)
{
    return fleet->deploy;
}

void
fleet_take_record(struct fleet *fleet, const char *name, const char *text, size_t len)
{
    if (fleet->joined && !fleet->stopping)
        sync_record(fleet, name, text, len);
}

int
fleet_commit_with_acme(struct fleet *fleet, const char *name, const struct fleet_record *rec,
                       void (*done)(void *arg, int rc, const char *cause), void *arg, char **cause)
{
    cJSON *root = rec->acme != NULL ? cJSON_CreateObject() : NULL;
    cJSON *a = rec->acme != NULL ? cJSON_Parse(rec->acme) : NULL;
    char *meta = NULL;
    int rc;

    /* Without (readable) "acme" the version is stored without saying how it was ordered. */
    if (root != NULL && cJSON_IsObject(a) && cJSON_AddItemToObject(root, "acme", a))
        a = NULL, meta = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    cJSON_Delete(a);
    rc = fleet->commit.store(fleet->commit.ctx, name, rec->fullchain, rec->key_pem, meta, done,
                             arg, cause);
    free(meta);
    return rc;
}

int
fleet_publishing(const struct fleet *fleet, const char *name)
{
    for (const struct fleet_pub *p = fleet->pubs; p != NULL; p = p->next) {
        if (strcmp(p->name, name) == 0)
            return 1;
    }
    return 0;
}

struct fleet_defs **
fleet_defs_slot(struct fleet *fleet)
{
    return &fleet->defs;
}

const struct env *
fleet_env(const struct fleet *fleet)
{
    return fleet->env;
}

int
fleet_ca_known(const struct fleet *fleet, const char *ca)
{
    return fleet->ca_known == NULL || fleet->ca_known(fleet->ca_ctx, ca);
}

void
fleet_set_ca_known(struct fleet *fleet, int (*known)(void *ctx, const char *ca), void *ctx)
{
    fleet->ca_known = known;
    fleet->ca_ctx = ctx;
}

void
fleet_set_def_order(struct fleet *fleet, fleet_def_order_fn order, void *ctx)
{
    fleet->def_order = order;
    fleet->def_order_ctx = ctx;
}

int
fleet_order_def(struct fleet *fleet, const char *name, const char *def_json,
                void (*done)(void *arg, int rc), void *arg, char **cause)
{
    if (fleet->def_order == NULL) {
        err_set(cause, "this agent does not order certificates from their definitions");
        return -E_INTERNAL;
    }
    return fleet->def_order(fleet->def_order_ctx, name, def_json, done, arg, cause);
}
