/*
 * metrics_auth.h - who may read /metrics and /ws, decided by the Kubernetes API server the way
 * kubebuilder's filters.WithAuthenticationAndAuthorization (and kube-rbac-proxy) decide it:
 *   1. the bearer token is authenticated by a TokenReview (authentication.k8s.io/v1);
 *   2. the user it names is authorised by a SubjectAccessReview (authorization.k8s.io/v1):
 *      `get` on a nonResourceURL path (/metrics), or `get` on the configured resource
 *      (hostinspections.hostpatrol.io) in one namespace (what /ws streams of that namespace).
 *
 * Never blocking: metrics_auth_check answers from a bounded cache (positive and negative
 * verdicts for ttl_ms, failed reviews for error_ttl_ms, keyed by SHA-256 digests: no token is
 * kept once its reviews are done). A verdict not cached yet is queued for a worker thread, the
 * check answers 0 ("pending"), and the notify callback runs once the verdict is cached: the
 * caller asks again then. Each review is bounded by timeout_ms; an API server that does not
 * answer gives a 503 verdict naming the review, not a hang.
 *
 * Verdicts are HTTP statuses: 200 allowed; 401 no token or not authenticated; 403 authenticated
 * but not allowed; 500 the controller may not create the reviews (its RBAC); 503 the API server
 * did not answer or the review queue is full.
 *
 * Ownership: the config's kube client is borrowed and must outlive the metrics_auth. Strings
 * passed to check are borrowed for the call. Thread-safety: every function may be called from
 * any thread; one mutex guards the cache, the queue and the counters (never held during a
 * review). The notify callback runs on a worker thread, without the lock.
 */
#ifndef HOSTPATROL_METRICS_AUTH_H
#define HOSTPATROL_METRICS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/kube_client.h"
#include "hostpatrol/rc.h"

struct metrics_auth_config {
    struct kube_client *kube; /* borrowed */
    int64_t ttl_ms;           /* 0: 30000 */
    int64_t error_ttl_ms;     /* 0: 2000 */
    int64_t timeout_ms;       /* per review; 0: 5000 */
    size_t cache_max;         /* 0: 4096 */
    size_t queue_max;         /* reviews waiting for a worker; 0: 256 */
    unsigned workers;         /* 0: 2 */
    const char *group;        /* 0: "hostpatrol.io" */
    const char *resource;     /* 0: "hostinspections" */
};

struct metrics_auth;

hp_rc metrics_auth_new(const struct metrics_auth_config *cfg, struct metrics_auth **out,
                       struct hp_err *err) HP_WUR;
/* metrics_auth_free: cancel reviews in flight, join the workers, free. NULL allowed. */
void metrics_auth_free(struct metrics_auth *a);

/* metrics_auth_set_notify: fn(arg) is called (on a worker thread) after each verdict lands.
 * Once it returns, the previous fn is not running and is never called again (so its target
 * may go: set NULL before stopping what fn wakes). Must not be called from fn. */
void metrics_auth_set_notify(struct metrics_auth *a, void (*fn)(void *arg), void *arg);

/* metrics_auth_check: the verdict for token (NULL or "": 401) on path (a nonResourceURL; NULL:
 * none) and ns (the namespace whose results are asked for; NULL: none); with neither, only
 * authentication. Returns 0 while pending, else the HTTP status, with the reason in msg (a
 * sentence without the token). arg: the struct metrics_auth (so it fits http_auth_fn). */
int metrics_auth_check(void *arg, const char *token, const char *path, const char *ns, char *msg,
                       size_t msg_len);

struct metrics_auth_stats {
    uint64_t hits, misses; /* checks answered from the cache, and not */
    uint64_t token_reviews, access_reviews, review_errors, queue_full;
    uint64_t review_ns_total, review_ns_max; /* time spent in reviews (both kinds) */
    size_t cached, queued;
};
void metrics_auth_stats(struct metrics_auth *a, struct metrics_auth_stats *out);

struct prom_writer;
/* metrics_auth_metrics: hostpatrol_metrics_auth_* (reviews, errors, time, cache hits and
 * misses) of a. Thread-safe. */
void metrics_auth_metrics(struct metrics_auth *a, struct prom_writer *w);

#endif
