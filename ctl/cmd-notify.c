/*
 * notify test [--channel email|webhook], notify status, ack NAME [CODE]:
 * the alerts of the agent (docs/notifications.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "output.h"

static int
notify_test(struct ctl *ctl, int argc, char **argv)
{
    const char *channel = NULL;
    struct proto_writer w;
    struct reply r;
    const cJSON *it;
    int rc;

    for (int i = 2; i < argc; i++) {
        int m;

        if (strcmp(argv[i], "--json") == 0)
            continue;
        m = cmd_opt(argc, argv, &i, "--channel", &channel);

        if (m < 0)
            return cmd_usage_error("notify", "--channel needs email or webhook");
        if (m == 0)
            return cmd_usage_error("notify", "unexpected argument '%s'", argv[i]);
    }
    if (channel != NULL && strcmp(channel, "email") != 0 && strcmp(channel, "webhook") != 0)
        return cmd_usage_error("notify", "--channel: '%s' is not email or webhook", channel);
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_NOTIFY_TEST, channel != NULL);
    if (channel != NULL)
        proto_pack_kv_str(&w.pk, "channel", channel);
    if ((rc = ctl_call(ctl, &w, &r)) != 0)
        goto out;
    if (ctl->json)
        output_json(r.result);
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.result, "results"))
    {
        if (!ctl->json) {
            if (jbool(it, "ok"))
                printf("%s: delivered%s%s\n", jstr(it, "channel"),
                       jstr(it, "reply") != NULL ? "; the server said: " : "",
                       jstr(it, "reply") != NULL ? jstr(it, "reply") : "");
            else
                printf("%s: FAILED: %s\n", jstr(it, "channel"),
                       jstr(it, "error") != NULL ? jstr(it, "error") : "no reason given");
        }
    }
    if (jint(r.result, "failed") > 0)
        rc = EXIT_AGENT_ERROR;
out:
    reply_free(&r);
    return rc;
}

static void
print_when(const char *label, int64_t t)
{
    char buf[64];

    if (t == 0) {
        printf("  %-14s never\n", label);
        return;
    }
    output_time(t, buf, sizeof(buf));
    printf("  %-14s %s\n", label, buf);
}

static int
notify_status(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    const cJSON *it;
    int rc;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") != 0)
            return cmd_usage_error("notify", "unexpected argument '%s'", argv[i]);
    }
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_NOTIFY_STATUS, 0);
    if ((rc = ctl_call(ctl, &w, &r)) != 0)
        goto out;
    if (ctl->json) {
        output_json(r.result);
        goto out;
    }
    if (!jbool(r.result, "configured"))
        printf("No notification channel is configured ($.notify in the config; see "
               "docs/notifications.md).\n");
    printf("spool: %lld message%s waiting; %lld delivered since start; report: %s\n",
           (long long)jint(r.result, "spooled"), jint(r.result, "spooled") == 1 ? "" : "s",
           (long long)jint(r.result, "delivered"),
           jstr(r.result, "report") != NULL ? jstr(r.result, "report") : "off");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.result, "channels"))
    {
        printf("%s%s\n", jstr(it, "channel"),
               jbool(it, "failing") ? "  (FAILING: notify_failing)" : "");
        printf("  %-14s %lld\n", "queued", (long long)jint(it, "queued"));
        print_when("last delivery", jint(it, "last_ok"));
        print_when("last attempt", jint(it, "last_attempt"));
        if (jint(it, "failing_since") != 0)
            print_when("failing since", jint(it, "failing_since"));
        if (jstr(it, "last_reply") != NULL)
            printf("  %-14s %s\n", "last reply", jstr(it, "last_reply"));
        if (jstr(it, "last_error") != NULL)
            printf("  %-14s %s\n", "last error", jstr(it, "last_error"));
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.result, "acknowledged"))
    {
        printf("acknowledged: %s (%s; open: %s)\n", jstr(it, "name"), jstr(it, "codes"),
               jstr(it, "open") != NULL && jstr(it, "open")[0] ? jstr(it, "open") : "-");
    }
out:
    reply_free(&r);
    return rc;
}

int
cmd_notify(struct ctl *ctl, int argc, char **argv)
{
    if (argc < 2)
        return cmd_usage_error(argv[0], "needs test or status");
    if (strcmp(argv[1], "test") == 0)
        return notify_test(ctl, argc, argv);
    if (strcmp(argv[1], "status") == 0)
        return notify_status(ctl, argc, argv);
    return cmd_usage_error(argv[0], "'%s' is not test or status", argv[1]);
}

int
cmd_ack(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    int rc;

    if (argc > 1 && strcmp(argv[argc - 1], "--json") == 0)
        argc--;
    if (argc < 2 || argc > 3 || argv[1][0] == '-')
        return cmd_usage_error(argv[0], "needs NAME and optionally a warning CODE");
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_ACK, argc == 3 ? 2 : 1);
    proto_pack_kv_str(&w.pk, "name", argv[1]);
    if (argc == 3)
        proto_pack_kv_str(&w.pk, "code", argv[2]);
    if ((rc = ctl_call(ctl, &w, &r)) == 0) {
        if (ctl->json)
            output_json(r.result);
        else
            printf("%s: %s acknowledged; no reminders until it changes or clears\n", argv[1],
                   argc == 3 ? argv[2] : "every open warning");
    }
    reply_free(&r);
    return rc;
}

int
cmd_report_send(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") != 0 && strcmp(argv[i], "--send") != 0)
            return cmd_usage_error(argv[0], "unexpected argument '%s'", argv[i]);
    }
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_REPORT_SEND, 0);
    if ((rc = ctl_call(ctl, &w, &r)) == 0) {
        if (ctl->json)
            output_json(r.result);
        else
            printf("spooled for e-mail: %s\n(certctl notify status shows its delivery)\n",
                   jstr(r.result, "subject"));
    }
    reply_free(&r);
    return rc;
}
