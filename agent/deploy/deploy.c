/*
 * Per-certificate settings, deploy targets and the deploy/failure hooks
 * (deploy.h).  The settings live in memory (a sorted array) and in
 * STATE/settings.json, rewritten in the thread pool after each change (one
 * write at a time; a change during a write is written right after it).
 */
#include "deploy.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "config.h"
#include "env.h"
#include "byname.h"
#include "err.h"
#include "events.h"
#include "fsutil.h"
#include "hooks.h"
#include "keys.h"
#include "log.h"
#include "pem.h"
#include "platform.h"
#include "probe.h"
#include "store.h"
#include "strv.h"
#include "sys.h"
#include "temps.h"

#define SETTINGS_MAX (16 * 1024 * 1024)
#define MAX_TARGETS 16
#define PASSWORD_MAX 1024
#define STORE_NAME_MAX 64
#define MAX_SERVED 16
#define SERVED_URL_MAX 1024

struct entry {
    char *name;
    struct cert_settings s;
    unsigned deployed;      /* the version last deployed completely (STATE/deployed.json) */
    int deploying;          /* a deploy of this name runs */
    int again;              /* the name changed again during it */
    struct waiter *waiters; /* done callbacks of the deploys folded into this one */
    char *error;            /* the last deploy's failure (a target or a hook), NULL: none */
    unsigned error_version;
    int64_t error_since; /* when deploys of this name began to fail */
};

struct waiter {
    struct waiter *next;
    void (*done)(void *arg, int rc, const char *cause);
    void *arg;
};

struct save {
    uv_work_t work;
    struct deploy *d;
    char *path;
    char *text;
    int rc;
    char *cause;
    struct waiter *waiters;
};

struct deploy {
    const struct env *env;
    struct store *store;
    struct hooks *hooks;
    char *path;            /* STATE/settings.json */
    struct byname entries; /* struct entry *, sorted by name */
    int saving;
    int dirty;                   /* changed while a save ran */
    struct waiter *save_waiters; /* waiting for the next save */
    char *done_path;             /* STATE/deployed.json */
    int done_saving, done_dirty;
    int done_seed; /* no deployed.json yet: every current version counts as deployed */
    int stopping;
};

/* Settings */

static void
settings_clear(struct cert_settings *s)
{
    for (size_t i = 0; i < s->ntargets; i++) {
        free(s->targets[i].path);
        free(s->targets[i].password_file);
    }
    free(s->targets);
    for (size_t i = 0; i < s->nthumbprints; i++) {
        free(s->thumbprints[i].store);
        free(s->thumbprints[i].thumbprint);
    }
    free(s->thumbprints);
    for (size_t i = 0; i < s->nserved; i++) {
        free(s->served[i].url);
        free(s->served[i].sni);
    }
    free(s->served);
    free(s->deploy_hook);
    free(s->failure_hook);
    strv_free(s->fallback_cas, s->nfallback_cas);
    memset(s, 0, sizeof(*s));
    s->auto_renew = -1;
}

static void
entry_free(struct entry *e)
{
    if (e == NULL)
        return;
    settings_clear(&e->s);
    free(e->error);
    free(e->name);
    free(e);
}

static struct entry *
entry_find(const struct deploy *d, const char *name)
{
    return byname_find(&d->entries, name);
}

/* The entry named name, made if there is none; NULL when out of memory. */
static struct entry *
entry_get(struct deploy *d, const char *name)
{
    int found;
    size_t i = byname_pos(&d->entries, name, &found);
    struct entry *e;

    if (found)
        return d->entries.items[i];
    if ((e = calloc(1, sizeof(*e))) == NULL || (e->name = strdup(name)) == NULL) {
        free(e);
        return NULL;
    }
    e->s.auto_renew = -1;
    if (byname_insert(&d->entries, i, e) != 0) {
        entry_free(e);
        return NULL;
    }
    return e;
}

static int
entry_empty(const struct entry *e)
{
    return e->s.ntargets == 0 && e->s.deploy_hook == NULL && e->s.failure_hook == NULL &&
           e->s.auto_renew < 0 && e->s.renew_before_days == 0 && e->s.nthumbprints == 0 &&
           e->s.nserved == 0 && !e->s.shared && !e->s.fallback_set && e->s.on_expiry == 0 &&
           !e->s.left;
}

/*
 * Keeps the outcome of a deploy of version for the status report (the
 * deploy_failing warning): rc 0 clears the error.  Then tells whoever
 * subscribed (EVENT_DEPLOY_RESULT).
 */
static void
error_record(struct deploy *d, struct entry *e, unsigned version, int rc, const char *cause)
{
    struct event ev = {.type = EVENT_DEPLOY_RESULT,
                       .name = e->name,
                       .version = version,
                       .rc = rc,
                       .cause = rc != 0 && cause == NULL ? err_message(rc) : cause};
    char *copy = NULL;

    if (rc == 0) {
        free(e->error);
        e->error = NULL;
        e->error_since = 0;
        e->error_version = 0;
    } else if ((copy = strdup(ev.cause)) != NULL) {
        if (e->error == NULL)
            e->error_since = (int64_t)time(NULL);
        free(e->error);
        e->error = copy;
        e->error_version = version;
    }
    events_publish(d->env->events, &ev);
}

/* Drops an entry without settings unless a deploy still uses it. */
static void
entry_prune(struct deploy *d, struct entry *e)
{
    int found;
    size_t i;

    if (!entry_empty(e) || e->deploying || e->deployed != 0 || e->error != NULL)
        return;
    i = byname_pos(&d->entries, e->name, &found);
    if (!found)
        return;
    entry_free(byname_remove(&d->entries, i));
}

static const char *
type_name(enum deploy_type t)
{
    return t == DEPLOY_PFX       ? "pfx"
           : t == DEPLOY_STORE   ? "windows_store"
           : t == DEPLOY_BINDING ? "binding"
                                 : "files";
}

/* Store names compare as Windows does, without regard to case. */
static int
same_name(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = *a >= 'a' && *a <= 'z' ? (char)(*a - 32) : *a;
        char y = *b >= 'a' && *b <= 'z' ? (char)(*b - 32) : *b;

        if (x != y)
            return 0;
    }
    return *a == *b;
}

/* A system store's name: "MY", "WebHosting", "Remote Desktop". */
static int
store_name_ok(const char *n)
{
    size_t len = n != NULL ? strlen(n) : 0;

    if (len == 0 || len > STORE_NAME_MAX)
        return 0;
    for (const char *p = n; *p != '\0'; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == ' ' || *p == '_' || *p == '-' || *p == '.'))
            return 0;
    }
    return 1;
}

/* Is t the target named by path (a path, or a store's name)? */
static int
target_is(const struct deploy_target *t, const char *path)
{
    return t->type == DEPLOY_STORE ? same_name(t->path, path) : strcmp(t->path, path) == 0;
}

static const char *
thumbprint_of(const struct cert_settings *s, const char *store)
{
    for (size_t i = 0; i < s->nthumbprints; i++)
        if (same_name(s->thumbprints[i].store, store))
            return s->thumbprints[i].thumbprint;
    return NULL;
}

/* Records that store holds thumbprint now; 1 when that changed the record, -1 out of memory. */
static int
thumbprint_record(struct cert_settings *s, const char *store, const char *thumbprint)
{
    struct store_thumbprint *v;
    char *copy;

    for (size_t i = 0; i < s->nthumbprints; i++) {
        if (!same_name(s->thumbprints[i].store, store))
            continue;
        if (strcmp(s->thumbprints[i].thumbprint, thumbprint) == 0)
            return 0;
        if ((copy = strdup(thumbprint)) == NULL)
            return -1;
        free(s->thumbprints[i].thumbprint);
        s->thumbprints[i].thumbprint = copy;
        return 1;
    }
    if (s->nthumbprints >= MAX_TARGETS + 1)
        return 0;
    if ((v = realloc(s->thumbprints, (s->nthumbprints + 1) * sizeof(*v))) == NULL)
        return -1;
    s->thumbprints = v;
    v[s->nthumbprints].store = strdup(store);
    v[s->nthumbprints].thumbprint = strdup(thumbprint);
    if (v[s->nthumbprints].store == NULL || v[s->nthumbprints].thumbprint == NULL) {
        free(v[s->nthumbprints].store);
        free(v[s->nthumbprints].thumbprint);
        return -1;
    }
    s->nthumbprints++;
    return 1;
}

/* An http.sys binding's key: "IPv4:PORT" or "[IPv6]:PORT". */
static int
ipport_ok(const char *s)
{
    const char *colon = s != NULL ? strrchr(s, ':') : NULL;
    char host[64], *end;
    size_t hl;
    long port;
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;

    if (colon == NULL || (hl = (size_t)(colon - s)) < 1 || hl >= sizeof(host) + 2)
        return 0;
    if (s[0] == '[') {
        if (hl < 3 || s[hl - 1] != ']')
            return 0;
        memcpy(host, s + 1, hl - 2);
        host[hl - 2] = '\0';
    } else {
        if (hl >= sizeof(host))
            return 0;
        memcpy(host, s, hl);
        host[hl] = '\0';
    }
    port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
        return 0;
    return s[0] == '[' ? uv_ip6_addr(host, (int)port, &a6) == 0
                       : uv_ip4_addr(host, (int)port, &a4) == 0;
}

