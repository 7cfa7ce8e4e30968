/*
 * Per-certificate settings and what happens after a certificate changes.
 *
 * Settings (STATE/settings.json, written atomically, one object per name):
 *   {"NAME": {"deploy": [{"type": "files", "path": DIR},
 *                        {"type": "pfx", "path": FILE, "password_file": FILE},
 *                        {"type": "windows_store", "store": "MY",
 *                         "keep_previous": false, "exportable": false},
 *                        {"type": "binding", "path": "0.0.0.0:443"}],
 *             "deploy_hook": CMD, "failure_hook": CMD,
 *             "auto_renew": true|false, "renew_before_days": N,
 *             "store_thumbprints": {"MY": THUMBPRINT},
 *             "check_served": [{"url": URL, "sni": NAME}]}}
 * Settings may exist before the certificate does (certctl request with
 * --deploy-* sets them first) and are dropped with it.  store_thumbprints is
 * a record, not a setting: the certificate last put into each Windows store,
 * which the next version replaces.
 *
 * After the current version of a name changes (new version, rollback), the
 * deploy targets are written in the thread pool, one atomic file at a time:
 *   files: DIR/cert.pem, chain.pem, fullchain.pem (0644), privkey.pem (0600)
 *   pfx:   FILE (0600), a PKCS#12 with the key and chain, encrypted with the
 *          password read from password_file (empty when none)
 *   windows_store: the certificate with its key (exportable only when
 *          "exportable") into LocalMachine\STORE as "certagent NAME", its
 *          intermediates into LocalMachine\CA; then, unless "keep_previous",
 *          the certificate of the recorded thumbprint leaves the store.
 *          Windows only: elsewhere such a target is refused when added.  The
 *          config's windows_store, when set, is such a target (defaults) for
 *          every certificate without one of its own.
 *   binding: after every store target, the http.sys SSL binding IP:PORT
 *          names the certificate the first store target holds now (its
 *          application id and flags kept: platform_httpsys_bind).  Windows
 *          only; refused when added to a certificate without a store target
 *          (its own or the config's windows_store).
 * A files or pfx target is written relative to its directory, opened from
 * "/" without following a link, each directory owned by root or the agent
 * and not writable by others (fsutil_dir_open); a target that breaks the
 * rule fails with the directory named.
 * then the deploy hooks run (the certificate's own, then the config's
 * deploy_hook), one after the other; one whose program is an absolute path
 * that others could change is refused (hooks_check).  Deploys of one name never overlap:
 * a change during a deploy is deployed again once it ends, from the then
 * current version.  After a failed renewal the failure hooks run the same
 * way.  Hook environment (never a secret):
 *   CERTAGENT_EVENT        deploy | failure
 *   CERTAGENT_NAME, CERTAGENT_VERSION, CERTAGENT_SOURCE
 *   CERTAGENT_CERT, CERTAGENT_CHAIN, CERTAGENT_FULLCHAIN, CERTAGENT_KEY
 *                          files of the current version (STATE/live/NAME/...)
 *   CERTAGENT_DOMAINS      the DNS names and IP addresses, space-separated
 *   CERTAGENT_NOT_AFTER    RFC 3339; CERTAGENT_NOT_AFTER_UNIX: Unix seconds
 *   deploy only: CERTAGENT_THUMBPRINT (the leaf's SHA-1, 40 upper-case hex
 *   digits, as Windows tools name a certificate), CERTAGENT_SHA256 (64),
 *   CERTAGENT_PREVIOUS_THUMBPRINT (the version deployed before, else the one
 *   below; absent for a first version), CERTAGENT_PFX (the first pfx
 *   target's path) and CERTAGENT_STORE (the first windows_store target's
 *   store, "MY"), each only when there is one
 *   failure only: CERTAGENT_ERROR (the error text), CERTAGENT_FAILURES
 *   (consecutive), CERTAGENT_NEXT_ATTEMPT (RFC 3339, or empty)
 *
 * Loop thread only.
 */
#ifndef CERTAGENT_DEPLOY_H
#define CERTAGENT_DEPLOY_H

#include <stddef.h>
#include <stdint.h>

struct env;
struct hooks;
struct store;
struct deploy;
struct cJSON;

enum deploy_type {
    DEPLOY_FILES,
    DEPLOY_PFX,
    DEPLOY_STORE,
    DEPLOY_BINDING, /* an http.sys SSL binding "IP:PORT" (Windows), after a store target */
};

struct deploy_target {
    enum deploy_type type;
    char *path; /* files, pfx: absolute path; windows_store: the store ("MY"); binding: IP:PORT */
    char *password_file; /* pfx: NULL for an empty password */
    int keep_previous;   /* windows_store: leave the previous version in the store */
    int exportable;      /* windows_store: import the private key exportable */
};

