/*
 * The Windows certificate store (platform.h): the deploy target that puts
 * each new version, with its private key, into LocalMachine\STORE under the
 * friendly name "certagent NAME" and its intermediates into LocalMachine\CA;
 * reading a certificate and its exportable key back for an import; and the
 * trust store's mirror in LocalMachine\Root and LocalMachine\CA.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <wincrypt.h>

#include "err.h"
#include "platform.h"

#define THUMB_LEN 20

int
platform_certstore_available(void)
{
    return 1;
}

/* The words of a crypt32 failure: what (printf), the system's text and code. */
static int crypt_fail(char **cause, int rc, const char *fmt, ...) ERR_PRINTF(3, 4);

static int
crypt_fail(char **cause, int rc, const char *fmt, ...)
{
    DWORD e = GetLastError();
    char what[256], text[256] = "";
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, e, 0, text,
                   sizeof(text), NULL);
    for (size_t n = strlen(text); n > 0 && (text[n - 1] == '\r' || text[n - 1] == '\n' ||
                                            text[n - 1] == '.' || text[n - 1] == ' ');
         n--)
        text[n - 1] = '\0';
    if (e == ERROR_SUCCESS) /* Wine leaves some refusals without a code */
        err_set(cause, "%s (no error code from the system)", what);
    else if (text[0] != '\0')
        err_set(cause, "%s: %s (error 0x%08lx)", what, text, (unsigned long)e);
    else
        err_set(cause, "%s (error 0x%08lx)", what, (unsigned long)e);
    return rc;
}

/* Opens (creating it when a fresh machine lacks it) a LocalMachine store. */
static HCERTSTORE
open_machine_store(const char *name, DWORD flags)
{
    return CertOpenStore(CERT_STORE_PROV_SYSTEM_A, 0, 0, CERT_SYSTEM_STORE_LOCAL_MACHINE | flags,
                         name);
}

/*
 * The registry part of a LocalMachine store, where certificates added
 * through the system store live.  Removals go through it: Windows deletes
 * either way, while Wine 8 forgets a removal made through the system store
 * (a collection) once the store is reopened.
 */
static HCERTSTORE
open_machine_registry(const char *name)
{
    return CertOpenStore(CERT_STORE_PROV_SYSTEM_REGISTRY_A, 0, 0,
                         CERT_SYSTEM_STORE_LOCAL_MACHINE | CERT_STORE_OPEN_EXISTING_FLAG, name);
}

static int
has_key(PCCERT_CONTEXT c)
{
    DWORD len = 0;

    return CertGetCertificateContextProperty(c, CERT_KEY_PROV_INFO_PROP_ID, NULL, &len) ||
           CertGetCertificateContextProperty(c, CERT_NCRYPT_KEY_HANDLE_PROP_ID, NULL, &len) ||
           CertGetCertificateContextProperty(c, CERT_KEY_CONTEXT_PROP_ID, NULL, &len);
}

/* Friendly name of c into buf (UTF-16), or "" */
static void
friendly_of(PCCERT_CONTEXT c, WCHAR *buf, DWORD size)
{
    DWORD len = size;

    if (!CertGetCertificateContextProperty(c, CERT_FRIENDLY_NAME_PROP_ID, buf, &len))
        buf[0] = 0;
}

/* 40 hex digits (spaces and colons between them allowed, as Windows shows them) to bytes. */
static int
parse_thumbprint(const char *text, BYTE out[THUMB_LEN])
{
    size_t n = 0;

    for (const char *p = text; *p != '\0'; p++) {
        int v;

        if (*p == ' ' || *p == ':')
            continue;
        if (*p >= '0' && *p <= '9')
            v = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            v = *p - 'A' + 10;
        else
            return -1;
        if (n >= 2 * THUMB_LEN)
            return -1;
        if (n % 2 == 0)
            out[n / 2] = (BYTE)(v << 4);
        else
            out[n / 2] |= (BYTE)v;
        n++;
    }
    return n == 2 * THUMB_LEN ? 0 : -1;
}

static void
format_thumbprint(const BYTE hash[THUMB_LEN], char out[2 * THUMB_LEN + 1])
{
    for (int i = 0; i < THUMB_LEN; i++)
        snprintf(out + 2 * i, 3, "%02X", hash[i]);
}