/* Paths must be absolute: the agent's working directory is not the user's. */
static int
path_ok(const char *p)
{
    if (p == NULL || p[0] == '\0')
        return 0;
    if (p[0] == '/')
        return 1;
    /* C:\..., C:/..., \\server\share */
    return (((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z')) && p[1] == ':' &&
            (p[2] == '\\' || p[2] == '/')) ||
           (p[0] == '\\' && p[1] == '\\');
}

static int
target_add(struct cert_settings *s, enum deploy_type type, const char *path, const char *pwfile,
           int keep_previous, int exportable, char **cause)
{
    struct deploy_target *v;

    if (type == DEPLOY_STORE) {
        if (!platform_certstore_available()) {
            err_set(cause,
                    "cannot deploy to the store '%s': the Windows certificate store "
                    "exists only on Windows",
                    path != NULL ? path : "");
            return -E_BAD_INPUT;
        }
        if (!store_name_ok(path)) {
            err_set(cause,
                    "'%s' is not a certificate store name (letters, digits, spaces, "
                    "'_', '-' and '.', at most %d), e.g. MY",
                    path != NULL ? path : "", STORE_NAME_MAX);
            return -E_BAD_INPUT;
        }
    } else if (type == DEPLOY_BINDING) {
        if (!platform_httpsys_available()) {
            err_set(cause, "cannot bind %s: http.sys SSL bindings are Windows only",
                    path != NULL ? path : "");
            return -E_BAD_INPUT;
        }
        if (!ipport_ok(path)) {
            err_set(cause,
                    "--deploy-binding '%s' is not IP:PORT (an address and a port from 1 to "
                    "65535: 0.0.0.0:443, [::]:443)",
                    path != NULL ? path : "");
            return -E_BAD_INPUT;
        }
    } else if (!path_ok(path)) {
        err_set(cause, "deploy %s path '%s' must be absolute", type_name(type),
                path != NULL ? path : "");
        return -E_BAD_INPUT;
    }
    if (pwfile != NULL && !path_ok(pwfile)) {
        err_set(cause, "password file '%s' must be an absolute path", pwfile);
        return -E_BAD_INPUT;
    }
    for (size_t i = 0; i < s->ntargets; i++) {
        if (target_is(&s->targets[i], path)) {
            if (s->targets[i].type != type) {
                err_set(cause, "'%s' is already a %s deploy target", path,
                        type_name(s->targets[i].type));
                return -E_BAD_INPUT;
            }
            free(s->targets[i].password_file);
            s->targets[i].password_file = pwfile != NULL ? strdup(pwfile) : NULL;
            s->targets[i].keep_previous = keep_previous;
            s->targets[i].exportable = exportable;
            return 0;
        }
    }
    if (s->ntargets >= MAX_TARGETS) {
        err_set(cause, "at most %d deploy targets per certificate", MAX_TARGETS);
        return -E_BAD_INPUT;
    }
    if ((v = realloc(s->targets, (s->ntargets + 1) * sizeof(*v))) == NULL)
        return -E_NOMEM;
    s->targets = v;
    memset(&v[s->ntargets], 0, sizeof(*v));
    v[s->ntargets].type = type;
    v[s->ntargets].keep_previous = keep_previous;
    v[s->ntargets].exportable = exportable;
    if ((v[s->ntargets].path = strdup(path)) == NULL)
        return -E_NOMEM;
    if (pwfile != NULL && (v[s->ntargets].password_file = strdup(pwfile)) == NULL) {
        free(v[s->ntargets].path);
        return -E_NOMEM;
    }
    s->ntargets++;
    return 0;
}

static int
target_remove(struct cert_settings *s, const char *path, char **cause)
{
    for (size_t i = 0; i < s->ntargets; i++) {
        if (!target_is(&s->targets[i], path))
            continue;
        free(s->targets[i].path);
        free(s->targets[i].password_file);
        memmove(&s->targets[i], &s->targets[i + 1], (s->ntargets - i - 1) * sizeof(*s->targets));
        s->ntargets--;
        return 0;
    }
    err_set(cause, "'%s' is not a deploy target of this certificate", path);
    return -E_NOT_FOUND;
}

/* A server name to send (SNI): a DNS name, not an address. */
static int
sni_ok(const char *n)
{
    size_t len = strlen(n), label = 0;
    int alpha = 0;

    if (len == 0 || len > 253)
        return 0;
    for (const char *p = n; *p != '\0'; p++) {
        if (*p == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return 0;
        if (++label > 63)
            return 0;
        alpha |= !(*p >= '0' && *p <= '9');
    }
    return alpha;
}

/*
 * Adds (or, for a URL already there, updates the server name of) a served
 * URL.  The URL is checked by the probe's own parser, so what set accepts
 * is what the check can probe.
 */
static int
served_add(struct cert_settings *s, const char *url, const char *sni, char **cause)
{
    struct served_url *v;
    struct probe_url u;
    int rc;

    if (strlen(url) > SERVED_URL_MAX) {
        err_set(cause, "--check-served: the URL is longer than %d characters", SERVED_URL_MAX);
        return -E_BAD_INPUT;
    }
    if ((rc = probe_url_parse(url, &u, cause)) != 0) {
        char *words = *cause;

        *cause = NULL;
        err_set(cause, "--check-served: %s", words != NULL ? words : err_message(rc));
        free(words);
        return rc;
    }
    probe_url_free(&u);
    if (sni != NULL && sni[0] == '\0')
        sni = NULL;
    if (sni != NULL && !sni_ok(sni)) {
        err_set(cause,
                "--served-sni '%.200s' is not a DNS name (letters, digits, '-' and '.'); for "
                "%s leave it out to send none",
                sni, url);
        return -E_BAD_INPUT;
    }
    for (size_t i = 0; i < s->nserved; i++) {
        if (strcmp(s->served[i].url, url) != 0)
            continue;
        free(s->served[i].sni);
        s->served[i].sni = NULL;
        if (sni != NULL && (s->served[i].sni = strdup(sni)) == NULL)
            return -E_NOMEM;
        return 0;
    }
    if (s->nserved >= MAX_SERVED) {
        err_set(cause, "at most %d --check-served URLs per certificate", MAX_SERVED);
        return -E_BAD_INPUT;
    }
    if ((v = realloc(s->served, (s->nserved + 1) * sizeof(*v))) == NULL)
        return -E_NOMEM;
    s->served = v;
    memset(&v[s->nserved], 0, sizeof(*v));
    if ((v[s->nserved].url = strdup(url)) == NULL ||
        (sni != NULL && (v[s->nserved].sni = strdup(sni)) == NULL)) {
        free(v[s->nserved].url);
        return -E_NOMEM;
    }
    s->nserved++;
    return 0;
}

static int
served_remove(struct cert_settings *s, const char *url, char **cause)
{
    for (size_t i = 0; i < s->nserved; i++) {
        if (strcmp(s->served[i].url, url) != 0)
            continue;
        free(s->served[i].url);
        free(s->served[i].sni);
        memmove(&s->served[i], &s->served[i + 1], (s->nserved - i - 1) * sizeof(*s->served));
        s->nserved--;
        return 0;
    }
    err_set(cause, "'%.200s' is not a --check-served URL of this certificate", url);
    return -E_NOT_FOUND;
}

/* "check_served" (the file) and "add_served": [{"url", "sni"}] or ["URL"]. */
static int
served_apply(struct cert_settings *s, const cJSON *list, const char *key, char **cause)
{
    const cJSON *it;
    int rc;

    if (!cJSON_IsArray(list)) {
        err_set(cause, "%s must be an array of {\"url\", \"sni\"}", key);
        return -E_BAD_INPUT;
    }
    cJSON_ArrayForEach(it, list)
    {
        const cJSON *u = cJSON_IsString(it) ? it : cJSON_GetObjectItemCaseSensitive(it, "url");
        const cJSON *n = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "sni") : NULL;

        if (!cJSON_IsString(u) || (n != NULL && !cJSON_IsString(n) && !cJSON_IsNull(n))) {
            err_set(cause, "%s must be an array of {\"url\", \"sni\"}", key);
            return -E_BAD_INPUT;
        }
        if ((rc = served_add(s, u->valuestring, cJSON_IsString(n) ? n->valuestring : NULL,
                             cause)) != 0)
            return rc;
    }
    return 0;
}

static int
set_hook(char **slot, const cJSON *v, const char *key, char **cause)
{
    if (!cJSON_IsString(v)) {
        err_set(cause, "%s must be a string", key);
        return -E_BAD_INPUT;
    }
    free(*slot);
    *slot = NULL;
    if (v->valuestring[0] != '\0' && (*slot = strdup(v->valuestring)) == NULL)
        return -E_NOMEM;
    return 0;
}

/*
 * fallback_cas: null (the config's list), or an array of CA names, each at most
 * once.  Whether the agent knows them is the caller's to check (ops-deploy.c).
 */
static int
set_fallback_cas(struct cert_settings *s, const cJSON *it, char **cause)
{
    const cJSON *c;
    char **list = NULL;
    size_t n = 0;

    if (cJSON_IsNull(it)) {
        strv_free(s->fallback_cas, s->nfallback_cas);
        s->fallback_cas = NULL;
        s->nfallback_cas = 0;
        s->fallback_set = 0;
        return 0;
    }
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) > 8) {
        err_set(cause, "fallback_cas must be an array of at most 8 CA names, or null");
        return -E_BAD_INPUT;
    }
    cJSON_ArrayForEach(c, it)
    {
        if (!cJSON_IsString(c) || c->valuestring[0] == '\0') {
            err_set(cause, "fallback_cas must be an array of CA names");
            strv_free(list, n);
            return -E_BAD_INPUT;
        }
        for (size_t i = 0; i < n; i++) {
            if (strcmp(list[i], c->valuestring) == 0) {
                err_set(cause, "fallback CA '%s' is named twice; name each CA once",
                        c->valuestring);
                strv_free(list, n);
                return -E_BAD_INPUT;
            }
        }
        if (strv_addf(&list, &n, 256, "%s", c->valuestring) != 0) {
            strv_free(list, n);
            return -E_NOMEM;
        }
    }
    strv_free(s->fallback_cas, s->nfallback_cas);
    s->fallback_cas = list;
    s->nfallback_cas = n;
    s->fallback_set = 1;
    return 0;
}

