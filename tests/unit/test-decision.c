/* test-decision.c - unit tests of controller/reconcile/decision.c, the reconciler's pure
 * decisions: is a run due (first run, spec change, run-now, schedule, the memo against a status
 * not yet back in the cache, the agent's memo-only view), which conditions a run's outcome, a
 * refused or suspended spec, a failed cleanup and a late commit outcome give, and which
 * condition changes are worth an Event. No apiserver, no clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/check_result.h"
#include "reconcile/decision.h"

#define MIN 60000

/* a controller's view: generation 3, status of generation 3 whose last run was at 1,000,000 */
static struct decision_in seen(int64_t now)
{
    return (struct decision_in){.now_ms = now,
                                .generation = 3,
                                .interval_ms = MIN,
                                .status_generation = 3,
                                .status_last_run_ms = 1000000};
}

/* is_cond: c has this type, status and reason (NULL: any reason) */
static void is_cond(const struct cond *c, const char *type, const char *status, const char *reason)
{
    assert_string_equal(c->type, type);
    assert_string_equal(c->status, status);
    if (reason)
        assert_string_equal(c->reason, reason);
}

static void first_run_is_due(void **state)
{
    struct decision_in in = {.now_ms = 5, .generation = 1, .interval_ms = MIN};
    struct decision d;

    (void)state;
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_FIRST_RUN);
    assert_string_equal(decision_why_name(d.why), "first run");
}

static void due_one_interval_after_the_last_run(void **state)
{
    struct decision_in in = seen(1000000 + MIN - 1);
    struct decision d;

    (void)state;
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_NOT_DUE);
    assert_int_equal(d.due_ms, 1000000 + MIN);
    in.now_ms = 1000000 + MIN; /* the edge: due at due_ms exactly */
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_SCHEDULED);
    assert_string_equal(decision_why_name(d.why), "scheduled");
}

static void a_new_generation_runs_at_once(void **state)
{
    struct decision_in in = seen(1000000 + 10);
    struct memo m = {.last_run_ms = 1000000, .generation = 3, .next_run_ms = 1000000 + MIN};
    struct decision d;

    (void)state;
    in.generation = 4;
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_SPEC_CHANGED);
    /* this process already ran generation 4: its status is not back yet, no second run */
    m.generation = 4;
    in.memo = &m;
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_NOT_DUE);
    /* the status already says generation 4: no run for it either */
    in.memo = NULL;
    in.status_generation = 4;
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_NOT_DUE);
}

static void run_now_runs_once_per_value(void **state)
{
    struct decision_in in = seen(1000000 + 10);
    struct memo m = {.last_run_ms = 1000000, .generation = 3, .next_run_ms = 1000000 + MIN};
    struct decision d;

    (void)state;
    in.run_now = "a";
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_RUN_NOW);
    in.status_run_now = "a"; /* status shows it was acted on */
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_NOT_DUE);
    in.status_run_now = NULL;
    m.run_now = "a"; /* so does this process's memo */
    in.memo = &m;
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_NOT_DUE);
    in.run_now = "b";
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_RUN_NOW);
}

static void the_memo_schedule_wins_while_it_is_newer(void **state)
{
    struct decision_in in = seen(1000000 + MIN + 5);
    /* a run at 1,000,000 + 30 s, with jitter: next at + MIN + 7 */
    struct memo m = {
        .last_run_ms = 1000000 + 30000, .generation = 3, .next_run_ms = 1000000 + 30000 + MIN + 7};
    struct decision d;

    (void)state;
    in.memo = &m;
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_NOT_DUE);
    assert_int_equal(d.due_ms, 1000000 + 30000 + MIN + 7);
    /* a status newer than the memo (another replica ran): one interval after it */
    in.status_last_run_ms = 1000000 + 40000;
    decision_due(&in, &d);
    assert_int_equal(d.due_ms, 1000000 + 40000 + MIN);
}

