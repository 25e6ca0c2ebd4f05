/* controller.c - `hostpatrol controller` and `hostpatrol agent`: flags -> kube client, etcd
 * client, leader election (controller), batch queue and reconciler (the agent runs it in agent
 * mode); /metrics, /healthz, /readyz; SIGTERM/SIGINT drain and release the lease. */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/batch_queue.h"
#include "hostpatrol/buildinfo.h"
#include "hostpatrol/dashboard.h"
#include "hostpatrol/http_server.h"
#include "hostpatrol/prom_writer.h"
#include "hostpatrol/duration.h"
#include "hostpatrol/etcd_client.h"
#include "hostpatrol/kube_client.h"
#include "hostpatrol/kube_config.h"
#include "hostpatrol/kube_leader.h"
#include "hostpatrol/metrics_auth.h"
#include "hostpatrol/probe_budget.h"
#include "hostpatrol/reconciler.h"
#include "hostpatrol/serving_cert.h"

static void agent_usage(FILE *f)
{
    fprintf(f,
            "Usage: hostpatrol agent --node-name NODE [flags]\n"
            "Run the node-local checks (disk, load, memory, process, file) of the\n"
            "HostInspections that select this node, reading the host below --host-root, and\n"
            "write their results into etcd (one agent per node, as a DaemonSet).\n\n"
            "  --node-name NODE                this node (default $NODE_NAME)\n"
            "  --host-root DIR                 where the host's / is mounted (default /)\n"
            "  --kubeconfig FILE --context NAME --namespace NS --max-concurrent-reconciles N\n"
            "  --etcd-endpoints URLS --etcd-ca-file F --etcd-cert-file F --etcd-key-file F\n"
            "  --etcd-server-name NAME --etcd-user NAME --etcd-prefix P --state-dir DIR\n"
            "  --metrics-bind-address ADDR --health-probe-bind-address ADDR   (default 0: off)\n"
            "  --metrics-secure=true|false --metrics-cert-dir DIR --metrics-auth-cache-ttl DUR\n"
            "  --metrics-auth-timeout DUR\n"
            "  --log-level debug|info|warn|error  --log-format json|text  --shutdown-timeout DUR\n"
            "As for 'hostpatrol controller' (see its --help).\n\n" HP_POLICY_USAGE);
}

static void controller_usage(FILE *f)
{
    fprintf(
        f,
        "Usage: hostpatrol controller [flags]\n"
        "Reconcile HostInspection resources: run their checks on schedule, write the results\n"
        "into etcd through the transactional batch queue, report status on the resource.\n\n"
        "  --kubeconfig FILE               kubeconfig (default $KUBECONFIG, in-cluster, "
        "~/.kube/config)\n"
        "  --context NAME                  kubeconfig context\n"
        "  --namespace NS                  watch one namespace (default: all)\n"
        "  --max-concurrent-reconciles N   reconcile workers (default 4)\n"
        "  --leader-elect                  elect a leader through a Lease (for replicas)\n"
        "  --leader-elect-namespace NS     the Lease's namespace (default: the kubeconfig's)\n"
        "  --leader-elect-id NAME          the Lease's name (default hostpatrol-controller)\n"
        "  --lease-duration DUR --renew-deadline DUR --retry-period DUR   (15s, 10s, 2s)\n"
        "  --identity ID                   this replica (default: host name + pid)\n"
        "  --etcd-endpoints URLS           results etcd (or $HOSTPATROL_ETCD_ENDPOINTS)\n"
        "  --etcd-ca-file F --etcd-cert-file F --etcd-key-file F --etcd-server-name NAME\n"
        "  --etcd-transport grpc|gateway   native gRPC (default) or the JSON gateway\n"
        "  --etcd-user NAME                etcd auth; password from "
        "$HOSTPATROL_ETCD_PASSWORD\n"
        "  --etcd-prefix P                 key prefix (default /hostpatrol/)\n"
        "  --state-dir DIR                 journal of unresolved etcd batches\n"
        "  --metrics-bind-address ADDR     /metrics and /ws (default :8443; 0 disables)\n"
        "  --health-probe-bind-address ADDR   /healthz, /readyz (default :8081; 0 disables),\n"
        "                                  always plain HTTP without authentication\n"
        "  --metrics-secure=true|false     HTTPS, and every request authenticated by a\n"
        "                                  TokenReview and authorised by a SubjectAccessReview\n"
        "                                  (default true). false: plain HTTP, NO authentication:\n"
        "                                  for local runs only\n"
        "  --metrics-cert-dir DIR          tls.crt and tls.key (re-read when they change);\n"
        "                                  default: a self-signed certificate made at start\n"
        "  --metrics-auth-cache-ttl DUR    how long review verdicts are reused (default 30s)\n"
        "  --metrics-auth-timeout DUR      deadline of one review (default 5s)\n"
        "  --dashboard=true|false          the live dashboard at / of the metrics server\n"
        "                                  (default true; it shows only what the viewer's token\n"
        "                                  may read)\n"
        "  --shutdown-timeout DUR          SIGTERM to exit at most this long (default 15s): runs\n"
        "                                  finish until 3 s before it, then are cancelled; etcd\n"
        "                                  batches not final are journaled; the Lease released\n"
        "  --log-level debug|info|warn|error   (default info)\n"
        "  --log-format json|text          one JSON object per line (default) or text\n"
        "Logs never carry tokens, keys or passwords.\n\n" HP_POLICY_USAGE);
}

/* SIGTERM to exit: runs finish until SHUTDOWN_RESERVE_MS before --shutdown-timeout, then are
 * cancelled; the reserve covers the journal of batches not final, the Lease release (2 s at
 * most) and the servers' stop. */
#define SHUTDOWN_DEFAULT_MS 15000
#define SHUTDOWN_MIN_MS     2000
#define SHUTDOWN_RESERVE_MS 3000

