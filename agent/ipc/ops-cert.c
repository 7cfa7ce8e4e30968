/*
 * Handlers that read, change or export certificates: show, import,
 * selfsigned, export, remove, rollback.  Parsing, key work and disk writes run
 * in the thread pool; the index is touched only on the loop (store_begin in
 * the handler, store_finish in done).
 */
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme.h"
#include "agent.h"
#include "deploy.h"
#include "served.h"
#include "err.h"
#include "events.h"
#include "fsutil.h"
#include "keys.h"
#include "log.h"
#include "ops.h"
#include "pem.h"
#include "platform.h"
#include "store-pack.h"
#include "store.h"
#include "strv.h"
#include "sys.h"

/* Largest certificate, chain, key or PFX accepted in a request. */
#define MAX_REQUEST_FILE (256 * 1024)

struct cert_job {
    struct job job;
    struct store_change *change;
    char *name;
    /* import */
    unsigned char *cert, *key, *chain, *pfx;
    size_t cert_len, key_len, chain_len, pfx_len;
    char *password;
    char *from_store, *store_name; /* import from LocalMachine\STORE by thumbprint */
    /* selfsigned */
    char **dns, **ips;
    size_t ndns, nips;
    enum key_type key_type;
    uint64_t days;
    /* export, show, rollback */
    uint64_t version;
    char *format;
    int include_key;
    /* a version the agent obtained itself (ACME) */
    enum cert_source source;
    char *meta; /* extra JSON for meta.json */
    /* a revocation to record (version is the one revoked) */
    int64_t revoked_at;
    char *revoked_reason;
    ops_cert_notify notify;
    void *notify_arg;
    /* results */
    char **warnings; /* ops_warn */
    size_t nwarnings;
    char *log_line;
    struct cert_info info;
    int have_info;
    struct cert_info *chain_info;
    size_t nchain_info;
};

static void
cert_job_release(struct job *job)
{
    struct cert_job *cj = (struct cert_job *)job;

    free(cj->name);
    free(cj->cert);
    free(cj->chain);
    free(cj->pfx);
    if (cj->key != NULL)
        keys_free_secret(cj->key, cj->key_len);
    if (cj->password != NULL)
        keys_free_secret(cj->password, strlen(cj->password));
    strv_free(cj->dns, cj->ndns);
    strv_free(cj->ips, cj->nips);
    free(cj->format);
    free(cj->from_store);
    free(cj->store_name);
    free(cj->meta);
    free(cj->revoked_reason);
    strv_free(cj->warnings, cj->nwarnings);
    free(cj->log_line);
    if (cj->have_info)
        pem_cert_info_free(&cj->info);
    for (size_t i = 0; i < cj->nchain_info; i++)
        pem_cert_info_free(&cj->chain_info[i]);
    free(cj->chain_info);
    free(cj);
}

static struct cert_job *
cert_job_new(struct request *req, int need_name)
{
    struct cert_job *cj = calloc(1, sizeof(*cj));
    char *cause = NULL;

    if (cj == NULL)
        return NULL;
    if (ops_arg_str(req, "name", need_name, &cj->name) != 0)
        goto fail;
    if (cj->name != NULL && store_name_valid(cj->name, &cause) != 0) {
        free(req->cause);
        req->cause = cause;
        goto fail;
    }
    return cj;
fail:
    cert_job_release(&cj->job);
    return NULL;
}

/* Who asked, for the log line of every change. */
static void
log_change(struct cert_job *cj, const char *what)
{
    struct peer *peer;

    if (cj->job.client == NULL) {
        log_info("%s", what);
        return;
    }
    peer = &cj->job.client->peer;
    log_info("%s (uid %ld, pid %ld): %s", peer->name, peer->uid, peer->pid, what);
}

/* Fills a store summary from the leaf certificate.  Strings are borrowed from info. */
static void
summary_from_info(const struct cert_info *info, struct store_version *v, enum cert_source src,
                  const char *key_desc, unsigned chain_len)
{
    memset(v, 0, sizeof(*v));
    v->source = src;
    v->not_before = info->not_before;
    v->not_after = info->not_after;
    v->serial = info->serial;
    v->fingerprint = info->fingerprint;
    v->subject = info->subject;
    v->common_name = info->common_name;
    v->issuer = info->issuer;
    v->key_desc = (char *)(key_desc != NULL ? key_desc : "");
    v->dns = info->dns;
    v->ndns = info->ndns;
    v->ips = info->ips;
    v->nips = info->nips;
    v->has_key = key_desc != NULL;
    v->chain_len = chain_len;
}

/*
 * Writes leaf, chain and key as a new version through the job's change and
 * packs the reply.  Shared by import and selfsigned.
 */
