/* probe_budget.c - a process-wide cap on probes in flight (see include/hostpatrol/probe_budget.h).
 */
#include "hostpatrol/probe_budget.h"

#include <pthread.h>
#include <string.h>

#include "hostpatrol/alloc.h"

struct probe_budget {
    pthread_mutex_t mu; /* guards in_use and refused */
    size_t limit, in_use;
    uint64_t refused;
};

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

void probe_budget_stats(struct probe_budget *b, struct probe_budget_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    out->limit = b->limit;
    out->in_use = b->in_use;
    out->refused = b->refused;
    pthread_mutex_unlock(&b->mu);
}
