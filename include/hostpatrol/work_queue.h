/*
 * work_queue.h - the reconcile work queue, with client-go's semantics:
 *   - it holds KEYS ("namespace/name"), never objects; a key queued twice is queued once;
 *   - a key being processed is never handed to a second worker; if it is added meanwhile, it
 *     runs again after work_queue_done;
 *   - work_queue_add_after: RequeueAfter;
 *   - work_queue_add_rate_limited: the later of a per-key exponential backoff (base_delay x
 *     2^failures, capped at max_delay) and a global token bucket (qps, burst); forget resets
 *     the key's failures;
 *   - work_queue_add_backoff: the per-key backoff alone, capped at a given bound, for a failure
 *     that cost the server nothing (it could not be reached): the bucket guards a SERVING
 *     server, and retries that consumed it during an outage would hold every key back for long
 *     after the server is back (200 keys failing through a 30 s apiserver restart left the last
 *     ones 30 s of bucket debt behind);
 *   - shutdown: no new keys; workers get what is queued, then HP_ERR_CANCELED; with a drain
 *     context, shutdown waits for the keys being processed to be done.
 * Thread-safety: every call may come from any thread; one mutex guards the whole queue and
 * one condition variable (CLOCK_MONOTONIC) wakes waiting workers.
 */
#ifndef HOSTPATROL_WORK_QUEUE_H
#define HOSTPATROL_WORK_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/ctx.h"

struct work_queue_config {
    int64_t base_delay_ms; /* 0: 5 */
    int64_t max_delay_ms;  /* 0: 1000 s */
    double qps;            /* 0: 10 */
    double burst;          /* 0: 100 */
};

struct work_queue;

hp_rc work_queue_new(const struct work_queue_config *cfg, struct work_queue **out) HP_WUR;
void work_queue_free(struct work_queue *q); /* NULL allowed; after shutdown */

void work_queue_add(struct work_queue *q, const char *key); /* key copied */
void work_queue_add_after(struct work_queue *q, const char *key, int64_t delay_ms);
/* work_queue_add_rate_limited: returns the delay chosen (ms) */
int64_t work_queue_add_rate_limited(struct work_queue *q, const char *key);
/* work_queue_add_backoff: returns the delay chosen (ms): the key's backoff, at most max_ms */
int64_t work_queue_add_backoff(struct work_queue *q, const char *key, int64_t max_ms);
void work_queue_forget(struct work_queue *q, const char *key);
int work_queue_failures(struct work_queue *q, const char *key);

/* work_queue_get: wait for a key (owned: hp_free it after work_queue_done). HP_ERR_CANCELED
 * once shut down and empty; hp_ctx_err(ctx) if ctx ends first. */
hp_rc work_queue_get(struct work_queue *q, struct hp_ctx *ctx, char **key) HP_WUR;
void work_queue_done(struct work_queue *q, const char *key);

/* work_queue_shutdown: stop accepting; with drain (may be NULL: no wait), wait until nothing
 * is queued or being processed, or drain ends (its error is returned). */
hp_rc work_queue_shutdown(struct work_queue *q, struct hp_ctx *drain);

size_t work_queue_len(struct work_queue *q); /* ready keys (not delayed, not processing) */

struct prom_writer;
/* work_queue_metrics: depth, adds, retries and the wait histogram (Prometheus text format) */
void work_queue_metrics(struct work_queue *q, struct prom_writer *w);

#endif
