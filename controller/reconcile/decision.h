/*
 * decision.h - the reconciler's pure decisions: is a run of a HostInspection due, and which
 * conditions (type, status, reason, message) follow from a run's outcome, a refused or
 * suspended spec, a failed cleanup or a commit outcome that came after its run; and which
 * condition changes are worth an Event.
 *
 * No I/O, no clock, no lock: every input is an argument, so each decision is unit-tested
 * without an apiserver (tests/unit/test-decision.c). Thread-safety: reentrant.
 */
#ifndef HOSTPATROL_RECONCILE_DECISION_H
#define HOSTPATROL_RECONCILE_DECISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/batch_group.h"
#include "hostpatrol/rc.h"
#include "reconcile/schedule.h"

/* One condition of status.conditions as a decision makes it (strings borrowed from static
 * text; message a copy, truncated to fit) */
struct cond {
    const char *type, *status, *reason;
    char message[1024];
};

/* Why a run starts (or that none does) */
enum decision_why {
    DECISION_NOT_DUE,      /* nothing to do before due_ms */
    DECISION_FIRST_RUN,    /* no run is known */
    DECISION_SPEC_CHANGED, /* a generation not run yet */
    DECISION_RUN_NOW,      /* a run-now annotation value not acted on yet */
    DECISION_SCHEDULED,    /* the interval (and jitter) has passed */
};

/* What is known of one key when deciding whether a run is due (all borrowed) */
struct decision_in {
    int64_t now_ms;      /* wall clock */
    int64_t generation;  /* metadata.generation */
    int64_t interval_ms; /* spec.interval */
    const char *run_now; /* the run-now annotation, or NULL */
    bool agent;          /* an agent: it keeps no status, so only the memo counts */
    /* the controller's status (ignored for an agent) */
    int64_t status_generation;  /* status.observedGeneration */
    int64_t status_last_run_ms; /* status.lastRunTime, 0: none */
    const char *status_run_now; /* status.runNow, or NULL */
    const struct memo *memo;    /* what this process did for the key, or NULL */
};

struct decision {
    enum decision_why why; /* DECISION_NOT_DUE: no run now */
    int64_t due_ms;        /* when not due: when the next run is */
};

/* decision_due: is a run due now, and why. A run is due when none is known, the generation or
 * the run-now value has not been run yet, or now has reached the due time: the memo's (with
 * jitter) when it is at least as recent as status.lastRunTime, else the last run plus one
 * interval. */
void decision_due(const struct decision_in *in, struct decision *out);
/* decision_why_name: "first run", "spec changed", "run-now", "scheduled" (log text); "not due" */
const char *decision_why_name(enum decision_why why);

/* A finished run as status reports it (all borrowed) */
struct decision_run {
    const char *run_id;
    hp_rc commit_rc;  /* HP_OK, HP_ERR_UNKNOWN_OUTCOME (not final at the run's end), or failed */
    const char *why;  /* what the commit failure was (commit_rc != HP_OK) */
    int64_t revision; /* the controller's results' etcd revision; 0: none of its own stored */
    size_t counts[4]; /* results by enum check_status */
    /* the first result not OK (check, target, status name, reason; each may be NULL) */
    const char *first_check, *first_target, *first_status, *first_reason;
};

#define DECISION_RUN_CONDS 4

/* decision_run_conditions: Ready, Degraded, InvalidSpec (False) and Suspended (False) after a
 * run; returns DECISION_RUN_CONDS. Ready is True (RunSucceeded) when the commit landed, else
 * False (CommitUnresolved, CommitFailed); Degraded is True (ChecksFailing) when one result is
 * not OK. */
size_t decision_run_conditions(const struct decision_run *in, struct cond out[DECISION_RUN_CONDS]);

/* decision_invalid_conditions: InvalidSpec True and Ready False for a spec the parser refused
 * (reason InvalidSpec) or the cluster's policy did not allow (forbidden: reason Forbidden); field
 * and msg borrowed (the parser's error). Returns 2. */
size_t decision_invalid_conditions(bool forbidden, const char *field, const char *msg,
                                   struct cond out[2]);

/* decision_suspended_conditions: Suspended True and InvalidSpec False (Ready and Degraded stay
 * as they were). Returns 2. */
size_t decision_suspended_conditions(struct cond out[2]);

/* decision_cleanup_condition: Ready False (reason, borrowed) saying the finalizer stays and
 * why (borrowed). */
void decision_cleanup_condition(const char *finalizer, const char *reason, const char *why,
                                struct cond *out);

/* decision_late_condition: the Ready condition once the commit of run run_id (borrowed), still
 * unresolved when the run ended, is final (o borrowed); its message is the log and Event text
 * too. *event_reason: the Event's reason (CommitResolved, CommitRolledBack, CommitFailed). */
void decision_late_condition(const char *run_id, const struct batch_group_outcome *o,
                             struct cond *out, const char **event_reason);

/* decision_event: is a condition's change news worth an Event? had_old: the object showed the
 * condition, with old_status (NULL: none, taken as Unknown); new_status the written one. Only
 * Ready, Degraded and InvalidSpec changes are; a first healthy state is not. *warning: the new
 * state is a bad one (Ready not True, another one True). */
bool decision_event(const char *type, bool had_old, const char *old_status, const char *new_status,
                    bool *warning);

#endif
