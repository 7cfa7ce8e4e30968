/*
 * The IPC server: accepts connections on the Unix socket (named pipe on
 * Windows), reassembles frames, and hands each request to ops_dispatch.
 * A peer that breaks the protocol is dropped; the others keep being served.
 */
#ifndef CERTAGENT_SERVER_H
#define CERTAGENT_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "platform.h"
#include "proto.h"

struct agent;
struct server;

/*
 * Replies queued to a client that does not read them, before it is dropped:
 * checked before each of its requests is served and at each event sent
 * outside a request (logs --follow, results of jobs).  The reply to the
 * request being served may take it past that (status --json of 10,000
 * certificates is about 10 MB, made in one go), so a client queues at most
 * this plus one reply.
 */
#define SERVER_MAX_PENDING_WRITE (4u * 1024 * 1024)
/*
 * Deadlines (ipc_frame_timeout, ipc_hello_timeout, ipc_idle_timeout) are met
 * by one timer armed for the earliest; a deadline this close is met at once,
 * so that clients due together are dropped in one sweep.
 */
#define SERVER_SWEEP_SLACK_MS 100

struct client {
    uv_pipe_t pipe; /* pipe.data points here */
    struct server *server;
    struct client *prev, *next;
    struct proto_reader reader;
    struct peer peer;
    uint64_t number;        /* connection number, for logs */
    size_t pending_write;   /* bytes queued in uv_write requests */
    unsigned refs;          /* the handle + jobs in flight */
    uint64_t frame_started; /* uv_now() when the partial frame being read began; 0: none */
    int hello_done;
    int closing;
    int in_request;    /* a request of this client is being served (not capped) */
    unsigned net_jobs; /* verify and probe requests in flight (ops-trust.c caps them) */
    /* Limits on idle and half-sent connections (server.c, on_sweep and partial_bound). */
    uint64_t connected_at; /* uv_now() at accept: ipc_hello_timeout counts from here */
    uint64_t last_active;  /* uv_now() of its last read, write done or job ended */
    size_t partial_held;   /* bytes of its partial frame counted in server->partial_bytes */
    unsigned writes;       /* uv_write requests in flight (each holds a ref) */
    int privileged; /* may change the store (exempt from the per-uid limit and reserve): 1, 0,
                     * or -1 until it matters (client_privileged: a group lookup) */
};

struct server {
    uv_pipe_t listener;
    struct agent *agent;
    struct client *clients;
    size_t nclients;
    uint64_t next_number;
    long socket_gid; /* group allowed to change things, -1 if none */
    char *path;
    int listening;
    uint64_t requests; /* served, for status */
    uv_timer_t sweep;  /* drops clients past a deadline (frame, hello, idle) */
    int sweep_init;
    uint64_t sweep_due;             /* uv_now() the sweep is armed for; 0: not armed */
    size_t partial_bytes;           /* bytes of partial frames held for all clients */
    uint64_t refused_logged_at;     /* uv_now() of the last refusal logged */
    unsigned long refused_unlogged; /* refusals since then, told with the next one logged */
};

/* Binds and listens on path, secured with the config's group and mode. */
int server_start(struct server *server, struct agent *agent, const char *path, char **cause);
/* Stops accepting, drops every client, removes the socket file. */
void server_stop(struct server *server);

/* Finishes w and sends it; if it is too large, sends E_TOO_BIG for id instead. */
void server_send_writer(struct client *client, uint64_t id, struct proto_writer *w);
/* Sends an error reply. */
void server_send_error(struct client *client, uint64_t id, int code, const char *message);
/* Drops the client after flushing what is queued. */
void server_drop(struct client *client, const char *why);

/* Keeps a client alive across a job; unref frees it once it is closed.  NULL
 * (work the agent started itself) is allowed and never alive. */
void server_client_ref(struct client *client);
void server_client_unref(struct client *client);
/* Can we still talk to this client? */
int server_client_alive(const struct client *client);

/*
 * server-acl.c: has this client the right that op needs (platform.h, enum
 * peer_right)?  1 yes.  0 no: the refusal is logged with the peer's user,
 * uid and pid, and the client gets E_DENIED for request id, naming the op,
 * the right and who has it.
 */
int server_acl_allow(struct client *client, uint64_t id, enum peer_right right, const char *op);
/* "read", "operate" or "change". */
const char *server_acl_right_name(enum peer_right right);

#endif