/* Applies a change object (from the wire or from the file) to s. */
static int
settings_apply(struct cert_settings *s, const cJSON *changes, char **cause)
{
    const cJSON *it, *pw = cJSON_GetObjectItemCaseSensitive(changes, "pfx_password_file");
    const cJSON *keep = cJSON_GetObjectItemCaseSensitive(changes, "store_keep_previous");
    const cJSON *exportable = cJSON_GetObjectItemCaseSensitive(changes, "store_exportable");
    const char *pwfile = NULL;
    int rc;

    if ((keep != NULL && !cJSON_IsBool(keep)) ||
        (exportable != NULL && !cJSON_IsBool(exportable))) {
        err_set(cause, "store_keep_previous and store_exportable must be true or false");
        return -E_BAD_INPUT;
    }

    if (pw != NULL && !cJSON_IsNull(pw)) {
        if (!cJSON_IsString(pw)) {
            err_set(cause, "pfx_password_file must be a string");
            return -E_BAD_INPUT;
        }
        pwfile = pw->valuestring;
    }
    cJSON_ArrayForEach(it, changes)
    {
        const char *k = it->string;

        if (strcmp(k, "deploy_hook") == 0) {
            if ((rc = set_hook(&s->deploy_hook, it, k, cause)) != 0)
                return rc;
        } else if (strcmp(k, "failure_hook") == 0) {
            if ((rc = set_hook(&s->failure_hook, it, k, cause)) != 0)
                return rc;
        } else if (strcmp(k, "auto_renew") == 0) {
            if (cJSON_IsNull(it))
                s->auto_renew = -1;
            else if (cJSON_IsBool(it))
                s->auto_renew = cJSON_IsTrue(it);
            else {
                err_set(cause, "auto_renew must be true, false or null");
                return -E_BAD_INPUT;
            }
        } else if (strcmp(k, "shared") == 0) {
            if (!cJSON_IsBool(it)) {
                err_set(cause, "shared must be true or false");
                return -E_BAD_INPUT;
            }
            s->shared = cJSON_IsTrue(it);
            s->left = cJSON_IsFalse(it);
        } else if (strcmp(k, "renew_before_days") == 0) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 365) {
                err_set(cause, "renew_before_days must be a number of days from 0 to 365");
                return -E_BAD_INPUT;
            }
            s->renew_before_days = (int)it->valuedouble;
        } else if (strcmp(k, "fallback_cas") == 0) {
            if ((rc = set_fallback_cas(s, it, cause)) != 0)
                return rc;
        } else if (strcmp(k, "on_expiry") == 0) {
            if (cJSON_IsNull(it))
                s->on_expiry = 0;
            else if (cJSON_IsString(it) && strcmp(it->valuestring, "keep") == 0)
                s->on_expiry = 1;
            else if (cJSON_IsString(it) && strcmp(it->valuestring, "selfsigned") == 0)
                s->on_expiry = 2;
            else {
                err_set(cause, "on_expiry must be \"keep\", \"selfsigned\" or null");
                return -E_BAD_INPUT;
            }
        } else if (strcmp(k, "clear_deploy") == 0) {
            if (cJSON_IsTrue(it)) {
                for (size_t i = 0; i < s->ntargets; i++) {
                    free(s->targets[i].path);
                    free(s->targets[i].password_file);
                }
                s->ntargets = 0;
            }
        } else if (strcmp(k, "add_files") == 0 || strcmp(k, "add_pfx") == 0 ||
                   strcmp(k, "add_store") == 0 || strcmp(k, "add_binding") == 0 ||
                   strcmp(k, "remove") == 0) {
            const cJSON *p;

            if (!cJSON_IsArray(it)) {
                err_set(cause, "%s must be an array of paths", k);
                return -E_BAD_INPUT;
            }
            cJSON_ArrayForEach(p, it)
            {
                if (!cJSON_IsString(p)) {
                    err_set(cause, "%s must be an array of paths", k);
                    return -E_BAD_INPUT;
                }
                if (k[0] == 'r')
                    rc = target_remove(s, p->valuestring, cause);
                else if (strcmp(k, "add_pfx") == 0)
                    rc = target_add(s, DEPLOY_PFX, p->valuestring, pwfile, 0, 0, cause);
                else if (strcmp(k, "add_binding") == 0)
                    rc = target_add(s, DEPLOY_BINDING, p->valuestring, NULL, 0, 0, cause);
                else if (strcmp(k, "add_store") == 0)
                    rc = target_add(s, DEPLOY_STORE, p->valuestring, NULL, cJSON_IsTrue(keep),
                                    cJSON_IsTrue(exportable), cause);
                else
                    rc = target_add(s, DEPLOY_FILES, p->valuestring, NULL, 0, 0, cause);
                if (rc != 0)
                    return rc;
            }
        } else if (strcmp(k, "check_served") == 0 || strcmp(k, "add_served") == 0) {
            if ((rc = served_apply(s, it, k, cause)) != 0)
                return rc;
        } else if (strcmp(k, "remove_served") == 0) {
            const cJSON *p;

            if (!cJSON_IsArray(it)) {
                err_set(cause, "remove_served must be an array of URLs");
                return -E_BAD_INPUT;
            }
            cJSON_ArrayForEach(p, it)
            {
                if (!cJSON_IsString(p)) {
                    err_set(cause, "remove_served must be an array of URLs");
                    return -E_BAD_INPUT;
                }
                if ((rc = served_remove(s, p->valuestring, cause)) != 0)
                    return rc;
            }
        } else if (strcmp(k, "pfx_password_file") == 0 || strcmp(k, "store_keep_previous") == 0 ||
                   strcmp(k, "store_exportable") == 0) {
            continue;
        } else if (strcmp(k, "store_thumbprints") == 0 && cJSON_IsObject(it)) {
            const cJSON *t;

            cJSON_ArrayForEach(t, it)
            {
                if (!cJSON_IsString(t) || !store_name_ok(t->string) ||
                    strlen(t->valuestring) != 40) {
                    err_set(cause, "store_thumbprints maps store names to thumbprints");
                    return -E_BAD_INPUT;
                }
                if (thumbprint_record(s, t->string, t->valuestring) < 0)
                    return -E_NOMEM;
            }
        } else if (strcmp(k, "deploy") == 0 && cJSON_IsArray(it)) {
            /*
             * The file's form: [{"type", "path", "password_file"}], and
             * [{"type": "windows_store", "store", "keep_previous", "exportable"}].
             */
            const cJSON *t;

            cJSON_ArrayForEach(t, it)
            {
                const cJSON *ty = cJSON_GetObjectItemCaseSensitive(t, "type");
                const cJSON *pa = cJSON_GetObjectItemCaseSensitive(t, "path");
                const cJSON *pf = cJSON_GetObjectItemCaseSensitive(t, "password_file");
                int store = cJSON_IsString(ty) && strcmp(ty->valuestring, "windows_store") == 0;

                if (store)
                    pa = cJSON_GetObjectItemCaseSensitive(t, "store");
                if (!cJSON_IsString(ty) || !cJSON_IsString(pa)) {
                    err_set(cause, "a deploy target needs a type and a path (a store)");
                    return -E_BAD_INPUT;
                }
                rc = target_add(s,
                                store                                     ? DEPLOY_STORE
                                : strcmp(ty->valuestring, "pfx") == 0     ? DEPLOY_PFX
                                : strcmp(ty->valuestring, "binding") == 0 ? DEPLOY_BINDING
                                                                          : DEPLOY_FILES,
                                pa->valuestring, cJSON_IsString(pf) ? pf->valuestring : NULL,
                                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "keep_previous")),
                                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "exportable")),
                                cause);
                if (rc != 0)
                    return rc;
            }
        } else {
            err_set(cause, "unknown setting '%s'", k);
            return -E_BAD_INPUT;
        }
    }
    return 0;
}

