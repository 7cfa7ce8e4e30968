/*
 * Trust store and probe requests.  Changes to the trust store write their
 * files in the thread pool, then (when trust_system_dir is set) run
 * trust_system_command as a child process with uv_spawn and reply once it
 * exited.  verify builds the chain in passes in the pool; an AIA fetch a
 * pass asks for runs on the loop (aia.h) before the next pass, so a server
 * that never answers holds no thread.  probe loads the trust context in the
 * pool and then runs every probe on the loop.  Both are capped per
 * connection and in all, and stop when their client leaves.
 */
#include "ops-trust.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "aia.h"
#include "err.h"
#include "events.h"
#include "fsutil.h"
#include "log.h"
#include "pem.h"
#include "probe.h"
#include "store.h"
#include "strv.h"
#include "sys.h"
#include "trust.h"

#define MAX_TRUST_FILE (256 * 1024)
#define MAX_TRUST_ADD 64
#define MAX_COMMAND_ARGS 16
/* The system-store command is killed after this long. */
#define COMMAND_TIMEOUT_MS 120000

/* Who asked, for the log line of every change. */
static void
log_peer(struct client *client, const char *what)
{
    log_info("%s (uid %ld, pid %ld): %s", client->peer.name, client->peer.uid, client->peer.pid,
             what);
}

/*
 * What an entry is: "root", "intermediate", or "leaf" for a self-signed
 * certificate that is no CA, trusted as an explicit anchor for itself.
 */
static const char *
kind_of(int intermediate, int is_ca)
{
    return intermediate ? "intermediate" : is_ca ? "root" : "leaf";
}

/* trust-add and trust-remove. */

struct trust_change {
    uv_work_t work;
    uv_process_t proc;
    uv_timer_t timer;
    unsigned open_handles;
    struct agent *agent;
    struct client *client;
    uint64_t id;
    int remove;
    int intermediate;
    unsigned char *data;
    size_t len;
    char **known; /* ids present when the request came */
    size_t nknown;
    char *dir, *sysdir, *command;
    /* add */
    STACK_OF(X509) * added;
    struct cert_info *added_info;
    char **skipped;
    size_t nskipped;
    /* remove */
    char *rm_id;
    char *rm_subject;
    char *rm_fingerprint;
    int rm_is_ca;
    /* both */
    char **warnings; /* ops_warn */
    size_t nwarnings;
    int system_changed;
    int system_ran;
    int64_t system_exit;
    int system_signal;
    char *system_error;
    int rc;
    char *cause;
};

static void
change_free(struct trust_change *tc)
{
    free(tc->data);
    strv_free(tc->known, tc->nknown);
    free(tc->dir);
    free(tc->sysdir);
    free(tc->command);
    for (int i = 0; tc->added_info != NULL && i < sk_X509_num(tc->added); i++)
        pem_cert_info_free(&tc->added_info[i]);
    free(tc->added_info);
    sk_X509_pop_free(tc->added, X509_free);
    strv_free(tc->skipped, tc->nskipped);
    free(tc->rm_id);
    free(tc->rm_subject);
    free(tc->rm_fingerprint);
    strv_free(tc->warnings, tc->nwarnings);
    free(tc->system_error);
    free(tc->cause);
    free(tc);
}

static int
is_known(const struct trust_change *tc, const char *id)
{
    for (size_t i = 0; i < tc->nknown; i++) {
        if (strcmp(tc->known[i], id) == 0)
            return 1;
    }
    return 0;
}

static int
push_str(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(*nv));

    if (nv == NULL)
        return -E_NOMEM;
    *v = nv;
    if ((nv[*n] = strdup(s)) == NULL)
        return -E_NOMEM;
    (*n)++;
    return 0;
}

/*
 * Pool: the Windows machine stores mirror the trust store (anchors in
 * LocalMachine\Root, intermediates in LocalMachine\CA).  A failure there is a
 * warning naming the store; the agent's own trust store is what counts.
 */
static void
mirror_to_windows(struct trust_change *tc, const unsigned char *der, size_t len)
{
    const char *store = tc->intermediate ? "CA" : "Root";
    char *cause = NULL;
    int rc;

    if (!platform_certstore_available())
        return;
    if (tc->remove)
        rc = platform_certstore_remove_cert(store, der, len, &cause);
    else
        rc = platform_certstore_add_cert(store, der, len, &cause);
    if (rc != 0)
        ops_warn(&tc->warnings, &tc->nwarnings, "not %s the Windows store LocalMachine\\%s: %s",
                 tc->remove ? "removed from" : "added to", store, cause != NULL ? cause : "error");
    free(cause);
}

