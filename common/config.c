#include "config.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-notify.h"
#include "config-cluster.h"
#include "config-canary.h"
#include "err.h"
#include "fsutil.h"
#include "sys.h"
#include "utf8.h"

#define CONFIG_MAX_FILE (1024 * 1024)
/* Most entries in a KEY_LIST array. */
#define CONFIG_LIST_MAX 64

enum key_type {
    KEY_STRING,
    KEY_INT,
    KEY_MODE, /* octal permission bits written as a string: "0660" */
    KEY_ENUM,
    KEY_LIST, /* array of strings; the default is written space-separated */
    KEY_BOOL,
    KEY_CAS,     /* object of {"directory": URL, "trust": PATH} by CA name */
    KEY_STRLIST, /* array of non-empty strings (no address check), struct config_list */
    KEY_NOTIFY,  /* the "notify" object (config-notify.c), struct config_notify * */
    KEY_CLUSTER, /* the fleet's object (config-cluster.c), struct config_cluster * */
    /* The staging canaries (config-canary.c), struct config_canaries. */
    KEY_CANARIES,
};

struct key_def {
    const char *name;
    enum key_type type;
    size_t offset;
    long min, max;             /* KEY_INT bounds */
    const char *const *values; /* KEY_ENUM, NULL-terminated */
    const char *def;           /* default as text; NULL for "platform default" */
    int reloadable;
    int sensitive;
    const char *doc;
};

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const tls_versions[] = {"1.0", "1.1", "1.2", "1.3", NULL};
static const char *const on_expiry_values[] = {"keep", "selfsigned", NULL};
static const char *const key_types[] = {"ec256",   "ec384",   "rsa2048", "rsa3072",
                                        "rsa4096", "ed25519", NULL};

#define OFF(field) offsetof(struct config, field)

