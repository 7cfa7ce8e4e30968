#include "view.h"

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "config-cluster.h"
#include "config.h"
#include "deploy.h"
#include "env.h"
#include "err.h"
#include "etcd.h"
#include "events.h"
#include "log.h"
#include "record.h"
#include "store.h"
#include "version.h"

/* A change is written this long after it came, and never sooner than the interval after the
 * last write: a burst of changes (100 certificates taken at once) makes one write. */
#define VIEW_DEBOUNCE_MS 2000
#define VIEW_MIN_INTERVAL_MS 10000
/* The local look at reachability and at certificates that are behind (no network). */
#define VIEW_TICK_MS 5000
#define VIEW_BUCKETS 256
/* The most certificates one status lists (the value must stay small for etcd). */
#define VIEW_MAX_CERTS 2000

/* What the fleet holds of a certificate: its current record, and whether this node is behind. */
struct view_rec {
    struct view_rec *next;
    char *name;
    unsigned version;
    char *serial;
    char *node;
    int64_t not_after;
    int64_t behind_since; /* 0: not behind */
    int behind;           /* flagged (behind for VIEW_BEHIND_AFTER) */
    int deploy_failing;
};

struct view {
    struct view_inputs in;
    char prefix[128]; /* /certagent/FLEET/ */
    struct etcd *etcd;
    struct view_rec *buckets[VIEW_BUCKETS];
    view_health_fn health;
    void *health_arg;
    uv_timer_t write_timer;
    uv_timer_t tick;
    int timers;
    int started, stopping, joined;
    int dirty;
    int writing;
    uint64_t last_write; /* uv_now of the last write's start; 0: none */
    int64_t unreachable_since;
    uint64_t started_ms; /* uv_now at view_start */
    int unreachable;     /* flagged (fleet_grace passed) */
    char host[256];
};

static size_t
bucket_of(const char *name)
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % VIEW_BUCKETS;
}

static struct view_rec *
rec_find(const struct view *v, const char *name)
{
    for (struct view_rec *r = v->buckets[bucket_of(name)]; r != NULL; r = r->next) {
        if (strcmp(r->name, name) == 0)
            return r;
    }
    return NULL;
}

/* Adds each code of "a,b,c" to arr. */
static void
add_codes(cJSON *arr, const char *codes)
{
    const char *p = codes, *comma;
    char one[64];

    while (arr != NULL && p != NULL && *p != '\0') {
        size_t n = (comma = strchr(p, ',')) != NULL ? (size_t)(comma - p) : strlen(p);

        if (n > 0 && n < sizeof(one)) {
            memcpy(one, p, n);
            one[n] = '\0';
            cJSON_AddItemToArray(arr, cJSON_CreateString(one));
        }
        p = comma != NULL ? comma + 1 : NULL;
    }
}

/* The string member key of o, or "". */
static const char *
jstr_or(const cJSON *o, const char *key)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(s) ? s->valuestring : "";
}

/* Does o's "warnings" array hold code? */
static int
find_code(const cJSON *o, const char *code)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "warnings"))
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, code) == 0)
            return 1;
    }
    return 0;
}

int
view_new(const struct view_inputs *in, struct view **out)
{
    struct view *v = calloc(1, sizeof(*v));
    size_t len = sizeof(v->host);

    *out = NULL;
    if (v == NULL)
        return -E_NOMEM;
    v->in = *in;
    snprintf(v->prefix, sizeof(v->prefix), "/certagent/%s/", in->fleet);
    if (uv_os_gethostname(v->host, &len) != 0)
        snprintf(v->host, sizeof(v->host), "%s", in->node);
    *out = v;
    return 0;
}

void
view_set_health(struct view *v, view_health_fn fn, void *arg)
{
    if (v == NULL)
        return;
    v->health = fn;
    v->health_arg = arg;
}

/* The status */

static void schedule_write(struct view *v);

static void
on_written(void *arg, int rc, const char *cause, const cJSON *reply)
{
    struct view *v = arg;

    (void)reply;
    v->writing = 0;
    if (rc != 0) {
        /* Written again once etcd answers (on_tick), not retried against a silent etcd. */
        log_debug("fleet: could not write the status of node '%s': %s", v->in.node,
                  cause != NULL ? cause : err_name(rc));
        v->dirty = 1;
        return;
    }
    if (v->dirty)
        schedule_write(v);
}

