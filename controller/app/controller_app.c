/* controller_app.c - the controller's and the agent's process: start, supervise, drain (see
 * include/hostpatrol/controller_app.h). */
#include "hostpatrol/controller_app.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/app_status.h"
#include "hostpatrol/batch_queue.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/dashboard.h"
#include "hostpatrol/http_server.h"
#include "hostpatrol/kube_client.h"
#include "hostpatrol/kube_leader.h"
#include "hostpatrol/metrics_auth.h"
#include "hostpatrol/probe_budget.h"
#include "hostpatrol/serving_cert.h"

/* Everything one run of the process holds; lives on controller_app_run's stack. */
struct controller_app {
    struct controller_app_config *cfg;  /* borrowed */
    struct hp_logger *log;              /* borrowed */
    struct app_status status;           /* what the servers' handlers read */
    atomic_int lead_started, lead_lost; /* set on the elector's thread, acted on by the loop */
    sigset_t sigs;                      /* SIGTERM, SIGINT: blocked, waited for */
    char identity[300];
    struct kube_config kc;
    struct kube_client *kube;
    struct etcd_client *etcd;
    struct kube_leader *leader;
    struct batch_queue *q;
    struct reconciler *rec;
    struct http_server *servers[2]; /* [0] /healthz, /readyz (and all, when shared); [1] /metrics */
    struct inspect_policy policy;
    struct probe_budget *budget;
    struct serving_cert *cert;
    struct metrics_auth *auth;
};

/* rec_log: the reconciler's log hook: a line of the logger (arg) */
static void rec_log(void *arg, enum reconciler_log_level level,
                    const struct reconciler_log_ids *ids, const char *msg)
{
    struct hp_log_ids li = {0};

    if (ids) {
        li.key = ids->key;
        li.reconcile = (unsigned long long)ids->reconcile;
        li.run = ids->run;
        li.batch = ids->batch;
    }
    hp_logger_line(arg, (enum hp_log_level)level, ids ? &li : NULL, msg);
}

static void on_started(void *arg)
{
    struct controller_app *app = arg;

    atomic_store(&app->lead_started, 1);
}

static void on_stopped(void *arg)
{
    struct controller_app *app = arg;

    atomic_store(&app->lead_lost, 1);
}

/* log_watch: a line whenever the watch relists, restarts after a stall or fails */
static void log_watch(struct controller_app *app, struct kube_informer_stats *seen)
{
    struct kube_informer_stats now;

    reconciler_watch_stats(app->rec, &now);
    if (now.gone != seen->gone)
        hp_logger_printf(app->log, HP_LOG_INFO,
                         "watch: resourceVersion expired (410 Gone), relisted (%llu so far)",
                         (unsigned long long)now.gone);
    if (now.stalls != seen->stalls)
        hp_logger_printf(app->log, HP_LOG_WARN,
                         "watch: silent for too long, restarted (%llu so far)",
                         (unsigned long long)now.stalls);
    if (now.errors != seen->errors)
        hp_logger_printf(app->log, HP_LOG_WARN,
                         "watch: errors, retrying with backoff (%llu so far)",
                         (unsigned long long)now.errors);
    if (now.synced && !seen->synced)
        hp_logger_printf(app->log, HP_LOG_INFO, "watch: synced at resourceVersion %s (%llu lists)",
                         now.resource_version, (unsigned long long)now.lists);
    *seen = now;
}

