/* Release version and the YEAR.MINOR.PATCH comparison used by the installers. */
#ifndef CERTAGENT_VERSION_H
#define CERTAGENT_VERSION_H

#define CERTAGENT_VERSION "26.1.0"

struct version {
    unsigned long year, minor, patch;
};

/*
 * Parses "YEAR.MINOR.PATCH" (PATCH, and MINOR, may be omitted and count as 0).
 * Each part is decimal digits only, at most 9 of them.  Returns 0 or
 * -E_BAD_INPUT with a cause naming what is wrong.
 */
int version_parse(const char *s, struct version *out, char **cause);
/* Numeric part-by-part comparison: <0, 0, >0. */
int version_compare(const struct version *a, const struct version *b);

#endif
