#include "cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cliopt.h"
#include "err.h"
#include "fsutil.h"
#include "output.h"
#include "paths.h"

const struct cmd cmd_table[] = {
    {"status", "[--check]",
     "health OK/WARNING/CRITICAL and a dashboard of every certificate with its warnings",
     "  --check            one line for monitoring (Nagios plugin convention); exit status\n"
     "                     0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (agent unreachable)\n"
     "  --json             the whole report: health, counts, and per certificate its\n"
     "                     renewal state and warnings {code, level, message, ...}\n",
     cmd_status},
    {"list", "", "list the certificates in the store", "", cmd_list},
    {"show", "NAME [--version N]", "details of a certificate: subject, SANs, chain, history",
     "  --version N        show version N instead of the current one\n", cmd_show},
    {"selfsigned", "NAME --dns D [--dns D2 ...] [--ip ADDR ...] [--key TYPE] [--days N]",
     "create a new self-signed version of NAME",
     "  --dns D            a DNS name (repeatable); the first becomes the common name\n"
     "  --ip ADDR          an IPv4 or IPv6 address (repeatable)\n"
     "  --key TYPE         ec256 (default), ec384, rsa2048, rsa3072, rsa4096, ed25519\n"
     "  --days N           validity in days, 1 to 3650 (default 365, or "
     "selfsigned_days)\n" CMD_SETTINGS_HELP,
     cmd_selfsigned},
    {"import",
     "NAME --cert FILE [--key FILE] [--chain FILE] | NAME --pfx FILE "
     "[--password-file F] | NAME --from-store THUMBPRINT [--store STORE] | "
     "--from-certbot [DIR] [--no-deploy]",
     "import a certificate (PEM, DER or PKCS#12) as a new version of NAME",
     "  --cert FILE        the certificate, PEM or DER; extra PEM certificates are the chain\n"
     "  --key FILE         its private key, PEM or DER (may be inside --cert)\n"
     "  --chain FILE       intermediate certificates, PEM\n"
     "  --pfx FILE         a PKCS#12 (.pfx/.p12) file with key, certificate and chain\n"
     "  --password-file F  password of the PFX file or of an encrypted key (first line)\n"
     "  --from-store T     Windows: the certificate of thumbprint T in LocalMachine\\STORE\n"
     "                     with its private key, which must be exportable (read by the agent)\n"
     "  --store STORE      the store of --from-store (default MY)\n"
     "  --from-certbot [DIR]  take over every certbot lineage in DIR (/etc/letsencrypt):\n"
     "                     certificate, key, CA, key type and account; certagent renews them\n"
     "                     and keeps DIR/live/NAME/ current (--no-deploy: leave it "
     "alone)\n" CMD_SETTINGS_HELP,
     cmd_import},
    {"export", "NAME --format pem|pfx --out PATH [--password-file F] [--version N] [--no-key]",
     "write a certificate with its chain and private key to a file",
     "  --format pem|pfx   pem: certificate, chain and key in one file; pfx: PKCS#12\n"
     "  --out PATH         where to write (mode 0600 when it holds the key)\n"
     "  --password-file F  password for the PFX file (first line; default: empty)\n"
     "  --version N        export version N instead of the current one\n"
     "  --no-key           leave the private key out\n",
     cmd_export},
    {"remove", "NAME", "remove a certificate and all its versions", "", cmd_remove},
    {"rollback", "NAME [--to VERSION]", "make an earlier version current again",
     "  --to VERSION       the version to make current (default: the one before)\n", cmd_rollback},
    {"request",
     "NAME --dns D [--dns D2 ...] [--ip ADDR ...] [--ca CA] [--key TYPE] "
     "[--challenge C] [--preferred-chain CN] [--profile P | --require-profile P] "
     "[--agree-tos] [--email E] [--tag TAG ...]",
     "get a certificate for NAME from an ACME CA (Let's Encrypt, ...)",
     "  --dns D            a DNS name (repeatable); *.example.com needs dns-01\n"
     "  --ip ADDR          an IP address (repeatable; http-01 or tls-alpn-01)\n"
     "  --ca CA            the CA (default: default_ca from the config; see certctl ca list)\n"
     "  --key TYPE         certificate key: ec256 (default), ec384, rsa2048, rsa3072, rsa4096\n"
     "  --challenge C      http-01 (default), dns-01 (runs dns01_hook) or tls-alpn-01\n"
     "  --preferred-chain CN  prefer the chain whose issuer or root is named CN\n"
     "  --profile P        ask for profile P; falls back to the default with a warning\n"
     "  --require-profile P  ask for profile P and fail when the CA does not offer it\n"
     "  --agree-tos        agree to the CA's terms of service (registers an account)\n"
     "  --email E          contact address for a new account\n"
     "  --tag TAG          with --shared: only the fleet's nodes with this tag take it\n"
     "                     (repeatable)\n" CMD_SETTINGS_HELP,
     cmd_request},
    {"set",
     "NAME [--deploy-files DIR] [--deploy-pfx FILE] [--deploy-store STORE] "
     "[--deploy-hook CMD] ...",
     "show or change a certificate's deploy targets, hooks and renewal settings",
     CMD_SETTINGS_HELP
     "  --remove-target P  stop deploying to the directory, PFX file or store P\n"
     "  --clear-deploy     remove every deploy target\n"
     "  --no-deploy-hook   remove the deploy hook\n"
     "  --no-failure-hook  remove the failure hook\n"
     "  --default-fallback-ca  use the config's fallback_cas again\n"
     "  Adding a target deploys the current version to it at once.\n",
     cmd_set},
    {"deploy", "NAME [--wait-served]", "deploy the current version again and run the deploy hooks",
     "  --wait-served      then wait until every --check-served URL serves it (at most\n"
     "                     served_grace); exit status 1 naming what each one serves if not\n",
     cmd_deploy},
    {"renew", "NAME | --all [--force]", "renew a certificate now (or every one that is due)",
     "  --all              every certificate the agent renews (ACME, and self-signed with\n"
     "                     auto renew) whose renewal time has come\n"
     "  --force            renew even when not due; with NAME also a self-signed\n"
     "                     certificate that is not set to auto renew\n",
     cmd_renew},
    {"revoke", "NAME [--reason R]", "revoke the current version of NAME at its CA",
     "  --reason R         unspecified, keyCompromise, affiliationChanged, superseded,\n"
     "                     cessationOfOperation or privilegeWithdrawn\n",
     cmd_revoke},
    {"ca", "add NAME --directory URL [--trust FILE] | list | remove NAME [--force]",
     "the ACME CAs the agent knows: add, list, remove",
     "  built in: letsencrypt, letsencrypt-staging, zerossl, google, buypass\n"
     "  --directory URL    the CA's ACME directory URL\n"
     "  --trust FILE       PEM certificates trusted for the CA's HTTPS endpoint (test and\n"
     "                     private CAs; default: the system store)\n"
     "  --force            remove a CA that certificates renew with (refused without it)\n"
     "  A removed CA's account is kept: ca add with the same name uses it again.\n",
     cmd_ca},
    {"account",
     "register [--ca CA] [--email E] [--eab-kid K --eab-hmac-file F] [--key TYPE] "
     "--agree-tos | show | rollover [--key TYPE] | deactivate  [--ca CA]",
     "the ACME account at a CA",
     "  --ca CA            the CA (default: default_ca)\n"
     "  --email E          contact address\n"
     "  --eab-kid K        External Account Binding key id (ZeroSSL, Google, ...)\n"
     "  --eab-hmac-file F  file holding the EAB HMAC key (base64url, first line)\n"
     "  --key TYPE         account key: ec256 (ES256, default), ec384, rsa2048 (RS256)\n"
     "  --agree-tos        agree to the CA's terms of service (required to register)\n",
     cmd_account},
    {"canary", "run [CA] | status",
     "the staging canaries: a complete order at each CA's staging directory, thrown away",
     "  run [CA]           run the canary of CA (default: every configured one) now and\n"
     "                     wait for it; exit status 1 when one fails (the step and the\n"
     "                     CA's words are printed; status shows ca_canary_failing)\n"
     "  status             each canary's state (ok, failing, never), last run, duration,\n"
     "                     next run and the step that failed\n"
     "  --json             {canaries: [{ca, name, directory, challenge, every, deadline,\n"
     "                     state, running, last_run, last_success, next_run, duration_ms,\n"
     "                     step, error}]}\n"
     "  Canaries are set in the config's \"canaries\" (docs/resilience.md).\n",
     cmd_canary},
    {"version", "", "versions of certctl, the agent and the protocol", "", cmd_version},
    {"ping", "", "check that the agent answers", "", cmd_ping},
    {"trust", "add FILE [--intermediate] | list | remove FINGERPRINT | show [FINGERPRINT]",
     "manage the trust anchors and intermediates the agent keeps",
     "  add FILE           trust the root(s) in FILE (PEM or DER), or a self-signed\n"
     "                     certificate as an anchor for itself; with --intermediate, keep\n"
     "                     the CA certificate(s) as intermediates for chain building;\n"
     "                     what is trusted already is skipped (exit status 0)\n"
     "  list               the trusted roots and intermediates\n"
     "  remove FINGERPRINT remove one (SHA-256, colons optional, 8 or more hex digits)\n"
     "  show [FINGERPRINT] the trust store's settings, or one certificate with its PEM\n",
     cmd_trust},
    {"fleet", "keygen FILE | status | nodes | forget NODE",
     "what a node of a fleet (certificates shared through etcd) does",
     "  keygen FILE        write a new fleet key (32 random bytes, mode 0600) to FILE, which\n"
     "                     must not exist; copy it to every node as cluster.fleet_key_file\n"
     "  status             the fleet from etcd: every node (up, or gone when its lease\n"
     "                     expired) and every fleet certificate by node (vN: the fleet's\n"
     "                     version, BEHIND: an older one or its deploy fails, -: missing)\n"
     "  nodes              the nodes only: host, agent version, health, last status\n"
     "  forget NODE        take a node that is gone (retired) off the fleet's view: its last\n"
     "                     status is deleted from etcd; refused while the node is up\n",
     cmd_fleet},
    {"verify", "NAME | --cert FILE [--host H] [--purpose server|client]",
     "build and check the chain of a certificate, naming any bad or missing link",
     "  NAME               the current version of a certificate in the store\n"
     "  --cert FILE        a certificate file (PEM or DER; more PEM certificates: the chain)\n"
     "  --host H           check that the certificate is valid for host name or address H\n"
     "  --purpose P        server (default) or client\n"
     "Exit status 4 when the chain is not trusted.\n",
     cmd_verify},
    {"probe",
     "URL... [--urls-from FILE] [--timeout S] [--min-tls V] [--concurrency N] "
     "[--chain]",
     "check remote TLS servers: version, cipher, chain, host name, expiry, policy",
     "  URL                https://, imaps:// (993), pop3s:// (995), smtps:// (465),\n"
     "                     ldaps:// (636), imap+starttls:// (143), pop3+starttls:// (110),\n"
     "                     smtp+starttls:// (25) or tls://HOST:PORT\n"
     "  --urls-from FILE   more URLs, one a line (# starts a comment)\n"
     "  --timeout S        seconds per probe (default probe_timeout, 10)\n"
     "  --min-tls V        oldest TLS version the policy allows: 1.0..1.3 (default 1.2)\n"
     "  --concurrency N    connections at once (at most probe_concurrency, 256)\n"
     "  --chain            print the chain of every server (always for one URL)\n"
     "Exit status 4 when a probe failed or found a problem.\n",
     cmd_probe},
    {"metrics", "", "the agent's metrics in Prometheus text format (as GET /metrics serves them)",
     "", cmd_metrics},
    {"logs", "[--follow] [--name NAME] [--lines N] [--level L]",
     "recent log lines from the agent's memory (the last log_ring_lines)",
     "  --follow, -f       keep printing new lines as they come (Ctrl-C ends)\n"
     "  --name NAME        only lines about certificate NAME: lines that hold 'NAME' in\n"
     "                     quotes or NAME as a whole word\n"
     "  --lines N          the last N matching lines (default 100; 0 with --follow: only new)\n"
     "  --level L          error, warn, info or debug: that level and more severe\n"
     "  --json             one JSON object per line: {seq, time, level, text}\n",
     cmd_logs},
    {"notify", "test [--channel email|webhook] | status",
     "alerts: send a test message, or show the spool and each channel's last delivery",
     "  test               send a test message now through every channel (or one) and\n"
     "                     print each server's reply; exit status 1 when one failed\n"
     "  --channel C        email or webhook (default: every configured channel)\n"
     "  status             the messages waiting in the spool, the last delivery and error\n"
     "                     per channel, notify_failing, and acknowledged problems\n",
     cmd_notify},
    {"ack", "NAME [CODE]", "acknowledge an open problem: its reminders stop until it changes",
     "  NAME               the certificate\n"
     "  CODE               one warning code (e.g. expiring); default: every open warning\n"
     "  The acknowledgement lasts until the problem changes or clears (notify status).\n",
     cmd_ack},
    {"report", "[--send]",
     "the status report for a person: every certificate worst first, with its warnings",
     "  --send             e-mail it now (text and HTML) through notify.email, spooled\n"
     "  --json             {subject, text}; with --send {subject, spooled}\n",
     cmd_report},
    {"help", "[COMMAND]", "the list of commands, or one command's usage and options",
     "  COMMAND            the command to explain (also: certctl COMMAND --help)\n"
     "  --json             {usage, commands: [{name, usage, summary, options}]}\n",
     cmd_help},
};
const size_t cmd_count = sizeof(cmd_table) / sizeof(cmd_table[0]);

