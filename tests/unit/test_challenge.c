/*
 * The challenge responders (agent/challenge-http.c, agent/challenge-alpn.c)
 * over real sockets and real TLS: the responders run on a libuv loop in the
 * test's main thread, on free loopback ports (port 0, read back), and a
 * client thread talks to them with plain POSIX sockets and an OpenSSL
 * client, as an ACME validator would.  Linux only (the client side is
 * POSIX).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <uv.h>

#include "challenge-alpn.h"
#include "challenge-http.h"
#include "challenge-net.h"
#include "err.h"
#include "keys.h"
#include "log.h"

#define TOKEN "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
#define THUMBPRINT "nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ"
#define KEYAUTH TOKEN "." THUMBPRINT
#define REPLY_MAX 32768

static uv_loop_t loop;

static int
setup(void **state)
{
    (void)state;
    return uv_loop_init(&loop);
}

static void
close_left_over(uv_handle_t *handle, void *arg)
{
    if (!uv_is_closing(handle)) {
        (*(int *)arg)++;
        uv_close(handle, NULL);
    }
}

/*
 * Every handle must be closed and released once the loop has run: a test
 * that failed half-way leaves handles open, which are closed here (so that
 * the run ends) and make the teardown fail.
 */
static int
teardown(void **state)
{
    int left = 0;

    (void)state;
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_walk(&loop, close_left_over, &left);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        left++;
    if (left > 0)
        print_error("%d libuv handle(s) left open\n", left);
    return left == 0 ? 0 : -1;
}

/* ---- running a client thread against the loop ---- */

struct job {
    void (*fn)(void *);
    void *arg;
    uv_async_t done;
};

static void
job_main(void *arg)
{
    struct job *j = arg;

    j->fn(j->arg);
    uv_async_send(&j->done);
}

static void
on_job_done(uv_async_t *async)
{
    uv_close((uv_handle_t *)async, NULL);
    uv_stop(async->loop);
}

/* Runs fn(arg) on a thread while the loop serves; returns when fn has. */
static void
run_client(void (*fn)(void *), void *arg)
{
    struct job j = {fn, arg};
    uv_thread_t tid;

    assert_int_equal(uv_async_init(&loop, &j.done, on_job_done), 0);
    assert_int_equal(uv_thread_create(&tid, job_main, &j), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_thread_join(&tid), 0);
    /* The async handle's close callback. */
    uv_run(&loop, UV_RUN_NOWAIT);
}

static double
now_ms(void)
{
    return (double)uv_hrtime() / 1e6;
}

/* A blocking TCP connection to the loopback address of family, with 5 s I/O timeouts. */
/*
 * Connects to the loopback port; with source (IPv4 only) from 127.0.0.SOURCE,
 * so that one test can be several clients for the per-address limit.
 */
static int
tcp_connect_from(int family, int source, int port, int *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    struct timeval tv = {5, 0};
    int fd;

    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        s6->sin6_addr = in6addr_loopback;
        len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*s4);
    }
    *err = 0;
    if ((fd = socket(family, SOCK_STREAM, 0)) < 0) {
        *err = errno;
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (family == AF_INET && source != 0) {
        struct sockaddr_in src;

        memset(&src, 0, sizeof(src));
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)source);
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
            *err = errno;
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        *err = errno;
        close(fd);
        return -1;
    }
    return fd;
}

static int
tcp_connect(int family, int port, int *err)
{
    return tcp_connect_from(family, 0, port, err);
}

/* ---- HTTP client ---- */

struct http_call {
    int family;
    int source; /* connect from 127.0.0.SOURCE (0: the default) */
    int port;
    const char *request;
    size_t request_len;
    int half_close; /* shut down the sending side after the request */
    int connect_err;
    int eof; /* the server closed (read returned 0) */
    char reply[REPLY_MAX + 1];
    size_t reply_len;
};

static void
http_client(void *arg)
{
    struct http_call *c = arg;
    size_t sent = 0;
    int fd =
        tcp_connect_from(c->family ? c->family : AF_INET, c->source, c->port, &c->connect_err);

    c->reply_len = 0;
    c->eof = 0;
    if (fd < 0)
        return;
    while (sent < c->request_len) {
        ssize_t n = send(fd, c->request + sent, c->request_len - sent, MSG_NOSIGNAL);

        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    if (c->half_close)
        shutdown(fd, SHUT_WR);
    for (;;) {
        ssize_t n = recv(fd, c->reply + c->reply_len, REPLY_MAX - c->reply_len, 0);

        if (n == 0)
            c->eof = 1;
        if (n <= 0)
            break;
        c->reply_len += (size_t)n;
        if (c->reply_len == REPLY_MAX)
            break;
    }
    c->reply[c->reply_len] = '\0';
    close(fd);
}

/* Sends request to port and returns the whole reply (the server closes after it). */
static struct http_call *
http(int family, int port, const char *request, size_t len)
{
    struct http_call *c = calloc(1, sizeof(*c));

    assert_non_null(c);
    c->family = family;
    c->port = port;
    c->request = request;
    c->request_len = len != 0 ? len : strlen(request);
    run_client(http_client, c);
    return c;
}

/* The reply's status line is "HTTP/1.1 <status> ..." and it ends with body (NULL: any). */
static void
expect_reply(struct http_call *c, int status, const char *body)
{
    char line[32];
    const char *b;

    assert_int_equal(c->connect_err, 0);
    snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
    if (strncmp(c->reply, line, strlen(line)) != 0)
        fail_msg("expected '%s...', got '%.60s'", line, c->reply);
    assert_true(c->eof);
    assert_non_null(strstr(c->reply, "\r\nConnection: close\r\n"));
    b = strstr(c->reply, "\r\n\r\n");
    assert_non_null(b);
    if (body != NULL)
        assert_string_equal(b + 4, body);
}

/* As http_client, but the request goes out a byte per send (TCP_NODELAY). */
static void
piecewise_client(void *arg)
{
    struct http_call *c = arg;
    int one = 1, fd = tcp_connect(AF_INET, c->port, &c->connect_err);

    if (fd < 0)
        return;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (size_t i = 0; i < c->request_len; i++) {
        if (send(fd, c->request + i, 1, MSG_NOSIGNAL) != 1)
            break;
    }
    for (;;) {
        ssize_t n = recv(fd, c->reply + c->reply_len, REPLY_MAX - c->reply_len, 0);

        if (n == 0)
            c->eof = 1;
        if (n <= 0 || (c->reply_len += (size_t)n) == REPLY_MAX)
            break;
    }
    c->reply[c->reply_len] = '\0';
    close(fd);
}

static const char *const loopback4[] = {"127.0.0.1:0"};

/* ---- http-01 ---- */

/* Log lines go to a file while fn runs; its text is returned (heap). */
static char *
capture_log(void (*fn)(void *), void *arg)
{
    char path[] = "/tmp/test_challenge_log.XXXXXX";
    int fd = mkstemp(path), saved;
    char *text;
    off_t size;

    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fd, 2) >= 0);
    log_set_level(LOG_LEVEL_DEBUG);
    fn(arg);
    log_set_level(getenv("TEST_CHALLENGE_DEBUG") != NULL ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
    fflush(stderr);
    assert_true(dup2(saved, 2) >= 0);
    close(saved);
    size = lseek(fd, 0, SEEK_END);
    assert_true(size >= 0);
    text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(pread(fd, text, (size_t)size, 0), size);
    close(fd);
    return text;
}

