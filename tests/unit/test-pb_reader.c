/* test-pb_reader.c - unit tests of controller/util/pb_reader.c: every wire type read and
 * skipped; malformed input (truncated varints and lengths, varints over 10 bytes or 64 bits,
 * field 0, groups, wire types 6/7, fixed widths past the end, nesting too deep, a known field of
 * the wrong wire type) refused with HP_ERR_PROTOCOL and a message naming message and offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/pb_reader.h"

static void every_wire_type_is_read(void **state)
{
    static const unsigned char msg[] = {
        0x08, 0x96, 0x01,                         /* 1: varint 150 */
        0x11, 1,    2,    3,    4,    5, 6, 7, 8, /* 2: fixed64 */
        0x1a, 0x03, 'a',  'b',  'c',              /* 3: bytes */
        0x25, 0xff, 0xff, 0xff, 0xff,             /* 4: fixed32 */
        0x80, 0x01, 0x00,                         /* 16: varint 0 */
        0x2a, 0x00,                               /* 5: empty bytes */
    };
    struct pb_reader r;
    struct pb_field f;

    (void)state;
    pb_reader_init(&r, msg, sizeof(msg), "T");
    assert_int_equal(pb_reader_next(&r, &f, NULL), HP_OK);
    assert_int_equal(f.num, 1);
    assert_int_equal(f.type, PB_WIRE_VARINT);
    assert_int_equal(f.value, 150);
    assert_int_equal(f.offset, 0);
    assert_int_equal(pb_reader_next(&r, &f, NULL), HP_OK);
    assert_int_equal(f.num, 2);
    assert_int_equal(f.type, PB_WIRE_FIXED64);
    assert_true(f.value == 0x0807060504030201ull);
    assert_int_equal(pb_reader_next(&r, &f, NULL), HP_OK);
    assert_int_equal(f.num, 3);
    assert_int_equal(f.len, 3);
    assert_memory_equal(f.data, "abc", 3);
    assert_int_equal(pb_reader_next(&r, &f, NULL), HP_OK);
    assert_int_equal(f.num, 4);
    assert_int_equal(f.type, PB_WIRE_FIXED32);
    assert_true(f.value == 0xffffffffu);
    assert_int_equal(pb_reader_next(&r, &f, NULL), HP_OK);
    assert_int_equal(f.num, 16);
    assert_int_equal(f.value, 0);
    assert_int_equal(pb_reader_next(&r, &f, NULL), HP_OK);
    assert_int_equal(f.num, 5);
    assert_int_equal(f.len, 0);
    assert_int_equal(pb_reader_next(&r, &f, NULL), HP_OK);
    assert_int_equal(f.num, 0);
    assert_int_equal(pb_reader_next(&r, &f, NULL), HP_OK); /* the end stays the end */
    assert_int_equal(f.num, 0);
}

static void empty_and_null_buffers_are_empty_messages(void **state)
{
    struct pb_reader r;
    struct pb_field f;

    (void)state;
    pb_reader_init(&r, NULL, 0, "T");
    assert_int_equal(pb_reader_next(&r, &f, NULL), HP_OK);
    assert_int_equal(f.num, 0);
    pb_reader_init(&r, "", 0, NULL);
    assert_int_equal(pb_reader_next(&r, &f, NULL), HP_OK);
    assert_int_equal(f.num, 0);
}

/* refused: bytes[0..n) as message "Msg" gives HP_ERR_PROTOCOL with `words` in the message,
 * after `good` fields read well */
static void refused(const char *bytes, size_t n, int good, const char *words)
{
    struct hp_err err = {0};
    struct pb_reader r;
    struct pb_field f;
    int i;

    pb_reader_init(&r, bytes, n, "Msg");
    for (i = 0; i < good; i++) {
        assert_int_equal(pb_reader_next(&r, &f, &err), HP_OK);
        assert_int_not_equal(f.num, 0);
    }
    if (pb_reader_next(&r, &f, &err) != HP_ERR_PROTOCOL)
        fail_msg("not refused: '%s'", words);
    assert_int_equal(f.num, 0);
    assert_int_equal(err.rc, HP_ERR_PROTOCOL);
    if (!strstr(err.msg, words) || !strstr(err.msg, "protobuf Msg at byte"))
        fail_msg("message '%s' lacks '%s'", err.msg, words);
    /* the reader stays at the bad field */
    assert_int_equal(pb_reader_next(&r, &f, &err), HP_ERR_PROTOCOL);
}

