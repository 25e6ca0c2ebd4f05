/* inspect.c - `hostpatrol inspect -f FILE`: run the checks of HostInspection YAML on this host,
 * without a cluster and without etcd: the same parser, probes and judgement as the controller
 * and the agent. Exit 0 when every result is OK, 1 when one is not, 2 for a bad file or flag. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/check_result.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/host_check.h"
#include "hostpatrol/inspection_spec.h"
#include "hostpatrol/probe.h"
#include "hostpatrol/run_plan.h"
#include "hostpatrol/term_text.h"
#include "hostpatrol/yaml_doc.h"

static void inspect_usage(FILE *f)
{
    fprintf(f, "Usage: hostpatrol inspect -f FILE [--once] [-o table|json] [--host-root DIR]\n"
               "Run the checks of the HostInspection(s) in FILE on this host and print the\n"
               "results; no cluster and no etcd needed. Without --once, run again every\n"
               "spec.interval until interrupted.\n\n"
               "  -f, --filename FILE   YAML with one or more HostInspection documents\n"
               "      --once            one round, then exit: 0 all OK, 1 some not OK\n"
               "  -o, --output FORMAT   table (default) or json (one array per round)\n"
               "      --host-root DIR   where the host's / is (default /)\n"
               "      --node-name NAME  the target name of node-local results (default: host "
               "name)\n"
               "nodeCondition checks need the Kubernetes API: they are reported UNKNOWN here.\n");
}

struct doc {
    const char *name; /* borrowed from the loaded YAML */
    struct inspection_spec spec;
};

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* node_conditions_unknown: a result per nodeCondition check, UNKNOWN: they need the API */
static hp_rc node_conditions_unknown(const struct inspection_spec *s, const char *node,
                                     struct check_result *res, size_t *n_res)
{
    size_t i;
    hp_rc rc;

    for (i = 0; i < s->n_checks; i++) {
        if (s->checks[i].kind != CHECK_NODE_CONDITION)
            continue;
        rc = check_result_init(&res[*n_res], s->checks[i].name, node, CHECK_NODE_CONDITION);
        if (rc)
            return rc;
        (*n_res)++;
        rc = check_result_judge(&res[*n_res - 1], CHECK_UNKNOWN, "%s",
                                "needs the Kubernetes API: run by the controller, not by inspect");
        if (rc)
            return rc;
    }
    return HP_OK;
}

/* run_checks: the run planned from s (run_plan): its probes, then its node-local checks under a
 * deadline of their own (the probes may have used all of theirs), then the node conditions;
 * res (sized for the plan) gets the results, *n_res of them */
static hp_rc run_checks(const struct inspection_spec *s, const struct run_plan *plan,
                        const char *host_root, const char *node, struct check_result *res,
                        size_t *n_res, struct hp_err *err)
{
    struct hp_ctx *ctx = NULL, *hctx = NULL;
    hp_rc rc = hp_ctx_new(NULL, s->timeout_ms, &ctx);

    if (!rc && plan->n_items) {
        rc = probe_run(plan->items, plan->n_items, ctx, res, err);
        *n_res = plan->n_items;
    }
    if (!rc && plan->n_local) {
        rc = hp_ctx_new(NULL, s->timeout_ms, &hctx);
        if (!rc)
            rc = host_check_run(host_root, node, plan->local, plan->n_local, hctx, res + *n_res,
                                err);
        *n_res += plan->n_local;
    }
    if (!rc)
        rc = node_conditions_unknown(s, node, res, n_res);
    hp_ctx_free(ctx);
    hp_ctx_free(hctx);
    return rc;
}

