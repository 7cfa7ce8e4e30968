#include "b64url.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
b64url_encode(const void *data, size_t len)
{
    const unsigned char *d = data;
    char *out = malloc((len + 2) / 3 * 4 + 1), *p = out;
    size_t i;

    if (out == NULL)
        return NULL;
    for (i = 0; i + 2 < len; i += 3) {
        *p++ = alphabet[d[i] >> 2];
        *p++ = alphabet[((d[i] & 3) << 4) | (d[i + 1] >> 4)];
        *p++ = alphabet[((d[i + 1] & 15) << 2) | (d[i + 2] >> 6)];
        *p++ = alphabet[d[i + 2] & 63];
    }
    if (i < len) {
        *p++ = alphabet[d[i] >> 2];
        if (i + 1 < len) {
            *p++ = alphabet[((d[i] & 3) << 4) | (d[i + 1] >> 4)];
            *p++ = alphabet[(d[i + 1] & 15) << 2];
        } else {
            *p++ = alphabet[(d[i] & 3) << 4];
        }
    }
    *p = '\0';
    return out;
}

static int
value_of(char c)
{
    const char *p;

    if (c == '+')
        return 62; /* plain base64 is accepted too */
    if (c == '/')
        return 63;
    p = c != '\0' ? strchr(alphabet, c) : NULL;
    return p != NULL ? (int)(p - alphabet) : -1;
}

int
b64url_decode(const char *text, unsigned char **out, size_t *len)
{
    size_t n = strlen(text), o = 0;
    unsigned acc = 0, bits = 0;
    unsigned char *buf;

    *out = NULL;
    *len = 0;
    while (n > 0 && (text[n - 1] == '=' || text[n - 1] == '\n' || text[n - 1] == '\r' ||
                     text[n - 1] == ' ' || text[n - 1] == '\t'))
        n--;
    while (n > 0 && (*text == ' ' || *text == '\t')) {
        text++;
        n--;
    }
    if ((buf = malloc(n * 3 / 4 + 1)) == NULL)
        return -E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        int v = value_of(text[i]);

        if (v < 0) {
            free(buf);
            return -E_BAD_INPUT;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *out = buf;
    *len = o;
    return 0;
}
