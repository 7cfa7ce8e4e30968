/*
 * The renewal scheduler's building blocks: the lifetime rule (short-lived
 * certificates, renew_before_days and its fallback), the ARI CertID of a
 * certificate (RFC 9773 section 4.1, its example), RFC 3339 times as ARI
 * windows carry them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme-int.h"
#include "err.h"
#include "pem.h"
#include "renew.h"

#define DAY 86400

static void
test_lifetime_rule(void **state)
{
    const int64_t nb = 1800000000;

    (void)state;
    /* 90 days: a third left, i.e. 60 days after issue. */
    assert_int_equal(renew_lifetime_point(nb, nb + 90 * DAY, 0), nb + 60 * DAY);
    /* 1 year (365 d). */
    assert_int_equal(renew_lifetime_point(nb, nb + 365 * DAY, 0),
                     nb + 365 * DAY - (365 * DAY) / 3);
    /* 47 days (the CA/B Forum's future maximum). */
    assert_int_equal(renew_lifetime_point(nb, nb + 47 * DAY, 0), nb + 47 * DAY - (47 * DAY) / 3);
    /* 6 days (Let's Encrypt's short-lived profile): half left. */
    assert_int_equal(renew_lifetime_point(nb, nb + 6 * DAY, 0), nb + 3 * DAY);
    /* Just under 10 days is short-lived, 10 days is not. */
    assert_int_equal(renew_lifetime_point(nb, nb + 10 * DAY - 1, 0), nb + (10 * DAY - 1) / 2 + 1);
    assert_int_equal(renew_lifetime_point(nb, nb + 10 * DAY, 0), nb + 10 * DAY - (10 * DAY) / 3);
    /* 30 seconds (the tests' Pebble): 15 s after issue. */
    assert_int_equal(renew_lifetime_point(nb, nb + 30, 0), nb + 15);
    /* renew_before_days when it leaves some lifetime ... */
    assert_int_equal(renew_lifetime_point(nb, nb + 90 * DAY, 30), nb + 60 * DAY);
    assert_int_equal(renew_lifetime_point(nb, nb + 90 * DAY, 10), nb + 80 * DAY);
    /* ... else the lifetime rule: 30 days before a 6-day expiry would renew forever. */
    assert_int_equal(renew_lifetime_point(nb, nb + 6 * DAY, 30), nb + 3 * DAY);
    assert_int_equal(renew_lifetime_point(nb, nb + 6 * DAY, 6), nb + 3 * DAY);
    /* ... and when it leaves under a tenth: 90 days on a 90-day (+5 min) certificate made
     * every new version due the moment it was stored (found by bench-renew.sh). */
    assert_int_equal(renew_lifetime_point(nb, nb + 90 * DAY + 300, 90), nb + 60 * DAY + 200);
    assert_int_equal(renew_lifetime_point(nb, nb + 90 * DAY, 82), nb + 60 * DAY);
    assert_int_equal(renew_lifetime_point(nb, nb + 90 * DAY, 81), nb + 9 * DAY);
}

/* The emergency floor: 1/20 of the lifetime before expiry, whatever ARI says. */
static void
test_floor(void **state)
{
    const int64_t nb = 1800000000;

    (void)state;
    assert_int_equal(renew_floor_point(nb, nb + 90 * DAY), nb + 90 * DAY - (90 * DAY) / 20);
    assert_int_equal(renew_floor_point(nb, nb + 60), nb + 57);
    assert_int_equal(renew_floor_point(nb, nb + 6 * DAY), nb + 6 * DAY - (6 * DAY) / 20);
    /* Always after the lifetime rule: the floor never comes first. */
    assert_true(renew_floor_point(nb, nb + 30) > renew_lifetime_point(nb, nb + 30, 0));
}

/* A certificate with the given AKI keyIdentifier (NULL: none) and serial. */
static X509 *
make_cert(const unsigned char *aki, size_t aki_len, const char *serial_hex)
{
    X509 *x = X509_new();
    EVP_PKEY *k = EVP_EC_gen("P-256");
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial;

    assert_non_null(x);
    assert_non_null(k);
    assert_true(BN_hex2bn(&bn, serial_hex) > 0);
    serial = BN_to_ASN1_INTEGER(bn, NULL);
    assert_non_null(serial);
    assert_int_equal(X509_set_serialNumber(x, serial), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    assert_int_equal(X509_set_pubkey(x, k), 1);
    if (aki != NULL) {
        AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();

        akid->keyid = ASN1_OCTET_STRING_new();
        assert_int_equal(ASN1_OCTET_STRING_set(akid->keyid, aki, (int)aki_len), 1);
        assert_int_equal(X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, 0), 1);
        AUTHORITY_KEYID_free(akid);
    }
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    EVP_PKEY_free(k);
    return x;
}

static void
test_ari_cert_id(void **state)
{
    /* RFC 9773 section 4.1's example. */
    static const unsigned char aki[] = {0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40,
                                        0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0,
                                        0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4};
    X509 *x;
    char *id = NULL, *cause = NULL;

    (void)state;
    x = make_cert(aki, sizeof(aki), "87654321");
    assert_int_equal(pem_cert_ari_id(x, &id, &cause), 0);
    /* The serial's DER value bytes keep the leading zero that makes it positive. */
    assert_string_equal(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    free(id);
    X509_free(x);
    /* A serial without the high bit set has no leading zero. */
    x = make_cert(aki, sizeof(aki), "01");
    assert_int_equal(pem_cert_ari_id(x, &id, &cause), 0);
    assert_string_equal(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AQ");
    free(id);
    X509_free(x);
    /* No AKI: no CertID, and the reason. */
    x = make_cert(NULL, 0, "1234");
    assert_int_equal(pem_cert_ari_id(x, &id, &cause), -E_BAD_INPUT);
    assert_null(id);
    assert_non_null(strstr(cause, "authority key identifier"));
    free(cause);
    X509_free(x);
}

static void
test_rfc3339(void **state)
{
    int64_t t = 0;

    (void)state;
    assert_int_equal(acme_parse_time("2025-01-02T04:00:00Z", &t), 0);
    assert_int_equal(t, 1735790400);
    assert_int_equal(acme_parse_time("2025-01-02T04:00:00.123456789Z", &t), 0);
    assert_int_equal(t, 1735790400);
    assert_int_equal(acme_parse_time("2025-01-02t04:00:00z", &t), 0);
    assert_int_equal(t, 1735790400);
    assert_int_equal(acme_parse_time("2025-01-02T06:30:00+02:30", &t), 0);
    assert_int_equal(t, 1735790400);
    assert_int_equal(acme_parse_time("2025-01-01T23:00:00-05:00", &t), 0);
    assert_int_equal(t, 1735790400);
    assert_int_equal(acme_parse_time("2025-01-02", &t), -1);
    assert_int_equal(acme_parse_time("2025-01-02T04:00:00", &t), -1);
    assert_int_equal(acme_parse_time("2025-13-02T04:00:00Z", &t), -1);
    assert_int_equal(acme_parse_time("2025-01-02T04:00:00Zjunk", &t), -1);
    assert_int_equal(acme_parse_time("2025-01-02T04:00:00+0200", &t), -1);
    assert_int_equal(acme_parse_time("", &t), -1);
    assert_int_equal(acme_parse_time(NULL, &t), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifetime_rule),
        cmocka_unit_test(test_floor),
        cmocka_unit_test(test_ari_cert_id),
        cmocka_unit_test(test_rfc3339),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
