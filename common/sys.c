/* The portable part of sys.h; the rest is in unix/sys.c and win/sys.c. */
#include "sys.h"

#include <stdio.h>

void
sys_format_time(int64_t t, char *buf, size_t len)
{
    struct tm tm;

    if (sys_gmtime(t, &tm) != 0 || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
}
