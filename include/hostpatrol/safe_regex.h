/*
 * safe_regex.h - regular expressions with bounded cost for patterns from untrusted resources
 * (bodyRegex, cmdlineRegex), on PCRE2 (Debian's libpcre2-8).
 *
 * Why PCRE2: it is a C library in Debian with explicit limits at both ends. Compiling is bounded
 * by the pattern length (SAFE_REGEX_MAX_PATTERN), the nesting of parentheses and the compiled
 * pattern's size (SAFE_REGEX_MAX_COMPILED: a spec's patterns stay in memory while it exists), so a
 * pattern like "a*{1,100}{1,100}{1,100}" is an error, not a stack overflow. Matching is bounded by
 * a match limit, a backtracking depth limit and a heap limit (SAFE_REGEX_MATCH_LIMIT ...) and,
 * since those limits start again at every position of the subject, by time: a search stops after
 * SAFE_REGEX_TIME_LIMIT_MS (checked in automatic callouts). "(a+)+$" or "status.*ok" over a 1 MiB
 * body end with SAFE_REGEX_TOO_COSTLY instead of running for minutes or hours. A linear-time engine
 * (RE2) has only a C++ API in Debian.
 *
 * Syntax: PCRE2's, which takes the RE2 syntax users know from Prometheus and blackbox_exporter
 * ((?i), \d, \s, \b, [[:alpha:]], non-greedy *?, (?P<name>...)) and more. Patterns are UTF-8.
 * A match is searched anywhere in the subject (anchor with ^ and $).
 *
 * Thread-safety: a compiled safe_regex is immutable; safe_regex_match may run on it from many
 * threads at once.
 */
#ifndef HOSTPATROL_SAFE_REGEX_H
#define HOSTPATROL_SAFE_REGEX_H

#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/rc.h"

#define SAFE_REGEX_MAX_PATTERN   1024    /* bytes; the CRD's maxLength */
#define SAFE_REGEX_MAX_NESTING   32      /* parentheses */
#define SAFE_REGEX_MAX_COMPILED  16384   /* bytes of one compiled pattern */
#define SAFE_REGEX_MATCH_LIMIT   1000000 /* PCRE2 match() calls per search */
#define SAFE_REGEX_DEPTH_LIMIT   10000   /* backtracking depth */
#define SAFE_REGEX_HEAP_LIMIT_KB 4096    /* backtracking memory per search */
#define SAFE_REGEX_TIME_LIMIT_MS 100     /* one search, whatever the limits above allow */

struct safe_regex;

enum safe_regex_result {
    SAFE_REGEX_NO_MATCH = 0,
    SAFE_REGEX_MATCH = 1,
    SAFE_REGEX_TOO_COSTLY = -1, /* a limit was reached (or matching failed): not decided */
};

/* safe_regex_compile: *out (owned: safe_regex_free) compiled from pattern (borrowed). On a bad
 * pattern returns HP_ERR_INVALID with why (caller-owned, why_cap bytes) saying what and where,
 * e.g. "quantifier does not follow a repeatable item at offset 8"; HP_ERR_NOMEM. */
hp_rc safe_regex_compile(const char *pattern, struct safe_regex **out, char *why,
                         size_t why_cap) HP_WUR;

/* safe_regex_match: search len bytes of subject (borrowed; need not be NUL-terminated nor valid
 * UTF-8) for the pattern, within the limits above. */
enum safe_regex_result safe_regex_match(const struct safe_regex *re, const char *subject,
                                        size_t len);

/* safe_regex_match_until: safe_regex_match that also stops at deadline_ns (CLOCK_MONOTONIC,
 * hp_now_ns; INT64_MAX: none) when that comes before its own time limit: a search never outlives
 * the run that asked for it. A deadline already passed is SAFE_REGEX_TOO_COSTLY at once. */
enum safe_regex_result safe_regex_match_until(const struct safe_regex *re, const char *subject,
                                              size_t len, int64_t deadline_ns);

/* safe_regex_size: bytes of the compiled pattern (at most SAFE_REGEX_MAX_COMPILED); NULL: 0 */
size_t safe_regex_size(const struct safe_regex *re);

/* safe_regex_free: NULL is fine. */
void safe_regex_free(struct safe_regex *re);

#endif
