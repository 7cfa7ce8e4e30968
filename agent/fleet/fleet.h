/*
 * The fleet: several agents share certificates through etcd (docs/fleet.md).
 * With the config's "cluster" key this service joins the fleet at start:
 * it takes a lease (15 s, kept alive), announces the node under
 * /certagent/FLEET/nodes/NODE bound to it, reads every record under
 * /certagent/FLEET/certs/ (catch-up) and then watches them.  A record of a
 * new version is opened with the fleet key (record.c) and stored locally
 * through the commit path as a version of source "fleet" (the serial is the
 * one every node holds), unless the local store already has it or holds a
 * version that expires later.  A record that does not open is refused with a
 * log line naming it, and nothing local changes.
 *
 * Keys under /certagent/FLEET/:
 *   nodes/NODE             {"node", "host", "version", "tags", "started"} (lease)
 *   certs/NAME/current     the newest version's record (record.h), written by
 *                          the node that made it
 *
 * Loop thread only.
 */
#ifndef CERTAGENT_FLEET_H
#define CERTAGENT_FLEET_H

#include <stddef.h>
#include <stdint.h>

struct deploy;
struct env;
struct fleet;
struct store;

/*
 * Stores a version taken from the fleet (full chain, key) as a new version of
 * name with source "fleet": the commit path (ipc/ops-cert.c), handed in by
 * agent.c.  0 when queued, then done(arg, rc, cause) on the loop.
 */
struct fleet_commit {
    /* meta_json ({"acme": {...}}: how the version was ordered, so that this node can renew
     * it under the fleet's lock) or NULL when the record does not say. */
    int (*store)(void *ctx, const char *name, const char *fullchain_pem, const char *key_pem,
                 const char *meta_json, void (*done)(void *arg, int rc, const char *cause),
                 void *arg, char **cause);
    void *ctx;
};

/*
 * A fleet service; without env->config->cluster it does nothing.  deploy
 * says which certificates are shared (certctl set NAME --shared): each new
 * current version of one that this node made (not one taken from the fleet)
 * is published as the fleet's next version of it, in a transaction that
 * fails when another node wrote a version since this one read it.
 */
int fleet_new(const struct env *env, struct store *store, struct deploy *deploy,
              const struct fleet_commit *commit, struct fleet **out, char **cause);
/* Joins the fleet (asynchronously; failures are logged and retried). */
int fleet_start(struct fleet *fleet, char **cause);
/* Revokes the node's lease (best effort) and stops every request. */
void fleet_stop(struct fleet *fleet);
void fleet_free(struct fleet *fleet);

/* Is the agent in a fleet, and is etcd reachable now? */
int fleet_enabled(const struct fleet *fleet);
int fleet_reachable(const struct fleet *fleet);
/* HTTP requests made to etcd so far (benchmarks, metrics). */
uint64_t fleet_etcd_requests(const struct fleet *fleet);
/* The fleet's view (view.h: status in etcd, fleet_behind, fleet_unreachable); NULL: none. */
struct view;
struct view *fleet_view(const struct fleet *fleet);

#endif
