/*
 * The served check (served.h): per certificate the endpoints of its
 * check_served setting with their last results, a timer for the next due
 * check, and probe runs (trust/probe.c, leaf only) that compare what each
 * endpoint serves with the current version.  Results are written to
 * STATE/served.json in the thread pool after each run (one write at a time;
 * a change during a write is written right after it).
 */
#include "served.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "byname.h"
#include "config.h"
#include "deploy.h"
#include "env.h"
#include "err.h"
#include "events.h"
#include "fsutil.h"
#include "log.h"
#include "probe.h"
#include "proto.h"
#include "store.h"
#include "sys.h"

#define SERVED_FILE_MAX (64 * 1024 * 1024)
/* Checks due within this many ms of the earliest one go in the same run. */
#define SERVED_BATCH_SLACK_MS 500
/* Retries during the grace after a deploy: grace / 10, within these bounds (ms). */
#define SERVED_RETRY_MIN_MS 1000
#define SERVED_RETRY_MAX_MS 10000
/*
 * Connections of one run at once (at most probe_concurrency): each loop turn
 * handles every connection that is ready, and the handshakes' CPU is spent
 * on the loop, so a smaller number keeps the loop's turns short for IPC
 * while a round of a thousand endpoints still ends in seconds (loopback or
 * LAN services answer in milliseconds).
 */
#define SERVED_CONCURRENCY 32

struct waiter {
    struct waiter *next;
    void (*done)(void *arg, int rc, const char *cause);
    void *arg;
};

/* The endpoints of one certificate. */
struct sname {
    char *name;
    struct served_endpoint *ep;
    size_t n;
    uint64_t due;        /* loop ms of the next check; 0: none planned */
    int64_t grace_until; /* Unix seconds: mismatches are retried, not reported, until then */
    int checking;        /* in a run */
    int again;           /* check again when the run ends (a deploy during it) */
    struct waiter *waiters;
};

/* One probe run over the endpoints of the due certificates. */
struct batch {
    struct batch *next;
    struct served *s;
    struct probe_run *run;
    size_t n;
    char **names; /* per URL, the certificate */
    char **urls;
    char **snis;
};

struct save {
    uv_work_t work;
    struct served *s;
    char *path;
    char *text;
    int rc;
    char *cause;
};

struct served {
    const struct env *env;
    struct store *store;
    struct deploy *deploy;
    struct byname names; /* struct sname *, by name */
    uv_timer_t timer;
    int timer_open;
    struct batch *batches; /* runs in progress */
    char *path;            /* STATE/served.json */
    int saving, dirty;
    int started, stopping;
    uint64_t rng;
};

static void plan(struct served *s);
static void save_start(struct served *s);

const char *
served_result_name(enum served_result r)
{
    switch (r) {
    case SERVED_MATCH:
        return "match";
    case SERVED_STALE:
        return "stale";
    case SERVED_UNREACHABLE:
        return "unreachable";
    default:
        return "pending";
    }
}

static enum served_result
result_of(const char *name)
{
    if (name == NULL)
        return SERVED_PENDING;
    if (strcmp(name, "match") == 0)
        return SERVED_MATCH;
    if (strcmp(name, "stale") == 0)
        return SERVED_STALE;
    if (strcmp(name, "unreachable") == 0)
        return SERVED_UNREACHABLE;
    return SERVED_PENDING;
}

static void
endpoint_clear_seen(struct served_endpoint *e)
{
    free(e->error);
    free(e->sha256);
    free(e->serial);
    free(e->subject);
    e->error = e->sha256 = e->serial = e->subject = NULL;
    e->not_after = 0;
    e->served_version = 0;
}

static void
endpoint_free(struct served_endpoint *e)
{
    endpoint_clear_seen(e);
    free(e->url);
    free(e->sni);
}

static void
waiters_finish(struct waiter *w, int rc, const char *cause)
{
    struct waiter *next;

    for (; w != NULL; w = next) {
        next = w->next;
        w->done(w->arg, rc, cause);
        free(w);
    }
}

