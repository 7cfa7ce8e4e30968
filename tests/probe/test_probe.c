/* Probe URLs and the STARTTLS state machines, fed line by line and byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "err.h"
#include "probe.h"

static void
test_url_defaults(void **state)
{
    static const struct {
        const char *url, *host;
        int port;
        enum probe_starttls st;
    } cases[] = {
        {"https://www.example", "www.example", 443, PROBE_TLS},
        {"imaps://mail.example", "mail.example", 993, PROBE_TLS},
        {"pop3s://mail.example/", "mail.example", 995, PROBE_TLS},
        {"smtps://mail.example", "mail.example", 465, PROBE_TLS},
        {"ldaps://dir.example", "dir.example", 636, PROBE_TLS},
        {"imap+starttls://mail.example", "mail.example", 143, PROBE_IMAP},
        {"pop3+starttls://mail.example", "mail.example", 110, PROBE_POP3},
        {"smtp+starttls://mail.example:587", "mail.example", 587, PROBE_SMTP},
        {"smtp+starttls://mail.example", "mail.example", 25, PROBE_SMTP},
        {"tls://[::1]:8443/x", "::1", 8443, PROBE_TLS},
        {"tls://127.0.0.1:1", "127.0.0.1", 1, PROBE_TLS},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct probe_url u;

        assert_int_equal(probe_url_parse(cases[i].url, &u, NULL), 0);
        assert_string_equal(u.host, cases[i].host);
        assert_int_equal(u.port, cases[i].port);
        assert_int_equal(u.starttls, cases[i].st);
        probe_url_free(&u);
    }
}

static void
test_url_errors(void **state)
{
    static const struct {
        const char *url, *words;
    } cases[] = {
        {"mail.example", "is not a URL"},    {"ftp://x", "unknown scheme 'ftp'"},
        {"tls://x", "tls:// needs a port"},  {"imaps://", "no host name"},
        {"imaps://x:0", "from 1 to 65535"},  {"imaps://x:65536", "from 1 to 65535"},
        {"imaps://x:9x", "from 1 to 65535"}, {"imaps://x:", "from 1 to 65535"},
        {"imaps://[::1", "closing ']'"},     {"imaps://a b", "not allowed"},
        {"imaps://a'b", "not allowed"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct probe_url u;
        char *cause = NULL;

        assert_int_equal(probe_url_parse(cases[i].url, &u, &cause), -E_BAD_INPUT);
        assert_non_null(cause);
        if (strstr(cause, cases[i].words) == NULL)
            fail_msg("%s: '%s' lacks '%s'", cases[i].url, cause, cases[i].words);
        free(cause);
    }
}

/*
 * Runs a dialogue: server lines are fed (split into single bytes when
 * bytewise), the client's answers are checked in order.  Returns the last rc.
 */
static int
dialogue(enum probe_starttls proto, const char *const *server, const char *const *expect,
         int bytewise, char **cause)
{
    struct starttls st;
    char out[256];
    size_t outlen = 0, e = 0;
    int rc = 0;

    starttls_init(&st, proto);
    for (size_t i = 0; server[i] != NULL && rc == 0; i++) {
        size_t len = strlen(server[i]);

        for (size_t off = 0; off < len && rc == 0; off += bytewise ? 1 : len) {
            rc = starttls_feed(&st, server[i] + off, bytewise ? 1 : len, out, sizeof(out), &outlen,
                               cause);
            if (outlen > 0) {
                assert_non_null(expect[e]);
                assert_int_equal(outlen, strlen(expect[e]));
                assert_memory_equal(out, expect[e], outlen);
                e++;
            }
        }
    }
    if (rc == 1)
        assert_null(expect[e]);
    return rc;
}

static void
test_imap(void **state)
{
    const char *const server[] = {"* OK ready\r\n",
                                  "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n",
                                  "A1 OK done\r\n", "A2 OK begin\r\n", NULL};
    const char *const expect[] = {"A1 CAPABILITY\r\n", "A2 STARTTLS\r\n", NULL};
    const char *const nostls[] = {"* OK ready\r\n", "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n",
                                  "A1 OK done\r\n", NULL};
    const char *const refused[] = {"* OK ready\r\n", "* CAPABILITY IMAP4rev1 STARTTLS\r\n",
                                   "A1 OK done\r\n", "A2 NO not now\r\n", NULL};
    char *cause = NULL;

    (void)state;
    assert_int_equal(dialogue(PROBE_IMAP, server, expect, 0, NULL), 1);
    assert_int_equal(dialogue(PROBE_IMAP, server, expect, 1, NULL), 1);
    assert_int_equal(dialogue(PROBE_IMAP, nostls, expect, 0, &cause), -E_PROTO);
    assert_non_null(strstr(cause, "does not offer STARTTLS (CAPABILITY: IMAP4rev1 AUTH=PLAIN)"));
    free(cause);
    cause = NULL;
    assert_int_equal(dialogue(PROBE_IMAP, refused, expect, 0, &cause), -E_PROTO);
    assert_non_null(strstr(cause, "refused STARTTLS: NO not now"));
    free(cause);
}

