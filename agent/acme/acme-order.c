/*
 * ACME orders (RFC 8555 section 7.4): newOrder, authorizations and their
 * challenges (http-01 and tls-alpn-01 through the built-in responders, dns-01
 * through a hook), finalize with asynchronous processing, download with
 * alternate chains, then the store.  Every wait honours Retry-After, else a
 * bounded back-off, under one deadline per order.  The order URL and the
 * certificate key are persisted as soon as the CA has created the order, so a
 * restarted agent resumes it.
 */
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme-int.h"
#include "config.h"
#include "env.h"
#include "b64url.h"
#include "challenge-alpn.h"
#include "challenge-http.h"
#include "err.h"
#include "fsutil.h"
#include "hooks.h"
#include "keys.h"
#include "log.h"
#include "pem.h"
#include "store.h"
#include "strv.h"

#define MAX_IDENTIFIERS 100
#define HOOK_TIMEOUT_MS (120u * 1000)

struct authz {
    struct acme_order *o;
    char *url;
    char *ident; /* the identifier value as the CA shows it */
    int ip;
    int wildcard;
    char *chall_url;
    char *token;
    char *keyauth;
    char *dns_value; /* dns-01 TXT value */
    int setup;       /* the responder or hook holds the answer */
    int responded;   /* the challenge was triggered */
    int done;
    unsigned polls;
    int hook_remove;     /* the running hook is the "remove" one */
    int hook_active;     /* a hook of this authorization runs */
    int remove_after;    /* run the "remove" hook once the "add" one has ended */
    char *chall_refused; /* the CA's refusal of the challenge POST, kept while we check */
    void *token_put;     /* the answer on its way to the fleet (acme_commit) */
    char *share_key;     /* its key there, deleted at cleanup (NULL: not shared) */
};

struct acme_order {
    struct acme_order *prev, *next;
    struct acme *acme;
    struct acme_ca *ca;
    char *name;
    char **dns;
    size_t ndns;
    char **ips;
    size_t nips;
    char *key_type;
    char *challenge;
    char *preferred_chain;
    char *profile;
    int require_profile;
    int agree_tos;
    char *email;
    char *replaces;     /* ARI CertID of the certificate this order replaces */
    char *preferred_ca; /* a fallback CA's order: the certificate's own CA */
    struct acme_observer obs;
    uint64_t deadline;
    char *url;
    char *finalize;
    struct key *key;
    char *key_pem;
    size_t key_pem_len;
    char *csr;
    struct authz *authz;
    size_t nauthz;
    int authz_started;
    unsigned polls;
    unsigned finalize_tries;
    int finalized;
    int persisting;       /* the order's files are being written */
    int finalize_waiting; /* finalize once they are */
    int resumed;
    int ended;
    unsigned hooks_running;
    unsigned ops; /* calls and timers in flight (order_post, poll_later) */
    char **alternates;
    size_t nalternates, next_alternate;
    char *default_chain;
    struct acme_work work;
    /* A staging canary's order (acme_canary_order): not persisted, not stored. */
    int canary;
    unsigned deadline_s;
    const char *step; /* what the order does now: the step a failure names */
};

static void order_fetch(void *arg);
static void new_order(struct acme_order *o);
static void order_handle(struct acme_order *o, cJSON *json, const struct acme_http_response *r);
static void authz_fetch(void *arg);

/* Life cycle. */

static void
order_free(struct acme_order *o)
{
    for (size_t i = 0; i < o->nauthz; i++) {
        struct authz *a = &o->authz[i];

        free(a->url);
        free(a->ident);
        free(a->chall_url);
        free(a->token);
        free(a->keyauth);
        free(a->dns_value);
        free(a->chall_refused);
        free(a->share_key);
    }
    free(o->authz);
    free(o->name);
    strv_free(o->dns, o->ndns);
    strv_free(o->ips, o->nips);
    free(o->key_type);
    free(o->challenge);
    free(o->preferred_chain);
    free(o->preferred_ca);
    free(o->profile);
    free(o->email);
    free(o->replaces);
    free(o->url);
    free(o->finalize);
    keys_free(o->key);
    if (o->key_pem != NULL)
        keys_free_secret(o->key_pem, o->key_pem_len);
    free(o->csr);
    strv_free(o->alternates, o->nalternates);
    free(o->default_chain);
    free(o->work.cause);
    free(o);
}

static void
order_unlink(struct acme_order *o)
{
    struct acme *acme = o->acme;

    if (o->prev != NULL)
        o->prev->next = o->next;
    else if (acme->orders == o)
        acme->orders = o->next;
    if (o->next != NULL)
        o->next->prev = o->prev;
    o->prev = o->next = NULL;
    acme->norders--;
}

static void progress(struct acme_order *o, const char *fmt, ...) ERR_PRINTF(2, 3);

static void
progress(struct acme_order *o, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    log_debug("ACME order for '%s': %s", o->name, buf);
    if (o->obs.progress != NULL)
        o->obs.progress(o->obs.arg, buf, 0, 0);
}

static char *
order_file(struct acme_order *o, const char *ext)
{
    return acme_file_path(o->acme, "orders", o->name, ext);
}

/* Takes the answers back from responders and hooks. */
static void hook_run(struct authz *a, int remove);

static void
authz_cleanup(struct authz *a)
{
    struct acme *acme = a->o->acme;

    if (!a->setup)
        return;
    a->setup = 0;
    if (a->token_put != NULL)
        acme->commit.token_cancel(acme->commit.ctx, a->token_put);
    a->token_put = NULL;
    if (a->share_key != NULL && acme->commit.token_delete != NULL)
        acme->commit.token_delete(acme->commit.ctx, a->share_key);
    free(a->share_key);
    a->share_key = NULL;
    if (strcmp(a->o->challenge, "http-01") == 0 && acme->http01 != NULL)
        challenge_http_remove(acme->http01, a->token);
    else if (strcmp(a->o->challenge, "tls-alpn-01") == 0 && acme->alpn01 != NULL)
        challenge_alpn_remove(acme->alpn01, a->ident);
    else if (strcmp(a->o->challenge, "dns-01") == 0 && !acme->stopping) {
        if (a->hook_active)
            a->remove_after = 1; /* the "add" hook still runs */
        else
            hook_run(a, 1);
    }
}

/* Frees an ended order once no hook, call or timer can reach it any more. */
static void
order_release(struct acme_order *o)
{
    if (o->hooks_running == 0 && o->ops == 0)
        order_free(o);
}

/*
 * Ends the order: rc 0 after the store took the certificate.  keep_state
 * leaves the persisted order for the next start (the agent is stopping).
 */
static void
order_end(struct acme_order *o, int rc, const char *cause, const char *detail, const cJSON *result)
{
    int keep_state = o->acme->stopping;

    if (o->ended)
        return;
    o->ended = 1;
    for (size_t i = 0; i < o->nauthz; i++)
        authz_cleanup(&o->authz[i]);
    if (rc != 0)
        log_warn("ACME order for '%s' at CA '%s' failed: %s", o->name, o->ca->name,
                 cause != NULL ? cause : err_message(rc));
    if (!keep_state && o->url != NULL && !o->canary) {
        struct file_batch *b = acme_batch_new();

        if (b != NULL && acme_batch_add(b, order_file(o, ".json"), NULL, 0, 0) == 0 &&
            acme_batch_add(b, order_file(o, ".key"), NULL, 0, 0) == 0)
            acme_batch_run(o->acme, b, NULL, NULL);
    }
    if (o->canary && rc != 0 && result == NULL) {
        /* The canary reports the step that failed. */
        cJSON *res = cJSON_CreateObject();

        if (res != NULL)
            cJSON_AddStringToObject(res, "step", o->step != NULL ? o->step : "directory");
        if (o->obs.done != NULL)
            o->obs.done(o->obs.arg, rc, cause, detail, res);
        cJSON_Delete(res);
    } else if (o->obs.done != NULL) {
        o->obs.done(o->obs.arg, rc, cause, detail, result);
    }
    order_unlink(o);
    order_release(o);
}

