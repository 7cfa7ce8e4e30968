/*
 * The certificate store (see store.h for the layout and the commit protocol).
 */
#include "store.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "version.h"

#define LINEAGE_MAX (4 * 1024 * 1024)
#define FILE_MAX (1024 * 1024)

struct store {
    char *dir;   /* the state directory */
    char *certs; /* dir/certs */
    char *live;  /* dir/live */
    struct store_cert **entries; /* sorted by name */
    size_t n, cap;
};

struct store_change {
    enum store_change_kind kind;
    char *name;
    char *name_dir;  /* certs/NAME */
    char *certs_dir; /* certs */
    char *live_dir;  /* live */
    char *live_link; /* live/NAME */
    struct store_cert lineage; /* private copy, updated by the pool thread */
    unsigned made_current;
    unsigned previous;
};

static const char *const source_names[] = {"import", "selfsigned", "acme"};

const char *
store_source_name(enum cert_source source)
{
    if ((unsigned)source >= sizeof(source_names) / sizeof(source_names[0]))
        return "unknown";
    return source_names[source];
}

int
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

        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
            err_set(cause, "invalid certificate name '%.64s': use letters, digits, '.', '_' and "
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

static int
copy_strs(char ***dst, size_t *ndst, char *const *src, size_t n)
{
    *dst = NULL;
    *ndst = 0;
    if (n == 0)
        return 0;
    if ((*dst = calloc(n, sizeof(**dst))) == NULL)
        return -E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (((*dst)[i] = strdup(src[i])) == NULL)
            return -E_NOMEM;
        (*ndst)++;
    }
    return 0;
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
    for (size_t i = 0; i < v->ndns; i++)
        free(v->dns[i]);
    free(v->dns);
    for (size_t i = 0; i < v->nips; i++)
        free(v->ips[i]);
    free(v->ips);
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
    dst->serial = dup_or_empty(src->serial);
    dst->fingerprint = dup_or_empty(src->fingerprint);
    dst->subject = dup_or_empty(src->subject);
    dst->common_name = dup_or_empty(src->common_name);
    dst->issuer = dup_or_empty(src->issuer);
    dst->key_desc = dup_or_empty(src->key_desc);
    if (dst->serial == NULL || dst->fingerprint == NULL || dst->subject == NULL ||
        dst->common_name == NULL || dst->issuer == NULL || dst->key_desc == NULL ||
        copy_strs(&dst->dns, &dst->ndns, src->dns, src->ndns) != 0 ||
        copy_strs(&dst->ips, &dst->nips, src->ips, src->nips) != 0) {
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

/* JSON. */

static cJSON *
strs_json(char *const *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();

    for (size_t i = 0; a != NULL && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

static cJSON *
version_json(const struct store_version *v)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL)
        return NULL;
    cJSON_AddNumberToObject(o, "version", v->version);
    cJSON_AddStringToObject(o, "source", store_source_name(v->source));
    cJSON_AddNumberToObject(o, "created", (double)v->created);
    cJSON_AddNumberToObject(o, "not_before", (double)v->not_before);
    cJSON_AddNumberToObject(o, "not_after", (double)v->not_after);
    cJSON_AddStringToObject(o, "serial", v->serial ? v->serial : "");
    cJSON_AddStringToObject(o, "fingerprint", v->fingerprint ? v->fingerprint : "");
    cJSON_AddStringToObject(o, "subject", v->subject ? v->subject : "");
    cJSON_AddStringToObject(o, "common_name", v->common_name ? v->common_name : "");
    cJSON_AddStringToObject(o, "issuer", v->issuer ? v->issuer : "");
    cJSON_AddStringToObject(o, "key", v->key_desc ? v->key_desc : "");
    cJSON_AddItemToObject(o, "dns", strs_json(v->dns, v->ndns));
    cJSON_AddItemToObject(o, "ips", strs_json(v->ips, v->nips));
    cJSON_AddBoolToObject(o, "has_key", v->has_key);
    cJSON_AddNumberToObject(o, "chain_len", v->chain_len);
    return o;
}

static char *
lineage_text(const struct store_cert *c)
{
    cJSON *o = cJSON_CreateObject(), *arr;
    char *text = NULL;

    if (o == NULL)
        return NULL;
    cJSON_AddNumberToObject(o, "schema", STORE_SCHEMA);
    cJSON_AddStringToObject(o, "name", c->name);
    cJSON_AddNumberToObject(o, "current", c->current);
    arr = cJSON_AddArrayToObject(o, "versions");
    for (size_t i = 0; arr != NULL && i < c->nversions; i++)
        cJSON_AddItemToArray(arr, version_json(&c->versions[i]));
    text = cJSON_Print(o);
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

static int
version_from_json(const cJSON *o, struct store_version *v)
{
    double num;
    const cJSON *hk;

    memset(v, 0, sizeof(*v));
    if (!cJSON_IsObject(o) || jnumber(o, "version", &num) != 0 || num < 1 || num > 1e9)
        return -1;
    v->version = (unsigned)num;
    if (jstring(o, "source") == NULL || store_source_parse(jstring(o, "source"), &v->source) != 0)
        return -1;
    if (jnumber(o, "created", &num) == 0)
        v->created = (int64_t)num;
    if (jnumber(o, "not_before", &num) == 0)
        v->not_before = (int64_t)num;
    if (jnumber(o, "not_after", &num) == 0)
        v->not_after = (int64_t)num;
    if (jnumber(o, "chain_len", &num) == 0)
        v->chain_len = (unsigned)num;
    hk = cJSON_GetObjectItemCaseSensitive(o, "has_key");
    v->has_key = cJSON_IsTrue(hk);
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

/* Parses lineage.json of name into c. */
static int
lineage_parse(const char *text, size_t len, const char *name, struct store_cert *c,
              char **cause)
{
    cJSON *root = cJSON_ParseWithLength(text, len), *arr, *it;
    double num = 0;
    int rc = -E_BAD_INPUT;
    size_t count = 0;

    memset(c, 0, sizeof(*c));
    if (root == NULL) {
        err_set(cause, "lineage.json is not valid JSON");
        return -E_BAD_INPUT;
    }
    if (jnumber(root, "schema", &num) != 0 || num > STORE_SCHEMA) {
        err_set(cause, "lineage.json has schema %g; this agent reads schema %d", num,
                STORE_SCHEMA);
        goto out;
    }
    if (jstring(root, "name") == NULL || strcmp(jstring(root, "name"), name) != 0) {
        err_set(cause, "lineage.json names another certificate");
        goto out;
    }
    if (jnumber(root, "current", &num) != 0 || num < 1) {
        err_set(cause, "lineage.json has no current version");
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
            err_set(cause, "lineage.json has a damaged version entry");
            goto out;
        }
        c->nversions++;
    }
    if (c->nversions > 1)
        qsort(c->versions, c->nversions, sizeof(*c->versions), cmp_version);
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

/* Position of name, or where it would go (*found 0). */
static size_t
find_pos(const struct store *s, const char *name, int *found)
{
    size_t lo = 0, hi = s->n;

    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->entries[mid]->name, name);

        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int
insert_at(struct store *s, size_t pos, struct store_cert *c)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct store_cert **e = realloc(s->entries, cap * sizeof(*e));

        if (e == NULL)
            return -E_NOMEM;
        s->entries = e;
        s->cap = cap;
    }
    memmove(&s->entries[pos + 1], &s->entries[pos], (s->n - pos) * sizeof(*s->entries));
    s->entries[pos] = c;
    s->n++;
    return 0;
}

static void
remove_at(struct store *s, size_t pos)
{
    lineage_clear(s->entries[pos]);
    free(s->entries[pos]);
    memmove(&s->entries[pos], &s->entries[pos + 1], (s->n - pos - 1) * sizeof(*s->entries));
    s->n--;
}

static int
cmp_entry(const void *a, const void *b)
{
    const struct store_cert *const *x = a, *const *y = b;

    return strcmp((*x)->name, (*y)->name);
}

size_t
store_count(const struct store *store)
{
    return store->n;
}

const struct store_cert *
store_at(const struct store *store, size_t i)
{
    return i < store->n ? store->entries[i] : NULL;
}

const struct store_cert *
store_find(const struct store *store, const char *name)
{
    int found;
    size_t pos = find_pos(store, name, &found);

    if (!found || store->entries[pos]->current == 0)
        return NULL;
    return store->entries[pos];
}

const char *
store_state_dir(const struct store *store)
{
    return store->dir;
}

/* Opening and repair. */

static int
is_dir(const char *path)
{
    return fsutil_is_dir(path);
}

/* Keeps what a crash orphaned, never deleting key material: moves it under orphans/. */
static void
set_aside(struct store *s, const char *path, const char *label)
{
    char *orphans = fsutil_join(s->dir, "orphans"), *dest = NULL, *cause = NULL;
    char stamp[192];

    snprintf(stamp, sizeof(stamp), "%s-%lld-%ld", label, (long long)time(NULL), (long)getpid());
    if (orphans == NULL || (dest = fsutil_join(orphans, stamp)) == NULL ||
        fsutil_mkdir_p(orphans, 0700, &cause) != 0 || fsutil_rename(path, dest, &cause) != 0)
        log_error("store: cannot set aside %s: %s", path, cause ? cause : "out of memory");
    else
        log_warn("store: %s was left by an interrupted change; kept as %s", path, dest);
    free(cause);
    free(orphans);
    free(dest);
}

static void
remove_leftover(const char *path)
{
    char *cause = NULL;

    if (fsutil_remove_tree(path, &cause) != 0)
        log_error("store: cannot remove %s: %s", path, cause ? cause : "error");
    else
        log_info("store: removed %s, left by an interrupted change", path);
    free(cause);
}

/* Loads and repairs one lineage directory; returns the entry or NULL (skipped). */
static struct store_cert *
load_one(struct store *s, const char *name)
{
    char *dir = fsutil_join(s->certs, name), *lin = NULL, *cause = NULL, *vd = NULL;
    char *link = NULL, *target = NULL, *want = NULL;
    unsigned char *text = NULL;
    size_t len = 0;
    struct store_cert *c = NULL;
    DIR *d = NULL;
    struct dirent *e;
    int rc;

    if (dir == NULL || (lin = fsutil_join(dir, "lineage.json")) == NULL)
        goto out;
    rc = fsutil_read_file(lin, LINEAGE_MAX, &text, &len, &cause);
    if (rc == -E_NOT_FOUND) {
        /* The first version was being created when the agent stopped. */
        set_aside(s, dir, name);
        goto out;
    }
    if (rc != 0) {
        log_error("store: skipping '%s': %s", name, cause);
        goto out;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL)
        goto out;
    free(cause);
    cause = NULL;
    if (lineage_parse((const char *)text, len, name, c, &cause) != 0) {
        log_error("store: skipping '%s' (its files are left alone): %s", name, cause);
        free(c);
        c = NULL;
        goto out;
    }
    /* Leftovers inside: temp directories and versions the lineage does not list. */
    if ((d = opendir(dir)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            char *p;
            unsigned v;
            char extra;

            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
                strcmp(e->d_name, "lineage.json") == 0)
                continue;
            if ((p = fsutil_join(dir, e->d_name)) == NULL)
                continue;
            if (strncmp(e->d_name, ".tmp-", 5) == 0 || strncmp(e->d_name, "lineage.json.tmp", 16) == 0) {
                remove_leftover(p);
            } else if (sscanf(e->d_name, "v%u%c", &v, &extra) == 1 &&
                       store_version_get(c, v) == NULL) {
                char label[96];

                snprintf(label, sizeof(label), "%.64s-v%u", name, v);
                set_aside(s, p, label);
            }
            free(p);
        }
        closedir(d);
    }
    /* The current version must exist; else fall back to the newest one that does. */
    vd = version_dir(dir, c->current);
    if (vd == NULL || !is_dir(vd)) {
        unsigned best = 0;

        for (size_t i = 0; i < c->nversions; i++) {
            char *p = version_dir(dir, c->versions[i].version);

            if (p != NULL && is_dir(p))
                best = c->versions[i].version;
            free(p);
        }
        log_error("store: '%s': current version %u is missing; %s", name, c->current,
                  best ? "using the newest version present" : "no version is present");
        if (best == 0) {
            lineage_clear(c);
            free(c);
            c = NULL;
            goto out;
        }
        c->current = best;
    }
    /* live/NAME must show the current version. */
    link = fsutil_join(s->live, name);
    want = live_target(name, c->current);
    if (link != NULL && want != NULL) {
        free(cause);
        cause = NULL;
        if (fsutil_read_published(link, &target, &cause) != 0 || strcmp(target, want) != 0) {
            free(cause);
            cause = NULL;
            if (fsutil_publish_dir(want, link, &cause) != 0)
                log_error("store: cannot re-point %s: %s", link, cause);
            else
                log_info("store: live/%s now shows version %u", name, c->current);
        }
    }
out:
    free(dir);
    free(lin);
    free(cause);
    free(text);
    free(vd);
    free(link);
    free(target);
    free(want);
    return c;
}

static int
check_state_file(struct store *s, char **cause)
{
    char *path = fsutil_join(s->dir, "state.json"), *text = NULL;
    unsigned char *data = NULL;
    size_t len;
    int rc;

    if (path == NULL)
        return -E_NOMEM;
    rc = fsutil_read_file(path, 65536, &data, &len, NULL);
    if (rc == -E_NOT_FOUND) {
        err_set(&text, "{\"schema\": %d, \"written_by\": \"%s\"}\n", STORE_SCHEMA,
                CERTAGENT_VERSION);
        rc = text != NULL ? fsutil_write_atomic(path, text, strlen(text), 0644, cause) : -E_NOMEM;
    } else if (rc == 0) {
        cJSON *root = cJSON_ParseWithLength((const char *)data, len);
        const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
        const cJSON *by = cJSON_GetObjectItemCaseSensitive(root, "written_by");

        if (!cJSON_IsNumber(schema)) {
            err_set(cause, "%s is damaged (no schema)", path);
            rc = -E_BAD_INPUT;
        } else if (schema->valuedouble > STORE_SCHEMA) {
            err_set(cause, "the store in %s has schema %g, newer than this agent's %d: "
                           "use a newer certagent",
                    s->dir, schema->valuedouble, STORE_SCHEMA);
            rc = -E_VERSION;
        } else if (!cJSON_IsString(by) || strcmp(by->valuestring, CERTAGENT_VERSION) != 0) {
            /*
             * Record which version runs on this store: the installers' upgrade
             * check reads it.  (Schema migrations go here when the schema grows.)
             */
            err_set(&text, "{\"schema\": %d, \"written_by\": \"%s\"}\n", STORE_SCHEMA,
                    CERTAGENT_VERSION);
            rc = text != NULL ? fsutil_write_atomic(path, text, strlen(text), 0644, cause)
                              : -E_NOMEM;
            if (rc == 0)
                log_info("store: %s was last used by certagent %s; now by %s", s->dir,
                         cJSON_IsString(by) ? by->valuestring : "(unknown)", CERTAGENT_VERSION);
        }
        cJSON_Delete(root);
    } else {
        err_set(cause, "cannot read %s", path);
    }
    free(data);
    free(text);
    free(path);
    return rc;
}

int
store_open(const char *state_dir, struct store **out, char **cause)
{
    struct store *s = calloc(1, sizeof(*s));
    DIR *d = NULL;
    struct dirent *e;
    int rc = -E_NOMEM;

    *out = NULL;
    if (s == NULL)
        return -E_NOMEM;
    if ((s->dir = strdup(state_dir)) == NULL || (s->certs = fsutil_join(state_dir, "certs")) == NULL ||
        (s->live = fsutil_join(state_dir, "live")) == NULL)
        goto fail;
    if ((rc = fsutil_mkdir_p(s->certs, 0700, cause)) != 0 ||
        (rc = fsutil_mkdir_p(s->live, 0755, cause)) != 0)
        goto fail;
    if ((rc = check_state_file(s, cause)) != 0)
        goto fail;
    if ((d = opendir(s->certs)) == NULL) {
        err_set(cause, "cannot read %s: %s", s->certs, strerror(errno));
        rc = -E_IO;
        goto fail;
    }
    while ((e = readdir(d)) != NULL) {
        struct store_cert *c;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (e->d_name[0] == '.') {
            /* .removed-NAME-*: a removal that was interrupted. */
            char *p = fsutil_join(s->certs, e->d_name);

            if (p != NULL)
                remove_leftover(p);
            free(p);
            continue;
        }
        if (store_name_valid(e->d_name, NULL) != 0) {
            log_warn("store: ignoring %s/%s: not a certificate name", s->certs, e->d_name);
            continue;
        }
        if ((c = load_one(s, e->d_name)) == NULL)
            continue;
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 64;
            struct store_cert **ne = realloc(s->entries, cap * sizeof(*ne));

            if (ne == NULL) {
                lineage_clear(c);
                free(c);
                rc = -E_NOMEM;
                goto fail;
            }
            s->entries = ne;
            s->cap = cap;
        }
        s->entries[s->n++] = c;
    }
    closedir(d);
    d = NULL;
    if (s->n > 1)
        qsort(s->entries, s->n, sizeof(*s->entries), cmp_entry);
    /* live/ links of names the store does not hold. */
    if ((d = opendir(s->live)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            int found;
            char *p;

            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            find_pos(s, e->d_name, &found);
            if (found)
                continue;
            if ((p = fsutil_join(s->live, e->d_name)) != NULL) {
                if (fsutil_is_published(p) && fsutil_unpublish(p, NULL) == 0)
                    log_info("store: removed live/%s: no such certificate", e->d_name);
                free(p);
            }
        }
        closedir(d);
        d = NULL;
    }
    *out = s;
    return 0;
fail:
    if (d != NULL)
        closedir(d);
    store_close(s);
    return rc;
}