static cJSON *
settings_to_json(const struct cert_settings *s)
{
    cJSON *o = cJSON_CreateObject(), *a;

    if (o == NULL)
        return NULL;
    if ((a = cJSON_AddArrayToObject(o, "deploy")) != NULL) {
        for (size_t i = 0; i < s->ntargets; i++) {
            cJSON *t = cJSON_CreateObject();

            if (t == NULL)
                continue;
            cJSON_AddStringToObject(t, "type", type_name(s->targets[i].type));
            if (s->targets[i].type == DEPLOY_STORE) {
                cJSON_AddStringToObject(t, "store", s->targets[i].path);
                cJSON_AddBoolToObject(t, "keep_previous", s->targets[i].keep_previous);
                cJSON_AddBoolToObject(t, "exportable", s->targets[i].exportable);
            } else {
                cJSON_AddStringToObject(t, "path", s->targets[i].path);
            }
            if (s->targets[i].password_file != NULL)
                cJSON_AddStringToObject(t, "password_file", s->targets[i].password_file);
            cJSON_AddItemToArray(a, t);
        }
    }
    if (s->nthumbprints > 0 && (a = cJSON_AddObjectToObject(o, "store_thumbprints")) != NULL) {
        for (size_t i = 0; i < s->nthumbprints; i++)
            cJSON_AddStringToObject(a, s->thumbprints[i].store, s->thumbprints[i].thumbprint);
    }
    if (s->nserved > 0 && (a = cJSON_AddArrayToObject(o, "check_served")) != NULL) {
        for (size_t i = 0; i < s->nserved; i++) {
            cJSON *t = cJSON_CreateObject();

            if (t == NULL)
                continue;
            cJSON_AddStringToObject(t, "url", s->served[i].url);
            if (s->served[i].sni != NULL)
                cJSON_AddStringToObject(t, "sni", s->served[i].sni);
            cJSON_AddItemToArray(a, t);
        }
    }
    if (s->deploy_hook != NULL)
        cJSON_AddStringToObject(o, "deploy_hook", s->deploy_hook);
    if (s->failure_hook != NULL)
        cJSON_AddStringToObject(o, "failure_hook", s->failure_hook);
    if (s->auto_renew >= 0)
        cJSON_AddBoolToObject(o, "auto_renew", s->auto_renew);
    if (s->renew_before_days > 0)
        cJSON_AddNumberToObject(o, "renew_before_days", s->renew_before_days);
    if (s->shared)
        cJSON_AddBoolToObject(o, "shared", 1);
    if (s->left)
        cJSON_AddBoolToObject(o, "shared", 0);
    if (s->fallback_set) {
        cJSON *fa = cJSON_AddArrayToObject(o, "fallback_cas");

        for (size_t i = 0; fa != NULL && i < s->nfallback_cas; i++)
            cJSON_AddItemToArray(fa, cJSON_CreateString(s->fallback_cas[i]));
    }
    if (s->on_expiry != 0)
        cJSON_AddStringToObject(o, "on_expiry", s->on_expiry == 2 ? "selfsigned" : "keep");
    return o;
}

const struct cert_settings *
deploy_settings(const struct deploy *d, const char *name)
{
    const struct entry *e = d != NULL ? entry_find(d, name) : NULL;

    return e != NULL ? &e->s : NULL;
}

cJSON *
deploy_settings_json(const struct deploy *d, const char *name)
{
    const struct cert_settings *s = deploy_settings(d, name);
    struct cert_settings none;

    if (s == NULL) {
        memset(&none, 0, sizeof(none));
        none.auto_renew = -1;
        s = &none;
    }
    return settings_to_json(s);
}

/* Saving */

static void save_start(struct deploy *d);

static void
save_run(uv_work_t *work)
{
    struct save *sv = work->data;

    sv->rc = fsutil_write_atomic(sv->path, sv->text, strlen(sv->text), 0600, &sv->cause);
}

static void
save_after(uv_work_t *work, int status)
{
    struct save *sv = work->data;
    struct deploy *d = sv->d;
    struct waiter *w, *next;

    if (status != 0 && sv->rc == 0)
        sv->rc = -E_IO;
    if (sv->rc != 0)
        log_error("%s", sv->cause != NULL ? sv->cause
                                          : "cannot write settings.json"); /* names the path */
    for (w = sv->waiters; w != NULL; w = next) {
        next = w->next;
        if (w->done != NULL)
            w->done(w->arg, sv->rc, sv->cause);
        free(w);
    }
    free(sv->path);
    free(sv->text);
    free(sv->cause);
    free(sv);
    d->saving = 0;
    if (d->dirty)
        save_start(d);
}

static void
save_start(struct deploy *d)
{
    struct save *sv;
    cJSON *root = cJSON_CreateObject();

    d->dirty = 1;
    if (d->saving || root == NULL) {
        cJSON_Delete(root);
        return;
    }
    for (size_t i = 0; i < d->entries.n; i++) {
        const struct entry *e = d->entries.items[i];

        if (!entry_empty(e))
            cJSON_AddItemToObject(root, e->name, settings_to_json(&e->s));
    }
    if ((sv = calloc(1, sizeof(*sv))) == NULL || (sv->path = strdup(d->path)) == NULL ||
        (sv->text = cJSON_Print(root)) == NULL) {
        if (sv != NULL) {
            free(sv->path);
            free(sv);
        }
        cJSON_Delete(root);
        log_error("cannot save the certificate settings: out of memory");
        return;
    }
    cJSON_Delete(root);
    sv->d = d;
    sv->waiters = d->save_waiters;
    d->save_waiters = NULL;
    sv->work.data = sv;
    d->dirty = 0;
    if (uv_queue_work(d->env->loop, &sv->work, save_run, save_after) != 0) {
        sv->rc = -E_IO;
        err_set(&sv->cause, "cannot queue the write of %s", sv->path);
        d->saving = 1;
        save_after(&sv->work, 0);
        return;
    }
    d->saving = 1;
}

/*
 * A binding names the certificate a store holds: refused on a certificate
 * that is in no store (no store target of its own, no windows_store in the
 * config).
 */
static int
binding_needs_store(const struct deploy *d, const struct cert_settings *s, char **cause)
{
    const char *binding = NULL;
    int store = d->env->config->windows_store != NULL;

    for (size_t i = 0; i < s->ntargets; i++) {
        if (s->targets[i].type == DEPLOY_STORE)
            store = 1;
        else if (s->targets[i].type == DEPLOY_BINDING && binding == NULL)
            binding = s->targets[i].path;
    }
    if (binding == NULL || store)
        return 0;
    err_set(cause,
            "--deploy-binding %s needs the certificate in a Windows store first: add "
            "--deploy-store MY (or set windows_store in the config)",
            binding);
    return -E_BAD_INPUT;
}

int
deploy_settings_change(struct deploy *d, const char *name, const cJSON *changes,
                       void (*done)(void *arg, int rc, const char *cause), void *arg, char **cause)
{
    struct entry *e;
    struct cert_settings copy;
    cJSON *snapshot = NULL;
    struct waiter *w;
    int rc;

    if (!cJSON_IsObject(changes)) {
        err_set(cause, "settings must be a map");
        return -E_BAD_INPUT;
    }
    if ((rc = store_name_valid(name, cause)) != 0)
        return rc;
    if ((e = entry_get(d, name)) == NULL)
        return -E_NOMEM;
    /* Apply to a copy so that a refused change leaves the settings as they were. */
    memset(&copy, 0, sizeof(copy));
    copy.auto_renew = -1;
    if ((snapshot = settings_to_json(&e->s)) == NULL) {
        entry_prune(d, e);
        return -E_NOMEM;
    }
    if ((rc = settings_apply(&copy, snapshot, cause)) != 0 ||
        (rc = settings_apply(&copy, changes, cause)) != 0) {
        settings_clear(&copy);
        cJSON_Delete(snapshot);
        entry_prune(d, e);
        return rc;
    }
    cJSON_Delete(snapshot);
    if ((rc = binding_needs_store(d, &copy, cause)) != 0) {
        settings_clear(&copy);
        entry_prune(d, e);
        return rc;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL) {
        settings_clear(&copy);
        entry_prune(d, e);
        return -E_NOMEM;
    }
    settings_clear(&e->s);
    e->s = copy;
    w->done = done;
    w->arg = arg;
    w->next = d->save_waiters;
    d->save_waiters = w;
    entry_prune(d, e);
    save_start(d);
    return 0;
}

static int done_load(struct deploy *d, char **cause);
static void done_record(struct deploy *d, struct entry *e, unsigned version);

/* A new current version (or a rollback, or a removal): its targets and hooks follow. */
static void
on_cert_changed(void *arg, const struct event *ev)
{
    if (ev->name != NULL)
        deploy_changed(arg, ev->name, NULL, NULL);
}

