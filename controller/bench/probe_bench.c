/* probe_bench.c - the prober's throughput, directly or through a blackbox_exporter (see
 * include/hostpatrol/probe_bench.h). */
#include "hostpatrol/probe_bench.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/check_result.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/probe.h"

#define BP_BODY_MAX (64 * 1024)

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
static hp_rc bp_run_direct(const struct probe_bench_config *cfg, struct probe_bench_report *rep,
                           struct hp_err *err)
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
        rc = hp_ctx_new(NULL, PROBE_BENCH_ROUND_DEADLINE_MS, &ctx);
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

/* bp_blackbox_requests: the /probe URL (*url owned) and n = cfg->concurrency requests of it
 * (their handles and bodies owned by reqs, freed by the caller even on error) */
static hp_rc bp_blackbox_requests(const struct probe_bench_config *cfg, struct bp_req *reqs,
                                  char **url)
{
    const char *module = cfg->kind == CHECK_HTTP ? "http_2xx" : "tcp_connect";
    char *esc = curl_easy_escape(NULL, cfg->target, 0);
    size_t i, url_len;

    if (!esc)
        return HP_ERR_NOMEM;
    url_len = strlen(cfg->blackbox) + strlen(esc) + 64;
    *url = hp_malloc(url_len);
    if (*url)
        snprintf(*url, url_len, "%s/probe?module=%s&target=%s", cfg->blackbox, module, esc);
    curl_free(esc);
    if (!*url)
        return HP_ERR_NOMEM;
    for (i = 0; i < cfg->concurrency; i++) {
        reqs[i].body = hp_malloc(BP_BODY_MAX + 1);
        reqs[i].easy = curl_easy_init();
        if (!reqs[i].body || !reqs[i].easy)
            return HP_ERR_NOMEM;
        curl_easy_setopt(reqs[i].easy, CURLOPT_URL, *url);
        curl_easy_setopt(reqs[i].easy, CURLOPT_WRITEFUNCTION, bp_write);
        curl_easy_setopt(reqs[i].easy, CURLOPT_WRITEDATA, &reqs[i]);
        curl_easy_setopt(reqs[i].easy, CURLOPT_PRIVATE, &reqs[i]);
        curl_easy_setopt(reqs[i].easy, CURLOPT_TIMEOUT_MS, 2L * PROBE_BENCH_ROUND_DEADLINE_MS);
        curl_easy_setopt(reqs[i].easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(reqs[i].easy, CURLOPT_NOPROXY, "*");
    }
    return HP_OK;
}

/* bp_run_blackbox: keep cfg->concurrency /probe requests in flight on one multi handle until
 * the duration has passed, then let the ones in flight finish; fills *rep (no CPU) */
static hp_rc bp_run_blackbox(const struct probe_bench_config *cfg, struct probe_bench_report *rep,
                             struct hp_err *err)
{
    struct bp_req *reqs = NULL;
    CURLM *multi = NULL;
    char *url = NULL;
    size_t i, n = cfg->concurrency, in_flight = 0;
    int64_t t0, end;
    double cpu0 = bp_cpu_s();
    hp_rc rc = HP_OK;

    reqs = hp_calloc(n, sizeof(*reqs));
    multi = curl_multi_init();
    rc = reqs && multi ? bp_blackbox_requests(cfg, reqs, &url) : HP_ERR_NOMEM;
    if (rc)
        goto out;
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
    hp_free(url);
    hp_free(reqs);
    return rc;
}

hp_rc probe_bench_run(const struct probe_bench_config *cfg, struct probe_bench_report *rep,
                      struct hp_err *err)
{
    return cfg->blackbox ? bp_run_blackbox(cfg, rep, err) : bp_run_direct(cfg, rep, err);
}

void probe_bench_print(const struct probe_bench_config *cfg, const struct probe_bench_report *rep,
                       bool json, FILE *f)
{
    const char *mode = cfg->blackbox ? "blackbox" : "direct";
    double per_s = rep->seconds > 0 ? (double)rep->probes / rep->seconds : 0.0;

    if (json) {
        fprintf(f,
                "{\"mode\":\"%s\",\"kind\":\"%s\",\"probes\":%llu,\"ok\":%llu,\"seconds\":%.3f,"
                "\"probes_per_s\":%.1f",
                mode, check_kind_name(cfg->kind), (unsigned long long)rep->probes,
                (unsigned long long)rep->ok, rep->seconds, per_s);
        fprintf(f, ",\"%s\":%.3f", cfg->blackbox ? "driver_cpu_s" : "cpu_s", rep->cpu_s);
        fprintf(f, "}\n");
        return;
    }
    fprintf(f, "%-8s %-4s %10s %10s %8s %12s %8s\n", "mode", "kind", "probes", "ok", "seconds",
            "probes/s", "cpu s");
    fprintf(f, "%-8s %-4s %10llu %10llu %8.2f %12.1f ", mode, check_kind_name(cfg->kind),
            (unsigned long long)rep->probes, (unsigned long long)rep->ok, rep->seconds, per_s);
    fprintf(f, "%8.2f%s\n", rep->cpu_s, cfg->blackbox ? " (driver)" : "");
}