/* One certificate of the status: the fleet's, or one this node shares. */
static cJSON *
cert_status(struct view *v, const struct store_cert *cert, int64_t now)
{
    const struct store_version *cur = store_current(cert);
    const struct view_rec *r = rec_find(v, cert->name);
    cJSON *o = cJSON_CreateObject(), *w;
    char codes[512] = "";
    int level = 0;

    if (o == NULL || cur == NULL)
        return o;
    if (v->health != NULL)
        level = v->health(v->health_arg, cert->name, codes, sizeof(codes));
    cJSON_AddStringToObject(o, "name", cert->name);
    cJSON_AddNumberToObject(o, "local_version", cert->current);
    cJSON_AddStringToObject(o, "serial", cur->serial != NULL ? cur->serial : "");
    cJSON_AddNumberToObject(o, "not_after", (double)cur->not_after);
    cJSON_AddNumberToObject(o, "days_left", (double)((cur->not_after - now) / 86400));
    cJSON_AddStringToObject(o, "source", store_source_name(cur->source));
    if (r != NULL && record_same_serial(r->serial, cur->serial))
        cJSON_AddNumberToObject(o, "fleet_version", r->version);
    cJSON_AddStringToObject(o, "health", level >= 2 ? "critical" : level == 1 ? "warning" : "ok");
    w = cJSON_AddArrayToObject(o, "warnings");
    add_codes(w, codes);
    return o;
}

int
view_left(const struct deploy *deploy, const char *name)
{
    const struct cert_settings *s = deploy_settings(deploy, name);

    return s != NULL && s->left;
}

static int
is_fleet_cert(const struct view *v, const char *name)
{
    const struct cert_settings *s = deploy_settings(v->in.deploy, name);

    return !view_left(v->in.deploy, name) &&
           (rec_find(v, name) != NULL || (s != NULL && s->shared));
}

