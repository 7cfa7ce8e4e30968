/*
 * The HTTP/1.x request reader of the http-01 responder and the metrics
 * listener (agent/challenge-http.c): where the request head ends
 * (challenge_http_head_end, fed as the head grows) and its reading
 * (challenge_http_parse_head: request line, header fields, method, path).
 */
#include <stdlib.h>
#include <string.h>

#include "challenge-http.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *head = (const char *)data, *method = NULL, *path = NULL;
    size_t end = 0, mlen = 0, plen = 0;

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
    if (challenge_http_parse_head(head, end, &method, &mlen, &path, &plen) == 0) {
        if (method == NULL || method < head || method + mlen > head + end || path == NULL)
            abort();
        /* The path points into the head, or is "/" for an absolute form without one. */
        if ((path < head || path + plen > head + end) && !(plen == 1 && path[0] == '/'))
            abort();
    }
    return 0;
}
