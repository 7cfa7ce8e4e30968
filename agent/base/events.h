/*
 * Events: what happened in the agent, published by the subsystem where it
 * happened and delivered to the subsystems that care, so that nothing lower
 * calls a higher layer (docs/architecture.md).  The store's commit path says
 * "certificate changed"; the scheduler, deploy, the status report (and later
 * alerts, served checks, fleet sync) subscribe.
 *
 * Delivery is synchronous, on the loop thread, in the order of subscription:
 * events_publish returns once every subscriber has seen the event.  A
 * subscriber must not block (it defers slow work to a timer or the thread
 * pool, as the status report's debounced write does); it may publish another
 * event (delivered at once, nested) and may subscribe or unsubscribe, also
 * itself (a subscriber added during a delivery sees the next event, one
 * removed sees no further one).
 */
#ifndef CERTAGENT_EVENTS_H
#define CERTAGENT_EVENTS_H

#include <stddef.h>

enum event_type {
    /* A certificate's current version changed (commit, rollback) or it was removed. */
    EVENT_CERT_CHANGED = 0,
    /* A certificate's settings (deploy targets, hooks, renewal options) changed. */
    EVENT_SETTINGS_CHANGED,
    /* The renewal scheduler's plan or history changed (name may be NULL: several). */
    EVENT_RENEW_STATE,
    /* A deploy of a certificate ended (rc 0, or the error and its words in cause). */
    EVENT_DEPLOY_RESULT,
    /* The config was read again; the reloadable keys have their new values. */
    EVENT_CONFIG_RELOADED,
    /* Something the status report shows changed that no other event says
     * (versions still to check, the agent started). */
    EVENT_STATUS_STALE,
    /* The trust store's anchors or intermediates changed (trust add, trust remove):
     * chains judged against it are to be judged again. */
    EVENT_TRUST_CHANGED,
    /* A version of a certificate was revoked at its CA and the store recorded it. */
    EVENT_CERT_REVOKED,
    /* The report judged a certificate again and its level or its set of warning codes
     * differs from the last judgement (the first one after start counts as a change). */
    EVENT_STATUS_CHANGED,
    EVENT_TYPES
};

/* A bit per type, for events_subscribe's mask. */
#define EVENT_MASK(type) (1u << (type))
#define EVENT_MASK_ALL ((1u << EVENT_TYPES) - 1)

struct event {
    enum event_type type;
    const char *name;  /* the certificate; NULL when the event is not about one */
    unsigned version;  /* EVENT_CERT_CHANGED, _REVOKED, _DEPLOY_RESULT: the version; 0: none */
    int rc;            /* EVENT_DEPLOY_RESULT: 0 or a negative error code */
    const char *cause; /* EVENT_DEPLOY_RESULT: the words of a failure, or NULL */
};

typedef void (*event_fn)(void *arg, const struct event *ev);

struct events;

/* 0 or -E_NOMEM. */
int events_new(struct events **out);
/* Every subscription goes with it.  NULL is fine. */
void events_free(struct events *ev);

/*
 * fn(arg, event) for every event whose type is in mask from now on.  0 or
 * -E_NOMEM (then nothing was added).
 */
int events_subscribe(struct events *ev, unsigned mask, event_fn fn, void *arg);
/* Removes every subscription of (fn, arg).  Unknown ones are fine. */
void events_unsubscribe(struct events *ev, event_fn fn, void *arg);

/* Delivers e to every subscriber of its type.  ev NULL: nothing (tests, shutdown). */
void events_publish(struct events *ev, const struct event *e);
/* The same for an event that has only a type and a name (may be NULL). */
void events_publish_name(struct events *ev, enum event_type type, const char *name);

/* "cert_changed", "settings_changed", ...: for logs and tests. */
const char *event_type_name(enum event_type type);

/* Events published so far of type (tests and the debug log). */
unsigned long events_published(const struct events *ev, enum event_type type);

#endif
