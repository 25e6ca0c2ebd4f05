/* test-work_queue.c - unit tests of controller/kube/work_queue.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/work_queue.h"

static struct work_queue *mk(const struct work_queue_config *cfg)
{
    struct work_queue *q = NULL;

    assert_int_equal(work_queue_new(cfg, &q), HP_OK);
    return q;
}

static char *take(struct work_queue *q, int64_t timeout_ms, hp_rc want)
{
    struct hp_ctx *ctx;
    char *key = NULL;

    assert_int_equal(hp_ctx_new(NULL, timeout_ms, &ctx), HP_OK);
    assert_int_equal(work_queue_get(q, ctx, &key), want);
    hp_ctx_free(ctx);
    return key;
}

static void keys_are_deduplicated_in_order(void **state)
{
    struct work_queue *q = mk(NULL);
    char *k;

    (void)state;
    work_queue_add(q, "ns/a");
    work_queue_add(q, "ns/b");
    work_queue_add(q, "ns/a");
    assert_int_equal(work_queue_len(q), 2);
    k = take(q, 1000, HP_OK);
    assert_string_equal(k, "ns/a");
    work_queue_done(q, k);
    hp_free(k);
    k = take(q, 1000, HP_OK);
    assert_string_equal(k, "ns/b");
    work_queue_done(q, k);
    hp_free(k);
    assert_null(take(q, 20, HP_ERR_TIMEOUT));
    assert_int_equal(work_queue_shutdown(q, NULL), HP_OK);
    work_queue_free(q);
}

static void a_key_changed_while_processing_runs_again_after(void **state)
{
    struct work_queue *q = mk(NULL);
    char *k;

    (void)state;
    work_queue_add(q, "ns/a");
    k = take(q, 1000, HP_OK);
    work_queue_add(q, "ns/a"); /* changed while being processed */
    work_queue_add(q, "ns/a");
    assert_int_equal(work_queue_len(q), 0); /* never handed to a second worker meanwhile */
    work_queue_done(q, k);
    hp_free(k);
    assert_int_equal(work_queue_len(q), 1);
    k = take(q, 1000, HP_OK);
    assert_string_equal(k, "ns/a");
    work_queue_done(q, k);
    hp_free(k);
    assert_int_equal(work_queue_len(q), 0);
    (void)work_queue_shutdown(q, NULL);
    work_queue_free(q);
}

static void add_after_waits(void **state)
{
    struct work_queue *q = mk(NULL);
    int64_t t0 = hp_now_ns();
    char *k;

    (void)state;
    work_queue_add_after(q, "ns/later", 500);
    assert_null(take(q, 30, HP_ERR_TIMEOUT));
    k = take(q, 5000, HP_OK);
    assert_string_equal(k, "ns/later");
    assert_true(hp_now_ns() - t0 >= 500 * 1000000LL);
    work_queue_done(q, k);
    hp_free(k);
    (void)work_queue_shutdown(q, NULL);
    work_queue_free(q);
}

static void backoff_doubles_per_key_and_forget_resets(void **state)
{
    struct work_queue_config cfg = {
        .base_delay_ms = 5, .max_delay_ms = 60, .qps = 1000, .burst = 1000};
    struct work_queue *q = mk(&cfg);
    int64_t want[] = {5, 10, 20, 40, 60, 60};

    (void)state;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(work_queue_add_rate_limited(q, "ns/flaky"), want[i]);
    assert_int_equal(work_queue_failures(q, "ns/flaky"), 6);
    assert_int_equal(work_queue_add_rate_limited(q, "ns/other"), 5); /* per key */
    work_queue_forget(q, "ns/flaky");
    assert_int_equal(work_queue_failures(q, "ns/flaky"), 0);
    assert_int_equal(work_queue_add_rate_limited(q, "ns/flaky"), 5);
    (void)work_queue_shutdown(q, NULL);
    work_queue_free(q);
}

