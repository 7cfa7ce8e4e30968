/*
 * The renewal scheduler: decides when each certificate renews, starts the
 * renewals, backs off after failures, and remembers every certificate's
 * plan and history across restarts.
 *
 * When a certificate renews:
 *   - ACME certificates: inside the CA's ACME Renewal Information window
 *     (RFC 9773) when the CA's directory has renewalInfo; else when a third
 *     of the lifetime is left (half, for lifetimes under 10 days), or
 *     renew_before_days from the config when set.
 *   - Self-signed certificates with auto_renew: the same lifetime rule; a
 *     new self-signed version with the same names and key type is made.
 *   - Imported certificates are never renewed; they are tracked so that the
 *     status report warns ahead of expiry.
 *   - An ACME certificate whose current version was revoked (certctl revoke,
 *     recorded in the store) renews at once, when renew_after_revoke is true.
 * Whatever the ARI window says, a certificate renews at once once less than
 * 1/20 of its lifetime is left, or when the window ended in the past (the
 * emergency floor).  After fallback_after failures in a row at its own CA,
 * or once less than a third of the time left when renewal became due
 * remains, an attempt goes to the next fallback CA (fallback.h); the next
 * renewal goes back to its own CA.  With on_expiry "selfsigned", a failed
 * renewal of a certificate that expires within last_resort_hours makes a
 * self-signed stand-in with the same names and key type (the last resort),
 * which renews at the CA like the version it replaced.
 * Failures back off exponentially (1 minute doubling to 1 hour), and the
 * scheduler never gives up while the certificate is still valid.  At most
 * renew_concurrency renewals run at once.
 *
 * State (loop thread only), persisted atomically in STATE/renew.json:
 *   {"NAME": {"next": T, "reason": R, "last_attempt": T, "last_ok": B,
 *             "last_error": S, "last_success": T, "failures": N,
 *             "attempts_total": N, "failures_total": N, ...}}
 * Per-certificate settings (deploy targets, hooks, auto_renew,
 * renew_before_days) are in STATE/certs/NAME/settings.json (deploy.h).
 */
#ifndef CERTAGENT_RENEW_H
#define CERTAGENT_RENEW_H

#include <stddef.h>
#include <stdint.h>

struct acme;
struct deploy;
struct env;
struct renew;
struct store;
struct acme_observer;
struct cJSON;

/* What the scheduler knows about one certificate (borrowed strings). */
struct renew_info {
    int auto_renew;          /* the scheduler renews it (ACME, or self-signed set to) */
    int64_t next;            /* planned attempt (Unix seconds); 0: none planned */
    const char *next_reason; /* "ari", "lifetime", "renew_before_days", "retry", "revoked",
                              * "floor" (1/20 of the lifetime left, ARI later), "ari_past" */
    int64_t ari_start;       /* the CA's suggested window; 0 when none */
    int64_t ari_end;
    const char *ari_explanation; /* the CA's explanationURL, or NULL */
    int64_t last_attempt;        /* 0: never */
    int last_ok;                 /* result of the last attempt: 1 ok, 0 failed, -1 none */
    const char *last_error;      /* the last failure's words (the CA's problem text), or NULL */
    int64_t last_success;        /* 0: never */
    unsigned failures;           /* consecutive failed attempts */
    uint64_t attempts_total;     /* since the state began */
    uint64_t failures_total;
    int in_progress; /* a renewal is running now */
    const char *ca;  /* ACME CA name, or NULL */
    int loading;     /* its details (ca among them) are still being read from the store */
    /* The current version came from a fallback CA (ca): the certificate's own CA, to which
     * its next renewal goes back; NULL when ca is its own. */
    const char *preferred_ca;
    const struct cJSON *tried; /* the last attempts: [{"at", "ca", "ok", "error"}], or NULL */
    int last_resort;           /* the current version is the last resort's self-signed stand-in */
};

/*
 * Makes a new self-signed version of name (the commit path's, handed in by
 * agent.c): 0 when queued, then done(arg, rc, cause) on the loop.
 */
struct renew_selfsigned {
    int (*make)(void *ctx, const char *name, const char *const *dns, size_t ndns,
                const char *const *ips, size_t nips, const char *key_type, unsigned days,
                void (*done)(void *arg, int rc, const char *cause), void *arg, char **cause);
    void *ctx;
    /* The same with meta_json ({"acme": {...}}) stored in the version's meta.json "extra":
     * the last resort's stand-in (docs/resilience.md) remembers how to renew at the CA. */
    int (*make_meta)(void *ctx, const char *name, const char *const *dns, size_t ndns,
                     const char *const *ips, size_t nips, const char *key_type, unsigned days,
                     const char *meta_json, void (*done)(void *arg, int rc, const char *cause),
                     void *arg, char **cause);
};

/*
 * The scheduler of the certificates in store: ACME ones renew through acme,
 * self-signed ones through selfsigned; deploy has their settings and runs
 * the failure hooks.  Reads and writes STATE/renew.json.
 */
int renew_new(const struct env *env, struct store *store, struct acme *acme, struct deploy *deploy,
              const struct renew_selfsigned *selfsigned, struct renew **out, char **cause);
/*
 * Shared names of fleet (fleet-lock.h) renew under the fleet's lock: a node
 * that does not get it waits for the holder's new version and tries again
 * every few seconds; a node whose fleet is unreachable does not order them.
 */
struct fleet;
void renew_set_fleet(struct renew *r, struct fleet *fleet);
/* Plans every certificate in the store and arms the timer. */
void renew_start(struct renew *r);
void renew_stop(struct renew *r);
void renew_free(struct renew *r);

/*
 * The scheduler follows events (events.h): a certificate changed (new
 * version, rollback, removal), was revoked, or its settings changed: it is
 * planned again;
 * the config was reloaded: everything is.  Each change of a plan or of the
 * history publishes EVENT_RENEW_STATE.
 */

/* -E_NOT_FOUND when the scheduler does not know name. */
int renew_info_get(const struct renew *r, const char *name, struct renew_info *out);

/* Is name due (its planned attempt time has come)? */
int renew_due(const struct renew *r, const char *name);
/*
 * Renews name now (certctl renew): an ACME order from what its current
 * version remembers, or a new self-signed version.  obs receives progress
 * and the outcome, which also goes into the history.  -E_BUSY while a
 * renewal of name runs, -E_BAD_INPUT for an imported certificate.
 */
int renew_now(struct renew *r, const char *name, const struct acme_observer *obs, char **cause);

/*
 * When the lifetime rule renews: not_after - before_days when that leaves at
 * least a tenth of the lifetime before it, else when a third of the lifetime
 * is left (half, under 10 days).  For tests.
 */
int64_t renew_lifetime_point(int64_t not_before, int64_t not_after, int before_days);

/*
 * The emergency floor: whatever the CA's renewal window says, a certificate
 * renews at once from here on (1/20 of its lifetime left).  For tests.
 */
int64_t renew_floor_point(int64_t not_before, int64_t not_after);

#endif
