/*
 * certctl's check of the agent's named pipe (ctl/endpoint.h): the process
 * serving the pipe must run as LocalSystem, an administrator (elevated), the
 * user running certctl, or the account CERTAGENT_AGENT_USER names.  Another
 * process could have created a pipe of the agent's name first.
 */
#include "endpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <sddl.h>

#include "err.h"

int
endpoint_check_path(const char *path, char **cause)
{
    /* A named pipe has no directory nor owner to look at before connecting. */
    (void)path;
    (void)cause;
    return 0;
}

/* The TokenUser of a token (free it), or NULL. */
static TOKEN_USER *
token_user(HANDLE token)
{
    DWORD len = 0;
    TOKEN_USER *tu;

    GetTokenInformation(token, TokenUser, NULL, 0, &len);
    if (len == 0 || (tu = malloc(len)) == NULL)
        return NULL;
    if (!GetTokenInformation(token, TokenUser, tu, len, &len)) {
        free(tu);
        return NULL;
    }
    return tu;
}

/* Is the account of sid the one running certctl? */
static int
is_own_account(PSID sid)
{
    HANDLE token = NULL;
    TOKEN_USER *me = NULL;
    int same = 0;

    if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token) &&
        (me = token_user(token)) != NULL)
        same = EqualSid(me->User.Sid, sid) != 0;
    free(me);
    if (token != NULL)
        CloseHandle(token);
    return same;
}

/* Is sid the account CERTAGENT_AGENT_USER names? */
static int
is_agent_account(PSID sid)
{
    const char *name = getenv("CERTAGENT_AGENT_USER");
    union {
        SID sid;
        BYTE buf[SECURITY_MAX_SID_SIZE];
    } agent;
    DWORD len = sizeof(agent), dlen;
    char domain[256];
    SID_NAME_USE use;

    if (name == NULL || name[0] == '\0')
        return 0;
    dlen = sizeof(domain);
    if (!LookupAccountNameA(NULL, name, &agent.sid, &len, domain, &dlen, &use))
        return 0;
    return EqualSid(&agent.sid, sid) != 0;
}

/*
 * Does the token hold the Administrators group enabled (an elevated
 * administrator; in a filtered token the group only denies)?
 */
static int
is_administrator(HANDLE token)
{
    union {
        SID sid;
        BYTE buf[SECURITY_MAX_SID_SIZE];
    } admins;
    DWORD len = sizeof(admins);
    HANDLE imp = NULL;
    BOOL member = FALSE;

    if (!CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, &admins.sid, &len))
        return 0;
    /* CheckTokenMembership wants an impersonation token. */
    if (!DuplicateToken(token, SecurityIdentification, &imp))
        return 0;
    if (!CheckTokenMembership(imp, &admins.sid, &member))
        member = FALSE;
    CloseHandle(imp);
    return member != FALSE;
}

/* "DOMAIN\user", or the SID's string, into buf. */
static void
account_words(PSID sid, char *buf, size_t size)
{
    char name[256], domain[256], *str = NULL;
    DWORD nlen = sizeof(name), dlen = sizeof(domain);
    SID_NAME_USE use;

    if (LookupAccountSidA(NULL, sid, name, &nlen, domain, &dlen, &use))
        snprintf(buf, size, "%s%s%s", domain, domain[0] != '\0' ? "\\" : "", name);
    else if (ConvertSidToStringSidA(sid, &str))
        snprintf(buf, size, "%s", str);
    else
        snprintf(buf, size, "an unknown account");
    if (str != NULL)
        LocalFree(str);
}

int
endpoint_check_server(uv_pipe_t *pipe, char **cause)
{
    uv_os_fd_t h;
    ULONG pid = 0;
    HANDLE proc = NULL, token = NULL;
    TOKEN_USER *server = NULL;
    char who[600];
    int rc = -E_DENIED;

    if (uv_fileno((uv_handle_t *)pipe, &h) != 0 || !GetNamedPipeServerProcessId(h, &pid)) {
        err_set(cause,
                "cannot tell which process serves the pipe (%s): refusing it (nothing was "
                "sent)",
                uv_strerror(uv_translate_sys_error((int)GetLastError())));
        goto out;
    }
    if ((proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid)) == NULL ||
        !OpenProcessToken(proc, TOKEN_QUERY | TOKEN_DUPLICATE, &token) ||
        (server = token_user(token)) == NULL) {
        err_set(cause,
                "cannot read the account of process %lu, which serves the pipe (%s): "
                "refusing it (nothing was sent)",
                (unsigned long)pid, uv_strerror(uv_translate_sys_error((int)GetLastError())));
        goto out;
    }
    if (IsWellKnownSid(server->User.Sid, WinLocalSystemSid) || is_own_account(server->User.Sid) ||
        is_agent_account(server->User.Sid) || is_administrator(token)) {
        rc = 0;
        goto out;
    }
    account_words(server->User.Sid, who, sizeof(who));
    err_set(cause,
            "the pipe is served by process %lu running as %s, which is neither LocalSystem, an "
            "administrator, you nor CERTAGENT_AGENT_USER: it is not the agent; refusing it "
            "(nothing was sent)",
            (unsigned long)pid, who);
out:
    free(server);
    if (token != NULL)
        CloseHandle(token);
    if (proc != NULL)
        CloseHandle(proc);
    return rc;
}

void
endpoint_init(void)
{
    /* No SIGPIPE on Windows: a write to a closed pipe fails with an error. */
}
