#include "strv.h"
#include "trust.h"

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "err.h"
#include "fsutil.h"
#include "proto.h"
#include "sys.h"

/* Largest trust file read at start, and largest AIA reply. */
#define TRUST_MAX_FILE (256 * 1024)
#define CHAIN_MAX_DEPTH 10

static const char *
kind_dir(int intermediate)
{
    return intermediate ? "intermediates" : "roots";
}

int
trust_cert_id(X509 *cert, char *buf, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (len < 65 || X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32)
        return -E_CRYPTO;
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(buf + 2 * i, 3, "%02X", md[i]);
    return 0;
}

static void
entry_clear(struct trust_entry *e)
{
    X509_free(e->cert);
    pem_cert_info_free(&e->info);
    free(e->id);
    memset(e, 0, sizeof(*e));
}

int
trust_insert(struct trust *t, X509 *cert, int intermediate, char **cause)
{
    struct trust_entry e;
    char id[65];
    int rc;

    memset(&e, 0, sizeof(e));
    if (trust_cert_id(cert, id, sizeof(id)) != 0) {
        err_set(cause, "cannot compute a fingerprint");
        return -E_CRYPTO;
    }
    if (trust_index_of(t, id) >= 0)
        return -E_EXISTS;
    if ((rc = pem_cert_info(cert, &e.info, cause)) != 0)
        return rc;
    if ((e.id = strdup(id)) == NULL) {
        pem_cert_info_free(&e.info);
        return -E_NOMEM;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct trust_entry *nv = realloc(t->v, cap * sizeof(*nv));

        if (nv == NULL) {
            entry_clear(&e);
            return -E_NOMEM;
        }
        t->v = nv;
        t->cap = cap;
    }
    if (X509_up_ref(cert) != 1) {
        entry_clear(&e);
        return -E_CRYPTO;
    }
    e.cert = cert;
    e.intermediate = intermediate;
    t->v[t->n++] = e;
    t->generation++;
    return 0;
}

void
trust_delete(struct trust *t, size_t i)
{
    if (i >= t->n)
        return;
    entry_clear(&t->v[i]);
    memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(t->v[0]));
    t->n--;
    t->generation++;
}

long
trust_index_of(const struct trust *t, const char *id)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i].id, id) == 0)
            return (long)i;
    }
    return -1;
}

int
trust_find(const struct trust *t, const char *fingerprint, size_t *index, char **cause)
{
    char hex[65];
    size_t n = 0, matches = 0;

    for (const char *p = fingerprint; *p; p++) {
        char c = *p;

        if (c == ':')
            continue;
        if (c >= 'a' && c <= 'f')
            c = (char)(c - 'a' + 'A');
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')) || n == 64) {
            err_set(cause, "'%.80s' is not a SHA-256 fingerprint (hex digits, colons allowed)",
                    fingerprint);
            return -E_BAD_INPUT;
        }
        hex[n++] = c;
    }
    hex[n] = '\0';
    if (n < 8) {
        err_set(cause, "give at least 8 hex digits of the fingerprint ('certctl trust list' "
                       "shows them)");
        return -E_BAD_INPUT;
    }
    for (size_t i = 0; i < t->n; i++) {
        if (strncmp(t->v[i].id, hex, n) == 0) {
            *index = i;
            matches++;
        }
    }
    if (matches == 0) {
        err_set(cause, "no certificate with fingerprint %s in the trust store", fingerprint);
        return -E_NOT_FOUND;
    }
    if (matches > 1) {
        err_set(cause, "fingerprint %s matches %zu certificates: give more digits", fingerprint,
                matches);
        return -E_BAD_INPUT;
    }
    return 0;
}

