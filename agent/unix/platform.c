#define _GNU_SOURCE
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "err.h"
#include "fsutil.h"

void
platform_syslog_open(const char *ident)
{
    openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
platform_syslog_write(int level, const char *line)
{
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

    if (level < 0 || level > 3)
        level = 0;
    syslog(prio[level], "%s", line);
}

int
platform_peer_get(uv_pipe_t *pipe, struct peer *out)
{
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    struct passwd pw, *res = NULL;
    char buf[2048];

    memset(out, 0, sizeof(*out));
    out->uid = out->gid = out->pid = -1;
    snprintf(out->name, sizeof(out->name), "unknown");
    if (uv_fileno((uv_handle_t *)pipe, &fd) != 0)
        return -E_IO;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return -E_IO;
    out->uid = (long)cred.uid;
    out->gid = (long)cred.gid;
    out->pid = (long)cred.pid;
    if (getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL)
        snprintf(out->name, sizeof(out->name), "%s", pw.pw_name);
    else
        snprintf(out->name, sizeof(out->name), "%ld", out->uid);
    return 0;
}

int
platform_peer_may_change(const struct peer *peer, long socket_gid)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    gid_t groups[256];
    int ngroups = (int)(sizeof(groups) / sizeof(groups[0]));

    if (peer->uid < 0)
        return 0;
    if (peer->uid == 0 || peer->uid == (long)geteuid())
        return 1;
    if (socket_gid < 0)
        return 0;
    if (peer->gid == socket_gid)
        return 1;
    if (getpwuid_r((uid_t)peer->uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
        return 0;
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &ngroups) < 0)
        return 0;
    for (int i = 0; i < ngroups; i++) {
        if ((long)groups[i] == socket_gid)
            return 1;
    }
    return 0;
}

/* Is something accepting connections on path?  1 yes, 0 no (refused / absent). */
static int
socket_is_live(const char *path)
{
    struct sockaddr_un sa;
    int fd, live = 0;

    if (strlen(path) >= sizeof(sa.sun_path))
        return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        live = 1;
    else if (errno == EAGAIN)
        live = 1; /* listening, backlog full */
    close(fd);
    return live;
}

int
platform_socket_prepare(const char *path, int *removed_stale, char **cause)
{
    char *dir = NULL, *slash;
    struct stat st;
    int rc = 0;
    int system = strncmp(path, "/run/", 5) == 0 || strncmp(path, "/var/run/", 9) == 0;

    *removed_stale = 0;
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        err_set(cause, "socket path %s is too long (at most %zu bytes)", path,
                sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        return -E_BAD_INPUT;
    }
    if ((dir = strdup(path)) == NULL)
        return -E_NOMEM;
    if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
        *slash = '\0';
        if (stat(dir, &st) != 0) {
            if ((rc = fsutil_mkdir_p(dir, system ? 0755 : 0700, cause)) != 0)
                goto out;
            if (stat(dir, &st) != 0) {
                err_set(cause, "cannot use socket directory %s: %s", dir, strerror(errno));
                rc = -E_IO;
                goto out;
            }
        }
        if (!S_ISDIR(st.st_mode)) {
            err_set(cause, "socket directory %s is not a directory", dir);
            rc = -E_BAD_INPUT;
            goto out;
        }
        /* A directory someone else controls could swap our socket: refuse it. */
        if (st.st_uid != geteuid() && st.st_uid != 0) {
            err_set(cause, "socket directory %s is owned by uid %lu, not by us: refusing it", dir,
                    (unsigned long)st.st_uid);
            rc = -E_DENIED;
            goto out;
        }
        if ((st.st_mode & 0022) != 0 && !(st.st_mode & S_ISVTX)) {
            err_set(cause,
                    "socket directory %s is writable by group or others (mode %04o): "
                    "refusing it",
                    dir, (unsigned)(st.st_mode & 07777));
            rc = -E_DENIED;
            goto out;
        }
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            err_set(cause, "%s exists and is not a socket: refusing to replace it", path);
            rc = -E_EXISTS;
            goto out;
        }
        if (socket_is_live(path)) {
            err_set(cause, "another certagent is already listening on %s", path);
            rc = -E_BUSY;
            goto out;
        }
        if (unlink(path) != 0 && errno != ENOENT) {
            err_set(cause, "cannot remove stale socket %s: %s", path, strerror(errno));
            rc = -E_IO;
            goto out;
        }
        *removed_stale = 1;
    }