static char *
status_text(struct view *v)
{
    cJSON *o = cJSON_CreateObject(), *certs, *w;
    int64_t now = (int64_t)time(NULL);
    char codes[512] = "", *text = NULL;
    size_t n = 0, local = 0;
    int level = 0;

    if (o == NULL)
        return NULL;
    if (v->health != NULL)
        level = v->health(v->health_arg, NULL, codes, sizeof(codes));
    cJSON_AddStringToObject(o, "node", v->in.node);
    cJSON_AddStringToObject(o, "host", v->host);
    cJSON_AddStringToObject(o, "version", CERTAGENT_VERSION);
    cJSON_AddStringToObject(o, "health", level >= 2 ? "critical" : level == 1 ? "warning" : "ok");
    cJSON_AddNumberToObject(o, "updated", (double)now);
    w = cJSON_AddArrayToObject(o, "warnings");
    add_codes(w, codes);
    if ((certs = cJSON_AddArrayToObject(o, "certificates")) != NULL) {
        for (size_t i = 0; i < store_count(v->in.store); i++) {
            const struct store_cert *cert = store_at(v->in.store, i);

            if (cert->current == 0)
                continue;
            if (!is_fleet_cert(v, cert->name) || n >= VIEW_MAX_CERTS) {
                local++;
                continue;
            }
            cJSON_AddItemToArray(certs, cert_status(v, cert, now));
            n++;
        }
    }
    cJSON_AddNumberToObject(o, "local_certificates", (double)local);
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static void
write_now(struct view *v)
{
    cJSON *body;
    char key[512], *text = NULL, *cause = NULL;

    if (v->stopping || !v->joined || v->writing || v->etcd == NULL)
        return;
    v->dirty = 0;
    snprintf(key, sizeof(key), "%sstatus/%s", v->prefix, v->in.node);
    if ((text = status_text(v)) == NULL || (body = cJSON_CreateObject()) == NULL ||
        etcd_add_b64(body, "key", key, strlen(key)) != 0 ||
        etcd_add_b64(body, "value", text, strlen(text)) != 0) {
        if (text != NULL)
            cJSON_Delete(body);
        free(text);
        v->dirty = 1;
        return;
    }
    free(text);
    v->last_write = uv_now(v->in.env->loop);
    v->writing = 1;
    if (etcd_call(v->etcd, "/v3/kv/put", body, on_written, v, NULL, &cause) != 0) {
        v->writing = 0;
        v->dirty = 1;
        free(cause);
    }
}

static void
on_write_timer(uv_timer_t *t)
{
    write_now(t->data);
}

/* The status is written VIEW_DEBOUNCE_MS from now, and not within VIEW_MIN_INTERVAL_MS of the
 * last write. */
static void
schedule_write(struct view *v)
{
    uint64_t now, at, delay;

    v->dirty = 1;
    if (!v->timers || v->stopping || !v->joined || v->writing ||
        uv_is_active((uv_handle_t *)&v->write_timer))
        return;
    now = uv_now(v->in.env->loop);
    at = now + VIEW_DEBOUNCE_MS;
    if (v->last_write != 0 && at < v->last_write + VIEW_MIN_INTERVAL_MS)
        at = v->last_write + VIEW_MIN_INTERVAL_MS;
    delay = at - now;
    uv_timer_start(&v->write_timer, on_write_timer, delay, 0);
}

void
view_joined(struct view *v)
{
    if (v == NULL)
        return;
    v->joined = 1;
    schedule_write(v);
}

/* Judging this node */

/* Is name behind the fleet here now (a newer fleet version not stored, or not deployed)? */
static int
behind_now(const struct view *v, const struct view_rec *r, int *deploy_failing)
{
    const struct store_cert *cert = store_find(v->in.store, r->name);
    const struct store_version *cur;
    unsigned dv = 0;
    int64_t since = 0;

    *deploy_failing = 0;
    if (view_left(v->in.deploy, r->name))
        return 0;
    if (cert == NULL || cert->current == 0 || (cur = store_current(cert)) == NULL)
        return 1;
    if (record_same_serial(cur->serial, r->serial)) {
        if (deploy_error(v->in.deploy, r->name, &dv, &since) != NULL && dv == cert->current) {
            *deploy_failing = 1;
            return 1;
        }
        return 0;
    }
    /* Another serial expiring as late is the fleet's too: ties go to the fleet's record. */
    return cur->not_after <= r->not_after;
}

/* Looks at name again; 1 when its fleet_behind flag changed. */
static int
judge(struct view *v, struct view_rec *r, int64_t now)
{
    int failing, flag;

    if (behind_now(v, r, &failing)) {
        if (r->behind_since == 0)
            r->behind_since = now;
    } else {
        r->behind_since = 0;
    }
    r->deploy_failing = failing;
    flag = r->behind_since != 0 && now - r->behind_since >= VIEW_BEHIND_AFTER;
    if (flag == r->behind)
        return 0;
    r->behind = flag;
    if (flag && failing)
        log_warn("fleet: '%s' on node '%s' is behind the fleet's version %u (serial %s) for "
                 "%lld s: deploying it fails here (certctl status says why; fix it and run "
                 "certctl deploy %s)",
                 r->name, v->in.node, r->version, r->serial, (long long)(now - r->behind_since),
                 r->name);
    else if (flag)
        log_warn("fleet: '%s' on node '%s' is behind the fleet's version %u (serial %s) for "
                 "%lld s: this node has not stored it (certctl logs says why)",
                 r->name, v->in.node, r->version, r->serial, (long long)(now - r->behind_since));
    else
        log_info("fleet: '%s' on node '%s' has the fleet's version %u again", r->name, v->in.node,
                 r->version);
    return 1;
}

static void
on_tick(uv_timer_t *t)
{
    struct view *v = t->data;
    int64_t now = (int64_t)time(NULL);
    uint64_t ms = uv_now(v->in.env->loop), last = etcd_last_answer(v->etcd);
    int flag;

    /* Silent since the last call a member answered (a watch's stream does not count: a
     * member without quorum keeps it), or since the start. */
    if (last == 0)
        last = v->started_ms;
    v->unreachable_since = now - (int64_t)((ms - last) / 1000);
    flag = ms - last >= (uint64_t)v->in.grace * 1000;
    if (!flag && v->dirty && etcd_reachable(v->etcd))
        schedule_write(v);
    if (flag != v->unreachable) {
        const char *why = etcd_last_error(v->etcd);

        v->unreachable = flag;
        if (flag)
            log_warn("fleet: etcd of fleet '%s' unreachable for %lld s (%s); this node keeps "
                     "serving its local copies, and shared certificates wait for the fleet",
                     v->in.fleet, (long long)(now - v->unreachable_since),
                     why != NULL ? why : "no answer");
        else
            log_info("fleet: etcd of fleet '%s' is reachable again", v->in.fleet);
        events_publish_name(v->in.env->events, EVENT_STATUS_STALE, NULL);
        schedule_write(v);
    }
    for (size_t b = 0; b < VIEW_BUCKETS; b++) {
        for (struct view_rec *r = v->buckets[b]; r != NULL; r = r->next) {
            /* Only names that are or were behind need a look: a change re-judges the rest. */
            if (r->behind_since != 0 && judge(v, r, now)) {
                events_publish_name(v->in.env->events, EVENT_STATUS_STALE, r->name);
                schedule_write(v);
            }
        }
    }
}

static void
on_event(void *arg, const struct event *ev)
{
    struct view *v = arg;
    struct view_rec *r;

    if (ev->name != NULL && (r = rec_find(v, ev->name)) != NULL &&
        judge(v, r, (int64_t)time(NULL)))
        events_publish_name(v->in.env->events, EVENT_STATUS_STALE, r->name);
    if (ev->type == EVENT_STATUS_STALE)
        return; /* ours, or the report's own: the report's judgement follows */
    if (ev->name == NULL || is_fleet_cert(v, ev->name) || ev->type == EVENT_STATUS_CHANGED)
        schedule_write(v);
}

void
view_record(struct view *v, const char *name, unsigned version, const char *serial,
            int64_t not_after, const char *node)
{
    struct view_rec *r;
    size_t b;

    if (v == NULL)
        return;
    if ((r = rec_find(v, name)) == NULL) {
        b = bucket_of(name);
        if ((r = calloc(1, sizeof(*r))) == NULL || (r->name = strdup(name)) == NULL) {
            free(r);
            return;
        }
        r->next = v->buckets[b];
        v->buckets[b] = r;
    }
    if (r->serial == NULL || !record_same_serial(r->serial, serial) || r->version != version) {
        free(r->serial);
        free(r->node);
        r->serial = strdup(serial != NULL ? serial : "");
        r->node = strdup(node != NULL ? node : "");
        r->version = version;
        r->not_after = not_after;
    }
    if (judge(v, r, (int64_t)time(NULL)))
        events_publish_name(v->in.env->events, EVENT_STATUS_STALE, name);
    schedule_write(v);
}

void
view_cert_state(const struct view *v, const char *name, struct view_cert_state *out)
{
    const struct view_rec *r = v != NULL ? rec_find(v, name) : NULL;
    const struct cert_settings *s = v != NULL ? deploy_settings(v->in.deploy, name) : NULL;

    memset(out, 0, sizeof(*out));
    if (v == NULL)
        return;
    out->fleet = !view_left(v->in.deploy, name) && (r != NULL || (s != NULL && s->shared));
    if (r == NULL)
        return;
    out->behind = r->behind;
    out->since = r->behind_since;
    out->fleet_version = r->version;
    out->deploy_failing = r->deploy_failing;
    snprintf(out->fleet_serial, sizeof(out->fleet_serial), "%s", r->serial ? r->serial : "");
}

int
view_unreachable(const struct view *v, int64_t *since, char *why, size_t size)
{
    const char *e;

    if (v == NULL || !v->unreachable)
        return 0;
    e = etcd_last_error(v->etcd);
    *since = v->unreachable_since;
    snprintf(why, size, "%s", e != NULL ? e : "no etcd member answered");
    return 1;
}

/* The query of certctl fleet status */

struct query {
    struct view *v;
    view_query_fn done;
    void *arg;
    cJSON *nodes; /* the nodes/ range's kvs (a copy) */
};

static void
query_end(struct query *q, int rc, const char *cause, const cJSON *doc)
{
    q->done(q->arg, rc, cause, doc);
    cJSON_Delete(q->nodes);
    free(q);
}

/* A kv of a range: its key after prefix, and its value parsed as JSON (NULL: not JSON). */
static cJSON *
kv_json(const cJSON *kv, const char *prefix, char *name, size_t size)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(kv, "key");
    const cJSON *val = cJSON_GetObjectItemCaseSensitive(kv, "value");
    unsigned char *key = NULL, *text = NULL;
    size_t klen = 0, tlen = 0, plen = strlen(prefix);
    cJSON *o = NULL;

    name[0] = '\0';
    if (!cJSON_IsString(k) || etcd_unb64(k->valuestring, &key, &klen) != 0 || klen <= plen ||
        memcmp(key, prefix, plen) != 0)
        goto out;
    snprintf(name, size, "%s", (char *)key + plen);
    if (cJSON_IsString(val) && etcd_unb64(val->valuestring, &text, &tlen) == 0)
        o = cJSON_ParseWithLength((char *)text, tlen);
out:
    free(key);
    free(text);
    return o;
}

