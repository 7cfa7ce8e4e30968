/*
 * Exactly one node of the fleet issues a shared name (docs/fleet.md): its
 * order runs under an etcd lock, the key /certagent/FLEET/locks/NAME created
 * in a transaction only when absent (create_revision 0) and bound to the
 * node's lease (15 s, kept alive every 5 s), so that the lock goes by itself
 * when its holder dies.  The transaction that takes the lock also reads
 * certs/NAME/current: the caller learns whether another node produced a
 * version meanwhile (then it takes that one instead of ordering).  The new
 * version is published in a transaction that also checks that the lock key
 * still has the create_revision this node made (fencing); the lock is deleted
 * after that publication, or at once when the order made nothing.
 *
 * Loop thread only.
 */
#ifndef CERTAGENT_FLEET_LOCK_H
#define CERTAGENT_FLEET_LOCK_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct fleet;

/* The fleet's current record of a name, as read with the lock (not opened). */
struct fleet_current {
    const char *serial; /* NULL: etcd has no record of the name */
    int64_t not_after;
    const char *node;
};

/*
 * rc 0: this node holds the lock (fleet_unlock releases it); -E_BUSY:
 * another node holds it (cause names it); -E_UNAVAILABLE: etcd is not
 * reachable or the node has not joined yet (a node does not order a shared
 * name then: no split-brain).  cur is the fleet's current record (borrowed).
 */
typedef void (*fleet_lock_cb)(void *arg, int rc, const char *cause,
                              const struct fleet_current *cur);

/* Is name shared on this node (its settings: certctl set --shared, or a version taken)? */
int fleet_shared(const struct fleet *fleet, const char *name);
/* Asks for the lock of name; cb is called once on the loop (never after fleet_stop). */
int fleet_lock(struct fleet *fleet, const char *name, fleet_lock_cb cb, void *arg, char **cause);
/*
 * The order under the lock ended: the lock is deleted once the new version
 * (if any) is published, else now.  A no-op when this node does not hold it.
 */
void fleet_unlock(struct fleet *fleet, const char *name);
/* Takes the fleet's current record of name now (after a lock showed a newer one). */
void fleet_take_current(struct fleet *fleet, const char *name);

/* For fleet.c: the lock's create_revision when this node holds the lock of name, else 0. */
int64_t fleet_lock_revision(const struct fleet *fleet, const char *name);
/* For fleet.c: the lock key of name ("/certagent/FLEET/locks/NAME") into buf. */
void fleet_lock_key(const struct fleet *fleet, const char *name, char *buf, size_t size);
/* For fleet.c: a publication of name ended; a release asked for meanwhile happens now. */
void fleet_lock_published(struct fleet *fleet, const char *name);
/* For fleet.c: fleet_stop / fleet_free. */
void fleet_locks_stop(struct fleet *fleet);
void fleet_locks_free(struct fleet *fleet);

#endif
