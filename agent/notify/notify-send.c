#include "notify-send.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config-notify.h"
#include "err.h"
#include "fsutil.h"
#include "platform.h"
#include "secret-file.h"
#include "sys.h"

/* A password or headers file larger than this is refused. */
#define SECRET_FILE_MAX (64 * 1024)
/* Bytes of a webhook's answer kept for the reply. */
#define REPLY_MAX 300

struct notify_xfer {
    CURL *easy;
    notify_xfer_done done;
    void *arg;
    int is_email;
    char *payload; /* the message or the body */
    size_t len, off;
    struct curl_slist *rcpt;
    struct curl_slist *headers;
    char *password;
    char reply[REPLY_MAX + 1]; /* SMTP: the server's last line; HTTP: the answer's start */
    size_t reply_len;
    char errbuf[CURL_ERROR_SIZE];
};

static void
xfer_free(struct notify_xfer *x)
{
    if (x == NULL)
        return;
    if (x->easy != NULL)
        curl_easy_cleanup(x->easy);
    if (x->payload != NULL) {
        OPENSSL_cleanse(x->payload, x->len);
        free(x->payload);
    }
    curl_slist_free_all(x->rcpt);
    if (x->headers != NULL) {
        for (struct curl_slist *h = x->headers; h != NULL; h = h->next)
            OPENSSL_cleanse(h->data, strlen(h->data));
        curl_slist_free_all(x->headers);
    }
    if (x->password != NULL) {
        OPENSSL_cleanse(x->password, strlen(x->password));
        free(x->password);
    }
    free(x);
}

/* Appends s (len bytes) to the heap string *buf of *used bytes; -1 when out of memory. */
static int
append(char **buf, size_t *used, size_t *cap, const char *s, size_t len)
{
    if (*used + len + 1 > *cap) {
        size_t ncap = (*cap + len + 1) * 2;
        char *n = realloc(*buf, ncap);

        if (n == NULL)
            return -1;
        *buf = n;
        *cap = ncap;
    }
    memcpy(*buf + *used, s, len);
    *used += len;
    (*buf)[*used] = '\0';
    return 0;
}

static int
appends(char **buf, size_t *used, size_t *cap, const char *s)
{
    return append(buf, used, cap, s, strlen(s));
}

/* s in base64, in lines of 76 characters, each ended by CRLF. */
static int
append_base64(char **buf, size_t *used, size_t *cap, const char *s)
{
    size_t len = strlen(s);
    unsigned char out[80];

    for (size_t off = 0; off < len; off += 57) {
        size_t n = len - off > 57 ? 57 : len - off;
        int w = EVP_EncodeBlock(out, (const unsigned char *)s + off, (int)n);

        if (append(buf, used, cap, (const char *)out, (size_t)w) != 0 ||
            append(buf, used, cap, "\r\n", 2) != 0)
            return -1;
    }
    return 0;
}

/* A header value without CR or LF (nothing the peer wrote can add a header). */
static void
header_clean(char *dst, size_t size, const char *src)
{
    size_t j = 0;

    for (size_t i = 0; src[i] != '\0' && j + 1 < size; i++)
        dst[j++] = (src[i] == '\r' || src[i] == '\n' || src[i] == '\t') ? ' ' : src[i];
    dst[j] = '\0';
}

/* The subject as is when it is printable ASCII, else as RFC 2047 encoded words. */
static int
append_subject(char **buf, size_t *used, size_t *cap, const char *subject)
{
    char clean[512];
    int ascii = 1;

    header_clean(clean, sizeof(clean), subject);
    for (const unsigned char *p = (const unsigned char *)clean; *p; p++)
        ascii &= *p >= 0x20 && *p < 0x7f;
    if (ascii)
        return appends(buf, used, cap, "Subject: ") || appends(buf, used, cap, clean) ||
               appends(buf, used, cap, "\r\n");
    if (appends(buf, used, cap, "Subject:") != 0)
        return -1;
    /* Encoded words of at most 45 bytes of text, not splitting a UTF-8 sequence. */
    for (size_t off = 0, len = strlen(clean); off < len;) {
        size_t n = len - off > 45 ? 45 : len - off;
        unsigned char out[80];
        int w;

        while (off + n < len && n > 1 && ((unsigned char)clean[off + n] & 0xc0) == 0x80)
            n--;
        w = EVP_EncodeBlock(out, (const unsigned char *)clean + off, (int)n);
        if (appends(buf, used, cap, " =?UTF-8?B?") != 0 ||
            append(buf, used, cap, (const char *)out, (size_t)w) != 0 ||
            appends(buf, used, cap, "?=\r\n") != 0)
            return -1;
        off += n;
    }
    return 0;
}

