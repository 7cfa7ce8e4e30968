/*
 * Private keys (agent/keys.c): generation of every type and the self-signed
 * certificates made with them, parsing of PEM, DER and encrypted keys,
 * PKCS#12 export and import, and messages that name the problem without
 * ever repeating a password.  Certificates are made here at run time; the
 * fixed files of tests/data (made by the openssl command line) are read too,
 * as a check that we read what other tools write.
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
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "keys.h"
#include "pem.h"
#include "testpki.h"

#define DAY TESTPKI_DAY
#define PASSWORD "s3cret-pass"
#define WRONG_PASSWORD "wrong-guess"

/* rc is want and *cause holds fragment (and no password); frees the cause.  The failure
 * leaves OpenSSL's error queue empty. */
static void
expect_cause(int rc, int want, char **cause, const char *fragment)
{
    static const char *const passwords[] = {PASSWORD, WRONG_PASSWORD, "horse", NULL};

    test_expect_cause(rc, want, cause, fragment, passwords);
    assert_int_equal(ERR_peek_error(), 0);
}

/* A CA or end-entity certificate for key, signed by issuer_key (NULL: self), valid from
 * yesterday for 30 days. */
static X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, int ca, long serial)
{
    int64_t now = (int64_t)time(NULL);
    struct test_cert_spec s = {cn,        NULL,           key,    issuer, issuer_key, ca,
                               now - DAY, now + 30 * DAY, serial, NULL};

    return test_cert_make(&s);
}

/* Heap copy of what a memory BIO holds; the BIO is freed. */
static unsigned char *
bio_take(BIO *b, size_t *len)
{
    char *p = NULL;
    long l = BIO_get_mem_data(b, &p);
    unsigned char *out;

    assert_true(l > 0);
    out = malloc((size_t)l + 1);
    assert_non_null(out);
    memcpy(out, p, (size_t)l);
    out[l] = '\0';
    *len = (size_t)l;
    BIO_free(b);
    return out;
}

static BIO *
mem_bio(void)
{
    BIO *b = BIO_new(BIO_s_mem());

    assert_non_null(b);
    return b;
}

/* The struct key for an OpenSSL key, through keys_parse of its PKCS#8 PEM. */
static struct key *
key_of(EVP_PKEY *pk)
{
    BIO *b = mem_bio();
    struct key *k = NULL;
    unsigned char *pem;
    size_t len;

    assert_true(PEM_write_bio_PKCS8PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL));
    pem = bio_take(b, &len);
    assert_int_equal(keys_parse(pem, len, NULL, &k, NULL), 0);
    assert_non_null(k);
    free(pem);
    return k;
}

/* Does the certificate's public key equal pk? */
static int
cert_has_key(X509 *x, EVP_PKEY *pk)
{
    return EVP_PKEY_eq(X509_get0_pubkey(x), pk) == 1;
}

static void
test_type_names(void **state)
{
    static const struct {
        const char *name;
        enum key_type type;
    } types[] = {{"ec256", KEY_EC256},     {"ec384", KEY_EC384},     {"rsa2048", KEY_RSA2048},
                 {"rsa3072", KEY_RSA3072}, {"rsa4096", KEY_RSA4096}, {"ed25519", KEY_ED25519}};
    enum key_type t;
    char *cause = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        assert_int_equal(keys_type_parse(types[i].name, &t, NULL), 0);
        assert_int_equal(t, types[i].type);
        assert_string_equal(keys_type_name(types[i].type), types[i].name);
    }
    expect_cause(keys_type_parse("dsa", &t, &cause), -E_BAD_INPUT, &cause,
                 "unknown key type 'dsa': use ec256, ec384, rsa2048, rsa3072, rsa4096 or "
                 "ed25519");
    expect_cause(keys_type_parse("EC256", &t, &cause), -E_BAD_INPUT, &cause, "unknown key type");
    expect_cause(keys_type_parse("", &t, &cause), -E_BAD_INPUT, &cause, "unknown key type");
}

/* Everything a user checks on a self-signed certificate made by keys_selfsigned. */
static void
check_selfsigned(X509 *x, int rsa, const char *sig_alg, int days, int64_t made_at)
{
    struct cert_info info;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    BIGNUM *serial;
    int idx;

    /* Signed by its own key, issuer == subject. */
    assert_int_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
    assert_int_equal(pem_cert_info(x, &info, NULL), 0);
    assert_true(info.self_signed);
    assert_false(info.is_ca);
    assert_string_equal(info.subject, "CN=a.test");
    assert_string_equal(info.issuer, "CN=a.test");
    assert_string_equal(info.sig_alg, sig_alg);
    /* Validity: five minutes back (clock skew), then the days asked for. */
    assert_true(info.not_before >= made_at - 300 - 5 && info.not_before <= made_at - 300 + 5);
    assert_int_equal(info.not_after - info.not_before, (int64_t)days * DAY + 300);
    /* The SANs asked for, in order. */
    assert_int_equal(info.ndns, 2);
    assert_string_equal(info.dns[0], "a.test");
    assert_string_equal(info.dns[1], "*.b.test");
    assert_int_equal(info.nips, 2);
    assert_string_equal(info.ips[0], "192.0.2.1");
    assert_string_equal(info.ips[1], "2001:DB8:0:0:0:0:0:1");
    pem_cert_info_free(&info);
    assert_int_equal(X509_check_host(x, "a.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "www.b.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "c.test", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(x, "2001:db8::1", 0), 1);

    /* CA:FALSE, critical; usages for a TLS server and client. */
    assert_int_equal(X509_check_ca(x), 0);
    idx = X509_get_ext_by_NID(x, NID_basic_constraints, -1);
    assert_true(idx >= 0);
    assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(x, idx)), 1);
    assert_int_equal(X509_get_key_usage(x),
                     rsa ? KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT : KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER | XKU_SSL_CLIENT);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
    /* A positive 128-bit serial. */
    serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    assert_non_null(serial);
    assert_false(BN_is_negative(serial));
    assert_int_equal(BN_num_bytes(serial), 16);
    BN_free(serial);

    /* Trusted as itself, it verifies as a TLS server certificate for its name. */
    assert_non_null(store);
    assert_non_null(ctx);
    assert_true(X509_STORE_add_cert(store, x));
    assert_true(X509_STORE_CTX_init(ctx, store, x, NULL));
    assert_true(X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER));
    assert_true(X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), "a.test", 0));
    if (X509_verify_cert(ctx) != 1)
        fail_msg("verify: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
}

