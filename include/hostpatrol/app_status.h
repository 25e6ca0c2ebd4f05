/*
 * app_status.h - what the controller's and the agent's /metrics, /healthz and /readyz answer
 * from: the running modules (set while they run) and the supervision loop's liveness. The three
 * handlers are http_server routes (http_server.h) whose arg is the struct app_status.
 *
 * /metrics concatenates what each module writes of itself (reconciler_metrics,
 * batch_queue_metrics, probe_budget_metrics, http_server_ws_metrics, metrics_auth_metrics) with
 * the process's own families (build info, leadership) and the counters of the reconciler, its
 * watch and the batch queue (their stats, as Prometheus text). No free-text labels.
 *
 * Thread-safety: rec, q and budget are set and cleared under mu (a module is cleared before it
 * is freed); auth and metrics_srv are set before the servers start and cleared after they stop;
 * the rest is atomic. The handlers run on the servers' threads.
 */
#ifndef HOSTPATROL_APP_STATUS_H
#define HOSTPATROL_APP_STATUS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "hostpatrol/batch_queue.h"
#include "hostpatrol/http_server.h"
#include "hostpatrol/metrics_auth.h"
#include "hostpatrol/probe_budget.h"
#include "hostpatrol/reconciler.h"

/* /healthz fails when the supervision loop has not turned for this long */
#define APP_STATUS_STALL_MS 10000
/* /readyz: a leader's watch must have heard from the API server within this long */
#define APP_STATUS_WATCH_FRESH_MS 150000

struct app_status {
    pthread_mutex_t mu;
    struct reconciler *rec;          /* borrowed, under mu: while this replica leads */
    struct batch_queue *q;           /* borrowed, under mu: likewise */
    struct probe_budget *budget;     /* borrowed, under mu */
    struct metrics_auth *auth;       /* borrowed: the access reviews of /metrics, or NULL */
    struct http_server *metrics_srv; /* borrowed: the server of /ws, or NULL */
    atomic_llong tick_ns;            /* the supervision loop's last turn (CLOCK_MONOTONIC) */
    atomic_int etcd_ok;              /* the last etcd status check answered */
    atomic_int leading;              /* this replica leads */
};

void app_status_init(struct app_status *s);    /* all NULL / 0; tick_ns now */
void app_status_release(struct app_status *s); /* NULL allowed */

/* app_status_set_running: rec and q (borrowed; NULL: they are about to go), under mu */
void app_status_set_running(struct app_status *s, struct reconciler *rec, struct batch_queue *q);
/* app_status_set_budget: budget (borrowed; NULL: it is about to go), under mu */
void app_status_set_budget(struct app_status *s, struct probe_budget *budget);

/* The handlers (http_handler_fn of http_server.h): arg is the struct app_status (borrowed).
 * /healthz: 200 "ok" while the loop turns, else 500 "main loop stalled". /readyz: 503 while
 * etcd does not answer or a leader's watch is not synced and fresh, else 200 "ok". /metrics:
 * 200 and the text, 500 when out of memory. *body owned by the caller. */
int app_status_healthz(void *arg, char **body, size_t *len, const char **ctype);
int app_status_readyz(void *arg, char **body, size_t *len, const char **ctype);
int app_status_metrics(void *arg, char **body, size_t *len, const char **ctype);

#endif
