/* bench.c - `hostpatrol bench etcd`: flags -> struct etcd_bench_config -> etcd_bench_run.
 * `hostpatrol bench probes` is dispatched to bench_probes.c. */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "hostpatrol/duration.h"
#include "hostpatrol/etcd_bench.h"

static void bench_usage(FILE *f)
{
    fprintf(
        f, "Usage: hostpatrol bench etcd --endpoints URL[,URL] [flags]\n"
           "Write unique results into etcd through the batch queue and report keys/s, txns/s,\n"
           "commit latency p50/p99 and outcomes.\n\n"
           "  --endpoints URLS     etcd client URLs (or $HOSTPATROL_ETCD_ENDPOINTS)\n"
           "  --results N          results to write (default 10000)\n"
           "  --value-bytes B      bytes per value, 32-524288 (default 256)\n"
           "  --concurrency C      txns in flight at most; naive: writer threads (default 16)\n"
           "  --deadline DUR       deadline of the results from their enqueue (default 5s; batch:\n"
           "                       a txn's worth of results share one, from the first)\n"
           "  --rate N             enqueue at most N results per second (default: at once)\n"
           "  --txn-ops N          the server's --max-txn-ops (default 128)\n"
           "  --writes-per-record N  results per queued record (default 1; up to --txn-ops - 1,\n"
           "                       as the controller queues a run's results)\n"
           "  --outcomes FILE      one JSON line per batch as it completes\n"
           "  --verify             read etcd back and check atomicity, no loss, no duplicate,\n"
           "                       no phantom\n"
           "  --check FILE         only verify the outcome lines of an earlier run\n"
           "  --naive              one put per result (a comparison baseline)\n"
           "  --prefix P           key prefix (default /hostpatrol-bench/)\n"
           "  --writer NAME        batch queue writer name (default bench)\n"
           "  --state-dir DIR      journal of unresolved batches\n"
           "  --latency-high DUR   limiter: shrink in-flight txns when p95 is above (50ms)\n"
           "  --latency-low DUR    limiter: grow when p95 is below (20ms)\n"
           "  --min-inflight N     limiter: never fewer txns in flight than N (default 1)\n"
           "  --ca-file F --cert-file F --key-file F --server-name NAME   TLS\n"
           "  --transport grpc|gateway   native gRPC (default) or the JSON gateway\n"
           "  --user NAME          etcd auth user; password from $HOSTPATROL_ETCD_PASSWORD\n"
           "  -o, --output text|json\n\n"
           "SIGTERM or SIGINT stops the run at once: nothing more is sent, batches not final\n"
           "are reported unresolved (journaled with --state-dir, resolved at the next start)\n"
           "and the command exits 1 within 1 s plus the journal writes.\n");
}

/* parse_size: a whole number for flag; errors name the flag */
static int parse_size(const char *flag, const char *s, size_t *out, FILE *errout)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(errout, "hostpatrol bench etcd: %s '%s' is not a whole number\n", flag, s);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

enum {
    O_ENDPOINTS = 256,
    O_RESULTS,
    O_VALUE,
    O_CONC,
    O_DEADLINE,
    O_TXNOPS,
    O_OUTCOMES,
    O_VERIFY,
    O_CHECK,
    O_NAIVE,
    O_PREFIX,
    O_WRITER,
    O_STATE,
    O_CA,
    O_CERT,
    O_KEY,
    O_SNI,
    O_USER,
    O_HIGH,
    O_LOW,
    O_MININF,
    O_RATE,
    O_TRANSPORT,
    O_PERREC
};

