/* results.c - `hostpatrol results`: flags -> etcd client -> the results store's read of
 * <prefix>results/[<ns>/[<name>/]] -> a results view: a table, a wide table or JSON
 * (docs/results.md); with --watch, then the results written since, one line each as they land
 * (a poll of the same range for keys modified after the last revision read), until
 * SIGINT/SIGTERM. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/duration.h"
#include "hostpatrol/etcd_client.h"
#include "hostpatrol/results_store.h"
#include "hostpatrol/results_view.h"

#define RES_POLL_MS 1000 /* --watch: how often the range is read again */

struct res_flags {
    struct etcd_config etcd;
    const char *ns;
    const char *name;
    const char *prefix; /* NULL: the store's default */
    const char *format;
    bool all, watch;
    int64_t timeout_ms;
};

static volatile sig_atomic_t res_stop;

static void res_on_signal(int sig)
{
    res_stop = sig;
}

static void res_usage(FILE *f)
{
    fprintf(f, "Usage: hostpatrol results [-n NS | -A] [NAME] [flags]\n"
               "Print the latest results of HostInspections, read from the results etcd\n"
               "(keys <prefix>results/<namespace>/<name>/<check>/<target>).\n\n"
               "  -n, --namespace NS              namespace (default \"default\")\n"
               "  -A, --all-namespaces            every namespace (no NAME then)\n"
               "  -o, --output table|json|wide    output format (default table)\n"
               "  -w, --watch                     then print each result as it lands, one line\n"
               "                                  (json: one object a line) until Ctrl-C\n"
               "  --timeout DUR                   deadline of the read (default 10s)\n"
               "  --etcd-endpoints URLS           results etcd (or $HOSTPATROL_ETCD_ENDPOINTS)\n"
               "  --etcd-ca-file F --etcd-cert-file F --etcd-key-file F --etcd-server-name NAME\n"
               "  --etcd-transport grpc|gateway   native gRPC (default) or the JSON gateway\n"
               "  --etcd-user NAME                etcd auth; password from "
               "$HOSTPATROL_ETCD_PASSWORD\n"
               "  --etcd-prefix P                 key prefix (default /hostpatrol/)\n");
}

/* res_name_ok: a Kubernetes name as a key segment: non-empty, no '/' */
static bool res_name_ok(const char *s)
{
    return s[0] && !strchr(s, '/');
}

/* res_parse_opts: the options of argv -> fl. Returns -1 to go on, else the exit status. */
static int res_parse_opts(int argc, char **argv, struct res_flags *fl, FILE *out, FILE *errout)
{
    enum { O_PREFIX = 256, O_TIMEOUT };
    static const struct option opts[] = {{"namespace", required_argument, NULL, 'n'},
                                         {"all-namespaces", no_argument, NULL, 'A'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"watch", no_argument, NULL, 'w'},
                                         {"timeout", required_argument, NULL, O_TIMEOUT},
                                         HP_ETCD_LONG_OPTIONS,
                                         {"etcd-prefix", required_argument, NULL, O_PREFIX},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct hp_err err = {0};
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, HP_OPTSTRING("n:Ao:wh"), opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            fl->ns = optarg;
            break;
        case 'A':
            fl->all = true;
            break;
        case 'o':
            fl->format = optarg;
            break;
        case 'w':
            fl->watch = true;
            break;
        case O_TIMEOUT:
            if (hp_duration_parse(optarg, "--timeout", &fl->timeout_ms, &err)) {
                fprintf(errout, "hostpatrol results: %s\n", err.msg);
                return HP_EXIT_USAGE;
            }
            if (fl->timeout_ms <= 0) {
                fprintf(errout, "hostpatrol results: --timeout '%s' must be above 0\n", optarg);
                return HP_EXIT_USAGE;
            }
            break;
        case O_PREFIX:
            fl->prefix = optarg;
            break;
        case 'h':
            res_usage(out);
            return HP_EXIT_OK;
        default:
            if (hp_cli_etcd_option(c, optarg, &fl->etcd))
                break;
            hp_cli_bad_flag(errout, "results", c, argv);
            res_usage(errout);
            return HP_EXIT_USAGE;
        }
    }
    return -1;
}

