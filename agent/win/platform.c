/*
 * The agent's platform layer on Windows.  This is the first slice of the
 * Windows issue: console mode (--console/--foreground), the named pipe, the
 * Event Log sink and stop signals.  The service entry, the pipe's explicit
 * DACL and the certificate store come next.
 */
#include "platform.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>

#include "err.h"

static HANDLE event_source;

void
platform_syslog_open(const char *ident)
{
    event_source = RegisterEventSourceA(NULL, ident);
}

void
platform_syslog_write(int level, const char *line)
{
    static const WORD types[] = {EVENTLOG_ERROR_TYPE, EVENTLOG_WARNING_TYPE,
                                 EVENTLOG_INFORMATION_TYPE, EVENTLOG_INFORMATION_TYPE};
    const char *strings[1] = {line};

    if (level < 0 || level > 3)
        level = 0;
    if (event_source != NULL)
        ReportEventA(event_source, types[level], 0, 0, NULL, 1, 0, strings, NULL);
}

int
platform_peer_get(uv_pipe_t *pipe, struct peer *out)
{
    uv_os_fd_t h;
    ULONG pid = 0;

    memset(out, 0, sizeof(*out));
    out->uid = out->gid = out->pid = -1;
    snprintf(out->name, sizeof(out->name), "unknown");
    if (uv_fileno((uv_handle_t *)pipe, &h) != 0)
        return -E_IO;
    if (GetNamedPipeClientProcessId(h, &pid)) {
        out->pid = (long)pid;
        snprintf(out->name, sizeof(out->name), "process %lu", (unsigned long)pid);
    }
    return 0;
}

int
platform_peer_may_change(const struct peer *peer, long socket_gid)
{
    /*
     * The pipe admits SYSTEM and Administrators only (read-write access is
     * not granted to others by the pipe's security): whoever connected may.
     */
    (void)peer;
    (void)socket_gid;
    return 1;
}

int
platform_socket_prepare(const char *path, int *removed_stale, char **cause)
{
    HANDLE h;

    *removed_stale = 0;
    if (strncmp(path, "\\\\.\\pipe\\", 9) != 0) {
        err_set(cause, "'%s' is not a named pipe (\\\\.\\pipe\\NAME)", path);
        return -E_BAD_INPUT;
    }
    /* Named pipes vanish with their server: a live one means another agent. */
    h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (h != INVALID_HANDLE_VALUE || GetLastError() == ERROR_PIPE_BUSY) {
        if (h != INVALID_HANDLE_VALUE)
            CloseHandle(h);
        err_set(cause, "another certagent is already listening on %s", path);
        return -E_BUSY;
    }
    return 0;
}

int
platform_socket_secure(const char *path, const char *group, int mode, long *gid_out,
                       char **cause)
{
    (void)path;
    (void)group;
    (void)mode;
    (void)cause;
    *gid_out = -1;
    return 0;
}

int
platform_group_exists(const char *name)
{
    (void)name;
    return 0;
}

void
platform_socket_remove(const char *path)
{
    (void)path; /* a named pipe goes away with its last handle */
}

void
platform_notify(const char *state)
{
    (void)state;
}

int
platform_daemonize(int *ready_handle, char **cause)
{
    *ready_handle = -1;
    err_set(cause, "--daemon is for Unix; on Windows run the service, or --foreground");
    return -E_BAD_INPUT;
}

void
platform_daemon_ready(int ready_handle, const char *error)
{
    (void)ready_handle;
    (void)error;
}

static void
on_signal(uv_signal_t *handle, int signum)
{
    struct platform_signals *s = handle->data;

    (void)signum;
    if (s->on_stop != NULL)
        s->on_stop(s->arg);
}

int
platform_signals_start(uv_loop_t *loop, struct platform_signals *s, char **cause)
{
    uv_signal_t *handles[] = {&s->term, &s->intr};
    int nums[] = {SIGBREAK, SIGINT};
    int rc;

    for (int i = 0; i < 2; i++) {
        if ((rc = uv_signal_init(loop, handles[i])) != 0 ||
            (rc = uv_signal_start(handles[i], on_signal, nums[i])) != 0) {
            err_set(cause, "cannot watch signal %d: %s", nums[i], uv_strerror(rc));
            return -E_INTERNAL;
        }
        handles[i]->data = s;
        uv_unref((uv_handle_t *)handles[i]);
    }
    return 0;
}

void
platform_signals_close(struct platform_signals *s)
{
    uv_signal_t *handles[] = {&s->term, &s->intr};

    for (int i = 0; i < 2; i++) {
        if (handles[i]->loop != NULL && !uv_is_closing((uv_handle_t *)handles[i]))
            uv_close((uv_handle_t *)handles[i], NULL);
    }
}

long
platform_pid(void)
{
    return (long)GetCurrentProcessId();
}
