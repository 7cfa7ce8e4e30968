#include "probe.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "env.h"
#include "err.h"
#include "events.h"
#include "log.h"
#include "proto.h"
#include "strv.h"

/* Bytes a probe sends at most in one STARTTLS step. */
#define STARTTLS_OUT 128
/* A certificate this close to expiry gets a warning. */
#define PROBE_EXPIRY_WARN_DAYS 30
/* Certificates of a sent chain that are described. */
#define PROBE_MAX_SENT 10
/* Addresses of a host name tried one after the other. */
#define PROBE_MAX_ADDRS 8

enum phase {
    PH_RESOLVE,
    PH_CONNECT,
    PH_STARTTLS,
    PH_HANDSHAKE,
};

struct probe {
    struct probe_run *run;
    struct probe_url url;
    struct probe_result res;
    struct sockaddr_storage addrs[PROBE_MAX_ADDRS]; /* tried in order until one answers */
    unsigned naddrs, addr_i;
    uv_getaddrinfo_t gai;
    uv_timer_t timer;
    uv_tcp_t tcp;
    uv_connect_t connect;
    SSL *ssl;
    struct starttls st;
    enum phase phase;
    int legacy;       /* this attempt tries versions below the minimum */
    int legacy_max;   /* highest version of the next legacy attempt */
    int negotiated;   /* version of the attempt that filled the result */
    int next_attempt; /* after this connection closes, connect again */
    int reached_tls;  /* the main attempt got as far as the handshake */
    int timed_out;
    int finishing;
    int tcp_open;
    int timer_open;
    int dns_slot;     /* holds one of the PROBE_MAX_RESOLVING slots */
    char *sni;        /* the server name to send instead of the host's (probe_opts.sni) */
    unsigned pending; /* callbacks still to come: timer, tcp, getaddrinfo */
    uint64_t started;
};

struct probe_run {
    uv_loop_t *loop;
    struct trust_ctx *ctx;
    SSL_CTX *ssl_main, *ssl_legacy;
    struct probe_opts opts;
    struct probe *probes;
    size_t n, next, active, done;
    int aborted;
    int finished;
    struct probe_run *prev_run, *next_run; /* every run of the agent */
    probe_result_fn on_result;
    probe_done_fn on_done;
    void *arg;
    char rbuf[64 * 1024];
};

static void connect_attempt(struct probe *p);
static void judge(struct probe *p);
static void probe_finish(struct probe *p);
static void pump(void);

/*
 * What every run of the agent holds, for the caps in all (the loop is the
 * only thread that touches these).
 */
static struct probe_run *runs;  /* in order of start */
static size_t probes_active;    /* started and not yet released */
static size_t probes_resolving; /* of which wait for getaddrinfo in the thread pool */

/* URLs. */

static const struct {
    const char *scheme;
    int port;
    enum probe_starttls starttls;
} schemes[] = {
    {"https", 443, PROBE_TLS},          {"imaps", 993, PROBE_TLS},
    {"pop3s", 995, PROBE_TLS},          {"smtps", 465, PROBE_TLS},
    {"ldaps", 636, PROBE_TLS},          {"tls", 0, PROBE_TLS},
    {"imap+starttls", 143, PROBE_IMAP}, {"pop3+starttls", 110, PROBE_POP3},
    {"smtp+starttls", 25, PROBE_SMTP},
};

int
probe_url_parse(const char *url, struct probe_url *out, char **cause)
{
    const char *sep = strstr(url, "://"), *h, *end, *colon = NULL;
    size_t i, hlen;
    long port = -1;

    memset(out, 0, sizeof(*out));
    if (sep == NULL) {
        err_set(cause,
                "'%.200s' is not a URL: write SCHEME://HOST[:PORT] with a scheme of "
                "https, imaps, pop3s, smtps, ldaps, imap+starttls, pop3+starttls, "
                "smtp+starttls or tls",
                url);
        return -E_BAD_INPUT;
    }
    for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (strlen(schemes[i].scheme) == (size_t)(sep - url) &&
            strncmp(schemes[i].scheme, url, (size_t)(sep - url)) == 0)
            break;
    }
    if (i == sizeof(schemes) / sizeof(schemes[0])) {
        err_set(cause,
                "'%.200s': unknown scheme '%.*s' (https, imaps, pop3s, smtps, ldaps, "
                "imap+starttls, pop3+starttls, smtp+starttls, tls)",
                url, (int)(sep - url > 40 ? 40 : sep - url), url);
        return -E_BAD_INPUT;
    }
    h = sep + 3;
    end = h + strcspn(h, "/?#");
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));

        if (close == NULL) {
            err_set(cause, "'%.200s': an IPv6 address needs a closing ']'", url);
            return -E_BAD_INPUT;
        }
        hlen = (size_t)(close - h - 1);
        h++;
        if (close[1] == ':')
            colon = close + 1;
        else if (close + 1 != end)
            hlen = 0;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        hlen = (size_t)((colon != NULL ? colon : end) - h);
    }
    if (colon != NULL) {
        port = 0;
        for (const char *c = colon + 1; c < end; c++) {
            if (*c < '0' || *c > '9' || port > 65535) {
                port = -2;
                break;
            }
            port = port * 10 + (*c - '0');
        }
        if (port < 1 || port > 65535 || colon + 1 == end) {
            err_set(cause, "'%.200s': the port must be a number from 1 to 65535", url);
            return -E_BAD_INPUT;
        }
    } else {
        port = schemes[i].port;
    }
    if (hlen == 0 || hlen > 253) {
        err_set(cause, "'%.200s': no host name", url);
        return -E_BAD_INPUT;
    }
    if (port <= 0) {
        err_set(cause, "'%.200s': tls:// needs a port (tls://HOST:PORT)", url);
        return -E_BAD_INPUT;
    }
    for (size_t k = 0; k < hlen; k++) {
        char c = h[k];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':' || c == '%')) {
            err_set(cause, "'%.200s': the host name has a character that is not allowed", url);
            return -E_BAD_INPUT;
        }
    }
    out->scheme = malloc((size_t)(sep - url) + 1);
    out->host = malloc(hlen + 1);
    if (out->scheme == NULL || out->host == NULL) {
        probe_url_free(out);
        return -E_NOMEM;
    }
    memcpy(out->scheme, url, (size_t)(sep - url));
    out->scheme[sep - url] = '\0';
    memcpy(out->host, h, hlen);
    out->host[hlen] = '\0';
    out->port = (int)port;
    out->starttls = schemes[i].starttls;
    return 0;
}

