#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "platform.h"
#include "sys.h"

static enum log_sink current_sink = LOG_SINK_STDERR;
static enum log_level current_level = LOG_LEVEL_INFO;
static uv_mutex_t log_lock;
static int log_lock_ready;
static int log_timestamps = 1;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
log_init(enum log_sink sink, enum log_level level)
{
    if (!log_lock_ready && uv_mutex_init(&log_lock) == 0)
        log_lock_ready = 1;
    current_sink = sink;
    current_level = level;
    /* journald stamps lines itself; JOURNAL_STREAM says stderr goes there. */
    log_timestamps = getenv("JOURNAL_STREAM") == NULL;
    if (sink == LOG_SINK_SYSLOG)
        platform_syslog_open("certagent");
}

void
log_set_level(enum log_level level)
{
    current_level = level;
}

enum log_level
log_get_level(void)
{
    return current_level;
}

int
log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    }
    return -1;
}

const char *
log_level_name(enum log_level level)
{
    if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "?";
    return level_names[level];
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    if (level > current_level)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    if (log_lock_ready)
        uv_mutex_lock(&log_lock);
    if (current_sink == LOG_SINK_SYSLOG) {
        platform_syslog_write((int)level, line);
    } else if (log_timestamps) {
        char stamp[32];
        struct tm tm;
        time_t now = time(NULL);

        if (sys_gmtime((int64_t)now, &tm) == 0)
            strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
        else
            snprintf(stamp, sizeof(stamp), "%lld", (long long)now);
        fprintf(stderr, "%s certagent[%s]: %s\n", stamp, level_names[level], line);
    } else {
        /* sd-daemon priority prefixes: <3> err, <4> warning, <6> info, <7> debug. */
        static const int prio[] = {3, 4, 6, 7};
        fprintf(stderr, "<%d>%s\n", prio[level], line);
    }
    fflush(stderr);
    if (log_lock_ready)
        uv_mutex_unlock(&log_lock);
}