int
deploy_open(const struct env *env, struct store *store, struct hooks *hooks, struct deploy **out,
            char **cause)
{
    struct deploy *d = calloc(1, sizeof(*d));
    unsigned char *data = NULL;
    size_t len = 0;
    cJSON *root = NULL, *it;
    int rc;

    if (d == NULL)
        return -E_NOMEM;
    d->env = env;
    d->store = store;
    d->hooks = hooks;
    byname_init(&d->entries, offsetof(struct entry, name));
    if (events_subscribe(env->events, EVENT_MASK(EVENT_CERT_CHANGED), on_cert_changed, d) != 0) {
        free(d);
        return -E_NOMEM;
    }
    if ((d->path = fsutil_join(env->state_dir, "settings.json")) == NULL ||
        (d->done_path = fsutil_join(env->state_dir, "deployed.json")) == NULL) {
        rc = -E_NOMEM;
        goto fail;
    }
    if ((rc = done_load(d, cause)) != 0)
        goto fail;
    rc = fsutil_read_file(d->path, SETTINGS_MAX, &data, &len, cause);
    if (rc == -E_NOT_FOUND) {
        free(*cause);
        *cause = NULL;
        *out = d;
        return 0;
    }
    if (rc != 0)
        goto fail;
    if ((root = cJSON_ParseWithLength((const char *)data, len)) == NULL || !cJSON_IsObject(root)) {
        err_set(cause, "%s is not a JSON object; fix or remove it", d->path);
        rc = -E_BAD_INPUT;
        goto fail;
    }
    cJSON_ArrayForEach(it, root)
    {
        struct entry *e;
        char *why = NULL;

        if (store_name_valid(it->string, NULL) != 0 || (e = entry_get(d, it->string)) == NULL) {
            log_warn("%s: ignoring the settings of '%s' (not a valid name)", d->path, it->string);
            continue;
        }
        if (settings_apply(&e->s, it, &why) != 0) {
            log_error("%s: the settings of '%s' are not valid (%s); they are ignored until "
                      "fixed",
                      d->path, it->string, why != NULL ? why : "error");
            settings_clear(&e->s);
        }
        free(why);
    }
    cJSON_Delete(root);
    free(data);
    *out = d;
    return 0;
fail:
    cJSON_Delete(root);
    free(data);
    deploy_free(d);
    return rc;
}

void
deploy_stop(struct deploy *d)
{
    if (d == NULL)
        return;
    d->stopping = 1;
}

void
deploy_free(struct deploy *d)
{
    if (d == NULL)
        return;
    events_unsubscribe(d->env->events, on_cert_changed, d);
    for (size_t i = 0; i < d->entries.n; i++)
        entry_free(d->entries.items[i]);
    byname_free(&d->entries);
    free(d->path);
    free(d->done_path);
    free(d);
}

/* Deploying */

struct run {
    uv_work_t work;
    struct deploy *d;
    char *name;
    unsigned version;
    enum cert_source source;
    int64_t not_after;
    char *domains;
    struct cert_settings s; /* a copy: settings may change during the run */
    char *global_hook;
    unsigned timeout;
    char *live;        /* STATE/live/NAME */
    int default_store; /* the last target is the config's windows_store */
    /* results */
    int rc;
    char *cause;
    unsigned written;
    char *thumbprints[MAX_TARGETS + 1]; /* windows_store targets: what each store holds now */
    unsigned previous;                  /* the version deployed before (for the hooks), 0: none */
    unsigned bound_new;                 /* http.sys bindings that did not exist and were made */
    char sha1[41], sha256[65];          /* the leaf's digests, upper-case hex ("": unknown) */
    char previous_sha1[41];
    /* hooks, one after the other */
    const char *hooks[2];
    unsigned nhooks, next_hook;
    int event_failure;
    char *error; /* failure: the renewal's error */
    unsigned failures;
    int64_t next_attempt;
    struct waiter *waiters;
};

static void
run_free(struct run *r)
{
    struct waiter *w, *next;

    for (w = r->waiters; w != NULL; w = next) {
        next = w->next;
        free(w);
    }
    r->waiters = NULL;
    for (size_t i = 0; i < r->s.ntargets && i < MAX_TARGETS + 1; i++)
        free(r->thumbprints[i]);
    settings_clear(&r->s);
    free(r->name);
    free(r->domains);
    free(r->global_hook);
    free(r->live);
    free(r->cause);
    free(r->error);
    free(r);
}

/*
 * Splits the absolute file path into its directory and its name (heap
 * strings); -E_NOMEM, or -E_BAD_INPUT when there is no directory part.
 */
static int
split_path(const char *path, char **dir, char **base)
{
    const char *slash = strrchr(path, '/');

#ifdef _WIN32 /* Windows paths may use either separator; elsewhere '\\' is a name's */
    if (strrchr(path, '\\') > slash)
        slash = strrchr(path, '\\');
#endif
    *dir = *base = NULL;
    if (slash == NULL || slash[1] == '\0')
        return -E_BAD_INPUT;
    if ((*dir = malloc((size_t)(slash - path) + 2)) == NULL ||
        (*base = strdup(slash + 1)) == NULL) {
        free(*dir);
        *dir = NULL;
        return -E_NOMEM;
    }
    memcpy(*dir, path, (size_t)(slash - path) + 1);
    /* "/x" is in "/", "C:\\x" in "C:\\"; elsewhere the separator goes. */
    (*dir)[slash == path || (slash == path + 2 && path[1] == ':') ? (size_t)(slash - path) + 1
                                                                  : (size_t)(slash - path)] = '\0';
    return 0;
}

/*
 * The files target DIR: opened (created when missing) without following a
 * link and checked (fsutil_dir_open), then each file written relative to it.
 */
static int
write_files(const char *path, const char *const *files, unsigned char *const *data,
            const size_t *len, char **cause)
{
    struct fsutil_dir *dir = NULL;
    int rc;

    if ((rc = fsutil_dir_open(path, FSUTIL_DIR_CREATE, 0755, &dir, cause)) != 0)
        return rc;
    for (size_t f = 0; f < 4 && rc == 0; f++) {
        if (data[f] != NULL)
            rc = fsutil_dir_write(dir, files[f], data[f], len[f], f == 3 ? 0600 : 0644, cause);
    }
    /* A deploy cut short may have left a temporary copy (of the key, too). */
    for (size_t f = 0; f < 4 && rc == 0; f++)
        temps_remove_stale_in(dir, files[f]);
    fsutil_dir_free(dir);
    return rc;
}

static int
read_password(const char *file, char **out, char **cause)
{
    unsigned char *data = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (file == NULL)
        return (*out = strdup("")) != NULL ? 0 : -E_NOMEM;
    if ((rc = fsutil_read_file(file, PASSWORD_MAX, &data, &len, cause)) != 0)
        return rc;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        data[--len] = '\0';
    *out = (char *)data;
    return 0;
}

/* A PKCS#12 of the version (key, certificate, chain) for a pfx or store target; key_pem set. */
static int
make_pfx(struct run *r, const unsigned char *cert, size_t cert_len, const unsigned char *chain,
         size_t chain_len, const unsigned char *key_pem, size_t key_len, const char *password,
         unsigned char **pfx, size_t *pfx_len, char **cause)
{
    STACK_OF(X509) *certs = NULL, *more = NULL;
    struct key *key = NULL;
    X509 *leaf = NULL;
    char friendly[96];
    int rc;

    if ((rc = pem_read_certs(cert, cert_len, "stored certificate", &certs, cause)) != 0)
        goto out;
    leaf = sk_X509_shift(certs);
    if (chain_len > 0 &&
        (rc = pem_read_certs(chain, chain_len, "stored chain", &more, cause)) != 0)
        goto out;
    if ((rc = keys_parse(key_pem, key_len, NULL, &key, cause)) != 0)
        goto out;
    snprintf(friendly, sizeof(friendly), "certagent %s", r->name);
    rc = keys_export_pfx(key, leaf, more, password != NULL ? password : "", friendly, pfx, pfx_len,
                         cause);
out:
    keys_free(key);
    X509_free(leaf);
    sk_X509_pop_free(certs, X509_free);
    sk_X509_pop_free(more, X509_free);
    return rc;
}

static int
write_pfx(struct run *r, const struct deploy_target *t, const unsigned char *cert, size_t cert_len,
          const unsigned char *chain, size_t chain_len, const unsigned char *key_pem,
          size_t key_len, char **cause)
{
    struct fsutil_dir *dir = NULL;
    unsigned char *pfx = NULL;
    size_t pfx_len = 0;
    char *password = NULL, *dirpath = NULL, *base = NULL;
    int rc;

    if (key_pem == NULL) {
        err_set(cause, "the current version has no private key to put in a PFX");
        return -E_BAD_INPUT;
    }
    if ((rc = split_path(t->path, &dirpath, &base)) != 0) {
        if (rc == -E_BAD_INPUT)
            err_set(cause, "%s is not a file path", t->path);
        goto out;
    }
    /* Its directory must exist and be safe before the key is exported. */
    if ((rc = fsutil_dir_open(dirpath, 0, 0755, &dir, cause)) != 0)
        goto out;
    if ((rc = read_password(t->password_file, &password, cause)) != 0)
        goto out;
    if ((rc = make_pfx(r, cert, cert_len, chain, chain_len, key_pem, key_len, password, &pfx,
                       &pfx_len, cause)) != 0)
        goto out;
    if ((rc = fsutil_dir_write(dir, base, pfx, pfx_len, 0600, cause)) == 0)
        temps_remove_stale_in(dir, base); /* of a write cut short */
out:
    fsutil_dir_free(dir);
    free(dirpath);
    free(base);
    if (password != NULL)
        keys_free_secret(password, strlen(password));
    keys_free_secret(pfx, pfx_len);
    return rc;
}