static void
test_generate_and_selfsign_every_type(void **state)
{
    static const struct {
        enum key_type type;
        const char *desc, *sig;
        int rsa;
    } types[] = {
        {KEY_EC256, "EC P-256", "ecdsa-with-SHA256", 0},
        {KEY_EC384, "EC P-384", "ecdsa-with-SHA256", 0},
        {KEY_RSA2048, "RSA 2048", "sha256WithRSAEncryption", 1},
        {KEY_RSA3072, "RSA 3072", "sha256WithRSAEncryption", 1},
        {KEY_RSA4096, "RSA 4096", "sha256WithRSAEncryption", 1},
        {KEY_ED25519, "Ed25519", "ED25519", 0},
    };
    const char *dns[] = {"a.test", "*.b.test"};
    const char *ips[] = {"192.0.2.1", "2001:db8::1"};
    struct key *other = NULL;
    X509 *other_cert = NULL;

    (void)state;
    assert_int_equal(keys_generate(KEY_EC256, &other, NULL), 0);
    assert_int_equal(keys_selfsigned(other, "other.test", NULL, 0, NULL, 0, 1, &other_cert, NULL),
                     0);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        struct key *k = NULL, *k2 = NULL;
        X509 *x = NULL;
        char *desc, *cause = NULL;
        int64_t now;

        assert_int_equal(keys_generate(types[i].type, &k, &cause), 0);
        assert_null(cause);
        assert_non_null(k);
        desc = keys_describe(k);
        assert_non_null(desc);
        assert_string_equal(desc, types[i].desc);
        free(desc);
        /* After key generation, which takes seconds for RSA 4096 on a loaded machine. */
        now = (int64_t)time(NULL);
        assert_int_equal(keys_selfsigned(k, "a.test", dns, 2, ips, 2, 30, &x, &cause), 0);
        assert_null(cause);
        check_selfsigned(x, types[i].rsa, types[i].sig, 30, now);

        /* The key matches its certificate, and no other key or certificate does. */
        assert_int_equal(keys_match_cert(k, x, NULL), 0);
        expect_cause(keys_match_cert(other, x, &cause), -E_BAD_INPUT, &cause,
                     "private key does not match the certificate");
        expect_cause(keys_match_cert(k, other_cert, &cause), -E_BAD_INPUT, &cause,
                     "private key does not match the certificate");
        /* A second key of the same type is a different key. */
        if (types[i].type != KEY_RSA4096 && types[i].type != KEY_RSA3072) {
            assert_int_equal(keys_generate(types[i].type, &k2, NULL), 0);
            expect_cause(keys_match_cert(k2, x, &cause), -E_BAD_INPUT, &cause,
                         "private key does not match the certificate");
            keys_free(k2);
        }
        X509_free(x);
        keys_free(k);
    }
    X509_free(other_cert);
    keys_free(other);
    keys_free(NULL);
}

static void
test_selfsigned_variants_and_refusals(void **state)
{
    const char *bad_ips[] = {"300.1.1.1", "1.2.3", "2001:db8::zz", "www.example.test", ""};
    const char *bad_dns[] = {"bad name", "a..b", ".a.test", "a.test.", "é.test", ""};
    const char *ok_ip[] = {"10.0.0.1"};
    char long_cn[80];
    struct key *k = NULL;
    struct cert_info info;
    X509 *x = (X509 *)1;
    char *cause = NULL, want[64];

    (void)state;
    assert_int_equal(keys_generate(KEY_EC256, &k, NULL), 0);
    for (size_t i = 0; i < sizeof(bad_ips) / sizeof(bad_ips[0]); i++) {
        snprintf(want, sizeof(want), "'%s' is not an IPv4 or IPv6 address", bad_ips[i]);
        expect_cause(keys_selfsigned(k, "x.test", NULL, 0, &bad_ips[i], 1, 1, &x, &cause),
                     -E_BAD_INPUT, &cause, want);
        assert_null(x);
    }
    for (size_t i = 0; i < sizeof(bad_dns) / sizeof(bad_dns[0]); i++) {
        snprintf(want, sizeof(want), "'%s' is not a valid DNS name", bad_dns[i]);
        expect_cause(keys_selfsigned(k, "x.test", &bad_dns[i], 1, NULL, 0, 1, &x, &cause),
                     -E_BAD_INPUT, &cause, want);
    }
    memset(long_cn, 'a', 65);
    long_cn[65] = '\0';
    expect_cause(keys_selfsigned(k, long_cn, NULL, 0, NULL, 0, 1, &x, &cause), -E_BAD_INPUT,
                 &cause, "longer than 64 characters");
    expect_cause(keys_selfsigned(k, "", NULL, 0, NULL, 0, 1, &x, &cause), -E_BAD_INPUT, &cause,
                 "needs a common name");
    expect_cause(keys_selfsigned(k, "x.test", NULL, 0, NULL, 0, 0, &x, &cause), -E_BAD_INPUT,
                 &cause, "validity of 0 days is out of range");
    expect_cause(keys_selfsigned(k, "x.test", NULL, 0, NULL, 0, 36501, &x, &cause), -E_BAD_INPUT,
                 &cause, "out of range (1 to 36500)");

    /* Only an address, or no SAN at all (then there is no empty extension). */
    assert_int_equal(keys_selfsigned(k, "10.0.0.1", NULL, 0, ok_ip, 1, 1, &x, NULL), 0);
    assert_int_equal(pem_cert_info(x, &info, NULL), 0);
    assert_int_equal(info.ndns, 0);
    assert_int_equal(info.nips, 1);
    assert_string_equal(info.common_name, "10.0.0.1");
    pem_cert_info_free(&info);
    X509_free(x);
    assert_int_equal(keys_selfsigned(k, "plain", NULL, 0, NULL, 0, 36500, &x, NULL), 0);
    assert_true(X509_get_ext_by_NID(x, NID_subject_alt_name, -1) < 0);
    assert_int_equal(pem_cert_info(x, &info, NULL), 0);
    assert_int_equal(info.not_after - info.not_before, 36500LL * DAY + 300);
    pem_cert_info_free(&info);
    X509_free(x);
    /* Two certificates never share a serial. */
    {
        X509 *a = NULL, *b = NULL;

        assert_int_equal(keys_selfsigned(k, "s", NULL, 0, NULL, 0, 1, &a, NULL), 0);
        assert_int_equal(keys_selfsigned(k, "s", NULL, 0, NULL, 0, 1, &b, NULL), 0);
        assert_int_not_equal(
            ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)), 0);
        X509_free(a);
        X509_free(b);
    }
    keys_free(k);
}

