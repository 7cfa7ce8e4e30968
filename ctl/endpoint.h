/*
 * Is the endpoint certctl is about to talk to the agent's?  Requests carry
 * secrets (PFX passwords, keys), so certctl sends nothing to a socket or pipe
 * another user could have put in the agent's place.  One implementation per
 * platform (ctl/unix/endpoint.c, ctl/win/endpoint.c), same function names.
 *
 * Trusted to be the agent: certctl's own user, the system (root; LocalSystem
 * and elevated administrators on Windows) and the agent's service account:
 * the user named by CERTAGENT_AGENT_USER, else (on Unix) "certagent" when
 * such a user exists.
 */
#ifndef CERTCTL_ENDPOINT_H
#define CERTCTL_ENDPOINT_H

#include <uv.h>

/*
 * Once, before the first connection: on Unix SIGPIPE is ignored, so that a
 * write to an agent that has closed the connection (refusing it) is an error
 * certctl reports, not its death.  A no-op on Windows.
 */
void endpoint_init(void);

/*
 * Before connecting: the socket at path and its directory must be owned by a
 * trusted user, and the directory not writable by group or others (unless
 * sticky, like /tmp).  -E_UNAVAILABLE when there is nothing to connect to
 * (missing, unreachable), -E_DENIED naming what is wrong when another user
 * could have planted it, -E_BAD_INPUT when CERTAGENT_AGENT_USER names no user.
 * A no-op on Windows (a named pipe has no directory).
 */
int endpoint_check_path(const char *path, char **cause);

/*
 * After connecting, before sending: the process serving the connection runs
 * as a trusted user (SO_PEERCRED; the pipe server's process token on
 * Windows).  -E_DENIED naming the user otherwise.
 */
int endpoint_check_server(uv_pipe_t *pipe, char **cause);

#endif
