/*
 * The agent's platform layer: one header, one implementation per platform
 * (agent/unix/platform.c, agent/win/platform.c), same function names.
 * Functions return 0 or a negative err_code with words in *cause.
 */
#ifndef CERTAGENT_PLATFORM_H
#define CERTAGENT_PLATFORM_H

#include <uv.h>

/* System log (syslog on Unix, the Event Log on Windows). level: enum log_level. */
void platform_syslog_open(const char *ident);
void platform_syslog_write(int level, const char *line);

/* Who is on the other end of an IPC connection. */
struct peer {
    long uid; /* -1 when unknown */
    long gid;
    long pid;
    char name[64]; /* user name, or the uid in digits */
};

/* Reads the peer's credentials (SO_PEERCRED on Linux). */
int platform_peer_get(uv_pipe_t *pipe, struct peer *out);
/*
 * May this peer change the store?  Root, the agent's own user, and members
 * of the socket's group (primary or supplementary) may.
 */
int platform_peer_may_change(const struct peer *peer, long socket_gid);

/*
 * Before binding: creates the socket's directory when missing (0755 for the
 * system location, 0700 otherwise) and refuses one that is not owned by us or
 * is writable by others.  If something listens on path already, fails with
 * -E_BUSY ("another certagent is already listening on PATH"); a stale socket
 * file left by a crash is removed (*removed_stale set to 1).
 */
int platform_socket_prepare(const char *path, int *removed_stale, char **cause);
/*
 * After binding: on Unix sets the socket's group (group name, or NULL for
 * our own) and mode; on Windows gives the pipe a DACL for SYSTEM,
 * Administrators and the agent's own account only, denying network logons
 * (remote clients).  *gid_out receives the group allowed to change things
 * (-1: none beyond root and our user).
 */
int platform_socket_secure(uv_pipe_t *listener, const char *path, const char *group, int mode,
                           long *gid_out, char **cause);
/* Does a group of this name exist? */
int platform_group_exists(const char *name);
/* Removes the socket file (if it is still ours). */
void platform_socket_remove(const char *path);

/* Service manager readiness ("READY=1", "STOPPING=1", "RELOADING=1"); no-op without one. */
void platform_notify(const char *state);

/*
 * --daemon: detaches from the terminal.  The calling process waits until the
 * detached child reports with platform_daemon_ready, then exits with 0 or,
 * when the child reported an error, prints it and exits 1.  Returns (in the
 * child) a handle for platform_daemon_ready.
 */
int platform_daemonize(int *ready_handle, char **cause);
void platform_daemon_ready(int ready_handle, const char *error);

/* Stop (SIGTERM, SIGINT; service stop) and reload (SIGHUP; PARAMCHANGE) signals. */
struct platform_signals {
    uv_signal_t term, intr, hup;
    uv_async_t control; /* wakes the loop for a service control (Windows) */
    int control_ready;
    void (*on_stop)(void *arg);
    void (*on_reload)(void *arg);
    void *arg;
};
int platform_signals_start(uv_loop_t *loop, struct platform_signals *s, char **cause);
void platform_signals_close(struct platform_signals *s);

/*
 * The service manager (the Windows SCM; elsewhere these fail with a message,
 * as systemd runs `certagent --foreground`).  install registers the service
 * "certagent" (automatic start, restart on failure) to run this executable
 * with `--service` and args, and the Event Log source "certagent" (this
 * executable holds its messages); uninstall removes both; run hands the process to the SCM and
 * calls run(arg) as the service's body, returning its exit code.  While a service,
 * platform_notify("READY=1") reports RUNNING and "STOPPING=1" STOP_PENDING,
 * and the SCM's stop and shutdown controls reach on_stop, PARAMCHANGE
 * on_reload.
 */
int platform_service_install(const char *const *args, int nargs, char **cause);
int platform_service_uninstall(char **cause);
int platform_service_run(int (*run)(void *arg), void *arg, char **cause);

/*
 * libcurl CURLOPT_SSL_OPTIONS for HTTPS to a CA when no CA file is given: 0
 * on Unix (OpenSSL's default store), CURLSSLOPT_NATIVE_CA on Windows (the
 * Windows certificate store).
 */
long platform_http_ssl_options(void);