/* keys_parse(data) gives a key equal to pk. */
static void
expect_parses_to(const unsigned char *data, size_t len, const char *password, EVP_PKEY *pk,
                 X509 *cert)
{
    struct key *k = NULL;
    char *cause = NULL;

    if (keys_parse(data, len, password, &k, &cause) != 0)
        fail_msg("keys_parse: %s", cause != NULL ? cause : "(no cause)");
    assert_non_null(k);
    assert_int_equal(keys_match_cert(k, cert, NULL), 0);
    assert_true(cert_has_key(cert, pk));
    keys_free(k);
}

static void
test_parse_plain_pem_and_der(void **state)
{
    EVP_PKEY *keys[3];
    const char *want_pem[3] = {"-----BEGIN EC PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----",
                               NULL};

    (void)state;
    keys[0] = test_ec_key();
    keys[1] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    keys[2] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(keys[1]);
    assert_non_null(keys[2]);
    for (int i = 0; i < 3; i++) {
        X509 *x = make_cert("k.test", keys[i], NULL, NULL, 0, 9);
        unsigned char *data, *der = NULL;
        size_t len;
        int n;
        BIO *b;

        /* PKCS#8 PEM. */
        b = mem_bio();
        assert_true(PEM_write_bio_PKCS8PrivateKey(b, keys[i], NULL, NULL, 0, NULL, NULL));
        data = bio_take(b, &len);
        expect_parses_to(data, len, NULL, keys[i], x);
        /* A password given for a key that has none is not an error. */
        expect_parses_to(data, len, PASSWORD, keys[i], x);
        free(data);
        /* Traditional PEM ("EC PRIVATE KEY", "RSA PRIVATE KEY"; Ed25519 has none). */
        if (want_pem[i] != NULL) {
            b = mem_bio();
            assert_true(
                PEM_write_bio_PrivateKey_traditional(b, keys[i], NULL, NULL, 0, NULL, NULL));
            data = bio_take(b, &len);
            assert_non_null(strstr((char *)data, want_pem[i]));
            expect_parses_to(data, len, NULL, keys[i], x);
            free(data);
        }
        /* Certificate first, then the key, in one file. */
        b = mem_bio();
        assert_true(PEM_write_bio_X509(b, x));
        assert_true(PEM_write_bio_PKCS8PrivateKey(b, keys[i], NULL, NULL, 0, NULL, NULL));
        data = bio_take(b, &len);
        expect_parses_to(data, len, NULL, keys[i], x);
        free(data);
        /* DER: PKCS#8 and traditional. */
        b = mem_bio();
        assert_true(i2d_PKCS8PrivateKey_bio(b, keys[i], NULL, NULL, 0, NULL, NULL));
        data = bio_take(b, &len);
        expect_parses_to(data, len, NULL, keys[i], x);
        free(data);
        n = i2d_PrivateKey(keys[i], &der);
        assert_true(n > 0);
        expect_parses_to(der, (size_t)n, NULL, keys[i], x);
        OPENSSL_free(der);
        X509_free(x);
    }
    for (int i = 0; i < 3; i++)
        EVP_PKEY_free(keys[i]);
}

