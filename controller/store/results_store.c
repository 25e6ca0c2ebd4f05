/* results_store.c - check results in etcd: key schema, reads, stale deletes, one run's commit
 * (see include/hostpatrol/results_store.h). */
#include "hostpatrol/results_store.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/buf.h"

#define RESULTS_SEG "results/"

/* ---------- the key schema ---------- */

hp_rc results_store_key(const char *prefix, const char *ns, const char *name, const char *check,
                        const char *target, char **out)
{
    size_t n = strlen(prefix) + strlen(ns) + strlen(name) + strlen(check) + strlen(target) + 16;

    *out = hp_malloc(n);
    if (!*out)
        return HP_ERR_NOMEM;
    snprintf(*out, n, "%s" RESULTS_SEG "%s/%s/%s/%s", prefix, ns, name, check, target);
    return HP_OK;
}

hp_rc results_store_scope(const char *prefix, const char *ns, const char *name, char **out,
                          size_t *base_len)
{
    size_t cap = strlen(prefix) + sizeof(RESULTS_SEG) + (ns ? strlen(ns) + 1 : 0) +
                 (ns && name ? strlen(name) + 1 : 0),
           base;

    *out = hp_malloc(cap);
    if (!*out)
        return HP_ERR_NOMEM;
    base = (size_t)snprintf(*out, cap, "%s" RESULTS_SEG, prefix);
    if (ns && name)
        snprintf(*out + base, cap - base, "%s/%s/", ns, name);
    else if (ns)
        snprintf(*out + base, cap - base, "%s/", ns);
    if (base_len)
        *base_len = base;
    return HP_OK;
}

hp_rc results_store_key_parse(const char *prefix, const char *key, size_t key_len,
                              struct results_store_key *out, struct hp_err *err)
{
    static const char *const names[4] = {"namespace", "name", "check", "target"};
    const char *parts[4] = {"?", "?", "?", "?"}, *missing = NULL;
    size_t plen = strlen(prefix), base = plen + sizeof(RESULTS_SEG) - 1, i;
    bool ours = key_len >= base && !memcmp(key, prefix, plen) &&
                !memcmp(key + plen, RESULTS_SEG, base - plen);
    char *p, *slash;

    memset(out, 0, sizeof(*out));
    out->buf = hp_strndup(ours ? key + base : "", ours ? key_len - base : 0);
    if (!out->buf)
        return HP_ERR_NOMEM;
    p = out->buf;
    for (i = 0; i < 4 && p; i++) {
        slash = i < 3 ? strchr(p, '/') : NULL;
        if (slash)
            *slash = '\0';
        parts[i] = p;
        if (!*p && !missing)
            missing = names[i];
        p = slash ? slash + 1 : NULL;
    }
    if (i < 4 && !missing)
        missing = names[i];
    out->ns = parts[0];
    out->name = parts[1];
    out->check = parts[2];
    out->target = parts[3];
    if (!ours)
        return hp_err_field(err, HP_ERR_INVALID, "prefix",
                            "key '%.*s' is not under the prefix %s" RESULTS_SEG,
                            (int)(key_len > 200 ? 200 : key_len), key, prefix);
    if (missing)
        return hp_err_field(err, HP_ERR_INVALID, missing,
                            "key '%.*s' has no %s (<prefix>" RESULTS_SEG
                            "<namespace>/<name>/<check>/<target>)",
                            (int)(key_len > 200 ? 200 : key_len), key, missing);
    return HP_OK;
}

void results_store_key_release(struct results_store_key *k)
{
    if (!k)
        return;
    hp_free(k->buf);
    memset(k, 0, sizeof(*k));
}

/* ---------- stored results and stale ones ---------- */

void results_store_stored_release(struct results_store_stored *s)
{
    if (!s)
        return;
    etcd_range_resp_release(&s->resp);
    s->plen = 0;
}

