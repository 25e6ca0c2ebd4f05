/* safe_regex.c - bounded-cost regular expressions on PCRE2 (see include/hostpatrol/safe_regex.h).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "hostpatrol/safe_regex.h"

#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "hostpatrol/alloc.h"

struct safe_regex {
    pcre2_code *code;
    pcre2_match_context *limits; /* read-only after compile: copied by each match */
    size_t size;                 /* bytes of the compiled pattern */
};

/* The time budget of one search. PCRE2's match limit restarts at every start position, so
 * "status.*ok" over a large body is quadratic without ever reaching it: every pattern is
 * compiled with automatic callouts, and the callout looks at the clock now and then. */
struct budget {
    int64_t deadline_ns;
    unsigned calls;
};

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int on_callout(pcre2_callout_block *block, void *data)
{
    struct budget *b = data;

    (void)block;
    if (++b->calls % 16) /* a callout may come after a long scan ("a+b" at one position) */
        return 0;
    return now_ns() < b->deadline_ns ? 0 : PCRE2_ERROR_CALLOUT; /* abandons the search */
}

hp_rc safe_regex_compile(const char *pattern, struct safe_regex **out, char *why, size_t why_cap)
{
    pcre2_compile_context *cc = NULL;
    struct safe_regex *re = NULL;
    PCRE2_SIZE where = 0;
    int code = 0;
    hp_rc rc = HP_OK;

    *out = NULL;
    if (why_cap)
        why[0] = '\0';
    re = hp_calloc(1, sizeof(*re));
    cc = pcre2_compile_context_create(NULL);
    if (!re || !cc) {
        rc = HP_ERR_NOMEM;
        goto out;
    }
    pcre2_set_max_pattern_length(cc, SAFE_REGEX_MAX_PATTERN);
    pcre2_set_parens_nest_limit(cc, SAFE_REGEX_MAX_NESTING);
    /* UTF: patterns are UTF-8 text; MATCH_INVALID_UTF: a subject may hold any bytes (a binary
     * body), invalid sequences simply match nothing. NEVER_BACKSLASH_C: \C could split a
     * character. */
    re->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C |
                                 PCRE2_AUTO_CALLOUT,
                             &code, &where, cc);
    if (!re->code) {
        PCRE2_UCHAR msg[160];

        if (code == PCRE2_ERROR_NOMEMORY) {
            rc = HP_ERR_NOMEM;
            goto out;
        }
        if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", code);
        snprintf(why, why_cap, "%s at offset %zu", (const char *)msg, (size_t)where);
        rc = HP_ERR_INVALID;
        goto out;
    }
    if (pcre2_pattern_info(re->code, PCRE2_INFO_SIZE, &re->size) ||
        re->size > SAFE_REGEX_MAX_COMPILED) {
        snprintf(why, why_cap,
                 "compiles to %zu bytes, above the limit of %d (counted repeats "
                 "like {1000} multiply the pattern)",
                 (size_t)re->size, SAFE_REGEX_MAX_COMPILED);
        rc = HP_ERR_INVALID;
        goto out;
    }
    re->limits = pcre2_match_context_create(NULL);
    if (!re->limits) {
        rc = HP_ERR_NOMEM;
        goto out;
    }
    pcre2_set_match_limit(re->limits, SAFE_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(re->limits, SAFE_REGEX_DEPTH_LIMIT);
    pcre2_set_heap_limit(re->limits, SAFE_REGEX_HEAP_LIMIT_KB);
    *out = re;
    re = NULL;
out:
    pcre2_compile_context_free(cc);
    safe_regex_free(re);
    return rc;
}

enum safe_regex_result safe_regex_match(const struct safe_regex *re, const char *subject,
                                        size_t len)
{
    return safe_regex_match_until(re, subject, len, INT64_MAX);
}

enum safe_regex_result safe_regex_match_until(const struct safe_regex *re, const char *subject,
                                              size_t len, int64_t deadline_ns)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    pcre2_match_context *mc = pcre2_match_context_copy(re->limits);
    struct budget b = {now_ns() + (int64_t)SAFE_REGEX_TIME_LIMIT_MS * 1000000, 0};
    int n = PCRE2_ERROR_NOMEMORY;

    if (deadline_ns < b.deadline_ns)
        b.deadline_ns = deadline_ns;
    if (b.deadline_ns <= now_ns()) {
        n = PCRE2_ERROR_CALLOUT; /* no time left: not even started */
    } else if (md && mc) {
        pcre2_set_callout(mc, on_callout, &b);
        n = pcre2_match(re->code, (PCRE2_SPTR)(subject ? subject : ""), subject ? len : 0, 0, 0, md,
                        mc);
    }
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    if (n >= 0)
        return SAFE_REGEX_MATCH;
    return n == PCRE2_ERROR_NOMATCH ? SAFE_REGEX_NO_MATCH : SAFE_REGEX_TOO_COSTLY;
}

size_t safe_regex_size(const struct safe_regex *re)
{
    return re ? (size_t)re->size : 0;
}

void safe_regex_free(struct safe_regex *re)
{
    if (!re)
        return;
    pcre2_match_context_free(re->limits);
    pcre2_code_free(re->code);
    hp_free(re);
}
