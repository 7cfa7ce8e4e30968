/*
 * certctl status (the dashboard, --json, --check), metrics and logs.
 *
 * status --check follows the Nagios plugin convention instead of certctl's
 * usual exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the agent
 * cannot be reached or answered with an error), with one line of text.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "output.h"
#include "version.h"

/* Nagios plugin exit codes (status --check). */
#define CHECK_OK 0
#define CHECK_WARNING 1
#define CHECK_CRITICAL 2
#define CHECK_UNKNOWN 3

static void
format_uptime(int64_t s, char *buf, size_t len)
{
    if (s >= 86400)
        snprintf(buf, len, "%lldd %lldh %lldm", (long long)(s / 86400),
                 (long long)(s % 86400 / 3600), (long long)(s % 3600 / 60));
    else if (s >= 3600)
        snprintf(buf, len, "%lldh %lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        snprintf(buf, len, "%lldm %llds", (long long)(s / 60), (long long)(s % 60));
}

/* The configured probes' last results and their warnings. */
static void
print_probes(const cJSON *result)
{
    const cJSON *probes = cJSON_GetObjectItemCaseSensitive(result, "probes"), *it, *w;

    if (cJSON_GetArraySize(probes) == 0)
        return;
    printf("\nprobes:\n");
    cmd_print_probes(probes);
    cJSON_ArrayForEach(it, probes)
    {
        cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(it, "warnings"))
        {
            if (cJSON_IsString(w))
                printf("warning: %s\n", w->valuestring);
        }
    }
}

static void
upper(const char *s, char *buf, size_t len)
{
    size_t i = 0;

    for (; s[i] && i + 1 < len; i++)
        buf[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
    buf[i] = '\0';
}

/* "2026-11-25 10:00" or "-". */
static void
when(const cJSON *o, const char *key, char *buf, size_t len)
{
    char full[40];

    if (jint(o, key) == 0) {
        snprintf(buf, len, "-");
        return;
    }
    output_time(jint(o, key), full, sizeof(full));
    /* 2026-11-25T10:00:00Z -> 2026-11-25 10:00 */
    snprintf(buf, len, "%.10s %.5s", full, full + 11);
}

static void
print_dashboard(const cJSON *items)
{
    static const char *const headers[] = {"NAME", "SOURCE",       "CA",           "NOT AFTER",
                                          "DAYS", "NEXT RENEWAL", "LAST ATTEMPT", "WARNINGS"};
    struct table *t = table_new(8, headers);
    const cJSON *it, *w;

    cJSON_ArrayForEach(it, items)
    {
        char date[32], days[24], next[32], last[64], attempt[32], codes[256] = "";
        const char *cells[8];
        size_t used = 0;

        output_date(jint(it, "not_after"), date, sizeof(date));
        if (jint(it, "not_after") <= 0 || jint(it, "days_left") < 0)
            snprintf(days, sizeof(days), "expired");
        else
            snprintf(days, sizeof(days), "%lld", (long long)jint(it, "days_left"));
        if (jbool(it, "in_progress"))
            snprintf(next, sizeof(next), "running");
        else
            when(it, "next_renewal", next, sizeof(next));
        when(it, "last_attempt", attempt, sizeof(attempt));
        if (jstr(it, "last_result")[0] != '\0')
            snprintf(last, sizeof(last), "%s %s", attempt, jstr(it, "last_result"));
        else
            snprintf(last, sizeof(last), "%s", attempt);
        cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(it, "warnings"))
        {
            int n = snprintf(codes + used, sizeof(codes) - used, "%s%s", used ? "," : "",
                             jstr(w, "code"));

            if (n > 0 && (size_t)n < sizeof(codes) - used)
                used += (size_t)n;
        }
        cells[0] = jstr(it, "name");
        cells[1] = jstr(it, "source");
        cells[2] = jstr(it, "ca")[0] ? jstr(it, "ca") : "-";
        cells[3] = date;
        cells[4] = days;
        cells[5] = next;
        cells[6] = last;
        cells[7] = codes[0] ? codes : "-";
        table_add(t, cells);
    }
    table_print(t, stdout);
    table_free(t);
}

/*
 * Calls fn for each warning of the certificates in items, the critical ones
 * first, then those of level "warning"; stops early when fn returns nonzero.
 */
