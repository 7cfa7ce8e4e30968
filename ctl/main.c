/*
 * certctl: talks to certagent.  Global options, then one command from the
 * table in cmd.c.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "output.h"
#include "version.h"

/* The command line: global options, then one command of the table in cmd.c. */
static int
run(int argc, char **argv, struct ctl *ctl)
{
    const struct cmd *cmd;
    int i;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *v = NULL;
        int r;

        if (strcmp(argv[i], "--json") == 0) {
            ctl->json = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cmd_usage_all(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            if (ctl->json) {
                cJSON *o = cJSON_CreateObject();

                cJSON_AddStringToObject(o, "certctl", CERTAGENT_VERSION);
                cJSON_AddNumberToObject(o, "proto", PROTO_VERSION);
                output_json(o);
                cJSON_Delete(o);
            } else {
                printf("certctl %s (protocol %d)\n", CERTAGENT_VERSION, PROTO_VERSION);
            }
            return 0;
        } else if ((r = cmd_opt(argc, argv, &i, "--socket", &v)) != 0) {
            if (r < 0) {
                fprintf(stderr, "certctl: --socket needs a path\n");
                output_error("E_USAGE", "--socket needs a path", NULL, NULL);
                return EXIT_USAGE;
            }
            ctl->socket = v;
        } else {
            fprintf(stderr, "certctl: unknown option '%s'\n", argv[i]);
            output_error("E_USAGE", "unknown option; 'certctl help' lists the options", argv[i],
                         NULL);
            cmd_usage_all(stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        output_error("E_USAGE", "no command given; 'certctl help' lists them", NULL, NULL);
        cmd_usage_all(stderr);
        return EXIT_USAGE;
    }
    if ((cmd = cmd_find(argv[i])) == NULL) {
        fprintf(stderr, "certctl: unknown command '%s'\n", argv[i]);
        output_error("E_USAGE", "unknown command; 'certctl help' lists them", argv[i], NULL);
        cmd_usage_all(stderr);
        return EXIT_USAGE;
    }
    for (int j = i + 1; j < argc; j++) {
        if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0)
            return cmd_usage(cmd, 0);
    }
    {
        int n = argc - i, rc;

        /* request, selfsigned and import take the settings options too. */
        if (strcmp(cmd->name, "request") == 0 || strcmp(cmd->name, "selfsigned") == 0 ||
            strcmp(cmd->name, "import") == 0) {
            if ((rc = cmd_settings_extract(cmd->name, &n, argv + i, 0, &ctl->settings)) != 0)
                return rc;
        }
        return cmd->fn(ctl, n, argv + i);
    }
}

int
main(int argc, char **argv)
{
    struct ctl ctl;
    int rc;

    memset(&ctl, 0, sizeof(ctl));
    ctl.socket = getenv("CERTAGENT_SOCKET");
    if (ctl.socket != NULL && ctl.socket[0] == '\0')
        ctl.socket = NULL;
    /* --json anywhere (before or after the command): errors of the command line included,
     * the run prints one JSON object. */
    for (int j = 1; j < argc; j++) {
        if (strcmp(argv[j], "--json") == 0)
            ctl.json = 1;
    }
    output_json_mode(ctl.json);
    rc = run(argc, argv, &ctl);
    cJSON_Delete(ctl.settings);
    if (ctl.connected)
        client_close(&ctl.client);
    return output_finish(rc);
}