const struct cmd *
cmd_find(const char *name)
{
    for (size_t i = 0; i < cmd_count; i++) {
        if (strcmp(cmd_table[i].name, name) == 0)
            return &cmd_table[i];
    }
    return NULL;
}

/* One command's entry in help's JSON. */
static cJSON *
cmd_json(const struct cmd *cmd)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "name", cmd->name);
    cJSON_AddStringToObject(o, "usage", cmd->usage);
    cJSON_AddStringToObject(o, "summary", cmd->summary);
    cJSON_AddStringToObject(o, "options", cmd->help);
    return o;
}

/* help's JSON: {"usage", "commands": [...]} of one command or of all (cmd NULL). */
static void
print_help_json(const struct cmd *cmd)
{
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();

    cJSON_AddStringToObject(o, "usage", "certctl [--socket PATH] [--json] COMMAND [ARGS...]");
    for (size_t i = 0; i < cmd_count; i++) {
        if (cmd == NULL || cmd == &cmd_table[i])
            cJSON_AddItemToArray(arr, cmd_json(&cmd_table[i]));
    }
    cJSON_AddItemToObject(o, "commands", arr);
    output_json(o);
    cJSON_Delete(o);
}

int
cmd_usage(const struct cmd *cmd, int err)
{
    FILE *f = err ? stderr : stdout;

    if (!err && output_json_mode_on()) {
        print_help_json(cmd);
        return 0;
    }
    fprintf(f, "usage: certctl [--socket PATH] [--json] %s %s\n", cmd->name, cmd->usage);
    fprintf(f, "%s\n", cmd->summary);
    if (cmd->help[0] != '\0')
        fprintf(f, "\n%s", cmd->help);
    if (err) {
        char usage[512];

        snprintf(usage, sizeof(usage), "certctl %s %s", cmd->name, cmd->usage);
        output_error("E_USAGE", "wrong arguments; see the usage", usage, NULL);
    }
    return err ? EXIT_USAGE : 0;
}

