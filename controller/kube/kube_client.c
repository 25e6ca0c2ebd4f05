/* kube_client.c - Kubernetes API requests (see include/hostpatrol/kube_client.h). */
#include "hostpatrol/kube_client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/buf.h"
#include "hostpatrol/b64.h"
#include "hostpatrol/http_conn.h"

extern char **environ;

#define EXEC_TIMEOUT_MS 30000
#define EXEC_OUT_MAX    (1u << 20)
#define EVENT_MAX       ((64u << 20) - 1) /* a watch event (one line), its NUL excluded */
#define CALL_CAP_MS     60000

struct kube_client {
    char *base; /* scheme://host:port[/prefix] as requests use it */
    char *namespace_;
    struct http_tls tls; /* points into the owned copies below */
    char *ca_file, *cert_file, *key_file, *connect_to;
    char *ca_pem, *cert_pem, *key_pem;
    char *token, *token_file;
    bool has_exec;
    char *exec_cmd, **exec_argv, **exec_envp, *exec_info;
    struct http_pool *pool;

    pthread_mutex_t lock; /* guards the credential cache below */
    char *cached_token;   /* from token_file or the exec plugin */
    struct timespec token_mtime;
    char *exec_cert, *exec_key; /* PEM from the exec plugin */
    size_t exec_cert_len, exec_key_len;
    time_t exec_expiry; /* 0: none given */
};

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        hp_free(v[i]);
    hp_free(v);
}

static void wipe(char *s, size_t n)
{
    if (s) {
        explicit_bzero(s, n);
        hp_free(s);
    }
}

void kube_client_free(struct kube_client *c)
{
    if (!c)
        return;
    hp_free(c->base);
    hp_free(c->namespace_);
    hp_free(c->ca_file);
    hp_free(c->cert_file);
    hp_free(c->key_file);
    hp_free(c->connect_to);
    hp_free(c->ca_pem);
    hp_free(c->cert_pem);
    wipe(c->key_pem, c->tls.key_pem_len);
    wipe(c->token, c->token ? strlen(c->token) : 0);
    hp_free(c->token_file);
    hp_free(c->exec_cmd);
    free_strv(c->exec_argv);
    free_strv(c->exec_envp);
    hp_free(c->exec_info);
    wipe(c->cached_token, c->cached_token ? strlen(c->cached_token) : 0);
    hp_free(c->exec_cert);
    wipe(c->exec_key, c->exec_key_len);
    http_pool_free(c->pool);
    pthread_mutex_destroy(&c->lock);
    hp_free(c);
}

/* base_url: the server URL, with tls_server_name as its host when set (then connect_to sends
 * the connection to the real host) */
static hp_rc base_url(struct kube_client *c, const struct kube_config *cfg, struct hp_err *err)
{
    const char *s = cfg->server, *h, *end, *colon;
    char buf[1200];
    long port;

    if (strncmp(s, "https://", 8) && strncmp(s, "http://", 7))
        return hp_err_field(err, HP_ERR_INVALID, "server", "%s: server '%s' is not an http(s) URL",
                            cfg->source, s);
    if (!cfg->tls_server_name) {
        size_t n = strlen(s);

        while (n && s[n - 1] == '/')
            n--;
        c->base = hp_strndup(s, n);
        return c->base ? HP_OK : HP_ERR_NOMEM;
    }
    h = strstr(s, "://") + 3;
    end = h + strcspn(h, "/");
    colon = (*h == '[') ? memchr(h, ']', (size_t)(end - h)) : NULL; /* within the host part */
    colon = memchr(colon ? colon : h, ':', (size_t)(end - (colon ? colon : h)));
    port = colon ? strtol(colon + 1, NULL, 10) : (s[4] == 's' ? 443 : 80);
    snprintf(buf, sizeof(buf), "%s:%ld:%.*s:%ld", cfg->tls_server_name, port,
             (int)((colon ? colon : end) - h), h, port);
    c->connect_to = hp_strdup(buf);
    snprintf(buf, sizeof(buf), "https://%s:%ld%s", cfg->tls_server_name, port, end);
    c->base = hp_strdup(buf);
    return c->base && c->connect_to ? HP_OK : HP_ERR_NOMEM;
}

