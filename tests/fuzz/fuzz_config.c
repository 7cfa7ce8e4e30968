/*
 * The JSON config (common/config.c config_parse, which config_load uses for
 * the file's bytes), then what the agent does with a parsed config on reload
 * (config_restart_needed against the defaults) and the probe URLs it lists
 * (agent/probe.c probe_url_parse).
 */
#include <stdlib.h>

#include "config.h"
#include "fuzz.h"
#include "probe.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config c, defaults;
    char **warnings = NULL, *cause = NULL, *restart;
    size_t nwarnings = 0;

    if (config_defaults(&defaults) != 0)
        return 0;
    if (config_defaults(&c) != 0) {
        config_free(&defaults);
        return 0;
    }
    if (config_parse((const char *)data, size, &c, &warnings, &nwarnings, &cause) == 0) {
        if ((restart = config_restart_needed(&defaults, &c)) != NULL)
            free(restart);
        for (size_t i = 0; i < c.probes.n; i++) {
            struct probe_url u;
            char *why = NULL;

            if (probe_url_parse(c.probes.items[i], &u, &why) == 0)
                probe_url_free(&u);
            free(why);
        }
    }
    free(cause);
    config_free_warnings(warnings, nwarnings);
    config_free(&c);
    config_free(&defaults);
    return 0;
}
