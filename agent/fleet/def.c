/*
 * Definitions of shared certificates and the nodes' tags (fleet-def.h).
 */
#include "fleet-def.h"

#include <cjson/cJSON.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config-cluster.h"
#include "config.h"
#include "env.h"
#include "err.h"
#include "etcd.h"
#include "fleet-int.h"
#include "log.h"
#include "store.h"
#include "view.h"

/* The first check after a definition is seen: so that a node ordering it holds the lock by
 * then, and the records of the same catch-up are seen first. */
#define DEF_CHECK_MS 2000
#define DEF_CHECK_JITTER_MS 3000
/* Again while another node holds the lock (it may die: its lease goes in 15 s) or etcd is
 * out of reach. */
#define DEF_RETRY_MS 30000
#define DEF_RETRY_JITTER_MS 10000
/* Again after an order failed (the CA refused, no account ...): not a loop against the CA. */
#define DEF_FAILED_MS (600 * 1000)
#define DEF_FAILED_JITTER_MS 60000

struct def_ticket;

/* What this node made of one definition. */
struct fleet_defs {
    struct fleet_defs *next;
    struct fleet *fleet;
    char *name;
    int allowed;               /* a tag matches, or none is given */
    char *text;                /* the definition (JSON), what an order is made of */
    int record;                /* a record of name arrived: the fleet has it */
    int refused;               /* the order refused this text: not ordered until it changes */
    struct def_ticket *ticket; /* the order in flight, or NULL */
    uv_timer_t timer;          /* the next check; the struct is freed when it is closed */
};

/* An order in flight; outlives its definition when that goes meanwhile (def NULL). */
struct def_ticket {
    struct fleet_defs *def;
};

static struct fleet_defs *
def_find(const struct fleet *fleet, const char *name)
{
    for (struct fleet_defs *d = *fleet_defs_slot((struct fleet *)fleet); d != NULL; d = d->next) {
        if (strcmp(d->name, name) == 0)
            return d;
    }
    return NULL;
}

static uint64_t
jitter(uint64_t base, uint64_t spread)
{
    uint64_t x = 0;

    if (RAND_bytes((unsigned char *)&x, sizeof(x)) != 1)
        x = uv_hrtime();
    return base + x % (spread + 1);
}

static void on_check(uv_timer_t *t);

static void
check_in(struct fleet_defs *d, uint64_t base, uint64_t spread)
{
    uv_timer_start(&d->timer, on_check, jitter(base, spread), 0);
}

/*
 * The order of d's name ended (or the lock showed another node holding it).  A failed one
 * (even for a reason the CA or this node's account gives) is tried again much later: the
 * cause may be fixed meanwhile (certctl account register) without the definition changing.
 */
static void
on_ordered(void *arg, int rc)
{
    struct def_ticket *t = arg;
    struct fleet_defs *d = t->def;

    free(t);
    if (d == NULL) /* the definition went, or the fleet stopped */
        return;
    d->ticket = NULL;
    if (rc == 0)
        return;
    if (rc == -E_BUSY || rc == -E_UNAVAILABLE)
        check_in(d, DEF_RETRY_MS, DEF_RETRY_JITTER_MS);
    else
        check_in(d, DEF_FAILED_MS, DEF_FAILED_JITTER_MS);
}

/* Does this node still need to order d's name from its definition? */
static int
def_wanted(const struct fleet_defs *d)
{
    const struct store_cert *c = store_find(fleet_store(d->fleet), d->name);

    return d->allowed && !d->record && !d->refused && d->ticket == NULL && d->text != NULL &&
           (c == NULL || c->current == 0) && !view_left(fleet_deploy(d->fleet), d->name);
}

static void
on_check(uv_timer_t *timer)
{
    struct fleet_defs *d = timer->data;
    struct def_ticket *t;
    char *cause = NULL;
    int rc;

    if (!def_wanted(d))
        return;
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        check_in(d, DEF_RETRY_MS, DEF_RETRY_JITTER_MS);
        return;
    }
    t->def = d;
    d->ticket = t;
    rc = fleet_order_def(d->fleet, d->name, d->text, on_ordered, t, &cause);
    if (rc == 0) {
        /* What the order makes is published and renewed under the lock like the others. */
        fleet_mark_shared(d->fleet, d->name);
    } else if (rc == -E_BUSY || rc == -E_UNAVAILABLE) {
        log_debug("fleet: '%s' is not ordered from its definition now: %s; checking again "
                  "later",
                  d->name, cause != NULL ? cause : err_message(rc));
        on_ordered(t, rc);
    } else {
        /* A definition this node cannot order: one warning, no order until it changes. */
        log_warn("fleet: '%s' is not ordered from its definition: %s", d->name,
                 cause != NULL ? cause : err_message(rc));
        d->ticket = NULL;
        d->refused = 1;
        free(t);
    }
    free(cause);
}

static void
on_def_closed(uv_handle_t *h)
{
    struct fleet_defs *d = h->data;

    free(d->name);
    free(d->text);
    free(d);
}

/* Unlinked already: its order (if any) ends without it, its timer closes and frees it. */
static void
def_drop(struct fleet_defs *d)
{
    if (d->ticket != NULL)
        d->ticket->def = NULL;
    d->ticket = NULL;
    uv_close((uv_handle_t *)&d->timer, on_def_closed);
}

static void
on_def_put(void *arg, int rc, const char *cause, const cJSON *reply)
{
    char *name = arg;

    (void)reply;
    if (rc != 0)
        log_warn("fleet: could not put the definition of '%s' in etcd: %s", name,
                 cause != NULL ? cause : "error");
    free(name);
}

