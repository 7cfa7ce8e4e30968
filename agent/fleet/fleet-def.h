/*
 * Definitions of shared certificates in etcd (docs/fleet.md): certctl
 * request NAME --shared --tag TAG puts under /certagent/FLEET/certs/NAME/def
 * what the certificate is ({"names", "ips", "ca", "key_type", "challenge",
 * "preferred_chain", "profile", "tags"}; no deploy targets or hooks, which
 * stay per node).  A node takes the versions of NAME only when the
 * definition has no tags or shares one with the node's cluster.tags; a
 * definition that is not valid JSON or names a CA the node does not know is
 * logged and ignored.
 *
 * Loop thread only.
 */
#ifndef CERTAGENT_FLEET_DEF_H
#define CERTAGENT_FLEET_DEF_H

#include <stddef.h>

struct fleet;

/* Puts the definition (JSON text) of name (best effort; logged when it fails). */
void fleet_def_put(struct fleet *fleet, const char *name, const char *def_json);
/* Tells the fleet which CAs the node knows (agent.c: acme_ca_known). */
void fleet_set_ca_known(struct fleet *fleet, int (*known)(void *ctx, const char *ca), void *ctx);

/* For fleet.c: a definition's text arrived (catch-up or watch). */
void fleet_def_seen(struct fleet *fleet, const char *name, const char *text, size_t len);
/* For fleet.c: may this node take versions of name (no definition, or a tag matches)? */
int fleet_def_allows(const struct fleet *fleet, const char *name);
void fleet_defs_free(struct fleet *fleet);

#endif
