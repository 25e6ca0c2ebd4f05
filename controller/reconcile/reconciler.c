/* reconciler.c - the HostInspection reconcile loop (see include/hostpatrol/reconciler.h): the
 * workers, one reconcile of a key, start and stop, and the metrics. One run is in runner.c,
 * what a run decides in decision.c, the memo in schedule.c, status and Events in status.c,
 * nodes in nodes.c. */
#include "hostpatrol/reconciler.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/batch_group.h"
#include "hostpatrol/check_result.h"
#include "hostpatrol/inspection_spec.h"
#include "hostpatrol/kube_informer.h"
#include "hostpatrol/prom_histogram.h"
#include "hostpatrol/prom_writer.h"
#include "hostpatrol/results_store.h"
#include "hostpatrol/spec_cache.h"
#include "hostpatrol/work_queue.h"
#include "reconcile/decision.h"
#include "reconcile/nodes.h"
#include "reconcile/run_report.h"
#include "reconcile/runner.h"
#include "reconcile/schedule.h"
#include "reconcile/status.h"

#define API_PATH             "/apis/hostpatrol.io/v1alpha1"
#define COMMIT_SLACK_MS      6000 /* wait past the run deadline for the queue's resolution */
#define CLEANUP_TIMEOUT      7000 /* finalizer: etcd delete of a CR's results */
#define UNREACHABLE_RETRY_MS 2000 /* the longest retry of a key whose server was unreachable */

/* The outcome of a commit reported CommitUnresolved, come later (late_final) */
struct late_outcome {
    struct late_outcome *next;
    char run_id[64];
    struct batch_group_outcome o;
};

struct reconciler {
    struct reconciler_config cfg; /* strings below are owned copies */
    char *namespace_, *identity;
    struct kube_informer *informer;
    struct work_queue *queue;
    struct spec_cache *specs;    /* parsed and admitted once per generation; own lock */
    struct results_store *store; /* results in etcd; late commit outcomes come in here */
    pthread_t *threads;
    unsigned n_threads;
    struct hp_ctx *ctx;          /* cancelled by stop: ends runs in progress once drain ends */
    atomic_bool stopping;        /* set by stop: no new run starts */
    char *node_name, *host_root; /* agent mode when node_name is set */
    pthread_mutex_t mu;          /* guards sched, nodes.labels, stats and results */
    struct schedule sched;       /* the memo of each key's runs and the jitter PRNG */
    struct status status;        /* status, finalizer and Event writes (borrows the above) */
    struct nodes nodes;          /* node selection and the agent's labels */
    struct runner runner;        /* one run: checks, results, commit (borrows the above) */
    struct reconciler_stats stats;
    struct prom_histogram reconcile_seconds;                /* own locks */
    struct prom_histogram check_seconds[CHECK_KIND__COUNT]; /* by kind */
    struct prom_histogram run_seconds[RUNNER_OUTCOMES];     /* a run, probes to its commit's end */
    uint64_t results[CHECK_KIND__COUNT][4];                 /* by kind and status, under mu */
};

/* ---------- small helpers ---------- */

/* the reconcile a worker thread is in (for logs) */
static _Thread_local uint64_t cur_reconcile;

/* vemit: one line to cfg.log, fmt formatted, tagged with key, the reconcile, run_id and the
 * etcd batch of the run's commit (each may be NULL); also how runner.c logs (struct runner.log) */
static void vemit(void *arg, enum reconciler_log_level lvl, const char *key, const char *run_id,
                  const char *batch, const char *fmt, va_list ap)
{
    struct reconciler *r = arg;
    char msg[1024];

    if (!r->cfg.log)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    {
        struct reconciler_log_ids ids = {key, cur_reconcile, run_id, batch};

        r->cfg.log(r->cfg.log_arg, lvl, &ids, msg);
    }
}

static void rlog(struct reconciler *r, enum reconciler_log_level lvl, const char *key,
                 const char *run_id, const char *fmt, ...) HP_PRINTF(5, 6);

