/*
 * kube_informer.h - keeps a local cache of one resource in step with the API server, the way
 * client-go's reflector does:
 *   - paginated LIST (limit/continue), then WATCH from the list's resourceVersion with
 *     allowWatchBookmarks; ADDED / MODIFIED / DELETED update the cache and reach the handler;
 *     BOOKMARK only moves the resourceVersion;
 *   - the server ends a watch (timeoutSeconds): watch again from the last resourceVersion;
 *   - 410 Gone (an HTTP 410 or an ERROR event with code 410): LIST again; objects missing from
 *     the new list are reported DELETED, changed ones MODIFIED;
 *   - errors: back off 800 ms -> 30 s; then, as client-go does, an unreachable server or a 429
 *     is followed by a WATCH from the last resourceVersion (a 410 says when a LIST is needed),
 *     any other error by a fresh LIST;
 *   - STALL DETECTOR: a watch silent for stall_ms (no event, no bookmark) is cut and restarted,
 *     so a watch can never die silently;
 *   - readiness: synced (a first LIST done) and fresh (a LIST, event or bookmark recently).
 * The cache is keyed "namespace/name" (or "name" for cluster-scoped objects). It keeps each
 * object as compact JSON text, without metadata.managedFields and kubectl's
 * last-applied-configuration annotation (a parsed tree costs several times its text; those
 * fields are most of an object's size and no controller reads them).
 *
 * Threads: one informer thread; on_event runs on it, with no informer lock held (it may call
 * kube_informer_get). The lock guards the cache, the resourceVersion and the stats.
 */
#ifndef HOSTPATROL_KUBE_INFORMER_H
#define HOSTPATROL_KUBE_INFORMER_H

#include <stdbool.h>
#include <stdint.h>

#include "hostpatrol/kube_client.h"

enum kube_event { KUBE_ADDED, KUBE_MODIFIED, KUBE_DELETED };
const char *kube_event_name(enum kube_event e); /* "ADDED" ... */

struct kube_informer_config {
    struct kube_client *client; /* borrowed; outlives the informer */
    const char *path;           /* e.g. /apis/hostpatrol.io/v1alpha1/hostinspections */
    int64_t page_size;          /* LIST page; 0: 500 */
    int64_t stall_ms;           /* 0: 90 s (bookmarks arrive about every minute) */
    int64_t watch_timeout_s;    /* the server ends each watch after this; 0: 300-600 s */
    /* obj borrowed for the call (json_incref to keep it) */
    void (*on_event)(void *arg, enum kube_event type, const char *key, json_t *obj);
    /* transform (optional): drop what the caller never reads from obj (modify it in place)
     * before it is cached, as client-go's TransformFunc; called on the informer thread */
    void (*transform)(void *arg, json_t *obj);
    void *arg;
};

struct kube_informer_stats {
    uint64_t lists, watches, events, bookmarks, gone, stalls, errors;
    bool synced;
    int64_t last_seen_ns; /* last LIST, event or bookmark (CLOCK_MONOTONIC) */
    char resource_version[64];
};

struct kube_informer;

hp_rc kube_informer_start(const struct kube_informer_config *cfg, struct kube_informer **out,
                          struct hp_err *err) HP_WUR;
void kube_informer_stop(struct kube_informer *inf); /* cancels, joins, frees; NULL allowed */

/* kube_informer_get: the cached object, parsed anew (new reference: the caller's own copy), or
 * NULL when absent (or out of memory) */
json_t *kube_informer_get(struct kube_informer *inf, const char *key);
size_t kube_informer_size(struct kube_informer *inf);
/* kube_informer_ready: synced, and seen something within max_age_ms */
bool kube_informer_ready(struct kube_informer *inf, int64_t max_age_ms);
void kube_informer_stats(struct kube_informer *inf, struct kube_informer_stats *out);

#endif
