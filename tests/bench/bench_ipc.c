/*
 * IPC benchmark: no-op (ping) round trips on one connection and on many
 * concurrent connections, agent idle RSS and idle wake-ups.  Prints figures;
 * asserts nothing (see tests/bench/README.md).
 *
 * usage: bench_ipc PATH-TO-CERTAGENT [REQUESTS] [CONNECTIONS]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentproc.h"

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static char *
ping_frame(uint64_t id, size_t *len)
{
    struct proto_writer w;
    char *data = NULL;

    proto_writer_init(&w);
    msgpack_pack_map(&w.pk, 3);
    proto_pack_kv_uint(&w.pk, "id", id);
    proto_pack_kv_str(&w.pk, "op", "ping");
    proto_pack_str(&w.pk, "args");
    msgpack_pack_map(&w.pk, 0);
    if (proto_writer_finish(&w, &data, len) != 0)
        data = NULL;
    proto_writer_destroy(&w);
    return data;
}

static void
report(const char *what, double *lat, long n, double elapsed)
{
    qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
    printf("%-34s %8ld req in %6.3f s = %9.0f req/s; latency p50 %6.1f us, p99 %6.1f us, "
           "max %7.1f us\n",
           what, n, elapsed, (double)n / elapsed, lat[n / 2] * 1e6, lat[(n * 99) / 100] * 1e6,
           lat[n - 1] * 1e6);
}

/* Reads replies into r until `want` frames have arrived; -1 on error. */
static int
read_frames(int fd, struct proto_reader *r, long want)
{
    char buf[65536];

    while (want > 0) {
        struct proto_msg msg;
        int rc;

        while (want > 0 && (rc = proto_reader_next(r, &msg, NULL)) == 1) {
            proto_msg_free(&msg);
            want--;
        }
        if (want == 0)
            break;
        {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);

            if (n <= 0 || proto_reader_feed(r, buf, (size_t)n) != 0)
                return -1;
        }
    }
    return 0;
}

/*
 * One connection, `depth` requests in flight (1: strictly sequential round
 * trips).  Latency is from sending a batch to receiving its last reply.
 */
static int
bench_one_connection(struct agentproc *a, long n, int depth)
{
    int fd = agentproc_connect(a);
    long batches = n / depth;
    double *lat = malloc((size_t)batches * sizeof(*lat)), t0;
    struct proto_reader r;
    char *frames;
    size_t len, total;

    if (fd < 0 || lat == NULL || agentproc_hello(fd, PROTO_VERSION) != 0)
        return -1;
    proto_reader_init(&r);
    if (read_frames(fd, &r, 1) != 0)
        return -1;
    {
        char *one = ping_frame(1, &len);

        total = len * (size_t)depth;
        frames = malloc(total);
        for (int i = 0; i < depth; i++)
            memcpy(frames + (size_t)i * len, one, len);
        free(one);
    }
    t0 = now_s();
    for (long i = 0; i < batches; i++) {
        double s = now_s();

        if (agentproc_write(fd, frames, total) != 0 || read_frames(fd, &r, depth) != 0)
            return -1;
        lat[i] = now_s() - s;
    }
    {
        char what[64];

        snprintf(what, sizeof(what), "1 connection, %d in flight", depth);
        report(what, lat, batches, now_s() - t0);
        if (depth > 1)
            printf("%-34s %8ld req              = %9.0f req/s\n", "  (requests, not batches)",
                   batches * depth, (double)(batches * depth) / (now_s() - t0));
    }
    proto_reader_destroy(&r);
    free(frames);
    close(fd);
    free(lat);
    return 0;
}