static atomic_int log_min = RLOG_INFO;
static bool agent_mode; /* set once by the entry point, before any thread */
static bool log_text;   /* --log-format text; set before any thread */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void log_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* log_line: one JSON object per line on stderr */
static void log_line(void *arg, enum reconciler_log_level lvl, const struct reconciler_log_ids *ids,
                     const char *msg)
{
    const char *key = ids ? ids->key : NULL, *run_id = ids ? ids->run : NULL,
               *batch = ids ? ids->batch : NULL;
    unsigned long long rec = ids ? (unsigned long long)ids->reconcile : 0;
    static const char *const names[] = {"debug", "info", "warn", "error"};
    struct timespec ts;
    struct tm tm;
    char when[40];

    (void)arg;
    if ((int)lvl < atomic_load(&log_min))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_mutex_lock(&log_mu);
    if (log_text) {
        /* for terminals: time level module [key] [run=] message */
        fprintf(stderr, "%s.%03ldZ %-5s %s%s%s%s%s%s%s %s\n", when, ts.tv_nsec / 1000000,
                names[lvl], agent_mode ? "agent" : "controller", key ? " " : "", key ? key : "",
                run_id ? " run=" : "", run_id ? run_id : "", batch ? " batch=" : "",
                batch ? batch : "", msg);
        pthread_mutex_unlock(&log_mu);
        return;
    }
    fprintf(stderr, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"module\":\"%s\"", when,
            ts.tv_nsec / 1000000, names[lvl], agent_mode ? "agent" : "controller");
    if (key) {
        fprintf(stderr, ",\"key\":");
        log_json_str(stderr, key);
    }
    if (rec)
        fprintf(stderr, ",\"reconcile\":%llu", rec);
    if (run_id) {
        fprintf(stderr, ",\"run\":");
        log_json_str(stderr, run_id);
    }
    if (batch) {
        fprintf(stderr, ",\"batch\":");
        log_json_str(stderr, batch);
    }
    fprintf(stderr, ",\"msg\":");
    log_json_str(stderr, msg);
    fprintf(stderr, "}\n");
    pthread_mutex_unlock(&log_mu);
}

static void logf_(enum reconciler_log_level lvl, const char *fmt, ...) HP_PRINTF(2, 3);
static void logf_(enum reconciler_log_level lvl, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_line(NULL, lvl, NULL, msg);
}

/* What the metrics and health handlers (server thread) read. rec and q are set under mu once
 * this replica leads, and cleared under mu before they are freed; the rest is atomic. */
struct ctl_state {
    struct metrics_auth *auth; /* set before the metrics server starts, freed after it stops */
    struct http_server *metrics_srv; /* likewise: the server of /ws (its handler reads it) */
    pthread_mutex_t mu;
    struct reconciler *rec;
    struct batch_queue *q;
    struct probe_budget *budget; /* set under mu before the servers start, cleared before freed */
    atomic_llong tick_ns;        /* the main loop's last turn (CLOCK_MONOTONIC) */
    atomic_int etcd_ok;          /* the last etcd status check answered */
    atomic_int leading;
};
static struct ctl_state state = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int text_answer(const char *text, char **body, size_t *len)
{
    *body = hp_strdup(text);
    *len = *body ? strlen(*body) : 0;
    return 0;
}

/* /healthz: the main loop turns (it checks signals, leadership and etcd every 200 ms) */
static int healthz(void *arg, char **body, size_t *len, const char **ctype)
{
    int64_t age_ms = (hp_now_ns() - (int64_t)atomic_load(&state.tick_ns)) / 1000000;

    (void)arg;
    *ctype = NULL;
    text_answer(age_ms < 10000 ? "ok\n" : "main loop stalled\n", body, len);
    return age_ms < 10000 ? 200 : 500;
}

