/*
 * Default locations, per platform (common/unix/paths.c, common/win/paths.c).
 * As root (or the service account): system paths; as another user: paths
 * under $XDG_RUNTIME_DIR, $XDG_STATE_HOME and $XDG_CONFIG_HOME.
 */
#ifndef CERTAGENT_PATHS_H
#define CERTAGENT_PATHS_H

struct paths {
    char *config;    /* certagent.json */
    char *state_dir; /* the store */
    char *socket;    /* the IPC endpoint */
    int system;      /* 1 for the system locations */
};

/* Defaults for the current user. 0 or -E_NOMEM. */
int paths_default(struct paths *p);
/* The system defaults whoever runs. */
int paths_system(struct paths *p);
void paths_free(struct paths *p);

#endif
