/*
 * The logger's escaping (agent/base/log.c, log_escape): whatever a peer, a
 * certificate or a hook puts in a log line, one call stays one line and no
 * control character reaches a terminal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"

static void
check_escape(const char *in, const char *want)
{
    char out[256];

    log_escape(out, sizeof(out), in);
    assert_string_equal(out, want);
}

static void
test_controls(void **state)
{
    (void)state;
    check_escape("plain text, 'www' v1", "plain text, 'www' v1");
    check_escape("a\nb\rc\td", "a\\nb\\rc\\td");
    check_escape("x\n[forged] certagent[error]: y", "x\\n[forged] certagent[error]: y");
    check_escape("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m");
    check_escape("\x01\x1f\x7f end", "\\x01\\x1f\\x7f end");
    /* Backslashes stay: C:\ProgramData paths read as they are. */
    check_escape("C:\\ProgramData\\certagent", "C:\\ProgramData\\certagent");
    check_escape("", "");
}

static void
test_utf8(void **state)
{
    (void)state;
    /* Well-formed UTF-8 is kept: names and hook output in any language. */
    check_escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92",
                 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92");
    /* C1 controls (CSI is U+009B), stray and overlong bytes, a cut sequence. */
    check_escape("\xc2\x9b"
                 "31m",
                 "\\xc2\\x9b31m");
    check_escape("a\x9b"
                 "b",
                 "a\\x9bb");
    check_escape("\xc0\x8a", "\\xc0\\x8a");
    check_escape("end\xe2\x82", "end\\xe2\\x82");
    check_escape("\xed\xa0\x80", "\\xed\\xa0\\x80");
}

static void
test_truncation(void **state)
{
    char out[8];

    (void)state;
    /* Cut before an escape that would not fit, never inside it. */
    log_escape(out, sizeof(out), "abcdef\nf");
    assert_string_equal(out, "abcdef");
    log_escape(out, sizeof(out), "abcd\xc3\xa9\xc3\xa9");
    assert_string_equal(out, "abcd\xc3\xa9");
    log_escape(out, 1, "abc");
    assert_string_equal(out, "");
}

static void
remember(void *arg, uint64_t seq, int64_t time, enum log_level level, const char *text)
{
    char **last = arg;

    (void)seq;
    (void)time;
    (void)level;
    free(*last);
    *last = strdup(text);
}

static void
test_one_call_one_line(void **state)
{
    char *last = NULL;
    uint64_t before, after;

    (void)state;
    assert_int_equal(log_ring_resize(16), 0);
    before = log_ring_read(0, remember, &last, NULL);
    log_info("client says hello as %s", "evil\n2026-01-01T00:00:00Z certagent[error]: \x1b]0;x\a");
    after = log_ring_read(before, remember, &last, NULL);
    assert_int_equal(after, before + 1);
    assert_non_null(last);
    assert_null(strchr(last, '\n'));
    assert_null(strchr(last, '\x1b'));
    assert_string_equal(last, "client says hello as evil\\n2026-01-01T00:00:00Z certagent[error]: "
                              "\\x1b]0;x\\x07");
    free(last);
    log_ring_free();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_controls),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_one_call_one_line),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