static void
test_parse_encrypted(void **state)
{
    EVP_PKEY *pk = test_ec_key();
    X509 *x = make_cert("enc.test", pk, NULL, NULL, 0, 4);
    unsigned char *data[3];
    size_t len[3];
    struct key *k = (struct key *)1;
    char *cause = NULL;
    BIO *b;

    (void)state;
    /* Encrypted PKCS#8 PEM, legacy encrypted PEM, encrypted PKCS#8 DER. */
    b = mem_bio();
    assert_true(
        PEM_write_bio_PKCS8PrivateKey(b, pk, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)PASSWORD));
    data[0] = bio_take(b, &len[0]);
    assert_non_null(strstr((char *)data[0], "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    b = mem_bio();
    assert_true(PEM_write_bio_PrivateKey_traditional(
        b, pk, EVP_aes_256_cbc(), (unsigned char *)PASSWORD, (int)strlen(PASSWORD), NULL, NULL));
    data[1] = bio_take(b, &len[1]);
    assert_non_null(strstr((char *)data[1], "Proc-Type: 4,ENCRYPTED"));
    b = mem_bio();
    assert_true(
        i2d_PKCS8PrivateKey_bio(b, pk, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)PASSWORD));
    data[2] = bio_take(b, &len[2]);

    for (int i = 0; i < 3; i++) {
        expect_parses_to(data[i], len[i], PASSWORD, pk, x);
        expect_cause(keys_parse(data[i], len[i], WRONG_PASSWORD, &k, &cause), -E_BAD_INPUT, &cause,
                     "wrong password for the private key");
        assert_null(k);
        expect_cause(keys_parse(data[i], len[i], NULL, &k, &cause), -E_BAD_INPUT, &cause,
                     "private key is encrypted: give --password-file");
        expect_cause(keys_parse(data[i], len[i], "", &k, &cause), -E_BAD_INPUT, &cause,
                     "wrong password for the private key");
        free(data[i]);
    }
    X509_free(x);
    EVP_PKEY_free(pk);
}

static void
test_parse_refusals(void **state)
{
    struct test_chain c;
    unsigned char *pem, *der = NULL, junk[512];
    size_t len;
    int n;
    struct key *k = (struct key *)1;
    char *cause = NULL;
    BIO *b;

    (void)state;
    test_chain_make(&c);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    expect_cause(keys_parse(junk, sizeof(junk), NULL, &k, &cause), -E_BAD_INPUT, &cause,
                 "key file is not a private key in PEM or DER form");
    assert_null(k);
    expect_cause(keys_parse((const unsigned char *)"", 0, NULL, &k, &cause), -E_BAD_INPUT, &cause,
                 "the key file is empty");

    /* Truncated PEM key, damaged body. */
    b = mem_bio();
    assert_true(PEM_write_bio_PKCS8PrivateKey(b, c.leaf_key, NULL, NULL, 0, NULL, NULL));
    pem = bio_take(b, &len);
    expect_cause(keys_parse(pem, len / 2, NULL, &k, &cause), -E_BAD_INPUT, &cause,
                 "truncated PEM block");
    pem[40] = '*';
    pem[41] = '*';
    expect_cause(keys_parse(pem, len, NULL, &k, &cause), -E_BAD_INPUT, &cause,
                 "key file: the private key is damaged");
    free(pem);

    /* A certificate or a public key where the key was expected. */
    b = mem_bio();
    assert_true(PEM_write_bio_X509(b, c.leaf));
    pem = bio_take(b, &len);
    expect_cause(keys_parse(pem, len, NULL, &k, &cause), -E_BAD_INPUT, &cause,
                 "no private key found in key file");
    free(pem);
    b = mem_bio();
    assert_true(PEM_write_bio_PUBKEY(b, c.leaf_key));
    pem = bio_take(b, &len);
    expect_cause(keys_parse(pem, len, NULL, &k, &cause), -E_BAD_INPUT, &cause,
                 "no private key found in key file");
    free(pem);
    n = i2d_X509(c.leaf, &der);
    assert_true(n > 0);
    expect_cause(keys_parse(der, (size_t)n, NULL, &k, &cause), -E_BAD_INPUT, &cause,
                 "key file holds a certificate, not a private key");
    OPENSSL_free(der);
    der = NULL;
    n = i2d_PUBKEY(c.leaf_key, &der);
    assert_true(n > 0);
    expect_cause(keys_parse(der, (size_t)n, NULL, &k, &cause), -E_BAD_INPUT, &cause,
                 "not a private key");
    OPENSSL_free(der);
    der = NULL;
    /* Truncated DER key. */
    n = i2d_PrivateKey(c.leaf_key, &der);
    assert_true(n > 0);
    expect_cause(keys_parse(der, (size_t)n / 2, NULL, &k, &cause), -E_BAD_INPUT, &cause,
                 "not a private key in PEM or DER form");
    OPENSSL_free(der);

    /* A PFX where the key was expected. */
    {
        struct key *lk = key_of(c.leaf_key);
        unsigned char *pfx = NULL;

        assert_int_equal(keys_export_pfx(lk, c.leaf, NULL, PASSWORD, "web", &pfx, &len, NULL), 0);
        expect_cause(keys_parse(pfx, len, NULL, &k, &cause), -E_BAD_INPUT, &cause,
                     "key file: looks like a PKCS#12 file: use --pfx");
        keys_free_secret(pfx, len);
        keys_free(lk);
    }
    test_chain_free(&c);
}

static void
test_to_pem(void **state)
{
    struct key *k = NULL, *back = NULL;
    X509 *x = NULL;
    char *pem = NULL, *desc;
    size_t len = 0;

    (void)state;
    assert_int_equal(keys_generate(KEY_ED25519, &k, NULL), 0);
    assert_int_equal(keys_to_pem(k, &pem, &len, NULL), 0);
    assert_int_equal(strlen(pem), len);
    assert_int_equal(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28), 0);
    assert_null(strstr(pem, "ENCRYPTED"));
    assert_int_equal(keys_parse((unsigned char *)pem, len, NULL, &back, NULL), 0);
    desc = keys_describe(back);
    assert_string_equal(desc, "Ed25519");
    free(desc);
    assert_int_equal(keys_selfsigned(k, "r.test", NULL, 0, NULL, 0, 1, &x, NULL), 0);
    assert_int_equal(keys_match_cert(back, x, NULL), 0);
    keys_free_secret(pem, len);
    keys_free_secret(NULL, 10);
    keys_free(k);
    keys_free(back);
    X509_free(x);
}

