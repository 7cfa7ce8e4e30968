/*
 * Heap arrays of heap strings, held as a `char **` and a count: the lists of
 * names, addresses and warnings that the agent copies, builds and frees.
 */
#ifndef CERTAGENT_STRV_H
#define CERTAGENT_STRV_H

#include <stdarg.h>
#include <stddef.h>

#include "err.h"

/* Frees the n strings of v, then v; v NULL is a no-op whatever n says. */
void strv_free(char **v, size_t n);
/*
 * Copies the n strings of src into a new array: *out (NULL when n is 0) and
 * *nout n, or -E_NOMEM with *out NULL, *nout 0 and nothing left allocated.
 */
int strv_dup(char ***out, size_t *nout, const char *const *src, size_t n);
/*
 * Appends the sentence fmt formats, cut to max_len bytes, to the array *v of
 * *n strings: 0, or -E_NOMEM with nothing added.  One formatter for the
 * warnings and problems that are collected as sentences.
 */
int strv_addf(char ***v, size_t *n, size_t max_len, const char *fmt, ...) ERR_PRINTF(4, 5);
int strv_vaddf(char ***v, size_t *n, size_t max_len, const char *fmt, va_list ap) ERR_PRINTF(4, 0);

#endif
