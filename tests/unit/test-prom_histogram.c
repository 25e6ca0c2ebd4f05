/* test-prom_histogram.c - unit tests of controller/util/prom_histogram.c and its text form
 * (prom_writer_histogram): bucket placement (upper bounds inclusive), cumulative output, sum and
 * count, observations from several threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/prom_histogram.h"
#include "hostpatrol/prom_writer.h"

static void buckets_are_inclusive_and_written_cumulative(void **state)
{
    static const double b[] = {1, 2, 5};
    struct prom_histogram h;
    struct prom_writer w;
    size_t len;
    char *text;

    (void)state;
    prom_histogram_init(&h, b, 3);
    prom_histogram_observe(&h, 0.5);
    prom_histogram_observe(&h, 1); /* le="1": bounds are inclusive, as Prometheus's */
    prom_histogram_observe(&h, 1.5);
    prom_histogram_observe(&h, 7); /* +Inf */
    prom_writer_init(&w);
    prom_writer_histogram(&w, "x_seconds", (const char *const[]){"kind", "http", NULL}, &h);
    text = prom_writer_take(&w, &len);
    assert_string_equal(text, "x_seconds_bucket{kind=\"http\",le=\"1\"} 2\n"
                              "x_seconds_bucket{kind=\"http\",le=\"2\"} 3\n"
                              "x_seconds_bucket{kind=\"http\",le=\"5\"} 3\n"
                              "x_seconds_bucket{kind=\"http\",le=\"+Inf\"} 4\n"
                              "x_seconds_sum{kind=\"http\"} 10\n"
                              "x_seconds_count{kind=\"http\"} 4\n");
    hp_free(text);
    prom_histogram_release(&h);
    prom_histogram_release(NULL);
}

static void *observer(void *arg)
{
    for (int i = 0; i < 10000; i++)
        prom_histogram_observe(arg, 0.003);
    return NULL;
}

static void observations_from_threads_are_all_counted(void **state)
{
    struct prom_histogram h, snap;
    pthread_t t[4];

    (void)state;
    prom_histogram_init(&h, prom_buckets_seconds, 12);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, observer, &h), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    prom_histogram_copy(&h, &snap);
    assert_int_equal(snap.count, 40000);
    assert_int_equal(snap.counts[2], 40000); /* 0.003 falls in le=0.005 */
    prom_histogram_release(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buckets_are_inclusive_and_written_cumulative),
        cmocka_unit_test(observations_from_threads_are_all_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
