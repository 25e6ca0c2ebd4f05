/*
 * schedule.h - when a HostInspection runs next, as this process knows it: the memo of what it
 * did for each key (last run, generation, run-now value, next due time, a status not yet
 * written, late commit outcomes), the PRNG of the schedule's jitter, and the RFC 3339 times
 * status carries.
 *
 * Invariants: a key has at most one memo; a memo's key is never NULL.
 * Thread-safety: struct schedule has no lock of its own: the caller holds the one that guards
 * it (the reconciler's mu) around every schedule_* call taking one. The time functions are
 * reentrant. Nothing blocks.
 */
#ifndef HOSTPATROL_RECONCILE_SCHEDULE_H
#define HOSTPATROL_RECONCILE_SCHEDULE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define SCHEDULE_BUCKETS 1024

struct late_outcome; /* reconciler.c: a commit outcome that came after its run */

/* What this process did for one key, so a status not yet back in the cache cannot start a
 * second run */
struct memo {
    struct memo *next;
    char *key;           /* owned */
    int64_t last_run_ms; /* wall clock of the last run's start */
    int64_t generation;  /* generation of that run */
    char *run_now;       /* annotation value acted on (owned), or NULL */
    int64_t next_run_ms; /* scheduled (with jitter), 0: none */
    json_t *pending;     /* a status not yet written (owned), or NULL */
    char unresolved[64]; /* the run whose status says CommitUnresolved and is the latest, or "" */
    struct late_outcome *late; /* owned list (freed by schedule.free_late), newest first */
};

struct schedule {
    struct memo *memo[SCHEDULE_BUCKETS];
    uint64_t seed;                                /* xorshift state, never 0 */
    void (*free_late)(struct late_outcome *list); /* frees a memo's late list; NULL: none kept */
};

/* schedule_init: an empty memo; seed: the PRNG's start (0 is replaced); free_late: how a
 * memo's late list is freed (may be NULL when none is ever kept). */
void schedule_init(struct schedule *s, uint64_t seed, void (*free_late)(struct late_outcome *));
/* schedule_release: frees every memo. NULL allowed. */
void schedule_release(struct schedule *s);

/* schedule_memo_get: key's memo (borrowed, valid under the lock until dropped); create: add one
 * when there is none (NULL on NOMEM), else NULL when there is none. key borrowed (copied). */
struct memo *schedule_memo_get(struct schedule *s, const char *key, bool create);
/* schedule_memo_drop: forget key (no-op when unknown). */
void schedule_memo_drop(struct schedule *s, const char *key);

/* schedule_next_random: the next number of the jitter PRNG (xorshift64). */
uint64_t schedule_next_random(struct schedule *s);

/* schedule_ran: remember a run of key that started at now (wall ms) for generation gen and
 * run-now value run_now (borrowed, may be NULL); returns when the next one is due: one
 * interval plus up to 10% jitter later (returned even when the memo could not be added). */
int64_t schedule_ran(struct schedule *s, const char *key, int64_t now, int64_t gen,
                     const char *run_now, int64_t interval_ms);

/* schedule_wall_ms: the wall clock in ms since the epoch. */
int64_t schedule_wall_ms(void);
/* schedule_rfc3339: ms as "YYYY-MM-DDTHH:MM:SSZ" (seconds precision, as metav1.Time). */
void schedule_rfc3339(int64_t ms, char out[32]);
/* schedule_parse_rfc3339: s (may be NULL) in ms since the epoch; 0 for NULL or unreadable. */
int64_t schedule_parse_rfc3339(const char *s);

#endif