static int
commit_version(struct cert_job *cj, enum cert_source src, X509 *leaf, STACK_OF(X509) * chain,
               const struct key *key)
{
    struct job *job = &cj->job;
    struct store_version summary;
    char *cert_pem = NULL, *chain_pem = NULL, *key_pem = NULL, *key_desc = NULL;
    size_t cert_len = 0, chain_pem_len = 0, key_len = 0;
    int64_t now = (int64_t)time(NULL);
    char when[32];
    int validity, rc;

    if ((rc = pem_cert_info(leaf, &cj->info, &job->cause)) != 0)
        goto out;
    cj->have_info = 1;
    validity = pem_cert_validity(leaf, now);
    if (validity > 0) {
        sys_format_time(cj->info.not_after, when, sizeof(when));
        ops_warn(&cj->warnings, &cj->nwarnings, "the certificate expired on %s", when);
    } else if (validity < 0) {
        sys_format_time(cj->info.not_before, when, sizeof(when));
        ops_warn(&cj->warnings, &cj->nwarnings, "the certificate is not valid before %s", when);
    }
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
        X509 *ca = sk_X509_value(chain, i);
        int v = pem_cert_validity(ca, now);
        char *subject;

        if (v == 0)
            continue;
        subject = X509_NAME_oneline(X509_get_subject_name(ca), NULL, 0);
        ops_warn(&cj->warnings, &cj->nwarnings, "the chain certificate '%s' %s",
                 subject != NULL ? subject : "?", v > 0 ? "has expired" : "is not valid yet");
        OPENSSL_free(subject);
    }
    if (key == NULL && src == CERT_SOURCE_IMPORT)
        ops_warn(&cj->warnings, &cj->nwarnings, "%s",
                 "no private key was imported: servers cannot use this "
                 "certificate from the store");
    if ((rc = pem_write_cert(leaf, &cert_pem, &cert_len, &job->cause)) != 0)
        goto out;
    if (chain != NULL && sk_X509_num(chain) > 0) {
        if ((rc = pem_write_certs(chain, &chain_pem, &chain_pem_len, &job->cause)) != 0)
            goto out;
    }
    if (key != NULL) {
        if ((key_desc = keys_describe(key)) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
        if ((rc = keys_to_pem(key, &key_pem, &key_len, &job->cause)) != 0)
            goto out;
    }
    summary_from_info(&cj->info, &summary, src, key_desc,
                      chain != NULL ? (unsigned)sk_X509_num(chain) : 0);
    rc = store_change_add(cj->change, &summary, cert_pem, chain_pem != NULL ? chain_pem : "",
                          key_pem, cj->meta, &job->cause);
    if (rc != 0)
        goto out;

    /* Reply. */
    sys_format_time(cj->info.not_after, when, sizeof(when));
    err_set(&cj->log_line, "%s '%s' version %u: %s, %s, expires %s",
            src == CERT_SOURCE_IMPORT  ? "imported"
            : src == CERT_SOURCE_ACME  ? "issued by ACME"
            : src == CERT_SOURCE_FLEET ? "taken from the fleet"
                                       : "created self-signed",
            cj->name, store_change_version(cj->change), cj->info.subject,
            key_desc != NULL ? key_desc : "no key", when);
    proto_begin_result(&job->reply.pk, job->id, 9);
    proto_pack_kv_str(&job->reply.pk, "name", cj->name);
    proto_pack_kv_uint(&job->reply.pk, "version", store_change_version(cj->change));
    proto_pack_kv_uint(&job->reply.pk, "previous", store_change_previous(cj->change));
    proto_pack_kv_str(&job->reply.pk, "subject", cj->info.subject);
    proto_pack_kv_int(&job->reply.pk, "not_after", cj->info.not_after);
    proto_pack_kv_int(&job->reply.pk, "days_left", pem_days_left(cj->info.not_after, now));
    proto_pack_kv_str(&job->reply.pk, "fingerprint", cj->info.fingerprint);
    proto_pack_kv_str(&job->reply.pk, "key", key_desc != NULL ? key_desc : "");
    proto_pack_str(&job->reply.pk, "warnings");
    proto_pack_str_array(&job->reply.pk, cj->warnings, cj->nwarnings);
out:
    free(cert_pem);
    free(chain_pem);
    free(key_desc);
    if (key_pem != NULL)
        keys_free_secret(key_pem, key_len);
    return rc;
}

/* Loop side of import and selfsigned: commit to the index and log. */
static void
change_done(struct job *job)
{
    struct cert_job *cj = (struct cert_job *)job;
    char *line = NULL;
    struct event ev = {.type = EVENT_CERT_CHANGED, .name = cj->name};

    if (cj->change != NULL)
        ev.version = store_change_version(cj->change);
    if (job->op == PROTO_OP_REVOKE) {
        /* The same version, now known revoked: the scheduler and the report react. */
        ev.type = EVENT_CERT_REVOKED;
        ev.version = (unsigned)cj->version;
    }
    store_finish(job->agent->store, cj->change, job->rc);
    cj->change = NULL;
    if (job->rc == 0) {
        /* The scheduler plans the new current version, deploy targets and hooks follow,
         * the status report is written again. */
        events_publish(job->agent->events, &ev);
        log_change(cj, cj->log_line != NULL ? cj->log_line : proto_op_name(job->op));
        for (size_t i = 0; i < cj->nwarnings; i++)
            log_warn("'%s': %s", cj->name, cj->warnings[i]);
    } else {
        err_set(&line, "%s of '%s' failed: %s", proto_op_name(job->op), cj->name,
                job->cause != NULL ? job->cause : err_message(job->rc));
        ops_log_failure(cj->job.client, job->rc, line != NULL ? line : "a change failed");
        free(line);
    }
    if (cj->notify != NULL)
        cj->notify(cj->notify_arg, job->rc, job->cause);
}

static int queue_change(struct request *req, struct cert_job *cj, enum store_change_kind kind,
                        job_fn run);

/* import */

/*
 * The certificate of a thumbprint in the Windows certificate store with its
 * (exportable) key: *key, *leaf and an empty *extra, as a PFX import gives.
 */
