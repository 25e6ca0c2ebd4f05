/*
 * bench_probes.c - `hostpatrol bench probes`: probes per second and CPU of hostpatrol's prober
 * (probe_run, N probes in flight per round) against one target, or the same load driven through
 * a running Prometheus blackbox_exporter (N /probe requests in flight on one libcurl multi
 * handle), for the side-by-side comparison of tests/bench/probes.sh.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cmd.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/check_result.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/duration.h"
#include "hostpatrol/probe.h"

#define BP_ROUND_DEADLINE_MS 5000
#define BP_BODY_MAX          (64 * 1024)

struct bp_config {
    enum check_kind kind; /* CHECK_HTTP or CHECK_TCP */
    const char *target;   /* borrowed: a URL (http) or host:port (tcp) */
    const char *blackbox; /* borrowed: blackbox_exporter base URL, or NULL: probe directly */
    size_t concurrency;   /* probes in flight at once */
    int64_t duration_ms;  /* how long to keep starting probes */
};

struct bp_report {
    uint64_t probes, ok;
    double seconds, cpu_s; /* cpu_s: this process, user + sys (blackbox mode: the driver's) */
};

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

/* bp_cpu_s: user + system CPU seconds of this process so far */
static double bp_cpu_s(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru))
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* bp_split_hostport: "host:port" (s borrowed) -> *host (owned) and *port */
static hp_rc bp_split_hostport(const char *s, char **host, int *port, struct hp_err *err)
{
    const char *colon = strrchr(s, ':');
    char *end;
    long p;

    if (!colon || colon == s) {
        hp_err_field(err, HP_ERR_INVALID, "--target", "--target '%s' is not host:port", s);
        return HP_ERR_INVALID;
    }
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 1 || p > 65535) {
        hp_err_field(err, HP_ERR_INVALID, "--target", "--target '%s' has no valid port", s);
        return HP_ERR_INVALID;
    }
    *host = hp_strndup(s, (size_t)(colon - s));
    if (!*host)
        return HP_ERR_NOMEM;
    *port = (int)p;
    return HP_OK;
}

/* bp_run_direct: rounds of cfg->concurrency concurrent probe_run probes until the duration
 * has passed (the last round finishes); fills *rep */
static hp_rc bp_run_direct(const struct bp_config *cfg, struct bp_report *rep, struct hp_err *err)
{
    struct check_spec check = {.name = "bench", .kind = cfg->kind, .tls_min_days_left = -1};
    struct target_spec target = {.name = "bench"};
    struct probe_item *items = NULL;
    struct check_result *res = NULL;
    struct hp_ctx *ctx = NULL;
    char *host = NULL, *url = NULL;
    int64_t t0, end;
    double cpu0;
    size_t i, n = cfg->concurrency;
    hp_rc rc;

    if (cfg->kind == CHECK_HTTP) {
        url = hp_strdup(cfg->target);
        rc = url ? HP_OK : HP_ERR_NOMEM;
        if (rc)
            goto out;
        check.u.http.url = url;
    } else {
        rc = bp_split_hostport(cfg->target, &host, &check.u.tcp.port, err);
        if (rc)
            goto out;
        target.address = host;
    }
    items = hp_calloc(n, sizeof(*items));
    res = hp_calloc(n, sizeof(*res));
    rc = items && res ? HP_OK : HP_ERR_NOMEM;
    if (rc)
        goto out;
    for (i = 0; i < n; i++)
        items[i] = (struct probe_item){&check, cfg->kind == CHECK_TCP ? &target : NULL};

    cpu0 = bp_cpu_s();
    t0 = hp_now_ns();
    end = t0 + cfg->duration_ms * 1000000;
    while (hp_now_ns() < end) {
        rc = hp_ctx_new(NULL, BP_ROUND_DEADLINE_MS, &ctx);
        if (rc)
            goto out;
        rc = probe_run(items, n, ctx, res, err);
        hp_ctx_free(ctx);
        ctx = NULL;
        for (i = 0; i < n; i++) {
            if (!rc) {
                rep->probes++;
                rep->ok += res[i].status == CHECK_OK;
            }
            check_result_release(&res[i]);
        }
        if (rc)
            goto out;
    }
    rep->seconds = (double)(hp_now_ns() - t0) / 1e9;
    rep->cpu_s = bp_cpu_s() - cpu0;
out:
    hp_free(res);
    hp_free(items);
    hp_free(host);
    hp_free(url);
    return rc;
}

/* One /probe request of blackbox mode. */
struct bp_req {
    CURL *easy;
    char *body; /* owned; at most BP_BODY_MAX bytes, NUL-terminated */
    size_t len;
};

static size_t bp_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct bp_req *r = userdata;
    size_t n = size * nmemb, room = BP_BODY_MAX - r->len;
    size_t take = n < room ? n : room;

    memcpy(r->body + r->len, data, take);
    r->len += take;
    r->body[r->len] = '\0';
    return n;
}

/* bp_probe_ok: the blackbox answer says probe_success 1 */
static bool bp_probe_ok(const struct bp_req *r)
{
    const char *p = r->body;

    while ((p = strstr(p, "probe_success ")) != NULL) {
        if ((p == r->body || p[-1] == '\n') && p[14] == '1')
            return true;
        p += 14;
    }
    return false;
}

/* bp_run_blackbox: keep cfg->concurrency /probe requests in flight on one multi handle until
 * the duration has passed, then let the ones in flight finish; fills *rep (no CPU) */