static char **strv_dup(char **v, char **extra_head)
{
    size_t n = 0, m = 0, i;
    char **d;

    while (v && v[n])
        n++;
    while (extra_head && extra_head[m])
        m++;
    d = hp_calloc(n + m + 1, sizeof(*d));
    if (!d)
        return NULL;
    for (i = 0; i < m; i++)
        if (!(d[i] = hp_strdup(extra_head[i])))
            goto nomem;
    for (i = 0; i < n; i++)
        if (!(d[m + i] = hp_strdup(v[i])))
            goto nomem;
    return d;
nomem:
    free_strv(d);
    return NULL;
}

hp_rc kube_client_new(const struct kube_config *cfg, struct kube_client **out, struct hp_err *err)
{
    struct kube_client *c = hp_calloc(1, sizeof(*c));
    hp_rc rc;

    *out = NULL;
    if (!c)
        return HP_ERR_NOMEM;
    pthread_mutex_init(&c->lock, NULL);
    rc = http_pool_new(&c->pool);
    if (!rc)
        rc = base_url(c, cfg, err);
    if (rc)
        goto out;
    c->namespace_ = hp_strdup(cfg->namespace_ ? cfg->namespace_ : "default");
    c->ca_file = cfg->ca_file ? hp_strdup(cfg->ca_file) : NULL;
    c->cert_file = cfg->cert_file ? hp_strdup(cfg->cert_file) : NULL;
    c->key_file = cfg->key_file ? hp_strdup(cfg->key_file) : NULL;
    c->ca_pem = cfg->ca_pem ? hp_strndup(cfg->ca_pem, cfg->ca_pem_len) : NULL;
    c->cert_pem = cfg->cert_pem ? hp_strndup(cfg->cert_pem, cfg->cert_pem_len) : NULL;
    c->key_pem = cfg->key_pem ? hp_strndup(cfg->key_pem, cfg->key_pem_len) : NULL;
    c->token = cfg->token ? hp_strdup(cfg->token) : NULL;
    c->token_file = cfg->token_file ? hp_strdup(cfg->token_file) : NULL;
    if (!c->namespace_ || (cfg->ca_file && !c->ca_file) || (cfg->cert_file && !c->cert_file) ||
        (cfg->key_file && !c->key_file) || (cfg->ca_pem && !c->ca_pem) ||
        (cfg->cert_pem && !c->cert_pem) || (cfg->key_pem && !c->key_pem) ||
        (cfg->token && !c->token) || (cfg->token_file && !c->token_file)) {
        rc = HP_ERR_NOMEM;
        goto out;
    }
    if (cfg->has_exec) {
        char info[256], *head[] = {NULL, NULL};
        char *argv0[] = {cfg->exec.command, NULL};
        char **args;

        snprintf(info, sizeof(info),
                 "KUBERNETES_EXEC_INFO={\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\","
                 "\"spec\":{\"interactive\":false}}",
                 cfg->exec.api_version);
        c->exec_info = hp_strdup(info);
        head[0] = c->exec_info;
        c->has_exec = true;
        c->exec_cmd = hp_strdup(cfg->exec.command);
        args = strv_dup(cfg->exec.args, argv0);
        c->exec_argv = args;
        /* environment: the plugin's own variables and the exec info before ours */
        {
            char **extra = strv_dup(cfg->exec.env, head);

            c->exec_envp = extra ? strv_dup(environ, extra) : NULL;
            free_strv(extra);
        }
        if (!c->exec_info || !c->exec_cmd || !c->exec_argv || !c->exec_envp) {
            rc = HP_ERR_NOMEM;
            goto out;
        }
    }
    c->tls = (struct http_tls){.ca_file = c->ca_file,
                               .ca_pem = c->ca_pem,
                               .ca_pem_len = cfg->ca_pem_len,
                               .cert_file = c->cert_file,
                               .key_file = c->key_file,
                               .cert_pem = c->cert_pem,
                               .cert_pem_len = cfg->cert_pem_len,
                               .key_pem = c->key_pem,
                               .key_pem_len = cfg->key_pem_len,
                               .insecure = cfg->insecure,
                               .connect_to = c->connect_to};
out:
    if (rc) {
        kube_client_free(c);
        return rc;
    }
    *out = c;
    return HP_OK;
}

