/*
 * Certificate input and description (common/pem.c): PEM with several
 * certificates, DER, refusals that name the problem, chain ordering and link
 * checks, cert_info fields, validity and PEM output.  Every certificate is
 * made here at run time (CA -> intermediate -> leaf), so nothing expires.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "pem.h"
#include "testpki.h"

#define DAY TESTPKI_DAY

/* Heap copy of what a memory BIO holds; the BIO is freed. */
static unsigned char *
bio_take(BIO *b, size_t *len)
{
    char *p = NULL;
    long l = BIO_get_mem_data(b, &p);
    unsigned char *out;

    assert_true(l >= 0);
    out = malloc((size_t)l + 1);
    assert_non_null(out);
    memcpy(out, p, (size_t)l);
    out[l] = '\0';
    *len = (size_t)l;
    BIO_free(b);
    return out;
}

static unsigned char *
certs_pem(X509 *const *certs, int n, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());

    assert_non_null(b);
    for (int i = 0; i < n; i++)
        assert_true(PEM_write_bio_X509(b, certs[i]));
    return bio_take(b, len);
}

static unsigned char *
cert_der(X509 *x, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);

    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

/* rc is want and *cause holds fragment; frees the cause. */
static void
expect_cause(int rc, int want, char **cause, const char *fragment)
{
    test_expect_cause(rc, want, cause, fragment, NULL);
}

/* A refused read leaves *out NULL and the OpenSSL error queue empty. */
static void
expect_read_refused(const unsigned char *data, size_t len, const char *fragment)
{
    STACK_OF(X509) *out = (STACK_OF(X509) *)1;
    char *cause = NULL;

    expect_cause(pem_read_certs(data, len, "certificate file", &out, &cause), -E_BAD_INPUT, &cause,
                 fragment);
    assert_null(out);
    assert_int_equal(ERR_peek_error(), 0);
}

