/* results_view.c - stored results as rows, printed or streamed (see
 * include/hostpatrol/results_view.h). */
#include "hostpatrol/results_view.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/check_result.h"
#include "hostpatrol/result_text.h"
#include "hostpatrol/results_store.h"
#include "hostpatrol/term_text.h"

#define RES_VALUES_MAX 80 /* the wide VALUES column is cut to this many characters */

/* One result as printed. Strings are borrowed from the row's parsed key or its object. */
struct res_row {
    struct results_store_key key; /* owned: the etcd key, parsed */
    json_t *obj;                  /* new reference: the parsed value; NULL when unreadable */
    const char *ns, *name, *check, *target;
    const char *kind, *status, *reason, *source;
    bool has_observed, has_duration;
    int64_t observed_ms, duration_ms;
    int64_t mod_revision;
    const char *run; /* the run that wrote it ("" when unknown) */
};

/* res_str: obj[field] when it is a string, else dflt (borrowed from obj) */
static const char *res_str(json_t *obj, const char *field, const char *dflt)
{
    const char *s = obj ? json_string_value(json_object_get(obj, field)) : NULL;

    return s ? s : dflt;
}

/* res_int: obj[field] when it is a number -> *v */
static bool res_int(json_t *obj, const char *field, int64_t *v)
{
    json_t *j = obj ? json_object_get(obj, field) : NULL;

    if (!json_is_number(j))
        return false;
    *v = json_is_integer(j) ? (int64_t)json_integer_value(j) : (int64_t)json_real_value(j);
    return true;
}

/* res_row_fill: kv's key (made with prefix) parsed and its value parsed into r. A key the
 * schema cannot split shows "?" for the parts it lacks; a value that is not a JSON object leaves
 * r->obj NULL ("?", "unreadable value"). */
static hp_rc res_row_fill(struct res_row *r, const struct etcd_kv *kv, const char *prefix)
{
    if (results_store_key_parse(prefix, kv->key, kv->key_len, &r->key, NULL) == HP_ERR_NOMEM)
        return HP_ERR_NOMEM;
    r->mod_revision = kv->mod_revision;
    r->run = "";
    r->ns = r->key.ns;
    r->name = r->key.name;
    r->check = r->key.check;
    r->target = r->key.target;
    r->obj = json_loadb(kv->value, kv->value_len, 0, NULL);
    if (r->obj && !json_is_object(r->obj)) {
        json_decref(r->obj);
        r->obj = NULL;
    }
    if (!r->obj) {
        r->kind = r->source = "-";
        r->status = "?";
        r->reason = "unreadable value";
        return HP_OK;
    }
    r->kind = res_str(r->obj, "kind", "-");
    r->status = res_str(r->obj, "status", "?");
    r->reason = res_str(r->obj, "reason", "");
    if (!r->reason[0])
        r->reason = "-";
    r->source = res_str(r->obj, "source", "-");
    r->has_observed = res_int(r->obj, "observed_ms", &r->observed_ms);
    r->has_duration = res_int(r->obj, "duration_ms", &r->duration_ms);
    r->run = res_str(r->obj, "run", "");
    return HP_OK;
}

/* res_row_cmp: order by namespace, name, check, target (qsort) */
static int res_row_cmp(const void *a, const void *b)
{
    const struct res_row *x = a, *y = b;
    int d;

    if ((d = strcmp(x->ns, y->ns)))
        return d;
    if ((d = strcmp(x->name, y->name)))
        return d;
    if ((d = strcmp(x->check, y->check)))
        return d;
    return strcmp(x->target, y->target);
}

/* res_age: now - observed as "12s", "5m", "2h", "3d" into buf */
static void res_age(const struct res_row *r, int64_t now_ms, char *buf, size_t n)
{
    int64_t s;

    if (!r->has_observed) {
        snprintf(buf, n, "-");
        return;
    }
    s = (now_ms - r->observed_ms) / 1000;
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(buf, n, "%" PRId64 "s", s);
    else if (s < 3600)
        snprintf(buf, n, "%" PRId64 "m", s / 60);
    else if (s < 86400)
        snprintf(buf, n, "%" PRId64 "h", s / 3600);
    else
        snprintf(buf, n, "%" PRId64 "d", s / 86400);
}

