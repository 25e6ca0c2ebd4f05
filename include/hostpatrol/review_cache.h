/*
 * review_cache.h - a bounded cache of access-review verdicts (TokenReview, SubjectAccessReview)
 * keyed by a SHA-256 digest of what was reviewed, so neither a token nor its hash prefix needs
 * to be kept to find a verdict again.
 *
 * Invariants: at most `max` entries; an entry is returned only before its expiry; when full, an
 * expired entry is replaced first, else the one expiring soonest.
 *
 * Ownership: a verdict's user object is a jansson reference held by the cache (put takes a new
 * reference; get hands out a new reference the caller must json_decref).
 * Thread-safety: none; the owner serialises calls (metrics_auth holds its lock).
 */
#ifndef HOSTPATROL_REVIEW_CACHE_H
#define HOSTPATROL_REVIEW_CACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/rc.h"

#define REVIEW_KEY_LEN 32  /* SHA-256 */
#define REVIEW_MSG_MAX 256 /* a verdict's reason, truncated */

struct review_verdict {
    int status;               /* 200 allowed, 401, 403, or 5xx when the review failed */
    char msg[REVIEW_MSG_MAX]; /* why, for the HTTP answer ("" when allowed) */
    json_t *user;             /* TokenReview's status.user, or NULL */
};

struct review_cache;

/* review_cache_new: an empty cache of at most max (>= 1) entries. *out owned. */
hp_rc review_cache_new(size_t max, struct review_cache **out) HP_WUR;
void review_cache_free(struct review_cache *c); /* NULL allowed */

/* review_cache_key: SHA-256 over kind, token and attr, each followed by a NUL (token and attr
 * may be NULL, read as ""). kind keeps reviews of different types apart. */
void review_cache_key(const char *kind, const char *token, const char *attr,
                      unsigned char out[REVIEW_KEY_LEN]);

/* review_cache_get: the verdict of key if present and not expired at now_ns (out->user is a new
 * reference or NULL). false: absent or expired (out untouched). */
bool review_cache_get(struct review_cache *c, const unsigned char key[REVIEW_KEY_LEN],
                      int64_t now_ns, struct review_verdict *out);

/* review_cache_put: store (or replace) key's verdict until expires_ns. msg borrowed (copied,
 * truncated), user borrowed (a reference is taken; may be NULL). */
void review_cache_put(struct review_cache *c, const unsigned char key[REVIEW_KEY_LEN],
                      int64_t expires_ns, int status, const char *msg, json_t *user);

/* review_cache_len: live or expired entries currently held. */
size_t review_cache_len(const struct review_cache *c);

#endif
