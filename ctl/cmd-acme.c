/* certctl request, renew, revoke, ca, account: the ACME commands. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "err.h"
#include "output.h"

#define MAX_NAMES 100
#define MAX_TAGS 16

struct opts {
    const char *pos[2]; /* positional arguments */
    size_t npos;
    const char *dns[MAX_NAMES];
    size_t ndns;
    const char *ips[MAX_NAMES];
    const char *tags[MAX_TAGS]; /* request --shared --tag */
    size_t ntags;
    size_t nips;
    const char *ca, *key, *challenge, *preferred_chain, *profile, *require_profile, *email;
    const char *reason, *directory, *trust, *eab_kid, *eab_hmac_file;
    int agree_tos, all, force;
};

/* Options every ACME command understands; a command names the ones it allows. */
static int
parse(const char *cmd, int argc, char **argv, int first, const char *allowed, size_t maxpos,
      struct opts *o)
{
    static const struct {
        const char *name;
        size_t off;
    } valued[] = {
        {"--ca", offsetof(struct opts, ca)},
        {"--key", offsetof(struct opts, key)},
        {"--challenge", offsetof(struct opts, challenge)},
        {"--preferred-chain", offsetof(struct opts, preferred_chain)},
        {"--profile", offsetof(struct opts, profile)},
        {"--require-profile", offsetof(struct opts, require_profile)},
        {"--email", offsetof(struct opts, email)},
        {"--reason", offsetof(struct opts, reason)},
        {"--directory", offsetof(struct opts, directory)},
        {"--trust", offsetof(struct opts, trust)},
        {"--eab-kid", offsetof(struct opts, eab_kid)},
        {"--eab-hmac-file", offsetof(struct opts, eab_hmac_file)},
    };
    static const struct {
        const char *name;
        size_t off;
    } flags[] = {
        {"--agree-tos", offsetof(struct opts, agree_tos)},
        {"--all", offsetof(struct opts, all)},
        {"--force", offsetof(struct opts, force)},
    };

    memset(o, 0, sizeof(*o));
    for (int i = first; i < argc; i++) {
        const char *v = NULL;
        char opt[40];
        int r = 0, matched = 0;

        if (strcmp(argv[i], "--json") == 0)
            continue;
        if (argv[i][0] != '-') {
            if (o->npos == maxpos)
                return cmd_usage_error(cmd, "unexpected argument '%s'", argv[i]);
            o->pos[o->npos++] = argv[i];
            continue;
        }
        snprintf(opt, sizeof(opt), "%.*s", (int)strcspn(argv[i], "="), argv[i]);
        if (strstr(allowed, opt) == NULL || strlen(opt) < 3) {
            return cmd_usage_error(cmd, "unknown option '%s'", argv[i]);
        }
        if (strcmp(opt, "--tag") == 0) {
            if ((r = cmd_opt(argc, argv, &i, opt, &v)) < 0)
                return cmd_usage_error(cmd, "%s needs a value", opt);
            if (o->ntags == MAX_TAGS)
                return cmd_usage_error(cmd, "at most %d tags", MAX_TAGS);
            o->tags[o->ntags++] = v;
            continue;
        }
        if (strcmp(opt, "--dns") == 0 || strcmp(opt, "--ip") == 0) {
            int dns = opt[2] == 'd';

            if ((r = cmd_opt(argc, argv, &i, opt, &v)) < 0)
                return cmd_usage_error(cmd, "%s needs a value", opt);
            if ((dns ? o->ndns : o->nips) == MAX_NAMES)
                return cmd_usage_error(cmd, "at most %d names", MAX_NAMES);
            if (dns)
                o->dns[o->ndns++] = v;
            else
                o->ips[o->nips++] = v;
            continue;
        }
        for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]) && !matched; k++) {
            if (strcmp(argv[i], flags[k].name) == 0) {
                *(int *)((char *)o + flags[k].off) = 1;
                matched = 1;
            }
        }
        for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]) && !matched; k++) {
            if (strcmp(opt, valued[k].name) != 0)
                continue;
            if ((r = cmd_opt(argc, argv, &i, valued[k].name, &v)) < 0)
                return cmd_usage_error(cmd, "%s needs a value", opt);
            *(const char **)((char *)o + valued[k].off) = v;
            matched = 1;
        }
        if (!matched)
            return cmd_usage_error(cmd, "unknown option '%s'", argv[i]);
    }
    return 0;
}

