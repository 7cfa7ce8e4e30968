/*
 * The "canaries" key of certagent.json: per CA a staging canary, a complete
 * ACME order against the CA's staging directory on a schedule, whose
 * certificate is checked and thrown away (agent/renew/canary.c,
 * docs/resilience.md).  Checked at load with errors naming the member:
 *
 *   "canaries": [{"ca": "letsencrypt", "name": "canary.example.com",
 *                 "directory": URL, "trust": FILE, "roots": FILE,
 *                 "challenge": "http-01", "every": "1d", "deadline": 600}]
 *
 * Whether "ca" names a CA the agent knows is the agent's to check (agent.c).
 */
#ifndef CERTAGENT_CONFIG_CANARY_H
#define CERTAGENT_CONFIG_CANARY_H

#include <stddef.h>

struct cJSON;

/* The most canaries (one per CA). */
#define CONFIG_CANARIES_MAX 16

struct config_canary {
    char *ca;        /* the production CA this canary watches */
    char *directory; /* its staging directory: https:// (http:// on loopback only) */
    char *trust;     /* PEM trusted for the staging directory's HTTPS; NULL: system store */
    char *roots;     /* PEM of the staging roots the chain must lead to; NULL: no root check */
    char *name;      /* the DNS name ordered */
    char *challenge; /* "http-01" (default), "tls-alpn-01", "dns-01" */
    int every;       /* seconds between runs (default 86400) */
    int deadline;    /* seconds one run may take (default 600) */
};

struct config_canaries {
    struct config_canary *items;
    size_t n;
};

/* The staging directory of a built-in CA, or NULL when it has none. */
const char *config_canary_staging_directory(const char *ca);
/* Parses j (the "canaries" array) over *out (freed first when it succeeds).  0 or
 * -E_BAD_INPUT with words naming the member ("$.canaries[0].name: ..."). */
int config_canaries_parse(const struct cJSON *j, struct config_canaries *out, char **cause);
void config_canaries_free(struct config_canaries *c);
/* "7d", "12h", "30m", "90s" to seconds; -1 when malformed. */
long config_canary_interval(const char *s);

#endif