static int
read_from_store(struct cert_job *cj, struct key **key, X509 **leaf, STACK_OF(X509) * *extra,
                char **cause)
{
    struct certstore_item item;
    const unsigned char *p;
    int rc;

    if ((rc = platform_certstore_read(cj->store_name, cj->from_store, &item, cause)) != 0)
        return rc;
    if (item.pfx != NULL) {
        rc = keys_parse_pfx(item.pfx, item.pfx_len, "", key, leaf, extra, cause);
        goto out;
    }
    p = item.cert;
    if ((*leaf = d2i_X509(NULL, &p, (long)item.cert_len)) == NULL) {
        err_set(cause, "the certificate %s in LocalMachine\\%s is not one OpenSSL reads",
                cj->from_store, cj->store_name);
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((*extra = sk_X509_new_null()) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    rc = keys_parse_capi_blob(item.key, item.key_len, key, cause);
out:
    if (item.pfx != NULL)
        keys_free_secret(item.pfx, item.pfx_len);
    if (item.key != NULL)
        keys_free_secret(item.key, item.key_len);
    free(item.cert);
    return rc;
}

static void
import_run(struct job *job)
{
    struct cert_job *cj = (struct cert_job *)job;
    STACK_OF(X509) *certs = NULL, *extra = NULL, *more = NULL, *ordered = NULL;
    struct key *key = NULL;
    X509 *leaf = NULL;
    int rc;

    if (cj->from_store != NULL) {
        if ((rc = read_from_store(cj, &key, &leaf, &extra, &job->cause)) != 0)
            goto out;
    } else if (cj->pfx != NULL) {
        if ((rc = keys_parse_pfx(cj->pfx, cj->pfx_len, cj->password, &key, &leaf, &extra,
                                 &job->cause)) != 0)
            goto out;
    } else {
        if ((rc = pem_read_certs(cj->cert, cj->cert_len, "certificate file", &certs,
                                 &job->cause)) != 0)
            goto out;
        leaf = sk_X509_shift(certs);
        extra = certs;
        certs = NULL;
        if (cj->key != NULL) {
            if ((rc = keys_parse(cj->key, cj->key_len, cj->password, &key, &job->cause)) != 0)
                goto out;
        } else if (strstr((const char *)cj->cert, "PRIVATE KEY-----") != NULL) {
            /* A combined PEM file: the key travels with the certificate. */
            if ((rc = keys_parse(cj->cert, cj->cert_len, cj->password, &key, &job->cause)) != 0)
                goto out;
        }
    }
    if (cj->chain != NULL) {
        if ((rc = pem_read_certs(cj->chain, cj->chain_len, "chain file", &more, &job->cause)) != 0)
            goto out;
        while (sk_X509_num(more) > 0) {
            X509 *c = sk_X509_shift(more);

            if (!sk_X509_push(extra, c)) {
                X509_free(c);
                rc = -E_NOMEM;
                goto out;
            }
        }
    }
    if ((rc = pem_check_import(leaf, &job->cause)) != 0)
        goto out;
    if (X509_get0_pubkey(leaf) != NULL && EVP_PKEY_is_a(X509_get0_pubkey(leaf), "RSA") &&
        EVP_PKEY_get_bits(X509_get0_pubkey(leaf)) < 2048)
        ops_warn(&cj->warnings, &cj->nwarnings,
                 "the certificate's key is RSA %d: weak (under 2048 bits); replace it "
                 "soon",
                 EVP_PKEY_get_bits(X509_get0_pubkey(leaf)));
    if (key != NULL && (rc = keys_match_cert(key, leaf, &job->cause)) != 0)
        goto out;
    if ((rc = pem_order_chain(leaf, extra, &ordered, &job->cause)) != 0)
        goto out;
    rc = commit_version(cj, cj->source, leaf, ordered, key);
out:
    sk_X509_pop_free(certs, X509_free);
    sk_X509_pop_free(extra, X509_free);
    sk_X509_pop_free(more, X509_free);
    sk_X509_pop_free(ordered, X509_free);
    X509_free(leaf);
    keys_free(key);
    job->rc = rc;
}

static int
check_input_size(struct request *req, const char *what, size_t len)
{
    if (len > MAX_REQUEST_FILE) {
        err_set(&req->cause, "the %s is %zu bytes; at most %d are accepted", what, len,
                MAX_REQUEST_FILE);
        return -E_TOO_BIG;
    }
    return 0;
}

/*
 * An import may say the certificate came from an ACME CA (certbot migration):
 * "acme" {ca, key_type, challenge, preferred_chain} makes the version's
 * source acme, so that the agent renews it from then on.
 */
static int
import_acme_params(struct request *req, struct cert_job *cj)
{
    const msgpack_object *m = NULL;
    cJSON *a = NULL, *root = NULL, *it;
    int rc;

    if ((rc = proto_get_map(req->args, "acme", &m)) == -E_NOT_FOUND)
        return 0;
    if (rc != 0 || (a = proto_to_json(m)) == NULL) {
        err_set(&req->cause, "'acme' must be a map");
        return rc != 0 ? -E_BAD_INPUT : -E_NOMEM;
    }
    rc = -E_BAD_INPUT;
    cJSON_ArrayForEach(it, a)
    {
        if (!cJSON_IsString(it) ||
            (strcmp(it->string, "ca") != 0 && strcmp(it->string, "key_type") != 0 &&
             strcmp(it->string, "challenge") != 0 && strcmp(it->string, "preferred_chain") != 0 &&
             strcmp(it->string, "migrated_from") != 0)) {
            err_set(&req->cause, "'acme' takes the strings ca, key_type, challenge, "
                                 "preferred_chain and migrated_from");
            goto out;
        }
    }
    it = cJSON_GetObjectItemCaseSensitive(a, "ca");
    if (!cJSON_IsString(it) || !acme_ca_known(req->agent->acme, it->valuestring)) {
        err_set(&req->cause, "'acme' needs the name of a CA the agent knows (certctl ca list)");
        goto out;
    }
    it = cJSON_GetObjectItemCaseSensitive(a, "key_type");
    if (cJSON_IsString(it)) {
        enum key_type kt;

        if (keys_type_parse(it->valuestring, &kt, &req->cause) != 0)
            goto out;
    }
    it = cJSON_GetObjectItemCaseSensitive(a, "challenge");
    if (cJSON_IsString(it) && strcmp(it->valuestring, "http-01") != 0 &&
        strcmp(it->valuestring, "dns-01") != 0 && strcmp(it->valuestring, "tls-alpn-01") != 0) {
        err_set(&req->cause, "unknown challenge '%s'", it->valuestring);
        goto out;
    }
    rc = -E_NOMEM;
    if ((root = cJSON_CreateObject()) == NULL)
        goto out;
    cJSON_AddItemToObject(root, "acme", a);
    a = NULL;
    if ((cj->meta = cJSON_PrintUnformatted(root)) == NULL)
        goto out;
    cj->source = CERT_SOURCE_ACME;
    rc = 0;
out:
    cJSON_Delete(a);
    cJSON_Delete(root);
    return rc;
}

int
ops_import(struct request *req)
{
    struct cert_job *cj = cert_job_new(req, 1);
    const struct cert_settings *st;
    int rc;

    if (cj == NULL)
        return req->cause != NULL ? -E_BAD_INPUT : -E_NOMEM;
    if ((rc = ops_arg_bin(req, "cert", 0, &cj->cert, &cj->cert_len)) != 0 ||
        (rc = ops_arg_bin(req, "key", 0, &cj->key, &cj->key_len)) != 0 ||
        (rc = ops_arg_bin(req, "chain", 0, &cj->chain, &cj->chain_len)) != 0 ||
        (rc = ops_arg_bin(req, "pfx", 0, &cj->pfx, &cj->pfx_len)) != 0 ||
        (rc = ops_arg_str(req, "password", 0, &cj->password)) != 0 ||
        (rc = ops_arg_str(req, "from_store", 0, &cj->from_store)) != 0 ||
        (rc = ops_arg_str(req, "store", 0, &cj->store_name)) != 0)
        goto fail;
    if ((cj->pfx != NULL) + (cj->cert != NULL) + (cj->from_store != NULL) != 1) {
        err_set(&req->cause, "give either a certificate (with an optional key and chain), "
                             "a PFX file, or a thumbprint in the Windows certificate store");
        rc = -E_BAD_INPUT;
        goto fail;
    }
    if (cj->from_store != NULL && (cj->key != NULL || cj->chain != NULL)) {
        err_set(&req->cause, "an import from the Windows certificate store takes no key or "
                             "chain file");
        rc = -E_BAD_INPUT;
        goto fail;
    }
    if (cj->from_store != NULL && !platform_certstore_available()) {
        err_set(&req->cause, "cannot import from the store: the Windows certificate store "
                             "exists only on Windows");
        rc = -E_BAD_INPUT;
        goto fail;
    }
    if (cj->from_store != NULL && cj->store_name == NULL &&
        (cj->store_name = strdup("MY")) == NULL) {
        rc = -E_NOMEM;
        goto fail;
    }
    if (cj->pfx != NULL && cj->key != NULL) {
        err_set(&req->cause, "a PFX file carries its own key: do not give a key file too");
        rc = -E_BAD_INPUT;
        goto fail;
    }
    if ((rc = check_input_size(req, "certificate file", cj->cert_len)) != 0 ||
        (rc = check_input_size(req, "key file", cj->key_len)) != 0 ||
        (rc = check_input_size(req, "chain file", cj->chain_len)) != 0 ||
        (rc = check_input_size(req, "PFX file", cj->pfx_len)) != 0)
        goto fail;
    if ((rc = import_acme_params(req, cj)) != 0)
        goto fail;
    st = deploy_settings(req->agent->deploy, cj->name);
    if (cj->source == CERT_SOURCE_IMPORT && st != NULL && st->auto_renew == 1)
        ops_warn(&cj->warnings, &cj->nwarnings,
                 "auto-renew is set to yes, but an imported certificate has no CA to renew it "
                 "with: it is not renewed; certctl set %s --auto-renew default clears the "
                 "setting",
                 cj->name);
    return queue_change(req, cj, STORE_CHANGE_ADD, import_run);
fail:
    cert_job_release(&cj->job);
    return rc;
}

/* selfsigned */

static void
selfsigned_run(struct job *job)
{
    struct cert_job *cj = (struct cert_job *)job;
    struct key *key = NULL;
    X509 *cert = NULL;
    const char *cn = cj->ndns > 0 ? cj->dns[0] : cj->nips > 0 ? cj->ips[0] : cj->name;
    int rc;

    if ((rc = keys_generate(cj->key_type, &key, &job->cause)) != 0)
        goto out;
    if ((rc = keys_selfsigned(key, cn, (const char *const *)cj->dns, cj->ndns,
                              (const char *const *)cj->ips, cj->nips, (int)cj->days, &cert,
                              &job->cause)) != 0)
        goto out;
    rc = commit_version(cj, CERT_SOURCE_SELFSIGNED, cert, NULL, key);
out:
    X509_free(cert);
    keys_free(key);
    job->rc = rc;
}

int
ops_selfsigned(struct request *req)
{
    struct cert_job *cj = cert_job_new(req, 1);
    char *keyname = NULL;
    char msg[128];
    int rc;

    if (cj == NULL)
        return req->cause != NULL ? -E_BAD_INPUT : -E_NOMEM;
    cj->days = (uint64_t)req->agent->config.selfsigned_days;
    if ((rc = ops_arg_strs(req, "dns", &cj->dns, &cj->ndns)) != 0 ||
        (rc = ops_arg_strs(req, "ips", &cj->ips, &cj->nips)) != 0 ||
        (rc = ops_arg_str(req, "key", 0, &keyname)) != 0 ||
        (rc = ops_arg_uint(req, "days", 0, &cj->days)) != 0)
        goto fail;
    if (cj->ndns == 0 && cj->nips == 0) {
        err_set(&req->cause, "give at least one DNS name (--dns) or IP address (--ip)");
        rc = -E_BAD_INPUT;
        goto fail;
    }
    if (cj->days < 1 || cj->days > CONFIG_SELFSIGNED_DAYS_MAX) {
        /* The same range as the config's selfsigned_days. */
        err_set(&req->cause, "--days takes 1 to %d (days), not %llu", CONFIG_SELFSIGNED_DAYS_MAX,
                (unsigned long long)cj->days);
        rc = -E_BAD_INPUT;
        goto fail;
    }
    if ((rc = keys_type_parse(keyname != NULL ? keyname : req->agent->config.default_key,
                              &cj->key_type, &req->cause)) != 0)
        goto fail;
    free(keyname);
    keyname = NULL;
    snprintf(msg, sizeof(msg), "generating a new %s key", keys_type_name(cj->key_type));
    /* queue_change releases cj when it fails. */
    if ((rc = queue_change(req, cj, STORE_CHANGE_ADD, selfsigned_run)) == 0)
        ops_progress(req->client, req->id, msg, 0, 1);
    return rc;
fail:
    free(keyname);
    cert_job_release(&cj->job);
    return rc;
}

/* remove and rollback */

static void
remove_run(struct job *job)
{
    struct cert_job *cj = (struct cert_job *)job;

    job->rc = store_change_remove(cj->change, &job->cause);
    if (job->rc == 0) {
        err_set(&cj->log_line, "removed '%s' and all its versions", cj->name);
        proto_begin_result(&job->reply.pk, job->id, 1);
        proto_pack_kv_str(&job->reply.pk, "name", cj->name);
    }
}

static void
rollback_run(struct job *job)
{
    struct cert_job *cj = (struct cert_job *)job;

    job->rc = store_change_rollback(cj->change, (unsigned)cj->version, &job->cause);
    if (job->rc == 0) {
        err_set(&cj->log_line, "rolled '%s' back from version %u to version %u", cj->name,
                store_change_previous(cj->change), store_change_version(cj->change));
        proto_begin_result(&job->reply.pk, job->id, 3);
        proto_pack_kv_str(&job->reply.pk, "name", cj->name);
        proto_pack_kv_uint(&job->reply.pk, "version", store_change_version(cj->change));
        proto_pack_kv_uint(&job->reply.pk, "previous", store_change_previous(cj->change));
    }
}

static int
queue_change(struct request *req, struct cert_job *cj, enum store_change_kind kind, job_fn run)
{
    int rc;

    if ((rc = store_begin(req->agent->store, cj->name, kind, &cj->change, &req->cause)) != 0)
        goto fail;
    if ((rc = ops_job_queue(req, &cj->job, run, change_done, cert_job_release)) != 0) {
        store_finish(req->agent->store, cj->change, rc);
        cj->change = NULL;
        goto fail;
    }
    return 0;
fail:
    cert_job_release(&cj->job);
    return rc;
}

int
ops_remove(struct request *req)
{
    struct cert_job *cj = cert_job_new(req, 1);

    if (cj == NULL)
        return req->cause != NULL ? -E_BAD_INPUT : -E_NOMEM;
    return queue_change(req, cj, STORE_CHANGE_REMOVE, remove_run);
}

int
ops_rollback(struct request *req)
{
    struct cert_job *cj = cert_job_new(req, 1);
    int rc;

    if (cj == NULL)
        return req->cause != NULL ? -E_BAD_INPUT : -E_NOMEM;
    if ((rc = ops_arg_uint(req, "to", 0, &cj->version)) != 0) {
        cert_job_release(&cj->job);
        return rc;
    }
    return queue_change(req, cj, STORE_CHANGE_ROLLBACK, rollback_run);
}

/* revocation record */

static void
revoke_record_run(struct job *job)
{
    struct cert_job *cj = (struct cert_job *)job;

    job->rc = store_change_revoke(cj->change, (unsigned)cj->version, cj->revoked_at,
                                  cj->revoked_reason, &job->cause);
    if (job->rc == 0)
        err_set(&cj->log_line, "recorded that '%s' version %llu was revoked at its CA (%s)",
                cj->name, (unsigned long long)cj->version, cj->revoked_reason);
}

int
ops_cert_revoked(struct agent *agent, const char *name, unsigned version, int64_t when,
                 const char *reason, ops_cert_notify notify, void *arg, char **cause)
{
    struct request req;
    struct cert_job *cj;
    int rc;

    memset(&req, 0, sizeof(req));
    req.agent = agent;
    req.op = PROTO_OP_REVOKE;
    if ((cj = calloc(1, sizeof(*cj))) == NULL)
        return -E_NOMEM;
    cj->notify = notify;
    cj->notify_arg = arg;
    cj->version = version;
    cj->revoked_at = when;
    if ((cj->name = strdup(name)) == NULL ||
        (cj->revoked_reason = strdup(reason != NULL ? reason : "unspecified")) == NULL) {
        cert_job_release(&cj->job);
        return -E_NOMEM;
    }
    /* queue_change releases cj when it fails. */
    rc = queue_change(&req, cj, STORE_CHANGE_REVOKE, revoke_record_run);

    *cause = req.cause;
    return rc;
}

/* The version a show or export reads: the one asked for, else the current one. */
static int
resolve_version(struct request *req, struct cert_job *cj)
{
    const struct store_cert *cert = store_find(req->agent->store, cj->name);

    if (cert == NULL) {
        err_set(&req->cause, "no certificate named '%s'", cj->name);
        return -E_NOT_FOUND;
    }
    if (cj->version == 0)
        cj->version = cert->current;
    if (store_version_get(cert, (unsigned)cj->version) == NULL) {
        err_set(&req->cause, "'%s' has no version %llu", cj->name,
                (unsigned long long)cj->version);
        return -E_NOT_FOUND;
    }
    return 0;
}

/* show */

static void
show_run(struct job *job)
{
    struct cert_job *cj = (struct cert_job *)job;
    unsigned char *data = NULL;
    size_t len = 0;
    STACK_OF(X509) *certs = NULL;
    int rc;

    if ((rc = store_read_file(job->agent->store, cj->name, (unsigned)cj->version, "cert.pem",
                              &data, &len, &job->cause)) != 0)
        goto out;
    if ((rc = pem_read_certs(data, len, "stored certificate", &certs, &job->cause)) != 0)
        goto out;
    if ((rc = pem_cert_info(sk_X509_value(certs, 0), &cj->info, &job->cause)) != 0)
        goto out;
    cj->have_info = 1;
    sk_X509_pop_free(certs, X509_free);
    certs = NULL;
    free(data);
    data = NULL;
    rc = store_read_file(job->agent->store, cj->name, (unsigned)cj->version, "chain.pem", &data,
                         &len, &job->cause);
    if (rc == -E_NOT_FOUND || (rc == 0 && len == 0)) {
        rc = 0;
        goto out;
    }
    if (rc != 0 || (rc = pem_read_certs(data, len, "stored chain", &certs, &job->cause)) != 0)
        goto out;
    if ((cj->chain_info = calloc((size_t)sk_X509_num(certs), sizeof(*cj->chain_info))) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    for (int i = 0; i < sk_X509_num(certs); i++) {
        if ((rc = pem_cert_info(sk_X509_value(certs, i), &cj->chain_info[i], &job->cause)) != 0)
            goto out;
        cj->nchain_info++;
    }
out:
    free(data);
    sk_X509_pop_free(certs, X509_free);
    job->rc = rc;
}

static void
pack_info_brief(msgpack_packer *pk, const struct cert_info *ci, int64_t now)
{
    msgpack_pack_map(pk, 6);
    proto_pack_kv_str(pk, "subject", ci->subject);
    proto_pack_kv_str(pk, "issuer", ci->issuer);
    proto_pack_kv_int(pk, "not_after", ci->not_after);
    proto_pack_kv_int(pk, "days_left", pem_days_left(ci->not_after, now));
    proto_pack_kv_bool(pk, "is_ca", ci->is_ca);
    proto_pack_kv_str(pk, "fingerprint", ci->fingerprint);
}

/* Loop: the history comes from the index as it is now. */
static void
show_done(struct job *job)
{
    struct cert_job *cj = (struct cert_job *)job;
    const struct store_cert *cert = store_find(job->agent->store, cj->name);
    const struct store_version *v;
    const struct cert_settings *st;
    msgpack_packer *pk = &job->reply.pk;
    int64_t now = (int64_t)time(NULL);
    char *live;

    if (job->rc != 0)
        return;
    if (cert == NULL || (v = store_version_get(cert, (unsigned)cj->version)) == NULL) {
        job->rc = -E_NOT_FOUND;
        err_set(&job->cause, "'%s' was removed meanwhile", cj->name);
        return;
    }
    /* live_dir: the certificate's own folder, STATE/live/NAME (cert.pem, fullchain.pem...). */
    {
        char *root = fsutil_join(job->agent->state_dir, "live");

        live = root != NULL ? fsutil_join(root, cert->name) : NULL;
        free(root);
    }
    st = deploy_settings(job->agent->deploy, cert->name);
    proto_begin_result(pk, job->id, 27 + 1 /* served */);
    proto_pack_kv_str(pk, "name", cert->name);
    proto_pack_kv_uint(pk, "version", v->version);
    proto_pack_kv_uint(pk, "current", cert->current);
    proto_pack_kv_str(pk, "source", store_source_name(v->source));
    proto_pack_kv_str(pk, "subject", cj->info.subject);
    proto_pack_kv_str(pk, "common_name", cj->info.common_name);
    proto_pack_kv_str(pk, "issuer", cj->info.issuer);
    proto_pack_kv_str(pk, "serial", cj->info.serial);
    proto_pack_kv_str(pk, "fingerprint", cj->info.fingerprint);
    proto_pack_str(pk, "dns");
    proto_pack_str_array(pk, cj->info.dns, cj->info.ndns);
    proto_pack_str(pk, "ips");
    proto_pack_str_array(pk, cj->info.ips, cj->info.nips);
    proto_pack_kv_int(pk, "not_before", cj->info.not_before);
    proto_pack_kv_int(pk, "not_after", cj->info.not_after);
    proto_pack_kv_int(pk, "days_left", pem_days_left(cj->info.not_after, now));
    proto_pack_kv_str(pk, "key", v->key_desc);
    proto_pack_kv_bool(pk, "has_key", v->has_key);
    proto_pack_kv_str(pk, "key_type", cj->info.key_type);
    proto_pack_kv_int(pk, "key_bits", cj->info.key_bits);
    proto_pack_kv_str(pk, "signature", cj->info.sig_alg);
    proto_pack_kv_bool(pk, "self_signed", cj->info.self_signed);
    proto_pack_kv_int(pk, "created", v->created);
    store_pack_revoked(pk, v);
    proto_pack_str(pk, "chain");
    msgpack_pack_array(pk, cj->nchain_info);
    for (size_t i = 0; i < cj->nchain_info; i++)
        pack_info_brief(pk, &cj->chain_info[i], now);
    proto_pack_str(pk, "history");
    msgpack_pack_array(pk, cert->nversions);
    for (size_t i = cert->nversions; i-- > 0;) {
        const struct store_version *h = &cert->versions[i];

        msgpack_pack_map(pk, 10);
        proto_pack_kv_uint(pk, "version", h->version);
        proto_pack_kv_bool(pk, "current", h->version == cert->current);
        proto_pack_kv_str(pk, "source", store_source_name(h->source));
        proto_pack_kv_int(pk, "created", h->created);
        proto_pack_kv_int(pk, "not_after", h->not_after);
        proto_pack_kv_str(pk, "serial", h->serial);
        proto_pack_kv_str(pk, "fingerprint", h->fingerprint);
        proto_pack_kv_str(pk, "key", h->key_desc);
        store_pack_revoked(pk, h);
    }
    proto_pack_kv_str(pk, "live_dir", live != NULL ? live : "");
    free(live);
    /* What the Windows stores hold of it: {"MY": THUMBPRINT} (deploy.c records it). */
    proto_pack_str(pk, "windows_store");
    msgpack_pack_map(pk, st != NULL ? st->nthumbprints : 0);
    for (size_t i = 0; st != NULL && i < st->nthumbprints; i++)
        proto_pack_kv_str(pk, st->thumbprints[i].store, st->thumbprints[i].thumbprint);
    /* What each --check-served URL served at its last check (deploy/served.c). */
    proto_pack_str(pk, "served");
    served_pack(job->agent->served, cert->name, pk);
}

int
ops_show(struct request *req)
{
    struct cert_job *cj = cert_job_new(req, 1);
    int rc;

    if (cj == NULL)
        return req->cause != NULL ? -E_BAD_INPUT : -E_NOMEM;
    if ((rc = ops_arg_uint(req, "version", 0, &cj->version)) != 0)
        goto fail;
    if ((rc = resolve_version(req, cj)) != 0)
        goto fail;
    if ((rc = ops_job_queue(req, &cj->job, show_run, show_done, cert_job_release)) != 0)
        goto fail;
    return 0;
fail:
    cert_job_release(&cj->job);
    return rc;
}

/* export */

static void
export_run(struct job *job)
{
    struct cert_job *cj = (struct cert_job *)job;
    unsigned char *cert = NULL, *chain = NULL, *key = NULL, *out = NULL;
    size_t cert_len = 0, chain_len = 0, key_len = 0, out_len = 0;
    STACK_OF(X509) *certs = NULL, *chain_certs = NULL;
    struct key *pkey = NULL;
    int pfx = strcmp(cj->format, "pfx") == 0;
    int rc;

    if ((rc = store_read_file(job->agent->store, cj->name, (unsigned)cj->version, "cert.pem",
                              &cert, &cert_len, &job->cause)) != 0)
        goto out;
    rc = store_read_file(job->agent->store, cj->name, (unsigned)cj->version, "chain.pem", &chain,
                         &chain_len, &job->cause);
    if (rc != 0 && rc != -E_NOT_FOUND)
        goto out;
    if (cj->include_key) {
        rc = store_read_file(job->agent->store, cj->name, (unsigned)cj->version, "privkey.pem",
                             &key, &key_len, &job->cause);
        if (rc == -E_NOT_FOUND) {
            err_set(&job->cause,
                    "'%s' version %llu has no private key to export; use "
                    "--no-key to export the certificate alone",
                    cj->name, (unsigned long long)cj->version);
            goto out;
        }
        if (rc != 0)
            goto out;
    }
    if (pfx) {
        if ((rc = pem_read_certs(cert, cert_len, "stored certificate", &certs, &job->cause)) != 0)
            goto out;
        if (chain_len > 0 && (rc = pem_read_certs(chain, chain_len, "stored chain", &chain_certs,
                                                  &job->cause)) != 0)
            goto out;
        if (key != NULL && (rc = keys_parse(key, key_len, NULL, &pkey, &job->cause)) != 0)
            goto out;
        if ((rc = keys_export_pfx(pkey, sk_X509_value(certs, 0), chain_certs,
                                  cj->password != NULL ? cj->password : "", cj->name, &out,
                                  &out_len, &job->cause)) != 0)
            goto out;
    } else {
        /* One PEM file: certificate, chain, then the key (the order HAProxy and others read). */
        out_len = cert_len + chain_len + key_len;
        if ((out = malloc(out_len + 1)) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
        memcpy(out, cert, cert_len);
        if (chain_len > 0)
            memcpy(out + cert_len, chain, chain_len);
        if (key_len > 0)
            memcpy(out + cert_len + chain_len, key, key_len);
    }
    err_set(&cj->log_line, "exported '%s' version %llu as %s %s", cj->name,
            (unsigned long long)cj->version, cj->format,
            key != NULL ? "WITH its private key" : "without the private key");
    proto_begin_result(&job->reply.pk, job->id, 5);
    proto_pack_kv_str(&job->reply.pk, "name", cj->name);
    proto_pack_kv_uint(&job->reply.pk, "version", cj->version);
    proto_pack_kv_str(&job->reply.pk, "format", cj->format);
    proto_pack_kv_bool(&job->reply.pk, "has_key", key != NULL);
    proto_pack_kv_bin(&job->reply.pk, "data", out, out_len);
out:
    free(cert);
    free(chain);
    if (key != NULL)
        keys_free_secret(key, key_len);
    if (out != NULL)
        keys_free_secret(out, out_len);
    sk_X509_pop_free(certs, X509_free);
    sk_X509_pop_free(chain_certs, X509_free);
    keys_free(pkey);
    job->rc = rc;
}

static void
export_done(struct job *job)
{
    struct cert_job *cj = (struct cert_job *)job;

    if (job->rc == 0)
        log_change(cj, cj->log_line != NULL ? cj->log_line : "export");
}

int
ops_export(struct request *req)
{
    struct cert_job *cj = cert_job_new(req, 1);
    int no_key = 0, rc;

    if (cj == NULL)
        return req->cause != NULL ? -E_BAD_INPUT : -E_NOMEM;
    if ((rc = ops_arg_str(req, "format", 0, &cj->format)) != 0 ||
        (rc = ops_arg_str(req, "password", 0, &cj->password)) != 0 ||
        (rc = ops_arg_uint(req, "version", 0, &cj->version)) != 0)
        goto fail;
    if (proto_get_bool(req->args != NULL ? req->args : NULL, "no_key", &no_key) == -E_BAD_INPUT) {
        err_set(&req->cause, "argument 'no_key' must be a boolean");
        rc = -E_BAD_INPUT;
        goto fail;
    }
    cj->include_key = !no_key;
    if (cj->format == NULL && (cj->format = strdup("pem")) == NULL) {
        rc = -E_NOMEM;
        goto fail;
    }
    if (strcmp(cj->format, "pem") != 0 && strcmp(cj->format, "pfx") != 0) {
        err_set(&req->cause, "unknown export format '%s': use pem or pfx", cj->format);
        rc = -E_BAD_INPUT;
        goto fail;
    }
    if ((rc = resolve_version(req, cj)) != 0)
        goto fail;
    if ((rc = ops_job_queue(req, &cj->job, export_run, export_done, cert_job_release)) != 0)
        goto fail;
    return 0;
fail:
    cert_job_release(&cj->job);
    return rc;
}

int
ops_cert_store(struct agent *agent, struct client *client, uint64_t id, enum proto_op op,
               const char *name, enum cert_source source, const char *fullchain_pem,
               const char *key_pem, const char *meta_json, ops_cert_notify notify, void *arg,
               char **cause)
{
    struct request req;
    struct cert_job *cj;
    int rc = -E_NOMEM;

    memset(&req, 0, sizeof(req));
    req.agent = agent;
    req.client = client;
    req.id = id;
    req.op = op;
    if ((cj = calloc(1, sizeof(*cj))) == NULL)
        return -E_NOMEM;
    cj->source = source;
    cj->notify = notify;
    cj->notify_arg = arg;
    if ((cj->name = strdup(name)) == NULL ||
        (cj->cert = (unsigned char *)strdup(fullchain_pem)) == NULL ||
        (cj->key = (unsigned char *)strdup(key_pem)) == NULL ||
        (meta_json != NULL && (cj->meta = strdup(meta_json)) == NULL))
        goto fail;
    cj->cert_len = strlen(fullchain_pem);
    cj->key_len = strlen(key_pem);
    rc = queue_change(&req, cj, STORE_CHANGE_ADD, import_run);
    *cause = req.cause;
    return rc;
fail:
    cert_job_release(&cj->job);
    return rc;
}

int
ops_cert_selfsigned_meta(struct agent *agent, const char *name, const char *const *dns,
                         size_t ndns, const char *const *ips, size_t nips, const char *key_type,
                         unsigned days, const char *cj_meta, ops_cert_notify notify, void *arg,
                         char **cause)
{
    struct request req;
    struct cert_job *cj;
    int rc = -E_NOMEM;

    memset(&req, 0, sizeof(req));
    req.agent = agent;
    req.op = PROTO_OP_SELFSIGNED;
    if ((cj = calloc(1, sizeof(*cj))) == NULL)
        return -E_NOMEM;
    cj->notify = notify;
    cj->notify_arg = arg;
    cj->days = days;
    if ((cj->name = strdup(name)) == NULL)
        goto fail;
    if (strv_dup(&cj->dns, &cj->ndns, dns, ndns) != 0 ||
        strv_dup(&cj->ips, &cj->nips, ips, nips) != 0)
        goto fail;
    if ((rc = keys_type_parse(key_type, &cj->key_type, cause)) != 0)
        goto fail;
    if (cj_meta != NULL && (cj->meta = strdup(cj_meta)) == NULL) {
        rc = -E_NOMEM;
        goto fail;
    }
    rc = queue_change(&req, cj, STORE_CHANGE_ADD, selfsigned_run);
    *cause = req.cause;
    return rc;
fail:
    cert_job_release(&cj->job);
    return rc;
}

int
ops_cert_selfsigned(struct agent *agent, const char *name, const char *const *dns, size_t ndns,
                    const char *const *ips, size_t nips, const char *key_type, unsigned days,
                    ops_cert_notify notify, void *arg, char **cause)
{
    return ops_cert_selfsigned_meta(agent, name, dns, ndns, ips, nips, key_type, days, NULL,
                                    notify, arg, cause);
}