/* Into LocalMachine\STORE; *thumbprint gets what the store holds now. */
static int
write_store(struct run *r, const struct deploy_target *t, const unsigned char *cert,
            size_t cert_len, const unsigned char *chain, size_t chain_len,
            const unsigned char *key_pem, size_t key_len, char **thumbprint, char **cause)
{
    struct certstore_put put;
    unsigned char *pfx = NULL;
    size_t pfx_len = 0;
    char friendly[96];
    int rc;

    if (key_pem == NULL) {
        err_set(cause, "the current version has no private key to put in a certificate store");
        return -E_BAD_INPUT;
    }
    if ((rc = make_pfx(r, cert, cert_len, chain, chain_len, key_pem, key_len, NULL, &pfx, &pfx_len,
                       cause)) != 0)
        return rc;
    snprintf(friendly, sizeof(friendly), "certagent %s", r->name);
    memset(&put, 0, sizeof(put));
    put.store = t->path;
    put.friendly_name = friendly;
    put.previous = thumbprint_of(&r->s, t->path);
    put.keep_previous = t->keep_previous;
    put.exportable = t->exportable;
    rc = platform_certstore_deploy(&put, pfx, pfx_len, thumbprint, cause);
    keys_free_secret(pfx, pfx_len);
    return rc;
}

/*
 * The SHA-1 (the thumbprint Windows tools name a certificate by) and the
 * SHA-256 of the first certificate in pem, as upper-case hex without
 * separators; left "" when it cannot be read.
 */
static void
leaf_digests(const unsigned char *pem, size_t len, char sha1[41], char sha256[65])
{
    static const char hex[] = "0123456789ABCDEF";
    STACK_OF(X509) *certs = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    X509 *leaf;

    sha1[0] = '\0';
    if (sha256 != NULL)
        sha256[0] = '\0';
    if (pem == NULL || pem_read_certs(pem, len, "stored certificate", &certs, NULL) != 0)
        return;
    leaf = sk_X509_value(certs, 0);
    if (leaf != NULL && X509_digest(leaf, EVP_sha1(), md, &mdlen) && mdlen == 20) {
        for (unsigned i = 0; i < mdlen; i++) {
            sha1[2 * i] = hex[md[i] >> 4];
            sha1[2 * i + 1] = hex[md[i] & 15];
        }
        sha1[40] = '\0';
    }
    if (sha256 != NULL && leaf != NULL && X509_digest(leaf, EVP_sha256(), md, &mdlen) &&
        mdlen == 32) {
        for (unsigned i = 0; i < mdlen; i++) {
            sha256[2 * i] = hex[md[i] >> 4];
            sha256[2 * i + 1] = hex[md[i] & 15];
        }
        sha256[64] = '\0';
    }
    sk_X509_pop_free(certs, X509_free);
}

/* Pool: points each http.sys binding at the certificate the first store target holds now. */
static void
bind_all(struct run *r)
{
    const char *store = NULL, *thumbprint = NULL;

    for (size_t i = 0; i < r->s.ntargets && thumbprint == NULL; i++) {
        if (r->s.targets[i].type == DEPLOY_STORE && r->thumbprints[i] != NULL) {
            store = r->s.targets[i].path;
            thumbprint = r->thumbprints[i];
        }
    }
    for (size_t i = 0; i < r->s.ntargets; i++) {
        const struct deploy_target *t = &r->s.targets[i];
        char *why = NULL;
        int rc, created = 0;

        if (t->type != DEPLOY_BINDING)
            continue;
        if (thumbprint == NULL) {
            rc = -E_BAD_INPUT;
            err_set(&why, "no store target put the certificate in a Windows store (add "
                          "--deploy-store MY)");
        } else {
            rc = platform_httpsys_bind(t->path, thumbprint, store, &created, &why);
        }
        if (rc == 0) {
            r->written++;
            if (created)
                r->bound_new++;
        } else if (r->rc == 0) {
            r->rc = rc;
            err_set(&r->cause, "deploy to the http.sys binding %s failed: %s", t->path,
                    why != NULL ? why : err_message(rc));
        }
        free(why);
    }
}

/* Pool: writes every target; the first failure is kept, the others still run. */
static void
deploy_run(uv_work_t *work)
{
    struct run *r = work->data;
    struct store *store = r->d->store;
    static const char *const files[] = {"cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"};
    unsigned char *data[4] = {NULL, NULL, NULL, NULL};
    size_t len[4] = {0, 0, 0, 0};
    int rc;

    for (size_t i = 0; i < 4; i++) {
        rc = store_read_file(store, r->name, r->version, files[i], &data[i], &len[i], &r->cause);
        if (rc == -E_NOT_FOUND && i >= 1) {
            free(r->cause);
            r->cause = NULL;
            continue; /* no chain, or no key */
        }
        if (rc != 0) {
            r->rc = rc;
            goto out;
        }
    }
    /* For the hooks: CERTAGENT_THUMBPRINT, _SHA256 and _PREVIOUS_THUMBPRINT. */
    leaf_digests(data[0], len[0], r->sha1, r->sha256);
    if (r->previous != 0) {
        unsigned char *prev = NULL;
        size_t prev_len = 0;
        char *why = NULL;

        if (store_read_file(store, r->name, r->previous, "cert.pem", &prev, &prev_len, &why) == 0)
            leaf_digests(prev, prev_len, r->previous_sha1, NULL);
        free(prev);
        free(why);
    }
    for (size_t i = 0; i < r->s.ntargets; i++) {
        const struct deploy_target *t = &r->s.targets[i];
        char *why = NULL;

        if (t->type == DEPLOY_BINDING)
            continue; /* once every store target is written, below */
        if (t->type == DEPLOY_FILES) {
            rc = write_files(t->path, files, data, len, &why);
        } else if (t->type == DEPLOY_STORE) {
            rc = write_store(r, t, data[0], len[0], data[1], len[1], data[3], len[3],
                             &r->thumbprints[i], &why);
        } else {
            rc = write_pfx(r, t, data[0], len[0], data[1], len[1], data[3], len[3], &why);
        }
        if (rc == 0) {
            r->written++;
        } else if (r->rc == 0) {
            r->rc = rc;
            err_set(&r->cause, "deploy to %s%s failed: %s",
                    t->type == DEPLOY_STORE ? "LocalMachine\\" : "", t->path,
                    why != NULL ? why : err_message(rc));
        }
        free(why);
    }
    bind_all(r);
out:
    for (size_t i = 0; i < 4; i++) {
        if (i == 3 && data[i] != NULL)
            keys_free_secret(data[i], len[i]);
        else
            free(data[i]);
    }
}

static void run_next_hook(struct run *r);

static void deploy_start(struct deploy *d, const char *name, struct waiter *waiters);

static void
waiters_finish(struct waiter *w, int rc, const char *cause)
{
    struct waiter *next;

    for (; w != NULL; w = next) {
        next = w->next;
        if (w->done != NULL)
            w->done(w->arg, rc, cause);
        free(w);
    }
}

static void
run_end(struct run *r)
{
    struct deploy *d = r->d;
    struct entry *e = entry_find(d, r->name);

    waiters_finish(r->waiters, r->rc, r->cause);
    r->waiters = NULL;
    if (!r->event_failure && e != NULL) {
        struct waiter *pending = e->waiters;
        int again = e->again && !d->stopping;

        /* Every target written and every hook run: the next start need not do it again. */
        if (r->rc == 0 && r->next_hook >= r->nhooks)
            done_record(d, e, r->version);
        if (!(r->rc == -E_UNAVAILABLE && d->stopping))
            error_record(d, e, r->version, r->rc, r->cause);
        e->deploying = 0;
        e->again = 0;
        e->waiters = NULL;
        if (again) {
            /* The name changed during this run: deploy its current version now. */
            char *name = r->name;

            r->name = NULL;
            run_free(r);
            deploy_start(d, name, pending);
            free(name);
            return;
        }
        waiters_finish(pending, -E_UNAVAILABLE, "the agent is stopping");
        entry_prune(d, e);
    }
    run_free(r);
}

static void
hook_done(void *arg, int rc, const char *cause)
{
    struct run *r = arg;

    if (rc != 0 && r->rc == 0) {
        r->rc = rc;
        free(r->cause);
        r->cause = cause != NULL ? strdup(cause) : NULL;
    }
    run_next_hook(r);
}

