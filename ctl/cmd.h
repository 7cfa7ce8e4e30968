/*
 * certctl's command table and what every command shares.  Each command is a
 * small function that builds one request and renders its reply, as a table
 * for people or as JSON with --json.
 */
#ifndef CERTCTL_CMD_H
#define CERTCTL_CMD_H

#include <stddef.h>

#include "client.h"
#include "err.h"

/* Exit codes (certctl(1)). */
#define EXIT_AGENT_ERROR 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
/* verify or probe ran and found a problem. */
#define EXIT_CHECK_FAILED 4

struct ctl {
    const char *socket;  /* --socket or CERTAGENT_SOCKET; NULL: defaults */
    int json;
    struct client client;
    int connected;
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
/* Prints a command's usage (to stderr when err) and returns EXIT_USAGE. */
int cmd_usage(const struct cmd *cmd, int err);
/* Prints "certctl NAME: message" and the usage line; returns EXIT_USAGE. */
int cmd_usage_error(const char *name, const char *fmt, ...) ERR_PRINTF(2, 3);

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
int cmd_read_input(const char *path, size_t max, unsigned char **out, size_t *len,
                   char **cause);
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
/* cmd-acme.c */
int cmd_request(struct ctl *ctl, int argc, char **argv);
int cmd_renew(struct ctl *ctl, int argc, char **argv);
int cmd_revoke(struct ctl *ctl, int argc, char **argv);
int cmd_ca(struct ctl *ctl, int argc, char **argv);
int cmd_account(struct ctl *ctl, int argc, char **argv);
int cmd_trust(struct ctl *ctl, int argc, char **argv);
int cmd_verify(struct ctl *ctl, int argc, char **argv);
int cmd_probe(struct ctl *ctl, int argc, char **argv);
/* cmd-status.c (cmd_status is there too) */
int cmd_metrics(struct ctl *ctl, int argc, char **argv);
int cmd_logs(struct ctl *ctl, int argc, char **argv);

/* cmd-trust.c: prints the chain and problems of a verify report. */
void cmd_print_chain(const cJSON *verify, const char *indent);
/* cmd-probe.c: a table of probe results (status and probe). */
void cmd_print_probes(const cJSON *results);

#endif
