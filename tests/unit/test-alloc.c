/* test-alloc.c - unit tests of controller/util/alloc.c (fault injection included) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "hostpatrol/alloc.h"

static int reset(void **state)
{
    (void)state;
    hp_alloc_fail_reset();
    return 0;
}

static void fail_after_n_fails_exactly_from_the_nth(void **state)
{
    void *a, *b, *c;

    (void)state;
    hp_alloc_fail_after(2);
    a = hp_malloc(8);
    b = hp_calloc(2, 8);
    c = hp_malloc(8);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    assert_null(hp_strdup("x"));
    assert_int_equal(hp_alloc_failures(), 2);
    hp_alloc_fail_reset();
    c = hp_malloc(8);
    assert_non_null(c);
    hp_free(a);
    hp_free(b);
    hp_free(c);
}

static void realloc_failure_keeps_the_old_block(void **state)
{
    char *p = hp_strdup("keep me"), *q;

    (void)state;
    assert_non_null(p);
    hp_alloc_fail_after(0);
    q = hp_realloc(p, 4096);
    assert_null(q);
    hp_alloc_fail_reset();
    assert_string_equal(p, "keep me");
    hp_free(p);
}

static void calloc_overflow_is_refused(void **state)
{
    (void)state;
    assert_null(hp_calloc(SIZE_MAX / 2, 4));
    assert_int_equal(hp_alloc_failures(), 0);
}

static void strndup_copies_at_most_n(void **state)
{
    char *s = hp_strndup("hostpatrol", 4);

    (void)state;
    assert_string_equal(s, "host");
    hp_free(s);
    s = hp_strndup("ab", 10);
    assert_string_equal(s, "ab");
    hp_free(s);
    hp_free(NULL);
}

/* jansson allocates through hp_malloc once installed, so its error paths can be exercised. */
static void jansson_uses_the_wrapper(void **state)
{
    json_t *o;

    (void)state;
    hp_alloc_install();
    hp_alloc_fail_after(0);
    o = json_pack("{s:s}", "k", "v");
    assert_null(o);
    assert_true(hp_alloc_failures() > 0);
    hp_alloc_fail_reset();
    o = json_pack("{s:s}", "k", "v");
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "k")), "v");
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(fail_after_n_fails_exactly_from_the_nth, reset, reset),
        cmocka_unit_test_setup_teardown(realloc_failure_keeps_the_old_block, reset, reset),
        cmocka_unit_test_setup_teardown(calloc_overflow_is_refused, reset, reset),
        cmocka_unit_test_setup_teardown(strndup_copies_at_most_n, reset, reset),
        cmocka_unit_test_setup_teardown(jansson_uses_the_wrapper, reset, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
