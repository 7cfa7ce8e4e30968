/*
 * Hook commands (hooks.h).  Each run owns a process handle, two pipes
 * (stdout, stderr) and a timer.  It is finished when the process has exited
 * and both pipes reached EOF, or 2 s after the exit when something the hook
 * started still holds a pipe open.
 */
#include "hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "platform.h"

#define HOOK_LINE_MAX 1024
/* Output logged per run; more is counted and dropped. */
#define HOOK_LOG_MAX (64 * 1024)
#define HOOK_DRAIN_MS 2000
/*
 * What a failed hook printed stays in the log (operate right) and out of the
 * cause, which reaches status (read right) and status.json: a hook may print
 * a secret (issue 14).
 */
#define OUTPUT_IN_LOG "; its output is in the agent's log (certctl logs)"
#define HOOK_KILL_GRACE_MS 5000

struct hook_run;

struct hook_out {
    uv_pipe_t pipe;
    struct hook_run *run;
    char line[HOOK_LINE_MAX];
    size_t len;
    int open;
};

struct hook_run {
    struct hooks *hooks;
    struct hook_run *prev, *next;
    uv_process_t proc;
    uv_timer_t timer;
    struct hook_out out[2];
    char *what;
    int printed; /* it printed something (in the log, not in the cause) */
    size_t logged;
    int64_t status;
    int signal;
    int exited;
    int timed_out;
    int killed_hard;
    int finishing;
    unsigned handles; /* open handles; freed when 0 */
    void (*done)(void *arg, int rc, const char *cause);
    void *arg;
};

struct hooks {
    uv_loop_t *loop;
    struct hook_run *runs;
    int stopping;
};

int
hooks_new(uv_loop_t *loop, struct hooks **out)
{
    struct hooks *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return -E_NOMEM;
    h->loop = loop;
    *out = h;
    return 0;
}

void
hooks_free(struct hooks *h)
{
    free(h);
}

static void
run_free(struct hook_run *r)
{
    struct hooks *h = r->hooks;

    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        h->runs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    free(r->what);
    free(r);
}

static void
handle_closed(uv_handle_t *handle)
{
    struct hook_run *r = handle->data;

    if (--r->handles == 0)
        run_free(r);
}

static void
pipe_closed(uv_handle_t *handle)
{
    struct hook_out *o = handle->data;
    struct hook_run *r = o->run;

    if (--r->handles == 0)
        run_free(r);
}

static void
emit_line(struct hook_run *r, const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    if (len == 0)
        return;
    r->printed = 1;
    if (r->logged >= HOOK_LOG_MAX) {
        r->logged += len;
        return;
    }
    r->logged += len;
    log_info("%s: %.*s", r->what, (int)len, line);
}

static void
flush_out(struct hook_out *o)
{
    if (o->len > 0)
        emit_line(o->run, o->line, o->len);
    o->len = 0;
}

/* Ends the run: reports, then closes every handle. */
static void
finish(struct hook_run *r)
{
    char *cause = NULL;
    int rc = 0;

    if (r->finishing)
        return;
    r->finishing = 1;
    for (int i = 0; i < 2; i++) {
        flush_out(&r->out[i]);
        if (r->out[i].open) {
            uv_read_stop((uv_stream_t *)&r->out[i].pipe);
            r->out[i].open = 0;
        }
        uv_close((uv_handle_t *)&r->out[i].pipe, pipe_closed);
    }
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, handle_closed);
    uv_close((uv_handle_t *)&r->proc, handle_closed);
    if (r->logged > HOOK_LOG_MAX)
        log_warn("%s printed %zu bytes; only the first %d were logged", r->what, r->logged,
                 HOOK_LOG_MAX);
    if (r->timed_out) {
        err_set(&cause, "%s did not finish in time and was stopped", r->what);
        rc = -E_IO;
    } else if (r->signal != 0) {
        err_set(&cause, "%s was killed by signal %d%s", r->what, r->signal,
                r->printed ? OUTPUT_IN_LOG : "");
        rc = -E_IO;
    } else if (r->status != 0) {
        err_set(&cause, "%s exited with status %lld%s", r->what, (long long)r->status,
                r->printed ? OUTPUT_IN_LOG : "");
        rc = -E_IO;
    }
    if (rc != 0)
        log_warn("%s", cause != NULL ? cause : r->what);
    else
        log_info("%s finished", r->what);
    if (r->done != NULL)
        r->done(r->arg, rc, cause);
    free(cause);
}

static void
maybe_finish(struct hook_run *r)
{
    if (r->exited && !r->out[0].open && !r->out[1].open)
        finish(r);
}

static void
on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct hook_out *o = handle->data;

    (void)suggested;
    buf->base = o->line + o->len;
    buf->len = sizeof(o->line) - o->len;
}