static void the_agent_counts_only_its_memo(void **state)
{
    struct decision_in in = {.now_ms = 100, .generation = 2, .interval_ms = MIN, .agent = true};
    struct memo m = {.last_run_ms = 50, .generation = 2, .next_run_ms = 50 + MIN};
    struct decision d;

    (void)state;
    in.status_generation = 2; /* ignored by an agent */
    in.status_last_run_ms = 90;
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_FIRST_RUN);
    in.memo = &m;
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_NOT_DUE);
    assert_int_equal(d.due_ms, 50 + MIN);
    in.now_ms = 50 + MIN;
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_SCHEDULED);
    in.now_ms = 100;
    in.generation = 3;
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_SPEC_CHANGED);
    in.generation = 2;
    in.run_now = "x";
    decision_due(&in, &d);
    assert_int_equal(d.why, DECISION_RUN_NOW);
}

static void a_clean_committed_run(void **state)
{
    struct decision_run in = {.run_id = "r1", .revision = 42, .counts = {3, 0, 0, 0}};
    struct cond cs[DECISION_RUN_CONDS];

    (void)state;
    assert_int_equal(decision_run_conditions(&in, cs), 4);
    is_cond(&cs[0], "Ready", "True", "RunSucceeded");
    assert_string_equal(cs[0].message,
                        "run r1 judged 3 results; the controller's stored in etcd at revision 42");
    is_cond(&cs[1], "Degraded", "False", "ChecksOK");
    is_cond(&cs[2], "InvalidSpec", "False", NULL);
    assert_string_equal(cs[3].type, "Suspended");
    assert_string_equal(cs[3].reason, "Active");
    in.revision = 0; /* only the agents' results */
    decision_run_conditions(&in, cs);
    assert_string_equal(cs[0].message, "run r1 judged 3 results (node results from the agents)");
}

static void failing_checks_degrade(void **state)
{
    struct decision_run in = {.run_id = "r2",
                              .revision = 7,
                              .counts = {1, 1, 2, 1},
                              .first_check = "web",
                              .first_target = "a",
                              .first_status = "CRIT",
                              .first_reason = "refused"};
    struct cond cs[DECISION_RUN_CONDS];

    (void)state;
    decision_run_conditions(&in, cs);
    assert_string_equal(cs[0].status, "True"); /* the run itself worked */
    assert_string_equal(cs[1].status, "True");
    assert_string_equal(cs[1].reason, "ChecksFailing");
    assert_string_equal(cs[1].message, "2 crit, 1 warn, 1 unknown; first: web/a CRIT: refused");
    in.first_check = in.first_target = in.first_status = in.first_reason = NULL;
    decision_run_conditions(&in, cs);
    assert_string_equal(cs[1].message, "2 crit, 1 warn, 1 unknown; first: -/- -: -");
}

static void a_commit_that_failed_or_is_unresolved(void **state)
{
    struct decision_run in = {.run_id = "r3",
                              .commit_rc = HP_ERR_UNKNOWN_OUTCOME,
                              .why = "etcd commit of batch b1 not final",
                              .counts = {2, 0, 0, 0}};
    struct cond cs[DECISION_RUN_CONDS];

    (void)state;
    decision_run_conditions(&in, cs);
    assert_string_equal(cs[0].status, "False");
    assert_string_equal(cs[0].reason, "CommitUnresolved");
    assert_string_equal(cs[0].message, "run r3: etcd commit of batch b1 not final");
    assert_string_equal(cs[1].status, "False"); /* the checks were OK */
    in.commit_rc = HP_ERR_UNAVAILABLE;
    decision_run_conditions(&in, cs);
    assert_string_equal(cs[0].reason, "CommitFailed");
}

