#include "record.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "etcd.h"

#define RECORD_FORMAT 1
#define NONCE_LEN 12
#define TAG_LEN 16
/* The largest private key PEM a record carries (RSA 4096 is about 3.3 KiB). */
#define RECORD_MAX_KEY (64 * 1024)

static int
aad_of(const char *fleet, const char *name, unsigned version, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s|%s|%u", fleet, name, version);

    return n > 0 && (size_t)n < size ? n : -1;
}

/* AES-256-GCM in (enc 1) or out (enc 0) of data; tag written or checked. */
static int
gcm(int enc, const unsigned char *key, const unsigned char *nonce, const char *aad, int aadlen,
    const unsigned char *in, int inlen, unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0, ok = 0;

    if (ctx != NULL && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
        EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) == 1 &&
        EVP_CipherUpdate(ctx, NULL, &n, (const unsigned char *)aad, aadlen) == 1 &&
        EVP_CipherUpdate(ctx, out, &n, in, inlen) == 1 &&
        (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1) &&
        EVP_CipherFinal_ex(ctx, out + n, &fin) == 1 &&
        (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1))
        ok = 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* The optional "acme" object (JSON text); 1 when added or when there is none. */
static int
add_acme(cJSON *o, const char *acme)
{
    cJSON *a;

    if (acme == NULL)
        return 1;
    if ((a = cJSON_Parse(acme)) == NULL || !cJSON_IsObject(a)) {
        cJSON_Delete(a);
        return 1; /* not an object: the record goes without it */
    }
    return cJSON_AddItemToObject(o, "acme", a) ? 1 : 0;
}

int
record_seal(const unsigned char key[FLEETKEY_LEN], const char *fleet, const char *name,
            const struct fleet_record *rec, char **out, char **cause)
{
    char aad[512];
    size_t klen = strlen(rec->key_pem);
    unsigned char *blob = NULL;
    cJSON *o = NULL;
    int aadlen, rc = -E_NOMEM;

    *out = NULL;
    if ((aadlen = aad_of(fleet, name, rec->version, aad, sizeof(aad))) < 0 ||
        klen > RECORD_MAX_KEY) {
        err_set(cause, "the record of '%s' cannot be made (name or key too long)", name);
        return -E_BAD_INPUT;
    }
    if ((blob = malloc(NONCE_LEN + klen + TAG_LEN)) == NULL)
        goto out;
    if (RAND_bytes(blob, NONCE_LEN) != 1 ||
        gcm(1, key, blob, aad, aadlen, (const unsigned char *)rec->key_pem, (int)klen,
            blob + NONCE_LEN, blob + NONCE_LEN + klen) != 0) {
        err_set(cause, "cannot encrypt the key of '%s' for the fleet", name);
        rc = -E_CRYPTO;
        goto out;
    }
    if ((o = cJSON_CreateObject()) == NULL ||
        cJSON_AddNumberToObject(o, "format", RECORD_FORMAT) == NULL ||
        cJSON_AddNumberToObject(o, "version", rec->version) == NULL ||
        cJSON_AddStringToObject(o, "serial", rec->serial ? rec->serial : "") == NULL ||
        cJSON_AddNumberToObject(o, "not_after", (double)rec->not_after) == NULL ||
        cJSON_AddStringToObject(o, "node", rec->node ? rec->node : "") == NULL ||
        cJSON_AddStringToObject(o, "fullchain", rec->fullchain) == NULL ||
        etcd_add_b64(o, "key", blob, NONCE_LEN + klen + TAG_LEN) != 0 || !add_acme(o, rec->acme) ||
        (*out = cJSON_PrintUnformatted(o)) == NULL)
        goto out;
    rc = 0;
out:
    if (blob != NULL) {
        OPENSSL_cleanse(blob, NONCE_LEN + klen + TAG_LEN);
        free(blob);
    }
    cJSON_Delete(o);
    return rc;
}

static int
dup_string(const cJSON *o, const char *name, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    if (!cJSON_IsString(v))
        return -E_BAD_INPUT;
    return (*out = strdup(v->valuestring)) != NULL ? 0 : -E_NOMEM;
}

