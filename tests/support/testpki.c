#include "testpki.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/x509v3.h>

static void
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

    assert_non_null(ext);
    assert_true(X509_add_ext(x, ext, -1));
    X509_EXTENSION_free(ext);
}

X509 *
test_cert_make(const struct test_cert_spec *s)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    X509V3_CTX ctx;
    EVP_PKEY *signer;

    assert_non_null(x);
    assert_non_null(n);
    assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), s->serial));
    assert_true(X509_set_version(x, X509_VERSION_3));
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)s->not_before));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)s->not_after));
    if (s->org != NULL)
        assert_true(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                                               (const unsigned char *)s->org, -1, -1, 0));
    assert_true(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)s->cn,
                                           -1, -1, 0));
    assert_true(X509_set_subject_name(x, n));
    assert_true(X509_set_issuer_name(x, s->issuer != NULL ? X509_get_subject_name(s->issuer) : n));
    assert_true(X509_set_pubkey(x, s->key));
    X509V3_set_ctx(&ctx, s->issuer != NULL ? s->issuer : x, x, NULL, NULL, 0);
    add_ext(x, &ctx, NID_basic_constraints, s->ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    if (s->san != NULL)
        add_ext(x, &ctx, NID_subject_alt_name, s->san);
    signer = s->issuer_key != NULL ? s->issuer_key : s->key;
    /* EdDSA signs without a separate digest. */
    assert_true(X509_sign(x, signer, EVP_PKEY_is_a(signer, "ED25519") ? NULL : EVP_sha256()) > 0);
    X509_NAME_free(n);
    return x;
}

EVP_PKEY *
test_ec_key(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    assert_non_null(k);
    return k;
}

void
test_chain_make(struct test_chain *c)
{
    int64_t now = (int64_t)time(NULL), day = TESTPKI_DAY;
    struct test_cert_spec s;

    c->root_key = test_ec_key();
    c->int_key = test_ec_key();
    c->leaf_key = test_ec_key();
    s = (struct test_cert_spec){"Unit Root", "certagent tests", c->root_key,     NULL, NULL,
                                1,           now - day,         now + 365 * day, 1,    NULL};
    c->root = test_cert_make(&s);
    s = (struct test_cert_spec){
        "Unit Intermediate", "certagent tests", c->int_key, c->root, c->root_key, 1,
        now - day,           now + 365 * day,   2,          NULL};
    c->inter = test_cert_make(&s);
    s = (struct test_cert_spec){"leaf.test", NULL,      c->leaf_key,    c->inter, c->int_key,
                                0,           now - day, now + 30 * day, 3,        "DNS:leaf.test"};
    c->leaf = test_cert_make(&s);
}

void
test_chain_free(struct test_chain *c)
{
    X509_free(c->root);
    X509_free(c->inter);
    X509_free(c->leaf);
    EVP_PKEY_free(c->root_key);
    EVP_PKEY_free(c->int_key);
    EVP_PKEY_free(c->leaf_key);
}

void
test_expect_cause(int rc, int want, char **cause, const char *fragment, const char *const *secrets)
{
    assert_int_equal(rc, want);
    assert_non_null(*cause);
    if (strstr(*cause, fragment) == NULL)
        fail_msg("cause '%s' lacks '%s'", *cause, fragment);
    for (size_t i = 0; secrets != NULL && secrets[i] != NULL; i++)
        if (strstr(*cause, secrets[i]) != NULL)
            fail_msg("cause '%s' shows a secret", *cause);
    /* Users read words, never OpenSSL's packed error codes. */
    if (strstr(*cause, "error:") != NULL)
        fail_msg("cause '%s' has a raw OpenSSL error code", *cause);
    free(*cause);
    *cause = NULL;
}