/* check_etcd: does etcd answer (2 s)? for /readyz */
static void check_etcd(struct controller_app *app)
{
    struct etcd_status es;
    struct hp_err err = {0};
    struct hp_ctx *ctx = NULL;

    if (hp_ctx_new(NULL, 2000, &ctx))
        return;
    atomic_store(&app->status.etcd_ok, etcd_status(app->etcd, ctx, &es, &err) == HP_OK);
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

/* metrics_security: with --metrics-secure, the serving certificate and the access reviews */
static hp_rc metrics_security(struct controller_app *app, struct hp_err *err)
{
    const struct controller_app_config *cfg = app->cfg;
    const struct metrics_auth_config ac = {
        .kube = app->kube, .ttl_ms = cfg->auth_ttl_ms, .timeout_ms = cfg->auth_timeout_ms};
    hp_rc rc;

    if (!cfg->metrics_secure || !strcmp(cfg->metrics_bind, "0") || !cfg->metrics_bind[0])
        return HP_OK;
    rc = serving_cert_new(cfg->metrics_cert_dir, &app->cert, err);
    if (!rc)
        rc = metrics_auth_new(&ac, &app->auth, err);
    return rc;
}

/* log_serving: where each server listens, and a warning for plain metrics off loopback */
static void log_serving(struct controller_app *app, bool same)
{
    const struct controller_app_config *cfg = app->cfg;
    struct http_server **servers = app->servers;

    if (servers[0])
        hp_logger_printf(app->log, HP_LOG_INFO, "serving /healthz, /readyz%s on %s (port %d, http)",
                         same ? ", /metrics, /ws" : "", cfg->health_bind,
                         http_server_port(servers[0]));
    if (servers[1] && app->auth) {
        struct serving_cert_stats cs;

        serving_cert_stats(app->cert, &cs);
        metrics_auth_set_notify(app->auth, wake_metrics, servers[1]);
        hp_logger_printf(app->log, HP_LOG_INFO,
                         "serving /metrics, /ws on %s (port %d, https, %s certificate; bearer "
                         "tokens checked by TokenReview and SubjectAccessReview)%s",
                         cfg->metrics_bind, http_server_port(servers[1]),
                         cs.self_signed ? "self-signed" : "--metrics-cert-dir",
                         cfg->dashboard ? "; the dashboard at /" : "");
    } else if (servers[1]) {
        hp_logger_printf(app->log, HP_LOG_INFO, "serving /metrics, /ws on %s (port %d, http)%s",
                         cfg->metrics_bind, http_server_port(servers[1]),
                         cfg->dashboard ? "; the dashboard at /" : "");
    }
    if ((servers[1] || (same && servers[0])) && !app->auth && !loopback_bind(cfg->metrics_bind))
        hp_logger_printf(app->log, HP_LOG_WARN,
                         "--metrics-secure=false on %s, not a loopback address: /metrics and /ws "
                         "are served WITHOUT TLS or authentication to anyone who can reach it",
                         cfg->metrics_bind);
}

/* serve: /metrics and /ws on --metrics-bind-address (HTTPS with access reviews unless
 * --metrics-secure=false), /healthz and /readyz on --health-probe-bind-address (plain HTTP, its
 * own thread; one server when both name the same address, insecure only) */
static hp_rc serve(struct controller_app *app, struct hp_err *err)
{
    const struct controller_app_config *cfg = app->cfg;
    const struct http_route all[] = {{"/healthz", app_status_healthz, &app->status},
                                     {"/readyz", app_status_readyz, &app->status},
                                     {"/metrics", app_status_metrics, &app->status}};
    size_t n_assets = 0;
    const struct http_asset *assets = cfg->dashboard ? dashboard_assets(&n_assets) : NULL;
    const char *proto = cfg->dashboard ? DASHBOARD_PROTOCOL : NULL;
    const struct http_server_opts mo = {.ws_path = "/ws",
                                        .tls = app->cert,
                                        .auth = app->auth ? metrics_auth_check : NULL,
                                        .auth_arg = app->auth,
                                        .auth_wait_ms = cfg->auth_timeout_ms * 2,
                                        .assets = assets,
                                        .n_assets = n_assets,
                                        .ws_protocol = proto},
                                  ho = {.ws_path = "/ws",
                                        .assets = assets,
                                        .n_assets = n_assets,
                                        .ws_protocol = proto};
    /* secure metrics never share the probes' plain server (HOST:0 twice: two ports) */
    bool same = !app->auth && !strcmp(cfg->metrics_bind, cfg->health_bind);
    const char *flag = "--health-probe-bind-address";
    char msg[HP_ERR_MSG_MAX];
    hp_rc rc;

    rc = same ? http_server_start_opts(cfg->health_bind, all, 3, &ho, &app->servers[0], err)
              : http_server_start_ws(cfg->health_bind, all, 2, NULL, &app->servers[0], err);
    if (!rc && !same) {
        flag = "--metrics-bind-address";
        rc = http_server_start_opts(cfg->metrics_bind, all + 2, 1, &mo, &app->servers[1], err);
    }
    if (rc) {
        snprintf(msg, sizeof(msg), "%s", err->msg);
        return hp_err_field(err, rc, flag, "%s: %.400s", flag, msg);
    }
    log_serving(app, same);
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

/* wire_publish: /ws lives with /metrics; no such server ("0"): no hook, no JSON built */
static void wire_publish(struct controller_app *app)
{
    struct controller_app_config *cfg = app->cfg;

    cfg->rec.commit_arg = app->servers[1] ? app->servers[1]
                          : !app->auth && !strcmp(cfg->metrics_bind, cfg->health_bind)
                              ? app->servers[0]
                              : NULL;
    cfg->rec.on_commit = cfg->rec.commit_arg ? publish_commit : NULL;
    app->status.metrics_srv = cfg->rec.commit_arg;
    cfg->rec.object_arg = cfg->rec.commit_arg;
    cfg->rec.on_object = cfg->rec.commit_arg && cfg->dashboard ? publish_object : NULL;
    /* the dashboard says whether this replica leads: a standby's has nothing to show */
    if (cfg->leader_elect)
        http_server_set_notice(cfg->rec.commit_arg, DASHBOARD_STANDBY);
}

/* lead: what runs while this replica leads: the batch queue (its creation claims a new etcd
 * fencing epoch, so a deposed leader's late writes fail) and the reconciler. */
static hp_rc lead(struct controller_app *app, struct hp_err *err)
{
    struct controller_app_config *cfg = app->cfg;
    struct batch_config bc = {.prefix = cfg->prefix, .state_dir = cfg->state_dir};
    struct hp_ctx *ctx = NULL;
    char writer[300];
    hp_rc rc;

    /* one etcd writer per scope: replicas of one scope fence each other (only the leader
     * writes); controllers of different namespaces do not; each node's agent is its own */
    if (cfg->agent)
        snprintf(writer, sizeof(writer), "agent/%s", cfg->node_name);
    else if (cfg->rec.namespace_)
        snprintf(writer, sizeof(writer), "controller/%s", cfg->rec.namespace_);
    else
        snprintf(writer, sizeof(writer), "controller");
    bc.writer = writer;
    rc = hp_ctx_new(NULL, 30000, &ctx);
    if (!rc)
        rc = batch_queue_new(app->etcd, &bc, ctx, &app->q, err);
    hp_ctx_free(ctx);
    if (rc)
        return rc;
    cfg->rec.batch = app->q;
    cfg->rec.etcd = app->etcd;
    return reconciler_start(&cfg->rec, &app->rec, err);
}

/* policy_start: the admin's policy and the probe budget, into cfg->rec. The default of
 * --node-checks-namespaces: in a cluster, this pod's namespace; outside one (a local run),
 * every namespace, said in the log. */
static hp_rc policy_start(struct controller_app *app, struct hp_err *err)
{
    struct controller_app_config *cfg = app->cfg;
    const struct inspect_policy *policy = &app->policy;
    hp_rc rc;

    if (!cfg->policy_namespaces_set)
        cfg->policy.node_namespaces = app->kc.source && !strcmp(app->kc.source, "in-cluster")
                                          ? kube_client_namespace(app->kube)
                                          : "*";
    rc = inspect_policy_init(&app->policy, &cfg->policy, err);
    if (rc) {
        if (!err->msg[0])
            hp_err_set(err, rc, "%s", hp_rc_name(rc));
        return rc;
    }
    rc = probe_budget_new(cfg->max_in_flight, cfg->max_in_flight_per_ns, &app->budget);
    if (rc)
        return rc;
    app_status_set_budget(&app->status, app->budget);
    cfg->rec.policy = policy;
    cfg->rec.budget = app->budget;
    cfg->rec.max_sockets_per_run = cfg->max_sockets_per_run;
    hp_logger_printf(
        app->log, policy->all_namespaces ? HP_LOG_WARN : HP_LOG_INFO,
        "policy: node-local and nodeCondition checks from %s; cmdlineRegex %s; probes denied "
        "%s%s%s; at most %zu probes per run, %zu in flight (%zu per namespace), %zu per run "
        "at once",
        policy->all_namespaces            ? "EVERY namespace (set --node-checks-namespaces)"
        : policy->node_namespaces_text[0] ? policy->node_namespaces_text
                                          : "no namespace",
        policy->allow_cmdline_regex ? "allowed" : "refused",
        policy->deny_text[0] ? policy->deny_text : "nothing",
        policy->allow_text[0] ? ", allowed only " : "", policy->allow_text, policy->max_probes,
        cfg->max_in_flight, cfg->max_in_flight_per_ns, cfg->max_sockets_per_run);
    return HP_OK;
}

/* bad_flag_or_fail: the exit of a start-up failure: a value refused is a usage error */
static enum controller_app_exit bad_flag_or_fail(hp_rc rc)
{
    return rc == HP_ERR_INVALID ? CONTROLLER_APP_BAD_FLAG : CONTROLLER_APP_FAILED;
}

/* start_clients: the etcd and kube clients, and this replica's identity */
static enum controller_app_exit start_clients(struct controller_app *app, struct hp_err *err)
{
    struct controller_app_config *cfg = app->cfg;
    char host[256] = "hostpatrol", msg[HP_ERR_MSG_MAX];
    hp_rc rc;

    if (gethostname(host, sizeof(host) - 1))
        snprintf(host, sizeof(host), "hostpatrol");
    snprintf(app->identity, sizeof(app->identity), "%s_%ld", host, (long)getpid());
    if (cfg->identity)
        snprintf(app->identity, sizeof(app->identity), "%s", cfg->identity);
    rc = etcd_client_new(&cfg->etcd, &app->etcd, err);
    if (rc) {
        snprintf(msg, sizeof(msg), "%s", err->msg);
        hp_err_set(err, rc, "%s: %s", cfg->etcd_flag ? cfg->etcd_flag(err->field) : "etcd", msg);
        return bad_flag_or_fail(rc);
    }
    rc = kube_config_load(&cfg->kube, &app->kc, err);
    if (!rc)
        rc = kube_client_new(&app->kc, &app->kube, err);
    return rc ? CONTROLLER_APP_FAILED : CONTROLLER_APP_STOPPED;
}

/* start: everything up to the supervision loop; CONTROLLER_APP_STOPPED: started */
static enum controller_app_exit start(struct controller_app *app, struct hp_err *err)
{
    struct controller_app_config *cfg = app->cfg;
    enum controller_app_exit ex;
    hp_rc rc;

    ex = start_clients(app, err);
    if (ex)
        return ex;
    cfg->rec.kube = app->kube;
    if (cfg->agent) {
        cfg->rec.node_name = cfg->node_name;
        cfg->rec.host_root = cfg->host_root;
    }
    cfg->rec.prefix = cfg->prefix;
    cfg->rec.identity = app->identity;
    cfg->rec.log = rec_log;
    cfg->rec.log_arg = app->log;
    hp_logger_printf(app->log, HP_LOG_INFO, "starting: kube %s (%s), etcd %s, identity %s",
                     app->kc.server, app->kc.source, cfg->etcd.endpoints, app->identity);
    rc = policy_start(app, err);
    if (rc)
        return bad_flag_or_fail(rc);
    atomic_store(&app->status.tick_ns, hp_now_ns());
    check_etcd(app);
    rc = metrics_security(app, err);
    if (!rc) {
        app->status.auth = app->auth;
        rc = serve(app, err);
    }
    if (rc)
        return bad_flag_or_fail(rc);
    wire_publish(app);
    return CONTROLLER_APP_STOPPED;
}

/* start_leadership: elect through the Lease, or lead at once */
static hp_rc start_leadership(struct controller_app *app, struct hp_err *err)
{
    struct controller_app_config *cfg = app->cfg;
    struct kube_leader_config lc = {.client = app->kube,
                                    .namespace_ = cfg->lease_ns ? cfg->lease_ns
                                                                : kube_client_namespace(app->kube),
                                    .name = cfg->lease_name,
                                    .identity = app->identity,
                                    .lease_ms = cfg->lease_ms,
                                    .renew_ms = cfg->renew_ms,
                                    .retry_ms = cfg->retry_ms,
                                    .on_started = on_started,
                                    .on_stopped = on_stopped,
                                    .arg = app};
    char msg[HP_ERR_MSG_MAX];
    hp_rc rc;

    if (!cfg->leader_elect) {
        atomic_store(&app->lead_started, 1);
        return HP_OK;
    }
    rc = kube_leader_start(&lc, &app->leader, err);
    if (rc) {
        snprintf(msg, sizeof(msg), "%s", err->msg);
        return hp_err_set(err, rc, "leader election: %s", msg);
    }
    hp_logger_printf(app->log, HP_LOG_INFO, "waiting for leadership of Lease %s/%s", lc.namespace_,
                     lc.name);
    return HP_OK;
}

/* fenced: another instance took over the etcd writer epoch */
static bool fenced(struct controller_app *app)
{
    struct batch_stats bs;

    if (!app->q)
        return false;
    batch_queue_stats(app->q, &bs);
    if (!bs.fenced)
        return false;
    hp_logger_printf(app->log, HP_LOG_ERROR,
                     "fenced: another instance of this controller took over the etcd writer "
                     "epoch; stopping");
    atomic_store(&app->lead_lost, 1);
    return true;
}

/* become_leader: start the batch queue and the reconciler, tell the handlers */
static hp_rc become_leader(struct controller_app *app)
{
    struct controller_app_config *cfg = app->cfg;
    struct hp_err err = {0};
    hp_rc rc;

    if (cfg->leader_elect)
        hp_logger_printf(app->log, HP_LOG_INFO, "became leader");
    rc = lead(app, &err);
    if (rc) {
        hp_logger_printf(app->log, HP_LOG_ERROR, "cannot start reconciling: %s", err.msg);
        return rc;
    }
    app_status_set_running(&app->status, app->rec, app->q);
    atomic_store(&app->status.leading, 1);
    http_server_set_notice(cfg->rec.commit_arg, DASHBOARD_LEADING);
    hp_logger_printf(app->log, HP_LOG_INFO, "reconciling with %u workers",
                     cfg->rec.workers ? cfg->rec.workers : 4);
    return HP_OK;
}

/* supervise: the loop, every 200 ms, until SIGTERM or SIGINT (its number) or a failure (0) */
static int supervise(struct controller_app *app)
{
    struct kube_informer_stats seen = {0};
    unsigned long ticks = 0;
    int sig;

    for (;;) {
        struct timespec tick = {0, 200 * 1000000};

        sig = sigtimedwait(&app->sigs, NULL, &tick);
        if (sig > 0)
            return sig;
        atomic_store(&app->status.tick_ns, hp_now_ns());
        if (ticks % 25 == 0)
            check_etcd(app); /* every 5 s, for /readyz */
        if (atomic_load(&app->lead_lost)) {
            hp_logger_printf(app->log, HP_LOG_ERROR,
                             "leadership lost: stopping so a new leader takes over");
            return 0;
        }
        if (app->rec)
            log_watch(app, &seen);
        /* every 10 s hand freed heap pages back to the kernel: a burst of reconciles leaves
         * fragments that would otherwise count in RSS until reused */
        if (++ticks % 50 == 0)
            malloc_trim(0);
        if (fenced(app))
            return 0;
        if (atomic_load(&app->lead_started) && !app->rec && become_leader(app))
            return 0;
    }
}

/* drain: stop the reconciler and the batch queue; bounded: the drain ends
 * CONTROLLER_APP_SHUTDOWN_RESERVE_MS before the shutdown timeout, which leaves the rest
 * (journal, Lease release: 2 s at most, servers) the time they need */
static void drain(struct controller_app *app)
{
    struct hp_ctx *ctx = NULL;

    atomic_store(&app->status.leading, 0);
    app_status_set_running(&app->status, NULL, NULL); /* the handlers stop reading them */
    if (atomic_load(&app->lead_lost)) {
        /* not the leader (or fenced): cancel runs now, write nothing more */
        reconciler_stop(app->rec, NULL);
        app->rec = NULL;
    }
    if (!hp_ctx_new(NULL, app->cfg->shutdown_ms - CONTROLLER_APP_SHUTDOWN_RESERVE_MS, &ctx)) {
        reconciler_stop(app->rec, ctx);
        if (app->q && batch_queue_close(app->q, ctx))
            hp_logger_printf(app->log, HP_LOG_WARN, "batch queue not drained before the deadline");
    } else {
        reconciler_stop(app->rec, NULL);
    }
    app->rec = NULL;
    batch_queue_free(app->q);
    app->q = NULL;
    hp_ctx_free(ctx);
}

/* stop: drain, release the Lease, stop the servers, free everything */
static void stop(struct controller_app *app, int sig)
{
    drain(app);
    kube_leader_stop(app->leader, true); /* release the Lease: a successor need not wait */
    if (sig > 0)
        hp_logger_printf(app->log, HP_LOG_INFO, "stopped");
    if (app->auth)
        metrics_auth_set_notify(app->auth, NULL, NULL); /* no wake of a server being stopped */
    http_server_stop(app->servers[0]);
    http_server_stop(app->servers[1]);
    app->status.metrics_srv = NULL;
    app->status.auth = NULL;
    metrics_auth_free(app->auth);
    serving_cert_free(app->cert);
    etcd_client_free(app->etcd);
    kube_client_free(app->kube);
    kube_config_release(&app->kc);
    app_status_set_budget(&app->status, NULL);
    probe_budget_free(app->budget);
    inspect_policy_release(&app->policy);
    app_status_release(&app->status);
}

enum controller_app_exit controller_app_run(struct controller_app_config *cfg,
                                            struct hp_logger *log, struct hp_err *err)
{
    struct controller_app app = {.cfg = cfg, .log = log};
    enum controller_app_exit ex;
    int sig = 0;

    app_status_init(&app.status);
    /* two malloc arenas instead of 8 per core: dozens of mostly idle threads would otherwise
     * each keep an arena's worth of fragments */
    mallopt(M_ARENA_MAX, 2);
    /* block the stop signals in every thread; the main thread waits for them */
    sigemptyset(&app.sigs);
    sigaddset(&app.sigs, SIGTERM);
    sigaddset(&app.sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &app.sigs, NULL);
    ex = start(&app, err);
    if (!ex && start_leadership(&app, err))
        ex = CONTROLLER_APP_FAILED;
    if (!ex) {
        sig = supervise(&app);
        if (sig > 0)
            hp_logger_printf(log, HP_LOG_INFO, "%s: draining",
                             sig == SIGTERM ? "SIGTERM" : "SIGINT");
        ex = sig > 0 ? CONTROLLER_APP_STOPPED : CONTROLLER_APP_FAILED;
    }
    stop(&app, sig);
    return ex;
}
