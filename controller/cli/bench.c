/* bench.c - `hostpatrol bench etcd`: flags -> struct etcd_bench_config -> etcd_bench_run.
 * `hostpatrol bench probes` is dispatched to bench_probes.c. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cmd.h"
#include "hostpatrol/duration.h"
#include "hostpatrol/etcd_bench.h"

static void bench_usage(FILE *f)
{
    fprintf(f, "Usage: hostpatrol bench etcd --endpoints URL[,URL] [flags]\n"
               "Write unique results into etcd through the batch queue and report keys/s, txns/s,\n"
               "commit latency p50/p99 and outcomes.\n\n"
               "  --endpoints URLS     etcd client URLs (or $HOSTPATROL_ETCD_ENDPOINTS)\n"
               "  --results N          results to write (default 10000)\n"
               "  --value-bytes B      bytes per value, 32-524288 (default 256)\n"
               "  --concurrency C      txns in flight at most; naive: writer threads (default 16)\n"
               "  --deadline DUR       deadline of each result from its enqueue (default 5s)\n"
               "  --rate N             enqueue at most N results per second (default: at once)\n"
               "  --txn-ops N          the server's --max-txn-ops (default 128)\n"
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

/* term_watch: SIGTERM / SIGINT (blocked in every thread) cancel stop; the run then ends */
struct term_watch {
    struct hp_ctx *stop; /* borrowed */
    atomic_int done;     /* the run is over: stop watching */
};

