/*
 * The served check: does each service that uses a certificate serve its
 * current version?  A deploy counts as done when its files are written and
 * its hooks exited 0; a service that did not reload keeps serving the old
 * certificate until it expires.  This module probes each URL of a
 * certificate's check_served setting (deploy.h) with the probe of trust/
 * (asynchronous, on the loop, leaf only) and compares the served leaf's
 * SHA-256 with the current version's:
 *
 *   - after every deploy of NAME (EVENT_DEPLOY_RESULT, after the hooks), and
 *     then for served_grace seconds again every few seconds while an
 *     endpoint does not serve the current version (services reload
 *     asynchronously); no warning during the grace;
 *   - every served_check_interval seconds (jittered by up to a tenth; a
 *     reload that shortens it re-plans the later ones), and at once for a
 *     URL just added with certctl set --check-served.
 *
 * Results (per endpoint: match, stale, unreachable, with what was served)
 * are kept in STATE/served.json, so a restart keeps them, and shown by
 * certctl show and status; the status report's served_stale and
 * served_unreachable warnings come from served_endpoints.  certctl deploy
 * NAME --wait-served waits with served_wait.
 *
 * Loop thread only.
 */
#ifndef CERTAGENT_SERVED_H
#define CERTAGENT_SERVED_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

struct env;
struct store;
struct deploy;
struct trust;
struct served;

enum served_result {
    SERVED_PENDING,     /* not checked yet */
    SERVED_MATCH,       /* serves the current version */
    SERVED_STALE,       /* serves another certificate */
    SERVED_UNREACHABLE, /* no handshake: error says why */
};

/* The last result of one URL of a certificate. */
struct served_endpoint {
    char *url;
    char *sni; /* NULL: the URL's host */
    enum served_result result;
    char *error;              /* unreachable: why */
    char *sha256;             /* the served leaf: SHA-256, upper-case hex pairs joined by ':' */
    char *serial;             /* upper-case hex */
    char *subject;            /* RFC 2253 one line */
    int64_t not_after;        /* Unix seconds */
    unsigned served_version;  /* the stored version it is; 0: none of them */
    unsigned current_version; /* the version it was compared with */
    int64_t checked;          /* Unix seconds of the check; 0: never */
    int64_t since;            /* Unix seconds since when the result is the same */
};

int served_new(const struct env *env, struct store *store, struct deploy *deploy,
               struct served **out, char **cause);
/* Loads STATE/served.json (a broken file is logged and replaced) and arms the checks. */
int served_start(struct served *s, char **cause);
/* Agent stopping: no new checks, runs aborted, waiters told -E_UNAVAILABLE. */
void served_stop(struct served *s);
void served_free(struct served *s);

/*
 * The endpoints of name (its check_served URLs, in their order) with their
 * last results; *n 0 when none.  *in_grace 1 while a deploy's grace runs
 * (a mismatch is not final yet).  Borrowed until the next loop turn.
 */
const struct served_endpoint *served_endpoints(const struct served *s, const char *name, size_t *n,
                                               int *in_grace);
/* "match", "stale", "unreachable", "pending". */
const char *served_result_name(enum served_result r);

/*
 * certctl deploy --wait-served: done(arg, rc, cause) once every endpoint of
 * name serves the current version (rc 0) or the grace after the deploy is
 * over (rc -E_IO, cause names each endpoint and what it serves).  A name
 * without check_served URLs: -E_BAD_INPUT with words, done not called.
 */
int served_wait(struct served *s, const char *name,
                void (*done)(void *arg, int rc, const char *cause), void *arg, char **cause);

/* Packs an array of the endpoints of name ({url, sni, result, ...}). */
void served_pack(const struct served *s, const char *name, msgpack_packer *pk);

#endif
