/*
 * The renewal scheduler (renew.h).
 *
 * One entry per certificate in the store, kept sorted by name.  An entry is
 * loaded in the thread pool (meta.json for the ACME parameters, cert.pem for
 * the ARI CertID) whenever its current version changes, then planned on the
 * loop.  One timer wakes the scheduler at the earliest planned event (an
 * attempt or an ARI poll), and at least every renew_check_interval seconds
 * (300 by default): the plan is kept in
 * wall-clock seconds, so a clock jump or a system that slept is noticed at
 * the next wake and everything due runs then.
 */
#include "renew.h"

#include <cjson/cJSON.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "acme.h"
#include "byname.h"
#include "config.h"
#include "env.h"
#include "deploy.h"
#include "err.h"
#include "events.h"
#include "fallback.h"
#include "fleet-lock.h"
#include "fleet.h"
#include "fsutil.h"
#include "log.h"
#include "pem.h"
#include "store.h"
#include "strv.h"
#include "sys.h"

#define STATE_MAX (64 * 1024 * 1024)
/* ARI polls: Retry-After is clamped to this range; without one, or after an error, 6 h. */
#define ARI_RETRY_MIN_S 60
#define ARI_RETRY_MAX_S 86400
#define ARI_DEFAULT_S (6 * 3600)
/* A CA without renewalInfo is asked again (its directory may gain it) after a day. */
#define ARI_ABSENT_S 86400
#define ARI_POLLS_AT_ONCE 16
/* An attempt refused because an order for the name is already in flight. */
#define BUSY_RETRY_S 60
/* Changes within this time go to STATE/renew.json in one write. */
#define SAVE_DELAY_MS 200
/* Attempts kept in an entry's "tried" history (every CA tried and its words). */
#define TRIED_MAX 20
/* A shared name whose fleet lock another node holds, or whose fleet cannot be reached: the
 * next try (the holder's new version usually comes first, by the watch). */
#define LOCK_RETRY_S 5
#define FLEET_DOWN_RETRY_S 30

struct entry {
    char *name;
    /* what the current version is (from the index and the load) */
    unsigned version; /* the version planned; 0 until loaded */
    enum cert_source source;
    int64_t not_before, not_after;
    int64_t revoked; /* when the version was revoked at its CA (certctl revoke); 0: not */
    char *ca, *key_type, *challenge, *preferred_chain, *profile;
    char *cert_id;      /* ARI CertID, NULL when the certificate has no AKI */
    char *preferred_ca; /* issued by a fallback CA: the certificate's own CA; else NULL */
    char **dns, **ips;
    size_t ndns, nips;
    int loading, reload;
    /* the plan */
    int auto_renew;
    int64_t next;
    const char *reason;
    int64_t retry_at;                     /* after a failure: the next attempt */
    int64_t ari_start, ari_end, ari_pick; /* window for cert_id, and the chosen time */
    char *ari_explanation;
    char *ari_for; /* the CertID the window belongs to */
    int64_t ari_next_poll;
    int ari_fetching;
    /* history (persisted) */
    int64_t last_attempt, last_success;
    int last_ok;
    char *last_error;
    unsigned failures;
    uint64_t attempts_total, failures_total;
    int in_progress;
    int64_t due_at;  /* when the current streak of attempts became due; 0: none */
    int last_resort; /* the current version is the last resort's stand-in (meta.json) */
    int making_last_resort;
    cJSON *tried;        /* the last TRIED_MAX attempts: [{"at", "ca", "ok", "error"}] */
    int64_t fleet_retry; /* a shared name waits for the fleet's lock: the next try; 0: not */
    int fleet_locked;    /* this attempt runs under the fleet's lock */
};

struct renew {
    const struct env *env;
    struct store *store;
    struct acme *acme;
    struct deploy *deploy;
    struct renew_selfsigned selfsigned;
    uv_timer_t *timer;      /* heap: it may outlive the scheduler while closing */
    uv_timer_t *save_timer; /* the same */
    int save_armed;
    int in_schedule;
    struct byname entries; /* struct entry *, sorted by name */
    unsigned running;
    unsigned ari_fetching;
    int started, stopping;
    int64_t armed_wall;  /* time(NULL) when the timer was armed */
    uint64_t armed_mono; /* uv_now then */
    uint64_t armed_ms;
    /* saving STATE/renew.json */
    char *path;
    int saving, dirty;
    struct fleet *fleet; /* shared names renew under its lock (renew_set_fleet) */
};

static void schedule(struct renew *r);
static void save(struct renew *r);
static void save_later(struct renew *r);
static void schedule_soon(struct renew *r);

/* Entries */

static void
entry_clear_cert(struct entry *e)
{
    free(e->ca);
    free(e->key_type);
    free(e->challenge);
    free(e->preferred_chain);
    free(e->profile);
    free(e->cert_id);
    free(e->preferred_ca);
    e->preferred_ca = NULL;
    strv_free(e->dns, e->ndns);
    strv_free(e->ips, e->nips);
    e->ca = e->key_type = e->challenge = e->preferred_chain = e->profile = e->cert_id = NULL;
    e->dns = e->ips = NULL;
    e->ndns = e->nips = 0;
}

static void
entry_free(struct entry *e)
{
    if (e == NULL)
        return;
    entry_clear_cert(e);
    free(e->ari_explanation);
    free(e->ari_for);
    free(e->last_error);
    cJSON_Delete(e->tried);
    free(e->name);
    free(e);
}

static struct entry *
entry_find(const struct renew *r, const char *name)
{
    return byname_find(&r->entries, name);
}

/* The entry named name, made if there is none; NULL when out of memory. */
static struct entry *
entry_get(struct renew *r, const char *name)
{
    int found;
    size_t i = byname_pos(&r->entries, name, &found);
    struct entry *e;

    if (found)
        return r->entries.items[i];
    if ((e = calloc(1, sizeof(*e))) == NULL || (e->name = strdup(name)) == NULL) {
        free(e);
        return NULL;
    }
    e->last_ok = -1;
    if (byname_insert(&r->entries, i, e) != 0) {
        entry_free(e);
        return NULL;
    }
    return e;
}

static void
entry_drop(struct renew *r, struct entry *e)
{
    int found;
    size_t i = byname_pos(&r->entries, e->name, &found);

    if (!found)
        return;
    entry_free(byname_remove(&r->entries, i));
}

static void
set_str(char **slot, const char *v)
{
    free(*slot);
    *slot = v != NULL ? strdup(v) : NULL;
}

/* Planning */

/* A uniform random time in [start, end]. */
static int64_t
random_in(int64_t start, int64_t end)
{
    uint64_t x = 0;

    if (end <= start)
        return start;
    if (RAND_bytes((unsigned char *)&x, sizeof(x)) != 1)
        x = (uint64_t)uv_hrtime();
    return start + (int64_t)(x % (uint64_t)(end - start + 1));
}

/*
 * renew_before_days counts only when it leaves at least a tenth of the lifetime
 * before the renewal: a value as long as the lifetime (90 days on a 90-day
 * certificate) would make every new version due the moment it is stored, a loop.
 */
static int
before_applies(int before_days, int64_t life)
{
    return before_days > 0 && (int64_t)before_days * 86400 <= life - life / 10;
}

int64_t
renew_lifetime_point(int64_t not_before, int64_t not_after, int before_days)
{
    int64_t life = not_after - not_before;

    if (before_applies(before_days, life))
        return not_after - (int64_t)before_days * 86400;
    /* A third of the lifetime left; half for short-lived (under 10 days) certificates. */
    if (life < 10 * 86400)
        return not_after - life / 2;
    return not_after - life / 3;
}

