/*
 * certctl: talks to certagent.  Global options, then one command from the
 * table in cmd.c.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "version.h"

static void
usage(FILE *f)
{
    fprintf(f, "usage: certctl [--socket PATH] [--json] COMMAND [ARGS...]\n"
               "       certctl help [COMMAND] | --version\n\n"
               "Commands:\n");
    for (size_t i = 0; i < cmd_count; i++)
        fprintf(f, "  %-11s %s\n", cmd_table[i].name, cmd_table[i].summary);
    fprintf(f, "\nOptions:\n"
               "  --socket PATH  the agent's socket (also CERTAGENT_SOCKET)\n"
               "  --json         machine-readable output (field names in certctl(1))\n\n"
               "Rights (each includes those above it; a command without its right: E_DENIED):\n"
               "  read     anyone who can connect: status, list, show, version, ping\n"
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
main(int argc, char **argv)
{
    struct ctl ctl;
    const struct cmd *cmd;
    int i, rc;

    memset(&ctl, 0, sizeof(ctl));
    ctl.socket = getenv("CERTAGENT_SOCKET");
    if (ctl.socket != NULL && ctl.socket[0] == '\0')
        ctl.socket = NULL;
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *v = NULL;
        int r;

        if (strcmp(argv[i], "--json") == 0) {
            ctl.json = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("certctl %s (protocol %d)\n", CERTAGENT_VERSION, PROTO_VERSION);
            return 0;
        } else if ((r = cmd_opt(argc, argv, &i, "--socket", &v)) != 0) {
            if (r < 0) {
                fprintf(stderr, "certctl: --socket needs a path\n");
                return EXIT_USAGE;
            }
            ctl.socket = v;
        } else {
            fprintf(stderr, "certctl: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "help") == 0) {
        if (i + 1 < argc) {
            if ((cmd = cmd_find(argv[i + 1])) == NULL) {
                fprintf(stderr, "certctl: unknown command '%s'\n", argv[i + 1]);
                return EXIT_USAGE;
            }
            return cmd_usage(cmd, 0);
        }
        usage(stdout);
        return 0;
    }
    if ((cmd = cmd_find(argv[i])) == NULL) {
        fprintf(stderr, "certctl: unknown command '%s'\n", argv[i]);
        usage(stderr);
        return EXIT_USAGE;
    }
    for (int j = i + 1; j < argc; j++) {
        if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0)
            return cmd_usage(cmd, 0);
        if (strcmp(argv[j], "--json") == 0)
            ctl.json = 1; /* accepted after the command too */
    }
    {
        int n = argc - i;

        /* request, selfsigned and import take the settings options too. */
        if (strcmp(cmd->name, "request") == 0 || strcmp(cmd->name, "selfsigned") == 0 ||
            strcmp(cmd->name, "import") == 0) {
            if ((rc = cmd_settings_extract(cmd->name, &n, argv + i, 0, &ctl.settings)) != 0)
                return rc;
        }
        rc = cmd->fn(&ctl, n, argv + i);
    }
    cJSON_Delete(ctl.settings);
    if (ctl.connected)
        client_close(&ctl.client);
    return rc;
}
