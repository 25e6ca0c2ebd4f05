/* test-nodes.c - unit tests of the apiserver-free part of controller/reconcile/nodes.c: a
 * nodeSelector as the node LIST's percent-encoded labelSelector, the agent's match of a selector
 * against its node's labels, and the controller's summary of the agents' stored results
 * (missing, stale, unreadable, judged). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "json_text.h"
#include "hostpatrol/alloc.h"
#include "reconcile/nodes.h"

#define SEL                                                                                        \
    "{\"matchLabels\":{\"role\":\"web\"},\"matchExpressions\":["                                   \
    "{\"key\":\"zone\",\"operator\":\"In\",\"values\":[\"a\",\"b c\"]},"                           \
    "{\"key\":\"tier\",\"operator\":\"NotIn\",\"values\":[\"db\"]},"                               \
    "{\"key\":\"gpu\",\"operator\":\"Exists\"},"                                                   \
    "{\"key\":\"old\",\"operator\":\"DoesNotExist\"}]}"

static void the_selector_query_is_percent_encoded(void **state)
{
    json_t *sel = json_text(SEL), *empty = json_text("{}");
    char *q = NULL;

    (void)state;
    assert_int_equal(nodes_selector_query(sel, &q), HP_OK);
    /* role=web,zone in (a,b c),tier notin (db),gpu,!old */
    assert_string_equal(q, "role%3Dweb%2Czone%20in%20%28a%2Cb%20c%29%2Ctier%20notin%20%28db%29"
                           "%2Cgpu%2C%21old");
    hp_free(q);
    assert_int_equal(nodes_selector_query(empty, &q), HP_OK);
    assert_string_equal(q, "");
    hp_free(q);
    json_decref(sel);
    json_decref(empty);
}

static void the_agent_matches_labels(void **state)
{
    json_t *sel = json_text(SEL);
    json_t *yes = json_text("{\"role\":\"web\",\"zone\":\"b c\",\"tier\":\"fe\",\"gpu\":\"\"}");
    json_t *no_tier = json_text("{\"role\":\"web\",\"zone\":\"a\",\"tier\":\"db\",\"gpu\":\"1\"}");
    json_t *old = json_text("{\"role\":\"web\",\"zone\":\"a\",\"gpu\":\"1\",\"old\":\"y\"}");
    json_t *no_gpu = json_text("{\"role\":\"web\",\"zone\":\"a\"}");
    json_t *zone = json_text("{\"role\":\"web\",\"zone\":\"c\",\"gpu\":\"1\"}");
    json_t *role = json_text("{\"role\":\"db\",\"zone\":\"a\",\"gpu\":\"1\"}");

    (void)state;
    assert_true(nodes_selector_matches(sel, yes));
    assert_false(nodes_selector_matches(sel, no_tier));
    assert_false(nodes_selector_matches(sel, old));
    assert_false(nodes_selector_matches(sel, no_gpu));
    assert_false(nodes_selector_matches(sel, zone));
    assert_false(nodes_selector_matches(sel, role));
    assert_true(nodes_selector_matches(NULL, role)); /* no selector: every node */
    json_decref(sel);
    json_decref(yes);
    json_decref(no_tier);
    json_decref(old);
    json_decref(no_gpu);
    json_decref(zone);
    json_decref(role);
}

static void kv(struct etcd_kv *e, const char *key, const char *value)
{
    e->key = hp_strdup(key);
    e->key_len = strlen(key);
    e->value = hp_strdup(value);
    e->value_len = strlen(value);
}

static void the_agents_results_are_summarized(void **state)
{
    struct inspection_spec spec = {.interval_ms = 1000, .timeout_ms = 500};
    struct check_spec checks[2] = {{.name = "disk", .kind = CHECK_DISK},
                                   {.name = "web", .kind = CHECK_HTTP}};
    const char *pfx = "/p/results/ns/x/";
    struct etcd_kv kvs[3];
    struct etcd_range_resp stored = {.kvs = kvs, .n = 3};
    json_t *nodes = json_text("[{\"metadata\":{\"name\":\"n1\"}},{\"metadata\":{\"name\":\"n2\"}},"
                              "{\"metadata\":{\"name\":\"n3\"}},{\"metadata\":{\"name\":\"n4\"}}]");
    struct run_report rep;
    size_t i;

    (void)state;
    spec.checks = checks;
    spec.n_checks = 2;
    kv(&kvs[0], "/p/results/ns/x/disk/n1", "{\"status\":\"OK\",\"observed_ms\":10000}");
    kv(&kvs[1], "/p/results/ns/x/disk/n2",
       "{\"status\":\"CRIT\",\"observed_ms\":7000}"); /* stale */
    kv(&kvs[2], "/p/results/ns/x/disk/n3", "{\"status\":\"??\",\"observed_ms\":10000}");
    assert_int_equal(run_report_init(&rep), HP_OK);
    nodes_local_summary(&spec, nodes, &stored, strlen(pfx), 10100, &rep);
    assert_int_equal(rep.nodes, 4);
    assert_int_equal(rep.counts[CHECK_OK], 1);
    assert_int_equal(rep.counts[CHECK_UNKNOWN], 3); /* stale, unreadable, missing */
    assert_int_equal(json_array_size(rep.failing), 3);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(rep.failing, 0), "reason")),
        "the agent on n2 last reported at 1970-01-01T00:00:07Z");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(rep.failing, 1), "reason")),
        "unreadable result from the agent on n3");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(rep.failing, 2), "reason")),
        "no result from the agent on n4 yet");
    assert_int_equal(json_array_size(rep.failing_nodes), 3);
    run_report_release(&rep);
    for (i = 0; i < 3; i++) {
        hp_free(kvs[i].key);
        hp_free(kvs[i].value);
    }
    json_decref(nodes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_selector_query_is_percent_encoded),
        cmocka_unit_test(the_agent_matches_labels),
        cmocka_unit_test(the_agents_results_are_summarized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
