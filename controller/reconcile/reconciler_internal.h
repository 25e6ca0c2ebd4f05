/*
 * reconciler_internal.h - the reconciler's label-selector code, exported for its fuzz target
 * (tests/fuzz/fuzz-label_selector.c) and tests only; not an API for other modules.
 *
 * Both take a nodeSelector already accepted by inspection_spec_parse (the parser's checks are
 * what makes them safe: string labels, known operators, values where the operator wants them).
 * Thread-safety: reentrant.
 */
#ifndef HOSTPATROL_RECONCILER_INTERNAL_H
#define HOSTPATROL_RECONCILER_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "hostpatrol/rc.h"

/* reconciler_selector_query: sel (borrowed) as the percent-encoded labelSelector query value
 * the node LIST sends (*out owned: hp_free; "" for an empty selector). HP_ERR_NOMEM. */
hp_rc reconciler_selector_query(const json_t *sel, char **out) HP_WUR;

/* reconciler_selector_matches: does sel (borrowed; NULL: every node) select a node with these
 * labels (borrowed object of strings), as the agent decides it? */
bool reconciler_selector_matches(const json_t *sel, const json_t *labels);

#endif
