/* test-probe_budget.c - unit tests of controller/inspect/probe_budget.c: units are taken only
 * when free, come back when given, and parked units come back only after their time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "hostpatrol/probe_budget.h"

static void take_and_give(void **state)
{
    struct probe_budget *b = NULL;
    struct probe_budget_stats st;

    (void)state;
    assert_int_equal(probe_budget_new(0, &b), HP_ERR_INVALID);
    assert_int_equal(probe_budget_new(4, &b), HP_OK);
    assert_int_equal(probe_budget_take(b, 3), 3);
    assert_int_equal(probe_budget_take(b, 2), 0); /* only 1 free */
    assert_int_equal(probe_budget_take(b, 1), 1);
    assert_int_equal(probe_budget_take(b, 100), 0);
    probe_budget_give(b, 3);
    assert_int_equal(probe_budget_take(b, 100), 0); /* capped at the limit, 4: 3 free */
    probe_budget_give(b, 1);
    assert_int_equal(probe_budget_take(b, 100), 4); /* a request above the limit takes all */
    probe_budget_give(b, 4);
    probe_budget_stats(b, &st);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.limit, 4);
    assert_int_equal(st.refused, 3);
    assert_int_equal(probe_budget_take(NULL, 7), 7); /* no budget: no cap */
    probe_budget_give(NULL, 7);
    probe_budget_free(b);
    probe_budget_free(NULL);
}

/* Parked units stay taken until their time, then come back by themselves. */
static void parked_units_come_back_after_their_time(void **state)
{
    struct probe_budget *b = NULL;
    struct probe_budget_stats st;
    struct timespec pause = {0, 150 * 1000000};

    (void)state;
    assert_int_equal(probe_budget_new(2, &b), HP_OK);
    assert_int_equal(probe_budget_take(b, 2), 2);
    probe_budget_park(b, 2, 50);
    probe_budget_stats(b, &st);
    assert_int_equal(st.parked, 2);
    assert_int_equal(probe_budget_take(b, 1), 0);
    nanosleep(&pause, NULL);
    assert_int_equal(probe_budget_take(b, 2), 2);
    probe_budget_stats(b, &st);
    assert_int_equal(st.parked, 0);
    probe_budget_park(b, 2, 60000); /* freed with the budget, not leaked */
    probe_budget_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(take_and_give),
        cmocka_unit_test(parked_units_come_back_after_their_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
