/* prom_histogram.c - Prometheus histograms (see include/hostpatrol/prom_histogram.h). */
#include "hostpatrol/prom_histogram.h"

#include <string.h>

const double prom_buckets_seconds[12] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,   0.25,   0.5,   1,    5,     30};
const double prom_buckets_size[10] = {1, 2, 4, 8, 16, 32, 64, 128, 1024, 4096};

void prom_histogram_init(struct prom_histogram *h, const double *bounds, size_t n)
{
    memset(h, 0, sizeof(*h));
    pthread_mutex_init(&h->mu, NULL);
    h->n = n > PROM_HISTOGRAM_MAX_BUCKETS ? PROM_HISTOGRAM_MAX_BUCKETS : n;
    memcpy(h->bounds, bounds, h->n * sizeof(*bounds));
}

void prom_histogram_release(struct prom_histogram *h)
{
    if (h)
        pthread_mutex_destroy(&h->mu);
}

void prom_histogram_observe(struct prom_histogram *h, double v)
{
    size_t i = 0;

    while (i < h->n && v > h->bounds[i])
        i++;
    pthread_mutex_lock(&h->mu);
    h->counts[i]++;
    h->sum += v;
    h->count++;
    pthread_mutex_unlock(&h->mu);
}

void prom_histogram_copy(struct prom_histogram *h, struct prom_histogram *out)
{
    pthread_mutex_lock(&h->mu);
    out->n = h->n;
    memcpy(out->bounds, h->bounds, sizeof(h->bounds));
    memcpy(out->counts, h->counts, sizeof(h->counts));
    out->sum = h->sum;
    out->count = h->count;
    pthread_mutex_unlock(&h->mu);
}
