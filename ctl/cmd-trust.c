/* certctl trust (add, list, remove, show) and verify. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "err.h"
#include "output.h"

/* Largest certificate file certctl sends. */
#define MAX_FILE (256 * 1024)

static void
print_system(const cJSON *result)
{
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(result, "system");

    if (!cJSON_IsObject(sys))
        return;
    if (!jbool(sys, "changed"))
        return;
    if (jstr(sys, "error")[0] != '\0')
        fprintf(stderr, "certctl: warning: system store %s: %s\n", jstr(sys, "dir"),
                jstr(sys, "error"));
    else if (jbool(sys, "ran"))
        printf("system store %s updated (%s exited with status %lld)\n", jstr(sys, "dir"),
               jstr(sys, "command"), (long long)jint(sys, "exit_status"));
}

static int
trust_add(struct ctl *ctl, int argc, char **argv)
{
    const char *file = NULL;
    unsigned char *data = NULL;
    size_t len = 0;
    char *cause = NULL;
    struct proto_writer w;
    struct reply r;
    const cJSON *it;
    int intermediate = 0, rc;

    memset(&r, 0, sizeof(r));
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            continue;
        if (strcmp(argv[i], "--intermediate") == 0)
            intermediate = 1;
        else if (argv[i][0] == '-')
            return cmd_usage_error("trust", "unknown option '%s'", argv[i]);
        else if (file != NULL)
            return cmd_usage_error("trust", "unexpected argument '%s'", argv[i]);
        else
            file = argv[i];
    }
    if (file == NULL)
        return cmd_usage_error("trust", "%s", "trust add needs a FILE");
    if (cmd_read_input(file, MAX_FILE, &data, &len, &cause) != 0) {
        fprintf(stderr, "certctl trust add: %s\n", cause != NULL ? cause : "cannot read");
        free(cause);
        return EXIT_USAGE;
    }
    if ((rc = ctl_connect(ctl)) != 0)
        goto out;
    client_request_begin(&ctl->client, &w, PROTO_OP_TRUST_ADD, 2);
    proto_pack_kv_bin(&w.pk, "cert", data, len);
    proto_pack_kv_bool(&w.pk, "intermediate", intermediate);
    if ((rc = ctl_call(ctl, &w, &r)) != 0)
        goto out;
    if (ctl->json) {
        output_json(r.result);
        goto out;
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.result, "added"))
    {
        char date[32];

        output_date(jint(it, "not_after"), date, sizeof(date));
        printf("added %s %s (until %s)\n  SHA-256 %s\n", jstr(it, "kind"), jstr(it, "subject"),
               date, jstr(it, "fingerprint"));
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.result, "skipped"))
    {
        if (cJSON_IsString(it))
            printf("already trusted: %s\n", it->valuestring);
    }
    print_system(r.result);
    output_warnings(r.result);
out:
    free(data);
    reply_free(&r);
    return rc;
}

static int
trust_list(struct ctl *ctl)
{
    static const char *const headers[] = {"KIND", "SUBJECT", "NOT AFTER", "DAYS", "SHA-256"};
    struct proto_writer w;
    struct reply r;
    const cJSON *it;
    struct table *t;
    int rc;

    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_TRUST_LIST, 0);
    if ((rc = ctl_call(ctl, &w, &r)) != 0) {
        reply_free(&r);
        return rc;
    }
    if (ctl->json) {
        cJSON_AddItemToObject(r.result, "entries",
                              r.items != NULL ? r.items : cJSON_CreateArray());
        r.items = NULL;
        output_json(r.result);
        reply_free(&r);
        return 0;
    }
    if (jint(r.result, "count") == 0) {
        printf("The trust store (%s) is empty. Add a root with 'certctl trust add FILE'.\n",
               jstr(r.result, "dir"));
        reply_free(&r);
        return 0;
    }
    t = table_new(5, headers);
    cJSON_ArrayForEach(it, r.items)
    {
        char date[32], days[24], fp[24];
        const char *cells[5];

        output_date(jint(it, "not_after"), date, sizeof(date));
        if (jint(it, "days_left") < 0)
            snprintf(days, sizeof(days), "expired");
        else
            snprintf(days, sizeof(days), "%lld", (long long)jint(it, "days_left"));
        /* The first 8 bytes are enough for 'trust remove'. */
        snprintf(fp, sizeof(fp), "%.23s", jstr(it, "fingerprint"));
        cells[0] = jstr(it, "kind");
        cells[1] = jstr(it, "subject");
        cells[2] = date;
        cells[3] = days;
        cells[4] = fp;
        table_add(t, cells);
    }
    table_print(t, stdout);
    table_free(t);
    reply_free(&r);
    return 0;
}

