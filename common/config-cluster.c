#include "config-cluster.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cluster-sys.h"
#include "err.h"
#include "fleetkey.h"
#include "fsutil.h"

#define CLUSTER_MAX_ENDPOINTS 16
#define CLUSTER_MAX_TAGS 32

static const char *const known[] = {"etcd",
                                    "trust",
                                    "client_cert",
                                    "client_cert_file",
                                    "client_key_file",
                                    "fleet",
                                    "fleet_key_file",
                                    "node",
                                    "tags",
                                    "fleet_grace",
                                    NULL};

int
config_cluster_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CONFIG_CLUSTER_NAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int
config_cluster_loopback_url(const char *url)
{
    const char *h = strstr(url, "://");
    size_t n;

    if (h == NULL)
        return 0;
    h += 3;
    if (strncmp(h, "[::1]", 5) == 0)
        return h[5] == '\0' || h[5] == ':' || h[5] == '/';
    n = strcspn(h, ":/");
    if (n == 9 && strncmp(h, "localhost", 9) == 0)
        return 1;
    if (strncmp(h, "127.", 4) != 0)
        return 0;
    for (size_t i = 4; i < n; i++) {
        if (!((h[i] >= '0' && h[i] <= '9') || h[i] == '.'))
            return 0;
    }
    return 1;
}

void
config_cluster_free(struct config_cluster *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->netcd; i++)
        free(c->etcd[i]);
    free(c->etcd);
    for (size_t i = 0; i < c->ntags; i++)
        free(c->tags[i]);
    free(c->tags);
    free(c->trust);
    free(c->client_cert);
    free(c->client_cert_file);
    free(c->client_key_file);
    free(c->fleet);
    free(c->fleet_key_file);
    free(c->node);
    free(c);
}

/* An optional non-empty string member into *out. */
static int
get_string(const cJSON *j, const char *key, char **out, char **cause)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

    if (v == NULL)
        return 0;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
        err_set(cause, "$.cluster.%s: expected a non-empty string", key);
        return -E_BAD_INPUT;
    }
    if ((*out = strdup(v->valuestring)) == NULL)
        return -E_NOMEM;
    return 0;
}

/* An array of non-empty strings, at most max. */
static int
get_strings(const cJSON *j, const char *key, size_t max, char ***out, size_t *n, char **cause)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key), *it;
    size_t count;

    if (v == NULL)
        return 0;
    if (!cJSON_IsArray(v) || (count = (size_t)cJSON_GetArraySize(v)) > max) {
        err_set(cause, "$.cluster.%s: expected an array of at most %zu strings", key, max);
        return -E_BAD_INPUT;
    }
    if (count > 0 && (*out = calloc(count, sizeof(**out))) == NULL)
        return -E_NOMEM;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it) || it->valuestring[0] == '\0') {
            err_set(cause, "$.cluster.%s[%zu]: expected a non-empty string", key, *n);
            return -E_BAD_INPUT;
        }
        if (((*out)[*n] = strdup(it->valuestring)) == NULL)
            return -E_NOMEM;
        (*n)++;
    }
    return 0;
}

static int
check_endpoints(struct config_cluster *c, char **cause)
{
    if (c->netcd == 0) {
        err_set(cause, "$.cluster.etcd: name at least one etcd endpoint "
                       "(\"https://HOST:2379\")");
        return -E_BAD_INPUT;
    }
    for (size_t i = 0; i < c->netcd; i++) {
        const char *u = c->etcd[i];

        if (strncmp(u, "https://", 8) == 0 && u[8] != '\0')
            continue;
        if (strncmp(u, "http://", 7) == 0 && config_cluster_loopback_url(u)) {
            c->insecure = 1;
            continue;
        }
        err_set(cause,
                "$.cluster.etcd[%zu]: '%s' is not an https:// URL (http:// is accepted only on "
                "a loopback address)",
                i, u);
        return -E_BAD_INPUT;
    }
    return 0;
}

static int
check_files(const struct config_cluster *c, char **cause)
{
    unsigned char key[FLEETKEY_LEN];
    int rc;

    if (c->client_cert != NULL && (c->client_cert_file != NULL || c->client_key_file != NULL)) {
        err_set(cause, "$.cluster: give client_cert (a certificate of the store) or "
                       "client_cert_file and client_key_file, not both");
        return -E_BAD_INPUT;
    }
    if ((c->client_cert_file == NULL) != (c->client_key_file == NULL)) {
        err_set(cause, "$.cluster: client_cert_file and client_key_file go together");
        return -E_BAD_INPUT;
    }
    if (c->trust != NULL && !fsutil_exists(c->trust)) {
        err_set(cause, "$.cluster.trust: %s does not exist", c->trust);
        return -E_BAD_INPUT;
    }
    if (c->client_cert_file != NULL && !fsutil_exists(c->client_cert_file)) {
        err_set(cause, "$.cluster.client_cert_file: %s does not exist", c->client_cert_file);
        return -E_BAD_INPUT;
    }
    if (c->client_key_file != NULL && !fsutil_exists(c->client_key_file)) {
        err_set(cause, "$.cluster.client_key_file: %s does not exist", c->client_key_file);
        return -E_BAD_INPUT;
    }
    if ((rc = fleetkey_read(c->fleet_key_file, key, cause)) != 0) {
        char *inner = *cause;

        *cause = NULL;
        err_set(cause, "$.cluster.fleet_key_file: %s", inner ? inner : "cannot be read");
        free(inner);
        return rc == -E_NOMEM ? rc : -E_BAD_INPUT;
    }
    return 0;
}

