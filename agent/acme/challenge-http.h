/*
 * RFC 8555 section 8.3 http-01 responder on the agent's libuv loop: answers
 * GET (and HEAD) /.well-known/acme-challenge/TOKEN with the token's key
 * authorization (200, application/octet-stream), 404 for unknown tokens and
 * other paths, 405 for other methods, 400 for what is not HTTP/1.x, 431 for
 * a request head over 8 KiB; one request per connection (Connection: close);
 * connections have deadlines and limits (challenge-net.h: 5 s to the first
 * byte, 10 s in all, 16 per address, 256 at once by default).
 * Runs on the loop's thread; nothing blocks.
 */
#ifndef CERTAGENT_CHALLENGE_HTTP_H
#define CERTAGENT_CHALLENGE_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Longest request head (request line and header fields) read. */
#define CHALLENGE_HTTP_HEAD_MAX 8192

struct challenge_http;

/*
 * listen: "ADDR:PORT" entries ("0.0.0.0:80", "[::]:80", "127.0.0.1:5002");
 * nlisten 0 means the default "0.0.0.0:80" and "[::]:80" (an IPv6 listener
 * is skipped with a warning when the system has no IPv6).  keep_open:
 * listen from now on; else listeners open on the first add and close after
 * the last remove.  Never blocks.  -E_BAD_INPUT names an entry that is not
 * ADDR:PORT; with keep_open a bind failure is an error as in
 * challenge_http_add.
 */
int challenge_http_new(uv_loop_t *loop, const char *const *listen, size_t nlisten, int keep_open,
                       struct challenge_http **out, char **cause);

/*
 * Serves GET /.well-known/acme-challenge/TOKEN with body key_authorization.
 * Opens the listeners when closed; a bind failure is an error naming the
 * address and the reason ("cannot listen on 0.0.0.0:80 for http-01: address
 * already in use"; -E_DENIED when the port needs privileges the agent lacks,
 * else -E_IO), and the token is not added.  The same token added twice
 * is counted (remove must be called as often); the same token with another
 * key authorization is -E_EXISTS.  token: base64url, 1..256 characters;
 * key_authorization: printable ASCII, 1..1024 characters (-E_BAD_INPUT).
 */
int challenge_http_add(struct challenge_http *h, const char *token, const char *key_authorization,
                       char **cause);

/* Undoes one add of token (unknown tokens are ignored); closes the listeners after the last. */
void challenge_http_remove(struct challenge_http *h, const char *token);

/*
 * Replaces the listen list and keep_open (config reload); applies at the
 * next open, or now when open (an unchanged list leaves the listeners
 * alone).  If the new list cannot be opened the old one stays in use and
 * the error names the address.
 */
int challenge_http_set_listen(struct challenge_http *h, const char *const *listen, size_t n,
                              int keep_open, char **cause);

/* Requests answered with a key authorization so far (for logs and tests). */
uint64_t challenge_http_served(const struct challenge_http *h);

/* Port of the i-th open listener (in the order of the list), 0 when not open (tests: port 0). */
int challenge_http_port(const struct challenge_http *h, size_t i);

/* Whole-connection deadline in milliseconds (default 10000), for connections accepted later. */
void challenge_http_set_timeout(struct challenge_http *h, uint64_t ms);

/* The limits of every connection accepted later (challenge_net_set_limits; tests). */
struct challenge_net_limits;
void challenge_http_set_limits(struct challenge_http *h,
                               const struct challenge_net_limits *limits);

/*
 * Takes the connection limits from the running config's responder_* keys,
 * read at every accept (challenge_net_use_config); config outlives the responder.
 */
struct config;
void challenge_http_use_config(struct challenge_http *h, const struct config *config);

/*
 * Where a token the responder does not serve is looked up (challenge_lookup
 * in challenge-net.h, the key being the token); the connection waits for the
 * answer within its own deadline.
 */
struct challenge_lookup;
void challenge_http_set_lookup(struct challenge_http *h, const struct challenge_lookup *l);

/* Closes every handle; memory is released once libuv has closed them (the loop must run). */
void challenge_http_free(struct challenge_http *h);

/*
 * The HTTP/1.x pieces, shared with the metrics listener (status.c) and driven by
 * tests/fuzz/fuzz_http01.c.
 * challenge_http_head_end: where a request head ends in head[0, len) (the
 * index after its empty line), 0 when it has not ended yet.
 * challenge_http_parse_head: checks the request line and the shape of the
 * header fields of head[0, end); *method and *path point into head, the path
 * without its query (the absolute form reduced to its path, or to a static "/"
 * when it has none).  -E_BAD_INPUT
 * when it is not an HTTP/1.0 or 1.1 request.
 * challenge_http_send: sends a complete answer (status line, Content-Type,
 * Content-Length, extra header lines, "Connection: close", then the body
 * unless head_only) and finishes the connection.
 */
struct challenge_conn;
size_t challenge_http_head_end(const char *head, size_t len);
int challenge_http_parse_head(const char *head, size_t end, const char **method, size_t *mlen,
                              const char **path, size_t *plen);
void challenge_http_send(struct challenge_conn *conn, int status, const char *reason,
                         const char *type, const char *extra, const char *body, size_t blen,
                         int head_only);
/*
 * A connection's request head: conn_open and conn_close are the on_open and
 * on_close of a challenge_net_ops; feed appends bytes and returns the end of
 * the head once it is complete (*head points at it), else 0 (after a 431
 * answer when the head outgrew CHALLENGE_HTTP_HEAD_MAX).
 */
int challenge_http_conn_open(struct challenge_conn *conn);
void challenge_http_conn_close(struct challenge_conn *conn);
size_t challenge_http_feed(struct challenge_conn *conn, const char *data, size_t len,
                           const char **head);

#endif
