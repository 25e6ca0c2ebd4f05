/*
 * batch_queue.h - the transactional batch queue: results reach etcd atomically, exactly once,
 * inside their deadline, and never as phantoms. Algorithm and proof sketch: docs/etcd-sync.md.
 *
 * A RECORD is 1..N writes (put or delete) that must land together, with one deadline (its
 * context) and one completion callback. The queue packs records into BATCHES; each batch is one
 * etcd txn guarded by the writer's epoch key and a per-batch fence key, so:
 *   G1 a batch's writes become visible together (one txn, one revision);
 *   G2 after a batch is reported FAILED or ROLLED_BACK, none of its writes is visible, ever;
 *   G3 a COMMITTED batch is applied exactly once;
 *   G4 no etcd call outlives its deadline (plus the client's stated slack).
 *
 * Lifecycle rules (numbered so tests and docs can cite them):
 *  R1 batch_queue_enqueue either returns HP_OK and the callback will be called EXACTLY ONCE
 *     later, from a queue thread; or returns an error and the callback is NEVER called.
 *  R1b A record enqueued with an unresolved callback (batch_queue_enqueue_watched) gets it AT
 *     MOST ONCE, before its done callback, from the sender thread, when its batch's txn ended
 *     without a definite answer and the batch goes to resolution: it names the batch then, so a
 *     caller that stops waiting can say which batch is still being resolved.
 *  R2 A full queue refuses at once (HP_ERR_FULL, counted in stats.rejected); nothing already
 *     accepted is dropped to make room. The records of one batch_queue_enqueue_all are admitted
 *     all or none; more of them than the whole queue holds are refused with HP_ERR_INVALID
 *     naming capacity or capacity_bytes (waiting for room would never end).
 *  R3 A record whose context has ended before its batch is sent is never sent: FAILED with
 *     HP_ERR_TIMEOUT or HP_ERR_CANCELED.
 *  R4 The outcome is one of:
 *       COMMITTED(revision)  applied, exactly once, at that revision;
 *       FAILED(rc, reason)   certainly not applied (refused, fenced, expired before sending);
 *       ROLLED_BACK(reason)  the deadline passed without a definite answer; the queue made a
 *                            late commit impossible (epoch bump) and undid a commit that had
 *                            already happened, before reporting. Also a batch whose txn was
 *                            refused only because the queue bumped its own epoch (resolving
 *                            other batches) and whose deadline passed before it could be sent
 *                            again: not applied, and it can no longer apply.
 *     While etcd cannot be reached to resolve a timed-out batch, the batch is UNRESOLVED: it is
 *     counted (stats.unresolved), journaled under state_dir if set, and retried in the
 *     background; its callback waits for the resolution. Journaled batches left by a previous
 *     process are resolved by the next batch_queue_new with the same state_dir.
 *  R4b PROGRESS. Resolution runs in ROUNDS over GROUPS of up to max_txn_ops - 1 timed-out
 *     batches: one epoch bump fences the whole group, one txn reads all its fences, one reads
 *     the values before every late-applied batch, one txn undoes them (4 round trips; 2 for a
 *     batch found not applied). What a round learned is kept in the batch for the next one (an
 *     epoch moved stays moved, a fence read is not read again, an undo prepared is reused). A
 *     step's time budget starts at resolve_timeout_ms and doubles after a step that ran out of
 *     time, up to resolve_max_ms; it never shrinks. Rounds start at least 1/16 of a round's
 *     measured duration apart unless a full group is due (so a few batches cannot take every
 *     resolver while the rest wait). THE BOUND: once etcd answers each request
 *     within T <= resolve_max_ms, a timed-out batch is final within
 *         8 round trips (8 T: a round under way, then its own)
 *       + the attempts that time out while the budget grows to T, each at most its budget
 *         plus a back-off of at most 2 s (none when T <= resolve_timeout_ms),
 *     after its deadline, while at most 16 x (max_txn_ops - 1) batches await resolution
 *     (resolve_bound_ms in controller/batch/resolve_plan.h computes it; the defaults give
 *     8 T for T <= 5 s, 8 T + 7 s for T <= 10 s).
 *  R5 The same key written twice among the records of one batch: the later write wins (both
 *     records complete with the batch's outcome).
 *  R6 batch_queue_close stops accepting, sends what is queued, waits for every callback until
 *     its context ends. batch_queue_free then completes what is left: records never sent get
 *     FAILED (HP_ERR_CANCELED); a batch still UNRESOLVED gets the fourth outcome,
 *     BATCH_UNRESOLVED (outcome unknown; journaled for the next start if state_dir is set).
 *     Free cancels every etcd call of the queue's threads (a txn in flight, a resolution step)
 *     and returns within the client's slack (G4) plus the journal writes.
 *
 * Threads: one flusher (packs batches), max_inflight senders (one txn each, so up to
 * max_inflight txns are in flight; the ADAPTIVE LIMITER decides how many may be), 16 resolvers
 * (each one round over one group of timed-out batches at a time; fence lease rotation). Callbacks
 * run on sender or resolver threads and must not call batch_queue_close/free. One mutex guards the
 * queue state (pending records, in-flight count, limiter, epoch, resolution budget, stats); etcd
 * I/O never happens under it.
 */
