/*
 * Who may do what over the socket: the right each op needs (ops.c's table)
 * against the peer's credentials (platform_peer_has_right), and the words of
 * a refusal.  docs/security.md ("Authorization") has the table.
 */
#include <stdio.h>

#include "agent.h"
#include "log.h"
#include "server.h"

const char *
server_acl_right_name(enum peer_right right)
{
    switch (right) {
    case PEER_RIGHT_READ:
        return "read";
    case PEER_RIGHT_OPERATE:
        return "operate";
    case PEER_RIGHT_CHANGE:
        return "change";
    }
    return "?";
}

/* Who has the right, in words: "root, the agent's user and members of ...". */
static void
holders(char *buf, size_t size, enum peer_right right, const char *socket_group,
        const char *operate_group)
{
    if (right == PEER_RIGHT_OPERATE && socket_group != NULL && operate_group != NULL)
        snprintf(buf, size,
                 "root, the agent's user, members of the socket's group '%s' or of "
                 "operate_group '%s'",
                 socket_group, operate_group);
    else if (right == PEER_RIGHT_OPERATE && operate_group != NULL)
        snprintf(buf, size, "root, the agent's user and members of operate_group '%s'",
                 operate_group);
    else if (socket_group != NULL)
        snprintf(buf, size, "root, the agent's user and members of the socket's group '%s'%s",
                 socket_group,
                 right == PEER_RIGHT_OPERATE ? " (operate_group grants it to another group)" : "");
    else
        snprintf(buf, size, "root and the agent's user%s",
                 right == PEER_RIGHT_OPERATE ? " (operate_group grants it to a group)" : "");
}

int
server_acl_allow(struct client *client, uint64_t id, enum peer_right right, const char *op)
{
    const struct config *config = &client->server->agent->config;
    const char *socket_group = client->server->socket_gid >= 0 ? config->socket_group : NULL;
    const char *operate_group = config->operate_group;
    long operate_gid = -1;
    char who[320], message[512];

    if (platform_peer_has_right(&client->peer, right, client->server->socket_gid, -1))
        return 1;
    /*
     * Looked up at each check that needs it (the key is reloadable, and a
     * group that went grants nothing), so root's requests never wait for the
     * group database.
     */
    if (right == PEER_RIGHT_OPERATE && operate_group != NULL &&
        platform_group_id(operate_group, &operate_gid, NULL) == 0 &&
        platform_peer_has_right(&client->peer, right, client->server->socket_gid, operate_gid))
        return 1;
    holders(who, sizeof(who), right, socket_group, operate_group);
    log_warn("refused '%s' from %s (uid %ld, pid %ld): it needs the %s right", op,
             client->peer.name, client->peer.uid, client->peer.pid, server_acl_right_name(right));
    snprintf(message, sizeof(message), "permission denied: '%s' needs the %s right: %s", op,
             server_acl_right_name(right), who);
    server_send_error(client, id, E_DENIED, message);
    return 0;
}