static void order_fail(struct acme_order *o, int rc, const char *fmt, ...) ERR_PRINTF(3, 4);

static void
order_fail(struct acme_order *o, int rc, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    order_end(o, rc, buf, NULL, NULL);
}

void
acme_order_stop_all(struct acme *acme)
{
    while (acme->orders != NULL) {
        struct acme_order *o = acme->orders;

        log_info("ACME order for '%s' interrupted by the stop; it resumes at the next start",
                 o->name);
        order_end(o, -E_UNAVAILABLE, "the agent is stopping; the order resumes when it starts",
                  NULL, NULL);
    }
}

/*
 * A call or timer of the order in flight.  Several authorizations run at once, so one of
 * them may end the order while the others' calls and timers are pending: those must not
 * reach the freed order (they did: a use after free when an authorization failed).  Each
 * goes through an order_op that counts it in o->ops; once the order has ended, the op only
 * releases it.
 */
struct order_op {
    struct acme_order *o;
    acme_call_cb cb;
    void (*fn)(void *arg);
    void *arg;
};

static struct order_op *
op_new(struct acme_order *o, acme_call_cb cb, void (*fn)(void *arg), void *arg)
{
    struct order_op *op = calloc(1, sizeof(*op));

    if (op == NULL)
        return NULL;
    op->o = o;
    op->cb = cb;
    op->fn = fn;
    op->arg = arg;
    o->ops++;
    return op;
}

/* Takes op back; 1 when its order has ended (and is released if nothing else holds it). */
static int
op_done(struct order_op *op)
{
    struct acme_order *o = op->o;

    free(op);
    o->ops--;
    if (!o->ended)
        return 0;
    order_release(o);
    return 1;
}

static void
op_reply(void *arg, int rc, const char *cause, const char *detail, struct acme_http_response *resp,
         cJSON *json)
{
    struct order_op *op = arg;
    acme_call_cb cb = op->cb;
    void *cb_arg = op->arg;

    if (op_done(op))
        return;
    cb(cb_arg, rc, cause, detail, resp, json);
}

static void
op_timer(void *arg)
{
    struct order_op *op = arg;
    void (*fn)(void *arg) = op->fn;
    void *fn_arg = op->arg;

    if (op_done(op))
        return;
    fn(fn_arg);
}

static void
op_cancel(void *arg)
{
    op_done(arg);
}

/* Waits: Retry-After when the CA gave one, else a doubling back-off, within the deadline. */
static int
poll_later(struct acme_order *o, const struct acme_http_response *resp, unsigned *polls,
           void (*fn)(void *arg), void *arg)
{
    long ra = resp != NULL ? acme_http_retry_after(resp->retry_after, (long long)time(NULL)) : -1;
    uint64_t ms;

    if (ra >= 0) {
        ms = ra < 1 ? 1000 : (uint64_t)ra * 1000;
    } else {
        ms = (uint64_t)ACME_POLL_FIRST_MS << (*polls < 8 ? *polls : 8);
        if (ms > ACME_POLL_MAX_MS)
            ms = ACME_POLL_MAX_MS;
    }
    (*polls)++;
    if (uv_now(o->acme->loop) + ms > o->deadline) {
        if (o->canary)
            order_fail(o, -E_ACME,
                       "the CA did not finish the order within the canary's deadline of %u s "
                       "(order %s)",
                       o->deadline_s, o->url != NULL ? o->url : "not created");
        else
            order_fail(o, -E_ACME, "the CA did not finish the order within %u minutes (order %s)",
                       ACME_ORDER_DEADLINE_MS / 60000, o->url != NULL ? o->url : "not created");
        return -1;
    }
    {
        struct order_op *op = op_new(o, NULL, fn, arg);

        if (op == NULL) {
            order_fail(o, -E_NOMEM, "out of memory");
            return -1;
        }
        if (acme_later_cancel(o->acme, ms, op_timer, op_cancel, op) != 0) {
            free(op);
            o->ops--;
            order_fail(o, -E_UNAVAILABLE, "the agent is stopping");
            return -1;
        }
    }
    return 0;
}

/* Signed POST (payload "" for POST-as-GET) with the account key. */
static int
order_post(struct acme_order *o, const char *url, const char *payload, const char *accept,
           acme_call_cb cb, void *arg)
{
    struct acme_call_args args;
    struct order_op *op;
    char *cause = NULL;
    int rc;

    memset(&args, 0, sizeof(args));
    args.url = url;
    args.payload = payload;
    args.key = o->ca->account->key;
    args.kid = o->ca->account->url;
    args.accept = accept;
    args.deadline = o->deadline;
    if ((op = op_new(o, cb, NULL, arg)) == NULL) {
        order_fail(o, -E_NOMEM, "out of memory");
        return -E_NOMEM;
    }
    if ((rc = acme_call(o->acme, o->ca, &args, op_reply, op, &cause)) != 0) {
        free(op);
        o->ops--;
        order_fail(o, rc, "%s", cause != NULL ? cause : err_message(rc));
        free(cause);
    }
    return rc;
}

/* The store took the certificate. */

static void order_stored(struct acme_order *o, const struct store_version *v);

static void
stored(void *arg, int rc, const char *cause)
{
    struct acme_order *o = arg;
    const struct store_cert *cert;

    o->ops--;
    if (o->ended) {
        /* Stopped while the store wrote it: the certificate is stored all the same, so the
         * persisted order must not make the next start fetch it again. */
        if (rc == 0 && o->url != NULL) {
            struct file_batch *b = acme_batch_new();

            if (b != NULL && acme_batch_add(b, order_file(o, ".json"), NULL, 0, 0) == 0 &&
                acme_batch_add(b, order_file(o, ".key"), NULL, 0, 0) == 0)
                acme_batch_run(o->acme, b, NULL, NULL);
        }
        order_release(o);
        return;
    }
    if (rc != 0) {
        order_end(o, rc, cause, NULL, NULL);
        return;
    }
    cert = store_find(o->acme->store, o->name);
    order_stored(o, cert != NULL ? store_current(cert) : NULL);
}

/* The order's certificate is version v in the store: report it and end the order. */
static void
order_stored(struct acme_order *o, const struct store_version *v)
{
    cJSON *res = NULL;

    if ((res = cJSON_CreateObject()) != NULL && v != NULL) {
        cJSON_AddStringToObject(res, "name", o->name);
        cJSON_AddNumberToObject(res, "version", v->version);
        cJSON_AddStringToObject(res, "ca", o->ca->name);
        cJSON_AddStringToObject(res, "order", o->url);
        cJSON_AddStringToObject(res, "subject", v->subject);
        cJSON_AddStringToObject(res, "issuer", v->issuer);
        cJSON_AddStringToObject(res, "serial", v->serial);
        cJSON_AddNumberToObject(res, "not_after", (double)v->not_after);
        cJSON_AddNumberToObject(res, "days_left",
                                (double)((v->not_after - (int64_t)time(NULL)) / 86400));
        cJSON_AddStringToObject(res, "fingerprint", v->fingerprint);
        cJSON_AddStringToObject(res, "key", v->key_desc);
        if (o->profile != NULL)
            cJSON_AddStringToObject(res, "profile", o->profile);
    }
    progress(o, "stored as version %u", v != NULL ? v->version : 0);
    order_end(o, 0, NULL, NULL, res);
    cJSON_Delete(res);
}

