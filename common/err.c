#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    const char *message;
} err_table[] = {
    [E_OK] = {"E_OK", "success"},
    [E_BAD_INPUT] = {"E_BAD_INPUT", "invalid input"},
    [E_NOT_FOUND] = {"E_NOT_FOUND", "not found"},
    [E_EXISTS] = {"E_EXISTS", "already exists"},
    [E_DENIED] = {"E_DENIED", "permission denied"},
    [E_BUSY] = {"E_BUSY", "busy: another change is in progress"},
    [E_IO] = {"E_IO", "input/output error"},
    [E_CRYPTO] = {"E_CRYPTO", "cryptographic operation failed"},
    [E_PROTO] = {"E_PROTO", "protocol error"},
    [E_VERSION] = {"E_VERSION", "protocol version mismatch"},
    [E_UNKNOWN_OP] = {"E_UNKNOWN_OP", "unknown operation"},
    [E_TOO_BIG] = {"E_TOO_BIG", "too large"},
    [E_INTERNAL] = {"E_INTERNAL", "internal error"},
    [E_NOMEM] = {"E_NOMEM", "out of memory"},
    [E_ACME] = {"E_ACME", "the ACME server reported an error"},
    [E_UNAVAILABLE] = {"E_UNAVAILABLE", "service unavailable"},
};

static int
normalise(int code)
{
    if (code < 0)
        code = -code;
    if (code > E_MAX)
        code = E_INTERNAL;
    return code;
}

const char *
err_name(int code)
{
    return err_table[normalise(code)].name;
}

const char *
err_message(int code)
{
    return err_table[normalise(code)].message;
}

int
err_from_name(const char *name, unsigned long len)
{
    for (int i = 0; i <= E_MAX; i++) {
        if (strlen(err_table[i].name) == len && memcmp(err_table[i].name, name, len) == 0)
            return i;
    }
    return -1;
}

void
err_set(char **cause, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    if (cause == NULL)
        return;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0 && (s = malloc((size_t)n + 1)) != NULL) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    free(*cause);
    *cause = s;
}
