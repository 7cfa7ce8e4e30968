/*
 * certctl report: the status report as the agent renders it for a person
 * (report/digest.c): every certificate worst first, with its warnings.  The
 * text arrives in chunks and is printed as it comes; --json gathers it into
 * {"subject", "text"}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "output.h"

struct report_out {
    int json;
    char *text; /* --json: the chunks so far */
    size_t len;
    int failed;
};

static void
take_chunks(void *arg, const cJSON *items)
{
    struct report_out *r = arg;
    const cJSON *it;

    cJSON_ArrayForEach(it, items)
    {
        size_t n;
        char *p;

        if (!cJSON_IsString(it))
            continue;
        if (!r->json) {
            fputs(it->valuestring, stdout);
            continue;
        }
        n = strlen(it->valuestring);
        if ((p = realloc(r->text, r->len + n + 1)) == NULL) {
            r->failed = 1;
            continue;
        }
        memcpy(p + r->len, it->valuestring, n + 1);
        r->text = p;
        r->len += n;
    }
}

int
cmd_report(struct ctl *ctl, int argc, char **argv)
{
    struct report_out out = {ctl->json, NULL, 0, 0};
    struct proto_writer w;
    struct reply r;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--send") == 0)
            return cmd_report_send(ctl, argc, argv); /* cmd-notify.c */
        if (strcmp(argv[i], "--json") != 0)
            return cmd_usage_error(argv[0], "unexpected argument '%s'", argv[i]);
    }
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    ctl->client.on_items = take_chunks;
    ctl->client.on_items_arg = &out;
    client_request_begin(&ctl->client, &w, PROTO_OP_REPORT, 0);
    rc = ctl_call(ctl, &w, &r);
    ctl->client.on_items = NULL;
    if (rc == 0 && out.json) {
        const cJSON *subject = cJSON_GetObjectItemCaseSensitive(r.result, "subject");
        cJSON *o = cJSON_CreateObject();

        if (o == NULL || out.failed) {
            fprintf(stderr, "certctl report: out of memory\n");
            rc = EXIT_AGENT_ERROR;
        } else {
            cJSON_AddStringToObject(o, "subject",
                                    cJSON_IsString(subject) ? subject->valuestring : "");
            cJSON_AddStringToObject(o, "text", out.text != NULL ? out.text : "");
            output_json(o);
        }
        cJSON_Delete(o);
    }
    free(out.text);
    fflush(stdout);
    reply_free(&r);
    return rc;
}
