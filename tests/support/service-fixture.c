/*
 * The service fixture (service-fixture.h).  Test code: a failure ends the
 * test through cmocka.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hooks.h"
#include "service-fixture.h"

void
fixture_init(struct service_fixture *f)
{
    const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    char *cause = NULL;

    memset(f, 0, sizeof(*f));
    snprintf(f->state_dir, sizeof(f->state_dir), "%s/certagent-unit-XXXXXX", tmp);
    assert_non_null(mkdtemp(f->state_dir));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(events_new(&f->events), 0);
    assert_int_equal(config_defaults(&f->config), 0);
    if (store_open(f->state_dir, &f->store, &cause) != 0)
        fail_msg("store_open: %s", cause);
    assert_int_equal(hooks_new(&f->loop, &f->hooks), 0);
    f->env.loop = &f->loop;
    f->env.events = f->events;
    f->env.config = &f->config;
    f->env.state_dir = f->state_dir;
    f->env.jobs = &f->jobs;
}

static void
close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void
fixture_drain(struct service_fixture *f)
{
    hooks_stop(f->hooks);
    /* What the services left open (timers closed asynchronously) closes now. */
    uv_walk(&f->loop, close_handle, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

void
fixture_free(struct service_fixture *f)
{
    char cmd[300];

    assert_int_equal(uv_loop_close(&f->loop), 0);
    hooks_free(f->hooks);
    store_close(f->store);
    events_free(f->events);
    config_free(&f->config);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->state_dir);
    assert_int_equal(system(cmd), 0);
}

static char *
x509_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p, *out;
    long n;

    assert_non_null(b);
    assert_int_equal(PEM_write_bio_X509(b, x), 1);
    n = BIO_get_mem_data(b, &p);
    out = strndup(p, (size_t)n);
    BIO_free(b);
    return out;
}

static char *
key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p, *out;
    long n;

    assert_non_null(b);
    assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    n = BIO_get_mem_data(b, &p);
    out = strndup(p, (size_t)n);
    BIO_free(b);
    return out;
}

unsigned
fixture_add_cert(struct service_fixture *f, const char *name, const char *dns,
                 enum cert_source source, int64_t age, int64_t left)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *subj = X509_NAME_new();
    X509_EXTENSION *ext;
    char san[300], *cert, *key, *cause = NULL;
    char *dnsv[1] = {(char *)dns};
    struct store_version v;
    struct store_change *ch = NULL;
    time_t now = time(NULL);
    unsigned made;
    int rc;

    assert_non_null(k);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)now ^ (long)age);
    X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)dns, -1, -1, 0);
    X509_set_subject_name(x, subj);
    X509_set_issuer_name(x, subj);
    X509_time_adj_ex(X509_getm_notBefore(x), 0, -(long)age, &now);
    X509_time_adj_ex(X509_getm_notAfter(x), 0, (long)left, &now);
    X509_set_pubkey(x, k);
    snprintf(san, sizeof(san), "DNS:%s", dns);
    ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    cert = x509_pem(x);
    key = key_pem(k);

    memset(&v, 0, sizeof(v));
    v.source = source;
    v.not_before = (int64_t)now - age;
    v.not_after = (int64_t)now + left;
    v.serial = (char *)"01";
    v.fingerprint = (char *)"AA:BB";
    v.subject = san + 4;
    v.common_name = (char *)dns;
    v.issuer = san + 4;
    v.key_desc = (char *)"EC P-256";
    v.dns = dnsv;
    v.ndns = 1;
    v.chain_len = 0;
    assert_int_equal(store_begin(f->store, name, STORE_CHANGE_ADD, &ch, NULL), 0);
    rc = store_change_add(ch, &v, cert, "", key, NULL, &cause);
    if (rc != 0)
        fail_msg("adding %s: %s", name, cause);
    made = store_change_version(ch);
    store_finish(f->store, ch, rc);
    free(cert);
    OPENSSL_cleanse(key, strlen(key));
    free(key);
    X509_NAME_free(subj);
    X509_free(x);
    EVP_PKEY_free(k);
    return made;
}

static void
on_timeout(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

int
fixture_run_until(struct service_fixture *f, const int *flag, unsigned timeout_ms)
{
    uv_timer_t timer;
    int timed_out = 0;

    assert_int_equal(uv_timer_init(&f->loop, &timer), 0);
    timer.data = &timed_out;
    uv_timer_start(&timer, on_timeout, timeout_ms, 0);
    while (!*flag && !timed_out)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    return *flag ? 0 : -1;
}

struct file_wait {
    const char *path, *needle;
    int found;
};

static void
on_poll(uv_timer_t *t)
{
    struct file_wait *w = t->data;
    char *text = fixture_read(w->path);

    if (text != NULL && strstr(text, w->needle) != NULL)
        w->found = 1;
    free(text);
}

int
fixture_wait_file(struct service_fixture *f, const char *path, const char *needle,
                  unsigned timeout_ms)
{
    struct file_wait w = {path, needle, 0};
    uv_timer_t poll;
    int rc;

    assert_int_equal(uv_timer_init(&f->loop, &poll), 0);
    poll.data = &w;
    uv_timer_start(&poll, on_poll, 0, 10);
    rc = fixture_run_until(f, &w.found, timeout_ms);
    uv_close((uv_handle_t *)&poll, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    return rc;
}

char *
fixture_read(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (fp == NULL)
        return NULL;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0 &&
        (buf = calloc(1, (size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    return buf;
}
