/*
 * What every service of the agent is given when it is made, instead of the
 * whole agent: the loop, the events, the running config, the state
 * directory and the count of thread-pool jobs in flight.  agent.c fills one
 * and hands it down; a unit test fills its own.  Each service takes this
 * and the other services it uses, by name (renew_new(env, store, acme,
 * deploy, ...)), so its inputs are visible in its constructor.
 */
#ifndef CERTAGENT_ENV_H
#define CERTAGENT_ENV_H

#include <uv.h>

struct config;
struct events;

struct env {
    uv_loop_t *loop;
    struct events *events;
    /* The running config: the reloadable keys change in place before EVENT_CONFIG_RELOADED. */
    const struct config *config;
    const char *state_dir;
    /* Thread-pool jobs in flight (the status report shows them, the stop waits for them). */
    unsigned *jobs;
};

#endif