static const struct key_def keys[] = {
    {"socket", KEY_STRING, OFF(socket), 0, 0, NULL, NULL, 0, 0,
     "path of the IPC socket (default: /run/certagent/certagent.sock as root)"},
    {"socket_group", KEY_STRING, OFF(socket_group), 0, 0, NULL, NULL, 0, 0,
     "group that may use the socket (default: certagent when it exists)"},
    {"operate_group", KEY_STRING, OFF(operate_group), 0, 0, NULL, NULL, 1, 0,
     "group whose members may also operate the agent: probe, verify, logs, metrics, and the "
     "trust, CA and account listings (default: none)"},
    {"socket_mode", KEY_MODE, OFF(socket_mode), 0, 0777, NULL, "0660", 0, 0,
     "permission bits of the socket, as an octal string"},
    {"state_dir", KEY_STRING, OFF(state_dir), 0, 0, NULL, NULL, 0, 0,
     "directory of the store (default: /var/lib/certagent as root)"},
    {"log_level", KEY_ENUM, OFF(log_level), 0, 0, log_levels, "info", 1, 0,
     "error, warn, info or debug"},
    {"default_key", KEY_ENUM, OFF(default_key), 0, 0, key_types, "ec256", 1, 0,
     "key type for new keys: ec256, ec384, rsa2048, rsa3072, rsa4096, ed25519"},
    {"selfsigned_days", KEY_INT, OFF(selfsigned_days), 1, CONFIG_SELFSIGNED_DAYS_MAX, NULL, "365",
     1, 0, "validity in days of self-signed certificates when --days is not given"},
    {"max_connections", KEY_INT, OFF(max_connections), 1, 100000, NULL, "1024", 1, 0,
     "IPC clients served at once; more are refused with E_UNAVAILABLE"},
    {"default_ca", KEY_STRING, OFF(default_ca), 0, 0, NULL, "letsencrypt", 1, 0,
     "ACME CA used when certctl request gives no --ca"},
    {"dns01_hook", KEY_STRING, OFF(dns01_hook), 0, 0, NULL, NULL, 1, 0,
     "command run as 'HOOK add|remove' with CERTAGENT_DNS01_NAME/VALUE/DOMAIN for dns-01"},
    {"acme_cas", KEY_CAS, OFF(acme_cas), 0, 0, NULL, NULL, 0, 0,
     "ACME CAs by name: {\"NAME\": {\"directory\": URL, \"trust\": PEM-FILE}}"},
    {"windows_store", KEY_STRING, OFF(windows_store), 0, 0, NULL, NULL, 1, 0,
     "Windows: default store target (e.g. MY) of certificates without --deploy-store"},
    {"http01_listen", KEY_LIST, OFF(http01_listen), 0, 0, NULL, "0.0.0.0:80 [::]:80", 1, 0,
     "addresses (\"ADDR:PORT\") where the http-01 responder listens"},
    {"tls_alpn01_listen", KEY_LIST, OFF(tls_alpn01_listen), 0, 0, NULL, "0.0.0.0:443 [::]:443", 1,
     0, "addresses (\"ADDR:PORT\") where the tls-alpn-01 responder listens"},
    {"challenge_listen_always", KEY_BOOL, OFF(challenge_listen_always), 0, 0, NULL, "false", 1, 0,
     "keep the challenge responders listening, not only while a challenge is pending"},
    {"responder_max_connections", KEY_INT, OFF(responder_max_connections), 1, 4096, NULL, "256", 1,
     0,
     "connections each responder (http-01, tls-alpn-01, metrics) keeps open at once; a new one "
     "closes the oldest that has not sent a complete request"},
    {"responder_max_per_address", KEY_INT, OFF(responder_max_per_address), 1, 4096, NULL, "16", 1,
     0,
     "connections one source address (an IPv6 /64) may hold open at each responder; more are "
     "refused"},
    {"responder_first_byte_timeout", KEY_INT, OFF(responder_first_byte_timeout), 1, 300, NULL, "5",
     1, 0, "seconds a responder connection may stay silent after it is accepted"},
    {"responder_request_timeout", KEY_INT, OFF(responder_request_timeout), 1, 300, NULL, "10", 1,
     0, "seconds a responder connection may stay open in all (request, answer and close)"},
    {"trust_system_dir", KEY_STRING, OFF(trust_system_dir), 0, 0, NULL, NULL, 1, 0,
     "directory that receives trusted roots as NAME.crt, e.g. /usr/local/share/ca-certificates "
     "(default: none, the system store is left alone)"},
    {"trust_system_command", KEY_STRING, OFF(trust_system_command), 0, 0, NULL,
     "update-ca-certificates", 1, 0,
     "command run (without a shell) after trust_system_dir changed"},
    {"trust_system_roots", KEY_BOOL, OFF(trust_system_roots), 0, 0, NULL, "true", 1, 0,
     "verify and probe trust the operating system's CA bundle besides the agent's anchors"},
    {"trust_aia_fetch", KEY_BOOL, OFF(trust_aia_fetch), 0, 0, NULL, "true", 1, 0,
     "verify may fetch a missing intermediate from the AIA caIssuers URL (http://, no redirect)"},
    {"trust_aia_timeout", KEY_INT, OFF(trust_aia_timeout), 1, 60, NULL, "5", 1, 0,
     "seconds one AIA fetch may take, connection (at most 3 s of it) and reply"},
    {"probe_min_tls", KEY_ENUM, OFF(probe_min_tls), 0, 0, tls_versions, "1.2", 1, 0,
     "oldest TLS version the probe policy allows: 1.0, 1.1, 1.2 or 1.3"},
    {"probe_timeout", KEY_INT, OFF(probe_timeout), 1, 300, NULL, "10", 1, 0,
     "seconds one probe may take (connection, STARTTLS and every handshake)"},
    {"probe_concurrency", KEY_INT, OFF(probe_concurrency), 1, 4096, NULL, "256", 1, 0,
     "probe connections open at once; the rest wait their turn"},
    {"probe_interval", KEY_INT, OFF(probe_interval), 10, 604800, NULL, "3600", 1, 0,
     "seconds between runs of the probes in the probes list"},
    {"probes", KEY_STRLIST, OFF(probes), 0, 256, NULL, NULL, 1, 0,
     "URLs probed every probe_interval; results and warnings appear in status"},
    {"served_check_interval", KEY_INT, OFF(served_check_interval), 10, 604800, NULL, "3600", 1, 0,
     "seconds between checks that each --check-served URL serves the current version "
     "(jittered by up to a tenth)"},
    {"served_grace", KEY_INT, OFF(served_grace), 0, 3600, NULL, "120", 1, 0,
     "seconds after a deploy during which a --check-served URL that serves another "
     "certificate is checked again, not reported"},
    {"renew_before_days", KEY_INT, OFF(renew_before_days), 0, 365, NULL, "0", 1, 0,
     "renew this many days before expiry (0: when a third of the lifetime is left, or inside "
     "the CA's renewal window)"},
    {"renew_after_revoke", KEY_BOOL, OFF(renew_after_revoke), 0, 0, NULL, "true", 1, 0,
     "after certctl revoke, renew an ACME certificate at once (false: the revoked version stays "
     "until certctl renew NAME --force or its planned renewal)"},
    {"renew_concurrency", KEY_INT, OFF(renew_concurrency), 1, 256, NULL, "4", 1, 0,
     "automatic renewals running at once"},
    {"renew_retry_min", KEY_INT, OFF(renew_retry_min), 1, 86400, NULL, "60", 1, 0,
     "seconds before the first retry of a failed renewal (the delay doubles each time)"},
    {"renew_retry_max", KEY_INT, OFF(renew_retry_max), 1, 86400, NULL, "3600", 1, 0,
     "the longest delay between retries of a failed renewal, in seconds"},
    {"renew_check_interval", KEY_INT, OFF(renew_check_interval), 1, 3600, NULL, "300", 1, 0,
     "the longest time in seconds between two looks at the renewal plan: a clock change or a "
     "system that slept is noticed within it"},
    {"deploy_hook", KEY_STRING, OFF(deploy_hook), 0, 0, NULL, NULL, 1, 0,
     "shell command run after every certificate's new version is deployed (CERTAGENT_* "
     "variables describe it)"},
    {"failure_hook", KEY_STRING, OFF(failure_hook), 0, 0, NULL, NULL, 1, 0,
     "shell command run after every failed renewal attempt (CERTAGENT_ERROR has the error)"},
    {"hook_timeout", KEY_INT, OFF(hook_timeout), 1, 3600, NULL, "300", 1, 0,
     "seconds a deploy or failure hook may run before it is stopped"},
    {"warn_days", KEY_INT, OFF(warn_days), 1, 3650, NULL, "30", 1, 0,
     "status warns when fewer days than this (or a quarter of the lifetime) are left"},
    {"critical_days", KEY_INT, OFF(critical_days), 1, 3650, NULL, "7", 1, 0,
     "status is critical when fewer days than this (or a tenth of the lifetime) are left"},
    {"metrics_listen", KEY_STRING, OFF(metrics_listen), 0, 0, NULL, NULL, 0, 0,
     "loopback ADDR:PORT (e.g. 127.0.0.1:9464) serving Prometheus GET /metrics; unset: off"},
    {"log_ring_lines", KEY_INT, OFF(log_ring_lines), 0, 1000000, NULL, "2000", 1, 0,
     "recent log lines kept in memory for certctl logs (0: none)"},
    {"ipc_frame_timeout", KEY_INT, OFF(ipc_frame_timeout), 1, 3600, NULL, "30", 1, 0,
     "seconds an IPC client may take to send a whole frame once it began one; then it is dropped"},
    {"ipc_hello_timeout", KEY_INT, OFF(ipc_hello_timeout), 1, 3600, NULL, "10", 1, 0,
     "seconds a new IPC client has to complete its hello; then it is dropped"},
    {"ipc_idle_timeout", KEY_INT, OFF(ipc_idle_timeout), 0, 86400, NULL, "300", 1, 0,
     "seconds an IPC client with no request in flight and not following the log is kept "
     "(0: no limit)"},
    {"max_connections_per_uid", KEY_INT, OFF(max_connections_per_uid), 1, 100000, NULL, "64", 1, 0,
     "IPC clients served at once for one user who may not change the store"},
    {"reserved_connections", KEY_INT, OFF(reserved_connections), 0, 100000, NULL, "32", 1, 0,
     "of max_connections, the slots (at most half) kept for users who may change the store"},
    {"ipc_partial_limit_mib", KEY_INT, OFF(ipc_partial_limit_mib), 2, 4096, NULL, "32", 1, 0,
     "MiB of incomplete frames held for all IPC clients together; past it the oldest is dropped"},
    {"acme_http_timeout", KEY_INT, OFF(acme_http_timeout), 1, 600, NULL, "30", 1, 0,
     "seconds one HTTP exchange with an ACME CA may take (connection included)"},
    {"dashboard_listen", KEY_STRING, OFF(dashboard_listen), 0, 0, NULL, NULL, 0, 0,
     "ADDR:PORT (e.g. 127.0.0.1:8443) serving the read-only dashboard; unset: off"},
    {"dashboard_certificate", KEY_STRING, OFF(dashboard_certificate), 0, 0, NULL, NULL, 0, 0,
     "store certificate the dashboard serves (default: certagent-dashboard, self-signed at "
     "first start)"},
    {"dashboard_plain_http", KEY_BOOL, OFF(dashboard_plain_http), 0, 0, NULL, "false", 0, 0,
     "serve the dashboard over plain HTTP instead of HTTPS"},
    {"dashboard_token_file", KEY_STRING, OFF(dashboard_token_file), 0, 0, NULL, NULL, 0, 0,
     "file holding the dashboard's access token (required on a non-loopback address)"},
    {"dashboard_refresh", KEY_INT, OFF(dashboard_refresh), 5, 86400, NULL, "60", 1, 0,
     "seconds after which the dashboard page reloads itself"},
    {"notify", KEY_NOTIFY, OFF(notify), 0, 0, NULL, NULL, 1, 0,
     "alerts that reach a person: {\"email\": {...}, \"webhooks\": [...], \"report\": "
     "\"daily 07:00\", \"repeat_hours\": 24} (docs/notifications.md); unset: none"},
    {"cluster", KEY_CLUSTER, OFF(cluster), 0, 0, NULL, NULL, 0, 0,
     "join a fleet through etcd: {\"etcd\": [URL...], \"trust\", \"client_cert\" or "
     "\"client_cert_file\"/\"client_key_file\", \"fleet\", \"fleet_key_file\", \"node\", "
     "\"tags\", \"fleet_grace\"} (docs/fleet.md); unset: no fleet"},
    {"fallback_cas", KEY_STRLIST, OFF(fallback_cas), 0, 8, NULL, NULL, 1, 0,
     "CAs tried in turn when a certificate's own CA keeps failing (certctl set --fallback-ca "
     "overrides it per certificate)"},
    {"fallback_after", KEY_INT, OFF(fallback_after), 1, 100, NULL, "3", 1, 0,
     "failed renewals in a row at one CA before the next CA in the fallback list is tried"},
    {"on_expiry", KEY_ENUM, OFF(on_expiry), 0, 0, on_expiry_values, "keep", 1, 0,
     "when renewal keeps failing and the certificate is about to expire: keep it, or make a "
     "self-signed stand-in (selfsigned); certctl set --on-expiry overrides it"},
    {"last_resort_hours", KEY_INT, OFF(last_resort_hours), 1, 720, NULL, "24", 1, 0,
     "with on_expiry selfsigned: hours before expiry when a failing renewal makes the "
     "self-signed stand-in"},
    {"last_resort_minutes", KEY_INT, OFF(last_resort_minutes), 0, 43200, NULL, "0", 1, 0,
     "the same in minutes, for short-lived certificates; when set it replaces last_resort_hours"},
    {"canaries", KEY_CANARIES, OFF(canaries), 0, 0, NULL, NULL, 1, 0,
     "staging canaries, one per CA: [{\"ca\", \"name\", \"directory\", \"trust\", \"roots\", "
     "\"challenge\", \"every\", \"deadline\"}] (docs/resilience.md); unset: none"},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const char *
type_name(enum key_type t)
{
    switch (t) {
    case KEY_STRING:
    case KEY_ENUM:
        return "string";
    case KEY_INT:
        return "integer";
    case KEY_MODE:
        return "octal string";
    case KEY_LIST:
        return "array of strings";
    case KEY_BOOL:
        return "boolean";
    case KEY_CAS:
        return "object";
    case KEY_STRLIST:
        return "array of strings";
    case KEY_NOTIFY:
    case KEY_CLUSTER:
        return "object";
    case KEY_CANARIES:
        return "array of objects";
    }
    return "?";
}

static const char *
json_type_name(const cJSON *j)
{
    if (cJSON_IsString(j))
        return "a string";
    if (cJSON_IsNumber(j))
        return "a number";
    if (cJSON_IsBool(j))
        return "a boolean";
    if (cJSON_IsNull(j))
        return "null";
    if (cJSON_IsArray(j))
        return "an array";
    if (cJSON_IsObject(j))
        return "an object";
    return "an invalid value";
}

static int
parse_mode(const char *s, long *out)
{
    long v = 0;

    if (s[0] == '\0' || strlen(s) > 4)
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '7')
            return -1;
        v = v * 8 + (*p - '0');
    }
    *out = v;
    return 0;
}

