/*
 * The certificate store (see store.h for the layout and the commit protocol).
 */
#include "store.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "byname.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "store-migrate.h"
#include "strv.h"
#include "version.h"

#define LINEAGE_MAX (4 * 1024 * 1024)
#define FILE_MAX (1024 * 1024)

struct store {
    char *dir;           /* the state directory */
    char *certs;         /* dir/certs */
    char *live;          /* dir/live */
    struct byname index; /* struct store_cert *, sorted by name */
};

struct store_change {
    enum store_change_kind kind;
    char *name;
    char *name_dir;            /* certs/NAME */
    char *certs_dir;           /* certs */
    char *live_dir;            /* live */
    char *live_link;           /* live/NAME */
    struct store_cert lineage; /* private copy, updated by the pool thread */
    unsigned made_current;
    unsigned previous;
};

static const char *const source_names[] = {"import", "selfsigned", "acme", "fleet"};

const char *
store_source_name(enum cert_source source)
{
    if ((unsigned)source >= sizeof(source_names) / sizeof(source_names[0]))
        return "unknown";
    return source_names[source];
}

/* The source named name: 0, or -1 for anything else. */
static int
store_source_parse(const char *name, enum cert_source *out)
{
    for (size_t i = 0; i < sizeof(source_names) / sizeof(source_names[0]); i++) {
        if (strcmp(name, source_names[i]) == 0) {
            *out = (enum cert_source)i;
            return 0;
        }
    }
    return -1;
}

int
store_name_valid(const char *name, char **cause)
{
    size_t n = name != NULL ? strlen(name) : 0;

    if (n == 0 || n > 64) {
        err_set(cause, "a certificate name has 1 to 64 characters");
        return -E_BAD_INPUT;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

        if ((unsigned char)c < 0x20 || c == 0x7f) {
            /* Not echoed: it would reach the user's terminal. */
            err_set(cause,
                    "invalid certificate name: it holds a control character (0x%02x at "
                    "position %zu): use letters, digits, '.', '_' and '-'",
                    (unsigned)(unsigned char)c, i + 1);
            return -E_BAD_INPUT;
        }
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
            err_set(cause,
                    "invalid certificate name '%.64s': use letters, digits, '.', '_' and "
                    "'-', starting with a letter or digit",
                    name);
            return -E_BAD_INPUT;
        }
    }
    return 0;
}

/* Summaries. */

static char *
dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

void
store_version_clear(struct store_version *v)
{
    free(v->serial);
    free(v->fingerprint);
    free(v->subject);
    free(v->common_name);
    free(v->issuer);
    free(v->key_desc);
    free(v->revoked_reason);
    strv_free(v->dns, v->ndns);
    strv_free(v->ips, v->nips);
    memset(v, 0, sizeof(*v));
}

int
store_version_copy(struct store_version *dst, const struct store_version *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->version = src->version;
    dst->source = src->source;
    dst->created = src->created;
    dst->not_before = src->not_before;
    dst->not_after = src->not_after;
    dst->has_key = src->has_key;
    dst->chain_len = src->chain_len;
    dst->revoked = src->revoked;
    if (src->revoked_reason != NULL && (dst->revoked_reason = strdup(src->revoked_reason)) == NULL)
        return -E_NOMEM;
    dst->serial = dup_or_empty(src->serial);
    dst->fingerprint = dup_or_empty(src->fingerprint);
    dst->subject = dup_or_empty(src->subject);
    dst->common_name = dup_or_empty(src->common_name);
    dst->issuer = dup_or_empty(src->issuer);
    dst->key_desc = dup_or_empty(src->key_desc);
    if (dst->serial == NULL || dst->fingerprint == NULL || dst->subject == NULL ||
        dst->common_name == NULL || dst->issuer == NULL || dst->key_desc == NULL ||
        strv_dup(&dst->dns, &dst->ndns, (const char *const *)src->dns, src->ndns) != 0 ||
        strv_dup(&dst->ips, &dst->nips, (const char *const *)src->ips, src->nips) != 0) {
        store_version_clear(dst);
        return -E_NOMEM;
    }
    return 0;
}

static void
lineage_clear(struct store_cert *c)
{
    for (size_t i = 0; i < c->nversions; i++)
        store_version_clear(&c->versions[i]);
    free(c->versions);
    free(c->name);
    memset(c, 0, sizeof(*c));
}

static int
lineage_copy(struct store_cert *dst, const struct store_cert *src)
{
    memset(dst, 0, sizeof(*dst));
    if ((dst->name = strdup(src->name)) == NULL)
        return -E_NOMEM;
    dst->current = src->current;
    if (src->nversions > 0 &&
        (dst->versions = calloc(src->nversions, sizeof(*dst->versions))) == NULL) {
        lineage_clear(dst);
        return -E_NOMEM;
    }
    for (size_t i = 0; i < src->nversions; i++) {
        if (store_version_copy(&dst->versions[i], &src->versions[i]) != 0) {
            lineage_clear(dst);
            return -E_NOMEM;
        }
        dst->nversions++;
    }
    return 0;
}

const struct store_version *
store_version_get(const struct store_cert *cert, unsigned v)
{
    for (size_t i = 0; cert != NULL && i < cert->nversions; i++) {
        if (cert->versions[i].version == v)
            return &cert->versions[i];
    }
    return NULL;
}

const struct store_version *
store_current(const struct store_cert *cert)
{
    return cert != NULL ? store_version_get(cert, cert->current) : NULL;
}

/* JSON.  Every cJSON call is checked: a summary with a field missing is never written. */

static cJSON *
strs_json(char *const *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();

    for (size_t i = 0; a != NULL && i < n; i++) {
        cJSON *s = cJSON_CreateString(v[i]);

        if (s == NULL || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            cJSON_Delete(a);
            a = NULL;
        }
    }
    return a;
}