static void malformed_input_is_refused(void **state)
{
    (void)state;
    refused("\x08", 1, 0, "varint cut off");
    refused("\x08\x80", 2, 0, "varint cut off");
    refused("\x80", 1, 0, "tag: varint cut off");
    refused("\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12, 0, "longer than 10 bytes");
    refused("\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80", 11, 0, "longer than 10 bytes");
    refused("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11, 0, "overflows 64 bits");
    refused("\x08\x01\x12\x05"
            "abcd",
            8, 1, "at byte 2: field 2: length 5 is beyond the 4");
    refused("\x12\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10, 0, "length 9223372036854775807");
    refused("\x00\x00", 2, 0, "field number 0");
    refused("\x07", 1, 0, "field number 0");
    refused("\x0b\x0c", 2, 0, "groups (wire type 3)");
    refused("\x0c", 1, 0, "groups (wire type 4)");
    refused("\x0e\x00", 2, 0, "invalid wire type 6");
    refused("\x0f\x00", 2, 0, "invalid wire type 7");
    refused("\x09\x01\x02\x03\x04\x05\x06\x07", 8, 0, "fixed64 needs 8 bytes, 7 left");
    refused("\x0d\x01\x02\x03", 4, 0, "fixed32 needs 4 bytes, 3 left");
    refused("\x80\x80\x80\x80\x80\x01\x00", 7, 0, "beyond 536870911"); /* tag over 32 bits */
    refused("\xf8\xff\xff\xff\x1f\x00", 6, 0, "beyond 536870911");
}

static void offsets_count_from_the_outermost_buffer(void **state)
{
    /* field 1 holds a message whose second field is cut off */
    static const char msg[] = "\x08\x01\x0a\x04\x10\x01\x1a\x05";
    struct hp_err err = {0};
    struct pb_reader r, sub;
    struct pb_field f;

    (void)state;
    pb_reader_init(&r, msg, sizeof(msg) - 1, "Outer");
    assert_int_equal(pb_reader_next(&r, &f, &err), HP_OK);
    assert_int_equal(pb_reader_next(&r, &f, &err), HP_OK);
    assert_int_equal(pb_reader_sub(&r, &f, "Inner", &sub, &err), HP_OK);
    assert_int_equal(pb_reader_next(&sub, &f, &err), HP_OK);
    assert_int_equal(pb_reader_next(&sub, &f, &err), HP_ERR_PROTOCOL);
    assert_string_equal(err.msg,
                        "protobuf Inner at byte 6: field 3: length 5 is beyond the 0 bytes left");
}

static void typed_accessors_check_the_wire_type(void **state)
{
    static const char msg[] = "\x08\x05\x12\x01x";
    struct hp_err err = {0};
    struct pb_reader r, sub;
    struct pb_field v, b;
    const void *p;
    int64_t i;
    bool t;
    size_t n;

    (void)state;
    pb_reader_init(&r, msg, sizeof(msg) - 1, "M");
    assert_int_equal(pb_reader_next(&r, &v, &err), HP_OK);
    assert_int_equal(pb_reader_next(&r, &b, &err), HP_OK);
    assert_int_equal(pb_reader_int64(&r, &v, "count", &i, &err), HP_OK);
    assert_int_equal(i, 5);
    assert_int_equal(pb_reader_bool(&r, &v, "more", &t, &err), HP_OK);
    assert_true(t);
    assert_int_equal(pb_reader_bytes(&r, &b, "key", &p, &n, &err), HP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(pb_reader_int64(&r, &b, "count", &i, &err), HP_ERR_PROTOCOL);
    assert_string_equal(err.msg,
                        "protobuf M at byte 2: field 2 (count) has wire type 2, not a varint");
    assert_int_equal(pb_reader_bool(&r, &b, "more", &t, &err), HP_ERR_PROTOCOL);
    assert_int_equal(pb_reader_bytes(&r, &v, "key", &p, &n, &err), HP_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "field 1 (key) has wire type 0, not length-delimited"));
    assert_int_equal(pb_reader_sub(&r, &v, "Header", &sub, &err), HP_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "(Header) has wire type 0, not a message"));
}

static void nesting_is_bounded(void **state)
{
    /* PB_DEPTH_MAX + 2 messages, each field 1 of the one outside it (lengths as 2-byte
     * varints, canonical or not: both are valid) */
    unsigned char msg[3 * (PB_DEPTH_MAX + 2)];
    struct pb_reader r[PB_DEPTH_MAX + 2];
    struct hp_err err = {0};
    struct pb_field f;
    size_t i, n = PB_DEPTH_MAX + 2;

    (void)state;
    for (i = 0; i < n; i++) {
        size_t len = 3 * (n - i - 1);

        msg[3 * i] = 0x0a;
        msg[3 * i + 1] = (unsigned char)(0x80 | (len & 0x7f));
        msg[3 * i + 2] = (unsigned char)(len >> 7);
    }
    pb_reader_init(&r[0], msg, sizeof(msg), "M");
    for (i = 0; i + 1 < n; i++) {
        assert_int_equal(pb_reader_next(&r[i], &f, &err), HP_OK);
        assert_int_equal(f.num, 1);
        if (i + 1 <= PB_DEPTH_MAX) {
            assert_int_equal(pb_reader_sub(&r[i], &f, "M", &r[i + 1], &err), HP_OK);
            assert_int_equal(r[i + 1].depth, i + 1);
        } else {
            assert_int_equal(pb_reader_sub(&r[i], &f, "M", &r[i + 1], &err), HP_ERR_PROTOCOL);
            assert_non_null(strstr(err.msg, "nested deeper than 64"));
            return;
        }
    }
    fail_msg("the depth limit was never reached");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_wire_type_is_read),
        cmocka_unit_test(empty_and_null_buffers_are_empty_messages),
        cmocka_unit_test(malformed_input_is_refused),
        cmocka_unit_test(offsets_count_from_the_outermost_buffer),
        cmocka_unit_test(typed_accessors_check_the_wire_type),
        cmocka_unit_test(nesting_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
