/*
 * One delivery of an alert (notify-send.c): an e-mail through SMTP or a
 * webhook's POST, each a libcurl easy handle on the notify service's multi
 * handle (base/http-loop.c), so that a slow or dead peer holds nothing but
 * its own transfer.  The SMTP password and a webhook's headers are read
 * from their files when the transfer starts, kept only for it and wiped
 * after; they never reach a log line or a message.
 */
#ifndef CERTAGENT_NOTIFY_SEND_H
#define CERTAGENT_NOTIFY_SEND_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

struct config_notify;
struct config_webhook;
struct notify_xfer;

/*
 * The outcome of a transfer: rc 0 (delivered: the SMTP server accepted the
 * message, or the webhook answered 2xx) or a negative error code with cause;
 * reply is the peer's last words ("250 2.0.0 Ok: queued", "HTTP 500 ..."),
 * or NULL when it said nothing.
 */
typedef void (*notify_xfer_done)(void *arg, int rc, const char *reply, const char *cause);

/*
 * Starts sending an e-mail of subject with a text/plain part and a
 * text/html alternative (html may be NULL: text only) to cfg's recipients.
 * 0, or -E_* with *cause (a missing or unsafe password file: nothing was
 * started).
 */
int notify_send_email(CURLM *multi, const struct config_notify *cfg, const char *host,
                      const char *subject, const char *text, const char *html,
                      notify_xfer_done done, void *arg, struct notify_xfer **out, char **cause);
/* Starts POSTing body (JSON) to the webhook wh, as notify_send_email. */
int notify_send_webhook(CURLM *multi, const struct config_webhook *wh, int timeout,
                        const char *body, notify_xfer_done done, void *arg,
                        struct notify_xfer **out, char **cause);
/* Finishes the transfers libcurl completed (their done is called). */
void notify_xfer_progress(CURLM *multi);
/* Stops x without calling its done. */
void notify_xfer_cancel(CURLM *multi, struct notify_xfer *x);

/*
 * The message as it goes on the wire (pure, for tests): headers, then a
 * multipart/alternative body with both parts in base64 (CRLF line ends).
 * date is Unix seconds.  Heap string or NULL.
 */
char *notify_mime_build(const char *from, const char *const *to, size_t nto, const char *host,
                        const char *subject, const char *text, const char *html, int64_t date);

/*
 * Reads a webhook's headers file: "Name: value" lines, blank lines and
 * lines starting with '#' skipped.  A file another user can read, or a bad
 * line, is -E_DENIED / -E_BAD_INPUT naming key (the config key) and the
 * line number (never its content: it holds a token).
 */
int notify_headers_read(const char *path, const char *key, struct curl_slist **out, char **cause);

#endif
