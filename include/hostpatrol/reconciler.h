/*
 * reconciler.h - the HostInspection reconcile loop: an informer feeds a work queue of
 * "namespace/name" keys, N workers reconcile them. Level-based and idempotent: every reconcile
 * reads the object from the informer's cache and decides from it (plus a small memory of what
 * this process already did, so a status not yet seen in the cache cannot cause a second run).
 *
 * One reconcile of a HostInspection:
 *   1. deleting (deletionTimestamp) -> delete its results from etcd, then drop the finalizer
 *      hostpatrol.io/cleanup; if etcd cannot be reached the finalizer stays, Ready=False
 *      (reason CleanupFailed) says why, and the key is retried with backoff; while the batch
 *      queue still resolves a timed-out commit, cleanup waits (reason CleanupWaiting);
 *   2. no finalizer yet -> add it (optimistic, with resourceVersion);
 *   3. spec errors CEL cannot catch -> InvalidSpec=True naming the field, Ready=False; no retry
 *      until the spec changes (no retry storm); a spec the cluster policy refuses (cfg.policy)
 *      likewise, with reason Forbidden. The spec is parsed (regular expressions compiled) and
 *      admitted once per generation (spec_cache.h), not at every reconcile;
 *   4. suspend -> Suspended=True, no run, nothing scheduled;
 *   5. a run is due when: never run, or a new generation, or a new hostpatrol.io/run-now
 *      annotation value, or lastRunTime + interval (+ up to 10% jitter) has passed; otherwise
 *      the key is requeued for when it is due;
 *   6. a run: one context with the spec's timeout covers the probes (all concurrent) and the
 *      etcd commit through the batch queue; results of checks or targets no longer in the spec
 *      are deleted in the same commit (results_store.h). A commit is as many batch-queue
 *      records as the queue's per-txn limit asks (batch_group.h): each record is atomic; a run
 *      of more writes than one txn holds (up to 64 checks x 256 targets) is several records,
 *      and is reported committed only when all of them are;
 *   7. status last, through /status (merge patch): observedGeneration, lastRunTime,
 *      lastSuccessfulRunTime, nextRunTime, runNow, summary, failingChecks (at most 32),
 *      lastCommit, and conditions Ready / Degraded / InvalidSpec / Suspended that return to
 *      healthy when the checks recover. An Event is posted when Ready, Degraded or InvalidSpec
 *      changes. A status write that fails is kept and written first at the next reconcile;
 *      the run is not repeated for it.
 *
 * Results live in etcd under <prefix>results/<namespace>/<name>/<check>/<target> (JSON, see
 * docs/results.md). Node-local checks are the agents' (agent mode, below): the controller does
 * not run them; it counts what each matching node's agent stored into the status (a missing or
 * stale result is UNKNOWN; status.nodes names failing nodes) and deletes their results when
 * the check leaves the spec.
 *
 * Threads: the informer thread, `workers` worker threads. One mutex guards the memory of past
 * runs (the `memo` table); runs never hold it during I/O.
 */
#ifndef HOSTPATROL_RECONCILER_H
#define HOSTPATROL_RECONCILER_H

#include <stdbool.h>
#include <stdint.h>

#include "hostpatrol/batch_queue.h"
#include "hostpatrol/etcd_client.h"
#include "hostpatrol/inspect_policy.h"
#include "hostpatrol/kube_client.h"
#include "hostpatrol/kube_informer.h"

#define RECONCILER_FINALIZER   "hostpatrol.io/cleanup"
#define RECONCILER_RUN_NOW     "hostpatrol.io/run-now"
#define RECONCILER_MAX_FAILING 32

enum reconciler_log_level { RLOG_DEBUG, RLOG_INFO, RLOG_WARN, RLOG_ERROR };

/* What ties a log line to its work: the resource ("namespace/name"), the reconcile (a number,
 * unique in this process), the run and the etcd batch of its commit; each may be NULL / 0. */
struct reconciler_log_ids {
    const char *key;
    uint64_t reconcile;
    const char *run;
    const char *batch;
};