char *
notify_mime_build(const char *from, const char *const *to, size_t nto, const char *host,
                  const char *subject, const char *text, const char *html, int64_t date)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char *buf = NULL, line[512], boundary[64], hostc[256];
    unsigned char rnd[12];
    size_t used = 0, cap = 0;
    struct tm tm;
    int ok = 1;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return NULL;
    snprintf(boundary, sizeof(boundary), "=_certagent_%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0],
             rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    header_clean(hostc, sizeof(hostc), host);
    if (sys_gmtime(date, &tm) != 0)
        memset(&tm, 0, sizeof(tm));
    snprintf(line, sizeof(line), "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
             days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    ok &= appends(&buf, &used, &cap, line) == 0;
    snprintf(line, sizeof(line), "From: certagent on %s <%s>\r\n", hostc, from);
    ok &= appends(&buf, &used, &cap, line) == 0;
    ok &= appends(&buf, &used, &cap, "To: ") == 0;
    for (size_t i = 0; i < nto; i++) {
        ok &= appends(&buf, &used, &cap, i > 0 ? ",\r\n " : "") == 0;
        ok &= appends(&buf, &used, &cap, to[i]) == 0;
    }
    ok &= appends(&buf, &used, &cap, "\r\n") == 0;
    ok &= append_subject(&buf, &used, &cap, subject) == 0;
    snprintf(line, sizeof(line), "Message-ID: <%lld.%02x%02x%02x%02x@certagent.%s>\r\n",
             (long long)date, rnd[8], rnd[9], rnd[10], rnd[11],
             strchr(from, '@') != NULL ? strchr(from, '@') + 1 : "invalid");
    ok &= appends(&buf, &used, &cap, line) == 0;
    ok &= appends(&buf, &used, &cap,
                  "MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n"
                  "X-Auto-Response-Suppress: All\r\n") == 0;
    if (html == NULL) {
        ok &= appends(&buf, &used, &cap,
                      "Content-Type: text/plain; charset=utf-8\r\n"
                      "Content-Transfer-Encoding: base64\r\n\r\n") == 0;
        ok &= append_base64(&buf, &used, &cap, text) == 0;
        return ok ? buf : (free(buf), NULL);
    }
    snprintf(line, sizeof(line),
             "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
             "This is a message in MIME format.\r\n\r\n--%s\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: base64\r\n\r\n",
             boundary, boundary);
    ok &= appends(&buf, &used, &cap, line) == 0;
    ok &= append_base64(&buf, &used, &cap, text) == 0;
    snprintf(line, sizeof(line),
             "\r\n--%s\r\nContent-Type: text/html; charset=utf-8\r\n"
             "Content-Transfer-Encoding: base64\r\n\r\n",
             boundary);
    ok &= appends(&buf, &used, &cap, line) == 0;
    ok &= append_base64(&buf, &used, &cap, html) == 0;
    snprintf(line, sizeof(line), "\r\n--%s--\r\n", boundary);
    ok &= appends(&buf, &used, &cap, line) == 0;
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

static size_t
on_read(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct notify_xfer *x = userdata;
    size_t n = size * nmemb;

    if (n > x->len - x->off)
        n = x->len - x->off;
    memcpy(ptr, x->payload + x->off, n);
    x->off += n;
    return n;
}

/* A webhook's answer: its start is kept for the reply, the rest is dropped. */
static size_t
on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct notify_xfer *x = userdata;
    size_t n = size * nmemb;

    for (size_t i = 0; i < n && x->reply_len < REPLY_MAX; i++) {
        char c = ptr[i];

        x->reply[x->reply_len++] = (c == '\r' || c == '\n' || (unsigned char)c < 0x20) ? ' ' : c;
    }
    x->reply[x->reply_len] = '\0';
    return n;
}

/* SMTP: each line the server sent replaces the last one (the reply is the final line). */
static int
on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *userptr)
{
    struct notify_xfer *x = userptr;
    size_t n = 0;

    (void)h;
    if (type != CURLINFO_HEADER_IN)
        return 0;
    for (size_t i = 0; i < size && n < REPLY_MAX; i++) {
        if (data[i] == '\r' || data[i] == '\n')
            break;
        x->reply[n++] = (unsigned char)data[i] < 0x20 ? ' ' : data[i];
    }
    if (n > 0) {
        x->reply[n] = '\0';
        x->reply_len = n;
    }
    return 0;
}

static int
xfer_common(struct notify_xfer *x, const char *url, const char *trust, int timeout)
{
    CURL *h = x->easy;

    return curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
           curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)x) != CURLE_OK ||
           curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK ||
           curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
           curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)timeout) != CURLE_OK ||
           curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)(timeout < 30 ? timeout : 30)) !=
               CURLE_OK ||
           curl_easy_setopt(h, CURLOPT_SSL_OPTIONS, platform_http_ssl_options()) != CURLE_OK ||
           (trust != NULL && curl_easy_setopt(h, CURLOPT_CAINFO, trust) != CURLE_OK);
}

