/*
 * certctl's connection to the agent: connect, hello, and request/reply with
 * progress and item events, over libuv (Unix socket or named pipe).
 */
#ifndef CERTCTL_CLIENT_H
#define CERTCTL_CLIENT_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <uv.h>

#include "proto.h"

struct client {
    uv_loop_t loop;
    uv_pipe_t pipe;
    struct proto_reader reader;
    uint64_t next_id;
    int open;
    int eof;
    int io_error;
    int show_progress; /* render progress events on stderr */
    int json_progress; /* print progress events as JSON lines on stderr */
    char *agent_version;
    /* When set, streamed items go to on_items as they arrive instead of reply->items. */
    void (*on_items)(void *arg, const cJSON *items);
    void *on_items_arg;
};

/* What the agent answered. */
struct reply {
    int ok;
    cJSON *result; /* the result map (ok) */
    cJSON *items;  /* items streamed before the reply, or NULL */
    char *code;    /* "E_NOT_FOUND" (error) */
    char *message; /* the agent's words (error) */
    char *detail;  /* optional detail (error) */
};

/*
 * Connects and says hello.  -E_UNAVAILABLE with a cause when nothing
 * answers at path; -E_DENIED when the socket or the process serving it may
 * belong to another user than the agent's (ctl/endpoint.h: checked before
 * anything is sent); -E_VERSION when the protocol differs.
 */
int client_open(struct client *c, const char *path, char **cause);
void client_close(struct client *c);

/*
 * Starts a request: packs the envelope and an args map of nargs entries,
 * which the caller then packs into w->pk.
 */
void client_request_begin(struct client *c, struct proto_writer *w, enum proto_op op,
                          size_t nargs);
/*
 * Sends the request and waits for its final reply, collecting items and
 * rendering progress.  Returns 0 when a reply arrived (ok or not: see
 * reply->ok), or a negative code when the connection failed.
 */
int client_request_finish(struct client *c, struct proto_writer *w, struct reply *reply,
                          char **cause);
void reply_free(struct reply *r);

#endif
