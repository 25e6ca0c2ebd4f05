/* etcd_bench.c - `hostpatrol bench etcd` (see include/hostpatrol/etcd_bench.h). */
#include "hostpatrol/etcd_bench.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/batch_queue.h"

enum { ST_PENDING = 0 };

struct run;

struct rec {
    struct run *run;
    int64_t enq_ns, lat_ns, rev;
    int outcome;  /* ST_PENDING or 1 + enum batch_outcome */
    int enqueued; /* the queue accepted it (its callback will run) */
    size_t span;  /* the first result of a record: the results the record carries */
};

/* a batch as verified: outcome, revision and its keys (owned strings) */
struct vbatch {
    char id[64];
    enum batch_outcome o;
    int64_t rev;
    size_t expected, n, cap;
    char **keys;
    char reason[160]; /* the queue's reason for the outcome (outcome lines only) */
};

struct run {
    const struct etcd_bench_config *cfg;
    const char *prefix;
    char run_id[40];
    pthread_mutex_t lock; /* guards everything below */
    bool keep_keys;       /* each batch's keys are kept: --verify or --outcomes wants them */
    struct rec *recs;
    struct vbatch *batches; /* indexed by the queue's batch sequence number */
    size_t n_batches;
    size_t used_batches;  /* 1 + the largest sequence number noted: the part of batches in use */
    struct vbatch *loose; /* records that never joined a batch, and naive puts */
    size_t n_loose, cap_loose;
    size_t done;
    FILE *out;
    atomic_size_t next; /* naive: next index */
    struct etcd_client *etcd;
};

/* index_text: i as "%08zu" writes it (at least 8 digits) into out (room for 21); its length.
 * The generator writes two per result: snprintf's parsing was ~3% of the client's CPU. */
static size_t index_text(size_t i, char *out)
{
    char t[24];
    size_t k = 0;

    do {
        t[k++] = (char)('0' + i % 10);
        i /= 10;
    } while (i || k < 8);
    for (size_t j = 0; j < k; j++)
        out[j] = t[k - 1 - j];
    return k;
}

/* key_of: "<prefix><run>/<i>" into buf (n bytes; truncated as snprintf would) */
static void key_of(const struct run *r, size_t i, char *buf, size_t n)
{
    size_t lp = strlen(r->prefix), lr = strlen(r->run_id), k;

    if (lp + lr + 1 + 21 >= n) {
        snprintf(buf, n, "%s%s/%08zu", r->prefix, r->run_id, i);
        return;
    }
    memcpy(buf, r->prefix, lp);
    memcpy(buf + lp, r->run_id, lr);
    buf[lp + lr] = '/';
    k = index_text(i, buf + lp + lr + 1);
    buf[lp + lr + 1 + k] = '\0';
}

/* value_of: "<run>/<i>/" then 'x' up to value_bytes (owned) */
static char *value_of(const struct run *r, size_t i, size_t *len)
{
    size_t want = r->cfg->value_bytes, lr = strlen(r->run_id), head;
    char *v = hp_malloc((want > lr + 23 ? want : lr + 23) + 1);

    if (!v)
        return NULL;
    memcpy(v, r->run_id, lr);
    v[lr] = '/';
    head = lr + 1 + index_text(i, v + lr + 1);
    v[head++] = '/';
    if (want > head)
        memset(v + head, 'x', want - head);
    *len = want > head ? want : head;
    v[*len] = '\0';
    return v;
}

static void vbatch_release(struct vbatch *b)
{
    for (size_t i = 0; b->keys && i < b->n; i++) /* no keys kept: n counts only */
        hp_free(b->keys[i]);
    hp_free(b->keys);
    memset(b, 0, sizeof(*b));
}

static int vbatch_add_key(struct vbatch *b, const char *key)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        char **k = hp_realloc(b->keys, cap * sizeof(*k));

        if (!k)
            return -1;
        b->keys = k;
        b->cap = cap;
    }
    b->keys[b->n] = hp_strdup(key);
    return b->keys[b->n] ? (int)++b->n - 1 : -1;
}

static void write_line(struct run *r, const struct vbatch *b)
{
    json_t *keys, *line;

    if (!r->out)
        return;
    keys = json_array();
    for (size_t i = 0; keys && i < b->n; i++)
        json_array_append_new(keys, json_string(b->keys[i]));
    line =
        json_pack("{s:s, s:s, s:I, s:s, s:o}", "batch", b->id, "outcome", batch_outcome_name(b->o),
                  "revision", (json_int_t)b->rev, "reason", b->reason, "keys", keys);
    if (line) {
        json_dumpf(line, r->out, JSON_COMPACT);
        fputc('\n', r->out);
        fflush(r->out);
    }
    json_decref(line);
}