int
record_open(const unsigned char key[FLEETKEY_LEN], const char *fleet, const char *name,
            const char *text, size_t len, struct fleet_record *rec, char **cause)
{
    cJSON *o = cJSON_ParseWithLength(text, len);
    const cJSON *fmt, *ver, *na, *k;
    unsigned char *blob = NULL;
    size_t blen = 0, klen;
    char aad[512];
    int aadlen, rc = -E_BAD_INPUT;

    memset(rec, 0, sizeof(*rec));
    fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
    ver = cJSON_GetObjectItemCaseSensitive(o, "version");
    na = cJSON_GetObjectItemCaseSensitive(o, "not_after");
    k = cJSON_GetObjectItemCaseSensitive(o, "key");
    if (!cJSON_IsObject(o) || !cJSON_IsNumber(fmt) || !cJSON_IsNumber(ver) ||
        !cJSON_IsNumber(na) || !cJSON_IsString(k) || ver->valuedouble < 1 ||
        ver->valuedouble > 4e9) {
        err_set(cause,
                "the fleet's record of '%s' is not a valid record (not JSON, cut short "
                "or missing fields)",
                name);
        goto out;
    }
    if (fmt->valuedouble != RECORD_FORMAT) {
        err_set(cause,
                "the fleet's record of '%s' has format %g; this agent reads format %d "
                "(upgrade it)",
                name, fmt->valuedouble, RECORD_FORMAT);
        goto out;
    }
    rec->version = (unsigned)ver->valuedouble;
    rec->not_after = (int64_t)na->valuedouble;
    if ((rc = dup_string(o, "serial", &rec->serial)) != 0 ||
        (rc = dup_string(o, "node", &rec->node)) != 0 ||
        (rc = dup_string(o, "fullchain", &rec->fullchain)) != 0) {
        err_set(cause, "the fleet's record of '%s' is not a valid record (missing fields)", name);
        goto out;
    }
    if ((rc = etcd_unb64(k->valuestring, &blob, &blen)) != 0 || blen < NONCE_LEN + TAG_LEN ||
        blen - NONCE_LEN - TAG_LEN > RECORD_MAX_KEY) {
        err_set(cause, "the fleet's record of '%s' carries no valid encrypted key", name);
        rc = rc == -E_NOMEM ? rc : -E_BAD_INPUT;
        goto out;
    }
    klen = blen - NONCE_LEN - TAG_LEN;
    if ((aadlen = aad_of(fleet, name, rec->version, aad, sizeof(aad))) < 0 ||
        (rec->key_pem = malloc(klen + 1)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if (gcm(0, key, blob, aad, aadlen, blob + NONCE_LEN, (int)klen, (unsigned char *)rec->key_pem,
            blob + NONCE_LEN + klen) != 0) {
        err_set(cause,
                "the fleet key does not open the record of '%s' version %u (another fleet key, "
                "or a record copied from another name or version)",
                name, rec->version);
        rc = -E_CRYPTO;
        OPENSSL_cleanse(rec->key_pem, klen);
        free(rec->key_pem);
        rec->key_pem = NULL;
        goto out;
    }
    rec->key_pem[klen] = '\0';
    if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "acme")) &&
        (rec->acme = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(o, "acme"))) ==
            NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    rc = 0;
out:
    if (blob != NULL) {
        OPENSSL_cleanse(blob, blen);
        free(blob);
    }
    cJSON_Delete(o);
    if (rc != 0)
        record_clear(rec);
    return rc;
}

void
record_clear(struct fleet_record *rec)
{
    if (rec == NULL)
        return;
    free(rec->serial);
    free(rec->node);
    free(rec->fullchain);
    free(rec->acme);
    if (rec->key_pem != NULL) {
        OPENSSL_cleanse(rec->key_pem, strlen(rec->key_pem));
        free(rec->key_pem);
    }
    memset(rec, 0, sizeof(*rec));
}

/* Serials compare without case, colons and leading zeros. */
int
record_same_serial(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return 0;
    while (*a == '0' || *a == ':')
        a++;
    while (*b == '0' || *b == ':')
        b++;
    while (*a != '\0' && *b != '\0') {
        if (*a == ':') {
            a++;
            continue;
        }
        if (*b == ':') {
            b++;
            continue;
        }
        if ((*a | 0x20) != (*b | 0x20))
            return 0;
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}
