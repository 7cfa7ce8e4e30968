/*
 * The http-01 responder's request parser (agent/challenge-http.c): where the
 * request head ends (challenge_http_head_end, fed as the head grows) and its
 * reading (challenge_http_parse: request line, header fields, the token).
 */
#include <stdlib.h>
#include <string.h>

#include "challenge-http.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct challenge_http_req req;
    const char *head = (const char *)data;
    size_t end = 0;

    /* The responder holds at most CHALLENGE_HTTP_HEAD_MAX bytes of a head. */
    if (size > CHALLENGE_HTTP_HEAD_MAX)
        size = CHALLENGE_HTTP_HEAD_MAX;
    /* Like the responder: look for the end after every byte that arrives. */
    for (size_t used = 1; used <= size && end == 0; used++)
        end = challenge_http_head_end(head, used);
    if (end == 0)
        end = size;
    if (end > size)
        abort();
    if (challenge_http_parse(head, end, &req) == 0) {
        if (req.token == NULL || req.token < head || req.token + req.token_len > head + end)
            abort();
    }
    return 0;
}