static struct vbatch *loose_batch(struct run *r)
{
    if (r->n_loose == r->cap_loose) {
        size_t cap = r->cap_loose ? r->cap_loose * 2 : 64;
        struct vbatch *l = hp_realloc(r->loose, cap * sizeof(*l));

        if (!l)
            return NULL;
        r->loose = l;
        r->cap_loose = cap;
    }
    memset(&r->loose[r->n_loose], 0, sizeof(r->loose[0]));
    return &r->loose[r->n_loose++];
}

/* record the outcome of record i in batch `id` (seq >= 0) or alone (seq < 0); caller locks */
static void note(struct run *r, size_t i, const char *id, long long seq, size_t expected,
                 enum batch_outcome o, int64_t rev, const char *reason)
{
    char key[512];
    struct vbatch *b = NULL;

    if (seq >= 0 && (size_t)seq < r->n_batches) {
        b = &r->batches[seq];
        if (!b->expected) {
            snprintf(b->id, sizeof(b->id), "%s", id);
            snprintf(b->reason, sizeof(b->reason), "%s", reason ? reason : "");
            b->o = o;
            b->rev = rev;
            b->expected = expected;
        }
        if ((size_t)seq >= r->used_batches)
            r->used_batches = (size_t)seq + 1;
    } else {
        b = loose_batch(r);
        if (!b)
            return;
        snprintf(b->id, sizeof(b->id), "%s%s%zu", id[0] ? id : "unsent", id[0] ? "/" : "-", i);
        snprintf(b->reason, sizeof(b->reason), "%s", reason ? reason : "");
        b->o = o;
        b->rev = rev;
        b->expected = 1;
    }
    if (!r->keep_keys) { /* counted only */
        b->n++;
        return;
    }
    key_of(r, i, key, sizeof(key));
    vbatch_add_key(b, key);
    if (b->n == b->expected)
        write_line(r, b);
}

/* on_done: a record's outcome, for each result it carried (arg: its first result) */
static void on_done(void *arg, const struct batch_result *res)
{
    struct rec *first = arg;
    struct run *r = first->run;
    const char *dash = strrchr(res->batch_id, '-');
    long long seq = dash && res->batch_id[0] ? strtoll(dash + 1, NULL, 10) : -1;
    int64_t now = hp_now_ns();

    pthread_mutex_lock(&r->lock);
    for (size_t k = 0; k < first->span; k++) {
        struct rec *rec = first + k;

        rec->outcome = 1 + (int)res->outcome;
        rec->rev = res->revision;
        rec->lat_ns = now - rec->enq_ns;
        note(r, (size_t)(rec - r->recs), res->batch_id, seq, res->batch_writes, res->outcome,
             res->revision, res->reason);
        r->done++;
    }
    pthread_mutex_unlock(&r->lock);
}

