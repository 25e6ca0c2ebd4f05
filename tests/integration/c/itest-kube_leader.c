/* itest-kube_leader.c - Lease leader election against the REAL kube-apiserver (started by
 * tests/integration/test-kube-client.sh; HP_KUBECONFIG is an admin kubeconfig). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/kube_leader.h"

static struct kube_client *cli;

static int setup(void **state)
{
    struct kube_config_opts o = {
        .kubeconfig = getenv("HP_KUBECONFIG"), .env_kubeconfig = "", .home = "/x"};
    struct kube_config cfg;
    struct hp_err err = {0};

    (void)state;
    if (kube_config_load(&o, &cfg, &err) || kube_client_new(&cfg, &cli, &err))
        return -1;
    kube_config_release(&cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kube_client_free(cli);
    return 0;
}

static struct kube_leader *candidate(const char *lease, const char *id)
{
    struct kube_leader_config cfg = {.client = cli,
                                     .namespace_ = "default",
                                     .name = lease,
                                     .identity = id,
                                     .lease_ms = 2000,
                                     .renew_ms = 1500,
                                     .retry_ms = 200};
    struct kube_leader *l = NULL;
    struct hp_err err = {0};

    assert_int_equal(kube_leader_start(&cfg, &l, &err), HP_OK);
    return l;
}

/* wait_leader: until exactly one of a, b leads (never both meanwhile); returns it */
static struct kube_leader *wait_leader(struct kube_leader *a, struct kube_leader *b, int ms)
{
    for (int t = 0; t < ms; t += 50) {
        bool la = a && kube_leader_is_leader(a), lb = b && kube_leader_is_leader(b);

        if (la && lb)
            fail_msg("two leaders at once");
        if (la || lb)
            return la ? a : b;
        usleep(50 * 1000);
    }
    return NULL;
}

static void one_leader_and_a_release_hands_over(void **state)
{
    char lease[64];
    struct kube_leader *a, *b, *lead, *other;
    int64_t t0;

    (void)state;
    snprintf(lease, sizeof(lease), "release-%d", getpid());
    a = candidate(lease, "a");
    b = candidate(lease, "b");
    lead = wait_leader(a, b, 5000);
    assert_non_null(lead);
    other = lead == a ? b : a;
    for (int t = 0; t < 40; t++) { /* 2 s: still exactly one */
        assert_true(kube_leader_is_leader(lead));
        assert_false(kube_leader_is_leader(other));
        usleep(50 * 1000);
    }
    t0 = hp_now_ns();
    kube_leader_stop(lead, true); /* SIGTERM: release */
    assert_non_null(wait_leader(other, NULL, 3000));
    print_message("# release: successor leads after %lld ms\n",
                  (long long)((hp_now_ns() - t0) / 1000000));
    kube_leader_stop(other, true);
}

static void a_crashed_leader_is_replaced_after_its_lease(void **state)
{
    char lease[64], path[256];
    struct kube_leader *a, *b;
    struct hp_err err = {0};
    json_t *obj = NULL;
    int64_t t0, waited;

    (void)state;
    snprintf(lease, sizeof(lease), "crash-%d", getpid());
    a = candidate(lease, "a");
    assert_true(wait_leader(a, NULL, 5000) == a);
    b = candidate(lease, "b");
    usleep(500 * 1000);
    assert_false(kube_leader_is_leader(b));
    t0 = hp_now_ns();
    kube_leader_stop(a, false); /* a crash: nobody releases */
    assert_non_null(wait_leader(b, NULL, 8000));
    waited = (hp_now_ns() - t0) / 1000000;
    print_message("# crash: successor leads after %lld ms (lease 2000 ms)\n", (long long)waited);
    assert_true(waited >= 1500); /* the lease was respected */
    snprintf(path, sizeof(path), "/apis/coordination.k8s.io/v1/namespaces/default/leases/%s",
             lease);
    assert_int_equal(kube_request(cli, NULL, "GET", path, NULL, NULL, &obj, NULL, &err), HP_OK);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(obj, "spec"), "holderIdentity")), "b");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(obj, "spec"), "leaseTransitions")), 1);
    json_decref(obj);
    kube_leader_stop(b, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_leader_and_a_release_hands_over),
        cmocka_unit_test(a_crashed_leader_is_replaced_after_its_lease),
    };
    int rc;

    hp_alloc_install();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
