/*
 * The ACME client (RFC 8555): named CAs, one account per CA, orders from
 * newOrder to the stored certificate, revocation and account upkeep.  Runs on
 * the agent's loop; HTTP goes through acme-http.c, key work and files through
 * the thread pool.  In-flight orders are persisted under STATE/acme/orders so
 * that a restarted agent resumes them from the order URL.
 *
 * Files under STATE/acme/ (directories 0700):
 *   cas.json                 CAs added with `certctl ca add` {NAME: {directory, trust}}
 *   trust/NAME.pem           the CA certificates trusted for NAME's HTTPS endpoint
 *   accounts/NAME.json       {url, email, created, key_type} of the account at CA NAME
 *   accounts/NAME.key        its key (0600)
 *   orders/CERT.json, .key   an order in flight for certificate CERT (key 0600)
 *
 * Loop thread only.
 */
#ifndef CERTAGENT_ACME_H
#define CERTAGENT_ACME_H

#include <stddef.h>
#include <stdint.h>

struct acme;
struct cJSON;
struct env;
struct hooks;
struct store;

/*
 * Stores a certificate an order obtained (the full chain, leaf first, its
 * key, meta.json's extra fields) as a new version of name: the commit path's
 * (ipc/ops-cert.c), handed in by agent.c.  0 when queued, then done(arg, rc,
 * cause) on the loop.
 */
struct acme_commit {
    int (*store)(void *ctx, const char *name, const char *fullchain_pem, const char *key_pem,
                 const char *meta_json, void (*done)(void *arg, int rc, const char *cause),
                 void *arg, char **cause);
    void *ctx;
    /* May an order of name persisted by an earlier run resume? NULL: always. */
    int (*resume_ok)(void *ctx, const char *name);
    /*
     * Challenges behind a load balancer (a fleet): token_put shares the answer of name's
     * order (http-01: key the token, value the key authorization; tls-alpn-01: key "alpn/"
     * and the SNI, value "IDENTIFIER KEY-AUTHORIZATION") before the challenge is answered
     * and returns a handle, then done(arg, rc) once unless token_cancel(ctx, handle) came
     * first; NULL when name's answers are not shared (nothing to wait for).  token_delete
     * removes it after the order.  token_lookup / token_lookup_cancel answer the responders
     * for what they do not serve (challenge_lookup in challenge-net.h).  Any may be NULL.
     */
    void *(*token_put)(void *ctx, const char *name, const char *token, const char *keyauth,
                       void (*done)(void *arg, int rc), void *arg);
    void (*token_cancel)(void *ctx, void *handle);
    void (*token_delete)(void *ctx, const char *token);
    void *(*token_lookup)(void *ctx, const char *token,
                          void (*reply)(void *rarg, const char *key_authorization), void *rarg);
    void (*token_lookup_cancel)(void *ctx, void *handle);
};

/*
 * The client of the certificates in store; dns-01 runs the config's hook
 * through hooks; the http-01 and tls-alpn-01 responders are its own.
 */
int acme_new(const struct env *env, struct store *store, struct hooks *hooks,
             const struct acme_commit *commit, struct acme **out, char **cause);
/*
 * Gives the responders their configured addresses (with
 * challenge_listen_always they listen from now on; again after each config
 * reload) and starts the orders a previous run left in flight.
 */
void acme_start(struct acme *acme);
/* Stops timers, HTTP and the responders; orders stay persisted for the next start. */
void acme_stop(struct acme *acme);
void acme_free(struct acme *acme);
/* Orders in flight (status). */
size_t acme_active_orders(const struct acme *acme);

/*
 * Who is waiting for an operation: progress events and the final reply go to
 * the client under the request id while it is connected.  All callbacks of an
 * operation reach the same observer.
 */
struct acme_observer {
    void (*progress)(void *arg, const char *message, unsigned done, unsigned total);
    /* rc 0: result (a cJSON object, borrowed) describes the outcome; else cause
     * and, for CA errors, detail (the problem document as JSON text) */
    void (*done)(void *arg, int rc, const char *cause, const char *detail,
                 const struct cJSON *result);
    void *arg;
};

/* CAs */
/*
 * Both change the registry at once and answer obs once the files are written.  A
 * removal keeps the CA's account files, and an addition of the same name and
 * directory URL uses them again (the result's "account": its URL, or null).  Whether certificates
 * still renew with the CA is the caller's to check (ops-acme.c).
 */
int acme_ca_add(struct acme *acme, const char *name, const char *directory, const char *trust_pem,
                const struct acme_observer *obs, char **cause);