static void *naive_writer(void *arg)
{
    struct run *r = arg;
    size_t n = r->cfg->results, i;

    while ((i = atomic_fetch_add(&r->next, 1)) < n) {
        struct rec *rec = &r->recs[i];
        struct hp_ctx *ctx = NULL;
        struct hp_err err = {0};
        char key[512], *val;
        size_t vlen = 0;
        int64_t rev = 0;
        hp_rc rc;
        enum batch_outcome o;

        key_of(r, i, key, sizeof(key));
        val = value_of(r, i, &vlen);
        rec->enq_ns = hp_now_ns();
        rc = val ? hp_ctx_new(NULL, r->cfg->deadline_ms, &ctx) : HP_ERR_NOMEM;
        if (!rc)
            rc = etcd_put(r->etcd, ctx, key, strlen(key), val, vlen, 0, &rev, &err);
        hp_ctx_free(ctx);
        hp_free(val);
        o = rc == HP_OK
                ? BATCH_COMMITTED
                : (etcd_outcome_of(rc) == ETCD_OUTCOME_UNKNOWN ? BATCH_UNRESOLVED : BATCH_FAILED);
        pthread_mutex_lock(&r->lock);
        rec->outcome = 1 + (int)o;
        rec->rev = rev;
        rec->lat_ns = hp_now_ns() - rec->enq_ns;
        note(r, i, "put", -1, 1, o, rev, rc ? hp_rc_name(rc) : "");
        r->done++;
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* ---- verification ---- */

struct stored {
    char *key, *value;
    size_t value_len;
    int64_t mod, version;
};

static int cmp_stored(const void *a, const void *b)
{
    return strcmp(((const struct stored *)a)->key, ((const struct stored *)b)->key);
}

static void stored_free(struct stored *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hp_free(s[i].key);
        hp_free(s[i].value);
    }
    hp_free(s);
}

/* load_prefix: every key under prefix, sorted by key (etcd's order) */
static hp_rc load_prefix(struct etcd_client *c, const char *prefix, struct stored **out, size_t *n,
                         struct hp_err *err)
{
    struct stored *s = NULL;
    size_t cap = 0, len = 0;
    char *start = hp_strdup(prefix), *end = NULL;
    size_t start_len = strlen(prefix), end_len = 0;
    hp_rc rc;

    *out = NULL;
    *n = 0;
    if (!start)
        return HP_ERR_NOMEM;
    rc = etcd_prefix_end(prefix, strlen(prefix), &end, &end_len);
    while (!rc) {
        struct etcd_range_req q = {.key = start,
                                   .key_len = start_len,
                                   .range_end = end,
                                   .range_end_len = end_len,
                                   .limit = 5000};
        struct etcd_range_resp r;
        struct hp_ctx *ctx = NULL;

        rc = hp_ctx_new(NULL, 30000, &ctx);
        if (!rc)
            rc = etcd_range(c, ctx, &q, &r, err);
        hp_ctx_free(ctx);
        if (rc)
            break;
        if (len + r.n > cap) {
            size_t nc = (len + r.n) * 2 + 16;
            struct stored *ns = hp_realloc(s, nc * sizeof(*s));

            if (!ns) {
                etcd_range_resp_release(&r);
                rc = HP_ERR_NOMEM;
                break;
            }
            s = ns;
            cap = nc;
        }
        for (size_t i = 0; i < r.n; i++) {
            s[len] = (struct stored){.key = r.kvs[i].key,
                                     .value = r.kvs[i].value,
                                     .value_len = r.kvs[i].value_len,
                                     .mod = r.kvs[i].mod_revision,
                                     .version = r.kvs[i].version};
            r.kvs[i].key = r.kvs[i].value = NULL;
            len++;
        }
        if (!r.more || !r.n) {
            etcd_range_resp_release(&r);
            break;
        }
        /* next page starts just after the last key */
        hp_free(start);
        start_len = strlen(s[len - 1].key) + 1;
        start = hp_malloc(start_len + 1);
        if (start) {
            memcpy(start, s[len - 1].key, start_len - 1);
            start[start_len - 1] = '\0';
            start[start_len] = '\0';
        }
        etcd_range_resp_release(&r);
        if (!start)
            rc = HP_ERR_NOMEM;
    }
    hp_free(start);
    hp_free(end);
    if (rc) {
        stored_free(s, len);
        return rc;
    }
    if (len) /* etcd returns byte order already; be sure */
        qsort(s, len, sizeof(*s), cmp_stored);
    *out = s;
    *n = len;
    return HP_OK;
}

static void violation(struct etcd_bench_report *rep, const char *fmt, ...) HP_PRINTF(2, 3);

static void violation(struct etcd_bench_report *rep, const char *fmt, ...)
{
    va_list ap;

    if (rep->violations++)
        return;
    va_start(ap, fmt);
    vsnprintf(rep->violation, sizeof(rep->violation), fmt, ap);
    va_end(ap);
}

static void verify_batches(const char *prefix, const struct stored *s, size_t ns,
                           const struct vbatch *b, size_t nb, struct etcd_bench_report *rep)
{
    size_t plen = strlen(prefix);

    for (size_t i = 0; i < nb; i++) {
        size_t present = 0;

        for (size_t k = 0; k < b[i].n; k++) {
            struct stored want = {.key = b[i].keys[k]};
            const struct stored *got = ns ? bsearch(&want, s, ns, sizeof(*s), cmp_stored) : NULL;
            const char *suffix = b[i].keys[k] + plen;

            rep->checked++;
            if (got)
                present++;
            if (b[i].o == BATCH_COMMITTED) {
                if (!got)
                    violation(rep, "lost: key %s of committed batch %s is missing", b[i].keys[k],
                              b[i].id);
                else if (got->version != 1)
                    violation(rep, "duplicate: key %s of batch %s was applied more than once",
                              b[i].keys[k], b[i].id);
                else if (got->mod != b[i].rev)
                    violation(rep, "not atomic: key %s is not at batch %s's revision", b[i].keys[k],
                              b[i].id);
                else if (got->value_len <= strlen(suffix) ||
                         strncmp(got->value, suffix, strlen(suffix)) ||
                         got->value[strlen(suffix)] != '/')
                    violation(rep, "wrong value: key %s (batch %s)", b[i].keys[k], b[i].id);
            } else if ((b[i].o == BATCH_FAILED || b[i].o == BATCH_ROLLED_BACK) && got) {
                violation(rep, "phantom: key %s of failed/rolled-back batch %s is present",
                          b[i].keys[k], b[i].id);
            }
        }
        if (b[i].o == BATCH_UNRESOLVED && present && present != b[i].n)
            violation(rep, "not atomic: unresolved batch %s is partly present (first key %s)",
                      b[i].id, b[i].n ? b[i].keys[0] : "");
    }
}

static hp_rc verify_run(struct run *r, struct etcd_bench_report *rep, struct hp_err *err)
{
    struct stored *s = NULL;
    size_t ns = 0;
    char pfx[512];
    hp_rc rc;

    snprintf(pfx, sizeof(pfx), "%s%s/", r->prefix, r->run_id);
    rc = load_prefix(r->etcd, pfx, &s, &ns, err);
    if (rc)
        return rc;
    verify_batches(r->prefix, s, ns, r->batches, r->used_batches, rep);
    verify_batches(r->prefix, s, ns, r->loose, r->n_loose, rep);
    rep->verified = true;
    stored_free(s, ns);
    return HP_OK;
}

/* ---- the run ---- */

static hp_rc check_config(const struct etcd_bench_config *c, struct hp_err *err)
{
    if (!c->results)
        return hp_err_field(err, HP_ERR_INVALID, "--results", "--results must be at least 1");
    if (c->value_bytes < 32 || c->value_bytes > (512u << 10))
        return hp_err_field(err, HP_ERR_INVALID, "--value-bytes",
                            "--value-bytes must be 32 to 524288, not %zu", c->value_bytes);
    if (!c->concurrency || c->concurrency > 256)
        return hp_err_field(err, HP_ERR_INVALID, "--concurrency",
                            "--concurrency must be 1 to 256, not %u", c->concurrency);
    if (c->deadline_ms < 1)
        return hp_err_field(err, HP_ERR_INVALID, "--deadline", "--deadline must be positive");
    if (c->txn_ops && (c->txn_ops < 2 || c->txn_ops > 100000))
        return hp_err_field(err, HP_ERR_INVALID, "--txn-ops",
                            "--txn-ops must be 2 or more (one op is the fence), not %zu",
                            c->txn_ops);
    if (c->writes_per_record > (c->txn_ops ? c->txn_ops : 128) - 1)
        return hp_err_field(err, HP_ERR_INVALID, "--writes-per-record",
                            "--writes-per-record must be at most --txn-ops - 1 (%zu), not %zu",
                            (c->txn_ops ? c->txn_ops : 128) - 1, c->writes_per_record);
    if (c->writes_per_record > 1 && (c->naive || c->rate))
        return hp_err_field(err, HP_ERR_INVALID, "--writes-per-record",
                            "--writes-per-record %zu: %s writes one result per %s",
                            c->writes_per_record, c->naive ? "--naive" : "a paced run (--rate)",
                            c->naive ? "put" : "record");
    return HP_OK;
}

static void summarize(struct run *r, struct etcd_bench_report *rep, int64_t t0, int64_t t1)
{
    int64_t *lat = hp_malloc(r->cfg->results * sizeof(*lat));
    size_t nl = 0;

    for (size_t i = 0; i < r->cfg->results; i++) {
        if (r->recs[i].outcome != ST_PENDING && (double)r->recs[i].lat_ns / 1e6 > rep->max_final_ms)
            rep->max_final_ms = (double)r->recs[i].lat_ns / 1e6;
        if (r->recs[i].outcome == ST_PENDING && !r->recs[i].enqueued && !r->cfg->naive) {
            rep->not_enqueued++;
            continue;
        }
        switch (r->recs[i].outcome - 1) {
        case BATCH_COMMITTED:
            rep->committed++;
            if (lat)
                lat[nl++] = r->recs[i].lat_ns;
            break;
        case BATCH_FAILED:
            rep->failed++;
            break;
        case BATCH_ROLLED_BACK:
            rep->rolled_back++;
            break;
        default:
            rep->unresolved++;
        }
    }
    rep->seconds = (double)(t1 - t0) / 1e9;
    if (rep->seconds > 0) {
        rep->keys_per_s = (double)rep->committed / rep->seconds;
        rep->txns_per_s = (double)rep->batches / rep->seconds;
    }
    if (lat && nl) {
        qsort(lat, nl, sizeof(*lat), cmp_i64);
        rep->p50_ms = (double)lat[(nl - 1) / 2] / 1e6;
        rep->p99_ms = (double)lat[(nl * 99 + 99) / 100 - 1] / 1e6;
    }
    hp_free(lat);
}

static hp_rc run_batch(struct run *r, struct etcd_bench_report *rep, struct hp_err *err)
{
    const struct etcd_bench_config *c = r->cfg;
    /* the queue's epoch and fence keys live under the same prefix as the data, so one role
     * scoped to that prefix is enough */
    struct batch_config bc = {.prefix = r->prefix,
                              .writer = c->writer && *c->writer ? c->writer : "bench",
                              .max_txn_ops = c->txn_ops,
                              .max_inflight = c->concurrency,
                              .min_inflight = c->min_inflight,
                              .initial_inflight = c->concurrency,
                              .p95_high_ms = c->p95_high_ms,
                              .p95_low_ms = c->p95_low_ms,
                              .state_dir = c->state_dir};
    struct batch_queue *q = NULL;
    struct batch_stats st;
    struct hp_ctx *ctx = NULL;
    /* results per context: a txn's worth (one op is the fence); 1 when paced (--rate), where
     * a txn's worth is enqueued over time and each result's deadline runs from its enqueue */
    size_t group = c->rate ? 1 : c->txn_ops > 1 ? c->txn_ops - 1 : 127;
    size_t per = c->writes_per_record ? c->writes_per_record : 1, n = 0, ctx_until = 0;
    struct batch_write *w = NULL;
    int64_t t0;
    hp_rc rc;
    size_t i;

    /* start-up budget: transient faults are retried, slow answers get a growing budget */
    rc = hp_ctx_new(c->stop, 60000, &ctx);
    if (!rc)
        rc = batch_queue_new(r->etcd, &bc, ctx, &q, err);
    hp_ctx_free(ctx);
    ctx = NULL;
    if (rc)
        return rc;
    t0 = hp_now_ns();
    /* the results of one txn's worth share a deadline (a context), as a run's results share the
     * run's in the reconciler (results_store). A record carries per results (1: a record per
     * result; a txn's worth: as results_store enqueues a run's results). Paced (--rate): one
     * result and one context per record, each result's deadline from its enqueue. */
    w = hp_calloc(per, sizeof(*w));
    if (!w)
        rc = HP_ERR_NOMEM;
    for (i = 0; i < c->results && !rc && !hp_ctx_err(c->stop); i += n) {
        struct rec *rec = &r->recs[i];
        struct batch_done_cb cb = {.done = on_done, .arg = rec};
        size_t made;

        n = c->results - i < per ? c->results - i : per;
        if (c->rate) { /* paced: result i is due i / rate seconds after the first */
            int64_t due = t0 + (int64_t)(i * 1000000000.0 / (double)c->rate);

            if (due > hp_now_ns() && hp_ctx_sleep(c->stop, (due - hp_now_ns()) / 1000000 + 1))
                break;
        }
        /* as the reconciler's results: keys and values handed over, not copied (_owned) */
        for (made = 0; made < n && !rc; made++) {
            char key[512];
            size_t vlen = 0;

            key_of(r, i + made, key, sizeof(key));
            w[made] =
                (struct batch_write){.key = hp_strdup(key), .value = value_of(r, i + made, &vlen)};
            w[made].key_len = w[made].key ? strlen(w[made].key) : 0;
            w[made].value_len = vlen;
            rec[made].run = r;
            if (!w[made].key || !w[made].value)
                rc = HP_ERR_NOMEM;
        }
        rec->span = n;
        if (!rc && i >= ctx_until) {
            hp_ctx_free(ctx);
            ctx = NULL;
            rc = hp_ctx_new(NULL, c->deadline_ms, &ctx);
            ctx_until = i + group;
        }
        while (!rc) {
            int64_t now = hp_now_ns();

            for (size_t k = 0; k < n; k++) {
                rec[k].enq_ns = now;
                rec[k].enqueued = 1;
            }
            rc = batch_queue_enqueue_owned(q, ctx, r->run_id, w, n, &cb, err);
            for (size_t k = 0; k < n; k++)
                rec[k].enqueued = rc == HP_OK;
            if (rc == HP_OK)
                made = 0; /* taken */
            if (rc != HP_ERR_FULL || hp_ctx_err(c->stop))
                break;
            rc = HP_OK; /* back-pressure: wait for room, the refusal is counted */
            {
                struct timespec ts = {0, 1000000};

                nanosleep(&ts, NULL);
            }
        }
        for (size_t k = 0; k < made; k++) {
            hp_free((void *)w[k].key);
            hp_free((void *)w[k].value);
        }
    }
    hp_free(w);
    hp_ctx_free(ctx);
    if (rc == HP_ERR_FULL) /* refused while stopping */
        rc = HP_OK;
    if (!rc)
        rc = batch_queue_close(q, c->stop);
    if (hp_ctx_err(c->stop)) { /* stopped: what is not final now is reported unresolved */
        rep->terminated = true;
        rc = HP_OK;
    }
    batch_queue_stats(q, &st);
    rep->epoch_bumps = st.epoch_bumps;
    rep->resolve_rounds = st.resolve_rounds;
    rep->step_timeouts = st.step_timeouts;
    rep->resolve_budget_ms = st.resolve_budget_ms;
    batch_queue_free(q); /* R6: what is left gets its callback now */
    rep->batches = st.batches;
    rep->rejected = st.rejected;
    rep->final_limit = st.limit;
    return rc;
}

hp_rc etcd_bench_run(const struct etcd_bench_config *cfg, struct etcd_bench_report *rep,
                     struct hp_err *err)
{
    struct run r = {.cfg = cfg,
                    .prefix = cfg->prefix && *cfg->prefix ? cfg->prefix : "/hostpatrol-bench/"};
    unsigned char rnd[4];
    int64_t t0, t1;
    hp_rc rc;

    memset(rep, 0, sizeof(*rep));
    rc = check_config(cfg, err);
    if (rc)
        return rc;
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 0, sizeof(rnd));
    snprintf(r.run_id, sizeof(r.run_id), "%lld-%02x%02x%02x%02x", (long long)time(NULL), rnd[0],
             rnd[1], rnd[2], rnd[3]);
    snprintf(rep->run_id, sizeof(rep->run_id), "%s", r.run_id);
    rep->naive = cfg->naive;
    {
        char key[512];

        key_of(&r, cfg->results - 1, key, sizeof(key)); /* the last index has the most digits */
        rep->key_bytes = strlen(key);
    }
    pthread_mutex_init(&r.lock, NULL);
    r.keep_keys = cfg->verify || cfg->outcomes_path;
    r.recs = hp_calloc(cfg->results, sizeof(*r.recs));
    /* batch sequence numbers start at 1 and never exceed the number of records */
    r.n_batches = cfg->naive ? 0 : cfg->results + 2;
    r.batches = r.n_batches ? hp_calloc(r.n_batches, sizeof(*r.batches)) : NULL;
    if (!r.recs || (r.n_batches && !r.batches)) {
        rc = HP_ERR_NOMEM;
        goto out;
    }
    if (cfg->outcomes_path) {
        r.out = fopen(cfg->outcomes_path, "w");
        if (!r.out) {
            rc = hp_err_field(err, HP_ERR_IO, "--outcomes", "cannot write %s: %s",
                              cfg->outcomes_path, strerror(errno));
            goto out;
        }
    }
    rc = etcd_client_new(&cfg->etcd, &r.etcd, err);
    if (rc)
        goto out;
    t0 = hp_now_ns();
    if (cfg->naive) {
        pthread_t *th = hp_calloc(cfg->concurrency, sizeof(*th));
        unsigned started = 0;

        if (!th) {
            rc = HP_ERR_NOMEM;
            goto out;
        }
        for (; started < cfg->concurrency; started++)
            if (pthread_create(&th[started], NULL, naive_writer, &r))
                break;
        for (unsigned k = 0; k < started; k++)
            pthread_join(th[k], NULL);
        hp_free(th);
        rep->batches = cfg->results;
    } else {
        rc = run_batch(&r, rep, err);
    }
    t1 = hp_now_ns();
    if (rc)
        goto out;
    summarize(&r, rep, t0, t1);
    if (r.etcd)
        etcd_client_grpc_stats(r.etcd, &rep->grpc);
    if (cfg->verify && !rep->terminated)
        rc = verify_run(&r, rep, err);
out:
    if (r.out)
        fclose(r.out);
    for (size_t i = 0; i < r.used_batches; i++) /* the rest was never touched */
        vbatch_release(&r.batches[i]);
    for (size_t i = 0; i < r.n_loose; i++)
        vbatch_release(&r.loose[i]);
    hp_free(r.batches);
    hp_free(r.loose);
    hp_free(r.recs);
    etcd_client_free(r.etcd);
    pthread_mutex_destroy(&r.lock);
    return rc;
}