/* Pool: parse, check every certificate, then write the new ones. */
static void
add_run(uv_work_t *w)
{
    struct trust_change *tc = (struct trust_change *)w;
    STACK_OF(X509) *certs = NULL;
    int64_t now = (int64_t)time(NULL);
    char when[32];
    int rc, n;

    if ((rc = pem_read_certs(tc->data, tc->len, "certificate file", &certs, &tc->cause)) != 0)
        goto out;
    n = sk_X509_num(certs);
    if (n > MAX_TRUST_ADD) {
        err_set(&tc->cause, "the file holds %d certificates; at most %d are added at once", n,
                MAX_TRUST_ADD);
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((tc->added = sk_X509_new_null()) == NULL ||
        (tc->added_info = calloc((size_t)n, sizeof(*tc->added_info))) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        X509 *c = sk_X509_value(certs, i);
        struct cert_info info;
        char id[65];
        int dup = 0;

        if (trust_cert_id(c, id, sizeof(id)) != 0 ||
            (rc = pem_cert_info(c, &info, &tc->cause)) != 0) {
            rc = rc != 0 ? rc : -E_CRYPTO;
            goto out;
        }
        for (int k = 0; k < sk_X509_num(tc->added); k++)
            dup |= X509_cmp(sk_X509_value(tc->added, k), c) == 0;
        if (is_known(tc, id) || dup) {
            rc = push_str(&tc->skipped, &tc->nskipped, info.subject);
            pem_cert_info_free(&info);
            if (rc != 0)
                goto out;
            continue;
        }
        if (!info.is_ca && !info.self_signed) {
            err_set(&tc->cause,
                    "'%s' is not a CA certificate (no basicConstraints CA:TRUE) and not "
                    "self-signed: trust its issuer instead ('certctl trust add' with the root, "
                    "with --intermediate for an intermediate)",
                    info.subject);
            rc = -E_BAD_INPUT;
        } else if (!tc->intermediate && !info.self_signed) {
            err_set(&tc->cause,
                    "'%s' is not a self-signed root (issuer '%s'): add it with "
                    "--intermediate",
                    info.subject, info.issuer);
            rc = -E_BAD_INPUT;
        } else if (tc->intermediate && info.self_signed) {
            err_set(&tc->cause, "'%s' is a self-signed %s: add it without --intermediate",
                    info.subject, info.is_ca ? "root" : "certificate");
            rc = -E_BAD_INPUT;
        } else if (!info.is_ca) {
            /* A self-signed server certificate trusted as itself, as a browser's exception
             * is: not being a CA, it vouches for nothing but itself. */
            ops_warn(&tc->warnings, &tc->nwarnings,
                     "'%s' is a self-signed certificate, not a CA: it is trusted as an "
                     "explicit anchor for itself only",
                     info.subject);
        }
        if (rc != 0) {
            pem_cert_info_free(&info);
            goto out;
        }
        if (pem_cert_validity(c, now) > 0) {
            sys_format_time(info.not_after, when, sizeof(when));
            ops_warn(&tc->warnings, &tc->nwarnings, "'%s' expired on %s", info.subject, when);
        } else if (pem_cert_validity(c, now) < 0) {
            sys_format_time(info.not_before, when, sizeof(when));
            ops_warn(&tc->warnings, &tc->nwarnings, "'%s' is not valid before %s", info.subject,
                     when);
        }
        tc->added_info[sk_X509_num(tc->added)] = info;
        if (!X509_add_cert(tc->added, c, X509_ADD_FLAG_UP_REF)) {
            rc = -E_NOMEM;
            goto out;
        }
    }
    /* Nothing new: every certificate is already trusted, as re-runnable provisioning
     * expects, an answer of success naming them as skipped. */
    for (int i = 0; i < sk_X509_num(tc->added); i++) {
        X509 *c = sk_X509_value(tc->added, i);
        char id[65];

        if ((rc = trust_cert_id(c, id, sizeof(id))) != 0)
            goto out;
        if ((rc = trust_file_write(tc->dir, c, id, tc->intermediate, &tc->cause)) != 0)
            goto out;
        {
            unsigned char *der = NULL;
            int len = i2d_X509(c, &der);

            if (len > 0)
                mirror_to_windows(tc, der, (size_t)len);
            OPENSSL_free(der);
        }
        if (tc->sysdir != NULL && !tc->intermediate) {
            char *cause = NULL;

            if (trust_system_write(tc->sysdir, c, id, &cause) == 0)
                tc->system_changed = 1;
            else
                ops_warn(&tc->warnings, &tc->nwarnings, "not copied to the system store: %s",
                         cause != NULL ? cause : "error");
            free(cause);
        }
    }
    rc = 0;
out:
    sk_X509_pop_free(certs, X509_free);
    tc->rc = rc;
}

static void
remove_run(uv_work_t *w)
{
    struct trust_change *tc = (struct trust_change *)w;
    int rc;

    if ((rc = trust_file_remove(tc->dir, tc->rm_id, tc->intermediate, &tc->cause)) == 0 &&
        tc->data != NULL)
        mirror_to_windows(tc, tc->data, tc->len);
    if (rc == 0 && tc->sysdir != NULL && !tc->intermediate) {
        char *cause = NULL;

        if (trust_system_remove(tc->sysdir, tc->rm_id, &cause) == 0)
            tc->system_changed = 1;
        else
            ops_warn(&tc->warnings, &tc->nwarnings, "not removed from the system store: %s",
                     cause != NULL ? cause : "error");
        free(cause);
    }
    tc->rc = rc;
}

static void
pack_system(msgpack_packer *pk, const struct trust_change *tc)
{
    proto_pack_str(pk, "system");
    if (tc->sysdir == NULL) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_map(pk, 6);
    proto_pack_kv_str(pk, "dir", tc->sysdir);
    proto_pack_kv_str(pk, "command", tc->command != NULL ? tc->command : "");
    proto_pack_kv_bool(pk, "changed", tc->system_changed);
    proto_pack_kv_bool(pk, "ran", tc->system_ran);
    proto_pack_kv_int(pk, "exit_status", tc->system_exit);
    if (tc->system_error != NULL)
        proto_pack_kv_str(pk, "error", tc->system_error);
    else
        proto_pack_kv_nil(pk, "error");
}

/* Loop: the reply, the log, and the end of the change. */
static void
change_finish(struct trust_change *tc)
{
    struct agent *agent = tc->agent;
    struct trust *t = agent->trust;
    struct proto_writer w;
    char line[640];

    t->busy = 0;
    if (tc->system_changed) {
        char result[300];

        t->system_updated = (int64_t)time(NULL);
        if (tc->system_error != NULL)
            snprintf(result, sizeof(result), "%s", tc->system_error);
        else
            snprintf(result, sizeof(result), "%s exited with status %lld", tc->command,
                     (long long)tc->system_exit);
        free(t->system_result);
        t->system_result = strdup(result);
    }
    if (tc->rc == 0) {
        for (size_t i = 0; i < tc->nwarnings; i++)
            log_warn("trust: %s", tc->warnings[i]);
        if (tc->system_error != NULL)
            log_warn("trust: system store: %s", tc->system_error);
    }
    if (!server_client_alive(tc->client)) {
        /* Nobody to tell. */
    } else if (tc->rc != 0) {
        server_send_error(tc->client, tc->id, tc->rc, tc->cause);
    } else {
        proto_writer_init(&w);
        proto_begin_result(&w.pk, tc->id, 3 + (tc->remove ? 1 : 2));
        if (tc->remove) {
            proto_pack_str(&w.pk, "removed");
            msgpack_pack_map(&w.pk, 3);
            proto_pack_kv_str(&w.pk, "fingerprint", tc->rm_fingerprint);
            proto_pack_kv_str(&w.pk, "subject", tc->rm_subject);
            proto_pack_kv_str(&w.pk, "kind", kind_of(tc->intermediate, tc->rm_is_ca));
        } else {
            proto_pack_str(&w.pk, "added");
            msgpack_pack_array(&w.pk, (size_t)sk_X509_num(tc->added));
            for (int i = 0; i < sk_X509_num(tc->added); i++) {
                msgpack_pack_map(&w.pk, 4);
                proto_pack_kv_str(&w.pk, "fingerprint", tc->added_info[i].fingerprint);
                proto_pack_kv_str(&w.pk, "subject", tc->added_info[i].subject);
                proto_pack_kv_str(&w.pk, "kind",
                                  kind_of(tc->intermediate, tc->added_info[i].is_ca));
                proto_pack_kv_int(&w.pk, "not_after", tc->added_info[i].not_after);
            }
            proto_pack_str(&w.pk, "skipped");
            proto_pack_str_array(&w.pk, tc->skipped, tc->nskipped);
        }
        proto_pack_kv_str(&w.pk, "dir", tc->dir);
        proto_pack_str(&w.pk, "warnings");
        proto_pack_str_array(&w.pk, tc->warnings, tc->nwarnings);
        pack_system(&w.pk, tc);
        server_send_writer(tc->client, tc->id, &w);
    }
    if (tc->rc == 0 && tc->remove) {
        snprintf(line, sizeof(line), "removed %s '%s' from the trust store",
                 kind_of(tc->intermediate, tc->rm_is_ca), tc->rm_subject);
        log_peer(tc->client, line);
    } else if (tc->rc == 0) {
        for (int i = 0; i < sk_X509_num(tc->added); i++) {
            snprintf(line, sizeof(line), "added %s '%s' to the trust store",
                     kind_of(tc->intermediate, tc->added_info[i].is_ca),
                     tc->added_info[i].subject);
            log_peer(tc->client, line);
        }
    }
    agent->jobs--;
    server_client_unref(tc->client);
    change_free(tc);
}

static void
on_command_closed(uv_handle_t *h)
{
    struct trust_change *tc = h->data;

    if (--tc->open_handles == 0)
        change_finish(tc);
}

static void
on_command_exit(uv_process_t *proc, int64_t status, int signal)
{
    struct trust_change *tc = proc->data;

    tc->system_ran = 1;
    tc->system_exit = status;
    tc->system_signal = signal;
    if (signal != 0)
        err_set(&tc->system_error, "%s was killed by signal %d", tc->command, signal);
    else if (status != 0)
        err_set(&tc->system_error, "%s exited with status %lld", tc->command, (long long)status);
    uv_timer_stop(&tc->timer);
    uv_close((uv_handle_t *)&tc->proc, on_command_closed);
    uv_close((uv_handle_t *)&tc->timer, on_command_closed);
}

static void
on_command_timeout(uv_timer_t *t)
{
    struct trust_change *tc = t->data;

    log_warn("trust: %s runs for more than %d s: killing it", tc->command,
             COMMAND_TIMEOUT_MS / 1000);
    uv_process_kill(&tc->proc, 9);
}

/* Runs trust_system_command (split on spaces, no shell); change_finish follows. */
static void
run_system_command(struct trust_change *tc)
{
    char *argv[MAX_COMMAND_ARGS + 1], *copy = strdup(tc->command), *p, **spawn_args = NULL;
    char *why = NULL;
    uv_process_options_t opts;
    uv_stdio_container_t stdio[3];
    int argc = 0, rc;

    if (copy == NULL) {
        change_finish(tc);
        return;
    }
    for (p = copy; *p != '\0' && argc < MAX_COMMAND_ARGS;) {
        while (*p == ' ')
            *p++ = '\0';
        if (*p == '\0')
            break;
        argv[argc++] = p;
        while (*p != '\0' && *p != ' ')
            p++;
    }
    argv[argc] = NULL;
    if (argc == 0) {
        err_set(&tc->system_error, "trust_system_command is empty");
        free(copy);
        change_finish(tc);
        return;
    }
    /* A program others could have replaced is not run as the agent (issue 14). */
    if (argv[0][0] == '/' && fsutil_check_program(argv[0], &why) == -E_DENIED) {
        err_set(&tc->system_error, "refusing to run trust_system_command %s: %s", argv[0],
                why != NULL ? why : "unsafe path");
        log_error("trust: %s", tc->system_error);
        free(why);
        free(copy);
        change_finish(tc);
        return;
    }
    free(why); /* a missing program: the spawn says so */
    memset(&opts, 0, sizeof(opts));
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_IGNORE;
    stdio[2].flags = UV_INHERIT_FD; /* its complaints reach the agent's log */
    stdio[2].data.fd = 2;
    opts.exit_cb = on_command_exit;
    opts.stdio = stdio;
    opts.stdio_count = 3;
    opts.flags = UV_PROCESS_WINDOWS_HIDE;
    tc->proc.data = tc;
    tc->timer.data = tc;
    if ((rc = uv_timer_init(tc->agent->loop, &tc->timer)) != 0) {
        err_set(&tc->system_error, "cannot run %s: %s", argv[0], uv_strerror(rc));
        free(copy);
        change_finish(tc);
        return;
    }
    tc->open_handles = 1;
    /* Through the hook launcher: no descriptor of the agent's but stderr reaches it. */
    if ((rc = platform_hook_argv(argv, &spawn_args)) != 0) {
        err_set(&tc->system_error, "cannot run %s: %s", argv[0], uv_strerror(rc));
        uv_close((uv_handle_t *)&tc->timer, on_command_closed);
        free(copy);
        return;
    }
    opts.file = spawn_args[0];
    opts.args = spawn_args;
    rc = uv_spawn(tc->agent->loop, &tc->proc, &opts);
    free(spawn_args);
    if (rc != 0) {
        err_set(&tc->system_error, "cannot run %s: %s", argv[0], uv_strerror(rc));
        /* A failed uv_spawn still needs its handle closed. */
        tc->open_handles = 2;
        uv_close((uv_handle_t *)&tc->proc, on_command_closed);
        uv_close((uv_handle_t *)&tc->timer, on_command_closed);
        free(copy);
        return;
    }
    tc->open_handles = 2;
    log_info("trust: running %s", tc->command);
    uv_timer_start(&tc->timer, on_command_timeout, COMMAND_TIMEOUT_MS, 0);
    free(copy);
}

static void
change_after(uv_work_t *w, int status)
{
    struct trust_change *tc = (struct trust_change *)w;
    struct trust *t = tc->agent->trust;

    if (status == UV_ECANCELED && tc->rc == 0) {
        tc->rc = -E_UNAVAILABLE;
        err_set(&tc->cause, "the agent is shutting down");
    }
    if (tc->rc == 0 && tc->remove) {
        long i = trust_index_of(t, tc->rm_id);

        if (i >= 0)
            trust_delete(t, (size_t)i);
    } else if (tc->rc == 0) {
        for (int i = 0; i < sk_X509_num(tc->added); i++) {
            char *cause = NULL;
            int rc = trust_insert(t, sk_X509_value(tc->added, i), tc->intermediate, &cause);

            if (rc != 0 && rc != -E_EXISTS)
                log_error("trust: cannot index '%s': %s", tc->added_info[i].subject,
                          cause != NULL ? cause : err_message(rc));
            free(cause);
        }
    }
    /* Chains judged against the old store (the status report's) are judged again now,
     * before the reply, so that no report after it shows a verdict of the old store as
     * current. */
    if (tc->rc == 0 && (tc->remove || sk_X509_num(tc->added) > 0))
        events_publish_name(tc->agent->events, EVENT_TRUST_CHANGED, NULL);
    if (tc->rc == 0 && tc->system_changed && tc->command != NULL && !tc->agent->stopping) {
        run_system_command(tc);
        return;
    }
    change_finish(tc);
}

static struct trust_change *
change_new(struct request *req)
{
    struct agent *agent = req->agent;
    struct trust *t = agent->trust;
    struct trust_change *tc = calloc(1, sizeof(*tc));

    if (tc == NULL)
        return NULL;
    tc->agent = agent;
    tc->client = req->client;
    tc->id = req->id;
    if ((tc->dir = strdup(t->dir)) == NULL)
        goto fail;
    if (agent->config.trust_system_dir != NULL &&
        (tc->sysdir = strdup(agent->config.trust_system_dir)) == NULL)
        goto fail;
    if (agent->config.trust_system_command != NULL &&
        (tc->command = strdup(agent->config.trust_system_command)) == NULL)
        goto fail;
    for (size_t i = 0; i < t->n; i++) {
        if (push_str(&tc->known, &tc->nknown, t->v[i].id) != 0)
            goto fail;
    }
    return tc;
fail:
    change_free(tc);
    return NULL;
}

static int
change_queue(struct request *req, struct trust_change *tc, uv_work_cb run)
{
    int rc;

    if ((rc = uv_queue_work(req->agent->loop, &tc->work, run, change_after)) != 0) {
        err_set(&req->cause, "cannot queue work: %s", uv_strerror(rc));
        return -E_INTERNAL;
    }
    req->agent->trust->busy = 1;
    req->agent->jobs++;
    server_client_ref(req->client);
    return 0;
}

static int
refuse_busy(struct request *req)
{
    if (!req->agent->trust->busy)
        return 0;
    err_set(&req->cause, "another change to the trust store is in progress; try again");
    return -E_BUSY;
}

int
ops_trust_add(struct request *req)
{
    struct trust_change *tc;
    int flag = 0, rc;

    if ((rc = refuse_busy(req)) != 0)
        return rc;
    if ((tc = change_new(req)) == NULL)
        return -E_NOMEM;
    if ((rc = ops_arg_bin(req, "cert", 1, &tc->data, &tc->len)) != 0)
        goto fail;
    if (tc->len > MAX_TRUST_FILE) {
        err_set(&req->cause, "the file is larger than %d bytes", MAX_TRUST_FILE);
        rc = -E_TOO_BIG;
        goto fail;
    }
    if (req->args != NULL && proto_get_bool(req->args, "intermediate", &flag) == -E_BAD_INPUT) {
        err_set(&req->cause, "argument 'intermediate' must be true or false");
        rc = -E_BAD_INPUT;
        goto fail;
    }
    tc->intermediate = flag;
    if ((rc = change_queue(req, tc, add_run)) != 0)
        goto fail;
    return 0;
fail:
    change_free(tc);
    return rc;
}

int
ops_trust_remove(struct request *req)
{
    struct trust *t = req->agent->trust;
    struct trust_change *tc = NULL;
    char *fp = NULL;
    size_t i = 0;
    int rc;

    if ((rc = refuse_busy(req)) != 0)
        return rc;
    if ((rc = ops_arg_str(req, "fingerprint", 1, &fp)) != 0)
        return rc;
    if ((rc = trust_find(t, fp, &i, &req->cause)) != 0)
        goto out;
    if ((tc = change_new(req)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    tc->remove = 1;
    tc->intermediate = t->v[i].intermediate;
    tc->rm_is_ca = t->v[i].info.is_ca;
    tc->rm_id = strdup(t->v[i].id);
    tc->rm_subject = strdup(t->v[i].info.subject);
    tc->rm_fingerprint = strdup(t->v[i].info.fingerprint);
    if (tc->rm_id == NULL || tc->rm_subject == NULL || tc->rm_fingerprint == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    /* The certificate itself (DER), to find it in the Windows stores. */
    if (platform_certstore_available()) {
        unsigned char *der = NULL;
        int len = i2d_X509(t->v[i].cert, &der);

        if (len <= 0 || (tc->data = malloc((size_t)len)) == NULL) {
            OPENSSL_free(der);
            rc = -E_NOMEM;
            goto out;
        }
        memcpy(tc->data, der, (size_t)len);
        tc->len = (size_t)len;
        OPENSSL_free(der);
    }
    if ((rc = change_queue(req, tc, remove_run)) != 0)
        goto out;
    tc = NULL;
out:
    if (tc != NULL)
        change_free(tc);
    free(fp);
    return rc;
}

/* trust-list and trust-show. */

static void
pack_entry(msgpack_packer *pk, const struct trust_entry *e, int64_t now, const char *pem)
{
    msgpack_pack_map(pk, 11 + (pem != NULL));
    proto_pack_kv_str(pk, "fingerprint", e->info.fingerprint);
    proto_pack_kv_str(pk, "kind", kind_of(e->intermediate, e->info.is_ca));
    proto_pack_kv_str(pk, "subject", e->info.subject);
    proto_pack_kv_str(pk, "common_name", e->info.common_name);
    proto_pack_kv_str(pk, "issuer", e->info.issuer);
    proto_pack_kv_str(pk, "serial", e->info.serial);
    proto_pack_kv_int(pk, "not_before", e->info.not_before);
    proto_pack_kv_int(pk, "not_after", e->info.not_after);
    proto_pack_kv_int(pk, "days_left", pem_days_left(e->info.not_after, now));
    proto_pack_kv_str(pk, "key", e->info.key_type);
    proto_pack_kv_str(pk, "signature", e->info.sig_alg);
    if (pem != NULL)
        proto_pack_kv_str(pk, "pem", pem);
}

int
ops_trust_list(struct request *req)
{
    struct trust *t = req->agent->trust;
    int64_t now = (int64_t)time(NULL);
    struct proto_writer w;
    size_t i = 0;

    /* Batches of items: a machine may trust hundreds of certificates. */
    while (i < t->n) {
        size_t batch = t->n - i < PROTO_ITEMS_BATCH ? t->n - i : PROTO_ITEMS_BATCH;

        ops_items_begin(&w, req->id, batch);
        for (size_t k = 0; k < batch; k++)
            pack_entry(&w.pk, &t->v[i + k], now, NULL);
        server_send_writer(req->client, req->id, &w);
        i += batch;
    }
    proto_writer_init(&w);
    proto_begin_result(&w.pk, req->id, 2);
    proto_pack_kv_uint(&w.pk, "count", t->n);
    proto_pack_kv_str(&w.pk, "dir", t->dir);
    server_send_writer(req->client, req->id, &w);
    return 0;
}

int
ops_trust_show(struct request *req)
{
    struct agent *agent = req->agent;
    struct trust *t = agent->trust;
    struct proto_writer w;
    char *fp = NULL, *pem = NULL;
    size_t i = 0, len = 0, roots = 0, leaves = 0;
    int rc;

    if ((rc = ops_arg_str(req, "fingerprint", 0, &fp)) != 0)
        return rc;
    proto_writer_init(&w);
    if (fp != NULL) {
        if ((rc = trust_find(t, fp, &i, &req->cause)) != 0 ||
            (rc = pem_write_cert(t->v[i].cert, &pem, &len, &req->cause)) != 0) {
            proto_writer_destroy(&w);
            free(fp);
            return rc;
        }
        proto_begin_result(&w.pk, req->id, 1);
        proto_pack_str(&w.pk, "entry");
        pack_entry(&w.pk, &t->v[i], (int64_t)time(NULL), pem);
        server_send_writer(req->client, req->id, &w);
        free(pem);
        free(fp);
        return 0;
    }
    /* Anchors are CA roots or self-signed certificates trusted for themselves (kind leaf). */
    for (size_t k = 0; k < t->n; k++) {
        roots += !t->v[k].intermediate && t->v[k].info.is_ca;
        leaves += !t->v[k].intermediate && !t->v[k].info.is_ca;
    }
    proto_begin_result(&w.pk, req->id, 10);
    proto_pack_kv_str(&w.pk, "dir", t->dir);
    proto_pack_kv_uint(&w.pk, "roots", roots);
    proto_pack_kv_uint(&w.pk, "leaves", leaves);
    proto_pack_kv_uint(&w.pk, "intermediates", t->n - roots - leaves);
    if (agent->config.trust_system_dir != NULL)
        proto_pack_kv_str(&w.pk, "system_dir", agent->config.trust_system_dir);
    else
        proto_pack_kv_nil(&w.pk, "system_dir");
    proto_pack_kv_str(&w.pk, "system_command",
                      agent->config.trust_system_command ? agent->config.trust_system_command
                                                         : "");
    proto_pack_kv_bool(&w.pk, "system_roots", agent->config.trust_system_roots);
    proto_pack_kv_bool(&w.pk, "aia_fetch", agent->config.trust_aia_fetch);
    proto_pack_kv_int(&w.pk, "system_updated", t->system_updated);
    if (t->system_result != NULL)
        proto_pack_kv_str(&w.pk, "system_result", t->system_result);
    else
        proto_pack_kv_nil(&w.pk, "system_result");
    server_send_writer(req->client, req->id, &w);
    return 0;
}

/* Limits of the network work peers ask for (verify with AIA fetches, probe). */

/* Verify and probe requests in flight: per connection, and in all. */
#define NET_JOBS_PER_CLIENT 4
#define NET_JOBS_MAX 16

/* Requests in flight, in all; each client counts its own in client->net_jobs. */
static unsigned net_jobs;

/*
 * May client start one more verify or probe?  0, or -E_BUSY with words.
 * net_begin counts it, net_end uncounts it.
 */
static int
net_admit(struct request *req, const char *op)
{
    struct client *client = req->client;

    if (client->net_jobs >= NET_JOBS_PER_CLIENT) {
        err_set(&req->cause,
                "this connection already has %d verify or probe requests in progress "
                "(the most one connection may have); wait for one to finish",
                NET_JOBS_PER_CLIENT);
        return -E_BUSY;
    }
    if (net_jobs >= NET_JOBS_MAX) {
        log_warn("client %llu (%s, pid %ld): %s refused: %d verify and probe requests are "
                 "in progress",
                 (unsigned long long)client->number, client->peer.name, client->peer.pid, op,
                 NET_JOBS_MAX);
        err_set(&req->cause,
                "the agent already runs %d verify and probe requests (the most it runs at "
                "once); try again later",
                NET_JOBS_MAX);
        return -E_BUSY;
    }
    return 0;
}

static void
net_begin(struct client *client)
{
    client->net_jobs++;
    net_jobs++;
}

static void
net_end(struct client *client)
{
    client->net_jobs--;
    net_jobs--;
}

/* The AIA fetcher, made at the first fetch and freed when the agent stops. */
static struct aia *aia_fetcher;

/* verify */

/*
 * A verify request: passes of chain building in the thread pool, and
 * between two passes the AIA fetch the last one asked for, on the loop.  A
 * server that never answers holds a socket (up to trust_aia_timeout), never
 * a thread of the pool.
 */
struct verify_op {
    uv_work_t work;
    struct agent *agent;
    struct client *client;
    uint64_t id;
    struct verify_op *prev, *next;
    struct trust_ctx *ctx;
    char *name;
    unsigned version;
    unsigned char *cert;
    size_t cert_len;
    char *host;
    enum trust_purpose purpose;
    int fetch;
    long fetch_timeout_ms;
    int prepared;           /* ctx loaded and certs read (first pass) */
    STACK_OF(X509) * certs; /* the leaf first, then its given chain */
    struct trust_fetched fetched[TRUST_AIA_MAX_FETCHES];
    size_t nfetched;
    char *fetch_url;       /* what the last pass asked for */
    struct aia_fetch *aia; /* the fetch in progress */
    int in_pool;           /* a pass is queued or running */
    int abandoned;         /* the client left or the agent stops: no more passes */
    int rc;
    char *cause;
    struct proto_writer reply; /* the last pass packed it: reply_ready */
    int reply_ready;
};

/* Verifies in progress, so that a client that leaves or a stopping agent cuts them short. */
static struct verify_op *running_verifies;

static void
verify_free(struct verify_op *vo)
{
    trust_ctx_free(vo->ctx);
    free(vo->name);
    free(vo->cert);
    free(vo->host);
    sk_X509_pop_free(vo->certs, X509_free);
    /* Every slot: the one of a fetch cut short is not counted in nfetched. */
    for (size_t i = 0; i < TRUST_AIA_MAX_FETCHES; i++)
        trust_fetched_clear(&vo->fetched[i]);
    free(vo->fetch_url);
    free(vo->cause);
    if (vo->reply_ready)
        proto_writer_destroy(&vo->reply);
    free(vo);
}

/* Loop: the reply (or error), and the end of the request. */
static void
verify_end(struct verify_op *vo, int rc, const char *cause)
{
    if (server_client_alive(vo->client)) {
        if (rc == 0 && vo->reply_ready) {
            vo->reply_ready = 0; /* sending destroys it */
            server_send_writer(vo->client, vo->id, &vo->reply);
        } else
            server_send_error(vo->client, vo->id, rc, cause);
    }
    if (vo->prev != NULL)
        vo->prev->next = vo->next;
    else if (running_verifies == vo)
        running_verifies = vo->next;
    if (vo->next != NULL)
        vo->next->prev = vo->prev;
    vo->agent->jobs--;
    net_end(vo->client);
    server_client_unref(vo->client);
    verify_free(vo);
}

/* Pool, first pass: the trust context, and the certificate with its chain. */
static int
verify_prepare(struct verify_op *vo)
{
    unsigned char *chain = NULL;
    size_t chain_len = 0;
    STACK_OF(X509) *more = NULL;
    int rc;

    if ((rc = trust_ctx_load(vo->ctx, &vo->cause)) != 0)
        goto out;
    if (vo->name != NULL) {
        if ((rc = store_read_file(vo->agent->store, vo->name, vo->version, "cert.pem", &vo->cert,
                                  &vo->cert_len, &vo->cause)) != 0)
            goto out;
        rc = store_read_file(vo->agent->store, vo->name, vo->version, "chain.pem", &chain,
                             &chain_len, &vo->cause);
        if (rc != 0 && rc != -E_NOT_FOUND)
            goto out;
        free(vo->cause);
        vo->cause = NULL;
    }
    if ((rc = pem_read_certs(vo->cert, vo->cert_len, "certificate", &vo->certs, &vo->cause)) != 0)
        goto out;
    if (chain != NULL && chain_len > 0) {
        if ((rc = pem_read_certs(chain, chain_len, "chain", &more, &vo->cause)) != 0)
            goto out;
        for (int i = 0; i < sk_X509_num(more); i++) {
            if (!X509_add_cert(vo->certs, sk_X509_value(more, i), X509_ADD_FLAG_UP_REF)) {
                rc = -E_NOMEM;
                goto out;
            }
        }
    }
    vo->prepared = 1;
    rc = 0;
out:
    sk_X509_pop_free(more, X509_free);
    free(chain);
    return rc;
}

/* Pool: one pass of chain building with what was fetched so far. */
static void
verify_pass(uv_work_t *w)
{
    struct verify_op *vo = (struct verify_op *)w;
    struct trust_report r;
    struct trust_verify_opts o;
    msgpack_packer *pk = &vo->reply.pk;
    int rc;

    memset(&r, 0, sizeof(r));
    if (!vo->prepared && (rc = verify_prepare(vo)) != 0)
        goto out;
    memset(&o, 0, sizeof(o));
    o.host = vo->host;
    o.purpose = vo->purpose;
    o.fetch = vo->fetch;
    o.fetched = vo->fetched;
    o.nfetched = vo->nfetched;
    o.now = (int64_t)time(NULL);
    if ((rc = trust_verify(vo->ctx, sk_X509_value(vo->certs, 0), vo->certs, &o, &r, &vo->cause)) !=
        0)
        goto out;
    if (r.fetch_url != NULL) {
        vo->fetch_url = r.fetch_url;
        r.fetch_url = NULL;
        goto out;
    }
    proto_writer_init(&vo->reply);
    vo->reply_ready = 1;
    proto_begin_result(pk, vo->id, 6);
    if (vo->name != NULL)
        proto_pack_kv_str(pk, "name", vo->name);
    else
        proto_pack_kv_nil(pk, "name");
    proto_pack_kv_str(pk, "subject", r.links[0].info.subject);
    if (vo->host != NULL)
        proto_pack_kv_str(pk, "host", vo->host);
    else
        proto_pack_kv_nil(pk, "host");
    proto_pack_kv_str(pk, "purpose", vo->purpose == TRUST_PURPOSE_CLIENT ? "client" : "server");
    proto_pack_kv_bool(pk, "aia_fetch", vo->fetch);
    proto_pack_str(pk, "verify");
    trust_pack_report(pk, &r);
out:
    trust_report_free(&r);
    vo->rc = rc;
}

static void verify_pass_after(uv_work_t *w, int status);

/* Queues the next pass; 0 or a negative code (cause set). */
static int
verify_queue(struct verify_op *vo, char **cause)
{
    int rc;

    if ((rc = uv_queue_work(vo->agent->loop, &vo->work, verify_pass, verify_pass_after)) != 0) {
        err_set(cause, "cannot queue work: %s", uv_strerror(rc));
        return -E_INTERNAL;
    }
    vo->in_pool = 1;
    return 0;
}

static void
verify_fetched(void *arg)
{
    struct verify_op *vo = arg;
    char *cause = NULL;
    int rc;

    vo->aia = NULL;
    vo->nfetched++;
    if ((rc = verify_queue(vo, &cause)) != 0)
        verify_end(vo, rc, cause);
    free(cause);
}

static void
verify_pass_after(uv_work_t *w, int status)
{
    struct verify_op *vo = (struct verify_op *)w;
    struct trust_fetched *slot;
    char *cause = NULL;
    int rc;

    vo->in_pool = 0;
    if (status == UV_ECANCELED || vo->agent->stopping) {
        verify_end(vo, -E_UNAVAILABLE, "the agent is shutting down");
        return;
    }
    if (vo->abandoned || !server_client_alive(vo->client)) {
        log_info("client %llu (%s, pid %ld) left: its verify is abandoned",
                 (unsigned long long)vo->client->number, vo->client->peer.name,
                 vo->client->peer.pid);
        verify_end(vo, -E_UNAVAILABLE, NULL);
        return;
    }
    if (vo->rc != 0 || vo->fetch_url == NULL) {
        verify_end(vo, vo->rc, vo->cause);
        return;
    }
    /* The pass asked for an AIA URL: fetch it on the loop, then pass again. */
    if (aia_fetcher == NULL && (rc = aia_new(vo->agent->loop, &aia_fetcher, &cause)) != 0) {
        verify_end(vo, rc, cause);
        free(cause);
        return;
    }
    slot = &vo->fetched[vo->nfetched];
    slot->url = vo->fetch_url;
    vo->fetch_url = NULL;
    log_debug("client %llu: verify fetches %s (%zu running, %zu waiting)",
              (unsigned long long)vo->client->number, slot->url, aia_running(aia_fetcher),
              aia_waiting(aia_fetcher));
    if ((rc = aia_fetch_start(aia_fetcher, vo->fetch_timeout_ms, slot, verify_fetched, vo,
                              &vo->aia, &cause)) != 0) {
        /* Recorded as a failed fetch: the next pass names it. */
        slot->error = cause;
        cause = NULL;
        verify_fetched(vo);
    }
    free(cause);
}

int
ops_verify(struct request *req)
{
    struct agent *agent = req->agent;
    struct verify_op *vo;
    char *purpose = NULL;
    int rc;

    if ((rc = net_admit(req, "verify")) != 0)
        return rc;
    if ((vo = calloc(1, sizeof(*vo))) == NULL)
        return -E_NOMEM;
    vo->agent = agent;
    vo->client = req->client;
    vo->id = req->id;
    if ((rc = ops_arg_str(req, "name", 0, &vo->name)) != 0 ||
        (rc = ops_arg_bin(req, "cert", 0, &vo->cert, &vo->cert_len)) != 0 ||
        (rc = ops_arg_str(req, "host", 0, &vo->host)) != 0 ||
        (rc = ops_arg_str(req, "purpose", 0, &purpose)) != 0)
        goto fail;
    if ((vo->name == NULL) == (vo->cert == NULL)) {
        err_set(&req->cause, "give either the name of a certificate in the store or a "
                             "certificate file");
        rc = -E_BAD_INPUT;
        goto fail;
    }
    if (vo->cert_len > MAX_TRUST_FILE) {
        err_set(&req->cause, "the file is larger than %d bytes", MAX_TRUST_FILE);
        rc = -E_TOO_BIG;
        goto fail;
    }
    if (purpose == NULL || strcmp(purpose, "server") == 0) {
        vo->purpose = TRUST_PURPOSE_SERVER;
    } else if (strcmp(purpose, "client") == 0) {
        vo->purpose = TRUST_PURPOSE_CLIENT;
    } else {
        err_set(&req->cause, "purpose must be server or client, not '%.40s'", purpose);
        rc = -E_BAD_INPUT;
        goto fail;
    }
    if (vo->name != NULL) {
        const struct store_cert *cert = store_find(agent->store, vo->name);

        if (cert == NULL || cert->current == 0) {
            err_set(&req->cause, "no certificate named '%.100s'", vo->name);
            rc = -E_NOT_FOUND;
            goto fail;
        }
        vo->version = cert->current;
    }
    vo->fetch = agent->config.trust_aia_fetch;
    vo->fetch_timeout_ms = (long)agent->config.trust_aia_timeout * 1000L;
    if ((vo->ctx = trust_ctx_new(agent->trust, agent->config.trust_system_roots)) == NULL) {
        rc = -E_NOMEM;
        goto fail;
    }
    if ((rc = verify_queue(vo, &req->cause)) != 0)
        goto fail;
    agent->jobs++;
    net_begin(req->client);
    server_client_ref(req->client);
    vo->next = running_verifies;
    if (running_verifies != NULL)
        running_verifies->prev = vo;
    running_verifies = vo;
    free(purpose);
    return 0;
fail:
    free(purpose);
    verify_free(vo);
    return rc;
}

/*
 * Stops a verify whose client left (or at the agent's stop): a fetch in
 * progress is cancelled and the request ends; a pass in the pool ends it
 * when it returns.
 */
static void
verify_abandon(struct verify_op *vo, int stopping)
{
    vo->abandoned = 1;
    if (vo->in_pool)
        return;
    aia_fetch_cancel(vo->aia);
    vo->aia = NULL;
    if (stopping) {
        verify_end(vo, -E_UNAVAILABLE, "the agent is shutting down");
        return;
    }
    log_info("client %llu (%s, pid %ld) left: its verify is abandoned (fetch of %s cancelled)",
             (unsigned long long)vo->client->number, vo->client->peer.name, vo->client->peer.pid,
             vo->nfetched < TRUST_AIA_MAX_FETCHES && vo->fetched[vo->nfetched].url != NULL
                 ? vo->fetched[vo->nfetched].url
                 : "?");
    verify_end(vo, -E_UNAVAILABLE, NULL);
}

/* probe */

struct probe_op {
    uv_work_t work;
    struct agent *agent;
    struct client *client;
    uint64_t id;
    struct probe_op *prev, *next;
    struct trust_ctx *ctx;
    char **urls;
    size_t n;
    struct probe_opts opts;
    struct probe_run *run;
    int load_rc;
    int abandoned; /* the client left: no reply, nothing more started */
    char *cause;
    size_t ok, failed, warnings;
};

/* Runs in progress, so that a stopping agent can cut them short. */
static struct probe_op *running_probes;

static void
probe_op_free(struct probe_op *po)
{
    trust_ctx_free(po->ctx);
    strv_free(po->urls, po->n);
    free(po->cause);
    free(po);
}

static void
probe_op_end(struct probe_op *po, int rc, const char *cause)
{
    if (server_client_alive(po->client)) {
        if (rc != 0) {
            server_send_error(po->client, po->id, rc, cause);
        } else {
            struct proto_writer w;

            proto_writer_init(&w);
            proto_begin_result(&w.pk, po->id, 5);
            proto_pack_kv_uint(&w.pk, "count", po->n);
            proto_pack_kv_uint(&w.pk, "ok", po->ok);
            proto_pack_kv_uint(&w.pk, "failed", po->failed);
            proto_pack_kv_uint(&w.pk, "warnings", po->warnings);
            proto_pack_kv_str(&w.pk, "min_tls",
                              po->opts.min_version == TLS1_3_VERSION   ? "1.3"
                              : po->opts.min_version == TLS1_2_VERSION ? "1.2"
                              : po->opts.min_version == TLS1_1_VERSION ? "1.1"
                                                                       : "1.0");
            server_send_writer(po->client, po->id, &w);
        }
    }
    if (po->prev != NULL)
        po->prev->next = po->next;
    else if (running_probes == po)
        running_probes = po->next;
    if (po->next != NULL)
        po->next->prev = po->prev;
    po->agent->jobs--;
    net_end(po->client);
    server_client_unref(po->client);
    probe_op_free(po);
}

static void
probe_on_result(void *arg, const struct probe_result *r, size_t done, size_t total)
{
    struct probe_op *po = arg;
    struct proto_writer w;
    char msg[512];

    if (r->ok)
        po->ok++;
    else
        po->failed++;
    po->warnings += r->nwarnings;
    if (!server_client_alive(po->client))
        return;
    ops_items_begin(&w, po->id, 1);
    probe_pack_result(&w.pk, r, 1);
    server_send_writer(po->client, po->id, &w);
    if (r->error != NULL)
        snprintf(msg, sizeof(msg), "%s: %s", r->url, r->error);
    else
        snprintf(msg, sizeof(msg), "%s: %s, %s%s", r->url, r->version ? r->version : "?",
                 r->ok ? "ok" : "problems found", r->nwarnings ? " (see warnings)" : "");
    ops_progress(po->client, po->id, msg, done, total);
}

static void
probe_on_done(void *arg)
{
    struct probe_op *po = arg;

    po->run = NULL;
    po->ctx = NULL; /* the run freed it */
    probe_op_end(po, 0, NULL);
}

static void
probe_load_run(uv_work_t *w)
{
    struct probe_op *po = (struct probe_op *)w;

    po->load_rc = trust_ctx_load(po->ctx, &po->cause);
}

static void
probe_load_after(uv_work_t *w, int status)
{
    struct probe_op *po = (struct probe_op *)w;
    char *cause = NULL;
    int rc;

    if (status == UV_ECANCELED || po->agent->stopping) {
        probe_op_end(po, -E_UNAVAILABLE, "the agent is shutting down");
        return;
    }
    if (po->abandoned || !server_client_alive(po->client)) {
        probe_op_end(po, -E_UNAVAILABLE, NULL);
        return;
    }
    if (po->load_rc != 0) {
        probe_op_end(po, po->load_rc, po->cause);
        return;
    }
    rc = probe_run_start(po->agent->loop, po->ctx, po->urls, po->n, &po->opts, probe_on_result,
                         probe_on_done, po, &po->run, &cause);
    if (rc != 0) {
        probe_op_end(po, rc, cause);
        free(cause);
        return;
    }
    /* The run owns the context now; its done callback ends the request. */
    po->ctx = NULL;
    log_debug("client %llu: probing %zu URL(s), policy TLS %s or newer",
              (unsigned long long)po->client->number, po->n,
              po->opts.min_version == TLS1_3_VERSION   ? "1.3"
              : po->opts.min_version == TLS1_2_VERSION ? "1.2"
              : po->opts.min_version == TLS1_1_VERSION ? "1.1"
                                                       : "1.0");
}

int
ops_probe(struct request *req)
{
    struct agent *agent = req->agent;
    struct probe_op *po = calloc(1, sizeof(*po));
    uint64_t timeout = 0, concurrency = 0;
    char *min = NULL;
    int rc;

    if (po == NULL)
        return -E_NOMEM;
    if ((rc = net_admit(req, "probe")) != 0) {
        free(po);
        return rc;
    }
    po->agent = agent;
    po->client = req->client;
    po->id = req->id;
    if ((rc = ops_arg_strs(req, "urls", &po->urls, &po->n)) != 0 ||
        (rc = ops_arg_uint(req, "timeout", 0, &timeout)) != 0 ||
        (rc = ops_arg_uint(req, "concurrency", 0, &concurrency)) != 0 ||
        (rc = ops_arg_str(req, "min_tls", 0, &min)) != 0)
        goto fail;
    if (po->n == 0) {
        err_set(&req->cause, "give at least one URL to probe");
        rc = -E_BAD_INPUT;
        goto fail;
    }
    for (size_t i = 0; i < po->n; i++) {
        struct probe_url u;

        if ((rc = probe_url_parse(po->urls[i], &u, &req->cause)) != 0)
            goto fail;
        probe_url_free(&u);
    }
    if (timeout > 300) {
        err_set(&req->cause, "timeout must be 1 to 300 seconds");
        rc = -E_BAD_INPUT;
        goto fail;
    }
    po->opts.timeout_ms = (timeout != 0 ? timeout : (uint64_t)agent->config.probe_timeout) * 1000u;
    /* A request may ask for fewer connections than probe_concurrency, not more. */
    po->opts.concurrency =
        concurrency != 0 && concurrency < (uint64_t)agent->config.probe_concurrency
            ? (unsigned)concurrency
            : (unsigned)agent->config.probe_concurrency;
    po->opts.min_version = probe_tls_version(min != NULL ? min : agent->config.probe_min_tls);
    if (po->opts.min_version == 0) {
        err_set(&req->cause, "min_tls must be 1.0, 1.1, 1.2 or 1.3, not '%.20s'", min);
        rc = -E_BAD_INPUT;
        goto fail;
    }
    if ((po->ctx = trust_ctx_new(agent->trust, agent->config.trust_system_roots)) == NULL) {
        rc = -E_NOMEM;
        goto fail;
    }
    if ((rc = uv_queue_work(agent->loop, &po->work, probe_load_run, probe_load_after)) != 0) {
        err_set(&req->cause, "cannot queue work: %s", uv_strerror(rc));
        rc = -E_INTERNAL;
        goto fail;
    }
    agent->jobs++;
    net_begin(req->client);
    server_client_ref(req->client);
    po->next = running_probes;
    if (running_probes != NULL)
        running_probes->prev = po;
    running_probes = po;
    free(min);
    return 0;
fail:
    free(min);
    probe_op_free(po);
    return rc;
}

void
ops_trust_stop(struct agent *agent)
{
    struct probe_op *po = running_probes, *next;
    struct verify_op *vo, *vnext;

    for (; po != NULL; po = next) {
        next = po->next;
        if (po->agent == agent && po->run != NULL)
            probe_run_abort(po->run);
    }
    for (vo = running_verifies; vo != NULL; vo = vnext) {
        vnext = vo->next;
        if (vo->agent == agent)
            verify_abandon(vo, 1);
    }
    /* Fetches still running belong to no request any more. */
    aia_free(aia_fetcher);
    aia_fetcher = NULL;
}

void
ops_trust_client_gone(struct client *client)
{
    struct probe_op *po, *next;
    struct verify_op *vo, *vnext;

    for (po = running_probes; po != NULL; po = next) {
        next = po->next;
        if (po->client != client || po->abandoned)
            continue;
        po->abandoned = 1;
        log_info("client %llu (%s, pid %ld) left: its probe of %zu URL(s) is abandoned "
                 "(%zu done)",
                 (unsigned long long)client->number, client->peer.name, client->peer.pid, po->n,
                 po->ok + po->failed);
        /* Loading the trust context: probe_load_after ends it. */
        if (po->run != NULL)
            probe_run_abort(po->run);
    }
    for (vo = running_verifies; vo != NULL; vo = vnext) {
        vnext = vo->next;
        if (vo->client == client && !vo->abandoned)
            verify_abandon(vo, 0);
    }
}
