/* test-buildinfo.c - unit tests of controller/util/buildinfo.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/buildinfo.h"

static void every_field_is_set(void **state)
{
    struct hp_buildinfo bi;

    (void)state;
    hp_buildinfo_get(&bi);
    const char *fields[] = {bi.version, bi.commit, bi.compiler, bi.curl,
                            bi.jansson, bi.yaml,   bi.lws,      bi.openssl};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        assert_non_null(fields[i]);
        assert_true(strlen(fields[i]) > 0);
    }
    /* run-time versions, not compile-time constants */
    assert_string_equal(bi.curl, curl_version_info(CURLVERSION_NOW)->version);
    assert_string_equal(bi.jansson, jansson_version_str());
}

static void json_carries_the_same_values(void **state)
{
    struct hp_buildinfo bi;
    json_t *j;

    (void)state;
    hp_buildinfo_get(&bi);
    j = hp_buildinfo_json(&bi);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "version")), bi.version);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "libraries"), "libcurl")), bi.curl);
    json_decref(j);
}

/* Fail every allocation in turn: the result is NULL or complete, and nothing leaks (ASan). */
static void json_survives_every_allocation_failure(void **state)
{
    struct hp_buildinfo bi;
    int nulls = 0;

    (void)state;
    hp_alloc_install();
    hp_buildinfo_get(&bi);
    for (long n = 0; n < 64; n++) {
        json_t *j;

        hp_alloc_fail_after(n);
        j = hp_buildinfo_json(&bi);
        hp_alloc_fail_reset();
        if (!j) {
            nulls++;
            continue;
        }
        assert_non_null(json_object_get(json_object_get(j, "libraries"), "openssl"));
        json_decref(j);
    }
    assert_true(nulls > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_field_is_set),
        cmocka_unit_test(json_carries_the_same_values),
        cmocka_unit_test(json_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
