/* test-safe_regex.c - unit tests of controller/util/safe_regex.c: the patterns that crashed or
 * stalled glibc's regex are refused or stopped at their limits; RE2-style syntax works; any
 * bytes may be matched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "hostpatrol/safe_regex.h"

static struct safe_regex *compiled(const char *pattern)
{
    struct safe_regex *re = NULL;
    char why[200];

    if (safe_regex_compile(pattern, &re, why, sizeof(why)) != HP_OK)
        fail_msg("'%s' did not compile: %s", pattern, why);
    return re;
}

static int matches(const char *pattern, const char *subject)
{
    struct safe_regex *re = compiled(pattern);
    int r = safe_regex_match(re, subject, strlen(subject));

    safe_regex_free(re);
    return r;
}

static void re2_style_patterns_match(void **state)
{
    (void)state;
    assert_int_equal(matches("\"health\": *\"true\"", "{\"health\": \"true\"}"), SAFE_REGEX_MATCH);
    assert_int_equal(matches("(?i)^ok$", "OK"), SAFE_REGEX_MATCH);
    assert_int_equal(matches("\\d{3} \\w+\\s", "status 200 fine "), SAFE_REGEX_MATCH);
    assert_int_equal(matches("[[:alpha:]]+-\\d", "web-1"), SAFE_REGEX_MATCH);
    assert_int_equal(matches("(?P<v>v\\d+)\\.\\d", "v1.2"), SAFE_REGEX_MATCH);
    assert_int_equal(matches("a.*?b", "xaxxbx"), SAFE_REGEX_MATCH);
    assert_int_equal(matches("^postgres", "/usr/sbin/sshd -D"), SAFE_REGEX_NO_MATCH);
    assert_int_equal(matches("caf\xc3\xa9", "le caf\xc3\xa9"), SAFE_REGEX_MATCH);
}

static void any_bytes_may_be_matched(void **state)
{
    const char body[] = "\xff\xfe binary \x00 then ok";
    struct safe_regex *re = compiled("then ok");

    (void)state;
    assert_int_equal(safe_regex_match(re, body, sizeof(body) - 1), SAFE_REGEX_MATCH);
    assert_int_equal(safe_regex_match(re, body, 10), SAFE_REGEX_NO_MATCH); /* only len bytes */
    assert_int_equal(safe_regex_match(re, NULL, 0), SAFE_REGEX_NO_MATCH);
    safe_regex_free(re);
}

static void expect_refused(const char *pattern, const char *why_has)
{
    struct safe_regex *re = (struct safe_regex *)1;
    char why[200];

    assert_int_equal(safe_regex_compile(pattern, &re, why, sizeof(why)), HP_ERR_INVALID);
    assert_null(re);
    if (!strstr(why, why_has))
        fail_msg("'%s' refused with '%s', want '%s'", pattern, why, why_has);
}

/* glibc's regcomp overflowed its stack on the first (SIGSEGV) and took 1.6 GB for the second */
static void costly_patterns_are_refused_at_compile(void **state)
{
    char deep[128];

    (void)state;
    expect_refused("a*{1,100}{1,100}{1,100}", "at offset 8");
    expect_refused("a+++++++++++++++++++++", "quantifier does not follow a repeatable item");
    expect_refused("(unclosed", "missing closing parenthesis");
    memset(deep, 0, sizeof(deep));
    memset(deep, '(', 40);
    deep[40] = 'x';
    memset(deep + 41, ')', 40);
    expect_refused(deep, "too deeply nested");
    {
        char *longp = malloc(SAFE_REGEX_MAX_PATTERN + 2);

        assert_non_null(longp);
        memset(longp, 'a', SAFE_REGEX_MAX_PATTERN + 1);
        longp[SAFE_REGEX_MAX_PATTERN + 1] = '\0';
        expect_refused(longp, "longer than the limit");
        free(longp);
    }
}

