/* agent/fleet/record.c and etcd.c's encoding: records seal and open, and refuse what is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "err.h"
#include "etcd.h"
#include "record.h"

static const unsigned char key1[FLEETKEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char key2[FLEETKEY_LEN] = "fedcba9876543210fedcba9876543210";
static const char key_pem[] = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAsecret\n-----END PRIVATE "
                              "KEY-----\n";

static char *
sealed(const unsigned char *key, const char *name, unsigned version)
{
    struct fleet_record r = {
        version, "0A1B", 1800000000, "web1", "-----BEGIN CERTIFICATE-----\n", (char *)key_pem};
    char *out = NULL, *cause = NULL;

    assert_int_equal(record_seal(key, "prod", name, &r, &out, &cause), 0);
    assert_non_null(out);
    return out;
}

static void
test_round_trip(void **state)
{
    char *text = sealed(key1, "www", 3), *cause = NULL;
    struct fleet_record r;

    (void)state;
    /* The key is not in the record in clear. */
    assert_null(strstr(text, "secret"));
    assert_null(strstr(text, "PRIVATE"));
    assert_int_equal(record_open(key1, "prod", "www", text, strlen(text), &r, &cause), 0);
    assert_int_equal(r.version, 3);
    assert_string_equal(r.serial, "0A1B");
    assert_string_equal(r.node, "web1");
    assert_int_equal(r.not_after, 1800000000);
    assert_string_equal(r.key_pem, key_pem);
    assert_null(r.acme); /* none was sealed */
    record_clear(&r);
    free(text);
}

/* How the version was ordered travels with it, so that another node can renew it. */
static void
test_acme_round_trip(void **state)
{
    struct fleet_record r = {
        2,
        "0A1B",
        1800000000,
        "web1",
        "-----BEGIN CERTIFICATE-----\n",
        (char *)key_pem,
        (char *)"{\"ca\":\"pebble\",\"key_type\":\"ec256\",\"challenge\":\"http-01\"}"};
    struct fleet_record o;
    char *text = NULL, *cause = NULL;

    (void)state;
    assert_int_equal(record_seal(key1, "prod", "www", &r, &text, &cause), 0);
    assert_int_equal(record_open(key1, "prod", "www", text, strlen(text), &o, &cause), 0);
    assert_non_null(o.acme);
    assert_non_null(strstr(o.acme, "\"ca\":\"pebble\""));
    assert_non_null(strstr(o.acme, "\"challenge\":\"http-01\""));
    record_clear(&o);
    free(text);
}

static void
refused(const unsigned char *key, const char *fleet, const char *name, const char *text,
        size_t len, int want, const char *words)
{
    struct fleet_record r;
    char *cause = NULL;

    assert_int_equal(record_open(key, fleet, name, text, len, &r, &cause), want);
    assert_non_null(cause);
    if (strstr(cause, words) == NULL)
        fail_msg("expected '%s' in: %s", words, cause);
    assert_null(r.key_pem);
    free(cause);
}

static void
test_refusals(void **state)
{
    char *text = sealed(key1, "www", 3);
    cJSON *o;
    char *bumped;

    (void)state;
    refused(key2, "prod", "www", text, strlen(text), -E_CRYPTO, "does not open");
    refused(key1, "prod", "mail", text, strlen(text), -E_CRYPTO, "'mail' version 3");
    refused(key1, "test", "www", text, strlen(text), -E_CRYPTO, "does not open");
    refused(key1, "prod", "www", text, strlen(text) / 2, -E_BAD_INPUT, "not a valid record");
    refused(key1, "prod", "www", "{}", 2, -E_BAD_INPUT, "not a valid record");
    /* The version is bound too: a record whose version was changed does not open. */
    o = cJSON_Parse(text);
    cJSON_ReplaceItemInObject(o, "version", cJSON_CreateNumber(4));
    bumped = cJSON_PrintUnformatted(o);
    refused(key1, "prod", "www", bumped, strlen(bumped), -E_CRYPTO, "version 4");
    /* A key blob cut short. */
    cJSON_ReplaceItemInObject(o, "key", cJSON_CreateString("AAAA"));
    free(bumped);
    bumped = cJSON_PrintUnformatted(o);
    refused(key1, "prod", "www", bumped, strlen(bumped), -E_BAD_INPUT, "no valid encrypted key");
    free(bumped);
    cJSON_Delete(o);
    free(text);
}

static void
test_base64(void **state)
{
    unsigned char *out = NULL;
    size_t len = 0;
    char *s, *end;

    (void)state;
    s = etcd_b64("foo", 3);
    assert_string_equal(s, "Zm9v");
    free(s);
    s = etcd_b64("ab", 2);
    assert_string_equal(s, "YWI=");
    assert_int_equal(etcd_unb64(s, &out, &len), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(out, "ab", 2);
    free(out);
    free(s);
    assert_int_equal(etcd_unb64("", &out, &len), 0);
    assert_int_equal(len, 0);
    free(out);
    assert_int_equal(etcd_unb64("abc", &out, &len), -E_BAD_INPUT);
    assert_int_equal(etcd_unb64("a!c=", &out, &len), -E_BAD_INPUT);
    end = etcd_prefix_end("/certagent/prod/certs/");
    assert_string_equal(end, "/certagent/prod/certs0");
    free(end);
}

/* Serials from openssl (colons, upper case) and etcd records (bare hex) are the same number. */
static void
test_same_serial(void **state)
{
    (void)state;
    assert_true(record_same_serial("04:A1:0F", "4a10f"));
    assert_true(record_same_serial("00FF", "ff"));
    assert_false(record_same_serial("04A1", "04A2"));
    assert_false(record_same_serial("04A1", "04A10"));
    assert_false(record_same_serial(NULL, "1"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_acme_round_trip),
        cmocka_unit_test(test_refusals),    cmocka_unit_test(test_base64),
        cmocka_unit_test(test_same_serial),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
