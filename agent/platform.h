/*
 * The agent's platform layer: one header, one implementation per platform
 * (agent/unix/platform.c, agent/win/platform.c), same function names.
 */
#ifndef CERTAGENT_PLATFORM_H
#define CERTAGENT_PLATFORM_H

/* System log (syslog on Unix, the Event Log on Windows). level: enum log_level. */
void platform_syslog_open(const char *ident);
void platform_syslog_write(int level, const char *line);

#endif
