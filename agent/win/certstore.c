/*
 * The Windows certificate store as a deploy target: each new version, with
 * its private key (not exportable), goes to LocalMachine\STORE under the
 * friendly name "certagent NAME"; the versions it replaces leave; its
 * intermediates go to LocalMachine\CA.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <wincrypt.h>

#include "err.h"
#include "platform.h"

static int
crypt_fail(char **cause, const char *what)
{
    err_set(cause, "%s (error 0x%08lx)", what, (unsigned long)GetLastError());
    return -E_IO;
}

/* Opens (creating it when a fresh machine lacks it) a LocalMachine store. */
static HCERTSTORE
open_machine_store(const char *name)
{
    return CertOpenStore(CERT_STORE_PROV_SYSTEM_A, 0, 0, CERT_SYSTEM_STORE_LOCAL_MACHINE, name);
}

static int
has_key(PCCERT_CONTEXT c)
{
    DWORD len = 0;

    return CertGetCertificateContextProperty(c, CERT_KEY_PROV_INFO_PROP_ID, NULL, &len) ||
           CertGetCertificateContextProperty(c, CERT_NCRYPT_KEY_HANDLE_PROP_ID, NULL, &len);
}

/* Friendly name of c into buf (UTF-16), or "" */
static void
friendly_of(PCCERT_CONTEXT c, WCHAR *buf, DWORD size)
{
    DWORD len = size;

    if (!CertGetCertificateContextProperty(c, CERT_FRIENDLY_NAME_PROP_ID, buf, &len))
        buf[0] = 0;
}

int
platform_certstore_deploy(const char *store, const char *friendly_name,
                          const unsigned char *pfx, size_t pfx_len, char **thumbprint,
                          char **cause)
{
    CRYPT_DATA_BLOB blob = {(DWORD)pfx_len, (BYTE *)pfx};
    CRYPT_DATA_BLOB name_blob;
    HCERTSTORE bag = NULL, target = NULL, ca = NULL;
    PCCERT_CONTEXT c = NULL, leaf = NULL, added = NULL;
    WCHAR wname[128], seen[128];
    BYTE hash[20];
    DWORD hlen = sizeof(hash);
    int rc = 0;

    *thumbprint = NULL;
    if (MultiByteToWideChar(CP_UTF8, 0, friendly_name, -1, wname, 128) == 0)
        return -E_BAD_INPUT;
    /* Not exportable: no CRYPT_EXPORTABLE.  The key goes to the machine's key set. */
    if ((bag = PFXImportCertStore(&blob, L"", CRYPT_MACHINE_KEYSET)) == NULL)
        return crypt_fail(cause, "the PFX was refused by the certificate store");
    while ((c = CertEnumCertificatesInStore(bag, c)) != NULL) {
        if (leaf == NULL && has_key(c))
            leaf = CertDuplicateCertificateContext(c);
    }
    if (leaf == NULL) {
        err_set(cause, "no certificate with a private key in the PFX");
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((target = open_machine_store(store)) == NULL) {
        rc = crypt_fail(cause, "cannot open the machine certificate store");
        goto out;
    }
    name_blob.cbData = (DWORD)((wcslen(wname) + 1) * sizeof(WCHAR));
    name_blob.pbData = (BYTE *)wname;
    /* The name goes on the stored context, where the store keeps it. */
    if (!CertAddCertificateContextToStore(target, leaf, CERT_STORE_ADD_REPLACE_EXISTING,
                                          &added) ||
        !CertSetCertificateContextProperty(added, CERT_FRIENDLY_NAME_PROP_ID, 0, &name_blob)) {
        rc = crypt_fail(cause, "cannot add the certificate to the store");
        goto out;
    }
    if (!CertGetCertificateContextProperty(added, CERT_SHA1_HASH_PROP_ID, hash, &hlen)) {
        rc = crypt_fail(cause, "cannot read the certificate's thumbprint");
        goto out;
    }
    /*
     * The versions this one replaces: same friendly name, other thumbprint.
     * Collected first, deleted after the enumeration (deleting while
     * enumerating is not safe everywhere).
     */
    {
        PCCERT_CONTEXT stale[16];
        int nstale = 0;

        c = NULL;
        while (nstale < 16 && (c = CertEnumCertificatesInStore(target, c)) != NULL) {
            BYTE other[20];
            DWORD olen = sizeof(other);

            friendly_of(c, seen, sizeof(seen));
            if (wcscmp(seen, wname) != 0 ||
                !CertGetCertificateContextProperty(c, CERT_SHA1_HASH_PROP_ID, other, &olen) ||
                memcmp(other, hash, sizeof(hash)) == 0)
                continue;
            stale[nstale++] = CertDuplicateCertificateContext(c);
        }
        if (c != NULL)
            CertFreeCertificateContext(c);
        for (int i = 0; i < nstale; i++)
            CertDeleteCertificateFromStore(stale[i]); /* frees it */
    }
    /* Intermediates: CA certificates of the PFX that are not self-signed. */
    if ((ca = open_machine_store("CA")) != NULL) {
        c = NULL;
        while ((c = CertEnumCertificatesInStore(bag, c)) != NULL) {
            if (CertCompareCertificate(X509_ASN_ENCODING, c->pCertInfo, leaf->pCertInfo) ||
                CertCompareCertificateName(X509_ASN_ENCODING, &c->pCertInfo->Subject,
                                           &c->pCertInfo->Issuer))
                continue;
            CertAddCertificateContextToStore(ca, c, CERT_STORE_ADD_USE_EXISTING, NULL);
        }
    }
    if ((*thumbprint = malloc(41)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    for (int i = 0; i < 20; i++)
        snprintf(*thumbprint + 2 * i, 3, "%02X", hash[i]);
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
