/* Frame codec: what the agent must survive from any peer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "err.h"
#include "proto.h"

/* Builds a request frame {id, op, args:{name}}. */
static char *
make_request(uint64_t id, const char *op, const char *name, size_t *len)
{
    struct proto_writer w;
    char *data = NULL;

    proto_writer_init(&w);
    msgpack_pack_map(&w.pk, 3);
    proto_pack_kv_uint(&w.pk, "id", id);
    proto_pack_kv_str(&w.pk, "op", op);
    proto_pack_str(&w.pk, "args");
    msgpack_pack_map(&w.pk, 1);
    proto_pack_kv_str(&w.pk, "name", name);
    assert_int_equal(proto_writer_finish(&w, &data, len), 0);
    proto_writer_destroy(&w);
    return data;
}

/* A frame around an arbitrary payload. */
static char *
frame(const void *payload, size_t n, size_t *len)
{
    char *f = malloc(n + 4);

    f[0] = (char)(n >> 24);
    f[1] = (char)(n >> 16);
    f[2] = (char)(n >> 8);
    f[3] = (char)n;
    memcpy(f + 4, payload, n);
    *len = n + 4;
    return f;
}

static void
test_roundtrip(void **state)
{
    struct proto_reader r;
    struct proto_msg msg;
    size_t len;
    char *data = make_request(7, "show", "web", &len);
    uint64_t id = 0;
    const msgpack_object *args;
    char *name = NULL;

    (void)state;
    proto_reader_init(&r);
    assert_int_equal(proto_reader_feed(&r, data, len), 0);
    assert_int_equal(proto_reader_next(&r, &msg, NULL), 1);
    assert_int_equal(proto_get_uint(&msg.root, "id", &id), 0);
    assert_int_equal(id, 7);
    assert_true(proto_str_eq(proto_get(&msg.root, "op"), "show"));
    assert_int_equal(proto_get_map(&msg.root, "args", &args), 0);
    assert_int_equal(proto_get_strdup(args, "name", &name), 0);
    assert_string_equal(name, "web");
    free(name);
    proto_msg_free(&msg);
    assert_int_equal(proto_reader_next(&r, &msg, NULL), 0);
    assert_int_equal(proto_reader_pending(&r), 0);
    proto_reader_destroy(&r);
    free(data);
}

static void
test_byte_by_byte_and_pipelined(void **state)
{
    struct proto_reader r;
    struct proto_msg msg;
    size_t l1, l2;
    char *a = make_request(1, "ping", "a", &l1), *b = make_request(2, "list", "b", &l2);
    char *both = malloc(l1 + l2);
    int got = 0;

    (void)state;
    memcpy(both, a, l1);
    memcpy(both + l1, b, l2);
    proto_reader_init(&r);
    for (size_t i = 0; i < l1 + l2; i++) {
        int rc;

        assert_int_equal(proto_reader_feed(&r, both + i, 1), 0);
        while ((rc = proto_reader_next(&r, &msg, NULL)) == 1) {
            uint64_t id = 0;

            assert_int_equal(proto_get_uint(&msg.root, "id", &id), 0);
            assert_int_equal(id, (uint64_t)++got);
            proto_msg_free(&msg);
        }
        assert_int_equal(rc, 0);
        /* Partial frames are reported as pending. */
        if (i + 1 < l1)
            assert_int_equal(proto_reader_pending(&r), i + 1);
    }
    assert_int_equal(got, 2);
    proto_reader_destroy(&r);
    free(a);
    free(b);
    free(both);
}

/* Does buf[0..n) hold needle anywhere? */
static int
holds(const char *buf, size_t n, const char *needle)
{
    size_t k = strlen(needle);

    for (size_t i = 0; buf != NULL && i + k <= n; i++) {
        if (memcmp(buf + i, needle, k) == 0)
            return 1;
    }
    return 0;
}

/*
 * Frames carry passwords: the reader wipes a frame as soon as it is consumed,
 * and wipes bytes it moves to the front of its buffer; a buffer grown for a
 * large frame is freed once empty.
 */
