/*
 * Load and abuse of the IPC against one real agent (ctest integration.ipc_load):
 *
 *   - CONNECTIONS (default 1000) well-behaved connections open at once, REQUESTS
 *     (default 100,000) requests in all (ping, version, list), pipelined in batches of 10;
 *   - meanwhile 100 slowloris clients that send one byte per second and reconnect when
 *     dropped (the agent's ipc_frame_timeout, 3 s here, must drop them with a log line);
 *   - 10 clients that pipeline `list` and never read (the agent must drop each once its
 *     queue passes the per-client cap, with a log line, instead of growing);
 *   - oversized frames (declared length over 1 MiB, and 4 GiB) get E_TOO_BIG and a close.
 *
 * Asserts: every well-behaved request gets an ok reply, every abuser is dropped, the agent
 * still answers afterwards, its VmRSS stays under RSS_CAP_MIB (default 200) and it exits 0
 * on SIGTERM (under the ASan build LeakSanitizer makes a leak a non-zero exit).  Prints
 * requests/s, latency percentiles and RSS before/after.
 *
 * usage: test_ipc_load CERTAGENT CERTCTL [REQUESTS] [CONNECTIONS]
 * Environment: RSS_CAP_MIB (default 200, 400 in the ASan build; larger when CERTAGENT is a
 * valgrind wrapper: README.md, Building and testing), KEEP_TEST_DIR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agentproc.h"

#if defined(__SANITIZE_ADDRESS__)
/* The agent of this build runs under ASan: its quarantine and shadow memory count in VmRSS. */
#define ASAN_BUILD 1
#define DEFAULT_RSS_CAP_MIB 400
#else
#define ASAN_BUILD 0
#define DEFAULT_RSS_CAP_MIB 200
#endif
#define BATCH 10
#define SLOWLORIS 100
#define NONREADERS 10
#define FRAME_TIMEOUT 3
#define SEED_CERTS 30

enum conn_kind { GOOD, SLOW, DEAF };

struct conn {
    enum conn_kind kind;
    int fd;
    struct proto_reader r;
    char *out; /* GOOD: the batch being written; DEAF: unused */
    size_t outlen, outoff;
    int inflight; /* GOOD: replies awaited */
    long left;    /* GOOD: requests still to send */
    double sent_at;
    size_t slow_off;  /* SLOW: bytes of the hello sent */
    double next_byte; /* SLOW: when to send the next byte */
    size_t deaf_sent; /* DEAF: bytes written */
    int done;         /* dropped (abusers) or finished (GOOD) */
};

static int failures, checks;
static struct agentproc agent;
static char *hello_frame, *list_frames;
static size_t hello_len, list_len;

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
check(int ok, const char *what)
{
    if (ok) {
        checks++;
    } else {
        failures++;
        printf("FAIL: %s\n", what);
    }
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static long
rss_kib(pid_t pid)
{
    char path[64], line[256];
    long v = -1, x;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %ld", &x) == 1)
            v = x;
    }
    fclose(f);
    return v;
}

static char *
request_frame(uint64_t id, const char *op, size_t *len)
{
    struct proto_writer w;
    char *data = NULL;

    proto_writer_init(&w);
    msgpack_pack_map(&w.pk, 3);
    proto_pack_kv_uint(&w.pk, "id", id);
    proto_pack_kv_str(&w.pk, "op", op);
    proto_pack_str(&w.pk, "args");
    if (strcmp(op, "hello") == 0) {
        msgpack_pack_map(&w.pk, 2);
        proto_pack_kv_uint(&w.pk, "proto", PROTO_VERSION);
        proto_pack_kv_str(&w.pk, "client", "test_ipc_load");
    } else {
        msgpack_pack_map(&w.pk, 0);
    }
    if (proto_writer_finish(&w, &data, len) != 0)
        data = NULL;
    proto_writer_destroy(&w);
    return data;
}

static void
set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int
watch(int ep, struct conn *c, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};

    return epoll_ctl(ep, op, c->fd, &ev);
}

static void
conn_close(int ep, struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    proto_reader_destroy(&c->r);
    free(c->out);
    c->out = NULL;
}

/* A new slowloris connection: nothing sent yet, first byte now. */
static int
slow_open(int ep, struct conn *c)
{
    memset(c, 0, sizeof(*c));
    c->kind = SLOW;
    proto_reader_init(&c->r);
    if ((c->fd = agentproc_connect(&agent)) < 0)
        return -1;
    set_nonblock(c->fd);
    c->next_byte = now_s();
    return watch(ep, c, EPOLLIN, EPOLL_CTL_ADD);
}

