#include "upgrade.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fsutil.h"
#include "version.h"

enum upgrade_decision
upgrade_decide(const char *installed, const char *new_version, int force, char **message)
{
    struct version vi, vn, vmin;
    char *why = NULL;
    int c;

    if (version_parse(new_version, &vn, &why) != 0) {
        err_set(message, "the new version is invalid: %s", why);
        free(why);
        return UPGRADE_BAD_VERSION;
    }
    if (installed == NULL) {
        err_set(message, "fresh install of certagent %s", new_version);
        return UPGRADE_FRESH;
    }
    if (version_parse(installed, &vi, &why) != 0) {
        err_set(message,
                "the installed version is invalid: %s; check the state directory's "
                "state.json, or pass --installed VERSION",
                why);
        free(why);
        return UPGRADE_BAD_VERSION;
    }
    version_parse(UPGRADE_MIN_FROM, &vmin, NULL);
    c = version_compare(&vi, &vn);
    if (c == 0) {
        err_set(message, "certagent %s is already installed: reinstalling it", installed);
        return UPGRADE_SAME;
    }
    if (c > 0) {
        if (force) {
            err_set(message,
                    "downgrading certagent %s to %s because --force was given; the "
                    "state directory was written by the newer version",
                    installed, new_version);
            return UPGRADE_FORCED_DOWNGRADE;
        }
        err_set(message,
                "refusing to downgrade certagent %s to %s: the state may already "
                "use a format %s does not read. Install %s or newer instead, or back "
                "up the state directory and pass --force. Nothing was changed.",
                installed, new_version, new_version, installed);
        return UPGRADE_REFUSED_DOWNGRADE;
    }
    if (version_compare(&vi, &vmin) < 0) {
        err_set(message,
                "refusing to upgrade certagent %s to %s directly: this release "
                "migrates from %s or newer. Upgrade to %s first, start it once so it "
                "migrates the state, then upgrade to %s. Nothing was changed.",
                installed, new_version, UPGRADE_MIN_FROM, UPGRADE_MIN_FROM, new_version);
        return UPGRADE_REFUSED_TOO_OLD;
    }
    err_set(message, "upgrading certagent %s to %s", installed, new_version);
    return UPGRADE_ALLOWED;
}

int
upgrade_exit_code(enum upgrade_decision d)
{
    switch (d) {
    case UPGRADE_FRESH:
    case UPGRADE_ALLOWED:
    case UPGRADE_SAME:
    case UPGRADE_FORCED_DOWNGRADE:
        return UPGRADE_EXIT_PROCEED;
    case UPGRADE_REFUSED_TOO_OLD:
        return UPGRADE_EXIT_TOO_OLD;
    case UPGRADE_REFUSED_DOWNGRADE:
        return UPGRADE_EXIT_DOWNGRADE;
    case UPGRADE_BAD_VERSION:
        break;
    }
    return UPGRADE_EXIT_USAGE;
}

int
upgrade_installed_version(const char *state_dir, char **version, char **cause)
{
    char *path = fsutil_join(state_dir, "state.json");
    unsigned char *data = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    const cJSON *w;
    int rc;

    *version = NULL;
    if (path == NULL)
        return -E_NOMEM;
    if ((rc = fsutil_read_file(path, 65536, &data, &len, cause)) != 0)
        goto out;
    root = cJSON_ParseWithLength((const char *)data, len);
    w = cJSON_GetObjectItemCaseSensitive(root, "written_by");
    if (!cJSON_IsString(w)) {
        err_set(cause, "%s does not say which version wrote it", path);
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((*version = strdup(w->valuestring)) == NULL)
        rc = -E_NOMEM;
out:
    cJSON_Delete(root);
    free(data);
    free(path);
    return rc;
}