static void
get_requests(void *arg)
{
    struct challenge_http *h = arg;
    int port = challenge_http_port(h, 0);
    char want[256];
    struct http_call *c;

    /* HTTP/1.1 GET, as validators send it. */
    c = http(AF_INET, port,
             "GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n"
             "Host: example.test\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n",
             0);
    expect_reply(c, 200, KEYAUTH);
    assert_non_null(strstr(c->reply, "\r\nContent-Type: application/octet-stream\r\n"));
    snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", strlen(KEYAUTH));
    assert_non_null(strstr(c->reply, want));
    free(c);
    /* HTTP/1.0 without Host, bare LF line ends, and a query string. */
    c = http(AF_INET, port, "GET /.well-known/acme-challenge/" TOKEN "?x=1 HTTP/1.0\n\n", 0);
    expect_reply(c, 200, KEYAUTH);
    free(c);
    /* Absolute form. */
    c = http(AF_INET, port,
             "GET http://example.test/.well-known/acme-challenge/" TOKEN
             " HTTP/1.1\r\nHost: example.test\r\n\r\n",
             0);
    expect_reply(c, 200, KEYAUTH);
    free(c);
    /* HEAD: the head of the GET answer, no body. */
    c = http(AF_INET, port, "HEAD /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n\r\n", 0);
    expect_reply(c, 200, "");
    assert_non_null(strstr(c->reply, want));
    free(c);
    /* A client that closes its sending side at once still gets the whole answer. */
    c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->port = port;
    c->half_close = 1;
    c->request = "GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n\r\n";
    c->request_len = strlen(c->request);
    run_client(http_client, c);
    expect_reply(c, 200, KEYAUTH);
    free(c);
    /* The request arriving in pieces. */
    c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->port = port;
    c->request = "GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\nHost: x\r\n\r\n";
    c->request_len = strlen(c->request);
    run_client(piecewise_client, c);
    expect_reply(c, 200, KEYAUTH);
    free(c);
}

static void
test_http_get(void **state)
{
    struct challenge_http *h = NULL;
    char *cause = NULL, *logs;

    (void)state;
    assert_int_equal(challenge_http_new(&loop, loopback4, 1, 0, &h, &cause), 0);
    assert_int_equal(challenge_http_port(h, 0), 0); /* closed until a challenge is pending */
    assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH, &cause), 0);
    assert_null(cause);
    assert_true(challenge_http_port(h, 0) > 0);
    logs = capture_log(get_requests, h);
    /* GETs count, HEAD does not. */
    assert_int_equal(challenge_http_served(h), 5);
    /* Debug lines name the peer and the token, never the key authorization. */
    assert_non_null(strstr(logs, "http-01: 127.0.0.1:"));
    assert_non_null(strstr(logs, "GET token " TOKEN ": 200"));
    assert_non_null(strstr(logs, "HEAD token " TOKEN ": 200"));
    assert_null(strstr(logs, THUMBPRINT));
    free(logs);
    challenge_http_remove(h, TOKEN);
    challenge_http_free(h);
}

static void
test_http_errors(void **state)
{
    static const char nul_request[] = "GET /a\0b HTTP/1.1\r\n\r\n";
    struct challenge_http *h = NULL;
    char *cause = NULL, big[9000];
    struct http_call *c;
    int port;

    (void)state;
    assert_int_equal(challenge_http_new(&loop, loopback4, 1, 1, &h, &cause), 0);
    assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH, &cause), 0);
    port = challenge_http_port(h, 0);
    assert_true(port > 0);

    c = http(AF_INET, port, "GET /.well-known/acme-challenge/unknownToken HTTP/1.1\r\n\r\n", 0);
    expect_reply(c, 404, NULL);
    free(c);
    c = http(AF_INET, port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    expect_reply(c, 404, NULL);
    free(c);
    c = http(AF_INET, port, "GET /.well-known/acme-challenge/ HTTP/1.1\r\n\r\n", 0);
    expect_reply(c, 404, NULL);
    free(c);
    /* A prefix of the token is not the token. */
    c = http(AF_INET, port,
             "GET /.well-known/acme-challenge/evaGxfADs6pSRb2LAv9IZf17Dt3 "
             "HTTP/1.1\r\n\r\n",
             0);
    expect_reply(c, 404, NULL);
    free(c);
    c = http(AF_INET, port,
             "POST /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n"
             "Content-Length: 11\r\n\r\nhello=world",
             0);
    expect_reply(c, 405, NULL);
    assert_non_null(strstr(c->reply, "\r\nAllow: GET, HEAD\r\n"));
    free(c);
    /* Garbage: TLS on the HTTP port, HTTP/2 and HTTP/0.9, broken header lines. */
    c = http(AF_INET, port, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15);
    expect_reply(c, 400, NULL);
    free(c);
    c = http(AF_INET, port, "GET / HTTP/2.0\r\n\r\n", 0);
    expect_reply(c, 400, NULL);
    free(c);
    c = http(AF_INET, port, "GET /\r\n\r\n", 0);
    expect_reply(c, 400, NULL);
    free(c);
    c = http(AF_INET, port,
             "GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n"
             "no colon here\r\n\r\n",
             0);
    expect_reply(c, 400, NULL);
    free(c);
    c = http(AF_INET, port,
             "GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n"
             "Host: a\r\n folded\r\n\r\n",
             0);
    expect_reply(c, 400, NULL);
    free(c);
    c = http(AF_INET, port, nul_request, sizeof(nul_request) - 1);
    expect_reply(c, 400, NULL);
    free(c);
    /* A head over 8 KiB: 431, and the rest is read and dropped (no reset). */
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', sizeof(big) - 5);
    c = http(AF_INET, port, big, sizeof(big));
    expect_reply(c, 431, NULL);
    free(c);
    assert_int_equal(challenge_http_served(h), 0);

    /* Bad input to add. */
    assert_int_equal(challenge_http_add(h, "a/b", KEYAUTH, &cause), -E_BAD_INPUT);
    assert_non_null(strstr(cause, "base64url"));
    free(cause);
    cause = NULL;
    assert_int_equal(challenge_http_add(h, TOKEN, "", &cause), -E_BAD_INPUT);
    free(cause);
    cause = NULL;
    assert_int_equal(challenge_http_add(h, TOKEN, "a\r\nb", &cause), -E_BAD_INPUT);
    free(cause);
    cause = NULL;
    assert_int_equal(challenge_http_add(h, TOKEN, TOKEN ".other", &cause), -E_EXISTS);
    assert_non_null(strstr(cause, "another key authorization"));
    free(cause);
    challenge_http_free(h);
}