void
store_close(struct store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        lineage_clear(s->entries[i]);
        free(s->entries[i]);
    }
    free(s->entries);
    free(s->dir);
    free(s->certs);
    free(s->live);
    free(s);
}

/* Changes. */

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
    pos = find_pos(store, name, &found);
    if (found && store->entries[pos]->busy) {
        err_set(cause, "another change to '%s' is in progress; try again when it is done",
                name);
        return -E_BUSY;
    }
    if (kind != STORE_CHANGE_ADD && (!found || store->entries[pos]->current == 0)) {
        err_set(cause, "no certificate named '%s'", name);
        return -E_NOT_FOUND;
    }
    if ((ch = calloc(1, sizeof(*ch))) == NULL)
        return -E_NOMEM;
    ch->kind = kind;
    if ((ch->name = strdup(name)) == NULL || (ch->certs_dir = strdup(store->certs)) == NULL ||
        (ch->live_dir = strdup(store->live)) == NULL ||
        (ch->name_dir = fsutil_join(store->certs, name)) == NULL ||
        (ch->live_link = fsutil_join(store->live, name)) == NULL)
        goto nomem;
    if (!found) {
        if ((entry = calloc(1, sizeof(*entry))) == NULL)
            goto nomem;
        if ((entry->name = strdup(name)) == NULL || insert_at(store, pos, entry) != 0) {
            free(entry->name);
            free(entry);
            goto nomem;
        }
    }
    entry = store->entries[pos];
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

