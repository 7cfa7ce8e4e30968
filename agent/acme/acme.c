/*
 * ACME client core: the CA registry, directories and nonces, signed calls
 * (JWS with badNonce, 5xx, 429 and Retry-After handling), accounts, and
 * revocation.  Orders are in acme-order.c.
 */
#include "acme.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme-int.h"
#include "config.h"
#include "env.h"
#include "events.h"
#include "b64url.h"
#include "err.h"
#include "fsutil.h"
#include "keys.h"
#include "log.h"
#include "pem.h"
#include "store.h"
#include "sys.h"
#include "version.h"

#define MAX_STATE_FILE (256 * 1024)

static const struct {
    const char *name;
    const char *directory;
} builtin_cas[] = {
    {"letsencrypt", "https://acme-v02.api.letsencrypt.org/directory"},
    {"letsencrypt-staging", "https://acme-staging-v02.api.letsencrypt.org/directory"},
    {"zerossl", "https://acme.zerossl.com/v2/DV90"},
    {"google", "https://dv.acme-v02.api.pki.goog/directory"},
    {"buypass", "https://api.buypass.com/acme/directory"},
};
#define NBUILTIN (sizeof(builtin_cas) / sizeof(builtin_cas[0]))

/* Timers. */

static void
timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void
timer_fired(uv_timer_t *t)
{
    struct acme_timer *at = t->data;
    struct acme *acme = at->acme;

    if (at->prev != NULL)
        at->prev->next = at->next;
    else
        acme->timers = at->next;
    if (at->next != NULL)
        at->next->prev = at->prev;
    at->fn(at->arg);
    uv_close((uv_handle_t *)&at->timer, timer_closed);
}

/* Runs fn(arg) after ms on the loop (cancelled by acme_stop). */
static int
acme_later(struct acme *acme, uint64_t ms, void (*fn)(void *arg), void *arg)
{
    return acme_later_cancel(acme, ms, fn, NULL, arg);
}

int
acme_later_cancel(struct acme *acme, uint64_t ms, void (*fn)(void *arg), void (*cancel)(void *arg),
                  void *arg)
{
    struct acme_timer *at;

    if (acme->stopping)
        return -E_UNAVAILABLE;
    if ((at = calloc(1, sizeof(*at))) == NULL)
        return -E_NOMEM;
    at->acme = acme;
    at->fn = fn;
    at->cancel = cancel;
    at->arg = arg;
    if (uv_timer_init(acme->loop, &at->timer) != 0) {
        free(at);
        return -E_INTERNAL;
    }
    at->timer.data = at;
    at->next = acme->timers;
    if (acme->timers != NULL)
        acme->timers->prev = at;
    acme->timers = at;
    uv_timer_start(&at->timer, timer_fired, ms, 0);
    return 0;
}

/* Pool work. */

static void
work_run(uv_work_t *w)
{
    struct acme_work *aw = (struct acme_work *)w;

    aw->run(aw);
}

static void
work_after(uv_work_t *w, int status)
{
    struct acme_work *aw = (struct acme_work *)w;

    (*aw->acme->env->jobs)--;
    if (status == UV_ECANCELED && aw->rc == 0) {
        aw->rc = -E_UNAVAILABLE;
        err_set(&aw->cause, "the agent is shutting down");
    }
    aw->done(aw);
}

int
acme_work_queue(struct acme *acme, struct acme_work *w, void (*run)(struct acme_work *w),
                void (*done)(struct acme_work *w), void *arg)
{
    w->acme = acme;
    w->run = run;
    w->done = done;
    w->arg = arg;
    w->rc = 0;
    w->cause = NULL;
    if (uv_queue_work(acme->loop, &w->work, work_run, work_after) != 0)
        return -E_INTERNAL;
    (*acme->env->jobs)++;
    return 0;
}

/* Problem documents (RFC 7807, RFC 8555 section 6.7). */

char *
acme_problem_text(const cJSON *p)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
    const cJSON *detail = cJSON_GetObjectItemCaseSensitive(p, "detail");
    const cJSON *subs = cJSON_GetObjectItemCaseSensitive(p, "subproblems");
    const cJSON *sub;
    char *text = NULL, *more;
    size_t len;

    err_set(&text, "%s (%s)", cJSON_IsString(detail) ? detail->valuestring : "no detail",
            cJSON_IsString(type) ? type->valuestring : "no type");
    cJSON_ArrayForEach(sub, subs)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(sub, "identifier");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(id, "value");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(sub, "type");
        const cJSON *sd = cJSON_GetObjectItemCaseSensitive(sub, "detail");

        if (text == NULL)
            break;
        len = strlen(text);
        more = NULL;
        err_set(&more, "%s; %s: %s (%s)", text, cJSON_IsString(v) ? v->valuestring : "?",
                cJSON_IsString(sd) ? sd->valuestring : "no detail",
                cJSON_IsString(st) ? st->valuestring : "no type");
        (void)len;
        if (more == NULL)
            break;
        free(text);
        text = more;
    }
    return text;
}

static int
problem_is(const cJSON *p, const char *suffix)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
    static const char prefix[] = "urn:ietf:params:acme:error:";

    return cJSON_IsString(type) && strncmp(type->valuestring, prefix, sizeof(prefix) - 1) == 0 &&
           strcmp(type->valuestring + sizeof(prefix) - 1, suffix) == 0;
}

/* Nonces. */

static void
nonce_put(struct acme_ca *ca, const char *nonce)
{
    char *copy;

    if (nonce == NULL || *nonce == '\0' || strlen(nonce) > 256)
        return;
    if ((copy = strdup(nonce)) == NULL)
        return;
    if (ca->nnonces == ACME_MAX_NONCES) {
        free(ca->nonces[0]);
        memmove(ca->nonces, ca->nonces + 1, (ACME_MAX_NONCES - 1) * sizeof(char *));
        ca->nnonces--;
    }
    ca->nonces[ca->nnonces++] = copy;
}

static char *
nonce_take(struct acme_ca *ca)
{
    return ca->nnonces > 0 ? ca->nonces[--ca->nnonces] : NULL;
}

/* Calls. */

struct call {
    struct acme *acme;
    struct acme_ca *ca;
    char *url;
    char *payload;
    const struct key *key;
    char *kid;
    char *accept;
    uint64_t deadline;
    unsigned nonce_tries, server_tries, transport_tries;
    acme_call_cb cb;
    void *arg;
};

static void call_step(void *arg);

static void
call_free(struct call *c)
{
    free(c->url);
    free(c->payload);
    free(c->kid);
    free(c->accept);
    free(c);
}

static void
call_end(struct call *c, int rc, const char *cause, const char *detail,
         struct acme_http_response *resp, cJSON *json)
{
    c->cb(c->arg, rc, cause, detail, resp, json);
    call_free(c);
}

/*
 * A flattened JWS (RFC 7515) of payload for url, signed by key, with kid or
 * (kid NULL) the key's JWK, and nonce when not NULL; heap JSON text.
 */
