/*
 * Definitions of shared certificates and the nodes' tags (fleet-def.h).
 */
#include "fleet-def.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-cluster.h"
#include "config.h"
#include "env.h"
#include "etcd.h"
#include "fleet-int.h"
#include "log.h"

/* What this node made of one definition. */
struct fleet_defs {
    struct fleet_defs *next;
    char *name;
    int allowed; /* a tag matches, or none is given */
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
        d->next = *fleet_defs_slot(fleet);
        *fleet_defs_slot(fleet) = d;
    }
    d->allowed = tag_matches(c, tags);
    if (d->allowed)
        log_info("fleet: '%s' is defined in the fleet for this node; taking its versions", name);
    else
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
fleet_defs_free(struct fleet *fleet)
{
    while (*fleet_defs_slot(fleet) != NULL) {
        struct fleet_defs *d = *fleet_defs_slot(fleet);

        *fleet_defs_slot(fleet) = d->next;
        free(d->name);
        free(d);
    }
}