static void rlog(struct reconciler *r, enum reconciler_log_level lvl, const char *key,
                 const char *run_id, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vemit(r, lvl, key, run_id, NULL, fmt, ap);
    va_end(ap);
}

/* status_log: how status.c logs (struct status.log) */
static void status_log(void *arg, enum reconciler_log_level lvl, const char *key,
                       const char *run_id, const char *msg)
{
    rlog(arg, lvl, key, run_id, "%s", msg);
}

static void stat_add(struct reconciler *r, uint64_t *field)
{
    pthread_mutex_lock(&r->mu);
    (*field)++;
    pthread_mutex_unlock(&r->mu);
}

/* memo_get: key's memo, under r->mu; create = true adds an entry (NULL on NOMEM) */
static struct memo *memo_get(struct reconciler *r, const char *key, bool create)
{
    return schedule_memo_get(&r->sched, key, create);
}

static void memo_drop(struct reconciler *r, const char *key)
{
    spec_cache_drop(r->specs, key);
    pthread_mutex_lock(&r->mu);
    schedule_memo_drop(&r->sched, key);
    pthread_mutex_unlock(&r->mu);
}

/* memo_ran: schedule_ran under r->mu */
static int64_t memo_ran(struct reconciler *r, const char *key, int64_t now, int64_t gen,
                        const char *run_now, int64_t interval_ms)
{
    int64_t due;

    pthread_mutex_lock(&r->mu);
    due = schedule_ran(&r->sched, key, now, gen, run_now, interval_ms);
    pthread_mutex_unlock(&r->mu);
    return due;
}

/* free_late: a memo's list of late outcomes (struct schedule.free_late) */
static void free_late(struct late_outcome *l)
{
    while (l) {
        struct late_outcome *next = l->next;

        hp_free(l);
        l = next;
    }
}

/* ---------- the commit of a run ---------- */

/* late_final: the outcome of a commit reported CommitUnresolved, come later (the store's late
 * hook, from a queue thread, under the hook's lock: reconciler_stop detaches it first): logged;
 * in controller mode kept in the key's memo and the key queued, so the next reconcile posts an
 * Event and, while that run's status is still the latest, updates its Ready condition. Lock
 * order: the store's hook, then reconciler.mu, then the work queue's. */
static void late_final(void *arg, const char *key, const char *run_id,
                       const struct batch_group_outcome *o)
{
    struct reconciler *r = arg;
    struct late_outcome *l = hp_calloc(1, sizeof(*l));

    rlog(r, o->outcome == BATCH_COMMITTED ? RLOG_INFO : RLOG_WARN, key, run_id,
         "etcd commit resolved after the run: %s (batch %s%s%s)", batch_outcome_name(o->outcome),
         o->batch, o->reason[0] ? ": " : "", o->reason);
    if (l && !r->node_name) {
        struct memo *m;

        snprintf(l->run_id, sizeof(l->run_id), "%s", run_id);
        l->o = *o;
        pthread_mutex_lock(&r->mu);
        m = memo_get(r, key, true);
        if (m) {
            l->next = m->late;
            m->late = l;
            l = NULL;
        }
        pthread_mutex_unlock(&r->mu);
        work_queue_add(r->queue, key);
    }
    hp_free(l);
}

/* ---------- one reconcile ---------- */

/* transform: what the informer caches of a HostInspection (status_transform), after
 * cfg.on_object has seen the whole object */
static void transform(void *arg, json_t *obj)
{
    struct reconciler *r = arg;

    if (r->cfg.on_object)
        r->cfg.on_object(r->cfg.object_arg, status_str(obj, "metadata", "namespace"),
                         status_str(obj, "metadata", "name"), obj);
    status_transform(obj);
}

