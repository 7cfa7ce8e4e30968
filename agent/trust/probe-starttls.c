/*
 * The plain-text part of STARTTLS: IMAP (RFC 3501 CAPABILITY, STARTTLS),
 * POP3 (RFC 2595 CAPA, STLS) and SMTP (RFC 3207 EHLO, STARTTLS).  A small
 * state machine fed with whatever bytes arrive; it never allocates.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "probe.h"

/* Lines a server may send before TLS starts. */
#define STARTTLS_MAX_LINES 200

enum {
    STEP_GREETING,
    STEP_CAPS,
    STEP_STARTTLS,
};

const char *
starttls_name(enum probe_starttls proto)
{
    switch (proto) {
    case PROBE_IMAP:
        return "IMAP";
    case PROBE_POP3:
        return "POP3";
    case PROBE_SMTP:
        return "SMTP";
    case PROBE_TLS:
        break;
    }
    return "TLS";
}

void
starttls_init(struct starttls *st, enum probe_starttls proto)
{
    memset(st, 0, sizeof(*st));
    st->proto = proto;
}

static int
prefix_ci(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0' || toupper((unsigned char)s[i]) != toupper((unsigned char)prefix[i]))
            return 0;
    }
    return 1;
}

/* Does the space-separated text hold the word (case-insensitive)? */
static int
has_word(const char *text, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = text; *p; p++) {
        if ((p == text || p[-1] == ' ' || p[-1] == '[' || p[-1] == '-') && prefix_ci(p, word) &&
            (p[n] == '\0' || p[n] == ' ' || p[n] == ']'))
            return 1;
    }
    return 0;
}

static void
note_caps(struct starttls *st, const char *text)
{
    size_t used = strlen(st->caps);

    if (used + 2 >= sizeof(st->caps))
        return;
    snprintf(st->caps + used, sizeof(st->caps) - used, "%s%s", used ? " " : "", text);
}

static int
say(const char *what, char *out, size_t outcap, size_t *outlen)
{
    size_t n = strlen(what);

    if (*outlen + n > outcap)
        return -E_INTERNAL;
    memcpy(out + *outlen, what, n);
    *outlen += n;
    return 0;
}

/* One complete line (without CRLF).  0 more, 1 ready, negative error. */
static int
imap_line(struct starttls *st, const char *l, char *out, size_t outcap, size_t *outlen,
          char **cause)
{
    switch (st->step) {
    case STEP_GREETING:
        if (prefix_ci(l, "* OK") || prefix_ci(l, "* PREAUTH")) {
            st->step = STEP_CAPS;
            return say("A1 CAPABILITY\r\n", out, outcap, outlen);
        }
        err_set(cause, "the IMAP server greeted with '%.120s' instead of '* OK'", l);
        return -E_PROTO;
    case STEP_CAPS:
        if (prefix_ci(l, "* CAPABILITY")) {
            note_caps(st, l + 13 - (l[12] == '\0'));
            st->offered |= has_word(l, "STARTTLS");
            return 0;
        }
        if (prefix_ci(l, "A1 OK")) {
            if (!st->offered) {
                err_set(cause,
                        "the IMAP server does not offer STARTTLS (CAPABILITY: %s); "
                        "use imaps:// (port 993) if it speaks implicit TLS",
                        st->caps[0] ? st->caps : "none");
                return -E_PROTO;
            }
            st->step = STEP_STARTTLS;
            return say("A2 STARTTLS\r\n", out, outcap, outlen);
        }
        if (prefix_ci(l, "A1 ")) {
            err_set(cause, "the IMAP server refused CAPABILITY: %.120s", l + 3);
            return -E_PROTO;
        }
        return 0; /* other untagged data */
    default:
        if (prefix_ci(l, "A2 OK"))
            return 1;
        if (prefix_ci(l, "A2 ")) {
            err_set(cause, "the IMAP server refused STARTTLS: %.120s", l + 3);
            return -E_PROTO;
        }
        return 0;
    }
}