static char *
order_meta(struct acme_order *o)
{
    cJSON *root = cJSON_CreateObject(), *a;
    char *text = NULL;

    if (root == NULL || (a = cJSON_AddObjectToObject(root, "acme")) == NULL)
        goto out;
    cJSON_AddStringToObject(a, "ca", o->ca->name);
    cJSON_AddStringToObject(a, "directory", o->ca->directory);
    cJSON_AddStringToObject(a, "order", o->url);
    cJSON_AddStringToObject(a, "account", o->ca->account->url);
    cJSON_AddStringToObject(a, "key_type", o->key_type);
    cJSON_AddStringToObject(a, "challenge", o->challenge);
    if (o->preferred_chain != NULL)
        cJSON_AddStringToObject(a, "preferred_chain", o->preferred_chain);
    if (o->profile != NULL)
        cJSON_AddStringToObject(a, "profile", o->profile);
    if (o->preferred_ca != NULL)
        cJSON_AddStringToObject(a, "preferred_ca", o->preferred_ca);
    text = cJSON_PrintUnformatted(root);
out:
    cJSON_Delete(root);
    return text;
}

/*
 * The version of o->name holding the leaf of pem, if one does: a resumed order
 * whose certificate was stored just before the agent was stopped or killed (its
 * order file is removed after the commit) must not store it a second time.
 */
static const struct store_version *
already_stored(struct acme_order *o, const char *pem)
{
    const struct store_cert *cert = store_find(o->acme->store, o->name);
    const struct store_version *found = NULL;
    STACK_OF(X509) *certs = NULL;
    struct cert_info info;

    if (cert == NULL ||
        pem_read_certs((const unsigned char *)pem, strlen(pem), "chain", &certs, NULL) != 0)
        return NULL;
    if (sk_X509_num(certs) > 0 && pem_cert_info(sk_X509_value(certs, 0), &info, NULL) == 0) {
        for (size_t i = 0; i < cert->nversions && found == NULL; i++)
            if (cert->versions[i].fingerprint != NULL &&
                strcmp(cert->versions[i].fingerprint, info.fingerprint) == 0)
                found = &cert->versions[i];
        pem_cert_info_free(&info);
    }
    sk_X509_pop_free(certs, X509_free);
    return found;
}

static void
store_chain(struct acme_order *o, const char *pem)
{
    char *meta, *cause = NULL;
    const struct store_version *v;
    int rc;

    if (o->resumed && (v = already_stored(o, pem)) != NULL) {
        log_info("ACME order for '%s': its certificate is already stored as version %u (the "
                 "agent stopped before it removed the order); not storing it again",
                 o->name, v->version);
        order_stored(o, v);
        return;
    }
    meta = order_meta(o);
    progress(o, "downloaded the certificate; storing it");
    o->ops++; /* stored() runs even when the agent stops meanwhile */
    rc = o->acme->commit.store(o->acme->commit.ctx, o->name, pem, o->key_pem, meta, stored, o,
                               &cause);
    free(meta);
    if (rc != 0) {
        o->ops--;
        order_end(o, rc, cause != NULL ? cause : err_message(rc), NULL, NULL);
        free(cause);
    }
}

/* Does the chain in pem (leaf first) name `want` as an issuer or a subject above the leaf? */
static int
chain_matches(const char *pem, const char *want)
{
    STACK_OF(X509) *certs = NULL;
    int found = 0;

    if (pem_read_certs((const unsigned char *)pem, strlen(pem), "chain", &certs, NULL) != 0)
        return 0;
    for (int i = 0; i < sk_X509_num(certs) && !found; i++) {
        char cn[256];
        X509 *c = sk_X509_value(certs, i);

        if (i > 0 &&
            X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn, sizeof(cn)) >
                0 &&
            strcmp(cn, want) == 0)
            found = 1;
        if (X509_NAME_get_text_by_NID(X509_get_issuer_name(c), NID_commonName, cn, sizeof(cn)) >
                0 &&
            strcmp(cn, want) == 0)
            found = 1;
    }
    sk_X509_pop_free(certs, X509_free);
    return found;
}

static void cert_fetch_next(struct acme_order *o);

static void
cert_reply(void *arg, int rc, const char *cause, const char *detail,
           struct acme_http_response *resp, cJSON *json)
{
    struct acme_order *o = arg;

    (void)json;
    if (rc != 0) {
        order_end(o, rc, cause, detail, NULL);
        return;
    }
    if (strstr(resp->body, "-----BEGIN CERTIFICATE-----") == NULL) {
        order_fail(o, -E_ACME, "the CA sent no PEM certificate chain from %s", o->url);
        return;
    }
    if (o->canary) {
        /* The canary's certificate goes back to the caller (agent/renew/canary.c), never to the
         * store. */
        cJSON *res = cJSON_CreateObject();

        if (res != NULL) {
            cJSON_AddStringToObject(res, "chain", resp->body);
            cJSON_AddStringToObject(res, "order", o->url);
            cJSON_AddStringToObject(res, "step", "download");
        }
        progress(o, "downloaded the certificate");
        order_end(o, 0, NULL, NULL, res);
        cJSON_Delete(res);
        return;
    }
    if (o->default_chain == NULL) {
        /* The default chain: remember it and the alternates (RFC 8555 section 7.4.2). */
        if ((o->default_chain = strdup(resp->body)) == NULL) {
            order_fail(o, -E_NOMEM, "out of memory");
            return;
        }
        o->nalternates = acme_http_links(resp, "alternate", &o->alternates);
        if (o->preferred_chain == NULL || chain_matches(resp->body, o->preferred_chain)) {
            store_chain(o, resp->body);
            return;
        }
        progress(o, "the default chain does not lead to '%s'; %zu alternate(s) offered",
                 o->preferred_chain, o->nalternates);
    } else if (chain_matches(resp->body, o->preferred_chain)) {
        progress(o, "alternate chain %zu leads to '%s'", o->next_alternate, o->preferred_chain);
        store_chain(o, resp->body);
        return;
    }
    cert_fetch_next(o);
}

static void
cert_fetch_next(struct acme_order *o)
{
    if (o->next_alternate >= o->nalternates) {
        if (o->preferred_chain != NULL)
            log_warn("ACME order for '%s': no chain leads to '%s'; keeping the CA's default",
                     o->name, o->preferred_chain);
        store_chain(o, o->default_chain);
        return;
    }
    order_post(o, o->alternates[o->next_alternate++], "", "application/pem-certificate-chain",
               cert_reply, o);
}

/* Finalize. */

static void
finalize_reply(void *arg, int rc, const char *cause, const char *detail,
               struct acme_http_response *resp, cJSON *json)
{
    struct acme_order *o = arg;

    if (rc != 0) {
        if (json != NULL && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(json, "type")) &&
            strstr(cJSON_GetObjectItemCaseSensitive(json, "type")->valuestring,
                   ":orderNotReady") != NULL &&
            o->finalize_tries < 20) {
            /* The authorizations are valid but the order is not ready yet: poll it. */
            progress(o, "the CA says the order is not ready yet; waiting for it");
            o->finalized = 0;
            poll_later(o, resp, &o->polls, order_fetch, o);
            return;
        }
        order_end(o, rc, cause, detail, NULL);
        return;
    }
    order_handle(o, json, resp);
}

static void
finalize(struct acme_order *o)
{
    char *payload = NULL;

    if (o->finalize == NULL) {
        order_fail(o, -E_ACME, "the order %s has no finalize URL", o->url);
        return;
    }
    if (o->persisting) {
        /* The CA issues on finalize: not before the order could be written down. */
        o->finalize_waiting = 1;
        return;
    }
    o->step = "finalize";
    o->finalized = 1;
    o->finalize_tries++;
    o->polls = 0;
    progress(o, "finalizing");
    err_set(&payload, "{\"csr\":\"%s\"}", o->csr);
    if (payload == NULL) {
        order_fail(o, -E_NOMEM, "out of memory");
        return;
    }
    order_post(o, o->finalize, payload, NULL, finalize_reply, o);
    free(payload);
}

