/*
 * status.h - what the reconciler writes on a HostInspection besides etcd: status.conditions
 * (a transition time kept while a condition's status stays), the status merge patch (kept in
 * the key's memo until written), the finalizer, and Events on condition changes; the reports
 * built from them (a run's status, a refused or suspended spec, a cleanup that failed, a commit
 * outcome that came after its run), whose conditions decision.h decides. Also how the
 * informer's cache trims an object (status_transform).
 *
 * struct status borrows everything it points to: the reconciler fills it at start and it lives
 * as long as the reconciler.
 * Thread-safety: every function may be called from any worker; *mu guards *sched and *stats.
 * Blocking: the writes call the apiserver, each under a deadline of its own (STATUS_TIMEOUT
 * for a status write and its Events, META_TIMEOUT for a read or a finalizer change), child of
 * ctx (cancelled by reconciler_stop); a failed Event is only logged.
 */
#ifndef HOSTPATROL_RECONCILE_STATUS_H
#define HOSTPATROL_RECONCILE_STATUS_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hostpatrol/ctx.h"
#include "hostpatrol/kube_client.h"
#include "hostpatrol/rc.h"
#include "hostpatrol/reconciler.h"
#include "reconcile/decision.h"
#include "reconcile/run_report.h"
#include "reconcile/schedule.h"

#define STATUS_TIMEOUT 10000 /* one status write (and its Events) */
#define META_TIMEOUT   10000 /* a read of the object, adding or removing the finalizer */

struct status {
    struct kube_client *kube;       /* borrowed */
    struct hp_ctx *ctx;             /* borrowed: the parent of every write's deadline */
    const char *identity;           /* borrowed: the Events' reportingInstance */
    pthread_mutex_t *mu;            /* borrowed: guards *sched and *stats */
    struct schedule *sched;         /* borrowed: the memo, where a pending status waits */
    struct reconciler_stats *stats; /* borrowed: status_writes and events counted here */
    /* log: log msg about key and run run_id (may be NULL; all borrowed) at lvl */
    void (*log)(void *arg, enum reconciler_log_level lvl, const char *key, const char *run_id,
                const char *msg);
    void *log_arg;
};

/* status_str: the string at o.a (o.a.b when b is set), or NULL; o may be NULL. Borrowed. */
const char *status_str(const json_t *o, const char *a, const char *b);
/* status_generation: metadata.generation of obj (0 when absent). */
int64_t status_generation(const json_t *obj);
/* status_run_now_annotation: obj's RECONCILER_RUN_NOW annotation (borrowed), or NULL. */
const char *status_run_now_annotation(const json_t *obj);

/* status_old_condition: obj's status condition of this type (borrowed), or NULL. */
const json_t *status_old_condition(const json_t *obj, const char *type);
/* status_old_cond_status: its status, "Unknown" when absent (borrowed). */
const char *status_old_cond_status(const json_t *obj, const char *type);

/* status_conditions_json: the new status.conditions list (new reference; NULL on NOMEM): cs[0..n)
 * (observedGeneration gen; lastTransitionTime now, or the old one while a condition's status
 * stays), then obj's other conditions unchanged (a merge patch replaces the whole list). */
json_t *status_conditions_json(const json_t *obj, const struct cond *cs, size_t n, int64_t gen,
                               const char *now);

/* status_patch_new: the start of a status patch (new reference; NULL on NOMEM). Empty: a merge
 * patch leaves every field it does not name as it is on the server. */
json_t *status_patch_new(void);

/* status_transform: trim obj (borrowed, changed in place) to what the informer caches of a
 * HostInspection (10,000 of them must fit in a few MB): metadata, spec and status.{conditions,
 * lastRunTime, observedGeneration, runNow}; of the reconciler's own conditions only type,
 * status, lastTransitionTime and observedGeneration (and the message of a true InvalidSpec). */
void status_transform(json_t *obj);

/* status_has_finalizer: does obj carry RECONCILER_FINALIZER? */
bool status_has_finalizer(const json_t *obj);
/* status_set_finalizers: merge-patch metadata.finalizers with RECONCILER_FINALIZER added or
 * removed (optimistic: resourceVersion), under ctx (borrowed). *out: the updated object (new
 * reference) or NULL. */
