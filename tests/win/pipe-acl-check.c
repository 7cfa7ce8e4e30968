/*
 * pipe-acl-check PIPE: reads the DACL of a named pipe and exits 0 when it is
 * protected, denies network logons (remote clients) and allows nobody but
 * SYSTEM, Administrators and one account (the agent's).  Prints the DACL.
 * Used by packaging/windows/test.sh against the running agent.
 */
#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>

int
main(int argc, char **argv)
{
    HANDLE h;
    PSECURITY_DESCRIPTOR sd = NULL;
    char *text = NULL;
    DWORD e;
    int allows = 0, ok;

    if (argc != 2) {
        fprintf(stderr, "usage: pipe-acl-check PIPE\n");
        return 2;
    }
    h = CreateFileA(argv[1], READ_CONTROL, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "pipe-acl-check: cannot open %s (error %lu)\n", argv[1],
                (unsigned long)GetLastError());
        return 1;
    }
    e = GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, NULL, NULL,
                        &sd);
    if (e != ERROR_SUCCESS ||
        !ConvertSecurityDescriptorToStringSecurityDescriptorA(sd, SDDL_REVISION_1,
                                                              DACL_SECURITY_INFORMATION, &text,
                                                              NULL)) {
        fprintf(stderr, "pipe-acl-check: cannot read the DACL (error %lu)\n", (unsigned long)e);
        return 1;
    }
    printf("%s\n", text);
    for (const char *p = text; (p = strstr(p, "(A;")) != NULL; p++)
        allows++;
    /* Wine 8 does not report the protected flag (D:P) that Windows shows. */
    ok = strncmp(text, "D:", 2) == 0 && strstr(text, ";;;NU)") != NULL &&
         strstr(text, "(D;") != NULL && strstr(text, ";;;SY)") != NULL &&
         strstr(text, ";;;BA)") != NULL && allows <= 3 && strstr(text, ";;;WD)") == NULL &&
         strstr(text, ";;;AN)") == NULL;
    LocalFree(text);
    LocalFree(sd);
    CloseHandle(h);
    return ok ? 0 : 1;
}