/* Adds *x to multi: on success *out takes it (and *x is NULL). */
static int
xfer_start(CURLM *multi, struct notify_xfer **x, const char *what, struct notify_xfer **out,
           char **cause)
{
    if (curl_multi_add_handle(multi, (*x)->easy) != CURLM_OK) {
        err_set(cause, "cannot start the %s transfer", what);
        return -E_INTERNAL;
    }
    *out = *x;
    *x = NULL;
    return 0;
}

/* Reads the first line of a secret file (no line end) into a heap string. */
static int
read_password(const char *path, char **out, char **cause)
{
    unsigned char *data = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if ((rc = platform_secret_file_check(path, "notify.email.password_file", cause)) != 0)
        return rc;
    if ((rc = fsutil_read_file(path, SECRET_FILE_MAX, &data, &len, NULL)) != 0) {
        err_set(cause, "notify.email.password_file: cannot read %s: %s", path, err_message(rc));
        return rc;
    }
    data[strcspn((char *)data, "\r\n")] = '\0';
    if (data[0] == '\0') {
        err_set(cause, "notify.email.password_file: %s is empty", path);
        OPENSSL_cleanse(data, len);
        free(data);
        return -E_BAD_INPUT;
    }
    *out = (char *)data;
    return 0;
}

int
notify_send_email(CURLM *multi, const struct config_notify *cfg, const char *host,
                  const char *subject, const char *text, const char *html, notify_xfer_done done,
                  void *arg, struct notify_xfer **out, char **cause)
{
    struct notify_xfer *x = NULL;
    char addr[300];
    int rc = 0;

    *out = NULL;
    if ((x = calloc(1, sizeof(*x))) == NULL)
        return -E_NOMEM;
    x->done = done;
    x->arg = arg;
    x->is_email = 1;
    if (cfg->username != NULL &&
        (rc = read_password(cfg->password_file, &x->password, cause)) != 0)
        goto out;
    if ((x->payload = notify_mime_build(cfg->from, (const char *const *)cfg->to.items, cfg->to.n,
                                        host, subject, text, html, (int64_t)time(NULL))) == NULL ||
        (x->easy = curl_easy_init()) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    x->len = strlen(x->payload);
    for (size_t i = 0; i < cfg->to.n; i++) {
        struct curl_slist *l;

        snprintf(addr, sizeof(addr), "<%s>", cfg->to.items[i]);
        if ((l = curl_slist_append(x->rcpt, addr)) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
        x->rcpt = l;
    }
    snprintf(addr, sizeof(addr), "<%s>", cfg->from);
    if (xfer_common(x, cfg->smtp_url, cfg->smtp_trust, cfg->timeout) ||
        curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps") != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_USE_SSL,
                         cfg->tls == CONFIG_NOTIFY_TLS_NONE ? (long)CURLUSESSL_NONE
                                                            : (long)CURLUSESSL_ALL) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_MAIL_FROM, addr) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_MAIL_RCPT, x->rcpt) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_READFUNCTION, on_read) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_READDATA, x) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->len) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_DEBUGFUNCTION, on_debug) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_DEBUGDATA, x) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_VERBOSE, 1L) != CURLE_OK ||
        (cfg->username != NULL &&
         (curl_easy_setopt(x->easy, CURLOPT_USERNAME, cfg->username) != CURLE_OK ||
          curl_easy_setopt(x->easy, CURLOPT_PASSWORD, x->password) != CURLE_OK))) {
        err_set(cause, "cannot set up the SMTP transfer");
        rc = -E_INTERNAL;
        goto out;
    }
    rc = xfer_start(multi, &x, "SMTP", out, cause);
out:
    xfer_free(x);
    return rc;
}

/* Is name an HTTP header name (RFC 9110 token)? */
static int
header_name_ok(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", c) != NULL))
            return 0;
    }
    return 1;
}