/*
 * Is s "ADDR:PORT" with an IPv4 address or a bracketed IPv6 address and a
 * port 1..65535?  (OpenSSL's a2i_IPADDRESS parses the address, portably.)
 */
static int
listen_addr_ok(const char *s)
{
    char host[64];
    const char *colon, *hstart;
    ASN1_OCTET_STRING *ip;
    size_t hlen;
    long port = 0;
    int len;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (close == NULL || close[1] != ':')
            return 0;
        hstart = s + 1;
        hlen = (size_t)(close - hstart);
        colon = close + 1;
    } else {
        if ((colon = strchr(s, ':')) == NULL || strchr(colon + 1, ':') != NULL)
            return 0;
        hstart = s;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= sizeof(host) || colon[1] == '\0' || strlen(colon + 1) > 5)
        return 0;
    for (const char *p = colon + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        port = port * 10 + (*p - '0');
    }
    memcpy(host, hstart, hlen);
    host[hlen] = '\0';
    ip = a2i_IPADDRESS(host);
    ERR_clear_error();
    len = ip != NULL ? ASN1_STRING_length(ip) : 0;
    ASN1_OCTET_STRING_free(ip);
    /* A bare IPv6 address needs its brackets, a bracketed IPv4 one does not take them. */
    return len == (s[0] == '[' ? 16 : 4) && port >= 1 && port <= 65535;
}

