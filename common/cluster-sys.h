/*
 * What the fleet's config needs from the platform (common/unix/cluster-sys.c,
 * common/win/cluster-sys.c).
 */
#ifndef CERTAGENT_CLUSTER_SYS_H
#define CERTAGENT_CLUSTER_SYS_H

#include <stddef.h>

/*
 * 0 when no account but the owner (Windows: SYSTEM, Administrators and the
 * agent's account) may read path; -E_DENIED or -E_IO with words otherwise.
 */
int cluster_sys_check_private(const char *path, char **cause);
/* This machine's name (unqualified) into buf; 0 or -1. */
int cluster_sys_hostname(char *buf, size_t size);

#endif