int64_t
renew_floor_point(int64_t not_before, int64_t not_after)
{
    return not_after - (not_after - not_before) / 20;
}

static void
plan(struct renew *r, struct entry *e)
{
    const struct cert_settings *s = deploy_settings(r->deploy, e->name);
    int before = s != NULL && s->renew_before_days > 0 ? s->renew_before_days
                                                       : r->env->config->renew_before_days;
    int64_t life = e->not_after - e->not_before;

    e->auto_renew = e->source == CERT_SOURCE_ACME || e->last_resort ||
                    (e->source == CERT_SOURCE_FLEET && e->ca != NULL);
    /* A fleet version renews where the fleet's lock is held (agent/fleet/), never here. */
    if (s != NULL && s->auto_renew >= 0 && e->source != CERT_SOURCE_IMPORT)
        e->auto_renew = s->auto_renew;
    e->next = 0;
    e->reason = NULL;
    if (!e->auto_renew || e->version == 0)
        return;
    if (e->fleet_retry != 0 && e->failures == 0) {
        /* Waiting for the fleet's lock (or for the holder's new version). */
        e->next = e->fleet_retry;
        e->reason = "fleet_lock";
        return;
    }
    if (e->failures > 0 && e->retry_at > 0) {
        e->next = e->retry_at;
        e->reason = "retry";
        return;
    }
    if (e->last_resort) {
        /* The stand-in is replaced by the CA's certificate as soon as the CA answers. */
        e->next = (int64_t)time(NULL);
        e->reason = "last_resort";
        return;
    }
    /* Revoked at its CA: clients that check refuse it; replace it now (renew_after_revoke). */
    if (e->revoked != 0 && e->source == CERT_SOURCE_ACME && e->ca != NULL &&
        r->env->config->renew_after_revoke) {
        e->next = e->revoked;
        e->reason = "revoked";
        return;
    }
    if (e->source == CERT_SOURCE_ACME && e->cert_id != NULL && e->ari_for != NULL &&
        strcmp(e->ari_for, e->cert_id) == 0 && e->ari_end > 0) {
        if (e->ari_pick < e->ari_start || e->ari_pick > e->ari_end)
            e->ari_pick = random_in(e->ari_start, e->ari_end);
        e->next = e->ari_pick;
        e->reason = "ari";
        /* The emergency floor: a window that ended, or one later than 1/20 of the lifetime
         * left, is not waited for (a CA's mistake or a stale window must not let it expire). */
        if (e->ari_end < (int64_t)time(NULL)) {
            e->next = (int64_t)time(NULL);
            e->reason = "ari_past";
        } else if (e->next > renew_floor_point(e->not_before, e->not_after)) {
            e->next = renew_floor_point(e->not_before, e->not_after);
            e->reason = "floor";
        }
        return;
    }
    if (before > 0 && !before_applies(before, life))
        log_debug("'%s': renew_before_days %d leaves less than a tenth of its lifetime; "
                  "using the lifetime rule",
                  e->name, before);
    e->next = renew_lifetime_point(e->not_before, e->not_after, before);
    e->reason = before_applies(before, life) ? "renew_before_days" : "lifetime";
}

/* Loading an entry's certificate details (thread pool) */

struct load {
    uv_work_t work;
    struct renew *r;
    char *name;
    unsigned version;
    /* results */
    int rc;
    char *cause;
    char *ca, *key_type, *challenge, *preferred_chain, *profile, *cert_id;
    char *preferred_ca;
    int last_resort;
};

static void
load_free(struct load *l)
{
    free(l->name);
    free(l->cause);
    free(l->ca);
    free(l->key_type);
    free(l->challenge);
    free(l->preferred_chain);
    free(l->profile);
    free(l->cert_id);
    free(l->preferred_ca);
    free(l);
}

static char *
json_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

static void
load_run(uv_work_t *work)
{
    struct load *l = work->data;
    struct store *store = l->r->store;
    unsigned char *data = NULL;
    size_t len = 0;
    cJSON *root = NULL, *a;
    STACK_OF(X509) *certs = NULL;

    if (store_read_file(store, l->name, l->version, "meta.json", &data, &len, NULL) == 0) {
        root = cJSON_ParseWithLength((const char *)data, len);
        a = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "extra"),
                                             "acme");
        if (cJSON_IsObject(a)) {
            l->ca = json_str(a, "ca");
            l->key_type = json_str(a, "key_type");
            l->challenge = json_str(a, "challenge");
            l->preferred_chain = json_str(a, "preferred_chain");
            l->profile = json_str(a, "profile");
            l->preferred_ca = json_str(a, "preferred_ca");
            l->last_resort = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "last_resort"));
        }
        cJSON_Delete(root);
        free(data);
        data = NULL;
    }
    if ((l->rc =
             store_read_file(store, l->name, l->version, "cert.pem", &data, &len, &l->cause)) != 0)
        return;
    if (pem_read_certs(data, len, "stored certificate", &certs, &l->cause) == 0 &&
        sk_X509_num(certs) > 0)
        (void)pem_cert_ari_id(sk_X509_value(certs, 0), &l->cert_id, NULL);
    sk_X509_pop_free(certs, X509_free);
    free(data);
}

static void load_start(struct renew *r, struct entry *e);

static void
load_after(uv_work_t *work, int status)
{
    struct load *l = work->data;
    struct renew *r = l->r;
    struct entry *e = entry_find(r, l->name);
    const struct store_cert *c = store_find(r->store, l->name);
    const struct store_version *v = c != NULL ? store_current(c) : NULL;

    (void)status;
    if (e == NULL) {
        load_free(l);
        return;
    }
    e->loading = 0;
    if (e->reload || v == NULL || v->version != l->version) {
        e->reload = 0;
        load_free(l);
        if (v == NULL && !e->in_progress)
            entry_drop(r, e);
        else
            load_start(r, e);
        return;
    }
    if (l->rc != 0)
        log_error("renewal: cannot read '%s' version %u: %s", l->name, l->version,
                  l->cause != NULL ? l->cause : err_message(l->rc));
    entry_clear_cert(e);
    if (e->version != 0 && e->version != v->version && !l->last_resort) {
        /* A new version: the failures were about the old one (not for the last resort's
         * stand-in: renewal at the CA goes on failing and backing off as before). */
        e->failures = 0;
        e->retry_at = 0;
        e->ari_pick = 0;
    }
    if (e->version != v->version)
        e->fleet_retry = 0; /* a new version (maybe the fleet's): nothing to wait for */
    e->version = v->version;
    e->source = v->source;
    e->not_before = v->not_before;
    e->not_after = v->not_after;
    e->revoked = v->revoked;
    e->last_resort = l->last_resort;
#define TAKE(f) (e->f = l->f, l->f = NULL)
    TAKE(ca);
    TAKE(key_type);
    TAKE(challenge);
    TAKE(preferred_chain);
    TAKE(profile);
    TAKE(cert_id);
    TAKE(preferred_ca);
#undef TAKE
    if (e->preferred_ca != NULL && e->ca != NULL && strcmp(e->preferred_ca, e->ca) == 0) {
        free(e->preferred_ca);
        e->preferred_ca = NULL;
    }
    /* Out of memory leaves a list empty; the next load fills it. */
    strv_dup(&e->dns, &e->ndns, (const char *const *)v->dns, v->ndns);
    strv_dup(&e->ips, &e->nips, (const char *const *)v->ips, v->nips);
    if (e->cert_id == NULL || e->ari_for == NULL || strcmp(e->cert_id, e->ari_for) != 0)
        e->ari_next_poll = 0; /* a new certificate: ask the CA about it at once */
    load_free(l);
    plan(r, e);
    save(r);
    schedule_soon(r);
}

