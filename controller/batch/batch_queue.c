/* batch_queue.c - the transactional batch queue (see include/hostpatrol/batch_queue.h and
 * docs/etcd-sync.md for the algorithm and its proof sketch). */
#include "hostpatrol/batch_queue.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "batch/batch_journal.h"
#include "batch/resolve_plan.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/b64.h"
#include "hostpatrol/etcd_txn.h"
#include "hostpatrol/prom_histogram.h"
#include "hostpatrol/prom_writer.h"

#define MAX_WINDOW     1024
#define FENCE_OVERHEAD 512 /* JSON bytes of the fence op, compares and failure ranges */
/* Resolver threads: each resolves one GROUP of timed-out batches at a time (a round of at most
 * 4 round trips for up to max_txn_ops - 1 batches); several run at once so a slow link does not
 * serialise every resolution. Concurrent epoch bumps are safe: a CAS that loses to our own
 * earlier bump recognises it by the instance tag. */
#define RESOLVERS 16
/* senders beyond max_inflight: a sender runs its batch's callbacks after the txn slot is free
 * again, and the next batch, admitted at once, should not wait for them */
#define SPARE_SENDERS          2
#define RESOLVE_BACKOFF_MAX_MS 2000 /* between rounds of a batch after a quick refusal */
#define OP_OVERHEAD            48   /* {"request_put":{"key":"","value":""}} and a comma */

struct record {
    struct record *next;
    struct hp_ctx *ctx;    /* owned reference */
    char *run_id;          /* owned, may be NULL */
    struct batch_write *w; /* owned array; keys/values owned copies */
    size_t n;
    bool packed;   /* run_id, w and its keys and values live in this record's own allocation (an
                    * enqueued record: one malloc, not 2 + 2 per write) */
    bool inline_w; /* run_id and w (not the keys and values) live in it (record_owning) */
    size_t bytes;
    batch_done_fn done;
    batch_unresolved_fn unresolved; /* may be NULL */
    void *arg;
};

/* a key's value before a late-applied batch, for its undo */
struct prev_val {
    char *value; /* owned; NULL when !exists */
    size_t len;
    int exists;
};

struct batch {
    struct batch *next;
    char id[64];
    struct record *records; /* owned list */
    size_t n_records;
    const struct batch_write **ops; /* coalesced, one per distinct key; borrowed from records */
    size_t n_ops;
    int64_t deadline_ns; /* earliest record deadline */
    int64_t epoch;       /* the epoch revision the txn was (last) sent with */
    char *fence_key;
    size_t fence_len;
    int journaled;
    int64_t first_sent_ns; /* first send attempt (bounds how long its fence is trustworthy) */
    int64_t retry_at_ns;   /* resolver backoff */
    int64_t backoff_ms;
    /* what resolution learned, kept across rounds (see the resolver section) */
    int64_t fence_rev;     /* > 0: its fence read 'committed' at this revision: applied late */
    struct prev_val *prev; /* owned, n_ops entries: the values before it (at fence_rev - 1) */
    int final;             /* resolved: outcome, final_rev, reason hold the result */
    enum batch_outcome outcome;
    int64_t final_rev;
    char reason[192];
};

struct batch_queue {
    struct etcd_client *etcd; /* borrowed */
    struct batch_config cfg;  /* numbers; strings below */
    char *prefix, *writer, *epoch_key, *fence_prefix, *state_dir;
    size_t epoch_key_len;
    char instance[24];

    pthread_mutex_t lock;        /* guards everything below */
    pthread_cond_t wake;         /* the flusher waits here: records it waits for (see
                                  * flusher_waits), a txn slot, close, stop */
    pthread_cond_t drained;      /* batch_queue_close waits here: outstanding reached 0 (a
                                  * broadcast per completion while closing woke the closer and
                                  * the flusher per txn: 37% of a bench run's context switches) */
    pthread_cond_t send_wake;    /* the senders wait here: a batch to send, stop */
    pthread_cond_t resolve_wake; /* the resolvers wait here: a batch to resolve, stop (16 of
                                  * them woken by every completion took the lock in turn) */
    enum flusher_wait {
        FW_NONE,     /* working */
        FW_RECORDS,  /* for a first record */
        FW_LINGER,   /* for the oldest record's linger, or enough records to fill a batch */
        FW_OTHER     /* for a txn slot, or memory */
    } flusher_waits; /* what a record given now must wake the flusher for (a broadcast on every
                      * record woke every thread of the queue: 30% of the client's CPU) */
    struct record *pend_head, *pend_tail;
    size_t pending, pending_bytes, pending_ops;
    int64_t oldest_ns;
    int flush_req;
    struct batch *send_head, *send_tail;
    struct batch *resolve_head;
    unsigned inflight; /* batches admitted by the limiter and not finished */
    double limit;
    int64_t lat[MAX_WINDOW];
    unsigned lat_n;
    int64_t epoch;
    uint64_t epoch_seq;
    int fenced;
    int64_t lease, lease_ns, lease_try_ns;
    int closing, stopping;
    struct hp_ctx *stop; /* owned; parent of every call the queue's threads make; cancelled by
                          * batch_queue_free (not under the lock: its state is its own) */
    int64_t budget_ms;   /* one resolution step's time budget now (resolve_budget_grow) */
    int64_t step_ns;     /* how long a successful resolution step takes (moving average) */
    int64_t round_ns;    /* when the last round started */
    uint64_t seq;
    size_t outstanding; /* accepted records whose callback has not run */
    struct batch_stats st;
    struct prom_histogram txn_seconds, batch_ops; /* own locks */

    pthread_t flusher, *resolvers, *senders;
    unsigned n_senders, n_resolvers;
    int threads_started;
};

const char *batch_outcome_name(enum batch_outcome o)
{
    switch (o) {
    case BATCH_COMMITTED:
        return "committed";
    case BATCH_FAILED:
        return "failed";
    case BATCH_ROLLED_BACK:
        return "rolled_back";
    case BATCH_UNRESOLVED:
        return "unresolved";
    }
    return "unknown";
}

/* ---- records and batches ---- */

static void record_free(struct record *r)
{
    size_t i;

    if (!r)
        return;
    for (i = 0; !r->packed && i < r->n; i++) {
        hp_free((void *)r->w[i].key);
        hp_free((void *)r->w[i].value);
    }
    if (!r->packed && !r->inline_w) {
        hp_free(r->w);
        hp_free(r->run_id);
    }
    hp_ctx_free(r->ctx);
    hp_free(r);
}

static void prev_free(struct prev_val *p, size_t n)
{
    if (!p)
        return;
    for (size_t i = 0; i < n; i++)
        hp_free(p[i].value);
    hp_free(p);
}

static void batch_free(struct batch *b)
{
    struct record *r, *next;

    if (!b)
        return;
    for (r = b->records; r; r = next) {
        next = r->next;
        record_free(r);
    }
    prev_free(b->prev, b->n_ops);
    hp_free(b->ops);
    hp_free(b->fence_key);
    hp_free(b);
}

/* complete: call every record's callback with the outcome, free the batch. Caller does NOT
 * hold q->lock. */
static void complete(struct batch_queue *q, struct batch *b, enum batch_outcome o, int64_t rev,
                     hp_rc rc, const char *reason)
{
    struct batch_result res = {.outcome = o,
                               .revision = o == BATCH_COMMITTED ? rev : 0,
                               .rc = o == BATCH_COMMITTED ? HP_OK : rc,
                               .reason = reason,
                               .batch_id = b->id,
                               .batch_records = b->n_records};
    struct record *r;
    size_t n = 0;

    for (r = b->records; r; r = r->next)
        res.batch_writes += r->n;
    for (r = b->records; r; r = r->next, n++)
        r->done(r->arg, &res);
    if (b->journaled && q->state_dir)
        batch_journal_remove(q->state_dir, q->writer, b->id);
    pthread_mutex_lock(&q->lock);
    q->outstanding -= n;
    if (o == BATCH_COMMITTED)
        q->st.committed++;
    else if (o == BATCH_FAILED)
        q->st.failed++;
    else if (o == BATCH_ROLLED_BACK)
        q->st.rolled_back++;
    if (rc == HP_ERR_FENCED)
        q->st.fenced++;
    if (q->closing && !q->outstanding) /* batch_queue_close waits for this; nothing else does */
        pthread_cond_broadcast(&q->drained);
    pthread_mutex_unlock(&q->lock);
    batch_free(b);
}

/* fail_record: complete one record that never joined a batch. */
static void fail_record(struct batch_queue *q, struct record *r, hp_rc rc, const char *reason)
{
    struct batch_result res = {
        .outcome = BATCH_FAILED, .rc = rc, .reason = reason, .batch_id = "", .batch_records = 0};

    r->done(r->arg, &res);
    pthread_mutex_lock(&q->lock);
    q->outstanding--;
    q->st.failed++;
    if (q->closing && !q->outstanding)
        pthread_cond_broadcast(&q->drained);
    pthread_mutex_unlock(&q->lock);
    record_free(r);
}

/* ---- limiter (caller holds q->lock) ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static void limiter_shrink(struct batch_queue *q)
{
    q->limit *= q->cfg.decrease;
    if (q->limit < q->cfg.min_inflight)
        q->limit = q->cfg.min_inflight;
    q->lat_n = 0;
}

static void limiter_sample(struct batch_queue *q, int64_t latency_ns)
{
    int64_t sorted[MAX_WINDOW], p95;

    q->lat[q->lat_n++] = latency_ns;
    if (q->lat_n < q->cfg.window)
        return;
    memcpy(sorted, q->lat, q->lat_n * sizeof(sorted[0]));
    qsort(sorted, q->lat_n, sizeof(sorted[0]), cmp_i64);
    p95 = sorted[(q->lat_n * 95 + 99) / 100 - 1];
    q->lat_n = 0;
    if (p95 > q->cfg.p95_high_ms * 1000000) {
        limiter_shrink(q);
    } else if (p95 < q->cfg.p95_low_ms * 1000000) {
        q->limit *= q->cfg.increase;
        if (q->limit > q->cfg.max_inflight)
            q->limit = q->cfg.max_inflight;
    }
}

static unsigned limiter_admit(const struct batch_queue *q)
{
    unsigned l = (unsigned)q->limit; /* truncation = floor for a positive limit */

    return l < 1 ? 1 : l;
}

/* ---- start-up and configuration ---- */

static void config_defaults(struct batch_config *c)
{
    if (!c->capacity)
        c->capacity = 65536;
    if (!c->capacity_bytes)
        c->capacity_bytes = 64u << 20;
    if (!c->max_txn_ops)
        c->max_txn_ops = 128;
    if (!c->max_txn_bytes)
        c->max_txn_bytes = 1u << 20;
    if (!c->max_value_bytes)
        c->max_value_bytes = 512u << 10;
    if (!c->linger_ms)
        c->linger_ms = 2;
    if (!c->min_inflight)
        c->min_inflight = 1;
    if (!c->max_inflight)
        c->max_inflight = 32;
    if (!c->initial_inflight)
        c->initial_inflight = 4;
    if (!c->p95_high_ms)
        c->p95_high_ms = 50;
    if (!c->p95_low_ms)
        c->p95_low_ms = 20;
    if (c->decrease <= 0)
        c->decrease = 0.7;
    if (c->increase <= 0)
        c->increase = 1.2;
    if (!c->window)
        c->window = 32;
    if (!c->fence_ttl_s)
        c->fence_ttl_s = 3600;
    if (!c->resolve_timeout_ms)
        c->resolve_timeout_ms = 5000;
    if (!c->resolve_max_ms)
        c->resolve_max_ms = 30000;
}