/* /readyz: etcd answers, and a leader's watch is synced and fresh (a standby is ready) */
static int readyz(void *arg, char **body, size_t *len, const char **ctype)
{
    bool watch_ok = true;

    (void)arg;
    *ctype = NULL;
    pthread_mutex_lock(&state.mu);
    if (state.rec)
        watch_ok = reconciler_ready(state.rec, 150000);
    pthread_mutex_unlock(&state.mu);
    if (!atomic_load(&state.etcd_ok)) {
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

static void counter(struct prom_writer *w, const char *name, const char *help, double v)
{
    prom_writer_family(w, name, "counter", help);
    prom_writer_sample(w, name, NULL, v);
}

static void gauge(struct prom_writer *w, const char *name, const char *help, double v)
{
    prom_writer_family(w, name, "gauge", help);
    prom_writer_sample(w, name, NULL, v);
}

/* /metrics: counters of the reconciler, the watch and the batch queue (no free-text labels) */
static int metrics(void *arg, char **body, size_t *len, const char **ctype)
{
    struct reconciler_stats rs = {0};
    struct kube_informer_stats ws = {0};
    struct batch_stats bs = {0};
    struct probe_budget_stats pb;
    struct hp_buildinfo bi;
    struct prom_writer w;
    bool have_rec, have_q;

    (void)arg;
    hp_buildinfo_get(&bi);
    pthread_mutex_lock(&state.mu);
    have_rec = state.rec != NULL;
    have_q = state.q != NULL;
    if (have_rec) {
        reconciler_stats(state.rec, &rs);
        reconciler_watch_stats(state.rec, &ws);
    }
    if (have_q)
        batch_queue_stats(state.q, &bs);
    probe_budget_stats(state.budget, &pb);
    prom_writer_init(&w);
    if (have_rec)
        reconciler_metrics(state.rec, &w);
    if (have_q)
        batch_queue_metrics(state.q, &w);
    pthread_mutex_unlock(&state.mu);
    prom_writer_family(&w, "hostpatrol_build_info", "gauge", "Build information.");
    prom_writer_sample(&w, "hostpatrol_build_info",
                       (const char *const[]){"version", bi.version, "commit", bi.commit, NULL}, 1);
    gauge(&w, "hostpatrol_leader", "1 while this replica is the leader.",
          atomic_load(&state.leading));
    counter(&w, "hostpatrol_reconcile_total", "Reconciles.", (double)rs.reconciles);
    counter(&w, "hostpatrol_reconcile_errors_total", "Reconciles that failed and were retried.",
            (double)rs.errors);
    prom_writer_family(&w, "hostpatrol_runs_total", "counter",
                       "Inspection runs by the outcome of their etcd commit.");
    prom_writer_sample(&w, "hostpatrol_runs_total",
                       (const char *const[]){"outcome", "committed", NULL},
                       (double)rs.runs_committed);
    prom_writer_sample(&w, "hostpatrol_runs_total",
                       (const char *const[]){"outcome", "failed", NULL}, (double)rs.runs_failed);
    counter(&w, "hostpatrol_status_writes_total", "Status updates written.",
            (double)rs.status_writes);
    counter(&w, "hostpatrol_events_total", "Events posted.", (double)rs.events);
    counter(&w, "hostpatrol_cleanups_total", "Results deleted by the finalizer.",
            (double)rs.cleanups);
    counter(&w, "hostpatrol_watch_lists_total", "LISTs of HostInspections.", (double)ws.lists);
    counter(&w, "hostpatrol_watch_relists_total", "LISTs after a 410 Gone.", (double)ws.gone);
    counter(&w, "hostpatrol_watch_restarts_total", "Watches cut by the stall detector.",
            (double)ws.stalls);
    counter(&w, "hostpatrol_watch_errors_total", "Watch and LIST errors.", (double)ws.errors);
    gauge(&w, "hostpatrol_watch_last_event_age_seconds",
          "Seconds since the last LIST, event or bookmark.",
          ws.last_seen_ns ? (double)(hp_now_ns() - ws.last_seen_ns) / 1e9 : 0);
    prom_writer_family(&w, "hostpatrol_etcd_batches_total", "counter", "etcd batches by outcome.");
    prom_writer_sample(&w, "hostpatrol_etcd_batches_total",
                       (const char *const[]){"outcome", "committed", NULL}, (double)bs.committed);
    prom_writer_sample(&w, "hostpatrol_etcd_batches_total",
                       (const char *const[]){"outcome", "failed", NULL}, (double)bs.failed);
    prom_writer_sample(&w, "hostpatrol_etcd_batches_total",
                       (const char *const[]){"outcome", "rolled_back", NULL},
                       (double)bs.rolled_back);
    gauge(&w, "hostpatrol_etcd_unresolved_batches", "Batches waiting for resolution.",
          (double)bs.unresolved);
    gauge(&w, "hostpatrol_etcd_inflight_limit", "The adaptive limiter's txn limit.",
          (double)bs.limit);
    gauge(&w, "hostpatrol_etcd_queue_depth", "Records waiting to be sent.", (double)bs.queued);
    counter(&w, "hostpatrol_etcd_rejected_total", "Records refused by a full queue.",
            (double)bs.rejected);
    counter(&w, "hostpatrol_etcd_fenced_total", "Batches refused by a newer fencing epoch.",
            (double)bs.fenced);
    gauge(&w, "hostpatrol_probes_in_flight",
          "Units of the probe budget in use (a probe 1, an http probe with bodyRegex 16).",
          (double)pb.in_use);
    gauge(&w, "hostpatrol_probes_in_flight_limit", "--max-probes-in-flight.", (double)pb.limit);
    counter(&w, "hostpatrol_probe_budget_waits_total",
            "Times a run found the probe budget in use and waited.", (double)pb.refused);
    gauge(&w, "hostpatrol_probes_parked",
          "Units kept taken for name resolutions libcurl goes on with after their probe ended.",
          (double)pb.parked);
    if (state.metrics_srv) {
        struct http_ws_stats ws_st;

        http_server_ws_stats(state.metrics_srv, &ws_st);
        gauge(&w, "hostpatrol_ws_clients", "Clients of /ws (the dashboard's among them).",
              (double)ws_st.clients);
        gauge(&w, "hostpatrol_dashboard_kept_messages",
              "Latest runs and HostInspection states kept in memory for the dashboard.",
              (double)ws_st.kept);
        gauge(&w, "hostpatrol_dashboard_kept_bytes", "Their text, in bytes.",
              (double)ws_st.kept_bytes);
    }
    if (state.auth) {
        struct metrics_auth_stats as;

        metrics_auth_stats(state.auth, &as);
        prom_writer_family(&w, "hostpatrol_metrics_auth_reviews_total", "counter",
                           "TokenReviews and SubjectAccessReviews made for /metrics and /ws.");
        prom_writer_sample(&w, "hostpatrol_metrics_auth_reviews_total",
                           (const char *const[]){"review", "token", NULL},
                           (double)as.token_reviews);
        prom_writer_sample(&w, "hostpatrol_metrics_auth_reviews_total",
                           (const char *const[]){"review", "access", NULL},
                           (double)as.access_reviews);
        counter(&w, "hostpatrol_metrics_auth_review_errors_total",
                "Reviews the API server did not answer (verdict 5xx).", (double)as.review_errors);
        counter(&w, "hostpatrol_metrics_auth_review_seconds_total", "Time spent in reviews.",
                (double)as.review_ns_total / 1e9);
        gauge(&w, "hostpatrol_metrics_auth_review_max_seconds", "The longest review so far.",
              (double)as.review_ns_max / 1e9);
        counter(&w, "hostpatrol_metrics_auth_cache_hits_total",
                "Access checks answered from the verdict cache.", (double)as.hits);
        counter(&w, "hostpatrol_metrics_auth_cache_misses_total",
                "Access checks that needed a review.", (double)as.misses);
    }
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    *body = prom_writer_take(&w, len);
    return *body ? 200 : 500;
}

/* leadership flags, set on the elector's thread, acted on by the main thread */
static atomic_int lead_started, lead_lost;

static void on_started(void *arg)
{
    (void)arg;
    atomic_store(&lead_started, 1);
}

static void on_stopped(void *arg)
{
    (void)arg;
    atomic_store(&lead_lost, 1);
}

struct controller_flags {
    struct kube_config_opts kube;
    struct etcd_config etcd;
    struct reconciler_config rec;
    const char *lease_ns, *lease_name, *identity, *state_dir, *prefix;
    const char *metrics_bind, *health_bind;
    /* the metrics server's TLS and access reviews */
    const char *metrics_cert_dir;
    int64_t auth_ttl_ms, auth_timeout_ms;
    bool metrics_secure;
    bool dashboard;                    /* the dashboard at / of the metrics server */
    const char *node_name, *host_root; /* agent */
    struct hp_cli_policy pol;
    int64_t lease_ms, renew_ms, retry_ms;
    int64_t shutdown_ms; /* SIGTERM to exit, at most (about) */
    bool leader_elect;
};

/* ephemeral_bind: "HOST:0": a port of the kernel's choice, a different one per listener */
static bool ephemeral_bind(const char *bind)
{
    size_t n = strlen(bind);

    return n >= 2 && !strcmp(bind + n - 2, ":0");
}

static int parse_flags(int argc, char **argv, struct controller_flags *fl, FILE *out, FILE *errout)
{
    enum {
        O_KUBECONFIG = 256,
        O_CONTEXT,
        O_NAMESPACE,
        O_WORKERS,
        O_ELECT,
        O_ELECT_NS,
        O_ELECT_ID,
        O_LEASE,
        O_RENEW,
        O_RETRY,
        O_IDENTITY,
        O_PREFIX,
        O_STATE,
        O_LOGLEVEL,
        O_METRICS,
        O_HEALTH,
        O_NODE,
        O_HOSTROOT,
        O_SHUTDOWN,
        O_LOGFORMAT,
        /* the metrics server's TLS and access reviews */
        O_METRICS_SECURE,
        O_METRICS_CERT_DIR,
        O_AUTH_TTL,
        O_AUTH_TIMEOUT,
        O_DASHBOARD,
    };
    static const struct option opts[] = {
        {"kubeconfig", required_argument, NULL, O_KUBECONFIG},
        {"context", required_argument, NULL, O_CONTEXT},
        {"namespace", required_argument, NULL, O_NAMESPACE},
        {"max-concurrent-reconciles", required_argument, NULL, O_WORKERS},
        {"leader-elect", no_argument, NULL, O_ELECT},
        {"leader-elect-namespace", required_argument, NULL, O_ELECT_NS},
        {"leader-elect-id", required_argument, NULL, O_ELECT_ID},
        {"lease-duration", required_argument, NULL, O_LEASE},
        {"renew-deadline", required_argument, NULL, O_RENEW},
        {"retry-period", required_argument, NULL, O_RETRY},
        {"identity", required_argument, NULL, O_IDENTITY},
        HP_ETCD_LONG_OPTIONS,
        HP_POLICY_LONG_OPTIONS,
        {"etcd-prefix", required_argument, NULL, O_PREFIX},
        {"state-dir", required_argument, NULL, O_STATE},
        {"log-level", required_argument, NULL, O_LOGLEVEL},
        {"metrics-bind-address", required_argument, NULL, O_METRICS},
        {"health-probe-bind-address", required_argument, NULL, O_HEALTH},
        {"node-name", required_argument, NULL, O_NODE},
        {"log-format", required_argument, NULL, O_LOGFORMAT},
        {"host-root", required_argument, NULL, O_HOSTROOT},
        {"shutdown-timeout", required_argument, NULL, O_SHUTDOWN},
        /* the metrics server's TLS and access reviews */
        {"metrics-secure", optional_argument, NULL, O_METRICS_SECURE},
        {"metrics-cert-dir", required_argument, NULL, O_METRICS_CERT_DIR},
        {"metrics-auth-cache-ttl", required_argument, NULL, O_AUTH_TTL},
        {"metrics-auth-timeout", required_argument, NULL, O_AUTH_TIMEOUT},
        {"dashboard", optional_argument, NULL, O_DASHBOARD},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct hp_err err = {0};
    char *end;
    long n;
    int c;

    fl->etcd.endpoints = getenv("HOSTPATROL_ETCD_ENDPOINTS");
    fl->etcd.password = getenv("HOSTPATROL_ETCD_PASSWORD");
    fl->lease_name = "hostpatrol-controller";
    fl->metrics_bind = agent_mode ? "0" : ":8443";
    fl->metrics_secure = true;
    fl->dashboard = !agent_mode;
    fl->auth_ttl_ms = 30000;
    fl->auth_timeout_ms = 5000;
    fl->health_bind = agent_mode ? "0" : ":8081";
    fl->node_name = getenv("NODE_NAME");
    fl->host_root = "/";
    fl->lease_ms = 15000;
    fl->renew_ms = 10000;
    fl->retry_ms = 2000;
    fl->shutdown_ms = SHUTDOWN_DEFAULT_MS;
    hp_cli_policy_defaults(&fl->pol);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, HP_OPTSTRING("h"), opts, NULL)) != -1) {
        switch (c) {
        case O_KUBECONFIG:
            fl->kube.kubeconfig = optarg;
            break;
        case O_CONTEXT:
            fl->kube.context = optarg;
            break;
        case O_NAMESPACE:
            fl->rec.namespace_ = optarg;
            break;
        case O_WORKERS:
            errno = 0;
            n = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || n < 1 || n > 256) {
                fprintf(errout,
                        "hostpatrol controller: --max-concurrent-reconciles '%s' is not a "
                        "number from 1 to 256\n",
                        optarg);
                return HP_EXIT_USAGE;
            }
            fl->rec.workers = (unsigned)n;
            break;
        case O_ELECT:
            fl->leader_elect = true;
            break;
        case O_ELECT_NS:
            fl->lease_ns = optarg;
            break;
        case O_ELECT_ID:
            fl->lease_name = optarg;
            break;
        case O_LEASE:
        case O_RENEW:
        case O_RETRY: {
            const char *flag = c == O_LEASE   ? "--lease-duration"
                               : c == O_RENEW ? "--renew-deadline"
                                              : "--retry-period";
            int64_t *dst = c == O_LEASE   ? &fl->lease_ms
                           : c == O_RENEW ? &fl->renew_ms
                                          : &fl->retry_ms;

            if (hp_duration_parse(optarg, flag, dst, &err) || *dst <= 0) {
                fprintf(errout, "hostpatrol controller: %s\n",
                        err.msg[0] ? err.msg : "durations must be positive");
                return HP_EXIT_USAGE;
            }
            break;
        }
        case O_IDENTITY:
            fl->identity = optarg;
            break;
        case O_PREFIX:
            fl->prefix = optarg;
            break;
        case O_STATE:
            fl->state_dir = optarg;
            break;
        case O_SHUTDOWN:
            if (hp_duration_parse(optarg, "--shutdown-timeout", &fl->shutdown_ms, &err) ||
                fl->shutdown_ms < SHUTDOWN_MIN_MS) {
                fprintf(errout, "hostpatrol %s: %s\n", agent_mode ? "agent" : "controller",
                        err.msg[0] ? err.msg : "--shutdown-timeout must be at least 2s");
                return HP_EXIT_USAGE;
            }
            break;
        case O_NODE:
        case O_HOSTROOT:
            if (!agent_mode) {
                fprintf(errout, "hostpatrol controller: %s is a flag of 'hostpatrol agent'\n",
                        c == O_NODE ? "--node-name" : "--host-root");
                return HP_EXIT_USAGE;
            }
            if (c == O_NODE)
                fl->node_name = optarg;
            else
                fl->host_root = optarg;
            break;
        case O_LOGFORMAT:
            if (strcmp(optarg, "json") && strcmp(optarg, "text")) {
                fprintf(errout, "hostpatrol: --log-format '%s' is not one of json, text\n", optarg);
                return HP_EXIT_USAGE;
            }
            log_text = !strcmp(optarg, "text");
            break;
        case O_METRICS:
            fl->metrics_bind = optarg;
            break;
        case O_HEALTH:
            fl->health_bind = optarg;
            break;
        /* the metrics server's TLS and access reviews */
        case O_METRICS_SECURE:
            if (!optarg || !strcmp(optarg, "true")) {
                fl->metrics_secure = true;
            } else if (!strcmp(optarg, "false")) {
                fl->metrics_secure = false;
            } else {
                fprintf(errout,
                        "hostpatrol controller: --metrics-secure '%s' is not true or false\n",
                        optarg);
                return HP_EXIT_USAGE;
            }
            break;
        case O_DASHBOARD:
            if (agent_mode) {
                fprintf(errout, "hostpatrol agent: --dashboard is a flag of 'hostpatrol "
                                "controller'\n");
                return HP_EXIT_USAGE;
            }
            if (!optarg || !strcmp(optarg, "true")) {
                fl->dashboard = true;
            } else if (!strcmp(optarg, "false")) {
                fl->dashboard = false;
            } else {
                fprintf(errout, "hostpatrol controller: --dashboard '%s' is not true or false\n",
                        optarg);
                return HP_EXIT_USAGE;
            }
            break;
        case O_METRICS_CERT_DIR:
            fl->metrics_cert_dir = optarg;
            break;
        case O_AUTH_TTL:
        case O_AUTH_TIMEOUT: {
            const char *flag =
                c == O_AUTH_TTL ? "--metrics-auth-cache-ttl" : "--metrics-auth-timeout";
            int64_t *dst = c == O_AUTH_TTL ? &fl->auth_ttl_ms : &fl->auth_timeout_ms;

            if (hp_duration_parse(optarg, flag, dst, &err) || *dst <= 0) {
                fprintf(errout, "hostpatrol controller: %s\n",
                        err.msg[0] ? err.msg : "durations must be positive");
                return HP_EXIT_USAGE;
            }
            break;
        }
        case O_LOGLEVEL:
            if (!strcmp(optarg, "debug"))
                atomic_store(&log_min, RLOG_DEBUG);
            else if (!strcmp(optarg, "info"))
                atomic_store(&log_min, RLOG_INFO);
            else if (!strcmp(optarg, "warn"))
                atomic_store(&log_min, RLOG_WARN);
            else if (!strcmp(optarg, "error"))
                atomic_store(&log_min, RLOG_ERROR);
            else {
                fprintf(errout,
                        "hostpatrol controller: --log-level '%s' is not one of debug, info, "
                        "warn, error\n",
                        optarg);
                return HP_EXIT_USAGE;
            }
            break;
        case 'h':
            if (agent_mode)
                agent_usage(out);
            else
                controller_usage(out);
            return -1;
        default:
            if (hp_cli_etcd_option(c, optarg, &fl->etcd))
                break;
            switch (hp_cli_policy_option(c, optarg, &fl->pol, agent_mode ? "agent" : "controller",
                                         errout)) {
            case 1:
                continue;
            case -1:
                return HP_EXIT_USAGE;
            default:
                break;
            }
            hp_cli_bad_flag(errout, agent_mode ? "agent" : "controller", c, argv);
            if (agent_mode)
                agent_usage(errout);
            else
                controller_usage(errout);
            return HP_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(errout, "hostpatrol controller: unexpected argument '%s'\n", argv[optind]);
        return HP_EXIT_USAGE;
    }
    if (agent_mode && fl->leader_elect) {
        fprintf(errout, "hostpatrol agent: --leader-elect is a controller flag: every node runs "
                        "its own agent\n");
        return HP_EXIT_USAGE;
    }
    if (agent_mode && (!fl->node_name || !*fl->node_name)) {
        fprintf(errout, "hostpatrol agent: --node-name is required (or set NODE_NAME, e.g. from "
                        "the downward API spec.nodeName)\n");
        return HP_EXIT_USAGE;
    }
    if (!fl->etcd.endpoints) {
        fprintf(errout, "hostpatrol controller: --etcd-endpoints is required (or set "
                        "HOSTPATROL_ETCD_ENDPOINTS)\n");
        return HP_EXIT_USAGE;
    }
    if (fl->etcd.username && !fl->etcd.password) {
        fprintf(errout, "hostpatrol controller: --etcd-user needs $HOSTPATROL_ETCD_PASSWORD\n");
        return HP_EXIT_USAGE;
    }
    if (fl->metrics_secure && strcmp(fl->metrics_bind, "0") && fl->metrics_bind[0] &&
        !strcmp(fl->metrics_bind, fl->health_bind) && !ephemeral_bind(fl->metrics_bind)) {
        fprintf(errout, "hostpatrol controller: --metrics-bind-address and "
                        "--health-probe-bind-address must differ with --metrics-secure (the "
                        "probes stay plain HTTP)\n");
        return HP_EXIT_USAGE;
    }
    if (fl->leader_elect && !(fl->renew_ms < fl->lease_ms && fl->retry_ms < fl->renew_ms)) {
        fprintf(errout, "hostpatrol controller: need --retry-period < --renew-deadline < "
                        "--lease-duration\n");
        return HP_EXIT_USAGE;
    }
    return HP_EXIT_OK;
}