static int
trust_remove(struct ctl *ctl, const char *fp)
{
    struct proto_writer w;
    struct reply r;
    int rc;

    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_TRUST_REMOVE, 1);
    proto_pack_kv_str(&w.pk, "fingerprint", fp);
    if ((rc = ctl_call(ctl, &w, &r)) == 0) {
        const cJSON *rm = cJSON_GetObjectItemCaseSensitive(r.result, "removed");

        if (ctl->json) {
            output_json(r.result);
        } else {
            printf("removed %s %s\n  SHA-256 %s\n", jstr(rm, "kind"), jstr(rm, "subject"),
                   jstr(rm, "fingerprint"));
            print_system(r.result);
            output_warnings(r.result);
        }
    }
    reply_free(&r);
    return rc;
}

static int
trust_show(struct ctl *ctl, const char *fp)
{
    struct proto_writer w;
    struct reply r;
    char t1[32], t2[32];
    int rc;

    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_TRUST_SHOW, fp != NULL);
    if (fp != NULL)
        proto_pack_kv_str(&w.pk, "fingerprint", fp);
    if ((rc = ctl_call(ctl, &w, &r)) != 0)
        goto out;
    if (ctl->json) {
        output_json(r.result);
    } else if (fp != NULL) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(r.result, "entry");

        output_time(jint(e, "not_before"), t1, sizeof(t1));
        output_time(jint(e, "not_after"), t2, sizeof(t2));
        printf("kind:       %s\nsubject:    %s\nissuer:     %s\nserial:     %s\n"
               "valid:      %s .. %s\nkey:        %s\nsignature:  %s\nSHA-256:    %s\n%s",
               jstr(e, "kind"), jstr(e, "subject"), jstr(e, "issuer"), jstr(e, "serial"), t1, t2,
               jstr(e, "key"), jstr(e, "signature"), jstr(e, "fingerprint"), jstr(e, "pem"));
    } else {
        printf("trust store:     %s\n", jstr(r.result, "dir"));
        printf("anchors:         %lld root(s), %lld self-signed certificate(s) trusted for "
               "themselves; %lld intermediate(s)\n",
               (long long)jint(r.result, "roots"), (long long)jint(r.result, "leaves"),
               (long long)jint(r.result, "intermediates"));
        printf("system roots:    %s\n",
               jbool(r.result, "system_roots") ? "trusted too (trust_system_roots)" : "not used");
        printf("AIA fetching:    %s\n", jbool(r.result, "aia_fetch") ? "allowed" : "off");
        if (jstr(r.result, "system_dir")[0] != '\0') {
            printf("system store:    %s, then %s\n", jstr(r.result, "system_dir"),
                   jstr(r.result, "system_command"));
            if (jint(r.result, "system_updated") > 0) {
                output_time(jint(r.result, "system_updated"), t1, sizeof(t1));
                printf("last update:     %s: %s\n", t1, jstr(r.result, "system_result"));
            }
        } else {
            printf("system store:    not managed (set trust_system_dir)\n");
        }
    }
out:
    reply_free(&r);
    return rc;
}

int
cmd_trust(struct ctl *ctl, int argc, char **argv)
{
    const char *sub = NULL, *arg = NULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "--intermediate") == 0)
            continue;
        if (sub == NULL)
            sub = argv[i];
        else if (arg == NULL)
            arg = argv[i];
    }
    if (sub == NULL)
        return cmd_usage_error("trust", "%s", "give add, list, remove or show");
    if (strcmp(sub, "add") == 0)
        return trust_add(ctl, argc, argv);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--intermediate") == 0)
            return cmd_usage_error("trust", "--intermediate goes with trust add");
        if (argv[i][0] == '-' && strcmp(argv[i], "--json") != 0)
            return cmd_usage_error("trust", "unknown option '%s'", argv[i]);
    }
    if (strcmp(sub, "list") == 0) {
        if (arg != NULL)
            return cmd_usage_error("trust", "unexpected argument '%s'", arg);
        return trust_list(ctl);
    }
    if (strcmp(sub, "remove") == 0) {
        if (arg == NULL)
            return cmd_usage_error("trust", "%s", "trust remove needs a FINGERPRINT");
        return trust_remove(ctl, arg);
    }
    if (strcmp(sub, "show") == 0)
        return trust_show(ctl, arg);
    return cmd_usage_error("trust", "unknown subcommand '%s' (add, list, remove, show)", sub);
}