static void
load_start(struct renew *r, struct entry *e)
{
    const struct store_cert *c = store_find(r->store, e->name);
    const struct store_version *v = c != NULL ? store_current(c) : NULL;
    struct load *l;

    if (e->loading) {
        e->reload = 1;
        return;
    }
    if (v == NULL) {
        if (!e->in_progress)
            entry_drop(r, e);
        save(r);
        return;
    }
    if ((l = calloc(1, sizeof(*l))) == NULL || (l->name = strdup(e->name)) == NULL) {
        free(l);
        log_error("renewal: out of memory planning '%s'", e->name);
        return;
    }
    l->r = r;
    l->version = v->version;
    l->work.data = l;
    e->loading = 1;
    if (uv_queue_work(r->env->loop, &l->work, load_run, load_after) != 0) {
        e->loading = 0;
        load_free(l);
        log_error("renewal: cannot queue the planning of '%s'", e->name);
    }
}

/* Persisted state */

struct save_job {
    uv_work_t work;
    struct renew *r;
    char *path;
    char *text;
    int rc;
    char *cause;
};

static void
save_run(uv_work_t *work)
{
    struct save_job *j = work->data;

    j->rc = fsutil_write_atomic(j->path, j->text, strlen(j->text), 0600, &j->cause);
}

static void
save_after(uv_work_t *work, int status)
{
    struct save_job *j = work->data;
    struct renew *r = j->r;

    (void)status;
    if (j->rc != 0)
        log_error("%s",
                  j->cause != NULL ? j->cause : "cannot write renew.json"); /* names the path */
    free(j->path);
    free(j->text);
    free(j->cause);
    free(j);
    r->saving = 0;
    if (r->dirty)
        save_later(r);
}

static cJSON *
entry_json(const struct entry *e)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL)
        return NULL;
    cJSON_AddNumberToObject(o, "version", e->version);
    cJSON_AddNumberToObject(o, "next", (double)e->next);
    if (e->reason != NULL)
        cJSON_AddStringToObject(o, "reason", e->reason);
    cJSON_AddNumberToObject(o, "retry_at", (double)e->retry_at);
    cJSON_AddNumberToObject(o, "last_attempt", (double)e->last_attempt);
    cJSON_AddNumberToObject(o, "last_ok", e->last_ok);
    if (e->last_error != NULL)
        cJSON_AddStringToObject(o, "last_error", e->last_error);
    cJSON_AddNumberToObject(o, "last_success", (double)e->last_success);
    cJSON_AddNumberToObject(o, "failures", e->failures);
    cJSON_AddNumberToObject(o, "attempts_total", (double)e->attempts_total);
    cJSON_AddNumberToObject(o, "failures_total", (double)e->failures_total);
    if (e->due_at != 0)
        cJSON_AddNumberToObject(o, "due_at", (double)e->due_at);
    if (e->tried != NULL)
        cJSON_AddItemToObject(o, "tried", cJSON_Duplicate(e->tried, 1));
    if (e->ari_for != NULL) {
        cJSON_AddStringToObject(o, "ari_cert_id", e->ari_for);
        cJSON_AddNumberToObject(o, "ari_start", (double)e->ari_start);
        cJSON_AddNumberToObject(o, "ari_end", (double)e->ari_end);
        cJSON_AddNumberToObject(o, "ari_pick", (double)e->ari_pick);
        cJSON_AddNumberToObject(o, "ari_next_poll", (double)e->ari_next_poll);
        if (e->ari_explanation != NULL)
            cJSON_AddStringToObject(o, "ari_explanation", e->ari_explanation);
    }
    return o;
}

/* Writes STATE/renew.json in the pool (one write at a time). */
static void
save_write(struct renew *r)
{
    struct save_job *j;
    cJSON *root;

    if ((root = cJSON_CreateObject()) == NULL)
        return;
    for (size_t i = 0; i < r->entries.n; i++) {
        const struct entry *e = r->entries.items[i];

        cJSON_AddItemToObject(root, e->name, entry_json(e));
    }
    if ((j = calloc(1, sizeof(*j))) == NULL || (j->path = strdup(r->path)) == NULL ||
        (j->text = cJSON_PrintUnformatted(root)) == NULL) {
        if (j != NULL)
            free(j->path);
        free(j);
        cJSON_Delete(root);
        return;
    }
    cJSON_Delete(root);
    j->r = r;
    j->work.data = j;
    r->dirty = 0;
    r->saving = 1;
    if (uv_queue_work(r->env->loop, &j->work, save_run, save_after) != 0) {
        r->saving = 0;
        r->dirty = 1;
        free(j->path);
        free(j->text);
        free(j);
    }
}

static void
on_save_timer(uv_timer_t *t)
{
    struct renew *r = t->data;

    if (r == NULL)
        return;
    r->save_armed = 0;
    if (r->dirty && !r->saving)
        save_write(r);
}

static void
save_later(struct renew *r)
{
    if (r->saving || r->save_armed || r->save_timer == NULL || r->stopping)
        return;
    r->save_armed = 1;
    uv_timer_start(r->save_timer, on_save_timer, SAVE_DELAY_MS, 0);
}

/* A plan or the history changed: written within SAVE_DELAY_MS, many changes in one write. */
static void
save(struct renew *r)
{
    r->dirty = 1;
    if (r->stopping || !r->started)
        return;
    /* Every change of a plan or of the history changes the status report too. */
    events_publish_name(r->env->events, EVENT_RENEW_STATE, NULL);
    save_later(r);
}

static int64_t
num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* At start: the history and ARI windows of the previous run. */
static void
load_state(struct renew *r)
{
    unsigned char *data = NULL;
    size_t len = 0;
    cJSON *root, *it;
    char *cause = NULL;
    int rc = fsutil_read_file(r->path, STATE_MAX, &data, &len, &cause);

    if (rc != 0) {
        if (rc != -E_NOT_FOUND)
            log_error("cannot read %s (the renewal history starts again): %s", r->path,
                      cause != NULL ? cause : err_message(rc));
        free(cause);
        return;
    }
    if ((root = cJSON_ParseWithLength((const char *)data, len)) == NULL) {
        log_error("%s is not JSON; the renewal history starts again", r->path);
        free(data);
        return;
    }
    cJSON_ArrayForEach(it, root)
    {
        struct entry *e;
        const cJSON *s;

        if (!cJSON_IsObject(it) || store_find(r->store, it->string) == NULL ||
            (e = entry_get(r, it->string)) == NULL)
            continue;
        e->version = (unsigned)num(it, "version");
        e->retry_at = num(it, "retry_at");
        e->last_attempt = num(it, "last_attempt");
        e->last_ok = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(it, "last_ok"))
                         ? (int)num(it, "last_ok")
                         : -1;
        e->last_success = num(it, "last_success");
        e->failures = (unsigned)num(it, "failures");
        e->attempts_total = (uint64_t)num(it, "attempts_total");
        e->failures_total = (uint64_t)num(it, "failures_total");
        e->due_at = num(it, "due_at");
        if (cJSON_IsArray(s = cJSON_GetObjectItemCaseSensitive(it, "tried")))
            e->tried = cJSON_Duplicate(s, 1);
        if (cJSON_IsString(s = cJSON_GetObjectItemCaseSensitive(it, "last_error")))
            set_str(&e->last_error, s->valuestring);
        if (cJSON_IsString(s = cJSON_GetObjectItemCaseSensitive(it, "ari_cert_id"))) {
            set_str(&e->ari_for, s->valuestring);
            e->ari_start = num(it, "ari_start");
            e->ari_end = num(it, "ari_end");
            e->ari_pick = num(it, "ari_pick");
            e->ari_next_poll = num(it, "ari_next_poll");
            if (cJSON_IsString(s = cJSON_GetObjectItemCaseSensitive(it, "ari_explanation")))
                set_str(&e->ari_explanation, s->valuestring);
        }
    }
    cJSON_Delete(root);
    free(data);
}

