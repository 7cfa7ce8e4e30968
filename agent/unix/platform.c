#define _GNU_SOURCE
#include "platform.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <sys/syscall.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "err.h"
#include "sys.h"
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

/* Is the peer a member of group gid: its group at connection, or one of its user's groups? */
static int
peer_in_group(const struct peer *peer, long gid)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    gid_t *groups = NULL;
    int size = 64, n = 0, member = 0;

    if (gid < 0)
        return 0;
    if (peer->gid == gid)
        return 1;
    if (getpwuid_r((uid_t)peer->uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
        goto out;
    /* When the groups do not fit, getgrouplist says how many there are: one more try. */
    for (int tries = 0; tries < 2; tries++) {
        free(groups);
        if ((groups = calloc((size_t)size, sizeof(*groups))) == NULL)
            goto out;
        n = size;
        if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) >= 0)
            break;
        if (n <= size || n > 65536)
            goto out;
        size = n;
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        if ((long)groups[i] == gid)
            member = 1;
    }
out:
    free(groups);
    return member;
}

int
platform_peer_has_right(const struct peer *peer, enum peer_right right, long socket_gid,
                        long operate_gid)
{
    if (right == PEER_RIGHT_READ)
        return 1;
    if (peer->uid < 0)
        return 0;
    if (peer->uid == 0 || peer->uid == (long)geteuid())
        return 1;
    if (peer_in_group(peer, socket_gid))
        return 1;
    return right == PEER_RIGHT_OPERATE && peer_in_group(peer, operate_gid);
}

int
platform_group_id(const char *name, long *gid, char **cause)
{
    struct group gr, *res = NULL;
    char buf[4096];

    *gid = -1;
    if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) != 0 || res == NULL) {
        err_set(cause, "group '%s' does not exist", name);
        return -E_NOT_FOUND;
    }
    *gid = (long)gr.gr_gid;
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

/*
 * The socket's directory, dir, exists: may we put our socket in it?  It must
 * be ours or root's and not writable by group or others (unless sticky), and
 * a symbolic link counts only when ours or root's.  This is what makes the
 * /tmp/certagent-UID fallback safe: anyone may create that name in /tmp
 * first, as with tmux's /tmp/tmux-UID, but only we (or root) can own it.
 */
