/* runner.c - one run of a HostInspection: checks, results, one commit (see runner.h). */
#include "reconcile/runner.h"

#include <stdarg.h>
#include <stdio.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/host_check.h"
#include "hostpatrol/probe.h"
#include "hostpatrol/run_plan.h"
#include "reconcile/schedule.h"
#include "reconcile/status.h"

static const char *const outcome_names[RUNNER_OUTCOMES] = {"committed", "failed", "unresolved"};

static void say(struct runner *rn, enum reconciler_log_level lvl, const char *key,
                const char *run_id, const char *batch, const char *fmt, ...) HP_PRINTF(6, 7);

static void say(struct runner *rn, enum reconciler_log_level lvl, const char *key,
                const char *run_id, const char *batch, const char *fmt, ...)
{
    va_list ap;

    if (!rn->log)
        return;
    va_start(ap, fmt);
    rn->log(rn->log_arg, lvl, key, run_id, batch, fmt, ap);
    va_end(ap);
}

static void count(struct runner *rn, uint64_t *field)
{
    pthread_mutex_lock(rn->mu);
    (*field)++;
    pthread_mutex_unlock(rn->mu);
}

int64_t runner_commit_reserve_ms(int64_t timeout_ms)
{
    int64_t reserve = timeout_ms / 5 > 100 ? timeout_ms / 5 : 100;

    return reserve > timeout_ms / 2 ? timeout_ms / 2 : reserve;
}

enum runner_outcome runner_outcome(hp_rc commit_rc)
{
    return !commit_rc                            ? RUNNER_COMMITTED
           : commit_rc == HP_ERR_UNKNOWN_OUTCOME ? RUNNER_UNRESOLVED
                                                 : RUNNER_FAILED;
}

const char *runner_outcome_name(enum runner_outcome o)
{
    return (unsigned)o < RUNNER_OUTCOMES ? outcome_names[o] : "unknown";
}

/* notify_commit: hand on_commit the committed run (sr, borrowed) as one JSON text */
static void notify_commit(struct runner *rn, const char *ns, const char *name, const char *run_id,
                          int64_t revision, const struct results_store_run *sr)
{
    char *text = NULL;

    if (!results_store_run_text(sr, run_id, revision, &text))
        rn->on_commit(rn->commit_arg, ns, name, text);
    else
        say(rn, RLOG_WARN, NULL, run_id, NULL,
            "committed run of %s/%s not published: out of memory", ns, name);
    hp_free(text);
}

/* run_checks: what this process runs of plan, under pctx: the agent its node-local checks on the
 * host root; the controller the probes and the node conditions (*nodes: the matching nodes, new
 * reference or NULL; *listed as nodes_conditions). *res (owned, *cap entries) gets the results. */
static hp_rc run_checks(struct runner *rn, const char *ns, const struct inspection_spec *spec,
                        const struct run_plan *plan, struct hp_ctx *pctx, struct check_result **res,
                        size_t *n_res, size_t *cap, bool *listed, json_t **nodes,
                        struct hp_err *err)
{
    struct probe_options po = {.policy = rn->policy,
                               .budget = rn->budget,
                               .owner = ns,
                               .max_in_flight = rn->max_sockets_per_run};
    hp_rc rc = HP_OK;

    *cap = plan->n_items + plan->n_local + 1;
    *res = hp_calloc(*cap, sizeof(**res));
    if (!*res)
        return HP_ERR_NOMEM;
    if (rn->node_name) { /* the agent: this node's node-local checks, from the host root */
        if (!plan->n_local)
            return HP_OK;
        rc = host_check_run(rn->host_root, rn->node_name, plan->local, plan->n_local, pctx, *res,
                            err);
        *n_res = plan->n_local;
        return rc;
    }
    if (plan->n_items) {
        rc = probe_run_opts(plan->items, plan->n_items, pctx, &po, *res, err);
        *n_res = plan->n_items;
        if (rc)
            return rc;
    }
    return nodes_conditions(rn->nodes, pctx, spec, res, n_res, cap, listed, nodes);
}

hp_rc runner_add_results(struct runner *rn, const char *run_id, const struct check_result *res,
                         size_t n_res, struct run_report *rep, struct results_store_run *sr)
{
    char source[320];
    size_t i;
    hp_rc rc;

    if (rn->node_name)
        snprintf(source, sizeof(source), "agent/%s", rn->node_name);
    else
        snprintf(source, sizeof(source), "controller/%s", rn->identity);
    for (i = 0; i < n_res; i++) {
        if ((unsigned)res[i].kind < CHECK_KIND__COUNT && (unsigned)res[i].status < 4) {
            prom_histogram_observe(&rn->check_seconds[res[i].kind],
                                   (double)res[i].duration_ms / 1000);
            pthread_mutex_lock(rn->mu);
            rn->results[res[i].kind][res[i].status]++;
            pthread_mutex_unlock(rn->mu);
        }
        run_report_add(rep, res[i].target, res[i].check, res[i].status, res[i].reason);
        rc = results_store_run_put(sr, &res[i], source, run_id);
        if (rc)
            return rc;
    }
    return HP_OK;
}

/* run_contexts: the run's deadline (*ctx: spec.timeout) and its checks' (*pctx): they end
 * runner_commit_reserve_ms before it, for the commit */
