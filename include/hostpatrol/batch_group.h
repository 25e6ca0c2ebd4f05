/*
 * batch_group.h - one run's writes committed through the batch queue with ONE outcome.
 *
 * A group collects any number of writes, commits them as records of at most
 * batch_queue_max_writes(q) writes each (so no caller knows the per-txn limit), and waits for
 * every record's callback until its context's deadline plus a slack. The outcome is:
 *   COMMITTED   every record committed; the highest revision and its batch;
 *   FAILED / ROLLED_BACK  the first record that did not commit (its batch and reason);
 *   UNRESOLVED  some record's batch was still being resolved when the wait ended (the batch
 *               named, from the queue's rule R1b); its final outcome comes later, once, to the
 *               callback given to batch_group_on_final.
 * Records of one group may land in different txns (G1 of batch_queue.h holds per record).
 *
 * Thread-safety: a group is used by one thread; the queue's callbacks reach it through a
 * reference-counted wait with its own lock, so the group may be freed while they are still to
 * come.
 */
#ifndef HOSTPATROL_BATCH_GROUP_H
#define HOSTPATROL_BATCH_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/batch_queue.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/rc.h"

struct batch_group_outcome {
    enum batch_outcome outcome;
    hp_rc rc;          /* HP_OK when committed, else the cause class (HP_ERR_UNKNOWN_OUTCOME when
                        * unresolved) */
    int64_t revision;  /* COMMITTED: the highest revision of its records */
    char batch[64];    /* the batch named by the outcome ("" when none was formed) */
    char reason[512];  /* human-readable; "" when committed */
    size_t records;    /* records the group's writes were queued as (0: none queued) */
    size_t committed;  /* of them, committed so far (a failed group's records may have landed
                        * in other txns that committed: each record is atomic, not the group) */
    size_t unfinished; /* of them, not final when the wait ended (their outcome comes later) */
};

/* Called exactly once (see batch_group_on_final); o borrowed for the call. */
typedef void (*batch_group_final_fn)(void *arg, const struct batch_group_outcome *o);

struct batch_group;

/* batch_group_new: an empty group for queue q (borrowed; must outlive the group's commit).
 * *out owned: batch_group_free. HP_ERR_NOMEM. */
hp_rc batch_group_new(struct batch_queue *q, struct batch_group **out) HP_WUR;

/* batch_group_add: one write; key and value taken (value NULL: a delete of key), freed on
 * error too; the commit hands them on to the queue without a copy (batch_queue_enqueue_owned).
 * HP_ERR_NOMEM. */
hp_rc batch_group_add(struct batch_group *g, char *key, char *value) HP_WUR;

/* batch_group_len: writes added so far */
size_t batch_group_len(const struct batch_group *g);

/* batch_group_commit: enqueue every write (under ctx, borrowed; run_id copied, may be NULL) and
 * wait for the outcome until ctx's deadline plus slack_ms (60 s when ctx has none), or until ctx
 * is cancelled. HP_OK with *out set. An error with err set when the queue refused the group (full,
 * closing, a write too large): then NONE of its writes was queued (batch_queue_enqueue_all), so
 * none can land later. Once per group. */
hp_rc batch_group_commit(struct batch_group *g, struct hp_ctx *ctx, const char *run_id,
                         int64_t slack_ms, struct batch_group_outcome *out,
                         struct hp_err *err) HP_WUR;

/* batch_group_on_final: after a commit that returned UNRESOLVED, have fn(arg, final outcome)
 * called exactly once: at once, on this thread, when the outcome came meanwhile; else later,
 * from a queue thread (fn must not block long nor call into the queue). The final outcome is
 * UNRESOLVED only when the queue was freed first (batch_queue.h R6). Once per group. */
void batch_group_on_final(struct batch_group *g, batch_group_final_fn fn, void *arg);

/* batch_group_free: NULL allowed. Callbacks still to come are not affected. */
void batch_group_free(struct batch_group *g);

#endif