static PCCERT_CONTEXT
find_by_thumbprint(HCERTSTORE store, const BYTE hash[THUMB_LEN])
{
    CRYPT_HASH_BLOB blob = {THUMB_LEN, (BYTE *)hash};

    return CertFindCertificateInStore(store, X509_ASN_ENCODING | PKCS_7_ASN_ENCODING, 0,
                                      CERT_FIND_SHA1_HASH, &blob, NULL);
}

/*
 * Removes what the new version (thumbprint hash, friendly name wname)
 * replaces: the previous thumbprint when one is recorded, else every other
 * certificate of the same friendly name (collected first, deleted after the
 * enumeration: deleting while enumerating is not safe everywhere).
 */
static void
remove_replaced(const char *store, const char *previous, const BYTE hash[THUMB_LEN],
                const WCHAR *wname)
{
    PCCERT_CONTEXT stale[16], c = NULL;
    HCERTSTORE target;
    WCHAR seen[128];
    BYTE prev[THUMB_LEN];
    int nstale = 0;

    if (previous != NULL &&
        (parse_thumbprint(previous, prev) != 0 || memcmp(prev, hash, THUMB_LEN) == 0))
        return;
    if ((target = open_machine_registry(store)) == NULL)
        return;
    if (previous != NULL) {
        if ((c = find_by_thumbprint(target, prev)) != NULL)
            CertDeleteCertificateFromStore(c); /* frees it */
        CertCloseStore(target, 0);
        return;
    }
    while (nstale < 16 && (c = CertEnumCertificatesInStore(target, c)) != NULL) {
        BYTE other[THUMB_LEN];
        DWORD olen = sizeof(other);

        friendly_of(c, seen, sizeof(seen));
        if (wcscmp(seen, wname) != 0 ||
            !CertGetCertificateContextProperty(c, CERT_SHA1_HASH_PROP_ID, other, &olen) ||
            memcmp(other, hash, THUMB_LEN) == 0)
            continue;
        stale[nstale++] = CertDuplicateCertificateContext(c);
    }
    if (c != NULL)
        CertFreeCertificateContext(c);
    for (int i = 0; i < nstale; i++)
        CertDeleteCertificateFromStore(stale[i]);
    CertCloseStore(target, 0);
}

/*
 * The key of a certificate imported with CRYPT_MACHINE_KEYSET lives in the
 * machine's key set: say so in its provider info, so that whoever opens it
 * later looks there, under the key's own spec (Windows does both itself;
 * Wine 8 leaves the flag out and records the provider's specs, 3).
 */
static void
mark_machine_key(PCCERT_CONTEXT c)
{
    CRYPT_KEY_PROV_INFO *info;
    DWORD len = 0;

    if (!CertGetCertificateContextProperty(c, CERT_KEY_PROV_INFO_PROP_ID, NULL, &len) ||
        (info = malloc(len)) == NULL)
        return;
    if (CertGetCertificateContextProperty(c, CERT_KEY_PROV_INFO_PROP_ID, info, &len) &&
        info->dwProvType != 0 &&
        (!(info->dwFlags & CRYPT_MACHINE_KEYSET) ||
         info->dwKeySpec == (AT_KEYEXCHANGE | AT_SIGNATURE))) {
        info->dwFlags |= CRYPT_MACHINE_KEYSET;
        if (info->dwKeySpec == (AT_KEYEXCHANGE | AT_SIGNATURE))
            info->dwKeySpec = AT_KEYEXCHANGE; /* what a PFX import makes */
        CertSetCertificateContextProperty(c, CERT_KEY_PROV_INFO_PROP_ID, 0, info);
    }
    free(info);
}

/*
 * The CryptoAPI key of c, through its provider info (machine key set first):
 * what CryptAcquireCertificatePrivateKey does, for a provider info that lacks
 * the machine flag.  0 when there is none.
 */
