/*
 * Small portable wrappers whose implementation differs per platform
 * (common/unix/sys.c, common/win/sys.c).
 */
#ifndef CERTAGENT_SYS_H
#define CERTAGENT_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Thread-safe gmtime (gmtime_r / gmtime_s).  0 or -1. */
int sys_gmtime(int64_t t, struct tm *out);
/* Thread-safe localtime (localtime_r / _localtime64_s): local time.  0 or -1. */
int sys_localtime(int64_t t, struct tm *out);
/* Formats Unix seconds as "2026-11-23T10:00:00Z" into buf (at least 21 bytes). */
void sys_format_time(int64_t t, char *buf, size_t len);
/* timegm: struct tm in UTC to Unix seconds. */
int64_t sys_timegm(struct tm *tm);

/*
 * Refuses a configuration file that an account other than the system's or the
 * agent's own could have written: the config names commands the agent runs
 * (deploy_hook), so such a file is a way to the agent's rights.  -E_DENIED
 * with words naming the file and its owner (or who may write it).  Unix: the
 * file (links followed) and the directory that names it belong to root or the
 * effective user; neither is writable by others (the directory may be when
 * sticky) nor by a group other than root's or the effective one.  Windows:
 * both are owned by SYSTEM, Administrators or the agent's account, no other
 * account may change or delete the file, nor delete in its folder.  A
 * missing file is 0: reading it reports that.
 */
int sys_config_check(const char *path, char **cause);

#ifndef _WIN32
/* Unix: "nobody (uid 65534)", or "uid 4242" when the user has no name, into buf. */
void sys_uid_words(unsigned long uid, char *buf, size_t size);
#endif

#ifdef _WIN32
/*
 * Windows: appends s to the command line cmd (len bytes, NUL-terminated), as
 * one argument in double quotes as CommandLineToArgvW splits it, after a
 * space unless cmd is empty.  -1 when it does not fit or s holds a '"'.
 */
int sys_append_quoted_arg(char *cmd, size_t len, const char *s);

/*
 * Windows: the private security descriptor of keys and the agent's folders: a
 * protected DACL (nothing inherited from the parent) giving full control to
 * SYSTEM, Administrators and this process's account (none more for the
 * service, which runs as SYSTEM); with dir, inherited by what is created
 * inside.  LocalFree it; NULL on failure (GetLastError).
 */
void *sys_private_sd(int dir);
/*
 * Windows: 0 when the DACL of the security descriptor sd lets in only SYSTEM,
 * Administrators and this process's account and holds no entry inherited
 * from a parent; else -1 with, in *who (heap string, may be NULL), the
 * account it also lets in or what is wrong.  Deny entries are fine.
 */
int sys_sd_private(void *sd, char **who);
/* Windows: is the SID sid SYSTEM, Administrators or this process's account? */
int sys_sid_trusted(void *sid);
/* Windows: "DOMAIN\name (S-1-...)" for a SID, as a heap string (NULL: no memory). */
char *sys_sid_name(void *sid);
#endif

#endif
