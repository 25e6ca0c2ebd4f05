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

#include "hostpatrol/alloc.h"
#include "hostpatrol/batch_queue.h"
#include "hostpatrol/etcd_client.h"

static struct etcd_client *direct;
static char prefix[128];

/* ---- collected outcomes ---- */
struct outcome {
    int done; /* callback count: must end at exactly 1 */
    enum batch_outcome o;
    int64_t revision;
    hp_rc rc;
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
    struct etcd_config cfg = {.endpoints = eps};
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records_commit_exactly_and_batches_are_atomic),
        cmocka_unit_test(same_key_coalesces_last_wins),
        cmocka_unit_test(expired_and_cancelled_records_are_never_sent),
        cmocka_unit_test(full_queue_refuses_and_keeps_what_it_accepted),
        cmocka_unit_test(bad_input_is_named),
        cmocka_unit_test(a_newer_epoch_fences_the_older_writer),
        cmocka_unit_test(late_commit_is_undone_before_rolled_back),
        cmocka_unit_test(close_drains),
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
