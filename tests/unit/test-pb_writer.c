/* test-pb_writer.c - unit tests of controller/util/pb_writer.c: varints of every size, tags,
 * nested messages whose length needs 1, 2 or 3 bytes (back-patched), the frame-prefix pattern of
 * the gRPC transport, bad field numbers, and out-of-memory reported once at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/pb_reader.h"
#include "hostpatrol/pb_writer.h"

static void varints_are_little_endian_base_128(void **state)
{
    static const struct {
        uint64_t v;
        const char *bytes;
        size_t n;
    } cases[] = {
        {0, "\x08\x00", 2},
        {1, "\x08\x01", 2},
        {127, "\x08\x7f", 2},
        {128, "\x08\x80\x01", 3},
        {300, "\x08\xac\x02", 3},
        {UINT64_MAX, "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11}, /* int64 -1 */
        {(uint64_t)INT64_MIN, "\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 11},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pb_writer w;

        pb_writer_init(&w);
        pb_writer_varint(&w, 1, cases[i].v);
        assert_int_equal(pb_writer_error(&w), HP_OK);
        assert_int_equal(pb_writer_len(&w), cases[i].n);
        assert_memory_equal(pb_writer_data(&w), cases[i].bytes, cases[i].n);
        assert_int_equal(pb_varint_size(cases[i].v), cases[i].n - 1);
        pb_writer_release(&w);
    }
}

static void tags_carry_field_number_and_wire_type(void **state)
{
    struct pb_writer w;

    (void)state;
    pb_writer_init(&w);
    pb_writer_bytes(&w, 64, "ab", 2);      /* Compare.range_end: a 2-byte tag */
    pb_writer_varint(&w, PB_FIELD_MAX, 1); /* the largest field number: 5 bytes */
    pb_writer_bytes(&w, 2, NULL, 0);       /* empty bytes are written when asked */
    assert_int_equal(pb_writer_error(&w), HP_OK);
    assert_int_equal(pb_writer_len(&w), 5 + 6 + 2);
    assert_memory_equal(pb_writer_data(&w),
                        "\x82\x04\x02"
                        "ab"
                        "\xf8\xff\xff\xff\x0f\x01"
                        "\x12\x00",
                        pb_writer_len(&w));
    pb_writer_release(&w);
}

static void bad_field_numbers_fail_the_writer(void **state)
{
    struct pb_writer w;

    (void)state;
    pb_writer_init(&w);
    pb_writer_varint(&w, 0, 1);
    assert_int_equal(pb_writer_error(&w), HP_ERR_NOMEM);
    pb_writer_release(&w);
    pb_writer_init(&w);
    pb_writer_varint(&w, PB_FIELD_MAX + 1, 1);
    assert_int_equal(pb_writer_error(&w), HP_ERR_NOMEM);
    pb_writer_release(&w);
    pb_writer_init(&w);
    pb_writer_end(&w, 5); /* not a mark */
    assert_true(w.failed);
    pb_writer_release(&w);
}

/* nested_of: a message with field 1 holding `body` bytes of 'x' inside field 3; the length of
 * field 3 is back-patched by pb_writer_end */
static void nested_of(size_t body, size_t len_bytes)
{
    struct pb_writer w;
    struct pb_reader r, sub;
    struct pb_field f;
    unsigned char *inner;
    size_t mark;

    pb_writer_init(&w);
    pb_writer_varint(&w, 1, 7);
    mark = pb_writer_begin(&w, 3);
    inner = pb_writer_bytes_space(&w, 1, body);
    assert_non_null(inner);
    memset(inner, 'x', body);
    pb_writer_end(&w, mark);
    pb_writer_varint(&w, 4, 9);
    assert_int_equal(pb_writer_error(&w), HP_OK);
    /* 2 (field 1) + 1 (tag 3) + len_bytes + inner (tag, its length, body) + 2 (field 4) */
    assert_int_equal(pb_writer_len(&w), 2 + 1 + len_bytes + 1 + pb_varint_size(body) + body + 2);

    pb_reader_init(&r, pb_writer_data(&w), pb_writer_len(&w), "T");
    assert_int_equal(pb_reader_next(&r, &f, NULL), HP_OK);
    assert_int_equal(f.num, 1);
    assert_int_equal(f.value, 7);
    assert_int_equal(pb_reader_next(&r, &f, NULL), HP_OK);
    assert_int_equal(f.num, 3);
    assert_int_equal(f.len, 1 + pb_varint_size(body) + body);
    assert_int_equal(pb_reader_sub(&r, &f, "Inner", &sub, NULL), HP_OK);
    assert_int_equal(pb_reader_next(&sub, &f, NULL), HP_OK);
    assert_int_equal(f.num, 1);
    assert_int_equal(f.len, body);
    assert_int_equal(pb_reader_next(&sub, &f, NULL), HP_OK);
    assert_int_equal(f.num, 0);
    assert_int_equal(pb_reader_next(&r, &f, NULL), HP_OK);
    assert_int_equal(f.num, 4);
    assert_int_equal(f.value, 9);
    assert_int_equal(pb_reader_next(&r, &f, NULL), HP_OK);
    assert_int_equal(f.num, 0);
    pb_writer_release(&w);
}