/* Progress on stderr for a person; with --json, one JSON line per event on stderr. */
static void
prepare_progress(struct ctl *ctl)
{
    ctl->client.json_progress = ctl->json;
}

static void
print_issued(const struct reply *r, const char *verb)
{
    char date[32];

    output_date(jint(r->result, "not_after"), date, sizeof(date));
    if (jstr(r->result, "ca")[0] != '\0')
        printf("%s '%s' version %lld from CA '%s'\n", verb, jstr(r->result, "name"),
               (long long)jint(r->result, "version"), jstr(r->result, "ca"));
    else
        printf("%s '%s' version %lld (self-signed)\n", verb, jstr(r->result, "name"),
               (long long)jint(r->result, "version"));
    printf("  subject:     %s\n", jstr(r->result, "subject"));
    printf("  issuer:      %s\n", jstr(r->result, "issuer"));
    printf("  expires:     %s (%lld days)\n", date, (long long)jint(r->result, "days_left"));
    printf("  key:         %s\n", jstr(r->result, "key"));
    printf("  fingerprint: %s\n", jstr(r->result, "fingerprint"));
    if (jstr(r->result, "profile")[0] != '\0')
        printf("  profile:     %s\n", jstr(r->result, "profile"));
}

int
cmd_request(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    struct opts o;
    size_t n = 4;
    int rc;

    if ((rc = parse(argv[0], argc, argv, 1,
                    "--dns --ip --ca --key --challenge --preferred-chain --profile "
                    "--require-profile --agree-tos --email --tag",
                    1, &o)) != 0)
        return rc;
    if (o.npos != 1)
        return cmd_usage_error(argv[0], "%s", "missing NAME");
    if (o.ntags > 0 && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ctl->settings, "shared")))
        return cmd_usage_error(argv[0], "%s", "--tag goes with --shared");
    if (o.ndns + o.nips == 0)
        return cmd_usage_error(argv[0], "%s", "give at least one --dns name or --ip address");
    if (o.profile != NULL && o.require_profile != NULL)
        return cmd_usage_error(argv[0], "%s", "give --profile or --require-profile, not both");
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    if (ctl->settings != NULL && (rc = cmd_settings_apply(ctl, o.pos[0], ctl->settings, 0)) != 0)
        return rc;
    prepare_progress(ctl);
    n += (o.ca != NULL) + (o.key != NULL) + (o.challenge != NULL) + (o.preferred_chain != NULL) +
         (o.profile != NULL || o.require_profile != NULL) * 2 + (o.email != NULL) + (o.ntags > 0);
    client_request_begin(&ctl->client, &w, PROTO_OP_REQUEST, n);
    proto_pack_kv_str(&w.pk, "name", o.pos[0]);
    proto_pack_str(&w.pk, "dns");
    proto_pack_str_array(&w.pk, (char *const *)o.dns, o.ndns);
    proto_pack_str(&w.pk, "ips");
    proto_pack_str_array(&w.pk, (char *const *)o.ips, o.nips);
    proto_pack_kv_bool(&w.pk, "agree_tos", o.agree_tos);
    if (o.ca != NULL)
        proto_pack_kv_str(&w.pk, "ca", o.ca);
    if (o.key != NULL)
        proto_pack_kv_str(&w.pk, "key", o.key);
    if (o.challenge != NULL)
        proto_pack_kv_str(&w.pk, "challenge", o.challenge);
    if (o.preferred_chain != NULL)
        proto_pack_kv_str(&w.pk, "preferred_chain", o.preferred_chain);
    if (o.profile != NULL || o.require_profile != NULL) {
        proto_pack_kv_str(&w.pk, "profile", o.profile != NULL ? o.profile : o.require_profile);
        proto_pack_kv_bool(&w.pk, "require_profile", o.require_profile != NULL);
    }
    if (o.email != NULL)
        proto_pack_kv_str(&w.pk, "email", o.email);
    if (o.ntags > 0) {
        proto_pack_str(&w.pk, "tags");
        proto_pack_str_array(&w.pk, (char *const *)o.tags, o.ntags);
    }
    if ((rc = ctl_call(ctl, &w, &r)) == 0) {
        if (ctl->json)
            output_json(r.result);
        else
            print_issued(&r, "issued");
    }
    reply_free(&r);
    return rc;
}

