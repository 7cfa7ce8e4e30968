/*
 * Alerts in the system's own log (agent/unix/alert-log.c, agent/win/alert-log.c): every
 * warning and recovery the notify service announces is also one entry there, in addition
 * to the agent's log line, so that monitoring can match on it.  Linux: a journal entry with
 * CERTAGENT_CODE=, CERTAGENT_EVENT=, CERTAGENT_CERT= fields, sent with the journal's native
 * datagram protocol to /run/systemd/journal/socket when it exists (never blocking; nothing
 * when there is no journal).  Windows: an Event Log entry whose event ID is stable per
 * warning code (alert_log_event_id).
 */
#ifndef CERTAGENT_ALERT_LOG_H
#define CERTAGENT_ALERT_LOG_H

/*
 * The Event Log ID of an alert: 1000 + the code's number for a warning (or a rise),
 * 2000 + it for a recovery; codes not in the table are number 0 (1000, 2000).  Pure.
 */
unsigned alert_log_event_id(const char *code, int recovered);

/*
 * Writes one entry: level 0 ok, 1 warning, 2 critical; event the kind ("warning",
 * "recovered", "renew_failed", ...); code the warning code or NULL; name the certificate
 * or NULL; message one line.
 */
void platform_alert_log(int level, const char *event, const char *code, const char *name,
                        const char *message);

#endif