static void
list_free(struct config_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* Appends a copy of s. 0 or -E_NOMEM. */
static int
list_add(struct config_list *l, const char *s, size_t len)
{
    char **items = realloc(l->items, (l->n + 1) * sizeof(*items));

    if (items == NULL)
        return -E_NOMEM;
    l->items = items;
    if ((items[l->n] = malloc(len + 1)) == NULL)
        return -E_NOMEM;
    memcpy(items[l->n], s, len);
    items[l->n][len] = '\0';
    l->n++;
    return 0;
}

/* A list from a JSON array of "ADDR:PORT" strings, or from space-separated default text. */
static int
set_list(struct config_list *field, const struct key_def *k, const cJSON *j, const char *text,
         char **cause)
{
    struct config_list l = {NULL, 0};
    const cJSON *e;
    int rc = 0, i = 0;

    if (j == NULL) {
        for (const char *p = text; *p != '\0';) {
            size_t len = strcspn(p, " ");

            if (len > 0 && (rc = list_add(&l, p, len)) != 0)
                goto out;
            p += len;
            p += *p == ' ';
        }
        goto done;
    }
    if (!cJSON_IsArray(j)) {
        err_set(cause, "$.%s: expected an array of strings, got %s", k->name, json_type_name(j));
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (cJSON_GetArraySize(j) < 1 || cJSON_GetArraySize(j) > CONFIG_LIST_MAX) {
        err_set(cause, "$.%s: needs 1 to %d entries", k->name, CONFIG_LIST_MAX);
        rc = -E_BAD_INPUT;
        goto out;
    }
    cJSON_ArrayForEach(e, j)
    {
        if (!cJSON_IsString(e)) {
            err_set(cause, "$.%s[%d]: expected a string, got %s", k->name, i, json_type_name(e));
            rc = -E_BAD_INPUT;
            goto out;
        }
        if (!listen_addr_ok(e->valuestring)) {
            err_set(cause,
                    "$.%s[%d]: '%s' is not ADDR:PORT (an IPv4 address or an IPv6 address in "
                    "brackets, and a port 1..65535, e.g. \"0.0.0.0:80\" or \"[::]:80\")",
                    k->name, i, e->valuestring);
            rc = -E_BAD_INPUT;
            goto out;
        }
        if ((rc = list_add(&l, e->valuestring, strlen(e->valuestring))) != 0)
            goto out;
        i++;
    }
done:
    list_free(field);
    *field = l;
    l.items = NULL;
    l.n = 0;
out:
    list_free(&l);
    return rc;
}

static int
list_differs(const struct config_list *a, const struct config_list *b)
{
    if (a->n != b->n)
        return 1;
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->items[i], b->items[i]) != 0)
            return 1;
    }
    return 0;
}

