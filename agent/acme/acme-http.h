/*
 * HTTP for the ACME client on the agent's libuv loop: one libcurl multi
 * handle driven by curl_multi_socket_action, a uv_poll per socket and one
 * uv_timer for curl's timeout.  Nothing here blocks: name resolution is
 * libcurl's threaded resolver, and connections are kept alive and shared
 * (HTTP/2 multiplexing when the server offers it) per host.
 *
 * Loop thread only.
 */
#ifndef CERTAGENT_ACME_HTTP_H
#define CERTAGENT_ACME_HTTP_H

#include <stddef.h>
#include <uv.h>

/* The largest reply body accepted (a certificate chain, a directory). */
#define ACME_HTTP_MAX_BODY (1024 * 1024)

struct acme_http;

struct acme_http_request {
    const char *method; /* "GET", "HEAD" or "POST" */
    const char *url;
    const char *body; /* POST: a JWS (application/jose+json) */
    size_t body_len;
    const char *accept;  /* NULL: no Accept header */
    const char *ca_file; /* PEM file of trusted CAs; NULL: the system store */
    long timeout_ms;     /* whole exchange; 0: 30 s */
};

struct acme_http_response {
    long status; /* 0 when no HTTP reply was received */
    char *error; /* transport failure in words, or NULL */
    char *body;  /* NUL-terminated */
    size_t body_len;
    char *content_type;
    char *location;
    char *nonce;       /* Replay-Nonce */
    char *retry_after; /* the raw Retry-After value */
    char **links;      /* raw values of every Link header, split at top-level commas */
    size_t nlinks;
};

/* Called once per request with the response, which the callback owns
 * (acme_http_response_free). */
typedef void (*acme_http_cb)(void *arg, struct acme_http_response *resp);

int acme_http_new(uv_loop_t *loop, const char *user_agent, struct acme_http **out, char **cause);
/* Starts a request.  On failure the callback is not called. */
int acme_http_send(struct acme_http *http, const struct acme_http_request *req, acme_http_cb cb,
                   void *arg, char **cause);
/* Aborts requests in flight (their callbacks get error "cancelled") and frees
 * once libuv has closed the handles. */
void acme_http_free(struct acme_http *http);
void acme_http_response_free(struct acme_http_response *resp);

/*
 * Parses a Retry-After value (delta-seconds or an HTTP-date) into seconds
 * from now (>= 0); -1 when absent or unparsable.
 */
long acme_http_retry_after(const char *value, long long now);

/*
 * Takes one raw header line as libcurl hands it over (name, colon, value,
 * CR LF; or a status line, which starts a new response) into resp.  The
 * agent's header callback and tests/fuzz/fuzz_http_headers.c use it.
 */
void acme_http_header(struct acme_http_response *resp, const char *line, size_t len);

/* From the Link values, the URLs with rel=REL (e.g. "alternate", "index", "up"). */
size_t acme_http_links(const struct acme_http_response *resp, const char *rel, char ***urls);

#endif
