#include "version.h"

#include "err.h"

#include <string.h>

int
version_parse(const char *s, struct version *out, char **cause)
{
    unsigned long parts[3] = {0, 0, 0};
    int nparts = 0;
    const char *p = s;

    if (s == NULL || *s == '\0') {
        err_set(cause, "empty version; expected YEAR.MINOR.PATCH such as 26.1.0");
        return -E_BAD_INPUT;
    }
    for (;;) {
        unsigned long v = 0;
        int digits = 0;

        while (*p >= '0' && *p <= '9') {
            if (++digits > 9) {
                err_set(cause, "version '%s': a part has more than 9 digits", s);
                return -E_BAD_INPUT;
            }
            v = v * 10 + (unsigned long)(*p - '0');
            p++;
        }
        if (digits == 0) {
            err_set(cause, "version '%s' is not YEAR.MINOR.PATCH (digits separated by dots)", s);
            return -E_BAD_INPUT;
        }
        parts[nparts++] = v;
        if (*p == '\0')
            break;
        if (*p != '.' || nparts == 3) {
            err_set(cause, "version '%s' is not YEAR.MINOR.PATCH (digits separated by dots)", s);
            return -E_BAD_INPUT;
        }
        p++;
    }
    out->year = parts[0];
    out->minor = parts[1];
    out->patch = parts[2];
    return 0;
}

int
version_compare(const struct version *a, const struct version *b)
{
    if (a->year != b->year)
        return a->year < b->year ? -1 : 1;
    if (a->minor != b->minor)
        return a->minor < b->minor ? -1 : 1;
    if (a->patch != b->patch)
        return a->patch < b->patch ? -1 : 1;
    return 0;
}
