/* controller.c - `hostpatrol controller` and `hostpatrol agent`: their flags, then the process
 * (controller_app.h: clients, leader election, batch queue and reconciler, /metrics, /healthz,
 * /readyz, the drain on SIGTERM/SIGINT). */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "hostpatrol/controller_app.h"
#include "hostpatrol/duration.h"
#include "hostpatrol/logger.h"

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

struct controller_flags {
    struct controller_app_config app;
    struct hp_cli_policy pol;
    struct hp_logger *log; /* --log-level, --log-format (borrowed) */
    const char *cmd;       /* "controller" or "agent" */
};

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

#define APP_FIELD(m) offsetof(struct controller_app_config, m)

/* flags whose value is kept as given (a string of argv) */
static const struct {
    int opt;
    size_t off; /* of the const char * in struct controller_app_config */
} string_flags[] = {
    {O_KUBECONFIG, APP_FIELD(kube.kubeconfig)},
    {O_CONTEXT, APP_FIELD(kube.context)},
    {O_NAMESPACE, APP_FIELD(rec.namespace_)},
    {O_ELECT_NS, APP_FIELD(lease_ns)},
    {O_ELECT_ID, APP_FIELD(lease_name)},
    {O_IDENTITY, APP_FIELD(identity)},
    {O_PREFIX, APP_FIELD(prefix)},
    {O_STATE, APP_FIELD(state_dir)},
    {O_METRICS, APP_FIELD(metrics_bind)},
    {O_HEALTH, APP_FIELD(health_bind)},
    {O_METRICS_CERT_DIR, APP_FIELD(metrics_cert_dir)},
};

/* flags whose value is a positive duration */
static const struct {
    int opt;
    const char *flag;
    size_t off; /* of the int64_t (ms) in struct controller_app_config */
} duration_flags[] = {
    {O_LEASE, "--lease-duration", APP_FIELD(lease_ms)},
    {O_RENEW, "--renew-deadline", APP_FIELD(renew_ms)},
    {O_RETRY, "--retry-period", APP_FIELD(retry_ms)},
    {O_AUTH_TTL, "--metrics-auth-cache-ttl", APP_FIELD(auth_ttl_ms)},
    {O_AUTH_TIMEOUT, "--metrics-auth-timeout", APP_FIELD(auth_timeout_ms)},
};

