/* test-inspection_spec.c - unit tests of controller/inspect/inspection_spec.c: defaults as the
 * CRD sets them, the placement of each check kind, and errors naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/check_result.h"
#include "hostpatrol/inspection_spec.h"

static hp_rc parse(const char *text, struct inspection_spec *s, struct hp_err *err)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    hp_rc rc;

    if (!j)
        fail_msg("bad test JSON: %s: %s", je.text, text);
    rc = inspection_spec_parse(j, s, err);
    json_decref(j);
    return rc;
}

static void full_spec_with_defaults(void **state)
{
    struct inspection_spec s;
    struct hp_err err = {0};

    (void)state;
    assert_int_equal(
        parse("{\"interval\":\"1m\",\"timeout\":\"5s\",\"nodeSelector\":{\"matchLabels\":"
              "{\"role\":\"web\"}},\"targets\":[{\"name\":\"api\",\"address\":\"10.0.0.1\"}],"
              "\"checks\":[{\"name\":\"h\",\"http\":{\"url\":\"https://x/healthz\","
              "\"headers\":{\"X-A\":\"b\"},\"expectStatus\":[200,204],\"bodyRegex\":\"ok$\"},"
              "\"tlsMinDaysLeft\":14},{\"name\":\"ssh\",\"tcp\":{\"port\":22,\"expect\":\"SSH-\"}},"
              "{\"name\":\"d\",\"disk\":{}},{\"name\":\"l\",\"load\":{}},{\"name\":\"m\","
              "\"memory\":{}},{\"name\":\"p\",\"process\":{\"cmdlineRegex\":\"^/usr/sbin/sshd\"}},"
              "{\"name\":\"r\",\"nodeCondition\":{\"type\":\"DiskPressure\"}},{\"name\":\"n\","
              "\"dns\":{\"name\":\"localhost\",\"expectAddresses\":[\"127.0.0.1\"]}}]}",
              &s, &err),
        HP_OK);
    assert_int_equal(s.interval_ms, 60000);
    assert_int_equal(s.timeout_ms, 5000);
    assert_non_null(s.node_selector);
    assert_int_equal(s.n_targets, 1);
    assert_string_equal(s.targets[0].address, "10.0.0.1");
    assert_int_equal(s.n_checks, 8);
    assert_int_equal(s.checks[0].kind, CHECK_HTTP);
    assert_string_equal(s.checks[0].u.http.method, "GET");
    assert_string_equal(s.checks[0].u.http.headers[0], "X-A: b");
    assert_null(s.checks[0].u.http.headers[1]);
    assert_int_equal(s.checks[0].u.http.n_expect_status, 2);
    assert_true(s.checks[0].u.http.has_body_regex);
    assert_int_equal(safe_regex_match(s.checks[0].u.http.body_regex, "all ok", 6),
                     SAFE_REGEX_MATCH);
    assert_int_equal(s.checks[0].tls_min_days_left, 14);
    assert_int_equal(s.checks[1].u.tcp.port, 22);
    assert_string_equal(s.checks[1].u.tcp.expect, "SSH-");
    assert_string_equal(s.checks[2].u.disk.path, "/");
    assert_int_equal(s.checks[2].u.disk.warn_percent, 80);
    assert_int_equal(s.checks[2].u.disk.crit_percent, 90);
    assert_int_equal(s.checks[3].u.load.window_min, 5);
    assert_true(s.checks[3].u.load.warn_per_cpu == 1.5 && s.checks[3].u.load.crit_per_cpu == 3);
    assert_int_equal(s.checks[4].u.memory.warn_available_percent, 15);
    assert_int_equal(s.checks[5].u.process.min_count, 1);
    assert_int_equal(s.checks[5].u.process.max_count, -1);
    assert_string_equal(s.checks[6].u.node_condition.expect, "False"); /* pressure: False */
    assert_int_equal(s.checks[7].kind, CHECK_DNS);
    assert_string_equal(s.checks[7].u.dns.expect_addrs[0], "127.0.0.1");
    assert_true(check_kind_is_endpoint(CHECK_TCP) && !check_kind_is_endpoint(CHECK_DISK));
    assert_true(check_kind_is_node_local(CHECK_FILE) &&
                !check_kind_is_node_local(CHECK_NODE_CONDITION));
    inspection_spec_release(&s);
    inspection_spec_release(&s); /* released twice: harmless */

    assert_int_equal(
        parse("{\"checks\":[{\"name\":\"r\",\"nodeCondition\":{\"type\":\"Ready\"}}]}", &s, &err),
        HP_OK);
    assert_int_equal(s.interval_ms, 30000); /* the CRD's defaults */
    assert_int_equal(s.timeout_ms, 10000);
    assert_string_equal(s.checks[0].u.node_condition.expect, "True");
    inspection_spec_release(&s);
}

