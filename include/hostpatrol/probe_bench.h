/*
 * probe_bench.h - `hostpatrol bench probes`: probes per second and CPU of hostpatrol's prober
 * (probe_run, N probes in flight per round) against one target, or the same load driven through
 * a running Prometheus blackbox_exporter (N /probe requests in flight on one libcurl multi
 * handle), for the side-by-side comparison of tests/bench/probes.sh.
 *
 * Thread-safety: probe_bench_run blocks the calling thread for about duration_ms (the last
 * round, or the requests in flight, finish after it: each is bounded by
 * PROBE_BENCH_ROUND_DEADLINE_MS, twice that for a /probe request).
 */
#ifndef HOSTPATROL_PROBE_BENCH_H
#define HOSTPATROL_PROBE_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hostpatrol/inspection_spec.h"
#include "hostpatrol/rc.h"

#define PROBE_BENCH_ROUND_DEADLINE_MS 5000

struct probe_bench_config {
    enum check_kind kind; /* CHECK_HTTP or CHECK_TCP */
    const char *target;   /* borrowed: a URL (http) or host:port (tcp) */
    const char *blackbox; /* borrowed: blackbox_exporter base URL, or NULL: probe directly */
    size_t concurrency;   /* probes in flight at once (>= 1) */
    int64_t duration_ms;  /* how long to keep starting probes */
};

struct probe_bench_report {
    uint64_t probes, ok;
    double seconds, cpu_s; /* cpu_s: this process, user + sys (blackbox mode: the driver's) */
};

/* probe_bench_run: one run; *rep filled (zero it first). HP_ERR_INVALID with err naming
 * --target when a tcp target is not host:port; HP_ERR_INTERNAL (--blackbox) when libcurl's
 * multi interface fails; HP_ERR_NOMEM. */
hp_rc probe_bench_run(const struct probe_bench_config *cfg, struct probe_bench_report *rep,
                      struct hp_err *err) HP_WUR;

/* probe_bench_print: the report as a table (header and row) or one JSON object on f. */
void probe_bench_print(const struct probe_bench_config *cfg, const struct probe_bench_report *rep,
                       bool json, FILE *f);

#endif
