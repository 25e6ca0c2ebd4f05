/* resolve_plan.c - see resolve_plan.h. */
#include "batch/resolve_plan.h"

#include <string.h>

int64_t resolve_budget_grow(int64_t cur, int64_t used, int64_t max)
{
    int64_t next = used > INT64_MAX / 2 ? INT64_MAX : used * 2;

    if (next < cur)
        next = cur;
    return next > max ? max : next;
}

int resolve_attempts_to_reach(int64_t base, int64_t max, int64_t t_ms)
{
    int64_t b = base;
    int n = 0;

    if (t_ms > max)
        return -1;
    while (b < t_ms) {
        b = resolve_budget_grow(b, b, max);
        n++;
    }
    return n;
}

int64_t resolve_bound_ms(int64_t base, int64_t max, int64_t backoff_max, int64_t t_ms)
{
    int64_t b = base, grow = 0;
    int n = resolve_attempts_to_reach(base, max, t_ms);

    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        grow += b + backoff_max;
        b = resolve_budget_grow(b, b, max);
    }
    return 2 * RESOLVE_ROUND_TRIPS * t_ms + grow;
}

static int same_key(const struct batch_write *a, const struct batch_write *b)
{
    return a->key_len == b->key_len && !memcmp(a->key, b->key, a->key_len);
}

/* overlaps: does candidate x share a key with any chosen candidate before it? */
static int overlaps(const struct resolve_keys *c, size_t x, const unsigned char *chosen)
{
    for (size_t j = 0; j < x; j++) {
        if (!chosen[j])
            continue;
        for (size_t k = 0; k < c[x].n; k++)
            for (size_t l = 0; l < c[j].n; l++)
                if (same_key(c[x].ops[k], c[j].ops[l]))
                    return 1;
    }
    return 0;
}

size_t resolve_pick_disjoint(const struct resolve_keys *c, size_t n, size_t max_group,
                             size_t max_keys, unsigned char *chosen)
{
    size_t picked = 0, keys = 0;

    for (size_t i = 0; i < n; i++) {
        chosen[i] = 0;
        if (picked && (picked >= max_group || keys + c[i].n > max_keys || overlaps(c, i, chosen)))
            continue;
        chosen[i] = 1;
        picked++;
        keys += c[i].n;
    }
    return picked;
}
