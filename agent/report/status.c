/*
 * The status report (status.h): warnings per certificate, the health, the
 * status op and the status file.  The PEM checks (key, signature, chain)
 * run in the thread pool, one job at a time over a batch of new versions,
 * and land in a cache keyed by name and version.
 */
#include "status.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme.h"
#include "canary.h"
#include "config.h"
#include "env.h"
#include "deploy.h"
#include "err.h"
#include "events.h"
#include "fsutil.h"
#include "log.h"
#include "pem.h"
#include "platform.h"
#include "probe.h"
#include "proto.h"
#include "renew.h"
#include "served.h"
#include "store-pack.h"
#include "store.h"
#include "sys.h"
#include "trust.h"
#include "version.h"
#include "view.h"

/* Changes within this many milliseconds make one write of the status file. */
#define STATUS_DEBOUNCE_MS 200
/* Warnings change as time passes: the report is re-evaluated this often. */
#define STATUS_REFRESH_MS (3600u * 1000)
/* Versions checked per thread-pool job. */
#define ANALYSIS_BATCH 2048
/* A planned renewal this late (and not running) is overdue. */
#define OVERDUE_GRACE (3600)
#define STATUS_FILE "status.json"

/* What the pool found in one version's PEM. */
struct analysis {
    int done;
    int self_signed;
    char key_type[24];
    int key_bits;
    int weak_key;
    char sig_alg[48];
    int weak_sig;
    int chain_complete;         /* 1, 0, or -1 when it could not be checked */
    char missing[256];          /* the first missing issuer */
    int64_t chain_first_expiry; /* earliest not_after in the chain; 0: no chain */
    char chain_first_subject[256];
};

struct status_entry {
    struct status_entry *next;
    char *name;
    unsigned version;
    char fingerprint[128];   /* of the version: a name removed and made again is not confused */
    unsigned long trust_gen; /* the trust store's generation when checked: a change checks again */
    struct analysis a;
    uint32_t
        judged;     /* hash of the level and warning codes last announced (EVENT_STATUS_CHANGED) */
    int judged_set; /* judged holds one */
};

#define NBUCKETS 4096

struct status {
    const struct env *env;
    struct status_inputs in;
    struct status_entry *buckets[NBUCKETS];
    uv_timer_t debounce;
    uv_timer_t refresh;
    int timers; /* the timers are initialised */
    int stopping;
    int analysis_running; /* a job is in the pool */
    int analysis_again;   /* something changed meanwhile */
    int write_running;
    int write_dirty; /* a change came while writing */
    struct metrics_http *http;
    status_agent_warnings_fn agent_warnings; /* notify_failing and the like; NULL: none */
    void *agent_warnings_arg;
    status_acked_fn acked; /* acknowledged problems (notify); NULL: none */
    void *acked_arg;
};

const char *
status_level_name(int level)
{
    return level >= STATUS_CRITICAL ? "critical" : level == STATUS_WARNING ? "warning" : "ok";
}

int
status_expiry_level(int64_t not_before, int64_t not_after, int64_t now, int warn_days,
                    int critical_days, int64_t *threshold)
{
    int64_t lifetime = not_after - not_before, left = not_after - now;
    int64_t warn = lifetime / 4, crit = lifetime / 10;

    if (warn > (int64_t)warn_days * 86400)
        warn = (int64_t)warn_days * 86400;
    if (crit > (int64_t)critical_days * 86400)
        crit = (int64_t)critical_days * 86400;
    if (threshold != NULL)
        *threshold = 0;
    if (left <= 0 || left < crit) {
        if (threshold != NULL)
            *threshold = crit;
        return STATUS_CRITICAL;
    }
    if (left < warn) {
        if (threshold != NULL)
            *threshold = warn;
        return STATUS_WARNING;
    }
    return STATUS_OK;
}

/* The cache. */

static size_t
bucket_of(const char *name)
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % NBUCKETS;
}

static struct status_entry *
entry_find(struct status *st, const char *name)
{
    for (struct status_entry *e = st->buckets[bucket_of(name)]; e != NULL; e = e->next) {
        if (strcmp(e->name, name) == 0)
            return e;
    }
    return NULL;
}

static int
same_version(const struct status_entry *e, const struct store_cert *cert)
{
    const struct store_version *v = store_current(cert);

    return e->version == cert->current && v != NULL && v->fingerprint != NULL &&
           strcmp(e->fingerprint, v->fingerprint) == 0;
}

/*
 * The analysis of name's current version, or NULL while it is not known.
 * After a change of the trust store the old one stays in use until the new
 * one is there (needs_check says it is due).
 */
static const struct analysis *
analysis_of(struct status *st, const struct store_cert *cert)
{
    struct status_entry *e = st != NULL ? entry_find(st, cert->name) : NULL;

    return e != NULL && same_version(e, cert) && e->a.done ? &e->a : NULL;
}

static int
needs_check(struct status *st, const struct store_cert *cert)
{
    struct status_entry *e = entry_find(st, cert->name);

    return e == NULL || !same_version(e, cert) || !e->a.done ||
           e->trust_gen != st->in.trust->generation;
}

/* Was name's analysis made with another trust store (and is being made again)? */
static int
trust_changed_since(struct status *st, const struct store_cert *cert)
{
    struct status_entry *e = entry_find(st, cert->name);

    return e != NULL && e->trust_gen != st->in.trust->generation;
}

static void
entry_store(struct status *st, const char *name, unsigned version, const char *fingerprint,
            unsigned long trust_gen, const struct analysis *a)
{
    struct status_entry *e = entry_find(st, name);
    size_t b = bucket_of(name);

    if (e == NULL) {
        if ((e = calloc(1, sizeof(*e))) == NULL || (e->name = strdup(name)) == NULL) {
            free(e);
            return;
        }
        e->next = st->buckets[b];
        st->buckets[b] = e;
    }
    e->version = version;
    snprintf(e->fingerprint, sizeof(e->fingerprint), "%s", fingerprint);
    e->trust_gen = trust_gen;
    e->a = *a;
}

static void
cache_clear(struct status *st)
{
    for (size_t b = 0; b < NBUCKETS; b++) {
        while (st->buckets[b] != NULL) {
            struct status_entry *e = st->buckets[b];

            st->buckets[b] = e->next;
            free(e->name);
            free(e);
        }
    }
}

/* The analysis job (thread pool). */

struct analysis_item {
    char *name;
    unsigned version;
    char fingerprint[128];
    struct analysis a;
};

struct analysis_job {
    uv_work_t work;
    struct status *st;
    struct store *store;
    struct trust_ctx *ctx;
    unsigned long trust_gen;
    int64_t now;
    struct analysis_item *items;
    size_t n;
};

static void
copy_text(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src != NULL ? src : "");
}

