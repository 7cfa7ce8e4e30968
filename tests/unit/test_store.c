/*
 * The store: versions, live/ view, modes, busy names, and the repair of
 * everything a crash can leave behind (simulated by making the leftovers by
 * hand).  Also fsutil's atomic writes and lock.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "store.h"
#include "version.h"

struct fx {
    char dir[64];
    struct store *store;
};

static char *dns_a[] = {"a.test"};

static struct store_version
summary(const char *cn)
{
    struct store_version v;

    memset(&v, 0, sizeof(v));
    v.source = CERT_SOURCE_IMPORT;
    v.not_before = 1000;
    v.not_after = 2000000000;
    v.serial = (char *)"01";
    v.fingerprint = (char *)"AA:BB";
    v.subject = (char *)cn;
    v.common_name = (char *)cn;
    v.issuer = (char *)cn;
    v.key_desc = (char *)"EC P-256";
    v.dns = dns_a;
    v.ndns = 1;
    return v;
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/store-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL || store_open(f->dir, &f->store, NULL) != 0)
        return -1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    store_close(f->store);
    fsutil_remove_tree(f->dir, NULL);
    free(f);
    return 0;
}

static char *
path(struct fx *f, const char *rel)
{
    return fsutil_join(f->dir, rel);
}

/* Adds a version with cert text CERT and key text KEY (NULL: none). */
static unsigned
add(struct fx *f, const char *name, const char *cert, const char *key)
{
    struct store_change *ch = NULL;
    struct store_version v = summary(cert);
    unsigned made;

    assert_int_equal(store_begin(f->store, name, STORE_CHANGE_ADD, &ch, NULL), 0);
    assert_int_equal(store_change_add(ch, &v, cert, "CHAIN\n", key, "{\"x\": 1}", NULL), 0);
    made = store_change_version(ch);
    store_finish(f->store, ch, 0);
    return made;
}

static char *
slurp(struct fx *f, const char *rel)
{
    char *p = path(f, rel);
    unsigned char *data = NULL;
    size_t len;

    if (fsutil_read_file(p, 1 << 20, &data, &len, NULL) != 0)
        data = NULL;
    free(p);
    return (char *)data;
}

static int
mode_of(struct fx *f, const char *rel)
{
    char *p = path(f, rel);
    struct stat st;
    int m = stat(p, &st) == 0 ? (int)(st.st_mode & 0777) : -1;

    free(p);
    return m;
}

static void
test_versions_and_live(void **state)
{
    struct fx *f = *state;
    const struct store_cert *c;
    char *s;

    assert_int_equal(add(f, "web", "CERT1\n", "KEY1\n"), 1);
    assert_int_equal(add(f, "web", "CERT2\n", "KEY2\n"), 2);
    assert_int_equal(add(f, "web", "CERT3\n", NULL), 3);
    c = store_find(f->store, "web");
    assert_non_null(c);
    assert_int_equal(c->current, 3);
    assert_int_equal(c->nversions, 3);
    assert_false(store_current(c)->has_key);
    s = slurp(f, "live/web/cert.pem");
    assert_string_equal(s, "CERT3\n");
    free(s);
    s = slurp(f, "live/web/fullchain.pem");
    assert_string_equal(s, "CERT3\nCHAIN\n");
    free(s);
    s = slurp(f, "certs/web/v2/privkey.pem");
    assert_string_equal(s, "KEY2\n");
    free(s);
    s = slurp(f, "certs/web/v2/meta.json");
    assert_non_null(strstr(s, "\"extra\""));
    free(s);
    assert_int_equal(mode_of(f, "certs/web/v2/privkey.pem"), 0600);
    assert_int_equal(mode_of(f, "certs/web/v2/cert.pem"), 0644);
    assert_int_equal(mode_of(f, "certs/web/v2"), 0700);
    assert_int_equal(mode_of(f, "certs"), 0700);
}

