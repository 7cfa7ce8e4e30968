/*
 * The upgrade check both installers run before they change anything
 * (certagent-upgrade-check; DEB preinst and MSI custom action).
 */
#ifndef CERTAGENT_UPGRADE_H
#define CERTAGENT_UPGRADE_H

/* The oldest installed version this release migrates from: set here only. */
#define UPGRADE_MIN_FROM "23.1.2"

enum upgrade_decision {
    UPGRADE_FRESH,             /* nothing installed: install */
    UPGRADE_ALLOWED,           /* installed < new, and >= UPGRADE_MIN_FROM */
    UPGRADE_SAME,              /* reinstall of the same version */
    UPGRADE_FORCED_DOWNGRADE,  /* installed > new, with --force */
    UPGRADE_REFUSED_TOO_OLD,   /* installed < UPGRADE_MIN_FROM */
    UPGRADE_REFUSED_DOWNGRADE, /* installed > new, without --force */
    UPGRADE_BAD_VERSION,       /* a version is not YEAR.MINOR.PATCH */
};

/* Exit codes of certagent-upgrade-check (README, "Upgrades"). */
#define UPGRADE_EXIT_PROCEED 0
#define UPGRADE_EXIT_USAGE 2
#define UPGRADE_EXIT_TOO_OLD 3
#define UPGRADE_EXIT_DOWNGRADE 4
#define UPGRADE_EXIT_BACKUP 5 /* --backup: the state directory could not be copied */

/*
 * Decides an upgrade from installed (NULL: fresh install) to new_version.
 * *message (heap) says what happens, or for a refusal what the
 * administrator must do.
 */
enum upgrade_decision upgrade_decide(const char *installed, const char *new_version, int force,
                                     char **message);
/* The exit code for a decision. */
int upgrade_exit_code(enum upgrade_decision d);

/*
 * The version that last ran on the state directory (state.json
 * "written_by").  -E_NOT_FOUND when there is no state (a fresh install).
 */
int upgrade_installed_version(const char *state_dir, char **version, char **cause);

#endif
