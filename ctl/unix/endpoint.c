/*
 * certctl's checks of the agent's Unix socket (ctl/endpoint.h): who owns the
 * socket and its directory, and who listens (SO_PEERCRED).
 */
#define _GNU_SOURCE /* struct ucred */
#include "endpoint.h"

#include <errno.h>
#include <signal.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "sys.h"

/* The service account the packages run the agent as. */
#define AGENT_USER_DEFAULT "certagent"

/* The users trusted to be the agent, and the words that name them. */
struct trusted {
    uid_t uids[4];
    size_t n;
    char words[320]; /* "you (uid 1000), root or the agent's user certagent (uid 999)" */
};

static void
trusted_add(struct trusted *t, uid_t uid)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->uids[i] == uid)
            return;
    }
    if (t->n < sizeof(t->uids) / sizeof(t->uids[0]))
        t->uids[t->n++] = uid;
}

static int
trusted_has(const struct trusted *t, uid_t uid)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->uids[i] == uid)
            return 1;
    }
    return 0;
}

/*
 * Our own user, root, and the agent's account: CERTAGENT_AGENT_USER (a name or
 * a uid) when set, else the user "certagent" when it exists.  -E_BAD_INPUT
 * when CERTAGENT_AGENT_USER names nobody.
 */
static int
trusted_init(struct trusted *t, char **cause)
{
    const char *name = getenv("CERTAGENT_AGENT_USER");
    struct passwd pw, *res = NULL;
    char pwbuf[2048], agent[128] = "";
    int explicit = name != NULL && name[0] != '\0';

    memset(t, 0, sizeof(*t));
    trusted_add(t, geteuid());
    trusted_add(t, getuid());
    trusted_add(t, 0);
    if (!explicit)
        name = AGENT_USER_DEFAULT;
    if (getpwnam_r(name, &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res != NULL) {
        trusted_add(t, pw.pw_uid);
        snprintf(agent, sizeof(agent), " or the agent's user %s (uid %lu)", pw.pw_name,
                 (unsigned long)pw.pw_uid);
    } else if (explicit) {
        char *end;
        unsigned long uid;

        errno = 0;
        uid = strtoul(name, &end, 10);
        if (name[0] < '0' || name[0] > '9' || *end != '\0' || errno != 0 ||
            uid != (unsigned long)(uid_t)uid) {
            err_set(cause, "CERTAGENT_AGENT_USER names no user: '%s'", name);
            return -E_BAD_INPUT;
        }
        trusted_add(t, (uid_t)uid);
        snprintf(agent, sizeof(agent), " or the agent's user (uid %lu)", uid);
    }
    if (geteuid() == 0)
        snprintf(t->words, sizeof(t->words), "root%s", agent);
    else
        snprintf(t->words, sizeof(t->words), "you (uid %lu)%s%s", (unsigned long)geteuid(),
                 agent[0] != '\0' ? ", root" : " or root", agent);
    return 0;
}

/*
 * stat of path, where a symbolic link counts only when a trusted user owns
 * it.  0, -E_UNAVAILABLE with the system's words, or -E_DENIED.
 */
static int
trusted_stat(const struct trusted *t, const char *what, const char *path, struct stat *st,
             char **cause)
{
    char who[96];

    if (lstat(path, st) != 0) {
        err_set(cause, "%s", uv_strerror(uv_translate_sys_error(errno)));
        return -E_UNAVAILABLE;
    }
    if (!S_ISLNK(st->st_mode))
        return 0;
    if (!trusted_has(t, st->st_uid)) {
        sys_uid_words((unsigned long)st->st_uid, who, sizeof(who));
        err_set(cause,
                "%s %s is a symbolic link owned by %s, not by %s: another user may be posing as "
                "the agent; refusing it (nothing was sent)",
                what, path, who, t->words);
        return -E_DENIED;
    }
    if (stat(path, st) != 0) {
        err_set(cause, "%s", uv_strerror(uv_translate_sys_error(errno)));
        return -E_UNAVAILABLE;
    }
    return 0;
}

int
endpoint_check_path(const char *path, char **cause)
{
    struct trusted t;
    struct stat st;
    char *dir = NULL, *slash, who[96];
    int rc;

    if ((rc = trusted_init(&t, cause)) != 0)
        goto out;
    if ((dir = strdup(path)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if ((slash = strrchr(dir, '/')) == NULL) {
        free(dir);
        if ((dir = strdup(".")) == NULL) {
            rc = -E_NOMEM;
            goto out;
        }
    } else {
        slash[slash == dir ? 1 : 0] = '\0'; /* "/x.sock" is in "/" */
    }
    if ((rc = trusted_stat(&t, "the socket's directory", dir, &st, cause)) != 0)
        goto out;
    if (!S_ISDIR(st.st_mode)) {
        err_set(cause, "%s is not a directory", dir);
        rc = -E_UNAVAILABLE;
        goto out;
    }
    if (!trusted_has(&t, st.st_uid)) {
        sys_uid_words((unsigned long)st.st_uid, who, sizeof(who));
        err_set(cause,
                "the socket's directory %s is owned by %s, not by %s: another user may be posing "
                "as the agent; refusing it (nothing was sent)",
                dir, who, t.words);
        rc = -E_DENIED;
        goto out;
    }
    /* In a sticky directory (/tmp) others cannot replace what they do not own. */
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
        err_set(cause,
                "the socket's directory %s is writable by group or others (mode %04o): another "
                "user may have replaced the socket; refusing it (nothing was sent)",
                dir, (unsigned)(st.st_mode & 07777));
        rc = -E_DENIED;
        goto out;
    }
    if ((rc = trusted_stat(&t, "the socket", path, &st, cause)) != 0)
        goto out;
    if (!trusted_has(&t, st.st_uid)) {
        sys_uid_words((unsigned long)st.st_uid, who, sizeof(who));
        err_set(cause,
                "the socket is owned by %s, not by %s: another user may be posing as the agent; "
                "refusing it (nothing was sent)",
                who, t.words);
        rc = -E_DENIED;
        goto out;
    }
out:
    free(dir);
    return rc;
}

int
endpoint_check_server(uv_pipe_t *pipe, char **cause)
{
    struct trusted t;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    uv_os_fd_t fd;
    char who[96];
    int rc;

    if ((rc = trusted_init(&t, cause)) != 0)
        return rc;
    if (uv_fileno((uv_handle_t *)pipe, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        err_set(cause,
                "cannot tell who listens on the socket (%s): refusing it (nothing was sent)",
                strerror(errno));
        return -E_DENIED;
    }
    if (!trusted_has(&t, cred.uid)) {
        sys_uid_words((unsigned long)cred.uid, who, sizeof(who));
        err_set(cause,
                "the process listening there (pid %ld) runs as %s, not as %s: it is not the "
                "agent; refusing it (nothing was sent)",
                (long)cred.pid, who, t.words);
        return -E_DENIED;
    }
    return 0;
}

void
endpoint_init(void)
{
    signal(SIGPIPE, SIG_IGN);
}