const char *kube_client_namespace(const struct kube_client *c)
{
    return c->namespace_;
}

/* ---- credentials ---- */

/* read_token_file: re-read when its mtime changed (caller holds the lock) */
static hp_rc read_token_file(struct kube_client *c, struct hp_err *err)
{
    struct stat st;
    char buf[16384];
    size_t n;
    FILE *f;

    if (stat(c->token_file, &st))
        return hp_err_field(err, HP_ERR_AUTH, "tokenFile", "cannot read token file %s: %s",
                            c->token_file, strerror(errno));
    if (c->cached_token && st.st_mtim.tv_sec == c->token_mtime.tv_sec &&
        st.st_mtim.tv_nsec == c->token_mtime.tv_nsec)
        return HP_OK;
    f = fopen(c->token_file, "r");
    if (!f)
        return hp_err_field(err, HP_ERR_AUTH, "tokenFile", "cannot read token file %s: %s",
                            c->token_file, strerror(errno));
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    wipe(c->cached_token, c->cached_token ? strlen(c->cached_token) : 0);
    c->cached_token = hp_strdup(buf);
    explicit_bzero(buf, sizeof(buf));
    c->token_mtime = st.st_mtim;
    return c->cached_token ? HP_OK : HP_ERR_NOMEM;
}

static time_t parse_rfc3339(const char *s)
{
    struct tm tm = {0};
    const char *end;

    if (!s)
        return 0;
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return 0;
    return timegm(&tm);
}