/* finalize: the resource is being deleted: delete its results, then drop our finalizer. */
static hp_rc finalize(struct reconciler *r, const char *key, const json_t *obj)
{
    const char *ns = status_str(obj, "metadata", "namespace"),
               *name = status_str(obj, "metadata", "name");
    struct hp_ctx *ctx = NULL, *mctx = NULL;
    struct batch_stats bs;
    struct hp_err err = {0};
    char why[HP_ERR_MSG_MAX + 64];
    json_t *updated = NULL;
    int64_t deleted = 0;
    hp_rc rc;

    if (!status_has_finalizer(obj))
        return HP_OK;
    /* a commit of an earlier run still being resolved could land (and be undone) after the
     * delete: wait for the queue to settle first */
    batch_queue_stats(r->cfg.batch, &bs);
    if (bs.unresolved) {
        status_report_cleanup(&r->status, key, obj, "CleanupWaiting",
                              "an earlier etcd commit is still being resolved; retrying");
        return HP_ERR_UNKNOWN_OUTCOME;
    }
    rc = hp_ctx_new(r->ctx, CLEANUP_TIMEOUT, &ctx);
    if (rc)
        goto out;
    rc = results_store_delete_all(r->store, ctx, ns, name, &deleted, &err);
    if (rc) {
        snprintf(why, sizeof(why), "results not deleted from etcd: %s", err.msg);
        status_report_cleanup(&r->status, key, obj, "CleanupFailed", why);
        goto out;
    }
    rlog(r, RLOG_INFO, key, NULL, "deleted %lld results from etcd", (long long)deleted);
    stat_add(r, &r->stats.cleanups);
    rc = hp_ctx_new(r->ctx, META_TIMEOUT, &mctx);
    if (!rc)
        rc = status_set_finalizers(&r->status, mctx, obj, false, &updated, &err);
    if (rc == HP_ERR_NOTFOUND)
        rc = HP_OK;
    if (rc)
        rlog(r, RLOG_WARN, key, NULL, "finalizer not removed: %s", err.msg);
out:
    json_decref(updated);
    hp_ctx_free(mctx);
    hp_ctx_free(ctx);
    return rc;
}

/* reconcile_agent: the agent's reconcile: run this node's node-local checks of a HostInspection
 * that selects the node, on its schedule; withdraw this node's results when it no longer does
 * (nodes_agent_step decides). No finalizer, status or Events: those are the controller's. */
static hp_rc reconcile_agent(struct reconciler *r, const char *key, const json_t *obj,
                             int64_t *requeue_ms)
{
    static const struct inspection_spec withdraw_all = {.timeout_ms = 10000};
    struct spec_ref *ref = NULL;
    struct run_report rep;
    struct hp_err err = {0};
    enum nodes_agent_step step = NODES_AGENT_SKIP;
    int64_t now = schedule_wall_ms(), due = 0;
    char run_id[64];
    hp_rc rc = run_report_init(&rep);

    if (!rc)
        rc = nodes_agent_step(&r->nodes, r->specs, &r->sched, key, obj, now, &step, &ref, &due,
                              &err);
    if (rc || step == NODES_AGENT_SKIP)
        goto out;
    snprintf(run_id, sizeof(run_id), "%.8s-%s-%llx", status_str(obj, "metadata", "uid"),
             r->node_name, (unsigned long long)now);
    if (step == NODES_AGENT_WITHDRAW) {
        rc = runner_run(&r->runner, key, obj, &withdraw_all, run_id, true, &rep);
        if (!rc && !rep.commit_rc) {
            rlog(r, RLOG_INFO, key, run_id, "this node is no longer selected: results removed");
            memo_drop(r, key);
        }
    } else if (step == NODES_AGENT_WAIT) {
        *requeue_ms = due - now;
    } else if (!atomic_load(&r->stopping)) {
        rc = runner_run_counted(&r->runner, key, obj, spec_ref_spec(ref), run_id, &rep);
        if (rc)
            goto out;
        due = memo_ran(r, key, now, status_generation(obj), status_run_now_annotation(obj),
                       spec_ref_spec(ref)->interval_ms);
        *requeue_ms = due - schedule_wall_ms() > 0 ? due - schedule_wall_ms() : 0;
    }
out:
    run_report_release(&rep);
    spec_ref_put(ref);
    return rc;
}

