/* probe_budget.c - a process-wide cap on probes in flight, with a share per owner (see
 * include/hostpatrol/probe_budget.h). */
#include "hostpatrol/probe_budget.h"

#include <pthread.h>
#include <string.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/prom_writer.h"

/* what one owner (a namespace) holds; dropped when it holds nothing */
struct owner {
    struct owner *next;
    size_t in_use;
    char name[];
};

/* units kept after their probe ended, until release_ns */
struct parked {
    struct parked *next;
    size_t units;
    int64_t release_ns;
    char owner[];
};

struct probe_budget {
    pthread_mutex_t mu; /* guards everything below limit and owner_limit */
    size_t limit, owner_limit;
    size_t in_use, parked_units; /* in_use includes parked_units */
    uint64_t refused;
    struct owner *owners;
    struct parked *parked;
};

hp_rc probe_budget_new(size_t limit, size_t owner_limit, struct probe_budget **out)
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
    b->owner_limit = owner_limit && owner_limit < limit ? owner_limit : limit;
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
    while (b->owners) {
        struct owner *o = b->owners;

        b->owners = o->next;
        hp_free(o);
    }
    pthread_mutex_destroy(&b->mu);
    hp_free(b);
}

/* owner_of: the entry of name (under mu); create: make it when missing (NULL if no memory) */
static struct owner *owner_of(struct probe_budget *b, const char *name, bool create)
{
    struct owner *o;
    size_t n = strlen(name);

    for (o = b->owners; o; o = o->next)
        if (!strcmp(o->name, name))
            return o;
    if (!create || !(o = hp_calloc(1, sizeof(*o) + n + 1)))
        return NULL;
    memcpy(o->name, name, n + 1);
    o->next = b->owners;
    b->owners = o;
    return o;
}

/* release: units of owner come back (under mu) */
static void release(struct probe_budget *b, const char *owner, size_t units)
{
    struct owner *o = owner_of(b, owner, false), **pp;

    b->in_use = units > b->in_use ? 0 : b->in_use - units;
    if (!o)
        return;
    o->in_use = units > o->in_use ? 0 : o->in_use - units;
    if (o->in_use)
        return;
    for (pp = &b->owners; *pp != o; pp = &(*pp)->next)
        ;
    *pp = o->next;
    hp_free(o);
}

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
        b->parked_units -= x->units;
        release(b, x->owner, x->units);
        hp_free(x);
    }
}

size_t probe_budget_take(struct probe_budget *b, const char *owner, size_t units, bool *owner_full)
{
    struct owner *o;
    size_t got = 0;

    if (owner_full)
        *owner_full = false;
    if (!b)
        return units;
    if (!owner)
        owner = "";
    if (units > b->owner_limit)
        units = b->owner_limit;
    pthread_mutex_lock(&b->mu);
    reclaim(b);
    o = owner_of(b, owner, true);
    if (!o) {
        b->refused++;
    } else if (o->in_use + units > b->owner_limit) {
        b->refused++;
        if (owner_full)
            *owner_full = true;
    } else if (b->limit - b->in_use < units) {
        b->refused++;
    } else {
        b->in_use += units;
        o->in_use += units;
        got = units;
    }
    if (o && !o->in_use)
        release(b, owner, 0); /* nothing held: no entry */
    pthread_mutex_unlock(&b->mu);
    return got;
}

void probe_budget_give(struct probe_budget *b, const char *owner, size_t units)
{
    if (!b || !units)
        return;
    pthread_mutex_lock(&b->mu);
    release(b, owner ? owner : "", units);
    pthread_mutex_unlock(&b->mu);
}

void probe_budget_park(struct probe_budget *b, const char *owner, size_t units, int64_t ms)
{
    struct parked *x;
    size_t n;

    if (!b || !units)
        return;
    if (!owner)
        owner = "";
    n = strlen(owner);
    x = hp_calloc(1, sizeof(*x) + n + 1);
    if (!x) { /* cannot remember them: given back now */
        probe_budget_give(b, owner, units);
        return;
    }
    memcpy(x->owner, owner, n + 1);
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
    const struct owner *o;

    memset(out, 0, sizeof(*out));
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    reclaim(b);
    out->limit = b->limit;
    out->owner_limit = b->owner_limit;
    out->in_use = b->in_use;
    out->parked = b->parked_units;
    out->refused = b->refused;
    for (o = b->owners; o; o = o->next)
        out->owners++;
    pthread_mutex_unlock(&b->mu);
}

void probe_budget_metrics(struct probe_budget *b, struct prom_writer *w)
{
    struct probe_budget_stats pb;

    probe_budget_stats(b, &pb);
    prom_writer_gauge(
        w, "hostpatrol_probes_in_flight",
        "Units of the probe budget in use (a probe 1, an http probe with bodyRegex 16).",
        (double)pb.in_use);
    prom_writer_gauge(w, "hostpatrol_probes_in_flight_limit", "--max-probes-in-flight.",
                      (double)pb.limit);
    prom_writer_counter(w, "hostpatrol_probe_budget_waits_total",
                        "Times a run found the probe budget in use and waited.",
                        (double)pb.refused);
    prom_writer_gauge(
        w, "hostpatrol_probes_parked",
        "Units kept taken for name resolutions libcurl goes on with after their probe ended.",
        (double)pb.parked);
}