/* catastrophic backtracking over a 1 MiB body stops at the limits, undecided */
static void backtracking_stops_at_its_limits(void **state)
{
    size_t n = 1u << 20;
    char *body = malloc(n);
    struct safe_regex *nested = compiled("(a+)+$"), *alt = compiled("(a|aa)+$"),
                      *plain = compiled("hostpatrol_build_info");

    (void)state;
    assert_non_null(body);
    memset(body, 'a', n);
    body[n - 1] = 'b';
    assert_int_equal(safe_regex_match(nested, body, n), SAFE_REGEX_TOO_COSTLY);
    assert_int_equal(safe_regex_match(alt, body, n), SAFE_REGEX_TOO_COSTLY);
    /* a plain pattern over the same megabyte is simply decided */
    assert_int_equal(safe_regex_match(plain, body, n), SAFE_REGEX_NO_MATCH);
    memcpy(body + n / 2, "hostpatrol_build_info", 21);
    assert_int_equal(safe_regex_match(plain, body, n), SAFE_REGEX_MATCH);
    safe_regex_free(nested);
    safe_regex_free(alt);
    safe_regex_free(plain);
    free(body);
    safe_regex_free(NULL);
}

/* PCRE2's match limit starts again at every position: these never reach it, yet over a
 * megabyte they are quadratic (minutes). The time budget ends them, undecided. */
static void quadratic_searches_stop_at_the_time_budget(void **state)
{
    size_t n = 1u << 20, i;
    char *body = malloc(n);
    struct safe_regex *word = compiled("\\w*!"), *plus = compiled("a+b");

    (void)state;
    assert_non_null(body);
    /* a megabyte of 'a' ending in " !" / "xb": from every position the run of 'a's is scanned
     * again before the match fails there */
    memset(body, 'a', n);
    memcpy(body + n - 2, " !", 2);
    assert_int_equal(safe_regex_match(word, body, n), SAFE_REGEX_TOO_COSTLY);
    memcpy(body + n - 2, "xb", 2);
    assert_int_equal(safe_regex_match(plus, body, n), SAFE_REGEX_TOO_COSTLY);
    /* the same patterns where the text is ordinary are simply decided */
    for (i = 0; i < n; i++)
        body[i] = "lorem ipsum dolor sit amet\n"[i % 27];
    assert_int_equal(safe_regex_match(word, body, n), SAFE_REGEX_NO_MATCH);
    body[n / 2] = '!';
    assert_int_equal(safe_regex_match(word, body, n), SAFE_REGEX_MATCH);
    safe_regex_free(word);
    safe_regex_free(plus);
    free(body);
}

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A search never outlives its caller's deadline: with one already passed, even a trivial match
 * is not decided. */
static void searches_stop_at_the_callers_deadline(void **state)
{
    size_t n = 1u << 20;
    char *body = malloc(n);
    struct safe_regex *word = compiled("\\w*!");

    (void)state;
    assert_non_null(body);
    memset(body, 'a', n);
    memcpy(body + n - 2, " !", 2);
    assert_int_equal(safe_regex_match_until(word, "hi!", 3, mono_ns() - 1), SAFE_REGEX_TOO_COSTLY);
    assert_int_equal(safe_regex_match_until(word, "hi!", 3, INT64_MAX), SAFE_REGEX_MATCH);
    assert_int_equal(safe_regex_match_until(word, body, n, mono_ns() + 5 * 1000000),
                     SAFE_REGEX_TOO_COSTLY);
    safe_regex_free(word);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(re2_style_patterns_match),
        cmocka_unit_test(any_bytes_may_be_matched),
        cmocka_unit_test(costly_patterns_are_refused_at_compile),
        cmocka_unit_test(backtracking_stops_at_its_limits),
        cmocka_unit_test(quadratic_searches_stop_at_the_time_budget),
        cmocka_unit_test(searches_stop_at_the_callers_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