static void
on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    struct hook_out *o = stream->data;
    char *nl;

    (void)buf;
    if (n < 0) {
        flush_out(o);
        uv_read_stop(stream);
        o->open = 0;
        maybe_finish(o->run);
        return;
    }
    o->len += (size_t)n;
    while ((nl = memchr(o->line, '\n', o->len)) != NULL) {
        size_t l = (size_t)(nl - o->line) + 1;

        emit_line(o->run, o->line, l);
        memmove(o->line, o->line + l, o->len - l);
        o->len -= l;
    }
    if (o->len == sizeof(o->line))
        flush_out(o); /* a line longer than the buffer is logged in pieces */
}

static void
on_timer(uv_timer_t *t)
{
    struct hook_run *r = t->data;

    if (r->exited) {
        /* Exited, but something it started still holds its output open. */
        finish(r);
        return;
    }
    if (!r->timed_out) {
        r->timed_out = 1;
        log_warn("%s runs too long; stopping it", r->what);
        platform_process_kill_tree(&r->proc, 0);
    } else {
        r->killed_hard = 1;
        platform_process_kill_tree(&r->proc, 1);
    }
    uv_timer_start(&r->timer, on_timer, HOOK_KILL_GRACE_MS, 0);
}

static void
on_exit_cb(uv_process_t *proc, int64_t status, int sig)
{
    struct hook_run *r = proc->data;

    r->exited = 1;
    r->status = status;
    r->signal = sig;
    uv_timer_stop(&r->timer);
    uv_timer_start(&r->timer, on_timer, HOOK_DRAIN_MS, 0);
    maybe_finish(r);
}

static char **
make_env(const char *const *extra, char **cause)
{
    uv_env_item_t *items = NULL;
    int n = 0;
    size_t nextra = 0, k = 0;
    char **envp = NULL;

    while (extra != NULL && extra[nextra] != NULL)
        nextra++;
    if (uv_os_environ(&items, &n) != 0) {
        err_set(cause, "cannot read the agent's environment");
        return NULL;
    }
    if ((envp = calloc((size_t)n + nextra + 1, sizeof(*envp))) == NULL)
        goto fail;
    for (int i = 0; i < n; i++) {
        /* The agent's own CERTAGENT_* variables never leak into a hook's view. */
        if (strncmp(items[i].name, "CERTAGENT_", 10) == 0)
            continue;
        err_set(&envp[k], "%s=%s", items[i].name, items[i].value);
        if (envp[k] == NULL)
            goto fail;
        k++;
    }
    for (size_t i = 0; i < nextra; i++) {
        if ((envp[k] = strdup(extra[i])) == NULL)
            goto fail;
        k++;
    }
    uv_os_free_environ(items, n);
    return envp;
fail:
    if (envp != NULL) {
        for (size_t i = 0; i < k; i++)
            free(envp[i]);
        free(envp);
    }
    uv_os_free_environ(items, n);
    err_set(cause, "out of memory");
    return NULL;
}

static void
free_env(char **envp)
{
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
        free(envp[i]);
    free(envp);
}

