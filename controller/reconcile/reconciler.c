/* reconciler.c - the HostInspection reconcile loop (see include/hostpatrol/reconciler.h). */
#include "hostpatrol/reconciler.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/buf.h"
#include "hostpatrol/check_result.h"
#include "hostpatrol/host_check.h"
#include "hostpatrol/inspection_spec.h"
#include "hostpatrol/kube_informer.h"
#include "hostpatrol/probe.h"
#include "hostpatrol/prom_histogram.h"
#include "hostpatrol/prom_writer.h"
#include "hostpatrol/results_store.h"
#include "hostpatrol/spec_cache.h"
#include "hostpatrol/work_queue.h"
#include "reconcile/reconciler_internal.h"

#define API_PATH             "/apis/hostpatrol.io/v1alpha1"
#define COMMIT_SLACK_MS      6000  /* wait past the run deadline for the queue's resolution */
#define CLEANUP_TIMEOUT      7000  /* finalizer: etcd delete of a CR's results */
#define STATUS_TIMEOUT       10000 /* one status write (and its Events) */
#define META_TIMEOUT         10000 /* adding or removing the finalizer */
#define UNREACHABLE_RETRY_MS 2000  /* the longest retry of a key whose server was unreachable */
#define MEMO_BUCKETS         1024

/* The outcome of a commit reported CommitUnresolved, come later (late_final) */
struct late_outcome {
    struct late_outcome *next;
    char run_id[64];
    struct batch_group_outcome o;
};

/* What this process did for one key, so a status not yet back in the cache cannot start a
 * second run. Guarded by reconciler.mu. */
struct memo {
    struct memo *next;
    char *key;
    int64_t last_run_ms; /* wall clock of the last run's start */
    int64_t generation;  /* generation of that run */
    char *run_now;       /* annotation value acted on, or NULL */
    int64_t next_run_ms; /* scheduled (with jitter), 0: none */
    json_t *pending;     /* a status not yet written (owned), or NULL */
    char unresolved[64]; /* the run whose status says CommitUnresolved and is the latest, or "" */
    struct late_outcome *late; /* owned list: outcomes to report (late_final), newest first */
};

/* A run's outcome, as hostpatrol_run_duration_seconds labels it: its commit landed, certainly
 * did not, or was not final when the run ended */
enum { RUN_COMMITTED, RUN_FAILED, RUN_UNRESOLVED, RUN_OUTCOMES };
static const char *const run_outcome_names[RUN_OUTCOMES] = {"committed", "failed", "unresolved"};

struct reconciler {
    struct reconciler_config cfg; /* strings below are owned copies */
    char *namespace_, *identity;
    struct kube_informer *informer;
    struct work_queue *queue;
    struct spec_cache *specs;    /* parsed and admitted once per generation; own lock */
    struct results_store *store; /* results in etcd; late commit outcomes come in here */
    pthread_t *threads;
    unsigned n_threads;
    struct hp_ctx *ctx;          /* cancelled by stop: ends runs in progress once drain ends */
    atomic_bool stopping;        /* set by stop: no new run starts */
    char *node_name, *host_root; /* agent mode when node_name is set */
    json_t *node_labels;         /* agent: the node's labels (under mu), read every 10 s */
    int64_t labels_ns;
    pthread_mutex_t mu; /* guards memo, seed and stats */
    struct memo *memo[MEMO_BUCKETS];
    uint64_t seed;
    struct reconciler_stats stats;
    struct prom_histogram reconcile_seconds;                /* own locks */
    struct prom_histogram check_seconds[CHECK_KIND__COUNT]; /* by kind */
    struct prom_histogram run_seconds[RUN_OUTCOMES];        /* a run, probes to its commit's end */
    uint64_t results[CHECK_KIND__COUNT][4];                 /* by kind and status, under mu */
};

/* ---------- small helpers ---------- */

/* the reconcile a worker thread is in, and the batch of the commit being reported (for logs) */
static _Thread_local uint64_t cur_reconcile;
static _Thread_local const char *cur_batch;

static void rlog(struct reconciler *r, enum reconciler_log_level lvl, const char *key,
                 const char *run_id, const char *fmt, ...) HP_PRINTF(5, 6);

static void rlog(struct reconciler *r, enum reconciler_log_level lvl, const char *key,
                 const char *run_id, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (!r->cfg.log)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    {
        struct reconciler_log_ids ids = {key, cur_reconcile, run_id, cur_batch};

        r->cfg.log(r->cfg.log_arg, lvl, &ids, msg);
    }
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* rfc3339: seconds precision, as metav1.Time */
static void rfc3339(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int64_t parse_rfc3339(const char *s)
{
    struct tm tm;
    const char *end;

    if (!s)
        return 0;
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

static uint64_t next_random(struct reconciler *r)
{
    uint64_t x;

    pthread_mutex_lock(&r->mu);
    x = r->seed;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->seed = x;
    pthread_mutex_unlock(&r->mu);
    return x;
}

static void stat_add(struct reconciler *r, uint64_t *field)
{
    pthread_mutex_lock(&r->mu);
    (*field)++;
    pthread_mutex_unlock(&r->mu);
}

static const char *obj_str(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);

    if (b)
        v = json_object_get(v, b);
    return json_string_value(v);
}

static const char *nz(const char *s)
{
    return s ? s : "-";
}

/* ---------- memo ---------- */

static size_t memo_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *key; key++)
        h = (h ^ (unsigned char)*key) * 1099511628211ULL;
    return (size_t)(h % MEMO_BUCKETS);
}

/* memo_get: under r->mu; create = true adds an entry (NULL on NOMEM) */
static struct memo *memo_get(struct reconciler *r, const char *key, bool create)
{
    struct memo **slot = &r->memo[memo_hash(key)], *m;

    for (m = *slot; m; m = m->next)
        if (!strcmp(m->key, key))
            return m;
    if (!create)
        return NULL;
    m = hp_calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->key = hp_strdup(key);
    if (!m->key) {
        hp_free(m);
        return NULL;
    }
    m->next = *slot;
    *slot = m;
    return m;
}

static void memo_free(struct memo *m)
{
    while (m->late) {
        struct late_outcome *l = m->late;

        m->late = l->next;
        hp_free(l);
    }
    hp_free(m->key);
    hp_free(m->run_now);
    json_decref(m->pending);
    hp_free(m);
}

