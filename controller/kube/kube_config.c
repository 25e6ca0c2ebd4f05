/* kube_config.c - kubeconfig / in-cluster resolution (see include/hostpatrol/kube_config.h). */
#include "hostpatrol/kube_config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/b64.h"
#include "hostpatrol/yaml_doc.h"

#define MAX_FILES 32
#define SA_DIR    "/var/run/secrets/kubernetes.io/serviceaccount"

struct kfile {
    char path[4096];
    char dir[4096];
    json_t *doc; /* owned */
};

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        hp_free(v[i]);
    hp_free(v);
}

void kube_config_release(struct kube_config *c)
{
    if (!c)
        return;
    hp_free(c->source);
    hp_free(c->context);
    hp_free(c->server);
    hp_free(c->namespace_);
    hp_free(c->tls_server_name);
    hp_free(c->ca_file);
    hp_free(c->ca_pem);
    hp_free(c->cert_file);
    hp_free(c->key_file);
    hp_free(c->cert_pem);
    if (c->key_pem) {
        explicit_bzero(c->key_pem, c->key_pem_len);
        hp_free(c->key_pem);
    }
    if (c->token) {
        explicit_bzero(c->token, strlen(c->token));
        hp_free(c->token);
    }
    hp_free(c->token_file);
    hp_free(c->exec.api_version);
    hp_free(c->exec.command);
    free_strv(c->exec.args);
    free_strv(c->exec.env);
    memset(c, 0, sizeof(*c));
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));

    return s && *s ? s : NULL;
}

/* find: the entry named `name` in list `list` (clusters/users/contexts), first file wins */
static const json_t *find(const struct kfile *f, size_t n, const char *list, const char *inner,
                          const char *name, size_t *which)
{
    for (size_t i = 0; i < n; i++) {
        const json_t *arr = json_object_get(f[i].doc, list), *e;
        size_t k;

        json_array_foreach(arr, k, e)
        {
            const char *nm = str(e, "name");

            if (nm && !strcmp(nm, name) && json_is_object(json_object_get(e, inner))) {
                *which = i;
                return json_object_get(e, inner);
            }
        }
    }
    return NULL;
}

/* path_in: p made absolute against dir; owned */
static char *path_in(const char *dir, const char *p)
{
    size_t n;
    char *s;

    if (!p)
        return NULL;
    if (p[0] == '/' || !dir[0])
        return hp_strdup(p);
    n = strlen(dir) + strlen(p) + 2;
    s = hp_malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", dir, p);
    return s;
}

static hp_rc data_field(const json_t *o, const char *k, char **out, size_t *len, const char *src,
                        const char *entry, struct hp_err *err)
{
    const char *s = str(o, k);

    if (!s)
        return HP_OK;
    if (hp_b64_decode(s, strlen(s), out, len))
        return hp_err_field(err, HP_ERR_INVALID, k, "kubeconfig %s: %s of '%s' is not base64", src,
                            k, entry);
    return HP_OK;
}

static hp_rc load_files(const char *list, bool must_exist, struct kfile *f, size_t *n,
                        struct hp_err *err)
{
    const char *p = list;

    while (*p && *n < MAX_FILES) {
        size_t len = strcspn(p, ":");
        struct kfile *k = &f[*n];
        char *slash;
        hp_rc rc;

        if (len && len < sizeof(k->path)) {
            memcpy(k->path, p, len);
            k->path[len] = '\0';
            if (access(k->path, R_OK) == 0 || must_exist) {
                json_t *docs = NULL;

                rc = yaml_doc_load_file(k->path, &docs, err);
                if (rc) {
                    if (rc == HP_ERR_IO)
                        hp_err_field(err, HP_ERR_INVALID, "kubeconfig",
                                     "kubeconfig %s cannot be read: %s", k->path, strerror(errno));
                    return rc == HP_ERR_IO ? HP_ERR_INVALID : rc;
                }
                k->doc = json_incref(json_array_get(docs, 0));
                json_decref(docs);
                if (!json_is_object(k->doc)) {
                    json_decref(k->doc);
                    k->doc = NULL;
                    return hp_err_field(err, HP_ERR_INVALID, "kubeconfig",
                                        "kubeconfig %s is not a YAML mapping", k->path);
                }
                snprintf(k->dir, sizeof(k->dir), "%s", k->path);
                slash = strrchr(k->dir, '/');
                if (slash)
                    *slash = '\0';
                else
                    snprintf(k->dir, sizeof(k->dir), ".");
                (*n)++;
            }
        }
        p += len;
        if (*p == ':')
            p++;
    }
    return HP_OK;
}