void
cmd_usage_all(FILE *f)
{
    if (f == stdout && output_json_mode_on()) {
        print_help_json(NULL);
        return;
    }
    fprintf(f, "usage: certctl [--socket PATH] [--json] COMMAND [ARGS...]\n"
               "       certctl help [COMMAND] | --version\n\n"
               "Commands:\n");
    for (size_t i = 0; i < cmd_count; i++)
        fprintf(f, "  %-11s %s\n", cmd_table[i].name, cmd_table[i].summary);
    fprintf(
        f,
        "\nOptions:\n"
        "  --socket PATH  the agent's socket (also CERTAGENT_SOCKET)\n"
        "  --json         machine-readable output: one JSON object on stdout, errors\n"
        "                 included ({\"ok\": false, \"error\": {...}}; fields in certctl(1))\n\n"
        "Rights (each includes those above it; a command without its right: E_DENIED):\n"
        "  read     anyone who can connect: status, list, show, version, ping, report\n"
        "  operate  root, the agent's user, the socket's group, operate_group:\n"
        "           probe, verify, logs, metrics, trust list|show, ca list, account show\n"
        "  change   root, the agent's user, the socket's group: every other command\n\n"
        "Exit codes: 0 ok, 1 the agent reported an error, 2 usage error,\n"
        "3 the agent is not reachable, 4 verify or probe found a problem.\n"
        "'certctl help COMMAND' shows a command's "
        "options.\n"
        "Documentation: certctl(1), and the guides in /usr/share/doc/certagent/.\n");
}

