/* check_result.c - the result of one check (see include/hostpatrol/check_result.h). */
#include "hostpatrol/check_result.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hostpatrol/alloc.h"

static const char *const status_names[] = {"OK", "WARN", "CRIT", "UNKNOWN"};

const char *check_status_name(enum check_status s)
{
    if ((unsigned)s >= sizeof(status_names) / sizeof(status_names[0]))
        return "UNKNOWN";
    return status_names[s];
}

hp_rc check_status_parse(const char *s, enum check_status *out)
{
    size_t i;

    for (i = 0; s && i < sizeof(status_names) / sizeof(status_names[0]); i++) {
        if (!strcmp(s, status_names[i])) {
            *out = (enum check_status)i;
            return HP_OK;
        }
    }
    return HP_ERR_INVALID;
}

hp_rc check_result_init(struct check_result *r, const char *check, const char *target,
                        enum check_kind kind)
{
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->status = CHECK_UNKNOWN;
    r->check = hp_strdup(check ? check : "");
    r->target = hp_strdup(target ? target : "-");
    r->reason = hp_strdup("not run");
    r->values = json_object();
    if (!r->check || !r->target || !r->reason || !r->values) {
        check_result_release(r);
        return HP_ERR_NOMEM;
    }
    return HP_OK;
}

void check_result_release(struct check_result *r)
{
    if (!r)
        return;
    hp_free(r->check);
    hp_free(r->target);
    hp_free(r->reason);
    json_decref(r->values);
    memset(r, 0, sizeof(*r));
}

char *check_result_trim_utf8(char *s)
{
    size_t len = strlen(s), start, need;
    unsigned char lead;

    if (!len)
        return s;
    start = len - 1;
    while (start > 0 && ((unsigned char)s[start] & 0xC0) == 0x80 && len - start < 4)
        start--;
    lead = (unsigned char)s[start];
    need = lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : 4;
    if (len - start < need || (lead & 0xC0) == 0x80)
        s[start] = '\0'; /* an incomplete (or stray) last sequence */
    return s;
}

hp_rc check_result_judge(struct check_result *r, enum check_status status, const char *fmt, ...)
{
    char buf[1024];
    char *copy;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    copy = hp_strdup(check_result_trim_utf8(buf));
    if (!copy)
        return HP_ERR_NOMEM;
    hp_free(r->reason);
    r->reason = copy;
    r->status = status;
    return HP_OK;
}

/* what one unit of the last digit is, per unit: values are rounded to 1 / unit_scale */
static const double unit_scale[] = {
    [CHECK_UNIT_MS] = 1000,
    [CHECK_UNIT_SECONDS] = 1000,
    [CHECK_UNIT_PERCENT] = 10,
    [CHECK_UNIT_LOAD] = 100,
};

#define SECS_PER_HUNDREDTH_DAY 864 /* 86400 / 100 */

double check_result_round(enum check_unit u, double x)
{
    double scale = (unsigned)u < sizeof(unit_scale) / sizeof(unit_scale[0]) ? unit_scale[u] : 1;
    double y = x * scale, frac;
    int64_t k;

    if (!(y > -1e15 && y < 1e15)) /* also NaN */
        return x;
    k = (int64_t)y; /* toward zero; y - k is exact below 2^52 */
    frac = y - (double)k;
    if (frac >= 0.5)
        k++;
    else if (frac <= -0.5)
        k--;
    return k ? (double)k / scale : 0.0; /* k / scale: the double nearest to the decimal */
}

static hp_rc set_value(struct check_result *r, const char *key, json_t *v)
{
    return v && !json_object_set_new(r->values, key, v) ? HP_OK : HP_ERR_NOMEM;
}

hp_rc check_result_set_real(struct check_result *r, const char *key, enum check_unit u, double x)
{
    return set_value(r, key, isfinite(x) ? json_real(check_result_round(u, x)) : json_null());
}

hp_rc check_result_set_days_left(struct check_result *r, const char *key, int64_t secs)
{
    int64_t k = secs / SECS_PER_HUNDREDTH_DAY;

    if (secs % SECS_PER_HUNDREDTH_DAY < 0)
        k--; /* down, not toward zero */
    return set_value(r, key, json_real(k ? (double)k / 100.0 : 0.0));
}

hp_rc check_result_set_int(struct check_result *r, const char *key, int64_t n)
{
    return set_value(r, key, json_integer((json_int_t)n));
}

json_t *check_result_to_json(const struct check_result *r, const char *source, const char *run_id)
{
    json_t *o = json_object();

    if (!o)
        return NULL;
    if (json_object_set_new(o, "check", json_string(r->check)) ||
        json_object_set_new(o, "target", json_string(r->target)) ||
        json_object_set_new(o, "kind", json_string(check_kind_name(r->kind))) ||
        json_object_set_new(o, "status", json_string(check_status_name(r->status))) ||
        json_object_set_new(o, "reason", json_string(r->reason ? r->reason : "")) ||
        (r->values ? json_object_set(o, "values", r->values)
                   : json_object_set_new(o, "values", json_object())) ||
        json_object_set_new(o, "observed_ms", json_integer(r->observed_ms)) ||
        json_object_set_new(o, "duration_ms", json_integer(r->duration_ms)) ||
        json_object_set_new(o, "source", json_string(source ? source : "")) ||
        json_object_set_new(o, "run", json_string(run_id ? run_id : ""))) {
        json_decref(o);
        return NULL;
    }
    return o;
}
