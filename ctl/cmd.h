/*
 * certctl's command table and what every command shares.  Each command is a
 * small function that builds one request and renders its reply, as a table
 * for people or as JSON with --json.
 */
#ifndef CERTCTL_CMD_H
#define CERTCTL_CMD_H

#include <stddef.h>
#include <stdio.h>

#include "client.h"
#include "err.h"

/* Exit codes (certctl(1)). */
#define EXIT_AGENT_ERROR 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
/* verify or probe ran and found a problem. */
#define EXIT_CHECK_FAILED 4

/* What list and status say when the store has no certificate. */
#define CMD_EMPTY_STORE_HINT                                                                      \
    "The store is empty. Get a certificate from an ACME CA with 'certctl request', bring one "    \
    "with 'certctl import', or make a test one with 'certctl selfsigned' (certctl help "          \
    "COMMAND shows how)."

struct ctl {
    const char *socket; /* --socket or CERTAGENT_SOCKET; NULL: defaults */
    int json;
    struct client client;
    int connected;
    struct cJSON *settings; /* settings options of request/selfsigned/import, or NULL */
};

struct cmd {
    const char *name;
    const char *usage;   /* arguments, for "usage: certctl NAME ..." */
    const char *summary; /* one line */
    const char *help;    /* the options, one per line */
    int (*fn)(struct ctl *ctl, int argc, char **argv);
};

extern const struct cmd cmd_table[];
extern const size_t cmd_count;

const struct cmd *cmd_find(const char *name);
/*
 * Prints a command's usage: on stdout, as JSON with --json, and returns 0; or
 * on stderr (err), records the usage error for --json and returns EXIT_USAGE.
 */
int cmd_usage(const struct cmd *cmd, int err);
/* The list of commands and global options (JSON on stdout with --json). */
void cmd_usage_all(FILE *f);
/*
 * Prints "certctl NAME: message" and the usage line on stderr, records the
 * E_USAGE error for --json; returns EXIT_USAGE.
 */
int cmd_usage_error(const char *name, const char *fmt, ...) ERR_PRINTF(2, 3);
/* help [COMMAND]. */
int cmd_help(struct ctl *ctl, int argc, char **argv);

/* Connects (once) to the agent; on failure prints where it looked and returns EXIT_UNREACHABLE. */
int ctl_connect(struct ctl *ctl);
/*
 * Sends a request built with client_request_begin and waits for the reply.
 * Returns 0 when the agent said ok; otherwise prints the error (and the
 * JSON error object with --json) and returns the exit code.
 */
int ctl_call(struct ctl *ctl, struct proto_writer *w, struct reply *reply);

/*
 * Option parsing: matches argv[*i] against "--name VALUE" / "--name=VALUE".
 * 1 matched (value in *out), 0 not this option, -1 value missing.
 */
int cmd_opt(int argc, char **argv, int *i, const char *name, const char **out);
/* Reads a password file (first line, without the line ending; at most 1 KiB). */
int cmd_read_password(const char *path, char **out, char **cause);
/* Wipes and frees a NUL-terminated secret; NULL is a no-op. */
void cmd_free_secret(char *s);
/* Reads an input file (at most max bytes). */
int cmd_read_input(const char *path, size_t max, unsigned char **out, size_t *len, char **cause);
/* Parses a positive integer option; -1 when invalid. */
long cmd_parse_count(const char *s, long max);

/* The commands. */
int cmd_version(struct ctl *ctl, int argc, char **argv);
int cmd_status(struct ctl *ctl, int argc, char **argv);
int cmd_list(struct ctl *ctl, int argc, char **argv);
int cmd_show(struct ctl *ctl, int argc, char **argv);
int cmd_selfsigned(struct ctl *ctl, int argc, char **argv);
int cmd_import(struct ctl *ctl, int argc, char **argv);
int cmd_export(struct ctl *ctl, int argc, char **argv);
int cmd_remove(struct ctl *ctl, int argc, char **argv);
int cmd_rollback(struct ctl *ctl, int argc, char **argv);
int cmd_ping(struct ctl *ctl, int argc, char **argv);
/* cmd-canary.c: canary run [CA], canary status. */
int cmd_canary(struct ctl *ctl, int argc, char **argv);
/* cmd-notify.c */
int cmd_notify(struct ctl *ctl, int argc, char **argv);
int cmd_ack(struct ctl *ctl, int argc, char **argv);
/* report --send: the status report by e-mail now (argv as cmd_report's). */
int cmd_report_send(struct ctl *ctl, int argc, char **argv);
/* cmd-deploy.c */
struct cJSON;
int cmd_set(struct ctl *ctl, int argc, char **argv);
int cmd_deploy(struct ctl *ctl, int argc, char **argv);
/*
 * Takes the settings options (--deploy-files, --deploy-pfx,
 * --pfx-password-file, --deploy-hook, --failure-hook, --auto-renew,
 * --renew-before-days; with set_only also --remove-target, --clear-deploy,
 * --no-deploy-hook, --no-failure-hook) out of argv into *out (NULL when none).
 * 0 or EXIT_USAGE.
 */
