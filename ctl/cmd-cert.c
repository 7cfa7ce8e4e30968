/* certctl show, selfsigned, import, export, remove, rollback. */
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "config.h"
#include "err.h"
#include "fsutil.h"
#include "output.h"

/* Largest file certctl sends: certificates, keys and PFX files are small. */
#define MAX_FILE (256 * 1024)
#define MAX_NAMES 100

/* Options of one command line, filled by parse(). */
struct args {
    const char *name;
    const char *dns[MAX_NAMES];
    size_t ndns;
    const char *ips[MAX_NAMES];
    size_t nips;
    const char *key, *days, *cert, *keyfile, *chain, *pfx, *password_file;
    const char *format, *out, *version, *to, *from_store, *store;
    int no_key;
};

enum {
    O_DNS = 1 << 0,
    O_IP = 1 << 1,
    O_KEY = 1 << 2,
    O_DAYS = 1 << 3,
    O_CERT = 1 << 4,
    O_KEYFILE = 1 << 5,
    O_CHAIN = 1 << 6,
    O_PFX = 1 << 7,
    O_PASSWORD = 1 << 8,
    O_FORMAT = 1 << 9,
    O_OUT = 1 << 10,
    O_VERSION = 1 << 11,
    O_TO = 1 << 12,
    O_NOKEY = 1 << 13,
    O_FROMSTORE = 1 << 14,
    O_STORE = 1 << 15,
};

/* Parses NAME and the options allowed by mask; returns 0 or EXIT_USAGE. */
static int
parse(int argc, char **argv, unsigned mask, struct args *a)
{
    static const struct {
        unsigned bit;
        const char *name;
    } opts[] = {
        {O_KEY, "--key"},
        {O_DAYS, "--days"},
        {O_CERT, "--cert"},
        {O_KEYFILE, "--key"},
        {O_CHAIN, "--chain"},
        {O_PFX, "--pfx"},
        {O_PASSWORD, "--password-file"},
        {O_FORMAT, "--format"},
        {O_OUT, "--out"},
        {O_VERSION, "--version"},
        {O_TO, "--to"},
        {O_FROMSTORE, "--from-store"},
        {O_STORE, "--store"},
    };
    const char *cmd = argv[0];

    memset(a, 0, sizeof(*a));
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r = 0;

        if (strcmp(argv[i], "--json") == 0)
            continue;
        if ((mask & O_NOKEY) && strcmp(argv[i], "--no-key") == 0) {
            a->no_key = 1;
            continue;
        }
        if ((mask & O_DNS) && (r = cmd_opt(argc, argv, &i, "--dns", &v)) > 0) {
            if (a->ndns == MAX_NAMES)
                return cmd_usage_error(cmd, "at most %d --dns names", MAX_NAMES);
            a->dns[a->ndns++] = v;
            continue;
        }
        if ((mask & O_IP) && r == 0 && (r = cmd_opt(argc, argv, &i, "--ip", &v)) > 0) {
            if (a->nips == MAX_NAMES)
                return cmd_usage_error(cmd, "at most %d --ip addresses", MAX_NAMES);
            a->ips[a->nips++] = v;
            continue;
        }
        for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]) && r == 0; k++) {
            const char **slot;

            if (!(mask & opts[k].bit))
                continue;
            if ((r = cmd_opt(argc, argv, &i, opts[k].name, &v)) <= 0)
                continue;
            switch (opts[k].bit) {
            case O_KEY:
                slot = &a->key;
                break;
            case O_DAYS:
                slot = &a->days;
                break;
            case O_CERT:
                slot = &a->cert;
                break;
            case O_KEYFILE:
                slot = &a->keyfile;
                break;
            case O_CHAIN:
                slot = &a->chain;
                break;
            case O_PFX:
                slot = &a->pfx;
                break;
            case O_PASSWORD:
                slot = &a->password_file;
                break;
            case O_FORMAT:
                slot = &a->format;
                break;
            case O_OUT:
                slot = &a->out;
                break;
            case O_VERSION:
                slot = &a->version;
                break;
            case O_FROMSTORE:
                slot = &a->from_store;
                break;
            case O_STORE:
                slot = &a->store;
                break;
            default:
                slot = &a->to;
                break;
            }
            *slot = v;
        }
        if (r < 0)
            return cmd_usage_error(cmd, "%s needs a value", argv[i]);
        if (r > 0)
            continue;
        if (argv[i][0] == '-')
            return cmd_usage_error(cmd, "unknown option '%s'", argv[i]);
        if (a->name != NULL)
            return cmd_usage_error(cmd, "unexpected argument '%s'", argv[i]);
        a->name = argv[i];
    }
    if (a->name == NULL)
        return cmd_usage_error(cmd, "%s", "missing NAME");
    return 0;
}

