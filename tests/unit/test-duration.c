/* test-duration.c - unit tests of controller/util/duration.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/duration.h"

static void good_durations(void **state)
{
    static const struct {
        const char *s;
        int64_t ms;
    } cases[] = {{"30s", 30000},    {"250ms", 250}, {"1h30m", 5400000}, {"1.5s", 1500},
                 {"5m", 300000},    {"0s", 0},      {"2h", 7200000},    {"1500us", 1},
                 {"1m0.5s", 60500}, {"100ns", 0},   {".5s", 500}};
    struct hp_err err = {0};
    int64_t ms;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(hp_duration_parse(cases[i].s, "d", &ms, &err), HP_OK);
        assert_int_equal(ms, cases[i].ms);
    }
}

static void bad_durations_name_the_field(void **state)
{
    static const char *const bad[] = {
        "", "30", "s", "5x", "-5s", "5 s", "1h 2m", "99999999999999999999h", "1.s5"};
    struct hp_err err = {0};
    int64_t ms;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hp_err_clear(&err);
        if (hp_duration_parse(bad[i], "--deadline", &ms, &err) != HP_ERR_INVALID)
            fail_msg("'%s' was accepted", bad[i]);
        assert_string_equal(err.field, "--deadline");
        assert_non_null(strstr(err.msg, "--deadline"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_durations),
        cmocka_unit_test(bad_durations_name_the_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
