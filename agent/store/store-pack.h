/*
 * The summary of a certificate's current version as the protocol carries it
 * (list, status and show): name, version, versions, source, subject,
 * common_name, issuer, dns, ips, not_before, not_after, days_left, key,
 * fingerprint, busy, revoked (when the current version was revoked, or nil)
 * and revoked_reason.
 */
#ifndef CERTAGENT_STORE_PACK_H
#define CERTAGENT_STORE_PACK_H

#include <msgpack.h>
#include <stdint.h>

struct store_cert;
struct store_version;

/* The summary map; days_left counted from now. */
void store_pack_cert(msgpack_packer *pk, const struct store_cert *cert, int64_t now);
/* The same entries without the map header (the status report adds its own after them). */
#define STORE_CERT_FIELDS 17
void store_pack_cert_fields(msgpack_packer *pk, const struct store_cert *cert, int64_t now);
/* revoked (Unix seconds) and revoked_reason of version v, both nil when it was not revoked. */
void store_pack_revoked(msgpack_packer *pk, const struct store_version *v);

#endif
