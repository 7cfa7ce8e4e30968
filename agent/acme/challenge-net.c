/*
 * Listeners and connections of the challenge responders, on libuv alone
 * (no socket calls of our own, so the Windows build takes this file as it
 * is).  Memory follows libuv's handle rules: a listener or a connection is
 * freed in the close callback of its last handle, and the owner is told
 * (on_released) when nothing of it is left.
 */
#include "challenge-net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "strv.h"

/* Warnings about a full responder or a greedy address: at most one a minute each. */
#define WARN_EVERY_MS 60000

struct challenge_net_listener {
    uv_tcp_t tcp;
    struct challenge_net *net;
    struct challenge_net_listener *next;
};

/* One queued write and its bytes. */
struct net_write {
    uv_write_t req;
    struct challenge_conn *conn;
    char data[];
};

static void
release(struct challenge_net *net)
{
    if (--net->handles == 0 && net->closing && net->on_released != NULL)
        net->on_released(net->owner);
}

/* "ADDR:PORT" -> socket address; port 0..65535.  0 or -1. */
static int
parse_addr(const char *s, struct sockaddr_storage *ss, int *ipv6)
{
    char host[64];
    const char *colon, *hstart;
    size_t hlen;
    long port = 0;

    if (s == NULL)
        return -1;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (close == NULL || close[1] != ':')
            return -1;
        hstart = s + 1;
        hlen = (size_t)(close - hstart);
        colon = close + 1;
        *ipv6 = 1;
    } else {
        if ((colon = strchr(s, ':')) == NULL || strchr(colon + 1, ':') != NULL)
            return -1;
        hstart = s;
        hlen = (size_t)(colon - s);
        *ipv6 = 0;
    }
    if (hlen == 0 || hlen >= sizeof(host) || colon[1] == '\0' || strlen(colon + 1) > 5)
        return -1;
    for (const char *p = colon + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        port = port * 10 + (*p - '0');
    }
    if (port > 65535)
        return -1;
    memcpy(host, hstart, hlen);
    host[hlen] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (*ipv6)
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0 ? 0 : -1;
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ? 0 : -1;
}

int
challenge_net_addr_loopback(const char *addr, int *loopback)
{
    static const unsigned char loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    struct sockaddr_storage ss;
    int ipv6;

    if (parse_addr(addr, &ss, &ipv6) != 0)
        return -E_BAD_INPUT;
    if (ipv6)
        *loopback = memcmp(&((const struct sockaddr_in6 *)&ss)->sin6_addr, loop6, 16) == 0;
    else
        *loopback =
            ((const unsigned char *)&((const struct sockaddr_in *)&ss)->sin_addr)[0] == 127;
    return 0;
}

/* The port of a socket address, read byte by byte (network order). */
static int
addr_port(const struct sockaddr_storage *ss)
{
    const unsigned char *p;

    if (ss->ss_family == AF_INET)
        p = (const unsigned char *)&((const struct sockaddr_in *)ss)->sin_port;
    else if (ss->ss_family == AF_INET6)
        p = (const unsigned char *)&((const struct sockaddr_in6 *)ss)->sin6_port;
    else
        return 0;
    return (p[0] << 8) | p[1];
}

void
challenge_net_init(struct challenge_net *net, uv_loop_t *loop, const char *what, int default_port,
                   const struct challenge_net_ops *ops, void *owner,
                   void (*on_released)(void *owner))
{
    memset(net, 0, sizeof(*net));
    net->loop = loop;
    net->what = what;
    net->default_port = default_port;
    net->ops = ops;
    net->owner = owner;
    net->on_released = on_released;
    net->limits.max_conns = CHALLENGE_NET_MAX_CONNS;
    net->limits.per_address = CHALLENGE_NET_PER_ADDRESS;
    net->limits.first_byte_ms = CHALLENGE_NET_FIRST_BYTE_MS;
    net->limits.request_ms = CHALLENGE_NET_TIMEOUT_MS;
}

