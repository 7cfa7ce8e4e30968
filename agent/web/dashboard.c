/*
 * The dashboard's listener (dashboard.h): connections from challenge-net.c,
 * the request head parsed by challenge-http.c's parser, TLS on a pair of
 * memory BIOs per connection (bytes from libuv go into one, OpenSSL's
 * output is taken from the other and handed to libuv, as challenge-alpn.c
 * does), the token check, and the answers.
 */
#include "dashboard.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "challenge-http.h"
#include "challenge-net.h"
#include "config.h"
#include "deploy.h"
#include "digest.h"
#include "env.h"
#include "err.h"
#include "events.h"
#include "fsutil.h"
#include "keys.h"
#include "log.h"
#include "pem.h"
#include "store.h"

#define TOKEN_MIN 16
#define TOKEN_MAX 1024
#define COOKIE_NAME "certagent_dashboard"
/* Security headers of every answer: nothing runs, nothing is fetched from elsewhere. */
#define SAFE_HEADERS                                                                              \
    "Cache-Control: no-store\r\n"                                                                 \
    "X-Content-Type-Options: nosniff\r\n"                                                         \
    "X-Frame-Options: DENY\r\n"                                                                   \
    "Referrer-Policy: no-referrer\r\n"                                                            \
    "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; "                    \
    "form-action 'none'; frame-ancestors 'none'\r\n"
/* The self-signed certificate's validity, and how long before its end a new one is made. */
#define SELFSIGNED_DAYS 397
#define SELFSIGNED_RENEW_DAYS 30

struct dashboard {
    const struct env *env;
    struct dashboard_inputs in;
    struct challenge_net net;
    char *addr;
    int tls;
    int token_required;
    unsigned char token_hash[32];
    SSL_CTX *ctx;
    /* The credentials served (replaced when a new version is loaded). */
    struct key *key;
    X509 *cert;
    STACK_OF(X509) * chain;
    char *cert_name;
    unsigned loaded_version;
    unsigned pending; /* pool jobs and commits not back yet */
    int loading;
    int creating;
    int released; /* the net is closed: free once pending is 0 */
    int closing;
};

/* One connection. */
struct web_conn {
    struct challenge_conn *conn;
    SSL *ssl;
    BIO *in, *out;
    int answered;
    size_t used;
    char head[CHALLENGE_HTTP_HEAD_MAX + 1];
};

static void maybe_free(struct dashboard *d);
static void load_current(struct dashboard *d);

/* ---- the config ---- */

/* Reads the token (its first line) and keeps its SHA-256.  Secrets never reach a message. */
static int
read_token(const char *path, unsigned char hash[32], char **cause)
{
    unsigned char *data = NULL;
    size_t len = 0, n = 0;
    char *inner = NULL;
    int rc;

    if ((rc = fsutil_read_file(path, TOKEN_MAX + 2, &data, &len, &inner)) != 0) {
        err_set(cause, "dashboard_token_file: cannot read %s: %s", path,
                inner != NULL ? inner : err_message(rc));
        rc = -E_BAD_INPUT;
        goto out;
    }
    while (n < len && data[n] != '\n' && data[n] != '\r')
        n++;
    rc = -E_BAD_INPUT;
    if (n < TOKEN_MIN || n > TOKEN_MAX) {
        err_set(cause,
                "dashboard_token_file: the token in %s must be %d to %d characters on its first "
                "line (e.g. the output of openssl rand -hex 32)",
                path, TOKEN_MIN, TOKEN_MAX);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (data[i] <= 0x20 || data[i] >= 0x7f || data[i] == ';' || data[i] == ',') {
            err_set(cause,
                    "dashboard_token_file: the token in %s holds a space, a control character, "
                    "';' or ','; use letters and digits (e.g. openssl rand -hex 32)",
                    path);
            goto out;
        }
    }
    if (hash != NULL && EVP_Digest(data, n, hash, NULL, EVP_sha256(), NULL) != 1) {
        err_set(cause, "dashboard_token_file: cannot hash the token");
        rc = -E_CRYPTO;
        goto out;
    }
    rc = 0;
out:
    if (data != NULL)
        keys_free_secret(data, len);
    free(inner);
    return rc;
}

