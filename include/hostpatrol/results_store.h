/*
 * results_store.h - where check results live in etcd: the key schema, reading a resource's
 * stored results, choosing the stale ones to delete, and committing one run's writes with ONE
 * outcome (through batch_group.h, so no caller knows the per-txn limit).
 *
 * Key schema (docs/results.md; the only place it is written or parsed):
 *     <prefix>results/<namespace>/<name>/<check>/<target>
 * Namespace, name and check hold no '/' (the spec parser checks); the target is the rest of
 * the key and may hold '/'. The default prefix is RESULTS_STORE_DEFAULT_PREFIX.
 *
 * One result's path to etcd: the run serializes it once (results_store_run_put: one JSON
 * text), the run takes it, the batch queue takes it from the run (no copy), and the txn is
 * rendered from it (the one copy). The text a committed run publishes (results_store_run_text)
 * is assembled from the same serialized values, not serialized again.
 *
 * Thread-safety: a store may be used from several threads (its fields do not change after
 * results_store_new; the late-outcome hook has its own lock). A run belongs to one thread.
 * Blocking: results_store_read and results_store_run_commit, each under the ctx given.
 */
#ifndef HOSTPATROL_RESULTS_STORE_H
#define HOSTPATROL_RESULTS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/batch_group.h"
#include "hostpatrol/batch_queue.h"
#include "hostpatrol/check_result.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/etcd_client.h"
#include "hostpatrol/inspection_spec.h"
#include "hostpatrol/rc.h"

#define RESULTS_STORE_DEFAULT_PREFIX BATCH_QUEUE_DEFAULT_PREFIX /* "/hostpatrol/" */

/* ---- the key schema (no store needed) ---- */

/* results_store_key: "<prefix>results/<ns>/<name>/<check>/<target>" (all borrowed); *out owned.
 * HP_ERR_NOMEM. */
hp_rc results_store_key(const char *prefix, const char *ns, const char *name, const char *check,
                        const char *target, char **out) HP_WUR;

/* results_store_scope: the range prefix of a scope: "<prefix>results/" (ns NULL),
 * "<prefix>results/<ns>/" (name NULL) or "<prefix>results/<ns>/<name>/"; *out owned; *base_len
 * (may be NULL) gets the length of "<prefix>results/". HP_ERR_NOMEM. */
hp_rc results_store_scope(const char *prefix, const char *ns, const char *name, char **out,
                          size_t *base_len) HP_WUR;

/* A parsed key. The four fields point into buf, or at the static "?" for a part the key lacks. */
struct results_store_key {
    char *buf; /* owned */
    const char *ns, *name, *check, *target;
};

/* results_store_key_parse: split key (key_len bytes, borrowed) made by results_store_key with
 * prefix. Every part found is set even on error, the others are "?" (so a listing can still show
 * a malformed key): HP_ERR_INVALID with err's field naming the first part missing or empty
 * ("prefix", "namespace", "name", "check", "target"); HP_ERR_NOMEM (out zeroed). Release out in
 * every case. */
hp_rc results_store_key_parse(const char *prefix, const char *key, size_t key_len,
                              struct results_store_key *out, struct hp_err *err) HP_WUR;
void results_store_key_release(struct results_store_key *k); /* NULL allowed; k zeroed */

/* ---- stored results and stale ones ---- */

/* A resource's stored results. kvs[i].key + plen is "<check>/<target>". */
struct results_store_stored {
    struct etcd_range_resp resp; /* owned */
    size_t plen;                 /* length of "<prefix>results/<ns>/<name>/" */
};
void results_store_stored_release(struct results_store_stored *s); /* NULL allowed */

/* What a run produced, for results_store_stale */
struct results_store_produced {
    const struct inspection_spec *spec; /* borrowed */
    const struct check_result *res;     /* borrowed, n_res of them */
    size_t n_res;
    const char *node_name; /* an agent (tends only this node's results), or NULL: the controller */
    bool nodes_listed;     /* the controller listed the nodes this run */
};

/* results_store_stale_find: call stale(arg, i) for every stored->resp.kvs[i] the run no longer
 * produces. A check gone from the spec loses every result (the agent's too); a controller check
 * loses targets it no longer has; the controller keeps node-local checks' results (the agents')
 * and node conditions' when the nodes were not listed; an agent tends only its own node's. Stops
 * at the first error stale returns, and returns it. */
hp_rc results_store_stale_find(const struct results_store_stored *stored,
                               const struct results_store_produced *p,
                               hp_rc (*stale)(void *arg, size_t i), void *arg) HP_WUR;

/* ---- the store ---- */

/* A commit's outcome that was not final when the run's wait ended, come later: key and run_id
 * as given to results_store_run_commit; all borrowed for the call. Called from a queue thread,
 * under the store's hook lock (results_store_detach waits for it). */
typedef void (*results_store_late_fn)(void *arg, const char *key, const char *run_id,
                                      const struct batch_group_outcome *o);

