/* certctl probe: checks remote TLS servers through the agent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "err.h"
#include "output.h"

/* As many URLs as the agent takes in one request. */
#define MAX_URLS 1000
#define MAX_URL_FILE (1024 * 1024)

struct urls {
    char *v[MAX_URLS];
    size_t n;
    unsigned char *file; /* the --urls-from text the entries point into */
};

static int
add_url(struct urls *u, char *url)
{
    if (u->n == MAX_URLS)
        return cmd_usage_error("probe", "at most %d URLs at once", MAX_URLS);
    u->v[u->n++] = url;
    return 0;
}

/* One URL a line; blank lines and lines starting with '#' are skipped. */
static int
read_url_file(struct urls *u, const char *path)
{
    char *cause = NULL, *p, *line;
    size_t len = 0;
    int rc;

    if (cmd_read_input(path, MAX_URL_FILE, &u->file, &len, &cause) != 0) {
        fprintf(stderr, "certctl probe: %s\n", cause != NULL ? cause : "cannot read");
        free(cause);
        return EXIT_USAGE;
    }
    for (p = (char *)u->file; p != NULL && *p != '\0'; p = line) {
        char *end = strchr(p, '\n');

        line = end != NULL ? end + 1 : NULL;
        if (end != NULL)
            *end = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        end = p + strlen(p);
        while (end > p && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*p == '\0' || *p == '#')
            continue;
        if ((rc = add_url(u, p)) != 0)
            return rc;
    }
    return 0;
}

static int
by_index(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

    return jint(x, "index") < jint(y, "index") ? -1 : jint(x, "index") > jint(y, "index");
}

/* The results in the order the URLs were given (they arrive as they finish). */
static cJSON *
sorted_results(cJSON *items)
{
    cJSON *out = cJSON_CreateArray(), **v;
    int n = cJSON_GetArraySize(items), i = 0;
    cJSON *it;

    if (out == NULL || n == 0 || (v = calloc((size_t)n, sizeof(*v))) == NULL)
        return out;
    cJSON_ArrayForEach(it, items) v[i++] = it;
    qsort(v, (size_t)n, sizeof(*v), by_index);
    for (i = 0; i < n; i++)
        cJSON_AddItemToArray(out, cJSON_DetachItemViaPointer(items, v[i]));
    free(v);
    return out;
}

static void
print_details(const cJSON *res)
{
    const cJSON *it;
    char date[32];
    int i = 0;

    printf("\n%s\n", jstr(res, "url"));
    if (jstr(res, "error")[0] != '\0') {
        printf("  failed: %s\n", jstr(res, "error"));
        return;
    }
    printf("  protocol:   %s, %s\n", jstr(res, "version"), jstr(res, "cipher"));
    printf("  SNI:        %s\n", jstr(res, "sni")[0] ? jstr(res, "sni") : "(not sent: address)");
    printf("  OCSP:       %s\n", jbool(res, "ocsp_stapled") ? "stapled" : "not stapled");
    if (jbool(res, "server_chain_incomplete"))
        printf("  chain as sent (%lld): INCOMPLETE, clients without '%s' cannot build a chain\n",
               (long long)jint(res, "chain_sent"), jstr(res, "server_chain_missing"));
    else
        printf("  chain as sent (%lld):\n", (long long)jint(res, "chain_sent"));
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(res, "sent_chain"))
    {
        output_date(jint(it, "not_after"), date, sizeof(date));
        printf("    %d %s\n      issuer %s, until %s\n", i++, jstr(it, "subject"),
               jstr(it, "issuer"), date);
    }
    printf("  verified chain:\n");
    cmd_print_chain(cJSON_GetObjectItemCaseSensitive(res, "verify"), "    ");
}

/*
 * The chain as sent: its count, then "complete", "INCOMPLETE" (a client
 * without the agent's trust store cannot build it), or nothing when it was
 * not judged (the chain reaches no anchor at all: see CHAIN).
 */
static void
sent_cell(const cJSON *res, int failed, char *buf, size_t len)
{
    const cJSON *inc = cJSON_GetObjectItemCaseSensitive(res, "server_chain_incomplete");

    if (failed)
        snprintf(buf, len, "-");
    else if (cJSON_IsBool(inc))
        snprintf(buf, len, "%lld %s", (long long)jint(res, "chain_sent"),
                 cJSON_IsTrue(inc) ? "INCOMPLETE" : "complete");
    else
        snprintf(buf, len, "%lld", (long long)jint(res, "chain_sent"));
}

void
cmd_print_probes(const cJSON *results)
{
    static const char *const headers[] = {"URL",  "TLS",  "CIPHER", "CHAIN", "SENT",
                                          "HOST", "DAYS", "OCSP",   "POLICY"};
    struct table *t = table_new(9, headers);
    const cJSON *it;

    cJSON_ArrayForEach(it, results)
    {
        char days[24], sent[32];
        const char *cells[9];
        const cJSON *hm = cJSON_GetObjectItemCaseSensitive(it, "host_match");
        int failed = jstr(it, "error")[0] != '\0';

        if (failed || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(it, "days_left")))
            snprintf(days, sizeof(days), "-");
        else if (jint(it, "days_left") < 0)
            snprintf(days, sizeof(days), "expired");
        else
            snprintf(days, sizeof(days), "%lld", (long long)jint(it, "days_left"));
        cells[0] = jstr(it, "url");
        cells[1] = failed ? "FAILED" : jstr(it, "version");
        cells[2] = failed ? "-" : jstr(it, "cipher");
        cells[3] = failed                           ? "-"
                   : jbool(it, "trusted")           ? "trusted"
                   : jstr(it, "missing")[0] != '\0' ? "incomplete"
                                                    : "untrusted";
        sent_cell(it, failed, sent, sizeof(sent));
        cells[4] = sent;
        cells[5] = failed || !cJSON_IsBool(hm) ? "-" : cJSON_IsTrue(hm) ? "ok" : "MISMATCH";
        cells[6] = days;
        cells[7] = failed ? "-" : jbool(it, "ocsp_stapled") ? "yes" : "no";
        cells[8] = failed ? "-" : jbool(it, "policy_ok") ? "ok" : "VIOLATED";
        table_add(t, cells);
    }
    table_print(t, stdout);
    table_free(t);
}