static void
each_warning_worst_first(const cJSON *items, int (*fn)(const cJSON *w, void *arg), void *arg)
{
    static const char *const order[] = {"critical", "warning"};
    const cJSON *it, *w;

    for (size_t k = 0; k < 2; k++) {
        cJSON_ArrayForEach(it, items)
        {
            cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(it, "warnings"))
            {
                if (strcmp(jstr(w, "level"), order[k]) == 0 && fn(w, arg) != 0)
                    return;
            }
        }
    }
}

/* One line of the dashboard's warning list; *arg counts the lines. */
static int
print_warning_line(const cJSON *w, void *arg)
{
    int *lines = arg;
    char level[16];

    if ((*lines)++ == 0)
        printf("\n");
    upper(jstr(w, "level"), level, sizeof(level));
    printf("%-8s %s [%s]\n", level, jstr(w, "message"), jstr(w, "code"));
    return 0;
}

/* Each warning's sentence, the critical ones first. */
static void
print_warnings(const cJSON *items)
{
    int lines = 0;

    each_warning_worst_first(items, print_warning_line, &lines);
}

/* The Nagios line, built in a bounded buffer (cut when too long). */
struct check_line {
    char text[2048];
    size_t used;
    int shown; /* sentences on the line */
};

static void check_add(struct check_line *l, const char *fmt, ...) ERR_PRINTF(2, 3);

static void
check_add(struct check_line *l, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (l->used >= sizeof(l->text) - 1)
        return;
    va_start(ap, fmt);
    n = vsnprintf(l->text + l->used, sizeof(l->text) - l->used, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    l->used += (size_t)n < sizeof(l->text) - l->used ? (size_t)n : sizeof(l->text) - 1 - l->used;
}

/* One sentence of the Nagios line, at most three. */
static int
check_sentence(const cJSON *w, void *arg)
{
    struct check_line *l = arg;

    check_add(l, "%s %s", l->shown ? ";" : "", jstr(w, "message"));
    return ++l->shown >= 3;
}

/*
 * The Nagios line: "CERTAGENT WARNING - 1 warning: www expires in 5 days ...";
 * returns the plugin exit code.
 */
static int
check_build(const cJSON *result, const cJSON *items, struct check_line *l)
{
    const char *health = jstr(result, "health");
    int code = strcmp(health, "critical") == 0  ? CHECK_CRITICAL
               : strcmp(health, "warning") == 0 ? CHECK_WARNING
               : strcmp(health, "ok") == 0      ? CHECK_OK
                                                : CHECK_UNKNOWN;
    char level[16];
    int64_t n = jint(result, "warnings_count");

    memset(l, 0, sizeof(*l));
    upper(code == CHECK_UNKNOWN ? "unknown" : health, level, sizeof(level));
    check_add(l, "CERTAGENT %s - %lld certificate%s", level, (long long)jint(result, "count"),
              jint(result, "count") == 1 ? "" : "s");
    if (n > 0)
        check_add(l, ", %lld warning%s:", (long long)n, n == 1 ? "" : "s");
    /* The worst first, at most three sentences on the line. */
    each_warning_worst_first(items, check_sentence, l);
    if (n > l->shown)
        check_add(l, "; and %lld more", (long long)(n - l->shown));
    {
        const cJSON *aw;

        cJSON_ArrayForEach(aw, cJSON_GetObjectItemCaseSensitive(result, "agent_warnings"))
        {
            check_add(l, "; %s", jstr(aw, "message"));
        }
    }
    check_add(l, " | certificates=%lld critical=%lld warning=%lld",
              (long long)jint(result, "count"), (long long)jint(result, "certs_critical"),
              (long long)jint(result, "certs_warning"));
    return code;
}

int
cmd_status(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    struct check_line line;
    char uptime[64], health[16];
    int rc, check = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check") == 0)
            check = 1;
        else if (strcmp(argv[i], "--json") != 0)
            return cmd_usage_error(argv[0], "unexpected argument '%s'", argv[i]);
    }
    /* With --json the error object (exit 3 all the same) replaces the UNKNOWN line. */
    if ((rc = ctl_connect(ctl)) != 0) {
        if (check && !ctl->json)
            printf("CERTAGENT UNKNOWN - the agent cannot be reached\n");
        return check ? CHECK_UNKNOWN : rc;
    }
    client_request_begin(&ctl->client, &w, PROTO_OP_STATUS, 0);
    if ((rc = ctl_call(ctl, &w, &r)) != 0) {
        if (check && !ctl->json)
            printf("CERTAGENT UNKNOWN - the agent did not give its status\n");
        reply_free(&r);
        return check ? CHECK_UNKNOWN : rc;
    }
    if (check)
        rc = check_build(r.result, r.items, &line);
    if (ctl->json) {
        /* --check --json: the whole report, the line and its exit code in "check". */
        if (check) {
            cJSON *c = cJSON_CreateObject();

            cJSON_AddStringToObject(c, "line", line.text);
            cJSON_AddNumberToObject(c, "exit_code", rc);
            cJSON_AddItemToObject(r.result, "check", c);
        }
        cJSON_AddItemToObject(r.result, "certificates",
                              r.items != NULL ? r.items : cJSON_CreateArray());
        r.items = NULL;
        output_json(r.result);
        goto out;
    }
    if (check) {
        printf("%s\n", line.text);
        goto out;
    }
    format_uptime(jint(r.result, "uptime_seconds"), uptime, sizeof(uptime));
    upper(jstr(r.result, "health"), health, sizeof(health));
    printf("certagent %s, pid %lld, up %s: health %s\n", jstr(r.result, "agent"),
           (long long)jint(r.result, "pid"), uptime, health);
    printf("store:        %s\n", jstr(r.result, "state_dir"));
    printf("socket:       %s\n", jstr(r.result, "socket"));
    printf("certificates: %lld", (long long)jint(r.result, "count"));
    if (jint(r.result, "expired") > 0)
        printf(", %lld EXPIRED", (long long)jint(r.result, "expired"));
    if (jint(r.result, "expiring") > 0)
        printf(", %lld expiring within %lld days (warn_days)",
               (long long)jint(r.result, "expiring"), (long long)jint(r.result, "warn_days"));
    if (jint(r.result, "count") > 0)
        printf(" (%lld ok, %lld warning, %lld critical)", (long long)jint(r.result, "certs_ok"),
               (long long)jint(r.result, "certs_warning"),
               (long long)jint(r.result, "certs_critical"));
    printf("\n");
    if (jint(r.result, "count") == 0)
        printf("\n%s\n", CMD_EMPTY_STORE_HINT);
    if (jint(r.result, "count") > 0) {
        printf("\n");
        print_dashboard(r.items);
        print_warnings(r.items);
        {
            const cJSON *row;

            /* Problems someone acknowledged (certctl ack): no reminders until they change. */
            cJSON_ArrayForEach(row, r.items)
            {
                if (jstr(row, "acknowledged") != NULL)
                    printf("acknowledged: %s (%s)\n", jstr(row, "name"),
                           strcmp(jstr(row, "acknowledged"), "*") == 0
                               ? "every open warning"
                               : jstr(row, "acknowledged"));
            }
        }
    }
    print_probes(r.result);
    {
        const cJSON *aw;

        /* Warnings of the agent itself (notify_failing). */
        cJSON_ArrayForEach(aw, cJSON_GetObjectItemCaseSensitive(r.result, "agent_warnings"))
        {
            printf("agent: %s: %s\n", jstr(aw, "code"), jstr(aw, "message"));
        }
    }
out:
    reply_free(&r);
    return rc;
}

