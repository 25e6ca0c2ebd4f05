/* test-b64.c - unit tests of controller/util/b64.c (RFC 4648 test vectors, round trips) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/b64.h"

static const char *const vectors[][2] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void rfc4648_vectors_encode(void **state)
{
    char buf[32];

    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        size_t n = strlen(vectors[i][0]);

        assert_int_equal(hp_b64_encoded_len(n), strlen(vectors[i][1]));
        assert_int_equal(hp_b64_encode(vectors[i][0], n, buf), strlen(vectors[i][1]));
        assert_string_equal(buf, vectors[i][1]);
    }
}

static void rfc4648_vectors_decode_with_and_without_padding(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const char *enc = vectors[i][1];
        size_t n = strlen(enc), len;
        char *out;

        assert_int_equal(hp_b64_decode(enc, n, &out, &len), HP_OK);
        assert_int_equal(len, strlen(vectors[i][0]));
        assert_memory_equal(out, vectors[i][0], len);
        hp_free(out);
        while (n && enc[n - 1] == '=')
            n--;
        assert_int_equal(hp_b64_decode(enc, n, &out, &len), HP_OK);
        assert_int_equal(len, strlen(vectors[i][0]));
        hp_free(out);
    }
}

static void every_byte_value_round_trips(void **state)
{
    unsigned char raw[256];
    char enc[400], *dec;
    size_t len;

    (void)state;
    for (int i = 0; i < 256; i++)
        raw[i] = (unsigned char)(255 - i);
    for (size_t n = 0; n <= sizeof(raw); n += 37) {
        size_t m = hp_b64_encode(raw, n, enc);

        assert_int_equal(hp_b64_decode(enc, m, &dec, &len), HP_OK);
        assert_int_equal(len, n);
        assert_memory_equal(dec, raw, n);
        hp_free(dec);
    }
}

static void bad_input_is_rejected(void **state)
{
    char *out = (char *)1;
    size_t len;

    (void)state;
    assert_int_equal(hp_b64_decode("Zm9v!", 5, &out, &len), HP_ERR_INVALID);
    assert_null(out);
    assert_int_equal(hp_b64_decode("Z", 1, &out, &len), HP_ERR_INVALID);
    assert_int_equal(hp_b64_decode("Zm 9v", 5, &out, &len), HP_ERR_INVALID);
    hp_alloc_fail_after(0);
    assert_int_equal(hp_b64_decode("Zm9v", 4, &out, &len), HP_ERR_NOMEM);
    hp_alloc_fail_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc4648_vectors_encode),
        cmocka_unit_test(rfc4648_vectors_decode_with_and_without_padding),
        cmocka_unit_test(every_byte_value_round_trips),
        cmocka_unit_test(bad_input_is_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