static int
bad_number(const char *cmd, const char *what, const char *v)
{
    return cmd_usage_error(cmd, "%s must be a positive number, not '%s'", what, v);
}

/* Prints the reply of import and selfsigned. */
static void
print_new_version(const struct reply *r, const char *verb)
{
    char date[32];

    output_date(jint(r->result, "not_after"), date, sizeof(date));
    printf("%s '%s' version %lld: %s\n", verb, jstr(r->result, "name"),
           (long long)jint(r->result, "version"), jstr(r->result, "subject"));
    printf("  expires %s (%lld days), key %s\n", date, (long long)jint(r->result, "days_left"),
           jstr(r->result, "key")[0] ? jstr(r->result, "key") : "(none)");
    printf("  SHA-256 %s\n", jstr(r->result, "fingerprint"));
    output_warnings(r->result);
}

int
cmd_selfsigned(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    struct args a;
    long days = 0;
    int rc;

    if ((rc = parse(argc, argv, O_DNS | O_IP | O_KEY | O_DAYS, &a)) != 0)
        return rc;
    if (a.ndns == 0 && a.nips == 0)
        return cmd_usage_error(argv[0], "%s", "give at least one --dns NAME or --ip ADDRESS");
    if (a.days != NULL && (days = cmd_parse_count(a.days, CONFIG_SELFSIGNED_DAYS_MAX)) <= 0)
        return cmd_usage_error(argv[0], "--days takes 1 to %d (days), not '%s'",
                               CONFIG_SELFSIGNED_DAYS_MAX, a.days);
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    if (ctl->settings != NULL && (rc = cmd_settings_apply(ctl, a.name, ctl->settings, 0)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_SELFSIGNED,
                         3 + (a.key != NULL) + (a.days != NULL));
    proto_pack_kv_str(&w.pk, "name", a.name);
    proto_pack_str(&w.pk, "dns");
    proto_pack_str_array(&w.pk, (char *const *)a.dns, a.ndns);
    proto_pack_str(&w.pk, "ips");
    proto_pack_str_array(&w.pk, (char *const *)a.ips, a.nips);
    if (a.key != NULL)
        proto_pack_kv_str(&w.pk, "key", a.key);
    if (a.days != NULL)
        proto_pack_kv_uint(&w.pk, "days", (uint64_t)days);
    if ((rc = ctl_call(ctl, &w, &r)) == 0) {
        if (ctl->json)
            output_json(r.result);
        else
            print_new_version(&r, "created self-signed");
    }
    reply_free(&r);
    return rc;
}

int
cmd_import(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    struct args a;
    unsigned char *files[4] = {NULL, NULL, NULL, NULL};
    size_t lens[4] = {0, 0, 0, 0};
    static const char *const keys[4] = {"cert", "key", "chain", "pfx"};
    const char *paths[4];
    char *password = NULL, *cause = NULL;
    size_t nargs = 1;
    int rc;

    memset(&r, 0, sizeof(r));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--from-certbot") == 0) {
            const char *dir = "/etc/letsencrypt";
            int deploy = 1;

            for (int j = 1; j < argc; j++) {
                if (j == i || strcmp(argv[j], "--json") == 0)
                    continue;
                if (strcmp(argv[j], "--no-deploy") == 0)
                    deploy = 0;
                else if (j == i + 1 && argv[j][0] != '-')
                    dir = argv[j];
                else
                    return cmd_usage_error(argv[0],
                                           "--from-certbot takes a directory and "
                                           "--no-deploy only, not '%s'",
                                           argv[j]);
            }
            return cmd_import_certbot(ctl, dir, deploy);
        }
    }
    if ((rc = parse(argc, argv,
                    O_CERT | O_KEYFILE | O_CHAIN | O_PFX | O_PASSWORD | O_FROMSTORE | O_STORE,
                    &a)) != 0)
        return rc;
    if ((a.cert != NULL) + (a.pfx != NULL) + (a.from_store != NULL) != 1)
        return cmd_usage_error(argv[0], "%s",
                               "give either --cert FILE, --pfx FILE or --from-store THUMBPRINT");
    if (a.store != NULL && a.from_store == NULL)
        return cmd_usage_error(argv[0], "%s", "--store goes with --from-store");
    if (a.from_store != NULL && (a.keyfile != NULL || a.chain != NULL || a.password_file))
        return cmd_usage_error(argv[0], "%s",
                               "--from-store takes the key from the store: no --key, --chain or "
                               "--password-file");
    if (a.pfx != NULL && (a.keyfile != NULL || a.chain != NULL))
        return cmd_usage_error(argv[0], "%s",
                               "--pfx carries key and chain: do not add --key or --chain");
    if (ctl->settings != NULL &&
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ctl->settings, "auto_renew")))
        return cmd_usage_error(argv[0], "%s",
                               "--auto-renew yes cannot act on an imported certificate: "
                               "certagent has no CA to renew it with; leave it out and import "
                               "each new version, or get the certificate from a CA with "
                               "certctl request NAME --dns NAME --ca CA (renewed automatically)");
    paths[0] = a.cert;
    paths[1] = a.keyfile;
    paths[2] = a.chain;
    paths[3] = a.pfx;
    for (int i = 0; i < 4; i++) {
        if (paths[i] == NULL)
            continue;
        if (cmd_read_input(paths[i], MAX_FILE, &files[i], &lens[i], &cause) != 0) {
            fprintf(stderr, "certctl import: %s\n", cause);
            rc = EXIT_USAGE;
            goto out;
        }
        nargs++;
    }
    if (a.password_file != NULL) {
        if (cmd_read_password(a.password_file, &password, &cause) != 0) {
            fprintf(stderr, "certctl import: %s\n", cause);
            rc = EXIT_USAGE;
            goto out;
        }
        nargs++;
    }
    nargs += (a.from_store != NULL) + (a.store != NULL);
    if ((rc = ctl_connect(ctl)) != 0)
        goto out;
    if (ctl->settings != NULL && (rc = cmd_settings_apply(ctl, a.name, ctl->settings, 0)) != 0)
        goto out;
    client_request_begin(&ctl->client, &w, PROTO_OP_IMPORT, nargs);
    proto_pack_kv_str(&w.pk, "name", a.name);
    if (a.from_store != NULL)
        proto_pack_kv_str(&w.pk, "from_store", a.from_store);
    if (a.store != NULL)
        proto_pack_kv_str(&w.pk, "store", a.store);
    for (int i = 0; i < 4; i++) {
        if (files[i] != NULL)
            proto_pack_kv_bin(&w.pk, keys[i], files[i], lens[i]);
    }
    if (password != NULL)
        proto_pack_kv_str(&w.pk, "password", password);
    if ((rc = ctl_call(ctl, &w, &r)) == 0) {
        if (ctl->json)
            output_json(r.result);
        else
            print_new_version(&r, "imported");
    }
