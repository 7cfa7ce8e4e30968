/*
 * The staging canaries (the config's "canaries", docs/resilience.md): per CA
 * a complete ACME order against the CA's staging directory (account, order,
 * challenge, finalize with polling, download) and a check of the chain, on a
 * schedule ("every", with jitter) and on `certctl canary run`.  The
 * certificate is thrown away: never stored, listed or deployed.  The result
 * of each canary (last run, duration, ok or the step that failed and the CA's
 * words) is kept in STATE/canary.json (0600, written atomically) so that it
 * survives a restart; the report raises ca_canary_failing from it.
 *
 * Loop thread only.
 */
#ifndef CERTAGENT_CANARY_H
#define CERTAGENT_CANARY_H

#include <stddef.h>
#include <stdint.h>

struct acme;
struct cJSON;
struct config_canaries;
struct env;
struct canary;

/* Checks the configured canaries' CAs: each known to acme.  0, or -E_BAD_INPUT naming it. */
int canary_check(struct acme *acme, const struct config_canaries *cs, char **cause);

/* Reads STATE/canary.json (a missing or damaged one is an empty record, logged). */
int canary_new(const struct env *env, struct acme *acme, struct canary **out, char **cause);
/* Arms the schedule. */
void canary_start(struct canary *c);
/* Stops the schedule; running canaries end with the ACME client's stop. */
void canary_stop(struct canary *c);
void canary_free(struct canary *c);

/* What a configured canary's last run said. */
struct canary_state {
    const char *ca;
    const char *state; /* "ok", "failing" or "never" */
    int running;
    int64_t last_run, last_success, next_run; /* Unix seconds; 0: none */
    unsigned duration_ms;
    const char *step;  /* the step that failed ("finalize", "chain"...), or NULL */
    const char *error; /* the CA's (or the check's) words, or NULL */
};
/* The state of CA ca's configured canary: 0, or -E_NOT_FOUND when it has none. */
int canary_get(struct canary *c, const char *ca, struct canary_state *out);
/* How many canaries are configured; the i-th's state (i < canary_count). */
size_t canary_count(struct canary *c);
int canary_at(struct canary *c, size_t i, struct canary_state *out);

/* Every configured canary as {"canaries": [{ca, name, directory, challenge, every, state,
 * running, last_run, last_success, next_run, duration_ms, step, error}]}; caller frees. */
struct cJSON *canary_status_json(struct canary *c);

/*
 * Runs the canary of CA ca (NULL: every configured one) now; one already
 * running is waited for.  progress(arg, words) reports the steps, done(arg)
 * runs once all have ended.  -E_NOT_FOUND when ca has no canary (or none is
 * configured), with words.
 */
int canary_run(struct canary *c, const char *ca, void (*progress)(void *arg, const char *words),
               void (*done)(void *arg), void *arg, char **cause);

#endif