/* A client that connects and says nothing; elapsed time until the server closes. */
struct silent_call {
    int port;
    int eof;
    double elapsed_ms;
};

static void
silent_client(void *arg)
{
    struct silent_call *s = arg;
    double start = now_ms();
    char b;
    int err, fd = tcp_connect(AF_INET, s->port, &err);

    if (fd < 0)
        return;
    s->eof = recv(fd, &b, 1, 0) == 0;
    s->elapsed_ms = now_ms() - start;
    close(fd);
}

/* A client that sends a request one byte every 50 ms; when the server closes. */
static void
trickle_client(void *arg)
{
    struct silent_call *s = arg;
    const char *req = "GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\nHost: x\r\n";
    double start = now_ms();
    int err, fd = tcp_connect(AF_INET, s->port, &err);

    if (fd < 0)
        return;
    for (size_t i = 0; i < 200; i++) {
        struct pollfd p = {fd, POLLIN, 0};
        char b;

        if (send(fd, req + i % strlen(req), 1, MSG_NOSIGNAL) != 1)
            break;
        if (poll(&p, 1, 50) == 1) {
            s->eof = recv(fd, &b, 1, 0) <= 0;
            break;
        }
    }
    s->elapsed_ms = now_ms() - start;
    close(fd);
}

/* A silent client on port is closed by the server, no sooner than after_ms and, when
 * before_ms is not 0, before before_ms (the connection's other deadline). */
static void
expect_silent_closed(int port, double after_ms, double before_ms)
{
    struct silent_call s = {0};

    s.port = port;
    run_client(silent_client, &s);
    assert_true(s.eof);
    assert_true(s.elapsed_ms >= after_ms);
    if (before_ms > 0)
        assert_true(s.elapsed_ms < before_ms);
}

/* A client trickling a request is closed by the server no sooner than after_ms; it never
 * pauses long enough for an idle deadline, so only a deadline for the whole request closes it. */
static void
expect_trickle_closed(int port, double after_ms)
{
    struct silent_call s = {0};

    s.port = port;
    run_client(trickle_client, &s);
    assert_true(s.eof);
    assert_true(s.elapsed_ms >= after_ms);
}

static void
test_http_deadline(void **state)
{
    struct challenge_http *h = NULL;
    char *cause = NULL;

    (void)state;
    assert_int_equal(challenge_http_new(&loop, loopback4, 1, 1, &h, &cause), 0);
    challenge_http_set_timeout(h, 300);
    expect_silent_closed(challenge_http_port(h, 0), 250, 3000);
    /* The deadline is for the whole request, not for each idle gap. */
    expect_trickle_closed(challenge_http_port(h, 0), 250);
    challenge_http_free(h);
}

/* Limits small enough for a test: 8 connections, 4 per address. */
#define FLOOD_MAX 8
#define FLOOD_PER_ADDRESS 4

static int
is_eof(int fd)
{
    char b;

    return recv(fd, &b, 1, 0) == 0;
}

/* Has the server closed fd already?  (a poll of 0 ms: a held connection has nothing to read) */
static int
is_closed_now(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};

    return poll(&p, 1, 0) == 1;
}

struct flood_call {
    int port;
    int first[FLOOD_PER_ADDRESS];  /* from 127.0.0.1, silent */
    int over_eof;                  /* a fifth one from 127.0.0.1 was closed at once */
    int first_held;                /* and the four were still open then */
    int second[FLOOD_PER_ADDRESS]; /* from 127.0.0.2: partial requests */
    int evicted_first;             /* the request from 127.0.0.3 closed first[0]... */
    int others_held;               /* ...and nothing else */
    int second_held;
    struct http_call fresh; /* from 127.0.0.3 once the responder is full: served */
};

static void
flood_client(void *arg)
{
    struct flood_call *f = arg;
    int err, fd;

    for (int i = 0; i < FLOOD_PER_ADDRESS; i++)
        f->first[i] = tcp_connect_from(AF_INET, 1, f->port, &err);
    if ((fd = tcp_connect_from(AF_INET, 1, f->port, &err)) >= 0) {
        f->over_eof = is_eof(fd);
        close(fd);
    }
    f->first_held = 1;
    for (int i = 0; i < FLOOD_PER_ADDRESS; i++)
        f->first_held &= f->first[i] >= 0 && !is_closed_now(f->first[i]);
    for (int i = 0; i < FLOOD_PER_ADDRESS; i++) {
        f->second[i] = tcp_connect_from(AF_INET, 2, f->port, &err);
        if (f->second[i] >= 0)
            (void)send(f->second[i], "GET / HTTP/1.1\r\n", 16, MSG_NOSIGNAL);
    }
    /* Full now: the fresh request is served, the oldest silent connection makes room. */
    http_client(&f->fresh);
    f->evicted_first = f->first[0] >= 0 && is_eof(f->first[0]);
    f->others_held = 1;
    for (int i = 1; i < FLOOD_PER_ADDRESS; i++)
        f->others_held &= !is_closed_now(f->first[i]);
    f->second_held = 1;
    for (int i = 0; i < FLOOD_PER_ADDRESS; i++)
        f->second_held &= f->second[i] >= 0 && !is_closed_now(f->second[i]);
    for (int i = 0; i < FLOOD_PER_ADDRESS; i++) {
        if (f->first[i] >= 0)
            close(f->first[i]);
        if (f->second[i] >= 0)
            close(f->second[i]);
    }
}