/* ARI polls */

struct ari_poll {
    struct renew *r;
    char *name;
    char *cert_id;
};

static void
ari_done(void *arg, int rc, const char *cause, const struct acme_ari *ari)
{
    struct ari_poll *p = arg;
    struct renew *r = p->r;
    struct entry *e = entry_find(r, p->name);
    int64_t now = (int64_t)time(NULL), wait;
    char a[32], b[32];

    r->ari_fetching--;
    if (e == NULL || r->stopping)
        goto out;
    e->ari_fetching = 0;
    if (rc == -E_NOT_FOUND) {
        log_debug("'%s': %s", e->name, cause != NULL ? cause : "no renewal information");
        e->ari_next_poll = now + ARI_ABSENT_S;
        goto planned;
    }
    if (rc != 0) {
        log_warn("'%s': cannot get the CA's renewal information (asking again in 6 hours): %s",
                 e->name, cause != NULL ? cause : err_message(rc));
        e->ari_next_poll = now + ARI_DEFAULT_S;
        goto planned;
    }
    wait = ari->retry_after > 0 ? ari->retry_after : ARI_DEFAULT_S;
    if (wait < ARI_RETRY_MIN_S)
        wait = ARI_RETRY_MIN_S;
    if (wait > ARI_RETRY_MAX_S)
        wait = ARI_RETRY_MAX_S;
    e->ari_next_poll = now + wait;
    if (e->ari_for == NULL || strcmp(e->ari_for, p->cert_id) != 0 || e->ari_start != ari->start ||
        e->ari_end != ari->end) {
        set_str(&e->ari_for, p->cert_id);
        e->ari_start = ari->start;
        e->ari_end = ari->end;
        e->ari_pick = 0; /* a new window: choose a new time in it */
        set_str(&e->ari_explanation, ari->explanation);
        sys_format_time(ari->start, a, sizeof(a));
        sys_format_time(ari->end, b, sizeof(b));
        log_info("'%s': the CA suggests renewing between %s and %s%s%s", e->name, a, b,
                 ari->explanation != NULL ? "; explanation: " : "",
                 ari->explanation != NULL ? ari->explanation : "");
    }
planned:
    plan(r, e);
    save(r);
    schedule_soon(r);
out:
    free(p->name);
    free(p->cert_id);
    free(p);
}

static void
ari_poll(struct renew *r, struct entry *e)
{
    struct ari_poll *p;
    char *cause = NULL;
    int rc;

    if ((p = calloc(1, sizeof(*p))) == NULL || (p->name = strdup(e->name)) == NULL ||
        (p->cert_id = strdup(e->cert_id)) == NULL) {
        if (p != NULL)
            free(p->name);
        free(p);
        return;
    }
    p->r = r;
    e->ari_fetching = 1;
    r->ari_fetching++;
    /* ari_done may run before acme_ari_get returns (a cached directory without renewalInfo). */
    if ((rc = acme_ari_get(r->acme, e->ca, e->cert_id, ari_done, p, &cause)) != 0)
        ari_done(p, rc, cause, NULL);
    free(cause);
}

/* Attempts */

struct attempt {
    struct renew *r;
    char *name;
    char *ca;                  /* the CA asked (ACME), or NULL */
    struct acme_observer user; /* a certctl renew waiting for this attempt */
    int has_user;
};

static void
user_done(struct attempt *a, int rc, const char *cause, const char *detail, const cJSON *result)
{
    if (a->has_user && a->user.done != NULL)
        a->user.done(a->user.arg, rc, cause, detail, result);
    a->has_user = 0;
}

/* Keeps one attempt in the entry's "tried" history (the last TRIED_MAX). */
static void
tried_add(struct entry *e, int64_t at, const char *ca, int ok, const char *words)
{
    cJSON *t;

    if (e->tried == NULL && (e->tried = cJSON_CreateArray()) == NULL)
        return;
    if ((t = cJSON_CreateObject()) == NULL)
        return;
    cJSON_AddNumberToObject(t, "at", (double)at);
    cJSON_AddStringToObject(t, "ca", ca);
    cJSON_AddBoolToObject(t, "ok", ok);
    if (words != NULL)
        cJSON_AddStringToObject(t, "error", words);
    cJSON_AddItemToArray(e->tried, t);
    while (cJSON_GetArraySize(e->tried) > TRIED_MAX)
        cJSON_DeleteItemFromArray(e->tried, 0);
}

/* The CA the certificate renews with: its own, also when a fallback CA issued it. */
static const char *
own_ca(const struct entry *e)
{
    return e->preferred_ca != NULL ? e->preferred_ca : e->ca;
}

/* The last resort */

/* Is the last resort on for e (its setting, else the config's on_expiry)? */
static int
last_resort_on(struct renew *r, const struct entry *e)
{
    const struct cert_settings *s = deploy_settings(r->deploy, e->name);

    if (s != NULL && s->on_expiry != 0)
        return s->on_expiry == 2;
    return r->env->config->on_expiry != NULL &&
           strcmp(r->env->config->on_expiry, "selfsigned") == 0;
}

/* How long before expiry the stand-in is made (last_resort_minutes, else _hours). */
static int64_t
last_resort_window(const struct renew *r)
{
    const struct config *c = r->env->config;

    return c->last_resort_minutes > 0 ? (int64_t)c->last_resort_minutes * 60
                                      : (int64_t)c->last_resort_hours * 3600;
}

static void
last_resort_done(void *arg, int rc, const char *cause)
{
    struct attempt *a = arg;
    struct renew *r = a->r;
    struct entry *e = entry_find(r, a->name);

    r->running--;
    if (e != NULL) {
        e->in_progress = 0;
        e->making_last_resort = 0;
    }
    if (rc != 0)
        log_error("'%s': the last resort's self-signed stand-in could not be made: %s", a->name,
                  cause != NULL ? cause : err_message(rc));
    else
        log_warn("'%s': renewal keeps failing and it expires soon: a self-signed stand-in "
                 "with the same names is now current and deployed (the last resort); the "
                 "CA's certificate replaces it at the first renewal that succeeds",
                 a->name);
    if (e != NULL && !e->loading && store_find(r->store, e->name) != NULL)
        plan(r, e);
    save(r);
    schedule_soon(r);
    free(a->name);
    free(a);
}