static int
pop3_line(struct starttls *st, const char *l, char *out, size_t outcap, size_t *outlen,
          char **cause)
{
    switch (st->step) {
    case STEP_GREETING:
        if (prefix_ci(l, "+OK")) {
            st->step = STEP_CAPS;
            return say("CAPA\r\n", out, outcap, outlen);
        }
        err_set(cause, "the POP3 server greeted with '%.120s' instead of '+OK'", l);
        return -E_PROTO;
    case STEP_CAPS:
        if (st->lines == 0 && prefix_ci(l, "-ERR")) {
            err_set(cause,
                    "the POP3 server does not offer STLS (it refused CAPA: %.120s); use "
                    "pop3s:// (port 995) if it speaks implicit TLS",
                    l);
            return -E_PROTO;
        }
        if (st->lines++ == 0)
            return 0; /* "+OK" before the list */
        if (strcmp(l, ".") == 0) {
            if (!st->offered) {
                err_set(cause,
                        "the POP3 server does not offer STLS (CAPA: %s); use pop3s:// "
                        "(port 995) if it speaks implicit TLS",
                        st->caps[0] ? st->caps : "none");
                return -E_PROTO;
            }
            st->step = STEP_STARTTLS;
            return say("STLS\r\n", out, outcap, outlen);
        }
        note_caps(st, l);
        st->offered |= has_word(l, "STLS");
        return 0;
    default:
        if (prefix_ci(l, "+OK"))
            return 1;
        err_set(cause, "the POP3 server refused STLS: %.120s", l);
        return -E_PROTO;
    }
}

static int
smtp_line(struct starttls *st, const char *l, char *out, size_t outcap, size_t *outlen,
          char **cause)
{
    int last = strlen(l) < 4 || l[3] != '-'; /* "250-X" continues, "250 X" ends */

    if (strlen(l) < 3 || !isdigit((unsigned char)l[0]) || !isdigit((unsigned char)l[1]) ||
        !isdigit((unsigned char)l[2])) {
        err_set(cause, "the SMTP server sent '%.120s', not a reply code", l);
        return -E_PROTO;
    }
    switch (st->step) {
    case STEP_GREETING:
        if (strncmp(l, "220", 3) != 0) {
            err_set(cause, "the SMTP server greeted with '%.120s' instead of 220", l);
            return -E_PROTO;
        }
        if (!last)
            return 0;
        st->step = STEP_CAPS;
        return say("EHLO certagent.invalid\r\n", out, outcap, outlen);
    case STEP_CAPS:
        if (strncmp(l, "250", 3) != 0) {
            err_set(cause, "the SMTP server refused EHLO: %.120s", l);
            return -E_PROTO;
        }
        if (st->lines++ > 0) { /* the first line is the server's name */
            note_caps(st, l + 4 - (l[3] == '\0'));
            st->offered |= has_word(l + 4 - (l[3] == '\0'), "STARTTLS");
        }
        if (!last)
            return 0;
        if (!st->offered) {
            err_set(cause,
                    "the SMTP server does not offer STARTTLS (EHLO: %s); use smtps:// "
                    "(port 465) if it speaks implicit TLS",
                    st->caps[0] ? st->caps : "none");
            return -E_PROTO;
        }
        st->step = STEP_STARTTLS;
        return say("STARTTLS\r\n", out, outcap, outlen);
    default:
        if (strncmp(l, "220", 3) == 0)
            return last ? 1 : 0;
        err_set(cause, "the SMTP server refused STARTTLS: %.120s", l);
        return -E_PROTO;
    }
}

int
starttls_feed(struct starttls *st, const char *data, size_t len, char *out, size_t outcap,
              size_t *outlen, char **cause)
{
    *outlen = 0;
    for (size_t i = 0; i < len; i++) {
        int rc;

        if (data[i] != '\n') {
            if (st->len + 1 >= sizeof(st->line)) {
                err_set(cause, "the %s server sent a line longer than %zu bytes",
                        starttls_name(st->proto), sizeof(st->line) - 1);
                return -E_PROTO;
            }
            if (data[i] == '\0') {
                err_set(cause, "the %s server sent a NUL byte", starttls_name(st->proto));
                return -E_PROTO;
            }
            st->line[st->len++] = data[i];
            continue;
        }
        if (st->len > 0 && st->line[st->len - 1] == '\r')
            st->len--;
        st->line[st->len] = '\0';
        st->len = 0;
        if (++st->total > STARTTLS_MAX_LINES) {
            err_set(cause, "the %s server sent more than %d lines before STARTTLS",
                    starttls_name(st->proto), STARTTLS_MAX_LINES);
            return -E_PROTO;
        }
        if (st->proto == PROBE_IMAP)
            rc = imap_line(st, st->line, out, outcap, outlen, cause);
        else if (st->proto == PROBE_POP3)
            rc = pop3_line(st, st->line, out, outcap, outlen, cause);
        else
            rc = smtp_line(st, st->line, out, outcap, outlen, cause);
        if (rc != 0)
            return rc; /* bytes after the go-ahead belong to nobody: TLS starts with us */
    }
    return 0;
}
