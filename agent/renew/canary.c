/*
 * The staging canaries (canary.h): each configured canary is an entry kept by
 * CA name with its last result; a run asks the ACME client for a canary order
 * (acme_canary_order: the order code, not a copy of it), checks the chain in
 * the thread pool, keeps the last chain that passed in STATE/canary/CA.pem
 * (never in the store), records the outcome and writes STATE/canary.json.
 */
#include "canary.h"

#include <cjson/cJSON.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "acme.h"
#include "config.h"
#include "env.h"
#include "err.h"
#include "events.h"
#include "fsutil.h"
#include "log.h"
#include "pem.h"

#define STATE_MAX (256 * 1024)
/* The first run of a canary that never ran: this long after the start, plus jitter. */
#define FIRST_DELAY_S 60
#define FIRST_JITTER_S 240
/* The longest sleep of the schedule (clock changes, suspend). */
#define TIMER_MAX_MS (3600u * 1000)

struct waiter {
    struct waiter *next;
    struct run_req *req;
};

struct run_req {
    unsigned pending;
    void (*progress)(void *arg, const char *words);
    void (*done)(void *arg);
    void *arg;
};

struct entry {
    struct entry *next;
    struct canary *c;
    char *ca;
    int result; /* -1 never ran, 0 failing, 1 ok */
    int64_t last_run, last_success;
    unsigned duration_ms;
    char *step, *error;
    int running;
    uint64_t started_hr;
    unsigned jitter; /* seconds added to every run's time (spreads canaries and agents) */
    struct waiter *waiters;
    /* The chain check in the pool. */
    uv_work_t work;
    char *chain, *name, *roots, *check_error;
    int check_rc;
    /* The last chain that passed is kept apart in STATE/canary/CA.pem (keep_error: why not). */
    char *keep, *keep_error;
};

struct canary {
    const struct env *env;
    struct acme *acme;
    char *path;
    struct entry *entries;
    uv_timer_t timer;
    int timer_open;
    int64_t started;
    int saving, dirty, stopping;
};

static const struct config_canary *
config_of(const struct canary *c, const char *ca)
{
    const struct config_canaries *cs = &c->env->config->canaries;

    for (size_t i = 0; i < cs->n; i++)
        if (strcmp(cs->items[i].ca, ca) == 0)
            return &cs->items[i];
    return NULL;
}

int
canary_check(struct acme *acme, const struct config_canaries *cs, char **cause)
{
    for (size_t i = 0; i < cs->n; i++) {
        if (!acme_ca_known(acme, cs->items[i].ca)) {
            err_set(cause,
                    "canaries[%zu].ca: no CA named '%s' (see certctl ca list; declare it in "
                    "acme_cas or add it with certctl ca add %s --directory URL)",
                    i, cs->items[i].ca, cs->items[i].ca);
            return -E_BAD_INPUT;
        }
    }
    return 0;
}

static struct entry *
entry_find(struct canary *c, const char *ca, int create)
{
    struct entry *e;

    for (e = c->entries; e != NULL; e = e->next)
        if (strcmp(e->ca, ca) == 0)
            return e;
    if (!create || (e = calloc(1, sizeof(*e))) == NULL)
        return NULL;
    if ((e->ca = strdup(ca)) == NULL) {
        free(e);
        return NULL;
    }
    e->c = c;
    e->result = -1;
    e->jitter = (unsigned)(uv_hrtime() % 1000003u);
    e->next = c->entries;
    c->entries = e;
    return e;
}

static void
entry_free(struct entry *e)
{
    struct waiter *w;

    while ((w = e->waiters) != NULL) {
        e->waiters = w->next;
        free(w);
    }
    free(e->ca);
    free(e->step);
    free(e->error);
    free(e->chain);
    free(e->name);
    free(e->roots);
    free(e->check_error);
    free(e);
}

/* When the canary of e runs next (Unix seconds). */
static int64_t
next_run(const struct canary *c, const struct entry *e, const struct config_canary *cc)
{
    if (e->last_run == 0)
        return c->started + FIRST_DELAY_S + (int64_t)(e->jitter % (FIRST_JITTER_S + 1));
    return e->last_run + cc->every + (int64_t)(e->jitter % ((unsigned)cc->every / 10 + 1));
}

