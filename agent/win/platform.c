/*
 * The agent's platform layer on Windows: console mode (--console/--foreground),
 * the named pipe and its DACL, the Event Log sink and its event source, stop
 * signals and the service (entry, install, uninstall).  The certificate store
 * is in certstore.c.
 */
#include "platform.h"

#include <ctype.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <curl/curl.h>
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <shlobj.h>

#include "err.h"
#include "fsutil.h"
#include "paths.h"
#include "eventlog.h" /* generated from eventlog.mc: MSG_CERTAGENT_LINE */
#include "sys.h"

#define EVENT_SOURCE_KEY "SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\certagent"

static HANDLE event_source;

/* The service, when the process runs as one. */
static SERVICE_STATUS_HANDLE service_handle;
static SERVICE_STATUS service_status;
static struct platform_signals *service_signals;
static volatile LONG pending_stop, pending_reload;
static int (*service_body)(void *arg);
static void *service_arg;
static int service_exit;

void
platform_syslog_open(const char *ident)
{
    event_source = RegisterEventSourceA(NULL, ident);
}

void
platform_syslog_write(int level, const char *line)
{
    static const WORD types[] = {EVENTLOG_ERROR_TYPE, EVENTLOG_WARNING_TYPE,
                                 EVENTLOG_INFORMATION_TYPE, EVENTLOG_INFORMATION_TYPE};
    const char *strings[1] = {line};

    if (level < 0 || level > 3)
        level = 0;
    if (event_source != NULL)
        ReportEventA(event_source, types[level], 0, MSG_CERTAGENT_LINE, NULL, 1, 0, strings, NULL);
}

int
platform_peer_get(uv_pipe_t *pipe, struct peer *out)
{
    uv_os_fd_t h;
    ULONG pid = 0;

    memset(out, 0, sizeof(*out));
    out->uid = out->gid = out->pid = -1;
    snprintf(out->name, sizeof(out->name), "unknown");
    if (uv_fileno((uv_handle_t *)pipe, &h) != 0)
        return -E_IO;
    if (GetNamedPipeClientProcessId(h, &pid)) {
        out->pid = (long)pid;
        snprintf(out->name, sizeof(out->name), "process %lu", (unsigned long)pid);
    }
    return 0;
}

int
platform_peer_has_right(const struct peer *peer, enum peer_right right, long socket_gid,
                        long operate_gid)
{
    /*
     * The pipe admits SYSTEM and Administrators only (its DACL grants nobody
     * else access): whoever connected has every right.
     */
    (void)peer;
    (void)right;
    (void)socket_gid;
    (void)operate_gid;
    return 1;
}

int
platform_group_id(const char *name, long *gid, char **cause)
{
    /* No Unix groups: operate_group grants nothing (every peer has every right). */
    (void)name;
    (void)cause;
    *gid = -1;
    return 0;
}

int
platform_socket_prepare(const char *path, int *removed_stale, char **cause)
{
    HANDLE h;
    DWORD e;
    ULONG pid = 0;

    *removed_stale = 0;
    if (strncmp(path, "\\\\.\\pipe\\", 9) != 0) {
        err_set(cause, "'%s' is not a named pipe (\\\\.\\pipe\\NAME)", path);
        return -E_BAD_INPUT;
    }
    /*
     * Named pipes vanish with their server: one that exists belongs to a
     * running process, another agent or one that created the name first to
     * receive certctl's requests.  Either way this agent does not start.
     */
    h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    e = GetLastError();
    if (h != INVALID_HANDLE_VALUE) {
        if (!GetNamedPipeServerProcessId(h, &pid))
            pid = 0;
        CloseHandle(h);
        err_set(cause,
                "a process (pid %lu) is already listening on %s: another certagent, or a "
                "program that took the pipe's name first; refusing to start",
                (unsigned long)pid, path);
        return -E_BUSY;
    }
    if (e == ERROR_PIPE_BUSY) {
        err_set(cause, "another certagent is already listening on %s (all its instances busy)",
                path);
        return -E_BUSY;
    }
    if (e == ERROR_ACCESS_DENIED) {
        err_set(cause,
                "the pipe %s already exists and refuses this agent: another program created it "
                "(maybe to receive certctl's requests); refusing to start",
                path);
        return -E_BUSY;
    }
    return 0;
}