int
cmd_help(struct ctl *ctl, int argc, char **argv)
{
    const struct cmd *cmd = NULL;
    int i;

    (void)ctl;
    for (i = 1; i < argc && strcmp(argv[i], "--json") == 0; i++)
        ;
    if (i >= argc) {
        cmd_usage_all(stdout);
        return 0;
    }
    if (argv[i][0] == '-' || (cmd = cmd_find(argv[i])) == NULL) {
        fprintf(stderr, "certctl: unknown command '%s'; 'certctl help' lists them\n", argv[i]);
        output_error("E_USAGE", "unknown command; 'certctl help' lists them", argv[i], NULL);
        return EXIT_USAGE;
    }
    return cmd_usage(cmd, 0);
}

int
cmd_usage_error(const char *name, const char *fmt, ...)
{
    const struct cmd *cmd = cmd_find(name);
    char msg[1024], usage[512] = "";
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "certctl %s: %s\n", name, msg);
    if (cmd != NULL) {
        snprintf(usage, sizeof(usage), "certctl %s %s", cmd->name, cmd->usage);
        fprintf(stderr, "usage: %s\n", usage);
    }
    output_error("E_USAGE", msg, usage[0] != '\0' ? usage : NULL, NULL);
    return EXIT_USAGE;
}

int
cmd_opt(int argc, char **argv, int *i, const char *name, const char **out)
{
    return cliopt_value(argc, argv, i, name, out);
}

