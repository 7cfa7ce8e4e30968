/*
 * The certagent wire protocol, defined once for the agent and certctl.
 *
 * A frame is a 4-byte big-endian payload length followed by exactly one
 * msgpack map of that length.  Payloads over PROTO_MAX_FRAME bytes are
 * refused and the connection is closed.
 *
 *   request  {id: uint, op: str, args: map}
 *   reply    {id, ok: true, result: map}
 *            {id, ok: false, error: {code: "E_...", message: str, detail: any}}
 *   event    {id, event: "progress", message: str, done: uint, total: uint}
 *            {id, event: "items", items: [map, ...]}   (a batch of a long list)
 *
 * The first request on a connection is `hello` {proto: PROTO_VERSION,
 * client: str}; a mismatch is E_VERSION on both sides.  Several requests may
 * be in flight; replies and events carry the request's id.
 *
 * Bump PROTO_VERSION when any of these change: the frame header, the
 * maximum frame size, the envelope keys, or the meaning of an op.  Ops are
 * numbered in ranges and a retired number is never reused.
 */
#ifndef CERTAGENT_PROTO_H
#define CERTAGENT_PROTO_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

#define PROTO_VERSION 1
#define PROTO_HEADER_SIZE 4
#define PROTO_MAX_FRAME (1024 * 1024)
/* Deepest nesting of maps and arrays a frame may have. */
#define PROTO_MAX_DEPTH 16
/* Items per "items" event of a long listing. */
#define PROTO_ITEMS_BATCH 256

enum proto_op {
    PROTO_OP_NONE = 0,
    /* 1..15: session */
    PROTO_OP_HELLO = 1,
    PROTO_OP_PING = 2,
    PROTO_OP_VERSION = 3,
    PROTO_OP_STATUS = 4,
    /* 16..63: the store */
    PROTO_OP_LIST = 16,
    PROTO_OP_SHOW = 17,
    PROTO_OP_IMPORT = 18,
    PROTO_OP_SELFSIGNED = 19,
    PROTO_OP_EXPORT = 20,
    PROTO_OP_REMOVE = 21,
    PROTO_OP_ROLLBACK = 22,
    PROTO_OP_SET = 23,
    PROTO_OP_DEPLOY = 24,
    /* 64..127: ACME */
    PROTO_OP_REQUEST = 64,
    PROTO_OP_RENEW = 65,
    PROTO_OP_REVOKE = 66,
    PROTO_OP_CA_ADD = 67,
    PROTO_OP_CA_LIST = 68,
    PROTO_OP_CA_REMOVE = 69,
    PROTO_OP_ACCOUNT_REGISTER = 70,
    PROTO_OP_ACCOUNT_SHOW = 71,
    PROTO_OP_ACCOUNT_ROLLOVER = 72,
    PROTO_OP_ACCOUNT_DEACTIVATE = 73,
    PROTO_OP_ACCOUNT_IMPORT = 74,
    PROTO_OP_CANARY_RUN = 75,
    PROTO_OP_CANARY_STATUS = 76,
    /* 128..191: trust and probes */
    PROTO_OP_TRUST_ADD = 128,
    PROTO_OP_TRUST_LIST = 129,
    PROTO_OP_TRUST_REMOVE = 130,
    PROTO_OP_TRUST_SHOW = 131,
    PROTO_OP_VERIFY = 132,
    PROTO_OP_PROBE = 133,
    /* 192..223: alerts (notify test, notify status, ack) */
    PROTO_OP_NOTIFY_TEST = 192,
    PROTO_OP_NOTIFY_STATUS = 193,
    PROTO_OP_ACK = 194,
    PROTO_OP_REPORT_SEND = 195,
    /* session (status report): Prometheus text, and the agent's recent log lines */
    PROTO_OP_METRICS = 5,
    PROTO_OP_LOGS = 6,
    /* the status report as text for a person (report/digest.c) */
    PROTO_OP_REPORT = 7,
    /* 224..239: the fleet (fleet status and fleet nodes, fleet forget: fleet/view.c) */
    PROTO_OP_FLEET_STATUS = 224,
    PROTO_OP_FLEET_FORGET = 225,
};

/* Wire name of an op ("import"), or NULL. */
const char *proto_op_name(enum proto_op op);
/* Op for a wire name, PROTO_OP_NONE when unknown. */
enum proto_op proto_op_from_name(const char *name, size_t len);

/*
 * Building a frame: init, pack one map with msgpack_pack_* through w->pk (or
 * the proto_pack_* helpers), then finish, which writes the header and hands
 * over the bytes.  finish fails with -E_TOO_BIG past PROTO_MAX_FRAME, and
 * with -E_NOMEM when the buffer could not grow.  Frames carry keys and
 * passwords: the buffer is never realloc'd (a grown buffer is copied and the
 * old one wiped), destroy wipes it, and the bytes finish hands over should be
 * wiped by whoever frees them (OPENSSL_cleanse).
 */
