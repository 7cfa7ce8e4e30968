#include "proto.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

static const struct {
    enum proto_op op;
    const char *name;
} op_names[] = {
    {PROTO_OP_HELLO, "hello"},
    {PROTO_OP_PING, "ping"},
    {PROTO_OP_VERSION, "version"},
    {PROTO_OP_STATUS, "status"},
    {PROTO_OP_LIST, "list"},
    {PROTO_OP_SHOW, "show"},
    {PROTO_OP_IMPORT, "import"},
    {PROTO_OP_SELFSIGNED, "selfsigned"},
    {PROTO_OP_EXPORT, "export"},
    {PROTO_OP_REMOVE, "remove"},
    {PROTO_OP_ROLLBACK, "rollback"},
    {PROTO_OP_SET, "set"},
    {PROTO_OP_DEPLOY, "deploy"},
    {PROTO_OP_REQUEST, "request"},
    {PROTO_OP_RENEW, "renew"},
    {PROTO_OP_REVOKE, "revoke"},
    {PROTO_OP_CA_ADD, "ca-add"},
    {PROTO_OP_CA_LIST, "ca-list"},
    {PROTO_OP_CA_REMOVE, "ca-remove"},
    {PROTO_OP_ACCOUNT_REGISTER, "account-register"},
    {PROTO_OP_ACCOUNT_SHOW, "account-show"},
    {PROTO_OP_ACCOUNT_ROLLOVER, "account-rollover"},
    {PROTO_OP_ACCOUNT_DEACTIVATE, "account-deactivate"},
    {PROTO_OP_ACCOUNT_IMPORT, "account-import"},
    {PROTO_OP_TRUST_ADD, "trust-add"},
    {PROTO_OP_TRUST_LIST, "trust-list"},
    {PROTO_OP_TRUST_REMOVE, "trust-remove"},
    {PROTO_OP_TRUST_SHOW, "trust-show"},
    {PROTO_OP_VERIFY, "verify"},
    {PROTO_OP_PROBE, "probe"},
    {PROTO_OP_METRICS, "metrics"},
    {PROTO_OP_LOGS, "logs"},
    {PROTO_OP_NOTIFY_TEST, "notify_test"},
    {PROTO_OP_NOTIFY_STATUS, "notify_status"},
    {PROTO_OP_ACK, "ack"},
    {PROTO_OP_REPORT_SEND, "report_send"},
    {PROTO_OP_REPORT, "report"},
    {PROTO_OP_FLEET_STATUS, "fleet_status"},
    {PROTO_OP_FLEET_FORGET, "fleet_forget"},
    {PROTO_OP_CANARY_RUN, "canary_run"},
    {PROTO_OP_CANARY_STATUS, "canary_status"},
};

const char *
proto_op_name(enum proto_op op)
{
    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++) {
        if (op_names[i].op == op)
            return op_names[i].name;
    }
    return NULL;
}

enum proto_op
proto_op_from_name(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++) {
        if (strlen(op_names[i].name) == len && memcmp(op_names[i].name, name, len) == 0)
            return op_names[i].op;
    }
    return PROTO_OP_NONE;
}

/* Writing. */

/*
 * The packer's write function: msgpack_sbuffer_write without realloc, which
 * may leave a copy of what was packed (a key, a password) in freed memory.
 */
static int
writer_write(void *data, const char *buf, size_t len)
{
    struct proto_writer *w = data;
    msgpack_sbuffer *sb = &w->sbuf;

    if (w->failed)
        return -1;
    if (sb->alloc - sb->size < len) {
        size_t alloc = sb->alloc != 0 ? sb->alloc : 1024;
        char *grown;

        while (alloc - sb->size < len) {
            if (alloc > SIZE_MAX / 2)
                goto fail;
            alloc *= 2;
        }
        if ((grown = malloc(alloc)) == NULL)
            goto fail;
        if (sb->size > 0)
            memcpy(grown, sb->data, sb->size);
        if (sb->data != NULL) {
            OPENSSL_cleanse(sb->data, sb->size);
            free(sb->data);
        }
        sb->data = grown;
        sb->alloc = alloc;
    }
    memcpy(sb->data + sb->size, buf, len);
    sb->size += len;
    return 0;
fail:
    w->failed = 1;
    return -1;
}