static int
jws_build(const struct key *key, const char *kid, const char *nonce, const char *url,
          const char *payload, char **out, char **cause)
{
    cJSON *prot = cJSON_CreateObject(), *jwk = NULL, *body = NULL;
    char *prot_text = NULL, *jwk_text = NULL, *p64 = NULL, *b64 = NULL, *input = NULL;
    char *sig = NULL;
    size_t n;
    int rc = -E_NOMEM;

    *out = NULL;
    if (prot == NULL || cJSON_AddStringToObject(prot, "alg", keys_jws_alg(key)) == NULL)
        goto out;
    if (kid != NULL) {
        if (cJSON_AddStringToObject(prot, "kid", kid) == NULL)
            goto out;
    } else {
        if ((rc = keys_jwk(key, &jwk_text, cause)) != 0)
            goto out;
        rc = -E_NOMEM;
        if ((jwk = cJSON_Parse(jwk_text)) == NULL)
            goto out;
        cJSON_AddItemToObject(prot, "jwk", jwk);
    }
    if ((nonce != NULL && cJSON_AddStringToObject(prot, "nonce", nonce) == NULL) ||
        cJSON_AddStringToObject(prot, "url", url) == NULL ||
        (prot_text = cJSON_PrintUnformatted(prot)) == NULL ||
        (p64 = b64url_encode(prot_text, strlen(prot_text))) == NULL ||
        (b64 = b64url_encode(payload, strlen(payload))) == NULL)
        goto out;
    n = strlen(p64) + strlen(b64) + 2;
    if ((input = malloc(n)) == NULL)
        goto out;
    snprintf(input, n, "%s.%s", p64, b64);
    if ((rc = keys_jws_sign(key, input, strlen(input), &sig, cause)) != 0)
        goto out;
    rc = -E_NOMEM;
    if ((body = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(body, "protected", p64) == NULL ||
        cJSON_AddStringToObject(body, "payload", b64) == NULL ||
        cJSON_AddStringToObject(body, "signature", sig) == NULL ||
        (*out = cJSON_PrintUnformatted(body)) == NULL)
        goto out;
    rc = 0;
out:
    cJSON_Delete(prot);
    cJSON_Delete(body);
    free(prot_text);
    free(jwk_text);
    free(p64);
    free(b64);
    free(input);
    free(sig);
    return rc;
}

/* Milliseconds to wait before retrying after resp (Retry-After, else back-off). */
static uint64_t
retry_delay(const struct acme_http_response *resp, unsigned tries)
{
    long ra = resp != NULL ? acme_http_retry_after(resp->retry_after, (long long)time(NULL)) : -1;
    uint64_t ms;

    if (ra >= 0)
        return ra == 0 ? 100 : (uint64_t)ra * 1000;
    ms = 500u << (tries < 6 ? tries : 6);
    return ms > 30000 ? 30000 : ms;
}

static int
is_json_type(const char *ct, const char *want)
{
    size_t n = strlen(want);

    return ct != NULL && strncasecmp(ct, want, n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

cJSON *
acme_reply_json(const struct acme_http_response *resp)
{
    if (resp->body_len > 0 && (is_json_type(resp->content_type, "application/json") ||
                               is_json_type(resp->content_type, "application/problem+json")))
        return cJSON_ParseWithLength(resp->body, resp->body_len);
    return NULL;
}

static void
call_reply(void *arg, struct acme_http_response *resp)
{
    struct call *c = arg;
    struct acme *acme = c->acme;
    cJSON *json = NULL;
    char *words = NULL, *detail = NULL;
    uint64_t delay;

    if (resp->nonce != NULL)
        nonce_put(c->ca, resp->nonce);
    if (acme->stopping) {
        call_end(c, -E_UNAVAILABLE, "the agent is stopping", NULL, resp, NULL);
        goto out;
    }
    if (resp->error != NULL) {
        /* No HTTP reply: retry while the deadline allows. */
        if (c->transport_tries++ < ACME_TRANSPORT_RETRIES &&
            uv_now(acme->loop) + retry_delay(NULL, c->transport_tries) < c->deadline) {
            log_info("ACME %s: %s: %s; retrying", c->ca->name, c->url, resp->error);
            if (acme_later(acme, retry_delay(NULL, c->transport_tries), call_step, c) == 0)
                goto out;
        }
        err_set(&words, "cannot reach the CA '%s' at %s: %s", c->ca->name, c->url, resp->error);
        call_end(c, -E_ACME, words, NULL, resp, NULL);
        goto out;
    }
    json = acme_reply_json(resp);
    if (resp->status >= 200 && resp->status < 300) {
        /*
         * A body that should be JSON and is not (malformed, or an HTML page from a
         * middlebox) is retried like a server error: it is what a broken proxy or a
         * half-deployed CA produces, and the next answer is usually fine.
         */
        char what[160] = "";

        if (json == NULL && resp->body_len > 0 &&
            is_json_type(resp->content_type, "application/json"))
            snprintf(what, sizeof(what), "malformed JSON");
        else if (json == NULL && resp->body_len > 0 && c->accept == NULL &&
                 !is_json_type(resp->content_type, "application/problem+json"))
            snprintf(what, sizeof(what), "a reply of type '%.100s' instead of JSON",
                     resp->content_type != NULL ? resp->content_type : "(none)");
        if (what[0] != '\0') {
            delay = retry_delay(NULL, c->server_tries);
            if (c->server_tries++ < ACME_SERVER_RETRIES &&
                uv_now(acme->loop) + delay < c->deadline) {
                log_info("ACME %s: %s sent %s; retrying in %llu ms", c->ca->name, c->url, what,
                         (unsigned long long)delay);
                if (acme_later(acme, delay, call_step, c) == 0)
                    goto out;
            }
            err_set(&words, "the CA '%s' sent %s from %s", c->ca->name, what, c->url);
            call_end(c, -E_ACME, words, NULL, resp, NULL);
            goto out;
        }
        call_end(c, 0, NULL, NULL, resp, json);
        goto out;
    }
    /* An error: a problem document, or at least the status. */
    if (json != NULL && problem_is(json, "badNonce") && c->payload != NULL &&
        c->nonce_tries++ < ACME_NONCE_RETRIES) {
        log_debug("ACME %s: badNonce from %s; retrying with a fresh nonce", c->ca->name, c->url);
        call_step(c);
        goto out;
    }
    if ((resp->status == 429 || resp->status == 503 || resp->status >= 500) &&
        !(json != NULL && problem_is(json, "rateLimited") && resp->retry_after == NULL)) {
        delay = retry_delay(resp, c->server_tries);
        if (c->server_tries++ < ACME_SERVER_RETRIES && uv_now(acme->loop) + delay < c->deadline) {
            log_info("ACME %s: %s answered %ld; retrying in %llu ms", c->ca->name, c->url,
                     resp->status, (unsigned long long)delay);
            if (acme_later(acme, delay, call_step, c) == 0)
                goto out;
        }
    }
    if (json != NULL && cJSON_GetObjectItemCaseSensitive(json, "type") != NULL) {
        char *pt = acme_problem_text(json);

        err_set(&words, "the CA '%s' refused: %s", c->ca->name, pt != NULL ? pt : "?");
        free(pt);
        detail = cJSON_PrintUnformatted(json);
    } else {
        err_set(&words, "the CA '%s' answered HTTP %ld to %s%s%.200s", c->ca->name, resp->status,
                c->url, resp->body_len > 0 ? ": " : "", resp->body_len > 0 ? resp->body : "");
    }
    call_end(c, -E_ACME, words, detail, resp, json);
out:
    free(words);
    free(detail);
    cJSON_Delete(json);
    acme_http_response_free(resp);
}

static void
nonce_reply(void *arg, struct acme_http_response *resp)
{
    struct call *c = arg;
    char *words = NULL;

    if (resp->nonce != NULL && resp->error == NULL) {
        nonce_put(c->ca, resp->nonce);
        acme_http_response_free(resp);
        call_step(c);
        return;
    }
    /* Let the reply path decide on retries by treating it like any failure. */
    if (resp->error == NULL && resp->status >= 200 && resp->status < 300) {
        err_set(&words, "the CA '%s' gave no Replay-Nonce", c->ca->name);
        call_end(c, -E_ACME, words, NULL, resp, NULL);
        free(words);
        acme_http_response_free(resp);
        return;
    }
    call_reply(c, resp);
}

static void
call_step(void *arg)
{
    struct call *c = arg;
    struct acme *acme = c->acme;
    struct acme_http_request req;
    char *nonce = NULL, *body = NULL, *cause = NULL;
    const char *nonce_url;
    int rc;

    memset(&req, 0, sizeof(req));
    req.ca_file = c->ca->trust;
    req.accept = c->accept;
    req.url = c->url;
    req.timeout_ms = (long)acme->env->config->acme_http_timeout * 1000L;
    if (c->payload == NULL) {
        req.method = "GET";
        rc = acme_http_send(acme->http, &req, call_reply, c, &cause);
    } else if ((nonce = nonce_take(c->ca)) == NULL) {
        if ((nonce_url = acme_ca_url(c->ca, "newNonce")) == NULL) {
            call_end(c, -E_ACME, "the CA's directory has no newNonce", NULL, NULL, NULL);
            return;
        }
        req.method = "HEAD";
        req.url = nonce_url;
        req.accept = NULL;
        rc = acme_http_send(acme->http, &req, nonce_reply, c, &cause);
    } else {
        if ((rc = jws_build(c->key, c->kid, nonce, c->url, c->payload, &body, &cause)) == 0) {
            req.method = "POST";
            req.body = body;
            req.body_len = strlen(body);
            rc = acme_http_send(acme->http, &req, call_reply, c, &cause);
        }
    }
    free(nonce);
    free(body);
    if (rc != 0) {
        call_end(c, rc, cause != NULL ? cause : err_message(rc), NULL, NULL, NULL);
        free(cause);
    }
}

int
acme_call(struct acme *acme, struct acme_ca *ca, const struct acme_call_args *args,
          acme_call_cb cb, void *arg, char **cause)
{
    struct call *c;

    if (acme->stopping) {
        err_set(cause, "the agent is stopping");
        return -E_UNAVAILABLE;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return -E_NOMEM;
    c->acme = acme;
    c->ca = ca;
    c->key = args->key;
    c->cb = cb;
    c->arg = arg;
    c->deadline =
        args->deadline != 0 ? args->deadline : uv_now(acme->loop) + ACME_ORDER_DEADLINE_MS;
    if ((c->url = strdup(args->url)) == NULL ||
        (args->payload != NULL && (c->payload = strdup(args->payload)) == NULL) ||
        (args->kid != NULL && (c->kid = strdup(args->kid)) == NULL) ||
        (args->accept != NULL && (c->accept = strdup(args->accept)) == NULL)) {
        call_free(c);
        return -E_NOMEM;
    }
    if (c->payload != NULL && keys_jws_alg(c->key) == NULL) {
        call_free(c);
        err_set(cause, "no key to sign the ACME request with");
        return -E_INTERNAL;
    }
    call_step(c);
    return 0;
}

/* The CA registry. */

struct acme_ca *
acme_ca_find(struct acme *acme, const char *name)
{
    for (struct acme_ca *ca = acme->cas; ca != NULL; ca = ca->next) {
        if (strcmp(ca->name, name) == 0)
            return ca;
    }
    return NULL;
}

static void
account_free(struct acme_account *a)
{
    if (a == NULL)
        return;
    free(a->url);
    free(a->email);
    free(a->key_type);
    free(a->directory);
    keys_free(a->key);
    free(a);
}

static void
waiters_free(struct acme_waiter **list)
{
    struct acme_waiter *w;

    while ((w = *list) != NULL) {
        *list = w->next;
        free(w);
    }
}

static void
ca_free(struct acme_ca *ca)
{
    waiters_free(&ca->dir_waiters);
    waiters_free(&ca->account_waiters);
    for (size_t i = 0; i < ca->nnonces; i++)
        free(ca->nonces[i]);
    cJSON_Delete(ca->dir);
    account_free(ca->account);
    free(ca->name);
    free(ca->directory);
    free(ca->trust);
    free(ca);
}

static struct acme_ca *
ca_new(struct acme *acme, const char *name, const char *directory, const char *trust, int builtin)
{
    struct acme_ca *ca = calloc(1, sizeof(*ca)), **tail;

    if (ca == NULL || (ca->name = strdup(name)) == NULL ||
        (ca->directory = strdup(directory)) == NULL ||
        (trust != NULL && (ca->trust = strdup(trust)) == NULL)) {
        if (ca != NULL)
            ca_free(ca);
        return NULL;
    }
    ca->builtin = builtin;
    ca->acme = acme;
    for (tail = &acme->cas; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = ca;
    return ca;
}

static char *
acme_path(const struct acme *acme, const char *sub, const char *name, const char *ext)
{
    char *dir = fsutil_join(acme->dir, sub), *file = NULL, *path = NULL;

    if (dir == NULL)
        return NULL;
    if (name == NULL)
        return dir;
    err_set(&file, "%s%s", name, ext);
    if (file != NULL)
        path = fsutil_join(dir, file);
    free(dir);
    free(file);
    return path;
}

const char *
acme_ca_url(const struct acme_ca *ca, const char *what)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ca->dir, what);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Reads cas.json and adds its CAs.  Loop thread at start (before listening). */
static int
load_cas(struct acme *acme, char **cause)
{
    char *path = fsutil_join(acme->dir, "cas.json");
    unsigned char *data = NULL;
    size_t len = 0;
    cJSON *root = NULL, *it;
    int rc;

    if (path == NULL)
        return -E_NOMEM;
    rc = fsutil_read_file(path, MAX_STATE_FILE, &data, &len, cause);
    if (rc == -E_NOT_FOUND) {
        /* No CA was ever added. */
        if (cause != NULL) {
            free(*cause);
            *cause = NULL;
        }
        rc = 0;
        goto out;
    }
    if (rc != 0)
        goto out;
    if ((root = cJSON_ParseWithLength((const char *)data, len)) == NULL || !cJSON_IsObject(root)) {
        err_set(cause, "%s is not a JSON object", path);
        rc = -E_IO;
        goto out;
    }
    cJSON_ArrayForEach(it, root)
    {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "directory");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "trust");
        struct acme_ca *old;

        if (!cJSON_IsString(d) || store_name_valid(it->string, NULL) != 0) {
            log_warn("%s: skipping CA '%s': no directory URL", path, it->string);
            continue;
        }
        if ((old = acme_ca_find(acme, it->string)) != NULL) {
            /* A saved CA of a built-in name replaces its URL. */
            free(old->directory);
            old->directory = strdup(d->valuestring);
            old->builtin = 0;
            continue;
        }
        if (ca_new(acme, it->string, d->valuestring, cJSON_IsString(t) ? t->valuestring : NULL,
                   0) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
    }
out:
    cJSON_Delete(root);
    free(data);
    free(path);
    return rc;
}

/*
 * Reads the account kept for CA name (accounts/NAME.json and .key): 0 with *out
 * (NULL when there is none), else the error with words in cause.  Touches only
 * the files: the thread pool may run it.
 */
static int
account_read(const struct acme *acme, const char *name, struct acme_account **out, char **cause)
{
    char *jpath = acme_path(acme, "accounts", name, ".json");
    char *kpath = acme_path(acme, "accounts", name, ".key");
    unsigned char *data = NULL, *kdata = NULL;
    size_t len = 0, klen = 0;
    cJSON *root = NULL;
    struct acme_account *a = NULL;
    char *why = NULL;
    int rc = -E_NOMEM;

    *out = NULL;
    if (jpath == NULL || kpath == NULL)
        goto out;
    if ((rc = fsutil_read_file(jpath, MAX_STATE_FILE, &data, &len, &why)) != 0) {
        if (rc == -E_NOT_FOUND)
            rc = 0;
        goto out;
    }
    if ((rc = fsutil_read_file(kpath, MAX_STATE_FILE, &kdata, &klen, &why)) != 0)
        goto out;
    rc = -E_IO;
    if ((root = cJSON_ParseWithLength((const char *)data, len)) == NULL ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "url"))) {
        err_set(&why, "not an account file");
        goto out;
    }
    if ((a = calloc(1, sizeof(*a))) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if ((rc = keys_parse(kdata, klen, NULL, &a->key, &why)) != 0)
        goto out;
    a->url = strdup(cJSON_GetObjectItemCaseSensitive(root, "url")->valuestring);
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "email")))
        a->email = strdup(cJSON_GetObjectItemCaseSensitive(root, "email")->valuestring);
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "key_type")))
        a->key_type = strdup(cJSON_GetObjectItemCaseSensitive(root, "key_type")->valuestring);
    if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, "created")))
        a->created = (int64_t)cJSON_GetObjectItemCaseSensitive(root, "created")->valuedouble;
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "directory")))
        a->directory = strdup(cJSON_GetObjectItemCaseSensitive(root, "directory")->valuestring);
    *out = a;
    a = NULL;
    rc = 0;
