/* review_cache.c - bounded verdict cache (see include/hostpatrol/review_cache.h). A flat array
 * scanned linearly: a few thousand 32-byte compares cost microseconds, less than a hash table's
 * bookkeeping at this size. */
#include "hostpatrol/review_cache.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "hostpatrol/alloc.h"

struct entry {
    unsigned char key[REVIEW_KEY_LEN];
    int64_t expires_ns;
    int status;
    char msg[REVIEW_MSG_MAX];
    json_t *user; /* a reference held by the cache, or NULL */
};

struct review_cache {
    size_t max, len;
    struct entry *e; /* max slots, the first len in use */
};

hp_rc review_cache_new(size_t max, struct review_cache **out)
{
    struct review_cache *c;

    *out = NULL;
    if (!max)
        return HP_ERR_INVALID;
    c = hp_calloc(1, sizeof(*c));
    if (!c)
        return HP_ERR_NOMEM;
    c->e = hp_calloc(max, sizeof(*c->e));
    if (!c->e) {
        hp_free(c);
        return HP_ERR_NOMEM;
    }
    c->max = max;
    *out = c;
    return HP_OK;
}

void review_cache_free(struct review_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->len; i++)
        json_decref(c->e[i].user);
    hp_free(c->e);
    hp_free(c);
}

void review_cache_key(const char *kind, const char *token, const char *attr,
                      unsigned char out[REVIEW_KEY_LEN])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    const char *parts[3] = {kind ? kind : "", token ? token : "", attr ? attr : ""};
    unsigned int n = 0;

    memset(out, 0, REVIEW_KEY_LEN);
    if (!md)
        return;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1) {
        for (int i = 0; i < 3; i++)
            EVP_DigestUpdate(md, parts[i], strlen(parts[i]) + 1); /* with the NUL: a separator */
        EVP_DigestFinal_ex(md, out, &n);
    }
    EVP_MD_CTX_free(md);
}

static struct entry *find(struct review_cache *c, const unsigned char *key)
{
    for (size_t i = 0; i < c->len; i++)
        if (!memcmp(c->e[i].key, key, REVIEW_KEY_LEN))
            return &c->e[i];
    return NULL;
}

bool review_cache_get(struct review_cache *c, const unsigned char key[REVIEW_KEY_LEN],
                      int64_t now_ns, struct review_verdict *out)
{
    struct entry *e = c ? find(c, key) : NULL;

    if (!e || e->expires_ns <= now_ns)
        return false;
    out->status = e->status;
    snprintf(out->msg, sizeof(out->msg), "%s", e->msg);
    out->user = json_incref(e->user);
    return true;
}

void review_cache_put(struct review_cache *c, const unsigned char key[REVIEW_KEY_LEN],
                      int64_t expires_ns, int status, const char *msg, json_t *user)
{
    struct entry *e;

    if (!c)
        return;
    e = find(c, key);
    if (!e && c->len < c->max)
        e = &c->e[c->len++];
    if (!e) {
        /* full: the entry that expires soonest (an expired one, if any) makes room */
        e = &c->e[0];
        for (size_t i = 1; i < c->len; i++)
            if (c->e[i].expires_ns < e->expires_ns)
                e = &c->e[i];
    }
    json_decref(e->user);
    memcpy(e->key, key, REVIEW_KEY_LEN);
    e->expires_ns = expires_ns;
    e->status = status;
    snprintf(e->msg, sizeof(e->msg), "%s", msg ? msg : "");
    e->user = json_incref(user);
}

size_t review_cache_len(const struct review_cache *c)
{
    return c ? c->len : 0;
}