/* Could name be removed (it exists, is neither built in nor from the config)?  0 or the
 * error acme_ca_remove would give, with words. */
int acme_ca_removable(struct acme *acme, const char *name, char **cause);
int acme_ca_remove(struct acme *acme, const char *name, const struct acme_observer *obs,
                   char **cause);
/* A JSON array of {name, directory, builtin, trust, account}; caller frees. */
struct cJSON *acme_ca_list(const struct acme *acme);

/* Accounts */
struct acme_account_args {
    const char *ca;
    const char *email;    /* may be NULL */
    const char *eab_kid;  /* may be NULL */
    const char *eab_hmac; /* base64url HMAC key; secret */
    const char *key_type; /* "ec256" (ES256, default), "ec384", "rsa2048".. (RS256) */
    int agree_tos;
};
int acme_account_register(struct acme *acme, const struct acme_account_args *args,
                          const struct acme_observer *obs, char **cause);
int acme_account_show(struct acme *acme, const char *ca, const struct acme_observer *obs,
                      char **cause);
int acme_account_rollover(struct acme *acme, const char *ca, const char *key_type,
                          const struct acme_observer *obs, char **cause);
int acme_account_deactivate(struct acme *acme, const char *ca, const struct acme_observer *obs,
                            char **cause);

/*
 * Takes an existing account (certbot's, when migrating): its URL and key
 * (PEM) become CA's account.  -E_EXISTS when CA already has one.
 */
int acme_account_import(struct acme *acme, const char *ca, const char *url, const char *key_pem,
                        size_t key_len, const struct acme_observer *obs, char **cause);
/* Does CA name exist? */
int acme_ca_known(struct acme *acme, const char *name);

/* Orders */
struct acme_order_args {
    const char *name;
    const char *ca; /* NULL: the config's default_ca */
    const char *const *dns;
    size_t ndns;
    const char *const *ips;
    size_t nips;
    const char *key_type;        /* NULL: the config's default_key */
    const char *challenge;       /* "http-01" (default), "dns-01", "tls-alpn-01" */
    const char *preferred_chain; /* issuer or root common name; NULL: the CA's default */
    const char *profile;         /* NULL: none */
    int require_profile;
    int agree_tos; /* may register an account */
    const char *email;
    const char *replaces; /* ARI CertID of the certificate being replaced, or NULL */
    /* A fallback CA's order (ca): the CA the certificate renews with otherwise, kept in
     * the version's meta.json so that its next renewal goes back there; else NULL. */
    const char *preferred_ca;
};
int acme_request(struct acme *acme, const struct acme_order_args *args,
                 const struct acme_observer *obs, char **cause);

/*
 * A staging canary's order (renew/canary.c): the whole flow for one name at a
 * CA's staging directory, with a hidden account of the agent's own there
 * (accounts/canary@CA.*, registered on first use, agreeing to the staging CA's
 * terms), never persisted nor resumed, its certificate never stored.
 * obs->done's result: {"chain": PEM (leaf first), "order": URL} on success; on
 * failure {"step": S}, the step that failed: "directory", "account", "order",
 * "authorization", "challenge", "finalize" or "download".
 */
struct acme_canary_args {
    const char *ca;        /* the production CA it watches */
    const char *directory; /* the staging directory */
    const char *trust;     /* PEM file trusted for its HTTPS; NULL: the system store */
    const char *name;      /* the DNS name ordered */
    const char *challenge; /* NULL: http-01 */
    unsigned deadline_s;   /* the whole order's deadline; 0: 600 s */
};
int acme_canary_order(struct acme *acme, const struct acme_canary_args *args,
                      const struct acme_observer *obs, char **cause);

/*
 * ACME Renewal Information (RFC 9773): GET renewalInfo/CERT_ID, the URL
 * taken from the CA's directory (refetched when older than an hour; never
 * stored).  rc -E_NOT_FOUND when the CA's directory has no renewalInfo.
 * retry_after: seconds from the reply's Retry-After, 0 when absent.
 */
struct acme_ari {
    int64_t start, end;      /* the suggested window, Unix seconds */
    const char *explanation; /* explanationURL, or NULL */
    int64_t retry_after;
};
int acme_ari_get(struct acme *acme, const char *ca, const char *cert_id,
                 void (*cb)(void *arg, int rc, const char *cause, const struct acme_ari *ari),
                 void *arg, char **cause);

/* Revokes the current version of name; reason is an RFC 5280 code name or NULL. */
int acme_revoke(struct acme *acme, const char *name, const char *reason,
                const struct acme_observer *obs, char **cause);

#endif
