/*
 * prom_histogram.h - a Prometheus histogram: fixed upper bounds, cumulative counts, sum and
 * count, observed from any thread (one mutex per histogram, held for a few instructions).
 * prom_writer_histogram (prom_writer.h) writes it out.
 */
#ifndef HOSTPATROL_PROM_HISTOGRAM_H
#define HOSTPATROL_PROM_HISTOGRAM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define PROM_HISTOGRAM_MAX_BUCKETS 16

struct prom_histogram {
    pthread_mutex_t mu; /* guards counts, sum, count */
    size_t n;           /* bounds in use */
    double bounds[PROM_HISTOGRAM_MAX_BUCKETS];
    uint64_t counts[PROM_HISTOGRAM_MAX_BUCKETS + 1]; /* per bucket, not cumulative; +Inf last */
    double sum;
    uint64_t count;
};

/* prom_histogram_init: bounds (borrowed; ascending; at most PROM_HISTOGRAM_MAX_BUCKETS are
 * used) are copied. */
void prom_histogram_init(struct prom_histogram *h, const double *bounds, size_t n);
void prom_histogram_release(struct prom_histogram *h); /* NULL allowed */
void prom_histogram_observe(struct prom_histogram *h, double v);
/* prom_histogram_copy: a consistent snapshot (counts, sum, count) into *out (no mutex use) */
void prom_histogram_copy(struct prom_histogram *h, struct prom_histogram *out);

/* Bucket sets: seconds of a call (1 ms .. 30 s) and sizes (1 .. 4096). */
extern const double prom_buckets_seconds[12];
extern const double prom_buckets_size[10];

#endif
