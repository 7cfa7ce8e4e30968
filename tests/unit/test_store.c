/*
 * The store, as a user sees it on disk: versions numbered 1, 2, 3, live/NAME
 * showing the current version's files, modes, rollback and removal, busy and
 * invalid names, a reopened store giving the same index, and the repair of
 * everything a crash can leave behind (made by hand here).  Certificates are
 * plain fake PEM text: the store does not parse them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "store.h"
#include "tdir.h"
#include "version.h"

#define CHAIN_PEM "-----BEGIN CERTIFICATE-----\nFAKE-INTERMEDIATE\n-----END CERTIFICATE-----\n"

struct fx {
    char dir[TDIR_MAX];
    char log[96];
    struct store *store;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    if (tdir_make(f->dir, "store-test") != 0)
        return -1;
    snprintf(f->log, sizeof(f->log), "%s.log", f->dir);
    if (store_open(f->dir, &f->store, NULL) != 0)
        return -1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    int rc;

    store_close(f->store);
    rc = tdir_remove(f->dir);
    unlink(f->log);
    free(f);
    return rc;
}

/* f->dir/rel, heap. */
/* Contents of f->dir/rel (following links), or NULL when it cannot be read. */
static void
assert_content(const struct fx *f, const char *rel, const char *want)
{
    char *s = tdir_slurp(f->dir, rel);

    if (s == NULL)
        fail_msg("%s/%s cannot be read", f->dir, rel);
    assert_string_equal(s, want);
    free(s);
}

/* Permission bits of f->dir/rel (links followed), -1 when missing. */
/* Does f->dir/rel exist (links not followed)? */
static int
exists(const struct fx *f, const char *rel)
{
    char *p = tdir_at(f->dir, rel);
    int yes = fsutil_exists(p);

    free(p);
    return yes;
}

/* Where the link f->dir/rel points, heap; NULL when it is not a link. */
static char *
link_of(const struct fx *f, const char *rel)
{
    char *p = tdir_at(f->dir, rel), *target = NULL;

    if (fsutil_read_published(p, &target, NULL) != 0)
        target = NULL;
    free(p);
    return target;
}

static void
assert_link(const struct fx *f, const char *rel, const char *want)
{
    char *t = link_of(f, rel);

    if (t == NULL)
        fail_msg("%s/%s is not a link", f->dir, rel);
    assert_string_equal(t, want);
    free(t);
}

/* Sorted names in f->dir/rel joined by ' ', into out. */
static void
list_dir(const struct fx *f, const char *rel, char *out, size_t len)
{
    char *p = tdir_at(f->dir, rel);

    tdir_list(p, out, len);
    free(p);
}

/* Creates a file by hand (not through the store), as a crash would leave it. */
static void
put_file(const struct fx *f, const char *rel, const char *text)
{
    char *p = tdir_at(f->dir, rel);
    FILE *fp = fopen(p, "w");

    if (fp == NULL)
        fail_msg("cannot create %s", p);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    free(p);
}

static void
put_dir(const struct fx *f, const char *rel)
{
    char *p = tdir_at(f->dir, rel);

    assert_int_equal(mkdir(p, 0700), 0);
    free(p);
}

static void
put_link(const struct fx *f, const char *target, const char *rel)
{
    char *p = tdir_at(f->dir, rel);

    unlink(p);
    assert_int_equal(symlink(target, p), 0);
    free(p);
}

/* The fake PEM texts of version n of name. */
static void
fake_cert(char *buf, size_t len, const char *name, unsigned n)
{
    snprintf(buf, len, "-----BEGIN CERTIFICATE-----\nFAKE-%s-%u\n-----END CERTIFICATE-----\n",
             name, n);
}

static void
fake_key(char *buf, size_t len, const char *name, unsigned n)
{
    snprintf(buf, len, "-----BEGIN PRIVATE KEY-----\nKEY-%s-%u\n-----END PRIVATE KEY-----\n", name,
             n);
}

static char *dns_names[] = {"www.example.test", "example.test"};
static char *ip_addrs[] = {"192.0.2.1"};

static struct store_version
summary(const char *cn)
{
    struct store_version v;

    memset(&v, 0, sizeof(v));
    v.version = 77; /* ignored: the store numbers versions */
    v.created = 42; /* ignored: the store stamps them */
    v.source = CERT_SOURCE_ACME;
    v.not_before = 1700000000;
    v.not_after = 1800000000;
    v.serial = (char *)"0a1b2c";
    v.fingerprint = (char *)"AA:BB:CC";
    v.subject = (char *)"CN=www.example.test";
    v.common_name = (char *)cn;
    v.issuer = (char *)"CN=Fake CA";
    v.key_desc = (char *)"EC P-256";
    v.dns = dns_names;
    v.ndns = 2;
    v.ips = ip_addrs;
    v.nips = 1;
    v.chain_len = 1;
    return v;
}

/*
 * Adds version `n` of name (fake PEM texts that name n) through the whole
 * change protocol; with_key 0 stores no key.  Returns the version the store
 * made current.
 */
static unsigned
add_version(struct fx *f, const char *name, unsigned n, int with_key)
{
    struct store_change *ch = NULL;
    struct store_version v = summary(name);
    char cert[128], key[128], *cause = NULL;
    unsigned made;
    int rc;

    fake_cert(cert, sizeof(cert), name, n);
    fake_key(key, sizeof(key), name, n);
    assert_int_equal(store_begin(f->store, name, STORE_CHANGE_ADD, &ch, NULL), 0);
    rc = store_change_add(ch, &v, cert, CHAIN_PEM, with_key ? key : NULL,
                          "{\"order\": \"https://ca.test/order/1\"}", &cause);
    if (rc != 0)
        fail_msg("adding to %s: %s", name, cause);
    made = store_change_version(ch);
    store_finish(f->store, ch, rc);
    return made;
}

