/*
 * Test support on Windows: certagent.exe started with CreateProcess on a
 * private directory under %TEMP% and a unique named pipe, ready when the pipe
 * exists, spoken to with overlapped ReadFile/WriteFile so that every read has
 * a timeout.  Stopped with CTRL_C (the agent's clean stop in a console, as
 * SIGTERM on Unix), killed with TerminateProcess.
 */
#include "agentproc.h"

#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "sys.h"

static unsigned next_agent;

/* This process lets the console's CTRL_C meant for its agents pass by. */
static BOOL WINAPI
ignore_ctrl(DWORD event)
{
    return event == CTRL_C_EVENT || event == CTRL_BREAK_EVENT;
}

/*
 * A console event reaches only the processes on the sender's console, and a
 * test run by ctest (or under Wine) may have none, or share one with ctest:
 * give this process a private console, hidden, that its agents inherit, so
 * that a CTRL_C to "all processes on this console" means this test's agent.
 * The C runtime keeps writing where it did.
 */
static void
ensure_console(void)
{
    static int done;
    HWND w;

    if (done)
        return;
    done = 1;
    FreeConsole();
    if (AllocConsole() && (w = GetConsoleWindow()) != NULL)
        ShowWindow(w, SW_HIDE);
    SetConsoleCtrlHandler(ignore_ctrl, TRUE);
}

/* The command line of `agent_path --foreground ...` with the given socket and state. */
static int
agent_cmdline(char *cmd, size_t len, const char *agent_path, const char *config,
              const char *socket, const char *state, int debug)
{
    const char *args[] = {"--foreground", "--config", config,        "--socket", socket,
                          "--state-dir",  state,      "--log-level", "debug"};
    int n = debug ? 9 : 7;

    cmd[0] = '\0';
    if (sys_append_quoted_arg(cmd, len, agent_path) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        if (sys_append_quoted_arg(cmd, len, args[i]) != 0)
            return -1;
    }
    return 0;
}

/*
 * Starts cmd with stdout and stderr appended to log_path, on this process's
 * console.  The process handle, or NULL.
 */
static HANDLE
spawn_logged(char *cmd, const char *log_path, DWORD *pid)
{
    SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, TRUE};
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    HANDLE log, nul;
    BOOL ok;

    log = CreateFileA(log_path, FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
                      OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (log == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "agentproc: cannot open %s (error %lu)\n", log_path,
                (unsigned long)GetLastError());
        return NULL;
    }
    nul = CreateFileA("NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, OPEN_EXISTING,
                      0, NULL);
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = nul;
    si.hStdOutput = log;
    si.hStdError = log;
    ok = CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
    if (!ok)
        fprintf(stderr, "agentproc: cannot start %s (error %lu)\n", cmd,
                (unsigned long)GetLastError());
    CloseHandle(log);
    if (nul != INVALID_HANDLE_VALUE)
        CloseHandle(nul);
    if (!ok)
        return NULL;
    CloseHandle(pi.hThread);
    *pid = pi.dwProcessId;
    return pi.hProcess;
}

/*
 * Waits up to 20 s until the agent's pipe has an instance waiting for a
 * client, checking the whole time that the agent is still running.
 */
static int
wait_ready(struct agentproc *a)
{
    ULONGLONG deadline = GetTickCount64() + 20000;

    while (GetTickCount64() < deadline) {
        if (WaitNamedPipeA(a->socket, 100))
            return 0;
        /* No pipe yet (WaitNamedPipe returns at once): wait on the process instead. */
        if (WaitForSingleObject(a->process, 20) == WAIT_OBJECT_0) {
            fprintf(stderr, "agentproc: the agent exited before it listened (log: %s)\n", a->log);
            return -1;
        }
    }
    fprintf(stderr, "agentproc: %s not listening within 20 s (log: %s)\n", a->socket, a->log);
    return -1;
}

static int
spawn(struct agentproc *a, const char *agent_path)
{
    char cmd[2048];
    DWORD pid = 0;

    if (agent_cmdline(cmd, sizeof(cmd), agent_path, a->config, a->socket, a->state, 1) != 0)
        return -1;
    if ((a->process = spawn_logged(cmd, a->log, &pid)) == NULL)
        return -1;
    a->pid = (pid_t)pid;
    if (wait_ready(a) != 0) {
        agentproc_kill(a);
        return -1;
    }
    return 0;
}

