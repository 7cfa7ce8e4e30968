/* Certificates on OpenSSL 3: PEM/DER input, chain order and links, descriptions. */
#include "pem.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "sys.h"

const char *
pem_ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    snprintf(buf, len, "%s", r != NULL ? r : "unknown error");
    ERR_clear_error();
    return buf;
}

int
pem_has_text(const unsigned char *data, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(data + i, needle, n) == 0)
            return 1;
    }
    return 0;
}

/* A DER SEQUENCE that a PKCS#12 parser accepts? */
static int
looks_like_pkcs12(const unsigned char *data, size_t len)
{
    const unsigned char *p = data;
    PKCS12 *p12;

    if (len < 4 || data[0] != 0x30)
        return 0;
    p12 = d2i_PKCS12(NULL, &p, (long)len);
    ERR_clear_error();
    if (p12 == NULL)
        return 0;
    PKCS12_free(p12);
    return 1;
}

/* Reads PEM CERTIFICATE blocks; other blocks are skipped. */
static int
read_pem(const unsigned char *data, size_t len, const char *what, STACK_OF(X509) *out,
         char **cause)
{
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    int rc = 0, blocks = 0;
    char *name = NULL, *header = NULL;
    unsigned char *body = NULL;
    long blen = 0;
    char other[64] = "";

    if (bio == NULL)
        return -E_NOMEM;
    for (;;) {
        if (!PEM_read_bio(bio, &name, &header, &body, &blen)) {
            unsigned long e = ERR_peek_last_error();

            /* End of input is "no start line"; anything else is damage. */
            if (e != 0 && ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
                char why[128];

                err_set(cause, "%s: damaged PEM block after %d good one(s): %s", what, blocks,
                        pem_ssl_reason(why, sizeof(why)));
                rc = -E_BAD_INPUT;
            }
            ERR_clear_error();
            break;
        }
        blocks++;
        if (strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0 ||
            strcmp(name, PEM_STRING_X509_TRUSTED) == 0) {
            const unsigned char *p = body;
            X509 *x = d2i_X509(NULL, &p, blen);

            if (x == NULL && strcmp(name, PEM_STRING_X509_TRUSTED) == 0) {
                p = body;
                x = d2i_X509_AUX(NULL, &p, blen);
            }
            if (x == NULL) {
                char why[128];

                err_set(cause, "%s: certificate %d is not a valid X.509 certificate: %s", what,
                        sk_X509_num(out) + 1, pem_ssl_reason(why, sizeof(why)));
                rc = -E_BAD_INPUT;
            } else if (!sk_X509_push(out, x)) {
                X509_free(x);
                rc = -E_NOMEM;
            }
        } else if (other[0] == '\0') {
            snprintf(other, sizeof(other), "%s", name);
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_clear_free(body, (size_t)blen);
        name = header = NULL;
        body = NULL;
        if (rc != 0)
            break;
    }
    BIO_free(bio);
    if (rc == 0 && sk_X509_num(out) == 0) {
        if (blocks == 0)
            err_set(cause, "%s: truncated or damaged PEM (no complete block)", what);
        else
            err_set(cause, "%s holds no certificate (found a '%s' block)", what, other);
        rc = -E_BAD_INPUT;
    }
    return rc;
}

int
pem_read_certs(const unsigned char *data, size_t len, const char *what, STACK_OF(X509) **out,
               char **cause)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    int rc;

    *out = NULL;
    if (certs == NULL)
        return -E_NOMEM;
    if (len == 0) {
        err_set(cause, "%s is empty", what);
        rc = -E_BAD_INPUT;
    } else if (pem_has_text(data, len, "-----BEGIN ")) {
        rc = read_pem(data, len, what, certs, cause);
    } else {
        const unsigned char *p = data;
        X509 *x = d2i_X509(NULL, &p, (long)len);

        ERR_clear_error();
        if (x != NULL && p == data + len) {
            rc = sk_X509_push(certs, x) ? 0 : -E_NOMEM;
            if (rc != 0)
                X509_free(x);
        } else {
            X509_free(x);
            if (looks_like_pkcs12(data, len))
                err_set(cause, "%s looks like a PKCS#12 file: use --pfx", what);
            else if (pem_has_text(data, len, "-----BEGIN"))
                err_set(cause, "%s: truncated PEM", what);
            else
                err_set(cause, "%s is not a certificate in PEM or DER form", what);
            rc = -E_BAD_INPUT;
        }
    }
    if (rc != 0) {
        sk_X509_pop_free(certs, X509_free);
        return rc;
    }
    *out = certs;
    return 0;
}

