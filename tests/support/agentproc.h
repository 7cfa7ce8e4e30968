/*
 * Test support: runs the real certagent as a child process on a private
 * temp directory (socket, state, config), waits for its systemd-style
 * readiness message instead of sleeping, and speaks raw frames to it.
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
    pid_t pid;
    int notify_fd;
};

/*
 * Creates the temp dir and config (config_json may be NULL for "{}"), starts
 * `agent_path --foreground` with NOTIFY_SOCKET set, and waits up to 20 s for
 * READY=1.  0 ok, -1 failure (message on stderr).
 */
int agentproc_start(struct agentproc *a, const char *agent_path, const char *config_json);
/* Starts again on the same directory (after a kill). */
int agentproc_restart(struct agentproc *a, const char *agent_path);
/* SIGTERM and wait; returns the exit status (or -1). */
int agentproc_stop(struct agentproc *a);
/* SIGKILL and reap. */
void agentproc_kill(struct agentproc *a);
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
 * Reads one frame within timeout_ms.  1 got one, 0 EOF, -1 error/timeout.
 */
int agentproc_read(int fd, struct proto_msg *msg, int timeout_ms);
/* Waits for EOF (the agent closed); 1 yes, 0 no within timeout. */
int agentproc_wait_eof(int fd, int timeout_ms);

#endif