/* PBES2 with PBKDF2/HMAC-SHA256 and AES-256-CBC. */
static void
assert_pbes2_aes256(const X509_ALGOR *alg)
{
    const ASN1_OBJECT *obj;
    const void *pval;
    int ptype;
    PBE2PARAM *pbe2;
    PBKDF2PARAM *kdf;

    X509_ALGOR_get0(&obj, &ptype, &pval, alg);
    assert_int_equal(OBJ_obj2nid(obj), NID_pbes2);
    assert_int_equal(ptype, V_ASN1_SEQUENCE);
    pbe2 = ASN1_item_unpack(pval, ASN1_ITEM_rptr(PBE2PARAM));
    assert_non_null(pbe2);
    assert_int_equal(OBJ_obj2nid(pbe2->encryption->algorithm), NID_aes_256_cbc);
    assert_int_equal(OBJ_obj2nid(pbe2->keyfunc->algorithm), NID_id_pbkdf2);
    kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter);
    assert_non_null(kdf);
    assert_non_null(kdf->prf); /* absent would mean HMAC-SHA1 */
    assert_int_equal(OBJ_obj2nid(kdf->prf->algorithm), NID_hmacWithSHA256);
    PBKDF2PARAM_free(kdf);
    PBE2PARAM_free(pbe2);
}

/* The PFX's MAC is SHA-256 and every encrypted part is AES-256 (what Windows 10+ reads). */
static void
assert_pfx_algorithms(const unsigned char *der, size_t len, int want_key)
{
    const unsigned char *p = der;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    const X509_ALGOR *macalg = NULL;
    const ASN1_OBJECT *obj;
    STACK_OF(PKCS7) * safes;
    int encrypted = 0, shrouded = 0;

    assert_non_null(p12);
    PKCS12_get0_mac(NULL, &macalg, NULL, NULL, p12);
    assert_non_null(macalg);
    X509_ALGOR_get0(&obj, NULL, NULL, macalg);
    assert_int_equal(OBJ_obj2nid(obj), NID_sha256);
    safes = PKCS12_unpack_authsafes(p12);
    assert_non_null(safes);
    for (int i = 0; i < sk_PKCS7_num(safes); i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);
        STACK_OF(PKCS12_SAFEBAG) * bags;

        if (OBJ_obj2nid(p7->type) == NID_pkcs7_encrypted) {
            assert_pbes2_aes256(p7->d.encrypted->enc_data->algorithm);
            encrypted++;
            continue;
        }
        assert_int_equal(OBJ_obj2nid(p7->type), NID_pkcs7_data);
        bags = PKCS12_unpack_p7data(p7);
        assert_non_null(bags);
        for (int j = 0; j < sk_PKCS12_SAFEBAG_num(bags); j++) {
            const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, j);
            const X509_ALGOR *alg;

            /* No key ever travels unencrypted. */
            assert_int_not_equal(PKCS12_SAFEBAG_get_nid(bag), NID_keyBag);
            if (PKCS12_SAFEBAG_get_nid(bag) == NID_pkcs8ShroudedKeyBag) {
                X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
                assert_pbes2_aes256(alg);
                shrouded++;
            }
        }
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    }
    assert_int_equal(encrypted, 1);
    assert_int_equal(shrouded, want_key ? 1 : 0);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    PKCS12_free(p12);
}

/* Does chain hold exactly a and b, in any order? */
static void
assert_chain_is(STACK_OF(X509) * chain, X509 *a, X509 *b)
{
    assert_non_null(chain);
    assert_int_equal(sk_X509_num(chain), 2);
    assert_true(
        (X509_cmp(sk_X509_value(chain, 0), a) == 0 && X509_cmp(sk_X509_value(chain, 1), b) == 0) ||
        (X509_cmp(sk_X509_value(chain, 0), b) == 0 && X509_cmp(sk_X509_value(chain, 1), a) == 0));
}

static void
test_pfx_roundtrip(void **state)
{
    static const char *const passwords[] = {PASSWORD, "", NULL};
    struct test_chain c;
    struct key *k;
    STACK_OF(X509) *chain = sk_X509_new_null();

    (void)state;
    test_chain_make(&c);
    k = key_of(c.leaf_key);
    assert_non_null(chain);
    assert_true(sk_X509_push(chain, c.inter) > 0);
    assert_true(sk_X509_push(chain, c.root) > 0);
    for (size_t i = 0; i < sizeof(passwords) / sizeof(passwords[0]); i++) {
        const char *pw = passwords[i];
        unsigned char *pfx = NULL;
        size_t len = 0;
        struct key *back = NULL;
        X509 *leaf = NULL;
        STACK_OF(X509) *chain_back = NULL;
        const char *again[2];
        int alen = 0;

        assert_int_equal(
            keys_export_pfx(k, c.leaf, chain, pw, "www.example.test", &pfx, &len, NULL), 0);
        assert_pfx_algorithms(pfx, len, 1);
        /* The same password opens it; no password and "" are the same thing. */
        if (pw != NULL && pw[0] != '\0') {
            again[alen++] = pw;
        } else {
            again[alen++] = NULL;
            again[alen++] = "";
        }
        for (int j = 0; j < alen; j++) {
            char *cause = NULL;

            if (keys_parse_pfx(pfx, len, again[j], &back, &leaf, &chain_back, &cause) != 0)
                fail_msg("keys_parse_pfx: %s", cause);
            assert_non_null(back);
            assert_int_equal(X509_cmp(leaf, c.leaf), 0);
            assert_int_equal(keys_match_cert(back, leaf, NULL), 0);
            assert_chain_is(chain_back, c.inter, c.root);
            /* The friendly name travels. */
            {
                int n = 0;
                const unsigned char *alias = X509_alias_get0(leaf, &n);

                assert_non_null(alias);
                assert_int_equal(n, 16);
                assert_memory_equal(alias, "www.example.test", 16);
            }
            keys_free(back);
            X509_free(leaf);
            sk_X509_pop_free(chain_back, X509_free);
        }
        /* OpenSSL itself opens it with that password. */
        {
            const unsigned char *p = pfx;
            PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
            EVP_PKEY *pk = NULL;
            X509 *cert = NULL;

            assert_non_null(p12);
            assert_true(PKCS12_parse(p12, pw != NULL ? pw : "", &pk, &cert, NULL));
            assert_true(EVP_PKEY_eq(pk, c.leaf_key) == 1);
            EVP_PKEY_free(pk);
            X509_free(cert);
            PKCS12_free(p12);
        }
        keys_free_secret(pfx, len);
    }
    sk_X509_free(chain);
    keys_free(k);
    test_chain_free(&c);
}

