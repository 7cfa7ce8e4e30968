/*
 * Challenges behind a load balancer (docs/fleet.md): the node that orders a
 * shared name puts each answer under /certagent/FLEET/challenges/KEY (KEY:
 * the http-01 token, or "alpn/" and the SNI of a tls-alpn-01 identifier;
 * value: what acme.h's token_put says, bound to the node's lease) before it
 * triggers the challenge, and deletes it after the order; every node's
 * responders look up what they do not serve there, on demand (no cache that
 * could miss the CA's first request).
 *
 * Loop thread only.
 */
#ifndef CERTAGENT_FLEET_CHALLENGE_H
#define CERTAGENT_FLEET_CHALLENGE_H

struct fleet;

/*
 * Puts key (see above) = value; done(arg, rc) once on the loop unless fleet_token_cancel came
 * first.  NULL when the node is not in the fleet now (nothing to wait for).
 */
void *fleet_token_put(struct fleet *fleet, const char *key, const char *value,
                      void (*done)(void *arg, int rc), void *arg);
void fleet_token_cancel(struct fleet *fleet, void *handle);
/* Deletes key (best effort; it also goes with the node's lease). */
void fleet_token_delete(struct fleet *fleet, const char *key);
/*
 * Looks key up: reply(rarg, value or NULL) once on the loop
 * unless fleet_token_lookup_cancel came first.  NULL when the node is not in
 * the fleet now.
 */
void *fleet_token_lookup(struct fleet *fleet, const char *key,
                         void (*reply)(void *rarg, const char *value), void *rarg);
void fleet_token_lookup_cancel(struct fleet *fleet, void *handle);

#endif
