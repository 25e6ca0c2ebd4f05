/* test-prom_writer.c - unit tests of controller/util/prom_writer.c: the text format Prometheus
 * parses (families, labels, escaping, numbers) and allocation failures. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/prom_writer.h"

static void families_samples_and_labels(void **state)
{
    struct prom_writer w;
    size_t len;
    char *text;

    (void)state;
    prom_writer_init(&w);
    prom_writer_family(&w, "hp_runs_total", "counter", "Runs.");
    prom_writer_sample(&w, "hp_runs_total", (const char *const[]){"outcome", "committed", NULL},
                       42);
    prom_writer_sample(&w, "hp_runs_total",
                       (const char *const[]){"a", "x\"y\\z\nw", "b", "2", NULL}, 0.25);
    prom_writer_family(&w, "hp_age_seconds", "gauge", "Age.");
    prom_writer_sample(&w, "hp_age_seconds", NULL, NAN);
    prom_writer_sample(&w, "hp_age_seconds", NULL, INFINITY);
    prom_writer_sample(&w, "hp_age_seconds", NULL, 1e20);
    text = prom_writer_take(&w, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    assert_string_equal(text, "# HELP hp_runs_total Runs.\n"
                              "# TYPE hp_runs_total counter\n"
                              "hp_runs_total{outcome=\"committed\"} 42\n"
                              "hp_runs_total{a=\"x\\\"y\\\\z\\nw\",b=\"2\"} 0.25\n"
                              "# HELP hp_age_seconds Age.\n"
                              "# TYPE hp_age_seconds gauge\n"
                              "hp_age_seconds NaN\n"
                              "hp_age_seconds +Inf\n"
                              "hp_age_seconds 1e+20\n");
    hp_free(text);
    /* nothing written: an empty text, not NULL */
    prom_writer_init(&w);
    text = prom_writer_take(&w, &len);
    assert_non_null(text);
    assert_int_equal(len, 0);
    hp_free(text);
    prom_writer_release(NULL);
}

static void allocation_failure_is_sticky_and_clean(void **state)
{
    int failures = 0;

    (void)state;
    for (long n = 0; n < 10; n++) {
        struct prom_writer w;
        size_t len;
        char *text;

        prom_writer_init(&w);
        hp_alloc_fail_after(n);
        for (int i = 0; i < 200; i++)
            prom_writer_sample(&w, "hp_metric_with_a_long_name", NULL, i);
        text = prom_writer_take(&w, &len);
        hp_alloc_fail_reset();
        if (!text) {
            assert_int_equal(len, 0);
            failures++;
        }
        hp_free(text);
    }
    assert_true(failures > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(families_samples_and_labels),
        cmocka_unit_test(allocation_failure_is_sticky_and_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