/* GOOD: queue the next batch of BATCH requests (ping, version, list in turn). */
static void
good_batch(struct conn *c, uint64_t *next_id)
{
    static const char *const ops[] = {"ping", "version", "list"};
    size_t total = 0;
    int n = c->left < BATCH ? (int)c->left : BATCH;

    free(c->out);
    c->out = NULL;
    for (int i = 0; i < n; i++) {
        size_t len;
        uint64_t id = ++*next_id;
        char *f = request_frame(id, ops[id % 3], &len);
        char *grown = f != NULL ? realloc(c->out, total + len) : NULL;

        if (grown == NULL) {
            free(f);
            check(0, "out of memory building a batch");
            return;
        }
        c->out = grown;
        memcpy(c->out + total, f, len);
        total += len;
        free(f);
    }
    c->outlen = total;
    c->outoff = 0;
    c->inflight = n;
    c->left -= n;
    c->sent_at = now_s();
}

static int
flush_out(struct conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (n <= 0)
            return -1;
        c->outoff += (size_t)n;
    }
    return 1;
}

/* Reads what is there; for GOOD, counts ok replies and records latencies. 0 ok, -1 EOF/err. */
static int
read_some(struct conn *c, double *lat, long *nlat, long *bad)
{
    char buf[65536];

    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        struct proto_msg msg;
        int rc;

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (n <= 0)
            return -1;
        if (c->kind != GOOD)
            continue;
        if (proto_reader_feed(&c->r, buf, (size_t)n) != 0)
            return -1;
        while ((rc = proto_reader_next(&c->r, &msg, NULL)) == 1) {
            int ok = 0;

            if (proto_get(&msg.root, "event") != NULL) {
                /* A streamed part of a reply (list sends its items so). */
                proto_msg_free(&msg);
                continue;
            }
            if (proto_get_bool(&msg.root, "ok", &ok) != 0 || !ok) {
                const msgpack_object *err = NULL;
                const char *m = NULL;
                size_t ml = 0;

                if ((*bad)++ == 0 && proto_get_map(&msg.root, "error", &err) == 0 &&
                    proto_get_str(err, "message", &m, &ml) == 0)
                    printf("first error reply: %.*s\n", (int)ml, m);
            }
            proto_msg_free(&msg);
            lat[(*nlat)++] = now_s() - c->sent_at;
            c->inflight--;
        }
        if (rc < 0)
            return -1;
    }
}

static int
log_has(const char *text)
{
    char cmd[700];

    snprintf(cmd, sizeof(cmd), "grep -qF -- '%s' '%s'", text, agent.log);
    return system(cmd) == 0;
}

/* Oversized frame headers: an E_TOO_BIG reply, then the agent closes. */
static void
oversized(uint32_t declared)
{
    unsigned char hdr[4] = {(unsigned char)(declared >> 24), (unsigned char)(declared >> 16),
                            (unsigned char)(declared >> 8), (unsigned char)declared};
    int fd = agentproc_connect(&agent);
    struct proto_msg msg;
    const msgpack_object *err;
    const char *code = NULL;
    size_t len = 0;
    char what[128];

    snprintf(what, sizeof(what), "a frame declaring %u bytes gets E_TOO_BIG and a close",
             declared);
    if (fd < 0 || agentproc_hello(fd, PROTO_VERSION) != 0 ||
        agentproc_read(fd, &msg, 10000) != 1) {
        check(0, what);
        if (fd >= 0)
            close(fd);
        return;
    }
    proto_msg_free(&msg);
    if (agentproc_write(fd, hdr, sizeof(hdr)) != 0 || agentproc_read(fd, &msg, 10000) != 1) {
        check(0, what);
        close(fd);
        return;
    }
    if (proto_get_map(&msg.root, "error", &err) == 0)
        proto_get_str(err, "code", &code, &len);
    check(code != NULL && len == 9 && memcmp(code, "E_TOO_BIG", 9) == 0, what);
    proto_msg_free(&msg);
    check(agentproc_wait_eof(fd, 10000) == 1, "the agent closed after an oversized frame");
    close(fd);
}

