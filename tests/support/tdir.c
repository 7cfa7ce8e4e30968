#include "tdir.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "fsutil.h"

int
tdir_make(char *dir, const char *prefix)
{
    snprintf(dir, TDIR_MAX, "/tmp/%s-XXXXXX", prefix);
    return mkdtemp(dir) != NULL ? 0 : -1;
}

int
tdir_remove(const char *dir)
{
    return fsutil_remove_tree(dir, NULL);
}

char *
tdir_at(const char *dir, const char *rel)
{
    char *p = fsutil_join(dir, rel);

    assert_non_null(p);
    return p;
}

void
tdir_put(const char *dir, const char *rel, const char *text, int mode)
{
    char *p = tdir_at(dir, rel);

    assert_int_equal(fsutil_write_atomic(p, text, strlen(text), mode, NULL), 0);
    free(p);
}

void
tdir_mkdir(const char *dir, const char *rel)
{
    char *p = tdir_at(dir, rel);

    assert_int_equal(fsutil_mkdir_p(p, 0700, NULL), 0);
    free(p);
}

char *
tdir_slurp(const char *dir, const char *rel)
{
    char *p = tdir_at(dir, rel);
    unsigned char *data = NULL;
    size_t len;

    if (fsutil_read_file(p, 1 << 20, &data, &len, NULL) != 0)
        data = NULL;
    free(p);
    return (char *)data;
}

int
tdir_mode(const char *dir, const char *rel)
{
    char *p = tdir_at(dir, rel);
    struct stat st;
    int m = stat(p, &st) == 0 ? (int)(st.st_mode & 07777) : -1;

    free(p);
    return m;
}

static int
cmp_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

void
tdir_list(const char *path, char *out, size_t len)
{
    char names[64][256];
    size_t n = 0, used = 0;
    DIR *d = opendir(path);
    struct dirent *e;

    if (d == NULL)
        fail_msg("cannot list %s", path);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        assert_true(n < 64);
        snprintf(names[n++], sizeof(names[0]), "%s", e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_name);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(out + used, len - used, "%s%s", i ? " " : "", names[i]);

        assert_true(w >= 0 && (size_t)w < len - used);
        used += (size_t)w;
    }
}
