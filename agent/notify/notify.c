#include "notify.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "alert-log.h"
#include "config-notify.h"
#include "digest.h"
#include "config.h"
#include "env.h"
#include "err.h"
#include "events.h"
#include "fsutil.h"
#include "http-loop.h"
#include "log.h"
#include "notify-send.h"
#include "proto.h"
#include "renew.h"
#include "status.h"
#include "store.h"
#include "strv.h"
#include "sys.h"

#define NOTIFY_DIR "notify"
#define STATE_FILE "state.json"
#define MSG_PREFIX "msg-"
#define MSG_SUFFIX ".json"
/* A spooled message is dropped after this many seconds of failed delivery. */
#define DROP_AFTER (7 * 86400)
/* The longest retry delay. */
#define RETRY_MAX 3600
/* How often reminders and failing channels are looked at. */
#define TICK_MS 30000
/* The biggest spool or state file read back. */
#define FILE_MAX (16 * 1024 * 1024)
#define NBUCKETS 1024

/* What was announced of one certificate (persisted in state.json). */
struct announced {
    struct announced *next;
    char *name;
    int level;              /* worst level announced (without renewal and deploy warnings) */
    char codes[256];        /* its warning codes, sorted, comma-separated */
    int renew_failing;      /* a renewal failure was announced, no recovery yet */
    unsigned failures;      /* failures in a row last seen */
    unsigned deploy_failed; /* the version whose failed deploy was announced; 0: none */
    char ack[256];          /* acknowledged codes, comma-separated, or "*" */
    int64_t last_sent;      /* when its critical problem was last sent */
};

/* One outgoing message, as spooled. */
struct spool_msg {
    struct spool_msg *next;
    char *file; /* base name in STATE/notify */
    int is_email;
    char *target; /* webhook: its URL */
    int64_t created, next_try;
    unsigned attempts;
    char *subject, *text, *html; /* e-mail */
    char *body;                  /* webhook */
    char *last_error;
    struct notify_xfer *xfer;
    struct notify *n;
};

/* A delivery channel: "email" or a webhook's URL. */
struct channel {
    struct channel *next;
    char *key;
    int busy;
    int64_t last_ok, last_attempt, failing_since;
    int failing_logged;
    char *last_error, *last_reply;
};

/* An event waiting for the coalescing window to end. */
struct nevent {
    struct nevent *next;
    char kind[24];
    char *name;
    int level;
    char code[48];
    char *message;
    cJSON *data;
    int64_t time;
};

struct test_run;
struct test_slot {
    struct test_run *t;
    size_t i;
};

struct test_run {
    struct test_run *next;
    struct test_slot slots[20];
    struct notify *n;
    notify_test_fn fn;
    void *arg;
    size_t pending, count;
    struct notify_test_result r[20];
    char *strings[60];
    size_t nstrings;
    struct notify_xfer *x[20];
};

struct notify {
    const struct env *env;
    struct notify_inputs in;
    char *dir;
    char host[256];
    struct http_loop *hl;
    CURLM *multi;
    struct announced *buckets[NBUCKETS];
    struct spool_msg *spool;
    size_t nspool;
    struct channel *channels;
    struct nevent *pending, **pending_tail;
    size_t npending;
    struct test_run *tests;
    uv_timer_t coalesce, deliver, tick, report, save;
    uv_timer_t rescan;   /* one look at every certificate's renewal for many changes */
    int64_t last_report; /* when the scheduled status report was last spooled */
    int timers;
    int started, stopping;
    int state_dirty;
    unsigned seq;
    uint64_t delivered, dropped, failed;
};

static const struct config_notify *
cfg(const struct notify *n)
{
    return n->env->config->notify;
}

static int64_t
now_s(void)
{
    return (int64_t)time(NULL);
}

/* Announced state. */

static size_t
bucket(const char *name)
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % NBUCKETS;
}

static struct announced *
ann_find(struct notify *n, const char *name, int create)
{
    struct announced *a;

    for (a = n->buckets[bucket(name)]; a != NULL; a = a->next) {
        if (strcmp(a->name, name) == 0)
            return a;
    }
    if (!create || (a = calloc(1, sizeof(*a))) == NULL)
        return NULL;
    if ((a->name = strdup(name)) == NULL) {
        free(a);
        return NULL;
    }
    a->next = n->buckets[bucket(name)];
    n->buckets[bucket(name)] = a;
    return a;
}

static void
ann_remove(struct notify *n, const char *name)
{
    for (struct announced **pp = &n->buckets[bucket(name)]; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            struct announced *a = *pp;

            *pp = a->next;
            free(a->name);
            free(a);
            n->state_dirty = 1;
            return;
        }
    }
}

/* Is code in the comma-separated list? */
static int
in_list(const char *list, const char *code)
{
    size_t len = strlen(code);

    for (const char *p = list; *p != '\0';) {
        size_t l = strcspn(p, ",");

        if (l == len && strncmp(p, code, len) == 0)
            return 1;
        p += l + (p[l] == ',');
    }
    return 0;
}

static struct channel *
channel_get(struct notify *n, const char *key)
{
    struct channel *c;

    for (c = n->channels; c != NULL; c = c->next) {
        if (strcmp(c->key, key) == 0)
            return c;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL || (c->key = strdup(key)) == NULL) {
        free(c);
        return NULL;
    }
    c->next = n->channels;
    n->channels = c;
    return c;
}

static void
set_str(char **dst, const char *src)
{
    char *s = src != NULL ? strdup(src) : NULL;

    free(*dst);
    *dst = s;
}

static int64_t
json_int(const cJSON *o, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsNumber(j) ? (int64_t)j->valuedouble : 0;
}

static const char *
json_str(const cJSON *o, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(j) ? j->valuestring : NULL;
}

static void
state_load(struct notify *n)
{
    char *path = fsutil_join(n->dir, STATE_FILE), *cause = NULL;
    unsigned char *data = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    const cJSON *it;
    int rc;

    if (path == NULL)
        return;
    if ((rc = fsutil_read_file(path, FILE_MAX, &data, &len, &cause)) != 0) {
        if (rc != -E_NOT_FOUND)
            log_warn("notify: cannot read %s (what was announced is forgotten): %s", path,
                     cause != NULL ? cause : err_message(rc));
        goto out;
    }
    if ((root = cJSON_ParseWithLength((const char *)data, len)) == NULL) {
        log_warn("notify: %s is not valid JSON (what was announced is forgotten)", path);
        goto out;
    }
    n->last_report = json_int(root, "last_report");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "certificates"))
    {
        struct announced *a = ann_find(n, it->string, 1);

        if (a == NULL)
            break;
        a->level = (int)json_int(it, "level");
        snprintf(a->codes, sizeof(a->codes), "%s",
                 json_str(it, "codes") != NULL ? json_str(it, "codes") : "");
        snprintf(a->ack, sizeof(a->ack), "%s",
                 json_str(it, "ack") != NULL ? json_str(it, "ack") : "");
        a->renew_failing = (int)json_int(it, "renew_failing");
        a->failures = (unsigned)json_int(it, "failures");
        a->deploy_failed = (unsigned)json_int(it, "deploy_failed");
        a->last_sent = json_int(it, "last_sent");
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "channels"))
    {
        struct channel *c = channel_get(n, it->string);

        if (c == NULL)
            break;
        c->last_ok = json_int(it, "last_ok");
        c->last_attempt = json_int(it, "last_attempt");
        c->failing_since = json_int(it, "failing_since");
        set_str(&c->last_error, json_str(it, "last_error"));
        set_str(&c->last_reply, json_str(it, "last_reply"));
    }
out:
    cJSON_Delete(root);
    free(data);
    free(cause);
    free(path);
}

