/*
 * Remote TLS probes on the agent's loop: libuv TCP and uv_getaddrinfo,
 * OpenSSL over memory BIOs, so no connect, read or handshake ever blocks.
 * A probe connects, speaks the STARTTLS dialogue when the scheme asks for it
 * (probe-starttls.c), shakes hands, records version, cipher, the chain as
 * sent, OCSP stapling and the verdict of trust_verify, then tries the TLS
 * versions below the policy's minimum one connection each (security level 0
 * on those attempts only) to flag servers that still accept them.
 *
 * A run probes many URLs with at most `concurrency` connections open and a
 * deadline per probe; each result is handed to a callback as it completes.
 * Across all runs at most PROBE_MAX_CONNECTIONS probes are open and
 * PROBE_MAX_RESOLVING resolve a host name (getaddrinfo holds a thread of
 * the pool the CPU work shares); the others wait, and free connections go
 * to the waiting runs in turn.
 * probe_sched runs the configured probes every probe_interval and keeps the
 * last results for the status report.
 */
#ifndef CERTAGENT_PROBE_H
#define CERTAGENT_PROBE_H

#include <msgpack.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "trust.h"

struct env;

enum probe_starttls {
    PROBE_TLS,  /* implicit TLS */
    PROBE_IMAP, /* CAPABILITY / STARTTLS */
    PROBE_POP3, /* CAPA / STLS */
    PROBE_SMTP, /* EHLO / STARTTLS */
};

struct probe_url {
    char *scheme; /* "imaps" */
    char *host;   /* without brackets */
    int port;
    enum probe_starttls starttls;
};

/* Parses URL ("imaps://host[:port][/...]", "tls://host:port").  Words in *cause. */
int probe_url_parse(const char *url, struct probe_url *out, char **cause);
void probe_url_free(struct probe_url *u);

/* Probes open at once, in all runs (each holds a socket). */
#define PROBE_MAX_CONNECTIONS 256
/* Probes resolving a host name at once, in all runs (half the default thread pool). */
#define PROBE_MAX_RESOLVING 2

struct probe_opts {
    uint64_t timeout_ms;
    unsigned concurrency;
    int min_version; /* TLS1_VERSION .. TLS1_3_VERSION */
    /*
     * Only what the server sends (the served check): no chain verification
     * (ctx may be NULL), no attempts below min_version.
     */
    int leaf_only;
    /* NULL, or one server name per URL to send instead of the URL's host (NULL entry: the
     * host's); copied at the start. */
    const char *const *sni;
};

struct probe_result {
    size_t index; /* position in the request */
    char *url;
    char *host;
    int port;
    int starttls;  /* the dialogue was used */
    char *error;   /* why the probe failed; NULL when the handshake worked */
    char *version; /* "TLSv1.3" */
    char *cipher;
    char *sni;              /* server name sent, NULL for an address */
    struct cert_info *sent; /* the chain as the server sent it, leaf first */
    size_t nsent;
    size_t chain_len; /* certificates the server sent */
    /*
     * The chain as sent, judged apart from the chain as completed: 1 when
     * the server sent every certificate between its leaf and an anchor, 0
     * when one came from elsewhere (the trust store, AIA): sent_missing
     * names the first, which a client without it lacks.  -1: not judged
     * (no handshake, or the chain reaches no anchor at all).
     */
    int sent_complete;
    char *sent_missing;
    int have_cert; /* not_after and days_left are known */
    struct trust_report report;
    int have_report;
    int64_t not_after;
    int64_t days_left;
    int ocsp_stapled;
    char *legacy[3]; /* accepted versions below the minimum ("TLSv1.0") */
    size_t nlegacy;
    int legacy_checked; /* every version below the minimum was tried */
    int policy_ok;      /* negotiated >= minimum and nothing older accepted */
    int ok;             /* handshake, trusted, host matches, policy holds */
    char **warnings;
    size_t nwarnings;
    uint64_t ms;     /* how long it took */
    int64_t checked; /* Unix seconds */
};

/* Packs a result map; full adds the chain details. */
void probe_pack_result(msgpack_packer *pk, const struct probe_result *r, int full);

struct probe_run;
/* Called on the loop for each finished probe; r is borrowed for the call. */
typedef void (*probe_result_fn)(void *arg, const struct probe_result *r, size_t done,
                                size_t total);
/* Called once when every probe has finished (or the run was aborted). */
typedef void (*probe_done_fn)(void *arg);

/*
 * Starts probing urls (copied; each must parse) with ctx (taken over, already
 * loaded).  On failure nothing was started and ctx is still the caller's.
 */
int probe_run_start(uv_loop_t *loop, struct trust_ctx *ctx, char *const *urls, size_t n,
                    const struct probe_opts *opts, probe_result_fn on_result,
                    probe_done_fn on_done, void *arg, struct probe_run **out, char **cause);
/* Stops early: open connections are closed, probes not started are dropped, done is
 * still called (once the connections are closed). */
void probe_run_abort(struct probe_run *run);

/* The scheduled probes of the config. */
struct probe_sched;
int probe_sched_start(const struct env *env, struct trust *trust, struct probe_sched **out,
                      char **cause);
/* A config reload (EVENT_CONFIG_RELOADED) re-arms it: new list, interval, options. */
/* Agent stopping: closes the timer and aborts a run in progress. */
void probe_sched_stop(struct probe_sched *s);
void probe_sched_free(struct probe_sched *s);
/* Packs {"probes": [...]} entries for the status reply (a key and an array). */
void probe_sched_pack_status(const struct probe_sched *s, msgpack_packer *pk);
/* TLS1_2_VERSION for "1.2", ... ; 0 when unknown. */
int probe_tls_version(const char *name);

/* probe-starttls.c: the plain-text dialogue before TLS. */
struct starttls {
    enum probe_starttls proto;
    int step;
    int offered;
    unsigned lines;
    unsigned total;
    size_t len;
    char line[1024];
    char caps[256]; /* what the server advertised, for the error message */
};

void starttls_init(struct starttls *st, enum probe_starttls proto);
/*
 * Feeds bytes from the server.  Returns 0 to wait for more, 1 when the
 * server agreed to start TLS, or -E_PROTO with words in *cause.  What to
 * send is appended to out (at most outcap bytes, *outlen set).
 */
int starttls_feed(struct starttls *st, const char *data, size_t len, char *out, size_t outcap,
                  size_t *outlen, char **cause);
/* "IMAP", "POP3", "SMTP". */
const char *starttls_name(enum probe_starttls proto);

#endif
