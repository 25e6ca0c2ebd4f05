/* test-status.c - unit tests of the apiserver-free part of controller/reconcile/status.c: the
 * new conditions list (a transition time kept while a status stays, other conditions kept
 * as they are, messages cut on a character boundary), what the informer's cache keeps of an
 * object, and the finalizer test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "json_text.h"
#include "reconcile/status.h"

#define OBJ                                                                                        \
    "{\"metadata\":{\"name\":\"x\",\"generation\":5,\"finalizers\":[\"other\"]},"                  \
    "\"status\":{\"conditions\":["                                                                 \
    "{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"T1\"},"                      \
    "{\"type\":\"Degraded\",\"status\":\"False\",\"lastTransitionTime\":\"T2\"},"                  \
    "{\"type\":\"Custom\",\"status\":\"True\",\"reason\":\"Theirs\"}]}}"

static const json_t *cond(const json_t *arr, size_t i, const char *field)
{
    return json_object_get(json_array_get(arr, i), field);
}

static void conditions_keep_transition_times_and_others(void **state)
{
    struct cond cs[3] = {{"Ready", "True", "RunSucceeded", "ok"},
                         {"Degraded", "True", "ChecksFailing", "1 crit"},
                         {"InvalidSpec", "False", "SpecValid", "the spec is valid"}};
    json_t *obj = json_text(OBJ), *arr = status_conditions_json(obj, cs, 3, 5, "NOW");

    (void)state;
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 4);
    assert_string_equal(json_string_value(cond(arr, 0, "lastTransitionTime")), "T1"); /* stays */
    assert_string_equal(json_string_value(cond(arr, 0, "message")), "ok");
    assert_int_equal(json_integer_value(cond(arr, 0, "observedGeneration")), 5);
    assert_string_equal(json_string_value(cond(arr, 1, "lastTransitionTime")), "NOW"); /* flip */
    assert_string_equal(json_string_value(cond(arr, 1, "reason")), "ChecksFailing");
    assert_string_equal(json_string_value(cond(arr, 2, "lastTransitionTime")), "NOW"); /* new */
    assert_string_equal(json_string_value(cond(arr, 3, "type")), "Custom"); /* not ours: kept */
    assert_string_equal(json_string_value(cond(arr, 3, "reason")), "Theirs");
    json_decref(arr);
    arr = status_conditions_json(NULL, cs, 1, 1, "NOW"); /* no object: only ours */
    assert_int_equal(json_array_size(arr), 1);
    json_decref(arr);
    json_decref(obj);
}

static void a_long_message_is_cut_on_a_character(void **state)
{
    struct cond c = {"Ready", "False", "CommitFailed", ""};
    json_t *arr;
    const char *m;

    (void)state;
    memset(c.message, 'a', sizeof(c.message) - 3);
    memcpy(c.message + sizeof(c.message) - 3, "\xc3\xa9", 2); /* é at the very end */
    c.message[sizeof(c.message) - 1] = '\0';
    c.message[sizeof(c.message) - 2] = '\0'; /* é cut in half */
    arr = status_conditions_json(NULL, &c, 1, 1, "NOW");
    m = json_string_value(cond(arr, 0, "message"));
    assert_non_null(m); /* jansson refuses invalid UTF-8: a cut character would make it NULL */
    assert_int_equal(strlen(m), sizeof(c.message) - 3);
    json_decref(arr);
}

static void old_conditions_are_read(void **state)
{
    json_t *obj = json_text(OBJ);

    (void)state;
    assert_non_null(status_old_condition(obj, "Degraded"));
    assert_null(status_old_condition(obj, "InvalidSpec"));
    assert_string_equal(status_old_cond_status(obj, "Ready"), "True");
    assert_string_equal(status_old_cond_status(obj, "InvalidSpec"), "Unknown");
    assert_int_equal(status_generation(obj), 5);
    assert_string_equal(status_str(obj, "metadata", "name"), "x");
    assert_null(status_str(obj, "metadata", "uid"));
    assert_null(status_str(NULL, "metadata", "uid"));
    json_decref(obj);
}

static void the_cache_keeps_what_the_reconciler_reads(void **state)
{
    json_t *obj = json_text(
        "{\"apiVersion\":\"v\",\"kind\":\"HostInspection\",\"metadata\":{\"name\":\"x\","
        "\"creationTimestamp\":\"T\"},\"spec\":{\"interval\":\"1m\"},\"status\":{"
        "\"summary\":{},\"failingChecks\":[],\"lastRunTime\":\"L\",\"nextRunTime\":\"N\","
        "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"R\",\"message\":"
        "\"M\"},"
        "{\"type\":\"InvalidSpec\",\"status\":\"True\",\"reason\":\"R\",\"message\":\"bad\"},"
        "{\"type\":\"Custom\",\"status\":\"True\",\"reason\":\"R\",\"message\":\"M\"}]}}");
    const json_t *st, *cs;

    (void)state;
    status_transform(obj);
    assert_null(json_object_get(obj, "apiVersion"));
    assert_null(json_object_get(obj, "kind"));
    assert_null(json_object_get(json_object_get(obj, "metadata"), "creationTimestamp"));
    assert_non_null(json_object_get(obj, "spec"));
    st = json_object_get(obj, "status");
    assert_null(json_object_get(st, "summary"));
    assert_null(json_object_get(st, "failingChecks"));
    assert_null(json_object_get(st, "nextRunTime"));
    assert_string_equal(status_str(st, "lastRunTime", NULL), "L");
    cs = json_object_get(st, "conditions");
    assert_null(cond(cs, 0, "reason"));
    assert_null(cond(cs, 0, "message"));
    assert_string_equal(json_string_value(cond(cs, 1, "message")), "bad"); /* a true InvalidSpec */
    assert_string_equal(json_string_value(cond(cs, 2, "message")), "M");   /* not ours */
    json_decref(obj);
}

static void the_finalizer_is_found(void **state)
{
    json_t *obj = json_text(OBJ);

    (void)state;
    assert_false(status_has_finalizer(obj));
    json_array_append_new(json_object_get(json_object_get(obj, "metadata"), "finalizers"),
                          json_string(RECONCILER_FINALIZER));
    assert_true(status_has_finalizer(obj));
    json_decref(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conditions_keep_transition_times_and_others),
        cmocka_unit_test(a_long_message_is_cut_on_a_character),
        cmocka_unit_test(old_conditions_are_read),
        cmocka_unit_test(the_cache_keeps_what_the_reconciler_reads),
        cmocka_unit_test(the_finalizer_is_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