/* run_exec: run the credential plugin and cache its answer (caller holds the lock) */
static hp_rc run_exec(struct kube_client *c, struct hp_ctx *ctx, struct hp_err *err)
{
    posix_spawn_file_actions_t fa;
    int out[2], status = 0;
    struct hp_buf text; /* the plugin's output: a credential, wiped before it is freed */
    json_t *cred = NULL, *st;
    struct hp_ctx *limit = NULL;
    pid_t pid;
    hp_rc rc = HP_OK;

    if (pipe2(out, O_CLOEXEC))
        return hp_err_set(err, HP_ERR_IO, "exec plugin %s: pipe: %s", c->exec_cmd, strerror(errno));
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    if (posix_spawnp(&pid, c->exec_cmd, &fa, NULL, c->exec_argv, c->exec_envp)) {
        posix_spawn_file_actions_destroy(&fa);
        close(out[0]);
        close(out[1]);
        return hp_err_field(err, HP_ERR_AUTH, "exec", "exec plugin %s cannot be started: %s",
                            c->exec_cmd, strerror(errno));
    }
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    hp_buf_init(&text, EXEC_OUT_MAX);
    rc = hp_ctx_new(ctx, EXEC_TIMEOUT_MS, &limit);
    while (!rc) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        size_t len;
        ssize_t n;
        char *at;
        int ready;

        rc = hp_ctx_poll(limit, &p, 1, &ready);
        if (rc)
            break;
        len = hp_buf_len(&text);
        if (hp_buf_add_space(&text, 4096, &at)) { /* past EXEC_OUT_MAX, or no memory */
            rc = hp_err_set(err, HP_ERR_PROTOCOL, "exec plugin %s: output too large", c->exec_cmd);
            break;
        }
        n = read(out[0], at, 4096);
        hp_buf_truncate(&text, len + (n > 0 ? (size_t)n : 0));
        if (n <= 0)
            break;
    }
    close(out[0]);
    hp_ctx_free(limit);
    if (rc) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        explicit_bzero(hp_buf_data(&text), hp_buf_len(&text));
        hp_buf_release(&text);
        return rc == HP_ERR_TIMEOUT
                   ? hp_err_field(err, HP_ERR_AUTH, "exec", "exec plugin %s did not answer in time",
                                  c->exec_cmd)
                   : rc;
    }
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        explicit_bzero(hp_buf_data(&text), hp_buf_len(&text));
        hp_buf_release(&text);
        return hp_err_field(err, HP_ERR_AUTH, "exec", "exec plugin %s failed (exit status %d)",
                            c->exec_cmd, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    cred = json_loadb(hp_buf_data(&text), hp_buf_len(&text), 0, NULL);
    explicit_bzero(hp_buf_data(&text), hp_buf_len(&text));
    hp_buf_release(&text);
    st = json_object_get(cred, "status");
    if (!json_is_object(st)) {
        json_decref(cred);
        return hp_err_field(err, HP_ERR_AUTH, "exec",
                            "exec plugin %s did not print an ExecCredential with a status",
                            c->exec_cmd);
    }
    wipe(c->cached_token, c->cached_token ? strlen(c->cached_token) : 0);
    c->cached_token = NULL;
    hp_free(c->exec_cert);
    wipe(c->exec_key, c->exec_key_len);
    c->exec_cert = c->exec_key = NULL;
    if (json_string_value(json_object_get(st, "token")))
        c->cached_token = hp_strdup(json_string_value(json_object_get(st, "token")));
    if (json_string_value(json_object_get(st, "clientCertificateData")) &&
        json_string_value(json_object_get(st, "clientKeyData"))) {
        const char *cd = json_string_value(json_object_get(st, "clientCertificateData"));
        const char *kd = json_string_value(json_object_get(st, "clientKeyData"));

        c->exec_cert = hp_strdup(cd);
        c->exec_cert_len = strlen(cd);
        c->exec_key = hp_strdup(kd);
        c->exec_key_len = strlen(kd);
    }
    c->exec_expiry = parse_rfc3339(json_string_value(json_object_get(st, "expirationTimestamp")));
    json_decref(cred);
    if (!c->cached_token && !c->exec_cert)
        return hp_err_field(err, HP_ERR_AUTH, "exec",
                            "exec plugin %s gave neither a token nor a client certificate",
                            c->exec_cmd);
    return HP_OK;
}

/* The credentials of one request: TLS (with the exec plugin's client certificate, if any) and
 * the Authorization header. creds_release wipes them. */
struct creds {
    struct http_tls tls;
    char *cert, *key;  /* owned PEM copies from the exec plugin, or NULL */
    char authz[16500]; /* "Authorization: Bearer ..." or "" */
};

static void creds_release(struct creds *k)
{
    hp_free(k->cert);
    wipe(k->key, k->key ? strlen(k->key) : 0);
    explicit_bzero(k->authz, sizeof(k->authz));
    k->cert = k->key = NULL;
}

/* creds_get: fill k for one request (refresh: run the exec plugin again). On error k holds
 * nothing to release. */
static hp_rc creds_get(struct kube_client *c, struct hp_ctx *ctx, bool refresh, struct creds *k,
                       struct hp_err *err)
{
    hp_rc rc = HP_OK;