/* Reads a version's file as certificates; an empty or missing chain is an empty stack. */
static STACK_OF(X509) *
    read_certs(struct store *store, const char *name, unsigned version, const char *file)
{
    unsigned char *data = NULL;
    size_t len = 0;
    STACK_OF(X509) *certs = NULL;
    char *cause = NULL;

    if (store_read_file(store, name, version, file, &data, &len, &cause) == 0 && len > 0)
        pem_read_certs(data, len, file, &certs, &cause);
    free(data);
    free(cause);
    return certs != NULL ? certs : sk_X509_new_null();
}

/* Does the chain, followed from leaf by issuer, end in a self-signed certificate? */
static int
reaches_self_signed(X509 *leaf, STACK_OF(X509) * chain)
{
    X509 *cur = leaf;

    for (int hops = 0; hops <= sk_X509_num(chain); hops++) {
        X509 *next = NULL;

        if (hops > 0 && X509_self_signed(cur, 0) == 1)
            return 1;
        for (int i = 0; i < sk_X509_num(chain) && next == NULL; i++) {
            X509 *c = sk_X509_value(chain, i);

            if (c != cur && X509_check_issued(c, cur) == X509_V_OK)
                next = c;
        }
        if (next == NULL)
            return 0;
        cur = next;
    }
    return 0;
}

static void
analyse(struct analysis_job *job, struct analysis_item *it, int ctx_ok)
{
    struct analysis *a = &it->a;
    STACK_OF(X509) *leafs = read_certs(job->store, it->name, it->version, "cert.pem");
    STACK_OF(X509) *chain = read_certs(job->store, it->name, it->version, "chain.pem");
    X509 *leaf = leafs != NULL && sk_X509_num(leafs) > 0 ? sk_X509_value(leafs, 0) : NULL;
    struct cert_info info;
    char *cause = NULL;
    int md = NID_undef, pk = NID_undef;

    memset(a, 0, sizeof(*a));
    a->done = 1;
    a->chain_complete = -1;
    if (leaf == NULL || chain == NULL || pem_cert_info(leaf, &info, &cause) != 0)
        goto out;
    a->self_signed = info.self_signed;
    copy_text(a->key_type, sizeof(a->key_type), info.key_type);
    a->key_bits = info.key_bits;
    a->weak_key = (strcmp(info.key_type, "RSA") == 0 || strcmp(info.key_type, "DSA") == 0) &&
                  info.key_bits < 2048;
    copy_text(a->sig_alg, sizeof(a->sig_alg), info.sig_alg);
    /* Nobody checks the signature of a self-signed certificate (trust.c agrees). */
    a->weak_sig = !info.self_signed &&
                  OBJ_find_sigid_algs(X509_get_signature_nid(leaf), &md, &pk) == 1 &&
                  (md == NID_md5 || md == NID_sha1 || md == NID_md4 || md == NID_md2);
    pem_cert_info_free(&info);
    for (int i = 0; i < sk_X509_num(chain); i++) {
        struct cert_info ci;

        if (pem_cert_info(sk_X509_value(chain, i), &ci, &cause) != 0)
            continue;
        if (a->chain_first_expiry == 0 || ci.not_after < a->chain_first_expiry) {
            a->chain_first_expiry = ci.not_after;
            copy_text(a->chain_first_subject, sizeof(a->chain_first_subject), ci.subject);
        }
        pem_cert_info_free(&ci);
    }
    if (a->self_signed || reaches_self_signed(leaf, chain)) {
        a->chain_complete = 1;
    } else if (ctx_ok) {
        struct trust_verify_opts o;
        struct trust_report r;

        memset(&o, 0, sizeof(o));
        memset(&r, 0, sizeof(r));
        o.purpose = TRUST_PURPOSE_SERVER;
        o.given_source = "stored chain";
        o.now = job->now;
        if (trust_verify(job->ctx, leaf, chain, &o, &r, &cause) == 0) {
            a->chain_complete = r.complete;
            copy_text(a->missing, sizeof(a->missing), r.missing);
        }
        trust_report_free(&r);
    }
out:
    ERR_clear_error();
    free(cause);
    sk_X509_pop_free(leafs, X509_free);
    sk_X509_pop_free(chain, X509_free);
}

static void
analysis_run(uv_work_t *work)
{
    struct analysis_job *job = (struct analysis_job *)work;
    char *cause = NULL;
    int ctx_ok = job->ctx != NULL && trust_ctx_load(job->ctx, &cause) == 0;

    free(cause);
    for (size_t i = 0; i < job->n; i++)
        analyse(job, &job->items[i], ctx_ok);
}

static void analysis_queue(struct status *st);
static void schedule_write(struct status *st);
static void status_reload(struct status *st);

static void
analysis_after(uv_work_t *work, int status)
{
    struct analysis_job *job = (struct analysis_job *)work;
    struct status *st = job->st;

    (*st->env->jobs)--;
    st->analysis_running = 0;
    for (size_t i = 0; i < job->n; i++) {
        if (status == 0)
            entry_store(st, job->items[i].name, job->items[i].version, job->items[i].fingerprint,
                        job->trust_gen, &job->items[i].a);
        free(job->items[i].name);
    }
    free(job->items);
    trust_ctx_free(job->ctx);
    free(job);
    if (status != 0 || st->stopping)
        return;
    analysis_queue(st);
    schedule_write(st);
}

/* Queues the check of current versions the cache does not know yet (one job at a time). */
static void
analysis_queue(struct status *st)
{
    struct analysis_job *job = NULL;
    size_t total = store_count(st->in.store);
    int rc;

    if (st->stopping)
        return;
    if (st->analysis_running) {
        st->analysis_again = 1;
        return;
    }
    st->analysis_again = 0;
    for (size_t i = 0; i < total; i++) {
        const struct store_cert *cert = store_at(st->in.store, i);

        if (cert->current == 0 || !needs_check(st, cert))
            continue;
        if (job == NULL) {
            if ((job = calloc(1, sizeof(*job))) == NULL ||
                (job->items = calloc(ANALYSIS_BATCH, sizeof(*job->items))) == NULL)
                goto fail;
        }
        if ((job->items[job->n].name = strdup(cert->name)) == NULL)
            goto fail;
        snprintf(job->items[job->n].fingerprint, sizeof(job->items[0].fingerprint), "%s",
                 store_current(cert)->fingerprint != NULL ? store_current(cert)->fingerprint : "");
        job->items[job->n++].version = cert->current;
        if (job->n == ANALYSIS_BATCH)
            break;
    }
    if (job == NULL)
        return;
    job->st = st;
    job->store = st->in.store;
    job->now = (int64_t)time(NULL);
    job->ctx = trust_ctx_new(st->in.trust, st->env->config->trust_system_roots);
    job->trust_gen = st->in.trust->generation;
    if ((rc = uv_queue_work(st->env->loop, &job->work, analysis_run, analysis_after)) != 0) {
        log_warn("status: cannot queue the certificate checks: %s", uv_strerror(rc));
        goto fail;
    }
    (*st->env->jobs)++;
    st->analysis_running = 1;
    return;
fail:
    if (job != NULL) {
        for (size_t i = 0; i < job->n; i++)
            free(job->items[i].name);
        free(job->items);
        trust_ctx_free(job->ctx);
        free(job);
    }
}