void
probe_url_free(struct probe_url *u)
{
    free(u->scheme);
    free(u->host);
    memset(u, 0, sizeof(*u));
}

int
probe_tls_version(const char *name)
{
    if (name == NULL)
        return 0;
    if (strcmp(name, "1.0") == 0)
        return TLS1_VERSION;
    if (strcmp(name, "1.1") == 0)
        return TLS1_1_VERSION;
    if (strcmp(name, "1.2") == 0)
        return TLS1_2_VERSION;
    if (strcmp(name, "1.3") == 0)
        return TLS1_3_VERSION;
    return 0;
}

static const char *
version_words(int v)
{
    switch (v) {
    case TLS1_VERSION:
        return "TLS 1.0";
    case TLS1_1_VERSION:
        return "TLS 1.1";
    case TLS1_2_VERSION:
        return "TLS 1.2";
    case TLS1_3_VERSION:
        return "TLS 1.3";
    }
    return "an unknown version";
}

/* "TLSv1.0" .. "TLSv1.3" (OpenSSL says "TLSv1" for 1.0). */
static const char *
version_name(int v)
{
    switch (v) {
    case TLS1_VERSION:
        return "TLSv1.0";
    case TLS1_1_VERSION:
        return "TLSv1.1";
    case TLS1_2_VERSION:
        return "TLSv1.2";
    case TLS1_3_VERSION:
        return "TLSv1.3";
    }
    return "unknown";
}

/* Results. */

static void
probe_result_free(struct probe_result *r)
{
    free(r->url);
    free(r->host);
    free(r->error);
    free(r->version);
    free(r->cipher);
    free(r->sni);
    free(r->sent_missing);
    for (size_t i = 0; i < r->nsent; i++)
        pem_cert_info_free(&r->sent[i]);
    free(r->sent);
    trust_report_free(&r->report);
    for (size_t i = 0; i < r->nlegacy; i++)
        free(r->legacy[i]);
    strv_free(r->warnings, r->nwarnings);
    memset(r, 0, sizeof(*r));
}

static void add_warning(struct probe_result *r, const char *fmt, ...) ERR_PRINTF(2, 3);

/* Adds a warning sentence (cut at 767 bytes); lost when out of memory. */
static void
add_warning(struct probe_result *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    strv_vaddf(&r->warnings, &r->nwarnings, 767, fmt, ap);
    va_end(ap);
}

static void
pack_str_or_nil(msgpack_packer *pk, const char *key, const char *v)
{
    if (v != NULL)
        proto_pack_kv_str(pk, key, v);
    else
        proto_pack_kv_nil(pk, key);
}

void
probe_pack_result(msgpack_packer *pk, const struct probe_result *r, int full)
{
    msgpack_pack_map(pk, 25 + (full ? 2 : 0));
    proto_pack_kv_uint(pk, "index", r->index);
    proto_pack_kv_str(pk, "url", r->url);
    proto_pack_kv_str(pk, "host", r->host);
    proto_pack_kv_int(pk, "port", r->port);
    proto_pack_kv_bool(pk, "starttls", r->starttls);
    proto_pack_kv_bool(pk, "ok", r->ok);
    pack_str_or_nil(pk, "error", r->error);
    pack_str_or_nil(pk, "version", r->version);
    pack_str_or_nil(pk, "cipher", r->cipher);
    pack_str_or_nil(pk, "sni", r->sni);
    if (r->have_cert) {
        proto_pack_kv_int(pk, "not_after", r->not_after);
        proto_pack_kv_int(pk, "days_left", r->days_left);
    } else {
        proto_pack_kv_nil(pk, "not_after");
        proto_pack_kv_nil(pk, "days_left");
    }
    proto_pack_kv_bool(pk, "ocsp_stapled", r->ocsp_stapled);
    proto_pack_str(pk, "legacy_accepted");
    proto_pack_str_array(pk, r->legacy, r->nlegacy);
    proto_pack_kv_bool(pk, "legacy_checked", r->legacy_checked);
    proto_pack_kv_bool(pk, "policy_ok", r->policy_ok);
    proto_pack_kv_bool(pk, "trusted", r->have_report && r->report.trusted);
    if (!r->have_report || r->report.host_match < 0)
        proto_pack_kv_nil(pk, "host_match");
    else
        proto_pack_kv_bool(pk, "host_match", r->report.host_match);
    pack_str_or_nil(pk, "missing", r->have_report ? r->report.missing : NULL);
    proto_pack_str(pk, "warnings");
    proto_pack_str_array(pk, r->warnings, r->nwarnings);
    proto_pack_kv_uint(pk, "ms", r->ms);
    proto_pack_kv_int(pk, "checked", r->checked);
    proto_pack_kv_uint(pk, "chain_sent", r->chain_len);
    if (r->sent_complete < 0)
        proto_pack_kv_nil(pk, "server_chain_incomplete");
    else
        proto_pack_kv_bool(pk, "server_chain_incomplete", !r->sent_complete);
    pack_str_or_nil(pk, "server_chain_missing", r->sent_missing);
    if (!full)
        return;
    proto_pack_str(pk, "sent_chain");
    msgpack_pack_array(pk, r->nsent);
    for (size_t i = 0; i < r->nsent; i++) {
        msgpack_pack_map(pk, 5);
        proto_pack_kv_str(pk, "subject", r->sent[i].subject);
        proto_pack_kv_str(pk, "issuer", r->sent[i].issuer);
        proto_pack_kv_str(pk, "fingerprint", r->sent[i].fingerprint);
        proto_pack_kv_int(pk, "not_after", r->sent[i].not_after);
        proto_pack_kv_str(pk, "key", r->sent[i].key_type);
    }
    proto_pack_str(pk, "verify");
    if (r->have_report)
        trust_pack_report(pk, &r->report);
    else
        msgpack_pack_nil(pk);
}

