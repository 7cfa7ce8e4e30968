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

static int
bench_one_connection(struct agentproc *a, long n)
{
    int fd = agentproc_connect(a);
    double *lat = malloc((size_t)n * sizeof(*lat)), t0;
    struct proto_msg msg;

    if (fd < 0 || lat == NULL || agentproc_hello(fd, PROTO_VERSION) != 0 ||
        agentproc_read(fd, &msg, 5000) != 1)
        return -1;
    proto_msg_free(&msg);
    t0 = now_s();
    for (long i = 0; i < n; i++) {
        size_t len;
        char *f = ping_frame((uint64_t)i + 1, &len);
        double s = now_s();

        if (f == NULL || agentproc_write(fd, f, len) != 0 || agentproc_read(fd, &msg, 5000) != 1)
            return -1;
        lat[i] = now_s() - s;
        proto_msg_free(&msg);
        free(f);
    }
    report("1 connection, sequential", lat, n, now_s() - t0);
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
    proc_stats(a.pid, &rss0, &sw0);
    nanosleep(&idle, NULL);
    proc_stats(a.pid, &rss1, &sw1);
    printf("agent idle RSS after start:        %ld KiB (%.2f MiB)\n", rss1, rss1 / 1024.0);
    printf("agent wake-ups while idle 5 s:     %ld context switches\n", sw1 - sw0);
    if (bench_one_connection(&a, requests) != 0 || bench_concurrent(&a, requests, conns) != 0) {
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