out:
    if (rc != 0)
        err_set(cause, "%s: %s", jpath != NULL ? jpath : "?", why != NULL ? why : err_message(rc));
    account_free(a);
    cJSON_Delete(root);
    free(data);
    if (kdata != NULL)
        keys_free_secret(kdata, klen);
    free(jpath);
    free(kpath);
    free(why);
    return rc;
}

/* At start: the account kept for ca, when there is one. */
static int
load_account(struct acme *acme, struct acme_ca *ca)
{
    char *cause = NULL;
    int rc = account_read(acme, ca->name, &ca->account, &cause);

    if (rc != 0)
        log_error("cannot load the ACME account for CA '%s' (%s)", ca->name,
                  cause != NULL ? cause : err_message(rc));
    free(cause);
    return rc;
}

/*
 * The hidden CA of a staging canary: "canary@CA" (no CA name holds '@', so it
 * never meets one of the registry), with its own account files, kept apart from
 * acme->cas (not listed, not usable for certificates).  A changed directory
 * drops the cached directory and an account made at another directory.
 */
struct acme_ca *
acme_staging_ca(struct acme *acme, const char *caname, const char *directory, const char *trust)
{
    struct acme_ca *ca;
    char *name = NULL;

    err_set(&name, "canary@%s", caname);
    if (name == NULL)
        return NULL;
    for (ca = acme->staging; ca != NULL; ca = ca->next)
        if (strcmp(ca->name, name) == 0)
            break;
    if (ca == NULL) {
        if ((ca = calloc(1, sizeof(*ca))) == NULL || (ca->name = strdup(name)) == NULL ||
            (ca->directory = strdup(directory)) == NULL) {
            if (ca != NULL)
                ca_free(ca);
            free(name);
            return NULL;
        }
        ca->acme = acme;
        ca->next = acme->staging;
        acme->staging = ca;
        load_account(acme, ca);
    } else if (strcmp(ca->directory, directory) != 0 && !ca->account_busy) {
        char *d = strdup(directory);

        if (d == NULL) {
            free(name);
            return NULL;
        }
        free(ca->directory);
        ca->directory = d;
        cJSON_Delete(ca->dir);
        ca->dir = NULL;
        for (size_t i = 0; i < ca->nnonces; i++)
            free(ca->nonces[i]);
        ca->nnonces = 0;
    }
    if (ca->account != NULL && ca->account->directory != NULL &&
        strcmp(ca->account->directory, ca->directory) != 0 && !ca->account_busy) {
        account_free(ca->account);
        ca->account = NULL;
    }
    if (!ca->account_busy && ((trust == NULL) != (ca->trust == NULL) ||
                              (trust != NULL && strcmp(trust, ca->trust) != 0))) {
        char *t = trust != NULL ? strdup(trust) : NULL;

        if (trust == NULL || t != NULL) {
            free(ca->trust);
            ca->trust = t;
        }
    }
    free(name);
    return ca;
}

/* A config reload: the responders take their new addresses. */
static void
on_config_reloaded(void *arg, const struct event *ev)
{
    (void)ev;
    acme_responders_apply(arg);
}

int
acme_new(const struct env *env, struct store *store, struct hooks *hooks,
         const struct acme_commit *commit, struct acme **out, char **cause)
{
    struct acme *acme;
    char ua[128];
    int rc = -E_NOMEM;

    *out = NULL;
    if ((acme = calloc(1, sizeof(*acme))) == NULL)
        return -E_NOMEM;
    acme->env = env;
    acme->store = store;
    acme->hooks = hooks;
    acme->commit = *commit;
    acme->loop = env->loop;
    if (events_subscribe(env->events, EVENT_MASK(EVENT_CONFIG_RELOADED), on_config_reloaded,
                         acme) != 0) {
        free(acme);
        return -E_NOMEM;
    }
    if ((acme->dir = fsutil_join(store_state_dir(store), "acme")) == NULL)
        goto fail;
    for (const char *const *sub = (const char *const[]){"accounts", "orders", "trust", NULL};
         *sub != NULL; sub++) {
        char *p = fsutil_join(acme->dir, *sub);

        rc = p != NULL ? fsutil_mkdir_p(p, 0700, cause) : -E_NOMEM;
        free(p);
        if (rc != 0)
            goto fail;
    }
    rc = -E_NOMEM;
    for (size_t i = 0; i < NBUILTIN; i++) {
        if (ca_new(acme, builtin_cas[i].name, builtin_cas[i].directory, NULL, 1) == NULL)
            goto fail;
    }
    if ((rc = load_cas(acme, cause)) != 0)
        goto fail;
    for (size_t i = 0; i < env->config->acme_cas.n; i++) {
        const struct config_ca *cc = &env->config->acme_cas.items[i];
        struct acme_ca *ca = acme_ca_find(acme, cc->name);

        if ((rc = store_name_valid(cc->name, cause)) != 0)
            goto fail;
        if (ca != NULL) {
            /* The config wins over a built-in or added CA of the same name. */
            free(ca->directory);
            free(ca->trust);
            ca->directory = strdup(cc->directory);
            ca->trust = cc->trust != NULL ? strdup(cc->trust) : NULL;
            ca->builtin = 0;
        } else if ((ca = ca_new(acme, cc->name, cc->directory, cc->trust, 0)) == NULL) {
            rc = -E_NOMEM;
            goto fail;
        }
        ca->from_config = 1;
    }
    for (struct acme_ca *ca = acme->cas; ca != NULL; ca = ca->next)
        load_account(acme, ca);
    snprintf(ua, sizeof(ua), "certagent/%s (ACME; libcurl)", CERTAGENT_VERSION);
    if ((rc = acme_http_new(env->loop, ua, &acme->http, cause)) != 0)
        goto fail;
    *out = acme;
    return 0;
fail:
    acme_free(acme);
    return rc;
}

void
acme_start(struct acme *acme)
{
    acme_responders_apply(acme);
    acme_order_resume_dir(acme);
}

void
acme_stop(struct acme *acme)
{
    if (acme == NULL || acme->stopping)
        return;
    acme->stopping = 1;
    acme_order_stop_all(acme);
    while (acme->timers != NULL) {
        struct acme_timer *at = acme->timers;

        acme->timers = at->next;
        uv_timer_stop(&at->timer);
        uv_close((uv_handle_t *)&at->timer, timer_closed);
        if (at->cancel != NULL)
            at->cancel(at->arg);
    }
    acme_http_free(acme->http);
    acme->http = NULL;
    acme_responders_close(acme);
}

void
acme_free(struct acme *acme)
{
    if (acme == NULL)
        return;
    /* A start that failed after acme_new never stopped it: close its handles. */
    acme_stop(acme);
    events_unsubscribe(acme->env->events, on_config_reloaded, acme);
    while (acme->cas != NULL) {
        struct acme_ca *ca = acme->cas;

        acme->cas = ca->next;
        ca_free(ca);
    }
    while (acme->staging != NULL) {
        struct acme_ca *ca = acme->staging;

        acme->staging = ca->next;
        ca_free(ca);
    }
    free(acme->dir);
    free(acme);
}

size_t
acme_active_orders(const struct acme *acme)
{
    return acme != NULL ? acme->norders : 0;
}

/* Directory. */

/* Tells every waiter of *list the outcome, emptying the list first (a waiter may add). */
static void
waiters_notify(struct acme_waiter **list, int rc, const char *cause, const char *detail)
{
    struct acme_waiter *w = *list;

    *list = NULL;
    while (w != NULL) {
        struct acme_waiter *next = w->next;

        if (w->fn != NULL)
            w->fn(w->arg, rc, cause, detail);
        free(w);
        w = next;
    }
}

static void
dir_notify(struct acme_ca *ca, int rc, const char *cause, const char *detail)
{
    ca->dir_fetching = 0;
    waiters_notify(&ca->dir_waiters, rc, cause, detail);
}

int
acme_directory_ok(const cJSON *json)
{
    return json != NULL && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(json, "newNonce")) &&
           cJSON_IsString(cJSON_GetObjectItemCaseSensitive(json, "newOrder"));
}

static void
dir_reply(void *arg, int rc, const char *cause, const char *detail,
          struct acme_http_response *resp, cJSON *json)
{
    struct acme_ca *ca = arg;
    char *words = NULL;

    (void)resp;
    if (rc == 0 && !acme_directory_ok(json)) {
        err_set(&words, "%s is not an ACME directory (no newNonce or newOrder)", ca->directory);
        rc = -E_ACME;
        cause = words;
    }
    if (rc == 0) {
        cJSON_Delete(ca->dir);
        ca->dir = cJSON_Duplicate(json, 1);
        ca->dir_at = uv_now(ca->acme->loop);
    }
    dir_notify(ca, rc, cause, detail);
    free(words);
}

/* Makes sure ca->dir is no older than max_age_ms; fn runs once it is (or failed). */
static void
acme_ca_directory_max_age(struct acme *acme, struct acme_ca *ca, uint64_t max_age_ms,
                          void (*fn)(void *arg, int rc, const char *cause, const char *detail),
                          void *arg)
{
    struct acme_waiter *w;
    struct acme_call_args args;
    char *cause = NULL;
    int rc;

    if (ca->dir != NULL && uv_now(acme->loop) - ca->dir_at < max_age_ms) {
        fn(arg, 0, NULL, NULL);
        return;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL) {
        fn(arg, -E_NOMEM, "out of memory", NULL);
        return;
    }
    w->fn = fn;
    w->arg = arg;
    w->next = ca->dir_waiters;
    ca->dir_waiters = w;
    if (ca->dir_fetching)
        return;
    ca->dir_fetching = 1;
    memset(&args, 0, sizeof(args));
    args.url = ca->directory;
    args.deadline = uv_now(acme->loop) + 60000;
    if ((rc = acme_call(acme, ca, &args, dir_reply, ca, &cause)) != 0) {
        dir_notify(ca, rc, cause != NULL ? cause : err_message(rc), NULL);
        free(cause);
    }
}