/* Names hold no '/' (the parser checks), so "<check>/" splits a key unambiguously. */
hp_rc results_store_stale_find(const struct results_store_stored *stored,
                               const struct results_store_produced *p,
                               hp_rc (*stale)(void *arg, size_t i), void *arg)
{
    const struct inspection_spec *spec = p->spec;
    size_t i, j;
    hp_rc rc = HP_OK;

    for (i = 0; !rc && i < stored->resp.n; i++) {
        const char *rest = stored->resp.kvs[i].key + stored->plen, *slash = strchr(rest, '/');
        const struct check_spec *c = NULL;
        bool keep = false;
        size_t clen;

        if (!slash)
            continue;
        if (p->node_name && strcmp(slash + 1, p->node_name))
            continue; /* an agent tends only its own node's results */
        clen = (size_t)(slash - rest);
        for (j = 0; j < spec->n_checks; j++)
            if (strlen(spec->checks[j].name) == clen && !strncmp(spec->checks[j].name, rest, clen))
                c = &spec->checks[j];
        if (c && !p->node_name &&
            (check_kind_is_node_local(c->kind) ||
             (c->kind == CHECK_NODE_CONDITION && !p->nodes_listed)))
            keep = true; /* the agents'; or nodes unknown this run: keep what is stored */
        for (j = 0; c && !keep && j < p->n_res; j++)
            keep = !strcmp(p->res[j].check, c->name) && !strcmp(p->res[j].target, slash + 1);
        if (!keep)
            rc = stale(arg, i);
    }
    return rc;
}

/* ---------- the store ---------- */

/* How a late outcome, on a batch-queue thread, reaches the store's user: the store holds one
 * reference and each waiting commit one; results_store_detach clears fn, so an outcome that
 * comes after the user is gone is dropped. mu guards fn, arg and refs; fn is called under it. */
struct late_hook {
    pthread_mutex_t mu;
    results_store_late_fn fn;
    void *arg;
    unsigned refs;
};

struct results_store {
    struct etcd_client *etcd;  /* borrowed */
    struct batch_queue *batch; /* borrowed */
    char *prefix;              /* owned */
    int64_t commit_slack_ms;
    struct late_hook *hook; /* one reference */
};

static void hook_unref(struct late_hook *h)
{
    bool last;

    pthread_mutex_lock(&h->mu);
    last = --h->refs == 0;
    pthread_mutex_unlock(&h->mu);
    if (last) {
        pthread_mutex_destroy(&h->mu);
        hp_free(h);
    }
}

hp_rc results_store_new(const struct results_store_config *cfg, struct results_store **out)
{
    struct results_store *s = hp_calloc(1, sizeof(*s));

    *out = NULL;
    if (!s)
        return HP_ERR_NOMEM;
    s->etcd = cfg->etcd;
    s->batch = cfg->batch;
    s->commit_slack_ms = cfg->commit_slack_ms;
    s->prefix = hp_strdup(cfg->prefix ? cfg->prefix : RESULTS_STORE_DEFAULT_PREFIX);
    s->hook = hp_calloc(1, sizeof(*s->hook));
    if (!s->prefix || !s->hook) {
        hp_free(s->prefix);
        hp_free(s->hook);
        hp_free(s);
        return HP_ERR_NOMEM;
    }
    pthread_mutex_init(&s->hook->mu, NULL);
    s->hook->fn = cfg->late;
    s->hook->arg = cfg->late_arg;
    s->hook->refs = 1;
    *out = s;
    return HP_OK;
}

void results_store_detach(struct results_store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->hook->mu);
    s->hook->fn = NULL;
    pthread_mutex_unlock(&s->hook->mu);
}

void results_store_free(struct results_store *s)
{
    if (!s)
        return;
    results_store_detach(s);
    hook_unref(s->hook);
    hp_free(s->prefix);
    hp_free(s);
}

const char *results_store_prefix(const struct results_store *s)
{
    return s->prefix;
}

hp_rc results_store_list(struct results_store *s, struct hp_ctx *ctx, const char *ns,
                         const char *name, int64_t min_mod_revision,
                         struct results_store_stored *out, struct hp_err *err)
{
    struct etcd_range_req req = {0};
    char *pfx = NULL;
    hp_rc rc;

    memset(out, 0, sizeof(*out));
    rc = results_store_scope(s->prefix, ns, name, &pfx, NULL);
    if (rc)
        return rc;
    req.key = pfx;
    req.key_len = strlen(pfx);
    req.prefix = true;
    req.min_mod_revision = min_mod_revision;
    rc = etcd_range(s->etcd, ctx, &req, &out->resp, err);
    if (!rc)
        out->plen = req.key_len;
    hp_free(pfx);
    return rc;
}