/* The string form of this process's user SID (LocalFree it), or NULL. */
static char *
own_sid(void)
{
    HANDLE token;
    union {
        TOKEN_USER user;
        char buf[256];
    } info;
    DWORD len = 0;
    char *sid = NULL;

    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
        return NULL;
    if (GetTokenInformation(token, TokenUser, &info, sizeof(info), &len))
        ConvertSidToStringSidA(info.user.User.Sid, &sid);
    CloseHandle(token);
    return sid;
}

/*
 * The pipe's security descriptor (LocalFree it), or NULL: network logons
 * (remote clients) denied first, then SYSTEM, Administrators and this
 * process's account allowed.
 */
static PSECURITY_DESCRIPTOR
pipe_sd(void)
{
    char sddl[512], *sid = own_sid();
    PSECURITY_DESCRIPTOR sd = NULL;

    snprintf(sddl, sizeof(sddl), "D:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)%s%s%s",
             sid != NULL ? "(A;;GA;;;" : "", sid != NULL ? sid : "", sid != NULL ? ")" : "");
    if (sid != NULL)
        LocalFree(sid);
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL))
        return NULL;
    return sd;
}

int
platform_socket_bind(uv_pipe_t *listener, const char *path)
{
    PSECURITY_DESCRIPTOR sd = pipe_sd();
    PACL dacl = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    TOKEN_DEFAULT_DACL def;
    HANDLE token = NULL;
    int rc, impersonating = 0;

    /*
     * libuv creates the pipe without security attributes: it then takes the
     * default DACL of the creating thread's token.  This thread impersonates
     * itself, with the pipe's DACL as its token's default, for the bind only.
     */
    if (sd == NULL || !GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted) ||
        !ImpersonateSelf(SecurityImpersonation)) {
        rc = uv_translate_sys_error((int)GetLastError());
        goto out;
    }
    impersonating = 1;
    def.DefaultDacl = dacl;
    if (!OpenThreadToken(GetCurrentThread(), TOKEN_ADJUST_DEFAULT, TRUE, &token) ||
        !SetTokenInformation(token, TokenDefaultDacl, &def, sizeof(def))) {
        rc = uv_translate_sys_error((int)GetLastError());
        goto out;
    }
    rc = uv_pipe_bind(listener, path);
out:
    if (impersonating)
        RevertToSelf();
    if (token != NULL)
        CloseHandle(token);
    if (sd != NULL)
        LocalFree(sd);
    return rc;
}

int
platform_socket_secure(uv_pipe_t *listener, const char *path, const char *group, int mode,
                       long *gid_out, char **cause)
{
    PSECURITY_DESCRIPTOR sd = pipe_sd(), now = NULL;
    PACL dacl = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    uv_os_fd_t h;
    char *who = NULL;
    DWORD e;
    int rc = 0;

    (void)group;
    (void)mode;
    *gid_out = -1;
    if (uv_fileno((uv_handle_t *)listener, &h) != 0) {
        err_set(cause, "cannot secure %s: no pipe handle", path);
        rc = -E_INTERNAL;
        goto out;
    }
    if (sd == NULL || !GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted)) {
        err_set(cause, "cannot build the security of %s (error %lu)", path,
                (unsigned long)GetLastError());
        rc = -E_INTERNAL;
        goto out;
    }
    /*
     * The pipe was created with this DACL (platform_socket_bind); set again,
     * protected, for systems that do not take a pipe's DACL from the token
     * (Wine), then read back before the first client is accepted.
     */
    e = SetSecurityInfo(h, SE_KERNEL_OBJECT,
                        DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION, NULL,
                        NULL, dacl, NULL);
    if (e == ERROR_SUCCESS)
        e = GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, NULL, NULL,
                            &now);
    if (e != ERROR_SUCCESS) {
        err_set(cause, "cannot restrict %s to SYSTEM and Administrators (error %lu)", path,
                (unsigned long)e);
        rc = -E_DENIED;
        goto out;
    }
    if (sys_sd_private(now, &who) != 0) {
        err_set(cause, "the pipe %s still lets in %s: refusing to serve it", path,
                who != NULL ? who : "other accounts");
        rc = -E_DENIED;
    }
out:
    free(who);
    if (now != NULL)
        LocalFree(now);
    if (sd != NULL)
        LocalFree(sd);
    return rc;
}