/* Connections. */

static void set_error(struct probe *p, const char *fmt, ...) ERR_PRINTF(2, 3);

static void
set_error(struct probe *p, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    if (p->res.error != NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    p->res.error = strdup(buf);
}

static const char *
phase_words(enum phase ph)
{
    switch (ph) {
    case PH_RESOLVE:
        return "resolving the host name";
    case PH_CONNECT:
        return "connecting";
    case PH_STARTTLS:
        return "the STARTTLS dialogue";
    case PH_HANDSHAKE:
        return "the TLS handshake";
    }
    return "?";
}

static void
maybe_release(struct probe *p)
{
    struct probe_run *run = p->run;

    if (!p->finishing || p->pending > 0)
        return;
    SSL_free(p->ssl);
    p->ssl = NULL;
    probe_result_free(&p->res);
    probe_url_free(&p->url);
    run->active--;
    probes_active--;
    pump();
}

/* Gives back the probe's getaddrinfo slot, if it holds one. */
static void
release_dns(struct probe *p)
{
    if (!p->dns_slot)
        return;
    p->dns_slot = 0;
    probes_resolving--;
}

static void
on_timer_closed(uv_handle_t *h)
{
    struct probe *p = h->data;

    p->pending--;
    p->timer_open = 0;
    maybe_release(p);
}

static void
on_tcp_closed(uv_handle_t *h)
{
    struct probe *p = h->data;

    p->pending--;
    p->tcp_open = 0;
    SSL_free(p->ssl);
    p->ssl = NULL;
    if (p->finishing) {
        maybe_release(p);
        return;
    }
    if (p->next_attempt && !p->timed_out && !p->run->aborted) {
        p->next_attempt = 0;
        connect_attempt(p);
        return;
    }
    probe_finish(p);
}

/* Ends this connection; next says whether another attempt follows. */
static void
end_attempt(struct probe *p, int next)
{
    p->next_attempt = next;
    if (p->tcp_open) {
        if (!uv_is_closing((uv_handle_t *)&p->tcp))
            uv_close((uv_handle_t *)&p->tcp, on_tcp_closed);
        return;
    }
    probe_finish(p);
}

static void
on_write(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows up as a read error or the deadline */
    free(req);
}

static int
send_bytes(struct probe *p, const void *data, size_t len)
{
    uv_write_t *req = malloc(sizeof(*req) + len);
    uv_buf_t buf;
    int rc;

    if (req == NULL)
        return UV_ENOMEM;
    memcpy(req + 1, data, len);
    buf = uv_buf_init((char *)(req + 1), (unsigned)len);
    if ((rc = uv_write(req, (uv_stream_t *)&p->tcp, &buf, 1, on_write)) != 0)
        free(req);
    return rc;
}

/* Sends what OpenSSL wrote into the memory BIO. */
static int
flush_tls(struct probe *p)
{
    BIO *wbio = SSL_get_wbio(p->ssl);
    char buf[16 * 1024];
    int n, rc;

    while ((n = BIO_read(wbio, buf, sizeof(buf))) > 0) {
        if ((rc = send_bytes(p, buf, (size_t)n)) != 0)
            return rc;
    }
    return 0;
}

static void
copy_sent_chain(struct probe *p)
{
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(p->ssl);
    int n = chain != NULL ? sk_X509_num(chain) : 0;

    p->res.chain_len = (size_t)n;
    if (n > PROBE_MAX_SENT)
        n = PROBE_MAX_SENT;
    if (n == 0 || (p->res.sent = calloc((size_t)n, sizeof(*p->res.sent))) == NULL)
        return;
    for (int i = 0; i < n; i++) {
        if (pem_cert_info(sk_X509_value(chain, i), &p->res.sent[p->res.nsent], NULL) == 0)
            p->res.nsent++;
    }
}

/*
 * Judges the chain as the server sent it: every link between the leaf and
 * the anchor must have come from the server (source given_source), or a
 * client without the agent's trust store cannot build it.
 */
static void
judge_sent_chain(struct probe_result *r, const char *given_source)
{
    const struct trust_report *t = &r->report;
    size_t end = t->complete ? t->nlinks - 1 : t->nlinks;

    r->sent_complete = -1;
    for (size_t i = 1; i < end; i++) {
        const char *source = t->links[i].source != NULL ? t->links[i].source : "";

        if (strcmp(source, given_source) != 0) {
            const struct cert_info *ci = &t->links[i].info;

            r->sent_complete = 0;
            r->sent_missing = strdup(ci->common_name[0] != '\0' ? ci->common_name : ci->subject);
            return;
        }
    }
    if (t->complete)
        r->sent_complete = 1;
}

/* Fills the result from a completed handshake. */
static void
collect(struct probe *p)
{
    struct probe_result *r = &p->res;
    const SSL_CIPHER *cipher = SSL_get_current_cipher(p->ssl);
    X509 *leaf = SSL_get0_peer_certificate(p->ssl);
    const unsigned char *ocsp = NULL;
    struct trust_verify_opts vo;
    char *cause = NULL;
    int64_t now = (int64_t)time(NULL);

    free(r->error);
    r->error = NULL;
    p->negotiated = SSL_version(p->ssl);
    r->version = strdup(version_name(p->negotiated));
    r->cipher = cipher != NULL ? strdup(SSL_CIPHER_get_name(cipher)) : NULL;
    r->ocsp_stapled = SSL_get_tlsext_status_ocsp_resp(p->ssl, &ocsp) > 0 && ocsp != NULL;
    copy_sent_chain(p);
    if (leaf == NULL) {
        set_error(p, "the server sent no certificate");
        return;
    }
    if (p->run->opts.leaf_only) {
        if (r->nsent > 0) {
            r->have_cert = 1;
            r->not_after = r->sent[0].not_after;
            r->days_left = pem_days_left(r->not_after, now);
        }
        ERR_clear_error();
        return;
    }
    memset(&vo, 0, sizeof(vo));
    vo.host = p->url.host;
    vo.purpose = TRUST_PURPOSE_SERVER;
    vo.now = now;
    vo.given_source = "sent by the server";
    if (trust_verify(p->run->ctx, leaf, SSL_get_peer_cert_chain(p->ssl), &vo, &r->report,
                     &cause) == 0) {
        r->have_report = 1;
        judge_sent_chain(r, vo.given_source);
    } else
        trust_report_free(&r->report);
    free(cause);
    if (r->nsent > 0) {
        r->have_cert = 1;
        r->not_after = r->sent[0].not_after;
        r->days_left = pem_days_left(r->not_after, now);
    }
    ERR_clear_error();
}

/* Words for a failed handshake, from the OpenSSL error queue. */
static void
handshake_failed(struct probe *p, int sslerr)
{
    char reason[256];
    unsigned long e = ERR_peek_last_error();

    if (e != 0)
        snprintf(reason, sizeof(reason), "%s",
                 ERR_reason_error_string(e) != NULL ? ERR_reason_error_string(e) : "error");
    else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN)
        snprintf(reason, sizeof(reason), "the server closed the connection");
    else
        snprintf(reason, sizeof(reason), "error %d", sslerr);
    ERR_clear_error();
    if (!p->legacy)
        set_error(p, "TLS handshake failed: %s", reason);
}