static void
sname_free(struct sname *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n; i++)
        endpoint_free(&n->ep[i]);
    free(n->ep);
    waiters_finish(n->waiters, -E_NOT_FOUND, "the certificate or its --check-served URLs went");
    free(n->name);
    free(n);
}

static struct sname *
sname_get(struct served *s, const char *name)
{
    int found;
    size_t i = byname_pos(&s->names, name, &found);
    struct sname *n;

    if (found)
        return s->names.items[i];
    if ((n = calloc(1, sizeof(*n))) == NULL || (n->name = strdup(name)) == NULL) {
        free(n);
        return NULL;
    }
    if (byname_insert(&s->names, i, n) != 0) {
        sname_free(n);
        return NULL;
    }
    return n;
}

static void
sname_drop(struct served *s, const char *name)
{
    int found;
    size_t i = byname_pos(&s->names, name, &found);

    if (found)
        sname_free(byname_remove(&s->names, i));
}

static int
same_sni(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static char *
dup_or_null(const char *v)
{
    return v != NULL ? strdup(v) : NULL;
}

/* A random number for the jitter (xorshift; nothing secret depends on it). */
static uint64_t
next_random(struct served *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

/* served_check_interval in ms, give or take a tenth. */
static uint64_t
interval_ms(struct served *s)
{
    uint64_t every = (uint64_t)s->env->config->served_check_interval * 1000u;
    uint64_t spread = every / 5;

    return every - every / 10 + (spread > 0 ? next_random(s) % spread : 0);
}

/* Plans a check of n as soon as possible (after the run it is in, if any). */
static void
check_soon(struct served *s, struct sname *n)
{
    if (n->checking)
        n->again = 1;
    else
        n->due = uv_now(s->env->loop);
}

/*
 * Makes the endpoints of name follow its settings: results of URLs kept stay,
 * new URLs are checked at once, a certificate without URLs (or removed) goes.
 */
static void
sync_name(struct served *s, const char *name)
{
    const struct cert_settings *cs = deploy_settings(s->deploy, name);
    struct sname *n;
    struct served_endpoint *v;
    int added = 0;

    if (cs == NULL || cs->nserved == 0 || store_find(s->store, name) == NULL) {
        sname_drop(s, name);
        return;
    }
    if ((n = sname_get(s, name)) == NULL || (v = calloc(cs->nserved, sizeof(*v))) == NULL) {
        log_error("served check of '%s': out of memory", name);
        return;
    }
    for (size_t i = 0; i < cs->nserved; i++) {
        const struct served_url *u = &cs->served[i];
        size_t k;

        for (k = 0; k < n->n; k++)
            if (n->ep[k].url != NULL && strcmp(n->ep[k].url, u->url) == 0 &&
                same_sni(n->ep[k].sni, u->sni))
                break;
        if (k < n->n) {
            v[i] = n->ep[k];
            memset(&n->ep[k], 0, sizeof(n->ep[k]));
            continue;
        }
        v[i].url = strdup(u->url);
        v[i].sni = dup_or_null(u->sni);
        added = 1;
    }
    for (size_t k = 0; k < n->n; k++)
        endpoint_free(&n->ep[k]);
    free(n->ep);
    n->ep = v;
    n->n = cs->nserved;
    if (added)
        check_soon(s, n);
}

/* Fingerprints compare without regard to case. */
static int
same_fingerprint(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return 0;
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = *a >= 'a' && *a <= 'z' ? (char)(*a - 32) : *a;
        char y = *b >= 'a' && *b <= 'z' ? (char)(*b - 32) : *b;

        if (x != y)
            return 0;
    }
    return *a == *b;
}

/* Records one probe's outcome for the endpoint e of certificate name. */
static void
record(struct served *s, const char *name, struct served_endpoint *e, const struct probe_result *r)
{
    const struct store_cert *c = store_find(s->store, name);
    const struct store_version *v = c != NULL ? store_current(c) : NULL;
    enum served_result before = e->result;
    char *before_sha = e->sha256;
    int64_t now = (int64_t)time(NULL);

    e->sha256 = NULL;
    endpoint_clear_seen(e);
    e->checked = now;
    e->current_version = v != NULL ? v->version : 0;
    if (r->error != NULL || r->nsent == 0) {
        e->result = SERVED_UNREACHABLE;
        e->error = strdup(r->error != NULL ? r->error : "the server sent no certificate");
    } else {
        const struct cert_info *leaf = &r->sent[0];

        e->sha256 = dup_or_null(leaf->fingerprint);
        e->serial = dup_or_null(leaf->serial);
        e->subject = dup_or_null(leaf->subject);
        e->not_after = leaf->not_after;
        for (size_t i = 0; c != NULL && i < c->nversions; i++)
            if (same_fingerprint(c->versions[i].fingerprint, leaf->fingerprint))
                e->served_version = c->versions[i].version;
        e->result = v != NULL && same_fingerprint(v->fingerprint, leaf->fingerprint)
                        ? SERVED_MATCH
                        : SERVED_STALE;
    }
    if (e->result != before || !same_fingerprint(before_sha, e->sha256) || e->since == 0)
        e->since = now;
    free(before_sha);
}

/* Words for what e serves, for a log line or a waiter. */
static void
describe(const struct served_endpoint *e, const struct store_version *v, char *buf, size_t len)
{
    char when[32], ver[48];

    if (e->result == SERVED_UNREACHABLE) {
        snprintf(buf, len, "%s is unreachable: %s", e->url, e->error != NULL ? e->error : "?");
        return;
    }
    sys_format_time(e->not_after, when, sizeof(when));
    if (e->served_version != 0)
        snprintf(ver, sizeof(ver), "version %u", e->served_version);
    else
        snprintf(ver, sizeof(ver), "not a stored version");
    snprintf(buf, len,
             "%s%s%s%s serves serial %s (%s, %s, not after %s), not the current version %u "
             "(serial %s)",
             e->url, e->sni != NULL ? " (server name " : "", e->sni != NULL ? e->sni : "",
             e->sni != NULL ? ")" : "", e->serial != NULL ? e->serial : "?",
             e->subject != NULL ? e->subject : "?", ver, when, v != NULL ? v->version : 0,
             v != NULL && v->serial != NULL ? v->serial : "?");
}

/* A run's endpoints of n are all checked: final verdict, or another try in the grace. */
static void
name_checked(struct served *s, struct sname *n)
{
    const struct store_cert *c = store_find(s->store, n->name);
    const struct store_version *v = c != NULL ? store_current(c) : NULL;
    uint64_t now = uv_now(s->env->loop);
    int64_t wall = (int64_t)time(NULL);
    int all = 1, pending = 0;
    char *words = NULL;

    n->checking = 0;
    for (size_t i = 0; i < n->n; i++) {
        if (n->ep[i].result != SERVED_MATCH)
            all = 0;
        if (n->ep[i].result == SERVED_PENDING)
            pending = 1;
    }
    if (all) {
        if (n->grace_until != 0)
            log_info("'%s': every --check-served URL serves version %u", n->name,
                     v != NULL ? v->version : 0);
        n->grace_until = 0;
        waiters_finish(n->waiters, 0, NULL);
        n->waiters = NULL;
        n->due = now + interval_ms(s);
    } else if (n->grace_until > wall || pending) {
        uint64_t retry = (uint64_t)s->env->config->served_grace * 100u;
        uint64_t left = n->grace_until > wall ? (uint64_t)(n->grace_until - wall) * 1000u : 0;

        if (retry < SERVED_RETRY_MIN_MS)
            retry = SERVED_RETRY_MIN_MS;
        if (retry > SERVED_RETRY_MAX_MS)
            retry = SERVED_RETRY_MAX_MS;
        /* The last try at the grace's end, so that the verdict is never early. */
        n->due = now + (left > 0 && left < retry ? left : retry);
    } else {
        n->grace_until = 0;
        for (size_t i = 0; i < n->n; i++) {
            char line[1024];

            if (n->ep[i].result == SERVED_MATCH)
                continue;
            describe(&n->ep[i], v, line, sizeof(line));
            log_warn("'%s': %s", n->name, line);
            if (words == NULL)
                words = strdup(line);
            else {
                char *more = NULL;

                err_set(&more, "%s; %s", words, line);
                free(words);
                words = more;
            }
        }
        waiters_finish(n->waiters, -E_IO, words);
        n->waiters = NULL;
        n->due = now + interval_ms(s);
    }
    free(words);
    if (n->again) {
        n->again = 0;
        n->due = now;
    }
    events_publish_name(s->env->events, EVENT_STATUS_STALE, n->name);
}

static void
batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->names[i]);
        free(b->urls[i]);
        free(b->snis[i]);
    }
    free(b->names);
    free(b->urls);
    free(b->snis);
    free(b);
}