int
dashboard_check(const struct config *c, const struct store *store, char **cause)
{
    int loopback = 0, rc;
    const struct store_cert *cert;
    const struct store_version *v;

    if (c->dashboard_listen == NULL)
        return 0;
    if (challenge_net_addr_loopback(c->dashboard_listen, &loopback) != 0) {
        err_set(cause,
                "dashboard_listen: '%s' is not ADDR:PORT with a numeric address (e.g. "
                "\"127.0.0.1:8443\", \"[::1]:8443\" or \"0.0.0.0:8443\")",
                c->dashboard_listen);
        return -E_BAD_INPUT;
    }
    if (!loopback && c->dashboard_token_file == NULL) {
        err_set(cause,
                "dashboard_listen: %s is not a loopback address, so the dashboard needs a token: "
                "set dashboard_token_file to a file holding one (e.g. openssl rand -hex 32)",
                c->dashboard_listen);
        return -E_BAD_INPUT;
    }
    if (c->dashboard_token_file != NULL &&
        (rc = read_token(c->dashboard_token_file, NULL, cause)) != 0)
        return rc;
    if (c->dashboard_plain_http || c->dashboard_certificate == NULL)
        return 0;
    cert = store_find(store, c->dashboard_certificate);
    v = cert != NULL ? store_current(cert) : NULL;
    if (v == NULL) {
        err_set(cause,
                "dashboard_certificate: the store has no certificate named '%s'; bring it with "
                "certctl import %s --cert FILE --key FILE, or leave dashboard_certificate unset "
                "for a self-signed one",
                c->dashboard_certificate, c->dashboard_certificate);
        return -E_BAD_INPUT;
    }
    if (!v->has_key) {
        err_set(cause,
                "dashboard_certificate: '%s' has no private key in the store; import it with "
                "its key (certctl import %s --cert FILE --key FILE)",
                c->dashboard_certificate, c->dashboard_certificate);
        return -E_BAD_INPUT;
    }
    return 0;
}

/* ---- the certificate ---- */

struct load_job {
    uv_work_t work;
    struct dashboard *d;
    const struct store *store;
    char *name;
    unsigned version;
    struct key *key;
    X509 *cert;
    STACK_OF(X509) * chain;
    int rc;
    char *cause;
};

static void
load_run(uv_work_t *work)
{
    struct load_job *job = (struct load_job *)work;
    unsigned char *pem = NULL, *chain = NULL, *key = NULL;
    size_t plen = 0, clen = 0, klen = 0;
    STACK_OF(X509) *leafs = NULL;
    char *ccause = NULL;

    job->rc =
        store_read_file(job->store, job->name, job->version, "cert.pem", &pem, &plen, &job->cause);
    if (job->rc == 0)
        job->rc = pem_read_certs(pem, plen, "cert.pem", &leafs, &job->cause);
    if (job->rc == 0 && sk_X509_num(leafs) > 0) {
        job->cert = sk_X509_shift(leafs);
    } else if (job->rc == 0) {
        job->rc = -E_BAD_INPUT;
        err_set(&job->cause, "cert.pem holds no certificate");
    }
    /* A missing chain is an empty one. */
    if (job->rc == 0 &&
        store_read_file(job->store, job->name, job->version, "chain.pem", &chain, &clen,
                        &ccause) == 0 &&
        clen > 0)
        job->rc = pem_read_certs(chain, clen, "chain.pem", &job->chain, &job->cause);
    free(ccause);
    if (job->rc == 0)
        job->rc = store_read_file(job->store, job->name, job->version, "privkey.pem", &key, &klen,
                                  &job->cause);
    if (job->rc == 0)
        job->rc = keys_parse(key, klen, NULL, &job->key, &job->cause);
    if (job->rc == 0)
        job->rc = keys_match_cert(job->key, job->cert, &job->cause);
    sk_X509_pop_free(leafs, X509_free);
    free(pem);
    free(chain);
    if (key != NULL)
        keys_free_secret(key, klen);
}