/* The limits for a connection accepted now. */
static struct challenge_net_limits
limits_now(const struct challenge_net *net)
{
    struct challenge_net_limits l = net->limits;
    const struct config *c = net->config;

    if (c != NULL) {
        if (c->responder_max_connections > 0)
            l.max_conns = (unsigned)c->responder_max_connections;
        if (c->responder_max_per_address > 0)
            l.per_address = (unsigned)c->responder_max_per_address;
        if (c->responder_first_byte_timeout > 0)
            l.first_byte_ms = (uint64_t)c->responder_first_byte_timeout * 1000u;
        if (c->responder_request_timeout > 0)
            l.request_ms = (uint64_t)c->responder_request_timeout * 1000u;
    }
    return l;
}

/* ---- connections ---- */

static void
conn_closed(uv_handle_t *handle)
{
    struct challenge_conn *conn = handle->data;
    struct challenge_net *net = conn->net;

    if (--conn->handles > 0)
        return;
    if (net->ops->on_close != NULL && conn->data != NULL)
        net->ops->on_close(conn);
    free(conn);
    release(net);
}

void
challenge_net_abort(struct challenge_conn *conn)
{
    struct challenge_net *net = conn->net;

    if (conn->closing)
        return;
    conn->closing = 1;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        net->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    else
        net->conns_tail = conn->prev;
    conn->prev = conn->next = NULL;
    net->nconns--;
    uv_close((uv_handle_t *)&conn->tcp, conn_closed);
    if (conn->handles > 1)
        uv_close((uv_handle_t *)&conn->timer, conn_closed);
}

static void
on_deadline(uv_timer_t *timer)
{
    struct challenge_conn *conn = timer->data;
    uint64_t after = uv_now(conn->net->loop) - conn->accepted;

    if (!conn->got_data)
        log_debug("%s: %s: closed: no byte within %llu ms", conn->net->what, conn->peer,
                  (unsigned long long)after);
    else if (!conn->finishing)
        log_debug("%s: %s: closed: no complete request within %llu ms", conn->net->what,
                  conn->peer, (unsigned long long)after);
    else
        log_debug("%s: %s: closed after %llu ms (deadline)", conn->net->what, conn->peer,
                  (unsigned long long)after);
    challenge_net_abort(conn);
}

static void
on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct challenge_conn *conn = handle->data;

    (void)suggested;
    *buf = uv_buf_init(conn->rbuf, sizeof(conn->rbuf));
}

static void
on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct challenge_conn *conn = stream->data;

    if (conn->closing)
        return;
    if (nread == UV_EOF && conn->finishing && !conn->shut_done) {
        /* The peer has said all it will; close once the answer is out. */
        conn->peer_eof = 1;
        uv_read_stop(stream);
        return;
    }
    if (nread < 0) {
        /* UV_EOF, or a reset: either way the peer is gone. */
        if (nread != UV_EOF && !conn->finishing)
            log_debug("%s: %s: %s", conn->net->what, conn->peer, uv_strerror((int)nread));
        challenge_net_abort(conn);
        return;
    }
    if (nread == 0 || conn->finishing)
        return;
    if (!conn->got_data) {
        /* Past the first-byte deadline: from now on only the whole-request one counts. */
        uint64_t spent = uv_now(conn->net->loop) - conn->accepted;
        int rc;

        conn->got_data = 1;
        if (conn->request_ms > spent &&
            (rc = uv_timer_start(&conn->timer, on_deadline, conn->request_ms - spent, 0)) != 0) {
            log_error("%s: %s: cannot start the deadline: %s", conn->net->what, conn->peer,
                      uv_strerror(rc));
            challenge_net_abort(conn);
            return;
        }
    }
    conn->net->ops->on_data(conn, buf->base, (size_t)nread);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
    struct challenge_conn *conn = req->data;

    if (conn->closing)
        return;
    conn->shut_done = 1;
    /* After a failed shutdown, or when the peer is gone already, there is nothing to wait for. */
    if (status < 0 || conn->peer_eof)
        challenge_net_abort(conn);
}

/* Shuts the sending side down once the writes are out. */
static void
maybe_shutdown(struct challenge_conn *conn)
{
    int rc;

    if (!conn->finishing || conn->shut || conn->closing || conn->writes > 0)
        return;
    conn->shut = 1;
    conn->shutdown.data = conn;
    if ((rc = uv_shutdown(&conn->shutdown, (uv_stream_t *)&conn->tcp, on_shutdown)) != 0) {
        log_debug("%s: %s: %s", conn->net->what, conn->peer, uv_strerror(rc));
        challenge_net_abort(conn);
    }
}

