#include "config-canary.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "config-cluster.h"
#include "err.h"

#define EVERY_MIN 60L
#define EVERY_MAX (366L * 86400)

static const char *const known[] = {"ca",        "name",  "directory", "trust", "roots",
                                    "challenge", "every", "deadline",  NULL};

/* The CAs with a public staging directory (RFC 8555 directories of their test environments). */
static const struct {
    const char *ca;
    const char *directory;
} staging[] = {
    {"letsencrypt", "https://acme-staging-v02.api.letsencrypt.org/directory"},
    {"google", "https://dv.acme-v02.test-api.pki.goog/directory"},
    {"buypass", "https://api.test4.buypass.no/acme/directory"},
};

const char *
config_canary_staging_directory(const char *ca)
{
    for (size_t i = 0; i < sizeof(staging) / sizeof(staging[0]); i++)
        if (strcmp(staging[i].ca, ca) == 0)
            return staging[i].directory;
    return NULL;
}

long
config_canary_interval(const char *s)
{
    char *end = NULL;
    long v, mult;

    if (s == NULL || s[0] < '0' || s[0] > '9')
        return -1;
    v = strtol(s, &end, 10);
    if (end == NULL || end[0] == '\0' || end[1] != '\0' || v < 0 || v > EVERY_MAX)
        return -1;
    switch (end[0]) {
    case 's':
        mult = 1;
        break;
    case 'm':
        mult = 60;
        break;
    case 'h':
        mult = 3600;
        break;
    case 'd':
        mult = 86400;
        break;
    default:
        return -1;
    }
    return v > EVERY_MAX / mult ? -1 : v * mult;
}

static void
canary_clear(struct config_canary *c)
{
    free(c->ca);
    free(c->directory);
    free(c->trust);
    free(c->roots);
    free(c->name);
    free(c->challenge);
    memset(c, 0, sizeof(*c));
}

void
config_canaries_free(struct config_canaries *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        canary_clear(&c->items[i]);
    free(c->items);
    c->items = NULL;
    c->n = 0;
}

/* Is name a DNS name (labels of letters, digits and '-', an optional leading "*.")? */
static int
dns_name_ok(const char *name)
{
    const char *p = strncmp(name, "*.", 2) == 0 ? name + 2 : name;
    size_t n = strlen(p), label = 0;

    if (n == 0 || n > 253 || p[0] == '.' || p[n - 1] == '.' || strchr(p, '.') == NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];

        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-') ||
            ++label > 63)
            return 0;
    }
    return 1;
}

/* A string member, or NULL; -E_BAD_INPUT when present and not a non-empty string. */
static int
member_str(const cJSON *it, size_t i, const char *key, char **out, char **cause)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(it, key);

    *out = NULL;
    if (m == NULL)
        return 0;
    if (!cJSON_IsString(m) || m->valuestring[0] == '\0') {
        err_set(cause, "$.canaries[%zu].%s: expected a non-empty string", i, key);
        return -E_BAD_INPUT;
    }
    return (*out = strdup(m->valuestring)) != NULL ? 0 : -E_NOMEM;
}

