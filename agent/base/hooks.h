/*
 * Administrators' hook commands (deploy and failure hooks): run through the
 * system shell with extra environment variables, their output logged line by
 * line, stopped after a timeout.  Loop thread only.  Hooks never receive a
 * secret: callers pass names and paths only.
 */
#ifndef CERTAGENT_HOOKS_H
#define CERTAGENT_HOOKS_H

#include <uv.h>

struct hooks;

struct hooks_run_args {
    const char *what;        /* "deploy hook for 'www'": log lines start with it */
    const char *command;     /* a shell command line, or NULL with argv */
    const char *const *argv; /* or a program and its arguments, NULL-terminated (no shell) */
    const char *const *env;  /* extra "NAME=value" entries, NULL-terminated */
    unsigned timeout_s;
    /* rc 0: exit status 0; else cause says how it ended (status, signal,
     * timeout); what it printed is in the log only.  May be NULL. */
    void (*done)(void *arg, int rc, const char *cause);
    void *arg;
};

/*
 * Before a hook runs: when its program is an absolute path (the command's
 * first word, or argv[0]), checks it with fsutil_check_program (a file and
 * directories that only root or the agent's user can change; links followed
 * only where they are safe).  -E_DENIED with words naming the path.  A
 * program found through PATH is not checked; a missing one is left to the
 * spawn to report.  Any thread.
 */
int hooks_check(const struct hooks_run_args *args, char **cause);

int hooks_new(uv_loop_t *loop, struct hooks **out);
/* Starts a hook (refused, as hooks_check says, when its program is unsafe); done is called
 * later (never from inside hooks_run). */
int hooks_run(struct hooks *h, const struct hooks_run_args *args, char **cause);
/* Agent stop: running hooks are asked to end (SIGTERM, then SIGKILL after 5 s). */
void hooks_stop(struct hooks *h);
/* After the loop ended. */
void hooks_free(struct hooks *h);

#endif
