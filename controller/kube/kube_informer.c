/* kube_informer.c - LIST + WATCH cache (see include/hostpatrol/kube_informer.h). */
#include "hostpatrol/kube_informer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hostpatrol/alloc.h"

struct kube_informer {
    struct kube_informer_config cfg;
    char *path;
    struct hp_ctx *ctx; /* cancelled by stop */
    pthread_t thread;
    bool started;

    pthread_mutex_t lock; /* guards cache, rv, st */
    json_t *cache;        /* key -> JSON string: the object, stripped, as compact JSON text */
    char rv[64];
    struct kube_informer_stats st;
};

const char *kube_event_name(enum kube_event e)
{
    return e == KUBE_ADDED ? "ADDED" : e == KUBE_MODIFIED ? "MODIFIED" : "DELETED";
}

static const char *meta(const json_t *obj, const char *k)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), k));
}

static void key_of(const json_t *obj, char *buf, size_t n)
{
    const char *ns = meta(obj, "namespace"), *name = meta(obj, "name");

    if (ns && *ns)
        snprintf(buf, n, "%s/%s", ns, name ? name : "");
    else
        snprintf(buf, n, "%s", name ? name : "");
}

/* strip: drop what a controller never reads and what dominates an object's size: the
 * server-side-apply bookkeeping (metadata.managedFields) and kubectl's copy of the last applied
 * object (client-go users do the same with a transform function). */
static void strip(json_t *obj)
{
    json_t *md = json_object_get(obj, "metadata");

    json_object_del(md, "managedFields");
    json_object_del(json_object_get(md, "annotations"),
                    "kubectl.kubernetes.io/last-applied-configuration");
}

/* packed: the cache's form of obj (stripped in place): a JSON string holding its compact text.
 * New reference, NULL on NOMEM. Text, not a tree: a tree costs several times its text. */
static json_t *packed(const struct kube_informer *inf, json_t *obj)
{
    char *text;
    json_t *s;

    strip(obj);
    if (inf->cfg.transform)
        inf->cfg.transform(inf->cfg.arg, obj);
    text = json_dumps(obj, JSON_COMPACT);
    if (!text)
        return NULL;
    s = json_stringn_nocheck(text, strlen(text));
    hp_free(text);
    return s;
}

static void seen(struct kube_informer *inf)
{
    inf->st.last_seen_ns = hp_now_ns();
}

/* notify: the handler gets the object parsed from its cached text (borrowed for the call) */
static void notify(struct kube_informer *inf, enum kube_event kind, const char *key, json_t *text)
{
    json_t *obj = json_loadb(json_string_value(text), json_string_length(text), 0, NULL);

    inf->cfg.on_event(inf->cfg.arg, kind, key, obj ? obj : text);
    json_decref(obj);
}

/* list: all pages into a new cache; report the difference with the old one. */
static hp_rc list(struct kube_informer *inf, struct hp_err *err)
{
    json_t *fresh = json_object(), *old, *item, *v;
    char path[4096], cont[2048] = "", rv[64] = "", key[512];
    const char *k;
    hp_rc rc = HP_OK;
    size_t i;

    if (!fresh)
        return HP_ERR_NOMEM;
    do {
        json_t *page = NULL;
        const char *c;

        snprintf(path, sizeof(path), "%s?limit=%lld%s%s", inf->path,
                 (long long)(inf->cfg.page_size ? inf->cfg.page_size : 500),
                 cont[0] ? "&continue=" : "", cont);
        rc = kube_request(inf->cfg.client, inf->ctx, "GET", path, NULL, NULL, &page, NULL, err);
        if (rc)
            break;
        json_array_foreach(json_object_get(page, "items"), i, item)
        {
            key_of(item, key, sizeof(key));
            if (json_object_set_new(fresh, key, packed(inf, item))) {
                rc = HP_ERR_NOMEM;
                break;
            }
        }
        snprintf(
            rv, sizeof(rv), "%s",
            json_string_value(json_object_get(json_object_get(page, "metadata"), "resourceVersion"))
                ?: "");
        c = json_string_value(json_object_get(json_object_get(page, "metadata"), "continue"));
        snprintf(cont, sizeof(cont), "%s", c ? c : "");
        json_decref(page);
    } while (!rc && cont[0]);
    if (rc) {
        json_decref(fresh);
        return rc;
    }
    pthread_mutex_lock(&inf->lock);
    old = inf->cache;
    inf->cache = fresh;
    snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
    inf->st.lists++;
    inf->st.synced = true;
    seen(inf);
    json_incref(fresh);
    pthread_mutex_unlock(&inf->lock);
    /* tell the handler what changed (outside the lock); an object changed iff its text did */
    json_object_foreach(fresh, k, v)
    {
        json_t *was = json_object_get(old, k);

        if (!was)
            notify(inf, KUBE_ADDED, k, v);
        else if (!json_equal(was, v))
            notify(inf, KUBE_MODIFIED, k, v);
    }
    json_object_foreach(old, k, v)
    {
        if (!json_object_get(fresh, k))
            notify(inf, KUBE_DELETED, k, v);
    }
    json_decref(fresh);
    json_decref(old);
    return HP_OK;
}