static void
test_read_pem_several(void **state)
{
    struct test_chain c;
    X509 *three[3];
    STACK_OF(X509) *out = NULL;
    unsigned char *pem;
    size_t len;
    BIO *b;
    char *cause = NULL;

    (void)state;
    test_chain_make(&c);
    three[0] = c.leaf;
    three[1] = c.inter;
    three[2] = c.root;
    pem = certs_pem(three, 3, &len);
    assert_int_equal(pem_read_certs(pem, len, "certificate file", &out, &cause), 0);
    assert_null(cause);
    assert_int_equal(sk_X509_num(out), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(X509_cmp(sk_X509_value(out, i), three[i]), 0);
    sk_X509_pop_free(out, X509_free);
    free(pem);

    /* Text around the blocks and a private key between them are skipped. */
    b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_true(BIO_puts(b, "Bag Attributes: made by some tool\r\n") > 0);
    assert_true(PEM_write_bio_X509(b, c.leaf));
    assert_true(PEM_write_bio_PrivateKey(b, c.leaf_key, NULL, NULL, 0, NULL, NULL));
    assert_true(PEM_write_bio_X509(b, c.inter));
    assert_true(BIO_puts(b, "trailing words\n") > 0);
    pem = bio_take(b, &len);
    assert_int_equal(pem_read_certs(pem, len, "certificate file", &out, &cause), 0);
    assert_int_equal(sk_X509_num(out), 2);
    assert_int_equal(X509_cmp(sk_X509_value(out, 0), c.leaf), 0);
    assert_int_equal(X509_cmp(sk_X509_value(out, 1), c.inter), 0);
    sk_X509_pop_free(out, X509_free);
    free(pem);
    test_chain_free(&c);
}

static void
test_read_der(void **state)
{
    struct test_chain c;
    STACK_OF(X509) *out = NULL;
    unsigned char *der, *longer;
    size_t len;

    (void)state;
    test_chain_make(&c);
    der = cert_der(c.leaf, &len);
    assert_int_equal(pem_read_certs(der, len, "certificate file", &out, NULL), 0);
    assert_int_equal(sk_X509_num(out), 1);
    assert_int_equal(X509_cmp(sk_X509_value(out, 0), c.leaf), 0);
    sk_X509_pop_free(out, X509_free);

    /* A byte missing, half of it, and extra bytes after it. */
    expect_read_refused(der, len - 1, "certificate file: truncated DER certificate");
    expect_read_refused(der, len / 2, "truncated DER certificate");
    longer = malloc(len + 3);
    assert_non_null(longer);
    memcpy(longer, der, len);
    memcpy(longer + len, "xyz", 3);
    expect_read_refused(longer, len + 3, "3 extra bytes");
    free(longer);
    OPENSSL_free(der);
    test_chain_free(&c);
}

static void
test_read_truncated_pem(void **state)
{
    struct test_chain c;
    X509 *two[2];
    unsigned char *pem;
    size_t len, second;

    (void)state;
    test_chain_make(&c);
    two[0] = c.leaf;
    two[1] = c.inter;
    pem = certs_pem(two, 2, &len);
    /* Cut inside the first block, then inside the second. */
    expect_read_refused(pem, len / 4, "truncated PEM block 'CERTIFICATE'");
    second = (size_t)(strstr((char *)pem + 1, "-----BEGIN") - (char *)pem);
    expect_read_refused(pem, second + (len - second) / 2, "truncated PEM block");
    /* The END line itself cut short. */
    expect_read_refused(pem, len - 10, "truncated PEM block");
    free(pem);
    test_chain_free(&c);
}

static void
test_read_damaged_pem(void **state)
{
    static const char bad_base64[] = "-----BEGIN CERTIFICATE-----\n"
                                     "@@@@ this is not base64 @@@@\n"
                                     "-----END CERTIFICATE-----\n";
    static const char not_x509[] = "-----BEGIN CERTIFICATE-----\n"
                                   "aGVsbG8gd29ybGQ=\n"
                                   "-----END CERTIFICATE-----\n";

    (void)state;
    expect_read_refused((const unsigned char *)bad_base64, strlen(bad_base64),
                        "PEM block 1 is damaged");
    expect_read_refused((const unsigned char *)not_x509, strlen(not_x509),
                        "certificate 1 is not a valid X.509 certificate");
}

static void
test_read_garbage_and_empty(void **state)
{
    unsigned char junk[2048];
    unsigned int seed = 12345;

    (void)state;
    for (size_t i = 0; i < sizeof(junk); i++) {
        seed = seed * 1103515245u + 12345u;
        junk[i] = (unsigned char)(seed >> 16);
    }
    junk[0] = 0x9c; /* not a DER SEQUENCE */
    expect_read_refused(junk, sizeof(junk), "certificate file is not PEM or DER");
    junk[0] = 0x30; /* a SEQUENCE whose length does not hold */
    junk[1] = 0x85;
    expect_read_refused(junk, sizeof(junk), "certificate file");
    expect_read_refused((const unsigned char *)"hello world\n", 12, "not PEM or DER");
    expect_read_refused((const unsigned char *)"", 0, "certificate file is empty");
    expect_read_refused(NULL, 0, "empty");
}

static void
test_read_other_blocks_only(void **state)
{
    EVP_PKEY *k = test_ec_key();
    BIO *b = BIO_new(BIO_s_mem());
    unsigned char *pem;
    size_t len;

    (void)state;
    assert_non_null(b);
    assert_true(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL));
    pem = bio_take(b, &len);
    expect_read_refused(pem, len,
                        "certificate file: PEM block 'PRIVATE KEY' is not a "
                        "certificate");
    free(pem);
    b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_true(PEM_write_bio_PUBKEY(b, k));
    pem = bio_take(b, &len);
    expect_read_refused(pem, len, "PEM block 'PUBLIC KEY' is not a certificate");
    free(pem);
    EVP_PKEY_free(k);
}

static void
test_read_pfx_as_certificate(void **state)
{
    struct test_chain c;
    PKCS12 *p12;
    unsigned char *der = NULL;
    int n;

    (void)state;
    test_chain_make(&c);
    p12 = PKCS12_create_ex("pw", "web", c.leaf_key, c.leaf, NULL, NID_aes_256_cbc, NID_aes_256_cbc,
                           1000, 1000, 0, NULL, NULL);
    assert_non_null(p12);
    n = i2d_PKCS12(p12, &der);
    assert_true(n > 0);
    expect_read_refused(der, (size_t)n, "certificate file: looks like a PKCS#12 file: use --pfx");
    OPENSSL_free(der);
    PKCS12_free(p12);
    test_chain_free(&c);
}

