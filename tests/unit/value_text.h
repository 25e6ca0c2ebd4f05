/* value_text.h - for the unit tests of the modules that build result values (probe, host_check):
 * a value as its text is stored and shown, i.e. dumped with CHECK_RESULT_JSON_REALS, and the
 * check that it carries no more digits than its unit's precision (docs/results.md, "Numbers").
 * Include after <cmocka.h>. */
#ifndef HOSTPATROL_TEST_VALUE_TEXT_H
#define HOSTPATROL_TEST_VALUE_TEXT_H

#include <jansson.h>
#include <string.h>

#include "hostpatrol/check_result.h"

/* value_text: r->values[key] as stored, into buf (cap > 1); the test fails if it is missing. */
static inline const char *value_text(const struct check_result *r, const char *key, char *buf,
                                     size_t cap)
{
    json_t *v = json_object_get(r->values, key);
    size_t n;

    if (!v)
        fail_msg("values.%s missing", key);
    n = json_dumpb(v, buf, cap - 1, JSON_ENCODE_ANY | CHECK_RESULT_JSON_REALS);
    if (!n || n > cap - 1)
        fail_msg("values.%s does not dump into %zu bytes", key, cap);
    buf[n] = '\0';
    return buf;
}

/* values_text: the whole values object as stored (keys in the order they were set), into buf */
static inline const char *values_text(const struct check_result *r, char *buf, size_t cap)
{
    size_t n = json_dumpb(r->values, buf, cap - 1, JSON_COMPACT | CHECK_RESULT_JSON_REALS);

    if (!n || n > cap - 1)
        fail_msg("values do not dump into %zu bytes", cap);
    buf[n] = '\0';
    return buf;
}

/* assert_value_digits: r->values[key] is printed as a plain number (no exponent) with at most
 * `decimals` digits after the point, or, decimals < 0, as an integer (bytes, counts). So
 * "0.03" passes for 3 and "0.029999999999999999" or "0.0299" do not. */
static inline void assert_value_digits(const struct check_result *r, const char *key, int decimals)
{
    char buf[64];
    const char *t = value_text(r, key, buf, sizeof(buf)), *p = t;
    size_t ints, frac;

    if (*p == '-')
        p++;
    ints = strspn(p, "0123456789");
    p += ints;
    if (!ints || (decimals < 0 && *p) || (decimals >= 0 && *p != '.'))
        fail_msg("values.%s is %s: not %s", key, t, decimals < 0 ? "an integer" : "a real");
    if (decimals < 0)
        return;
    frac = strspn(p + 1, "0123456789");
    if (!frac || frac > (size_t)decimals || p[1 + frac])
        fail_msg("values.%s is %s: more than %d decimals, or not a plain number", key, t, decimals);
}

#endif