static void
state_save(struct notify *n)
{
    cJSON *root = cJSON_CreateObject(), *certs, *chans;
    char *text = NULL, *path = NULL, *cause = NULL;
    int rc;

    if (root == NULL || (certs = cJSON_AddObjectToObject(root, "certificates")) == NULL ||
        (chans = cJSON_AddObjectToObject(root, "channels")) == NULL)
        goto out;
    cJSON_AddNumberToObject(root, "last_report", (double)n->last_report);
    for (size_t b = 0; b < NBUCKETS; b++) {
        for (struct announced *a = n->buckets[b]; a != NULL; a = a->next) {
            cJSON *o = cJSON_AddObjectToObject(certs, a->name);

            if (o == NULL)
                goto out;
            cJSON_AddNumberToObject(o, "level", a->level);
            cJSON_AddStringToObject(o, "codes", a->codes);
            cJSON_AddStringToObject(o, "ack", a->ack);
            cJSON_AddNumberToObject(o, "renew_failing", a->renew_failing);
            cJSON_AddNumberToObject(o, "failures", a->failures);
            cJSON_AddNumberToObject(o, "deploy_failed", a->deploy_failed);
            cJSON_AddNumberToObject(o, "last_sent", (double)a->last_sent);
        }
    }
    for (struct channel *c = n->channels; c != NULL; c = c->next) {
        cJSON *o = cJSON_AddObjectToObject(chans, c->key);

        if (o == NULL)
            goto out;
        cJSON_AddNumberToObject(o, "last_ok", (double)c->last_ok);
        cJSON_AddNumberToObject(o, "last_attempt", (double)c->last_attempt);
        cJSON_AddNumberToObject(o, "failing_since", (double)c->failing_since);
        if (c->last_error != NULL)
            cJSON_AddStringToObject(o, "last_error", c->last_error);
        if (c->last_reply != NULL)
            cJSON_AddStringToObject(o, "last_reply", c->last_reply);
    }
    if ((text = cJSON_PrintUnformatted(root)) == NULL ||
        (path = fsutil_join(n->dir, STATE_FILE)) == NULL)
        goto out;
    if ((rc = fsutil_write_atomic(path, text, strlen(text), 0600, &cause)) != 0)
        log_warn("notify: cannot write %s: %s", path, cause != NULL ? cause : err_message(rc));
    else
        n->state_dirty = 0;
out:
    free(cause);
    free(path);
    free(text);
    cJSON_Delete(root);
}

/* The spool. */

static void
msg_free(struct spool_msg *m)
{
    if (m == NULL)
        return;
    free(m->file);
    free(m->target);
    free(m->subject);
    free(m->text);
    free(m->html);
    free(m->body);
    free(m->last_error);
    free(m);
}

/* Writes m to its file (atomically, 0600). */
static int
msg_write(struct notify *n, struct spool_msg *m)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL, *path = NULL, *cause = NULL;
    int rc = -E_NOMEM;

    if (o == NULL)
        goto out;
    cJSON_AddStringToObject(o, "channel", m->is_email ? "email" : "webhook");
    if (m->target != NULL)
        cJSON_AddStringToObject(o, "target", m->target);
    cJSON_AddNumberToObject(o, "created", (double)m->created);
    cJSON_AddNumberToObject(o, "next_try", (double)m->next_try);
    cJSON_AddNumberToObject(o, "attempts", m->attempts);
    if (m->last_error != NULL)
        cJSON_AddStringToObject(o, "last_error", m->last_error);
    if (m->subject != NULL)
        cJSON_AddStringToObject(o, "subject", m->subject);
    if (m->text != NULL)
        cJSON_AddStringToObject(o, "text", m->text);
    if (m->html != NULL)
        cJSON_AddStringToObject(o, "html", m->html);
    if (m->body != NULL)
        cJSON_AddStringToObject(o, "body", m->body);
    if ((text = cJSON_PrintUnformatted(o)) == NULL ||
        (path = fsutil_join(n->dir, m->file)) == NULL)
        goto out;
    if ((rc = fsutil_write_atomic(path, text, strlen(text), 0600, &cause)) != 0)
        log_warn("notify: cannot spool %s: %s", path, cause != NULL ? cause : err_message(rc));
out:
    free(cause);
    free(path);
    free(text);
    cJSON_Delete(o);
    return rc;
}

/*
 * A spooled message's text lives in its file, not in memory, while it waits:
 * 1,000 queued status reports would otherwise hold their megabytes.
 */
static void
msg_drop_bodies(struct spool_msg *m)
{
    free(m->subject);
    free(m->text);
    free(m->html);
    free(m->body);
    m->subject = m->text = m->html = m->body = NULL;
}

/* Reads the text of m back from its file for a delivery.  0 or -E_*. */
static int
msg_load_bodies(struct notify *n, struct spool_msg *m)
{
    char *path = fsutil_join(n->dir, m->file);
    unsigned char *data = NULL;
    size_t len = 0;
    cJSON *o = NULL;
    int rc = -E_NOMEM;

    if (path == NULL)
        goto out;
    if ((rc = fsutil_read_file(path, FILE_MAX, &data, &len, NULL)) != 0)
        goto out;
    if ((o = cJSON_ParseWithLength((const char *)data, len)) == NULL) {
        rc = -E_BAD_INPUT;
        goto out;
    }
    msg_drop_bodies(m);
    set_str(&m->subject, json_str(o, "subject"));
    set_str(&m->text, json_str(o, "text"));
    set_str(&m->html, json_str(o, "html"));
    set_str(&m->body, json_str(o, "body"));
    rc = 0;
out:
    cJSON_Delete(o);
    free(data);
    free(path);
    return rc;
}

static void
msg_unlink(struct notify *n, struct spool_msg *m)
{
    char *path = fsutil_join(n->dir, m->file), *cause = NULL;

    for (struct spool_msg **pp = &n->spool; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            n->nspool--;
            break;
        }
    }
    if (path != NULL && fsutil_remove_tree(path, &cause) != 0)
        log_warn("notify: cannot remove %s: %s", path, cause != NULL ? cause : "?");
    free(cause);
    free(path);
    msg_free(m);
}

static void schedule_delivery(struct notify *n);
static void schedule_save(struct notify *n);
static void on_deliver_timer(uv_timer_t *t);
static void arm_report(struct notify *n);

/* Adds m to the spool: written first, then kept in memory.  Takes m. */
static int
spool_add(struct notify *n, struct spool_msg *m)
{
    char name[64], *path = NULL;
    uv_timeval64_t tv;
    int rc;

    /* Wall-clock microseconds and a counter: ordered, and unique across restarts. */
    if (uv_gettimeofday(&tv) != 0)
        tv.tv_sec = now_s(), tv.tv_usec = 0;
    for (int tries = 0; tries < 100; tries++) {
        snprintf(name, sizeof(name), MSG_PREFIX "%011lld%06d-%06u" MSG_SUFFIX,
                 (long long)tv.tv_sec, (int)tv.tv_usec, n->seq++ % 1000000u);
        free(path);
        if ((path = fsutil_join(n->dir, name)) == NULL || !fsutil_exists(path))
            break;
    }
    free(path);
    m->n = n;
    m->created = now_s();
    m->next_try = m->created;
    if ((m->file = strdup(name)) == NULL) {
        msg_free(m);
        return -E_NOMEM;
    }
    if ((rc = msg_write(n, m)) != 0) {
        msg_free(m);
        return rc;
    }
    msg_drop_bodies(m);
    m->next = n->spool;
    n->spool = m;
    n->nspool++;
    return 0;
}

