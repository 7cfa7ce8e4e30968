/*
 * What acme.c (CAs, accounts, signed calls) and acme-order.c (orders) share.
 * Not for other files: they use acme.h.
 */
#ifndef CERTAGENT_ACME_INT_H
#define CERTAGENT_ACME_INT_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <uv.h>

#include "acme-http.h"
#include "acme.h"

struct key;
struct acme_order;

#define ACME_MAX_NONCES 32
/* Retries of one call after badNonce, and after 5xx/429/transport errors. */
#define ACME_NONCE_RETRIES 20
#define ACME_SERVER_RETRIES 8
/* Retries when no HTTP reply came at all (refused, reset, timed out): a CA that is down
 * is not waited for long; renewal tries again later. */
#define ACME_TRANSPORT_RETRIES 3
/* The longest an order may take from start to stored certificate. */
#define ACME_ORDER_DEADLINE_MS (15u * 60 * 1000)
/* Poll back-off without Retry-After: first, then doubling up to the cap. */
#define ACME_POLL_FIRST_MS 50
#define ACME_POLL_MAX_MS 5000
/* A cached directory is refetched after this. */
#define ACME_DIRECTORY_TTL_MS (60u * 60 * 1000)
/* The directory an ARI poll reads renewalInfo from is at most this old (polls close together share
 * one fetch). */
#define ACME_ARI_DIRECTORY_MAX_AGE_MS (5u * 1000)

struct acme_waiter {
    struct acme_waiter *next;
    void (*fn)(void *arg, int rc, const char *cause, const char *detail);
    void *arg;
};

struct acme_account {
    char *url;
    char *email;
    char *key_type;
    int64_t created;
    char *directory; /* the CA's directory URL when registered; NULL in older files */
    struct key *key;
};

struct acme_ca {
    struct acme_ca *next;
    struct acme *acme;
    char *name;
    char *directory;
    char *trust; /* path of the trust file, or NULL: the system store */
    int builtin;
    int from_config; /* declared in acme_cas: not saved in cas.json, not removable */
    cJSON *dir;      /* the directory object, NULL until fetched */
    uint64_t dir_at; /* uv_now when fetched */
    struct acme_waiter *dir_waiters;
    int dir_fetching;
    char *nonces[ACME_MAX_NONCES];
    size_t nnonces;
    struct acme_account *account;
    int account_busy; /* registration, rollover or deactivation in flight */
    struct acme_waiter *account_waiters;
};

struct acme_timer {
    uv_timer_t timer;
    struct acme *acme;
    struct acme_timer *prev, *next;
    void (*fn)(void *arg);
    void (*cancel)(void *arg);
    void *arg;
};

struct challenge_http;
struct challenge_alpn;

struct acme {
    const struct env *env;
    struct store *store;
    struct hooks *hooks;
    struct acme_commit commit;
    uv_loop_t *loop;
    struct challenge_http *http01; /* made on first use (acme_responders_http01) */
    struct challenge_alpn *alpn01; /* made on first use (acme_responders_alpn01) */
    struct acme_http *http;
    char *dir; /* STATE/acme */
    struct acme_ca *cas;
    struct acme_ca *staging; /* the staging canaries' hidden CAs (acme_staging_ca) */
    struct acme_order *orders;
    size_t norders;
    struct acme_timer *timers;
    int cas_saving; /* a change of cas.json is being written */
    int stopping;
};

/* The result of a signed or plain call: rc 0 with a 2xx reply, else cause
 * (and detail: the problem document text when the CA sent one). */
typedef void (*acme_call_cb)(void *arg, int rc, const char *cause, const char *detail,
                             struct acme_http_response *resp, cJSON *json);

struct acme_call_args {
    const char *url;
    const char *payload;   /* JSON text; "" for POST-as-GET; NULL for a plain GET */
    const struct key *key; /* signs; NULL with a plain GET */
    const char *kid;       /* account URL; NULL: embed the key's JWK */
    const char *accept;
    uint64_t deadline; /* uv_now() ms; 0: ACME_ORDER_DEADLINE_MS from now */
};
int acme_call(struct acme *acme, struct acme_ca *ca, const struct acme_call_args *args,
              acme_call_cb cb, void *arg, char **cause);

