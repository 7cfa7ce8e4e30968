/*
 * A fleet record: one version of a shared certificate as etcd keeps it under
 * /certagent/FLEET/certs/NAME/current, a JSON object
 *
 *   {"format": 1, "version": N, "serial": HEX, "not_after": UNIX, "node": NODE,
 *    "fullchain": PEM, "key": BASE64(nonce 12 | AES-256-GCM ciphertext | tag 16),
 *    "acme": {"ca", "key_type", "challenge", ...} (optional)}
 *
 * The private key (PEM) is encrypted under the fleet key with the associated
 * data "FLEET|NAME|N", so that a record copied to another name, fleet or
 * version does not open, and a record cut short or written with another key
 * does not either.  N counts the fleet's versions of NAME (not the local
 * store's versions).
 */
#ifndef CERTAGENT_RECORD_H
#define CERTAGENT_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "fleetkey.h"

struct fleet_record {
    unsigned version;
    char *serial;
    int64_t not_after;
    char *node;
    char *fullchain;
    char *key_pem; /* secret: record_clear wipes it */
    /* How the version was ordered (the "acme" object of its meta.json: ca, key_type,
     * challenge, ...) as JSON text, or NULL: another node renews the name from it. */
    char *acme;
};

/* rec's fields (key_pem in clear) into a new JSON text *out.  0 or -E_*. */
int record_seal(const unsigned char key[FLEETKEY_LEN], const char *fleet, const char *name,
                const struct fleet_record *rec, char **out, char **cause);
/*
 * Parses and opens the record text (len bytes) of name: 0 with rec filled,
 * or -E_BAD_INPUT (not a record: malformed, cut short) / -E_CRYPTO (the key
 * does not open it: another fleet key, or a record of another name or
 * version) with words.
 */
int record_open(const unsigned char key[FLEETKEY_LEN], const char *fleet, const char *name,
                const char *text, size_t len, struct fleet_record *rec, char **cause);
void record_clear(struct fleet_record *rec);

/* Do two serials (hex, with or without colons) name the same number? Case and leading
 * zeros do not count. */
int record_same_serial(const char *a, const char *b);

#endif
