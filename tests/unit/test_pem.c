/*
 * PEM/DER/PKCS#12 parsing, chains, keys and self-signed certificates
 * (common/pem.c and agent/keys.c).  Chains are built at run time, so nothing
 * here expires.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "keys.h"
#include "pem.h"

/* A CA-signed certificate made here: subject CN, signed by issuer (NULL: self). */
static X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, int ca,
          long from_days, long to_days)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(rand() & 0x7fffffff));
    X509_set_version(x, X509_VERSION_3);
    X509_time_adj_ex(X509_getm_notBefore(x), (int)from_days, 0, NULL);
    X509_time_adj_ex(X509_getm_notAfter(x), (int)to_days, 0, NULL);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509_set_pubkey(x, key);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
                              ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
    X509_NAME_free(n);
    return x;
}

static EVP_PKEY *
ec_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static unsigned char *
to_pem(X509 *const *certs, int n, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p;
    unsigned char *out;
    long l;

    for (int i = 0; i < n; i++)
        PEM_write_bio_X509(b, certs[i]);
    l = BIO_get_mem_data(b, &p);
    out = malloc((size_t)l + 1);
    memcpy(out, p, (size_t)l);
    out[l] = 0;
    *len = (size_t)l;
    BIO_free(b);
    return out;
}

struct chain {
    EVP_PKEY *root_key, *int_key, *leaf_key;
    X509 *root, *inter, *leaf;
};

static void
chain_make(struct chain *c)
{
    c->root_key = ec_key();
    c->int_key = ec_key();
    c->leaf_key = ec_key();
    c->root = make_cert("Unit Root", c->root_key, NULL, NULL, 1, -1, 3650);
    c->inter = make_cert("Unit Intermediate", c->int_key, c->root, c->root_key, 1, -1, 3650);
    c->leaf = make_cert("leaf.test", c->leaf_key, c->inter, c->int_key, 0, -1, 90);
}

static void
chain_free(struct chain *c)
{
    X509_free(c->root);
    X509_free(c->inter);
    X509_free(c->leaf);
    EVP_PKEY_free(c->root_key);
    EVP_PKEY_free(c->int_key);
    EVP_PKEY_free(c->leaf_key);
}

static void
expect_cause(int rc, int want, char **cause, const char *fragment)
{
    assert_int_equal(rc, want);
    assert_non_null(*cause);
    if (strstr(*cause, fragment) == NULL)
        fail_msg("cause '%s' lacks '%s'", *cause, fragment);
    free(*cause);
    *cause = NULL;
}

static void
test_read_pem_der_and_refusals(void **state)
{
    struct chain c;
    STACK_OF(X509) *out = NULL;
    X509 *two[2];
    size_t len;
    unsigned char *pem, *der = NULL;
    char *cause = NULL;
    int dlen;

    (void)state;
    chain_make(&c);
    two[0] = c.leaf;
    two[1] = c.inter;
    pem = to_pem(two, 2, &len);
    assert_int_equal(pem_read_certs(pem, len, "certificate file", &out, &cause), 0);
    assert_int_equal(sk_X509_num(out), 2);
    assert_int_equal(X509_cmp(sk_X509_value(out, 0), c.leaf), 0);
    sk_X509_pop_free(out, X509_free);

    /* Truncated PEM. */
    expect_cause(pem_read_certs(pem, len / 3, "certificate file", &out, &cause), -E_BAD_INPUT,
                 &cause, "certificate file");
    free(pem);

    /* DER. */
    dlen = i2d_X509(c.leaf, &der);
    assert_true(dlen > 0);
    assert_int_equal(pem_read_certs(der, (size_t)dlen, "cert", &out, &cause), 0);
    assert_int_equal(sk_X509_num(out), 1);
    sk_X509_pop_free(out, X509_free);
    /* DER with a byte missing or one too many. */
    expect_cause(pem_read_certs(der, (size_t)dlen - 1, "cert", &out, &cause), -E_BAD_INPUT,
                 &cause, "not a certificate");
    OPENSSL_free(der);

    /* Garbage, empty, and a PEM key where a certificate was expected. */
    expect_cause(pem_read_certs((const unsigned char *)"hello world", 11, "cert", &out, &cause),
                 -E_BAD_INPUT, &cause, "not a certificate in PEM or DER form");
    expect_cause(pem_read_certs((const unsigned char *)"", 0, "cert", &out, &cause),
                 -E_BAD_INPUT, &cause, "empty");
    {
        BIO *b = BIO_new(BIO_s_mem());
        char *p;
        long l;

        PEM_write_bio_PrivateKey(b, c.leaf_key, NULL, NULL, 0, NULL, NULL);
        l = BIO_get_mem_data(b, &p);
        expect_cause(pem_read_certs((unsigned char *)p, (size_t)l, "cert", &out, &cause),
                     -E_BAD_INPUT, &cause, "holds no certificate (found a 'PRIVATE KEY' block)");
        BIO_free(b);
    }
    chain_free(&c);
}