/*
 * The Windows certificate store (agent/win/certstore.c).  Elsewhere
 * (agent/unix/certstore.c) platform_certstore_available is 0 and every other
 * function fails with -E_BAD_INPUT, "the Windows certificate store exists
 * only on Windows".  Stores are LocalMachine system stores ("MY", "CA",
 * "Root", ...); thumbprints are 40 upper-case hex digits (SHA-1).
 * Thread-safe (crypt32 is): called from pool threads.
 */
int platform_certstore_available(void);

/* What platform_certstore_deploy does with a version. */
struct certstore_put {
    const char *store;         /* LocalMachine\STORE receives the certificate and key */
    const char *friendly_name; /* "certagent NAME" */
    const char *previous;      /* thumbprint deployed before (NULL: none recorded) */
    int keep_previous;         /* 1: leave the previous certificate in the store */
    int exportable;            /* 1: the private key may be exported again */
};

/*
 * Imports the PKCS#12 pfx (empty password) into LocalMachine\put->store with
 * the friendly name, its private key exportable only when put->exportable,
 * and its intermediates into LocalMachine\CA.  Unless put->keep_previous,
 * then removes the previous version: the certificate of thumbprint
 * put->previous, or, when none is recorded, every other certificate of the
 * same friendly name.  *thumbprint gets the new certificate's thumbprint.
 */
int platform_certstore_deploy(const struct certstore_put *put, const unsigned char *pfx,
                              size_t pfx_len, char **thumbprint, char **cause);

/*
 * Reads the certificate of this thumbprint in LocalMachine\store with its
 * private key, which must be exportable: either *pfx (a PKCS#12 with an
 * empty password) or, where the system cannot write one, *cert (DER) and
 * *key (a CryptoAPI PRIVATEKEYBLOB).  The caller frees the three (the key
 * material with keys_free_secret).  -E_NOT_FOUND naming thumbprint and
 * store; -E_DENIED when the key is missing or not exportable.
 */
struct certstore_item {
    unsigned char *pfx, *cert, *key;
    size_t pfx_len, cert_len, key_len;
};
int platform_certstore_read(const char *store, const char *thumbprint, struct certstore_item *out,
                            char **cause);

/*
 * Adds a certificate (DER) to LocalMachine\store, or removes it (no error
 * when it is not there).  For the trust store's anchors ("Root") and
 * intermediates ("CA").
 */
int platform_certstore_add_cert(const char *store, const unsigned char *der, size_t len,
                                char **cause);
int platform_certstore_remove_cert(const char *store, const unsigned char *der, size_t len,
                                   char **cause);

/*
 * An administrator's hook command line run through the system shell:
 * fills argv (NULL-terminated: /bin/sh -c COMMAND, or cmd.exe /d /s /c "COMMAND")
 * and the uv_spawn flags it needs.  an entry may be a heap string: free it
 * with platform_shell_free.
 */
void platform_shell_argv(const char *command, char *argv[6], unsigned *flags);
void platform_shell_free(char *argv[6]);
/* uv_spawn flags of a hook run without the shell (its own session on Unix). */
unsigned platform_hook_flags(void);

/* Ends a hook and what it started (its process group on Unix). */
void platform_process_kill_tree(uv_process_t *proc, int hard);

/* Current process id. */
long platform_pid(void);

/*
 * Hardens the agent's process at start.  SIGPIPE is ignored: a write to a
 * socket or pipe whose reader left (by libuv, libcurl, OpenSSL or a hook's
 * stdin) fails with EPIPE instead of killing the agent.  The soft limit of
 * open files is raised to the hard one, at most nofile_max and never lowered,
 * so that clients and probes do not exhaust descriptors; *nofile receives the
 * soft limit now in force (0 where there is none).  Unless allow_core_dumps,
 * no core is dumped (RLIMIT_CORE 0) and the process is not dumpable
 * (PR_SET_DUMPABLE 0): its memory, which holds keys and passwords, is neither
 * written to a core file nor readable by the user's other processes through
 * /proc or ptrace.  Fails (with *cause) only when core dumps cannot be
 * disabled.  Windows has neither SIGPIPE nor a descriptor limit, the service's
 * memory is readable by administrators only, and Windows Error Reporting
 * writes dumps only where an administrator set LocalDumps up: nothing to do.
 */
int platform_process_harden(int allow_core_dumps, unsigned long nofile_max, unsigned long *nofile,
                            char **cause);

/* Bytes usable in a block from malloc (malloc_usable_size, _msize): what a wiping free clears. */
size_t platform_alloc_size(void *p);

#endif