/* res_check_flags: what the options say together, and the defaults that depend on them.
 * Returns -1 to go on, else the exit status. */
static int res_check_flags(struct res_flags *fl, FILE *errout)
{
    if (strcmp(fl->format, "table") && strcmp(fl->format, "json") && strcmp(fl->format, "wide")) {
        fprintf(errout, "hostpatrol results: --output '%s' is not one of table, json, wide\n",
                fl->format);
        return HP_EXIT_USAGE;
    }
    if (fl->all && fl->ns) {
        fprintf(errout, "hostpatrol results: -A and --namespace '%s' exclude each other\n", fl->ns);
        return HP_EXIT_USAGE;
    }
    if (fl->all && fl->name) {
        fprintf(errout, "hostpatrol results: NAME '%s' needs a namespace: use -n NS, not -A\n",
                fl->name);
        return HP_EXIT_USAGE;
    }
    if (!fl->all && !fl->ns)
        fl->ns = "default";
    if (fl->ns && !res_name_ok(fl->ns)) {
        fprintf(errout, "hostpatrol results: --namespace '%s' is not a namespace name\n", fl->ns);
        return HP_EXIT_USAGE;
    }
    if (fl->name && !res_name_ok(fl->name)) {
        fprintf(errout, "hostpatrol results: NAME '%s' is not a HostInspection name\n", fl->name);
        return HP_EXIT_USAGE;
    }
    if (fl->prefix && !fl->prefix[0]) {
        fprintf(errout, "hostpatrol results: --etcd-prefix must not be empty\n");
        return HP_EXIT_USAGE;
    }
    if (!fl->etcd.endpoints) {
        fprintf(errout, "hostpatrol results: --etcd-endpoints is required (or set "
                        "HOSTPATROL_ETCD_ENDPOINTS)\n");
        return HP_EXIT_USAGE;
    }
    if (fl->etcd.username && !fl->etcd.password) {
        fprintf(errout, "hostpatrol results: --etcd-user needs $HOSTPATROL_ETCD_PASSWORD\n");
        return HP_EXIT_USAGE;
    }
    return -1;
}

/* res_parse_flags: argv -> fl. Returns -1 to go on, else the exit status. */
static int res_parse_flags(int argc, char **argv, struct res_flags *fl, FILE *out, FILE *errout)
{
    int status;

    fl->etcd.endpoints = getenv("HOSTPATROL_ETCD_ENDPOINTS");
    fl->etcd.password = getenv("HOSTPATROL_ETCD_PASSWORD");
    fl->format = "table";
    fl->timeout_ms = 10000;
    status = res_parse_opts(argc, argv, fl, out, errout);
    if (status >= 0)
        return status;
    if (optind < argc)
        fl->name = argv[optind++];
    if (optind < argc) {
        fprintf(errout, "hostpatrol results: unexpected argument '%s' (at most one NAME)\n",
                argv[optind]);
        return HP_EXIT_USAGE;
    }
    return res_check_flags(fl, errout);
}