/* Warnings. */

static struct status_warning *
warning_add(struct status_eval *ev, const char *code, int level)
{
    struct status_warning *w;

    if (ev->nwarnings >= STATUS_WARNINGS_MAX)
        return NULL;
    w = &ev->w[ev->nwarnings++];
    memset(w, 0, sizeof(*w));
    w->code = code;
    w->level = level;
    if (level > ev->level)
        ev->level = level;
    return w;
}

static void
data_num(struct status_warning *w, const char *key, int64_t v)
{
    if (w->ndata < STATUS_DATA_MAX) {
        w->data[w->ndata].key = key;
        w->data[w->ndata].is_str = 0;
        w->data[w->ndata++].num = v;
    }
}

static void
data_str(struct status_warning *w, const char *key, const char *v)
{
    if (w->ndata < STATUS_DATA_MAX) {
        w->data[w->ndata].key = key;
        w->data[w->ndata].is_str = 1;
        copy_text(w->data[w->ndata++].str, sizeof(w->data[0].str), v);
    }
}

/* "in 5 days", "in 7 hours", "in 12 minutes" (or "... ago"). */
static void
format_span(int64_t seconds, char *buf, size_t len)
{
    int64_t s = seconds < 0 ? -seconds : seconds;
    const char *suffix = seconds < 0 ? " ago" : "";
    const char *prefix = seconds < 0 ? "" : "in ";

    if (s >= 2 * 86400)
        snprintf(buf, len, "%s%lld days%s", prefix, (long long)(s / 86400), suffix);
    else if (s >= 2 * 3600)
        snprintf(buf, len, "%s%lld hours%s", prefix, (long long)(s / 3600), suffix);
    else
        snprintf(buf, len, "%s%lld minutes%s", prefix, (long long)(s / 60), suffix);
}

static void
warn_expiry(struct status *st, const struct store_cert *cert, const struct store_version *v,
            const struct renew_info *ri, int have_ri, int64_t now, struct status_eval *ev)
{
    int64_t threshold, left = v->not_after - now;
    int level = status_expiry_level(v->not_before, v->not_after, now, st->env->config->warn_days,
                                    st->env->config->critical_days, &threshold);
    int overdue = have_ri && ri->next != 0 && !ri->in_progress && ri->next + OVERDUE_GRACE < now;
    struct status_warning *w;
    char span[64], date[32];

    if (level == STATUS_OK && !overdue)
        return;
    if ((w = warning_add(ev, "expiring", level == STATUS_OK ? STATUS_WARNING : level)) == NULL)
        return;
    sys_format_time(v->not_after, date, sizeof(date));
    format_span(left, span, sizeof(span));
    if (left <= 0)
        snprintf(w->message, sizeof(w->message), "%s expired %s (%s)", cert->name, span, date);
    else if (level == STATUS_OK)
        snprintf(w->message, sizeof(w->message),
                 "%s: the renewal planned for %lld minutes ago has not happened; it expires %s "
                 "(%s)",
                 cert->name, (long long)((now - ri->next) / 60), span, date);
    else
        snprintf(w->message, sizeof(w->message),
                 "%s expires %s (%s), less than %s of its %lld-day lifetime%s", cert->name, span,
                 date, level == STATUS_CRITICAL ? "a tenth" : "a quarter",
                 (long long)((v->not_after - v->not_before) / 86400),
                 overdue ? "; its renewal is overdue" : "");
    data_num(w, "not_after", v->not_after);
    data_num(w, "days_left", pem_days_left(v->not_after, now));
    data_num(w, "threshold_days", threshold / 86400);
    data_num(w, "overdue", overdue);
}

/*
 * The current version was revoked at its CA (certctl revoke): critical, with
 * what happens next (the scheduler replaces it, or the command that does).
 */
static void
warn_revoked(struct status *st, const struct store_cert *cert, const struct store_version *v,
             const struct renew_info *ri, int have_ri, struct status_eval *ev)
{
    const char *reason = v->revoked_reason != NULL ? v->revoked_reason : "unspecified";
    struct status_warning *w;
    char date[32], next[256];

    if (v->revoked == 0 || (w = warning_add(ev, "revoked", STATUS_CRITICAL)) == NULL)
        return;
    sys_format_time(v->revoked, date, sizeof(date));
    if (have_ri && ri->in_progress)
        snprintf(next, sizeof(next), "a new version is being requested now");
    else if (have_ri && ri->next_reason != NULL && strcmp(ri->next_reason, "revoked") == 0)
        snprintf(next, sizeof(next), "the agent requests a new version now");
    else if (have_ri && ri->failures > 0 && ri->auto_renew)
        snprintf(next, sizeof(next),
                 "replacing it has failed so far (see renewal_failing); certctl renew %s "
                 "--force tries again",
                 cert->name);
    else if (v->source == CERT_SOURCE_ACME && !st->env->config->renew_after_revoke)
        snprintf(next, sizeof(next),
                 "renew_after_revoke is false, so it is not replaced by itself: run certctl "
                 "renew %s --force",
                 cert->name);
    else if (v->source == CERT_SOURCE_ACME && have_ri && !ri->auto_renew)
        snprintf(next, sizeof(next),
                 "auto-renew is off, so it is not replaced by itself: run certctl renew %s "
                 "--force",
                 cert->name);
    else
        snprintf(next, sizeof(next), "replace it with certctl renew %s --force", cert->name);
    snprintf(w->message, sizeof(w->message),
             "%s: version %u was revoked at its CA on %s (%s): clients that check revocation "
             "refuse it; %s",
             cert->name, v->version, date, reason, next);
    data_num(w, "version", v->version);
    data_num(w, "revoked", v->revoked);
    data_str(w, "reason", reason);
}

/*
 * The served check (deploy/served.c): an endpoint that serves another
 * certificate than the current version (served_stale: critical when what it
 * serves expires within critical_days) or that could not be checked
 * (served_unreachable).  Nothing during the grace after a deploy.
 */
