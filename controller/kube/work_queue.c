/* work_queue.c - reconcile work queue (see include/hostpatrol/work_queue.h). */
#include "hostpatrol/work_queue.h"

#include <jansson.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/prom_histogram.h"
#include "hostpatrol/prom_writer.h"

struct item {
    char *key;
    int64_t added_ns; /* when it became ready (for the wait histogram) */
    struct item *next;
};

struct delayed {
    char *key;
    int64_t at_ns;
};

struct work_queue {
    struct work_queue_config cfg;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;
    struct item *head, *tail; /* ready FIFO */
    size_t len;
    json_t *dirty;        /* keys queued (set) */
    json_t *processing;   /* keys being processed (set) */
    json_t *failures;     /* key -> integer */
    struct delayed *heap; /* min-heap on at_ns */
    size_t n_heap, cap_heap;
    double tokens;
    int64_t tokens_ns;
    int shutting_down;
    uint64_t adds, retries;
    struct prom_histogram wait; /* own lock */
};

hp_rc work_queue_new(const struct work_queue_config *cfg, struct work_queue **out)
{
    struct work_queue *q = hp_calloc(1, sizeof(*q));
    pthread_condattr_t a;

    *out = NULL;
    if (!q)
        return HP_ERR_NOMEM;
    q->cfg = cfg ? *cfg : (struct work_queue_config){0};
    if (q->cfg.base_delay_ms <= 0)
        q->cfg.base_delay_ms = 5;
    if (q->cfg.max_delay_ms <= 0)
        q->cfg.max_delay_ms = 1000000;
    if (q->cfg.qps <= 0)
        q->cfg.qps = 10;
    if (q->cfg.burst <= 0)
        q->cfg.burst = 100;
    q->tokens = q->cfg.burst;
    prom_histogram_init(&q->wait, prom_buckets_seconds, 12);
    q->tokens_ns = hp_now_ns();
    q->dirty = json_object();
    q->processing = json_object();
    q->failures = json_object();
    if (!q->dirty || !q->processing || !q->failures) {
        json_decref(q->dirty);
        json_decref(q->processing);
        json_decref(q->failures);
        hp_free(q);
        return HP_ERR_NOMEM;
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &a);
    pthread_condattr_destroy(&a);
    *out = q;
    return HP_OK;
}

void work_queue_free(struct work_queue *q)
{
    if (!q)
        return;
    while (q->head) {
        struct item *i = q->head;

        q->head = i->next;
        hp_free(i->key);
        hp_free(i);
    }
    for (size_t i = 0; i < q->n_heap; i++)
        hp_free(q->heap[i].key);
    hp_free(q->heap);
    json_decref(q->dirty);
    json_decref(q->processing);
    json_decref(q->failures);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    prom_histogram_release(&q->wait);
    hp_free(q);
}

/* add_locked: client-go's Add */
static void add_locked(struct work_queue *q, const char *key)
{
    struct item *i;

    if (q->shutting_down || json_object_get(q->dirty, key))
        return;
    if (json_object_set_new(q->dirty, key, json_true()))
        return; /* out of memory: the key is lost; the next event or resync adds it again */
    if (json_object_get(q->processing, key))
        return; /* runs again after done */
    i = hp_calloc(1, sizeof(*i));
    if (i)
        i->key = hp_strdup(key);
    if (!i || !i->key) {
        hp_free(i);
        json_object_del(q->dirty, key);
        return;
    }
    i->added_ns = hp_now_ns();
    if (q->tail)
        q->tail->next = i;
    else
        q->head = i;
    q->tail = i;
    q->len++;
    q->adds++;
    pthread_cond_signal(&q->cond);
}

void work_queue_add(struct work_queue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    add_locked(q, key);
    pthread_mutex_unlock(&q->lock);
}

static void heap_swap(struct delayed *h, size_t a, size_t b)
{
    struct delayed t = h[a];

    h[a] = h[b];
    h[b] = t;
}

