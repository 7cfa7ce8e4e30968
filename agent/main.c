/*
 * certagent: the certificate agent.  Parses the command line, detaches when
 * asked, and runs the agent on the default libuv loop until SIGTERM/SIGINT.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "agent.h"
#include "cliopt.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "version.h"

static const char usage_text[] =
    "usage: certagent [--config FILE] [--socket PATH] [--state-dir DIR]\n"
    "                 [--foreground | --daemon --pid-file FILE] [--log-level LEVEL]\n"
    "                 [--allow-core-dumps]\n"
    "       certagent --install-service [OPTIONS] | --uninstall-service\n"
    "       certagent --version | --help\n"
    "\n"
    "  --config FILE     configuration (default /etc/certagent/certagent.json as root,\n"
    "                    ~/.config/certagent/certagent.json otherwise; may be absent)\n"
    "  --socket PATH     IPC socket (default /run/certagent/certagent.sock as root,\n"
    "                    $XDG_RUNTIME_DIR/certagent/certagent.sock otherwise, or\n"
    "                    /tmp/certagent-UID/certagent.sock without XDG_RUNTIME_DIR)\n"
    "  --state-dir DIR   the store (default /var/lib/certagent as root,\n"
    "                    ~/.local/state/certagent otherwise)\n"
    "  --foreground      stay attached, log to stderr, notify systemd (the default)\n"
    "  --daemon          detach, log to syslog; needs --pid-file\n"
    "  --pid-file FILE   write the process id to FILE\n"
    "  --log-level L     error, warn, info or debug (overrides the config)\n"
    "  --allow-core-dumps\n"
    "                    for debugging: leave core dumps and the dumpable flag\n"
    "                    as they are (by default both are off, as the agent's\n"
    "                    memory holds keys and passwords)\n"
    "  --console         Windows: the same as --foreground\n"
    "  --install-service, --uninstall-service\n"
    "                    Windows: register or remove the service 'certagent' (it runs\n"
    "                    with --service and the other options given) and its Event Log\n"
    "                    source\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the configuration.\n"
    "Documentation: certagent(8), certagent.json(5), and the guides in\n"
    "/usr/share/doc/certagent/.\n";

/*
 * The soft limit of open files is raised to the hard one, at most this: each
 * IPC client, probe and ACME connection takes one (LimitNOFILE= in the unit).
 */
#define AGENT_NOFILE_MAX 65536UL

struct options {
    struct agent_options agent;
    const char *pid_file;
    int daemon;
    int foreground;
    int service;
    int install_service;
    int uninstall_service;
    int allow_core_dumps;
};

static int
parse_args(int argc, char **argv, struct options *o)
{
    static const char *const names[] = {"--config", "--socket", "--state-dir", "--pid-file",
                                        "--log-level"};

    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        const char **targets[] = {&o->agent.config_path, &o->agent.socket_path,
                                  &o->agent.state_dir, &o->pid_file, &o->agent.log_level};
        int matched = 0;

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("certagent %s (protocol %d)\n", CERTAGENT_VERSION, PROTO_VERSION);
            exit(0);
        }
        if (strcmp(argv[i], "--foreground") == 0 || strcmp(argv[i], "--console") == 0) {
            o->foreground = 1;
            continue;
        }
        if (strcmp(argv[i], "--service") == 0) {
            o->service = 1;
            continue;
        }
        if (strcmp(argv[i], "--install-service") == 0) {
            o->install_service = 1;
            continue;
        }
        if (strcmp(argv[i], "--uninstall-service") == 0) {
            o->uninstall_service = 1;
            continue;
        }
        if (strcmp(argv[i], "--daemon") == 0) {
            o->daemon = 1;
            continue;
        }
        if (strcmp(argv[i], "--allow-core-dumps") == 0) {
            o->allow_core_dumps = 1;
            continue;
        }
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]) && !matched; k++) {
            int r = cliopt_value(argc, argv, &i, names[k], targets[k]);

            if (r < 0) {
                fprintf(stderr, "certagent: %s needs a value\n", names[k]);
                return -1;
            }
            matched = r;
        }
        if (!matched) {
            fprintf(stderr, "certagent: unknown argument '%s'\n%s", argv[i], usage_text);
            return -1;
        }
    }
    if (o->daemon && o->foreground) {
        fprintf(stderr, "certagent: --foreground and --daemon exclude each other\n");
        return -1;
    }
    if (o->daemon && o->pid_file == NULL) {
        fprintf(stderr, "certagent: --daemon needs --pid-file FILE\n");
        return -1;
    }
    if (o->agent.log_level != NULL && log_level_parse(o->agent.log_level) < 0) {
        fprintf(stderr, "certagent: unknown log level '%s' (error, warn, info, debug)\n",
                o->agent.log_level);
        return -1;
    }
    return 0;
}

