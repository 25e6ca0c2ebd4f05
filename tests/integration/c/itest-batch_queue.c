/* itest-batch_queue.c - the batch queue against a REAL etcd (started by
 * tests/integration/test-batch-queue.sh). Environment:
 *   HP_ETCD_URL       the etcd under test (direct)
 *   HP_ETCD_SLOW_URL  the same etcd behind toxiproxy with a 1500 ms latency on responses
 * Every written value is unique; outcomes are checked by reading etcd back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <pthread.h>

#include <jansson.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/b64.h"
#include "hostpatrol/buf.h"
#include "hostpatrol/batch_queue.h"
#include "hostpatrol/etcd_client.h"
#include "itest_util.h"

static struct etcd_client *direct;
static char prefix[128];

/* ---- collected outcomes ---- */
struct outcome {
    int done; /* callback count: must end at exactly 1 */
    enum batch_outcome o;
    int64_t revision;
    hp_rc rc;
    size_t writes; /* batch_writes */
    char batch[64];
    char reason[256];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void on_done(void *arg, const struct batch_result *r)
{
    struct outcome *o = arg;

    pthread_mutex_lock(&mu);
    o->done++;
    o->o = r->outcome;
    o->revision = r->revision;
    o->rc = r->rc;
    o->writes = r->batch_writes;
    snprintf(o->batch, sizeof(o->batch), "%s", r->batch_id);
    snprintf(o->reason, sizeof(o->reason), "%s", r->reason);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* wait_all: until every outcome has its callback, or 30 s */
static void wait_all(struct outcome *o, size_t n)
{
    struct timespec ts;
    size_t i;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    pthread_mutex_lock(&mu);
    for (i = 0; i < n; i++)
        while (!o[i].done)
            if (pthread_cond_timedwait(&cv, &mu, &ts)) {
                pthread_mutex_unlock(&mu);
                fail_msg("record %zu got no callback within 30 s", i);
            }
    pthread_mutex_unlock(&mu);
}

static struct etcd_client *client(const char *eps)
{
    struct etcd_config cfg = {.endpoints = eps, .transport = itest_etcd_transport()};
    struct etcd_client *c = NULL;
    struct hp_err err = {0};

    if (etcd_client_new(&cfg, &c, &err))
        fail_msg("%s", err.msg);
    return c;
}

static struct batch_queue *queue(struct etcd_client *c, const char *writer,
                                 const struct batch_config *base)
{
    struct batch_config cfg = base ? *base : (struct batch_config){0};
    struct batch_queue *q = NULL;
    struct hp_err err = {0};
    char pfx[200];

    snprintf(pfx, sizeof(pfx), "%sq/", prefix);
    cfg.prefix = pfx;
    cfg.writer = writer;
    if (batch_queue_new(c, &cfg, NULL, &q, &err))
        fail_msg("batch_queue_new: %s", err.msg);
    return q;
}

/* get: the value of key, or NULL if absent (owned) */
static char *get(const char *key, int64_t *mod)
{
    struct etcd_range_req q = {.key = key, .key_len = strlen(key)};
    struct etcd_range_resp r;
    struct hp_err err = {0};
    char *v = NULL;

    if (etcd_range(direct, NULL, &q, &r, &err))
        fail_msg("read back %s: %s", key, err.msg);
    if (r.n) {
        v = hp_strdup(r.kvs[0].value);
        if (mod)
            *mod = r.kvs[0].mod_revision;
    }
    etcd_range_resp_release(&r);
    return v;
}

static int setup(void **state)
{
    (void)state;
    snprintf(prefix, sizeof(prefix), "/hp-bq/%ld-%d/", (long)time(NULL), getpid());
    direct = client(getenv("HP_ETCD_URL"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    etcd_client_free(direct);
    return 0;
}

#define N_COMMIT 1000

/* G1 + G3: 1000 records with unique values all commit, are read back exactly, and records that
 * shared a batch share its one revision. */
static void records_commit_exactly_and_batches_are_atomic(void **state)
{
    static struct outcome o[N_COMMIT];
    static char keys[N_COMMIT][160], vals[N_COMMIT][64];
    struct batch_queue *q = queue(direct, "commit", NULL);
    struct batch_stats st;
    struct hp_ctx *ctx;
    size_t i, batched = 0;

    (void)state;
    memset(o, 0, sizeof(o));
    assert_int_equal(hp_ctx_new(NULL, 20000, &ctx), HP_OK);
    for (i = 0; i < N_COMMIT; i++) {
        struct hp_err err = {0};

        snprintf(keys[i], sizeof(keys[i]), "%sres/%zu", prefix, i);
        snprintf(vals[i], sizeof(vals[i]), "v-%zu-%ld", i, (long)hp_now_ns());
        struct batch_write w = {keys[i], strlen(keys[i]), vals[i], strlen(vals[i]), false};
        if (batch_queue_enqueue(q, ctx, "run-1", &w, 1, on_done, &o[i], &err))
            fail_msg("enqueue %zu: %s", i, err.msg);
    }
    wait_all(o, N_COMMIT);
    for (i = 0; i < N_COMMIT; i++) {
        int64_t mod = 0;
        char *v = get(keys[i], &mod);

        if (o[i].done != 1 || o[i].o != BATCH_COMMITTED)
            fail_msg("record %zu: %d callbacks, outcome %s (%s)", i, o[i].done,
                     batch_outcome_name(o[i].o), o[i].reason);
        assert_non_null(v);
        assert_string_equal(v, vals[i]);
        assert_int_equal(mod, o[i].revision);
        hp_free(v);
        if (i && !strcmp(o[i].batch, o[i - 1].batch)) {
            batched++;
            assert_int_equal(o[i].revision, o[i - 1].revision);
        }
    }
    batch_queue_stats(q, &st);
    assert_true(batched > 0);               /* records were packed together */
    assert_true(st.batches < N_COMMIT / 2); /* far fewer txns than records */
    assert_int_equal(st.committed, st.batches);
    assert_int_equal(st.failed + st.rolled_back, 0);
    hp_ctx_free(ctx);
    assert_int_equal(batch_queue_close(q, NULL), HP_OK);
    batch_queue_free(q);
}

/* R5: the same key in two records of one batch: the later write wins, both commit. */
static void same_key_coalesces_last_wins(void **state)
{
    struct batch_config cfg = {.linger_ms = 200};
    struct batch_queue *q = queue(direct, "coalesce", &cfg);
    struct outcome o[2] = {0};
    char key[160];
    struct hp_err err = {0};
    char *v;

    (void)state;
    snprintf(key, sizeof(key), "%sdup", prefix);
    struct batch_write a = {key, strlen(key), "first", 5, false};
    struct batch_write b = {key, strlen(key), "second", 6, false};
    assert_int_equal(batch_queue_enqueue(q, NULL, NULL, &a, 1, on_done, &o[0], &err), HP_OK);
    assert_int_equal(batch_queue_enqueue(q, NULL, NULL, &b, 1, on_done, &o[1], &err), HP_OK);
    wait_all(o, 2);
    assert_int_equal(o[0].o, BATCH_COMMITTED);
    assert_int_equal(o[1].o, BATCH_COMMITTED);
    assert_string_equal(o[0].batch, o[1].batch);
    assert_int_equal(o[0].writes, 2); /* what the records carried, not the one op sent */
    v = get(key, NULL);
    assert_string_equal(v, "second");
    hp_free(v);
    batch_queue_free(q);
}

/* R3: an expired or cancelled record is never sent. */
static void expired_and_cancelled_records_are_never_sent(void **state)
{
    struct batch_config cfg = {.linger_ms = 100};
    struct batch_queue *q = queue(direct, "expire", &cfg);
    struct outcome o[2] = {0};
    struct hp_ctx *dead, *cancelled;
    char k1[160], k2[160];
    struct hp_err err = {0};

    (void)state;
    snprintf(k1, sizeof(k1), "%sexpired", prefix);
    snprintf(k2, sizeof(k2), "%scancelled", prefix);
    assert_int_equal(hp_ctx_new(NULL, 20, &dead), HP_OK);
    assert_int_equal(hp_ctx_new(NULL, 60000, &cancelled), HP_OK);
    struct batch_write a = {k1, strlen(k1), "x", 1, false};
    struct batch_write b = {k2, strlen(k2), "x", 1, false};
    assert_int_equal(batch_queue_enqueue(q, dead, NULL, &a, 1, on_done, &o[0], &err), HP_OK);
    assert_int_equal(batch_queue_enqueue(q, cancelled, NULL, &b, 1, on_done, &o[1], &err), HP_OK);
    hp_ctx_cancel(cancelled);
    wait_all(o, 2);
    assert_int_equal(o[0].o, BATCH_FAILED);
    assert_int_equal(o[0].rc, HP_ERR_TIMEOUT);
    assert_int_equal(o[1].o, BATCH_FAILED);
    assert_int_equal(o[1].rc, HP_ERR_CANCELED);
    assert_int_equal(o[0].writes, 0); /* never joined a batch */
    assert_null(get(k1, NULL));
    assert_null(get(k2, NULL));
    hp_ctx_free(dead);
    hp_ctx_free(cancelled);
    batch_queue_free(q);
}

/* R1 + R2: a full queue refuses at once and counts it; what it accepted still completes. */
static void full_queue_refuses_and_keeps_what_it_accepted(void **state)
{
    struct batch_config cfg = {.capacity = 5, .linger_ms = 300};
    struct batch_queue *q = queue(direct, "full", &cfg);
    struct outcome o[6] = {0};
    struct batch_stats st;
    char key[6][160];
    struct hp_err err = {0};
    int i;

    (void)state;
    for (i = 0; i < 6; i++) {
        snprintf(key[i], sizeof(key[i]), "%sfull/%d", prefix, i);
        struct batch_write w = {key[i], strlen(key[i]), "x", 1, false};
        hp_rc rc = batch_queue_enqueue(q, NULL, NULL, &w, 1, on_done, &o[i], &err);

        assert_int_equal(rc, i < 5 ? HP_OK : HP_ERR_FULL);
    }
    assert_non_null(strstr(err.msg, "capacity 5"));
    batch_queue_stats(q, &st);
    assert_int_equal(st.rejected, 1);
    wait_all(o, 5);
    for (i = 0; i < 5; i++)
        assert_int_equal(o[i].o, BATCH_COMMITTED);
    usleep(100000);
    assert_int_equal(o[5].done, 0); /* R1: no callback for a refused record */
    batch_queue_free(q);
}

/* G5 in bytes: records of a run's results can be large, so the queue also bounds what waits by
 * its encoded size. Records of ~1.4 KB against capacity_bytes 8192: the ones that fit are
 * accepted (and stay below a full txn, so none leaves while we enqueue), the next is refused
 * with the numbers, and every accepted one commits. */
static void full_queue_refuses_by_bytes(void **state)
{
    struct batch_config cfg = {
        .capacity_bytes = 8192, .max_txn_bytes = 8192, .max_value_bytes = 1024, .linger_ms = 300};
    struct batch_queue *q = queue(direct, "fullbytes", &cfg);
    struct outcome o[8] = {0};
    static char val[1000];
    char key[8][160];
    struct hp_err err = {0};
    size_t rec = 0, fit;
    int i;

    (void)state;
    memset(val, 'v', sizeof(val));
    for (i = 0; i < 8; i++)
        snprintf(key[i], sizeof(key[i]), "%sfb/%d", prefix, i);
    /* what one record adds (keys of equal length): base64 of key and value, and the op's JSON */
    rec = hp_b64_encoded_len(strlen(key[0])) + hp_b64_encoded_len(sizeof(val)) + 48;
    fit = 8192 / rec;
    assert_true(fit >= 2 && fit < 8);
    assert_true(fit * rec + 512 < 8192); /* not a full batch: nothing is sent while we enqueue */
    for (i = 0; i < 8; i++) {
        struct batch_write w = {key[i], strlen(key[i]), val, sizeof(val), false};
        hp_rc rc = batch_queue_enqueue(q, NULL, NULL, &w, 1, on_done, &o[i], &err);

        assert_int_equal(rc, (size_t)i < fit ? HP_OK : HP_ERR_FULL);
    }
    assert_non_null(strstr(err.msg, "8192 bytes"));
    wait_all(o, fit);
    for (i = 0; (size_t)i < fit; i++)
        assert_int_equal(o[i].o, BATCH_COMMITTED);
    usleep(100000);
    for (; i < 8; i++)
        assert_int_equal(o[i].done, 0); /* R1: no callback for a refused record */
    batch_queue_free(q);

    struct batch_config bad = {.writer = "x", .capacity_bytes = 4096};
    struct batch_queue *q2 = NULL;
    assert_int_equal(batch_queue_new(direct, &bad, NULL, &q2, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "capacity_bytes");
}

static void bad_input_is_named(void **state)
{
    struct batch_queue *q = queue(direct, "input", NULL);
    struct outcome o = {0};
    struct hp_err err = {0};
    static char big[600 << 10];
    char key[160], reserved[200];

    (void)state;
    snprintf(key, sizeof(key), "%sbig", prefix);
    struct batch_write w = {key, strlen(key), big, sizeof(big), false};
    assert_int_equal(batch_queue_enqueue(q, NULL, NULL, &w, 1, on_done, &o, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "value");
    assert_non_null(strstr(err.msg, "exceeds max_value_bytes"));
    snprintf(reserved, sizeof(reserved), "%sq/epoch/x", prefix);
    struct batch_write r = {reserved, strlen(reserved), "x", 1, false};
    assert_int_equal(batch_queue_enqueue(q, NULL, NULL, &r, 1, on_done, &o, &err), HP_ERR_INVALID);
    assert_non_null(strstr(err.msg, "reserved"));
    assert_int_equal(batch_queue_enqueue(q, NULL, NULL, &r, 0, on_done, &o, &err), HP_ERR_INVALID);
    assert_int_equal(o.done, 0);
    batch_queue_free(q);

    struct batch_config bad = {.writer = "x", .max_txn_ops = 1};
    struct batch_queue *q2 = NULL;
    assert_int_equal(batch_queue_new(direct, &bad, NULL, &q2, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "max_txn_ops");
}

/* Fencing: a second instance of the same writer claims the epoch; the first one's writes
 * fail as FENCED and nothing of them lands. */
static void a_newer_epoch_fences_the_older_writer(void **state)
{
    struct batch_queue *old = queue(direct, "leader", NULL), *newer;
    struct outcome o[2] = {0};
    char k1[160], k2[160];
    struct hp_err err = {0};
    char *v;

    (void)state;
    snprintf(k1, sizeof(k1), "%sfence/old", prefix);
    snprintf(k2, sizeof(k2), "%sfence/new", prefix);
    newer = queue(direct, "leader", NULL);
    struct batch_write a = {k1, strlen(k1), "old", 3, false};
    struct batch_write b = {k2, strlen(k2), "new", 3, false};
    assert_int_equal(batch_queue_enqueue(old, NULL, NULL, &a, 1, on_done, &o[0], &err), HP_OK);
    assert_int_equal(batch_queue_enqueue(newer, NULL, NULL, &b, 1, on_done, &o[1], &err), HP_OK);
    wait_all(o, 2);
    assert_int_equal(o[0].o, BATCH_FAILED);
    assert_int_equal(o[0].rc, HP_ERR_FENCED);
    assert_int_equal(o[1].o, BATCH_COMMITTED);
    assert_null(get(k1, NULL));
    v = get(k2, NULL);
    assert_string_equal(v, "new");
    hp_free(v);
    batch_queue_free(old);
    batch_queue_free(newer);
}

/* G2, the phantom case: the txn commits but its answer arrives after the deadline. The queue
 * must report ROLLED_BACK only after undoing it: the key shows its previous value again, and
 * still does later. */
static void late_commit_is_undone_before_rolled_back(void **state)
{
    const char *slow_url = getenv("HP_ETCD_SLOW_URL");
    struct etcd_client *slow;
    struct batch_config cfg = {.linger_ms = 1, .resolve_timeout_ms = 8000};
    struct batch_queue *q;
    struct outcome o = {0};
    struct hp_ctx *ctx;
    char key[160], fresh[160];
    struct hp_err err = {0};
    char *v;

    (void)state;
    if (!slow_url)
        skip();
    snprintf(key, sizeof(key), "%sphantom", prefix);
    snprintf(fresh, sizeof(fresh), "%sphantom-new", prefix);
    assert_int_equal(etcd_put(direct, NULL, key, strlen(key), "previous", 8, 0, NULL, &err), HP_OK);
    slow = client(slow_url);
    q = queue(slow, "phantom", &cfg);
    assert_int_equal(hp_ctx_new(NULL, 700, &ctx), HP_OK);
    struct batch_write w[2] = {{key, strlen(key), "late", 4, false},
                               {fresh, strlen(fresh), "late", 4, false}};
    assert_int_equal(batch_queue_enqueue(q, ctx, "run-p", w, 2, on_done, &o, &err), HP_OK);
    wait_all(&o, 1);
    if (o.o != BATCH_ROLLED_BACK)
        fail_msg("outcome %s: %s", batch_outcome_name(o.o), o.reason);
    assert_non_null(strstr(o.reason, "applied late"));
    v = get(key, NULL);
    assert_string_equal(v, "previous");
    hp_free(v);
    assert_null(get(fresh, NULL));
    sleep(2); /* "at any later time" */
    v = get(key, NULL);
    assert_string_equal(v, "previous");
    hp_free(v);
    assert_null(get(fresh, NULL));
    hp_ctx_free(ctx);
    batch_queue_free(q);
    etcd_client_free(slow);
}

/* G6: batches are cut by bytes as well as ops: 40 values of 100 KiB (5.3 MiB in base64) would
 * break etcd's 1.5 MiB request limit in one txn; they all commit, in several txns. */
static void batches_respect_the_request_byte_limit(void **state)
{
    static char big[100 << 10];
    struct batch_config cfg = {.linger_ms = 200};
    struct batch_queue *q = queue(direct, "bytes", &cfg);
    struct outcome o[40] = {0};
    struct batch_stats st;
    struct hp_err err = {0};
    char key[200];
    int i;

    (void)state;
    memset(big, 'b', sizeof(big));
    for (i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "%sbytes/%d", prefix, i);
        struct batch_write w = {key, strlen(key), big, sizeof(big), false};
        assert_int_equal(batch_queue_enqueue(q, NULL, NULL, &w, 1, on_done, &o[i], &err), HP_OK);
    }
    wait_all(o, 40);
    for (i = 0; i < 40; i++)
        if (o[i].o != BATCH_COMMITTED)
            fail_msg("record %d: %s (%s)", i, batch_outcome_name(o[i].o), o[i].reason);
    batch_queue_stats(q, &st);
    assert_true(st.batches >= 6); /* 1 MiB of JSON per txn at most */
    batch_queue_free(q);
}

/* R6: close sends what is queued and returns once every callback has run. */
static void close_drains(void **state)
{
    struct batch_config cfg = {.linger_ms = 5000};
    struct batch_queue *q = queue(direct, "drain", &cfg);
    struct outcome o[50] = {0};
    struct hp_ctx *ctx;
    char key[160];
    struct hp_err err = {0};
    int i;

    (void)state;
    for (i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "%sdrain/%d", prefix, i);
        struct batch_write w = {key, strlen(key), "x", 1, false};
        assert_int_equal(batch_queue_enqueue(q, NULL, NULL, &w, 1, on_done, &o[i], &err), HP_OK);
    }
    assert_int_equal(hp_ctx_new(NULL, 10000, &ctx), HP_OK);
    assert_int_equal(batch_queue_close(q, ctx), HP_OK);
    for (i = 0; i < 50; i++) {
        assert_int_equal(o[i].done, 1);
        assert_int_equal(o[i].o, BATCH_COMMITTED);
    }
    assert_int_equal(batch_queue_enqueue(q, NULL, NULL,
                                         &(struct batch_write){key, strlen(key), "y", 1, false}, 1,
                                         on_done, &o[0], &err),
                     HP_ERR_CANCELED);
    hp_ctx_free(ctx);
    batch_queue_free(q);
}

/* ---- toxiproxy control (HP_TOXI_API, proxy HP_TOXI_PROXY) ---- */

/* The limiter shrinks the in-flight limit when txn latency p95 is above its threshold (here a
 * 60 ms latency toxic on every txn) and grows it when p95 is low (the direct path). */
static void limiter_follows_latency(void **state)
{
    struct batch_config slow_cfg = {.initial_inflight = 8,
                                    .max_inflight = 16,
                                    .window = 8,
                                    .p95_high_ms = 50,
                                    .p95_low_ms = 40,
                                    .linger_ms = 1,
                                    .max_txn_ops = 4};
    struct batch_config fast_cfg = slow_cfg;
    static struct outcome o[600];
    char px[160], path[256], key[200];
    struct etcd_client *slow;
    struct batch_queue *q;
    struct batch_stats st;
    struct hp_err err = {0};

    (void)state;
    if (!getenv("HP_TOXI_API") || !getenv("HP_TOXI_PROXY"))
        skip();
    snprintf(px, sizeof(px), "%s", getenv("HP_TOXI_PROXY"));
    snprintf(path, sizeof(path), "/proxies/%s/toxics", px);
    itest_toxi("POST", path,
               "{\"name\":\"lim\",\"type\":\"latency\",\"stream\":\"downstream\","
               "\"attributes\":{\"latency\":60}}");
    slow = client(getenv("HP_ETCD_PROXY_URL"));
    q = queue(slow, "limiter-slow", &slow_cfg);
    memset(o, 0, sizeof(o));
    for (int i = 0; i < 600; i++) {
        snprintf(key, sizeof(key), "%slim/slow/%d", prefix, i);
        struct batch_write w = {key, strlen(key), "x", 1, false};
        assert_int_equal(batch_queue_enqueue(q, NULL, NULL, &w, 1, on_done, &o[i], &err), HP_OK);
    }
    wait_all(o, 600);
    batch_queue_stats(q, &st);
    batch_queue_free(q);
    etcd_client_free(slow);
    snprintf(path, sizeof(path), "/proxies/%s/toxics/lim", px);
    itest_toxi("DELETE", path, NULL);
    print_message("# slow path: limit %u -> %u\n", slow_cfg.initial_inflight, st.limit);
    assert_true(st.limit < slow_cfg.initial_inflight);

    fast_cfg.initial_inflight = 2;
    q = queue(direct, "limiter-fast", &fast_cfg);
    memset(o, 0, sizeof(o));
    for (int i = 0; i < 600; i++) {
        snprintf(key, sizeof(key), "%slim/fast/%d", prefix, i);
        struct batch_write w = {key, strlen(key), "x", 1, false};
        assert_int_equal(batch_queue_enqueue(q, NULL, NULL, &w, 1, on_done, &o[i], &err), HP_OK);
    }
    wait_all(o, 600);
    batch_queue_stats(q, &st);
    batch_queue_free(q);
    print_message("# fast path: limit %u -> %u\n", fast_cfg.initial_inflight, st.limit);
    assert_true(st.limit > fast_cfg.initial_inflight);
}

static int dir_entries(const char *path)
{
    char cmd[600];
    FILE *p;
    int n = -1;

    snprintf(cmd, sizeof(cmd), "find '%s' -name '*.json' 2>/dev/null | wc -l", path);
    p = popen(cmd, "r");
    if (p && fscanf(p, "%d", &n) != 1)
        n = -1;
    if (p)
        pclose(p);
    return n;
}

/* R4: a batch whose answer is late and whose resolution cannot reach etcd stays UNRESOLVED,
 * is journaled, gets BATCH_UNRESOLVED when the queue stops; the next queue with the same
 * state_dir resolves it: the late commit is undone and the journal emptied. */
static void unresolved_batch_is_journaled_and_resolved_after_restart(void **state)
{
    struct batch_config cfg = {.linger_ms = 1, .resolve_timeout_ms = 300};
    char px[160], path[256], key[200], sdir[256];
    struct outcome o = {0};
    struct etcd_client *slow;
    struct batch_queue *q;
    struct batch_stats st;
    struct hp_ctx *ctx;
    struct hp_err err = {0};
    char *v;

    (void)state;
    if (!getenv("HP_TOXI_API") || !getenv("HP_JOURNAL_PROXY"))
        skip();
    snprintf(px, sizeof(px), "%s", getenv("HP_JOURNAL_PROXY"));
    snprintf(sdir, sizeof(sdir), "%s/journal-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             getpid());
    snprintf(key, sizeof(key), "%sjournaled", prefix);
    assert_int_equal(etcd_put(direct, NULL, key, strlen(key), "before", 6, 0, NULL, &err), HP_OK);
    cfg.state_dir = sdir;
    slow = client(getenv("HP_JOURNAL_PROXY_URL"));
    q = queue(slow, "journal", &cfg);
    snprintf(path, sizeof(path), "/proxies/%s/toxics", px);
    itest_toxi("POST", path,
               "{\"name\":\"late\",\"type\":\"latency\",\"stream\":\"downstream\","
               "\"attributes\":{\"latency\":1500}}");
    assert_int_equal(hp_ctx_new(NULL, 400, &ctx), HP_OK);
    struct batch_write w = {key, strlen(key), "late", 4, false};
    assert_int_equal(batch_queue_enqueue(q, ctx, "run-j", &w, 1, on_done, &o, &err), HP_OK);
    usleep(300 * 1000); /* the txn has reached etcd; its answer is delayed */
    snprintf(path, sizeof(path), "/proxies/%s", px);
    itest_toxi("POST", path, "{\"enabled\":false}"); /* etcd unreachable for the resolver */
    for (int i = 0; i < 100; i++) {
        batch_queue_stats(q, &st);
        if (st.unresolved)
            break;
        usleep(100 * 1000);
    }
    assert_int_equal(st.unresolved, 1);
    assert_int_equal(o.done, 0); /* its callback waits for the resolution */
    assert_int_equal(dir_entries(sdir), 1);
    batch_queue_free(q);
    assert_int_equal(o.done, 1);
    assert_int_equal(o.o, BATCH_UNRESOLVED);
    etcd_client_free(slow);
    hp_ctx_free(ctx);
    v = get(key, NULL);
    assert_string_equal(v, "late"); /* it did commit late */
    hp_free(v);
    /* the proxy (this test's own) stays as it is: removing a toxic from a link stuck in it can
     * block toxiproxy's API */
    /* the next queue of this writer resolves the journal at start-up */
    q = queue(direct, "journal", &cfg);
    assert_int_equal(dir_entries(sdir), 0);
    v = get(key, NULL);
    assert_string_equal(v, "before");
    hp_free(v);
    batch_queue_free(q);
}

/* ---- G1 with a real watcher: no watch response carries part of a batch ---- */

struct watcher {
    struct hp_buf text; /* the watch responses, one a line */
    volatile int stop;
};

static size_t watch_body(char *p, size_t size, size_t n, void *arg)
{
    struct watcher *w = arg;
    size_t m = size * n;

    return hp_buf_add(&w->text, p, m) ? 0 : m;
}

static int watch_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    return ((struct watcher *)arg)->stop;
}

static char watch_body_req[1024];

static void *watch_main(void *arg)
{
    struct watcher *w = arg;
    char url[512];
    CURL *h = curl_easy_init();

    snprintf(url, sizeof(url), "%.*s/v3/watch", (int)strcspn(getenv("HP_ETCD_URL"), ","),
             getenv("HP_ETCD_URL"));
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, watch_body_req);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, watch_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, watch_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, w);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_perform(h);
    curl_easy_cleanup(h);
    return NULL;
}

static void watcher_never_sees_part_of_a_batch(void **state)
{
    static struct outcome o[1000];
    static char keys[1000][256];
    struct batch_config cfg = {.linger_ms = 3};
    struct batch_queue *q;
    struct watcher w = {.stop = 0};
    struct hp_err err = {0};
    char wprefix[200], *end = NULL, kb[400], eb[400];
    size_t end_len = 0, responses = 0, events = 0, i;
    pthread_t t;

    (void)state;
    hp_buf_init(&w.text, 0);
    snprintf(wprefix, sizeof(wprefix), "%swatch/", prefix);
    assert_int_equal(etcd_prefix_end(wprefix, strlen(wprefix), &end, &end_len), HP_OK);
    hp_b64_encode(wprefix, strlen(wprefix), kb);
    hp_b64_encode(end, end_len, eb);
    hp_free(end);
    snprintf(watch_body_req, sizeof(watch_body_req),
             "{\"create_request\":{\"key\":\"%s\",\"range_end\":\"%s\"}}", kb, eb);
    assert_int_equal(pthread_create(&t, NULL, watch_main, &w), 0);
    usleep(500 * 1000); /* the watch is established */
    q = queue(direct, "watch", &cfg);
    memset(o, 0, sizeof(o));
    for (i = 0; i < 1000; i++) {
        snprintf(keys[i], sizeof(keys[i]), "%s%04zu", wprefix, i);
        struct batch_write bw = {keys[i], strlen(keys[i]), "w", 1, false};
        assert_int_equal(batch_queue_enqueue(q, NULL, NULL, &bw, 1, on_done, &o[i], &err), HP_OK);
        if (i % 50 == 0)
            usleep(2000); /* vary the batch sizes */
    }
    wait_all(o, 1000);
    batch_queue_free(q);
    usleep(500 * 1000); /* the last events arrive */
    w.stop = 1;
    pthread_join(t, NULL);
    /* every response: the events of each revision in it must be a whole batch */
    for (char *line = hp_buf_data(&w.text), *next; line && *line; line = next) {
        json_t *j, *evs, *ev;
        size_t k;

        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        j = json_loads(line, 0, NULL);
        evs = json_object_get(json_object_get(j, "result"), "events");
        responses++;
        json_array_foreach(evs, k, ev)
        {
            const char *mr =
                json_string_value(json_object_get(json_object_get(ev, "kv"), "mod_revision"));
            long long rev = mr ? strtoll(mr, NULL, 10) : 0;
            size_t in_batch = 0, in_resp = 0, x;
            json_t *e2;

            events++;
            for (x = 0; x < 1000; x++)
                in_batch += o[x].revision == rev;
            json_array_foreach(evs, x, e2)
            {
                const char *m2 =
                    json_string_value(json_object_get(json_object_get(e2, "kv"), "mod_revision"));
                in_resp += m2 && strtoll(m2, NULL, 10) == rev;
            }
            if (in_batch != in_resp)
                fail_msg("revision %lld: %zu events in one watch response, batch has %zu", rev,
                         in_resp, in_batch);
        }
        json_decref(j);
    }
    hp_buf_release(&w.text);
    print_message("# watcher: %zu events in %zu responses\n", events, responses);
    assert_int_equal(events, 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records_commit_exactly_and_batches_are_atomic),
        cmocka_unit_test(same_key_coalesces_last_wins),
        cmocka_unit_test(expired_and_cancelled_records_are_never_sent),
        cmocka_unit_test(full_queue_refuses_and_keeps_what_it_accepted),
        cmocka_unit_test(full_queue_refuses_by_bytes),
        cmocka_unit_test(bad_input_is_named),
        cmocka_unit_test(a_newer_epoch_fences_the_older_writer),
        cmocka_unit_test(late_commit_is_undone_before_rolled_back),
        cmocka_unit_test(close_drains),
        cmocka_unit_test(batches_respect_the_request_byte_limit),
        cmocka_unit_test(limiter_follows_latency),
        cmocka_unit_test(unresolved_batch_is_journaled_and_resolved_after_restart),
        cmocka_unit_test(watcher_never_sees_part_of_a_batch),
    };
    int rc;

    if (!getenv("HP_ETCD_URL")) {
        fprintf(stderr, "itest-batch_queue: set HP_ETCD_URL\n");
        return 2;
    }
    hp_alloc_install();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
