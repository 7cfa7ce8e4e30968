/*
 * The tls-alpn-01 responder (RFC 8737, RFC 8738).  Each connection has its
 * own SSL with a pair of memory BIOs: bytes from libuv go into one, the
 * handshake runs, and what OpenSSL wrote is taken from the other and handed
 * to libuv; no socket is ever given to OpenSSL.  The client-hello callback
 * refuses clients without ALPN, the servername callback picks the
 * validation certificate by SNI (through keys.c, the only code that touches
 * the key), the ALPN callback accepts "acme-tls/1" alone.
 *
 * A name with no local certificate is looked up (challenge_alpn_set_lookup:
 * a fleet, whose node that orders may not be the one the CA reaches): the
 * client-hello callback pauses the handshake (SSL_CLIENT_HELLO_RETRY) until
 * the answer comes, which builds the validation certificate for this
 * connection alone, and the handshake goes on from where it stopped.
 */
#include "challenge-alpn.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "challenge-net.h"
#include "err.h"
#include "keys.h"
#include "log.h"
#include "pem.h"

#define ACME_TLS_ALPN "acme-tls/1"
#define KEY_AUTHORIZATION_MAX 1024
/* "x." for 32 nibbles and "ip6.arpa", with room to spare. */
#define REVERSE_NAME_MAX 80
#define DNS_NAME_MAX 253

struct alpn_cert {
    struct alpn_cert *next;
    char *identifier;        /* as added; DNS names in lower case */
    char *sni;               /* what the client names: the DNS name or the reverse-DNS name */
    char *key_authorization; /* to tell a second add of the same from a conflicting one */
    struct key *key;
    X509 *cert;
    unsigned count;
};

struct challenge_alpn {
    struct challenge_net net;
    SSL_CTX *ctx;
    struct alpn_cert *certs;
    uint64_t served;
    struct challenge_lookup lookup; /* start NULL: none */
};

/* One TLS connection. */
struct alpn_session {
    SSL *ssl;
    BIO *in;  /* network -> OpenSSL */
    BIO *out; /* OpenSSL -> network */
    struct challenge_conn *conn;
    const char *why;            /* why our callbacks refused, for the log */
    char sni[DNS_NAME_MAX + 1]; /* the name the client asked for */
    /*
     * A lookup of a name not served here: the SNI asked, the call in flight,
     * whether it answered (found or not), whether we are inside the
     * client-hello callback (no handshake from the reply then), and the
     * certificate it made, for this connection alone.
     */
    char asked[DNS_NAME_MAX + 1];
    void *lookup;
    int looked_up;
    int in_hello;
    struct key *fkey;
    X509 *fcert;
};

static char
lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int
same_name(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        if (lower(*a) != lower(*b))
            return 0;
    }
    return *a == *b;
}

/*
 * The SNI that asks for identifier: the lower-cased DNS name, or for an IP
 * literal its reverse-DNS name (RFC 8738 section 6).  0, or -E_BAD_INPUT.
 */
static int
sni_for(const char *identifier, char *out, size_t outlen)
{
    unsigned char ip[16];
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(identifier), used = 0;

    if (uv_inet_pton(AF_INET, identifier, ip) == 0) {
        snprintf(out, outlen, "%u.%u.%u.%u.in-addr.arpa", ip[3], ip[2], ip[1], ip[0]);
        return 0;
    }
    if (uv_inet_pton(AF_INET6, identifier, ip) == 0) {
        for (int i = 15; i >= 0 && used + 4 < outlen; i--) {
            out[used++] = hex[ip[i] & 0x0f];
            out[used++] = '.';
            out[used++] = hex[ip[i] >> 4];
            out[used++] = '.';
        }
        snprintf(out + used, outlen - used, "ip6.arpa");
        return 0;
    }
    if (len == 0 || len >= outlen)
        return -E_BAD_INPUT;
    for (size_t i = 0; i <= len; i++)
        out[i] = lower(identifier[i]);
    return 0;
}

int
challenge_alpn_sni(const char *identifier, char *out, size_t outlen)
{
    return sni_for(identifier, out, outlen);
}

static struct alpn_cert *
find_by_identifier(const struct challenge_alpn *a, const char *identifier)
{
    for (struct alpn_cert *c = a->certs; c != NULL; c = c->next) {
        if (same_name(c->identifier, identifier))
            return c;
    }
    return NULL;
}