static void
spool_load(struct notify *n)
{
    struct fsutil_dir *dir = NULL;
    char **names = NULL, *cause = NULL;
    size_t count = 0, loaded = 0;
    int rc;

    if ((rc = fsutil_dir_open(n->dir, 0, 0700, &dir, &cause)) != 0 ||
        (rc = fsutil_dir_list(dir, &names, &count, &cause)) != 0) {
        log_warn("notify: cannot read the spool %s: %s", n->dir,
                 cause != NULL ? cause : err_message(rc));
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        size_t l = strlen(names[i]);
        unsigned char *data = NULL;
        char *path;
        size_t len = 0;
        cJSON *o = NULL;
        struct spool_msg *m;
        const char *ch;

        if (strncmp(names[i], MSG_PREFIX, strlen(MSG_PREFIX)) != 0 || l < strlen(MSG_SUFFIX) ||
            strcmp(names[i] + l - strlen(MSG_SUFFIX), MSG_SUFFIX) != 0)
            continue;
        if ((path = fsutil_join(n->dir, names[i])) == NULL)
            break;
        if (fsutil_read_file(path, FILE_MAX, &data, &len, NULL) != 0 ||
            (o = cJSON_ParseWithLength((const char *)data, len)) == NULL ||
            (ch = json_str(o, "channel")) == NULL || (m = calloc(1, sizeof(*m))) == NULL) {
            log_warn("notify: %s is not a spooled message; it is left alone", path);
            free(path);
            free(data);
            cJSON_Delete(o);
            continue;
        }
        m->n = n;
        m->is_email = strcmp(ch, "email") == 0;
        m->file = strdup(names[i]);
        set_str(&m->target, json_str(o, "target"));
        set_str(&m->last_error, json_str(o, "last_error"));
        m->created = json_int(o, "created");
        m->next_try = json_int(o, "next_try");
        m->attempts = (unsigned)json_int(o, "attempts");
        m->next = n->spool;
        n->spool = m;
        n->nspool++;
        loaded++;
        free(path);
        free(data);
        cJSON_Delete(o);
    }
    if (loaded > 0)
        log_info("notify: %zu message%s in the spool %s", loaded, loaded == 1 ? "" : "s", n->dir);
out:
    strv_free(names, count);
    fsutil_dir_free(dir);
    free(cause);
}

/* Delivery. */

static const struct config_webhook *
webhook_of(const struct notify *n, const char *url)
{
    const struct config_notify *c = cfg(n);

    for (size_t i = 0; c != NULL && url != NULL && i < c->nwebhooks; i++) {
        if (strcmp(c->webhooks[i].url, url) == 0)
            return &c->webhooks[i];
    }
    return NULL;
}

static const char *
msg_channel(const struct spool_msg *m)
{
    return m->is_email ? "email" : m->target;
}

static void
on_delivered(void *arg, int rc, const char *reply, const char *cause)
{
    struct spool_msg *m = arg;
    struct notify *n = m->n;
    struct channel *c = channel_get(n, msg_channel(m));
    int64_t now = now_s();

    m->xfer = NULL;
    if (c != NULL) {
        c->busy = 0;
        c->last_attempt = now;
        set_str(&c->last_reply, reply);
    }
    if (rc == 0) {
        log_info("notify: delivered %s to %s%s%s", m->is_email ? "an e-mail" : "a webhook event",
                 m->is_email ? "the SMTP server" : msg_channel(m), reply ? ": " : "",
                 reply ? reply : "");
        if (c != NULL) {
            c->last_ok = now;
            if (c->failing_logged)
                status_recheck(n->in.status);
            c->failing_since = 0;
            c->failing_logged = 0;
            set_str(&c->last_error, NULL);
        }
        n->delivered++;
        msg_unlink(n, m);
    } else {
        int64_t delay = cfg(n) != NULL ? cfg(n)->retry_seconds : 60;

        for (unsigned i = 0; i < m->attempts && delay < RETRY_MAX; i++)
            delay *= 2;
        if (delay > RETRY_MAX)
            delay = RETRY_MAX;
        m->attempts++;
        m->next_try = now + delay;
        set_str(&m->last_error, cause != NULL ? cause : err_message(rc));
        log_warn("notify: delivery to %s failed (attempt %u): %s; next try in %lld s",
                 m->is_email ? "the SMTP server" : msg_channel(m), m->attempts, m->last_error,
                 (long long)delay);
        n->failed++;
        if (c != NULL) {
            if (c->failing_since == 0)
                c->failing_since = now;
            set_str(&c->last_error, m->last_error);
        }
        msg_write(n, m);
        msg_drop_bodies(m);
        /* The channel backs off as a whole: its other messages wait as long. */
        for (struct spool_msg *o = n->spool; o != NULL; o = o->next) {
            if (o != m && o->xfer == NULL && o->next_try < m->next_try &&
                o->is_email == m->is_email && strcmp(msg_channel(o), msg_channel(m)) == 0)
                o->next_try = m->next_try;
        }
    }
    n->state_dirty = 1;
    schedule_save(n);
    schedule_delivery(n);
}

/* Starts the oldest due message of every idle channel; arms the timer for the next one. */
static void
deliver_due(struct notify *n)
{
    int64_t now = now_s(), next = 0;
    struct spool_msg *m, *nx;

    if (n->stopping || !n->started)
        return;
    for (m = n->spool; m != NULL; m = nx) {
        nx = m->next;
        if (m->xfer == NULL && now - m->created > DROP_AFTER) {
            log_warn("notify: dropped a message to %s after 7 days of failed delivery (last "
                     "error: %s)",
                     m->is_email ? "the SMTP server" : msg_channel(m),
                     m->last_error != NULL ? m->last_error : "none");
            n->dropped++;
            msg_unlink(n, m);
            continue;
        }
        if (m->xfer == NULL && ((m->is_email && (cfg(n) == NULL || cfg(n)->smtp_url == NULL)) ||
                                (!m->is_email && webhook_of(n, m->target) == NULL))) {
            log_warn("notify: dropped a message to %s: the channel is no longer configured",
                     m->is_email ? "e-mail" : msg_channel(m));
            n->dropped++;
            msg_unlink(n, m);
        }
    }
    for (;;) {
        struct spool_msg *best = NULL;
        struct channel *c;
        char *cause = NULL;
        int rc;

        /* The oldest due message whose channel is idle (so each channel gets its oldest). */
        for (m = n->spool; m != NULL; m = m->next) {
            if (m->xfer != NULL || m->next_try > now)
                continue;
            if ((c = channel_get(n, msg_channel(m))) == NULL || c->busy)
                continue;
            if (best == NULL || strcmp(m->file, best->file) < 0)
                best = m;
        }
        if (best == NULL)
            break;
        c = channel_get(n, msg_channel(best));
        if ((rc = msg_load_bodies(n, best)) != 0) {
            log_warn("notify: dropped the spooled message %s: it cannot be read back (%s)",
                     best->file, err_message(rc));
            n->dropped++;
            msg_unlink(n, best);
            continue;
        }
        if (best->is_email)
            rc = notify_send_email(n->multi, cfg(n), n->host, best->subject,
                                   best->text != NULL ? best->text : "", best->html, on_delivered,
                                   best, &best->xfer, &cause);
        else
            rc = notify_send_webhook(n->multi, webhook_of(n, best->target), cfg(n)->timeout,
                                     best->body != NULL ? best->body : "{}", on_delivered, best,
                                     &best->xfer, &cause);
        if (rc != 0) {
            /* Nothing started (a missing password file): a failed attempt all the same. */
            if (c != NULL)
                c->busy = 1;
            on_delivered(best, rc, NULL, cause);
            free(cause);
            return; /* on_delivered scheduled the next round */
        }
        if (c != NULL)
            c->busy = 1;
    }
    for (m = n->spool; m != NULL; m = m->next) {
        if (m->xfer == NULL && (next == 0 || m->next_try < next))
            next = m->next_try;
    }
    if (next != 0 && n->timers) {
        int64_t wait = next - now_s();

        if (wait < 1)
            wait = 1;
        uv_timer_start(&n->deliver, on_deliver_timer, (uint64_t)wait * 1000, 0);
    }
}

static void
on_deliver_timer(uv_timer_t *t)
{
    deliver_due(t->data);
}

/* The next round of deliveries, from the loop (never nested in a transfer's callback). */
static void
schedule_delivery(struct notify *n)
{
    if (n->timers && !n->stopping)
        uv_timer_start(&n->deliver, on_deliver_timer, 0, 0);
}

static void
on_save(uv_timer_t *t)
{
    struct notify *n = t->data;

    /* While events wait for their window, flush_pending saves (after spooling them). */
    if (n->state_dirty && n->npending == 0)
        state_save(n);
}

/* What was announced is written within a second (many changes make one write). */
static void
schedule_save(struct notify *n)
{
    if (n->timers && !n->stopping && !uv_is_active((uv_handle_t *)&n->save))
        uv_timer_start(&n->save, on_save, 1000, 0);
}

static void
on_progress(void *arg)
{
    struct notify *n = arg;

    notify_xfer_progress(n->multi);
}

/* Composing messages. */

