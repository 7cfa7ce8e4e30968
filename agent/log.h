/*
 * The agent's logger: levels and one sink at a time (stderr for the
 * foreground and journald, syslog for --daemon; the Windows Event Log comes
 * with the service).  Thread-safe: pool threads may log.  Never pass secrets.
 */
#ifndef CERTAGENT_LOG_H
#define CERTAGENT_LOG_H

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
enum log_level log_get_level(void);
/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) ERR_PRINTF(2, 3);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