hp_rc etcd_bench_check(const struct etcd_bench_config *cfg, const char *path,
                       struct etcd_bench_report *rep, struct hp_err *err)
{
    const char *prefix = cfg->prefix && *cfg->prefix ? cfg->prefix : "/hostpatrol-bench/";
    struct vbatch *b = NULL;
    size_t nb = 0, cap = 0, ns = 0, lineno = 0;
    struct stored *s = NULL;
    struct etcd_client *c = NULL;
    char line[1 << 16];
    FILE *f = fopen(path, "r");
    hp_rc rc = HP_OK;

    memset(rep, 0, sizeof(*rep));
    if (!f)
        return hp_err_field(err, HP_ERR_IO, "--check", "cannot read %s: %s", path, strerror(errno));
    while (!rc && fgets(line, sizeof(line), f)) {
        json_t *j = json_loads(line, 0, NULL), *keys, *k;
        const char *id = NULL, *o = NULL;
        json_int_t rev = 0;
        size_t i;

        lineno++;
        if (!j || json_unpack(j, "{s:s, s:s, s:I, s:o}", "batch", &id, "outcome", &o, "revision",
                              &rev, "keys", &keys)) {
            json_decref(j);
            /* a killed run may leave its last line cut short: only that one is forgiven */
            if (feof(f) || !strchr(line, '\n'))
                break;
            rc = hp_err_field(err, HP_ERR_INVALID, "--check", "%s:%zu is not an outcome line", path,
                              lineno);
            break;
        }
        if (nb == cap) {
            struct vbatch *nbp = hp_realloc(b, (cap ? cap * 2 : 64) * sizeof(*b));

            if (!nbp) {
                json_decref(j);
                rc = HP_ERR_NOMEM;
                break;
            }
            b = nbp;
            cap = cap ? cap * 2 : 64;
        }
        memset(&b[nb], 0, sizeof(b[nb]));
        snprintf(b[nb].id, sizeof(b[nb].id), "%s", id);
        b[nb].rev = rev;
        b[nb].o = !strcmp(o, "committed")     ? BATCH_COMMITTED
                  : !strcmp(o, "failed")      ? BATCH_FAILED
                  : !strcmp(o, "rolled_back") ? BATCH_ROLLED_BACK
                                              : BATCH_UNRESOLVED;
        json_array_foreach(keys, i, k) if (json_is_string(k))
            vbatch_add_key(&b[nb], json_string_value(k));
        b[nb].expected = b[nb].n;
        switch (b[nb].o) {
        case BATCH_COMMITTED:
            rep->committed += b[nb].n;
            break;
        case BATCH_FAILED:
            rep->failed += b[nb].n;
            break;
        case BATCH_ROLLED_BACK:
            rep->rolled_back += b[nb].n;
            break;
        default:
            rep->unresolved += b[nb].n;
        }
        nb++;
        json_decref(j);
    }
    fclose(f);
    if (!rc)
        rc = etcd_client_new(&cfg->etcd, &c, err);
    if (!rc)
        rc = load_prefix(c, prefix, &s, &ns, err);
    if (!rc) {
        verify_batches(prefix, s, ns, b, nb, rep);
        rep->verified = true;
        rep->batches = nb;
    }
    stored_free(s, ns);
    etcd_client_free(c);
    for (size_t i = 0; i < nb; i++)
        vbatch_release(&b[i]);
    hp_free(b);
    return rc;
}