static void
test_reader_wipes_consumed_frames(void **state)
{
    struct proto_reader r;
    struct proto_msg msg;
    size_t l1, l2;
    char *a = make_request(1, "import", "secret-one", &l1);
    char *b = make_request(2, "import", "secret-two", &l2);
    char *big = malloc(200000);

    (void)state;
    proto_reader_init(&r);
    /* The first frame and half of the second in one feed. */
    assert_int_equal(proto_reader_feed(&r, a, l1), 0);
    assert_int_equal(proto_reader_feed(&r, b, l2 / 2), 0);
    assert_int_equal(proto_reader_next(&r, &msg, NULL), 1);
    assert_true(holds(msg.raw, msg.raw_len, "secret-one"));
    proto_msg_free(&msg);
    assert_null(msg.raw);
    assert_false(holds(r.buf, r.cap, "secret-one"));
    /* The rest of the second: its first half moves to the front, where it was is wiped. */
    assert_int_equal(proto_reader_feed(&r, b + l2 / 2, l2 - l2 / 2), 0);
    assert_int_equal(proto_reader_next(&r, &msg, NULL), 1);
    proto_msg_free(&msg);
    assert_false(holds(r.buf, r.cap, "secret-two"));
    assert_int_equal(proto_reader_pending(&r), 0);
    /* A large frame grows the buffer; it is given back once consumed. */
    memset(big, 'x', 199999);
    big[199999] = '\0';
    free(a);
    a = make_request(3, "import", big, &l1);
    assert_int_equal(proto_reader_feed(&r, a, l1 / 2), 0);
    assert_int_equal(proto_reader_next(&r, &msg, NULL), 0);
    assert_true(r.cap > PROTO_READER_KEEP);
    assert_int_equal(proto_reader_feed(&r, a + l1 / 2, l1 - l1 / 2), 0);
    assert_int_equal(proto_reader_next(&r, &msg, NULL), 1);
    proto_msg_free(&msg);
    assert_null(r.buf);
    assert_int_equal(r.cap, 0);
    proto_reader_destroy(&r);
    free(a);
    free(b);
    free(big);
}

static void
test_truncated_frame_waits(void **state)
{
    struct proto_reader r;
    struct proto_msg msg;
    size_t len;
    char *data = make_request(3, "ping", "x", &len);

    (void)state;
    proto_reader_init(&r);
    proto_reader_feed(&r, data, len - 1);
    assert_int_equal(proto_reader_next(&r, &msg, NULL), 0);
    assert_int_equal(proto_reader_pending(&r), len - 1);
    proto_reader_destroy(&r);
    free(data);
}

static void
test_oversized_frame_refused(void **state)
{
    struct proto_reader r;
    struct proto_msg msg;
    char *cause = NULL;
    unsigned char hdr[4] = {0x00, 0x10, 0x00, 0x01}; /* 1 MiB + 1 */

    (void)state;
    proto_reader_init(&r);
    proto_reader_feed(&r, (char *)hdr, 4);
    assert_int_equal(proto_reader_next(&r, &msg, &cause), -E_TOO_BIG);
    assert_non_null(strstr(cause, "exceeds"));
    free(cause);
    proto_reader_destroy(&r);
}

static void
test_exactly_max_frame_accepted(void **state)
{
    /* A map {"b": bin of the right size} of exactly PROTO_MAX_FRAME bytes. */
    size_t body = PROTO_MAX_FRAME - 1 - 2 - 5;
    unsigned char *p = malloc(PROTO_MAX_FRAME);
    struct proto_msg msg;
    size_t len;
    char *f;
    struct proto_reader r;

    (void)state;
    p[0] = 0x81;
    p[1] = 0xa1;
    p[2] = 'b';
    p[3] = 0xc6;
    p[4] = (unsigned char)(body >> 24);
    p[5] = (unsigned char)(body >> 16);
    p[6] = (unsigned char)(body >> 8);
    p[7] = (unsigned char)body;
    memset(p + 8, 'x', body);
    f = frame(p, PROTO_MAX_FRAME, &len);
    proto_reader_init(&r);
    proto_reader_feed(&r, f, len);
    assert_int_equal(proto_reader_next(&r, &msg, NULL), 1);
    proto_msg_free(&msg);
    proto_reader_destroy(&r);
    free(f);
    free(p);
}

static int
decode_payload(const void *payload, size_t n, char **cause)
{
    struct proto_msg msg;
    int rc = proto_decode(payload, n, &msg, cause);

    if (rc == 0)
        proto_msg_free(&msg);
    return rc;
}