void
proto_writer_init(struct proto_writer *w)
{
    static const char header[PROTO_HEADER_SIZE] = {0};

    msgpack_sbuffer_init(&w->sbuf);
    w->failed = 0;
    msgpack_packer_init(&w->pk, w, writer_write);
    /* Room for the header, filled in by finish. */
    (void)writer_write(w, header, sizeof(header));
}

int
proto_writer_finish(struct proto_writer *w, char **data, size_t *len)
{
    size_t payload;

    if (w->failed || w->sbuf.data == NULL || w->sbuf.size < PROTO_HEADER_SIZE)
        return -E_NOMEM;
    payload = w->sbuf.size - PROTO_HEADER_SIZE;
    if (payload > PROTO_MAX_FRAME)
        return -E_TOO_BIG;
    w->sbuf.data[0] = (char)((payload >> 24) & 0xff);
    w->sbuf.data[1] = (char)((payload >> 16) & 0xff);
    w->sbuf.data[2] = (char)((payload >> 8) & 0xff);
    w->sbuf.data[3] = (char)(payload & 0xff);
    *len = w->sbuf.size;
    *data = msgpack_sbuffer_release(&w->sbuf);
    return 0;
}

void
proto_writer_destroy(struct proto_writer *w)
{
    if (w->sbuf.data != NULL)
        OPENSSL_cleanse(w->sbuf.data, w->sbuf.size);
    msgpack_sbuffer_destroy(&w->sbuf);
}

void
proto_pack_strn(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

void
proto_pack_str(msgpack_packer *pk, const char *s)
{
    if (s == NULL)
        s = "";
    proto_pack_strn(pk, s, strlen(s));
}

void
proto_pack_kv_str(msgpack_packer *pk, const char *key, const char *value)
{
    proto_pack_str(pk, key);
    proto_pack_str(pk, value);
}

void
proto_pack_kv_int(msgpack_packer *pk, const char *key, int64_t value)
{
    proto_pack_str(pk, key);
    msgpack_pack_int64(pk, value);
}

void
proto_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t value)
{
    proto_pack_str(pk, key);
    msgpack_pack_uint64(pk, value);
}

