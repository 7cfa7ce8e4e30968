/*
 * TCP plumbing shared by the challenge responders (challenge-http.c,
 * challenge-alpn.c): a set of listeners on "ADDR:PORT" addresses that opens
 * while challenges are pending (or always), and the connections they accept,
 * each with a deadline, bounded in number, closed gracefully (the answer is
 * written, the sending side shut down, what the peer still sends is read and
 * dropped until it closes or the deadline passes).  libuv only, so it builds
 * on Windows as it is.  Everything runs on the loop's thread.
 */
#ifndef CERTAGENT_CHALLENGE_NET_H
#define CERTAGENT_CHALLENGE_NET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Connections served at once per responder; more are accepted and closed at once. */
#define CHALLENGE_NET_MAX_CONNS 256
/* Per-connection deadline (from accept to close), in milliseconds. */
#define CHALLENGE_NET_TIMEOUT_MS 10000
/* Bytes read from the socket at a time. */
#define CHALLENGE_NET_READ_CHUNK 4096

struct challenge_net;
struct challenge_conn;

/* What a responder does with its connections. */
struct challenge_net_ops {
    /* A connection was accepted: set conn->data; nonzero refuses (it is closed). */
    int (*on_open)(struct challenge_conn *conn);
    /* Bytes arrived (len > 0); not called once challenge_net_finish ran. */
    void (*on_data)(struct challenge_conn *conn, const char *data, size_t len);
    /* The connection is gone: release conn->data. */
    void (*on_close)(struct challenge_conn *conn);
};

struct challenge_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    struct challenge_net *net;
    struct challenge_conn *prev, *next;
    void *data;       /* the responder's state for this connection */
    char peer[64];    /* "192.0.2.1:40000", "[2001:db8::1]:40000" */
    unsigned writes;  /* writes in flight */
    unsigned handles; /* handles not yet closed */
    int finishing;    /* answer given: shut down after the writes, drop input */
    int shut;         /* uv_shutdown issued */
    int shut_done;    /* and completed: the answer is out */
    int peer_eof;     /* the peer closed its side before that */
    int closing;
    char rbuf[CHALLENGE_NET_READ_CHUNK];
};

struct challenge_net_listener;

struct challenge_net {
    uv_loop_t *loop;
    const char *what; /* "http-01": names the responder in messages */
    int default_port;
    char **addrs; /* configured "ADDR:PORT" */
    size_t naddrs;
    int keep_open;
    struct challenge_net_listener *listeners; /* open listeners, in the order of addrs */
    int open;
    struct challenge_conn *conns;
    size_t nconns;
    uint64_t timeout_ms;
    const struct challenge_net_ops *ops;
    void *owner;
    void (*on_released)(void *owner); /* after challenge_net_close, once all is closed */
    unsigned handles;                 /* listeners and connections not yet closed */
    int at_cap;                       /* the last connection was refused for the cap (warned) */
    int closing;
};

/*
 * Prepares net (embedded in its owner).  what names the responder in
 * messages ("http-01"); default_port is for the default addresses
 * 0.0.0.0:PORT and [::]:PORT.  Opens nothing.
 */
void challenge_net_init(struct challenge_net *net, uv_loop_t *loop, const char *what,
                        int default_port, const struct challenge_net_ops *ops, void *owner,
                        void (*on_released)(void *owner));

/*
 * Sets the listen addresses ("0.0.0.0:80", "[::]:80", "127.0.0.1:0"; n 0:
 * the defaults) and keep_open.  Every address is checked first: -E_BAD_INPUT
 * names one that is not ADDR:PORT, and nothing changes.  When the
 * listeners are open and the list changed, they are reopened on the new
 * list; if that fails the old list is restored (reopened as far as
 * possible) and the error returned.  keep_open opens them now.
 */
int challenge_net_configure(struct challenge_net *net, const char *const *addrs, size_t n,
                            int keep_open, char **cause);

/*
 * Opens the listeners unless they are open.  A failure names the address
 * and the reason ("cannot listen on 0.0.0.0:80 for http-01: address already
 * in use") and leaves none open.  An IPv6 address that fails because the
 * system has no IPv6 is skipped with a warning when another one opened.
 */
int challenge_net_open(struct challenge_net *net, char **cause);

/* No challenge is pending any more: closes the listeners unless keep_open. */
void challenge_net_idle(struct challenge_net *net);

/* Port of the i-th open listener (for port 0 in tests), 0 when there is none. */
int challenge_net_port(const struct challenge_net *net, size_t i);

/* Per-connection deadline (tests); applies to connections accepted afterwards. */
void challenge_net_set_timeout(struct challenge_net *net, uint64_t ms);

/* Closes listeners and connections; on_released(owner) runs once all are closed. */
void challenge_net_close(struct challenge_net *net);

/* Queues len bytes (copied) for the peer.  0, or a negative err_code (the connection closes). */
int challenge_net_send(struct challenge_conn *conn, const void *data, size_t len);

/*
 * The answer is complete: once the queued writes are out, the sending side
 * is shut down; input is read and dropped until the peer closes or the
 * deadline passes.
 */
void challenge_net_finish(struct challenge_conn *conn);

/* Closes the connection now (on_close runs from libuv's close callback). */
void challenge_net_abort(struct challenge_conn *conn);

#endif
