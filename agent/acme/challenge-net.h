/*
 * TCP plumbing shared by the challenge responders (challenge-http.c,
 * challenge-alpn.c) and the metrics listener (report/metrics.c): a set of
 * listeners on "ADDR:PORT" addresses that opens while challenges are pending
 * (or always), and the connections they accept, closed gracefully (the
 * answer is written, the sending side shut down, what the peer still sends
 * is read and dropped until it closes or the deadline passes).
 *
 * One remote client must not be able to keep the CA's validation out
 * (docs/security.md, "Responders and hooks"), so every connection has two
 * deadlines (its first byte, its whole life), a source address (an IPv6
 * /64) holds at most a few connections, and when the responder is full the
 * oldest connection that has not sent a complete request makes room for the
 * new one instead of the new one being refused.
 *
 * libuv only, so it builds on Windows as it is.  Everything runs on the
 * loop's thread.
 */
#ifndef CERTAGENT_CHALLENGE_NET_H
#define CERTAGENT_CHALLENGE_NET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Defaults of the limits (the config keys responder_*). */
#define CHALLENGE_NET_MAX_CONNS 256      /* connections open at once per responder */
#define CHALLENGE_NET_PER_ADDRESS 16     /* of them from one address (IPv6: one /64) */
#define CHALLENGE_NET_FIRST_BYTE_MS 5000 /* from accept to the first byte received */
#define CHALLENGE_NET_TIMEOUT_MS 10000   /* from accept to close */
/* Bytes read from the socket at a time. */
#define CHALLENGE_NET_READ_CHUNK 4096

struct challenge_net;
struct challenge_conn;
struct config;

/* What a responder allows; 0 in a field of challenge_net_set_limits keeps the current value. */
struct challenge_net_limits {
    unsigned max_conns;     /* open at once; a new one evicts the oldest idle one */
    unsigned per_address;   /* open at once from one IPv4 address or IPv6 /64 */
    uint64_t first_byte_ms; /* a connection silent this long after accept is closed */
    uint64_t request_ms;    /* every connection is closed this long after accept */
};

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
    void *data;               /* the responder's state for this connection */
    char peer[64];            /* "192.0.2.1:40000", "[2001:db8::1]:40000" */
    unsigned char source[16]; /* the peer's IPv6 /64, or its IPv4 address mapped to IPv6 */
    uint64_t accepted;        /* uv_now at accept */
    uint64_t request_ms;      /* its deadline, from accept */
    int got_data;             /* a byte arrived: the first-byte deadline is past */
    unsigned writes;          /* writes in flight */
    unsigned handles;         /* handles not yet closed */
    int finishing;            /* answer given: shut down after the writes, drop input */
    int shut;                 /* uv_shutdown issued */
    int shut_done;            /* and completed: the answer is out */
    int peer_eof;             /* the peer closed its side before that */
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
    struct challenge_conn *conns; /* oldest first */
    struct challenge_conn *conns_tail;
    size_t nconns;
    struct challenge_net_limits limits;
    const struct config *config; /* when set, its responder_* keys override limits */
    uint64_t warned_full;        /* uv_now of the last warning, to warn once a minute */
    uint64_t warned_address;
    const struct challenge_net_ops *ops;
    void *owner;
    void (*on_released)(void *owner); /* after challenge_net_close, once all is closed */
    unsigned handles;                 /* listeners and connections not yet closed */
    int closing;
};

/*
 * Where a responder looks up what it does not serve itself (a fleet: the
 * challenge of an order another node runs, behind a load balancer).
 * start(ctx, key, reply, rarg) returns a handle (NULL: not looked up, refuse
 * at once) and calls reply(rarg, value or NULL) once on the loop, never from
 * within start, unless cancel(ctx, handle) came first (the connection
 * closed).  The key and value are the responder's own (challenge-http.h,
 * challenge-alpn.h).
 */
struct challenge_lookup {
    void *(*start)(void *ctx, const char *key, void (*reply)(void *rarg, const char *value),
                   void *rarg);
    void (*cancel)(void *ctx, void *handle);
    void *ctx;
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

/*
 * Checks that addr is "ADDR:PORT" or "[ADDR]:PORT" with a numeric address (as
 * challenge_net_configure wants it) and says whether ADDR is loopback
 * (127.0.0.0/8 or ::1; the wildcards are not).  0, or -E_BAD_INPUT.
 */
int challenge_net_addr_loopback(const char *addr, int *loopback);

/* Port of the i-th open listener (for port 0 in tests), 0 when there is none. */
int challenge_net_port(const struct challenge_net *net, size_t i);

/* The whole-connection deadline (tests); applies to connections accepted afterwards. */
void challenge_net_set_timeout(struct challenge_net *net, uint64_t ms);

/*
 * Sets the limits (the nonzero fields of *limits); they apply to
 * connections accepted afterwards.
 */
void challenge_net_set_limits(struct challenge_net *net,
                              const struct challenge_net_limits *limits);

/*
 * Takes the limits from config's responder_max_connections,
 * responder_max_per_address, responder_first_byte_timeout and
 * responder_request_timeout, read at every accept: a reload, which changes
 * the config in place, applies to the connections accepted after it.
 * config must outlive net; NULL goes back to the limits set before.
 */
void challenge_net_use_config(struct challenge_net *net, const struct config *config);

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