/* The key type name of e's current version ("ec256", ...): meta.json's, else its key. */
static const char *
key_type_of(struct renew *r, const struct entry *e)
{
    const struct store_cert *c = store_find(r->store, e->name);
    const struct store_version *v = c != NULL ? store_current(c) : NULL;

    if (e->key_type != NULL || v == NULL)
        return e->key_type != NULL ? e->key_type : "ec256";
    return strcmp(v->key_desc, "EC P-384") == 0   ? "ec384"
           : strcmp(v->key_desc, "RSA 2048") == 0 ? "rsa2048"
           : strcmp(v->key_desc, "RSA 3072") == 0 ? "rsa3072"
           : strcmp(v->key_desc, "RSA 4096") == 0 ? "rsa4096"
           : strcmp(v->key_desc, "Ed25519") == 0  ? "ed25519"
                                                  : "ec256";
}

/*
 * After a failed renewal of an ACME certificate: with on_expiry "selfsigned"
 * and expiry within the window, a self-signed stand-in with the same names and
 * key type goes through the commit path (deployed, hooks run); its meta.json
 * keeps the ACME parameters, so that renewal at the CA goes on.
 */
static void
last_resort_check(struct renew *r, struct entry *e, int64_t now)
{
    struct attempt *a = NULL;
    cJSON *root = NULL, *m;
    char *meta = NULL, *cause = NULL;
    int rc;

    if (e->source != CERT_SOURCE_ACME || e->last_resort || e->making_last_resort ||
        e->in_progress || e->ca == NULL || r->selfsigned.make_meta == NULL ||
        !last_resort_on(r, e) || e->not_after - now > last_resort_window(r))
        return;
    if ((root = cJSON_CreateObject()) == NULL ||
        (m = cJSON_AddObjectToObject(root, "acme")) == NULL)
        goto out;
    cJSON_AddStringToObject(m, "ca", e->ca);
    if (e->preferred_ca != NULL)
        cJSON_AddStringToObject(m, "preferred_ca", e->preferred_ca);
    cJSON_AddStringToObject(m, "key_type", key_type_of(r, e));
    if (e->challenge != NULL)
        cJSON_AddStringToObject(m, "challenge", e->challenge);
    if (e->preferred_chain != NULL)
        cJSON_AddStringToObject(m, "preferred_chain", e->preferred_chain);
    if (e->profile != NULL)
        cJSON_AddStringToObject(m, "profile", e->profile);
    cJSON_AddBoolToObject(m, "last_resort", 1);
    if ((meta = cJSON_PrintUnformatted(root)) == NULL || (a = calloc(1, sizeof(*a))) == NULL ||
        (a->name = strdup(e->name)) == NULL)
        goto out;
    a->r = r;
    log_warn("'%s': renewal failed and it expires within the last resort's window: making a "
             "self-signed stand-in (on_expiry selfsigned)",
             e->name);
    e->in_progress = 1;
    e->making_last_resort = 1;
    r->running++;
    rc = r->selfsigned.make_meta(r->selfsigned.ctx, e->name, (const char *const *)e->dns, e->ndns,
                                 (const char *const *)e->ips, e->nips, key_type_of(r, e), 30, meta,
                                 last_resort_done, a, &cause);
    if (rc != 0) {
        e->in_progress = 0;
        e->making_last_resort = 0;
        r->running--;
        log_error("'%s': the last resort's self-signed stand-in could not be made: %s", e->name,
                  cause != NULL ? cause : err_message(rc));
        free(a->name);
        free(a);
    }
    a = NULL;
out:
    if (a != NULL)
        free(a->name);
    free(a);
    free(cause);
    free(meta);
    cJSON_Delete(root);
}

static void
attempt_end(struct renew *r, struct entry *e, struct attempt *a, int rc, const char *cause,
            const char *detail, const cJSON *result)
{
    int64_t now = (int64_t)time(NULL);
    char when[32];

    r->running--;
    e->in_progress = 0;
    if (e->fleet_locked) {
        e->fleet_locked = 0;
        fleet_unlock(r->fleet, e->name);
    }
    if (r->stopping) {
        /* The stop interrupted it (an ACME order resumes at the next start). */
        e->attempts_total--;
        if (a != NULL)
            user_done(a, rc, cause, detail, result);
        return;
    }
    if (rc == -E_BUSY) {
        /* Someone else's order for this name is running (certctl request, a resumed order). */
        e->attempts_total--;
        e->retry_at = e->failures > 0 ? now + BUSY_RETRY_S : e->retry_at;
        if (e->failures == 0)
            e->next = now + BUSY_RETRY_S;
    } else if (rc == 0) {
        e->last_ok = 1;
        e->last_success = now;
        e->failures = 0;
        e->retry_at = 0;
        e->due_at = 0;
        if (a != NULL && a->ca != NULL)
            tried_add(e, now, a->ca, 1, NULL);
        free(e->last_error);
        e->last_error = NULL;
    } else {
        int64_t delay = r->env->config->renew_retry_min;

        e->last_ok = 0;
        e->failures++;
        e->failures_total++;
        set_str(&e->last_error, cause != NULL ? cause : err_message(rc));
        if (a != NULL && a->ca != NULL) {
            tried_add(e, now, a->ca, 0, e->last_error);
            if (own_ca(e) != NULL && strcmp(a->ca, own_ca(e)) != 0) {
                /* A fallback CA's words say which CA they are from. */
                char *w = NULL;

                err_set(&w, "fallback CA '%s': %s", a->ca,
                        e->last_error != NULL ? e->last_error : "error");
                free(e->last_error);
                e->last_error = w;
            }
        }
        for (unsigned i = 1; i < e->failures && delay < r->env->config->renew_retry_max; i++)
            delay *= 2;
        if (delay > r->env->config->renew_retry_max)
            delay = r->env->config->renew_retry_max;
        e->retry_at = now + delay;
        sys_format_time(e->retry_at, when, sizeof(when));
        log_error("renewal of '%s' failed (%u in a row); next attempt at %s: %s", e->name,
                  e->failures, when, e->last_error != NULL ? e->last_error : "error");
        deploy_failed(r->deploy, e->name, e->last_error, e->failures, e->retry_at);
        last_resort_check(r, e, now);
    }
    if (a != NULL)
        user_done(a, rc, cause, detail, result);
    if (store_find(r->store, e->name) == NULL) {
        entry_drop(r, e);
    } else if (!e->loading) {
        plan(r, e);
        if (rc == -E_BUSY && e->failures == 0) {
            e->next = now + BUSY_RETRY_S;
            e->reason = "retry";
        }
    } else {
        e->next = 0; /* the new version is being loaded; it plans itself */
    }
    save(r);
    schedule_soon(r);
}

static void
acme_progress(void *arg, const char *message, unsigned done, unsigned total)
{
    struct attempt *a = arg;

    if (a->has_user && a->user.progress != NULL)
        a->user.progress(a->user.arg, message, done, total);
}

static void
acme_done(void *arg, int rc, const char *cause, const char *detail, const cJSON *result)
{
    struct attempt *a = arg;
    struct entry *e = entry_find(a->r, a->name);

    if (e != NULL) {
        attempt_end(a->r, e, a, rc, cause, detail, result);
    } else {
        a->r->running--;
        user_done(a, rc, cause, detail, result);
    }
    free(a->ca);
    free(a->name);
    free(a);
}

