/*
 * certctl set and deploy, and the settings options that request, selfsigned
 * and import accept too (--deploy-files, --deploy-hook, ...): they are sent
 * as a `set` before the certificate is made, so its first version is
 * deployed already.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "output.h"

static int
add_path(cJSON *s, const char *key, const char *v)
{
    cJSON *a = cJSON_GetObjectItemCaseSensitive(s, key);

    if (a == NULL && (a = cJSON_AddArrayToObject(s, key)) == NULL)
        return -1;
    cJSON_AddItemToArray(a, cJSON_CreateString(v));
    return 0;
}

int
cmd_settings_extract(const char *cmd, int *argc, char **argv, int set_only, cJSON **out)
{
    cJSON *s = cJSON_CreateObject();
    int n = 1;

    *out = NULL;
    if (s == NULL)
        return EXIT_AGENT_ERROR;
    for (int i = 1; i < *argc; i++) {
        const char *v = NULL;
        int r;

        if ((r = cmd_opt(*argc, argv, &i, "--deploy-files", &v)) > 0) {
            add_path(s, "add_files", v);
        } else if (r == 0 && (r = cmd_opt(*argc, argv, &i, "--deploy-pfx", &v)) > 0) {
            add_path(s, "add_pfx", v);
        } else if (r == 0 && (r = cmd_opt(*argc, argv, &i, "--pfx-password-file", &v)) > 0) {
            cJSON_AddStringToObject(s, "pfx_password_file", v);
        } else if (r == 0 && (r = cmd_opt(*argc, argv, &i, "--deploy-store", &v)) > 0) {
            add_path(s, "add_store", v);
        } else if (r == 0 && (r = cmd_opt(*argc, argv, &i, "--deploy-binding", &v)) > 0) {
            add_path(s, "add_binding", v);
        } else if (r == 0 && strcmp(argv[i], "--store-keep-previous") == 0) {
            cJSON_AddBoolToObject(s, "store_keep_previous", 1);
            r = 1;
        } else if (r == 0 && strcmp(argv[i], "--store-exportable") == 0) {
            cJSON_AddBoolToObject(s, "store_exportable", 1);
            r = 1;
        } else if (r == 0 && (r = cmd_opt(*argc, argv, &i, "--check-served", &v)) > 0) {
            cJSON *a = cJSON_GetObjectItemCaseSensitive(s, "add_served"), *o;

            if (a == NULL)
                a = cJSON_AddArrayToObject(s, "add_served");
            if (a != NULL && (o = cJSON_CreateObject()) != NULL) {
                cJSON_AddStringToObject(o, "url", v);
                cJSON_AddItemToArray(a, o);
            }
        } else if (r == 0 && (r = cmd_opt(*argc, argv, &i, "--served-sni", &v)) > 0) {
            /* The server name of the --check-served URL just before it. */
            cJSON *a = cJSON_GetObjectItemCaseSensitive(s, "add_served");
            cJSON *last = a != NULL ? cJSON_GetArrayItem(a, cJSON_GetArraySize(a) - 1) : NULL;

            if (last == NULL || cJSON_GetObjectItemCaseSensitive(last, "sni") != NULL) {
                cJSON_Delete(s);
                return cmd_usage_error(cmd,
                                       "--served-sni %s must follow the --check-served URL "
                                       "it applies to (one --served-sni per URL)",
                                       v);
            }
            cJSON_AddStringToObject(last, "sni", v);
        } else if (r == 0 && (r = cmd_opt(*argc, argv, &i, "--no-check-served", &v)) > 0) {
            add_path(s, "remove_served", v);
        } else if (r == 0 && (r = cmd_opt(*argc, argv, &i, "--deploy-hook", &v)) > 0) {
            cJSON_AddStringToObject(s, "deploy_hook", v);
        } else if (r == 0 && (r = cmd_opt(*argc, argv, &i, "--failure-hook", &v)) > 0) {
            cJSON_AddStringToObject(s, "failure_hook", v);
        } else if (r == 0 && (r = cmd_opt(*argc, argv, &i, "--auto-renew", &v)) > 0) {
            if (strcmp(v, "yes") == 0 || strcmp(v, "on") == 0)
                cJSON_AddBoolToObject(s, "auto_renew", 1);
            else if (strcmp(v, "no") == 0 || strcmp(v, "off") == 0)
                cJSON_AddBoolToObject(s, "auto_renew", 0);
            else if (strcmp(v, "default") == 0)
                cJSON_AddNullToObject(s, "auto_renew");
            else {
                cJSON_Delete(s);
                return cmd_usage_error(cmd, "--auto-renew takes yes, no or default, not '%s'", v);
            }
        } else if (r == 0 && (r = cmd_opt(*argc, argv, &i, "--renew-before-days", &v)) > 0) {
            long d = strcmp(v, "0") == 0 ? 0 : cmd_parse_count(v, 365);

            if (d < 0) {
                cJSON_Delete(s);
                return cmd_usage_error(cmd, "--renew-before-days takes 0 to 365, not '%s'", v);
            }
            cJSON_AddNumberToObject(s, "renew_before_days", (double)d);
        } else if (r == 0 && (r = cmd_opt(*argc, argv, &i, "--fallback-ca", &v)) > 0) {
            add_path(s, "fallback_cas", v);
        } else if (r == 0 && strcmp(argv[i], "--no-fallback-ca") == 0) {
            cJSON_DeleteItemFromObjectCaseSensitive(s, "fallback_cas");
            cJSON_AddArrayToObject(s, "fallback_cas");
            r = 1;
        } else if (r == 0 && set_only && strcmp(argv[i], "--default-fallback-ca") == 0) {
            cJSON_DeleteItemFromObjectCaseSensitive(s, "fallback_cas");
            cJSON_AddNullToObject(s, "fallback_cas");
            r = 1;
        } else if (r == 0 && (r = cmd_opt(*argc, argv, &i, "--on-expiry", &v)) > 0) {
            if (strcmp(v, "keep") == 0 || strcmp(v, "selfsigned") == 0)
                cJSON_AddStringToObject(s, "on_expiry", v);
            else if (strcmp(v, "default") == 0)
                cJSON_AddNullToObject(s, "on_expiry");
            else {
                cJSON_Delete(s);
                return cmd_usage_error(cmd,
                                       "--on-expiry takes keep, selfsigned or default, "
                                       "not '%s'",
                                       v);
            }
        } else if (r == 0 && set_only &&
                   (r = cmd_opt(*argc, argv, &i, "--remove-target", &v)) > 0) {
            add_path(s, "remove", v);
        } else if (r == 0 && set_only && strcmp(argv[i], "--clear-deploy") == 0) {
            cJSON_AddBoolToObject(s, "clear_deploy", 1);
            r = 1;
        } else if (r == 0 && set_only && strcmp(argv[i], "--no-deploy-hook") == 0) {
            cJSON_AddStringToObject(s, "deploy_hook", "");
            r = 1;
        } else if (r == 0 && set_only && strcmp(argv[i], "--no-failure-hook") == 0) {
            cJSON_AddStringToObject(s, "failure_hook", "");
            r = 1;
        } else if (r == 0 && strcmp(argv[i], "--shared") == 0) {
            cJSON_AddBoolToObject(s, "shared", 1);
            r = 1;
        } else if (r == 0 && strcmp(argv[i], "--no-shared") == 0) {
            cJSON_AddBoolToObject(s, "shared", 0);
            r = 1;
        }
        if (r < 0) {
            cJSON_Delete(s);
            return cmd_usage_error(cmd, "%s needs a value", argv[i]);
        }
        if (r == 0)
            argv[n++] = argv[i];
    }
    *argc = n;
    argv[n] = NULL;
    if (cJSON_GetArraySize(s) == 0) {
        cJSON_Delete(s);
        return 0;
    }
    *out = s;
    return 0;
}

