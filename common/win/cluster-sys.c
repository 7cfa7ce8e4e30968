#include <stdlib.h>
#include <windows.h>
#include <aclapi.h>

#include "err.h"
#include "cluster-sys.h"
#include "sys.h"

/* The file's DACL must let in only SYSTEM, Administrators and this account (sys_sd_private). */
int
cluster_sys_check_private(const char *path, char **cause)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    char *who = NULL;
    DWORD e;
    int rc = 0;

    e = GetNamedSecurityInfoA(path, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, NULL,
                              NULL, &sd);
    if (e != ERROR_SUCCESS) {
        err_set(cause, "cannot check fleet key file %s: error %lu", path, (unsigned long)e);
        return -E_IO;
    }
    if (sys_sd_private(sd, &who) != 0) {
        err_set(cause,
                "fleet key file %s may be read by %s: only SYSTEM, Administrators and the "
                "agent's account may read it",
                path, who != NULL ? who : "others");
        rc = -E_DENIED;
    }
    free(who);
    LocalFree(sd);
    return rc;
}

int
cluster_sys_hostname(char *buf, size_t size)
{
    DWORD n = (DWORD)size;

    if (size == 0 || !GetComputerNameExA(ComputerNameDnsHostname, buf, &n))
        return -1;
    buf[size - 1] = '\0';
    return buf[0] != '\0' ? 0 : -1;
}
