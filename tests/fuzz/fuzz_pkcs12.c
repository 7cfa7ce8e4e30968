/*
 * PKCS#12 import (agent/keys.c keys_parse_pfx), then the import job's checks
 * (key match, chain order).  Each input is tried with a fixed password and
 * with no password; then the first byte gives the length (0..31) of a
 * password taken from the input, the rest being the PFX.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>

#include "fuzz.h"
#include "import-common.h"
#include "keys.h"

static void
try_pfx(const uint8_t *data, size_t size, const char *password)
{
    struct key *key = NULL;
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    char *cause = NULL;

    if (keys_parse_pfx(data, size, password, &key, &leaf, &chain, &cause) == 0)
        fuzz_import_check(key, leaf, chain);
    free(cause);
    keys_free(key);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    ERR_clear_error();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char password[32];
    size_t n;

    try_pfx(data, size, "fuzz-password");
    try_pfx(data, size, NULL);
    if (size == 0)
        return 0;
    n = data[0] % 32;
    if (n > size - 1)
        n = size - 1;
    memcpy(password, data + 1, n);
    password[n] = '\0';
    try_pfx(data + 1 + n, size - 1 - n, password);
    return 0;
}