static void
test_http_connection_limits(void **state)
{
    struct challenge_http *h = NULL;
    struct flood_call *f = calloc(1, sizeof(*f));
    struct challenge_net_limits limits = {FLOOD_MAX, FLOOD_PER_ADDRESS, 60000, 60000};
    char *cause = NULL;

    (void)state;
    assert_non_null(f);
    assert_int_equal(challenge_http_new(&loop, loopback4, 1, 0, &h, &cause), 0);
    challenge_http_set_limits(h, &limits);
    assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH, &cause), 0);
    f->port = challenge_http_port(h, 0);
    f->fresh.family = AF_INET;
    f->fresh.source = 3;
    f->fresh.port = f->port;
    f->fresh.request = "GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n\r\n";
    f->fresh.request_len = strlen(f->fresh.request);
    run_client(flood_client, f);
    assert_true(f->over_eof);
    assert_true(f->first_held);
    expect_reply(&f->fresh, 200, KEYAUTH);
    assert_true(f->evicted_first);
    assert_true(f->others_held);
    assert_true(f->second_held);
    free(f);
    challenge_http_free(h);
}

/* A silent connection is closed at the first-byte deadline; one that spoke, at the other. */
static void
test_http_first_byte_deadline(void **state)
{
    struct challenge_http *h = NULL;
    struct challenge_net_limits limits = {0, 0, 200, 1500};
    char *cause = NULL;

    (void)state;
    assert_int_equal(challenge_http_new(&loop, loopback4, 1, 1, &h, &cause), 0);
    challenge_http_set_limits(h, &limits);
    expect_silent_closed(challenge_http_port(h, 0), 150, 1400);
    expect_trickle_closed(challenge_http_port(h, 0), 1400);
    challenge_http_free(h);
}

/* Is anything listening on the loopback port? (a connect in a client thread) */
struct probe_call {
    int family;
    int port;
    int err;
};

static void
probe_client(void *arg)
{
    struct probe_call *p = arg;
    int fd = tcp_connect(p->family, p->port, &p->err);

    if (fd >= 0)
        close(fd);
}

static int
connect_errno(int family, int port)
{
    struct probe_call p = {family, port, 0};

    run_client(probe_client, &p);
    return p.err;
}

static void
test_http_listen_on_demand(void **state)
{
    struct challenge_http *h = NULL;
    struct http_call *c;
    char *cause = NULL;
    int port;

    (void)state;
    assert_int_equal(challenge_http_new(&loop, loopback4, 1, 0, &h, &cause), 0);
    assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH, &cause), 0);
    assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH, &cause), 0); /* counted */
    assert_int_equal(challenge_http_add(h, "second", "second.x", &cause), 0);
    port = challenge_http_port(h, 0);
    assert_true(port > 0);
    challenge_http_remove(h, TOKEN);
    challenge_http_remove(h, "second");
    challenge_http_remove(h, "never-added");
    assert_int_equal(challenge_http_port(h, 0), port);
    c = http(AF_INET, port, "GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n\r\n", 0);
    expect_reply(c, 200, KEYAUTH);
    free(c);
    c = http(AF_INET, port, "GET /.well-known/acme-challenge/second HTTP/1.1\r\n\r\n", 0);
    expect_reply(c, 404, NULL);
    free(c);
    /* The last remove closes the listener. */
    challenge_http_remove(h, TOKEN);
    assert_int_equal(challenge_http_port(h, 0), 0);
    assert_int_equal(connect_errno(AF_INET, port), ECONNREFUSED);
    challenge_http_remove(h, TOKEN); /* one too many: ignored */
    /* And the next add opens it again. */
    assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH, &cause), 0);
    port = challenge_http_port(h, 0);
    assert_true(port > 0);
    c = http(AF_INET, port, "GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n\r\n", 0);
    expect_reply(c, 200, KEYAUTH);
    free(c);
    challenge_http_free(h);

    /* keep_open: listening before any add and after the last remove. */
    assert_int_equal(challenge_http_new(&loop, loopback4, 1, 1, &h, &cause), 0);
    port = challenge_http_port(h, 0);
    assert_true(port > 0);
    assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH, &cause), 0);
    challenge_http_remove(h, TOKEN);
    assert_int_equal(challenge_http_port(h, 0), port);
    c = http(AF_INET, port, "GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n\r\n", 0);
    expect_reply(c, 404, NULL);
    free(c);
    /* set_listen without keep_open and nothing pending: closed. */
    assert_int_equal(challenge_http_set_listen(h, loopback4, 1, 0, &cause), 0);
    assert_int_equal(challenge_http_port(h, 0), 0);
    assert_int_equal(connect_errno(AF_INET, port), ECONNREFUSED);
    challenge_http_free(h);
}

/* A loopback port that a plain socket of ours listens on. */
static int
busy_port(int *fd)
{
    struct sockaddr_in sin = {0};
    socklen_t len = sizeof(sin);

    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(*fd >= 0);
    assert_int_equal(bind(*fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(*fd, 1), 0);
    assert_int_equal(getsockname(*fd, (struct sockaddr *)&sin, &len), 0);
    return ntohs(sin.sin_port);
}

static void
test_http_bind_failure(void **state)
{
    struct challenge_http *h = NULL;
    char addr[32], want[128], *cause = NULL;
    const char *list[] = {"127.0.0.1:0", addr};
    const char *bad[] = {"localhost:80"};
    const char *no6[] = {"[2001:db8::1]:0", "127.0.0.1:0", "[2001:db8::1]:0"};
    int fd, port = busy_port(&fd);

    (void)state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    snprintf(want, sizeof(want), "cannot listen on %s for http-01: address already in use", addr);
    /* On demand: new succeeds, the add names the address. */
    assert_int_equal(challenge_http_new(&loop, list, 2, 0, &h, &cause), 0);
    assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH, &cause), -E_IO);
    assert_non_null(cause);
    assert_string_equal(cause, want);
    free(cause);
    cause = NULL;
    /* Nothing stays open after the failure: not even the first address. */
    assert_int_equal(challenge_http_port(h, 0), 0);
    challenge_http_free(h);
    /* keep_open: new itself fails. */
    h = NULL;
    assert_int_equal(challenge_http_new(&loop, list + 1, 1, 1, &h, &cause), -E_IO);
    assert_null(h);
    assert_string_equal(cause, want);
    free(cause);
    cause = NULL;
    /*
     * An IPv6 address the host cannot bind (as on a host with IPv6 off) is skipped
     * when another address opened, and an error when it is the only one.
     */
    assert_int_equal(challenge_http_new(&loop, no6 + 1, 2, 1, &h, &cause), 0);
    assert_true(challenge_http_port(h, 0) > 0);
    assert_int_equal(challenge_http_port(h, 1), 0);
    challenge_http_free(h);
    h = NULL;
    assert_int_equal(challenge_http_new(&loop, no6, 1, 1, &h, &cause), -E_IO);
    assert_null(h);
    assert_non_null(strstr(cause, "cannot listen on [2001:db8::1]:0 for http-01: "));
    free(cause);
    cause = NULL;
    /* Not ADDR:PORT. */
    assert_int_equal(challenge_http_new(&loop, bad, 1, 0, &h, &cause), -E_BAD_INPUT);
    assert_non_null(strstr(cause, "http-01: 'localhost:80' is not ADDR:PORT"));
    free(cause);
    close(fd);
}

