/* decision.c - is a run due; which conditions follow (see decision.h). */
#include "reconcile/decision.h"

#include <stdio.h>
#include <string.h>

#include "hostpatrol/check_result.h"

static const char *nz(const char *s)
{
    return s ? s : "-";
}

static bool differs(const char *a, const char *b)
{
    return !b || strcmp(a, b);
}

/* the agent: no status, only the memo */
static void due_agent(const struct decision_in *in, struct decision *out)
{
    const struct memo *m = in->memo;
    bool new_gen = !m || m->generation != in->generation;
    bool new_run_now = in->run_now && (!m || differs(in->run_now, m->run_now));

    out->due_ms = m ? m->next_run_ms : 0;
    if (!new_gen && !new_run_now && in->now_ms < out->due_ms)
        out->why = DECISION_NOT_DUE;
    else
        out->why = !m || !m->last_run_ms ? DECISION_FIRST_RUN
                   : new_gen             ? DECISION_SPEC_CHANGED
                   : new_run_now         ? DECISION_RUN_NOW
                                         : DECISION_SCHEDULED;
}

void decision_due(const struct decision_in *in, struct decision *out)
{
    const struct memo *m = in->memo;
    int64_t last_status = in->status_last_run_ms, last;
    bool new_gen, new_run_now;

    if (in->agent) {
        due_agent(in, out);
        return;
    }
    last = m && m->last_run_ms > last_status ? m->last_run_ms : last_status;
    new_gen = in->generation != in->status_generation && (!m || m->generation != in->generation);
    new_run_now = in->run_now && differs(in->run_now, in->status_run_now) &&
                  (!m || differs(in->run_now, m->run_now));
    out->due_ms = m && m->next_run_ms && m->last_run_ms >= last_status ? m->next_run_ms
                                                                       : last + in->interval_ms;
    if (last && !new_gen && !new_run_now && in->now_ms < out->due_ms)
        out->why = DECISION_NOT_DUE;
    else
        out->why = !last         ? DECISION_FIRST_RUN
                   : new_gen     ? DECISION_SPEC_CHANGED
                   : new_run_now ? DECISION_RUN_NOW
                                 : DECISION_SCHEDULED;
}

const char *decision_why_name(enum decision_why why)
{
    switch (why) {
    case DECISION_FIRST_RUN:
        return "first run";
    case DECISION_SPEC_CHANGED:
        return "spec changed";
    case DECISION_RUN_NOW:
        return "run-now";
    case DECISION_SCHEDULED:
        return "scheduled";
    default:
        return "not due";
    }
}

size_t decision_run_conditions(const struct decision_run *in, struct cond out[DECISION_RUN_CONDS])
{
    size_t total = in->counts[0] + in->counts[1] + in->counts[2] + in->counts[3];
    size_t msz = sizeof(out[0].message);

    if (in->commit_rc) {
        out[0] = (struct cond){
            "Ready", "False",
            in->commit_rc == HP_ERR_UNKNOWN_OUTCOME ? "CommitUnresolved" : "CommitFailed", ""};
        snprintf(out[0].message, msz, "run %s: %s", in->run_id, nz(in->why));
    } else {
        out[0] = (struct cond){"Ready", "True", "RunSucceeded", ""};
        if (in->revision)
            snprintf(out[0].message, msz,
                     "run %s judged %zu results; the controller's stored in etcd at revision %lld",
                     in->run_id, total, (long long)in->revision);
        else
            snprintf(out[0].message, msz,
                     "run %s judged %zu results (node results from the agents)", in->run_id, total);
    }
    if (in->counts[CHECK_WARN] + in->counts[CHECK_CRIT] + in->counts[CHECK_UNKNOWN]) {
        out[1] = (struct cond){"Degraded", "True", "ChecksFailing", ""};
        snprintf(out[1].message, msz, "%zu crit, %zu warn, %zu unknown; first: %s/%s %s: %s",
                 in->counts[CHECK_CRIT], in->counts[CHECK_WARN], in->counts[CHECK_UNKNOWN],
                 nz(in->first_check), nz(in->first_target), nz(in->first_status),
                 nz(in->first_reason));
    } else {
        out[1] =
            (struct cond){"Degraded", "False", "ChecksOK", "every check of the last run is OK"};
    }
    out[2] = (struct cond){"InvalidSpec", "False", "SpecValid", "the spec is valid"};
    out[3] = (struct cond){"Suspended", "False", "Active", "runs start on schedule"};
    return DECISION_RUN_CONDS;
}

size_t decision_invalid_conditions(bool forbidden, const char *field, const char *msg,
                                   struct cond out[2])
{
    /* Forbidden: valid, but the cluster's policy does not allow it here */
    const char *reason = forbidden ? "Forbidden" : "InvalidSpec";

    out[0] = (struct cond){"InvalidSpec", "True", reason, ""};
    snprintf(out[0].message, sizeof(out[0].message), "%s", msg);
    out[1] = (struct cond){"Ready", "False", reason, ""};
    snprintf(out[1].message, sizeof(out[1].message), "spec %s at %s: %s",
             forbidden ? "refused by the cluster policy" : "error", field, msg);
    return 2;
}

size_t decision_suspended_conditions(struct cond out[2])
{
    out[0] = (struct cond){"Suspended", "True", "Suspended",
                           "spec.suspend is true: no run starts; results already written stay"};
    out[1] = (struct cond){"InvalidSpec", "False", "SpecValid", "the spec is valid"};
    return 2;
}

void decision_cleanup_condition(const char *finalizer, const char *reason, const char *why,
                                struct cond *out)
{
    *out = (struct cond){"Ready", "False", reason, ""};
    snprintf(out->message, sizeof(out->message), "the finalizer %s stays: %s", finalizer, why);
}

void decision_late_condition(const char *run_id, const struct batch_group_outcome *o,
                             struct cond *out, const char **event_reason)
{
    bool ok = o->outcome == BATCH_COMMITTED;

    *out = (struct cond){"Ready", ok ? "True" : "False", ok ? "RunSucceeded" : "CommitFailed", ""};
    if (ok)
        snprintf(out->message, sizeof(out->message),
                 "run %s: etcd commit of batch %s, unresolved when the run ended, committed at "
                 "revision %lld",
                 run_id, o->batch, (long long)o->revision);
    else
        snprintf(out->message, sizeof(out->message),
                 "run %s: etcd commit of batch %s, unresolved when the run ended, is final: %s%s%s",
                 run_id, o->batch, batch_outcome_name(o->outcome), o->reason[0] ? ": " : "",
                 o->reason);
    *event_reason = ok                                ? "CommitResolved"
                    : o->outcome == BATCH_ROLLED_BACK ? "CommitRolledBack"
                                                      : "CommitFailed";
}

bool decision_event(const char *type, bool had_old, const char *old_status, const char *new_status,
                    bool *warning)
{
    *warning = false;
    if (!type || !new_status ||
        (strcmp(type, "Ready") && strcmp(type, "Degraded") && strcmp(type, "InvalidSpec")))
        return false;
    if (!strcmp(old_status ? old_status : "Unknown", new_status))
        return false;
    *warning = strcmp(type, "Ready") ? !strcmp(new_status, "True") : strcmp(new_status, "True");
    return had_old || *warning; /* a first healthy state is not news */
}
