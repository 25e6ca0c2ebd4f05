/* metrics_auth.c - TokenReview + SubjectAccessReview behind a cache, reviewed on worker threads
 * (see include/hostpatrol/metrics_auth.h). */
#include "hostpatrol/metrics_auth.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/prom_writer.h"
#include "hostpatrol/review_cache.h"

#define AUTHN       "authn"
#define AUTHZ_PATH  "authz-path"
#define AUTHZ_NS    "authz-ns"
#define MAX_WORKERS 16

/* One review to do: authentication, then (when attr is set) authorisation. */
struct job {
    struct job *next;
    char *token;     /* owned, wiped when freed */
    char *path, *ns; /* owned, NULL when not asked */
    unsigned char authn_key[REVIEW_KEY_LEN], authz_key[REVIEW_KEY_LEN];
    bool authz;
};

struct metrics_auth {
    struct metrics_auth_config cfg; /* kube borrowed; group, resource point to static strings or
                                     * the caller's (read-only, outlive us) */
    struct hp_ctx *root;            /* owned; cancelled by free: reviews in flight end */
    pthread_t threads[MAX_WORKERS];
    unsigned n_threads;
    /* mu guards everything below */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    struct review_cache *cache;
    struct job *head, *tail; /* waiting for a worker */
    struct job *running;     /* being reviewed (a list through next) */
    size_t queued;
    void (*notify)(void *);
    void *notify_arg;
    unsigned notifying;  /* workers inside notify (set_notify waits for 0) */
    pthread_cond_t idle; /* signalled when notifying drops to 0 */
    struct metrics_auth_stats st;
};

static void job_free(struct job *j)
{
    if (!j)
        return;
    if (j->token) {
        explicit_bzero(j->token, strlen(j->token));
        hp_free(j->token);
    }
    hp_free(j->path);
    hp_free(j->ns);
    hp_free(j);
}

/* pending_locked: a job for the same question is queued or running. */
static bool pending_locked(struct metrics_auth *a, const struct job *j)
{
    const struct job *lists[2] = {a->head, a->running};

    for (int l = 0; l < 2; l++)
        for (const struct job *o = lists[l]; o; o = o->next)
            if (o->authz == j->authz &&
                !memcmp(j->authz ? o->authz_key : o->authn_key,
                        j->authz ? j->authz_key : j->authn_key, REVIEW_KEY_LEN))
                return true;
    return false;
}

static int64_t expiry(const struct metrics_auth *a, int status)
{
    return hp_now_ns() + (status >= 500 ? a->cfg.error_ttl_ms : a->cfg.ttl_ms) * 1000000;
}

/* record: cache a verdict and count the review. */
static void record(struct metrics_auth *a, const unsigned char *key, int status, const char *msg,
                   json_t *user, int64_t t0, bool token_review)
{
    int64_t took = hp_now_ns() - t0;

    pthread_mutex_lock(&a->mu);
    review_cache_put(a->cache, key, expiry(a, status), status, msg, user);
    if (token_review)
        a->st.token_reviews++;
    else
        a->st.access_reviews++;
    if (status >= 500)
        a->st.review_errors++;
    a->st.review_ns_total += (uint64_t)took;
    if ((uint64_t)took > a->st.review_ns_max)
        a->st.review_ns_max = (uint64_t)took;
    pthread_mutex_unlock(&a->mu);
}

/* failure: the verdict of a review the API server did not give. */
static int failure(hp_rc rc, const struct kube_status *st, const struct hp_err *err,
                   const char *what, char *msg, size_t n)
{
    if (rc == HP_ERR_AUTH) {
        snprintf(msg, n, "the controller may not create %s (HTTP %ld; check its RBAC): %.120s",
                 what, st->code, err->msg);
        return 500;
    }
    snprintf(msg, n, "%s failed, the API server did not answer in time or at all: %.120s", what,
             err->msg);
    return 503;
}

