/*
 * store-check STORE FRIENDLY-NAME: prints the thumbprint of every certificate
 * in LocalMachine\STORE with that friendly name, and exits 0 when there is
 * exactly one.
 * store-check --has STORE THUMBPRINT: exits 0 when LocalMachine\STORE holds
 * the certificate of that SHA-1 thumbprint, 1 when it does not.
 * Used by packaging/windows/test.sh.
 */
#include <stdio.h>
#include <string.h>
#include <windows.h>
#include <wincrypt.h>

static int
has_thumbprint(const char *name, const char *hex)
{
    HCERTSTORE store;
    PCCERT_CONTEXT c;
    BYTE hash[20];
    CRYPT_HASH_BLOB blob = {sizeof(hash), hash};

    for (int i = 0; i < 20; i++) {
        unsigned v;

        if (strlen(hex) != 40 || sscanf(hex + 2 * i, "%2x", &v) != 1) {
            fprintf(stderr, "store-check: '%s' is not a thumbprint\n", hex);
            return 2;
        }
        hash[i] = (BYTE)v;
    }
    store = CertOpenStore(CERT_STORE_PROV_SYSTEM_A, 0, 0,
                          CERT_SYSTEM_STORE_LOCAL_MACHINE | CERT_STORE_READONLY_FLAG, name);
    if (store == NULL) {
        fprintf(stderr, "store-check: cannot open LocalMachine\\%s\n", name);
        return 2;
    }
    c = CertFindCertificateInStore(store, X509_ASN_ENCODING, 0, CERT_FIND_SHA1_HASH, &blob, NULL);
    printf("LocalMachine\\%s %s %s\n", name, c != NULL ? "has" : "lacks", hex);
    if (c != NULL)
        CertFreeCertificateContext(c);
    CertCloseStore(store, 0);
    return c != NULL ? 0 : 1;
}

int
main(int argc, char **argv)
{
    HCERTSTORE store;
    PCCERT_CONTEXT c = NULL;
    WCHAR want[128], seen[128];
    int found = 0;

    if (argc == 4 && strcmp(argv[1], "--has") == 0)
        return has_thumbprint(argv[2], argv[3]);
    if (argc != 3) {
        fprintf(stderr, "usage: store-check STORE FRIENDLY-NAME | --has STORE THUMBPRINT\n");
        return 2;
    }
    MultiByteToWideChar(CP_UTF8, 0, argv[2], -1, want, 128);
    store = CertOpenStore(CERT_STORE_PROV_SYSTEM_A, 0, 0,
                          CERT_SYSTEM_STORE_LOCAL_MACHINE | CERT_STORE_READONLY_FLAG, argv[1]);
    if (store == NULL) {
        fprintf(stderr, "store-check: cannot open LocalMachine\\%s\n", argv[1]);
        return 1;
    }
    while ((c = CertEnumCertificatesInStore(store, c)) != NULL) {
        DWORD len = sizeof(seen);
        BYTE hash[20];
        DWORD hlen = sizeof(hash);

        if (!CertGetCertificateContextProperty(c, CERT_FRIENDLY_NAME_PROP_ID, seen, &len) ||
            wcscmp(seen, want) != 0)
            continue;
        found++;
        if (CertGetCertificateContextProperty(c, CERT_SHA1_HASH_PROP_ID, hash, &hlen)) {
            for (DWORD i = 0; i < hlen; i++)
                printf("%02X", hash[i]);
            printf("\n");
        }
    }
    CertCloseStore(store, 0);
    printf("%d certificate(s) named '%s' in LocalMachine\\%s\n", found, argv[2], argv[1]);
    return found == 1 ? 0 : 1;
}
