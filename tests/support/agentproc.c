/*
 * Test support shared by both platforms: the frames a test client sends and
 * reads.  The process and the raw I/O are in unix/ and win/agentproc.c.
 */
#include "agentproc.h"

#include <stdlib.h>

static int
send_writer(int fd, struct proto_writer *w)
{
    char *data = NULL;
    size_t len = 0;
    int rc = proto_writer_finish(w, &data, &len);

    proto_writer_destroy(w);
    if (rc != 0)
        return -1;
    rc = agentproc_write(fd, data, len);
    free(data);
    return rc;
}

int
agentproc_send_simple(int fd, uint64_t id, const char *op)
{
    struct proto_writer w;

    proto_writer_init(&w);
    msgpack_pack_map(&w.pk, 3);
    proto_pack_kv_uint(&w.pk, "id", id);
    proto_pack_kv_str(&w.pk, "op", op);
    proto_pack_str(&w.pk, "args");
    msgpack_pack_map(&w.pk, 0);
    return send_writer(fd, &w);
}

int
agentproc_hello(int fd, uint64_t proto)
{
    struct proto_writer w;

    proto_writer_init(&w);
    msgpack_pack_map(&w.pk, 3);
    proto_pack_kv_uint(&w.pk, "id", 0);
    proto_pack_kv_str(&w.pk, "op", "hello");
    proto_pack_str(&w.pk, "args");
    msgpack_pack_map(&w.pk, 2);
    proto_pack_kv_uint(&w.pk, "proto", proto);
    proto_pack_kv_str(&w.pk, "client", "test");
    return send_writer(fd, &w);
}

int
agentproc_read(int fd, struct proto_msg *msg, int timeout_ms)
{
    unsigned char hdr[4];
    size_t len;
    char *payload;
    int rc;

    if ((rc = agentproc_read_exact(fd, (char *)hdr, 4, timeout_ms)) != 1)
        return rc;
    len = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
    if (len > PROTO_MAX_FRAME || (payload = malloc(len ? len : 1)) == NULL)
        return -1;
    if (agentproc_read_exact(fd, payload, len, timeout_ms) != 1) {
        free(payload);
        return -1;
    }
    rc = proto_decode(payload, len, msg, NULL);
    free(payload);
    return rc == 0 ? 1 : -1;
}
