/*
 * The IPC frame decoder (common/proto.c) and the message schema as the agent
 * reads it: frames are reassembled from the input fed in chunks, each
 * message's envelope is read like ops_dispatch does (id, op, args), and every
 * argument the ops take goes through the agent's own ops_arg_* helpers
 * (agent/ops.c), plus every typed getter on every key present.  The first
 * byte picks the chunk size; the rest is also decoded as one bare payload.
 */
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "err.h"
#include "fuzz.h"
#include "ops.h"
#include "proto.h"
#include "strv.h"

static const char *const str_args[] = {
    "ca",    "challenge",   "client",          "directory", "eab_hmac", "eab_kid",
    "email", "fingerprint", "format",          "host",      "key",      "min_tls",
    "name",  "password",    "preferred_chain", "profile",   "purpose",  "reason",
};
static const char *const strs_args[] = {"dns", "ips", "urls"};
static const char *const uint_args[] = {"concurrency", "days", "proto",
                                        "timeout",     "to",   "version"};
static const char *const bin_args[] = {"cert", "chain", "key", "pfx", "trust"};

static void
drop_cause(struct request *req)
{
    free(req->cause);
    req->cause = NULL;
}

/* Every getter on one key of map (the key as the wire gave it, NUL-terminated). */
static void
getters(const msgpack_object *map, const char *key)
{
    const char *s;
    size_t len;
    uint64_t u;
    int64_t i;
    int b;
    const msgpack_object_array *a;
    const msgpack_object *m;
    char *dup = NULL;

    (void)proto_get(map, key);
    (void)proto_get_str(map, key, &s, &len);
    (void)proto_get_uint(map, key, &u);
    (void)proto_get_int(map, key, &i);
    (void)proto_get_bool(map, key, &b);
    (void)proto_get_bin(map, key, &s, &len);
    if (proto_get_array(map, key, &a) == 0) {
        for (uint32_t k = 0; k < a->size && k < 64; k++) {
            char *item = NULL;

            if (proto_strdup(&a->ptr[k], &item) == 0)
                free(item);
            (void)proto_str_eq(&a->ptr[k], "x");
        }
    }
    (void)proto_get_map(map, key, &m);
    if (proto_get_strdup(map, key, &dup) == 0)
        free(dup);
}

static void
walk(const msgpack_object *root)
{
    struct request req;
    const msgpack_object *args;
    const char *opname = NULL;
    size_t oplen = 0;
    cJSON *json;

    memset(&req, 0, sizeof(req));
    if (proto_get_uint(root, "id", &req.id) == 0 &&
        proto_get_str(root, "op", &opname, &oplen) == 0) {
        req.op = proto_op_from_name(opname, oplen);
        (void)proto_op_name(req.op);
    }
    args = proto_get(root, "args");
    req.args = (args != NULL && args->type == MSGPACK_OBJECT_MAP) ? args : NULL;
    for (size_t k = 0; k < sizeof(str_args) / sizeof(str_args[0]); k++) {
        char *v = NULL;

        (void)ops_arg_str(&req, str_args[k], k % 2, &v);
        free(v);
        drop_cause(&req);
    }
    for (size_t k = 0; k < sizeof(strs_args) / sizeof(strs_args[0]); k++) {
        char **v = NULL;
        size_t n = 0;

        if (ops_arg_strs(&req, strs_args[k], &v, &n) == 0)
            strv_free(v, n);
        drop_cause(&req);
    }
    for (size_t k = 0; k < sizeof(uint_args) / sizeof(uint_args[0]); k++) {
        uint64_t v;

        (void)ops_arg_uint(&req, uint_args[k], k % 2, &v);
        drop_cause(&req);
    }
    for (size_t k = 0; k < sizeof(bin_args) / sizeof(bin_args[0]); k++) {
        unsigned char *v = NULL;
        size_t n = 0;

        (void)ops_arg_bin(&req, bin_args[k], k % 2, &v, &n);
        free(v);
        drop_cause(&req);
    }
    /* Every key actually present, in the envelope and in args. */
    for (int level = 0; level < 2; level++) {
        const msgpack_object *map = level == 0 ? root : req.args;

        if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
            continue;
        for (uint32_t k = 0; k < map->via.map.size && k < 64; k++) {
            char *key = NULL;

            if (proto_strdup(&map->via.map.ptr[k].key, &key) == 0) {
                getters(map, key);
                free(key);
            }
        }
    }
    if ((json = proto_to_json(root)) != NULL)
        cJSON_Delete(json);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_reader r;
    struct proto_msg msg;
    char *cause = NULL;
    size_t chunk, off = 0;
    int rc = 0;

    if (size == 0)
        return 0;
    chunk = (size_t)(data[0] % 64) + 1;
    data++;
    size--;
    proto_reader_init(&r);
    while (off < size && rc >= 0) {
        size_t n = size - off < chunk ? size - off : chunk;

        if (proto_reader_feed(&r, (const char *)data + off, n) != 0)
            break;
        off += n;
        while ((rc = proto_reader_next(&r, &msg, &cause)) == 1) {
            walk(&msg.root);
            proto_msg_free(&msg);
        }
        free(cause);
        cause = NULL;
    }
    (void)proto_reader_pending(&r);
    proto_reader_destroy(&r);
    /* The same bytes as one payload without a frame header. */
    if (proto_decode((const char *)data, size, &msg, &cause) == 0) {
        walk(&msg.root);
        proto_msg_free(&msg);
    }
    free(cause);
    return 0;
}
