/*
 * The "cluster" key of certagent.json: how this agent joins a fleet through
 * etcd (agent/fleet/).  Checked at load with errors naming the sub-key:
 *
 *   "cluster": {"etcd": ["https://10.0.0.1:2379", ...], "trust": "ca.pem",
 *               "client_cert": "NAME" | "client_cert_file": F, "client_key_file": F,
 *               "fleet": "prod", "fleet_key_file": "/etc/certagent/fleet.key",
 *               "node": "web1", "tags": ["web"], "fleet_grace": 300}
 */
#ifndef CERTAGENT_CONFIG_CLUSTER_H
#define CERTAGENT_CONFIG_CLUSTER_H

#include <stddef.h>

struct cJSON;

/* The longest fleet or node name. */
#define CONFIG_CLUSTER_NAME_MAX 64

struct config_cluster {
    char **etcd; /* endpoint URLs, https:// (http:// on loopback only) */
    size_t netcd;
    char *trust;            /* PEM of the CAs trusted for etcd; NULL: the system store */
    char *client_cert;      /* a certificate of the agent's store used as client certificate */
    char *client_cert_file; /* or a PEM file and its key */
    char *client_key_file;
    char *fleet;          /* the fleet's name: its keys live under /certagent/FLEET/ */
    char *fleet_key_file; /* 32 bytes, 0600 */
    char *node;           /* this node's name (default: the host name) */
    char **tags;
    size_t ntags;
    int fleet_grace; /* seconds etcd may be unreachable before status warns */
    int insecure;    /* some endpoint is http:// (loopback): the agent warns at start */
};

/* Parses j (the "cluster" object) into a new *out.  0 or -E_BAD_INPUT with words. */
int config_cluster_parse(const struct cJSON *j, struct config_cluster **out, char **cause);
void config_cluster_free(struct config_cluster *c);
/* Do a and b differ (either may be NULL)? */
int config_cluster_differs(const struct config_cluster *a, const struct config_cluster *b);
/* Is the URL's host a loopback address (127.0.0.0/8, [::1], localhost)? */
int config_cluster_loopback_url(const char *url);
/* A fleet, node or tag name: 1..64 of [A-Za-z0-9._-]. */
int config_cluster_name_ok(const char *s);

#endif
