/*
 * A certificate's summary as a msgpack map (store-pack.h).
 */
#include "pem.h"
#include "proto.h"
#include "store-pack.h"
#include "store.h"

void
store_pack_cert(msgpack_packer *pk, const struct store_cert *cert, int64_t now)
{
    msgpack_pack_map(pk, STORE_CERT_FIELDS);
    store_pack_cert_fields(pk, cert, now);
}

void
store_pack_cert_fields(msgpack_packer *pk, const struct store_cert *cert, int64_t now)
{
    const struct store_version *v = store_current(cert);

    proto_pack_kv_str(pk, "name", cert->name);
    proto_pack_kv_uint(pk, "version", cert->current);
    proto_pack_kv_uint(pk, "versions", cert->nversions);
    proto_pack_kv_str(pk, "source", store_source_name(v->source));
    proto_pack_kv_str(pk, "subject", v->subject);
    proto_pack_kv_str(pk, "common_name", v->common_name);
    proto_pack_kv_str(pk, "issuer", v->issuer);
    proto_pack_str(pk, "dns");
    proto_pack_str_array(pk, v->dns, v->ndns);
    proto_pack_str(pk, "ips");
    proto_pack_str_array(pk, v->ips, v->nips);
    proto_pack_kv_int(pk, "not_before", v->not_before);
    proto_pack_kv_int(pk, "not_after", v->not_after);
    proto_pack_kv_int(pk, "days_left", pem_days_left(v->not_after, now));
    proto_pack_kv_str(pk, "key", v->key_desc);
    proto_pack_kv_str(pk, "fingerprint", v->fingerprint);
    proto_pack_kv_bool(pk, "busy", cert->busy);
    /* When the current version was revoked at its CA (certctl revoke), and why; else nil. */
    store_pack_revoked(pk, v);
}

void
store_pack_revoked(msgpack_packer *pk, const struct store_version *v)
{
    if (v->revoked != 0) {
        proto_pack_kv_int(pk, "revoked", v->revoked);
        proto_pack_kv_str(pk, "revoked_reason",
                          v->revoked_reason != NULL ? v->revoked_reason : "unspecified");
    } else {
        proto_pack_kv_nil(pk, "revoked");
        proto_pack_kv_nil(pk, "revoked_reason");
    }
}