/*
 * Opens path (a folder) for its security, refusing a link (junction or
 * symbolic link) not made by a trusted account and a folder owned by
 * another account.  what names it in messages.
 */
static int
open_private_dir(const char *path, const char *what, HANDLE *out, char **cause)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    PSID owner = NULL;
    HANDLE h;
    BY_HANDLE_FILE_INFORMATION info;
    char *name = NULL;
    DWORD e;
    int rc = 0;

    *out = INVALID_HANDLE_VALUE;
    memset(&info, 0, sizeof(info));
    /* The link itself first, then (when it is one) what it leads to. */
    for (int follow = 0; follow < 2; follow++) {
        h = CreateFileA(
            path, READ_CONTROL | WRITE_DAC, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            NULL, OPEN_EXISTING,
            FILE_FLAG_BACKUP_SEMANTICS | (follow ? 0 : FILE_FLAG_OPEN_REPARSE_POINT), NULL);
        if (h == INVALID_HANDLE_VALUE) {
            e = GetLastError();
            err_set(cause, "cannot open the %s %s (error %lu)", what, path, (unsigned long)e);
            return e == ERROR_ACCESS_DENIED ? -E_DENIED : -E_IO;
        }
        e = GetSecurityInfo(h, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION, &owner, NULL, NULL,
                            NULL, &sd);
        if (e != ERROR_SUCCESS) {
            err_set(cause, "cannot read the owner of the %s %s (error %lu)", what, path,
                    (unsigned long)e);
            rc = -E_IO;
        } else if (!sys_sid_trusted(owner)) {
            name = sys_sid_name(owner);
            err_set(cause,
                    "the %s %s is owned by %s, not by SYSTEM or Administrators: another "
                    "account made it and may have put files in it; remove it (or take it: "
                    "takeown /a /r /d y /f \"%s\") and start again",
                    what, path, name != NULL ? name : "another account", path);
            rc = -E_DENIED;
        } else if (!GetFileInformationByHandle(h, &info)) {
            err_set(cause, "cannot read the %s %s (error %lu)", what, path,
                    (unsigned long)GetLastError());
            rc = -E_IO;
        } else if (!(info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)) {
            err_set(cause, "the %s %s is not a folder", what, path);
            rc = -E_BAD_INPUT;
        }
        free(name);
        name = NULL;
        LocalFree(sd);
        sd = NULL;
        if (rc != 0 || follow || !(info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT))
            break;
        CloseHandle(h);
    }
    if (rc != 0) {
        CloseHandle(h);
        return rc;
    }
    *out = h;
    return 0;
}

/*
 * Gives the folder path the private DACL (sys_private_sd) unless it has it
 * already, and checks it afresh.
 */
static int
protect_dir(const char *path, const char *what, char **cause)
{
    PSECURITY_DESCRIPTOR want = NULL, now = NULL;
    SECURITY_DESCRIPTOR_CONTROL control = 0;
    DWORD revision, e;
    PACL dacl = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    HANDLE h;
    char *who = NULL;
    int rc;

    if ((rc = open_private_dir(path, what, &h, cause)) != 0)
        return rc;
    /* Already private and protected: leave it (setting it walks the whole tree). */
    if (GetNamedSecurityInfoA(path, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, NULL,
                              NULL, &now) == ERROR_SUCCESS &&
        sys_sd_private(now, NULL) == 0 && GetSecurityDescriptorControl(now, &control, &revision) &&
        (control & SE_DACL_PROTECTED))
        goto out;
    if ((want = sys_private_sd(1)) == NULL ||
        !GetSecurityDescriptorDacl(want, &present, &dacl, &defaulted)) {
        err_set(cause, "cannot build the security of the %s %s (error %lu)", what, path,
                (unsigned long)GetLastError());
        rc = -E_INTERNAL;
        goto out;
    }
    /*
     * SetSecurityInfo also passes the new inherited entries on to what the
     * folder holds; Wine 8's merges the parent's entries in despite the
     * protection, so the descriptor is then set as it is.
     */
    e = SetSecurityInfo(h, SE_FILE_OBJECT,
                        DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION, NULL,
                        NULL, dacl, NULL);
    if (e == ERROR_SUCCESS &&
        !SetKernelObjectSecurity(
            h, DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION, want))
        e = GetLastError();
    if (e != ERROR_SUCCESS) {
        err_set(cause, "cannot restrict the %s %s to SYSTEM and Administrators (error %lu)", what,
                path, (unsigned long)e);
        rc = e == ERROR_ACCESS_DENIED ? -E_DENIED : -E_IO;
        goto out;
    }
    if (now != NULL)
        LocalFree(now);
    now = NULL;
    e = GetNamedSecurityInfoA(path, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, NULL,
                              NULL, &now);
    if (e != ERROR_SUCCESS || sys_sd_private(now, &who) != 0) {
        err_set(cause,
                "the %s %s still lets in %s after its DACL was set (a volume without access "
                "control?): refusing it",
                what, path, who != NULL ? who : "other accounts");
        rc = -E_DENIED;
    }
out:
    free(who);
    if (now != NULL)
        LocalFree(now);
    if (want != NULL)
        LocalFree(want);
    CloseHandle(h);
    return rc;
}