static void
load_after(uv_work_t *work, int status)
{
    struct load_job *job = (struct load_job *)work;
    struct dashboard *d = job->d;

    (*d->env->jobs)--;
    d->pending--;
    d->loading = 0;
    if (status == 0 && job->rc == 0 && !d->released) {
        keys_free(d->key);
        X509_free(d->cert);
        sk_X509_pop_free(d->chain, X509_free);
        d->key = job->key;
        d->cert = job->cert;
        d->chain = job->chain;
        job->key = NULL;
        job->cert = NULL;
        job->chain = NULL;
        d->loaded_version = job->version;
        log_info("dashboard: serving certificate '%s' version %u", job->name, job->version);
    } else if (status == 0 && !d->released) {
        log_error("dashboard: cannot load certificate '%s' version %u: %s", job->name,
                  job->version, job->cause != NULL ? job->cause : err_message(job->rc));
    }
    keys_free(job->key);
    X509_free(job->cert);
    sk_X509_pop_free(job->chain, X509_free);
    free(job->cause);
    free(job->name);
    free(job);
    if (!d->released)
        load_current(d); /* a newer version may have come meanwhile */
    maybe_free(d);
}

static void
settings_done(void *arg, int rc, const char *cause)
{
    struct dashboard *d = arg;

    d->pending--;
    if (rc != 0)
        log_warn("dashboard: cannot turn on auto-renew of '%s': %s", CONFIG_DASHBOARD_SELFSIGNED,
                 cause != NULL ? cause : err_message(rc));
    else if (!d->released)
        events_publish_name(d->env->events, EVENT_SETTINGS_CHANGED, CONFIG_DASHBOARD_SELFSIGNED);
    maybe_free(d);
}

static void
created(void *arg, int rc, const char *cause)
{
    struct dashboard *d = arg;
    cJSON *changes;
    char *inner = NULL;

    d->pending--;
    d->creating = 0;
    if (rc != 0) {
        log_error("dashboard: cannot make the self-signed certificate '%s': %s",
                  CONFIG_DASHBOARD_SELFSIGNED, cause != NULL ? cause : err_message(rc));
    } else if (!d->released && d->in.deploy != NULL && (changes = cJSON_CreateObject()) != NULL) {
        /* The scheduler renews it before it expires. */
        cJSON_AddBoolToObject(changes, "auto_renew", 1);
        if (deploy_settings_change(d->in.deploy, CONFIG_DASHBOARD_SELFSIGNED, changes,
                                   settings_done, d, &inner) == 0)
            d->pending++;
        else
            log_warn("dashboard: cannot turn on auto-renew of '%s': %s",
                     CONFIG_DASHBOARD_SELFSIGNED, inner != NULL ? inner : "error");
        free(inner);
        cJSON_Delete(changes);
    }
    maybe_free(d);
}