/* take_late: the late outcomes kept in key's memo (owned list, oldest last), or NULL */
static struct late_outcome *take_late(struct reconciler *r, const char *key)
{
    struct late_outcome *list = NULL;
    struct memo *m;

    pthread_mutex_lock(&r->mu);
    m = memo_get(r, key, false);
    if (m) {
        list = m->late;
        m->late = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    return list;
}

/* put_late: list (taken) back in front of key's memo, for the retry */
static void put_late(struct reconciler *r, const char *key, struct late_outcome *list)
{
    struct late_outcome *l;
    struct memo *m;

    if (!list)
        return;
    pthread_mutex_lock(&r->mu);
    m = memo_get(r, key, true);
    if (m) {
        for (l = list; l->next; l = l->next)
            ;
        l->next = m->late;
        m->late = list;
        list = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    free_late(list);
}

/* report_late: the outcomes of commits that were unresolved when their runs ended (late_final
 * kept them in the memo): an Event each; the Ready condition too when that run's status is
 * still the latest. A status not written puts the outcomes back for the retry. */
static hp_rc report_late(struct reconciler *r, const char *key, const json_t *obj,
                         struct hp_err *err)
{
    struct late_outcome *list = take_late(r, key), *l;
    hp_rc rc = HP_OK;

    while ((l = list)) {
        rc = status_report_late(&r->status, key, obj, l->run_id, &l->o, err);
        if (rc)
            break; /* l and the rest go back to the memo */
        list = l->next;
        hp_free(l);
    }
    put_late(r, key, list);
    return rc;
}

/* catch_up: before anything else, a status a failed write left behind (its run is done), then
 * the late commit outcomes */
static hp_rc catch_up(struct reconciler *r, const char *key, const json_t *obj, struct hp_err *err)
{
    json_t *st = status_get_pending(&r->status, key);
    hp_rc rc = st ? status_write_pending(&r->status, key, obj, st, err) : HP_OK;

    return rc ? rc : report_late(r, key, obj, err);
}

/* due_now: decision_due for the controller: obj's status and key's memo at now */
static void due_now(struct reconciler *r, const char *key, const json_t *obj,
                    const struct inspection_spec *spec, int64_t now, struct decision *d)
{
    struct decision_in in = {
        .now_ms = now,
        .generation = status_generation(obj),
        .interval_ms = spec->interval_ms,
        .run_now = status_run_now_annotation(obj),
        .status_generation = json_integer_value(
            json_object_get(json_object_get(obj, "status"), "observedGeneration")),
        .status_last_run_ms = schedule_parse_rfc3339(status_str(obj, "status", "lastRunTime")),
        .status_run_now = status_str(obj, "status", "runNow"),
    };

    pthread_mutex_lock(&r->mu);
    in.memo = memo_get(r, key, false);
    decision_due(&in, d);
    pthread_mutex_unlock(&r->mu);
}

/* run_and_report: a run of obj that is due, then its status (written last; kept until written,
 * so a failed write is retried before anything else, not after a whole interval) */
static hp_rc run_and_report(struct reconciler *r, const char *key, const json_t *obj,
                            const struct inspection_spec *spec, int64_t now,
                            const struct decision *d, int64_t *requeue_ms, struct hp_err *err)
{
    struct run_report rep;
    struct memo *m;
    char run_id[64];
    int64_t due;
    json_t *st;
    hp_rc rc = run_report_init(&rep);

    snprintf(run_id, sizeof(run_id), "%.8s-%llx", status_str(obj, "metadata", "uid"),
             (unsigned long long)now);
    rlog(r, RLOG_INFO, key, run_id, "run starts (%s)", decision_why_name(d->why));
    if (!rc)
        rc = runner_run_counted(&r->runner, key, obj, spec, run_id, &rep);
    if (rc)
        goto out;
    due = memo_ran(r, key, now, status_generation(obj), status_run_now_annotation(obj),
                   spec->interval_ms);
    pthread_mutex_lock(&r->mu);
    m = memo_get(r, key, false);
    if (m) /* the outcome, when it comes, updates Ready while this run is the latest */
        snprintf(m->unresolved, sizeof(m->unresolved), "%s",
                 rep.commit_rc == HP_ERR_UNKNOWN_OUTCOME ? run_id : "");
    pthread_mutex_unlock(&r->mu);
    st = status_run_patch(obj, &rep, run_id, now, due);
    rc = st ? HP_OK : HP_ERR_NOMEM;
    if (rc)
        goto out;
    status_keep_pending(&r->status, key, st);
    rc = status_write_pending(&r->status, key, obj, st, err);
    if (rc)
        goto out;
    *requeue_ms = due - schedule_wall_ms();
    if (*requeue_ms < 0)
        *requeue_ms = 0;
out:
    run_report_release(&rep);
    return rc;
}

/* reconcile_controller: the controller's reconcile of a live object (*obj: replaced when the
 * finalizer is added): catch up, check the spec, run when due, write status last */
static hp_rc reconcile_controller(struct reconciler *r, const char *key, json_t **obj,
                                  int64_t *requeue_ms, struct hp_err *err)
{
    const struct inspection_spec *spec;
    struct spec_ref *ref = NULL;
    struct decision d;
    int64_t now;
    hp_rc rc = status_ensure_finalizer(&r->status, key, obj, err);

    if (!rc)
        rc = catch_up(r, key, *obj, err);
    if (!rc)
        rc = spec_cache_get(r->specs, key, *obj, &ref);
    if (rc)
        goto out;
    now = schedule_wall_ms();
    rc = spec_ref_verdict(ref, err);
    if (rc == HP_ERR_INVALID || rc == HP_ERR_AUTH) {
        struct hp_err why = *err;

        rc = status_report_refused(&r->status, key, *obj, rc, &why, err);
        goto out;
    }
    if (rc)
        goto out;
    spec = spec_ref_spec(ref);
    if (spec->suspend) {
        rc = status_report_suspended(&r->status, *obj, err);
        goto out;
    }
    due_now(r, key, *obj, spec, now, &d);
    if (d.why == DECISION_NOT_DUE) {
        *requeue_ms = d.due_ms - now;
        goto out;
    }
    if (atomic_load(&r->stopping))
        goto out; /* shutting down: runs in progress finish, no new one starts */
    rc = run_and_report(r, key, *obj, spec, now, &d, requeue_ms, err);
out:
    spec_ref_put(ref);
    return rc;
}

/* reconcile: returns HP_OK, or an error to retry with backoff. *requeue_ms >= 0 asks for a
 * later reconcile (a scheduled run). *unreachable: the error is the apiserver not answering at
 * all (UNAVAILABLE without an HTTP status). */
static hp_rc reconcile(struct reconciler *r, const char *key, int64_t *requeue_ms,
                       bool *unreachable)
{
    json_t *obj = kube_informer_get(r->informer, key);
    struct hp_err err = {0};
    hp_rc rc;

    *requeue_ms = -1;
    if (!obj) {
        memo_drop(r, key);
        return HP_OK;
    }
    if (r->node_name) {
        rc = reconcile_agent(r, key, obj, requeue_ms);
    } else if (json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp")) {
        rc = finalize(r, key, obj);
        if (!rc)
            memo_drop(r, key);
    } else {
        rc = reconcile_controller(r, key, &obj, requeue_ms, &err);
    }
    *unreachable = rc == HP_ERR_UNAVAILABLE && !err.status;
    json_decref(obj);
    return rc;
}

/* ---------- threads ---------- */

static void *worker(void *arg)
{
    struct reconciler *r = arg;

    for (;;) {
        char *key = NULL;
        int64_t requeue = -1;
        bool unreachable = false;
        hp_rc rc = work_queue_get(r->queue, NULL, &key);

        if (rc)
            break;
        int64_t t0 = hp_now_ns();

        stat_add(r, &r->stats.reconciles);
        pthread_mutex_lock(&r->mu);
        cur_reconcile = r->stats.reconciles;
        pthread_mutex_unlock(&r->mu);
        rc = reconcile(r, key, &requeue, &unreachable);
        prom_histogram_observe(&r->reconcile_seconds, (double)(hp_now_ns() - t0) / 1e9);
        if (rc) {
            /* an apiserver that could not be reached served nothing: the key's own backoff, at
             * most UNREACHABLE_RETRY_MS, so keys are back soon after it is (work_queue.h) */
            int64_t d = unreachable ? work_queue_add_backoff(r->queue, key, UNREACHABLE_RETRY_MS)
                                    : work_queue_add_rate_limited(r->queue, key);

            stat_add(r, &r->stats.errors);
            rlog(r, RLOG_WARN, key, NULL, "reconcile failed (%s); retry in %lld ms", hp_rc_name(rc),
                 (long long)d);
        } else {
            work_queue_forget(r->queue, key);
            if (requeue >= 0)
                work_queue_add_after(r->queue, key, requeue);
        }
        work_queue_done(r->queue, key);
        hp_free(key);
    }
    return NULL;
}

static void on_event(void *arg, enum kube_event type, const char *key, json_t *obj)
{
    struct reconciler *r = arg;
    const char *slash = strchr(key, '/');

    (void)obj;
    if (type == KUBE_DELETED && r->cfg.on_object && slash) {
        char ns[256];

        snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
        r->cfg.on_object(r->cfg.object_arg, ns, slash + 1, NULL);
    }
    work_queue_add(r->queue, key);
}

/* wire: the modules' borrowed pointers into r, once its strings, store and ctx exist */
static void wire(struct reconciler *r)
{
    r->status = (struct status){.kube = r->cfg.kube,
                                .ctx = r->ctx,
                                .identity = r->identity,
                                .mu = &r->mu,
                                .sched = &r->sched,
                                .stats = &r->stats,
                                .log = status_log,
                                .log_arg = r};
    r->nodes =
        (struct nodes){.kube = r->cfg.kube, .ctx = r->ctx, .mu = &r->mu, .node_name = r->node_name};
    r->runner = (struct runner){.store = r->store,
                                .ctx = r->ctx,
                                .nodes = &r->nodes,
                                .identity = r->identity,
                                .node_name = r->node_name,
                                .host_root = r->host_root,
                                .policy = r->cfg.policy,
                                .budget = r->cfg.budget,
                                .max_sockets_per_run = r->cfg.max_sockets_per_run,
                                .mu = &r->mu,
                                .stats = &r->stats,
                                .check_seconds = r->check_seconds,
                                .run_seconds = r->run_seconds,
                                .results = r->results,
                                .on_commit = r->cfg.on_commit,
                                .commit_arg = r->cfg.commit_arg,
                                .log = vemit,
                                .log_arg = r};
}

hp_rc reconciler_start(const struct reconciler_config *cfg, struct reconciler **out,
                       struct hp_err *err)
{
    struct kube_informer_config icfg = {0};
    struct work_queue_config qcfg = {0};
    struct reconciler *r;
    char path[512];
    unsigned i;
    hp_rc rc;

    *out = NULL;
    if (!cfg->kube || !cfg->etcd || !cfg->batch)
        return hp_err_set(err, HP_ERR_INVALID, "a reconciler needs kube, etcd and batch");
    r = hp_calloc(1, sizeof(*r));
    if (!r)
        return HP_ERR_NOMEM;
    r->cfg = *cfg;
    pthread_mutex_init(&r->mu, NULL);
    prom_histogram_init(&r->reconcile_seconds, prom_buckets_seconds, 12);
    for (i = 0; i < CHECK_KIND__COUNT; i++)
        prom_histogram_init(&r->check_seconds[i], prom_buckets_seconds, 12);
    for (i = 0; i < RUNNER_OUTCOMES; i++)
        prom_histogram_init(&r->run_seconds[i], prom_buckets_seconds, 12);
    schedule_init(&r->sched,
                  (uint64_t)hp_now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL,
                  free_late);
    r->namespace_ = cfg->namespace_ ? hp_strdup(cfg->namespace_) : NULL;
    r->identity = hp_strdup(cfg->identity ? cfg->identity : "hostpatrol");
    r->node_name = cfg->node_name ? hp_strdup(cfg->node_name) : NULL;
    r->host_root = hp_strdup(cfg->host_root ? cfg->host_root : "/");
    if ((cfg->node_name && !r->node_name) || !r->host_root) {
        rc = HP_ERR_NOMEM;
        goto fail;
    }
    if (!r->identity || (cfg->namespace_ && !r->namespace_)) {
        rc = HP_ERR_NOMEM;
        goto fail;
    }
    r->cfg.workers = cfg->workers ? cfg->workers : 4;
    {
        struct results_store_config scfg = {.etcd = cfg->etcd,
                                            .batch = cfg->batch,
                                            .prefix = cfg->prefix,
                                            .commit_slack_ms = COMMIT_SLACK_MS,
                                            .late = late_final,
                                            .late_arg = r};

        rc = results_store_new(&scfg, &r->store);
    }
    if (!rc)
        rc = hp_ctx_new(NULL, HP_CTX_NO_TIMEOUT, &r->ctx);
    if (!rc)
        rc = work_queue_new(&qcfg, &r->queue);
    if (!rc)
        rc = spec_cache_new(cfg->policy, SPEC_CACHE_MAX_BYTES, &r->specs);
    if (rc)
        goto fail;
    wire(r);
    if (r->namespace_)
        snprintf(path, sizeof(path), API_PATH "/namespaces/%s/hostinspections", r->namespace_);
    else
        snprintf(path, sizeof(path), API_PATH "/hostinspections");
    icfg.client = cfg->kube;
    icfg.path = path;
    icfg.stall_ms = cfg->stall_ms;
    icfg.on_event = on_event;
    icfg.transform = transform;
    icfg.arg = r;
    /* the informer first: workers read its cache; keys wait in the queue until they start */
    rc = kube_informer_start(&icfg, &r->informer, err);
    if (rc)
        goto fail;
    r->threads = hp_calloc(r->cfg.workers, sizeof(*r->threads));
    if (!r->threads) {
        rc = HP_ERR_NOMEM;
        goto fail;
    }
    for (i = 0; i < r->cfg.workers; i++) {
        if (pthread_create(&r->threads[i], NULL, worker, r)) {
            rc = hp_err_set(err, HP_ERR_INTERNAL, "cannot start reconcile worker %u", i);
            goto fail;
        }
        r->n_threads++;
    }
    *out = r;
    return HP_OK;
fail:
    reconciler_stop(r, NULL);
    return rc;
}

bool reconciler_ready(struct reconciler *r, int64_t max_age_ms)
{
    return r && kube_informer_ready(r->informer, max_age_ms);
}

void reconciler_stop(struct reconciler *r, struct hp_ctx *drain)
{
    unsigned i;

    if (!r)
        return;
    results_store_detach(r->store); /* no late outcome reaches r from now on */
    atomic_store(&r->stopping, true);
    if (!drain)
        hp_ctx_cancel(r->ctx);
    if (r->queue && work_queue_shutdown(r->queue, drain))
        hp_ctx_cancel(r->ctx); /* drain ended: runs in progress stop now */
    for (i = 0; i < r->n_threads; i++)
        pthread_join(r->threads[i], NULL);
    hp_free(r->threads);
    kube_informer_stop(r->informer); /* after the workers: they read its cache */
    work_queue_free(r->queue);
    spec_cache_free(r->specs);
    schedule_release(&r->sched);
    hp_ctx_free(r->ctx);
    pthread_mutex_destroy(&r->mu);
    prom_histogram_release(&r->reconcile_seconds);
    for (i = 0; i < CHECK_KIND__COUNT; i++)
        prom_histogram_release(&r->check_seconds[i]);
    for (i = 0; i < RUNNER_OUTCOMES; i++)
        prom_histogram_release(&r->run_seconds[i]);
    results_store_free(r->store);
    hp_free(r->namespace_);
    hp_free(r->identity);
    hp_free(r->node_name);
    hp_free(r->host_root);
    nodes_release(&r->nodes);
    hp_free(r);
}

void reconciler_stats(struct reconciler *r, struct reconciler_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->stats;
    pthread_mutex_unlock(&r->mu);
}

void reconciler_watch_stats(struct reconciler *r, struct kube_informer_stats *out)
{
    kube_informer_stats(r->informer, out);
}

void reconciler_metrics(struct reconciler *r, struct prom_writer *w)
{
    uint64_t results[CHECK_KIND__COUNT][4];
    struct spec_cache_stats sc;
    size_t k, st;

    pthread_mutex_lock(&r->mu);
    memcpy(results, r->results, sizeof(results));
    pthread_mutex_unlock(&r->mu);
    prom_writer_family(w, "hostpatrol_reconcile_duration_seconds", "histogram",
                       "Duration of one reconcile (a run included when one was due).");
    prom_writer_histogram(w, "hostpatrol_reconcile_duration_seconds", NULL, &r->reconcile_seconds);
    prom_writer_family(w, "hostpatrol_run_duration_seconds", "histogram",
                       "Duration of one run of a HostInspection, its probes to its etcd commit's "
                       "end, by the commit's outcome.");
    for (k = 0; k < RUNNER_OUTCOMES; k++)
        prom_writer_histogram(w, "hostpatrol_run_duration_seconds",
                              (const char *const[]){"outcome", runner_outcome_name(k), NULL},
                              &r->run_seconds[k]);
    prom_writer_family(w, "hostpatrol_check_duration_seconds", "histogram",
                       "Duration of one check (probe or node-local) by kind.");
    for (k = 0; k < CHECK_KIND__COUNT; k++)
        prom_writer_histogram(
            w, "hostpatrol_check_duration_seconds",
            (const char *const[]){"kind", check_kind_name((enum check_kind)k), NULL},
            &r->check_seconds[k]);
    prom_writer_family(w, "hostpatrol_check_results_total", "counter",
                       "Check results by kind and status (the reasons are on the resource).");
    for (k = 0; k < CHECK_KIND__COUNT; k++)
        for (st = 0; st < 4; st++)
            prom_writer_sample(
                w, "hostpatrol_check_results_total",
                (const char *const[]){"kind", check_kind_name((enum check_kind)k), "status",
                                      check_status_name((enum check_status)st), NULL},
                (double)results[k][st]);
    spec_cache_stats(r->specs, &sc);
    prom_writer_family(w, "hostpatrol_spec_parses_total", "counter",
                       "HostInspection specs parsed and admitted (once per generation).");
    prom_writer_sample(w, "hostpatrol_spec_parses_total", NULL, (double)sc.parses);
    prom_writer_family(w, "hostpatrol_spec_cache_hits_total", "counter",
                       "Reconciles that reused the parsed spec of the same generation.");
    prom_writer_sample(w, "hostpatrol_spec_cache_hits_total", NULL, (double)sc.hits);
    prom_writer_family(w, "hostpatrol_spec_cache_bytes", "gauge",
                       "What the cached parsed specs hold, about (compiled patterns included).");
    prom_writer_sample(w, "hostpatrol_spec_cache_bytes", NULL, (double)sc.bytes);
    prom_writer_family(w, "hostpatrol_spec_cache_evictions_total", "counter",
                       "Parsed specs dropped to keep the cache under its byte cap.");
    prom_writer_sample(w, "hostpatrol_spec_cache_evictions_total", NULL, (double)sc.evictions);
    work_queue_metrics(r->queue, w);
}