/* Authorizations and challenges. */

static void authz_respond(struct authz *a);

static void
authz_all_valid(struct acme_order *o)
{
    for (size_t i = 0; i < o->nauthz; i++) {
        if (!o->authz[i].done)
            return;
    }
    progress(o, "all %zu authorization(s) valid", o->nauthz);
    o->step = "order";
    o->polls = 0;
    order_fetch(o);
}

const char *
acme_challenge_error(const cJSON *authz, char *buf, size_t len)
{
    const cJSON *ch;

    cJSON_ArrayForEach(ch, cJSON_GetObjectItemCaseSensitive(authz, "challenges"))
    {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(ch, "error");

        if (cJSON_IsObject(err)) {
            char *t = acme_problem_text(err);

            snprintf(buf, len, "%s", t != NULL ? t : "?");
            free(t);
            return buf;
        }
    }
    snprintf(buf, len, "no error given");
    return buf;
}

/* Is the challenge of this type in the authorization already processing or valid? */
static int
challenge_started(const cJSON *authz, const char *type)
{
    const cJSON *ch;

    cJSON_ArrayForEach(ch, cJSON_GetObjectItemCaseSensitive(authz, "challenges"))
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(ch, "type");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(ch, "status");

        if (cJSON_IsString(t) && strcmp(t->valuestring, type) == 0 && cJSON_IsString(st))
            return strcmp(st->valuestring, "processing") == 0 ||
                   strcmp(st->valuestring, "valid") == 0;
    }
    return 0;
}

int
acme_authz_challenge(const cJSON *authz, const char *type, const char **url, const char **token)
{
    const cJSON *ch;

    cJSON_ArrayForEach(ch, cJSON_GetObjectItemCaseSensitive(authz, "challenges"))
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(ch, "type");
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(ch, "url");
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(ch, "token");

        if (cJSON_IsString(t) && strcmp(t->valuestring, type) == 0 && cJSON_IsString(u) &&
            cJSON_IsString(tok)) {
            *url = u->valuestring;
            *token = tok->valuestring;
            return 0;
        }
    }
    return -E_NOT_FOUND;
}

static void
authz_reply(void *arg, int rc, const char *cause, const char *detail,
            struct acme_http_response *resp, cJSON *json)
{
    struct authz *a = arg;
    struct acme_order *o = a->o;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(json, "status");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(json, "identifier");
    const cJSON *wc = cJSON_GetObjectItemCaseSensitive(json, "wildcard");
    char buf[700];

    if (o->ended)
        return;
    if (rc != 0) {
        order_end(o, rc, cause, detail, NULL);
        return;
    }
    if (!cJSON_IsString(st)) {
        order_fail(o, -E_ACME, "the authorization %s has no status", a->url);
        return;
    }
    if (a->ident == NULL) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(id, "value");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(id, "type");

        if (!cJSON_IsString(v)) {
            order_fail(o, -E_ACME, "the authorization %s has no identifier", a->url);
            return;
        }
        if ((a->ident = strdup(v->valuestring)) == NULL) {
            order_fail(o, -E_NOMEM, "out of memory");
            return;
        }
        a->ip = cJSON_IsString(t) && strcmp(t->valuestring, "ip") == 0;
        a->wildcard = cJSON_IsTrue(wc);
    }
    if (strcmp(st->valuestring, "valid") == 0) {
        progress(o, "%s%s: authorization valid%s", a->wildcard ? "*." : "", a->ident,
                 a->responded ? "" : " (reused)");
        authz_cleanup(a);
        a->done = 1;
        authz_all_valid(o);
        return;
    }
    if (strcmp(st->valuestring, "pending") == 0) {
        if (!a->responded) {
            const char *u, *tok;

            if (acme_authz_challenge(json, o->challenge, &u, &tok) == 0) {
                free(a->chall_url);
                free(a->token);
                a->chall_url = strdup(u);
                a->token = strdup(tok);
            }
            if (a->chall_url == NULL || a->token == NULL) {
                order_fail(o, -E_ACME, "the CA offers no %s challenge for %s%s", o->challenge,
                           a->wildcard ? "*." : "", a->ident);
                return;
            }
            authz_respond(a);
            return;
        }
        if (a->chall_refused != NULL && !challenge_started(json, o->challenge)) {
            order_fail(o, -E_ACME, "%s", a->chall_refused);
            return;
        }
        poll_later(o, resp, &a->polls, authz_fetch, a);
        return;
    }
    /* invalid, deactivated, expired, revoked */
    order_fail(o, -E_ACME, "%s%s: authorization %s: %s", a->wildcard ? "*." : "", a->ident,
               st->valuestring, acme_challenge_error(json, buf, sizeof(buf)));
}

static void
authz_fetch(void *arg)
{
    struct authz *a = arg;

    if (a->o->ended)
        return;
    order_post(a->o, a->url, "", NULL, authz_reply, a);
}

static void
challenge_reply(void *arg, int rc, const char *cause, const char *detail,
                struct acme_http_response *resp, cJSON *json)
{
    struct authz *a = arg;

    (void)json;
    if (a->o->ended)
        return;
    if (rc == -E_ACME && resp != NULL && resp->status >= 400 && resp->status < 500 &&
        a->chall_refused == NULL && cause != NULL) {
        /*
         * A refusal after a lost reply is often the CA saying it already has the
         * answer ("Cannot update challenge with status valid"): look at the
         * authorization before failing; authz_reply fails with these words if the
         * challenge was not started after all.
         */
        if ((a->chall_refused = strdup(cause)) == NULL) {
            order_fail(a->o, -E_NOMEM, "out of memory");
            return;
        }
        progress(a->o, "%s%s: the CA refused the challenge (%s); checking the authorization",
                 a->wildcard ? "*." : "", a->ident, cause);
        a->polls = 0;
        poll_later(a->o, NULL, &a->polls, authz_fetch, a);
        return;
    }
    if (rc != 0) {
        order_end(a->o, rc, cause, detail, NULL);
        return;
    }
    progress(a->o, "%s%s: %s challenge answered; waiting for the CA", a->wildcard ? "*." : "",
             a->ident, a->o->challenge);
    a->polls = 0;
    poll_later(a->o, resp, &a->polls, authz_fetch, a);
}

static void
challenge_trigger(struct authz *a)
{
    a->responded = 1;
    a->o->step = "challenge";
    order_post(a->o, a->chall_url, "{}", NULL, challenge_reply, a);
}

/* dns-01 hooks: HOOK add|remove with CERTAGENT_DNS01_* in the environment (hooks.c). */

static void
hook_done(void *arg, int rc, const char *cause)
{
    struct authz *a = arg;
    struct acme_order *o = a->o;

    /* The order stays alive until hooks_running drops, below. */
    a->hook_active = 0;
    if (!a->hook_remove && !o->ended) {
        if (rc != 0) {
            a->setup = 0;
            order_fail(o, -E_ACME, "the dns-01 hook failed for %s: %s", a->ident,
                       cause != NULL ? cause : "error");
        } else {
            challenge_trigger(a);
        }
    }
    if (a->remove_after && !o->acme->stopping) {
        a->remove_after = 0;
        hook_run(a, 1);
    }
    if (--o->hooks_running == 0 && o->ended)
        order_release(o);
}