struct results_store_config {
    struct etcd_client *etcd;   /* borrowed; outlives the store */
    struct batch_queue *batch;  /* borrowed; outlives the store's runs; NULL: a reader (no run) */
    const char *prefix;         /* copied; NULL: RESULTS_STORE_DEFAULT_PREFIX */
    int64_t commit_slack_ms;    /* a commit waits past its ctx's deadline this long */
    results_store_late_fn late; /* may be NULL: late outcomes are dropped */
    void *late_arg;
};

struct results_store;

/* results_store_new: *out owned: results_store_free. HP_ERR_NOMEM. */
hp_rc results_store_new(const struct results_store_config *cfg, struct results_store **out) HP_WUR;

/* results_store_detach: no late outcome reaches cfg.late from now on (waits for one under way).
 * NULL allowed. */
void results_store_detach(struct results_store *s);

/* results_store_free: detach, then free. NULL allowed. Late outcomes still to come are dropped. */
void results_store_free(struct results_store *s);

/* results_store_prefix: the key prefix (borrowed from s) */
const char *results_store_prefix(const struct results_store *s);

/* results_store_read: the results stored under <prefix>results/<ns>/<name>/ (values too) into
 * *out (release it) on HP_OK. Errors from etcd_range, err set. */
hp_rc results_store_read(struct results_store *s, struct hp_ctx *ctx, const char *ns,
                         const char *name, struct results_store_stored *out,
                         struct hp_err *err) HP_WUR;

/* results_store_list: results_store_read of a scope (results_store_scope: ns and name may be
 * NULL), only keys modified at min_mod_revision or later (0: all). out->plen is the scope's
 * length. */
hp_rc results_store_list(struct results_store *s, struct hp_ctx *ctx, const char *ns,
                         const char *name, int64_t min_mod_revision,
                         struct results_store_stored *out, struct hp_err *err) HP_WUR;

/* results_store_delete_all: delete every result of <ns>/<name>; *deleted (may be NULL) counts
 * them. Errors from etcd_delete, err set. */
hp_rc results_store_delete_all(struct results_store *s, struct hp_ctx *ctx, const char *ns,
                               const char *name, int64_t *deleted, struct hp_err *err) HP_WUR;

/* ---- one run's writes ---- */

struct results_store_run;

/* results_store_run_new: an empty run of <ns>/<name> (copied). keep_text: also keep what
 * results_store_run_text needs. *out owned: results_store_run_free. HP_ERR_NOMEM. */
hp_rc results_store_run_new(struct results_store *s, const char *ns, const char *name,
                            bool keep_text, struct results_store_run **out) HP_WUR;

/* results_store_run_put: the result r (borrowed) as its stored document (source and run_id
 * borrowed), serialized once. HP_ERR_NOMEM. */
hp_rc results_store_run_put(struct results_store_run *run, const struct check_result *r,
                            const char *source, const char *run_id) HP_WUR;

/* results_store_run_stale: add a delete of every stored result results_store_stale_find
 * selects. HP_ERR_NOMEM. */
hp_rc results_store_run_stale(struct results_store_run *run,
                              const struct results_store_stored *stored,
                              const struct results_store_produced *p) HP_WUR;

/* results_store_run_len: writes (puts and deletes) so far */
size_t results_store_run_len(const struct results_store_run *run);

/* The outcome of a commit, as a run reports it */
struct results_store_commit {
    int64_t revision; /* committed: the highest revision of its records */
    char batch[64];   /* the batch named by the outcome ("" when none was formed) */
    char why[768];    /* "" when committed */
};

/* results_store_run_commit: every write to etcd, waiting until ctx's deadline plus the
 * store's commit slack. HP_OK: committed. HP_ERR_UNKNOWN_OUTCOME: not final then (the batch
 * named in out->why); its outcome comes later to the store's late hook with key and run_id
 * (borrowed, copied). HP_ERR_TIMEOUT: rolled back; HP_ERR_UNAVAILABLE: failed; other errors:
 * the queue refused the writes. out->why says which in every case but HP_OK. Once per run. */
hp_rc results_store_run_commit(struct results_store_run *run, struct hp_ctx *ctx, const char *key,
                               const char *run_id, struct results_store_commit *out) HP_WUR;

/* results_store_run_text: the committed run as one JSON text,
 * {"namespace":NS,"name":NAME,"run":RUN_ID,"revision":R,"results":[...]}, the results being the
 * documents results_store_run_put serialized (the run must have been made with keep_text).
 * *out owned. HP_ERR_NOMEM; HP_ERR_INVALID without keep_text. */
hp_rc results_store_run_text(const struct results_store_run *run, const char *run_id,
                             int64_t revision, char **out) HP_WUR;

/* results_store_run_free: NULL allowed. A commit's late outcome still to come is not affected. */
void results_store_run_free(struct results_store_run *run);

#endif