static void
test_malformed_payloads(void **state)
{
    static const unsigned char not_map[] = {0x93, 0x01, 0x02, 0x03};
    static const unsigned char trailing[] = {0x80, 0x00};
    static const unsigned char reserved[] = {0xc1};
    static const unsigned char short_str[] = {0x81, 0xa5, 'a', 'b'};
    /* array32 claiming 4 billion elements in a few bytes */
    static const unsigned char huge_array[] = {0x81, 0xa1, 'a',  0xdd, 0xff,
                                               0xff, 0xff, 0xff, 0x01};
    /* map32 claiming 2^31 pairs */
    static const unsigned char huge_map[] = {0xdf, 0x80, 0x00, 0x00, 0x00, 0xc0, 0xc0};
    static const unsigned char huge_bin[] = {0x81, 0xa1, 'a', 0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00};
    unsigned char deep[64];
    char *cause = NULL;

    (void)state;
    assert_int_equal(decode_payload(not_map, sizeof(not_map), &cause), -E_PROTO);
    assert_non_null(strstr(cause, "map"));
    assert_int_equal(decode_payload(trailing, sizeof(trailing), &cause), -E_PROTO);
    assert_non_null(strstr(cause, "after"));
    assert_int_equal(decode_payload(reserved, sizeof(reserved), &cause), -E_PROTO);
    assert_int_equal(decode_payload(short_str, sizeof(short_str), &cause), -E_PROTO);
    assert_int_equal(decode_payload(huge_array, sizeof(huge_array), &cause), -E_PROTO);
    assert_int_equal(decode_payload(huge_map, sizeof(huge_map), &cause), -E_PROTO);
    assert_int_equal(decode_payload(huge_bin, sizeof(huge_bin), &cause), -E_PROTO);
    assert_int_equal(decode_payload("", 0, &cause), -E_PROTO);
    assert_non_null(strstr(cause, "empty"));
    /* 1 map + 62 nested arrays: deeper than PROTO_MAX_DEPTH. */
    deep[0] = 0x81;
    deep[1] = 0xa1;
    deep[2] = 'd';
    memset(deep + 3, 0x91, sizeof(deep) - 4);
    deep[sizeof(deep) - 1] = 0x01;
    assert_int_equal(decode_payload(deep, sizeof(deep), &cause), -E_PROTO);
    free(cause);
}

static void
test_random_bytes_never_crash(void **state)
{
    unsigned char buf[64];
    unsigned seed = 12345;

    (void)state;
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)(i % 63) + 1;
        struct proto_msg msg;

        for (size_t j = 0; j < n; j++) {
            seed = seed * 1103515245u + 12345u;
            buf[j] = (unsigned char)(seed >> 16);
        }
        if (proto_decode((char *)buf, n, &msg, NULL) == 0) {
            assert_int_equal(msg.root.type, MSGPACK_OBJECT_MAP);
            proto_msg_free(&msg);
        }
    }
}

static void
test_typed_getters(void **state)
{
    struct proto_writer w;
    struct proto_msg msg;
    char *data = NULL;
    size_t len = 0;
    const char *s;
    size_t slen;
    uint64_t u;
    int64_t i;
    int b;
    char *dup = NULL;
    static const char nul_str[] = {'a', '\0', 'b'};

    (void)state;
    proto_writer_init(&w);
    msgpack_pack_map(&w.pk, 6);
    proto_pack_kv_str(&w.pk, "s", "text");
    proto_pack_kv_int(&w.pk, "neg", -5);
    proto_pack_kv_uint(&w.pk, "u", 42);
    proto_pack_kv_bool(&w.pk, "b", 1);
    proto_pack_kv_nil(&w.pk, "nil");
    proto_pack_str(&w.pk, "nul");
    proto_pack_strn(&w.pk, nul_str, sizeof(nul_str));
    assert_int_equal(proto_writer_finish(&w, &data, &len), 0);
    proto_writer_destroy(&w);
    assert_int_equal(proto_decode(data + 4, len - 4, &msg, NULL), 0);

    assert_int_equal(proto_get_str(&msg.root, "s", &s, &slen), 0);
    assert_int_equal(slen, 4);
    assert_int_equal(proto_get_uint(&msg.root, "s", &u), -E_BAD_INPUT);
    assert_int_equal(proto_get_uint(&msg.root, "neg", &u), -E_BAD_INPUT);
    assert_int_equal(proto_get_int(&msg.root, "neg", &i), 0);
    assert_int_equal(i, -5);
    assert_int_equal(proto_get_int(&msg.root, "u", &i), 0);
    assert_int_equal(i, 42);
    assert_int_equal(proto_get_bool(&msg.root, "b", &b), 0);
    assert_true(b);
    assert_int_equal(proto_get_bool(&msg.root, "u", &b), -E_BAD_INPUT);
    assert_int_equal(proto_get_str(&msg.root, "nil", &s, &slen), -E_NOT_FOUND);
    assert_int_equal(proto_get_str(&msg.root, "absent", &s, &slen), -E_NOT_FOUND);
    assert_int_equal(proto_get_strdup(&msg.root, "nul", &dup), -E_BAD_INPUT);
    assert_null(proto_get(&msg.root, "S"));
    proto_msg_free(&msg);
    free(data);
}

