/*
 * The ACME client's challenge responders (acme-int.h): http-01 on
 * http01_listen, tls-alpn-01 on tls_alpn01_listen, made when a challenge
 * first needs one (or at start with challenge_listen_always).
 */
#include <stdlib.h>

#include "acme-int.h"
#include "challenge-alpn.h"
#include "challenge-http.h"
#include "challenge-net.h"
#include "config.h"
#include "env.h"
#include "err.h"
#include "log.h"

/* A config_list as the responders take it. */
#define LISTEN_ARGS(l) (const char *const *)(l).items, (l).n

int
acme_responders_http01(struct acme *acme, struct challenge_http **out, char **cause)
{
    const struct config *config = acme->env->config;
    int rc = 0;

    *out = NULL;
    if (acme->stopping) {
        err_set(cause, "the agent is stopping");
        return -E_UNAVAILABLE;
    }
    if (acme->http01 == NULL &&
        (rc = challenge_http_new(acme->loop, LISTEN_ARGS(config->http01_listen),
                                 config->challenge_listen_always, &acme->http01, cause)) == 0) {
        challenge_http_use_config(acme->http01, config);
        if (acme->commit.token_lookup != NULL)
            challenge_http_set_lookup(acme->http01,
                                      &(struct challenge_lookup){acme->commit.token_lookup,
                                                                 acme->commit.token_lookup_cancel,
                                                                 acme->commit.ctx});
    }
    *out = acme->http01;
    return rc;
}

int
acme_responders_alpn01(struct acme *acme, struct challenge_alpn **out, char **cause)
{
    const struct config *config = acme->env->config;
    int rc = 0;

    *out = NULL;
    if (acme->stopping) {
        err_set(cause, "the agent is stopping");
        return -E_UNAVAILABLE;
    }
    if (acme->alpn01 == NULL &&
        (rc = challenge_alpn_new(acme->loop, LISTEN_ARGS(config->tls_alpn01_listen),
                                 config->challenge_listen_always, &acme->alpn01, cause)) == 0) {
        challenge_alpn_use_config(acme->alpn01, config);
        if (acme->commit.token_lookup != NULL)
            challenge_alpn_set_lookup(acme->alpn01,
                                      &(struct challenge_lookup){acme->commit.token_lookup,
                                                                 acme->commit.token_lookup_cancel,
                                                                 acme->commit.ctx});
    }
    *out = acme->alpn01;
    return rc;
}

void
acme_responders_apply(struct acme *acme)
{
    const struct config *config = acme->env->config;
    int always = config->challenge_listen_always, rc = 0;
    struct challenge_http *h;
    struct challenge_alpn *a;
    char *cause = NULL;

    if (acme->stopping)
        return;
    if (acme->http01 != NULL)
        rc = challenge_http_set_listen(acme->http01, LISTEN_ARGS(config->http01_listen), always,
                                       &cause);
    else if (always)
        rc = acme_responders_http01(acme, &h, &cause);
    if (rc != 0)
        log_warn("%s", cause != NULL ? cause : "http-01: cannot listen");
    free(cause);
    cause = NULL;
    rc = 0;
    if (acme->alpn01 != NULL)
        rc = challenge_alpn_set_listen(acme->alpn01, LISTEN_ARGS(config->tls_alpn01_listen),
                                       always, &cause);
    else if (always)
        rc = acme_responders_alpn01(acme, &a, &cause);
    if (rc != 0)
        log_warn("%s", cause != NULL ? cause : "tls-alpn-01: cannot listen");
    free(cause);
}

void
acme_responders_close(struct acme *acme)
{
    challenge_http_free(acme->http01);
    challenge_alpn_free(acme->alpn01);
    acme->http01 = NULL;
    acme->alpn01 = NULL;
}
