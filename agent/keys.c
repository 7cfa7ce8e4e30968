/*
 * Private keys: generation, parsing, matching, self-signed certificates,
 * serialisation and PKCS#12.  The only file in the agent that handles key
 * material (CONVENTIONS.md).
 */
#include "keys.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "pem.h"

struct key {
    EVP_PKEY *pkey;
};

static const struct {
    enum key_type type;
    const char *name;
    const char *desc;
} key_types[] = {
    {KEY_EC256, "ec256", "EC P-256"},       {KEY_EC384, "ec384", "EC P-384"},
    {KEY_RSA2048, "rsa2048", "RSA 2048"},   {KEY_RSA3072, "rsa3072", "RSA 3072"},
    {KEY_RSA4096, "rsa4096", "RSA 4096"},   {KEY_ED25519, "ed25519", "Ed25519"},
};

int
keys_type_parse(const char *name, enum key_type *out, char **cause)
{
    for (size_t i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++) {
        if (strcmp(key_types[i].name, name) == 0) {
            *out = key_types[i].type;
            return 0;
        }
    }
    err_set(cause, "unknown key type '%s': use ec256, ec384, rsa2048, rsa3072, rsa4096 or "
                   "ed25519",
            name);
    return -E_BAD_INPUT;
}

const char *
keys_type_name(enum key_type type)
{
    for (size_t i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++) {
        if (key_types[i].type == type)
            return key_types[i].desc;
    }
    return "?";
}

static struct key *
wrap(EVP_PKEY *pkey)
{
    struct key *k = malloc(sizeof(*k));

    if (k == NULL) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    k->pkey = pkey;
    return k;
}

int
keys_generate(enum key_type type, struct key **out, char **cause)
{
    EVP_PKEY *pkey = NULL;
    char why[128];

    *out = NULL;
    switch (type) {
    case KEY_EC256:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case KEY_EC384:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        break;
    case KEY_RSA2048:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        break;
    case KEY_RSA3072:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
        break;
    case KEY_RSA4096:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
        break;
    case KEY_ED25519:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    }
    if (pkey == NULL) {
        err_set(cause, "cannot generate a %s key: %s", keys_type_name(type),
                pem_ssl_reason(why, sizeof(why)));
        return -E_CRYPTO;
    }
    if ((*out = wrap(pkey)) == NULL)
        return -E_NOMEM;
    return 0;
}

/* Password callback data: the password, or NULL to signal "none given". */
struct pw {
    const char *password;
    int asked;
};

static int
pw_cb(char *buf, int size, int rwflag, void *u)
{
    struct pw *pw = u;
    size_t n;

    (void)rwflag;
    pw->asked = 1;
    if (pw->password == NULL)
        return -1;
    n = strlen(pw->password);
    if (n > (size_t)size)
        return -1;
    memcpy(buf, pw->password, n);
    return (int)n;
}

int
keys_parse(const unsigned char *data, size_t len, const char *password, struct key **out,
           char **cause)
{
    EVP_PKEY *pkey = NULL;
    struct pw pw = {password, 0};
    int pem = pem_has_text(data, len, "-----BEGIN");
    int encrypted = pem_has_text(data, len, "ENCRYPTED");
    BIO *bio;

    *out = NULL;
    if (len == 0) {
        err_set(cause, "the key file is empty");
        return -E_BAD_INPUT;
    }
    if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL)
        return -E_NOMEM;
    if (pem) {
        pkey = PEM_read_bio_PrivateKey(bio, NULL, pw_cb, &pw);
    } else {
        const unsigned char *p = data;

        pkey = d2i_AutoPrivateKey(NULL, &p, (long)len);
        if (pkey == NULL) {
            /* Encrypted PKCS#8 in DER. */
            X509_SIG *p8 = NULL;

            ERR_clear_error();
            (void)BIO_reset(bio);
            p8 = d2i_PKCS8_bio(bio, NULL);
            if (p8 != NULL) {
                encrypted = 1;
                if (password != NULL) {
                    PKCS8_PRIV_KEY_INFO *inf =
                        PKCS8_decrypt(p8, password, (int)strlen(password));

                    if (inf != NULL) {
                        pkey = EVP_PKCS82PKEY(inf);
                        PKCS8_PRIV_KEY_INFO_free(inf);
                    }
                }
                X509_SIG_free(p8);
            }
        }
    }
    BIO_free(bio);
    ERR_clear_error();
    if (pkey == NULL) {
        if ((encrypted || pw.asked) && password == NULL)
            err_set(cause, "the private key is encrypted: give --password-file");
        else if (encrypted || pw.asked)
            err_set(cause, "wrong password for the private key");
        else if (pem && !pem_has_text(data, len, "PRIVATE KEY-----"))
            err_set(cause, "no private key found in the key file");
        else if (pem)
            err_set(cause, "the private key is damaged or truncated");
        else
            err_set(cause, "the key file is not a private key in PEM or DER form");
        return -E_BAD_INPUT;
    }
    if ((*out = wrap(pkey)) == NULL)
        return -E_NOMEM;
    return 0;
}