void work_queue_add_after(struct work_queue *q, const char *key, int64_t delay_ms)
{
    size_t i;

    if (delay_ms <= 0) {
        work_queue_add(q, key);
        return;
    }
    pthread_mutex_lock(&q->lock);
    if (q->shutting_down)
        goto out;
    if (q->n_heap == q->cap_heap) {
        size_t cap = q->cap_heap ? q->cap_heap * 2 : 16;
        struct delayed *h = hp_realloc(q->heap, cap * sizeof(*h));

        if (!h)
            goto out;
        q->heap = h;
        q->cap_heap = cap;
    }
    q->heap[q->n_heap].key = hp_strdup(key);
    if (!q->heap[q->n_heap].key)
        goto out;
    q->heap[q->n_heap].at_ns = hp_now_ns() + delay_ms * 1000000;
    for (i = q->n_heap++; i && q->heap[(i - 1) / 2].at_ns > q->heap[i].at_ns; i = (i - 1) / 2)
        heap_swap(q->heap, i, (i - 1) / 2);
    pthread_cond_broadcast(&q->cond); /* a waiter may need an earlier wake-up */
out:
    pthread_mutex_unlock(&q->lock);
}

/* promote_due: move delayed keys whose time has come to the ready queue (lock held) */
static int64_t promote_due(struct work_queue *q)
{
    int64_t now = hp_now_ns();

    while (q->n_heap && q->heap[0].at_ns <= now) {
        char *key = q->heap[0].key;
        size_t i = 0;

        q->heap[0] = q->heap[--q->n_heap];
        for (;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;

            if (l < q->n_heap && q->heap[l].at_ns < q->heap[m].at_ns)
                m = l;
            if (r < q->n_heap && q->heap[r].at_ns < q->heap[m].at_ns)
                m = r;
            if (m == i)
                break;
            heap_swap(q->heap, i, m);
            i = m;
        }
        add_locked(q, key);
        hp_free(key);
    }
    return q->n_heap ? q->heap[0].at_ns : INT64_MAX;
}

/* item_backoff: count one more failure of key; its backoff (ms). Under q->lock. */
static int64_t item_backoff(struct work_queue *q, const char *key)
{
    json_int_t fails = json_integer_value(json_object_get(q->failures, key));
    int64_t item_ms = q->cfg.base_delay_ms;

    q->retries++;
    json_object_set_new(q->failures, key, json_integer(fails + 1));
    for (json_int_t i = 0; i < fails && item_ms < q->cfg.max_delay_ms; i++)
        item_ms *= 2;
    return item_ms > q->cfg.max_delay_ms ? q->cfg.max_delay_ms : item_ms;
}

int64_t work_queue_add_rate_limited(struct work_queue *q, const char *key)
{
    int64_t now = hp_now_ns(), item_ms, bucket_ms = 0, delay;

    pthread_mutex_lock(&q->lock);
    item_ms = item_backoff(q, key);
    /* token bucket: refill, then reserve one token (may go negative: a wait) */
    q->tokens += (double)(now - q->tokens_ns) / 1e9 * q->cfg.qps;
    if (q->tokens > q->cfg.burst)
        q->tokens = q->cfg.burst;
    q->tokens_ns = now;
    q->tokens -= 1;
    if (q->tokens < 0)
        bucket_ms = (int64_t)(-q->tokens / q->cfg.qps * 1000 + 0.5);
    pthread_mutex_unlock(&q->lock);
    delay = item_ms > bucket_ms ? item_ms : bucket_ms;
    work_queue_add_after(q, key, delay);
    return delay;
}

int64_t work_queue_add_backoff(struct work_queue *q, const char *key, int64_t max_ms)
{
    int64_t delay;

    pthread_mutex_lock(&q->lock);
    delay = item_backoff(q, key);
    pthread_mutex_unlock(&q->lock);
    if (delay > max_ms)
        delay = max_ms;
    work_queue_add_after(q, key, delay);
    return delay;
}

void work_queue_forget(struct work_queue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    json_object_del(q->failures, key);
    pthread_mutex_unlock(&q->lock);
}

int work_queue_failures(struct work_queue *q, const char *key)
{
    int n;

    pthread_mutex_lock(&q->lock);
    n = (int)json_integer_value(json_object_get(q->failures, key));
    pthread_mutex_unlock(&q->lock);
    return n;
}

