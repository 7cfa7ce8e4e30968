/*
 * Small portable wrappers whose implementation differs per platform
 * (common/unix/sys.c, common/win/sys.c).
 */
#ifndef CERTAGENT_SYS_H
#define CERTAGENT_SYS_H

#include <stdint.h>
#include <time.h>

/* Thread-safe gmtime (gmtime_r / gmtime_s).  0 or -1. */
int sys_gmtime(int64_t t, struct tm *out);
/* Formats Unix seconds as "2026-11-23T10:00:00Z" into buf (at least 21 bytes). */
void sys_format_time(int64_t t, char *buf, size_t len);
/* timegm: struct tm in UTC to Unix seconds. */
int64_t sys_timegm(struct tm *tm);

#ifdef _WIN32
#include <stddef.h>
/*
 * Windows: appends s to the command line cmd (len bytes, NUL-terminated), as
 * one argument in double quotes as CommandLineToArgvW splits it, after a
 * space unless cmd is empty.  -1 when it does not fit or s holds a '"'.
 */
int sys_append_quoted_arg(char *cmd, size_t len, const char *s);
#endif

#endif