#ifndef HOSTPATROL_BATCH_QUEUE_H
#define HOSTPATROL_BATCH_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/ctx.h"
#include "hostpatrol/etcd_client.h"

enum batch_outcome { BATCH_COMMITTED, BATCH_FAILED, BATCH_ROLLED_BACK, BATCH_UNRESOLVED };
/* "committed" "failed" "rolled_back" "unresolved"; static */
const char *batch_outcome_name(enum batch_outcome o);

struct batch_result {
    enum batch_outcome outcome;
    int64_t revision;     /* COMMITTED: the txn's revision; ROLLED_BACK: 0 */
    hp_rc rc;             /* HP_OK when committed, else the cause class */
    const char *reason;   /* human-readable; borrowed for the callback's duration */
    const char *batch_id; /* borrowed for the callback's duration */
    size_t batch_records; /* records in the batch (for stats and tests) */
    size_t batch_writes;  /* the writes its records carried (before coalescing); 0 when the
                           * record never joined a batch */
};

/* Called exactly once per accepted record (rule R1). arg is the caller's. */
typedef void (*batch_done_fn)(void *arg, const struct batch_result *r);

/* Called at most once per record, before its done callback (rule R1b); batch_id borrowed for the
 * call. Must not block: the sender thread calls it. */
typedef void (*batch_unresolved_fn)(void *arg, const char *batch_id);

struct batch_write {
    const void *key; /* borrowed and copied by enqueue; taken by batch_queue_enqueue_owned */
    size_t key_len;
    const void *value; /* NULL with is_delete */
    size_t value_len;
    bool is_delete;
};

/* The key prefix of hostpatrol's etcd data (results, epoch and fence keys) unless configured:
 * the one place it is written (results_store.h names it RESULTS_STORE_DEFAULT_PREFIX) */
#define BATCH_QUEUE_DEFAULT_PREFIX "/hostpatrol/"

struct batch_config {
    const char *prefix;     /* where the queue keeps epoch and fence keys; default
                             * BATCH_QUEUE_DEFAULT_PREFIX */
    const char *writer;     /* this writer's role, e.g. "controller", "agent/node-1"; required */
    size_t capacity;        /* records queued at most (not yet sent); default 65536 */
    size_t capacity_bytes;  /* their encoded size at most (the sum of what each adds to a txn's
                             * JSON); default 64 MiB, at least max_txn_bytes. With records of a
                             * run's results (up to 127 writes each) the record count alone
                             * let 65,536 records of up to 1 MiB wait: far past a pod's memory */
    size_t max_txn_ops;     /* the server's --max-txn-ops; default 128 (one op is the fence) */
    size_t max_txn_bytes;   /* JSON request body limit; default 1 MiB (under 1.5 MiB protobuf) */
    size_t max_value_bytes; /* one value; default 512 KiB */
    int64_t linger_ms;      /* how long a partial batch waits for more records; default 2 */
    unsigned min_inflight, max_inflight, initial_inflight; /* limiter; default 1, 32, 4 */
    int64_t p95_high_ms;        /* shrink above this txn latency p95; default 50 */
    int64_t p95_low_ms;         /* grow below this; default 20 */
    double decrease, increase;  /* factors; default 0.7 and 1.2 */
    unsigned window;            /* latency samples per limiter decision; default 32 */
    int64_t fence_ttl_s;        /* fence keys' lease TTL; default 3600 */
    int64_t resolve_timeout_ms; /* first budget of one resolution step; default 5000 */
    int64_t resolve_max_ms;     /* the budget doubles after a step that ran out of time, up to
                                 * this; default 30000 (>= resolve_timeout_ms) */
    const char *state_dir;      /* journal of unresolved batches; NULL: no journal */
};

struct batch_stats {
    uint64_t enqueued, rejected; /* records */
    uint64_t batches, committed, failed, rolled_back, resent;
    uint64_t unresolved; /* batches waiting for resolution now */
    uint64_t txn_timeouts, too_many_requests, fenced;
    uint64_t epoch_bumps, resolve_rounds; /* resolution work: one bump fences many batches */
    uint64_t step_timeouts;               /* resolution steps that used their whole budget */
    int64_t resolve_budget_ms;            /* a resolution step's budget now */
    size_t queued;                        /* records waiting now */
    unsigned inflight, limit;             /* txns in flight now, limiter's current limit */
    int64_t epoch;                        /* mod_revision of the epoch key we hold */
};