static void
hook_run(struct authz *a, int remove)
{
    struct acme *acme = a->o->acme;
    const char *hook = acme->env->config->dns01_hook;
    struct hooks_run_args args;
    const char *argv[3];
    char *env[4] = {NULL, NULL, NULL, NULL}, *cause = NULL, what[320];
    int rc;

    if (hook == NULL) {
        if (!remove)
            order_fail(a->o, -E_BAD_INPUT,
                       "dns-01 needs a hook: set \"dns01_hook\" in the "
                       "config to a command that publishes TXT records");
        return;
    }
    err_set(&env[0], "CERTAGENT_DNS01_NAME=_acme-challenge.%s.", a->ident);
    err_set(&env[1], "CERTAGENT_DNS01_VALUE=%s", a->dns_value);
    err_set(&env[2], "CERTAGENT_DNS01_DOMAIN=%s", a->ident);
    argv[0] = hook;
    argv[1] = remove ? "remove" : "add";
    argv[2] = NULL;
    snprintf(what, sizeof(what), "dns-01 hook '%s' for %s", argv[1], a->ident);
    memset(&args, 0, sizeof(args));
    args.what = what;
    args.argv = argv;
    args.env = (const char *const *)env;
    args.timeout_s = HOOK_TIMEOUT_MS / 1000;
    args.done = hook_done;
    args.arg = a;
    a->hook_remove = remove;
    if (env[0] == NULL || env[1] == NULL || env[2] == NULL)
        rc = -E_NOMEM;
    else
        rc = hooks_run(acme->hooks, &args, &cause);
    if (rc == 0) {
        a->o->hooks_running++;
        a->hook_active = 1;
    } else if (!remove) {
        a->setup = 0;
        order_fail(a->o, rc, "cannot run the dns-01 hook %s: %s", hook,
                   cause != NULL ? cause : err_message(rc));
    } else {
        log_warn("cannot run the dns-01 hook %s: %s", hook,
                 cause != NULL ? cause : err_message(rc));
    }
    free(cause);
    for (int i = 0; i < 3; i++)
        free(env[i]);
}

/* The answer is in the fleet (or could not be put there): the CA may ask any node now. */
static void
on_token_put(void *arg, int rc)
{
    struct authz *a = arg;

    a->token_put = NULL;
    if (rc != 0)
        log_warn("'%s': the %s answer of %s could not be shared with the fleet (%s); only this "
                 "node answers it",
                 a->o->name, a->o->challenge, a->ident, err_message(rc));
    else
        progress(a->o, "%s: the %s answer is shared with the fleet", a->ident, a->o->challenge);
    challenge_trigger(a);
}

/*
 * Behind a load balancer (a fleet), the answer goes to the fleet under key
 * (the http-01 token, or "alpn/" and the SNI) before the challenge is
 * triggered; else the challenge is triggered now.
 */
static void
authz_share(struct authz *a, const char *key, const char *value)
{
    struct acme *acme = a->o->acme;

    if (acme->commit.token_put != NULL && (a->share_key = strdup(key)) != NULL &&
        (a->token_put = acme->commit.token_put(acme->commit.ctx, a->o->name, key, value,
                                               on_token_put, a)) != NULL)
        return; /* challenge_trigger once it is there */
    free(a->share_key);
    a->share_key = NULL;
    challenge_trigger(a);
}

static void
authz_respond(struct authz *a)
{
    struct acme_order *o = a->o;
    struct acme *acme = o->acme;
    struct challenge_http *http01;
    struct challenge_alpn *alpn;
    char *thumb = NULL, *cause = NULL;
    int rc;

    if ((rc = keys_jwk_thumbprint(o->ca->account->key, &thumb, &cause)) != 0)
        goto fail;
    free(a->keyauth);
    a->keyauth = NULL;
    err_set(&a->keyauth, "%s.%s", a->token, thumb);
    if (a->keyauth == NULL) {
        rc = -E_NOMEM;
        goto fail;
    }
    if (strcmp(o->challenge, "http-01") == 0) {
        if ((rc = acme_responders_http01(acme, &http01, &cause)) != 0 ||
            (rc = challenge_http_add(http01, a->token, a->keyauth, &cause)) != 0)
            goto fail;
        a->setup = 1;
        authz_share(a, a->token, a->keyauth);
    } else if (strcmp(o->challenge, "tls-alpn-01") == 0) {
        char sni[300], *key = NULL, *value = NULL;

        if ((rc = acme_responders_alpn01(acme, &alpn, &cause)) != 0 ||
            (rc = challenge_alpn_add(alpn, a->ident, a->keyauth, &cause)) != 0)
            goto fail;
        a->setup = 1;
        if (challenge_alpn_sni(a->ident, sni, sizeof(sni)) != 0)
            sni[0] = '\0'; /* not reached: challenge_alpn_add checked the identifier */
        err_set(&key, "alpn/%s", sni);
        err_set(&value, "%s %s", a->ident, a->keyauth);
        if (key != NULL && value != NULL && sni[0] != '\0')
            authz_share(a, key, value);
        else
            challenge_trigger(a);
        free(key);
        free(value);
    } else {
        unsigned char md[32];

        if (EVP_Digest(a->keyauth, strlen(a->keyauth), md, NULL, EVP_sha256(), NULL) != 1 ||
            (a->dns_value = b64url_encode(md, sizeof(md))) == NULL) {
            rc = -E_CRYPTO;
            goto fail;
        }
        a->setup = 1;
        progress(o, "%s: publishing the dns-01 TXT record through the hook", a->ident);
        hook_run(a, 0);
    }
    free(thumb);
    return;
fail:
    free(thumb);
    order_fail(o, rc, "%s%s: cannot answer the %s challenge: %s", a->wildcard ? "*." : "",
               a->ident != NULL ? a->ident : "?", o->challenge,
               cause != NULL ? cause : err_message(rc));
    free(cause);
}

static void
authz_start(struct acme_order *o, const cJSON *list)
{
    const cJSON *u;
    size_t n = (size_t)cJSON_GetArraySize(list), i = 0;

    o->authz_started = 1;
    o->step = "authorization";
    if (n == 0 || n > MAX_IDENTIFIERS) {
        order_fail(o, -E_ACME, "the order %s lists %zu authorizations", o->url, n);
        return;
    }
    if ((o->authz = calloc(n, sizeof(*o->authz))) == NULL) {
        order_fail(o, -E_NOMEM, "out of memory");
        return;
    }
    cJSON_ArrayForEach(u, list)
    {
        if (!cJSON_IsString(u) || (o->authz[i].url = strdup(u->valuestring)) == NULL) {
            o->nauthz = i;
            order_fail(o, -E_ACME, "the order %s has a malformed authorization list", o->url);
            return;
        }
        o->authz[i].o = o;
        i++;
    }
    o->nauthz = n;
    progress(o, "order %s: %zu authorization(s)", o->url, n);
    for (i = 0; i < n && !o->ended; i++)
        authz_fetch(&o->authz[i]);
}

/* The order object. */

static void
order_reply(void *arg, int rc, const char *cause, const char *detail,
            struct acme_http_response *resp, cJSON *json)
{
    struct acme_order *o = arg;

    if (rc != 0) {
        order_end(o, rc, cause, detail, NULL);
        return;
    }
    order_handle(o, json, resp);
}

static void
order_fetch(void *arg)
{
    struct acme_order *o = arg;

    if (!o->ended)
        order_post(o, o->url, "", NULL, order_reply, o);
}