static void nested_lengths_are_back_patched(void **state)
{
    (void)state;
    nested_of(0, 1);
    nested_of(100, 1);     /* 1 + 1 + 100 = 102 < 128: one length byte */
    nested_of(200, 2);     /* two */
    nested_of(20000, 3);   /* three */
    nested_of(2100000, 4); /* four */
}

static void empty_nested_message_is_tag_and_zero(void **state)
{
    struct pb_writer w;
    size_t outer, inner;

    (void)state;
    pb_writer_init(&w);
    outer = pb_writer_begin(&w, 3);
    inner = pb_writer_begin(&w, 4);
    pb_writer_end(&w, inner);
    pb_writer_end(&w, outer);
    assert_int_equal(pb_writer_len(&w), 4);
    assert_memory_equal(pb_writer_data(&w), "\x1a\x02\x22\x00", 4);
    pb_writer_release(&w);
}

static void frame_prefix_then_message_then_take(void **state)
{
    struct pb_writer w;
    unsigned char *out;
    size_t len;

    (void)state;
    pb_writer_init(&w);
    pb_writer_raw(&w, "\0\0\0\0\0", 5);
    pb_writer_bytes(&w, 1, "/k", 2);
    assert_int_equal(pb_writer_take(&w, &out, &len), HP_OK);
    assert_null(w.out.data); /* the writer keeps nothing */
    assert_int_equal(pb_writer_len(&w), 0);
    assert_int_equal(len, 9);
    assert_memory_equal(out, "\0\0\0\0\0\x0a\x02/k", 9);
    hp_free(out);
}

static void out_of_memory_is_reported_once_at_the_end(void **state)
{
    struct pb_writer w;
    unsigned char *out = (unsigned char *)1;
    size_t len = 1, mark;

    (void)state;
    pb_writer_init(&w);
    hp_alloc_fail_after(0);
    pb_writer_varint(&w, 1, 1);
    mark = pb_writer_begin(&w, 2);
    pb_writer_bytes(&w, 1, "abc", 3);
    assert_null(pb_writer_bytes_space(&w, 1, 3));
    pb_writer_end(&w, mark);
    hp_alloc_fail_reset();
    pb_writer_varint(&w, 1, 1); /* still a no-op: the failure sticks */
    assert_int_equal(pb_writer_len(&w), 0);
    assert_int_equal(pb_writer_error(&w), HP_ERR_NOMEM);
    assert_int_equal(pb_writer_take(&w, &out, &len), HP_ERR_NOMEM);
    assert_null(out);
    assert_int_equal(len, 0);
    pb_writer_release(&w);
    pb_writer_release(NULL);
}

static void growth_failing_midway_keeps_nothing_half_written(void **state)
{
    struct pb_writer w;
    char big[1000];

    (void)state;
    memset(big, 'b', sizeof(big));
    pb_writer_init(&w);
    pb_writer_bytes(&w, 1, big, 10); /* the first block (256 bytes) */
    hp_alloc_fail_after(0);
    pb_writer_bytes(&w, 2, big, sizeof(big)); /* needs to grow: fails */
    hp_alloc_fail_reset();
    assert_int_equal(pb_writer_error(&w), HP_ERR_NOMEM);
    pb_writer_release(&w);
}

/* a reserve is only a hint: the bytes are the same with or without it, one allocation holds a
 * message written after it, and a reserve that fails leaves the writer usable */
static void reserve_allocates_once_and_never_fails_the_writer(void **state)
{
    struct pb_writer a, b;
    char big[3000];

    (void)state;
    memset(big, 'v', sizeof(big));
    pb_writer_init(&a);
    pb_writer_init(&b);
    pb_writer_reserve(&b, 40 * (sizeof(big) + 16));
    hp_alloc_fail_after(0); /* every write below must fit the reserved block */
    for (int i = 0; i < 40; i++)
        pb_writer_bytes(&b, 2, big, sizeof(big));
    hp_alloc_fail_reset();
    for (int i = 0; i < 40; i++)
        pb_writer_bytes(&a, 2, big, sizeof(big));
    assert_int_equal(pb_writer_error(&b), HP_OK);
    assert_int_equal(pb_writer_len(&a), pb_writer_len(&b));
    assert_memory_equal(pb_writer_data(&a), pb_writer_data(&b), pb_writer_len(&a));
    pb_writer_release(&b);

    pb_writer_init(&b);
    pb_writer_reserve(&b, (size_t)PB_MESSAGE_MAX + 1); /* above the limit: nothing */
    hp_alloc_fail_after(0);
    pb_writer_reserve(&b, 100); /* no memory: nothing */
    hp_alloc_fail_reset();
    pb_writer_bytes(&b, 1, "abc", 3);
    assert_int_equal(pb_writer_error(&b), HP_OK);
    assert_int_equal(pb_writer_len(&b), 5);
    pb_writer_release(&a);
    pb_writer_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(varints_are_little_endian_base_128),
        cmocka_unit_test(tags_carry_field_number_and_wire_type),
        cmocka_unit_test(bad_field_numbers_fail_the_writer),
        cmocka_unit_test(nested_lengths_are_back_patched),
        cmocka_unit_test(empty_nested_message_is_tag_and_zero),
        cmocka_unit_test(frame_prefix_then_message_then_take),
        cmocka_unit_test(out_of_memory_is_reported_once_at_the_end),
        cmocka_unit_test(growth_failing_midway_keeps_nothing_half_written),
        cmocka_unit_test(reserve_allocates_once_and_never_fails_the_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