out:
    for (int i = 0; i < 4; i++) {
        if (files[i] != NULL)
            memset(files[i], 0, lens[i]);
        free(files[i]);
    }
    cmd_free_secret(password);
    free(cause);
    reply_free(&r);
    return rc;
}

int
cmd_export(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    struct args a;
    char *password = NULL, *cause = NULL;
    unsigned char *data = NULL;
    size_t nargs = 2, len = 0;
    long version = 0;
    int rc;

    memset(&r, 0, sizeof(r));
    if ((rc = parse(argc, argv, O_FORMAT | O_OUT | O_PASSWORD | O_VERSION | O_NOKEY, &a)) != 0)
        return rc;
    if (a.out == NULL)
        return cmd_usage_error(argv[0], "%s", "missing --out PATH");
    if (a.format == NULL)
        a.format = "pem";
    if (strcmp(a.format, "pem") != 0 && strcmp(a.format, "pfx") != 0)
        return cmd_usage_error(argv[0], "unknown --format '%s': use pem or pfx", a.format);
    if (a.version != NULL && (version = cmd_parse_count(a.version, 1000000)) <= 0)
        return bad_number(argv[0], "--version", a.version);
    if (a.password_file != NULL) {
        if (strcmp(a.format, "pfx") != 0)
            return cmd_usage_error(argv[0], "%s", "--password-file goes with --format pfx");
        if (cmd_read_password(a.password_file, &password, &cause) != 0) {
            fprintf(stderr, "certctl export: %s\n", cause);
            free(cause);
            return EXIT_USAGE;
        }
    }
    if ((rc = ctl_connect(ctl)) != 0)
        goto out;
    nargs += (password != NULL) + (version > 0) + a.no_key;
    client_request_begin(&ctl->client, &w, PROTO_OP_EXPORT, nargs);
    proto_pack_kv_str(&w.pk, "name", a.name);
    proto_pack_kv_str(&w.pk, "format", a.format);
    if (password != NULL)
        proto_pack_kv_str(&w.pk, "password", password);
    if (version > 0)
        proto_pack_kv_uint(&w.pk, "version", (uint64_t)version);
    if (a.no_key)
        proto_pack_kv_bool(&w.pk, "no_key", 1);
    if ((rc = ctl_call(ctl, &w, &r)) != 0)
        goto out;
    {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(r.result, "data");
        int has_key = jbool(r.result, "has_key");
        int n;

        /* proto_to_json gave base64 text: decode it back. */
        if (!cJSON_IsString(d)) {
            fprintf(stderr, "certctl export: the agent sent no data\n");
            output_error(err_name(-E_PROTO), "the agent sent no data", NULL, NULL);
            rc = EXIT_AGENT_ERROR;
            goto out;
        }
        len = strlen(d->valuestring);
        if ((data = malloc(len / 4 * 3 + 3)) == NULL) {
            rc = EXIT_AGENT_ERROR;
            goto out;
        }
        n = EVP_DecodeBlock(data, (const unsigned char *)d->valuestring, (int)len);
        if (n < 0) {
            fprintf(stderr, "certctl export: the agent sent bad data\n");
            output_error(err_name(-E_PROTO), "the agent sent bad data", NULL, NULL);
            rc = EXIT_AGENT_ERROR;
            goto out;
        }
        /* EVP_DecodeBlock counts base64 padding as data: trim it. */
        while (len > 0 && d->valuestring[len - 1] == '=') {
            len--;
            n--;
        }
        memset(d->valuestring, 0, strlen(d->valuestring));
        len = (size_t)n;
        /* Never through a planted link, nor into a directory another user controls. */
        if (fsutil_write_safe(a.out, 0, data, len, has_key ? 0600 : 0644, &cause) != 0) {
            fprintf(stderr, "certctl export: %s\n", cause);
            output_error(err_name(-E_IO), cause != NULL ? cause : "cannot write", a.out, NULL);
            rc = EXIT_AGENT_ERROR;
            goto out;
        }
        if (ctl->json) {
            cJSON *o = cJSON_CreateObject();

            cJSON_AddStringToObject(o, "name", jstr(r.result, "name"));
            cJSON_AddNumberToObject(o, "version", (double)jint(r.result, "version"));
            cJSON_AddStringToObject(o, "format", a.format);
            cJSON_AddStringToObject(o, "path", a.out);
            cJSON_AddBoolToObject(o, "has_key", has_key);
            cJSON_AddNumberToObject(o, "bytes", (double)len);
            output_json(o);
            cJSON_Delete(o);
        } else {
            printf("exported '%s' version %lld to %s (%s%s)\n", jstr(r.result, "name"),
                   (long long)jint(r.result, "version"), a.out, a.format,
                   has_key ? ", with the private key, mode 0600" : ", no private key");
        }
        if (has_key && strcmp(a.format, "pfx") == 0 && password == NULL)
            fprintf(stderr, "certctl: warning: the PFX file is protected by an empty "
                            "password; use --password-file to set one\n");
    }
out:
    if (data != NULL) {
        memset(data, 0, len);
        free(data);
    }
    cmd_free_secret(password);
    free(cause);
    reply_free(&r);
    return rc;
}