static void
test_http_set_listen(void **state)
{
    struct challenge_http *h = NULL;
    char addr[32], *cause = NULL;
    const char *busy[] = {addr};
    const char *both[] = {"127.0.0.1:0", "[::1]:0"};
    struct http_call *c;
    int fd, port, p4, p6, have6;

    (void)state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", busy_port(&fd));
    assert_int_equal(challenge_http_new(&loop, loopback4, 1, 0, &h, &cause), 0);
    assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH, &cause), 0);
    port = challenge_http_port(h, 0);
    /* The same list again (a reload that changed nothing): the listener stays. */
    assert_int_equal(challenge_http_set_listen(h, loopback4, 1, 0, &cause), 0);
    assert_int_equal(challenge_http_port(h, 0), port);
    /* A list that cannot be opened: the error, and the old listener still serves. */
    assert_int_equal(challenge_http_set_listen(h, busy, 1, 0, &cause), -E_IO);
    assert_non_null(strstr(cause, "address already in use"));
    free(cause);
    cause = NULL;
    port = challenge_http_port(h, 0);
    assert_true(port > 0);
    c = http(AF_INET, port, "GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n\r\n", 0);
    expect_reply(c, 200, KEYAUTH);
    free(c);
    /* IPv4 and IPv6 loopback at once (v6 skipped with a warning if this host has none). */
    assert_int_equal(challenge_http_set_listen(h, both, 2, 0, &cause), 0);
    p4 = challenge_http_port(h, 0);
    p6 = challenge_http_port(h, 1);
    have6 = p6 > 0;
    assert_true(p4 > 0);
    c = http(AF_INET, p4, "GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n\r\n", 0);
    expect_reply(c, 200, KEYAUTH);
    free(c);
    if (have6) {
        c = http(AF_INET6, p6, "GET /.well-known/acme-challenge/" TOKEN " HTTP/1.1\r\n\r\n", 0);
        expect_reply(c, 200, KEYAUTH);
        free(c);
    } else {
        print_message("no IPv6 loopback here: the [::1] listener was skipped\n");
    }
    challenge_http_remove(h, TOKEN);
    assert_int_equal(challenge_http_port(h, 0), 0);
    assert_int_equal(connect_errno(AF_INET, p4), ECONNREFUSED);
    challenge_http_free(h);
    close(fd);
}

/* ---- tls-alpn-01 ---- */

struct tls_call {
    int family;
    int port;
    const char *sni;  /* NULL: none */
    const char *alpn; /* wire format, NULL: none */
    int max_version;  /* 0: any */
    int ok;
    unsigned long err; /* first OpenSSL error of a failed handshake */
    char version[16];
    char selected[32];
    unsigned char *cert_der; /* the server's certificate (heap) */
    int cert_len;
};

static void
tls_client(void *arg)
{
    struct tls_call *t = arg;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    const unsigned char *sel;
    unsigned int sellen;
    X509 *peer;
    int err, fd = tcp_connect(t->family ? t->family : AF_INET, t->port, &err);

    if (fd < 0)
        return;
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        goto out;
    if (t->max_version != 0) {
        /* Old protocols need security level 0 to be offered at all. */
        SSL_CTX_set_security_level(ctx, 0);
        SSL_CTX_set_min_proto_version(ctx, 0);
        SSL_CTX_set_max_proto_version(ctx, t->max_version);
        SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1)
        goto out;
    if (t->sni != NULL)
        SSL_set_tlsext_host_name(ssl, t->sni);
    if (t->alpn != NULL)
        SSL_set_alpn_protos(ssl, (const unsigned char *)t->alpn, (unsigned)strlen(t->alpn));
    if (SSL_connect(ssl) != 1) {
        t->err = ERR_peek_error();
        goto out;
    }
    t->ok = 1;
    snprintf(t->version, sizeof(t->version), "%s", SSL_get_version(ssl));
    SSL_get0_alpn_selected(ssl, &sel, &sellen);
    snprintf(t->selected, sizeof(t->selected), "%.*s", (int)sellen, (const char *)sel);
    if ((peer = SSL_get1_peer_certificate(ssl)) != NULL) {
        t->cert_der = NULL;
        t->cert_len = i2d_X509(peer, &t->cert_der);
        X509_free(peer);
    }
    /* The server closes after the handshake: its close_notify, then end of file. */
    {
        char b;
        SSL_read(ssl, &b, 1);
    }
out:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    close(fd);
}

#define ALPN_ACME                                                                                 \
    "\x0a"                                                                                        \
    "acme-tls/1"

static struct tls_call
tls(int port, const char *sni, const char *alpn, int max_version)
{
    struct tls_call t = {AF_INET, port, sni, alpn, max_version};

    run_client(tls_client, &t);
    return t;
}

