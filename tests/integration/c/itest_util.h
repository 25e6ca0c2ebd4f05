/*
 * itest_util.h - helpers shared by the C integration programs (tests/integration/c/itest-*.c):
 * toxiproxy control over its HTTP API, a body sink, and a Kubernetes client from a kubeconfig
 * named by an environment variable. Test code only; failures end the current cmocka test.
 */
#ifndef HOSTPATROL_ITEST_UTIL_H
#define HOSTPATROL_ITEST_UTIL_H

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>

#include "hostpatrol/etcd_client.h"
#include "hostpatrol/kube_client.h"

/* itest_etcd_transport: $HP_ETCD_TRANSPORT ("grpc" or "gateway", the default) */
static inline enum etcd_transport itest_etcd_transport(void)
{
    const char *t = getenv("HP_ETCD_TRANSPORT");

    return t && !strcmp(t, "grpc") ? ETCD_TRANSPORT_GRPC : ETCD_TRANSPORT_GATEWAY;
}

/* itest_discard: a libcurl write callback that drops the body (output would break TAP lines) */
static inline size_t itest_discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* itest_toxi: METHOD $HP_TOXI_API/path with an optional JSON body; fails the test unless 2xx */
static inline void itest_toxi(const char *method, const char *path, const char *body)
{
    char url[512];
    long code = 0;
    CURL *h = curl_easy_init();

    snprintf(url, sizeof(url), "%s%s", getenv("HP_TOXI_API"), path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, itest_discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    if (curl_easy_perform(h) != CURLE_OK)
        fail_msg("toxiproxy %s %s failed", method, path);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    if (code >= 300)
        fail_msg("toxiproxy %s %s: HTTP %ld", method, path, code);
}

/* itest_kube_client: a client for the kubeconfig whose path is in environment variable env */
static inline struct kube_client *itest_kube_client(const char *env)
{
    struct kube_config_opts o = {.kubeconfig = getenv(env), .env_kubeconfig = "", .home = "/x"};
    struct kube_config cfg;
    struct kube_client *c = NULL;
    struct hp_err err = {0};

    if (!o.kubeconfig)
        fail_msg("%s is not set", env);
    if (kube_config_load(&o, &cfg, &err))
        fail_msg("load %s: %s", o.kubeconfig, err.msg);
    if (kube_client_new(&cfg, &c, &err))
        fail_msg("client for %s: %s", o.kubeconfig, err.msg);
    kube_config_release(&cfg);
    return c;
}

#endif
