/*
 * Certificates made at run time for unit tests (tests/support/testpki.c), so
 * that nothing a test reads can expire: one certificate from a spec, EC keys,
 * and a root -> intermediate -> leaf chain.  Failures end the test (cmocka).
 */
#ifndef CERTAGENT_TESTPKI_H
#define CERTAGENT_TESTPKI_H

#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#define TESTPKI_DAY 86400

/* What test_cert_make builds. */
struct test_cert_spec {
    const char *cn;
    const char *org;      /* NULL: no O= */
    EVP_PKEY *key;        /* the certificate's key */
    X509 *issuer;         /* NULL: self-signed */
    EVP_PKEY *issuer_key; /* signs when issuer is set */
    int ca;               /* basicConstraints CA:TRUE */
    int64_t not_before, not_after;
    long serial;
    const char *san; /* openssl.cnf syntax ("DNS:a.test,IP:192.0.2.1"), NULL: none */
};

/* root -> inter -> leaf: "CN=Unit Root,O=certagent tests", "CN=Unit Intermediate,O=certagent
 * tests" (both valid from yesterday for a year) and leaf.test (DNS:leaf.test, 30 days). */
struct test_chain {
    EVP_PKEY *root_key, *int_key, *leaf_key;
    X509 *root, *inter, *leaf;
};

/* A certificate as s says, signed with SHA-256 (EdDSA: no digest). */
X509 *test_cert_make(const struct test_cert_spec *s);
/* A fresh P-256 key. */
EVP_PKEY *test_ec_key(void);
void test_chain_make(struct test_chain *c);
void test_chain_free(struct test_chain *c);
/* rc is want and *cause holds fragment, in words (no OpenSSL "error:" code) and with none of
 * secrets (NULL-terminated; NULL: none) in it; frees the cause. */
void test_expect_cause(int rc, int want, char **cause, const char *fragment,
                       const char *const *secrets);

#endif