/* The path of CA's last canary certificate (kept apart from the store: not in list). */
static char *
kept_path(const struct canary *c, const char *ca)
{
    char file[300], *dir = fsutil_join(c->env->state_dir, "canary"), *path;

    snprintf(file, sizeof(file), "%s.pem", ca);
    path = dir != NULL ? fsutil_join(dir, file) : NULL;
    free(dir);
    return path;
}

static void
fill_state(struct canary *c, struct entry *e, const struct config_canary *cc,
           struct canary_state *out)
{
    memset(out, 0, sizeof(*out));
    out->ca = cc->ca;
    out->next_run = next_run(c, e, cc);
    out->state = e->result == 1 ? "ok" : e->result == 0 ? "failing" : "never";
    out->running = e->running;
    out->last_run = e->last_run;
    out->last_success = e->last_success;
    out->duration_ms = e->duration_ms;
    out->step = e->result == 0 ? e->step : NULL;
    out->error = e->result == 0 ? e->error : NULL;
}

int
canary_get(struct canary *c, const char *ca, struct canary_state *out)
{
    const struct config_canary *cc = c != NULL ? config_of(c, ca) : NULL;
    struct entry *e;

    if (cc == NULL || (e = entry_find(c, ca, 1)) == NULL)
        return -E_NOT_FOUND;
    fill_state(c, e, cc, out);
    return 0;
}

size_t
canary_count(struct canary *c)
{
    return c != NULL ? c->env->config->canaries.n : 0;
}

int
canary_at(struct canary *c, size_t i, struct canary_state *out)
{
    if (i >= canary_count(c))
        return -E_NOT_FOUND;
    return canary_get(c, c->env->config->canaries.items[i].ca, out);
}

cJSON *
canary_status_json(struct canary *c)
{
    cJSON *root = cJSON_CreateObject(), *list;

    if (root == NULL || (list = cJSON_AddArrayToObject(root, "canaries")) == NULL) {
        cJSON_Delete(root);
        return NULL;
    }
    for (size_t i = 0; i < canary_count(c); i++) {
        const struct config_canary *cc = &c->env->config->canaries.items[i];
        struct canary_state s;
        char *kept = NULL;
        cJSON *o;

        if (canary_get(c, cc->ca, &s) != 0 || (o = cJSON_CreateObject()) == NULL)
            continue;
        cJSON_AddStringToObject(o, "ca", cc->ca);
        cJSON_AddStringToObject(o, "name", cc->name);
        cJSON_AddStringToObject(o, "directory", cc->directory);
        cJSON_AddStringToObject(o, "challenge", cc->challenge);
        cJSON_AddNumberToObject(o, "every", cc->every);
        cJSON_AddNumberToObject(o, "deadline", cc->deadline);
        cJSON_AddStringToObject(o, "state", s.state);
        cJSON_AddBoolToObject(o, "running", s.running);
        cJSON_AddNumberToObject(o, "last_run", (double)s.last_run);
        cJSON_AddNumberToObject(o, "last_success", (double)s.last_success);
        cJSON_AddNumberToObject(o, "next_run", (double)s.next_run);
        cJSON_AddNumberToObject(o, "duration_ms", s.duration_ms);
        if ((kept = kept_path(c, cc->ca)) != NULL && fsutil_exists(kept))
            cJSON_AddStringToObject(o, "certificate", kept);
        else
            cJSON_AddNullToObject(o, "certificate");
        free(kept);
        if (s.step != NULL)
            cJSON_AddStringToObject(o, "step", s.step);
        else
            cJSON_AddNullToObject(o, "step");
        if (s.error != NULL)
            cJSON_AddStringToObject(o, "error", s.error);
        else
            cJSON_AddNullToObject(o, "error");
        cJSON_AddItemToArray(list, o);
    }
    return root;
}

/* The record: STATE/canary.json, {CA: {result, last_run, last_success, duration_ms, step,
 * error}}, written in the pool. */

struct save_job {
    uv_work_t work;
    struct canary *c;
    char *text;
    int rc;
    char *cause;
};

static void save(struct canary *c);

static void
save_run(uv_work_t *work)
{
    struct save_job *j = work->data;

    j->rc = fsutil_write_atomic(j->c->path, j->text, strlen(j->text), 0600, &j->cause);
}

