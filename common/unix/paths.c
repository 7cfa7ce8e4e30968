#include "../paths.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../err.h"
#include "../fsutil.h"

#define SYSTEM_CONFIG "/etc/certagent/certagent.json"
#define SYSTEM_STATE "/var/lib/certagent"
#define SYSTEM_SOCKET "/run/certagent/certagent.sock"

static char *
dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

int
paths_system(struct paths *p)
{
    memset(p, 0, sizeof(*p));
    p->config = strdup(SYSTEM_CONFIG);
    p->state_dir = strdup(SYSTEM_STATE);
    p->socket = strdup(SYSTEM_SOCKET);
    p->system = 1;
    if (p->config == NULL || p->state_dir == NULL || p->socket == NULL) {
        paths_free(p);
        return -E_NOMEM;
    }
    return 0;
}

/* $HOME, or the password database's home directory. */
static char *
home_dir(void)
{
    const char *home = getenv("HOME");
    struct passwd pw, *res = NULL;
    char buf[4096];

    if (home != NULL && home[0] == '/')
        return strdup(home);
    if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res != NULL)
        return dup_or_null(pw.pw_dir);
    return strdup("/");
}

/* $VAR if absolute, else $HOME/fallback. */
static char *
xdg_dir(const char *var, const char *fallback)
{
    const char *v = getenv(var);
    char *home, *out;

    if (v != NULL && v[0] == '/')
        return strdup(v);
    if ((home = home_dir()) == NULL)
        return NULL;
    out = fsutil_join(home, fallback);
    free(home);
    return out;
}

int
paths_default(struct paths *p)
{
    char *state = NULL, *config = NULL, *runtime = NULL;
    const char *xdg_runtime;
    char tmp[64];
    int rc = -E_NOMEM;

    if (geteuid() == 0)
        return paths_system(p);
    memset(p, 0, sizeof(*p));
    if ((state = xdg_dir("XDG_STATE_HOME", ".local/state")) == NULL)
        goto out;
    if ((config = xdg_dir("XDG_CONFIG_HOME", ".config")) == NULL)
        goto out;
    xdg_runtime = getenv("XDG_RUNTIME_DIR");
    if (xdg_runtime != NULL && xdg_runtime[0] == '/') {
        runtime = strdup(xdg_runtime);
    } else {
        /*
         * No runtime directory (su, sudo -u, cron, containers): /tmp/certagent-UID,
         * as tmux uses /tmp/tmux-UID.  Anyone may create that name first, so
         * neither side trusts it blindly: the agent creates it 0700 and refuses
         * it when another user owns it, others may write to it or it is another
         * user's symbolic link (platform_socket_prepare); certctl refuses the
         * same and a server that runs as another user (ctl/endpoint.h).
         */
        snprintf(tmp, sizeof(tmp), "/tmp/certagent-%lu", (unsigned long)getuid());
        runtime = strdup(tmp);
    }
    if (runtime == NULL)
        goto out;
    p->state_dir = fsutil_join(state, "certagent");
    p->config = fsutil_join(config, "certagent/certagent.json");
    if (getenv("XDG_RUNTIME_DIR") != NULL && xdg_runtime[0] == '/')
        p->socket = fsutil_join(runtime, "certagent/certagent.sock");
    else
        p->socket = fsutil_join(runtime, "certagent.sock");
    if (p->state_dir == NULL || p->config == NULL || p->socket == NULL) {
        paths_free(p);
        goto out;
    }
    rc = 0;
out:
    free(state);
    free(config);
    free(runtime);
    return rc;
}
