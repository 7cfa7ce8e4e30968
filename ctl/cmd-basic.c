/* certctl version, list, ping (status is in cmd-status.c). */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "output.h"
#include "version.h"

/* Only --json may follow these commands. */
static int
no_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") != 0)
            return cmd_usage_error(argv[0], "unexpected argument '%s'", argv[i]);
    }
    return 0;
}

int
cmd_version(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    int rc;

    if ((rc = no_args(argc, argv)) != 0)
        return rc;
    if (!ctl->json)
        printf("certctl   %s (protocol %d)\n", CERTAGENT_VERSION, PROTO_VERSION);
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_VERSION, 0);
    if ((rc = ctl_call(ctl, &w, &r)) != 0)
        goto out;
    if (ctl->json) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "certctl", CERTAGENT_VERSION);
        cJSON_AddStringToObject(o, "agent", jstr(r.result, "agent"));
        cJSON_AddNumberToObject(o, "proto", (double)jint(r.result, "proto"));
        cJSON_AddStringToObject(o, "openssl", jstr(r.result, "openssl"));
        output_json(o);
        cJSON_Delete(o);
    } else {
        printf("certagent %s (protocol %lld, %s)\n", jstr(r.result, "agent"),
               (long long)jint(r.result, "proto"), jstr(r.result, "openssl"));
    }
out:
    reply_free(&r);
    return rc;
}

int
cmd_ping(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    int rc;

    if ((rc = no_args(argc, argv)) != 0)
        return rc;
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_PING, 0);
    rc = ctl_call(ctl, &w, &r);
    if (rc == 0) {
        if (ctl->json)
            output_json(r.result);
        else
            printf("certagent answers\n");
    }
    reply_free(&r);
    return rc;
}

static void
print_cert_table(const cJSON *items)
{
    static const char *const headers[] = {"NAME",      "VER",  "SOURCE", "DOMAINS",
                                          "NOT AFTER", "DAYS", "KEY"};
    struct table *t = table_new(7, headers);
    const cJSON *it;

    cJSON_ArrayForEach(it, items)
    {
        char ver[16], date[32], days[24], domains[256];
        const char *cells[7];

        snprintf(ver, sizeof(ver), "%lld", (long long)jint(it, "version"));
        output_date(jint(it, "not_after"), date, sizeof(date));
        if (jint(it, "days_left") < 0)
            snprintf(days, sizeof(days), "expired");
        else
            snprintf(days, sizeof(days), "%lld", (long long)jint(it, "days_left"));
        jjoin(it, "dns", ",", domains, sizeof(domains));
        if (domains[0] == '\0')
            jjoin(it, "ips", ",", domains, sizeof(domains));
        if (domains[0] == '\0')
            snprintf(domains, sizeof(domains), "%s", jstr(it, "common_name"));
        cells[0] = jstr(it, "name");
        cells[1] = ver;
        cells[2] = jstr(it, "source");
        cells[3] = domains;
        cells[4] = date;
        cells[5] = days;
        cells[6] = jstr(it, "key")[0] ? jstr(it, "key") : "(none)";
        table_add(t, cells);
    }
    table_print(t, stdout);
    table_free(t);
}

static void
json_with_items(cJSON *result, cJSON **items)
{
    cJSON_AddItemToObject(result, "certificates", *items != NULL ? *items : cJSON_CreateArray());
    *items = NULL;
    output_json(result);
}

int
cmd_list(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    int rc;

    if ((rc = no_args(argc, argv)) != 0)
        return rc;
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_LIST, 0);
    if ((rc = ctl_call(ctl, &w, &r)) == 0) {
        if (ctl->json)
            json_with_items(r.result, &r.items);
        else if (jint(r.result, "count") == 0)
            printf("%s\n", CMD_EMPTY_STORE_HINT);
        else
            print_cert_table(r.items);
    }
    reply_free(&r);
    return rc;
}