static void
test_pfx_wrong_password_and_refusals(void **state)
{
    struct test_chain c;
    struct key *k, *back = (struct key *)1;
    unsigned char *pfx = NULL;
    size_t len = 0;
    X509 *leaf = (X509 *)1;
    STACK_OF(X509) *chain = (STACK_OF(X509) *)1;
    char *cause = NULL;
    BIO *b;
    unsigned char *pem, junk[300];
    size_t plen;

    (void)state;
    test_chain_make(&c);
    k = key_of(c.leaf_key);
    assert_int_equal(keys_export_pfx(k, c.leaf, NULL, PASSWORD, NULL, &pfx, &len, NULL), 0);
    expect_cause(keys_parse_pfx(pfx, len, WRONG_PASSWORD, &back, &leaf, &chain, &cause),
                 -E_BAD_INPUT, &cause, "wrong password for the PFX file");
    assert_null(back);
    assert_null(leaf);
    assert_null(chain);
    expect_cause(keys_parse_pfx(pfx, len, NULL, &back, &leaf, &chain, &cause), -E_BAD_INPUT,
                 &cause, "wrong password for the PFX file (it has one: give --password-file)");
    expect_cause(keys_parse_pfx(pfx, len, "", &back, &leaf, &chain, &cause), -E_BAD_INPUT, &cause,
                 "wrong password for the PFX file");
    /* Truncated: half of it, or one byte short. */
    expect_cause(keys_parse_pfx(pfx, len / 2, PASSWORD, &back, &leaf, &chain, &cause),
                 -E_BAD_INPUT, &cause, "not a PKCS#12 file, or a damaged or truncated one");
    expect_cause(keys_parse_pfx(pfx, len - 1, PASSWORD, &back, &leaf, &chain, &cause),
                 -E_BAD_INPUT, &cause, "not a PKCS#12 file");
    keys_free_secret(pfx, len);

    /* Garbage, empty, PEM. */
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 91 + 7);
    junk[0] = 0x04;
    expect_cause(keys_parse_pfx(junk, sizeof(junk), PASSWORD, &back, &leaf, &chain, &cause),
                 -E_BAD_INPUT, &cause, "not a PKCS#12 file");
    expect_cause(keys_parse_pfx(junk, 0, NULL, &back, &leaf, &chain, &cause), -E_BAD_INPUT, &cause,
                 "the PFX file is empty");
    b = mem_bio();
    assert_true(PEM_write_bio_X509(b, c.leaf));
    pem = bio_take(b, &plen);
    expect_cause(keys_parse_pfx(pem, plen, NULL, &back, &leaf, &chain, &cause), -E_BAD_INPUT,
                 &cause, "not a PKCS#12 file: it is PEM text (use --cert and --key)");
    free(pem);
    {
        unsigned char *der = NULL;
        int n = i2d_X509(c.leaf, &der);

        assert_true(n > 0);
        expect_cause(keys_parse_pfx(der, (size_t)n, NULL, &back, &leaf, &chain, &cause),
                     -E_BAD_INPUT, &cause, "not a PKCS#12 file: it is a DER certificate");
        OPENSSL_free(der);
    }

    /* Export refuses a key that is not the certificate's, and a missing certificate. */
    {
        struct key *other = key_of(c.int_key);

        pfx = NULL;
        expect_cause(keys_export_pfx(other, c.leaf, NULL, PASSWORD, "x", &pfx, &len, &cause),
                     -E_BAD_INPUT, &cause, "private key does not match the certificate");
        assert_null(pfx);
        expect_cause(keys_export_pfx(other, NULL, NULL, PASSWORD, "x", &pfx, &len, &cause),
                     -E_BAD_INPUT, &cause, "no certificate to export");
        keys_free(other);
    }
    keys_free(k);
    test_chain_free(&c);
}

static void
test_pfx_without_key(void **state)
{
    struct test_chain c;
    unsigned char *pfx = NULL, *der = NULL;
    size_t len = 0;
    struct key *back = (struct key *)1;
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL, *bag = sk_X509_new_null();
    PKCS12 *p12;
    int n;

    (void)state;
    test_chain_make(&c);
    /* Certificate only: no key back, an empty (not NULL) chain. */
    assert_int_equal(keys_export_pfx(NULL, c.leaf, NULL, PASSWORD, "web", &pfx, &len, NULL), 0);
    assert_pfx_algorithms(pfx, len, 0);
    assert_int_equal(keys_parse_pfx(pfx, len, PASSWORD, &back, &leaf, &chain, NULL), 0);
    assert_null(back);
    assert_int_equal(X509_cmp(leaf, c.leaf), 0);
    assert_non_null(chain);
    assert_int_equal(sk_X509_num(chain), 0);
    X509_free(leaf);
    sk_X509_free(chain);
    keys_free_secret(pfx, len);

    /* Certificates only, leaf last, no key IDs: the leaf is the one that issued nothing. */
    assert_non_null(bag);
    assert_true(sk_X509_push(bag, c.root) > 0);
    assert_true(sk_X509_push(bag, c.inter) > 0);
    assert_true(sk_X509_push(bag, c.leaf) > 0);
    p12 = PKCS12_create_ex(PASSWORD, NULL, NULL, NULL, bag, NID_aes_256_cbc, NID_aes_256_cbc, 1000,
                           1000, 0, NULL, NULL);
    assert_non_null(p12);
    n = i2d_PKCS12(p12, &der);
    assert_true(n > 0);
    assert_int_equal(keys_parse_pfx(der, (size_t)n, PASSWORD, &back, &leaf, &chain, NULL), 0);
    assert_null(back);
    assert_int_equal(X509_cmp(leaf, c.leaf), 0);
    assert_chain_is(chain, c.inter, c.root);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    OPENSSL_free(der);
    PKCS12_free(p12);
    sk_X509_free(bag);
    test_chain_free(&c);
}