struct reconciler_config {
    struct kube_client *kube;  /* borrowed; outlives the reconciler */
    struct etcd_client *etcd;  /* borrowed: reads and cleanup deletes */
    struct batch_queue *batch; /* borrowed: every result write */
    const char *prefix;        /* etcd key prefix; default "/hostpatrol/" */
    const char *namespace_;    /* watch one namespace; NULL: all */
    const char *identity;      /* this controller instance (Events' reportingInstance) */
    unsigned workers;          /* concurrent reconciles; default 4 */
    int64_t stall_ms;          /* informer stall detector; 0: its default */
    /* agent mode (node_name set): this process is the agent on that node: it runs the
     * node-local checks (disk, load, memory, process, file) of the HostInspections whose
     * nodeSelector matches the node's labels, reading the host below host_root, and writes
     * their results (target = the node); it withdraws them when the node is no longer
     * selected. No finalizer, status or Events (the controller's). */
    const char *node_name;
    const char *host_root; /* default "/" */
    /* borrowed, may be NULL (admit everything): the cluster admin's policy (inspect_policy.h),
     * applied once per generation with the parse: a refused spec gets InvalidSpec=True with
     * reason Forbidden naming the field and the flag. The agent skips what it refuses. */
    const struct inspect_policy *policy;
    struct probe_budget *budget; /* borrowed, may be NULL: the cap on probes in flight */
    size_t max_sockets_per_run;  /* probes of one run in flight at once; 0: no cap */
    /* log: one line of what happened; key and run_id may be NULL. Called from any thread. */
    void (*log)(void *arg, enum reconciler_log_level level, const struct reconciler_log_ids *ids,
                const char *msg);
    void *log_arg;
    /* on_commit (optional): called from the worker thread, outside the reconciler's locks,
     * after a run's writes were COMMITTED to etcd (not for a run with nothing to write, nor one
     * whose commit failed or is unresolved), with ns, name and json_text borrowed for the call:
     * {"namespace":NS,"name":NAME,"run":RUN_ID,"revision":R,"results":[...]}, results being the
     * result documents this run stored (the controller's, or in agent mode this node's; empty
     * when the run only deleted stale results). Must not block for long. */
    void (*on_commit)(void *arg, const char *ns, const char *name, const char *json_text);
    void *commit_arg;
    /* on_object (optional): each HostInspection as the watch delivers it (the dashboard's
     * view of conditions and status): called on the informer thread, holding the informer's
     * lock (must not block nor call into the reconciler), with obj the whole object as the API
     * server sent it (borrowed for the call), or NULL when it was deleted. */
    void (*on_object)(void *arg, const char *ns, const char *name, const json_t *obj);
    void *object_arg;
};

struct reconciler_stats {
    uint64_t reconciles, errors, runs, runs_committed, runs_failed, status_writes, events;
    uint64_t cleanups;
};

struct reconciler;

/* reconciler_start: start the informer and the workers. Strings in cfg are copied. *out owned:
 * reconciler_stop. */
hp_rc reconciler_start(const struct reconciler_config *cfg, struct reconciler **out,
                       struct hp_err *err) HP_WUR;

/* reconciler_ready: the informer is synced and has heard from the server within max_age_ms. */
bool reconciler_ready(struct reconciler *r, int64_t max_age_ms);

/* reconciler_stop: stop taking keys, let runs in progress finish until drain ends (NULL: cancel
 * them at once), stop the informer and free. NULL allowed. */
void reconciler_stop(struct reconciler *r, struct hp_ctx *drain);

void reconciler_stats(struct reconciler *r, struct reconciler_stats *out);
struct prom_writer;
/* reconciler_metrics: reconcile and check duration histograms, check results by kind and
 * status, and the work queue's metrics (Prometheus text format) */
void reconciler_metrics(struct reconciler *r, struct prom_writer *w);

/* reconciler_watch_stats: the informer's (lists, watches, 410s, stalls, errors) */
void reconciler_watch_stats(struct reconciler *r, struct kube_informer_stats *out);

#endif