static hp_rc run_contexts(struct runner *rn, const struct inspection_spec *spec,
                          struct hp_ctx **ctx, struct hp_ctx **pctx)
{
    int64_t reserve = runner_commit_reserve_ms(spec->timeout_ms);
    hp_rc rc = hp_ctx_new(rn->ctx, spec->timeout_ms, ctx);

    return rc ? rc : hp_ctx_new(*ctx, spec->timeout_ms - reserve, pctx);
}

/* commit: the run's writes (sr, borrowed) as one commit, its outcome in rep; logged; the
 * committed run handed to on_commit */
static void commit(struct runner *rn, const char *key, const char *ns, const char *name,
                   const char *run_id, struct hp_ctx *ctx, struct results_store_run *sr,
                   struct run_report *rep)
{
    struct results_store_commit co;

    rep->commit_rc = results_store_run_commit(sr, ctx, key, run_id, &co);
    rep->revision = co.revision;
    snprintf(rep->batch_id, sizeof(rep->batch_id), "%s", co.batch);
    snprintf(rep->why, sizeof(rep->why), "%s", co.why);
    say(rn, rep->commit_rc ? RLOG_WARN : RLOG_INFO, key, run_id,
        rep->batch_id[0] ? rep->batch_id : NULL,
        "run done: %zu ok, %zu warn, %zu crit, %zu unknown; %zu etcd writes %s%s",
        rep->counts[CHECK_OK], rep->counts[CHECK_WARN], rep->counts[CHECK_CRIT],
        rep->counts[CHECK_UNKNOWN], results_store_run_len(sr),
        rep->commit_rc ? "not committed: " : "committed", rep->commit_rc ? rep->why : "");
    if (!rep->commit_rc && rn->on_commit)
        notify_commit(rn, ns, name, run_id, rep->revision, sr);
}

hp_rc runner_run(struct runner *rn, const char *key, const json_t *obj,
                 const struct inspection_spec *spec, const char *run_id, bool withdraw,
                 struct run_report *rep)
{
    const char *ns = status_str(obj, "metadata", "namespace"),
               *name = status_str(obj, "metadata", "name");
    struct results_store_stored stored = {0};
    struct check_result *res = NULL;
    struct run_plan plan = {0};
    struct results_store_run *sr = NULL;
    struct hp_ctx *ctx = NULL, *pctx = NULL;
    struct hp_err err = {0}, rerr = {0};
    size_t n_res = 0, cap = 0, i;
    bool nodes_listed = true, have_stored;
    json_t *nodes = NULL;
    hp_rc rc = run_contexts(rn, spec, &ctx, &pctx);

    if (!rc)
        rc = results_store_run_new(rn->store, ns, name, rn->on_commit != NULL, &sr);
    if (!rc)
        rc = run_plan_init(&plan, spec, !withdraw);
    if (!rc)
        rc = run_checks(rn, ns, spec, &plan, pctx, &res, &n_res, &cap, &nodes_listed, &nodes, &err);
    if (rc)
        goto out;
    have_stored = results_store_read(rn->store, ctx, ns, name, &stored, &rerr) == HP_OK;
    if (!have_stored)
        say(rn, RLOG_WARN, NULL, NULL, NULL, "stored results of %s/%s not read: %s", ns, name,
            rerr.msg);
    if (!rn->node_name && nodes)
        nodes_local_summary(spec, nodes, have_stored ? &stored.resp : NULL, stored.plen,
                            schedule_wall_ms(), rep);
    rc = runner_add_results(rn, run_id, res, n_res, rep, sr);
    if (!rc && have_stored) {
        struct results_store_produced p = {spec, res, n_res, rn->node_name, nodes_listed};

        rc = results_store_run_stale(sr, &stored, &p);
    }
    if (rc)
        goto out;
    if (!results_store_run_len(sr)) {
        rep->commit_rc = HP_OK;
        snprintf(rep->why, sizeof(rep->why), "nothing of this %s to store",
                 rn->node_name ? "node" : "controller");
        goto out;
    }
    commit(rn, key, ns, name, run_id, ctx, sr, rep);
out:
    if (rc)
        say(rn, RLOG_ERROR, key, run_id, NULL, "run failed: %s %s", hp_rc_name(rc), err.msg);
    for (i = 0; res && i < n_res; i++)
        check_result_release(&res[i]);
    results_store_stored_release(&stored);
    json_decref(nodes);
    hp_free(res);
    run_plan_release(&plan);
    results_store_run_free(sr);
    hp_ctx_free(pctx);
    hp_ctx_free(ctx);
    return rc;
}

hp_rc runner_run_counted(struct runner *rn, const char *key, const json_t *obj,
                         const struct inspection_spec *spec, const char *run_id,
                         struct run_report *rep)
{
    int64_t t0 = hp_now_ns();
    hp_rc rc;

    count(rn, &rn->stats->runs);
    rc = runner_run(rn, key, obj, spec, run_id, false, rep);
    if (rc)
        return rc;
    prom_histogram_observe(&rn->run_seconds[runner_outcome(rep->commit_rc)],
                           (double)(hp_now_ns() - t0) / 1e9);
    count(rn, rep->commit_rc ? &rn->stats->runs_failed : &rn->stats->runs_committed);
    return HP_OK;
}
