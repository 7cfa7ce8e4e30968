/*
 * ACME replies as the agent reads them (agent/acme.c, agent/acme-order.c):
 * the body is parsed by acme_reply_json according to its content type, then
 * read as a directory (acme_directory_ok and the URLs it holds), an order
 * (status, finalize, certificate, authorizations, error), an authorization
 * (status, identifier, the challenge of each type, acme_challenge_error) and
 * a problem document (acme_problem_text with subproblems).  The first byte
 * picks the content type; the rest is the body.
 */
#include <stdlib.h>
#include <string.h>

#include "acme-int.h"
#include "fuzz.h"

static const char *const content_types[] = {
    "application/json",
    "application/problem+json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "text/html",
    NULL,
};
static const char *const challenge_types[] = {"http-01", "dns-01", "tls-alpn-01"};

static void
read_strings(const cJSON *json, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, names[i]);

        if (cJSON_IsString(v))
            (void)strlen(v->valuestring);
    }
}

static void
read_problem(const cJSON *p)
{
    char *text;

    if (!cJSON_IsObject(p))
        return;
    if ((text = acme_problem_text(p)) != NULL)
        free(text);
}

static void
read_reply(const cJSON *json)
{
    static const char *const dir_urls[] = {"newNonce",   "newAccount", "newOrder",
                                           "revokeCert", "keyChange",  "renewalInfo"};
    static const char *const order_fields[] = {"status", "finalize", "certificate", "expires"};
    const cJSON *u, *meta;
    char buf[700];

    /* Directory. */
    if (acme_directory_ok(json)) {
        read_strings(json, dir_urls, sizeof(dir_urls) / sizeof(dir_urls[0]));
        meta = cJSON_GetObjectItemCaseSensitive(json, "meta");
        if (cJSON_IsObject(meta)) {
            const cJSON *profiles = cJSON_GetObjectItemCaseSensitive(meta, "profiles");

            cJSON_ArrayForEach(u, profiles)
            {
                if (u->string != NULL)
                    (void)strlen(u->string);
            }
            (void)cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(meta, "externalAccountRequired"));
        }
    }
    /* Order. */
    read_strings(json, order_fields, sizeof(order_fields) / sizeof(order_fields[0]));
    cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(json, "authorizations"))
    {
        if (cJSON_IsString(u))
            (void)strlen(u->valuestring);
    }
    read_problem(cJSON_GetObjectItemCaseSensitive(json, "error"));
    /* Authorization. */
    for (size_t i = 0; i < sizeof(challenge_types) / sizeof(challenge_types[0]); i++) {
        const char *url, *token;

        if (acme_authz_challenge(json, challenge_types[i], &url, &token) == 0)
            (void)(strlen(url) + strlen(token));
    }
    (void)acme_challenge_error(json, buf, sizeof(buf));
    /* Problem document. */
    if (cJSON_GetObjectItemCaseSensitive(json, "type") != NULL)
        read_problem(json);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct acme_http_response resp;
    char *body;
    cJSON *json;

    if (size == 0)
        return 0;
    memset(&resp, 0, sizeof(resp));
    resp.content_type =
        (char *)content_types[data[0] % (sizeof(content_types) / sizeof(content_types[0]))];
    /* The HTTP layer hands over a NUL-terminated body. */
    if ((body = malloc(size)) == NULL)
        return 0;
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    resp.body = body;
    resp.body_len = size - 1;
    resp.status = 200;
    if ((json = acme_reply_json(&resp)) != NULL) {
        read_reply(json);
        cJSON_Delete(json);
    }
    free(body);
    return 0;
}
