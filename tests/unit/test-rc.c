/* test-rc.c - unit tests of controller/util/rc.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/rc.h"

static void names_are_distinct_and_known(void **state)
{
    (void)state;
    for (int a = 0; a < HP_RC__COUNT; a++) {
        assert_string_not_equal(hp_rc_name((hp_rc)a), "unknown");
        for (int b = a + 1; b < HP_RC__COUNT; b++)
            assert_string_not_equal(hp_rc_name((hp_rc)a), hp_rc_name((hp_rc)b));
    }
    assert_string_equal(hp_rc_name(HP_OK), "ok");
    assert_string_equal(hp_rc_name(HP_ERR_UNKNOWN_OUTCOME), "unknown_outcome");
}

static void out_of_range_is_unknown(void **state)
{
    (void)state;
    assert_string_equal(hp_rc_name(HP_RC__COUNT), "unknown");
    assert_string_equal(hp_rc_name((hp_rc)-1), "unknown");
}

static void err_set_records_and_returns_rc(void **state)
{
    struct hp_err e;

    (void)state;
    hp_err_clear(&e);
    assert_int_equal(hp_err_set(&e, HP_ERR_TIMEOUT, "deadline %d ms passed", 250), HP_ERR_TIMEOUT);
    assert_int_equal(e.rc, HP_ERR_TIMEOUT);
    assert_string_equal(e.msg, "deadline 250 ms passed");
    assert_string_equal(e.field, "");
}

static void err_field_names_the_field(void **state)
{
    struct hp_err e = {0};

    (void)state;
    assert_int_equal(
        hp_err_field(&e, HP_ERR_INVALID, "spec.interval", "'%s' is not a duration", "5x"),
        HP_ERR_INVALID);
    assert_string_equal(e.field, "spec.interval");
    assert_string_equal(e.msg, "'5x' is not a duration");
    /* a later hp_err_set keeps the field */
    hp_err_set(&e, HP_ERR_INVALID, "again");
    assert_string_equal(e.field, "spec.interval");
}

static void long_message_is_truncated_not_overflowed(void **state)
{
    struct hp_err e = {0};
    char big[2 * HP_ERR_MSG_MAX];

    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    hp_err_set(&e, HP_ERR_PROTOCOL, "%s", big);
    assert_int_equal(strlen(e.msg), HP_ERR_MSG_MAX - 1);
    hp_err_field(&e, HP_ERR_INVALID, big, "m");
    assert_int_equal(strlen(e.field), HP_ERR_FIELD_MAX - 1);
}

static void null_err_is_allowed(void **state)
{
    (void)state;
    hp_err_clear(NULL);
    assert_int_equal(hp_err_set(NULL, HP_ERR_IO, "x"), HP_ERR_IO);
    assert_int_equal(hp_err_field(NULL, HP_ERR_INVALID, "f", "x"), HP_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_are_distinct_and_known),
        cmocka_unit_test(out_of_range_is_unknown),
        cmocka_unit_test(err_set_records_and_returns_rc),
        cmocka_unit_test(err_field_names_the_field),
        cmocka_unit_test(long_message_is_truncated_not_overflowed),
        cmocka_unit_test(null_err_is_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