static void
cas_free(struct config_cas *cas)
{
    for (size_t i = 0; i < cas->n; i++) {
        free(cas->items[i].name);
        free(cas->items[i].directory);
        free(cas->items[i].trust);
        free(cas->items[i].email);
        free(cas->items[i].eab_kid);
        if (cas->items[i].eab_hmac != NULL) {
            OPENSSL_cleanse(cas->items[i].eab_hmac, strlen(cas->items[i].eab_hmac));
            free(cas->items[i].eab_hmac);
        }
    }
    free(cas->items);
    cas->items = NULL;
    cas->n = 0;
}

/*
 * The optional registration members of an acme_cas entry: "auto_register"
 * (bool), "email", "eab_kid" and "eab_hmac_file" (strings; the file is read
 * here, so that a missing one stops the load, and its text is kept secret).
 */
static int
cas_registration(struct config_ca *ca, const struct key_def *k, const cJSON *it, char **cause)
{
    const cJSON *ar = cJSON_GetObjectItemCaseSensitive(it, "auto_register");
    const cJSON *em = cJSON_GetObjectItemCaseSensitive(it, "email");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(it, "eab_kid");
    const cJSON *hf = cJSON_GetObjectItemCaseSensitive(it, "eab_hmac_file");
    unsigned char *data = NULL;
    size_t len = 0;
    char *inner = NULL;
    int rc = 0;

    if ((ar != NULL && !cJSON_IsBool(ar)) || (em != NULL && !cJSON_IsString(em)) ||
        (kid != NULL && !cJSON_IsString(kid)) || (hf != NULL && !cJSON_IsString(hf))) {
        err_set(cause,
                "$.%s.%s: auto_register is true or false; email, eab_kid and eab_hmac_file "
                "are strings",
                k->name, it->string);
        return -E_BAD_INPUT;
    }
    if ((kid != NULL) != (hf != NULL)) {
        err_set(cause, "$.%s.%s: eab_kid and eab_hmac_file go together", k->name, it->string);
        return -E_BAD_INPUT;
    }
    ca->auto_register = cJSON_IsTrue(ar);
    if ((em != NULL && (ca->email = strdup(em->valuestring)) == NULL) ||
        (kid != NULL && (ca->eab_kid = strdup(kid->valuestring)) == NULL))
        return -E_NOMEM;
    if (hf == NULL)
        return 0;
    if ((rc = fsutil_read_file(hf->valuestring, 4096, &data, &len, &inner)) != 0) {
        err_set(cause, "$.%s.%s.eab_hmac_file: %s", k->name, it->string,
                inner != NULL ? inner : err_message(rc));
        free(inner);
        return rc == -E_NOMEM ? rc : -E_BAD_INPUT;
    }
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
        len--;
    if (len == 0) {
        err_set(cause, "$.%s.%s.eab_hmac_file: %s is empty", k->name, it->string, hf->valuestring);
        rc = -E_BAD_INPUT;
    } else if ((ca->eab_hmac = malloc(len + 1)) == NULL) {
        rc = -E_NOMEM;
    } else {
        memcpy(ca->eab_hmac, data, len);
        ca->eab_hmac[len] = '\0';
    }
    OPENSSL_cleanse(data, len);
    free(data);
    return rc;
}

/* acme_cas: an object whose members are {"directory": "https://...", "trust": "FILE"}. */
static int
set_cas(struct config_cas *cas, const struct key_def *k, const cJSON *j, char **cause)
{
    const cJSON *it;
    struct config_cas out = {NULL, 0};
    size_t n = 0;
    int rc;

    if (j == NULL) {
        cas_free(cas);
        return 0;
    }
    if (!cJSON_IsObject(j)) {
        err_set(cause, "$.%s: expected an object of CAs by name, got %s", k->name,
                json_type_name(j));
        return -E_BAD_INPUT;
    }
    cJSON_ArrayForEach(it, j) n++;
    if (n > 64) {
        err_set(cause, "$.%s: at most 64 CAs", k->name);
        return -E_BAD_INPUT;
    }
    if (n > 0 && (out.items = calloc(n, sizeof(*out.items))) == NULL)
        return -E_NOMEM;
    cJSON_ArrayForEach(it, j)
    {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "directory");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "trust");
        struct config_ca *ca = &out.items[out.n];

        if (!cJSON_IsObject(it) || !cJSON_IsString(d) ||
            (strncmp(d->valuestring, "https://", 8) != 0 &&
             strncmp(d->valuestring, "http://", 7) != 0) ||
            (t != NULL && !cJSON_IsString(t))) {
            err_set(cause,
                    "$.%s.%s: expected {\"directory\": \"https://...\", \"trust\": "
                    "\"FILE\"} (trust optional)",
                    k->name, it->string);
            cas_free(&out);
            return -E_BAD_INPUT;
        }
        if ((ca->name = strdup(it->string)) == NULL ||
            (ca->directory = strdup(d->valuestring)) == NULL ||
            (t != NULL && (ca->trust = strdup(t->valuestring)) == NULL)) {
            out.n++;
            cas_free(&out);
            return -E_NOMEM;
        }
        out.n++;
        if ((rc = cas_registration(ca, k, it, cause)) != 0) {
            cas_free(&out);
            return rc;
        }
    }
    cas_free(cas);
    *cas = out;
    return 0;
}