static char **strv_from(const json_t *arr, const char *name_key, const char *value_key)
{
    size_t n = json_array_size(arr), i, k = 0;
    char **v = hp_calloc(n + 1, sizeof(*v));
    const json_t *e;

    if (!v)
        return NULL;
    json_array_foreach(arr, i, e)
    {
        if (name_key) {
            const char *a = str(e, name_key), *b = json_string_value(json_object_get(e, value_key));
            size_t len;

            if (!a)
                continue;
            len = strlen(a) + (b ? strlen(b) : 0) + 2;
            v[k] = hp_malloc(len);
            if (v[k])
                snprintf(v[k], len, "%s=%s", a, b ? b : "");
        } else {
            v[k] = hp_strdup(json_string_value(e) ? json_string_value(e) : "");
        }
        if (!v[k]) {
            free_strv(v);
            return NULL;
        }
        k++;
    }
    return v;
}

/* from_user: the credentials of user us (borrowed, named us_name) of a kubeconfig in dir (the
 * list of files list, for messages) into c */
static hp_rc from_user(const json_t *us, const char *us_name, const char *dir, const char *list,
                       struct kube_config *c, struct hp_err *err)
{
    hp_rc rc;

    c->cert_file = path_in(dir, str(us, "client-certificate"));
    c->key_file = path_in(dir, str(us, "client-key"));
    rc = data_field(us, "client-certificate-data", &c->cert_pem, &c->cert_pem_len, list, us_name,
                    err);
    if (!rc)
        rc = data_field(us, "client-key-data", &c->key_pem, &c->key_pem_len, list, us_name, err);
    if (rc)
        return rc;
    if ((c->cert_file || c->cert_pem) != (c->key_file || c->key_pem))
        return hp_err_field(err, HP_ERR_INVALID, "client-key",
                            "kubeconfig %s: user '%s' has a client certificate without a key (or a "
                            "key without a certificate)",
                            list, us_name);
    if (str(us, "token"))
        c->token = hp_strdup(str(us, "token"));
    c->token_file = path_in(dir, str(us, "tokenFile"));
    if (json_object_get(us, "auth-provider"))
        return hp_err_field(err, HP_ERR_INVALID, "auth-provider",
                            "kubeconfig %s: user '%s' uses an auth-provider, which is not "
                            "supported: use an exec credential plugin",
                            list, us_name);
    if (json_is_object(json_object_get(us, "exec"))) {
        const json_t *ex = json_object_get(us, "exec");

        if (!str(ex, "command"))
            return hp_err_field(err, HP_ERR_INVALID, "exec",
                                "kubeconfig %s: user '%s' has an exec plugin without a command",
                                list, us_name);
        c->has_exec = true;
        c->exec.command = path_in(strchr(str(ex, "command"), '/') ? dir : "", str(ex, "command"));
        c->exec.api_version = hp_strdup(str(ex, "apiVersion") ? str(ex, "apiVersion")
                                                              : "client.authentication.k8s.io/v1");
        c->exec.args = strv_from(json_object_get(ex, "args"), NULL, NULL);
        c->exec.env = strv_from(json_object_get(ex, "env"), "name", "value");
        if (!c->exec.command || !c->exec.api_version || !c->exec.args || !c->exec.env)
            rc = HP_ERR_NOMEM;
    }
    return rc;
}

static hp_rc from_files(const struct kube_config_opts *o, const char *list, bool must_exist,
                        struct kube_config *c, struct hp_err *err)
{
    struct kfile f[MAX_FILES];
    const json_t *ctx, *cl, *us;
    const char *name = o->context, *cl_name, *us_name;
    size_t n = 0, wc = 0, wu = 0, i;
    hp_rc rc;