static hp_rc config_check(const struct batch_config *c, struct hp_err *err)
{
    if (!c->writer || !*c->writer || strchr(c->writer, '\n'))
        return hp_err_field(err, HP_ERR_INVALID, "writer", "a writer name is required");
    if (c->max_txn_ops < 2)
        return hp_err_field(err, HP_ERR_INVALID, "max_txn_ops",
                            "max_txn_ops must be at least 2 (one op is the fence), not %zu",
                            c->max_txn_ops);
    if (c->max_txn_bytes < 4096)
        return hp_err_field(err, HP_ERR_INVALID, "max_txn_bytes",
                            "max_txn_bytes must be at least 4096, not %zu", c->max_txn_bytes);
    if (c->capacity_bytes < c->max_txn_bytes) /* else a record that fits a txn could never wait */
        return hp_err_field(err, HP_ERR_INVALID, "capacity_bytes",
                            "capacity_bytes must be at least max_txn_bytes (%zu), not %zu",
                            c->max_txn_bytes, c->capacity_bytes);
    if (c->max_value_bytes * 4 / 3 + FENCE_OVERHEAD + 1024 > c->max_txn_bytes)
        return hp_err_field(err, HP_ERR_INVALID, "max_value_bytes",
                            "max_value_bytes %zu does not fit max_txn_bytes %zu after base64",
                            c->max_value_bytes, c->max_txn_bytes);
    if (c->min_inflight > c->max_inflight || c->initial_inflight < c->min_inflight ||
        c->initial_inflight > c->max_inflight || c->max_inflight > 256)
        return hp_err_field(err, HP_ERR_INVALID, "max_inflight",
                            "need min_inflight <= initial_inflight <= max_inflight <= 256");
    if (c->p95_low_ms >= c->p95_high_ms)
        return hp_err_field(err, HP_ERR_INVALID, "p95_low_ms",
                            "p95_low_ms (%" PRId64 ") must be below p95_high_ms (%" PRId64 ")",
                            c->p95_low_ms, c->p95_high_ms);
    if (c->decrease >= 1 || c->increase <= 1)
        return hp_err_field(err, HP_ERR_INVALID, "decrease",
                            "need decrease < 1 < increase (got %g and %g)", c->decrease,
                            c->increase);
    if (c->resolve_timeout_ms < 1 || c->resolve_max_ms < c->resolve_timeout_ms)
        return hp_err_field(err, HP_ERR_INVALID, "resolve_max_ms",
                            "need 0 < resolve_timeout_ms (%" PRId64 ") <= resolve_max_ms (%" PRId64
                            ")",
                            c->resolve_timeout_ms, c->resolve_max_ms);
    if (c->window > MAX_WINDOW)
        return hp_err_field(err, HP_ERR_INVALID, "window", "window must be at most %d", MAX_WINDOW);
    return HP_OK;
}

static char *join(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = hp_malloc(n);

    if (s)
        snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

/* epoch_token: a value for the epoch key that identifies this writer instance's claim. */
static void epoch_token(struct batch_queue *q, char *buf, size_t n)
{
    pthread_mutex_lock(&q->lock);
    q->epoch_seq++;
    snprintf(buf, n, "%s:%s:%" PRIu64, q->writer, q->instance, q->epoch_seq);
    pthread_mutex_unlock(&q->lock);
}

hp_rc batch_queue_claim_epoch(struct batch_queue *q, struct hp_ctx *ctx, struct hp_err *err)
{
    char tok[256];
    int64_t rev = 0;
    hp_rc rc;

    epoch_token(q, tok, sizeof(tok));
    rc = etcd_put(q->etcd, ctx, q->epoch_key, q->epoch_key_len, tok, strlen(tok), 0, &rev, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&q->lock);
    q->epoch = rev;
    q->fenced = 0;
    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);
    return HP_OK;
}

static hp_rc ensure_lease(struct batch_queue *q, struct hp_ctx *ctx, struct hp_err *err)
{
    int64_t id = 0, now = hp_now_ns();
    hp_rc rc;

    pthread_mutex_lock(&q->lock);
    if (q->lease && now - q->lease_ns < q->cfg.fence_ttl_s * 500000000LL) {
        pthread_mutex_unlock(&q->lock);
        return HP_OK;
    }
    pthread_mutex_unlock(&q->lock);
    rc = etcd_lease_grant(q->etcd, ctx, q->cfg.fence_ttl_s, &id, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&q->lock);
    q->lease = id;
    q->lease_ns = now;
    pthread_mutex_unlock(&q->lock);
    return HP_OK;
}

static void *flusher_main(void *arg);

/* batch_full: the pending records fill a txn (caller holds the lock) */
static int batch_full(const struct batch_queue *q)
{
    return q->pending_ops >= q->cfg.max_txn_ops - 1 ||
           q->pending_bytes + FENCE_OVERHEAD >= q->cfg.max_txn_bytes;
}
static void *sender_main(void *arg);
static void *resolver_main(void *arg);
static hp_rc resolve_round(struct batch_queue *q, struct batch **g, size_t n, struct hp_ctx *parent,
                           struct hp_err *err);

static int transient(hp_rc rc)
{
    return rc == HP_ERR_UNKNOWN_OUTCOME || rc == HP_ERR_UNAVAILABLE || rc == HP_ERR_TIMEOUT ||
           rc == HP_ERR_FULL;
}

/* recover_journal: resolve batches a previous process left unresolved (rule R4), in groups,
 * round after round (what a round learned is kept) until all are final or ctx ends (NULL:
 * 30 s). A batch resolved is removed from the journal; the others stay for the next start. */
static hp_rc recover_journal(struct batch_queue *q, struct hp_ctx *ctx, struct hp_err *err)
{
    struct batch_journal_entry *e = NULL;
    struct batch **bs = NULL, **g = NULL;
    struct hp_ctx *all = NULL;
    size_t n = 0, nb = 0, i, max_group = q->cfg.max_txn_ops - 1;
    int64_t backoff_ms = 50;
    hp_rc rc;

    rc = batch_journal_load(q->state_dir, q->writer, &e, &n, err);
    if (rc || !n)
        goto out;
    bs = hp_calloc(n, sizeof(*bs));
    g = hp_calloc(max_group, sizeof(*g));
    rc = bs && g ? hp_ctx_new(ctx, ctx ? HP_CTX_NO_TIMEOUT : 30000, &all) : HP_ERR_NOMEM;
    for (i = 0; i < n && !rc; i++) {
        struct batch *b = hp_calloc(1, sizeof(*b));
        struct record *r = hp_calloc(1, sizeof(*r));

        if (!b || !r) {
            hp_free(b);
            hp_free(r);
            rc = HP_ERR_NOMEM;
            break;
        }
        /* a synthetic record owning the journaled keys; it has no callback */
        snprintf(b->id, sizeof(b->id), "%s", e[i].batch_id);
        b->epoch = e[i].epoch;
        r->w = e[i].writes;
        r->n = e[i].n;
        e[i].writes = NULL;
        e[i].n = 0;
        b->records = r;
        bs[nb++] = b;
        b->ops = hp_calloc(r->n ? r->n : 1, sizeof(*b->ops));
        b->fence_key = join(q->fence_prefix, b->id, "");
        if (!b->ops || !b->fence_key) {
            rc = HP_ERR_NOMEM;
            break;
        }
        b->fence_len = strlen(b->fence_key);
        for (size_t k = 0; k < r->n; k++)
            b->ops[b->n_ops++] = &r->w[k];
    }
    while (!rc) {
        size_t m = 0;

        for (i = 0; i < nb && m < max_group; i++)
            if (!bs[i]->final)
                g[m++] = bs[i];
        if (!m)
            break;
        rc = resolve_round(q, g, m, all, err);
        for (i = 0; i < m; i++)
            if (g[i]->final)
                batch_journal_remove(q->state_dir, q->writer, g[i]->id);
        if (!rc || !transient(rc) || hp_ctx_err(all))
            continue;
        rc = hp_ctx_sleep(all, backoff_ms) ? hp_ctx_err(all) : HP_OK;
        backoff_ms = backoff_ms * 2 > 1000 ? 1000 : backoff_ms * 2;
    }
out:
    for (i = 0; i < nb; i++)
        batch_free(bs[i]);
    hp_free(bs);
    hp_free(g);
    hp_ctx_free(all);
    batch_journal_entries_free(e, n);
    return rc;
}

enum startup_step { STEP_CLAIM, STEP_LEASE };

/* step_begin: a context for one step: the queue's current resolution budget, under parent
 * (or the queue's stop context). *budget_ms and *t0 are for step_end. */
static hp_rc step_begin(struct batch_queue *q, struct hp_ctx *parent, struct hp_ctx **ctx,
                        int64_t *budget_ms, int64_t *t0)
{
    pthread_mutex_lock(&q->lock);
    *budget_ms = q->budget_ms;
    pthread_mutex_unlock(&q->lock);
    *t0 = hp_now_ns();
    return hp_ctx_new(parent ? parent : q->stop, *budget_ms, ctx);
}

/* step_end: a step that failed after using (nearly) its whole budget ran out of time: the
 * next attempt gets a larger one (resolve_budget_grow). */
static void step_end(struct batch_queue *q, struct hp_ctx *ctx, int64_t budget_ms, int64_t t0,
                     hp_rc rc)
{
    int64_t used_ms = (hp_now_ns() - t0) / 1000000;

    if (rc && rc != HP_ERR_CANCELED && used_ms * 10 >= budget_ms * 9 &&
        hp_ctx_err(q->stop) == HP_OK) {
        pthread_mutex_lock(&q->lock);
        q->budget_ms = resolve_budget_grow(q->budget_ms, budget_ms, q->cfg.resolve_max_ms);
        q->st.step_timeouts++;
        pthread_mutex_unlock(&q->lock);
    } else if (!rc) {
        int64_t d = hp_now_ns() - t0;

        pthread_mutex_lock(&q->lock);
        q->step_ns = q->step_ns ? (3 * q->step_ns + d) / 4 : d;
        pthread_mutex_unlock(&q->lock);
    }
    hp_ctx_free(ctx);
}

/* step_txn: commit t as one step (step_begin, the txn, step_end); *resp as etcd_txn_commit. */
static hp_rc step_txn(struct batch_queue *q, struct hp_ctx *parent, const struct etcd_txn *t,
                      struct etcd_txn_resp *resp, struct hp_err *err)
{
    struct hp_ctx *ctx = NULL;
    int64_t budget, t0;
    hp_rc rc = step_begin(q, parent, &ctx, &budget, &t0);

    if (rc)
        return rc;
    rc = etcd_txn_commit(q->etcd, ctx, t, resp, err);
    step_end(q, ctx, budget, t0, rc);
    return rc;
}