static void
order_handle(struct acme_order *o, cJSON *json, const struct acme_http_response *resp)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(json, "status");
    const cJSON *fin = cJSON_GetObjectItemCaseSensitive(json, "finalize");
    const cJSON *cert = cJSON_GetObjectItemCaseSensitive(json, "certificate");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(json, "error");

    if (o->ended)
        return;
    if (!cJSON_IsString(st)) {
        order_fail(o, -E_ACME, "the order %s has no status", o->url);
        return;
    }
    if (cJSON_IsString(fin) && o->finalize == NULL)
        o->finalize = strdup(fin->valuestring);
    if (strcmp(st->valuestring, "pending") == 0) {
        if (!o->authz_started) {
            authz_start(o, cJSON_GetObjectItemCaseSensitive(json, "authorizations"));
            return;
        }
        /* Authorizations done but the order still pending (replica lag): poll. */
        for (size_t i = 0; i < o->nauthz; i++) {
            if (!o->authz[i].done)
                return;
        }
        poll_later(o, resp, &o->polls, order_fetch, o);
    } else if (strcmp(st->valuestring, "ready") == 0) {
        if (o->finalized) {
            poll_later(o, resp, &o->polls, order_fetch, o);
            return;
        }
        finalize(o);
    } else if (strcmp(st->valuestring, "processing") == 0) {
        if (o->polls == 0)
            progress(o, "the CA is processing the order");
        poll_later(o, resp, &o->polls, order_fetch, o);
    } else if (strcmp(st->valuestring, "valid") == 0) {
        if (!cJSON_IsString(cert)) {
            /* valid but no certificate URL yet: poll again. */
            poll_later(o, resp, &o->polls, order_fetch, o);
            return;
        }
        progress(o, "order valid; downloading the certificate");
        o->step = "download";
        order_post(o, cert->valuestring, "", "application/pem-certificate-chain", cert_reply, o);
    } else {
        char *pt = cJSON_IsObject(err) ? acme_problem_text(err) : NULL;
        char *detail = cJSON_IsObject(err) ? cJSON_PrintUnformatted(err) : NULL;
        char *words = NULL;

        err_set(&words, "the order %s is %s: %s", o->url, st->valuestring,
                pt != NULL ? pt : "the CA gave no reason");
        order_end(o, -E_ACME, words, detail, NULL);
        free(pt);
        free(detail);
        free(words);
    }
}

/* Creating the order. */

/*
 * The order's files are written (or not).  A state directory that cannot take
 * them (disk full) will not take the certificate either: the order fails before
 * finalize, so the CA does not issue a certificate that would be thrown away (and
 * retries on a full disk do not use up the CA's rate limits).
 */
static void
persisted(void *arg, int rc, const char *cause)
{
    struct acme_order *o = arg;

    o->ops--;
    o->persisting = 0;
    if (o->ended) {
        order_release(o);
        return;
    }
    if (rc != 0) {
        order_fail(o, rc,
                   "cannot write the ACME order down, so the CA was not asked to issue "
                   "(the certificate could not be stored either): %s",
                   cause != NULL ? cause : err_message(rc));
        return;
    }
    if (o->finalize_waiting) {
        o->finalize_waiting = 0;
        finalize(o);
    }
}

static void
persist(struct acme_order *o)
{
    cJSON *root, *dns, *ips;
    struct file_batch *b;
    char *text = NULL;

    if (o->canary)
        return; /* a canary's order is not resumed after a restart */
    root = cJSON_CreateObject();
    b = acme_batch_new();
    if (root == NULL || b == NULL)
        goto nomem;
    cJSON_AddStringToObject(root, "name", o->name);
    cJSON_AddStringToObject(root, "ca", o->ca->name);
    cJSON_AddStringToObject(root, "url", o->url);
    cJSON_AddStringToObject(root, "key_type", o->key_type);
    cJSON_AddStringToObject(root, "challenge", o->challenge);
    if (o->preferred_chain != NULL)
        cJSON_AddStringToObject(root, "preferred_chain", o->preferred_chain);
    if (o->profile != NULL)
        cJSON_AddStringToObject(root, "profile", o->profile);
    if (o->preferred_ca != NULL)
        cJSON_AddStringToObject(root, "preferred_ca", o->preferred_ca);
    cJSON_AddNumberToObject(root, "created", (double)time(NULL));
    dns = cJSON_AddArrayToObject(root, "dns");
    ips = cJSON_AddArrayToObject(root, "ips");
    for (size_t i = 0; i < o->ndns; i++)
        cJSON_AddItemToArray(dns, cJSON_CreateString(o->dns[i]));
    for (size_t i = 0; i < o->nips; i++)
        cJSON_AddItemToArray(ips, cJSON_CreateString(o->ips[i]));
    if ((text = cJSON_Print(root)) == NULL)
        goto nomem;
    /* The key first: an order file never points at a missing key. */
    if (acme_batch_add(b, order_file(o, ".key"), o->key_pem, o->key_pem_len, 0600) != 0 ||
        acme_batch_add(b, order_file(o, ".json"), text, strlen(text), 0600) != 0)
        goto nomem;
    o->persisting = 1;
    o->ops++; /* persisted() runs even when the order ends meanwhile */
    if (acme_batch_run(o->acme, b, persisted, o) != 0) {
        o->persisting = 0;
        o->ops--;
        log_warn("cannot queue the write of the ACME order for '%s' (it will not resume after "
                 "a restart)",
                 o->name);
    }
    b = NULL;
    goto out;
nomem:
    log_warn("out of memory writing the ACME order for '%s' (it will not resume after a "
             "restart)",
             o->name);
out:
    acme_batch_free(b);
    cJSON_Delete(root);
    free(text);
}

static void
new_order_reply(void *arg, int rc, const char *cause, const char *detail,
                struct acme_http_response *resp, cJSON *json)
{
    struct acme_order *o = arg;

    if (rc != 0) {
        if (json != NULL && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(json, "type")) &&
            strstr(cJSON_GetObjectItemCaseSensitive(json, "type")->valuestring,
                   ":invalidProfile") != NULL) {
            char *words = NULL;

            err_set(&words, "CA '%s' refused the profile '%s': %s", o->ca->name,
                    o->profile != NULL ? o->profile : "", cause);
            order_end(o, rc, words, detail, NULL);
            free(words);
            return;
        }
        if (o->replaces != NULL && json != NULL &&
            cJSON_IsString(cJSON_GetObjectItemCaseSensitive(json, "type")) &&
            strstr(cJSON_GetObjectItemCaseSensitive(json, "type")->valuestring,
                   ":alreadyReplaced") != NULL) {
            /* RFC 9773 section 5: the certificate was replaced already; order without. */
            log_info("CA '%s' says the certificate of '%s' was already replaced (%s); ordering "
                     "without \"replaces\"",
                     o->ca->name, o->name, cause);
            free(o->replaces);
            o->replaces = NULL;
            new_order(o);
            return;
        }
        order_end(o, rc, cause, detail, NULL);
        return;
    }
    if (resp->location == NULL || (o->url = strdup(resp->location)) == NULL) {
        order_fail(o, -E_ACME, "the CA created an order but sent no Location (order URL)");
        return;
    }
    progress(o, "order created: %s", o->url);
    persist(o);
    order_handle(o, json, resp);
}

static void
new_order(struct acme_order *o)
{
    cJSON *root = cJSON_CreateObject(), *ids;
    char *text = NULL;
    const char *url = acme_ca_url(o->ca, "newOrder");

    if (root == NULL || (ids = cJSON_AddArrayToObject(root, "identifiers")) == NULL)
        goto nomem;
    for (size_t i = 0; i < o->ndns + o->nips; i++) {
        cJSON *id = cJSON_CreateObject();

        if (id == NULL)
            goto nomem;
        cJSON_AddStringToObject(id, "type", i < o->ndns ? "dns" : "ip");
        cJSON_AddStringToObject(id, "value", i < o->ndns ? o->dns[i] : o->ips[i - o->ndns]);
        cJSON_AddItemToArray(ids, id);
    }
    if (o->profile != NULL)
        cJSON_AddStringToObject(root, "profile", o->profile);
    if (o->replaces != NULL)
        cJSON_AddStringToObject(root, "replaces", o->replaces);
    if ((text = cJSON_PrintUnformatted(root)) == NULL)
        goto nomem;
    cJSON_Delete(root);
    order_post(o, url, text, NULL, new_order_reply, o);
    free(text);
    return;
nomem:
    cJSON_Delete(root);
    order_fail(o, -E_NOMEM, "out of memory");
}