int
cmd_remove(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    struct args a;
    int rc;

    if ((rc = parse(argc, argv, 0, &a)) != 0)
        return rc;
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_REMOVE, 1);
    proto_pack_kv_str(&w.pk, "name", a.name);
    if ((rc = ctl_call(ctl, &w, &r)) == 0) {
        if (ctl->json)
            output_json(r.result);
        else
            printf("removed '%s'\n", a.name);
    }
    reply_free(&r);
    return rc;
}

int
cmd_rollback(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    struct args a;
    long to = 0;
    int rc;

    if ((rc = parse(argc, argv, O_TO, &a)) != 0)
        return rc;
    if (a.to != NULL && (to = cmd_parse_count(a.to, 1000000)) <= 0)
        return bad_number(argv[0], "--to", a.to);
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_ROLLBACK, 1 + (to > 0));
    proto_pack_kv_str(&w.pk, "name", a.name);
    if (to > 0)
        proto_pack_kv_uint(&w.pk, "to", (uint64_t)to);
    if ((rc = ctl_call(ctl, &w, &r)) == 0) {
        if (ctl->json)
            output_json(r.result);
        else
            printf("'%s' is now at version %lld (was %lld)\n", a.name,
                   (long long)jint(r.result, "version"), (long long)jint(r.result, "previous"));
    }
    reply_free(&r);
    return rc;
}

