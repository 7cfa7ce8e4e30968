/*
 * The http-01 responder (RFC 8555 section 8.3): a small HTTP/1.x server
 * that answers one request per connection.  Only the request line matters;
 * header fields are checked for shape and otherwise ignored, a body is
 * never read (it is drained by challenge-net.c after the answer).
 */
#include "challenge-http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "challenge-net.h"
#include "err.h"
#include "log.h"

#define TOKEN_MAX 256
#define KEY_AUTHORIZATION_MAX 1024
#define CHALLENGE_PREFIX "/.well-known/acme-challenge/"

struct http_token {
    struct http_token *next;
    char *token;
    char *key_authorization;
    unsigned count; /* adds not yet removed */
};

struct challenge_http {
    struct challenge_net net;
    struct http_token *tokens;
    uint64_t served;
    struct challenge_lookup lookup; /* start NULL: none */
};

/* What one connection has read of its request head. */
struct http_request {
    size_t used;
    char head[CHALLENGE_HTTP_HEAD_MAX + 1];
    void *lookup;  /* a lookup of an unknown token in flight */
    int head_only; /* its request was HEAD */
    int answered;  /* the head was answered (or is being looked up) */
    struct challenge_http *owner;
    struct challenge_conn *conn;
};

static int
is_base64url(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return len > 0;
}

/* A token character of RFC 9110 (methods, field names). */
static int
is_tchar(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static struct http_token *
find_token(const struct challenge_http *h, const char *token, size_t len)
{
    for (struct http_token *t = h->tokens; t != NULL; t = t->next) {
        if (strlen(t->token) == len && memcmp(t->token, token, len) == 0)
            return t;
    }
    return NULL;
}

void
challenge_http_send(struct challenge_conn *conn, int status, const char *reason, const char *type,
                    const char *extra, const char *body, size_t blen, int head_only)
{
    char buf[1024];
    int n;

    n = snprintf(buf, sizeof(buf),
                 "HTTP/1.1 %d %s\r\n"
                 "Server: certagent\r\n"
                 "Content-Type: %s\r\n"
                 "Content-Length: %zu\r\n"
                 "%s"
                 "Connection: close\r\n"
                 "\r\n",
                 status, reason, type, blen, extra);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        challenge_net_abort(conn);
        return;
    }
    if (challenge_net_send(conn, buf, (size_t)n) != 0)
        return;
    if (!head_only && blen > 0 && challenge_net_send(conn, body, blen) != 0)
        return;
    challenge_net_finish(conn);
}

/* Sends a complete answer and finishes the connection. */
static void
reply(struct challenge_conn *conn, int status, const char *reason, const char *type,
      const char *extra, const char *body, int head_only)
{
    challenge_http_send(conn, status, reason, type, extra, body, strlen(body), head_only);
}

static void
reply_error(struct challenge_conn *conn, int status, const char *reason, const char *extra)
{
    char body[96];

    snprintf(body, sizeof(body), "%d %s\n", status, reason);
    reply(conn, status, reason, "text/plain", extra, body, 0);
}

/*
 * Where the request head ends (the index after its empty line), 0 when it
 * has not ended yet.  Empty lines before the request line are skipped.
 */