/* ordered holds exactly want[0..n) in that order. */
static void
assert_order(STACK_OF(X509) * ordered, X509 *const *want, int n)
{
    assert_non_null(ordered);
    assert_int_equal(sk_X509_num(ordered), n);
    for (int i = 0; i < n; i++) {
        if (X509_cmp(sk_X509_value(ordered, i), want[i]) != 0)
            fail_msg("position %d is not the expected certificate", i);
    }
}

static void
test_order_chain_shuffled(void **state)
{
    static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                    {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    int64_t now = (int64_t)time(NULL);
    struct test_chain c;
    EVP_PKEY *k2 = test_ec_key();
    X509 *int2, *pool[3], *want[3];
    struct test_cert_spec s;

    (void)state;
    test_chain_make(&c);
    /* root -> inter -> int2 -> leaf2: three certificates above the leaf. */
    s = (struct test_cert_spec){"Unit Intermediate 2", NULL, k2,  c.inter, c.int_key, 1, now - DAY,
                                now + 100 * DAY,       10,   NULL};
    int2 = test_cert_make(&s);
    s = (struct test_cert_spec){"leaf2.test", NULL,           c.leaf_key, int2, k2, 0,
                                now - DAY,    now + 10 * DAY, 11,         NULL};
    {
        X509 *leaf2 = test_cert_make(&s);

        pool[0] = c.root;
        pool[1] = c.inter;
        pool[2] = int2;
        want[0] = int2;
        want[1] = c.inter;
        want[2] = c.root;
        for (int p = 0; p < 6; p++) {
            STACK_OF(X509) *given = sk_X509_new_null(), *ordered = NULL;
            char *cause = NULL;

            assert_non_null(given);
            for (int i = 0; i < 3; i++)
                assert_true(sk_X509_push(given, pool[perms[p][i]]) > 0);
            assert_int_equal(pem_order_chain(leaf2, given, &ordered, &cause), 0);
            assert_null(cause);
            assert_order(ordered, want, 3);
            /* New references: the result outlives the input stack. */
            sk_X509_free(given);
            sk_X509_pop_free(ordered, X509_free);
        }
        X509_free(leaf2);
    }
    X509_free(int2);
    EVP_PKEY_free(k2);
    test_chain_free(&c);
}

static void
test_order_chain_duplicates(void **state)
{
    struct test_chain c;
    STACK_OF(X509) *given = sk_X509_new_null(), *ordered = NULL;
    X509 *want[2], *copy;
    unsigned char *der;
    const unsigned char *p;
    size_t len;

    (void)state;
    test_chain_make(&c);
    /* A separate object with the same bytes counts as a duplicate too. */
    der = cert_der(c.inter, &len);
    p = der;
    copy = d2i_X509(NULL, &p, (long)len);
    assert_non_null(copy);
    OPENSSL_free(der);
    assert_non_null(given);
    assert_true(sk_X509_push(given, c.root) > 0);
    assert_true(sk_X509_push(given, c.leaf) > 0);
    assert_true(sk_X509_push(given, c.inter) > 0);
    assert_true(sk_X509_push(given, c.root) > 0);
    assert_true(sk_X509_push(given, copy) > 0);
    assert_true(sk_X509_push(given, c.leaf) > 0);
    assert_int_equal(pem_order_chain(c.leaf, given, &ordered, NULL), 0);
    want[0] = c.inter;
    want[1] = c.root;
    assert_order(ordered, want, 2);
    sk_X509_pop_free(ordered, X509_free);
    sk_X509_free(given);
    X509_free(copy);
    test_chain_free(&c);
}

static void
test_order_chain_partial_and_empty(void **state)
{
    struct test_chain c;
    STACK_OF(X509) *given = sk_X509_new_null(), *ordered = NULL;

    (void)state;
    test_chain_make(&c);
    /* The intermediate alone (no root) is a complete answer. */
    assert_non_null(given);
    assert_true(sk_X509_push(given, c.inter) > 0);
    assert_int_equal(pem_order_chain(c.leaf, given, &ordered, NULL), 0);
    assert_order(ordered, &c.inter, 1);
    sk_X509_pop_free(ordered, X509_free);
    /* Empty and NULL chains give an empty (not NULL) result. */
    sk_X509_zero(given);
    assert_int_equal(pem_order_chain(c.leaf, given, &ordered, NULL), 0);
    assert_order(ordered, NULL, 0);
    sk_X509_free(ordered);
    assert_int_equal(pem_order_chain(c.leaf, NULL, &ordered, NULL), 0);
    assert_order(ordered, NULL, 0);
    sk_X509_free(ordered);
    sk_X509_free(given);
    test_chain_free(&c);
}

static void
test_order_chain_does_not_link(void **state)
{
    int64_t now = (int64_t)time(NULL);
    struct test_chain c;
    STACK_OF(X509) *given = sk_X509_new_null(), *ordered = (STACK_OF(X509) *)1;
    EVP_PKEY *other_key = test_ec_key();
    X509 *stranger, *fake_inter, *root2, *self;
    struct test_cert_spec s;
    char *cause = NULL;

    (void)state;
    test_chain_make(&c);
    s = (struct test_cert_spec){"Stranger CA", NULL,      other_key, NULL, NULL, 1,
                                now - DAY,     now + DAY, 20,        NULL};
    stranger = test_cert_make(&s);
    s.cn = "Other Root";
    s.serial = 21;
    root2 = test_cert_make(&s);
    /* Same name as the real intermediate, another key: names match, signature does not. */
    s = (struct test_cert_spec){
        "Unit Intermediate", "certagent tests", other_key, c.root, c.root_key, 1,
        now - DAY,           now + DAY,         22,        NULL};
    fake_inter = test_cert_make(&s);
    s = (struct test_cert_spec){"self.test", NULL,      c.leaf_key, NULL, NULL,
                                0,           now - DAY, now + DAY,  23,   NULL};
    self = test_cert_make(&s);
    assert_non_null(given);

    /* A certificate that does not belong is named, with the one it did not issue. */
    assert_true(sk_X509_push(given, stranger) > 0);
    assert_true(sk_X509_push(given, c.inter) > 0);
    expect_cause(pem_order_chain(c.leaf, given, &ordered, &cause), -E_BAD_INPUT, &cause,
                 "chain does not link: 'CN=Stranger CA' did not issue "
                 "'CN=Unit Intermediate,O=certagent tests'");
    assert_null(ordered);
    /* With the root too, the stranger is left over above it. */
    assert_true(sk_X509_push(given, c.root) > 0);
    expect_cause(pem_order_chain(c.leaf, given, &ordered, &cause), -E_BAD_INPUT, &cause,
                 "chain does not link: 'CN=Stranger CA' is left over above the self-signed "
                 "root 'CN=Unit Root,O=certagent tests'");
    assert_null(ordered);

    /* A gap: the root without the intermediate. */
    sk_X509_zero(given);
    assert_true(sk_X509_push(given, c.root) > 0);
    expect_cause(pem_order_chain(c.leaf, given, &ordered, &cause), -E_BAD_INPUT, &cause,
                 "chain does not link: 'CN=Unit Root,O=certagent tests' did not issue "
                 "'CN=leaf.test'");

    /* Right name, wrong key: the signature check catches it. */
    sk_X509_zero(given);
    assert_true(sk_X509_push(given, fake_inter) > 0);
    expect_cause(pem_order_chain(c.leaf, given, &ordered, &cause), -E_BAD_INPUT, &cause,
                 "the signature of 'CN=leaf.test' does not verify with the key of "
                 "'CN=Unit Intermediate,O=certagent tests'");

    /* Something above the root. */
    sk_X509_zero(given);
    assert_true(sk_X509_push(given, root2) > 0);
    assert_true(sk_X509_push(given, c.inter) > 0);
    assert_true(sk_X509_push(given, c.root) > 0);
    expect_cause(pem_order_chain(c.leaf, given, &ordered, &cause), -E_BAD_INPUT, &cause,
                 "'CN=Other Root' is left over above the self-signed root "
                 "'CN=Unit Root,O=certagent tests'");

    /* A self-signed leaf takes no chain. */
    sk_X509_zero(given);
    assert_true(sk_X509_push(given, c.inter) > 0);
    expect_cause(pem_order_chain(self, given, &ordered, &cause), -E_BAD_INPUT, &cause,
                 "did not issue 'CN=self.test'");
    assert_int_equal(ERR_peek_error(), 0);

    sk_X509_free(given);
    X509_free(stranger);
    X509_free(root2);
    X509_free(fake_inter);
    X509_free(self);
    EVP_PKEY_free(other_key);
    test_chain_free(&c);
}

/* Upper-case colon-separated SHA-256 of cert, computed here independently. */
static void
fingerprint_of(X509 *x, char *out, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    size_t used = 0;

    assert_true(X509_digest(x, EVP_sha256(), md, &n));
    assert_int_equal(n, 32);
    for (unsigned int i = 0; i < n; i++) {
        int w = snprintf(out + used, len - used, i ? ":%02X" : "%02X", md[i]);

        assert_true(w > 0 && (size_t)w < len - used);
        used += (size_t)w;
    }
}

static void
test_cert_info_fields(void **state)
{
    int64_t nb = 1700000000, na = 1700000000 + 90 * DAY;
    struct test_chain c;
    struct cert_info info;
    struct test_cert_spec s;
    X509 *x;
    char fp[128];

    (void)state;
    test_chain_make(&c);
    s = (struct test_cert_spec){"www.example.test",
                                "Example",
                                c.leaf_key,
                                c.inter,
                                c.int_key,
                                0,
                                nb,
                                na,
                                0x0123abcd,
                                "DNS:www.example.test,DNS:example.test,IP:192.0.2.7,"
                                "IP:2001:db8::1,email:a@example.test"};
    x = test_cert_make(&s);
    assert_int_equal(pem_cert_info(x, &info, NULL), 0);
    assert_string_equal(info.subject, "CN=www.example.test,O=Example");
    assert_string_equal(info.common_name, "www.example.test");
    assert_string_equal(info.issuer, "CN=Unit Intermediate,O=certagent tests");
    assert_string_equal(info.serial, "0123ABCD");
    fingerprint_of(x, fp, sizeof(fp));
    assert_string_equal(info.fingerprint, fp);
    assert_int_equal(strlen(info.fingerprint), 95);
    assert_int_equal(info.ndns, 2);
    assert_string_equal(info.dns[0], "www.example.test");
    assert_string_equal(info.dns[1], "example.test");
    assert_int_equal(info.nips, 2);
    assert_string_equal(info.ips[0], "192.0.2.7");
    assert_string_equal(info.ips[1], "2001:DB8:0:0:0:0:0:1");
    assert_int_equal(info.not_before, nb);
    assert_int_equal(info.not_after, na);
    assert_string_equal(info.key_type, "EC");
    assert_int_equal(info.key_bits, 256);
    assert_string_equal(info.key_curve, "P-256");
    assert_string_equal(info.sig_alg, "ecdsa-with-SHA256");
    assert_false(info.self_signed);
    assert_false(info.is_ca);
    pem_cert_info_free(&info);
    assert_null(info.subject);
    pem_cert_info_free(&info); /* twice is harmless */
    X509_free(x);

    /* CA and self-signed flags. */
    assert_int_equal(pem_cert_info(c.inter, &info, NULL), 0);
    assert_true(info.is_ca);
    assert_false(info.self_signed);
    assert_int_equal(info.ndns, 0);
    assert_null(info.dns);
    pem_cert_info_free(&info);
    assert_int_equal(pem_cert_info(c.root, &info, NULL), 0);
    assert_true(info.is_ca);
    assert_true(info.self_signed);
    assert_string_equal(info.subject, info.issuer);
    pem_cert_info_free(&info);
    test_chain_free(&c);
}

static void
test_cert_info_key_types(void **state)
{
    static const struct {
        const char *alg;
        const char *param;
        const char *type, *curve, *sig;
        int bits;
    } cases[] = {
        {"EC", "P-384", "EC", "P-384", "ecdsa-with-SHA256", 384},
        {"RSA", NULL, "RSA", "", "sha256WithRSAEncryption", 2048},
        {"ED25519", NULL, "Ed25519", "", "ED25519", 256},
    };
    int64_t now = (int64_t)time(NULL);

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY *k;
        struct test_cert_spec s;
        struct cert_info info;
        X509 *x;

        if (strcmp(cases[i].alg, "EC") == 0)
            k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", cases[i].param);
        else if (strcmp(cases[i].alg, "RSA") == 0)
            k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        else
            k = EVP_PKEY_Q_keygen(NULL, NULL, cases[i].alg);
        assert_non_null(k);
        s = (struct test_cert_spec){"k.test", NULL,      k,         NULL, NULL,
                                    0,        now - DAY, now + DAY, 5,    NULL};
        x = test_cert_make(&s);
        assert_int_equal(pem_cert_info(x, &info, NULL), 0);
        assert_string_equal(info.key_type, cases[i].type);
        assert_string_equal(info.key_curve, cases[i].curve);
        assert_string_equal(info.sig_alg, cases[i].sig);
        assert_int_equal(info.key_bits, cases[i].bits);
        assert_true(info.self_signed);
        pem_cert_info_free(&info);
        X509_free(x);
        EVP_PKEY_free(k);
    }
}

