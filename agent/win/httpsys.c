/*
 * http.sys SSL bindings (platform.h): the certificate an IP:PORT binding
 * serves, as `netsh http update sslcert` changes it, through httpapi's
 * HttpQueryServiceConfiguration / HttpSetServiceConfiguration with
 * HttpServiceConfigSSLCertInfo.  There is no "update" call: the binding is
 * deleted and set again with the new hash, everything else as it was, and
 * put back as it was when the new one is refused.
 */
#include <winsock2.h>
#include <ws2tcpip.h>
/* winsock2.h before windows.h; http.h after both. */
#include <windows.h>
#include <http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "err.h"
#include "platform.h"

#define THUMB_LEN 20

/* certagent's application id for the bindings it makes: {0e6b1c2f-6d0a-4c53-9a4e-2f3c8e1d5b70}. */
static const GUID certagent_app_id = {
    0x0e6b1c2f, 0x6d0a, 0x4c53, {0x9a, 0x4e, 0x2f, 0x3c, 0x8e, 0x1d, 0x5b, 0x70}};

int
platform_httpsys_available(void)
{
    return 1;
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "IP:PORT" or "[IPv6]:PORT" to a socket address. */
static int
parse_ipport(const char *ipport, struct sockaddr_storage *out)
{
    char host[64];
    const char *colon = strrchr(ipport, ':');
    const char *h = ipport;
    size_t hl;
    long port;
    char *end;

    if (colon == NULL)
        return -1;
    hl = (size_t)(colon - ipport);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(host))
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535)
        return -1;
    memset(out, 0, sizeof(*out));
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0 ||
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0)
        return 0;
    return -1;
}

static const char *
words_of(ULONG rc, char *buf, size_t len)
{
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, rc,
                             0, buf, (DWORD)len, NULL);

    while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n' || buf[n - 1] == '.'))
        buf[--n] = '\0';
    if (n == 0)
        snprintf(buf, len, "error %lu", (unsigned long)rc);
    return buf;
}

int
platform_httpsys_bind(const char *ipport, const char *thumbprint, const char *store, int *created,
                      char **cause)
{
    HTTPAPI_VERSION version = HTTPAPI_VERSION_1;
    HTTP_SERVICE_CONFIG_SSL_QUERY query;
    HTTP_SERVICE_CONFIG_SSL_SET set, *old = NULL;
    struct sockaddr_storage addr;
    BYTE hash[THUMB_LEN];
    WCHAR wstore[128];
    unsigned char *buf = NULL;
    ULONG rc, len = 0;
    char words[256];
    int ret = 0, init = 0;

    *created = 0;
    if (parse_ipport(ipport, &addr) != 0) {
        err_set(cause, "'%s' is not IP:PORT (0.0.0.0:443, [::]:443)", ipport);
        return -E_BAD_INPUT;
    }
    if (thumbprint == NULL || strlen(thumbprint) != 2 * THUMB_LEN) {
        err_set(cause, "cannot bind %s: no thumbprint of the certificate in a store", ipport);
        return -E_BAD_INPUT;
    }
    for (int i = 0; i < THUMB_LEN; i++) {
        int hi = hex_value(thumbprint[2 * i]), lo = hex_value(thumbprint[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            err_set(cause, "cannot bind %s: '%s' is not a thumbprint", ipport, thumbprint);
            return -E_BAD_INPUT;
        }
        hash[i] = (BYTE)(hi << 4 | lo);
    }
    if (MultiByteToWideChar(CP_UTF8, 0, store, -1, wstore, 128) == 0) {
        err_set(cause, "cannot bind %s: bad store name '%s'", ipport, store);
        return -E_BAD_INPUT;
    }
    if ((rc = HttpInitialize(version, HTTP_INITIALIZE_CONFIG, NULL)) != NO_ERROR) {
        err_set(cause, "cannot bind %s: http.sys (HttpInitialize): %s", ipport,
                words_of(rc, words, sizeof(words)));
        return -E_IO;
    }
    init = 1;
    memset(&query, 0, sizeof(query));
    query.QueryDesc = HttpServiceConfigQueryExact;
    query.KeyDesc.pIpPort = (PSOCKADDR)&addr;
    rc = HttpQueryServiceConfiguration(NULL, HttpServiceConfigSSLCertInfo, &query, sizeof(query),
                                       NULL, 0, &len, NULL);
    if (rc == ERROR_INSUFFICIENT_BUFFER && len > 0 && len < 1024 * 1024) {
        if ((buf = calloc(1, len)) == NULL) {
            ret = -E_NOMEM;
            goto out;
        }
        rc = HttpQueryServiceConfiguration(NULL, HttpServiceConfigSSLCertInfo, &query,
                                           sizeof(query), buf, len, &len, NULL);
    }
    memset(&set, 0, sizeof(set));
    if (rc == NO_ERROR && buf != NULL) {
        /* Keep everything (the pointers stay valid in buf); change the certificate only. */
        old = (HTTP_SERVICE_CONFIG_SSL_SET *)buf;
        set.ParamDesc = old->ParamDesc;
        rc = HttpDeleteServiceConfiguration(NULL, HttpServiceConfigSSLCertInfo, old, sizeof(*old),
                                            NULL);
        if (rc != NO_ERROR) {
            err_set(cause, "cannot update the http.sys binding %s: %s", ipport,
                    words_of(rc, words, sizeof(words)));
            ret = rc == ERROR_ACCESS_DENIED ? -E_DENIED : -E_IO;
            goto out;
        }
    } else if (rc == ERROR_FILE_NOT_FOUND || rc == ERROR_NOT_FOUND || rc == NO_ERROR) {
        *created = 1;
        set.ParamDesc.AppId = certagent_app_id;
    } else {
        err_set(cause, "cannot read the http.sys binding %s: %s", ipport,
                words_of(rc, words, sizeof(words)));
        ret = rc == ERROR_ACCESS_DENIED ? -E_DENIED : -E_IO;
        goto out;
    }
    set.KeyDesc.pIpPort = (PSOCKADDR)&addr;
    set.ParamDesc.SslHashLength = THUMB_LEN;
    set.ParamDesc.pSslHash = hash;
    set.ParamDesc.pSslCertStoreName = wstore;
    rc = HttpSetServiceConfiguration(NULL, HttpServiceConfigSSLCertInfo, &set, sizeof(set), NULL);
    if (rc != NO_ERROR) {
        err_set(cause,
                "cannot set the http.sys binding %s to the certificate %s in "
                "LocalMachine\\%s: %s%s",
                ipport, thumbprint, store, words_of(rc, words, sizeof(words)),
                old != NULL ? " (the binding was put back as it was)" : "");
        if (old != NULL)
            HttpSetServiceConfiguration(NULL, HttpServiceConfigSSLCertInfo, old, sizeof(*old),
                                        NULL);
        ret = rc == ERROR_ACCESS_DENIED ? -E_DENIED : -E_IO;
    }
out:
    if (init)
        HttpTerminate(HTTP_INITIALIZE_CONFIG, NULL);
    free(buf);
    return ret;
}
