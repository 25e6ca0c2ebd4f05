/* test-check_result.c - unit tests of controller/inspect/check_result.c: the value setters round
 * each unit to its precision (docs/results.md, "Numbers") and the stored text prints that
 * decimal and nothing more, also once read back and dumped again. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/check_result.h"

/* fresh: a result to fill; the caller releases it */
static void fresh(struct check_result *r)
{
    assert_int_equal(check_result_init(r, "c", "t", CHECK_HTTP), HP_OK);
}

/* text: r's values as stored (compact, keys in the order set); the caller hp_free()s it */
static char *text(const struct check_result *r)
{
    char *s = json_dumps(r->values, JSON_COMPACT | CHECK_RESULT_JSON_REALS);

    assert_non_null(s);
    return s;
}

static void assert_text(const struct check_result *r, const char *want)
{
    char *s = text(r);

    if (strcmp(s, want))
        fail_msg("values are %s, want %s", s, want);
    hp_free(s);
}

static void ms_to_the_microsecond(void **state)
{
    struct check_result r;

    (void)state;
    fresh(&r);
    assert_int_equal(check_result_set_real(&r, "a_ms", CHECK_UNIT_MS, 0.0299999), HP_OK);
    assert_int_equal(check_result_set_real(&r, "b_ms", CHECK_UNIT_MS, 0.1 + 0.2), HP_OK);
    assert_int_equal(check_result_set_real(&r, "c_ms", CHECK_UNIT_MS, 12.0), HP_OK);
    assert_int_equal(check_result_set_real(&r, "d_ms", CHECK_UNIT_MS, 1234.56789), HP_OK);
    assert_int_equal(check_result_set_real(&r, "e_ms", CHECK_UNIT_MS, 0.0004), HP_OK);
    assert_int_equal(check_result_set_real(&r, "f_ms", CHECK_UNIT_MS, -0.0004), HP_OK);
    assert_text(&r, "{\"a_ms\":0.03,\"b_ms\":0.3,\"c_ms\":12.0,\"d_ms\":1234.568,\"e_ms\":0.0,"
                    "\"f_ms\":0.0}"); /* never -0.0 */
    check_result_release(&r);
}

static void percent_to_a_tenth(void **state)
{
    struct check_result r;

    (void)state;
    fresh(&r);
    assert_int_equal(check_result_set_real(&r, "a_percent", CHECK_UNIT_PERCENT, 20.600000000000001),
                     HP_OK);
    assert_int_equal(check_result_set_real(&r, "b_percent", CHECK_UNIT_PERCENT, 100.0 / 3), HP_OK);
    assert_int_equal(check_result_set_real(&r, "c_percent", CHECK_UNIT_PERCENT, 200.0 / 3), HP_OK);
    assert_int_equal(check_result_set_real(&r, "d_percent", CHECK_UNIT_PERCENT, 100), HP_OK);
    assert_text(&r, "{\"a_percent\":20.6,\"b_percent\":33.3,\"c_percent\":66.7,"
                    "\"d_percent\":100.0}");
    assert_true(check_result_round(CHECK_UNIT_PERCENT, 200.0 / 3) == 66.7);
    check_result_release(&r);
}

static void load_to_a_hundredth(void **state)
{
    struct check_result r;

    (void)state;
    fresh(&r);
    assert_int_equal(check_result_set_real(&r, "load1", CHECK_UNIT_LOAD, 0.89000000000000001),
                     HP_OK);
    assert_int_equal(check_result_set_real(&r, "load_per_cpu", CHECK_UNIT_LOAD, 2.03 / 3), HP_OK);
    assert_int_equal(check_result_set_real(&r, "load15", CHECK_UNIT_LOAD, 123.0), HP_OK);
    assert_text(&r, "{\"load1\":0.89,\"load_per_cpu\":0.68,\"load15\":123.0}");
    check_result_release(&r);
}