struct watch_state {
    struct kube_informer *inf;
    bool gone;
};

static bool on_watch_event(void *arg, json_t *ev)
{
    struct watch_state *w = arg;
    struct kube_informer *inf = w->inf;
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    enum kube_event kind;
    const char *rv = meta(obj, "resourceVersion");
    char key[512];

    if (!type || !json_is_object(obj))
        return true; /* not an event: ignore */
    if (!strcmp(type, "ERROR")) {
        /* a Status: 410 means our resourceVersion is too old */
        if (json_integer_value(json_object_get(obj, "code")) == 410)
            w->gone = true;
        return false;
    }
    pthread_mutex_lock(&inf->lock);
    seen(inf);
    if (rv)
        snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
    if (!strcmp(type, "BOOKMARK")) {
        inf->st.bookmarks++;
        pthread_mutex_unlock(&inf->lock);
        return true;
    }
    key_of(obj, key, sizeof(key));
    if (!strcmp(type, "ADDED"))
        kind = KUBE_ADDED;
    else if (!strcmp(type, "MODIFIED"))
        kind = KUBE_MODIFIED;
    else if (!strcmp(type, "DELETED"))
        kind = KUBE_DELETED;
    else {
        pthread_mutex_unlock(&inf->lock);
        return true;
    }
    if (kind == KUBE_DELETED)
        json_object_del(inf->cache, key);
    else if (json_object_set_new(inf->cache, key, packed(inf, obj)))
        json_object_del(inf->cache, key); /* out of memory: drop it, a relist brings it back */
    inf->st.events++;
    pthread_mutex_unlock(&inf->lock);
    inf->cfg.on_event(inf->cfg.arg, kind, key, obj);
    return true;
}

static void *informer_main(void *arg)
{
    struct kube_informer *inf = arg;
    int64_t backoff = 800;
    bool need_list = true;

    while (!hp_ctx_err(inf->ctx)) {
        struct watch_state w = {.inf = inf};
        struct kube_status st;
        struct hp_err err = {0};
        char path[4200], rv[64];
        int64_t timeout_s = inf->cfg.watch_timeout_s;
        hp_rc rc;

        if (need_list) {
            rc = list(inf, &err);
            if (rc) {
                pthread_mutex_lock(&inf->lock);
                inf->st.errors++;
                pthread_mutex_unlock(&inf->lock);
                (void)hp_ctx_sleep(inf->ctx, backoff);
                backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
                continue;
            }
            need_list = false;
        }
        if (!timeout_s) {
            unsigned r = 0;

            if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
                r = (unsigned)hp_now_ns();
            timeout_s = 300 + r % 301;
        }
        pthread_mutex_lock(&inf->lock);
        snprintf(rv, sizeof(rv), "%s", inf->rv);
        inf->st.watches++;
        pthread_mutex_unlock(&inf->lock);
        snprintf(path, sizeof(path),
                 "%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%lld",
                 inf->path, rv, (long long)timeout_s);
        rc = kube_stream(inf->cfg.client, inf->ctx, path,
                         inf->cfg.stall_ms ? inf->cfg.stall_ms : 90000, on_watch_event, &w, &st,
                         &err);
        if (hp_ctx_err(inf->ctx))
            break;
        pthread_mutex_lock(&inf->lock);
        if (w.gone || rc == HP_ERR_GONE) {
            inf->st.gone++;
            need_list = true;
        } else if (rc == HP_ERR_TIMEOUT) {
            inf->st.stalls++; /* silent too long: cut, watch again from rv */
        } else if (rc) {
            inf->st.errors++;
        }
        pthread_mutex_unlock(&inf->lock);
        if (rc && rc != HP_ERR_TIMEOUT && !w.gone && rc != HP_ERR_GONE) {
            (void)hp_ctx_sleep(inf->ctx, backoff);
            backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
            /* as client-go: the server unreachable or throttling us -> watch again from rv
             * (a 410 then says when a LIST is needed); anything else -> a fresh LIST */
            need_list = rc != HP_ERR_UNAVAILABLE && rc != HP_ERR_FULL;
        } else {
            backoff = 800;
        }
    }
    return NULL;
}