static int
ping_ok(void)
{
    int fd = agentproc_connect(&agent), ok = 0;
    struct proto_msg msg;

    if (fd < 0)
        return 0;
    if (agentproc_hello(fd, PROTO_VERSION) == 0 && agentproc_read(fd, &msg, 10000) == 1) {
        proto_msg_free(&msg);
        if (agentproc_send_simple(fd, 1, "ping") == 0 && agentproc_read(fd, &msg, 10000) == 1) {
            proto_get_bool(&msg.root, "ok", &ok);
            proto_msg_free(&msg);
        }
    }
    close(fd);
    return ok;
}

int
main(int argc, char **argv)
{
    long requests = argc > 3 ? strtol(argv[3], NULL, 10) : 100000;
    int nconn = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 1000;
    long cap_mib = getenv("RSS_CAP_MIB") != NULL ? strtol(getenv("RSS_CAP_MIB"), NULL, 10)
                                                 : DEFAULT_RSS_CAP_MIB;
    struct rlimit rl;
    struct conn *good, slow[SLOWLORIS], deaf[NONREADERS];
    double *lat, t0, t_load, deadline;
    double deaf_bytes = 0;
    long nlat = 0, bad = 0, rss0, rss_peak, rss1, slow_drops = 0, deaf_drops = 0;
    long per_conn, good_done = 0;
    uint64_t next_id = 100;
    int ep, reconnect = 1, status;
    char cmd[1200], what[200];

    if (argc < 3 || requests <= 0 || nconn <= 0) {
        fprintf(stderr, "usage: test_ipc_load CERTAGENT CERTCTL [REQUESTS] [CONNECTIONS]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (ASAN_BUILD) {
        /* A small quarantine, so that RSS shows the agent's memory, not ASan's. */
        const char *old = getenv("ASAN_OPTIONS");
        char opts[512];

        snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=16", old != NULL ? old : "",
                 old != NULL && *old != '\0' ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Room for every connection at once (the agent inherits the limit). */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rlim_t want = (rlim_t)nconn + SLOWLORIS + NONREADERS + 512;

        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
            rl.rlim_max = want; /* works as root; otherwise the next line caps it */
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            getrlimit(RLIMIT_NOFILE, &rl);
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
                nconn = (int)rl.rlim_cur - SLOWLORIS - NONREADERS - 512;
                printf("RLIMIT_NOFILE is %ld: %d connections only\n", (long)rl.rlim_cur, nconn);
                if (nconn < 10)
                    return 1;
            }
        }
    }
    snprintf(cmd, sizeof(cmd),
             "{\"log_level\": \"info\", \"max_connections\": %d, \"ipc_frame_timeout\": %d}",
             nconn + SLOWLORIS + NONREADERS + 100, FRAME_TIMEOUT);
    if (agentproc_start(&agent, argv[1], cmd) != 0)
        return 1;
    per_conn = (requests + nconn - 1) / nconn;
    requests = per_conn * nconn;
    good = calloc((size_t)nconn, sizeof(*good));
    lat = malloc((size_t)requests * sizeof(*lat));
    hello_frame = request_frame(0, "hello", &hello_len);
    if (good == NULL || lat == NULL || hello_frame == NULL || (ep = epoll_create1(0)) < 0) {
        agentproc_kill(&agent);
        return 1;
    }

    /* Something for `list` to say: certificates in the store. */
    for (int i = 0; i < SEED_CERTS; i++) {
        snprintf(cmd, sizeof(cmd),
                 "'%s' --socket '%s' selfsigned load%02d --dns load%02d.test --key ec256 "
                 ">/dev/null 2>&1",
                 argv[2], agent.socket, i, i);
        if (system(cmd) != 0) {
            check(0, "certctl selfsigned failed");
            break;
        }
    }
    {
        size_t one;
        char *f = request_frame(7, "list", &one);

        list_len = one * 64;
        if (f == NULL || (list_frames = malloc(list_len)) == NULL)
            return 1;
        for (int i = 0; i < 64; i++)
            memcpy(list_frames + (size_t)i * one, f, one);
        free(f);
    }
    rss0 = rss_kib(agent.pid);

    oversized(PROTO_MAX_FRAME + 1);
    oversized(0xFFFFFFFFu);

    /* The abusers. */
    for (int i = 0; i < SLOWLORIS; i++) {
        if (slow_open(ep, &slow[i]) != 0) {
            check(0, "slowloris connect");
            return 1;
        }
    }
    for (int i = 0; i < NONREADERS; i++) {
        memset(&deaf[i], 0, sizeof(deaf[i]));
        deaf[i].kind = DEAF;
        proto_reader_init(&deaf[i].r);
        if ((deaf[i].fd = agentproc_connect(&agent)) < 0 ||
            agentproc_write(deaf[i].fd, hello_frame, hello_len) != 0) {
            check(0, "non-reading client connect");
            return 1;
        }
        set_nonblock(deaf[i].fd);
        watch(ep, &deaf[i], EPOLLOUT, EPOLL_CTL_ADD);
    }

    /* The well-behaved: connect and hello all of them first (all open at once). */
    t0 = now_s();
    for (int i = 0; i < nconn; i++) {
        struct conn *c = &good[i];
        struct proto_msg msg;

        c->kind = GOOD;
        proto_reader_init(&c->r);
        c->left = per_conn;
        if ((c->fd = agentproc_connect(&agent)) < 0 ||
            agentproc_hello(c->fd, PROTO_VERSION) != 0 ||
            agentproc_read(c->fd, &msg, 30000) != 1) {
            snprintf(what, sizeof(what), "well-behaved connection %d could not say hello", i);
            check(0, what);
            return 1;
        }
        proto_msg_free(&msg);
        set_nonblock(c->fd);
        good_batch(c, &next_id);
        if (flush_out(c) < 0) {
            check(0, "a well-behaved connection could not write");
            return 1;
        }
        watch(ep, c, EPOLLIN | (c->outoff < c->outlen ? EPOLLOUT : 0), EPOLL_CTL_ADD);
    }
    printf("%d well-behaved connections open (+%d slowloris, %d non-reading) in %.2f s\n", nconn,
           SLOWLORIS, NONREADERS, now_s() - t0);
    rss_peak = rss_kib(agent.pid);

    /* The loop: until every well-behaved request is answered and every abuser dropped. */
    t_load = now_s();
    deadline = t_load + 600;
    while (now_s() < deadline) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, 50);
        double now = now_s();
        int slow_live = 0, deaf_live = 0;

        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;

            if (c->fd < 0)
                continue;
            if (c->kind == DEAF) {
                /* Write until the agent drops us; never read. */
                for (;;) {
                    ssize_t w = send(c->fd, list_frames, list_len, MSG_NOSIGNAL);

                    if (w > 0) {
                        c->deaf_sent += (size_t)w;
                        if (c->deaf_sent > (size_t)512 << 20) {
                            check(0, "a non-reading client was not dropped after 512 MiB");
                            c->done = 1;
                            conn_close(ep, c);
                            break;
                        }
                        continue;
                    }
                    if (w < 0 && (errno == EAGAIN || errno == EINTR))
                        break;
                    c->done = 1;
                    deaf_drops++;
                    deaf_bytes += (double)c->deaf_sent;
                    conn_close(ep, c);
                    break;
                }
                continue;
            }
            if (c->kind == SLOW) {
                if (read_some(c, lat, &nlat, &bad) < 0) {
                    c->done = 1;
                    slow_drops++;
                    conn_close(ep, c);
                }
                continue;
            }
            /* GOOD */
            if ((evs[k].events & EPOLLOUT) && flush_out(c) < 0) {
                check(0, "a well-behaved connection failed to write");
                c->done = 1;
                conn_close(ep, c);
                continue;
            }
            if ((evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
                read_some(c, lat, &nlat, &bad) < 0) {
                snprintf(what, sizeof(what),
                         "a well-behaved connection was closed with %d replies outstanding",
                         c->inflight);
                check(0, what);
                c->done = 1;
                conn_close(ep, c);
                continue;
            }
            if (c->inflight == 0 && !c->done) {
                if (c->left == 0) {
                    c->done = 1;
                    good_done++;
                    continue;
                }
                good_batch(c, &next_id);
                if (flush_out(c) < 0) {
                    check(0, "a well-behaved connection failed to write");
                    c->done = 1;
                    conn_close(ep, c);
                    continue;
                }
            }
            watch(ep, c, EPOLLIN | (c->outoff < c->outlen ? EPOLLOUT : 0), EPOLL_CTL_MOD);
        }
        /* Slowloris: one byte per second each; a dropped one comes back while the load runs. */
        for (int i = 0; i < SLOWLORIS; i++) {
            struct conn *c = &slow[i];

            if (c->fd < 0) {
                if (!reconnect)
                    continue;
                if (slow_open(ep, c) != 0) {
                    check(0, "slowloris reconnect");
                    continue;
                }
            }
            slow_live++;
            if (now >= c->next_byte && c->slow_off < hello_len - 1) {
                if (send(c->fd, hello_frame + c->slow_off, 1, MSG_NOSIGNAL) == 1)
                    c->slow_off++;
                c->next_byte = now + 1.0;
            }
        }
        for (int i = 0; i < NONREADERS; i++)
            deaf_live += deaf[i].fd >= 0;
        {
            long r = rss_kib(agent.pid);

            if (r > rss_peak)
                rss_peak = r;
        }
        if (reconnect && good_done + (long)failures >= nconn) {
            double elapsed = now - t_load;

            printf("%ld requests on %d connections in %.2f s = %.0f requests/s\n", nlat, nconn,
                   elapsed, (double)nlat / elapsed);
            reconnect = 0;
            /* Now wait for the slowloris still connected to be dropped. */
            deadline = now + FRAME_TIMEOUT + 5;
        }
        if (!reconnect && slow_live == 0 && deaf_live == 0)
            break;
    }
    check(nlat == requests, "every well-behaved request was answered");
    snprintf(what, sizeof(what), "%ld of %ld replies were errors", bad, nlat);
    check(bad == 0, what);
    if (nlat > 0) {
        qsort(lat, (size_t)nlat, sizeof(*lat), cmp_double);
        printf("latency of well-behaved requests (batch of %d sent -> reply): p50 %.2f ms, "
               "p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
               BATCH, lat[nlat / 2] * 1e3, lat[nlat * 9 / 10] * 1e3, lat[nlat * 99 / 100] * 1e3,
               lat[nlat * 999 / 1000] * 1e3, lat[nlat - 1] * 1e3);
    }
    {
        int slow_left = 0, deaf_left = 0;

        for (int i = 0; i < SLOWLORIS; i++)
            slow_left += slow[i].fd >= 0;
        for (int i = 0; i < NONREADERS; i++)
            deaf_left += deaf[i].fd >= 0;
        printf("slowloris connections dropped by the agent: %ld; non-reading clients dropped: "
               "%ld (after %.1f MiB written each on average)\n",
               slow_drops, deaf_drops, deaf_drops > 0 ? deaf_bytes / deaf_drops / 1048576.0 : 0.0);
        snprintf(what, sizeof(what), "%d slowloris clients still connected %d s after the load",
                 slow_left, FRAME_TIMEOUT + 5);
        check(slow_left == 0 && slow_drops >= SLOWLORIS, what);
        snprintf(what, sizeof(what), "%d non-reading clients still connected", deaf_left);
        check(deaf_left == 0 && deaf_drops == NONREADERS, what);
    }
    check(log_has("did not complete a frame within 3 s (ipc_frame_timeout"),
          "the agent logged the slowloris drops");
    check(log_has("does not read its replies; dropping it"),
          "the agent logged the non-reading drops");
    check(ping_ok(), "the agent answers a ping after the abuse");
    rss1 = rss_kib(agent.pid);
    printf("agent VmRSS: %.1f MiB before, %.1f MiB peak, %.1f MiB after (cap %ld MiB)\n",
           rss0 / 1024.0, rss_peak / 1024.0, rss1 / 1024.0, cap_mib);
    snprintf(what, sizeof(what), "agent VmRSS peak %.1f MiB is over %ld MiB", rss_peak / 1024.0,
             cap_mib);
    check(rss_peak > 0 && rss_peak < cap_mib * 1024, what);

    for (int i = 0; i < nconn; i++)
        conn_close(ep, &good[i]);
    for (int i = 0; i < SLOWLORIS; i++)
        conn_close(ep, &slow[i]);
    for (int i = 0; i < NONREADERS; i++)
        conn_close(ep, &deaf[i]);
    close(ep);
    status = agentproc_stop(&agent);
    snprintf(what, sizeof(what),
             "agent exit status %d after SIGTERM (a leak report makes it "
             "non-zero under ASan)",
             status);
    check(status == 0, what);
    snprintf(cmd, sizeof(cmd),
             "grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|"
             "definitely lost: [1-9]' '%s'",
             agent.log);
    check(system(cmd) != 0, "no sanitizer or valgrind report in the agent's log");
    printf("%d passed, %d failed\n", checks, failures);
    if (failures != 0) {
        snprintf(cmd, sizeof(cmd), "tail -n 40 '%s'", agent.log);
        if (system(cmd) != 0)
            printf("(no agent log)\n");
    }
    agentproc_cleanup(&agent);
    free(good);
    free(lat);
    free(hello_frame);
    free(list_frames);
    return failures == 0 ? 0 : 1;
}