static void
test_rollback_and_remove(void **state)
{
    struct fx *f = *state;
    struct store_change *ch = NULL;
    char *s, *cause = NULL;

    add(f, "r", "C1\n", "K1\n");
    add(f, "r", "C2\n", "K2\n");
    assert_int_equal(store_begin(f->store, "r", STORE_CHANGE_ROLLBACK, &ch, NULL), 0);
    assert_int_equal(store_change_rollback(ch, 0, NULL), 0);
    assert_int_equal(store_change_version(ch), 1);
    assert_int_equal(store_change_previous(ch), 2);
    store_finish(f->store, ch, 0);
    s = slurp(f, "live/r/cert.pem");
    assert_string_equal(s, "C1\n");
    free(s);
    /* Nothing older than 1; 1 is current; 9 does not exist. */
    assert_int_equal(store_begin(f->store, "r", STORE_CHANGE_ROLLBACK, &ch, NULL), 0);
    assert_int_equal(store_change_rollback(ch, 0, &cause), -E_NOT_FOUND);
    assert_int_equal(store_change_rollback(ch, 1, &cause), -E_BAD_INPUT);
    assert_int_equal(store_change_rollback(ch, 9, &cause), -E_NOT_FOUND);
    free(cause);
    store_finish(f->store, ch, -E_NOT_FOUND);
    assert_int_equal(store_find(f->store, "r")->current, 1);
    /* A new version after a rollback takes the next free number. */
    assert_int_equal(add(f, "r", "C3\n", "K3\n"), 3);

    assert_int_equal(store_begin(f->store, "r", STORE_CHANGE_REMOVE, &ch, NULL), 0);
    assert_int_equal(store_change_remove(ch, NULL), 0);
    store_finish(f->store, ch, 0);
    assert_null(store_find(f->store, "r"));
    assert_false(fsutil_exists(f->dir) && mode_of(f, "certs/r") != -1);
    {
        char *p = path(f, "live/r");

        assert_false(fsutil_exists(p));
        free(p);
    }
}

static void
test_busy_names_and_refusals(void **state)
{
    struct fx *f = *state;
    struct store_change *a = NULL, *b = NULL;
    char *cause = NULL;

    assert_int_equal(store_begin(f->store, "new", STORE_CHANGE_ADD, &a, NULL), 0);
    /* A name being created is invisible, and a second change is refused. */
    assert_null(store_find(f->store, "new"));
    assert_int_equal(store_begin(f->store, "new", STORE_CHANGE_ADD, &b, &cause), -E_BUSY);
    free(cause);
    cause = NULL;
    /* The change fails: the placeholder goes away. */
    store_finish(f->store, a, -E_IO);
    assert_null(store_find(f->store, "new"));
    assert_int_equal(store_count(f->store), 0);

    assert_int_equal(store_begin(f->store, "nope", STORE_CHANGE_REMOVE, &a, &cause),
                     -E_NOT_FOUND);
    assert_non_null(strstr(cause, "no certificate named 'nope'"));
    free(cause);
    cause = NULL;
    assert_int_equal(store_begin(f->store, "../x", STORE_CHANGE_ADD, &a, &cause), -E_BAD_INPUT);
    free(cause);
    cause = NULL;
    assert_int_equal(store_name_valid(".hidden", NULL), -E_BAD_INPUT);
    assert_int_equal(store_name_valid("a", NULL), 0);
    assert_int_equal(store_name_valid("www.example.com_2-b", NULL), 0);
    assert_int_equal(store_name_valid("a/b", NULL), -E_BAD_INPUT);
    assert_int_equal(store_name_valid("", NULL), -E_BAD_INPUT);
}

static void
test_reopen_same_index(void **state)
{
    struct fx *f = *state;
    const struct store_cert *c;

    add(f, "b", "B1\n", "K\n");
    add(f, "a", "A1\n", "K\n");
    add(f, "a", "A2\n", "K\n");
    store_close(f->store);
    assert_int_equal(store_open(f->dir, &f->store, NULL), 0);
    assert_int_equal(store_count(f->store), 2);
    assert_string_equal(store_at(f->store, 0)->name, "a");
    c = store_find(f->store, "a");
    assert_int_equal(c->current, 2);
    assert_int_equal(c->nversions, 2);
    assert_string_equal(store_current(c)->dns[0], "a.test");
    assert_int_equal(store_current(c)->not_after, 2000000000);
}