struct batch_queue;

/* batch_queue_new: claim this writer's epoch (a put of <prefix>epoch/<writer>: any older holder
 * is fenced from now on), resolve journaled batches, start the threads. etcd is borrowed and
 * must outlive the queue. ctx bounds the start-up I/O. *out owned: batch_queue_free. */
hp_rc batch_queue_new(struct etcd_client *etcd, const struct batch_config *cfg, struct hp_ctx *ctx,
                      struct batch_queue **out, struct hp_err *err) HP_WUR;

/* batch_queue_enqueue: accept one record of n writes (copied; 1 <= n <= max_txn_ops - 1).
 * ctx (a reference is taken) is the record's deadline and cancel. run_id (copied, may be NULL)
 * ties the record to its run in logs and journal. See R1-R3. */
hp_rc batch_queue_enqueue(struct batch_queue *q, struct hp_ctx *ctx, const char *run_id,
                          const struct batch_write *writes, size_t n, batch_done_fn done, void *arg,
                          struct hp_err *err) HP_WUR;

/* batch_queue_enqueue_watched: batch_queue_enqueue with an unresolved callback too (may be
 * NULL; rule R1b); both get arg. */
hp_rc batch_queue_enqueue_watched(struct batch_queue *q, struct hp_ctx *ctx, const char *run_id,
                                  const struct batch_write *writes, size_t n, batch_done_fn done,
                                  batch_unresolved_fn unresolved, void *arg,
                                  struct hp_err *err) HP_WUR;

/* The callbacks of one record (batch_queue_enqueue_owned): done required, unresolved may be
 * NULL; both get arg. */
struct batch_done_cb {
    batch_done_fn done;
    batch_unresolved_fn unresolved;
    void *arg;
};

/* batch_queue_enqueue_owned: batch_queue_enqueue_watched without copying the writes: on HP_OK
 * every key and value of writes[0..n) (hp_malloc'd, NUL-terminated not required) is TAKEN, freed
 * by the queue when the record completes (writes itself stays the caller's; run_id copied); on
 * an error NOTHING is taken. The txn text is rendered from these buffers (etcd_txn_new_borrowed),
 * so a value is not copied between the caller and the request. */
hp_rc batch_queue_enqueue_owned(struct batch_queue *q, struct hp_ctx *ctx, const char *run_id,
                                const struct batch_write *writes, size_t n,
                                const struct batch_done_cb *cb, struct hp_err *err) HP_WUR;

/* batch_queue_enqueue_all: writes[0..n) (n >= 1) as ceil(n / batch_queue_max_writes(q)) records
 * of batch_queue_enqueue_owned, in order, ALL OR NONE: every record is checked and the queue's
 * room for all of them is taken under one lock, so a refusal (full, closing, a bad write, more
 * than the queue's whole capacity: R2) leaves nothing of them queued and takes nothing. On HP_OK
 * *records is how many records were made: cb->done is called once per record (R1), each with its
 * own batch's outcome (records may land in different txns). */
hp_rc batch_queue_enqueue_all(struct batch_queue *q, struct hp_ctx *ctx, const char *run_id,
                              const struct batch_write *writes, size_t n,
                              const struct batch_done_cb *cb, size_t *records,
                              struct hp_err *err) HP_WUR;

/* batch_queue_max_writes: the most writes one record may hold (max_txn_ops - 1) */
size_t batch_queue_max_writes(const struct batch_queue *q);

/* batch_queue_claim_epoch: take the epoch again (a new leader): every txn of an older epoch,
 * including a deposed leader's late one, fails from now on. */
hp_rc batch_queue_claim_epoch(struct batch_queue *q, struct hp_ctx *ctx, struct hp_err *err) HP_WUR;

/* batch_queue_flush: send queued records now instead of after linger_ms. */
void batch_queue_flush(struct batch_queue *q);

/* batch_queue_close: rule R6. Returns HP_OK when every callback has run, else hp_ctx_err. */
hp_rc batch_queue_close(struct batch_queue *q, struct hp_ctx *ctx) HP_WUR;

/* batch_queue_free: stop threads (rule R6) and free. NULL allowed. */
void batch_queue_free(struct batch_queue *q);

void batch_queue_stats(struct batch_queue *q, struct batch_stats *out);

struct prom_writer;
/* batch_queue_metrics: the txn duration and batch size histograms, in the Prometheus text
 * format */
void batch_queue_metrics(struct batch_queue *q, struct prom_writer *w);

#endif