static void
on_written(uv_write_t *req, int status)
{
    struct net_write *w = req->data;
    struct challenge_conn *conn = w->conn;

    free(w);
    conn->writes--;
    if (conn->closing)
        return;
    if (status < 0) {
        log_debug("%s: %s: %s", conn->net->what, conn->peer, uv_strerror(status));
        challenge_net_abort(conn);
        return;
    }
    maybe_shutdown(conn);
}

int
challenge_net_send(struct challenge_conn *conn, const void *data, size_t len)
{
    struct net_write *w;
    uv_buf_t buf;
    int rc;

    if (conn->closing || conn->shut)
        return -E_IO;
    if (len == 0)
        return 0;
    if ((w = malloc(sizeof(*w) + len)) == NULL) {
        challenge_net_abort(conn);
        return -E_NOMEM;
    }
    memcpy(w->data, data, len);
    w->conn = conn;
    w->req.data = w;
    buf = uv_buf_init(w->data, (unsigned int)len);
    if ((rc = uv_write(&w->req, (uv_stream_t *)&conn->tcp, &buf, 1, on_written)) != 0) {
        log_debug("%s: %s: %s", conn->net->what, conn->peer, uv_strerror(rc));
        free(w);
        challenge_net_abort(conn);
        return -E_IO;
    }
    conn->writes++;
    return 0;
}

void
challenge_net_finish(struct challenge_conn *conn)
{
    if (conn->closing)
        return;
    conn->finishing = 1;
    maybe_shutdown(conn);
}

/*
 * conn->peer: "192.0.2.1:40000" / "[2001:db8::1]:40000" of the peer, "?"
 * when unknown; conn->source: what the per-address limit counts, the IPv4
 * address as ::ffff:a.b.c.d, an IPv6 address by its /64 (one host usually
 * has a whole /64), all zeros when unknown.
 */
static void
peer_name(struct challenge_conn *conn)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct sockaddr_storage ss;
    char host[48];
    int len = sizeof(ss);

    snprintf(conn->peer, sizeof(conn->peer), "?");
    memset(conn->source, 0, sizeof(conn->source));
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        memcpy(conn->source, mapped, sizeof(mapped));
        memcpy(conn->source + 12, &((const struct sockaddr_in *)&ss)->sin_addr, 4);
        if (uv_ip4_name((const struct sockaddr_in *)&ss, host, sizeof(host)) == 0)
            snprintf(conn->peer, sizeof(conn->peer), "%s:%d", host, addr_port(&ss));
    } else if (ss.ss_family == AF_INET6) {
        const unsigned char *a =
            (const unsigned char *)&((const struct sockaddr_in6 *)&ss)->sin6_addr;

        /* An IPv4-mapped address is one IPv4 host, not a /64. */
        memcpy(conn->source, a, memcmp(a, mapped, sizeof(mapped)) == 0 ? 16 : 8);
        if (uv_ip6_name((const struct sockaddr_in6 *)&ss, host, sizeof(host)) == 0)
            snprintf(conn->peer, sizeof(conn->peer), "[%s]:%d", host, addr_port(&ss));
    }
}

/* Connections other than conn from conn's source. */
static unsigned
from_same_source(const struct challenge_net *net, const struct challenge_conn *conn)
{
    unsigned n = 0;

    for (const struct challenge_conn *c = net->conns; c != NULL; c = c->next) {
        if (c != conn && memcmp(c->source, conn->source, sizeof(c->source)) == 0)
            n++;
    }
    return n;
}

/*
 * The connection to close for a new one when the responder is full: the
 * oldest that has sent nothing, else the oldest that has not completed its
 * request (a connection being answered is never taken); NULL when every
 * one is being answered.
 */
static struct challenge_conn *
eviction_victim(const struct challenge_net *net, const struct challenge_conn *newcomer)
{
    struct challenge_conn *partial = NULL;

    for (struct challenge_conn *c = net->conns; c != NULL; c = c->next) {
        if (c == newcomer || c->finishing)
            continue;
        if (!c->got_data)
            return c;
        if (partial == NULL)
            partial = c;
    }
    return partial;
}