static void
warn_served(struct status *st, const struct store_cert *cert, const struct store_version *v,
            int64_t now, struct status_eval *ev)
{
    size_t n = 0;
    int grace = 0;
    const struct served_endpoint *e = served_endpoints(st->in.served, cert->name, &n, &grace);
    struct status_warning *w;
    char date[32], sni[300], which[48];

    for (size_t i = 0; i < n && !grace; i++, e++) {
        snprintf(sni, sizeof(sni), "%s%s%s", e->sni != NULL ? " (server name " : "",
                 e->sni != NULL ? e->sni : "", e->sni != NULL ? ")" : "");
        if (e->result == SERVED_STALE) {
            int critical = e->not_after - now < (int64_t)st->env->config->critical_days * 86400;

            if ((w = warning_add(ev, "served_stale",
                                 critical ? STATUS_CRITICAL : STATUS_WARNING)) == NULL)
                return;
            sys_format_time(e->not_after, date, sizeof(date));
            if (e->served_version != 0)
                snprintf(which, sizeof(which), "version %u", e->served_version);
            else
                snprintf(which, sizeof(which), "not a stored version");
            snprintf(w->message, sizeof(w->message),
                     "%s: %s%s serves serial %s (%s, %s, not after %s), not the current version "
                     "%u (serial %s): the service did not load it; reload it (or fix its deploy "
                     "hook) and run certctl deploy %s --wait-served",
                     cert->name, e->url, sni, e->serial != NULL ? e->serial : "?",
                     e->subject != NULL ? e->subject : "?", which, date, v->version,
                     v->serial != NULL ? v->serial : "?", cert->name);
            data_str(w, "url", e->url);
            data_str(w, "served_serial", e->serial != NULL ? e->serial : "");
            data_str(w, "current_serial", v->serial != NULL ? v->serial : "");
            data_num(w, "served_not_after", e->not_after);
        } else if (e->result == SERVED_UNREACHABLE) {
            if ((w = warning_add(ev, "served_unreachable", STATUS_WARNING)) == NULL)
                return;
            snprintf(w->message, sizeof(w->message),
                     "%s: cannot check what %s%s serves: %s; start the service or fix the URL "
                     "(certctl set %s --no-check-served URL removes it)",
                     cert->name, e->url, sni, e->error != NULL ? e->error : "no reason given",
                     cert->name);
            data_str(w, "url", e->url);
            data_str(w, "error", e->error != NULL ? e->error : "");
            data_num(w, "checked", e->checked);
        }
    }
}

/*
 * The fleet (fleet/view.c): fleet_unreachable on a fleet certificate while
 * etcd has not answered for cluster.fleet_grace (renewals of shared names
 * wait; the local copy is served), fleet_behind when this node's version is
 * older than the fleet's, or its deploy fails, for more than a minute.
 */
static void
warn_fleet(struct status *st, const struct store_cert *cert, struct status_eval *ev)
{
    struct view_cert_state fs;
    struct status_warning *w;
    int64_t since = 0;
    char why[384], span[64];

    if (st->in.fleet_view == NULL)
        return;
    view_cert_state(st->in.fleet_view, cert->name, &fs);
    if (!fs.fleet)
        return;
    if (view_unreachable(st->in.fleet_view, &since, why, sizeof(why)) &&
        (w = warning_add(ev, "fleet_unreachable", STATUS_WARNING)) != NULL) {
        sys_format_time(since, span, sizeof(span));
        snprintf(w->message, sizeof(w->message),
                 "%s: the fleet's etcd has not answered since %s (%s); this node serves its "
                 "local copy and the fleet's renewals and new versions wait for etcd (certctl "
                 "fleet status shows the fleet once it answers)",
                 cert->name, span, why);
        data_str(w, "error", why);
        data_num(w, "since", since);
    }
    if (fs.behind && (w = warning_add(ev, "fleet_behind", STATUS_WARNING)) != NULL) {
        sys_format_time(fs.since, span, sizeof(span));
        if (fs.deploy_failing)
            snprintf(w->message, sizeof(w->message),
                     "%s: this node has the fleet's version %u (serial %s) but deploying it "
                     "fails since %s, so its targets serve an older one; fix it and run "
                     "certctl deploy %s",
                     cert->name, fs.fleet_version, fs.fleet_serial, span, cert->name);
        else
            snprintf(w->message, sizeof(w->message),
                     "%s: this node's version is older than the fleet's version %u (serial %s) "
                     "since %s (certctl logs says why it was not taken; certctl fleet status "
                     "shows every node)",
                     cert->name, fs.fleet_version, fs.fleet_serial, span);
        data_num(w, "fleet_version", fs.fleet_version);
        data_str(w, "fleet_serial", fs.fleet_serial);
        data_num(w, "since", fs.since);
        data_num(w, "deploy_failing", fs.deploy_failing);
    }
}

size_t
status_fleet_warnings(struct status *st, struct status_warning *out, size_t max)
{
    int64_t since = 0;
    char why[384], span[64];

    if (max == 0 || st->in.fleet_view == NULL ||
        !view_unreachable(st->in.fleet_view, &since, why, sizeof(why)))
        return 0;
    memset(out, 0, sizeof(*out));
    out->code = "fleet_unreachable";
    out->level = STATUS_WARNING;
    sys_format_time(since, span, sizeof(span));
    snprintf(out->message, sizeof(out->message),
             "the fleet's etcd has not answered since %s (%s); local certificates are served, "
             "shared ones wait for the fleet (certctl fleet status shows it once it answers)",
             span, why);
    out->ndata = 1;
    out->data[0].key = "since";
    out->data[0].num = since;
    return 1;
}

void
status_evaluate(struct status *st, const struct store_cert *cert, int64_t now,
                struct status_eval *ev)
{
    const struct store_version *v = store_current(cert);
    const struct analysis *a = analysis_of(st, cert);
    struct renew_info ri;
    int have_ri;
    struct status_warning *w;
    char span[64];