/* Is a the folder b (case and trailing separators aside)? */
static int
same_dir(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    while (la > 0 && (a[la - 1] == '\\' || a[la - 1] == '/'))
        la--;
    while (lb > 0 && (b[lb - 1] == '\\' || b[lb - 1] == '/'))
        lb--;
    if (la != lb)
        return 0;
    for (size_t i = 0; i < la; i++) {
        char x = a[i] == '/' ? '\\' : a[i], y = b[i] == '/' ? '\\' : b[i];

        if (tolower((unsigned char)x) != tolower((unsigned char)y))
            return 0;
    }
    return 1;
}

/* The folder of path (heap string), NULL when it has none or on allocation failure. */
static char *
folder_of(const char *path)
{
    const char *last = NULL;
    char *d;

    for (const char *p = path; *p != '\0'; p++) {
        if (*p == '\\' || *p == '/')
            last = p;
    }
    if (last == NULL || last == path || (d = malloc((size_t)(last - path) + 1)) == NULL)
        return NULL;
    memcpy(d, path, (size_t)(last - path));
    d[last - path] = '\0';
    return d;
}

int
platform_state_dir_check(const char *dir, char **cause)
{
    struct paths sys;
    char common[MAX_PATH], *data = NULL, *installed = NULL, *parent = NULL;
    int rc;

    if (!fsutil_is_dir(dir) && (rc = fsutil_mkdir_p(dir, 0700, cause)) != 0)
        return rc;
    if ((rc = paths_system(&sys)) != 0)
        return rc;
    /*
     * The data folder (the config and, by default, the store) is protected
     * when the store is in it: a user who may create files there could
     * otherwise plant certagent.json.  It is %ProgramData%\certagent, or the
     * MSI's [CommonAppDataFolder]certagent where a service's %ProgramData%
     * differs (Wine gives services C:\users\Public).
     */
    data = folder_of(sys.config);
    if (SUCCEEDED(SHGetFolderPathA(NULL, CSIDL_COMMON_APPDATA, NULL, SHGFP_TYPE_CURRENT, common)))
        installed = fsutil_join(common, "certagent");
    parent = folder_of(dir);
    if (parent != NULL && ((data != NULL && same_dir(data, parent)) ||
                           (installed != NULL && same_dir(installed, parent))))
        rc = protect_dir(parent, "data folder", cause);
    if (rc == 0)
        rc = protect_dir(dir, "state directory", cause);
    free(data);
    free(installed);
    free(parent);
    paths_free(&sys);
    return rc;
}

int
platform_group_exists(const char *name)
{
    (void)name;
    return 0;
}

void
platform_socket_remove(const char *path)
{
    (void)path; /* a named pipe goes away with its last handle */
}

static void
report_status(DWORD state, DWORD wait_hint)
{
    if (service_handle == NULL)
        return;
    service_status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    service_status.dwCurrentState = state;
    service_status.dwControlsAccepted =
        state == SERVICE_RUNNING
            ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_PARAMCHANGE
            : 0;
    service_status.dwWaitHint = wait_hint;
    if (state == SERVICE_RUNNING || state == SERVICE_STOPPED)
        service_status.dwCheckPoint = 0;
    else
        service_status.dwCheckPoint++;
    SetServiceStatus(service_handle, &service_status);
}

