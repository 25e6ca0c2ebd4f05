/* result_text.c - a stored result's measured values in words (result_text.h). */
#include "hostpatrol/result_text.h"

#include "hostpatrol/check_result.h"

#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* tenths: x to 0.1, half away from zero (the stored values' own rounding, check_result.h) */
static double tenths(double x)
{
    return check_result_round(CHECK_UNIT_PERCENT, x);
}

/* whole: x rounded down to an integer (days left: 89.7 is 89 whole days) */
static double whole(double x)
{
    double t;

    if (x > 9e15 || x < -9e15)
        return x;
    t = (double)(int64_t)x;

    return t > x ? t - 1 : t;
}

/* num: values[name] as a double when it is a number */
static bool num(const json_t *values, const char *name, double *out)
{
    const json_t *j = json_object_get(values, name);

    if (!json_is_number(j))
        return false;
    *out = json_number_value(j);
    return isfinite(*out);
}

static const char *str(const json_t *values, const char *name)
{
    return json_string_value(json_object_get(values, name));
}

/* text: an append-only buffer that stops (still NUL-terminated) when full */
struct text {
    char *buf;
    size_t cap, len;
};

__attribute__((format(printf, 2, 3))) static void add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->len + 1 >= t->cap)
        return;
    va_start(ap, fmt);
    n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len += (size_t)n < t->cap - t->len ? (size_t)n : t->cap - 1 - t->len;
}

void result_text_bytes(double bytes, char *buf, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    size_t u = 0;

    if (!isfinite(bytes) || bytes < 0)
        bytes = 0;
    while (bytes >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
        bytes /= 1024;
        u++;
    }
    /* 9.96 would print as "10.0": decide on the rounded value */
    if (u && tenths(bytes) < 10)
        snprintf(buf, cap, "%.1f %s", tenths(bytes), unit[u]);
    else
        snprintf(buf, cap, "%.0f %s", bytes, unit[u]);
}

void result_text_ms(double ms, char *buf, size_t cap)
{
    if (!isfinite(ms) || ms < 0)
        ms = 0;
    if (ms >= 100000)
        snprintf(buf, cap, "%.0f s", ms / 1000);
    else if (ms >= 1000)
        snprintf(buf, cap, "%.3g s", ms / 1000); /* 1.23 s, 12.3 s */
    else if (ms >= 9.95 || ms == 0)
        snprintf(buf, cap, "%.0f ms", ms);
    else
        snprintf(buf, cap, "%.2g ms", ms); /* 0.042, 0.42, 1.3 */
}

void result_text_percent(double pct, char *buf, size_t cap)
{
    double r = isfinite(pct) && pct < 9e15 && pct > -9e15 ? tenths(pct) : 0;

    if (r == (double)(int64_t)r)
        snprintf(buf, cap, "%.0f%%", r);
    else
        snprintf(buf, cap, "%.1f%%", r);
}

/* days: " , cert N days left" parts of a TLS answer */
static void tls_days(struct text *t, const json_t *v, const char *lead)
{
    double leaf, chain;

    if (num(v, "tls_leaf_days_left", &leaf)) {
        add(t, "%scert %.0f days left", lead, whole(leaf));
        if (num(v, "tls_chain_min_days_left", &chain))
            add(t, " (chain %.0f)", whole(chain));
    }
}

static void http_text(struct text *t, const json_t *v)
{
    double code, ms;
    char m[32];

    if (!num(v, "status_code", &code))
        return;
    add(t, "%.0f", code);
    if (num(v, "total_ms", &ms)) {
        result_text_ms(ms, m, sizeof(m));
        add(t, " in %s", m);
    }
    tls_days(t, v, ", ");
}

static void tcp_text(struct text *t, const json_t *v)
{
    double ms;
    char m[32];

    if (num(v, "connect_ms", &ms)) { /* a refused connect has only total_ms */
        result_text_ms(ms, m, sizeof(m));
        add(t, "connected in %s", m);
    }
}

static void tls_text(struct text *t, const json_t *v)
{
    const char *ver = str(v, "tls_version");

    if (ver)
        add(t, "%s", ver);
    tls_days(t, v, ver ? ", " : "");
}

