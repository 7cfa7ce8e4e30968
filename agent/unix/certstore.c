/*
 * The Windows certificate store, where there is none: every operation is
 * refused with the same words, so that a store deploy target or an import
 * from the store fails clearly on Linux (agent/win/certstore.c is the real
 * one).
 */
#include "err.h"
#include "platform.h"

static int
refuse(char **cause)
{
    err_set(cause, "the Windows certificate store exists only on Windows");
    return -E_BAD_INPUT;
}

int
platform_certstore_available(void)
{
    return 0;
}

int
platform_certstore_deploy(const struct certstore_put *put, const unsigned char *pfx,
                          size_t pfx_len, char **thumbprint, char **cause)
{
    (void)put;
    (void)pfx;
    (void)pfx_len;
    *thumbprint = NULL;
    return refuse(cause);
}

int
platform_certstore_read(const char *store, const char *thumbprint, struct certstore_item *out,
                        char **cause)
{
    (void)store;
    (void)thumbprint;
    out->pfx = out->cert = out->key = NULL;
    out->pfx_len = out->cert_len = out->key_len = 0;
    return refuse(cause);
}

int
platform_certstore_add_cert(const char *store, const unsigned char *der, size_t len, char **cause)
{
    (void)store;
    (void)der;
    (void)len;
    return refuse(cause);
}

int
platform_certstore_remove_cert(const char *store, const unsigned char *der, size_t len,
                               char **cause)
{
    (void)store;
    (void)der;
    (void)len;
    return refuse(cause);
}
