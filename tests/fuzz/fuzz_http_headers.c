/*
 * Header lines of ACME replies (agent/acme-http.c acme_http_header, which the
 * agent's libcurl header callback calls for every line), then the Link
 * relations the order code asks for (acme_http_links) and the Retry-After
 * value (acme_http_retry_after).  The input is split into lines at LF, each
 * line keeping its CR LF as libcurl delivers it.
 */
#include <stdlib.h>
#include <string.h>

#include "acme-http.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const rels[] = {"alternate", "index", "up", "terms-of-service"};
    struct acme_http_response *resp = calloc(1, sizeof(*resp));
    const char *p = (const char *)data, *end = p + size;

    if (resp == NULL)
        return 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);

        acme_http_header(resp, p, len);
        p += len;
    }
    for (size_t i = 0; i < sizeof(rels) / sizeof(rels[0]); i++) {
        char **urls = NULL;
        size_t n = acme_http_links(resp, rels[i], &urls);

        for (size_t k = 0; k < n; k++)
            free(urls[k]);
        free(urls);
    }
    (void)acme_http_retry_after(resp->retry_after, 1700000000LL);
    /* The whole input as one Retry-After value too (NUL-terminated copy). */
    if (size < 256) {
        char value[256];

        memcpy(value, data, size);
        value[size] = '\0';
        (void)acme_http_retry_after(value, 1700000000LL);
    }
    acme_http_response_free(resp);
    return 0;
}