/* nconn connections, each with one request outstanding at a time, driven by poll. */
static int
bench_concurrent(struct agentproc *a, long total, int nconn)
{
    struct pollfd *pfd = calloc((size_t)nconn, sizeof(*pfd));
    double *sent_at = calloc((size_t)nconn, sizeof(*sent_at));
    double *lat = malloc((size_t)total * sizeof(*lat)), t0;
    long done = 0, issued = 0;
    char *frame;
    size_t flen;

    if (pfd == NULL || sent_at == NULL || lat == NULL || (frame = ping_frame(1, &flen)) == NULL)
        return -1;
    for (int i = 0; i < nconn; i++) {
        struct proto_msg msg;

        pfd[i].fd = agentproc_connect(a);
        if (pfd[i].fd < 0 || agentproc_hello(pfd[i].fd, PROTO_VERSION) != 0 ||
            agentproc_read(pfd[i].fd, &msg, 5000) != 1) {
            fprintf(stderr, "bench_ipc: connection %d failed\n", i);
            return -1;
        }
        proto_msg_free(&msg);
        pfd[i].events = POLLIN;
    }
    t0 = now_s();
    for (int i = 0; i < nconn && issued < total; i++, issued++) {
        sent_at[i] = now_s();
        if (agentproc_write(pfd[i].fd, frame, flen) != 0)
            return -1;
    }
    while (done < total) {
        int n = poll(pfd, (nfds_t)nconn, 5000);

        if (n <= 0) {
            fprintf(stderr, "bench_ipc: stalled at %ld/%ld\n", done, total);
            return -1;
        }
        for (int i = 0; i < nconn; i++) {
            struct proto_msg msg;

            if (!(pfd[i].revents & POLLIN))
                continue;
            if (agentproc_read(pfd[i].fd, &msg, 5000) != 1)
                return -1;
            proto_msg_free(&msg);
            lat[done++] = now_s() - sent_at[i];
            if (issued < total) {
                issued++;
                sent_at[i] = now_s();
                if (agentproc_write(pfd[i].fd, frame, flen) != 0)
                    return -1;
            }
        }
    }
    {
        char what[64];

        snprintf(what, sizeof(what), "%d connections, 1 in flight each", nconn);
        report(what, lat, total, now_s() - t0);
    }
    for (int i = 0; i < nconn; i++)
        close(pfd[i].fd);
    free(frame);
    free(pfd);
    free(sent_at);
    free(lat);
    return 0;
}

/* The machine's floor: a bare Unix-socket ping-pong between two processes. */
static void
bench_raw_pingpong(long n)
{
    int sv[2];
    char b[64];
    pid_t pid;
    double t0;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return;
    if ((pid = fork()) == 0) {
        close(sv[0]);
        for (;;) {
            ssize_t r = read(sv[1], b, sizeof(b));

            if (r <= 0 || write(sv[1], b, (size_t)r) != r)
                _exit(0);
        }
    }
    close(sv[1]);
    t0 = now_s();
    for (long i = 0; i < n; i++) {
        if (write(sv[0], "ping", 4) != 4 || read(sv[0], b, sizeof(b)) <= 0)
            break;
    }
    printf("%-34s %8ld round trips = %9.0f /s; %.1f us each (no agent: the floor)\n",
           "raw Unix socket ping-pong", n, (double)n / (now_s() - t0),
           (now_s() - t0) / (double)n * 1e6);
    close(sv[0]);
    waitpid(pid, NULL, 0);
}

/* VmRSS in KiB and context switches of pid. */
static void
proc_stats(pid_t pid, long *rss_kib, long *switches)
{
    char path[64], line[256];
    FILE *f;

    *rss_kib = *switches = -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    if ((f = fopen(path, "r")) == NULL)
        return;
    *switches = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        long v;

        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            *rss_kib = v;
        else if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
            *switches += v;
        else if (sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
            *switches += v;
    }
    fclose(f);
}

int
main(int argc, char **argv)
{
    struct agentproc a;
    long requests = argc > 2 ? strtol(argv[2], NULL, 10) : 100000;
    int conns = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 200;
    long rss0, sw0, rss1, sw1;
    struct timespec idle = {5, 0};

    if (argc < 2) {
        fprintf(stderr, "usage: bench_ipc PATH-TO-CERTAGENT [REQUESTS] [CONNECTIONS]\n");
        return 2;
    }
    if (agentproc_start(&a, argv[1], "{\"log_level\": \"warn\"}") != 0)
        return 1;
    bench_raw_pingpong(requests);
    proc_stats(a.pid, &rss0, &sw0);
    nanosleep(&idle, NULL);
    proc_stats(a.pid, &rss1, &sw1);
    printf("agent idle RSS after start:        %ld KiB (%.2f MiB)\n", rss1, rss1 / 1024.0);
    printf("agent wake-ups while idle 5 s:     %ld context switches\n", sw1 - sw0);
    if (bench_one_connection(&a, requests, 1) != 0 ||
        bench_one_connection(&a, requests, 16) != 0 ||
        bench_concurrent(&a, requests, conns) != 0) {
        agentproc_kill(&a);
        agentproc_cleanup(&a);
        return 1;
    }
    proc_stats(a.pid, &rss1, &sw1);
    printf("agent RSS after the load:          %ld KiB (%.2f MiB)\n", rss1, rss1 / 1024.0);
    printf("agent exit status after SIGTERM:   %d\n", agentproc_stop(&a));
    agentproc_cleanup(&a);
    return 0;
}