/* token_review: authenticate j->token; the verdict is cached under j->authn_key. */
static void token_review(struct metrics_auth *a, struct job *j)
{
    json_t *body, *out = NULL, *status, *user;
    struct kube_status st = {0};
    struct hp_err err = {0};
    struct hp_ctx *ctx = NULL;
    char msg[REVIEW_MSG_MAX];
    int64_t t0 = hp_now_ns();
    int verdict;
    hp_rc rc;

    body = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "authentication.k8s.io/v1", "kind",
                     "TokenReview", "spec", "token", j->token);
    rc = body ? hp_ctx_new(a->root, a->cfg.timeout_ms, &ctx) : HP_ERR_NOMEM;
    if (!rc)
        rc = kube_request(a->cfg.kube, ctx, "POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                          body, NULL, &out, &st, &err);
    if (body) {
        /* the token was copied into the request body: wipe that copy too */
        const char *t = json_string_value(json_object_get(json_object_get(body, "spec"), "token"));

        if (t)
            explicit_bzero((char *)t, strlen(t));
    }
    json_decref(body);
    hp_ctx_free(ctx);
    if (rc) {
        verdict = failure(rc, &st, &err, "tokenreviews", msg, sizeof(msg));
        record(a, j->authn_key, verdict, msg, NULL, t0, true);
        goto out;
    }
    status = json_object_get(out, "status");
    user = json_object_get(status, "user");
    if (json_is_true(json_object_get(status, "authenticated")) && json_is_object(user)) {
        record(a, j->authn_key, 200, "", user, t0, true);
    } else {
        const char *e = json_string_value(json_object_get(status, "error"));

        snprintf(msg, sizeof(msg), "Unauthorized: the bearer token was not authenticated%s%.160s",
                 e ? ": " : "", e ? e : "");
        record(a, j->authn_key, 401, msg, NULL, t0, true);
    }
out:
    json_decref(out);
}

/* access_review: may user (TokenReview's status.user, borrowed) do what j asks? */
static void access_review(struct metrics_auth *a, struct job *j, json_t *user)
{
    json_t *spec, *body = NULL, *out = NULL, *v;
    struct kube_status st = {0};
    struct hp_err err = {0};
    struct hp_ctx *ctx = NULL;
    const char *name = json_string_value(json_object_get(user, "username"));
    char msg[REVIEW_MSG_MAX];
    int64_t t0 = hp_now_ns();
    hp_rc rc = HP_ERR_NOMEM;

    spec = json_object();
    if (!spec)
        goto fail;
    json_object_set(spec, "user", json_object_get(user, "username"));
    if ((v = json_object_get(user, "uid")))
        json_object_set(spec, "uid", v);
    if ((v = json_object_get(user, "groups")))
        json_object_set(spec, "groups", v);
    if ((v = json_object_get(user, "extra")))
        json_object_set(spec, "extra", v);
    if (j->path)
        json_object_set_new(spec, "nonResourceAttributes",
                            json_pack("{s:s, s:s}", "path", j->path, "verb", "get"));
    else
        json_object_set_new(spec, "resourceAttributes",
                            json_pack("{s:s, s:s, s:s, s:s}", "namespace", j->ns, "verb", "get",
                                      "group", a->cfg.group, "resource", a->cfg.resource));
    body = json_pack("{s:s, s:s, s:o}", "apiVersion", "authorization.k8s.io/v1", "kind",
                     "SubjectAccessReview", "spec", spec);
    spec = NULL;
    if (!body)
        goto fail;
    rc = hp_ctx_new(a->root, a->cfg.timeout_ms, &ctx);
    if (!rc)
        rc = kube_request(a->cfg.kube, ctx, "POST",
                          "/apis/authorization.k8s.io/v1/subjectaccessreviews", body, NULL, &out,
                          &st, &err);
    hp_ctx_free(ctx);
    if (rc)
        goto fail;
    v = json_object_get(out, "status");
    if (json_is_true(json_object_get(v, "allowed"))) {
        record(a, j->authz_key, 200, "", NULL, t0, false);
    } else if (j->path) {
        snprintf(msg, sizeof(msg), "Forbidden: user \"%.60s\" may not get path \"%.60s\"",
                 name ? name : "?", j->path);
        record(a, j->authz_key, 403, msg, NULL, t0, false);
    } else {
        snprintf(msg, sizeof(msg),
                 "Forbidden: user \"%.60s\" may not get %.40s.%.40s in namespace \"%.60s\"",
                 name ? name : "?", a->cfg.resource, a->cfg.group, j->ns);
        record(a, j->authz_key, 403, msg, NULL, t0, false);
    }
    goto out;
fail:
    if (rc == HP_ERR_NOMEM)
        snprintf(err.msg, sizeof(err.msg), "out of memory");
    record(a, j->authz_key, failure(rc, &st, &err, "subjectaccessreviews", msg, sizeof(msg)), msg,
           NULL, t0, false);
out:
    json_decref(spec);
    json_decref(body);
    json_decref(out);
}

