/*
 * The real certagent against hostile and careless peers: garbage, oversized
 * and truncated frames, no hello, wrong protocol, unknown ops, pipelining,
 * disconnects mid-request.  After each, a well-behaved client is still served.
 * Also: readiness, a second agent on the same socket, stale sockets, SIGTERM.
 * The same cases run on Windows (a named pipe, under Wine in CI); the few
 * about the socket file are skipped there with the reason printed.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agentproc.h"
#include "err.h"

#ifndef S_ISSOCK
/* Windows has no socket files; test_socket_mode is skipped there before using it. */
#define S_ISSOCK(mode) 0
#endif

static const char *agent_bin;

struct fixture {
    struct agentproc agent;
    int good; /* a well-behaved connection kept open throughout */
};

static void
expect_ok_reply(int fd, uint64_t id)
{
    struct proto_msg msg;
    uint64_t got = 0;
    int ok = 0;

    assert_int_equal(agentproc_read(fd, &msg, 5000), 1);
    assert_int_equal(proto_get_uint(&msg.root, "id", &got), 0);
    assert_int_equal(got, id);
    assert_int_equal(proto_get_bool(&msg.root, "ok", &ok), 0);
    assert_true(ok);
    proto_msg_free(&msg);
}

/* Reads an error reply and returns its code name in buf. */
static void
expect_error(int fd, const char *code)
{
    struct proto_msg msg;
    const msgpack_object *err;
    int ok = 1;

    assert_int_equal(agentproc_read(fd, &msg, 5000), 1);
    assert_int_equal(proto_get_bool(&msg.root, "ok", &ok), 0);
    assert_false(ok);
    assert_int_equal(proto_get_map(&msg.root, "error", &err), 0);
    if (!proto_str_eq(proto_get(err, "code"), code)) {
        char *got = NULL;

        proto_get_strdup(err, "code", &got);
        fail_msg("expected %s, got %s", code, got ? got : "?");
    }
    proto_msg_free(&msg);
}

static void
still_served(struct fixture *f, uint64_t id)
{
    assert_int_equal(agentproc_send_simple(f->good, id, "ping"), 0);
    expect_ok_reply(f->good, id);
}

/* Skips the current test when the socket is no file (a named pipe), saying why. */
static int
skipped_without_socket_file(void)
{
    const char *why = agentproc_no_socket_file();

    if (why == NULL)
        return 0;
    print_message("skipped: %s\n", why);
    return 1;
}

/* 1 if the file at path contains text. */
static int
file_contains(const char *path, const char *text)
{
    static char buf[65536];
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL || agentproc_start(&f->agent, agent_bin, NULL) != 0)
        return -1;
    f->good = agentproc_connect(&f->agent);
    if (f->good < 0 || agentproc_hello(f->good, PROTO_VERSION) != 0)
        return -1;
    expect_ok_reply(f->good, 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    if (f == NULL)
        return -1;
    if (f->good >= 0)
        close(f->good);
    /* After a failed test_clean_stop, or when it did not run. */
    agentproc_kill(&f->agent);
    agentproc_cleanup(&f->agent);
    free(f);
    return 0;
}

