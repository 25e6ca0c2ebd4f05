/* test-dashboard.c - the dashboard's assets and its messages about HostInspections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/dashboard.h"

static const struct http_asset *find(const char *path)
{
    size_t n;
    const struct http_asset *a = dashboard_assets(&n);

    for (size_t i = 0; i < n; i++)
        if (!strcmp(a[i].path, path))
            return &a[i];
    return NULL;
}

static bool has(const struct http_asset *a, const char *text)
{
    return memmem(a->data, a->len, text, strlen(text)) != NULL;
}

static void assets_are_the_page_script_and_stylesheet(void **state)
{
    const struct http_asset *page = find("/"), *js = find("/dashboard.js"),
                            *css = find("/dashboard.css");

    (void)state;
    assert_non_null(page);
    assert_non_null(js);
    assert_non_null(css);
    assert_string_equal(page->content_type, "text/html; charset=utf-8");
    assert_string_equal(js->content_type, "text/javascript; charset=utf-8");
    assert_string_equal(css->content_type, "text/css; charset=utf-8");
    /* the page loads its own script and stylesheet (relative: the same origin), no inline code */
    assert_true(has(page, "<script src=\"dashboard.js\" defer></script>"));
    assert_true(has(page, "href=\"dashboard.css\""));
    assert_false(has(page, "<script>"));
    assert_false(has(page, "http://") || has(page, "https://"));
    assert_false(has(js, "http://") || has(js, "https://"));
    /* the script opens the dashboard's protocol and never writes data as HTML */
    assert_true(has(js, "'" DASHBOARD_PROTOCOL "'"));
    assert_false(has(js, "innerHTML"));
    assert_null(find("/ws"));
}

static void inspection_message_keeps_what_the_page_shows(void **state)
{
    char big[3000];
    json_t *obj;
    char *text;
    json_t *m;

    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    obj = json_pack(
        "{s:{s:s,s:s,s:i,s:{s:s}},s:{s:b,s:s},s:{s:i,s:s,s:{s:i,s:i,s:i,s:i},s:[{s:s,s:s,s:s,s:"
        "s,s:s},{s:s,s:s,s:s}],s:[]}}",
        "metadata", "namespace", "ns", "name", "web", "generation", 3, "annotations", "secret",
        "no", "spec", "suspend", 1, "token", "no", "status", "observedGeneration", 3, "lastRunTime",
        "2026-01-01T00:00:00Z", "summary", "ok", 1, "warn", 0, "crit", 2, "unknown", 0,
        "conditions", "type", "Ready", "status", "True", "reason", "RunSucceeded", "message", big,
        "lastTransitionTime", "t", "type", "Degraded", "status", "True", "reason", "ChecksFailing",
        "failingChecks");
    assert_non_null(obj);
    text = dashboard_inspection_json(obj);
    assert_non_null(text);
    m = json_loads(text, 0, NULL);
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "type")), "inspection");
    assert_string_equal(json_string_value(json_object_get(m, "namespace")), "ns");
    assert_string_equal(json_string_value(json_object_get(m, "name")), "web");
    assert_int_equal(json_integer_value(json_object_get(m, "generation")), 3);
    assert_true(json_is_true(json_object_get(m, "suspend")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "summary"), "crit")), 2);
    assert_int_equal(json_array_size(json_object_get(m, "conditions")), 2);
    /* a long message is cut at 1024 bytes */
    assert_int_equal(json_string_length(json_object_get(
                         json_array_get(json_object_get(m, "conditions"), 0), "message")),
                     1024);
    /* nothing else of the object: no annotations, spec fields or other status */
    assert_null(strstr(text, "secret"));
    assert_null(strstr(text, "token"));
    assert_null(strstr(text, "failingChecks"));
    json_decref(m);
    hp_free(text);
    /* no namespace or name: no message */
    json_object_del(json_object_get(obj, "metadata"), "namespace");
    assert_null(dashboard_inspection_json(obj));
    json_decref(obj);
    text = dashboard_deleted_json("ns", "web");
    assert_string_equal(text, "{\"type\":\"deleted\",\"namespace\":\"ns\",\"name\":\"web\"}");
    hp_free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(assets_are_the_page_script_and_stylesheet),
        cmocka_unit_test(inspection_message_keeps_what_the_page_shows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
