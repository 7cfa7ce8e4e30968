/*
 * The ACME building blocks that need no CA: base64url (RFC 4648 vectors), JWK
 * and thumbprint (RFC 7638 shape), JWS signatures checked by OpenSSL, CSRs
 * (SAN only, no EKU, no must-staple), Retry-After and Link header parsing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme-http.h"
#include "b64url.h"
#include "err.h"
#include "keys.h"

static void
test_b64url_vectors(void **state)
{
    static const struct {
        const char *plain, *enc;
    } v[] = {
        {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"},
    };
    unsigned char *out;
    size_t len;

    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char *e = b64url_encode(v[i].plain, strlen(v[i].plain));

        assert_string_equal(e, v[i].enc);
        free(e);
        assert_int_equal(b64url_decode(v[i].enc, &out, &len), 0);
        assert_int_equal(len, strlen(v[i].plain));
        assert_memory_equal(out, v[i].plain, len);
        free(out);
    }
    /* Padding and plain base64 are tolerated; junk is refused. */
    assert_int_equal(b64url_decode("Zm8=\n", &out, &len), 0);
    assert_int_equal(len, 2);
    free(out);
    assert_int_equal(b64url_decode("Zm9v!", &out, &len), -E_BAD_INPUT);
    assert_null(out);
}

/* The public key of key as an EVP_PKEY, through its PEM (keys.c hands out no key). */
static EVP_PKEY *
public_of(const struct key *key)
{
    char *pem = NULL;
    size_t len = 0;
    BIO *bio;
    EVP_PKEY *pk;

    assert_int_equal(keys_to_pem(key, &pem, &len, NULL), 0);
    bio = BIO_new_mem_buf(pem, (int)len);
    pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    keys_free_secret(pem, len);
    assert_non_null(pk);
    return pk;
}

static void
check_jws(enum key_type type, const char *alg, size_t siglen)
{
    struct key *key = NULL;
    char *jwk = NULL, *thumb = NULL, *sig = NULL;
    const char *input = "eyJhbGciOiJFUzI1NiJ9.eyJ0ZXN0Ijp0cnVlfQ";
    unsigned char *raw = NULL, *der = NULL;
    size_t rawlen = 0;
    EVP_PKEY *pk;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    cJSON *j;
    int derlen;

    assert_int_equal(keys_generate(type, &key, NULL), 0);
    assert_string_equal(keys_jws_alg(key), alg);
    /* The JWK: required members only, sorted, no white space (RFC 7638 section 3). */
    assert_int_equal(keys_jwk(key, &jwk, NULL), 0);
    assert_null(strchr(jwk, ' '));
    j = cJSON_Parse(jwk);
    assert_non_null(j);
    if (alg[0] == 'E') {
        assert_string_equal(cJSON_GetObjectItem(j, "kty")->valuestring, "EC");
        assert_true(strncmp(jwk, "{\"crv\":", 7) == 0);
        assert_int_equal(cJSON_GetArraySize(j), 4);
    } else {
        assert_string_equal(cJSON_GetObjectItem(j, "e")->valuestring, "AQAB");
        assert_true(strncmp(jwk, "{\"e\":", 5) == 0);
        assert_int_equal(cJSON_GetArraySize(j), 3);
    }
    cJSON_Delete(j);
    assert_int_equal(keys_jwk_thumbprint(key, &thumb, NULL), 0);
    assert_int_equal(strlen(thumb), 43); /* 32 bytes of SHA-256 */
    /* The signature verifies with OpenSSL over the same input. */
    assert_int_equal(keys_jws_sign(key, input, strlen(input), &sig, NULL), 0);
    assert_int_equal(b64url_decode(sig, &raw, &rawlen), 0);
    pk = public_of(key);
    if (alg[0] == 'E') {
        ECDSA_SIG *es = ECDSA_SIG_new();
        size_t w = rawlen / 2;

        assert_int_equal(rawlen, siglen);
        ECDSA_SIG_set0(es, BN_bin2bn(raw, (int)w, NULL), BN_bin2bn(raw + w, (int)w, NULL));
        derlen = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
    } else {
        assert_int_equal(rawlen, siglen);
        der = OPENSSL_memdup(raw, rawlen);
        derlen = (int)rawlen;
    }
    assert_int_equal(EVP_DigestVerifyInit(md, NULL,
                                          strcmp(alg, "ES384") == 0 ? EVP_sha384() : EVP_sha256(),
                                          NULL, pk),
                     1);
    assert_int_equal(
        EVP_DigestVerify(md, der, (size_t)derlen, (const unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    OPENSSL_free(der);
    free(raw);
    free(sig);
    free(thumb);
    free(jwk);
    keys_free(key);
}

static void
test_jws_es256(void **state)
{
    (void)state;
    check_jws(KEY_EC256, "ES256", 64);
}

static void
test_jws_es384(void **state)
{
    (void)state;
    check_jws(KEY_EC384, "ES384", 96);
}

static void
test_jws_rs256(void **state)
{
    (void)state;
    check_jws(KEY_RSA2048, "RS256", 256);
}

static void
test_jws_refuses_ed25519(void **state)
{
    struct key *key = NULL;
    char *jwk = NULL, *cause = NULL;

    (void)state;
    assert_int_equal(keys_generate(KEY_ED25519, &key, NULL), 0);
    assert_null(keys_jws_alg(key));
    assert_int_equal(keys_jwk(key, &jwk, &cause), -E_BAD_INPUT);
    assert_non_null(strstr(cause, "EC P-256"));
    free(cause);
    keys_free(key);
}

static void
test_csr(void **state)
{
    const char *dns[] = {"www.example.test", "*.example.test"};
    const char *ips[] = {"192.0.2.1", "2001:db8::1"};
    struct key *key = NULL;
    char *csr = NULL, *cause = NULL;
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len = 0;
    X509_REQ *req;
    STACK_OF(X509_EXTENSION) * exts;
    GENERAL_NAMES *sans;
    EVP_PKEY *pk;
    char cn[128];

    (void)state;
    assert_int_equal(keys_generate(KEY_EC256, &key, NULL), 0);
    assert_int_equal(keys_csr(key, dns, 2, ips, 2, &csr, NULL), 0);
    assert_int_equal(b64url_decode(csr, &der, &len), 0);
    p = der;
    req = d2i_X509_REQ(NULL, &p, (long)len);
    assert_non_null(req);
    pk = X509_REQ_get_pubkey(req);
    assert_int_equal(X509_REQ_verify(req, pk), 1);
    EVP_PKEY_free(pk);
    /* Only subjectAltName: no EKU (no clientAuth), no TLS feature (must-staple). */
    exts = X509_REQ_get_extensions(req);
    assert_int_equal(sk_X509_EXTENSION_num(exts), 1);
    assert_int_equal(OBJ_obj2nid(X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, 0))),
                     NID_subject_alt_name);
    sans = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    assert_int_equal(sk_GENERAL_NAME_num(sans), 4);
    GENERAL_NAMES_free(sans);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    assert_true(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn,
                                          sizeof(cn)) > 0);
    assert_string_equal(cn, "www.example.test");
    X509_REQ_free(req);
    free(der);
    free(csr);
    /* A name longer than a CN may be: no CN at all, still valid. */
    {
        const char *longname[] = {"a-very-long-label-that-makes.this-name-exceed-sixty-four-"
                                  "characters.example.test"};

        assert_int_equal(keys_csr(key, longname, 1, NULL, 0, &csr, NULL), 0);
        assert_int_equal(b64url_decode(csr, &der, &len), 0);
        p = der;
        req = d2i_X509_REQ(NULL, &p, (long)len);
        assert_non_null(req);
        assert_int_equal(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);
        X509_REQ_free(req);
        free(der);
        free(csr);
    }
    /* Bad names are named. */
    {
        const char *bad[] = {"bad name.example"};

        assert_int_equal(keys_csr(key, bad, 1, NULL, 0, &csr, &cause), -E_BAD_INPUT);
        assert_non_null(strstr(cause, "bad name.example"));
        free(cause);
    }
    keys_free(key);
}