static void
test_describe(void **state)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    struct key *k;
    char *desc;

    (void)state;
    assert_non_null(pk);
    k = key_of(pk);
    desc = keys_describe(k);
    assert_string_equal(desc, "EC P-384");
    free(desc);
    keys_free(k);
    EVP_PKEY_free(pk);
}

#ifdef CERTAGENT_TESTDATA
/* The whole of tests/data/name (heap). */
static unsigned char *
data_file(const char *name, size_t *len)
{
    char path[1024];
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0, r;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", CERTAGENT_TESTDATA, name);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (run tests/data/make-testdata.sh)", path);
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    fclose(f);
    *len = n;
    return buf;
}

static X509 *
data_cert(const char *name)
{
    size_t len;
    unsigned char *d = data_file(name, &len);
    STACK_OF(X509) *certs = NULL;
    char *cause = NULL;
    X509 *x;

    if (pem_read_certs(d, len, name, &certs, &cause) != 0)
        fail_msg("%s: %s", name, cause);
    x = sk_X509_shift(certs);
    sk_X509_pop_free(certs, X509_free);
    free(d);
    return x;
}

static struct key *
data_key(const char *name, const char *password)
{
    size_t len;
    unsigned char *d = data_file(name, &len);
    struct key *k = NULL;
    char *cause = NULL;

    if (keys_parse(d, len, password, &k, &cause) != 0)
        fail_msg("%s: %s", name, cause);
    free(d);
    return k;
}

/* The files the openssl command line made for the integration tests read as intended. */
static void
test_fixed_testdata(void **state)
{
    X509 *leaf = data_cert("leaf.pem"), *der_leaf = data_cert("leaf.der");
    X509 *inter = data_cert("intermediate.pem"), *root = data_cert("root.pem");
    X509 *expired = data_cert("expired.pem"), *pfx_leaf = NULL;
    struct key *key = data_key("leaf.key", NULL), *enc = data_key("leaf-enc.key", "correct horse");
    struct key *other = data_key("other.key", NULL), *exp_key = data_key("expired.key", NULL);
    struct key *pfx_key = NULL;
    STACK_OF(X509) *certs = NULL, *ordered = NULL, *pfx_chain = NULL;
    struct cert_info info;
    unsigned char *d;
    size_t len;
    char *cause = NULL;
    struct key *k = NULL;

    (void)state;
    assert_int_equal(X509_cmp(leaf, der_leaf), 0);
    assert_int_equal(pem_cert_info(leaf, &info, NULL), 0);
    assert_string_equal(info.common_name, "www.example.test");
    assert_int_equal(info.ndns, 1);
    assert_string_equal(info.dns[0], "www.example.test");
    assert_int_equal(pem_cert_validity(leaf, (int64_t)time(NULL)), 0);
    assert_true(pem_days_left(info.not_after, (int64_t)time(NULL)) > 365 * 50);
    pem_cert_info_free(&info);
    assert_int_equal(keys_match_cert(key, leaf, NULL), 0);
    assert_int_equal(keys_match_cert(enc, leaf, NULL), 0);
    expect_cause(keys_match_cert(other, leaf, &cause), -E_BAD_INPUT, &cause,
                 "private key does not match the certificate");
    assert_int_equal(pem_cert_validity(expired, (int64_t)time(NULL)), 1);
    assert_int_equal(keys_match_cert(exp_key, expired, NULL), 0);

    /* Encrypted key: no password, wrong password. */
    d = data_file("leaf-enc.key", &len);
    expect_cause(keys_parse(d, len, NULL, &k, &cause), -E_BAD_INPUT, &cause,
                 "private key is encrypted: give --password-file");
    expect_cause(keys_parse(d, len, "wrong horse", &k, &cause), -E_BAD_INPUT, &cause,
                 "wrong password for the private key");
    free(d);

    /* fullchain.pem: leaf then intermediate; the chain orders with the root added. */
    d = data_file("fullchain.pem", &len);
    assert_int_equal(pem_read_certs(d, len, "fullchain.pem", &certs, NULL), 0);
    free(d);
    assert_int_equal(sk_X509_num(certs), 2);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 0), leaf), 0);
    assert_true(sk_X509_insert(certs, X509_dup(root), 0) > 0);
    X509_free(sk_X509_delete(certs, 1));
    assert_int_equal(pem_order_chain(leaf, certs, &ordered, NULL), 0);
    assert_int_equal(sk_X509_num(ordered), 2);
    assert_int_equal(X509_cmp(sk_X509_value(ordered, 0), inter), 0);
    assert_int_equal(X509_cmp(sk_X509_value(ordered, 1), root), 0);
    sk_X509_pop_free(ordered, X509_free);
    sk_X509_pop_free(certs, X509_free);

    /* The PFX files, with and without a password. */
    d = data_file("leaf.pfx", &len);
    assert_pfx_algorithms(d, len, 1);
    expect_cause(keys_parse_pfx(d, len, "wrong horse", &pfx_key, &pfx_leaf, &pfx_chain, &cause),
                 -E_BAD_INPUT, &cause, "wrong password for the PFX file");
    assert_int_equal(
        keys_parse_pfx(d, len, "correct horse", &pfx_key, &pfx_leaf, &pfx_chain, NULL), 0);
    free(d);
    assert_int_equal(X509_cmp(pfx_leaf, leaf), 0);
    assert_int_equal(keys_match_cert(pfx_key, leaf, NULL), 0);
    assert_int_equal(sk_X509_num(pfx_chain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(pfx_chain, 0), inter), 0);
    keys_free(pfx_key);
    X509_free(pfx_leaf);
    sk_X509_pop_free(pfx_chain, X509_free);
    d = data_file("leaf-nopass.pfx", &len);
    assert_int_equal(keys_parse_pfx(d, len, NULL, &pfx_key, &pfx_leaf, &pfx_chain, NULL), 0);
    free(d);
    assert_int_equal(keys_match_cert(pfx_key, pfx_leaf, NULL), 0);
    keys_free(pfx_key);
    X509_free(pfx_leaf);
    sk_X509_pop_free(pfx_chain, X509_free);

    /* The broken ones. */
    d = data_file("truncated.pem", &len);
    expect_cause(pem_read_certs(d, len, "certificate file", &certs, &cause), -E_BAD_INPUT, &cause,
                 "truncated PEM block");
    free(d);
    d = data_file("garbage.bin", &len);
    assert_int_equal(pem_read_certs(d, len, "certificate file", &certs, &cause), -E_BAD_INPUT);
    free(cause);
    cause = NULL;
    expect_cause(keys_parse_pfx(d, len, NULL, &pfx_key, &pfx_leaf, &pfx_chain, &cause),
                 -E_BAD_INPUT, &cause, "not a PKCS#12 file");
    expect_cause(keys_parse(d, len, NULL, &k, &cause), -E_BAD_INPUT, &cause, "not a private key");
    free(d);
    d = data_file("leaf.pfx", &len);
    expect_cause(pem_read_certs(d, len, "certificate file", &certs, &cause), -E_BAD_INPUT, &cause,
                 "certificate file: looks like a PKCS#12 file: use --pfx");
    free(d);

    X509_free(leaf);
    X509_free(der_leaf);
    X509_free(inter);
    X509_free(root);
    X509_free(expired);
    keys_free(key);
    keys_free(enc);
    keys_free(other);
    keys_free(exp_key);
}
#else
static void
test_fixed_testdata(void **state)
{
    (void)state;
    skip();
}
#endif