/* The server's certificate as RFC 8737 wants it for identifier (SAN of type gen_type). */
static void
check_validation_cert(const struct tls_call *t, int gen_type, const unsigned char *san,
                      size_t sanlen, const char *key_authorization)
{
    const unsigned char *p = t->cert_der;
    unsigned char digest[32], want[34];
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    X509 *x = d2i_X509(NULL, &p, t->cert_len);
    GENERAL_NAMES *names;
    const GENERAL_NAME *g;
    X509_EXTENSION *ext;
    const ASN1_OCTET_STRING *data;
    EVP_PKEY *pub;
    char group[32];
    size_t glen;
    int idx, crit = -1;

    assert_non_null(oid);
    assert_non_null(x);
    /* Exactly one SAN: the identifier. */
    names = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    assert_non_null(names);
    assert_int_equal(sk_GENERAL_NAME_num(names), 1);
    g = sk_GENERAL_NAME_value(names, 0);
    assert_int_equal(g->type, gen_type);
    if (gen_type == GEN_DNS) {
        assert_int_equal(ASN1_STRING_length(g->d.dNSName), (int)sanlen);
        assert_memory_equal(ASN1_STRING_get0_data(g->d.dNSName), san, sanlen);
    } else {
        assert_int_equal(ASN1_STRING_length(g->d.iPAddress), (int)sanlen);
        assert_memory_equal(ASN1_STRING_get0_data(g->d.iPAddress), san, sanlen);
    }
    GENERAL_NAMES_free(names);
    /* The critical acmeIdentifier: DER OCTET STRING (04 20) of SHA-256(key authorization). */
    idx = X509_get_ext_by_OBJ(x, oid, -1);
    assert_true(idx >= 0);
    assert_int_equal(X509_get_ext_by_OBJ(x, oid, idx), -1);
    ext = X509_get_ext(x, idx);
    assert_int_equal(X509_EXTENSION_get_critical(ext), 1);
    data = X509_EXTENSION_get_data(ext);
    SHA256((const unsigned char *)key_authorization, strlen(key_authorization), digest);
    want[0] = 0x04;
    want[1] = 0x20;
    memcpy(want + 2, digest, 32);
    assert_int_equal(ASN1_STRING_length(data), 34);
    assert_memory_equal(ASN1_STRING_get0_data(data), want, 34);
    /* A fresh P-256 key, and the certificate signed with it. */
    pub = X509_get0_pubkey(x);
    assert_non_null(pub);
    assert_true(EVP_PKEY_is_a(pub, "EC"));
    assert_true(EVP_PKEY_get_group_name(pub, group, sizeof(group), &glen));
    assert_string_equal(group, "prime256v1");
    assert_int_equal(X509_verify(x, pub), 1);
    X509_free(x);
    ASN1_OBJECT_free(oid);
}

static const char *const alpn_loopback4[] = {"127.0.0.1:0"};

static void
test_alpn_dns(void **state)
{
    struct challenge_alpn *a = NULL;
    struct tls_call t;
    char *cause = NULL;
    int port;

    (void)state;
    assert_int_equal(challenge_alpn_new(&loop, alpn_loopback4, 1, 0, &a, &cause), 0);
    assert_int_equal(challenge_alpn_port(a, 0), 0);
    assert_int_equal(challenge_alpn_add(a, "Example.Test", KEYAUTH, &cause), 0);
    assert_null(cause);
    port = challenge_alpn_port(a, 0);
    assert_true(port > 0);

    t = tls(port, "example.test", ALPN_ACME, 0);
    assert_true(t.ok);
    assert_string_equal(t.selected, "acme-tls/1");
    assert_string_equal(t.version, "TLSv1.3");
    check_validation_cert(&t, GEN_DNS, (const unsigned char *)"example.test", 12, KEYAUTH);
    OPENSSL_free(t.cert_der);
    /* TLS 1.2, SNI in another case, ALPN among other protocols. */
    t = tls(port, "EXAMPLE.test",
            "\x02h2\x0a"
            "acme-tls/1\x08http/1.1",
            TLS1_2_VERSION);
    assert_true(t.ok);
    assert_string_equal(t.selected, "acme-tls/1");
    assert_string_equal(t.version, "TLSv1.2");
    check_validation_cert(&t, GEN_DNS, (const unsigned char *)"example.test", 12, KEYAUTH);
    OPENSSL_free(t.cert_der);
    assert_int_equal(challenge_alpn_served(a), 2);

    /* A second identifier is served alongside, with its own certificate. */
    assert_int_equal(challenge_alpn_add(a, "www.example.test", "other.keyauth", &cause), 0);
    t = tls(port, "www.example.test", ALPN_ACME, 0);
    assert_true(t.ok);
    check_validation_cert(&t, GEN_DNS, (const unsigned char *)"www.example.test", 16,
                          "other.keyauth");
    OPENSSL_free(t.cert_der);
    challenge_alpn_remove(a, "www.example.test");
    t = tls(port, "www.example.test", ALPN_ACME, 0);
    assert_false(t.ok);
    assert_int_equal(ERR_GET_REASON(t.err), SSL_R_TLSV1_UNRECOGNIZED_NAME);
    challenge_alpn_remove(a, "EXAMPLE.TEST");
    assert_int_equal(challenge_alpn_port(a, 0), 0);
    assert_int_equal(connect_errno(AF_INET, port), ECONNREFUSED);
    challenge_alpn_free(a);
}

