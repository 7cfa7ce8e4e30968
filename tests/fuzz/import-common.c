#include "import-common.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>

#include "keys.h"
#include "pem.h"

void
fuzz_import_check(struct key *key, X509 *leaf, STACK_OF(X509) * chain)
{
    struct cert_info info;
    STACK_OF(X509) *ordered = NULL;
    char *cause = NULL, *text = NULL, *desc;
    size_t len;

    if (leaf != NULL && pem_cert_info(leaf, &info, &cause) == 0) {
        (void)pem_cert_validity(leaf, info.not_before);
        (void)pem_days_left(info.not_after, info.not_before);
        pem_cert_info_free(&info);
    }
    free(cause);
    cause = NULL;
    if (key != NULL && leaf != NULL)
        (void)keys_match_cert(key, leaf, &cause);
    free(cause);
    cause = NULL;
    if (key != NULL && (desc = keys_describe(key)) != NULL)
        free(desc);
    if (leaf != NULL && pem_order_chain(leaf, chain, &ordered, &cause) == 0) {
        if (pem_write_certs(ordered, &text, &len, &cause) == 0)
            free(text);
        sk_X509_pop_free(ordered, X509_free);
    }
    free(cause);
    ERR_clear_error();
}

void
fuzz_import_pem_der(const uint8_t *data, size_t size)
{
    STACK_OF(X509) *certs = NULL;
    struct key *key = NULL;
    X509 *leaf = NULL;
    char *cause = NULL;

    if (pem_read_certs(data, size, "certificate file", &certs, &cause) == 0) {
        leaf = sk_X509_shift(certs);
    }
    free(cause);
    cause = NULL;
    /* No password, then a fixed one when the key turned out to be encrypted. */
    if (keys_parse(data, size, NULL, &key, &cause) != 0 && cause != NULL &&
        strstr(cause, "encrypted") != NULL) {
        free(cause);
        cause = NULL;
        (void)keys_parse(data, size, "fuzz-password", &key, &cause);
    }
    free(cause);
    fuzz_import_check(key, leaf, certs);
    keys_free(key);
    X509_free(leaf);
    sk_X509_pop_free(certs, X509_free);
    ERR_clear_error();
}