static void
on_result(void *arg, const struct probe_result *r, size_t done, size_t total)
{
    struct batch *b = arg;
    struct sname *n = byname_find(&b->s->names, b->names[r->index]);

    (void)done;
    (void)total;
    if (n == NULL)
        return; /* removed meanwhile */
    for (size_t i = 0; i < n->n; i++) {
        if (strcmp(n->ep[i].url, b->urls[r->index]) == 0 &&
            same_sni(n->ep[i].sni, b->snis[r->index])) {
            record(b->s, n->name, &n->ep[i], r);
            break;
        }
    }
}

static void
on_done(void *arg)
{
    struct batch *b = arg, **pp;
    struct served *s = b->s;

    for (pp = &s->batches; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        struct sname *n;

        if (i > 0 && strcmp(b->names[i], b->names[i - 1]) == 0)
            continue; /* a certificate's URLs are next to each other */
        if ((n = byname_find(&s->names, b->names[i])) != NULL && n->checking && !s->stopping)
            name_checked(s, n);
    }
    batch_free(b);
    if (!s->stopping) {
        save_start(s);
        plan(s);
    }
}

/* Starts one run over the endpoints of every certificate due by limit (loop ms). */
static void
run_due(struct served *s, uint64_t limit)
{
    struct batch *b = NULL;
    struct probe_opts opts;
    size_t total = 0, k = 0, count;
    char *cause = NULL;
    int rc;

    for (size_t i = 0; i < s->names.n; i++) {
        const struct sname *n = s->names.items[i];

        if (!n->checking && n->due != 0 && n->due <= limit)
            total += n->n;
    }
    if (total == 0)
        return;
    if ((b = calloc(1, sizeof(*b))) == NULL ||
        (b->names = calloc(total, sizeof(char *))) == NULL ||
        (b->urls = calloc(total, sizeof(char *))) == NULL ||
        (b->snis = calloc(total, sizeof(char *))) == NULL)
        goto nomem;
    b->s = s;
    for (size_t i = 0; i < s->names.n; i++) {
        struct sname *n = s->names.items[i];

        if (n->checking || n->due == 0 || n->due > limit)
            continue;
        for (size_t e = 0; e < n->n; e++, k++) {
            b->n = k + 1;
            if ((b->names[k] = strdup(n->name)) == NULL ||
                (b->urls[k] = strdup(n->ep[e].url)) == NULL ||
                (n->ep[e].sni != NULL && (b->snis[k] = strdup(n->ep[e].sni)) == NULL))
                goto nomem;
        }
    }
    memset(&opts, 0, sizeof(opts));
    opts.timeout_ms = (uint64_t)s->env->config->probe_timeout * 1000u;
    opts.concurrency = (unsigned)s->env->config->probe_concurrency;
    if (opts.concurrency > SERVED_CONCURRENCY)
        opts.concurrency = SERVED_CONCURRENCY;
    opts.min_version = TLS1_VERSION; /* whatever the service speaks: only its certificate counts */
    opts.leaf_only = 1;
    opts.sni = (const char *const *)b->snis;
    /* Marked before the start: a run may end within probe_run_start (no timer). */
    for (size_t i = 0; i < s->names.n; i++) {
        struct sname *n = s->names.items[i];

        if (!n->checking && n->due != 0 && n->due <= limit) {
            n->checking = 1;
            n->due = 0;
        }
    }
    b->next = s->batches;
    s->batches = b;
    count = b->n;
    rc = probe_run_start(s->env->loop, NULL, b->urls, b->n, &opts, on_result, on_done, b, &b->run,
                         &cause);
    if (rc != 0) {
        /* Only a URL the settings accepted is here: this is out of memory or TLS setup. */
        log_error("served check: %s", cause != NULL ? cause : err_message(rc));
        free(cause);
        s->batches = b->next;
        for (size_t i = 0; i < b->n; i++) {
            struct sname *n = byname_find(&s->names, b->names[i]);

            if (n != NULL && n->checking) {
                n->checking = 0;
                n->due = uv_now(s->env->loop) + interval_ms(s);
            }
        }
        batch_free(b);
        return;
    }
    log_debug("served check: %zu endpoint(s)", count);
    return;
nomem:
    log_error("served check: out of memory");
    if (b != NULL)
        batch_free(b);
}