void
proto_pack_kv_bool(msgpack_packer *pk, const char *key, int value)
{
    proto_pack_str(pk, key);
    if (value)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

void
proto_pack_kv_bin(msgpack_packer *pk, const char *key, const void *data, size_t len)
{
    proto_pack_str(pk, key);
    msgpack_pack_bin(pk, len);
    msgpack_pack_bin_body(pk, data, len);
}

void
proto_pack_kv_nil(msgpack_packer *pk, const char *key)
{
    proto_pack_str(pk, key);
    msgpack_pack_nil(pk);
}

void
proto_pack_str_array(msgpack_packer *pk, char *const *items, size_t n)
{
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        proto_pack_str(pk, items[i]);
}

void
proto_begin_result(msgpack_packer *pk, uint64_t id, size_t n)
{
    msgpack_pack_map(pk, 3);
    proto_pack_kv_uint(pk, "id", id);
    proto_pack_kv_bool(pk, "ok", 1);
    proto_pack_str(pk, "result");
    msgpack_pack_map(pk, n);
}

void
proto_pack_error(msgpack_packer *pk, uint64_t id, int code, const char *message,
                 const char *detail)
{
    msgpack_pack_map(pk, 3);
    proto_pack_kv_uint(pk, "id", id);
    proto_pack_kv_bool(pk, "ok", 0);
    proto_pack_str(pk, "error");
    msgpack_pack_map(pk, 3);
    proto_pack_kv_str(pk, "code", err_name(code));
    proto_pack_kv_str(pk, "message", message != NULL ? message : err_message(code));
    if (detail != NULL)
        proto_pack_kv_str(pk, "detail", detail);
    else
        proto_pack_kv_nil(pk, "detail");
}

/* Reading. */

void
proto_msg_free(struct proto_msg *msg)
{
    if (msg->raw != NULL)
        OPENSSL_cleanse(msg->raw, msg->raw_len);
    msg->raw = NULL;
    msg->raw_len = 0;
    msgpack_zone_destroy(&msg->zone);
}

static uint64_t
be_read(const unsigned char *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/*
 * Walks one msgpack object in p[0..len) without allocating, checking that
 * every declared length fits in the bytes present and that nesting stays
 * within PROTO_MAX_DEPTH.  Returns the object's size in bytes, or 0 when
 * invalid.
 */
static size_t
check_msgpack(const unsigned char *p, size_t len)
{
    /* Objects still to read at each open container level. */
    uint64_t pending[PROTO_MAX_DEPTH + 1];
    int depth = 0;
    size_t off = 0;

    pending[0] = 1;
    while (depth >= 0) {
        unsigned char b;
        uint64_t body = 0, count = 0;
        size_t head = 1;
        int container = 0;

        if (pending[depth] == 0) {
            depth--;
            continue;
        }
        pending[depth]--;
        if (off >= len)
            return 0;
        b = p[off];
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, nil, bool */
        } else if (b >= 0x80 && b <= 0x8f) {
            count = (uint64_t)(b & 0x0f) * 2;
            container = 1;
        } else if (b >= 0x90 && b <= 0x9f) {
            count = b & 0x0f;
            container = 1;
        } else if (b >= 0xa0 && b <= 0xbf) {
            body = b & 0x1f;
        } else {
            size_t n;

            switch (b) {
            case 0xc4:
            case 0xc5:
            case 0xc6: /* bin 8/16/32 */
            case 0xd9:
            case 0xda:
            case 0xdb: /* str 8/16/32 */
                n = (b == 0xc4 || b == 0xd9) ? 1 : (b == 0xc5 || b == 0xda) ? 2 : 4;
                if (len - off < 1 + n)
                    return 0;
                body = be_read(p + off + 1, n);
                head = 1 + n;
                break;
            case 0xc7:
            case 0xc8:
            case 0xc9: /* ext 8/16/32: length, type */
                n = b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4;
                if (len - off < 1 + n)
                    return 0;
                body = be_read(p + off + 1, n) + 1;
                head = 1 + n;
                break;
            case 0xca:
                body = 4;
                break;
            case 0xcb:
                body = 8;
                break;
            case 0xcc:
            case 0xd0:
                body = 1;
                break;
            case 0xcd:
            case 0xd1:
                body = 2;
                break;
            case 0xce:
            case 0xd2:
                body = 4;
                break;
            case 0xcf:
            case 0xd3:
                body = 8;
                break;
            case 0xd4:
                body = 2;
                break; /* fixext 1 + type */
            case 0xd5:
                body = 3;
                break;
            case 0xd6:
                body = 5;
                break;
            case 0xd7:
                body = 9;
                break;
            case 0xd8:
                body = 17;
                break;
            case 0xdc:
            case 0xdd:
            case 0xde:
            case 0xdf: /* array/map 16/32 */
                n = (b == 0xdc || b == 0xde) ? 2 : 4;
                if (len - off < 1 + n)
                    return 0;
                count = be_read(p + off + 1, n);
                if (b == 0xde || b == 0xdf)
                    count *= 2;
                head = 1 + n;
                container = 1;
                break;
            default: /* 0xc1 is never used */
                return 0;
            }
        }
        if (len - off < head || len - off - head < body)
            return 0;
        off += head + (size_t)body;
        if (container && count > 0) {
            /* Each element takes at least one byte: a count beyond the bytes left is a lie. */
            if (count > len - off || depth + 1 > PROTO_MAX_DEPTH)
                return 0;
            pending[++depth] = count;
        }
    }
    return off;
}

int
proto_decode(const char *payload, size_t len, struct proto_msg *msg, char **cause)
{
    size_t used, off = 0;
    msgpack_unpack_return ret;
    char *copy;

    if (len == 0) {
        err_set(cause, "empty frame");
        return -E_PROTO;
    }
    used = check_msgpack((const unsigned char *)payload, len);
    if (used == 0) {
        err_set(cause, "frame is not valid msgpack (bad length, type or nesting)");
        return -E_PROTO;
    }
    if (used != len) {
        err_set(cause, "frame has %zu bytes after its message", len - used);
        return -E_PROTO;
    }
    if (!msgpack_zone_init(&msg->zone, 2048))
        return -E_NOMEM;
    /*
     * msgpack-c points strings and bins into the buffer it unpacks: unpack a
     * copy held by the zone, so that a message outlives the reader's buffer.
     */
    if ((copy = msgpack_zone_malloc(&msg->zone, len)) == NULL) {
        msgpack_zone_destroy(&msg->zone);
        return -E_NOMEM;
    }
    memcpy(copy, payload, len);
    msg->raw = copy;
    msg->raw_len = len;
    ret = msgpack_unpack(copy, len, &off, &msg->zone, &msg->root);
    if (ret != MSGPACK_UNPACK_SUCCESS) {
        proto_msg_free(msg);
        err_set(cause, ret == MSGPACK_UNPACK_NOMEM_ERROR ? "out of memory decoding frame"
                                                         : "frame is not valid msgpack");
        return ret == MSGPACK_UNPACK_NOMEM_ERROR ? -E_NOMEM : -E_PROTO;
    }
    if (msg->root.type != MSGPACK_OBJECT_MAP) {
        proto_msg_free(msg);
        err_set(cause, "frame does not hold a map");
        return -E_PROTO;
    }
    return 0;
}

void
proto_reader_init(struct proto_reader *r)
{
    memset(r, 0, sizeof(*r));
}

/* Frees the reader's buffer, wiping the bytes it holds (consumed ones are wiped already). */
static void
reader_release(struct proto_reader *r)
{
    if (r->buf != NULL)
        OPENSSL_cleanse(r->buf, r->len);
    free(r->buf);
    r->buf = NULL;
    r->len = r->off = r->cap = 0;
}

/*
 * Appends len bytes.  The buffer holds what has not been consumed, and only
 * that: consumed frames are wiped by next, bytes moved to the front are wiped
 * where they were, and a grown buffer is a copy whose old one is wiped (no
 * realloc, which would leave a copy in freed memory).
 */
int
proto_reader_feed(struct proto_reader *r, const char *data, size_t len)
{
    size_t held = r->len - r->off, need, cap;
    char *nbuf;

    if (r->off > 0 && (r->off == r->len || r->len + len > r->cap)) {
        memmove(r->buf, r->buf + r->off, held);
        OPENSSL_cleanse(r->buf + held, r->len - held);
        r->len = held;
        r->off = 0;
    }
    need = r->len + len;
    if (need > r->cap) {
        cap = r->cap ? r->cap : 4096;
        while (cap < need)
            cap *= 2;
        /* A frame whose header is here needs no more than its own size. */
        if (r->len >= PROTO_HEADER_SIZE) {
            uint64_t frame =
                PROTO_HEADER_SIZE + be_read((const unsigned char *)r->buf, PROTO_HEADER_SIZE);

            if (frame <= PROTO_HEADER_SIZE + PROTO_MAX_FRAME && frame < cap && frame >= need)
                cap = (size_t)frame;
        }
        /* Never hold more than one maximal frame plus one read's worth. */
        if (cap > 2 * (PROTO_MAX_FRAME + PROTO_HEADER_SIZE) + len)
            cap = need;
        if ((nbuf = malloc(cap)) == NULL)
            return -E_NOMEM;
        if (r->len > 0)
            memcpy(nbuf, r->buf, r->len);
        reader_release(r);
        r->buf = nbuf;
        r->len = need - len;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    return 0;
}

int
proto_reader_next(struct proto_reader *r, struct proto_msg *msg, char **cause)
{
    size_t avail = r->len - r->off;
    uint64_t flen;
    int rc;

    if (avail < PROTO_HEADER_SIZE)
        return 0;
    flen = be_read((const unsigned char *)r->buf + r->off, PROTO_HEADER_SIZE);
    if (flen > PROTO_MAX_FRAME) {
        err_set(cause, "frame of %llu bytes exceeds the %d byte limit", (unsigned long long)flen,
                PROTO_MAX_FRAME);
        return -E_TOO_BIG;
    }
    if (avail - PROTO_HEADER_SIZE < flen)
        return 0;
    rc = proto_decode(r->buf + r->off + PROTO_HEADER_SIZE, (size_t)flen, msg, cause);
    OPENSSL_cleanse(r->buf + r->off, PROTO_HEADER_SIZE + (size_t)flen);
    r->off += PROTO_HEADER_SIZE + (size_t)flen;
    if (r->off == r->len) {
        r->off = r->len = 0;
        if (r->cap > PROTO_READER_KEEP)
            reader_release(r);
    }
    return rc < 0 ? rc : 1;
}

size_t
proto_reader_pending(const struct proto_reader *r)
{
    return r->len - r->off;
}

void
proto_reader_destroy(struct proto_reader *r)
{
    reader_release(r);
}

/* Access. */

const msgpack_object *
proto_get(const msgpack_object *map, const char *key)
{
    size_t klen = strlen(key);

    if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];

        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == klen &&
            (klen == 0 || memcmp(kv->key.via.str.ptr, key, klen) == 0))
            return &kv->val;
    }
    return NULL;
}

