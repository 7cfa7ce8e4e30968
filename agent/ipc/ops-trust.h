/*
 * Handlers of the trust and probe ops (ops-trust.c): trust-add,
 * trust-remove (file writes in the pool, then the system-store command as a
 * child process through uv_spawn), trust-list, trust-show, verify (chain
 * building in the pool; the AIA fetches it asks for run on the loop between
 * two passes) and probe (the trust context is loaded in the pool, the probes
 * run on the loop and stream progress and one "items" event per result).
 * Verify and probe are capped per connection and in all (E_BUSY beyond).
 */
#ifndef CERTAGENT_OPS_TRUST_H
#define CERTAGENT_OPS_TRUST_H

#include "ops.h"

int ops_trust_add(struct request *req);
int ops_trust_list(struct request *req);
int ops_trust_remove(struct request *req);
int ops_trust_show(struct request *req);
int ops_verify(struct request *req);
int ops_probe(struct request *req);

/* The agent is stopping: probe runs and verifies in progress are cut short. */
void ops_trust_stop(struct agent *agent);
/*
 * The server closed client's connection (it left or was dropped): its
 * probes and verifies stop (connections closed, queued probes dropped, AIA
 * fetches cancelled) and are logged as abandoned.
 */
void ops_trust_client_gone(struct client *client);

#endif