/* Adds item to o under key; consumes item, also on failure.  0 or -1. */
static int
add_item(cJSON *o, const char *key, cJSON *item)
{
    if (item == NULL)
        return -1;
    if (!cJSON_AddItemToObject(o, key, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

/* The summary of v as a JSON object (lineage.json entry, meta.json); NULL on OOM. */
static cJSON *
version_json(const struct store_version *v)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL)
        return NULL;
    if (cJSON_AddNumberToObject(o, "version", v->version) == NULL ||
        cJSON_AddStringToObject(o, "source", store_source_name(v->source)) == NULL ||
        cJSON_AddNumberToObject(o, "created", (double)v->created) == NULL ||
        cJSON_AddNumberToObject(o, "not_before", (double)v->not_before) == NULL ||
        cJSON_AddNumberToObject(o, "not_after", (double)v->not_after) == NULL ||
        cJSON_AddStringToObject(o, "serial", v->serial ? v->serial : "") == NULL ||
        cJSON_AddStringToObject(o, "fingerprint", v->fingerprint ? v->fingerprint : "") == NULL ||
        cJSON_AddStringToObject(o, "subject", v->subject ? v->subject : "") == NULL ||
        cJSON_AddStringToObject(o, "common_name", v->common_name ? v->common_name : "") == NULL ||
        cJSON_AddStringToObject(o, "issuer", v->issuer ? v->issuer : "") == NULL ||
        cJSON_AddStringToObject(o, "key", v->key_desc ? v->key_desc : "") == NULL ||
        add_item(o, "dns", strs_json(v->dns, v->ndns)) != 0 ||
        add_item(o, "ips", strs_json(v->ips, v->nips)) != 0 ||
        cJSON_AddBoolToObject(o, "has_key", v->has_key) == NULL ||
        cJSON_AddNumberToObject(o, "chain_len", v->chain_len) == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    /* Only a revoked version carries these (a new version's meta.json never does). */
    if (v->revoked != 0 &&
        (cJSON_AddNumberToObject(o, "revoked", (double)v->revoked) == NULL ||
         cJSON_AddStringToObject(o, "revoked_reason",
                                 v->revoked_reason != NULL ? v->revoked_reason : "unspecified") ==
             NULL)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* lineage.json text of c (heap, cJSON_free), or NULL on OOM. */
static char *
lineage_text(const struct store_cert *c)
{
    cJSON *o = cJSON_CreateObject(), *arr = NULL;
    char *text = NULL;

    if (o == NULL)
        return NULL;
    if (cJSON_AddNumberToObject(o, "schema", STORE_SCHEMA) == NULL ||
        cJSON_AddStringToObject(o, "name", c->name) == NULL ||
        cJSON_AddNumberToObject(o, "current", c->current) == NULL ||
        (arr = cJSON_AddArrayToObject(o, "versions")) == NULL)
        goto out;
    for (size_t i = 0; i < c->nversions; i++) {
        cJSON *v = version_json(&c->versions[i]);

        if (v == NULL || !cJSON_AddItemToArray(arr, v)) {
            cJSON_Delete(v);
            goto out;
        }
    }
    text = cJSON_Print(o);
out:
    cJSON_Delete(o);
    return text;
}

static const char *
jstring(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int
jnumber(const cJSON *o, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!cJSON_IsNumber(v))
        return -1;
    *out = v->valuedouble;
    return 0;
}

static int
jstrs(const cJSON *o, const char *key, char ***out, size_t *n)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, key), *it;
    size_t count = 0;

    *out = NULL;
    *n = 0;
    if (arr == NULL)
        return 0;
    if (!cJSON_IsArray(arr))
        return -1;
    cJSON_ArrayForEach(it, arr) count++;
    if (count == 0)
        return 0;
    if ((*out = calloc(count, sizeof(**out))) == NULL)
        return -1;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it) || ((*out)[*n] = strdup(it->valuestring)) == NULL)
            return -1;
        (*n)++;
    }
    return 0;
}

/* A whole number in [lo, hi] under key; 0 or -1. */
static int
jinteger(const cJSON *o, const char *key, double lo, double hi, double *out)
{
    double num;

    if (jnumber(o, key, &num) != 0 || !(num >= lo && num <= hi) || num != (double)(int64_t)num)
        return -1;
    *out = num;
    return 0;
}

/* One version entry of lineage.json; -1 when damaged (v is then partly filled). */
static int
version_from_json(const cJSON *o, struct store_version *v)
{
    const double tmax = 253402300799.0; /* 9999-12-31T23:59:59Z */
    double num;
    const char *source;

    memset(v, 0, sizeof(*v));
    if (!cJSON_IsObject(o) || jinteger(o, "version", 1, 1e9, &num) != 0)
        return -1;
    v->version = (unsigned)num;
    if ((source = jstring(o, "source")) == NULL || store_source_parse(source, &v->source) != 0)
        return -1;
    if (jinteger(o, "created", -tmax, tmax, &num) == 0)
        v->created = (int64_t)num;
    if (jinteger(o, "not_before", -tmax, tmax, &num) == 0)
        v->not_before = (int64_t)num;
    if (jinteger(o, "not_after", -tmax, tmax, &num) == 0)
        v->not_after = (int64_t)num;
    if (jinteger(o, "chain_len", 0, 1e6, &num) == 0)
        v->chain_len = (unsigned)num;
    v->has_key = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "has_key"));
    if (jinteger(o, "revoked", 1, tmax, &num) == 0) {
        v->revoked = (int64_t)num;
        if ((v->revoked_reason = dup_or_empty(jstring(o, "revoked_reason"))) == NULL)
            return -1;
    }
    v->serial = dup_or_empty(jstring(o, "serial"));
    v->fingerprint = dup_or_empty(jstring(o, "fingerprint"));
    v->subject = dup_or_empty(jstring(o, "subject"));
    v->common_name = dup_or_empty(jstring(o, "common_name"));
    v->issuer = dup_or_empty(jstring(o, "issuer"));
    v->key_desc = dup_or_empty(jstring(o, "key"));
    if (v->serial == NULL || v->fingerprint == NULL || v->subject == NULL ||
        v->common_name == NULL || v->issuer == NULL || v->key_desc == NULL ||
        jstrs(o, "dns", &v->dns, &v->ndns) != 0 || jstrs(o, "ips", &v->ips, &v->nips) != 0)
        return -1;
    return 0;
}

static int
cmp_version(const void *a, const void *b)
{
    const struct store_version *x = a, *y = b;

    return x->version < y->version ? -1 : x->version > y->version;
}

/*
 * Parses lineage.json of name into c.  -E_BAD_INPUT with a cause when it is
 * damaged, -E_NOMEM.  The current version need not be listed: the caller
 * checks it against the version directories.
 */