    k->cert = k->key = NULL;
    k->authz[0] = '\0';
    k->tls = c->tls;
    pthread_mutex_lock(&c->lock);
    if (c->has_exec) {
        if (refresh || (!c->cached_token && !c->exec_cert) ||
            (c->exec_expiry && time(NULL) + 10 >= c->exec_expiry))
            rc = run_exec(c, ctx, err);
        if (!rc && c->exec_cert) {
            k->cert = hp_strndup(c->exec_cert, c->exec_cert_len);
            k->key = hp_strndup(c->exec_key, c->exec_key_len);
            k->tls.cert_pem = k->cert;
            k->tls.cert_pem_len = c->exec_cert_len;
            k->tls.key_pem = k->key;
            k->tls.key_pem_len = c->exec_key_len;
            k->tls.cert_file = k->tls.key_file = NULL;
            if (!k->cert || !k->key)
                rc = HP_ERR_NOMEM;
        }
    } else if (c->token_file) {
        rc = read_token_file(c, err);
    }
    if (!rc) {
        const char *t = c->has_exec || c->token_file ? c->cached_token : c->token;

        if (t)
            snprintf(k->authz, sizeof(k->authz), "Authorization: Bearer %s", t);
    }
    pthread_mutex_unlock(&c->lock);
    if (rc)
        creds_release(k);
    return rc;
}

/* ---- requests ---- */

static hp_rc rc_for(long code)
{
    switch (code) {
    case 404:
        return HP_ERR_NOTFOUND;
    case 409:
        return HP_ERR_CONFLICT;
    case 410:
        return HP_ERR_GONE;
    case 401:
    case 403:
        return HP_ERR_AUTH;
    case 400:
    case 422:
    case 413:
    case 415:
        return HP_ERR_INVALID;
    case 429:
        return HP_ERR_FULL;
    default:
        return code >= 500 ? HP_ERR_UNAVAILABLE : HP_ERR_PROTOCOL;
    }
}

static void parse_status(const char *body, size_t len, long code, struct kube_status *st)
{
    json_t *j = json_loadb(body, len, 0, NULL), *causes, *cz;
    size_t i;

    memset(st, 0, sizeof(*st));
    st->code = code;
    snprintf(st->reason, sizeof(st->reason), "%s",
             json_string_value(json_object_get(j, "reason")) ?: "");
    snprintf(st->message, sizeof(st->message), "%s",
             json_string_value(json_object_get(j, "message"))
                 ?: (j ? "" : "(not a Status object)"));
    causes = json_object_get(json_object_get(j, "details"), "causes");
    json_array_foreach(causes, i, cz)
    {
        if (st->n_causes == KUBE_MAX_CAUSES)
            break;
        snprintf(st->causes[st->n_causes].field, sizeof(st->causes[0].field), "%s",
                 json_string_value(json_object_get(cz, "field")) ?: "");
        snprintf(st->causes[st->n_causes].reason, sizeof(st->causes[0].reason), "%s",
                 json_string_value(json_object_get(cz, "reason")) ?: "");
        snprintf(st->causes[st->n_causes].message, sizeof(st->causes[0].message), "%s",
                 json_string_value(json_object_get(cz, "message")) ?: "");
        st->n_causes++;
    }
    json_decref(j);
}

hp_rc kube_request(struct kube_client *c, struct hp_ctx *ctx, const char *method, const char *path,
                   json_t *body, const char *content_type, json_t **out, struct kube_status *stp,
                   struct hp_err *err)
{
    struct kube_status local = {0};
    struct kube_status *st = stp ? stp : &local;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    char url[4096], ctype[128];
    struct creds *k = hp_malloc(sizeof(*k)); /* 16 KiB: not on the stack */
    hp_rc rc = HP_OK;
    int attempt;

