/*
 * acl-check [--deny-network | --private] PATH: reads the DACL of a named
 * pipe, file or directory and prints it.
 *
 * Without option, exits 0 when it allows SYSTEM (and Administrators), allows
 * nobody broad (Everyone, Users, Authenticated Users, Anonymous) and at most
 * one more account; with --deny-network, when it also denies network logons
 * (remote clients).
 *
 * --private: exits 0 when every entry that allows something is for SYSTEM,
 * Administrators or this process's account (the agent's, when it is not the
 * service), none is inherited, and on Windows the DACL is protected and
 * allows SYSTEM and Administrators.  Wine 8 makes a file's DACL from its
 * Unix mode (SYSTEM, the owner for the user bits, Everyone for the others)
 * and never reports the protection: under Wine the current user stands for
 * Administrators and the protection is not checked.
 *
 * Used by packaging/windows/test.sh and packaging/msi/test-msi.sh.
 */
#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>

/* Is this Wine (which exports wine_get_version from ntdll)? */
static int
under_wine(void)
{
    HMODULE ntdll = GetModuleHandleA("ntdll.dll");

    return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
}

/* This process's user SID in buf; 0 or -1. */
static int
own_sid(void *buf, DWORD len)
{
    union {
        TOKEN_USER user;
        char raw[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } info;
    HANDLE token;
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

/* The --private verdict on sd: 0 private, 1 not (the reason printed). */
static int
check_private(PSECURITY_DESCRIPTOR sd)
{
    unsigned char own[SECURITY_MAX_SID_SIZE];
    DWORD rev;
    SECURITY_DESCRIPTOR_CONTROL control = 0;
    BOOL present = FALSE, defaulted = FALSE;
    ACL_SIZE_INFORMATION info;
    PACL dacl = NULL;
    int wine = under_wine(), has_system = 0, has_admins = 0;

    if (own_sid(own, sizeof(own)) != 0 ||
        !GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted) ||
        !GetSecurityDescriptorControl(sd, &control, &rev)) {
        fprintf(stderr, "acl-check: cannot read the security descriptor\n");
        return 1;
    }
    if (!present || dacl == NULL) {
        fprintf(stderr, "acl-check: no DACL: every account may do everything\n");
        return 1;
    }
    GetAclInformation(dacl, &info, sizeof(info), AclSizeInformation);
    for (DWORD i = 0; i < info.AceCount; i++) {
        ACCESS_ALLOWED_ACE *ace = NULL;
        PSID sid;

        if (!GetAce(dacl, i, (void **)&ace))
            return 1;
        if (ace->Header.AceType == ACCESS_DENIED_ACE_TYPE)
            continue;
        if (ace->Header.AceType != ACCESS_ALLOWED_ACE_TYPE) {
            fprintf(stderr, "acl-check: entry %lu is of type %u\n", (unsigned long)i,
                    (unsigned)ace->Header.AceType);
            return 1;
        }
        if (ace->Header.AceFlags & INHERITED_ACE) {
            fprintf(stderr, "acl-check: entry %lu is inherited from the parent\n",
                    (unsigned long)i);
            return 1;
        }
        sid = &ace->SidStart;
        if (IsWellKnownSid(sid, WinLocalSystemSid))
            has_system = 1;
        else if (IsWellKnownSid(sid, WinBuiltinAdministratorsSid))
            has_admins = 1;
        else if (EqualSid(sid, own))
            has_admins |= wine; /* Wine shows the user bits as its (administrator) user */
        else {
            fprintf(stderr, "acl-check: entry %lu allows another account\n", (unsigned long)i);
            return 1;
        }
    }
    if (!has_system || !has_admins) {
        fprintf(stderr, "acl-check: SYSTEM or Administrators missing\n");
        return 1;
    }
    if (!wine && !(control & SE_DACL_PROTECTED)) {
        fprintf(stderr, "acl-check: the DACL is not protected (it takes the parent's entries)\n");
        return 1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    const char *path = argv[argc - 1];
    int deny_network = argc == 3 && strcmp(argv[1], "--deny-network") == 0;
    int private_only = argc == 3 && strcmp(argv[1], "--private") == 0;
    HANDLE h;
    PSECURITY_DESCRIPTOR sd = NULL;
    char *text = NULL;
    DWORD e;
    int allows = 0, ok;

    if (argc < 2 || argc > 3 || (argc == 3 && !deny_network && !private_only)) {
        fprintf(stderr, "usage: acl-check [--deny-network | --private] PATH\n");
        return 2;
    }
    h = CreateFileA(path, READ_CONTROL, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                    NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "acl-check: cannot open %s (error %lu)\n", path,
                (unsigned long)GetLastError());
        return 1;
    }
    e = GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, NULL, NULL,
                        &sd);
    if (e != ERROR_SUCCESS || !ConvertSecurityDescriptorToStringSecurityDescriptorA(
                                  sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &text, NULL)) {
        fprintf(stderr, "acl-check: cannot read the DACL (error %lu)\n", (unsigned long)e);
        return 1;
    }
    printf("%s\n", text);
    if (private_only) {
        ok = check_private(sd) == 0;
    } else {
        for (const char *p = text; (p = strstr(p, "(A;")) != NULL; p++)
            allows++;
        /*
         * Wine 8 does not report the protected flag (D:P) that Windows shows,
         * and drops the Administrators entry of a directory created with one
         * (its user is an administrator): BA is checked on pipes only.
         */
        ok = strncmp(text, "D:", 2) == 0 && strstr(text, ";;;SY)") != NULL && allows <= 3 &&
             strstr(text, ";;;WD)") == NULL && strstr(text, ";;;AN)") == NULL &&
             strstr(text, ";;;BU)") == NULL && strstr(text, ";;;AU)") == NULL;
        if (deny_network)
            ok = ok && strstr(text, ";;;NU)") != NULL && strstr(text, "(D;") != NULL &&
                 strstr(text, ";;;BA)") != NULL;
    }
    LocalFree(text);
    LocalFree(sd);
    CloseHandle(h);
    return ok ? 0 : 1;
}