    /* Only the counts: a warning is cleared when it is added (the struct is large). */
    ev->level = STATUS_OK;
    ev->nwarnings = 0;
    if (v == NULL)
        return;
    memset(&ri, 0, sizeof(ri));
    have_ri = st->in.renew != NULL && renew_info_get(st->in.renew, cert->name, &ri) == 0;
    if (have_ri && ri.last_ok == 0 && ri.last_attempt != 0 &&
        (w = warning_add(ev, "renewal_failing", STATUS_WARNING)) != NULL) {
        if (ri.next != 0)
            format_span(ri.next - now, span, sizeof(span));
        snprintf(w->message, sizeof(w->message),
                 "%s: renewal failing (%u attempt%s in a row): %s; next try %s", cert->name,
                 ri.failures, ri.failures == 1 ? "" : "s",
                 ri.last_error != NULL ? ri.last_error : "no reason given",
                 ri.next != 0 ? span : "not planned");
        data_str(w, "error", ri.last_error != NULL ? ri.last_error : "");
        data_num(w, "failures", ri.failures);
        data_num(w, "last_attempt", ri.last_attempt);
        data_num(w, "next_retry", ri.next);
    }
    if (v->source == CERT_SOURCE_ACME && have_ri && ri.ca != NULL && st->in.acme != NULL &&
        !acme_ca_known(st->in.acme, ri.ca) &&
        (w = warning_add(ev, "ca_unknown", STATUS_WARNING)) != NULL) {
        /* Its CA was removed (ca remove --force) or left the config: renewal cannot work. */
        snprintf(w->message, sizeof(w->message),
                 "%s renews with CA '%s', which the agent does not know, so its renewal will "
                 "fail; add the CA again (certctl ca add %s --directory URL, which finds its "
                 "account) or get it from another CA (certctl request %s --dns ... --ca CA)",
                 cert->name, ri.ca, ri.ca, cert->name);
        data_str(w, "ca", ri.ca);
    }
    warn_revoked(st, cert, v, &ri, have_ri, ev);
    warn_expiry(st, cert, v, &ri, have_ri, now, ev);
    if (have_ri && ri.preferred_ca != NULL && ri.ca != NULL &&
        (w = warning_add(ev, "ca_fallback_in_use", STATUS_WARNING)) != NULL) {
        /* Issued by a fallback CA because its own failed (docs/resilience.md). */
        snprintf(w->message, sizeof(w->message),
                 "%s: the current version comes from fallback CA '%s' because its own CA "
                 "'%s' failed; its next renewal goes back to '%s' (certctl renew %s --force "
                 "tries now)",
                 cert->name, ri.ca, ri.preferred_ca, ri.preferred_ca, cert->name);
        data_str(w, "ca", ri.ca);
        data_str(w, "preferred_ca", ri.preferred_ca);
    }
    if (have_ri && ri.last_resort &&
        (w = warning_add(ev, "last_resort_in_use", STATUS_CRITICAL)) != NULL) {
        /* The last resort's self-signed stand-in (docs/resilience.md). */
        snprintf(w->message, sizeof(w->message),
                 "%s: renewal failed before expiry, so a self-signed stand-in is deployed "
                 "(clients warn); it is replaced at the first renewal that succeeds at CA '%s' "
                 "(certctl renew %s --force tries now; certctl rollback %s goes back to the CA's "
                 "version)",
                 cert->name, ri.ca != NULL ? ri.ca : "?", cert->name, cert->name);
        data_num(w, "not_after", v->not_after);
    }
    {
        unsigned dv = 0;
        int64_t since = 0;
        const char *derr = deploy_error(st->in.deploy, cert->name, &dv, &since);

        if (derr != NULL && (w = warning_add(ev, "deploy_failing", STATUS_WARNING)) != NULL) {
            sys_format_time(since, span, sizeof(span));
            snprintf(w->message, sizeof(w->message),
                     "%s: deploying version %u failed, so its deploy targets or hooks may still "
                     "serve an older version: %s (failing since %s); fix it and run certctl "
                     "deploy %s",
                     cert->name, dv, derr, span, cert->name);
            data_str(w, "error", derr);
            data_num(w, "version", dv);
            data_num(w, "since", since);
        }
    }
    warn_served(st, cert, v, now, ev);
    if (a != NULL && a->chain_complete == 0 &&
        (w = warning_add(ev, "chain_incomplete", STATUS_WARNING)) != NULL) {
        /* A verdict of the trust store before a change is marked until the check against
         * the new one (queued at once on EVENT_TRUST_CHANGED) is back. */
        int checking = trust_changed_since(st, cert);

        snprintf(w->message, sizeof(w->message),
                 "%s: the stored chain is incomplete: it reaches neither a self-signed root nor "
                 "a trust anchor; missing the issuer %s%s",
                 cert->name, a->missing[0] ? a->missing : "(unknown)",
                 checking ? " (checking again: the trust store changed)" : "");
        data_str(w, "missing", a->missing);
        data_num(w, "chain_length", v->chain_len);
        data_num(w, "checking", checking);
    }
    if (a != NULL && a->chain_first_expiry != 0 && a->chain_first_expiry <= now &&
        (w = warning_add(ev, "chain_expired_intermediate", STATUS_CRITICAL)) != NULL) {
        sys_format_time(a->chain_first_expiry, span, sizeof(span));
        snprintf(w->message, sizeof(w->message),
                 "%s: the chain holds an expired certificate: %s expired %s", cert->name,
                 a->chain_first_subject, span);
        data_str(w, "subject", a->chain_first_subject);
        data_num(w, "not_after", a->chain_first_expiry);
    }
    if (a != NULL && a->weak_key && (w = warning_add(ev, "weak_key", STATUS_WARNING)) != NULL) {
        snprintf(w->message, sizeof(w->message), "%s has a weak %s key of %d bits (2048 at least)",
                 cert->name, a->key_type, a->key_bits);
        data_str(w, "key_type", a->key_type);
        data_num(w, "bits", a->key_bits);
    }
    if (a != NULL && a->weak_sig &&
        (w = warning_add(ev, "weak_signature", STATUS_WARNING)) != NULL) {
        snprintf(w->message, sizeof(w->message),
                 "%s is signed with %s, a weak algorithm that clients reject", cert->name,
                 a->sig_alg);
        data_str(w, "algorithm", a->sig_alg);
    }
    if (v->source == CERT_SOURCE_SELFSIGNED &&
        /* The dashboard's own certificate is self-signed on purpose (web/dashboard.c). */
        !(strcmp(cert->name, CONFIG_DASHBOARD_SELFSIGNED) == 0 &&
          st->env->config->dashboard_listen != NULL &&
          st->env->config->dashboard_certificate == NULL) &&
        (w = warning_add(ev, "self_signed_in_use", STATUS_WARNING)) != NULL) {
        snprintf(w->message, sizeof(w->message),
                 "%s is self-signed: clients do not trust it unless told to", cert->name);
        data_num(w, "not_after", v->not_after);
    }
    warn_fleet(st, cert, ev);
}

/* Packing the report. */

static void
pack_warning(msgpack_packer *pk, const struct status_warning *w)
{
    msgpack_pack_map(pk, 3 + w->ndata);
    proto_pack_kv_str(pk, "code", w->code);
    proto_pack_kv_str(pk, "level", status_level_name(w->level));
    proto_pack_kv_str(pk, "message", w->message);
    for (size_t i = 0; i < w->ndata; i++) {
        if (w->data[i].is_str)
            proto_pack_kv_str(pk, w->data[i].key, w->data[i].str);
        else
            proto_pack_kv_int(pk, w->data[i].key, w->data[i].num);
    }
}

static void
kv_int_or_nil(msgpack_packer *pk, const char *key, int have, int64_t v)
{
    if (have && v != 0)
        proto_pack_kv_int(pk, key, v);
    else
        proto_pack_kv_nil(pk, key);
}

static void
kv_str_or_nil(msgpack_packer *pk, const char *key, const char *v)
{
    if (v != NULL)
        proto_pack_kv_str(pk, key, v);
    else
        proto_pack_kv_nil(pk, key);
}

/*
 * One row of the report: the fields of list (ops_pack_cert) and the
 * scheduler's, the warnings and the row's health.
 */
void
status_pack_row(struct status *st, msgpack_packer *pk, const struct store_cert *cert, int64_t now,
                struct status_counts *c)
{
    const struct store_version *v = store_current(cert);
    struct status_eval *ev = malloc(sizeof(*ev));
    struct renew_info ri;
    int have = 0;
    const char *result = NULL;