static int
run_rollback(struct fx *f, const char *name, unsigned to, unsigned *made, char **cause)
{
    struct store_change *ch = NULL;
    int rc = store_begin(f->store, name, STORE_CHANGE_ROLLBACK, &ch, cause);

    if (rc != 0)
        return rc;
    rc = store_change_rollback(ch, to, cause);
    if (made != NULL)
        *made = store_change_version(ch);
    store_finish(f->store, ch, rc);
    return rc;
}

static int
run_remove(struct fx *f, const char *name, char **cause)
{
    struct store_change *ch = NULL;
    int rc = store_begin(f->store, name, STORE_CHANGE_REMOVE, &ch, cause);

    if (rc != 0)
        return rc;
    rc = store_change_remove(ch, cause);
    store_finish(f->store, ch, rc);
    return rc;
}

static void
reopen(struct fx *f)
{
    char *cause = NULL;

    store_close(f->store);
    f->store = NULL;
    if (store_open(f->dir, &f->store, &cause) != 0)
        fail_msg("store_open: %s", cause);
}

/* Log capture: the agent's log goes to f->log while a repair runs. */
static int saved_stderr = -1;

static void
capture_log(struct fx *f)
{
    int fd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    assert_true(fd >= 0);
    fflush(stderr);
    saved_stderr = dup(2);
    assert_true(saved_stderr >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    close(fd);
    log_set_level(LOG_LEVEL_INFO);
}

/* Ends the capture; returns what was logged (heap). */
static char *
captured_log(struct fx *f)
{
    unsigned char *text = NULL;
    size_t len;

    log_set_level(LOG_LEVEL_ERROR);
    fflush(stderr);
    assert_int_equal(dup2(saved_stderr, 2), 2);
    close(saved_stderr);
    saved_stderr = -1;
    assert_int_equal(fsutil_read_file(f->log, 1 << 20, &text, &len, NULL), 0);
    return (char *)text;
}

static void
assert_logged(const char *log, const char *part)
{
    if (strstr(log, part) == NULL)
        fail_msg("the log does not say \"%s\":\n%s", part, log);
}

/* Tests. */

static void
test_versions_numbered_and_live_shows_current(void **state)
{
    struct fx *f = *state;
    const struct store_cert *c;
    const struct store_version *cur;
    char cert[128], key[128], full[256], names[512];
    static const char *const files[] = {"cert.pem", "chain.pem", "fullchain.pem", "privkey.pem",
                                        "meta.json"};

    assert_int_equal(add_version(f, "web", 1, 1), 1);
    assert_int_equal(add_version(f, "web", 2, 1), 2);
    assert_int_equal(add_version(f, "web", 3, 1), 3);
    c = store_find(f->store, "web");
    assert_non_null(c);
    assert_string_equal(c->name, "web");
    assert_int_equal(c->current, 3);
    assert_int_equal(c->nversions, 3);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(c->versions[i].version, i + 1);
    cur = store_current(c);
    assert_non_null(cur);
    assert_int_equal(cur->version, 3);
    assert_true(cur->created >= (int64_t)time(NULL) - 60);
    assert_true(cur->has_key);
    assert_string_equal(cur->common_name, "web");
    assert_string_equal(cur->dns[1], "example.test");
    assert_ptr_equal(store_version_get(c, 2), &c->versions[1]);
    assert_null(store_version_get(c, 4));

    /* The files of v3, and live/web showing exactly those. */
    fake_cert(cert, sizeof(cert), "web", 3);
    fake_key(key, sizeof(key), "web", 3);
    snprintf(full, sizeof(full), "%s%s", cert, CHAIN_PEM);
    assert_content(f, "certs/web/v3/cert.pem", cert);
    assert_content(f, "certs/web/v3/chain.pem", CHAIN_PEM);
    assert_content(f, "certs/web/v3/fullchain.pem", full);
    assert_content(f, "certs/web/v3/privkey.pem", key);
    assert_link(f, "live/web", "../certs/web/v3");
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char a[64], b[64], *x, *y;

        snprintf(a, sizeof(a), "certs/web/v3/%s", files[i]);
        snprintf(b, sizeof(b), "live/web/%s", files[i]);
        x = tdir_slurp(f->dir, a);
        y = tdir_slurp(f->dir, b);
        assert_non_null(x);
        assert_non_null(y);
        assert_string_equal(x, y);
        free(x);
        free(y);
    }
    /* Older versions are kept unchanged; nothing temporary is left. */
    fake_cert(cert, sizeof(cert), "web", 1);
    assert_content(f, "certs/web/v1/cert.pem", cert);
    list_dir(f, "certs/web", names, sizeof(names));
    assert_string_equal(names, "lineage.json v1 v2 v3");
    list_dir(f, "certs/web/v3", names, sizeof(names));
    assert_string_equal(names, "cert.pem chain.pem fullchain.pem meta.json privkey.pem");
    list_dir(f, "live", names, sizeof(names));
    assert_string_equal(names, "web");
}