/* metrics: the text arrives in chunks; print each as it comes (with --json: keep it). */
struct metrics_out {
    int json;
    cJSON *chunks; /* --json: the chunks, joined at the end */
};

static void
print_chunks(void *arg, const cJSON *items)
{
    struct metrics_out *m = arg;
    const cJSON *it;

    cJSON_ArrayForEach(it, items)
    {
        if (!cJSON_IsString(it))
            continue;
        if (m->json)
            cJSON_AddItemToArray(m->chunks, cJSON_CreateString(it->valuestring));
        else
            fputs(it->valuestring, stdout);
    }
}

/* --json: {"format": "prometheus", "text": the whole text}. */
static void
print_metrics_json(const cJSON *chunks)
{
    const cJSON *it;
    size_t len = 0, used = 0;
    char *text;
    cJSON *o;

    cJSON_ArrayForEach(it, chunks) len += strlen(it->valuestring);
    if ((text = malloc(len + 1)) == NULL)
        return;
    cJSON_ArrayForEach(it, chunks)
    {
        size_t n = strlen(it->valuestring);

        memcpy(text + used, it->valuestring, n);
        used += n;
    }
    text[used] = '\0';
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", "prometheus");
    cJSON_AddStringToObject(o, "text", text);
    output_json(o);
    cJSON_Delete(o);
    free(text);
}