static void
selfsigned_done(void *arg, int rc, const char *cause)
{
    struct attempt *a = arg;
    struct entry *e = entry_find(a->r, a->name);
    cJSON *result = NULL;

    if (e != NULL) {
        const struct store_cert *c = store_find(a->r->store, a->name);
        const struct store_version *v = c != NULL ? store_current(c) : NULL;

        /* The same fields as an ACME order's result. */
        if (rc == 0 && v != NULL && (result = cJSON_CreateObject()) != NULL) {
            int64_t now = (int64_t)time(NULL);

            cJSON_AddStringToObject(result, "name", a->name);
            cJSON_AddNumberToObject(result, "version", v->version);
            cJSON_AddStringToObject(result, "subject", v->subject);
            cJSON_AddStringToObject(result, "issuer", v->issuer);
            cJSON_AddNumberToObject(result, "not_after", (double)v->not_after);
            cJSON_AddNumberToObject(result, "days_left", (double)((v->not_after - now) / 86400));
            cJSON_AddStringToObject(result, "key", v->key_desc);
            cJSON_AddStringToObject(result, "fingerprint", v->fingerprint);
        }
        attempt_end(a->r, e, a, rc, cause, NULL, result);
        cJSON_Delete(result);
    } else {
        a->r->running--;
        user_done(a, rc, cause, NULL, NULL);
    }
    free(a->name);
    free(a);
}

/*
 * Appends to list (n entries, at most max) the fallback CAs of e: its settings'
 * list, else the config's, without its own CA and without CAs the agent does
 * not know (any longer).
 */
static void
fallback_list(struct renew *r, const struct entry *e, const char **list, size_t *n, size_t max)
{
    const struct cert_settings *s = deploy_settings(r->deploy, e->name);
    char *const *fb = r->env->config->fallback_cas.items;
    size_t nfb = r->env->config->fallback_cas.n;

    if (s != NULL && s->fallback_set) {
        fb = s->fallback_cas;
        nfb = s->nfallback_cas;
    }
    for (size_t i = 0; i < nfb && *n < max; i++) {
        if (list[0] != NULL && strcmp(fb[i], list[0]) == 0)
            continue;
        if (!acme_ca_known(r->acme, fb[i]))
            continue;
        list[(*n)++] = fb[i];
    }
}

static int
attempt_start(struct renew *r, struct entry *e, const struct acme_observer *user, char **cause)
{
    struct attempt *a;
    int rc;

    if ((a = calloc(1, sizeof(*a))) == NULL || (a->name = strdup(e->name)) == NULL) {
        free(a);
        return -E_NOMEM;
    }
    a->r = r;
    if (user != NULL) {
        a->user = *user;
        a->has_user = 1;
    }
    e->in_progress = 1;
    e->last_attempt = (int64_t)time(NULL);
    e->attempts_total++;
    r->running++;
    if (e->source == CERT_SOURCE_ACME || e->source == CERT_SOURCE_FLEET || e->last_resort) {
        struct acme_order_args args;
        struct acme_observer obs = {acme_progress, acme_done, a};

        memset(&args, 0, sizeof(args));
        args.name = e->name;
        args.ca = e->ca;
        args.dns = (const char *const *)e->dns;
        args.ndns = e->ndns;
        args.ips = (const char *const *)e->ips;
        args.nips = e->nips;
        args.key_type = e->key_type;
        args.challenge = e->challenge;
        args.preferred_chain = e->preferred_chain;
        args.profile = e->profile;
        if (e->ca != NULL) {
            int64_t now = (int64_t)time(NULL);
            const char *list[9];
            size_t n = 0, idx;

            list[n++] = own_ca(e);
            fallback_list(r, e, list, &n, sizeof(list) / sizeof(list[0]));
            if (e->failures == 0)
                e->due_at = e->next > 0 && e->next <= now ? e->next : now;
            idx = fallback_index(n, e->failures, (unsigned)r->env->config->fallback_after,
                                 e->due_at, e->not_after, now);
            args.ca = list[idx];
            args.preferred_ca = idx > 0 ? list[0] : NULL;
            if (idx > 0)
                log_warn("'%s': renewing at fallback CA '%s' (%u failed attempt%s in a row; "
                         "its own CA is '%s')",
                         e->name, list[idx], e->failures, e->failures == 1 ? "" : "s", list[0]);
            if ((a->ca = strdup(args.ca)) == NULL) {
                free(a->name);
                free(a);
                return -E_NOMEM;
            }
        }
        /* RFC 9773 section 5: name the certificate replaced when the CA has ARI (and is the
         * CA that issued it). */
        if (e->ari_for != NULL && e->cert_id != NULL && strcmp(e->ari_for, e->cert_id) == 0 &&
            args.ca != NULL && e->ca != NULL && strcmp(args.ca, e->ca) == 0)
            args.replaces = e->cert_id;
        if (e->ca == NULL) {
            err_set(cause, "version %u of '%s' does not say which CA issued it", e->version,
                    e->name);
            rc = -E_BAD_INPUT;
        } else {
            rc = acme_request(r->acme, &args, &obs, cause);
        }
    } else {
        const char *kt = e->key_type;
        const struct store_cert *c = store_find(r->store, e->name);
        const struct store_version *v = c != NULL ? store_current(c) : NULL;
        /* The same lifetime, in whole days (a self-signed one starts 5 minutes back). */
        int64_t days = (e->not_after - e->not_before + 43200) / 86400;

        if (kt == NULL && v != NULL) {
            /* The key type of the current version ("EC P-256", "RSA 3072", "Ed25519"). */
            kt = strcmp(v->key_desc, "EC P-384") == 0   ? "ec384"
                 : strcmp(v->key_desc, "RSA 2048") == 0 ? "rsa2048"
                 : strcmp(v->key_desc, "RSA 3072") == 0 ? "rsa3072"
                 : strcmp(v->key_desc, "RSA 4096") == 0 ? "rsa4096"
                 : strcmp(v->key_desc, "Ed25519") == 0  ? "ed25519"
                                                        : "ec256";
        }
        rc = r->selfsigned.make(r->selfsigned.ctx, e->name, (const char *const *)e->dns, e->ndns,
                                (const char *const *)e->ips, e->nips, kt,
                                (unsigned)(days < 1       ? 1
                                           : days > 36500 ? 36500
                                                          : days),
                                selfsigned_done, a, cause);
    }
    if (rc != 0) {
        free(a->ca);
        free(a->name);
        free(a);
    }
    return rc;
}

/* The fleet's lock */

struct locking {
    struct renew *r;
    char *name;
    struct acme_observer user;
    int has_user;
};

/* A shared name of a fleet is ordered under the fleet's lock (fleet-lock.h). */
static int
needs_lock(const struct renew *r, const struct entry *e)
{
    return r->fleet != NULL && !e->fleet_locked && fleet_shared(r->fleet, e->name) &&
           (e->source == CERT_SOURCE_ACME || e->source == CERT_SOURCE_FLEET || e->last_resort);
}

/* No lock now (another node holds it, or the fleet is not reachable): try again later. */
static void
lock_wait(struct renew *r, struct entry *e, int rc, const char *cause)
{
    int64_t delay = rc == -E_BUSY ? LOCK_RETRY_S : FLEET_DOWN_RETRY_S;

    e->fleet_retry = (int64_t)time(NULL) + delay;
    if (rc == -E_BUSY)
        log_info("'%s': %s", e->name, cause != NULL ? cause : "another node holds the lock");
    else
        log_warn("'%s' is not renewed now: %s; trying again in %lld s", e->name,
                 cause != NULL ? cause : err_message(rc), (long long)delay);
    if (e->failures == 0) {
        e->next = e->fleet_retry;
        e->reason = "fleet_lock";
    }
    save(r);
    schedule_soon(r);
}

static void
locking_free(struct locking *l)
{
    free(l->name);
    free(l);
}

