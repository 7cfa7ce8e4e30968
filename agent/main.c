/*
 * certagent: the certificate agent.  Parses the command line, detaches when
 * asked, and runs the agent on the default libuv loop until SIGTERM/SIGINT.
 */
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
    "       certagent --version | --help\n"
    "\n"
    "  --config FILE     configuration (default /etc/certagent/certagent.json as root,\n"
    "                    ~/.config/certagent/certagent.json otherwise; may be absent)\n"
    "  --socket PATH     IPC socket (default /run/certagent/certagent.sock as root,\n"
    "                    $XDG_RUNTIME_DIR/certagent/certagent.sock otherwise)\n"
    "  --state-dir DIR   the store (default /var/lib/certagent as root,\n"
    "                    ~/.local/state/certagent otherwise)\n"
    "  --foreground      stay attached, log to stderr, notify systemd (the default)\n"
    "  --daemon          detach, log to syslog; needs --pid-file\n"
    "  --pid-file FILE   write the process id to FILE\n"
    "  --log-level L     error, warn, info or debug (overrides the config)\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the configuration.\n"
    "See certagent(8) and certagent.json(5).\n";

struct options {
    struct agent_options agent;
    const char *pid_file;
    int daemon;
    int foreground;
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
        if (strcmp(argv[i], "--foreground") == 0) {
            o->foreground = 1;
            continue;
        }
        if (strcmp(argv[i], "--daemon") == 0) {
            o->daemon = 1;
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

int
main(int argc, char **argv)
{
    struct options o;
    struct agent agent;
    uv_loop_t *loop;
    char *cause = NULL;
    char pid[32];
    int ready = -1, rc;

    if (parse_args(argc, argv, &o) != 0)
        return 2;
    if (o.daemon) {
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
    rc = uv_loop_close(loop);
    if (rc != 0)
        log_debug("loop closed with handles left: %s", uv_strerror(rc));
    log_info("stopped");
    return 0;
}
