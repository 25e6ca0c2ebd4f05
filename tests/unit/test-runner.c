/* test-runner.c - unit tests of the part of controller/reconcile/runner.c that needs no
 * apiserver nor etcd: what a run leaves its commit, a run's outcome as the metrics label it, and
 * how each result is counted (metrics, the run's report) and stored with its source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/alloc.h"
#include "reconcile/runner.h"

static void the_commit_keeps_a_fifth_within_bounds(void **state)
{
    (void)state;
    assert_int_equal(runner_commit_reserve_ms(10000), 2000); /* a fifth */
    assert_int_equal(runner_commit_reserve_ms(1000), 200);
    assert_int_equal(runner_commit_reserve_ms(500), 100);
    assert_int_equal(runner_commit_reserve_ms(300), 100); /* at least 100 ms */
    assert_int_equal(runner_commit_reserve_ms(200), 100);
    assert_int_equal(runner_commit_reserve_ms(150), 75); /* at most half the run */
    assert_int_equal(runner_commit_reserve_ms(1), 0);
}

static void outcomes_follow_the_commit(void **state)
{
    (void)state;
    assert_int_equal(runner_outcome(HP_OK), RUNNER_COMMITTED);
    assert_int_equal(runner_outcome(HP_ERR_UNKNOWN_OUTCOME), RUNNER_UNRESOLVED);
    assert_int_equal(runner_outcome(HP_ERR_TIMEOUT), RUNNER_FAILED);
    assert_int_equal(runner_outcome(HP_ERR_UNAVAILABLE), RUNNER_FAILED);
    assert_string_equal(runner_outcome_name(RUNNER_COMMITTED), "committed");
    assert_string_equal(runner_outcome_name(RUNNER_FAILED), "failed");
    assert_string_equal(runner_outcome_name(RUNNER_UNRESOLVED), "unresolved");
}

/* A runner with its own metrics and a store whose queue is never called */
struct fixture {
    pthread_mutex_t mu;
    struct reconciler_stats stats;
    struct prom_histogram check_seconds[CHECK_KIND__COUNT];
    struct prom_histogram run_seconds[RUNNER_OUTCOMES];
    uint64_t results[CHECK_KIND__COUNT][4];
    struct results_store_config scfg;
    struct results_store *store;
    struct runner rn;
    struct check_result res[3];
};

static void fixture_init(struct fixture *f, const char *node_name)
{
    size_t i;

    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    for (i = 0; i < CHECK_KIND__COUNT; i++)
        prom_histogram_init(&f->check_seconds[i], prom_buckets_seconds, 12);
    for (i = 0; i < RUNNER_OUTCOMES; i++)
        prom_histogram_init(&f->run_seconds[i], prom_buckets_seconds, 12);
    f->scfg.batch = (struct batch_queue *)f; /* never called: nothing is committed */
    assert_int_equal(results_store_new(&f->scfg, &f->store), HP_OK);
    f->rn = (struct runner){.store = f->store,
                            .identity = "ctl-1",
                            .node_name = node_name,
                            .mu = &f->mu,
                            .stats = &f->stats,
                            .check_seconds = f->check_seconds,
                            .run_seconds = f->run_seconds,
                            .results = f->results};
    assert_int_equal(check_result_init(&f->res[0], "ping", "db-1", CHECK_TCP), HP_OK);
    assert_int_equal(check_result_judge(&f->res[0], CHECK_OK, "connected"), HP_OK);
    f->res[0].duration_ms = 20;
    assert_int_equal(check_result_init(&f->res[1], "cert", "web", CHECK_TLS), HP_OK);
    assert_int_equal(check_result_judge(&f->res[1], CHECK_WARN, "expires in %d days", 9), HP_OK);
    f->res[1].duration_ms = 300;
    assert_int_equal(check_result_init(&f->res[2], "root", "node-a", CHECK_DISK), HP_OK);
    assert_int_equal(check_result_judge(&f->res[2], CHECK_CRIT, "97%% used"), HP_OK);
    f->res[2].duration_ms = 5;
}

static void fixture_release(struct fixture *f)
{
    size_t i;

    for (i = 0; i < 3; i++)
        check_result_release(&f->res[i]);
    results_store_free(f->store);
    for (i = 0; i < CHECK_KIND__COUNT; i++)
        prom_histogram_release(&f->check_seconds[i]);
    for (i = 0; i < RUNNER_OUTCOMES; i++)
        prom_histogram_release(&f->run_seconds[i]);
    pthread_mutex_destroy(&f->mu);
}

/* the sources of the documents a run's text publishes, in order, joined by ',' */
static void sources(const struct results_store_run *sr, char *out, size_t size)
{
    char *text = NULL;
    json_t *msg, *doc;
    size_t i;

    assert_int_equal(results_store_run_text(sr, "run-1", 7, &text), HP_OK);
    msg = json_loads(text, 0, NULL);
    assert_non_null(msg);
    out[0] = '\0';
    json_array_foreach(json_object_get(msg, "results"), i, doc)
    {
        size_t len = strlen(out);

        snprintf(out + len, size - len, "%s%s", i ? "," : "",
                 json_string_value(json_object_get(doc, "source")));
    }
    json_decref(msg);
    hp_free(text);
}