void
fleet_def_put(struct fleet *fleet, const char *name, const char *def_json)
{
    cJSON *body = cJSON_CreateObject();
    char key[512], *copy = strdup(name), *cause = NULL;

    snprintf(key, sizeof(key), "%scerts/%s/def", fleet_prefix(fleet), name);
    if (body == NULL || copy == NULL || etcd_add_b64(body, "key", key, strlen(key)) != 0 ||
        etcd_add_b64(body, "value", def_json, strlen(def_json)) != 0) {
        log_warn("fleet: could not put the definition of '%s' in etcd: out of memory", name);
        cJSON_Delete(body);
        free(copy);
        return;
    }
    /* The call takes body whatever it returns. */
    if (etcd_call(fleet_etcd(fleet), "/v3/kv/put", body, on_def_put, copy, NULL, &cause) != 0) {
        log_warn("fleet: could not put the definition of '%s' in etcd: %s", name,
                 cause != NULL ? cause : "error");
        free(copy);
        free(cause);
    }
}

static int
tag_matches(const struct config_cluster *c, const cJSON *tags)
{
    const cJSON *t;

    if (cJSON_GetArraySize(tags) == 0)
        return 1;
    cJSON_ArrayForEach(t, tags)
    {
        for (size_t i = 0; cJSON_IsString(t) && i < c->ntags; i++) {
            if (strcmp(c->tags[i], t->valuestring) == 0)
                return 1;
        }
    }
    return 0;
}

void
fleet_def_seen(struct fleet *fleet, const char *name, const char *text, size_t len)
{
    const struct config_cluster *c = fleet_env(fleet)->config->cluster;
    cJSON *o = cJSON_ParseWithLength(text, len);
    const cJSON *ca = cJSON_GetObjectItemCaseSensitive(o, "ca");
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(o, "tags");
    struct fleet_defs *d = def_find(fleet, name);
    char *copy;

    if (!cJSON_IsObject(o) || (tags != NULL && !cJSON_IsArray(tags))) {
        log_warn("fleet: the definition of '%s' in etcd is not valid JSON (or its tags are not "
                 "a list); ignored",
                 name);
        goto out;
    }
    if (ca != NULL && (!cJSON_IsString(ca) || !fleet_ca_known(fleet, ca->valuestring))) {
        log_warn("fleet: the definition of '%s' in etcd names CA '%s', which this node does "
                 "not know (add it: certctl ca add NAME --directory URL); ignored",
                 name, cJSON_IsString(ca) ? ca->valuestring : "?");
        goto out;
    }
    if (d == NULL) {
        if ((d = calloc(1, sizeof(*d))) == NULL || (d->name = strdup(name)) == NULL) {
            free(d);
            goto out;
        }
        d->fleet = fleet;
        uv_timer_init(fleet_env(fleet)->loop, &d->timer);
        d->timer.data = d;
        d->next = *fleet_defs_slot(fleet);
        *fleet_defs_slot(fleet) = d;
    }
    if ((copy = malloc(len + 1)) != NULL) {
        memcpy(copy, text, len);
        copy[len] = '\0';
        free(d->text);
        d->text = copy;
        d->refused = 0;
    }
    d->allowed = tag_matches(c, tags);
    if (d->allowed) {
        log_info("fleet: '%s' is defined in the fleet for this node; taking its versions", name);
        if (def_wanted(d))
            check_in(d, DEF_CHECK_MS, DEF_CHECK_JITTER_MS);
    } else
        log_info("fleet: '%s' is defined in the fleet for other tags; this node does not take "
                 "it",
                 name);
out:
    cJSON_Delete(o);
}

int
fleet_def_allows(const struct fleet *fleet, const char *name)
{
    const struct fleet_defs *d = def_find(fleet, name);

    return d == NULL || d->allowed;
}

void
fleet_def_gone(struct fleet *fleet, const char *name)
{
    struct fleet_defs **pp, *d;

    for (pp = fleet_defs_slot(fleet); *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0)
            break;
    }
    if ((d = *pp) == NULL)
        return;
    *pp = d->next;
    log_info("fleet: the definition of '%s' was deleted from etcd", name);
    def_drop(d);
}

void
fleet_defs_sweep(struct fleet *fleet, const char *const *names, size_t n)
{
    struct fleet_defs *d = *fleet_defs_slot(fleet);

    while (d != NULL) {
        size_t i = 0;

        while (i < n && strcmp(names[i], d->name) != 0)
            i++;
        if (i < n) {
            d = d->next;
            continue;
        }
        fleet_def_gone(fleet, d->name); /* frees d; look from the start again */
        d = *fleet_defs_slot(fleet);
    }
}

void
fleet_def_record_seen(struct fleet *fleet, const char *name)
{
    struct fleet_defs *d = def_find(fleet, name);

    if (d != NULL)
        d->record = 1;
}

void
fleet_defs_stop(struct fleet *fleet)
{
    for (struct fleet_defs *d = *fleet_defs_slot(fleet); d != NULL; d = d->next) {
        uv_timer_stop(&d->timer);
        if (d->ticket != NULL)
            d->ticket->def = NULL;
        d->ticket = NULL;
    }
}

void
fleet_defs_free(struct fleet *fleet)
{
    while (*fleet_defs_slot(fleet) != NULL) {
        struct fleet_defs *d = *fleet_defs_slot(fleet);

        *fleet_defs_slot(fleet) = d->next;
        def_drop(d);
    }
}