/*
 * OpenSSL's allocator, wiping what it frees: OpenSSL frees some buffers that
 * held a secret without clearing them (the PKCS#12 key derivation's copy of a
 * PFX password, as UTF-16), and a core file or a later bug could show them.
 * realloc never leaves the old block behind uncleared.
 */
static void *
openssl_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return malloc(n);
}

static void
openssl_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (p != NULL) {
        OPENSSL_cleanse(p, platform_alloc_size(p));
        free(p);
    }
}

static void *
openssl_realloc(void *p, size_t n, const char *file, int line)
{
    size_t old;
    void *q;

    if (p == NULL)
        return malloc(n);
    if (n == 0) {
        openssl_free(p, file, line);
        return NULL;
    }
    old = platform_alloc_size(p);
    if ((q = malloc(n)) == NULL)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    openssl_free(p, file, line);
    return q;
}

/*
 * OpenSSL keeps per-thread state (error queue, random generators) that it frees
 * when a thread ends, but libuv's pool threads outlive main: at exit, memory
 * checkers report that state as lost (bounded, once per thread).  One job per
 * pool thread, all held until every thread has one (or a second has passed, if
 * the pool is smaller than thought), frees it.
 */
struct pool_release {
    uv_mutex_t lock;
    uv_cond_t all_in;
    unsigned threads, arrived;
};

static void
pool_release_run(uv_work_t *w)
{
    struct pool_release *p = w->data;
    uint64_t deadline = uv_hrtime() + 1000000000ULL, now;

    uv_mutex_lock(&p->lock);
    if (++p->arrived >= p->threads)
        uv_cond_broadcast(&p->all_in);
    while (p->arrived < p->threads && (now = uv_hrtime()) < deadline)
        (void)uv_cond_timedwait(&p->all_in, &p->lock, deadline - now);
    uv_mutex_unlock(&p->lock);
    OPENSSL_thread_stop();
}

static void
pool_release_done(uv_work_t *w, int status)
{
    (void)w;
    (void)status;
}

static void
release_pool_threads(uv_loop_t *loop)
{
    struct pool_release p;
    uv_work_t *works;
    const char *env = getenv("UV_THREADPOOL_SIZE");
    unsigned n = 4; /* libuv's default and bounds */

    if (env != NULL && atoi(env) > 0)
        n = atoi(env) > 1024 ? 1024 : (unsigned)atoi(env);
    memset(&p, 0, sizeof(p));
    p.threads = n;
    if ((works = calloc(n, sizeof(*works))) == NULL)
        return;
    if (uv_mutex_init(&p.lock) != 0) {
        free(works);
        return;
    }
    if (uv_cond_init(&p.all_in) != 0) {
        uv_mutex_destroy(&p.lock);
        free(works);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        works[i].data = &p;
        if (uv_queue_work(loop, &works[i], pool_release_run, pool_release_done) != 0) {
            uv_mutex_lock(&p.lock);
            p.threads = i; /* fewer jobs: do not wait for the missing ones */
            uv_cond_broadcast(&p.all_in);
            uv_mutex_unlock(&p.lock);
            break;
        }
    }
    uv_run(loop, UV_RUN_DEFAULT);
    uv_cond_destroy(&p.all_in);
    uv_mutex_destroy(&p.lock);
    free(works);
}