static int
write_lineage(struct store_change *ch, char **cause)
{
    char *path = fsutil_join(ch->name_dir, "lineage.json");
    char *text = lineage_text(&ch->lineage);
    int rc = -E_NOMEM;

    if (path != NULL && text != NULL)
        rc = fsutil_write_atomic(path, text, strlen(text), 0644, cause);
    free(path);
    free(text);
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

static int
write_file_in(const char *dir, const char *file, const char *text, int mode, char **cause)
{
    char *p = fsutil_join(dir, file);
    int rc;

    if (p == NULL)
        return -E_NOMEM;
    rc = fsutil_write_new(p, text, strlen(text), mode, cause);
    free(p);
    return rc;
}

int
store_change_add(struct store_change *ch, const struct store_version *summary,
                 const char *cert_pem, const char *chain_pem, const char *key_pem,
                 const char *meta_json, char **cause)
{
    struct store_version nv, *grown;
    char tmpname[64], *tmp = NULL, *final = NULL, *full = NULL, *meta = NULL;
    unsigned v = 1;
    int rc, is_new = ch->lineage.nversions == 0, renamed = 0;
    cJSON *mo = NULL, *extra = NULL;
    static unsigned counter;

    memset(&nv, 0, sizeof(nv));
    for (size_t i = 0; i < ch->lineage.nversions; i++) {
        if (ch->lineage.versions[i].version >= v)
            v = ch->lineage.versions[i].version + 1;
    }
    if ((rc = fsutil_mkdir_p(ch->name_dir, 0700, cause)) != 0)
        goto out;
    if (is_new && (rc = fsutil_fsync_dir(ch->certs_dir, cause)) != 0)
        goto out;
    /* A directory of that number left aside earlier must not be reused. */
    for (;;) {
        final = version_dir(ch->name_dir, v);
        if (final == NULL) {
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
             __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    if ((tmp = fsutil_join(ch->name_dir, tmpname)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if ((rc = fsutil_mkdir(tmp, 0700, cause)) != 0)
        goto out;
    if ((rc = store_version_copy(&nv, summary)) != 0)
        goto out;
    nv.version = v;
    nv.created = (int64_t)time(NULL);
    nv.has_key = key_pem != NULL;
    err_set(&full, "%s%s", cert_pem, chain_pem);
    mo = version_json(&nv);
    if (meta_json != NULL && (extra = cJSON_Parse(meta_json)) != NULL)
        cJSON_AddItemToObject(mo, "extra", extra);
    meta = mo != NULL ? cJSON_Print(mo) : NULL;
    if (full == NULL || meta == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if ((rc = write_file_in(tmp, "cert.pem", cert_pem, 0644, cause)) != 0 ||
        (rc = write_file_in(tmp, "chain.pem", chain_pem, 0644, cause)) != 0 ||
        (rc = write_file_in(tmp, "fullchain.pem", full, 0644, cause)) != 0 ||
        (key_pem != NULL && (rc = write_file_in(tmp, "privkey.pem", key_pem, 0600, cause)) != 0) ||
        (rc = write_file_in(tmp, "meta.json", meta, 0644, cause)) != 0 ||
        (rc = fsutil_fsync_dir(tmp, cause)) != 0)
        goto out;
    if ((rc = fsutil_rename(tmp, final, cause)) != 0)
        goto out;
    renamed = 1;
    /* The commit point: the lineage names the new version as current. */
    if ((grown = realloc(ch->lineage.versions,
                         (ch->lineage.nversions + 1) * sizeof(*grown))) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    ch->lineage.versions = grown;
    ch->lineage.versions[ch->lineage.nversions++] = nv;
    memset(&nv, 0, sizeof(nv));
    ch->lineage.current = v;
    if ((rc = write_lineage(ch, cause)) != 0) {
        /* Not committed: forget the version in memory too. */
        store_version_clear(&ch->lineage.versions[--ch->lineage.nversions]);
        ch->lineage.current = ch->previous;
        goto out;
    }
    ch->made_current = v;
    publish(ch);
out:
    if (rc != 0) {
        char *ignored = NULL;

        fsutil_remove_tree(renamed ? final : tmp, &ignored);
        free(ignored);
        if (is_new) {
            /* Nothing of a failed first version may stay behind. */
            fsutil_rmdir(ch->name_dir);
        }
    }
    store_version_clear(&nv);
    cJSON_Delete(mo);
    free(tmp);
    free(final);
    free(full);
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
    if ((vd = version_dir(ch->name_dir, target)) == NULL)
        return -E_NOMEM;
    if (!is_dir(vd)) {
        err_set(cause, "the files of version %u of '%s' are missing", target, ch->name);
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
store_change_remove(struct store_change *ch, char **cause)
{
    char aside[96], *dest = NULL;
    int rc;

    /* First the live view, so that no server reads a half-removed lineage. */
    if ((rc = fsutil_unpublish(ch->live_link, cause)) != 0)
        return rc;
    /* Then one rename takes the lineage away; the tree goes after it. */
    snprintf(aside, sizeof(aside), ".removed-%s-%ld", ch->name, (long)getpid());
    if ((dest = fsutil_join(ch->certs_dir, aside)) == NULL)
        return -E_NOMEM;
    if ((rc = fsutil_rename(ch->name_dir, dest, cause)) != 0) {
        /* Put the live view back: the lineage is still there. */
        publish(ch);
        free(dest);
        return rc;
    }
    if (fsutil_remove_tree(dest, NULL) != 0)
        log_warn("store: could not delete %s; it will be at the next start", dest);
    free(dest);
    ch->made_current = 0;
    return 0;
}

void
store_finish(struct store *store, struct store_change *ch, int rc)
{
    int found;
    size_t pos = find_pos(store, ch->name, &found);

    if (found) {
        struct store_cert *entry = store->entries[pos];

        entry->busy = 0;
        if (rc == 0 && ch->kind == STORE_CHANGE_REMOVE) {
            remove_at(store, pos);
        } else if (rc == 0) {
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
store_read_file(const struct store *store, const char *name, unsigned version,
                const char *file, unsigned char **out, size_t *len, char **cause)
{
    char vname[32], *p;
    int rc;

    snprintf(vname, sizeof(vname), "v%u", version);
    if ((p = path3(store->certs, name, vname)) == NULL)
        return -E_NOMEM;
    {
        char *f = fsutil_join(p, file);

        free(p);
        if (f == NULL)
            return -E_NOMEM;
        p = f;
    }
    rc = fsutil_read_file(p, FILE_MAX, out, len, cause);
    free(p);
    return rc;
}
