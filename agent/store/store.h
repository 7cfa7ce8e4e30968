/*
 * The certificate store: named lineages of immutable versions on disk, with
 * an in-memory index for fast listing.
 *
 * Layout under the state directory:
 *   state.json                    {"schema": 1, "written_by": "26.1.0"}
 *   certs/NAME/lineage.json       the lineage: current version and a summary
 *                                 of every version (the single source of truth)
 *   certs/NAME/vN/                cert.pem chain.pem fullchain.pem
 *                                 privkey.pem (0600, when there is a key) meta.json
 *   live/NAME -> ../certs/NAME/vN certbot-compatible view of the current version
 * Modes: certs/ and every NAME/ and vN/ 0700, files 0644, keys 0600.
 *
 * Every change is crash-safe: a version directory is written under a temp
 * name, fsynced and renamed into place; then lineage.json is replaced
 * atomically (this is the commit point); then live/NAME is republished.
 * store_open repairs what a crash can leave: temp directories are removed,
 * complete version directories that no lineage lists are moved to orphans/
 * (they hold keys), and live/ links that do not
 * show the current version are republished.
 *
 * Threads: the index (store_open, store_find, store_at, store_begin,
 * store_finish) belongs to the libuv loop thread.  store_change_* and
 * store_read_file do the disk work and run in the thread pool; they touch
 * only the change object and the files of its name.
 */
#ifndef CERTAGENT_STORE_H
#define CERTAGENT_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA 1

enum cert_source {
    CERT_SOURCE_IMPORT,
    CERT_SOURCE_SELFSIGNED,
    CERT_SOURCE_ACME,
    CERT_SOURCE_FLEET, /* a version another node of the fleet issued (agent/fleet/) */
};

/* "import", "selfsigned", "acme", "fleet". */
const char *store_source_name(enum cert_source source);

/* Summary of one version, as kept in lineage.json and in memory. */
struct store_version {
    unsigned version; /* 1, 2, ...; assigned by the store */
    enum cert_source source;
    int64_t created;    /* Unix seconds when committed; set by the store */
    int64_t not_before; /* Unix seconds */
    int64_t not_after;
    char *serial;      /* hex */
    char *fingerprint; /* SHA-256, hex pairs joined by ':' */
    char *subject;
    char *common_name;
    char *issuer;
    char *key_desc; /* "EC P-256", "RSA 2048", ... ; "" when the version has no key */
    char **dns;     /* SAN dNSName entries */
    size_t ndns;
    char **ips; /* SAN iPAddress entries */
    size_t nips;
    int has_key;
    unsigned chain_len;   /* certificates in chain.pem */
    int64_t revoked;      /* Unix seconds when it was revoked at its CA (certctl revoke); 0: not */
    char *revoked_reason; /* the reason given then ("unspecified", "superseded", ...) or NULL */
};

/* One lineage.  A name that is being created has current == 0: skip it. */
struct store_cert {
    char *name;
    unsigned current;               /* current version number, 0 while being created */
    struct store_version *versions; /* ascending by version */
    size_t nversions;
    int busy; /* a change is in flight */
};

struct store;

/*
 * Opens (creating when missing) the store under state_dir, loads every
 * lineage and repairs crash leftovers, logging each repair.  A lineage that
 * cannot be read is skipped with an error in the log (its files are left
 * alone), so one bad file never hides the others.
 */
int store_open(const char *state_dir, struct store **out, char **cause);
void store_close(struct store *store);
const char *store_state_dir(const struct store *store);

/* Number of lineages (including ones being created) and access by index, sorted by name. */
size_t store_count(const struct store *store);
const struct store_cert *store_at(const struct store *store, size_t i);
/* NULL when absent or still being created. */
const struct store_cert *store_find(const struct store *store, const char *name);
/* The current version's summary, or NULL. */
const struct store_version *store_current(const struct store_cert *cert);
/* The summary of version v, or NULL. */
const struct store_version *store_version_get(const struct store_cert *cert, unsigned v);

/*
 * Names: 1..64 characters of [A-Za-z0-9._-], starting with a letter or digit.
 * -E_BAD_INPUT with a cause otherwise.
 */
int store_name_valid(const char *name, char **cause);

enum store_change_kind {
    STORE_CHANGE_ADD,      /* add a version and make it current (creates the name if new) */
    STORE_CHANGE_ROLLBACK, /* make an older version current */
    STORE_CHANGE_REMOVE,   /* remove the name and all its versions */
    STORE_CHANGE_REVOKE,   /* record that a version was revoked at its CA */
};

struct store_change;

/*
 * Loop thread: reserves `name` for one change.  -E_BUSY when a change to the
 * name is in flight, -E_NOT_FOUND for ROLLBACK/REMOVE of an unknown name,
 * -E_BAD_INPUT for an invalid name.  The change holds a private copy of the
 * lineage.
 */
int store_begin(struct store *store, const char *name, enum store_change_kind kind,
                struct store_change **out, char **cause);

/*
 * Thread pool: writes a new version.  summary's strings are copied; its
 * version and created fields are ignored (the store assigns them).
 * chain_pem may be "" and key_pem NULL (no key).  meta_json, when not NULL,
 * is extra JSON object text stored in vN/meta.json under "extra".
 */
int store_change_add(struct store_change *change, const struct store_version *summary,
                     const char *cert_pem, const char *chain_pem, const char *key_pem,
                     const char *meta_json, char **cause);

/*
 * Thread pool: makes version `to` current (0: the version just below the
 * current one).  -E_NOT_FOUND when there is no such version, -E_BAD_INPUT
 * when it is already current.
 */
int store_change_rollback(struct store_change *change, unsigned to, char **cause);

/*
 * Thread pool: records in lineage.json that version (0: the current one) was
 * revoked at `when` for `reason` (NULL: "unspecified").  The version's files
 * are not touched; the record survives restarts.  -E_NOT_FOUND when there is
 * no such version.
 */
int store_change_revoke(struct store_change *change, unsigned version, int64_t when,
                        const char *reason, char **cause);

/* Thread pool: removes the lineage, its versions and its live/ link. */
int store_change_remove(struct store_change *change, char **cause);

/* The version the change made current (ADD, ROLLBACK) and the one it replaced (0 if none). */
unsigned store_change_version(const struct store_change *change);
unsigned store_change_previous(const struct store_change *change);

/*
 * Loop thread: ends the change.  With rc == 0 the index takes the change's
 * lineage (or drops the name after REMOVE); otherwise the index is unchanged.
 * Frees change.
 */
void store_finish(struct store *store, struct store_change *change, int rc);

/*
 * Any thread: reads file ("cert.pem", "chain.pem", "fullchain.pem",
 * "privkey.pem", "meta.json") of a version of name.  Version directories are
 * immutable, so this is safe while changes run.  -E_NOT_FOUND when missing.
 * Caller frees *out (keys_free_secret for privkey.pem).
 */
int store_read_file(const struct store *store, const char *name, unsigned version,
                    const char *file, unsigned char **out, size_t *len, char **cause);

/* Deep copy / free of a summary (used by the index and by callers building one). */
int store_version_copy(struct store_version *dst, const struct store_version *src);
void store_version_clear(struct store_version *v);

#endif
