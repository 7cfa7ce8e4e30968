/*
 * base64url without padding (RFC 4648 section 5, as JOSE and ACME use it).
 */
#ifndef CERTAGENT_B64URL_H
#define CERTAGENT_B64URL_H

#include <stddef.h>

/* Heap NUL-terminated encoding of len bytes, or NULL on allocation failure. */
char *b64url_encode(const void *data, size_t len);
/*
 * Decodes text (padding and surrounding white space tolerated) into a heap
 * buffer; -E_BAD_INPUT for a character outside the alphabet.
 */
int b64url_decode(const char *text, unsigned char **out, size_t *len);

#endif