long
cmd_parse_count(const char *s, long max)
{
    long v = 0;

    if (s == NULL || *s == '\0')
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > max)
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v > max ? -1 : v;
}

int
cmd_read_input(const char *path, size_t max, unsigned char **out, size_t *len, char **cause)
{
    char *inner = NULL;
    int rc = fsutil_read_file(path, max, out, len, &inner);

    if (rc == -E_TOO_BIG)
        err_set(cause, "%s is larger than %zu bytes: not a certificate, key or PFX file", path,
                max);
    else if (rc != 0)
        err_set(cause, "%s", inner != NULL ? inner : err_message(rc));
    /* The callers give up (exit 2) on a file they cannot read. */
    if (rc != 0)
        output_error(err_name(rc), *cause != NULL ? *cause : err_message(rc), path, NULL);
    free(inner);
    return rc;
}

void
cmd_free_secret(char *s)
{
    if (s == NULL)
        return;
    memset(s, 0, strlen(s));
    free(s);
}

int
cmd_read_password(const char *path, char **out, char **cause)
{
    unsigned char *data = NULL;
    size_t len = 0, n;
    int rc;

    if ((rc = cmd_read_input(path, 64 * 1024, &data, &len, cause)) != 0)
        return rc;
    for (n = 0; n < len && data[n] != '\n' && data[n] != '\r'; n++)
        ;
    if (n > 1024) {
        err_set(cause, "the password in %s is longer than 1024 bytes", path);
        rc = -E_BAD_INPUT;
        output_error(err_name(rc), *cause != NULL ? *cause : err_message(rc), path, NULL);
    } else {
        data[n] = '\0';
        if ((*out = strdup((char *)data)) == NULL)
            rc = -E_NOMEM;
    }
    memset(data, 0, len);
    free(data);
    return rc;
}

/* How to start the agent, in two halves (the text puts a line break between them). */
#define START_HINT_AGENT                                                                          \
    "Start the agent with 'certagent' (as root: 'systemctl start certagent' or 'certagent "       \
    "--daemon --pid-file /run/certagent.pid')"
#define START_HINT_SOCKET "or point certctl at its socket with --socket PATH or CERTAGENT_SOCKET"

