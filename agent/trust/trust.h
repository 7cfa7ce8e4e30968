/*
 * The trust store: anchors (self-signed roots) and intermediates the agent
 * keeps under STATE/trust/roots and STATE/trust/intermediates, one PEM file
 * per certificate named by its SHA-256 fingerprint, and chain building with
 * an explanation of every link.
 *
 * The index (struct trust) lives on the loop.  File writes, the system
 * bundle and chain building run in the thread pool: those functions say so.
 * Chain building never touches the network: when an issuer is missing and
 * fetching is allowed, trust_verify names the AIA caIssuers URL to fetch
 * (trust_report.fetch_url); the caller fetches it without holding a pool
 * thread (aia.h: libcurl multi on the loop) and verifies again with the
 * reply in trust_verify_opts.fetched.
 */
#ifndef CERTAGENT_TRUST_H
#define CERTAGENT_TRUST_H

#include <msgpack.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "pem.h"

struct trust_entry {
    X509 *cert;
    struct cert_info info;
    char *id;         /* fingerprint as 64 upper-case hex digits (the file name) */
    int intermediate; /* 0: a trust anchor */
};

struct trust {
    char *dir; /* STATE/trust */
    struct trust_entry *v;
    size_t n, cap;
    int busy; /* a change is in progress */
    /* Bumped by every insert and delete: what was checked against another one is stale
     * (the count alone misses a removal followed by an addition). */
    unsigned long generation;
    /* The last update of the system store, for trust show. */
    int64_t system_updated;
    char *system_result;
};

/* Loads STATE/trust (created when missing).  Runs before the loop starts. */
int trust_open(const char *state_dir, struct trust **out, char **cause);
void trust_close(struct trust *t);

/*
 * Finds an entry by fingerprint: 64 hex digits with or without colons, or a
 * unique prefix of at least 8.  -E_NOT_FOUND or -E_BAD_INPUT with words.
 */
int trust_find(const struct trust *t, const char *fingerprint, size_t *index, char **cause);
/* Index of the entry with this id, or -1. */
long trust_index_of(const struct trust *t, const char *id);
/* Adds an entry (takes a reference to cert) once its file is written. */
int trust_insert(struct trust *t, X509 *cert, int intermediate, char **cause);
/* Drops entry i from the index. */
void trust_delete(struct trust *t, size_t i);

/* Pool thread: writes or removes the entry's file under dir (STATE/trust). */
int trust_file_write(const char *dir, X509 *cert, const char *id, int intermediate, char **cause);
int trust_file_remove(const char *dir, const char *id, int intermediate, char **cause);
/*
 * Pool thread: the copy of an anchor in the system directory
 * (certagent-ID16.crt).  The directory is walked without following a link
 * and must be safe (fsutil_dir_open: owned by root or the agent, not
 * writable by others); it is never created.  A missing one has nothing to
 * remove.
 */
int trust_system_write(const char *sysdir, X509 *cert, const char *id, char **cause);
int trust_system_remove(const char *sysdir, const char *id, char **cause);
/* The id (hex fingerprint) of cert into buf of at least 65 bytes. */
int trust_cert_id(X509 *cert, char *buf, size_t len);

/*
 * What chain building trusts: the agent's anchors and intermediates, plus
 * the operating system's bundle when asked.  trust_ctx_new runs on the loop
 * (references only); trust_ctx_load in the pool (it reads the bundle).
 */
struct trust_ctx {
    X509_STORE *store;
    STACK_OF(X509) * anchors;       /* every trusted certificate */
    STACK_OF(X509) * own_anchors;   /* the agent's */
    STACK_OF(X509) * intermediates; /* the agent's */
    int system_roots;
};
struct trust_ctx *trust_ctx_new(const struct trust *t, int system_roots);
int trust_ctx_load(struct trust_ctx *ctx, char **cause);
void trust_ctx_free(struct trust_ctx *ctx);

enum trust_purpose {
    TRUST_PURPOSE_SERVER,
    TRUST_PURPOSE_CLIENT,
};

/* AIA caIssuers URLs fetched for one verification, at most this many. */
#define TRUST_AIA_MAX_FETCHES 4

/* One AIA caIssuers fetch and what came back (aia.c fills it). */
struct trust_fetched {
    char *url;
    unsigned char *data; /* the reply body (DER, PEM or PKCS#7), NULL on failure */
    size_t len;
    char *error; /* why the fetch failed, in words, or NULL */
};
void trust_fetched_clear(struct trust_fetched *f);

struct trust_verify_opts {
    const char *host; /* NULL: no host-name check */
    enum trust_purpose purpose;
    /* A missing issuer's http:// AIA caIssuers URL may be fetched: see fetch_url. */
    int fetch;
    const struct trust_fetched *fetched; /* the fetches done so far, in order */
    size_t nfetched;
    const char *given_source; /* label of the given certificates; NULL: "given" */
    int64_t now;
};

struct trust_link {
    struct cert_info info;
    char *source;  /* "leaf", "given", "trust store", "system (anchor)", "fetched from URL" */
    char *problem; /* NULL when this link is fine */
};

struct trust_report {
    struct trust_link *links; /* leaf first, anchor last when the chain is complete */
    size_t nlinks;
    char **problems; /* every problem, in words */
    size_t nproblems;
    int complete;   /* the chain reaches an anchor */
    int trusted;    /* complete, OpenSSL agrees, and no problem */
    int host_match; /* -1 not checked, 0 no, 1 yes */
    char *missing;  /* subject of the first missing issuer, or NULL */
    /*
     * With opts->fetch: the URL to fetch before the chain can be judged.
     * The report is not final; fetch it, append it to opts->fetched and
     * call trust_verify again.  NULL otherwise.
     */
    char *fetch_url;
};

/*
 * Builds and explains the chain of leaf with the certificates in given (may
 * be NULL), the context's intermediates and the replies of opts->fetched
 * (DER, PEM or PKCS#7).  Fills r even when the chain is bad; returns nonzero
 * only on a failure to run at all.  Only http:// URLs are fetched (the
 * certificates are signed: TLS would add nothing but a second chain to
 * trust), at most TRUST_AIA_MAX_FETCHES per verification.
 */
int trust_verify(struct trust_ctx *ctx, X509 *leaf, STACK_OF(X509) * given,
                 const struct trust_verify_opts *opts, struct trust_report *r, char **cause);
void trust_report_free(struct trust_report *r);
/* Packs r as a map {trusted, complete, host_match, missing, problems, chain}. */
void trust_pack_report(msgpack_packer *pk, const struct trust_report *r);

#endif