static const char *
level_word(int level)
{
    return level >= STATUS_CRITICAL ? "CRITICAL" : level == STATUS_WARNING ? "WARNING" : "OK";
}

/* "2026-12-04T16:00:00Z" */
static void
iso_time(int64_t t, char *buf, size_t len)
{
    struct tm tm;

    if (sys_gmtime(t, &tm) != 0) {
        snprintf(buf, len, "%lld", (long long)t);
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* What a kind of event is called in a subject or a line. */
static const char *
kind_words(const char *kind)
{
    static const struct {
        const char *kind, *words;
    } w[] = {
        {"warning", "warning"},
        {"recovered", "recovered"},
        {"renew_failed", "renewal failed"},
        {"renew_recovered", "renewal recovered"},
        {"deploy_failed", "deploy failed"},
        {"reminder", "still critical"},
        {"test", "test message"},
        {"notify_failing", "alerts not delivered"},
    };

    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        if (strcmp(w[i].kind, kind) == 0)
            return w[i].words;
    }
    return kind;
}

/* The JSON body of one event (format json), a heap string. */
static char *
event_json(const struct notify *n, const struct nevent *e, int format)
{
    cJSON *o = cJSON_CreateObject();
    char when[64], line[1200], *out = NULL;

    if (o == NULL)
        return NULL;
    iso_time(e->time, when, sizeof(when));
    if (format == CONFIG_NOTIFY_FORMAT_JSON) {
        cJSON_AddStringToObject(o, "event", e->kind);
        cJSON_AddStringToObject(o, "host", n->host);
        if (e->name != NULL)
            cJSON_AddStringToObject(o, "certificate", e->name);
        else
            cJSON_AddNullToObject(o, "certificate");
        cJSON_AddStringToObject(o, "level", status_level_name(e->level));
        if (e->code[0] != '\0')
            cJSON_AddStringToObject(o, "code", e->code);
        else
            cJSON_AddNullToObject(o, "code");
        cJSON_AddStringToObject(o, "message", e->message != NULL ? e->message : "");
        cJSON_AddItemToObject(
            o, "data", e->data != NULL ? cJSON_Duplicate(e->data, 1) : cJSON_CreateObject());
        cJSON_AddStringToObject(o, "time", when);
    } else {
        snprintf(line, sizeof(line), "[certagent] %s: %s %s%s%s: %s", n->host,
                 level_word(e->level), e->name != NULL ? e->name : "", e->name != NULL ? " " : "",
                 kind_words(e->kind), e->message != NULL ? e->message : "");
        if (format == CONFIG_NOTIFY_FORMAT_TEAMS) {
            cJSON_AddStringToObject(o, "@type", "MessageCard");
            cJSON_AddStringToObject(o, "@context", "https://schema.org/extensions");
            cJSON_AddStringToObject(o, "summary", line);
            cJSON_AddStringToObject(o, "themeColor",
                                    e->level >= STATUS_CRITICAL  ? "D13438"
                                    : e->level == STATUS_WARNING ? "FFB900"
                                                                 : "107C10");
        }
        cJSON_AddStringToObject(o, "text", line);
    }
    out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
};

static void
sb_add(struct sbuf *b, const char *s)
{
    size_t l = strlen(s);

    if (b->failed)
        return;
    if (b->len + l + 1 > b->cap) {
        size_t cap = (b->cap + l + 1) * 2;
        char *p = realloc(b->p, cap);

        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, l + 1);
    b->len += l;
}

static void
sb_html(struct sbuf *b, const char *s)
{
    char one[2] = {0, 0};

    for (; *s; s++) {
        if (*s == '<')
            sb_add(b, "&lt;");
        else if (*s == '>')
            sb_add(b, "&gt;");
        else if (*s == '&')
            sb_add(b, "&amp;");
        else if (*s == '"')
            sb_add(b, "&quot;");
        else {
            one[0] = *s;
            sb_add(b, one);
        }
    }
}

/* Spools one e-mail for the events in the list, and one POST per event per webhook. */
static void
flush_events(struct notify *n, struct nevent *list, size_t count)
{
    const struct config_notify *c = cfg(n);
    struct sbuf text = {0}, html = {0};
    char subject[400], line[600];
    int worst = 0;

    for (struct nevent *e = list; e != NULL; e = e->next)
        worst = e->level > worst ? e->level : worst;
    if (c != NULL && c->smtp_url != NULL) {
        struct spool_msg *m = calloc(1, sizeof(*m));

        if (count == 1)
            snprintf(subject, sizeof(subject), "[certagent] %s: %s %s%s%s", n->host,
                     level_word(list->level), list->name != NULL ? list->name : "",
                     list->name != NULL ? " " : "", kind_words(list->kind));
        else
            snprintf(subject, sizeof(subject), "[certagent] %s: %s, %zu alerts", n->host,
                     level_word(worst), count);
        snprintf(line, sizeof(line), "certagent on %s: %zu alert%s\n\n", n->host, count,
                 count == 1 ? "" : "s");
        sb_add(&text, line);
        sb_add(&html, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>");
        sb_html(&html, subject);
        sb_add(&html, "</title></head><body style=\"font-family:Segoe UI,Arial,sans-serif\">"
                      "<table cellpadding=\"6\" cellspacing=\"0\" border=\"1\" "
                      "style=\"border-collapse:collapse\"><tr><th>level</th><th>certificate</th>"
                      "<th>what</th><th>details</th></tr>");
        for (struct nevent *e = list; e != NULL; e = e->next) {
            char when[64];

            iso_time(e->time, when, sizeof(when));
            snprintf(line, sizeof(line), "%-8s %s: %s (%s)\n", level_word(e->level),
                     e->name != NULL ? e->name : "(agent)", kind_words(e->kind), when);
            sb_add(&text, line);
            sb_add(&text, "  ");
            sb_add(&text, e->message != NULL ? e->message : "");
            sb_add(&text, "\n\n");
            sb_add(&html, "<tr><td style=\"color:");
            sb_add(&html, e->level >= STATUS_CRITICAL  ? "#b00020"
                          : e->level == STATUS_WARNING ? "#8a5a00"
                                                       : "#1b6e20");
            sb_add(&html, "\"><b>");
            sb_add(&html, level_word(e->level));
            sb_add(&html, "</b></td><td>");
            sb_html(&html, e->name != NULL ? e->name : "(agent)");
            sb_add(&html, "</td><td>");
            sb_html(&html, kind_words(e->kind));
            sb_add(&html, "</td><td>");
            sb_html(&html, e->message != NULL ? e->message : "");
            sb_add(&html, "</td></tr>");
        }
        sb_add(&text, "certctl status shows every certificate; certctl ack NAME stops the "
                      "reminders of an open problem.\n");
        sb_add(&html, "</table><p>certctl status shows every certificate; certctl ack NAME "
                      "stops the reminders of an open problem.</p></body></html>");
        if (m == NULL || text.failed || html.failed || (m->subject = strdup(subject)) == NULL) {
            free(m);
            log_warn("notify: out of memory: an e-mail of %zu alerts is lost", count);
        } else {
            m->is_email = 1;
            m->text = text.p;
            m->html = html.p;
            text.p = html.p = NULL;
            spool_add(n, m);
        }
    }
    free(text.p);
    free(html.p);
    for (size_t i = 0; c != NULL && i < c->nwebhooks; i++) {
        for (struct nevent *e = list; e != NULL; e = e->next) {
            struct spool_msg *m = calloc(1, sizeof(*m));

            if (m == NULL || (m->target = strdup(c->webhooks[i].url)) == NULL ||
                (m->body = event_json(n, e, c->webhooks[i].format)) == NULL) {
                msg_free(m);
                continue;
            }
            spool_add(n, m);
        }
    }
}

static void
nevent_free(struct nevent *e)
{
    free(e->name);
    free(e->message);
    cJSON_Delete(e->data);
    free(e);
}

static void
flush_pending(struct notify *n)
{
    struct nevent *list = n->pending;
    size_t count = n->npending;

    n->pending = NULL;
    n->pending_tail = &n->pending;
    n->npending = 0;
    if (list != NULL)
        flush_events(n, list, count);
    /* The spool first, then what was announced: a crash between sends nothing twice. */
    state_save(n);
    while (list != NULL) {
        struct nevent *e = list;

        list = e->next;
        nevent_free(e);
    }
    schedule_delivery(n);
}

static void
on_coalesce(uv_timer_t *t)
{
    flush_pending(t->data);
}

/* Queues an event; takes data. */
static void
event_add(struct notify *n, const char *kind, const char *name, int level, const char *code,
          const char *message, cJSON *data)
{
    struct nevent *e = calloc(1, sizeof(*e));

    if (e == NULL || (name != NULL && (e->name = strdup(name)) == NULL) ||
        (e->message = strdup(message)) == NULL) {
        if (e != NULL)
            free(e->name);
        free(e);
        cJSON_Delete(data);
        return;
    }
    snprintf(e->kind, sizeof(e->kind), "%s", kind);
    snprintf(e->code, sizeof(e->code), "%s", code != NULL ? code : "");
    e->level = level;
    e->data = data;
    e->time = now_s();
    *n->pending_tail = e;
    n->pending_tail = &e->next;
    n->npending++;
    log_info("notify: %s %s: %s", name != NULL ? name : "agent", kind_words(kind), message);
    /* The system's log too: the journal with CERTAGENT_CODE=, the Event Log by code. */
    if (strcmp(kind, "test") != 0)
        platform_alert_log(level, kind, code, name, message);
    if (!n->timers)
        return;
    if (cfg(n) == NULL || cfg(n)->coalesce_seconds == 0)
        uv_timer_start(&n->coalesce, on_coalesce, 0, 0);
    else if (!uv_is_active((uv_handle_t *)&n->coalesce))
        uv_timer_start(&n->coalesce, on_coalesce, (uint64_t)cfg(n)->coalesce_seconds * 1000, 0);
}

static cJSON *
warning_data(const struct status_warning *w)
{
    cJSON *d = cJSON_CreateObject();

    for (size_t i = 0; d != NULL && i < w->ndata; i++) {
        if (w->data[i].is_str)
            cJSON_AddStringToObject(d, w->data[i].key, w->data[i].str);
        else
            cJSON_AddNumberToObject(d, w->data[i].key, (double)w->data[i].num);
    }
    return d;
}

/* Codes that have events of their own (renew, deploy) are not judged with the rest. */
static int
own_event(const char *code)
{
    return strcmp(code, "renewal_failing") == 0 || strcmp(code, "deploy_failing") == 0;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A certificate was judged again: announce a rise, new warnings, a recovery. */
static void
check_status(struct notify *n, const struct store_cert *cert)
{
    struct status_eval *ev = malloc(sizeof(*ev));
    struct announced *a;
    const char *codes[STATUS_WARNINGS_MAX];
    char joined[256] = "", msg[2048] = "";
    size_t nc = 0, used = 0;
    int level = 0, first = -1;

    if (ev == NULL || n->in.status == NULL)
        goto out;
    status_evaluate(n->in.status, cert, now_s(), ev);
    for (size_t i = 0; i < ev->nwarnings; i++) {
        if (own_event(ev->w[i].code))
            continue;
        codes[nc++] = ev->w[i].code;
        level = ev->w[i].level > level ? ev->w[i].level : level;
    }
    qsort(codes, nc, sizeof(codes[0]), cmp_str);
    for (size_t i = 0; i < nc; i++) {
        size_t l = strlen(joined);

        snprintf(joined + l, sizeof(joined) - l, "%s%s", i > 0 ? "," : "", codes[i]);
    }
    if ((a = ann_find(n, cert->name, nc > 0)) == NULL)
        goto out; /* no warning and nothing announced */
    if (strcmp(a->codes, joined) == 0 && a->level == level)
        goto out;
    for (size_t i = 0; i < ev->nwarnings; i++) {
        const struct status_warning *w = &ev->w[i];

        if (own_event(w->code) || (in_list(a->codes, w->code) && level <= a->level))
            continue;
        if (first < 0 || w->level > ev->w[first].level)
            first = (int)i;
        if (used < sizeof(msg))
            used += (size_t)snprintf(msg + used, sizeof(msg) - used, "%s%s", used ? "; " : "",
                                     w->message);
    }
    if (first >= 0) {
        event_add(n, "warning", cert->name, level, ev->w[first].code, msg,
                  warning_data(&ev->w[first]));
        if (level >= STATUS_CRITICAL)
            a->last_sent = now_s();
    } else if (level == STATUS_OK && a->level > STATUS_OK) {
        cJSON *d = cJSON_CreateObject();
        char cleared[48];

        snprintf(msg, sizeof(msg), "%s has no warning any more (it had: %s)", cert->name,
                 a->codes[0] ? a->codes : "none");
        if (d != NULL)
            cJSON_AddStringToObject(d, "cleared", a->codes);
        snprintf(cleared, sizeof(cleared), "%.*s", (int)strcspn(a->codes, ","), a->codes);
        event_add(n, "recovered", cert->name, STATUS_OK, cleared[0] ? cleared : NULL, msg, d);
    }
    if (strcmp(a->codes, joined) != 0)
        a->ack[0] = '\0'; /* an acknowledgement lasts until the problem changes */
    snprintf(a->codes, sizeof(a->codes), "%s", joined);
    a->level = level;
    n->state_dirty = 1;
out:
    free(ev);
}

/* The scheduler's state of a certificate: a renewal began failing, or succeeded again. */
static void
check_renew(struct notify *n, const char *name)
{
    struct renew_info ri;
    struct announced *a;
    char msg[1400], when[64];
    cJSON *d;

    if (n->in.renew == NULL || renew_info_get(n->in.renew, name, &ri) != 0 || ri.loading)
        return;
    if (ri.last_ok == 0 && ri.last_attempt != 0) {
        if ((a = ann_find(n, name, 1)) == NULL)
            return;
        a->failures = ri.failures;
        if (a->renew_failing)
            return;
        a->renew_failing = 1;
        n->state_dirty = 1;
        if (ri.next != 0)
            sys_format_time(ri.next, when, sizeof(when));
        snprintf(msg, sizeof(msg),
                 "%s: renewal failed (%u attempt%s in a row): %s; next attempt %s%s", name,
                 ri.failures, ri.failures == 1 ? "" : "s",
                 ri.last_error != NULL ? ri.last_error : "no reason given",
                 ri.next != 0 ? "at " : "not planned", ri.next != 0 ? when : "");
        if ((d = cJSON_CreateObject()) != NULL) {
            cJSON_AddStringToObject(d, "error", ri.last_error != NULL ? ri.last_error : "");
            cJSON_AddNumberToObject(d, "failures", ri.failures);
            cJSON_AddNumberToObject(d, "next_attempt", (double)ri.next);
            if (ri.ca != NULL)
                cJSON_AddStringToObject(d, "ca", ri.ca);
        }
        event_add(n, "renew_failed", name, STATUS_WARNING, "renewal_failing", msg, d);
    } else if (ri.last_ok == 1 && (a = ann_find(n, name, 0)) != NULL && a->renew_failing) {
        a->renew_failing = 0;
        n->state_dirty = 1;
        snprintf(msg, sizeof(msg), "%s: renewed successfully after %u failed attempt%s", name,
                 a->failures, a->failures == 1 ? "" : "s");
        if ((d = cJSON_CreateObject()) != NULL)
            cJSON_AddNumberToObject(d, "failures", a->failures);
        a->failures = 0;
        event_add(n, "renew_recovered", name, STATUS_OK, "renewal_failing", msg, d);
    }
}

static void
check_deploy(struct notify *n, const struct event *ev)
{
    struct announced *a;
    char msg[1400];
    cJSON *d;

    if (ev->name == NULL)
        return;
    if (ev->rc == 0) {
        if ((a = ann_find(n, ev->name, 0)) != NULL && a->deploy_failed != 0) {
            a->deploy_failed = 0;
            n->state_dirty = 1;
        }
        return;
    }
    if ((a = ann_find(n, ev->name, 1)) == NULL || a->deploy_failed == ev->version)
        return;
    a->deploy_failed = ev->version;
    n->state_dirty = 1;
    snprintf(msg, sizeof(msg),
             "%s: deploying version %u failed: %s; fix it and run certctl deploy %s", ev->name,
             ev->version, ev->cause != NULL ? ev->cause : err_message(ev->rc), ev->name);
    if ((d = cJSON_CreateObject()) != NULL) {
        cJSON_AddNumberToObject(d, "version", ev->version);
        cJSON_AddStringToObject(d, "error", ev->cause != NULL ? ev->cause : err_message(ev->rc));
    }
    event_add(n, "deploy_failed", ev->name, STATUS_WARNING, "deploy_failing", msg, d);
}

/* How long after the scheduler's first "something changed" every certificate is looked at. */
#define RESCAN_MS 200

static void
rescan_all(struct notify *n)
{
    for (size_t i = 0; i < store_count(n->in.store); i++)
        check_renew(n, store_at(n->in.store, i)->name);
}

static void
on_rescan(uv_timer_t *t)
{
    struct notify *n = t->data;

    if (n->stopping)
        return;
    rescan_all(n);
    if (n->state_dirty)
        schedule_save(n);
}

static void
on_event(void *arg, const struct event *ev)
{
    struct notify *n = arg;
    const struct store_cert *cert;

    /* Transitions are followed without channels too (the system log gets them, and a
     * channel configured later does not hear of old ones). */
    if (n->stopping)
        return;
    switch (ev->type) {
    case EVENT_STATUS_CHANGED:
        if (ev->name == NULL || (cert = store_find(n->in.store, ev->name)) == NULL)
            return;
        check_status(n, cert);
        check_renew(n, ev->name);
        break;
    case EVENT_RENEW_STATE:
        if (ev->name != NULL)
            check_renew(n, ev->name);
        else if (n->timers) {
            /* The scheduler says "something changed" once per change (10,000 at the load of a
             * big store): one look at every certificate shortly after, not one per change. */
            if (!uv_is_active((uv_handle_t *)&n->rescan))
                uv_timer_start(&n->rescan, on_rescan, RESCAN_MS, 0);
        } else
            rescan_all(n);
        break;
    case EVENT_DEPLOY_RESULT:
        check_deploy(n, ev);
        break;
    case EVENT_CERT_CHANGED:
        if (ev->name != NULL && store_find(n->in.store, ev->name) == NULL)
            ann_remove(n, ev->name);
        break;
    case EVENT_CONFIG_RELOADED:
        arm_report(n);
        schedule_delivery(n);
        break;
    default:
        break;
    }
    if (n->state_dirty)
        schedule_save(n);
}

/* Reminders of open critical problems; channels failing too long. */
static void
on_tick(uv_timer_t *t)
{
    struct notify *n = t->data;
    const struct config_notify *c = cfg(n);
    int64_t now = now_s();

    if (c == NULL)
        return;
    for (struct channel *ch = n->channels; ch != NULL; ch = ch->next) {
        if (ch->failing_since != 0 && !ch->failing_logged &&
            now - ch->failing_since >= (int64_t)c->failing_minutes * 60) {
            ch->failing_logged = 1;
            status_recheck(n->in.status);
            log_warn("notify: alerts to %s have failed for %lld minutes: %s; certctl notify "
                     "status shows the spool",
                     strcmp(ch->key, "email") == 0 ? "the SMTP server" : ch->key,
                     (long long)((now - ch->failing_since) / 60),
                     ch->last_error != NULL ? ch->last_error : "");
        }
    }
    if (c->repeat_hours == 0 || n->in.status == NULL)
        return;
    for (size_t b = 0; b < NBUCKETS; b++) {
        for (struct announced *a = n->buckets[b]; a != NULL; a = a->next) {
            const struct store_cert *cert;
            struct status_eval *ev;
            char msg[2048] = "";
            size_t used = 0;
            int first = -1;

            if (a->level < STATUS_CRITICAL || strcmp(a->ack, "*") == 0 ||
                now - a->last_sent < (int64_t)c->repeat_hours * 3600 ||
                (cert = store_find(n->in.store, a->name)) == NULL ||
                (ev = malloc(sizeof(*ev))) == NULL)
                continue;
            status_evaluate(n->in.status, cert, now, ev);
            for (size_t i = 0; i < ev->nwarnings; i++) {
                if (ev->w[i].level < STATUS_CRITICAL || in_list(a->ack, ev->w[i].code))
                    continue;
                if (first < 0)
                    first = (int)i;
                if (used < sizeof(msg))
                    used += (size_t)snprintf(msg + used, sizeof(msg) - used, "%s%s",
                                             used ? "; " : "", ev->w[i].message);
            }
            if (first >= 0) {
                a->last_sent = now;
                n->state_dirty = 1;
                event_add(n, "reminder", a->name, STATUS_CRITICAL, ev->w[first].code, msg,
                          warning_data(&ev->w[first]));
            }
            free(ev);
        }
    }
}

static void test_end(struct test_run *t);

/* The status report. */

int64_t
notify_report_next(const struct config_notify *c, int64_t now)
{
    struct tm tm;
    int64_t t;

    if (c == NULL || c->report == CONFIG_NOTIFY_REPORT_OFF || sys_localtime(now, &tm) != 0)
        return 0;
    for (int day = 0; day <= 8; day++) {
        struct tm d = tm;

        d.tm_mday += day;
        d.tm_hour = c->report_hour;
        d.tm_min = c->report_minute;
        d.tm_sec = 0;
        d.tm_isdst = -1;
        if ((t = (int64_t)mktime(&d)) <= now)
            continue;
        if (c->report == CONFIG_NOTIFY_REPORT_WEEKLY && d.tm_wday != c->report_wday)
            continue;
        return t;
    }
    return 0;
}

int
notify_send_report(struct notify *n, char *subject, size_t len, char **cause)
{
    struct digest d;
    int rc;

    memset(&d, 0, sizeof(d));
    if (cfg(n) == NULL || cfg(n)->smtp_url == NULL) {
        err_set(cause, "no e-mail is configured: add $.notify.email to the config and reload "
                       "(docs/notifications.md)");
        return -E_NOT_FOUND;
    }
    if ((rc = digest_build(n->in.status, now_s(), &d, cause)) != 0)
        return rc;
    if ((rc = notify_spool_email(n, d.subject, d.text, d.html, cause)) == 0) {
        log_info("notify: status report spooled: %s", d.subject);
        if (subject != NULL)
            snprintf(subject, len, "%s", d.subject);
    }
    digest_clear(&d);
    return rc;
}

static void arm_report(struct notify *n);

static void
on_report_check(uv_timer_t *t)
{
    arm_report(t->data);
}

static void
on_report(uv_timer_t *t)
{
    struct notify *n = t->data;
    char *cause = NULL;
    int rc;

    if (n->stopping)
        return;
    if (cfg(n) != NULL && cfg(n)->report != CONFIG_NOTIFY_REPORT_OFF &&
        now_s() - n->last_report > 60) {
        if ((rc = notify_send_report(n, NULL, 0, &cause)) != 0)
            log_warn("notify: the scheduled status report was not sent: %s",
                     cause != NULL ? cause : err_message(rc));
        n->last_report = now_s();
        state_save(n);
        free(cause);
    }
    arm_report(n);
}

/* Arms the report timer for the next scheduled time (at most a day ahead, then again). */
static void
arm_report(struct notify *n)
{
    int64_t now = now_s(), next = notify_report_next(cfg(n), now);
    int64_t wait = next - now;

    if (!n->timers || n->stopping)
        return;
    if (next == 0) {
        uv_timer_stop(&n->report);
        return;
    }
    /* A clock change or a sleep is caught by looking again at least hourly. */
    if (wait > 3600) {
        uv_timer_start(&n->report, on_report_check, 3600 * 1000, 0);
        return;
    }
    uv_timer_start(&n->report, on_report, (uint64_t)(wait > 0 ? wait : 0) * 1000, 0);
}

/* Lifecycle. */

int
notify_new(const struct env *env, const struct notify_inputs *in, struct notify **out,
           char **cause)
{
    struct notify *n;
    size_t hl = 0;
    int rc;

    *out = NULL;
    if ((n = calloc(1, sizeof(*n))) == NULL)
        return -E_NOMEM;
    n->env = env;
    n->in = *in;
    n->pending_tail = &n->pending;
    hl = sizeof(n->host);
    if (uv_os_gethostname(n->host, &hl) != 0)
        snprintf(n->host, sizeof(n->host), "localhost");
    if ((n->dir = fsutil_join(env->state_dir, NOTIFY_DIR)) == NULL) {
        free(n);
        return -E_NOMEM;
    }
    if ((rc = http_loop_new(env->loop, "notify", on_progress, n, &n->hl, cause)) != 0) {
        free(n->dir);
        free(n);
        return rc;
    }
    n->multi = http_loop_multi(n->hl);
    if (events_subscribe(env->events,
                         EVENT_MASK(EVENT_STATUS_CHANGED) | EVENT_MASK(EVENT_RENEW_STATE) |
                             EVENT_MASK(EVENT_DEPLOY_RESULT) | EVENT_MASK(EVENT_CERT_CHANGED) |
                             EVENT_MASK(EVENT_CONFIG_RELOADED),
                         on_event, n) != 0) {
        notify_free(n);
        return -E_NOMEM;
    }
    *out = n;
    return 0;
}

int
notify_start(struct notify *n, char **cause)
{
    int rc;

    if ((rc = fsutil_mkdir_p(n->dir, 0700, cause)) != 0)
        return rc;
    if (uv_timer_init(n->env->loop, &n->coalesce) != 0 ||
        uv_timer_init(n->env->loop, &n->deliver) != 0 ||
        uv_timer_init(n->env->loop, &n->tick) != 0 ||
        uv_timer_init(n->env->loop, &n->report) != 0 ||
        uv_timer_init(n->env->loop, &n->save) != 0 ||
        uv_timer_init(n->env->loop, &n->rescan) != 0) {
        err_set(cause, "notify: cannot make timers");
        return -E_INTERNAL;
    }
    n->coalesce.data = n->deliver.data = n->tick.data = n->report.data = n->save.data = n;
    n->rescan.data = n;
    n->timers = 1;
    state_load(n);
    spool_load(n);
    n->started = 1;
    /* The first look soon after start: reminders that fell due while the agent was down. */
    uv_timer_start(&n->tick, on_tick, 1000, TICK_MS);
    uv_unref((uv_handle_t *)&n->tick);
    arm_report(n);
    uv_unref((uv_handle_t *)&n->report);
    schedule_delivery(n);
    return 0;
}

void
notify_stop(struct notify *n)
{
    if (n == NULL || n->stopping)
        return;
    /* Events still in the window are spooled now, so that a clean stop loses none. */
    if (n->npending > 0)
        flush_pending(n);
    else if (n->state_dirty)
        state_save(n);
    n->stopping = 1;
    for (struct spool_msg *m = n->spool; m != NULL; m = m->next) {
        notify_xfer_cancel(n->multi, m->xfer);
        m->xfer = NULL;
    }
    while (n->tests != NULL) {
        struct test_run *t = n->tests;

        for (size_t i = 0; i < t->count; i++) {
            if (t->x[i] == NULL)
                continue;
            notify_xfer_cancel(n->multi, t->x[i]);
            t->x[i] = NULL;
            t->r[i].rc = -E_UNAVAILABLE;
            t->r[i].error = "the agent is stopping";
        }
        test_end(t); /* takes it off the list */
    }
    if (n->timers) {
        uv_close((uv_handle_t *)&n->coalesce, NULL);
        uv_close((uv_handle_t *)&n->deliver, NULL);
        uv_close((uv_handle_t *)&n->tick, NULL);
        uv_close((uv_handle_t *)&n->report, NULL);
        uv_close((uv_handle_t *)&n->save, NULL);
        uv_close((uv_handle_t *)&n->rescan, NULL);
    }
    http_loop_free(n->hl);
    n->hl = NULL;
}

void
notify_free(struct notify *n)
{
    if (n == NULL)
        return;
    events_unsubscribe(n->env->events, on_event, n);
    if (!n->stopping) {
        for (struct spool_msg *m = n->spool; m != NULL; m = m->next)
            notify_xfer_cancel(n->multi, m->xfer);
        http_loop_free(n->hl);
    }
    while (n->spool != NULL) {
        struct spool_msg *m = n->spool;

        n->spool = m->next;
        msg_free(m);
    }
    while (n->channels != NULL) {
        struct channel *c = n->channels;

        n->channels = c->next;
        free(c->key);
        free(c->last_error);
        free(c->last_reply);
        free(c);
    }
    while (n->pending != NULL) {
        struct nevent *e = n->pending;

        n->pending = e->next;
        nevent_free(e);
    }
    while (n->tests != NULL) {
        struct test_run *t = n->tests;

        n->tests = t->next;
        for (size_t i = 0; i < t->nstrings; i++)
            free(t->strings[i]);
        free(t);
    }
    for (size_t b = 0; b < NBUCKETS; b++) {
        while (n->buckets[b] != NULL) {
            struct announced *a = n->buckets[b];

            n->buckets[b] = a->next;
            free(a->name);
            free(a);
        }
    }
    free(n->dir);
    free(n);
}

/* certctl notify test. */

static char *
test_keep(struct test_run *t, const char *s)
{
    char *c;

    if (s == NULL || t->nstrings >= sizeof(t->strings) / sizeof(t->strings[0]) ||
        (c = strdup(s)) == NULL)
        return NULL;
    t->strings[t->nstrings++] = c;
    return c;
}

static void
test_end(struct test_run *t)
{
    struct notify *n = t->n;

    for (struct test_run **pp = &n->tests; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    if (t->fn != NULL)
        t->fn(t->arg, t->r, t->count);
    for (size_t i = 0; i < t->nstrings; i++)
        free(t->strings[i]);
    free(t);
}

static void
on_test_done(void *arg, int rc, const char *reply, const char *cause)
{
    struct test_slot *s = arg;
    struct test_run *t = s->t;
    size_t i = s->i;

    t->x[i] = NULL;
    t->r[i].rc = rc;
    t->r[i].reply = test_keep(t, reply);
    t->r[i].error = rc != 0 ? test_keep(t, cause != NULL ? cause : err_message(rc)) : NULL;
    log_info("notify: test message to %s: %s%s%s", t->r[i].channel,
             rc == 0 ? "delivered" : "failed", rc == 0 ? "" : ": ",
             rc == 0 ? "" : (t->r[i].error != NULL ? t->r[i].error : ""));
    if (--t->pending == 0)
        test_end(t);
}

int
notify_test(struct notify *n, const char *channel, notify_test_fn fn, void *arg, char **cause)
{
    const struct config_notify *c = cfg(n);
    struct test_run *t;
    char subject[300], text[700], body[1000], when[64];
    int want_email = channel == NULL || strcmp(channel, "email") == 0;
    int want_hooks = channel == NULL || strcmp(channel, "webhook") == 0;
    struct nevent e;

    if (c == NULL ||
        ((!want_email || c->smtp_url == NULL) && (!want_hooks || c->nwebhooks == 0))) {
        err_set(cause,
                "no %s is configured: add $.notify.%s to the config and reload "
                "(docs/notifications.md)",
                channel == NULL ? "notification channel" : channel,
                channel != NULL && strcmp(channel, "webhook") == 0 ? "webhooks" : "email");
        return -E_NOT_FOUND;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return -E_NOMEM;
    t->n = n;
    t->fn = fn;
    t->arg = arg;
    iso_time(now_s(), when, sizeof(when));
    snprintf(subject, sizeof(subject), "[certagent] %s: test message", n->host);
    snprintf(text, sizeof(text),
             "This is a test message from certagent on %s (%s), sent by certctl notify test.\n"
             "Alerts about its certificates will reach you the same way.\n",
             n->host, when);
    memset(&e, 0, sizeof(e));
    snprintf(e.kind, sizeof(e.kind), "test");
    e.level = STATUS_OK;
    e.message = text;
    e.time = now_s();
    t->next = n->tests;
    n->tests = t;
    t->pending = 1; /* held until every transfer started */
    for (size_t i = 0; i < 1 + c->nwebhooks && t->count < 20; i++) {
        struct test_slot *s;
        char *err = NULL, *json = NULL;
        int rc;

        if ((i == 0 && (!want_email || c->smtp_url == NULL)) || (i > 0 && !want_hooks))
            continue;
        s = &t->slots[t->count];
        s->t = t;
        s->i = t->count++;
        t->r[s->i].channel = i == 0 ? "email" : test_keep(t, c->webhooks[i - 1].url);
        t->pending++;
        if (i == 0) {
            snprintf(body, sizeof(body),
                     "<!DOCTYPE html><html><body><p>This is a test message from certagent on "
                     "<b>%s</b> (%s), sent by certctl notify test.</p></body></html>",
                     n->host, when);
            rc = notify_send_email(n->multi, c, n->host, subject, text, body, on_test_done, s,
                                   &t->x[s->i], &err);
        } else if ((json = event_json(n, &e, c->webhooks[i - 1].format)) == NULL) {
            rc = -E_NOMEM;
        } else {
            rc = notify_send_webhook(n->multi, &c->webhooks[i - 1], c->timeout, json, on_test_done,
                                     s, &t->x[s->i], &err);
        }
        free(json);
        if (rc != 0)
            on_test_done(s, rc, NULL, err);
        free(err);
    }
    if (--t->pending == 0)
        test_end(t);
    return 0;
}

void
notify_test_forget(struct notify *n, void *arg)
{
    for (struct test_run *t = n->tests; t != NULL; t = t->next) {
        if (t->arg == arg)
            t->fn = NULL;
    }
}

int
notify_ack(struct notify *n, const char *name, const char *code, char **cause)
{
    struct announced *a = ann_find(n, name, 0);

    if (a == NULL || (a->level == STATUS_OK && !a->renew_failing)) {
        err_set(cause, "%s has no open problem to acknowledge (certctl status shows its warnings)",
                name);
        return -E_NOT_FOUND;
    }
    if (code == NULL) {
        snprintf(a->ack, sizeof(a->ack), "*");
    } else if (!in_list(a->codes, code) &&
               !(a->renew_failing && !strcmp(code, "renewal_failing"))) {
        err_set(cause, "%s has no open warning '%s' (it has: %s)", name, code,
                a->codes[0] ? a->codes : "renewal_failing");
        return -E_NOT_FOUND;
    } else if (!in_list(a->ack, code)) {
        size_t l = strlen(a->ack);

        snprintf(a->ack + l, sizeof(a->ack) - l, "%s%s", l ? "," : "", code);
    }
    log_info("notify: %s acknowledged (%s): no reminders until the problem changes or clears",
             name, code != NULL ? code : "every warning");
    n->state_dirty = 1;
    schedule_save(n);
    return 0;
}

const char *
notify_acked(void *arg, const char *name)
{
    struct notify *n = arg;
    struct announced *a;

    if (n == NULL)
        return NULL;
    a = ann_find(n, name, 0);
    return a != NULL && a->ack[0] != '\0' ? a->ack : NULL;
}

void
notify_pack_status(struct notify *n, msgpack_packer *pk)
{
    const struct config_notify *c = cfg(n);
    size_t nch = 0, nack = 0;
    char report[48];
    int64_t now = now_s();

    config_notify_report_text(c, report, sizeof(report));
    proto_pack_kv_bool(pk, "configured", c != NULL);
    proto_pack_kv_uint(pk, "spooled", n->nspool);
    proto_pack_kv_str(pk, "report", report);
    proto_pack_kv_uint(pk, "delivered", n->delivered);
    for (struct channel *ch = n->channels; ch != NULL; ch = ch->next)
        nch++;
    proto_pack_str(pk, "channels");
    msgpack_pack_array(pk, nch);
    for (struct channel *ch = n->channels; ch != NULL; ch = ch->next) {
        size_t queued = 0;
        int64_t oldest = 0;

        for (struct spool_msg *m = n->spool; m != NULL; m = m->next) {
            if (strcmp(msg_channel(m), ch->key) == 0) {
                queued++;
                if (oldest == 0 || m->created < oldest)
                    oldest = m->created;
            }
        }
        msgpack_pack_map(pk, 9);
        proto_pack_kv_str(pk, "channel", ch->key);
        proto_pack_kv_uint(pk, "queued", queued);
        proto_pack_kv_int(pk, "oldest", oldest);
        proto_pack_kv_int(pk, "last_ok", ch->last_ok);
        proto_pack_kv_int(pk, "last_attempt", ch->last_attempt);
        proto_pack_kv_int(pk, "failing_since", ch->failing_since);
        proto_pack_kv_bool(pk, "failing",
                           c != NULL && ch->failing_since != 0 &&
                               now - ch->failing_since >= (int64_t)c->failing_minutes * 60);
        if (ch->last_error != NULL)
            proto_pack_kv_str(pk, "last_error", ch->last_error);
        else
            proto_pack_kv_nil(pk, "last_error");
        if (ch->last_reply != NULL)
            proto_pack_kv_str(pk, "last_reply", ch->last_reply);
        else
            proto_pack_kv_nil(pk, "last_reply");
    }
    for (size_t b = 0; b < NBUCKETS; b++) {
        for (struct announced *a = n->buckets[b]; a != NULL; a = a->next)
            nack += a->ack[0] != '\0';
    }
    proto_pack_str(pk, "acknowledged");
    msgpack_pack_array(pk, nack);
    for (size_t b = 0; b < NBUCKETS; b++) {
        for (struct announced *a = n->buckets[b]; a != NULL; a = a->next) {
            if (a->ack[0] == '\0')
                continue;
            msgpack_pack_map(pk, 3);
            proto_pack_kv_str(pk, "name", a->name);
            proto_pack_kv_str(pk, "codes", a->ack);
            proto_pack_kv_str(pk, "open", a->codes);
        }
    }
}

int
notify_spool_email(struct notify *n, const char *subject, const char *text, const char *html,
                   char **cause)
{
    struct spool_msg *m;
    int rc;

    if (cfg(n) == NULL || cfg(n)->smtp_url == NULL) {
        err_set(cause, "no e-mail is configured: add $.notify.email to the config and reload "
                       "(docs/notifications.md)");
        return -E_NOT_FOUND;
    }
    if ((m = calloc(1, sizeof(*m))) == NULL)
        return -E_NOMEM;
    m->is_email = 1;
    if ((m->subject = strdup(subject)) == NULL || (m->text = strdup(text)) == NULL ||
        (html != NULL && (m->html = strdup(html)) == NULL)) {
        msg_free(m);
        return -E_NOMEM;
    }
    if ((rc = spool_add(n, m)) != 0) {
        err_set(cause, "cannot spool the message in %s", n->dir);
        return rc;
    }
    schedule_delivery(n);
    return 0;
}

size_t
notify_agent_warnings(void *arg, struct status_warning *out, size_t max)
{
    struct notify *n = arg;
    const struct config_notify *c = cfg(n);
    int64_t now = now_s();
    size_t k = 0;

    if (c == NULL)
        return 0;
    for (struct channel *ch = n->channels; ch != NULL && k < max; ch = ch->next) {
        struct status_warning *w = &out[k];

        if (ch->failing_since == 0 || now - ch->failing_since < (int64_t)c->failing_minutes * 60)
            continue;
        memset(w, 0, sizeof(*w));
        w->code = "notify_failing";
        w->level = STATUS_WARNING;
        snprintf(w->message, sizeof(w->message),
                 "alerts to %s have not been delivered for %lld minutes: %s; certctl notify "
                 "status shows the spool",
                 strcmp(ch->key, "email") == 0 ? "the SMTP server" : ch->key,
                 (long long)((now - ch->failing_since) / 60),
                 ch->last_error != NULL ? ch->last_error : "no reason given");
        w->ndata = 2;
        w->data[0].key = "channel";
        w->data[0].is_str = 1;
        snprintf(w->data[0].str, sizeof(w->data[0].str), "%s", ch->key);
        w->data[1].key = "since";
        w->data[1].num = ch->failing_since;
        k++;
    }
    return k;
}
