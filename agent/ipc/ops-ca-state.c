/*
 * Per-CA state for `certctl ca list` (issue 17 item 5): the last success,
 * the failures in a row and the last failure's words of each CA, derived
 * from the renewal history the scheduler keeps per certificate (renew.json's
 * "tried": the last attempts with their CA), and each CA's place in the
 * config's fallback_cas.  Nothing new is stored: the history already says
 * what the CAs did.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

#include "agent.h"
#include "canary.h"
#include "ops.h"
#include "renew.h"
#include "store.h"

struct ca_tally {
    int64_t last_success;   /* 0: none seen */
    int64_t last_attempt;   /* 0: none seen */
    int64_t last_failure;   /* the newest failure's time */
    const char *last_error; /* its words (borrowed from the history) */
};

/* Counts one certificate's attempts at ca into t: pass 1 finds the times. */
static void
tally_times(const cJSON *tried, const char *ca, struct ca_tally *t)
{
    const cJSON *a;

    cJSON_ArrayForEach(a, tried)
    {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(a, "ca");
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(a, "at");
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(a, "error");
        int64_t when;

        if (!cJSON_IsString(c) || strcmp(c->valuestring, ca) != 0 || !cJSON_IsNumber(at))
            continue;
        when = (int64_t)at->valuedouble;
        if (when > t->last_attempt)
            t->last_attempt = when;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "ok"))) {
            if (when > t->last_success)
                t->last_success = when;
        } else if (when >= t->last_failure) {
            t->last_failure = when;
            t->last_error = cJSON_IsString(err) ? err->valuestring : NULL;
        }
    }
}

/* Pass 2: the failed attempts at ca after its last success (any certificate's). */
static unsigned
tally_failures(const cJSON *tried, const char *ca, int64_t since)
{
    const cJSON *a;
    unsigned n = 0;

    cJSON_ArrayForEach(a, tried)
    {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(a, "ca");
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(a, "at");

        if (cJSON_IsString(c) && strcmp(c->valuestring, ca) == 0 && cJSON_IsNumber(at) &&
            !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "ok")) &&
            (int64_t)at->valuedouble >= since)
            n++;
    }
    return n;
}

static void
add_time(cJSON *o, const char *key, int64_t when)
{
    if (when > 0)
        cJSON_AddNumberToObject(o, key, (double)when);
    else
        cJSON_AddNullToObject(o, key);
}

void
ops_ca_state_add(struct agent *agent, cJSON *list)
{
    size_t n = store_count(agent->store);
    const struct config_list *fb = &agent->config.fallback_cas;
    cJSON *o;

    cJSON_ArrayForEach(o, list)
    {
        const cJSON *jn = cJSON_GetObjectItemCaseSensitive(o, "name");
        struct ca_tally t = {0, 0, 0, NULL};
        unsigned failures = 0;
        const char *name;
        size_t pos = 0;

        if (!cJSON_IsString(jn))
            continue;
        name = jn->valuestring;
        for (size_t pass = 0; pass < 2; pass++) {
            for (size_t i = 0; i < n; i++) {
                const struct store_cert *c = store_at(agent->store, i);
                struct renew_info ri;

                if (renew_info_get(agent->renew, c->name, &ri) != 0 || ri.tried == NULL)
                    continue;
                if (pass == 0)
                    tally_times(ri.tried, name, &t);
                else
                    failures += tally_failures(ri.tried, name, t.last_success + 1);
            }
        }
        add_time(o, "last_attempt", t.last_attempt);
        add_time(o, "last_success", t.last_success);
        cJSON_AddNumberToObject(o, "failures", failures);
        if (failures > 0 && t.last_error != NULL)
            cJSON_AddStringToObject(o, "last_error", t.last_error);
        else
            cJSON_AddNullToObject(o, "last_error");
        for (size_t i = 0; i < fb->n; i++)
            if (strcmp(fb->items[i], name) == 0)
                pos = i + 1;
        if (pos > 0)
            cJSON_AddNumberToObject(o, "fallback_order", (double)pos);
        else
            cJSON_AddNullToObject(o, "fallback_order");
        /* The staging canary: its state, or null when the CA has none. */
        {
            struct canary_state cs;
            cJSON *co;

            if (canary_get(agent->canary, name, &cs) == 0 &&
                cJSON_GetObjectItemCaseSensitive(o, "canary") == NULL &&
                (co = cJSON_AddObjectToObject(o, "canary")) != NULL) {
                cJSON_AddStringToObject(co, "state", cs.state);
                cJSON_AddBoolToObject(co, "running", cs.running);
                add_time(co, "last_run", cs.last_run);
                if (cs.step != NULL)
                    cJSON_AddStringToObject(co, "step", cs.step);
                if (cs.error != NULL)
                    cJSON_AddStringToObject(co, "error", cs.error);
            }
        }
        if (cJSON_GetObjectItemCaseSensitive(o, "canary") == NULL)
            cJSON_AddNullToObject(o, "canary");
    }
}