    memset(f, 0, sizeof(f));
    rc = load_files(list, must_exist, f, &n, err);
    if (rc)
        goto out;
    if (!n) {
        rc = hp_err_field(err, HP_ERR_NOTFOUND, "kubeconfig", "no kubeconfig file found in %s",
                          list);
        goto out;
    }
    c->source = hp_strdup(list);
    for (i = 0; !name && i < n; i++)
        name = str(f[i].doc, "current-context");
    if (!name) {
        rc = hp_err_field(err, HP_ERR_INVALID, "context",
                          "kubeconfig %s has no current-context: pass --context", list);
        goto out;
    }
    ctx = find(f, n, "contexts", "context", name, &wc);
    if (!ctx) {
        rc = hp_err_field(err, HP_ERR_INVALID, "context", "kubeconfig %s: context '%s' not found",
                          list, name);
        goto out;
    }
    cl_name = str(ctx, "cluster");
    us_name = str(ctx, "user");
    cl = cl_name ? find(f, n, "clusters", "cluster", cl_name, &wc) : NULL;
    if (!cl) {
        rc = hp_err_field(err, HP_ERR_INVALID, "cluster",
                          "kubeconfig %s: cluster '%s' of context '%s' not found", list,
                          cl_name ? cl_name : "", name);
        goto out;
    }
    us = us_name ? find(f, n, "users", "user", us_name, &wu) : NULL;
    c->context = hp_strdup(name);
    c->namespace_ = hp_strdup(str(ctx, "namespace") ? str(ctx, "namespace") : "default");
    if (!str(cl, "server")) {
        rc = hp_err_field(err, HP_ERR_INVALID, "server",
                          "kubeconfig %s: cluster '%s' has no server", list, cl_name);
        goto out;
    }
    c->server = hp_strdup(str(cl, "server"));
    c->insecure = json_is_true(json_object_get(cl, "insecure-skip-tls-verify"));
    if (str(cl, "tls-server-name"))
        c->tls_server_name = hp_strdup(str(cl, "tls-server-name"));
    c->ca_file = path_in(f[wc].dir, str(cl, "certificate-authority"));
    rc = data_field(cl, "certificate-authority-data", &c->ca_pem, &c->ca_pem_len, list, cl_name,
                    err);
    if (rc || !us)
        goto out;
    rc = from_user(us, us_name, f[wu].dir, list, c, err);
out:
    for (i = 0; i < n; i++)
        json_decref(f[i].doc);
    if (!rc && (!c->source || !c->context || !c->namespace_ || !c->server))
        rc = HP_ERR_NOMEM;
    return rc;
}

static hp_rc from_cluster(const struct kube_config_opts *o, const char *host, const char *port,
                          struct kube_config *c, struct hp_err *err)
{
    const char *dir = o->in_cluster_dir ? o->in_cluster_dir : SA_DIR;
    char buf[4200], ns[256] = "default";
    FILE *fns;

    c->source = hp_strdup("in-cluster");
    snprintf(buf, sizeof(buf), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
             port && *port ? port : "443");
    c->server = hp_strdup(buf);
    snprintf(buf, sizeof(buf), "%s/token", dir);
    if (access(buf, R_OK))
        return hp_err_field(err, HP_ERR_INVALID, "token",
                            "in-cluster: cannot read the ServiceAccount token %s: %s", buf,
                            strerror(errno));
    c->token_file = hp_strdup(buf);
    snprintf(buf, sizeof(buf), "%s/ca.crt", dir);
    if (access(buf, R_OK))
        return hp_err_field(err, HP_ERR_INVALID, "ca.crt",
                            "in-cluster: cannot read the cluster CA %s: %s", buf, strerror(errno));
    c->ca_file = hp_strdup(buf);
    snprintf(buf, sizeof(buf), "%s/namespace", dir);
    fns = fopen(buf, "r");
    if (fns) {
        if (fgets(ns, sizeof(ns), fns))
            ns[strcspn(ns, "\r\n")] = '\0';
        fclose(fns);
    }
    c->namespace_ = hp_strdup(*ns ? ns : "default");
    return c->source && c->server && c->token_file && c->ca_file && c->namespace_ ? HP_OK
                                                                                  : HP_ERR_NOMEM;
}

hp_rc kube_config_load(const struct kube_config_opts *o, struct kube_config *c, struct hp_err *err)
{
    const char *env = o->env_kubeconfig ? o->env_kubeconfig : getenv("KUBECONFIG");
    const char *host = o->service_host ? o->service_host : getenv("KUBERNETES_SERVICE_HOST");
    const char *port = o->service_port ? o->service_port : getenv("KUBERNETES_SERVICE_PORT");
    const char *home = o->home ? o->home : getenv("HOME");
    char path[4200];
    hp_rc rc;

    memset(c, 0, sizeof(*c));
    if (o->kubeconfig && *o->kubeconfig)
        rc = from_files(o, o->kubeconfig, true, c, err);
    else if (env && *env)
        rc = from_files(o, env, false, c, err);
    else if (host && *host)
        rc = from_cluster(o, host, port, c, err);
    else if (home && *home) {
        snprintf(path, sizeof(path), "%s/.kube/config", home);
        rc = from_files(o, path, false, c, err);
    } else
        rc = hp_err_field(err, HP_ERR_NOTFOUND, "kubeconfig",
                          "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or "
                          "run in a cluster");
    if (rc)
        kube_config_release(c);
    return rc;
}