static HCRYPTPROV
acquire_capi_key(PCCERT_CONTEXT c, DWORD *spec)
{
    CRYPT_KEY_PROV_INFO *info;
    HCRYPTPROV prov = 0;
    DWORD len = 0;

    if (!CertGetCertificateContextProperty(c, CERT_KEY_PROV_INFO_PROP_ID, NULL, &len) ||
        (info = malloc(len)) == NULL)
        return 0;
    if (CertGetCertificateContextProperty(c, CERT_KEY_PROV_INFO_PROP_ID, info, &len) &&
        info->dwProvType != 0) {
        DWORD flags = (info->dwFlags & CRYPT_MACHINE_KEYSET) | CRYPT_SILENT;

        if (!CryptAcquireContextW(&prov, info->pwszContainerName, info->pwszProvName,
                                  info->dwProvType, flags | CRYPT_MACHINE_KEYSET) &&
            !CryptAcquireContextW(&prov, info->pwszContainerName, info->pwszProvName,
                                  info->dwProvType, flags))
            prov = 0;
        *spec = info->dwKeySpec;
    }
    free(info);
    return prov;
}

/*
 * Does c issue another certificate of the bag?  Then it is not the leaf, even
 * with a key link (Wine 8 links the PFX's key to every certificate in it).
 */
static int
issued_another(HCERTSTORE bag, PCCERT_CONTEXT c)
{
    PCCERT_CONTEXT d = NULL;

    while ((d = CertEnumCertificatesInStore(bag, d)) != NULL) {
        if (!CertCompareCertificate(X509_ASN_ENCODING, d->pCertInfo, c->pCertInfo) &&
            CertCompareCertificateName(X509_ASN_ENCODING, &d->pCertInfo->Issuer,
                                       &c->pCertInfo->Subject)) {
            CertFreeCertificateContext(d);
            return 1;
        }
    }
    return 0;
}