static void memo_drop(struct reconciler *r, const char *key)
{
    struct memo **p, *m;

    spec_cache_drop(r->specs, key);
    pthread_mutex_lock(&r->mu);
    for (p = &r->memo[memo_hash(key)]; (m = *p); p = &m->next) {
        if (!strcmp(m->key, key)) {
            *p = m->next;
            memo_free(m);
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
}

/* memo_ran: remember a run that started at now (wall ms) for generation gen and run-now value
 * run_now (borrowed, may be NULL); returns when the next one is due: one interval plus up to
 * 10% jitter later */
static int64_t memo_ran(struct reconciler *r, const char *key, int64_t now, int64_t gen,
                        const char *run_now, int64_t interval_ms)
{
    int64_t due = now + interval_ms + (int64_t)(next_random(r) % (uint64_t)(interval_ms / 10 + 1));
    struct memo *m;

    pthread_mutex_lock(&r->mu);
    m = memo_get(r, key, true);
    if (m) {
        m->last_run_ms = now;
        m->generation = gen;
        m->next_run_ms = due;
        hp_free(m->run_now);
        m->run_now = run_now ? hp_strdup(run_now) : NULL;
    }
    pthread_mutex_unlock(&r->mu);
    return due;
}

/* ---------- Kubernetes writes ---------- */

static void obj_path(const char *ns, const char *name, const char *sub, char *out, size_t size)
{
    snprintf(out, size, API_PATH "/namespaces/%s/hostinspections/%s%s", ns, name, sub);
}

/* post_event: an Event on the HostInspection (best effort: a failure is logged). */
static void post_event(struct reconciler *r, struct hp_ctx *ctx, const json_t *obj,
                       const char *type, const char *reason, const char *message)
{
    const char *ns = obj_str(obj, "metadata", "namespace"),
               *name = obj_str(obj, "metadata", "name");
    char path[512], now[32], prefix[300];
    struct hp_err err = {0};
    json_t *ev;
    hp_rc rc;

    rfc3339(wall_ms(), now);
    snprintf(prefix, sizeof(prefix), "%s.", name);
    ev = json_pack("{s:{s:s,s:s},s:{s:s,s:s,s:s,s:s,s:s?,s:s?},s:s,s:s,s:s,s:{s:s},s:s,s:s,"
                   "s:i,s:s,s:s,s:s}",
                   "metadata", "generateName", prefix, "namespace", ns, "involvedObject",
                   "apiVersion", "hostpatrol.io/v1alpha1", "kind", "HostInspection", "name", name,
                   "namespace", ns, "uid", obj_str(obj, "metadata", "uid"), "resourceVersion",
                   obj_str(obj, "metadata", "resourceVersion"), "type", type, "reason", reason,
                   "message", message, "source", "component", "hostpatrol-controller",
                   "firstTimestamp", now, "lastTimestamp", now, "count", 1, "reportingComponent",
                   "hostpatrol.io/controller", "reportingInstance", r->identity, "action",
                   "Reconcile");
    if (!ev)
        return;
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events", ns);
    rc = kube_request(r->cfg.kube, ctx, "POST", path, ev, NULL, NULL, NULL, &err);
    json_decref(ev);
    if (rc)
        rlog(r, RLOG_WARN, name, NULL, "event %s not posted: %s", reason, err.msg);
    else
        stat_add(r, &r->stats.events);
}

/* set_finalizers: merge-patch metadata.finalizers (optimistic: resourceVersion). *out: the
 * updated object (new reference) or NULL. */
static hp_rc set_finalizers(struct reconciler *r, struct hp_ctx *ctx, const json_t *obj, bool add,
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
                      obj_str(obj, "metadata", "resourceVersion"));
    if (!patch)
        return HP_ERR_NOMEM;
    obj_path(obj_str(obj, "metadata", "namespace"), obj_str(obj, "metadata", "name"), "", path,
             sizeof(path));
    rc = kube_request(r->cfg.kube, ctx, "PATCH", path, patch, "application/merge-patch+json", out,
                      NULL, err);
    json_decref(patch);
    return rc;
}

static bool has_finalizer(const json_t *obj)
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

/* ---------- status ---------- */

struct cond {
    const char *type, *status, *reason;
    char message[1024];
};

static const json_t *old_condition(const json_t *obj, const char *type)
{
    const json_t *conds = json_object_get(json_object_get(obj, "status"), "conditions"), *c;
    size_t i;

    json_array_foreach(conds, i, c)
    {
        if (!strcmp(obj_str(c, "type", NULL) ? obj_str(c, "type", NULL) : "", type))
            return c;
    }
    return NULL;
}

/* conditions_json: the new list: cs (lastTransitionTime kept while a condition's status stays),
 * then the object's other conditions unchanged (a merge patch replaces the whole list). */
static json_t *conditions_json(const json_t *obj, const struct cond *cs, size_t n, int64_t gen,
                               const char *now)
{
    const json_t *olds = json_object_get(json_object_get(obj, "status"), "conditions"), *o;
    json_t *arr = json_array();
    size_t i, j;

    for (i = 0; arr && i < n; i++) {
        const json_t *old = old_condition(obj, cs[i].type);
        const char *ltt = now;
        char msg[sizeof(cs[i].message)];

        if (old && obj_str(old, "status", NULL) &&
            !strcmp(obj_str(old, "status", NULL), cs[i].status) &&
            obj_str(old, "lastTransitionTime", NULL))
            ltt = obj_str(old, "lastTransitionTime", NULL);
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
        const char *type = obj_str(o, "type", NULL);
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

static const char *old_cond_status(const json_t *obj, const char *type)
{
    const char *s = obj_str(old_condition(obj, type), "status", NULL);

    return s ? s : "Unknown";
}

/* write_status: merge patch of /status with `status` (taken), under its own deadline (a run
 * may have used all of its own); then an Event for each of Ready, Degraded and InvalidSpec whose
 * status changed from what obj showed. */
static hp_rc write_status(struct reconciler *r, const json_t *obj, json_t *status,
                          struct hp_err *err)
{
    const char *ns = obj_str(obj, "metadata", "namespace"),
               *name = obj_str(obj, "metadata", "name");
    json_t *patch = json_pack("{s:O}", "status", status), *c;
    struct hp_ctx *ctx = NULL;
    char path[512], key[320];
    size_t i;
    hp_rc rc;

    snprintf(key, sizeof(key), "%s/%s", ns, name);
    rc = patch ? hp_ctx_new(r->ctx, STATUS_TIMEOUT, &ctx) : HP_ERR_NOMEM;
    if (rc)
        goto out;
    obj_path(ns, name, "/status", path, sizeof(path));
    rc = kube_request(r->cfg.kube, ctx, "PATCH", path, patch, "application/merge-patch+json", NULL,
                      NULL, err);
    if (rc) {
        rlog(r, RLOG_WARN, key, NULL, "status not written: %s", err->msg);
        goto out;
    }
    stat_add(r, &r->stats.status_writes);
    json_array_foreach(json_object_get(status, "conditions"), i, c)
    {
        const char *type = obj_str(c, "type", NULL), *st = obj_str(c, "status", NULL);
        bool bad;

        if (!type || !st ||
            (strcmp(type, "Ready") && strcmp(type, "Degraded") && strcmp(type, "InvalidSpec")))
            continue;
        if (!strcmp(old_cond_status(obj, type), st))
            continue;
        bad = strcmp(type, "Ready") ? !strcmp(st, "True") : strcmp(st, "True") != 0;
        if (!old_condition(obj, type) && !bad)
            continue; /* a first healthy state is not news */
        post_event(r, ctx, obj, bad ? "Warning" : "Normal", obj_str(c, "reason", NULL),
                   obj_str(c, "message", NULL));
    }
out:
    json_decref(patch);
    json_decref(status);
    hp_ctx_free(ctx);
    return rc;
}

/* write_pending: write st (taken), the status kept in key's memo until it is written; once
 * written, the memo forgets it (unless a newer one replaced it meanwhile) */
static hp_rc write_pending(struct reconciler *r, const char *key, const json_t *obj, json_t *st,
                           struct hp_err *err)
{
    const json_t *sent = st;
    struct memo *m;
    hp_rc rc = write_status(r, obj, st, err);

    if (rc)
        return rc;
    pthread_mutex_lock(&r->mu);
    m = memo_get(r, key, false);
    if (m && m->pending == sent) {
        json_decref(m->pending);
        m->pending = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    return HP_OK;
}

/* ---------- the commit of a run ---------- */

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

/* late_final: the outcome of a commit reported CommitUnresolved, come later (the store's late
 * hook, from a queue thread, under the hook's lock: reconciler_stop detaches it first): logged;
 * in controller mode kept in the key's memo and the key queued, so the next reconcile posts an
 * Event and, while that run's status is still the latest, updates its Ready condition. Lock
 * order: the store's hook, then reconciler.mu, then the work queue's. */
static void late_final(void *arg, const char *key, const char *run_id,
                       const struct batch_group_outcome *o)
{
    struct reconciler *r = arg;
    struct late_outcome *l = hp_calloc(1, sizeof(*l));

    rlog(r, o->outcome == BATCH_COMMITTED ? RLOG_INFO : RLOG_WARN, key, run_id,
         "etcd commit resolved after the run: %s (batch %s%s%s)", batch_outcome_name(o->outcome),
         o->batch, o->reason[0] ? ": " : "", o->reason);
    if (l && !r->node_name) {
        struct memo *m;

        snprintf(l->run_id, sizeof(l->run_id), "%s", run_id);
        l->o = *o;
        pthread_mutex_lock(&r->mu);
        m = memo_get(r, key, true);
        if (m) {
            l->next = m->late;
            m->late = l;
            l = NULL;
        }
        pthread_mutex_unlock(&r->mu);
        work_queue_add(r->queue, key);
    }
    hp_free(l);
}

/* ---------- a run ---------- */

/* add_pct: append s percent-encoded (a query-string value); b's error */
static hp_rc add_pct(struct hp_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            hp_buf_addch(b, (char)c);
        else
            hp_buf_addf(b, "%%%02X", c);
    }
    return hp_buf_error(b);
}

/* selector: the labelSelector of a nodeSelector (already checked by the spec parser), appended
 * percent-encoded to b. HP_ERR_NOMEM (b then holds a part of it) */
static hp_rc selector(const json_t *sel, struct hp_buf *b)
{
    const json_t *labels = json_object_get(sel, "matchLabels"),
                 *exprs = json_object_get(sel, "matchExpressions"), *v, *e;
    struct hp_buf raw;
    const char *k;
    size_t i, j;
    hp_rc rc;

    hp_buf_init(&raw, 0);
    json_object_foreach((json_t *)labels, k, v)
    {
        hp_buf_addf(&raw, "%s%s=%s", hp_buf_len(&raw) ? "," : "", k, json_string_value(v));
    }
    json_array_foreach(exprs, i, e)
    {
        const char *key = obj_str(e, "key", NULL), *op = obj_str(e, "operator", NULL);

        if (!strcmp(op, "Exists") || !strcmp(op, "DoesNotExist")) {
            hp_buf_addf(&raw, "%s%s%s", hp_buf_len(&raw) ? "," : "", op[0] == 'D' ? "!" : "", key);
            continue;
        }
        hp_buf_addf(&raw, "%s%s %s (", hp_buf_len(&raw) ? "," : "", key,
                    !strcmp(op, "In") ? "in" : "notin");
        json_array_foreach(json_object_get(e, "values"), j, v)
        {
            hp_buf_addf(&raw, "%s%s", j ? "," : "", json_string_value(v));
        }
        hp_buf_addch(&raw, ')');
    }
    rc = hp_buf_error(&raw);
    if (!rc)
        rc = add_pct(b, hp_buf_data(&raw));
    hp_buf_release(&raw);
    return rc;
}

/* node_conditions: one result per matching node for each nodeCondition check, appended to
 * *res. A failed LIST makes each such check one UNKNOWN result "-" with the reason, and
 * *listed false (so the stored per-node results are kept, not taken as gone). Nodes are listed
 * for node-local checks too: *nodes (new reference, NULL when not listed) are the matching
 * nodes, whose agents should report. */
static hp_rc node_conditions(struct reconciler *r, struct hp_ctx *ctx,
                             const struct inspection_spec *spec, struct check_result **res,
                             size_t *n_res, size_t *cap, bool *listed, json_t **nodes)
{
    struct hp_buf path;
    struct hp_err err = {0};
    json_t *list = NULL, *node;
    size_t i, j, k;
    bool any = false;
    hp_rc rc = HP_OK, lrc;

    *listed = true;
    *nodes = NULL;
    for (i = 0; i < spec->n_checks; i++)
        any |= spec->checks[i].kind == CHECK_NODE_CONDITION ||
               check_kind_is_node_local(spec->checks[i].kind);
    if (!any)
        return HP_OK;
    hp_buf_init(&path, 0);
    hp_buf_addstr(&path, "/api/v1/nodes");
    if (spec->node_selector &&
        (json_object_size(json_object_get(spec->node_selector, "matchLabels")) ||
         json_array_size(json_object_get(spec->node_selector, "matchExpressions")))) {
        hp_buf_addstr(&path, "?labelSelector=");
        rc = selector(spec->node_selector, &path);
    }
    if (rc || hp_buf_error(&path)) {
        hp_buf_release(&path);
        return HP_ERR_NOMEM;
    }
    lrc = kube_request(r->cfg.kube, ctx, "GET", hp_buf_data(&path), NULL, NULL, &list, NULL, &err);
    hp_buf_release(&path);
    *listed = lrc == HP_OK;
    for (i = 0; !rc && i < spec->n_checks; i++) {
        const struct check_spec *c = &spec->checks[i];
        const json_t *items = json_object_get(list, "items");
        size_t count = lrc ? 1 : json_array_size(items);

        if (c->kind != CHECK_NODE_CONDITION)
            continue;
        if (!count)
            count = 1; /* "no node matches" is itself a result */
        if (*n_res + count > *cap) {
            size_t ncap = (*n_res + count) * 2;
            struct check_result *nr = hp_realloc(*res, ncap * sizeof(*nr));

            if (!nr) {
                rc = HP_ERR_NOMEM;
                break;
            }
            *res = nr;
            *cap = ncap;
        }
        if (lrc || !json_array_size(items)) {
            struct check_result *cr = &(*res)[*n_res];

            rc = check_result_init(cr, c->name, "-", c->kind);
            if (rc)
                break;
            (*n_res)++;
            cr->observed_ms = wall_ms();
            rc = lrc ? check_result_judge(cr, CHECK_UNKNOWN, "nodes not listed: %s", err.msg)
                     : check_result_judge(cr, CHECK_UNKNOWN, "no node matches spec.nodeSelector");
            continue;
        }
        json_array_foreach(items, j, node)
        {
            const json_t *conds = json_object_get(json_object_get(node, "status"), "conditions"),
                         *cd, *found = NULL;
            struct check_result *cr = &(*res)[*n_res];
            const char *st, *why, *msg;

            rc = check_result_init(cr, c->name, obj_str(node, "metadata", "name"), c->kind);
            if (rc)
                break;
            (*n_res)++;
            cr->observed_ms = wall_ms();
            json_array_foreach(conds, k, cd)
            {
                if (obj_str(cd, "type", NULL) &&
                    !strcmp(obj_str(cd, "type", NULL), c->u.node_condition.type))
                    found = cd;
            }
            st = obj_str(found, "status", NULL);
            if (!found || !st) {
                rc = check_result_judge(cr, CHECK_UNKNOWN, "node reports no %s condition",
                                        c->u.node_condition.type);
                if (rc)
                    break;
                continue;
            }
            if (json_object_set_new(cr->values, "condition_status", json_string(st))) {
                rc = HP_ERR_NOMEM;
                break;
            }
            if (!strcmp(st, c->u.node_condition.expect)) {
                rc = check_result_judge(cr, CHECK_OK, "%s", "");
            } else {
                why = obj_str(found, "reason", NULL);
                msg = obj_str(found, "message", NULL);
                rc = check_result_judge(cr, strcmp(st, "Unknown") ? CHECK_CRIT : CHECK_UNKNOWN,
                                        "%s is %s, expected %s%s%s%s%s%s", c->u.node_condition.type,
                                        st, c->u.node_condition.expect, why ? " (" : "",
                                        why ? why : "", msg ? ": " : "", msg ? msg : "",
                                        why ? ")" : "");
            }
            if (rc)
                break;
        }
    }
    if (!lrc)
        *nodes = json_incref(json_object_get(list, "items"));
    json_decref(list);
    return rc;
}

static void add_failing(struct run_report *rep, const char *target, const char *check,
                        enum check_status st, const char *reason)
{
    rep->counts[st]++;
    if (st != CHECK_OK && json_array_size(rep->failing) < RECONCILER_MAX_FAILING)
        json_array_append_new(rep->failing,
                              json_pack("{s:s,s:s,s:s,s:s}", "target", target, "check", check,
                                        "status", check_status_name(st), "reason", reason));
}

/* node_local_summary: the controller's view of the agents' results: for every matching node and
 * node-local check, the stored result counts; a missing or stale one (older than two intervals
 * plus the timeout) is UNKNOWN. Nothing is written: the results are the agents'. */
static void node_local_summary(const struct inspection_spec *spec, const json_t *nodes,
                               const struct etcd_range_resp *stored, size_t plen,
                               struct run_report *rep)
{
    int64_t stale_ms = 2 * spec->interval_ms + spec->timeout_ms, now = wall_ms();
    const json_t *node;
    size_t i, j, k;

    json_array_foreach(nodes, i, node)
    {
        const char *nn = obj_str(node, "metadata", "name");
        bool node_bad = false, any = false;

        for (j = 0; nn && j < spec->n_checks; j++) {
            const struct check_spec *c = &spec->checks[j];
            json_t *v = NULL;
            enum check_status st = CHECK_UNKNOWN;
            char why[600];

            if (!check_kind_is_node_local(c->kind))
                continue;
            any = true;
            for (k = 0; !v && stored && k < stored->n; k++) {
                const char *rest = stored->kvs[k].key + plen;
                size_t cl = strlen(c->name);

                if (!strncmp(rest, c->name, cl) && rest[cl] == '/' && !strcmp(rest + cl + 1, nn))
                    v = json_loadb(stored->kvs[k].value, stored->kvs[k].value_len, 0, NULL);
            }
            if (!v) {
                snprintf(why, sizeof(why), "no result from the agent on %s yet", nn);
            } else if (now - json_integer_value(json_object_get(v, "observed_ms")) > stale_ms) {
                char t[32];

                rfc3339(json_integer_value(json_object_get(v, "observed_ms")), t);
                snprintf(why, sizeof(why), "the agent on %s last reported at %s", nn, t);
            } else if (check_status_parse(json_string_value(json_object_get(v, "status")), &st)) {
                st = CHECK_UNKNOWN;
                snprintf(why, sizeof(why), "unreadable result from the agent on %s", nn);
            } else {
                snprintf(why, sizeof(why), "%s",
                         nz(json_string_value(json_object_get(v, "reason"))));
            }
            check_result_trim_utf8(why);
            add_failing(rep, nn, c->name, st, why);
            node_bad |= st != CHECK_OK;
            json_decref(v);
        }
        if (any)
            rep->nodes++;
        if (node_bad && json_array_size(rep->failing_nodes) < RECONCILER_MAX_FAILING)
            json_array_append_new(rep->failing_nodes, json_string(nn));
    }
}

/* notify_commit: hand cfg.on_commit the committed run (sr, borrowed) as one JSON text */
static void notify_commit(struct reconciler *r, const char *ns, const char *name,
                          const char *run_id, int64_t revision, const struct results_store_run *sr)
{
    char *text = NULL;

    if (!results_store_run_text(sr, run_id, revision, &text))
        r->cfg.on_commit(r->cfg.commit_arg, ns, name, text);
    else
        rlog(r, RLOG_WARN, NULL, run_id, "committed run of %s/%s not published: out of memory", ns,
             name);
    hp_free(text);
}

/* run: the controller's checks (probes, node conditions) or, in agent mode, this node's
 * node-local checks -> results -> one commit (with the deletes of stale results). withdraw (agent
 * mode): run nothing, so this node's results of the resource are deleted. Never fails for a
 * check's failure: that is a result. */
static hp_rc run(struct reconciler *r, const char *key, const json_t *obj,
                 const struct inspection_spec *spec, const char *run_id, bool withdraw,
                 struct run_report *rep)
{
    const char *ns = obj_str(obj, "metadata", "namespace"),
               *name = obj_str(obj, "metadata", "name");
    struct results_store_stored stored = {0};
    struct results_store_commit co;
    struct check_result *res = NULL;
    struct probe_item *items = NULL;
    const struct check_spec **local = NULL;
    struct results_store_run *sr = NULL;
    struct hp_ctx *ctx = NULL, *pctx = NULL;
    struct hp_err err = {0}, rerr = {0};
    size_t n_items = 0, n_local = 0, n_res = 0, cap, i, t;
    bool nodes_listed = true, have_stored;
    json_t *nodes = NULL;
    int64_t reserve;
    char source[320];
    hp_rc rc;

    memset(rep, 0, sizeof(*rep));
    if (r->node_name)
        snprintf(source, sizeof(source), "agent/%s", r->node_name);
    else
        snprintf(source, sizeof(source), "controller/%s", r->identity);
    rep->failing = json_array();
    rep->failing_nodes = json_array();
    rc = rep->failing && rep->failing_nodes ? hp_ctx_new(r->ctx, spec->timeout_ms, &ctx)
                                            : HP_ERR_NOMEM;
    if (!rc)
        rc = results_store_run_new(r->store, ns, name, r->cfg.on_commit != NULL, &sr);
    if (rc)
        goto out;
    /* checks end early enough to leave the commit a fifth of the run (at least 100 ms, at most
     * half of it) */
    reserve = spec->timeout_ms / 5 > 100 ? spec->timeout_ms / 5 : 100;
    if (reserve > spec->timeout_ms / 2)
        reserve = spec->timeout_ms / 2;
    rc = hp_ctx_new(ctx, spec->timeout_ms - reserve, &pctx);
    if (rc)
        goto out;
    for (i = 0; i < spec->n_checks; i++) {
        enum check_kind k = spec->checks[i].kind;

        if (k == CHECK_TCP || k == CHECK_TLS)
            n_items += spec->n_targets;
        else if (k == CHECK_HTTP || k == CHECK_DNS)
            n_items++;
        else if (check_kind_is_node_local(k))
            n_local++;
    }
    cap = n_items + n_local + 1;
    items = hp_calloc(cap, sizeof(*items));
    local = hp_calloc(cap, sizeof(*local));
    res = hp_calloc(cap, sizeof(*res));
    if (!items || !local || !res) {
        rc = HP_ERR_NOMEM;
        goto out;
    }
    n_items = n_local = 0;
    for (i = 0; i < spec->n_checks; i++) {
        const struct check_spec *c = &spec->checks[i];

        if (c->kind == CHECK_TCP || c->kind == CHECK_TLS)
            for (t = 0; t < spec->n_targets; t++)
                items[n_items++] = (struct probe_item){c, &spec->targets[t]};
        else if (c->kind == CHECK_HTTP || c->kind == CHECK_DNS)
            items[n_items++] = (struct probe_item){c, NULL};
        else if (check_kind_is_node_local(c->kind) && !withdraw)
            local[n_local++] = c;
    }
    if (r->node_name) {
        /* the agent: this node's node-local checks, from the host root */
        if (n_local) {
            rc = host_check_run(r->host_root, r->node_name, local, n_local, pctx, res, &err);
            n_res = n_local;
            if (rc)
                goto out;
        }
    } else {
        if (n_items) {
            struct probe_options po = {.policy = r->cfg.policy,
                                       .budget = r->cfg.budget,
                                       .owner = ns,
                                       .max_in_flight = r->cfg.max_sockets_per_run};

            rc = probe_run_opts(items, n_items, pctx, &po, res, &err);
            n_res = n_items;
            if (rc)
                goto out;
        }
        rc = node_conditions(r, pctx, spec, &res, &n_res, &cap, &nodes_listed, &nodes);
        if (rc)
            goto out;
    }
    have_stored = results_store_read(r->store, ctx, ns, name, &stored, &rerr) == HP_OK;
    if (!have_stored)
        rlog(r, RLOG_WARN, NULL, NULL, "stored results of %s/%s not read: %s", ns, name, rerr.msg);
    if (!r->node_name && nodes)
        node_local_summary(spec, nodes, have_stored ? &stored.resp : NULL, stored.plen, rep);
    for (i = 0; i < n_res; i++) {
        if ((unsigned)res[i].kind < CHECK_KIND__COUNT && (unsigned)res[i].status < 4) {
            prom_histogram_observe(&r->check_seconds[res[i].kind],
                                   (double)res[i].duration_ms / 1000);
            pthread_mutex_lock(&r->mu);
            r->results[res[i].kind][res[i].status]++;
            pthread_mutex_unlock(&r->mu);
        }
        add_failing(rep, res[i].target, res[i].check, res[i].status, res[i].reason);
        rc = results_store_run_put(sr, &res[i], source, run_id);
        if (rc)
            goto out;
    }
    if (have_stored) {
        struct results_store_produced p = {spec, res, n_res, r->node_name, nodes_listed};

        rc = results_store_run_stale(sr, &stored, &p);
        if (rc)
            goto out;
    }
    if (!results_store_run_len(sr)) {
        rep->commit_rc = HP_OK;
        snprintf(rep->why, sizeof(rep->why), "nothing of this %s to store",
                 r->node_name ? "node" : "controller");
        goto out;
    }
    rep->commit_rc = results_store_run_commit(sr, ctx, key, run_id, &co);
    rep->revision = co.revision;
    snprintf(rep->batch_id, sizeof(rep->batch_id), "%s", co.batch);
    snprintf(rep->why, sizeof(rep->why), "%s", co.why);
    cur_batch = rep->batch_id[0] ? rep->batch_id : NULL;
    rlog(r, rep->commit_rc ? RLOG_WARN : RLOG_INFO, key, run_id,
         "run done: %zu ok, %zu warn, %zu crit, %zu unknown; %zu etcd writes %s%s",
         rep->counts[CHECK_OK], rep->counts[CHECK_WARN], rep->counts[CHECK_CRIT],
         rep->counts[CHECK_UNKNOWN], results_store_run_len(sr),
         rep->commit_rc ? "not committed: " : "committed", rep->commit_rc ? rep->why : "");
    cur_batch = NULL;
    if (!rep->commit_rc && r->cfg.on_commit)
        notify_commit(r, ns, name, run_id, rep->revision, sr);
out:
    if (rc)
        rlog(r, RLOG_ERROR, key, run_id, "run failed: %s %s", hp_rc_name(rc), err.msg);
    for (i = 0; res && i < n_res; i++)
        check_result_release(&res[i]);
    results_store_stored_release(&stored);
    json_decref(nodes);
    hp_free(res);
    hp_free(items);
    hp_free(local);
    results_store_run_free(sr);
    hp_ctx_free(pctx);
    hp_ctx_free(ctx);
    return rc;
}

/* ---------- one reconcile ---------- */

/* base_status: the start of a status patch. Empty: a merge patch leaves every field it does not
 * name as it is on the server. */
static json_t *base_status(const json_t *obj)
{
    (void)obj;
    return json_object();
}

static bool own_condition(const char *type)
{
    return type && (!strcmp(type, "Ready") || !strcmp(type, "Degraded") ||
                    !strcmp(type, "InvalidSpec") || !strcmp(type, "Suspended"));
}

/* transform: what the informer caches of a HostInspection (10,000 of them must fit in a few MB):
 * the reconciler reads metadata, spec and status.{conditions, lastRunTime, observedGeneration,
 * runNow}; of its own conditions only type, status, lastTransitionTime and observedGeneration
 * (and the message of a true InvalidSpec, to see it is unchanged). A status patch that keeps
 * some of them as they are reads the live object instead (live_object). */
static void transform(void *arg, json_t *obj)
{
    static const char *const drop[] = {"failingChecks", "summary", "lastCommit",
                                       "lastSuccessfulRunTime", "nextRunTime"};
    struct reconciler *r = arg;
    json_t *st = json_object_get(obj, "status"), *c;
    size_t i;

    if (r->cfg.on_object)
        r->cfg.on_object(r->cfg.object_arg, obj_str(obj, "metadata", "namespace"),
                         obj_str(obj, "metadata", "name"), obj);
    json_object_del(obj, "apiVersion");
    json_object_del(obj, "kind");
    json_object_del(json_object_get(obj, "metadata"), "creationTimestamp");
    for (i = 0; st && i < sizeof(drop) / sizeof(drop[0]); i++)
        json_object_del(st, drop[i]);
    json_array_foreach(json_object_get(st, "conditions"), i, c)
    {
        const char *type = obj_str(c, "type", NULL);

        if (!own_condition(type))
            continue;
        json_object_del(c, "reason");
        if (strcmp(type, "InvalidSpec") || strcmp(nz(obj_str(c, "status", NULL)), "True"))
            json_object_del(c, "message");
    }
}

/* live_object: the object as the server has it now (new reference), for a status patch that
 * carries conditions over unchanged (the cache keeps them without messages) */
static hp_rc live_object(struct reconciler *r, const json_t *obj, json_t **out, struct hp_err *err)
{
    struct hp_ctx *ctx = NULL;
    char path[512];
    hp_rc rc;

    *out = NULL;
    obj_path(obj_str(obj, "metadata", "namespace"), obj_str(obj, "metadata", "name"), "", path,
             sizeof(path));
    rc = hp_ctx_new(r->ctx, META_TIMEOUT, &ctx);
    if (!rc)
        rc = kube_request(r->cfg.kube, ctx, "GET", path, NULL, NULL, out, NULL, err);
    hp_ctx_free(ctx);
    return rc;
}

/* cleanup_failed: Ready=False (reason) on status, other conditions kept */
static void cleanup_failed(struct reconciler *r, const char *key, const json_t *obj,
                           const char *reason, const char *why)
{
    struct cond c = {"Ready", "False", reason, ""};
    int64_t gen =
        json_integer_value(json_object_get(json_object_get(obj, "metadata"), "generation"));
    json_t *st = base_status(obj), *live = NULL;
    struct hp_err err = {0};
    char now[32];

    snprintf(c.message, sizeof(c.message), "the finalizer %s stays: %s", RECONCILER_FINALIZER, why);
    rlog(r, RLOG_WARN, key, NULL, "%s", c.message);
    rfc3339(wall_ms(), now);
    if (!st || live_object(r, obj, &live, &err) ||
        json_object_set_new(st, "conditions", conditions_json(live, &c, 1, gen, now))) {
        json_decref(st);
        json_decref(live);
        return;
    }
    if (write_status(r, obj, st, &err)) {
    }
    json_decref(live);
}

/* finalize: the resource is being deleted: delete its results, then drop our finalizer. */
static hp_rc finalize(struct reconciler *r, const char *key, const json_t *obj)
{
    const char *ns = obj_str(obj, "metadata", "namespace"),
               *name = obj_str(obj, "metadata", "name");
    struct hp_ctx *ctx = NULL, *mctx = NULL;
    struct batch_stats bs;
    struct hp_err err = {0};
    char why[HP_ERR_MSG_MAX + 64];
    json_t *updated = NULL;
    int64_t deleted = 0;
    hp_rc rc;

    if (!has_finalizer(obj))
        return HP_OK;
    /* a commit of an earlier run still being resolved could land (and be undone) after the
     * delete: wait for the queue to settle first */
    batch_queue_stats(r->cfg.batch, &bs);
    if (bs.unresolved) {
        cleanup_failed(r, key, obj, "CleanupWaiting",
                       "an earlier etcd commit is still being resolved; retrying");
        return HP_ERR_UNKNOWN_OUTCOME;
    }
    rc = hp_ctx_new(r->ctx, CLEANUP_TIMEOUT, &ctx);
    if (rc)
        goto out;
    rc = results_store_delete_all(r->store, ctx, ns, name, &deleted, &err);
    if (rc) {
        snprintf(why, sizeof(why), "results not deleted from etcd: %s", err.msg);
        cleanup_failed(r, key, obj, "CleanupFailed", why);
        goto out;
    }
    rlog(r, RLOG_INFO, key, NULL, "deleted %lld results from etcd", (long long)deleted);
    stat_add(r, &r->stats.cleanups);
    rc = hp_ctx_new(r->ctx, META_TIMEOUT, &mctx);
    if (!rc)
        rc = set_finalizers(r, mctx, obj, false, &updated, &err);
    if (rc == HP_ERR_NOTFOUND)
        rc = HP_OK;
    if (rc)
        rlog(r, RLOG_WARN, key, NULL, "finalizer not removed: %s", err.msg);
out:
    json_decref(updated);
    hp_ctx_free(mctx);
    hp_ctx_free(ctx);
    return rc;
}

/* ---------- agent mode ---------- */

/* selector_matches: does a nodeSelector (checked by the spec parser; NULL: every node) select
 * a node with these labels? */
static bool selector_matches(const json_t *sel, const json_t *labels)
{
    const json_t *v, *e, *x;
    const char *k;
    size_t i, j;

    json_object_foreach((json_t *)json_object_get(sel, "matchLabels"), k, v)
    {
        const char *have = json_string_value(json_object_get(labels, k));

        if (!have || strcmp(have, nz(json_string_value(v))))
            return false;
    }
    json_array_foreach(json_object_get(sel, "matchExpressions"), i, e)
    {
        const char *have = json_string_value(json_object_get(labels, obj_str(e, "key", NULL)));
        const char *op = nz(obj_str(e, "operator", NULL));
        bool in = false;

        json_array_foreach(json_object_get(e, "values"), j, x)
        {
            in |= have && !strcmp(have, nz(json_string_value(x)));
        }
        if ((!strcmp(op, "In") && !in) || (!strcmp(op, "NotIn") && in) ||
            (!strcmp(op, "Exists") && !have) || (!strcmp(op, "DoesNotExist") && have))
            return false;
    }
    return true;
}

/* node_labels: this node's labels (new reference), read from the API at most every 10 s; the
 * last ones read are used while the API cannot be reached */
static hp_rc node_labels(struct reconciler *r, json_t **out, struct hp_err *err)
{
    struct hp_ctx *ctx = NULL;
    json_t *node = NULL;
    char path[512];
    hp_rc rc;

    pthread_mutex_lock(&r->mu);
    *out = r->node_labels && hp_now_ns() - r->labels_ns < 10LL * 1000000000
               ? json_incref(r->node_labels)
               : NULL;
    pthread_mutex_unlock(&r->mu);
    if (*out)
        return HP_OK;
    snprintf(path, sizeof(path), "/api/v1/nodes/%s", r->node_name);
    rc = hp_ctx_new(r->ctx, META_TIMEOUT, &ctx);
    if (!rc)
        rc = kube_request(r->cfg.kube, ctx, "GET", path, NULL, NULL, &node, NULL, err);
    hp_ctx_free(ctx);
    pthread_mutex_lock(&r->mu);
    if (!rc) {
        json_t *l = json_object_get(json_object_get(node, "metadata"), "labels");

        json_decref(r->node_labels);
        r->node_labels = l ? json_incref(l) : json_object();
        r->labels_ns = hp_now_ns();
    }
    *out = json_incref(r->node_labels); /* the last known, if this read failed */
    pthread_mutex_unlock(&r->mu);
    json_decref(node);
    return *out ? HP_OK : rc;
}

/* raw_node_local: does the unparsed spec have a node-local check (a check object with a disk,
 * load, memory, process or file member)? */
static bool raw_node_local(const json_t *spec)
{
    const json_t *c;
    size_t i;
    int k;

    json_array_foreach(json_object_get(spec, "checks"), i, c)
    {
        for (k = 0; k < CHECK_KIND__COUNT; k++)
            if (check_kind_is_node_local((enum check_kind)k) &&
                json_object_get(c, check_kind_name((enum check_kind)k)))
                return true;
    }
    return false;
}

/* run_counted: run, counted (runs, runs committed or failed) and timed by its commit's outcome
 * (hostpatrol_run_duration_seconds); rc as run's */
static hp_rc run_counted(struct reconciler *r, const char *key, const json_t *obj,
                         const struct inspection_spec *spec, const char *run_id,
                         struct run_report *rep)
{
    int64_t t0 = hp_now_ns();
    hp_rc rc;

    stat_add(r, &r->stats.runs);
    rc = run(r, key, obj, spec, run_id, false, rep);
    if (rc)
        return rc;
    prom_histogram_observe(
        &r->run_seconds[!rep->commit_rc                            ? RUN_COMMITTED
                        : rep->commit_rc == HP_ERR_UNKNOWN_OUTCOME ? RUN_UNRESOLVED
                                                                   : RUN_FAILED],
        (double)(hp_now_ns() - t0) / 1e9);
    stat_add(r, rep->commit_rc ? &r->stats.runs_failed : &r->stats.runs_committed);
    return HP_OK;
}

/* reconcile_agent: the agent's reconcile: run this node's node-local checks of a HostInspection
 * that selects the node, on its schedule; withdraw this node's results when it no longer does.
 * No finalizer, status or Events: those are the controller's. */
static hp_rc reconcile_agent(struct reconciler *r, const char *key, const json_t *obj,
                             int64_t *requeue_ms)
{
    static const struct inspection_spec withdraw_all = {.timeout_ms = 10000};
    const struct inspection_spec *spec = NULL;
    struct spec_ref *ref = NULL;
    struct run_report rep = {0};
    struct hp_err err = {0};
    json_t *labels = NULL;
    const char *run_now;
    int64_t gen, now = wall_ms(), due;
    const json_t *raw = json_object_get(obj, "spec");
    bool suspended = json_is_true(json_object_get(raw, "suspend"));
    bool matches, ran_before, new_gen, new_run_now;
    struct memo *m;
    char run_id[64];
    hp_rc rc = HP_OK;

    if (json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp"))
        goto out; /* the controller's finalizer deletes every result */
    /* the node selector first, and whether there is anything node-local: a resource this agent
     * would not run is not parsed (nor kept) */
    rc = node_labels(r, &labels, &err);
    if (rc)
        goto out;
    matches = !suspended && selector_matches(json_object_get(raw, "nodeSelector"), labels) &&
              raw_node_local(raw);
    if (matches) {
        rc = spec_cache_get(r->specs, key, obj, &ref);
        if (rc)
            goto out;
        spec = spec_ref_spec(ref);
        if (!spec)
            goto out; /* refused: the controller reports InvalidSpec; a fixed spec comes as an
                       * event */
    }
    gen = json_integer_value(json_object_get(json_object_get(obj, "metadata"), "generation"));
    run_now = json_string_value(json_object_get(
        json_object_get(json_object_get(obj, "metadata"), "annotations"), RECONCILER_RUN_NOW));
    pthread_mutex_lock(&r->mu);
    m = memo_get(r, key, false);
    ran_before = m && m->last_run_ms;
    new_gen = !m || m->generation != gen;
    new_run_now = run_now && (!m || !m->run_now || strcmp(run_now, m->run_now));
    due = m ? m->next_run_ms : 0;
    pthread_mutex_unlock(&r->mu);
    snprintf(run_id, sizeof(run_id), "%.8s-%s-%llx", obj_str(obj, "metadata", "uid"), r->node_name,
             (unsigned long long)now);
    if (!matches) {
        if (suspended && ran_before)
            goto out; /* suspended: results already written stay */
        if (ran_before) {
            rc = run(r, key, obj, &withdraw_all, run_id, true, &rep);
            if (!rc && !rep.commit_rc) {
                rlog(r, RLOG_INFO, key, run_id, "this node is no longer selected: results removed");
                memo_drop(r, key);
            }
        }
        goto out;
    }
    if (!new_gen && !new_run_now && now < due) {
        *requeue_ms = due - now;
        goto out;
    }
    if (atomic_load(&r->stopping))
        goto out;
    rc = run_counted(r, key, obj, spec, run_id, &rep);
    if (rc)
        goto out;
    due = memo_ran(r, key, now, gen, run_now, spec->interval_ms);
    *requeue_ms = due - wall_ms() > 0 ? due - wall_ms() : 0;
out:
    json_decref(rep.failing);
    json_decref(rep.failing_nodes);
    json_decref(labels);
    spec_ref_put(ref);
    return rc;
}

/* report_late: the outcomes of commits that were unresolved when their runs ended (late_final
 * kept them in the memo): an Event each; the Ready condition too when that run's status is
 * still the latest. A status not written puts the outcomes back for the retry. */
static hp_rc report_late(struct reconciler *r, const char *key, const json_t *obj,
                         struct hp_err *err)
{
    struct late_outcome *list = NULL, *l;
    struct memo *m;
    hp_rc rc = HP_OK;

    pthread_mutex_lock(&r->mu);
    m = memo_get(r, key, false);
    if (m) {
        list = m->late;
        m->late = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    while ((l = list)) {
        bool ok = l->o.outcome == BATCH_COMMITTED, latest;
        struct cond c = {"Ready", ok ? "True" : "False", ok ? "RunSucceeded" : "CommitFailed", ""};
        char now_s[32], msg[sizeof(c.message)];
        struct hp_ctx *ctx = NULL;
        json_t *live = NULL, *st = NULL;

        if (ok)
            snprintf(msg, sizeof(msg),
                     "run %s: etcd commit of batch %s, unresolved when the run ended, committed at "
                     "revision %lld",
                     l->run_id, l->o.batch, (long long)l->o.revision);
        else
            snprintf(
                msg, sizeof(msg),
                "run %s: etcd commit of batch %s, unresolved when the run ended, is final: %s%s%s",
                l->run_id, l->o.batch, batch_outcome_name(l->o.outcome), l->o.reason[0] ? ": " : "",
                l->o.reason);
        pthread_mutex_lock(&r->mu);
        m = memo_get(r, key, false);
        latest = m && !strcmp(m->unresolved, l->run_id);
        pthread_mutex_unlock(&r->mu);
        if (latest) {
            int64_t gen = json_integer_value(
                json_object_get(json_object_get(obj, "status"), "observedGeneration"));

            memcpy(c.message, msg, sizeof(msg));
            rfc3339(wall_ms(), now_s);
            rc = live_object(r, obj, &live, err);
            st = rc ? NULL : base_status(obj);
            if (!rc &&
                (!st ||
                 json_object_set_new(st, "conditions", conditions_json(live, &c, 1, gen, now_s)) ||
                 (ok &&
                  json_object_set_new(st, "lastCommit",
                                      json_pack("{s:I,s:s}", "revision", (json_int_t)l->o.revision,
                                                "batch", l->o.batch)))))
                rc = HP_ERR_NOMEM;
            json_decref(live);
            if (!rc) {
                rc = write_status(r, obj, st, err);
                st = NULL;
            }
            json_decref(st);
            if (rc)
                break; /* l and the rest go back to the memo */
            pthread_mutex_lock(&r->mu);
            m = memo_get(r, key, false);
            if (m && !strcmp(m->unresolved, l->run_id))
                m->unresolved[0] = '\0';
            pthread_mutex_unlock(&r->mu);
        }
        rlog(r, ok ? RLOG_INFO : RLOG_WARN, key, l->run_id, "%s", msg);
        if (!hp_ctx_new(r->ctx, META_TIMEOUT, &ctx))
            post_event(r, ctx, obj, ok ? "Normal" : "Warning",
                       ok                                  ? "CommitResolved"
                       : l->o.outcome == BATCH_ROLLED_BACK ? "CommitRolledBack"
                                                           : "CommitFailed",
                       msg);
        hp_ctx_free(ctx);
        list = l->next;
        hp_free(l);
    }
    if (list) {
        pthread_mutex_lock(&r->mu);
        m = memo_get(r, key, true);
        if (m) {
            for (l = list; l->next; l = l->next)
                ;
            l->next = m->late;
            m->late = list;
            list = NULL;
        }
        pthread_mutex_unlock(&r->mu);
        while ((l = list)) {
            list = l->next;
            hp_free(l);
        }
    }
    return rc;
}

/* reconcile: returns HP_OK, or an error to retry with backoff. *requeue_ms >= 0 asks for a
 * later reconcile (a scheduled run). *unreachable: the error is the apiserver not answering at
 * all (UNAVAILABLE without an HTTP status). */
static hp_rc reconcile(struct reconciler *r, const char *key, int64_t *requeue_ms,
                       bool *unreachable)
{
    json_t *obj = kube_informer_get(r->informer, key), *fresh = NULL, *st = NULL, *live = NULL;
    const struct inspection_spec *spec = NULL;
    struct spec_ref *ref = NULL;
    struct hp_err err = {0};
    struct hp_ctx *ctx = NULL;
    struct run_report rep = {0};
    struct cond cs[4];
    const char *run_now, *status_run_now;
    char now_s[32], next_s[32], run_id[64];
    int64_t gen, now, last, due, last_status;
    size_t nc = 0;
    bool new_gen, new_run_now;
    struct memo *m;
    hp_rc rc = HP_OK;

    *requeue_ms = -1;
    if (!obj) {
        memo_drop(r, key);
        return HP_OK;
    }
    if (r->node_name) {
        rc = reconcile_agent(r, key, obj, requeue_ms);
        goto out;
    }
    if (json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp")) {
        rc = finalize(r, key, obj);
        if (!rc)
            memo_drop(r, key);
        goto out;
    }
    if (!has_finalizer(obj)) {
        rc = hp_ctx_new(r->ctx, META_TIMEOUT, &ctx);
        if (rc)
            goto out;
        rc = set_finalizers(r, ctx, obj, true, &fresh, &err);
        if (rc) {
            rlog(r, RLOG_WARN, key, NULL, "finalizer not added: %s", err.msg);
            goto out;
        }
        json_decref(obj);
        obj = fresh;
        fresh = NULL;
    }
    /* a status a failed write left behind: write it first (its run is done) */
    pthread_mutex_lock(&r->mu);
    m = memo_get(r, key, false);
    st = m ? json_incref(m->pending) : NULL;
    pthread_mutex_unlock(&r->mu);
    if (st) {
        rc = write_pending(r, key, obj, st, &err);
        st = NULL;
        if (rc)
            goto out;
    }
    rc = report_late(r, key, obj, &err);
    if (rc)
        goto out;
    gen = json_integer_value(json_object_get(json_object_get(obj, "metadata"), "generation"));
    now = wall_ms();
    rfc3339(now, now_s);
    rc = spec_cache_get(r->specs, key, obj, &ref);
    if (rc)
        goto out;
    rc = spec_ref_verdict(ref, &err);
    if (rc == HP_ERR_INVALID || rc == HP_ERR_AUTH) {
        const json_t *old = old_condition(obj, "InvalidSpec");
        /* Forbidden: valid, but the cluster's policy does not allow it here */
        const char *reason = rc == HP_ERR_AUTH ? "Forbidden" : "InvalidSpec";

        cs[0] = (struct cond){"InvalidSpec", "True", reason, ""};
        snprintf(cs[0].message, sizeof(cs[0].message), "%s", err.msg);
        cs[1] = (struct cond){"Ready", "False", reason, ""};
        snprintf(cs[1].message, sizeof(cs[1].message), "spec %s at %s: %s",
                 rc == HP_ERR_AUTH ? "refused by the cluster policy" : "error", err.field, err.msg);
        rc = HP_OK;
        /* the same error already on status for this generation: nothing to write, no retry */
        if (old && !strcmp(old_cond_status(obj, "InvalidSpec"), "True") &&
            json_integer_value(json_object_get(old, "observedGeneration")) == gen &&
            obj_str(old, "message", NULL) && !strcmp(obj_str(old, "message", NULL), err.msg))
            goto out;
        rlog(r, RLOG_WARN, key, NULL, "invalid spec: %s", err.msg);
        rc = live_object(r, obj, &live, &err);
        if (rc)
            goto out;
        st = base_status(obj);
        if (!st || json_object_set_new(st, "observedGeneration", json_integer(gen)) ||
            json_object_set_new(st, "conditions", conditions_json(live, cs, 2, gen, now_s))) {
            rc = HP_ERR_NOMEM;
            goto out;
        }
        rc = write_status(r, obj, st, &err);
        st = NULL;
        goto out;
    }
    if (rc)
        goto out;
    spec = spec_ref_spec(ref);
    if (spec->suspend) {
        if (!strcmp(old_cond_status(obj, "Suspended"), "True") &&
            json_integer_value(
                json_object_get(json_object_get(obj, "status"), "observedGeneration")) == gen)
            goto out;
        cs[nc] = (struct cond){"Suspended", "True", "Suspended", ""};
        snprintf(cs[nc++].message, sizeof(cs[0].message),
                 "spec.suspend is true: no run starts; results already written stay");
        cs[nc] = (struct cond){"InvalidSpec", "False", "SpecValid", "the spec is valid"};
        nc++;
        rc = live_object(r, obj, &live, &err);
        if (rc)
            goto out;
        st = base_status(obj);
        if (!st || json_object_set_new(st, "observedGeneration", json_integer(gen)) ||
            json_object_set_new(st, "nextRunTime", json_null()) ||
            json_object_set_new(st, "conditions", conditions_json(live, cs, nc, gen, now_s))) {
            rc = HP_ERR_NOMEM;
            goto out;
        }
        rc = write_status(r, obj, st, &err); /* Ready and Degraded stay as they were */
        st = NULL;
        goto out;
    }

    /* is a run due? */
    run_now = json_string_value(json_object_get(
        json_object_get(json_object_get(obj, "metadata"), "annotations"), RECONCILER_RUN_NOW));
    status_run_now = obj_str(obj, "status", "runNow");
    last_status = parse_rfc3339(obj_str(obj, "status", "lastRunTime"));
    pthread_mutex_lock(&r->mu);
    m = memo_get(r, key, false);
    last = m && m->last_run_ms > last_status ? m->last_run_ms : last_status;
    new_gen = gen != json_integer_value(
                         json_object_get(json_object_get(obj, "status"), "observedGeneration")) &&
              (!m || m->generation != gen);
    new_run_now = run_now && (!status_run_now || strcmp(run_now, status_run_now)) &&
                  (!m || !m->run_now || strcmp(run_now, m->run_now));
    due = m && m->next_run_ms && m->last_run_ms >= last_status ? m->next_run_ms
                                                               : last + spec->interval_ms;
    pthread_mutex_unlock(&r->mu);
    if (last && !new_gen && !new_run_now && now < due) {
        *requeue_ms = due - now;
        goto out;
    }
    if (atomic_load(&r->stopping))
        goto out; /* shutting down: runs in progress finish, no new one starts */

    /* run */
    snprintf(run_id, sizeof(run_id), "%.8s-%llx", obj_str(obj, "metadata", "uid"),
             (unsigned long long)now);
    rlog(r, RLOG_INFO, key, run_id, "run starts (%s)",
         !last         ? "first run"
         : new_gen     ? "spec changed"
         : new_run_now ? "run-now"
                       : "scheduled");
    rc = run_counted(r, key, obj, spec, run_id, &rep);
    if (rc)
        goto out;
    due = memo_ran(r, key, now, gen, run_now, spec->interval_ms);

    /* status, last */
    rfc3339(due, next_s);
    pthread_mutex_lock(&r->mu);
    m = memo_get(r, key, false);
    if (m) /* the outcome, when it comes, updates Ready while this run is the latest */
        snprintf(m->unresolved, sizeof(m->unresolved), "%s",
                 rep.commit_rc == HP_ERR_UNKNOWN_OUTCOME ? run_id : "");
    pthread_mutex_unlock(&r->mu);
    if (rep.commit_rc) {
        cs[nc] = (struct cond){
            "Ready", "False",
            rep.commit_rc == HP_ERR_UNKNOWN_OUTCOME ? "CommitUnresolved" : "CommitFailed", ""};
        snprintf(cs[nc++].message, sizeof(cs[0].message), "run %s: %s", run_id, rep.why);
    } else {
        size_t total = rep.counts[0] + rep.counts[1] + rep.counts[2] + rep.counts[3];

        cs[nc] = (struct cond){"Ready", "True", "RunSucceeded", ""};
        if (rep.revision)
            snprintf(cs[nc++].message, sizeof(cs[0].message),
                     "run %s judged %zu results; the controller's stored in etcd at revision %lld",
                     run_id, total, (long long)rep.revision);
        else
            snprintf(cs[nc++].message, sizeof(cs[0].message),
                     "run %s judged %zu results (node results from the agents)", run_id, total);
    }
    if (rep.counts[CHECK_WARN] + rep.counts[CHECK_CRIT] + rep.counts[CHECK_UNKNOWN]) {
        const json_t *f0 = json_array_get(rep.failing, 0);

        cs[nc] = (struct cond){"Degraded", "True", "ChecksFailing", ""};
        snprintf(cs[nc++].message, sizeof(cs[0].message),
                 "%zu crit, %zu warn, %zu unknown; first: %s/%s %s: %s", rep.counts[CHECK_CRIT],
                 rep.counts[CHECK_WARN], rep.counts[CHECK_UNKNOWN], nz(obj_str(f0, "check", NULL)),
                 nz(obj_str(f0, "target", NULL)), nz(obj_str(f0, "status", NULL)),
                 nz(obj_str(f0, "reason", NULL)));
    } else {
        cs[nc] = (struct cond){"Degraded", "False", "ChecksOK", ""};
        snprintf(cs[nc++].message, sizeof(cs[0].message), "every check of the last run is OK");
    }
    cs[nc] = (struct cond){"InvalidSpec", "False", "SpecValid", "the spec is valid"};
    nc++;
    cs[nc] = (struct cond){"Suspended", "False", "Active", "runs start on schedule"};
    nc++;
    st = base_status(obj);
    if (!st || json_object_set_new(st, "observedGeneration", json_integer(gen)) ||
        json_object_set_new(st, "lastRunTime", json_string(now_s)) ||
        json_object_set_new(st, "nextRunTime", json_string(next_s)) ||
        json_object_set_new(st, "summary",
                            json_pack("{s:I,s:I,s:I,s:I}", "ok", (json_int_t)rep.counts[0], "warn",
                                      (json_int_t)rep.counts[1], "crit", (json_int_t)rep.counts[2],
                                      "unknown", (json_int_t)rep.counts[3])) ||
        json_object_set(st, "failingChecks", rep.failing) ||
        json_object_set_new(st, "nodes",
                            json_pack("{s:I,s:O}", "matching", (json_int_t)rep.nodes, "failing",
                                      rep.failing_nodes)) ||
        json_object_set_new(st, "conditions", conditions_json(obj, cs, nc, gen, now_s)) ||
        (run_now && json_object_set_new(st, "runNow", json_string(run_now))) ||
        (!rep.commit_rc && json_object_set_new(st, "lastSuccessfulRunTime", json_string(now_s))) ||
        (!rep.commit_rc && rep.revision &&
         json_object_set_new(st, "lastCommit",
                             json_pack("{s:I,s:s}", "revision", (json_int_t)rep.revision, "batch",
                                       rep.batch_id)))) {
        rc = HP_ERR_NOMEM;
        goto out;
    }
    /* kept until written: a failed write is retried before anything else (not after a whole
     * interval) */
    pthread_mutex_lock(&r->mu);
    m = memo_get(r, key, false);
    if (m) {
        json_decref(m->pending);
        m->pending = json_incref(st);
    }
    pthread_mutex_unlock(&r->mu);
    rc = write_pending(r, key, obj, st, &err);
    st = NULL;
    if (rc)
        goto out;
    *requeue_ms = due - wall_ms();
    if (*requeue_ms < 0)
        *requeue_ms = 0;
out:
    *unreachable = rc == HP_ERR_UNAVAILABLE && !err.status;
    json_decref(rep.failing);
    json_decref(rep.failing_nodes);
    json_decref(live);
    json_decref(st);
    json_decref(obj);
    spec_ref_put(ref);
    hp_ctx_free(ctx);
    return rc;
}

/* ---------- threads ---------- */

static void *worker(void *arg)
{
    struct reconciler *r = arg;

    for (;;) {
        char *key = NULL;
        int64_t requeue = -1;
        bool unreachable = false;
        hp_rc rc = work_queue_get(r->queue, NULL, &key);

        if (rc)
            break;
        int64_t t0 = hp_now_ns();

        stat_add(r, &r->stats.reconciles);
        pthread_mutex_lock(&r->mu);
        cur_reconcile = r->stats.reconciles;
        pthread_mutex_unlock(&r->mu);
        rc = reconcile(r, key, &requeue, &unreachable);
        prom_histogram_observe(&r->reconcile_seconds, (double)(hp_now_ns() - t0) / 1e9);
        if (rc) {
            /* an apiserver that could not be reached served nothing: the key's own backoff, at
             * most UNREACHABLE_RETRY_MS, so keys are back soon after it is (work_queue.h) */
            int64_t d = unreachable ? work_queue_add_backoff(r->queue, key, UNREACHABLE_RETRY_MS)
                                    : work_queue_add_rate_limited(r->queue, key);

            stat_add(r, &r->stats.errors);
            rlog(r, RLOG_WARN, key, NULL, "reconcile failed (%s); retry in %lld ms", hp_rc_name(rc),
                 (long long)d);
        } else {
            work_queue_forget(r->queue, key);
            if (requeue >= 0)
                work_queue_add_after(r->queue, key, requeue);
        }
        work_queue_done(r->queue, key);
        hp_free(key);
    }
    return NULL;
}

static void on_event(void *arg, enum kube_event type, const char *key, json_t *obj)
{
    struct reconciler *r = arg;
    const char *slash = strchr(key, '/');

    (void)obj;
    if (type == KUBE_DELETED && r->cfg.on_object && slash) {
        char ns[256];

        snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
        r->cfg.on_object(r->cfg.object_arg, ns, slash + 1, NULL);
    }
    work_queue_add(r->queue, key);
}

hp_rc reconciler_start(const struct reconciler_config *cfg, struct reconciler **out,
                       struct hp_err *err)
{
    struct kube_informer_config icfg = {0};
    struct work_queue_config qcfg = {0};
    struct reconciler *r;
    char path[512];
    unsigned i;
    hp_rc rc;

    *out = NULL;
    if (!cfg->kube || !cfg->etcd || !cfg->batch)
        return hp_err_set(err, HP_ERR_INVALID, "a reconciler needs kube, etcd and batch");
    r = hp_calloc(1, sizeof(*r));
    if (!r)
        return HP_ERR_NOMEM;
    r->cfg = *cfg;
    pthread_mutex_init(&r->mu, NULL);
    prom_histogram_init(&r->reconcile_seconds, prom_buckets_seconds, 12);
    for (i = 0; i < CHECK_KIND__COUNT; i++)
        prom_histogram_init(&r->check_seconds[i], prom_buckets_seconds, 12);
    for (i = 0; i < RUN_OUTCOMES; i++)
        prom_histogram_init(&r->run_seconds[i], prom_buckets_seconds, 12);
    r->seed = (uint64_t)hp_now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
    r->namespace_ = cfg->namespace_ ? hp_strdup(cfg->namespace_) : NULL;
    r->identity = hp_strdup(cfg->identity ? cfg->identity : "hostpatrol");
    r->node_name = cfg->node_name ? hp_strdup(cfg->node_name) : NULL;
    r->host_root = hp_strdup(cfg->host_root ? cfg->host_root : "/");
    if ((cfg->node_name && !r->node_name) || !r->host_root) {
        rc = HP_ERR_NOMEM;
        goto fail;
    }
    if (!r->identity || (cfg->namespace_ && !r->namespace_)) {
        rc = HP_ERR_NOMEM;
        goto fail;
    }
    r->cfg.workers = cfg->workers ? cfg->workers : 4;
    {
        struct results_store_config scfg = {.etcd = cfg->etcd,
                                            .batch = cfg->batch,
                                            .prefix = cfg->prefix,
                                            .commit_slack_ms = COMMIT_SLACK_MS,
                                            .late = late_final,
                                            .late_arg = r};

        rc = results_store_new(&scfg, &r->store);
    }
    if (!rc)
        rc = hp_ctx_new(NULL, HP_CTX_NO_TIMEOUT, &r->ctx);
    if (!rc)
        rc = work_queue_new(&qcfg, &r->queue);
    if (!rc)
        rc = spec_cache_new(cfg->policy, SPEC_CACHE_MAX_BYTES, &r->specs);
    if (rc)
        goto fail;
    if (r->namespace_)
        snprintf(path, sizeof(path), API_PATH "/namespaces/%s/hostinspections", r->namespace_);
    else
        snprintf(path, sizeof(path), API_PATH "/hostinspections");
    icfg.client = cfg->kube;
    icfg.path = path;
    icfg.stall_ms = cfg->stall_ms;
    icfg.on_event = on_event;
    icfg.transform = transform;
    icfg.arg = r;
    /* the informer first: workers read its cache; keys wait in the queue until they start */
    rc = kube_informer_start(&icfg, &r->informer, err);
    if (rc)
        goto fail;
    r->threads = hp_calloc(r->cfg.workers, sizeof(*r->threads));
    if (!r->threads) {
        rc = HP_ERR_NOMEM;
        goto fail;
    }
    for (i = 0; i < r->cfg.workers; i++) {
        if (pthread_create(&r->threads[i], NULL, worker, r)) {
            rc = hp_err_set(err, HP_ERR_INTERNAL, "cannot start reconcile worker %u", i);
            goto fail;
        }
        r->n_threads++;
    }
    *out = r;
    return HP_OK;
fail:
    reconciler_stop(r, NULL);
    return rc;
}

bool reconciler_ready(struct reconciler *r, int64_t max_age_ms)
{
    return r && kube_informer_ready(r->informer, max_age_ms);
}

void reconciler_stop(struct reconciler *r, struct hp_ctx *drain)
{
    unsigned i;
    size_t b;

    if (!r)
        return;
    results_store_detach(r->store); /* no late outcome reaches r from now on */
    atomic_store(&r->stopping, true);
    if (!drain)
        hp_ctx_cancel(r->ctx);
    if (r->queue && work_queue_shutdown(r->queue, drain))
        hp_ctx_cancel(r->ctx); /* drain ended: runs in progress stop now */
    for (i = 0; i < r->n_threads; i++)
        pthread_join(r->threads[i], NULL);
    hp_free(r->threads);
    kube_informer_stop(r->informer); /* after the workers: they read its cache */
    work_queue_free(r->queue);
    spec_cache_free(r->specs);
    for (b = 0; b < MEMO_BUCKETS; b++) {
        while (r->memo[b]) {
            struct memo *m = r->memo[b];

            r->memo[b] = m->next;
            memo_free(m);
        }
    }
    hp_ctx_free(r->ctx);
    pthread_mutex_destroy(&r->mu);
    prom_histogram_release(&r->reconcile_seconds);
    for (i = 0; i < CHECK_KIND__COUNT; i++)
        prom_histogram_release(&r->check_seconds[i]);
    for (i = 0; i < RUN_OUTCOMES; i++)
        prom_histogram_release(&r->run_seconds[i]);
    results_store_free(r->store);
    hp_free(r->namespace_);
    hp_free(r->identity);
    hp_free(r->node_name);
    hp_free(r->host_root);
    json_decref(r->node_labels);
    hp_free(r);
}

void reconciler_stats(struct reconciler *r, struct reconciler_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->stats;
    pthread_mutex_unlock(&r->mu);
}

void reconciler_watch_stats(struct reconciler *r, struct kube_informer_stats *out)
{
    kube_informer_stats(r->informer, out);
}

void reconciler_metrics(struct reconciler *r, struct prom_writer *w)
{
    uint64_t results[CHECK_KIND__COUNT][4];
    struct spec_cache_stats sc;
    size_t k, st;

    pthread_mutex_lock(&r->mu);
    memcpy(results, r->results, sizeof(results));
    pthread_mutex_unlock(&r->mu);
    prom_writer_family(w, "hostpatrol_reconcile_duration_seconds", "histogram",
                       "Duration of one reconcile (a run included when one was due).");
    prom_writer_histogram(w, "hostpatrol_reconcile_duration_seconds", NULL, &r->reconcile_seconds);
    prom_writer_family(w, "hostpatrol_run_duration_seconds", "histogram",
                       "Duration of one run of a HostInspection, its probes to its etcd commit's "
                       "end, by the commit's outcome.");
    for (k = 0; k < RUN_OUTCOMES; k++)
        prom_writer_histogram(w, "hostpatrol_run_duration_seconds",
                              (const char *const[]){"outcome", run_outcome_names[k], NULL},
                              &r->run_seconds[k]);
    prom_writer_family(w, "hostpatrol_check_duration_seconds", "histogram",
                       "Duration of one check (probe or node-local) by kind.");
    for (k = 0; k < CHECK_KIND__COUNT; k++)
        prom_writer_histogram(
            w, "hostpatrol_check_duration_seconds",
            (const char *const[]){"kind", check_kind_name((enum check_kind)k), NULL},
            &r->check_seconds[k]);
    prom_writer_family(w, "hostpatrol_check_results_total", "counter",
                       "Check results by kind and status (the reasons are on the resource).");
    for (k = 0; k < CHECK_KIND__COUNT; k++)
        for (st = 0; st < 4; st++)
            prom_writer_sample(
                w, "hostpatrol_check_results_total",
                (const char *const[]){"kind", check_kind_name((enum check_kind)k), "status",
                                      check_status_name((enum check_status)st), NULL},
                (double)results[k][st]);
    spec_cache_stats(r->specs, &sc);
    prom_writer_family(w, "hostpatrol_spec_parses_total", "counter",
                       "HostInspection specs parsed and admitted (once per generation).");
    prom_writer_sample(w, "hostpatrol_spec_parses_total", NULL, (double)sc.parses);
    prom_writer_family(w, "hostpatrol_spec_cache_hits_total", "counter",
                       "Reconciles that reused the parsed spec of the same generation.");
    prom_writer_sample(w, "hostpatrol_spec_cache_hits_total", NULL, (double)sc.hits);
    prom_writer_family(w, "hostpatrol_spec_cache_bytes", "gauge",
                       "What the cached parsed specs hold, about (compiled patterns included).");
    prom_writer_sample(w, "hostpatrol_spec_cache_bytes", NULL, (double)sc.bytes);
    prom_writer_family(w, "hostpatrol_spec_cache_evictions_total", "counter",
                       "Parsed specs dropped to keep the cache under its byte cap.");
    prom_writer_sample(w, "hostpatrol_spec_cache_evictions_total", NULL, (double)sc.evictions);
    work_queue_metrics(r->queue, w);
}

/* ---------- exported for the fuzz target and tests (reconciler_internal.h) ---------- */

hp_rc reconciler_selector_query(const json_t *sel, char **out)
{
    struct hp_buf b;

    hp_buf_init(&b, 0);
    if (selector(sel, &b)) {
        hp_buf_release(&b);
        *out = NULL;
        return HP_ERR_NOMEM;
    }
    *out = hp_buf_detach(&b, NULL);
    return *out ? HP_OK : HP_ERR_NOMEM;
}

bool reconciler_selector_matches(const json_t *sel, const json_t *labels)
{
    return selector_matches(sel, labels);
}
