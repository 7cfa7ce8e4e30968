/*
 * Certificates on OpenSSL 3: PEM and DER input, chain order and links, plain
 * descriptions and PEM output.  No private keys here (agent/keys.c has them)
 * and no logging: every failure is returned with words in *cause.
 */
#include "pem.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "b64url.h"
#include "err.h"
#include "strv.h"
#include "sys.h"

/* Larger inputs are refused before OpenSSL sees them (its lengths are int/long). */
#define PEM_INPUT_MAX (64L * 1024 * 1024)

const char *
pem_ssl_reason(char *buf, size_t len)
{
    const char *data = NULL, *reason = NULL;
    unsigned long e;
    int flags = 0;

    if (buf == NULL || len == 0) {
        ERR_clear_error();
        return "";
    }
    e = ERR_peek_last_error_all(NULL, NULL, NULL, &data, &flags);
    if (e != 0)
        reason = ERR_reason_error_string(e);
    if (reason == NULL && e != 0 && ERR_lib_error_string(e) != NULL) {
        snprintf(buf, len, "%s failed", ERR_lib_error_string(e));
    } else if (reason == NULL) {
        snprintf(buf, len, "unknown error");
    } else if ((flags & ERR_TXT_STRING) != 0 && data != NULL && data[0] != '\0') {
        /* The detail OpenSSL attached, e.g. "Expecting: CERTIFICATE". */
        snprintf(buf, len, "%s (%s)", reason, data);
    } else {
        snprintf(buf, len, "%s", reason);
    }
    ERR_clear_error();
    return buf;
}

int
pem_has_text(const unsigned char *data, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    if (data == NULL || n == 0 || n > len)
        return 0;
    for (size_t i = 0; i + n <= len; i++) {
        if (data[i] == (unsigned char)needle[0] && memcmp(data + i, needle, n) == 0)
            return 1;
    }
    return 0;
}

/* Offset of needle in data[from..len), or -1. */
static long
find_text(const unsigned char *data, size_t len, size_t from, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = from; i + n <= len; i++) {
        if (data[i] == (unsigned char)needle[0] && memcmp(data + i, needle, n) == 0)
            return (long)i;
    }
    return -1;
}

/*
 * Finds a PEM block whose BEGIN line has no complete matching END line
 * ("-----END LABEL-----") before the next BEGIN or the end of the data.
 * Copies its label into label (cut to fit) and returns 1.
 */
static int
truncated_block(const unsigned char *data, size_t len, char *label, size_t label_len)
{
    long begin = find_text(data, len, 0, "-----BEGIN ");
    char end_line[96];

    while (begin >= 0) {
        size_t start = (size_t)begin + strlen("-----BEGIN "), n = 0;
        long end, next;

        while (start + n < len && n + 1 < label_len && data[start + n] != '-' &&
               data[start + n] != '\r' && data[start + n] != '\n')
            n++;
        memcpy(label, data + start, n);
        label[n] = '\0';
        snprintf(end_line, sizeof(end_line), "-----END %s-----", label);
        end = find_text(data, len, start, end_line);
        next = find_text(data, len, start, "-----BEGIN ");
        if (end < 0 || (next >= 0 && next < end))
            return 1;
        begin = next;
    }
    return 0;
}

/* A DER structure that OpenSSL reads as a PKCS#12 file? */
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

static int
is_cert_label(const char *name)
{
    return strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0 ||
           strcmp(name, PEM_STRING_X509_TRUSTED) == 0;
}

/* One certificate from the DER body of a PEM block; NULL with the queue set. */
static X509 *
cert_from_block(const char *name, const unsigned char *body, long blen)
{
    const unsigned char *p = body;
    X509 *x;

    if (blen >= 2 && body[1] == 0x80)
        return NULL; /* BER indefinite length: not DER */
    if (strcmp(name, PEM_STRING_X509_TRUSTED) == 0)
        x = d2i_X509_AUX(NULL, &p, blen);
    else
        x = d2i_X509(NULL, &p, blen);
    if (x != NULL && p != body + blen) {
        /* Bytes after the certificate: the block is not what it claims. */
        X509_free(x);
        x = NULL;
    }
    return x;
}