void etcd_bench_print(const struct etcd_bench_report *r, bool json, FILE *f)
{
    if (json) {
        json_t *j = json_pack(
            "{s:s, s:s, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:b, s:I, s:I, "
            "s:s, s:I, s:I, s:f, s:I, s:I, s:b, s:I, s:I, s:I}",
            "run", r->run_id, "mode", r->naive ? "naive" : "batch", "seconds", r->seconds,
            "committed", (json_int_t)r->committed, "failed", (json_int_t)r->failed, "rolled_back",
            (json_int_t)r->rolled_back, "unresolved", (json_int_t)r->unresolved, "txns",
            (json_int_t)r->batches, "rejected", (json_int_t)r->rejected, "keys_per_s",
            r->keys_per_s, "txns_per_s", r->txns_per_s, "p50_ms", r->p50_ms, "p99_ms", r->p99_ms,
            "verified", r->verified, "checked", (json_int_t)r->checked, "violations",
            (json_int_t)r->violations, "first_violation", r->violation, "final_limit",
            (json_int_t)r->final_limit, "not_enqueued", (json_int_t)r->not_enqueued, "max_final_ms",
            r->max_final_ms, "epoch_bumps", (json_int_t)r->epoch_bumps, "resolve_rounds",
            (json_int_t)r->resolve_rounds, "terminated", r->terminated, "step_timeouts",
            (json_int_t)r->step_timeouts, "resolve_budget_ms", (json_int_t)r->resolve_budget_ms,
            "key_bytes", (json_int_t)r->key_bytes);

        if (j)
            json_object_set_new(
                j, "grpc",
                json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "connects",
                          (json_int_t)r->grpc.connects, "primes", (json_int_t)r->grpc.primes,
                          "http1_answers", (json_int_t)r->grpc.http1_answers, "dead_connections",
                          (json_int_t)r->grpc.dead_connections, "stalls",
                          (json_int_t)r->grpc.stalls, "retired", (json_int_t)r->grpc.retired));
        if (j) {
            json_dumpf(j, f, JSON_COMPACT);
            fputc('\n', f);
        }
        json_decref(j);
        return;
    }
    fprintf(f, "%-6s %10.0f %9.0f %8.2f %8.2f %10zu %7zu %12zu %11zu %8zu\n",
            r->naive ? "naive" : "batch", r->keys_per_s, r->txns_per_s, r->p50_ms, r->p99_ms,
            r->committed, r->failed, r->rolled_back, r->unresolved, r->rejected);
    if (r->terminated)
        fprintf(f,
                "terminated: %zu result(s) unresolved (journaled if --state-dir was given), %zu "
                "never sent\n",
                r->unresolved, r->not_enqueued);
    if (r->verified)
        fprintf(f, "verify: %s: %zu keys checked, %zu violation(s)%s%s\n",
                r->violations ? "FAILED" : "ok", r->checked, r->violations,
                r->violations ? "; first: " : "", r->violation);
}

