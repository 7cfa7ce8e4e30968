/*
 * http-01 behind a load balancer (docs/fleet.md): the node that orders a
 * shared name puts each http-01 token under /certagent/FLEET/challenges/TOKEN
 * (value: the key authorization, bound to the node's lease) before it answers
 * the challenge, and deletes it after the order; every node's responder looks
 * a token it does not serve up there, on demand (no cache that could miss the
 * CA's first request).
 *
 * Loop thread only.
 */
#ifndef CERTAGENT_FLEET_CHALLENGE_H
#define CERTAGENT_FLEET_CHALLENGE_H

struct fleet;

/*
 * Puts token; done(arg, rc) once on the loop unless fleet_token_cancel came
 * first.  NULL when the node is not in the fleet now (nothing to wait for).
 */
void *fleet_token_put(struct fleet *fleet, const char *token, const char *keyauth,
                      void (*done)(void *arg, int rc), void *arg);
void fleet_token_cancel(struct fleet *fleet, void *handle);
/* Deletes token (best effort; it also goes with the node's lease). */
void fleet_token_delete(struct fleet *fleet, const char *token);
/*
 * Looks token up: reply(rarg, key authorization or NULL) once on the loop
 * unless fleet_token_lookup_cancel came first.  NULL when the node is not in
 * the fleet now.
 */
void *fleet_token_lookup(struct fleet *fleet, const char *token,
                         void (*reply)(void *rarg, const char *keyauth), void *rarg);
void fleet_token_lookup_cancel(struct fleet *fleet, void *handle);

#endif
