/*
 * Files that hold a secret the agent reads at use time (the SMTP password,
 * a webhook's bearer token): platform_secret_file_check refuses one that
 * users other than the owner may read or write (Unix: mode wider than 0600,
 * or not owned by the agent's user or root).  Windows: the file's ACL is
 * not checked (the state and config directories' ACLs protect it).
 */
#ifndef CERTAGENT_SECRET_FILE_H
#define CERTAGENT_SECRET_FILE_H

/* 0, -E_NOT_FOUND or -E_DENIED, with *cause naming key (the config key) and the path. */
int platform_secret_file_check(const char *path, const char *key, char **cause);

#endif