static const msgpack_object *
get_present(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = proto_get(map, key);

    return (o == NULL || o->type == MSGPACK_OBJECT_NIL) ? NULL : o;
}

int
proto_get_str(const msgpack_object *map, const char *key, const char **s, size_t *len)
{
    const msgpack_object *o = get_present(map, key);

    if (o == NULL)
        return -E_NOT_FOUND;
    if (o->type != MSGPACK_OBJECT_STR)
        return -E_BAD_INPUT;
    *s = o->via.str.ptr;
    *len = o->via.str.size;
    return 0;
}

int
proto_get_uint(const msgpack_object *map, const char *key, uint64_t *v)
{
    const msgpack_object *o = get_present(map, key);

    if (o == NULL)
        return -E_NOT_FOUND;
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -E_BAD_INPUT;
    *v = o->via.u64;
    return 0;
}

int
proto_get_int(const msgpack_object *map, const char *key, int64_t *v)
{
    const msgpack_object *o = get_present(map, key);

    if (o == NULL)
        return -E_NOT_FOUND;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > INT64_MAX)
        return -E_BAD_INPUT;
    *v = (int64_t)o->via.u64;
    return 0;
}

int
proto_get_bool(const msgpack_object *map, const char *key, int *v)
{
    const msgpack_object *o = get_present(map, key);

    if (o == NULL)
        return -E_NOT_FOUND;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return -E_BAD_INPUT;
    *v = o->via.boolean ? 1 : 0;
    return 0;
}