static void
keygen_run(struct acme_work *w)
{
    struct acme_order *o = w->arg;
    enum key_type type;

    if ((w->rc = keys_type_parse(o->key_type, &type, &w->cause)) != 0)
        return;
    if (o->key == NULL && (w->rc = keys_generate(type, &o->key, &w->cause)) != 0)
        return;
    if (o->key_pem == NULL &&
        (w->rc = keys_to_pem(o->key, &o->key_pem, &o->key_pem_len, &w->cause)) != 0)
        return;
    w->rc = keys_csr(o->key, (const char *const *)o->dns, o->ndns, (const char *const *)o->ips,
                     o->nips, &o->csr, &w->cause);
}

static void
keygen_done(struct acme_work *w)
{
    struct acme_order *o = w->arg;

    o->ops--;
    if (o->ended) {
        order_release(o);
        return;
    }
    if (w->rc != 0) {
        order_fail(o, w->rc, "%s", w->cause != NULL ? w->cause : err_message(w->rc));
        return;
    }
    if (o->resumed) {
        progress(o, "resuming order %s", o->url);
        order_fetch(o);
    } else {
        o->step = "order";
        new_order(o);
    }
}

static void
account_ready(void *arg, int rc, const char *cause, const char *detail)
{
    struct acme_order *o = arg;

    if (o->ended)
        return;
    if (rc != 0) {
        order_end(o, rc, cause, detail, NULL);
        return;
    }
    o->step = "order";
    /* The work lives in the order: the order waits for it (o->ops) before it is freed. */
    o->ops++;
    if (acme_work_queue(o->acme, &o->work, keygen_run, keygen_done, o) != 0) {
        o->ops--;
        order_fail(o, -E_INTERNAL, "cannot queue key generation");
    }
}

static void
dir_ready(void *arg, int rc, const char *cause, const char *detail)
{
    struct acme_order *o = arg;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(o->ca->dir, "meta");
    const cJSON *profiles = cJSON_GetObjectItemCaseSensitive(meta, "profiles");

    if (o->ended)
        return;
    if (rc != 0) {
        order_end(o, rc, cause, detail, NULL);
        return;
    }
    if (o->profile != NULL && !o->resumed &&
        cJSON_GetObjectItemCaseSensitive(profiles, o->profile) == NULL) {
        char offered[300] = "";
        const cJSON *p;

        cJSON_ArrayForEach(p, profiles)
        {
            if (strlen(offered) + strlen(p->string) + 3 < sizeof(offered)) {
                if (offered[0] != '\0')
                    strcat(offered, ", ");
                strcat(offered, p->string);
            }
        }
        if (o->require_profile) {
            order_fail(o, -E_BAD_INPUT, "CA '%s' does not offer the profile '%s' (%s%s)",
                       o->ca->name, o->profile,
                       offered[0] != '\0' ? "it offers: "
                                          : "it offers "
                                            "no profiles",
                       offered);
            return;
        }
        log_warn("ACME order for '%s': CA '%s' does not offer the profile '%s' (%s%s); using "
                 "its default",
                 o->name, o->ca->name, o->profile,
                 offered[0] != '\0' ? "it offers: " : "it offers no profiles", offered);
        progress(o, "warning: CA '%s' does not offer the profile '%s'; using its default",
                 o->ca->name, o->profile);
        free(o->profile);
        o->profile = NULL;
    }
    o->step = "account";
    acme_ca_account(o->acme, o->ca, o->agree_tos, o->email, account_ready, o);
}

static struct acme_order *
order_find(struct acme *acme, const char *name)
{
    for (struct acme_order *o = acme->orders; o != NULL; o = o->next) {
        if (strcmp(o->name, name) == 0)
            return o;
    }
    return NULL;
}

/* staging: a canary's hidden CA (its order name is not a certificate's), else NULL. */
static int
order_new(struct acme *acme, const struct acme_order_args *args, struct acme_ca *staging,
          struct acme_order **out, char **cause)
{
    struct acme_order *o;
    const char *caname = args->ca != NULL ? args->ca : acme->env->config->default_ca;
    const char *chall = args->challenge != NULL ? args->challenge : "http-01";
    struct acme_ca *ca;
    int rc;

    *out = NULL;
    if (staging == NULL && (rc = store_name_valid(args->name, cause)) != 0)
        return rc;
    if (staging != NULL)
        ca = staging;
    else if (caname == NULL || (ca = acme_ca_find(acme, caname)) == NULL) {
        err_set(cause,
                "no CA named '%s' (see certctl ca list; add it with certctl ca add %s "
                "--directory URL)",
                caname != NULL ? caname : "", caname != NULL ? caname : "NAME");
        return -E_NOT_FOUND;
    }
    if (args->ndns + args->nips == 0) {
        err_set(cause, "give at least one name with --dns or --ip");
        return -E_BAD_INPUT;
    }
    if (args->ndns + args->nips > MAX_IDENTIFIERS) {
        err_set(cause, "at most %d names per certificate", MAX_IDENTIFIERS);
        return -E_BAD_INPUT;
    }
    if (strcmp(chall, "http-01") != 0 && strcmp(chall, "dns-01") != 0 &&
        strcmp(chall, "tls-alpn-01") != 0) {
        err_set(cause, "unknown challenge '%s': use http-01, dns-01 or tls-alpn-01", chall);
        return -E_BAD_INPUT;
    }
    for (size_t i = 0; i < args->ndns; i++) {
        if (strncmp(args->dns[i], "*.", 2) == 0 && strcmp(chall, "dns-01") != 0) {
            err_set(cause, "the wildcard name %s needs --challenge dns-01", args->dns[i]);
            return -E_BAD_INPUT;
        }
    }
    if (args->nips > 0 && strcmp(chall, "dns-01") == 0) {
        err_set(cause, "IP addresses cannot be validated with dns-01: use http-01 or "
                       "tls-alpn-01");
        return -E_BAD_INPUT;
    }
    if (order_find(acme, args->name) != NULL) {
        err_set(cause, "an order for '%s' is in progress", args->name);
        return -E_BUSY;
    }
    if ((o = calloc(1, sizeof(*o))) == NULL)
        return -E_NOMEM;
    o->acme = acme;
    o->ca = ca;
    o->require_profile = args->require_profile;
    o->agree_tos = args->agree_tos;
    rc = -E_NOMEM;
    if ((o->name = strdup(args->name)) == NULL || (o->challenge = strdup(chall)) == NULL ||
        (o->key_type = strdup(args->key_type != NULL ? args->key_type
                                                     : acme->env->config->default_key)) == NULL ||
        (args->preferred_chain != NULL &&
         (o->preferred_chain = strdup(args->preferred_chain)) == NULL) ||
        (args->profile != NULL && (o->profile = strdup(args->profile)) == NULL) ||
        (args->email != NULL && (o->email = strdup(args->email)) == NULL) ||
        (args->replaces != NULL && (o->replaces = strdup(args->replaces)) == NULL) ||
        (args->preferred_ca != NULL && (o->preferred_ca = strdup(args->preferred_ca)) == NULL) ||
        strv_dup(&o->dns, &o->ndns, args->dns, args->ndns) != 0 ||
        strv_dup(&o->ips, &o->nips, args->ips, args->nips) != 0) {
        order_free(o);
        return rc;
    }
    o->deadline = uv_now(acme->loop) + ACME_ORDER_DEADLINE_MS;
    *out = o;
    return 0;
}

static void
order_go(struct acme *acme, struct acme_order *o)
{
    o->next = acme->orders;
    if (acme->orders != NULL)
        acme->orders->prev = o;
    acme->orders = o;
    acme->norders++;
    o->step = "directory";
    acme_ca_directory(acme, o->ca, dir_ready, o);
}

