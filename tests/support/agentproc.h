/*
 * Test support: runs the real certagent as a child process on a private
 * temp directory (socket, state, config), waits until it is ready instead of
 * sleeping, and speaks raw frames to it.  One API, two implementations chosen
 * by CMake: unix/agentproc.c (fork/exec, systemd-style READY=1 on a
 * NOTIFY_SOCKET, a Unix socket) and win/agentproc.c (CreateProcess, a unique
 * named pipe \\.\pipe\certagent-test-PID-N, ready when the pipe exists).
 *
 * A connection is an int on both: a socket on Unix, a C runtime descriptor
 * wrapping the pipe handle on Windows (_open_osfhandle), so close() ends it.
 */
#ifndef CERTAGENT_TEST_AGENTPROC_H
#define CERTAGENT_TEST_AGENTPROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

struct agentproc {
    char dir[256];
    char socket[300];
    char state[300];
    char config[300];
    char notify[300];
    char log[300];
    char spare_socket[300]; /* an endpoint name nobody listens on */
    pid_t pid;
    int notify_fd; /* Unix: the readiness socket */
    void *process; /* Windows: the process handle */
};

/*
 * Creates the temp dir and config (config_json may be NULL for "{}"), starts
 * `agent_path --foreground` and waits up to 20 s for it to be ready (READY=1
 * on Unix, the pipe accepting connections on Windows).  0 ok, -1 failure
 * (message on stderr).
 */
int agentproc_start(struct agentproc *a, const char *agent_path, const char *config_json);
/* Starts again on the same directory (after a kill). */
int agentproc_restart(struct agentproc *a, const char *agent_path);
/*
 * The clean stop (SIGTERM on Unix, CTRL_C on a private console on Windows) and wait; returns
 * the exit status (or -1).
 */
int agentproc_stop(struct agentproc *a);
/* SIGKILL (TerminateProcess) and reap. */
void agentproc_kill(struct agentproc *a);
/*
 * Runs another `agent_path --foreground` on a's config with the given socket
 * and state dir, its output appended to log_path, until it exits (at most
 * 60 s); returns its exit status, or -1.
 */
int agentproc_run_once(const struct agentproc *a, const char *agent_path, const char *socket,
                       const char *state, const char *log_path);
/* 1 if a's socket (Unix socket file or named pipe) exists, else 0. */
int agentproc_socket_exists(const struct agentproc *a);
/*
 * NULL where the socket is a file with a mode that outlives a killed agent
 * (Unix); otherwise why checks of that file do not apply.
 */
const char *agentproc_no_socket_file(void);
/* Removes the temp dir. */
void agentproc_cleanup(struct agentproc *a);

/* A connected raw socket to the agent, or -1. */
int agentproc_connect(const struct agentproc *a);
/* Writes all bytes; 0 or -1. */
int agentproc_write(int fd, const void *buf, size_t len);
/* Sends {id, op, args: {}} (args built by caller when packer is given). */
int agentproc_send_simple(int fd, uint64_t id, const char *op);
int agentproc_hello(int fd, uint64_t proto);
/*
 * Reads exactly len bytes, each wait at most timeout_ms.  1 done, 0 EOF before
 * the first byte, -1 error, timeout or EOF inside.
 */
int agentproc_read_exact(int fd, void *buf, size_t len, int timeout_ms);
/*
 * Reads one frame within timeout_ms.  1 got one, 0 EOF, -1 error/timeout.
 */
int agentproc_read(int fd, struct proto_msg *msg, int timeout_ms);
/* Waits for EOF (the agent closed); 1 yes, 0 no within timeout. */
int agentproc_wait_eof(int fd, int timeout_ms);

#endif
