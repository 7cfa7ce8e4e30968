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
 * What a peer may do (docs/security.md, "Authorization"); each right includes
 * the ones before it.  read: the store's public view (status, list, show).
 * operate: what makes the agent work or reach the network for the peer, or
 * shows its logs (probe, verify, logs, metrics, trust and CA listings).
 * change: change the store, deploy, export keys.
 */
enum peer_right {
    PEER_RIGHT_READ,
    PEER_RIGHT_OPERATE,
    PEER_RIGHT_CHANGE,
};

/*
 * Has this peer the right?  On Unix: read, anyone who could connect; change,
 * root, the agent's own user and members of socket_gid; operate, those and
 * members of operate_gid (membership: the peer's group at connection, or a
 * supplementary group of its user; -1: no such group).  On Windows the pipe
 * admits SYSTEM and Administrators only, and they have every right.
 */
int platform_peer_has_right(const struct peer *peer, enum peer_right right, long socket_gid,
                            long operate_gid);
/*
 * The id of the group called name: 0, or -E_NOT_FOUND with "group 'NAME'
 * does not exist".  On Windows, which has no such groups (see
 * platform_peer_has_right), 0 and *gid -1.
 */
int platform_group_id(const char *name, long *gid, char **cause);

/*
 * Before binding: creates the socket's directory when missing (0755 for the
 * system location, 0700 otherwise) and refuses one that is not owned by us or
 * root, is writable by group or others (unless sticky), or is a symbolic link
 * owned by another user.  If something listens on path already, fails with
 * -E_BUSY ("another certagent is already listening on PATH"); a stale socket
 * file left by a crash is removed (*removed_stale set to 1).
 */
int platform_socket_prepare(const char *path, int *removed_stale, char **cause);
/*
 * uv_pipe_bind, with the pipe's security in place from its creation: on
 * Windows the first instance is created while this thread's token carries
 * the pipe's DACL as its default (libuv passes no security attributes) and
 * with FILE_FLAG_FIRST_PIPE_INSTANCE (libuv's), so that a pipe another
 * process created first fails the bind with UV_EADDRINUSE.  Returns a libuv
 * error code.
 */
int platform_socket_bind(uv_pipe_t *listener, const char *path);
/*
 * After binding: on Unix sets the socket's group (group name, or NULL for
 * our own) and mode; on Windows gives the pipe a DACL for SYSTEM,
 * Administrators and the agent's own account only, denying network logons
 * (remote clients).  *gid_out receives the group allowed to change things
 * (-1: none beyond root and our user).
 */
int platform_socket_secure(uv_pipe_t *listener, const char *path, const char *group, int mode,
                           long *gid_out, char **cause);
/*
 * At start, before the store's lock is taken or anything in it is read: checks
 * the state directory dir, which exists.  Unix (agent/unix/platform.c): it
 * must belong to the agent's own user (root when the agent runs as root) and
 * not be writable by group or others.  Windows (agent/win/platform.c):
 * refuses it (or the data folder %ProgramData%\certagent that holds it) when
 * owned by an account other than SYSTEM, Administrators or the agent's, gives
 * both a protected DACL for SYSTEM and Administrators (sys_private_sd) and
 * checks that it took.  -E_DENIED naming the directory and the reason.
 */
int platform_state_dir_check(const char *dir, char **cause);
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
 * http.sys SSL bindings, what IIS, WinRM, SSTP and many Windows services
 * serve TLS with (agent/win/httpsys.c; agent/unix/httpsys.c: not available,
 * and platform_httpsys_bind refuses, "Windows only").
 * platform_httpsys_bind points the binding of ipport ("0.0.0.0:443",
 * "[::]:443", "192.0.2.10:8443") at the certificate of thumbprint (40 hex
 * digits) in LocalMachine\store: an existing binding keeps its application
 * id, its checks and its flags (only the certificate changes), a missing one
 * is made with certagent's application id; *created says which.  Thread-safe
 * (httpapi is): called from pool threads.
 */
int platform_httpsys_available(void);
int platform_httpsys_bind(const char *ipport, const char *thumbprint, const char *store,
                          int *created, char **cause);

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

/*
 * Descriptors a hook must not inherit (docs/security.md, "Responders and
 * hooks").  uv_spawn runs no code of ours in the child, and a descriptor
 * that is not close-on-exec (one the agent inherited, one a library opened
 * without O_CLOEXEC) would reach the hook.  So on Unix certagent runs each
 * hook through itself: the child executes this program with
 * PLATFORM_EXEC_HOOK_ARG first, which closes every descriptor above 2 and
 * then executes the hook (no other thread exists in that child, so nothing
 * can open a descriptor in between).  On Windows CreateProcess (which
 * libuv calls with handle inheritance on, for the stdio handles) passes
 * every handle marked inheritable; libuv's own handles are not.
 */
#define PLATFORM_EXEC_HOOK_ARG "--exec-hook"

/*
 * At the very start of main: marks every descriptor above 2 that the agent
 * inherited close-on-exec (Unix; the agent uses no inherited listen
 * sockets, and NOTIFY_SOCKET is a path), its inherited standard handles
 * non-inheritable (Windows).
 */
void platform_inherited_fds_private(void);

/*
 * Called by certagent's main, which handles PLATFORM_EXEC_HOOK_ARG: from now
 * on platform_hook_argv runs hooks through this executable.  Programs that
 * do not call it (unit tests) spawn hooks directly.  A no-op on Windows.
 */
void platform_hook_launcher_enable(void);

/*
 * The argv uv_spawn runs for the hook args (args[0] the program, as
 * uv_spawn's file): once the launcher is enabled (Unix), this executable,
 * PLATFORM_EXEC_HOOK_ARG, then args; else args itself.  *out is
 * NULL-terminated, its strings borrowed; free the array with free().
 * Returns 0 or, as uv_spawn would for the program itself, a libuv error
 * (UV_ENOENT when it is not found, in PATH when it has no slash; UV_EACCES
 * when it is not executable; UV_ENOMEM), so that callers keep naming the
 * reason as before instead of the launcher's exit status 127.
 */
int platform_hook_argv(char *const *args, char ***out);

/*
 * certagent --exec-hook PROGRAM [ARG...]: closes every descriptor above 2
 * and executes PROGRAM (looked up in PATH, argv PROGRAM ARG...).  Returns
 * only on failure: 127 after a message on stderr (the hook's log), or 2
 * without a program and on Windows, which does not use it.
 */
int platform_hook_exec(int argc, char **argv);

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
