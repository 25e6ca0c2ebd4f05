/*
 * run_plan.h - a run planned from a parsed spec: which probes run (an endpoint check once per
 * target for tcp and tls, once for http and dns) and which node-local checks run on the host.
 * The reconciler (controller and agent) and `hostpatrol inspect` plan their runs with it, so
 * both split a spec the same way.
 *
 * Invariants: items and local are never NULL after run_plan_init succeeded (they may be empty).
 * Ownership: the arrays are owned by the plan; what they point to is borrowed from the spec,
 * which must outlive the plan. Thread-safety: a plan is used by one thread. Nothing blocks.
 */
#ifndef HOSTPATROL_RUN_PLAN_H
#define HOSTPATROL_RUN_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "hostpatrol/inspection_spec.h"
#include "hostpatrol/probe.h"
#include "hostpatrol/rc.h"

struct run_plan {
    struct probe_item *items; /* owned array of n_items probes (spec borrowed) */
    size_t n_items;
    const struct check_spec **local; /* owned array of n_local node-local checks (borrowed) */
    size_t n_local;
    size_t n_node_conditions; /* nodeCondition checks (results: one per node) */
};

/* run_plan_init: plan spec's run (spec borrowed). with_local false: no node-local check is
 * planned (n_local 0). HP_ERR_NOMEM (the plan is then released). */
hp_rc run_plan_init(struct run_plan *p, const struct inspection_spec *spec, bool with_local) HP_WUR;
/* run_plan_release: frees the arrays. NULL allowed. */
void run_plan_release(struct run_plan *p);

#endif
