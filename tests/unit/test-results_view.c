/* test-results_view.c - unit tests of controller/store/results_view.c: rows of a read printed
 * as a table and as JSON in key order, streamed in revision order with a summary per run, a
 * malformed key and an unreadable value shown, not dropped; text escaped for the terminal */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "hostpatrol/results_view.h"

#define V_OK   "{\"kind\":\"tcp\",\"status\":\"OK\",\"reason\":\"\",\"run\":\"r1\",\"source\":\"c\"}"
#define V_CRIT "{\"kind\":\"tls\",\"status\":\"CRIT\",\"reason\":\"bad\\u001b[2J\",\"run\":\"r2\"}"

static struct etcd_kv kvs[] = {
    {.key = "/p/results/ns/web/tls/b", .key_len = 23, .value = V_CRIT, .mod_revision = 9},
    {.key = "/p/results/ns/web/ping/a", .key_len = 24, .value = V_OK, .mod_revision = 7},
    {.key = "/p/results/ns/odd", .key_len = 17, .value = "not json", .mod_revision = 8},
};

/* run: the view of kvs printed (json/wide) or streamed into a string (owned) */
static char *run(bool stream, bool json, bool wide)
{
    struct etcd_range_resp resp = {.kvs = kvs, .n = 3};
    struct results_view *v = NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    for (size_t i = 0; i < 3; i++)
        kvs[i].value_len = strlen(kvs[i].value);
    assert_non_null(f);
    assert_int_equal(results_view_new(&resp, "/p/", &v), HP_OK);
    assert_int_equal(results_view_len(v), 3);
    if (stream) {
        struct results_view_stream st;

        results_view_stream_init(&st, f, json, wide, false);
        assert_int_equal(results_view_stream(v, &st), HP_OK);
    } else {
        assert_int_equal(results_view_print(v, json, wide, f), HP_OK);
    }
    results_view_free(v);
    fclose(f);
    return text;
}

static void table_in_key_order_escaped(void **state)
{
    char *t = run(false, false, false);
    char *odd = strstr(t, "odd"), *ping = strstr(t, "ping"), *tls = strstr(t, "tls");

    (void)state;
    assert_true(!strncmp(t, "NAMESPACE", 9));
    assert_non_null(odd);
    assert_non_null(ping);
    assert_non_null(tls);
    assert_true(odd < ping && ping < tls); /* ns/odd, then ns/web: ping before tls */
    assert_non_null(strstr(t, "unreadable value"));
    assert_null(strchr(t, '\033')); /* the reason's escape sequence is not written raw */
    free(t);
}

static void json_array_with_namespace_and_name(void **state)
{
    char *t = run(false, true, false);
    json_t *j = json_loads(t, 0, NULL);

    (void)state;
    assert_non_null(j);
    assert_int_equal(json_array_size(j), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "kind")), "tcp");
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "check")), "?");
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "name")), "web");
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "status")), "?");
    json_decref(j);
    free(t);
}

static void stream_in_revision_order_with_run_summaries(void **state)
{
    char *t = run(true, false, false);
    char *ping = strstr(t, "ping"), *odd = strstr(t, "odd"), *tls = strstr(t, "tls");

    (void)state;
    assert_true(ping && odd && tls && ping < odd && odd < tls); /* revisions 7, 8, 9 */
    assert_non_null(strstr(t, "run r1 by c: 1 result, 1 OK"));
    assert_non_null(strstr(t, "run r2 by -: 1 result, 1 CRIT"));
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_in_key_order_escaped),
        cmocka_unit_test(json_array_with_namespace_and_name),
        cmocka_unit_test(stream_in_revision_order_with_run_summaries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