static void
test_modes(void **state)
{
    struct fx *f = *state;

    add_version(f, "web", 1, 1);
    assert_int_equal(tdir_mode(f->dir, "certs/web/v1/privkey.pem"), 0600);
    assert_int_equal(tdir_mode(f->dir, "live/web/privkey.pem"), 0600);
    assert_int_equal(tdir_mode(f->dir, "certs/web/v1/cert.pem"), 0644);
    assert_int_equal(tdir_mode(f->dir, "certs/web/v1/chain.pem"), 0644);
    assert_int_equal(tdir_mode(f->dir, "certs/web/v1/fullchain.pem"), 0644);
    assert_int_equal(tdir_mode(f->dir, "certs/web/v1/meta.json"), 0644);
    assert_int_equal(tdir_mode(f->dir, "certs/web/lineage.json"), 0644);
    assert_int_equal(tdir_mode(f->dir, "certs"), 0700);
    assert_int_equal(tdir_mode(f->dir, "certs/web"), 0700);
    assert_int_equal(tdir_mode(f->dir, "certs/web/v1"), 0700);
}

static void
test_lineage_and_meta_json(void **state)
{
    struct fx *f = *state;
    char *text;
    cJSON *root, *versions, *v, *extra;

    add_version(f, "web", 1, 1);
    add_version(f, "web", 2, 0);
    assert_false(store_current(store_find(f->store, "web"))->has_key);
    assert_false(exists(f, "certs/web/v2/privkey.pem"));
    assert_false(exists(f, "live/web/privkey.pem"));

    text = tdir_slurp(f->dir, "certs/web/lineage.json");
    root = cJSON_Parse(text);
    assert_non_null(root);
    assert_int_equal(cJSON_GetObjectItem(root, "schema")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItem(root, "name")->valuestring, "web");
    assert_int_equal(cJSON_GetObjectItem(root, "current")->valueint, 2);
    versions = cJSON_GetObjectItem(root, "versions");
    assert_int_equal(cJSON_GetArraySize(versions), 2);
    v = cJSON_GetArrayItem(versions, 0);
    assert_int_equal(cJSON_GetObjectItem(v, "version")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItem(v, "source")->valuestring, "acme");
    assert_string_equal(cJSON_GetObjectItem(v, "key")->valuestring, "EC P-256");
    assert_string_equal(cJSON_GetObjectItem(v, "fingerprint")->valuestring, "AA:BB:CC");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(v, "has_key")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(v, "dns")), 2);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(v, "ips"), 0)->valuestring,
                        "192.0.2.1");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(versions, 1), "has_key")));
    cJSON_Delete(root);
    free(text);

    /* meta.json: the same summary plus the caller's "extra". */
    text = tdir_slurp(f->dir, "certs/web/v2/meta.json");
    root = cJSON_Parse(text);
    assert_non_null(root);
    assert_int_equal(cJSON_GetObjectItem(root, "version")->valueint, 2);
    assert_int_equal((long long)cJSON_GetObjectItem(root, "not_after")->valuedouble, 1800000000LL);
    extra = cJSON_GetObjectItem(root, "extra");
    assert_true(cJSON_IsObject(extra));
    assert_string_equal(cJSON_GetObjectItem(extra, "order")->valuestring,
                        "https://ca.test/order/1");
    cJSON_Delete(root);
    free(text);
}

static void
test_rollback(void **state)
{
    struct fx *f = *state;
    char cert[128], full[256], *cause = NULL;
    unsigned made = 0;
    struct store_change *ch = NULL;

    add_version(f, "web", 1, 1);
    add_version(f, "web", 2, 1);
    add_version(f, "web", 3, 1);
    /* 0: the version just below the current one. */
    assert_int_equal(run_rollback(f, "web", 0, &made, NULL), 0);
    assert_int_equal(made, 2);
    assert_int_equal(store_find(f->store, "web")->current, 2);
    fake_cert(cert, sizeof(cert), "web", 2);
    assert_content(f, "live/web/cert.pem", cert);
    assert_link(f, "live/web", "../certs/web/v2");

    assert_int_equal(store_begin(f->store, "web", STORE_CHANGE_ROLLBACK, &ch, NULL), 0);
    assert_int_equal(store_change_previous(ch), 2);
    assert_int_equal(store_change_rollback(ch, 1, NULL), 0);
    assert_int_equal(store_change_version(ch), 1);
    store_finish(f->store, ch, 0);
    fake_cert(cert, sizeof(cert), "web", 1);
    snprintf(full, sizeof(full), "%s%s", cert, CHAIN_PEM);
    assert_content(f, "live/web/fullchain.pem", full);

    /* Refusals leave everything as it was. */
    assert_int_equal(run_rollback(f, "web", 0, NULL, &cause), -E_NOT_FOUND);
    assert_non_null(strstr(cause, "web"));
    assert_int_equal(run_rollback(f, "web", 1, NULL, &cause), -E_BAD_INPUT);
    assert_non_null(strstr(cause, "already current"));
    assert_int_equal(run_rollback(f, "web", 9, NULL, &cause), -E_NOT_FOUND);
    assert_non_null(strstr(cause, "no version 9"));
    assert_int_equal(store_find(f->store, "web")->current, 1);
    assert_link(f, "live/web", "../certs/web/v1");
    /* Forward again, to the newest. */
    assert_int_equal(run_rollback(f, "web", 3, &made, NULL), 0);
    assert_int_equal(made, 3);
    /* A new version after a rollback takes the next free number. */
    assert_int_equal(run_rollback(f, "web", 1, NULL, NULL), 0);
    assert_int_equal(add_version(f, "web", 4, 1), 4);
    reopen(f);
    assert_int_equal(store_find(f->store, "web")->current, 4);
    free(cause);
}