static void
test_order_chain(void **state)
{
    struct chain c;
    STACK_OF(X509) *given = sk_X509_new_null(), *ordered = NULL;
    EVP_PKEY *other_key = ec_key();
    X509 *stranger = make_cert("Stranger CA", other_key, NULL, NULL, 1, -1, 100);
    char *cause = NULL;

    (void)state;
    chain_make(&c);
    /* Shuffled, with duplicates and the leaf itself. */
    sk_X509_push(given, c.root);
    sk_X509_push(given, c.leaf);
    sk_X509_push(given, c.inter);
    sk_X509_push(given, c.root);
    assert_int_equal(pem_order_chain(c.leaf, given, &ordered, &cause), 0);
    assert_int_equal(sk_X509_num(ordered), 2);
    assert_int_equal(X509_cmp(sk_X509_value(ordered, 0), c.inter), 0);
    assert_int_equal(X509_cmp(sk_X509_value(ordered, 1), c.root), 0);
    sk_X509_pop_free(ordered, X509_free);

    /* A certificate that does not belong is named. */
    sk_X509_push(given, stranger);
    expect_cause(pem_order_chain(c.leaf, given, &ordered, &cause), -E_BAD_INPUT, &cause,
                 "Stranger CA");
    /* A gap: root without the intermediate. */
    sk_X509_zero(given);
    sk_X509_push(given, c.root);
    expect_cause(pem_order_chain(c.leaf, given, &ordered, &cause), -E_BAD_INPUT, &cause,
                 "chain does not link");
    /* Empty chain is fine. */
    assert_int_equal(pem_order_chain(c.leaf, NULL, &ordered, &cause), 0);
    assert_int_equal(sk_X509_num(ordered), 0);
    sk_X509_free(ordered);
    sk_X509_free(given);
    X509_free(stranger);
    EVP_PKEY_free(other_key);
    chain_free(&c);
}

static void
test_cert_info_and_validity(void **state)
{
    struct chain c;
    struct cert_info info;
    EVP_PKEY *k = ec_key();
    X509 *old = make_cert("old.test", k, NULL, NULL, 0, -400, -30);
    X509 *future = make_cert("future.test", k, NULL, NULL, 0, 10, 100);
    int64_t now = (int64_t)time(NULL);

    (void)state;
    chain_make(&c);
    assert_int_equal(pem_cert_info(c.inter, &info, NULL), 0);
    assert_string_equal(info.subject, "CN=Unit Intermediate");
    assert_string_equal(info.issuer, "CN=Unit Root");
    assert_string_equal(info.key_type, "EC");
    assert_string_equal(info.key_curve, "P-256");
    assert_int_equal(info.key_bits, 256);
    assert_true(info.is_ca);
    assert_false(info.self_signed);
    assert_int_equal(strlen(info.fingerprint), 95);
    pem_cert_info_free(&info);
    assert_int_equal(pem_cert_info(c.root, &info, NULL), 0);
    assert_true(info.self_signed);
    pem_cert_info_free(&info);

    assert_int_equal(pem_cert_validity(c.leaf, now), 0);
    assert_int_equal(pem_cert_validity(old, now), 1);
    assert_int_equal(pem_cert_validity(future, now), -1);
    assert_int_equal(pem_days_left(now + 86400 * 3 + 5, now), 3);
    assert_int_equal(pem_days_left(now - 1, now), -1);
    assert_int_equal(pem_days_left(now - 86400, now), -1);
    assert_int_equal(pem_days_left(now - 86401, now), -2);
    X509_free(old);
    X509_free(future);
    EVP_PKEY_free(k);
    chain_free(&c);
}