/* An array of at most k->max non-empty strings; no default (an empty list). */
static int
set_strlist(const struct key_def *k, const cJSON *j, struct config_list *l, char **cause)
{
    struct config_list nl = {NULL, 0};
    const cJSON *it;
    int n, rc;

    if (j == NULL)
        return 0;
    if (!cJSON_IsArray(j)) {
        err_set(cause, "$.%s: expected an array of strings, got %s", k->name, json_type_name(j));
        return -E_BAD_INPUT;
    }
    if ((n = cJSON_GetArraySize(j)) > k->max) {
        err_set(cause, "$.%s: %d entries, at most %ld are allowed", k->name, n, k->max);
        return -E_BAD_INPUT;
    }
    cJSON_ArrayForEach(it, j)
    {
        if (!cJSON_IsString(it) || it->valuestring[0] == '\0') {
            err_set(cause, "$.%s[%zu]: expected a non-empty string, got %s", k->name, nl.n,
                    cJSON_IsString(it) ? "an empty string" : json_type_name(it));
            list_free(&nl);
            return -E_BAD_INPUT;
        }
        if ((rc = list_add(&nl, it->valuestring, strlen(it->valuestring))) != 0) {
            list_free(&nl);
            return rc;
        }
    }
    list_free(l);
    *l = nl;
    return 0;
}

/* Stores text (from a default or the file) into the field of k. */
static int
set_value(struct config *c, const struct key_def *k, const cJSON *j, const char *text,
          char **cause)
{
    char *field = (char *)c + k->offset;

    switch (k->type) {
    case KEY_STRING:
    case KEY_ENUM: {
        char **sp = (char **)(void *)field;
        char *s;

        if (j != NULL && !cJSON_IsString(j)) {
            err_set(cause, "$.%s: expected a string, got %s", k->name, json_type_name(j));
            return -E_BAD_INPUT;
        }
        if (j != NULL)
            text = j->valuestring;
        if (k->type == KEY_ENUM) {
            int found = 0;

            for (const char *const *v = k->values; *v; v++)
                found |= strcmp(*v, text) == 0;
            if (!found) {
                err_set(cause, "$.%s: '%s' is not one of the allowed values (%s)", k->name, text,
                        k->doc);
                return -E_BAD_INPUT;
            }
        } else if (text[0] == '\0') {
            err_set(cause, "$.%s: must not be empty", k->name);
            return -E_BAD_INPUT;
        }
        if ((s = strdup(text)) == NULL)
            return -E_NOMEM;
        free(*sp);
        *sp = s;
        return 0;
    }
    case KEY_INT: {
        long v;

        if (j != NULL) {
            if (!cJSON_IsNumber(j)) {
                err_set(cause, "$.%s: expected an integer, got %s", k->name, json_type_name(j));
                return -E_BAD_INPUT;
            }
            /* The range first: converting a double outside long's range is undefined. */
            if (j->valuedouble < (double)k->min || j->valuedouble > (double)k->max) {
                err_set(cause, "$.%s: %g is out of range %ld..%ld", k->name, j->valuedouble,
                        k->min, k->max);
                return -E_BAD_INPUT;
            }
            if (j->valuedouble != (double)(long)j->valuedouble) {
                err_set(cause, "$.%s: expected an integer, got a fraction", k->name);
                return -E_BAD_INPUT;
            }
            v = (long)j->valuedouble;
        } else {
            v = strtol(text, NULL, 10);
        }
        *(int *)(void *)field = (int)v;
        return 0;
    }
    case KEY_MODE: {
        long v;

        if (j != NULL && !cJSON_IsString(j)) {
            err_set(cause, "$.%s: expected an octal string such as \"0660\", got %s", k->name,
                    json_type_name(j));
            return -E_BAD_INPUT;
        }
        if (j != NULL)
            text = j->valuestring;
        if (parse_mode(text, &v) != 0 || v > k->max) {
            err_set(cause, "$.%s: '%s' is not an octal mode such as \"0660\"", k->name, text);
            return -E_BAD_INPUT;
        }
        *(int *)(void *)field = (int)v;
        return 0;
    }
    case KEY_LIST:
        return set_list((struct config_list *)(void *)field, k, j, text, cause);
    case KEY_CAS:
        return set_cas((struct config_cas *)(void *)field, k, j, cause);
    case KEY_BOOL:
        if (j != NULL && !cJSON_IsBool(j)) {
            err_set(cause, "$.%s: expected true or false, got %s", k->name, json_type_name(j));
            return -E_BAD_INPUT;
        }
        *(int *)(void *)field = j != NULL ? cJSON_IsTrue(j) : strcmp(text, "true") == 0;
        return 0;
    case KEY_STRLIST:
        return set_strlist(k, j, (struct config_list *)(void *)field, cause);
    case KEY_NOTIFY: {
        struct config_notify **np = (struct config_notify **)(void *)field, *n = NULL;
        int rc;

        if (j == NULL)
            return 0;
        if ((rc = config_notify_parse(j, &n, cause)) != 0)
            return rc;
        config_notify_free(*np);
        *np = n;
        return 0;
    }
    case KEY_CANARIES:
        return config_canaries_parse(j, (struct config_canaries *)(void *)field, cause);
    case KEY_CLUSTER: {
        struct config_cluster **cp = (struct config_cluster **)(void *)field, *nc = NULL;
        int rc;

        if (j != NULL && (rc = config_cluster_parse(j, &nc, cause)) != 0)
            return rc;
        config_cluster_free(*cp);
        *cp = nc;
        return 0;
    }
    }
    return -E_INTERNAL;
}

