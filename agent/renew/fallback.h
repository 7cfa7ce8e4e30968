/*
 * Fallback CAs (docs/resilience.md): which CA a renewal attempt goes to when
 * the certificate's own CA keeps failing, and the check of the names the
 * config and `certctl set --fallback-ca` give.
 */
#ifndef CERTAGENT_FALLBACK_H
#define CERTAGENT_FALLBACK_H

#include <stddef.h>
#include <stdint.h>

struct acme;
struct config;

/*
 * The position in the list [own CA, fallback 1, ...] (n entries) of the CA
 * the next attempt goes to: the own CA until `after` attempts in a row have
 * failed, then the next one every `after` failures (round again to the own
 * CA after the last); and at least the first fallback once less than a third
 * of the time the certificate had left when renewal became due (due_at) is
 * left.  due_at 0: not known (no time rule).
 */
size_t fallback_index(size_t n, unsigned failures, unsigned after, int64_t due_at,
                      int64_t not_after, int64_t now);

/*
 * Checks a list of fallback CA names: each known to acme, each once.  0, or
 * -E_BAD_INPUT with words naming what (key: "fallback_cas" or an option).
 */
int fallback_check(struct acme *acme, const char *key, const char *const *cas, size_t n,
                   char **cause);

#endif
