/*
 * certagent.json: a table describes every key (type, bounds, default,
 * reloadable, sensitive); one walker checks a cJSON tree against it,
 * reporting unknown keys as warnings and wrong types or values as errors,
 * both with the JSON path ("$.log_level").  Reload runs the same code.
 */
#ifndef CERTAGENT_CONFIG_H
#define CERTAGENT_CONFIG_H

#include <stddef.h>

#include "config-canary.h"

struct config_notify;

/* A list of strings from a JSON array (listen addresses, probe URLs). */
struct config_list {
    char **items;
    size_t n;
};

/* ACME CAs declared in the config ("acme_cas": {NAME: {"directory": URL, "trust": PATH}}). */
struct config_ca {
    char *name;
    char *directory;
    char *trust; /* PEM file trusted for the CA's HTTPS endpoint; NULL: system store */
    /* Registration on first use (a fallback CA): "auto_register", "email", "eab_kid",
     * "eab_hmac_file" (read at load; eab_hmac holds its text, secret). */
    int auto_register;
    char *email;
    char *eab_kid;
    char *eab_hmac;
};
struct config_cluster;
struct config_cas {
    struct config_ca *items;
    size_t n;
};

/* The longest validity of a self-signed certificate (selfsigned_days, selfsigned --days). */
#define CONFIG_SELFSIGNED_DAYS_MAX 3650

struct config {
    char *socket;        /* NULL: the platform default */
    char *socket_group;  /* group allowed to use the socket; NULL: the agent's own */
    int socket_mode;     /* permission bits of the socket (0660) */
    char *operate_group; /* group that may operate (probe, verify, logs...); NULL: none */
    char *state_dir;     /* NULL: the platform default */
    char *log_level;     /* "error", "warn", "info", "debug" */
    char *default_key;   /* key type for new keys */
    int selfsigned_days; /* validity of self-signed certificates */
    int max_connections; /* IPC clients served at once */
    char *windows_store; /* Windows: machine store every new version goes to ("MY"); NULL: none */
    struct config_list http01_listen;     /* "ADDR:PORT" of the http-01 responder */
    struct config_list tls_alpn01_listen; /* "ADDR:PORT" of the tls-alpn-01 responder */
    int challenge_listen_always; /* responders listen from the start, not only while needed */
    char *default_ca;            /* ACME CA used when a request names none */
    char *dns01_hook;            /* command that publishes dns-01 TXT records; NULL: none */
    struct config_cas acme_cas;  /* CAs declared here (besides the built-in and added ones) */
    /* Connection limits of the responders (http-01, tls-alpn-01, metrics: challenge-net.c). */
    int responder_max_connections;    /* open at once per responder */
    int responder_max_per_address;    /* of them from one address (IPv6: one /64) */
    int responder_first_byte_timeout; /* seconds a connection may stay silent */
    int responder_request_timeout;    /* seconds a connection may stay open in all */
    /* Trust store and probes (agent/trust.c, agent/probe.c). */
    char *trust_system_dir;     /* anchors are copied here too (a ca-certificates dir); NULL: no */
    char *trust_system_command; /* run after trust_system_dir changed */
    int trust_system_roots;     /* also trust the operating system's CA bundle */
    int trust_aia_fetch;        /* verify may fetch missing intermediates (AIA caIssuers) */
    int trust_aia_timeout;      /* seconds one AIA fetch may take */
    char *probe_min_tls;        /* "1.0" .. "1.3": the oldest version the policy allows */
    int probe_timeout;          /* seconds per probe */
    int probe_concurrency;      /* connections open at once */
    int probe_interval;         /* seconds between runs of the configured probes */
    struct config_list probes;  /* URLs probed every probe_interval */
    /* Renewal and hooks (agent/renew.c, agent/deploy.c, agent/hooks.c). */
    int renew_before_days;    /* renew this many days before expiry; 0: the lifetime rule */
    int renew_after_revoke;   /* an ACME certificate revoked by certctl revoke renews at once */
    int renew_concurrency;    /* renewals running at once */
    int renew_retry_min;      /* seconds before the first retry after a failure */
    int renew_retry_max;      /* cap of the doubling retry delay */
    int renew_check_interval; /* longest sleep of the scheduler (clock changes, sleep) */
    char *deploy_hook;        /* shell command run after every new current version */
    char *failure_hook;       /* shell command run after every failed renewal */
    int hook_timeout;         /* seconds a hook may run */
    /* The status report, metrics and logs (agent/status.c, agent/log.c). */
    int warn_days;         /* "expiring" warning at most this many days ahead */
    int critical_days;     /* "expiring" is critical at most this many days ahead */
    char *metrics_listen;  /* loopback "ADDR:PORT" serving GET /metrics; NULL: off */
    int log_ring_lines;    /* log lines kept in memory for certctl logs */
    int ipc_frame_timeout; /* seconds an IPC client may take to complete a frame */
    int acme_http_timeout; /* seconds one HTTP exchange with an ACME CA may take */
    /* Limits of the IPC server (agent/ipc/server.c). */
    int ipc_hello_timeout;       /* seconds a new IPC client has to say hello */
    int ipc_idle_timeout;        /* seconds an IPC client may sit idle (0: no limit) */
    int max_connections_per_uid; /* IPC clients of one user who may not change the store */
    int reserved_connections;    /* IPC slots kept for users who may change the store */
    int ipc_partial_limit_mib;   /* MiB of partial frames held for all IPC clients */
    /* The dashboard (agent/web/dashboard.c). */
    char *dashboard_listen;      /* "ADDR:PORT" serving the dashboard; NULL: off */
    char *dashboard_certificate; /* store certificate served; NULL: CONFIG_DASHBOARD_SELFSIGNED */
    int dashboard_plain_http;    /* serve plain HTTP instead of HTTPS */
    char *dashboard_token_file;  /* file holding the token; required off loopback */
    int dashboard_refresh;       /* seconds between the page's own reloads */
    /* Alerts (agent/notify/, common/config-notify.h); NULL: none configured. */
    struct config_notify *notify;
    /* The served check (agent/deploy/served.c). */
    int served_check_interval; /* seconds between checks of the --check-served URLs */
    int served_grace;          /* seconds after a deploy before a mismatch is reported */
    /* The fleet (agent/fleet/, common/config-cluster.h); NULL: this agent is in no fleet. */
    struct config_cluster *cluster;
    /* Resilience (agent/renew/fallback.c, docs/resilience.md). */
    struct config_list fallback_cas; /* CAs tried when a certificate's own CA keeps failing */
    int fallback_after;              /* failures in a row at one CA before the next is tried */
    char *on_expiry;                 /* "keep" or "selfsigned": the last resort's default */
    int last_resort_hours;           /* the self-signed stand-in this long before expiry */
    int last_resort_minutes;         /* the same in minutes; 0: last_resort_hours */
    struct config_canaries canaries; /* staging canaries (agent/renew/canary.c) */
};

