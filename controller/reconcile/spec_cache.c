/* spec_cache.c - specs parsed and admitted once per generation (see
 * include/hostpatrol/spec_cache.h). */
#include "hostpatrol/spec_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "hostpatrol/alloc.h"

#define BUCKETS      1024
#define CHECK_BYTES  1024 /* what a parsed check costs besides its patterns, about */
#define TARGET_BYTES 256

struct spec_ref {
    atomic_uint refs;
    size_t bytes; /* what it holds, about: its compiled patterns and parsed fields */
    struct inspection_spec spec;
    hp_rc rc; /* HP_OK, HP_ERR_INVALID or HP_ERR_AUTH */
    struct hp_err err;
};

struct entry {
    struct entry *next;          /* bucket chain */
    struct entry *newer, *older; /* use order (most recent first) */
    char *key, *uid;
    int64_t generation;
    struct spec_ref *ref; /* one reference held by the entry */
};

struct spec_cache {
    const struct inspect_policy *policy;
    pthread_mutex_t mu; /* guards buckets, entries and the stats */
    struct entry *buckets[BUCKETS];
    struct entry *newest, *oldest;
    size_t entries, bytes, max_bytes;
    uint64_t parses, hits, evictions;
};

static size_t hash(const char *s)
{
    size_t h = 5381;

    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h % BUCKETS;
}

static void ref_put(struct spec_ref *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    inspection_spec_release(&r->spec);
    hp_free(r);
}

static void entry_free(struct entry *e)
{
    if (!e)
        return;
    ref_put(e->ref);
    hp_free(e->key);
    hp_free(e->uid);
    hp_free(e);
}

hp_rc spec_cache_new(const struct inspect_policy *policy, size_t max_bytes, struct spec_cache **out)
{
    struct spec_cache *c = hp_calloc(1, sizeof(*c));

    *out = NULL;
    if (!c)
        return HP_ERR_NOMEM;
    c->policy = policy;
    c->max_bytes = max_bytes;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return HP_OK;
}

void spec_cache_free(struct spec_cache *c)
{
    size_t i;

    if (!c)
        return;
    for (i = 0; i < BUCKETS; i++)
        while (c->buckets[i]) {
            struct entry *e = c->buckets[i];

            c->buckets[i] = e->next;
            entry_free(e);
        }
    pthread_mutex_destroy(&c->mu);
    hp_free(c);
}

static const char *meta_str(const json_t *obj, const char *field)
{
    const char *s = json_string_value(json_object_get(json_object_get(obj, "metadata"), field));

    return s ? s : "";
}

static size_t spec_bytes(const struct inspection_spec *s)
{
    size_t n = sizeof(*s) + s->n_checks * CHECK_BYTES + s->n_targets * TARGET_BYTES, i;

    for (i = 0; i < s->n_checks; i++) {
        const struct check_spec *c = &s->checks[i];

        if (c->kind == CHECK_HTTP)
            n += safe_regex_size(c->u.http.body_regex);
        else if (c->kind == CHECK_PROCESS)
            n += safe_regex_size(c->u.process.cmdline_regex);
    }
    return n;
}

/* make: parse and admit obj's spec into a new ref (one reference) */
static hp_rc make(const struct spec_cache *c, const json_t *obj, struct spec_ref **out)
{
    struct spec_ref *r = hp_calloc(1, sizeof(*r));
    hp_rc rc;

    *out = NULL;
    if (!r)
        return HP_ERR_NOMEM;
    atomic_init(&r->refs, 1);
    rc = inspection_spec_parse(json_object_get(obj, "spec"), &r->spec, &r->err);
    if (!rc)
        rc = inspect_policy_admit(c->policy, meta_str(obj, "namespace"), &r->spec, &r->err);
    if (rc == HP_ERR_NOMEM || (rc && rc != HP_ERR_INVALID && rc != HP_ERR_AUTH)) {
        ref_put(r);
        return rc == HP_ERR_NOMEM ? HP_ERR_NOMEM : HP_ERR_INTERNAL;
    }
    if (rc)
        inspection_spec_release(&r->spec); /* refused: nothing of it is used */
    r->rc = rc;
    r->bytes = rc ? sizeof(*r) : sizeof(*r) + spec_bytes(&r->spec);
    *out = r;
    return HP_OK;
}

static struct entry **find(struct spec_cache *c, const char *key)
{
    struct entry **p = &c->buckets[hash(key)];