static void
on_timer(uv_timer_t *t)
{
    struct served *s = t->data;

    if (s->stopping)
        return;
    run_due(s, uv_now(s->env->loop) + SERVED_BATCH_SLACK_MS);
    plan(s);
}

/* Arms the timer for the earliest due check. */
static void
plan(struct served *s)
{
    uint64_t first = 0, now;

    if (!s->timer_open || s->stopping)
        return;
    for (size_t i = 0; i < s->names.n; i++) {
        const struct sname *n = s->names.items[i];

        if (!n->checking && n->due != 0 && (first == 0 || n->due < first))
            first = n->due;
    }
    if (first == 0) {
        uv_timer_stop(&s->timer);
        return;
    }
    now = uv_now(s->env->loop);
    uv_timer_start(&s->timer, on_timer, first > now ? first - now : 0, 0);
}

/* A deploy of name ended (after its hooks): check with the grace. */
static void
deployed(struct served *s, const char *name)
{
    struct sname *n;

    sync_name(s, name);
    if ((n = byname_find(&s->names, name)) == NULL)
        return;
    n->grace_until = (int64_t)time(NULL) + s->env->config->served_grace;
    check_soon(s, n);
}

static void
on_event(void *arg, const struct event *ev)
{
    struct served *s = arg;

    if (s->stopping || !s->started)
        return;
    if (ev->type == EVENT_CONFIG_RELOADED) {
        /* A shorter served_check_interval takes effect now, not an old interval later. */
        uint64_t now = uv_now(s->env->loop);
        uint64_t every = (uint64_t)s->env->config->served_check_interval * 1000u;

        for (size_t i = 0; i < s->names.n; i++) {
            struct sname *n = s->names.items[i];

            if (!n->checking && n->due > now + every + every / 10)
                n->due = now + interval_ms(s);
        }
    } else if (ev->type == EVENT_DEPLOY_RESULT && ev->name != NULL) {
        deployed(s, ev->name);
    } else if (ev->name != NULL) {
        /* Settings changed (URLs added or removed), or the certificate went. */
        sync_name(s, ev->name);
    }
    plan(s);
}

