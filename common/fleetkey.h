/*
 * The fleet key: 32 random bytes in a file of their own (mode 0600, the same
 * on every node of a fleet), the AES-256-GCM key of the private keys the
 * fleet's records carry in etcd (agent/fleet/record.c).  Read by the config
 * check and the agent, written by `certctl fleet keygen`.
 */
#ifndef CERTAGENT_FLEETKEY_H
#define CERTAGENT_FLEETKEY_H

#include <stddef.h>

#define FLEETKEY_LEN 32

/*
 * Reads path into key: the file must hold exactly FLEETKEY_LEN bytes and be
 * readable by its owner only (cluster_sys_check_private).  0, or -E_* with words
 * naming the file and the problem.
 */
int fleetkey_read(const char *path, unsigned char key[FLEETKEY_LEN], char **cause);
/* Writes a new key to path, which must not exist (0600, exclusive). */
int fleetkey_write(const char *path, char **cause);

#endif
