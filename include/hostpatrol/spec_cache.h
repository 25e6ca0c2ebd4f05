/*
 * spec_cache.h - HostInspection specs parsed, compiled (regular expressions) and admitted by the
 * cluster policy once per generation, not at every reconcile: a reconcile of an unchanged
 * resource costs a lookup. Entries are keyed by "namespace/name" and hold the uid and
 * metadata.generation they were made from (the apiserver bumps generation on every spec
 * change); a different uid or generation replaces the entry. A spec that is refused is cached
 * too, with its error, so a bad resource is not parsed again at every event either.
 *
 * Memory: the entries' compiled patterns and parsed fields are capped (max_bytes, least recently
 * used dropped first); a pattern compiles to at most SAFE_REGEX_MAX_COMPILED bytes.
 *
 * Entries are shared: spec_cache_get hands out a reference (spec_ref) that stays valid after the
 * entry is replaced or dropped, until spec_ref_put. The parsed spec is immutable.
 *
 * Thread-safety: every function may be called from any thread; one mutex guards the table (never
 * held while parsing).
 */
#ifndef HOSTPATROL_SPEC_CACHE_H
#define HOSTPATROL_SPEC_CACHE_H

#include <jansson.h>
#include <stdint.h>

#include "hostpatrol/inspect_policy.h"
#include "hostpatrol/inspection_spec.h"
#include "hostpatrol/rc.h"

struct spec_cache;
struct spec_ref;

struct spec_cache_stats {
    uint64_t parses, hits, evictions;
    size_t entries, bytes;
};

#define SPEC_CACHE_MAX_BYTES (32u << 20) /* the reconciler's cap */

/* spec_cache_new: policy (borrowed, may be NULL: admit everything) must outlive the cache.
 * max_bytes (0: no cap) bounds what the entries hold (compiled patterns, about 1 KiB per check,
 * 256 bytes per target): past it the least recently used entries are dropped, and their next
 * reconcile parses again. *out owned: spec_cache_free. */
hp_rc spec_cache_new(const struct inspect_policy *policy, size_t max_bytes,
                     struct spec_cache **out) HP_WUR;
void spec_cache_free(struct spec_cache *c);

/* spec_cache_get: the entry for obj (a HostInspection, borrowed), key its "namespace/name"
 * (borrowed). *out: a new reference (spec_ref_put). HP_ERR_NOMEM only: a refused spec is an
 * entry whose spec_ref_verdict says why. */
hp_rc spec_cache_get(struct spec_cache *c, const char *key, const json_t *obj,
                     struct spec_ref **out) HP_WUR;

/* spec_ref_spec: the parsed spec (borrowed from r), or NULL when it was refused. */
const struct inspection_spec *spec_ref_spec(const struct spec_ref *r);

/* spec_ref_verdict: HP_OK, or why the spec was refused (HP_ERR_INVALID: the spec, HP_ERR_AUTH:
 * the cluster policy), the detail copied into err. */
hp_rc spec_ref_verdict(const struct spec_ref *r, struct hp_err *err);

/* spec_ref_put: drop a reference. NULL allowed. */
void spec_ref_put(struct spec_ref *r);

/* spec_cache_drop: forget key (the resource is gone). */
void spec_cache_drop(struct spec_cache *c, const char *key);

void spec_cache_stats(struct spec_cache *c, struct spec_cache_stats *out);

#endif