int
proto_get_bin(const msgpack_object *map, const char *key, const char **p, size_t *len)
{
    const msgpack_object *o = get_present(map, key);

    if (o == NULL)
        return -E_NOT_FOUND;
    if (o->type == MSGPACK_OBJECT_BIN) {
        *p = o->via.bin.ptr;
        *len = o->via.bin.size;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_STR) {
        *p = o->via.str.ptr;
        *len = o->via.str.size;
        return 0;
    }
    return -E_BAD_INPUT;
}

int
proto_get_array(const msgpack_object *map, const char *key, const msgpack_object_array **a)
{
    const msgpack_object *o = get_present(map, key);

    if (o == NULL)
        return -E_NOT_FOUND;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return -E_BAD_INPUT;
    *a = &o->via.array;
    return 0;
}

int
proto_get_map(const msgpack_object *map, const char *key, const msgpack_object **m)
{
    const msgpack_object *o = get_present(map, key);

    if (o == NULL)
        return -E_NOT_FOUND;
    if (o->type != MSGPACK_OBJECT_MAP)
        return -E_BAD_INPUT;
    *m = o;
    return 0;
}

int
proto_strdup(const msgpack_object *o, char **out)
{
    char *s;

    if (o == NULL || o->type != MSGPACK_OBJECT_STR)
        return -E_BAD_INPUT;
    /* msgpack-c leaves ptr NULL for an empty string: no memchr/memcpy on it (UB). */
    if (o->via.str.size > 0 && memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
        return -E_BAD_INPUT;
    if ((s = malloc((size_t)o->via.str.size + 1)) == NULL)
        return -E_NOMEM;
    if (o->via.str.size > 0)
        memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = '\0';
    *out = s;
    return 0;
}

int
proto_get_strdup(const msgpack_object *map, const char *key, char **out)
{
    const msgpack_object *o = get_present(map, key);

    if (o == NULL)
        return -E_NOT_FOUND;
    return proto_strdup(o, out);
}

int
proto_str_eq(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);

    return o != NULL && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           (n == 0 || memcmp(o->via.str.ptr, s, n) == 0);
}

