/*
 * Private keys: generation, parsing, matching, self-signed certificates,
 * serialisation and PKCS#12.  The only file in the agent that handles key
 * material (CONVENTIONS.md): nothing here logs, and no message carries a
 * password or key bytes.
 */
#include "keys.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/buffer.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "b64url.h"
#include "err.h"
#include "pem.h"

/* Key and PFX files larger than this are refused (OpenSSL takes int lengths). */
#define KEYS_INPUT_MAX (16L * 1024 * 1024)
/* Longest common name X.509 allows (ub-common-name). */
#define CN_MAX 64
/* Longest validity of a self-signed certificate, in days (100 years). */
#define SELFSIGNED_DAYS_MAX 36500

struct key {
    EVP_PKEY *pkey;
};

static const struct {
    enum key_type type;
    const char *name;
} key_types[] = {
    {KEY_EC256, "ec256"},     {KEY_EC384, "ec384"},     {KEY_RSA2048, "rsa2048"},
    {KEY_RSA3072, "rsa3072"}, {KEY_RSA4096, "rsa4096"}, {KEY_ED25519, "ed25519"},
};
#define NKEY_TYPES (sizeof(key_types) / sizeof(key_types[0]))

int
keys_type_parse(const char *name, enum key_type *out, char **cause)
{
    for (size_t i = 0; name != NULL && i < NKEY_TYPES; i++) {
        if (strcmp(key_types[i].name, name) == 0) {
            *out = key_types[i].type;
            return 0;
        }
    }
    err_set(cause, "unknown key type '%s': use ec256, ec384, rsa2048, rsa3072, rsa4096 or ed25519",
            name != NULL ? name : "");
    return -E_BAD_INPUT;
}

/* The name keys_type_parse takes ("ec256"), "unknown" for other values. */
const char *
keys_type_name(enum key_type type)
{
    for (size_t i = 0; i < NKEY_TYPES; i++) {
        if (key_types[i].type == type)
            return key_types[i].name;
    }
    return "unknown";
}

/* Wraps pkey (taken over, freed on failure). */
static struct key *
key_wrap(EVP_PKEY *pkey)
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
    char why[160];
    int rc;

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
    default:
        err_set(cause, "unknown key type %d", (int)type);
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (pkey == NULL) {
        err_set(cause, "cannot generate a %s key: %s", keys_type_name(type),
                pem_ssl_reason(why, sizeof(why)));
        rc = -E_CRYPTO;
        goto out;
    }
    if ((*out = key_wrap(pkey)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    return rc;
}

/* Passphrase callback state: the password (NULL: none given) and whether it was asked. */
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
    if (pw->password == NULL || size < 0)
        return -1;
    n = strlen(pw->password);
    if (n > (size_t)size)
        return -1;
    memcpy(buf, pw->password, n);
    return (int)n;
}

/* Occurrences of needle in data (binary-safe). */
static size_t
count_text(const unsigned char *data, size_t len, const char *needle)
{
    size_t n = strlen(needle), count = 0;

    for (size_t i = 0; n > 0 && i + n <= len; i++) {
        if (memcmp(data + i, needle, n) == 0) {
            count++;
            i += n - 1;
        }
    }
    return count;
}