static void
test_remove_and_add_again(void **state)
{
    struct fx *f = *state;
    char names[256], *cause = NULL;

    add_version(f, "web", 1, 1);
    add_version(f, "web", 2, 1);
    add_version(f, "other", 1, 1);
    assert_int_equal(run_remove(f, "web", NULL), 0);
    assert_null(store_find(f->store, "web"));
    assert_int_equal(store_count(f->store), 1);
    assert_false(exists(f, "certs/web"));
    assert_false(exists(f, "live/web"));
    list_dir(f, "certs", names, sizeof(names));
    assert_string_equal(names, "other");
    list_dir(f, "live", names, sizeof(names));
    assert_string_equal(names, "other");
    assert_int_equal(run_remove(f, "web", &cause), -E_NOT_FOUND);
    assert_non_null(strstr(cause, "no certificate named 'web'"));
    /* The name starts over at version 1. */
    assert_int_equal(add_version(f, "web", 5, 1), 1);
    assert_int_equal(store_find(f->store, "web")->nversions, 1);
    reopen(f);
    assert_int_equal(store_count(f->store), 2);
    assert_int_equal(store_find(f->store, "web")->current, 1);
    free(cause);
}

static void
assert_same_version(const struct store_version *a, const struct store_version *b)
{
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->source, b->source);
    assert_int_equal(a->created, b->created);
    assert_int_equal(a->not_before, b->not_before);
    assert_int_equal(a->not_after, b->not_after);
    assert_string_equal(a->serial, b->serial);
    assert_string_equal(a->fingerprint, b->fingerprint);
    assert_string_equal(a->subject, b->subject);
    assert_string_equal(a->common_name, b->common_name);
    assert_string_equal(a->issuer, b->issuer);
    assert_string_equal(a->key_desc, b->key_desc);
    assert_int_equal(a->ndns, b->ndns);
    for (size_t i = 0; i < a->ndns; i++)
        assert_string_equal(a->dns[i], b->dns[i]);
    assert_int_equal(a->nips, b->nips);
    for (size_t i = 0; i < a->nips; i++)
        assert_string_equal(a->ips[i], b->ips[i]);
    assert_int_equal(a->has_key, b->has_key);
    assert_int_equal(a->chain_len, b->chain_len);
}

/*
 * A revocation is recorded in lineage.json for the version it names (0: the
 * current one), is kept by a reopen, and leaves the version's files alone.
 */
static void
test_revocation_recorded(void **state)
{
    struct fx *f = *state;
    struct store_change *ch = NULL;
    const struct store_cert *c;
    char *cause = NULL, *lineage, *meta;

    add_version(f, "web", 1, 1);
    add_version(f, "web", 2, 1);
    meta = tdir_slurp(f->dir, "certs/web/v2/meta.json");
    assert_non_null(meta);
    assert_null(store_version_get(store_find(f->store, "web"), 2)->revoked_reason);
    assert_int_equal(store_begin(f->store, "web", STORE_CHANGE_REVOKE, &ch, NULL), 0);
    assert_int_equal(store_change_revoke(ch, 0, 1750000000, "keyCompromise", &cause), 0);
    store_finish(f->store, ch, 0);
    c = store_find(f->store, "web");
    assert_int_equal(c->current, 2);
    assert_int_equal(store_version_get(c, 2)->revoked, 1750000000);
    assert_string_equal(store_version_get(c, 2)->revoked_reason, "keyCompromise");
    assert_int_equal(store_version_get(c, 1)->revoked, 0);
    lineage = tdir_slurp(f->dir, "certs/web/lineage.json");
    assert_non_null(strstr(lineage, "\"revoked_reason\":\t\"keyCompromise\""));
    free(lineage);
    assert_content(f, "certs/web/v2/meta.json", meta);
    free(meta);
    /* An older version by number; no reason: "unspecified". */
    assert_int_equal(store_begin(f->store, "web", STORE_CHANGE_REVOKE, &ch, NULL), 0);
    assert_int_equal(store_change_revoke(ch, 1, 1750000100, NULL, NULL), 0);
    store_finish(f->store, ch, 0);
    /* A version that does not exist: refused, nothing changes. */
    assert_int_equal(store_begin(f->store, "web", STORE_CHANGE_REVOKE, &ch, NULL), 0);
    assert_int_equal(store_change_revoke(ch, 9, 1750000200, "superseded", &cause), -E_NOT_FOUND);
    assert_non_null(strstr(cause, "no version 9"));
    store_finish(f->store, ch, -E_NOT_FOUND);
    /* Kept across a restart. */
    reopen(f);
    c = store_find(f->store, "web");
    assert_int_equal(store_version_get(c, 2)->revoked, 1750000000);
    assert_string_equal(store_version_get(c, 2)->revoked_reason, "keyCompromise");
    assert_int_equal(store_version_get(c, 1)->revoked, 1750000100);
    assert_string_equal(store_version_get(c, 1)->revoked_reason, "unspecified");
    /* A new version is not revoked. */
    add_version(f, "web", 3, 1);
    assert_int_equal(store_current(store_find(f->store, "web"))->revoked, 0);
    free(cause);
}