void
platform_notify(const char *state)
{
    if (strncmp(state, "READY=1", 7) == 0)
        report_status(SERVICE_RUNNING, 0);
    else if (strncmp(state, "STOPPING=1", 10) == 0)
        report_status(SERVICE_STOP_PENDING, 30000);
}

int
platform_daemonize(int *ready_handle, char **cause)
{
    *ready_handle = -1;
    err_set(cause, "--daemon is for Unix; on Windows run the service, or --foreground");
    return -E_BAD_INPUT;
}

void
platform_daemon_ready(int ready_handle, const char *error)
{
    (void)ready_handle;
    (void)error;
}

static void
on_signal(uv_signal_t *handle, int signum)
{
    struct platform_signals *s = handle->data;

    (void)signum;
    if (s->on_stop != NULL)
        s->on_stop(s->arg);
}

/* On the loop: act on what the service control handler asked for. */
static void
on_control(uv_async_t *async)
{
    struct platform_signals *s = async->data;

    if (InterlockedExchange(&pending_reload, 0) && s->on_reload != NULL)
        s->on_reload(s->arg);
    if (InterlockedExchange(&pending_stop, 0) && s->on_stop != NULL)
        s->on_stop(s->arg);
}

/* SCM thread: never touches the loop except through uv_async_send. */
static DWORD WINAPI
service_control(DWORD control, DWORD type, void *data, void *context)
{
    (void)type;
    (void)data;
    (void)context;
    switch (control) {
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_SHUTDOWN:
        report_status(SERVICE_STOP_PENDING, 30000);
        InterlockedExchange(&pending_stop, 1);
        break;
    case SERVICE_CONTROL_PARAMCHANGE:
        InterlockedExchange(&pending_reload, 1);
        break;
    case SERVICE_CONTROL_INTERROGATE:
        return NO_ERROR;
    default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
    if (service_signals != NULL && service_signals->control_ready)
        uv_async_send(&service_signals->control);
    return NO_ERROR;
}

int
platform_signals_start(uv_loop_t *loop, struct platform_signals *s, char **cause)
{
    uv_signal_t *handles[] = {&s->term, &s->intr};
    int nums[] = {SIGBREAK, SIGINT};
    int rc;

    for (int i = 0; i < 2; i++) {
        if ((rc = uv_signal_init(loop, handles[i])) != 0 ||
            (rc = uv_signal_start(handles[i], on_signal, nums[i])) != 0) {
            err_set(cause, "cannot watch signal %d: %s", nums[i], uv_strerror(rc));
            return -E_INTERNAL;
        }
        handles[i]->data = s;
        uv_unref((uv_handle_t *)handles[i]);
    }
    if ((rc = uv_async_init(loop, &s->control, on_control)) != 0) {
        err_set(cause, "cannot set up service controls: %s", uv_strerror(rc));
        return -E_INTERNAL;
    }
    s->control.data = s;
    s->control_ready = 1;
    uv_unref((uv_handle_t *)&s->control);
    service_signals = s;
    /* A stop that arrived before the loop was ready. */
    if (pending_stop)
        uv_async_send(&s->control);
    return 0;
}

void
platform_signals_close(struct platform_signals *s)
{
    uv_signal_t *handles[] = {&s->term, &s->intr};

    for (int i = 0; i < 2; i++) {
        if (handles[i]->loop != NULL && !uv_is_closing((uv_handle_t *)handles[i]))
            uv_close((uv_handle_t *)handles[i], NULL);
    }
    if (s->control_ready && !uv_is_closing((uv_handle_t *)&s->control)) {
        s->control_ready = 0;
        service_signals = NULL;
        uv_close((uv_handle_t *)&s->control, NULL);
    }
}

static void WINAPI
service_main(DWORD argc, char **argv)
{
    (void)argc;
    (void)argv;
    service_handle = RegisterServiceCtrlHandlerExA("certagent", service_control, NULL);
    if (service_handle == NULL)
        return;
    report_status(SERVICE_START_PENDING, 10000);
    service_exit = service_body(service_arg);
    service_status.dwWin32ExitCode = service_exit == 0 ? NO_ERROR : ERROR_SERVICE_SPECIFIC_ERROR;
    service_status.dwServiceSpecificExitCode = (DWORD)service_exit;
    report_status(SERVICE_STOPPED, 0);
}

int
platform_service_run(int (*run)(void *arg), void *arg, char **cause)
{
    SERVICE_TABLE_ENTRYA table[] = {{(char *)"certagent", service_main}, {NULL, NULL}};
    char buf[256];

    service_body = run;
    service_arg = arg;
    if (!StartServiceCtrlDispatcherA(table)) {
        DWORD e = GetLastError();

        FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, e, 0, buf,
                       sizeof(buf), NULL);
        err_set(cause, "cannot run as a service (%lu: %s); to run in a console use --console",
                (unsigned long)e, buf);
        return -E_IO;
    }
    return service_exit;
}