static void
test_validity_and_days_left(void **state)
{
    int64_t now = (int64_t)time(NULL);
    struct test_chain c;
    struct test_cert_spec s;
    struct cert_info info;
    X509 *expired, *future, *far;
    EVP_PKEY *k = test_ec_key();

    (void)state;
    test_chain_make(&c);
    s = (struct test_cert_spec){"expired.test",  NULL,           k, NULL, NULL, 0,
                                now - 400 * DAY, now - 30 * DAY, 7, NULL};
    expired = test_cert_make(&s);
    s = (struct test_cert_spec){"future.test",   NULL, k,   NULL, NULL, 0, now + 10 * DAY,
                                now + 100 * DAY, 8,    NULL};
    future = test_cert_make(&s);
    /* After 2049 the dates are GeneralizedTime. */
    s = (struct test_cert_spec){
        "far.test", NULL, k, NULL, NULL, 0, now - DAY, INT64_C(4102444800) + 86399, 9, NULL};
    far = test_cert_make(&s);

    assert_int_equal(pem_cert_validity(c.leaf, now), 0);
    assert_int_equal(pem_cert_validity(expired, now), 1);
    assert_int_equal(pem_cert_validity(future, now), -1);
    assert_int_equal(pem_cert_validity(far, now), 0);
    /* The edges: valid through not_after, not before not_before. */
    assert_int_equal(pem_cert_validity(expired, now - 30 * DAY), 0);
    assert_int_equal(pem_cert_validity(expired, now - 30 * DAY + 1), 1);
    assert_int_equal(pem_cert_validity(future, now + 10 * DAY), 0);
    assert_int_equal(pem_cert_validity(future, now + 10 * DAY - 1), -1);
    assert_int_equal(pem_cert_info(far, &info, NULL), 0);
    assert_int_equal(info.not_after, INT64_C(4102444800) + 86399); /* 2100-01-01T23:59:59Z */
    pem_cert_info_free(&info);

    assert_int_equal(pem_days_left(now + 3 * DAY + 5, now), 3);
    assert_int_equal(pem_days_left(now + DAY - 1, now), 0);
    assert_int_equal(pem_days_left(now, now), 0);
    assert_int_equal(pem_days_left(now - 1, now), -1);
    assert_int_equal(pem_days_left(now - DAY, now), -1);
    assert_int_equal(pem_days_left(now - DAY - 1, now), -2);
    assert_int_equal(pem_days_left(now - 30 * DAY, now), -30);
    X509_free(expired);
    X509_free(future);
    X509_free(far);
    EVP_PKEY_free(k);
    test_chain_free(&c);
}

