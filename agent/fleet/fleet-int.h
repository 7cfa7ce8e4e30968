/*
 * Inside the fleet service: what fleet.c lends the other files of agent/fleet
 * (lock.c) and what they lend fleet.c.  Loop thread only.
 */
#ifndef CERTAGENT_FLEET_INT_H
#define CERTAGENT_FLEET_INT_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct deploy;
struct env;
struct etcd;
struct fleet_defs;
struct fleet;
struct fleet_locks;
struct fleet_record;
struct store;

/* fleet.c */
struct etcd *fleet_etcd(const struct fleet *fleet);
/* The node's lease once it joined (0 before, and after fleet_stop). */
int64_t fleet_lease_id(const struct fleet *fleet);
const char *fleet_prefix(const struct fleet *fleet);
const char *fleet_node(const struct fleet *fleet);
struct fleet_locks **fleet_locks_slot(struct fleet *fleet);
struct fleet_defs **fleet_defs_slot(struct fleet *fleet);
const struct env *fleet_env(const struct fleet *fleet);
/* Does the node know CA ca (fleet_set_ca_known; yes when nobody said)? */
int fleet_ca_known(const struct fleet *fleet, const char *ca);
/* Orders name from its definition through fleet_set_def_order's function (fleet-def.h). */
int fleet_order_def(struct fleet *fleet, const char *name, const char *def_json,
                    void (*done)(void *arg, int rc), void *arg, char **cause);
struct store *fleet_store(const struct fleet *fleet);
struct deploy *fleet_deploy(const struct fleet *fleet);
/* Is a publication of name on its way? */
int fleet_publishing(const struct fleet *fleet, const char *name);
/* A record's text of name as if the watch had brought it. */
void fleet_take_record(struct fleet *fleet, const char *name, const char *text, size_t len);
/* Stores rec through commit.store, with {"acme": rec->acme} as meta when the record has it. */
int fleet_commit_with_acme(struct fleet *fleet, const char *name, const struct fleet_record *rec,
                           void (*done)(void *arg, int rc, const char *cause), void *arg,
                           char **cause);

/* lock.c */
/* Adds to a publication's compare array the check that this node still holds the lock. */
void fleet_fence(const struct fleet *fleet, const char *name, struct cJSON *compare);
/* The "acme" object of a meta.json (len bytes) as JSON text (caller frees), or NULL. */
char *fleet_meta_acme(const unsigned char *meta, size_t len);
/* A version taken from the fleet makes name shared on this node (its settings). */
void fleet_mark_shared(struct fleet *fleet, const char *name);

#endif
