/*
 * Schema migrations of the store, run by store_open on the first start of a
 * new agent over an older store (see store-migrate.c for the schemas).
 *
 * Each step upgrades schema N to N + 1 in place and must be idempotent: a
 * step's files are replaced atomically one by one, and state.json records
 * the new schema only when the whole step is done (the step's commit point),
 * so a crash in the middle reruns the step at the next start.
 */
#ifndef CERTAGENT_STORE_MIGRATE_H
#define CERTAGENT_STORE_MIGRATE_H

/*
 * Is the store under state_dir, which has no state.json, a legacy (schema 0)
 * store, i.e. does its certs/ directory hold anything?  An empty or missing
 * certs/ is a new store.
 */
int store_migrate_is_legacy(const char *state_dir);

/* Writes state.json of state_dir atomically: {"schema": schema, "written_by": VERSION}. */
int store_migrate_write_state(const char *state_dir, int schema, char **cause);

/*
 * Upgrades the store under state_dir from schema `from` to `to`, step by
 * step, logging each one; state.json is rewritten after every step.
 */
int store_migrate_run(const char *state_dir, int from, int to, char **cause);

#endif