/*
 * keys_parse_capi_blob: an RSA key written as a CryptoAPI PRIVATEKEYBLOB (what
 * the Windows certificate store exports) reads back as the same key; what is
 * not such a blob is refused with words.
 */
static void
test_capi_blob(void **state)
{
    struct key *k = NULL, *back = NULL;
    char *pem = NULL, *pem_back = NULL, *cause = NULL;
    size_t pem_len = 0, back_len = 0;
    EVP_PKEY *pkey = NULL;
    BIO *in = NULL, *out = NULL;
    BUF_MEM *blob = NULL;
    static const unsigned char garbage[] = "not a key blob at all";

    (void)state;
    assert_int_equal(keys_generate(KEY_RSA2048, &k, NULL), 0);
    assert_int_equal(keys_to_pem(k, &pem, &pem_len, NULL), 0);
    assert_non_null(in = BIO_new_mem_buf(pem, (int)pem_len));
    assert_non_null(pkey = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL));
    assert_non_null(out = BIO_new(BIO_s_mem()));
    assert_true(i2b_PrivateKey_bio(out, pkey) > 0);
    BIO_get_mem_ptr(out, &blob);
    assert_int_equal(
        keys_parse_capi_blob((const unsigned char *)blob->data, blob->length, &back, NULL), 0);
    assert_int_equal(keys_to_pem(back, &pem_back, &back_len, NULL), 0);
    assert_int_equal(back_len, pem_len);
    assert_memory_equal(pem_back, pem, pem_len);
    /* Cut short, garbage, empty: refused, nothing returned. */
    keys_free(back);
    back = NULL;
    expect_cause(
        keys_parse_capi_blob((const unsigned char *)blob->data, blob->length / 2, &back, &cause),
        -E_BAD_INPUT, &cause, "not a private key blob");
    assert_null(back);
    expect_cause(keys_parse_capi_blob(garbage, sizeof(garbage), &back, &cause), -E_BAD_INPUT,
                 &cause, "not a private key blob");
    expect_cause(keys_parse_capi_blob(NULL, 0, &back, &cause), -E_BAD_INPUT, &cause,
                 "not a private key blob");
    assert_null(back);
    keys_free_secret(pem, pem_len);
    keys_free_secret(pem_back, back_len);
    BIO_free(in);
    BIO_free(out);
    EVP_PKEY_free(pkey);
    keys_free(k);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_generate_and_selfsign_every_type),
        cmocka_unit_test(test_selfsigned_variants_and_refusals),
        cmocka_unit_test(test_parse_plain_pem_and_der),
        cmocka_unit_test(test_parse_encrypted),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_to_pem),
        cmocka_unit_test(test_pfx_roundtrip),
        cmocka_unit_test(test_pfx_wrong_password_and_refusals),
        cmocka_unit_test(test_pfx_without_key),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_capi_blob),
        cmocka_unit_test(test_fixed_testdata),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
