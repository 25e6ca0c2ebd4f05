/* test-term_text.c - unit tests of controller/util/term_text.c: what a terminal would act on is
 * escaped, valid UTF-8 passes, cutting never splits an escape or a character. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/term_text.h"

static void expect(const char *in, const char *want)
{
    char buf[128];
    size_t n = term_text_escape(in, buf, sizeof(buf));

    if (strcmp(buf, want))
        fail_msg("'%s' escaped to '%s', want '%s'", in ? in : "(null)", buf, want);
    assert_int_equal(n, strlen(want));
}

static void controls_are_escaped_text_passes(void **state)
{
    (void)state;
    expect("web-1", "web-1");
    expect(NULL, "");
    expect("a\x1b[2Jb", "a\\x1B[2Jb"); /* clear screen */
    expect("x\ry\n\a\t", "x\\x0Dy\\x0A\\x07\\x09");
    expect("del\x7f", "del\\x7F");
    expect("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x94\xa5",
           "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x94\xa5");
    expect("c1 \xc2\x9b"
           "31m",
           "c1 \\xC2\\x9B31m"); /* U+009B, CSI as a character */
    expect("raw \x9b"
           "31m",
           "raw \\x9B31m");                             /* CSI as a lone byte */
    expect("\xc0\xaf", "\\xC0\\xAF");                   /* overlong '/' */
    expect("\xed\xa0\x80", "\\xED\\xA0\\x80");          /* a surrogate */
    expect("\xf4\x90\x80\x80", "\\xF4\\x90\\x80\\x80"); /* above U+10FFFF */
    expect("cut \xe2\x9c", "cut \\xE2\\x9C");           /* a sequence cut short */
    expect("\xc2\xa0nbsp", "\xc2\xa0nbsp");             /* U+00A0 is text */
}

static void cutting_keeps_escapes_and_characters_whole(void **state)
{
    char buf[8];

    (void)state;
    /* "ab" + "\x1B" (4 bytes) = 6 fits in 8; the next escape would not */
    assert_int_equal(term_text_escape("ab\x1b\x1b", buf, sizeof(buf)), 10);
    assert_string_equal(buf, "ab\\x1B");
    /* a 4-byte character that does not fit is left out whole */
    assert_int_equal(term_text_escape("abcd\xf0\x9f\x94\xa5", buf, sizeof(buf)), 8);
    assert_string_equal(buf, "abcd");
    assert_int_equal(term_text_escape("anything", buf, 1), 8);
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(controls_are_escaped_text_passes),
        cmocka_unit_test(cutting_keeps_escapes_and_characters_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
