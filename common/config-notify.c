#include "config-notify.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* Most recipients, webhooks. */
#define NOTIFY_TO_MAX 32
#define NOTIFY_WEBHOOKS_MAX 16

static const char *const wdays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
static const char *const wdays_long[] = {"sunday",   "monday", "tuesday", "wednesday",
                                         "thursday", "friday", "saturday"};

int
config_notify_address_ok(const char *s)
{
    const char *at = strrchr(s, '@');
    size_t len = strlen(s);

    if (at == NULL || at == s || at[1] == '\0' || len > 254 || strchr(s, '@') != at)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == 0x7f || strchr("<>()[],;:\\\"", *p) != NULL)
            return 0;
    }
    /* The domain: labels of letters, digits, '-' (and UTF-8), separated by single dots. */
    if (at[1] == '.' || s[len - 1] == '.' || strstr(at, "..") != NULL)
        return 0;
    return 1;
}

/* Sets *cause and is -E_BAD_INPUT (a macro, so that the compiler checks each format). */
#define bad(cause, ...) (err_set((cause), __VA_ARGS__), -E_BAD_INPUT)

static const char *
json_kind(const cJSON *j)
{
    if (cJSON_IsString(j))
        return "a string";
    if (cJSON_IsNumber(j))
        return "a number";
    if (cJSON_IsBool(j))
        return "a boolean";
    if (cJSON_IsArray(j))
        return "an array";
    if (cJSON_IsObject(j))
        return "an object";
    return "null";
}

/* A non-empty string member copied to *out (NULL when missing and not required). */
static int
get_str(const cJSON *obj, const char *key, const char *path, int required, char **out,
        char **cause)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);

    *out = NULL;
    if (j == NULL) {
        if (!required)
            return 0;
        err_set(cause, "%s.%s: missing (required)", path, key);
        return -E_BAD_INPUT;
    }
    if (!cJSON_IsString(j) || j->valuestring[0] == '\0') {
        err_set(cause, "%s.%s: expected a non-empty string, got %s", path, key,
                cJSON_IsString(j) ? "an empty string" : json_kind(j));
        return -E_BAD_INPUT;
    }
    if ((*out = strdup(j->valuestring)) == NULL)
        return -E_NOMEM;
    return 0;
}

static int
get_int(const cJSON *obj, const char *key, const char *path, int min, int max, int def, int *out,
        char **cause)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);

    *out = def;
    if (j == NULL)
        return 0;
    if (!cJSON_IsNumber(j) || j->valuedouble != (double)(long)j->valuedouble ||
        j->valuedouble < min || j->valuedouble > max) {
        err_set(cause, "%s.%s: expected an integer %d..%d", path, key, min, max);
        return -E_BAD_INPUT;
    }
    *out = (int)j->valuedouble;
    return 0;
}

/* Every member of obj is one of the names in allowed (NULL-terminated). */
static int
check_members(const cJSON *obj, const char *path, const char *const *allowed, const char *list,
              char **cause)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, obj)
    {
        int found = 0;

        for (const char *const *a = allowed; *a != NULL; a++)
            found |= strcmp(*a, it->string) == 0;
        if (!found) {
            err_set(cause, "%s.%s: unknown key (expected %s)", path, it->string, list);
            return -E_BAD_INPUT;
        }
    }
    return 0;
}

