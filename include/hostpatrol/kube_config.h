/*
 * kube_config.h - where and how to reach the Kubernetes API, resolved the way controller-runtime
 * does it:
 *   1. --kubeconfig PATH (must exist);
 *   2. $KUBECONFIG, a ':'-separated list merged like kubectl: for clusters, users and contexts
 *      the first file that names an entry wins; the first non-empty current-context wins;
 *      missing files in the list are skipped;
 *   3. in-cluster: $KUBERNETES_SERVICE_HOST/PORT, with the ServiceAccount token, CA and
 *      namespace under /var/run/secrets/kubernetes.io/serviceaccount/ (the token is a FILE so a
 *      rotated projected token is re-read);
 *   4. ~/.kube/config.
 * --context selects a context instead of current-context. Relative file paths in a kubeconfig
 * are relative to that kubeconfig's directory. *-data fields are base64 PEM, decoded here.
 *
 * Errors name the file and the entry at fault ("kubeconfig /x: context 'dev' not found").
 * Ownership: a loaded kube_config owns every string in it; kube_config_release frees them.
 * Thread-safety: load and release are reentrant; a loaded config is read-only and shareable.
 */
#ifndef HOSTPATROL_KUBE_CONFIG_H
#define HOSTPATROL_KUBE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "hostpatrol/rc.h"

struct kube_exec {
    char *api_version; /* client.authentication.k8s.io/v1 (or v1beta1) */
    char *command;
    char **args; /* NULL-terminated */
    char **env;  /* "NAME=value", NULL-terminated */
};

struct kube_config {
    char *source;     /* the file(s) or "in-cluster" it came from (for messages) */
    char *context;    /* the context used; NULL in-cluster */
    char *server;     /* https://host:port */
    char *namespace_; /* the context's namespace, or "default" */
    char *tls_server_name;
    bool insecure; /* insecure-skip-tls-verify */
    char *ca_file;
    char *ca_pem; /* certificate-authority-data, decoded */
    size_t ca_pem_len;
    char *cert_file, *key_file;
    char *cert_pem, *key_pem;
    size_t cert_pem_len, key_pem_len;
    char *token;      /* a static bearer token */
    char *token_file; /* re-read on use (rotation) */
    bool has_exec;
    struct kube_exec exec;
};

struct kube_config_opts {
    const char *kubeconfig;     /* --kubeconfig, or NULL */
    const char *context;        /* --context, or NULL */
    const char *env_kubeconfig; /* NULL: getenv("KUBECONFIG") */
    const char *home;           /* NULL: getenv("HOME") */
    const char *in_cluster_dir; /* NULL: /var/run/secrets/kubernetes.io/serviceaccount */
    const char *service_host;   /* NULL: getenv("KUBERNETES_SERVICE_HOST") */
    const char *service_port;   /* NULL: getenv("KUBERNETES_SERVICE_PORT") */
};

/* kube_config_load: resolve and load (see above). *out is zeroed first; release it. */
hp_rc kube_config_load(const struct kube_config_opts *o, struct kube_config *out,
                       struct hp_err *err) HP_WUR;
void kube_config_release(struct kube_config *c); /* NULL allowed; c zeroed */

#endif