/* startup_retry: run one start-up step, retrying transient failures with backoff (each
 * attempt bounded by the resolution budget, which grows like a resolution step's) until ctx
 * ends (NULL ctx: 30 s). */
static hp_rc startup_retry(struct batch_queue *q, struct hp_ctx *ctx, enum startup_step step,
                           struct hp_err *err)
{
    struct hp_ctx *all = NULL;
    int64_t backoff_ms = 50;
    hp_rc rc;

    rc = hp_ctx_new(ctx, ctx ? HP_CTX_NO_TIMEOUT : 30000, &all);
    if (rc)
        return rc;
    for (;;) {
        struct hp_ctx *one = NULL;

        int64_t budget, t0;

        rc = step_begin(q, all, &one, &budget, &t0);
        if (rc)
            break;
        switch (step) {
        case STEP_CLAIM:
            rc = batch_queue_claim_epoch(q, one, err);
            break;
        case STEP_LEASE:
            rc = ensure_lease(q, one, err);
            break;
        }
        step_end(q, one, budget, t0, rc);
        if (!transient(rc) || hp_ctx_err(all))
            break;
        if (hp_ctx_sleep(all, backoff_ms))
            break;
        backoff_ms = backoff_ms * 2 > 1000 ? 1000 : backoff_ms * 2;
    }
    hp_ctx_free(all);
    return rc;
}

/* queue_names: q's copies of the config's strings, its epoch key and fence prefix, and its
 * instance tag (random). HP_ERR_NOMEM. */
static hp_rc queue_names(struct batch_queue *q, const struct batch_config *cfg)
{
    unsigned char rnd[8];
    unsigned i;

    q->prefix = hp_strdup(cfg->prefix && *cfg->prefix ? cfg->prefix : BATCH_QUEUE_DEFAULT_PREFIX);
    q->writer = hp_strdup(cfg->writer);
    q->state_dir = cfg->state_dir && *cfg->state_dir ? hp_strdup(cfg->state_dir) : NULL;
    if (!q->prefix || !q->writer || (cfg->state_dir && *cfg->state_dir && !q->state_dir))
        return HP_ERR_NOMEM;
    q->epoch_key = join(q->prefix, "epoch/", q->writer);
    q->fence_prefix = join(q->prefix, "fence/", q->writer);
    if (q->fence_prefix) {
        char *fp = join(q->fence_prefix, "/", "");

        hp_free(q->fence_prefix);
        q->fence_prefix = fp;
    }
    if (!q->epoch_key || !q->fence_prefix)
        return HP_ERR_NOMEM;
    q->epoch_key_len = strlen(q->epoch_key);
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        uint64_t t = (uint64_t)hp_now_ns() ^ (uint64_t)(uintptr_t)q;

        memcpy(rnd, &t, sizeof(rnd));
    }
    for (i = 0; i < sizeof(rnd); i++)
        snprintf(q->instance + 2 * i, 3, "%02x", rnd[i]);
    return HP_OK;
}

/* start_threads: the flusher, the resolvers and the senders */
static hp_rc start_threads(struct batch_queue *q, struct hp_err *err)
{
    pthread_attr_t a;
    unsigned i;

    q->senders = hp_calloc(q->cfg.max_inflight + SPARE_SENDERS, sizeof(*q->senders));
    q->resolvers = hp_calloc(RESOLVERS, sizeof(*q->resolvers));
    if (!q->senders || !q->resolvers)
        return HP_ERR_NOMEM;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 256u << 10);
    if (pthread_create(&q->flusher, &a, flusher_main, q)) {
        pthread_attr_destroy(&a);
        return hp_err_set(err, HP_ERR_NOMEM, "cannot start the batch queue threads");
    }
    q->threads_started = 1;
    for (i = 0; i < RESOLVERS; i++) {
        if (pthread_create(&q->resolvers[i], &a, resolver_main, q))
            break;
        q->n_resolvers++;
    }
    for (i = 0; i < q->cfg.max_inflight + SPARE_SENDERS; i++) {
        if (pthread_create(&q->senders[i], &a, sender_main, q))
            break;
        q->n_senders++;
    }
    pthread_attr_destroy(&a);
    if (q->n_senders < q->cfg.max_inflight + SPARE_SENDERS || q->n_resolvers < RESOLVERS)
        return hp_err_set(err, HP_ERR_NOMEM, "cannot start %u sender threads", q->cfg.max_inflight);
    return HP_OK;
}

hp_rc batch_queue_new(struct etcd_client *etcd, const struct batch_config *cfg, struct hp_ctx *ctx,
                      struct batch_queue **out, struct hp_err *err)
{
    struct batch_queue *q;
    pthread_condattr_t a;
    hp_rc rc;

    *out = NULL;
    q = hp_calloc(1, sizeof(*q));
    if (!q)
        return HP_ERR_NOMEM;
    pthread_mutex_init(&q->lock, NULL);
    prom_histogram_init(&q->txn_seconds, prom_buckets_seconds, 12);
    prom_histogram_init(&q->batch_ops, prom_buckets_size, 10);
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&q->wake, &a);
    pthread_cond_init(&q->drained, &a);
    pthread_cond_init(&q->send_wake, NULL);
    pthread_cond_init(&q->resolve_wake, &a);
    pthread_condattr_destroy(&a);
    q->etcd = etcd;
    q->cfg = *cfg;
    config_defaults(&q->cfg);
    rc = config_check(&q->cfg, err);
    if (!rc)
        rc = queue_names(q, cfg);
    if (rc)
        goto out;
    q->limit = q->cfg.initial_inflight;
    q->st.limit = q->cfg.initial_inflight;
    q->budget_ms = q->cfg.resolve_timeout_ms;
    rc = hp_ctx_new(NULL, HP_CTX_NO_TIMEOUT, &q->stop);
    if (rc)
        goto out;

    /* start-up: claim the epoch (fences every older instance of this writer), then resolve
     * what a previous instance journaled, then get a lease for fence keys. Each step is safe to
     * repeat (another epoch put only claims again; an extra lease expires unused), so
     * transient failures are retried until ctx ends. */
    rc = startup_retry(q, ctx, STEP_CLAIM, err);
    if (!rc && q->state_dir)
        rc = recover_journal(q, ctx, err);
    if (!rc)
        rc = startup_retry(q, ctx, STEP_LEASE, err);
    if (!rc)
        rc = start_threads(q, err);
out:
    if (rc) {
        batch_queue_free(q);
        return rc;
    }
    *out = q;
    return HP_OK;
}

/* ---- enqueue ---- */

hp_rc batch_queue_enqueue(struct batch_queue *q, struct hp_ctx *ctx, const char *run_id,
                          const struct batch_write *writes, size_t n, batch_done_fn done, void *arg,
                          struct hp_err *err)
{
    return batch_queue_enqueue_watched(q, ctx, run_id, writes, n, done, NULL, arg, err);
}

size_t batch_queue_max_writes(const struct batch_queue *q)
{
    return q->cfg.max_txn_ops - 1;
}

/* record_check: writes[0..n) fit one record; *bytes: their encoded size */
static hp_rc record_check(const struct batch_queue *q, const struct batch_write *writes, size_t n,
                          size_t *bytes, struct hp_err *err)
{
    size_t i, plen = strlen(q->prefix);

    *bytes = 0;
    if (n < 1 || n > q->cfg.max_txn_ops - 1)
        return hp_err_field(err, HP_ERR_INVALID, "writes",
                            "a record holds 1 to %zu writes (max_txn_ops - 1), not %zu",
                            q->cfg.max_txn_ops - 1, n);
    for (i = 0; i < n; i++) {
        const struct batch_write *w = &writes[i];

        if (!w->key || !w->key_len)
            return hp_err_field(err, HP_ERR_INVALID, "key", "write %zu has an empty key", i);
        if (w->key_len >= plen && !memcmp(w->key, q->prefix, plen) &&
            (w->key_len >= plen + 6 && (!memcmp((const char *)w->key + plen, "epoch/", 6) ||
                                        !memcmp((const char *)w->key + plen, "fence/", 6))))
            return hp_err_field(err, HP_ERR_INVALID, "key",
                                "key '%.*s' is inside the queue's reserved %sepoch/ or %sfence/",
                                (int)(w->key_len > 100 ? 100 : w->key_len), (const char *)w->key,
                                q->prefix, q->prefix);
        if (!w->is_delete && w->value_len > q->cfg.max_value_bytes)
            return hp_err_field(err, HP_ERR_INVALID, "value",
                                "value of %zu bytes for key '%.*s' exceeds max_value_bytes (%zu)",
                                w->value_len, (int)(w->key_len > 100 ? 100 : w->key_len),
                                (const char *)w->key, q->cfg.max_value_bytes);
        *bytes += hp_b64_encoded_len(w->key_len) + hp_b64_encoded_len(w->value_len) + OP_OVERHEAD;
    }
    if (*bytes + FENCE_OVERHEAD > q->cfg.max_txn_bytes)
        return hp_err_field(err, HP_ERR_INVALID, "writes",
                            "record of ~%zu encoded bytes exceeds max_txn_bytes (%zu)", *bytes,
                            q->cfg.max_txn_bytes);
    return HP_OK;
}

/* record_packed: a record holding copies of writes and run_id in one allocation: the record,
 * its writes, then each key and value NUL-terminated and the run id (every length is bounded by
 * max_txn_bytes, checked before). NULL: no memory. */
static struct record *record_packed(const struct batch_write *writes, size_t n, const char *run_id)
{
    size_t head = (sizeof(struct record) + _Alignof(struct batch_write) - 1) /
                  _Alignof(struct batch_write) * _Alignof(struct batch_write),
           size = head + n * sizeof(struct batch_write) + (run_id ? strlen(run_id) + 1 : 0), i;
    struct record *r;
    char *d;

    for (i = 0; i < n; i++)
        size += writes[i].key_len + 1 + (writes[i].is_delete ? 0 : writes[i].value_len + 1);
    r = hp_calloc(1, size);
    if (!r)
        return NULL;
    r->packed = true;
    r->w = (struct batch_write *)((char *)r + head);
    d = (char *)(r->w + n);
    for (i = 0; i < n; i++) {
        memcpy(d, writes[i].key, writes[i].key_len);
        r->w[i].key = d;
        r->w[i].key_len = writes[i].key_len;
        r->w[i].is_delete = writes[i].is_delete;
        d += writes[i].key_len + 1; /* calloc: the NUL is there */
        if (!writes[i].is_delete) {
            if (writes[i].value_len)
                memcpy(d, writes[i].value, writes[i].value_len);
            r->w[i].value = d;
            r->w[i].value_len = writes[i].value_len;
            d += writes[i].value_len + 1;
        }
    }
    if (run_id) {
        r->run_id = d;
        memcpy(d, run_id, strlen(run_id));
    }
    r->n = n;
    return r;
}

/* record_owning: a record that takes the keys and values of writes (not copied); the array of
 * n write descriptors and run_id are copied into the record's own allocation (one malloc and one
 * free per record besides the caller's buffers). NULL: no memory, nothing taken. */
static struct record *record_owning(const struct batch_write *writes, size_t n, const char *run_id)
{
    size_t head = (sizeof(struct record) + _Alignof(struct batch_write) - 1) /
                  _Alignof(struct batch_write) * _Alignof(struct batch_write);
    struct record *r = hp_calloc(1, head + n * sizeof(*writes) + (run_id ? strlen(run_id) + 1 : 0));

