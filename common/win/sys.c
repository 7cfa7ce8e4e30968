/*
 * Windows: time, command lines, and the security of the agent's files: the
 * private DACL of keys and folders, and the checks of the config file.
 */
#include "../sys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

#include "../err.h"

int
sys_append_quoted_arg(char *cmd, size_t len, const char *s)
{
    size_t used = strlen(cmd);

    if (used + strlen(s) + 4 >= len || strchr(s, '"') != NULL)
        return -1;
    snprintf(cmd + used, len - used, "%s\"%s\"", used ? " " : "", s);
    return 0;
}

int
sys_gmtime(int64_t t, struct tm *out)
{
    __time64_t tt = (__time64_t)t;

    return _gmtime64_s(out, &tt) == 0 ? 0 : -1;
}

int
sys_localtime(int64_t t, struct tm *out)
{
    __time64_t tt = (__time64_t)t;

    return _localtime64_s(out, &tt) == 0 ? 0 : -1;
}

int64_t
sys_timegm(struct tm *tm)
{
    return (int64_t)_mkgmtime64(tm);
}

/* Copies this process's user SID into buf (len bytes).  0 or -1. */
static int
process_sid(void *buf, DWORD len)
{
    HANDLE token;
    union {
        TOKEN_USER user;
        char raw[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } info;
    DWORD got = 0;
    int rc = -1;

    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
        return -1;
    if (GetTokenInformation(token, TokenUser, &info, sizeof(info), &got) &&
        CopySid(len, buf, info.user.User.Sid))
        rc = 0;
    CloseHandle(token);
    return rc;
}

int
sys_sid_trusted(void *sid)
{
    unsigned char own[SECURITY_MAX_SID_SIZE];

    if (sid == NULL || !IsValidSid(sid))
        return 0;
    if (IsWellKnownSid(sid, WinLocalSystemSid) || IsWellKnownSid(sid, WinBuiltinAdministratorsSid))
        return 1;
    return process_sid(own, sizeof(own)) == 0 && EqualSid(sid, own);
}

char *
sys_sid_name(void *sid)
{
    char name[256], domain[256], *text = NULL, *out = NULL;
    DWORD nlen = sizeof(name), dlen = sizeof(domain);
    SID_NAME_USE use;

    if (!ConvertSidToStringSidA(sid, &text))
        text = NULL;
    if (LookupAccountSidA(NULL, sid, name, &nlen, domain, &dlen, &use))
        err_set(&out, "%s%s%s (%s)", domain, domain[0] != '\0' ? "\\" : "", name,
                text != NULL ? text : "?");
    else
        err_set(&out, "%s", text != NULL ? text : "an unknown account");
    if (text != NULL)
        LocalFree(text);
    return out;
}

void *
sys_private_sd(int dir)
{
    unsigned char own[SECURITY_MAX_SID_SIZE];
    const char *inherit = dir ? "OICI" : "";
    char sddl[512], own_ace[256] = "", *own_text = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;

    if (process_sid(own, sizeof(own)) != 0)
        return NULL;
    /* The account running the agent (certctl) keeps access to what it writes, elevated or not. */
    if (!IsWellKnownSid(own, WinLocalSystemSid)) {
        if (!ConvertSidToStringSidA(own, &own_text))
            return NULL;
        snprintf(own_ace, sizeof(own_ace), "(A;%s;FA;;;%s)", inherit, own_text);
        LocalFree(own_text);
    }
    snprintf(sddl, sizeof(sddl), "D:P(A;%s;FA;;;SY)(A;%s;FA;;;BA)%s", inherit, inherit, own_ace);
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL))
        return NULL;
    return sd;
}

int
sys_sd_private(void *sd, char **who)
{
    BOOL present = FALSE, defaulted = FALSE;
    PACL dacl = NULL;
    ACL_SIZE_INFORMATION info;

    if (who != NULL)
        *who = NULL;
    if (!GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted) || !present || dacl == NULL) {
        err_set(who, "every account (there is no DACL)");
        return -1;
    }
    if (!GetAclInformation(dacl, &info, sizeof(info), AclSizeInformation)) {
        err_set(who, "unknown accounts (the DACL cannot be read)");
        return -1;
    }
    for (DWORD i = 0; i < info.AceCount; i++) {
        ACE_HEADER *ace = NULL;
        char *name;

        if (!GetAce(dacl, i, (void **)&ace)) {
            err_set(who, "unknown accounts (the DACL cannot be read)");
            return -1;
        }
        if (ace->AceType == ACCESS_DENIED_ACE_TYPE)
            continue;
        if (ace->AceFlags & INHERITED_ACE) {
            err_set(who, "the accounts of its parent folder (it inherits the parent's entries)");
            return -1;
        }
        if (ace->AceType != ACCESS_ALLOWED_ACE_TYPE) {
            err_set(who, "accounts of an entry of type %u", (unsigned)ace->AceType);
            return -1;
        }
        if (!sys_sid_trusted(&((ACCESS_ALLOWED_ACE *)ace)->SidStart)) {
            name = sys_sid_name(&((ACCESS_ALLOWED_ACE *)ace)->SidStart);
            err_set(who, "%s", name != NULL ? name : "another account");
            free(name);
            return -1;
        }
    }
    return 0;
}