static struct alpn_cert *
find_by_sni(const struct challenge_alpn *a, const char *sni)
{
    for (struct alpn_cert *c = a->certs; c != NULL; c = c->next) {
        if (same_name(c->sni, sni))
            return c;
    }
    return NULL;
}

static void
cert_free(struct alpn_cert *c)
{
    if (c == NULL)
        return;
    free(c->identifier);
    free(c->sni);
    free(c->key_authorization);
    keys_free(c->key);
    X509_free(c->cert);
    free(c);
}

/* ---- OpenSSL callbacks ---- */

int
challenge_alpn_parse_sni(const unsigned char *ext, size_t len, char *out, size_t outlen)
{
    size_t list, i;

    if (len < 2)
        return -1;
    list = (size_t)ext[0] << 8 | ext[1];
    if (list + 2 > len)
        return -1;
    for (i = 2; i + 3 <= list + 2;) {
        unsigned type = ext[i];
        size_t n = (size_t)ext[i + 1] << 8 | ext[i + 2];

        if (i + 3 + n > list + 2)
            return -1;
        if (type == TLSEXT_NAMETYPE_host_name) {
            if (n == 0 || n >= outlen)
                return -1;
            for (size_t j = 0; j < n; j++) {
                char c = lower((char)ext[i + 3 + j]);

                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
                    return -1;
                out[j] = c;
            }
            out[n] = '\0';
            return 0;
        }
        i += 3 + n;
    }
    return -1;
}

/* The host name a ClientHello names (challenge_alpn_parse_sni); in the client-hello callback. */
static int
hello_sni(SSL *ssl, char *out, size_t outlen)
{
    const unsigned char *ext;
    size_t len;

    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &len))
        return -1;
    return challenge_alpn_parse_sni(ext, len, out, outlen);
}

static void lookup_reply(void *rarg, const char *value);

/*
 * Refuses a ClientHello without ALPN (else the handshake would succeed
 * without it), and pauses one that names what is not served here while the
 * lookup runs.
 */
static int
on_client_hello(SSL *ssl, int *al, void *arg)
{
    struct challenge_alpn *a = arg;
    struct alpn_session *s = SSL_get_app_data(ssl);
    const unsigned char *ext;
    char sni[DNS_NAME_MAX + 1], key[sizeof(sni) + 8];
    size_t len;

    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
                                   &len)) {
        s->why = "the client offered no ALPN (acme-tls/1 is required)";
        *al = SSL_AD_NO_APPLICATION_PROTOCOL;
        return SSL_CLIENT_HELLO_ERROR;
    }
    if (s->lookup != NULL)
        return SSL_CLIENT_HELLO_RETRY; /* more bytes came; the answer did not */
    if (s->looked_up || a->lookup.start == NULL || hello_sni(ssl, sni, sizeof(sni)) != 0 ||
        find_by_sni(a, sni) != NULL)
        return SSL_CLIENT_HELLO_SUCCESS; /* on_servername decides */
    snprintf(key, sizeof(key), "alpn/%s", sni);
    memcpy(s->asked, sni, sizeof(s->asked));
    s->in_hello = 1;
    s->lookup = a->lookup.start(a->lookup.ctx, key, lookup_reply, s);
    s->in_hello = 0;
    if (s->lookup == NULL) {
        s->looked_up = 1;
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    log_debug("tls-alpn-01: %s: %s is not served here; looking it up", s->conn->peer, sni);
    return SSL_CLIENT_HELLO_RETRY;
}