int
cmd_renew(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    struct opts o;
    const cJSON *it;
    int rc;

    if ((rc = parse(argv[0], argc, argv, 1, "--all --force", 1, &o)) != 0)
        return rc;
    if ((o.npos == 1) == (o.all != 0))
        return cmd_usage_error(argv[0], "%s", "give NAME or --all");
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    prepare_progress(ctl);
    client_request_begin(&ctl->client, &w, PROTO_OP_RENEW, o.all ? 2 : 3);
    if (!o.all)
        proto_pack_kv_str(&w.pk, "name", o.pos[0]);
    proto_pack_kv_bool(&w.pk, "all", o.all);
    proto_pack_kv_bool(&w.pk, "force", o.force);
    if ((rc = ctl_call(ctl, &w, &r)) == 0) {
        if (ctl->json) {
            output_json(r.result);
        } else if (!o.all) {
            print_issued(&r, "renewed");
        } else {
            size_t n = 0;

            cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.result, "renewed"))
            {
                n++;
                if (jbool(it, "ok"))
                    printf("renewed '%s' (version %lld)\n", jstr(it, "name"),
                           (long long)jint(it, "version"));
                else
                    printf("FAILED  '%s': %s\n", jstr(it, "name"), jstr(it, "error"));
            }
            if (n == 0)
                printf("no certificate is due for renewal\n");
        }
        if (jint(r.result, "failed") > 0)
            rc = EXIT_AGENT_ERROR;
    }
    reply_free(&r);
    return rc;
}

int
cmd_revoke(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    struct opts o;
    int rc;

    if ((rc = parse(argv[0], argc, argv, 1, "--reason", 1, &o)) != 0)
        return rc;
    if (o.npos != 1)
        return cmd_usage_error(argv[0], "%s", "missing NAME");
    if ((rc = ctl_connect(ctl)) != 0)
        return rc;
    client_request_begin(&ctl->client, &w, PROTO_OP_REVOKE, o.reason != NULL ? 2 : 1);
    proto_pack_kv_str(&w.pk, "name", o.pos[0]);
    if (o.reason != NULL)
        proto_pack_kv_str(&w.pk, "reason", o.reason);
    if ((rc = ctl_call(ctl, &w, &r)) == 0) {
        if (ctl->json)
            output_json(r.result);
        else {
            printf("revoked '%s' version %lld (serial %s, reason %s) at CA '%s'\n",
                   jstr(r.result, "name"), (long long)jint(r.result, "version"),
                   jstr(r.result, "serial"), jstr(r.result, "reason"), jstr(r.result, "ca"));
            /* What follows: the store's record drives status and the scheduler. */
            if (jbool(r.result, "recorded"))
                printf("recorded: status warns 'revoked' until a new version replaces it (the "
                       "agent requests one at once when renew_after_revoke is on and the "
                       "certificate renews automatically)\n");
            else
                printf("not recorded in the store (see the log); replace it with 'certctl renew "
                       "%s --force'\n",
                       jstr(r.result, "name"));
        }
    }
    reply_free(&r);
    return rc;
}

/* The state columns of one CA of `ca list`: last success, failures in a row (with the
 * last failure's words), canary, place in fallback_cas; "-" where there is nothing. */
static void
ca_state_cells(const cJSON *ca, char *success, char *failures, char *order, size_t slen,
               size_t flen, size_t olen, const char **cells)
{
    const cJSON *canary = cJSON_GetObjectItemCaseSensitive(ca, "canary");

    if (jint(ca, "last_success") > 0)
        output_time(jint(ca, "last_success"), success, slen);
    else
        snprintf(success, slen, "-");
    snprintf(failures, flen, "%lld", (long long)jint(ca, "failures"));
    if (jint(ca, "fallback_order") > 0)
        snprintf(order, olen, "%lld", (long long)jint(ca, "fallback_order"));
    else
        snprintf(order, olen, "-");
    cells[0] = success;
    cells[1] = failures;
    cells[2] =
        cJSON_IsObject(canary) && jstr(canary, "state")[0] != '\0' ? jstr(canary, "state") : "-";
    cells[3] = order;
}

/* ca add|list|remove */