/* Saving */

static void
save_run(uv_work_t *work)
{
    struct save *sv = work->data;

    sv->rc = fsutil_write_atomic(sv->path, sv->text, strlen(sv->text), 0600, &sv->cause);
}

static void
save_after(uv_work_t *work, int status)
{
    struct save *sv = work->data;
    struct served *s = sv->s;

    (*s->env->jobs)--;
    if (status != 0 && sv->rc == 0)
        sv->rc = -E_IO;
    if (sv->rc != 0)
        log_error("served check: %s", sv->cause != NULL ? sv->cause : "cannot write served.json");
    free(sv->path);
    free(sv->text);
    free(sv->cause);
    free(sv);
    s->saving = 0;
    if (s->dirty && !s->stopping)
        save_start(s);
}

static cJSON *
endpoint_json(const struct served_endpoint *e)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "url", e->url);
    if (e->sni != NULL)
        cJSON_AddStringToObject(o, "sni", e->sni);
    cJSON_AddStringToObject(o, "result", served_result_name(e->result));
    if (e->error != NULL)
        cJSON_AddStringToObject(o, "error", e->error);
    if (e->sha256 != NULL)
        cJSON_AddStringToObject(o, "sha256", e->sha256);
    if (e->serial != NULL)
        cJSON_AddStringToObject(o, "serial", e->serial);
    if (e->subject != NULL)
        cJSON_AddStringToObject(o, "subject", e->subject);
    cJSON_AddNumberToObject(o, "not_after", (double)e->not_after);
    cJSON_AddNumberToObject(o, "served_version", e->served_version);
    cJSON_AddNumberToObject(o, "current_version", e->current_version);
    cJSON_AddNumberToObject(o, "checked", (double)e->checked);
    cJSON_AddNumberToObject(o, "since", (double)e->since);
    return o;
}