static cJSON *
json_string_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    cJSON *j;

    if (s == NULL)
        return NULL;
    if (n > 0)
        memcpy(s, p, n);
    s[n] = '\0';
    j = cJSON_CreateString(s);
    free(s);
    return j;
}

cJSON *
proto_to_json(const msgpack_object *o)
{
    cJSON *j = NULL;

    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return cJSON_CreateNull();
    case MSGPACK_OBJECT_BOOLEAN:
        return cJSON_CreateBool(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return cJSON_CreateNumber((double)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return cJSON_CreateNumber((double)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return cJSON_CreateNumber(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return json_string_n(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: {
        size_t n = 4 * ((o->via.bin.size + 2) / 3) + 1;
        unsigned char *b64 = malloc(n);

        if (b64 == NULL)
            return NULL;
        EVP_EncodeBlock(b64, (const unsigned char *)o->via.bin.ptr, (int)o->via.bin.size);
        j = cJSON_CreateString((char *)b64);
        free(b64);
        return j;
    }
    case MSGPACK_OBJECT_ARRAY:
        if ((j = cJSON_CreateArray()) == NULL)
            return NULL;
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            cJSON *item = proto_to_json(&o->via.array.ptr[i]);

            if (item == NULL) {
                cJSON_Delete(j);
                return NULL;
            }
            cJSON_AddItemToArray(j, item);
        }
        return j;
    case MSGPACK_OBJECT_MAP:
        if ((j = cJSON_CreateObject()) == NULL)
            return NULL;
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            cJSON *item;
            char *key = NULL;

            if (proto_strdup(&kv->key, &key) != 0)
                continue;
            if ((item = proto_to_json(&kv->val)) == NULL) {
                free(key);
                cJSON_Delete(j);
                return NULL;
            }
            cJSON_AddItemToObject(j, key, item);
            free(key);
        }
        return j;
    default:
        return cJSON_CreateNull();
    }
}

void
proto_pack_json(msgpack_packer *pk, const cJSON *j)
{
    const cJSON *c;
    size_t n = 0;

    if (j == NULL || cJSON_IsNull(j) || cJSON_IsInvalid(j)) {
        msgpack_pack_nil(pk);
    } else if (cJSON_IsBool(j)) {
        if (cJSON_IsTrue(j))
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
    } else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;

        if (d == (double)(int64_t)d)
            msgpack_pack_int64(pk, (int64_t)d);
        else
            msgpack_pack_double(pk, d);
    } else if (cJSON_IsString(j)) {
        proto_pack_str(pk, j->valuestring);
    } else if (cJSON_IsArray(j)) {
        cJSON_ArrayForEach(c, j) n++;
        msgpack_pack_array(pk, n);
        cJSON_ArrayForEach(c, j) proto_pack_json(pk, c);
    } else if (cJSON_IsObject(j)) {
        cJSON_ArrayForEach(c, j) n++;
        msgpack_pack_map(pk, n);
        cJSON_ArrayForEach(c, j)
        {
            proto_pack_str(pk, c->string != NULL ? c->string : "");
            proto_pack_json(pk, c);
        }
    } else {
        msgpack_pack_nil(pk);
    }
}