int
cmd_ca(struct ctl *ctl, int argc, char **argv)
{
    struct proto_writer w;
    struct reply r;
    struct opts o;
    const char *sub = argc > 1 ? argv[1] : "";
    unsigned char *trust = NULL;
    size_t tlen = 0;
    char *cause = NULL;
    int rc;

    if (strcmp(sub, "add") != 0 && strcmp(sub, "list") != 0 && strcmp(sub, "remove") != 0)
        return cmd_usage_error(argv[0], "%s", "use 'ca add', 'ca list' or 'ca remove'");
    if ((rc = parse(argv[0], argc, argv, 2,
                    strcmp(sub, "remove") == 0 ? "--force" : "--directory --trust", 1, &o)) != 0)
        return rc;
    if (strcmp(sub, "list") != 0 && o.npos != 1)
        return cmd_usage_error(argv[0], "%s", "missing NAME");
    if (strcmp(sub, "add") == 0 && o.directory == NULL)
        return cmd_usage_error(argv[0], "%s", "ca add needs --directory URL");
    if (o.trust != NULL && cmd_read_input(o.trust, 256 * 1024, &trust, &tlen, &cause) != 0) {
        fprintf(stderr, "certctl ca: %s\n", cause != NULL ? cause : "cannot read --trust");
        free(cause);
        return EXIT_USAGE;
    }
    if ((rc = ctl_connect(ctl)) != 0)
        goto out;
    if (strcmp(sub, "add") == 0) {
        client_request_begin(&ctl->client, &w, PROTO_OP_CA_ADD, trust != NULL ? 3 : 2);
        proto_pack_kv_str(&w.pk, "name", o.pos[0]);
        proto_pack_kv_str(&w.pk, "directory", o.directory);
        if (trust != NULL)
            proto_pack_kv_bin(&w.pk, "trust", trust, tlen);
    } else if (strcmp(sub, "remove") == 0) {
        client_request_begin(&ctl->client, &w, PROTO_OP_CA_REMOVE, o.force ? 2 : 1);
        proto_pack_kv_str(&w.pk, "name", o.pos[0]);
        if (o.force)
            proto_pack_kv_bool(&w.pk, "force", 1);
    } else {
        client_request_begin(&ctl->client, &w, PROTO_OP_CA_LIST, 0);
    }
    if ((rc = ctl_call(ctl, &w, &r)) == 0) {
        if (ctl->json) {
            output_json(r.result);
        } else if (strcmp(sub, "add") == 0) {
            printf("added CA '%s': %s%s\n", jstr(r.result, "name"), jstr(r.result, "directory"),
                   jbool(r.result, "trust") ? " (trusting the given certificates)" : "");
            if (jstr(r.result, "account")[0] != '\0')
                printf("  account kept from before: %s\n", jstr(r.result, "account"));
        } else if (strcmp(sub, "remove") == 0) {
            char names[512];

            printf("removed CA '%s'\n", jstr(r.result, "name"));
            jjoin(r.result, "certificates", ", ", names, sizeof(names));
            if (names[0] != '\0')
                printf("  these certificates renew with it and will fail until it is added "
                       "again (certctl ca add %s --directory URL): %s\n",
                       jstr(r.result, "name"), names);
        } else {
            static const char *const hdr[] = {"NAME",     "DIRECTORY", "ACCOUNT", "LAST SUCCESS",
                                              "FAILURES", "CANARY",    "FALLBACK"};
            struct table *t = table_new(7, hdr);
            const cJSON *it;

            cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.result, "cas"))
            {
                char name[96], success[32], failures[16], order[16];
                const char *cells[7];

                snprintf(name, sizeof(name), "%s%s", jstr(it, "name"),
                         strcmp(jstr(it, "name"), jstr(r.result, "default_ca")) == 0 ? " (default)"
                                                                                     : "");
                cells[0] = name;
                cells[1] = jstr(it, "directory");
                cells[2] = jstr(it, "account")[0] != '\0' ? jstr(it, "account") : "-";
                ca_state_cells(it, success, failures, order, sizeof(success), sizeof(failures),
                               sizeof(order), cells + 3);
                table_add(t, cells);
            }
            table_print(t, stdout);
            table_free(t);
            cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.result, "cas"))
            {
                if (jint(it, "failures") > 0 && jstr(it, "last_error")[0] != '\0')
                    printf("%s: %lld failure(s) in a row, the last: %s\n", jstr(it, "name"),
                           (long long)jint(it, "failures"), jstr(it, "last_error"));
            }
        }
    }
    reply_free(&r);