    if (out)
        *out = NULL;
    memset(st, 0, sizeof(*st));
    if ((body && !text) || !k) {
        hp_free(text);
        hp_free(k);
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory preparing a request");
    }
    snprintf(url, sizeof(url), "%s%s", c->base, path);
    snprintf(ctype, sizeof(ctype), "Content-Type: %s",
             content_type ? content_type : "application/json");
    for (attempt = 0; attempt < 2; attempt++) {
        const char *headers[4] = {"Accept: application/json", ctype, NULL, NULL};
        struct http_conn *conn;
        struct http_result x;
        int64_t t = hp_ctx_call_timeout_ms(ctx, 0, CALL_CAP_MS);

        if (t < 0) {
            rc = hp_err_set(err, hp_ctx_err(ctx) ? hp_ctx_err(ctx) : HP_ERR_TIMEOUT,
                            "%s %s: deadline passed before the request was sent", method, path);
            break;
        }
        rc = creds_get(c, ctx, attempt > 0, k, err);
        if (rc)
            break;
        if (k->authz[0])
            headers[2] = k->authz;
        conn = http_pool_get(c->pool);
        if (!conn) {
            rc = HP_ERR_NOMEM;
        } else {
            struct http_request req = {.method = method,
                                       .url = url,
                                       .body = text,
                                       .body_len = text ? strlen(text) : 0,
                                       .headers = headers,
                                       .timeout_ms = t,
                                       /* TCP and TLS may take the request's time: an
                                        * apiserver slower than 2 s away is still reached */
                                       .connect_timeout_ms = t,
                                       .tls = &k->tls};

            http_conn_perform(conn, ctx, &req, &x);
            if (x.cc != CURLE_OK) {
                rc = x.ctx_rc                           ? x.ctx_rc
                     : x.cc == CURLE_OPERATION_TIMEDOUT ? HP_ERR_TIMEOUT
                     : http_tls_refused(x.cc, x.errbuf) ? HP_ERR_AUTH
                                                        : HP_ERR_UNAVAILABLE;
                hp_err_set(err, rc, "%s %s%s: %s", method, c->base, path,
                           x.ctx_rc == HP_ERR_CANCELED ? "cancelled"
                           : x.ctx_rc                  ? "deadline passed"
                           : *x.errbuf                 ? x.errbuf
                                                       : curl_easy_strerror(x.cc));
            } else if (x.status >= 200 && x.status < 300) {
                if (out && x.body_len) {
                    *out = json_loadb(x.body, x.body_len, 0, NULL);
                    if (!*out)
                        rc = hp_err_set(err, HP_ERR_PROTOCOL, "%s %s: the answer is not JSON",
                                        method, path);
                }
            } else {
                parse_status(x.body, x.body_len, x.status, st);
                rc = rc_for(x.status);
                hp_err_set(err, rc, "%s %s: %ld %s: %s", method, path, x.status,
                           st->reason[0] ? st->reason : "error", st->message);
                if (err) {
                    err->status = x.status;
                    if (st->n_causes)
                        snprintf(err->field, sizeof(err->field), "%.*s",
                                 (int)sizeof(err->field) - 1, st->causes[0].field);
                }
            }
            http_pool_put(c->pool, conn);
        }
        creds_release(k);
        /* a rejected credential from a plugin or a file may be stale: renew once */
        if (rc == HP_ERR_AUTH && st->code == 401 && (c->has_exec || c->token_file) && !attempt)
            continue;
        break;
    }
    hp_free(text);
    hp_free(k);
    return rc;
}

/* ---- streams ---- */

struct liner {
    bool (*on_object)(void *arg, json_t *obj);
    void *arg;
    struct hp_buf line; /* an unfinished line: one event, below 64 MiB */
    bool bad;           /* a line was not JSON */
    char raw[16384];    /* the stream's first bytes, for an error answer's Status */
    size_t raw_len;
};

static bool on_chunk(void *arg, const char *p, size_t n)
{
    struct liner *l = arg;
    size_t start = 0, i, len;
    const char *buf;

    if (l->raw_len < sizeof(l->raw) - 1) {
        size_t k = n < sizeof(l->raw) - 1 - l->raw_len ? n : sizeof(l->raw) - 1 - l->raw_len;

        memcpy(l->raw + l->raw_len, p, k);
        l->raw_len += k;
    }
    if (hp_buf_add(&l->line, p, n))
        return false; /* one event of 64 MiB or more: refused (or no memory for it) */
    buf = hp_buf_data(&l->line);
    len = hp_buf_len(&l->line);
    for (i = 0; i < len; i++) {
        json_t *obj;
        bool go;

        if (buf[i] != '\n')
            continue;
        if (i > start) {
            obj = json_loadb(buf + start, i - start, 0, NULL);
            if (!obj) {
                l->bad = true;
                return false;
            }
            go = l->on_object(l->arg, obj);
            json_decref(obj);
            if (!go) {
                hp_buf_reset(&l->line);
                return false;
            }
        }
        start = i + 1;
    }
    hp_buf_consume(&l->line, start);
    return true;
}