/* seconds to the millisecond, with every digit of a large one: 13 significant digits */
static void seconds_to_the_millisecond(void **state)
{
    struct check_result r;

    (void)state;
    fresh(&r);
    assert_int_equal(
        check_result_set_real(&r, "age_seconds", CHECK_UNIT_SECONDS, 1796215893273.0 / 1000.0),
        HP_OK);
    assert_int_equal(check_result_set_real(&r, "uptime_seconds", CHECK_UNIT_SECONDS, 12345.67),
                     HP_OK);
    assert_text(&r, "{\"age_seconds\":1796215893.273,\"uptime_seconds\":12345.67}");
    check_result_release(&r);
}

/* days left: 0.01 day (864 s), rounded down, so an expired certificate is below 0 at once */
static void days_left_to_a_hundredth_rounded_down(void **state)
{
    struct check_result r;

    (void)state;
    fresh(&r);
    assert_int_equal(check_result_set_days_left(&r, "a", 30 * 86400 - 5), HP_OK);
    assert_int_equal(check_result_set_days_left(&r, "b", 14 * 86400), HP_OK);
    assert_int_equal(check_result_set_days_left(&r, "c", 863), HP_OK);
    assert_int_equal(check_result_set_days_left(&r, "d", 864), HP_OK);
    assert_int_equal(check_result_set_days_left(&r, "e", 0), HP_OK);
    assert_int_equal(check_result_set_days_left(&r, "f", -1), HP_OK);
    assert_int_equal(check_result_set_days_left(&r, "g", -86400 - 5), HP_OK);
    assert_int_equal(check_result_set_days_left(&r, "h", 41 * 86400 + 43200), HP_OK);
    assert_text(&r, "{\"a\":29.99,\"b\":14.0,\"c\":0.0,\"d\":0.01,\"e\":0.0,\"f\":-0.01,"
                    "\"g\":-1.01,\"h\":41.5}");
    check_result_release(&r);
}

/* bytes, counts and status codes are integers, never reals, up to the largest */
static void integers_stay_integers(void **state)
{
    struct check_result r;

    (void)state;
    fresh(&r);
    assert_int_equal(check_result_set_int(&r, "size_bytes", 26341470208LL), HP_OK);
    assert_int_equal(check_result_set_int(&r, "count", 0), HP_OK);
    assert_int_equal(check_result_set_int(&r, "max_bytes", INT64_MAX), HP_OK);
    assert_text(&r, "{\"size_bytes\":26341470208,\"count\":0,"
                    "\"max_bytes\":9223372036854775807}");
    check_result_release(&r);
}

/* no JSON number for NaN or an infinity: null, and the run goes on (not NOMEM) */
static void not_finite_is_null(void **state)
{
    struct check_result r;

    (void)state;
    fresh(&r);
    assert_int_equal(check_result_set_real(&r, "a_ms", CHECK_UNIT_MS, NAN), HP_OK);
    assert_int_equal(check_result_set_real(&r, "b_ms", CHECK_UNIT_MS, INFINITY), HP_OK);
    assert_text(&r, "{\"a_ms\":null,\"b_ms\":null}");
    assert_true(isnan(check_result_round(CHECK_UNIT_MS, NAN)));
    assert_true(check_result_round(CHECK_UNIT_MS, 1e300) == 1e300); /* beyond 15 digits */
    check_result_release(&r);
}

/* a setter replaces the key; after an allocation failure values are unaltered */
static void set_replaces_and_fails_clean(void **state)
{
    struct check_result r;

    (void)state;
    fresh(&r);
    assert_int_equal(check_result_set_real(&r, "total_ms", CHECK_UNIT_MS, 1.5), HP_OK);
    assert_int_equal(check_result_set_real(&r, "total_ms", CHECK_UNIT_MS, 2.25), HP_OK);
    hp_alloc_fail_after(0);
    assert_int_equal(check_result_set_real(&r, "total_ms", CHECK_UNIT_MS, 9), HP_ERR_NOMEM);
    assert_int_equal(check_result_set_int(&r, "count", 1), HP_ERR_NOMEM);
    assert_int_equal(check_result_set_days_left(&r, "d", 1), HP_ERR_NOMEM);
    hp_alloc_fail_reset();
    assert_text(&r, "{\"total_ms\":2.25}");
    check_result_release(&r);
}