out:
    free(trust);
    return rc;
}

/* account register|show|rollover|deactivate */

int
cmd_account(struct ctl *ctl, int argc, char **argv)
{
    static const struct {
        const char *sub;
        enum proto_op op;
        const char *allowed;
    } subs[] = {
        {"register", PROTO_OP_ACCOUNT_REGISTER,
         "--ca --email --eab-kid --eab-hmac-file --key --agree-tos"},
        {"show", PROTO_OP_ACCOUNT_SHOW, "--ca"},
        {"rollover", PROTO_OP_ACCOUNT_ROLLOVER, "--ca --key"},
        {"deactivate", PROTO_OP_ACCOUNT_DEACTIVATE, "--ca"},
    };
    struct proto_writer w;
    struct reply r;
    struct opts o;
    const char *sub = argc > 1 ? argv[1] : "";
    char *hmac = NULL, *cause = NULL;
    size_t k, n;
    int rc;

    for (k = 0; k < sizeof(subs) / sizeof(subs[0]); k++) {
        if (strcmp(sub, subs[k].sub) == 0)
            break;
    }
    if (k == sizeof(subs) / sizeof(subs[0]))
        return cmd_usage_error(argv[0], "%s",
                               "use 'account register', 'account show', "
                               "'account rollover' or 'account deactivate'");
    if ((rc = parse(argv[0], argc, argv, 2, subs[k].allowed, 0, &o)) != 0)
        return rc;
    if ((o.eab_kid != NULL) != (o.eab_hmac_file != NULL))
        return cmd_usage_error(argv[0], "%s", "--eab-kid and --eab-hmac-file go together");
    if (o.eab_hmac_file != NULL && cmd_read_password(o.eab_hmac_file, &hmac, &cause) != 0) {
        fprintf(stderr, "certctl account: %s\n", cause != NULL ? cause : "cannot read the file");
        free(cause);
        return EXIT_USAGE;
    }
    if ((rc = ctl_connect(ctl)) != 0)
        goto out;
    prepare_progress(ctl);
    n = 1 + (o.ca != NULL) + (o.email != NULL) + (o.eab_kid != NULL) * 2 + (o.key != NULL);
    client_request_begin(&ctl->client, &w, subs[k].op, n);
    proto_pack_kv_bool(&w.pk, "agree_tos", o.agree_tos);
    if (o.ca != NULL)
        proto_pack_kv_str(&w.pk, "ca", o.ca);
    if (o.email != NULL)
        proto_pack_kv_str(&w.pk, "email", o.email);
    if (o.eab_kid != NULL) {
        proto_pack_kv_str(&w.pk, "eab_kid", o.eab_kid);
        proto_pack_kv_str(&w.pk, "eab_hmac", hmac);
    }
    if (o.key != NULL)
        proto_pack_kv_str(&w.pk, "key", o.key);
    if ((rc = ctl_call(ctl, &w, &r)) == 0) {
        if (ctl->json) {
            output_json(r.result);
        } else if (subs[k].op == PROTO_OP_ACCOUNT_REGISTER) {
            printf("registered an account at CA '%s': %s\n", jstr(r.result, "ca"),
                   jstr(r.result, "url"));
        } else if (subs[k].op == PROTO_OP_ACCOUNT_ROLLOVER) {
            printf("account at CA '%s' now uses a new %s key\n", jstr(r.result, "ca"),
                   jstr(r.result, "key"));
        } else if (subs[k].op == PROTO_OP_ACCOUNT_DEACTIVATE) {
            printf("deactivated the account at CA '%s': %s\n", jstr(r.result, "ca"),
                   jstr(r.result, "url"));
        } else {
            char contact[512];

            jjoin(r.result, "contact", ", ", contact, sizeof(contact));
            printf("CA:      %s\nURL:     %s\nstatus:  %s\nkey:     %s\ncontact: %s\n",
                   jstr(r.result, "ca"), jstr(r.result, "url"), jstr(r.result, "status"),
                   jstr(r.result, "key"), contact[0] != '\0' ? contact : "-");
        }
    }
    reply_free(&r);
out:
    cmd_free_secret(hmac);
    return rc;
}