/* log_watch: a line whenever the watch relists, restarts after a stall or fails */
static void log_watch(struct reconciler *rec, struct kube_informer_stats *seen)
{
    struct kube_informer_stats now;

    reconciler_watch_stats(rec, &now);
    if (now.gone != seen->gone)
        logf_(RLOG_INFO, "watch: resourceVersion expired (410 Gone), relisted (%llu so far)",
              (unsigned long long)now.gone);
    if (now.stalls != seen->stalls)
        logf_(RLOG_WARN, "watch: silent for too long, restarted (%llu so far)",
              (unsigned long long)now.stalls);
    if (now.errors != seen->errors)
        logf_(RLOG_WARN, "watch: errors, retrying with backoff (%llu so far)",
              (unsigned long long)now.errors);
    if (now.synced && !seen->synced)
        logf_(RLOG_INFO, "watch: synced at resourceVersion %s (%llu lists)", now.resource_version,
              (unsigned long long)now.lists);
    *seen = now;
}

/* check_etcd: does etcd answer (2 s)? for /readyz */
static void check_etcd(struct etcd_client *etcd)
{
    struct etcd_status es;
    struct hp_err err = {0};
    struct hp_ctx *ctx = NULL;

    if (hp_ctx_new(NULL, 2000, &ctx))
        return;
    atomic_store(&state.etcd_ok, etcd_status(etcd, ctx, &es, &err) == HP_OK);
    hp_ctx_free(ctx);
}