static int
lineage_parse(const char *text, size_t len, const char *name, struct store_cert *c, char **cause)
{
    cJSON *root = cJSON_ParseWithLength(text, len), *arr, *it;
    double num = 0;
    int rc = -E_BAD_INPUT;
    size_t count = 0;

    memset(c, 0, sizeof(*c));
    if (!cJSON_IsObject(root)) {
        err_set(cause, "lineage.json is not a JSON object");
        goto out;
    }
    if (jinteger(root, "schema", 1, 1e9, &num) != 0) {
        err_set(cause, "lineage.json has no valid schema number");
        goto out;
    }
    if (num > STORE_SCHEMA) {
        err_set(cause, "lineage.json has schema %.0f; this agent reads schema %d", num,
                STORE_SCHEMA);
        goto out;
    }
    if (jstring(root, "name") == NULL || strcmp(jstring(root, "name"), name) != 0) {
        err_set(cause, "lineage.json names another certificate");
        goto out;
    }
    if (jinteger(root, "current", 1, 1e9, &num) != 0) {
        err_set(cause, "lineage.json has no valid current version");
        goto out;
    }
    c->current = (unsigned)num;
    arr = cJSON_GetObjectItemCaseSensitive(root, "versions");
    if (!cJSON_IsArray(arr) || (count = (size_t)cJSON_GetArraySize(arr)) == 0) {
        err_set(cause, "lineage.json lists no version");
        goto out;
    }
    if ((c->name = strdup(name)) == NULL ||
        (c->versions = calloc(count, sizeof(*c->versions))) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    cJSON_ArrayForEach(it, arr)
    {
        if (version_from_json(it, &c->versions[c->nversions]) != 0) {
            store_version_clear(&c->versions[c->nversions]);
            err_set(cause, "lineage.json: entry %zu of \"versions\" is damaged", c->nversions + 1);
            goto out;
        }
        c->nversions++;
    }
    if (c->nversions > 1)
        qsort(c->versions, c->nversions, sizeof(*c->versions), cmp_version);
    for (size_t i = 1; i < c->nversions; i++) {
        if (c->versions[i].version == c->versions[i - 1].version) {
            err_set(cause, "lineage.json lists version %u twice", c->versions[i].version);
            goto out;
        }
    }
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc != 0)
        lineage_clear(c);
    return rc;
}

/* Paths. */

static char *
path3(const char *a, const char *b, const char *c)
{
    char *ab = fsutil_join(a, b), *abc;

    if (ab == NULL)
        return NULL;
    abc = c != NULL ? fsutil_join(ab, c) : NULL;
    if (c == NULL)
        return ab;
    free(ab);
    return abc;
}

static char *
version_dir(const char *name_dir, unsigned v)
{
    char d[32];

    snprintf(d, sizeof(d), "v%u", v);
    return fsutil_join(name_dir, d);
}

static char *
live_target(const char *name, unsigned v)
{
    char *t = NULL;

    err_set(&t, "../certs/%s/v%u", name, v);
    return t;
}

/* The index. */

/* Removes the entry at pos from the index and frees it. */
static void
remove_at(struct store *s, size_t pos)
{
    struct store_cert *c = byname_remove(&s->index, pos);

    lineage_clear(c);
    free(c);
}

size_t
store_count(const struct store *store)
{
    return store->index.n;
}

const struct store_cert *
store_at(const struct store *store, size_t i)
{
    return i < store->index.n ? store->index.items[i] : NULL;
}

const struct store_cert *
store_find(const struct store *store, const char *name)
{
    const struct store_cert *c = byname_find(&store->index, name);

    if (c == NULL || c->current == 0)
        return NULL;
    return c;
}

const char *
store_state_dir(const struct store *store)
{
    return store->dir;
}

/* Opening and repair. */

/*
 * The number of a version directory's name "vN" (N from 1 to 999999999,
 * without leading zeros), or 0 when the name is anything else.
 */
