/*
 * check_result.h - the result of one check on one target or node: what lands in etcd and what
 * users query (documented in docs/results.md).
 *
 *   status     OK / WARN / CRIT / UNKNOWN. A probe that times out or errors is CRIT (the
 *              endpoint failed) or UNKNOWN (we could not tell, e.g. the run was cancelled);
 *              never silently OK.
 *   reason     why it is not OK, in words ("status 503, expected 200"); "" when OK.
 *   values     measured values, the unit in each name: {"total_ms": 12.5, "status_code": 200,
 *              "tls_leaf_days_left": 41.5, "tls_chain_min_days_left": 12.25, ...}, each
 *              rounded to its unit's precision by the setters below
 *   observed   wall-clock time the check finished (unix ms); duration_ms how long it took.
 *
 * Ownership: a check_result owns its strings and its values reference; check_result_release
 * frees them (NULL allowed) and leaves the struct zeroed.
 */
#ifndef HOSTPATROL_CHECK_RESULT_H
#define HOSTPATROL_CHECK_RESULT_H

#include <jansson.h>
#include <stdint.h>

#include "hostpatrol/inspection_spec.h"
#include "hostpatrol/rc.h"

enum check_status { CHECK_OK, CHECK_WARN, CHECK_CRIT, CHECK_UNKNOWN };
/* "OK" "WARN" "CRIT" "UNKNOWN"; static */
const char *check_status_name(enum check_status s);
/* check_status_parse: the inverse; HP_ERR_INVALID for anything else */
hp_rc check_status_parse(const char *s, enum check_status *out) HP_WUR;

struct check_result {
    char *check;  /* owned: the check's name */
    char *target; /* owned: target name, node name, or "-" */
    enum check_kind kind;
    enum check_status status;
    char *reason;        /* owned; "" when OK */
    json_t *values;      /* owned reference to an object (never NULL after check_result_init) */
    int64_t observed_ms; /* unix ms */
    int64_t duration_ms;
};

/* check_result_init: zero r and give it check/target (copied), kind, status UNKNOWN, reason
 * "not run", an empty values object. On HP_ERR_NOMEM r is released. */
hp_rc check_result_init(struct check_result *r, const char *check, const char *target,
                        enum check_kind kind) HP_WUR;
void check_result_release(struct check_result *r);

/* check_result_judge: set status and a printf-style reason (copied; truncated at 1 KiB). */
hp_rc check_result_judge(struct check_result *r, enum check_status status, const char *fmt, ...)
    HP_PRINTF(3, 4) HP_WUR;

/* check_result_trim_utf8: cut s (NUL-terminated, modified in place) back to its last complete
 * UTF-8 sequence, so a text truncated by byte count stays valid for JSON. Returns s. */
char *check_result_trim_utf8(char *s);

/* ---- values: one precision per unit (docs/results.md, "Numbers") ----
 *
 * Every number in values goes in through one of these setters, which round it to what its unit
 * can mean; bytes, counts and status codes are JSON integers, never reals. A real is stored as
 * the double nearest to its rounded decimal, so a dump with CHECK_RESULT_JSON_REALS prints that
 * decimal and nothing more ("0.03", not "0.029999999999999999"). Each setter replaces
 * r->values[key] and returns HP_OK, or HP_ERR_NOMEM with r->values unaltered. */
enum check_unit {
    CHECK_UNIT_MS,      /* *_ms: 0.001 ms (a microsecond) */
    CHECK_UNIT_SECONDS, /* *_seconds: 0.001 s (a millisecond) */
    CHECK_UNIT_PERCENT, /* *_percent: 0.1 */
    CHECK_UNIT_LOAD,    /* load averages and load per CPU: 0.01, as /proc/loadavg gives them */
};

/* CHECK_RESULT_JSON_REALS: the jansson flag of every text that carries result values (etcd
 * values, /ws messages, `hostpatrol results` and `inspect` output). 15 significant digits give
 * back any decimal of up to 15 digits exactly (jansson's default, 17, prints the binary noise:
 * 0.029999999999999999), so a value read back and dumped again keeps its text. */
#define CHECK_RESULT_JSON_REALS JSON_REAL_PRECISION(15)

/* check_result_round: x rounded to u's precision, half away from zero; never -0. A NaN, an
 * infinity or a value of 1e15 units or more (beyond what 15 digits print) is returned as it is. */
double check_result_round(enum check_unit u, double x);

/* check_result_set_real: values[key] = x rounded to u's precision; a NaN or an infinity is
 * stored as null (jansson has no real for them). key borrowed. */
hp_rc check_result_set_real(struct check_result *r, const char *key, enum check_unit u,
                            double x) HP_WUR;

/* check_result_set_days_left: values[key] = secs (seconds left, negative once past) in days,
 * rounded DOWN to 0.01 day (14.4 minutes): never more time than is left, and a certificate
 * expired by a second is already below 0. key borrowed. */
hp_rc check_result_set_days_left(struct check_result *r, const char *key, int64_t secs) HP_WUR;

/* check_result_set_int: values[key] = n as a JSON integer (bytes, counts, status codes). key
 * borrowed. */
hp_rc check_result_set_int(struct check_result *r, const char *key, int64_t n) HP_WUR;

/* check_result_to_json: the stored form (docs/results.md); new reference, NULL on NOMEM.
 * source: "controller" or "agent/<node>"; run_id: the run that produced it (borrowed). */
json_t *check_result_to_json(const struct check_result *r, const char *source, const char *run_id);

#endif