size_t
challenge_http_head_end(const char *head, size_t len)
{
    size_t i = 0;

    while (i < len && (head[i] == '\r' || head[i] == '\n'))
        i++;
    for (; i < len; i++) {
        if (head[i] != '\n')
            continue;
        if (i + 1 < len && head[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && head[i + 1] == '\r' && head[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* The next line of [*p, end) without its CR LF; NULL at the end. */
static const char *
next_line(const char **p, const char *end, size_t *len)
{
    const char *line = *p, *nl;

    if (line >= end)
        return NULL;
    nl = memchr(line, '\n', (size_t)(end - line));
    if (nl == NULL)
        nl = end;
    *p = nl < end ? nl + 1 : end;
    *len = (size_t)(nl - line);
    if (*len > 0 && line[*len - 1] == '\r')
        (*len)--;
    return line;
}

/* Header fields: each "name: value", name of token characters; no obsolete line folding. */
static int
fields_ok(const char *p, const char *end)
{
    const char *line;
    size_t len;

    while ((line = next_line(&p, end, &len)) != NULL) {
        const char *colon;

        if (len == 0)
            break;
        colon = memchr(line, ':', len);
        if (colon == NULL || colon == line)
            return 0;
        for (const char *c = line; c < colon; c++) {
            if (!is_tchar(*c))
                return 0;
        }
        for (const char *c = colon + 1; c < line + len; c++) {
            if ((unsigned char)*c < 0x20 && *c != '\t')
                return 0;
        }
    }
    return 1;
}

int
challenge_http_parse_head(const char *head, size_t end, const char **method, size_t *mlen,
                          const char **path, size_t *plen)
{
    const char *p = head, *stop = head + end, *line, *sp1, *sp2, *version, *target;
    size_t len, tlen;

    if (memchr(head, '\0', end) != NULL)
        return -E_BAD_INPUT;
    while (p < stop && (*p == '\r' || *p == '\n'))
        p++;
    if ((line = next_line(&p, stop, &len)) == NULL)
        return -E_BAD_INPUT;
    /* METHOD SP request-target SP HTTP/1.x */
    sp1 = memchr(line, ' ', len);
    if (sp1 == NULL || sp1 == line || sp1 - line > 16)
        return -E_BAD_INPUT;
    sp2 = memchr(sp1 + 1, ' ', (size_t)(line + len - (sp1 + 1)));
    if (sp2 == NULL || sp2 == sp1 + 1)
        return -E_BAD_INPUT;
    version = sp2 + 1;
    if ((size_t)(line + len - version) != 8 ||
        (memcmp(version, "HTTP/1.1", 8) != 0 && memcmp(version, "HTTP/1.0", 8) != 0))
        return -E_BAD_INPUT;
    for (const char *c = line; c < sp1; c++) {
        if (!is_tchar(*c))
            return -E_BAD_INPUT;
    }
    target = sp1 + 1;
    tlen = (size_t)(sp2 - target);
    for (size_t i = 0; i < tlen; i++) {
        if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] >= 0x7f)
            return -E_BAD_INPUT;
    }
    if (!fields_ok(p, stop))
        return -E_BAD_INPUT;
    *method = line;
    *mlen = (size_t)(sp1 - line);
    /* Absolute form (http://host/path) as well as the usual origin form. */
    *path = target;
    *plen = tlen;
    if (tlen > 7 && (strncmp(target, "http://", 7) == 0 || strncmp(target, "HTTP://", 7) == 0)) {
        const char *slash = memchr(target + 7, '/', tlen - 7);

        *path = slash != NULL ? slash : "/";
        *plen = slash != NULL ? (size_t)(target + tlen - slash) : 1;
    } else if (tlen == 0 || target[0] != '/') {
        return -E_BAD_INPUT;
    }
    for (size_t i = 0; i < *plen; i++) {
        if ((*path)[i] == '?') {
            *plen = i;
            break;
        }
    }
    return 0;
}

/* Answers the complete request head in head[0, end). */
static void
on_lookup(void *rarg, const char *key_authorization)
{
    struct http_request *req = rarg;
    struct challenge_conn *conn = req->conn;

    req->lookup = NULL;
    if (key_authorization == NULL) {
        log_debug("http-01: %s: token unknown here and in the fleet: 404", conn->peer);
        reply_error(conn, 404, "Not Found", "");
        return;
    }
    log_debug("http-01: %s: token of the fleet: 200", conn->peer);
    if (!req->head_only)
        req->owner->served++;
    reply(conn, 200, "OK", "application/octet-stream", "", key_authorization, req->head_only);
}

/* An unknown token: asks the lookup (0), or -1 to answer 404 now. */
static int
lookup_start(struct challenge_http *h, struct challenge_conn *conn, const char *token,
             size_t toklen, int head_only)
{
    struct http_request *req = conn->data;
    char copy[TOKEN_MAX + 1];

    memcpy(copy, token, toklen);
    copy[toklen] = '\0';
    req->owner = h;
    req->conn = conn;
    req->head_only = head_only;
    req->lookup = h->lookup.start(h->lookup.ctx, copy, on_lookup, req);
    return req->lookup != NULL ? 0 : -1;
}

static void
answer(struct challenge_http *h, struct challenge_conn *conn, const char *head, size_t end)
{
    const char *method, *path, *token;
    size_t mlen, plen, toklen;
    struct http_token *t;
    int head_only;

    if (challenge_http_parse_head(head, end, &method, &mlen, &path, &plen) != 0) {
        log_debug("http-01: %s: not an HTTP/1.x request: 400", conn->peer);
        reply_error(conn, 400, "Bad Request", "");
        return;
    }
    head_only = mlen == 4 && memcmp(method, "HEAD", 4) == 0;
    if (!head_only && !(mlen == 3 && memcmp(method, "GET", 3) == 0)) {
        log_debug("http-01: %s: %.*s: 405", conn->peer, (int)mlen, method);
        reply_error(conn, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
        return;
    }
    toklen = plen > strlen(CHALLENGE_PREFIX) ? plen - strlen(CHALLENGE_PREFIX) : 0;
    token = path + strlen(CHALLENGE_PREFIX);
    if (toklen == 0 || memcmp(path, CHALLENGE_PREFIX, strlen(CHALLENGE_PREFIX)) != 0 ||
        !is_base64url(token, toklen)) {
        log_debug("http-01: %s: not a challenge path: 404", conn->peer);
        reply_error(conn, 404, "Not Found", "");
        return;
    }
    if ((t = find_token(h, token, toklen)) == NULL && h->lookup.start != NULL &&
        toklen <= TOKEN_MAX && lookup_start(h, conn, token, toklen, head_only) == 0)
        return;
    if (t == NULL) {
        log_debug("http-01: %s: unknown token %.*s%s: 404", conn->peer,
                  toklen > 64 ? 64 : (int)toklen, token, toklen > 64 ? "..." : "");
        reply_error(conn, 404, "Not Found", "");
        return;
    }
    log_debug("http-01: %s: %s token %.*s%s: 200", conn->peer, head_only ? "HEAD" : "GET",
              toklen > 64 ? 64 : (int)toklen, token, toklen > 64 ? "..." : "");
    if (!head_only)
        h->served++;
    reply(conn, 200, "OK", "application/octet-stream", "", t->key_authorization, head_only);
}

int
challenge_http_conn_open(struct challenge_conn *conn)
{
    struct http_request *req = malloc(sizeof(*req));

    if (req == NULL)
        return -E_NOMEM;
    memset(req, 0, sizeof(*req));
    conn->data = req;
    return 0;
}

void
challenge_http_conn_close(struct challenge_conn *conn)
{
    struct http_request *req = conn->data;

    if (req != NULL && req->lookup != NULL && req->owner != NULL)
        req->owner->lookup.cancel(req->owner->lookup.ctx, req->lookup);
    free(conn->data);
    conn->data = NULL;
}

size_t
challenge_http_feed(struct challenge_conn *conn, const char *data, size_t len, const char **head)
{
    struct http_request *req = conn->data;
    size_t room = CHALLENGE_HTTP_HEAD_MAX - req->used, take = len < room ? len : room, end;

    memcpy(req->head + req->used, data, take);
    req->used += take;
    req->head[req->used] = '\0';
    *head = req->head;
    if ((end = challenge_http_head_end(req->head, req->used)) > 0)
        return end;
    if (req->used == CHALLENGE_HTTP_HEAD_MAX) {
        log_debug("%s: %s: request head over %d bytes: 431", conn->net->what, conn->peer,
                  CHALLENGE_HTTP_HEAD_MAX);
        reply_error(conn, 431, "Request Header Fields Too Large", "");
    }
    return 0;
}

static void
on_data(struct challenge_conn *conn, const char *data, size_t len)
{
    struct http_request *req = conn->data;
    const char *head;
    size_t end;

    if (req->answered)
        return; /* one request per connection; the answer may still be looked up */
    if ((end = challenge_http_feed(conn, data, len, &head)) > 0) {
        req->answered = 1;
        answer(conn->net->owner, conn, head, end);
    }
}

static const struct challenge_net_ops http_ops = {challenge_http_conn_open, on_data,
                                                  challenge_http_conn_close};

static void
on_released(void *owner)
{
    struct challenge_http *h = owner;

    while (h->tokens != NULL) {
        struct http_token *t = h->tokens;

        h->tokens = t->next;
        free(t->token);
        free(t->key_authorization);
        free(t);
    }
    free(h);
}

int
challenge_http_new(uv_loop_t *loop, const char *const *listen, size_t nlisten, int keep_open,
                   struct challenge_http **out, char **cause)
{
    struct challenge_http *h;
    int rc;

    *out = NULL;
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return -E_NOMEM;
    challenge_net_init(&h->net, loop, "http-01", 80, &http_ops, h, on_released);
    if ((rc = challenge_net_configure(&h->net, listen, nlisten, keep_open, cause)) != 0) {
        challenge_http_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

int
challenge_http_add(struct challenge_http *h, const char *token, const char *key_authorization,
                   char **cause)
{
    struct http_token *t;
    size_t tlen = token != NULL ? strlen(token) : 0;
    size_t klen = key_authorization != NULL ? strlen(key_authorization) : 0;
    int rc;

    if (tlen > TOKEN_MAX || !is_base64url(token, tlen)) {
        err_set(cause, "http-01: the token is not 1 to %d base64url characters", TOKEN_MAX);
        return -E_BAD_INPUT;
    }
    if (klen == 0 || klen > KEY_AUTHORIZATION_MAX) {
        err_set(cause, "http-01: the key authorization is not 1 to %d characters",
                KEY_AUTHORIZATION_MAX);
        return -E_BAD_INPUT;
    }
    for (size_t i = 0; i < klen; i++) {
        if (key_authorization[i] <= 0x20 || key_authorization[i] >= 0x7f) {
            err_set(cause, "http-01: the key authorization holds a character that is not "
                           "printable ASCII");
            return -E_BAD_INPUT;
        }
    }
    t = find_token(h, token, tlen);
    if (t != NULL && strcmp(t->key_authorization, key_authorization) != 0) {
        err_set(cause, "http-01: token %s is served already with another key authorization",
                token);
        return -E_EXISTS;
    }
    if ((rc = challenge_net_open(&h->net, cause)) != 0)
        return rc;
    if (t != NULL) {
        t->count++;
        return 0;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL || (t->token = strdup(token)) == NULL ||
        (t->key_authorization = strdup(key_authorization)) == NULL) {
        if (t != NULL)
            free(t->token);
        free(t);
        if (h->tokens == NULL)
            challenge_net_idle(&h->net);
        return -E_NOMEM;
    }
    t->count = 1;
    t->next = h->tokens;
    h->tokens = t;
    return 0;
}

void
challenge_http_remove(struct challenge_http *h, const char *token)
{
    struct http_token **pp;

    if (token == NULL)
        return;
    for (pp = &h->tokens; *pp != NULL; pp = &(*pp)->next) {
        struct http_token *t = *pp;

        if (strcmp(t->token, token) != 0)
            continue;
        if (--t->count > 0)
            return;
        *pp = t->next;
        free(t->token);
        free(t->key_authorization);
        free(t);
        break;
    }
    if (h->tokens == NULL)
        challenge_net_idle(&h->net);
}

int
challenge_http_set_listen(struct challenge_http *h, const char *const *listen, size_t n,
                          int keep_open, char **cause)
{
    int rc;

    if ((rc = challenge_net_configure(&h->net, listen, n, keep_open, cause)) != 0)
        return rc;
    if (h->tokens != NULL)
        return challenge_net_open(&h->net, cause);
    challenge_net_idle(&h->net);
    return 0;
}

uint64_t
challenge_http_served(const struct challenge_http *h)
{
    return h->served;
}

int
challenge_http_port(const struct challenge_http *h, size_t i)
{
    return challenge_net_port(&h->net, i);
}

void
challenge_http_set_timeout(struct challenge_http *h, uint64_t ms)
{
    challenge_net_set_timeout(&h->net, ms);
}

void
challenge_http_set_limits(struct challenge_http *h, const struct challenge_net_limits *limits)
{
    challenge_net_set_limits(&h->net, limits);
}

void
challenge_http_use_config(struct challenge_http *h, const struct config *config)
{
    challenge_net_use_config(&h->net, config);
}

void
challenge_http_free(struct challenge_http *h)
{
    if (h == NULL)
        return;
    challenge_net_close(&h->net);
}

void
challenge_http_set_lookup(struct challenge_http *h, const struct challenge_lookup *l)
{
    if (l != NULL)
        h->lookup = *l;
    else
        memset(&h->lookup, 0, sizeof(h->lookup));
}