    if (!r)
        return NULL;
    r->inline_w = true;
    r->w = (struct batch_write *)((char *)r + head);
    memcpy(r->w, writes, n * sizeof(*r->w));
    if (run_id) {
        r->run_id = (char *)(r->w + n);
        memcpy(r->run_id, run_id, strlen(run_id)); /* calloc: the NUL is there */
    }
    r->n = n;
    return r;
}

/* records_admit: queue rs[0..k) (their writes set; bytes: the sum of their sizes) in order, all
 * or none: none when the queue is closing (HP_ERR_CANCELED), has no room for all of them now
 * (HP_ERR_FULL) or could never hold them (HP_ERR_INVALID naming capacity or capacity_bytes);
 * the records are the caller's again then. */
static hp_rc records_admit(struct batch_queue *q, struct record **rs, size_t k, size_t bytes,
                           struct hp_ctx *ctx, struct hp_err *err)
{
    size_t i;

    pthread_mutex_lock(&q->lock);
    if (q->closing || q->stopping) {
        pthread_mutex_unlock(&q->lock);
        return hp_err_set(err, HP_ERR_CANCELED, "the batch queue is closing");
    }
    if (k > q->cfg.capacity || bytes > q->cfg.capacity_bytes) {
        /* more than the whole queue holds: no wait makes room (a FULL here was retried for
         * ever by callers that wait for room) */
        q->st.rejected += k;
        pthread_mutex_unlock(&q->lock);
        return hp_err_field(err, HP_ERR_INVALID,
                            k > q->cfg.capacity ? "capacity" : "capacity_bytes",
                            "%zu records of %zu bytes can never fit the batch queue (capacity %zu "
                            "records, %zu bytes): all refused, none queued",
                            k, bytes, q->cfg.capacity, q->cfg.capacity_bytes);
    }
    if (q->pending + k > q->cfg.capacity || q->pending_bytes + bytes > q->cfg.capacity_bytes) {
        size_t pending = q->pending, pbytes = q->pending_bytes;

        q->st.rejected += k;
        pthread_mutex_unlock(&q->lock);
        if (k == 1)
            return hp_err_set(err, HP_ERR_FULL,
                              "batch queue full (%zu records of %zu bytes waiting, capacity %zu "
                              "records, %zu bytes; this record %zu bytes): record refused",
                              pending, pbytes, q->cfg.capacity, q->cfg.capacity_bytes, bytes);
        return hp_err_set(err, HP_ERR_FULL,
                          "batch queue full (%zu records of %zu bytes waiting, capacity %zu "
                          "records, %zu bytes; these %zu records %zu bytes): all %zu refused, "
                          "none queued",
                          pending, pbytes, q->cfg.capacity, q->cfg.capacity_bytes, k, bytes, k);
    }
    if (!q->pending)
        q->oldest_ns = hp_now_ns();
    for (i = 0; i < k; i++) {
        struct record *r = rs[i];

        r->ctx = hp_ctx_ref(ctx);
        if (q->pend_tail)
            q->pend_tail->next = r;
        else
            q->pend_head = r;
        q->pend_tail = r;
        q->pending_ops += r->n;
    }
    q->pending += k;
    q->pending_bytes += bytes;
    q->outstanding += k;
    q->st.enqueued += k;
    if (q->flusher_waits == FW_RECORDS || (q->flusher_waits == FW_LINGER && batch_full(q)))
        pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);
    return HP_OK;
}

/* record_new: a checked record of writes[0..n) with cb's callbacks; take: it takes the keys and
 * values (record_owning), else copies them (record_packed). *out owned. */
static hp_rc record_new(struct batch_queue *q, const char *run_id, const struct batch_write *writes,
                        size_t n, bool take, const struct batch_done_cb *cb, struct record **out,
                        struct hp_err *err)
{
    struct record *r;
    size_t bytes;
    hp_rc rc;

    *out = NULL;
    if (!cb->done)
        return hp_err_field(err, HP_ERR_INVALID, "done", "a completion callback is required");
    rc = record_check(q, writes, n, &bytes, err);
    if (rc)
        return rc;
    r = take ? record_owning(writes, n, run_id) : record_packed(writes, n, run_id);
    if (!r)
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory queueing a record");
    r->bytes = bytes;
    r->done = cb->done;
    r->unresolved = cb->unresolved;
    r->arg = cb->arg;
    *out = r;
    return HP_OK;
}

/* record_unmade: free r made by record_new; take: leave the keys and values to the caller */
static void record_unmade(struct record *r, bool take)
{
    if (r && take)
        r->n = 0;
    record_free(r);
}

/* enqueue: the enqueues' common path; take: the record takes the keys and values */
static hp_rc enqueue(struct batch_queue *q, struct hp_ctx *ctx, const char *run_id,
                     const struct batch_write *writes, size_t n, bool take,
                     const struct batch_done_cb *cb, struct hp_err *err)
{
    struct record *r;
    hp_rc rc = record_new(q, run_id, writes, n, take, cb, &r, err);

    if (!rc)
        rc = records_admit(q, &r, 1, r->bytes, ctx, err);
    if (rc)
        record_unmade(r, take);
    return rc;
}

hp_rc batch_queue_enqueue_watched(struct batch_queue *q, struct hp_ctx *ctx, const char *run_id,
                                  const struct batch_write *writes, size_t n, batch_done_fn done,
                                  batch_unresolved_fn unresolved, void *arg, struct hp_err *err)
{
    struct batch_done_cb cb = {done, unresolved, arg};

    return enqueue(q, ctx, run_id, writes, n, false, &cb, err);
}

hp_rc batch_queue_enqueue_owned(struct batch_queue *q, struct hp_ctx *ctx, const char *run_id,
                                const struct batch_write *writes, size_t n,
                                const struct batch_done_cb *cb, struct hp_err *err)
{
    return enqueue(q, ctx, run_id, writes, n, true, cb, err);
}

hp_rc batch_queue_enqueue_all(struct batch_queue *q, struct hp_ctx *ctx, const char *run_id,
                              const struct batch_write *writes, size_t n,
                              const struct batch_done_cb *cb, size_t *records, struct hp_err *err)
{
    size_t per = q->cfg.max_txn_ops - 1, k = (n + per - 1) / per, made = 0, bytes = 0, i;
    struct record **rs;
    hp_rc rc = HP_OK;

    *records = 0;
    if (!n)
        return hp_err_field(err, HP_ERR_INVALID, "writes", "no writes to queue");
    rs = hp_calloc(k, sizeof(*rs));
    if (!rs)
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory queueing %zu records", k);
    for (i = 0; i < n && !rc; i += per, made++) {
        rc = record_new(q, run_id, writes + i, n - i < per ? n - i : per, true, cb, &rs[made], err);
        if (!rc)
            bytes += rs[made]->bytes;
    }
    if (!rc)
        rc = records_admit(q, rs, k, bytes, ctx, err);
    if (rc) {
        for (i = 0; i < made; i++)
            record_unmade(rs[i], true);
    } else {
        *records = k;
    }
    hp_free(rs);
    return rc;
}

