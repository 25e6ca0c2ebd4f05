/* test-results_store.c - unit tests of controller/store/results_store.c that need no etcd: the
 * key schema (format, scope, parse and its errors) and which stored results are stale */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/results_store.h"

static void key_round_trip(void **state)
{
    static const char *const cases[][5] = {
        {"/hostpatrol/", "default", "web", "ping", "db-1"},
        {"/p/", "ns", "n", "tls", "https://example.com:8443/x/y"}, /* the target may hold '/' */
        {RESULTS_STORE_DEFAULT_PREFIX, "kube-system", "nodes", "disk", "node-1"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct results_store_key k;
        struct hp_err err = {0};
        char *key = NULL;

        assert_int_equal(results_store_key(cases[i][0], cases[i][1], cases[i][2], cases[i][3],
                                           cases[i][4], &key),
                         HP_OK);
        assert_int_equal(results_store_key_parse(cases[i][0], key, strlen(key), &k, &err), HP_OK);
        assert_string_equal(k.ns, cases[i][1]);
        assert_string_equal(k.name, cases[i][2]);
        assert_string_equal(k.check, cases[i][3]);
        assert_string_equal(k.target, cases[i][4]);
        results_store_key_release(&k);
        assert_null(k.buf);
        hp_free(key);
    }
}

static void key_format_is_the_documented_schema(void **state)
{
    char *key = NULL;

    (void)state;
    assert_int_equal(results_store_key("/hostpatrol/", "default", "web", "ping", "db", &key),
                     HP_OK);
    assert_string_equal(key, "/hostpatrol/results/default/web/ping/db");
    hp_free(key);
    assert_string_equal(RESULTS_STORE_DEFAULT_PREFIX, "/hostpatrol/");
}

static void scopes(void **state)
{
    char *s = NULL;
    size_t base = 0;

    (void)state;
    assert_int_equal(results_store_scope("/p/", NULL, NULL, &s, &base), HP_OK);
    assert_string_equal(s, "/p/results/");
    assert_int_equal(base, strlen("/p/results/"));
    hp_free(s);
    assert_int_equal(results_store_scope("/p/", "ns", NULL, &s, NULL), HP_OK);
    assert_string_equal(s, "/p/results/ns/");
    hp_free(s);
    assert_int_equal(results_store_scope("/p/", "ns", "web", &s, &base), HP_OK);
    assert_string_equal(s, "/p/results/ns/web/");
    assert_int_equal(base, strlen("/p/results/"));
    hp_free(s);
}

/* parse_err: parse key under "/p/" expecting HP_ERR_INVALID naming field */
static void parse_err(const char *key, const char *field, const char *ns, const char *name,
                      const char *check, const char *target)
{
    struct results_store_key k;
    struct hp_err err = {0};

    assert_int_equal(results_store_key_parse("/p/", key, strlen(key), &k, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, field);
    assert_non_null(strstr(err.msg, field));
    assert_string_equal(k.ns, ns);
    assert_string_equal(k.name, name);
    assert_string_equal(k.check, check);
    assert_string_equal(k.target, target);
    results_store_key_release(&k);
}

static void parse_errors_name_the_field(void **state)
{
    (void)state;
    parse_err("/q/results/ns/n/c/t", "prefix", "", "?", "?", "?");
    parse_err("/p/other/ns/n/c/t", "prefix", "", "?", "?", "?");
    parse_err("/p/results/", "namespace", "", "?", "?", "?");
    parse_err("/p/results/ns", "name", "ns", "?", "?", "?");
    parse_err("/p/results/ns//c/t", "name", "ns", "", "c", "t");
    parse_err("/p/results/ns/n/c", "target", "ns", "n", "c", "?");
    parse_err("/p/results/ns/n/c/", "target", "ns", "n", "c", "");
    parse_err("/p/results/ns/n//t", "check", "ns", "n", "", "t");
}

static void parse_out_of_memory(void **state)
{
    struct results_store_key k;
    const char *key = "/p/results/ns/n/c/t";

    (void)state;
    hp_alloc_fail_after(0);
    assert_int_equal(results_store_key_parse("/p/", key, strlen(key), &k, NULL), HP_ERR_NOMEM);
    hp_alloc_fail_reset();
    assert_null(k.buf);
    results_store_key_release(&k);
}

/* ---- stale selection ---- */

struct picked {
    size_t idx[16];
    size_t n;
};

static hp_rc pick(void *arg, size_t i)
{
    struct picked *p = arg;

    p->idx[p->n++] = i;
    return HP_OK;
}

static hp_rc refuse(void *arg, size_t i)
{
    (void)arg;
    (void)i;
    return HP_ERR_NOMEM;
}

#define PFX "/p/results/ns/web/"

static struct etcd_kv kvs[] = {
    {.key = PFX "ping/a"},     /* 0: produced */
    {.key = PFX "ping/b"},     /* 1: a target the check no longer has */
    {.key = PFX "gone/a"},     /* 2: a check gone from the spec */
    {.key = PFX "disk/node1"}, /* 3: node-local: the agent's */
    {.key = PFX "disk/node2"}, /* 4: node-local, another node */
    {.key = PFX "ready/node1"} /* 5: a node condition not produced this run */,
    {.key = PFX "gone/node1"}, /* 6: a check gone, on node1 */
    {.key = PFX "noslash"},    /* 7: not a result key: never touched */
};

static struct check_spec checks[] = {
    {.name = "ping", .kind = CHECK_TCP},
    {.name = "disk", .kind = CHECK_DISK},
    {.name = "ready", .kind = CHECK_NODE_CONDITION},
};

static void fill_stored(struct results_store_stored *st)
{
    memset(st, 0, sizeof(*st));
    st->resp.kvs = kvs;
    st->resp.n = sizeof(kvs) / sizeof(kvs[0]);
    st->plen = strlen(PFX);
}

static void stale_for_the_controller(void **state)
{
    struct inspection_spec spec = {.checks = checks, .n_checks = 3};
    struct check_result res[] = {{.check = "ping", .target = "a"}};
    struct results_store_produced p = {&spec, res, 1, NULL, false};
    struct results_store_stored st;
    struct picked got = {0};

    (void)state;
    fill_stored(&st);
    assert_int_equal(results_store_stale_find(&st, &p, pick, &got), HP_OK);
    /* ping/b and gone/a, gone/node1; the agents' disk results and, nodes not listed, the
     * stored node conditions are kept */
    assert_int_equal(got.n, 3);
    assert_int_equal(got.idx[0], 1);
    assert_int_equal(got.idx[1], 2);
    assert_int_equal(got.idx[2], 6);

    /* nodes listed: a node condition not produced is stale too */
    memset(&got, 0, sizeof(got));
    p.nodes_listed = true;
    assert_int_equal(results_store_stale_find(&st, &p, pick, &got), HP_OK);
    assert_int_equal(got.n, 4);
    assert_int_equal(got.idx[2], 5);
    assert_int_equal(got.idx[3], 6);
}

static void stale_for_an_agent(void **state)
{
    struct inspection_spec spec = {.checks = checks, .n_checks = 3};
    struct check_result res[] = {{.check = "disk", .target = "node1"}};
    struct results_store_produced p = {&spec, res, 1, "node1", true};
    struct results_store_stored st;
    struct picked got = {0};

    (void)state;
    fill_stored(&st);
    assert_int_equal(results_store_stale_find(&st, &p, pick, &got), HP_OK);
    /* only node1's: ready/node1 (not produced by this agent) and gone/node1; never node2's */
    assert_int_equal(got.n, 2);
    assert_int_equal(got.idx[0], 5);
    assert_int_equal(got.idx[1], 6);

    /* withdrawn (nothing produced): every result of node1 goes */
    memset(&got, 0, sizeof(got));
    p.n_res = 0;
    assert_int_equal(results_store_stale_find(&st, &p, pick, &got), HP_OK);
    assert_int_equal(got.n, 3);
    assert_int_equal(got.idx[0], 3);
}

static void stale_stops_at_the_first_error(void **state)
{
    struct inspection_spec spec = {.checks = checks, .n_checks = 3};
    struct results_store_produced p = {&spec, NULL, 0, NULL, true};
    struct results_store_stored st;

    (void)state;
    fill_stored(&st);
    assert_int_equal(results_store_stale_find(&st, &p, refuse, NULL), HP_ERR_NOMEM);
}

static void store_defaults_and_a_reader_has_no_runs(void **state)
{
    struct results_store_config cfg = {0};
    struct results_store *s = NULL;
    struct results_store_run *run = (struct results_store_run *)&cfg;

    (void)state;
    assert_int_equal(results_store_new(&cfg, &s), HP_OK);
    assert_string_equal(results_store_prefix(s), RESULTS_STORE_DEFAULT_PREFIX);
    assert_int_equal(results_store_run_new(s, "ns", "web", true, &run), HP_ERR_INVALID);
    assert_null(run);
    results_store_detach(s);
    results_store_free(s);
    results_store_free(NULL);
    results_store_run_free(NULL);
    results_store_stored_release(NULL);
    results_store_key_release(NULL);

    cfg.prefix = "/other/";
    assert_int_equal(results_store_new(&cfg, &s), HP_OK);
    assert_string_equal(results_store_prefix(s), "/other/");
    results_store_free(s);
}

/* the text a committed run publishes, assembled from the values serialized for etcd, is the
 * text a json_dumps of the whole message made before (serialized twice) */
static void run_text_is_the_whole_message(void **state)
{
    struct results_store_config cfg = {.batch = (struct batch_queue *)&cfg}; /* never called */
    struct results_store *s = NULL;
    struct results_store_run *run = NULL;
    struct check_result r[2];
    json_t *docs = json_array(), *msg;
    char *got = NULL, *want;

    (void)state;
    assert_int_equal(check_result_init(&r[0], "ping", "db-1", CHECK_TCP), HP_OK);
    assert_int_equal(check_result_init(&r[1], "t\u00e9ls", "a \"quoted\"/target", CHECK_TLS),
                     HP_OK);
    assert_int_equal(check_result_judge(&r[1], CHECK_WARN, "expires in %d days", 9), HP_OK);
    json_object_set_new(r[0].values, "connect_ms", json_real(12.3456));
    json_object_set_new(r[1].values, "days_left", json_integer(9));
    r[0].observed_ms = r[1].observed_ms = 1700000000123;
    assert_int_equal(results_store_new(&cfg, &s), HP_OK);
    assert_int_equal(results_store_run_new(s, "ns", "w\u00ebb", true, &run), HP_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(results_store_run_put(run, &r[i], "controller/x", "run-1"), HP_OK);
        json_array_append_new(docs, check_result_to_json(&r[i], "controller/x", "run-1"));
    }
    assert_int_equal(results_store_run_len(run), 2);
    assert_int_equal(results_store_run_text(run, "run-1", 42, &got), HP_OK);
    msg = json_pack("{s:s,s:s,s:s,s:I,s:O}", "namespace", "ns", "name", "w\u00ebb", "run", "run-1",
                    "revision", (json_int_t)42, "results", docs);
    want = json_dumps(msg, JSON_COMPACT | CHECK_RESULT_JSON_REALS);
    assert_string_equal(got, want);
    hp_free(got);
    hp_free(want);
    json_decref(msg);
    json_decref(docs);
    /* without keep_text there is no text */
    results_store_run_free(run);
    assert_int_equal(results_store_run_new(s, "ns", "web", false, &run), HP_OK);
    assert_int_equal(results_store_run_text(run, "run-1", 1, &got), HP_ERR_INVALID);
    results_store_run_free(run);
    results_store_free(s);
    check_result_release(&r[0]);
    check_result_release(&r[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_round_trip),
        cmocka_unit_test(key_format_is_the_documented_schema),
        cmocka_unit_test(scopes),
        cmocka_unit_test(parse_errors_name_the_field),
        cmocka_unit_test(parse_out_of_memory),
        cmocka_unit_test(stale_for_the_controller),
        cmocka_unit_test(stale_for_an_agent),
        cmocka_unit_test(stale_stops_at_the_first_error),
        cmocka_unit_test(store_defaults_and_a_reader_has_no_runs),
        cmocka_unit_test(run_text_is_the_whole_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
