/* kube_leader.c - Lease-based leader election (see include/hostpatrol/kube_leader.h). */
#include "hostpatrol/kube_leader.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "hostpatrol/alloc.h"

struct kube_leader {
    struct kube_leader_config cfg;
    char *ns, *name, *identity;
    char path[1024], list_path[512];
    struct hp_ctx *ctx;
    pthread_t thread;
    bool started;
    atomic_bool leader;
    bool release;
    /* elector thread only: */
    char observed[512];  /* holder + renewTime last seen */
    int64_t observed_ns; /* when it last changed (local monotonic time) */
    int64_t last_renew_ns;
};

static void micro_time(char *buf, size_t n)
{
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec % 1000000));
}

static const char *spec_str(const json_t *lease, const char *k)
{
    return json_string_value(json_object_get(json_object_get(lease, "spec"), k));
}

/* try_acquire_or_renew: one round. HP_OK when we hold the Lease afterwards. */
static hp_rc try_acquire_or_renew(struct kube_leader *l)
{
    struct kube_status st;
    struct hp_err err = {0};
    struct hp_ctx *ctx = NULL;
    json_t *cur = NULL, *next = NULL;
    const char *holder;
    char now[64], seen[512];
    int64_t lease_s = (l->cfg.lease_ms + 999) / 1000;
    hp_rc rc;

    rc = hp_ctx_new(l->ctx, l->cfg.retry_ms > 1000 ? l->cfg.retry_ms : 1000, &ctx);
    if (rc)
        return rc;
    micro_time(now, sizeof(now));
    rc = kube_request(l->cfg.client, ctx, "GET", l->path, NULL, NULL, &cur, &st, &err);
    if (rc == HP_ERR_NOTFOUND) {
        next = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:I, s:s, s:s, s:i}}", "apiVersion",
                         "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", l->name,
                         "namespace", l->ns, "spec", "holderIdentity", l->identity,
                         "leaseDurationSeconds", (json_int_t)lease_s, "acquireTime", now,
                         "renewTime", now, "leaseTransitions", 0);
        rc = next ? kube_request(l->cfg.client, ctx, "POST", l->list_path, next, NULL, NULL, &st,
                                 &err)
                  : HP_ERR_NOMEM;
        goto out;
    }
    if (rc)
        goto out;
    holder = spec_str(cur, "holderIdentity");
    snprintf(seen, sizeof(seen), "%s|%s", holder ? holder : "", spec_str(cur, "renewTime") ?: "");
    if (strcmp(seen, l->observed)) {
        snprintf(l->observed, sizeof(l->observed), "%s", seen);
        l->observed_ns = hp_now_ns();
    }
    if (holder && *holder && strcmp(holder, l->identity) &&
        hp_now_ns() - l->observed_ns < l->cfg.lease_ms * 1000000) {
        rc = HP_ERR_CONFLICT; /* someone else leads and is renewing */
        goto out;
    }
    next = json_deep_copy(cur);
    if (!next) {
        rc = HP_ERR_NOMEM;
        goto out;
    }
    {
        json_t *spec = json_object_get(next, "spec");
        bool mine = holder && !strcmp(holder, l->identity);

        if (!json_is_object(spec)) {
            spec = json_object();
            json_object_set_new(next, "spec", spec);
        }
        if (!mine) {
            json_int_t t = json_integer_value(json_object_get(spec, "leaseTransitions"));

            json_object_set_new(spec, "holderIdentity", json_string(l->identity));
            json_object_set_new(spec, "acquireTime", json_string(now));
            json_object_set_new(spec, "leaseTransitions", json_integer(t + 1));
        }
        json_object_set_new(spec, "leaseDurationSeconds", json_integer(lease_s));
        json_object_set_new(spec, "renewTime", json_string(now));
    }
    /* PUT carries metadata.resourceVersion: a concurrent writer makes this a 409 */
    rc = kube_request(l->cfg.client, ctx, "PUT", l->path, next, NULL, NULL, &st, &err);
out:
    json_decref(cur);
    json_decref(next);
    hp_ctx_free(ctx);
    return rc;
}

