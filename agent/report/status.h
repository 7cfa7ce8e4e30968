/*
 * The status report: per-certificate warnings and the overall health, the
 * rows and summary the `status` op sends (ipc/ops-status.c), the status file
 * STATE/status.json, Prometheus metrics (metrics.c: the text the `metrics`
 * op sends, and the optional loopback listener).
 *
 * Warnings (code, level, a sentence, and the data behind it):
 *   renewal_failing             the last renewal attempt failed (the CA's words)
 *   expiring                    less than min(lifetime/4, warn_days) left, or the
 *                               renewal is overdue: warning; less than
 *                               min(lifetime/10, critical_days), or expired: critical
 *   chain_incomplete            the stored chain reaches neither a self-signed root
 *                               nor an anchor of the trust store
 *   chain_expired_intermediate  a certificate of the stored chain has expired
 *   weak_key                    RSA (or DSA) key under 2048 bits
 *   weak_signature              signed with SHA-1 or MD5 (not checked on self-signed ones)
 *   self_signed_in_use          the current version is self-signed (source selfsigned)
 * and of the agent itself (status_canary_warnings):
 *   ca_canary_failing           a CA's staging canary failed (the CA, the step, its words)
 * The checks that need the certificate's PEM run in the thread pool once
 * per name and version and are cached; the rest is evaluated at each call.
 *
 * Everything here runs on the loop thread unless said otherwise.
 */
#ifndef CERTAGENT_STATUS_H
#define CERTAGENT_STATUS_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "err.h"

struct acme;
struct deploy;
struct env;
struct probe_sched;
struct renew;
struct status;
struct store;
struct store_cert;
struct trust;
struct view;

enum status_level {
    STATUS_OK = 0,
    STATUS_WARNING = 1,
    STATUS_CRITICAL = 2,
};

/* "ok", "warning", "critical". */
const char *status_level_name(int level);

/*
 * The expiry rule alone (pure, for tests): STATUS_CRITICAL when expired or
 * less than min(lifetime / 10, critical_days) is left, STATUS_WARNING when
 * less than min(lifetime / 4, warn_days), else STATUS_OK.  *threshold (may
 * be NULL) receives the threshold crossed, in seconds (0 for OK).
 */
int status_expiry_level(int64_t not_before, int64_t not_after, int64_t now, int warn_days,
                        int critical_days, int64_t *threshold);

#define STATUS_WARNINGS_MAX 8
#define STATUS_DATA_MAX 4

struct status_data {
    const char *key;
    int is_str;
    int64_t num;
    char str[384];
};

struct status_warning {
    const char *code;
    int level;
    char message[768];
    size_t ndata;
    struct status_data data[STATUS_DATA_MAX];
};

struct status_eval {
    int level; /* the worst warning's level */
    size_t nwarnings;
    struct status_warning w[STATUS_WARNINGS_MAX];
};

/*
 * The warnings of a certificate's current version at time now.  The checks
 * that need the PEM use the cache; until it is filled they are missing.
 */
void status_evaluate(struct status *st, const struct store_cert *cert, int64_t now,
                     struct status_eval *out);

/* What the report reads: the services it reports on, and what the agent says of itself. */
struct status_inputs {
    struct store *store;
    struct trust *trust;
    struct renew *renew;
    struct deploy *deploy;
    struct acme *acme;
    struct probe_sched *probes;
    int64_t started;           /* Unix seconds */
    uint64_t started_hr;       /* uv_hrtime at start */
    const char *socket_path;   /* the IPC endpoint */
    const char *config_path;   /* the config file */
    const size_t *connections; /* IPC clients connected now */
    struct served *served;     /* the served check's results (may be NULL) */
    struct view *fleet_view;   /* the fleet's view (fleet/view.h; NULL: not in a fleet) */
};

/* The inputs it was made with (metrics.c). */
const struct status_inputs *status_inputs_of(const struct status *st);

/*
 * Validates the config (metrics_listen must be a loopback ADDR:PORT) and
 * makes the object.  Opens nothing.  The inputs' pointers must outlive it.
 */
int status_new(const struct env *env, const struct status_inputs *in, struct status **out,
               char **cause);
/*
 * Opens the metrics listener (when configured), arms the timers and writes
 * the status file for the first time.  A listener that cannot open is an
 * error, and nothing is left open.
 */
