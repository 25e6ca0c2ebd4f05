/* status.c - conditions, the status patch, the finalizer and Events (see status.h). */
#include "reconcile/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/check_result.h"
#include "reconcile/decision.h"

#define API_PATH "/apis/hostpatrol.io/v1alpha1"

const char *status_str(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);

    if (b)
        v = json_object_get(v, b);
    return json_string_value(v);
}

int64_t status_generation(const json_t *obj)
{
    return json_integer_value(json_object_get(json_object_get(obj, "metadata"), "generation"));
}

const char *status_run_now_annotation(const json_t *obj)
{
    return json_string_value(json_object_get(
        json_object_get(json_object_get(obj, "metadata"), "annotations"), RECONCILER_RUN_NOW));
}

static void count(struct status *s, uint64_t *field)
{
    pthread_mutex_lock(s->mu);
    (*field)++;
    pthread_mutex_unlock(s->mu);
}

static void warnf(struct status *s, const char *key, const char *fmt, ...) HP_PRINTF(3, 4);

static void warnf(struct status *s, const char *key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (!s->log)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    s->log(s->log_arg, RLOG_WARN, key, NULL, msg);
}

static void obj_path(const char *ns, const char *name, const char *sub, char *out, size_t size)
{
    snprintf(out, size, API_PATH "/namespaces/%s/hostinspections/%s%s", ns, name, sub);
}

/* ---------- conditions ---------- */

const json_t *status_old_condition(const json_t *obj, const char *type)
{
    const json_t *conds = json_object_get(json_object_get(obj, "status"), "conditions"), *c;
    size_t i;

    json_array_foreach(conds, i, c)
    {
        if (!strcmp(status_str(c, "type", NULL) ? status_str(c, "type", NULL) : "", type))
            return c;
    }
    return NULL;
}

const char *status_old_cond_status(const json_t *obj, const char *type)
{
    const char *s = status_str(status_old_condition(obj, type), "status", NULL);

    return s ? s : "Unknown";
}