/* Reads every *.pem of one kind's directory (at start, before the loop runs). */
static int
load_kind(struct trust *t, int intermediate, char **cause)
{
    char *dir = fsutil_join(t->dir, kind_dir(intermediate));
    uv_fs_t req;
    uv_dirent_t ent;
    int rc, n;

    if (dir == NULL)
        return -E_NOMEM;
    if ((rc = fsutil_mkdir_p(dir, 0755, cause)) != 0) {
        free(dir);
        return rc;
    }
    if ((n = uv_fs_scandir(NULL, &req, dir, 0, NULL)) < 0) {
        err_set(cause, "cannot read %s: %s", dir, uv_strerror(n));
        free(dir);
        return -E_IO;
    }
    rc = 0;
    while (rc == 0 && uv_fs_scandir_next(&req, &ent) == 0) {
        size_t len = strlen(ent.name);
        unsigned char *data = NULL;
        size_t dlen = 0;
        STACK_OF(X509) *certs = NULL;
        char *path;

        if (len != 68 || strcmp(ent.name + 64, ".pem") != 0)
            continue; /* temp files of an interrupted write, and anything else */
        if ((path = fsutil_join(dir, ent.name)) == NULL) {
            rc = -E_NOMEM;
            break;
        }
        rc = fsutil_read_file(path, TRUST_MAX_FILE, &data, &dlen, cause);
        if (rc == 0 && (rc = pem_read_certs(data, dlen, path, &certs, cause)) == 0) {
            rc = trust_insert(t, sk_X509_value(certs, 0), intermediate, cause);
            if (rc == -E_EXISTS)
                rc = 0;
        }
        sk_X509_pop_free(certs, X509_free);
        free(data);
        free(path);
    }
    uv_fs_req_cleanup(&req);
    free(dir);
    return rc;
}

int
trust_open(const char *state_dir, struct trust **out, char **cause)
{
    struct trust *t = calloc(1, sizeof(*t));
    int rc;

    *out = NULL;
    if (t == NULL)
        return -E_NOMEM;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(t);
        err_set(cause, "cannot initialise libcurl");
        return -E_INTERNAL;
    }
    if ((t->dir = fsutil_join(state_dir, "trust")) == NULL) {
        rc = -E_NOMEM;
        goto fail;
    }
    if ((rc = load_kind(t, 0, cause)) != 0 || (rc = load_kind(t, 1, cause)) != 0)
        goto fail;
    *out = t;
    return 0;
fail:
    trust_close(t);
    return rc;
}

void
trust_close(struct trust *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        entry_clear(&t->v[i]);
    free(t->v);
    free(t->dir);
    free(t->system_result);
    free(t);
    curl_global_cleanup();
}

/* Files (pool threads). */

static char *
entry_path(const char *dir, const char *id, int intermediate)
{
    char name[80], *sub, *path;

    snprintf(name, sizeof(name), "%s.pem", id);
    if ((sub = fsutil_join(dir, kind_dir(intermediate))) == NULL)
        return NULL;
    path = fsutil_join(sub, name);
    free(sub);
    return path;
}

/* The file name of an anchor in the system directory. */
static void
system_name(const char *id, char *name, size_t len)
{
    snprintf(name, len, "certagent-%.16s.crt", id);
}

/*
 * Opens trust_system_dir without following a link and checks it and its
 * parents (fsutil_dir_open); it is never created.
 */
static int
system_dir_open(const char *sysdir, struct fsutil_dir **dir, char **cause)
{
    char *why = NULL;
    int rc;

    if ((rc = fsutil_dir_open(sysdir, 0, 0755, dir, &why)) != 0)
        err_set(cause, "trust_system_dir %s: %s", sysdir, why != NULL ? why : err_message(rc));
    free(why);
    return rc;
}

static int
write_pem(const char *path, X509 *cert, char **cause)
{
    char *pem = NULL;
    size_t len = 0;
    int rc;

    if ((rc = pem_write_cert(cert, &pem, &len, cause)) != 0)
        return rc;
    rc = fsutil_write_atomic(path, pem, len, 0644, cause);
    free(pem);
    return rc;
}

int
trust_file_write(const char *dir, X509 *cert, const char *id, int intermediate, char **cause)
{
    char *path = entry_path(dir, id, intermediate);
    int rc;

    if (path == NULL)
        return -E_NOMEM;
    rc = write_pem(path, cert, cause);
    free(path);
    return rc;
}

int
trust_file_remove(const char *dir, const char *id, int intermediate, char **cause)
{
    char *path = entry_path(dir, id, intermediate);
    char *sub = fsutil_join(dir, kind_dir(intermediate));
    int rc = -E_NOMEM;

    if (path != NULL && sub != NULL && (rc = fsutil_remove_tree(path, cause)) == 0)
        rc = fsutil_fsync_dir(sub, cause);
    free(path);
    free(sub);
    return rc;
}