static void
save_start(struct served *s)
{
    cJSON *root = cJSON_CreateObject();
    struct save *sv = NULL;
    int rc;

    s->dirty = 1;
    if (s->saving || root == NULL)
        goto out;
    for (size_t i = 0; i < s->names.n; i++) {
        const struct sname *n = s->names.items[i];
        cJSON *a = cJSON_AddArrayToObject(root, n->name);

        for (size_t k = 0; a != NULL && k < n->n; k++)
            cJSON_AddItemToArray(a, endpoint_json(&n->ep[k]));
    }
    if ((sv = calloc(1, sizeof(*sv))) == NULL || (sv->path = strdup(s->path)) == NULL ||
        (sv->text = cJSON_PrintUnformatted(root)) == NULL) {
        log_error("served check: cannot save %s: out of memory", s->path);
        goto out;
    }
    sv->s = s;
    sv->work.data = sv;
    if ((rc = uv_queue_work(s->env->loop, &sv->work, save_run, save_after)) != 0) {
        log_error("served check: cannot queue the write of %s: %s", s->path, uv_strerror(rc));
        goto out;
    }
    (*s->env->jobs)++;
    s->dirty = 0;
    s->saving = 1;
    sv = NULL;
out:
    if (sv != NULL) {
        free(sv->path);
        free(sv->text);
        free(sv);
    }
    cJSON_Delete(root);
}

static int64_t
jnum(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e15
               ? (int64_t)v->valuedouble
               : 0;
}

static char *
jdup(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

/* STATE/served.json: only a record of results; a broken file is logged and replaced. */
static int
load(struct served *s, char **cause)
{
    unsigned char *data = NULL;
    size_t len = 0;
    cJSON *root = NULL, *it;
    int rc;

    rc = fsutil_read_file(s->path, SERVED_FILE_MAX, &data, &len, cause);
    if (rc == -E_NOT_FOUND) {
        free(*cause);
        *cause = NULL;
        return 0;
    }
    if (rc != 0)
        return rc;
    if ((root = cJSON_ParseWithLength((const char *)data, len)) == NULL || !cJSON_IsObject(root)) {
        log_warn("%s is not a JSON object; every --check-served URL is checked again", s->path);
        goto out;
    }
    cJSON_ArrayForEach(it, root)
    {
        struct sname *n;
        const cJSON *e;
        size_t count = (size_t)cJSON_GetArraySize(it);

        if (!cJSON_IsArray(it) || count == 0 || count > 64 ||
            store_name_valid(it->string, NULL) != 0)
            continue;
        if ((n = sname_get(s, it->string)) == NULL || n->ep != NULL ||
            (n->ep = calloc(count, sizeof(*n->ep))) == NULL) {
            rc = n == NULL ? -E_NOMEM : rc;
            continue;
        }
        cJSON_ArrayForEach(e, it)
        {
            struct served_endpoint *p = &n->ep[n->n];

            if ((p->url = jdup(e, "url")) == NULL)
                continue;
            p->sni = jdup(e, "sni");
            p->result =
                result_of(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "result")));
            p->error = jdup(e, "error");
            p->sha256 = jdup(e, "sha256");
            p->serial = jdup(e, "serial");
            p->subject = jdup(e, "subject");
            p->not_after = jnum(e, "not_after");
            p->served_version = (unsigned)jnum(e, "served_version");
            p->current_version = (unsigned)jnum(e, "current_version");
            p->checked = jnum(e, "checked");
            p->since = jnum(e, "since");
            n->n++;
        }
    }
