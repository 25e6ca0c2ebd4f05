/* nodes.c - node selection, node conditions, agents' results, agent mode (see nodes.h). */
#include "reconcile/nodes.h"

#include <stdio.h>
#include <string.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/buf.h"
#include "hostpatrol/reconciler.h"
#include "reconcile/decision.h"
#include "reconcile/status.h"

static const char *nz(const char *s)
{
    return s ? s : "-";
}

void nodes_release(struct nodes *n)
{
    if (!n)
        return;
    json_decref(n->labels);
    n->labels = NULL;
}

/* ---------- selection ---------- */

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

/* selector: the labelSelector of a nodeSelector, appended percent-encoded to b. HP_ERR_NOMEM
 * (b then holds a part of it) */
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
        const char *key = status_str(e, "key", NULL), *op = status_str(e, "operator", NULL);

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

hp_rc nodes_selector_query(const json_t *sel, char **out)
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

bool nodes_selector_matches(const json_t *sel, const json_t *labels)
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
        const char *have = json_string_value(json_object_get(labels, status_str(e, "key", NULL)));
        const char *op = nz(status_str(e, "operator", NULL));
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

/* ---------- node conditions ---------- */

/* list_nodes: GET the nodes spec.nodeSelector selects; *list (new reference) on HP_OK. A
 * failure is the LIST's (its detail in err), but HP_ERR_NOMEM building the path is *nomem. */
static hp_rc list_nodes(struct nodes *n, struct hp_ctx *ctx, const struct inspection_spec *spec,
                        json_t **list, bool *nomem, struct hp_err *err)
{
    const json_t *sel = spec->node_selector;
    struct hp_buf path;
    hp_rc rc = HP_OK;

    *nomem = false;
    hp_buf_init(&path, 0);
    hp_buf_addstr(&path, "/api/v1/nodes");
    if (sel && (json_object_size(json_object_get(sel, "matchLabels")) ||
                json_array_size(json_object_get(sel, "matchExpressions")))) {
        hp_buf_addstr(&path, "?labelSelector=");
        rc = selector(sel, &path);
    }
    if (rc || hp_buf_error(&path)) {
        hp_buf_release(&path);
        *nomem = true;
        return HP_ERR_NOMEM;
    }
    rc = kube_request(n->kube, ctx, "GET", hp_buf_data(&path), NULL, NULL, list, NULL, err);
    hp_buf_release(&path);
    return rc;
}

/* reserve: room for count more results in *res */
static hp_rc reserve(struct check_result **res, size_t n_res, size_t *cap, size_t count)
{
    size_t ncap = (n_res + count) * 2;
    struct check_result *nr;

    if (n_res + count <= *cap)
        return HP_OK;
    nr = hp_realloc(*res, ncap * sizeof(*nr));
    if (!nr)
        return HP_ERR_NOMEM;
    *res = nr;
    *cap = ncap;
    return HP_OK;
}

/* judge_node: cr (initialized) from node's condition of the type c asks about */
static hp_rc judge_node(const struct check_spec *c, const json_t *node, struct check_result *cr)
{
    const json_t *conds = json_object_get(json_object_get(node, "status"), "conditions"), *cd,
                 *found = NULL;
    const char *type = c->u.node_condition.type, *expect = c->u.node_condition.expect;
    const char *st, *why, *msg;
    size_t k;

    json_array_foreach(conds, k, cd)
    {
        if (status_str(cd, "type", NULL) && !strcmp(status_str(cd, "type", NULL), type))
            found = cd;
    }
    st = status_str(found, "status", NULL);
    if (!found || !st)
        return check_result_judge(cr, CHECK_UNKNOWN, "node reports no %s condition", type);
    if (json_object_set_new(cr->values, "condition_status", json_string(st)))
        return HP_ERR_NOMEM;
    if (!strcmp(st, expect))
        return check_result_judge(cr, CHECK_OK, "%s", "");
    why = status_str(found, "reason", NULL);
    msg = status_str(found, "message", NULL);
    return check_result_judge(cr, strcmp(st, "Unknown") ? CHECK_CRIT : CHECK_UNKNOWN,
                              "%s is %s, expected %s%s%s%s%s%s", type, st, expect, why ? " (" : "",
                              why ? why : "", msg ? ": " : "", msg ? msg : "", why ? ")" : "");
}

/* check_nodes: the results of one nodeCondition check c over items (the listed nodes), or one
 * UNKNOWN result when the LIST failed (failed: its error) */