/* The attempt after this one, given what it found. */
static void
attempt_done(struct probe *p, int handshake_ok)
{
    struct probe_run *run = p->run;
    int v;

    if (!p->legacy) {
        if (handshake_ok)
            collect(p);
        if (!p->reached_tls || run->opts.min_version <= TLS1_VERSION || run->opts.leaf_only) {
            p->res.legacy_checked = run->opts.min_version <= TLS1_VERSION;
            end_attempt(p, 0);
            return;
        }
        p->legacy = 1;
        p->legacy_max = run->opts.min_version - 1;
        end_attempt(p, 1);
        return;
    }
    if (!handshake_ok) {
        p->res.legacy_checked = 1;
        end_attempt(p, 0);
        return;
    }
    v = SSL_version(p->ssl);
    if (p->res.nlegacy < 3 && (p->res.legacy[p->res.nlegacy] = strdup(version_name(v))) != NULL)
        p->res.nlegacy++;
    if (p->res.version == NULL) /* only an old version works: describe that one */
        collect(p);
    p->legacy_max = v - 1;
    if (p->legacy_max < TLS1_VERSION) {
        p->res.legacy_checked = 1;
        end_attempt(p, 0);
        return;
    }
    end_attempt(p, 1);
}

static void
tls_step(struct probe *p)
{
    int r, rc;

    ERR_clear_error(); /* the queue is shared by every probe on this thread */
    r = SSL_do_handshake(p->ssl);

    if ((rc = flush_tls(p)) != 0) {
        if (!p->legacy)
            set_error(p, "sending to %s:%d: %s", p->url.host, p->url.port, uv_strerror(rc));
        attempt_done(p, 0);
        return;
    }
    if (r == 1) {
        attempt_done(p, 1);
        return;
    }
    rc = SSL_get_error(p->ssl, r);
    if (rc == SSL_ERROR_WANT_READ)
        return;
    handshake_failed(p, rc);
    attempt_done(p, 0);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct probe *p = h->data;

    (void)suggested;
    /* One buffer per run: every read is consumed before the next is allocated. */
    *buf = uv_buf_init(p->run->rbuf, sizeof(p->run->rbuf));
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct probe *p = s->data;

    if (nread == 0 || p->finishing || p->next_attempt || uv_is_closing((uv_handle_t *)s))
        return;
    if (nread < 0) {
        uv_read_stop(s);
        if (p->phase == PH_HANDSHAKE) {
            handshake_failed(p, SSL_ERROR_SYSCALL);
        } else if (!p->legacy) {
            set_error(p, "the server closed the connection during %s%s%s", phase_words(p->phase),
                      nread == UV_EOF ? "" : ": ", nread == UV_EOF ? "" : uv_strerror((int)nread));
        }
        attempt_done(p, 0);
        return;
    }
    if (p->phase == PH_STARTTLS) {
        char out[STARTTLS_OUT], *cause = NULL;
        size_t outlen = 0;
        int rc =
            starttls_feed(&p->st, buf->base, (size_t)nread, out, sizeof(out), &outlen, &cause);

        if (outlen > 0 && send_bytes(p, out, outlen) != 0 && rc == 0) {
            err_set(&cause, "cannot send to the server");
            rc = -E_IO;
        }
        if (rc < 0) {
            if (!p->legacy)
                set_error(p, "%s", cause != NULL ? cause : "STARTTLS failed");
            free(cause);
            p->reached_tls = 0;
            attempt_done(p, 0);
            return;
        }
        free(cause);
        if (rc == 1) {
            p->phase = PH_HANDSHAKE;
            if (!p->legacy)
                p->reached_tls = 1;
            tls_step(p);
        }
        return;
    }
    if (BIO_write(SSL_get_rbio(p->ssl), buf->base, (int)nread) != (int)nread) {
        set_error(p, "out of memory");
        attempt_done(p, 0);
        return;
    }
    tls_step(p);
}

static void
on_connect(uv_connect_t *req, int status)
{
    struct probe *p = req->data;
    int rc;

    if (status == UV_ECANCELED || p->finishing || uv_is_closing((uv_handle_t *)&p->tcp))
        return;
    if (status != 0) {
        if (p->addr_i + 1 < p->naddrs) { /* the host's next address */
            p->addr_i++;
            end_attempt(p, 1);
            return;
        }
        if (!p->legacy)
            set_error(p, "cannot connect to %s port %d: %s", p->url.host, p->url.port,
                      uv_strerror(status));
        attempt_done(p, 0);
        return;
    }
    if ((rc = uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read)) != 0) {
        set_error(p, "cannot read: %s", uv_strerror(rc));
        attempt_done(p, 0);
        return;
    }
    if (p->url.starttls != PROBE_TLS) {
        p->phase = PH_STARTTLS; /* the server speaks first */
        return;
    }
    p->phase = PH_HANDSHAKE;
    if (!p->legacy)
        p->reached_tls = 1;
    tls_step(p);
}

static int
is_address(const char *host)
{
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;

    return uv_ip4_addr(host, 0, &a4) == 0 || uv_ip6_addr(host, 0, &a6) == 0;
}

