/*
 * Runs a fuzz target's entry point over files: each argument is a file or a
 * directory whose regular files are fed one by one (sorted by name, so a
 * failure is reproducible).  Exits 1 when an argument cannot be read or no
 * input was found; a bug shows as a sanitizer report or a crash.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int
feed_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char *data = NULL;
    long len;
    int rc = -1;

    if (f == NULL) {
        perror(path);
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    /* One spare byte so that an empty file still gets a valid pointer. */
    if ((data = malloc((size_t)len + 1)) == NULL)
        goto out;
    if (len > 0 && fread(data, 1, (size_t)len, f) != (size_t)len)
        goto out;
    printf("%s (%ld bytes)\n", path, len);
    fflush(stdout);
    LLVMFuzzerTestOneInput(data, (size_t)len);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "%s: cannot read\n", path);
    free(data);
    fclose(f);
    return rc;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int
main(int argc, char **argv)
{
    size_t fed = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        struct dirent **names = NULL;
        int n;

        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (feed_file(argv[i]) != 0)
                return 1;
            fed++;
            continue;
        }
        if ((n = scandir(argv[i], &names, NULL, by_name)) < 0) {
            perror(argv[i]);
            return 1;
        }
        for (int j = 0; j < n; j++) {
            char path[4096];

            snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
            if (names[j]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                if (feed_file(path) != 0)
                    return 1;
                fed++;
            }
            free(names[j]);
        }
        free(names);
    }
    printf("%zu input(s) fed, no failure\n", fed);
    return fed > 0 ? 0 : 1;
}