static hp_rc bp_run_blackbox(const struct bp_config *cfg, struct bp_report *rep, struct hp_err *err)
{
    const char *module = cfg->kind == CHECK_HTTP ? "http_2xx" : "tcp_connect";
    struct bp_req *reqs = NULL;
    CURLM *multi = NULL;
    char *esc = NULL, *url = NULL;
    size_t i, n = cfg->concurrency, url_len, in_flight = 0;
    int64_t t0, end;
    double cpu0 = bp_cpu_s();
    hp_rc rc = HP_OK;

    reqs = hp_calloc(n, sizeof(*reqs));
    multi = curl_multi_init();
    esc = curl_easy_escape(NULL, cfg->target, 0);
    if (!reqs || !multi || !esc) {
        rc = HP_ERR_NOMEM;
        goto out;
    }
    url_len = strlen(cfg->blackbox) + strlen(esc) + 64;
    url = hp_malloc(url_len);
    if (!url) {
        rc = HP_ERR_NOMEM;
        goto out;
    }
    snprintf(url, url_len, "%s/probe?module=%s&target=%s", cfg->blackbox, module, esc);
    for (i = 0; i < n; i++) {
        reqs[i].body = hp_malloc(BP_BODY_MAX + 1);
        reqs[i].easy = curl_easy_init();
        if (!reqs[i].body || !reqs[i].easy) {
            rc = HP_ERR_NOMEM;
            goto out;
        }
        curl_easy_setopt(reqs[i].easy, CURLOPT_URL, url);
        curl_easy_setopt(reqs[i].easy, CURLOPT_WRITEFUNCTION, bp_write);
        curl_easy_setopt(reqs[i].easy, CURLOPT_WRITEDATA, &reqs[i]);
        curl_easy_setopt(reqs[i].easy, CURLOPT_PRIVATE, &reqs[i]);
        curl_easy_setopt(reqs[i].easy, CURLOPT_TIMEOUT_MS, 2L * BP_ROUND_DEADLINE_MS);
        curl_easy_setopt(reqs[i].easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(reqs[i].easy, CURLOPT_NOPROXY, "*");
    }
    t0 = hp_now_ns();
    end = t0 + cfg->duration_ms * 1000000;
    for (i = 0; i < n; i++) {
        if (curl_multi_add_handle(multi, reqs[i].easy) != CURLM_OK) {
            rc = HP_ERR_INTERNAL;
            goto out;
        }
        in_flight++;
    }
    while (in_flight) {
        CURLMsg *m;
        int running, left;

        if (curl_multi_perform(multi, &running) != CURLM_OK ||
            curl_multi_poll(multi, NULL, 0, 100, NULL) != CURLM_OK) {
            rc = HP_ERR_INTERNAL;
            goto out;
        }
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            struct bp_req *r = NULL;
            long code = 0;

            if (m->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            rep->probes++;
            rep->ok += m->data.result == CURLE_OK && code == 200 && bp_probe_ok(r);
            curl_multi_remove_handle(multi, r->easy);
            in_flight--;
            r->len = 0;
            r->body[0] = '\0';
            if (hp_now_ns() < end) {
                if (curl_multi_add_handle(multi, r->easy) != CURLM_OK) {
                    rc = HP_ERR_INTERNAL;
                    goto out;
                }
                in_flight++;
            }
        }
    }
    rep->seconds = (double)(hp_now_ns() - t0) / 1e9;
    rep->cpu_s = bp_cpu_s() - cpu0;
out:
    if (rc == HP_ERR_INTERNAL)
        hp_err_field(err, rc, "--blackbox", "libcurl multi interface failed");
    for (i = 0; reqs && i < n; i++) {
        if (reqs[i].easy) {
            curl_multi_remove_handle(multi, reqs[i].easy);
            curl_easy_cleanup(reqs[i].easy);
        }
        hp_free(reqs[i].body);
    }
    if (multi)
        curl_multi_cleanup(multi);
    curl_free(esc);
    hp_free(url);
    hp_free(reqs);
    return rc;
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
    struct bp_config cfg = {.kind = CHECK_HTTP, .concurrency = 1000, .duration_ms = 10000};
    struct bp_report rep = {0};
    struct hp_err err = {0};
    const char *format = "text", *mode;
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
    rc = cfg.blackbox ? bp_run_blackbox(&cfg, &rep, &err) : bp_run_direct(&cfg, &rep, &err);
    if (rc) {
        fprintf(errout, "hostpatrol bench probes: %s\n", err.msg[0] ? err.msg : hp_rc_name(rc));
        return rc == HP_ERR_INVALID ? HP_EXIT_USAGE : HP_EXIT_FAIL;
    }
    mode = cfg.blackbox ? "blackbox" : "direct";
    if (strcmp(format, "json") == 0) {
        fprintf(out,
                "{\"mode\":\"%s\",\"kind\":\"%s\",\"probes\":%llu,\"ok\":%llu,\"seconds\":%.3f,"
                "\"probes_per_s\":%.1f",
                mode, check_kind_name(cfg.kind), (unsigned long long)rep.probes,
                (unsigned long long)rep.ok, rep.seconds,
                rep.seconds > 0 ? (double)rep.probes / rep.seconds : 0.0);
        fprintf(out, ",\"%s\":%.3f", cfg.blackbox ? "driver_cpu_s" : "cpu_s", rep.cpu_s);
        fprintf(out, "}\n");
    } else {
        fprintf(out, "%-8s %-4s %10s %10s %8s %12s %8s\n", "mode", "kind", "probes", "ok",
                "seconds", "probes/s", "cpu s");
        fprintf(out, "%-8s %-4s %10llu %10llu %8.2f %12.1f ", mode, check_kind_name(cfg.kind),
                (unsigned long long)rep.probes, (unsigned long long)rep.ok, rep.seconds,
                rep.seconds > 0 ? (double)rep.probes / rep.seconds : 0.0);
        fprintf(out, "%8.2f%s\n", rep.cpu_s, cfg.blackbox ? " (driver)" : "");
    }
    return HP_EXIT_OK;
}