static const struct option opts[] = {{"endpoints", required_argument, NULL, O_ENDPOINTS},
                                     {"results", required_argument, NULL, O_RESULTS},
                                     {"value-bytes", required_argument, NULL, O_VALUE},
                                     {"concurrency", required_argument, NULL, O_CONC},
                                     {"deadline", required_argument, NULL, O_DEADLINE},
                                     {"txn-ops", required_argument, NULL, O_TXNOPS},
                                     {"outcomes", required_argument, NULL, O_OUTCOMES},
                                     {"verify", no_argument, NULL, O_VERIFY},
                                     {"check", required_argument, NULL, O_CHECK},
                                     {"naive", no_argument, NULL, O_NAIVE},
                                     {"prefix", required_argument, NULL, O_PREFIX},
                                     {"writer", required_argument, NULL, O_WRITER},
                                     {"state-dir", required_argument, NULL, O_STATE},
                                     {"ca-file", required_argument, NULL, O_CA},
                                     {"cert-file", required_argument, NULL, O_CERT},
                                     {"key-file", required_argument, NULL, O_KEY},
                                     {"server-name", required_argument, NULL, O_SNI},
                                     {"user", required_argument, NULL, O_USER},
                                     {"latency-high", required_argument, NULL, O_HIGH},
                                     {"latency-low", required_argument, NULL, O_LOW},
                                     {"min-inflight", required_argument, NULL, O_MININF},
                                     {"rate", required_argument, NULL, O_RATE},
                                     {"transport", required_argument, NULL, O_TRANSPORT},
                                     {"writes-per-record", required_argument, NULL, O_PERREC},
                                     {"output", required_argument, NULL, 'o'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};

#define CFG_FIELD(m) offsetof(struct etcd_bench_config, m)

/* flags whose value is kept as given */
static const struct {
    int opt;
    size_t off; /* of the const char * in struct etcd_bench_config */
} string_flags[] = {
    {O_ENDPOINTS, CFG_FIELD(etcd.endpoints)},
    {O_OUTCOMES, CFG_FIELD(outcomes_path)},
    {O_PREFIX, CFG_FIELD(prefix)},
    {O_WRITER, CFG_FIELD(writer)},
    {O_STATE, CFG_FIELD(state_dir)},
    {O_CA, CFG_FIELD(etcd.ca_file)},
    {O_CERT, CFG_FIELD(etcd.cert_file)},
    {O_KEY, CFG_FIELD(etcd.key_file)},
    {O_SNI, CFG_FIELD(etcd.server_name)},
    {O_USER, CFG_FIELD(etcd.username)},
};

/* flags whose value is a whole number (size_t) */
static const struct {
    int opt;
    const char *flag;
    size_t off; /* of the size_t in struct etcd_bench_config */
} size_flags[] = {
    {O_RESULTS, "--results", CFG_FIELD(results)},
    {O_VALUE, "--value-bytes", CFG_FIELD(value_bytes)},
    {O_TXNOPS, "--txn-ops", CFG_FIELD(txn_ops)},
    {O_RATE, "--rate", CFG_FIELD(rate)},
    {O_PERREC, "--writes-per-record", CFG_FIELD(writes_per_record)},
};

/* flags whose value is a duration */
static const struct {
    int opt;
    const char *flag;
    size_t off; /* of the int64_t (ms) in struct etcd_bench_config */
} duration_flags[] = {
    {O_DEADLINE, "--deadline", CFG_FIELD(deadline_ms)},
    {O_HIGH, "--latency-high", CFG_FIELD(p95_high_ms)},
    {O_LOW, "--latency-low", CFG_FIELD(p95_low_ms)},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

struct bench_flags {
    struct etcd_bench_config cfg;
    const char *check, *format;
};

/* table_flag: a flag of the tables above: 1 taken, 0 not one of them, -1 bad (message
 * printed) */
static int table_flag(struct etcd_bench_config *cfg, int c, const char *arg, FILE *errout)
{
    char *base = (char *)cfg;
    struct hp_err err = {0};
    size_t i;

    for (i = 0; i < N_OF(string_flags); i++)
        if (c == string_flags[i].opt) {
            *(const char **)(base + string_flags[i].off) = arg;
            return 1;
        }
    for (i = 0; i < N_OF(size_flags); i++)
        if (c == size_flags[i].opt)
            return parse_size(size_flags[i].flag, arg, (size_t *)(base + size_flags[i].off), errout)
                       ? -1
                       : 1;
    for (i = 0; i < N_OF(duration_flags); i++) {
        if (c != duration_flags[i].opt)
            continue;
        if (hp_duration_parse(arg, duration_flags[i].flag,
                              (int64_t *)(base + duration_flags[i].off), &err)) {
            fprintf(errout, "hostpatrol bench etcd: %s\n", err.msg);
            return -1;
        }
        return 1;
    }
    return 0;
}

/* one_flag: what getopt_long returned (c): 0 taken, else the exit status (HP_EXIT_OK after
 * --help) */
static int one_flag(struct bench_flags *fl, int c, char **argv, FILE *out, FILE *errout)
{
    size_t n;
    int taken = table_flag(&fl->cfg, c, optarg, errout);

    if (taken)
        return taken > 0 ? 0 : HP_EXIT_USAGE;
    switch (c) {
    case O_CONC:
    case O_MININF:
        if (parse_size(c == O_CONC ? "--concurrency" : "--min-inflight", optarg, &n, errout))
            return HP_EXIT_USAGE;
        if (c == O_CONC)
            fl->cfg.concurrency = n > 100000 ? 100000 : (unsigned)n;
        else
            fl->cfg.min_inflight = n > 256 ? 256 : (unsigned)n;
        return 0;
    case O_VERIFY:
    case O_NAIVE:
        *(c == O_VERIFY ? &fl->cfg.verify : &fl->cfg.naive) = true;
        return 0;
    case O_CHECK:
        fl->check = optarg;
        return 0;
    case O_TRANSPORT:
        if (strcmp(optarg, "grpc") && strcmp(optarg, "gateway")) {
            fprintf(errout, "hostpatrol bench etcd: --transport: '%s' is not grpc or gateway\n",
                    optarg);
            return HP_EXIT_USAGE;
        }
        fl->cfg.etcd.transport =
            optarg[0] == 'g' && optarg[1] == 'r' ? ETCD_TRANSPORT_GRPC : ETCD_TRANSPORT_GATEWAY;
        return 0;
    case 'o':
        fl->format = optarg;
        return 0;
    case 'h':
        bench_usage(out);
        return HP_EXIT_OK;
    default:
        hp_cli_bad_flag(errout, "bench etcd", c, argv);
        bench_usage(errout);
        return HP_EXIT_USAGE;
    }
}

/* check_flags: what no single flag can say */
static int check_flags(const struct bench_flags *fl, FILE *errout)
{
    if (strcmp(fl->format, "text") && strcmp(fl->format, "json")) {
        fprintf(errout, "hostpatrol bench etcd: --output '%s' is not one of text, json\n",
                fl->format);
        return HP_EXIT_USAGE;
    }
    if (!fl->cfg.etcd.endpoints) {
        fprintf(errout, "hostpatrol bench etcd: --endpoints is required (or set "
                        "HOSTPATROL_ETCD_ENDPOINTS)\n");
        return HP_EXIT_USAGE;
    }
    if (fl->cfg.etcd.username && !fl->cfg.etcd.password) {
        fprintf(errout, "hostpatrol bench etcd: --user needs $HOSTPATROL_ETCD_PASSWORD\n");
        return HP_EXIT_USAGE;
    }
    if (fl->cfg.min_inflight > fl->cfg.concurrency) {
        fprintf(errout, "hostpatrol bench etcd: --min-inflight %u is above --concurrency %u\n",
                fl->cfg.min_inflight, fl->cfg.concurrency);
        return HP_EXIT_USAGE;
    }
    return 0;
}

/* parse_flags: argv (after "etcd") -> fl; -1 to go on, else the exit status */
static int parse_flags(int argc, char **argv, struct bench_flags *fl, FILE *out, FILE *errout)
{
    int c, status;

    fl->cfg.etcd.endpoints = getenv("HOSTPATROL_ETCD_ENDPOINTS");
    fl->cfg.etcd.password = getenv("HOSTPATROL_ETCD_PASSWORD");
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, HP_OPTSTRING("o:h"), opts, NULL)) != -1) {
        status = one_flag(fl, c, argv, out, errout);
        if (c == 'h' || status)
            return status;
    }
    if (optind < argc) {
        fprintf(errout, "hostpatrol bench etcd: unexpected argument '%s'\n", argv[optind]);
        return HP_EXIT_USAGE;
    }
    status = check_flags(fl, errout);
    return status ? status : -1;
}

