/* test-spec_cache.c - unit tests of controller/reconcile/spec_cache.c: a spec is parsed (and its
 * regular expressions compiled) once per uid and generation, refusals are cached with their
 * reason, and references outlive the entry they came from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/spec_cache.h"

static json_t *hi(const char *ns, const char *uid, int gen, const char *checks)
{
    char text[1024];
    json_error_t je;
    json_t *j;

    snprintf(text, sizeof(text),
             "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"x\",\"uid\":\"%s\",\"generation\":%d},"
             "\"spec\":{\"checks\":%s}}",
             ns, uid, gen, checks);
    j = json_loads(text, 0, &je);
    if (!j)
        fail_msg("bad test JSON: %s: %s", je.text, text);
    return j;
}

#define HTTP_CHECK                                                                                 \
    "[{\"name\":\"h\",\"http\":{\"url\":\"http://127.0.0.1/\",\"bodyRegex\":\"ok\"}}]"

static void parsed_once_per_generation(void **state)
{
    struct spec_cache *c = NULL;
    struct spec_ref *a = NULL, *b = NULL, *d = NULL;
    struct spec_cache_stats st;
    json_t *g1 = hi("ns", "u1", 1, HTTP_CHECK), *g2 = hi("ns", "u1", 2, HTTP_CHECK),
           *other = hi("ns", "u2", 2, HTTP_CHECK);

    (void)state;
    assert_int_equal(spec_cache_new(NULL, 0, &c), HP_OK);
    assert_int_equal(spec_cache_get(c, "ns/x", g1, &a), HP_OK);
    assert_int_equal(spec_cache_get(c, "ns/x", g1, &b), HP_OK);
    assert_ptr_equal(spec_ref_spec(a), spec_ref_spec(b)); /* the same compiled spec */
    spec_ref_put(b);
    spec_cache_stats(c, &st);
    assert_int_equal(st.parses, 1);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.entries, 1);
    /* a new generation is parsed again; the old reference stays usable */
    assert_int_equal(spec_cache_get(c, "ns/x", g2, &b), HP_OK);
    assert_ptr_not_equal(spec_ref_spec(a), spec_ref_spec(b));
    assert_int_equal(spec_ref_spec(a)->n_checks, 1);
    assert_true(spec_ref_spec(a)->checks[0].u.http.has_body_regex);
    /* so is a new object of the same name (deleted and created again: a new uid) */
    assert_int_equal(spec_cache_get(c, "ns/x", other, &d), HP_OK);
    spec_cache_stats(c, &st);
    assert_int_equal(st.parses, 3);
    assert_int_equal(st.entries, 1);
    spec_cache_drop(c, "ns/x");
    spec_cache_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_string_equal(spec_ref_spec(d)->checks[0].name, "h"); /* still held */
    spec_ref_put(a);
    spec_ref_put(b);
    spec_ref_put(d);
    spec_ref_put(NULL);
    spec_cache_free(c);
    json_decref(g1);
    json_decref(g2);
    json_decref(other);
}

static void refusals_are_cached_with_their_reason(void **state)
{
    struct inspect_policy pol;
    struct inspect_policy_flags f = {"ops", false, NULL, NULL, 0};
    struct spec_cache *c = NULL;
    struct spec_ref *r = NULL;
    struct spec_cache_stats st;
    struct hp_err err = {0};
    json_t *bad = hi("ns", "u1", 1,
                     "[{\"name\":\"h\",\"http\":{\"url\":\"http://x/\","
                     "\"bodyRegex\":\"a*{1,100}{1,100}{1,100}\"}}]"),
           *forbidden = hi("team", "u2", 1, "[{\"name\":\"d\",\"disk\":{}}]"),
           *allowed = hi("ops", "u3", 1, "[{\"name\":\"d\",\"disk\":{}}]");

    (void)state;
    assert_int_equal(inspect_policy_init(&pol, &f, &err), HP_OK);
    assert_int_equal(spec_cache_new(&pol, 0, &c), HP_OK);
    assert_int_equal(spec_cache_get(c, "ns/x", bad, &r), HP_OK);
    assert_null(spec_ref_spec(r));
    assert_int_equal(spec_ref_verdict(r, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "spec.checks[0].http.bodyRegex");
    spec_ref_put(r);
    assert_int_equal(spec_cache_get(c, "ns/x", bad, &r), HP_OK); /* not compiled again */
    assert_int_equal(spec_ref_verdict(r, &err), HP_ERR_INVALID);
    spec_ref_put(r);
    spec_cache_stats(c, &st);
    assert_int_equal(st.parses, 1);
    assert_int_equal(spec_cache_get(c, "team/x", forbidden, &r), HP_OK);
    assert_int_equal(spec_ref_verdict(r, &err), HP_ERR_AUTH);
    assert_non_null(strstr(err.msg, "--node-checks-namespaces"));
    spec_ref_put(r);
    assert_int_equal(spec_cache_get(c, "ops/x", allowed, &r), HP_OK);
    assert_int_equal(spec_ref_verdict(r, &err), HP_OK);
    assert_non_null(spec_ref_spec(r));
    spec_ref_put(r);
    spec_cache_free(c);
    inspect_policy_release(&pol);
    json_decref(bad);
    json_decref(forbidden);
    json_decref(allowed);
}

/* Past its byte cap the cache drops the least recently used entries; references held stay
 * valid, and a dropped key is parsed again at its next lookup. */
static void the_byte_cap_drops_the_least_recently_used(void **state)
{
    struct spec_cache *c = NULL;
    struct spec_ref *r = NULL, *held = NULL;
    struct spec_cache_stats st;
    json_t *o[4];
    char uid[16], key[16];
    int i;

    (void)state;
    assert_int_equal(spec_cache_new(NULL, 6000, &c), HP_OK); /* room for two or three */
    for (i = 0; i < 4; i++) {
        snprintf(uid, sizeof(uid), "u%d", i);
        o[i] = hi("ns", uid, 1, HTTP_CHECK);
    }
    for (i = 0; i < 4; i++) {
        snprintf(key, sizeof(key), "ns/%d", i);
        assert_int_equal(spec_cache_get(c, key, o[i], &r), HP_OK);
        if (i == 0)
            held = r;
        else
            spec_ref_put(r);
        if (i == 1) { /* 0 used again: 1 is now the oldest */
            assert_int_equal(spec_cache_get(c, "ns/0", o[0], &r), HP_OK);
            spec_ref_put(r);
        }
    }
    spec_cache_stats(c, &st);
    assert_true(st.evictions >= 1);
    assert_true(st.bytes <= 6000);
    assert_true(st.entries < 4);
    assert_string_equal(spec_ref_spec(held)->checks[0].name, "h"); /* still valid */
    spec_ref_put(held);
    /* the oldest went first: looking 1 up again parses it */
    spec_cache_stats(c, &st);
    assert_int_equal(spec_cache_get(c, "ns/1", o[1], &r), HP_OK);
    spec_ref_put(r);
    {
        struct spec_cache_stats st2;

        spec_cache_stats(c, &st2);
        assert_int_equal(st2.parses, st.parses + 1);
    }
    spec_cache_free(c);
    for (i = 0; i < 4; i++)
        json_decref(o[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parsed_once_per_generation),
        cmocka_unit_test(refusals_are_cached_with_their_reason),
        cmocka_unit_test(the_byte_cap_drops_the_least_recently_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
