/* test-review_cache.c - unit tests of controller/server/review_cache.c: keys apart by kind,
 * token and attribute; expiry; replacement; the bound (an expired entry, else the soonest to
 * expire, makes room); user references kept and handed out (leak-checked under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/review_cache.h"

#define S 1000000000LL /* ns per second */

static void keys_differ_by_kind_token_and_attr(void **state)
{
    unsigned char a[REVIEW_KEY_LEN], b[REVIEW_KEY_LEN];

    (void)state;
    review_cache_key("authn", "tok", NULL, a);
    review_cache_key("authn", "tok", "", b);
    assert_memory_equal(a, b, REVIEW_KEY_LEN); /* NULL reads as "" */
    review_cache_key("authz", "tok", NULL, b);
    assert_memory_not_equal(a, b, REVIEW_KEY_LEN);
    review_cache_key("authn", "tok2", NULL, b);
    assert_memory_not_equal(a, b, REVIEW_KEY_LEN);
    /* the separator: ("ab", "c") is not ("a", "bc") */
    review_cache_key("k", "ab", "c", a);
    review_cache_key("k", "a", "bc", b);
    assert_memory_not_equal(a, b, REVIEW_KEY_LEN);
    /* SHA-256 of "authn\0tok\0\0" is stable: a digest, not the token */
    review_cache_key("authn", "tok", NULL, a);
    assert_null(memmem(a, REVIEW_KEY_LEN, "tok", 3));
}

static void get_put_expire_replace(void **state)
{
    struct review_cache *c = NULL;
    struct review_verdict v = {0};
    unsigned char k[REVIEW_KEY_LEN];
    json_t *user = json_pack("{s:s}", "username", "alice");

    (void)state;
    assert_int_equal(review_cache_new(4, &c), HP_OK);
    review_cache_key("authn", "t", NULL, k);
    assert_false(review_cache_get(c, k, 0, &v));
    review_cache_put(c, k, 10 * S, 200, "", user);
    json_decref(user); /* the cache holds its own reference */
    assert_true(review_cache_get(c, k, 9 * S, &v));
    assert_int_equal(v.status, 200);
    assert_string_equal(json_string_value(json_object_get(v.user, "username")), "alice");
    json_decref(v.user);
    /* expired at its expiry */
    assert_false(review_cache_get(c, k, 10 * S, &v));
    /* replaced in place: one entry, new verdict and message, no user */
    review_cache_put(c, k, 20 * S, 403, "Forbidden: no", NULL);
    assert_int_equal(review_cache_len(c), 1);
    assert_true(review_cache_get(c, k, 11 * S, &v));
    assert_int_equal(v.status, 403);
    assert_string_equal(v.msg, "Forbidden: no");
    assert_null(v.user);
    review_cache_free(c);
    review_cache_free(NULL);
    assert_int_equal(review_cache_new(0, &c), HP_ERR_INVALID);
}

static void bounded_evicts_expired_then_soonest(void **state)
{
    struct review_cache *c = NULL;
    struct review_verdict v;
    unsigned char k[8][REVIEW_KEY_LEN];
    char tok[16];
    json_t *user = json_object();

    (void)state;
    for (int i = 0; i < 8; i++) {
        snprintf(tok, sizeof(tok), "t%d", i);
        review_cache_key("authn", tok, NULL, k[i]);
    }
    assert_int_equal(review_cache_new(3, &c), HP_OK);
    review_cache_put(c, k[0], 30 * S, 200, "", user);
    review_cache_put(c, k[1], 10 * S, 200, "", user); /* expires first */
    review_cache_put(c, k[2], 20 * S, 200, "", user);
    review_cache_put(c, k[3], 40 * S, 200, "", user); /* full: k[1] goes */
    assert_int_equal(review_cache_len(c), 3);
    assert_false(review_cache_get(c, k[1], 0, &v));
    assert_true(review_cache_get(c, k[0], 0, &v));
    json_decref(v.user);
    assert_true(review_cache_get(c, k[2], 0, &v));
    json_decref(v.user);
    assert_true(review_cache_get(c, k[3], 0, &v));
    json_decref(v.user);
    /* many more than fit: still 3, the latest present */
    for (int i = 4; i < 8; i++)
        review_cache_put(c, k[i], (50 + i) * S, 401, "x", NULL);
    assert_int_equal(review_cache_len(c), 3);
    assert_true(review_cache_get(c, k[7], 0, &v));
    assert_int_equal(v.status, 401);
    json_decref(user);
    review_cache_free(c); /* the references of evicted and kept entries: none leaks */
}

static void long_messages_are_truncated(void **state)
{
    struct review_cache *c = NULL;
    struct review_verdict v;
    unsigned char k[REVIEW_KEY_LEN];
    char msg[1000];

    (void)state;
    memset(msg, 'm', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    assert_int_equal(review_cache_new(1, &c), HP_OK);
    review_cache_key("authz", "t", "/metrics", k);
    review_cache_put(c, k, S, 503, msg, NULL);
    assert_true(review_cache_get(c, k, 0, &v));
    assert_int_equal(strlen(v.msg), REVIEW_MSG_MAX - 1);
    review_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_differ_by_kind_token_and_attr),
        cmocka_unit_test(get_put_expire_replace),
        cmocka_unit_test(bounded_evicts_expired_then_soonest),
        cmocka_unit_test(long_messages_are_truncated),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