hp_rc results_store_read(struct results_store *s, struct hp_ctx *ctx, const char *ns,
                         const char *name, struct results_store_stored *out, struct hp_err *err)
{
    return results_store_list(s, ctx, ns, name, 0, out, err);
}

hp_rc results_store_delete_all(struct results_store *s, struct hp_ctx *ctx, const char *ns,
                               const char *name, int64_t *deleted, struct hp_err *err)
{
    char *pfx = NULL;
    hp_rc rc = results_store_scope(s->prefix, ns, name, &pfx, NULL); /* ".../<name>/" */

    if (rc)
        return rc;
    rc = etcd_delete(s->etcd, ctx, pfx, strlen(pfx), true, deleted, NULL, err);
    hp_free(pfx);
    return rc;
}

/* ---------- one run ---------- */

struct results_store_run {
    struct results_store *s; /* borrowed */
    char *ns, *name;         /* owned */
    struct batch_group *g;
    bool keep_text;
    struct hp_buf docs; /* keep_text: the serialized documents, comma-separated */
};

hp_rc results_store_run_new(struct results_store *s, const char *ns, const char *name,
                            bool keep_text, struct results_store_run **out)
{
    struct results_store_run *run = hp_calloc(1, sizeof(*run));
    hp_rc rc;

    *out = NULL;
    if (!run)
        return HP_ERR_NOMEM;
    run->s = s;
    run->keep_text = keep_text;
    hp_buf_init(&run->docs, 0);
    run->ns = hp_strdup(ns);
    run->name = hp_strdup(name);
    rc = !s->batch              ? HP_ERR_INVALID
         : run->ns && run->name ? batch_group_new(s->batch, &run->g)
                                : HP_ERR_NOMEM;
    if (rc) {
        results_store_run_free(run);
        return rc;
    }
    *out = run;
    return HP_OK;
}

hp_rc results_store_run_put(struct results_store_run *run, const struct check_result *r,
                            const char *source, const char *run_id)
{
    json_t *doc = check_result_to_json(r, source, run_id);
    char *v = doc ? json_dumps(doc, JSON_COMPACT | CHECK_RESULT_JSON_REALS) : NULL, *k = NULL;
    hp_rc rc;

    json_decref(doc);
    if (!v)
        return HP_ERR_NOMEM;
    if (run->keep_text) {
        if (hp_buf_len(&run->docs))
            hp_buf_addch(&run->docs, ',');
        hp_buf_addstr(&run->docs, v);
        if (hp_buf_error(&run->docs)) {
            hp_free(v);
            return HP_ERR_NOMEM;
        }
    }
    rc = results_store_key(run->s->prefix, run->ns, run->name, r->check, r->target, &k);
    if (rc) {
        hp_free(v);
        return rc;
    }
    return batch_group_add(run->g, k, v); /* both taken */
}

struct stale_add {
    struct results_store_run *run;
    const struct results_store_stored *stored;
};

static hp_rc stale_add(void *arg, size_t i)
{
    struct stale_add *a = arg;
    char *k = hp_strdup(a->stored->resp.kvs[i].key);

    return k ? batch_group_add(a->run->g, k, NULL) : HP_ERR_NOMEM;
}

hp_rc results_store_run_stale(struct results_store_run *run,
                              const struct results_store_stored *stored,
                              const struct results_store_produced *p)
{
    struct stale_add a = {run, stored};

    return results_store_stale_find(stored, p, stale_add, &a);
}

size_t results_store_run_len(const struct results_store_run *run)
{
    return batch_group_len(run->g);
}

/* What late_final needs: owned copies */
struct late_wait {
    struct late_hook *hook; /* one reference */
    char key[320], run_id[64];
};

/* late_final: the outcome of a commit reported unresolved, from a queue thread */
static void late_final(void *arg, const struct batch_group_outcome *o)
{
    struct late_wait *lw = arg;

    pthread_mutex_lock(&lw->hook->mu);
    if (lw->hook->fn)
        lw->hook->fn(lw->hook->arg, lw->key, lw->run_id, o);
    pthread_mutex_unlock(&lw->hook->mu);
    hook_unref(lw->hook);
    hp_free(lw);
}