/* A Windows path for agent_path (ctest under Wine passes a Unix one). */
static void
full_path(const char *path, char *out, size_t len)
{
    DWORD n = GetFullPathNameA(path, (DWORD)len, out, NULL);

    if (n == 0 || n >= len)
        snprintf(out, len, "%s", path);
}

int
agentproc_start(struct agentproc *a, const char *agent_path, const char *config_json)
{
    char tmp[MAX_PATH], exe[MAX_PATH];
    DWORD self = GetCurrentProcessId();
    unsigned n;
    FILE *f;

    memset(a, 0, sizeof(*a));
    a->notify_fd = -1;
    ensure_console();
    if (GetTempPathA(sizeof(tmp), tmp) == 0)
        return -1;
    /* Process ids come back (a fresh wineserver counts from the start): skip used names. */
    for (;;) {
        n = ++next_agent;
        snprintf(a->dir, sizeof(a->dir), "%scertagent-test-%lu-%u", tmp, (unsigned long)self, n);
        if (CreateDirectoryA(a->dir, NULL))
            break;
        if (GetLastError() != ERROR_ALREADY_EXISTS || n > 1000) {
            fprintf(stderr, "agentproc: cannot create %s (error %lu)\n", a->dir,
                    (unsigned long)GetLastError());
            return -1;
        }
    }
    snprintf(a->socket, sizeof(a->socket), "\\\\.\\pipe\\certagent-test-%lu-%u",
             (unsigned long)self, n);
    snprintf(a->spare_socket, sizeof(a->spare_socket), "\\\\.\\pipe\\certagent-test-%lu-%u-other",
             (unsigned long)self, n);
    snprintf(a->state, sizeof(a->state), "%s\\state", a->dir);
    snprintf(a->config, sizeof(a->config), "%s\\certagent.json", a->dir);
    snprintf(a->log, sizeof(a->log), "%s\\agent.log", a->dir);
    if ((f = fopen(a->config, "w")) == NULL)
        return -1;
    fputs(config_json != NULL ? config_json : "{}", f);
    fclose(f);
    full_path(agent_path, exe, sizeof(exe));
    return spawn(a, exe);
}

int
agentproc_restart(struct agentproc *a, const char *agent_path)
{
    char exe[MAX_PATH];

    full_path(agent_path, exe, sizeof(exe));
    return spawn(a, exe);
}

/* Waits up to ms for the agent to exit; its exit code, or -1. */
static int
reap(struct agentproc *a, DWORD ms)
{
    DWORD code = 0;

    if (WaitForSingleObject(a->process, ms) != WAIT_OBJECT_0 ||
        !GetExitCodeProcess(a->process, &code))
        return -1;
    CloseHandle(a->process);
    a->process = NULL;
    a->pid = 0;
    return (int)code;
}

int
agentproc_stop(struct agentproc *a)
{
    int rc;

    if (a->process == NULL)
        return -1;
    /* The agent watches SIGINT: CTRL_C on the console it shares with this test only. */
    if (!GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0)) {
        fprintf(stderr, "agentproc: CTRL_C to %ld failed (error %lu)\n", (long)a->pid,
                (unsigned long)GetLastError());
        agentproc_kill(a);
        return -1;
    }
    if ((rc = reap(a, 30000)) == -1) {
        fprintf(stderr, "agentproc: the agent did not stop within 30 s after CTRL_C\n");
        agentproc_kill(a);
    }
    return rc;
}

void
agentproc_kill(struct agentproc *a)
{
    if (a->process != NULL) {
        TerminateProcess(a->process, 137);
        WaitForSingleObject(a->process, INFINITE);
        CloseHandle(a->process);
    }
    a->process = NULL;
    a->pid = 0;
}

int
agentproc_run_once(const struct agentproc *a, const char *agent_path, const char *socket,
                   const char *state, const char *log_path)
{
    char cmd[2048], exe[MAX_PATH];
    struct agentproc other;
    DWORD pid = 0;
    int rc;

    full_path(agent_path, exe, sizeof(exe));
    if (agent_cmdline(cmd, sizeof(cmd), exe, a->config, socket, state, 0) != 0)
        return -1;
    memset(&other, 0, sizeof(other));
    if ((other.process = spawn_logged(cmd, log_path, &pid)) == NULL)
        return -1;
    other.pid = (pid_t)pid;
    /* Bounded: an agent that was not refused would serve forever. */
    if ((rc = reap(&other, 60000)) == -1) {
        fprintf(stderr, "agentproc: %s still running after 60 s\n", exe);
        agentproc_kill(&other);
    }
    return rc;
}