/* loopback_bind: whether bind listens on the loopback interface only */
static bool loopback_bind(const char *bind)
{
    return !strncmp(bind, "127.", 4) || !strncmp(bind, "localhost:", 10) ||
           !strncmp(bind, "[::1]:", 6);
}

/* wake_metrics: metrics_auth's notify: a verdict landed, the parked requests look again */
static void wake_metrics(void *arg)
{
    http_server_wake(arg);
}

/* metrics_security: with --metrics-secure, the serving certificate and the access reviews
 * (kube borrowed; *cert and *auth owned) */
static hp_rc metrics_security(const struct controller_flags *fl, struct kube_client *kube,
                              struct serving_cert **cert, struct metrics_auth **auth,
                              struct hp_err *err)
{
    const struct metrics_auth_config ac = {
        .kube = kube, .ttl_ms = fl->auth_ttl_ms, .timeout_ms = fl->auth_timeout_ms};
    hp_rc rc;

    if (!fl->metrics_secure || !strcmp(fl->metrics_bind, "0") || !fl->metrics_bind[0])
        return HP_OK;
    rc = serving_cert_new(fl->metrics_cert_dir, cert, err);
    if (!rc)
        rc = metrics_auth_new(&ac, auth, err);
    return rc;
}

/* serve: /metrics and /ws on --metrics-bind-address (HTTPS with access reviews unless
 * --metrics-secure=false), /healthz and /readyz on --health-probe-bind-address (plain HTTP, its
 * own thread; one server when both name the same address, insecure only) */
