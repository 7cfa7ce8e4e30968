/*
 * agent-up LOG CERTAGENT [ARGS...]: starts certagent in the foreground with
 * its output appended to LOG, waits for its READY=1 on a private
 * NOTIFY_SOCKET (no polling, no sleeps), prints its pid and exits 0, leaving
 * the agent running.  If the agent exits first, prints LOG and exits 1.
 * Used by the shell integration tests.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void
print_log(const char *path)
{
    char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL)
        return;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fclose(f);
}

int
main(int argc, char **argv)
{
    struct sockaddr_un sa;
    char dir[] = "/tmp/agent-up-XXXXXX";
    int fd, status;
    pid_t pid;
    char buf[512];

    if (argc < 3) {
        fprintf(stderr, "usage: agent-up LOG CERTAGENT [ARGS...]\n");
        return 2;
    }
    if (mkdtemp(dir) == NULL)
        return 1;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("agent-up: notify socket");
        return 1;
    }
    if ((pid = fork()) < 0)
        return 1;
    if (pid == 0) {
        int log = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);

        if (log >= 0) {
            dup2(log, 1);
            dup2(log, 2);
            close(log);
        }
        setsid();
        setenv("NOTIFY_SOCKET", sa.sun_path, 1);
        execv(argv[2], argv + 2);
        fprintf(stderr, "agent-up: cannot run %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    for (int waited = 0; waited < 300; waited++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, 100);

        if (n > 0) {
            ssize_t got = recv(fd, buf, sizeof(buf) - 1, 0);

            if (got > 0) {
                buf[got] = '\0';
                if (strstr(buf, "READY=1") != NULL) {
                    printf("%ld\n", (long)pid);
                    unlink(sa.sun_path);
                    rmdir(dir);
                    return 0;
                }
            }
        }
        /* The 100 ms slices only bound how late a dead child is noticed. */
        if (waitpid(pid, &status, WNOHANG) == pid) {
            print_log(argv[1]);
            fprintf(stderr, "agent-up: certagent exited with status %d before it was ready\n",
                    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
            unlink(sa.sun_path);
            rmdir(dir);
            return 1;
        }
    }
    kill(pid, SIGKILL);
    print_log(argv[1]);
    fprintf(stderr, "agent-up: certagent was not ready within 30 s\n");
    unlink(sa.sun_path);
    rmdir(dir);
    return 1;
}
