/* test-resolve_plan.c - unit tests of controller/batch/resolve_plan.c: the resolver's budget
 * growth, its stated bound, and which timed-out batches share one undo txn */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "batch/resolve_plan.h"

static void budget_doubles_from_what_was_used_up_to_the_cap(void **state)
{
    (void)state;
    assert_int_equal(resolve_budget_grow(5000, 5000, 30000), 10000);
    assert_int_equal(resolve_budget_grow(10000, 10000, 30000), 20000);
    assert_int_equal(resolve_budget_grow(20000, 20000, 30000), 30000);
    assert_int_equal(resolve_budget_grow(30000, 30000, 30000), 30000);
    /* eight resolvers time out together on the 5 s budget: it doubles once, not eight times */
    {
        int64_t b = 5000;

        for (int i = 0; i < 8; i++)
            b = resolve_budget_grow(b, 5000, 30000);
        assert_int_equal(b, 10000);
    }
    /* a late report of an older, smaller budget never shrinks it */
    assert_int_equal(resolve_budget_grow(20000, 5000, 30000), 20000);
    /* no overflow */
    assert_int_equal(resolve_budget_grow(1, INT64_MAX, INT64_MAX), INT64_MAX);
}

static void attempts_until_the_budget_covers_a_round_trip(void **state)
{
    (void)state;
    assert_int_equal(resolve_attempts_to_reach(5000, 30000, 1), 0);
    assert_int_equal(resolve_attempts_to_reach(5000, 30000, 5000), 0);
    assert_int_equal(resolve_attempts_to_reach(5000, 30000, 5001), 1);
    assert_int_equal(resolve_attempts_to_reach(5000, 30000, 10000), 1);
    assert_int_equal(resolve_attempts_to_reach(5000, 30000, 25000), 3);
    assert_int_equal(resolve_attempts_to_reach(5000, 30000, 30000), 3);
    assert_int_equal(resolve_attempts_to_reach(5000, 30000, 30001), -1);
}

static void the_stated_bound(void **state)
{
    (void)state;
    /* batch_queue.h R4b: 8 T for T <= 5 s, 8 T + 7 s for T <= 10 s (defaults) */
    assert_int_equal(resolve_bound_ms(5000, 30000, 2000, 3000), 24000);
    assert_int_equal(resolve_bound_ms(5000, 30000, 2000, 5000), 40000);
    assert_int_equal(resolve_bound_ms(5000, 30000, 2000, 6500), 52000 + 7000);
    /* 20 s answers: attempts of 5, 10 s time out first (each with a back-off) */
    assert_int_equal(resolve_bound_ms(5000, 30000, 2000, 20000),
                     160000 + 5000 + 2000 + 10000 + 2000);
    assert_int_equal(resolve_bound_ms(5000, 30000, 2000, 30001), -1);
}

#define W(k)                                                                                       \
    {                                                                                              \
        .key = k, .key_len = sizeof(k) - 1, .value = "v", .value_len = 1                           \
    }

static void groups_are_key_disjoint_and_bounded(void **state)
{
    static const struct batch_write a = W("a"), b = W("b"), c = W("c"), a2 = W("a"), d = W("d");
    const struct batch_write *b0[] = {&a, &b}, *b1[] = {&c}, *b2[] = {&a2}, *b3[] = {&d, &c},
                             *b4[] = {&d};
    struct resolve_keys k[] = {{b0, 2}, {b1, 1}, {b2, 1}, {b3, 2}, {b4, 1}};
    unsigned char chosen[5];

    (void)state;
    /* b2 writes "a" like b0, b3 writes "c" like b1: both wait for another txn */
    assert_int_equal(resolve_pick_disjoint(k, 5, 128, 4096, chosen), 3);
    assert_memory_equal(chosen, ((unsigned char[]){1, 1, 0, 0, 1}), 5);
    /* at most 2 batches in a group */
    assert_int_equal(resolve_pick_disjoint(k, 5, 2, 4096, chosen), 2);
    assert_memory_equal(chosen, ((unsigned char[]){1, 1, 0, 0, 0}), 5);
    /* at most 3 keys: b0 (2) + b1 (1); b4 would make 4 */
    assert_int_equal(resolve_pick_disjoint(k, 5, 128, 3, chosen), 2);
    assert_memory_equal(chosen, ((unsigned char[]){1, 1, 0, 0, 0}), 5);
    /* the first is always taken, even above the key limit: a group always makes progress */
    assert_int_equal(resolve_pick_disjoint(k, 5, 128, 1, chosen), 1);
    assert_int_equal(chosen[0], 1);
    /* the rest, in a later round: now b2 and b3 can go together */
    assert_int_equal(resolve_pick_disjoint(&k[2], 2, 128, 4096, chosen), 2);
    assert_int_equal(resolve_pick_disjoint(k, 0, 128, 4096, chosen), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(budget_doubles_from_what_was_used_up_to_the_cap),
        cmocka_unit_test(attempts_until_the_budget_covers_a_round_trip),
        cmocka_unit_test(the_stated_bound),
        cmocka_unit_test(groups_are_key_disjoint_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