/* Installs the validation certificate the SNI names. */
static int
on_servername(SSL *ssl, int *al, void *arg)
{
    struct challenge_alpn *a = arg;
    struct alpn_session *s = SSL_get_app_data(ssl);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    struct alpn_cert *c;

    if (name == NULL) {
        s->why = "the client sent no SNI";
        *al = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    /* Kept for the log, printable only. */
    snprintf(s->sni, sizeof(s->sni), "%s", name);
    for (char *p = s->sni; *p != '\0'; p++) {
        if (*p < 0x20 || *p > 0x7e)
            *p = '?';
    }
    if ((c = find_by_sni(a, name)) == NULL && (s->fcert == NULL || !same_name(name, s->asked))) {
        s->why = s->looked_up ? "no challenge is pending for that name here or in the fleet"
                              : "no challenge is pending for that name";
        *al = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (c != NULL ? keys_ssl_use(ssl, c->key, c->cert, NULL) != 0
                  : keys_ssl_use(ssl, s->fkey, s->fcert, NULL) != 0) {
        s->why = "cannot install the validation certificate";
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* Selects "acme-tls/1", the only protocol served. */
static int
on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
        unsigned int inlen, void *arg)
{
    struct alpn_session *s = SSL_get_app_data(ssl);
    unsigned int i = 0;

    (void)arg;
    while (i < inlen) {
        unsigned int n = in[i];

        if (n == 0 || i + 1 + n > inlen)
            break;
        if (n == strlen(ACME_TLS_ALPN) && memcmp(in + i + 1, ACME_TLS_ALPN, n) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    s->why = "the client did not offer ALPN acme-tls/1";
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* ---- connections ---- */

/* Hands what OpenSSL wrote to libuv.  0, or -1 when the connection is gone. */
static int
flush(struct alpn_session *s)
{
    char buf[4096];
    int n;

    while ((n = BIO_read(s->out, buf, (int)sizeof(buf))) > 0) {
        if (challenge_net_send(s->conn, buf, (size_t)n) != 0)
            return -1;
    }
    return 0;
}

/* Runs the handshake as far as the bytes received allow. */
static void
drive(struct challenge_alpn *a, struct alpn_session *s)
{
    struct challenge_conn *conn = s->conn;
    char why[160];
    int r, err;

    ERR_clear_error();
    r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        a->served++;
        log_debug("tls-alpn-01: %s: served the validation certificate for %s (%s)", conn->peer,
                  s->sni, SSL_get_version(s->ssl));
        /* close_notify; the answer is complete. */
        if (SSL_shutdown(s->ssl) < 0)
            ERR_clear_error();
        if (flush(s) == 0)
            challenge_net_finish(conn);
        return;
    }
    err = SSL_get_error(s->ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_CLIENT_HELLO_CB) {
        flush(s);
        return;
    }
    if (s->why != NULL)
        log_debug("tls-alpn-01: %s: handshake refused%s%s: %s", conn->peer,
                  s->sni[0] != '\0' ? " for " : "", s->sni, s->why);
    else
        log_debug("tls-alpn-01: %s: handshake failed: %s", conn->peer,
                  pem_ssl_reason(why, sizeof(why)));
    ERR_clear_error();
    /* The alert, if OpenSSL wrote one, then close. */
    if (flush(s) == 0)
        challenge_net_finish(conn);
}

/*
 * The lookup's answer: "IDENTIFIER KEY-AUTHORIZATION", or NULL.  The
 * identifier must be the one the client asked for; the certificate is made
 * for this connection, and the paused handshake goes on.
 */
static void
lookup_reply(void *rarg, const char *value)
{
    struct alpn_session *s = rarg;
    struct challenge_conn *conn = s->conn;
    const char *space = value != NULL ? strchr(value, ' ') : NULL;
    char ident[DNS_NAME_MAX + 1], sni[DNS_NAME_MAX + 1], *cause = NULL;
    size_t ilen = space != NULL ? (size_t)(space - value) : 0;

    s->lookup = NULL;
    s->looked_up = 1;
    if (ilen > 0 && ilen < sizeof(ident) && strlen(space + 1) <= KEY_AUTHORIZATION_MAX &&
        space[1] != '\0') {
        memcpy(ident, value, ilen);
        ident[ilen] = '\0';
        for (char *p = ident; *p != '\0'; p++)
            *p = lower(*p);
        if (sni_for(ident, sni, sizeof(sni)) != 0 || !same_name(sni, s->asked))
            log_warn("tls-alpn-01: %s: the fleet's answer for %s names another identifier; "
                     "refused",
                     conn->peer, s->asked);
        else if (keys_alpn_cert(ident, space + 1, &s->fkey, &s->fcert, &cause) != 0)
            log_warn("tls-alpn-01: %s: cannot make the validation certificate of %s: %s",
                     conn->peer, ident, cause != NULL ? cause : "error");
        else
            log_debug("tls-alpn-01: %s: %s is validated by another node of the fleet", conn->peer,
                      ident);
        free(cause);
    }
    if (!s->in_hello)
        drive(conn->net->owner, s);
}

static int
on_open(struct challenge_conn *conn)
{
    struct challenge_alpn *a = conn->net->owner;
    struct alpn_session *s = calloc(1, sizeof(*s));
    char why[160];

    if (s == NULL)
        return -E_NOMEM;
    s->conn = conn;
    conn->data = s;
    if ((s->ssl = SSL_new(a->ctx)) == NULL || (s->in = BIO_new(BIO_s_mem())) == NULL ||
        (s->out = BIO_new(BIO_s_mem())) == NULL) {
        log_error("tls-alpn-01: %s: cannot start TLS: %s", conn->peer,
                  pem_ssl_reason(why, sizeof(why)));
        BIO_free(s->in);
        BIO_free(s->out);
        s->in = s->out = NULL;
        return -E_CRYPTO;
    }
    /* An empty memory BIO says "retry", not "end of file". */
    BIO_set_mem_eof_return(s->in, -1);
    BIO_set_mem_eof_return(s->out, -1);
    SSL_set_bio(s->ssl, s->in, s->out); /* the SSL owns both now */
    SSL_set_app_data(s->ssl, s);
    SSL_set_accept_state(s->ssl);
    return 0;
}

static void
on_data(struct challenge_conn *conn, const char *data, size_t len)
{
    struct alpn_session *s = conn->data;

    if (BIO_write(s->in, data, (int)len) != (int)len) {
        ERR_clear_error();
        challenge_net_abort(conn);
        return;
    }
    drive(conn->net->owner, s);
}

static void
on_close(struct challenge_conn *conn)
{
    struct alpn_session *s = conn->data;
    struct challenge_alpn *a = conn->net->owner;

    if (s->lookup != NULL)
        a->lookup.cancel(a->lookup.ctx, s->lookup);
    SSL_free(s->ssl);
    keys_free(s->fkey);
    X509_free(s->fcert);
    free(s);
    conn->data = NULL;
}

static const struct challenge_net_ops alpn_ops = {on_open, on_data, on_close};

static void
on_released(void *owner)
{
    struct challenge_alpn *a = owner;

    while (a->certs != NULL) {
        struct alpn_cert *c = a->certs;

        a->certs = c->next;
        cert_free(c);
    }
    SSL_CTX_free(a->ctx);
    free(a);
}

/* The server context: TLS 1.2+, no resumption (every handshake shows the certificate). */
static int
make_ctx(struct challenge_alpn *a, char **cause)
{
    char why[160];

    if ((a->ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
        SSL_CTX_set_min_proto_version(a->ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_num_tickets(a->ctx, 0) != 1) {
        err_set(cause, "tls-alpn-01: cannot make the TLS context: %s",
                pem_ssl_reason(why, sizeof(why)));
        return -E_CRYPTO;
    }
    SSL_CTX_set_options(a->ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
                                    SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(a->ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_client_hello_cb(a->ctx, on_client_hello, a);
    SSL_CTX_set_tlsext_servername_callback(a->ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(a->ctx, a);
    SSL_CTX_set_alpn_select_cb(a->ctx, on_alpn, a);
    ERR_clear_error();
    return 0;
}

int
challenge_alpn_new(uv_loop_t *loop, const char *const *listen, size_t nlisten, int keep_open,
                   struct challenge_alpn **out, char **cause)
{
    struct challenge_alpn *a;
    int rc;

    *out = NULL;
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return -E_NOMEM;
    challenge_net_init(&a->net, loop, "tls-alpn-01", 443, &alpn_ops, a, on_released);
    if ((rc = make_ctx(a, cause)) != 0 ||
        (rc = challenge_net_configure(&a->net, listen, nlisten, keep_open, cause)) != 0) {
        challenge_alpn_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

int
challenge_alpn_add(struct challenge_alpn *a, const char *identifier, const char *key_authorization,
                   char **cause)
{
    struct alpn_cert *c = NULL;
    char sni[DNS_NAME_MAX + 1];
    size_t klen = key_authorization != NULL ? strlen(key_authorization) : 0;
    int rc;

    if (identifier == NULL || identifier[0] == '\0' || strlen(identifier) > DNS_NAME_MAX) {
        err_set(cause, "tls-alpn-01: the identifier is not 1 to %d characters", DNS_NAME_MAX);
        return -E_BAD_INPUT;
    }
    if (identifier[0] == '*') {
        err_set(cause, "tls-alpn-01 cannot validate the wildcard name %s (use dns-01)",
                identifier);
        return -E_BAD_INPUT;
    }
    if (klen == 0 || klen > KEY_AUTHORIZATION_MAX) {
        err_set(cause, "tls-alpn-01: the key authorization is not 1 to %d characters",
                KEY_AUTHORIZATION_MAX);
        return -E_BAD_INPUT;
    }
    if ((c = find_by_identifier(a, identifier)) != NULL) {
        if (strcmp(c->key_authorization, key_authorization) != 0) {
            err_set(cause,
                    "tls-alpn-01: %s is being validated already with another key "
                    "authorization",
                    identifier);
            return -E_BUSY;
        }
        if ((rc = challenge_net_open(&a->net, cause)) != 0)
            return rc;
        c->count++;
        return 0;
    }
    if (sni_for(identifier, sni, sizeof(sni)) != 0) {
        err_set(cause, "tls-alpn-01: '%s' is neither a DNS name nor an IP address", identifier);
        return -E_BAD_INPUT;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        rc = -E_NOMEM;
        goto fail;
    }
    c->count = 1;
    if ((c->identifier = strdup(identifier)) == NULL || (c->sni = strdup(sni)) == NULL ||
        (c->key_authorization = strdup(key_authorization)) == NULL) {
        rc = -E_NOMEM;
        goto fail;
    }
    /* The certificate names the identifier in lower case, as CAs write it. */
    for (char *p = c->identifier; *p != '\0'; p++)
        *p = lower(*p);
    if ((rc = keys_alpn_cert(c->identifier, key_authorization, &c->key, &c->cert, cause)) != 0)
        goto fail;
    if ((rc = challenge_net_open(&a->net, cause)) != 0)
        goto fail;
    c->next = a->certs;
    a->certs = c;
    return 0;
fail:
    cert_free(c);
    return rc;
}

void
challenge_alpn_remove(struct challenge_alpn *a, const char *identifier)
{
    struct alpn_cert **pp;

    if (identifier == NULL)
        return;
    for (pp = &a->certs; *pp != NULL; pp = &(*pp)->next) {
        struct alpn_cert *c = *pp;

        if (!same_name(c->identifier, identifier))
            continue;
        if (--c->count > 0)
            return;
        *pp = c->next;
        cert_free(c);
        break;
    }
    if (a->certs == NULL)
        challenge_net_idle(&a->net);
}

int
challenge_alpn_set_listen(struct challenge_alpn *a, const char *const *listen, size_t n,
                          int keep_open, char **cause)
{
    int rc;

    if ((rc = challenge_net_configure(&a->net, listen, n, keep_open, cause)) != 0)
        return rc;
    if (a->certs != NULL)
        return challenge_net_open(&a->net, cause);
    challenge_net_idle(&a->net);
    return 0;
}

void
challenge_alpn_set_lookup(struct challenge_alpn *a, const struct challenge_lookup *l)
{
    if (l != NULL)
        a->lookup = *l;
    else
        memset(&a->lookup, 0, sizeof(a->lookup));
}

uint64_t
challenge_alpn_served(const struct challenge_alpn *a)
{
    return a->served;
}

int
challenge_alpn_port(const struct challenge_alpn *a, size_t i)
{
    return challenge_net_port(&a->net, i);
}

void
challenge_alpn_set_timeout(struct challenge_alpn *a, uint64_t ms)
{
    challenge_net_set_timeout(&a->net, ms);
}

void
challenge_alpn_set_limits(struct challenge_alpn *a, const struct challenge_net_limits *limits)
{
    challenge_net_set_limits(&a->net, limits);
}

void
challenge_alpn_use_config(struct challenge_alpn *a, const struct config *config)
{
    challenge_net_use_config(&a->net, config);
}

void
challenge_alpn_free(struct challenge_alpn *a)
{
    if (a == NULL)
        return;
    challenge_net_close(&a->net);
}
