/*
 * logger.h - the controller's and the agent's log: one line per call on a stream (stderr in
 * the product), as one JSON object (the default) or as text for terminals:
 *   {"time":"...Z","level":"info","module":"controller","key":"ns/name","reconcile":7,
 *    "run":"...","batch":"...","msg":"..."}
 *   2026-01-02T03:04:05.678Z info  controller ns/name run=... batch=... message
 * Lines never carry tokens, keys or passwords: callers pass none.
 *
 * Thread-safety: hp_logger_line and hp_logger_printf may be called from any thread (lines are
 * written whole, under the logger's lock); the setters are for start-up, before any thread
 * logs, except hp_logger_set_level, which is atomic.
 */
#ifndef HOSTPATROL_LOGGER_H
#define HOSTPATROL_LOGGER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "hostpatrol/rc.h"

enum hp_log_level { HP_LOG_DEBUG, HP_LOG_INFO, HP_LOG_WARN, HP_LOG_ERROR };

/* What ties a line to its work; every member may be NULL / 0 (left out of the line). */
struct hp_log_ids {
    const char *key;              /* "namespace/name" */
    unsigned long long reconcile; /* the reconcile's number */
    const char *run;              /* the run's id */
    const char *batch;            /* the etcd batch's id */
};

struct hp_logger {
    atomic_int min_level; /* lines below it are dropped */
    bool text;            /* text lines instead of JSON */
    const char *module;   /* the "module" of every line (borrowed; static in practice) */
    FILE *out;            /* borrowed */
    pthread_mutex_t mu;   /* one line at a time on out */
};

/* hp_logger_init: level info, JSON, module (borrowed, e.g. "controller"), lines on out
 * (borrowed, e.g. stderr). */
void hp_logger_init(struct hp_logger *l, const char *module, FILE *out);
void hp_logger_release(struct hp_logger *l); /* NULL allowed */

/* hp_logger_set_level: "debug", "info", "warn" or "error"; anything else: HP_ERR_INVALID and
 * the level is unchanged. */
HP_WUR hp_rc hp_logger_set_level(struct hp_logger *l, const char *name);
/* hp_logger_set_format: "json" or "text"; anything else: HP_ERR_INVALID, unchanged. */
HP_WUR hp_rc hp_logger_set_format(struct hp_logger *l, const char *name);

/* hp_logger_line: one line of msg (borrowed) with ids (borrowed; NULL: none) */
void hp_logger_line(struct hp_logger *l, enum hp_log_level level, const struct hp_log_ids *ids,
                    const char *msg);
/* hp_logger_printf: one line without ids; the message is cut at 1023 bytes */
void hp_logger_printf(struct hp_logger *l, enum hp_log_level level, const char *fmt, ...)
    HP_PRINTF(3, 4);

#endif
