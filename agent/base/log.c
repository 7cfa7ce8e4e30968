#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "platform.h"
#include "sys.h"
#include "utf8.h"

static enum log_sink current_sink = LOG_SINK_STDERR;
static enum log_level current_level = LOG_LEVEL_INFO;
static uv_mutex_t log_lock;
static int log_lock_ready;
static int log_timestamps = 1;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* The ring: slots[(seq - 1) % cap] holds line seq, for the last `count` lines. */
struct ring_slot {
    int64_t time;
    enum log_level level;
    char *text;
};
static struct ring_slot *ring_slots;
static size_t ring_cap, ring_count;
static uint64_t ring_seq; /* sequence number of the newest line */
static void (*ring_notify)(void *arg);
static void *ring_notify_arg;
static uv_once_t ring_once = UV_ONCE_INIT;

static void
lock_init_once(void)
{
    if (uv_mutex_init(&log_lock) == 0)
        log_lock_ready = 1;
}

static void
log_lock_take(void)
{
    uv_once(&ring_once, lock_init_once);
    if (log_lock_ready)
        uv_mutex_lock(&log_lock);
}

static void
log_lock_give(void)
{
    if (log_lock_ready)
        uv_mutex_unlock(&log_lock);
}

int
log_ring_resize(size_t lines)
{
    struct ring_slot *slots = NULL;
    size_t keep;

    if (lines > LOG_RING_MAX)
        return -E_BAD_INPUT;
    if (lines > 0 && (slots = calloc(lines, sizeof(*slots))) == NULL)
        return -E_NOMEM;
    log_lock_take();
    keep = ring_count < lines ? ring_count : lines;
    /* Move the newest `keep` lines; free the others. */
    for (size_t i = 0; i < ring_count; i++) {
        uint64_t seq = ring_seq - ring_count + 1 + i;
        struct ring_slot *old = &ring_slots[(seq - 1) % ring_cap];

        if (i >= ring_count - keep)
            slots[(seq - 1) % lines] = *old;
        else
            free(old->text);
    }
    free(ring_slots);
    ring_slots = slots;
    ring_cap = lines;
    ring_count = keep;
    log_lock_give();
    return 0;
}

void
log_ring_free(void)
{
    log_ring_resize(0);
}

uint64_t
log_ring_read(uint64_t after, log_ring_fn fn, void *arg, uint64_t *lost)
{
    uint64_t first, newest;

    log_lock_take();
    first = ring_seq - ring_count + 1;
    if (lost != NULL)
        *lost = after + 1 < first && after < ring_seq ? first - after - 1 : 0;
    for (uint64_t seq = after + 1 > first ? after + 1 : first; seq <= ring_seq; seq++) {
        const struct ring_slot *slot = &ring_slots[(seq - 1) % ring_cap];

        fn(arg, seq, slot->time, slot->level, slot->text);
    }
    newest = ring_seq;
    log_lock_give();
    return newest;
}

void
log_ring_set_notify(void (*fn)(void *arg), void *arg)
{
    log_lock_take();
    ring_notify = fn;
    ring_notify_arg = arg;
    log_lock_give();
}

static int
name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

int
log_line_mentions(const char *text, const char *name)
{
    size_t n = strlen(name);

    if (n == 0)
        return 0;
    for (const char *p = strstr(text, name); p != NULL; p = strstr(p + 1, name)) {
        int before = p > text ? name_char(p[-1]) : 0, after = name_char(p[n]);

        /* 'NAME' in quotes, or NAME as a word. */
        if (p > text && p[-1] == '\'' && p[n] == '\'')
            return 1;
        if (!before && !after)
            return 1;
    }
    return 0;
}

/* Called with the lock held: stores a copy of line as the newest. */
static void
ring_add(enum log_level level, int64_t now, const char *line)
{
    struct ring_slot *slot;
    char *copy;

    if (ring_cap == 0 || (copy = strdup(line)) == NULL)
        return;
    ring_seq++;
    slot = &ring_slots[(ring_seq - 1) % ring_cap];
    if (ring_count == ring_cap)
        free(slot->text);
    else
        ring_count++;
    slot->text = copy;
    slot->time = now;
    slot->level = level;
}

void
log_init(enum log_sink sink, enum log_level level)
{
    uv_once(&ring_once, lock_init_once);
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

/*
 * Length of the UTF-8 sequence at p (at most n bytes) that may go to a log
 * as it is, or 0: a byte that is not part of a well-formed sequence, or a C1
 * control character (U+0080..U+009F, which some terminals obey as ESC).
 */
static size_t
utf8_printable(const unsigned char *p, size_t n)
{
    uint32_t cp;
    size_t len = utf8_decode(p, n, &cp);

    return len > 1 && cp < 0xa0 ? 0 : len;
}

void
log_escape(char *out, size_t size, const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t o = 0, n = strlen(text);

    if (size == 0)
        return;
    for (size_t i = 0; i < n;) {
        size_t len = p[i] >= 0x20 && p[i] != 0x7f ? utf8_printable(p + i, n - i) : 0;
        char esc[5];
        const char *add = esc;
        size_t addlen;

        if (len > 0) {
            add = (const char *)p + i;
            addlen = len;
        } else if (p[i] == '\n' || p[i] == '\r' || p[i] == '\t') {
            esc[0] = '\\';
            esc[1] = p[i] == '\n' ? 'n' : p[i] == '\r' ? 'r' : 't';
            addlen = 2;
            len = 1;
        } else {
            snprintf(esc, sizeof(esc), "\\x%02x", p[i]);
            addlen = 4;
            len = 1;
        }
        /* A line that does not fit ends before the escape or character that would not. */
        if (o + addlen >= size)
            break;
        memcpy(out + o, add, addlen);
        o += addlen;
        i += len;
    }
    out[o] = '\0';
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
    char raw[2048], line[4096];
    time_t now;
    va_list ap;

    if (level > current_level)
        return;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    /* Whatever the arguments hold (a peer's words, a hook's output), one call is one line. */
    log_escape(line, sizeof(line), raw);

    log_lock_take();
    now = time(NULL);
    ring_add(level, (int64_t)now, line);
    if (current_sink == LOG_SINK_SYSLOG) {
        platform_syslog_write((int)level, line);
    } else if (log_timestamps) {
        char stamp[32];
        struct tm tm;

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
    /* Under the lock, so that once log_ring_set_notify(NULL) returned it is never called. */
    if (ring_notify != NULL)
        ring_notify(ring_notify_arg);
    log_lock_give();
}