static void
test_retry_after(void **state)
{
    long long now = 1700000000; /* 2023-11-14T22:13:20Z */

    (void)state;
    assert_int_equal(acme_http_retry_after("120", now), 120);
    assert_int_equal(acme_http_retry_after("0", now), 0);
    assert_int_equal(acme_http_retry_after(NULL, now), -1);
    assert_int_equal(acme_http_retry_after("", now), -1);
    assert_int_equal(acme_http_retry_after("soon", now), -1);
    assert_int_equal(acme_http_retry_after("-5", now), -1);
    assert_int_equal(acme_http_retry_after("12abc", now), -1);
    /* HTTP-date, 90 s after now; a date in the past means now. */
    assert_int_equal(acme_http_retry_after("Tue, 14 Nov 2023 22:14:50 GMT", now), 90);
    assert_int_equal(acme_http_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now), 0);
    /* Absurd values are capped at 30 days. */
    assert_int_equal(acme_http_retry_after("999999999", now), 86400 * 30);
}

static void
test_links(void **state)
{
    struct acme_http_response r;
    char *links[] = {
        "<https://ca.test/cert/1/1>;rel=\"alternate\"",
        "<https://ca.test/cert/1/2>; rel=alternate",
        "<https://ca.test/dir>;rel=\"index\"",
        "<https://ca.test/x,y>;rel=\"alternateish\"",
    };
    char **urls = NULL;
    size_t n;

    (void)state;
    memset(&r, 0, sizeof(r));
    r.links = links;
    r.nlinks = 4;
    n = acme_http_links(&r, "alternate", &urls);
    assert_int_equal(n, 2);
    assert_string_equal(urls[0], "https://ca.test/cert/1/1");
    assert_string_equal(urls[1], "https://ca.test/cert/1/2");
    for (size_t i = 0; i < n; i++)
        free(urls[i]);
    free(urls);
    n = acme_http_links(&r, "index", &urls);
    assert_int_equal(n, 1);
    assert_string_equal(urls[0], "https://ca.test/dir");
    free(urls[0]);
    free(urls);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_vectors),      cmocka_unit_test(test_jws_es256),
        cmocka_unit_test(test_jws_es384),           cmocka_unit_test(test_jws_rs256),
        cmocka_unit_test(test_jws_refuses_ed25519), cmocka_unit_test(test_csr),
        cmocka_unit_test(test_retry_after),         cmocka_unit_test(test_links),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