    while (*p && strcmp((*p)->key, key))
        p = &(*p)->next;
    return p;
}

/* lru_unlink / lru_front: the use order (under mu) */
static void lru_unlink(struct spec_cache *c, struct entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else if (c->newest == e)
        c->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else if (c->oldest == e)
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_front(struct spec_cache *c, struct entry *e)
{
    lru_unlink(c, e);
    e->older = c->newest;
    if (c->newest)
        c->newest->newer = e;
    c->newest = e;
    if (!c->oldest)
        c->oldest = e;
}

/* unlink: take e out of the table (under mu); the caller frees it outside the lock */
static void unlink_entry(struct spec_cache *c, struct entry *e)
{
    struct entry **p = find(c, e->key);

    if (*p == e)
        *p = e->next;
    lru_unlink(c, e);
    c->entries--;
    c->bytes -= e->ref ? e->ref->bytes : 0;
}

hp_rc spec_cache_get(struct spec_cache *c, const char *key, const json_t *obj,
                     struct spec_ref **out)
{
    const char *uid = meta_str(obj, "uid");
    int64_t gen =
        json_integer_value(json_object_get(json_object_get(obj, "metadata"), "generation"));
    struct spec_ref *r = NULL;
    struct entry *e, *evicted = NULL, *old = NULL;
    char *k = NULL, *u = NULL;
    hp_rc rc;

    *out = NULL;
    pthread_mutex_lock(&c->mu);
    e = *find(c, key);
    if (e && e->generation == gen && !strcmp(e->uid, uid)) {
        atomic_fetch_add(&e->ref->refs, 1);
        *out = e->ref;
        c->hits++;
        lru_front(c, e);
    }
    pthread_mutex_unlock(&c->mu);
    if (*out)
        return HP_OK;
    rc = make(c, obj, &r); /* outside the lock: a parse may take a while */
    if (rc)
        return rc;
    *out = r;
    /* keep it for the next reconcile; not kept when memory is short */
    e = hp_calloc(1, sizeof(*e));
    k = hp_strdup(key);
    u = hp_strdup(uid);
    if (!e || !k || !u) {
        hp_free(e);
        hp_free(k);
        hp_free(u);
        pthread_mutex_lock(&c->mu);
        c->parses++;
        pthread_mutex_unlock(&c->mu);
        return HP_OK;
    }
    e->key = k;
    e->uid = u;
    e->generation = gen;
    atomic_fetch_add(&r->refs, 1);
    e->ref = r;
    pthread_mutex_lock(&c->mu);
    c->parses++;
    old = *find(c, key);
    if (old)
        unlink_entry(c, old);
    e->next = c->buckets[hash(key)];
    c->buckets[hash(key)] = e;
    c->entries++;
    c->bytes += r->bytes;
    lru_front(c, e);
    /* over the byte cap: the least recently used go (a reconcile of theirs parses again) */
    while (c->max_bytes && c->bytes > c->max_bytes && c->oldest && c->oldest != e) {
        struct entry *x = c->oldest;

        unlink_entry(c, x);
        x->next = evicted;
        evicted = x;
        c->evictions++;
    }
    pthread_mutex_unlock(&c->mu);
    entry_free(old);
    while (evicted) {
        struct entry *x = evicted;

        evicted = x->next;
        entry_free(x);
    }
    return HP_OK;
}

const struct inspection_spec *spec_ref_spec(const struct spec_ref *r)
{
    return r && !r->rc ? &r->spec : NULL;
}

hp_rc spec_ref_verdict(const struct spec_ref *r, struct hp_err *err)
{
    if (!r)
        return HP_ERR_INTERNAL;
    if (r->rc && err)
        *err = r->err;
    return r->rc;
}

void spec_ref_put(struct spec_ref *r)
{
    ref_put(r);
}

void spec_cache_drop(struct spec_cache *c, const char *key)
{
    struct entry *e;

    if (!c || !key)
        return;
    pthread_mutex_lock(&c->mu);
    e = *find(c, key);
    if (e)
        unlink_entry(c, e);
    pthread_mutex_unlock(&c->mu);
    entry_free(e);
}

void spec_cache_stats(struct spec_cache *c, struct spec_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    out->parses = c->parses;
    out->hits = c->hits;
    out->entries = c->entries;
    out->bytes = c->bytes;
    out->evictions = c->evictions;
    pthread_mutex_unlock(&c->mu);
}
