/*
 * check_verdict.h - a check's verdict while it is being judged: the worst status of its
 * findings and their reasons joined with "; " (cut on a UTF-8 boundary when too long). Shared
 * by the probes and the node-local checks; check_result_judge takes the final verdict.
 */
#ifndef HOSTPATROL_CHECK_VERDICT_H
#define HOSTPATROL_CHECK_VERDICT_H

#include <stddef.h>

#include "hostpatrol/check_result.h"

#define CHECK_VERDICT_MAX 1024

struct check_verdict {
    enum check_status status; /* the worst so far: CRIT > UNKNOWN > WARN > OK */
    size_t len;
    char reason[CHECK_VERDICT_MAX];
};

/* check_verdict_add: one finding: status s (kept if worse) and its reason (printf-style) */
void check_verdict_add(struct check_verdict *v, enum check_status s, const char *fmt, ...)
    HP_PRINTF(3, 4);

#endif
