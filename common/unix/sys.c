#define _GNU_SOURCE
#include "../sys.h"

#include <stdio.h>
#include <time.h>

int
sys_gmtime(int64_t t, struct tm *out)
{
    time_t tt = (time_t)t;

    return gmtime_r(&tt, out) != NULL ? 0 : -1;
}

int64_t
sys_timegm(struct tm *tm)
{
    return (int64_t)timegm(tm);
}
