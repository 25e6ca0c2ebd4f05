/* test-schedule.c - unit tests of controller/reconcile/schedule.c: the memo of runs (one entry
 * per key, dropped with its late outcomes), the next run one interval plus at most 10% jitter
 * later, the PRNG, and RFC 3339 times both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/alloc.h"
#include "reconcile/schedule.h"

static int lates_freed;

/* a late outcome list stand-in: schedule only hands it back to free_late */
static void free_late(struct late_outcome *l)
{
    lates_freed++;
    hp_free(l);
}

static void one_memo_per_key(void **state)
{
    struct schedule s;
    struct memo *a, *b;

    (void)state;
    schedule_init(&s, 1, free_late);
    assert_null(schedule_memo_get(&s, "ns/a", false));
    a = schedule_memo_get(&s, "ns/a", true);
    assert_non_null(a);
    assert_string_equal(a->key, "ns/a");
    assert_ptr_equal(schedule_memo_get(&s, "ns/a", true), a);
    b = schedule_memo_get(&s, "ns/b", true);
    assert_ptr_not_equal(a, b);
    schedule_memo_drop(&s, "ns/a");
    assert_null(schedule_memo_get(&s, "ns/a", false));
    assert_ptr_equal(schedule_memo_get(&s, "ns/b", false), b);
    schedule_memo_drop(&s, "ns/unknown"); /* a no-op */
    schedule_release(&s);
    schedule_release(NULL);
}

static void late_outcomes_are_freed_with_their_memo(void **state)
{
    struct schedule s;
    struct memo *m;

    (void)state;
    lates_freed = 0;
    schedule_init(&s, 7, free_late);
    m = schedule_memo_get(&s, "ns/a", true);
    m->late = hp_malloc(16);
    m->pending = json_object();
    m = schedule_memo_get(&s, "ns/b", true);
    m->late = hp_malloc(16);
    schedule_memo_drop(&s, "ns/a");
    assert_int_equal(lates_freed, 1);
    schedule_release(&s);
    assert_int_equal(lates_freed, 2);
}

static void the_next_run_is_one_interval_plus_jitter_later(void **state)
{
    struct schedule s;
    struct memo *m;
    int64_t due, lo = INT64_MAX, hi = 0;
    int i;

    (void)state;
    schedule_init(&s, 12345, NULL);
    for (i = 0; i < 200; i++) {
        due = schedule_ran(&s, "ns/a", 1000, 4, i % 2 ? NULL : "x", 60000);
        assert_true(due >= 1000 + 60000);
        assert_true(due <= 1000 + 60000 + 6000);
        lo = due < lo ? due : lo;
        hi = due > hi ? due : hi;
    }
    assert_true(hi > lo); /* jitter: not the same time each run */
    m = schedule_memo_get(&s, "ns/a", false);
    assert_int_equal(m->last_run_ms, 1000);
    assert_int_equal(m->generation, 4);
    assert_int_equal(m->next_run_ms, due);
    assert_null(m->run_now); /* the last run had none */
    due = schedule_ran(&s, "ns/a", 2000, 5, "y", 5);
    assert_true(due == 2005); /* 5 / 10 + 1 = 1: no jitter left */
    assert_string_equal(m->run_now, "y");
    schedule_release(&s);
}

static void the_prng_moves_and_a_zero_seed_is_replaced(void **state)
{
    struct schedule s;
    uint64_t a, b;

    (void)state;
    schedule_init(&s, 0, NULL);
    assert_int_not_equal(s.seed, 0);
    a = schedule_next_random(&s);
    b = schedule_next_random(&s);
    assert_int_not_equal(a, 0);
    assert_int_not_equal(a, b);
    schedule_release(&s);
}

static void rfc3339_both_ways(void **state)
{
    char t[32];

    (void)state;
    schedule_rfc3339(0, t);
    assert_string_equal(t, "1970-01-01T00:00:00Z");
    schedule_rfc3339(1700000000999LL, t); /* ms are cut: seconds precision */
    assert_string_equal(t, "2023-11-14T22:13:20Z");
    assert_int_equal(schedule_parse_rfc3339(t), 1700000000000LL);
    assert_int_equal(schedule_parse_rfc3339(NULL), 0);
    assert_int_equal(schedule_parse_rfc3339("yesterday"), 0);
    assert_true(schedule_wall_ms() > 1700000000000LL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_memo_per_key),
        cmocka_unit_test(late_outcomes_are_freed_with_their_memo),
        cmocka_unit_test(the_next_run_is_one_interval_plus_jitter_later),
        cmocka_unit_test(the_prng_moves_and_a_zero_seed_is_replaced),
        cmocka_unit_test(rfc3339_both_ways),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
