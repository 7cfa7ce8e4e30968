/*
 * The agent's logger: levels and one sink at a time (stderr for the
 * foreground and journald, syslog for --daemon; the Windows Event Log comes
 * with the service).  Thread-safe: pool threads may log.  Never pass secrets.
 */
#ifndef CERTAGENT_LOG_H
#define CERTAGENT_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum log_level {
    LOG_LEVEL_ERROR,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
};

enum log_sink {
    LOG_SINK_STDERR,
    LOG_SINK_SYSLOG,
};

void log_init(enum log_sink sink, enum log_level level);
void log_set_level(enum log_level level);
/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

/*
 * Logs one line.  Every sink gets it with its control characters escaped
 * (log_escape): text from a peer, a certificate or a hook can neither start
 * a line of its own nor reach a terminal as an escape sequence.
 */
void log_msg(enum log_level level, const char *fmt, ...) ERR_PRINTF(2, 3);
/*
 * Copies text into out (size bytes, NUL-terminated) with newline, carriage
 * return and tab written as \n, \r, \t, and every other byte below 0x20,
 * DEL, a C1 control character (U+0080..U+009F) and a byte that is not part
 * of well-formed UTF-8 as \xNN (each byte of it).  Backslashes stay as they
 * are.  A text that does not fit is cut at a character's boundary.
 */
void log_escape(char *out, size_t size, const char *text);

/*
 * The ring buffer: the last lines logged (whatever passed the level), kept
 * in memory for `certctl logs`.  Every line gets a sequence number (1, 2,
 * ...).  All functions are thread-safe.
 */
#define LOG_RING_DEFAULT 2000
#define LOG_RING_MAX 1000000

/* Keeps the last `lines` lines (0: none); the newest ones survive a resize. */
int log_ring_resize(size_t lines);
/* Frees the ring (tests, exit). */
void log_ring_free(void);

/*
 * Calls fn for every line with a sequence number above `after`, oldest
 * first, under the logger's lock: fn must not log.  Returns the sequence
 * number of the newest line in the ring (0 when it is empty); *lost counts
 * lines after `after` that the ring no longer holds (may be NULL).
 */
typedef void (*log_ring_fn)(void *arg, uint64_t seq, int64_t time, enum log_level level,
                            const char *text);
uint64_t log_ring_read(uint64_t after, log_ring_fn fn, void *arg, uint64_t *lost);

/*
 * fn(arg) runs after each line is added, on the logging thread under the
 * lock (it must not log or block: uv_async_send).  NULL removes it; after
 * that returns, fn is not called again.
 */
void log_ring_set_notify(void (*fn)(void *arg), void *arg);

/*
 * Does a line concern certificate `name`?  The agent names certificates in
 * quotes ('www'); a line matches when it holds 'NAME' in quotes, or NAME as
 * a whole word (not next to a letter, digit, '.', '_' or '-').
 */
int log_line_mentions(const char *text, const char *name);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
