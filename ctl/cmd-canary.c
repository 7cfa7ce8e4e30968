/*
 * certctl canary run [CA], certctl canary status: the staging canaries
 * (agent/renew/canary.c, docs/resilience.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "output.h"

static void
print_canaries(const cJSON *list)
{
    const cJSON *it;
    struct table *t;
    const char *headers[] = {"CA", "NAME", "STATE", "LAST RUN", "DURATION", "NEXT RUN", "STEP"};

    t = table_new(7, headers);
    cJSON_ArrayForEach(it, list)
    {
        char last[64], next[64], dur[32];
        const char *step =
            jstr(it, "step") != NULL && jstr(it, "step")[0] != '\0' ? jstr(it, "step") : "-";
        const char *cells[7];

        if (jint(it, "last_run") > 0) {
            output_time(jint(it, "last_run"), last, sizeof(last));
            snprintf(dur, sizeof(dur), "%.1f s", (double)jint(it, "duration_ms") / 1000.0);
        } else {
            snprintf(last, sizeof(last), "never");
            snprintf(dur, sizeof(dur), "-");
        }
        output_time(jint(it, "next_run"), next, sizeof(next));
        cells[0] = jstr(it, "ca");
        cells[1] = jstr(it, "name");
        cells[2] = jbool(it, "running") ? "running" : jstr(it, "state");
        cells[3] = last;
        cells[4] = dur;
        cells[5] = next;
        cells[6] = step;
        table_add(t, cells);
    }
    table_print(t, stdout);
    table_free(t);
    cJSON_ArrayForEach(it, list)
    {
        if (strcmp(jstr(it, "state"), "failing") == 0)
            printf("%s: failed at step %s: %s\n", jstr(it, "ca"), jstr(it, "step"),
                   jstr(it, "error"));
        else if (jstr(it, "certificate") != NULL)
            printf("%s: last certificate kept in %s\n", jstr(it, "ca"), jstr(it, "certificate"));
    }
}

/* 1 when one of list's canaries is failing. */
static int
any_failing(const cJSON *list)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, list)
    {
        if (strcmp(jstr(it, "state"), "failing") == 0)
            return 1;
    }
    return 0;
}

static int
canary_call(struct ctl *ctl, int argc, char **argv, int run)
{
    const char *ca = NULL;
    struct proto_writer w;
    struct reply r;
    const cJSON *list;
    int rc;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            continue;
        if (!run || argv[i][0] == '-' || ca != NULL)
            return cmd_usage_error("canary", "unexpected argument '%s'", argv[i]);
        ca = argv[i];
    }
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, run ? PROTO_OP_CANARY_RUN : PROTO_OP_CANARY_STATUS,
                         ca != NULL);
    if (ca != NULL)
        proto_pack_kv_str(&w.pk, "ca", ca);
    if ((rc = ctl_call(ctl, &w, &r)) != 0)
        goto out;
    list = cJSON_GetObjectItemCaseSensitive(r.result, "canaries");
    if (ctl->json)
        output_json(r.result);
    else if (cJSON_GetArraySize(list) == 0)
        printf(
            "no staging canary is configured (the config's \"canaries\", docs/resilience.md)\n");
    else
        print_canaries(list);
    /* A run that found a canary failing: exit status 1, as a failed renewal. */
    if (run && any_failing(list))
        rc = EXIT_AGENT_ERROR;
out:
    reply_free(&r);
    return rc;
}

int
cmd_canary(struct ctl *ctl, int argc, char **argv)
{
    if (argc < 2)
        return cmd_usage_error(argv[0], "needs run or status");
    if (strcmp(argv[1], "run") == 0)
        return canary_call(ctl, argc, argv, 1);
    if (strcmp(argv[1], "status") == 0)
        return canary_call(ctl, argc, argv, 0);
    return cmd_usage_error(argv[0], "'%s' is not run or status", argv[1]);
}
