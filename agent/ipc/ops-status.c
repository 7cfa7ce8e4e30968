/*
 * The status and metrics ops: the report of report/status.c and the
 * Prometheus text of report/metrics.c, streamed to the client.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "err.h"
#include "ops.h"
#include "server.h"
#include "status.h"

struct row_ctx {
    struct status *st;
    int64_t now;
    struct status_counts c;
};

static void
status_row(void *arg, msgpack_packer *pk, const struct store_cert *cert)
{
    struct row_ctx *rc = arg;

    status_pack_row(rc->st, pk, cert, rc->now, &rc->c);
}

int
ops_status(struct request *req)
{
    struct row_ctx rc;
    struct proto_writer w;

    memset(&rc, 0, sizeof(rc));
    rc.st = req->agent->status;
    rc.now = (int64_t)time(NULL);
    ops_stream_certs(req, status_row, &rc);
    proto_writer_init(&w);
    proto_begin_result(&w.pk, req->id, STATUS_SUMMARY_FIELDS);
    status_pack_summary(rc.st, &w.pk, &rc.c, rc.now);
    server_send_writer(req->client, req->id, &w);
    /* Versions not checked yet (or checked against another trust store): check them. */
    if (rc.c.unchecked > 0)
        status_recheck(rc.st);
    return 0;
}

int
ops_metrics(struct request *req)
{
    char *text = NULL;
    size_t len = 0, off = 0;
    struct proto_writer w;
    int rc;

    if ((rc = metrics_text(req->agent->status, &text, &len)) != 0)
        return rc;
    /* Chunks of text as "items" events: 10,000 certificates make megabytes. */
    while (off < len) {
        size_t n = len - off > 256 * 1024 ? 256 * 1024 : len - off;

        /* End a chunk at a line end so that a reader may print it as it comes. */
        while (off + n < len && n > 0 && text[off + n - 1] != '\n')
            n--;
        if (n == 0)
            n = len - off > 256 * 1024 ? 256 * 1024 : len - off;
        ops_items_begin(&w, req->id, 1);
        proto_pack_strn(&w.pk, text + off, n);
        server_send_writer(req->client, req->id, &w);
        off += n;
    }
    free(text);
    proto_writer_init(&w);
    proto_begin_result(&w.pk, req->id, 2);
    proto_pack_kv_uint(&w.pk, "bytes", len);
    proto_pack_kv_str(&w.pk, "content_type", "text/plain; version=0.0.4; charset=utf-8");
    server_send_writer(req->client, req->id, &w);
    return 0;
}