hp_rc status_set_finalizers(struct status *s, struct hp_ctx *ctx, const json_t *obj, bool add,
                            json_t **out, struct hp_err *err) HP_WUR;

/* status_post_event: an Event on the HostInspection obj, under ctx (best effort: a failure is
 * logged). Strings borrowed. */
void status_post_event(struct status *s, struct hp_ctx *ctx, const json_t *obj, const char *type,
                       const char *reason, const char *message);

/* status_live_object: the object as the server has it now (new reference), for a status patch
 * that carries conditions over unchanged (the cache keeps them without messages). */
hp_rc status_live_object(struct status *s, const json_t *obj, json_t **out,
                         struct hp_err *err) HP_WUR;

/* status_write: merge patch of obj's /status with st (taken); then an Event for each of Ready,
 * Degraded and InvalidSpec whose status changed from what obj showed (decision_event). */
hp_rc status_write(struct status *s, const json_t *obj, json_t *st, struct hp_err *err) HP_WUR;

/* status_write_conditions: status_write of st (taken; NULL: HP_ERR_NOMEM) with the conditions
 * cs[0..n) (observedGeneration gen), the other conditions as the live object has them. */
hp_rc status_write_conditions(struct status *s, const json_t *obj, json_t *st,
                              const struct cond *cs, size_t n, int64_t gen,
                              struct hp_err *err) HP_WUR;

/* status_keep_pending: keep st (borrowed; a reference is kept) in key's memo until written. */
void status_keep_pending(struct status *s, const char *key, json_t *st);
/* status_write_pending: status_write of st (taken); once written the memo forgets it (unless a
 * newer one replaced it meanwhile). */
hp_rc status_write_pending(struct status *s, const char *key, const json_t *obj, json_t *st,
                           struct hp_err *err) HP_WUR;
/* status_get_pending: a status a failed write left behind in key's memo (new reference), or
 * NULL. */
json_t *status_get_pending(struct status *s, const char *key);

/* status_ensure_finalizer: add RECONCILER_FINALIZER to *obj (a new reference; replaced by the
 * updated object) when it is missing. A failure is logged. */
hp_rc status_ensure_finalizer(struct status *s, const char *key, json_t **obj,
                              struct hp_err *err) HP_WUR;

/* status_report_cleanup: Ready False (reason, why: borrowed) while the finalizer stays, the
 * other conditions kept; logged; a failed write is only logged. */
void status_report_cleanup(struct status *s, const char *key, const json_t *obj, const char *reason,
                           const char *why);

/* status_report_refused: InvalidSpec (or Forbidden: why HP_ERR_AUTH) on status for a spec the
 * spec cache refused, e (borrowed) saying why; nothing is written when the same error is
 * already there for this generation. */
hp_rc status_report_refused(struct status *s, const char *key, const json_t *obj, hp_rc why,
                            const struct hp_err *e, struct hp_err *err) HP_WUR;

/* status_report_suspended: Suspended on status (once per generation); Ready and Degraded stay
 * as they were. */
hp_rc status_report_suspended(struct status *s, const json_t *obj, struct hp_err *err) HP_WUR;

/* status_run_patch: the status patch after run run_id (borrowed) that started at now, the next
 * one due at due (new reference; NULL on NOMEM): the conditions decision_run_conditions gives,
 * the summary, the failing checks and nodes, times, runNow, lastCommit. rep borrowed. */
json_t *status_run_patch(const json_t *obj, const struct run_report *rep, const char *run_id,
                         int64_t now, int64_t due);

/* status_report_late: the outcome o (borrowed) of run run_id's commit, unresolved when the run
 * ended, is final: Ready (and lastCommit) on status while that run's status is still the
 * latest, then logged and an Event (CommitResolved, CommitRolledBack, CommitFailed). A failed
 * status write returns its error (nothing logged nor posted: the caller retries). */
hp_rc status_report_late(struct status *s, const char *key, const json_t *obj, const char *run_id,
                         const struct batch_group_outcome *o, struct hp_err *err) HP_WUR;

#endif
