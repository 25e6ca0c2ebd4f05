/* test-buf.c - unit tests of controller/util/buf.c: appends of every kind and their growth, the
 * text always NUL-terminated, the hard limit (HP_ERR_FULL, nothing kept past it, no allocation
 * beyond it), sizes that would overflow, a failed allocation leaving the bytes as they were and
 * sticking until reset, detach, consume and truncate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/buf.h"

static void an_empty_buffer_is_an_empty_string(void **state)
{
    struct hp_buf b;
    size_t len = 1;
    char *s;

    (void)state;
    hp_buf_init(&b, 0);
    assert_non_null(hp_buf_data(&b));
    assert_string_equal(hp_buf_data(&b), "");
    assert_int_equal(hp_buf_len(&b), 0);
    assert_int_equal(hp_buf_error(&b), HP_OK);
    assert_null(b.data); /* nothing allocated yet */
    s = hp_buf_detach(&b, &len);
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    hp_free(s);
    hp_buf_release(&b);
    hp_buf_release(NULL);
}

static void appends_of_every_kind_make_one_text(void **state)
{
    struct hp_buf b;
    char *at;

    (void)state;
    hp_buf_init(&b, 0);
    assert_int_equal(hp_buf_addstr(&b, "key"), HP_OK);
    assert_int_equal(hp_buf_addch(&b, '='), HP_OK);
    assert_int_equal(hp_buf_addf(&b, "%d/%s", 42, "x"), HP_OK);
    assert_int_equal(hp_buf_add(&b, "\0z", 2), HP_OK); /* a NUL of its own is kept */
    assert_int_equal(hp_buf_add(&b, NULL, 0), HP_OK);
    assert_int_equal(hp_buf_add_space(&b, 3, &at), HP_OK);
    memcpy(at, "abc", 3);
    assert_int_equal(hp_buf_len(&b), 13);
    assert_memory_equal(hp_buf_data(&b), "key=42/x\0zabc", 14); /* and the NUL after */
    hp_buf_release(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void growth_keeps_every_byte(void **state)
{
    static char want[200000];
    struct hp_buf b;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(want); i++)
        want[i] = (char)('a' + i % 26);
    hp_buf_init(&b, 0);
    for (i = 0; i < sizeof(want); i++)
        assert_int_equal(hp_buf_addch(&b, want[i]), HP_OK);
    assert_int_equal(hp_buf_len(&b), sizeof(want));
    assert_memory_equal(hp_buf_data(&b), want, sizeof(want));
    assert_int_equal(hp_buf_data(&b)[sizeof(want)], '\0');
    assert_true(b.cap > b.len);
    hp_buf_reset(&b);
    /* formatted text longer than the room left: grown and formatted again */
    assert_int_equal(hp_buf_addf(&b, "%.*s", 150000, want), HP_OK);
    assert_int_equal(hp_buf_addf(&b, "%s", ""), HP_OK);
    assert_int_equal(hp_buf_len(&b), 150000);
    assert_memory_equal(hp_buf_data(&b), want, 150000);
    hp_buf_release(&b);
}

static void reset_keeps_the_allocation(void **state)
{
    struct hp_buf b;
    char *before;

    (void)state;
    hp_buf_init(&b, 0);
    assert_int_equal(hp_buf_addstr(&b, "some text"), HP_OK);
    before = b.data;
    hp_buf_reset(&b);
    assert_int_equal(hp_buf_len(&b), 0);
    assert_string_equal(hp_buf_data(&b), "");
    hp_alloc_fail_after(0); /* no allocation may be needed for what fits */
    assert_int_equal(hp_buf_addstr(&b, "again"), HP_OK);
    hp_alloc_fail_reset();
    assert_ptr_equal(b.data, before);
    assert_string_equal(hp_buf_data(&b), "again");
    hp_buf_release(&b);
}

static void the_limit_is_exact_and_nothing_passes_it(void **state)
{
    struct hp_buf b;
    char *at = (char *)1;

    (void)state;
    hp_buf_init(&b, 10);
    assert_int_equal(hp_buf_add(&b, "0123456789", 10), HP_OK); /* exactly max */
    assert_true(b.cap <= 11);                                  /* no allocation beyond it */
    assert_int_equal(hp_buf_addch(&b, 'x'), HP_ERR_FULL);
    assert_int_equal(hp_buf_len(&b), 10);
    assert_string_equal(hp_buf_data(&b), "0123456789");
    assert_int_equal(hp_buf_error(&b), HP_ERR_FULL);
    hp_buf_reset(&b);
    assert_int_equal(hp_buf_addstr(&b, "0123"), HP_OK);
    assert_int_equal(hp_buf_add_space(&b, 7, &at), HP_ERR_FULL);
    assert_null(at);
    assert_string_equal(hp_buf_data(&b), "0123");
    hp_buf_reset(&b);
    /* formatted text past the limit, whether it fits the allocation or not, is not kept */
    assert_int_equal(hp_buf_addstr(&b, "01234"), HP_OK);
    assert_int_equal(hp_buf_addf(&b, "%s", "abcdef"), HP_ERR_FULL);
    assert_int_equal(hp_buf_len(&b), 5);
    assert_string_equal(hp_buf_data(&b), "01234");
    hp_buf_reset(&b);
    assert_int_equal(hp_buf_addf(&b, "%s", "0123456789abcdefghijklmnopqrstuvwxyz"), HP_ERR_FULL);
    assert_int_equal(hp_buf_len(&b), 0);
    assert_string_equal(hp_buf_data(&b), "");
    hp_buf_release(&b);
    assert_int_equal(b.max, 10); /* release keeps the limit */
}

static void sizes_that_would_overflow_are_refused_without_allocating(void **state)
{
    struct hp_buf b;
    long before = hp_alloc_failures();

    (void)state;
    hp_buf_init(&b, 0);
    assert_int_equal(hp_buf_reserve(&b, SIZE_MAX), HP_ERR_FULL);
    assert_null(b.data);
    hp_buf_reset(&b);
    assert_int_equal(hp_buf_addstr(&b, "ab"), HP_OK);
    assert_int_equal(hp_buf_reserve(&b, SIZE_MAX - 2), HP_ERR_FULL);
    assert_string_equal(hp_buf_data(&b), "ab");
    assert_int_equal(hp_alloc_failures(), before);
    hp_buf_reset(&b);
    b.max = 5; /* a limit: the sum is checked against it without wrapping */
    assert_int_equal(hp_buf_add(&b, "abc", 3), HP_OK);
    assert_int_equal(hp_buf_reserve(&b, SIZE_MAX - 1), HP_ERR_FULL);
    assert_string_equal(hp_buf_data(&b), "abc");
    hp_buf_release(&b);
}

static void a_failed_allocation_changes_nothing_and_sticks(void **state)
{
    static const char big[1000];
    struct hp_buf b;
    size_t len = 7;
    char *at = (char *)1;

    (void)state;
    hp_buf_init(&b, 0);
    assert_int_equal(hp_buf_addstr(&b, "kept"), HP_OK);
    hp_alloc_fail_after(0);
    assert_int_equal(hp_buf_add(&b, big, sizeof(big)), HP_ERR_NOMEM); /* past the first block */
    hp_alloc_fail_reset();
    assert_string_equal(hp_buf_data(&b), "kept");
    assert_int_equal(hp_buf_len(&b), 4);
    /* sticky: nothing is added after it, even what would fit or could be allocated now */
    assert_int_equal(hp_buf_addch(&b, '!'), HP_ERR_NOMEM);
    assert_int_equal(hp_buf_addf(&b, "%d", 1), HP_ERR_NOMEM);
    assert_int_equal(hp_buf_add_space(&b, 1, &at), HP_ERR_NOMEM);
    assert_null(at);
    assert_string_equal(hp_buf_data(&b), "kept");
    assert_int_equal(hp_buf_error(&b), HP_ERR_NOMEM);
    /* detach hands nothing over and frees the bytes */
    assert_null(hp_buf_detach(&b, &len));
    assert_int_equal(len, 0);
    assert_null(b.data);
    assert_int_equal(hp_buf_error(&b), HP_OK);
    assert_int_equal(hp_buf_addstr(&b, "fresh"), HP_OK);
    hp_buf_release(&b);
}

static void a_failed_formatted_growth_keeps_the_text_before_it(void **state)
{
    struct hp_buf b;

    (void)state;
    hp_buf_init(&b, 0);
    assert_int_equal(hp_buf_addstr(&b, "head"), HP_OK);
    hp_alloc_fail_after(0);
    assert_int_equal(hp_buf_addf(&b, "%0200d", 7), HP_ERR_NOMEM);
    hp_alloc_fail_reset();
    assert_int_equal(hp_buf_len(&b), 4);
    assert_string_equal(hp_buf_data(&b), "head");
    hp_buf_reset(&b); /* clears the error */
    assert_int_equal(hp_buf_addf(&b, "%s-%d", "ok", 1), HP_OK);
    assert_string_equal(hp_buf_data(&b), "ok-1");
    hp_buf_release(&b);
}

/* every allocation of a build failing in turn: the text is whole or the error is NOMEM, and
 * nothing leaks (ASan) */
static void every_allocation_may_fail(void **state)
{
    long n;

    (void)state;
    for (n = 0; n < 64; n++) {
        struct hp_buf b;
        size_t len = 0;
        char *s;
        int i;

        hp_buf_init(&b, 0);
        hp_alloc_fail_after(n);
        for (i = 0; i < 500; i++)
            (void)hp_buf_addf(&b, "line %d\n", i);
        s = hp_buf_detach(&b, &len);
        hp_alloc_fail_reset();
        if (s) {
            assert_int_equal(len, strlen(s));
            assert_memory_equal(s + len - 9, "line 499\n", 9);
            hp_free(s);
            return;
        }
        assert_int_equal(len, 0);
    }
    fail_msg("the build never succeeded");
}

static void consume_and_truncate(void **state)
{
    struct hp_buf b;
    size_t len;
    char *s;

    (void)state;
    hp_buf_init(&b, 0);
    hp_buf_consume(&b, 3); /* on an empty buffer: nothing */
    hp_buf_truncate(&b, 0);
    assert_int_equal(hp_buf_addstr(&b, "line one\nline two"), HP_OK);
    hp_buf_consume(&b, 9);
    assert_string_equal(hp_buf_data(&b), "line two");
    hp_buf_truncate(&b, 4);
    assert_string_equal(hp_buf_data(&b), "line");
    hp_buf_truncate(&b, 100); /* larger: nothing */
    assert_int_equal(hp_buf_len(&b), 4);
    hp_buf_consume(&b, 100);
    assert_int_equal(hp_buf_len(&b), 0);
    assert_string_equal(hp_buf_data(&b), "");
    assert_int_equal(hp_buf_addstr(&b, "last"), HP_OK);
    s = hp_buf_detach(&b, &len);
    assert_string_equal(s, "last");
    assert_int_equal(len, 4);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    hp_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_empty_buffer_is_an_empty_string),
        cmocka_unit_test(appends_of_every_kind_make_one_text),
        cmocka_unit_test(growth_keeps_every_byte),
        cmocka_unit_test(reset_keeps_the_allocation),
        cmocka_unit_test(the_limit_is_exact_and_nothing_passes_it),
        cmocka_unit_test(sizes_that_would_overflow_are_refused_without_allocating),
        cmocka_unit_test(a_failed_allocation_changes_nothing_and_sticks),
        cmocka_unit_test(a_failed_formatted_growth_keeps_the_text_before_it),
        cmocka_unit_test(every_allocation_may_fail),
        cmocka_unit_test(consume_and_truncate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
