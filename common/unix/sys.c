#define _GNU_SOURCE
#include "../sys.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../err.h"

int
sys_gmtime(int64_t t, struct tm *out)
{
    time_t tt = (time_t)t;

    return gmtime_r(&tt, out) != NULL ? 0 : -1;
}

int
sys_localtime(int64_t t, struct tm *out)
{
    time_t tt = (time_t)t;

    return localtime_r(&tt, out) != NULL ? 0 : -1;
}

int64_t
sys_timegm(struct tm *tm)
{
    return (int64_t)timegm(tm);
}

/* "name (gid N)" of a gid into buf. */
static const char *
group_name(gid_t gid, char *buf, size_t len)
{
    struct group gr, *found = NULL;
    char scratch[1024];

    if (getgrgid_r(gid, &gr, scratch, sizeof(scratch), &found) == 0 && found != NULL)
        snprintf(buf, len, "%s (gid %lu)", found->gr_name, (unsigned long)gid);
    else
        snprintf(buf, len, "gid %lu", (unsigned long)gid);
    return buf;
}

/*
 * Checks the owner and mode of st, the config file file or (with dir) the
 * directory path that holds it.
 */
static int
check_config_node(const struct stat *st, const char *path, const char *file, int dir, char **cause)
{
    char what[1200], who[300];
    int sticky = dir && (st->st_mode & S_ISVTX);

    if (dir)
        snprintf(what, sizeof(what), "directory %s, which holds config file %s,", path, file);
    else
        snprintf(what, sizeof(what), "config file %s", file);
    if (st->st_uid != 0 && st->st_uid != geteuid()) {
        sys_uid_words((unsigned long)st->st_uid, who, sizeof(who));
        err_set(cause,
                "%s is owned by %s, not by root or the agent's user: its owner could make the "
                "agent run commands (deploy_hook); refusing it",
                what, who);
        return -E_DENIED;
    }
    if ((st->st_mode & S_IWOTH) && !sticky) {
        err_set(cause,
                "%s is writable by every user (mode %04o): anyone could make the agent run "
                "commands (deploy_hook); refusing it (chmod o-w)",
                what, (unsigned)(st->st_mode & 07777));
        return -E_DENIED;
    }
    if ((st->st_mode & S_IWGRP) && !sticky && st->st_gid != 0 && st->st_gid != getegid()) {
        err_set(cause,
                "%s is writable by group %s (mode %04o): its members could make the agent run "
                "commands (deploy_hook); refusing it (chmod g-w)",
                what, group_name(st->st_gid, who, sizeof(who)), (unsigned)(st->st_mode & 07777));
        return -E_DENIED;
    }
    return 0;
}

int
sys_config_check(const char *path, char **cause)
{
    struct stat st;
    char *dir = NULL, *slash;
    int rc;

    if (stat(path, &st) != 0)
        return 0; /* reading it says why */
    if (!S_ISREG(st.st_mode)) {
        err_set(cause, "config file %s is not a regular file", path);
        return -E_BAD_INPUT;
    }
    if ((rc = check_config_node(&st, path, path, 0, cause)) != 0)
        return rc;
    if ((dir = strdup(path)) == NULL)
        return -E_NOMEM;
    if ((slash = strrchr(dir, '/')) == NULL)
        snprintf(dir, strlen(dir) + 1, ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    if (stat(dir, &st) != 0) {
        err_set(cause, "cannot check the directory of config file %s: %s", path, strerror(errno));
        rc = -E_IO;
    } else {
        rc = check_config_node(&st, dir, path, 1, cause);
    }
    free(dir);
    return rc;
}

void
sys_uid_words(unsigned long uid, char *buf, size_t size)
{
    struct passwd pw, *res = NULL;
    char pwbuf[2048];

    if (getpwuid_r((uid_t)uid, &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res != NULL)
        snprintf(buf, size, "%s (uid %lu)", pw.pw_name, uid);
    else
        snprintf(buf, size, "uid %lu", uid);
}
