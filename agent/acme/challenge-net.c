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

#include "err.h"
#include "log.h"
#include "strv.h"

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
    net->timeout_ms = CHALLENGE_NET_TIMEOUT_MS;
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
    conn->prev = conn->next = NULL;
    net->nconns--;
    uv_close((uv_handle_t *)&conn->tcp, conn_closed);
    uv_close((uv_handle_t *)&conn->timer, conn_closed);
}

static void
on_deadline(uv_timer_t *timer)
{
    struct challenge_conn *conn = timer->data;

    log_debug("%s: %s: closed after %llu ms (deadline)", conn->net->what, conn->peer,
              (unsigned long long)conn->net->timeout_ms);
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

/* "192.0.2.1:40000" / "[2001:db8::1]:40000" of the peer, "?" when unknown. */
static void
peer_name(struct challenge_conn *conn)
{
    struct sockaddr_storage ss;
    char host[48];
    int len = sizeof(ss);

    snprintf(conn->peer, sizeof(conn->peer), "?");
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET &&
        uv_ip4_name((const struct sockaddr_in *)&ss, host, sizeof(host)) == 0)
        snprintf(conn->peer, sizeof(conn->peer), "%s:%d", host, addr_port(&ss));
    else if (ss.ss_family == AF_INET6 &&
             uv_ip6_name((const struct sockaddr_in6 *)&ss, host, sizeof(host)) == 0)
        snprintf(conn->peer, sizeof(conn->peer), "[%s]:%d", host, addr_port(&ss));
}

static void
on_connection(uv_stream_t *server, int status)
{
    struct challenge_net_listener *l = server->data;
    struct challenge_net *net = l->net;
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
    /* Linked first so that abort can unlink it whatever happens next. */
    conn->next = net->conns;
    if (net->conns != NULL)
        net->conns->prev = conn;
    net->conns = conn;
    net->nconns++;
    if ((rc = uv_timer_init(net->loop, &conn->timer)) != 0) {
        log_error("%s: cannot accept a connection: %s", net->what, uv_strerror(rc));
        conn->closing = 1;
        net->nconns--;
        net->conns = conn->next;
        if (conn->next != NULL)
            conn->next->prev = NULL;
        uv_close((uv_handle_t *)&conn->tcp, conn_closed);
        return;
    }
    conn->handles = 2;
    if ((rc = uv_accept(server, (uv_stream_t *)&conn->tcp)) != 0) {
        log_warn("%s: cannot accept a connection: %s", net->what, uv_strerror(rc));
        challenge_net_abort(conn);
        return;
    }
    peer_name(conn);
    if (net->nconns > CHALLENGE_NET_MAX_CONNS) {
        /* Warned once each time the cap is reached, not for every connection. */
        if (!net->at_cap)
            log_warn("%s: %d connections are open: refusing more until some close", net->what,
                     CHALLENGE_NET_MAX_CONNS);
        log_debug("%s: %s: refused (too many connections)", net->what, conn->peer);
        net->at_cap = 1;
        challenge_net_abort(conn);
        return;
    }
    net->at_cap = 0;
    refuse = net->ops->on_open(conn) != 0;
    if (!refuse && (rc = uv_timer_start(&conn->timer, on_deadline, net->timeout_ms, 0)) != 0) {
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
    net->timeout_ms = ms;
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