static void
test_ops_and_errors(void **state)
{
    (void)state;
    assert_int_equal(proto_op_from_name("import", 6), PROTO_OP_IMPORT);
    assert_int_equal(proto_op_from_name("imp", 3), PROTO_OP_NONE);
    assert_int_equal(proto_op_from_name("bogus", 5), PROTO_OP_NONE);
    assert_string_equal(proto_op_name(PROTO_OP_ROLLBACK), "rollback");
    assert_null(proto_op_name((enum proto_op)99));
    assert_string_equal(err_name(-E_NOT_FOUND), "E_NOT_FOUND");
    assert_string_equal(err_name(E_DENIED), "E_DENIED");
    assert_int_equal(err_from_name("E_BUSY", 6), E_BUSY);
    assert_int_equal(err_from_name("E_NOPE", 6), -1);
    assert_string_equal(err_name(999), "E_INTERNAL");
}

static void
test_writer_refuses_too_big(void **state)
{
    struct proto_writer w;
    char *data = NULL, *big = malloc(PROTO_MAX_FRAME);
    size_t len = 0;

    (void)state;
    memset(big, 'a', PROTO_MAX_FRAME);
    proto_writer_init(&w);
    msgpack_pack_map(&w.pk, 1);
    proto_pack_kv_bin(&w.pk, "x", big, PROTO_MAX_FRAME);
    assert_int_equal(proto_writer_finish(&w, &data, &len), -E_TOO_BIG);
    proto_writer_destroy(&w);
    free(big);
}

static void
test_error_envelope_and_json(void **state)
{
    struct proto_writer w;
    struct proto_msg msg;
    char *data = NULL;
    size_t len = 0;
    cJSON *j;
    char *text;

    (void)state;
    proto_writer_init(&w);
    proto_pack_error(&w.pk, 9, -E_NOT_FOUND, "no certificate named 'x'", NULL);
    assert_int_equal(proto_writer_finish(&w, &data, &len), 0);
    proto_writer_destroy(&w);
    assert_int_equal(proto_decode(data + 4, len - 4, &msg, NULL), 0);
    j = proto_to_json(&msg.root);
    text = cJSON_PrintUnformatted(j);
    assert_string_equal(text, "{\"id\":9,\"ok\":false,\"error\":{\"code\":\"E_NOT_FOUND\","
                              "\"message\":\"no certificate named 'x'\",\"detail\":null}}");
    free(text);
    cJSON_Delete(j);
    proto_msg_free(&msg);
    free(data);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_byte_by_byte_and_pipelined),
        cmocka_unit_test(test_truncated_frame_waits),
        cmocka_unit_test(test_oversized_frame_refused),
        cmocka_unit_test(test_exactly_max_frame_accepted),
        cmocka_unit_test(test_malformed_payloads),
        cmocka_unit_test(test_random_bytes_never_crash),
        cmocka_unit_test(test_typed_getters),
        cmocka_unit_test(test_ops_and_errors),
        cmocka_unit_test(test_writer_refuses_too_big),
        cmocka_unit_test(test_reader_wipes_consumed_frames),
        cmocka_unit_test(test_error_envelope_and_json),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