static void dns_text(struct text *t, const json_t *v)
{
    const json_t *a = json_object_get(v, "addresses");
    double ms;
    char m[32];

    if (json_is_array(a)) {
        size_t n = json_array_size(a);

        add(t, "%zu address%s", n, n == 1 ? "" : "es");
    }
    if (num(v, "resolve_ms", &ms)) {
        result_text_ms(ms, m, sizeof(m));
        add(t, "%sin %s", t->len ? " " : "resolved ", m);
    }
}

static void disk_text(struct text *t, const json_t *v)
{
    double pct, size, total;
    char p[32], b[32];

    if (num(v, "used_percent", &pct)) {
        result_text_percent(pct, p, sizeof(p));
        add(t, "%s used", p);
        if (num(v, "size_bytes", &size)) {
            result_text_bytes(size, b, sizeof(b));
            add(t, " of %s", b);
        }
    } else if (num(v, "inodes_used_percent", &pct)) {
        result_text_percent(pct, p, sizeof(p));
        add(t, "%s of inodes used", p);
        if (num(v, "inodes_total", &total))
            add(t, " (%.0f)", total);
    }
}

static void load_text(struct text *t, const json_t *v)
{
    double per, l1, l5, l15, cpus, win;

    if (!num(v, "load_per_cpu", &per))
        return;
    add(t, "%.2f per CPU", per);
    if (num(v, "load_per_cpu_minutes", &win))
        add(t, " over %.0f min", win);
    if (num(v, "load1", &l1) && num(v, "load5", &l5) && num(v, "load15", &l15) &&
        num(v, "cpus", &cpus))
        add(t, " (load %.2f %.2f %.2f, %.0f CPU%s)", l1, l5, l15, cpus, cpus == 1 ? "" : "s");
}

static void memory_text(struct text *t, const json_t *v)
{
    double pct, total;
    char p[32], b[32];

    if (!num(v, "mem_available_percent", &pct))
        return;
    result_text_percent(pct, p, sizeof(p));
    add(t, "%s available", p);
    if (num(v, "mem_total_bytes", &total)) {
        result_text_bytes(total, b, sizeof(b));
        add(t, " of %s", b);
    }
}

static void process_text(struct text *t, const json_t *v)
{
    double n;

    if (num(v, "count", &n))
        add(t, n ? "%.0f running" : "none running", n);
}

static void file_text(struct text *t, const json_t *v)
{
    const json_t *ex = json_object_get(v, "exists");
    double size, age;
    char b[32];

    if (json_is_false(ex)) {
        add(t, "missing");
        return;
    }
    if (!json_is_true(ex))
        return;
    add(t, "present");
    if (num(v, "size_bytes", &size)) {
        result_text_bytes(size, b, sizeof(b));
        add(t, ", %s", b);
    }
    if (num(v, "age_seconds", &age)) {
        if (age < 120)
            add(t, ", %.0f s old", age);
        else if (age < 7200)
            add(t, ", %.0f min old", age / 60);
        else if (age < 172800)
            add(t, ", %.0f h old", age / 3600);
        else
            add(t, ", %.0f days old", age / 86400);
    }
}

static void condition_text(struct text *t, const json_t *v)
{
    const char *s = str(v, "condition_status");

    if (s)
        add(t, "condition %s", s);
}

void result_text_values(const json_t *result, char *buf, size_t cap)
{
    static const struct {
        const char *kind;
        void (*fn)(struct text *, const json_t *);
    } kinds[] = {{"http", http_text},     {"tcp", tcp_text},
                 {"tls", tls_text},       {"dns", dns_text},
                 {"disk", disk_text},     {"load", load_text},
                 {"memory", memory_text}, {"process", process_text},
                 {"file", file_text},     {"nodeCondition", condition_text}};
    struct text t = {.buf = buf, .cap = cap};
    const char *kind = json_string_value(json_object_get(result, "kind"));
    const json_t *values = json_object_get(result, "values");

    buf[0] = '\0';
    if (!kind || !json_is_object(values))
        return;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (!strcmp(kind, kinds[i].kind)) {
            kinds[i].fn(&t, values);
            return;
        }
}