static int
parse_one(const cJSON *it, size_t i, struct config_canary *c, char **cause)
{
    const cJSON *m;
    char *every = NULL;
    long secs;
    int rc;

    if (!cJSON_IsObject(it)) {
        err_set(cause, "$.canaries[%zu]: expected an object {\"ca\", \"name\", ...}", i);
        return -E_BAD_INPUT;
    }
    cJSON_ArrayForEach(m, it)
    {
        int found = 0;

        for (const char *const *k = known; *k != NULL; k++)
            found |= strcmp(*k, m->string) == 0;
        if (!found) {
            err_set(cause,
                    "$.canaries[%zu].%s: unknown member (ca, name, directory, trust, roots, "
                    "challenge, every, deadline)",
                    i, m->string);
            return -E_BAD_INPUT;
        }
    }
    if ((rc = member_str(it, i, "ca", &c->ca, cause)) != 0 ||
        (rc = member_str(it, i, "name", &c->name, cause)) != 0 ||
        (rc = member_str(it, i, "directory", &c->directory, cause)) != 0 ||
        (rc = member_str(it, i, "trust", &c->trust, cause)) != 0 ||
        (rc = member_str(it, i, "roots", &c->roots, cause)) != 0 ||
        (rc = member_str(it, i, "challenge", &c->challenge, cause)) != 0 ||
        (rc = member_str(it, i, "every", &every, cause)) != 0)
        goto out;
    rc = -E_BAD_INPUT;
    if (c->ca == NULL || c->name == NULL) {
        err_set(cause, "$.canaries[%zu]: \"ca\" and \"name\" are required", i);
        goto out;
    }
    if (c->directory == NULL) {
        const char *d = config_canary_staging_directory(c->ca);

        if (d == NULL) {
            err_set(cause,
                    "$.canaries[%zu].directory: CA '%s' has no built-in staging directory; "
                    "give its staging directory URL",
                    i, c->ca);
            goto out;
        }
        if ((c->directory = strdup(d)) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
    }
    if (strncmp(c->directory, "https://", 8) != 0 &&
        !(strncmp(c->directory, "http://", 7) == 0 && config_cluster_loopback_url(c->directory))) {
        err_set(cause,
                "$.canaries[%zu].directory: '%s' is not an https:// URL (http:// is accepted "
                "only on a loopback address)",
                i, c->directory);
        goto out;
    }
    if (c->challenge == NULL && (c->challenge = strdup("http-01")) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if (strcmp(c->challenge, "http-01") != 0 && strcmp(c->challenge, "tls-alpn-01") != 0 &&
        strcmp(c->challenge, "dns-01") != 0) {
        err_set(cause, "$.canaries[%zu].challenge: '%s' is not http-01, tls-alpn-01 or dns-01", i,
                c->challenge);
        goto out;
    }
    if (!dns_name_ok(c->name)) {
        err_set(cause, "$.canaries[%zu].name: '%s' is not a DNS name", i, c->name);
        goto out;
    }
    if (strncmp(c->name, "*.", 2) == 0 && strcmp(c->challenge, "dns-01") != 0) {
        err_set(cause,
                "$.canaries[%zu].name: the wildcard name %s cannot be validated with %s; use "
                "\"challenge\": \"dns-01\"",
                i, c->name, c->challenge);
        goto out;
    }
    secs = every != NULL ? config_canary_interval(every) : 86400;
    if (secs < EVERY_MIN) {
        err_set(cause,
                "$.canaries[%zu].every: '%s' is not a duration of 60s to 366d such as \"1d\", "
                "\"12h\", \"30m\"",
                i, every != NULL ? every : "");
        goto out;
    }
    c->every = (int)secs;
    c->deadline = 600;
    if ((m = cJSON_GetObjectItemCaseSensitive(it, "deadline")) != NULL) {
        if (!cJSON_IsNumber(m) || m->valuedouble < 5 || m->valuedouble > 3600 ||
            m->valuedouble != (double)(int)m->valuedouble) {
            err_set(cause, "$.canaries[%zu].deadline: expected whole seconds, 5..3600", i);
            goto out;
        }
        c->deadline = (int)m->valuedouble;
    }
    rc = 0;
out:
    free(every);
    return rc;
}

int
config_canaries_parse(const cJSON *j, struct config_canaries *out, char **cause)
{
    struct config_canaries nc = {NULL, 0};
    const cJSON *it;
    int n, rc = 0;

    if (j == NULL)
        return 0;
    if (!cJSON_IsArray(j) || (n = cJSON_GetArraySize(j)) > CONFIG_CANARIES_MAX) {
        err_set(cause, "$.canaries: expected an array of at most %d canaries",
                CONFIG_CANARIES_MAX);
        return -E_BAD_INPUT;
    }
    if (n > 0 && (nc.items = calloc((size_t)n, sizeof(*nc.items))) == NULL)
        return -E_NOMEM;
    cJSON_ArrayForEach(it, j)
    {
        struct config_canary *c = &nc.items[nc.n];

        rc = parse_one(it, nc.n, c, cause);
        nc.n++;
        if (rc != 0)
            goto out;
        for (size_t k = 0; k + 1 < nc.n; k++) {
            if (strcmp(nc.items[k].ca, c->ca) == 0) {
                err_set(cause,
                        "$.canaries[%zu].ca: CA '%s' has a canary already ($.canaries[%zu])",
                        nc.n - 1, c->ca, k);
                rc = -E_BAD_INPUT;
                goto out;
            }
        }
    }
    config_canaries_free(out);
    *out = nc;
    nc.items = NULL;
    nc.n = 0;
out:
    config_canaries_free(&nc);
    return rc;
}
