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
 * A definition is enough for the fleet to hold the certificate: a node it
 * applies to that has no certificate of that name, while the fleet has no
 * record of it (certs/NAME/current), orders it from the definition 2-5 s
 * after seeing it, under the fleet's lock as certctl request NAME --shared
 * does (so that of several such nodes one orders and the others take its
 * version).  While the lock is held by another node or etcd cannot be
 * reached, the node checks again every 30-40 s; after an order failed, every
 * 10-11 minutes.  It stops once it has the certificate, a record of it
 * arrived, the definition was deleted or no longer applies, the name left the
 * fleet on this node (certctl set NAME --no-shared), or the fleet stopped.  A
 * definition the order function refuses (a name that is not a DNS name or an
 * IP address, an unknown key type or challenge) is warned about once and not
 * ordered until it changes.
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

/*
 * Orders name from its definition (def_json: the text from etcd) as certctl
 * request NAME --shared does, under the fleet's lock; set by agent.c
 * (ipc/ops-shared.c).  0 when started: done(arg, rc) then comes once on the
 * loop (rc 0: this node has a version, ordered or taken from the fleet;
 * -E_BUSY: another node holds the lock).  Else the error, and done never
 * comes: -E_BAD_INPUT when the definition is not one to order (cause says
 * why), -E_BUSY or -E_UNAVAILABLE when it is to be tried again later.
 */
typedef int (*fleet_def_order_fn)(void *ctx, const char *name, const char *def_json,
                                  void (*done)(void *arg, int rc), void *arg, char **cause);
void fleet_set_def_order(struct fleet *fleet, fleet_def_order_fn order, void *ctx);

/* For fleet.c: a definition's text arrived (catch-up or watch). */
void fleet_def_seen(struct fleet *fleet, const char *name, const char *text, size_t len);
/* For fleet.c: may this node take versions of name (no definition, or a tag matches)? */
int fleet_def_allows(const struct fleet *fleet, const char *name);
/* For fleet.c: the definition of name was deleted from etcd. */
void fleet_def_gone(struct fleet *fleet, const char *name);
/* For fleet.c, after the keys were read again (the watch's history was compacted): every
 * definition not among names[0..n) was deleted. */
void fleet_defs_sweep(struct fleet *fleet, const char *const *names, size_t n);
/* For fleet.c: a record (certs/NAME/current) of name arrived: the fleet has it. */
void fleet_def_record_seen(struct fleet *fleet, const char *name);
/* For fleet.c: fleet_stop (no more checks) and fleet_free. */
void fleet_defs_stop(struct fleet *fleet);
void fleet_defs_free(struct fleet *fleet);

#endif