int
notify_headers_read(const char *path, const char *key, struct curl_slist **out, char **cause)
{
    unsigned char *data = NULL;
    struct curl_slist *list = NULL;
    size_t len = 0;
    char *p;
    int rc, lineno = 0;

    *out = NULL;
    if ((rc = platform_secret_file_check(path, key, cause)) != 0)
        return rc;
    if ((rc = fsutil_read_file(path, SECRET_FILE_MAX, &data, &len, NULL)) != 0) {
        err_set(cause, "%s: cannot read %s: %s", key, path, err_message(rc));
        return rc;
    }
    p = (char *)data;
    while (*p != '\0') {
        size_t ll = strcspn(p, "\n"), nl;
        char *colon;

        lineno++;
        if (ll > 0 && p[ll - 1] == '\r')
            p[ll - 1] = '\0';
        nl = p[ll] == '\n';
        p[ll] = '\0';
        if (p[0] != '\0' && p[0] != '#') {
            struct curl_slist *l;

            colon = strchr(p, ':');
            if (colon == NULL || !header_name_ok(p, (size_t)(colon - p)) ||
                strchr(colon, '\r') != NULL || strcspn(colon + 1, " \t") == strlen(colon + 1)) {
                err_set(cause,
                        "%s: %s line %d is not \"Name: value\" (a header name, a colon and a "
                        "value)",
                        key, path, lineno);
                rc = -E_BAD_INPUT;
                goto out;
            }
            if ((l = curl_slist_append(list, p)) == NULL) {
                rc = -E_NOMEM;
                goto out;
            }
            list = l;
        }
        p += ll + nl;
    }
    *out = list;
    list = NULL;
out:
    if (list != NULL) {
        for (struct curl_slist *h = list; h != NULL; h = h->next)
            OPENSSL_cleanse(h->data, strlen(h->data));
        curl_slist_free_all(list);
    }
    OPENSSL_cleanse(data, len);
    free(data);
    return rc;
}

int
notify_send_webhook(CURLM *multi, const struct config_webhook *wh, int timeout, const char *body,
                    notify_xfer_done done, void *arg, struct notify_xfer **out, char **cause)
{
    struct notify_xfer *x = NULL;
    struct curl_slist *l;
    int rc = 0;

    *out = NULL;
    if ((x = calloc(1, sizeof(*x))) == NULL)
        return -E_NOMEM;
    x->done = done;
    x->arg = arg;
    if (wh->headers_file != NULL &&
        (rc = notify_headers_read(wh->headers_file, "notify.webhooks[].headers_file", &x->headers,
                                  cause)) != 0)
        goto out;
    if ((l = curl_slist_append(x->headers, "Content-Type: application/json")) == NULL ||
        (x->headers = l, (l = curl_slist_append(x->headers, "Expect:")) == NULL) ||
        (x->headers = l, (x->payload = strdup(body)) == NULL) ||
        (x->easy = curl_easy_init()) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    x->len = strlen(body);
    if (xfer_common(x, wh->url, wh->trust, timeout) ||
        curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_POST, 1L) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->payload) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->len) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_USERAGENT, "certagent") != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x) != CURLE_OK) {
        err_set(cause, "cannot set up the webhook transfer");
        rc = -E_INTERNAL;
        goto out;
    }
    rc = xfer_start(multi, &x, "webhook", out, cause);
out:
    xfer_free(x);
    return rc;
}

/* The outcome of a finished transfer, then its done. */
static void
xfer_finish(struct notify_xfer *x, CURLcode res)
{
    char *cause = NULL, reply[REPLY_MAX + 32];
    long code = 0;
    int rc = 0;

    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    reply[0] = '\0';
    if (x->is_email) {
        if (x->reply_len > 0)
            snprintf(reply, sizeof(reply), "%s", x->reply);
        if (res != CURLE_OK) {
            err_set(&cause, "%s%s%s%s%s", curl_easy_strerror(res), x->errbuf[0] ? ": " : "",
                    x->errbuf, reply[0] ? "; the server said: " : "", reply);
            rc = res == CURLE_OPERATION_TIMEDOUT ? -E_UNAVAILABLE : -E_IO;
        }
    } else {
        snprintf(reply, sizeof(reply), "HTTP %ld%s%s", code, x->reply_len ? " " : "", x->reply);
        if (res != CURLE_OK) {
            err_set(&cause, "%s%s%s", curl_easy_strerror(res), x->errbuf[0] ? ": " : "",
                    x->errbuf);
            rc = res == CURLE_OPERATION_TIMEDOUT ? -E_UNAVAILABLE : -E_IO;
            reply[0] = '\0';
        } else if (code < 200 || code > 299) {
            err_set(&cause, "the receiver answered %s", reply);
            rc = -E_IO;
        }
    }
    x->done(x->arg, rc, reply[0] ? reply : NULL, cause);
    free(cause);
}

void
notify_xfer_progress(CURLM *multi)
{
    CURLMsg *msg;
    int left = 0;

    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
        struct notify_xfer *x;
        CURL *easy = msg->easy_handle;
        CURLcode res = msg->data.result;
        char *priv = NULL;

        if (msg->msg != CURLMSG_DONE)
            continue;
        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK || priv == NULL)
            continue;
        x = (struct notify_xfer *)(void *)priv;
        curl_multi_remove_handle(multi, easy);
        xfer_finish(x, res);
        xfer_free(x);
    }
}

void
notify_xfer_cancel(CURLM *multi, struct notify_xfer *x)
{
    if (x == NULL)
        return;
    curl_multi_remove_handle(multi, x->easy);
    xfer_free(x);
}