out:
    cJSON_Delete(root);
    free(data);
    return rc;
}

int
served_new(const struct env *env, struct store *store, struct deploy *deploy, struct served **out,
           char **cause)
{
    struct served *s = calloc(1, sizeof(*s));

    (void)cause;
    *out = NULL;
    if (s == NULL)
        return -E_NOMEM;
    s->env = env;
    s->store = store;
    s->deploy = deploy;
    s->rng = uv_hrtime() | 1;
    byname_init(&s->names, offsetof(struct sname, name));
    if ((s->path = fsutil_join(env->state_dir, "served.json")) == NULL ||
        events_subscribe(env->events,
                         EVENT_MASK(EVENT_DEPLOY_RESULT) | EVENT_MASK(EVENT_SETTINGS_CHANGED) |
                             EVENT_MASK(EVENT_CERT_CHANGED) | EVENT_MASK(EVENT_CONFIG_RELOADED),
                         on_event, s) != 0) {
        free(s->path);
        free(s);
        return -E_NOMEM;
    }
    *out = s;
    return 0;
}

int
served_start(struct served *s, char **cause)
{
    uint64_t now = uv_now(s->env->loop);
    int64_t wall = (int64_t)time(NULL);
    int rc;

    if ((rc = load(s, cause)) != 0)
        return rc;
    /* The settings decide which endpoints there are; the file only their last results. */
    for (size_t i = 0; i < s->names.n;) {
        struct sname *n = s->names.items[i];
        const struct cert_settings *cs = deploy_settings(s->deploy, n->name);

        if (cs == NULL || cs->nserved == 0 || store_find(s->store, n->name) == NULL) {
            sname_free(byname_remove(&s->names, i));
            continue;
        }
        i++;
    }
    for (size_t i = 0; i < store_count(s->store); i++) {
        const struct store_cert *c = store_at(s->store, i);

        if (c != NULL && c->current != 0)
            sync_name(s, c->name);
    }
    /* Each is due an interval after its last check: a restart does not probe them all. */
    for (size_t i = 0; i < s->names.n; i++) {
        struct sname *n = s->names.items[i];
        int64_t oldest = 0;
        int never = 0;

        for (size_t k = 0; k < n->n; k++) {
            if (n->ep[k].checked == 0)
                never = 1;
            else if (oldest == 0 || n->ep[k].checked < oldest)
                oldest = n->ep[k].checked;
        }
        if (never || oldest + s->env->config->served_check_interval <= wall)
            n->due = now;
        else
            n->due =
                now + (uint64_t)(oldest + s->env->config->served_check_interval - wall) * 1000u;
    }
    if ((rc = uv_timer_init(s->env->loop, &s->timer)) != 0) {
        err_set(cause, "cannot start the served check's timer: %s", uv_strerror(rc));
        return -E_INTERNAL;
    }
    s->timer.data = s;
    s->timer_open = 1;
    uv_unref((uv_handle_t *)&s->timer);
    s->started = 1;
    plan(s);
    return 0;
}

static void
timer_closed(uv_handle_t *h)
{
    (void)h;
}