/* A warning at most once a minute per *last (the count of what was not warned goes to debug). */
static int
warn_due(const struct challenge_net *net, uint64_t *last)
{
    uint64_t now = uv_now(net->loop);

    if (*last != 0 && now - *last < WARN_EVERY_MS)
        return 0;
    *last = now == 0 ? 1 : now;
    return 1;
}

/*
 * Makes room for conn under the limits: 0 when it may be served (after
 * closing an older idle connection if the responder was full), -1 when it
 * must be refused (its address holds its share already, or every open
 * connection is being answered).
 */
static int
admit(struct challenge_net *net, struct challenge_conn *conn, const struct challenge_net_limits *l)
{
    struct challenge_conn *victim;
    char host[64];
    char *port;

    if (from_same_source(net, conn) >= l->per_address) {
        snprintf(host, sizeof(host), "%s", conn->peer);
        if ((port = strrchr(host, ':')) != NULL)
            *port = '\0';
        if (warn_due(net, &net->warned_address))
            log_warn("%s: %s%s holds %u connections already (responder_max_per_address): "
                     "refusing more from it",
                     net->what, host, conn->peer[0] == '[' ? " (its /64)" : "", l->per_address);
        log_debug("%s: %s: refused (too many connections from this address)", net->what,
                  conn->peer);
        return -1;
    }
    if (net->nconns <= l->max_conns)
        return 0;
    if ((victim = eviction_victim(net, conn)) == NULL) {
        log_debug("%s: %s: refused (%u connections open, all being answered)", net->what,
                  conn->peer, l->max_conns);
        return -1;
    }
    if (warn_due(net, &net->warned_full))
        log_warn("%s: %u connections are open (responder_max_connections): closing the "
                 "oldest idle ones to serve new ones",
                 net->what, l->max_conns);
    log_debug("%s: %s: closed to make room (%s)", net->what, victim->peer,
              victim->got_data ? "request incomplete" : "sent nothing");
    challenge_net_abort(victim);
    return 0;
}

static void
on_connection(uv_stream_t *server, int status)
{
    struct challenge_net_listener *l = server->data;
    struct challenge_net *net = l->net;
    struct challenge_net_limits limits = limits_now(net);
    struct challenge_conn *conn;
    int rc, refuse;

    if (status < 0) {
        log_warn("%s: cannot accept a connection: %s", net->what, uv_strerror(status));
        return;
    }
    if ((conn = calloc(1, sizeof(*conn))) == NULL) {
        log_error("%s: out of memory accepting a connection", net->what);
        return;
    }
    conn->net = net;
    conn->tcp.data = conn->timer.data = conn;
    if ((rc = uv_tcp_init(net->loop, &conn->tcp)) != 0) {
        log_error("%s: cannot accept a connection: %s", net->what, uv_strerror(rc));
        free(conn);
        return;
    }
    net->handles++;
    conn->handles = 1;
    /* Linked first (at the tail: the list is oldest first) so that abort can unlink it. */
    conn->prev = net->conns_tail;
    if (net->conns_tail != NULL)
        net->conns_tail->next = conn;
    else
        net->conns = conn;
    net->conns_tail = conn;
    net->nconns++;
    if ((rc = uv_timer_init(net->loop, &conn->timer)) != 0) {
        log_error("%s: cannot accept a connection: %s", net->what, uv_strerror(rc));
        challenge_net_abort(conn); /* closes the tcp handle alone */
        return;
    }
    conn->handles = 2;
    if ((rc = uv_accept(server, (uv_stream_t *)&conn->tcp)) != 0) {
        log_warn("%s: cannot accept a connection: %s", net->what, uv_strerror(rc));
        challenge_net_abort(conn);
        return;
    }
    peer_name(conn);
    conn->accepted = uv_now(net->loop);
    conn->request_ms = limits.request_ms;
    if (admit(net, conn, &limits) != 0) {
        challenge_net_abort(conn);
        return;
    }
    refuse = net->ops->on_open(conn) != 0;
    if (!refuse &&
        (rc = uv_timer_start(&conn->timer, on_deadline,
                             limits.first_byte_ms < limits.request_ms ? limits.first_byte_ms
                                                                      : limits.request_ms,
                             0)) != 0) {
        log_error("%s: %s: cannot start the deadline: %s", net->what, conn->peer, uv_strerror(rc));
        refuse = 1;
    }
    if (!refuse && (rc = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read)) != 0) {
        log_debug("%s: %s: %s", net->what, conn->peer, uv_strerror(rc));
        refuse = 1;
    }
    if (refuse)
        challenge_net_abort(conn);
}

