/* test-check_verdict.c - unit tests of controller/inspect/check_verdict.c: the worst status
 * wins, reasons are joined, and a cut never splits a UTF-8 character. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/check_verdict.h"

static void worst_status_wins_and_reasons_join(void **state)
{
    struct check_verdict v = {.status = CHECK_OK};

    (void)state;
    check_verdict_add(&v, CHECK_WARN, "leaf expires in %d days", 5);
    check_verdict_add(&v, CHECK_OK, "ignored status, kept text");
    assert_int_equal(v.status, CHECK_WARN);
    check_verdict_add(&v, CHECK_CRIT, "status 503");
    check_verdict_add(&v, CHECK_UNKNOWN, "x");
    assert_int_equal(v.status, CHECK_CRIT); /* CRIT outranks UNKNOWN */
    assert_string_equal(v.reason, "leaf expires in 5 days; ignored status, kept text; status "
                                  "503; x");
}

static void a_long_reason_is_cut_on_a_character_boundary(void **state)
{
    struct check_verdict v = {.status = CHECK_OK};
    char big[CHECK_VERDICT_MAX + 8];
    size_t i;

    (void)state;
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (i = CHECK_VERDICT_MAX - 4; i + 2 < sizeof(big); i += 2)
        memcpy(big + i, "\xc3\xa9", 2); /* é straddling the cut */
    check_verdict_add(&v, CHECK_CRIT, "%s", big);
    assert_int_equal(strlen(v.reason), v.len);
    assert_true(v.len < CHECK_VERDICT_MAX);
    assert_true(((unsigned char)v.reason[v.len - 1] & 0xC0) != 0xC0); /* no dangling lead */
    check_verdict_add(&v, CHECK_CRIT, "more"); /* full: ignored, no overflow */
    assert_int_equal(strlen(v.reason), v.len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(worst_status_wins_and_reasons_join),
        cmocka_unit_test(a_long_reason_is_cut_on_a_character_boundary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