/* Reads the CERTIFICATE blocks of PEM text into out; other blocks are skipped. */
static int
read_pem(const unsigned char *data, size_t len, const char *what, STACK_OF(X509) * out,
         char **cause)
{
    BIO *bio = NULL;
    char *name = NULL, *header = NULL, other[80] = "", why[160];
    unsigned char *body = NULL;
    long blen = 0;
    int rc = 0, blocks = 0;

    if (truncated_block(data, len, other, sizeof(other))) {
        err_set(cause, "%s: truncated PEM block '%s' (its END line is missing)", what, other);
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    for (;;) {
        X509 *x;

        if (!PEM_read_bio(bio, &name, &header, &body, &blen)) {
            unsigned long e = ERR_peek_last_error();

            /* The end of the input reads as "no start line"; anything else is damage. */
            if (e != 0 &&
                !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
                err_set(cause, "%s: PEM block %d is damaged: %s", what, blocks + 1,
                        pem_ssl_reason(why, sizeof(why)));
                rc = -E_BAD_INPUT;
            }
            ERR_clear_error();
            break;
        }
        blocks++;
        if (is_cert_label(name)) {
            if ((x = cert_from_block(name, body, blen)) == NULL) {
                err_set(cause, "%s: certificate %d is not a valid X.509 certificate: %s", what,
                        sk_X509_num(out) + 1, pem_ssl_reason(why, sizeof(why)));
                rc = -E_BAD_INPUT;
            } else if (sk_X509_push(out, x) <= 0) {
                X509_free(x);
                rc = -E_NOMEM;
            }
        } else if (other[0] == '\0') {
            snprintf(other, sizeof(other), "%s", name);
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        /* The block may have been a private key: wipe its bytes. */
        OPENSSL_clear_free(body, (size_t)blen);
        name = header = NULL;
        body = NULL;
        if (rc != 0)
            goto out;
    }
    if (rc == 0 && sk_X509_num(out) == 0) {
        if (blocks == 0)
            err_set(cause, "%s: no complete PEM block found (not PEM or DER)", what);
        else
            err_set(cause, "%s: PEM block '%s' is not a certificate", what, other);
        rc = -E_BAD_INPUT;
    }
out:
    BIO_free(bio);
    return rc;
}

/* Says what DER (or other binary) data that is not a certificate looks like. */
static void
explain_not_der_cert(const unsigned char *data, size_t len, const char *what, char **cause)
{
    const unsigned char *p = data;
    unsigned long e;
    size_t head;
    long body = 0;
    int tag = 0, cls = 0, r, too_long;

    if (looks_like_pkcs12(data, len)) {
        err_set(cause, "%s: looks like a PKCS#12 file: use --pfx", what);
        return;
    }
    if (data[0] != 0x30) {
        err_set(cause, "%s is not PEM or DER certificate data", what);
        return;
    }
    r = ASN1_get_object(&p, &body, &tag, &cls, (long)len);
    e = ERR_peek_last_error();
    ERR_clear_error();
    head = (size_t)(p - data);
    too_long = ERR_GET_LIB(e) == ERR_LIB_ASN1 && ERR_GET_REASON(e) == ASN1_R_TOO_LONG;
    if ((r & 0x80) != 0 && too_long)
        err_set(cause, "%s: truncated DER certificate (%zu bytes of %zu)", what, len,
                head + (size_t)body);
    else if ((r & 0x80) != 0)
        err_set(cause, "%s is not PEM or DER certificate data", what);
    else if (head + (size_t)body < len)
        err_set(cause, "%s: DER data with %zu extra bytes after it is not a certificate", what,
                len - (head + (size_t)body));
    else
        err_set(cause, "%s holds DER data that is not an X.509 certificate", what);
}

int
pem_read_certs(const unsigned char *data, size_t len, const char *what, STACK_OF(X509) * *out,
               char **cause)
{
    STACK_OF(X509) *certs = NULL;
    X509 *x = NULL;
    int rc;

    *out = NULL;
    if (what == NULL)
        what = "input";
    if (data == NULL || len == 0) {
        err_set(cause, "%s is empty", what);
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (len > (size_t)PEM_INPUT_MAX) {
        err_set(cause, "%s is larger than %ld bytes", what, PEM_INPUT_MAX);
        rc = -E_TOO_BIG;
        goto out;
    }
    if ((certs = sk_X509_new_null()) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if (pem_has_text(data, len, "-----BEGIN ")) {
        /* PEM is text: a control byte anywhere means damage or smuggled data. */
        for (size_t i = 0; i < len; i++) {
            if ((data[i] < 0x20 && data[i] != '\t' && data[i] != '\r' && data[i] != '\n') ||
                data[i] == 0x7f) {
                err_set(cause, "%s: binary data in PEM text (byte 0x%02x at offset %zu)", what,
                        data[i], i);
                rc = -E_BAD_INPUT;
                goto out;
            }
        }
        rc = read_pem(data, len, what, certs, cause);
        goto out;
    }
    if (len >= 2 && data[0] == 0x30 && data[1] == 0x80) {
        err_set(cause, "%s: the certificate uses BER indefinite lengths, not DER", what);
        rc = -E_BAD_INPUT;
        goto out;
    }
    {
        const unsigned char *p = data;

        x = d2i_X509(NULL, &p, (long)len);
        ERR_clear_error();
        if (x == NULL || p != data + len) {
            explain_not_der_cert(data, len, what, cause);
            rc = -E_BAD_INPUT;
            goto out;
        }
    }
    if (sk_X509_push(certs, x) <= 0) {
        rc = -E_NOMEM;
        goto out;
    }
    x = NULL;
    rc = 0;
out:
    X509_free(x);
    if (rc == 0) {
        *out = certs;
        certs = NULL;
    }
    sk_X509_pop_free(certs, X509_free);
    ERR_clear_error();
    return rc;
}

/* Heap one-line RFC 2253 text of a name (UTF-8 kept as is), or NULL. */
static char *
name_text(const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *s = NULL, *p = NULL;
    long n;

    if (bio == NULL || name == NULL)
        goto out;
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
        goto out;
    n = BIO_get_mem_data(bio, &p);
    if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
        goto out;
    if (n > 0)
        memcpy(s, p, (size_t)n);
    s[n] = '\0';
out:
    BIO_free(bio);
    ERR_clear_error();
    return s;
}

/* The subject for a message: never NULL (static "?" is never returned to be freed). */
static char *
subject_of(X509 *x)
{
    char *s = name_text(X509_get_subject_name(x));

    return s != NULL ? s : strdup("?");
}

/* Does issuer's subject match subject's issuer (names, key identifiers, key usage)? */
static int
names_issuer(X509 *issuer, X509 *subject)
{
    int ok = X509_check_issued(issuer, subject) == X509_V_OK;

    ERR_clear_error();
    return ok;
}

/* Does the key of issuer verify the signature of subject? */
static int
signature_ok(X509 *subject, X509 *issuer)
{
    EVP_PKEY *pk = X509_get0_pubkey(issuer);
    int ok = pk != NULL && X509_verify(subject, pk) == 1;

    ERR_clear_error();
    return ok;
}

/* Self-signed: issuer name equals subject name and its own key verifies it. */
static int
is_self_signed(X509 *x)
{
    if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) != 0)
        return 0;
    return signature_ok(x, x);
}

/* Sets *cause to "chain does not link: <lead>'<subject of a>'<middle>'<subject of b>'<tail>". */
static void
link_error(char **cause, const char *lead, X509 *a, const char *middle, X509 *b, const char *tail)
{
    char *sa = subject_of(a), *sb = subject_of(b);

    err_set(cause, "chain does not link: %s'%s'%s'%s'%s", lead, sa != NULL ? sa : "?", middle,
            sb != NULL ? sb : "?", tail);
    free(sa);
    free(sb);
}

int
pem_order_chain(X509 *leaf, STACK_OF(X509) * chain, STACK_OF(X509) * *ordered, char **cause)
{
    STACK_OF(X509) *left = NULL, *out = NULL;
    X509 *cur = leaf, *bad_signer = NULL;
    int rc;

    *ordered = NULL;
    if (leaf == NULL) {
        err_set(cause, "no certificate to build a chain from");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((left = sk_X509_new_null()) == NULL || (out = sk_X509_new_null()) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    /* Keep one copy of each certificate that is not the leaf. */
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        int dup = X509_cmp(c, leaf) == 0;

        for (int j = 0; !dup && j < sk_X509_num(left); j++)
            dup = X509_cmp(c, sk_X509_value(left, j)) == 0;
        if (!dup && sk_X509_push(left, c) <= 0) {
            rc = -E_NOMEM;
            goto out;
        }
    }
    /* Walk up from the leaf, each time taking the issuer of the current certificate. */
    while (sk_X509_num(left) > 0 && !is_self_signed(cur)) {
        int found = -1;

        for (int j = 0; j < sk_X509_num(left) && found < 0; j++) {
            X509 *c = sk_X509_value(left, j);

            if (!names_issuer(c, cur))
                continue;
            if (signature_ok(cur, c))
                found = j;
            else if (bad_signer == NULL)
                bad_signer = c;
        }
        if (found < 0)
            break;
        bad_signer = NULL;
        cur = sk_X509_delete(left, found);
        if (!X509_up_ref(cur)) {
            rc = -E_INTERNAL;
            goto out;
        }
        if (sk_X509_push(out, cur) <= 0) {
            X509_free(cur);
            rc = -E_NOMEM;
            goto out;
        }
    }
    if (sk_X509_num(left) > 0) {
        if (bad_signer != NULL)
            link_error(cause, "the signature of ", cur, " does not verify with the key of ",
                       bad_signer, ", which it names as its issuer");
        else if (is_self_signed(cur) && cur != leaf)
            link_error(cause, "", sk_X509_value(left, 0),
                       " is left over above the self-signed root ", cur, "");
        else
            link_error(cause, "", sk_X509_value(left, 0), " did not issue ", cur, "");
        rc = -E_BAD_INPUT;
        goto out;
    }
    *ordered = out;
    out = NULL;
    rc = 0;
out:
    sk_X509_free(left);
    sk_X509_pop_free(out, X509_free);
    ERR_clear_error();
    return rc;
}

/* Copies the contents of a memory BIO into a NUL-terminated heap string. */
static int
bio_to_string(BIO *bio, char **out, size_t *len)
{
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);

    if (n < 0 || (*out = malloc((size_t)n + 1)) == NULL)
        return -E_NOMEM;
    if (n > 0)
        memcpy(*out, p, (size_t)n);
    (*out)[n] = '\0';
    *len = (size_t)n;
    return 0;
}

int
pem_write_certs(STACK_OF(X509) * certs, char **out, size_t *len, char **cause)
{
    BIO *bio = NULL;
    char why[160];
    int rc;

    *out = NULL;
    *len = 0;
    if ((bio = BIO_new(BIO_s_mem())) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    for (int i = 0; certs != NULL && i < sk_X509_num(certs); i++) {
        if (!PEM_write_bio_X509(bio, sk_X509_value(certs, i))) {
            err_set(cause, "cannot write certificate %d as PEM: %s", i + 1,
                    pem_ssl_reason(why, sizeof(why)));
            rc = -E_CRYPTO;
            goto out;
        }
    }
    rc = bio_to_string(bio, out, len);
out:
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

int
pem_write_cert(X509 *cert, char **out, size_t *len, char **cause)
{
    BIO *bio = NULL;
    char why[160];
    int rc;

    *out = NULL;
    *len = 0;
    if (cert == NULL) {
        err_set(cause, "no certificate to write");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((bio = BIO_new(BIO_s_mem())) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if (!PEM_write_bio_X509(bio, cert)) {
        err_set(cause, "cannot write the certificate as PEM: %s",
                pem_ssl_reason(why, sizeof(why)));
        rc = -E_CRYPTO;
        goto out;
    }
    rc = bio_to_string(bio, out, len);
out:
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

/* ASN1_TIME to Unix seconds; -1 when it does not parse. */
static int
asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm)) {
        ERR_clear_error();
        return -1;
    }
    *out = sys_timegm(&tm);
    return 0;
}

/* Appends a copy of s (n bytes) to a heap array of strings. */
static int
push_str(char ***arr, size_t *count, const char *s, size_t n)
{
    char **grown = realloc(*arr, (*count + 1) * sizeof(**arr));
    char *copy;

    if (grown == NULL)
        return -E_NOMEM;
    *arr = grown;
    if ((copy = malloc(n + 1)) == NULL)
        return -E_NOMEM;
    memcpy(copy, s, n);
    copy[n] = '\0';
    grown[(*count)++] = copy;
    return 0;
}

/* An iPAddress as OpenSSL prints it: dotted IPv4, eight upper-case IPv6 groups. */
static int
ip_text(const ASN1_OCTET_STRING *ip, char *buf, size_t len)
{
    const unsigned char *p = ASN1_STRING_get0_data(ip);
    int n = ASN1_STRING_length(ip);
    size_t used = 0;

    if (n == 4) {
        snprintf(buf, len, "%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
        return 0;
    }
    if (n != 16)
        return -1;
    for (int i = 0; i < 16; i += 2) {
        int w = snprintf(buf + used, len - used, "%s%X", i > 0 ? ":" : "",
                         (unsigned)((p[i] << 8) | p[i + 1]));

        if (w < 0 || (size_t)w >= len - used)
            return -1;
        used += (size_t)w;
    }
    return 0;
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
            const char *d = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
            int n = ASN1_STRING_length(g->d.dNSName);

            /* A name with an embedded NUL would print as a different name: skip it. */
            if (n > 0 && memchr(d, '\0', (size_t)n) == NULL)
                rc = push_str(&info->dns, &info->ndns, d, (size_t)n);
        } else if (g->type == GEN_IPADD) {
            char buf[48];

            if (ip_text(g->d.iPAddress, buf, sizeof(buf)) == 0)
                rc = push_str(&info->ips, &info->nips, buf, strlen(buf));
        }
    }
    GENERAL_NAMES_free(names);
    return rc;
}

/* Upper-case hex of p[0..n), bytes joined by sep (may be ""). */
static char *
hex_upper(const unsigned char *p, size_t n, const char *sep)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t slen = strlen(sep);
    char *s = malloc(n * (2 + slen) + 1), *w = s;

    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            memcpy(w, sep, slen);
            w += slen;
        }
        *w++ = digits[p[i] >> 4];
        *w++ = digits[p[i] & 0x0f];
    }
    *w = '\0';
    return s;
}