/* The agent's life: start, serve until stopped, clean up.  Returns the exit code. */
static int
run_agent(void *arg)
{
    struct options o = *(struct options *)arg;
    struct agent agent;
    uv_loop_t *loop;
    char *cause = NULL;
    char pid[32];
    unsigned long nofile = 0;
    int ready = -1, rc;

    /* First, so that nothing runs dumpable or dies of SIGPIPE (the daemon's fork inherits it). */
    if (platform_process_harden(o.allow_core_dumps, AGENT_NOFILE_MAX, &nofile, &cause) != 0) {
        fprintf(stderr, "certagent: %s (start with --allow-core-dumps to go on without)\n",
                cause != NULL ? cause : "cannot harden the process");
        free(cause);
        return 1;
    }
    if (o.service) {
        log_init(LOG_SINK_SYSLOG, LOG_LEVEL_INFO);
    } else if (o.daemon) {
        if (platform_daemonize(&ready, &cause) != 0) {
            fprintf(stderr, "certagent: %s\n", cause != NULL ? cause : "cannot detach");
            return 1;
        }
        log_init(LOG_SINK_SYSLOG, LOG_LEVEL_INFO);
    } else {
        log_init(LOG_SINK_STDERR, LOG_LEVEL_INFO);
    }
    if (o.agent.log_level != NULL)
        log_set_level((enum log_level)log_level_parse(o.agent.log_level));
    if (nofile != 0)
        log_debug("open files: at most %lu", nofile);
    if (o.allow_core_dumps)
        log_warn("core dumps allowed (--allow-core-dumps): a core file or a debugger attached "
                 "as the agent's user can read the keys and passwords in its memory");
    loop = uv_default_loop();
    if ((rc = agent_start(&agent, loop, &o.agent, &cause)) != 0) {
        const char *msg = cause != NULL ? cause : err_message(rc);

        log_error("cannot start: %s", msg);
        if (o.daemon)
            platform_daemon_ready(ready, msg);
        free(cause);
        return 1;
    }
    if (o.pid_file != NULL) {
        snprintf(pid, sizeof(pid), "%ld\n", platform_pid());
        if (fsutil_write_atomic(o.pid_file, pid, strlen(pid), 0644, &cause) != 0) {
            log_error("cannot write the pid file: %s", cause != NULL ? cause : "error");
            if (o.daemon)
                platform_daemon_ready(ready, cause != NULL ? cause : "cannot write pid file");
            free(cause);
            agent_stop(&agent);
            uv_run(loop, UV_RUN_DEFAULT);
            agent_free(&agent);
            return 1;
        }
    }
    platform_notify("READY=1");
    platform_daemon_ready(ready, NULL);

    uv_run(loop, UV_RUN_DEFAULT);

    agent_free(&agent);
    if (o.pid_file != NULL)
        remove(o.pid_file);
    release_pool_threads(loop);
    rc = uv_loop_close(loop);
    if (rc != 0)
        log_debug("loop closed with handles left: %s", uv_strerror(rc));
    log_info("stopped");
    return 0;
}

int
main(int argc, char **argv)
{
    struct options o;
    char *cause = NULL;
    int rc;

    /* First of all: a hook run through us (platform.h), then nothing inherited for the hooks. */
    if (argc > 1 && strcmp(argv[1], PLATFORM_EXEC_HOOK_ARG) == 0)
        return platform_hook_exec(argc - 2, argv + 2);
    platform_inherited_fds_private();
    platform_hook_launcher_enable();
    /* Before OpenSSL allocates anything (it refuses a change afterwards). */
    if (!CRYPTO_set_mem_functions(openssl_malloc, openssl_realloc, openssl_free))
        fprintf(stderr,
                "certagent: OpenSSL's allocator is in use already: its frees are not wiped\n");
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    if (o.install_service || o.uninstall_service || o.service) {
        if (o.install_service) {
            /* The service runs with the same options (all but this one). */
            const char **args = calloc((size_t)argc, sizeof(*args));
            int n = 0;

            for (int i = 1; args != NULL && i < argc; i++) {
                if (strcmp(argv[i], "--install-service") != 0)
                    args[n++] = argv[i];
            }
            rc = args != NULL ? platform_service_install(args, n, &cause) : -E_NOMEM;
            free(args);
            if (rc == 0)
                printf("certagent: service 'certagent' installed (automatic start)\n");
        } else if (o.uninstall_service) {
            rc = platform_service_uninstall(&cause);
            if (rc == 0)
                printf("certagent: service 'certagent' removed\n");
        } else {
            rc = platform_service_run(run_agent, &o, &cause);
            if (rc > 0)
                return rc; /* the agent's own exit code */
        }
        if (rc != 0) {
            fprintf(stderr, "certagent: %s\n", cause != NULL ? cause : err_message(rc));
            free(cause);
            return rc == -E_BAD_INPUT ? 2 : 1;
        }
        return 0;
    }
    return run_agent(&o);
}
