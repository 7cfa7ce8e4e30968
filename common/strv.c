#include "strv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int
strv_dup(char ***out, size_t *nout, const char *const *src, size_t n)
{
    char **v;

    *out = NULL;
    *nout = 0;
    if (n == 0)
        return 0;
    if ((v = calloc(n, sizeof(*v))) == NULL)
        return -E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if ((v[i] = strdup(src[i])) == NULL) {
            strv_free(v, i);
            return -E_NOMEM;
        }
    }
    *out = v;
    *nout = n;
    return 0;
}

int
strv_vaddf(char ***v, size_t *n, size_t max_len, const char *fmt, va_list ap)
{
    char *s, **nv;
    va_list aq;
    int len;

    va_copy(aq, ap);
    len = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (len < 0)
        len = 0;
    if ((size_t)len > max_len)
        len = (int)max_len;
    if ((s = malloc((size_t)len + 1)) == NULL)
        return -E_NOMEM;
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    if ((nv = realloc(*v, (*n + 1) * sizeof(*nv))) == NULL) {
        free(s);
        return -E_NOMEM;
    }
    nv[(*n)++] = s;
    *v = nv;
    return 0;
}

int
strv_addf(char ***v, size_t *n, size_t max_len, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = strv_vaddf(v, n, max_len, fmt, ap);
    va_end(ap);
    return rc;
}
