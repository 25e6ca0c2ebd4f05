/*
 * etcd_bench.h - `hostpatrol bench etcd`: a capacity-planning tool that drives the real batch
 * queue (or, for comparison, a naive one-put-per-result writer on the same client) against a
 * user's etcd, and checks what landed.
 *
 * A run writes `results` keys <prefix><run-id>/<i> with unique values of value_bytes bytes,
 * each result one record with its own deadline. It measures keys/s, txns/s and the commit
 * latency (enqueue -> callback) p50/p99, and counts outcomes.
 *
 * Outcome lines (outcomes_path): one JSON object per batch, written and flushed as the batch
 * completes (so a killed run leaves a valid file):
 *   {"batch":"<id>","outcome":"committed|failed|rolled_back|unresolved","revision":R,
 *    "reason":"<the queue's reason>","keys":["..."]}
 *
 * Verification (the method of etcd's robustness tests): read every key under the prefix back,
 * then for each reported batch: committed -> every key present with its value, version 1 (applied
 * once) and the batch's revision (all keys at one revision: atomic); failed / rolled_back ->
 * no key present; unresolved -> all present or none.
 *
 * Thread-safety: one run at a time per process; the functions block until done. Every etcd call
 * is bounded by `deadline_ms` (writes) or the verify context (reads).
 */
#ifndef HOSTPATROL_ETCD_BENCH_H
#define HOSTPATROL_ETCD_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hostpatrol/etcd_client.h"

struct etcd_bench_config {
    struct etcd_config etcd;         /* endpoints, TLS, auth (borrowed) */
    size_t results;                  /* keys to write */
    size_t value_bytes;              /* bytes per value (>= 32: the unique part) */
    unsigned concurrency;            /* txns in flight at most (batch) / writers (naive) */
    int64_t deadline_ms;             /* batch: per txn's worth of results (per result when
                                      * paced), from the first's enqueue; naive: per put */
    size_t txn_ops;                  /* the server's --max-txn-ops; 0: 128 */
    size_t writes_per_record;        /* batch: results per record (as results_store enqueues a
                                      * run's: up to txn_ops - 1); 0: 1 */
    const char *prefix;              /* default "/hostpatrol-bench/" */
    const char *writer;              /* batch queue writer name; default "bench" */
    const char *state_dir;           /* batch queue journal; NULL: none */
    int64_t p95_high_ms, p95_low_ms; /* limiter thresholds; 0: the queue's defaults */
    unsigned min_inflight;           /* limiter floor; 0: the queue's default (1) */
    size_t rate;                     /* results enqueued per second at most; 0: all at once */
    const char *outcomes_path;
    bool naive;
    bool verify;
    /* stop (borrowed, may be NULL): once cancelled (SIGTERM in the CLI), the run enqueues
     * nothing more and stops the queue at once: batches not final are reported (and journaled
     * with state_dir) as unresolved, records never enqueued are counted in not_enqueued, and
     * the run returns within the client's slack plus the journal writes (no verification). */
    struct hp_ctx *stop;
};

struct etcd_bench_report {
    char run_id[40];
    bool naive;
    double seconds;
    size_t committed, failed, rolled_back, unresolved; /* results (keys) */
    size_t batches, rejected; /* txns sent (naive: puts); enqueue refusals */
    unsigned final_limit;     /* the limiter's in-flight limit at the end */
    double keys_per_s, txns_per_s, p50_ms, p99_ms;
    size_t not_enqueued;                  /* results never handed to the queue (stopped first) */
    double max_final_ms;                  /* the slowest result from enqueue to its final outcome */
    size_t key_bytes;                     /* the longest key written (the last result's) */
    uint64_t epoch_bumps, resolve_rounds; /* the queue's resolution work */
    uint64_t step_timeouts;               /* resolution steps that used their whole budget */
    int64_t resolve_budget_ms;            /* the budget they had at the end */
    bool terminated;                      /* stopped through cfg.stop */
    struct grpc_client_stats grpc;        /* the gRPC transport's connections (0s: gateway) */
    bool verified;
    size_t checked, violations;
    char violation[512]; /* the first one */
};

/* etcd_bench_run: one run; *out filled. HP_OK when the run completed (outcomes may include
 * failures; verification violations are in out->violations). err names a bad setting. */
hp_rc etcd_bench_run(const struct etcd_bench_config *cfg, struct etcd_bench_report *out,
                     struct hp_err *err) HP_WUR;

/* etcd_bench_check: verify the outcome lines of `path` (e.g. from a killed run) against etcd. */
hp_rc etcd_bench_check(const struct etcd_bench_config *cfg, const char *path,
                       struct etcd_bench_report *out, struct hp_err *err) HP_WUR;

/* etcd_bench_print: the report as a table row (text) or one JSON object. */
void etcd_bench_print(const struct etcd_bench_report *r, bool json, FILE *f);

/* etcd_bench_run_until_signal: etcd_bench_run, stopped (cfg->stop, which it sets) by SIGTERM or
 * SIGINT: it blocks them in the calling thread before any other starts (every thread inherits
 * the mask; it stays blocked after the run, so a late signal finds the exit under way) and
 * watches for them on a thread of its own, every 100 ms. cfg->stop must be NULL. */
hp_rc etcd_bench_run_until_signal(struct etcd_bench_config *cfg, struct etcd_bench_report *out,
                                  struct hp_err *err) HP_WUR;

/* etcd_bench_print_report: the report as one JSON object, or as text: a line describing the run
 * (not after a check: run false), the table's header and its row. */
void etcd_bench_print_report(const struct etcd_bench_config *cfg, const struct etcd_bench_report *r,
                             bool run, bool json, FILE *f);

#endif