static void
test_write_certs(void **state)
{
    struct test_chain c;
    STACK_OF(X509) *certs = sk_X509_new_null(), *back = NULL;
    char *pem = NULL;
    size_t len = 0;

    (void)state;
    test_chain_make(&c);
    assert_non_null(certs);
    assert_true(sk_X509_push(certs, c.leaf) > 0);
    assert_true(sk_X509_push(certs, c.inter) > 0);
    assert_int_equal(pem_write_certs(certs, &pem, &len, NULL), 0);
    assert_int_equal(strlen(pem), len);
    assert_int_equal(strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28), 0);
    assert_int_equal(pem_read_certs((unsigned char *)pem, len, "out", &back, NULL), 0);
    assert_int_equal(sk_X509_num(back), 2);
    assert_int_equal(X509_cmp(sk_X509_value(back, 0), c.leaf), 0);
    assert_int_equal(X509_cmp(sk_X509_value(back, 1), c.inter), 0);
    sk_X509_pop_free(back, X509_free);
    free(pem);

    assert_int_equal(pem_write_cert(c.root, &pem, &len, NULL), 0);
    assert_int_equal(pem_read_certs((unsigned char *)pem, len, "out", &back, NULL), 0);
    assert_int_equal(sk_X509_num(back), 1);
    assert_int_equal(X509_cmp(sk_X509_value(back, 0), c.root), 0);
    sk_X509_pop_free(back, X509_free);
    free(pem);

    /* No certificates: an empty string, not NULL. */
    sk_X509_zero(certs);
    assert_int_equal(pem_write_certs(certs, &pem, &len, NULL), 0);
    assert_non_null(pem);
    assert_int_equal(len, 0);
    assert_string_equal(pem, "");
    free(pem);
    sk_X509_free(certs);
    test_chain_free(&c);
}

