#include "../sys.h"

#include <stdio.h>
#include <time.h>

int
sys_gmtime(int64_t t, struct tm *out)
{
    __time64_t tt = (__time64_t)t;

    return _gmtime64_s(out, &tt) == 0 ? 0 : -1;
}

int64_t
sys_timegm(struct tm *tm)
{
    return (int64_t)_mkgmtime64(tm);
}