int
config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NKEYS; i++) {
        int rc;

        if (keys[i].def == NULL)
            continue;
        if ((rc = set_value(c, &keys[i], NULL, keys[i].def, NULL)) != 0) {
            config_free(c);
            return rc;
        }
    }
    return 0;
}

static int
add_unknown_key(char ***warnings, size_t *n, const char *key)
{
    char *w = NULL;
    char **nw;

    if (warnings == NULL)
        return 0;
    err_set(&w, "$.%s: unknown key (ignored)", key);
    if (w == NULL)
        return -E_NOMEM;
    if ((nw = realloc(*warnings, (*n + 1) * sizeof(*nw))) == NULL) {
        free(w);
        return -E_NOMEM;
    }
    nw[(*n)++] = w;
    *warnings = nw;
    return 0;
}

/* Deeper nesting than any key needs ($.acme_cas.NAME.directory is 3). */
#define CONFIG_MAX_DEPTH 16

/*
 * What the JSON parser would let through or report vaguely: a NUL byte (cJSON
 * takes it for white space), bytes that are not UTF-8, nesting deeper than
 * CONFIG_MAX_DEPTH (brackets outside strings).
 */
static int
check_text(const char *text, size_t len, char **cause)
{
    const unsigned char *p = (const unsigned char *)text;
    int depth = 0, in_string = 0;
    long line = 1;

    for (size_t i = 0; i < len;) {
        size_t n;

        if (p[i] == '\0') {
            err_set(cause, "a NUL byte at offset %zu (line %ld)", i, line);
            return -E_BAD_INPUT;
        }
        if ((n = utf8_decode(p + i, len - i, NULL)) == 0) {
            err_set(cause, "not valid UTF-8 at offset %zu (line %ld)", i, line);
            return -E_BAD_INPUT;
        }
        if (n == 1) {
            if (p[i] == '\n')
                line++;
            if (in_string && p[i] == '\\') {
                i += (i + 1 < len && p[i + 1] != '\0' && p[i + 1] < 0x80) ? 2 : 1;
                continue;
            }
            if (p[i] == '"')
                in_string = !in_string;
            else if (!in_string && (p[i] == '{' || p[i] == '[') && ++depth > CONFIG_MAX_DEPTH) {
                err_set(cause, "nested deeper than %d levels (line %ld)", CONFIG_MAX_DEPTH, line);
                return -E_BAD_INPUT;
            } else if (!in_string && (p[i] == '}' || p[i] == ']'))
                depth--;
        }
        i += n;
    }
    return 0;
}