/* Private key from DER (PKCS#8, encrypted PKCS#8 or traditional); NULL on failure. */
static EVP_PKEY *
decode_der_key(const unsigned char *data, size_t len, struct pw *pw)
{
    OSSL_DECODER_CTX *dctx;
    EVP_PKEY *pkey = NULL;
    const unsigned char *p = data;
    size_t left = len;

    dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", NULL, NULL, EVP_PKEY_KEYPAIR, NULL, NULL);
    if (dctx == NULL)
        return NULL;
    if (!OSSL_DECODER_CTX_set_pem_password_cb(dctx, pw_cb, pw) ||
        !OSSL_DECODER_from_data(dctx, &p, &left)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    return pkey;
}

/* Is this DER a "certificate" or a "pkcs12" file (given where a key was expected)? */
static int
der_is(const unsigned char *data, size_t len, const char *kind)
{
    const unsigned char *p = data;
    X509 *x = NULL;
    PKCS12 *p12 = NULL;
    int yes = 0;

    if (strcmp(kind, "certificate") == 0)
        yes = (x = d2i_X509(NULL, &p, (long)len)) != NULL;
    else if (strcmp(kind, "pkcs12") == 0)
        yes = (p12 = d2i_PKCS12(NULL, &p, (long)len)) != NULL;
    X509_free(x);
    PKCS12_free(p12);
    ERR_clear_error();
    return yes;
}

/*
 * Is this DER a well-formed PKCS#8 structure whose key OpenSSL cannot load
 * (an unknown algorithm or curve)?  Names the algorithm and its parameter
 * OID in buf.
 */
static int
unsupported_p8(const unsigned char *data, size_t len, char *buf, size_t buflen)
{
    const unsigned char *p = data;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
    const ASN1_OBJECT *alg = NULL;
    const X509_ALGOR *algor = NULL;
    const void *pval = NULL;
    char a[80] = "?", c[80] = "";
    int ptype = 0;

    if (p8 == NULL || p != data + len) {
        PKCS8_PRIV_KEY_INFO_free(p8);
        ERR_clear_error();
        return 0;
    }
    if (PKCS8_pkey_get0(&alg, NULL, NULL, &algor, p8) == 1) {
        OBJ_obj2txt(a, sizeof(a), alg, 0);
        X509_ALGOR_get0(NULL, &ptype, &pval, algor);
        if (ptype == V_ASN1_OBJECT)
            OBJ_obj2txt(c, sizeof(c), pval, 0);
    }
    snprintf(buf, buflen, "%s%s%s", a, c[0] != '\0' ? " on the curve " : "", c);
    PKCS8_PRIV_KEY_INFO_free(p8);
    ERR_clear_error();
    return 1;
}

int
keys_parse(const unsigned char *data, size_t len, const char *password, struct key **out,
           char **cause)
{
    struct pw pw = {password, 0};
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    char why[160] = "";
    int pem, rc;

    *out = NULL;
    if (data == NULL || len == 0) {
        err_set(cause, "the key file is empty");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (len > (size_t)KEYS_INPUT_MAX) {
        err_set(cause, "the key file is larger than %ld bytes", KEYS_INPUT_MAX);
        rc = -E_TOO_BIG;
        goto out;
    }
    pem = pem_has_text(data, len, "-----BEGIN ");
    if (pem) {
        if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
        /* Skips blocks that are not keys, so a certificate may come first. */
        pkey = PEM_read_bio_PrivateKey(bio, NULL, pw_cb, &pw);
    } else {
        pkey = decode_der_key(data, len, &pw);
    }
    if (pkey != NULL) {
        if ((*out = key_wrap(pkey)) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
        rc = 0;
        goto out;
    }
    rc = -E_BAD_INPUT;
    if (pw.asked && password == NULL) {
        err_set(cause, "private key is encrypted: give --password-file");
    } else if (pw.asked) {
        err_set(cause, "wrong password for the private key");
    } else if (pem && count_text(data, len, "-----BEGIN ") > count_text(data, len, "-----END ")) {
        err_set(cause, "key file: truncated PEM block (its END line is missing)");
    } else if (pem && !pem_has_text(data, len, "PRIVATE KEY-----")) {
        err_set(cause, "no private key found in key file");
    } else if (pem) {
        err_set(cause, "key file: the private key is damaged: %s",
                pem_ssl_reason(why, sizeof(why)));
    } else if (unsupported_p8(data, len, why, sizeof(why))) {
        err_set(cause, "key file: a PKCS#8 private key of an unsupported type or curve (%s)", why);
    } else if (der_is(data, len, "pkcs12")) {
        err_set(cause, "key file: looks like a PKCS#12 file: use --pfx");
    } else if (der_is(data, len, "certificate")) {
        err_set(cause, "key file holds a certificate, not a private key");
    } else {
        err_set(cause, "key file is not a private key in PEM or DER form");
    }
out:
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

int
keys_match_cert(const struct key *key, X509 *cert, char **cause)
{
    EVP_PKEY *pub = cert != NULL ? X509_get0_pubkey(cert) : NULL;
    int rc = 0;

    if (key == NULL || pub == NULL || EVP_PKEY_eq(key->pkey, pub) != 1) {
        err_set(cause, "private key does not match the certificate");
        rc = -E_BAD_INPUT;
    }
    ERR_clear_error();
    return rc;
}

/*
 * Checks the PFX's MAC with the given password; for no password both encodings
 * of the empty one are tried.  0 with *pass set to the one that works,
 * -E_BAD_INPUT for a wrong password.
 */
static int
pfx_check_mac(PKCS12 *p12, const char *password, const char **pass, char **cause)
{
    char why[160];

    *pass = password != NULL ? password : "";
    if (!PKCS12_mac_present(p12))
        return 0;
    ERR_clear_error();
    if (PKCS12_verify_mac(p12, *pass, -1))
        return 0;
    if (ERR_peek_error() != 0) {
        /* The MAC could not be computed at all: not a password problem. */
        err_set(cause, "cannot check the PFX file's integrity: %s",
                pem_ssl_reason(why, sizeof(why)));
        return -E_BAD_INPUT;
    }
    if ((*pass)[0] == '\0' && PKCS12_verify_mac(p12, NULL, 0)) {
        *pass = NULL;
        return 0;
    }
    ERR_clear_error();
    if (password == NULL)
        err_set(cause, "wrong password for the PFX file (it has one: give --password-file)");
    else
        err_set(cause, "wrong password for the PFX file, or the file was altered (its MAC does "
                       "not verify)");
    return -E_BAD_INPUT;
}

/*
 * Iteration counts come from the file: a PFX asking for 2^31 rounds of its
 * MAC or key derivation would keep a pool thread busy for hours.  Real files
 * use 1 to a few hundred thousand (OpenSSL 2048, Windows 2000).
 */
#define PFX_MAX_ITER 1000000L

/* The iteration count of a PKCS#5/PKCS#12 PBE algorithm (PBES1, PBES2 with PBKDF2); 0 unknown. */
static long
pbe_iter(const X509_ALGOR *alg)
{
    const ASN1_OBJECT *obj = NULL;
    const void *pval = NULL;
    const unsigned char *p;
    int ptype = 0;
    long iter = 0;

    if (alg == NULL)
        return 0;
    X509_ALGOR_get0(&obj, &ptype, &pval, alg);
    if (ptype != V_ASN1_SEQUENCE || pval == NULL)
        return 0;
    p = ASN1_STRING_get0_data(pval);
    if (OBJ_obj2nid(obj) == NID_pbes2) {
        PBE2PARAM *pbe2 = d2i_PBE2PARAM(NULL, &p, ASN1_STRING_length(pval));

        if (pbe2 != NULL && OBJ_obj2nid(pbe2->keyfunc->algorithm) == NID_id_pbkdf2 &&
            pbe2->keyfunc->parameter != NULL &&
            pbe2->keyfunc->parameter->type == V_ASN1_SEQUENCE) {
            const ASN1_STRING *kp = pbe2->keyfunc->parameter->value.sequence;
            const unsigned char *q = ASN1_STRING_get0_data(kp);
            PBKDF2PARAM *kdf = d2i_PBKDF2PARAM(NULL, &q, ASN1_STRING_length(kp));

            if (kdf != NULL)
                iter = ASN1_INTEGER_get(kdf->iter);
            PBKDF2PARAM_free(kdf);
        }
        PBE2PARAM_free(pbe2);
    } else {
        PBEPARAM *pbe = d2i_PBEPARAM(NULL, &p, ASN1_STRING_length(pval));

        if (pbe != NULL)
            iter = ASN1_INTEGER_get(pbe->iter);
        PBEPARAM_free(pbe);
    }
    /* ASN1_INTEGER_get gives -1 for values that do not fit a long. */
    return iter < 0 ? LONG_MAX : iter;
}

/*
 * Checks the PFX's iteration counts (MAC, encrypted containers, shrouded
 * keys) and counts its private keys: PKCS12_parse keeps the first key and
 * silently drops the others, so a file with several would import an
 * arbitrary one.  Called after the MAC check, before PKCS12_parse.
 */
static int
pfx_inspect(PKCS12 *p12, const char *pass, int *nkeys, char **cause)
{
    STACK_OF(PKCS7) *safes = NULL;
    const ASN1_INTEGER *mac_iter = NULL;
    long iter = 0;
    int rc = 0;

    *nkeys = 0;
    if (PKCS12_mac_present(p12)) {
        PKCS12_get0_mac(NULL, NULL, NULL, &mac_iter, p12);
        iter = mac_iter != NULL ? ASN1_INTEGER_get(mac_iter) : 1;
        if (iter < 0 || iter > PFX_MAX_ITER)
            goto too_many;
    }
    safes = PKCS12_unpack_authsafes(p12);
    for (int i = 0; i < sk_PKCS7_num(safes); i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);
        STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
        int nid = OBJ_obj2nid(p7->type);

        if (nid == NID_pkcs7_data) {
            bags = PKCS12_unpack_p7data(p7);
        } else if (nid == NID_pkcs7_encrypted) {
            if (p7->d.encrypted != NULL && p7->d.encrypted->enc_data != NULL &&
                (iter = pbe_iter(p7->d.encrypted->enc_data->algorithm)) > PFX_MAX_ITER)
                goto too_many;
            bags = PKCS12_unpack_p7encdata(p7, pass, pass != NULL ? -1 : 0);
        }
        for (int j = 0; j < sk_PKCS12_SAFEBAG_num(bags); j++) {
            const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, j);
            int type = PKCS12_SAFEBAG_get_nid(bag);
            const X509_ALGOR *alg = NULL;

            if (type == NID_pkcs8ShroudedKeyBag) {
                X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
                if ((iter = pbe_iter(alg)) > PFX_MAX_ITER) {
                    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
                    goto too_many;
                }
            }
            *nkeys += type == NID_keyBag || type == NID_pkcs8ShroudedKeyBag;
        }
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    }
    goto out;
too_many:
    err_set(cause,
            "the PFX file asks for %ld iterations of its key derivation or MAC; at most "
            "%ld are accepted",
            iter, PFX_MAX_ITER);
    rc = -E_BAD_INPUT;
out:
    sk_PKCS7_pop_free(safes, PKCS7_free);
    ERR_clear_error();
    return rc;
}

/* Takes the leaf out of certs: the one matching pkey, else one that issued none of the others. */
static X509 *
pfx_take_leaf(STACK_OF(X509) * certs, EVP_PKEY *pkey)
{
    int pick = -1;

    for (int i = 0; pkey != NULL && pick < 0 && i < sk_X509_num(certs); i++) {
        EVP_PKEY *pub = X509_get0_pubkey(sk_X509_value(certs, i));

        if (pub != NULL && EVP_PKEY_eq(pkey, pub) == 1)
            pick = i;
    }
    for (int i = 0; pick < 0 && i < sk_X509_num(certs); i++) {
        int issuer = 0;

        for (int j = 0; !issuer && j < sk_X509_num(certs); j++)
            issuer = j != i && X509_check_issued(sk_X509_value(certs, i),
                                                 sk_X509_value(certs, j)) == X509_V_OK;
        if (!issuer)
            pick = i;
    }
    ERR_clear_error();
    if (pick < 0 && sk_X509_num(certs) > 0)
        pick = 0;
    return pick < 0 ? NULL : sk_X509_delete(certs, pick);
}

int
keys_parse_capi_blob(const unsigned char *data, size_t len, struct key **out, char **cause)
{
    const unsigned char *p = data;
    EVP_PKEY *pkey;

    *out = NULL;
    if (data == NULL || len == 0 || len > (size_t)KEYS_INPUT_MAX ||
        (pkey = b2i_PrivateKey(&p, (long)len)) == NULL) {
        ERR_clear_error();
        err_set(cause, "the key from the Windows certificate store is not a private key blob "
                       "OpenSSL reads");
        return -E_BAD_INPUT;
    }
    if ((*out = key_wrap(pkey)) == NULL)
        return -E_NOMEM;
    return 0;
}

int
keys_parse_pfx(const unsigned char *data, size_t len, const char *password, struct key **key,
               X509 **leaf, STACK_OF(X509) * *chain, char **cause)
{
    const unsigned char *p = data;
    const char *pass = NULL;
    PKCS12 *p12 = NULL;
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *ca = NULL;
    char why[160];
    int rc, nkeys;

    *key = NULL;
    *leaf = NULL;
    *chain = NULL;
    if (data == NULL || len == 0) {
        err_set(cause, "the PFX file is empty");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (len > (size_t)KEYS_INPUT_MAX) {
        err_set(cause, "the PFX file is larger than %ld bytes", KEYS_INPUT_MAX);
        rc = -E_TOO_BIG;
        goto out;
    }
    if ((p12 = d2i_PKCS12(NULL, &p, (long)len)) == NULL) {
        if (pem_has_text(data, len, "-----BEGIN "))
            err_set(cause, "not a PKCS#12 file: it is PEM text (use --cert and --key)");
        else if (der_is(data, len, "certificate"))
            err_set(cause, "not a PKCS#12 file: it is a DER certificate (use --cert)");
        else if (data[0] == 0x30)
            err_set(cause, "not a PKCS#12 file, or a damaged or truncated one");
        else
            err_set(cause, "not a PKCS#12 file");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((rc = pfx_inspect(p12, password != NULL ? password : "", &nkeys, cause)) != 0)
        goto out;
    if ((rc = pfx_check_mac(p12, password, &pass, cause)) != 0)
        goto out;
    if (!PKCS12_parse(p12, pass, &pkey, &cert, &ca)) {
        if (!PKCS12_mac_present(p12))
            err_set(cause,
                    "cannot read the PFX file (wrong password for the PFX file, or "
                    "damaged): %s",
                    pem_ssl_reason(why, sizeof(why)));
        else
            err_set(cause, "cannot read the PFX file: %s", pem_ssl_reason(why, sizeof(why)));
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (nkeys > 1) {
        err_set(cause,
                "the PFX file holds %d private keys: import one key with its certificate "
                "at a time",
                nkeys);
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (ca == NULL && (ca = sk_X509_new_null()) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if (cert == NULL && (cert = pfx_take_leaf(ca, pkey)) == NULL) {
        err_set(cause, "PFX file holds no certificate");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (pkey != NULL) {
        *key = key_wrap(pkey);
        pkey = NULL;
        if (*key == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
    }
    *leaf = cert;
    *chain = ca;
    cert = NULL;
    ca = NULL;
    rc = 0;
out:
    EVP_PKEY_free(pkey);
    X509_free(cert);
    sk_X509_pop_free(ca, X509_free);
    PKCS12_free(p12);
    ERR_clear_error();
    return rc;
}

/* A DNS name for a SAN: labels of letters, digits, '-' and '_', a leading "*." allowed. */
static int
dns_name_ok(const char *name)
{
    size_t n = strlen(name), label = 0;

    if (n == 0 || n > 253)
        return 0;
    if (strncmp(name, "*.", 2) == 0)
        name += 2;
    for (const char *c = name; *c != '\0'; c++) {
        if (*c == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                   (*c >= '0' && *c <= '9') || *c == '-' || *c == '_') {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0;
}

/* Builds the GENERAL_NAMES of dns[] and ips[]; -E_BAD_INPUT names an invalid entry. */
static int
make_sans(const char *const *dns, size_t ndns, const char *const *ips, size_t nips,
          GENERAL_NAMES **out, char **cause)
{
    GENERAL_NAMES *names = NULL;
    GENERAL_NAME *g = NULL;
    int rc = -E_NOMEM;

    *out = NULL;
    if ((names = sk_GENERAL_NAME_new_null()) == NULL)
        goto out;
    for (size_t i = 0; i < ndns; i++) {
        ASN1_IA5STRING *s;

        if (dns[i] == NULL || !dns_name_ok(dns[i])) {
            err_set(cause, "'%s' is not a valid DNS name", dns[i] != NULL ? dns[i] : "");
            rc = -E_BAD_INPUT;
            goto out;
        }
        if ((g = GENERAL_NAME_new()) == NULL || (s = ASN1_IA5STRING_new()) == NULL)
            goto out;
        GENERAL_NAME_set0_value(g, GEN_DNS, s);
        if (!ASN1_STRING_set(s, dns[i], (int)strlen(dns[i])) ||
            sk_GENERAL_NAME_push(names, g) <= 0)
            goto out;
        g = NULL;
    }
    for (size_t i = 0; i < nips; i++) {
        ASN1_OCTET_STRING *ip = ips[i] != NULL ? a2i_IPADDRESS(ips[i]) : NULL;

        ERR_clear_error();
        if (ip == NULL) {
            err_set(cause, "'%s' is not an IPv4 or IPv6 address", ips[i] != NULL ? ips[i] : "");
            rc = -E_BAD_INPUT;
            goto out;
        }
        if ((g = GENERAL_NAME_new()) == NULL) {
            ASN1_OCTET_STRING_free(ip);
            goto out;
        }
        GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
        if (sk_GENERAL_NAME_push(names, g) <= 0)
            goto out;
        g = NULL;
    }
    *out = names;
    names = NULL;
    rc = 0;
out:
    GENERAL_NAME_free(g);
    GENERAL_NAMES_free(names);
    ERR_clear_error();
    return rc;
}

/* Adds subjectAltName with dns[] and ips[]; -E_BAD_INPUT names an invalid entry. */
static int
add_sans(X509 *cert, const char *const *dns, size_t ndns, const char *const *ips, size_t nips,
         char **cause)
{
    GENERAL_NAMES *names = NULL;
    int rc;

    if (ndns == 0 && nips == 0)
        return 0;
    if ((rc = make_sans(dns, ndns, ips, nips, &names, cause)) != 0)
        return rc;
    if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) != 1) {
        err_set(cause, "cannot add the subject alternative names");
        rc = -E_CRYPTO;
    }
    GENERAL_NAMES_free(names);
    ERR_clear_error();
    return rc;
}

/* Adds one extension written in openssl.cnf syntax ("critical,CA:FALSE"). */
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

/* A random positive 128-bit serial number. */
static int
set_random_serial(X509 *cert)
{
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    int ok;

    if (RAND_bytes(serial, sizeof(serial)) != 1)
        return 0;
    serial[0] &= 0x7f; /* positive */
    serial[0] |= 0x40; /* and a full 16 bytes long */
    ok = (bn = BN_bin2bn(serial, sizeof(serial), NULL)) != NULL &&
         BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    BN_free(bn);
    return ok;
}

int
keys_selfsigned(const struct key *key, const char *cn, const char *const *dns, size_t ndns,
                const char *const *ips, size_t nips, int days, X509 **out, char **cause)
{
    X509 *cert = NULL;
    X509_NAME *name = NULL;
    X509V3_CTX ctx;
    time_t now = time(NULL);
    char why[160];
    int rsa, eddsa, rc;

    *out = NULL;
    if (key == NULL) {
        err_set(cause, "no key to sign the certificate with");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (cn == NULL || cn[0] == '\0') {
        err_set(cause, "the certificate needs a common name");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (strlen(cn) > CN_MAX) {
        err_set(cause, "the common name '%.*s...' is longer than %d characters", CN_MAX, cn,
                CN_MAX);
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (days < 1 || days > SELFSIGNED_DAYS_MAX) {
        err_set(cause, "validity of %d days is out of range (1 to %d)", days, SELFSIGNED_DAYS_MAX);
        rc = -E_BAD_INPUT;
        goto out;
    }
    rsa = EVP_PKEY_is_a(key->pkey, "RSA");
    eddsa = EVP_PKEY_is_a(key->pkey, "ED25519") || EVP_PKEY_is_a(key->pkey, "ED448");
    if ((cert = X509_new()) == NULL || (name = X509_NAME_new()) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    rc = -E_CRYPTO;
    if (!X509_set_version(cert, X509_VERSION_3) || !set_random_serial(cert) ||
        X509_time_adj_ex(X509_getm_notBefore(cert), 0, -300, &now) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, &now) == NULL)
        goto fail;
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0)) {
        err_set(cause, "'%s' cannot be a common name: %s", cn, pem_ssl_reason(why, sizeof(why)));
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (!X509_set_subject_name(cert, name) || !X509_set_issuer_name(cert, name) ||
        !X509_set_pubkey(cert, key->pkey))
        goto fail;
    if ((rc = add_sans(cert, dns, ndns, ips, nips, cause)) != 0)
        goto out;
    rc = -E_CRYPTO;
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    if (!add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(cert, &ctx, NID_key_usage,
                 rsa ? "critical,digitalSignature,keyEncipherment"
                     : "critical,digitalSignature") ||
        !add_ext(cert, &ctx, NID_ext_key_usage, "serverAuth,clientAuth") ||
        !add_ext(cert, &ctx, NID_subject_key_identifier, "hash"))
        goto fail;
    if (X509_sign(cert, key->pkey, eddsa ? NULL : EVP_sha256()) <= 0)
        goto fail;
    *out = cert;
    cert = NULL;
    rc = 0;
    goto out;
fail:
    err_set(cause, "cannot make the self-signed certificate: %s",
            pem_ssl_reason(why, sizeof(why)));
out:
    X509_NAME_free(name);
    X509_free(cert);
    ERR_clear_error();
    return rc;
}

/* Wipes what a memory BIO holds; BIO_free releases it afterwards. */
static void
wipe_mem_bio(BIO *bio)
{
    BUF_MEM *bm = NULL;

    if (bio != NULL && BIO_get_mem_ptr(bio, &bm) > 0 && bm != NULL && bm->data != NULL)
        OPENSSL_cleanse(bm->data, bm->length);
}

int
keys_to_pem(const struct key *key, char **out, size_t *len, char **cause)
{
    BIO *bio = NULL;
    char *p = NULL, why[160];
    long n;
    int rc;

    *out = NULL;
    *len = 0;
    if (key == NULL) {
        err_set(cause, "no key to write");
        rc = -E_BAD_INPUT;
        goto out;
    }
    /* A secure-heap buffer when the process set one up, else an ordinary one. */
    if ((bio = BIO_new(BIO_s_secmem())) == NULL && (bio = BIO_new(BIO_s_mem())) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if (!PEM_write_bio_PKCS8PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL)) {
        err_set(cause, "cannot write the private key as PEM: %s",
                pem_ssl_reason(why, sizeof(why)));
        rc = -E_CRYPTO;
        goto out;
    }
    n = BIO_get_mem_data(bio, &p);
    if (n <= 0 || (*out = malloc((size_t)n + 1)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    memcpy(*out, p, (size_t)n);
    (*out)[n] = '\0';
    *len = (size_t)n;
    rc = 0;
out:
    wipe_mem_bio(bio);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

int
keys_export_pfx(const struct key *key, X509 *cert, STACK_OF(X509) * chain, const char *password,
                const char *friendly_name, unsigned char **out, size_t *len, char **cause)
{
    const char *pass = password != NULL ? password : "";
    PKCS12 *p12 = NULL;
    unsigned char *der = NULL, *p;
    char why[160];
    int n = 0, rc;

    *out = NULL;
    *len = 0;
    if (cert == NULL) {
        err_set(cause, "no certificate to export");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (key != NULL && (rc = keys_match_cert(key, cert, cause)) != 0)
        goto out;
    /* AES-256-CBC with PBKDF2 (HMAC-SHA256) for both bags; the MAC is set below. */
    p12 =
        PKCS12_create_ex(pass, friendly_name, key != NULL ? key->pkey : NULL, cert, chain,
                         NID_aes_256_cbc, NID_aes_256_cbc, PKCS12_DEFAULT_ITER, -1, 0, NULL, NULL);
    if (p12 == NULL) {
        err_set(cause, "cannot build the PFX file: %s", pem_ssl_reason(why, sizeof(why)));
        rc = -E_CRYPTO;
        goto out;
    }
    if (!PKCS12_set_mac(p12, pass, -1, NULL, 0, PKCS12_DEFAULT_ITER, EVP_sha256())) {
        err_set(cause, "cannot add the PFX file's MAC: %s", pem_ssl_reason(why, sizeof(why)));
        rc = -E_CRYPTO;
        goto out;
    }
    if ((n = i2d_PKCS12(p12, NULL)) <= 0) {
        err_set(cause, "cannot encode the PFX file: %s", pem_ssl_reason(why, sizeof(why)));
        rc = -E_CRYPTO;
        goto out;
    }
    if ((der = malloc((size_t)n)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    p = der;
    if (i2d_PKCS12(p12, &p) != n) {
        err_set(cause, "cannot encode the PFX file: %s", pem_ssl_reason(why, sizeof(why)));
        rc = -E_CRYPTO;
        goto out;
    }
    *out = der;
    *len = (size_t)n;
    der = NULL;
    rc = 0;
out:
    /* With an empty password the key inside is as good as clear text. */
    if (der != NULL)
        keys_free_secret(der, (size_t)n);
    PKCS12_free(p12);
    ERR_clear_error();
    return rc;
}

/* ACME: JWK, JWS signatures and CSRs. */

const char *
keys_jws_alg(const struct key *key)
{
    char group[64] = "";
    size_t glen = 0;

    if (key == NULL)
        return NULL;
    if (EVP_PKEY_is_a(key->pkey, "RSA"))
        return "RS256";
    if (EVP_PKEY_is_a(key->pkey, "EC") &&
        EVP_PKEY_get_group_name(key->pkey, group, sizeof(group), &glen)) {
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
            return "ES256";
        if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
            return "ES384";
    }
    return NULL;
}

/* base64url of a BIGNUM parameter, left-padded to width bytes (0: minimal). */
static char *
b64url_param(const EVP_PKEY *pk, const char *param, size_t width)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    char *r = NULL;
    int n;

    if (!EVP_PKEY_get_bn_param(pk, param, &bn))
        return NULL;
    n = BN_num_bytes(bn);
    if (width == 0)
        width = (size_t)n;
    if ((size_t)n <= width && width <= sizeof(buf) &&
        BN_bn2binpad(bn, buf, (int)width) == (int)width)
        r = b64url_encode(buf, width);
    BN_free(bn);
    return r;
}

int
keys_jwk(const struct key *key, char **out, char **cause)
{
    const char *alg = keys_jws_alg(key);
    char *a = NULL, *b = NULL;
    size_t n;
    int rc = -E_NOMEM;

    *out = NULL;
    if (alg == NULL) {
        err_set(cause, "ACME account keys must be EC P-256, EC P-384 or RSA");
        return -E_BAD_INPUT;
    }
    /* Members in lexicographic order, no white space: RFC 7638 thumbprint input. */
    if (alg[0] == 'R') {
        if ((a = b64url_param(key->pkey, "e", 0)) == NULL ||
            (b = b64url_param(key->pkey, "n", 0)) == NULL)
            goto out;
        n = strlen(a) + strlen(b) + 40;
        if ((*out = malloc(n)) != NULL)
            snprintf(*out, n, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", a, b);
    } else {
        size_t w = strcmp(alg, "ES256") == 0 ? 32 : 48;

        if ((a = b64url_param(key->pkey, "qx", w)) == NULL ||
            (b = b64url_param(key->pkey, "qy", w)) == NULL)
            goto out;
        n = strlen(a) + strlen(b) + 64;
        if ((*out = malloc(n)) != NULL)
            snprintf(*out, n, "{\"crv\":\"P-%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                     w == 32 ? "256" : "384", a, b);
    }
    rc = *out != NULL ? 0 : -E_NOMEM;
out:
    if (rc != 0 && a != NULL && b == NULL)
        err_set(cause, "cannot read the public key's parameters");
    free(a);
    free(b);
    ERR_clear_error();
    return rc;
}

int
keys_jwk_thumbprint(const struct key *key, char **out, char **cause)
{
    unsigned char md[32];
    char *jwk = NULL;
    int rc;

    *out = NULL;
    if ((rc = keys_jwk(key, &jwk, cause)) != 0)
        return rc;
    if (EVP_Digest(jwk, strlen(jwk), md, NULL, EVP_sha256(), NULL) != 1) {
        err_set(cause, "cannot hash the JWK");
        rc = -E_CRYPTO;
    } else if ((*out = b64url_encode(md, sizeof(md))) == NULL) {
        rc = -E_NOMEM;
    }
    free(jwk);
    return rc;
}

int
keys_jws_sign(const struct key *key, const char *input, size_t len, char **out, char **cause)
{
    const char *alg = keys_jws_alg(key);
    EVP_MD_CTX *md = NULL;
    const EVP_MD *digest;
    unsigned char *sig = NULL, raw[96];
    size_t siglen = 0, w = 0;
    ECDSA_SIG *es = NULL;
    const unsigned char *p;
    char why[160];
    int rc = -E_CRYPTO;

    *out = NULL;
    if (alg == NULL) {
        err_set(cause, "this key type cannot sign ACME requests");
        return -E_BAD_INPUT;
    }
    digest = strcmp(alg, "ES384") == 0 ? EVP_sha384() : EVP_sha256();
    if ((md = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestSignInit(md, NULL, digest, NULL, key->pkey) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, len) != 1 ||
        (sig = malloc(siglen)) == NULL ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, len) != 1)
        goto fail;
    if (alg[0] == 'E') {
        /* JWS wants r || s, each the size of the curve, not DER. */
        w = strcmp(alg, "ES256") == 0 ? 32 : 48;
        p = sig;
        if ((es = d2i_ECDSA_SIG(NULL, &p, (long)siglen)) == NULL ||
            BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)w) != (int)w ||
            BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + w, (int)w) != (int)w)
            goto fail;
        *out = b64url_encode(raw, 2 * w);
    } else {
        *out = b64url_encode(sig, siglen);
    }
    rc = *out != NULL ? 0 : -E_NOMEM;
    goto out;
fail:
    err_set(cause, "cannot sign: %s", pem_ssl_reason(why, sizeof(why)));
out:
    ECDSA_SIG_free(es);
    free(sig);
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return rc;
}

int
keys_names_check(const char *const *dns, size_t ndns, const char *const *ips, size_t nips,
                 char **cause)
{
    GENERAL_NAMES *names = NULL;
    int rc = make_sans(dns, ndns, ips, nips, &names, cause);

    GENERAL_NAMES_free(names);
    return rc;
}

int
keys_csr(const struct key *key, const char *const *dns, size_t ndns, const char *const *ips,
         size_t nips, char **out, char **cause)
{
    X509_REQ *req = NULL;
    X509_NAME *name = NULL;
    GENERAL_NAMES *names = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_EXTENSION *ext = NULL;
    unsigned char *der = NULL;
    int eddsa, n, rc;
    char why[160];

    *out = NULL;
    if (ndns == 0 && nips == 0) {
        err_set(cause, "a certificate request needs at least one name");
        return -E_BAD_INPUT;
    }
    if ((rc = make_sans(dns, ndns, ips, nips, &names, cause)) != 0)
        return rc;
    rc = -E_CRYPTO;
    eddsa = EVP_PKEY_is_a(key->pkey, "ED25519") || EVP_PKEY_is_a(key->pkey, "ED448");
    if ((req = X509_REQ_new()) == NULL || (name = X509_NAME_new()) == NULL ||
        (exts = sk_X509_EXTENSION_new_null()) == NULL)
        goto fail;
    /* No CN is required (RFC 8555); the first DNS name is used when it fits. */
    if (ndns > 0 && strlen(dns[0]) <= CN_MAX &&
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)dns[0], -1,
                                    -1, 0))
        goto fail;
    if (!X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, name) ||
        !X509_REQ_set_pubkey(req, key->pkey))
        goto fail;
    /* Only subjectAltName: no clientAuth EKU, no must-staple. */
    if ((ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, names)) == NULL ||
        !sk_X509_EXTENSION_push(exts, ext))
        goto fail;
    ext = NULL;
    if (!X509_REQ_add_extensions(req, exts) ||
        X509_REQ_sign(req, key->pkey, eddsa ? NULL : EVP_sha256()) <= 0)
        goto fail;
    if ((n = i2d_X509_REQ(req, &der)) <= 0)
        goto fail;
    *out = b64url_encode(der, (size_t)n);
    rc = *out != NULL ? 0 : -E_NOMEM;
    goto out;
fail:
    err_set(cause, "cannot make the certificate request: %s", pem_ssl_reason(why, sizeof(why)));
out:
    OPENSSL_free(der);
    X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(names);
    X509_NAME_free(name);
    X509_REQ_free(req);
    ERR_clear_error();
    return rc;
}

char *
keys_describe(const struct key *key)
{
    char buf[96], group[64] = "";
    const char *nist = NULL;
    size_t glen = 0;
    EVP_PKEY *pk;
    int nid;

    if (key == NULL)
        return strdup("no key");
    pk = key->pkey;
    if (EVP_PKEY_is_a(pk, "RSA") || EVP_PKEY_is_a(pk, "RSA-PSS")) {
        snprintf(buf, sizeof(buf), "RSA %d", EVP_PKEY_get_bits(pk));
    } else if (EVP_PKEY_is_a(pk, "EC")) {
        if (EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen)) {
            nid = OBJ_txt2nid(group);
            if (nid == NID_undef)
                nid = EC_curve_nist2nid(group);
            if (nid != NID_undef)
                nist = EC_curve_nid2nist(nid);
        }
        snprintf(buf, sizeof(buf), "EC %s",
                 nist != NULL       ? nist
                 : group[0] != '\0' ? group
                                    : "(unknown curve)");
    } else if (EVP_PKEY_is_a(pk, "ED25519")) {
        snprintf(buf, sizeof(buf), "Ed25519");
    } else if (EVP_PKEY_is_a(pk, "ED448")) {
        snprintf(buf, sizeof(buf), "Ed448");
    } else {
        snprintf(buf, sizeof(buf), "%s %d",
                 EVP_PKEY_get0_type_name(pk) != NULL ? EVP_PKEY_get0_type_name(pk) : "key",
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

/* Validity of a tls-alpn-01 validation certificate, in days. */
#define ALPN_CERT_DAYS 7
/* id-pe-acmeIdentifier (RFC 8737 section 6.1); OpenSSL 3.0 has no NID for it. */
#define OID_ACME_IDENTIFIER "1.3.6.1.5.5.7.1.31"

/* Adds the critical acmeIdentifier extension: extnValue = DER OCTET STRING of digest. */
static int
add_acme_identifier(X509 *cert, const unsigned char digest[SHA256_DIGEST_LENGTH])
{
    ASN1_OBJECT *oid = OBJ_txt2obj(OID_ACME_IDENTIFIER, 1);
    ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new(), *value = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    unsigned char *der = NULL;
    int len, ok = 0;

    if (oid == NULL || inner == NULL || value == NULL ||
        !ASN1_OCTET_STRING_set(inner, digest, SHA256_DIGEST_LENGTH))
        goto out;
    if ((len = i2d_ASN1_OCTET_STRING(inner, &der)) <= 0 || !ASN1_OCTET_STRING_set(value, der, len))
        goto out;
    if ((ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, value)) == NULL)
        goto out;
    ok = X509_add_ext(cert, ext, -1);
out:
    X509_EXTENSION_free(ext);
    OPENSSL_free(der);
    ASN1_OCTET_STRING_free(value);
    ASN1_OCTET_STRING_free(inner);
    ASN1_OBJECT_free(oid);
    return ok;
}

int
keys_alpn_cert(const char *identifier, const char *key_authorization, struct key **key,
               X509 **cert, char **cause)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    ASN1_OCTET_STRING *ip = NULL;
    struct key *k = NULL;
    X509 *x = NULL;
    X509_NAME *name = NULL;
    time_t now = time(NULL);
    char why[160];
    int rc;

    *key = NULL;
    *cert = NULL;
    if (identifier == NULL || identifier[0] == '\0' || key_authorization == NULL ||
        key_authorization[0] == '\0') {
        err_set(cause, "tls-alpn-01 needs an identifier and a key authorization");
        rc = -E_BAD_INPUT;
        goto out;
    }
    ip = a2i_IPADDRESS(identifier);
    ERR_clear_error();
    if (ip == NULL && !dns_name_ok(identifier)) {
        err_set(cause, "'%s' is neither a DNS name nor an IP address", identifier);
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((rc = keys_generate(KEY_EC256, &k, cause)) != 0)
        goto out;
    if ((x = X509_new()) == NULL || (name = X509_NAME_new()) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    rc = -E_CRYPTO;
    if (!SHA256((const unsigned char *)key_authorization, strlen(key_authorization), digest))
        goto fail;
    if (!X509_set_version(x, X509_VERSION_3) || !set_random_serial(x) ||
        X509_time_adj_ex(X509_getm_notBefore(x), 0, -300, &now) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), ALPN_CERT_DAYS, 0, &now) == NULL ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"certagent tls-alpn-01", -1, -1, 0) ||
        !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
        !X509_set_pubkey(x, k->pkey))
        goto fail;
    if (ip != NULL)
        rc = add_sans(x, NULL, 0, &identifier, 1, cause);
    else
        rc = add_sans(x, &identifier, 1, NULL, 0, cause);
    if (rc != 0)
        goto out;
    rc = -E_CRYPTO;
    if (!add_acme_identifier(x, digest) || X509_sign(x, k->pkey, EVP_sha256()) <= 0)
        goto fail;
    *key = k;
    *cert = x;
    k = NULL;
    x = NULL;
    rc = 0;
    goto out;
fail:
    err_set(cause, "cannot make the tls-alpn-01 certificate for %s: %s", identifier,
            pem_ssl_reason(why, sizeof(why)));
out:
    OPENSSL_cleanse(digest, sizeof(digest));
    ASN1_OCTET_STRING_free(ip);
    X509_NAME_free(name);
    X509_free(x);
    keys_free(k);
    ERR_clear_error();
    return rc;
}

int
keys_ssl_use(SSL *ssl, const struct key *key, X509 *cert, char **cause)
{
    char why[160];
    int rc = 0;

    if (ssl == NULL || key == NULL || cert == NULL) {
        err_set(cause, "no key or certificate to serve");
        rc = -E_BAD_INPUT;
    } else if (SSL_use_certificate(ssl, cert) != 1 || SSL_use_PrivateKey(ssl, key->pkey) != 1 ||
               SSL_check_private_key(ssl) != 1) {
        err_set(cause, "cannot serve the certificate: %s", pem_ssl_reason(why, sizeof(why)));
        rc = -E_CRYPTO;
    }
    ERR_clear_error();
    return rc;
}