/* --json's error when no agent answers: the sockets tried, each with why. */
static void
record_unreachable(const char *const *tried, char *const *causes, size_t ntried)
{
    cJSON *extra = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    char detail[1024] = "";
    size_t used = 0;

    for (size_t i = 0; i < ntried; i++) {
        cJSON *s = cJSON_CreateObject();
        const char *why = causes[i] != NULL ? causes[i] : "?";
        int n;

        cJSON_AddStringToObject(s, "path", tried[i]);
        cJSON_AddStringToObject(s, "error", why);
        cJSON_AddItemToArray(arr, s);
        n = snprintf(detail + used, sizeof(detail) - used, "%s%s (%s)", used ? "; " : "", tried[i],
                     why);
        if (n > 0 && (size_t)n < sizeof(detail) - used)
            used += (size_t)n;
    }
    cJSON_AddItemToObject(extra, "sockets", arr);
    output_error(err_name(-E_UNAVAILABLE),
                 "cannot reach certagent. " START_HINT_AGENT ", " START_HINT_SOCKET ".", detail,
                 extra);
}

int
ctl_connect(struct ctl *ctl)
{
    struct paths user, sys;
    const char *tried[2];
    char *causes[2] = {NULL, NULL};
    size_t ntried = 0;
    int rc = -E_UNAVAILABLE;

    if (ctl->connected)
        return 0;
    memset(&user, 0, sizeof(user));
    memset(&sys, 0, sizeof(sys));
    if (ctl->socket != NULL) {
        tried[ntried++] = ctl->socket;
    } else {
        if (paths_default(&user) != 0 || paths_system(&sys) != 0) {
            fprintf(stderr, "certctl: out of memory\n");
            return EXIT_UNREACHABLE;
        }
        tried[ntried++] = user.socket;
        if (!user.system)
            tried[ntried++] = sys.socket;
    }
    for (size_t i = 0; i < ntried; i++) {
        rc = client_open(&ctl->client, tried[i], &causes[i]);
        /* Progress is for a person watching a terminal. */
        ctl->client.show_progress = !ctl->json && isatty(2);
        if (rc == 0)
            break;
        client_close(&ctl->client);
        if (rc != -E_UNAVAILABLE)
            break;
    }
    if (rc == 0) {
        ctl->connected = 1;
    } else if (rc == -E_UNAVAILABLE) {
        fprintf(stderr, "certctl: cannot reach certagent; looked at:\n");
        for (size_t i = 0; i < ntried; i++)
            fprintf(stderr, "  %s (%s)\n", tried[i], causes[i] != NULL ? causes[i] : "?");
        fprintf(stderr, "%s,\n%s.\n", START_HINT_AGENT, START_HINT_SOCKET);
        record_unreachable(tried, causes, ntried);
    } else {
        for (size_t i = 0; i < ntried; i++) {
            if (causes[i] != NULL) {
                char msg[1024];

                fprintf(stderr, "certctl: %s: %s\n", tried[i], causes[i]);
                snprintf(msg, sizeof(msg), "%s: %s", tried[i], causes[i]);
                output_error(err_name(rc), msg, NULL, NULL);
            }
        }
    }
    free(causes[0]);
    free(causes[1]);
    paths_free(&user);
    paths_free(&sys);
    return rc == 0 ? 0 : EXIT_UNREACHABLE;
}

int
ctl_call(struct ctl *ctl, struct proto_writer *w, struct reply *reply)
{
    char *cause = NULL;
    int rc;

    rc = client_request_finish(&ctl->client, w, reply, &cause);
    if (rc != 0) {
        fprintf(stderr, "certctl: %s\n", cause != NULL ? cause : err_message(rc));
        output_error(err_name(rc), cause != NULL ? cause : err_message(rc), NULL, NULL);
        free(cause);
        return rc == -E_TOO_BIG ? EXIT_USAGE : EXIT_UNREACHABLE;
    }
    if (reply->ok)
        return 0;
    /* The message already says the CA's problem in words; its raw document (detail) goes
     * only into --json's "detail", printed as {"ok": false, "error": {...}} when certctl
     * exits. */
    fprintf(stderr, "certctl: %s [%s]\n", reply->message != NULL ? reply->message : "error",
            reply->code);
    (void)ctl;
    output_error(reply->code, reply->message != NULL ? reply->message : "", reply->detail, NULL);
    return EXIT_AGENT_ERROR;
}
