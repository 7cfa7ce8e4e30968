/*
 * UTF-8 validation (common/utf8.c), shared by the config walker (which refuses
 * invalid strings) and the agent's logger (which escapes them).
 */
#ifndef CERTAGENT_UTF8_H
#define CERTAGENT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * The length (1 to 4) of the well-formed UTF-8 sequence at p (n > 0 bytes
 * available), with its code point in *cp when cp is not NULL; 0 when it is
 * not one: a stray or truncated byte, an overlong form, a surrogate or
 * anything above U+10FFFF.
 */
size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp);

#endif