static void
locking_done(struct locking *l, int rc, const char *cause, const cJSON *result)
{
    if (l->has_user && l->user.done != NULL)
        l->user.done(l->user.arg, rc, cause, NULL, result);
    l->has_user = 0;
}

static void attempt_end(struct renew *r, struct entry *e, struct attempt *a, int rc,
                        const char *cause, const char *detail, const cJSON *result);

static void
on_locked(void *arg, int rc, const char *cause, const struct fleet_current *cur)
{
    struct locking *l = arg;
    struct renew *r = l->r;
    struct entry *e = entry_find(r, l->name);
    const struct store_cert *c = store_find(r->store, l->name);
    const struct store_version *v = c != NULL && c->current != 0 ? store_current(c) : NULL;
    char *words = NULL;

    r->running--;
    if (e == NULL || r->stopping) {
        if (rc == 0)
            fleet_unlock(r->fleet, l->name);
        locking_done(l, -E_UNAVAILABLE, "the renewal was stopped", NULL);
        goto out;
    }
    e->in_progress = 0;
    if (rc != 0) {
        lock_wait(r, e, rc, cause);
        locking_done(l, rc, cause, NULL);
        goto out;
    }
    e->fleet_retry = 0;
    if (cur->serial != NULL && v != NULL && cur->not_after > v->not_after) {
        /* Another node renewed it while this one waited (certmagic's lesson): take that. */
        cJSON *res = cJSON_CreateObject();

        log_info("'%s': node '%s' of the fleet renewed it already (serial %s); taking that "
                 "version instead of ordering",
                 l->name, cur->node != NULL ? cur->node : "?", cur->serial);
        fleet_take_current(r->fleet, l->name);
        fleet_unlock(r->fleet, l->name);
        cJSON_AddStringToObject(res, "name", l->name);
        cJSON_AddStringToObject(res, "serial", cur->serial);
        cJSON_AddNumberToObject(res, "not_after", (double)cur->not_after);
        cJSON_AddStringToObject(res, "from_fleet", cur->node != NULL ? cur->node : "");
        locking_done(l, 0, NULL, res);
        cJSON_Delete(res);
        plan(r, e);
        save(r);
        schedule_soon(r);
        goto out;
    }
    e->fleet_locked = 1;
    if ((rc = attempt_start(r, e, l->has_user ? &l->user : NULL, &words)) != 0) {
        attempt_end(r, e, NULL, rc, words != NULL ? words : err_message(rc), NULL, NULL);
        locking_done(l, rc, words != NULL ? words : err_message(rc), NULL);
    }
    l->has_user = 0; /* the attempt answers the user now */
    save(r);
out:
    free(words);
    locking_free(l);
}

/* Asks for the fleet's lock of e; the attempt starts once it is held (on_locked). */
static int
lock_start(struct renew *r, struct entry *e, const struct acme_observer *user, char **cause)
{
    struct locking *l = calloc(1, sizeof(*l));
    char *words = NULL;
    int rc;

    if (l == NULL || (l->name = strdup(e->name)) == NULL) {
        free(l);
        return -E_NOMEM;
    }
    l->r = r;
    if (user != NULL) {
        l->user = *user;
        l->has_user = 1;
    }
    e->in_progress = 1;
    r->running++;
    if ((rc = fleet_lock(r->fleet, e->name, on_locked, l, &words)) != 0) {
        e->in_progress = 0;
        r->running--;
        lock_wait(r, e, rc, words);
        if (cause != NULL) {
            *cause = words;
            words = NULL;
        }
        free(words);
        locking_free(l);
        return rc;
    }
    return 0;
}

static void
attempt(struct renew *r, struct entry *e)
{
    char *cause = NULL;
    int rc;

    if (e->reason != NULL && strcmp(e->reason, "floor") == 0)
        log_warn("'%s': less than 1/20 of its lifetime is left and the CA's renewal window "
                 "is later: renewing at once (the emergency floor)",
                 e->name);
    else if (e->reason != NULL && strcmp(e->reason, "ari_past") == 0)
        log_warn("'%s': the CA's renewal window ended in the past: renewing at once", e->name);
    log_info("renewing '%s' (%s)", e->name, e->reason != NULL ? e->reason : "due");
    if (needs_lock(r, e)) {
        (void)lock_start(r, e, NULL, NULL);
        return;
    }
    if ((rc = attempt_start(r, e, NULL, &cause)) != 0)
        attempt_end(r, e, NULL, rc, cause != NULL ? cause : err_message(rc), NULL, NULL);
    free(cause);
}

/* The timer */

static void
on_timer(uv_timer_t *t)
{
    struct renew *r = t->data;
    int64_t wall, mono;

    if (r == NULL)
        return;
    wall = (int64_t)time(NULL) - r->armed_wall;
    mono = (int64_t)(uv_now(r->env->loop) - r->armed_mono) / 1000;
    if (wall - mono > 60 || mono - wall > 60)
        log_info("the clock moved by %+lld s against the time slept (a clock change, or the "
                 "system slept); checking every certificate again",
                 (long long)(wall - mono));
    schedule(r);
}

/*
 * A plan changed: look at the whole plan once in the next turn of the loop, so
 * that many changes (10,000 certificates loaded at start) cost one pass, not one each.
 */
static void
schedule_soon(struct renew *r)
{
    if (!r->started || r->stopping || r->timer == NULL)
        return;
    r->armed_wall = (int64_t)time(NULL);
    r->armed_mono = uv_now(r->env->loop);
    uv_timer_start(r->timer, on_timer, 0, 0);
}

/*
 * Starts what is due (attempts up to renew_concurrency, ARI polls up to
 * ARI_POLLS_AT_ONCE) and arms the timer for the earliest next event.
 */
static void
schedule(struct renew *r)
{
    int64_t now = (int64_t)time(NULL), wait;
    /* The longest sleep between two looks at the plan (clock changes, a system that slept). */
    int64_t earliest = now + r->env->config->renew_check_interval;
    unsigned cap = (unsigned)r->env->config->renew_concurrency;

    if (!r->started || r->stopping || r->in_schedule)
        return;
    /* Attempts and polls that end at once call back here: the loop below goes on instead. */
    r->in_schedule = 1;
    for (size_t i = 0; i < r->entries.n; i++) {
        struct entry *e = r->entries.items[i];

        if (e->loading || e->version == 0 || e->in_progress)
            continue;
        if (e->auto_renew && e->source == CERT_SOURCE_ACME && e->cert_id != NULL &&
            e->ca != NULL && !e->ari_fetching && !e->last_resort) {
            if (e->ari_next_poll <= now && r->ari_fetching < ARI_POLLS_AT_ONCE) {
                ari_poll(r, e);
                i = (size_t)-1; /* the entries may have moved; start over */
                continue;
            }
            if (e->ari_next_poll > now && e->ari_next_poll < earliest)
                earliest = e->ari_next_poll;
        }
        if (!e->auto_renew || e->next == 0 || e->ari_fetching)
            continue;
        if (e->next <= now) {
            if (r->running < cap) {
                attempt(r, e);
                i = (size_t)-1;
                continue;
            }
        } else if (e->next < earliest) {
            earliest = e->next;
        }
    }
    r->in_schedule = 0;
    if (r->stopping)
        return;
    wait = earliest - now;
    if (wait < 1)
        wait = 1;
    r->armed_wall = now;
    r->armed_mono = uv_now(r->env->loop);
    r->armed_ms = (uint64_t)wait * 1000;
    uv_timer_start(r->timer, on_timer, r->armed_ms, 0);
}

