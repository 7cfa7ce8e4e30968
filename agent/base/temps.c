/*
 * The temporary files of writes cut short (temps.h).
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "fsutil.h"
#include "strv.h"
#include "log.h"
#include "temps.h"

/* Is name "BASE.tmp-PID-N" (any BASE when base is NULL) with a PID other than ours? */
static int
stale_temp(const char *name, const char *base)
{
    const char *t = strstr(name, ".tmp-"), *p;
    unsigned long pid = 0;
    size_t digits = 0;

    while (t != NULL && strstr(t + 1, ".tmp-") != NULL)
        t = strstr(t + 1, ".tmp-");
    if (t == NULL || t == name ||
        (base != NULL &&
         ((size_t)(t - name) != strlen(base) || strncmp(name, base, strlen(base)))))
        return 0;
    for (p = t + 5; *p >= '0' && *p <= '9'; p++, digits++)
        pid = pid * 10 + (unsigned long)(*p - '0');
    if (digits == 0 || *p != '-' || p[1] == '\0')
        return 0;
    for (p++; *p >= '0' && *p <= '9'; p++)
        ;
    return *p == '\0' && pid != (unsigned long)uv_os_getpid();
}

unsigned
temps_remove_stale(const char *dir, const char *base)
{
    uv_fs_t req;
    uv_dirent_t ent;
    unsigned removed = 0;

    if (uv_fs_scandir(NULL, &req, dir, 0, NULL) < 0) {
        uv_fs_req_cleanup(&req);
        return 0;
    }
    while (uv_fs_scandir_next(&req, &ent) == 0) {
        uv_fs_t un;
        char *path;

        if (ent.type != UV_DIRENT_FILE && ent.type != UV_DIRENT_UNKNOWN)
            continue;
        if (!stale_temp(ent.name, base) || (path = fsutil_join(dir, ent.name)) == NULL)
            continue;
        if (uv_fs_unlink(NULL, &un, path, NULL) == 0) {
            log_info("removed %s, left by a write that was cut short", path);
            removed++;
        }
        uv_fs_req_cleanup(&un);
        free(path);
    }
    uv_fs_req_cleanup(&req);
    return removed;
}

unsigned
temps_remove_stale_in(struct fsutil_dir *dir, const char *base)
{
    char **names = NULL;
    size_t n = 0;
    unsigned removed = 0;

    if (fsutil_dir_list(dir, &names, &n, NULL) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!stale_temp(names[i], base) || fsutil_dir_remove(dir, names[i], NULL) != 0)
            continue;
        log_info("removed %s/%s, left by a write that was cut short", fsutil_dir_path(dir),
                 names[i]);
        removed++;
    }
    strv_free(names, n);
    return removed;
}
