/*
 * pipe-squat [--deny] PIPE: creates the named pipe PIPE before the agent
 * does, as a local user planting a pipe to receive certctl's requests
 * would, prints "squatting PIPE" and holds it for at most two minutes (the
 * test ends it sooner).  With --deny the pipe's DACL refuses everyone else,
 * so the agent cannot even open it.  Used by packaging/windows/test.sh: the
 * agent must refuse to start on such a pipe.
 */
#include <stdio.h>
#include <string.h>
#include <windows.h>
#include <sddl.h>

int
main(int argc, char **argv)
{
    const char *path = argv[argc - 1];
    int deny = argc == 3 && strcmp(argv[1], "--deny") == 0;
    SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, FALSE};
    PSECURITY_DESCRIPTOR sd = NULL;
    HANDLE h;

    if (argc < 2 || argc > 3 || (argc == 3 && !deny)) {
        fprintf(stderr, "usage: pipe-squat [--deny] PIPE\n");
        return 2;
    }
    if (deny) {
        /* Everyone denied; the squatter's own handle is open already. */
        if (!ConvertStringSecurityDescriptorToSecurityDescriptorA("D:P(D;;GA;;;WD)",
                                                                  SDDL_REVISION_1, &sd, NULL)) {
            fprintf(stderr, "pipe-squat: cannot build the DACL (error %lu)\n",
                    (unsigned long)GetLastError());
            return 1;
        }
        sa.lpSecurityDescriptor = sd;
    }
    h = CreateNamedPipeA(path, PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
                         PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, PIPE_UNLIMITED_INSTANCES,
                         4096, 4096, 0, deny ? &sa : NULL);
    if (h == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "pipe-squat: cannot create %s (error %lu)\n", path,
                (unsigned long)GetLastError());
        return 1;
    }
    printf("squatting %s\n", path);
    fflush(stdout);
    Sleep(120000);
    CloseHandle(h);
    if (sd != NULL)
        LocalFree(sd);
    return 0;
}