int
keys_match_cert(const struct key *key, X509 *cert, char **cause)
{
    EVP_PKEY *pub = X509_get0_pubkey(cert);

    if (pub == NULL || EVP_PKEY_eq(key->pkey, pub) != 1) {
        ERR_clear_error();
        err_set(cause, "private key does not match the certificate");
        return -E_BAD_INPUT;
    }
    return 0;
}

int
keys_parse_pfx(const unsigned char *data, size_t len, const char *password, struct key **key,
               X509 **leaf, STACK_OF(X509) **chain, char **cause)
{
    const unsigned char *p = data;
    PKCS12 *p12 = NULL;
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *ca = NULL;
    const char *pass = password != NULL ? password : "";
    int rc = 0;

    *key = NULL;
    *leaf = NULL;
    *chain = NULL;
    p12 = d2i_PKCS12(NULL, &p, (long)len);
    if (p12 == NULL) {
        ERR_clear_error();
        err_set(cause, pem_has_text(data, len, "-----BEGIN")
                           ? "not a PKCS#12 file (this is PEM: use --cert and --key)"
                           : "not a PKCS#12 file");
        return -E_BAD_INPUT;
    }
    /* A PFX without a password may use a NULL one rather than "". */
    if (PKCS12_mac_present(p12) && !PKCS12_verify_mac(p12, pass, -1)) {
        if (password == NULL && PKCS12_verify_mac(p12, NULL, 0)) {
            pass = NULL;
        } else {
            ERR_clear_error();
            err_set(cause, password == NULL
                               ? "wrong password for the PFX file (it needs one: give "
                                 "--password-file)"
                               : "wrong password for the PFX file");
            rc = -E_BAD_INPUT;
            goto out;
        }
    }
    if (!PKCS12_parse(p12, pass, &pkey, &cert, &ca)) {
        char why[128];

        err_set(cause, "cannot read the PFX file: %s", pem_ssl_reason(why, sizeof(why)));
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (ca == NULL && (ca = sk_X509_new_null()) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if (cert == NULL) {
        /* No certificate marked as the key's: take the first one of the bag. */
        if (sk_X509_num(ca) == 0) {
            err_set(cause, "the PFX file holds no certificate");
            rc = -E_BAD_INPUT;
            goto out;
        }
        cert = sk_X509_shift(ca);
    }
    if (pkey != NULL && (*key = wrap(pkey)) == NULL) {
        pkey = NULL;
        rc = -E_NOMEM;
        goto out;
    }
    pkey = NULL;
    *leaf = cert;
    *chain = ca;
    cert = NULL;
    ca = NULL;
out:
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    X509_free(cert);
    sk_X509_pop_free(ca, X509_free);
    PKCS12_free(p12);
    return rc;
}

static int
add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok;

    if (ext == NULL)
        return 0;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Adds subjectAltName from names and addresses, validating each address. */
static int
add_sans(X509 *cert, const char *const *dns, size_t ndns, const char *const *ips, size_t nips,
         char **cause)
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    int rc = -E_NOMEM;

    if (names == NULL)
        return -E_NOMEM;
    for (size_t i = 0; i < ndns; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        size_t n = strlen(dns[i]);

        if (n == 0 || n > 253 || strspn(dns[i], "abcdefghijklmnopqrstuvwxyz"
                                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*_") != n) {
            GENERAL_NAME_free(g);
            ASN1_IA5STRING_free(s);
            err_set(cause, "'%s' is not a valid DNS name", dns[i]);
            rc = -E_BAD_INPUT;
            goto out;
        }
        if (g == NULL || s == NULL || !ASN1_STRING_set(s, dns[i], (int)n)) {
            GENERAL_NAME_free(g);
            ASN1_IA5STRING_free(s);
            goto out;
        }
        GENERAL_NAME_set0_value(g, GEN_DNS, s);
        if (!sk_GENERAL_NAME_push(names, g)) {
            GENERAL_NAME_free(g);
            goto out;
        }
    }
    for (size_t i = 0; i < nips; i++) {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(ips[i]);
        GENERAL_NAME *g;

        ERR_clear_error();
        if (ip == NULL) {
            err_set(cause, "'%s' is not an IPv4 or IPv6 address", ips[i]);
            rc = -E_BAD_INPUT;
            goto out;
        }
        if ((g = GENERAL_NAME_new()) == NULL) {
            ASN1_OCTET_STRING_free(ip);
            goto out;
        }
        GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
        if (!sk_GENERAL_NAME_push(names, g)) {
            GENERAL_NAME_free(g);
            goto out;
        }
    }
    if (!X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT))
        goto out;
    rc = 0;
out:
    GENERAL_NAMES_free(names);
    return rc;
}

int
keys_selfsigned(const struct key *key, const char *cn, const char *const *dns, size_t ndns,
                const char *const *ips, size_t nips, int days, X509 **out, char **cause)
{
    X509 *cert = X509_new();
    X509_NAME *name = NULL;
    X509V3_CTX ctx;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    int is_rsa = EVP_PKEY_is_a(key->pkey, "RSA");
    int is_ed = EVP_PKEY_is_a(key->pkey, "ED25519") || EVP_PKEY_is_a(key->pkey, "ED448");
    char why[128];
    int rc = -E_CRYPTO;

    *out = NULL;
    if (cert == NULL)
        return -E_NOMEM;
    if (strlen(cn) > 64) {
        err_set(cause, "the common name '%.64s...' is longer than 64 characters", cn);
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        goto fail;
    serial[0] &= 0x7f; /* positive */
    serial[0] |= 0x01; /* and 16 bytes long */
    if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)))
        goto fail;
    if (!X509_set_version(cert, X509_VERSION_3) ||
        !X509_gmtime_adj(X509_getm_notBefore(cert), -300) ||
        !X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, NULL))
        goto fail;
    if ((name = X509_NAME_new()) == NULL ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                    -1, 0) ||
        !X509_set_subject_name(cert, name) || !X509_set_issuer_name(cert, name) ||
        !X509_set_pubkey(cert, key->pkey))
        goto fail;
    if ((rc = add_sans(cert, dns, ndns, ips, nips, cause)) != 0)
        goto out;
    rc = -E_CRYPTO;
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    if (!add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(cert, &ctx, NID_key_usage,
                 is_rsa ? "critical,digitalSignature,keyEncipherment"
                        : "critical,digitalSignature") ||
        !add_ext(cert, &ctx, NID_ext_key_usage, "serverAuth,clientAuth") ||
        !add_ext(cert, &ctx, NID_subject_key_identifier, "hash"))
        goto fail;
    if (!X509_sign(cert, key->pkey, is_ed ? NULL : EVP_sha256()))
        goto fail;
    *out = cert;
    cert = NULL;
    rc = 0;
    goto out;
