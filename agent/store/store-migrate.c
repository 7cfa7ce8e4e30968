/*
 * Store schema migrations (store-migrate.h).
 *
 * Schemas:
 *   0  certagent before 26.1 (23.x to 25.x): no state.json; certs/NAME/
 *      lineage.json as today but without a "schema" number.
 *   1  certagent 26.1: state.json {"schema": 1, "written_by": VERSION}, and
 *      every lineage.json carries "schema": 1.
 * A new schema adds a step to the table below; a store newer than the agent
 * is refused by store_open, never migrated down.
 */
#include "store-migrate.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "version.h"

#define LINEAGE_MAX (4 * 1024 * 1024)

/* A step from schema `from` to from + 1. */
struct migration {
    int from;
    const char *what; /* for the log: what the step changes */
    int (*run)(const char *state_dir, char **cause);
};

/*
 * Schema 0 to 1 for one lineage: adds "schema": 1 to certs/NAME/lineage.json
 * when it has none.  A lineage.json that is not a JSON object is left alone
 * (store_open reports and skips it).
 */
static int
lineage_0_to_1(const char *name_dir, char **cause)
{
    char *path = fsutil_join(name_dir, "lineage.json"), *text = NULL;
    unsigned char *data = NULL;
    cJSON *root = NULL, *num = NULL;
    size_t len;
    int rc;

    if (path == NULL)
        return -E_NOMEM;
    rc = fsutil_read_file(path, LINEAGE_MAX, &data, &len, cause);
    if (rc == -E_NOT_FOUND) {
        rc = 0; /* not a lineage: store_open says so */
        goto out;
    }
    if (rc != 0)
        goto out;
    root = cJSON_ParseWithLength((const char *)data, len);
    if (!cJSON_IsObject(root) || cJSON_GetObjectItemCaseSensitive(root, "schema") != NULL)
        goto out;
    if ((num = cJSON_CreateNumber(1)) == NULL || !cJSON_InsertItemInArray(root, 0, num)) {
        cJSON_Delete(num);
        rc = -E_NOMEM;
        goto out;
    }
    /* cJSON_InsertItemInArray keeps the item's name: give it one. */
    if ((num->string = strdup("schema")) == NULL || (text = cJSON_Print(root)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    rc = fsutil_write_atomic(path, text, strlen(text), 0644, cause);
out:
    cJSON_free(text);
    cJSON_Delete(root);
    free(data);
    free(path);
    return rc;
}

static int
migrate_0_to_1(const char *state_dir, char **cause)
{
    char *certs = fsutil_join(state_dir, "certs");
    DIR *d = NULL;
    struct dirent *e;
    int rc = 0;

    if (certs == NULL)
        return -E_NOMEM;
    if ((d = opendir(certs)) == NULL) {
        rc = errno == ENOENT ? 0 : -E_IO;
        if (rc != 0)
            err_set(cause, "cannot read %s: %s", certs, strerror(errno));
        goto out;
    }
    for (;;) {
        char *name_dir;

        errno = 0;
        if ((e = readdir(d)) == NULL) {
            if (errno != 0) {
                err_set(cause, "cannot read %s: %s", certs, strerror(errno));
                rc = -E_IO;
            }
            break;
        }
        if (e->d_name[0] == '.')
            continue;
        if ((name_dir = fsutil_join(certs, e->d_name)) == NULL) {
            rc = -E_NOMEM;
            break;
        }
        if (fsutil_is_dir(name_dir) && !fsutil_is_published(name_dir))
            rc = lineage_0_to_1(name_dir, cause);
        free(name_dir);
        if (rc != 0)
            break;
    }
out:
    if (d != NULL)
        closedir(d);
    free(certs);
    return rc;
}

static const struct migration migrations[] = {
    {0, "every lineage.json now records its schema", migrate_0_to_1},
};

int
store_migrate_is_legacy(const char *state_dir)
{
    char *certs = fsutil_join(state_dir, "certs");
    DIR *d;
    struct dirent *e;
    int found = 0;

    if (certs == NULL)
        return 0;
    if ((d = opendir(certs)) != NULL) {
        while (!found && (e = readdir(d)) != NULL)
            found = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
        closedir(d);
    }
    free(certs);
    return found;
}

int
store_migrate_write_state(const char *state_dir, int schema, char **cause)
{
    char *path = fsutil_join(state_dir, "state.json"), *text = NULL;
    int rc = -E_NOMEM;

    if (path == NULL)
        return -E_NOMEM;
    err_set(&text, "{\"schema\": %d, \"written_by\": \"%s\"}\n", schema, CERTAGENT_VERSION);
    if (text != NULL)
        rc = fsutil_write_atomic(path, text, strlen(text), 0644, cause);
    free(text);
    free(path);
    return rc;
}

int
store_migrate_run(const char *state_dir, int from, int to, char **cause)
{
    const size_t n = sizeof(migrations) / sizeof(migrations[0]);

    for (int schema = from; schema < to; schema++) {
        const struct migration *m = NULL;
        int rc;

        for (size_t i = 0; i < n; i++)
            if (migrations[i].from == schema)
                m = &migrations[i];
        if (m == NULL) {
            err_set(cause, "the store in %s has schema %d, which this agent cannot migrate",
                    state_dir, schema);
            return -E_VERSION;
        }
        if ((rc = m->run(state_dir, cause)) != 0 ||
            (rc = store_migrate_write_state(state_dir, schema + 1, cause)) != 0) {
            char *why = NULL;

            err_set(&why, "migrating the store in %s from schema %d to %d failed: %s", state_dir,
                    schema, schema + 1,
                    cause != NULL && *cause != NULL ? *cause : err_message(rc));
            if (cause != NULL) {
                free(*cause);
                *cause = why;
            } else {
                free(why);
            }
            return rc;
        }
        log_info("store: migrated %s from schema %d to %d: %s", state_dir, schema, schema + 1,
                 m->what);
    }
    return 0;
}