/*
 * Runs fn(arg) after ms on the loop; when acme_stop cancels the timer,
 * cancel(arg) runs instead of fn (may be NULL).
 */
int acme_later_cancel(struct acme *acme, uint64_t ms, void (*fn)(void *arg),
                      void (*cancel)(void *arg), void *arg);

struct acme_ca *acme_ca_find(struct acme *acme, const char *name);
/* The hidden CA a staging canary of CA caname orders from (made on first use); NULL: no
 * memory. */
struct acme_ca *acme_staging_ca(struct acme *acme, const char *caname, const char *directory,
                                const char *trust);
/* Makes sure ca->dir is fresh; fn runs once it is (or failed). */
void acme_ca_directory(struct acme *acme, struct acme_ca *ca,
                       void (*fn)(void *arg, int rc, const char *cause, const char *detail),
                       void *arg);
/* A URL of the directory ("newOrder"), or NULL. */
const char *acme_ca_url(const struct acme_ca *ca, const char *what);
/* Makes sure ca has an account, registering one when agree_tos; fn as above. */
void acme_ca_account(struct acme *acme, struct acme_ca *ca, int agree_tos, const char *email,
                     void (*fn)(void *arg, int rc, const char *cause, const char *detail),
                     void *arg);

/* RFC 3339 date-time to Unix seconds; 0 or -1. */
int acme_parse_time(const char *s, int64_t *out);

/* Words for a problem document: "detail (type)" plus subproblems; heap. */
char *acme_problem_text(const cJSON *problem);

/*
 * The steps that read a CA's JSON replies, apart from the state machines that
 * act on them, so that tests/fuzz/fuzz_acme_json.c drives the very code the
 * agent runs on untrusted replies (no copies).
 */
struct acme_http_response;
/* The reply's JSON when its body is application/json or problem+json; else NULL. */
cJSON *acme_reply_json(const struct acme_http_response *resp);
/* Is json an ACME directory (newNonce and newOrder are strings)? */
int acme_directory_ok(const cJSON *json);
/* acme-order.c: the challenge of `type` in an authorization (borrowed url and
 * token), or -E_NOT_FOUND; the first challenge error in words into buf. */
int acme_authz_challenge(const cJSON *authz, const char *type, const char **url,
                         const char **token);
const char *acme_challenge_error(const cJSON *authz, char *buf, size_t len);

/* Pool work owned by the ACME client. */
struct acme_work {
    uv_work_t work;
    struct acme *acme;
    void (*run)(struct acme_work *w);
    void (*done)(struct acme_work *w);
    void *arg;
    int rc;
    char *cause;
};
int acme_work_queue(struct acme *acme, struct acme_work *w, void (*run)(struct acme_work *w),
                    void (*done)(struct acme_work *w), void *arg);

/* Files written in the pool, in order, each atomically (NULL data: remove). */
struct file_batch;
struct file_batch *acme_batch_new(void);
void acme_batch_free(struct file_batch *b);
int acme_batch_add(struct file_batch *b, char *path, const char *data, size_t len, int mode);
int acme_batch_run(struct acme *acme, struct file_batch *b,
                   void (*fn)(void *arg, int rc, const char *cause), void *arg);
/* STATE/acme/SUB/NAME.EXT (NAME NULL: the directory); heap. */
char *acme_file_path(const struct acme *acme, const char *sub, const char *name, const char *ext);

/* acme-order.c */
void acme_order_stop_all(struct acme *acme);
int acme_order_resume_dir(struct acme *acme);

/*
 * acme-responders.c: the http-01 and tls-alpn-01 responders, made on first
 * use from the config (http01_listen, tls_alpn01_listen,
 * challenge_listen_always) and kept until acme_stop.  -E_UNAVAILABLE while
 * stopping; with challenge_listen_always a bind failure is an error (else it
 * comes from the first challenge_*_add).
 */
int acme_responders_http01(struct acme *acme, struct challenge_http **out, char **cause);
int acme_responders_alpn01(struct acme *acme, struct challenge_alpn **out, char **cause);
/* The configured addresses (at start and after a reload); failures are warnings. */
void acme_responders_apply(struct acme *acme);
/* Closes both (acme_stop). */
void acme_responders_close(struct acme *acme);

#endif
