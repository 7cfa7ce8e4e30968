/* Command-line option matching shared by certagent and certctl. */
#ifndef CERTAGENT_CLIOPT_H
#define CERTAGENT_CLIOPT_H

/*
 * Matches argv[*i] against "--name VALUE" or "--name=VALUE".  Returns 1 when
 * matched (value in *out, *i advanced past a separate value), 0 when argv[*i]
 * is another option, -1 when the value is missing.
 */
int cliopt_value(int argc, char **argv, int *i, const char *name, const char **out);

#endif