/* Heap one-line subject/issuer text (RFC 2253). */
static char *
name_text(const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *s = NULL, *p;
    long n;

    if (bio == NULL)
        return NULL;
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
        (n = BIO_get_mem_data(bio, &p)) >= 0 && (s = malloc((size_t)n + 1)) != NULL) {
        memcpy(s, p, (size_t)n);
        s[n] = '\0';
    }
    BIO_free(bio);
    return s;
}

static char *
subject_of(X509 *x)
{
    char *s = name_text(X509_get_subject_name(x));

    return s != NULL ? s : strdup("?");
}

/* Does issuer sign subject (name and signature)? */
static int
issued_by(X509 *subject, X509 *issuer)
{
    EVP_PKEY *pk;
    int ok;

    if (X509_check_issued(issuer, subject) != X509_V_OK) {
        ERR_clear_error();
        return 0;
    }
    pk = X509_get0_pubkey(issuer);
    ok = pk != NULL && X509_verify(subject, pk) == 1;
    ERR_clear_error();
    return ok;
}

/* Self-signed: issuer name equals subject name and its own key verifies the signature. */
static int
is_self_signed(X509 *x)
{
    EVP_PKEY *pk;
    int ok;

    if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) != 0)
        return 0;
    pk = X509_get0_pubkey(x);
    ok = pk != NULL && X509_verify(x, pk) == 1;
    ERR_clear_error();
    return ok;
}

int
pem_order_chain(X509 *leaf, STACK_OF(X509) *chain, STACK_OF(X509) **ordered, char **cause)
{
    STACK_OF(X509) *left = sk_X509_new_null(), *out = sk_X509_new_null();
    X509 *cur = leaf;
    int rc = 0;

    *ordered = NULL;
    if (left == NULL || out == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    /* Drop duplicates (of the leaf and of each other). */
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        int dup = X509_cmp(c, leaf) == 0;

        for (int j = 0; !dup && j < sk_X509_num(left); j++)
            dup = X509_cmp(c, sk_X509_value(left, j)) == 0;
        if (!dup) {
            if (!sk_X509_push(left, c)) {
                rc = -E_NOMEM;
                goto out;
            }
        }
    }
    /* Walk up from the leaf, taking the issuer of the current certificate each time. */
    while (sk_X509_num(left) > 0) {
        int found = -1;

        /* A self-signed certificate ends the path. */
        if (is_self_signed(cur))
            break;
        for (int j = 0; j < sk_X509_num(left) && found < 0; j++) {
            if (issued_by(cur, sk_X509_value(left, j)))
                found = j;
        }
        if (found < 0)
            break;
        cur = sk_X509_delete(left, found);
        X509_up_ref(cur);
        if (!sk_X509_push(out, cur)) {
            X509_free(cur);
            rc = -E_NOMEM;
            goto out;
        }
    }
    if (sk_X509_num(left) > 0) {
        X509 *stray = sk_X509_value(left, 0);
        char *s = subject_of(stray), *c = subject_of(cur);

        err_set(cause, "chain does not link: '%s' did not issue '%s' nor any other "
                       "certificate of the chain",
                s ? s : "?", c ? c : "?");
        free(s);
        free(c);
        rc = -E_BAD_INPUT;
        goto out;
    }
    *ordered = out;
    out = NULL;
out:
    sk_X509_free(left);
    sk_X509_pop_free(out, X509_free);
    return rc;
}

static int
write_bio(BIO *bio, char **out, size_t *len)
{
    char *p;
    long n = BIO_get_mem_data(bio, &p);

    if (n < 0 || (*out = malloc((size_t)n + 1)) == NULL)
        return -E_NOMEM;
    memcpy(*out, p, (size_t)n);
    (*out)[n] = '\0';
    *len = (size_t)n;
    return 0;
}