static int
starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int
parse_email(const cJSON *e, struct config_notify *n, char **cause)
{
    static const char *const allowed[] = {"smtp_url",      "from", "to",    "username",
                                          "password_file", "tls",  "trust", NULL};
    const char *path = "$.notify.email";
    const cJSON *to, *it, *tls;
    const char *tmp = NULL;
    int rc, i = 0;

    if (!cJSON_IsObject(e))
        return bad(cause, "%s: expected an object, got %s", path, json_kind(e));
    if ((rc = check_members(e, path, allowed,
                            "smtp_url, from, to, username, password_file, tls, trust", cause)) !=
            0 ||
        (rc = get_str(e, "smtp_url", path, 1, &n->smtp_url, cause)) != 0 ||
        (rc = get_str(e, "from", path, 1, &n->from, cause)) != 0 ||
        (rc = get_str(e, "username", path, 0, &n->username, cause)) != 0 ||
        (rc = get_str(e, "password_file", path, 0, &n->password_file, cause)) != 0 ||
        (rc = get_str(e, "trust", path, 0, &n->smtp_trust, cause)) != 0)
        return rc;
    if (!starts_with(n->smtp_url, "smtp://") && !starts_with(n->smtp_url, "smtps://"))
        return bad(cause, "%s.smtp_url: '%s' is not an smtp:// or smtps:// URL", path,
                   n->smtp_url);
    if (!config_notify_address_ok(n->from))
        return bad(cause, "%s.from: '%s' is not an e-mail address (user@example.com)", path,
                   n->from);
    if (n->username != NULL && n->password_file == NULL) {
        err_set(cause, "%s.password_file: missing: username is set, so AUTH needs a password",
                path);
        return -E_BAD_INPUT;
    }
    to = cJSON_GetObjectItemCaseSensitive(e, "to");
    if (to == NULL || !cJSON_IsArray(to) || cJSON_GetArraySize(to) < 1 ||
        cJSON_GetArraySize(to) > NOTIFY_TO_MAX) {
        err_set(cause, "%s.to: expected an array of 1 to %d e-mail addresses", path,
                NOTIFY_TO_MAX);
        return -E_BAD_INPUT;
    }
    cJSON_ArrayForEach(it, to)
    {
        char **items;

        if (!cJSON_IsString(it) || !config_notify_address_ok(it->valuestring)) {
            err_set(cause, "%s.to[%d]: %s%s%s is not an e-mail address (user@example.com)", path,
                    i, cJSON_IsString(it) ? "'" : "",
                    cJSON_IsString(it) ? it->valuestring : json_kind(it),
                    cJSON_IsString(it) ? "'" : "");
            return -E_BAD_INPUT;
        }
        if ((items = realloc(n->to.items, (n->to.n + 1) * sizeof(*items))) == NULL)
            return -E_NOMEM;
        n->to.items = items;
        if ((items[n->to.n] = strdup(it->valuestring)) == NULL)
            return -E_NOMEM;
        n->to.n++;
        i++;
    }
    tls = cJSON_GetObjectItemCaseSensitive(e, "tls");
    n->tls = starts_with(n->smtp_url, "smtps://") ? CONFIG_NOTIFY_TLS_IMPLICIT
                                                  : CONFIG_NOTIFY_TLS_STARTTLS;
    if (tls != NULL) {
        if (!cJSON_IsString(tls))
            return bad(cause, "%s.tls: expected \"starttls\", \"implicit\" or \"none\", got %s",
                       path, json_kind(tls));
        if (strcmp(tls->valuestring, "starttls") == 0)
            n->tls = CONFIG_NOTIFY_TLS_STARTTLS;
        else if (strcmp(tls->valuestring, "implicit") == 0)
            n->tls = CONFIG_NOTIFY_TLS_IMPLICIT;
        else if (strcmp(tls->valuestring, "none") == 0)
            n->tls = CONFIG_NOTIFY_TLS_NONE;
        else
            return bad(cause, "%s.tls: '%s' is not starttls, implicit or none", path,
                       tls->valuestring);
    }
    if (n->tls == CONFIG_NOTIFY_TLS_IMPLICIT && !starts_with(n->smtp_url, "smtps://"))
        tmp = "tls implicit needs an smtps:// URL";
    else if (n->tls != CONFIG_NOTIFY_TLS_IMPLICIT && starts_with(n->smtp_url, "smtps://"))
        tmp = "an smtps:// URL is implicit TLS: leave tls out or set \"implicit\"";
    if (tmp != NULL)
        return bad(cause, "%s.tls: %s", path, tmp);
    return 0;
}