static const cJSON *
find_named(const cJSON *arr, const char *key, const char *name)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, key);

        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return it;
    }
    return NULL;
}

static int
by_name(const void *a, const void *b)
{
    const struct view_rec *const *ra = a, *const *rb = b;

    return strcmp((*ra)->name, (*rb)->name);
}

/* The document: the nodes (up or gone) and the fleet's certificates by node. */
static cJSON *
query_doc(struct query *q, const cJSON *statuses)
{
    struct view *v = q->v;
    cJSON *doc = cJSON_CreateObject(), *nodes, *certs, *kv;
    char name[256], nodes_prefix[512], status_prefix[512];
    int64_t now = (int64_t)time(NULL), since = 0;
    size_t up = 0, gone = 0, nrecs = 0;
    const struct view_rec **recs = NULL;

    if (doc == NULL)
        return NULL;
    snprintf(nodes_prefix, sizeof(nodes_prefix), "%snodes/", v->prefix);
    snprintf(status_prefix, sizeof(status_prefix), "%sstatus/", v->prefix);
    cJSON_AddStringToObject(doc, "fleet", v->in.fleet);
    cJSON_AddStringToObject(doc, "node", v->in.node);
    cJSON_AddBoolToObject(doc, "reachable", etcd_reachable(v->etcd));
    {
        char why[512];

        cJSON_AddBoolToObject(doc, "unreachable", view_unreachable(v, &since, why, sizeof(why)));
    }
    cJSON_AddNumberToObject(doc, "generated", (double)now);
    nodes = cJSON_AddArrayToObject(doc, "nodes");
    /* Nodes with a lease are up; a status without one is a node that is gone. */
    cJSON_ArrayForEach(kv, q->nodes)
    {
        cJSON *info = kv_json(kv, nodes_prefix, name, sizeof(name)), *n;

        if (name[0] == '\0' || (n = cJSON_CreateObject()) == NULL) {
            cJSON_Delete(info);
            continue;
        }
        cJSON_AddStringToObject(n, "node", name);
        cJSON_AddStringToObject(n, "state", "up");
        if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(info, "started")))
            cJSON_AddNumberToObject(
                n, "started", cJSON_GetObjectItemCaseSensitive(info, "started")->valuedouble);
        if (cJSON_GetObjectItemCaseSensitive(info, "tags") != NULL)
            cJSON_AddItemToObject(
                n, "tags", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(info, "tags"), 1));
        cJSON_AddItemToArray(nodes, n);
        cJSON_Delete(info);
        up++;
    }
    cJSON_ArrayForEach(kv, statuses)
    {
        cJSON *st = kv_json(kv, status_prefix, name, sizeof(name)), *n;
        static const char *const copy[] = {
            "host",     "version",           "health", "updated", "certificates",
            "warnings", "local_certificates"};

        if (name[0] == '\0' || !cJSON_IsObject(st)) {
            cJSON_Delete(st);
            continue;
        }
        if ((n = (cJSON *)find_named(nodes, "node", name)) == NULL) {
            if ((n = cJSON_CreateObject()) == NULL) {
                cJSON_Delete(st);
                continue;
            }
            cJSON_AddStringToObject(n, "node", name);
            cJSON_AddStringToObject(n, "state", "gone");
            cJSON_AddItemToArray(nodes, n);
            gone++;
        }
        for (size_t i = 0; i < sizeof(copy) / sizeof(copy[0]); i++) {
            cJSON *it = cJSON_GetObjectItemCaseSensitive(st, copy[i]);

            if (it != NULL)
                cJSON_AddItemToObject(n, copy[i], cJSON_Duplicate(it, 1));
        }
        cJSON_Delete(st);
    }
    cJSON_AddNumberToObject(doc, "nodes_up", (double)up);
    cJSON_AddNumberToObject(doc, "nodes_gone", (double)gone);
    /* The fleet's certificates (the records this node saw), each with every node's state. */
    certs = cJSON_AddArrayToObject(doc, "certificates");
    for (size_t b = 0; b < VIEW_BUCKETS; b++) {
        for (const struct view_rec *r = v->buckets[b]; r != NULL; r = r->next)
            nrecs++;
    }
    if (nrecs > 0 && (recs = calloc(nrecs, sizeof(*recs))) == NULL) {
        cJSON_Delete(doc);
        return NULL;
    }
    nrecs = 0;
    for (size_t b = 0; b < VIEW_BUCKETS; b++) {
        for (const struct view_rec *r = v->buckets[b]; r != NULL; r = r->next)
            recs[nrecs++] = r;
    }
    if (nrecs > 0)
        qsort(recs, nrecs, sizeof(*recs), by_name);
    for (size_t i = 0; i < nrecs; i++) {
        {
            const struct view_rec *r = recs[i];
            cJSON *c = cJSON_CreateObject(), *by;
            const cJSON *n;
            size_t behind = 0;

            if (c == NULL)
                continue;
            cJSON_AddStringToObject(c, "name", r->name);
            cJSON_AddNumberToObject(c, "fleet_version", r->version);
            cJSON_AddStringToObject(c, "serial", r->serial ? r->serial : "");
            cJSON_AddNumberToObject(c, "not_after", (double)r->not_after);
            cJSON_AddNumberToObject(c, "days_left", (double)((r->not_after - now) / 86400));
            cJSON_AddStringToObject(c, "issued_by", r->node ? r->node : "");
            by = cJSON_AddObjectToObject(c, "nodes");
            cJSON_ArrayForEach(n, nodes)
            {
                const cJSON *held = find_named(cJSON_GetObjectItemCaseSensitive(n, "certificates"),
                                               "name", r->name);
                const char *nstate = jstr_or(n, "state");
                const char *state;
                cJSON *cell = cJSON_CreateObject();

                if (cell == NULL)
                    continue;
                if (held == NULL) {
                    state = "missing";
                } else if (record_same_serial(jstr_or(held, "serial"), r->serial)) {
                    state = "current";
                    if (find_code(held, "fleet_behind"))
                        state = "behind";
                } else {
                    state = "behind";
                }
                if (strcmp(state, "current") != 0)
                    behind++;
                cJSON_AddStringToObject(cell, "state", state);
                cJSON_AddBoolToObject(cell, "gone", strcmp(nstate, "gone") == 0);
                if (held != NULL) {
                    cJSON_AddStringToObject(cell, "serial", jstr_or(held, "serial"));
                    cJSON_AddNumberToObject(cell, "local_version",
                                            cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(
                                                held, "local_version")));
                    cJSON_AddNumberToObject(
                        cell, "not_after",
                        cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(held, "not_after")));
                    cJSON_AddStringToObject(cell, "health", jstr_or(held, "health"));
                }
                cJSON_AddItemToObject(by, jstr_or(n, "node"), cell);
            }
            cJSON_AddNumberToObject(c, "nodes_behind", (double)behind);
            cJSON_AddItemToArray(certs, c);
        }
    }
    free(recs);
    return doc;
}