/* verify */

void
cmd_print_chain(const cJSON *verify, const char *indent)
{
    const cJSON *it, *p;
    int i = 0;

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(verify, "chain"))
    {
        char date[32];

        output_date(jint(it, "not_after"), date, sizeof(date));
        printf("%s%d %s\n%s  issuer %s, until %s, %s [%s]%s%s\n", indent, i++, jstr(it, "subject"),
               indent, jstr(it, "issuer"), date, jstr(it, "signature"), jstr(it, "source"),
               jbool(it, "ok") ? "" : ": ", jbool(it, "ok") ? "" : jstr(it, "problem"));
    }
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(verify, "problems")) > 0)
        printf("%sproblems:\n", indent);
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(verify, "problems"))
    {
        if (cJSON_IsString(p))
            printf("%s  - %s\n", indent, p->valuestring);
    }
}

int
cmd_verify(struct ctl *ctl, int argc, char **argv)
{
    const char *name = NULL, *file = NULL, *host = NULL, *purpose = NULL;
    unsigned char *data = NULL;
    size_t len = 0;
    char *cause = NULL;
    struct proto_writer w;
    struct reply r;
    const cJSON *v, *hm;
    int rc;

    memset(&r, 0, sizeof(r));
    for (int i = 1; i < argc; i++) {
        const char *val = NULL;
        int m;

        if (strcmp(argv[i], "--json") == 0)
            continue;
        if ((m = cmd_opt(argc, argv, &i, "--cert", &val)) != 0)
            file = val;
        else if ((m = cmd_opt(argc, argv, &i, "--host", &val)) != 0)
            host = val;
        else if ((m = cmd_opt(argc, argv, &i, "--purpose", &val)) != 0)
            purpose = val;
        if (m < 0)
            return cmd_usage_error(argv[0], "%s needs a value", argv[i]);
        if (m > 0)
            continue;
        if (argv[i][0] == '-')
            return cmd_usage_error(argv[0], "unknown option '%s'", argv[i]);
        if (name != NULL)
            return cmd_usage_error(argv[0], "unexpected argument '%s'", argv[i]);
        name = argv[i];
    }
    if ((name == NULL) == (file == NULL))
        return cmd_usage_error(argv[0], "%s", "give either NAME or --cert FILE");
    if (purpose != NULL && strcmp(purpose, "server") != 0 && strcmp(purpose, "client") != 0)
        return cmd_usage_error(argv[0], "--purpose is server or client, not '%s'", purpose);
    if (file != NULL && cmd_read_input(file, MAX_FILE, &data, &len, &cause) != 0) {
        fprintf(stderr, "certctl verify: %s\n", cause != NULL ? cause : "cannot read");
        free(cause);
        return EXIT_USAGE;
    }
    if ((rc = ctl_connect(ctl)) != 0)
        goto out;
    client_request_begin(&ctl->client, &w, PROTO_OP_VERIFY,
                         1 + (host != NULL) + (purpose != NULL));
    if (name != NULL)
        proto_pack_kv_str(&w.pk, "name", name);
    else
        proto_pack_kv_bin(&w.pk, "cert", data, len);
    if (host != NULL)
        proto_pack_kv_str(&w.pk, "host", host);
    if (purpose != NULL)
        proto_pack_kv_str(&w.pk, "purpose", purpose);
    if ((rc = ctl_call(ctl, &w, &r)) != 0)
        goto out;
    v = cJSON_GetObjectItemCaseSensitive(r.result, "verify");
    if (ctl->json) {
        output_json(r.result);
    } else {
        printf("certificate: %s\n", jstr(r.result, "subject"));
        printf("chain:\n");
        cmd_print_chain(v, "  ");
        hm = cJSON_GetObjectItemCaseSensitive(v, "host_match");
        if (cJSON_IsBool(hm))
            printf("host name:   %s %s\n", jstr(r.result, "host"),
                   cJSON_IsTrue(hm) ? "matches" : "DOES NOT MATCH");
        printf("result:      %s for a TLS %s\n", jbool(v, "trusted") ? "trusted" : "NOT TRUSTED",
               jstr(r.result, "purpose"));
    }
    rc = jbool(v, "trusted") ? 0 : EXIT_CHECK_FAILED;
out:
    free(data);
    reply_free(&r);
    return rc;
}