/* Makes the self-signed certificate (its names: localhost and the listen address). */
static void
create_selfsigned(struct dashboard *d)
{
    const char *dns[] = {"localhost"};
    const char *ips[2] = {"127.0.0.1", NULL};
    size_t nips = 1;
    char host[64];
    const char *colon = strrchr(d->addr, ':');
    size_t hlen = colon != NULL ? (size_t)(colon - d->addr) : 0;
    char *cause = NULL;

    if (d->creating || d->in.selfsigned.make == NULL)
        return;
    if (d->addr[0] == '[' && hlen >= 2) {
        snprintf(host, sizeof(host), "%.*s", (int)(hlen - 2), d->addr + 1);
    } else {
        snprintf(host, sizeof(host), "%.*s", (int)hlen, d->addr);
    }
    if (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "0.0.0.0") != 0 && strcmp(host, "::") != 0)
        ips[nips++] = host;
    if (d->in.selfsigned.make(d->in.selfsigned.ctx, CONFIG_DASHBOARD_SELFSIGNED, dns, 1, ips, nips,
                              "ec256", SELFSIGNED_DAYS, created, d, &cause) != 0) {
        log_error("dashboard: cannot make the self-signed certificate '%s': %s",
                  CONFIG_DASHBOARD_SELFSIGNED, cause != NULL ? cause : "error");
    } else {
        d->creating = 1;
        d->pending++;
        log_info("dashboard: making the self-signed certificate '%s'",
                 CONFIG_DASHBOARD_SELFSIGNED);
    }
    free(cause);
}

/* Loads the current version of the certificate when it is not the one served. */
static void
load_current(struct dashboard *d)
{
    const struct store_cert *cert;
    struct load_job *job;
    int rc;

    if (!d->tls || d->released || d->loading)
        return;
    cert = store_find(d->in.store, d->cert_name);
    if (cert == NULL || cert->current == 0) {
        if (d->env->config->dashboard_certificate == NULL)
            create_selfsigned(d);
        else if (d->cert == NULL)
            log_error("dashboard: the store has no certificate '%s' to serve", d->cert_name);
        return;
    }
    if (cert->current == d->loaded_version)
        return;
    if ((job = calloc(1, sizeof(*job))) == NULL || (job->name = strdup(d->cert_name)) == NULL) {
        free(job);
        return;
    }
    job->d = d;
    job->store = d->in.store;
    job->version = cert->current;
    if ((rc = uv_queue_work(d->env->loop, &job->work, load_run, load_after)) != 0) {
        log_error("dashboard: cannot load the certificate: %s", uv_strerror(rc));
        free(job->name);
        free(job);
        return;
    }
    (*d->env->jobs)++;
    d->pending++;
    d->loading = 1;
}

static void
on_event(void *arg, const struct event *ev)
{
    struct dashboard *d = arg;

    if (ev->name != NULL && strcmp(ev->name, d->cert_name) == 0)
        load_current(d);
}

/* ---- connections ---- */

/* Hands what OpenSSL wrote to libuv.  0, or -1 when the connection is gone. */
static int
flush(struct web_conn *wc)
{
    char *p;
    long n = BIO_get_mem_data(wc->out, &p);
    int rc = 0;

    if (n > 0) {
        rc = challenge_net_send(wc->conn, p, (size_t)n);
        (void)BIO_reset(wc->out);
    }
    return rc;
}

/* Sends bytes of the answer (through TLS when on).  0 or -1. */
static int
conn_write(struct web_conn *wc, const char *data, size_t len)
{
    if (wc->ssl == NULL)
        return challenge_net_send(wc->conn, data, len);
    while (len > 0) {
        int n = SSL_write(wc->ssl, data, len > (1u << 30) ? 1 << 30 : (int)len);

        if (n <= 0) {
            ERR_clear_error();
            challenge_net_abort(wc->conn);
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return flush(wc);
}

/* The answer is complete: close_notify under TLS, then the connection finishes. */
static void
conn_done(struct web_conn *wc)
{
    wc->answered = 1;
    if (wc->ssl != NULL) {
        if (SSL_shutdown(wc->ssl) < 0)
            ERR_clear_error();
        if (flush(wc) != 0)
            return;
    }
    challenge_net_finish(wc->conn);
}

static void
respond(struct web_conn *wc, int status, const char *reason, const char *type, const char *extra,
        const char *body, size_t blen, int head_only)
{
    char head[4096];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nServer: certagent\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n" SAFE_HEADERS "%sConnection: close\r\n\r\n",
                     status, reason, type, blen, extra);

    if (n < 0 || (size_t)n >= sizeof(head)) {
        challenge_net_abort(wc->conn);
        return;
    }
    if (conn_write(wc, head, (size_t)n) != 0)
        return;
    if (!head_only && blen > 0 && conn_write(wc, body, blen) != 0)
        return;
    conn_done(wc);
}

static void
respond_error(struct web_conn *wc, int status, const char *reason, const char *extra)
{
    char body[128];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, reason);

    respond(wc, status, reason, "text/plain; charset=utf-8", extra, body, (size_t)n, 0);
}