static void
on_statuses(void *arg, int rc, const char *cause, const cJSON *reply)
{
    struct query *q = arg;
    cJSON *doc;

    if (rc != 0) {
        query_end(q, rc, cause, NULL);
        return;
    }
    if ((doc = query_doc(q, cJSON_GetObjectItemCaseSensitive(reply, "kvs"))) == NULL) {
        query_end(q, -E_NOMEM, "out of memory", NULL);
        return;
    }
    query_end(q, 0, NULL, doc);
    cJSON_Delete(doc);
}

static int
range(struct view *v, const char *what, etcd_cb cb, void *arg, char **cause)
{
    cJSON *body = cJSON_CreateObject();
    char prefix[512], *end;

    snprintf(prefix, sizeof(prefix), "%s%s", v->prefix, what);
    if ((end = etcd_prefix_end(prefix)) == NULL || body == NULL ||
        etcd_add_b64(body, "key", prefix, strlen(prefix)) != 0 ||
        etcd_add_b64(body, "range_end", end, strlen(end)) != 0) {
        free(end);
        cJSON_Delete(body);
        err_set(cause, "out of memory");
        return -E_NOMEM;
    }
    free(end);
    return etcd_call(v->etcd, "/v3/kv/range", body, cb, arg, NULL, cause);
}

