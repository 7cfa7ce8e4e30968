/*
 * Handlers of the trust and probe ops (ops-trust.c): trust-add,
 * trust-remove (file writes in the pool, then the system-store command as a
 * child process through uv_spawn), trust-list, trust-show, verify (chain
 * building in the pool, with AIA fetching when allowed) and probe (the trust
 * context is loaded in the pool, the probes run on the loop and stream
 * progress and one "items" event per result).
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

/* The agent is stopping: probe runs in progress are cut short. */
void ops_trust_stop(struct agent *agent);

#endif
