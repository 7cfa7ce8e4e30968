/*
 * Alerts that reach a person (notify.c): the service follows the report's
 * and the scheduler's events, turns transitions into messages (a
 * certificate gains a warning or its level rises, it recovers, a renewal
 * fails or recovers, a deploy fails, an open critical problem is still
 * open after repeat_hours), collects a burst for coalesce_seconds into one
 * e-mail (and one webhook POST per event), writes each outgoing message to
 * the spool STATE/notify/ before it is sent, and delivers the spool
 * through libcurl on the loop (notify-send.c), retrying with back-off.
 * What was announced is kept in STATE/notify/state.json, so that a
 * restart announces nothing twice.
 *
 * Everything runs on the loop thread.
 */
#ifndef CERTAGENT_NOTIFY_H
#define CERTAGENT_NOTIFY_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

struct env;
struct notify;
struct renew;
struct status;
struct store;

/* What the service reads. */
struct notify_inputs {
    struct store *store;
    struct renew *renew;
    struct status *status;
};

/* Makes the service (subscribes to events; opens nothing). */
int notify_new(const struct env *env, const struct notify_inputs *in, struct notify **out,
               char **cause);
/*
 * Reads the spool and the announced state (a torn or unreadable file is
 * logged and skipped, never fatal), arms the timers and starts delivering.
 */
int notify_start(struct notify *n, char **cause);
/* Closes the timers and cancels transfers in flight (their messages stay spooled). */
void notify_stop(struct notify *n);
void notify_free(struct notify *n);

/* The outcome of a test message per channel ("email", or a webhook's URL). */
struct notify_test_result {
    const char *channel;
    int rc;
    const char *reply; /* the server's words, or NULL */
    const char *error; /* rc != 0: what failed, or NULL */
};
typedef void (*notify_test_fn)(void *arg, const struct notify_test_result *r, size_t n);

/*
 * Sends a test message now, not through the spool, to channel ("email",
 * "webhook", or NULL for all); fn gets the outcome of every channel once all
 * are done.  -E_NOT_FOUND with words when no such channel is configured.
 */
int notify_test(struct notify *n, const char *channel, notify_test_fn fn, void *arg, char **cause);
/* Forgets the callback of a test whose asker went away (arg as given). */
void notify_test_forget(struct notify *n, void *arg);

/*
 * Acknowledges name's open problem (code, or every code when NULL): its
 * reminders stop until the problem changes or clears.  -E_NOT_FOUND with
 * words when name has no open problem (or not that code).
 */
int notify_ack(struct notify *n, const char *name, const char *code, char **cause);

/* The map `notify status` sends: spool, channels, acknowledgements (NOTIFY_STATUS_FIELDS). */
#define NOTIFY_STATUS_FIELDS 6
void notify_pack_status(struct notify *n, msgpack_packer *pk);

/*
 * Spools an e-mail (the status report, by report --send and its schedule):
 * 0, or -E_NOT_FOUND when no e-mail is configured.
 */
int notify_spool_email(struct notify *n, const char *subject, const char *text, const char *html,
                       char **cause);

/*
 * Renders the status report (report/digest.c) and spools it as an e-mail:
 * `certctl report --send` and the report schedule.  subject (may be NULL)
 * receives its subject.  -E_NOT_FOUND when no e-mail is configured.
 */
int notify_send_report(struct notify *n, char *subject, size_t len, char **cause);
/* The next time of c's report schedule after now (local time), 0 when off.  Pure. */
struct config_notify;
int64_t notify_report_next(const struct config_notify *c, int64_t now);

/* notify_failing for each channel failing for failing_minutes (status_agent_warnings_fn). */
struct status_warning;
size_t notify_agent_warnings(void *arg, struct status_warning *out, size_t max);

/* The acknowledged codes of name ("*": all), or NULL (for status: status_acked_fn). */
const char *notify_acked(void *n, const char *name);

#endif
