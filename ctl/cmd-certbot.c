/*
 * certctl import --from-certbot [DIR]: takes over certbot's lineages.  For
 * each DIR/renewal/NAME.conf: the current certificate, chain and key (read
 * here, as root reads them), the names, the CA (matched by directory URL,
 * else added), the key type and challenge, and certbot's account at that CA
 * when certagent has none there yet.  Each becomes an ACME certificate the
 * agent renews, with a deploy target that keeps DIR/live/NAME/ current (the
 * symlinks there become regular files of the same content; archive/ and the
 * renewal files are left as they are).
 */
#include <cjson/cJSON.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "b64url.h"
#include "cmd.h"
#include "fsutil.h"
#include "output.h"

#define CONF_MAX (64 * 1024)
#define PEM_MAX (256 * 1024)

struct lineage {
    char name[128];
    char cert[1024], privkey[1024], chain[1024];
    char server[1024], key_type[32], rsa_key_size[16], curve[32];
    char authenticator[64], account[128], preferred_chain[256];
};

static void
trim(char *s)
{
    size_t n = strlen(s);
    char *p = s;

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    while (*p == ' ' || *p == '\t')
        p++;
    memmove(s, p, strlen(p) + 1);
}

/* certbot's renewal file: "key = value" lines, top level and [renewalparams]. */
static int
parse_conf(const char *path, struct lineage *l, char **cause)
{
    unsigned char *data = NULL;
    size_t len = 0;
    char *line, *save = NULL;
    int rc;

    if ((rc = fsutil_read_file(path, CONF_MAX, &data, &len, cause)) != 0)
        return rc;
    for (line = strtok_r((char *)data, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '='), key[64], *val;
        static const struct {
            const char *key;
            size_t off, size;
        } fields[] = {
#define F(k, f) {k, offsetof(struct lineage, f), sizeof(((struct lineage *)0)->f)}
            F("cert", cert),
            F("privkey", privkey),
            F("chain", chain),
            F("server", server),
            F("key_type", key_type),
            F("rsa_key_size", rsa_key_size),
            F("elliptic_curve", curve),
            F("authenticator", authenticator),
            F("account", account),
            F("preferred_chain", preferred_chain),
#undef F
        };

        if (line[0] == '#' || line[0] == '[' || eq == NULL || (size_t)(eq - line) >= sizeof(key))
            continue;
        memcpy(key, line, (size_t)(eq - line));
        key[eq - line] = '\0';
        trim(key);
        val = eq + 1;
        trim(val);
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
            if (strcmp(key, fields[i].key) == 0)
                snprintf((char *)l + fields[i].off, fields[i].size, "%s", val);
        }
    }
    free(data);
    if (l->cert[0] == '\0' || l->privkey[0] == '\0') {
        err_set(cause, "%s names no cert or privkey", path);
        return -E_BAD_INPUT;
    }
    return 0;
}

/* certbot's key_type/rsa_key_size/elliptic_curve as certagent's key type. */
static const char *
key_type_of(const struct lineage *l)
{
    if (strcmp(l->key_type, "rsa") == 0) {
        if (strcmp(l->rsa_key_size, "4096") == 0)
            return "rsa4096";
        if (strcmp(l->rsa_key_size, "3072") == 0)
            return "rsa3072";
        return "rsa2048";
    }
    if (strcmp(l->curve, "secp384r1") == 0)
        return "ec384";
    return "ec256";
}

/* certbot's authenticator as an ACME challenge, and words when it changes how. */
static const char *
challenge_of(const struct lineage *l, const char **note)
{
    *note = NULL;
    if (strncmp(l->authenticator, "dns", 3) == 0) {
        *note = "certbot used a DNS plugin: set dns01_hook in certagent.json to a command that "
                "publishes the TXT records";
        return "dns-01";
    }
    if (strcmp(l->authenticator, "standalone") != 0)
        *note = "certbot answered http-01 through the web server; certagent answers it on its "
                "own listener (http01_listen): proxy /.well-known/acme-challenge/ there or free "
                "port 80";
    return "http-01";
}

