/*
 * resolve_plan.h - the pure decisions of the batch queue's resolver (no I/O, no locks), so they
 * can be unit-tested: how an attempt's time budget grows, which timed-out batches share one
 * round trip, and the bound on round trips that docs/etcd-sync.md states.
 * Internal to controller/batch. Every function is reentrant; nothing is allocated.
 */
#ifndef HOSTPATROL_RESOLVE_PLAN_H
#define HOSTPATROL_RESOLVE_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/batch_queue.h"

/* resolve_budget_grow: the budget after an attempt that used `used` ms ran out of time while
 * the current budget is `cur`: doubled from `used`, never shrinking, at most `max`. Several
 * resolvers that time out together with the same budget double it once, not once each. */
int64_t resolve_budget_grow(int64_t cur, int64_t used, int64_t max);

/* resolve_attempts_to_reach: how many attempts time out before the budget (starting at base,
 * doubling up to max) is at least t_ms; -1 when t_ms > max (never reached). */
int resolve_attempts_to_reach(int64_t base, int64_t max, int64_t t_ms);

/* RESOLVE_ROUND_TRIPS: successful round trips that make a timed-out batch final once its group
 * is being resolved: epoch bump, fence read, read of the values before it, undo txn. */
#define RESOLVE_ROUND_TRIPS 4

/* resolve_bound_ms: the bound stated in batch_queue.h: once etcd answers every request within
 * t_ms (<= max), a batch whose deadline passed is final within this many ms: it may wait for
 * one group round already under way (4 round trips), then its own (4), plus the attempts that
 * time out while the budget grows (each at most its budget) and one retry back-off each. */
int64_t resolve_bound_ms(int64_t base, int64_t max, int64_t backoff_max, int64_t t_ms);

/* a candidate for a grouped undo: the keys of one batch (ops borrowed) */
struct resolve_keys {
    const struct batch_write *const *ops;
    size_t n;
};

/* resolve_pick_disjoint: choose, in order, candidates whose keys are disjoint from every key
 * already chosen (etcd refuses the same key written twice in one txn), while the number of
 * chosen candidates stays <= max_group and their keys <= max_keys. chosen[i] is set to 1 or 0.
 * The first candidate is always chosen (progress). Returns how many were chosen. */
size_t resolve_pick_disjoint(const struct resolve_keys *c, size_t n, size_t max_group,
                             size_t max_keys, unsigned char *chosen);

#endif