static void
test_ssl_reason_and_has_text(void **state)
{
    static const unsigned char bin[] = {'a', 0, 'P', 'K', 'C', 'S', 0, 'z'};
    const unsigned char *p = (const unsigned char *)"\x30\x03\x02\x01";
    char buf[160];
    X509 *x;

    (void)state;
    ERR_clear_error();
    assert_string_equal(pem_ssl_reason(buf, sizeof(buf)), "unknown error");
    x = d2i_X509(NULL, &p, 4);
    assert_null(x);
    assert_int_not_equal(ERR_peek_error(), 0);
    pem_ssl_reason(buf, sizeof(buf));
    assert_true(strlen(buf) > 0);
    assert_null(strstr(buf, "error:"));
    assert_string_not_equal(buf, "unknown error");
    assert_int_equal(ERR_peek_error(), 0);
    /* A small buffer is cut, not overrun. */
    ERR_raise(ERR_LIB_X509, X509_R_KEY_VALUES_MISMATCH);
    assert_int_equal(strlen(pem_ssl_reason(buf, 4)), 3);

    assert_true(pem_has_text(bin, sizeof(bin), "PKCS"));
    assert_true(pem_has_text(bin, sizeof(bin), "z"));
    assert_false(pem_has_text(bin, sizeof(bin), "PKCS#"));
    assert_false(pem_has_text(bin, 5, "PKCS"));
    assert_false(pem_has_text(NULL, 0, "x"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_pem_several),
        cmocka_unit_test(test_read_der),
        cmocka_unit_test(test_read_truncated_pem),
        cmocka_unit_test(test_read_damaged_pem),
        cmocka_unit_test(test_read_garbage_and_empty),
        cmocka_unit_test(test_read_other_blocks_only),
        cmocka_unit_test(test_read_pfx_as_certificate),
        cmocka_unit_test(test_order_chain_shuffled),
        cmocka_unit_test(test_order_chain_duplicates),
        cmocka_unit_test(test_order_chain_partial_and_empty),
        cmocka_unit_test(test_order_chain_does_not_link),
        cmocka_unit_test(test_cert_info_fields),
        cmocka_unit_test(test_cert_info_key_types),
        cmocka_unit_test(test_validity_and_days_left),
        cmocka_unit_test(test_write_certs),
        cmocka_unit_test(test_ssl_reason_and_has_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