hp_rc kube_stream(struct kube_client *c, struct hp_ctx *ctx, const char *path, int64_t stall_ms,
                  bool (*on_object)(void *arg, json_t *obj), void *arg, struct kube_status *stp,
                  struct hp_err *err)
{
    struct kube_status local = {0};
    struct kube_status *st = stp ? stp : &local;
    const char *headers[3] = {"Accept: application/json", NULL, NULL};
    struct liner *lp = hp_calloc(1, sizeof(*lp));
    char url[4096];
    struct creds *k = hp_malloc(sizeof(*k));
    struct http_conn *conn;
    struct http_result x;
    hp_rc rc;

    memset(st, 0, sizeof(*st));
    if (!lp || !k) {
        hp_free(lp);
        hp_free(k);
        return HP_ERR_NOMEM;
    }
    lp->on_object = on_object;
    lp->arg = arg;
    hp_buf_init(&lp->line, EVENT_MAX);
    snprintf(url, sizeof(url), "%s%s", c->base, path);
    rc = creds_get(c, ctx, false, k, err);
    if (rc) {
        hp_free(lp);
        hp_free(k);
        return rc;
    }
    if (k->authz[0])
        headers[1] = k->authz;
    conn = http_pool_get(c->pool);
    if (!conn) {
        rc = HP_ERR_NOMEM;
        goto out;
    }
    {
        struct http_request req = {.method = "GET",
                                   .url = url,
                                   .headers = headers,
                                   .tls = &k->tls,
                                   .connect_timeout_ms = stall_ms, /* 0: 2 s */
                                   .stall_ms = stall_ms,
                                   .on_data = on_chunk,
                                   .arg = lp};

        http_conn_perform(conn, ctx, &req, &x);
    }
    if (x.status && (x.status < 200 || x.status >= 300)) {
        /* an error answer is a Status, not a stream: it went through on_chunk as one line */
        parse_status(lp->raw, lp->raw_len, x.status, st);
        rc = rc_for(x.status);
        hp_err_set(err, rc, "GET %s: %ld %s: %s", path, x.status,
                   st->reason[0] ? st->reason : "error", st->message);
        if (err)
            err->status = x.status;
    } else if (x.stopped && !lp->bad) {
        rc = HP_OK; /* the caller ended the stream */
    } else if (lp->bad) {
        rc = hp_err_set(err, HP_ERR_PROTOCOL, "GET %s: a stream line is not JSON", path);
    } else if (x.cc == CURLE_OK) {
        rc = HP_OK; /* the server ended the stream */
    } else {
        rc = x.ctx_rc                           ? x.ctx_rc
             : x.cc == CURLE_OPERATION_TIMEDOUT ? HP_ERR_TIMEOUT
                                                : HP_ERR_UNAVAILABLE;
        hp_err_set(err, rc, "GET %s%s: %s", c->base, path,
                   x.ctx_rc == HP_ERR_CANCELED        ? "cancelled"
                   : x.cc == CURLE_OPERATION_TIMEDOUT ? "stalled or timed out"
                   : *x.errbuf                        ? x.errbuf
                                                      : curl_easy_strerror(x.cc));
    }
    http_pool_put(c->pool, conn);
out:
    creds_release(k);
    hp_free(k);
    hp_buf_release(&lp->line);
    hp_free(lp);
    return rc;
}