void
acme_ca_directory(struct acme *acme, struct acme_ca *ca,
                  void (*fn)(void *arg, int rc, const char *cause, const char *detail), void *arg)
{
    acme_ca_directory_max_age(acme, ca, ACME_DIRECTORY_TTL_MS, fn, arg);
}

/* Persistence in the thread pool: a batch of files written atomically. */

struct file_write {
    char *path;
    char *data;
    size_t len;
    int mode;
    int remove; /* remove path instead of writing it */
};

struct file_batch {
    struct acme_work work;
    struct file_write files[4];
    size_t n;
    void (*fn)(void *arg, int rc, const char *cause);
    void *arg;
};

static void
batch_run(struct acme_work *w)
{
    struct file_batch *b = (struct file_batch *)w;

    for (size_t i = 0; i < b->n && w->rc == 0; i++) {
        struct file_write *f = &b->files[i];

        if (f->remove)
            w->rc = fsutil_remove_tree(f->path, &w->cause);
        else
            w->rc = fsutil_write_atomic(f->path, f->data, f->len, f->mode, &w->cause);
    }
}

void
acme_batch_free(struct file_batch *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->files[i].path);
        if (b->files[i].data != NULL)
            keys_free_secret(b->files[i].data, b->files[i].len);
    }
    free(b->work.cause);
    free(b);
}

static void
batch_done(struct acme_work *w)
{
    struct file_batch *b = (struct file_batch *)w;

    if (b->fn != NULL)
        b->fn(b->arg, w->rc, w->cause);
    acme_batch_free(b);
}

struct file_batch *
acme_batch_new(void)
{
    return calloc(1, sizeof(struct file_batch));
}

/* Adds a write (data copied; NULL data: remove path).  Takes path. */
int
acme_batch_add(struct file_batch *b, char *path, const char *data, size_t len, int mode)
{
    struct file_write *f;

    if (path == NULL || b->n == sizeof(b->files) / sizeof(b->files[0])) {
        free(path);
        return -E_NOMEM;
    }
    f = &b->files[b->n];
    f->path = path;
    f->mode = mode;
    if (data == NULL) {
        f->remove = 1;
    } else {
        if ((f->data = malloc(len + 1)) == NULL) {
            free(path);
            return -E_NOMEM;
        }
        memcpy(f->data, data, len);
        f->data[len] = '\0';
        f->len = len;
    }
    b->n++;
    return 0;
}

int
acme_batch_run(struct acme *acme, struct file_batch *b,
               void (*fn)(void *arg, int rc, const char *cause), void *arg)
{
    b->fn = fn;
    b->arg = arg;
    if (acme_work_queue(acme, &b->work, batch_run, batch_done, b) != 0) {
        acme_batch_free(b);
        return -E_INTERNAL;
    }
    return 0;
}

char *
acme_file_path(const struct acme *acme, const char *sub, const char *name, const char *ext)
{
    return acme_path(acme, sub, name, ext);
}

/* CAs added and removed by certctl. */

