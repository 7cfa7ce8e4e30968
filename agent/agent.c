#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme.h"
#include "canary.h"
#include "dashboard.h"
#include "deploy.h"
#include "served.h"
#include "err.h"
#include "events.h"
#include "fleet-challenge.h"
#include "fleet-def.h"
#include "fleet-lock.h"
#include "fleet.h"
#include "view.h"
#include "fallback.h"
#include "fsutil.h"
#include "hooks.h"
#include "log.h"
#include "notify.h"
#include "ops-trust.h"
#include "ops.h"
#include "paths.h"
#include "probe.h"
#include "renew.h"
#include "status.h"
#include "store.h"
#include "temps.h"
#include "trust.h"
#include "version.h"

/* At start: the temporary files of writes cut short (the store repairs certs/ itself). */
static void
remove_state_temps(const char *state_dir)
{
    static const char *const subs[] = {
        "",           "acme",        "acme/accounts",      "acme/orders",
        "acme/trust", "trust/roots", "trust/intermediates"};

    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        char *dir = subs[i][0] != '\0' ? fsutil_join(state_dir, subs[i]) : strdup(state_dir);

        if (dir != NULL)
            temps_remove_stale(dir, NULL);
        free(dir);
    }
}

/* The scheduler's way to a new self-signed version: the commit path of ipc/ops-cert.c. */
static int
selfsigned_for_renew(void *ctx, const char *name, const char *const *dns, size_t ndns,
                     const char *const *ips, size_t nips, const char *key_type, unsigned days,
                     void (*done)(void *arg, int rc, const char *cause), void *arg, char **cause)
{
    return ops_cert_selfsigned(ctx, name, dns, ndns, ips, nips, key_type, days, done, arg, cause);
}

static int
selfsigned_meta_for_renew(void *ctx, const char *name, const char *const *dns, size_t ndns,
                          const char *const *ips, size_t nips, const char *key_type, unsigned days,
                          const char *meta_json,
                          void (*done)(void *arg, int rc, const char *cause), void *arg,
                          char **cause)
{
    return ops_cert_selfsigned_meta(ctx, name, dns, ndns, ips, nips, key_type, days, meta_json,
                                    done, arg, cause);
}

static void
on_stop(void *arg)
{
    agent_stop(arg);
}

static void agent_reload(struct agent *agent);

static void
on_reload(void *arg)
{
    agent_reload(arg);
}

/* Reads the config file over the defaults; a missing default file is fine. */
static int
load_config(struct agent *agent, struct config *c, char **cause)
{
    char **warnings = NULL;
    size_t nwarnings = 0;
    int rc;

    if ((rc = config_defaults(c)) != 0)
        return rc;
    rc = config_load(agent->config_path, c, &warnings, &nwarnings, cause);
    if (rc == -E_NOT_FOUND && !agent->config_explicit) {
        log_info("no config file at %s; using the defaults", agent->config_path);
        rc = 0;
    } else if (rc == -E_NOT_FOUND) {
        err_set(cause, "config file %s does not exist", agent->config_path);
    }
    for (size_t i = 0; i < nwarnings; i++)
        log_warn("%s: %s", agent->config_path, warnings[i]);
    config_free_warnings(warnings, nwarnings);
    if (rc == 0 && c->windows_store != NULL && !platform_certstore_available())
        log_warn("%s: windows_store is ignored: the Windows certificate store exists only on "
                 "Windows",
                 agent->config_path);
    if (rc == 0 && c->operate_group != NULL) {
        char *inner = NULL;
        long gid;

        /* As for socket_group, a group that does not exist stops a start (a reload keeps
         * the running configuration). */
        if ((rc = platform_group_id(c->operate_group, &gid, &inner)) != 0)
            err_set(cause, "operate_group: %s", inner != NULL ? inner : err_message(rc));
        free(inner);
    }
    if (rc != 0)
        config_free(c);
    return rc;
}

static void
apply_log_level(struct agent *agent)
{
    const char *name =
        agent->cli_log_level != NULL ? agent->cli_log_level : agent->config.log_level;
    int level = log_level_parse(name);

    if (level >= 0)
        log_set_level((enum log_level)level);
}

/* An ACME order's certificate goes through the commit path of ipc/ops-cert.c. */
static int
commit_for_acme(void *ctx, const char *name, const char *fullchain_pem, const char *key_pem,
                const char *meta_json, void (*done)(void *arg, int rc, const char *cause),
                void *arg, char **cause)
{
    return ops_cert_store(ctx, NULL, 0, PROTO_OP_REQUEST, name, CERT_SOURCE_ACME, fullchain_pem,
                          key_pem, meta_json, done, arg, cause);
}