static void release(struct kube_leader *l)
{
    struct hp_err err = {0};
    struct hp_ctx *ctx = NULL;
    json_t *cur = NULL;

    if (hp_ctx_new(NULL, 2000, &ctx))
        return;
    if (!kube_request(l->cfg.client, ctx, "GET", l->path, NULL, NULL, &cur, NULL, &err) &&
        spec_str(cur, "holderIdentity") && !strcmp(spec_str(cur, "holderIdentity"), l->identity)) {
        json_t *spec = json_object_get(cur, "spec");

        json_object_set_new(spec, "holderIdentity", json_string(""));
        json_object_set_new(spec, "leaseDurationSeconds", json_integer(1));
        if (kube_request(l->cfg.client, ctx, "PUT", l->path, cur, NULL, NULL, NULL, &err)) {
            /* best effort: if the release fails the Lease simply expires */
        }
    }
    json_decref(cur);
    hp_ctx_free(ctx);
}

static void *elector_main(void *arg)
{
    struct kube_leader *l = arg;

    while (!hp_ctx_err(l->ctx)) {
        hp_rc rc = try_acquire_or_renew(l);
        bool was = atomic_load(&l->leader);

        if (rc == HP_OK) {
            l->last_renew_ns = hp_now_ns();
            if (!was) {
                atomic_store(&l->leader, true);
                if (l->cfg.on_started)
                    l->cfg.on_started(l->cfg.arg);
            }
        } else if (was && (rc == HP_ERR_CONFLICT ||
                           hp_now_ns() - l->last_renew_ns >= l->cfg.renew_ms * 1000000)) {
            /* could not renew in time, or someone else holds it now: stop leading */
            atomic_store(&l->leader, false);
            if (l->cfg.on_stopped)
                l->cfg.on_stopped(l->cfg.arg);
        }
        (void)hp_ctx_sleep(l->ctx, l->cfg.retry_ms);
    }
    if (atomic_load(&l->leader)) {
        if (l->release)
            release(l);
        atomic_store(&l->leader, false);
        if (l->cfg.on_stopped)
            l->cfg.on_stopped(l->cfg.arg);
    }
    return NULL;
}

hp_rc kube_leader_start(const struct kube_leader_config *cfg, struct kube_leader **out,
                        struct hp_err *err)
{
    struct kube_leader *l;
    hp_rc rc;

    *out = NULL;
    if (!cfg->client || !cfg->namespace_ || !cfg->name || !cfg->identity || !*cfg->identity)
        return hp_err_field(err, HP_ERR_INVALID, "leader-election",
                            "leader election needs a client, a namespace, a name and an identity");
    l = hp_calloc(1, sizeof(*l));
    if (!l)
        return HP_ERR_NOMEM;
    l->cfg = *cfg;
    if (!l->cfg.lease_ms)
        l->cfg.lease_ms = 15000;
    if (!l->cfg.renew_ms)
        l->cfg.renew_ms = 10000;
    if (!l->cfg.retry_ms)
        l->cfg.retry_ms = 2000;
    if (l->cfg.renew_ms >= l->cfg.lease_ms || l->cfg.retry_ms >= l->cfg.renew_ms) {
        hp_free(l);
        return hp_err_field(err, HP_ERR_INVALID, "leader-elect-renew-deadline",
                            "need retry period < renew deadline < lease duration");
    }
    l->ns = hp_strdup(cfg->namespace_);
    l->name = hp_strdup(cfg->name);
    l->identity = hp_strdup(cfg->identity);
    snprintf(l->list_path, sizeof(l->list_path),
             "/apis/coordination.k8s.io/v1/namespaces/%s/leases", cfg->namespace_);
    snprintf(l->path, sizeof(l->path), "%s/%s", l->list_path, cfg->name);
    rc = l->ns && l->name && l->identity ? hp_ctx_new(NULL, HP_CTX_NO_TIMEOUT, &l->ctx)
                                         : HP_ERR_NOMEM;
    if (!rc && pthread_create(&l->thread, NULL, elector_main, l))
        rc = hp_err_set(err, HP_ERR_NOMEM, "cannot start the leader elector");
    if (rc) {
        hp_ctx_free(l->ctx);
        hp_free(l->ns);
        hp_free(l->name);
        hp_free(l->identity);
        hp_free(l);
        return rc;
    }
    l->started = true;
    *out = l;
    return HP_OK;
}

bool kube_leader_is_leader(struct kube_leader *l)
{
    return atomic_load(&l->leader);
}

void kube_leader_stop(struct kube_leader *l, bool release_lease)
{
    if (!l)
        return;
    l->release = release_lease;
    hp_ctx_cancel(l->ctx);
    if (l->started)
        pthread_join(l->thread, NULL);
    hp_ctx_free(l->ctx);
    hp_free(l->ns);
    hp_free(l->name);
    hp_free(l->identity);
    hp_free(l);
}