/* term_watch: SIGTERM / SIGINT (blocked in every thread) cancel stop; the run then ends */
struct term_watch {
    struct hp_ctx *stop; /* borrowed */
    atomic_int done;     /* the run is over: stop watching */
};

static void *term_main(void *arg)
{
    struct term_watch *w = arg;
    struct timespec tick = {0, 100000000};
    sigset_t s;

    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    while (!atomic_load(&w->done)) {
        if (sigtimedwait(&s, NULL, &tick) > 0) {
            hp_ctx_cancel(w->stop);
            break;
        }
    }
    return NULL;
}

hp_rc etcd_bench_run_until_signal(struct etcd_bench_config *cfg, struct etcd_bench_report *out,
                                  struct hp_err *err)
{
    struct term_watch w = {.done = 0};
    sigset_t sigs;
    pthread_t th;
    int watching;
    hp_rc rc;

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* before any thread starts: all inherit it */
    rc = hp_ctx_new(NULL, HP_CTX_NO_TIMEOUT, &w.stop);
    watching = !rc && !pthread_create(&th, NULL, term_main, &w);
    if (!rc && !watching)
        rc = hp_err_set(err, HP_ERR_NOMEM, "cannot start the signal thread");
    cfg->stop = w.stop;
    if (!rc)
        rc = etcd_bench_run(cfg, out, err);
    atomic_store(&w.done, 1);
    if (watching)
        pthread_join(th, NULL);
    cfg->stop = NULL;
    hp_ctx_free(w.stop);
    /* the mask stays: a signal from now on finds the run over and the exit under way */
    return rc;
}

void etcd_bench_print_report(const struct etcd_bench_config *cfg, const struct etcd_bench_report *r,
                             bool run, bool json, FILE *f)
{
    if (json) {
        etcd_bench_print(r, true, f);
        return;
    }
    if (run)
        fprintf(f,
                "hostpatrol bench etcd: run %s, %zu results of %zu B, concurrency %u, "
                "deadline %lld ms, %.2f s\n",
                r->run_id, cfg->results, cfg->value_bytes, cfg->concurrency,
                (long long)cfg->deadline_ms, r->seconds);
    fprintf(f, "%-6s %10s %9s %8s %8s %10s %7s %12s %11s %8s\n", "mode", "keys/s", "txns/s",
            "p50 ms", "p99 ms", "committed", "failed", "rolled_back", "unresolved", "rejected");
    etcd_bench_print(r, false, f);
}
