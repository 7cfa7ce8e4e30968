/*
 * The "notify" object of certagent.json (config-notify.c): where alerts go
 * (an SMTP server, webhooks), the status report's schedule and the repeat
 * of open critical problems.  config.c hands the JSON value to
 * config_notify_parse, which checks every member and names the JSON path of
 * the first bad one ("$.notify.email.to[1]: 'ops' is not an e-mail address").
 * Files (the SMTP password, a webhook's headers) are read at send time, not
 * here: a missing one is reported then, in words naming the key.
 */
#ifndef CERTAGENT_CONFIG_NOTIFY_H
#define CERTAGENT_CONFIG_NOTIFY_H

#include "config.h"

struct cJSON;

enum config_notify_tls {
    CONFIG_NOTIFY_TLS_STARTTLS = 0, /* smtp://: STARTTLS, refused when the server lacks it */
    CONFIG_NOTIFY_TLS_IMPLICIT,     /* smtps://: TLS from the first byte */
    CONFIG_NOTIFY_TLS_NONE,         /* smtp:// in clear text, on purpose */
};

enum config_notify_format {
    CONFIG_NOTIFY_FORMAT_JSON = 0, /* the documented body (docs/notifications.md) */
    CONFIG_NOTIFY_FORMAT_SLACK,    /* {"text": ...} of Slack's incoming webhooks */
    CONFIG_NOTIFY_FORMAT_TEAMS,    /* {"text": ...} of a Teams incoming webhook (MessageCard) */
};

enum config_notify_report {
    CONFIG_NOTIFY_REPORT_OFF = 0,
    CONFIG_NOTIFY_REPORT_DAILY,
    CONFIG_NOTIFY_REPORT_WEEKLY,
};

struct config_webhook {
    char *url;          /* http:// or https:// */
    int format;         /* enum config_notify_format */
    char *headers_file; /* "Name: value" lines, mode 0600; NULL: none */
    char *trust;        /* PEM file trusted for the receiver's certificate; NULL: system */
};

struct config_notify {
    /* E-mail: smtp_url NULL when there is no "email" object. */
    char *smtp_url;
    char *from;
    struct config_list to;
    char *username;      /* NULL: no AUTH */
    char *password_file; /* read at send time */
    int tls;             /* enum config_notify_tls */
    char *smtp_trust;    /* PEM file trusted for the mail server; NULL: the system store */
    struct config_webhook *webhooks;
    size_t nwebhooks;
    /* The status report's schedule, local time. */
    int report;      /* enum config_notify_report */
    int report_wday; /* weekly: 0 Sunday .. 6 Saturday */
    int report_hour, report_minute;
    int repeat_hours;     /* open critical problems are sent again this often; 0: never */
    int retry_seconds;    /* first retry of a failed delivery (doubling up to an hour) */
    int failing_minutes;  /* a channel failing this long raises notify_failing */
    int coalesce_seconds; /* events within this window make one message */
    int timeout;          /* seconds one delivery may take */
};

/*
 * Parses j (the value of $.notify) into a new *out.  -E_BAD_INPUT with
 * *cause naming the path and what was expected, -E_NOMEM.
 */
int config_notify_parse(const struct cJSON *j, struct config_notify **out, char **cause);
/* NULL is a no-op. */
void config_notify_free(struct config_notify *n);

/* Is s one plain e-mail address (local@domain, no display name, no spaces)? Pure. */
int config_notify_address_ok(const char *s);

/* "off", "daily 07:00", "weekly mon 07:00" of n's schedule, into buf. */
void config_notify_report_text(const struct config_notify *n, char *buf, size_t len);

#endif
