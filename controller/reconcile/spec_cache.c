/* spec_cache.c - specs parsed and admitted once per generation (see
 * include/hostpatrol/spec_cache.h). */
#include "hostpatrol/spec_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "hostpatrol/alloc.h"

#define BUCKETS 1024

struct spec_ref {
    atomic_uint refs;
    struct inspection_spec spec;
    hp_rc rc; /* HP_OK, HP_ERR_INVALID or HP_ERR_AUTH */
    struct hp_err err;
};

struct entry {
    struct entry *next;
    char *key, *uid;
    int64_t generation;
    struct spec_ref *ref; /* one reference held by the entry */
};

struct spec_cache {
    const struct inspect_policy *policy;
    pthread_mutex_t mu; /* guards buckets, entries and the stats */
    struct entry *buckets[BUCKETS];
    size_t entries;
    uint64_t parses, hits;
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

hp_rc spec_cache_new(const struct inspect_policy *policy, struct spec_cache **out)
{
    struct spec_cache *c = hp_calloc(1, sizeof(*c));

    *out = NULL;
    if (!c)
        return HP_ERR_NOMEM;
    c->policy = policy;
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

hp_rc spec_cache_get(struct spec_cache *c, const char *key, const json_t *obj,
                     struct spec_ref **out)
{
    const char *uid = meta_str(obj, "uid");
    int64_t gen =
        json_integer_value(json_object_get(json_object_get(obj, "metadata"), "generation"));
    struct spec_ref *r = NULL;
    struct entry **p, *e;
    hp_rc rc;

    *out = NULL;
    pthread_mutex_lock(&c->mu);
    e = *find(c, key);
    if (e && e->generation == gen && !strcmp(e->uid, uid)) {
        atomic_fetch_add(&e->ref->refs, 1);
        *out = e->ref;
        c->hits++;
    }
    pthread_mutex_unlock(&c->mu);
    if (*out)
        return HP_OK;
    rc = make(c, obj, &r); /* outside the lock: a parse may take a while */
    if (rc)
        return rc;
    pthread_mutex_lock(&c->mu);
    c->parses++;
    p = find(c, key);
    if (!*p) {
        e = hp_calloc(1, sizeof(*e));
        if (e && (e->key = hp_strdup(key))) {
            *p = e;
            c->entries++;
        } else {
            hp_free(e);
            e = NULL;
        }
    } else {
        e = *p;
    }
    if (e) {
        char *u = hp_strdup(uid);

        if (u) { /* kept for the next reconcile; not cached when memory is short */
            hp_free(e->uid);
            e->uid = u;
            e->generation = gen;
            ref_put(e->ref);
            atomic_fetch_add(&r->refs, 1);
            e->ref = r;
        }
    }
    pthread_mutex_unlock(&c->mu);
    *out = r;
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
    struct entry **p, *e = NULL;

    if (!c || !key)
        return;
    pthread_mutex_lock(&c->mu);
    p = find(c, key);
    if (*p) {
        e = *p;
        *p = e->next;
        c->entries--;
    }
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
    pthread_mutex_unlock(&c->mu);
}