static int
scm_error(char **cause, const char *what)
{
    DWORD e = GetLastError();
    char buf[256] = "";

    FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, e, 0, buf,
                   sizeof(buf), NULL);
    for (size_t n = strlen(buf); n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n'); n--)
        buf[n - 1] = '\0';
    err_set(cause, "%s: %s (error %lu)", what, buf, (unsigned long)e);
    return e == ERROR_ACCESS_DENIED ? -E_DENIED : e == ERROR_SERVICE_EXISTS ? -E_EXISTS : -E_IO;
}

/*
 * The event source "certagent" in the Application log: certagent.exe holds
 * its message table (eventlog.mc) for error, warning and information events.
 */
static int
event_source_register(const char *exe, char **cause)
{
    DWORD types = EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE;
    HKEY key;
    LONG e;

    e = RegCreateKeyExA(HKEY_LOCAL_MACHINE, EVENT_SOURCE_KEY, 0, NULL, REG_OPTION_NON_VOLATILE,
                        KEY_SET_VALUE, NULL, &key, NULL);
    if (e == ERROR_SUCCESS) {
        e = RegSetValueExA(key, "EventMessageFile", 0, REG_EXPAND_SZ, (const BYTE *)exe,
                           (DWORD)strlen(exe) + 1);
        if (e == ERROR_SUCCESS)
            e = RegSetValueExA(key, "TypesSupported", 0, REG_DWORD, (const BYTE *)&types,
                               sizeof(types));
        RegCloseKey(key);
    }
    if (e != ERROR_SUCCESS) {
        SetLastError((DWORD)e);
        return scm_error(
            cause, "cannot register the event source 'certagent' (HKLM\\" EVENT_SOURCE_KEY ")");
    }
    return 0;
}

/* Removes the event source; one that is not there is fine. */
static int
event_source_unregister(char **cause)
{
    LONG e = RegDeleteKeyA(HKEY_LOCAL_MACHINE, EVENT_SOURCE_KEY);

    if (e != ERROR_SUCCESS && e != ERROR_FILE_NOT_FOUND) {
        SetLastError((DWORD)e);
        return scm_error(
            cause, "cannot remove the event source 'certagent' (HKLM\\" EVENT_SOURCE_KEY ")");
    }
    return 0;
}

int
platform_service_install(const char *const *args, int nargs, char **cause)
{
    char exe[MAX_PATH], cmd[4096] = "";
    SC_HANDLE scm = NULL, svc = NULL;
    SERVICE_DESCRIPTIONA desc;
    SC_ACTION actions[3] = {
        {SC_ACTION_RESTART, 5000}, {SC_ACTION_RESTART, 5000}, {SC_ACTION_RESTART, 60000}};
    SERVICE_FAILURE_ACTIONSA failure;
    int rc = 0;

    if (GetModuleFileNameA(NULL, exe, sizeof(exe)) == 0 ||
        sys_append_quoted_arg(cmd, sizeof(cmd), exe))
        return scm_error(cause, "cannot find this executable");
    snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " --service");
    for (int i = 0; i < nargs; i++) {
        if (sys_append_quoted_arg(cmd, sizeof(cmd), args[i]) != 0) {
            err_set(cause, "argument '%s' cannot be passed to the service", args[i]);
            return -E_BAD_INPUT;
        }
    }
    if ((scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_CREATE_SERVICE)) == NULL)
        return scm_error(cause, "cannot open the service manager");
    svc = CreateServiceA(scm, "certagent", "certagent certificate agent", SERVICE_ALL_ACCESS,
                         SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START, SERVICE_ERROR_NORMAL, cmd,
                         NULL, NULL, NULL, NULL, NULL);
    if (svc == NULL) {
        rc = scm_error(cause, "cannot create the service 'certagent'");
        goto out;
    }
    desc.lpDescription = (char *)"Keeps TLS certificates valid: ACME issuance and renewal, "
                                 "imports, trust upkeep. Managed with certctl.";
    ChangeServiceConfig2A(svc, SERVICE_CONFIG_DESCRIPTION, &desc);
    memset(&failure, 0, sizeof(failure));
    failure.dwResetPeriod = 86400;
    failure.cActions = 3;
    failure.lpsaActions = actions;
    ChangeServiceConfig2A(svc, SERVICE_CONFIG_FAILURE_ACTIONS, &failure);
    rc = event_source_register(exe, cause);