static void
save_after(uv_work_t *work, int status)
{
    struct save_job *j = work->data;
    struct canary *c = j->c;

    (void)status;
    (*c->env->jobs)--;
    if (j->rc != 0)
        log_error("staging canary: %s", j->cause != NULL ? j->cause : "cannot write canary.json");
    free(j->text);
    free(j->cause);
    free(j);
    c->saving = 0;
    if (c->dirty && !c->stopping)
        save(c);
}

static void
save(struct canary *c)
{
    cJSON *root = cJSON_CreateObject();
    struct save_job *j = NULL;

    if (c->saving) {
        c->dirty = 1;
        goto out;
    }
    c->dirty = 0;
    for (struct entry *e = c->entries; root != NULL && e != NULL; e = e->next) {
        cJSON *o;

        if (e->result < 0 || (o = cJSON_AddObjectToObject(root, e->ca)) == NULL)
            continue;
        cJSON_AddStringToObject(o, "result", e->result == 1 ? "ok" : "failing");
        cJSON_AddNumberToObject(o, "last_run", (double)e->last_run);
        cJSON_AddNumberToObject(o, "last_success", (double)e->last_success);
        cJSON_AddNumberToObject(o, "duration_ms", e->duration_ms);
        if (e->step != NULL)
            cJSON_AddStringToObject(o, "step", e->step);
        if (e->error != NULL)
            cJSON_AddStringToObject(o, "error", e->error);
    }
    if (root == NULL || (j = calloc(1, sizeof(*j))) == NULL ||
        (j->text = cJSON_Print(root)) == NULL)
        goto fail;
    j->c = c;
    j->work.data = j;
    if (uv_queue_work(c->env->loop, &j->work, save_run, save_after) != 0)
        goto fail;
    (*c->env->jobs)++;
    c->saving = 1;
    j = NULL;
    goto out;
fail:
    log_error("staging canary: cannot write %s (out of memory)", c->path);
    if (j != NULL)
        free(j->text);
    free(j);
out:
    cJSON_Delete(root);
}

static void
load(struct canary *c)
{
    unsigned char *data = NULL;
    size_t len = 0;
    char *why = NULL;
    cJSON *root = NULL, *it;
    int rc = fsutil_read_file(c->path, STATE_MAX, &data, &len, &why);

    if (rc == -E_NOT_FOUND)
        goto out;
    if (rc != 0 || (root = cJSON_ParseWithLength((const char *)data, len)) == NULL ||
        !cJSON_IsObject(root)) {
        log_warn("staging canary: ignoring %s (%s); the canaries start afresh", c->path,
                 why != NULL ? why : "not a JSON object");
        goto out;
    }
    cJSON_ArrayForEach(it, root)
    {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(it, "result");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(it, "step");
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(it, "error");
        struct entry *e;

        if (!cJSON_IsObject(it) || !cJSON_IsString(r) ||
            (e = entry_find(c, it->string, 1)) == NULL)
            continue;
        e->result = strcmp(r->valuestring, "ok") == 0 ? 1 : 0;
        e->last_run =
            (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "last_run"));
        e->last_success =
            (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "last_success"));
        e->duration_ms =
            (unsigned)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "duration_ms"));
        if (e->last_run < 0 || e->last_success < 0)
            e->last_run = e->last_success = 0;
        if (cJSON_IsString(st))
            e->step = strdup(st->valuestring);
        if (cJSON_IsString(er))
            e->error = strdup(er->valuestring);
    }
out:
    cJSON_Delete(root);
    free(data);
    free(why);
}

/* The schedule. */

static void arm(struct canary *c);
static int run_one(struct canary *c, struct entry *e, struct run_req *req, char **cause);

static void
on_timer(uv_timer_t *t)
{
    struct canary *c = t->data;
    int64_t now = (int64_t)time(NULL);

    for (size_t i = 0; i < canary_count(c); i++) {
        const struct config_canary *cc = &c->env->config->canaries.items[i];
        struct entry *e = entry_find(c, cc->ca, 1);
        char *cause = NULL;

        if (e == NULL || e->running || next_run(c, e, cc) > now)
            continue;
        if (run_one(c, e, NULL, &cause) != 0)
            log_warn("staging canary of CA '%s': cannot start: %s", cc->ca,
                     cause != NULL ? cause : "error");
        free(cause);
    }
    arm(c);
}

