/*
 * The dashboard (issue 15, item 7): a read-only web page of the status
 * report on dashboard_listen, over HTTPS with a certificate of the store
 * (dashboard_certificate, else CONFIG_DASHBOARD_SELFSIGNED, made self-signed
 * at first start), or plain HTTP when dashboard_plain_http asks for it.
 *
 *   GET /             the page: health, every certificate with its days left
 *                     and a bar of its lifetime, warnings, next renewals,
 *                     recent renewals, the probes; pure HTML and CSS, reloads
 *                     itself every dashboard_refresh seconds
 *   GET /status.json  the status document (as STATE/status.json)
 *
 * On an address that is not loopback (not 127.0.0.0/8 or ::1; the wildcard
 * 0.0.0.0 and :: are not loopback) a token is required
 * (dashboard_token_file); when a token file is set it is required on every
 * address.  The client gives it as "Authorization: Bearer TOKEN", or once as
 * "?token=TOKEN", which answers with a cookie and a redirect to the same
 * path without it.  Compared in constant time (SHA-256 of both, then
 * CRYPTO_memcmp).  Without it: 401.
 *
 * Connections are the challenge responders' TCP plumbing (challenge-net.c:
 * the responder_* limits, first-byte and whole-connection deadlines,
 * eviction of idle connections when full); TLS through OpenSSL memory BIOs
 * as the tls-alpn-01 responder does; request heads over 8 KiB get 431.
 * Everything runs on the loop thread; the certificate and key are read in
 * the thread pool.
 */
#ifndef CERTAGENT_DASHBOARD_H
#define CERTAGENT_DASHBOARD_H

#include <stddef.h>
#include <stdint.h>

#include "renew.h"
#include "status.h"

struct config;
struct deploy;
struct dashboard;
struct env;
struct store;

/* What the dashboard reads, and how it makes its self-signed certificate (agent.c). */
struct dashboard_inputs {
    struct status *status;
    struct store *store;
    struct deploy *deploy;
    struct renew_selfsigned selfsigned;
};

/*
 * Checks the dashboard_* keys of c against the store: the listen address,
 * the token file (required off loopback; readable; 16 to 1024 printable
 * characters), the certificate (a name of the store with a key).  0 when
 * the dashboard is off or all is well, else -E_BAD_INPUT with words naming
 * the key.
 */
int dashboard_check(const struct config *c, const struct store *store, char **cause);

/*
 * Checks, then opens the listener (a bind failure is an error naming the
 * address) and loads the certificate, or makes the self-signed one.  *out
 * NULL when the dashboard is off.
 */
int dashboard_start(const struct env *env, const struct dashboard_inputs *in,
                    struct dashboard **out, char **cause);
/* Closes the listener and its connections; memory goes once libuv closed them. NULL is a no-op. */
void dashboard_close(struct dashboard *d);
/* The listener's port (port 0 in tests), 0 when not open. */
int dashboard_port(const struct dashboard *d);

/*
 * dashboard-page.c: the page as a complete HTML document (appended to out),
 * from the status document doc (status_pack_document) and the store (the
 * versions of each certificate: its renewal history).  Pure but for the
 * store's index; for tests and the benchmark.
 */
int dashboard_page(const msgpack_object *doc, const struct store *store, const char *host,
                   int64_t now, int refresh, struct metrics_buf *out);

#endif