/* ---- listeners ---- */

static void
listener_closed(uv_handle_t *handle)
{
    struct challenge_net_listener *l = handle->data;
    struct challenge_net *net = l->net;

    free(l);
    release(net);
}

static void
close_listeners(struct challenge_net *net)
{
    struct challenge_net_listener *l = net->listeners;

    net->listeners = NULL;
    while (l != NULL) {
        struct challenge_net_listener *next = l->next;

        uv_close((uv_handle_t *)&l->tcp, listener_closed);
        l = next;
    }
    if (net->open)
        log_debug("%s: listeners closed", net->what);
    net->open = 0;
}

/* The configured addresses, or the defaults. */
static size_t
effective_addrs(const struct challenge_net *net, const char **addrs, char defaults[2][32])
{
    if (net->naddrs > 0) {
        for (size_t i = 0; i < net->naddrs && i < 64; i++)
            addrs[i] = net->addrs[i];
        return net->naddrs < 64 ? net->naddrs : 64;
    }
    snprintf(defaults[0], 32, "0.0.0.0:%d", net->default_port);
    snprintf(defaults[1], 32, "[::]:%d", net->default_port);
    addrs[0] = defaults[0];
    addrs[1] = defaults[1];
    return 2;
}

/* Binds and listens on one address. 0 or a libuv error; *l set on success. */
static int
listen_one(struct challenge_net *net, const struct sockaddr_storage *ss, int ipv6,
           struct challenge_net_listener **out)
{
    struct challenge_net_listener *l;
    int rc;

    *out = NULL;
    if ((l = calloc(1, sizeof(*l))) == NULL)
        return UV_ENOMEM;
    l->net = net;
    l->tcp.data = l;
    if ((rc = uv_tcp_init(net->loop, &l->tcp)) != 0) {
        free(l);
        return rc;
    }
    net->handles++;
    /* IPv6 only, so that [::]:80 and 0.0.0.0:80 coexist. */
    rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)ss, ipv6 ? UV_TCP_IPV6ONLY : 0);
    /* libuv may report EADDRINUSE from bind only at listen. */
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 128, on_connection);
    if (rc != 0) {
        uv_close((uv_handle_t *)&l->tcp, listener_closed);
        return rc;
    }
    *out = l;
    return 0;
}

int
challenge_net_open(struct challenge_net *net, char **cause)
{
    const char *addrs[64];
    char defaults[2][32];
    struct challenge_net_listener **tail = &net->listeners;
    size_t n = effective_addrs(net, addrs, defaults), skipped = 0;
    const char *skipped_addr[64];
    int skipped_rc[64];
    int rc = 0;

    if (net->open)
        return 0;
    if (net->closing) {
        err_set(cause, "%s responder is closing", net->what);
        return -E_UNAVAILABLE;
    }
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        struct challenge_net_listener *l;
        int ipv6;

        if (parse_addr(addrs[i], &ss, &ipv6) != 0) {
            err_set(cause, "cannot listen on %s for %s: not ADDR:PORT", addrs[i], net->what);
            rc = -E_BAD_INPUT;
            goto fail;
        }
        if ((rc = listen_one(net, &ss, ipv6, &l)) != 0) {
            if (ipv6 && (rc == UV_EAFNOSUPPORT || rc == UV_EADDRNOTAVAIL)) {
                skipped_addr[skipped] = addrs[i];
                skipped_rc[skipped++] = rc;
                rc = 0;
                continue;
            }
            err_set(cause, "cannot listen on %s for %s: %s", addrs[i], net->what, uv_strerror(rc));
            rc = rc == UV_ENOMEM ? -E_NOMEM : rc == UV_EACCES ? -E_DENIED : -E_IO;
            goto fail;
        }
        *tail = l;
        tail = &l->next;
    }
    if (net->listeners == NULL) {
        /* Every address was an IPv6 one on a system without IPv6. */
        err_set(cause, "cannot listen on %s for %s: %s", skipped_addr[0], net->what,
                uv_strerror(skipped_rc[0]));
        rc = -E_IO;
        goto fail;
    }
    for (size_t i = 0; i < skipped; i++)
        log_warn("%s: not listening on %s: %s (no IPv6 on this system?)", net->what,
                 skipped_addr[i], uv_strerror(skipped_rc[i]));
    net->open = 1;
    log_debug("%s: listening on %zu address(es)", net->what, n - skipped);
    return 0;