int
trust_system_write(const char *sysdir, X509 *cert, const char *id, char **cause)
{
    struct fsutil_dir *dir = NULL;
    char name[80], *pem = NULL;
    size_t len = 0;
    int rc;

    system_name(id, name, sizeof(name));
    if ((rc = system_dir_open(sysdir, &dir, cause)) != 0)
        goto out;
    if ((rc = pem_write_cert(cert, &pem, &len, cause)) != 0)
        goto out;
    rc = fsutil_dir_write(dir, name, pem, len, 0644, cause);
out:
    free(pem);
    fsutil_dir_free(dir);
    return rc;
}

int
trust_system_remove(const char *sysdir, const char *id, char **cause)
{
    struct fsutil_dir *dir = NULL;
    char name[80];
    int rc;

    system_name(id, name, sizeof(name));
    rc = system_dir_open(sysdir, &dir, cause);
    if (rc == -E_NOT_FOUND) {
        rc = 0; /* no directory, nothing to remove */
        if (cause != NULL) {
            free(*cause);
            *cause = NULL;
        }
    } else if (rc == 0) {
        rc = fsutil_dir_remove(dir, name, cause);
    }
    fsutil_dir_free(dir);
    return rc;
}

/* The verification context. */

static STACK_OF(X509) * stack_of(const struct trust *t, int intermediate)
{
    STACK_OF(X509) *sk = sk_X509_new_null();

    if (sk == NULL)
        return NULL;
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i].intermediate != intermediate)
            continue;
        if (X509_up_ref(t->v[i].cert) != 1 || sk_X509_push(sk, t->v[i].cert) <= 0) {
            sk_X509_pop_free(sk, X509_free);
            return NULL;
        }
    }
    return sk;
}