/* print_results: one document's results, as a JSON array or table rows; returns those not OK */
static int print_results(const struct doc *d, const char *run_id, const struct check_result *res,
                         size_t n_res, bool json, FILE *out)
{
    int bad = 0;
    size_t i;

    if (json)
        fprintf(out, "[");
    for (i = 0; i < n_res; i++) {
        bad += res[i].status != CHECK_OK;
        if (json) {
            json_t *j = check_result_to_json(&res[i], "inspect", run_id);
            char *text = NULL;

            if (j && !json_object_set_new(j, "name", json_string(d->name)))
                text = json_dumps(j, JSON_COMPACT | CHECK_RESULT_JSON_REALS);
            fprintf(out, "%s%s", i ? ",\n " : "", text ? text : "null");
            hp_free(text);
            json_decref(j);
        } else {
            /* names, targets and reasons come from the file and the probed hosts */
            char name[256], check[256], target[512], reason[1024];

            term_text_escape(d->name, name, sizeof(name));
            term_text_escape(res[i].check, check, sizeof(check));
            term_text_escape(res[i].target, target, sizeof(target));
            term_text_escape(res[i].reason && *res[i].reason ? res[i].reason : "-", reason,
                             sizeof(reason));
            fprintf(out, "%-20s %-16s %-16s %-8s %7lld  %s\n", name, check, target,
                    check_status_name(res[i].status), (long long)res[i].duration_ms, reason);
        }
    }
    if (json)
        fprintf(out, "]\n");
    fflush(out);
    return bad;
}

/* round: every check of one document; prints; returns the count of results not OK, or -1 */
static int round_(const struct doc *d, const char *host_root, const char *node, bool json,
                  FILE *out, FILE *errout)
{
    struct run_plan plan = {0};
    struct check_result *res = NULL;
    size_t n_res = 0, i;
    struct hp_err err = {0};
    char run_id[64];
    int bad = -1;
    hp_rc rc = run_plan_init(&plan, &d->spec, true);

    snprintf(run_id, sizeof(run_id), "inspect-%lld", (long long)time(NULL));
    if (!rc) {
        res = hp_calloc(plan.n_items + plan.n_local + plan.n_node_conditions + 1, sizeof(*res));
        rc = res ? run_checks(&d->spec, &plan, host_root, node, res, &n_res, &err) : HP_ERR_NOMEM;
    }
    if (rc)
        fprintf(errout, "hostpatrol inspect: %s: %s\n", d->name,
                err.msg[0] ? err.msg : hp_rc_name(rc));
    else
        bad = print_results(d, run_id, res, n_res, json, out);
    for (i = 0; res && i < n_res; i++)
        check_result_release(&res[i]);
    hp_free(res);
    run_plan_release(&plan);
    return bad;
}

/* The flags of `hostpatrol inspect` */
struct inspect_opts {
    const char *file, *format, *host_root, *node;
    bool once;
    char host[256];
};

