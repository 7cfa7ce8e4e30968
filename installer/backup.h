/*
 * The state directory's backup before an allowed upgrade
 * (certagent-upgrade-check --backup).  The copy itself is per platform
 * (installer/unix/backup.c, installer/win/backup.c).
 */
#ifndef CERTAGENT_BACKUP_H
#define CERTAGENT_BACKUP_H

/*
 * Copies state_dir to STATE_DIR.bak-FROM-YYYYMMDDTHHMMSSZ beside it (its
 * path in *backup, heap), keeping modes, owners and link targets, so that
 * keys stay 0600.  The copy is made under a temp name and renamed when
 * complete: a backup that exists is whole.  -E_NOT_FOUND when state_dir does
 * not exist (nothing to back up).
 */
int backup_state(const char *state_dir, const char *from, char **backup, char **cause);

/*
 * The platform half: copies the tree src to dst (which must not exist)
 * and makes it durable.
 */
int backup_copy_tree(const char *src, const char *dst, char **cause);

#endif