int
pem_write_certs(STACK_OF(X509) *certs, char **out, size_t *len, char **cause)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = 0;

    *out = NULL;
    *len = 0;
    if (bio == NULL)
        return -E_NOMEM;
    for (int i = 0; certs != NULL && i < sk_X509_num(certs); i++) {
        if (!PEM_write_bio_X509(bio, sk_X509_value(certs, i))) {
            err_set(cause, "cannot write certificate as PEM");
            rc = -E_CRYPTO;
            goto out;
        }
    }
    rc = write_bio(bio, out, len);
out:
    BIO_free(bio);
    return rc;
}

int
pem_write_cert(X509 *cert, char **out, size_t *len, char **cause)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc;

    *out = NULL;
    *len = 0;
    if (bio == NULL)
        return -E_NOMEM;
    if (!PEM_write_bio_X509(bio, cert)) {
        err_set(cause, "cannot write certificate as PEM");
        rc = -E_CRYPTO;
    } else {
        rc = write_bio(bio, out, len);
    }
    BIO_free(bio);
    return rc;
}

static int64_t
asn1_time_unix(const ASN1_TIME *t)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return sys_timegm(&tm);
}

static int
push_str(char ***arr, size_t *n, const char *s)
{
    char **na = realloc(*arr, (*n + 1) * sizeof(**arr));

    if (na == NULL)
        return -E_NOMEM;
    *arr = na;
    if ((na[*n] = strdup(s)) == NULL)
        return -E_NOMEM;
    (*n)++;
    return 0;
}

static int
ip_text(const ASN1_OCTET_STRING *ip, char *buf, size_t len)
{
    const unsigned char *p = ASN1_STRING_get0_data(ip);
    int n = ASN1_STRING_length(ip);

    if (n == 4) {
        snprintf(buf, len, "%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
        return 0;
    }
    if (n == 16) {
        size_t used = 0;

        for (int i = 0; i < 16; i += 2) {
            int w = snprintf(buf + used, len - used, "%s%X", i ? ":" : "",
                             (unsigned)((p[i] << 8) | p[i + 1]));
            if (w < 0 || (size_t)w >= len - used)
                return -1;
            used += (size_t)w;
        }
        return 0;
    }
    return -1;
}

static int
fill_sans(X509 *cert, struct cert_info *info)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int rc = 0;

    ERR_clear_error();
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names) && rc == 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);

        if (g->type == GEN_DNS) {
            const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
            int n = ASN1_STRING_length(g->d.dNSName);
            char *s = malloc((size_t)n + 1);

            if (s == NULL) {
                rc = -E_NOMEM;
                break;
            }
            memcpy(s, d, (size_t)n);
            s[n] = '\0';
            /* An embedded NUL would hide the rest of the name: show none of it. */
            if (strlen(s) == (size_t)n)
                rc = push_str(&info->dns, &info->ndns, s);
            free(s);
        } else if (g->type == GEN_IPADD) {
            char buf[64];

            if (ip_text(g->d.iPAddress, buf, sizeof(buf)) == 0)
                rc = push_str(&info->ips, &info->nips, buf);
        }
    }
    GENERAL_NAMES_free(names);
    return rc;
}

static char *
hex_upper(const unsigned char *p, size_t n, const char *sep)
{
    size_t step = 2 + strlen(sep);
    char *s = malloc(n * step + 1), *w = s;

    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        snprintf(w, 3, "%02X", p[i]);
        w += 2;
        if (i + 1 < n && sep[0] != '\0') {
            memcpy(w, sep, strlen(sep));
            w += strlen(sep);
        }
    }
    *w = '\0';
    return s;
}

