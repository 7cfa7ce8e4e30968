/*
 * The trust store's index and chain building (agent/trust/trust.c) without
 * files: the generation every change bumps (what the status report compares
 * to know its chain checks are stale), and a self-signed certificate that
 * is no CA trusted as an anchor for itself only (issue 20, item 2).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "err.h"
#include "testpki.h"
#include "trust.h"

static struct trust *
trust_empty(void)
{
    struct trust *t = calloc(1, sizeof(*t));

    assert_non_null(t);
    return t;
}

/* Every insert and delete bumps the generation, also when the count ends where it was. */
static void
test_generation(void **state)
{
    struct test_chain c;
    struct trust *t = trust_empty();
    char *cause = NULL;
    unsigned long g;

    (void)state;
    test_chain_make(&c);
    assert_int_equal(trust_insert(t, c.root, 0, &cause), 0);
    g = t->generation;
    assert_true(g > 0);
    assert_int_equal(trust_insert(t, c.root, 0, &cause), -E_EXISTS);
    assert_int_equal(t->generation, g);
    assert_int_equal(trust_insert(t, c.inter, 1, &cause), 0);
    assert_true(t->generation > g);
    g = t->generation;
    trust_delete(t, 1);
    assert_int_equal(t->n, 1);
    assert_true(t->generation > g);
    free(cause);
    trust_close(t);
    test_chain_free(&c);
}

static int
has_problem(const struct trust_report *r, const char *text)
{
    for (size_t i = 0; i < r->nproblems; i++) {
        if (strstr(r->problems[i], text) != NULL)
            return 1;
    }
    return 0;
}

static void
verify(struct trust *t, X509 *cert, const char *host, struct trust_report *r)
{
    struct trust_ctx *ctx = trust_ctx_new(t, 0);
    struct trust_verify_opts o;
    char *cause = NULL;

    assert_non_null(ctx);
    assert_int_equal(trust_ctx_load(ctx, &cause), 0);
    memset(&o, 0, sizeof(o));
    o.host = host;
    o.purpose = TRUST_PURPOSE_SERVER;
    o.now = (int64_t)time(NULL);
    assert_int_equal(trust_verify(ctx, cert, NULL, &o, r, &cause), 0);
    trust_ctx_free(ctx);
    free(cause);
}

/*
 * A self-signed server certificate: not trusted, with advice that trust add
 * follows; once an anchor, trusted for itself, and still no issuer of others.
 */
static void
test_self_signed_leaf_anchor(void **state)
{
    int64_t now = (int64_t)time(NULL);
    EVP_PKEY *key = test_ec_key(), *child_key = test_ec_key();
    struct test_cert_spec s = {.cn = "self.test",
                               .key = key,
                               .not_before = now - TESTPKI_DAY,
                               .not_after = now + 30 * TESTPKI_DAY,
                               .serial = 7,
                               .san = "DNS:self.test"};
    X509 *self = test_cert_make(&s), *child;
    struct trust *t = trust_empty();
    struct trust_report r;
    char *cause = NULL;

    (void)state;
    verify(t, self, "self.test", &r);
    assert_false(r.trusted);
    assert_true(has_problem(&r, "'self.test' is self-signed and not trusted: to trust it, add "
                                "it with 'certctl trust add FILE'"));
    trust_report_free(&r);

    assert_int_equal(trust_insert(t, self, 0, &cause), 0);
    verify(t, self, "self.test", &r);
    assert_true(r.trusted);
    assert_true(r.complete);
    assert_int_equal(r.nlinks, 1);
    assert_int_equal(r.nproblems, 0);
    trust_report_free(&r);

    s.cn = "child.test";
    s.san = "DNS:child.test";
    s.key = child_key;
    s.issuer = self;
    s.issuer_key = key;
    s.serial = 8;
    child = test_cert_make(&s);
    verify(t, child, "child.test", &r);
    assert_false(r.trusted);
    trust_report_free(&r);

    free(cause);
    trust_close(t);
    X509_free(child);
    X509_free(self);
    EVP_PKEY_free(child_key);
    EVP_PKEY_free(key);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generation),
        cmocka_unit_test(test_self_signed_leaf_anchor),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