static hp_rc check_nodes(const struct check_spec *c, const json_t *items,
                         const struct hp_err *failed, struct check_result **res, size_t *n_res,
                         size_t *cap)
{
    size_t count = failed ? 0 : json_array_size(items), j;
    const json_t *node;
    hp_rc rc = reserve(res, *n_res, cap, count ? count : 1); /* "no node" is itself a result */

    if (rc)
        return rc;
    if (!count) {
        struct check_result *cr = &(*res)[*n_res];

        rc = check_result_init(cr, c->name, "-", c->kind);
        if (rc)
            return rc;
        (*n_res)++;
        cr->observed_ms = schedule_wall_ms();
        return failed ? check_result_judge(cr, CHECK_UNKNOWN, "nodes not listed: %s", failed->msg)
                      : check_result_judge(cr, CHECK_UNKNOWN, "no node matches spec.nodeSelector");
    }
    json_array_foreach(items, j, node)
    {
        struct check_result *cr = &(*res)[*n_res];

        rc = check_result_init(cr, c->name, status_str(node, "metadata", "name"), c->kind);
        if (rc)
            return rc;
        (*n_res)++;
        cr->observed_ms = schedule_wall_ms();
        rc = judge_node(c, node, cr);
        if (rc)
            return rc;
    }
    return HP_OK;
}

hp_rc nodes_conditions(struct nodes *n, struct hp_ctx *ctx, const struct inspection_spec *spec,
                       struct check_result **res, size_t *n_res, size_t *cap, bool *listed,
                       json_t **nodes)
{
    struct hp_err err = {0};
    json_t *list = NULL;
    size_t i;
    bool any = false, nomem;
    hp_rc rc = HP_OK, lrc;

    *listed = true;
    *nodes = NULL;
    for (i = 0; i < spec->n_checks; i++)
        any |= spec->checks[i].kind == CHECK_NODE_CONDITION ||
               check_kind_is_node_local(spec->checks[i].kind);
    if (!any)
        return HP_OK;
    lrc = list_nodes(n, ctx, spec, &list, &nomem, &err);
    if (nomem)
        return HP_ERR_NOMEM;
    *listed = lrc == HP_OK;
    for (i = 0; !rc && i < spec->n_checks; i++)
        if (spec->checks[i].kind == CHECK_NODE_CONDITION)
            rc = check_nodes(&spec->checks[i], json_object_get(list, "items"), lrc ? &err : NULL,
                             res, n_res, cap);
    if (!lrc)
        *nodes = json_incref(json_object_get(list, "items"));
    json_decref(list);
    return rc;
}

/* ---------- the agents' results, as the controller sees them ---------- */

/* stored_status: the status of node nn's stored result of check c, with why */
static enum check_status stored_status(const struct check_spec *c, const char *nn,
                                       const struct inspection_spec *spec,
                                       const struct etcd_range_resp *stored, size_t plen,
                                       int64_t now_ms, char *why, size_t why_size)
{
    int64_t stale_ms = 2 * spec->interval_ms + spec->timeout_ms;
    enum check_status st = CHECK_UNKNOWN;
    size_t cl = strlen(c->name), k;
    json_t *v = NULL;

    for (k = 0; !v && stored && k < stored->n; k++) {
        const char *rest = stored->kvs[k].key + plen;

        if (!strncmp(rest, c->name, cl) && rest[cl] == '/' && !strcmp(rest + cl + 1, nn))
            v = json_loadb(stored->kvs[k].value, stored->kvs[k].value_len, 0, NULL);
    }
    if (!v) {
        snprintf(why, why_size, "no result from the agent on %s yet", nn);
    } else if (now_ms - json_integer_value(json_object_get(v, "observed_ms")) > stale_ms) {
        char t[32];

        schedule_rfc3339(json_integer_value(json_object_get(v, "observed_ms")), t);
        snprintf(why, why_size, "the agent on %s last reported at %s", nn, t);
    } else if (check_status_parse(json_string_value(json_object_get(v, "status")), &st)) {
        st = CHECK_UNKNOWN;
        snprintf(why, why_size, "unreadable result from the agent on %s", nn);
    } else {
        snprintf(why, why_size, "%s", nz(json_string_value(json_object_get(v, "reason"))));
    }
    json_decref(v);
    check_result_trim_utf8(why);
    return st;
}