int
config_cluster_parse(const cJSON *j, struct config_cluster **out, char **cause)
{
    struct config_cluster *c = NULL;
    const cJSON *it, *grace;
    char host[256];
    int rc;

    *out = NULL;
    if (!cJSON_IsObject(j)) {
        err_set(cause, "$.cluster: expected an object ({\"etcd\": [...], \"fleet\": ..., "
                       "\"fleet_key_file\": ...})");
        return -E_BAD_INPUT;
    }
    cJSON_ArrayForEach(it, j)
    {
        int found = 0;

        for (const char *const *k = known; *k != NULL; k++)
            found |= strcmp(*k, it->string) == 0;
        if (!found) {
            err_set(cause, "$.cluster.%s: unknown key", it->string);
            return -E_BAD_INPUT;
        }
    }
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return -E_NOMEM;
    c->fleet_grace = 300;
    if ((rc = get_strings(j, "etcd", CLUSTER_MAX_ENDPOINTS, &c->etcd, &c->netcd, cause)) != 0 ||
        (rc = get_strings(j, "tags", CLUSTER_MAX_TAGS, &c->tags, &c->ntags, cause)) != 0 ||
        (rc = get_string(j, "trust", &c->trust, cause)) != 0 ||
        (rc = get_string(j, "client_cert", &c->client_cert, cause)) != 0 ||
        (rc = get_string(j, "client_cert_file", &c->client_cert_file, cause)) != 0 ||
        (rc = get_string(j, "client_key_file", &c->client_key_file, cause)) != 0 ||
        (rc = get_string(j, "fleet", &c->fleet, cause)) != 0 ||
        (rc = get_string(j, "fleet_key_file", &c->fleet_key_file, cause)) != 0 ||
        (rc = get_string(j, "node", &c->node, cause)) != 0)
        goto out;
    if ((grace = cJSON_GetObjectItemCaseSensitive(j, "fleet_grace")) != NULL) {
        if (!cJSON_IsNumber(grace) || grace->valuedouble < 10 || grace->valuedouble > 86400 ||
            grace->valuedouble != (double)(int)grace->valuedouble) {
            err_set(cause, "$.cluster.fleet_grace: expected whole seconds in 10..86400");
            rc = -E_BAD_INPUT;
            goto out;
        }
        c->fleet_grace = (int)grace->valuedouble;
    }
    if ((rc = check_endpoints(c, cause)) != 0)
        goto out;
    rc = -E_BAD_INPUT;
    if (c->fleet == NULL || !config_cluster_name_ok(c->fleet)) {
        err_set(cause,
                "$.cluster.fleet: name the fleet with 1 to %d letters, digits, '.', '_' "
                "or '-' (no '/')",
                CONFIG_CLUSTER_NAME_MAX);
        goto out;
    }
    if (c->fleet_key_file == NULL) {
        err_set(cause, "$.cluster.fleet_key_file: required (make one with certctl fleet keygen "
                       "FILE and copy it to every node)");
        goto out;
    }
    if (c->node == NULL) {
        if (cluster_sys_hostname(host, sizeof(host)) != 0 || (c->node = strdup(host)) == NULL) {
            err_set(cause, "$.cluster.node: no host name to use; name the node");
            goto out;
        }
        c->node[strcspn(c->node, ".")] = '\0';
    }
    if (!config_cluster_name_ok(c->node)) {
        err_set(cause, "$.cluster.node: '%s' is not 1 to %d letters, digits, '.', '_' or '-'",
                c->node, CONFIG_CLUSTER_NAME_MAX);
        goto out;
    }
    for (size_t i = 0; i < c->ntags; i++) {
        if (!config_cluster_name_ok(c->tags[i])) {
            err_set(cause,
                    "$.cluster.tags[%zu]: '%s' is not 1 to %d letters, digits, '.', '_' "
                    "or '-'",
                    i, c->tags[i], CONFIG_CLUSTER_NAME_MAX);
            goto out;
        }
    }
    if ((rc = check_files(c, cause)) != 0)
        goto out;
    *out = c;
    c = NULL;
out:
    config_cluster_free(c);
    return rc;
}

static int
str_differs(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a != b;
    return strcmp(a, b) != 0;
}

static int
strv_differs(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return 1;
    for (size_t i = 0; i < na; i++) {
        if (strcmp(a[i], b[i]) != 0)
            return 1;
    }
    return 0;
}

int
config_cluster_differs(const struct config_cluster *a, const struct config_cluster *b)
{
    if (a == NULL || b == NULL)
        return a != b;
    return strv_differs(a->etcd, a->netcd, b->etcd, b->netcd) ||
           strv_differs(a->tags, a->ntags, b->tags, b->ntags) || str_differs(a->trust, b->trust) ||
           str_differs(a->client_cert, b->client_cert) ||
           str_differs(a->client_cert_file, b->client_cert_file) ||
           str_differs(a->client_key_file, b->client_key_file) ||
           str_differs(a->fleet, b->fleet) || str_differs(a->fleet_key_file, b->fleet_key_file) ||
           str_differs(a->node, b->node) || a->fleet_grace != b->fleet_grace;
}