static void
test_alpn_refusals(void **state)
{
    struct challenge_alpn *a = NULL;
    struct tls_call t;
    char *cause = NULL;
    int port;

    (void)state;
    assert_int_equal(challenge_alpn_new(&loop, alpn_loopback4, 1, 1, &a, &cause), 0);
    assert_int_equal(challenge_alpn_add(a, "example.test", KEYAUTH, &cause), 0);
    port = challenge_alpn_port(a, 0);

    /* Without ALPN: no certificate, a no_application_protocol alert. */
    t = tls(port, "example.test", NULL, 0);
    assert_false(t.ok);
    assert_null(t.cert_der);
    assert_int_equal(ERR_GET_REASON(t.err), SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL);
    /* Another protocol only. */
    t = tls(port, "example.test", "\x02h2\x08http/1.1", 0);
    assert_false(t.ok);
    assert_int_equal(ERR_GET_REASON(t.err), SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL);
    /* A name with no pending challenge, and no SNI at all. */
    t = tls(port, "other.test", ALPN_ACME, 0);
    assert_false(t.ok);
    assert_int_equal(ERR_GET_REASON(t.err), SSL_R_TLSV1_UNRECOGNIZED_NAME);
    t = tls(port, NULL, ALPN_ACME, 0);
    assert_false(t.ok);
    assert_int_equal(ERR_GET_REASON(t.err), SSL_R_TLSV1_UNRECOGNIZED_NAME);
    /* TLS 1.1 is below the minimum. */
    t = tls(port, "example.test", ALPN_ACME, TLS1_1_VERSION);
    assert_false(t.ok);
    assert_int_equal(ERR_GET_REASON(t.err), SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
    assert_int_equal(challenge_alpn_served(a), 0);
    /* Plain HTTP on the TLS port is dropped too. */
    {
        struct http_call *c = http(AF_INET, port, "GET / HTTP/1.1\r\n\r\n", 0);

        assert_int_equal(c->connect_err, 0);
        assert_true(strncmp(c->reply, "HTTP/", 5) != 0);
        free(c);
    }
    /* The responder still works after all that. */
    t = tls(port, "example.test", ALPN_ACME, 0);
    assert_true(t.ok);
    OPENSSL_free(t.cert_der);
    assert_int_equal(challenge_alpn_served(a), 1);

    /* Bad input to add. */
    assert_int_equal(challenge_alpn_add(a, "*.example.test", KEYAUTH, &cause), -E_BAD_INPUT);
    assert_non_null(strstr(cause, "wildcard"));
    free(cause);
    cause = NULL;
    assert_int_equal(challenge_alpn_add(a, "bad name!", KEYAUTH, &cause), -E_BAD_INPUT);
    assert_non_null(strstr(cause, "neither a DNS name nor an IP address"));
    free(cause);
    cause = NULL;
    assert_int_equal(challenge_alpn_add(a, "example.test", "different.ka", &cause), -E_BUSY);
    assert_non_null(strstr(cause, "another key authorization"));
    free(cause);
    cause = NULL;
    /* Counted adds. */
    assert_int_equal(challenge_alpn_add(a, "example.test", KEYAUTH, &cause), 0);
    challenge_alpn_remove(a, "example.test");
    t = tls(port, "example.test", ALPN_ACME, 0);
    assert_true(t.ok);
    OPENSSL_free(t.cert_der);
    challenge_alpn_remove(a, "example.test");
    /* keep_open: still listening, nothing served. */
    assert_int_equal(challenge_alpn_port(a, 0), port);
    t = tls(port, "example.test", ALPN_ACME, 0);
    assert_false(t.ok);
    challenge_alpn_free(a);
}

static void
test_alpn_ip(void **state)
{
    static const unsigned char v4[4] = {127, 0, 0, 1};
    static const unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                         0,    0,    0,    0,    0, 0, 0, 0x01};
    struct challenge_alpn *a = NULL;
    struct tls_call t;
    char *cause = NULL;
    int port;

    (void)state;
    assert_int_equal(challenge_alpn_new(&loop, alpn_loopback4, 1, 0, &a, &cause), 0);
    assert_int_equal(challenge_alpn_add(a, "127.0.0.1", KEYAUTH, &cause), 0);
    assert_int_equal(challenge_alpn_add(a, "2001:db8::1", "v6.keyauth", &cause), 0);
    port = challenge_alpn_port(a, 0);
    /* RFC 8738: the SNI is the reverse-DNS name, the SAN the address. */
    t = tls(port, "1.0.0.127.in-addr.arpa", ALPN_ACME, 0);
    assert_true(t.ok);
    check_validation_cert(&t, GEN_IPADD, v4, 4, KEYAUTH);
    OPENSSL_free(t.cert_der);
    t = tls(port, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
            ALPN_ACME, 0);
    assert_true(t.ok);
    check_validation_cert(&t, GEN_IPADD, v6, 16, "v6.keyauth");
    OPENSSL_free(t.cert_der);
    /* The address itself is not a valid SNI. */
    t = tls(port, "127.0.0.1", ALPN_ACME, 0);
    assert_false(t.ok);
    assert_int_equal(challenge_alpn_served(a), 2);
    challenge_alpn_free(a); /* with challenges still pending */
}

static void
test_alpn_deadline(void **state)
{
    struct challenge_alpn *a = NULL;
    char *cause = NULL;

    (void)state;
    assert_int_equal(challenge_alpn_new(&loop, alpn_loopback4, 1, 1, &a, &cause), 0);
    challenge_alpn_set_timeout(a, 300);
    expect_silent_closed(challenge_alpn_port(a, 0), 250, 3000);
    challenge_alpn_free(a);
}

/* set_listen turning keep_open on and off; the default list opens nothing by itself. */
static void
test_alpn_set_listen(void **state)
{
    struct challenge_alpn *a = NULL;
    struct challenge_http *h = NULL;
    struct tls_call t;
    char *cause = NULL;
    int port;

    (void)state;
    /* Defaults (0.0.0.0:443, [::]:443) are not bound until something is pending. */
    assert_int_equal(challenge_alpn_new(&loop, NULL, 0, 0, &a, &cause), 0);
    assert_int_equal(challenge_alpn_port(a, 0), 0);
    challenge_alpn_free(a);
    assert_int_equal(challenge_http_new(&loop, NULL, 0, 0, &h, &cause), 0);
    assert_int_equal(challenge_http_port(h, 0), 0);
    challenge_http_free(h);

    assert_int_equal(challenge_alpn_new(&loop, alpn_loopback4, 1, 0, &a, &cause), 0);
    assert_int_equal(challenge_alpn_port(a, 0), 0);
    assert_int_equal(challenge_alpn_set_listen(a, alpn_loopback4, 1, 1, &cause), 0);
    port = challenge_alpn_port(a, 0);
    assert_true(port > 0);
    t = tls(port, "example.test", ALPN_ACME, 0);
    assert_false(t.ok);
    assert_int_equal(ERR_GET_REASON(t.err), SSL_R_TLSV1_UNRECOGNIZED_NAME);
    assert_int_equal(challenge_alpn_set_listen(a, alpn_loopback4, 1, 0, &cause), 0);
    assert_int_equal(challenge_alpn_port(a, 0), 0);
    assert_int_equal(connect_errno(AF_INET, port), ECONNREFUSED);
    challenge_alpn_free(a);
}

/* ---- tls-alpn-01 answers looked up elsewhere (a fleet) ---- */

/* A lookup answered from a table after 20 ms on the loop, as etcd would answer. */
struct alpn_lookup_call {
    uv_timer_t timer;
    void (*reply)(void *rarg, const char *value);
    void *rarg;
    const char *value;
};

static const char *const lookup_table[][2] = {
    {"alpn/fleet.example.test", "fleet.example.test fleet.keyauth"},
    {"alpn/1.0.0.127.in-addr.arpa", "127.0.0.1 ip.keyauth"},
    /* An answer for another identifier than the SNI asked: refused. */
    {"alpn/swapped.example.test", "victim.example.test swapped.keyauth"},
    {"alpn/novalue.example.test", "novalue.example.test"},
    {"alpn/silent.example.test", NULL}, /* never answered */
};
static unsigned lookups_started, lookups_cancelled;
static char lookup_last_key[300];