/* The interface */

static void on_event(void *arg, const struct event *ev);

int
renew_new(const struct env *env, struct store *store, struct acme *acme, struct deploy *deploy,
          const struct renew_selfsigned *selfsigned, struct renew **out, char **cause)
{
    struct renew *r = calloc(1, sizeof(*r));

    (void)cause;
    if (r == NULL || (r->timer = calloc(1, sizeof(*r->timer))) == NULL ||
        (r->save_timer = calloc(1, sizeof(*r->save_timer))) == NULL) {
        if (r != NULL)
            free(r->timer);
        free(r);
        return -E_NOMEM;
    }
    r->env = env;
    r->store = store;
    r->acme = acme;
    byname_init(&r->entries, offsetof(struct entry, name));
    r->deploy = deploy;
    r->selfsigned = *selfsigned;
    if ((r->path = fsutil_join(env->state_dir, "renew.json")) == NULL ||
        uv_timer_init(env->loop, r->timer) != 0 || uv_timer_init(env->loop, r->save_timer) != 0) {
        /* Neither timer was started; an initialized one must still be closed. */
        free(r->path);
        r->path = NULL;
        renew_free(r);
        return -E_NOMEM;
    }
    r->timer->data = r;
    r->save_timer->data = r;
    if (events_subscribe(env->events,
                         EVENT_MASK(EVENT_CERT_CHANGED) | EVENT_MASK(EVENT_SETTINGS_CHANGED) |
                             EVENT_MASK(EVENT_CERT_REVOKED) | EVENT_MASK(EVENT_CONFIG_RELOADED),
                         on_event, r) != 0) {
        renew_free(r);
        return -E_NOMEM;
    }
    *out = r;
    return 0;
}

void
renew_start(struct renew *r)
{
    struct store *store = r->store;

    load_state(r);
    for (size_t i = 0; i < store_count(store); i++) {
        const struct store_cert *c = store_at(store, i);
        struct entry *e;

        if (store_current(c) == NULL || (e = entry_get(r, c->name)) == NULL)
            continue;
        load_start(r, e);
    }
    r->started = 1;
    schedule(r);
}

static void
timer_closed(uv_handle_t *h)
{
    free(h);
}

static void
timer_close(uv_timer_t **t)
{
    if (*t == NULL)
        return;
    (*t)->data = NULL;
    if ((*t)->loop != NULL)
        uv_close((uv_handle_t *)*t, timer_closed);
    else
        free(*t); /* never initialized */
    *t = NULL;
}

void
renew_stop(struct renew *r)
{
    if (r == NULL || r->stopping)
        return;
    r->stopping = 1;
    timer_close(&r->timer);
    timer_close(&r->save_timer);
    r->save_armed = 0;
    /* The last changes are written before the loop ends. */
    if (r->dirty && r->started && !r->saving)
        save_write(r);
}

void
renew_set_fleet(struct renew *r, struct fleet *fleet)
{
    if (r != NULL)
        r->fleet = fleet;
}

void
renew_free(struct renew *r)
{
    if (r == NULL)
        return;
    events_unsubscribe(r->env->events, on_event, r);
    timer_close(&r->timer);
    timer_close(&r->save_timer);
    for (size_t i = 0; i < r->entries.n; i++)
        entry_free(r->entries.items[i]);
    byname_free(&r->entries);
    free(r->path);
    free(r);
}

/* A certificate or its settings changed: plan it again (or forget it when it is gone). */
static void
renew_changed(struct renew *r, const char *name)
{
    struct entry *e;

    if (r == NULL || r->stopping)
        return;
    if (store_find(r->store, name) == NULL) {
        if ((e = entry_find(r, name)) != NULL && !e->in_progress && !e->loading)
            entry_drop(r, e);
        save(r);
        return;
    }
    if ((e = entry_get(r, name)) != NULL)
        load_start(r, e);
}

/* A config reload: thresholds may have changed; plan everything again. */
static void
renew_reload(struct renew *r)
{
    if (r == NULL || r->stopping)
        return;
    for (size_t i = 0; i < r->entries.n; i++) {
        struct entry *e = r->entries.items[i];

        if (!e->loading && !e->in_progress)
            plan(r, e);
    }
    save(r);
    schedule_soon(r);
}

static void
on_event(void *arg, const struct event *ev)
{
    struct renew *r = arg;

    if (ev->type == EVENT_CONFIG_RELOADED)
        renew_reload(r);
    else if (ev->name != NULL)
        renew_changed(r, ev->name);
}

int
renew_info_get(const struct renew *r, const char *name, struct renew_info *out)
{
    const struct entry *e = r != NULL ? entry_find(r, name) : NULL;

    memset(out, 0, sizeof(*out));
    out->last_ok = -1;
    if (e == NULL)
        return -E_NOT_FOUND;
    out->auto_renew = e->auto_renew;
    out->next = e->auto_renew ? e->next : 0;
    out->next_reason = e->reason;
    if (e->ari_for != NULL && e->cert_id != NULL && strcmp(e->ari_for, e->cert_id) == 0) {
        out->ari_start = e->ari_start;
        out->ari_end = e->ari_end;
        out->ari_explanation = e->ari_explanation;
    }
    out->last_attempt = e->last_attempt;
    out->last_ok = e->last_ok;
    out->last_error = e->last_error;
    out->last_success = e->last_success;
    out->failures = e->failures;
    out->attempts_total = e->attempts_total;
    out->failures_total = e->failures_total;
    out->in_progress = e->in_progress;
    out->ca = e->ca;
    out->loading = e->loading || e->version == 0;
    out->preferred_ca = e->preferred_ca;
    out->tried = e->tried;
    out->last_resort = e->last_resort;
    return 0;
}

int
renew_due(const struct renew *r, const char *name)
{
    const struct entry *e = r != NULL ? entry_find(r, name) : NULL;

    return e != NULL && e->auto_renew && e->next != 0 && e->next <= (int64_t)time(NULL);
}

int
renew_now(struct renew *r, const char *name, const struct acme_observer *obs, char **cause)
{
    struct entry *e = r != NULL ? entry_find(r, name) : NULL;
    int rc;

    if (r == NULL || r->stopping) {
        err_set(cause, "the agent is stopping");
        return -E_UNAVAILABLE;
    }
    if (e == NULL || e->version == 0 || e->loading) {
        err_set(cause, "'%s' is being planned; try again in a moment", name);
        return e == NULL ? -E_NOT_FOUND : -E_BUSY;
    }
    if (e->in_progress) {
        err_set(cause, "a renewal of '%s' is already running", name);
        return -E_BUSY;
    }
    if (e->source == CERT_SOURCE_FLEET && e->ca == NULL) {
        err_set(cause,
                "'%s' came from the fleet without saying how it was ordered (an older node "
                "issued it): the node that issued it renews it (certctl renew %s --force there)",
                name, name);
        return -E_BAD_INPUT;
    }
    if (e->source == CERT_SOURCE_IMPORT) {
        err_set(cause,
                "'%s' was imported; certagent cannot renew it (request one from a CA "
                "with certctl request, or import its next version)",
                name);
        return -E_BAD_INPUT;
    }
    log_info("renewing '%s' (asked for)", e->name);
    if (needs_lock(r, e))
        return lock_start(r, e, obs, cause);
    if ((rc = attempt_start(r, e, obs, cause)) != 0) {
        e->in_progress = 0;
        r->running--;
        e->attempts_total--;
        return rc;
    }
    save(r);
    return 0;
}