static void
test_reopen_gives_same_index(void **state)
{
    struct fx *f = *state;
    static const char *const order[] = {"zeta", "alpha", "mid.example", "Alpha-2", "b_1"};
    struct store_version before[5];
    unsigned current[5];
    size_t n = sizeof(order) / sizeof(order[0]);
    char names[5][16];

    for (size_t i = 0; i < n; i++) {
        for (unsigned v = 1; v <= i + 1; v++)
            add_version(f, order[i], v, (v & 1) != 0);
    }
    run_rollback(f, "mid.example", 1, NULL, NULL);
    assert_int_equal(store_count(f->store), n);
    for (size_t i = 0; i < n; i++) {
        const struct store_cert *c = store_at(f->store, i);

        if (i > 0)
            assert_true(strcmp(store_at(f->store, i - 1)->name, c->name) < 0);
        snprintf(names[i], sizeof(names[i]), "%s", c->name);
        current[i] = c->current;
        assert_int_equal(store_version_copy(&before[i], store_current(c)), 0);
    }
    reopen(f);
    assert_int_equal(store_count(f->store), n);
    for (size_t i = 0; i < n; i++) {
        const struct store_cert *c = store_at(f->store, i);

        assert_string_equal(c->name, names[i]);
        assert_int_equal(c->current, current[i]);
        assert_false(c->busy);
        assert_ptr_equal(store_find(f->store, names[i]), c);
        assert_same_version(store_current(c), &before[i]);
        store_version_clear(&before[i]);
    }
    assert_int_equal(store_find(f->store, "zeta")->nversions, 1);
    assert_int_equal(store_find(f->store, "b_1")->nversions, 5);
    assert_int_equal(store_find(f->store, "mid.example")->current, 1);
    assert_string_equal(store_state_dir(f->store), f->dir);
}

static void
test_busy_name(void **state)
{
    struct fx *f = *state;
    struct store_change *a = NULL, *b = NULL;
    const struct store_cert *entry;
    struct store_version v = summary("x");
    char *cause = NULL;

    /* A new name is reserved by a placeholder that store_find does not show. */
    assert_int_equal(store_begin(f->store, "new", STORE_CHANGE_ADD, &a, NULL), 0);
    assert_null(store_find(f->store, "new"));
    assert_int_equal(store_count(f->store), 1);
    entry = store_at(f->store, 0);
    assert_int_equal(entry->current, 0);
    assert_true(entry->busy);
    assert_int_equal(store_begin(f->store, "new", STORE_CHANGE_ADD, &b, &cause), -E_BUSY);
    assert_null(b);
    assert_non_null(strstr(cause, "'new'"));
    assert_int_equal(store_begin(f->store, "new", STORE_CHANGE_REMOVE, &b, &cause), -E_BUSY);
    /* The change fails: the placeholder goes, and nothing is on disk. */
    store_finish(f->store, a, -E_IO);
    assert_int_equal(store_count(f->store), 0);
    assert_false(exists(f, "certs/new"));

    /* A change that fails inside (bad metadata) leaves nothing either. */
    assert_int_equal(store_begin(f->store, "new", STORE_CHANGE_ADD, &a, NULL), 0);
    assert_int_equal(store_change_add(a, &v, "CERT\n", "", NULL, "[1, 2]", &cause), -E_BAD_INPUT);
    assert_non_null(strstr(cause, "JSON object"));
    store_finish(f->store, a, -E_BAD_INPUT);
    assert_int_equal(store_count(f->store), 0);
    assert_false(exists(f, "certs/new"));

    /* An existing name is busy during its change and free after it. */
    add_version(f, "web", 1, 1);
    add_version(f, "web", 2, 1);
    assert_int_equal(store_begin(f->store, "web", STORE_CHANGE_ROLLBACK, &a, NULL), 0);
    assert_true(store_find(f->store, "web")->busy);
    assert_int_equal(store_begin(f->store, "web", STORE_CHANGE_ADD, &b, &cause), -E_BUSY);
    assert_int_equal(store_begin(f->store, "web", STORE_CHANGE_REMOVE, &b, &cause), -E_BUSY);
    /* Other names are not affected. */
    assert_int_equal(add_version(f, "other", 1, 1), 1);
    assert_int_equal(store_change_rollback(a, 0, NULL), 0);
    /* Until finish, the index shows the old state. */
    assert_int_equal(store_find(f->store, "web")->current, 2);
    store_finish(f->store, a, 0);
    assert_false(store_find(f->store, "web")->busy);
    assert_int_equal(store_find(f->store, "web")->current, 1);
    assert_int_equal(add_version(f, "web", 3, 1), 3);
    free(cause);
}

static void
test_names_validated(void **state)
{
    struct fx *f = *state;
    static const char *const bad[] = {"",          ".",      "..",   ".hidden", "-dash",
                                      "_under",    "a/b",    "../x", "a b",     "caf\xc3\xa9",
                                      "tab\there", "semi;x", "a\\b"};
    static const char *const good[] = {"a", "0", "www.example.com", "web_2-b.test", "A.-_"};
    char long_name[66], *cause = NULL, names[64];
    struct store_change *ch = NULL;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (store_name_valid(bad[i], &cause) != -E_BAD_INPUT)
            fail_msg("'%s' was accepted", bad[i]);
        assert_non_null(cause);
        assert_int_equal(store_begin(f->store, bad[i], STORE_CHANGE_ADD, &ch, NULL), -E_BAD_INPUT);
        assert_null(ch);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(store_name_valid(good[i], NULL), 0);
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    assert_int_equal(store_name_valid(long_name, NULL), 0);
    long_name[64] = 'a';
    long_name[65] = '\0';
    assert_int_equal(store_name_valid(long_name, &cause), -E_BAD_INPUT);
    assert_non_null(strstr(cause, "64"));
    assert_int_equal(store_name_valid(NULL, NULL), -E_BAD_INPUT);
    /* Nothing was created for the refused names. */
    assert_int_equal(store_count(f->store), 0);
    list_dir(f, "certs", names, sizeof(names));
    assert_string_equal(names, "");
    free(cause);
}

