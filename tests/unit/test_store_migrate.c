/*
 * Store schema migrations: a legacy (schema 0) store written by certagent
 * before 26.1 opens as schema 1 with every lineage loaded and its files kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fsutil.h"
#include "store.h"
#include "tdir.h"
#include "version.h"

#define KEY_PEM "-----BEGIN PRIVATE KEY-----\nbGVnYWN5IGtleQ==\n-----END PRIVATE KEY-----\n"
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nbGVnYWN5IGNlcnQ=\n-----END CERTIFICATE-----\n"

struct fx {
    char dir[TDIR_MAX];
    struct store *store;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    if (tdir_make(f->dir, "store-migrate") != 0)
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
    free(f);
    return rc;
}

/*
 * A lineage as certagent 23.x to 25.x wrote it: lineage.json without a
 * schema number (with_schema adds one, as a half-done migration leaves it).
 */
static void
legacy_lineage(const struct fx *f, const char *name, int with_schema)
{
    char rel[128], text[512];

    snprintf(rel, sizeof(rel), "certs/%s/v1", name);
    tdir_mkdir(f->dir, rel);
    snprintf(rel, sizeof(rel), "certs/%s/v1/cert.pem", name);
    tdir_put(f->dir, rel, CERT_PEM, 0644);
    snprintf(rel, sizeof(rel), "certs/%s/v1/chain.pem", name);
    tdir_put(f->dir, rel, "", 0644);
    snprintf(rel, sizeof(rel), "certs/%s/v1/fullchain.pem", name);
    tdir_put(f->dir, rel, CERT_PEM, 0644);
    snprintf(rel, sizeof(rel), "certs/%s/v1/privkey.pem", name);
    tdir_put(f->dir, rel, KEY_PEM, 0600);
    snprintf(rel, sizeof(rel), "certs/%s/v1/meta.json", name);
    tdir_put(f->dir, rel, "{\"version\": 1, \"source\": \"import\"}\n", 0644);
    snprintf(text, sizeof(text),
             "{%s\"name\": \"%s\", \"current\": 1, \"versions\": [{\"version\": 1, "
             "\"source\": \"import\", \"created\": 1700000000, \"not_after\": 1900000000, "
             "\"subject\": \"CN=%s\", \"common_name\": \"%s\", \"dns\": [\"%s.example\"], "
             "\"has_key\": true, \"key\": \"EC P-256\"}]}\n",
             with_schema ? "\"schema\": 1, " : "", name, name, name, name);
    snprintf(rel, sizeof(rel), "certs/%s/lineage.json", name);
    tdir_put(f->dir, rel, text, 0644);
}

static void
assert_state(const struct fx *f, int schema)
{
    char *text = tdir_slurp(f->dir, "state.json"), want[128];

    assert_non_null(text);
    snprintf(want, sizeof(want), "{\"schema\": %d, \"written_by\": \"%s\"}\n", schema,
             CERTAGENT_VERSION);
    assert_string_equal(text, want);
    free(text);
}

/* Schema 0 is a state directory without state.json whose certs/ holds lineages. */
static void
test_legacy_store_migrated(void **state)
{
    struct fx *f = *state;
    const struct store_cert *c;
    char *text, *cause = NULL;

    legacy_lineage(f, "web", 0);
    legacy_lineage(f, "mail", 0);
    assert_int_equal(store_open(f->dir, &f->store, &cause), 0);
    assert_null(cause);
    assert_int_equal(store_count(f->store), 2);
    assert_non_null(c = store_find(f->store, "web"));
    assert_int_equal(c->current, 1);
    assert_string_equal(store_current(c)->common_name, "web");
    assert_non_null(store_find(f->store, "mail"));
    /* Migrated in place: the schema is recorded, everything else is kept. */
    text = tdir_slurp(f->dir, "certs/web/lineage.json");
    assert_non_null(text);
    assert_non_null(strstr(text, "\"schema\":\t1"));
    assert_non_null(strstr(text, "\"web.example\""));
    assert_ptr_equal(strstr(text, "\"schema\""), strchr(text, '"'));
    free(text);
    assert_state(f, STORE_SCHEMA);
    text = tdir_slurp(f->dir, "live/web/privkey.pem");
    assert_non_null(text);
    assert_string_equal(text, KEY_PEM);
    free(text);
    assert_int_equal(tdir_mode(f->dir, "certs/web/v1/privkey.pem"), 0600);
    assert_int_equal(tdir_mode(f->dir, "certs/web/lineage.json"), 0644);
    /* A second start finds nothing to migrate. */
    store_close(f->store);
    f->store = NULL;
    assert_int_equal(store_open(f->dir, &f->store, NULL), 0);
    assert_int_equal(store_count(f->store), 2);
}