/* res_append: append s to buf (len used of n), silently stopping when full */
static void res_append(char *buf, size_t n, size_t *len, const char *s)
{
    size_t l = strlen(s);

    if (*len + 1 >= n)
        return;
    if (l > n - 1 - *len)
        l = n - 1 - *len;
    memcpy(buf + *len, s, l);
    *len += l;
    buf[*len] = '\0';
}

/* res_values: the values object as "k=v,k=v", cut to RES_VALUES_MAX characters (n must be
 * larger than RES_VALUES_MAX) */
static void res_values(const struct res_row *r, char *buf, size_t n)
{
    json_t *vals = r->obj ? json_object_get(r->obj, "values") : NULL, *v;
    char one[RES_VALUES_MAX + 8];
    const char *k;
    size_t len = 0, m;

    buf[0] = '\0';
    if (!json_is_object(vals) || !json_object_size(vals)) {
        res_append(buf, n, &len, "-");
        return;
    }
    json_object_foreach(vals, k, v)
    {
        if (len)
            res_append(buf, n, &len, ",");
        res_append(buf, n, &len, k);
        res_append(buf, n, &len, "=");
        if (json_is_string(v)) {
            res_append(buf, n, &len, json_string_value(v));
            continue;
        }
        m = json_dumpb(v, one, sizeof(one) - 1,
                       JSON_COMPACT | JSON_ENCODE_ANY | CHECK_RESULT_JSON_REALS);
        if (m > sizeof(one) - 1)
            m = sizeof(one) - 1; /* cut: longer than the column anyway */
        one[m] = '\0';
        res_append(buf, n, &len, one);
    }
    if (len > RES_VALUES_MAX)
        memcpy(buf + RES_VALUES_MAX - 3, "...", 4);
}