static void
lookup_call_closed(uv_handle_t *h)
{
    free(h->data);
}

static void
lookup_fire(uv_timer_t *timer)
{
    struct alpn_lookup_call *c = timer->data;

    c->reply(c->rarg, c->value);
    uv_close((uv_handle_t *)&c->timer, lookup_call_closed);
}

static void *
lookup_start(void *ctx, const char *key, void (*reply)(void *rarg, const char *value), void *rarg)
{
    struct alpn_lookup_call *c = calloc(1, sizeof(*c));
    int silent = 0;

    assert_ptr_equal(ctx, &lookups_started);
    lookups_started++;
    snprintf(lookup_last_key, sizeof(lookup_last_key), "%s", key);
    c->reply = reply;
    c->rarg = rarg;
    for (size_t i = 0; i < sizeof(lookup_table) / sizeof(lookup_table[0]); i++) {
        if (strcmp(lookup_table[i][0], key) == 0) {
            c->value = lookup_table[i][1];
            silent = c->value == NULL;
        }
    }
    c->timer.data = c;
    assert_int_equal(uv_timer_init(&loop, &c->timer), 0);
    if (!silent)
        assert_int_equal(uv_timer_start(&c->timer, lookup_fire, 20, 0), 0);
    return c;
}

static void
lookup_cancel(void *ctx, void *handle)
{
    struct alpn_lookup_call *c = handle;

    (void)ctx;
    lookups_cancelled++;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, lookup_call_closed);
}

static void
test_alpn_lookup(void **state)
{
    static const unsigned char v4[4] = {127, 0, 0, 1};
    struct challenge_lookup l = {lookup_start, lookup_cancel, &lookups_started};
    struct challenge_alpn *a = NULL;
    struct tls_call t;
    char *cause = NULL;
    int port;

    (void)state;
    lookups_started = lookups_cancelled = 0;
    assert_int_equal(challenge_alpn_new(&loop, alpn_loopback4, 1, 1, &a, &cause), 0);
    challenge_alpn_set_lookup(a, &l);
    assert_int_equal(challenge_alpn_add(a, "local.example.test", KEYAUTH, &cause), 0);
    port = challenge_alpn_port(a, 0);

    /* Served here: no lookup. */
    t = tls(port, "local.example.test", ALPN_ACME, 0);
    assert_true(t.ok);
    OPENSSL_free(t.cert_der);
    assert_int_equal(lookups_started, 0);
    /* Not served here: the handshake waits for the answer, then shows its certificate. */
    t = tls(port, "Fleet.Example.Test", ALPN_ACME, 0);
    assert_true(t.ok);
    assert_string_equal(lookup_last_key, "alpn/fleet.example.test");
    check_validation_cert(&t, GEN_DNS, (const unsigned char *)"fleet.example.test", 18,
                          "fleet.keyauth");
    OPENSSL_free(t.cert_der);
    t = tls(port, "fleet.example.test", ALPN_ACME, TLS1_2_VERSION);
    assert_true(t.ok);
    assert_string_equal(t.version, "TLSv1.2");
    OPENSSL_free(t.cert_der);
    /* An IP identifier by its reverse-DNS name (RFC 8738). */
    t = tls(port, "1.0.0.127.in-addr.arpa", ALPN_ACME, 0);
    assert_true(t.ok);
    check_validation_cert(&t, GEN_IPADD, v4, 4, "ip.keyauth");
    OPENSSL_free(t.cert_der);
    assert_int_equal(lookups_started, 3);
    assert_int_equal(challenge_alpn_served(a), 4);

    /* Unknown, an answer for another identifier, an answer without key authorization. */
    t = tls(port, "unknown.example.test", ALPN_ACME, 0);
    assert_false(t.ok);
    assert_int_equal(ERR_GET_REASON(t.err), SSL_R_TLSV1_UNRECOGNIZED_NAME);
    t = tls(port, "swapped.example.test", ALPN_ACME, 0);
    assert_false(t.ok);
    assert_int_equal(ERR_GET_REASON(t.err), SSL_R_TLSV1_UNRECOGNIZED_NAME);
    t = tls(port, "novalue.example.test", ALPN_ACME, 0);
    assert_false(t.ok);
    assert_int_equal(lookups_started, 6);
    /* Names that are not DNS names, and clients without ALPN, are never looked up. */
    t = tls(port, "bad_name.example.test", ALPN_ACME, 0);
    assert_false(t.ok);
    t = tls(port, "fleet.example.test", NULL, 0);
    assert_false(t.ok);
    assert_int_equal(lookups_started, 6);
    assert_int_equal(challenge_alpn_served(a), 4);

    /* An answer that never comes: the deadline closes the connection and cancels the lookup. */
    challenge_alpn_set_timeout(a, 300);
    t = tls(port, "silent.example.test", ALPN_ACME, 0);
    assert_false(t.ok);
    assert_int_equal(lookups_started, 7);
    assert_int_equal(lookups_cancelled, 1);
    challenge_alpn_free(a);
}

/* keys_alpn_cert on its own: identifiers it refuses. */
static void
test_keys_alpn_cert(void **state)
{
    struct key *key = NULL;
    X509 *cert = NULL;
    char *cause = NULL;

    (void)state;
    assert_int_equal(keys_alpn_cert("bad name", KEYAUTH, &key, &cert, &cause), -E_BAD_INPUT);
    assert_null(key);
    assert_null(cert);
    assert_non_null(strstr(cause, "'bad name' is neither a DNS name nor an IP address"));
    free(cause);
    cause = NULL;
    assert_int_equal(keys_alpn_cert("example.test", "", &key, &cert, &cause), -E_BAD_INPUT);
    free(cause);
    cause = NULL;
    assert_int_equal(keys_alpn_cert("example.test", KEYAUTH, &key, &cert, &cause), 0);
    assert_int_equal(keys_match_cert(key, cert, NULL), 0);
    keys_free(key);
    X509_free(cert);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_http_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_connection_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_first_byte_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_listen_on_demand, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_bind_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_set_listen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alpn_dns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alpn_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alpn_ip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alpn_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alpn_set_listen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alpn_lookup, setup, teardown),
        cmocka_unit_test(test_keys_alpn_cert),
    };

    /* TEST_CHALLENGE_DEBUG=1 shows the responders' debug lines. */
    log_init(LOG_SINK_STDERR,
             getenv("TEST_CHALLENGE_DEBUG") != NULL ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