static void
test_unknown_names_and_files(void **state)
{
    struct fx *f = *state;
    unsigned char *data = NULL;
    size_t len = 0;
    char cert[128], key[128], *cause = NULL;

    assert_null(store_find(f->store, "nope"));
    assert_int_equal(run_rollback(f, "nope", 0, NULL, &cause), -E_NOT_FOUND);
    assert_non_null(strstr(cause, "no certificate named 'nope'"));
    assert_int_equal(run_remove(f, "nope", &cause), -E_NOT_FOUND);
    assert_int_equal(store_read_file(f->store, "nope", 1, "cert.pem", &data, &len, &cause),
                     -E_NOT_FOUND);

    add_version(f, "web", 1, 1);
    fake_cert(cert, sizeof(cert), "web", 1);
    fake_key(key, sizeof(key), "web", 1);
    assert_int_equal(store_read_file(f->store, "web", 1, "cert.pem", &data, &len, NULL), 0);
    assert_int_equal(len, strlen(cert));
    assert_string_equal((char *)data, cert);
    free(data);
    assert_int_equal(store_read_file(f->store, "web", 1, "privkey.pem", &data, &len, NULL), 0);
    assert_string_equal((char *)data, key);
    free(data);
    assert_int_equal(store_read_file(f->store, "web", 2, "cert.pem", &data, &len, NULL),
                     -E_NOT_FOUND);
    assert_int_equal(store_read_file(f->store, "web", 0, "cert.pem", &data, &len, NULL),
                     -E_NOT_FOUND);
    /* Only the files of a version can be read, and only under a valid name. */
    assert_int_equal(store_read_file(f->store, "web", 1, "../lineage.json", &data, &len, &cause),
                     -E_BAD_INPUT);
    assert_int_equal(store_read_file(f->store, "..", 1, "cert.pem", &data, &len, NULL),
                     -E_BAD_INPUT);
    assert_null(data);
    free(cause);
}

static void
test_failed_write_leaves_no_trace(void **state)
{
    struct fx *f = *state;
    char names[256];
    int status;
    pid_t pid;

    add_version(f, "web", 1, 1);
    /*
     * In a child, a file size limit makes the second version's write fail
     * half way, as a full disk would: the change fails with words naming the
     * file, and no temp directory or version is left.
     */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static char big[65536];
        struct rlimit rl = {16384, 16384};
        struct store_version v = summary("web");
        struct store_change *ch = NULL;
        char *cause = NULL;
        int rc;

        memset(big, 'C', sizeof(big) - 1);
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0 ||
            store_begin(f->store, "web", STORE_CHANGE_ADD, &ch, NULL) != 0)
            _exit(2);
        rc = store_change_add(ch, &v, big, "", "KEY\n", NULL, &cause);
        store_finish(f->store, ch, rc);
        _exit(rc != 0 && cause != NULL && strstr(cause, "cert.pem") != NULL &&
                      strstr(cause, "File too large") != NULL
                  ? 0
                  : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    list_dir(f, "certs/web", names, sizeof(names));
    assert_string_equal(names, "lineage.json v1");
    assert_link(f, "live/web", "../certs/web/v1");
    reopen(f);
    assert_int_equal(store_find(f->store, "web")->nversions, 1);
    assert_int_equal(add_version(f, "web", 2, 1), 2);
}