/* An order of a shared name is not resumed: the fleet's lock decides who orders it. */
static int
resume_ok_for_acme(void *ctx, const char *name)
{
    struct agent *agent = ctx;

    return !fleet_shared(agent->fleet, name);
}

/* A definition in etcd names a CA: does this node know it? */
static int
ca_known_for_fleet(void *ctx, const char *ca)
{
    return acme_ca_known(((struct agent *)ctx)->acme, ca);
}

/* Challenge answers of a shared name's order go to the fleet (docs/fleet.md). */
static void *
token_put_for_acme(void *ctx, const char *name, const char *token, const char *keyauth,
                   void (*done)(void *arg, int rc), void *arg)
{
    struct agent *agent = ctx;

    if (!fleet_shared(agent->fleet, name))
        return NULL;
    return fleet_token_put(agent->fleet, token, keyauth, done, arg);
}

static void
token_cancel_for_acme(void *ctx, void *handle)
{
    fleet_token_cancel(((struct agent *)ctx)->fleet, handle);
}

static void
token_delete_for_acme(void *ctx, const char *token)
{
    fleet_token_delete(((struct agent *)ctx)->fleet, token);
}

static void *
token_lookup_for_acme(void *ctx, const char *token,
                      void (*reply)(void *rarg, const char *key_authorization), void *rarg)
{
    return fleet_token_lookup(((struct agent *)ctx)->fleet, token, reply, rarg);
}

static void
token_lookup_cancel_for_acme(void *ctx, void *handle)
{
    fleet_token_lookup_cancel(((struct agent *)ctx)->fleet, handle);
}

/* A version taken from the fleet goes through the same commit path, as source "fleet". */
static int
commit_for_fleet(void *ctx, const char *name, const char *fullchain_pem, const char *key_pem,
                 const char *meta_json, void (*done)(void *arg, int rc, const char *cause),
                 void *arg, char **cause)
{
    return ops_cert_store(ctx, NULL, 0, PROTO_OP_REQUEST, name, CERT_SOURCE_FLEET, fullchain_pem,
                          key_pem, meta_json, done, arg, cause);
}

/* The report's warnings of the agent itself: notify's, then the fleet's. */
static size_t
agent_warnings(void *arg, struct status_warning *out, size_t max)
{
    struct agent *agent = arg;
    size_t n = notify_agent_warnings(agent->notify, out, max);

    n += status_fleet_warnings(agent->status, out + n, max - n);
    return n + status_canary_warnings(agent->canary, out + n, max - n);
}