/* what `hostpatrol results` does: read a stored value back and dump it again. A text written
 * with 17 digits (before this precision) comes out short; a short one stays as it was. */
static void read_back_and_dumped_again_stays_short(void **state)
{
    static const char *const pairs[][2] = {
        {"{\"dns_ms\":0.029999999999999999,\"used_percent\":20.600000000000001,"
         "\"load1\":0.89000000000000001}",
         "{\"dns_ms\":0.03,\"used_percent\":20.6,\"load1\":0.89}"},
        {"{\"total_ms\":12.0,\"age_seconds\":1796215893.273,\"tls_leaf_days_left\":-1.01,"
         "\"size_bytes\":270553174016}",
         "{\"total_ms\":12.0,\"age_seconds\":1796215893.273,\"tls_leaf_days_left\":-1.01,"
         "\"size_bytes\":270553174016}"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        json_t *j = json_loads(pairs[i][0], 0, NULL), *again;
        char *once, *twice;

        assert_non_null(j);
        once = json_dumps(j, JSON_COMPACT | CHECK_RESULT_JSON_REALS);
        assert_non_null(once);
        assert_string_equal(once, pairs[i][1]);
        again = json_loads(once, 0, NULL);
        assert_non_null(again);
        twice = json_dumps(again, JSON_COMPACT | CHECK_RESULT_JSON_REALS);
        assert_non_null(twice);
        assert_string_equal(twice, once);
        hp_free(once);
        hp_free(twice);
        json_decref(j);
        json_decref(again);
    }
}

/* the stored document: values as set, times as integers */
static void stored_document_text(void **state)
{
    struct check_result r;
    json_t *doc;
    char *s;

    (void)state;
    fresh(&r);
    assert_int_equal(check_result_set_int(&r, "status_code", 200), HP_OK);
    assert_int_equal(check_result_set_real(&r, "total_ms", CHECK_UNIT_MS, 12.4000001), HP_OK);
    assert_int_equal(check_result_judge(&r, CHECK_OK, "%s", ""), HP_OK);
    r.observed_ms = 1795000000000;
    r.duration_ms = 12;
    doc = check_result_to_json(&r, "controller/x", "run-1");
    assert_non_null(doc);
    s = json_dumps(doc, JSON_COMPACT | CHECK_RESULT_JSON_REALS);
    assert_non_null(s);
    assert_string_equal(s, "{\"check\":\"c\",\"target\":\"t\",\"kind\":\"http\",\"status\":\"OK\","
                           "\"reason\":\"\",\"values\":{\"status_code\":200,\"total_ms\":12.4},"
                           "\"observed_ms\":1795000000000,\"duration_ms\":12,"
                           "\"source\":\"controller/x\",\"run\":\"run-1\"}");
    hp_free(s);
    json_decref(doc);
    check_result_release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ms_to_the_microsecond),
        cmocka_unit_test(percent_to_a_tenth),
        cmocka_unit_test(load_to_a_hundredth),
        cmocka_unit_test(seconds_to_the_millisecond),
        cmocka_unit_test(days_left_to_a_hundredth_rounded_down),
        cmocka_unit_test(integers_stay_integers),
        cmocka_unit_test(not_finite_is_null),
        cmocka_unit_test(set_replaces_and_fails_clean),
        cmocka_unit_test(read_back_and_dumped_again_stays_short),
        cmocka_unit_test(stored_document_text),
    };

    hp_alloc_install();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