static void
test_crash_leftovers_repaired(void **state)
{
    struct fx *f = *state;
    char cert[128], names[512], *log;
    const struct store_cert *c;

    add_version(f, "web", 1, 1);
    add_version(f, "web", 2, 1);
    add_version(f, "ok", 1, 1);
    add_version(f, "api", 1, 1);
    store_close(f->store);
    f->store = NULL;

    /* A version being written (temp name) when the agent stopped. */
    put_dir(f, "certs/web/.tmp-v3-x");
    put_file(f, "certs/web/.tmp-v3-x/cert.pem", "half");
    /* A version renamed into place, but its lineage never written. */
    put_dir(f, "certs/web/v9");
    put_file(f, "certs/web/v9/cert.pem", "UNCOMMITTED\n");
    put_file(f, "certs/web/v9/privkey.pem", "ONLY-COPY-OF-A-KEY\n");
    /* lineage.json's own temp file. */
    put_file(f, "certs/web/lineage.json.tmp-123-1", "{");
    /* A first version being written: certs/NEW without lineage.json. */
    put_dir(f, "certs/NEW");
    put_dir(f, "certs/NEW/.tmp-v1-x");
    put_file(f, "certs/NEW/.tmp-v1-x/privkey.pem", "half");
    /* A first version renamed into place, lineage not yet written. */
    put_dir(f, "certs/NEW2");
    put_dir(f, "certs/NEW2/v1");
    put_file(f, "certs/NEW2/v1/privkey.pem", "KEY-NEW2\n");
    /* ... its lineage.json being written beside it (a kill before the rename). */
    put_file(f, "certs/NEW2/lineage.json.tmp-77-1", "{\"versions\"");
    /* A removal cut short after its rename. */
    put_dir(f, "certs/.removed-gone-1-1");
    put_file(f, "certs/.removed-gone-1-1/x", "x");
    /* live/ links: an old version, a name that no longer exists, a missing one. */
    put_link(f, "../certs/web/v1", "live/web");
    put_link(f, "../certs/gone/v1", "live/gone");
    put_link(f, "../certs/web/v1", "live/web.tmp-99-1");
    {
        char *p = tdir_at(f->dir, "live/ok");

        assert_int_equal(unlink(p), 0);
        free(p);
    }
    /* live/api as a real directory, from an older layout. */
    {
        char *p = tdir_at(f->dir, "live/api");

        assert_int_equal(unlink(p), 0);
        free(p);
        put_dir(f, "live/api");
        put_file(f, "live/api/cert.pem", "OLD LAYOUT\n");
    }

    capture_log(f);
    assert_int_equal(store_open(f->dir, &f->store, NULL), 0);
    log = captured_log(f);

    /* The index: the three lineages, web still at v2. */
    assert_int_equal(store_count(f->store), 3);
    c = store_find(f->store, "web");
    assert_non_null(c);
    assert_int_equal(c->current, 2);
    assert_int_equal(c->nversions, 2);
    assert_null(store_find(f->store, "NEW"));
    assert_null(store_find(f->store, "NEW2"));

    /* certs/: only committed versions are left. */
    list_dir(f, "certs", names, sizeof(names));
    assert_string_equal(names, "api ok web");
    list_dir(f, "certs/web", names, sizeof(names));
    assert_string_equal(names, "lineage.json v1 v2");
    /* Uncommitted complete versions may hold keys: kept under orphans/. */
    list_dir(f, "orphans", names, sizeof(names));
    assert_true(strncmp(names, "NEW2-", 5) == 0);
    assert_non_null(strstr(names, " web-v9-"));
    {
        char rel[600], *space = strchr(names, ' ');

        *space = '\0';
        snprintf(rel, sizeof(rel), "orphans/%s/v1/privkey.pem", names);
        assert_content(f, rel, "KEY-NEW2\n");
        /* Set aside without the temp files of the cut-short write (the long kill loop). */
        snprintf(rel, sizeof(rel), "orphans/%s", names);
        {
            char inner[512];

            list_dir(f, rel, inner, sizeof(inner));
            assert_string_equal(inner, "v1");
        }
        snprintf(rel, sizeof(rel), "orphans/%s/privkey.pem", space + 1);
        assert_content(f, rel, "ONLY-COPY-OF-A-KEY\n");
    }

    /* live/: every name shows its current version; stale links are gone. */
    list_dir(f, "live", names, sizeof(names));
    assert_string_equal(names, "api ok web");
    assert_link(f, "live/web", "../certs/web/v2");
    assert_link(f, "live/ok", "../certs/ok/v1");
    assert_link(f, "live/api", "../certs/api/v1");
    fake_cert(cert, sizeof(cert), "web", 2);
    assert_content(f, "live/web/cert.pem", cert);
    fake_cert(cert, sizeof(cert), "api", 1);
    assert_content(f, "live/api/cert.pem", cert);

    /* Each repair is logged with the certificate's name. */
    assert_logged(log, "'web': removed");
    assert_logged(log, ".tmp-v3-x");
    assert_logged(log, "lineage.json.tmp-123-1");
    assert_logged(log, "'web': moved");
    assert_logged(log, "'NEW': removed");
    assert_logged(log, "'NEW2': moved");
    assert_logged(log, "live/web showed another version; it now shows version 2");
    assert_logged(log, "live/ok was missing");
    assert_logged(log, "'api': live/api");
    assert_logged(log, "removed live/gone: there is no certificate 'gone'");
    assert_logged(log, ".removed-gone-1-1");
    free(log);

    /* A second open finds nothing to repair. */
    capture_log(f);
    reopen(f);
    log = captured_log(f);
    assert_string_equal(log, "");
    free(log);
    /* The next version takes the next number. */
    assert_int_equal(add_version(f, "web", 3, 1), 3);
}

static void
test_missing_current_version_falls_back(void **state)
{
    struct fx *f = *state;
    char cert[128], *log, *p;

    add_version(f, "web", 1, 1);
    add_version(f, "web", 2, 1);
    add_version(f, "web", 3, 1);
    store_close(f->store);
    f->store = NULL;
    p = tdir_at(f->dir, "certs/web/v3");
    assert_int_equal(fsutil_remove_tree(p, NULL), 0);
    free(p);

    capture_log(f);
    assert_int_equal(store_open(f->dir, &f->store, NULL), 0);
    log = captured_log(f);
    assert_int_equal(store_find(f->store, "web")->current, 2);
    assert_link(f, "live/web", "../certs/web/v2");
    fake_cert(cert, sizeof(cert), "web", 2);
    assert_content(f, "live/web/cert.pem", cert);
    assert_logged(log, "'web': current version 3 is missing; using version 2");
    free(log);
    /* Number 3 stays taken by the lineage: the next version is 4. */
    assert_int_equal(add_version(f, "web", 4, 1), 4);
}

static void
test_damaged_lineage_does_not_hide_others(void **state)
{
    struct fx *f = *state;
    struct store_version v = summary("bad");
    struct store_change *ch = NULL;
    char *log, *cause = NULL;

    add_version(f, "aaa", 1, 1);
    add_version(f, "bad", 1, 1);
    add_version(f, "zzz", 1, 1);
    store_close(f->store);
    f->store = NULL;
    put_file(f, "certs/bad/lineage.json", "{\"schema\": 1, \"name\": \"bad\", \"current\": ");

    capture_log(f);
    assert_int_equal(store_open(f->dir, &f->store, NULL), 0);
    log = captured_log(f);
    assert_int_equal(store_count(f->store), 2);
    assert_non_null(store_find(f->store, "aaa"));
    assert_non_null(store_find(f->store, "zzz"));
    assert_null(store_find(f->store, "bad"));
    assert_logged(log, "skipping 'bad'");
    free(log);
    /* Its files are left alone for a person to look at, its live link too. */
    assert_int_equal(tdir_mode(f->dir, "certs/bad/v1/privkey.pem"), 0600);
    assert_link(f, "live/bad", "../certs/bad/v1");
    /* And a new certificate of that name does not overwrite them. */
    assert_int_equal(store_begin(f->store, "bad", STORE_CHANGE_ADD, &ch, NULL), 0);
    assert_int_equal(store_change_add(ch, &v, "CERT\n", "", "KEY\n", NULL, &cause), -E_EXISTS);
    assert_non_null(strstr(cause, "'bad'"));
    store_finish(f->store, ch, -E_EXISTS);
    assert_int_equal(store_count(f->store), 2);
    assert_content(f, "certs/bad/lineage.json",
                   "{\"schema\": 1, \"name\": \"bad\", \"current\": ");
    free(cause);
}