static void *term_main(void *arg)
{
    struct term_watch *w = arg;
    struct timespec tick = {0, 100000000};
    sigset_t s;

    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    while (!atomic_load(&w->done)) {
        if (sigtimedwait(&s, NULL, &tick) > 0) {
            hp_ctx_cancel(w->stop);
            break;
        }
    }
    return NULL;
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

int hp_cmd_bench(int argc, char **argv, FILE *out, FILE *errout)
{
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
        O_TRANSPORT
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
                                         {"output", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct etcd_bench_config cfg = {
        .results = 10000, .value_bytes = 256, .concurrency = 16, .deadline_ms = 5000};
    struct etcd_bench_report rep;
    struct hp_err err = {0};
    const char *check = NULL, *format = "text";
    size_t n;
    hp_rc rc;
    int c;

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
    argc--;
    argv++;
    cfg.etcd.endpoints = getenv("HOSTPATROL_ETCD_ENDPOINTS");
    cfg.etcd.password = getenv("HOSTPATROL_ETCD_PASSWORD");
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, HP_OPTSTRING("o:h"), opts, NULL)) != -1) {
        switch (c) {
        case O_ENDPOINTS:
            cfg.etcd.endpoints = optarg;
            break;
        case O_RESULTS:
            if (parse_size("--results", optarg, &cfg.results, errout))
                return HP_EXIT_USAGE;
            break;
        case O_VALUE:
            if (parse_size("--value-bytes", optarg, &cfg.value_bytes, errout))
                return HP_EXIT_USAGE;
            break;
        case O_CONC:
            if (parse_size("--concurrency", optarg, &n, errout))
                return HP_EXIT_USAGE;
            cfg.concurrency = n > 100000 ? 100000 : (unsigned)n;
            break;
        case O_DEADLINE:
            if (hp_duration_parse(optarg, "--deadline", &cfg.deadline_ms, &err)) {
                fprintf(errout, "hostpatrol bench etcd: %s\n", err.msg);
                return HP_EXIT_USAGE;
            }
            break;
        case O_TXNOPS:
            if (parse_size("--txn-ops", optarg, &cfg.txn_ops, errout))
                return HP_EXIT_USAGE;
            break;
        case O_OUTCOMES:
            cfg.outcomes_path = optarg;
            break;
        case O_VERIFY:
            cfg.verify = true;
            break;
        case O_CHECK:
            check = optarg;
            break;
        case O_NAIVE:
            cfg.naive = true;
            break;
        case O_PREFIX:
            cfg.prefix = optarg;
            break;
        case O_WRITER:
            cfg.writer = optarg;
            break;
        case O_STATE:
            cfg.state_dir = optarg;
            break;
        case O_CA:
            cfg.etcd.ca_file = optarg;
            break;
        case O_CERT:
            cfg.etcd.cert_file = optarg;
            break;
        case O_KEY:
            cfg.etcd.key_file = optarg;
            break;
        case O_SNI:
            cfg.etcd.server_name = optarg;
            break;
        case O_USER:
            cfg.etcd.username = optarg;
            break;
        case O_TRANSPORT:
            if (strcmp(optarg, "grpc") && strcmp(optarg, "gateway")) {
                fprintf(errout, "hostpatrol bench etcd: --transport: '%s' is not grpc or gateway\n",
                        optarg);
                return HP_EXIT_USAGE;
            }
            cfg.etcd.transport =
                optarg[0] == 'g' && optarg[1] == 'r' ? ETCD_TRANSPORT_GRPC : ETCD_TRANSPORT_GATEWAY;
            break;
        case O_HIGH:
        case O_LOW:
            if (hp_duration_parse(optarg, c == O_HIGH ? "--latency-high" : "--latency-low",
                                  c == O_HIGH ? &cfg.p95_high_ms : &cfg.p95_low_ms, &err)) {
                fprintf(errout, "hostpatrol bench etcd: %s\n", err.msg);
                return HP_EXIT_USAGE;
            }
            break;
        case O_RATE:
            if (parse_size("--rate", optarg, &cfg.rate, errout))
                return HP_EXIT_USAGE;
            break;
        case O_MININF:
            if (parse_size("--min-inflight", optarg, &n, errout))
                return HP_EXIT_USAGE;
            cfg.min_inflight = n > 256 ? 256 : (unsigned)n;
            break;
        case 'o':
            format = optarg;
            break;
        case 'h':
            bench_usage(out);
            return HP_EXIT_OK;
        default:
            hp_cli_bad_flag(errout, "bench etcd", c, argv);
            bench_usage(errout);
            return HP_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(errout, "hostpatrol bench etcd: unexpected argument '%s'\n", argv[optind]);
        return HP_EXIT_USAGE;
    }
    if (strcmp(format, "text") && strcmp(format, "json")) {
        fprintf(errout, "hostpatrol bench etcd: --output '%s' is not one of text, json\n", format);
        return HP_EXIT_USAGE;
    }
    if (!cfg.etcd.endpoints) {
        fprintf(errout, "hostpatrol bench etcd: --endpoints is required (or set "
                        "HOSTPATROL_ETCD_ENDPOINTS)\n");
        return HP_EXIT_USAGE;
    }
    if (cfg.etcd.username && !cfg.etcd.password) {
        fprintf(errout, "hostpatrol bench etcd: --user needs $HOSTPATROL_ETCD_PASSWORD\n");
        return HP_EXIT_USAGE;
    }
    if (cfg.min_inflight > cfg.concurrency) {
        fprintf(errout, "hostpatrol bench etcd: --min-inflight %u is above --concurrency %u\n",
                cfg.min_inflight, cfg.concurrency);
        return HP_EXIT_USAGE;
    }
    if (check) {
        rc = etcd_bench_check(&cfg, check, &rep, &err);
    } else {
        struct term_watch w = {.done = 0};
        sigset_t sigs;
        pthread_t th;
        int watching;

        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* before any thread starts: all inherit it */
        rc = hp_ctx_new(NULL, HP_CTX_NO_TIMEOUT, &w.stop);
        watching = !rc && !pthread_create(&th, NULL, term_main, &w);
        if (!rc && !watching)
            rc = hp_err_set(&err, HP_ERR_NOMEM, "cannot start the signal thread");
        cfg.stop = w.stop;
        if (!rc)
            rc = etcd_bench_run(&cfg, &rep, &err);
        atomic_store(&w.done, 1);
        if (watching)
            pthread_join(th, NULL);
        hp_ctx_free(w.stop);
        /* the mask stays: a signal from now on finds the run over and the exit under way */
    }
    if (rc) {
        fprintf(errout, "hostpatrol bench etcd: %s\n", err.msg[0] ? err.msg : hp_rc_name(rc));
        return rc == HP_ERR_INVALID ? HP_EXIT_USAGE : HP_EXIT_FAIL;
    }
    if (strcmp(format, "json") == 0) {
        etcd_bench_print(&rep, true, out);
    } else {
        if (!check)
            fprintf(out,
                    "hostpatrol bench etcd: run %s, %zu results of %zu B, concurrency %u, "
                    "deadline %lld ms, %.2f s\n",
                    rep.run_id, cfg.results, cfg.value_bytes, cfg.concurrency,
                    (long long)cfg.deadline_ms, rep.seconds);
        fprintf(out, "%-6s %10s %9s %8s %8s %10s %7s %12s %11s %8s\n", "mode", "keys/s", "txns/s",
                "p50 ms", "p99 ms", "committed", "failed", "rolled_back", "unresolved", "rejected");
        etcd_bench_print(&rep, false, out);
    }
    return rep.violations || rep.terminated ? HP_EXIT_FAIL : HP_EXIT_OK;
}
