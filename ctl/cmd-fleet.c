/* certctl fleet: what a node of a fleet (docs/fleet.md) does on its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fleetkey.h"
#include "output.h"

/* fleet keygen FILE: 32 random bytes, 0600, never over an existing file. */
static int
fleet_keygen(struct ctl *ctl, int argc, char **argv)
{
    char *cause = NULL;
    int rc;

    if (argc != 1 || argv[0][0] == '-')
        return cmd_usage_error("fleet", "fleet keygen takes one FILE");
    if ((rc = fleetkey_write(argv[0], &cause)) != 0) {
        fprintf(stderr, "certctl: cannot write the fleet key: %s\n",
                cause ? cause : err_message(rc));
        output_error(err_name(rc), cause ? cause : err_message(rc), NULL, NULL);
        free(cause);
        return EXIT_AGENT_ERROR;
    }
    if (ctl->json) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "file", argv[0]);
        cJSON_AddNumberToObject(o, "bytes", FLEETKEY_LEN);
        output_json(o);
        cJSON_Delete(o);
    } else {
        printf("wrote a new fleet key to %s (%d bytes, mode 0600); copy it to every node of the "
               "fleet as cluster.fleet_key_file\n",
               argv[0], FLEETKEY_LEN);
    }
    return 0;
}

/* fleet forget NODE: the last status of a node that is gone leaves the fleet's view. */
static int
fleet_forget(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    int rc;

    if (argc != 1 || argv[0][0] == '-')
        return cmd_usage_error("fleet", "fleet forget takes one NODE");
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_FLEET_FORGET, 1);
    proto_pack_kv_str(&w.pk, "node", argv[0]);
    if ((rc = ctl_call(ctl, &w, &r)) != 0) {
        reply_free(&r); /* an error's code and words */
        return rc;
    }
    if (ctl->json) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "forgotten", argv[0]);
        output_json(o);
        cJSON_Delete(o);
    } else {
        printf("forgot node %s: its last status is deleted from the fleet's etcd\n", argv[0]);
    }
    reply_free(&r);
    return 0;
}

int
cmd_fleet(struct ctl *ctl, int argc, char **argv)
{
    /* argv[0] is "fleet"; --json was taken by main. */
    if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
        return fleet_keygen(ctl, argc - 2, argv + 2);
    if (argc >= 2 && (strcmp(argv[1], "status") == 0 || strcmp(argv[1], "nodes") == 0))
        return cmd_fleet_view(ctl, argc, argv);
    if (argc >= 2 && strcmp(argv[1], "forget") == 0)
        return fleet_forget(ctl, argc - 2, argv + 2);
    return cmd_usage_error(
        "fleet", "unknown or missing subcommand (keygen FILE, status, nodes, forget NODE)");
}