fail:
    close_listeners(net);
    return rc;
}

void
challenge_net_idle(struct challenge_net *net)
{
    if (!net->keep_open)
        close_listeners(net);
}

/* Copies n addresses into a heap array (n 0: NULL).  0 or -E_NOMEM. */
static int
copy_addrs(const char *const *addrs, size_t n, char ***out)
{
    char **copy = NULL;

    *out = NULL;
    if (n == 0)
        return 0;
    if ((copy = calloc(n, sizeof(*copy))) == NULL)
        return -E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if ((copy[i] = strdup(addrs[i])) == NULL) {
            strv_free(copy, n);
            return -E_NOMEM;
        }
    }
    *out = copy;
    return 0;
}

static int
same_addrs(char **a, size_t na, const char *const *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++) {
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    }
    return 1;
}

int
challenge_net_configure(struct challenge_net *net, const char *const *addrs, size_t n,
                        int keep_open, char **cause)
{
    char **copy = NULL, **old;
    size_t nold;
    int rc;

    if (n > 64) {
        err_set(cause, "%s: at most 64 listen addresses, not %zu", net->what, n);
        return -E_BAD_INPUT;
    }
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        int ipv6;

        if (parse_addr(addrs[i], &ss, &ipv6) != 0) {
            err_set(cause,
                    "%s: '%s' is not ADDR:PORT (an IPv4 address or an IPv6 address in "
                    "brackets, and a port, e.g. 0.0.0.0:80 or [::]:80)",
                    net->what, addrs[i] != NULL ? addrs[i] : "");
            return -E_BAD_INPUT;
        }
    }
    net->keep_open = keep_open;
    if (!same_addrs(net->addrs, net->naddrs, addrs, n)) {
        if ((rc = copy_addrs(addrs, n, &copy)) != 0)
            return rc;
        old = net->addrs;
        nold = net->naddrs;
        net->addrs = copy;
        net->naddrs = n;
        if (net->open) {
            close_listeners(net);
            if ((rc = challenge_net_open(net, cause)) != 0) {
                char *ignored = NULL;

                /* Back to the list that worked, so that pending challenges stay served. */
                net->addrs = old;
                net->naddrs = nold;
                strv_free(copy, n);
                if (challenge_net_open(net, &ignored) != 0)
                    log_error("%s: the previous listen addresses cannot be reopened "
                              "either: %s",
                              net->what, ignored != NULL ? ignored : "error");
                free(ignored);
                return rc;
            }
        }
        strv_free(old, nold);
    }
    if (keep_open)
        return challenge_net_open(net, cause);
    return 0;
}

int
challenge_net_port(const struct challenge_net *net, size_t i)
{
    const struct challenge_net_listener *l = net->listeners;
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    while (l != NULL && i-- > 0)
        l = l->next;
    if (l == NULL || uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    return addr_port(&ss);
}

void
challenge_net_set_timeout(struct challenge_net *net, uint64_t ms)
{
    net->limits.request_ms = ms;
}

void
challenge_net_set_limits(struct challenge_net *net, const struct challenge_net_limits *limits)
{
    if (limits->max_conns > 0)
        net->limits.max_conns = limits->max_conns;
    if (limits->per_address > 0)
        net->limits.per_address = limits->per_address;
    if (limits->first_byte_ms > 0)
        net->limits.first_byte_ms = limits->first_byte_ms;
    if (limits->request_ms > 0)
        net->limits.request_ms = limits->request_ms;
}

void
challenge_net_use_config(struct challenge_net *net, const struct config *config)
{
    net->config = config;
}

void
challenge_net_close(struct challenge_net *net)
{
    if (net->closing)
        return;
    net->closing = 1;
    net->keep_open = 0;
    close_listeners(net);
    while (net->conns != NULL)
        challenge_net_abort(net->conns);
    strv_free(net->addrs, net->naddrs);
    net->addrs = NULL;
    net->naddrs = 0;
    if (net->handles == 0 && net->on_released != NULL)
        net->on_released(net->owner);
}
