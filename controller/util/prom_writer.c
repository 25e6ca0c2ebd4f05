/* prom_writer.c - Prometheus text format (see include/hostpatrol/prom_writer.h). */
#include "hostpatrol/prom_writer.h"

#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/prom_histogram.h"
#include "hostpatrol/rc.h"

void prom_writer_init(struct prom_writer *w)
{
    hp_buf_init(&w->text, 0);
}

void prom_writer_release(struct prom_writer *w)
{
    if (!w)
        return;
    hp_buf_release(&w->text);
}

static void add(struct prom_writer *w, const char *fmt, ...) HP_PRINTF(2, 3);
static void add(struct prom_writer *w, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    hp_buf_vaddf(&w->text, fmt, ap); /* a failure sticks: prom_writer_take reports it */
    va_end(ap);
}

void prom_writer_family(struct prom_writer *w, const char *name, const char *type, const char *help)
{
    add(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void label_value(struct prom_writer *w, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            add(w, "\\\\");
        else if (*v == '"')
            add(w, "\\\"");
        else if (*v == '\n')
            add(w, "\\n");
        else
            add(w, "%c", *v);
    }
}

void prom_writer_sample(struct prom_writer *w, const char *name, const char *const *labels,
                        double value)
{
    size_t i;

    add(w, "%s", name);
    for (i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
        add(w, "%s%s=\"", i ? "," : "{", labels[i]);
        label_value(w, labels[i + 1]);
        add(w, "\"");
    }
    if (labels && labels[0])
        add(w, "}");
    if (isnan(value))
        add(w, " NaN\n");
    else if (isinf(value))
        add(w, " %s\n", value > 0 ? "+Inf" : "-Inf");
    else if (value == (double)(long long)value && value < 9e15 && value > -9e15)
        add(w, " %lld\n", (long long)value);
    else
        add(w, " %.17g\n", value);
}

void prom_writer_counter(struct prom_writer *w, const char *name, const char *help, double value)
{
    prom_writer_family(w, name, "counter", help);
    prom_writer_sample(w, name, NULL, value);
}

void prom_writer_gauge(struct prom_writer *w, const char *name, const char *help, double value)
{
    prom_writer_family(w, name, "gauge", help);
    prom_writer_sample(w, name, NULL, value);
}

void prom_writer_histogram(struct prom_writer *w, const char *name, const char *const *labels,
                           struct prom_histogram *h)
{
    const char *lv[2 * 8 + 3];
    struct prom_histogram snap;
    char bucket[128], le[32], sum[128], count[128];
    uint64_t cum = 0;
    size_t i, n = 0;

    prom_histogram_copy(h, &snap);
    for (i = 0; labels && labels[i] && labels[i + 1] && n < 2 * 8; i += 2) {
        lv[n++] = labels[i];
        lv[n++] = labels[i + 1];
    }
    lv[n] = "le";
    lv[n + 1] = le;
    lv[n + 2] = NULL;
    snprintf(bucket, sizeof(bucket), "%s_bucket", name);
    snprintf(sum, sizeof(sum), "%s_sum", name);
    snprintf(count, sizeof(count), "%s_count", name);
    for (i = 0; i <= snap.n; i++) {
        cum += snap.counts[i];
        if (i < snap.n)
            snprintf(le, sizeof(le), "%g", snap.bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        prom_writer_sample(w, bucket, lv, (double)cum);
    }
    lv[n] = NULL;
    prom_writer_sample(w, sum, n ? lv : NULL, snap.sum);
    prom_writer_sample(w, count, n ? lv : NULL, (double)snap.count);
}

char *prom_writer_take(struct prom_writer *w, size_t *len)
{
    return hp_buf_detach(&w->text, len); /* nothing written: an empty text */
}