static void env_add(char **env, size_t *n, const char *fmt, ...) ERR_PRINTF(3, 4);

static void
env_add(char **env, size_t *n, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if ((env[*n] = strdup(buf)) != NULL)
        (*n)++;
}

static void
run_next_hook(struct run *r)
{
    struct hooks_run_args a;
    char *env[32], when[32], next[32], what[160], *cause = NULL;
    size_t n = 0;
    int rc;

    if (r->next_hook >= r->nhooks || r->d->stopping) {
        run_end(r);
        return;
    }
    sys_format_time(r->not_after, when, sizeof(when));
    env_add(env, &n, "CERTAGENT_EVENT=%s", r->event_failure ? "failure" : "deploy");
    env_add(env, &n, "CERTAGENT_NAME=%s", r->name);
    env_add(env, &n, "CERTAGENT_VERSION=%u", r->version);
    env_add(env, &n, "CERTAGENT_SOURCE=%s", store_source_name(r->source));
    env_add(env, &n, "CERTAGENT_CERT=%s/cert.pem", r->live);
    env_add(env, &n, "CERTAGENT_CHAIN=%s/chain.pem", r->live);
    env_add(env, &n, "CERTAGENT_FULLCHAIN=%s/fullchain.pem", r->live);
    env_add(env, &n, "CERTAGENT_KEY=%s/privkey.pem", r->live);
    env_add(env, &n, "CERTAGENT_DOMAINS=%s", r->domains != NULL ? r->domains : "");
    env_add(env, &n, "CERTAGENT_NOT_AFTER=%s", when);
    env_add(env, &n, "CERTAGENT_NOT_AFTER_UNIX=%lld", (long long)r->not_after);
    if (r->sha1[0] != '\0')
        env_add(env, &n, "CERTAGENT_THUMBPRINT=%s", r->sha1);
    if (r->sha256[0] != '\0')
        env_add(env, &n, "CERTAGENT_SHA256=%s", r->sha256);
    if (r->previous_sha1[0] != '\0')
        env_add(env, &n, "CERTAGENT_PREVIOUS_THUMBPRINT=%s", r->previous_sha1);
    for (size_t i = 0; i < r->s.ntargets; i++) {
        if (r->s.targets[i].type == DEPLOY_PFX) {
            env_add(env, &n, "CERTAGENT_PFX=%s", r->s.targets[i].path);
            break;
        }
    }
    for (size_t i = 0; i < r->s.ntargets; i++) {
        if (r->s.targets[i].type == DEPLOY_STORE) {
            env_add(env, &n, "CERTAGENT_STORE=%s", r->s.targets[i].path);
            break;
        }
    }
    if (r->event_failure) {
        next[0] = '\0';
        if (r->next_attempt > 0)
            sys_format_time(r->next_attempt, next, sizeof(next));
        env_add(env, &n, "CERTAGENT_ERROR=%s", r->error != NULL ? r->error : "");
        env_add(env, &n, "CERTAGENT_FAILURES=%u", r->failures);
        env_add(env, &n, "CERTAGENT_NEXT_ATTEMPT=%s", next);
    }
    env[n] = NULL;
    snprintf(what, sizeof(what), "%s hook%s for '%s'", r->event_failure ? "failure" : "deploy",
             r->next_hook == 0 && r->hooks[0] != r->global_hook ? "" : " (config)", r->name);
    memset(&a, 0, sizeof(a));
    a.what = what;
    a.command = r->hooks[r->next_hook++];
    a.env = (const char *const *)env;
    a.timeout_s = r->timeout;
    a.done = hook_done;
    a.arg = r;
    /* (hooks_run refuses a hook program others could have replaced: hooks_check) */
    rc = hooks_run(r->d->hooks, &a, &cause);
    for (size_t i = 0; i < n; i++)
        free(env[i]);
    if (rc != 0) {
        log_error("%s", cause != NULL ? cause : what);
        hook_done(r, rc, cause);
    }
    free(cause);
}

/* Loop: records what each Windows store holds now, for the next version to replace. */
static void
record_thumbprints(struct run *r)
{
    struct entry *e = entry_find(r->d, r->name);
    int changed = 0;

    for (size_t i = 0; i < r->s.ntargets; i++) {
        const struct deploy_target *t = &r->s.targets[i];
        const char *before = thumbprint_of(&r->s, t->path);
        int k, replaced;

        if (t->type != DEPLOY_STORE || r->thumbprints[i] == NULL)
            continue;
        replaced = before != NULL && strcmp(before, r->thumbprints[i]) != 0;
        log_info("'%s' version %u is in LocalMachine\\%s%s, thumbprint %s%s%s%s%s", r->name,
                 r->version, t->path, r->default_store ? " (the config's windows_store)" : "",
                 r->thumbprints[i], replaced ? " (" : "",
                 replaced ? (t->keep_previous ? "keeping " : "replacing ") : "",
                 replaced ? before : "", replaced ? ")" : "");
        if (e == NULL || (k = thumbprint_record(&e->s, t->path, r->thumbprints[i])) == 0)
            continue;
        if (k < 0)
            log_error("cannot record the thumbprint of '%s' in LocalMachine\\%s: out of memory",
                      r->name, t->path);
        else
            changed = 1;
    }
    if (changed)
        save_start(r->d);
}

static void
deploy_after(uv_work_t *work, int status)
{
    struct run *r = work->data;

    if (status != 0 && r->rc == 0)
        r->rc = -E_IO;
    record_thumbprints(r);
    if (r->rc != 0)
        log_error("'%s' version %u: %s", r->name, r->version,
                  r->cause != NULL ? r->cause : err_message(r->rc));
    else if (r->written > 0)
        log_info("'%s' version %u deployed to %u target(s)", r->name, r->version, r->written);
    run_next_hook(r);
}

/*
 * Does the config's windows_store apply to a certificate with these
 * settings?  Only where there is a Windows store, and only to certificates
 * without a store target of their own.
 */
static int
default_store_applies(const struct config *config, const struct cert_settings *s)
{
    if (config->windows_store == NULL || !platform_certstore_available())
        return 0;
    for (size_t i = 0; s != NULL && i < s->ntargets; i++)
        if (s->targets[i].type == DEPLOY_STORE)
            return 0;
    return 1;
}

/* A run for the current version of name with its settings; NULL when nothing to do. */
static struct run *
run_new(struct deploy *d, const char *name, int failure)
{
    const struct config *config = d->env->config;
    const struct store_cert *c = store_find(d->store, name);
    const struct store_version *v = c != NULL ? store_current(c) : NULL;
    const struct cert_settings *s = deploy_settings(d, name);
    struct run *r;
    size_t dl = 1;
    char *live;
    cJSON *copy;

    if (v == NULL)
        return NULL;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    r->d = d;
    r->s.auto_renew = -1;
    r->event_failure = failure;
    r->version = v->version;
    r->source = v->source;
    r->not_after = v->not_after;
    {
        /* The version the services had before: the one last deployed, else the one before. */
        const struct entry *prev = entry_find(d, name);

        if (prev != NULL && prev->deployed != 0 && prev->deployed != v->version &&
            store_version_get(c, prev->deployed) != NULL)
            r->previous = prev->deployed;
        for (size_t i = c->nversions; r->previous == 0 && i-- > 0;)
            if (c->versions[i].version < v->version)
                r->previous = c->versions[i].version; /* descending: the first one below */
    }
    r->timeout = (unsigned)config->hook_timeout;
    if ((r->name = strdup(name)) == NULL)
        goto fail;
    if ((live = fsutil_join(d->env->state_dir, "live")) == NULL)
        goto fail;
    r->live = fsutil_join(live, name);
    free(live);
    if (r->live == NULL)
        goto fail;
    for (size_t i = 0; i < v->ndns; i++)
        dl += strlen(v->dns[i]) + 1;
    for (size_t i = 0; i < v->nips; i++)
        dl += strlen(v->ips[i]) + 1;
    if ((r->domains = calloc(1, dl)) == NULL)
        goto fail;
    for (size_t i = 0; i < v->ndns + v->nips; i++) {
        if (r->domains[0] != '\0')
            strcat(r->domains, " ");
        strcat(r->domains, i < v->ndns ? v->dns[i] : v->ips[i - v->ndns]);
    }
    if (s != NULL) {
        if ((copy = settings_to_json(s)) == NULL)
            goto fail;
        settings_apply(&r->s, copy, NULL);
        cJSON_Delete(copy);
    }
    if (!failure && default_store_applies(config, &r->s)) {
        char *why = NULL;

        /* Last, after the certificate's own targets (at most MAX_TARGETS of them). */
        if (r->s.ntargets < MAX_TARGETS &&
            target_add(&r->s, DEPLOY_STORE, config->windows_store, NULL, 0, 0, &why) == 0)
            r->default_store = 1;
        else
            log_warn("'%s' is not deployed to the config's windows_store '%s': %s", name,
                     config->windows_store, why != NULL ? why : "too many targets");
        free(why);
    }
    if (failure) {
        if (r->s.failure_hook != NULL)
            r->hooks[r->nhooks++] = r->s.failure_hook;
        if (config->failure_hook != NULL &&
            (r->global_hook = strdup(config->failure_hook)) != NULL)
            r->hooks[r->nhooks++] = r->global_hook;
    } else {
        if (r->s.deploy_hook != NULL)
            r->hooks[r->nhooks++] = r->s.deploy_hook;
        if (config->deploy_hook != NULL && (r->global_hook = strdup(config->deploy_hook)) != NULL)
            r->hooks[r->nhooks++] = r->global_hook;
    }
    return r;
fail:
    run_free(r);
    return NULL;
}