fail:
    err_set(cause, "cannot make the self-signed certificate: %s", pem_ssl_reason(why, sizeof(why)));
out:
    ERR_clear_error();
    X509_NAME_free(name);
    BN_free(bn);
    X509_free(cert);
    return rc;
}

int
keys_to_pem(const struct key *key, char **out, size_t *len, char **cause)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    char *p;
    long n;
    int rc = 0;

    *out = NULL;
    *len = 0;
    if (bio == NULL && (bio = BIO_new(BIO_s_mem())) == NULL)
        return -E_NOMEM;
    if (!PEM_write_bio_PKCS8PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL)) {
        err_set(cause, "cannot serialise the private key");
        rc = -E_CRYPTO;
        goto out;
    }
    n = BIO_get_mem_data(bio, &p);
    if (n < 0 || (*out = malloc((size_t)n + 1)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    memcpy(*out, p, (size_t)n);
    (*out)[n] = '\0';
    *len = (size_t)n;
out:
    ERR_clear_error();
    /* BIO_free of a memory BIO does not wipe: clear it first. */
    if (BIO_get_mem_data(bio, &p) > 0)
        OPENSSL_cleanse(p, (size_t)BIO_get_mem_data(bio, &p));
    BIO_free(bio);
    return rc;
}

int
keys_export_pfx(const struct key *key, X509 *cert, STACK_OF(X509) *chain, const char *password,
                const char *friendly_name, unsigned char **out, size_t *len, char **cause)
{
    PKCS12 *p12;
    unsigned char *der = NULL, *p;
    int n, rc = 0;
    char why[128];

    *out = NULL;
    *len = 0;
    p12 = PKCS12_create_ex((char *)password, (char *)friendly_name,
                           key != NULL ? key->pkey : NULL, cert, chain, NID_aes_256_cbc,
                           NID_aes_256_cbc, PKCS12_DEFAULT_ITER, -1, 0, NULL, NULL);
    if (p12 == NULL) {
        err_set(cause, "cannot build the PFX file: %s", pem_ssl_reason(why, sizeof(why)));
        return -E_CRYPTO;
    }
    /* SHA-256 MAC instead of the SHA-1 default. */
    if (!PKCS12_set_mac(p12, password, -1, NULL, 0, PKCS12_DEFAULT_ITER, EVP_sha256())) {
        err_set(cause, "cannot protect the PFX file: %s", pem_ssl_reason(why, sizeof(why)));
        rc = -E_CRYPTO;
        goto out;
    }
    if ((n = i2d_PKCS12(p12, NULL)) <= 0 || (der = malloc((size_t)n)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    p = der;
    if (i2d_PKCS12(p12, &p) != n) {
        err_set(cause, "cannot encode the PFX file");
        rc = -E_CRYPTO;
        goto out;
    }
    *out = der;
    *len = (size_t)n;
    der = NULL;
out:
    ERR_clear_error();
    free(der);
    PKCS12_free(p12);
    return rc;
}

char *
keys_describe(const struct key *key)
{
    char buf[96], group[64] = "";
    size_t glen = 0;
    EVP_PKEY *pk = key->pkey;

    if (EVP_PKEY_is_a(pk, "RSA")) {
        snprintf(buf, sizeof(buf), "RSA %d", EVP_PKEY_get_bits(pk));
    } else if (EVP_PKEY_is_a(pk, "EC")) {
        if (EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &glen)) {
            if (strcmp(group, "prime256v1") == 0)
                snprintf(group, sizeof(group), "P-256");
            else if (strcmp(group, "secp384r1") == 0)
                snprintf(group, sizeof(group), "P-384");
            else if (strcmp(group, "secp521r1") == 0)
                snprintf(group, sizeof(group), "P-521");
        }
        snprintf(buf, sizeof(buf), "EC %s", group[0] ? group : "?");
    } else if (EVP_PKEY_is_a(pk, "ED25519")) {
        snprintf(buf, sizeof(buf), "Ed25519");
    } else if (EVP_PKEY_is_a(pk, "ED448")) {
        snprintf(buf, sizeof(buf), "Ed448");
    } else {
        snprintf(buf, sizeof(buf), "%s %d",
                 EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) : "key",
                 EVP_PKEY_get_bits(pk));
    }
    ERR_clear_error();
    return strdup(buf);
}

void
keys_free(struct key *key)
{
    if (key == NULL)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}

void
keys_free_secret(void *buf, size_t len)
{
    if (buf == NULL)
        return;
    OPENSSL_cleanse(buf, len);
    free(buf);
}