static void
print_settings(const char *name, const cJSON *s)
{
    const cJSON *t, *v;

    printf("settings of '%s':\n", name);
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(s, "deploy"))
    {
        const char *pw = jstr(t, "password_file");

        if (strcmp(jstr(t, "type"), "windows_store") == 0)
            printf("  deploy store LocalMachine\\%s (%s previous version, key %sexportable)\n",
                   jstr(t, "store"), jbool(t, "keep_previous") ? "keeps the" : "replaces the",
                   jbool(t, "exportable") ? "" : "not ");
        else if (pw[0] != '\0')
            printf("  deploy %-5s %s (password from %s)\n", jstr(t, "type"), jstr(t, "path"), pw);
        else
            printf("  deploy %-5s %s\n", jstr(t, "type"), jstr(t, "path"));
    }
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s, "deploy")) == 0)
        printf("  deploy       (none)\n");
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(s, "store_thumbprints"))
    {
        if (cJSON_IsString(t))
            printf("  in store     LocalMachine\\%s, thumbprint %s\n", t->string, t->valuestring);
    }
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(s, "check_served"))
    {
        if (jstr(t, "sni")[0] != '\0')
            printf("  check served %s (server name %s)\n", jstr(t, "url"), jstr(t, "sni"));
        else
            printf("  check served %s\n", jstr(t, "url"));
    }
    printf("  deploy hook  %s\n", jstr(s, "deploy_hook")[0] ? jstr(s, "deploy_hook") : "(none)");
    printf("  failure hook %s\n", jstr(s, "failure_hook")[0] ? jstr(s, "failure_hook") : "(none)");
    v = cJSON_GetObjectItemCaseSensitive(s, "auto_renew");
    printf("  auto renew   %s\n", cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? "yes" : "no")
                                                  : "default (ACME: yes, self-signed: no)");
    if (jint(s, "renew_before_days") > 0)
        printf("  renew before %lld days\n", (long long)jint(s, "renew_before_days"));
    if (jbool(s, "shared"))
        printf("  shared       yes (with the agent's fleet)\n");
    if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(s, "shared")))
        printf("  shared       no (left the fleet: neither published nor taken from it)\n");
    v = cJSON_GetObjectItemCaseSensitive(s, "fallback_cas");
    if (cJSON_IsArray(v)) {
        printf("  fallback CAs");
        cJSON_ArrayForEach(t, v) printf(" %s", cJSON_IsString(t) ? t->valuestring : "?");
        printf("%s\n", cJSON_GetArraySize(v) == 0 ? " (none)" : "");
    } else {
        printf("  fallback CAs default (the config's fallback_cas)\n");
    }
    printf("  on expiry    %s\n",
           jstr(s, "on_expiry")[0] ? jstr(s, "on_expiry") : "default (the config's on_expiry)");
}

