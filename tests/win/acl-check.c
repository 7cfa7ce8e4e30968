/*
 * acl-check [--deny-network] PATH: reads the DACL of a named pipe, file or
 * directory and exits 0 when it allows SYSTEM (and Administrators), allows
 * nobody broad (Everyone, Users, Authenticated Users, Anonymous) and at most
 * one more account, and, with --deny-network, denies network logons (remote
 * clients).  Prints the DACL.  Used by packaging/windows/test.sh.
 */
#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>

int
main(int argc, char **argv)
{
    const char *path = argv[argc - 1];
    int deny_network = argc == 3 && strcmp(argv[1], "--deny-network") == 0;
    HANDLE h;
    PSECURITY_DESCRIPTOR sd = NULL;
    char *text = NULL;
    DWORD e;
    int allows = 0, ok;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: acl-check [--deny-network] PATH\n");
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
    for (const char *p = text; (p = strstr(p, "(A;")) != NULL; p++)
        allows++;
    /*
     * Wine 8 does not report the protected flag (D:P) that Windows shows, and
     * drops the Administrators entry of a directory created with one (its
     * user is an administrator): BA is checked on pipes only.
     */
    ok = strncmp(text, "D:", 2) == 0 && strstr(text, ";;;SY)") != NULL && allows <= 3 &&
         strstr(text, ";;;WD)") == NULL && strstr(text, ";;;AN)") == NULL &&
         strstr(text, ";;;BU)") == NULL && strstr(text, ";;;AU)") == NULL;
    if (deny_network)
        ok = ok && strstr(text, ";;;NU)") != NULL && strstr(text, "(D;") != NULL &&
             strstr(text, ";;;BA)") != NULL;
    LocalFree(text);
    LocalFree(sd);
    CloseHandle(h);
    return ok ? 0 : 1;
}