/* A new SSL for this attempt, on memory BIOs. */
static int
new_ssl(struct probe *p)
{
    struct probe_run *run = p->run;
    BIO *rbio = NULL, *wbio = NULL;

    p->ssl = SSL_new(p->legacy ? run->ssl_legacy : run->ssl_main);
    rbio = BIO_new(BIO_s_mem());
    wbio = BIO_new(BIO_s_mem());
    if (p->ssl == NULL || rbio == NULL || wbio == NULL) {
        BIO_free(rbio);
        BIO_free(wbio);
        return -E_NOMEM;
    }
    SSL_set_bio(p->ssl, rbio, wbio);
    SSL_set_connect_state(p->ssl);
    if (p->legacy && (SSL_set_min_proto_version(p->ssl, TLS1_VERSION) != 1 ||
                      SSL_set_max_proto_version(p->ssl, p->legacy_max) != 1))
        return -E_CRYPTO;
    if (p->sni != NULL
            ? SSL_set_tlsext_host_name(p->ssl, p->sni) != 1
            : !is_address(p->url.host) && SSL_set_tlsext_host_name(p->ssl, p->url.host) != 1)
        return -E_CRYPTO;
    if (SSL_set_tlsext_status_type(p->ssl, TLSEXT_STATUSTYPE_ocsp) != 1)
        return -E_CRYPTO;
    return 0;
}

static void
connect_attempt(struct probe *p)
{
    struct probe_run *run = p->run;
    int rc;

    p->phase = PH_CONNECT;
    starttls_init(&p->st, p->url.starttls);
    if (new_ssl(p) != 0) {
        ERR_clear_error();
        set_error(p, "cannot set up TLS");
        probe_finish(p);
        return;
    }
    if ((rc = uv_tcp_init(run->loop, &p->tcp)) != 0) {
        set_error(p, "cannot open a socket: %s", uv_strerror(rc));
        probe_finish(p);
        return;
    }
    p->tcp.data = p;
    p->tcp_open = 1;
    p->pending++;
    p->connect.data = p;
    if ((rc = uv_tcp_connect(&p->connect, &p->tcp, (const struct sockaddr *)&p->addrs[p->addr_i],
                             on_connect)) != 0) {
        set_error(p, "cannot connect to %s port %d: %s", p->url.host, p->url.port,
                  uv_strerror(rc));
        end_attempt(p, 0);
    }
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct probe *p = req->data;

    p->pending--;
    release_dns(p);
    if (p->finishing || status == UV_ECANCELED) {
        uv_freeaddrinfo(res);
        maybe_release(p);
        pump();
        return;
    }
    pump(); /* the slot may let another run resolve */
    if (status != 0 || res == NULL) {
        set_error(p, "cannot resolve %s: %s", p->url.host, uv_strerror(status));
        uv_freeaddrinfo(res);
        probe_finish(p);
        return;
    }
    for (struct addrinfo *ai = res; ai != NULL && p->naddrs < PROBE_MAX_ADDRS; ai = ai->ai_next) {
        struct sockaddr_storage *a = &p->addrs[p->naddrs];

        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof(*a))
            continue;
        memcpy(a, ai->ai_addr, ai->ai_addrlen);
        /* sin_port and sin6_port share their offset. */
        ((struct sockaddr_in *)a)->sin_port = htons((uint16_t)p->url.port);
        p->naddrs++;
    }
    uv_freeaddrinfo(res);
    if (p->naddrs == 0) {
        set_error(p, "cannot resolve %s: no IPv4 or IPv6 address", p->url.host);
        probe_finish(p);
        return;
    }
    connect_attempt(p);
}

static void
on_deadline(uv_timer_t *t)
{
    struct probe *p = t->data;

    p->timed_out = 1;
    if (!p->legacy || p->res.version == NULL)
        set_error(p, "timed out after %llu ms during %s",
                  (unsigned long long)p->run->opts.timeout_ms, phase_words(p->phase));
    if (p->phase == PH_RESOLVE) {
        uv_cancel((uv_req_t *)&p->gai);
        probe_finish(p);
        return;
    }
    end_attempt(p, 0);
}