void nodes_local_summary(const struct inspection_spec *spec, const json_t *nodes,
                         const struct etcd_range_resp *stored, size_t plen, int64_t now_ms,
                         struct run_report *rep)
{
    const json_t *node;
    size_t i, j;

    json_array_foreach(nodes, i, node)
    {
        const char *nn = status_str(node, "metadata", "name");
        bool node_bad = false, any = false;

        for (j = 0; nn && j < spec->n_checks; j++) {
            const struct check_spec *c = &spec->checks[j];
            enum check_status st;
            char why[600];

            if (!check_kind_is_node_local(c->kind))
                continue;
            any = true;
            st = stored_status(c, nn, spec, stored, plen, now_ms, why, sizeof(why));
            run_report_add(rep, nn, c->name, st, why);
            node_bad |= st != CHECK_OK;
        }
        if (any)
            rep->nodes++;
        if (node_bad && json_array_size(rep->failing_nodes) < RECONCILER_MAX_FAILING)
            json_array_append_new(rep->failing_nodes, json_string(nn));
    }
}

/* ---------- agent mode ---------- */

/* node_labels: this node's labels (new reference), read from the API at most every 10 s; the
 * last ones read are used while the API cannot be reached */
static hp_rc node_labels(struct nodes *n, json_t **out, struct hp_err *err)
{
    struct hp_ctx *ctx = NULL;
    json_t *node = NULL;
    char path[512];
    hp_rc rc;

    pthread_mutex_lock(n->mu);
    *out =
        n->labels && hp_now_ns() - n->labels_ns < 10LL * 1000000000 ? json_incref(n->labels) : NULL;
    pthread_mutex_unlock(n->mu);
    if (*out)
        return HP_OK;
    snprintf(path, sizeof(path), "/api/v1/nodes/%s", n->node_name);
    rc = hp_ctx_new(n->ctx, META_TIMEOUT, &ctx);
    if (!rc)
        rc = kube_request(n->kube, ctx, "GET", path, NULL, NULL, &node, NULL, err);
    hp_ctx_free(ctx);
    pthread_mutex_lock(n->mu);
    if (!rc) {
        json_t *l = json_object_get(json_object_get(node, "metadata"), "labels");

        json_decref(n->labels);
        n->labels = l ? json_incref(l) : json_object();
        n->labels_ns = hp_now_ns();
    }
    *out = json_incref(n->labels); /* the last known, if this read failed */
    pthread_mutex_unlock(n->mu);
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

hp_rc nodes_agent_step(struct nodes *n, struct spec_cache *specs, struct schedule *sched,
                       const char *key, const json_t *obj, int64_t now_ms,
                       enum nodes_agent_step *step, struct spec_ref **ref, int64_t *due_ms,
                       struct hp_err *err)
{
    const json_t *raw = json_object_get(obj, "spec");
    bool suspended = json_is_true(json_object_get(raw, "suspend")), matches, ran_before;
    struct decision_in in = {.now_ms = now_ms, .generation = status_generation(obj), .agent = true};
    struct decision d;
    json_t *labels = NULL;
    hp_rc rc;

    *step = NODES_AGENT_SKIP;
    *ref = NULL;
    if (json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp"))
        return HP_OK; /* the controller's finalizer deletes every result */
    rc = node_labels(n, &labels, err);
    if (rc)
        return rc;
    matches = !suspended && nodes_selector_matches(json_object_get(raw, "nodeSelector"), labels) &&
              raw_node_local(raw);
    json_decref(labels);
    if (matches) {
        rc = spec_cache_get(specs, key, obj, ref);
        if (rc)
            return rc;
        if (!spec_ref_spec(*ref))
            return HP_OK; /* refused: the controller reports InvalidSpec; a fixed spec comes as
                           * an event */
        in.interval_ms = spec_ref_spec(*ref)->interval_ms;
    }
    in.run_now = status_run_now_annotation(obj);
    pthread_mutex_lock(n->mu);
    in.memo = schedule_memo_get(sched, key, false);
    ran_before = in.memo && in.memo->last_run_ms;
    decision_due(&in, &d);
    pthread_mutex_unlock(n->mu);
    if (!matches) {
        /* suspended: results already written stay */
        *step = ran_before && !suspended ? NODES_AGENT_WITHDRAW : NODES_AGENT_SKIP;
        return HP_OK;
    }
    *due_ms = d.due_ms;
    *step = d.why == DECISION_NOT_DUE ? NODES_AGENT_WAIT : NODES_AGENT_RUN;
    return HP_OK;
}