hp_rc kube_informer_start(const struct kube_informer_config *cfg, struct kube_informer **out,
                          struct hp_err *err)
{
    struct kube_informer *inf;
    hp_rc rc;

    *out = NULL;
    if (!cfg->client || !cfg->path || cfg->path[0] != '/' || !cfg->on_event)
        return hp_err_field(err, HP_ERR_INVALID, "path",
                            "an informer needs a client, an absolute path and a handler");
    inf = hp_calloc(1, sizeof(*inf));
    if (!inf)
        return HP_ERR_NOMEM;
    pthread_mutex_init(&inf->lock, NULL);
    inf->cfg = *cfg;
    inf->path = hp_strdup(cfg->path);
    inf->cache = json_object();
    rc = inf->path && inf->cache ? hp_ctx_new(NULL, HP_CTX_NO_TIMEOUT, &inf->ctx) : HP_ERR_NOMEM;
    if (!rc && pthread_create(&inf->thread, NULL, informer_main, inf))
        rc = hp_err_set(err, HP_ERR_NOMEM, "cannot start the informer thread");
    if (rc) {
        kube_informer_stop(inf);
        return rc;
    }
    inf->started = true;
    *out = inf;
    return HP_OK;
}

void kube_informer_stop(struct kube_informer *inf)
{
    if (!inf)
        return;
    hp_ctx_cancel(inf->ctx);
    if (inf->started)
        pthread_join(inf->thread, NULL);
    hp_ctx_free(inf->ctx);
    json_decref(inf->cache);
    hp_free(inf->path);
    pthread_mutex_destroy(&inf->lock);
    hp_free(inf);
}

json_t *kube_informer_get(struct kube_informer *inf, const char *key)
{
    json_t *v;

    json_t *text;

    pthread_mutex_lock(&inf->lock);
    text = json_incref(json_object_get(inf->cache, key));
    pthread_mutex_unlock(&inf->lock);
    if (!text)
        return NULL;
    v = json_loadb(json_string_value(text), json_string_length(text), 0, NULL);
    json_decref(text);
    return v;
}

size_t kube_informer_size(struct kube_informer *inf)
{
    size_t n;

    pthread_mutex_lock(&inf->lock);
    n = json_object_size(inf->cache);
    pthread_mutex_unlock(&inf->lock);
    return n;
}

bool kube_informer_ready(struct kube_informer *inf, int64_t max_age_ms)
{
    bool ok;

    pthread_mutex_lock(&inf->lock);
    ok = inf->st.synced && hp_now_ns() - inf->st.last_seen_ns <= max_age_ms * 1000000;
    pthread_mutex_unlock(&inf->lock);
    return ok;
}

void kube_informer_stats(struct kube_informer *inf, struct kube_informer_stats *out)
{
    pthread_mutex_lock(&inf->lock);
    *out = inf->st;
    snprintf(out->resource_version, sizeof(out->resource_version), "%s", inf->rv);
    pthread_mutex_unlock(&inf->lock);
}