int
cmd_show(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    struct args a;
    char buf[1024], t1[32], t2[32];
    const cJSON *it, *chain, *history;
    long version = 0;
    int rc;

    if ((rc = parse(argc, argv, O_VERSION, &a)) != 0)
        return rc;
    if (a.version != NULL && (version = cmd_parse_count(a.version, 1000000)) <= 0)
        return bad_number(argv[0], "--version", a.version);
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_SHOW, 1 + (version > 0));
    proto_pack_kv_str(&w.pk, "name", a.name);
    if (version > 0)
        proto_pack_kv_uint(&w.pk, "version", (uint64_t)version);
    if ((rc = ctl_call(ctl, &w, &r)) != 0)
        goto out;
    if (ctl->json) {
        output_json(r.result);
        goto out;
    }
    printf("name:         %s\n", jstr(r.result, "name"));
    printf("version:      %lld%s\n", (long long)jint(r.result, "version"),
           jint(r.result, "version") == jint(r.result, "current") ? " (current)" : "");
    printf("source:       %s\n", jstr(r.result, "source"));
    printf("subject:      %s\n", jstr(r.result, "subject"));
    jjoin(r.result, "dns", ", ", buf, sizeof(buf));
    printf("DNS names:    %s\n", buf[0] ? buf : "(none)");
    jjoin(r.result, "ips", ", ", buf, sizeof(buf));
    if (buf[0])
        printf("IP addresses: %s\n", buf);
    printf("issuer:       %s%s\n", jstr(r.result, "issuer"),
           jbool(r.result, "self_signed") ? " (self-signed)" : "");
    printf("serial:       %s\n", jstr(r.result, "serial"));
    output_time(jint(r.result, "not_before"), t1, sizeof(t1));
    output_time(jint(r.result, "not_after"), t2, sizeof(t2));
    printf("valid:        %s .. %s\n", t1, t2);
    if (jint(r.result, "days_left") < 0)
        printf("days left:    EXPIRED %lld days ago\n", (long long)-jint(r.result, "days_left"));
    else
        printf("days left:    %lld\n", (long long)jint(r.result, "days_left"));
    if (jint(r.result, "revoked") > 0) {
        output_time(jint(r.result, "revoked"), t1, sizeof(t1));
        printf("revoked:      %s at its CA (%s)\n", t1, jstr(r.result, "revoked_reason"));
    }
    printf("key:          %s\n",
           jbool(r.result, "has_key") ? jstr(r.result, "key") : "(no private key in the store)");
    printf("signature:    %s\n", jstr(r.result, "signature"));
    printf("SHA-256:      %s\n", jstr(r.result, "fingerprint"));
    printf("files:        %s/\n", jstr(r.result, "live_dir"));
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.result, "windows_store"))
    {
        if (cJSON_IsString(it))
            printf("in store:     LocalMachine\\%s, thumbprint %s\n", it->string, it->valuestring);
    }
    cmd_show_served(cJSON_GetObjectItemCaseSensitive(r.result, "served"));
    chain = cJSON_GetObjectItemCaseSensitive(r.result, "chain");
    printf("chain:        %d certificate(s)\n", cJSON_GetArraySize(chain));
    cJSON_ArrayForEach(it, chain)
    {
        output_date(jint(it, "not_after"), t1, sizeof(t1));
        printf("  - %s (until %s, %lld days)\n", jstr(it, "subject"), t1,
               (long long)jint(it, "days_left"));
    }
    history = cJSON_GetObjectItemCaseSensitive(r.result, "history");
    printf("history:\n");
    {
        static const char *const headers[] = {"  VER", "SOURCE", "CREATED", "NOT AFTER",
                                              "KEY",   "SERIAL", "REVOKED"};
        struct table *t = table_new(7, headers);

        cJSON_ArrayForEach(it, history)
        {
            char ver[24], rev[32];
            const char *cells[7];

            snprintf(ver, sizeof(ver), "%s%lld", jbool(it, "current") ? "* " : "  ",
                     (long long)jint(it, "version"));
            output_time(jint(it, "created"), t1, sizeof(t1));
            output_date(jint(it, "not_after"), t2, sizeof(t2));
            cells[0] = ver;
            cells[1] = jstr(it, "source");
            cells[2] = t1;
            cells[3] = t2;
            cells[4] = jstr(it, "key")[0] ? jstr(it, "key") : "(none)";
            cells[5] = jstr(it, "serial");
            if (jint(it, "revoked") > 0)
                output_date(jint(it, "revoked"), rev, sizeof(rev));
            else
                snprintf(rev, sizeof(rev), "-");
            cells[6] = rev;
            table_add(t, cells);
        }
        table_print(t, stdout);
        table_free(t);
    }
out:
    reply_free(&r);
    return rc;
}