out:
    free(dir);
    return rc;
}

int
platform_socket_secure(uv_pipe_t *listener, const char *path, const char *group, int mode,
                       long *gid_out, char **cause)
{
    struct group gr, *res = NULL;
    char buf[4096];
    gid_t gid = (gid_t)-1;

    (void)listener;
    *gid_out = -1;
    if (group != NULL) {
        if (getgrnam_r(group, &gr, buf, sizeof(buf), &res) != 0 || res == NULL) {
            err_set(cause, "socket group '%s' does not exist", group);
            return -E_NOT_FOUND;
        }
        gid = gr.gr_gid;
        if (chown(path, (uid_t)-1, gid) != 0) {
            err_set(cause, "cannot give socket %s to group %s: %s", path, group, strerror(errno));
            return -E_IO;
        }
        *gid_out = (long)gid;
    }
    if (chmod(path, (mode_t)mode) != 0) {
        err_set(cause, "cannot set mode %04o on socket %s: %s", (unsigned)mode, path,
                strerror(errno));
        return -E_IO;
    }
    return 0;
}

int
platform_group_exists(const char *name)
{
    struct group gr, *res = NULL;
    char buf[4096];

    return getgrnam_r(name, &gr, buf, sizeof(buf), &res) == 0 && res != NULL;
}

void
platform_socket_remove(const char *path)
{
    struct stat st;

    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == geteuid())
        unlink(path);
}

void
platform_notify(const char *state)
{
    const char *addr = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    size_t len;
    socklen_t salen;
    int fd;

    if (addr == NULL || (addr[0] != '/' && addr[0] != '@'))
        return;
    len = strlen(addr);
    if (len >= sizeof(sa.sun_path))
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, addr, len);
    if (addr[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        return;
    (void)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    close(fd);
}

int
platform_daemonize(int *ready_handle, char **cause)
{
    int fds[2];
    pid_t pid;

    if (pipe(fds) != 0) {
        err_set(cause, "cannot create pipe: %s", strerror(errno));
        return -E_IO;
    }
    if ((pid = fork()) < 0) {
        err_set(cause, "cannot fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -E_IO;
    }
    if (pid > 0) {
        /* The launcher: wait for the daemon's verdict. */
        char msg[1024];
        size_t got = 0;
        ssize_t n;

        close(fds[1]);
        while (got < sizeof(msg) - 1 &&
               ((n = read(fds[0], msg + got, sizeof(msg) - 1 - got)) > 0 ||
                (n < 0 && errno == EINTR)))
            if (n > 0)
                got += (size_t)n;
        msg[got] = '\0';
        if (got > 0 && msg[0] == '+')
            _exit(0);
        fprintf(stderr, "certagent: %s\n",
                got > 1 ? msg + 1 : "the daemon exited before it was ready");
        _exit(1);
    }
    close(fds[0]);
    if (setsid() < 0) {
        err_set(cause, "setsid: %s", strerror(errno));
        return -E_IO;
    }
    if ((pid = fork()) < 0) {
        err_set(cause, "cannot fork: %s", strerror(errno));
        return -E_IO;
    }
    if (pid > 0)
        _exit(0);
    if (chdir("/") != 0) {
        err_set(cause, "chdir /: %s", strerror(errno));
        return -E_IO;
    }
    umask(022);
    {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);

        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
            if (null > STDERR_FILENO)
                close(null);
        }
    }
    *ready_handle = fds[1];
    return 0;
}

void
platform_daemon_ready(int ready_handle, const char *error)
{
    char msg[1024];
    int n;

    if (ready_handle < 0)
        return;
    n = snprintf(msg, sizeof(msg), "%c%s", error == NULL ? '+' : '-', error ? error : "");
    if (n > (int)sizeof(msg) - 1)
        n = (int)sizeof(msg) - 1;
    if (n > 0)
        (void)!write(ready_handle, msg, (size_t)n);
    close(ready_handle);
}

static void
on_signal(uv_signal_t *handle, int signum)
{
    struct platform_signals *s = handle->data;

    if (signum == SIGHUP) {
        if (s->on_reload != NULL)
            s->on_reload(s->arg);
    } else if (s->on_stop != NULL) {
        s->on_stop(s->arg);
    }
}