int
platform_certstore_deploy(const struct certstore_put *put, const unsigned char *pfx,
                          size_t pfx_len, char **thumbprint, char **cause)
{
    CRYPT_DATA_BLOB blob = {(DWORD)pfx_len, (BYTE *)pfx};
    CRYPT_DATA_BLOB name_blob;
    HCERTSTORE bag = NULL, target = NULL, ca = NULL;
    PCCERT_CONTEXT c = NULL, leaf = NULL, added = NULL;
    WCHAR wname[128];
    BYTE hash[THUMB_LEN];
    DWORD hlen = sizeof(hash), flags = CRYPT_MACHINE_KEYSET;
    char thumb[2 * THUMB_LEN + 1];
    int rc = 0;

    *thumbprint = NULL;
    if (MultiByteToWideChar(CP_UTF8, 0, put->friendly_name, -1, wname, 128) == 0) {
        err_set(cause, "the friendly name '%s' is too long", put->friendly_name);
        return -E_BAD_INPUT;
    }
    /* The key goes to the machine's key set, exportable only when asked. */
    if (put->exportable)
        flags |= CRYPT_EXPORTABLE;
    if ((bag = PFXImportCertStore(&blob, L"", flags)) == NULL)
        return crypt_fail(cause, -E_IO, "the certificate store refused the PFX");
    while ((c = CertEnumCertificatesInStore(bag, c)) != NULL) {
        if (leaf == NULL && has_key(c) && !issued_another(bag, c))
            leaf = CertDuplicateCertificateContext(c);
    }
    if (leaf == NULL) {
        err_set(cause, "no certificate with a private key in the PFX");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((target = open_machine_store(put->store, 0)) == NULL) {
        rc = crypt_fail(cause, -E_IO, "cannot open LocalMachine\\%s", put->store);
        goto out;
    }
    name_blob.cbData = (DWORD)((wcslen(wname) + 1) * sizeof(WCHAR));
    name_blob.pbData = (BYTE *)wname;
    /* The name goes on the stored context, where the store keeps it. */
    if (!CertAddCertificateContextToStore(target, leaf, CERT_STORE_ADD_REPLACE_EXISTING, &added) ||
        !CertSetCertificateContextProperty(added, CERT_FRIENDLY_NAME_PROP_ID, 0, &name_blob)) {
        rc =
            crypt_fail(cause, -E_IO, "cannot add the certificate to LocalMachine\\%s", put->store);
        goto out;
    }
    if (!CertGetCertificateContextProperty(added, CERT_SHA1_HASH_PROP_ID, hash, &hlen)) {
        rc = crypt_fail(cause, -E_IO, "cannot read the certificate's thumbprint");
        goto out;
    }
    mark_machine_key(added);
    /*
     * The new one is in: the one it replaces may go, once this handle is
     * closed (Wine writes back what an open handle holds when it closes).
     */
    CertFreeCertificateContext(added);
    added = NULL;
    CertCloseStore(target, 0);
    target = NULL;
    if (!put->keep_previous)
        remove_replaced(put->store, put->previous, hash, wname);
    /* Intermediates: CA certificates of the PFX that are not self-signed. */
    if ((ca = open_machine_store("CA", 0)) != NULL) {
        c = NULL;
        while ((c = CertEnumCertificatesInStore(bag, c)) != NULL) {
            if (CertCompareCertificate(X509_ASN_ENCODING, c->pCertInfo, leaf->pCertInfo) ||
                CertCompareCertificateName(X509_ASN_ENCODING, &c->pCertInfo->Subject,
                                           &c->pCertInfo->Issuer))
                continue;
            CertAddCertificateContextToStore(ca, c, CERT_STORE_ADD_USE_EXISTING, NULL);
        }
    }
    format_thumbprint(hash, thumb);
    if ((*thumbprint = strdup(thumb)) == NULL)
        rc = -E_NOMEM;
out:
    if (added != NULL)
        CertFreeCertificateContext(added);
    if (leaf != NULL)
        CertFreeCertificateContext(leaf);
    if (ca != NULL)
        CertCloseStore(ca, 0);
    if (target != NULL)
        CertCloseStore(target, 0);
    if (bag != NULL)
        CertCloseStore(bag, 0);
    return rc;
}

static unsigned char *
copy_bytes(const void *data, size_t len)
{
    unsigned char *p = malloc(len > 0 ? len : 1);

    if (p != NULL && len > 0)
        memcpy(p, data, len);
    return p;
}

/* The certificate alone in a PKCS#12 with its key (empty password); 0 or -1. */
static int
export_pfx(PCCERT_CONTEXT c, struct certstore_item *out)
{
    HCERTSTORE mem = CertOpenStore(CERT_STORE_PROV_MEMORY, 0, 0, 0, NULL);
    CRYPT_DATA_BLOB blob = {0, NULL};
    DWORD flags =
        EXPORT_PRIVATE_KEYS | REPORT_NO_PRIVATE_KEY | REPORT_NOT_ABLE_TO_EXPORT_PRIVATE_KEY;
    int rc = -1;

    if (mem == NULL || !CertAddCertificateContextToStore(mem, c, CERT_STORE_ADD_ALWAYS, NULL))
        goto out;
    if (!PFXExportCertStoreEx(mem, &blob, L"", NULL, flags) || blob.cbData == 0)
        goto out;
    if ((blob.pbData = malloc(blob.cbData)) == NULL)
        goto out;
    if (!PFXExportCertStoreEx(mem, &blob, L"", NULL, flags)) {
        SecureZeroMemory(blob.pbData, blob.cbData);
        free(blob.pbData);
        goto out;
    }
    out->pfx = blob.pbData;
    out->pfx_len = blob.cbData;
    rc = 0;
out:
    if (mem != NULL)
        CertCloseStore(mem, 0);
    return rc;
}

int
platform_certstore_read(const char *store, const char *thumbprint, struct certstore_item *out,
                        char **cause)
{
    HCERTSTORE s = NULL;
    PCCERT_CONTEXT c = NULL;
    HCRYPTPROV_OR_NCRYPT_KEY_HANDLE prov = 0;
    HCRYPTKEY key = 0;
    DWORD spec = 0, len = 0;
    BOOL free_prov = FALSE;
    BYTE hash[THUMB_LEN];
    char thumb[2 * THUMB_LEN + 1];
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (parse_thumbprint(thumbprint, hash) != 0) {
        err_set(cause, "'%s' is not a certificate thumbprint (40 hexadecimal digits)", thumbprint);
        return -E_BAD_INPUT;
    }
    format_thumbprint(hash, thumb);
    if ((s = open_machine_store(store,
                                CERT_STORE_OPEN_EXISTING_FLAG | CERT_STORE_READONLY_FLAG)) == NULL)
        return crypt_fail(cause, -E_NOT_FOUND, "cannot open LocalMachine\\%s", store);
    if ((c = find_by_thumbprint(s, hash)) == NULL) {
        err_set(cause, "no certificate with thumbprint %s in LocalMachine\\%s", thumb, store);
        rc = -E_NOT_FOUND;
        goto out;
    }
    if (!has_key(c)) {
        err_set(cause, "the certificate %s in LocalMachine\\%s has no private key", thumb, store);
        rc = -E_DENIED;
        goto out;
    }
    /*
     * A CryptoAPI key (RSA, as PFXImportCertStore keeps them) is exported as
     * a PRIVATEKEYBLOB; any other (CNG) key through a PKCS#12.  Wine 8 has the
     * first only.
     */
    if (!CryptAcquireCertificatePrivateKey(c, CRYPT_ACQUIRE_SILENT_FLAG, NULL, &prov, &spec,
                                           &free_prov) &&
        (prov = acquire_capi_key(c, &spec)) != 0)
        free_prov = TRUE;
    if (prov != 0 && spec != CERT_NCRYPT_KEY_SPEC &&
        (CryptGetUserKey(prov, spec, &key) || CryptGetUserKey(prov, AT_KEYEXCHANGE, &key) ||
         CryptGetUserKey(prov, AT_SIGNATURE, &key))) {
        if (!CryptExportKey(key, 0, PRIVATEKEYBLOB, 0, NULL, &len) || len == 0) {
            err_set(cause,
                    "the private key of the certificate %s in LocalMachine\\%s is not "
                    "exportable (it was imported without the exportable flag)",
                    thumb, store);
            rc = -E_DENIED;
            goto out;
        }
        if ((out->key = malloc(len)) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
        if (!CryptExportKey(key, 0, PRIVATEKEYBLOB, 0, out->key, &len)) {
            rc = crypt_fail(cause, -E_DENIED,
                            "cannot export the private key of the certificate in "
                            "LocalMachine\\%s",
                            store);
            goto out;
        }
        out->key_len = len;
        if ((out->cert = copy_bytes(c->pbCertEncoded, c->cbCertEncoded)) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
        out->cert_len = c->cbCertEncoded;
    } else if (export_pfx(c, out) != 0) {
        err_set(cause,
                "the private key of the certificate %s in LocalMachine\\%s cannot be "
                "exported (error 0x%08lx): it is not exportable, or not reachable",
                thumb, store, (unsigned long)GetLastError());
        rc = -E_DENIED;
        goto out;
    }
out:
    if (rc != 0) {
        if (out->key != NULL) {
            SecureZeroMemory(out->key, out->key_len > 0 ? out->key_len : len);
            free(out->key);
        }
        free(out->cert);
        memset(out, 0, sizeof(*out));
    }
    if (key != 0)
        CryptDestroyKey(key);
    if (prov != 0 && free_prov && spec != CERT_NCRYPT_KEY_SPEC)
        CryptReleaseContext(prov, 0);
    if (c != NULL)
        CertFreeCertificateContext(c);
    if (s != NULL)
        CertCloseStore(s, 0);
    return rc;
}

int
platform_certstore_add_cert(const char *store, const unsigned char *der, size_t len, char **cause)
{
    HCERTSTORE s = open_machine_store(store, 0);
    int rc = 0;

    if (s == NULL)
        return crypt_fail(cause, -E_IO, "cannot open LocalMachine\\%s", store);
    if (!CertAddEncodedCertificateToStore(s, X509_ASN_ENCODING, der, (DWORD)len,
                                          CERT_STORE_ADD_USE_EXISTING, NULL))
        rc = crypt_fail(cause, -E_IO, "cannot add the certificate to LocalMachine\\%s", store);
    CertCloseStore(s, 0);
    return rc;
}

int
platform_certstore_remove_cert(const char *store, const unsigned char *der, size_t len,
                               char **cause)
{
    PCCERT_CONTEXT want, found;
    HCERTSTORE s;
    int rc = 0;

    if ((want = CertCreateCertificateContext(X509_ASN_ENCODING, der, (DWORD)len)) == NULL)
        return crypt_fail(cause, -E_BAD_INPUT, "not a certificate");
    if ((s = open_machine_registry(store)) == NULL) {
        CertFreeCertificateContext(want);
        return 0; /* no such store: nothing to remove */
    }
    found = CertFindCertificateInStore(s, X509_ASN_ENCODING, 0, CERT_FIND_EXISTING, want, NULL);
    if (found != NULL && !CertDeleteCertificateFromStore(found))
        rc =
            crypt_fail(cause, -E_IO, "cannot remove the certificate from LocalMachine\\%s", store);
    CertFreeCertificateContext(want);
    CertCloseStore(s, 0);
    return rc;
}
