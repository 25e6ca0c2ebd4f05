/* duration.c - Go-style duration parsing (see include/hostpatrol/duration.h). */
#include "hostpatrol/duration.h"

#include <string.h>

struct unit {
    const char *name;
    int64_t ns;
};

static const struct unit units[] = {
    {"ns", 1},         {"us", 1000},         {"\xc2\xb5s", 1000},    {"ms", 1000000},
    {"s", 1000000000}, {"m", 60000000000LL}, {"h", 3600000000000LL},
};

hp_rc hp_duration_parse(const char *s, const char *field, int64_t *ms, struct hp_err *err)
{
    const char *p = s;
    int64_t total_ns = 0;

    *ms = 0;
    if (!s || !*s)
        return hp_err_field(err, HP_ERR_INVALID, field, "%s is empty: want a duration like 30s",
                            field);
    while (*p) {
        int64_t whole = 0, frac = 0, frac_div = 1, unit_ns = 0;
        size_t best = 0, i;
        int digits = 0;

        while (*p >= '0' && *p <= '9') {
            if (whole > (INT64_MAX - 9) / 10)
                goto bad;
            whole = whole * 10 + (*p++ - '0');
            digits++;
        }
        if (*p == '.') {
            p++;
            while (*p >= '0' && *p <= '9') {
                if (frac_div < 1000000000) {
                    frac = frac * 10 + (*p - '0');
                    frac_div *= 10;
                }
                p++;
                digits++;
            }
        }
        if (!digits)
            goto bad;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t n = strlen(units[i].name);

            /* longest match: "ms" before "m" */
            if (n > best && !strncmp(p, units[i].name, n)) {
                best = n;
                unit_ns = units[i].ns;
            }
        }
        if (!best)
            goto bad;
        p += best;
        if (whole > INT64_MAX / unit_ns)
            goto bad;
        whole *= unit_ns;
        frac = (int64_t)((__int128)frac * unit_ns / frac_div);
        if (total_ns > INT64_MAX - whole - frac)
            goto bad;
        total_ns += whole + frac;
    }
    *ms = total_ns / 1000000;
    return HP_OK;
bad:
    return hp_err_field(err, HP_ERR_INVALID, field,
                        "%s '%s' is not a duration (want e.g. 500ms, 30s, 5m, 1h30m)", field, s);
}