static void
test_socket_mode(void **state)
{
    struct fixture *f = *state;
    struct stat st;

    if (skipped_without_socket_file())
        skip();
    assert_int_equal(stat(f->agent.socket, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0660);
}

static void
test_garbage_is_dropped(void **state)
{
    struct fixture *f = *state;
    int fd = agentproc_connect(&f->agent);
    /* A frame header of 8 bytes followed by bytes that are not msgpack. */
    static const unsigned char junk[] = {0,    0,    0,    8,    0xc1, 0xc1,
                                         0xc1, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1};

    assert_true(fd >= 0);
    assert_int_equal(agentproc_write(fd, junk, sizeof(junk)), 0);
    expect_error(fd, "E_PROTO");
    assert_true(agentproc_wait_eof(fd, 5000));
    close(fd);
    still_served(f, 1);
}

static void
test_http_request_is_dropped(void **state)
{
    struct fixture *f = *state;
    int fd = agentproc_connect(&f->agent);
    const char *get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    assert_int_equal(agentproc_write(fd, get, strlen(get)), 0);
    /* "GET " as a length is 1.2 GB: refused as too big. */
    expect_error(fd, "E_TOO_BIG");
    assert_true(agentproc_wait_eof(fd, 5000));
    close(fd);
    still_served(f, 2);
}

static void
test_oversized_frame_is_dropped(void **state)
{
    struct fixture *f = *state;
    int fd = agentproc_connect(&f->agent);
    static const unsigned char hdr[] = {0x00, 0x10, 0x00, 0x01};

    assert_int_equal(agentproc_write(fd, hdr, sizeof(hdr)), 0);
    expect_error(fd, "E_TOO_BIG");
    assert_true(agentproc_wait_eof(fd, 5000));
    close(fd);
    still_served(f, 3);
}

static void
test_truncated_frame_then_disconnect(void **state)
{
    struct fixture *f = *state;
    int fd = agentproc_connect(&f->agent);
    static const unsigned char part[] = {0, 0, 0, 100, 0x83, 0xa2, 'i', 'd'};

    assert_int_equal(agentproc_write(fd, part, sizeof(part)), 0);
    close(fd);
    still_served(f, 4);
}

static void
test_slow_partial_frame_does_not_block_others(void **state)
{
    struct fixture *f = *state;
    int slow = agentproc_connect(&f->agent);
    static const unsigned char part[] = {0, 0, 0, 50, 0x83};

    /* The slow client holds half a frame while another is served. */
    assert_int_equal(agentproc_write(slow, part, sizeof(part)), 0);
    still_served(f, 5);
    close(slow);
}

static void
test_request_before_hello(void **state)
{
    struct fixture *f = *state;
    int fd = agentproc_connect(&f->agent);

    assert_int_equal(agentproc_send_simple(fd, 1, "list"), 0);
    expect_error(fd, "E_PROTO");
    assert_true(agentproc_wait_eof(fd, 5000));
    close(fd);
    still_served(f, 6);
}

static void
test_wrong_protocol_version(void **state)
{
    struct fixture *f = *state;
    int fd = agentproc_connect(&f->agent);

    assert_int_equal(agentproc_hello(fd, PROTO_VERSION + 1), 0);
    expect_error(fd, "E_VERSION");
    assert_true(agentproc_wait_eof(fd, 5000));
    close(fd);
    still_served(f, 7);
}

static void
test_unknown_op_keeps_connection(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(agentproc_send_simple(f->good, 8, "frobnicate"), 0);
    expect_error(f->good, "E_UNKNOWN_OP");
    still_served(f, 9);
}

static void
test_wrong_arg_types(void **state)
{
    struct fixture *f = *state;
    struct proto_writer w;
    char *data = NULL;
    size_t len = 0;

    proto_writer_init(&w);
    msgpack_pack_map(&w.pk, 3);
    proto_pack_kv_uint(&w.pk, "id", 10);
    proto_pack_kv_str(&w.pk, "op", "show");
    proto_pack_str(&w.pk, "args");
    msgpack_pack_map(&w.pk, 1);
    proto_pack_kv_uint(&w.pk, "name", 12);
    assert_int_equal(proto_writer_finish(&w, &data, &len), 0);
    proto_writer_destroy(&w);
    assert_int_equal(agentproc_write(f->good, data, len), 0);
    free(data);
    expect_error(f->good, "E_BAD_INPUT");
    still_served(f, 11);
}

static void
test_map_without_id_is_dropped(void **state)
{
    struct fixture *f = *state;
    int fd = agentproc_connect(&f->agent);
    static const unsigned char frame[] = {0, 0, 0, 1, 0x80}; /* {} */

    assert_int_equal(agentproc_write(fd, frame, sizeof(frame)), 0);
    expect_error(fd, "E_PROTO");
    assert_true(agentproc_wait_eof(fd, 5000));
    close(fd);
    still_served(f, 12);
}

static void
test_pipelined_requests(void **state)
{
    struct fixture *f = *state;
    uint64_t seen[200] = {0};

    for (uint64_t id = 1000; id < 1200; id++)
        assert_int_equal(agentproc_send_simple(f->good, id, id % 2 ? "ping" : "list"), 0);
    for (int i = 0; i < 200;) {
        struct proto_msg msg;
        uint64_t id = 0;

        assert_int_equal(agentproc_read(f->good, &msg, 5000), 1);
        assert_int_equal(proto_get_uint(&msg.root, "id", &id), 0);
        assert_true(id >= 1000 && id < 1200);
        if (proto_get(&msg.root, "event") == NULL) {
            seen[id - 1000]++;
            i++;
        }
        proto_msg_free(&msg);
    }
    for (int i = 0; i < 200; i++)
        assert_int_equal(seen[i], 1);
}

static void
test_disconnect_with_reply_pending(void **state)
{
    struct fixture *f = *state;

    for (int round = 0; round < 20; round++) {
        int fd = agentproc_connect(&f->agent);

        assert_int_equal(agentproc_hello(fd, PROTO_VERSION), 0);
        for (uint64_t id = 1; id <= 50; id++)
            agentproc_send_simple(fd, id, "status");
        close(fd);
    }
    still_served(f, 13);
}

static int
send_selfsigned(int fd, uint64_t id, const char *name, const char *key)
{
    struct proto_writer w;
    char *data = NULL;
    size_t len = 0;
    char *dns[] = {(char *)"busy.test"};
    int rc;

    proto_writer_init(&w);
    msgpack_pack_map(&w.pk, 3);
    proto_pack_kv_uint(&w.pk, "id", id);
    proto_pack_kv_str(&w.pk, "op", "selfsigned");
    proto_pack_str(&w.pk, "args");
    msgpack_pack_map(&w.pk, 3);
    proto_pack_kv_str(&w.pk, "name", name);
    proto_pack_kv_str(&w.pk, "key", key);
    proto_pack_str(&w.pk, "dns");
    proto_pack_str_array(&w.pk, dns, 1);
    rc = proto_writer_finish(&w, &data, &len);
    proto_writer_destroy(&w);
    if (rc == 0)
        rc = agentproc_write(fd, data, len);
    free(data);
    return rc;
}

/*
 * While an RSA 4096 key is generated in the thread pool: a second change to
 * the same name is refused with E_BUSY at once, and status answers before the
 * slow request completes (the loop is never blocked).
 */
static void
test_busy_name_and_loop_free_during_work(void **state)
{
    struct fixture *f = *state;
    int got_status = 0, got_busy = 0, got_done = 0, order = 0, status_at = 0, done_at = 0;

    assert_int_equal(send_selfsigned(f->good, 500, "slow", "rsa4096"), 0);
    assert_int_equal(send_selfsigned(f->good, 501, "slow", "ec256"), 0);
    assert_int_equal(agentproc_send_simple(f->good, 502, "status"), 0);
    while (!got_done || !got_status || !got_busy) {
        struct proto_msg msg;
        uint64_t id = 0;
        int ok = 0;

        assert_int_equal(agentproc_read(f->good, &msg, 60000), 1);
        assert_int_equal(proto_get_uint(&msg.root, "id", &id), 0);
        if (proto_get(&msg.root, "event") != NULL) {
            proto_msg_free(&msg);
            continue;
        }
        order++;
        proto_get_bool(&msg.root, "ok", &ok);
        if (id == 500) {
            assert_true(ok);
            got_done = 1;
            done_at = order;
        } else if (id == 501) {
            const msgpack_object *err = NULL;

            assert_false(ok);
            assert_int_equal(proto_get_map(&msg.root, "error", &err), 0);
            assert_true(proto_str_eq(proto_get(err, "code"), "E_BUSY"));
            got_busy = 1;
        } else if (id == 502) {
            assert_true(ok);
            got_status = 1;
            status_at = order;
        }
        proto_msg_free(&msg);
    }
    assert_true(status_at < done_at);
}

static void
test_second_agent_refused(void **state)
{
    struct fixture *f = *state;
    char other_state[320], log[320];

    /* Same socket, different state directory: refused, live socket untouched. */
    snprintf(other_state, sizeof(other_state), "%s/other", f->agent.dir);
    snprintf(log, sizeof(log), "%s/second.log", f->agent.dir);
    assert_int_equal(agentproc_run_once(&f->agent, agent_bin, f->agent.socket, other_state, log),
                     1);
    assert_true(file_contains(log, "already listening on"));
    still_served(f, 14);
    /* Same state directory, other socket: refused by the store lock. */
    assert_int_equal(
        agentproc_run_once(&f->agent, agent_bin, f->agent.spare_socket, f->agent.state, log), 1);
    assert_true(file_contains(log, "already using the state directory"));
    still_served(f, 15);
}

static void
test_stale_socket_after_kill(void **state)
{
    struct fixture *f = *state;
    struct stat st;

    close(f->good);
    f->good = -1;
    agentproc_kill(&f->agent);
    /* SIGKILL leaves the socket file behind; a killed pipe server takes its pipe along. */
    if (agentproc_no_socket_file() == NULL)
        assert_int_equal(stat(f->agent.socket, &st), 0);
    else
        print_message("no stale file to check (%s): the same pipe name is taken again\n",
                      agentproc_no_socket_file());
    assert_int_equal(agentproc_restart(&f->agent, agent_bin), 0);
    f->good = agentproc_connect(&f->agent);
    assert_true(f->good >= 0);
    assert_int_equal(agentproc_hello(f->good, PROTO_VERSION), 0);
    expect_ok_reply(f->good, 0);
    still_served(f, 16);
}

/*
 * Last: a clean stop (SIGTERM on Unix, CTRL_C on a private console on Windows) exits 0 and the
 * socket is gone.  A test, not the teardown, so that a failure fails the run.
 */
static void
test_clean_stop(void **state)
{
    struct fixture *f = *state;

    close(f->good);
    f->good = -1;
    assert_int_equal(agentproc_stop(&f->agent), 0);
    assert_false(agentproc_socket_exists(&f->agent));
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socket_mode),
        cmocka_unit_test(test_garbage_is_dropped),
        cmocka_unit_test(test_http_request_is_dropped),
        cmocka_unit_test(test_oversized_frame_is_dropped),
        cmocka_unit_test(test_truncated_frame_then_disconnect),
        cmocka_unit_test(test_slow_partial_frame_does_not_block_others),
        cmocka_unit_test(test_request_before_hello),
        cmocka_unit_test(test_wrong_protocol_version),
        cmocka_unit_test(test_unknown_op_keeps_connection),
        cmocka_unit_test(test_wrong_arg_types),
        cmocka_unit_test(test_map_without_id_is_dropped),
        cmocka_unit_test(test_pipelined_requests),
        cmocka_unit_test(test_disconnect_with_reply_pending),
        cmocka_unit_test(test_busy_name_and_loop_free_during_work),
        cmocka_unit_test(test_second_agent_refused),
        cmocka_unit_test(test_stale_socket_after_kill),
        cmocka_unit_test(test_clean_stop),
    };

    if (argc < 2) {
        fprintf(stderr, "usage: test_ipc PATH-TO-CERTAGENT\n");
        return 2;
    }
    agent_bin = argv[1];
    return cmocka_run_group_tests(tests, setup, teardown);
}
