/*
 * The server_name extension reader of the tls-alpn-01 responder
 * (agent/acme/challenge-alpn.c, challenge_alpn_parse_sni): a fleet node looks
 * the name it returns up in etcd, so it must stay inside the extension and
 * give only a short, NUL-terminated name of letters, digits, '-' and '.'.
 */
#include <stdlib.h>
#include <string.h>

#include "challenge-alpn.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[254];
    size_t n;

    /* A copy of exactly size bytes: ASan sees any read past the extension. */
    unsigned char *ext = malloc(size > 0 ? size : 1);

    if (ext == NULL)
        return 0;
    memcpy(ext, data, size);
    memset(out, 'X', sizeof(out));
    if (challenge_alpn_parse_sni(ext, size, out, sizeof(out)) == 0) {
        if (memchr(out, '\0', sizeof(out)) == NULL)
            abort();
        n = strlen(out);
        if (n == 0 || n >= sizeof(out))
            abort();
        for (size_t i = 0; i < n; i++) {
            char c = out[i];

            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
                abort();
        }
    }
    free(ext);
    return 0;
}