static hp_rc serve(const struct controller_flags *fl, struct serving_cert *cert,
                   struct metrics_auth *auth, struct http_server *servers[2], struct hp_err *err)
{
    const struct http_route all[] = {
        {"/healthz", healthz, NULL}, {"/readyz", readyz, NULL}, {"/metrics", metrics, NULL}};
    size_t n_assets = 0;
    const struct http_asset *assets = fl->dashboard ? dashboard_assets(&n_assets) : NULL;
    const char *proto = fl->dashboard ? DASHBOARD_PROTOCOL : NULL;
    const struct http_server_opts mo = {.ws_path = "/ws",
                                        .tls = cert,
                                        .auth = auth ? metrics_auth_check : NULL,
                                        .auth_arg = auth,
                                        .auth_wait_ms = fl->auth_timeout_ms * 2,
                                        .assets = assets,
                                        .n_assets = n_assets,
                                        .ws_protocol = proto},
                                  ho = {.ws_path = "/ws",
                                        .assets = assets,
                                        .n_assets = n_assets,
                                        .ws_protocol = proto};
    /* secure metrics never share the probes' plain server (HOST:0 twice: two ports) */
    bool same = !auth && !strcmp(fl->metrics_bind, fl->health_bind);
    hp_rc rc;

    const char *flag = "--health-probe-bind-address";
    char msg[HP_ERR_MSG_MAX];

    rc = same ? http_server_start_opts(fl->health_bind, all, 3, &ho, &servers[0], err)
              : http_server_start_ws(fl->health_bind, all, 2, NULL, &servers[0], err);
    if (!rc && !same) {
        flag = "--metrics-bind-address";
        rc = http_server_start_opts(fl->metrics_bind, all + 2, 1, &mo, &servers[1], err);
    }
    if (rc) {
        snprintf(msg, sizeof(msg), "%s", err->msg);
        return hp_err_field(err, rc, flag, "%s: %.400s", flag, msg);
    }
    if (servers[0])
        logf_(RLOG_INFO, "serving /healthz, /readyz%s on %s (port %d, http)",
              same ? ", /metrics, /ws" : "", fl->health_bind, http_server_port(servers[0]));
    if (servers[1] && auth) {
        struct serving_cert_stats cs;

        serving_cert_stats(cert, &cs);
        metrics_auth_set_notify(auth, wake_metrics, servers[1]);
        logf_(RLOG_INFO,
              "serving /metrics, /ws on %s (port %d, https, %s certificate; bearer tokens "
              "checked by TokenReview and SubjectAccessReview)%s",
              fl->metrics_bind, http_server_port(servers[1]),
              cs.self_signed ? "self-signed" : "--metrics-cert-dir",
              fl->dashboard ? "; the dashboard at /" : "");
    } else if (servers[1]) {
        logf_(RLOG_INFO, "serving /metrics, /ws on %s (port %d, http)%s", fl->metrics_bind,
              http_server_port(servers[1]), fl->dashboard ? "; the dashboard at /" : "");
    }
    if ((servers[1] || (same && servers[0])) && !auth && !loopback_bind(fl->metrics_bind))
        logf_(RLOG_WARN,
              "--metrics-secure=false on %s, not a loopback address: /metrics and /ws are "
              "served WITHOUT TLS or authentication to anyone who can reach it",
              fl->metrics_bind);
    return HP_OK;
}

/* publish_commit: the reconciler's on_commit: stream a committed run on /ws (kept as the
 * latest of its HostInspection for the dashboard). arg: the server of /metrics (borrowed; it
 * is stopped only after the reconciler). */
static void publish_commit(void *arg, const char *ns, const char *name, const char *json_text)
{
    http_server_keep(arg, HTTP_KEEP_ALL, ns, name, json_text, NULL);
}

/* publish_object: the reconciler's on_object: a HostInspection's state for the dashboard. */
static void publish_object(void *arg, const char *ns, const char *name, const json_t *obj)
{
    char *text = obj ? dashboard_inspection_json(obj) : dashboard_deleted_json(ns, name);

    if (text)
        http_server_keep(arg, DASHBOARD_SLOT, ns, name, obj ? text : NULL, obj ? NULL : text);
    hp_free(text);
}

/* lead: what runs while this replica leads: the batch queue (its creation claims a new etcd
 * fencing epoch, so a deposed leader's late writes fail) and the reconciler. */