int cmd_settings_extract(const char *cmd, int *argc, char **argv, int set_only,
                         struct cJSON **out);
/* Sends them for name (prints them when print); 0 or the exit code. */
int cmd_settings_apply(struct ctl *ctl, const char *name, const struct cJSON *settings, int print);
#define CMD_SETTINGS_HELP                                                                         \
    "  --deploy-files DIR write cert.pem, chain.pem, fullchain.pem, privkey.pem there after\n"    \
    "                     each new version (repeatable)\n"                                        \
    "  --deploy-pfx FILE  write a PKCS#12 file there after each new version (repeatable)\n"       \
    "  --pfx-password-file F  password of the --deploy-pfx files (read by the agent)\n"           \
    "  --deploy-store STORE  Windows: import each new version with its key into\n"                \
    "                     LocalMachine\\STORE (e.g. MY) as \"certagent NAME\"; the previous\n"    \
    "                     version leaves the store, intermediates go to LocalMachine\\CA\n"       \
    "  --deploy-binding IP:PORT  Windows: then point the http.sys SSL binding IP:PORT\n"          \
    "                     (0.0.0.0:443, [::]:443) at it, keeping its app id and flags;\n"         \
    "                     needs --deploy-store (or the config's windows_store)\n"                 \
    "  --store-keep-previous  leave the previous version in the --deploy-store store\n"           \
    "  --store-exportable     import the key exportable (default: not exportable)\n"              \
    "  --deploy-hook CMD  shell command run after each new version is deployed\n"                 \
    "  --failure-hook CMD shell command run after each failed renewal\n"                          \
    "  --auto-renew yes|no|default  renew automatically (default: ACME yes, self-signed no;\n"    \
    "                     imported: never, yes is refused)\n"                                     \
    "  --renew-before-days N  renew N days before expiry (0: the agent's rule)\n"                 \
    "  --check-served URL after each deploy and every served_check_interval, check that\n"        \
    "                     URL (https://, imaps://, smtp+starttls://, tls://HOST:PORT, ...)\n"     \
    "                     serves the current version (repeatable)\n"                              \
    "  --served-sni NAME  the server name to send to the --check-served URL just before\n"        \
    "                     (default: the URL's host; none for an address)\n"                       \
    "  --no-check-served URL  stop checking URL\n"                                                \
    "  --shared / --no-shared  share it with the agent's fleet: each new version goes to\n"       \
    "                     etcd for the other nodes (docs/fleet.md) / stop sharing it\n"           \
    "  --fallback-ca CA   when its own CA keeps failing, try CA (repeatable, in order;\n"         \
    "                     default: fallback_cas from the config)\n"                               \
    "  --no-fallback-ca   no fallback CA for this certificate\n"                                  \
    "  --on-expiry keep|selfsigned|default  when renewal fails just before expiry, keep\n"        \
    "                     the certificate or deploy a self-signed stand-in\n"

/* cmd-deploy.c: show's lines for the served check (the reply's "served" array). */
void cmd_show_served(const cJSON *served);

/* cmd-certbot.c: import --from-certbot DIR (deploy: keep DIR/live/NAME current). */
int cmd_import_certbot(struct ctl *ctl, const char *dir, int deploy);

/* cmd-acme.c */
int cmd_request(struct ctl *ctl, int argc, char **argv);
int cmd_renew(struct ctl *ctl, int argc, char **argv);
int cmd_revoke(struct ctl *ctl, int argc, char **argv);
int cmd_ca(struct ctl *ctl, int argc, char **argv);
int cmd_account(struct ctl *ctl, int argc, char **argv);
int cmd_trust(struct ctl *ctl, int argc, char **argv);
int cmd_verify(struct ctl *ctl, int argc, char **argv);
int cmd_probe(struct ctl *ctl, int argc, char **argv);
/* cmd-fleet.c */
int cmd_fleet(struct ctl *ctl, int argc, char **argv);
/* cmd-fleet-view.c: fleet status, fleet nodes (argv[1] says which). */
int cmd_fleet_view(struct ctl *ctl, int argc, char **argv);
/* cmd-status.c (cmd_status is there too) */
int cmd_metrics(struct ctl *ctl, int argc, char **argv);
int cmd_logs(struct ctl *ctl, int argc, char **argv);
/* cmd-report.c */
int cmd_report(struct ctl *ctl, int argc, char **argv);

/* cmd-trust.c: prints the chain and problems of a verify report. */
void cmd_print_chain(const cJSON *verify, const char *indent);
/* cmd-probe.c: a table of probe results (status and probe). */
void cmd_print_probes(const cJSON *results);

#endif