static int
socket_dir_check(const char *dir, char **cause)
{
    struct stat st;
    char who[96];
    uid_t me = geteuid();

    if (lstat(dir, &st) != 0) {
        err_set(cause, "cannot use socket directory %s: %s", dir, strerror(errno));
        return -E_IO;
    }
    if (S_ISLNK(st.st_mode)) {
        if (st.st_uid != me && st.st_uid != 0) {
            sys_uid_words((unsigned long)st.st_uid, who, sizeof(who));
            err_set(cause,
                    "socket directory %s is a symbolic link owned by %s, not by us: refusing it",
                    dir, who);
            return -E_DENIED;
        }
        if (stat(dir, &st) != 0) {
            err_set(cause, "cannot use socket directory %s: %s", dir, strerror(errno));
            return -E_IO;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        err_set(cause, "socket directory %s is not a directory", dir);
        return -E_BAD_INPUT;
    }
    /* A directory someone else controls could swap our socket: refuse it. */
    if (st.st_uid != me && st.st_uid != 0) {
        sys_uid_words((unsigned long)st.st_uid, who, sizeof(who));
        err_set(cause, "socket directory %s is owned by %s, not by us: refusing it", dir, who);
        return -E_DENIED;
    }
    if ((st.st_mode & 0022) != 0 && !(st.st_mode & S_ISVTX)) {
        err_set(cause,
                "socket directory %s is writable by group or others (mode %04o): "
                "refusing it",
                dir, (unsigned)(st.st_mode & 07777));
        return -E_DENIED;
    }
    return 0;
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
        if (lstat(dir, &st) != 0 && errno == ENOENT) {
            if ((rc = fsutil_mkdir_p(dir, system ? 0755 : 0700, cause)) != 0)
                goto out;
        }
        if ((rc = socket_dir_check(dir, cause)) != 0)
            goto out;
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
platform_state_dir_check(const char *dir, char **cause)
{
    struct stat st;
    char owner[96], me[96];

    if (stat(dir, &st) != 0) {
        err_set(cause, "cannot use the state directory %s: %s", dir, strerror(errno));
        return -E_IO;
    }
    if (!S_ISDIR(st.st_mode)) {
        err_set(cause, "the state directory %s is not a directory", dir);
        return -E_BAD_INPUT;
    }
    sys_uid_words((unsigned long)st.st_uid, owner, sizeof(owner));
    sys_uid_words((unsigned long)geteuid(), me, sizeof(me));
    if (st.st_uid != geteuid()) {
        err_set(cause,
                "refusing the state directory %s: it is owned by %s, mode %04o, not by the "
                "agent's user %s, and its owner could read or replace the private keys; give "
                "it to %s or choose another directory",
                dir, owner, (unsigned)(st.st_mode & 07777), me, me);
        return -E_DENIED;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        err_set(cause,
                "refusing the state directory %s: it is writable by group or others (owner %s, "
                "mode %04o), so other users could replace keys and certificates; make it "
                "private (chmod go-w)",
                dir, owner, (unsigned)(st.st_mode & 07777));
        return -E_DENIED;
    }
    return 0;
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
platform_socket_bind(uv_pipe_t *listener, const char *path)
{
    return uv_pipe_bind(listener, path);
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

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* What hook_launcher runs hooks through: this executable, or "" (spawned directly). */
static char hook_launcher[PATH_MAX];

/*
 * Applies close (or, with cloexec, FD_CLOEXEC) to every descriptor from
 * lowfd up: close_range(2) (Linux 5.9, CLOSE_RANGE_CLOEXEC 5.11), else the
 * list in /proc/self/fd, else every number below the descriptor limit.
 */
static void
fds_from(int lowfd, int cloexec)
{
    DIR *dir;
    struct dirent *e;
    long max;

#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, cloexec ? CLOSE_RANGE_CLOEXEC : 0) == 0)
        return;
#endif
    if ((dir = opendir("/proc/self/fd")) != NULL) {
        /* /proc lists descriptors by number: closing one already listed skips nothing. */
        while ((e = readdir(dir)) != NULL) {
            char *end;
            long fd = strtol(e->d_name, &end, 10);

            if (*end != '\0' || end == e->d_name || fd < lowfd || fd == dirfd(dir))
                continue;
            if (cloexec)
                (void)fcntl((int)fd, F_SETFD, fcntl((int)fd, F_GETFD) | FD_CLOEXEC);
            else
                (void)close((int)fd);
        }
        closedir(dir);
        return;
    }
    max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 1048576)
        max = 1048576;
    for (long fd = lowfd; fd < max; fd++) {
        if (cloexec)
            (void)fcntl((int)fd, F_SETFD, FD_CLOEXEC);
        else
            (void)close((int)fd);
    }
}

void
platform_inherited_fds_private(void)
{
    fds_from(STDERR_FILENO + 1, 1);
}

void
platform_hook_launcher_enable(void)
{
    size_t len = sizeof(hook_launcher);

    /*
     * /proc/self/exe in the child is the agent's own executable even when
     * a package upgrade has replaced the file; uv_exepath where there is no
     * /proc.
     */
    if (access("/proc/self/exe", X_OK) == 0)
        snprintf(hook_launcher, sizeof(hook_launcher), "/proc/self/exe");
    else if (uv_exepath(hook_launcher, &len) != 0)
        hook_launcher[0] = '\0';
}

/* Can file be executed, as execvp would find it?  0 or a libuv error. */
static int
program_check(const char *file)
{
    const char *path = getenv("PATH"), *p, *colon;
    char full[PATH_MAX];
    struct stat st;
    int err = ENOENT;

    if (file[0] == '\0')
        return UV_ENOENT;
    if (strchr(file, '/') != NULL)
        return access(file, X_OK) == 0 ? 0 : uv_translate_sys_error(errno);
    for (p = path != NULL ? path : "/usr/local/bin:/usr/bin:/bin"; *p != '\0'; p = colon + 1) {
        size_t dlen;
        int n;

        colon = strchr(p, ':');
        if (colon == NULL)
            colon = p + strlen(p);
        dlen = (size_t)(colon - p);
        n = snprintf(full, sizeof(full), "%.*s%s%s", (int)dlen, p, dlen > 0 ? "/" : "", file);
        if (n > 0 && (size_t)n < sizeof(full) && stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(full, X_OK) == 0)
                return 0;
            err = EACCES;
        }
        if (*colon == '\0')
            break;
    }
    return uv_translate_sys_error(err);
}

int
platform_hook_argv(char *const *args, char ***out)
{
    size_t n = 0, k = 0;
    char **argv;
    int rc;

    *out = NULL;
    if (hook_launcher[0] != '\0' && (rc = program_check(args[0])) != 0)
        return rc;
    while (args[n] != NULL)
        n++;
    if ((argv = calloc(n + 3, sizeof(*argv))) == NULL)
        return UV_ENOMEM;
    if (hook_launcher[0] != '\0') {
        argv[k++] = hook_launcher;
        argv[k++] = PLATFORM_EXEC_HOOK_ARG;
    }
    for (size_t i = 0; i < n; i++)
        argv[k++] = args[i];
    *out = argv;
    return 0;
}

int
platform_hook_exec(int argc, char **argv)
{
    if (argc < 1 || argv[0] == NULL) {
        fprintf(stderr, "certagent: %s needs a program to run\n", PLATFORM_EXEC_HOOK_ARG);
        return 2;
    }
    fds_from(STDERR_FILENO + 1, 0);
    execvp(argv[0], argv);
    fprintf(stderr, "certagent: cannot run %s: %s\n", argv[0], strerror(errno));
    return 127;
}

void
platform_process_kill_tree(uv_process_t *proc, int hard)
{
    int sig = hard ? SIGKILL : SIGTERM;

    if (proc->pid > 0 && uv_kill(-proc->pid, sig) != 0)
        uv_process_kill(proc, sig);
}