/* ASCII case-insensitive comparison of n bytes. */
static int
same_ci(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char x = a[i] >= 'A' && a[i] <= 'Z' ? (char)(a[i] + 32) : a[i];
        char y = b[i] >= 'A' && b[i] <= 'Z' ? (char)(b[i] + 32) : b[i];

        if (x != y)
            return 0;
    }
    return 1;
}

/* The value of header field name in head[0, end) (not NUL-terminated), or NULL. */
static const char *
header(const char *head, size_t end, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = memchr(head, '\n', end), *stop = head + end;

    while (p != NULL && p + 1 < stop) {
        const char *line = p + 1, *eol = memchr(line, '\n', (size_t)(stop - line));
        size_t len = eol != NULL ? (size_t)(eol - line) : (size_t)(stop - line);

        if (len > nlen && line[nlen] == ':' && same_ci(line, name, nlen)) {
            const char *v = line + nlen + 1;

            while (v < line + len && (*v == ' ' || *v == '\t'))
                v++;
            *vlen = (size_t)(line + len - v);
            while (*vlen > 0 && (v[*vlen - 1] == '\r' || v[*vlen - 1] == ' '))
                (*vlen)--;
            return v;
        }
        p = eol;
    }
    return NULL;
}

/* Is s[0, len) the token?  Constant time in the token's value (hashes compared). */
static int
token_matches(const struct dashboard *d, const char *s, size_t len)
{
    unsigned char h[32];

    if (len == 0 || len > TOKEN_MAX || EVP_Digest(s, len, h, NULL, EVP_sha256(), NULL) != 1)
        return 0;
    return CRYPTO_memcmp(h, d->token_hash, sizeof(h)) == 0;
}

/* Does the request carry the token (bearer header or cookie)? */
static int
authorized(const struct dashboard *d, const char *head, size_t end)
{
    const char *v;
    size_t len;

    if (!d->token_required)
        return 1;
    if ((v = header(head, end, "Authorization", &len)) != NULL && len > 7 &&
        same_ci(v, "Bearer ", 7) && token_matches(d, v + 7, len - 7))
        return 1;
    if ((v = header(head, end, "Cookie", &len)) != NULL) {
        const char *p = v, *stop = v + len;

        while (p < stop) {
            const char *semi = memchr(p, ';', (size_t)(stop - p)), *e = semi ? semi : stop;

            while (p < e && *p == ' ')
                p++;
            if ((size_t)(e - p) > strlen(COOKIE_NAME) + 1 &&
                strncmp(p, COOKIE_NAME "=", strlen(COOKIE_NAME) + 1) == 0 &&
                token_matches(d, p + strlen(COOKIE_NAME) + 1,
                              (size_t)(e - p) - strlen(COOKIE_NAME) - 1))
                return 1;
            p = semi != NULL ? semi + 1 : stop;
        }
    }
    return 0;
}

/* The value of ?token= in the request target of the head's first line, or NULL. */
static const char *
query_token(const char *target, size_t tlen, size_t *vlen)
{
    const char *q = memchr(target, '?', tlen), *stop = target + tlen;

    while (q != NULL && q < stop) {
        const char *p = q + 1, *amp = memchr(p, '&', (size_t)(stop - p)), *e = amp ? amp : stop;

        if ((size_t)(e - p) > 6 && strncmp(p, "token=", 6) == 0) {
            *vlen = (size_t)(e - p - 6);
            return p + 6;
        }
        q = amp;
    }
    return NULL;
}

