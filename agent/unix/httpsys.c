/*
 * http.sys SSL bindings, where there is no http.sys: not available, and a
 * binding is refused with words that say why (agent/win/httpsys.c is the
 * real one).
 */
#include "err.h"
#include "platform.h"

int
platform_httpsys_available(void)
{
    return 0;
}

int
platform_httpsys_bind(const char *ipport, const char *thumbprint, const char *store, int *created,
                      char **cause)
{
    (void)thumbprint;
    (void)store;
    *created = 0;
    err_set(cause, "cannot bind %s: http.sys SSL bindings are Windows only", ipport);
    return -E_BAD_INPUT;
}