int
cmd_probe(struct ctl *ctl, int argc, char **argv)
{
    struct urls u;
    const char *timeout = NULL, *min = NULL, *conc = NULL, *from = NULL;
    long tmo = 0, cc = 0;
    int chain = 0, rc;
    struct proto_writer w;
    struct reply r;
    cJSON *results = NULL;
    const cJSON *it;

    memset(&u, 0, sizeof(u));
    memset(&r, 0, sizeof(r));
    for (int i = 1; i < argc; i++) {
        const char *val = NULL;
        int m;

        if (strcmp(argv[i], "--json") == 0)
            continue;
        if (strcmp(argv[i], "--chain") == 0) {
            chain = 1;
            continue;
        }
        if ((m = cmd_opt(argc, argv, &i, "--timeout", &val)) != 0)
            timeout = val;
        else if ((m = cmd_opt(argc, argv, &i, "--min-tls", &val)) != 0)
            min = val;
        else if ((m = cmd_opt(argc, argv, &i, "--concurrency", &val)) != 0)
            conc = val;
        else if ((m = cmd_opt(argc, argv, &i, "--urls-from", &val)) != 0)
            from = val;
        if (m < 0) {
            rc = cmd_usage_error(argv[0], "%s needs a value", argv[i]);
            goto out;
        }
        if (m > 0)
            continue;
        if (argv[i][0] == '-') {
            rc = cmd_usage_error(argv[0], "unknown option '%s'", argv[i]);
            goto out;
        }
        if ((rc = add_url(&u, argv[i])) != 0)
            goto out;
    }
    if (from != NULL && (rc = read_url_file(&u, from)) != 0)
        goto out;
    if (u.n == 0) {
        rc = cmd_usage_error(argv[0], "%s", "give at least one URL");
        goto out;
    }
    if (timeout != NULL && ((tmo = cmd_parse_count(timeout, 300)) <= 0)) {
        rc = cmd_usage_error(argv[0], "--timeout must be 1 to 300 seconds, not '%s'", timeout);
        goto out;
    }
    if (conc != NULL && ((cc = cmd_parse_count(conc, 4096)) <= 0)) {
        rc = cmd_usage_error(argv[0], "--concurrency must be 1 to 4096, not '%s'", conc);
        goto out;
    }
    if (min != NULL && strcmp(min, "1.0") != 0 && strcmp(min, "1.1") != 0 &&
        strcmp(min, "1.2") != 0 && strcmp(min, "1.3") != 0) {
        rc = cmd_usage_error(argv[0], "--min-tls is 1.0, 1.1, 1.2 or 1.3, not '%s'", min);
        goto out;
    }
    if ((rc = ctl_connect(ctl)) != 0)
        goto out;
    client_request_begin(&ctl->client, &w, PROTO_OP_PROBE,
                         1 + (tmo > 0) + (cc > 0) + (min != NULL));
    proto_pack_str(&w.pk, "urls");
    proto_pack_str_array(&w.pk, u.v, u.n);
    if (tmo > 0)
        proto_pack_kv_uint(&w.pk, "timeout", (uint64_t)tmo);
    if (cc > 0)
        proto_pack_kv_uint(&w.pk, "concurrency", (uint64_t)cc);
    if (min != NULL)
        proto_pack_kv_str(&w.pk, "min_tls", min);
    if ((rc = ctl_call(ctl, &w, &r)) != 0)
        goto out;
    results = sorted_results(r.items);
    if (ctl->json) {
        cJSON_AddItemToObject(r.result, "results", results);
        results = NULL;
        output_json(r.result);
    } else {
        int nwarn = 0;

        cmd_print_probes(results);
        cJSON_ArrayForEach(it, results)
        {
            const cJSON *wv;

            cJSON_ArrayForEach(wv, cJSON_GetObjectItemCaseSensitive(it, "warnings"))
            {
                if (nwarn++ == 0)
                    printf("\nwarnings:\n");
                printf("  %s\n", cJSON_IsString(wv) ? wv->valuestring : "?");
            }
        }
        if (chain || u.n == 1) {
            cJSON_ArrayForEach(it, results) print_details(it);
        }
        printf("\n%lld probed, %lld ok, %lld with problems (policy: TLS %s or newer)\n",
               (long long)jint(r.result, "count"), (long long)jint(r.result, "ok"),
               (long long)jint(r.result, "failed"), jstr(r.result, "min_tls"));
    }
    rc = jint(r.result, "failed") > 0 ? EXIT_CHECK_FAILED : 0;
out:
    cJSON_Delete(results);
    free(u.file);
    reply_free(&r);
    return rc;
}