int
platform_signals_start(uv_loop_t *loop, struct platform_signals *s, char **cause)
{
    int rc;

    signal(SIGPIPE, SIG_IGN);
    uv_signal_t *handles[] = {&s->term, &s->intr, &s->hup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};

    for (int i = 0; i < 3; i++) {
        if ((rc = uv_signal_init(loop, handles[i])) != 0 ||
            (rc = uv_signal_start(handles[i], on_signal, nums[i])) != 0) {
            err_set(cause, "cannot watch signal %d: %s", nums[i], uv_strerror(rc));
            return -E_INTERNAL;
        }
        handles[i]->data = s;
        /* Signal watchers must not keep the loop alive once everything else is done. */
        uv_unref((uv_handle_t *)handles[i]);
    }
    return 0;
}

void
platform_signals_close(struct platform_signals *s)
{
    uv_signal_t *handles[] = {&s->term, &s->intr, &s->hup};

    for (int i = 0; i < 3; i++) {
        if (handles[i]->loop != NULL && !uv_is_closing((uv_handle_t *)handles[i]))
            uv_close((uv_handle_t *)handles[i], NULL);
    }
}

int
platform_service_install(const char *const *args, int nargs, char **cause)
{
    (void)args;
    (void)nargs;
    err_set(cause, "--install-service is for Windows; with systemd, install the unit from "
                   "the package and run 'systemctl enable --now certagent'");
    return -E_BAD_INPUT;
}

int
platform_service_uninstall(char **cause)
{
    err_set(cause, "--uninstall-service is for Windows; use 'systemctl disable --now certagent'");
    return -E_BAD_INPUT;
}

int
platform_service_run(int (*run)(void *arg), void *arg, char **cause)
{
    (void)run;
    (void)arg;
    err_set(cause, "--service is for Windows; under systemd use --foreground");
    return -E_BAD_INPUT;
}

int
platform_process_harden(int allow_core_dumps, unsigned long nofile_max, unsigned long *nofile,
                        char **cause)
{
    struct rlimit rl;
    int rc = 0;

    *nofile = 0;
    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)nofile_max
                          ? (rlim_t)nofile_max
                          : rl.rlim_max;

        /* A refusal leaves the limit as it was, which *nofile tells. */
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
            rl.rlim_cur = want;
            (void)setrlimit(RLIMIT_NOFILE, &rl);
            (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
        *nofile = rl.rlim_cur == RLIM_INFINITY ? (unsigned long)-1 : (unsigned long)rl.rlim_cur;
    }
    if (allow_core_dumps)
        goto out;
    /* The soft limit only: a hook may raise its own (and execve makes it dumpable). */
    if ((rc = getrlimit(RLIMIT_CORE, &rl)) == 0) {
        rl.rlim_cur = 0;
        rc = setrlimit(RLIMIT_CORE, &rl);
    }
    if (rc != 0) {
        err_set(cause, "cannot disable core dumps (RLIMIT_CORE): %s", strerror(errno));
        rc = -E_INTERNAL;
        goto out;
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        err_set(cause, "cannot make the process not dumpable (PR_SET_DUMPABLE): %s",
                strerror(errno));
        rc = -E_INTERNAL;
    }
out:
    return rc;
}

size_t
platform_alloc_size(void *p)
{
    return p != NULL ? malloc_usable_size(p) : 0;
}

long
platform_pid(void)
{
    return (long)getpid();
}

long
platform_http_ssl_options(void)
{
    return 0;
}

void
platform_shell_argv(const char *command, char *argv[6], unsigned *flags)
{
    argv[0] = "/bin/sh";
    argv[1] = "-c";
    argv[2] = (char *)command;
    argv[3] = NULL;
    argv[4] = NULL;
    argv[5] = NULL;
    *flags = platform_hook_flags();
}

unsigned
platform_hook_flags(void)
{
    /* Its own session, so that a timeout ends everything the hook started. */
    return UV_PROCESS_DETACHED;
}

void
platform_shell_free(char *argv[6])
{
    (void)argv;
}

void
platform_process_kill_tree(uv_process_t *proc, int hard)
{
    int sig = hard ? SIGKILL : SIGTERM;

    if (proc->pid > 0 && uv_kill(-proc->pid, sig) != 0)
        uv_process_kill(proc, sig);
}