static void
start_probe(struct probe *p)
{
    struct probe_run *run = p->run;
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    struct addrinfo hints;
    int rc;

    p->started = uv_now(run->loop);
    p->res.checked = (int64_t)time(NULL);
    p->res.starttls = p->url.starttls != PROBE_TLS;
    if (p->sni != NULL)
        p->res.sni = strdup(p->sni);
    else if (!is_address(p->url.host))
        p->res.sni = strdup(p->url.host);
    if ((rc = uv_timer_init(run->loop, &p->timer)) != 0) {
        /* Nothing is open: report and free without waiting for a callback. */
        set_error(p, "cannot start a timer: %s", uv_strerror(rc));
        p->finishing = 1;
        release_dns(p);
        judge(p);
        run->on_result(run->arg, &p->res, ++run->done, run->n);
        probe_result_free(&p->res);
        probe_url_free(&p->url);
        run->active--;
        probes_active--;
        return;
    }
    p->timer.data = p;
    p->timer_open = 1;
    p->pending++;
    uv_timer_start(&p->timer, on_deadline, run->opts.timeout_ms, 0);
    if (uv_ip4_addr(p->url.host, p->url.port, &a4) == 0) {
        memcpy(&p->addrs[0], &a4, sizeof(a4));
        p->naddrs = 1;
        connect_attempt(p);
        return;
    }
    if (uv_ip6_addr(p->url.host, p->url.port, &a6) == 0) {
        memcpy(&p->addrs[0], &a6, sizeof(a6));
        p->naddrs = 1;
        connect_attempt(p);
        return;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    p->phase = PH_RESOLVE;
    p->gai.data = p;
    if ((rc = uv_getaddrinfo(run->loop, &p->gai, on_resolved, p->url.host, NULL, &hints)) != 0) {
        release_dns(p);
        set_error(p, "cannot resolve %s: %s", p->url.host, uv_strerror(rc));
        probe_finish(p);
        return;
    }
    p->pending++;
}

/* The verdict and the warnings, once every attempt is over. */
static void
judge(struct probe *p)
{
    struct probe_result *r = &p->res;
    int min = p->run->opts.min_version;
    char label[320];

    snprintf(label, sizeof(label), "%s://%s%s%s:%d", p->url.scheme,
             strchr(p->url.host, ':') ? "[" : "", p->url.host, strchr(p->url.host, ':') ? "]" : "",
             p->url.port);
    if (r->error != NULL) {
        add_warning(r, "%s: %s", label, r->error);
        r->ok = 0;
        return;
    }
    for (size_t i = 0; i < r->nlegacy; i++) {
        const char *v = r->legacy[i];

        add_warning(r, "%s offers TLS %s", label, strncmp(v, "TLSv", 4) == 0 ? v + 4 : v);
    }
    if (p->negotiated < min)
        add_warning(r, "%s offers only %s; the policy asks for TLS %s or newer", label,
                    version_words(p->negotiated), version_words(min) + 4);
    if (!r->legacy_checked && min > TLS1_VERSION)
        add_warning(r, "%s: could not check for versions older than %s (%s)", label,
                    version_words(min), p->timed_out ? "timed out" : "connection failed");
    for (size_t i = 0; r->have_report && i < r->report.nproblems; i++)
        add_warning(r, "%s: %s", label, r->report.problems[i]);
    if (r->sent_complete == 0)
        add_warning(r,
                    "%s: server chain incomplete: sends %zu certificate%s; clients without '%s' "
                    "cannot build a chain (the server must send its intermediates after its "
                    "certificate)",
                    label, r->chain_len, r->chain_len == 1 ? "" : "s",
                    r->sent_missing != NULL ? r->sent_missing : "its issuer");
    if (r->have_cert && r->days_left >= 0 && r->days_left < PROBE_EXPIRY_WARN_DAYS)
        add_warning(r, "%s: the certificate expires in %lld days", label, (long long)r->days_left);
    r->policy_ok = p->negotiated >= min && r->nlegacy == 0;
    r->ok = r->policy_ok && r->have_report && r->report.trusted && r->sent_complete != 0;
}

static void
probe_finish(struct probe *p)
{
    struct probe_run *run = p->run;

    if (p->finishing)
        return;
    p->finishing = 1;
    p->res.ms = uv_now(run->loop) - p->started;
    if (p->tcp_open && !uv_is_closing((uv_handle_t *)&p->tcp)) {
        p->next_attempt = 0;
        uv_close((uv_handle_t *)&p->tcp, on_tcp_closed);
    }
    if (!run->aborted) {
        judge(p);
        run->done++;
        run->on_result(run->arg, &p->res, run->done, run->n);
    } else {
        run->done++;
    }
    if (p->timer_open && !uv_is_closing((uv_handle_t *)&p->timer)) {
        uv_timer_stop(&p->timer);
        uv_close((uv_handle_t *)&p->timer, on_timer_closed);
    }
    maybe_release(p);
}

static void
run_free(struct probe_run *run)
{
    if (run->prev_run != NULL)
        run->prev_run->next_run = run->next_run;
    else if (runs == run)
        runs = run->next_run;
    if (run->next_run != NULL)
        run->next_run->prev_run = run->prev_run;
    for (size_t i = 0; i < run->n; i++) {
        probe_result_free(&run->probes[i].res);
        probe_url_free(&run->probes[i].url);
        free(run->probes[i].sni);
    }
    free(run->probes);
    SSL_CTX_free(run->ssl_main);
    SSL_CTX_free(run->ssl_legacy);
    trust_ctx_free(run->ctx);
    free(run);
}

static int is_address(const char *host);

/*
 * Starts the run's next probe if its own concurrency and the caps in all
 * allow (PROBE_MAX_CONNECTIONS, and PROBE_MAX_RESOLVING for a host name).
 * 1 when one was started.
 */
static int
start_one(struct probe_run *run)
{
    struct probe *p;

    if (run->aborted || run->next >= run->n || run->active >= run->opts.concurrency ||
        probes_active >= PROBE_MAX_CONNECTIONS)
        return 0;
    p = &run->probes[run->next];
    if (!is_address(p->url.host)) {
        if (probes_resolving >= PROBE_MAX_RESOLVING)
            return 0;
        p->dns_slot = 1;
        probes_resolving++;
    }
    run->next++;
    run->active++;
    probes_active++;
    start_probe(p);
    return 1;
}

/* An aborted run drops what it has not started; a run with nothing left ends. */
static void
check_finished(struct probe_run *run)
{
    if (run->aborted) {
        run->done += run->n - run->next;
        run->next = run->n;
    }
    if (run->active == 0 && run->next == run->n && !run->finished) {
        run->finished = 1;
        run->on_done(run->arg);
        run_free(run);
    }
}

/*
 * Hands free connections to the runs that wait for one, one probe per run
 * in turn so that a large run does not starve the others, then ends the
 * runs that are over.  Called whenever a probe releases its connection or
 * its getaddrinfo slot, and when a run starts or is aborted.
 */
static void
pump(void)
{
    static int pumping, again;
    struct probe_run *run, *next;
    int started;

    if (pumping) {
        again = 1;
        return;
    }
    pumping = 1;
    do {
        again = 0;
        do {
            started = 0;
            for (run = runs; run != NULL; run = run->next_run)
                started |= start_one(run);
        } while (started);
        for (run = runs; run != NULL; run = next) {
            next = run->next_run;
            check_finished(run);
        }
    } while (again);
    pumping = 0;
}

static SSL_CTX *
new_ssl_ctx(int min_version, int legacy)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (legacy || min_version < TLS1_2_VERSION) {
        /* Old versions need SHA-1 and small groups: level 0 on these attempts only. */
        SSL_CTX_set_security_level(ctx, 0);
        if (SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0") != 1)
            goto fail;
    }
    if (SSL_CTX_set_min_proto_version(ctx, legacy ? TLS1_VERSION : min_version) != 1)
        goto fail;
    if (SSL_CTX_set_max_proto_version(ctx, 0) != 1)
        goto fail;
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int
probe_run_start(uv_loop_t *loop, struct trust_ctx *ctx, char *const *urls, size_t n,
                const struct probe_opts *opts, probe_result_fn on_result, probe_done_fn on_done,
                void *arg, struct probe_run **out, char **cause)
{
    struct probe_run *run = calloc(1, sizeof(*run));
    int rc = -E_NOMEM;

    *out = NULL;
    if (run == NULL)
        return -E_NOMEM;
    run->loop = loop;
    run->opts = *opts;
    run->opts.sni = NULL; /* copied into each probe */
    if (run->opts.concurrency == 0)
        run->opts.concurrency = 1;
    run->on_result = on_result;
    run->on_done = on_done;
    run->arg = arg;
    run->n = n;
    if (n == 0 || (run->probes = calloc(n, sizeof(*run->probes))) == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        struct probe *p = &run->probes[i];

        p->run = run;
        p->res.index = i;
        p->res.legacy_checked = 0;
        p->res.sent_complete = -1; /* judged after a handshake */
        if ((rc = probe_url_parse(urls[i], &p->url, cause)) != 0)
            goto fail;
        if (opts->sni != NULL && opts->sni[i] != NULL && (p->sni = strdup(opts->sni[i])) == NULL) {
            rc = -E_NOMEM;
            goto fail;
        }
        p->res.url = strdup(urls[i]);
        p->res.host = strdup(p->url.host);
        p->res.port = p->url.port;
        if (p->res.url == NULL || p->res.host == NULL) {
            rc = -E_NOMEM;
            goto fail;
        }
    }
    run->ssl_main = new_ssl_ctx(opts->min_version, 0);
    run->ssl_legacy = new_ssl_ctx(TLS1_VERSION, 1);
    if (run->ssl_main == NULL || run->ssl_legacy == NULL) {
        char reason[256];

        err_set(cause, "cannot set up TLS: %s", pem_ssl_reason(reason, sizeof(reason)));
        rc = -E_CRYPTO;
        goto fail;
    }
    run->ctx = ctx;
    *out = run;
    /* Last in the list: it waits behind the runs already there for free connections. */
    if (runs == NULL) {
        runs = run;
    } else {
        struct probe_run *last = runs;

        while (last->next_run != NULL)
            last = last->next_run;
        last->next_run = run;
        run->prev_run = last;
    }
    pump();
    return 0;
fail:
    run_free(run);
    return rc;
}

void
probe_run_abort(struct probe_run *run)
{
    size_t started = run->next;

    if (run->aborted)
        return;
    run->aborted = 1;
    for (size_t i = 0; i < started; i++) {
        struct probe *p = &run->probes[i];

        if (p->finishing)
            continue;
        p->timed_out = 1;
        if (p->phase == PH_RESOLVE && !p->tcp_open)
            uv_cancel((uv_req_t *)&p->gai);
        probe_finish(p);
    }
    pump();
}

/* The scheduled probes. */

struct sched_load {
    uv_work_t work;
    struct probe_sched *sched;
    struct trust_ctx *ctx;
    int rc;
    char *cause;
};

struct probe_sched {
    const struct env *env;
    struct trust *trust;
    uv_timer_t timer;
    int timer_open;
    int running; /* loading the trust context or probing */
    int rerun;   /* the config changed during a run: run again after it */
    int stopping;
    struct probe_run *run;
    struct probe_result *last, *next;
    size_t nlast, nnext;
    int64_t last_run;
};

static void sched_arm(struct probe_sched *s, uint64_t first);

static void
results_free(struct probe_result *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        probe_result_free(&v[i]);
    free(v);
}

static char *
dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* A summary copy (no chain details) for the status report. */
static void
result_copy(struct probe_result *d, const struct probe_result *s)
{
    *d = *s;
    d->url = dup_or_null(s->url);
    d->host = dup_or_null(s->host);
    d->error = dup_or_null(s->error);
    d->version = dup_or_null(s->version);
    d->cipher = dup_or_null(s->cipher);
    d->sni = dup_or_null(s->sni);
    d->sent_missing = dup_or_null(s->sent_missing);
    d->sent = NULL;
    d->nsent = 0;
    memset(&d->report, 0, sizeof(d->report));
    d->report.trusted = s->report.trusted;
    d->report.host_match = s->report.host_match;
    d->report.missing = dup_or_null(s->report.missing);
    for (size_t i = 0; i < s->nlegacy; i++)
        d->legacy[i] = dup_or_null(s->legacy[i]);
    d->warnings = NULL;
    d->nwarnings = 0;
    for (size_t i = 0; i < s->nwarnings; i++)
        add_warning(d, "%s", s->warnings[i]);
}

static int
sched_keep(struct probe_sched *s, const struct probe_result *r)
{
    struct probe_result *nv = realloc(s->next, (s->nnext + 1) * sizeof(*nv));

    if (nv == NULL)
        return -E_NOMEM;
    s->next = nv;
    result_copy(&s->next[s->nnext++], r);
    return 0;
}

static void
sched_on_result(void *arg, const struct probe_result *r, size_t done, size_t total)
{
    struct probe_sched *s = arg;

    (void)done;
    (void)total;
    for (size_t i = 0; i < r->nwarnings; i++)
        log_warn("probe: %s", r->warnings[i]);
    if (r->nwarnings == 0)
        log_debug("probe %s: %s, %s, %lld days left", r->url, r->version ? r->version : "-",
                  r->cipher ? r->cipher : "-", (long long)r->days_left);
    if (sched_keep(s, r) != 0)
        log_error("probe %s: out of memory keeping the result", r->url);
}

static void
sched_on_done(void *arg)
{
    struct probe_sched *s = arg;

    results_free(s->last, s->nlast);
    s->last = s->next;
    s->nlast = s->nnext;
    s->next = NULL;
    s->nnext = 0;
    s->run = NULL;
    s->running = 0;
    s->last_run = (int64_t)time(NULL);
    if (s->rerun && !s->stopping) {
        s->rerun = 0;
        sched_arm(s, 0);
    }
}

static void
sched_load_work(uv_work_t *w)
{
    struct sched_load *l = (struct sched_load *)w;

    l->rc = trust_ctx_load(l->ctx, &l->cause);
}

static void
sched_load_after(uv_work_t *w, int status)
{
    struct sched_load *l = (struct sched_load *)w;
    struct probe_sched *s = l->sched;
    const struct config *config = s->env->config;
    const struct config_list *urls = &config->probes;
    struct probe_opts opts;
    char **valid = NULL, *cause = NULL;
    size_t nvalid = 0;
    int rc;

    (*s->env->jobs)--;
    if (status != 0 || l->rc != 0 || s->stopping || urls->n == 0) {
        if (l->rc != 0)
            log_error("probes: %s", l->cause != NULL ? l->cause : err_message(l->rc));
        trust_ctx_free(l->ctx);
        s->running = 0;
        goto out;
    }
    if ((valid = calloc(urls->n, sizeof(*valid))) == NULL) {
        trust_ctx_free(l->ctx);
        s->running = 0;
        goto out;
    }
    /* Bad URLs in the config are reported in status, the others still run. */
    for (size_t i = 0; i < urls->n; i++) {
        struct probe_url u;
        struct probe_result r;

        if (probe_url_parse(urls->items[i], &u, &cause) == 0) {
            probe_url_free(&u);
            valid[nvalid++] = urls->items[i];
            continue;
        }
        memset(&r, 0, sizeof(r));
        r.sent_complete = -1;
        r.url = urls->items[i];
        r.host = (char *)"";
        r.error = cause;
        r.checked = (int64_t)time(NULL);
        log_warn("probe: %s", cause != NULL ? cause : urls->items[i]);
        add_warning(&r, "%s", cause != NULL ? cause : "bad probe URL");
        if (sched_keep(s, &r) != 0)
            log_error("probes: out of memory");
        for (size_t k = 0; k < r.nwarnings; k++)
            free(r.warnings[k]);
        free(r.warnings);
        free(cause);
        cause = NULL;
    }
    memset(&opts, 0, sizeof(opts));
    opts.timeout_ms = (uint64_t)config->probe_timeout * 1000u;
    opts.concurrency = (unsigned)config->probe_concurrency;
    opts.min_version = probe_tls_version(config->probe_min_tls);
    if (nvalid == 0) {
        trust_ctx_free(l->ctx);
        sched_on_done(s);
        goto out;
    }
    log_debug("probes: checking %zu server(s)", nvalid);
    rc = probe_run_start(s->env->loop, l->ctx, valid, nvalid, &opts, sched_on_result,
                         sched_on_done, s, &s->run, &cause);
    if (rc != 0) {
        log_error("probes: %s", cause != NULL ? cause : err_message(rc));
        trust_ctx_free(l->ctx);
        s->running = 0;
    }
out:
    free(cause);
    free(valid);
    free(l->cause);
    free(l);
}

static void
sched_fire(uv_timer_t *t)
{
    struct probe_sched *s = t->data;
    const struct env *env = s->env;
    struct sched_load *l;
    int rc;

    if (env->config->probes.n == 0) {
        /* No probes (any more): nothing stale in status. */
        results_free(s->last, s->nlast);
        s->last = NULL;
        s->nlast = 0;
        return;
    }
    if (s->running) {
        s->rerun = 1;
        return;
    }
    if (s->stopping)
        return;
    if ((l = calloc(1, sizeof(*l))) == NULL)
        return;
    l->sched = s;
    if ((l->ctx = trust_ctx_new(s->trust, env->config->trust_system_roots)) == NULL) {
        free(l);
        return;
    }
    if ((rc = uv_queue_work(env->loop, &l->work, sched_load_work, sched_load_after)) != 0) {
        log_error("probes: cannot queue work: %s", uv_strerror(rc));
        trust_ctx_free(l->ctx);
        free(l);
        return;
    }
    (*env->jobs)++;
    s->running = 1;
}

static void
sched_arm(struct probe_sched *s, uint64_t first)
{
    uint64_t every = (uint64_t)s->env->config->probe_interval * 1000u;

    if (s->timer_open)
        uv_timer_start(&s->timer, sched_fire, first, every);
}

/* A config reload: the probes list and the interval may have changed. */
static void
on_config_reloaded(void *arg, const struct event *ev)
{
    struct probe_sched *s = arg;

    (void)ev;
    if (!s->stopping)
        sched_arm(s, 0);
}

int
probe_sched_start(const struct env *env, struct trust *trust, struct probe_sched **out,
                  char **cause)
{
    struct probe_sched *s = calloc(1, sizeof(*s));
    int rc;

    *out = NULL;
    if (s == NULL)
        return -E_NOMEM;
    s->env = env;
    s->trust = trust;
    if (events_subscribe(env->events, EVENT_MASK(EVENT_CONFIG_RELOADED), on_config_reloaded, s) !=
        0) {
        free(s);
        return -E_NOMEM;
    }
    if ((rc = uv_timer_init(env->loop, &s->timer)) != 0) {
        err_set(cause, "cannot start the probe timer: %s", uv_strerror(rc));
        events_unsubscribe(env->events, on_config_reloaded, s);
        free(s);
        return -E_INTERNAL;
    }
    s->timer.data = s;
    s->timer_open = 1;
    /* The timer must not keep the loop alive on its own. */
    uv_unref((uv_handle_t *)&s->timer);
    sched_arm(s, 0);
    *out = s;
    return 0;
}

static void
sched_timer_closed(uv_handle_t *h)
{
    (void)h;
}

void
probe_sched_stop(struct probe_sched *s)
{
    if (s == NULL || s->stopping)
        return;
    s->stopping = 1;
    if (s->timer_open) {
        uv_close((uv_handle_t *)&s->timer, sched_timer_closed);
        s->timer_open = 0;
    }
    if (s->run != NULL)
        probe_run_abort(s->run);
}

void
probe_sched_free(struct probe_sched *s)
{
    if (s == NULL)
        return;
    events_unsubscribe(s->env->events, on_config_reloaded, s);
    results_free(s->last, s->nlast);
    results_free(s->next, s->nnext);
    free(s);
}

void
probe_sched_pack_status(const struct probe_sched *s, msgpack_packer *pk)
{
    size_t n = s != NULL ? s->nlast : 0;

    proto_pack_str(pk, "probes");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        probe_pack_result(pk, &s->last[i], 0);
}
