/*
 * certctl fleet status, certctl fleet nodes: the fleet as its etcd knows it
 * (agent/fleet/view.c): every node, up or gone, and every certificate of the
 * fleet by node (current, behind, missing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "output.h"

/* The fleet's document from the agent; 0 or an exit code. */
static int
fleet_doc(struct ctl *ctl, int argc, char **argv, const char *what, struct reply *r)
{
    struct proto_writer w;
    int rc;

    memset(r, 0, sizeof(*r));
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") != 0)
            return cmd_usage_error("fleet", "fleet %s: unexpected argument '%s'", what, argv[i]);
    }
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_FLEET_STATUS, 0);
    return ctl_call(ctl, &w, r);
}

/* "3 d ago", "5 min ago" for a Unix time before now. */
static void
ago(int64_t t, int64_t now, char *buf, size_t len)
{
    int64_t d = now - t;

    if (t <= 0)
        snprintf(buf, len, "-");
    else if (d < 120)
        snprintf(buf, len, "%lld s ago", (long long)(d < 0 ? 0 : d));
    else if (d < 7200)
        snprintf(buf, len, "%lld min ago", (long long)(d / 60));
    else if (d < 2 * 86400)
        snprintf(buf, len, "%lld h ago", (long long)(d / 3600));
    else
        snprintf(buf, len, "%lld d ago", (long long)(d / 86400));
}

static const char *
or_dash(const char *s)
{
    return s[0] != '\0' ? s : "-";
}

static void
print_header(const cJSON *doc)
{
    printf("fleet %s, seen from node %s: %lld node%s up, %lld gone%s\n", jstr(doc, "fleet"),
           jstr(doc, "node"), (long long)jint(doc, "nodes_up"),
           jint(doc, "nodes_up") == 1 ? "" : "s", (long long)jint(doc, "nodes_gone"),
           jbool(doc, "unreachable") ? " (fleet_unreachable: etcd did not answer for long)" : "");
}

static void
print_nodes(const cJSON *doc)
{
    static const char *const headers[] = {"NODE",   "STATE", "HOST",    "AGENT",
                                          "HEALTH", "CERTS", "UPDATED", "WARNINGS"};
    struct table *t = table_new(8, headers);
    int64_t now = jint(doc, "generated");
    const cJSON *n;

    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(doc, "nodes"))
    {
        char certs[32], updated[64], warnings[256];
        const char *cells[8];

        snprintf(certs, sizeof(certs), "%d",
                 cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(n, "certificates")));
        ago(jint(n, "updated"), now, updated, sizeof(updated));
        jjoin(n, "warnings", ",", warnings, sizeof(warnings));
        cells[0] = jstr(n, "node");
        cells[1] = jstr(n, "state");
        cells[2] = or_dash(jstr(n, "host"));
        cells[3] = or_dash(jstr(n, "version"));
        cells[4] = or_dash(jstr(n, "health"));
        cells[5] = certs;
        cells[6] = updated;
        cells[7] = warnings[0] ? warnings : "-";
        table_add(t, cells);
    }
    table_print(t, stdout);
    table_free(t);
}

static int
fleet_nodes(struct ctl *ctl, int argc, char **argv)
{
    struct reply r;
    int rc;

    if ((rc = fleet_doc(ctl, argc, argv, "nodes", &r)) != 0) {
        reply_free(&r); /* an error's code and words */
        return rc;
    }
    if (ctl->json) {
        output_json(r.result);
    } else {
        print_header(r.result);
        print_nodes(r.result);
    }
    reply_free(&r);
    return 0;
}

/* The cell of a certificate on a node: "v3", "BEHIND", "-" ("gone" after it). */
static void
cell_text(const cJSON *cert, const cJSON *cell, char *buf, size_t len)
{
    const char *state = jstr(cell, "state");
    const char *gone = jbool(cell, "gone") ? " (gone)" : "";

    if (state[0] == '\0' || strcmp(state, "missing") == 0)
        snprintf(buf, len, "-%s", gone);
    else if (strcmp(state, "current") == 0)
        snprintf(buf, len, "v%lld%s", (long long)jint(cert, "fleet_version"), gone);
    else
        snprintf(buf, len, "BEHIND%s", gone);
}

static int
fleet_status(struct ctl *ctl, int argc, char **argv)
{
    struct reply r;
    const cJSON *nodes, *n, *c;
    struct table *t;
    const char **headers, **cells;
    char(*bufs)[64];
    size_t nn, col;
    int rc;

    if ((rc = fleet_doc(ctl, argc, argv, "status", &r)) != 0) {
        reply_free(&r); /* an error's code and words */
        return rc;
    }
    if (ctl->json) {
        output_json(r.result);
        goto out;
    }
    print_header(r.result);
    print_nodes(r.result);
    nodes = cJSON_GetObjectItemCaseSensitive(r.result, "nodes");
    nn = (size_t)cJSON_GetArraySize(nodes);
    headers = calloc(nn + 3, sizeof(*headers));
    cells = calloc(nn + 3, sizeof(*cells));
    bufs = calloc(nn + 3, sizeof(*bufs));
    if (headers == NULL || cells == NULL || bufs == NULL) {
        free(headers);
        free(cells);
        free(bufs);
        rc = EXIT_AGENT_ERROR;
        goto out;
    }
    headers[0] = "CERTIFICATE";
    headers[1] = "FLEET";
    headers[2] = "DAYS";
    col = 3;
    cJSON_ArrayForEach(n, nodes) headers[col++] = jstr(n, "node");
    t = table_new(nn + 3, headers);
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(r.result, "certificates"))
    {
        const cJSON *by = cJSON_GetObjectItemCaseSensitive(c, "nodes");

        snprintf(bufs[1], sizeof(bufs[1]), "v%lld", (long long)jint(c, "fleet_version"));
        snprintf(bufs[2], sizeof(bufs[2]), "%lld", (long long)jint(c, "days_left"));
        cells[0] = jstr(c, "name");
        cells[1] = bufs[1];
        cells[2] = bufs[2];
        col = 3;
        cJSON_ArrayForEach(n, nodes)
        {
            cell_text(c, cJSON_GetObjectItemCaseSensitive(by, jstr(n, "node")), bufs[col],
                      sizeof(bufs[col]));
            cells[col] = bufs[col];
            col++;
        }
        table_add(t, cells);
    }
    printf("\n");
    table_print(t, stdout);
    table_free(t);
    free(headers);
    free(cells);
    free(bufs);
out:
    reply_free(&r);
    return rc;
}

int
cmd_fleet_view(struct ctl *ctl, int argc, char **argv)
{
    /* argv[0] is "fleet", argv[1] "status" or "nodes". */
    if (strcmp(argv[1], "nodes") == 0)
        return fleet_nodes(ctl, argc - 2, argv + 2);
    return fleet_status(ctl, argc - 2, argv + 2);
}