/* Runs a shell command in which every %s is the store's directory. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void
sh(const char *fmt, const char *dir)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd), fmt, dir, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
}
#pragma GCC diagnostic pop

static void
test_crash_leftovers_repaired(void **state)
{
    struct fx *f = *state;
    const struct store_cert *c;
    char *s, *target = NULL, *p;

    add(f, "web", "W1\n", "K1\n");
    add(f, "web", "W2\n", "K2\n");
    add(f, "ok", "O1\n", "K\n");
    store_close(f->store);
    f->store = NULL;
    /*
     * What a crash can leave: a half-written version, a complete version
     * renamed in place but not committed, a first version never committed, a
     * live link not yet re-pointed, a link for a removed name, a removal cut
     * short, and a lineage.json temp file.
     */
    sh("mkdir -p %s/certs/web/.tmp-v3-1-1 && echo half > %s/certs/web/.tmp-v3-1-1/cert.pem", f->dir);
    sh("cp -a %s/certs/web/v2 %s/certs/web/v9", f->dir);
    sh("mkdir -p %s/certs/newname/v1 && echo k > %s/certs/newname/v1/privkey.pem", f->dir);
    sh("ln -sfn ../certs/web/v1 %s/live/web && ln -sfn ../certs/gone/v1 %s/live/gone", f->dir);
    sh("mkdir -p %s/certs/.removed-old-1/v1 && echo x > %s/certs/web/lineage.json.tmp-1-0", f->dir);

    assert_int_equal(store_open(f->dir, &f->store, NULL), 0);
    c = store_find(f->store, "web");
    assert_int_equal(c->current, 2);
    assert_int_equal(store_count(f->store), 2);
    s = slurp(f, "live/web/cert.pem");
    assert_string_equal(s, "W2\n");
    free(s);
    p = path(f, "live/web");
    assert_int_equal(fsutil_read_published(p, &target, NULL), 0);
    assert_string_equal(target, "../certs/web/v2");
    free(target);
    free(p);
    assert_int_equal(mode_of(f, "certs/web/.tmp-v3-1-1"), -1);
    assert_int_equal(mode_of(f, "certs/web/v9"), -1);
    assert_int_equal(mode_of(f, "certs/newname"), -1);
    assert_int_equal(mode_of(f, "certs/.removed-old-1"), -1);
    p = path(f, "live/gone");
    assert_false(fsutil_exists(p));
    free(p);
    /* Keys are never deleted by a repair: they are set aside under orphans/. */
    sh("ls %s/orphans | grep -q '^web-v9-' && ls %s/orphans | grep -q '^newname-' && "
       "test -f %s/orphans/newname-*/v1/privkey.pem", f->dir);
    /* The next version skips numbers in use. */
    assert_int_equal(add(f, "web", "W3\n", "K3\n"), 3);
}

static void
test_damaged_lineage_does_not_hide_others(void **state)
{
    struct fx *f = *state;

    add(f, "good", "G\n", "K\n");
    add(f, "bad", "B\n", "K\n");
    store_close(f->store);
    f->store = NULL;
    sh("echo '{not json' > %s/certs/bad/lineage.json", f->dir);
    assert_int_equal(store_open(f->dir, &f->store, NULL), 0);
    assert_non_null(store_find(f->store, "good"));
    assert_null(store_find(f->store, "bad"));
    /* Its files are left alone for a person to look at. */
    assert_int_equal(mode_of(f, "certs/bad/v1/privkey.pem"), 0600);
}

static void
test_newer_schema_refused(void **state)
{
    struct fx *f = *state;
    char *cause = NULL;

    store_close(f->store);
    f->store = NULL;
    sh("echo '{\"schema\": 99}' > %s/state.json", f->dir);
    assert_int_equal(store_open(f->dir, &f->store, &cause), -E_VERSION);
    assert_non_null(strstr(cause, "newer"));
    free(cause);
    /* An older agent's store: opening it records who uses it now. */
    sh("echo '{\"schema\": 1, \"written_by\": \"23.1.10\"}' > %s/state.json", f->dir);
    assert_int_equal(store_open(f->dir, &f->store, NULL), 0);
    sh("grep -q '\"written_by\": \"" CERTAGENT_VERSION "\"' %s/state.json", f->dir);
}

static void
test_fsutil_atomic_and_lock(void **state)
{
    struct fx *f = *state;
    char *p = path(f, "file"), *lock = path(f, "lockfile");
    unsigned char *data = NULL;
    size_t len;
    int h = -1, status;
    pid_t pid;

    assert_int_equal(fsutil_write_atomic(p, "one", 3, 0600, NULL), 0);
    assert_int_equal(fsutil_write_atomic(p, "second", 6, 0640, NULL), 0);
    assert_int_equal(fsutil_read_file(p, 100, &data, &len, NULL), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(data, "second", 6);
    free(data);
    assert_int_equal(mode_of(f, "file"), 0640);
    assert_int_equal(fsutil_read_file(p, 5, &data, &len, NULL), -E_TOO_BIG);
    /* No temp file is left. */
    sh("test $(ls %s | grep -c tmp) -eq 0", f->dir);
    assert_int_equal(fsutil_write_new(p, "x", 1, 0600, NULL), -E_EXISTS);

    assert_int_equal(fsutil_lock(lock, &h, NULL), 0);
    pid = fork();
    if (pid == 0) {
        int h2;

        _exit(fsutil_lock(lock, &h2, NULL) == -E_BUSY ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fsutil_unlock(h);
    free(p);
    free(lock);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_versions_and_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_names_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_same_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_leftovers_repaired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_lineage_does_not_hide_others, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsutil_atomic_and_lock, setup, teardown),
    };

    log_init(LOG_SINK_STDERR, LOG_LEVEL_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
