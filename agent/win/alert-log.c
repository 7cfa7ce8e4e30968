#include "alert-log.h"

#include <stdio.h>
#include <windows.h>

/*
 * One Event Log entry of the source "certagent" whose event ID is the code's
 * (alert_log_event_id): eventlog.mc has a message for each ID (the line as its
 * only insertion string), so Task Scheduler or monitoring can match on the ID.
 */
void
platform_alert_log(int level, const char *event, const char *code, const char *name,
                   const char *message)
{
    HANDLE source = RegisterEventSourceA(NULL, "certagent");
    char line[2048];
    const char *strings[1] = {line};
    WORD type = level >= 2   ? EVENTLOG_ERROR_TYPE
                : level == 1 ? EVENTLOG_WARNING_TYPE
                             : EVENTLOG_INFORMATION_TYPE;
    int recovered = level == 0;

    if (source == NULL)
        return;
    snprintf(line, sizeof(line), "%s %s%s%s: %s", event, name != NULL ? name : "agent",
             code != NULL ? " " : "", code != NULL ? code : "", message);
    ReportEventA(source, type, 0, (DWORD)alert_log_event_id(code, recovered), NULL, 1, 0, strings,
                 NULL);
    DeregisterEventSource(source);
}