static hp_rc lead(struct controller_flags *fl, struct etcd_client *etcd, struct batch_queue **q,
                  struct reconciler **rec, struct hp_err *err)
{
    struct batch_config bc = {.prefix = fl->prefix, .state_dir = fl->state_dir};
    struct hp_ctx *ctx = NULL;
    char writer[300];
    hp_rc rc;

    /* one etcd writer per scope: replicas of one scope fence each other (only the leader
     * writes); controllers of different namespaces do not; each node's agent is its own */
    if (agent_mode)
        snprintf(writer, sizeof(writer), "agent/%s", fl->node_name);
    else if (fl->rec.namespace_)
        snprintf(writer, sizeof(writer), "controller/%s", fl->rec.namespace_);
    else
        snprintf(writer, sizeof(writer), "controller");
    bc.writer = writer;
    rc = hp_ctx_new(NULL, 30000, &ctx);
    if (!rc)
        rc = batch_queue_new(etcd, &bc, ctx, q, err);
    hp_ctx_free(ctx);
    if (rc)
        return rc;
    fl->rec.batch = *q;
    fl->rec.etcd = etcd;
    return reconciler_start(&fl->rec, rec, err);
}

static int run_main(int argc, char **argv, FILE *out, FILE *errout);

/* policy_start: the admin's policy and the probe budget from the flags, into fl->rec. The
 * default of --node-checks-namespaces: in a cluster, this pod's namespace; outside one (a local
 * run), every namespace, said in the log. */
static hp_rc policy_start(struct controller_flags *fl, const struct kube_config *kc,
                          const struct kube_client *kube, struct inspect_policy *policy,
                          struct probe_budget **budget, FILE *errout)
{
    const char *cmd = agent_mode ? "agent" : "controller";
    struct hp_err err = {0};
    hp_rc rc;

    if (!fl->pol.namespaces_set)
        fl->pol.flags.node_namespaces =
            kc->source && !strcmp(kc->source, "in-cluster") ? kube_client_namespace(kube) : "*";
    rc = inspect_policy_init(policy, &fl->pol.flags, &err);
    if (rc) {
        fprintf(errout, "hostpatrol %s: %s\n", cmd, err.msg[0] ? err.msg : hp_rc_name(rc));
        return rc;
    }
    rc = probe_budget_new(fl->pol.max_in_flight, fl->pol.max_in_flight_per_ns, budget);
    if (rc)
        return rc;
    pthread_mutex_lock(&state.mu);
    state.budget = *budget;
    pthread_mutex_unlock(&state.mu);
    fl->rec.policy = policy;
    fl->rec.budget = *budget;
    fl->rec.max_sockets_per_run = fl->pol.max_sockets_per_run;
    logf_(policy->all_namespaces ? RLOG_WARN : RLOG_INFO,
          "policy: node-local and nodeCondition checks from %s; cmdlineRegex %s; probes denied "
          "%s%s%s; at most %zu probes per run, %zu in flight (%zu per namespace), %zu per run "
          "at once",
          policy->all_namespaces            ? "EVERY namespace (set --node-checks-namespaces)"
          : policy->node_namespaces_text[0] ? policy->node_namespaces_text
                                            : "no namespace",
          policy->allow_cmdline_regex ? "allowed" : "refused",
          policy->deny_text[0] ? policy->deny_text : "nothing",
          policy->allow_text[0] ? ", allowed only " : "", policy->allow_text, policy->max_probes,
          fl->pol.max_in_flight, fl->pol.max_in_flight_per_ns, fl->pol.max_sockets_per_run);
    return HP_OK;
}

int hp_cmd_controller(int argc, char **argv, FILE *out, FILE *errout)
{
    agent_mode = false;
    return run_main(argc, argv, out, errout);
}

int hp_cmd_agent(int argc, char **argv, FILE *out, FILE *errout)
{
    agent_mode = true;
    return run_main(argc, argv, out, errout);
}

