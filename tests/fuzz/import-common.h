/*
 * What `certctl import` sends goes through these steps in the agent
 * (agent/ops-cert.c's import job): certificates read by pem_read_certs, a key
 * by keys_parse (without and with a password), the key matched to the leaf,
 * the chain ordered, the leaf described.  fuzz_pem and fuzz_der feed the same
 * steps with differently shaped seeds; fuzz_pkcs12 starts from keys_parse_pfx.
 */
#ifndef CERTAGENT_FUZZ_IMPORT_COMMON_H
#define CERTAGENT_FUZZ_IMPORT_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

struct key;

/* Describes, matches and orders what was read: the steps after parsing. */
void fuzz_import_check(struct key *key, X509 *leaf, STACK_OF(X509) * chain);
/* Certificates and a key from the same bytes, as --cert/--key/--chain would give them. */
void fuzz_import_pem_der(const uint8_t *data, size_t size);

#endif