static void results_are_counted_and_stored(void **state)
{
    struct fixture f;
    struct run_report rep;
    struct results_store_run *sr = NULL;
    char src[256];

    (void)state;
    fixture_init(&f, NULL);
    assert_int_equal(run_report_init(&rep), HP_OK);
    assert_int_equal(results_store_run_new(f.store, "ns", "web", true, &sr), HP_OK);
    assert_int_equal(runner_add_results(&f.rn, "run-1", f.res, 3, &rep, sr), HP_OK);
    /* the run's report */
    assert_int_equal(rep.counts[CHECK_OK], 1);
    assert_int_equal(rep.counts[CHECK_WARN], 1);
    assert_int_equal(rep.counts[CHECK_CRIT], 1);
    assert_int_equal(rep.counts[CHECK_UNKNOWN], 0);
    assert_int_equal(json_array_size(rep.failing), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rep.failing, 1), "check")),
                        "root");
    /* the metrics, by kind and status */
    assert_int_equal(f.results[CHECK_TCP][CHECK_OK], 1);
    assert_int_equal(f.results[CHECK_TLS][CHECK_WARN], 1);
    assert_int_equal(f.results[CHECK_DISK][CHECK_CRIT], 1);
    assert_int_equal(f.results[CHECK_TCP][CHECK_WARN], 0);
    assert_int_equal(f.check_seconds[CHECK_TCP].count, 1);
    assert_true(f.check_seconds[CHECK_TLS].sum > 0.299 && f.check_seconds[CHECK_TLS].sum < 0.301);
    assert_int_equal(f.check_seconds[CHECK_HTTP].count, 0);
    /* stored, each with the controller as its source */
    assert_int_equal(results_store_run_len(sr), 3);
    sources(sr, src, sizeof(src));
    assert_string_equal(src, "controller/ctl-1,controller/ctl-1,controller/ctl-1");
    /* counted again: the metrics add up, nothing is reset */
    assert_int_equal(runner_add_results(&f.rn, "run-1", f.res, 1, &rep, sr), HP_OK);
    assert_int_equal(f.results[CHECK_TCP][CHECK_OK], 2);
    assert_int_equal(rep.counts[CHECK_OK], 2);
    results_store_run_free(sr);
    run_report_release(&rep);
    fixture_release(&f);
}

static void an_agents_results_name_its_node(void **state)
{
    struct fixture f;
    struct run_report rep;
    struct results_store_run *sr = NULL;
    char src[256];

    (void)state;
    fixture_init(&f, "node-a");
    assert_int_equal(run_report_init(&rep), HP_OK);
    assert_int_equal(results_store_run_new(f.store, "ns", "web", true, &sr), HP_OK);
    assert_int_equal(runner_add_results(&f.rn, "run-1", &f.res[2], 1, &rep, sr), HP_OK);
    sources(sr, src, sizeof(src));
    assert_string_equal(src, "agent/node-a");
    assert_int_equal(f.results[CHECK_DISK][CHECK_CRIT], 1);
    results_store_run_free(sr);
    run_report_release(&rep);
    fixture_release(&f);
}

/* every allocation that fails stops the counting with HP_ERR_NOMEM, nothing leaked */
static void out_of_memory_stops_the_results(void **state)
{
    struct fixture f;
    long n;
    hp_rc rc = HP_ERR_NOMEM;

    (void)state;
    fixture_init(&f, NULL);
    for (n = 0; rc == HP_ERR_NOMEM && n < 1000; n++) {
        struct run_report rep;
        struct results_store_run *sr = NULL;

        assert_int_equal(run_report_init(&rep), HP_OK);
        assert_int_equal(results_store_run_new(f.store, "ns", "web", true, &sr), HP_OK);
        hp_alloc_fail_after(n);
        rc = runner_add_results(&f.rn, "run-1", f.res, 3, &rep, sr);
        hp_alloc_fail_reset();
        assert_true(rc == HP_OK || rc == HP_ERR_NOMEM);
        if (rc == HP_OK)
            assert_int_equal(results_store_run_len(sr), 3);
        results_store_run_free(sr);
        run_report_release(&rep);
    }
    assert_int_equal(rc, HP_OK);
    assert_true(n > 1); /* at least one allocation failed first */
    fixture_release(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_commit_keeps_a_fifth_within_bounds),
        cmocka_unit_test(outcomes_follow_the_commit),
        cmocka_unit_test(results_are_counted_and_stored),
        cmocka_unit_test(an_agents_results_name_its_node),
        cmocka_unit_test(out_of_memory_stops_the_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