static int
by_key_name(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* A key given twice in one object (cJSON keeps both; which one wins would be an accident). */
static int
check_duplicates(const cJSON *obj, const char *path, char **cause)
{
    const cJSON *item, **v;
    size_t n = 0, i = 0;
    int rc = 0;

    if (!cJSON_IsObject(obj))
        return 0;
    cJSON_ArrayForEach(item, obj)
    {
        n++;
    }
    if (n < 2)
        goto children;
    if ((v = calloc(n, sizeof(*v))) == NULL)
        return -E_NOMEM;
    cJSON_ArrayForEach(item, obj)
    {
        v[i++] = item;
    }
    qsort(v, n, sizeof(*v), by_key_name);
    for (i = 1; i < n && rc == 0; i++) {
        if (strcmp(v[i - 1]->string, v[i]->string) == 0) {
            err_set(cause, "%s.%s: duplicate key", path, v[i]->string);
            rc = -E_BAD_INPUT;
        }
    }
    free(v);
    if (rc != 0)
        return rc;
children:
    cJSON_ArrayForEach(item, obj)
    {
        char sub[256];

        if (!cJSON_IsObject(item))
            continue;
        snprintf(sub, sizeof(sub), "%s.%s", path, item->string);
        if ((rc = check_duplicates(item, sub, cause)) != 0)
            return rc;
    }
    return 0;
}

int
config_parse(const char *text, size_t len, struct config *c, char ***warnings, size_t *nwarnings,
             char **cause)
{
    cJSON *root = NULL;
    const cJSON *item;
    int rc = 0;

    if ((rc = check_text(text, len, cause)) != 0)
        return rc;
    root = cJSON_ParseWithLength(text, len);
    if (root == NULL) {
        const char *at = cJSON_GetErrorPtr();
        long pos = (at != NULL && at >= text && at <= text + len) ? (long)(at - text) : -1;
        long line = 1;

        for (long i = 0; i < pos; i++)
            line += text[i] == '\n';
        err_set(cause, "not valid JSON (near line %ld)", line);
        return -E_BAD_INPUT;
    }
    if (!cJSON_IsObject(root)) {
        err_set(cause, "$: expected an object, got %s", json_type_name(root));
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((rc = check_duplicates(root, "$", cause)) != 0)
        goto out;
    cJSON_ArrayForEach(item, root)
    {
        const struct key_def *k = NULL;

        for (size_t i = 0; i < NKEYS; i++) {
            if (strcmp(keys[i].name, item->string) == 0)
                k = &keys[i];
        }
        if (k == NULL) {
            if ((rc = add_unknown_key(warnings, nwarnings, item->string)) != 0)
                goto out;
            continue;
        }
        if ((rc = set_value(c, k, item, NULL, cause)) != 0)
            goto out;
    }
out:
    cJSON_Delete(root);
    return rc;
}

int
config_load(const char *path, struct config *c, char ***warnings, size_t *nwarnings, char **cause)
{
    unsigned char *data = NULL;
    size_t len = 0;
    char *inner = NULL;
    int rc;

    /* The config names commands the agent runs: only its own or the system's accounts may write
     * it. */
    if ((rc = sys_config_check(path, cause)) != 0 ||
        (rc = fsutil_read_file(path, CONFIG_MAX_FILE, &data, &len, cause)) != 0)
        return rc;
    rc = config_parse((const char *)data, len, c, warnings, nwarnings, &inner);
    if (rc != 0)
        err_set(cause, "%s: %s", path, inner != NULL ? inner : err_message(rc));
    free(inner);
    free(data);
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
cas_differs(const struct config_cas *a, const struct config_cas *b)
{
    if (a->n != b->n)
        return 1;
    for (size_t i = 0; i < a->n; i++) {
        if (str_differs(a->items[i].name, b->items[i].name) ||
            str_differs(a->items[i].directory, b->items[i].directory) ||
            str_differs(a->items[i].trust, b->items[i].trust))
            return 1;
    }
    return 0;
}

char *
config_restart_needed(const struct config *a, const struct config *b)
{
    char buf[512] = "";
    size_t used = 0;

    for (size_t i = 0; i < NKEYS; i++) {
        const struct key_def *k = &keys[i];
        const char *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;
        int differs;

        if (k->reloadable || k->type == KEY_STRLIST)
            continue;
        if (k->type == KEY_STRING || k->type == KEY_ENUM)
            differs =
                str_differs(*(char *const *)(const void *)fa, *(char *const *)(const void *)fb);
        else if (k->type == KEY_LIST)
            differs = list_differs((const struct config_list *)(const void *)fa,
                                   (const struct config_list *)(const void *)fb);
        else if (k->type == KEY_CAS)
            differs = cas_differs((const struct config_cas *)(const void *)fa,
                                  (const struct config_cas *)(const void *)fb);
        else if (k->type == KEY_CLUSTER)
            differs = config_cluster_differs(*(struct config_cluster *const *)(const void *)fa,
                                             *(struct config_cluster *const *)(const void *)fb);
        else
            differs = *(const int *)(const void *)fa != *(const int *)(const void *)fb;
        if (differs) {
            int n = snprintf(buf + used, sizeof(buf) - used, "%s%s", used ? ", " : "", k->name);
            if (n > 0 && (size_t)n < sizeof(buf) - used)
                used += (size_t)n;
        }
    }
    return used > 0 ? strdup(buf) : NULL;
}

/* How many bytes the field of a key of type t takes in struct config. */
static size_t
field_size(enum key_type t)
{
    switch (t) {
    case KEY_STRING:
    case KEY_ENUM:
        return sizeof(char *);
    case KEY_LIST:
    case KEY_STRLIST:
        return sizeof(struct config_list);
    case KEY_CAS:
        return sizeof(struct config_cas);
    case KEY_NOTIFY:
        return sizeof(struct config_notify *);
    case KEY_CLUSTER:
        return sizeof(struct config_cluster *);
    case KEY_CANARIES:
        return sizeof(struct config_canaries);
    default:
        return sizeof(int);
    }
}

void
config_take_reloadable(struct config *running, struct config *loaded)
{
    for (size_t i = 0; i < NKEYS; i++) {
        unsigned char *a = (unsigned char *)running + keys[i].offset;
        unsigned char *b = (unsigned char *)loaded + keys[i].offset;

        if (!keys[i].reloadable)
            continue;
        for (size_t j = 0; j < field_size(keys[i].type); j++) {
            unsigned char t = a[j];

            a[j] = b[j];
            b[j] = t;
        }
    }
}

void
config_free(struct config *c)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].type == KEY_STRING || keys[i].type == KEY_ENUM) {
            char **sp = (char **)(void *)((char *)c + keys[i].offset);

            free(*sp);
            *sp = NULL;
        }
        if (keys[i].type == KEY_LIST)
            list_free((struct config_list *)(void *)((char *)c + keys[i].offset));
        if (keys[i].type == KEY_CAS)
            cas_free((struct config_cas *)(void *)((char *)c + keys[i].offset));
        if (keys[i].type == KEY_STRLIST)
            list_free((struct config_list *)(void *)((char *)c + keys[i].offset));
        if (keys[i].type == KEY_NOTIFY) {
            struct config_notify **np =
                (struct config_notify **)(void *)((char *)c + keys[i].offset);

            config_notify_free(*np);
            *np = NULL;
        }
        if (keys[i].type == KEY_CLUSTER) {
            struct config_cluster **cp =
                (struct config_cluster **)(void *)((char *)c + keys[i].offset);

            config_cluster_free(*cp);
            *cp = NULL;
        }
        if (keys[i].type == KEY_CANARIES)
            config_canaries_free((struct config_canaries *)(void *)((char *)c + keys[i].offset));
    }
}

void
config_free_warnings(char **warnings, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(warnings[i]);
    free(warnings);
}

size_t
config_key_docs(const struct config_key_doc **docs)
{
    static struct config_key_doc table[NKEYS];

    for (size_t i = 0; i < NKEYS; i++) {
        table[i].name = keys[i].name;
        table[i].type = type_name(keys[i].type);
        table[i].def = keys[i].def != NULL ? keys[i].def : "(platform default)";
        table[i].doc = keys[i].doc;
        table[i].reloadable = keys[i].reloadable;
        table[i].sensitive = keys[i].sensitive;
    }
    *docs = table;
    return NKEYS;
}