int
acme_canary_order(struct acme *acme, const struct acme_canary_args *args,
                  const struct acme_observer *obs, char **cause)
{
    struct acme_order_args oa;
    struct acme_order *o;
    struct acme_ca *ca;
    const char *dns[1];
    char *name = NULL;
    int rc;

    if (acme->stopping) {
        err_set(cause, "the agent is stopping");
        return -E_UNAVAILABLE;
    }
    if ((ca = acme_staging_ca(acme, args->ca, args->directory, args->trust)) == NULL)
        return -E_NOMEM;
    err_set(&name, "%s", ca->name);
    if (name == NULL)
        return -E_NOMEM;
    memset(&oa, 0, sizeof(oa));
    dns[0] = args->name;
    oa.name = name;
    oa.dns = dns;
    oa.ndns = 1;
    oa.challenge = args->challenge;
    oa.key_type = "ec256";
    oa.agree_tos = 1; /* a staging CA: its terms bind no production account */
    rc = order_new(acme, &oa, ca, &o, cause);
    free(name);
    if (rc != 0)
        return rc;
    o->canary = 1;
    o->deadline_s = args->deadline_s > 0 ? args->deadline_s : 600;
    o->deadline = uv_now(acme->loop) + (uint64_t)o->deadline_s * 1000;
    if (obs != NULL)
        o->obs = *obs;
    log_info("staging canary of CA '%s' started (%s at %s, %s)", args->ca, args->name,
             args->directory, o->challenge);
    order_go(acme, o);
    return 0;
}

int
acme_request(struct acme *acme, const struct acme_order_args *args,
             const struct acme_observer *obs, char **cause)
{
    struct acme_order *o;
    int rc;

    if (acme->stopping) {
        err_set(cause, "the agent is stopping");
        return -E_UNAVAILABLE;
    }
    if ((rc = order_new(acme, args, NULL, &o, cause)) != 0)
        return rc;
    if (obs != NULL)
        o->obs = *obs;
    log_info("ACME order for '%s' at CA '%s' started (%zu name(s), %s)", o->name, o->ca->name,
             o->ndns + o->nips, o->challenge);
    order_go(acme, o);
    return 0;
}

/* Resuming orders persisted by an earlier run. */

static void
resume_one(struct acme *acme, const char *file)
{
    char *path = acme_file_path(acme, "orders", NULL, NULL), *jpath = NULL, *kpath = NULL;
    unsigned char *data = NULL, *kdata = NULL;
    size_t len = 0, klen = 0, n;
    cJSON *root = NULL, *it;
    struct acme_order_args args;
    struct acme_order *o = NULL;
    const char **dns = NULL, **ips = NULL;
    size_t ndns = 0, nips = 0;
    char *cause = NULL, base[128];
    const char *url;
    int rc = -E_NOMEM;

    n = strlen(file) - 5;
    if (path == NULL || n >= sizeof(base))
        goto out;
    memcpy(base, file, n);
    base[n] = '\0';
    jpath = fsutil_join(path, file);
    kpath = acme_file_path(acme, "orders", base, ".key");
    if (jpath == NULL || kpath == NULL)
        goto out;
    if ((rc = fsutil_read_file(jpath, 256 * 1024, &data, &len, &cause)) != 0 ||
        (rc = fsutil_read_file(kpath, 256 * 1024, &kdata, &klen, &cause)) != 0)
        goto out;
    rc = -E_BAD_INPUT;
    if ((root = cJSON_ParseWithLength((const char *)data, len)) == NULL) {
        err_set(&cause, "not JSON");
        goto out;
    }
#define S(k)                                                                                      \
    (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, k))                                    \
         ? cJSON_GetObjectItemCaseSensitive(root, k)->valuestring                                 \
         : NULL)
    memset(&args, 0, sizeof(args));
    args.name = S("name");
    args.ca = S("ca");
    args.key_type = S("key_type");
    args.challenge = S("challenge");
    args.preferred_chain = S("preferred_chain");
    args.profile = S("profile");
    args.preferred_ca = S("preferred_ca");
    url = S("url");
    if (args.name == NULL || url == NULL || args.ca == NULL) {
        err_set(&cause, "name, url or ca missing");
        goto out;
    }
    if (acme->commit.resume_ok != NULL && !acme->commit.resume_ok(acme->commit.ctx, args.name)) {
        uv_fs_t req;

        /* A shared name of a fleet is ordered only under the fleet's lock, which a
         * restarted node no longer holds: its renewal asks for the lock again. */
        log_info("not resuming the ACME order for '%s': it is shared with the fleet, whose "
                 "lock decides which node orders it",
                 args.name);
        if (uv_fs_unlink(NULL, &req, jpath, NULL) == 0) {
            uv_fs_req_cleanup(&req);
            (void)uv_fs_unlink(NULL, &req, kpath, NULL);
        }
        uv_fs_req_cleanup(&req);
        rc = 0;
        goto out;
    }
    dns = calloc((size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "dns")) + 1,
                 sizeof(*dns));
    ips = calloc((size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "ips")) + 1,
                 sizeof(*ips));
    if (dns == NULL || ips == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "dns")) if (cJSON_IsString(it))
        dns[ndns++] = it->valuestring;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "ips")) if (cJSON_IsString(it))
        ips[nips++] = it->valuestring;
    args.dns = dns;
    args.ndns = ndns;
    args.ips = ips;
    args.nips = nips;
    if ((rc = order_new(acme, &args, NULL, &o, &cause)) != 0)
        goto out;
    if ((rc = keys_parse(kdata, klen, NULL, &o->key, &cause)) != 0 ||
        (o->url = strdup(url)) == NULL) {
        rc = rc != 0 ? rc : -E_NOMEM;
        goto out;
    }
#undef S
    o->resumed = 1;
    log_info("resuming the ACME order for '%s' at CA '%s': %s", o->name, o->ca->name, o->url);
    order_go(acme, o);
    o = NULL;
    rc = 0;
out:
    if (rc != 0)
        log_error("cannot resume the ACME order in %s: %s", jpath != NULL ? jpath : file,
                  cause != NULL ? cause : err_message(rc));
    if (o != NULL)
        order_free(o);
    cJSON_Delete(root);
    free(dns);
    free(ips);
    free(data);
    if (kdata != NULL)
        keys_free_secret(kdata, klen);
    free(path);
    free(jpath);
    free(kpath);
    free(cause);
}

/*
 * An order's key is written before its file: a kill between the two leaves a
 * key no order points at (the CA was not asked to issue with it).  Removed.
 */
static void
remove_orphan_key(const char *dir, const char *name)
{
    char *key = fsutil_join(dir, name), *json = NULL;
    size_t l;
    uv_fs_t req;

    if (key == NULL || (json = malloc((l = strlen(key)) + 2)) == NULL)
        goto out;
    memcpy(json, key, l - 4);
    memcpy(json + l - 4, ".json", 6); /* NAME.key -> NAME.json */
    if (fsutil_exists(json))
        goto out;
    if (uv_fs_unlink(NULL, &req, key, NULL) == 0)
        log_info("removed %s: an ACME order key without its order file (the agent stopped "
                 "between the two writes)",
                 key);
    uv_fs_req_cleanup(&req);
out:
    free(key);
    free(json);
}

int
acme_order_resume_dir(struct acme *acme)
{
    char *path = acme_file_path(acme, "orders", NULL, NULL);
    uv_fs_t req;
    uv_dirent_t ent;
    int n;

    if (path == NULL)
        return -E_NOMEM;
    /* At start, before the agent listens: a synchronous scan is fine. */
    n = uv_fs_scandir(NULL, &req, path, 0, NULL);
    if (n > 0) {
        while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
            size_t l = strlen(ent.name);

            if (l > 5 && strcmp(ent.name + l - 5, ".json") == 0 && ent.name[0] != '.')
                resume_one(acme, ent.name);
            else if (l > 4 && strcmp(ent.name + l - 4, ".key") == 0)
                remove_orphan_key(path, ent.name);
        }
    }
    uv_fs_req_cleanup(&req);
    free(path);
    return 0;
}
