/*
 * prom_writer.h - the Prometheus text exposition format (version 0.0.4), written into a growing
 * buffer: a HELP and TYPE line per family, then its samples. Label values are escaped (\\, ",
 * newline); callers pass only bounded label values (kinds, outcomes), never free text.
 *
 * Ownership: the buffer belongs to the writer until prom_writer_take hands it over (hp_free).
 * An allocation failure is sticky: later calls do nothing and take returns NULL.
 */
#ifndef HOSTPATROL_PROM_WRITER_H
#define HOSTPATROL_PROM_WRITER_H

#include <stddef.h>

#include "hostpatrol/buf.h"

struct prom_writer {
    struct hp_buf text; /* its failure is the writer's: sticky */
};

void prom_writer_init(struct prom_writer *w);
void prom_writer_release(struct prom_writer *w); /* NULL allowed */

/* prom_writer_family: "# HELP name help" and "# TYPE name type" (counter, gauge, ...) */
void prom_writer_family(struct prom_writer *w, const char *name, const char *type,
                        const char *help);
/* prom_writer_sample: "name{k1="v1",...} value"; labels is a NULL-terminated list of
 * alternating names and values (NULL: no labels) */
void prom_writer_sample(struct prom_writer *w, const char *name, const char *const *labels,
                        double value);

/* prom_writer_counter, prom_writer_gauge: a family of that type with one sample without labels */
void prom_writer_counter(struct prom_writer *w, const char *name, const char *help, double value);
void prom_writer_gauge(struct prom_writer *w, const char *name, const char *help, double value);

struct prom_histogram;
/* prom_writer_histogram: name_bucket{labels...,le="b"} (cumulative), name_sum, name_count of h
 * (read under its mutex); labels as for prom_writer_sample (without "le") */
void prom_writer_histogram(struct prom_writer *w, const char *name, const char *const *labels,
                           struct prom_histogram *h);

/* prom_writer_take: the text (owned by the caller) and its length, or NULL after an allocation
 * failure; the writer is left empty. */
char *prom_writer_take(struct prom_writer *w, size_t *len);

#endif
