/* test-result_text.c - a stored result's values in words: one case per kind, the units, and
 * values that are missing or of the wrong type (left out, never guessed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "hostpatrol/result_text.h"

/* text_of: result_text_values of the result given as JSON text */
static const char *text_of(const char *json)
{
    static char buf[256];
    json_t *r = json_loads(json, 0, NULL);

    assert_non_null(r);
    result_text_values(r, buf, sizeof(buf));
    json_decref(r);
    return buf;
}

static void units(void **state)
{
    char b[32];

    (void)state;
    result_text_bytes(0, b, sizeof(b));
    assert_string_equal(b, "0 B");
    result_text_bytes(1023, b, sizeof(b));
    assert_string_equal(b, "1023 B");
    result_text_bytes(1536, b, sizeof(b));
    assert_string_equal(b, "1.5 KiB");
    result_text_bytes(26843545600.0, b, sizeof(b)); /* 25 GiB */
    assert_string_equal(b, "25 GiB");
    result_text_bytes(10694546227.0, b, sizeof(b)); /* 9.96 GiB: rounds to 10, no decimal */
    assert_string_equal(b, "10 GiB");
    result_text_bytes(-5, b, sizeof(b));
    assert_string_equal(b, "0 B");
    result_text_ms(0.042, b, sizeof(b));
    assert_string_equal(b, "0.042 ms");
    result_text_ms(1.3333, b, sizeof(b));
    assert_string_equal(b, "1.3 ms");
    result_text_ms(99.5, b, sizeof(b));
    assert_string_equal(b, "100 ms");
    result_text_ms(1234, b, sizeof(b));
    assert_string_equal(b, "1.23 s");
    result_text_ms(250000, b, sizeof(b));
    assert_string_equal(b, "250 s");
    result_text_percent(20.600000000000001, b, sizeof(b));
    assert_string_equal(b, "20.6%");
    result_text_percent(20.96, b, sizeof(b));
    assert_string_equal(b, "21%");
}

static void endpoint_kinds(void **state)
{
    (void)state;
    assert_string_equal(
        text_of("{\"kind\":\"http\",\"values\":{\"status_code\":200,\"total_ms\":1.2999}}"),
        "200 in 1.3 ms");
    assert_string_equal(text_of("{\"kind\":\"http\",\"values\":{\"status_code\":503,\"total_ms\":"
                                "12.4,\"tls_leaf_days_left\":89.7,\"tls_chain_min_days_left\":"
                                "300.2}}"),
                        "503 in 12 ms, cert 89 days left (chain 300)");
    /* refused: no status code; the reason says why, the values add nothing */
    assert_string_equal(text_of("{\"kind\":\"http\",\"values\":{\"dns_ms\":0.03}}"), "");
    assert_string_equal(
        text_of("{\"kind\":\"tcp\",\"values\":{\"connect_ms\":0.4,\"total_ms\":0.5}}"),
        "connected in 0.4 ms");
    assert_string_equal(text_of("{\"kind\":\"tcp\",\"values\":{\"total_ms\":0.2}}"), "");
    assert_string_equal(text_of("{\"kind\":\"tls\",\"values\":{\"tls_version\":\"TLSv1.3\","
                                "\"tls_leaf_days_left\":30}}"),
                        "TLSv1.3, cert 30 days left");
    assert_string_equal(text_of("{\"kind\":\"dns\",\"values\":{\"addresses\":[\"10.0.0.1\","
                                "\"10.0.0.2\"],\"resolve_ms\":1.24}}"),
                        "2 addresses in 1.2 ms");
    assert_string_equal(
        text_of("{\"kind\":\"nodeCondition\",\"values\":{\"condition_status\":\"False\"}}"),
        "condition False");
}

static void node_kinds(void **state)
{
    (void)state;
    assert_string_equal(text_of("{\"kind\":\"disk\",\"values\":{\"used_percent\":20.6,"
                                "\"size_bytes\":26843545600,\"used_bytes\":1}}"),
                        "20.6% used of 25 GiB");
    assert_string_equal(text_of("{\"kind\":\"disk\",\"values\":{\"inodes_used_percent\":4.04,"
                                "\"inodes_total\":1600000}}"),
                        "4% of inodes used (1600000)");
    assert_string_equal(text_of("{\"kind\":\"load\",\"values\":{\"load1\":0.89000000000000001,"
                                "\"load5\":0.76,\"load15\":0.6,\"cpus\":2,\"load_per_cpu\":0.38,"
                                "\"load_per_cpu_minutes\":5}}"),
                        "0.38 per CPU over 5 min (load 0.89 0.76 0.60, 2 CPUs)");
    assert_string_equal(text_of("{\"kind\":\"memory\",\"values\":{\"mem_available_percent\":38.25,"
                                "\"mem_total_bytes\":25769803776}}"),
                        "38.3% available of 24 GiB");
    assert_string_equal(text_of("{\"kind\":\"process\",\"values\":{\"count\":3}}"), "3 running");
    assert_string_equal(text_of("{\"kind\":\"process\",\"values\":{\"count\":0}}"), "none running");
    assert_string_equal(text_of("{\"kind\":\"file\",\"values\":{\"exists\":false}}"), "missing");
    assert_string_equal(text_of("{\"kind\":\"file\",\"values\":{\"exists\":true,\"size_bytes\":"
                                "1536,\"age_seconds\":300.5}}"),
                        "present, 1.5 KiB, 5 min old");
}

static void wrong_or_missing(void **state)
{
    char small[8];
    json_t *r;

    (void)state;
    /* a string where a number belongs is left out; so is a kind nobody knows */
    assert_string_equal(text_of("{\"kind\":\"disk\",\"values\":{\"used_percent\":\"20\"}}"), "");
    assert_string_equal(text_of("{\"kind\":\"ftp\",\"values\":{\"count\":1}}"), "");
    assert_string_equal(text_of("{\"kind\":\"load\",\"values\":[]}"), "");
    assert_string_equal(text_of("{\"values\":{\"count\":1}}"), "");
    /* out of any range (a hand-edited value in etcd): printed, no overflow */
    assert_int_equal(
        strncmp(text_of("{\"kind\":\"tls\",\"values\":{\"tls_leaf_days_left\":1e300}}"),
                "cert 1000000000000000052504760255204420248704468581108159", 57),
        0);
    assert_int_equal(
        strlen(text_of("{\"kind\":\"tls\",\"values\":{\"tls_leaf_days_left\":1e300}}")),
        255); /* cut to the buffer */
    assert_string_equal(text_of("{\"kind\":\"disk\",\"values\":{\"used_percent\":1e300}}"),
                        "0% used");
    /* a part of the values: what is there is shown */
    assert_string_equal(text_of("{\"kind\":\"load\",\"values\":{\"load_per_cpu\":1.5}}"),
                        "1.50 per CPU");
    /* cut to the buffer, NUL-terminated */
    r = json_loads("{\"kind\":\"disk\",\"values\":{\"used_percent\":20.6,\"size_bytes\":1e12}}", 0,
                   NULL);
    assert_non_null(r);
    result_text_values(r, small, sizeof(small));
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, "20.6% u", sizeof(small));
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(units),
        cmocka_unit_test(endpoint_kinds),
        cmocka_unit_test(node_kinds),
        cmocka_unit_test(wrong_or_missing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
