/* probe_budget.c - a process-wide cap on probes in flight (see include/hostpatrol/probe_budget.h).
 */
#include "hostpatrol/probe_budget.h"

#include <pthread.h>
#include <string.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/ctx.h"

/* units kept after their probe ended, until release_ns */
struct parked {
    struct parked *next;
    size_t units;
    int64_t release_ns;
};

struct probe_budget {
    pthread_mutex_t mu; /* guards in_use, refused, parked */
    size_t limit, in_use, parked_units;
    uint64_t refused;
    struct parked *parked;
};

/* reclaim: give back the parked units whose time has come (under mu) */
static void reclaim(struct probe_budget *b)
{
    struct parked **pp = &b->parked;
    int64_t now = hp_now_ns();

    while (*pp) {
        struct parked *x = *pp;

        if (x->release_ns > now) {
            pp = &x->next;
            continue;
        }
        *pp = x->next;
        b->in_use = x->units > b->in_use ? 0 : b->in_use - x->units;
        b->parked_units -= x->units;
        hp_free(x);
    }
}

hp_rc probe_budget_new(size_t limit, struct probe_budget **out)
{
    struct probe_budget *b;

    *out = NULL;
    if (!limit)
        return HP_ERR_INVALID;
    b = hp_calloc(1, sizeof(*b));
    if (!b)
        return HP_ERR_NOMEM;
    pthread_mutex_init(&b->mu, NULL);
    b->limit = limit;
    *out = b;
    return HP_OK;
}

void probe_budget_free(struct probe_budget *b)
{
    if (!b)
        return;
    while (b->parked) {
        struct parked *x = b->parked;

        b->parked = x->next;
        hp_free(x);
    }
    pthread_mutex_destroy(&b->mu);
    hp_free(b);
}

size_t probe_budget_take(struct probe_budget *b, size_t units)
{
    size_t got = 0;

    if (!b)
        return units;
    if (units > b->limit)
        units = b->limit;
    pthread_mutex_lock(&b->mu);
    reclaim(b);
    if (b->limit - b->in_use >= units) {
        b->in_use += units;
        got = units;
    } else {
        b->refused++;
    }
    pthread_mutex_unlock(&b->mu);
    return got;
}

void probe_budget_give(struct probe_budget *b, size_t units)
{
    if (!b || !units)
        return;
    pthread_mutex_lock(&b->mu);
    b->in_use = units > b->in_use ? 0 : b->in_use - units;
    pthread_mutex_unlock(&b->mu);
}

void probe_budget_park(struct probe_budget *b, size_t units, int64_t ms)
{
    struct parked *x;

    if (!b || !units)
        return;
    x = hp_calloc(1, sizeof(*x));
    if (!x) { /* cannot remember them: given back now */
        probe_budget_give(b, units);
        return;
    }
    x->units = units;
    x->release_ns = hp_now_ns() + ms * 1000000;
    pthread_mutex_lock(&b->mu);
    x->next = b->parked;
    b->parked = x;
    b->parked_units += units;
    pthread_mutex_unlock(&b->mu);
}

void probe_budget_stats(struct probe_budget *b, struct probe_budget_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    reclaim(b);
    out->limit = b->limit;
    out->in_use = b->in_use;
    out->parked = b->parked_units;
    out->refused = b->refused;
    pthread_mutex_unlock(&b->mu);
}