void
served_stop(struct served *s)
{
    if (s == NULL || s->stopping)
        return;
    s->stopping = 1;
    if (s->timer_open) {
        uv_close((uv_handle_t *)&s->timer, timer_closed);
        s->timer_open = 0;
    }
    for (struct batch *b = s->batches, *next; b != NULL; b = next) {
        next = b->next; /* b may end (and go) within the abort */
        probe_run_abort(b->run);
    }
    for (size_t i = 0; i < s->names.n; i++) {
        struct sname *n = s->names.items[i];

        waiters_finish(n->waiters, -E_UNAVAILABLE, "the agent is stopping");
        n->waiters = NULL;
    }
}

void
served_free(struct served *s)
{
    if (s == NULL)
        return;
    events_unsubscribe(s->env->events, on_event, s);
    for (size_t i = 0; i < s->names.n; i++)
        sname_free(s->names.items[i]);
    byname_free(&s->names);
    free(s->path);
    free(s);
}

const struct served_endpoint *
served_endpoints(const struct served *s, const char *name, size_t *n, int *in_grace)
{
    const struct sname *sn = s != NULL ? byname_find(&s->names, name) : NULL;

    *n = sn != NULL ? sn->n : 0;
    if (in_grace != NULL)
        *in_grace = sn != NULL && sn->grace_until > (int64_t)time(NULL);
    return sn != NULL ? sn->ep : NULL;
}

int
served_wait(struct served *s, const char *name, void (*done)(void *arg, int rc, const char *cause),
            void *arg, char **cause)
{
    struct sname *n = s != NULL ? byname_find(&s->names, name) : NULL;
    struct waiter *w;

    if (n == NULL || n->n == 0) {
        err_set(cause, "'%s' has no URL to check: add one with certctl set %s --check-served URL",
                name, name);
        return -E_BAD_INPUT;
    }
    if (s->stopping) {
        err_set(cause, "the agent is stopping");
        return -E_UNAVAILABLE;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return -E_NOMEM;
    w->done = done;
    w->arg = arg;
    w->next = n->waiters;
    n->waiters = w;
    /* The deploy's own EVENT_DEPLOY_RESULT may have come already, or be on its way. */
    if (n->grace_until <= (int64_t)time(NULL))
        n->grace_until = (int64_t)time(NULL) + s->env->config->served_grace;
    check_soon(s, n);
    plan(s);
    return 0;
}

void
served_pack(const struct served *s, const char *name, msgpack_packer *pk)
{
    size_t n = 0;
    int grace = 0;
    const struct served_endpoint *e = served_endpoints(s, name, &n, &grace);

    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++, e++) {
        msgpack_pack_map(pk, 14);
        proto_pack_kv_str(pk, "url", e->url);
        if (e->sni != NULL)
            proto_pack_kv_str(pk, "sni", e->sni);
        else
            proto_pack_kv_nil(pk, "sni");
        proto_pack_kv_str(pk, "result", served_result_name(e->result));
        proto_pack_kv_bool(pk, "in_grace", grace && e->result != SERVED_MATCH);
        if (e->error != NULL)
            proto_pack_kv_str(pk, "error", e->error);
        else
            proto_pack_kv_nil(pk, "error");
        if (e->sha256 != NULL)
            proto_pack_kv_str(pk, "served_sha256", e->sha256);
        else
            proto_pack_kv_nil(pk, "served_sha256");
        if (e->serial != NULL)
            proto_pack_kv_str(pk, "served_serial", e->serial);
        else
            proto_pack_kv_nil(pk, "served_serial");
        if (e->subject != NULL)
            proto_pack_kv_str(pk, "served_subject", e->subject);
        else
            proto_pack_kv_nil(pk, "served_subject");
        proto_pack_kv_int(pk, "served_not_after", e->not_after);
        proto_pack_kv_uint(pk, "served_version", e->served_version);
        proto_pack_kv_uint(pk, "current_version", e->current_version);
        proto_pack_kv_int(pk, "checked", e->checked);
        proto_pack_kv_int(pk, "since", e->since);
        proto_pack_kv_int(pk, "time", e->checked);
    }
}