static void
serve_page(struct dashboard *d, struct web_conn *wc, int head_only)
{
    msgpack_sbuffer doc;
    msgpack_unpacked u;
    struct metrics_buf page = {NULL, 0, 0};
    size_t off = 0;
    int64_t now = (int64_t)time(NULL);
    char host[256];

    msgpack_sbuffer_init(&doc);
    msgpack_unpacked_init(&u);
    digest_host(host, sizeof(host));
    if (status_pack_document(d->in.status, now, &doc) != 0 ||
        msgpack_unpack_next(&u, doc.data, doc.size, &off) != MSGPACK_UNPACK_SUCCESS ||
        dashboard_page(&u.data, d->in.store, host, now, d->env->config->dashboard_refresh,
                       &page) != 0)
        respond_error(wc, 500, "Internal Server Error", "");
    else
        respond(wc, 200, "OK", "text/html; charset=utf-8", "", page.p, page.len, head_only);
    free(page.p);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&doc);
}

static void
serve_json(struct dashboard *d, struct web_conn *wc, int head_only)
{
    msgpack_sbuffer doc;
    struct metrics_buf text = {NULL, 0, 0};

    msgpack_sbuffer_init(&doc);
    if (status_pack_document(d->in.status, (int64_t)time(NULL), &doc) != 0 ||
        status_document_json(doc.data, doc.size, &text) != 0)
        respond_error(wc, 500, "Internal Server Error", "");
    else
        respond(wc, 200, "OK", "application/json", "", text.p, text.len, head_only);
    free(text.p);
    msgpack_sbuffer_destroy(&doc);
}