static void
test_newer_schema_refused(void **state)
{
    struct fx *f = *state;
    char *cause = NULL, *text;

    store_close(f->store);
    f->store = NULL;
    put_file(f, "state.json", "{\"schema\": 99}\n");
    assert_int_equal(store_open(f->dir, &f->store, &cause), -E_VERSION);
    assert_null(f->store);
    assert_non_null(strstr(cause, "newer"));
    free(cause);
    /* An older agent's store: opening it records who uses it now. */
    put_file(f, "state.json", "{\"schema\": 1, \"written_by\": \"23.1.10\"}\n");
    assert_int_equal(store_open(f->dir, &f->store, NULL), 0);
    text = tdir_slurp(f->dir, "state.json");
    assert_non_null(strstr(text, "\"written_by\": \"" CERTAGENT_VERSION "\""));
    free(text);
}

/* Changes to different names run in pool threads at the same time. */
struct worker {
    struct store_change *change;
    char name[16];
    int rc;
};

static void
run_worker(void *arg)
{
    struct worker *w = arg;
    struct store_version v = summary(w->name);
    char cert[128], key[128];

    fake_cert(cert, sizeof(cert), w->name, 1);
    fake_key(key, sizeof(key), w->name, 1);
    w->rc = store_change_add(w->change, &v, cert, CHAIN_PEM, key, NULL, NULL);
}

static void
test_parallel_changes(void **state)
{
    struct fx *f = *state;
    struct worker w[8];
    uv_thread_t t[8];

    add_version(f, "n3", 1, 1);
    for (int i = 0; i < 8; i++) {
        snprintf(w[i].name, sizeof(w[i].name), "n%d", i);
        assert_int_equal(store_begin(f->store, w[i].name, STORE_CHANGE_ADD, &w[i].change, NULL),
                         0);
    }
    for (int i = 0; i < 8; i++)
        assert_int_equal(uv_thread_create(&t[i], run_worker, &w[i]), 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(uv_thread_join(&t[i]), 0);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(w[i].rc, 0);
        assert_int_equal(store_change_version(w[i].change), i == 3 ? 2 : 1);
        store_finish(f->store, w[i].change, w[i].rc);
    }
    reopen(f);
    assert_int_equal(store_count(f->store), 8);
    for (int i = 0; i < 8; i++) {
        char rel[32], cert[128];

        snprintf(rel, sizeof(rel), "live/n%d/cert.pem", i);
        fake_cert(cert, sizeof(cert), w[i].name, 1);
        assert_content(f, rel, cert);
    }
}

/*
 * 10,000 lineages written by hand (as the agent would have left them): the
 * open loads them all, sorted, without repairs.  Prints the time it took.
 */
static void
test_many_lineages(void **state)
{
    struct fx *f = *state;
    enum { N = 10000 };
    struct timespec t0, t1;
    char name[16], rel[64], text[512];
    double ms;

    for (int i = N - 1; i >= 0; i--) {
        snprintf(name, sizeof(name), "c%05d", i);
        snprintf(rel, sizeof(rel), "certs/%s", name);
        put_dir(f, rel);
        snprintf(rel, sizeof(rel), "certs/%s/v1", name);
        put_dir(f, rel);
        snprintf(rel, sizeof(rel), "certs/%s/lineage.json", name);
        snprintf(text, sizeof(text),
                 "{\"schema\": 1, \"name\": \"%s\", \"current\": 1, \"versions\": "
                 "[{\"version\": 1, \"source\": \"acme\", \"created\": 1700000000, "
                 "\"not_before\": 1700000000, \"not_after\": 1800000000, \"serial\": \"01\", "
                 "\"fingerprint\": \"AA\", \"subject\": \"CN=%s\", \"common_name\": \"%s\", "
                 "\"issuer\": \"CN=CA\", \"key\": \"EC P-256\", \"dns\": [\"%s.test\"], "
                 "\"ips\": [], \"has_key\": true, \"chain_len\": 1}]}",
                 name, name, name, name);
        put_file(f, rel, text);
        snprintf(rel, sizeof(rel), "../certs/%s/v1", name);
        snprintf(text, sizeof(text), "live/%s", name);
        put_link(f, rel, text);
    }
    store_close(f->store);
    f->store = NULL;
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &t0), 0);
    assert_int_equal(store_open(f->dir, &f->store, NULL), 0);
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &t1), 0);
    ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    print_message("store_open of %d lineages: %.1f ms\n", N, ms);
    assert_int_equal(store_count(f->store), N);
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "c%05zu", i);
        assert_string_equal(store_at(f->store, i)->name, name);
    }
    assert_int_equal(store_find(f->store, "c04321")->current, 1);
    assert_string_equal(store_current(store_find(f->store, "c09999"))->dns[0], "c09999.test");
    assert_null(store_find(f->store, "c10000"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_versions_numbered_and_live_shows_current, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lineage_and_meta_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_and_add_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_gives_same_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_validated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_names_and_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_leaves_no_trace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_leftovers_repaired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_current_version_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_lineage_does_not_hide_others, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_lineages, setup, teardown),
    };

    log_init(LOG_SINK_STDERR, LOG_LEVEL_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
