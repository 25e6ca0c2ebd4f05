/*
 * duration.h - Go-style durations ("1h30m", "250ms", "1.5s"), as Kubernetes and the CRD's
 * interval/timeout fields use them. Units: h, m, s, ms, us (or µs), ns; at least one
 * number+unit; no sign. Thread-safe.
 */
#ifndef HOSTPATROL_DURATION_H
#define HOSTPATROL_DURATION_H

#include <stdint.h>

#include "hostpatrol/rc.h"

/* hp_duration_parse: s (borrowed) -> *ms (rounded down to whole milliseconds).
 * HP_ERR_INVALID for anything else (err names `field` and quotes s); overflow is INVALID. */
hp_rc hp_duration_parse(const char *s, const char *field, int64_t *ms, struct hp_err *err) HP_WUR;

#endif