static void
on_nodes(void *arg, int rc, const char *cause, const cJSON *reply)
{
    struct query *q = arg;
    char *words = NULL;

    if (rc != 0) {
        query_end(q, rc, cause, NULL);
        return;
    }
    q->nodes = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(reply, "kvs"), 1);
    if (q->nodes == NULL)
        q->nodes = cJSON_CreateArray();
    if ((rc = range(q->v, "status/", on_statuses, q, &words)) != 0) {
        query_end(q, rc, words, NULL);
        free(words);
    }
}

int
view_query(struct view *v, view_query_fn done, void *arg, char **cause)
{
    struct query *q;
    int rc;

    if (v == NULL || v->etcd == NULL || v->stopping) {
        err_set(cause, "this agent is not in a fleet (its config has no cluster key; see "
                       "docs/fleet.md)");
        return -E_NOT_FOUND;
    }
    if ((q = calloc(1, sizeof(*q))) == NULL)
        return -E_NOMEM;
    q->v = v;
    q->done = done;
    q->arg = arg;
    if ((rc = range(v, "nodes/", on_nodes, q, cause)) != 0)
        free(q);
    return rc;
}

/* certctl fleet forget NODE */

struct forget {
    view_forget_fn done;
    void *arg;
    char *node;
};

static void
on_forgotten(void *arg, int rc, const char *cause, const cJSON *reply)
{
    struct forget *f = arg;
    const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "responses"), 0);
    const cJSON *del = cJSON_GetObjectItemCaseSensitive(r, "response_delete_range");
    char *words = NULL;

    if (rc != 0) {
        f->done(f->arg, rc, cause);
    } else if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "succeeded"))) {
        err_set(&words,
                "node '%s' is up (its lease in etcd lives): stop its agent first, and forget it "
                "once its lease has expired (15 s)",
                f->node);
        f->done(f->arg, -E_BUSY, words);
    } else if (etcd_int(del, "deleted") == 0) {
        err_set(&words, "the fleet has no node '%s' (certctl fleet nodes lists them)", f->node);
        f->done(f->arg, -E_NOT_FOUND, words);
    } else {
        log_info("fleet: node '%s' forgotten: its last status was deleted from etcd", f->node);
        f->done(f->arg, 0, NULL);
    }
    free(words);
    free(f->node);
    free(f);
}

