/* run_report.c - what a run reports (see run_report.h). */
#include "reconcile/run_report.h"

#include <string.h>

#include "hostpatrol/reconciler.h"

hp_rc run_report_init(struct run_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    rep->failing = json_array();
    rep->failing_nodes = json_array();
    return rep->failing && rep->failing_nodes ? HP_OK : HP_ERR_NOMEM;
}

void run_report_release(struct run_report *rep)
{
    if (!rep)
        return;
    json_decref(rep->failing);
    json_decref(rep->failing_nodes);
    rep->failing = rep->failing_nodes = NULL;
}

void run_report_add(struct run_report *rep, const char *target, const char *check,
                    enum check_status st, const char *reason)
{
    rep->counts[st]++;
    if (st != CHECK_OK && json_array_size(rep->failing) < RECONCILER_MAX_FAILING)
        json_array_append_new(rep->failing,
                              json_pack("{s:s,s:s,s:s,s:s}", "target", target, "check", check,
                                        "status", check_status_name(st), "reason", reason));
}