/* wait_late: have the late outcome of run's commit reach the hook (nothing when out of memory) */
static void wait_late(struct results_store_run *run, const char *key, const char *run_id)
{
    struct late_hook *h = run->s->hook;
    struct late_wait *lw = hp_calloc(1, sizeof(*lw));

    if (!lw)
        return;
    lw->hook = h;
    pthread_mutex_lock(&h->mu);
    h->refs++;
    pthread_mutex_unlock(&h->mu);
    snprintf(lw->key, sizeof(lw->key), "%s", key);
    snprintf(lw->run_id, sizeof(lw->run_id), "%s", run_id);
    batch_group_on_final(run->g, late_final, lw);
}

hp_rc results_store_run_commit(struct results_store_run *run, struct hp_ctx *ctx, const char *key,
                               const char *run_id, struct results_store_commit *out)
{
    struct batch_group_outcome o;
    struct hp_err err = {0};
    hp_rc rc = batch_group_commit(run->g, ctx, run_id, run->s->commit_slack_ms, &o, &err);

    memset(out, 0, sizeof(*out));
    if (rc) {
        snprintf(out->why, sizeof(out->why), "results not queued for etcd: %s", err.msg);
        return rc;
    }
    snprintf(out->batch, sizeof(out->batch), "%s", o.batch);
    switch (o.outcome) {
    case BATCH_COMMITTED:
        out->revision = o.revision;
        return HP_OK;
    case BATCH_UNRESOLVED:
        snprintf(out->why, sizeof(out->why), "etcd commit of batch %s %s",
                 o.batch[0] ? o.batch : "(not sent yet)", o.reason);
        wait_late(run, key, run_id);
        return HP_ERR_UNKNOWN_OUTCOME;
    default:
        snprintf(out->why, sizeof(out->why), "etcd commit %s: %s", batch_outcome_name(o.outcome),
                 o.reason);
        if (o.committed || o.unfinished) /* records are atomic, a run of several is not: say
                                          * what landed and what was still under way */
            snprintf(out->why + strlen(out->why), sizeof(out->why) - strlen(out->why),
                     " (%zu of the run's %zu records committed in other txns, %zu not final when "
                     "the run stopped waiting)",
                     o.committed, o.records, o.unfinished);
        return o.outcome == BATCH_ROLLED_BACK ? HP_ERR_TIMEOUT : HP_ERR_UNAVAILABLE;
    }
}

/* add_json_str: s as a JSON string (jansson's escaping, as a json_dumps of the whole would) */
static hp_rc add_json_str(struct hp_buf *b, const char *s)
{
    json_t *j = json_string(s);
    char *t = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    hp_rc rc = t ? hp_buf_addstr(b, t) : HP_ERR_NOMEM;

    json_decref(j);
    hp_free(t);
    return rc;
}

hp_rc results_store_run_text(const struct results_store_run *run, const char *run_id,
                             int64_t revision, char **out)
{
    struct hp_buf b;
    hp_rc rc;

    *out = NULL;
    if (!run->keep_text)
        return HP_ERR_INVALID;
    if (hp_buf_error(&run->docs))
        return HP_ERR_NOMEM;
    hp_buf_init(&b, 0);
    hp_buf_addstr(&b, "{\"namespace\":");
    rc = add_json_str(&b, run->ns);
    hp_buf_addstr(&b, ",\"name\":");
    if (!rc)
        rc = add_json_str(&b, run->name);
    hp_buf_addstr(&b, ",\"run\":");
    if (!rc)
        rc = add_json_str(&b, run_id);
    hp_buf_addf(&b, ",\"revision\":%lld,\"results\":[", (long long)revision);
    hp_buf_add(&b, hp_buf_data(&run->docs), hp_buf_len(&run->docs));
    hp_buf_addstr(&b, "]}");
    if (rc) {
        hp_buf_release(&b);
        return rc;
    }
    *out = hp_buf_detach(&b, NULL);
    return *out ? HP_OK : HP_ERR_NOMEM;
}

void results_store_run_free(struct results_store_run *run)
{
    if (!run)
        return;
    batch_group_free(run->g);
    hp_buf_release(&run->docs);
    hp_free(run->ns);
    hp_free(run->name);
    hp_free(run);
}
