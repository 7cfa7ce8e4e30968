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
#include <time.h>
#include <unistd.h>

/* The address of a Unix socket at path. */
static void
unix_address(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    snprintf(sa->sun_path, sizeof(sa->sun_path), "%.100s", path);
}

static int
bind_notify(struct agentproc *a)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    unix_address(&sa, a->notify);
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
        execl(agent_path, agent_path, "--foreground", "--config", a->config, "--socket", a->socket,
              "--state-dir", a->state, "--log-level", "debug", (char *)NULL);
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
    snprintf(a->spare_socket, sizeof(a->spare_socket), "%s/other.sock", a->dir);
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

int
agentproc_run_once(const struct agentproc *a, const char *agent_path, const char *socket,
                   const char *state, const char *log_path)
{
    struct timespec tick = {0, 10 * 1000 * 1000};
    pid_t pid = fork();
    int status;

    if (pid < 0)
        return -1;
    if (pid == 0) {
        int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);

        if (log >= 0) {
            dup2(log, 2);
            dup2(log, 1);
        }
        unsetenv("NOTIFY_SOCKET");
        execl(agent_path, agent_path, "--foreground", "--config", a->config, "--socket", socket,
              "--state-dir", state, (char *)NULL);
        _exit(127);
    }
    /* Bounded: an agent that was not refused would serve forever. */
    for (int i = 0; i < 6000; i++) {
        pid_t got = waitpid(pid, &status, WNOHANG);

        if (got == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (got < 0)
            return -1;
        nanosleep(&tick, NULL);
    }
    fprintf(stderr, "agentproc: %s still running after 60 s\n", agent_path);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

int
agentproc_socket_exists(const struct agentproc *a)
{
    struct stat st;

    return lstat(a->socket, &st) == 0;
}

const char *
agentproc_no_socket_file(void)
{
    return NULL;
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
    unix_address(&sa, a->socket);
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

int
agentproc_read_exact(int fd, void *data, size_t len, int timeout_ms)
{
    char *buf = data;
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