static void global_bucket_limits_a_burst(void **state)
{
    /* 1 token per second: the expected waits (1 s, 2 s) dwarf any scheduling hiccup */
    struct work_queue_config cfg = {.base_delay_ms = 1, .qps = 1, .burst = 2};
    struct work_queue *q = mk(&cfg);
    int64_t d1, d2, d3, d4;

    (void)state;
    d1 = work_queue_add_rate_limited(q, "a");
    d2 = work_queue_add_rate_limited(q, "b");
    d3 = work_queue_add_rate_limited(q, "c"); /* the bucket is empty: wait 1/qps */
    d4 = work_queue_add_rate_limited(q, "d");
    assert_true(d1 <= 1 && d2 <= 1);
    assert_true(d3 >= 800 && d3 <= 1000);
    assert_true(d4 >= 1800 && d4 <= 2000);
    (void)work_queue_shutdown(q, NULL);
    work_queue_free(q);
}

/* failures against a server that was not reached: the key's own backoff, capped, and the bucket
 * untouched (an outage does not leave every key behind a debt) */
static void unreachable_backoff_skips_the_bucket(void **state)
{
    struct work_queue_config cfg = {.base_delay_ms = 100, .qps = 1, .burst = 1};
    struct work_queue *q = mk(&cfg);

    (void)state;
    for (int i = 0; i < 50; i++) /* a long outage of many keys: no token taken */
        (void)work_queue_add_backoff(q, "ns/down", 2000);
    assert_int_equal(work_queue_add_backoff(q, "ns/down", 2000), 2000); /* capped */
    assert_int_equal(work_queue_failures(q, "ns/down"), 51);
    assert_int_equal(work_queue_add_backoff(q, "ns/fresh", 2000), 100);
    /* the bucket still has its one token: the first rate-limited retry waits only its backoff */
    assert_true(work_queue_add_rate_limited(q, "ns/served") <= 100);
    assert_true(work_queue_add_rate_limited(q, "ns/served2") >= 800);
    (void)work_queue_shutdown(q, NULL);
    work_queue_free(q);
}

#define KEYS 1000
static atomic_int processed[KEYS];
static atomic_int busy[KEYS];
static atomic_int overlap;

static void *worker(void *arg)
{
    struct work_queue *q = arg;
    char *k;

    while (work_queue_get(q, NULL, &k) == HP_OK) {
        int i = 0;

        sscanf(k, "ns/%d", &i);
        if (atomic_fetch_add(&busy[i], 1))
            atomic_fetch_add(&overlap, 1);
        atomic_fetch_add(&processed[i], 1);
        if (i % 97 == 0)
            usleep(1000);
        atomic_fetch_sub(&busy[i], 1);
        work_queue_done(q, k);
        hp_free(k);
    }
    return NULL;
}

/* N workers, each key processed, never by two workers at once; shutdown drains. */
static void workers_and_drain(void **state)
{
    struct work_queue *q = mk(NULL);
    struct hp_ctx *drain;
    pthread_t t[4];
    char key[32];
    int i;

    (void)state;
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, q), 0);
    for (int round = 0; round < 3; round++)
        for (i = 0; i < KEYS; i++) {
            snprintf(key, sizeof(key), "ns/%d", i);
            work_queue_add(q, key);
        }
    assert_int_equal(hp_ctx_new(NULL, 10000, &drain), HP_OK);
    assert_int_equal(work_queue_shutdown(q, drain), HP_OK);
    hp_ctx_free(drain);
    for (i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&overlap), 0);
    for (i = 0; i < KEYS; i++)
        assert_true(processed[i] >= 1 && processed[i] <= 3);
    work_queue_add(q, "ns/late"); /* ignored after shutdown */
    assert_int_equal(work_queue_len(q), 0);
    work_queue_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_are_deduplicated_in_order),
        cmocka_unit_test(a_key_changed_while_processing_runs_again_after),
        cmocka_unit_test(add_after_waits),
        cmocka_unit_test(backoff_doubles_per_key_and_forget_resets),
        cmocka_unit_test(global_bucket_limits_a_burst),
        cmocka_unit_test(unreachable_backoff_skips_the_bucket),
        cmocka_unit_test(workers_and_drain),
    };
    hp_alloc_install();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