/*
 * The store name of the dashboard's self-signed certificate, made at first
 * start when dashboard_certificate is unset (it is self-signed on purpose:
 * the status report does not warn self_signed_in_use for it).
 */
#define CONFIG_DASHBOARD_SELFSIGNED "certagent-dashboard"

/* Fills c with the defaults. 0 or -E_NOMEM. */
int config_defaults(struct config *c);

/*
 * Loads path over the defaults.  A missing file is -E_NOT_FOUND (the caller
 * decides whether that is fine).  Warnings (unknown keys) are appended to
 * *warnings (heap array of heap strings, count in *nwarnings).  Errors name
 * the key and what was expected.  A file another account could have written
 * is refused first (sys_config_check: -E_DENIED naming the file and its owner).
 */
int config_load(const char *path, struct config *c, char ***warnings, size_t *nwarnings,
                char **cause);
/* Parses JSON text the same way (tests, fuzzing). */
int config_parse(const char *text, size_t len, struct config *c, char ***warnings,
                 size_t *nwarnings, char **cause);

/*
 * Names of keys whose values differ between a and b and that need a restart
 * to take effect, joined by ", " into a heap string, or NULL when none.
 */
char *config_restart_needed(const struct config *a, const struct config *b);

/*
 * A reload: every key the table marks reloadable takes its value from
 * loaded; running keeps the others.  The values are swapped, so that
 * config_free(loaded) frees the replaced ones.
 */
void config_take_reloadable(struct config *running, struct config *loaded);

void config_free(struct config *c);
void config_free_warnings(char **warnings, size_t n);

/* The documented table, for `certagent --help-config` and tests. */
struct config_key_doc {
    const char *name;
    const char *type;
    const char *def;
    const char *doc;
    int reloadable;
    int sensitive;
};
size_t config_key_docs(const struct config_key_doc **docs);

#endif