    memset(&ri, 0, sizeof(ri));
    if (ev == NULL) {
        msgpack_pack_nil(pk);
        return;
    }
    status_evaluate(st, cert, now, ev);
    have = st->in.renew != NULL && renew_info_get(st->in.renew, cert->name, &ri) == 0;
    if (have && ri.last_attempt != 0)
        result = ri.last_ok == 1 ? "ok" : ri.last_ok == 0 ? "failed" : NULL;
    msgpack_pack_map(pk, STORE_CERT_FIELDS + 16 + 1 /* served */);
    store_pack_cert_fields(pk, cert, now);
    kv_str_or_nil(pk, "ca", have ? ri.ca : NULL);
    proto_pack_kv_int(pk, "lifetime_days", (v->not_after - v->not_before) / 86400);
    proto_pack_kv_bool(pk, "auto_renew", have && ri.auto_renew);
    kv_int_or_nil(pk, "next_renewal", have, ri.next);
    kv_str_or_nil(pk, "next_reason", have && ri.next != 0 ? ri.next_reason : NULL);
    kv_int_or_nil(pk, "last_attempt", have, ri.last_attempt);
    kv_str_or_nil(pk, "last_result", result);
    kv_str_or_nil(pk, "last_error", have && ri.last_ok == 0 ? ri.last_error : NULL);
    kv_int_or_nil(pk, "last_success", have, ri.last_success);
    proto_pack_kv_uint(pk, "failures", have ? ri.failures : 0);
    proto_pack_kv_bool(pk, "in_progress", have && ri.in_progress);
    proto_pack_kv_str(pk, "health", status_level_name(ev->level));
    if (st == NULL || needs_check(st, cert)) {
        proto_pack_kv_bool(pk, "checked", 0);
        c->unchecked++;
    } else {
        proto_pack_kv_bool(pk, "checked", 1);
    }
    proto_pack_str(pk, "warnings");
    msgpack_pack_array(pk, ev->nwarnings);
    for (size_t i = 0; i < ev->nwarnings; i++)
        pack_warning(pk, &ev->w[i]);
    {
        /* What the Windows stores hold of it: {"MY": THUMBPRINT} (deploy.c records it). */
        const struct cert_settings *cs = deploy_settings(st->in.deploy, cert->name);

        proto_pack_str(pk, "windows_store");
        msgpack_pack_map(pk, cs != NULL ? cs->nthumbprints : 0);
        for (size_t i = 0; cs != NULL && i < cs->nthumbprints; i++)
            proto_pack_kv_str(pk, cs->thumbprints[i].store, cs->thumbprints[i].thumbprint);
    }
    /* The codes of its open problem someone acknowledged (certctl ack), or nil. */
    kv_str_or_nil(pk, "acknowledged",
                  st->acked != NULL ? st->acked(st->acked_arg, cert->name) : NULL);
    proto_pack_str(pk, "served"); /* the served check's endpoints (deploy/served.c) */
    served_pack(st->in.served, cert->name, pk);
    c->n++;
    if (v->not_after <= now)
        c->expired++;
    else if (pem_days_left(v->not_after, now) < 30)
        c->expiring_30d++;
    if (v->not_after > now && pem_days_left(v->not_after, now) < st->env->config->warn_days)
        c->expiring++;
    if (ev->level == STATUS_CRITICAL)
        c->critical++;
    else if (ev->level == STATUS_WARNING)
        c->warning++;
    else
        c->ok++;
    c->warnings += ev->nwarnings;
    if (ev->level > c->health)
        c->health = ev->level;
    free(ev);
}

void
status_pack_summary(struct status *st, msgpack_packer *pk, const struct status_counts *c,
                    int64_t now)
{
    struct status_warning aw[4];
    size_t naw =
        st->agent_warnings != NULL ? st->agent_warnings(st->agent_warnings_arg, aw, 4) : 0;
    int health = c->health;

    for (size_t i = 0; i < naw; i++)
        health = aw[i].level > health ? aw[i].level : health;
    proto_pack_kv_str(pk, "agent", CERTAGENT_VERSION);
    proto_pack_kv_uint(pk, "proto", PROTO_VERSION);
    proto_pack_kv_int(pk, "pid", platform_pid());
    proto_pack_kv_int(pk, "started", st->in.started);
    proto_pack_kv_uint(pk, "uptime_seconds", (uv_hrtime() - st->in.started_hr) / 1000000000u);
    proto_pack_kv_str(pk, "state_dir", st->env->state_dir);
    proto_pack_kv_str(pk, "socket", st->in.socket_path);
    proto_pack_kv_str(pk, "config", st->in.config_path);
    proto_pack_kv_uint(pk, "count", c->n);
    proto_pack_kv_uint(pk, "expired", c->expired);
    proto_pack_kv_uint(pk, "expiring_30d", c->expiring_30d);
    /* The same count against the configured warn_days (the header of certctl status). */
    proto_pack_kv_int(pk, "warn_days", st->env->config->warn_days);
    proto_pack_kv_uint(pk, "expiring", c->expiring);
    proto_pack_kv_uint(pk, "connections", *st->in.connections);
    proto_pack_kv_uint(pk, "jobs", *st->env->jobs);
    proto_pack_kv_uint(pk, "acme_orders", acme_active_orders(st->in.acme));
    probe_sched_pack_status(st->in.probes, pk);
    proto_pack_kv_str(pk, "health", status_level_name(health));
    proto_pack_kv_uint(pk, "health_code", (uint64_t)health);
    proto_pack_kv_int(pk, "generated", now);
    proto_pack_kv_uint(pk, "certs_ok", c->ok);
    proto_pack_kv_uint(pk, "certs_warning", c->warning);
    proto_pack_kv_uint(pk, "certs_critical", c->critical);
    proto_pack_kv_uint(pk, "warnings_count", c->warnings);
    /* Versions whose key, signature and chain checks have not run yet. */
    proto_pack_kv_uint(pk, "certs_unchecked", c->unchecked);
    proto_pack_str(pk, "agent_warnings");
    msgpack_pack_array(pk, naw);
    for (size_t i = 0; i < naw; i++)
        pack_warning(pk, &aw[i]);
}

size_t
status_canary_warnings(struct canary *c, struct status_warning *out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < canary_count(c) && n < max; i++) {
        struct canary_state s;
        struct status_warning *w = &out[n];
        char when[64];

        if (canary_at(c, i, &s) != 0 || strcmp(s.state, "failing") != 0)
            continue;
        memset(w, 0, sizeof(*w));
        w->code = "ca_canary_failing";
        w->level = STATUS_WARNING;
        sys_format_time(s.last_run, when, sizeof(when));
        snprintf(w->message, sizeof(w->message),
                 "the staging canary of CA '%s' failed at step %s (%s): %s; production "
                 "certificates are not affected yet, but the CA may have changed (certctl "
                 "canary status shows it; certctl canary run %s tries again)",
                 s.ca, s.step != NULL ? s.step : "?", when, s.error != NULL ? s.error : "?", s.ca);
        data_str(w, "ca", s.ca);
        data_str(w, "step", s.step != NULL ? s.step : "");
        data_str(w, "error", s.error != NULL ? s.error : "");
        data_num(w, "last_run", s.last_run);
        n++;
    }
    return n;
}

