/*
 * nodes.h - the reconciler's view of Nodes: which nodes a spec.nodeSelector selects (as a
 * labelSelector query for the controller's node LIST, and as a match on labels for an agent),
 * the nodeCondition checks (one result per matching node), the controller's summary of the
 * agents' node-local results, and what an agent does for a HostInspection.
 *
 * The selector functions take a nodeSelector already accepted by inspection_spec_parse (the
 * parser's checks make them safe: string labels, known operators, values where the operator
 * wants them); they are fuzzed by tests/fuzz/fuzz-label_selector.c.
 * Thread-safety: every function may be called from any worker; *mu guards labels, labels_ns
 * and the schedule passed to nodes_agent_step. Blocking: nodes_conditions lists Nodes under
 * the caller's ctx; the agent's label read has its own deadline (META_TIMEOUT).
 */
#ifndef HOSTPATROL_RECONCILE_NODES_H
#define HOSTPATROL_RECONCILE_NODES_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/check_result.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/etcd_client.h"
#include "hostpatrol/inspection_spec.h"
#include "hostpatrol/kube_client.h"
#include "hostpatrol/rc.h"
#include "hostpatrol/spec_cache.h"
#include "reconcile/run_report.h"
#include "reconcile/schedule.h"

struct nodes {
    struct kube_client *kube; /* borrowed */
    struct hp_ctx *ctx;       /* borrowed: the parent of the label read's deadline */
    pthread_mutex_t *mu;      /* borrowed: guards labels, labels_ns and the schedule */
    const char *node_name;    /* borrowed: the agent's node; NULL in the controller */
    json_t *labels;           /* agent: the node's labels (owned), read at most every 10 s */
    int64_t labels_ns;        /* when they were read (hp_now_ns) */
};

/* nodes_release: drops the labels. NULL allowed. */
void nodes_release(struct nodes *n);

/* nodes_selector_query: sel (borrowed) as the percent-encoded labelSelector query value the
 * node LIST sends (*out owned: hp_free; "" for an empty selector). HP_ERR_NOMEM. */
hp_rc nodes_selector_query(const json_t *sel, char **out) HP_WUR;

/* nodes_selector_matches: does sel (borrowed; NULL: every node) select a node with these labels
 * (borrowed object of strings), as the agent decides it? */
bool nodes_selector_matches(const json_t *sel, const json_t *labels);

/* nodes_conditions: one result per matching node for each nodeCondition check of spec, appended
 * to *res (grown as needed: *n_res used of *cap; owned by the caller). A failed LIST makes each
 * such check one UNKNOWN result "-" with the reason, and *listed false (so the stored per-node
 * results are kept, not taken as gone). Nodes are listed for node-local checks too: *nodes (new
 * reference, NULL when not listed) are the matching nodes, whose agents should report.
 * HP_ERR_NOMEM only: a failed LIST is a result. */
hp_rc nodes_conditions(struct nodes *n, struct hp_ctx *ctx, const struct inspection_spec *spec,
                       struct check_result **res, size_t *n_res, size_t *cap, bool *listed,
                       json_t **nodes) HP_WUR;

/* nodes_local_summary: the controller's view of the agents' results, added to rep: for every
 * matching node (nodes borrowed) and node-local check, the stored result (stored borrowed, may
 * be NULL; plen the length of the resource's key prefix); a missing or stale one (older than
 * two intervals plus the timeout, as of now_ms) is UNKNOWN. */
void nodes_local_summary(const struct inspection_spec *spec, const json_t *nodes,
                         const struct etcd_range_resp *stored, size_t plen, int64_t now_ms,
                         struct run_report *rep);

/* What an agent does now for one HostInspection */
enum nodes_agent_step {
    NODES_AGENT_SKIP,     /* nothing: being deleted, refused, suspended, or never run here */
    NODES_AGENT_WITHDRAW, /* the node is no longer selected: delete its results */
    NODES_AGENT_WAIT,     /* the next run is due at *due_ms */
    NODES_AGENT_RUN,      /* run the node-local checks of *ref's spec */
};

/* nodes_agent_step: what the agent on n->node_name does for obj (borrowed; key its
 * "namespace/name") at now_ms: the node selector first, and whether the spec has anything
 * node-local, so a resource this agent would not run is not parsed (nor kept in specs); then
 * whether a run is due (decision_due, the memo in sched). *ref: the parsed spec (new
 * reference: spec_ref_put) or NULL. Fails only when the node's labels cannot be read (never
 * read yet) or on NOMEM. */
hp_rc nodes_agent_step(struct nodes *n, struct spec_cache *specs, struct schedule *sched,
                       const char *key, const json_t *obj, int64_t now_ms,
                       enum nodes_agent_step *step, struct spec_ref **ref, int64_t *due_ms,
                       struct hp_err *err) HP_WUR;

#endif