/* A crash in the middle of a step: some lineages done, state.json not yet written. */
static void
test_interrupted_migration_resumes(void **state)
{
    struct fx *f = *state;

    legacy_lineage(f, "done", 1);
    legacy_lineage(f, "todo", 0);
    assert_int_equal(store_open(f->dir, &f->store, NULL), 0);
    assert_int_equal(store_count(f->store), 2);
    assert_non_null(store_find(f->store, "todo"));
    assert_state(f, STORE_SCHEMA);
}

/* state.json may also say schema 0 (written by a 25.x agent, say). */
static void
test_state_file_schema_zero(void **state)
{
    struct fx *f = *state;
    char *text;

    legacy_lineage(f, "web", 0);
    tdir_put(f->dir, "state.json", "{\"schema\": 0, \"written_by\": \"23.1.2\"}\n", 0644);
    assert_int_equal(store_open(f->dir, &f->store, NULL), 0);
    assert_non_null(store_find(f->store, "web"));
    assert_state(f, STORE_SCHEMA);
    text = tdir_slurp(f->dir, "certs/web/lineage.json");
    assert_non_null(strstr(text, "\"schema\":\t1"));
    free(text);
}

/* A damaged legacy lineage is left as it is; the others migrate and load. */
static void
test_damaged_legacy_lineage_left_alone(void **state)
{
    struct fx *f = *state;
    char *text;

    legacy_lineage(f, "good", 0);
    tdir_mkdir(f->dir, "certs/bad");
    tdir_put(f->dir, "certs/bad/lineage.json", "{not json", 0644);
    tdir_mkdir(f->dir, "certs/nolineage");
    assert_int_equal(store_open(f->dir, &f->store, NULL), 0);
    assert_non_null(store_find(f->store, "good"));
    assert_null(store_find(f->store, "bad"));
    text = tdir_slurp(f->dir, "certs/bad/lineage.json");
    assert_string_equal(text, "{not json");
    free(text);
    assert_state(f, STORE_SCHEMA);
}

/* A new store is created at the current schema, with no migration. */
static void
test_new_store(void **state)
{
    struct fx *f = *state;

    assert_int_equal(store_open(f->dir, &f->store, NULL), 0);
    assert_int_equal(store_count(f->store), 0);
    assert_state(f, STORE_SCHEMA);
}

/* Newer or nonsensical schemas are refused, and nothing is rewritten. */
static void
test_bad_schemas_refused(void **state)
{
    struct fx *f = *state;
    char *cause = NULL, *text;

    legacy_lineage(f, "web", 0);
    tdir_put(f->dir, "state.json", "{\"schema\": 7, \"written_by\": \"31.1.0\"}\n", 0644);
    assert_int_equal(store_open(f->dir, &f->store, &cause), -E_VERSION);
    assert_non_null(strstr(cause, "newer than this agent"));
    free(cause);
    cause = NULL;
    text = tdir_slurp(f->dir, "certs/web/lineage.json");
    assert_null(strstr(text, "\"schema\""));
    free(text);
    tdir_put(f->dir, "state.json", "{\"schema\": -1}\n", 0644);
    assert_int_equal(store_open(f->dir, &f->store, &cause), -E_BAD_INPUT);
    assert_non_null(strstr(cause, "damaged"));
    free(cause);
    cause = NULL;
    tdir_put(f->dir, "state.json", "{\"schema\": 0.5}\n", 0644);
    assert_int_equal(store_open(f->dir, &f->store, &cause), -E_BAD_INPUT);
    free(cause);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_legacy_store_migrated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_migration_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_file_schema_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_legacy_lineage_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_schemas_refused, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
