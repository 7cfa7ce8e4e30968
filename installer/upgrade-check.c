/*
 * certagent-upgrade-check: what the DEB and MSI installers run before they
 * change anything.  Exit codes: 0 proceed, 2 usage or invalid version,
 * 3 refused (installed version too old), 4 refused (downgrade), 5 refused
 * (--backup could not copy the state directory).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "cliopt.h"
#include "err.h"
#include "paths.h"
#include "upgrade.h"
#include "version.h"

static const char usage_text[] =
    "usage: certagent-upgrade-check [--installed VERSION] [--new VERSION] [--state-dir DIR] "
    "[--force] [--backup]\n"
    "  --installed V   the installed version (default: read from the state directory)\n"
    "  --new V         the version being installed (default: " CERTAGENT_VERSION ")\n"
    "  --state-dir D   where to read the installed version (default: the system store)\n"
    "  --force         allow a downgrade\n"
    "  --backup        before an upgrade (or a forced downgrade), copy the state directory\n"
    "                  to STATE_DIR.bak-INSTALLED-YYYYMMDDTHHMMSSZ beside it\n"
    "exit: 0 proceed, 2 usage or invalid version, 3 installed version too old to upgrade from,\n"
    "      4 downgrade refused, 5 the backup failed\n";

/*
 * Backs up state_dir (the system store when NULL) before the change from
 * `installed`; returns the exit code.
 */
static int
backup(const char *state_dir, const char *installed)
{
    struct paths sys;
    char *copy = NULL, *cause = NULL;
    int rc;

    memset(&sys, 0, sizeof(sys));
    if (state_dir == NULL) {
        if (paths_system(&sys) != 0) {
            fputs("certagent-upgrade-check: out of memory\n", stderr);
            return UPGRADE_EXIT_BACKUP;
        }
        state_dir = sys.state_dir;
    }
    rc = backup_state(state_dir, installed, &copy, &cause);
    if (rc == 0) {
        printf("certagent-upgrade-check: backed up %s to %s\n", state_dir, copy);
    } else if (rc == -E_NOT_FOUND) {
        printf("certagent-upgrade-check: no state directory %s: nothing to back up\n", state_dir);
        rc = 0;
    } else {
        fprintf(stderr,
                "certagent-upgrade-check: refusing to upgrade: cannot back up %s: %s. Free "
                "space or fix the permissions beside it and retry. Nothing was changed.\n",
                state_dir, cause != NULL ? cause : err_message(rc));
    }
    free(copy);
    free(cause);
    paths_free(&sys);
    return rc == 0 ? UPGRADE_EXIT_PROCEED : UPGRADE_EXIT_BACKUP;
}

int
main(int argc, char **argv)
{
    const char *installed = NULL, *new_version = CERTAGENT_VERSION, *state_dir = NULL;
    char *from_state = NULL, *message = NULL, *cause = NULL;
    struct paths sys;
    enum upgrade_decision d;
    int force = 0, want_backup = 0, rc;

    for (int i = 1; i < argc; i++) {
        int r = 0;

        if (strcmp(argv[i], "--force") == 0) {
            force = 1;
            continue;
        }
        if (strcmp(argv[i], "--backup") == 0) {
            want_backup = 1;
            continue;
        }
        if (strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        if ((r = cliopt_value(argc, argv, &i, "--installed", &installed)) == 0 &&
            (r = cliopt_value(argc, argv, &i, "--new", &new_version)) == 0)
            r = cliopt_value(argc, argv, &i, "--state-dir", &state_dir);
        if (r <= 0) {
            fprintf(stderr, "certagent-upgrade-check: %s '%s'\n%s",
                    r < 0 ? "missing value for" : "unknown argument", argv[i], usage_text);
            return UPGRADE_EXIT_USAGE;
        }
    }
    memset(&sys, 0, sizeof(sys));
    if (installed == NULL) {
        if (state_dir == NULL && paths_system(&sys) == 0)
            state_dir = sys.state_dir;
        rc = state_dir != NULL ? upgrade_installed_version(state_dir, &from_state, &cause)
                               : -E_NOT_FOUND;
        if (rc != 0 && rc != -E_NOT_FOUND) {
            fprintf(stderr, "certagent-upgrade-check: %s; give --installed VERSION\n",
                    cause != NULL ? cause : err_message(rc));
            free(cause);
            paths_free(&sys);
            return UPGRADE_EXIT_USAGE;
        }
        free(cause);
        installed = from_state;
    }
    d = upgrade_decide(installed, new_version, force, &message);
    rc = upgrade_exit_code(d);
    fprintf(rc == UPGRADE_EXIT_PROCEED ? stdout : stderr, "certagent-upgrade-check: %s\n",
            message != NULL ? message : "?");
    if (want_backup && (d == UPGRADE_ALLOWED || d == UPGRADE_FORCED_DOWNGRADE))
        rc = backup(state_dir, installed);
    free(message);
    free(from_state);
    paths_free(&sys);
    return rc;
}