int
view_forget(struct view *v, const char *node, view_forget_fn done, void *arg, char **cause)
{
    cJSON *body = NULL, *ok;
    char nodes_key[512], status_key[512];
    struct forget *f = NULL;
    int rc;

    if (v == NULL || v->etcd == NULL || v->stopping) {
        err_set(cause, "this agent is not in a fleet (its config has no cluster key; see "
                       "docs/fleet.md)");
        return -E_NOT_FOUND;
    }
    if (!config_cluster_name_ok(node)) {
        err_set(cause, "'%s' is not a node name (1 to %d letters, digits, '.', '_' or '-')", node,
                CONFIG_CLUSTER_NAME_MAX);
        return -E_BAD_INPUT;
    }
    if (strcmp(node, v->in.node) == 0) {
        err_set(cause, "'%s' is this node; forget it from another node after it left", node);
        return -E_BAD_INPUT;
    }
    snprintf(nodes_key, sizeof(nodes_key), "%snodes/%s", v->prefix, node);
    snprintf(status_key, sizeof(status_key), "%sstatus/%s", v->prefix, node);
    /* Only a node without a lease (gone): its status is deleted in the same transaction. */
    if ((f = calloc(1, sizeof(*f))) == NULL || (f->node = strdup(node)) == NULL ||
        (body = etcd_txn_if_absent(nodes_key, &ok)) == NULL ||
        etcd_txn_op(ok, "request_delete_range", status_key) == NULL) {
        cJSON_Delete(body);
        if (f != NULL)
            free(f->node);
        free(f);
        err_set(cause, "out of memory");
        return -E_NOMEM;
    }
    f->done = done;
    f->arg = arg;
    if ((rc = etcd_call(v->etcd, "/v3/kv/txn", body, on_forgotten, f, NULL, cause)) != 0) {
        free(f->node);
        free(f);
    }
    return rc;
}

/* Lifecycle */