/* parse_flags: argv into o; returns -1 to go on, else the exit status */
static int parse_flags(int argc, char **argv, struct inspect_opts *o, FILE *out, FILE *errout)
{
    static const struct option opts[] = {{"filename", required_argument, NULL, 'f'},
                                         {"once", no_argument, NULL, 'O'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"host-root", required_argument, NULL, 'R'},
                                         {"node-name", required_argument, NULL, 'N'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;

    *o = (struct inspect_opts){.format = "table", .host_root = "/", .host = "localhost"};
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, HP_OPTSTRING("f:o:h"), opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            o->file = optarg;
            break;
        case 'O':
            o->once = true;
            break;
        case 'o':
            o->format = optarg;
            break;
        case 'R':
            o->host_root = optarg;
            break;
        case 'N':
            o->node = optarg;
            break;
        case 'h':
            inspect_usage(out);
            return HP_EXIT_OK;
        default:
            hp_cli_bad_flag(errout, "inspect", c, argv);
            inspect_usage(errout);
            return HP_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(errout, "hostpatrol inspect: unexpected argument '%s'\n", argv[optind]);
        return HP_EXIT_USAGE;
    }
    if (!o->file) {
        fprintf(errout, "hostpatrol inspect: -f FILE is required\n");
        return HP_EXIT_USAGE;
    }
    if (strcmp(o->format, "table") && strcmp(o->format, "json")) {
        fprintf(errout, "hostpatrol inspect: --output '%s' is not one of table, json\n", o->format);
        return HP_EXIT_USAGE;
    }
    if (!o->node) {
        if (gethostname(o->host, sizeof(o->host) - 1))
            snprintf(o->host, sizeof(o->host), "localhost");
        o->node = o->host;
    }
    return -1;
}

/* load_docs: the HostInspections of yaml (borrowed; file names it), parsed into docs (sized for
 * every document); *n_docs of them. false: a document is not a valid HostInspection (said). */
static bool load_docs(const json_t *yaml, const char *file, struct doc *docs, size_t *n_docs,
                      FILE *errout)
{
    struct hp_err err = {0};
    const json_t *d;
    size_t i;

    json_array_foreach(yaml, i, d)
    {
        const char *kind = json_string_value(json_object_get(d, "kind"));
        const char *name =
            json_string_value(json_object_get(json_object_get(d, "metadata"), "name"));

        if (json_is_null(d))
            continue; /* an empty document */
        if (!kind || strcmp(kind, "HostInspection")) {
            char k[256];

            term_text_escape(kind ? kind : "document without kind", k, sizeof(k));
            fprintf(errout, "hostpatrol inspect: %s: document %zu is a %s, not a HostInspection\n",
                    file, i + 1, k);
            return false;
        }
        docs[*n_docs].name = name ? name : "(unnamed)";
        if (inspection_spec_parse(json_object_get(d, "spec"), &docs[*n_docs].spec, &err)) {
            char nm[256], msg[2048];

            inspection_spec_release(&docs[*n_docs].spec);
            term_text_escape(docs[*n_docs].name, nm, sizeof(nm));
            term_text_escape(err.msg, msg, sizeof(msg));
            fprintf(errout, "hostpatrol inspect: %s: HostInspection %s: %s\n", file, nm, msg);
            return false;
        }
        (*n_docs)++;
    }
    return true;
}

/* rounds: every document, once or every shortest interval until stopped; the exit status */
static int rounds(const struct doc *docs, size_t n_docs, const struct inspect_opts *o, FILE *out,
                  FILE *errout)
{
    int status = HP_EXIT_FAIL;
    size_t i;

    if (!strcmp(o->format, "table"))
        fprintf(out, "%-20s %-16s %-16s %-8s %7s  %s\n", "NAME", "CHECK", "TARGET", "STATUS", "MS",
                "REASON");
    for (;;) {
        int64_t wait_ms = INT64_MAX;
        int bad = 0;

        for (i = 0; i < n_docs; i++) {
            int b =
                round_(&docs[i], o->host_root, o->node, !strcmp(o->format, "json"), out, errout);

            if (b < 0)
                return HP_EXIT_FAIL;
            bad += b;
            if (docs[i].spec.interval_ms < wait_ms)
                wait_ms = docs[i].spec.interval_ms;
        }
        status = bad ? HP_EXIT_FAIL : HP_EXIT_OK;
        if (o->once || stop_flag)
            break;
        /* the shortest interval paces every document (a preview, not a scheduler) */
        for (int64_t slept = 0; slept < wait_ms && !stop_flag; slept += 100) {
            struct timespec ts = {0, 100 * 1000000};

            nanosleep(&ts, NULL);
        }
        if (stop_flag)
            break;
    }
    return status;
}

int hp_cmd_inspect(int argc, char **argv, FILE *out, FILE *errout)
{
    struct inspect_opts o;
    struct doc *docs = NULL;
    struct hp_err err = {0};
    json_t *yaml = NULL;
    size_t n_docs = 0, i;
    int status = parse_flags(argc, argv, &o, out, errout);

    if (status >= 0)
        return status;
    if (yaml_doc_load_file(o.file, &yaml, &err)) {
        fprintf(errout, "hostpatrol inspect: %s\n", err.msg);
        return HP_EXIT_USAGE;
    }
    status = HP_EXIT_USAGE;
    docs = hp_calloc(json_array_size(yaml) + 1, sizeof(*docs));
    if (!docs) {
        status = HP_EXIT_FAIL;
        goto out;
    }
    if (!load_docs(yaml, o.file, docs, &n_docs, errout))
        goto out;
    if (!n_docs) {
        fprintf(errout, "hostpatrol inspect: %s holds no HostInspection\n", o.file);
        goto out;
    }
    if (!o.once) {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_stop;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    status = rounds(docs, n_docs, &o, out, errout);
out:
    for (i = 0; docs && i < n_docs; i++)
        inspection_spec_release(&docs[i].spec);
    hp_free(docs);
    json_decref(yaml);
    return status;
}
