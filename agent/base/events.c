/*
 * Events on the loop: a list of subscribers, delivered in order
 * (events.h).  Removal during a delivery only marks the entry; the list is
 * compacted once no delivery is running, so indexes stay valid.
 */
#include <stdlib.h>

#include "err.h"
#include "events.h"

struct subscriber {
    unsigned mask; /* 0: removed, waiting for the compaction */
    event_fn fn;
    void *arg;
};

struct events {
    struct subscriber *subs;
    size_t n, cap;
    unsigned depth; /* deliveries running (nested publishes) */
    int removed;    /* some entry has mask 0 */
    unsigned long published[EVENT_TYPES];
};

static const char *const type_names[EVENT_TYPES] = {
    [EVENT_CERT_CHANGED] = "cert_changed",       [EVENT_SETTINGS_CHANGED] = "settings_changed",
    [EVENT_RENEW_STATE] = "renew_state",         [EVENT_DEPLOY_RESULT] = "deploy_result",
    [EVENT_CONFIG_RELOADED] = "config_reloaded", [EVENT_STATUS_STALE] = "status_stale",
    [EVENT_TRUST_CHANGED] = "trust_changed",     [EVENT_CERT_REVOKED] = "cert_revoked",
    [EVENT_STATUS_CHANGED] = "status_changed",
};

int
events_new(struct events **out)
{
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : -E_NOMEM;
}

void
events_free(struct events *ev)
{
    if (ev == NULL)
        return;
    free(ev->subs);
    free(ev);
}

int
events_subscribe(struct events *ev, unsigned mask, event_fn fn, void *arg)
{
    if (ev->n == ev->cap) {
        size_t cap = ev->cap != 0 ? ev->cap * 2 : 8;
        struct subscriber *subs = realloc(ev->subs, cap * sizeof(*subs));

        if (subs == NULL)
            return -E_NOMEM;
        ev->subs = subs;
        ev->cap = cap;
    }
    ev->subs[ev->n].mask = mask & EVENT_MASK_ALL;
    ev->subs[ev->n].fn = fn;
    ev->subs[ev->n].arg = arg;
    ev->n++;
    return 0;
}

static void
compact(struct events *ev)
{
    size_t kept = 0;

    for (size_t i = 0; i < ev->n; i++)
        if (ev->subs[i].mask != 0)
            ev->subs[kept++] = ev->subs[i];
    ev->n = kept;
    ev->removed = 0;
}

void
events_unsubscribe(struct events *ev, event_fn fn, void *arg)
{
    if (ev == NULL)
        return;
    for (size_t i = 0; i < ev->n; i++) {
        if (ev->subs[i].fn == fn && ev->subs[i].arg == arg) {
            ev->subs[i].mask = 0;
            ev->removed = 1;
        }
    }
    if (ev->depth == 0 && ev->removed)
        compact(ev);
}

void
events_publish(struct events *ev, const struct event *e)
{
    size_t n;

    if (ev == NULL || (unsigned)e->type >= EVENT_TYPES)
        return;
    ev->published[e->type]++;
    /* Those subscribed now; one added by a subscriber waits for the next event. */
    n = ev->n;
    ev->depth++;
    for (size_t i = 0; i < n; i++) {
        /* Read the entry each time: a subscriber may have grown (moved) the array. */
        if ((ev->subs[i].mask & EVENT_MASK(e->type)) != 0)
            ev->subs[i].fn(ev->subs[i].arg, e);
    }
    ev->depth--;
    if (ev->depth == 0 && ev->removed)
        compact(ev);
}

void
events_publish_name(struct events *ev, enum event_type type, const char *name)
{
    struct event e = {.type = type, .name = name};

    events_publish(ev, &e);
}

const char *
event_type_name(enum event_type type)
{
    return (unsigned)type < EVENT_TYPES ? type_names[type] : "unknown";
}

unsigned long
events_published(const struct events *ev, enum event_type type)
{
    return ev != NULL && (unsigned)type < EVENT_TYPES ? ev->published[type] : 0;
}