int
view_start(struct view *v, struct etcd *etcd)
{
    int rc;

    if (v == NULL)
        return 0;
    v->etcd = etcd;
    v->started_ms = uv_now(v->in.env->loop);
    uv_timer_init(v->in.env->loop, &v->write_timer);
    uv_timer_init(v->in.env->loop, &v->tick);
    v->write_timer.data = v->tick.data = v;
    v->timers = 1;
    uv_timer_start(&v->tick, on_tick, VIEW_TICK_MS, VIEW_TICK_MS);
    if ((rc = events_subscribe(
             v->in.env->events,
             EVENT_MASK(EVENT_CERT_CHANGED) | EVENT_MASK(EVENT_SETTINGS_CHANGED) |
                 EVENT_MASK(EVENT_DEPLOY_RESULT) | EVENT_MASK(EVENT_STATUS_CHANGED) |
                 EVENT_MASK(EVENT_STATUS_STALE),
             on_event, v)) != 0)
        return rc;
    v->started = 1;
    return 0;
}

void
view_stop(struct view *v)
{
    if (v == NULL || v->stopping)
        return;
    v->stopping = 1;
    if (v->started)
        events_unsubscribe(v->in.env->events, on_event, v);
    if (v->timers) {
        uv_timer_stop(&v->write_timer);
        uv_timer_stop(&v->tick);
    }
}

static void
on_closed(uv_handle_t *h)
{
    struct view *v = h->data;

    if (--v->timers == 0)
        free(v);
}

void
view_free(struct view *v)
{
    if (v == NULL)
        return;
    view_stop(v);
    for (size_t b = 0; b < VIEW_BUCKETS; b++) {
        while (v->buckets[b] != NULL) {
            struct view_rec *r = v->buckets[b];

            v->buckets[b] = r->next;
            free(r->name);
            free(r->serial);
            free(r->node);
            free(r);
        }
    }
    if (!v->timers) {
        free(v);
        return;
    }
    v->timers = 2;
    uv_close((uv_handle_t *)&v->write_timer, on_closed);
    uv_close((uv_handle_t *)&v->tick, on_closed);
}

/* Leaving, and the client certificate */

void
view_note_left(struct store *store, struct deploy *deploy)
{
    size_t fleet = 0, shared = 0;
    char names[256] = "";

    for (size_t i = 0; i < store_count(store); i++) {
        const struct store_cert *cert = store_at(store, i);
        const struct store_version *cur = cert->current != 0 ? store_current(cert) : NULL;
        const struct cert_settings *s = deploy_settings(deploy, cert->name);
        int is_fleet = cur != NULL && cur->source == CERT_SOURCE_FLEET;
        int is_shared = s != NULL && s->shared;

        if (!is_fleet && !is_shared)
            continue;
        fleet += is_fleet;
        shared += is_shared;
        if (strlen(names) + strlen(cert->name) + 8 < sizeof(names))
            snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s'%s'",
                     names[0] != '\0' ? ", " : "", cert->name);
        else if (strstr(names, "...") == NULL)
            snprintf(names + strlen(names), sizeof(names) - strlen(names), ", ...");
    }
    if (fleet + shared == 0)
        return;
    log_info("fleet: not in a fleet (the config has no cluster key): %zu certificate%s taken "
             "from a fleet and %zu shared with one (%s) stay here as local certificates, "
             "served and deployed as before; a version taken from the fleet is not renewed "
             "here (certctl request NAME --dns ... orders one from a CA here)",
             fleet, fleet == 1 ? "" : "s", shared, names);
}

void
view_check_client_cert(const char *file)
{
    BIO *b;
    X509 *x = NULL;

    /* A BIO, not a FILE *: OpenSSL's DLL and the agent may use different C runtimes. */
    if (file == NULL || (b = BIO_new_file(file, "r")) == NULL) {
        ERR_clear_error();
        return;
    }
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    ERR_clear_error();
    if (x == NULL) {
        log_warn("fleet: the etcd client certificate %s holds no PEM certificate; etcd will "
                 "refuse this node",
                 file);
        return;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0)
        log_warn("fleet: the etcd client certificate %s has expired, so etcd refuses this node "
                 "and the fleet stays unreachable: renew it (or import a new one with certctl "
                 "import NAME --cert FILE --key FILE and name it in cluster.client_cert)",
                 file);
    else if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0)
        log_warn("fleet: the etcd client certificate %s is not valid yet (check the clock); "
                 "etcd refuses this node until it is",
                 file);
    X509_free(x);
}