int status_start(struct status *st, char **cause);
/* Closes timers, the listener and log followers; a write in flight finishes. */
void status_stop(struct status *st);
void status_free(struct status *st);
/*
 * The report follows events (events.h): a certificate changed, the
 * scheduler's state, a deploy's result, a stale report: a debounced rewrite
 * of STATE/status.json (changes within 200 ms are coalesced; never two
 * writes at once) and the analysis of new versions; a config reload:
 * thresholds and the ring size too.
 */

/* Counts over the certificates of a report, for its summary. */
struct status_counts {
    size_t n, expired, expiring_30d, ok, warning, critical, warnings, unchecked;
    size_t expiring; /* not expired, less than warn_days left */
    int health;
};
/*
 * One row of the report (the summary of store-pack.h, the scheduler's
 * fields, the warnings, the row's health), counted in c.
 */
void status_pack_row(struct status *st, msgpack_packer *pk, const struct store_cert *cert,
                     int64_t now, struct status_counts *c);
/* The summary: the agent, the counts and the health (STATUS_SUMMARY_FIELDS entries). */
#define STATUS_SUMMARY_FIELDS 26
void status_pack_summary(struct status *st, msgpack_packer *pk, const struct status_counts *c,
                         int64_t now);
/*
 * The whole report as one msgpack map (the summary's fields and
 * "certificates", the rows): what STATE/status.json holds, at time now.
 * Appends to out; 0 or -E_NOMEM.
 */
int status_pack_document(struct status *st, int64_t now, msgpack_sbuffer *out);
/*
 * A packed document (or any msgpack map) as the JSON text of status.json,
 * appended to out (struct metrics_buf, below).  0, -E_BAD_INPUT, -E_NOMEM.
 */
struct metrics_buf;
int status_document_json(const char *data, size_t len, struct metrics_buf *out);
/*
 * Warnings of the agent itself, not of one certificate (notify_failing: alerts
 * not delivered), from a higher layer that agent.c wires: fn fills at most max
 * and returns how many.  The summary carries them as "agent_warnings" and they
 * count in the health.
 */
typedef size_t (*status_agent_warnings_fn)(void *arg, struct status_warning *out, size_t max);
void status_set_agent_warnings(struct status *st, status_agent_warnings_fn fn, void *arg);
/*
 * The fleet's warning of the agent itself (fleet_unreachable), at most max: for
 * agent.c, which hands the report notify's and these together.
 */
size_t status_fleet_warnings(struct status *st, struct status_warning *out, size_t max);
/* ca_canary_failing, one per failing staging canary (renew/canary.h), at most max. */
struct canary;
size_t status_canary_warnings(struct canary *c, struct status_warning *out, size_t max);
/*
 * The acknowledged codes of a certificate's open problem ("*": all) or NULL,
 * from a higher layer (notify, wired by agent.c): each row's "acknowledged".
 */
typedef const char *(*status_acked_fn)(void *arg, const char *name);
void status_set_acked(struct status *st, status_acked_fn fn, void *arg);
/* Versions not checked yet (or against another trust store) are checked soon. */
void status_recheck(struct status *st);

/* metrics.c: the Prometheus text of the whole agent (heap, NUL-terminated). */
int metrics_text(struct status *st, char **out, size_t *len);
/*
 * Appends value to buf as a Prometheus label value: backslash, double quote
 * and line feed escaped (\\, \", \n).  Pure, for tests.  0 or -E_NOMEM.
 */
struct metrics_buf {
    char *p;
    size_t len, cap;
};
int metrics_escape_label(struct metrics_buf *buf, const char *value);
int metrics_append(struct metrics_buf *buf, const char *fmt, ...) ERR_PRINTF(2, 3);

/* metrics.c: the loopback HTTP listener for GET /metrics. */
struct metrics_http;
/* -E_BAD_INPUT with words when addr is not a loopback "ADDR:PORT". */
int metrics_http_check(const char *addr, char **cause);
/*
 * Serves GET /metrics on config->metrics_listen, with the connection limits
 * of config's responder_* keys (read at every accept; config outlives the
 * listener).
 */
struct config;
int metrics_http_start(struct status *st, uv_loop_t *loop, const struct config *config,
                       struct metrics_http **out, char **cause);
void metrics_http_close(struct metrics_http *m);

#endif
