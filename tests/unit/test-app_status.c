/* test-app_status.c - unit tests of controller/app/app_status.c: /healthz follows the
 * supervision loop's stamp, /readyz follows etcd, /metrics assembles the families of the
 * process and of each module present (none running here: a standby's answer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/app_status.h"
#include "hostpatrol/ctx.h"

static void healthz_follows_the_loop(void **state)
{
    struct app_status s;
    const char *ctype = "x";
    char *body = NULL;
    size_t len = 0;

    (void)state;
    app_status_init(&s);
    assert_int_equal(app_status_healthz(&s, &body, &len, &ctype), 200);
    assert_string_equal(body, "ok\n");
    assert_int_equal(len, 3);
    assert_null(ctype);
    hp_free(body);
    atomic_store(&s.tick_ns, hp_now_ns() - (int64_t)(APP_STATUS_STALL_MS + 1000) * 1000000);
    assert_int_equal(app_status_healthz(&s, &body, &len, &ctype), 500);
    assert_string_equal(body, "main loop stalled\n");
    hp_free(body);
    app_status_release(&s);
}

static void readyz_follows_etcd(void **state)
{
    struct app_status s;
    const char *ctype;
    char *body = NULL;
    size_t len = 0;

    (void)state;
    app_status_init(&s);
    assert_int_equal(app_status_readyz(&s, &body, &len, &ctype), 503);
    assert_string_equal(body, "etcd not reachable\n");
    hp_free(body);
    atomic_store(&s.etcd_ok, 1);
    assert_int_equal(app_status_readyz(&s, &body, &len, &ctype), 200);
    assert_string_equal(body, "ok\n");
    hp_free(body);
    app_status_release(&s);
}

static void metrics_of_a_standby(void **state)
{
    struct app_status s;
    struct probe_budget *b = NULL;
    const char *ctype = NULL;
    char *body = NULL;
    size_t len = 0;

    (void)state;
    app_status_init(&s);
    assert_int_equal(probe_budget_new(7, 3, &b), HP_OK);
    app_status_set_budget(&s, b);
    assert_int_equal(app_status_metrics(&s, &body, &len, &ctype), 200);
    assert_string_equal(ctype, "text/plain; version=0.0.4; charset=utf-8");
    assert_int_equal(len, strlen(body));
    assert_non_null(strstr(body, "# TYPE hostpatrol_build_info gauge\n"));
    assert_non_null(strstr(body, "\nhostpatrol_leader 0\n"));
    assert_non_null(strstr(body, "\nhostpatrol_reconcile_total 0\n"));
    assert_non_null(strstr(body, "\nhostpatrol_runs_total{outcome=\"failed\"} 0\n"));
    assert_non_null(strstr(body, "\nhostpatrol_etcd_batches_total{outcome=\"rolled_back\"} 0\n"));
    assert_non_null(strstr(body, "\nhostpatrol_probes_in_flight_limit 7\n"));
    /* no server of /ws, no access reviews: their families are left out */
    assert_null(strstr(body, "hostpatrol_ws_clients"));
    assert_null(strstr(body, "hostpatrol_metrics_auth_"));
    /* the process's families come before the counters, as they always did */
    assert_true(strstr(body, "hostpatrol_build_info") < strstr(body, "hostpatrol_leader"));
    assert_true(strstr(body, "hostpatrol_leader") < strstr(body, "hostpatrol_probes_parked"));
    hp_free(body);
    atomic_store(&s.leading, 1);
    assert_int_equal(app_status_metrics(&s, &body, &len, &ctype), 200);
    assert_non_null(strstr(body, "\nhostpatrol_leader 1\n"));
    hp_free(body);
    app_status_set_budget(&s, NULL);
    probe_budget_free(b);
    app_status_release(&s);
}

static void metrics_out_of_memory(void **state)
{
    struct app_status s;
    const char *ctype = NULL;
    char *body = NULL;
    size_t len = 0;

    (void)state;
    app_status_init(&s);
    hp_alloc_fail_after(0);
    assert_int_equal(app_status_metrics(&s, &body, &len, &ctype), 500);
    hp_alloc_fail_reset();
    assert_null(body);
    app_status_release(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(healthz_follows_the_loop),
        cmocka_unit_test(readyz_follows_etcd),
        cmocka_unit_test(metrics_of_a_standby),
        cmocka_unit_test(metrics_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