int hp_cmd_bench(int argc, char **argv, FILE *out, FILE *errout)
{
    struct bench_flags fl = {
        .cfg = {.results = 10000, .value_bytes = 256, .concurrency = 16, .deadline_ms = 5000},
        .format = "text"};
    struct etcd_bench_report rep;
    struct hp_err err = {0};
    hp_rc rc;
    int status;

    if (argc >= 2 && !strcmp(argv[1], "probes"))
        return hp_cmd_bench_probes(argc - 1, argv + 1, out, errout);
    if (argc < 2 || strcmp(argv[1], "etcd")) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            bench_usage(out);
            return HP_EXIT_OK;
        }
        fprintf(errout, "hostpatrol bench: name what to benchmark: 'hostpatrol bench etcd' or "
                        "'hostpatrol bench probes'\n");
        return HP_EXIT_USAGE;
    }
    status = parse_flags(argc - 1, argv + 1, &fl, out, errout);
    if (status >= 0)
        return status;
    rc = fl.check ? etcd_bench_check(&fl.cfg, fl.check, &rep, &err)
                  : etcd_bench_run_until_signal(&fl.cfg, &rep, &err);
    if (rc) {
        fprintf(errout, "hostpatrol bench etcd: %s\n", err.msg[0] ? err.msg : hp_rc_name(rc));
        return rc == HP_ERR_INVALID ? HP_EXIT_USAGE : HP_EXIT_FAIL;
    }
    etcd_bench_print_report(&fl.cfg, &rep, !fl.check, !strcmp(fl.format, "json"), out);
    return rep.violations || rep.terminated ? HP_EXIT_FAIL : HP_EXIT_OK;
}
