/*
 * The agent as a whole: configuration, store, IPC server and signals on one
 * libuv loop.  main.c parses the command line and calls agent_start; the
 * loop then runs until agent_stop has closed every handle and the last job
 * has finished.
 */
#ifndef CERTAGENT_AGENT_H
#define CERTAGENT_AGENT_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "env.h"
#include "platform.h"
#include "server.h"

struct trust;
struct probe_sched;
struct renew;
struct deploy;
struct hooks;
struct status;
struct notify;
struct ops_logs;
struct events;

struct agent_options {
    const char *config_path; /* NULL: the platform default (missing file allowed) */
    const char *socket_path; /* NULL: config, then platform default */
    const char *state_dir;   /* NULL: config, then platform default */
    const char *log_level;   /* NULL: config */
};

struct agent {
    uv_loop_t *loop;
    struct config config;
    char *config_path;
    int config_explicit; /* the user named the config file: it must exist */
    char *socket_path;
    char *state_dir;
    const char *cli_log_level;
    struct events *events; /* events.c: what happened, for whoever subscribed */
    struct env env;        /* what the services are given: loop, events, config, state dir */
    struct store *store;
    struct acme *acme;
    struct fleet *fleet;             /* fleet/fleet.c: certificates shared through etcd */
    struct trust *trust;             /* trust.c: anchors and intermediates */
    struct probe_sched *probe_sched; /* probe.c: the configured probes */
    struct renew *renew;             /* renew.c: the renewal scheduler */
    struct canary *canary;           /* renew/canary.c: the staging canaries */
    struct deploy *deploy;           /* deploy.c: settings, deploy targets, hooks */
    struct served *served;           /* served.c: what the services serve */
    struct hooks *hooks;             /* hooks.c: deploy, failure and dns-01 hook processes */
    struct status *status;           /* status.c: report, status file, metrics */
    struct notify *notify;           /* notify.c: alerts by e-mail and webhooks */
    struct ops_logs *logs;           /* ops-logs.c: certctl logs and its followers */
    struct dashboard *dashboard;     /* web/dashboard.c: the dashboard, or NULL when off */
    struct server server;
    struct platform_signals signals;
    int lock_handle;
    int64_t started;     /* Unix seconds */
    uint64_t started_hr; /* uv_hrtime at start */
    unsigned jobs;       /* thread-pool jobs in flight */
    int stopping;
};

/* Loads config, opens the store, starts listening.  On failure everything is undone. */
int agent_start(struct agent *agent, uv_loop_t *loop, const struct agent_options *opts,
                char **cause);
/* Graceful stop: no new connections or requests; running jobs finish. */
void agent_stop(struct agent *agent);
/* After uv_run returned: releases the store and the lock. */
void agent_free(struct agent *agent);

#endif