static void
test_generate_every_type(void **state)
{
    static const char *const types[] = {"ec256", "ec384", "rsa2048", "ed25519"};
    static const char *const descs[] = {"EC P-256", "EC P-384", "RSA 2048", "Ed25519"};
    const char *dns[] = {"a.test", "b.test"};
    const char *ips[] = {"192.0.2.1", "::1"};

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        enum key_type t;
        struct key *k = NULL, *other = NULL;
        X509 *x = NULL;
        struct cert_info info;
        char *desc, *cause = NULL;

        assert_int_equal(keys_type_parse(types[i], &t, NULL), 0);
        assert_int_equal(keys_generate(t, &k, NULL), 0);
        assert_int_equal(keys_generate(KEY_EC256, &other, NULL), 0);
        desc = keys_describe(k);
        assert_string_equal(desc, descs[i]);
        free(desc);
        assert_int_equal(keys_selfsigned(k, "a.test", dns, 2, ips, 2, 30, &x, NULL), 0);
        assert_int_equal(keys_match_cert(k, x, NULL), 0);
        expect_cause(keys_match_cert(other, x, &cause), -E_BAD_INPUT, &cause,
                     "private key does not match the certificate");
        assert_int_equal(pem_cert_info(x, &info, NULL), 0);
        assert_true(info.self_signed);
        assert_false(info.is_ca);
        assert_int_equal(info.ndns, 2);
        assert_string_equal(info.dns[1], "b.test");
        assert_int_equal(info.nips, 2);
        assert_string_equal(info.ips[0], "192.0.2.1");
        assert_string_equal(info.ips[1], "0:0:0:0:0:0:0:1");
        assert_int_equal(info.not_after - info.not_before, 30 * 86400 + 300);
        pem_cert_info_free(&info);
        X509_free(x);
        keys_free(k);
        keys_free(other);
    }
}

static void
test_selfsigned_refusals(void **state)
{
    struct key *k = NULL;
    X509 *x = NULL;
    const char *bad_ip[] = {"300.1.1.1"};
    const char *bad_dns[] = {"bad name"};
    char *cause = NULL;
    enum key_type t;

    (void)state;
    expect_cause(keys_type_parse("dsa", &t, &cause), -E_BAD_INPUT, &cause, "unknown key type");
    assert_int_equal(keys_generate(KEY_EC256, &k, NULL), 0);
    expect_cause(keys_selfsigned(k, "x", NULL, 0, bad_ip, 1, 1, &x, &cause), -E_BAD_INPUT,
                 &cause, "300.1.1.1");
    expect_cause(keys_selfsigned(k, "x", bad_dns, 1, NULL, 0, 1, &x, &cause), -E_BAD_INPUT,
                 &cause, "not a valid DNS name");
    keys_free(k);
}

static void
test_key_parse_pem_der_encrypted(void **state)
{
    EVP_PKEY *pk = ec_key();
    BIO *b = BIO_new(BIO_s_mem());
    struct key *k = NULL;
    char *p, *cause = NULL;
    long l;
    unsigned char *der = NULL;
    int dlen;

    (void)state;
    /* Encrypted PKCS#8. */
    PEM_write_bio_PKCS8PrivateKey(b, pk, EVP_aes_256_cbc(), NULL, 0, NULL, "s3cret pw");
    l = BIO_get_mem_data(b, &p);
    assert_int_equal(keys_parse((unsigned char *)p, (size_t)l, "s3cret pw", &k, NULL), 0);
    keys_free(k);
    expect_cause(keys_parse((unsigned char *)p, (size_t)l, NULL, &k, &cause), -E_BAD_INPUT,
                 &cause, "encrypted: give --password-file");
    assert_int_equal(keys_parse((unsigned char *)p, (size_t)l, "wrong", &k, &cause),
                     -E_BAD_INPUT);
    assert_non_null(strstr(cause, "wrong password"));
    assert_null(strstr(cause, "wrong\""));
    assert_null(strstr(cause, "s3cret"));
    free(cause);
    cause = NULL;
    BIO_free(b);
    /* DER PKCS#8. */
    dlen = i2d_PrivateKey(pk, &der);
    assert_true(dlen > 0);
    assert_int_equal(keys_parse(der, (size_t)dlen, NULL, &k, NULL), 0);
    keys_free(k);
    expect_cause(keys_parse(der, (size_t)dlen / 2, NULL, &k, &cause), -E_BAD_INPUT, &cause,
                 "not a private key");
    OPENSSL_free(der);
    expect_cause(keys_parse((const unsigned char *)"-----BEGIN CERTIFICATE-----\nAAAA\n", 33,
                            NULL, &k, &cause),
                 -E_BAD_INPUT, &cause, "no private key found");
    EVP_PKEY_free(pk);
}

