/*
 * run_report.h - what one run of a HostInspection reports: result counts by status, the first
 * failing results and nodes (for status), and its commit's outcome.
 *
 * Thread-safety: one report belongs to one run (one worker). Nothing blocks.
 */
#ifndef HOSTPATROL_RECONCILE_RUN_REPORT_H
#define HOSTPATROL_RECONCILE_RUN_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/check_result.h"
#include "hostpatrol/rc.h"

struct run_report {
    size_t counts[4];
    size_t nodes;          /* nodes matching nodeSelector (whose agents report) */
    json_t *failing_nodes; /* owned array of names, at most RECONCILER_MAX_FAILING */
    int64_t revision;
    char batch_id[64];
    hp_rc commit_rc;
    char why[768];
    json_t *failing; /* owned array */
};

/* run_report_init: an empty report. HP_ERR_NOMEM (the report is still released safely). */
hp_rc run_report_init(struct run_report *rep) HP_WUR;
/* run_report_release: frees its arrays. NULL allowed. */
void run_report_release(struct run_report *rep);

/* run_report_add: count a result of check on target with status st; one not OK is listed in
 * failing (at most RECONCILER_MAX_FAILING) with its reason. Strings borrowed (copied). */
void run_report_add(struct run_report *rep, const char *target, const char *check,
                    enum check_status st, const char *reason);

#endif