/* The serial number in upper-case hex without separators ("0" for zero). */
static char *
serial_text(X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = NULL, *s = NULL;

    if (bn != NULL && (hex = BN_bn2hex(bn)) != NULL)
        s = strdup(hex);
    OPENSSL_free(hex);
    BN_free(bn);
    ERR_clear_error();
    return s;
}

/* The CN of a name as UTF-8, "" when there is none. */
static char *
common_name(const X509_NAME *name)
{
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *utf8 = NULL;
    char *s = NULL;
    int n;

    if (i < 0) {
        s = strdup("");
        goto out;
    }
    n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n < 0 || memchr(utf8, '\0', (size_t)n) != NULL)
        s = strdup("");
    else if ((s = malloc((size_t)n + 1)) != NULL) {
        memcpy(s, utf8, (size_t)n);
        s[n] = '\0';
    }
out:
    OPENSSL_free(utf8);
    ERR_clear_error();
    return s;
}

/* NIST name of an EC group ("P-256") or its OpenSSL name. */
static void
curve_text(EVP_PKEY *pk, char *buf, size_t len)
{
    char group[64] = "";
    const char *nist = NULL;
    size_t glen = 0;
    int nid;

    buf[0] = '\0';
    if (!EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen))
        return;
    nid = OBJ_txt2nid(group);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(group);
    if (nid != NID_undef)
        nist = EC_curve_nid2nist(nid);
    snprintf(buf, len, "%s", nist != NULL ? nist : group);
}

