/* batch_group.c - one run's writes through the batch queue with one outcome (see
 * include/hostpatrol/batch_group.h). */
#include "hostpatrol/batch_group.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hostpatrol/alloc.h"

/* What the queue's callbacks update: shared by the group and its records' callbacks, freed by
 * the last reference. mu guards every field. */
struct group_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned refs;
    size_t pending; /* records whose done callback has not run */
    struct batch_group_outcome o;
    bool failed;
    char unresolved[64]; /* the first batch the queue reported in resolution */
    batch_group_final_fn final;
    void *final_arg;
};

struct batch_group {
    struct batch_queue *q; /* borrowed */
    struct batch_write *w; /* keys and values of w[taken..n) owned; the queue took the others */
    size_t n, cap, taken;
    struct group_wait *wait;
    bool committed;
};

static void wait_unref(struct group_wait *w)
{
    bool last;

    pthread_mutex_lock(&w->mu);
    last = --w->refs == 0;
    pthread_mutex_unlock(&w->mu);
    if (last) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        hp_free(w);
    }
}

/* on_unresolved: rule R1b; remembers the first batch named */
static void on_unresolved(void *arg, const char *batch_id)
{
    struct group_wait *w = arg;

    pthread_mutex_lock(&w->mu);
    if (!w->unresolved[0])
        snprintf(w->unresolved, sizeof(w->unresolved), "%s", batch_id);
    pthread_mutex_unlock(&w->mu);
}

static void on_done(void *arg, const struct batch_result *res)
{
    struct group_wait *w = arg;
    batch_group_final_fn fn = NULL;
    struct batch_group_outcome o;

    pthread_mutex_lock(&w->mu);
    if (res->outcome == BATCH_COMMITTED) {
        w->o.committed++;
        if (!w->failed && res->revision > w->o.revision) {
            w->o.revision = res->revision;
            snprintf(w->o.batch, sizeof(w->o.batch), "%s", res->batch_id);
        }
    } else if (!w->failed) {
        w->failed = true;
        w->o.outcome = res->outcome;
        w->o.rc = res->rc ? res->rc : HP_ERR_UNKNOWN_OUTCOME;
        w->o.revision = 0;
        snprintf(w->o.batch, sizeof(w->o.batch), "%s", res->batch_id ? res->batch_id : "");
        snprintf(w->o.reason, sizeof(w->o.reason), "%s", res->reason ? res->reason : "");
    }
    if (!--w->pending && w->final) {
        fn = w->final;
        w->final = NULL;
        o = w->o;
    }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (fn)
        fn(w->final_arg, &o);
    wait_unref(w);
}

hp_rc batch_group_new(struct batch_queue *q, struct batch_group **out)
{
    struct batch_group *g = hp_calloc(1, sizeof(*g));
    struct group_wait *w = hp_calloc(1, sizeof(*w));
    pthread_condattr_t ca;

    *out = NULL;
    if (!g || !w) {
        hp_free(g);
        hp_free(w);
        return HP_ERR_NOMEM;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->refs = 1;
    w->o.outcome = BATCH_COMMITTED;
    g->q = q;
    g->wait = w;
    *out = g;
    return HP_OK;
}

hp_rc batch_group_add(struct batch_group *g, char *key, char *value)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        struct batch_write *nw = hp_realloc(g->w, cap * sizeof(*nw));

        if (!nw)
            goto nomem;
        g->w = nw;
        g->cap = cap;
    }
    g->w[g->n++] = (struct batch_write){.key = key,
                                        .key_len = strlen(key),
                                        .value = value,
                                        .value_len = value ? strlen(value) : 0,
                                        .is_delete = value == NULL};
    return HP_OK;
nomem:
    hp_free(key);
    hp_free(value);
    return HP_ERR_NOMEM;
}

size_t batch_group_len(const struct batch_group *g)
{
    return g->n;
}

hp_rc batch_group_commit(struct batch_group *g, struct hp_ctx *ctx, const char *run_id,
                         int64_t slack_ms, struct batch_group_outcome *out, struct hp_err *err)
{
    struct group_wait *w = g->wait;
    size_t per = batch_queue_max_writes(g->q), k = (g->n + per - 1) / per, made = 0;
    struct batch_done_cb cb = {on_done, on_unresolved, w};
    int64_t deadline_ns = hp_ctx_deadline_ns(ctx);
    struct timespec until;
    hp_rc rc = HP_OK;

    memset(out, 0, sizeof(*out));
    if (g->committed)
        return hp_err_set(err, HP_ERR_INVALID, "a batch group is committed once");
    g->committed = true;
    if (g->n) {
        /* all records or none (a refusal midway would leave the first ones to commit after
         * the run reported failure); the queue takes the keys and values: no copy on their way
         * to the txn */
        pthread_mutex_lock(&w->mu);
        w->refs += k;
        w->pending += k;
        pthread_mutex_unlock(&w->mu);
        rc = batch_queue_enqueue_all(g->q, ctx, run_id, g->w, g->n, &cb, &made, err);
        if (!rc)
            g->taken = g->n;
        pthread_mutex_lock(&w->mu);
        w->refs -= k - made;
        w->pending -= k - made;
        w->o.records = made;
        pthread_mutex_unlock(&w->mu);
    }
    batch_queue_flush(g->q);
    if (deadline_ns == INT64_MAX)
        deadline_ns = hp_now_ns() + 60LL * 1000000000;
    deadline_ns += slack_ms * 1000000;
    pthread_mutex_lock(&w->mu);
    /* in slices, so a cancel (a shutdown past its drain) ends the wait too */
    while (w->pending && hp_ctx_err(ctx) != HP_ERR_CANCELED && hp_now_ns() < deadline_ns) {
        int64_t slice = hp_now_ns() + 100 * 1000000LL;

        if (slice > deadline_ns)
            slice = deadline_ns;
        until.tv_sec = slice / 1000000000;
        until.tv_nsec = slice % 1000000000;
        pthread_cond_timedwait(&w->cv, &w->mu, &until);
    }
    if (!rc) {
        *out = w->o;
        out->unfinished = w->pending;
        if (w->pending && !w->failed) {
            out->outcome = BATCH_UNRESOLVED;
            out->rc = HP_ERR_UNKNOWN_OUTCOME;
            out->revision = 0;
            snprintf(out->batch, sizeof(out->batch), "%s", w->unresolved);
            snprintf(out->reason, sizeof(out->reason), "%s",
                     w->unresolved[0] ? "not final by the deadline: the batch queue keeps "
                                        "resolving it"
                                      : "not sent by the deadline");
        }
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void batch_group_on_final(struct batch_group *g, batch_group_final_fn fn, void *arg)
{
    struct group_wait *w = g->wait;
    struct batch_group_outcome o;
    bool now;

    pthread_mutex_lock(&w->mu);
    now = !w->pending;
    if (now) {
        o = w->o;
    } else {
        w->final = fn;
        w->final_arg = arg;
    }
    pthread_mutex_unlock(&w->mu);
    if (now)
        fn(arg, &o);
}

void batch_group_free(struct batch_group *g)
{
    size_t i;

    if (!g)
        return;
    for (i = g->taken; i < g->n; i++) {
        hp_free((void *)(uintptr_t)g->w[i].key);
        hp_free((void *)(uintptr_t)g->w[i].value);
    }
    hp_free(g->w);
    wait_unref(g->wait);
    hp_free(g);
}
