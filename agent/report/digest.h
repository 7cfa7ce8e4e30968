/*
 * The status report as a message for a person (issue 15, item 3): every
 * certificate of the status document (status.c: status_pack_document, the
 * same rows as `certctl status` and STATE/status.json), worst first, as a
 * subject that carries the health, a plain text for a terminal or a mail
 * client, and a complete HTML document for mail clients (tables and inline
 * styles, no external resources, everything escaped).  `certctl report`
 * prints the text; the notify layer mails text and HTML; the dashboard
 * (web/) reuses the order and the escaping.
 *
 * Runs on the loop thread (it reads the services through status.c).
 */
#ifndef CERTAGENT_DIGEST_H
#define CERTAGENT_DIGEST_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct digest {
    char *subject; /* "[certagent] HOST: CRITICAL, 1 expiring, 2 warnings" */
    char *text;    /* plain text, lines under 80 columns where words allow */
    char *html;    /* a complete HTML document */
};

/*
 * Builds the report of st's certificates at time now (heap strings in *out,
 * free with digest_clear).  0, or -E_NOMEM with *cause.
 */
int digest_build(struct status *st, int64_t now, struct digest *out, char **cause);
void digest_clear(struct digest *d);

/* Reading the status document (shared with the dashboard's page): the string at key as
 * pointer and length ("" when absent or not a string), the integer at key (0 when absent). */
const char *digest_str(const msgpack_object *m, const char *key, size_t *len);
int64_t digest_int(const msgpack_object *m, const char *key);
/* The STATUS_* level of a row ("health") or of a warning ("level"). */
int digest_level(const msgpack_object *m);
/* Appends a row's DNS names and IP addresses to out, ", " between (out->p is a string). */
int digest_names(const msgpack_object *row, struct metrics_buf *out);

/*
 * The pure part, for tests: renders doc (a status document: the summary's
 * fields and "certificates") for host.  0, -E_BAD_INPUT when doc is not a
 * status document, -E_NOMEM.
 */
int digest_render(const msgpack_object *doc, const char *host, int64_t now, struct digest *out,
                  char **cause);

/*
 * The rows of doc's "certificates" worst first: critical, warning, ok; then
 * the sooner expiry; then by name.  *rows is the caller's (free), its
 * entries point into doc.  0 or -E_NOMEM (n 0 gives NULL).
 */
int digest_sorted_rows(const msgpack_object *doc, const msgpack_object ***rows, size_t *n);

/* Appends s[0, len) to b with &, <, >, " and ' escaped for HTML text and attributes. */
int digest_html_escape(struct metrics_buf *b, const char *s, size_t len);

/* The agent's host name for the subject ("localhost" when it cannot be read). */
void digest_host(char *buf, size_t len);

/* "2026-12-10 12:00 UTC" (buf at least 24 bytes); "-" for 0. */
void digest_format_time(int64_t t, char *buf, size_t len);

#endif
