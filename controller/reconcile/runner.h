/*
 * runner.h - one run of a HostInspection, as the reconciler starts it: the controller's checks
 * (probes, node conditions) or, in agent mode, this node's node-local checks; each result
 * counted (metrics, the run's report) and put in the run's writes with the deletes of stale
 * results; one commit of them (results_store.h); the committed run handed to on_commit.
 *
 * struct runner borrows everything it points to: the reconciler fills it at start and it lives
 * as long as the reconciler. One runner serves every run (one per worker at a time).
 * Thread-safety: every function may be called from any worker; *mu guards *stats and *results
 * (the histograms have their own locks). Blocking: a run lasts at most spec.timeout (its checks
 * end runner_commit_reserve_ms earlier), then waits for its commit's outcome up to the store's
 * commit slack; every deadline is a child of ctx (cancelled by reconciler_stop).
 */
#ifndef HOSTPATROL_RECONCILE_RUNNER_H
#define HOSTPATROL_RECONCILE_RUNNER_H

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/check_result.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/inspect_policy.h"
#include "hostpatrol/inspection_spec.h"
#include "hostpatrol/probe_budget.h"
#include "hostpatrol/prom_histogram.h"
#include "hostpatrol/rc.h"
#include "hostpatrol/reconciler.h"
#include "hostpatrol/results_store.h"
#include "reconcile/nodes.h"
#include "reconcile/run_report.h"

/* A run's outcome, as hostpatrol_run_duration_seconds labels it: its commit landed, certainly
 * did not, or was not final when the run ended */
enum runner_outcome { RUNNER_COMMITTED, RUNNER_FAILED, RUNNER_UNRESOLVED, RUNNER_OUTCOMES };

struct runner {
    struct results_store *store;          /* borrowed: stored results, the run's commit */
    struct hp_ctx *ctx;                   /* borrowed: the parent of every run's deadline */
    struct nodes *nodes;                  /* borrowed: the controller's node conditions */
    const char *identity;                 /* borrowed: the controller's results' source */
    const char *node_name, *host_root;    /* borrowed: agent mode when node_name is set */
    const struct inspect_policy *policy;  /* borrowed, may be NULL: the probes' policy */
    struct probe_budget *budget;          /* borrowed, may be NULL: the cap on probes in flight */
    size_t max_sockets_per_run;           /* probes of one run in flight at once; 0: no cap */
    pthread_mutex_t *mu;                  /* borrowed: guards *stats and *results */
    struct reconciler_stats *stats;       /* borrowed: runs, runs_committed, runs_failed */
    struct prom_histogram *check_seconds; /* borrowed: CHECK_KIND__COUNT, by kind */
    struct prom_histogram *run_seconds;   /* borrowed: RUNNER_OUTCOMES, by outcome */
    uint64_t (*results)[4];               /* borrowed: CHECK_KIND__COUNT rows, by status */
    /* on_commit (may be NULL): as reconciler_config.on_commit */
    void (*on_commit)(void *arg, const char *ns, const char *name, const char *json_text);
    void *commit_arg;
    /* log (may be NULL): log at lvl the line fmt formats with ap (printf-style) about key, run
     * run_id and the etcd batch of its commit (each may be NULL; all borrowed) */
    void (*log)(void *arg, enum reconciler_log_level lvl, const char *key, const char *run_id,
                const char *batch, const char *fmt, va_list ap);
    void *log_arg;
};

/* runner_commit_reserve_ms: what a run of timeout_ms leaves its commit after its checks end: a
 * fifth of the run, at least 100 ms, at most half of it */
int64_t runner_commit_reserve_ms(int64_t timeout_ms);

/* runner_outcome: the outcome of a run whose commit returned commit_rc */
enum runner_outcome runner_outcome(hp_rc commit_rc);
/* runner_outcome_name: its label value ("committed", "failed", "unresolved"; static) */
const char *runner_outcome_name(enum runner_outcome o);

/* runner_add_results: each of res[0..n_res) (borrowed) counted (*check_seconds and *results for
 * a known kind and status, rep) and put in the run's writes sr under its result key, its
 * source "agent/<node_name>" or "controller/<identity>". HP_ERR_NOMEM (stops there). */
hp_rc runner_add_results(struct runner *rn, const char *run_id, const struct check_result *res,
                         size_t n_res, struct run_report *rep, struct results_store_run *sr) HP_WUR;

/* runner_run: the run run_id (borrowed) of obj (borrowed; key its "namespace/name") with spec
 * (borrowed): checks -> results -> one commit (with the deletes of stale results); logged.
 * withdraw (agent mode): run nothing, so this node's results of the resource are deleted.
 * rep: initialized (run_report_init) by the caller; gets the counts, the failing results, the
 * commit's outcome (commit_rc, revision, batch_id, why). Never fails for a check's failure (a
 * result) nor for its commit's (rep->commit_rc): only for what stops the run (NOMEM, a check
 * that could not start); logged then. */
hp_rc runner_run(struct runner *rn, const char *key, const json_t *obj,
                 const struct inspection_spec *spec, const char *run_id, bool withdraw,
                 struct run_report *rep) HP_WUR;

/* runner_run_counted: runner_run (withdraw false), counted in *stats (runs, then runs_committed
 * or runs_failed) and timed in run_seconds by its outcome; rc as runner_run's (a failed run is
 * counted in runs only, not timed). */
hp_rc runner_run_counted(struct runner *rn, const char *key, const json_t *obj,
                         const struct inspection_spec *spec, const char *run_id,
                         struct run_report *rep) HP_WUR;

#endif