out:
    if (svc != NULL)
        CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return rc;
}

int
platform_service_uninstall(char **cause)
{
    SC_HANDLE scm, svc;
    SERVICE_STATUS st;
    int rc = 0;

    if ((scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_CONNECT)) == NULL)
        return scm_error(cause, "cannot open the service manager");
    if ((svc = OpenServiceA(scm, "certagent", SERVICE_STOP | DELETE | SERVICE_QUERY_STATUS)) ==
        NULL) {
        rc = scm_error(cause, "cannot open the service 'certagent'");
        CloseServiceHandle(scm);
        return rc;
    }
    ControlService(svc, SERVICE_CONTROL_STOP, &st);
    if (!DeleteService(svc))
        rc = scm_error(cause, "cannot delete the service 'certagent'");
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    if (rc == 0)
        rc = event_source_unregister(cause);
    return rc;
}

int
platform_process_harden(int allow_core_dumps, unsigned long nofile_max, unsigned long *nofile,
                        char **cause)
{
    /* No SIGPIPE, no descriptor limit, no core dumps but those an administrator set up. */
    (void)allow_core_dumps;
    (void)nofile_max;
    (void)cause;
    *nofile = 0;
    return 0;
}

size_t
platform_alloc_size(void *p)
{
    return p != NULL ? _msize(p) : 0;
}

long
platform_pid(void)
{
    return (long)GetCurrentProcessId();
}

long
platform_http_ssl_options(void)
{
    return CURLSSLOPT_NATIVE_CA;
}

void
platform_shell_argv(const char *command, char *argv[6], unsigned *flags)
{
    const char *comspec = getenv("COMSPEC");
    char *quoted = NULL;

    /* cmd.exe /s /c "COMMAND": /s strips exactly the outer quotes, the
     * rest reaches cmd.exe verbatim. */
    err_set(&quoted, "\"%s\"", command);
    argv[0] = (char *)(comspec != NULL && comspec[0] != '\0' ? comspec : "cmd.exe");
    argv[1] = "/d";
    argv[2] = "/s";
    argv[3] = "/c";
    argv[4] = quoted;
    argv[5] = NULL;
    *flags = UV_PROCESS_WINDOWS_VERBATIM_ARGUMENTS | platform_hook_flags();
}

unsigned
platform_hook_flags(void)
{
    return UV_PROCESS_WINDOWS_HIDE;
}

void
platform_shell_free(char *argv[6])
{
    free(argv[4]);
    argv[4] = NULL;
}

void
platform_inherited_fds_private(void)
{
    /*
     * The standard handles and CRT descriptors the service was given become
     * non-inheritable.  Handles the agent opens itself are inheritable only
     * when asked for (CreateFile without security attributes, libuv's pipes
     * and sockets are not); see docs/security.md for what is left.
     */
    uv_disable_stdio_inheritance();
}

void
platform_hook_launcher_enable(void)
{
    /* uv_spawn passes handles by inheritance, not by descriptor: nothing to close in between. */
}

int
platform_hook_argv(char *const *args, char ***out)
{
    size_t n = 0;
    char **argv;

    *out = NULL;
    while (args[n] != NULL)
        n++;
    if ((argv = calloc(n + 1, sizeof(*argv))) == NULL)
        return UV_ENOMEM;
    for (size_t i = 0; i < n; i++)
        argv[i] = args[i];
    *out = argv;
    return 0;
}

int
platform_hook_exec(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "certagent: %s is not used on Windows\n", PLATFORM_EXEC_HOOK_ARG);
    return 2;
}

void
platform_process_kill_tree(uv_process_t *proc, int hard)
{
    (void)hard;
    uv_process_kill(proc, SIGTERM);
}