static void
test_pop3(void **state)
{
    const char *const server[] = {"+OK hi\r\n", "+OK caps\r\nUSER\r\nSTLS\r\n.\r\n", "+OK go\r\n",
                                  NULL};
    const char *const expect[] = {"CAPA\r\n", "STLS\r\n", NULL};
    const char *const nocapa[] = {"+OK hi\r\n", "-ERR what\r\n", NULL};
    char *cause = NULL;

    (void)state;
    assert_int_equal(dialogue(PROBE_POP3, server, expect, 0, NULL), 1);
    assert_int_equal(dialogue(PROBE_POP3, server, expect, 1, NULL), 1);
    assert_int_equal(dialogue(PROBE_POP3, nocapa, expect, 0, &cause), -E_PROTO);
    assert_non_null(strstr(cause, "refused CAPA"));
    free(cause);
}

static void
test_smtp(void **state)
{
    const char *const server[] = {"220-mx ESMTP\r\n220 ready\r\n",
                                  "250-mx\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
                                  "220 go ahead\r\n", NULL};
    const char *const expect[] = {"EHLO certagent.invalid\r\n", "STARTTLS\r\n", NULL};
    const char *const nostls[] = {"220 ready\r\n", "250-mx\r\n250 SIZE 100\r\n", NULL};
    const char *const busy[] = {"421 busy\r\n", NULL};
    char *cause = NULL;

    (void)state;
    assert_int_equal(dialogue(PROBE_SMTP, server, expect, 0, NULL), 1);
    assert_int_equal(dialogue(PROBE_SMTP, server, expect, 1, NULL), 1);
    assert_int_equal(dialogue(PROBE_SMTP, nostls, expect, 0, &cause), -E_PROTO);
    assert_non_null(strstr(cause, "does not offer STARTTLS (EHLO: SIZE 100)"));
    free(cause);
    cause = NULL;
    assert_int_equal(dialogue(PROBE_SMTP, busy, expect, 0, &cause), -E_PROTO);
    assert_non_null(strstr(cause, "greeted with '421 busy' instead of 220"));
    free(cause);
}

static void
test_limits(void **state)
{
    struct starttls st;
    char out[64], line[2048], *cause = NULL;
    size_t outlen;

    (void)state;
    memset(line, 'a', sizeof(line));
    starttls_init(&st, PROBE_IMAP);
    assert_int_equal(starttls_feed(&st, line, sizeof(line), out, sizeof(out), &outlen, &cause),
                     -E_PROTO);
    assert_non_null(strstr(cause, "longer than 1023 bytes"));
    free(cause);
    cause = NULL;
    starttls_init(&st, PROBE_IMAP);
    assert_int_equal(starttls_feed(&st, "* OK\r\n", 6, out, sizeof(out), &outlen, NULL), 0);
    for (int i = 0; i < 250; i++) {
        int rc = starttls_feed(&st, "* x\r\n", 5, out, sizeof(out), &outlen, &cause);

        if (rc != 0) {
            assert_int_equal(rc, -E_PROTO);
            assert_non_null(strstr(cause, "more than 200 lines"));
            free(cause);
            return;
        }
    }
    fail_msg("an endless dialogue was not cut");
}

static void
test_config_keys(void **state)
{
    struct config c;
    char *cause = NULL;
    const char *text = "{\"probes\": [\"imaps://a\", \"https://b\"], \"probe_interval\": 60,"
                       " \"probe_min_tls\": \"1.3\", \"trust_aia_fetch\": false,"
                       " \"trust_system_dir\": \"/tmp/x\"}";

    (void)state;
    assert_int_equal(config_defaults(&c), 0);
    assert_int_equal(c.probes.n, 0);
    assert_int_equal(c.trust_aia_fetch, 1);
    assert_int_equal(c.trust_system_roots, 1);
    assert_string_equal(c.probe_min_tls, "1.2");
    assert_string_equal(c.trust_system_command, "update-ca-certificates");
    assert_null(c.trust_system_dir);
    assert_int_equal(config_parse(text, strlen(text), &c, NULL, NULL, &cause), 0);
    assert_int_equal(c.probes.n, 2);
    assert_string_equal(c.probes.items[1], "https://b");
    assert_int_equal(c.probe_interval, 60);
    assert_int_equal(c.trust_aia_fetch, 0);
    assert_string_equal(c.trust_system_dir, "/tmp/x");
    assert_int_equal(probe_tls_version(c.probe_min_tls), TLS1_3_VERSION);
    config_free(&c);
    assert_int_equal(config_defaults(&c), 0);
    text = "{\"probe_interval\": 5}";
    assert_int_equal(config_parse(text, strlen(text), &c, NULL, NULL, &cause), -E_BAD_INPUT);
    assert_non_null(strstr(cause, "$.probe_interval: 5 is out of range 10..604800"));
    free(cause);
    config_free(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_defaults), cmocka_unit_test(test_url_errors),
        cmocka_unit_test(test_imap),         cmocka_unit_test(test_pop3),
        cmocka_unit_test(test_smtp),         cmocka_unit_test(test_limits),
        cmocka_unit_test(test_config_keys),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