/* Answers the complete request head in wc->head[0, end). */
static void
answer(struct dashboard *d, struct web_conn *wc, size_t end)
{
    const char *method, *path, *target, *tok;
    size_t mlen, plen, tlen, toklen;
    int head_only;

    if (challenge_http_parse_head(wc->head, end, &method, &mlen, &path, &plen) != 0) {
        respond_error(wc, 400, "Bad Request", "");
        return;
    }
    head_only = mlen == 4 && memcmp(method, "HEAD", 4) == 0;
    if (!head_only && !(mlen == 3 && memcmp(method, "GET", 3) == 0)) {
        respond_error(wc, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
        return;
    }
    /* The request target as sent (the path is without its query). */
    target = method + mlen + 1;
    tlen = strcspn(target, " \r\n");
    if (d->token_required && (tok = query_token(target, tlen, &toklen)) != NULL) {
        char extra[TOKEN_MAX + 256];

        if (!token_matches(d, tok, toklen)) {
            log_info("dashboard: %s: wrong token in the query: 401", wc->conn->peer);
            respond_error(wc, 401, "Unauthorized",
                          "WWW-Authenticate: Bearer realm=\"certagent\"\r\n");
            return;
        }
        /*
         * A cookie for the next requests, and the same page without the token in its
         * address (one of the two paths served: never a path of the client's, which
         * "//host" would turn into another site).
         */
        snprintf(extra, sizeof(extra),
                 "Set-Cookie: " COOKIE_NAME "=%.*s; Path=/; HttpOnly; SameSite=Strict%s\r\n"
                 "Location: %s\r\n",
                 (int)toklen, tok, d->tls ? "; Secure" : "",
                 plen == 12 && memcmp(path, "/status.json", 12) == 0 ? "/status.json" : "/");
        respond(wc, 303, "See Other", "text/plain; charset=utf-8", extra, "", 0, 0);
        return;
    }
    if (!authorized(d, wc->head, end)) {
        log_debug("dashboard: %s: no valid token: 401", wc->conn->peer);
        respond_error(wc, 401, "Unauthorized", "WWW-Authenticate: Bearer realm=\"certagent\"\r\n");
        return;
    }
    if (plen == 1 && path[0] == '/')
        serve_page(d, wc, head_only);
    else if (plen == 12 && memcmp(path, "/status.json", 12) == 0)
        serve_json(d, wc, head_only);
    else
        respond_error(wc, 404, "Not Found", "");
}

/* Takes plaintext bytes of the request; answers once the head is complete. */
static void
take(struct dashboard *d, struct web_conn *wc, const char *data, size_t len)
{
    size_t room = CHALLENGE_HTTP_HEAD_MAX - wc->used, n = len < room ? len : room, end;

    if (wc->answered)
        return;
    memcpy(wc->head + wc->used, data, n);
    wc->used += n;
    wc->head[wc->used] = '\0';
    if ((end = challenge_http_head_end(wc->head, wc->used)) > 0) {
        answer(d, wc, end);
    } else if (wc->used == CHALLENGE_HTTP_HEAD_MAX) {
        log_debug("dashboard: %s: request head over %d bytes: 431", wc->conn->peer,
                  CHALLENGE_HTTP_HEAD_MAX);
        respond_error(wc, 431, "Request Header Fields Too Large", "");
    }
}

static int
on_open(struct challenge_conn *conn)
{
    struct dashboard *d = conn->net->owner;
    struct web_conn *wc = calloc(1, sizeof(*wc));
    char why[160], *cause = NULL;

    if (wc == NULL)
        return -E_NOMEM;
    wc->conn = conn;
    conn->data = wc;
    if (!d->tls)
        return 0;
    if (d->cert == NULL) {
        log_debug("dashboard: %s: no certificate loaded yet", conn->peer);
        return -E_BUSY;
    }
    if ((wc->ssl = SSL_new(d->ctx)) == NULL || (wc->in = BIO_new(BIO_s_mem())) == NULL ||
        (wc->out = BIO_new(BIO_s_mem())) == NULL) {
        log_error("dashboard: %s: cannot start TLS: %s", conn->peer,
                  pem_ssl_reason(why, sizeof(why)));
        BIO_free(wc->in);
        BIO_free(wc->out);
        wc->in = wc->out = NULL;
        return -E_CRYPTO;
    }
    BIO_set_mem_eof_return(wc->in, -1);
    BIO_set_mem_eof_return(wc->out, -1);
    SSL_set_bio(wc->ssl, wc->in, wc->out); /* the SSL owns both now */
    SSL_set_accept_state(wc->ssl);
    if (keys_ssl_use(wc->ssl, d->key, d->cert, &cause) != 0) {
        log_error("dashboard: %s: %s", conn->peer, cause != NULL ? cause : "cannot use the key");
        free(cause);
        return -E_CRYPTO;
    }
    for (int i = 0; d->chain != NULL && i < sk_X509_num(d->chain); i++)
        SSL_add1_chain_cert(wc->ssl, sk_X509_value(d->chain, i));
    return 0;
}

static void
on_data(struct challenge_conn *conn, const char *data, size_t len)
{
    struct dashboard *d = conn->net->owner;
    struct web_conn *wc = conn->data;
    char buf[4096], why[160];
    int n;

    if (wc->ssl == NULL) {
        take(d, wc, data, len);
        return;
    }
    if (BIO_write(wc->in, data, (int)len) != (int)len) {
        ERR_clear_error();
        challenge_net_abort(conn);
        return;
    }
    ERR_clear_error();
    while (!wc->answered && (n = SSL_read(wc->ssl, buf, sizeof(buf))) > 0)
        take(d, wc, buf, (size_t)n);
    if (wc->answered)
        return;
    n = SSL_get_error(wc->ssl, n);
    if (n == SSL_ERROR_WANT_READ || n == SSL_ERROR_WANT_WRITE) {
        flush(wc); /* the handshake's messages */
        return;
    }
    log_debug("dashboard: %s: TLS: %s", conn->peer, pem_ssl_reason(why, sizeof(why)));
    ERR_clear_error();
    if (flush(wc) == 0)
        challenge_net_finish(conn);
}

static void
on_close(struct challenge_conn *conn)
{
    struct web_conn *wc = conn->data;

    if (wc != NULL)
        SSL_free(wc->ssl);
    free(wc);
    conn->data = NULL;
}

static const struct challenge_net_ops web_ops = {on_open, on_data, on_close};

/* ---- lifecycle ---- */

static void
maybe_free(struct dashboard *d)
{
    if (!d->released || d->pending > 0)
        return;
    keys_free(d->key);
    X509_free(d->cert);
    sk_X509_pop_free(d->chain, X509_free);
    SSL_CTX_free(d->ctx);
    free(d->cert_name);
    free(d->addr);
    free(d);
}

static void
on_released(void *owner)
{
    struct dashboard *d = owner;

    d->released = 1;
    maybe_free(d);
}

/* TLS 1.2 or newer, no session resumption (nothing to keep between page loads). */
static int
make_ctx(struct dashboard *d, char **cause)
{
    char why[160];

    if ((d->ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
        SSL_CTX_set_min_proto_version(d->ctx, TLS1_2_VERSION) != 1) {
        err_set(cause, "dashboard: cannot make the TLS context: %s",
                pem_ssl_reason(why, sizeof(why)));
        return -E_CRYPTO;
    }
    SSL_CTX_set_options(d->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    ERR_clear_error();
    return 0;
}

int
dashboard_start(const struct env *env, const struct dashboard_inputs *in, struct dashboard **out,
                char **cause)
{
    const struct config *c = env->config;
    const char *addrs[1];
    struct dashboard *d;
    int rc;

    *out = NULL;
    if (c->dashboard_listen == NULL)
        return 0;
    if ((rc = dashboard_check(c, in->store, cause)) != 0)
        return rc;
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return -E_NOMEM;
    d->env = env;
    d->in = *in;
    d->tls = !c->dashboard_plain_http;
    d->token_required = c->dashboard_token_file != NULL;
    if ((d->addr = strdup(c->dashboard_listen)) == NULL ||
        (d->cert_name = strdup(c->dashboard_certificate != NULL ? c->dashboard_certificate
                                                                : CONFIG_DASHBOARD_SELFSIGNED)) ==
            NULL) {
        rc = -E_NOMEM;
        goto fail;
    }
    if (d->token_required && (rc = read_token(c->dashboard_token_file, d->token_hash, cause)) != 0)
        goto fail;
    if (d->tls && (rc = make_ctx(d, cause)) != 0)
        goto fail;
    if (events_subscribe(env->events, EVENT_MASK(EVENT_CERT_CHANGED), on_event, d) != 0) {
        rc = -E_NOMEM;
        goto fail;
    }
    challenge_net_init(&d->net, env->loop, "dashboard", 8443, &web_ops, d, on_released);
    challenge_net_use_config(&d->net, c);
    addrs[0] = d->addr;
    if ((rc = challenge_net_configure(&d->net, addrs, 1, 1, cause)) != 0) {
        events_unsubscribe(env->events, on_event, d);
        d->closing = 1;
        challenge_net_close(&d->net); /* frees d */
        return rc;
    }
    log_info("dashboard: serving %s://%s/ (port %d)%s", d->tls ? "https" : "http", d->addr,
             challenge_net_port(&d->net, 0), d->token_required ? ", token required" : "");
    load_current(d);
    *out = d;
    return 0;
fail:
    SSL_CTX_free(d->ctx);
    free(d->cert_name);
    free(d->addr);
    free(d);
    return rc;
}

void
dashboard_close(struct dashboard *d)
{
    if (d == NULL || d->closing)
        return;
    d->closing = 1;
    events_unsubscribe(d->env->events, on_event, d);
    challenge_net_close(&d->net);
}

int
dashboard_port(const struct dashboard *d)
{
    return d != NULL ? challenge_net_port(&d->net, 0) : 0;
}