static int
fill_key(X509 *cert, struct cert_info *info)
{
    EVP_PKEY *pk = X509_get0_pubkey(cert);
    const char *type = "unknown";
    char curve[64] = "";

    if (pk != NULL) {
        info->key_bits = EVP_PKEY_get_bits(pk);
        if (EVP_PKEY_is_a(pk, "RSA") || EVP_PKEY_is_a(pk, "RSA-PSS")) {
            type = "RSA";
        } else if (EVP_PKEY_is_a(pk, "EC")) {
            type = "EC";
            curve_text(pk, curve, sizeof(curve));
        } else if (EVP_PKEY_is_a(pk, "ED25519")) {
            type = "Ed25519";
        } else if (EVP_PKEY_is_a(pk, "ED448")) {
            type = "Ed448";
        } else if (EVP_PKEY_get0_type_name(pk) != NULL) {
            type = EVP_PKEY_get0_type_name(pk);
        }
    }
    ERR_clear_error();
    info->key_type = strdup(type);
    info->key_curve = strdup(curve);
    return info->key_type != NULL && info->key_curve != NULL ? 0 : -E_NOMEM;
}

int
pem_cert_info(X509 *cert, struct cert_info *info, char **cause)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char why[160];
    int rc, nid;

    memset(info, 0, sizeof(*info));
    if (cert == NULL) {
        err_set(cause, "no certificate to describe");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (asn1_time_unix(X509_get0_notBefore(cert), &info->not_before) != 0 ||
        asn1_time_unix(X509_get0_notAfter(cert), &info->not_after) != 0) {
        err_set(cause, "the certificate's validity dates cannot be read");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (!X509_digest(cert, EVP_sha256(), md, &mdlen)) {
        err_set(cause, "cannot compute the certificate's fingerprint: %s",
                pem_ssl_reason(why, sizeof(why)));
        rc = -E_CRYPTO;
        goto out;
    }
    rc = -E_NOMEM;
    if ((info->fingerprint = hex_upper(md, mdlen, ":")) == NULL ||
        (info->subject = name_text(X509_get_subject_name(cert))) == NULL ||
        (info->issuer = name_text(X509_get_issuer_name(cert))) == NULL ||
        (info->common_name = common_name(X509_get_subject_name(cert))) == NULL ||
        (info->serial = serial_text(cert)) == NULL)
        goto out;
    nid = X509_get_signature_nid(cert);
    if ((info->sig_alg = strdup(nid != NID_undef ? OBJ_nid2ln(nid) : "unknown")) == NULL)
        goto out;
    if ((rc = fill_sans(cert, info)) != 0 || (rc = fill_key(cert, info)) != 0)
        goto out;
    info->self_signed = is_self_signed(cert);
    info->is_ca = (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
    rc = 0;
out:
    ERR_clear_error();
    if (rc != 0)
        pem_cert_info_free(info);
    return rc;
}

void
pem_cert_info_free(struct cert_info *info)
{
    if (info == NULL)
        return;
    free(info->subject);
    free(info->common_name);
    free(info->issuer);
    free(info->serial);
    free(info->fingerprint);
    strv_free(info->dns, info->ndns);
    strv_free(info->ips, info->nips);
    free(info->key_type);
    free(info->key_curve);
    free(info->sig_alg);
    memset(info, 0, sizeof(*info));
}

int
pem_cert_validity(X509 *cert, int64_t now)
{
    int64_t not_before = 0, not_after = 0;

    /* Dates that do not parse make the certificate unusable: call it expired. */
    if (asn1_time_unix(X509_get0_notAfter(cert), &not_after) != 0 || not_after < now)
        return 1;
    if (asn1_time_unix(X509_get0_notBefore(cert), &not_before) != 0)
        return 1;
    if (not_before > now)
        return -1;
    return 0;
}

int64_t
pem_days_left(int64_t not_after, int64_t now)
{
    int64_t d = not_after - now;

    /* Rounded towards minus infinity, so a certificate expired a second ago has -1. */
    return d >= 0 ? d / 86400 : -((-d + 86399) / 86400);
}

int
pem_cert_ari_id(X509 *cert, char **out, char **cause)
{
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(cert);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
    unsigned char *der = NULL;
    const unsigned char *p;
    char *a = NULL, *b = NULL;
    long len = 0;
    int n, tag, cls, rc = -E_NOMEM;

    *out = NULL;
    if (aki == NULL || ASN1_STRING_length(aki) <= 0) {
        err_set(cause, "the certificate has no authority key identifier");
        return -E_BAD_INPUT;
    }
    /* The INTEGER's content octets: its DER encoding without tag and length. */
    if ((n = i2d_ASN1_INTEGER(serial, &der)) <= 0) {
        err_set(cause, "cannot encode the certificate's serial number");
        return -E_CRYPTO;
    }
    p = der;
    if ((ASN1_get_object(&p, &len, &tag, &cls, n) & 0x80) != 0 || tag != V_ASN1_INTEGER ||
        len <= 0 || p + len != der + n) {
        err_set(cause, "the certificate's serial number is not a DER INTEGER");
        rc = -E_CRYPTO;
        goto out;
    }
    if ((a = b64url_encode(ASN1_STRING_get0_data(aki), (size_t)ASN1_STRING_length(aki))) == NULL ||
        (b = b64url_encode(p, (size_t)len)) == NULL)
        goto out;
    if ((*out = malloc(strlen(a) + strlen(b) + 2)) == NULL)
        goto out;
    snprintf(*out, strlen(a) + strlen(b) + 2, "%s.%s", a, b);
    rc = 0;
out:
    OPENSSL_free(der);
    free(a);
    free(b);
    return rc;
}

/* At most this many subjectAltName entries (the ACME ops take at most 1000 names too). */
#define PEM_MAX_SANS 1000

/* The key's policy: RSA of 2048 bits or more, EC on a named P-256/P-384/P-521, EdDSA. */
static int
check_public_key(EVP_PKEY *pkey, char **cause)
{
    char enc[32] = "", group[64] = "";
    int bits;

    if (pkey == NULL) {
        err_set(cause, "the certificate's public key cannot be read");
        return -E_BAD_INPUT;
    }
    bits = EVP_PKEY_get_bits(pkey);
    if (EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_is_a(pkey, "RSA-PSS")) {
        /* 1024..2047 bits: weak, but certificates still in use are tracked (with a warning
         * at import and weak_key in the status report) so that their replacement is seen. */
        if (bits < 1024) {
            err_set(cause,
                    "the certificate's key is RSA %d: RSA keys under 1024 bits are "
                    "broken and refused",
                    bits);
            return -E_BAD_INPUT;
        }
        return 0;
    }
    if (EVP_PKEY_is_a(pkey, "DSA")) {
        err_set(cause, "the certificate's key is DSA %d: DSA keys are refused (use EC or RSA)",
                bits);
        return -E_BAD_INPUT;
    }
    if (EVP_PKEY_is_a(pkey, "EC")) {
        (void)EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc),
                                             NULL);
        if (strcmp(enc, OSSL_PKEY_EC_ENCODING_EXPLICIT) == 0) {
            err_set(cause, "the certificate's EC key has explicit curve parameters: only named "
                           "curves (P-256, P-384, P-521) are accepted");
            return -E_BAD_INPUT;
        }
        if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                            NULL) ||
            (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0 &&
             strcmp(group, "secp521r1") != 0 && strcmp(group, "P-256") != 0 &&
             strcmp(group, "P-384") != 0 && strcmp(group, "P-521") != 0)) {
            err_set(cause,
                    "the certificate's EC key uses the curve '%s': only P-256, P-384 "
                    "and P-521 are accepted",
                    group[0] != '\0' ? group : "unknown");
            return -E_BAD_INPUT;
        }
        return 0;
    }
    if (EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448"))
        return 0;
    err_set(cause, "the certificate's key type '%s' is not supported",
            EVP_PKEY_get0_type_name(pkey) != NULL ? EVP_PKEY_get0_type_name(pkey) : "?");
    return -E_BAD_INPUT;
}

int
pem_check_import(X509 *leaf, char **cause)
{
    const ASN1_INTEGER *serial = X509_get0_serialNumber(leaf);
    GENERAL_NAMES *sans;
    int nsans = 0, rc;

    if (serial == NULL || ASN1_STRING_length(serial) == 0) {
        err_set(cause, "the certificate has no serial number");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER) {
        err_set(cause, "the certificate's serial number is negative (RFC 5280 requires a "
                       "positive one)");
        rc = -E_BAD_INPUT;
        goto out;
    }
    sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    if (sans != NULL) {
        nsans = sk_GENERAL_NAME_num(sans);
        GENERAL_NAMES_free(sans);
    }
    if (nsans > PEM_MAX_SANS) {
        err_set(cause,
                "the certificate has %d subject alternative names; at most %d are "
                "accepted",
                nsans, PEM_MAX_SANS);
        rc = -E_BAD_INPUT;
        goto out;
    }
    rc = check_public_key(X509_get0_pubkey(leaf), cause);
out:
    ERR_clear_error();
    return rc;
}