int
cmd_metrics(struct ctl *ctl, int argc, char **argv)
{
    struct metrics_out m = {ctl->json, NULL};
    struct proto_writer w;
    struct reply r;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") != 0)
            return cmd_usage_error(argv[0], "unexpected argument '%s'", argv[i]);
    }
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    if (m.json && (m.chunks = cJSON_CreateArray()) == NULL)
        return EXIT_AGENT_ERROR;
    ctl->client.on_items = print_chunks;
    ctl->client.on_items_arg = &m;
    client_request_begin(&ctl->client, &w, PROTO_OP_METRICS, 0);
    rc = ctl_call(ctl, &w, &r);
    ctl->client.on_items = NULL;
    if (rc == 0 && m.json)
        print_metrics_json(m.chunks);
    cJSON_Delete(m.chunks);
    fflush(stdout);
    reply_free(&r);
    return rc;
}

/*
 * logs: one line per log line; with --json the lines in one object, or with
 * --follow one JSON object per line (a stream that does not end).
 */
struct logs_out {
    int json, follow;
    cJSON *lines; /* --json without --follow */
};

static void
print_lines(void *arg, const cJSON *items)
{
    struct logs_out *l = arg;
    const cJSON *it;

    cJSON_ArrayForEach(it, items)
    {
        if (l->json && !l->follow) {
            cJSON_AddItemToArray(l->lines, cJSON_Duplicate(it, 1));
        } else if (l->json) {
            output_json_line(it);
        } else {
            char stamp[40];

            output_time(jint(it, "time"), stamp, sizeof(stamp));
            printf("%s %-5s %s\n", stamp, jstr(it, "level"), jstr(it, "text"));
        }
    }
    fflush(stdout);
}

int
cmd_logs(struct ctl *ctl, int argc, char **argv)
{
    const char *name = NULL, *level = NULL, *lines = NULL;
    struct logs_out out = {0, 0, NULL};
    struct proto_writer w;
    struct reply r;
    int follow = 0, rc, m;
    long n = -1;

    for (int i = 1; i < argc; i++) {
        const char *v = NULL;

        if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0) {
            follow = 1;
        } else if ((m = cmd_opt(argc, argv, &i, "--name", &v)) != 0) {
            if (m < 0)
                return cmd_usage_error(argv[0], "--name needs a certificate name");
            name = v;
        } else if ((m = cmd_opt(argc, argv, &i, "--level", &v)) != 0) {
            if (m < 0)
                return cmd_usage_error(argv[0], "--level needs error, warn, info or debug");
            level = v;
        } else if ((m = cmd_opt(argc, argv, &i, "--lines", &v)) != 0) {
            if (m < 0 || (n = cmd_parse_count(v, 1000000)) < 0)
                return cmd_usage_error(argv[0], "--lines needs a number from 0 to 1000000");
            lines = v;
        } else if (strcmp(argv[i], "--json") != 0) {
            return cmd_usage_error(argv[0], "unexpected argument '%s'", argv[i]);
        }
    }
    if (level != NULL && strcmp(level, "error") != 0 && strcmp(level, "warn") != 0 &&
        strcmp(level, "info") != 0 && strcmp(level, "debug") != 0)
        return cmd_usage_error(argv[0], "unknown level '%s': use error, warn, info or debug",
                               level);
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    out.json = ctl->json;
    out.follow = follow;
    if (out.json && !follow && (out.lines = cJSON_CreateArray()) == NULL)
        return EXIT_AGENT_ERROR;
    ctl->client.on_items = print_lines;
    ctl->client.on_items_arg = &out;
    client_request_begin(&ctl->client, &w, PROTO_OP_LOGS,
                         (size_t)(follow + (name != NULL) + (level != NULL) + (lines != NULL)));
    if (follow)
        proto_pack_kv_bool(&w.pk, "follow", 1);
    if (name != NULL)
        proto_pack_kv_str(&w.pk, "name", name);
    if (level != NULL)
        proto_pack_kv_str(&w.pk, "level", level);
    if (lines != NULL)
        proto_pack_kv_uint(&w.pk, "lines", (uint64_t)n);
    rc = ctl_call(ctl, &w, &r);
    ctl->client.on_items = NULL;
    if (rc == 0 && out.lines != NULL) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddItemToObject(o, "lines", out.lines);
        out.lines = NULL;
        output_json(o);
        cJSON_Delete(o);
    }
    cJSON_Delete(out.lines);
    reply_free(&r);
    return rc;
}