static unsigned
version_of_dirname(const char *s)
{
    unsigned long v = 0;

    if (s[0] != 'v' || s[1] < '1' || s[1] > '9')
        return 0;
    for (size_t i = 1; s[i] != '\0'; i++) {
        if (i > 9 || s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    return (unsigned)v;
}

/*
 * Moves path, which an interrupted change left and which may hold a private
 * key, to orphans/LABEL-TIME-PID: a repair never deletes key material (see
 * README).  Logged with the certificate's name; a failure is logged too and
 * leaves path where it is.
 */
static void
set_aside(struct store *s, const char *name, const char *path, const char *label, const char *why)
{
    char *orphans = fsutil_join(s->dir, "orphans"), *dest = NULL, *cause = NULL;
    char stamp[160];

    snprintf(stamp, sizeof(stamp), "%s-%lld-%ld", label, (long long)time(NULL), (long)getpid());
    if (orphans == NULL || (dest = fsutil_join(orphans, stamp)) == NULL ||
        fsutil_mkdir_p(orphans, 0700, &cause) != 0 || fsutil_rename(path, dest, &cause) != 0)
        log_error("store: '%s': %s (%s), but it could not be moved to orphans/: %s", name, path,
                  why, cause != NULL ? cause : "out of memory");
    else
        log_warn("store: '%s': moved %s (%s) to %s; it may hold a key, so look at it and "
                 "remove it by hand",
                 name, path, why, dest);
    free(cause);
    free(orphans);
    free(dest);
}

/*
 * Removes a temp file or directory that an interrupted change of name left
 * (name NULL: a removal cut short after its commit point); logged.
 */
static void
remove_leftover(const char *name, const char *path)
{
    char *cause = NULL;

    if (fsutil_remove_tree(path, &cause) != 0)
        log_error("store: %s%s%scannot remove %s, left by an interrupted change: %s",
                  name != NULL ? "'" : "", name != NULL ? name : "", name != NULL ? "': " : "",
                  path, cause != NULL ? cause : "out of memory");
    else if (name != NULL)
        log_info("store: '%s': removed %s, left by an interrupted change", name, path);
    else
        log_info("store: finished an interrupted removal: deleted %s", path);
    free(cause);
}

/* Is name one of the temp names of a change (a version or lineage.json being written)? */
static int
is_temp_name(const char *name)
{
    return strncmp(name, ".tmp-", 5) == 0 || strncmp(name, "lineage.json.tmp-", 17) == 0;
}

/* Does directory dir hold nothing but temp leftovers (or nothing)? */
static int
holds_only_temps(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int only = 1;

    if (d == NULL)
        return 0;
    while (only && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            only = is_temp_name(e->d_name);
    }
    closedir(d);
    return only;
}

/* Removes the temp leftovers directly in dir (versions and lineage.json being written). */
static void
remove_temps_in(const char *name, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char *p;

        if (!is_temp_name(e->d_name) || (p = fsutil_join(dir, e->d_name)) == NULL)
            continue;
        remove_leftover(name, p);
        free(p);
    }
    closedir(d);
}

/*
 * certs/NAME without lineage.json: its first version was being created when
 * the agent stopped, so the name was never committed.  Only temp leftovers:
 * removed.  Anything else, such as a complete version directory (the crash
 * hit between its rename and the lineage): set aside without its temp
 * leftovers, since it may hold the only copy of a key.
 */
static void
repair_uncommitted_name(struct store *s, const char *name, const char *dir)
{
    if (holds_only_temps(dir)) {
        remove_leftover(name, dir);
    } else {
        remove_temps_in(name, dir);
        set_aside(s, name, dir, name, "a first version that was never committed");
    }
}

/*
 * Removes temp leftovers in certs/NAME and sets aside version directories
 * that lineage c does not list.  -E_NOMEM only; other failures are logged.
 */
static int
repair_versions(struct store *s, const struct store_cert *c, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;

    if (d == NULL) {
        log_error("store: '%s': cannot look for leftovers in %s: %s", c->name, dir,
                  strerror(errno));
        return 0;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        unsigned v = version_of_dirname(e->d_name);
        char *p;

        if (!is_temp_name(e->d_name) && (v == 0 || store_version_get(c, v) != NULL))
            continue;
        if ((p = fsutil_join(dir, e->d_name)) == NULL) {
            rc = -E_NOMEM;
            break;
        }
        if (v == 0) {
            remove_leftover(c->name, p);
        } else {
            char label[96];

            snprintf(label, sizeof(label), "%s-v%u", c->name, v);
            set_aside(s, c->name, p, label, "a version that its lineage does not list");
        }
        free(p);
    }
    closedir(d);
    return rc;
}

/* Makes live/NAME show the current version of c, when it does not; logged. */
static int
repair_live(struct store *s, const struct store_cert *c)
{
    char *link = fsutil_join(s->live, c->name), *want = live_target(c->name, c->current);
    char *target = NULL, *cause = NULL;
    int rc = 0, found;

    if (link == NULL || want == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    found = fsutil_read_published(link, &target, NULL);
    if (found == 0 && strcmp(target, want) == 0)
        goto out;
    if (fsutil_publish_dir(want, link, &cause) != 0)
        log_error("store: '%s': live/%s should show version %u but cannot be updated: %s", c->name,
                  c->name, c->current, cause != NULL ? cause : "out of memory");
    else
        log_info("store: '%s': live/%s %s; it now shows version %u", c->name, c->name,
                 found == 0              ? "showed another version"
                 : found == -E_NOT_FOUND ? "was missing"
                                         : "was not a link (an older layout)",
                 c->current);
out:
    free(link);
    free(want);
    free(target);
    free(cause);
    return rc;
}

/*
 * Loads and repairs certs/NAME.  0 with *out the entry, or with *out NULL when
 * the name is skipped (logged; its files are left alone); -E_NOMEM.
 */
static int
load_one(struct store *s, const char *name, struct store_cert **out)
{
    char *dir = fsutil_join(s->certs, name), *lin = NULL, *cause = NULL, *vd = NULL;
    unsigned char *text = NULL;
    size_t len = 0;
    struct store_cert *c = NULL;
    int rc;

    *out = NULL;
    if (dir == NULL || (lin = fsutil_join(dir, "lineage.json")) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    rc = fsutil_read_file(lin, LINEAGE_MAX, &text, &len, &cause);
    if (rc == -E_NOT_FOUND) {
        repair_uncommitted_name(s, name, dir);
        rc = 0;
        goto out;
    }
    if (rc == 0 && (c = calloc(1, sizeof(*c))) == NULL)
        rc = -E_NOMEM;
    if (rc == 0)
        rc = lineage_parse((const char *)text, len, name, c, &cause);
    if (rc == -E_NOMEM)
        goto out;
    if (rc != 0) {
        log_error("store: skipping '%s' (its files are left alone): %s", name,
                  cause != NULL ? cause : "cannot read lineage.json");
        rc = 0;
        goto out;
    }
    if ((rc = repair_versions(s, c, dir)) != 0)
        goto out;
    /* The current version must exist; else fall back to the newest one that does. */
    if ((vd = version_dir(dir, c->current)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if (store_version_get(c, c->current) == NULL || !fsutil_is_dir(vd)) {
        unsigned best = 0;

        for (size_t i = 0; i < c->nversions; i++) {
            char *p = version_dir(dir, c->versions[i].version);

            if (p == NULL) {
                rc = -E_NOMEM;
                goto out;
            }
            if (fsutil_is_dir(p))
                best = c->versions[i].version;
            free(p);
        }
        if (best == 0) {
            log_error("store: skipping '%s': its current version %u is missing and no other "
                      "version is present (its files are left alone)",
                      name, c->current);
            goto out;
        }
        log_error("store: '%s': current version %u is missing; using version %u, the newest "
                  "one present",
                  name, c->current, best);
        c->current = best;
    }
    if ((rc = repair_live(s, c)) != 0)
        goto out;
    *out = c;
    c = NULL;
out:
    if (c != NULL) {
        lineage_clear(c);
        free(c);
    }
    free(dir);
    free(lin);
    free(cause);
    free(text);
    free(vd);
    return rc;
}

/*
 * Reads state.json: refuses a store newer than this agent, migrates an older
 * one (store-migrate.c; no state.json but lineages in certs/ is schema 0),
 * and records which version now runs on it (the installers' upgrade check
 * reads "written_by").
 */
static int
check_state_file(struct store *s, char **cause)
{
    char *path = fsutil_join(s->dir, "state.json");
    unsigned char *data = NULL;
    cJSON *root = NULL;
    const cJSON *by = NULL;
    double schema = STORE_SCHEMA;
    size_t len;
    int rc, same;

    if (path == NULL)
        return -E_NOMEM;
    rc = fsutil_read_file(path, 65536, &data, &len, NULL);
    if (rc == -E_NOT_FOUND) {
        schema = store_migrate_is_legacy(s->dir) ? 0 : STORE_SCHEMA;
        rc = 0;
    } else if (rc == 0) {
        root = cJSON_ParseWithLength((const char *)data, len);
        by = cJSON_GetObjectItemCaseSensitive(root, "written_by");
        if (jinteger(root, "schema", 0, 1e9, &schema) != 0) {
            err_set(cause, "%s is damaged (no schema)", path);
            rc = -E_BAD_INPUT;
        } else if (schema > STORE_SCHEMA) {
            err_set(cause,
                    "the store in %s has schema %g, newer than this agent's %d: "
                    "use a newer certagent",
                    s->dir, schema, STORE_SCHEMA);
            rc = -E_VERSION;
        }
    } else {
        err_set(cause, "cannot read %s", path);
    }
    same = cJSON_IsString(by) && strcmp(by->valuestring, CERTAGENT_VERSION) == 0;
    if (rc == 0 && schema < STORE_SCHEMA)
        rc = store_migrate_run(s->dir, (int)schema, STORE_SCHEMA, cause);
    else if (rc == 0 && !same)
        rc = store_migrate_write_state(s->dir, STORE_SCHEMA, cause);
    if (rc == 0 && data != NULL && !same)
        log_info("store: %s was last used by certagent %s; now by %s", s->dir,
                 cJSON_IsString(by) ? by->valuestring : "(unknown)", CERTAGENT_VERSION);
    cJSON_Delete(root);
    free(data);
    free(path);
    return rc;
}

/* Is entry e of directory dir a directory (and not a link to one)? */
static int
entry_is_dir(const char *dir, const struct dirent *e)
{
    char *p;
    int yes;

#ifdef DT_DIR
    /* Saves a stat per name where the file system tells the type. */
    if (e->d_type != DT_UNKNOWN)
        return e->d_type == DT_DIR;
#endif
    if ((p = fsutil_join(dir, e->d_name)) == NULL)
        return 0;
    yes = fsutil_is_dir(p) && !fsutil_is_published(p);
    free(p);
    return yes;
}

/* Loads every certs/NAME into s (unsorted) and repairs it. */
static int
load_all(struct store *s, char **cause)
{
    DIR *d = opendir(s->certs);
    struct dirent *e;
    int rc = 0;

    if (d == NULL) {
        int err = errno;

        err_set(cause, "cannot read %s: %s", s->certs, strerror(err));
        return err == ENOENT ? -E_NOT_FOUND : err == EACCES ? -E_DENIED : -E_IO;
    }
    for (;;) {
        struct store_cert *c = NULL;

        errno = 0;
        if ((e = readdir(d)) == NULL) {
            if (errno != 0) {
                err_set(cause, "cannot read %s: %s", s->certs, strerror(errno));
                rc = -E_IO;
            }
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (strncmp(e->d_name, ".removed-", 9) == 0) {
            /* A removal cut short after its commit point (the rename): finish it. */
            char *p = fsutil_join(s->certs, e->d_name);

            if (p == NULL) {
                rc = -E_NOMEM;
                break;
            }
            remove_leftover(NULL, p);
            free(p);
            continue;
        }
        if (store_name_valid(e->d_name, NULL) != 0 || !entry_is_dir(s->certs, e)) {
            log_warn("store: ignoring %s/%s: not a certificate's directory", s->certs, e->d_name);
            continue;
        }
        if ((rc = load_one(s, e->d_name, &c)) != 0)
            break;
        if (c != NULL && (rc = byname_append(&s->index, c)) != 0) {
            lineage_clear(c);
            free(c);
            break;
        }
    }
    closedir(d);
    if (rc == -E_NOMEM)
        err_set(cause, "cannot load the store in %s: out of memory", s->dir);
    return rc;
}

/*
 * Removes live/ links of names the store does not hold.  A name whose
 * certs/NAME exists but was skipped (damaged lineage) keeps its link, so that
 * servers keep working while a person repairs it.
 */
static int
remove_stale_links(struct store *s)
{
    DIR *d = opendir(s->live);
    struct dirent *e;
    int rc = 0;

    if (d == NULL) {
        log_error("store: cannot look for stale links in %s: %s", s->live, strerror(errno));
        return 0;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char *link = NULL, *dir = NULL, *cause = NULL;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (byname_find(&s->index, e->d_name) != NULL)
            continue;
        if ((link = fsutil_join(s->live, e->d_name)) == NULL ||
            (dir = fsutil_join(s->certs, e->d_name)) == NULL) {
            rc = -E_NOMEM;
        } else if (fsutil_is_published(link) && !fsutil_exists(dir)) {
            if (fsutil_unpublish(link, &cause) != 0)
                log_error("store: cannot remove live/%s, a link for no certificate: %s", e->d_name,
                          cause != NULL ? cause : "out of memory");
            else
                log_info("store: removed live/%s: there is no certificate '%s'", e->d_name,
                         e->d_name);
        }
        free(link);
        free(dir);
        free(cause);
    }
    closedir(d);
    return rc;
}

int
store_open(const char *state_dir, struct store **out, char **cause)
{
    struct store *s = calloc(1, sizeof(*s));
    int rc = -E_NOMEM;

    *out = NULL;
    if (s == NULL)
        goto fail;
    byname_init(&s->index, offsetof(struct store_cert, name));
    if ((s->dir = strdup(state_dir)) == NULL ||
        (s->certs = fsutil_join(state_dir, "certs")) == NULL ||
        (s->live = fsutil_join(state_dir, "live")) == NULL)
        goto fail;
    if ((rc = fsutil_mkdir_p(s->certs, 0700, cause)) != 0 ||
        (rc = fsutil_mkdir_p(s->live, 0755, cause)) != 0)
        goto fail;
    if ((rc = check_state_file(s, cause)) != 0)
        goto fail;
    if ((rc = load_all(s, cause)) != 0)
        goto fail;
    /* Sorted once here; store_begin keeps the order with binary search. */
    /* Names come from one directory listing, so none repeats. */
    if (byname_sort(&s->index) == -E_NOMEM) {
        rc = -E_NOMEM;
        goto fail;
    }
    if ((rc = remove_stale_links(s)) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    if (rc == -E_NOMEM)
        err_set(cause, "cannot open the store in %s: out of memory", state_dir);
    store_close(s);
    return rc;
}

void
store_close(struct store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->index.n; i++) {
        lineage_clear(s->index.items[i]);
        free(s->index.items[i]);
    }
    byname_free(&s->index);
    free(s->dir);
    free(s->certs);
    free(s->live);
    free(s);
}

/* Changes. */

/* Makes the names of temp and removed directories unique between pool threads. */
static atomic_uint change_counter;

static void
change_free(struct store_change *ch)
{
    if (ch == NULL)
        return;
    lineage_clear(&ch->lineage);
    free(ch->name);
    free(ch->name_dir);
    free(ch->certs_dir);
    free(ch->live_dir);
    free(ch->live_link);
    free(ch);
}

int
store_begin(struct store *store, const char *name, enum store_change_kind kind,
            struct store_change **out, char **cause)
{
    struct store_change *ch = NULL;
    struct store_cert *entry;
    size_t pos;
    int found, rc;

    *out = NULL;
    if ((rc = store_name_valid(name, cause)) != 0)
        return rc;
    pos = byname_pos(&store->index, name, &found);
    entry = found ? store->index.items[pos] : NULL;
    if (entry != NULL && entry->busy) {
        err_set(cause, "another change to '%s' is in progress; try again when it is done", name);
        return -E_BUSY;
    }
    if (kind != STORE_CHANGE_ADD && (entry == NULL || entry->current == 0)) {
        err_set(cause, "no certificate named '%s'", name);
        return -E_NOT_FOUND;
    }
    if ((ch = calloc(1, sizeof(*ch))) == NULL)
        goto nomem;
    ch->kind = kind;
    if ((ch->name = strdup(name)) == NULL || (ch->certs_dir = strdup(store->certs)) == NULL ||
        (ch->live_dir = strdup(store->live)) == NULL ||
        (ch->name_dir = fsutil_join(store->certs, name)) == NULL ||
        (ch->live_link = fsutil_join(store->live, name)) == NULL)
        goto nomem;
    if (!found) {
        /* The placeholder that reserves the name; store_find does not show it. */
        if ((entry = calloc(1, sizeof(*entry))) == NULL)
            goto nomem;
        if ((entry->name = strdup(name)) == NULL ||
            byname_insert(&store->index, pos, entry) != 0) {
            free(entry->name);
            free(entry);
            goto nomem;
        }
    }
    entry = store->index.items[pos];
    if (lineage_copy(&ch->lineage, entry) != 0) {
        if (!found)
            remove_at(store, pos);
        goto nomem;
    }
    ch->previous = entry->current;
    entry->busy = 1;
    *out = ch;
    return 0;
nomem:
    change_free(ch);
    err_set(cause, "cannot start a change to '%s': out of memory", name);
    return -E_NOMEM;
}

unsigned
store_change_version(const struct store_change *change)
{
    return change->made_current;
}

unsigned
store_change_previous(const struct store_change *change)
{
    return change->previous;
}

/*
 * Replaces lineage.json with the change's lineage: the commit point of every
 * change.  When the write fails after its rename took effect (the directory
 * could not be synced), the new lineage is what every reader sees, so the
 * change counts as committed and the failure is logged as a warning.
 */
static int
write_lineage(struct store_change *ch, char **cause)
{
    char *path = fsutil_join(ch->name_dir, "lineage.json");
    char *text = lineage_text(&ch->lineage), *why = NULL;
    unsigned char *now = NULL;
    size_t len = 0, tlen;
    int rc = -E_NOMEM;

    if (path == NULL || text == NULL) {
        err_set(cause, "cannot write the lineage of '%s': out of memory", ch->name);
        goto out;
    }
    tlen = strlen(text);
    if ((rc = fsutil_write_atomic(path, text, tlen, 0644, &why)) == 0)
        goto out;
    if (rc != -E_NOMEM && fsutil_read_file(path, LINEAGE_MAX, &now, &len, NULL) == 0 &&
        len == tlen && memcmp(now, text, tlen) == 0) {
        log_warn("store: '%s': the new lineage.json is in place, but %s", ch->name,
                 why != NULL ? why : "an error followed");
        rc = 0;
        goto out;
    }
    if (cause != NULL) {
        free(*cause);
        *cause = why;
        why = NULL;
    }
out:
    free(why);
    free(now);
    free(path);
    if (text != NULL)
        cJSON_free(text);
    return rc;
}

/* Re-points live/NAME; a failure is logged, not fatal: the version is committed. */
static void
publish(struct store_change *ch)
{
    char *target = live_target(ch->name, ch->lineage.current), *cause = NULL;

    if (target == NULL || fsutil_publish_dir(target, ch->live_link, &cause) != 0)
        log_error("store: '%s' is at version %u but live/%s could not be updated (%s); "
                  "it will be at the next start",
                  ch->name, ch->lineage.current, ch->name, cause ? cause : "out of memory");
    free(target);
    free(cause);
}

/* Writes dir/file, which must not exist, with mode, and fsyncs it. */
static int
write_file_in(const char *dir, const char *file, const char *text, int mode, char **cause)
{
    char *p = fsutil_join(dir, file);
    int rc;

    if (p == NULL) {
        err_set(cause, "cannot write %s in %s: out of memory", file, dir);
        return -E_NOMEM;
    }
    rc = fsutil_write_new(p, text, strlen(text), mode, cause);
    free(p);
    return rc;
}

/* Writes the files of a version into the new directory dir and fsyncs it. */
static int
write_version_files(const char *dir, const char *cert_pem, const char *chain_pem,
                    const char *key_pem, const char *meta, char **cause)
{
    size_t lc = strlen(cert_pem), lh = strlen(chain_pem);
    char *full = malloc(lc + lh + 1);
    int rc;

    if (full == NULL) {
        err_set(cause, "cannot write %s/fullchain.pem: out of memory", dir);
        return -E_NOMEM;
    }
    memcpy(full, cert_pem, lc);
    memcpy(full + lc, chain_pem, lh + 1);
    if ((rc = write_file_in(dir, "cert.pem", cert_pem, 0644, cause)) == 0 &&
        (rc = write_file_in(dir, "chain.pem", chain_pem, 0644, cause)) == 0 &&
        (rc = write_file_in(dir, "fullchain.pem", full, 0644, cause)) == 0 &&
        (key_pem == NULL || (rc = write_file_in(dir, "privkey.pem", key_pem, 0600, cause)) == 0) &&
        (rc = write_file_in(dir, "meta.json", meta, 0644, cause)) == 0)
        rc = fsutil_fsync_dir(dir, cause);
    free(full);
    return rc;
}

/* meta.json of version v: its summary plus "extra" (consumed, may be NULL); NULL on OOM. */
static char *
meta_text(const struct store_version *v, cJSON *extra)
{
    cJSON *o = version_json(v);
    char *text = NULL;

    if (o == NULL) {
        cJSON_Delete(extra);
        return NULL;
    }
    if (extra == NULL || add_item(o, "extra", extra) == 0)
        text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

int
store_change_add(struct store_change *ch, const struct store_version *summary,
                 const char *cert_pem, const char *chain_pem, const char *key_pem,
                 const char *meta_json, char **cause)
{
    struct store_version nv, *grown;
    char tmpname[64], *tmp = NULL, *final = NULL, *meta = NULL;
    unsigned v = 1;
    int rc = 0, made_name_dir = 0, made_tmp = 0, renamed = 0;
    cJSON *extra = NULL;

    memset(&nv, 0, sizeof(nv));
    if (ch->kind != STORE_CHANGE_ADD) {
        err_set(cause, "internal error: adding a version to '%s' in another kind of change",
                ch->name);
        return -E_INTERNAL;
    }
    if (cert_pem == NULL || cert_pem[0] == '\0') {
        err_set(cause, "no certificate to store for '%s'", ch->name);
        return -E_BAD_INPUT;
    }
    if (chain_pem == NULL)
        chain_pem = "";
    if (meta_json != NULL && !cJSON_IsObject(extra = cJSON_Parse(meta_json))) {
        err_set(cause, "the metadata to store with '%s' is not a JSON object", ch->name);
        rc = -E_BAD_INPUT;
        goto out;
    }
    for (size_t i = 0; i < ch->lineage.nversions; i++) {
        if (ch->lineage.versions[i].version >= v)
            v = ch->lineage.versions[i].version + 1;
    }
    if (ch->lineage.nversions == 0) {
        /* A new name: its directory must not exist (exclusive creation). */
        rc = fsutil_mkdir(ch->name_dir, 0700, cause);
        if (rc == -E_EXISTS)
            err_set(cause,
                    "%s exists, but '%s' is not in the store: its lineage could not be "
                    "read when the agent started (see the log); repair it or move it "
                    "away first",
                    ch->name_dir, ch->name);
        if (rc != 0)
            goto out;
        made_name_dir = 1;
        if ((rc = fsutil_fsync_dir(ch->certs_dir, cause)) != 0)
            goto out;
    }
    /* A number whose directory exists (left by a failed change) is not reused. */
    for (;;) {
        if ((final = version_dir(ch->name_dir, v)) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
        if (!fsutil_exists(final))
            break;
        free(final);
        final = NULL;
        v++;
    }
    snprintf(tmpname, sizeof(tmpname), ".tmp-v%u-%ld-%u", v, (long)getpid(),
             atomic_fetch_add(&change_counter, 1) + 1);
    if ((tmp = fsutil_join(ch->name_dir, tmpname)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if ((rc = store_version_copy(&nv, summary)) != 0)
        goto out;
    nv.version = v;
    nv.created = (int64_t)time(NULL);
    nv.has_key = key_pem != NULL;
    meta = meta_text(&nv, extra);
    extra = NULL;
    if (meta == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if ((rc = fsutil_mkdir(tmp, 0700, cause)) != 0)
        goto out;
    made_tmp = 1;
    if ((rc = write_version_files(tmp, cert_pem, chain_pem, key_pem, meta, cause)) != 0 ||
        (rc = fsutil_rename(tmp, final, cause)) != 0)
        goto out;
    renamed = 1;
    if ((grown = realloc(ch->lineage.versions, (ch->lineage.nversions + 1) * sizeof(*grown))) ==
        NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    ch->lineage.versions = grown;
    ch->lineage.versions[ch->lineage.nversions++] = nv;
    memset(&nv, 0, sizeof(nv));
    ch->lineage.current = v;
    /* The commit point: the lineage names the new version as current. */
    if ((rc = write_lineage(ch, cause)) != 0) {
        /* Not committed: forget the version in memory too. */
        store_version_clear(&ch->lineage.versions[--ch->lineage.nversions]);
        ch->lineage.current = ch->previous;
        goto out;
    }
    ch->made_current = v;
    publish(ch);
out:
    if (rc == -E_NOMEM)
        err_set(cause, "cannot add a version to '%s': out of memory", ch->name);
    if (rc != 0 && made_tmp) {
        /* Nothing uncommitted stays behind: no lineage lists this directory. */
        char *ignored = NULL;

        if (fsutil_remove_tree(renamed ? final : tmp, &ignored) != 0)
            log_warn("store: '%s': could not clean up after a failed change: %s", ch->name,
                     ignored != NULL ? ignored : "out of memory");
        free(ignored);
    }
    if (rc != 0 && made_name_dir)
        fsutil_rmdir(ch->name_dir);
    cJSON_Delete(extra);
    store_version_clear(&nv);
    free(tmp);
    free(final);
    if (meta != NULL)
        cJSON_free(meta);
    return rc;
}

int
store_change_rollback(struct store_change *ch, unsigned to, char **cause)
{
    unsigned target = to;
    char *vd;
    int rc;

    if (ch->kind != STORE_CHANGE_ROLLBACK) {
        err_set(cause, "internal error: rolling back '%s' in another kind of change", ch->name);
        return -E_INTERNAL;
    }
    if (target == 0) {
        for (size_t i = 0; i < ch->lineage.nversions; i++) {
            unsigned v = ch->lineage.versions[i].version;

            if (v < ch->lineage.current && v > target)
                target = v;
        }
        if (target == 0) {
            err_set(cause, "'%s' has no version older than %u to roll back to", ch->name,
                    ch->lineage.current);
            return -E_NOT_FOUND;
        }
    }
    if (store_version_get(&ch->lineage, target) == NULL) {
        err_set(cause, "'%s' has no version %u", ch->name, target);
        return -E_NOT_FOUND;
    }
    if (target == ch->lineage.current) {
        err_set(cause, "version %u of '%s' is already current", target, ch->name);
        return -E_BAD_INPUT;
    }
    if ((vd = version_dir(ch->name_dir, target)) == NULL) {
        err_set(cause, "cannot roll back '%s': out of memory", ch->name);
        return -E_NOMEM;
    }
    if (!fsutil_is_dir(vd)) {
        err_set(cause, "the files of version %u of '%s' are missing (%s)", target, ch->name, vd);
        free(vd);
        return -E_NOT_FOUND;
    }
    free(vd);
    ch->lineage.current = target;
    if ((rc = write_lineage(ch, cause)) != 0) {
        ch->lineage.current = ch->previous;
        return rc;
    }
    ch->made_current = target;
    publish(ch);
    return 0;
}

int
store_change_revoke(struct store_change *ch, unsigned version, int64_t when, const char *reason,
                    char **cause)
{
    struct store_version *v = NULL;
    char *old_reason, *new_reason;
    int64_t old_when;
    int rc;

    if (ch->kind != STORE_CHANGE_REVOKE) {
        err_set(cause, "internal error: recording a revocation of '%s' in another kind of change",
                ch->name);
        return -E_INTERNAL;
    }
    if (version == 0)
        version = ch->lineage.current;
    for (size_t i = 0; i < ch->lineage.nversions; i++) {
        if (ch->lineage.versions[i].version == version)
            v = &ch->lineage.versions[i];
    }
    if (v == NULL) {
        err_set(cause, "'%s' has no version %u", ch->name, version);
        return -E_NOT_FOUND;
    }
    if ((new_reason = strdup(reason != NULL && reason[0] != '\0' ? reason : "unspecified")) ==
        NULL) {
        err_set(cause, "cannot record the revocation of '%s': out of memory", ch->name);
        return -E_NOMEM;
    }
    old_when = v->revoked;
    old_reason = v->revoked_reason;
    v->revoked = when > 0 ? when : 1;
    v->revoked_reason = new_reason;
    /* The commit point: lineage.json says the version is revoked. */
    if ((rc = write_lineage(ch, cause)) != 0) {
        v->revoked = old_when;
        v->revoked_reason = old_reason;
        free(new_reason);
        return rc;
    }
    free(old_reason);
    ch->made_current = ch->lineage.current;
    return 0;
}

int
store_change_remove(struct store_change *ch, char **cause)
{
    char aside[128], *dest = NULL, *why = NULL;
    int rc;

    if (ch->kind != STORE_CHANGE_REMOVE) {
        err_set(cause, "internal error: removing '%s' in another kind of change", ch->name);
        return -E_INTERNAL;
    }
    /* First the live view, so that no server reads a half-removed lineage. */
    if ((rc = fsutil_unpublish(ch->live_link, cause)) != 0)
        return rc;
    /*
     * Then one rename takes the lineage away (the commit point: an
     * interrupted removal is finished by store_open); the tree goes after it.
     */
    snprintf(aside, sizeof(aside), ".removed-%s-%ld-%u", ch->name, (long)getpid(),
             atomic_fetch_add(&change_counter, 1) + 1);
    if ((dest = fsutil_join(ch->certs_dir, aside)) == NULL) {
        err_set(cause, "cannot remove '%s': out of memory", ch->name);
        publish(ch);
        return -E_NOMEM;
    }
    if ((rc = fsutil_rename(ch->name_dir, dest, cause)) != 0) {
        /* Put the live view back: the lineage is still there. */
        publish(ch);
        free(dest);
        return rc;
    }
    if (fsutil_remove_tree(dest, &why) != 0)
        log_warn("store: '%s' is removed, but %s; it will be deleted at the next start", ch->name,
                 why != NULL ? why : "its files could not be deleted");
    free(why);
    free(dest);
    ch->made_current = 0;
    return 0;
}

void
store_finish(struct store *store, struct store_change *ch, int rc)
{
    int found;
    size_t pos = byname_pos(&store->index, ch->name, &found);

    /* An ADD that reported success without adding a version committed nothing. */
    if (rc == 0 && ch->kind != STORE_CHANGE_REMOVE && ch->lineage.current == 0)
        rc = -E_INTERNAL;
    if (found) {
        struct store_cert *entry = store->index.items[pos];

        entry->busy = 0;
        if (rc == 0 && ch->kind == STORE_CHANGE_REMOVE) {
            remove_at(store, pos);
        } else if (rc == 0) {
            /* The entry keeps its address; only its contents change. */
            lineage_clear(entry);
            *entry = ch->lineage;
            memset(&ch->lineage, 0, sizeof(ch->lineage));
            entry->busy = 0;
        } else if (entry->current == 0) {
            remove_at(store, pos);
        }
    }
    change_free(ch);
}

int
store_read_file(const struct store *store, const char *name, unsigned version, const char *file,
                unsigned char **out, size_t *len, char **cause)
{
    static const char *const files[] = {"cert.pem", "chain.pem", "fullchain.pem", "privkey.pem",
                                        "meta.json"};
    char vname[32], *dir = NULL, *path = NULL;
    size_t i;
    int rc;

    *out = NULL;
    *len = 0;
    if ((rc = store_name_valid(name, cause)) != 0)
        return rc;
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (strcmp(file, files[i]) == 0)
            break;
    }
    if (i == sizeof(files) / sizeof(files[0])) {
        err_set(cause, "a version has no file named '%.64s'", file);
        return -E_BAD_INPUT;
    }
    if (version == 0) {
        err_set(cause, "'%s' has no version 0", name);
        return -E_NOT_FOUND;
    }
    snprintf(vname, sizeof(vname), "v%u", version);
    if ((dir = path3(store->certs, name, vname)) == NULL ||
        (path = fsutil_join(dir, file)) == NULL) {
        err_set(cause, "cannot read %s of '%s': out of memory", file, name);
        rc = -E_NOMEM;
        goto out;
    }
    rc = fsutil_read_file(path, FILE_MAX, out, len, cause);
out:
    free(dir);
    free(path);
    return rc;
}