void
status_set_agent_warnings(struct status *st, status_agent_warnings_fn fn, void *arg)
{
    st->agent_warnings = fn;
    st->agent_warnings_arg = arg;
}

void
status_set_acked(struct status *st, status_acked_fn fn, void *arg)
{
    st->acked = fn;
    st->acked_arg = arg;
}

/* The status file. */

struct write_job {
    uv_work_t work;
    struct status *st;
    char *path;
    msgpack_sbuffer doc; /* the report as one msgpack map */
    int rc;
    char *cause;
};

/* A JSON string literal of s[0, len) (control characters escaped, UTF-8 kept). */
static int
json_string(struct metrics_buf *b, const char *p, size_t len)
{
    int rc = metrics_append(b, "\"");

    for (size_t i = 0; i < len && rc == 0;) {
        unsigned char c = (unsigned char)p[i];
        size_t run = 0;

        /* Plain characters in one go. */
        while (i + run < len && (unsigned char)p[i + run] >= 0x20 && p[i + run] != '"' &&
               p[i + run] != '\\')
            run++;
        if (run > 0) {
            rc = metrics_append(b, "%.*s", (int)run, p + i);
            i += run;
        } else {
            rc = c == '"' || c == '\\' ? metrics_append(b, "\\%c", c)
                                       : metrics_append(b, "\\u%04x", c);
            i++;
        }
    }
    return rc ? rc : metrics_append(b, "\"");
}

/*
 * The report as JSON text, straight from msgpack (a tree of cJSON nodes for
 * 10,000 certificates would cost far more memory than the text).
 */
static int
json_write(struct metrics_buf *b, const msgpack_object *o, int depth)
{
    int rc = 0;

    if (depth > PROTO_MAX_DEPTH)
        return -E_BAD_INPUT;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return metrics_append(b, "null");
    case MSGPACK_OBJECT_BOOLEAN:
        return metrics_append(b, o->via.boolean ? "true" : "false");
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return metrics_append(b, "%llu", (unsigned long long)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return metrics_append(b, "%lld", (long long)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return metrics_append(b, "%.17g", o->via.f64);
    case MSGPACK_OBJECT_STR:
        return json_string(b, o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY:
        rc = metrics_append(b, "[");
        for (uint32_t i = 0; i < o->via.array.size && rc == 0; i++) {
            rc = i > 0 ? metrics_append(b, ",\n") : 0;
            rc = rc ? rc : json_write(b, &o->via.array.ptr[i], depth + 1);
        }
        return rc ? rc : metrics_append(b, "]");
    case MSGPACK_OBJECT_MAP:
        rc = metrics_append(b, "{");
        for (uint32_t i = 0; i < o->via.map.size && rc == 0; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];

            if (kv->key.type != MSGPACK_OBJECT_STR)
                return -E_BAD_INPUT;
            rc = i > 0 ? metrics_append(b, ", ") : 0;
            rc = rc ? rc : json_string(b, kv->key.via.str.ptr, kv->key.via.str.size);
            rc = rc ? rc : metrics_append(b, ": ");
            rc = rc ? rc : json_write(b, &kv->val, depth + 1);
        }
        return rc ? rc : metrics_append(b, "}");
    default:
        return metrics_append(b, "null");
    }
}

static void
write_run(uv_work_t *work)
{
    struct write_job *job = (struct write_job *)work;
    struct metrics_buf text = {NULL, 0, 0};
    msgpack_unpacked u;
    size_t off = 0;

    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, job->doc.data, job->doc.size, &off) != MSGPACK_UNPACK_SUCCESS ||
        json_write(&text, &u.data, 0) != 0 || metrics_append(&text, "\n") != 0) {
        job->rc = -E_NOMEM;
        err_set(&job->cause, "cannot build the report");
    } else {
        job->rc = fsutil_write_atomic(job->path, text.p, text.len, 0644, &job->cause);
    }
    free(text.p);
    msgpack_unpacked_destroy(&u);
}

static void
write_after(uv_work_t *work, int status)
{
    struct write_job *job = (struct write_job *)work;
    struct status *st = job->st;

    (*st->env->jobs)--;
    st->write_running = 0;
    if (status == 0 && job->rc == 0) {
        log_debug("status: wrote %s", job->path);
    } else if (status == 0) {
        /* fsutil's cause names the path */
        log_warn("status: %s", job->cause != NULL ? job->cause : err_message(job->rc));
    }
    free(job->cause);
    free(job->path);
    msgpack_sbuffer_destroy(&job->doc);
    free(job);
    if (st->write_dirty && !st->stopping) {
        st->write_dirty = 0;
        schedule_write(st);
    }
}

/* Packs the whole report (summary and "certificates") into one msgpack map. */
static int
pack_document(struct status *st, msgpack_sbuffer *out, int64_t now)
{
    msgpack_sbuffer rows;
    msgpack_packer pk, rpk;
    struct status_counts c;
    size_t total = store_count(st->in.store), n = 0;

    memset(&c, 0, sizeof(c));
    for (size_t i = 0; i < total; i++)
        n += store_at(st->in.store, i)->current != 0;
    msgpack_sbuffer_init(&rows);
    msgpack_packer_init(&rpk, &rows, msgpack_sbuffer_write);
    msgpack_pack_array(&rpk, n);
    for (size_t i = 0; i < total; i++) {
        if (store_at(st->in.store, i)->current != 0)
            status_pack_row(st, &rpk, store_at(st->in.store, i), now, &c);
    }
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, STATUS_SUMMARY_FIELDS + 1);
    status_pack_summary(st, &pk, &c, now);
    proto_pack_str(&pk, "certificates");
    if (msgpack_sbuffer_write(out, rows.data, rows.size) != 0) {
        msgpack_sbuffer_destroy(&rows);
        return -E_NOMEM;
    }
    msgpack_sbuffer_destroy(&rows);
    return 0;
}

static void
write_now(struct status *st)
{
    struct write_job *job;
    int rc;

    if (st->write_running) {
        st->write_dirty = 1;
        return;
    }
    if ((job = calloc(1, sizeof(*job))) == NULL)
        return;
    job->st = st;
    msgpack_sbuffer_init(&job->doc);
    if ((job->path = fsutil_join(st->env->state_dir, STATUS_FILE)) == NULL ||
        pack_document(st, &job->doc, (int64_t)time(NULL)) != 0) {
        rc = UV_ENOMEM;
        goto fail;
    }
    if ((rc = uv_queue_work(st->env->loop, &job->work, write_run, write_after)) != 0)
        goto fail;
    (*st->env->jobs)++;
    st->write_running = 1;
    return;
fail:
    log_warn("status: cannot write the status file: %s", uv_strerror(rc));
    free(job->path);
    msgpack_sbuffer_destroy(&job->doc);
    free(job);
}