/* The folder of path (heap string), "." when path names none. */
static char *
parent_of(const char *path)
{
    const char *last = NULL;
    char *d;

    for (const char *p = path; *p != '\0'; p++) {
        if (*p == '\\' || *p == '/')
            last = p;
    }
    if (last == NULL)
        return strdup(".");
    if (last == path || (last == path + 2 && path[1] == ':'))
        last++; /* keep the root: "\" or "C:\" */
    if ((d = malloc((size_t)(last - path) + 1)) == NULL)
        return NULL;
    memcpy(d, path, (size_t)(last - path));
    d[last - path] = '\0';
    return d;
}

/*
 * Checks the owner of path (the config file, or with folder its folder) and
 * who else may change it.  1 when path does not exist.
 */
static int
check_config_node(const char *path, const char *file, int folder, char **cause)
{
    /* Rights that change the file or its DACL or remove it; in a folder, remove what it holds. */
    const DWORD file_rights = FILE_WRITE_DATA | FILE_APPEND_DATA | DELETE | WRITE_DAC |
                              WRITE_OWNER | GENERIC_WRITE | GENERIC_ALL;
    const DWORD folder_rights = FILE_DELETE_CHILD | DELETE | WRITE_DAC | WRITE_OWNER | GENERIC_ALL;
    PSECURITY_DESCRIPTOR sd = NULL;
    PSID owner = NULL;
    PACL dacl = NULL;
    ACL_SIZE_INFORMATION info;
    char *name = NULL, what[1200];
    DWORD e;
    int rc = 0;

    if (folder)
        snprintf(what, sizeof(what), "the folder %s, which holds config file %s,", path, file);
    else
        snprintf(what, sizeof(what), "config file %s", file);
    e = GetNamedSecurityInfoA(path, SE_FILE_OBJECT,
                              OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner, NULL,
                              &dacl, NULL, &sd);
    if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND)
        return 1;
    if (e != ERROR_SUCCESS) {
        err_set(cause, "cannot read the security of %s (error %lu)", what, (unsigned long)e);
        return -E_IO;
    }
    if (!sys_sid_trusted(owner)) {
        name = sys_sid_name(owner);
        err_set(cause,
                "%s is owned by %s, not by SYSTEM or Administrators: its owner could make the "
                "agent run commands (deploy_hook); remove it or give it to Administrators "
                "(icacls \"%s\" /setowner *S-1-5-32-544)",
                what, name != NULL ? name : "another account", path);
        rc = -E_DENIED;
        goto out;
    }
    if (dacl == NULL) {
        err_set(cause, "%s has no DACL: every account may change it", what);
        rc = -E_DENIED;
        goto out;
    }
    if (!GetAclInformation(dacl, &info, sizeof(info), AclSizeInformation)) {
        err_set(cause, "cannot read the DACL of %s", what);
        rc = -E_IO;
        goto out;
    }
    for (DWORD i = 0; i < info.AceCount && rc == 0; i++) {
        ACCESS_ALLOWED_ACE *ace = NULL;

        if (!GetAce(dacl, i, (void **)&ace) || ace->Header.AceType != ACCESS_ALLOWED_ACE_TYPE ||
            (ace->Header.AceFlags & INHERIT_ONLY_ACE) ||
            !(ace->Mask & (folder ? folder_rights : file_rights)) ||
            sys_sid_trusted(&ace->SidStart))
            continue;
        name = sys_sid_name(&ace->SidStart);
        err_set(cause,
                "%s may be %s by %s: that account could make the agent run commands "
                "(deploy_hook); remove its entry (icacls \"%s\")",
                what, folder ? "emptied or replaced" : "changed",
                name != NULL ? name : "another account", path);
        rc = -E_DENIED;
    }
out:
    free(name);
    LocalFree(sd);
    return rc;
}

int
sys_config_check(const char *path, char **cause)
{
    char *folder;
    int rc;

    if ((rc = check_config_node(path, path, 0, cause)) != 0)
        return rc > 0 ? 0 : rc;
    if ((folder = parent_of(path)) == NULL)
        return -E_NOMEM;
    rc = check_config_node(folder, path, 1, cause);
    free(folder);
    return rc > 0 ? 0 : rc;
}