/* Is p an absolute path: "/x", "C:\\x" or "C:/x", "\\\\server\\share"? */
static int
absolute(const char *p)
{
    return p[0] == '/' ||
           (((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z')) && p[1] == ':' &&
            (p[2] == '\\' || p[2] == '/')) ||
           (p[0] == '\\' && p[1] == '\\');
}

/*
 * The program of a shell command line: its first word, unquoted when it is
 * in quotes; NULL (nothing to check) when it is not a plain absolute path,
 * or on allocation failure (*nomem set).
 */
static char *
command_program(const char *command, int *nomem)
{
    const char *p = command, *end;
    char quote = 0;
    char *prog;

    *nomem = 0;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '"' || *p == '\'') {
        quote = *p++;
        if ((end = strchr(p, quote)) == NULL)
            return NULL;
    } else {
        end = p + strcspn(p, " \t\n;&|<>()`");
    }
    if (end == p || !absolute(p))
        return NULL;
    if ((prog = malloc((size_t)(end - p) + 1)) == NULL) {
        *nomem = 1;
        return NULL;
    }
    memcpy(prog, p, (size_t)(end - p));
    prog[end - p] = '\0';
    /* Expansions and globs are the shell's: no one path to check. */
    if (!quote && strpbrk(prog, "$*?[~") != NULL) {
        free(prog);
        return NULL;
    }
    return prog;
}

int
hooks_check(const struct hooks_run_args *args, char **cause)
{
    char *prog = NULL, *why = NULL;
    int nomem = 0, rc = 0;

    if (args->argv != NULL) {
        if (args->argv[0] != NULL && absolute(args->argv[0]) &&
            (prog = strdup(args->argv[0])) == NULL)
            nomem = 1;
    } else if (args->command != NULL) {
        prog = command_program(args->command, &nomem);
    }
    if (nomem) {
        rc = -E_NOMEM;
        goto out;
    }
    if (prog == NULL)
        goto out;
    /* A missing or odd program is left to the spawn, which says so as before. */
    if ((rc = fsutil_check_program(prog, &why)) == -E_DENIED)
        err_set(cause, "%s: refusing to run %s: %s", args->what, prog,
                why != NULL ? why : err_message(rc));
    else
        rc = 0;
out:
    free(why);
    free(prog);
    return rc;
}

int
hooks_run(struct hooks *h, const struct hooks_run_args *args, char **cause)
{
    struct hook_run *r = NULL;
    uv_process_options_t opts;
    uv_stdio_container_t stdio[3];
    char *argv[6], **envp = NULL, **spawn_args = NULL;
    unsigned flags = 0;
    int rc;

    if (h->stopping) {
        err_set(cause, "the agent is stopping");
        return -E_UNAVAILABLE;
    }
    /* A hook program others could have replaced is not run as the agent (deploy, dns-01). */
    if ((rc = hooks_check(args, cause)) != 0)
        return rc;
    if ((r = calloc(1, sizeof(*r))) == NULL || (r->what = strdup(args->what)) == NULL) {
        free(r);
        return -E_NOMEM;
    }
    if ((envp = make_env(args->env, cause)) == NULL) {
        free(r->what);
        free(r);
        return -E_NOMEM;
    }
    r->hooks = h;
    r->done = args->done;
    r->arg = args->arg;
    uv_timer_init(h->loop, &r->timer);
    r->timer.data = r;
    for (int i = 0; i < 2; i++) {
        uv_pipe_init(h->loop, &r->out[i].pipe, 0);
        r->out[i].pipe.data = &r->out[i];
        r->out[i].run = r;
    }
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&r->out[0].pipe;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&r->out[1].pipe;
    memset(argv, 0, sizeof(argv));
    memset(&opts, 0, sizeof(opts));
    if (args->argv != NULL) {
        flags = platform_hook_flags();
        opts.file = args->argv[0];
        opts.args = (char **)args->argv;
    } else {
        platform_shell_argv(args->command, argv, &flags);
        opts.file = argv[0];
        opts.args = argv;
    }
    /* Through the launcher, which closes every descriptor but stdio (platform.h). */
    if ((rc = platform_hook_argv(opts.args, &spawn_args)) == 0) {
        opts.file = spawn_args[0];
        opts.args = spawn_args;
    }
    opts.env = envp;
    opts.flags = flags;
    opts.exit_cb = on_exit_cb;
    opts.stdio = stdio;
    opts.stdio_count = 3;
    r->proc.data = r;
    /* Link first: the handles' close callbacks find the run in the list. */
    r->next = h->runs;
    if (h->runs != NULL)
        h->runs->prev = r;
    h->runs = r;
    /* The process handle exists once uv_spawn ran, even when it failed. */
    r->handles = rc == 0 ? 4 : 3;
    if (rc == 0)
        rc = uv_spawn(h->loop, &r->proc, &opts);
    free(spawn_args);
    platform_shell_free(argv);
    free_env(envp);
    if (rc != 0) {
        err_set(cause, "cannot start %s: %s", r->what, uv_strerror(rc));
        r->finishing = 1;
        for (int i = 0; i < 2; i++)
            uv_close((uv_handle_t *)&r->out[i].pipe, pipe_closed);
        uv_close((uv_handle_t *)&r->timer, handle_closed);
        if (r->handles == 4)
            uv_close((uv_handle_t *)&r->proc, handle_closed);
        return -E_IO;
    }
    log_info("%s started (pid %d)", r->what, r->proc.pid);
    for (int i = 0; i < 2; i++) {
        if (uv_read_start((uv_stream_t *)&r->out[i].pipe, on_alloc, on_read) == 0)
            r->out[i].open = 1;
    }
    uv_timer_start(&r->timer, on_timer, (uint64_t)args->timeout_s * 1000u, 0);
    return 0;
}

void
hooks_stop(struct hooks *h)
{
    if (h == NULL)
        return;
    h->stopping = 1;
    for (struct hook_run *r = h->runs; r != NULL; r = r->next) {
        if (r->exited || r->finishing)
            continue;
        log_warn("stopping: %s is still running; asking it to end", r->what);
        r->timed_out = 1;
        platform_process_kill_tree(&r->proc, 0);
        uv_timer_stop(&r->timer);
        uv_timer_start(&r->timer, on_timer, HOOK_KILL_GRACE_MS, 0);
    }
}