/*
 * EVENT_STATUS_CHANGED for every certificate whose level or set of warning
 * codes differs from the last look (the first look after start is a
 * change).  Certificates whose PEM checks are not back yet wait: a warning
 * they would add must not look like a change twice.
 */
static void
publish_changes(struct status *st)
{
    size_t total = store_count(st->in.store);
    int64_t now = (int64_t)time(NULL);
    struct status_eval *ev = malloc(sizeof(*ev));

    if (ev == NULL)
        return;
    for (size_t i = 0; i < total; i++) {
        const struct store_cert *cert = store_at(st->in.store, i);
        struct status_entry *e = entry_find(st, cert->name);
        uint32_t h = 2166136261u;

        if (cert->current == 0 || e == NULL || !same_version(e, cert) || !e->a.done)
            continue;
        status_evaluate(st, cert, now, ev);
        h = (h ^ (uint32_t)ev->level) * 16777619u;
        for (size_t w = 0; w < ev->nwarnings; w++) {
            for (const unsigned char *p = (const unsigned char *)ev->w[w].code; *p; p++)
                h = (h ^ *p) * 16777619u;
            h = (h ^ (uint32_t)(ev->w[w].level + 1)) * 16777619u;
        }
        if (e->judged_set && e->judged == h)
            continue;
        e->judged = h;
        e->judged_set = 1;
        events_publish_name(st->env->events, EVENT_STATUS_CHANGED, cert->name);
    }
    free(ev);
}

static void
on_debounce(uv_timer_t *t)
{
    /* New versions are checked in the pool; their results make another write. */
    analysis_queue(t->data);
    write_now(t->data);
    publish_changes(t->data);
}

static void
schedule_write(struct status *st)
{
    if (!st->timers || st->stopping)
        return;
    if (st->write_running) {
        st->write_dirty = 1;
        return;
    }
    if (uv_is_active((uv_handle_t *)&st->debounce))
        return;
    if (uv_timer_start(&st->debounce, on_debounce, STATUS_DEBOUNCE_MS, 0) != 0)
        write_now(st);
}

static void
on_refresh(uv_timer_t *t)
{
    struct status *st = t->data;

    /* Time passing moves certificates across thresholds (the PEM checks do not change). */
    schedule_write(st);
}

/*
 * Something the report shows changed (a store commit, the scheduler's
 * state, a deploy's result): a debounced rewrite of STATE/status.json and
 * the analysis of new versions.  A config reload: thresholds and the ring
 * size may have changed too.  A trust store change: every chain is judged
 * again at once (chain_incomplete says "checking again" until then).
 */
static void
on_event(void *arg, const struct event *ev)
{
    struct status *st = arg;

    if (ev->type == EVENT_CONFIG_RELOADED) {
        status_reload(st);
    } else if (ev->type == EVENT_TRUST_CHANGED) {
        /* Chains are judged again at once, not after the debounce. */
        analysis_queue(st);
        schedule_write(st);
    } else {
        schedule_write(st); /* nothing once stopping */
    }
}

/* Lifecycle. */

int
status_new(const struct env *env, const struct status_inputs *in, struct status **out,
           char **cause)
{
    struct status *st;
    int rc;

    *out = NULL;
    if (env->config->metrics_listen != NULL &&
        (rc = metrics_http_check(env->config->metrics_listen, cause)) != 0)
        return rc;
    if (env->config->critical_days > env->config->warn_days)
        log_warn("config: critical_days (%d) is more than warn_days (%d)",
                 env->config->critical_days, env->config->warn_days);
    if ((rc = log_ring_resize((size_t)env->config->log_ring_lines)) != 0) {
        err_set(cause, "cannot keep %d log lines", env->config->log_ring_lines);
        return rc;
    }
    if ((st = calloc(1, sizeof(*st))) == NULL)
        return -E_NOMEM;
    st->env = env;
    st->in = *in;
    if (events_subscribe(env->events,
                         EVENT_MASK(EVENT_CERT_CHANGED) | EVENT_MASK(EVENT_RENEW_STATE) |
                             EVENT_MASK(EVENT_DEPLOY_RESULT) | EVENT_MASK(EVENT_CONFIG_RELOADED) |
                             EVENT_MASK(EVENT_STATUS_STALE) | EVENT_MASK(EVENT_TRUST_CHANGED) |
                             EVENT_MASK(EVENT_CERT_REVOKED),
                         on_event, st) != 0) {
        free(st);
        return -E_NOMEM;
    }
    *out = st;
    return 0;
}

int
status_start(struct status *st, char **cause)
{
    int rc;

    if (st->env->config->metrics_listen != NULL &&
        (rc = metrics_http_start(st, st->env->loop, st->env->config, &st->http, cause)) != 0)
        return rc;
    if (uv_timer_init(st->env->loop, &st->debounce) != 0 ||
        uv_timer_init(st->env->loop, &st->refresh) != 0) {
        /* uv_timer_init cannot fail on a live loop; say so if it ever does. */
        err_set(cause, "status: cannot make timers");
        return -E_INTERNAL;
    }
    st->debounce.data = st->refresh.data = st;
    st->timers = 1;
    if ((rc = uv_timer_start(&st->refresh, on_refresh, STATUS_REFRESH_MS, STATUS_REFRESH_MS)) != 0)
        log_warn("status: cannot start the hourly refresh: %s", uv_strerror(rc));
    uv_unref((uv_handle_t *)&st->refresh);
    return 0;
}

static void
status_reload(struct status *st)
{
    if (log_ring_resize((size_t)st->env->config->log_ring_lines) != 0)
        log_warn("reload: cannot keep %d log lines", st->env->config->log_ring_lines);
    schedule_write(st);
}

void
status_stop(struct status *st)
{
    if (st == NULL || st->stopping)
        return;
    st->stopping = 1;
    if (st->timers) {
        uv_close((uv_handle_t *)&st->debounce, NULL);
        uv_close((uv_handle_t *)&st->refresh, NULL);
    }
    metrics_http_close(st->http);
    st->http = NULL;
}

void
status_free(struct status *st)
{
    if (st == NULL)
        return;
    events_unsubscribe(st->env->events, on_event, st);
    metrics_http_close(st->http);
    cache_clear(st);
    free(st);
}

void
status_recheck(struct status *st)
{
    schedule_write(st);
}

const struct status_inputs *
status_inputs_of(const struct status *st)
{
    return &st->in;
}

int
status_pack_document(struct status *st, int64_t now, msgpack_sbuffer *out)
{
    return pack_document(st, out, now);
}

int
status_document_json(const char *data, size_t len, struct metrics_buf *out)
{
    msgpack_unpacked u;
    size_t off = 0;
    int rc = -E_BAD_INPUT;

    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, data, len, &off) == MSGPACK_UNPACK_SUCCESS)
        rc = json_write(out, &u.data, 0);
    rc = rc ? rc : metrics_append(out, "\n");
    msgpack_unpacked_destroy(&u);
    return rc;
}