hp_rc work_queue_get(struct work_queue *q, struct hp_ctx *ctx, char **key)
{
    hp_rc rc = HP_OK;

    *key = NULL;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        int64_t next = promote_due(q), until;
        struct timespec ts;

        if (q->head) {
            struct item *i = q->head;

            q->head = i->next;
            if (!q->head)
                q->tail = NULL;
            q->len--;
            json_object_del(q->dirty, i->key);
            json_object_set_new(q->processing, i->key, json_true());
            prom_histogram_observe(&q->wait, (double)(hp_now_ns() - i->added_ns) / 1e9);
            *key = i->key;
            hp_free(i);
            break;
        }
        if (q->shutting_down) {
            rc = HP_ERR_CANCELED;
            break;
        }
        rc = hp_ctx_err(ctx);
        if (rc)
            break;
        /* wake for: a new key (signal), the next delayed key, the deadline, or a cancel
         * (noticed within 100 ms) */
        until = hp_now_ns() + 100000000;
        if (next < until)
            until = next;
        if (hp_ctx_deadline_ns(ctx) < until)
            until = hp_ctx_deadline_ns(ctx);
        ts.tv_sec = until / 1000000000;
        ts.tv_nsec = until % 1000000000;
        pthread_cond_timedwait(&q->cond, &q->lock, &ts);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void work_queue_done(struct work_queue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    json_object_del(q->processing, key);
    if (json_object_get(q->dirty, key)) {
        /* added while processing: queue it now (add_locked would see it dirty and stop) */
        json_object_del(q->dirty, key);
        add_locked(q, key); /* does nothing once shutting down */
    }
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

hp_rc work_queue_shutdown(struct work_queue *q, struct hp_ctx *drain)
{
    hp_rc rc = HP_OK;

    pthread_mutex_lock(&q->lock);
    q->shutting_down = 1;
    for (size_t i = 0; i < q->n_heap; i++)
        hp_free(q->heap[i].key);
    q->n_heap = 0; /* delayed keys are dropped */
    pthread_cond_broadcast(&q->cond);
    while (drain && (q->head || json_object_size(q->processing))) {
        int64_t until = hp_now_ns() + 50000000;
        struct timespec ts;

        rc = hp_ctx_err(drain);
        if (rc)
            break;
        if (hp_ctx_deadline_ns(drain) < until)
            until = hp_ctx_deadline_ns(drain);
        ts.tv_sec = until / 1000000000;
        ts.tv_nsec = until % 1000000000;
        pthread_cond_timedwait(&q->cond, &q->lock, &ts);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

size_t work_queue_len(struct work_queue *q)
{
    size_t n;

    pthread_mutex_lock(&q->lock);
    promote_due(q);
    n = q->len;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void work_queue_metrics(struct work_queue *q, struct prom_writer *w)
{
    uint64_t adds, retries;
    size_t depth;

    pthread_mutex_lock(&q->lock);
    adds = q->adds;
    retries = q->retries;
    depth = q->len;
    pthread_mutex_unlock(&q->lock);
    prom_writer_family(w, "hostpatrol_workqueue_depth", "gauge", "Keys ready to be reconciled.");
    prom_writer_sample(w, "hostpatrol_workqueue_depth", NULL, (double)depth);
    prom_writer_family(w, "hostpatrol_workqueue_adds_total", "counter",
                       "Keys added to the ready queue.");
    prom_writer_sample(w, "hostpatrol_workqueue_adds_total", NULL, (double)adds);
    prom_writer_family(w, "hostpatrol_workqueue_retries_total", "counter",
                       "Keys requeued with backoff after a failed reconcile.");
    prom_writer_sample(w, "hostpatrol_workqueue_retries_total", NULL, (double)retries);
    prom_writer_family(w, "hostpatrol_workqueue_wait_seconds", "histogram",
                       "Time a key waited in the ready queue before a worker took it.");
    prom_writer_histogram(w, "hostpatrol_workqueue_wait_seconds", NULL, &q->wait);
}