void batch_queue_flush(struct batch_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->flush_req = 1;
    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

/* ---- flusher: packs pending records into batches ---- */

/* timed_wait: wait on cv (q->wake unless given) until woken or until_ns (CLOCK_MONOTONIC) */
static void timed_wait_on(struct batch_queue *q, pthread_cond_t *cv, int64_t until_ns)
{
    struct timespec ts = {.tv_sec = until_ns / 1000000000, .tv_nsec = until_ns % 1000000000};

    pthread_cond_timedwait(cv, &q->lock, &ts);
}

static void timed_wait(struct batch_queue *q, int64_t until_ns)
{
    timed_wait_on(q, &q->wake, until_ns);
}

/* key_hash: a key's hash for the coalescing table, 8 bytes at a time (a byte-wise FNV-1a was
 * 2% of the client's CPU at 127 keys per batch) */
static uint32_t key_hash(const void *key, size_t n)
{
    const unsigned char *k = key;
    uint64_t h = 0x9e3779b97f4a7c15u ^ n, w;

    for (; n >= 8; k += 8, n -= 8) {
        memcpy(&w, k, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, k, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
    return (uint32_t)(h ^ h >> 29);
}

/* coalesce: w into b's ops, replacing an earlier write to the same key (rule R5). slot: an
 * open-addressing table of mask + 1 entries (mask + 1 > 2 x the ops a batch may hold) of
 * op index + 1, 0 empty. */
static void coalesce(struct batch *b, uint32_t *slot, size_t mask, const struct batch_write *w)
{
    size_t i = key_hash(w->key, w->key_len) & mask;

    for (; slot[i]; i = (i + 1) & mask) {
        const struct batch_write *o = b->ops[slot[i] - 1];

        if (o->key_len == w->key_len && !memcmp(o->key, w->key, w->key_len)) {
            b->ops[slot[i] - 1] = w;
            return;
        }
    }
    b->ops[b->n_ops++] = w;
    slot[i] = (uint32_t)b->n_ops;
}

/* take_batch: pop records into a new batch (caller holds the lock). Records whose context has
 * ended at now (hp_now_ns) are moved to *dead. Returns NULL when nothing could be taken (or
 * NOMEM). */
static struct batch *take_batch(struct batch_queue *q, int64_t now, struct record **dead)
{
    size_t max_ops = q->cfg.max_txn_ops - 1, ops = 0, bytes = FENCE_OVERHEAD, mask = 15;
    struct batch *b = hp_calloc(1, sizeof(*b));
    struct record **tail, *r;
    uint32_t *slot;

    while (mask + 1 <= 2 * max_ops)
        mask = mask << 1 | 1;
    slot = hp_calloc(mask + 1, sizeof(*slot));
    if (b)
        b->ops = hp_calloc(max_ops, sizeof(*b->ops));
    if (!b || !b->ops || !slot) {
        if (b)
            hp_free(b->ops);
        hp_free(b);
        hp_free(slot);
        return NULL;
    }
    b->deadline_ns = INT64_MAX;
    tail = &b->records;
    while ((r = q->pend_head)) {
        if (hp_ctx_err_at(r->ctx, now)) {
            q->pend_head = r->next;
            q->pending--;
            q->pending_bytes -= r->bytes;
            q->pending_ops -= r->n;
            r->next = *dead;
            *dead = r;
            continue;
        }
        if (b->n_records && (ops + r->n > max_ops || bytes + r->bytes > q->cfg.max_txn_bytes))
            break;
        q->pend_head = r->next;
        q->pending--;
        q->pending_bytes -= r->bytes;
        q->pending_ops -= r->n;
        r->next = NULL;
        *tail = r;
        tail = &r->next;
        b->n_records++;
        ops += r->n;
        bytes += r->bytes;
        if (hp_ctx_deadline_ns(r->ctx) < b->deadline_ns)
            b->deadline_ns = hp_ctx_deadline_ns(r->ctx);
        /* coalesce by key: a later write to the same key replaces the earlier (rule R5) */
        for (size_t i = 0; i < r->n; i++)
            coalesce(b, slot, mask, &r->w[i]);
    }
    hp_free(slot);
    if (!q->pend_head)
        q->pend_tail = NULL;
    else
        q->oldest_ns = now;
    if (!b->n_records) {
        batch_free(b);
        return NULL;
    }
    q->seq++;
    snprintf(b->id, sizeof(b->id), "%s-%" PRIu64, q->instance, q->seq);
    return b;
}

/* flush_due: the pending records are to be sent now: they fill a txn, a flush or close asked
 * for them, or the oldest has lingered long enough (caller holds the lock) */
static int flush_due(const struct batch_queue *q, int64_t now)
{
    return q->pending && (batch_full(q) || q->flush_req || q->closing ||
                          now >= q->oldest_ns + q->cfg.linger_ms * 1000000);
}

/* admit_batch: take_batch for a txn slot the limiter admits (caller holds the lock and checked
 * the slot) */
static struct batch *admit_batch(struct batch_queue *q, int64_t now, struct record **dead)
{
    struct batch *b = take_batch(q, now, dead);

    if (b) {
        q->inflight++;
        q->st.batches++;
    }
    return b;
}

/* fail_dead: complete the records take_batch found expired (caller does NOT hold the lock) */
static void fail_dead(struct batch_queue *q, struct record *dead)
{
    struct record *r;

    while ((r = dead)) {
        hp_rc why = hp_ctx_err(r->ctx);

        dead = r->next;
        fail_record(q, r, why,
                    why == HP_ERR_CANCELED ? "cancelled before it was sent"
                                           : "deadline passed before it was sent");
    }
}

/* flusher: turns pending records into batches for the senders when nobody else does: a sender
 * that finishes a txn takes the next batch itself when one is due (sender_main), so with the
 * queue saturated the flusher mostly sleeps */
static void *flusher_main(void *arg)
{
    struct batch_queue *q = arg;

    pthread_mutex_lock(&q->lock);
    while (!q->stopping) {
        struct record *dead = NULL;
        struct batch *b;
        int64_t now = hp_now_ns();

        q->flusher_waits = FW_NONE;
        if (!q->pending) {
            q->flush_req = 0;
            q->flusher_waits = FW_RECORDS;
            pthread_cond_wait(&q->wake, &q->lock);
            continue;
        }
        if (!flush_due(q, now)) {
            q->flusher_waits = FW_LINGER;
            timed_wait(q, q->oldest_ns + q->cfg.linger_ms * 1000000);
            continue;
        }
        if (q->inflight >= limiter_admit(q)) {
            q->flusher_waits = FW_OTHER;
            pthread_cond_wait(&q->wake, &q->lock);
            continue;
        }
        b = admit_batch(q, now, &dead);
        if (b) {
            if (q->send_tail)
                q->send_tail->next = b;
            else
                q->send_head = b;
            q->send_tail = b;
            pthread_cond_signal(&q->send_wake);
        } else if (!dead) {
            /* out of memory: let the pending records wait a little */
            q->flusher_waits = FW_OTHER;
            timed_wait(q, hp_now_ns() + 10000000);
        }
        if (dead) {
            pthread_mutex_unlock(&q->lock);
            fail_dead(q, dead);
            pthread_mutex_lock(&q->lock);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

/* ---- sender: one guarded txn per batch ---- */

static hp_rc build_txn(struct batch_queue *q, struct batch *b, int64_t epoch, int64_t lease,
                       struct etcd_txn **out)
{
    struct etcd_txn *t = NULL;
    hp_rc rc;
    size_t i;

    /* borrowed: the records own the keys and values for the batch's life, so the txn's text is
     * rendered from them, not from copies */
    rc = etcd_txn_new_borrowed(&t);
    if (!rc)
        rc = etcd_txn_compare_int(t, q->epoch_key, q->epoch_key_len, ETCD_CMP_MOD_REVISION,
                                  ETCD_CMP_EQUAL, epoch);
    if (!rc)
        rc = etcd_txn_compare_int(t, b->fence_key, b->fence_len, ETCD_CMP_CREATE_REVISION,
                                  ETCD_CMP_EQUAL, 0);
    for (i = 0; i < b->n_ops && !rc; i++) {
        const struct batch_write *w = b->ops[i];

        rc = w->is_delete
                 ? etcd_txn_delete(t, ETCD_SUCCESS, w->key, w->key_len, false)
                 : etcd_txn_put(t, ETCD_SUCCESS, w->key, w->key_len, w->value, w->value_len, 0);
    }
    if (!rc)
        rc = etcd_txn_put(t, ETCD_SUCCESS, b->fence_key, b->fence_len, "committed", 9, lease);
    if (!rc)
        rc = etcd_txn_get(t, ETCD_FAILURE, q->epoch_key, q->epoch_key_len, 0);
    if (!rc)
        rc = etcd_txn_get(t, ETCD_FAILURE, b->fence_key, b->fence_len, 0);
    if (rc) {
        etcd_txn_free(t);
        return rc;
    }
    *out = t;
    return HP_OK;
}

/* own_epoch_value: the epoch key holds a value this queue instance wrote (epoch_token) */
static int own_epoch_value(const struct batch_queue *q, const struct etcd_kv *kv)
{
    char mine[320]; /* the epoch token (tok[256]) starts with this */
    size_t n = (size_t)snprintf(mine, sizeof(mine), "%s:%s:", q->writer, q->instance);

    return n < sizeof(mine) && kv->value_len >= n && !memcmp(kv->value, mine, n);
}

static const struct etcd_kv *first_kv(const struct etcd_txn_resp *r, size_t i)
{
    if (i >= r->n || r->ops[i].type != ETCD_OP_RANGE || !r->ops[i].range.n)
        return NULL;
    return &r->ops[i].range.kvs[0];
}

enum send_result { SENT_DONE, SENT_RESOLVE };

/* What a send ended with: the outcome, its revision, its cause and reason */
struct send_out {
    enum batch_outcome o;
    int64_t rev;
    hp_rc why;
    char *reason;
    size_t reason_len;
};

/* The txn one attempt sends: with this epoch and lease, within remaining_ms */
struct send_try {
    int64_t epoch, lease, remaining_ms;
    int64_t t0; /* set by send_once: when it was sent */
};

/* own_bump_rolled_back: out for a batch refused only by the queue's own epoch bump whose
 * deadline passed before it could be sent again: that bump made its commit impossible, the
 * rollback of R4 (FAILED would say etcd or another writer refused it) */
static void own_bump_rolled_back(struct send_out *out)
{
    out->o = BATCH_ROLLED_BACK;
    out->why = HP_ERR_TIMEOUT;
    snprintf(out->reason, out->reason_len, "%s",
             "deadline passed; its txn was refused by this queue's own epoch bump (made to "
             "resolve other batches): not applied, and it can no longer apply");
}

/* send_refused: a batch that may not be sent (again): fenced, or its deadline passed. true with
 * out set; else st holds what to send it with. */
static bool send_refused(struct batch_queue *q, const struct batch *b, struct send_try *st,
                         struct send_out *out)
{
    int fenced;

    pthread_mutex_lock(&q->lock);
    st->epoch = q->epoch;
    st->lease = q->lease;
    fenced = q->fenced;
    pthread_mutex_unlock(&q->lock);
    if (fenced) {
        out->o = BATCH_FAILED;
        out->why = HP_ERR_FENCED;
        snprintf(out->reason, out->reason_len,
                 "fenced: another instance of writer '%s' holds the epoch", q->writer);
        return true;
    }
    st->remaining_ms = (b->deadline_ns - hp_now_ns()) / 1000000;
    if (st->remaining_ms < 1) {
        out->o = BATCH_FAILED;
        out->why = HP_ERR_TIMEOUT;
        /* a batch an earlier attempt sent was refused then (certainly not applied) */
        snprintf(out->reason, out->reason_len, "%s",
                 b->first_sent_ns ? "deadline passed before it could be sent again (an "
                                    "earlier attempt was refused, not applied)"
                                  : "deadline passed before it was sent");
        return true;
    }
    return false;
}

/* send_once: one txn of b (st). HP_OK with *resp (release it); *built false when the txn could
 * not be built (the rc says why); else etcd's rc. */
static hp_rc send_once(struct batch_queue *q, struct batch *b, struct send_try *st,
                       struct etcd_txn_resp *resp, struct hp_err *err, bool *built)
{
    struct etcd_txn *t = NULL;
    struct hp_ctx *ctx = NULL;
    hp_rc rc;

    rc = hp_ctx_new(q->stop, st->remaining_ms, &ctx);
    if (!rc)
        rc = build_txn(q, b, st->epoch, st->lease, &t);
    *built = !rc;
    if (rc) {
        hp_ctx_free(ctx);
        return rc;
    }
    b->epoch = st->epoch;
    st->t0 = hp_now_ns();
    if (!b->first_sent_ns)
        b->first_sent_ns = st->t0;
    rc = etcd_txn_commit(q->etcd, ctx, t, resp, err);
    prom_histogram_observe(&q->txn_seconds, (double)(hp_now_ns() - st->t0) / 1e9);
    prom_histogram_observe(&q->batch_ops, (double)b->n_ops);
    etcd_txn_free(t);
    hp_ctx_free(ctx);
    return rc;
}

/* compare_failed: the txn sent with epoch found its compares false (resp, released here):
 * already applied (true, out set), or our own epoch moved (*own_bump set when the epoch it found
 * holds our own value: another writer's is found fenced by the next attempt), or we are fenced
 * (false: try again; the next attempt reports FENCED). */
static bool compare_failed(struct batch_queue *q, int64_t epoch, struct etcd_txn_resp *resp,
                           struct send_out *out, bool *own_bump)
{
    const struct etcd_kv *ek = first_kv(resp, 0), *fk = first_kv(resp, 1);
    bool moved;

    if (fk) { /* this batch is already applied (a transport-level duplicate) */
        out->o = BATCH_COMMITTED;
        out->rev = fk->mod_revision;
        snprintf(out->reason, out->reason_len, "committed (confirmed by its fence)");
        etcd_txn_resp_release(resp);
        return true;
    }
    pthread_mutex_lock(&q->lock);
    if (!q->fenced && ek && ek->mod_revision > q->epoch && own_epoch_value(q, ek))
        q->epoch = ek->mod_revision; /* a bump of ours whose answer was lost */
    moved = q->epoch != epoch && !q->fenced;
    *own_bump = moved && ek && own_epoch_value(q, ek);
    if (moved)
        q->st.resent++; /* we moved our own epoch (a resolution): this txn certainly did not
                         * apply */
    else if (!ek || ek->mod_revision != q->epoch)
        q->fenced = 1;
    pthread_mutex_unlock(&q->lock);
    etcd_txn_resp_release(resp);
    return false;
}

/* retry_refused: a txn certainly not applied (rc): true when it is worth sending again, after a
 * backoff (*backoff_ms, doubled up to 500 ms), before b's deadline */
static bool retry_refused(struct batch_queue *q, const struct batch *b, hp_rc rc,
                          struct hp_err *err, int64_t *backoff_ms)
{
    struct timespec ts = {.tv_sec = *backoff_ms / 1000, .tv_nsec = (*backoff_ms % 1000) * 1000000};

    if (rc != HP_ERR_FULL && rc != HP_ERR_UNAVAILABLE && rc != HP_ERR_NOTFOUND)
        return false;
    pthread_mutex_lock(&q->lock);
    if (rc == HP_ERR_FULL) {
        q->st.too_many_requests++;
        limiter_shrink(q);
    }
    if (rc == HP_ERR_NOTFOUND) /* the fence lease expired: get a new one */
        q->lease = 0;
    pthread_mutex_unlock(&q->lock);
    if (rc == HP_ERR_NOTFOUND) {
        struct hp_ctx *lctx = NULL;

        if (!hp_ctx_new(q->stop, (b->deadline_ns - hp_now_ns()) / 1000000, &lctx))
            (void)ensure_lease(q, lctx, err);
        hp_ctx_free(lctx);
    }
    if (hp_now_ns() + *backoff_ms * 1000000 >= b->deadline_ns)
        return false;
    nanosleep(&ts, NULL);
    *backoff_ms = *backoff_ms * 2 > 500 ? 500 : *backoff_ms * 2;
    pthread_mutex_lock(&q->lock);
    q->st.resent++;
    pthread_mutex_unlock(&q->lock);
    return true;
}

/* send_batch: send until a definite outcome or an unknown one (then SENT_RESOLVE). */
static enum send_result send_batch(struct batch_queue *q, struct batch *b, struct send_out *out)
{
    int64_t backoff_ms = 10;
    bool own_bump = false;

    for (;;) {
        struct etcd_txn_resp resp;
        struct hp_err err = {0};
        struct send_try st = {0};
        bool built;
        hp_rc rc;

        if (send_refused(q, b, &st, out)) {
            if (own_bump && out->why == HP_ERR_TIMEOUT) /* the deadline, after our own bump */
                own_bump_rolled_back(out);
            return SENT_DONE;
        }
        rc = send_once(q, b, &st, &resp, &err, &built);
        if (!built) {
            out->o = BATCH_FAILED;
            out->why = rc;
            snprintf(out->reason, out->reason_len, "cannot build the txn: %s", hp_rc_name(rc));
            return SENT_DONE;
        }
        if (rc == HP_OK && resp.succeeded) {
            pthread_mutex_lock(&q->lock);
            limiter_sample(q, hp_now_ns() - st.t0);
            pthread_mutex_unlock(&q->lock);
            out->o = BATCH_COMMITTED;
            out->rev = resp.revision;
            snprintf(out->reason, out->reason_len, "committed");
            etcd_txn_resp_release(&resp);
            return SENT_DONE;
        }
        if (rc == HP_OK) {
            if (compare_failed(q, st.epoch, &resp, out, &own_bump))
                return SENT_DONE;
            continue;
        }
        if (own_bump && rc == HP_ERR_TIMEOUT) {
            /* the resend after our own bump ran out of time before it left (a definite
             * TIMEOUT: nothing sent) */
            own_bump_rolled_back(out);
            return SENT_DONE;
        }
        own_bump = false;
        if (etcd_outcome_of(rc) == ETCD_OUTCOME_UNKNOWN) {
            pthread_mutex_lock(&q->lock);
            q->st.txn_timeouts++;
            limiter_shrink(q);
            pthread_mutex_unlock(&q->lock);
            snprintf(out->reason, out->reason_len, "%s", err.msg);
            return SENT_RESOLVE;
        }
        /* definitely not applied */
        if (retry_refused(q, b, rc, &err, &backoff_ms))
            continue;
        out->o = BATCH_FAILED;
        out->why = rc;
        snprintf(out->reason, out->reason_len, "%s", err.msg[0] ? err.msg : hp_rc_name(rc));
        return SENT_DONE;
    }
}

static void *sender_main(void *arg)
{
    struct batch_queue *q = arg;

    struct batch *next = NULL;

    pthread_mutex_lock(&q->lock);
    for (;;) {
        struct batch *b;
        char reason[HP_ERR_MSG_MAX];
        struct send_out so = {.o = BATCH_FAILED, .reason = reason, .reason_len = sizeof(reason)};

        if (next) { /* taken by this thread when its last txn ended */
            b = next;
            next = NULL;
        } else {
            while (!q->send_head && !q->stopping)
                pthread_cond_wait(&q->send_wake, &q->lock);
            if (!q->send_head)
                break;
            b = q->send_head;
            q->send_head = b->next;
            if (!q->send_head)
                q->send_tail = NULL;
            b->next = NULL;
        }
        pthread_mutex_unlock(&q->lock);

        b->fence_key = join(q->fence_prefix, b->id, "");
        if (!b->fence_key) {
            complete(q, b, BATCH_FAILED, 0, HP_ERR_NOMEM, "out of memory");
            pthread_mutex_lock(&q->lock);
            q->inflight--;
            pthread_cond_broadcast(&q->wake); /* a txn slot for the flusher */
            continue;
        }
        b->fence_len = strlen(b->fence_key);
        if (send_batch(q, b, &so) == SENT_DONE) {
            struct record *dead = NULL;
            int64_t now = hp_now_ns();

            /* the txn slot: this thread sends the next batch itself when one is due and none
             * waits for a sender (a hand-off to the flusher and back to a sender saved per
             * txn); else the flusher gets the slot */
            pthread_mutex_lock(&q->lock);
            q->inflight--;
            if (!q->send_head && !q->stopping && flush_due(q, now) &&
                q->inflight < limiter_admit(q))
                next = admit_batch(q, now, &dead);
            if (!next && q->flusher_waits == FW_OTHER)
                pthread_cond_broadcast(&q->wake);
            pthread_mutex_unlock(&q->lock);
            fail_dead(q, dead);
            complete(q, b, so.o, so.rev, so.why, reason);
            pthread_mutex_lock(&q->lock);
            continue;
        }
        /* unknown outcome: tell the records' watchers (R1b), hand the batch to the resolver; the
         * txn slot is free again */
        for (struct record *r = b->records; r; r = r->next)
            if (r->unresolved)
                r->unresolved(r->arg, b->id);
        pthread_mutex_lock(&q->lock);
        q->inflight--;
        b->next = q->resolve_head;
        q->resolve_head = b;
        pthread_cond_broadcast(&q->wake); /* the slot */
        pthread_cond_signal(&q->resolve_wake);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

/* ---- resolver: make a late commit impossible, undo one that happened ----
 *
 * A ROUND resolves a GROUP of timed-out batches together (at most max_txn_ops - 1): one epoch
 * bump fences every batch of the group sent with the current epoch, one txn of ranges reads
 * all their fences, one txn of ranges reads the values before every late-applied batch, one
 * txn undoes them all (nested txns, key-disjoint batches). What a step learned stays in the
 * batch across rounds, because it stays true: an epoch moved never comes back
 * (b->epoch != q->epoch), a fence read 'committed' at R stays so until our undo
 * (b->fence_rev), the values at R-1 never change (b->prev). A round that fails leaves every
 * batch at the step it reached; the next round continues from there. */

static void finish(struct batch *b, enum batch_outcome o, int64_t rev, const char *fmt, ...)
    HP_PRINTF(4, 5);

static void finish(struct batch *b, enum batch_outcome o, int64_t rev, const char *fmt, ...)
{
    va_list ap;

    b->final = 1;
    b->outcome = o;
    b->final_rev = rev;
    va_start(ap, fmt);
    vsnprintf(b->reason, sizeof(b->reason), fmt, ap);
    va_end(ap);
}

/* bump_epoch: CAS our epoch forward so no txn sent with an older epoch can apply. */
static hp_rc bump_epoch(struct batch_queue *q, int64_t sent_epoch, struct hp_ctx *ctx,
                        struct hp_err *err)
{
    struct etcd_txn *t = NULL;
    struct etcd_txn_resp resp;
    const struct etcd_kv *kv;
    char tok[256];
    int64_t cur;
    hp_rc rc;

    pthread_mutex_lock(&q->lock);
    cur = q->epoch;
    pthread_mutex_unlock(&q->lock);
    if (cur != sent_epoch)
        return HP_OK; /* already moved since this batch was sent */
    epoch_token(q, tok, sizeof(tok));
    rc = etcd_txn_new(&t);
    if (!rc)
        rc = etcd_txn_compare_int(t, q->epoch_key, q->epoch_key_len, ETCD_CMP_MOD_REVISION,
                                  ETCD_CMP_EQUAL, cur);
    if (!rc)
        rc = etcd_txn_put(t, ETCD_SUCCESS, q->epoch_key, q->epoch_key_len, tok, strlen(tok), 0);
    if (!rc)
        rc = etcd_txn_get(t, ETCD_FAILURE, q->epoch_key, q->epoch_key_len, 0);
    if (!rc)
        rc = etcd_txn_commit(q->etcd, ctx, t, &resp, err);
    etcd_txn_free(t);
    if (rc)
        return rc;
    /* Several resolvers bump at once: what each learned is a revision of the epoch key, and the
     * key's latest revision is the largest one learned (revisions only grow) */
    pthread_mutex_lock(&q->lock);
    if (resp.succeeded) {
        if (resp.revision > q->epoch)
            q->epoch = resp.revision;
        q->st.epoch_bumps++;
    } else if ((kv = first_kv(&resp, 0))) {
        /* moved by someone: by an earlier bump of ours whose answer we lost, or a new holder */
        if (own_epoch_value(q, kv)) {
            if (kv->mod_revision > q->epoch)
                q->epoch = kv->mod_revision;
        } else {
            q->fenced = 1;
        }
    } else {
        q->fenced = 1; /* the epoch key is gone: nobody holds it, we do not either */
    }
    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);
    etcd_txn_resp_release(&resp);
    return HP_OK;
}

/* step_fence_epoch: one bump for every batch of the group still sent with the current epoch.
 * Afterwards (HP_OK) none of the group can apply any more. */
static hp_rc step_fence_epoch(struct batch_queue *q, struct batch **g, size_t n,
                              struct hp_ctx *parent, struct hp_err *err)
{
    struct hp_ctx *ctx = NULL;
    int64_t cur, budget, t0;
    int need = 0;
    hp_rc rc;

    pthread_mutex_lock(&q->lock);
    cur = q->epoch;
    for (size_t i = 0; i < n && !q->fenced; i++)
        need |= !g[i]->final && g[i]->epoch == cur;
    pthread_mutex_unlock(&q->lock);
    if (!need)
        return HP_OK;
    rc = step_begin(q, parent, &ctx, &budget, &t0);
    if (rc)
        return rc;
    rc = bump_epoch(q, cur, ctx, err);
    step_end(q, ctx, budget, t0, rc);
    return rc;
}

/* step_read_fences: one txn of ranges reads the fence of every batch that has none read. */
static hp_rc step_read_fences(struct batch_queue *q, struct batch **g, size_t n,
                              struct hp_ctx *parent, struct hp_err *err)
{
    struct etcd_txn *t = NULL;
    struct etcd_txn_resp resp;
    struct batch **w = hp_calloc(n, sizeof(*w));
    size_t m = 0;
    hp_rc rc;

    if (!w)
        return HP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (!g[i]->final && !g[i]->fence_rev)
            w[m++] = g[i];
    if (!m) {
        hp_free(w);
        return HP_OK;
    }
    rc = etcd_txn_new(&t);
    for (size_t i = 0; i < m && !rc; i++)
        rc = etcd_txn_get(t, ETCD_SUCCESS, w[i]->fence_key, w[i]->fence_len, 0);
    if (!rc)
        rc = step_txn(q, parent, t, &resp, err);
    etcd_txn_free(t);
    if (rc)
        goto out;
    for (size_t i = 0; i < m; i++) {
        struct batch *b = w[i];
        const struct etcd_kv *f = first_kv(&resp, i);

        if (!f && b->first_sent_ns &&
            hp_now_ns() - b->first_sent_ns > q->cfg.fence_ttl_s * 500000000LL)
            /* the fence may have expired: absence proves nothing any more */
            finish(b, BATCH_UNRESOLVED, 0,
                   "not resolved within half the fence TTL (%" PRId64 " s); outcome unknown",
                   q->cfg.fence_ttl_s);
        else if (!f)
            finish(b, BATCH_ROLLED_BACK, 0,
                   "deadline passed without an answer; not applied, and it can no longer apply");
        else if (f->value_len == 11 && !memcmp(f->value, "rolled_back", 11))
            finish(b, BATCH_ROLLED_BACK, 0,
                   "deadline passed; its late commit was undone at %" PRId64, f->mod_revision);
        else
            b->fence_rev = f->mod_revision; /* applied late: to be undone */
    }
    etcd_txn_resp_release(&resp);
out:
    hp_free(w);
    return rc;
}

/* read_prev: one txn reading the keys of batches w[0..m) at their fence_rev - 1; on HP_OK
 * every one of them has b->prev. */
static hp_rc read_prev(struct batch_queue *q, struct batch **w, size_t m, struct hp_ctx *parent,
                       struct hp_err *err)
{
    struct etcd_txn *t = NULL;
    struct etcd_txn_resp resp;
    size_t op = 0;
    hp_rc rc;

    rc = etcd_txn_new(&t);
    for (size_t i = 0; i < m && !rc; i++)
        for (size_t k = 0; k < w[i]->n_ops && !rc; k++)
            rc = etcd_txn_get(t, ETCD_SUCCESS, w[i]->ops[k]->key, w[i]->ops[k]->key_len,
                              w[i]->fence_rev - 1);
    if (!rc)
        rc = step_txn(q, parent, t, &resp, err);
    etcd_txn_free(t);
    if (rc)
        return rc;
    for (size_t i = 0; i < m && !rc; i++) {
        struct batch *b = w[i];
        struct prev_val *p = hp_calloc(b->n_ops ? b->n_ops : 1, sizeof(*p));

        if (!p) {
            rc = HP_ERR_NOMEM;
            op += b->n_ops;
            continue;
        }
        for (size_t k = 0; k < b->n_ops && !rc; k++, op++) {
            const struct etcd_kv *kv = first_kv(&resp, op);

            if (!kv)
                continue;
            p[k].exists = 1;
            p[k].len = kv->value_len;
            p[k].value = hp_malloc(kv->value_len + 1);
            if (!p[k].value)
                rc = HP_ERR_NOMEM;
            else if (kv->value_len)
                memcpy(p[k].value, kv->value, kv->value_len);
        }
        if (rc) {
            prev_free(p, b->n_ops);
            break;
        }
        b->prev = p;
    }
    etcd_txn_resp_release(&resp);
    return rc;
}

/* step_read_prev: the values before every late-applied batch (as many as fit one txn). A
 * compacted revision fails a whole txn, so a group that meets one is read batch by batch: the
 * batch whose history is gone stays COMMITTED (true, exactly once, and nothing else was
 * reported before, so it is no phantom). */
static hp_rc step_read_prev(struct batch_queue *q, struct batch **g, size_t n,
                            struct hp_ctx *parent, struct hp_err *err)
{
    struct batch **w = hp_calloc(n, sizeof(*w));
    size_t m = 0, keys = 0;
    hp_rc rc;

    if (!w)
        return HP_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        struct batch *b = g[i];

        if (b->final || !b->fence_rev || b->prev)
            continue;
        if (m && keys + b->n_ops > q->cfg.max_txn_ops)
            continue; /* the next round */
        w[m++] = b;
        keys += b->n_ops;
    }
    rc = m ? read_prev(q, w, m, parent, err) : HP_OK;
    for (size_t i = 0; rc == HP_ERR_GONE && m > 1 && i < m; i++) {
        rc = read_prev(q, &w[i], 1, parent, err);
        if (rc == HP_ERR_GONE) {
            finish(w[i], BATCH_COMMITTED, w[i]->fence_rev,
                   "committed at %" PRId64 " after its deadline; could not be undone (history "
                   "compacted)",
                   w[i]->fence_rev);
            rc = i + 1 < m ? HP_ERR_GONE : HP_OK; /* go on with the next one */
        }
    }
    if (rc == HP_ERR_GONE && m == 1) {
        finish(w[0], BATCH_COMMITTED, w[0]->fence_rev,
               "committed at %" PRId64 " after its deadline; could not be undone (history "
               "compacted)",
               w[0]->fence_rev);
        rc = HP_OK;
    }
    hp_free(w);
    return rc;
}

/* undo_txn: the undo of one batch: if its fence still says committed, per key, if the key
 * still holds the batch's write (mod_revision == fence_rev), put back the value before it or
 * delete it; and mark the fence rolled_back. Failure branch: read the fence. */
static hp_rc undo_txn(struct batch_queue *q, const struct batch *b, int64_t lease,
                      struct etcd_txn **out)
{
    struct etcd_txn *t = NULL;
    hp_rc rc;
    size_t i;

    rc = etcd_txn_new(&t);
    if (!rc)
        rc = etcd_txn_compare_value(t, b->fence_key, b->fence_len, ETCD_CMP_EQUAL, "committed", 9);
    for (i = 0; i < b->n_ops && !rc; i++) {
        const struct batch_write *w = b->ops[i];
        const struct prev_val *p = &b->prev[i];
        struct etcd_txn *k = NULL;

        rc = etcd_txn_new(&k);
        if (!rc)
            rc = etcd_txn_compare_int(k, w->key, w->key_len, ETCD_CMP_MOD_REVISION, ETCD_CMP_EQUAL,
                                      b->fence_rev);
        if (!rc)
            rc = p->exists ? etcd_txn_put(k, ETCD_SUCCESS, w->key, w->key_len, p->value, p->len, 0)
                           : etcd_txn_delete(k, ETCD_SUCCESS, w->key, w->key_len, false);
        if (rc) {
            etcd_txn_free(k);
            break;
        }
        rc = etcd_txn_nest(t, ETCD_SUCCESS, k);
    }
    if (!rc)
        rc = etcd_txn_put(t, ETCD_SUCCESS, b->fence_key, b->fence_len, "rolled_back", 11, lease);
    if (!rc)
        rc = etcd_txn_get(t, ETCD_FAILURE, b->fence_key, b->fence_len, 0);
    if (rc) {
        etcd_txn_free(t);
        return rc;
    }
    (void)q;
    *out = t;
    return HP_OK;
}

/* step_undo: one txn undoes every prepared batch whose keys are disjoint from the others' (the
 * server refuses a key written twice in one txn) and that fits the request limits; each batch
 * is a nested txn guarded by its own fence, so it is undone at most once. */
static hp_rc step_undo(struct batch_queue *q, struct batch **g, size_t n, struct hp_ctx *parent,
                       struct hp_err *err)
{
    struct batch **w = hp_calloc(n, sizeof(*w));
    struct resolve_keys *c = hp_calloc(n, sizeof(*c));
    unsigned char *chosen = hp_calloc(n, 1);
    struct etcd_txn *t = NULL;
    struct etcd_txn_resp resp;
    size_t m = 0, in = 0;
    int64_t lease;
    hp_rc rc;

    if (!w || !c || !chosen) {
        rc = HP_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (!g[i]->final && g[i]->prev) {
            c[m].ops = g[i]->ops;
            c[m].n = g[i]->n_ops;
            w[m++] = g[i];
        }
    rc = HP_OK;
    if (!m)
        goto out;
    (void)resolve_pick_disjoint(c, m, q->cfg.max_txn_ops, 4096, chosen);
    pthread_mutex_lock(&q->lock);
    lease = q->lease;
    pthread_mutex_unlock(&q->lock);
    rc = etcd_txn_new(&t);
    for (size_t i = 0; i < m && !rc; i++) {
        struct etcd_txn *sub = NULL;

        if (!chosen[i])
            continue;
        rc = undo_txn(q, w[i], lease, &sub);
        if (rc)
            break;
        if (in && etcd_txn_bytes(t) + etcd_txn_bytes(sub) + 64 > q->cfg.max_txn_bytes) {
            etcd_txn_free(sub);
            chosen[i] = 0; /* the next round */
            continue;
        }
        rc = etcd_txn_nest(t, ETCD_SUCCESS, sub);
        in++;
    }
    for (size_t i = 0, j = 0; !rc && i < m; i++)
        if (chosen[i])
            w[j++] = w[i];
    if (!rc)
        rc = step_txn(q, parent, t, &resp, err);
    if (rc)
        goto out;
    for (size_t i = 0; i < in; i++) {
        struct batch *b = w[i];
        const struct etcd_txn_resp *sr =
            i < resp.n && resp.ops[i].type == ETCD_OP_TXN ? resp.ops[i].txn : NULL;
        const struct etcd_kv *f = sr && !sr->succeeded ? first_kv(sr, 0) : NULL;

        if (sr && sr->succeeded)
            finish(b, BATCH_ROLLED_BACK, 0,
                   "deadline passed; applied late at %" PRId64 " and undone at %" PRId64,
                   b->fence_rev, resp.revision);
        else if (f && f->value_len == 11 && !memcmp(f->value, "rolled_back", 11))
            /* an earlier undo of ours whose answer was lost already did it */
            finish(b, BATCH_ROLLED_BACK, 0,
                   "deadline passed; applied late at %" PRId64 " and undone at %" PRId64,
                   b->fence_rev, f->mod_revision);
        else
            rc = hp_err_set(err, HP_ERR_INTERNAL, "fence of batch %s changed unexpectedly", b->id);
    }
    etcd_txn_resp_release(&resp);
out:
    etcd_txn_free(t);
    hp_free(w);
    hp_free(c);
    hp_free(chosen);
    return rc;
}

/* resolve_round: take the group as far as etcd lets it; each batch ends final (b->final) or at
 * the step it reached. Returns the first step's error (the group is retried later), HP_OK
 * when every batch is final. */
static hp_rc resolve_round(struct batch_queue *q, struct batch **g, size_t n, struct hp_ctx *parent,
                           struct hp_err *err)
{
    hp_rc rc;

    pthread_mutex_lock(&q->lock);
    q->st.resolve_rounds++;
    pthread_mutex_unlock(&q->lock);
    rc = step_fence_epoch(q, g, n, parent, err);
    if (!rc)
        rc = step_read_fences(q, g, n, parent, err);
    if (!rc)
        rc = step_read_prev(q, g, n, parent, err);
    if (!rc)
        rc = step_undo(q, g, n, parent, err);
    /* HP_OK with a batch not final: the limits of one txn left it for the next round */
    return rc;
}

/* journal_batches: the batches of g not yet journaled nor final, to the journal in one
 * grouped write (batch_journal_write_all); their journaled flags set. No lock held. */
static void journal_batches(struct batch_queue *q, struct batch **g, size_t n)
{
    struct batch_journal_item *items;
    struct batch **which;
    bool *written;
    size_t i, k = 0;

    if (!q->state_dir || !n)
        return;
    items = hp_calloc(n, sizeof(*items));
    which = hp_calloc(n, sizeof(*which));
    written = hp_calloc(n, sizeof(*written));
    for (i = 0; items && which && written && i < n; i++) {
        if (g[i]->journaled || g[i]->final)
            continue;
        items[k] = (struct batch_journal_item){g[i]->id, g[i]->epoch, g[i]->ops, g[i]->n_ops};
        which[k++] = g[i];
    }
    if (k) /* a batch not written stays unjournaled: the next round or the stop tries again */
        batch_journal_write_all(q->state_dir, q->writer, items, k, written);
    for (i = 0; i < k; i++)
        which[i]->journaled = written[i];
    hp_free(items);
    hp_free(which);
    hp_free(written);
}

/* requeue: a batch not final after a round goes back to the list, journaled, with back-off
 * (none after a step that timed out: its budget has grown already). Caller holds q->lock. */
static void requeue(struct batch_queue *q, struct batch *b, hp_rc rc)
{
    if (!b->backoff_ms) {
        q->st.unresolved++;
        b->backoff_ms = 100;
    } else {
        b->backoff_ms =
            b->backoff_ms * 2 > RESOLVE_BACKOFF_MAX_MS ? RESOLVE_BACKOFF_MAX_MS : b->backoff_ms * 2;
    }
    /* a step that timed out has waited its budget already; a group cut by one txn's limits
     * goes on at once; a quick refusal (etcd down) backs off */
    b->retry_at_ns =
        hp_now_ns() + (rc == HP_OK || rc == HP_ERR_TIMEOUT || rc == HP_ERR_UNKNOWN_OUTCOME
                           ? 0
                           : b->backoff_ms * 1000000);
    b->next = q->resolve_head;
    q->resolve_head = b;
    pthread_cond_broadcast(&q->resolve_wake); /* its retry time may be before theirs */
}

/* stagger_wait: STAGGER: rounds start at least a 16th of a round's duration apart (unless a full
 * group is due), so the resolvers are not all taken at once by the first few batches while the
 * rest wait a whole round: a batch due now waits at most that 16th, or until a resolver is free,
 * then its own round. true when it waited (caller holds q->lock). */
static bool stagger_wait(struct batch_queue *q, int64_t now, size_t max_group)
{
    size_t due = 0;
    int64_t stagger = RESOLVE_ROUND_TRIPS * q->step_ns / RESOLVERS;

    for (struct batch *b = q->resolve_head; b && due < max_group; b = b->next)
        due += b->retry_at_ns <= now;
    if (due && due < max_group && now < q->round_ns + stagger) {
        timed_wait_on(q, &q->resolve_wake, q->round_ns + stagger);
        return true;
    }
    return false;
}

/* take_due: move the batches due at now (at most max_group) from the resolve list into g; *next:
 * when the next one not taken is due (caller holds q->lock) */
static size_t take_due(struct batch_queue *q, struct batch **g, size_t max_group, int64_t now,
                       int64_t *next)
{
    struct batch **pp;
    size_t n = 0;

    for (pp = &q->resolve_head; *pp && g && n < max_group;) {
        if ((*pp)->retry_at_ns <= now) {
            struct batch *b = *pp;

            *pp = b->next;
            b->next = NULL;
            g[n++] = b;
            continue;
        }
        if ((*pp)->retry_at_ns < *next)
            *next = (*pp)->retry_at_ns;
        pp = &(*pp)->next;
    }
    return n;
}

/* renew_lease: a new fence lease, as one resolution step (caller does not hold q->lock) */
static void renew_lease(struct batch_queue *q, struct hp_err *err)
{
    struct hp_ctx *lctx = NULL;
    int64_t budget, t0;

    if (!step_begin(q, NULL, &lctx, &budget, &t0))
        step_end(q, lctx, budget, t0, ensure_lease(q, lctx, err));
}

/* after_round: complete the batches of g[0..n) the round (rc) resolved; journal and requeue the
 * others (etcd unreachable or slow: they stay unresolved). Caller does not hold q->lock. */
static void after_round(struct batch_queue *q, struct batch **g, size_t n, hp_rc rc)
{
    journal_batches(q, g, n); /* those not final, in one grouped write */
    for (size_t i = 0; i < n; i++) {
        struct batch *b = g[i];

        if (b->final) {
            pthread_mutex_lock(&q->lock);
            if (b->backoff_ms)
                q->st.unresolved--;
            pthread_mutex_unlock(&q->lock);
            complete(q, b, b->outcome, b->final_rev, HP_ERR_TIMEOUT, b->reason);
            continue;
        }
        pthread_mutex_lock(&q->lock);
        requeue(q, b, rc);
        pthread_mutex_unlock(&q->lock);
    }
}

static void *resolver_main(void *arg)
{
    struct batch_queue *q = arg;
    size_t max_group = q->cfg.max_txn_ops - 1;
    struct batch **g = hp_calloc(max_group, sizeof(*g));

    pthread_mutex_lock(&q->lock);
    while (!q->stopping) {
        int64_t now = hp_now_ns(), next = now + 1000000000LL;
        struct hp_err err = {0};
        size_t n;
        hp_rc rc;

        if (stagger_wait(q, now, max_group))
            continue;
        n = take_due(q, g, max_group, now, &next);
        if (!n) {
            /* rotate the fence lease in the background */
            if ((!q->lease || now - q->lease_ns > q->cfg.fence_ttl_s * 500000000LL) &&
                now - q->lease_try_ns > 1000000000LL) {
                q->lease_try_ns = now;
                pthread_mutex_unlock(&q->lock);
                renew_lease(q, &err);
                pthread_mutex_lock(&q->lock);
                continue;
            }
            timed_wait_on(q, &q->resolve_wake, next);
            continue;
        }
        q->round_ns = now;
        pthread_mutex_unlock(&q->lock);
        /* journaled before any etcd call: a kill -9 or a stop loses none of them, and a stop
         * has only the batches that timed out last to write */
        journal_batches(q, g, n);
        rc = resolve_round(q, g, n, NULL, &err);
        if (rc == HP_ERR_NOTFOUND) { /* the fence lease is gone: take a new one next time */
            pthread_mutex_lock(&q->lock);
            q->lease = 0;
            q->lease_ns = 0;
            pthread_mutex_unlock(&q->lock);
            renew_lease(q, &err);
        }
        after_round(q, g, n, rc);
        pthread_mutex_lock(&q->lock);
    }
    pthread_mutex_unlock(&q->lock);
    hp_free(g);
    return NULL;
}

/* ---- close, free, stats ---- */

hp_rc batch_queue_close(struct batch_queue *q, struct hp_ctx *ctx)
{
    hp_rc rc = HP_OK;

    pthread_mutex_lock(&q->lock);
    q->closing = 1;
    pthread_cond_broadcast(&q->wake);
    while (q->outstanding) {
        int64_t until = hp_now_ns() + 50000000;

        rc = hp_ctx_err(ctx);
        if (rc)
            break;
        if (hp_ctx_deadline_ns(ctx) < until)
            until = hp_ctx_deadline_ns(ctx);
        timed_wait_on(q, &q->drained, until);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void batch_queue_free(struct batch_queue *q)
{
    struct record *r;
    struct batch *b;
    unsigned i;

    if (!q)
        return;
    if (q->threads_started) {
        pthread_mutex_lock(&q->lock);
        q->stopping = 1;
        q->closing = 1;
        pthread_cond_broadcast(&q->wake);
        pthread_cond_broadcast(&q->send_wake);
        pthread_cond_broadcast(&q->resolve_wake);
        pthread_mutex_unlock(&q->lock);
        /* every call a queue thread makes ends now (within the client's slack, G4) */
        hp_ctx_cancel(q->stop);
        pthread_join(q->flusher, NULL);
        for (i = 0; i < q->n_resolvers; i++)
            pthread_join(q->resolvers[i], NULL);
        for (i = 0; i < q->n_senders; i++)
            pthread_join(q->senders[i], NULL);
    }
    /* rule R6: whatever is left gets its one callback */
    while ((r = q->pend_head)) {
        q->pend_head = r->next;
        fail_record(q, r, HP_ERR_CANCELED, "the batch queue was stopped before it was sent");
    }
    while ((b = q->send_head)) {
        q->send_head = b->next;
        complete(q, b, BATCH_FAILED, 0, HP_ERR_CANCELED,
                 "the batch queue was stopped before it was sent");
    }
    if (q->state_dir && q->resolve_head) { /* the journal: one grouped write for all of them */
        struct batch **all;
        size_t n = 0, k = 0;

        for (b = q->resolve_head; b; b = b->next)
            n++;
        all = hp_calloc(n, sizeof(*all));
        for (b = q->resolve_head; all && b; b = b->next)
            all[k++] = b;
        journal_batches(q, all, k); /* out of memory: none (they end unresolved all the same) */
        hp_free(all);
    }
    while ((b = q->resolve_head)) {
        q->resolve_head = b->next;
        b->journaled = 0; /* keep the journal file for the next start */
        complete(q, b, BATCH_UNRESOLVED, 0, HP_ERR_UNKNOWN_OUTCOME,
                 "stopped before etcd could be reached to resolve it; outcome unknown");
    }
    hp_ctx_free(q->stop);
    hp_free(q->senders);
    hp_free(q->resolvers);
    hp_free(q->prefix);
    hp_free(q->writer);
    hp_free(q->epoch_key);
    hp_free(q->fence_prefix);
    hp_free(q->state_dir);
    pthread_cond_destroy(&q->wake);
    pthread_cond_destroy(&q->drained);
    pthread_cond_destroy(&q->send_wake);
    pthread_cond_destroy(&q->resolve_wake);
    pthread_mutex_destroy(&q->lock);
    prom_histogram_release(&q->txn_seconds);
    prom_histogram_release(&q->batch_ops);
    hp_free(q);
}

void batch_queue_stats(struct batch_queue *q, struct batch_stats *out)
{
    pthread_mutex_lock(&q->lock);
    *out = q->st;
    out->queued = q->pending;
    out->inflight = q->inflight;
    out->limit = limiter_admit(q);
    out->epoch = q->epoch;
    out->resolve_budget_ms = q->budget_ms;
    pthread_mutex_unlock(&q->lock);
}

void batch_queue_metrics(struct batch_queue *q, struct prom_writer *w)
{
    prom_writer_family(w, "hostpatrol_etcd_txn_duration_seconds", "histogram",
                       "Duration of the etcd txns of result batches, any outcome.");
    prom_writer_histogram(w, "hostpatrol_etcd_txn_duration_seconds", NULL, &q->txn_seconds);
    prom_writer_family(w, "hostpatrol_etcd_batch_ops", "histogram",
                       "Writes (distinct keys) per etcd txn.");
    prom_writer_histogram(w, "hostpatrol_etcd_batch_ops", NULL, &q->batch_ops);
}