static void refused_and_suspended_specs(void **state)
{
    struct cond cs[2];

    (void)state;
    assert_int_equal(decision_invalid_conditions(false, "spec.checks[0]", "bad port", cs), 2);
    is_cond(&cs[0], "InvalidSpec", "True", "InvalidSpec");
    assert_string_equal(cs[0].message, "bad port");
    is_cond(&cs[1], "Ready", "False", NULL);
    assert_string_equal(cs[1].message, "spec error at spec.checks[0]: bad port");
    decision_invalid_conditions(true, "spec.targets", "not allowed", cs);
    assert_string_equal(cs[0].reason, "Forbidden");
    assert_string_equal(cs[1].message,
                        "spec refused by the cluster policy at spec.targets: not allowed");
    assert_int_equal(decision_suspended_conditions(cs), 2);
    is_cond(&cs[0], "Suspended", "True", NULL);
    is_cond(&cs[1], "InvalidSpec", "False", NULL);
}

static void cleanup_and_late_outcomes(void **state)
{
    struct batch_group_outcome o = {.outcome = BATCH_COMMITTED, .revision = 9, .batch = "b7"};
    const char *reason = NULL;
    struct cond c;

    (void)state;
    decision_cleanup_condition("hostpatrol.io/cleanup", "CleanupFailed", "etcd down", &c);
    assert_string_equal(c.reason, "CleanupFailed");
    assert_string_equal(c.message, "the finalizer hostpatrol.io/cleanup stays: etcd down");
    decision_late_condition("r4", &o, &c, &reason);
    assert_string_equal(c.status, "True");
    assert_string_equal(c.reason, "RunSucceeded");
    assert_string_equal(reason, "CommitResolved");
    assert_string_equal(c.message, "run r4: etcd commit of batch b7, unresolved when the run "
                                   "ended, committed at revision 9");
    o.outcome = BATCH_ROLLED_BACK;
    snprintf(o.reason, sizeof(o.reason), "lease lost");
    decision_late_condition("r4", &o, &c, &reason);
    assert_string_equal(c.status, "False");
    assert_string_equal(c.reason, "CommitFailed");
    assert_string_equal(reason, "CommitRolledBack");
    assert_non_null(strstr(c.message, "is final: "));
    assert_non_null(strstr(c.message, ": lease lost"));
}

static void events_for_news_only(void **state)
{
    bool warning;

    (void)state;
    /* a first healthy state is not news; a first bad one is */
    assert_false(decision_event("Ready", false, NULL, "True", &warning));
    assert_true(decision_event("Ready", false, NULL, "False", &warning));
    assert_true(warning);
    assert_true(decision_event("Degraded", false, NULL, "True", &warning));
    assert_true(warning);
    /* unchanged: nothing; a recovery: Normal */
    assert_false(decision_event("Degraded", true, "True", "True", &warning));
    assert_true(decision_event("Degraded", true, "True", "False", &warning));
    assert_false(warning);
    assert_true(decision_event("Ready", true, "False", "True", &warning));
    assert_false(warning);
    /* an old condition without status counts as Unknown */
    assert_true(decision_event("InvalidSpec", true, NULL, "False", &warning));
    assert_false(decision_event("Suspended", true, "False", "True", &warning));
    assert_false(decision_event(NULL, true, "False", "True", &warning));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_run_is_due),
        cmocka_unit_test(due_one_interval_after_the_last_run),
        cmocka_unit_test(a_new_generation_runs_at_once),
        cmocka_unit_test(run_now_runs_once_per_value),
        cmocka_unit_test(the_memo_schedule_wins_while_it_is_newer),
        cmocka_unit_test(the_agent_counts_only_its_memo),
        cmocka_unit_test(a_clean_committed_run),
        cmocka_unit_test(failing_checks_degrade),
        cmocka_unit_test(a_commit_that_failed_or_is_unresolved),
        cmocka_unit_test(refused_and_suspended_specs),
        cmocka_unit_test(cleanup_and_late_outcomes),
        cmocka_unit_test(events_for_news_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