static int
parse_webhooks(const cJSON *a, struct config_notify *n, char **cause)
{
    static const char *const allowed[] = {"url", "format", "headers_file", "trust", NULL};
    const cJSON *it;
    int rc;

    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > NOTIFY_WEBHOOKS_MAX) {
        err_set(cause, "$.notify.webhooks: expected an array of at most %d objects",
                NOTIFY_WEBHOOKS_MAX);
        return -E_BAD_INPUT;
    }
    if ((n->webhooks = calloc((size_t)cJSON_GetArraySize(a) + 1, sizeof(*n->webhooks))) == NULL)
        return -E_NOMEM;
    cJSON_ArrayForEach(it, a)
    {
        struct config_webhook *w = &n->webhooks[n->nwebhooks];
        char path[64];
        char *format = NULL;

        snprintf(path, sizeof(path), "$.notify.webhooks[%zu]", n->nwebhooks);
        n->nwebhooks++;
        if (!cJSON_IsObject(it))
            return bad(cause, "%s: expected an object, got %s", path, json_kind(it));
        if ((rc = check_members(it, path, allowed, "url, format, headers_file, trust", cause)) !=
                0 ||
            (rc = get_str(it, "url", path, 1, &w->url, cause)) != 0 ||
            (rc = get_str(it, "headers_file", path, 0, &w->headers_file, cause)) != 0 ||
            (rc = get_str(it, "trust", path, 0, &w->trust, cause)) != 0 ||
            (rc = get_str(it, "format", path, 0, &format, cause)) != 0)
            return rc;
        if (!starts_with(w->url, "http://") && !starts_with(w->url, "https://")) {
            err_set(cause, "%s.url: '%s' is not an http:// or https:// URL", path, w->url);
            free(format);
            return -E_BAD_INPUT;
        }
        if (format == NULL || strcmp(format, "json") == 0)
            w->format = CONFIG_NOTIFY_FORMAT_JSON;
        else if (strcmp(format, "slack") == 0)
            w->format = CONFIG_NOTIFY_FORMAT_SLACK;
        else if (strcmp(format, "teams") == 0)
            w->format = CONFIG_NOTIFY_FORMAT_TEAMS;
        else {
            err_set(cause, "%s.format: '%s' is not json, slack or teams", path, format);
            free(format);
            return -E_BAD_INPUT;
        }
        free(format);
    }
    return 0;
}

static int
parse_hhmm(const char *s, int *hour, int *minute)
{
    if (strlen(s) != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++) {
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    }
    *hour = (s[0] - '0') * 10 + (s[1] - '0');
    *minute = (s[3] - '0') * 10 + (s[4] - '0');
    return *hour < 24 && *minute < 60 ? 0 : -1;
}

static int
parse_report(const cJSON *j, struct config_notify *n, char **cause)
{
    const char *s;
    char day[16];
    size_t dl;

    if (!cJSON_IsString(j))
        return bad(cause,
                   "%s: expected a string (\"daily HH:MM\", \"weekly DAY HH:MM\" or "
                   "\"off\"), got %s",
                   "$.notify.report", json_kind(j));
    s = j->valuestring;
    if (strcmp(s, "off") == 0) {
        n->report = CONFIG_NOTIFY_REPORT_OFF;
        return 0;
    }
    if (starts_with(s, "daily ") && parse_hhmm(s + 6, &n->report_hour, &n->report_minute) == 0) {
        n->report = CONFIG_NOTIFY_REPORT_DAILY;
        return 0;
    }
    if (starts_with(s, "weekly ") && (dl = strcspn(s + 7, " ")) < sizeof(day) &&
        s[7 + dl] == ' ' && parse_hhmm(s + 8 + dl, &n->report_hour, &n->report_minute) == 0) {
        memcpy(day, s + 7, dl);
        day[dl] = '\0';
        for (size_t i = 0; i < dl; i++)
            day[i] = (char)(day[i] >= 'A' && day[i] <= 'Z' ? day[i] + 32 : day[i]);
        for (int d = 0; d < 7; d++) {
            if (strcmp(day, wdays[d]) == 0 || strcmp(day, wdays_long[d]) == 0) {
                n->report = CONFIG_NOTIFY_REPORT_WEEKLY;
                n->report_wday = d;
                return 0;
            }
        }
    }
    return bad(cause,
               "%s: '%s' is not \"daily HH:MM\", \"weekly DAY HH:MM\" (DAY mon..sun) or "
               "\"off\" (local time, e.g. \"daily 07:00\")",
               "$.notify.report", s);
}

