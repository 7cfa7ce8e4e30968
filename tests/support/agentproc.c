#define _GNU_SOURCE
#include "agentproc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int
bind_notify(struct agentproc *a)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", a->notify);
    unlink(a->notify);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int
wait_ready(struct agentproc *a)
{
    struct pollfd p = {.fd = a->notify_fd, .events = POLLIN};
    char buf[256];

    for (;;) {
        int n = poll(&p, 1, 20000);
        ssize_t got;

        if (n <= 0) {
            fprintf(stderr, "agentproc: no READY=1 within 20 s (log: %s)\n", a->log);
            return -1;
        }
        got = recv(a->notify_fd, buf, sizeof(buf) - 1, 0);
        if (got <= 0)
            return -1;
        buf[got] = '\0';
        if (strstr(buf, "READY=1") != NULL)
            return 0;
    }
}

static int
spawn(struct agentproc *a, const char *agent_path)
{
    if ((a->notify_fd = bind_notify(a)) < 0) {
        perror("agentproc: notify socket");
        return -1;
    }
    a->pid = fork();
    if (a->pid < 0)
        return -1;
    if (a->pid == 0) {
        int log = open(a->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

        if (log >= 0) {
            dup2(log, 2);
            dup2(log, 1);
        }
        setenv("NOTIFY_SOCKET", a->notify, 1);
        execl(agent_path, agent_path, "--foreground", "--config", a->config, "--socket",
              a->socket, "--state-dir", a->state, "--log-level", "debug", (char *)NULL);
        _exit(127);
    }
    if (wait_ready(a) != 0) {
        agentproc_kill(a);
        return -1;
    }
    return 0;
}

int
agentproc_start(struct agentproc *a, const char *agent_path, const char *config_json)
{
    FILE *f;

    memset(a, 0, sizeof(*a));
    a->notify_fd = -1;
    snprintf(a->dir, sizeof(a->dir), "/tmp/certagent-test-XXXXXX");
    if (mkdtemp(a->dir) == NULL)
        return -1;
    snprintf(a->socket, sizeof(a->socket), "%s/agent.sock", a->dir);
    snprintf(a->state, sizeof(a->state), "%s/state", a->dir);
    snprintf(a->config, sizeof(a->config), "%s/certagent.json", a->dir);
    snprintf(a->notify, sizeof(a->notify), "%s/notify", a->dir);
    snprintf(a->log, sizeof(a->log), "%s/agent.log", a->dir);
    if ((f = fopen(a->config, "w")) == NULL)
        return -1;
    fputs(config_json != NULL ? config_json : "{}", f);
    fclose(f);
    return spawn(a, agent_path);
}

int
agentproc_restart(struct agentproc *a, const char *agent_path)
{
    if (a->notify_fd >= 0)
        close(a->notify_fd);
    return spawn(a, agent_path);
}

int
agentproc_stop(struct agentproc *a)
{
    int status;

    if (a->pid <= 0)
        return -1;
    kill(a->pid, SIGTERM);
    if (waitpid(a->pid, &status, 0) != a->pid)
        return -1;
    a->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void
agentproc_kill(struct agentproc *a)
{
    if (a->pid > 0) {
        kill(a->pid, SIGKILL);
        waitpid(a->pid, NULL, 0);
    }
    a->pid = 0;
}

void
agentproc_cleanup(struct agentproc *a)
{
    char cmd[400];

    if (a->notify_fd >= 0)
        close(a->notify_fd);
    a->notify_fd = -1;
    if (a->dir[0] == '\0' || getenv("KEEP_TEST_DIR") != NULL)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", a->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "agentproc: could not remove %s\n", a->dir);
}

int
agentproc_connect(const struct agentproc *a)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", a->socket);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int
agentproc_write(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int
send_writer(int fd, struct proto_writer *w)
{
    char *data = NULL;
    size_t len = 0;
    int rc = proto_writer_finish(w, &data, &len);

    proto_writer_destroy(w);
    if (rc != 0)
        return -1;
    rc = agentproc_write(fd, data, len);
    free(data);
    return rc;
}

int
agentproc_send_simple(int fd, uint64_t id, const char *op)
{
    struct proto_writer w;

    proto_writer_init(&w);
    msgpack_pack_map(&w.pk, 3);
    proto_pack_kv_uint(&w.pk, "id", id);
    proto_pack_kv_str(&w.pk, "op", op);
    proto_pack_str(&w.pk, "args");
    msgpack_pack_map(&w.pk, 0);
    return send_writer(fd, &w);
}

int
agentproc_hello(int fd, uint64_t proto)
{
    struct proto_writer w;

    proto_writer_init(&w);
    msgpack_pack_map(&w.pk, 3);
    proto_pack_kv_uint(&w.pk, "id", 0);
    proto_pack_kv_str(&w.pk, "op", "hello");
    proto_pack_str(&w.pk, "args");
    msgpack_pack_map(&w.pk, 2);
    proto_pack_kv_uint(&w.pk, "proto", proto);
    proto_pack_kv_str(&w.pk, "client", "test");
    return send_writer(fd, &w);
}

static int
read_exact(int fd, char *buf, size_t len, int timeout_ms)
{
    size_t got = 0;

    while (got < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, timeout_ms) <= 0)
            return -1;
        n = recv(fd, buf + got, len - got, 0);
        if (n == 0)
            return got == 0 ? 0 : -1;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        got += (size_t)n;
    }
    return 1;
}

int
agentproc_read(int fd, struct proto_msg *msg, int timeout_ms)
{
    unsigned char hdr[4];
    size_t len;
    char *payload;
    int rc;

    if ((rc = read_exact(fd, (char *)hdr, 4, timeout_ms)) != 1)
        return rc;
    len = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
    if (len > PROTO_MAX_FRAME || (payload = malloc(len ? len : 1)) == NULL)
        return -1;
    if (read_exact(fd, payload, len, timeout_ms) != 1) {
        free(payload);
        return -1;
    }
    rc = proto_decode(payload, len, msg, NULL);
    free(payload);
    return rc == 0 ? 1 : -1;
}

int
agentproc_wait_eof(int fd, int timeout_ms)
{
    char buf[4096];

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, timeout_ms) <= 0)
            return 0;
        n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 1;
        if (n < 0 && errno != EINTR)
            return 0;
    }
}