/* Starts a deploy of name's current version; waiters (owned) learn its outcome. */
static void
deploy_start(struct deploy *d, const char *name, struct waiter *waiters)
{
    struct entry *e;
    struct run *r;

    if (d->stopping) {
        waiters_finish(waiters, -E_UNAVAILABLE, "the agent is stopping");
        return;
    }
    if (store_find(d->store, name) == NULL) {
        /* Removed: its settings go with it. */
        if ((e = entry_find(d, name)) != NULL && !entry_empty(e)) {
            settings_clear(&e->s);
            save_start(d);
            log_info("the settings of '%s' were removed with it", name);
        }
        if (e != NULL) {
            done_record(d, e, 0);
            free(e->error);
            e->error = NULL;
            entry_prune(d, e);
        }
        waiters_finish(waiters, 0, NULL);
        return;
    }
    if ((e = entry_find(d, name)) != NULL && e->deploying) {
        struct waiter **tail = &e->waiters;

        while (*tail != NULL)
            tail = &(*tail)->next;
        *tail = waiters;
        e->again = 1;
        return;
    }
    if ((r = run_new(d, name, 0)) == NULL) {
        waiters_finish(waiters, -E_NOMEM, NULL);
        return;
    }
    if ((e = entry_get(d, name)) == NULL) {
        run_free(r);
        waiters_finish(waiters, -E_NOMEM, NULL);
        return;
    }
    if (r->s.ntargets == 0 && r->nhooks == 0) {
        done_record(d, e, r->version); /* nothing to deploy: done */
        error_record(d, e, r->version, 0, NULL);
        entry_prune(d, e);
        run_free(r);
        waiters_finish(waiters, 0, NULL);
        return;
    }
    r->waiters = waiters;
    e->deploying = 1;
    r->work.data = r;
    if (uv_queue_work(d->env->loop, &r->work, deploy_run, deploy_after) != 0) {
        r->rc = -E_IO;
        err_set(&r->cause, "cannot queue the deploy");
        deploy_after(&r->work, 0);
    }
}

void
deploy_changed(struct deploy *d, const char *name,
               void (*done)(void *arg, int rc, const char *cause), void *arg)
{
    struct waiter *w = NULL;

    if (d == NULL) {
        if (done != NULL)
            done(arg, 0, NULL);
        return;
    }
    if (done != NULL) {
        if ((w = calloc(1, sizeof(*w))) == NULL) {
            done(arg, -E_NOMEM, NULL);
            return;
        }
        w->done = done;
        w->arg = arg;
    }
    deploy_start(d, name, w);
}

void
deploy_failed(struct deploy *d, const char *name, const char *error, unsigned failures,
              int64_t next_attempt)
{
    struct run *r;

    if (d == NULL || d->stopping || (r = run_new(d, name, 1)) == NULL)
        return;
    if (r->nhooks == 0) {
        run_free(r);
        return;
    }
    r->error = error != NULL ? strdup(error) : NULL;
    r->failures = failures;
    r->next_attempt = next_attempt;
    run_next_hook(r);
}

/*
 * What was deployed (STATE/deployed.json: {"NAME": VERSION}).  A version counts
 * as deployed once every target is written and every hook has run.  An agent
 * killed between a new version's commit and that point (or in the middle of
 * writing a target's files) finds at its next start that the current version is
 * not the deployed one, and deploys it again: targets never stay behind the store.
 */

static int
done_load(struct deploy *d, char **cause)
{
    unsigned char *data = NULL;
    size_t len = 0;
    cJSON *root = NULL, *it;
    int rc;

    rc = fsutil_read_file(d->done_path, SETTINGS_MAX, &data, &len, cause);
    if (rc == -E_NOT_FOUND) {
        free(*cause);
        *cause = NULL;
        d->done_seed = 1;
        return 0;
    }
    if (rc != 0)
        return rc;
    if ((root = cJSON_ParseWithLength((const char *)data, len)) == NULL || !cJSON_IsObject(root)) {
        /* Only a record: deploying everything once more is the safe way out. */
        log_warn("%s is not a JSON object; every certificate is deployed again", d->done_path);
        free(data);
        cJSON_Delete(root);
        return 0;
    }
    cJSON_ArrayForEach(it, root)
    {
        struct entry *e;

        if (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > 4294967295.0 ||
            store_name_valid(it->string, NULL) != 0)
            continue;
        if ((e = entry_get(d, it->string)) == NULL) {
            rc = -E_NOMEM;
            break;
        }
        e->deployed = (unsigned)it->valuedouble;
    }
    cJSON_Delete(root);
    free(data);
    return rc;
}

static void done_save_start(struct deploy *d);

static void
done_saved(uv_work_t *work, int status)
{
    struct save *sv = work->data;
    struct deploy *d = sv->d;

    if (status != 0 && sv->rc == 0)
        sv->rc = -E_IO;
    if (sv->rc != 0)
        log_error("%s", sv->cause != NULL ? sv->cause : "cannot write deployed.json");
    free(sv->path);
    free(sv->text);
    free(sv->cause);
    free(sv);
    d->done_saving = 0;
    if (d->done_dirty)
        done_save_start(d);
}

static void
done_save_start(struct deploy *d)
{
    cJSON *root = cJSON_CreateObject();
    struct save *sv = NULL;

    d->done_dirty = 1;
    if (d->done_saving || root == NULL)
        goto out;
    for (size_t i = 0; i < d->entries.n; i++) {
        const struct entry *e = d->entries.items[i];

        if (e->deployed != 0 && cJSON_AddNumberToObject(root, e->name, e->deployed) == NULL)
            goto out;
    }
    if ((sv = calloc(1, sizeof(*sv))) == NULL || (sv->path = strdup(d->done_path)) == NULL ||
        (sv->text = cJSON_PrintUnformatted(root)) == NULL)
        goto out;
    sv->d = d;
    sv->work.data = sv;
    d->done_dirty = 0;
    d->done_saving = 1;
    if (uv_queue_work(d->env->loop, &sv->work, save_run, done_saved) != 0) {
        sv->rc = -E_IO;
        err_set(&sv->cause, "cannot queue the write of %s", sv->path);
        done_saved(&sv->work, 0);
    }
    sv = NULL;
out:
    if (sv != NULL) {
        free(sv->path);
        free(sv->text);
        free(sv);
        log_error("cannot save %s: out of memory", d->done_path);
    }
    cJSON_Delete(root);
}

static void
done_record(struct deploy *d, struct entry *e, unsigned version)
{
    if (e->deployed == version)
        return;
    e->deployed = version;
    done_save_start(d);
}

void
deploy_resume(struct deploy *d)
{
    struct store *store = d->store;
    size_t again = 0;

    for (size_t i = 0; i < store_count(store); i++) {
        const struct store_cert *c = store_at(store, i);
        const struct store_version *v = c != NULL ? store_current(c) : NULL;
        struct entry *e;

        if (v == NULL)
            continue;
        e = entry_find(d, c->name);
        if (e != NULL && e->deployed == v->version)
            continue;
        if (d->done_seed || ((e == NULL || (e->s.ntargets == 0 && e->s.deploy_hook == NULL)) &&
                             d->env->config->deploy_hook == NULL &&
                             !default_store_applies(d->env->config, e != NULL ? &e->s : NULL))) {
            /* The first start with this record (a new store, an upgrade), or nothing to do. */
            if ((e = entry_get(d, c->name)) != NULL)
                done_record(d, e, v->version);
            continue;
        }
        log_info("'%s' version %u was not completely deployed when the agent stopped; "
                 "deploying it now",
                 c->name, v->version);
        deploy_start(d, c->name, NULL);
        again++;
    }
    /* Records of names no longer in the store. */
    for (size_t i = 0; i < d->entries.n;) {
        struct entry *e = d->entries.items[i];

        if (e->deployed != 0 && store_find(store, e->name) == NULL) {
            done_record(d, e, 0);
            entry_prune(d, e);
            if (i < d->entries.n && d->entries.items[i] == e)
                i++;
            continue;
        }
        i++;
    }
    d->done_seed = 0;
    if (again > 0)
        log_info("%zu certificate(s) deployed again after an interrupted deploy", again);
}

const char *
deploy_error(const struct deploy *d, const char *name, unsigned *version, int64_t *since)
{
    const struct entry *e = d != NULL ? entry_find(d, name) : NULL;

    if (e == NULL || e->error == NULL)
        return NULL;
    if (version != NULL)
        *version = e->error_version;
    if (since != NULL)
        *since = e->error_since;
    return e->error;
}