/* review: what j needs that the cache does not hold yet. */
static void review(struct metrics_auth *a, struct job *j)
{
    struct review_verdict v = {0};
    bool have;

    pthread_mutex_lock(&a->mu);
    have = review_cache_get(a->cache, j->authn_key, hp_now_ns(), &v);
    pthread_mutex_unlock(&a->mu);
    if (!have) {
        token_review(a, j);
        pthread_mutex_lock(&a->mu);
        have = review_cache_get(a->cache, j->authn_key, hp_now_ns(), &v);
        pthread_mutex_unlock(&a->mu);
    }
    if (have && v.status == 200 && j->authz) {
        struct review_verdict z = {0};

        pthread_mutex_lock(&a->mu);
        have = review_cache_get(a->cache, j->authz_key, hp_now_ns(), &z);
        pthread_mutex_unlock(&a->mu);
        json_decref(z.user);
        if (!have)
            access_review(a, j, v.user);
    }
    json_decref(v.user);
}

static void *worker_main(void *arg)
{
    struct metrics_auth *a = arg;

    pthread_mutex_lock(&a->mu);
    for (;;) {
        struct job *j, **pp;
        void (*fn)(void *);
        void *fn_arg;

        while (!a->stopping && !a->head)
            pthread_cond_wait(&a->cv, &a->mu);
        if (a->stopping)
            break;
        j = a->head;
        a->head = j->next;
        if (!a->head)
            a->tail = NULL;
        a->queued--;
        j->next = a->running;
        a->running = j;
        pthread_mutex_unlock(&a->mu);

        review(a, j);

        pthread_mutex_lock(&a->mu);
        for (pp = &a->running; *pp; pp = &(*pp)->next)
            if (*pp == j) {
                *pp = j->next;
                break;
            }
        fn = a->notify;
        fn_arg = a->notify_arg;
        if (fn)
            a->notifying++;
        pthread_mutex_unlock(&a->mu);
        job_free(j);
        if (fn)
            fn(fn_arg);
        pthread_mutex_lock(&a->mu);
        if (fn && --a->notifying == 0)
            pthread_cond_broadcast(&a->idle);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

hp_rc metrics_auth_new(const struct metrics_auth_config *cfg, struct metrics_auth **out,
                       struct hp_err *err)
{
    struct metrics_auth *a;
    hp_rc rc;

    *out = NULL;
    if (!cfg || !cfg->kube)
        return hp_err_set(err, HP_ERR_INVALID, "metrics authentication needs a Kubernetes client");
    a = hp_calloc(1, sizeof(*a));
    if (!a)
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory for metrics authentication");
    a->cfg = *cfg;
    if (a->cfg.ttl_ms <= 0)
        a->cfg.ttl_ms = 30000;
    if (a->cfg.error_ttl_ms <= 0)
        a->cfg.error_ttl_ms = 2000;
    if (a->cfg.timeout_ms <= 0)
        a->cfg.timeout_ms = 5000;
    if (!a->cfg.cache_max)
        a->cfg.cache_max = 4096;
    if (!a->cfg.queue_max)
        a->cfg.queue_max = 256;
    if (!a->cfg.workers)
        a->cfg.workers = 2;
    if (a->cfg.workers > MAX_WORKERS)
        a->cfg.workers = MAX_WORKERS;
    if (!a->cfg.group)
        a->cfg.group = "hostpatrol.io";
    if (!a->cfg.resource)
        a->cfg.resource = "hostinspections";
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    pthread_cond_init(&a->idle, NULL);
    rc = review_cache_new(a->cfg.cache_max, &a->cache);
    if (!rc)
        rc = hp_ctx_new(NULL, HP_CTX_NO_TIMEOUT, &a->root);
    if (rc) {
        rc = hp_err_set(err, rc, "out of memory for metrics authentication");
        goto fail;
    }
    for (; a->n_threads < a->cfg.workers; a->n_threads++)
        if (pthread_create(&a->threads[a->n_threads], NULL, worker_main, a)) {
            rc = hp_err_set(err, HP_ERR_INTERNAL, "cannot start the access-review threads");
            goto fail;
        }
    *out = a;
    return HP_OK;
fail:
    metrics_auth_free(a);
    return rc;
}

void metrics_auth_free(struct metrics_auth *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    hp_ctx_cancel(a->root);
    for (unsigned i = 0; i < a->n_threads; i++)
        pthread_join(a->threads[i], NULL);
    while (a->head) {
        struct job *j = a->head;

        a->head = j->next;
        job_free(j);
    }
    review_cache_free(a->cache);
    hp_ctx_free(a->root);
    pthread_cond_destroy(&a->cv);
    pthread_cond_destroy(&a->idle);
    pthread_mutex_destroy(&a->mu);
    hp_free(a);
}

void metrics_auth_set_notify(struct metrics_auth *a, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&a->mu);
    a->notify = fn;
    a->notify_arg = arg;
    while (a->notifying)
        pthread_cond_wait(&a->idle, &a->mu);
    pthread_mutex_unlock(&a->mu);
}

/* enqueue_locked: queue a review of j's question unless one is pending. Returns 0 (pending) or
 * 503 when the queue is full (msg says so). j taken. */
static int enqueue_locked(struct metrics_auth *a, struct job *j, char *msg, size_t n)
{
    if (pending_locked(a, j)) {
        job_free(j);
        return 0;
    }
    if (a->queued >= a->cfg.queue_max) {
        job_free(j);
        a->st.queue_full++;
        snprintf(msg, n, "too many access reviews waiting for the API server (%zu); try again",
                 a->cfg.queue_max);
        return 503;
    }
    if (a->tail)
        a->tail->next = j;
    else
        a->head = j;
    a->tail = j;
    a->queued++;
    pthread_cond_signal(&a->cv);
    return 0;
}

int metrics_auth_check(void *arg, const char *token, const char *path, const char *ns, char *msg,
                       size_t msg_len)
{
    struct metrics_auth *a = arg;
    struct review_verdict v = {0};
    struct job *j;
    int64_t now = hp_now_ns();
    int status;

    if (msg_len)
        msg[0] = '\0';
    if (!token || !token[0]) {
        snprintf(msg, msg_len, "Unauthorized: send a bearer token (Authorization: Bearer TOKEN)");
        return 401;
    }
    j = hp_calloc(1, sizeof(*j));
    if (!j || !(j->token = hp_strdup(token)) || (path && !(j->path = hp_strdup(path))) ||
        (ns && !(j->ns = hp_strdup(ns)))) {
        job_free(j);
        snprintf(msg, msg_len, "out of memory checking access");
        return 503;
    }
    review_cache_key(AUTHN, token, NULL, j->authn_key);
    j->authz = path || ns;
    if (path)
        review_cache_key(AUTHZ_PATH, token, path, j->authz_key);
    else if (ns)
        review_cache_key(AUTHZ_NS, token, ns, j->authz_key);

    pthread_mutex_lock(&a->mu);
    if (!review_cache_get(a->cache, j->authn_key, now, &v)) {
        a->st.misses++;
        status = enqueue_locked(a, j, msg, msg_len);
        goto out;
    }
    if (v.status != 200 || !j->authz) {
        a->st.hits++;
        status = v.status;
        snprintf(msg, msg_len, "%s", v.msg);
        job_free(j);
        goto out;
    }
    json_decref(v.user);
    v.user = NULL;
    if (!review_cache_get(a->cache, j->authz_key, now, &v)) {
        a->st.misses++;
        status = enqueue_locked(a, j, msg, msg_len);
        goto out;
    }
    a->st.hits++;
    status = v.status;
    snprintf(msg, msg_len, "%s", v.msg);
    job_free(j);
out:
    pthread_mutex_unlock(&a->mu);
    json_decref(v.user);
    return status;
}

void metrics_auth_stats(struct metrics_auth *a, struct metrics_auth_stats *out)
{
    *out = (struct metrics_auth_stats){0};
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    *out = a->st;
    out->cached = review_cache_len(a->cache);
    out->queued = a->queued;
    pthread_mutex_unlock(&a->mu);
}

void metrics_auth_metrics(struct metrics_auth *a, struct prom_writer *w)
{
    struct metrics_auth_stats as;

    metrics_auth_stats(a, &as);
    prom_writer_family(w, "hostpatrol_metrics_auth_reviews_total", "counter",
                       "TokenReviews and SubjectAccessReviews made for /metrics and /ws.");
    prom_writer_sample(w, "hostpatrol_metrics_auth_reviews_total",
                       (const char *const[]){"review", "token", NULL}, (double)as.token_reviews);
    prom_writer_sample(w, "hostpatrol_metrics_auth_reviews_total",
                       (const char *const[]){"review", "access", NULL}, (double)as.access_reviews);
    prom_writer_counter(w, "hostpatrol_metrics_auth_review_errors_total",
                        "Reviews the API server did not answer (verdict 5xx).",
                        (double)as.review_errors);
    prom_writer_counter(w, "hostpatrol_metrics_auth_review_seconds_total", "Time spent in reviews.",
                        (double)as.review_ns_total / 1e9);
    prom_writer_gauge(w, "hostpatrol_metrics_auth_review_max_seconds", "The longest review so far.",
                      (double)as.review_ns_max / 1e9);
    prom_writer_counter(w, "hostpatrol_metrics_auth_cache_hits_total",
                        "Access checks answered from the verdict cache.", (double)as.hits);
    prom_writer_counter(w, "hostpatrol_metrics_auth_cache_misses_total",
                        "Access checks that needed a review.", (double)as.misses);
}
