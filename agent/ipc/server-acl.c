#include "log.h"
#include "server.h"

int
server_acl_may_change(struct client *client, const char *op)
{
    if (platform_peer_may_change(&client->peer, client->server->socket_gid))
        return 1;
    log_warn("refused '%s' from %s (uid %ld, pid %ld): not root, not the agent's user, "
             "not in the socket's group",
             op, client->peer.name, client->peer.uid, client->peer.pid);
    return 0;
}