/* res_object: the stored object with namespace and name (a new reference; NULL: no memory) */
static json_t *res_object(const struct res_row *r)
{
    json_t *o = json_object();

    if (!o || json_object_set_new(o, "namespace", json_string(r->ns)) ||
        json_object_set_new(o, "name", json_string(r->name)) ||
        (r->obj ? json_object_update_missing(o, r->obj)
                : (json_object_set_new(o, "check", json_string(r->check)) ||
                   json_object_set_new(o, "target", json_string(r->target)) ||
                   json_object_set_new(o, "status", json_string("?")) ||
                   json_object_set_new(o, "reason", json_string("unreadable value"))))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* res_print_json: a JSON array of the stored objects, each with namespace and name */
static hp_rc res_print_json(const struct res_row *rows, size_t n, FILE *out)
{
    json_t *arr = json_array(), *o;
    hp_rc rc = HP_ERR_NOMEM;
    size_t i;

    if (!arr)
        goto out;
    for (i = 0; i < n; i++) {
        o = res_object(&rows[i]);
        if (!o || json_array_append_new(arr, o))
            goto out;
    }
    if (json_dumpf(arr, out, JSON_INDENT(2) | CHECK_RESULT_JSON_REALS))
        goto out;
    fputc('\n', out);
    rc = HP_OK;
out:
    json_decref(arr);
    return rc;
}

/* escaped: s escaped for the terminal into buf, which it returns */
static const char *escaped(const char *s, char *buf, size_t cap)
{
    term_text_escape(s, buf, cap);
    return buf;
}

/* The table's columns (VALUES and REASON, last, are not cells of this kind) */
enum { C_NS, C_NAME, C_CHECK, C_TARGET, C_STATUS, C_AGE, C_KIND, C_SOURCE, C_DUR, C_N };

/* row_cells: r's cells (borrowed from r, age and dur) */
static void row_cells(const struct res_row *r, const char *age, const char *dur,
                      const char *cell[C_N])
{
    cell[C_NS] = r->ns;
    cell[C_NAME] = r->name;
    cell[C_CHECK] = r->check;
    cell[C_TARGET] = r->target;
    cell[C_STATUS] = r->status;
    cell[C_AGE] = age;
    cell[C_KIND] = r->kind;
    cell[C_SOURCE] = r->source;
    cell[C_DUR] = dur;
}

/* res_print_table: the table (wide adds KIND, SOURCE, DURATION(ms), VALUES) */
static hp_rc res_print_table(const struct res_row *rows, size_t n, bool wide, FILE *out)
{
    static const char *const head[C_N] = {"NAMESPACE", "NAME", "CHECK",  "TARGET",      "STATUS",
                                          "AGE",       "KIND", "SOURCE", "DURATION(ms)"};
    struct timespec ts;
    int width[C_N], vw = 0;
    char(*age)[16] = NULL, (*dur)[24] = NULL, vals[RES_VALUES_MAX + 48];
    char esc[4096]; /* a cell escaped for the terminal */
    const char *cell[C_N];
    int64_t now_ms;
    size_t i, j, l;

    age = hp_calloc(n, sizeof(*age));
    dur = hp_calloc(n, sizeof(*dur));
    if (!age || !dur) {
        hp_free(age);
        hp_free(dur);
        return HP_ERR_NOMEM;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    for (j = 0; j < C_N; j++)
        width[j] = (int)strlen(head[j]);
    for (i = 0; i < n; i++) {
        res_age(&rows[i], now_ms, age[i], sizeof(age[i]));
        if (rows[i].has_duration)
            snprintf(dur[i], sizeof(dur[i]), "%" PRId64, rows[i].duration_ms);
        else
            snprintf(dur[i], sizeof(dur[i]), "-");
        row_cells(&rows[i], age[i], dur[i], cell);
        for (j = 0; j < C_N; j++) {
            l = term_text_escape(cell[j], esc, sizeof(esc));
            if (l > (size_t)width[j])
                width[j] = l > 200 ? 200 : (int)l;
        }
    }
    for (j = 0; j <= C_AGE; j++)
        fprintf(out, "%-*s   ", width[j], head[j]);
    if (wide)
        for (j = C_KIND; j < C_N; j++)
            fprintf(out, "%-*s   ", width[j], head[j]);
    if (wide) {
        for (i = 0, l = strlen("VALUES"); i < n; i++) {
            res_values(&rows[i], vals, sizeof(vals));
            if (term_text_escape(vals, esc, sizeof(esc)) > l)
                l = strlen(esc); /* what is printed: at most the buffer */
        }
        vw = (int)l;
        fprintf(out, "%-*s   ", vw, "VALUES");
    }
    fprintf(out, "REASON\n");
    for (i = 0; i < n; i++) {
        row_cells(&rows[i], age[i], dur[i], cell);
        /* names, targets, reasons and values come from resources' authors and probed hosts:
         * escaped for the terminal */
        for (j = 0; j <= C_AGE; j++)
            fprintf(out, "%-*s   ", width[j], escaped(cell[j], esc, sizeof(esc)));
        if (wide) {
            for (j = C_KIND; j < C_N; j++)
                fprintf(out, "%-*s   ", width[j], escaped(cell[j], esc, sizeof(esc)));
            res_values(&rows[i], vals, sizeof(vals));
            term_text_escape(vals, esc, sizeof(esc));
            fprintf(out, "%-*s   ", vw, esc);
        }
        term_text_escape(rows[i].reason, esc, sizeof(esc));
        fprintf(out, "%s\n", esc);
    }
    hp_free(age);
    hp_free(dur);
    return HP_OK;
}

/* res_rows_free: rows[0..n) and the array (NULL allowed) */
static void res_rows_free(struct res_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        results_store_key_release(&rows[i].key);
        json_decref(rows[i].obj);
    }
    hp_free(rows);
}

/* res_rows_of: resp's kvs as rows (*out owned: res_rows_free(*out, resp->n)) */
static hp_rc res_rows_of(const struct etcd_range_resp *resp, const char *prefix,
                         struct res_row **out)
{
    struct res_row *rows = hp_calloc(resp->n ? resp->n : 1, sizeof(*rows));
    hp_rc rc = HP_OK;
    size_t n;

    if (!rows)
        return HP_ERR_NOMEM;
    for (n = 0; n < resp->n && !rc; n++)
        rc = res_row_fill(&rows[n], &resp->kvs[n], prefix);
    if (rc) {
        res_rows_free(rows, n);
        return rc;
    }
    *out = rows;
    return HP_OK;
}

/* res_row_rev_cmp: order by the revision that wrote them, then by key (qsort): a run's
 * results stay together, in the order they landed */
static int res_row_rev_cmp(const void *a, const void *b)
{
    const struct res_row *x = a, *y = b;

    if (x->mod_revision != y->mod_revision)
        return x->mod_revision < y->mod_revision ? -1 : 1;
    return res_row_cmp(a, b);
}

#define RES_STATUS_MAX 4 /* CRIT, WARN, UNKNOWN, OK: the order a run's summary counts them in */
static const char *const res_status_names[RES_STATUS_MAX] = {"CRIT", "WARN", "UNKNOWN", "OK"};

/* res_color: the ANSI colour of a status (bold red, yellow, magenta, green), "" off a terminal */
static const char *res_color(const struct results_view_stream *st, const char *status)
{
    static const char *const color[RES_STATUS_MAX] = {"\033[1;31m", "\033[33m", "\033[35m",
                                                      "\033[32m"};

    if (!st->color)
        return "";
    for (int i = 0; i < RES_STATUS_MAX; i++)
        if (!strcmp(status, res_status_names[i]))
            return color[i];
    return "\033[1m";
}

static int res_widen(int *w, const char *s)
{
    int l = (int)strlen(s);

    if (l > *w)
        *w = l > 60 ? 60 : l;
    return *w;
}

/* res_stream_line: one result: time, namespace/name, check, target, status, what it measured
 * and why it is not OK. Every text came from a resource's author, a probed host or etcd:
 * escaped for the terminal. */
static hp_rc res_stream_line(struct results_view_stream *st, const struct res_row *r)
{
    char when[16] = "--:--:--", where[520], esc[1100], check[260], target[520], status[64];
    char measured[256], vals[RES_VALUES_MAX + 48];
    struct tm tm;
    time_t t;

    if (st->json) {
        json_t *o = res_object(r);

        if (!o || json_dumpf(o, st->out, JSON_COMPACT | CHECK_RESULT_JSON_REALS)) {
            json_decref(o);
            return HP_ERR_NOMEM;
        }
        json_decref(o);
        fputc('\n', st->out);
        return HP_OK;
    }
    t = (time_t)(r->observed_ms / 1000);
    if (r->has_observed && localtime_r(&t, &tm))
        strftime(when, sizeof(when), "%H:%M:%S", &tm);
    snprintf(esc, sizeof(esc), "%s/%s", r->ns, r->name);
    term_text_escape(esc, where, sizeof(where));
    term_text_escape(r->check, check, sizeof(check));
    term_text_escape(r->target, target, sizeof(target));
    term_text_escape(r->status, status, sizeof(status));
    result_text_values(r->obj, measured, sizeof(measured));
    fprintf(st->out, "%s  %-*s  %-*s  %-*s  %s%-7s%s", when, res_widen(&st->w_where, where), where,
            res_widen(&st->w_check, check), check, res_widen(&st->w_target, target), target,
            res_color(st, r->status), status, st->color ? "\033[0m" : "");
    if (measured[0])
        fprintf(st->out, "  %s", escaped(measured, esc, sizeof(esc)));
    if (strcmp(r->status, "OK") && strcmp(r->reason, "-"))
        fprintf(st->out, "%s%s", measured[0] ? "; " : "  ", escaped(r->reason, esc, sizeof(esc)));
    if (st->wide) {
        res_values(r, vals, sizeof(vals));
        fprintf(st->out, "  [%s]", escaped(vals, esc, sizeof(esc)));
    }
    fputc('\n', st->out);
    return HP_OK;
}

/* res_stream_run: the summary line of the results rows[0..n) of one run */
static void res_stream_run(struct results_view_stream *st, const struct res_row *rows, size_t n)
{
    int count[RES_STATUS_MAX + 1] = {0};
    char where[520], esc[1100], run[72], source[260];
    size_t i;
    int k;

    if (st->json)
        return;
    for (i = 0; i < n; i++) {
        for (k = 0; k < RES_STATUS_MAX && strcmp(rows[i].status, res_status_names[k]); k++)
            ;
        count[k]++;
    }
    snprintf(esc, sizeof(esc), "%s/%s", rows[0].ns, rows[0].name);
    term_text_escape(esc, where, sizeof(where));
    if (!term_text_escape(rows[0].run[0] ? rows[0].run : "-", run, sizeof(run)))
        snprintf(run, sizeof(run), "-");
    term_text_escape(rows[0].source, source, sizeof(source));
    fprintf(st->out, "%s%*s  %-*s  run %s by %s: %zu result%s", st->color ? "\033[2m" : "", 8, "",
            res_widen(&st->w_where, where), where, run, source, n, n == 1 ? "" : "s");
    for (k = 0; k <= RES_STATUS_MAX; k++)
        if (count[k])
            fprintf(st->out, ", %d %s", count[k],
                    k < RES_STATUS_MAX ? res_status_names[k] : "other");
    fprintf(st->out, "%s\n", st->color ? "\033[0m" : "");
}

/* res_stream_rows: rows (sorted by revision) as lines, each run's results followed by their
 * summary (a run is the results one writer committed with the same run id) */
static hp_rc res_stream_rows(struct results_view_stream *st, const struct res_row *rows, size_t n)
{
    size_t i, first = 0;
    hp_rc rc;

    for (i = 0; i < n; i++) {
        rc = res_stream_line(st, &rows[i]);
        if (rc)
            return rc;
        if (i + 1 == n || strcmp(rows[i + 1].run, rows[first].run) ||
            strcmp(rows[i + 1].ns, rows[first].ns) || strcmp(rows[i + 1].name, rows[first].name)) {
            res_stream_run(st, rows + first, i + 1 - first);
            first = i + 1;
        }
    }
    return fflush(st->out) || ferror(st->out) ? HP_ERR_IO : HP_OK;
}

struct results_view {
    struct res_row *rows; /* owned, n of them */
    size_t n;
};

void results_view_stream_init(struct results_view_stream *st, FILE *out, bool json, bool wide,
                              bool color)
{
    *st = (struct results_view_stream){.out = out,
                                       .json = json,
                                       .wide = wide,
                                       .color = color,
                                       .w_where = 14,
                                       .w_check = 12,
                                       .w_target = 8};
}

hp_rc results_view_new(const struct etcd_range_resp *resp, const char *prefix,
                       struct results_view **out)
{
    struct results_view *v = hp_calloc(1, sizeof(*v));
    hp_rc rc;

    *out = NULL;
    if (!v)
        return HP_ERR_NOMEM;
    rc = res_rows_of(resp, prefix, &v->rows);
    if (rc) {
        hp_free(v);
        return rc;
    }
    v->n = resp->n;
    *out = v;
    return HP_OK;
}

void results_view_free(struct results_view *v)
{
    if (!v)
        return;
    res_rows_free(v->rows, v->n);
    hp_free(v);
}

size_t results_view_len(const struct results_view *v)
{
    return v->n;
}

hp_rc results_view_print(struct results_view *v, bool json, bool wide, FILE *out)
{
    qsort(v->rows, v->n, sizeof(*v->rows), res_row_cmp);
    return json ? res_print_json(v->rows, v->n, out) : res_print_table(v->rows, v->n, wide, out);
}

hp_rc results_view_stream(struct results_view *v, struct results_view_stream *st)
{
    qsort(v->rows, v->n, sizeof(*v->rows), res_row_rev_cmp);
    return res_stream_rows(st, v->rows, v->n);
}