static void
test_pfx_roundtrip(void **state)
{
    struct chain c;
    struct key *k = NULL, *back = NULL;
    STACK_OF(X509) *chain = sk_X509_new_null(), *chain_back = NULL;
    unsigned char *pfx = NULL, *der = NULL;
    X509 *leaf = NULL;
    size_t len = 0;
    char *cause = NULL;
    int dlen;

    (void)state;
    chain_make(&c);
    dlen = i2d_PrivateKey(c.leaf_key, &der);
    assert_int_equal(keys_parse(der, (size_t)dlen, NULL, &k, NULL), 0);
    OPENSSL_free(der);
    sk_X509_push(chain, c.inter);
    assert_int_equal(keys_export_pfx(k, c.leaf, chain, "pfx pass", "web", &pfx, &len, NULL), 0);
    assert_int_equal(keys_parse_pfx(pfx, len, "pfx pass", &back, &leaf, &chain_back, NULL), 0);
    assert_non_null(back);
    assert_int_equal(X509_cmp(leaf, c.leaf), 0);
    assert_int_equal(sk_X509_num(chain_back), 1);
    assert_int_equal(keys_match_cert(back, leaf, NULL), 0);
    keys_free(back);
    X509_free(leaf);
    sk_X509_pop_free(chain_back, X509_free);
    /* Wrong and missing passwords; the password never shows. */
    expect_cause(keys_parse_pfx(pfx, len, "nope-nope", &back, &leaf, &chain_back, &cause),
                 -E_BAD_INPUT, &cause, "wrong password for the PFX file");
    assert_int_equal(keys_parse_pfx(pfx, len, NULL, &back, &leaf, &chain_back, &cause),
                     -E_BAD_INPUT);
    assert_null(strstr(cause, "pfx pass"));
    free(cause);
    cause = NULL;
    /* Truncated and garbage PFX. */
    expect_cause(keys_parse_pfx(pfx, len / 2, "pfx pass", &back, &leaf, &chain_back, &cause),
                 -E_BAD_INPUT, &cause, "not a PKCS#12 file");
    keys_free_secret(pfx, len);
    /* Empty password round trip. */
    assert_int_equal(keys_export_pfx(k, c.leaf, NULL, "", "web", &pfx, &len, NULL), 0);
    assert_int_equal(keys_parse_pfx(pfx, len, NULL, &back, &leaf, &chain_back, NULL), 0);
    assert_int_equal(keys_match_cert(back, leaf, NULL), 0);
    keys_free(back);
    X509_free(leaf);
    sk_X509_pop_free(chain_back, X509_free);
    keys_free_secret(pfx, len);
    /* A PFX given where a certificate was expected is recognised. */
    assert_int_equal(keys_export_pfx(k, c.leaf, NULL, "x", "web", &pfx, &len, NULL), 0);
    {
        STACK_OF(X509) *out = NULL;

        expect_cause(pem_read_certs(pfx, len, "certificate file", &out, &cause), -E_BAD_INPUT,
                     &cause, "looks like a PKCS#12 file: use --pfx");
    }
    keys_free_secret(pfx, len);
    keys_free(k);
    sk_X509_free(chain);
    chain_free(&c);
}

static void
test_key_pem_roundtrip(void **state)
{
    struct key *k = NULL, *back = NULL;
    X509 *x = NULL;
    char *pem = NULL;
    size_t len = 0;
    const char *dns[] = {"r.test"};

    (void)state;
    assert_int_equal(keys_generate(KEY_ED25519, &k, NULL), 0);
    assert_int_equal(keys_to_pem(k, &pem, &len, NULL), 0);
    assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
    assert_int_equal(keys_parse((unsigned char *)pem, len, NULL, &back, NULL), 0);
    assert_int_equal(keys_selfsigned(k, "r.test", dns, 1, NULL, 0, 1, &x, NULL), 0);
    assert_int_equal(keys_match_cert(back, x, NULL), 0);
    keys_free_secret(pem, len);
    keys_free(k);
    keys_free(back);
    X509_free(x);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_pem_der_and_refusals),
        cmocka_unit_test(test_order_chain),
        cmocka_unit_test(test_cert_info_and_validity),
        cmocka_unit_test(test_generate_every_type),
        cmocka_unit_test(test_selfsigned_refusals),
        cmocka_unit_test(test_key_parse_pem_der_encrypted),
        cmocka_unit_test(test_pfx_roundtrip),
        cmocka_unit_test(test_key_pem_roundtrip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