/* Adds the write of cas.json, as the registry is now, to b. */
static int
cas_save(struct acme *acme, struct file_batch *b)
{
    cJSON *root = cJSON_CreateObject();
    char *text = NULL;
    int rc = -E_NOMEM;

    if (root == NULL)
        goto out;
    for (struct acme_ca *ca = acme->cas; ca != NULL; ca = ca->next) {
        cJSON *o;

        if (ca->builtin || ca->from_config)
            continue;
        if ((o = cJSON_AddObjectToObject(root, ca->name)) == NULL ||
            cJSON_AddStringToObject(o, "directory", ca->directory) == NULL ||
            (ca->trust != NULL && cJSON_AddStringToObject(o, "trust", ca->trust) == NULL))
            goto out;
    }
    if ((text = cJSON_Print(root)) == NULL)
        goto out;
    rc = acme_batch_add(b, fsutil_join(acme->dir, "cas.json"), text, strlen(text), 0600);
out:
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* A CA added or removed: the registry changed on the loop, the files are written in the
 * pool (cas.json last, the commit point), then, for an addition, the account kept under
 * the CA's name (by an earlier ca remove) is read in the pool, then the client hears the
 * outcome. */
struct ca_change {
    struct acme *acme;
    struct acme_observer obs;
    char *name;
    char *directory; /* NULL for a removal */
    int trust;
    struct acme_work work;
    struct acme_account *account; /* read after an addition */
};

static void
ca_reply(struct ca_change *ch, int rc, const char *cause)
{
    struct acme_ca *ca = acme_ca_find(ch->acme, ch->name);
    cJSON *res = NULL;
    char *words = NULL;

    if (rc == 0 && (res = cJSON_CreateObject()) != NULL) {
        cJSON_AddStringToObject(res, "name", ch->name);
        if (ch->directory != NULL) {
            cJSON_AddStringToObject(res, "directory", ch->directory);
            cJSON_AddBoolToObject(res, "trust", ch->trust);
            if (ca != NULL && ca->account != NULL)
                cJSON_AddStringToObject(res, "account", ca->account->url);
            else
                cJSON_AddNullToObject(res, "account");
            log_info("ACME CA '%s' added: %s%s", ch->name, ch->directory,
                     ch->trust ? " (with its own trust file)" : "");
        } else {
            log_info("ACME CA '%s' removed (its account files are kept under %s/accounts; "
                     "certctl ca add %s finds them again)",
                     ch->name, ch->acme->dir, ch->name);
        }
    } else if (rc != 0) {
        err_set(&words,
                "CA '%s' is %s until the agent restarts, but the change could not be "
                "saved: %s",
                ch->name, ch->directory != NULL ? "added" : "removed",
                cause != NULL ? cause : err_message(rc));
        log_error("%s", words != NULL ? words : "cannot save cas.json");
    }
    /* Certificates that renew with this CA warn, or stop warning, in the report at once. */
    events_publish_name(ch->acme->env->events, EVENT_STATUS_STALE, NULL);
    ch->obs.done(ch->obs.arg, rc, words, NULL, res);
    cJSON_Delete(res);
    free(words);
    account_free(ch->account);
    free(ch->name);
    free(ch->directory);
    free(ch);
}

static void
ca_account_run(struct acme_work *w)
{
    struct ca_change *ch = w->arg;

    w->rc = account_read(ch->acme, ch->name, &ch->account, &w->cause);
}

static void
ca_account_done(struct acme_work *w)
{
    struct ca_change *ch = w->arg;
    struct acme_ca *ca = acme_ca_find(ch->acme, ch->name);

    if (w->rc != 0 && w->rc != -E_UNAVAILABLE) {
        log_error("ACME CA '%s' added, but its account kept from before cannot be read (%s); "
                  "certctl account register --ca %s --agree-tos makes a new one",
                  ch->name, w->cause != NULL ? w->cause : err_message(w->rc), ch->name);
    } else if (ch->account != NULL && ch->account->directory != NULL &&
               strcmp(ch->account->directory, ch->directory) != 0) {
        /* The name was given to another CA: that account means nothing there. */
        log_warn("ACME CA '%s' added, but the account kept under its name belongs to %s, "
                 "not %s, and is not used; certctl account register --ca %s --agree-tos "
                 "makes one (and replaces the files)",
                 ch->name, ch->account->directory, ch->directory, ch->name);
    } else if (ch->account != NULL && ca != NULL && ca->account == NULL && !ca->account_busy) {
        log_info("ACME CA '%s' uses its account kept from before: %s", ch->name, ch->account->url);
        ca->account = ch->account;
        ch->account = NULL;
    }
    free(w->cause);
    w->cause = NULL;
    ca_reply(ch, 0, NULL);
}

static void
ca_saved(void *arg, int rc, const char *cause)
{
    struct ca_change *ch = arg;

    ch->acme->cas_saving = 0;
    if (rc == 0 && ch->directory != NULL &&
        acme_work_queue(ch->acme, &ch->work, ca_account_run, ca_account_done, ch) == 0)
        return;
    ca_reply(ch, rc, cause);
}

/*
 * Queues b and answers obs once it is written; with append_cas, the write of
 * cas.json goes last (an addition: the trust file exists before cas.json
 * names it).  Takes b.
 */
static int
ca_commit(struct acme *acme, struct file_batch *b, int append_cas, const char *name,
          const char *directory, int trust, const struct acme_observer *obs)
{
    struct ca_change *ch = calloc(1, sizeof(*ch));
    int rc;

    if (ch == NULL || (ch->name = strdup(name)) == NULL ||
        (directory != NULL && (ch->directory = strdup(directory)) == NULL)) {
        if (ch != NULL)
            free(ch->name);
        free(ch);
        acme_batch_free(b);
        return -E_NOMEM;
    }
    ch->acme = acme;
    ch->obs = *obs;
    ch->trust = trust;
    if (append_cas && (rc = cas_save(acme, b)) != 0) {
        acme_batch_free(b);
        b = NULL;
    } else {
        rc = acme_batch_run(acme, b, ca_saved, ch); /* frees b when it fails */
    }
    if (rc != 0) {
        free(ch->name);
        free(ch->directory);
        free(ch);
        return rc;
    }
    acme->cas_saving = 1;
    return 0;
}

int
acme_ca_add(struct acme *acme, const char *name, const char *directory, const char *trust_pem,
            const struct acme_observer *obs, char **cause)
{
    struct acme_ca *ca;
    STACK_OF(X509) *certs = NULL;
    struct file_batch *b = NULL;
    char *tpath = NULL;
    int rc;

    if ((rc = store_name_valid(name, cause)) != 0)
        return rc;
    if (strncmp(directory, "https://", 8) != 0 && strncmp(directory, "http://", 7) != 0) {
        err_set(cause, "the directory must be an https:// URL, not '%s'", directory);
        return -E_BAD_INPUT;
    }
    if ((ca = acme_ca_find(acme, name)) != NULL &&
        (!ca->builtin || ca->account != NULL || ca->from_config)) {
        err_set(cause, "a CA named '%s' exists already (%s); remove it first", name,
                ca->directory);
        return -E_EXISTS;
    }
    if (acme->cas_saving) {
        err_set(cause, "another change of the CA list is being saved; try again");
        return -E_BUSY;
    }
    if ((b = acme_batch_new()) == NULL)
        return -E_NOMEM;
    if (trust_pem != NULL) {
        if ((rc = pem_read_certs((const unsigned char *)trust_pem, strlen(trust_pem), "trust file",
                                 &certs, cause)) != 0)
            goto fail;
        sk_X509_pop_free(certs, X509_free);
        rc = -E_NOMEM;
        if ((tpath = acme_path(acme, "trust", name, ".pem")) == NULL ||
            acme_batch_add(b, strdup(tpath), trust_pem, strlen(trust_pem), 0644) != 0)
            goto fail;
    }
    if (ca != NULL) {
        /* A built-in name given another directory. */
        free(ca->directory);
        free(ca->trust);
        ca->directory = strdup(directory);
        ca->trust = tpath;
        tpath = NULL;
        ca->builtin = 0;
        cJSON_Delete(ca->dir);
        ca->dir = NULL;
    } else if (ca_new(acme, name, directory, tpath, 0) == NULL) {
        rc = -E_NOMEM;
        goto fail;
    }
    free(tpath);
    return ca_commit(acme, b, 1, name, directory, trust_pem != NULL, obs);
fail:
    free(tpath);
    acme_batch_free(b);
    return rc;
}

int
acme_ca_removable(struct acme *acme, const char *name, char **cause)
{
    struct acme_ca *ca = acme_ca_find(acme, name);

    if (ca == NULL) {
        err_set(cause, "no CA named '%s' (see certctl ca list)", name);
        return -E_NOT_FOUND;
    }
    if (ca->builtin) {
        err_set(cause, "'%s' is built in and cannot be removed", name);
        return -E_BAD_INPUT;
    }
    if (ca->from_config) {
        err_set(cause, "'%s' is declared in the config (acme_cas); remove it there", name);
        return -E_BAD_INPUT;
    }
    return 0;
}

int
acme_ca_remove(struct acme *acme, const char *name, const struct acme_observer *obs, char **cause)
{
    struct acme_ca **pp, *ca;
    struct file_batch *b;
    int rc;

    if ((rc = acme_ca_removable(acme, name, cause)) != 0)
        return rc;
    for (pp = &acme->cas; *pp != NULL && strcmp((*pp)->name, name) != 0; pp = &(*pp)->next)
        ;
    ca = *pp;
    if (ca->account_busy || ca->dir_fetching || acme->cas_saving) {
        err_set(cause, "CA '%s' is in use; try again when its work is done", name);
        return -E_BUSY;
    }
    if ((b = acme_batch_new()) == NULL)
        return -E_NOMEM;
    *pp = ca->next;
    ca_free(ca);
    /* cas.json first (the commit point), then the trust file. */
    if (cas_save(acme, b) != 0 ||
        acme_batch_add(b, acme_path(acme, "trust", name, ".pem"), NULL, 0, 0) != 0) {
        acme_batch_free(b);
        return -E_NOMEM;
    }
    return ca_commit(acme, b, 0, name, NULL, 0, obs);
}

cJSON *
acme_ca_list(const struct acme *acme)
{
    cJSON *arr = cJSON_CreateArray();

    for (const struct acme_ca *ca = acme->cas; arr != NULL && ca != NULL; ca = ca->next) {
        cJSON *o = cJSON_CreateObject();

        if (o == NULL)
            break;
        cJSON_AddStringToObject(o, "name", ca->name);
        cJSON_AddStringToObject(o, "directory", ca->directory);
        cJSON_AddBoolToObject(o, "builtin", ca->builtin);
        cJSON_AddBoolToObject(o, "config", ca->from_config);
        cJSON_AddBoolToObject(o, "trust", ca->trust != NULL);
        if (ca->account != NULL)
            cJSON_AddStringToObject(o, "account", ca->account->url);
        else
            cJSON_AddNullToObject(o, "account");
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* Accounts. */

struct reg {
    struct acme *acme;
    struct acme_ca *ca;
    struct acme_observer obs; /* from certctl; done may be NULL */
    char *email;
    char *eab_kid;
    unsigned char *eab_key;
    size_t eab_len;
    enum key_type key_type;
    struct key *key;
    char *key_pem;
    size_t key_pem_len;
    char *url;
    cJSON *result;
    struct acme_work work;
    int rollover;
};

static void
reg_free(struct reg *r)
{
    free(r->email);
    free(r->eab_kid);
    if (r->eab_key != NULL)
        keys_free_secret(r->eab_key, r->eab_len);
    keys_free(r->key);
    if (r->key_pem != NULL)
        keys_free_secret(r->key_pem, r->key_pem_len);
    free(r->url);
    cJSON_Delete(r->result);
    free(r->work.cause);
    free(r);
}

static void
account_notify(struct acme_ca *ca, int rc, const char *cause, const char *detail)
{
    ca->account_busy = 0;
    waiters_notify(&ca->account_waiters, rc, cause, detail);
}

static void
reg_end(struct reg *r, int rc, const char *cause, const char *detail)
{
    if (rc != 0)
        log_warn("ACME account at CA '%s': %s", r->ca->name, cause != NULL ? cause : "failed");
    if (r->obs.done != NULL)
        r->obs.done(r->obs.arg, rc, cause, detail, r->result);
    account_notify(r->ca, rc, cause, detail);
    reg_free(r);
}

static void
reg_progress(struct reg *r, const char *msg)
{
    if (r->obs.progress != NULL)
        r->obs.progress(r->obs.arg, msg, 0, 0);
}

/* Saves the account (key first, then the JSON that points at it). */
static void
reg_saved(void *arg, int rc, const char *cause)
{
    struct reg *r = arg;
    struct acme_account *a;

    if (rc != 0) {
        reg_end(r, rc, cause, NULL);
        return;
    }
    if (r->rollover) {
        a = r->ca->account;
        keys_free(a->key);
        a->key = r->key;
        r->key = NULL;
        free(a->key_type);
        a->key_type = strdup(keys_type_name(r->key_type));
        log_info("ACME account at CA '%s' now uses a new %s key", r->ca->name,
                 keys_type_name(r->key_type));
    } else {
        if ((a = calloc(1, sizeof(*a))) == NULL) {
            reg_end(r, -E_NOMEM, "out of memory", NULL);
            return;
        }
        a->url = r->url;
        r->url = NULL;
        a->email = r->email != NULL ? strdup(r->email) : NULL;
        a->key_type = strdup(keys_type_name(r->key_type));
        a->created = (int64_t)time(NULL);
        a->key = r->key;
        r->key = NULL;
        account_free(r->ca->account);
        r->ca->account = a;
        log_info("ACME account registered at CA '%s': %s", r->ca->name, a->url);
    }
    reg_end(r, 0, NULL, NULL);
}

static int
reg_save(struct reg *r, const char *url)
{
    struct acme *acme = r->acme;
    struct file_batch *b = acme_batch_new();
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    int rc = -E_NOMEM;

    if (b == NULL || o == NULL)
        goto out;
    cJSON_AddStringToObject(o, "url", url);
    if (r->email != NULL)
        cJSON_AddStringToObject(o, "email", r->email);
    cJSON_AddStringToObject(o, "key_type", keys_type_name(r->key_type));
    cJSON_AddNumberToObject(o, "created", (double)time(NULL));
    cJSON_AddStringToObject(o, "ca", r->ca->name);
    cJSON_AddStringToObject(o, "directory", r->ca->directory);
    if ((text = cJSON_Print(o)) == NULL)
        goto out;
    if ((rc = acme_batch_add(b, acme_path(acme, "accounts", r->ca->name, ".key"), r->key_pem,
                             r->key_pem_len, 0600)) != 0 ||
        (rc = acme_batch_add(b, acme_path(acme, "accounts", r->ca->name, ".json"), text,
                             strlen(text), 0600)) != 0)
        goto out;
    rc = acme_batch_run(acme, b, reg_saved, r);
    b = NULL;
out:
    if (b != NULL)
        acme_batch_free(b);
    cJSON_Delete(o);
    free(text);
    return rc;
}

static void
reg_reply(void *arg, int rc, const char *cause, const char *detail,
          struct acme_http_response *resp, cJSON *json)
{
    struct reg *r = arg;
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(json, "status");

    if (rc != 0) {
        reg_end(r, rc, cause, detail);
        return;
    }
    if (resp->location == NULL) {
        reg_end(r, -E_ACME, "the CA created the account but sent no Location (account URL)", NULL);
        return;
    }
    if ((r->url = strdup(resp->location)) == NULL || (r->result = cJSON_CreateObject()) == NULL) {
        reg_end(r, -E_NOMEM, "out of memory", NULL);
        return;
    }
    cJSON_AddStringToObject(r->result, "ca", r->ca->name);
    cJSON_AddStringToObject(r->result, "url", r->url);
    cJSON_AddStringToObject(r->result, "status",
                            cJSON_IsString(status) ? status->valuestring : "valid");
    cJSON_AddStringToObject(r->result, "key", keys_type_name(r->key_type));
    if (r->email != NULL)
        cJSON_AddStringToObject(r->result, "email", r->email);
    reg_progress(r, "account created; saving it");
    if ((rc = reg_save(r, r->url)) != 0)
        reg_end(r, rc, "cannot save the account", NULL);
}

/* The EAB inner JWS (RFC 8555 section 7.3.4): HS256 over the account's JWK. */
static int
eab_jws(struct reg *r, const char *url, cJSON **out, char **cause)
{
    char *jwk = NULL, *prot = NULL, *p64 = NULL, *b64 = NULL, *input = NULL, *sig64 = NULL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    cJSON *o = NULL;
    size_t n;
    int rc;

    *out = NULL;
    if ((rc = keys_jwk(r->key, &jwk, cause)) != 0)
        return rc;
    rc = -E_NOMEM;
    n = strlen(r->eab_kid) + strlen(url) + 64;
    if ((prot = malloc(n)) == NULL)
        goto out;
    if ((o = cJSON_CreateObject()) == NULL || cJSON_AddStringToObject(o, "alg", "HS256") == NULL ||
        cJSON_AddStringToObject(o, "kid", r->eab_kid) == NULL ||
        cJSON_AddStringToObject(o, "url", url) == NULL)
        goto out;
    free(prot);
    if ((prot = cJSON_PrintUnformatted(o)) == NULL)
        goto out;
    cJSON_Delete(o);
    o = NULL;
    if ((p64 = b64url_encode(prot, strlen(prot))) == NULL ||
        (b64 = b64url_encode(jwk, strlen(jwk))) == NULL)
        goto out;
    n = strlen(p64) + strlen(b64) + 2;
    if ((input = malloc(n)) == NULL)
        goto out;
    snprintf(input, n, "%s.%s", p64, b64);
    if (HMAC(EVP_sha256(), r->eab_key, (int)r->eab_len, (const unsigned char *)input,
             strlen(input), mac, &maclen) == NULL) {
        err_set(cause, "cannot compute the External Account Binding MAC");
        rc = -E_CRYPTO;
        goto out;
    }
    if ((sig64 = b64url_encode(mac, maclen)) == NULL || (o = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(o, "protected", p64) == NULL ||
        cJSON_AddStringToObject(o, "payload", b64) == NULL ||
        cJSON_AddStringToObject(o, "signature", sig64) == NULL)
        goto out;
    *out = o;
    o = NULL;
    rc = 0;
out:
    OPENSSL_cleanse(mac, sizeof(mac));
    cJSON_Delete(o);
    free(jwk);
    free(prot);
    free(p64);
    free(b64);
    free(input);
    free(sig64);
    return rc;
}

static void
reg_send(struct reg *r)
{
    struct acme_call_args args;
    const char *url = acme_ca_url(r->ca, "newAccount");
    cJSON *payload = cJSON_CreateObject(), *eab = NULL, *contact;
    char *text = NULL, *cause = NULL, mailto[320];
    int rc = -E_NOMEM;

    if (url == NULL) {
        err_set(&cause, "the CA's directory has no newAccount");
        rc = -E_ACME;
        goto out;
    }
    if (payload == NULL || cJSON_AddTrueToObject(payload, "termsOfServiceAgreed") == NULL)
        goto out;
    if (r->email != NULL) {
        snprintf(mailto, sizeof(mailto), "mailto:%s", r->email);
        if ((contact = cJSON_AddArrayToObject(payload, "contact")) == NULL)
            goto out;
        cJSON_AddItemToArray(contact, cJSON_CreateString(mailto));
    }
    if (r->eab_kid != NULL) {
        if ((rc = eab_jws(r, url, &eab, &cause)) != 0)
            goto out;
        cJSON_AddItemToObject(payload, "externalAccountBinding", eab);
        rc = -E_NOMEM;
    }
    if ((text = cJSON_PrintUnformatted(payload)) == NULL)
        goto out;
    memset(&args, 0, sizeof(args));
    args.url = url;
    args.payload = text;
    args.key = r->key;
    reg_progress(r, "registering the account");
    rc = acme_call(r->acme, r->ca, &args, reg_reply, r, &cause);
out:
    cJSON_Delete(payload);
    free(text);
    if (rc != 0) {
        reg_end(r, rc, cause != NULL ? cause : err_message(rc), NULL);
    }
    free(cause);
}

static void
reg_keygen_run(struct acme_work *w)
{
    struct reg *r = w->arg;

    if ((w->rc = keys_generate(r->key_type, &r->key, &w->cause)) == 0)
        w->rc = keys_to_pem(r->key, &r->key_pem, &r->key_pem_len, &w->cause);
}

static void rollover_send(struct reg *r);

static void
reg_keygen_done(struct acme_work *w)
{
    struct reg *r = w->arg;

    if (w->rc != 0) {
        reg_end(r, w->rc, w->cause, NULL);
        return;
    }
    if (r->rollover)
        rollover_send(r);
    else
        reg_send(r);
}

static void
reg_dir_ready(void *arg, int rc, const char *cause, const char *detail)
{
    struct reg *r = arg;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(r->ca->dir, "meta");
    const cJSON *tos = cJSON_GetObjectItemCaseSensitive(meta, "termsOfService");
    const cJSON *eab = cJSON_GetObjectItemCaseSensitive(meta, "externalAccountRequired");
    char *words = NULL;

    if (rc != 0) {
        reg_end(r, rc, cause, detail);
        return;
    }
    if (!r->rollover && cJSON_IsTrue(eab) && r->eab_kid == NULL) {
        err_set(&words,
                "CA '%s' requires External Account Binding: give --eab-kid and "
                "--eab-hmac-file (from the CA's account page)",
                r->ca->name);
        reg_end(r, -E_BAD_INPUT, words, NULL);
        free(words);
        return;
    }
    (void)tos;
    if (acme_work_queue(r->acme, &r->work, reg_keygen_run, reg_keygen_done, r) != 0)
        reg_end(r, -E_INTERNAL, "cannot queue key generation", NULL);
}

static int
reg_start(struct acme *acme, struct acme_ca *ca, const struct acme_account_args *args,
          const struct acme_observer *obs, int agree_tos, int rollover, char **cause)
{
    struct reg *r;
    const char *kt = args != NULL && args->key_type != NULL ? args->key_type : "ec256";
    enum key_type type;
    int rc;

    if ((rc = keys_type_parse(kt, &type, cause)) != 0)
        return rc;
    if (type == KEY_ED25519) {
        err_set(cause, "ACME account keys are ec256 (ES256), ec384 (ES384) or rsa2048.. (RS256)");
        return -E_BAD_INPUT;
    }
    if (!agree_tos) {
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(ca->dir, "meta");
        const cJSON *tos = cJSON_GetObjectItemCaseSensitive(meta, "termsOfService");

        /* The words reach renew, the renewal_failing warning and hooks' CERTAGENT_ERROR
         * too, where no --agree-tos option exists: name the command that registers. */
        if (cJSON_IsString(tos))
            err_set(cause,
                    "CA '%s' has no account yet; read its terms of service at %s, agree to "
                    "them with 'certctl account register --ca %s --agree-tos', then try again",
                    ca->name, tos->valuestring, ca->name);
        else
            err_set(cause,
                    "CA '%s' has no account yet; agree to its terms of service with "
                    "'certctl account register --ca %s --agree-tos', then try again",
                    ca->name, ca->name);
        return -E_BAD_INPUT;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return -E_NOMEM;
    r->acme = acme;
    r->ca = ca;
    r->key_type = type;
    r->rollover = rollover;
    if (obs != NULL)
        r->obs = *obs;
    if (args != NULL) {
        if ((args->email != NULL && (r->email = strdup(args->email)) == NULL) ||
            (args->eab_kid != NULL && (r->eab_kid = strdup(args->eab_kid)) == NULL)) {
            reg_free(r);
            return -E_NOMEM;
        }
        if (args->eab_kid != NULL) {
            if (args->eab_hmac == NULL ||
                b64url_decode(args->eab_hmac, &r->eab_key, &r->eab_len) != 0 || r->eab_len == 0) {
                reg_free(r);
                err_set(cause, "the EAB HMAC key must be base64url text (as the CA shows it)");
                return -E_BAD_INPUT;
            }
        }
    }
    ca->account_busy = 1;
    acme_ca_directory(acme, ca, reg_dir_ready, r);
    return 0;
}

int
acme_account_register(struct acme *acme, const struct acme_account_args *args,
                      const struct acme_observer *obs, char **cause)
{
    struct acme_ca *ca = acme_ca_find(acme, args->ca);

    if (ca == NULL) {
        err_set(cause, "no CA named '%s' (see certctl ca list)", args->ca);
        return -E_NOT_FOUND;
    }
    if (ca->account_busy) {
        err_set(cause, "an account change at CA '%s' is in progress", ca->name);
        return -E_BUSY;
    }
    if (ca->account != NULL) {
        err_set(cause, "CA '%s' has an account already: %s", ca->name, ca->account->url);
        return -E_EXISTS;
    }
    if (!args->agree_tos) {
        err_set(cause,
                "registering needs --agree-tos: the CA's terms of service must be agreed "
                "explicitly (certctl account register --ca %s --agree-tos)",
                ca->name);
        return -E_BAD_INPUT;
    }
    return reg_start(acme, ca, args, obs, 1, 0, cause);
}

void
acme_ca_account(struct acme *acme, struct acme_ca *ca, int agree_tos, const char *email,
                void (*fn)(void *arg, int rc, const char *cause, const char *detail), void *arg)
{
    struct acme_waiter *w;
    struct acme_account_args args;
    char *cause = NULL;
    int rc;

    if (ca->account != NULL && !ca->account_busy) {
        fn(arg, 0, NULL, NULL);
        return;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL) {
        fn(arg, -E_NOMEM, "out of memory", NULL);
        return;
    }
    w->fn = fn;
    w->arg = arg;
    if (ca->account_busy) {
        w->next = ca->account_waiters;
        ca->account_waiters = w;
        return;
    }
    memset(&args, 0, sizeof(args));
    args.ca = ca->name;
    args.email = email;
    {
        /* A CA declared with "auto_register": true registers on first use (a fallback CA,
         * docs/resilience.md), with the config's e-mail and EAB credentials. */
        const struct config_cas *cc = &acme->env->config->acme_cas;

        for (size_t i = 0; i < cc->n; i++) {
            if (strcmp(cc->items[i].name, ca->name) != 0 || !cc->items[i].auto_register)
                continue;
            agree_tos = 1;
            if (args.email == NULL)
                args.email = cc->items[i].email;
            args.eab_kid = cc->items[i].eab_kid;
            args.eab_hmac = cc->items[i].eab_hmac;
        }
    }
    /* Wait first: the registration may end before reg_start returns (cached directory). */
    w->next = ca->account_waiters;
    ca->account_waiters = w;
    if ((rc = reg_start(acme, ca, &args, NULL, agree_tos, 0, &cause)) != 0) {
        ca->account_waiters = w->next;
        free(w);
        fn(arg, rc, cause, NULL);
        free(cause);
    }
}

/* show, deactivate, rollover: signed calls to the account URL. */

struct acct_op {
    struct acme *acme;
    struct acme_ca *ca;
    struct acme_observer obs;
    const char *what;
};

static void
acct_show_reply(void *arg, int rc, const char *cause, const char *detail,
                struct acme_http_response *resp, cJSON *json)
{
    struct acct_op *op = arg;
    cJSON *res = NULL;

    (void)resp;
    if (rc == 0) {
        res = json != NULL ? cJSON_Duplicate(json, 1) : cJSON_CreateObject();
        if (res != NULL) {
            /* The CA's "key" is the JWK; ours is the key type. */
            cJSON_DeleteItemFromObjectCaseSensitive(res, "key");
            cJSON_AddStringToObject(res, "ca", op->ca->name);
            cJSON_AddStringToObject(res, "url", op->ca->account->url);
            cJSON_AddStringToObject(
                res, "key", op->ca->account->key_type != NULL ? op->ca->account->key_type : "");
            cJSON_AddNumberToObject(res, "created", (double)op->ca->account->created);
        }
        if (strcmp(op->what, "deactivate") == 0) {
            char *j = acme_path(op->acme, "accounts", op->ca->name, ".json");
            char *k = acme_path(op->acme, "accounts", op->ca->name, ".key");
            struct file_batch *b = acme_batch_new();

            log_info("ACME account at CA '%s' deactivated: %s", op->ca->name,
                     op->ca->account->url);
            /* The CA will never accept this account again: forget it. */
            if (b != NULL && acme_batch_add(b, j, NULL, 0, 0) == 0 &&
                acme_batch_add(b, k, NULL, 0, 0) == 0)
                acme_batch_run(op->acme, b, NULL, NULL);
            else if (b != NULL)
                acme_batch_free(b);
            account_free(op->ca->account);
            op->ca->account = NULL;
        }
    }
    op->ca->account_busy = 0;
    op->obs.done(op->obs.arg, rc, cause, detail, res);
    cJSON_Delete(res);
    free(op);
}

static int
acct_op_start(struct acme *acme, const char *caname, const struct acme_observer *obs,
              const char *what, const char *payload, char **cause)
{
    struct acme_ca *ca = acme_ca_find(acme, caname);
    struct acme_call_args args;
    struct acct_op *op;
    int rc;

    if (ca == NULL) {
        err_set(cause, "no CA named '%s'", caname);
        return -E_NOT_FOUND;
    }
    if (ca->account == NULL) {
        err_set(cause, "CA '%s' has no account (certctl account register --ca %s --agree-tos)",
                caname, caname);
        return -E_NOT_FOUND;
    }
    if (ca->account_busy) {
        err_set(cause, "an account change at CA '%s' is in progress", caname);
        return -E_BUSY;
    }
    if ((op = calloc(1, sizeof(*op))) == NULL)
        return -E_NOMEM;
    op->acme = acme;
    op->ca = ca;
    op->obs = *obs;
    op->what = what;
    memset(&args, 0, sizeof(args));
    args.url = ca->account->url;
    args.payload = payload;
    args.key = ca->account->key;
    args.kid = ca->account->url;
    ca->account_busy = 1;
    if ((rc = acme_call(acme, ca, &args, acct_show_reply, op, cause)) != 0) {
        ca->account_busy = 0;
        free(op);
    }
    return rc;
}

struct acct_dir {
    struct acme *acme;
    char *ca;
    struct acme_observer obs;
    const char *what;
    const char *payload;
};

static void
acct_dir_ready(void *arg, int rc, const char *cause, const char *detail)
{
    struct acct_dir *d = arg;
    char *why = NULL;

    if (rc == 0)
        rc = acct_op_start(d->acme, d->ca, &d->obs, d->what, d->payload, &why);
    if (rc != 0)
        d->obs.done(d->obs.arg, rc, why != NULL ? why : cause, why != NULL ? NULL : detail, NULL);
    free(why);
    free(d->ca);
    free(d);
}

static int
acct_with_dir(struct acme *acme, const char *caname, const struct acme_observer *obs,
              const char *what, const char *payload, char **cause)
{
    struct acme_ca *ca = acme_ca_find(acme, caname);
    struct acct_dir *d;

    if (ca == NULL) {
        err_set(cause, "no CA named '%s'", caname);
        return -E_NOT_FOUND;
    }
    if (ca->account == NULL) {
        err_set(cause, "CA '%s' has no account (certctl account register --ca %s --agree-tos)",
                caname, caname);
        return -E_NOT_FOUND;
    }
    if ((d = calloc(1, sizeof(*d))) == NULL || (d->ca = strdup(caname)) == NULL) {
        free(d);
        return -E_NOMEM;
    }
    d->acme = acme;
    d->obs = *obs;
    d->what = what;
    d->payload = payload;
    acme_ca_directory(acme, ca, acct_dir_ready, d);
    return 0;
}

int
acme_account_show(struct acme *acme, const char *ca, const struct acme_observer *obs, char **cause)
{
    return acct_with_dir(acme, ca, obs, "show", "", cause);
}

int
acme_account_deactivate(struct acme *acme, const char *ca, const struct acme_observer *obs,
                        char **cause)
{
    return acct_with_dir(acme, ca, obs, "deactivate", "{\"status\":\"deactivated\"}", cause);
}

/* Key rollover (RFC 8555 section 7.3.5). */

static void
rollover_reply(void *arg, int rc, const char *cause, const char *detail,
               struct acme_http_response *resp, cJSON *json)
{
    struct reg *r = arg;

    (void)resp;
    (void)json;
    if (rc != 0) {
        reg_end(r, rc, cause, detail);
        return;
    }
    if ((r->result = cJSON_CreateObject()) != NULL) {
        cJSON_AddStringToObject(r->result, "ca", r->ca->name);
        cJSON_AddStringToObject(r->result, "url", r->ca->account->url);
        cJSON_AddStringToObject(r->result, "key", keys_type_name(r->key_type));
    }
    reg_progress(r, "the CA accepted the new key; saving it");
    if ((rc = reg_save(r, r->ca->account->url)) != 0)
        reg_end(r, rc, "cannot save the new account key", NULL);
}

static void
rollover_send(struct reg *r)
{
    struct acme_account *a = r->ca->account;
    const char *url = acme_ca_url(r->ca, "keyChange");
    char *old_jwk = NULL, *payload = NULL, *inner = NULL, *cause = NULL;
    cJSON *o = NULL;
    struct acme_call_args args;
    int rc = -E_NOMEM;

    if (url == NULL) {
        reg_end(r, -E_ACME, "the CA's directory has no keyChange", NULL);
        return;
    }
    if ((rc = keys_jwk(a->key, &old_jwk, &cause)) != 0)
        goto out;
    rc = -E_NOMEM;
    if ((o = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(o, "account", a->url) == NULL)
        goto out;
    cJSON_AddItemToObject(o, "oldKey", cJSON_Parse(old_jwk));
    if ((payload = cJSON_PrintUnformatted(o)) == NULL)
        goto out;
    /* Inner JWS: signed by the new key, with its JWK and no nonce. */
    if ((rc = jws_build(r->key, NULL, NULL, url, payload, &inner, &cause)) != 0)
        goto out;
    memset(&args, 0, sizeof(args));
    args.url = url;
    args.payload = inner;
    args.key = a->key;
    args.kid = a->url;
    reg_progress(r, "asking the CA to change the account key");
    rc = acme_call(r->acme, r->ca, &args, rollover_reply, r, &cause);
out:
    cJSON_Delete(o);
    free(old_jwk);
    free(payload);
    free(inner);
    if (rc != 0)
        reg_end(r, rc, cause != NULL ? cause : err_message(rc), NULL);
    free(cause);
}

int
acme_account_rollover(struct acme *acme, const char *caname, const char *key_type,
                      const struct acme_observer *obs, char **cause)
{
    struct acme_ca *ca = acme_ca_find(acme, caname);
    struct acme_account_args args;

    if (ca == NULL) {
        err_set(cause, "no CA named '%s'", caname);
        return -E_NOT_FOUND;
    }
    if (ca->account == NULL) {
        err_set(cause, "CA '%s' has no account", caname);
        return -E_NOT_FOUND;
    }
    if (ca->account_busy) {
        err_set(cause, "an account change at CA '%s' is in progress", caname);
        return -E_BUSY;
    }
    memset(&args, 0, sizeof(args));
    args.ca = caname;
    args.key_type = key_type != NULL
                        ? key_type
                        : (ca->account->key_type != NULL ? ca->account->key_type : "ec256");
    args.email = ca->account->email;
    return reg_start(acme, ca, &args, obs, 1, 1, cause);
}

/* Revocation (RFC 8555 section 7.6). */

static const struct {
    const char *name;
    int code;
} revoke_reasons[] = {
    {"unspecified", 0}, {"keyCompromise", 1},        {"affiliationChanged", 3},
    {"superseded", 4},  {"cessationOfOperation", 5}, {"privilegeWithdrawn", 9},
};

struct revoke {
    struct acme *acme;
    struct acme_ca *ca;
    struct acme_observer obs;
    char *name;
    unsigned version;
    int reason;
    char *serial;
    char *der64;     /* the certificate, base64url DER */
    struct key *key; /* the certificate's key, when there is no account */
    struct acme_work work;
};

static void
revoke_free(struct revoke *r)
{
    free(r->name);
    free(r->serial);
    free(r->der64);
    keys_free(r->key);
    free(r->work.cause);
    free(r);
}

static void
revoke_reply(void *arg, int rc, const char *cause, const char *detail,
             struct acme_http_response *resp, cJSON *json)
{
    struct revoke *r = arg;
    cJSON *res = NULL;

    (void)resp;
    (void)json;
    if (rc == 0 && (res = cJSON_CreateObject()) != NULL) {
        cJSON_AddStringToObject(res, "name", r->name);
        cJSON_AddNumberToObject(res, "version", r->version);
        cJSON_AddStringToObject(res, "serial", r->serial);
        cJSON_AddStringToObject(res, "ca", r->ca->name);
        cJSON_AddStringToObject(res, "reason", revoke_reasons[0].name);
        for (size_t i = 0; i < sizeof(revoke_reasons) / sizeof(revoke_reasons[0]); i++) {
            if (revoke_reasons[i].code == r->reason)
                cJSON_ReplaceItemInObject(res, "reason",
                                          cJSON_CreateString(revoke_reasons[i].name));
        }
        cJSON_AddStringToObject(res, "signed_by",
                                r->key != NULL ? "certificate key" : "account key");
        log_info("revoked version %u of '%s' (serial %s) at CA '%s'", r->version, r->name,
                 r->serial, r->ca->name);
    }
    r->obs.done(r->obs.arg, rc, cause, detail, res);
    cJSON_Delete(res);
    revoke_free(r);
}

static void
revoke_send(void *arg, int rc, const char *cause, const char *detail)
{
    struct revoke *r = arg;
    struct acme_call_args args;
    const char *url;
    char *payload = NULL, *why = NULL;

    if (rc != 0) {
        r->obs.done(r->obs.arg, rc, cause, detail, NULL);
        revoke_free(r);
        return;
    }
    if ((url = acme_ca_url(r->ca, "revokeCert")) == NULL) {
        r->obs.done(r->obs.arg, -E_ACME, "the CA's directory has no revokeCert", NULL, NULL);
        revoke_free(r);
        return;
    }
    err_set(&payload, "{\"certificate\":\"%s\",\"reason\":%d}", r->der64, r->reason);
    memset(&args, 0, sizeof(args));
    args.url = url;
    args.payload = payload != NULL ? payload : "";
    if (r->ca->account != NULL) {
        args.key = r->ca->account->key;
        args.kid = r->ca->account->url;
        keys_free(r->key);
        r->key = NULL;
    } else {
        args.key = r->key;
    }
    if (payload == NULL || (rc = acme_call(r->acme, r->ca, &args, revoke_reply, r, &why)) != 0) {
        r->obs.done(r->obs.arg, payload == NULL ? -E_NOMEM : rc,
                    why != NULL ? why : "cannot send the revocation", NULL, NULL);
        revoke_free(r);
    }
    free(payload);
    free(why);
}

static void
revoke_read_run(struct acme_work *w)
{
    struct revoke *r = w->arg;
    struct store *store = r->acme->store;
    unsigned char *pem = NULL, *kpem = NULL, *der = NULL;
    size_t len = 0, klen = 0;
    STACK_OF(X509) *certs = NULL;
    int n;

    if ((w->rc = store_read_file(store, r->name, r->version, "cert.pem", &pem, &len, &w->cause)) !=
        0)
        goto out;
    if ((w->rc = pem_read_certs(pem, len, "certificate", &certs, &w->cause)) != 0)
        goto out;
    if ((n = i2d_X509(sk_X509_value(certs, 0), &der)) <= 0 ||
        (r->der64 = b64url_encode(der, (size_t)n)) == NULL) {
        w->rc = -E_NOMEM;
        goto out;
    }
    /* Without an account the certificate's own key signs (RFC 8555 section 7.6). */
    if (store_read_file(store, r->name, r->version, "privkey.pem", &kpem, &klen, NULL) == 0)
        keys_parse(kpem, klen, NULL, &r->key, NULL);
out:
    sk_X509_pop_free(certs, X509_free);
    OPENSSL_free(der);
    free(pem);
    if (kpem != NULL)
        keys_free_secret(kpem, klen);
}

static void
revoke_read_done(struct acme_work *w)
{
    struct revoke *r = w->arg;

    if (w->rc != 0) {
        r->obs.done(r->obs.arg, w->rc, w->cause, NULL, NULL);
        revoke_free(r);
        return;
    }
    if (r->ca->account == NULL && (r->key == NULL || keys_jws_alg(r->key) == NULL)) {
        r->obs.done(r->obs.arg, -E_BAD_INPUT,
                    "no account at the CA and the certificate's key cannot sign the request", NULL,
                    NULL);
        revoke_free(r);
        return;
    }
    acme_ca_directory(r->acme, r->ca, revoke_send, r);
}

int
acme_revoke(struct acme *acme, const char *name, const char *reason,
            const struct acme_observer *obs, char **cause)
{
    const struct store_cert *cert = store_find(acme->store, name);
    const struct store_version *v = cert != NULL ? store_current(cert) : NULL;
    unsigned char *meta = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    const cJSON *ca;
    struct revoke *r = NULL;
    int code = 0, rc;

    if (v == NULL) {
        err_set(cause, "no certificate named '%s'", name);
        return -E_NOT_FOUND;
    }
    if (reason != NULL) {
        code = -1;
        for (size_t i = 0; i < sizeof(revoke_reasons) / sizeof(revoke_reasons[0]); i++) {
            if (strcmp(revoke_reasons[i].name, reason) == 0)
                code = revoke_reasons[i].code;
        }
        if (code < 0) {
            err_set(cause,
                    "unknown reason '%s': use unspecified, keyCompromise, "
                    "affiliationChanged, superseded, cessationOfOperation or "
                    "privilegeWithdrawn",
                    reason);
            return -E_BAD_INPUT;
        }
    }
    if (v->source != CERT_SOURCE_ACME) {
        err_set(cause, "'%s' was not issued through ACME; only its CA can revoke it", name);
        return -E_BAD_INPUT;
    }
    if ((rc = store_read_file(acme->store, name, v->version, "meta.json", &meta, &len, cause)) !=
        0)
        return rc;
    root = cJSON_ParseWithLength((const char *)meta, len);
    ca = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "extra"), "acme"),
        "ca");
    rc = -E_NOT_FOUND;
    if (!cJSON_IsString(ca) || acme_ca_find(acme, ca->valuestring) == NULL) {
        err_set(cause, "the CA that issued '%s' (%s) is not configured", name,
                cJSON_IsString(ca) ? ca->valuestring : "unknown");
        goto out;
    }
    rc = -E_NOMEM;
    if ((r = calloc(1, sizeof(*r))) == NULL || (r->name = strdup(name)) == NULL ||
        (r->serial = strdup(v->serial)) == NULL)
        goto out;
    r->acme = acme;
    r->ca = acme_ca_find(acme, ca->valuestring);
    r->obs = *obs;
    r->version = v->version;
    r->reason = code;
    if (acme_work_queue(acme, &r->work, revoke_read_run, revoke_read_done, r) != 0) {
        rc = -E_INTERNAL;
        goto out;
    }
    r = NULL;
    rc = 0;
out:
    if (r != NULL)
        revoke_free(r);
    cJSON_Delete(root);
    free(meta);
    return rc;
}

/* ACME Renewal Information (RFC 9773) */

/*
 * RFC 3339 date-time ("2026-11-23T10:00:00Z", fractions and offsets
 * allowed) to Unix seconds.  0 or -1.
 */
int
acme_parse_time(const char *s, int64_t *out)
{
    struct tm tm;
    int y, mo, d, h, mi, sec, n = 0, off = 0;
    const char *p;

    if (s == NULL ||
        sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
        n == 0)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
        return -1;
    p = s + n;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, m = 0;

        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5 || oh > 23 || om > 59)
            return -1;
        off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec > 59 ? 59 : sec;
    *out = sys_timegm(&tm) - off;
    return 0;
}

struct ari_get {
    struct acme *acme;
    struct acme_ca *ca;
    char *cert_id;
    void (*cb)(void *arg, int rc, const char *cause, const struct acme_ari *ari);
    void *arg;
};

static void
ari_get_free(struct ari_get *g)
{
    free(g->cert_id);
    free(g);
}

static void
ari_reply(void *arg, int rc, const char *cause, const char *detail,
          struct acme_http_response *resp, cJSON *json)
{
    struct ari_get *g = arg;
    struct acme_ari ari;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(json, "suggestedWindow");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(w, "start");
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(w, "end");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(json, "explanationURL");
    char *words = NULL;
    long ra;

    (void)detail;
    memset(&ari, 0, sizeof(ari));
    if (rc != 0) {
        g->cb(g->arg, rc, cause, NULL);
        goto out;
    }
    if (!cJSON_IsString(st) || !cJSON_IsString(en) ||
        acme_parse_time(st->valuestring, &ari.start) != 0 ||
        acme_parse_time(en->valuestring, &ari.end) != 0 || ari.end < ari.start) {
        err_set(&words, "CA '%s' sent renewal information without a valid suggestedWindow",
                g->ca->name);
        g->cb(g->arg, -E_ACME, words, NULL);
        goto out;
    }
    if (cJSON_IsString(ex) && ex->valuestring[0] != '\0')
        ari.explanation = ex->valuestring;
    if (resp != NULL && resp->retry_after != NULL &&
        (ra = acme_http_retry_after(resp->retry_after, (long long)time(NULL))) > 0)
        ari.retry_after = ra;
    g->cb(g->arg, 0, NULL, &ari);
out:
    free(words);
    ari_get_free(g);
}

static void
ari_directory_ready(void *arg, int rc, const char *cause, const char *detail)
{
    struct ari_get *g = arg;
    struct acme_call_args a;
    const char *base;
    char *url = NULL, *why = NULL;

    (void)detail;
    if (rc != 0) {
        g->cb(g->arg, rc, cause, NULL);
        ari_get_free(g);
        return;
    }
    if ((base = acme_ca_url(g->ca, "renewalInfo")) == NULL) {
        err_set(&why, "CA '%s' offers no renewal information", g->ca->name);
        g->cb(g->arg, -E_NOT_FOUND, why, NULL);
        free(why);
        ari_get_free(g);
        return;
    }
    err_set(&url, "%s%s%s", base, base[0] != '\0' && base[strlen(base) - 1] == '/' ? "" : "/",
            g->cert_id);
    memset(&a, 0, sizeof(a));
    a.url = url;
    a.payload = NULL; /* a plain GET: renewalInfo is not authenticated */
    a.deadline = uv_now(g->acme->loop) + 60u * 1000;
    if (url == NULL || (rc = acme_call(g->acme, g->ca, &a, ari_reply, g, &why)) != 0) {
        g->cb(g->arg, url == NULL ? -E_NOMEM : rc, why, NULL);
        ari_get_free(g);
    }
    free(why);
    free(url);
}

int
acme_ari_get(struct acme *acme, const char *ca, const char *cert_id,
             void (*cb)(void *arg, int rc, const char *cause, const struct acme_ari *ari),
             void *arg, char **cause)
{
    struct acme_ca *c = acme_ca_find(acme, ca);
    struct ari_get *g;

    if (acme->stopping) {
        err_set(cause, "the agent is stopping");
        return -E_UNAVAILABLE;
    }
    if (c == NULL) {
        err_set(cause, "no CA named '%s'", ca);
        return -E_NOT_FOUND;
    }
    if ((g = calloc(1, sizeof(*g))) == NULL || (g->cert_id = strdup(cert_id)) == NULL) {
        free(g);
        return -E_NOMEM;
    }
    g->acme = acme;
    g->ca = c;
    g->cb = cb;
    g->arg = arg;
    /* renewalInfo is looked up afresh (CAs have moved it): a directory at most 5 s old. */
    acme_ca_directory_max_age(acme, c, ACME_ARI_DIRECTORY_MAX_AGE_MS, ari_directory_ready, g);
    return 0;
}

/* Account import (certbot migration): an existing account's URL and key become CA's account. */

struct acct_import {
    struct acme *acme;
    struct acme_ca *ca;
    struct acme_observer obs;
    char *url;
    struct key *key;
    char *key_type;
};

static void
acct_import_saved(void *arg, int rc, const char *cause)
{
    struct acct_import *im = arg;
    struct acme_account *a = NULL;
    cJSON *result = NULL;

    im->ca->account_busy = 0;
    if (rc == 0 && (a = calloc(1, sizeof(*a))) == NULL)
        rc = -E_NOMEM;
    if (rc != 0) {
        if (im->obs.done != NULL)
            im->obs.done(im->obs.arg, rc, cause != NULL ? cause : err_message(rc), NULL, NULL);
        goto out;
    }
    a->url = im->url;
    im->url = NULL;
    a->key = im->key;
    im->key = NULL;
    a->key_type = im->key_type;
    im->key_type = NULL;
    a->created = (int64_t)time(NULL);
    account_free(im->ca->account);
    im->ca->account = a;
    log_info("ACME account imported for CA '%s': %s", im->ca->name, a->url);
    if ((result = cJSON_CreateObject()) != NULL) {
        cJSON_AddStringToObject(result, "ca", im->ca->name);
        cJSON_AddStringToObject(result, "url", a->url);
        cJSON_AddStringToObject(result, "key", a->key_type);
    }
    if (im->obs.done != NULL)
        im->obs.done(im->obs.arg, 0, NULL, NULL, result);
out:
    cJSON_Delete(result);
    keys_free(im->key);
    free(im->url);
    free(im->key_type);
    free(im);
}

int
acme_account_import(struct acme *acme, const char *ca, const char *url, const char *key_pem,
                    size_t key_len, const struct acme_observer *obs, char **cause)
{
    struct acme_ca *c = acme_ca_find(acme, ca);
    struct acct_import *im = NULL;
    struct file_batch *b = NULL;
    char *pem = NULL, *text = NULL;
    size_t pem_len = 0;
    cJSON *o = NULL;
    int rc;

    if (c == NULL) {
        err_set(cause, "no CA named '%s' (see certctl ca list)", ca);
        return -E_NOT_FOUND;
    }
    if (strncmp(url, "https://", 8) != 0) {
        err_set(cause, "the account URL must be an https:// URL");
        return -E_BAD_INPUT;
    }
    if (c->account_busy) {
        err_set(cause, "the account at CA '%s' is being changed", ca);
        return -E_BUSY;
    }
    if (c->account != NULL) {
        if (strcmp(c->account->url, url) == 0) {
            err_set(cause, "CA '%s' already uses this account", ca);
            return -E_EXISTS;
        }
        err_set(cause, "CA '%s' already has an account (%s); certagent keeps it", ca,
                c->account->url);
        return -E_EXISTS;
    }
    if ((im = calloc(1, sizeof(*im))) == NULL)
        return -E_NOMEM;
    im->acme = acme;
    im->ca = c;
    if (obs != NULL)
        im->obs = *obs;
    if ((rc = keys_parse((const unsigned char *)key_pem, key_len, NULL, &im->key, cause)) != 0)
        goto fail;
    if (keys_jws_alg(im->key) == NULL) {
        err_set(cause, "an account key must be RSA or EC P-256/P-384");
        rc = -E_BAD_INPUT;
        goto fail;
    }
    rc = -E_NOMEM;
    if ((im->url = strdup(url)) == NULL || (im->key_type = keys_describe(im->key)) == NULL ||
        (o = cJSON_CreateObject()) == NULL || (b = acme_batch_new()) == NULL)
        goto fail;
    cJSON_AddStringToObject(o, "url", url);
    cJSON_AddStringToObject(o, "key_type", im->key_type);
    cJSON_AddNumberToObject(o, "created", (double)time(NULL));
    cJSON_AddStringToObject(o, "ca", c->name);
    cJSON_AddStringToObject(o, "directory", c->directory);
    cJSON_AddStringToObject(o, "imported", "certbot");
    if ((text = cJSON_Print(o)) == NULL)
        goto fail;
    if ((rc = keys_to_pem(im->key, &pem, &pem_len, cause)) != 0)
        goto fail;
    if ((rc = acme_batch_add(b, acme_path(acme, "accounts", c->name, ".key"), pem, pem_len,
                             0600)) != 0 ||
        (rc = acme_batch_add(b, acme_path(acme, "accounts", c->name, ".json"), text, strlen(text),
                             0600)) != 0)
        goto fail;
    c->account_busy = 1;
    if ((rc = acme_batch_run(acme, b, acct_import_saved, im)) != 0) {
        c->account_busy = 0;
        b = NULL;
        goto fail;
    }
    keys_free_secret(pem, pem_len);
    cJSON_Delete(o);
    free(text);
    return 0;
fail:
    if (b != NULL)
        acme_batch_free(b);
    if (pem != NULL)
        keys_free_secret(pem, pem_len);
    cJSON_Delete(o);
    free(text);
    if (im != NULL) {
        keys_free(im->key);
        free(im->url);
        free(im->key_type);
        free(im);
    }
    return rc;
}

int
acme_ca_known(struct acme *acme, const char *name)
{
    return acme_ca_find(acme, name) != NULL;
}
