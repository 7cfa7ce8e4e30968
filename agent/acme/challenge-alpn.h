/*
 * RFC 8737 tls-alpn-01 responder (RFC 8738 for IP identifiers) on the
 * agent's libuv loop: TLS through OpenSSL memory BIOs over libuv TCP, TLS
 * 1.2 or newer, served only to clients that offer ALPN "acme-tls/1" and
 * name a pending identifier in SNI; every connection closes after its
 * handshake (the validator only needs the certificate).  Connections have
 * the same deadlines and limits as the http-01 responder (challenge-net.h).
 */
#ifndef CERTAGENT_CHALLENGE_ALPN_H
#define CERTAGENT_CHALLENGE_ALPN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct challenge_alpn;

/*
 * As challenge_http_new; the default addresses are "0.0.0.0:443" and
 * "[::]:443".  -E_CRYPTO when OpenSSL cannot make the TLS context.
 */
int challenge_alpn_new(uv_loop_t *loop, const char *const *listen, size_t nlisten, int keep_open,
                       struct challenge_alpn **out, char **cause);

/*
 * identifier: a DNS name or an IP literal (no wildcard: -E_BAD_INPUT).
 * Builds the validation certificate (fresh P-256 key, SAN = the identifier
 * as dNSName or iPAddress, critical id-pe-acmeIdentifier 1.3.6.1.5.5.7.1.31
 * holding an ASN.1 OCTET STRING of SHA-256(key_authorization)) and serves
 * it to TLS clients that offer ALPN "acme-tls/1" with SNI = the identifier
 * (for IP identifiers the reverse-DNS name, e.g. 1.0.0.127.in-addr.arpa,
 * per RFC 8738).  Opens the listeners when closed (errors as in
 * challenge_http_add).  The same identifier and key authorization added
 * twice is counted; the same identifier with another key authorization is
 * -E_BUSY (one certificate per name at a time: validate it after the
 * first is removed).  DNS names match case-insensitively.
 */
int challenge_alpn_add(struct challenge_alpn *a, const char *identifier,
                       const char *key_authorization, char **cause);

/* Undoes one add of identifier (unknown ones are ignored); closes the listeners after the last. */
void challenge_alpn_remove(struct challenge_alpn *a, const char *identifier);

/*
 * The SNI a validator sends for identifier (the lower-cased DNS name, or the
 * reverse-DNS name of an IP literal) into out; 0, or -E_BAD_INPUT.
 */
int challenge_alpn_sni(const char *identifier, char *out, size_t outlen);

/*
 * The host name of a ClientHello's server_name extension (RFC 6066 section
 * 3; ext, len: the extension's data), lower-cased into out; 0, or -1 when
 * there is none, the extension is malformed, or the name is not made of
 * letters, digits, '-' and '.' only (no lookup for it then).  For the
 * responder, and tests/fuzz/fuzz_alpn_sni.c.
 */
int challenge_alpn_parse_sni(const unsigned char *ext, size_t len, char *out, size_t outlen);

/*
 * Where a name that has no certificate here is looked up (challenge-net.h):
 * the key is "alpn/" and the SNI, the value "IDENTIFIER KEY-AUTHORIZATION"
 * (the identifier must give that SNI); NULL: none.  The handshake waits for
 * the answer within the connection's deadline.
 */
struct challenge_lookup;
void challenge_alpn_set_lookup(struct challenge_alpn *a, const struct challenge_lookup *l);

/* As challenge_http_set_listen. */
int challenge_alpn_set_listen(struct challenge_alpn *a, const char *const *listen, size_t n,
                              int keep_open, char **cause);

/* Handshakes completed with a validation certificate so far (for logs and tests). */
uint64_t challenge_alpn_served(const struct challenge_alpn *a);

/* Port of the i-th open listener (in the order of the list), 0 when not open (tests: port 0). */
int challenge_alpn_port(const struct challenge_alpn *a, size_t i);

/* Whole-connection deadline in milliseconds (default 10000), for connections accepted later. */
void challenge_alpn_set_timeout(struct challenge_alpn *a, uint64_t ms);

/* The limits of every connection accepted later (challenge_net_set_limits; tests). */
struct challenge_net_limits;
void challenge_alpn_set_limits(struct challenge_alpn *a,
                               const struct challenge_net_limits *limits);

/*
 * Takes the connection limits from the running config's responder_* keys,
 * read at every accept (challenge_net_use_config); config outlives the responder.
 */
struct config;
void challenge_alpn_use_config(struct challenge_alpn *a, const struct config *config);

/* Closes every handle; memory is released once libuv has closed them (the loop must run). */
void challenge_alpn_free(struct challenge_alpn *a);

#endif
