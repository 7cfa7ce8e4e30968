#include "../sys.h"

#include <stdio.h>
#include <time.h>

int
sys_gmtime(int64_t t, struct tm *out)
{
    __time64_t tt = (__time64_t)t;

    return _gmtime64_s(out, &tt) == 0 ? 0 : -1;
}

void
sys_format_time(int64_t t, char *buf, size_t len)
{
    struct tm tm;

    if (sys_gmtime(t, &tm) != 0 || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
}

int64_t
sys_timegm(struct tm *tm)
{
    return (int64_t)_mkgmtime64(tm);
}
