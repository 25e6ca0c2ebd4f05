/* bench_probes.c - `hostpatrol bench probes`: flags -> struct probe_bench_config ->
 * probe_bench_run (include/hostpatrol/probe_bench.h). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "hostpatrol/duration.h"
#include "hostpatrol/probe_bench.h"

static void bp_usage(FILE *f)
{
    fprintf(f,
            "Usage: hostpatrol bench probes --kind http|tcp --target T [flags]\n"
            "Run concurrent probes against one target for a while and report probes/s (and,\n"
            "probing directly, the CPU this process used).\n\n"
            "  --kind http|tcp      probe kind (default http)\n"
            "  --target T           a URL (http) or host:port (tcp)\n"
            "  --concurrency N      probes in flight at once (default 1000)\n"
            "  --duration DUR       how long to keep starting probes (default 10s)\n"
            "  --blackbox URL       drive a running blackbox_exporter (GET URL/probe with\n"
            "                       module http_2xx or tcp_connect) instead of probing directly\n"
            "  -o, --output text|json\n");
}

int hp_cmd_bench_probes(int argc, char **argv, FILE *out, FILE *errout)
{
    enum { O_KIND = 256, O_TARGET, O_CONC, O_DURATION, O_BLACKBOX };
    static const struct option opts[] = {{"kind", required_argument, NULL, O_KIND},
                                         {"target", required_argument, NULL, O_TARGET},
                                         {"concurrency", required_argument, NULL, O_CONC},
                                         {"duration", required_argument, NULL, O_DURATION},
                                         {"blackbox", required_argument, NULL, O_BLACKBOX},
                                         {"output", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct probe_bench_config cfg = {.kind = CHECK_HTTP, .concurrency = 1000, .duration_ms = 10000};
    struct probe_bench_report rep = {0};
    struct hp_err err = {0};
    const char *format = "text";
    char *end;
    unsigned long long v;
    hp_rc rc;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, HP_OPTSTRING("o:h"), opts, NULL)) != -1) {
        switch (c) {
        case O_KIND:
            if (!strcmp(optarg, "http") || !strcmp(optarg, "tcp")) {
                cfg.kind = optarg[0] == 'h' ? CHECK_HTTP : CHECK_TCP;
                break;
            }
            fprintf(errout, "hostpatrol bench probes: --kind '%s' is not one of http, tcp\n",
                    optarg);
            return HP_EXIT_USAGE;
        case O_TARGET:
            cfg.target = optarg;
            break;
        case O_CONC:
            errno = 0;
            v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-' || v < 1 || v > 100000) {
                fprintf(errout,
                        "hostpatrol bench probes: --concurrency '%s' is not a whole number "
                        "from 1 to 100000\n",
                        optarg);
                return HP_EXIT_USAGE;
            }
            cfg.concurrency = (size_t)v;
            break;
        case O_DURATION:
            if (hp_duration_parse(optarg, "--duration", &cfg.duration_ms, &err)) {
                fprintf(errout, "hostpatrol bench probes: %s\n", err.msg);
                return HP_EXIT_USAGE;
            }
            break;
        case O_BLACKBOX:
            cfg.blackbox = optarg;
            break;
        case 'o':
            format = optarg;
            break;
        case 'h':
            bp_usage(out);
            return HP_EXIT_OK;
        default:
            hp_cli_bad_flag(errout, "bench probes", c, argv);
            bp_usage(errout);
            return HP_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(errout, "hostpatrol bench probes: unexpected argument '%s'\n", argv[optind]);
        return HP_EXIT_USAGE;
    }
    if (strcmp(format, "text") && strcmp(format, "json")) {
        fprintf(errout, "hostpatrol bench probes: --output '%s' is not one of text, json\n",
                format);
        return HP_EXIT_USAGE;
    }
    if (!cfg.target) {
        fprintf(errout, "hostpatrol bench probes: --target is required\n");
        return HP_EXIT_USAGE;
    }
    rc = probe_bench_run(&cfg, &rep, &err);
    if (rc) {
        fprintf(errout, "hostpatrol bench probes: %s\n", err.msg[0] ? err.msg : hp_rc_name(rc));
        return rc == HP_ERR_INVALID ? HP_EXIT_USAGE : HP_EXIT_FAIL;
    }
    probe_bench_print(&cfg, &rep, !strcmp(format, "json"), out);
    return HP_EXIT_OK;
}