/* flags whose value is true or false (true when given without one) */
static const struct {
    int opt;
    const char *flag;
    size_t off; /* of the bool in struct controller_app_config */
} bool_flags[] = {
    {O_METRICS_SECURE, "--metrics-secure", APP_FIELD(metrics_secure)},
    {O_DASHBOARD, "--dashboard", APP_FIELD(dashboard)},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static void usage(const struct controller_flags *fl, FILE *f)
{
    if (fl->app.agent)
        agent_usage(f);
    else
        controller_usage(f);
}

/* defaults: every flag's default (some from the environment) */
static void defaults(struct controller_flags *fl)
{
    struct controller_app_config *a = &fl->app;
    bool agent = a->agent;

    a->etcd.endpoints = getenv("HOSTPATROL_ETCD_ENDPOINTS");
    a->etcd.password = getenv("HOSTPATROL_ETCD_PASSWORD");
    a->lease_name = "hostpatrol-controller";
    a->metrics_bind = agent ? "0" : ":8443";
    a->metrics_secure = true;
    a->dashboard = !agent;
    a->auth_ttl_ms = 30000;
    a->auth_timeout_ms = 5000;
    a->health_bind = agent ? "0" : ":8081";
    a->node_name = getenv("NODE_NAME");
    a->host_root = "/";
    a->lease_ms = 15000;
    a->renew_ms = 10000;
    a->retry_ms = 2000;
    a->shutdown_ms = CONTROLLER_APP_SHUTDOWN_DEFAULT_MS;
    a->etcd_flag = hp_cli_etcd_flag;
    hp_cli_policy_defaults(&fl->pol);
}

/* table_flag: a flag of the tables above: 1 taken, 0 not one of them, HP_EXIT_USAGE */
static int table_flag(struct controller_flags *fl, int c, const char *arg, FILE *errout)
{
    char *base = (char *)&fl->app;
    struct hp_err err = {0};
    size_t i;

    for (i = 0; i < N_OF(string_flags); i++)
        if (c == string_flags[i].opt) {
            *(const char **)(base + string_flags[i].off) = arg;
            return 1;
        }
    for (i = 0; i < N_OF(duration_flags); i++) {
        int64_t *dst = (int64_t *)(base + duration_flags[i].off);

        if (c != duration_flags[i].opt)
            continue;
        if (hp_duration_parse(arg, duration_flags[i].flag, dst, &err) || *dst <= 0) {
            fprintf(errout, "hostpatrol controller: %s\n",
                    err.msg[0] ? err.msg : "durations must be positive");
            return HP_EXIT_USAGE;
        }
        return 1;
    }
    for (i = 0; i < N_OF(bool_flags); i++) {
        bool *dst = (bool *)(base + bool_flags[i].off);

        if (c != bool_flags[i].opt)
            continue;
        if (!arg || !strcmp(arg, "true") || !strcmp(arg, "false")) {
            *dst = !arg || !strcmp(arg, "true");
            return 1;
        }
        fprintf(errout, "hostpatrol controller: %s '%s' is not true or false\n", bool_flags[i].flag,
                arg);
        return HP_EXIT_USAGE;
    }
    return 0;
}

/* special_flag: a flag checked or stored its own way: 1 taken, 0 not one of them,
 * HP_EXIT_USAGE */
static int special_flag(struct controller_flags *fl, int c, const char *arg, FILE *errout)
{
    struct controller_app_config *a = &fl->app;
    struct hp_err err = {0};
    char *end;
    long n;

    switch (c) {
    case O_WORKERS:
        errno = 0;
        n = strtol(arg, &end, 10);
        if (errno || *end || end == arg || n < 1 || n > 256) {
            fprintf(errout,
                    "hostpatrol controller: --max-concurrent-reconciles '%s' is not a "
                    "number from 1 to 256\n",
                    arg);
            return HP_EXIT_USAGE;
        }
        a->rec.workers = (unsigned)n;
        return 1;
    case O_ELECT:
        a->leader_elect = true;
        return 1;
    case O_SHUTDOWN:
        if (hp_duration_parse(arg, "--shutdown-timeout", &a->shutdown_ms, &err) ||
            a->shutdown_ms < CONTROLLER_APP_SHUTDOWN_MIN_MS) {
            fprintf(errout, "hostpatrol %s: %s\n", fl->cmd,
                    err.msg[0] ? err.msg : "--shutdown-timeout must be at least 2s");
            return HP_EXIT_USAGE;
        }
        return 1;
    case O_NODE:
    case O_HOSTROOT:
        if (!a->agent) {
            fprintf(errout, "hostpatrol controller: %s is a flag of 'hostpatrol agent'\n",
                    c == O_NODE ? "--node-name" : "--host-root");
            return HP_EXIT_USAGE;
        }
        *(c == O_NODE ? &a->node_name : &a->host_root) = arg;
        return 1;
    case O_DASHBOARD:
        if (!a->agent)
            return 0; /* the bool table's */
        fprintf(errout, "hostpatrol agent: --dashboard is a flag of 'hostpatrol controller'\n");
        return HP_EXIT_USAGE;
    case O_LOGFORMAT:
        if (hp_logger_set_format(fl->log, arg)) {
            fprintf(errout, "hostpatrol: --log-format '%s' is not one of json, text\n", arg);
            return HP_EXIT_USAGE;
        }
        return 1;
    case O_LOGLEVEL:
        if (hp_logger_set_level(fl->log, arg)) {
            fprintf(errout,
                    "hostpatrol controller: --log-level '%s' is not one of debug, info, "
                    "warn, error\n",
                    arg);
            return HP_EXIT_USAGE;
        }
        return 1;
    default:
        return 0;
    }
}

/* one_flag: what getopt_long returned (c): 0 taken, HP_EXIT_USAGE, -1 (--help printed) */
static int one_flag(struct controller_flags *fl, int c, char **argv, FILE *out, FILE *errout)
{
    int taken;

    if (c == 'h') {
        usage(fl, out);
        return -1;
    }
    taken = special_flag(fl, c, optarg, errout);
    if (!taken)
        taken = table_flag(fl, c, optarg, errout);
    if (taken)
        return taken == 1 ? 0 : taken;
    if (hp_cli_etcd_option(c, optarg, &fl->app.etcd))
        return 0;
    switch (hp_cli_policy_option(c, optarg, &fl->pol, fl->cmd, errout)) {
    case 1:
        return 0;
    case -1:
        return HP_EXIT_USAGE;
    default:
        break;
    }
    hp_cli_bad_flag(errout, fl->cmd, c, argv);
    usage(fl, errout);
    return HP_EXIT_USAGE;
}

/* ephemeral_bind: "HOST:0": a port of the kernel's choice, a different one per listener */
static bool ephemeral_bind(const char *bind)
{
    size_t n = strlen(bind);

    return n >= 2 && !strcmp(bind + n - 2, ":0");
}

/* check_flags: what no single flag can say: required flags, flags that must agree */
static int check_flags(const struct controller_app_config *a, FILE *errout)
{
    if (a->agent && a->leader_elect) {
        fprintf(errout, "hostpatrol agent: --leader-elect is a controller flag: every node runs "
                        "its own agent\n");
        return HP_EXIT_USAGE;
    }
    if (a->agent && (!a->node_name || !*a->node_name)) {
        fprintf(errout, "hostpatrol agent: --node-name is required (or set NODE_NAME, e.g. from "
                        "the downward API spec.nodeName)\n");
        return HP_EXIT_USAGE;
    }
    if (!a->etcd.endpoints) {
        fprintf(errout, "hostpatrol controller: --etcd-endpoints is required (or set "
                        "HOSTPATROL_ETCD_ENDPOINTS)\n");
        return HP_EXIT_USAGE;
    }
    if (a->etcd.username && !a->etcd.password) {
        fprintf(errout, "hostpatrol controller: --etcd-user needs $HOSTPATROL_ETCD_PASSWORD\n");
        return HP_EXIT_USAGE;
    }
    if (a->metrics_secure && strcmp(a->metrics_bind, "0") && a->metrics_bind[0] &&
        !strcmp(a->metrics_bind, a->health_bind) && !ephemeral_bind(a->metrics_bind)) {
        fprintf(errout, "hostpatrol controller: --metrics-bind-address and "
                        "--health-probe-bind-address must differ with --metrics-secure (the "
                        "probes stay plain HTTP)\n");
        return HP_EXIT_USAGE;
    }
    if (a->leader_elect && !(a->renew_ms < a->lease_ms && a->retry_ms < a->renew_ms)) {
        fprintf(errout, "hostpatrol controller: need --retry-period < --renew-deadline < "
                        "--lease-duration\n");
        return HP_EXIT_USAGE;
    }
    return HP_EXIT_OK;
}

/* parse_flags: 0, HP_EXIT_USAGE (the message printed) or -1 (--help printed) */
static int parse_flags(int argc, char **argv, struct controller_flags *fl, FILE *out, FILE *errout)
{
    int c, status;

    defaults(fl);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, HP_OPTSTRING("h"), opts, NULL)) != -1) {
        status = one_flag(fl, c, argv, out, errout);
        if (status)
            return status;
    }
    if (optind < argc) {
        fprintf(errout, "hostpatrol controller: unexpected argument '%s'\n", argv[optind]);
        return HP_EXIT_USAGE;
    }
    status = check_flags(&fl->app, errout);
    if (status)
        return status;
    fl->app.policy = fl->pol.flags;
    fl->app.policy_namespaces_set = fl->pol.namespaces_set;
    fl->app.max_in_flight = fl->pol.max_in_flight;
    fl->app.max_in_flight_per_ns = fl->pol.max_in_flight_per_ns;
    fl->app.max_sockets_per_run = fl->pol.max_sockets_per_run;
    return HP_EXIT_OK;
}

static int run(bool agent, int argc, char **argv, FILE *out, FILE *errout)
{
    struct controller_flags fl = {.app.agent = agent, .cmd = agent ? "agent" : "controller"};
    struct hp_logger log;
    struct hp_err err = {0};
    int status;

    hp_logger_init(&log, fl.cmd, stderr);
    fl.log = &log;
    status = parse_flags(argc, argv, &fl, out, errout);
    if (!status) {
        status = (int)controller_app_run(&fl.app, &log, &err);
        if (err.msg[0])
            fprintf(errout, "hostpatrol %s: %s\n", fl.cmd, err.msg);
    }
    hp_logger_release(&log);
    return status < 0 ? HP_EXIT_OK : status;
}

int hp_cmd_controller(int argc, char **argv, FILE *out, FILE *errout)
{
    return run(false, argc, argv, out, errout);
}

int hp_cmd_agent(int argc, char **argv, FILE *out, FILE *errout)
{
    return run(true, argc, argv, out, errout);
}
