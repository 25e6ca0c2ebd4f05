/* app_status.c - /metrics, /healthz and /readyz of the controller and the agent (see
 * include/hostpatrol/app_status.h). */
#include "hostpatrol/app_status.h"

#include <string.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/buildinfo.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/kube_informer.h"
#include "hostpatrol/prom_writer.h"

void app_status_init(struct app_status *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    atomic_store(&s->tick_ns, hp_now_ns());
}

void app_status_release(struct app_status *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
}

void app_status_set_running(struct app_status *s, struct reconciler *rec, struct batch_queue *q)
{
    pthread_mutex_lock(&s->mu);
    s->rec = rec;
    s->q = q;
    pthread_mutex_unlock(&s->mu);
}

void app_status_set_budget(struct app_status *s, struct probe_budget *budget)
{
    pthread_mutex_lock(&s->mu);
    s->budget = budget;
    pthread_mutex_unlock(&s->mu);
}

static void text_answer(const char *text, char **body, size_t *len)
{
    *body = hp_strdup(text);
    *len = *body ? strlen(*body) : 0;
}

int app_status_healthz(void *arg, char **body, size_t *len, const char **ctype)
{
    struct app_status *s = arg;
    int64_t age_ms = (hp_now_ns() - (int64_t)atomic_load(&s->tick_ns)) / 1000000;

    *ctype = NULL;
    text_answer(age_ms < APP_STATUS_STALL_MS ? "ok\n" : "main loop stalled\n", body, len);
    return age_ms < APP_STATUS_STALL_MS ? 200 : 500;
}

int app_status_readyz(void *arg, char **body, size_t *len, const char **ctype)
{
    struct app_status *s = arg;
    bool watch_ok = true;

    *ctype = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->rec)
        watch_ok = reconciler_ready(s->rec, APP_STATUS_WATCH_FRESH_MS);
    pthread_mutex_unlock(&s->mu);
    if (!atomic_load(&s->etcd_ok)) {
        text_answer("etcd not reachable\n", body, len);
        return 503;
    }
    if (!watch_ok) {
        text_answer("HostInspection watch not synced or not fresh\n", body, len);
        return 503;
    }
    text_answer("ok\n", body, len);
    return 200;
}

/* reconcile_counters: the reconciler's and its watch's counters */
static void reconcile_counters(struct prom_writer *w, const struct reconciler_stats *rs,
                               const struct kube_informer_stats *ws)
{
    prom_writer_counter(w, "hostpatrol_reconcile_total", "Reconciles.", (double)rs->reconciles);
    prom_writer_counter(w, "hostpatrol_reconcile_errors_total",
                        "Reconciles that failed and were retried.", (double)rs->errors);
    prom_writer_family(w, "hostpatrol_runs_total", "counter",
                       "Inspection runs by the outcome of their etcd commit.");
    prom_writer_sample(w, "hostpatrol_runs_total",
                       (const char *const[]){"outcome", "committed", NULL},
                       (double)rs->runs_committed);
    prom_writer_sample(w, "hostpatrol_runs_total", (const char *const[]){"outcome", "failed", NULL},
                       (double)rs->runs_failed);
    prom_writer_counter(w, "hostpatrol_status_writes_total", "Status updates written.",
                        (double)rs->status_writes);
    prom_writer_counter(w, "hostpatrol_events_total", "Events posted.", (double)rs->events);
    prom_writer_counter(w, "hostpatrol_cleanups_total", "Results deleted by the finalizer.",
                        (double)rs->cleanups);
    prom_writer_counter(w, "hostpatrol_watch_lists_total", "LISTs of HostInspections.",
                        (double)ws->lists);
    prom_writer_counter(w, "hostpatrol_watch_relists_total", "LISTs after a 410 Gone.",
                        (double)ws->gone);
    prom_writer_counter(w, "hostpatrol_watch_restarts_total", "Watches cut by the stall detector.",
                        (double)ws->stalls);
    prom_writer_counter(w, "hostpatrol_watch_errors_total", "Watch and LIST errors.",
                        (double)ws->errors);
    prom_writer_gauge(w, "hostpatrol_watch_last_event_age_seconds",
                      "Seconds since the last LIST, event or bookmark.",
                      ws->last_seen_ns ? (double)(hp_now_ns() - ws->last_seen_ns) / 1e9 : 0);
}

/* batch_counters: the batch queue's counters and gauges */
static void batch_counters(struct prom_writer *w, const struct batch_stats *bs)
{
    prom_writer_family(w, "hostpatrol_etcd_batches_total", "counter", "etcd batches by outcome.");
    prom_writer_sample(w, "hostpatrol_etcd_batches_total",
                       (const char *const[]){"outcome", "committed", NULL}, (double)bs->committed);
    prom_writer_sample(w, "hostpatrol_etcd_batches_total",
                       (const char *const[]){"outcome", "failed", NULL}, (double)bs->failed);
    prom_writer_sample(w, "hostpatrol_etcd_batches_total",
                       (const char *const[]){"outcome", "rolled_back", NULL},
                       (double)bs->rolled_back);
    prom_writer_gauge(w, "hostpatrol_etcd_unresolved_batches", "Batches waiting for resolution.",
                      (double)bs->unresolved);
    prom_writer_gauge(w, "hostpatrol_etcd_inflight_limit", "The adaptive limiter's txn limit.",
                      (double)bs->limit);
    prom_writer_gauge(w, "hostpatrol_etcd_queue_depth", "Records waiting to be sent.",
                      (double)bs->queued);
    prom_writer_counter(w, "hostpatrol_etcd_rejected_total", "Records refused by a full queue.",
                        (double)bs->rejected);
    prom_writer_counter(w, "hostpatrol_etcd_fenced_total",
                        "Batches refused by a newer fencing epoch.", (double)bs->fenced);
}

int app_status_metrics(void *arg, char **body, size_t *len, const char **ctype)
{
    struct app_status *s = arg;
    struct reconciler_stats rs = {0};
    struct kube_informer_stats ws = {0};
    struct batch_stats bs = {0};
    struct hp_buildinfo bi;
    struct prom_writer w;

    hp_buildinfo_get(&bi);
    prom_writer_init(&w);
    pthread_mutex_lock(&s->mu);
    if (s->rec) {
        reconciler_stats(s->rec, &rs);
        reconciler_watch_stats(s->rec, &ws);
        reconciler_metrics(s->rec, &w);
    }
    if (s->q) {
        batch_queue_stats(s->q, &bs);
        batch_queue_metrics(s->q, &w);
    }
    pthread_mutex_unlock(&s->mu);
    prom_writer_family(&w, "hostpatrol_build_info", "gauge", "Build information.");
    prom_writer_sample(&w, "hostpatrol_build_info",
                       (const char *const[]){"version", bi.version, "commit", bi.commit, NULL}, 1);
    prom_writer_gauge(&w, "hostpatrol_leader", "1 while this replica is the leader.",
                      atomic_load(&s->leading));
    reconcile_counters(&w, &rs, &ws);
    batch_counters(&w, &bs);
    pthread_mutex_lock(&s->mu);
    probe_budget_metrics(s->budget, &w);
    pthread_mutex_unlock(&s->mu);
    if (s->metrics_srv)
        http_server_ws_metrics(s->metrics_srv, &w);
    if (s->auth)
        metrics_auth_metrics(s->auth, &w);
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    *body = prom_writer_take(&w, len);
    return *body ? 200 : 500;
}
