#define _GNU_SOURCE
#include "platform.h"

#include <syslog.h>

void
platform_syslog_open(const char *ident)
{
    openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
platform_syslog_write(int level, const char *line)
{
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

    if (level < 0 || level > 3)
        level = 0;
    syslog(prio[level], "%s", line);
}
