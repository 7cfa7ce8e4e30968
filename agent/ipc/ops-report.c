/*
 * The report op: the status report of report/digest.c as text, sent in
 * chunks ("items" events: 10,000 certificates make megabytes, more than a
 * frame holds), then {subject, bytes}.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "digest.h"
#include "err.h"
#include "ops.h"
#include "server.h"

/* Bytes of text per "items" event, well under PROTO_MAX_FRAME. */
#define REPORT_CHUNK (256 * 1024)

int
ops_report(struct request *req)
{
    struct digest d;
    struct proto_writer w;
    size_t len, off = 0;
    int rc;

    if ((rc = digest_build(req->agent->status, (int64_t)time(NULL), &d, &req->cause)) != 0)
        return rc;
    len = strlen(d.text);
    while (off < len) {
        size_t n = len - off > REPORT_CHUNK ? REPORT_CHUNK : len - off;

        /* End a chunk at a line end so that a reader may print it as it comes. */
        while (off + n < len && n > 0 && d.text[off + n - 1] != '\n')
            n--;
        if (n == 0)
            n = len - off > REPORT_CHUNK ? REPORT_CHUNK : len - off;
        ops_items_begin(&w, req->id, 1);
        proto_pack_strn(&w.pk, d.text + off, n);
        server_send_writer(req->client, req->id, &w);
        off += n;
    }
    proto_writer_init(&w);
    proto_begin_result(&w.pk, req->id, 2);
    proto_pack_kv_str(&w.pk, "subject", d.subject);
    proto_pack_kv_uint(&w.pk, "bytes", len);
    server_send_writer(req->client, req->id, &w);
    digest_clear(&d);
    return 0;
}