static int
fill_key(X509 *cert, struct cert_info *info)
{
    EVP_PKEY *pk = X509_get0_pubkey(cert);
    const char *type = "unknown", *curve = "";
    char group[64] = "";
    size_t glen = 0;

    ERR_clear_error();
    if (pk != NULL) {
        info->key_bits = EVP_PKEY_get_bits(pk);
        if (EVP_PKEY_is_a(pk, "RSA") || EVP_PKEY_is_a(pk, "RSA-PSS")) {
            type = "RSA";
        } else if (EVP_PKEY_is_a(pk, "EC")) {
            type = "EC";
            if (EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &glen)) {
                if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
                    curve = "P-256";
                else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
                    curve = "P-384";
                else if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
                    curve = "P-521";
                else
                    curve = group;
            }
        } else if (EVP_PKEY_is_a(pk, "ED25519")) {
            type = "Ed25519";
        } else if (EVP_PKEY_is_a(pk, "ED448")) {
            type = "Ed448";
        } else if (EVP_PKEY_get0_type_name(pk) != NULL) {
            type = EVP_PKEY_get0_type_name(pk);
        }
    }
    info->key_type = strdup(type);
    info->key_curve = strdup(curve);
    return info->key_type != NULL && info->key_curve != NULL ? 0 : -E_NOMEM;
}

int
pem_cert_info(X509 *cert, struct cert_info *info, char **cause)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const ASN1_INTEGER *serial;
    BIGNUM *bn = NULL;
    char *hex = NULL, cn[256] = "";
    int rc = -E_NOMEM, nid;

    memset(info, 0, sizeof(*info));
    info->subject = subject_of(cert);
    info->issuer = name_text(X509_get_issuer_name(cert));
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
                                  sizeof(cn)) < 0)
        cn[0] = '\0';
    ERR_clear_error();
    info->common_name = strdup(cn);
    serial = X509_get0_serialNumber(cert);
    if ((bn = ASN1_INTEGER_to_BN(serial, NULL)) != NULL && (hex = BN_bn2hex(bn)) != NULL)
        info->serial = strdup(hex);
    if (!X509_digest(cert, EVP_sha256(), md, &mdlen)) {
        err_set(cause, "cannot compute the certificate's fingerprint");
        rc = -E_CRYPTO;
        goto out;
    }
    info->fingerprint = hex_upper(md, mdlen, ":");
    info->not_before = asn1_time_unix(X509_get0_notBefore(cert));
    info->not_after = asn1_time_unix(X509_get0_notAfter(cert));
    nid = X509_get_signature_nid(cert);
    info->sig_alg = strdup(nid != NID_undef ? OBJ_nid2ln(nid) : "unknown");
    info->self_signed = is_self_signed(cert);
    info->is_ca = X509_check_ca(cert) > 0 &&
                  (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
    if (info->subject == NULL || info->issuer == NULL || info->common_name == NULL ||
        info->serial == NULL || info->fingerprint == NULL || info->sig_alg == NULL)
        goto out;
    if ((rc = fill_sans(cert, info)) != 0 || (rc = fill_key(cert, info)) != 0)
        goto out;
    rc = 0;
out:
    OPENSSL_free(hex);
    BN_free(bn);
    ERR_clear_error();
    if (rc != 0)
        pem_cert_info_free(info);
    return rc;
}

void
pem_cert_info_free(struct cert_info *info)
{
    free(info->subject);
    free(info->common_name);
    free(info->issuer);
    free(info->serial);
    free(info->fingerprint);
    for (size_t i = 0; i < info->ndns; i++)
        free(info->dns[i]);
    free(info->dns);
    for (size_t i = 0; i < info->nips; i++)
        free(info->ips[i]);
    free(info->ips);
    free(info->key_type);
    free(info->key_curve);
    free(info->sig_alg);
    memset(info, 0, sizeof(*info));
}

int
pem_cert_validity(X509 *cert, int64_t now)
{
    if (asn1_time_unix(X509_get0_notBefore(cert)) > now)
        return -1;
    if (asn1_time_unix(X509_get0_notAfter(cert)) < now)
        return 1;
    return 0;
}

int64_t
pem_days_left(int64_t not_after, int64_t now)
{
    int64_t d = not_after - now;

    /* Round towards minus infinity, so an expired certificate is at -1 or less. */
    return d >= 0 ? d / 86400 : -((-d + 86399) / 86400);
}
