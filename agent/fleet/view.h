/*
 * The fleet's view (docs/fleet.md, "One view of the fleet"): each node
 * publishes a short status of itself under /certagent/FLEET/status/NODE (the
 * host, the agent's version, its health, the fleet's certificates it holds
 * with their serial, expiry and warnings), written 2 s after a change and at
 * most once every 10 s (a burst of changes makes one write; nothing is
 * written while nothing changes, so the idle cost stays the lease's
 * keep-alive).  The key is not bound to the lease: a node whose lease expired
 * is missing from nodes/ but its last status stays, which is how `certctl
 * fleet status` says "gone".
 *
 * It also judges this node against the fleet: etcd unreachable for
 * cluster.fleet_grace seconds (fleet_unreachable) and a fleet certificate
 * whose current version here is older than the fleet's, or whose deploy of
 * the fleet's version fails, for more than VIEW_BEHIND_AFTER seconds
 * (fleet_behind).  The report (report/status.c) reads these through
 * view_cert_state and view_node_state; a change of either publishes
 * EVENT_STATUS_STALE so the report judges again (and notify hears of it).
 *
 * Loop thread only.  The view is made and freed by the fleet (fleet.c).
 */
#ifndef CERTAGENT_FLEET_VIEW_H
#define CERTAGENT_FLEET_VIEW_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct deploy;
struct env;
struct etcd;
struct fleet;
struct store;
struct view;

/* A fleet certificate behind the fleet for longer than this is fleet_behind. */
#define VIEW_BEHIND_AFTER 60

/*
 * The health of this node's certificate name (NULL: of the whole node) as
 * the report judges it: the level (0 ok, 1 warning, 2 critical) and its
 * warning codes, comma-separated, in codes.  Set by agent.c (the report is
 * above the fleet).
 */
typedef int (*view_health_fn)(void *arg, const char *name, char *codes, size_t size);

/* What the fleet hands its view: fixed for the view's life. */
struct view_inputs {
    const struct env *env;
    struct store *store;
    struct deploy *deploy;
    const char *fleet; /* the fleet's name */
    const char *node;  /* this node's name */
    int grace;         /* cluster.fleet_grace */
};

int view_new(const struct view_inputs *in, struct view **out);
/* Starts the timers and subscriptions; etcd is the fleet's client (outlives the view). */
int view_start(struct view *v, struct etcd *etcd);
void view_stop(struct view *v);
void view_free(struct view *v);
void view_set_health(struct view *v, view_health_fn fn, void *arg);

/* The fleet joined (again): the status is written soon. */
void view_joined(struct view *v);
/* The fleet's current record of name (opened): its version, serial and expiry. */
void view_record(struct view *v, const char *name, unsigned version, const char *serial,
                 int64_t not_after, const char *node);

/* fleet_behind of name now; *since, *fleet_version, fleet_serial: the data. */
struct view_cert_state {
    int fleet;     /* a certificate of the fleet (a record seen, or shared) */
    int behind;    /* fleet_behind */
    int64_t since; /* behind since */
    unsigned fleet_version;
    char fleet_serial[128];
    int deploy_failing; /* the serial is the fleet's, but its deploy fails here */
};
void view_cert_state(const struct view *v, const char *name, struct view_cert_state *out);

/* fleet_unreachable now: 1 with *since and the last failure's words in why. */
int view_unreachable(const struct view *v, int64_t *since, char *why, size_t size);

/*
 * `certctl fleet status` / `fleet nodes`: reads nodes/ and status/ from etcd
 * and calls done(arg, rc, cause, doc) once with the JSON document (docs/fleet.md;
 * borrowed for the call).  0 when started.
 */
typedef void (*view_query_fn)(void *arg, int rc, const char *cause, const struct cJSON *doc);
int view_query(struct view *v, view_query_fn done, void *arg, char **cause);

/*
 * `certctl fleet forget NODE`: deletes the last status of a node that is gone
 * (no lease in nodes/), in one transaction that checks it is gone; done(arg,
 * rc, cause) once: 0, -E_BUSY (the node is up), -E_NOT_FOUND (no such node),
 * or etcd's failure.  0 when started; -E_BAD_INPUT for this node's own name or
 * a name that is not a node name.
 */
typedef void (*view_forget_fn)(void *arg, int rc, const char *cause);
int view_forget(struct view *v, const char *node, view_forget_fn done, void *arg, char **cause);

/*
 * Without a cluster key: logs once, at start, that the certificates taken from a
 * fleet or shared with one stay here as local ones.
 */
void view_note_left(struct store *store, struct deploy *deploy);
/* Did name leave the fleet on this node (certctl set NAME --no-shared)? */
int view_left(const struct deploy *deploy, const char *name);
/* A client certificate file that has expired or is not yet valid: a warning naming it. */
void view_check_client_cert(const char *file);

#endif