int
cmd_settings_apply(struct ctl *ctl, const char *name, const cJSON *settings, int print)
{
    struct proto_writer w;
    struct reply r;
    int rc;

    client_request_begin(&ctl->client, &w, PROTO_OP_SET, 2);
    proto_pack_kv_str(&w.pk, "name", name);
    proto_pack_str(&w.pk, "settings");
    proto_pack_json(&w.pk, settings);
    if ((rc = ctl_call(ctl, &w, &r)) == 0 && print) {
        if (ctl->json)
            output_json(r.result);
        else
            print_settings(name, cJSON_GetObjectItemCaseSensitive(r.result, "settings"));
    }
    reply_free(&r);
    return rc;
}

/* certctl set NAME [settings options]: with no option, shows the settings. */
int
cmd_set(struct ctl *ctl, int argc, char **argv)
{
    cJSON *s = NULL;
    const char *name = NULL;
    int rc;

    if ((rc = cmd_settings_extract(argv[0], &argc, argv, 1, &s)) != 0)
        return rc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            continue;
        if (argv[i][0] == '-' || name != NULL) {
            cJSON_Delete(s);
            return cmd_usage_error(argv[0], "unexpected argument '%s'", argv[i]);
        }
        name = argv[i];
    }
    if (name == NULL) {
        cJSON_Delete(s);
        return cmd_usage_error(argv[0], "%s", "missing NAME");
    }
    if (s == NULL && (s = cJSON_CreateObject()) == NULL)
        return EXIT_AGENT_ERROR;
    if ((rc = ctl_connect(ctl)) == 0)
        rc = cmd_settings_apply(ctl, name, s, 1);
    cJSON_Delete(s);
    return rc;
}

/* certctl deploy NAME: deploy the current version again and run the deploy hooks. */
int
cmd_deploy(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    const char *name = NULL;
    int rc, wait = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            continue;
        if (strcmp(argv[i], "--wait-served") == 0) {
            wait = 1;
            continue;
        }
        if (argv[i][0] == '-' || name != NULL)
            return cmd_usage_error(argv[0], "unexpected argument '%s'", argv[i]);
        name = argv[i];
    }
    if (name == NULL)
        return cmd_usage_error(argv[0], "%s", "missing NAME");
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_DEPLOY, 1 + wait);
    proto_pack_kv_str(&w.pk, "name", name);
    if (wait)
        proto_pack_kv_uint(&w.pk, "wait_served", 1);
    if ((rc = ctl_call(ctl, &w, &r)) == 0) {
        const cJSON *e;

        if (ctl->json) {
            output_json(r.result);
        } else {
            printf("deployed '%s' version %lld\n", jstr(r.result, "name"),
                   (long long)jint(r.result, "version"));
            cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(r.result, "served"))
                printf("  served by %s (serial %s)\n", jstr(e, "url"), jstr(e, "served_serial"));
        }
    }
    reply_free(&r);
    return rc;
}

/*
 * show's lines for the served check: per --check-served URL its last result,
 * what it served and when it was checked.
 */
void
cmd_show_served(const cJSON *served)
{
    const cJSON *e;
    char when[32], until[32];

    cJSON_ArrayForEach(e, served)
    {
        const char *result = jstr(e, "result");

        output_time(jint(e, "checked"), when, sizeof(when));
        printf("served:       %s%s%s%s: %s%s", jstr(e, "url"), jstr(e, "sni")[0] ? " (SNI " : "",
               jstr(e, "sni"), jstr(e, "sni")[0] ? ")" : "", result,
               jbool(e, "in_grace") ? " (checking again: a deploy's grace runs)" : "");
        if (jint(e, "checked") > 0)
            printf(", checked %s", when);
        printf("\n");
        if (strcmp(result, "unreachable") == 0) {
            printf("                %s\n", jstr(e, "error"));
        } else if (jstr(e, "served_serial")[0] != '\0') {
            output_date(jint(e, "served_not_after"), until, sizeof(until));
            if (jint(e, "served_version") > 0)
                printf("                serial %s (version %lld), until %s\n",
                       jstr(e, "served_serial"), (long long)jint(e, "served_version"), until);
            else
                printf("                serial %s (not a stored version), %s, until %s\n",
                       jstr(e, "served_serial"), jstr(e, "served_subject"), until);
        }
    }
}