static int run_main(int argc, char **argv, FILE *out, FILE *errout)
{
    struct controller_flags fl = {0};
    struct kube_config kc = {0};
    struct kube_client *kube = NULL;
    struct etcd_client *etcd = NULL;
    struct kube_leader *leader = NULL;
    struct batch_queue *q = NULL;
    struct reconciler *rec = NULL;
    struct hp_ctx *drain = NULL;
    struct kube_informer_stats seen = {0};
    struct http_server *servers[2] = {NULL, NULL};
    struct inspect_policy policy = {0};
    struct probe_budget *budget = NULL;
    struct serving_cert *cert = NULL;
    struct metrics_auth *auth = NULL;
    struct hp_err err = {0};
    char identity[300], host[256] = "hostpatrol";
    sigset_t sigs;
    int status = HP_EXIT_FAIL, sig = 0;
    unsigned long ticks = 0;
    hp_rc rc;

    status = parse_flags(argc, argv, &fl, out, errout);
    if (status)
        return status < 0 ? HP_EXIT_OK : status;
    status = HP_EXIT_FAIL;
    /* two malloc arenas instead of 8 per core: dozens of mostly idle threads would otherwise
     * each keep an arena's worth of fragments */
    mallopt(M_ARENA_MAX, 2);
    /* block the stop signals in every thread; the main thread waits for them */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    if (gethostname(host, sizeof(host) - 1))
        snprintf(host, sizeof(host), "hostpatrol");
    snprintf(identity, sizeof(identity), "%s_%ld", host, (long)getpid());
    if (fl.identity)
        snprintf(identity, sizeof(identity), "%s", fl.identity);
    rc = etcd_client_new(&fl.etcd, &etcd, &err);
    if (rc) {
        fprintf(errout, "hostpatrol %s: %s: %s\n", agent_mode ? "agent" : "controller",
                hp_cli_etcd_flag(err.field), err.msg);
        status = rc == HP_ERR_INVALID ? HP_EXIT_USAGE : HP_EXIT_FAIL;
        goto out;
    }
    rc = kube_config_load(&fl.kube, &kc, &err);
    if (!rc)
        rc = kube_client_new(&kc, &kube, &err);
    if (rc) {
        fprintf(errout, "hostpatrol %s: %s\n", agent_mode ? "agent" : "controller", err.msg);
        goto out;
    }
    fl.rec.kube = kube;
    if (agent_mode) {
        fl.rec.node_name = fl.node_name;
        fl.rec.host_root = fl.host_root;
    }
    fl.rec.prefix = fl.prefix;
    fl.rec.identity = identity;
    fl.rec.log = log_line;
    logf_(RLOG_INFO, "starting: kube %s (%s), etcd %s, identity %s", kc.server, kc.source,
          fl.etcd.endpoints, identity);
    rc = policy_start(&fl, &kc, kube, &policy, &budget, errout);
    if (rc) {
        status = rc == HP_ERR_INVALID ? HP_EXIT_USAGE : HP_EXIT_FAIL;
        goto out;
    }
    atomic_store(&state.tick_ns, hp_now_ns());
    check_etcd(etcd);
    rc = metrics_security(&fl, kube, &cert, &auth, &err);
    if (!rc) {
        state.auth = auth;
        rc = serve(&fl, cert, auth, servers, &err);
    }
    if (rc) {
        fprintf(errout, "hostpatrol %s: %s\n", agent_mode ? "agent" : "controller", err.msg);
        status = rc == HP_ERR_INVALID ? HP_EXIT_USAGE : HP_EXIT_FAIL;
        goto out;
    }
    /* /ws lives with /metrics; no such server ("0"): no hook, no JSON built */
    fl.rec.commit_arg = servers[1]                                          ? servers[1]
                        : !auth && !strcmp(fl.metrics_bind, fl.health_bind) ? servers[0]
                                                                            : NULL;
    fl.rec.on_commit = fl.rec.commit_arg ? publish_commit : NULL;
    state.metrics_srv = fl.rec.commit_arg;
    fl.rec.object_arg = fl.rec.commit_arg;
    fl.rec.on_object = fl.rec.commit_arg && fl.dashboard ? publish_object : NULL;
    /* the dashboard says whether this replica leads: a standby's has nothing to show */
    if (fl.leader_elect)
        http_server_set_notice(fl.rec.commit_arg, DASHBOARD_STANDBY);
    if (fl.leader_elect) {
        struct kube_leader_config lc = {.client = kube,
                                        .namespace_ =
                                            fl.lease_ns ? fl.lease_ns : kube_client_namespace(kube),
                                        .name = fl.lease_name,
                                        .identity = identity,
                                        .lease_ms = fl.lease_ms,
                                        .renew_ms = fl.renew_ms,
                                        .retry_ms = fl.retry_ms,
                                        .on_started = on_started,
                                        .on_stopped = on_stopped};

        rc = kube_leader_start(&lc, &leader, &err);
        if (rc) {
            fprintf(errout, "hostpatrol controller: leader election: %s\n", err.msg);
            goto out;
        }
        logf_(RLOG_INFO, "waiting for leadership of Lease %s/%s", lc.namespace_, lc.name);
    } else {
        atomic_store(&lead_started, 1);
    }
    for (;;) {
        struct timespec tick = {0, 200 * 1000000};

        sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig > 0)
            break;
        atomic_store(&state.tick_ns, hp_now_ns());
        if (ticks % 25 == 0)
            check_etcd(etcd); /* every 5 s, for /readyz */
        if (atomic_load(&lead_lost)) {
            logf_(RLOG_ERROR, "leadership lost: stopping so a new leader takes over");
            break;
        }
        if (rec)
            log_watch(rec, &seen);
        /* every 10 s hand freed heap pages back to the kernel: a burst of reconciles leaves
         * fragments that would otherwise count in RSS until reused */
        if (++ticks % 50 == 0)
            malloc_trim(0);
        if (q) {
            struct batch_stats bs;

            batch_queue_stats(q, &bs);
            if (bs.fenced) {
                logf_(RLOG_ERROR, "fenced: another instance of this controller took over the etcd "
                                  "writer epoch; stopping");
                atomic_store(&lead_lost, 1);
                break;
            }
        }
        if (atomic_load(&lead_started) && !rec) {
            if (fl.leader_elect)
                logf_(RLOG_INFO, "became leader");
            rc = lead(&fl, etcd, &q, &rec, &err);
            if (rc) {
                logf_(RLOG_ERROR, "cannot start reconciling: %s", err.msg);
                goto out;
            }
            pthread_mutex_lock(&state.mu);
            state.rec = rec;
            state.q = q;
            pthread_mutex_unlock(&state.mu);
            atomic_store(&state.leading, 1);
            http_server_set_notice(fl.rec.commit_arg, DASHBOARD_LEADING);
            logf_(RLOG_INFO, "reconciling with %u workers", fl.rec.workers ? fl.rec.workers : 4);
        }
    }
    if (sig > 0)
        logf_(RLOG_INFO, "%s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    status = sig > 0 ? HP_EXIT_OK : HP_EXIT_FAIL;
out:
    atomic_store(&state.leading, 0);
    pthread_mutex_lock(&state.mu); /* the handlers stop reading them before they go */
    state.rec = NULL;
    state.q = NULL;
    pthread_mutex_unlock(&state.mu);
    if (atomic_load(&lead_lost)) {
        /* not the leader (or fenced): cancel runs now, write nothing more */
        reconciler_stop(rec, NULL);
        rec = NULL;
    }
    /* bounded: the drain ends SHUTDOWN_RESERVE_MS before --shutdown-timeout, which leaves the
     * rest (journal, Lease release: 2 s at most, servers) the time they need */
    if (!hp_ctx_new(NULL, fl.shutdown_ms - SHUTDOWN_RESERVE_MS, &drain)) {
        reconciler_stop(rec, drain);
        if (q && batch_queue_close(q, drain))
            logf_(RLOG_WARN, "batch queue not drained before the deadline");
    } else {
        reconciler_stop(rec, NULL);
    }
    batch_queue_free(q);
    hp_ctx_free(drain);
    kube_leader_stop(leader, true); /* release the Lease: a successor need not wait it out */
    if (sig > 0)
        logf_(RLOG_INFO, "stopped");
    if (auth)
        metrics_auth_set_notify(auth, NULL, NULL); /* no wake of a server being stopped */
    http_server_stop(servers[0]);
    http_server_stop(servers[1]);
    state.metrics_srv = NULL;
    state.auth = NULL;
    metrics_auth_free(auth);
    serving_cert_free(cert);
    etcd_client_free(etcd);
    kube_client_free(kube);
    kube_config_release(&kc);
    pthread_mutex_lock(&state.mu);
    state.budget = NULL;
    pthread_mutex_unlock(&state.mu);
    probe_budget_free(budget);
    inspect_policy_release(&policy);
    return status;
}