int
config_notify_parse(const cJSON *j, struct config_notify **out, char **cause)
{
    static const char *const allowed[] = {"email",
                                          "webhooks",
                                          "report",
                                          "repeat_hours",
                                          "retry_seconds",
                                          "failing_minutes",
                                          "coalesce_seconds",
                                          "timeout",
                                          NULL};
    struct config_notify *n;
    const cJSON *it;
    int rc;

    *out = NULL;
    if (!cJSON_IsObject(j))
        return bad(cause, "%s: expected an object, got %s", "$.notify", json_kind(j));
    if ((n = calloc(1, sizeof(*n))) == NULL)
        return -E_NOMEM;
    if ((rc = check_members(j, "$.notify", allowed,
                            "email, webhooks, report, repeat_hours, retry_seconds, "
                            "failing_minutes, coalesce_seconds, timeout",
                            cause)) != 0)
        goto out;
    if ((it = cJSON_GetObjectItemCaseSensitive(j, "email")) != NULL &&
        (rc = parse_email(it, n, cause)) != 0)
        goto out;
    if ((it = cJSON_GetObjectItemCaseSensitive(j, "webhooks")) != NULL &&
        (rc = parse_webhooks(it, n, cause)) != 0)
        goto out;
    if ((it = cJSON_GetObjectItemCaseSensitive(j, "report")) != NULL &&
        (rc = parse_report(it, n, cause)) != 0)
        goto out;
    if ((rc = get_int(j, "repeat_hours", "$.notify", 0, 8760, 24, &n->repeat_hours, cause)) != 0 ||
        (rc = get_int(j, "retry_seconds", "$.notify", 1, 3600, 60, &n->retry_seconds, cause)) !=
            0 ||
        (rc = get_int(j, "failing_minutes", "$.notify", 0, 10080, 60, &n->failing_minutes,
                      cause)) != 0 ||
        (rc = get_int(j, "coalesce_seconds", "$.notify", 0, 3600, 10, &n->coalesce_seconds,
                      cause)) != 0 ||
        (rc = get_int(j, "timeout", "$.notify", 1, 600, 60, &n->timeout, cause)) != 0)
        goto out;
    if (n->report != CONFIG_NOTIFY_REPORT_OFF && n->smtp_url == NULL) {
        err_set(cause, "$.notify.report: the status report is e-mailed: set $.notify.email too, "
                       "or \"report\": \"off\"");
        rc = -E_BAD_INPUT;
        goto out;
    }
out:
    if (rc != 0)
        config_notify_free(n);
    else
        *out = n;
    return rc;
}

void
config_notify_free(struct config_notify *n)
{
    if (n == NULL)
        return;
    free(n->smtp_url);
    free(n->from);
    for (size_t i = 0; i < n->to.n; i++)
        free(n->to.items[i]);
    free(n->to.items);
    free(n->username);
    free(n->password_file);
    free(n->smtp_trust);
    for (size_t i = 0; i < n->nwebhooks; i++) {
        free(n->webhooks[i].url);
        free(n->webhooks[i].headers_file);
        free(n->webhooks[i].trust);
    }
    free(n->webhooks);
    free(n);
}

void
config_notify_report_text(const struct config_notify *n, char *buf, size_t len)
{
    if (n == NULL || n->report == CONFIG_NOTIFY_REPORT_OFF)
        snprintf(buf, len, "off");
    else if (n->report == CONFIG_NOTIFY_REPORT_DAILY)
        snprintf(buf, len, "daily %02d:%02d", n->report_hour, n->report_minute);
    else
        snprintf(buf, len, "weekly %s %02d:%02d", wdays[n->report_wday], n->report_hour,
                 n->report_minute);
}