static void errors_name_the_field(void **state)
{
    static const struct {
        const char *spec, *field, *text;
    } cases[] = {
        {"{\"checks\":[{\"name\":\"a\",\"http\":{\"url\":\"http://x/\",\"bodyRegex\":\"(\"}}]}",
         "spec.checks[0].http.bodyRegex", "regular expression"},
        {"{\"checks\":[{\"name\":\"a\",\"tcp\":{\"port\":22}}]}", "spec.checks[0].tcp",
         "spec.targets"},
        {"{\"checks\":[{\"name\":\"a\",\"tcp\":{\"port\":70000}}]}", "spec.checks[0].tcp.port",
         "out of range"},
        {"{\"interval\":\"10s\",\"timeout\":\"10s\",\"checks\":[{\"name\":\"a\",\"dns\":{\"name\":"
         "\"x\"}}]}",
         "spec.timeout", "shorter than spec.interval"},
        {"{\"interval\":\"soon\",\"checks\":[{\"name\":\"a\",\"dns\":{\"name\":\"x\"}}]}",
         "spec.interval", "soon"},
        {"{\"checks\":[]}", "spec.checks", "1 to 64"},
        {"{\"checks\":[{\"name\":\"a\",\"dns\":{\"name\":\"x\"}},{\"name\":\"a\",\"dns\":{\"name\":"
         "\"y\"}}]}",
         "spec.checks[1].name", "duplicates"},
        {"{\"checks\":[{\"name\":\"a\",\"dns\":{\"name\":\"x\"},\"tcp\":{\"port\":1}}]}",
         "spec.checks[0]", "exactly one"},
        {"{\"checks\":[{\"name\":\"a\",\"http\":{\"url\":\"http://x/\",\"headers\":{\"Bad Name\":"
         "\"v\"}}}]}",
         "spec.checks[0].http.headers", "Bad Name"},
        {"{\"checks\":[{\"name\":\"a\",\"disk\":{\"warnPercent\":95}}]}",
         "spec.checks[0].disk.warnPercent", "below critPercent"},
        {"{\"checks\":[{\"name\":\"a\",\"process\":{\"name\":\"x\",\"cmdlineRegex\":\"y\"}}]}",
         "spec.checks[0].process", "exactly one"},
        {"{\"checks\":[{\"name\":\"a\",\"load\":{\"warnPerCPU\":\"x\"}}]}",
         "spec.checks[0].load.warnPerCPU", "decimal"},
        {"{\"checks\":[{\"name\":\"a\",\"http\":{\"url\":\"http://x/"
         "\",\"bodyRegex\":\"(\\\\w*)\\\\g1!\"}}]}",
         "spec.checks[0].http.bodyRegex", "back-references"},
        {"{\"checks\":[{\"name\":\"a\",\"http\":{\"url\":\"http://x/"
         "\",\"bodyRegex\":\"(?<x>\\\\w*)\\\\k<x>\"}}]}",
         "spec.checks[0].http.bodyRegex", "back-references"},
        {"{\"checks\":[{\"name\":\"a\",\"process\":{\"cmdlineRegex\":\"(?P<n>a)(?P=n)\"}}]}",
         "spec.checks[0].process.cmdlineRegex", "recursion"},
        {"{\"checks\":[{\"name\":\"a\",\"process\":{\"cmdlineRegex\":\"(a|(?R))\"}}]}",
         "spec.checks[0].process.cmdlineRegex", "recursion"},
        /* what strtod alone takes but the CRD's pattern does not */
        {"{\"checks\":[{\"name\":\"a\",\"load\":{\"warnPerCPU\":\"0x10\"}}]}",
         "spec.checks[0].load.warnPerCPU", "decimal"},
        {"{\"checks\":[{\"name\":\"a\",\"load\":{\"critPerCPU\":\"inf\"}}]}",
         "spec.checks[0].load.critPerCPU", "decimal"},
        {"{\"checks\":[{\"name\":\"a\",\"load\":{\"warnPerCPU\":\"1e1\"}}]}",
         "spec.checks[0].load.warnPerCPU", "decimal"},
        {"{\"checks\":[{\"name\":\"a\",\"load\":{\"warnPerCPU\":\" 1\"}}]}",
         "spec.checks[0].load.warnPerCPU", "decimal"},
        {"{\"checks\":[{\"name\":\"a\",\"load\":{\"warnPerCPU\":\"1.\"}}]}",
         "spec.checks[0].load.warnPerCPU", "decimal"},
        {"{\"checks\":[{\"name\":\"a\",\"tcp\":{\"port\":1},\"tlsMinDaysLeft\":3}],\"targets\":"
         "[{\"name\":\"t\",\"address\":\"h\"}]}",
         "spec.checks[0].tlsMinDaysLeft", "only to http and tls"},
        {"{\"targets\":[{\"name\":\"t\"}],\"checks\":[{\"name\":\"a\",\"dns\":{\"name\":\"x\"}}]}",
         "spec.targets[0].address", "required"},
        {"{\"checks\":[{\"name\":\"a/b\",\"dns\":{\"name\":\"x\"}}]}", "spec.checks[0].name",
         "lower-case"},
        {"{\"checks\":[{\"name\":\"a\",\"http\":{\"url\":\"http://x/"
         "\",\"bodyRegex\":\"(a)\\\\1\"}}]}",
         "spec.checks[0].http.bodyRegex", "back-references"},
        {"{\"checks\":[{\"name\":\"a\",\"dns\":{\"name\":\"x\",\"expectAddresses\":[\"example."
         "com\"]}}]}",
         "spec.checks[0].dns.expectAddresses", "example.com"},
        {"{\"nodeSelector\":{\"matchExpressions\":[{\"key\":\"role\",\"operator\":\"Gt\","
         "\"values\":[\"1\"]}]},\"checks\":[{\"name\":\"a\",\"dns\":{\"name\":\"x\"}}]}",
         "spec.nodeSelector.matchExpressions[0].operator", "In, NotIn"},
        {"{\"nodeSelector\":{\"matchExpressions\":[{\"key\":\"role\",\"operator\":\"In\"}]},"
         "\"checks\":[{\"name\":\"a\",\"dns\":{\"name\":\"x\"}}]}",
         "spec.nodeSelector.matchExpressions[0].values", "must not be empty"},
        {"{\"targets\":[{\"name\":\"t\",\"address\":\"web.example.com \"}],\"checks\":[{\"name\":"
         "\"a\",\"tcp\":{\"port\":1}}]}",
         "spec.targets[0].address", "web.example.com "},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct inspection_spec s;
        struct hp_err err = {0};

        if (parse(cases[i].spec, &s, &err) != HP_ERR_INVALID)
            fail_msg("accepted: %s", cases[i].spec);
        inspection_spec_release(&s);
        if (strcmp(err.field, cases[i].field))
            fail_msg("%s: field '%s', want '%s' (%s)", cases[i].spec, err.field, cases[i].field,
                     err.msg);
        if (!strstr(err.msg, cases[i].text))
            fail_msg("%s: message '%s' lacks '%s'", cases[i].spec, err.msg, cases[i].text);
    }
}

