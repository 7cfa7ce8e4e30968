#include "../sys.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int
sys_append_quoted_arg(char *cmd, size_t len, const char *s)
{
    size_t used = strlen(cmd);

    if (used + strlen(s) + 4 >= len || strchr(s, '"') != NULL)
        return -1;
    snprintf(cmd + used, len - used, "%s\"%s\"", used ? " " : "", s);
    return 0;
}

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