static int
read_pem(const char *path, unsigned char **out, size_t *len, char **cause)
{
    return fsutil_read_file(path, PEM_MAX, out, len, cause);
}

static BIGNUM *
jwk_bn(const cJSON *jwk, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(jwk, k);
    unsigned char *bytes = NULL;
    size_t len = 0;
    BIGNUM *bn = NULL;

    if (cJSON_IsString(v) && b64url_decode(v->valuestring, &bytes, &len) == 0)
        bn = BN_bin2bn(bytes, (int)len, NULL);
    if (bytes != NULL) {
        OPENSSL_cleanse(bytes, len);
        free(bytes);
    }
    return bn;
}

/* certbot's private_key.json (an RSA JWK) as PKCS#8 PEM. */
static int
jwk_to_pem(const char *path, char **pem, size_t *pem_len, char **cause)
{
    static const struct {
        const char *jwk, *param;
    } rsa[] = {
        {"n", OSSL_PKEY_PARAM_RSA_N},          {"e", OSSL_PKEY_PARAM_RSA_E},
        {"d", OSSL_PKEY_PARAM_RSA_D},          {"p", OSSL_PKEY_PARAM_RSA_FACTOR1},
        {"q", OSSL_PKEY_PARAM_RSA_FACTOR2},    {"dp", OSSL_PKEY_PARAM_RSA_EXPONENT1},
        {"dq", OSSL_PKEY_PARAM_RSA_EXPONENT2}, {"qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
    };
    unsigned char *data = NULL;
    size_t len = 0;
    cJSON *jwk = NULL;
    BIGNUM *bn[8] = {NULL};
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    BUF_MEM *mem;
    int rc = -E_BAD_INPUT;

    if ((rc = fsutil_read_file(path, CONF_MAX, &data, &len, cause)) != 0)
        return rc;
    rc = -E_BAD_INPUT;
    jwk = cJSON_ParseWithLength((const char *)data, len);
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(jwk, "n"))) {
        err_set(cause, "%s is not an RSA JWK", path);
        goto out;
    }
    if ((bld = OSSL_PARAM_BLD_new()) == NULL)
        goto out;
    for (size_t i = 0; i < 8; i++) {
        if ((bn[i] = jwk_bn(jwk, rsa[i].jwk)) == NULL ||
            !OSSL_PARAM_BLD_push_BN(bld, rsa[i].param, bn[i])) {
            err_set(cause, "%s lacks the RSA member '%s'", path, rsa[i].jwk);
            goto out;
        }
    }
    if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) <= 0) {
        err_set(cause, "%s is not a usable RSA key", path);
        goto out;
    }
    if ((bio = BIO_new(BIO_s_mem())) == NULL ||
        !PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)) {
        rc = -E_NOMEM;
        goto out;
    }
    BIO_get_mem_ptr(bio, &mem);
    if ((*pem = malloc(mem->length + 1)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    memcpy(*pem, mem->data, mem->length);
    (*pem)[mem->length] = '\0';
    *pem_len = mem->length;
    rc = 0;
out:
    BIO_free_all(bio);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    for (size_t i = 0; i < 8; i++)
        BN_clear_free(bn[i]);
    cJSON_Delete(jwk);
    if (data != NULL) {
        OPENSSL_cleanse(data, len);
        free(data);
    }
    return rc;
}

/* Sends w; an error goes into report["error"] (not to stderr: one summary at the end). */
static int
call_quiet(struct ctl *ctl, struct proto_writer *w, struct reply *r, cJSON *report)
{
    char *cause = NULL;
    int rc = client_request_finish(&ctl->client, w, r, &cause);

    if (rc != 0) {
        cJSON_AddStringToObject(report, "error", cause != NULL ? cause : err_message(rc));
        free(cause);
        return EXIT_UNREACHABLE;
    }
    if (!r->ok) {
        cJSON_AddStringToObject(report, "error", r->message != NULL ? r->message : "error");
        return EXIT_AGENT_ERROR;
    }
    return 0;
}

/* The CA whose directory is url, from `ca list`; else added as certbot-HOST. */
static int
ca_for(struct ctl *ctl, const char *url, char *out, size_t outlen, cJSON *report)
{
    struct proto_writer w;
    struct reply r;
    const cJSON *c;
    int rc;

    memset(&r, 0, sizeof(r));
    client_request_begin(&ctl->client, &w, PROTO_OP_CA_LIST, 0);
    if ((rc = call_quiet(ctl, &w, &r, report)) != 0) {
        reply_free(&r);
        return rc;
    }
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(r.result, "cas"))
    {
        if (strcmp(jstr(c, "directory"), url) == 0) {
            snprintf(out, outlen, "%s", jstr(c, "name"));
            reply_free(&r);
            return 0;
        }
    }
    reply_free(&r);
    {
        const char *h = strstr(url, "://");
        size_t n = 0;

        h = h != NULL ? h + 3 : url;
        n = (size_t)snprintf(out, outlen, "certbot-");
        for (; *h != '\0' && *h != '/' && n + 1 < outlen; h++)
            out[n++] = (*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
                               (*h >= '0' && *h <= '9') || *h == '.' || *h == '-'
                           ? *h
                           : '-';
        out[n] = '\0';
    }
    client_request_begin(&ctl->client, &w, PROTO_OP_CA_ADD, 2);
    proto_pack_kv_str(&w.pk, "name", out);
    proto_pack_kv_str(&w.pk, "directory", url);
    memset(&r, 0, sizeof(r));
    rc = call_quiet(ctl, &w, &r, report);
    reply_free(&r);
    if (rc == 0)
        cJSON_AddStringToObject(report, "ca_added", url);
    return rc;
}

/* certbot's account at this CA, when the agent has none there yet. */
static void
import_account(struct ctl *ctl, const char *dir, const struct lineage *l, const char *ca,
               cJSON *report)
{
    const char *hostpath = strstr(l->server, "://");
    char *base = NULL, *keyp = NULL, *regrp = NULL, *pem = NULL, *cause = NULL;
    unsigned char *regr = NULL;
    size_t pem_len = 0, regr_len = 0;
    cJSON *rj = NULL;
    const cJSON *uri;
    struct proto_writer w;
    struct reply r;
    int rc;

    memset(&r, 0, sizeof(r));
    if (l->account[0] == '\0' || hostpath == NULL)
        return;
    err_set(&base, "%s/accounts/%s/%s", dir, hostpath + 3, l->account);
    err_set(&keyp, "%s/private_key.json", base);
    err_set(&regrp, "%s/regr.json", base);
    if (keyp == NULL || regrp == NULL)
        goto out;
    if (fsutil_read_file(regrp, CONF_MAX, &regr, &regr_len, &cause) != 0 ||
        (rj = cJSON_ParseWithLength((const char *)regr, regr_len)) == NULL ||
        !cJSON_IsString(uri = cJSON_GetObjectItemCaseSensitive(rj, "uri"))) {
        cJSON_AddStringToObject(report, "account", "not found");
        goto out;
    }
    if ((rc = jwk_to_pem(keyp, &pem, &pem_len, &cause)) != 0) {
        cJSON_AddStringToObject(report, "account", cause != NULL ? cause : "unreadable");
        goto out;
    }
    client_request_begin(&ctl->client, &w, PROTO_OP_ACCOUNT_IMPORT, 3);
    proto_pack_kv_str(&w.pk, "ca", ca);
    proto_pack_kv_str(&w.pk, "url", uri->valuestring);
    proto_pack_kv_bin(&w.pk, "key_pem", pem, pem_len);
    /* E_EXISTS is fine: the agent keeps its own account at that CA. */
    rc = client_request_finish(&ctl->client, &w, &r, &cause);
    if (rc == 0 && r.ok)
        cJSON_AddStringToObject(report, "account", uri->valuestring);
    else
        cJSON_AddStringToObject(report, "account",
                                r.message != NULL ? r.message
                                : cause != NULL   ? cause
                                                  : "not imported");
out:
    reply_free(&r);
    if (pem != NULL) {
        OPENSSL_cleanse(pem, pem_len);
        free(pem);
    }
    cJSON_Delete(rj);
    free(regr);
    free(base);
    free(keyp);
    free(regrp);
    free(cause);
}

static int
import_one(struct ctl *ctl, const char *dir, const char *conf, int deploy, cJSON *report)
{
    struct lineage l;
    struct proto_writer w;
    struct reply r;
    unsigned char *cert = NULL, *key = NULL, *chain = NULL;
    size_t cert_len = 0, key_len = 0, chain_len = 0;
    char *cause = NULL, *path = NULL, *live = NULL, ca[128];
    const char *note = NULL, *challenge;
    int rc;

    memset(&l, 0, sizeof(l));
    memset(&r, 0, sizeof(r));
    snprintf(l.name, sizeof(l.name), "%.*s", (int)(strlen(conf) - 5), conf);
    cJSON_AddStringToObject(report, "name", l.name);
    err_set(&path, "%s/renewal/%s", dir, conf);
    if ((rc = parse_conf(path, &l, &cause)) != 0 ||
        (rc = read_pem(l.cert, &cert, &cert_len, &cause)) != 0 ||
        (rc = read_pem(l.privkey, &key, &key_len, &cause)) != 0 ||
        (l.chain[0] != '\0' && (rc = read_pem(l.chain, &chain, &chain_len, &cause)) != 0)) {
        cJSON_AddStringToObject(report, "error", cause != NULL ? cause : "unreadable");
        rc = EXIT_AGENT_ERROR;
        goto out;
    }
    if (l.server[0] == '\0')
        snprintf(l.server, sizeof(l.server), "https://acme-v02.api.letsencrypt.org/directory");
    /* Already taken over (a second run): certbot's copy is older than the agent's now. */
    client_request_begin(&ctl->client, &w, PROTO_OP_SHOW, 1);
    proto_pack_kv_str(&w.pk, "name", l.name);
    if ((rc = client_request_finish(&ctl->client, &w, &r, &cause)) == 0 && r.ok) {
        cJSON_AddStringToObject(report, "skipped", "certagent has it already");
        rc = 0;
        goto out;
    }
    reply_free(&r);
    memset(&r, 0, sizeof(r));
    if ((rc = ca_for(ctl, l.server, ca, sizeof(ca), report)) != 0)
        goto out;
    cJSON_AddStringToObject(report, "ca", ca);
    import_account(ctl, dir, &l, ca, report);
    challenge = challenge_of(&l, &note);
    cJSON_AddStringToObject(report, "key_type", key_type_of(&l));
    cJSON_AddStringToObject(report, "challenge", challenge);
    if (note != NULL)
        cJSON_AddStringToObject(report, "note", note);
    if (deploy) {
        cJSON *s = cJSON_CreateObject(), *a;

        err_set(&live, "%s/live/%s", dir, l.name);
        if (s != NULL && live != NULL && (a = cJSON_AddArrayToObject(s, "add_files")) != NULL) {
            cJSON_AddItemToArray(a, cJSON_CreateString(live));
            rc = cmd_settings_apply(ctl, l.name, s, 0);
        }
        cJSON_Delete(s);
        if (rc != 0)
            goto out;
        cJSON_AddStringToObject(report, "deploy", live);
    }
    client_request_begin(&ctl->client, &w, PROTO_OP_IMPORT, 4 + (chain != NULL));
    proto_pack_kv_str(&w.pk, "name", l.name);
    proto_pack_kv_bin(&w.pk, "cert", cert, cert_len);
    proto_pack_kv_bin(&w.pk, "key", key, key_len);
    if (chain != NULL)
        proto_pack_kv_bin(&w.pk, "chain", chain, chain_len);
    proto_pack_str(&w.pk, "acme");
    msgpack_pack_map(&w.pk, 5 - (l.preferred_chain[0] == '\0'));
    proto_pack_kv_str(&w.pk, "ca", ca);
    proto_pack_kv_str(&w.pk, "key_type", key_type_of(&l));
    proto_pack_kv_str(&w.pk, "challenge", challenge);
    proto_pack_kv_str(&w.pk, "migrated_from", "certbot");
    if (l.preferred_chain[0] != '\0')
        proto_pack_kv_str(&w.pk, "preferred_chain", l.preferred_chain);
    if ((rc = call_quiet(ctl, &w, &r, report)) == 0)
        cJSON_AddNumberToObject(report, "version", (double)jint(r.result, "version"));
out:
    reply_free(&r);
    if (key != NULL) {
        OPENSSL_cleanse(key, key_len);
        free(key);
    }
    free(cert);
    free(chain);
    free(path);
    free(live);
    free(cause);
    return rc;
}

int
cmd_import_certbot(struct ctl *ctl, const char *dir, int deploy)
{
    char *renewal = NULL;
    uv_fs_t req;
    uv_dirent_t ent;
    cJSON *all = cJSON_CreateArray(), *it;
    int n, rc = 0, done = 0, failed = 0;

    err_set(&renewal, "%s/renewal", dir);
    if (renewal == NULL || all == NULL) {
        cJSON_Delete(all);
        free(renewal);
        return EXIT_AGENT_ERROR;
    }
    if ((n = uv_fs_scandir(NULL, &req, renewal, 0, NULL)) < 0) {
        char msg[1024];

        snprintf(msg, sizeof(msg), "no certbot lineages in %s: %s", renewal, uv_strerror(n));
        fprintf(stderr, "certctl import: %s\n", msg);
        output_error("E_NOT_FOUND", msg, renewal, NULL);
        free(renewal);
        cJSON_Delete(all);
        return EXIT_USAGE;
    }
    if ((rc = ctl_connect(ctl)) != 0)
        goto out;
    while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
        size_t l = strlen(ent.name);
        cJSON *report;

        if (l <= 5 || strcmp(ent.name + l - 5, ".conf") != 0 || ent.name[0] == '.')
            continue;
        if ((report = cJSON_CreateObject()) == NULL)
            continue;
        cJSON_AddItemToArray(all, report);
        if (import_one(ctl, dir, ent.name, deploy, report) == 0) {
            if (cJSON_GetObjectItemCaseSensitive(report, "skipped") == NULL)
                done++;
        } else
            failed++;
    }
    if (ctl->json) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddItemToObject(o, "lineages", all);
        all = NULL;
        cJSON_AddNumberToObject(o, "imported", done);
        cJSON_AddNumberToObject(o, "failed", failed);
        output_json(o);
        cJSON_Delete(o);
    } else {
        cJSON_ArrayForEach(it, all)
        {
            if (jstr(it, "skipped")[0] != '\0')
                printf("skipped '%s': %s\n", jstr(it, "name"), jstr(it, "skipped"));
            else if (cJSON_GetObjectItemCaseSensitive(it, "version") != NULL)
                printf("imported '%s' version %lld from certbot: CA '%s', key %s, %s\n",
                       jstr(it, "name"), (long long)jint(it, "version"), jstr(it, "ca"),
                       jstr(it, "key_type"), jstr(it, "challenge"));
            else
                printf("NOT imported '%s': %s\n", jstr(it, "name"),
                       jstr(it, "error")[0] ? jstr(it, "error") : "see above");
            if (jstr(it, "ca_added")[0] != '\0')
                printf("  added CA '%s' for %s\n", jstr(it, "ca"), jstr(it, "ca_added"));
            if (jstr(it, "account")[0] != '\0')
                printf("  account: %s\n", jstr(it, "account"));
            if (jstr(it, "deploy")[0] != '\0')
                printf("  keeps %s/ current\n", jstr(it, "deploy"));
            if (jstr(it, "note")[0] != '\0')
                printf("  note: %s\n", jstr(it, "note"));
        }
        printf("%d lineage(s) imported, %d failed.\n", done, failed);
        if (done > 0)
            printf("certagent renews them from now on: stop certbot's renewals "
                   "(systemctl disable --now certbot.timer).\n");
    }
    rc = failed > 0 ? EXIT_AGENT_ERROR : 0;
out:
    uv_fs_req_cleanup(&req);
    cJSON_Delete(all);
    free(renewal);
    return rc;
}