static void
arm(struct canary *c)
{
    int64_t now = (int64_t)time(NULL), soonest = 0;
    uint64_t ms;

    if (!c->timer_open || c->stopping)
        return;
    for (size_t i = 0; i < canary_count(c); i++) {
        const struct config_canary *cc = &c->env->config->canaries.items[i];
        struct entry *e = entry_find(c, cc->ca, 1);
        int64_t when;

        if (e == NULL || e->running)
            continue;
        when = next_run(c, e, cc);
        if (soonest == 0 || when < soonest)
            soonest = when;
    }
    uv_timer_stop(&c->timer);
    if (soonest == 0)
        return;
    ms = soonest <= now ? 1000 : (uint64_t)(soonest - now) * 1000;
    if (ms > TIMER_MAX_MS)
        ms = TIMER_MAX_MS;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* A run. */

static void
req_done(struct run_req *req)
{
    if (req != NULL && --req->pending == 0) {
        req->done(req->arg);
        free(req);
    }
}

static void
entry_end(struct entry *e, int ok, const char *step, const char *words)
{
    struct canary *c = e->c;
    struct waiter *w;

    e->running = 0;
    e->duration_ms = (unsigned)((uv_hrtime() - e->started_hr) / 1000000u);
    e->result = ok;
    free(e->step);
    free(e->error);
    e->step = ok ? NULL : strdup(step != NULL ? step : "?");
    e->error = ok ? NULL : strdup(words != NULL ? words : "failed");
    if (ok) {
        e->last_success = e->last_run;
        log_info("staging canary of CA '%s': ok (%u ms)", e->ca, e->duration_ms);
    } else {
        log_warn("staging canary of CA '%s' failed at step %s: %s", e->ca, e->step, e->error);
    }
    free(e->chain);
    free(e->name);
    free(e->roots);
    free(e->check_error);
    free(e->keep);
    free(e->keep_error);
    e->chain = e->name = e->roots = e->check_error = e->keep = e->keep_error = NULL;
    if (!c->stopping) {
        save(c);
        events_publish_name(c->env->events, EVENT_STATUS_STALE, NULL);
        arm(c);
    }
    while ((w = e->waiters) != NULL) {
        e->waiters = w->next;
        req_done(w->req);
        free(w);
    }
}

/* Pool: the chain that passed replaces the previous one (only the last is kept; its key is
 * never kept). A failure to write it does not fail the canary: check_after logs it. */
static void
keep_chain(struct entry *e)
{
    char *dir = fsutil_join(e->c->env->state_dir, "canary");

    if (dir == NULL || e->keep == NULL || fsutil_mkdir_p(dir, 0700, &e->keep_error) != 0 ||
        fsutil_write_atomic(e->keep, e->chain, strlen(e->chain), 0644, &e->keep_error) != 0) {
        if (e->keep_error == NULL)
            e->keep_error = strdup("out of memory");
    }
    free(dir);
}

/* The chain check (pool): the leaf names the canary's name and is valid now; the chain
 * leads to one of the roots (when configured) or is at least linked issuer by issuer. */
static void
check_run(uv_work_t *work)
{
    struct entry *e = work->data;
    STACK_OF(X509) *certs = NULL, *untrusted = NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    X509 *leaf;
    char *why = NULL, host[260];
    int n;

    e->check_rc = -E_CRYPTO;
    if (pem_read_certs((const unsigned char *)e->chain, strlen(e->chain), "chain", &certs, &why) !=
            0 ||
        (n = sk_X509_num(certs)) < 1) {
        err_set(&e->check_error, "the CA's chain is not PEM certificates: %s",
                why != NULL ? why : "empty");
        goto out;
    }
    leaf = sk_X509_value(certs, 0);
    /* A wildcard name is checked with a label in its place. */
    snprintf(host, sizeof(host), "%s%s", strncmp(e->name, "*.", 2) == 0 ? "canary" : "",
             strncmp(e->name, "*.", 2) == 0 ? e->name + 1 : e->name);
    if (X509_check_host(leaf, host, 0, 0, NULL) != 1) {
        err_set(&e->check_error, "the certificate does not name %s", e->name);
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0 ||
        X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
        err_set(&e->check_error, "the certificate is not valid now");
        goto out;
    }
    if (e->roots == NULL) {
        for (int i = 0; i + 1 < n; i++) {
            if (X509_check_issued(sk_X509_value(certs, i + 1), sk_X509_value(certs, i)) !=
                    X509_V_OK ||
                X509_verify(sk_X509_value(certs, i),
                            X509_get0_pubkey(sk_X509_value(certs, i + 1))) != 1) {
                err_set(&e->check_error, "certificate %d of the chain is not issued by the next",
                        i);
                goto out;
            }
        }
        e->check_rc = 0;
        goto out;
    }
    if ((store = X509_STORE_new()) == NULL || (ctx = X509_STORE_CTX_new()) == NULL ||
        (untrusted = sk_X509_new_null()) == NULL) {
        e->check_rc = -E_NOMEM;
        goto out;
    }
    if (X509_STORE_load_file(store, e->roots) != 1) {
        err_set(&e->check_error, "cannot read the canary's roots from %s", e->roots);
        goto out;
    }
    for (int i = 1; i < n; i++)
        sk_X509_push(untrusted, sk_X509_value(certs, i));
    if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1)
        goto out;
    if (X509_verify_cert(ctx) != 1) {
        err_set(&e->check_error, "the chain does not lead to a root of %s: %s", e->roots,
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    e->check_rc = 0;
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_free(untrusted);
    sk_X509_pop_free(certs, X509_free);
    free(why);
    if (e->check_rc == 0)
        keep_chain(e);
}

static void
check_after(uv_work_t *work, int status)
{
    struct entry *e = work->data;

    (void)status;
    (*e->c->env->jobs)--;
    if (e->check_rc == 0 && e->keep_error != NULL)
        log_warn("staging canary of CA '%s': cannot keep its certificate: %s", e->ca,
                 e->keep_error);
    if (e->check_rc == 0)
        entry_end(e, 1, NULL, NULL);
    else
        entry_end(e, 0, "chain",
                  e->check_error != NULL ? e->check_error : err_message(e->check_rc));
}

static void
order_progress(void *arg, const char *message, unsigned done, unsigned total)
{
    struct entry *e = arg;
    char words[600];

    (void)done;
    (void)total;
    snprintf(words, sizeof(words), "%s: %s", e->ca, message);
    for (struct waiter *w = e->waiters; w != NULL; w = w->next)
        if (w->req->progress != NULL)
            w->req->progress(w->req->arg, words);
}

static void
order_done(void *arg, int rc, const char *cause, const char *detail, const cJSON *result)
{
    struct entry *e = arg;
    const cJSON *chain = cJSON_GetObjectItemCaseSensitive(result, "chain");
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(result, "step");
    const struct config_canary *cc = config_of(e->c, e->ca);

    (void)detail;
    if (rc != 0 || !cJSON_IsString(chain)) {
        entry_end(e, 0, cJSON_IsString(step) ? step->valuestring : "order",
                  cause != NULL ? cause : err_message(rc != 0 ? rc : -E_ACME));
        return;
    }
    if (e->c->stopping || cc == NULL) {
        entry_end(e, 0, "chain", "the agent stopped or the canary was removed before the check");
        return;
    }
    order_progress(e, "checking the chain", 0, 0);
    if ((e->chain = strdup(chain->valuestring)) == NULL || (e->name = strdup(cc->name)) == NULL ||
        (e->keep = kept_path(e->c, e->ca)) == NULL ||
        (cc->roots != NULL && (e->roots = strdup(cc->roots)) == NULL)) {
        entry_end(e, 0, "chain", "out of memory");
        return;
    }
    e->work.data = e;
    if (uv_queue_work(e->c->env->loop, &e->work, check_run, check_after) != 0) {
        entry_end(e, 0, "chain", "cannot queue the chain check");
        return;
    }
    (*e->c->env->jobs)++;
}

/* Starts e's canary (req, may be NULL, waits for it). */
static int
run_one(struct canary *c, struct entry *e, struct run_req *req, char **cause)
{
    const struct config_canary *cc = config_of(c, e->ca);
    struct acme_canary_args args;
    struct waiter *w = NULL;
    int rc;

    if (cc == NULL) {
        err_set(cause, "CA '%s' has no canary", e->ca);
        return -E_NOT_FOUND;
    }
    if (req != NULL) {
        if ((w = calloc(1, sizeof(*w))) == NULL)
            return -E_NOMEM;
        w->req = req;
    }
    if (e->running) {
        if (w != NULL) {
            w->next = e->waiters;
            e->waiters = w;
            req->pending++;
        }
        return 0;
    }
    memset(&args, 0, sizeof(args));
    args.ca = cc->ca;
    args.directory = cc->directory;
    args.trust = cc->trust;
    args.name = cc->name;
    args.challenge = cc->challenge;
    args.deadline_s = (unsigned)cc->deadline;
    e->running = 1;
    e->started_hr = uv_hrtime();
    e->last_run = (int64_t)time(NULL);
    if (w != NULL) {
        w->next = e->waiters;
        e->waiters = w;
        req->pending++;
    }
    if ((rc = acme_canary_order(c->acme, &args,
                                &(struct acme_observer){order_progress, order_done, e}, cause)) !=
        0) {
        /* Not started: nothing to record; take the waiter back. */
        e->running = 0;
        if (w != NULL) {
            e->waiters = w->next;
            req->pending--;
            free(w);
        }
    }
    return rc;
}

int
canary_run(struct canary *c, const char *ca, void (*progress)(void *arg, const char *words),
           void (*done)(void *arg), void *arg, char **cause)
{
    struct run_req *req;
    int rc = 0, started = 0;

    if (c->stopping) {
        err_set(cause, "the agent is stopping");
        return -E_UNAVAILABLE;
    }
    if (canary_count(c) == 0 || (ca != NULL && config_of(c, ca) == NULL)) {
        if (ca != NULL)
            err_set(cause,
                    "CA '%s' has no staging canary (add one to \"canaries\" in the config; "
                    "certctl canary status lists them)",
                    ca);
        else
            err_set(cause, "no staging canary is configured (the config's \"canaries\")");
        return -E_NOT_FOUND;
    }
    if ((req = calloc(1, sizeof(*req))) == NULL)
        return -E_NOMEM;
    req->progress = progress;
    req->done = done;
    req->arg = arg;
    req->pending = 1; /* held while starting */
    for (size_t i = 0; i < canary_count(c) && rc == 0; i++) {
        const char *name = c->env->config->canaries.items[i].ca;
        struct entry *e;

        if (ca != NULL && strcmp(ca, name) != 0)
            continue;
        if ((e = entry_find(c, name, 1)) == NULL)
            rc = -E_NOMEM;
        else if ((rc = run_one(c, e, req, cause)) == 0)
            started++;
    }
    if (rc != 0 && started == 0) {
        free(req);
        return rc;
    }
    arm(c);
    req_done(req);
    return 0;
}

/* A reload may add, remove or change canaries: the schedule follows. */
static void
on_reload(void *arg, const struct event *ev)
{
    (void)ev;
    arm(arg);
}

int
canary_new(const struct env *env, struct acme *acme, struct canary **out, char **cause)
{
    struct canary *c = calloc(1, sizeof(*c));

    (void)cause;
    *out = NULL;
    if (c == NULL)
        return -E_NOMEM;
    c->env = env;
    c->acme = acme;
    c->started = (int64_t)time(NULL);
    if ((c->path = fsutil_join(env->state_dir, "canary.json")) == NULL ||
        events_subscribe(env->events, EVENT_MASK(EVENT_CONFIG_RELOADED), on_reload, c) != 0) {
        free(c->path);
        free(c);
        return -E_NOMEM;
    }
    load(c);
    *out = c;
    return 0;
}

void
canary_start(struct canary *c)
{
    if (c == NULL || c->timer_open)
        return;
    if (uv_timer_init(c->env->loop, &c->timer) != 0) {
        log_error("staging canary: cannot make the schedule's timer");
        return;
    }
    c->timer.data = c;
    c->timer_open = 1;
    arm(c);
}

void
canary_stop(struct canary *c)
{
    if (c == NULL || c->stopping)
        return;
    c->stopping = 1;
    if (c->timer_open) {
        uv_close((uv_handle_t *)&c->timer, NULL);
        c->timer_open = 0;
    }
}

void
canary_free(struct canary *c)
{
    if (c == NULL)
        return;
    events_unsubscribe(c->env->events, on_reload, c);
    while (c->entries != NULL) {
        struct entry *e = c->entries;

        c->entries = e->next;
        entry_free(e);
    }
    free(c->path);
    free(c);
}