static void result_json_form(void **state)
{
    struct check_result r;
    enum check_status st;
    json_t *j;

    (void)state;
    assert_int_equal(check_result_init(&r, "https", "api", CHECK_HTTP), HP_OK);
    assert_int_equal(r.status, CHECK_UNKNOWN); /* never OK before judged */
    assert_int_equal(check_result_judge(&r, CHECK_CRIT, "status %d, expected %d", 503, 200), HP_OK);
    json_object_set_new(r.values, "status_code", json_integer(503));
    j = check_result_to_json(&r, "controller", "run-1");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "CRIT");
    assert_string_equal(json_string_value(json_object_get(j, "reason")),
                        "status 503, expected 200");
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "http");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "values"), "status_code")), 503);
    assert_string_equal(json_string_value(json_object_get(j, "run")), "run-1");
    json_decref(j);
    check_result_release(&r);
    check_result_release(&r);
    assert_int_equal(check_status_parse("WARN", &st), HP_OK);
    assert_int_equal(st, CHECK_WARN);
    assert_int_equal(check_status_parse("warn", &st), HP_ERR_INVALID);
}

static void every_allocation_failure_is_clean(void **state)
{
    const char *text = "{\"targets\":[{\"name\":\"t\",\"address\":\"h\"}],\"checks\":[{\"name\":"
                       "\"a\",\"http\":{\"url\":\"http://x/\",\"headers\":{\"A\":\"b\"},"
                       "\"expectStatus\":[200],\"bodyRegex\":\"x\"}},{\"name\":\"b\",\"dns\":{"
                       "\"name\":\"x\",\"expectAddresses\":[\"1.2.3.4\"]}},{\"name\":\"c\","
                       "\"tcp\":{\"port\":1,\"send\":\"x\"}}]}";
    json_t *j = json_loads(text, 0, NULL);
    int failures = 0;

    (void)state;
    assert_non_null(j);
    for (long n = 0; n < 100; n++) {
        struct inspection_spec s;
        struct hp_err err = {0};
        hp_rc rc;

        hp_alloc_fail_after(n);
        rc = inspection_spec_parse(j, &s, &err);
        hp_alloc_fail_reset();
        inspection_spec_release(&s);
        if (rc) {
            assert_int_equal(rc, HP_ERR_NOMEM);
            failures++;
        }
    }
    assert_true(failures > 0);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_spec_with_defaults),
        cmocka_unit_test(errors_name_the_field),
        cmocka_unit_test(result_json_form),
        cmocka_unit_test(every_allocation_failure_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