struct proto_writer {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    int failed; /* a write did not fit in memory */
};

void proto_writer_init(struct proto_writer *w);
/* On success *data (malloc'd, caller frees) holds header + payload. */
int proto_writer_finish(struct proto_writer *w, char **data, size_t *len);
void proto_writer_destroy(struct proto_writer *w);

void proto_pack_str(msgpack_packer *pk, const char *s);
void proto_pack_strn(msgpack_packer *pk, const char *s, size_t len);
void proto_pack_kv_str(msgpack_packer *pk, const char *key, const char *value);
void proto_pack_kv_int(msgpack_packer *pk, const char *key, int64_t value);
void proto_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t value);
void proto_pack_kv_bool(msgpack_packer *pk, const char *key, int value);
void proto_pack_kv_bin(msgpack_packer *pk, const char *key, const void *data, size_t len);
void proto_pack_kv_nil(msgpack_packer *pk, const char *key);
void proto_pack_str_array(msgpack_packer *pk, char *const *items, size_t n);

/* Envelope helpers: begin a reply ({id, ok: true, result: <map of n entries>}). */
void proto_begin_result(msgpack_packer *pk, uint64_t id, size_t n);
/* A complete error reply frame body. detail may be NULL. */
void proto_pack_error(msgpack_packer *pk, uint64_t id, int code, const char *message,
                      const char *detail);

/*
 * A decoded message: root is a map whose storage (strings included) lives in
 * zone; raw is the zone's copy of the payload that strings and bins point
 * into, wiped by proto_msg_free.
 */
struct proto_msg {
    msgpack_zone zone;
    msgpack_object root;
    char *raw;
    size_t raw_len;
};
void proto_msg_free(struct proto_msg *msg);

/*
 * Reassembles frames from a byte stream.  feed appends bytes; next returns 1
 * with a message, 0 when more bytes are needed, or a negative code with a
 * cause: -E_TOO_BIG (declared length over the limit), -E_PROTO (empty frame,
 * invalid msgpack, trailing bytes, not a map, nesting too deep, a length that
 * exceeds the bytes present).  After an error the reader is unusable.
 * The bytes of every frame consumed are wiped at once, the buffer never
 * leaves a copy behind when it grows or moves its contents, a buffer grown
 * past PROTO_READER_KEEP for a large frame is freed once empty, and destroy
 * wipes what is left: frames carry passwords and keys.
 */
#define PROTO_READER_KEEP (64 * 1024)
struct proto_reader {
    char *buf;
    size_t len; /* bytes held */
    size_t off; /* bytes consumed */
    size_t cap;
};
void proto_reader_init(struct proto_reader *r);
int proto_reader_feed(struct proto_reader *r, const char *data, size_t len);
int proto_reader_next(struct proto_reader *r, struct proto_msg *msg, char **cause);
/* Bytes of an incomplete frame held (0 between frames). */
size_t proto_reader_pending(const struct proto_reader *r);
void proto_reader_destroy(struct proto_reader *r);

/*
 * Decodes one payload (no header).  Checks structure before msgpack-c
 * allocates: every declared count must fit in the bytes that remain.
 */
int proto_decode(const char *payload, size_t len, struct proto_msg *msg, char **cause);

/* Map lookup by string key; NULL when absent or map is not a map. */
const msgpack_object *proto_get(const msgpack_object *map, const char *key);
/*
 * Typed getters: 0, -E_NOT_FOUND when the key is absent (or nil), -E_BAD_INPUT
 * when it has another type.  Strings are not NUL-terminated: use the length,
 * or proto_get_strdup.
 */
int proto_get_str(const msgpack_object *map, const char *key, const char **s, size_t *len);
int proto_get_uint(const msgpack_object *map, const char *key, uint64_t *v);
int proto_get_int(const msgpack_object *map, const char *key, int64_t *v);
int proto_get_bool(const msgpack_object *map, const char *key, int *v);
/* bin or str. */
int proto_get_bin(const msgpack_object *map, const char *key, const char **p, size_t *len);
int proto_get_array(const msgpack_object *map, const char *key, const msgpack_object_array **a);
int proto_get_map(const msgpack_object *map, const char *key, const msgpack_object **m);
/*
 * Heap NUL-terminated copy of a string value; -E_BAD_INPUT also when it holds
 * a NUL byte.
 */
int proto_get_strdup(const msgpack_object *map, const char *key, char **out);
/* Heap copy of a string object (not a map entry). */
int proto_strdup(const msgpack_object *o, char **out);
/* Does a str object equal s? */
int proto_str_eq(const msgpack_object *o, const char *s);

/* cJSON -> msgpack (integral numbers as integers). */
void proto_pack_json(msgpack_packer *pk, const struct cJSON *j);

/* msgpack -> cJSON (bin becomes base64 text); NULL on allocation failure. */
struct cJSON *proto_to_json(const msgpack_object *o);

#endif