json_t *status_conditions_json(const json_t *obj, const struct cond *cs, size_t n, int64_t gen,
                               const char *now)
{
    const json_t *olds = json_object_get(json_object_get(obj, "status"), "conditions"), *o;
    json_t *arr = json_array();
    size_t i, j;

    for (i = 0; arr && i < n; i++) {
        const json_t *old = status_old_condition(obj, cs[i].type);
        const char *ltt = now;
        char msg[sizeof(cs[i].message)];

        if (old && status_str(old, "status", NULL) &&
            !strcmp(status_str(old, "status", NULL), cs[i].status) &&
            status_str(old, "lastTransitionTime", NULL))
            ltt = status_str(old, "lastTransitionTime", NULL);
        memcpy(msg, cs[i].message, sizeof(msg));
        check_result_trim_utf8(msg);
        if (json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "type", cs[i].type,
                                                 "status", cs[i].status, "reason", cs[i].reason,
                                                 "message", msg, "observedGeneration",
                                                 (json_int_t)gen, "lastTransitionTime", ltt))) {
            json_decref(arr);
            return NULL;
        }
    }
    json_array_foreach(olds, j, o)
    {
        const char *type = status_str(o, "type", NULL);
        bool mine = false;

        for (i = 0; type && i < n; i++)
            mine |= !strcmp(type, cs[i].type);
        if (arr && type && !mine && json_array_append(arr, (json_t *)o)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *status_patch_new(void)
{
    return json_object();
}

static bool own_condition(const char *type)
{
    return type && (!strcmp(type, "Ready") || !strcmp(type, "Degraded") ||
                    !strcmp(type, "InvalidSpec") || !strcmp(type, "Suspended"));
}

void status_transform(json_t *obj)
{
    static const char *const drop[] = {"failingChecks", "summary", "lastCommit",
                                       "lastSuccessfulRunTime", "nextRunTime"};
    json_t *st = json_object_get(obj, "status"), *c;
    size_t i;

    json_object_del(obj, "apiVersion");
    json_object_del(obj, "kind");
    json_object_del(json_object_get(obj, "metadata"), "creationTimestamp");
    for (i = 0; st && i < sizeof(drop) / sizeof(drop[0]); i++)
        json_object_del(st, drop[i]);
    json_array_foreach(json_object_get(st, "conditions"), i, c)
    {
        const char *type = status_str(c, "type", NULL), *cst = status_str(c, "status", NULL);

        if (!own_condition(type))
            continue;
        json_object_del(c, "reason");
        if (strcmp(type, "InvalidSpec") || strcmp(cst ? cst : "-", "True"))
            json_object_del(c, "message");
    }
}

/* ---------- finalizer and Events ---------- */

bool status_has_finalizer(const json_t *obj)
{
    const json_t *fins = json_object_get(json_object_get(obj, "metadata"), "finalizers"), *f;
    size_t i;

    json_array_foreach(fins, i, f)
    {
        if (json_is_string(f) && !strcmp(json_string_value(f), RECONCILER_FINALIZER))
            return true;
    }
    return false;
}

hp_rc status_set_finalizers(struct status *s, struct hp_ctx *ctx, const json_t *obj, bool add,
                            json_t **out, struct hp_err *err)
{
    const json_t *fins = json_object_get(json_object_get(obj, "metadata"), "finalizers"), *f;
    json_t *list = json_array(), *patch;
    char path[512];
    size_t i;
    hp_rc rc;

    *out = NULL;
    if (!list)
        return HP_ERR_NOMEM;
    json_array_foreach(fins, i, f)
    {
        if (json_is_string(f) && strcmp(json_string_value(f), RECONCILER_FINALIZER))
            json_array_append(list, (json_t *)f);
    }
    if (add)
        json_array_append_new(list, json_string(RECONCILER_FINALIZER));
    patch = json_pack("{s:{s:o,s:s?}}", "metadata", "finalizers", list, "resourceVersion",
                      status_str(obj, "metadata", "resourceVersion"));
    if (!patch)
        return HP_ERR_NOMEM;
    obj_path(status_str(obj, "metadata", "namespace"), status_str(obj, "metadata", "name"), "",
             path, sizeof(path));
    rc = kube_request(s->kube, ctx, "PATCH", path, patch, "application/merge-patch+json", out, NULL,
                      err);
    json_decref(patch);
    return rc;
}

void status_post_event(struct status *s, struct hp_ctx *ctx, const json_t *obj, const char *type,
                       const char *reason, const char *message)
{
    const char *ns = status_str(obj, "metadata", "namespace"),
               *name = status_str(obj, "metadata", "name");
    char path[512], now[32], prefix[300];
    struct hp_err err = {0};
    json_t *ev;
    hp_rc rc;

    schedule_rfc3339(schedule_wall_ms(), now);
    snprintf(prefix, sizeof(prefix), "%s.", name);
    ev = json_pack("{s:{s:s,s:s},s:{s:s,s:s,s:s,s:s,s:s?,s:s?},s:s,s:s,s:s,s:{s:s},s:s,s:s,"
                   "s:i,s:s,s:s,s:s}",
                   "metadata", "generateName", prefix, "namespace", ns, "involvedObject",
                   "apiVersion", "hostpatrol.io/v1alpha1", "kind", "HostInspection", "name", name,
                   "namespace", ns, "uid", status_str(obj, "metadata", "uid"), "resourceVersion",
                   status_str(obj, "metadata", "resourceVersion"), "type", type, "reason", reason,
                   "message", message, "source", "component", "hostpatrol-controller",
                   "firstTimestamp", now, "lastTimestamp", now, "count", 1, "reportingComponent",
                   "hostpatrol.io/controller", "reportingInstance", s->identity, "action",
                   "Reconcile");
    if (!ev)
        return;
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events", ns);
    rc = kube_request(s->kube, ctx, "POST", path, ev, NULL, NULL, NULL, &err);
    json_decref(ev);
    if (rc)
        warnf(s, name, "event %s not posted: %s", reason, err.msg);
    else
        count(s, &s->stats->events);
}

/* ---------- the status patch ---------- */

hp_rc status_live_object(struct status *s, const json_t *obj, json_t **out, struct hp_err *err)
{
    struct hp_ctx *ctx = NULL;
    char path[512];
    hp_rc rc;

    *out = NULL;
    obj_path(status_str(obj, "metadata", "namespace"), status_str(obj, "metadata", "name"), "",
             path, sizeof(path));
    rc = hp_ctx_new(s->ctx, META_TIMEOUT, &ctx);
    if (!rc)
        rc = kube_request(s->kube, ctx, "GET", path, NULL, NULL, out, NULL, err);
    hp_ctx_free(ctx);
    return rc;
}

/* post_events: an Event for each condition of st whose change from obj is news */
static void post_events(struct status *s, struct hp_ctx *ctx, const json_t *obj, const json_t *st)
{
    const json_t *c;
    size_t i;

    json_array_foreach(json_object_get(st, "conditions"), i, c)
    {
        const char *type = status_str(c, "type", NULL);
        const json_t *old = type ? status_old_condition(obj, type) : NULL;
        bool warning;

        if (decision_event(type, old != NULL, status_str(old, "status", NULL),
                           status_str(c, "status", NULL), &warning))
            status_post_event(s, ctx, obj, warning ? "Warning" : "Normal",
                              status_str(c, "reason", NULL), status_str(c, "message", NULL));
    }
}

hp_rc status_write(struct status *s, const json_t *obj, json_t *st, struct hp_err *err)
{
    const char *ns = status_str(obj, "metadata", "namespace"),
               *name = status_str(obj, "metadata", "name");
    json_t *patch = json_pack("{s:O}", "status", st);
    struct hp_ctx *ctx = NULL;
    char path[512], key[320];
    hp_rc rc;

    snprintf(key, sizeof(key), "%s/%s", ns, name);
    rc = patch ? hp_ctx_new(s->ctx, STATUS_TIMEOUT, &ctx) : HP_ERR_NOMEM;
    if (rc)
        goto out;
    obj_path(ns, name, "/status", path, sizeof(path));
    rc = kube_request(s->kube, ctx, "PATCH", path, patch, "application/merge-patch+json", NULL,
                      NULL, err);
    if (rc) {
        warnf(s, key, "status not written: %s", err->msg);
        goto out;
    }
    count(s, &s->stats->status_writes);
    post_events(s, ctx, obj, st);
out:
    json_decref(patch);
    json_decref(st);
    hp_ctx_free(ctx);
    return rc;
}

hp_rc status_write_conditions(struct status *s, const json_t *obj, json_t *st,
                              const struct cond *cs, size_t n, int64_t gen, struct hp_err *err)
{
    json_t *live = NULL;
    char now[32];
    hp_rc rc = st ? status_live_object(s, obj, &live, err) : HP_ERR_NOMEM;

    schedule_rfc3339(schedule_wall_ms(), now);
    if (!rc && json_object_set_new(st, "conditions", status_conditions_json(live, cs, n, gen, now)))
        rc = HP_ERR_NOMEM;
    json_decref(live);
    if (rc) {
        json_decref(st);
        return rc;
    }
    return status_write(s, obj, st, err);
}

void status_keep_pending(struct status *s, const char *key, json_t *st)
{
    struct memo *m;

    pthread_mutex_lock(s->mu);
    m = schedule_memo_get(s->sched, key, false);
    if (m) {
        json_decref(m->pending);
        m->pending = json_incref(st);
    }
    pthread_mutex_unlock(s->mu);
}

hp_rc status_write_pending(struct status *s, const char *key, const json_t *obj, json_t *st,
                           struct hp_err *err)
{
    const json_t *sent = st;
    struct memo *m;
    hp_rc rc = status_write(s, obj, st, err);

    if (rc)
        return rc;
    pthread_mutex_lock(s->mu);
    m = schedule_memo_get(s->sched, key, false);
    if (m && m->pending == sent) {
        json_decref(m->pending);
        m->pending = NULL;
    }
    pthread_mutex_unlock(s->mu);
    return HP_OK;
}

json_t *status_get_pending(struct status *s, const char *key)
{
    struct memo *m;
    json_t *st;

    pthread_mutex_lock(s->mu);
    m = schedule_memo_get(s->sched, key, false);
    st = m ? json_incref(m->pending) : NULL;
    pthread_mutex_unlock(s->mu);
    return st;
}

/* ---------- what a reconcile writes ---------- */

/* status_ensure_finalizer: add our finalizer to *obj (replaced by the updated object) if missing */
hp_rc status_ensure_finalizer(struct status *s, const char *key, json_t **obj, struct hp_err *err)
{
    struct hp_ctx *ctx = NULL;
    json_t *fresh = NULL;
    hp_rc rc;

    if (status_has_finalizer(*obj))
        return HP_OK;
    rc = hp_ctx_new(s->ctx, META_TIMEOUT, &ctx);
    if (rc)
        return rc;
    rc = status_set_finalizers(s, ctx, *obj, true, &fresh, err);
    hp_ctx_free(ctx);
    if (rc) {
        warnf(s, key, "finalizer not added: %s", err->msg);
        return rc;
    }
    json_decref(*obj);
    *obj = fresh;
    return HP_OK;
}

/* status_report_cleanup: Ready=False (reason) on status, other conditions kept */
void status_report_cleanup(struct status *s, const char *key, const json_t *obj, const char *reason,
                           const char *why)
{
    struct cond c;
    struct hp_err err = {0};

    decision_cleanup_condition(RECONCILER_FINALIZER, reason, why, &c);
    warnf(s, key, "%s", c.message);
    if (status_write_conditions(s, obj, status_patch_new(), &c, 1, status_generation(obj), &err)) {
    }
}

/* status_report_refused: InvalidSpec (or Forbidden) on status for a spec refused with rc (err:
 * why); nothing to write when the same error is already there for this generation */
hp_rc status_report_refused(struct status *s, const char *key, const json_t *obj, hp_rc why,
                            const struct hp_err *e, struct hp_err *err)
{
    const json_t *old = status_old_condition(obj, "InvalidSpec");
    int64_t gen = status_generation(obj);
    struct cond cs[2];
    json_t *st;
    size_t n = decision_invalid_conditions(why == HP_ERR_AUTH, e->field, e->msg, cs);

    if (old && !strcmp(status_old_cond_status(obj, "InvalidSpec"), "True") &&
        json_integer_value(json_object_get(old, "observedGeneration")) == gen &&
        status_str(old, "message", NULL) && !strcmp(status_str(old, "message", NULL), e->msg))
        return HP_OK;
    warnf(s, key, "invalid spec: %s", e->msg);
    st = status_patch_new();
    if (st && json_object_set_new(st, "observedGeneration", json_integer(gen))) {
        json_decref(st);
        st = NULL;
    }
    return status_write_conditions(s, obj, st, cs, n, gen, err);
}

/* status_report_suspended: Suspended on status (once per generation); Ready and Degraded stay as
 * they were */
hp_rc status_report_suspended(struct status *s, const json_t *obj, struct hp_err *err)
{
    int64_t gen = status_generation(obj);
    struct cond cs[2];
    size_t n = decision_suspended_conditions(cs);
    json_t *st;

    if (!strcmp(status_old_cond_status(obj, "Suspended"), "True") &&
        json_integer_value(json_object_get(json_object_get(obj, "status"), "observedGeneration")) ==
            gen)
        return HP_OK;
    st = status_patch_new();
    if (st && (json_object_set_new(st, "observedGeneration", json_integer(gen)) ||
               json_object_set_new(st, "nextRunTime", json_null()))) {
        json_decref(st);
        st = NULL;
    }
    return status_write_conditions(s, obj, st, cs, n, gen, err);
}

/* status_run_patch: the status patch after a run (new reference; NULL on NOMEM): the conditions
 * decision_run_conditions gives, the summary, the failing checks and nodes, times, lastCommit */
json_t *status_run_patch(const json_t *obj, const struct run_report *rep, const char *run_id,
                         int64_t now, int64_t due)
{
    const json_t *f0 = json_array_get(rep->failing, 0);
    struct decision_run dr = {run_id,
                              rep->commit_rc,
                              rep->why,
                              rep->revision,
                              {rep->counts[0], rep->counts[1], rep->counts[2], rep->counts[3]},
                              status_str(f0, "check", NULL),
                              status_str(f0, "target", NULL),
                              status_str(f0, "status", NULL),
                              status_str(f0, "reason", NULL)};
    const char *run_now = status_run_now_annotation(obj);
    int64_t gen = status_generation(obj);
    struct cond cs[DECISION_RUN_CONDS];
    size_t nc = decision_run_conditions(&dr, cs);
    char now_s[32], next_s[32];
    json_t *st = status_patch_new();

    schedule_rfc3339(now, now_s);
    schedule_rfc3339(due, next_s);
    if (!st || json_object_set_new(st, "observedGeneration", json_integer(gen)) ||
        json_object_set_new(st, "lastRunTime", json_string(now_s)) ||
        json_object_set_new(st, "nextRunTime", json_string(next_s)) ||
        json_object_set_new(st, "summary",
                            json_pack("{s:I,s:I,s:I,s:I}", "ok", (json_int_t)rep->counts[0], "warn",
                                      (json_int_t)rep->counts[1], "crit",
                                      (json_int_t)rep->counts[2], "unknown",
                                      (json_int_t)rep->counts[3])) ||
        json_object_set(st, "failingChecks", rep->failing) ||
        json_object_set_new(st, "nodes",
                            json_pack("{s:I,s:O}", "matching", (json_int_t)rep->nodes, "failing",
                                      rep->failing_nodes)) ||
        json_object_set_new(st, "conditions", status_conditions_json(obj, cs, nc, gen, now_s)) ||
        (run_now && json_object_set_new(st, "runNow", json_string(run_now))) ||
        (!rep->commit_rc && json_object_set_new(st, "lastSuccessfulRunTime", json_string(now_s))) ||
        (!rep->commit_rc && rep->revision &&
         json_object_set_new(st, "lastCommit",
                             json_pack("{s:I,s:s}", "revision", (json_int_t)rep->revision, "batch",
                                       rep->batch_id)))) {
        json_decref(st);
        return NULL;
    }
    return st;
}

/* late_ready: Ready (c) on status when run run_id's status is still the latest (the memo's
 * unresolved run), lastCommit too when its commit landed */
static hp_rc late_ready(struct status *s, const char *key, const json_t *obj, const char *run_id,
                        const struct batch_group_outcome *o, const struct cond *c,
                        struct hp_err *err)
{
    int64_t gen =
        json_integer_value(json_object_get(json_object_get(obj, "status"), "observedGeneration"));
    json_t *st;
    struct memo *m;
    bool latest;
    hp_rc rc;

    pthread_mutex_lock(s->mu);
    m = schedule_memo_get(s->sched, key, false);
    latest = m && !strcmp(m->unresolved, run_id);
    pthread_mutex_unlock(s->mu);
    if (!latest)
        return HP_OK;
    st = status_patch_new();
    if (st && o->outcome == BATCH_COMMITTED &&
        json_object_set_new(
            st, "lastCommit",
            json_pack("{s:I,s:s}", "revision", (json_int_t)o->revision, "batch", o->batch))) {
        json_decref(st);
        st = NULL;
    }
    rc = status_write_conditions(s, obj, st, c, 1, gen, err);
    if (rc)
        return rc;
    pthread_mutex_lock(s->mu);
    m = schedule_memo_get(s->sched, key, false);
    if (m && !strcmp(m->unresolved, run_id))
        m->unresolved[0] = '\0';
    pthread_mutex_unlock(s->mu);
    return HP_OK;
}

hp_rc status_report_late(struct status *s, const char *key, const json_t *obj, const char *run_id,
                         const struct batch_group_outcome *o, struct hp_err *err)
{
    bool ok = o->outcome == BATCH_COMMITTED;
    const char *event_reason;
    struct hp_ctx *ctx = NULL;
    struct cond c;
    hp_rc rc;

    decision_late_condition(run_id, o, &c, &event_reason);
    rc = late_ready(s, key, obj, run_id, o, &c, err);
    if (rc)
        return rc;
    if (s->log)
        s->log(s->log_arg, ok ? RLOG_INFO : RLOG_WARN, key, run_id, c.message);
    if (!hp_ctx_new(s->ctx, META_TIMEOUT, &ctx))
        status_post_event(s, ctx, obj, ok ? "Normal" : "Warning", event_reason, c.message);
    hp_ctx_free(ctx);
    return HP_OK;
}