int
agentproc_socket_exists(const struct agentproc *a)
{
    /* No pipe of that name fails at once with ERROR_FILE_NOT_FOUND; a busy one times out. */
    if (WaitNamedPipeA(a->socket, 1))
        return 1;
    return GetLastError() != ERROR_FILE_NOT_FOUND;
}

const char *
agentproc_no_socket_file(void)
{
    return "a named pipe is not a file: it has no mode and vanishes with its server";
}

/* Deletes dir and everything under it; 0 or -1. */
static int
remove_tree(const char *dir)
{
    char pattern[MAX_PATH], path[MAX_PATH];
    WIN32_FIND_DATAA fd;
    HANDLE find;
    int rc = 0;

    snprintf(pattern, sizeof(pattern), "%s\\*", dir);
    if ((find = FindFirstFileA(pattern, &fd)) != INVALID_HANDLE_VALUE) {
        do {
            if (strcmp(fd.cFileName, ".") == 0 || strcmp(fd.cFileName, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s\\%s", dir, fd.cFileName);
            if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
                if (remove_tree(path) != 0)
                    rc = -1;
            } else {
                SetFileAttributesA(path, FILE_ATTRIBUTE_NORMAL);
                if (!DeleteFileA(path))
                    rc = -1;
            }
        } while (FindNextFileA(find, &fd));
        FindClose(find);
    }
    if (!RemoveDirectoryA(dir))
        rc = -1;
    return rc;
}

void
agentproc_cleanup(struct agentproc *a)
{
    if (a->dir[0] == '\0' || getenv("KEEP_TEST_DIR") != NULL)
        return;
    if (remove_tree(a->dir) != 0)
        fprintf(stderr, "agentproc: could not remove %s\n", a->dir);
}

int
agentproc_connect(const struct agentproc *a)
{
    HANDLE h;
    int fd;

    /* The agent keeps one instance waiting; between accepts it may be busy briefly. */
    for (int tries = 0; tries < 50; tries++) {
        h = CreateFileA(a->socket, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                        FILE_FLAG_OVERLAPPED, NULL);
        if (h != INVALID_HANDLE_VALUE)
            break;
        if (GetLastError() != ERROR_PIPE_BUSY || !WaitNamedPipeA(a->socket, 100))
            return -1;
    }
    if (h == INVALID_HANDLE_VALUE)
        return -1;
    if ((fd = _open_osfhandle((intptr_t)h, 0)) < 0)
        CloseHandle(h);
    return fd;
}

static HANDLE
pipe_of(int fd)
{
    return (HANDLE)_get_osfhandle(fd);
}

/*
 * One overlapped ReadFile or WriteFile, waited for up to ms (INFINITE for
 * none).  Bytes moved, 0 for a closed pipe, -1 for an error or a timeout.
 */
static long
transfer(int fd, void *buf, DWORD len, int write, DWORD ms)
{
    HANDLE h = pipe_of(fd);
    OVERLAPPED ov;
    DWORD n = 0, e;
    BOOL ok;

    if (h == INVALID_HANDLE_VALUE)
        return -1;
    memset(&ov, 0, sizeof(ov));
    if ((ov.hEvent = CreateEventA(NULL, TRUE, FALSE, NULL)) == NULL)
        return -1;
    ok = write ? WriteFile(h, buf, len, NULL, &ov) : ReadFile(h, buf, len, NULL, &ov);
    if (!ok && GetLastError() == ERROR_IO_PENDING) {
        if (WaitForSingleObject(ov.hEvent, ms) != WAIT_OBJECT_0)
            CancelIoEx(h, &ov);
        /* After a cancel this waits for the I/O to finish either way. */
        ok = GetOverlappedResult(h, &ov, &n, TRUE);
    } else if (ok) {
        ok = GetOverlappedResult(h, &ov, &n, TRUE);
    }
    e = GetLastError();
    CloseHandle(ov.hEvent);
    if (ok)
        return (long)n;
    return e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED || e == ERROR_NO_DATA ? 0 : -1;
}

int
agentproc_write(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        DWORD chunk = len > 65536 ? 65536 : (DWORD)len;
        long n = transfer(fd, (void *)p, chunk, 1, INFINITE);

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
        long n = transfer(fd, buf + got, (DWORD)(len - got), 0, (DWORD)timeout_ms);

        if (n == 0)
            return got == 0 ? 0 : -1;
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
        long n = transfer(fd, buf, sizeof(buf), 0, (DWORD)timeout_ms);

        if (n == 0)
            return 1;
        if (n < 0)
            return 0;
    }
}
