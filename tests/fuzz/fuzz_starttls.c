/*
 * The plain-text dialogue before STARTTLS (agent/probe-starttls.c
 * starttls_feed): the server's replies for IMAP, POP3 and SMTP.  The first
 * byte picks the protocol and the size of the chunks the bytes arrive in.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "probe.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum probe_starttls protos[] = {PROBE_IMAP, PROBE_POP3, PROBE_SMTP};
    struct starttls st;
    char out[512];
    size_t chunk, off = 0, outlen;
    int rc = 0;

    if (size == 0)
        return 0;
    starttls_init(&st, protos[data[0] % 3]);
    (void)starttls_name(st.proto);
    chunk = (size_t)(data[0] / 3) % 32 + 1;
    data++;
    size--;
    while (off < size && rc == 0) {
        size_t n = size - off < chunk ? size - off : chunk;
        char *cause = NULL;

        rc = starttls_feed(&st, (const char *)data + off, n, out, sizeof(out), &outlen, &cause);
        if (outlen > sizeof(out))
            abort(); /* the reply must fit in what the caller gave */
        free(cause);
        off += n;
    }
    return 0;
}
