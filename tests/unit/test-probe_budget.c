/* test-probe_budget.c - unit tests of controller/inspect/probe_budget.c: units are taken only
 * when free, come back when given, and parked units come back only after their time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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
    assert_int_equal(probe_budget_new(0, 0, &b), HP_ERR_INVALID);
    assert_int_equal(probe_budget_new(4, 0, &b), HP_OK);
    assert_int_equal(probe_budget_take(b, "a", 3, NULL), 3);
    assert_int_equal(probe_budget_take(b, "a", 2, NULL), 0); /* only 1 free */
    assert_int_equal(probe_budget_take(b, "a", 1, NULL), 1);
    assert_int_equal(probe_budget_take(b, "a", 100, NULL), 0);
    probe_budget_give(b, "a", 3);
    assert_int_equal(probe_budget_take(b, "a", 100, NULL), 0); /* capped at the limit, 4: 3 free */
    probe_budget_give(b, "a", 1);
    assert_int_equal(probe_budget_take(b, "a", 100, NULL),
                     4); /* a request above the limit takes all */
    probe_budget_give(b, "a", 4);
    probe_budget_stats(b, &st);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.limit, 4);
    assert_int_equal(st.refused, 3);
    assert_int_equal(probe_budget_take(NULL, "a", 7, NULL), 7); /* no budget: no cap */
    probe_budget_give(NULL, "a", 7);
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
    assert_int_equal(probe_budget_new(2, 0, &b), HP_OK);
    assert_int_equal(probe_budget_take(b, "a", 2, NULL), 2);
    probe_budget_park(b, "a", 2, 50);
    probe_budget_stats(b, &st);
    assert_int_equal(st.parked, 2);
    assert_int_equal(probe_budget_take(b, "a", 1, NULL), 0);
    nanosleep(&pause, NULL);
    assert_int_equal(probe_budget_take(b, "a", 2, NULL), 2);
    probe_budget_stats(b, &st);
    assert_int_equal(st.parked, 0);
    probe_budget_park(b, "a", 2, 60000); /* freed with the budget, not leaked */
    probe_budget_free(b);
}

/* One owner holds at most its share; the others still find units. */
static void an_owner_holds_at_most_its_share(void **state)
{
    struct probe_budget *b = NULL;
    struct probe_budget_stats st;
    bool full = false;

    (void)state;
    assert_int_equal(probe_budget_new(10, 4, &b), HP_OK);
    assert_int_equal(probe_budget_take(b, "tenant", 3, &full), 3);
    assert_int_equal(probe_budget_take(b, "tenant", 2, &full), 0);
    assert_true(full); /* its share, not the budget, was the limit */
    assert_int_equal(probe_budget_take(b, "tenant", 1, &full), 1);
    assert_int_equal(probe_budget_take(b, "ops", 4, &full), 4);
    assert_false(full);
    assert_int_equal(probe_budget_take(b, "other", 3, &full), 0); /* only 2 left in all */
    assert_false(full);
    assert_int_equal(probe_budget_take(b, "other", 2, &full), 2);
    probe_budget_give(b, "other", 2);
    assert_int_equal(probe_budget_take(b, "big", 100, &full), 0); /* 100 -> its share, 4 */
    probe_budget_stats(b, &st);
    assert_int_equal(st.in_use, 8);
    assert_int_equal(st.owners, 2);
    assert_int_equal(st.owner_limit, 4);
    probe_budget_give(b, "tenant", 4);
    probe_budget_give(b, "ops", 4);
    probe_budget_stats(b, &st);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.owners, 0);
    probe_budget_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(take_and_give),
        cmocka_unit_test(parked_units_come_back_after_their_time),
        cmocka_unit_test(an_owner_holds_at_most_its_share),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
