#include "alert-log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* Appends "KEY=value\n" with value on one line (the simple form of the native protocol). */
static void
field(char *buf, size_t size, size_t *used, const char *key, const char *value)
{
    int n;

    if (value == NULL || *used >= size)
        return;
    n = snprintf(buf + *used, size - *used, "%s=", key);
    if (n < 0 || (size_t)n >= size - *used) {
        *used = size;
        return;
    }
    *used += (size_t)n;
    for (const char *p = value; *p != '\0' && *used + 2 < size; p++)
        buf[(*used)++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
    if (*used + 1 < size)
        buf[(*used)++] = '\n';
}

void
platform_alert_log(int level, const char *event, const char *code, const char *name,
                   const char *message)
{
    /* CERTAGENT_JOURNAL_SOCKET: another socket, for tests. */
    const char *path = getenv("CERTAGENT_JOURNAL_SOCKET");
    struct sockaddr_un sa;
    char buf[4096], prio[4];
    size_t used = 0;
    int fd;

    if (path == NULL || path[0] == '\0')
        path = JOURNAL_SOCKET;
    if (strlen(path) >= sizeof(sa.sun_path) || access(path, F_OK) != 0)
        return;
    /* Journal priorities: 2 critical, 4 warning, 5 notice (a recovery). */
    snprintf(prio, sizeof(prio), "%d", level >= 2 ? 2 : level == 1 ? 4 : 5);
    field(buf, sizeof(buf), &used, "MESSAGE", message);
    field(buf, sizeof(buf), &used, "PRIORITY", prio);
    field(buf, sizeof(buf), &used, "SYSLOG_IDENTIFIER", "certagent");
    field(buf, sizeof(buf), &used, "CERTAGENT_EVENT", event);
    field(buf, sizeof(buf), &used, "CERTAGENT_CODE", code);
    field(buf, sizeof(buf), &used, "CERTAGENT_CERT", name);
    if (used > sizeof(buf))
        used = sizeof(buf);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path));
    if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        return;
    /* Never blocks the loop: a full journal socket drops the entry (the log line stays). */
    (void)sendto(fd, buf, used, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
}