/* The certificate last deployed to a Windows store (its SHA-1 thumbprint). */
struct store_thumbprint {
    char *store;
    char *thumbprint;
};

/* A URL whose server must serve the current version (served.c checks it). */
struct served_url {
    char *url; /* as probe_url_parse takes it: "https://host[:port]", "imaps://", ... */
    char *sni; /* the server name to send; NULL: the URL's host (none for an address) */
};

struct cert_settings {
    struct deploy_target *targets;
    size_t ntargets;
    char *deploy_hook;
    char *failure_hook;
    int auto_renew;        /* -1: the default (on for ACME, off for self-signed) */
    int renew_before_days; /* 0: the config's */
    int shared; /* 1: shared with the agent's fleet (certctl set --shared; agent/fleet/) */
    struct store_thumbprint *thumbprints; /* a record: what each store holds */
    size_t nthumbprints;
    struct served_url *served; /* check_served: what must serve the current version */
    size_t nserved;
    /* Resilience (docs/resilience.md): the CAs tried when its own CA keeps failing
     * (fallback_set 0: the config's fallback_cas; 1: this list, maybe empty), and what
     * happens just before expiry when renewal fails (0: the config's on_expiry, 1 keep,
     * 2 selfsigned). */
    char **fallback_cas;
    size_t nfallback_cas;
    int fallback_set;
    int on_expiry;
    /* 1: certctl set --no-shared: this node neither publishes it to its fleet nor takes
     * the fleet's versions of it (its local copy stays local; agent/fleet/). */
    int left;
};

/* Loads STATE/settings.json (at start, before the agent listens). */
int deploy_open(const struct env *env, struct store *store, struct hooks *hooks,
                struct deploy **out, char **cause);
void deploy_stop(struct deploy *d);
void deploy_free(struct deploy *d);

/* The settings of name, or NULL when it has none. */
const struct cert_settings *deploy_settings(const struct deploy *d, const char *name);

/*
 * Applies changes (a JSON object: "deploy_hook"/"failure_hook" string, ""
 * clears; "auto_renew" bool or null; "renew_before_days" number (0 clears);
 * "add_files"/"add_pfx" arrays of paths; "pfx_password_file" string for the
 * pfx targets added; "add_binding" array of IP:PORT; "add_store" array of store names, with the
 * booleans "store_keep_previous" and "store_exportable" for the store targets added; "remove"
 * array of paths or store names; "clear_deploy" true; "add_served" array of {"url", "sni"} (or URL
 * strings), "remove_served" array of URLs) and saves. -E_BAD_INPUT with words for a relative path,
 * an unknown member, a store target where there is no Windows certificate store, a served URL that
 * probe_url_parse refuses (unknown scheme, no host, port out of range) or
 * a server name that is not a DNS name. "shared" bool: share it with the fleet; "fallback_cas"
 * array of CA names, each once ([] none, null the config's); "on_expiry" "keep",
 * "selfsigned" or null.
 * done(arg, rc, cause) once the file is written.
 */
int deploy_settings_change(struct deploy *d, const char *name, const struct cJSON *changes,
                           void (*done)(void *arg, int rc, const char *cause), void *arg,
                           char **cause);
/* The settings as a JSON object (empty when none); caller frees. */
struct cJSON *deploy_settings_json(const struct deploy *d, const char *name);

/*
 * Deploys the current version of name, then runs the deploy hooks (or, when
 * name was removed, drops its settings).  Deploy does it by itself on
 * EVENT_CERT_CHANGED; certctl deploy and set call it with done (may be NULL),
 * which gets rc 0 or the first failure's words, on the loop.  Every deploy's
 * end publishes EVENT_DEPLOY_RESULT.
 */
void deploy_changed(struct deploy *d, const char *name,
                    void (*done)(void *arg, int rc, const char *cause), void *arg);

/*
 * At start: deploys again every current version that was not deployed
 * completely (targets written, hooks run) before the agent stopped or was
 * killed, from STATE/deployed.json.  Without that file (first start, upgrade)
 * every current version counts as deployed.
 */
void deploy_resume(struct deploy *d);

/*
 * The words of the last deploy of name when it failed (a target not written,
 * a hook that failed), with the version and since when deploys of name fail;
 * NULL when the last deploy succeeded (or none ran since the start).
 */
const char *deploy_error(const struct deploy *d, const char *name, unsigned *version,
                         int64_t *since);

/* A renewal of name failed: runs the failure hooks. */
void deploy_failed(struct deploy *d, const char *name, const char *error, unsigned failures,
                   int64_t next_attempt);

#endif