/* res_pause: sleep ms unless a stop signal comes first */
static void res_pause(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

    while (!res_stop && nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

/* What one invocation works with, wired by hp_cmd_results */
struct res_run {
    const struct res_flags *fl;
    struct etcd_client *etcd;
    struct results_store *store;
    char *key; /* owned: the scope read, <prefix>results/[<ns>/[<name>/]] */
    FILE *out, *errout;
};

/* res_follow: --watch after the first read (its revision rev): read what was written after the
 * last revision read, print it, wait, again, until SIGINT/SIGTERM (exit 0). A failed read is
 * said once on errout and tried again: the results stream resumes where it stopped. */
static int res_follow(const struct res_run *rr, int64_t rev, struct results_view_stream *st)
{
    bool failing = false;

    while (!res_stop) {
        struct results_store_stored got = {0};
        struct results_view *v = NULL;
        struct hp_ctx *ctx = NULL;
        struct hp_err err = {0};
        hp_rc rc;

        res_pause(RES_POLL_MS);
        if (res_stop)
            break;
        rc = hp_ctx_new(NULL, rr->fl->timeout_ms, &ctx);
        if (!rc)
            rc = results_store_list(rr->store, ctx, rr->fl->ns, rr->fl->name, rev + 1, &got, &err);
        hp_ctx_free(ctx);
        if (rc && rc != HP_ERR_NOMEM) {
            if (!failing)
                fprintf(rr->errout, "hostpatrol results: reading %s: %s; trying again every %d s\n",
                        rr->key, err.msg[0] ? err.msg : hp_rc_name(rc), RES_POLL_MS / 1000);
            failing = true;
            continue;
        }
        if (!rc && failing)
            fprintf(rr->errout, "hostpatrol results: reading %s again\n", rr->key);
        failing = false;
        if (!rc)
            rc = results_view_new(&got.resp, results_store_prefix(rr->store), &v);
        if (!rc) {
            rc = results_view_stream(v, st);
            if (got.resp.revision > rev)
                rev = got.resp.revision;
        }
        results_view_free(v);
        results_store_stored_release(&got);
        if (rc) {
            fprintf(rr->errout, "hostpatrol results: %s\n",
                    rc == HP_ERR_NOMEM ? "out of memory" : "writing the output failed");
            return HP_EXIT_FAIL;
        }
    }
    return HP_EXIT_OK;
}

/* res_read: the first read of the scope into *got; on error said on errout, the exit status
 * returned; -1 to go on */
static int res_read(const struct res_run *rr, struct results_store_stored *got)
{
    const struct res_flags *fl = rr->fl;
    struct hp_ctx *ctx = NULL;
    struct hp_err err = {0};
    hp_rc rc;

    rc = hp_ctx_new(NULL, fl->timeout_ms, &ctx);
    if (!rc)
        rc = results_store_list(rr->store, ctx, fl->ns, fl->name, 0, got, &err);
    hp_ctx_free(ctx);
    if (!rc)
        return -1;
    if (rc == HP_ERR_NOMEM)
        fprintf(rr->errout, "hostpatrol results: out of memory\n");
    else if (err.field[0])
        fprintf(rr->errout, "hostpatrol results: %s: %s\n", hp_cli_etcd_flag(err.field),
                err.msg[0] ? err.msg : hp_rc_name(rc));
    else if (rc == HP_ERR_TIMEOUT)
        fprintf(rr->errout, "hostpatrol results: reading %s from etcd %s: %s (--timeout %lld ms)\n",
                rr->key, fl->etcd.endpoints, err.msg[0] ? err.msg : "timed out",
                (long long)fl->timeout_ms);
    else
        fprintf(rr->errout, "hostpatrol results: reading %s: %s\n", rr->key,
                err.msg[0] ? err.msg : hp_rc_name(rc));
    return rc == HP_ERR_INVALID ? HP_EXIT_USAGE : HP_EXIT_FAIL;
}

/* res_watch: --watch: what is stored now (v), then what lands, until a signal */
static int res_watch(const struct res_run *rr, struct results_view *v, int64_t rev)
{
    struct results_view_stream st;
    struct sigaction sa = {.sa_handler = res_on_signal}; /* no SA_RESTART: wakes the pause */
    hp_rc rc;

    results_view_stream_init(&st, rr->out, !strcmp(rr->fl->format, "json"),
                             !strcmp(rr->fl->format, "wide"),
                             isatty(fileno(rr->out)) && !getenv("NO_COLOR"));
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = results_view_stream(v, &st);
    if (rc) {
        fprintf(rr->errout, "hostpatrol results: %s\n",
                rc == HP_ERR_NOMEM ? "out of memory" : "writing the output failed");
        return HP_EXIT_FAIL;
    }
    return res_follow(rr, rev, &st);
}

/* res_print: v as the table or JSON; the exit status */
static int res_print(const struct res_run *rr, struct results_view *v)
{
    hp_rc rc = results_view_print(v, !strcmp(rr->fl->format, "json"),
                                  !strcmp(rr->fl->format, "wide"), rr->out);

    if (rc) {
        fprintf(rr->errout, "hostpatrol results: out of memory\n");
        return HP_EXIT_FAIL;
    }
    if (fflush(rr->out) || ferror(rr->out)) {
        fprintf(rr->errout, "hostpatrol results: writing the output failed\n");
        return HP_EXIT_FAIL;
    }
    return HP_EXIT_OK;
}

/* res_scope: the scope as said when it holds nothing */
static void res_scope(const struct res_flags *fl, char *scope, size_t n)
{
    if (fl->name)
        snprintf(scope, n, "%s/%s", fl->ns, fl->name);
    else if (fl->ns)
        snprintf(scope, n, "namespace %s", fl->ns);
    else
        snprintf(scope, n, "any namespace");
}

/* res_wire: the etcd client and the store of rr (rr->fl set); the exit status, -1 to go on */
static int res_wire(struct res_run *rr)
{
    const struct res_flags *fl = rr->fl;
    struct results_store_config scfg = {.prefix = fl->prefix};
    struct hp_err err = {0};
    hp_rc rc;

    rc = etcd_client_new(&fl->etcd, &rr->etcd, &err);
    if (rc) {
        fprintf(rr->errout, "hostpatrol results: %s: %s\n",
                err.field[0] ? hp_cli_etcd_flag(err.field) : "etcd",
                err.msg[0] ? err.msg : hp_rc_name(rc));
        return rc == HP_ERR_INVALID ? HP_EXIT_USAGE : HP_EXIT_FAIL;
    }
    scfg.etcd = rr->etcd;
    rc = results_store_new(&scfg, &rr->store);
    if (!rc)
        rc = results_store_scope(results_store_prefix(rr->store), fl->ns, fl->name, &rr->key, NULL);
    if (rc) {
        fprintf(rr->errout, "hostpatrol results: out of memory\n");
        return HP_EXIT_FAIL;
    }
    return -1;
}

int hp_cmd_results(int argc, char **argv, FILE *out, FILE *errout)
{
    struct res_flags fl = {0};
    struct res_run rr = {.fl = &fl, .out = out, .errout = errout};
    struct results_store_stored got = {0};
    struct results_view *v = NULL;
    char scope[600];
    int status;

    status = res_parse_flags(argc, argv, &fl, out, errout);
    if (status >= 0)
        return status;
    status = res_wire(&rr);
    if (status < 0)
        status = res_read(&rr, &got);
    if (status >= 0)
        goto out;
    if (!got.resp.n && !fl.watch) {
        res_scope(&fl, scope, sizeof(scope));
        fprintf(errout, "hostpatrol results: no results for %s under %s\n", scope,
                results_store_prefix(rr.store));
        status = HP_EXIT_FAIL;
        goto out;
    }
    if (results_view_new(&got.resp, results_store_prefix(rr.store), &v)) {
        fprintf(errout, "hostpatrol results: out of memory\n");
        status = HP_EXIT_FAIL;
        goto out;
    }
    if (fl.watch)
        status = res_watch(&rr, v, got.resp.revision);
    else
        status = res_print(&rr, v);
out:
    results_view_free(v);
    results_store_stored_release(&got);
    results_store_free(rr.store);
    etcd_client_free(rr.etcd);
    hp_free(rr.key);
    return status;
}