struct trust_ctx *
trust_ctx_new(const struct trust *t, int system_roots)
{
    struct trust_ctx *ctx = calloc(1, sizeof(*ctx));

    if (ctx == NULL)
        return NULL;
    ctx->system_roots = system_roots;
    ctx->own_anchors = stack_of(t, 0);
    ctx->intermediates = stack_of(t, 1);
    if (ctx->own_anchors == NULL || ctx->intermediates == NULL) {
        trust_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

int
trust_ctx_load(struct trust_ctx *ctx, char **cause)
{
    char reason[256];

    if ((ctx->store = X509_STORE_new()) == NULL)
        return -E_NOMEM;
    for (int i = 0; i < sk_X509_num(ctx->own_anchors); i++) {
        if (X509_STORE_add_cert(ctx->store, sk_X509_value(ctx->own_anchors, i)) != 1) {
            err_set(cause, "cannot build the trust store: %s",
                    pem_ssl_reason(reason, sizeof(reason)));
            return -E_CRYPTO;
        }
    }
    if (ctx->system_roots) {
        const char *file = getenv(X509_get_default_cert_file_env());

        if (file == NULL || file[0] == '\0')
            file = X509_get_default_cert_file();
        /* A machine without a bundle simply has no system roots. */
        if (fsutil_exists(file) && X509_STORE_load_file(ctx->store, file) != 1) {
            err_set(cause, "cannot read the system CA bundle %s: %s", file,
                    pem_ssl_reason(reason, sizeof(reason)));
            return -E_CRYPTO;
        }
        ERR_clear_error();
    }
    if ((ctx->anchors = X509_STORE_get1_all_certs(ctx->store)) == NULL)
        return -E_NOMEM;
    return 0;
}

void
trust_ctx_free(struct trust_ctx *ctx)
{
    if (ctx == NULL)
        return;
    X509_STORE_free(ctx->store);
    sk_X509_pop_free(ctx->anchors, X509_free);
    sk_X509_pop_free(ctx->own_anchors, X509_free);
    sk_X509_pop_free(ctx->intermediates, X509_free);
    free(ctx);
}

/* Certificates from an AIA reply: DER certificate, PKCS#7 (DER or PEM) or PEM. */
static int
parse_aia(const unsigned char *data, size_t len, STACK_OF(X509) * *out, char **cause)
{
    const unsigned char *p = data;
    PKCS7 *p7;

    *out = NULL;
    if ((p7 = d2i_PKCS7(NULL, &p, (long)len)) == NULL) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);

        if (bio != NULL)
            p7 = PEM_read_bio_PKCS7(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    ERR_clear_error();
    if (p7 != NULL) {
        STACK_OF(X509) *certs = NULL, *copy;

        if (OBJ_obj2nid(p7->type) == NID_pkcs7_signed && p7->d.sign != NULL)
            certs = p7->d.sign->cert;
        if (certs == NULL || sk_X509_num(certs) == 0) {
            PKCS7_free(p7);
            err_set(cause, "the PKCS#7 reply holds no certificate");
            return -E_BAD_INPUT;
        }
        copy = X509_chain_up_ref(certs);
        PKCS7_free(p7);
        if (copy == NULL)
            return -E_NOMEM;
        *out = copy;
        return 0;
    }
    return pem_read_certs(data, len, "AIA reply", out, cause);
}

void
trust_fetched_clear(struct trust_fetched *f)
{
    free(f->url);
    free(f->data);
    free(f->error);
    memset(f, 0, sizeof(*f));
}

/* The first caIssuers URL of cert, or NULL (heap). */
static char *
ca_issuers_url(X509 *cert)
{
    AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(cert, NID_info_access, NULL, NULL);
    char *url = NULL;

    for (int i = 0; aia != NULL && i < sk_ACCESS_DESCRIPTION_num(aia) && url == NULL; i++) {
        ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);

        if (OBJ_obj2nid(ad->method) == NID_ad_ca_issuers && ad->location->type == GEN_URI) {
            const ASN1_IA5STRING *s = ad->location->d.uniformResourceIdentifier;
            int n = ASN1_STRING_length(s);

            if (n > 0 && n < 2048 && (url = malloc((size_t)n + 1)) != NULL) {
                memcpy(url, ASN1_STRING_get0_data(s), (size_t)n);
                url[n] = '\0';
                if (strlen(url) != (size_t)n) { /* an embedded NUL */
                    free(url);
                    url = NULL;
                }
            }
        }
    }
    AUTHORITY_INFO_ACCESS_free(aia);
    ERR_clear_error();
    return url;
}

/* Chain building. */

static int add_problem(struct trust_report *r, const char *fmt, ...) ERR_PRINTF(2, 3);

/* Adds a problem sentence (cut at 767 bytes): 0 or -E_NOMEM. */
static int
add_problem(struct trust_report *r, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = strv_vaddf(&r->problems, &r->nproblems, 767, fmt, ap);
    va_end(ap);
    return rc;
}

static int
add_link(struct trust_report *r, X509 *cert, const char *source, char **cause)
{
    struct trust_link *nv = realloc(r->links, (r->nlinks + 1) * sizeof(*nv));
    struct trust_link *l;
    int rc;

    if (nv == NULL)
        return -E_NOMEM;
    r->links = nv;
    l = &r->links[r->nlinks];
    memset(l, 0, sizeof(*l));
    if ((rc = pem_cert_info(cert, &l->info, cause)) != 0)
        return rc;
    if ((l->source = strdup(source)) == NULL) {
        pem_cert_info_free(&l->info);
        return -E_NOMEM;
    }
    r->nlinks++;
    return 0;
}

static int
in_stack(STACK_OF(X509) * sk, X509 *c)
{
    for (int i = 0; sk != NULL && i < sk_X509_num(sk); i++) {
        if (X509_cmp(sk_X509_value(sk, i), c) == 0)
            return 1;
    }
    return 0;
}

/*
 * The best issuer of c in sk: a candidate whose name and key identifiers
 * match and whose key verifies c's signature; a currently valid one wins.
 */
static X509 *
find_issuer(STACK_OF(X509) * sk, X509 *c, int64_t now, int *verified)
{
    X509 *best = NULL;

    *verified = 0;
    for (int i = 0; sk != NULL && i < sk_X509_num(sk); i++) {
        X509 *cand = sk_X509_value(sk, i);
        EVP_PKEY *pub;

        if (X509_cmp(cand, c) == 0 || X509_check_issued(cand, c) != X509_V_OK)
            continue;
        if ((pub = X509_get0_pubkey(cand)) == NULL || X509_verify(c, pub) != 1) {
            ERR_clear_error();
            if (best == NULL)
                best = cand; /* a name match is still the best explanation */
            continue;
        }
        *verified = 1;
        if (pem_cert_validity(cand, now) == 0)
            return cand;
        best = cand;
    }
    ERR_clear_error();
    return best;
}

static const char *
name_of(const struct cert_info *info)
{
    return info->common_name[0] != '\0' ? info->common_name : info->subject;
}

static void
date_of(int64_t t, char *buf, size_t len)
{
    struct tm tm;

    if (sys_gmtime(t, &tm) != 0 || strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
}

/* Is the signature algorithm or the key of link i weak?  Words in buf. */
static int
weak_algorithm(X509 *cert, int self_signed, char *buf, size_t len)
{
    int nid = X509_get_signature_nid(cert), md = NID_undef, pk = NID_undef;
    EVP_PKEY *pub = X509_get0_pubkey(cert);

    if (!self_signed && OBJ_find_sigid_algs(nid, &md, &pk) == 1 &&
        (md == NID_md5 || md == NID_sha1 || md == NID_md4 || md == NID_md2)) {
        snprintf(buf, len, "signed with %s, a weak algorithm", OBJ_nid2sn(nid));
        return 1;
    }
    if (pub != NULL) {
        int bits = EVP_PKEY_get_bits(pub);

        if ((EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA && bits < 2048) ||
            (EVP_PKEY_get_base_id(pub) == EVP_PKEY_DSA) ||
            (EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC && bits < 224)) {
            snprintf(buf, len, "has a weak %s key of %d bits",
                     OBJ_nid2sn(EVP_PKEY_get_base_id(pub)), bits);
            return 1;
        }
    }
    ERR_clear_error();
    return 0;
}

static int set_link_problem(struct trust_report *r, size_t i, const char *fmt, ...)
    ERR_PRINTF(3, 4);

static int
set_link_problem(struct trust_report *r, size_t i, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (r->links[i].problem == NULL && (r->links[i].problem = strdup(buf)) == NULL)
        return -E_NOMEM;
    return add_problem(r, "'%s' %s", name_of(&r->links[i].info), buf);
}

/* Checks dates, CA flags and algorithms of every link found. */
static int
check_links(struct trust_report *r, X509 **certs, int64_t now)
{
    char date[48], weak[160];
    int rc = 0;

    for (size_t i = 0; i < r->nlinks && rc == 0; i++) {
        const struct cert_info *info = &r->links[i].info;
        int validity = pem_cert_validity(certs[i], now);

        if (validity > 0) {
            date_of(info->not_after, date, sizeof(date));
            rc = set_link_problem(r, i, "expired on %s", date);
        } else if (validity < 0) {
            date_of(info->not_before, date, sizeof(date));
            rc = set_link_problem(r, i, "is not yet valid (valid from %s)", date);
        }
        if (rc == 0 && i > 0 && !info->is_ca)
            rc = set_link_problem(r, i,
                                  "is not a CA (no basicConstraints CA:TRUE) but issued "
                                  "'%s'",
                                  name_of(&r->links[i - 1].info));
        if (rc == 0 && weak_algorithm(certs[i], info->self_signed, weak, sizeof(weak)))
            rc = set_link_problem(r, i, "%s", weak);
    }
    return rc;
}

/* CN of cert's issuer (or the whole issuer name) into buf. */
static void
issuer_cn(X509 *cert, char *buf, size_t len)
{
    X509_NAME *in = X509_get_issuer_name(cert);
    int idx = X509_NAME_get_index_by_NID(in, NID_commonName, -1);
    X509_NAME_ENTRY *ne = idx >= 0 ? X509_NAME_get_entry(in, idx) : NULL;
    unsigned char *utf8 = NULL;
    int n = ne != NULL ? ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(ne)) : -1;

    if (n > 0)
        snprintf(buf, len, "%.*s", n, utf8);
    else
        X509_NAME_oneline(in, buf, (int)len);
    OPENSSL_free(utf8);
    ERR_clear_error();
}

/* Is url an http:// URL (the only scheme fetched)? */
static int
is_http_url(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0;
}

/* The replies of o->fetched as certificates (fsk[k]), or why one cannot be read (ferr[k]). */
static int
parse_fetched(const struct trust_verify_opts *o, STACK_OF(X509) * *fsk, char **ferr)
{
    for (size_t k = 0; k < o->nfetched && k < TRUST_AIA_MAX_FETCHES; k++) {
        const struct trust_fetched *f = &o->fetched[k];

        if (f->error != NULL || f->data == NULL)
            continue;
        if (parse_aia(f->data, f->len, &fsk[k], &ferr[k]) != 0 && ferr[k] == NULL &&
            (ferr[k] = strdup("the reply holds no certificate")) == NULL)
            return -E_NOMEM;
    }
    return 0;
}

/*
 * cur's issuer is nowhere.  With fetching allowed and its http:// AIA
 * caIssuers URL not fetched yet, r->fetch_url asks the caller for it;
 * otherwise the missing link is recorded in r with the reason.
 */
static int
missing_issuer(struct trust_report *r, X509 *cur, const struct trust_verify_opts *o,
               char *const *ferr)
{
    const struct cert_info *ci = &r->links[r->nlinks - 1].info;
    char issuer_name[256], *url = ca_issuers_url(cur);
    long k = -1;
    int rc;

    for (size_t i = 0; url != NULL && i < o->nfetched && k < 0; i++) {
        if (o->fetched[i].url != NULL && strcmp(o->fetched[i].url, url) == 0)
            k = (long)i;
    }
    if (url != NULL && o->fetch && k < 0 && is_http_url(url) &&
        o->nfetched < TRUST_AIA_MAX_FETCHES) {
        r->fetch_url = url;
        return 0;
    }
    issuer_cn(cur, issuer_name, sizeof(issuer_name));
    if ((r->missing = strdup(issuer_name)) == NULL)
        rc = -E_NOMEM;
    else if (url == NULL)
        rc = add_problem(r,
                         "chain incomplete: missing %s (issuer of '%s'; the certificate "
                         "names no AIA caIssuers URL)",
                         issuer_name, name_of(ci));
    else if (!o->fetch)
        rc = add_problem(r,
                         "chain incomplete: missing %s (issuer of '%s'; its AIA caIssuers "
                         "URL is %s)",
                         issuer_name, name_of(ci), url);
    else if (!is_http_url(url))
        rc = add_problem(r,
                         "chain incomplete: missing %s (issuer of '%s'; its AIA caIssuers "
                         "URL %s is not fetched: only http:// URLs are)",
                         issuer_name, name_of(ci), url);
    else if (k < 0)
        rc = add_problem(r,
                         "chain incomplete: missing %s (issuer of '%s'; %s is not fetched: "
                         "at most %d fetches per verification)",
                         issuer_name, name_of(ci), url, TRUST_AIA_MAX_FETCHES);
    else
        rc = add_problem(r,
                         "chain incomplete: missing %s (issuer of '%s'; fetching %s failed: "
                         "%s)",
                         issuer_name, name_of(ci), url,
                         o->fetched[k].error != NULL ? o->fetched[k].error
                         : ferr[k] != NULL           ? ferr[k]
                                                     : "it holds no issuer of this certificate");
    free(url);
    return rc;
}

/* OpenSSL's own verdict with the same certificates, host and purpose. */
static int
openssl_verdict(struct trust_ctx *ctx, X509 *leaf, STACK_OF(X509) * pool,
                const struct trust_verify_opts *o, int *ok, char *why, size_t whylen)
{
    X509_STORE_CTX *sctx = X509_STORE_CTX_new();
    X509_VERIFY_PARAM *param;
    int rc = -E_NOMEM;

    *ok = 0;
    if (sctx == NULL || X509_STORE_CTX_init(sctx, ctx->store, leaf, pool) != 1)
        goto out;
    param = X509_STORE_CTX_get0_param(sctx);
    X509_VERIFY_PARAM_set_time(param, (time_t)o->now);
    X509_VERIFY_PARAM_set_purpose(param, o->purpose == TRUST_PURPOSE_CLIENT
                                             ? X509_PURPOSE_SSL_CLIENT
                                             : X509_PURPOSE_SSL_SERVER);
    *ok = X509_verify_cert(sctx) == 1;
    if (!*ok) {
        int err = X509_STORE_CTX_get_error(sctx);
        X509 *at = X509_STORE_CTX_get_current_cert(sctx);
        char subject[256] = "";

        if (at != NULL)
            X509_NAME_oneline(X509_get_subject_name(at), subject, sizeof(subject));
        snprintf(why, whylen, "%s%s%s", X509_verify_cert_error_string(err),
                 subject[0] ? " at " : "", subject);
    }
    rc = 0;
out:
    X509_STORE_CTX_free(sctx);
    ERR_clear_error();
    return rc;
}

int
trust_verify(struct trust_ctx *ctx, X509 *leaf, STACK_OF(X509) * given,
             const struct trust_verify_opts *o, struct trust_report *r, char **cause)
{
    STACK_OF(X509) *pool = sk_X509_new_null();
    X509 *certs[CHAIN_MAX_DEPTH + 1], *cur = leaf;
    const char *sources[3] = {o->given_source != NULL ? o->given_source : "given", "trust store",
                              "fetched"};
    STACK_OF(X509) * fsk[TRUST_AIA_MAX_FETCHES] = {NULL};
    char *ferr[TRUST_AIA_MAX_FETCHES] = {NULL};
    char why[512], fetched_src[600];
    int verified = 0, ok = 0, rc = -E_NOMEM;

    memset(r, 0, sizeof(*r));
    r->host_match = -1;
    if (pool == NULL)
        goto out;
    if ((rc = parse_fetched(o, fsk, ferr)) != 0)
        goto out;
    rc = -E_NOMEM;
    /* The pool: what came with the leaf, then the agent's intermediates. */
    for (int i = 0; given != NULL && i < sk_X509_num(given); i++) {
        if (X509_cmp(sk_X509_value(given, i), leaf) != 0 &&
            !X509_add_cert(pool, sk_X509_value(given, i), X509_ADD_FLAG_UP_REF))
            goto out;
    }
    for (int i = 0; i < sk_X509_num(ctx->intermediates); i++) {
        if (!X509_add_cert(pool, sk_X509_value(ctx->intermediates, i),
                           X509_ADD_FLAG_UP_REF | X509_ADD_FLAG_NO_DUP))
            goto out;
    }
    /* Then what was fetched for this verification. */
    for (size_t k = 0; k < TRUST_AIA_MAX_FETCHES; k++) {
        for (int i = 0; fsk[k] != NULL && i < sk_X509_num(fsk[k]); i++) {
            if (!X509_add_cert(pool, sk_X509_value(fsk[k], i),
                               X509_ADD_FLAG_UP_REF | X509_ADD_FLAG_NO_DUP))
                goto out;
        }
    }
    if ((rc = add_link(r, leaf, "leaf", cause)) != 0)
        goto out;
    certs[0] = leaf;
    while (r->nlinks <= CHAIN_MAX_DEPTH) {
        const struct cert_info *ci = &r->links[r->nlinks - 1].info;
        X509 *issuer;
        const char *source;

        if (in_stack(ctx->anchors, cur)) {
            free(r->links[r->nlinks - 1].source);
            r->links[r->nlinks - 1].source = strdup(
                in_stack(ctx->own_anchors, cur) ? "trust store (anchor)" : "system (anchor)");
            r->complete = 1;
            break;
        }
        if (ci->self_signed && r->nlinks == 1) {
            /* trust add takes a self-signed leaf as an anchor for itself. */
            rc = add_problem(r,
                             "'%s' is self-signed and not trusted: to trust it, add it with "
                             "'certctl trust add FILE' (FILE: this certificate, PEM or DER)",
                             name_of(ci));
            if (rc != 0)
                goto out;
            break;
        }
        if (ci->self_signed) {
            rc = add_problem(r,
                             "the chain ends at '%s', a root that is not trusted (add it "
                             "with 'certctl trust add FILE')",
                             name_of(ci));
            if (rc != 0)
                goto out;
            break;
        }
        if ((issuer = find_issuer(ctx->anchors, cur, o->now, &verified)) != NULL) {
            source =
                in_stack(ctx->own_anchors, issuer) ? "trust store (anchor)" : "system (anchor)";
        } else if ((issuer = find_issuer(pool, cur, o->now, &verified)) != NULL) {
            int own = in_stack(ctx->intermediates, issuer);
            int was_given = in_stack(given, issuer);

            source = was_given ? sources[0] : own ? sources[1] : sources[2];
            for (size_t k = 0; !was_given && !own && k < o->nfetched; k++) {
                if (k < TRUST_AIA_MAX_FETCHES && in_stack(fsk[k], issuer)) {
                    snprintf(fetched_src, sizeof(fetched_src), "fetched from %s",
                             o->fetched[k].url);
                    source = fetched_src;
                    break;
                }
            }
        } else {
            if ((rc = missing_issuer(r, cur, o, ferr)) != 0)
                goto out;
            if (r->fetch_url != NULL) /* the caller fetches it and asks again */
                goto out;
            break;
        }
        if (!verified) {
            if ((rc = add_problem(r,
                                  "the signature of '%s' does not verify with the key of "
                                  "'%s'",
                                  name_of(ci), ci->issuer)) != 0)
                goto out;
        }
        if ((rc = add_link(r, issuer, source, cause)) != 0)
            goto out;
        certs[r->nlinks - 1] = issuer;
        cur = issuer;
    }
    if (!r->complete && r->nproblems == 0 && r->nlinks > CHAIN_MAX_DEPTH &&
        (rc = add_problem(r,
                          "the chain is longer than %d certificates (a loop of "
                          "cross-signed certificates?)",
                          CHAIN_MAX_DEPTH)) != 0)
        goto out;
    if ((rc = check_links(r, certs, o->now)) != 0)
        goto out;
    {
        int purpose_ok = X509_check_purpose(
            leaf,
            o->purpose == TRUST_PURPOSE_CLIENT ? X509_PURPOSE_SSL_CLIENT : X509_PURPOSE_SSL_SERVER,
            0);

        ERR_clear_error();
        if (purpose_ok != 1 &&
            (rc = add_problem(r,
                              "'%s' may not be used as a TLS %s (extendedKeyUsage or "
                              "keyUsage)",
                              name_of(&r->links[0].info),
                              o->purpose == TRUST_PURPOSE_CLIENT ? "client" : "server")) != 0)
            goto out;
    }
    if (o->host != NULL && o->host[0] != '\0') {
        int m = X509_check_ip_asc(leaf, o->host, 0);

        if (m < 0) /* not an IP address */
            m = X509_check_host(leaf, o->host, strlen(o->host), 0, NULL);
        ERR_clear_error();
        r->host_match = m == 1;
        if (m != 1 && (rc = add_problem(r, "'%s' is not valid for the host name %s",
                                        name_of(&r->links[0].info), o->host)) != 0)
            goto out;
    }
    if ((rc = openssl_verdict(ctx, leaf, pool, o, &ok, why, sizeof(why))) != 0)
        goto out;
    if (!ok && r->nproblems == 0 && (rc = add_problem(r, "OpenSSL: %s", why)) != 0)
        goto out;
    r->trusted = ok && r->complete && r->nproblems == 0;
    rc = 0;
out:
    for (size_t k = 0; k < TRUST_AIA_MAX_FETCHES; k++) {
        sk_X509_pop_free(fsk[k], X509_free);
        free(ferr[k]);
    }
    sk_X509_pop_free(pool, X509_free);
    if (rc != 0 && cause != NULL && *cause == NULL)
        err_set(cause, "%s", err_message(rc));
    return rc;
}

void
trust_report_free(struct trust_report *r)
{
    for (size_t i = 0; i < r->nlinks; i++) {
        pem_cert_info_free(&r->links[i].info);
        free(r->links[i].source);
        free(r->links[i].problem);
    }
    free(r->links);
    strv_free(r->problems, r->nproblems);
    free(r->missing);
    free(r->fetch_url);
    memset(r, 0, sizeof(*r));
}

void
trust_pack_report(msgpack_packer *pk, const struct trust_report *r)
{
    msgpack_pack_map(pk, 6);
    proto_pack_kv_bool(pk, "trusted", r->trusted);
    proto_pack_kv_bool(pk, "complete", r->complete);
    if (r->host_match < 0)
        proto_pack_kv_nil(pk, "host_match");
    else
        proto_pack_kv_bool(pk, "host_match", r->host_match);
    if (r->missing != NULL)
        proto_pack_kv_str(pk, "missing", r->missing);
    else
        proto_pack_kv_nil(pk, "missing");
    proto_pack_str(pk, "problems");
    proto_pack_str_array(pk, r->problems, r->nproblems);
    proto_pack_str(pk, "chain");
    msgpack_pack_array(pk, r->nlinks);
    for (size_t i = 0; i < r->nlinks; i++) {
        const struct trust_link *l = &r->links[i];

        msgpack_pack_map(pk, 10);
        proto_pack_kv_str(pk, "subject", l->info.subject);
        proto_pack_kv_str(pk, "issuer", l->info.issuer);
        proto_pack_kv_str(pk, "fingerprint", l->info.fingerprint);
        proto_pack_kv_int(pk, "not_before", l->info.not_before);
        proto_pack_kv_int(pk, "not_after", l->info.not_after);
        proto_pack_kv_str(pk, "signature", l->info.sig_alg);
        proto_pack_kv_bool(pk, "ca", l->info.is_ca);
        proto_pack_kv_str(pk, "source", l->source != NULL ? l->source : "");
        proto_pack_kv_bool(pk, "ok", l->problem == NULL);
        if (l->problem != NULL)
            proto_pack_kv_str(pk, "problem", l->problem);
        else
            proto_pack_kv_nil(pk, "problem");
    }
}