/* Adds code to the comma-separated list codes unless it is there. */
static void
codes_add(char *codes, size_t size, const char *code)
{
    size_t len = strlen(codes), n = strlen(code);
    const char *p = codes;

    while ((p = strstr(p, code)) != NULL) {
        if ((p == codes || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return;
        p += n;
    }
    if (len + n + 2 <= size)
        snprintf(codes + len, size - len, "%s%s", len > 0 ? "," : "", code);
}

/*
 * The fleet's view publishes the report's judgement (the fleet is below the
 * report): of one certificate, or (name NULL) of the whole agent.
 */
static int
health_for_fleet(void *arg, const char *name, char *codes, size_t size)
{
    struct agent *agent = arg;
    struct status_eval *ev = malloc(sizeof(*ev));
    struct status_warning aw[4];
    int64_t now = (int64_t)time(NULL);
    int level = 0;
    size_t naw;

    codes[0] = '\0';
    if (ev == NULL || agent->status == NULL)
        goto out;
    for (size_t i = 0; i < (name != NULL ? 1 : store_count(agent->store)); i++) {
        const struct store_cert *cert =
            name != NULL ? store_find(agent->store, name) : store_at(agent->store, i);

        if (cert == NULL || cert->current == 0)
            continue;
        status_evaluate(agent->status, cert, now, ev);
        level = ev->level > level ? ev->level : level;
        for (size_t w = 0; w < ev->nwarnings; w++)
            codes_add(codes, size, ev->w[w].code);
    }
    if (name == NULL) {
        naw = agent_warnings(agent, aw, 4);
        for (size_t w = 0; w < naw; w++) {
            level = aw[w].level > level ? aw[w].level : level;
            codes_add(codes, size, aw[w].code);
        }
    }
out:
    free(ev);
    return level;
}

int
agent_start(struct agent *agent, uv_loop_t *loop, const struct agent_options *opts, char **cause)
{
    struct paths defaults;
    char *lock_path = NULL;
    int rc;

    memset(agent, 0, sizeof(*agent));
    agent->loop = loop;
    agent->lock_handle = -1;
    agent->cli_log_level = opts->log_level;
    agent->started = (int64_t)time(NULL);
    agent->started_hr = uv_hrtime();
    if ((rc = paths_default(&defaults)) != 0)
        return rc;
    if ((rc = events_new(&agent->events)) != 0)
        goto fail;
    agent->config_explicit = opts->config_path != NULL;
    agent->config_path = strdup(opts->config_path ? opts->config_path : defaults.config);
    if (agent->config_path == NULL) {
        rc = -E_NOMEM;
        goto fail;
    }
    if ((rc = load_config(agent, &agent->config, cause)) != 0)
        goto fail;
    apply_log_level(agent);
    agent->socket_path = strdup(opts->socket_path      ? opts->socket_path
                                : agent->config.socket ? agent->config.socket
                                                       : defaults.socket);
    agent->state_dir = strdup(opts->state_dir           ? opts->state_dir
                              : agent->config.state_dir ? agent->config.state_dir
                                                        : defaults.state_dir);
    if (agent->socket_path == NULL || agent->state_dir == NULL) {
        rc = -E_NOMEM;
        goto fail;
    }
    if (agent->config.socket_group == NULL && defaults.system) {
        /* The system agent shares its socket with the certagent group when there is one. */
        if (platform_group_exists("certagent")) {
            if ((agent->config.socket_group = strdup("certagent")) == NULL) {
                rc = -E_NOMEM;
                goto fail;
            }
        } else {
            log_debug("no 'certagent' group: the socket is for root and the agent's user only");
        }
    }

    /* One agent per state directory. */
    if ((rc = fsutil_mkdir_p(agent->state_dir, 0755, cause)) != 0)
        goto fail;
    /* The keys live there: nothing in it is read or written until its owner and mode are right. */
    if ((rc = platform_state_dir_check(agent->state_dir, cause)) != 0)
        goto fail;
    if ((lock_path = fsutil_join(agent->state_dir, ".lock")) == NULL) {
        rc = -E_NOMEM;
        goto fail;
    }
    if ((rc = fsutil_lock(lock_path, &agent->lock_handle, cause)) != 0) {
        if (rc == -E_BUSY)
            err_set(cause, "another certagent is already using the state directory %s",
                    agent->state_dir);
        goto fail;
    }
    remove_state_temps(agent->state_dir);
    agent->env.loop = loop;
    agent->env.events = agent->events;
    agent->env.config = &agent->config;
    agent->env.state_dir = agent->state_dir;
    agent->env.jobs = &agent->jobs;
    if ((rc = store_open(agent->state_dir, &agent->store, cause)) != 0)
        goto fail;
    if ((rc = trust_open(agent->state_dir, &agent->trust, cause)) != 0)
        goto fail;
    if ((rc = hooks_new(agent->loop, &agent->hooks)) != 0)
        goto fail;
    if ((rc = acme_new(&agent->env, agent->store, agent->hooks,
                       &(struct acme_commit){commit_for_acme, agent, resume_ok_for_acme,
                                             token_put_for_acme, token_cancel_for_acme,
                                             token_delete_for_acme, token_lookup_for_acme,
                                             token_lookup_cancel_for_acme},
                       &agent->acme, cause)) != 0)
        goto fail;
    if ((rc = deploy_open(&agent->env, agent->store, agent->hooks, &agent->deploy, cause)) != 0)
        goto fail;
    if ((rc = served_new(&agent->env, agent->store, agent->deploy, &agent->served, cause)) != 0)
        goto fail;
    if ((rc = fleet_new(&agent->env, agent->store, agent->deploy,
                        &(struct fleet_commit){commit_for_fleet, agent}, &agent->fleet, cause)) !=
        0)
        goto fail;
    /* Fallback CAs the agent does not know stop the start (docs/resilience.md). */
    if ((rc = fallback_check(agent->acme, "fallback_cas",
                             (const char *const *)agent->config.fallback_cas.items,
                             agent->config.fallback_cas.n, cause)) != 0)
        goto fail;
    if ((rc = renew_new(
             &agent->env, agent->store, agent->acme, agent->deploy,
             &(struct renew_selfsigned){selfsigned_for_renew, agent, selfsigned_meta_for_renew},
             &agent->renew, cause)) != 0)
        goto fail;
    renew_set_fleet(agent->renew, agent->fleet);
    fleet_set_ca_known(agent->fleet, ca_known_for_fleet, agent);
    /* A definition in etcd that no node holds yet is ordered by a node it applies to. */
    fleet_set_def_order(agent->fleet, ops_shared_order_def, agent);
    /* Staging canaries of CAs the agent does not know stop the start (docs/resilience.md). */
    if ((rc = canary_check(agent->acme, &agent->config.canaries, cause)) != 0 ||
        (rc = canary_new(&agent->env, agent->acme, &agent->canary, cause)) != 0)
        goto fail;
    if ((rc = ops_logs_new(loop, &agent->logs)) != 0)
        goto fail;
    if ((rc = probe_sched_start(&agent->env, agent->trust, &agent->probe_sched, cause)) != 0)
        goto fail;
    {
        struct status_inputs in = {
            .store = agent->store,
            .trust = agent->trust,
            .renew = agent->renew,
            .deploy = agent->deploy,
            .acme = agent->acme,
            .probes = agent->probe_sched,
            .served = agent->served,
            .fleet_view = fleet_view(agent->fleet),
            .started = agent->started,
            .started_hr = agent->started_hr,
            .socket_path = agent->socket_path,
            .config_path = agent->config_path,
            .connections = &agent->server.nclients,
        };

        if ((rc = status_new(&agent->env, &in, &agent->status, cause)) != 0 ||
            (rc = status_start(agent->status, cause)) != 0) {
            probe_sched_stop(agent->probe_sched);
            goto fail;
        }
    }
    {
        struct notify_inputs in = {agent->store, agent->renew, agent->status};

        if ((rc = notify_new(&agent->env, &in, &agent->notify, cause)) == 0) {
            /* The report shows notify_failing and acknowledgements without knowing notify. */
            status_set_agent_warnings(agent->status, notify_agent_warnings, agent->notify);
            status_set_acked(agent->status, notify_acked, agent->notify);
            /* The fleet's fleet_unreachable joins notify's; the fleet publishes the report. */
            status_set_agent_warnings(agent->status, agent_warnings, agent);
            view_set_health(fleet_view(agent->fleet), health_for_fleet, agent);
        }
        if (rc != 0 || (rc = notify_start(agent->notify, cause)) != 0) {
            probe_sched_stop(agent->probe_sched);
            status_stop(agent->status);
            notify_stop(agent->notify);
            goto fail;
        }
    }
    {
        struct dashboard_inputs din = {
            .status = agent->status,
            .store = agent->store,
            .deploy = agent->deploy,
            .selfsigned = {selfsigned_for_renew, agent},
        };

        if ((rc = dashboard_start(&agent->env, &din, &agent->dashboard, cause)) != 0) {
            probe_sched_stop(agent->probe_sched);
            status_stop(agent->status);
            notify_stop(agent->notify);
            goto fail;
        }
    }
    if ((rc = server_start(&agent->server, agent, agent->socket_path, cause)) != 0) {
        probe_sched_stop(agent->probe_sched);
        status_stop(agent->status);
        dashboard_close(agent->dashboard);
        agent->dashboard = NULL;
        notify_stop(agent->notify);
        goto fail;
    }
    agent->signals.on_stop = on_stop;
    agent->signals.on_reload = on_reload;
    agent->signals.arg = agent;
    if ((rc = platform_signals_start(loop, &agent->signals, cause)) != 0) {
        server_stop(&agent->server);
        probe_sched_stop(agent->probe_sched);
        status_stop(agent->status);
        dashboard_close(agent->dashboard);
        agent->dashboard = NULL;
        notify_stop(agent->notify);
        goto fail;
    }
    log_info("certagent %s listening on %s, store %s (%zu certificates)", CERTAGENT_VERSION,
             agent->socket_path, agent->state_dir, store_count(agent->store));
    acme_start(agent->acme);
    {
        char *why = NULL;

        /* Only the record of the last results: without it every URL is checked again. */
        if (served_start(agent->served, &why) != 0)
            log_error("served check: %s", why != NULL ? why : "cannot start");
        free(why);
    }
    deploy_resume(agent->deploy);
    renew_start(agent->renew);
    canary_start(agent->canary);
    {
        char *why = NULL;

        /* The agent serves its local certificates without the fleet: a failure is logged. */
        if (fleet_start(agent->fleet, &why) != 0)
            log_error("fleet: not joined: %s", why != NULL ? why : "error");
        free(why);
    }
    events_publish_name(agent->events, EVENT_STATUS_STALE, NULL);
    free(lock_path);
    paths_free(&defaults);
    return 0;
fail:
    free(lock_path);
    paths_free(&defaults);
    agent_free(agent);
    return rc;
}

void
agent_stop(struct agent *agent)
{
    if (agent->stopping)
        return;
    agent->stopping = 1;
    platform_notify("STOPPING=1");
    if (agent->jobs > 0)
        log_info("stopping: waiting for %u job(s) in progress", agent->jobs);
    else
        log_info("stopping");
    status_stop(agent->status);
    dashboard_close(agent->dashboard);
    agent->dashboard = NULL;
    notify_stop(agent->notify);
    ops_logs_stop(agent->logs);
    server_stop(&agent->server);
    /* The scheduler first: orders the stop interrupts are not failures to retry or report. */
    renew_stop(agent->renew);
    canary_stop(agent->canary);
    deploy_stop(agent->deploy);
    served_stop(agent->served);
    hooks_stop(agent->hooks);
    acme_stop(agent->acme);
    fleet_stop(agent->fleet);
    probe_sched_stop(agent->probe_sched);
    ops_trust_stop(agent);
    platform_signals_close(&agent->signals);
}

/* SIGHUP: re-reads the config; reloadable keys take effect. */
static void
agent_reload(struct agent *agent)
{
    struct config c;
    char *cause = NULL, *restart;

    platform_notify("RELOADING=1");
    if (load_config(agent, &c, &cause) != 0) {
        log_error("reload failed, keeping the running configuration: %s",
                  cause != NULL ? cause : "error");
        free(cause);
        platform_notify("READY=1");
        return;
    }
    if (fallback_check(agent->acme, "fallback_cas", (const char *const *)c.fallback_cas.items,
                       c.fallback_cas.n, &cause) != 0) {
        log_error("reload failed, keeping the running configuration: %s",
                  cause != NULL ? cause : "error");
        free(cause);
        config_free(&c);
        platform_notify("READY=1");
        return;
    }
    if (canary_check(agent->acme, &c.canaries, &cause) != 0) {
        log_error("reload failed, keeping the running configuration: %s",
                  cause != NULL ? cause : "error");
        free(cause);
        config_free(&c);
        platform_notify("READY=1");
        return;
    }
    if (agent->config.socket_group != NULL && c.socket_group == NULL)
        c.socket_group = strdup(agent->config.socket_group);
    if ((restart = config_restart_needed(&agent->config, &c)) != NULL) {
        log_warn("reload: %s changed; that takes effect at the next restart", restart);
        free(restart);
    }
    /* Keep the values that need a restart; take the reloadable ones (the config table says which).
     */
    config_take_reloadable(&agent->config, &c);
    config_free(&c);
    /* The scheduler, the status report and the probes take their new values. */
    events_publish_name(agent->events, EVENT_CONFIG_RELOADED, NULL);
    apply_log_level(agent);
    log_info("configuration reloaded from %s", agent->config_path);
    platform_notify("READY=1");
}

void
agent_free(struct agent *agent)
{
    notify_free(agent->notify);
    status_free(agent->status);
    agent->status = NULL;
    ops_logs_free(agent->logs);
    agent->logs = NULL;
    renew_free(agent->renew);
    agent->renew = NULL;
    served_free(agent->served);
    agent->served = NULL;
    deploy_free(agent->deploy);
    agent->deploy = NULL;
    hooks_free(agent->hooks);
    agent->hooks = NULL;
    fleet_free(agent->fleet);
    agent->fleet = NULL;
    acme_free(agent->acme);
    agent->acme = NULL;
    /* After the ACME client: its stop ends the canaries' orders. */
    canary_free(agent->canary);
    agent->canary = NULL;
    store_close(agent->store);
    agent->store = NULL;
    probe_sched_free(agent->probe_sched);
    agent->probe_sched = NULL;
    trust_close(agent->trust);
    agent->trust = NULL;
    if (agent->lock_handle >= 0)
        fsutil_unlock(agent->lock_handle);
    agent->lock_handle = -1;
    config_free(&agent->config);
    free(agent->config_path);
    free(agent->socket_path);
    free(agent->state_dir);
    agent->config_path = agent->socket_path = agent->state_dir = NULL;
    events_free(agent->events);
    agent->events = NULL;
}
