/*
 * A fixture for unit tests of the agent's services through their own inputs
 * (docs/architecture.md): a private loop, the events, the config's defaults,
 * a store in a fresh temporary state directory and the hook runner, as
 * agent.c would hand them to deploy_open, renew_new or status_new.  Real
 * certificates (OpenSSL, EC P-256) go into the store through the store's own
 * change protocol.
 */
#ifndef CERTAGENT_SERVICE_FIXTURE_H
#define CERTAGENT_SERVICE_FIXTURE_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "env.h"
#include "events.h"
#include "store.h"

struct hooks;

struct service_fixture {
    uv_loop_t loop;
    struct events *events;
    struct config config;
    char state_dir[256];
    unsigned jobs;
    struct env env;
    struct store *store;
    struct hooks *hooks;
};

/* Everything made, or the test fails.  The state directory is new and empty. */
void fixture_init(struct service_fixture *f);
/*
 * Stops the hooks and runs the loop until every handle closed and every
 * job ended (the services under test are stopped first, freed after).
 */
void fixture_drain(struct service_fixture *f);
/* Frees what fixture_init made and removes the state directory. */
void fixture_free(struct service_fixture *f);

/*
 * Commits a new version of name: a certificate made here for dns (one name),
 * valid from now - age seconds to now + left seconds, with its key, as source.
 * Returns the version the store made current.
 */
unsigned fixture_add_cert(struct service_fixture *f, const char *name, const char *dns,
                          enum cert_source source, int64_t age, int64_t left);

/*
 * Runs the loop until *flag is non-zero or timeout_ms passed; 0 when the flag
 * was set.  The loop's own timers and the thread pool run meanwhile.
 */
int fixture_run_until(struct service_fixture *f, const int *flag, unsigned timeout_ms);

/*
 * Runs the loop until path holds needle (written asynchronously, e.g.
 * coalesced state files) or timeout_ms passed; 0 when it does.
 */
int fixture_wait_file(struct service_fixture *f, const char *path, const char *needle,
                      unsigned timeout_ms);

/* The whole file as a heap string (NULL when it cannot be read). */
char *fixture_read(const char *path);

#endif
