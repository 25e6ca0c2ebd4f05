/* etcd_client.c - etcd v3 JSON gateway client: transport, classification, KV and lease calls.
 * See include/hostpatrol/etcd_client.h for the contract. */
#include "hostpatrol/etcd_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd/etcd_internal.h"
#include "etcd/etcd_pb.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/b64.h"
#include "hostpatrol/http_conn.h"

#define RESP_MAX      (256u << 20) /* refuse answers above 256 MiB */
#define MAX_ENDPOINTS 16

struct endpoint {
    char *url;        /* base URL without trailing slash; host replaced by server_name if set */
    char *connect_to; /* CURLOPT_CONNECT_TO entry when server_name is set, else NULL */
};

struct etcd_client {
    struct endpoint ep[MAX_ENDPOINTS];
    size_t n_ep;
    char *ca_file, *cert_file, *key_file;
    char *username, *password;
    int64_t connect_timeout_ms, request_cap_ms;
    struct http_pool *pool; /* keep-alive connections (gateway) */
    enum etcd_transport transport;
    struct grpc_client *grpc; /* gRPC: the multiplexed HTTP/2 connections */
    pthread_mutex_t lock;     /* guards: current, answered, token */
    size_t current;           /* index of the endpoint that answered last */
    bool answered;            /* some endpoint has answered (any HTTP status) */
    char *token;              /* auth token, NULL until authenticated */
};

enum etcd_outcome etcd_outcome_of(hp_rc rc)
{
    if (rc == HP_OK)
        return ETCD_OUTCOME_OK;
    if (rc == HP_ERR_UNKNOWN_OUTCOME)
        return ETCD_OUTCOME_UNKNOWN;
    return ETCD_OUTCOME_FAILED;
}

const char *etcd_outcome_name(enum etcd_outcome o)
{
    switch (o) {
    case ETCD_OUTCOME_OK:
        return "ok";
    case ETCD_OUTCOME_FAILED:
        return "failed";
    case ETCD_OUTCOME_UNKNOWN:
        return "unknown";
    }
    return "unknown";
}

static char *dup_or_null(const char *s)
{
    return s && *s ? hp_strdup(s) : NULL;
}

/* parse_endpoint: validate one "scheme://host[:port][/]" and fill e. */
static hp_rc parse_endpoint(const char *s, size_t n, const char *server_name, struct endpoint *e,
                            struct hp_err *err)
{
    char url[512], host[256];
    const char *p, *hostp, *end = s + n;
    size_t hl;
    long port;
    int https;

    if (n == 0 || n >= sizeof(url))
        return hp_err_field(err, HP_ERR_INVALID, "endpoints",
                            "an endpoint is empty or longer than %zu bytes", sizeof(url) - 1);
    if (n > 8 && !strncmp(s, "https://", 8)) {
        https = 1;
        hostp = s + 8;
    } else if (n > 7 && !strncmp(s, "http://", 7)) {
        https = 0;
        hostp = s + 7;
    } else {
        return hp_err_field(err, HP_ERR_INVALID, "endpoints",
                            "endpoint '%.*s' is not an http:// or https:// URL", (int)n, s);
    }
    while (end > hostp && end[-1] == '/')
        end--;
    for (p = hostp; p < end; p++)
        if (*p == '@' || *p == '/' || *p == '?' || *p == '#' || *p == ' ' || *p == '\t')
            return hp_err_field(err, HP_ERR_INVALID, "endpoints",
                                "endpoint '%.*s' must be scheme://host[:port] (no user, path or "
                                "query)",
                                (int)n, s);
    /* host part: [v6] or name, then optional :port */
    if (hostp < end && *hostp == '[') {
        p = memchr(hostp, ']', (size_t)(end - hostp));
        if (!p)
            return hp_err_field(err, HP_ERR_INVALID, "endpoints",
                                "endpoint '%.*s': unterminated IPv6 address", (int)n, s);
        p++;
    } else {
        p = memchr(hostp, ':', (size_t)(end - hostp));
        if (!p)
            p = end;
    }
    hl = (size_t)(p - hostp);
    if (hl == 0 || hl >= sizeof(host))
        return hp_err_field(err, HP_ERR_INVALID, "endpoints", "endpoint '%.*s' has no host", (int)n,
                            s);
    memcpy(host, hostp, hl);
    host[hl] = '\0';
    port = https ? 443 : 80;
    if (p < end) {
        char *q;

        if (*p != ':')
            return hp_err_field(err, HP_ERR_INVALID, "endpoints",
                                "endpoint '%.*s': unexpected text after the host", (int)n, s);
        errno = 0;
        port = strtol(p + 1, &q, 10);
        if (errno || q != end || port < 1 || port > 65535)
            return hp_err_field(err, HP_ERR_INVALID, "endpoints",
                                "endpoint '%.*s': port must be 1-65535", (int)n, s);
    }
    if (server_name && *server_name) {
        char ct[600];

        if (!https)
            return hp_err_field(err, HP_ERR_INVALID, "server_name",
                                "a TLS server name needs https:// endpoints, not '%.*s'", (int)n,
                                s);
        snprintf(url, sizeof(url), "https://%s:%ld", server_name, port);
        snprintf(ct, sizeof(ct), "%s:%ld:%s:%ld", server_name, port, host, port);
        e->connect_to = hp_strdup(ct);
        if (!e->connect_to)
            return HP_ERR_NOMEM;
    } else {
        snprintf(url, sizeof(url), "%s://%s:%ld", https ? "https" : "http", host, port);
    }
    e->url = hp_strdup(url);
    return e->url ? HP_OK : HP_ERR_NOMEM;
}

static hp_rc check_file(const char *path, const char *field, struct hp_err *err)
{
    FILE *f;

    if (!path || !*path)
        return HP_OK;
    f = fopen(path, "r");
    if (!f)
        return hp_err_field(err, HP_ERR_INVALID, field, "cannot read %s '%s': %s", field, path,
                            strerror(errno));
    fclose(f);
    return HP_OK;
}

hp_rc etcd_client_new(const struct etcd_config *cfg, struct etcd_client **out, struct hp_err *err)
{
    struct etcd_client *c;
    const char *s, *comma;
    hp_rc rc = HP_OK;

    *out = NULL;
    if (!cfg->endpoints || !*cfg->endpoints)
        return hp_err_field(err, HP_ERR_INVALID, "endpoints", "no etcd endpoint given");
    if ((cfg->cert_file && *cfg->cert_file) != (cfg->key_file && *cfg->key_file))
        return hp_err_field(err, HP_ERR_INVALID, cfg->cert_file ? "key_file" : "cert_file",
                            "a client certificate needs both cert_file and key_file");
    if ((cfg->username && *cfg->username) && !cfg->password)
        return hp_err_field(err, HP_ERR_INVALID, "password", "etcd user '%s' has no password",
                            cfg->username);
    rc = check_file(cfg->ca_file, "ca_file", err);
    if (!rc)
        rc = check_file(cfg->cert_file, "cert_file", err);
    if (!rc)
        rc = check_file(cfg->key_file, "key_file", err);
    if (rc)
        return rc;
    c = hp_calloc(1, sizeof(*c));
    if (!c)
        return HP_ERR_NOMEM;
    pthread_mutex_init(&c->lock, NULL);
    rc = http_pool_new(&c->pool);
    if (rc)
        goto out;
    for (s = cfg->endpoints; *s; s = comma + 1) {
        size_t n;

        comma = strchr(s, ',');
        if (!comma)
            comma = s + strlen(s);
        n = (size_t)(comma - s);
        while (n && (*s == ' '))
            s++, n--;
        while (n && s[n - 1] == ' ')
            n--;
        if (c->n_ep == MAX_ENDPOINTS) {
            rc = hp_err_field(err, HP_ERR_INVALID, "endpoints", "more than %d endpoints",
                              MAX_ENDPOINTS);
            goto out;
        }
        rc = parse_endpoint(s, n, cfg->server_name, &c->ep[c->n_ep], err);
        if (rc)
            goto out;
        c->n_ep++;
        if (!*comma)
            break;
    }
    c->ca_file = dup_or_null(cfg->ca_file);
    c->cert_file = dup_or_null(cfg->cert_file);
    c->key_file = dup_or_null(cfg->key_file);
    c->username = dup_or_null(cfg->username);
    c->password = cfg->password ? hp_strdup(cfg->password) : NULL;
    if ((cfg->ca_file && *cfg->ca_file && !c->ca_file) ||
        (cfg->cert_file && *cfg->cert_file && !c->cert_file) ||
        (cfg->key_file && *cfg->key_file && !c->key_file) ||
        (cfg->username && *cfg->username && !c->username) || (cfg->password && !c->password)) {
        rc = HP_ERR_NOMEM;
        goto out;
    }
    c->transport = cfg->transport;
    if (c->transport != ETCD_TRANSPORT_GRPC && c->transport != ETCD_TRANSPORT_GATEWAY) {
        rc = hp_err_field(err, HP_ERR_INVALID, "transport",
                          "the etcd transport is 'grpc' or "
                          "'gateway'");
        goto out;
    }
    if (c->transport == ETCD_TRANSPORT_GRPC) {
        /* a connection silent longer than the longest request allowed is dead */
        rc = grpc_client_new(cfg->request_cap_ms > 0 ? cfg->request_cap_ms : 30000, &c->grpc, err);
        if (rc)
            goto out;
    }
    c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 2000;
    c->request_cap_ms = cfg->request_cap_ms > 0 ? cfg->request_cap_ms : 30000;
out:
    if (rc) {
        etcd_client_free(c);
        return rc;
    }
    *out = c;
    return HP_OK;
}

void etcd_client_free(struct etcd_client *c)
{
    size_t i;

    if (!c)
        return;
    grpc_client_free(c->grpc);
    http_pool_free(c->pool);
    for (i = 0; i < MAX_ENDPOINTS; i++) {
        hp_free(c->ep[i].url);
        hp_free(c->ep[i].connect_to);
    }
    hp_free(c->ca_file);
    hp_free(c->cert_file);
    hp_free(c->key_file);
    hp_free(c->username);
    if (c->password) {
        explicit_bzero(c->password, strlen(c->password));
        hp_free(c->password);
    }
    if (c->token) {
        explicit_bzero(c->token, strlen(c->token));
        hp_free(c->token);
    }
    pthread_mutex_destroy(&c->lock);
    hp_free(c);
}

/* perform: one HTTP exchange with one endpoint. */
static void perform(struct etcd_client *c, struct http_conn *conn, const struct endpoint *ep,
                    const char *path, const char *body, size_t body_len, int64_t timeout_ms,
                    const char *token, struct hp_ctx *ctx, struct http_result *x)
{
    char url[600], grpc_timeout[48], auth[1024];
    const char *headers[4] = {"Content-Type: application/json", grpc_timeout, NULL, NULL};
    struct http_tls tls = {.ca_file = c->ca_file,
                           .cert_file = c->cert_file,
                           .key_file = c->key_file,
                           .connect_to = ep->connect_to};
    struct http_request req = {.method = "POST",
                               .url = url,
                               .body = body,
                               .body_len = body_len,
                               .headers = headers,
                               .timeout_ms = timeout_ms,
                               .connect_timeout_ms = c->connect_timeout_ms,
                               .tls = &tls,
                               .max_body = RESP_MAX};

    snprintf(url, sizeof(url), "%s%s", ep->url, path);
    /* the server gives up a little before we do, so its answer can still reach us */
    snprintf(grpc_timeout, sizeof(grpc_timeout), "Grpc-Timeout: %" PRId64 "m",
             timeout_ms > 50 ? timeout_ms - (timeout_ms / 10 < 100 ? timeout_ms / 10 : 100)
                             : timeout_ms);
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: %s", token);
        headers[2] = auth;
    }
    http_conn_perform(conn, ctx, &req, x);
    explicit_bzero(auth, sizeof(auth));
}

/* tls_alert: the call failed on the peer's TLS alert (TLS 1.3 rejects a client certificate
 * after the client's side of the handshake): the server processed no request on it */
static bool tls_alert(CURLcode cc, const char *errbuf, hp_rc ctx_rc)
{
    return !ctx_rc && (cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR) &&
           http_tls_alert(cc, errbuf);
}

/* speaks_tls: whether the plain http:// endpoint e completes a TLS handshake within timeout_ms
 * (nothing verified and nothing sent: only the protocol is asked). */
static bool speaks_tls(const struct endpoint *e, int64_t timeout_ms)
{
    char url[600];
    CURL *h;
    CURLcode cc;

    if (strncmp(e->url, "http://", 7) || timeout_ms <= 0)
        return false;
    h = curl_easy_init();
    if (!h)
        return false;
    snprintf(url, sizeof(url), "https://%s", e->url + 7);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    cc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    return cc == CURLE_OK;
}

/* note_answered: an endpoint answered (any HTTP status): it speaks the protocol asked */
static void note_answered(struct etcd_client *c)
{
    pthread_mutex_lock(&c->lock);
    c->answered = true;
    pthread_mutex_unlock(&c->lock);
}

/* plain_to_tls: after a transport failure before any endpoint ever answered: when every
 * endpoint is http:// and each completes a TLS handshake, the URLs are wrong (a TLS port cannot
 * have processed a plain-text request: the outcome is a definite failure), named in err. Else
 * rc unchanged. Without this, a client kept retrying what looked like an outage. */
static hp_rc plain_to_tls(struct etcd_client *c, struct hp_ctx *ctx, hp_rc rc, struct hp_err *err)
{
    bool answered;
    int64_t left = hp_ctx_remaining_ms(ctx);

    if ((rc != HP_ERR_UNKNOWN_OUTCOME && rc != HP_ERR_UNAVAILABLE) || hp_ctx_err(ctx))
        return rc;
    pthread_mutex_lock(&c->lock);
    answered = c->answered;
    pthread_mutex_unlock(&c->lock);
    if (answered)
        return rc;
    for (size_t i = 0; i < c->n_ep; i++)
        if (!speaks_tls(&c->ep[i], left < 0 || left > 2000 ? 2000 : left))
            return rc;
    return hp_err_field(err, HP_ERR_INVALID, "endpoints",
                        "etcd %s%s speaks TLS: use https:// (with --ca-file, and a client "
                        "certificate if it asks for one); nothing was written",
                        c->ep[0].url, c->n_ep > 1 ? " (and every other endpoint)" : "");
}

static int has(const char *msg, const char *needle)
{
    return msg && strstr(msg, needle) != NULL;
}

hp_rc etcd_answer_rc(int code, long http_status, const char *msg, bool write)
{
    if (has(msg, "invalid auth token") || has(msg, "auth token") || code == 16)
        return HP_ERR_AUTH;
    if (has(msg, "authentication failed") || has(msg, "permission denied") || code == 7)
        return HP_ERR_AUTH;
    if (has(msg, "larger than max"))
        return HP_ERR_INVALID; /* refused before processing: it will not fit next time either */
    if (has(msg, "too many requests") || code == 8)
        return HP_ERR_FULL;
    if (has(msg, "compacted"))
        return HP_ERR_GONE;
    if (has(msg, "requested lease not found") || code == 5)
        return HP_ERR_NOTFOUND;
    if (has(msg, "no leader"))
        return HP_ERR_UNAVAILABLE; /* refused before proposing */
    if (code == 3 || code == 11 || code == 9 || code == 12 ||
        (http_status >= 400 && http_status < 500))
        return HP_ERR_INVALID;
    if (has(msg, "timed out") || has(msg, "leader changed") || has(msg, "stopped") || code == 4 ||
        code == 1 || code == 14 || http_status >= 500)
        return write ? HP_ERR_UNKNOWN_OUTCOME : HP_ERR_UNAVAILABLE;
    return write ? HP_ERR_UNKNOWN_OUTCOME : HP_ERR_PROTOCOL;
}

/* classify_error: an answer with HTTP status != 200. Returns the rc and fills err. */
static hp_rc classify_error(const struct endpoint *ep, const struct http_result *x,
                            const char *body, bool write, struct hp_err *err)
{
    json_t *j = json_loads(body ? body : "", 0, NULL);
    const char *msg = NULL;
    char first[256];
    json_int_t code = -1;
    hp_rc rc;

    if (j) {
        msg = json_string_value(json_object_get(j, "message"));
        if (!msg)
            msg = json_string_value(json_object_get(j, "error"));
        if (json_is_integer(json_object_get(j, "code")))
            code = json_integer_value(json_object_get(j, "code"));
    }
    if (!msg && x->status == 404)
        msg = "no such endpoint (is this an etcd v3 gateway?)";
    if (!msg && body && *body) {
        /* not JSON: quote the first line of what the server said */
        size_t n = strcspn(body, "\r\n");

        snprintf(first, sizeof(first), "%.*s", (int)(n > 200 ? 200 : n), body);
        for (char *p = first; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                *p = '?';
        msg = first;
    }
    if (!msg)
        msg = "no message";
    rc = etcd_answer_rc((int)code, x->status, msg, write);
    hp_err_set(err, rc, "etcd %s: HTTP %ld: %s", ep->url, x->status, msg);
    if (err)
        err->status = x->status;
    json_decref(j);
    return rc;
}

/* call_once: one logical request with failover; token_retry allows one re-authentication. */
static hp_rc call_once(struct etcd_client *c, struct hp_ctx *ctx, const char *path,
                       const char *body, size_t body_len, bool write, bool send_token,
                       json_t **resp, struct hp_err *err, bool *auth_rejected)
{
    struct http_conn *s = http_pool_get(c->pool);
    char *token = NULL;
    size_t i, start;
    hp_rc rc = HP_ERR_UNAVAILABLE;
    char last[HP_ERR_MSG_MAX] = "";

    *auth_rejected = false;
    if (!s)
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory for an etcd connection");
    pthread_mutex_lock(&c->lock);
    start = c->current;
    if (send_token && c->token)
        token = hp_strdup(c->token);
    pthread_mutex_unlock(&c->lock);
    if (send_token && !token) {
        rc = hp_err_set(err, HP_ERR_AUTH, "no etcd auth token (authentication did not succeed)");
        goto out;
    }
    for (i = 0; i < c->n_ep; i++) {
        const struct endpoint *ep = &c->ep[(start + i) % c->n_ep];
        int64_t t = hp_ctx_call_timeout_ms(ctx, 0, c->request_cap_ms);
        struct http_result x;

        if (t < 0) {
            rc = hp_ctx_err(ctx) ? hp_ctx_err(ctx) : HP_ERR_TIMEOUT;
            hp_err_set(err, rc, "etcd %s: deadline passed before the request was sent%s%s", ep->url,
                       *last ? "; earlier: " : "", last);
            goto out;
        }
        perform(c, s, ep, path, body, body_len, t, token, ctx, &x);
        if (x.status > 0)
            note_answered(c);
        if (x.cc == CURLE_OK) {
            if (x.status != 200) {
                rc = classify_error(ep, &x, x.body, write, err);
                *auth_rejected = rc == HP_ERR_AUTH && send_token;
                goto out;
            }
            *resp = json_loadb(x.body, x.body_len, 0, NULL);
            /* a write answered 200 was processed; an unreadable answer leaves it unknown */
            if (!*resp) {
                rc = hp_err_set(err, write ? HP_ERR_UNKNOWN_OUTCOME : HP_ERR_PROTOCOL,
                                "etcd %s%s: answer is not JSON", ep->url, path);
                goto out;
            }
            pthread_mutex_lock(&c->lock);
            c->current = (start + i) % c->n_ep;
            c->answered = true;
            pthread_mutex_unlock(&c->lock);
            rc = HP_OK;
            goto out;
        }
        if (x.overflow) {
            rc = hp_err_set(err, x.overflow == 2 ? HP_ERR_NOMEM : HP_ERR_PROTOCOL,
                            "etcd %s%s: answer larger than %u MiB", ep->url, path, RESP_MAX >> 20);
            goto out;
        }
        if (tls_alert(x.cc, x.errbuf, x.ctx_rc))
            x.sent = 0;
        if (x.sent || x.ctx_rc) {
            /* it may have reached the server: never re-send */
            if (write && x.sent)
                rc = HP_ERR_UNKNOWN_OUTCOME;
            else if (x.ctx_rc)
                rc = x.ctx_rc;
            else if (x.cc == CURLE_OPERATION_TIMEDOUT)
                rc = HP_ERR_TIMEOUT;
            else
                rc = HP_ERR_UNAVAILABLE;
            hp_err_set(err, rc, "etcd %s: %s%s", ep->url,
                       x.ctx_rc == HP_ERR_CANCELED ? "cancelled"
                       : x.ctx_rc                  ? "deadline passed"
                                                   : curl_easy_strerror(x.cc),
                       rc == HP_ERR_UNKNOWN_OUTCOME
                           ? " after the request was sent (outcome unknown)"
                           : "");
            goto out;
        }
        /* provably never left: try the next endpoint. A TLS rejection (certificate, name,
         * handshake) is an identity problem, not an outage: AUTH, so nobody retries it. */
        snprintf(last, sizeof(last), "%s: %s", ep->url,
                 *x.errbuf ? x.errbuf : curl_easy_strerror(x.cc));
        if (http_tls_refused(x.cc, x.errbuf))
            rc = hp_err_set(err, HP_ERR_AUTH, "TLS with etcd failed: %s", last);
        else
            rc = hp_err_set(err, HP_ERR_UNAVAILABLE, "no etcd endpoint reachable: %s", last);
    }
out:
    if (token) {
        explicit_bzero(token, strlen(token));
        hp_free(token);
    }
    http_pool_put(c->pool, s);
    return rc;
}

/* One exchange of either transport, as call_retrying drives it: the request and the answer's
 * place are in req; *auth_rejected when the server refused the token. */
typedef hp_rc (*once_fn)(struct etcd_client *c, struct hp_ctx *ctx, void *req, bool write,
                         bool send_token, struct hp_err *err, bool *auth_rejected);

static hp_rc gateway_authenticate(struct etcd_client *c, struct hp_ctx *ctx, struct hp_err *err);
static hp_rc grpc_authenticate(struct etcd_client *c, struct hp_ctx *ctx, struct hp_err *err);

/* call_retrying: the rules both transports share. With a user, authenticate first (and once
 * more when the token is refused: a refused request was not applied). A read has no effect:
 * one that failed in transport (a reset, a refused connection) is tried again while the
 * deadline allows (8 more attempts, 50 ms doubling to 1 s apart: a few seconds in all). A write
 * never is. */
static hp_rc call_retrying(struct etcd_client *c, struct hp_ctx *ctx, once_fn once, void *req,
                           bool write, struct hp_err *err)
{
    bool rejected = false;
    hp_rc rc = HP_OK;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->username) {
            bool have;

            pthread_mutex_lock(&c->lock);
            have = c->token != NULL;
            if (!have || rejected) { /* the old token goes before a new one is asked for */
                if (c->token)
                    explicit_bzero(c->token, strlen(c->token));
                hp_free(c->token);
                c->token = NULL;
            }
            pthread_mutex_unlock(&c->lock);
            if (!have || rejected) {
                rc = c->grpc ? grpc_authenticate(c, ctx, err) : gateway_authenticate(c, ctx, err);
                if (rc)
                    break;
            }
        }
        rc = once(c, ctx, req, write, c->username != NULL, err, &rejected);
        if (!rejected)
            break;
    }
    for (int retry = 0; !write && rc == HP_ERR_UNAVAILABLE && retry < 8; retry++) {
        if (hp_ctx_sleep(ctx, retry < 5 ? 50 << retry : 1000))
            break;
        rc = once(c, ctx, req, write, c->username != NULL, err, &rejected);
    }
    return plain_to_tls(c, ctx, rc, err);
}

struct gateway_req {
    const char *path, *text;
    size_t len;
    json_t **resp;
};

static hp_rc gateway_once(struct etcd_client *c, struct hp_ctx *ctx, void *arg, bool write,
                          bool send_token, struct hp_err *err, bool *auth_rejected)
{
    struct gateway_req *r = arg;

    return call_once(c, ctx, r->path, r->text, r->len, write, send_token, r->resp, err,
                     auth_rejected);
}

hp_rc etcd_client_call_text(struct etcd_client *c, struct hp_ctx *ctx, const char *path,
                            const char *text, size_t len, bool write, json_t **resp,
                            struct hp_err *err)
{
    struct gateway_req r = {path, text, len, resp};

    *resp = NULL;
    return call_retrying(c, ctx, gateway_once, &r, write, err);
}

hp_rc etcd_client_call(struct etcd_client *c, struct hp_ctx *ctx, const char *path, json_t *body,
                       bool write, json_t **resp, struct hp_err *err)
{
    char *text = json_dumps(body, JSON_COMPACT);
    hp_rc rc;

    *resp = NULL;
    if (!text)
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory encoding an etcd request");
    rc = etcd_client_call_text(c, ctx, path, text, strlen(text), write, resp, err);
    hp_free(text);
    return rc;
}

/* ---- gRPC ---- */

/* grpc_once: one unary call with failover (the rules of call_once); *out owned on HP_OK. */
static hp_rc grpc_once(struct etcd_client *c, struct hp_ctx *ctx, const char *method,
                       const void *msg, size_t len, bool write, bool send_token,
                       struct grpc_result *out, struct hp_err *err, bool *auth_rejected)
{
    char token[1100] = "";
    const char *headers[2] = {NULL, NULL};
    size_t i, start;
    hp_rc rc = HP_ERR_UNAVAILABLE;
    char last[HP_ERR_MSG_MAX] = "";

    *auth_rejected = false;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&c->lock);
    start = c->current;
    if (send_token && c->token)
        snprintf(token, sizeof(token), "token: %s", c->token);
    pthread_mutex_unlock(&c->lock);
    if (send_token && !token[0])
        return hp_err_set(err, HP_ERR_AUTH, "no etcd auth token (authentication did not succeed)");
    if (token[0])
        headers[0] = token;
    for (i = 0; i < c->n_ep; i++) {
        const struct endpoint *ep = &c->ep[(start + i) % c->n_ep];
        int64_t t = hp_ctx_call_timeout_ms(ctx, 0, c->request_cap_ms);
        struct http_tls tls = {.ca_file = c->ca_file,
                               .cert_file = c->cert_file,
                               .key_file = c->key_file,
                               .connect_to = ep->connect_to};
        struct grpc_call call = {.base_url = ep->url,
                                 .path = method,
                                 .msg = msg,
                                 .msg_len = len,
                                 .headers = headers,
                                 .timeout_ms = t,
                                 .connect_timeout_ms = c->connect_timeout_ms,
                                 .tls = &tls,
                                 .max_msg = RESP_MAX};
        bool next = false;

        if (t < 0) {
            rc = hp_ctx_err(ctx) ? hp_ctx_err(ctx) : HP_ERR_TIMEOUT;
            hp_err_set(err, rc, "etcd %s: deadline passed before the request was sent%s%s", ep->url,
                       *last ? "; earlier: " : "", last);
            break;
        }
        grpc_client_call(c->grpc, ctx, &call, out);
        if (out->http_status > 0)
            note_answered(c);
        if (tls_alert(out->cc, out->errbuf, out->ctx_rc))
            out->sent = false;
        rc = etcd_grpc_classify(out, write, ep->url, method, &next, err);
        if (!rc) {
            pthread_mutex_lock(&c->lock);
            c->current = (start + i) % c->n_ep;
            c->answered = true;
            pthread_mutex_unlock(&c->lock);
            break;
        }
        *auth_rejected = rc == HP_ERR_AUTH && send_token && out->grpc_status > 0;
        if (!next) {
            grpc_result_release(out);
            break;
        }
        /* provably never left: the next endpoint. A TLS rejection is an identity problem, not
         * an outage: AUTH, so nobody retries it. */
        snprintf(last, sizeof(last), "%s: %s", ep->url,
                 *out->errbuf ? out->errbuf : curl_easy_strerror(out->cc));
        if (http_tls_refused(out->cc, out->errbuf))
            rc = hp_err_set(err, HP_ERR_AUTH, "TLS with etcd failed: %s", last);
        else
            rc = hp_err_set(err, HP_ERR_UNAVAILABLE, "no etcd endpoint reachable: %s", last);
        grpc_result_release(out);
    }
    explicit_bzero(token, sizeof(token));
    return rc;
}

struct grpc_req {
    const char *method;
    const void *msg;
    size_t len;
    struct grpc_result *out;
};

static hp_rc grpc_req_once(struct etcd_client *c, struct hp_ctx *ctx, void *arg, bool write,
                           bool send_token, struct hp_err *err, bool *auth_rejected)
{
    struct grpc_req *r = arg;

    return grpc_once(c, ctx, r->method, r->msg, r->len, write, send_token, r->out, err,
                     auth_rejected);
}

hp_rc etcd_client_grpc(struct etcd_client *c, struct hp_ctx *ctx, const char *method,
                       const void *msg, size_t len, bool write, struct grpc_result *out,
                       struct hp_err *err)
{
    struct grpc_req r = {method, msg, len, out};

    memset(out, 0, sizeof(*out));
    return call_retrying(c, ctx, grpc_req_once, &r, write, err);
}

void etcd_client_grpc_stats(struct etcd_client *c, struct grpc_client_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (c->grpc)
        grpc_client_stats(c->grpc, out);
}

bool etcd_client_is_grpc(const struct etcd_client *c)
{
    return c->grpc != NULL;
}

hp_rc etcd_client_pb(struct etcd_client *c, struct hp_ctx *ctx, const char *method,
                     struct pb_writer *w, hp_rc encoded, bool write, struct grpc_result *out,
                     struct hp_err *err)
{
    hp_rc rc = encoded ? encoded : pb_writer_error(w);

    memset(out, 0, sizeof(*out));
    if (rc == HP_ERR_NOMEM)
        hp_err_set(err, rc, "out of memory encoding an etcd request");
    if (!rc)
        rc = etcd_client_grpc(c, ctx, method, pb_writer_data(w), pb_writer_len(w), write, out, err);
    pb_writer_release(w);
    return rc;
}

/* grpc_authenticate: Auth/Authenticate; the token is dropped already (call_retrying) */
static hp_rc grpc_authenticate(struct etcd_client *c, struct hp_ctx *ctx, struct hp_err *err)
{
    struct pb_writer w;
    struct grpc_result res = {0};
    char *tok = NULL;
    bool rejected;
    hp_rc rc;

    pb_writer_init(&w);
    rc = etcd_pb_encode_auth(&w, c->username, c->password ? c->password : "", err);
    if (!rc)
        rc = pb_writer_error(&w);
    if (!rc)
        rc = grpc_once(c, ctx, "/etcdserverpb.Auth/Authenticate", pb_writer_data(&w),
                       pb_writer_len(&w), false, false, &res, err, &rejected);
    explicit_bzero(hp_buf_data(&w.out), hp_buf_len(&w.out)); /* the password */
    pb_writer_release(&w);
    if (rc) {
        if (rc == HP_ERR_AUTH || rc == HP_ERR_INVALID)
            rc = hp_err_set(err, HP_ERR_AUTH,
                            "etcd authentication as user '%s' failed: wrong user name or "
                            "password, or auth is not enabled",
                            c->username);
        return rc;
    }
    rc = etcd_pb_decode_auth(res.msg, res.msg_len, &tok, err);
    grpc_result_release(&res);
    if (!rc && (!tok || !*tok))
        rc = hp_err_set(err, HP_ERR_PROTOCOL, "etcd authentication answered without a token");
    if (rc) {
        hp_free(tok);
        return rc;
    }
    pthread_mutex_lock(&c->lock);
    c->token = tok;
    pthread_mutex_unlock(&c->lock);
    return HP_OK;
}

/* gateway_authenticate: /v3/auth/authenticate; the token is dropped already (call_retrying) */
static hp_rc gateway_authenticate(struct etcd_client *c, struct hp_ctx *ctx, struct hp_err *err)
{
    json_t *req = json_pack("{s:s, s:s}", "name", c->username, "password", c->password);
    json_t *resp = NULL;
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    const char *tok;
    bool rejected;
    hp_rc rc;

    json_decref(req);
    if (!text)
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory encoding etcd credentials");
    /* no token yet: call_once sends none */
    rc = call_once(c, ctx, "/v3/auth/authenticate", text, strlen(text), false, false, &resp, err,
                   &rejected);
    explicit_bzero(text, strlen(text));
    hp_free(text);
    if (rc) {
        if (rc == HP_ERR_AUTH || rc == HP_ERR_INVALID)
            rc = hp_err_set(err, HP_ERR_AUTH,
                            "etcd authentication as user '%s' failed: wrong user name or "
                            "password, or auth is not enabled",
                            c->username);
        return rc;
    }
    tok = json_string_value(json_object_get(resp, "token"));
    if (!tok || !*tok) {
        json_decref(resp);
        return hp_err_set(err, HP_ERR_PROTOCOL, "etcd authentication answered without a token");
    }
    pthread_mutex_lock(&c->lock);
    c->token = hp_strdup(tok);
    rc = c->token ? HP_OK : HP_ERR_NOMEM;
    pthread_mutex_unlock(&c->lock);
    json_decref(resp);
    return rc;
}

/* ---- JSON helpers ---- */

json_t *etcd_json_bytes(const void *p, size_t n)
{
    size_t len = hp_b64_encoded_len(n);
    char *buf = hp_malloc(len + 1);
    json_t *j;

    if (!buf)
        return NULL;
    hp_b64_encode(p, n, buf);
    j = json_stringn_nocheck(buf, len);
    hp_free(buf);
    return j;
}

hp_rc etcd_json_int(const json_t *obj, const char *field, int64_t *out)
{
    const json_t *v = json_object_get(obj, field);
    const char *s;
    char *end;
    long long x;

    *out = 0;
    if (!v)
        return HP_OK;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return HP_OK;
    }
    s = json_string_value(v);
    if (!s)
        return HP_ERR_PROTOCOL;
    errno = 0;
    if (*s == '-') {
        x = strtoll(s, &end, 10);
    } else {
        /* member and cluster IDs are uint64: keep their bit pattern */
        x = (long long)strtoull(s, &end, 10);
    }
    if (errno || end == s || *end)
        return HP_ERR_PROTOCOL;
    *out = x;
    return HP_OK;
}

static hp_rc json_bytes_field(const json_t *obj, const char *field, char **out, size_t *len)
{
    const json_t *v = json_object_get(obj, field);

    if (!v) { /* omitted default: empty */
        *out = hp_strdup("");
        *len = 0;
        return *out ? HP_OK : HP_ERR_NOMEM;
    }
    if (!json_is_string(v))
        return HP_ERR_PROTOCOL;
    return hp_b64_decode(json_string_value(v), json_string_length(v), out, len);
}

hp_rc etcd_prefix_end(const void *p, size_t n, char **out, size_t *out_len)
{
    const unsigned char *k = p;
    char *e;

    while (n > 0 && k[n - 1] == 0xff)
        n--;
    if (n == 0) {
        *out = hp_strndup("", 0);
        *out_len = 1; /* "\0": every key */
        if (*out)
            return HP_OK;
        return HP_ERR_NOMEM;
    }
    e = hp_malloc(n + 1);
    if (!e)
        return HP_ERR_NOMEM;
    memcpy(e, k, n);
    e[n - 1] = (char)(k[n - 1] + 1);
    e[n] = '\0';
    *out = e;
    *out_len = n;
    return HP_OK;
}

json_t *etcd_range_json(const struct etcd_range_req *req)
{
    json_t *j = json_object();
    char *end = NULL;
    size_t end_len = 0;
    int bad = !j;

    if (!j)
        return NULL;
    bad |= json_object_set_new(j, "key", etcd_json_bytes(req->key, req->key_len));
    if (req->prefix) {
        if (etcd_prefix_end(req->key, req->key_len, &end, &end_len))
            bad = 1;
        else
            bad |= json_object_set_new(j, "range_end", etcd_json_bytes(end, end_len));
        hp_free(end);
    } else if (req->range_end) {
        bad |= json_object_set_new(j, "range_end",
                                   etcd_json_bytes(req->range_end, req->range_end_len));
    }
    if (req->revision)
        bad |= json_object_set_new(j, "revision", json_integer(req->revision));
    if (req->limit)
        bad |= json_object_set_new(j, "limit", json_integer(req->limit));
    if (req->keys_only)
        bad |= json_object_set_new(j, "keys_only", json_true());
    if (req->count_only)
        bad |= json_object_set_new(j, "count_only", json_true());
    if (req->serializable)
        bad |= json_object_set_new(j, "serializable", json_true());
    if (req->min_mod_revision)
        bad |= json_object_set_new(j, "min_mod_revision", json_integer(req->min_mod_revision));
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

void etcd_range_resp_release(struct etcd_range_resp *r)
{
    size_t i;

    if (!r)
        return;
    for (i = 0; i < r->n; i++) {
        hp_free(r->kvs[i].key);
        hp_free(r->kvs[i].value);
    }
    hp_free(r->kvs);
    memset(r, 0, sizeof(*r));
}

hp_rc etcd_range_parse(const json_t *j, struct etcd_range_resp *out)
{
    const json_t *kvs = json_object_get(j, "kvs"), *kv;
    hp_rc rc = HP_OK;
    size_t i;

    memset(out, 0, sizeof(*out));
    rc = etcd_json_int(json_object_get(j, "header"), "revision", &out->revision);
    if (!rc)
        rc = etcd_json_int(j, "count", &out->count);
    if (rc)
        return rc;
    out->more = json_is_true(json_object_get(j, "more"));
    if (!kvs)
        return HP_OK;
    if (!json_is_array(kvs))
        return HP_ERR_PROTOCOL;
    out->kvs = hp_calloc(json_array_size(kvs) ? json_array_size(kvs) : 1, sizeof(*out->kvs));
    if (!out->kvs)
        return HP_ERR_NOMEM;
    json_array_foreach(kvs, i, kv)
    {
        struct etcd_kv *d = &out->kvs[i];

        out->n = i + 1;
        rc = json_bytes_field(kv, "key", &d->key, &d->key_len);
        if (!rc)
            rc = json_bytes_field(kv, "value", &d->value, &d->value_len);
        if (!rc)
            rc = etcd_json_int(kv, "create_revision", &d->create_revision);
        if (!rc)
            rc = etcd_json_int(kv, "mod_revision", &d->mod_revision);
        if (!rc)
            rc = etcd_json_int(kv, "version", &d->version);
        if (!rc)
            rc = etcd_json_int(kv, "lease", &d->lease);
        if (rc)
            break;
    }
    if (rc)
        etcd_range_resp_release(out);
    return rc;
}

/* ---- calls ---- */

static hp_rc protocol_error(hp_rc rc, const char *what, struct hp_err *err)
{
    if (rc == HP_ERR_NOMEM)
        return hp_err_set(err, rc, "out of memory reading the etcd %s answer", what);
    return hp_err_set(err, HP_ERR_PROTOCOL, "etcd %s answer is malformed", what);
}

hp_rc etcd_range(struct etcd_client *c, struct hp_ctx *ctx, const struct etcd_range_req *req,
                 struct etcd_range_resp *out, struct hp_err *err)
{
    json_t *body = etcd_range_json(req), *resp = NULL;
    hp_rc rc;

    if (c->grpc) {
        struct pb_writer w;
        struct grpc_result res;

        json_decref(body);
        pb_writer_init(&w);
        rc = etcd_client_pb(c, ctx, "/etcdserverpb.KV/Range", &w,
                            etcd_pb_encode_range(&w, req, err), false, &res, err);
        if (!rc)
            rc = etcd_pb_decode_range(res.msg, res.msg_len, out, err);
        grpc_result_release(&res);
        return rc;
    }
    if (!body)
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory encoding an etcd range");
    rc = etcd_client_call(c, ctx, "/v3/kv/range", body, false, &resp, err);
    json_decref(body);
    if (rc)
        return rc;
    rc = etcd_range_parse(resp, out);
    json_decref(resp);
    return rc ? protocol_error(rc, "range", err) : HP_OK;
}

hp_rc etcd_put(struct etcd_client *c, struct hp_ctx *ctx, const void *key, size_t key_len,
               const void *value, size_t value_len, int64_t lease, int64_t *revision,
               struct hp_err *err)
{
    json_t *body = json_object(), *resp = NULL;
    int64_t rev = 0;
    hp_rc rc;

    if (c->grpc) {
        struct pb_writer w;
        struct grpc_result res;

        json_decref(body);
        pb_writer_init(&w);
        rc = etcd_client_pb(c, ctx, "/etcdserverpb.KV/Put", &w,
                            etcd_pb_encode_put(&w, key, key_len, value, value_len, lease, err),
                            true, &res, err);
        if (!rc && etcd_pb_decode_put(res.msg, res.msg_len, &rev, err))
            rc = hp_err_set(err, HP_ERR_UNKNOWN_OUTCOME, "etcd put answer is malformed: %s",
                            err ? err->msg : "");
        grpc_result_release(&res);
        if (!rc && revision)
            *revision = rev;
        return rc;
    }
    if (!body || json_object_set_new(body, "key", etcd_json_bytes(key, key_len)) ||
        json_object_set_new(body, "value", etcd_json_bytes(value, value_len)) ||
        (lease && json_object_set_new(body, "lease", json_integer(lease)))) {
        json_decref(body);
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory encoding an etcd put");
    }
    rc = etcd_client_call(c, ctx, "/v3/kv/put", body, true, &resp, err);
    json_decref(body);
    if (rc)
        return rc;
    rc = etcd_json_int(json_object_get(resp, "header"), "revision", &rev);
    json_decref(resp);
    if (rc) /* a write answered 200 but unreadable: treat as indeterminate */
        return hp_err_set(err, HP_ERR_UNKNOWN_OUTCOME, "etcd put answer has no valid revision");
    if (revision)
        *revision = rev;
    return HP_OK;
}

hp_rc etcd_delete(struct etcd_client *c, struct hp_ctx *ctx, const void *key, size_t key_len,
                  bool prefix, int64_t *deleted, int64_t *revision, struct hp_err *err)
{
    struct etcd_range_req r = {.key = key, .key_len = key_len, .prefix = prefix};
    json_t *body = etcd_range_json(&r), *resp = NULL;
    int64_t d = 0, rev = 0;
    hp_rc rc;

    if (c->grpc) {
        struct pb_writer w;
        struct grpc_result res;

        json_decref(body);
        pb_writer_init(&w);
        rc = etcd_client_pb(c, ctx, "/etcdserverpb.KV/DeleteRange", &w,
                            etcd_pb_encode_delete(&w, key, key_len, prefix, err), true, &res, err);
        if (!rc && etcd_pb_decode_delete(res.msg, res.msg_len, &d, &rev, err))
            rc = hp_err_set(err, HP_ERR_UNKNOWN_OUTCOME, "etcd delete answer is malformed: %s",
                            err ? err->msg : "");
        grpc_result_release(&res);
        if (!rc && deleted)
            *deleted = d;
        if (!rc && revision)
            *revision = rev;
        return rc;
    }
    if (!body)
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory encoding an etcd delete");
    rc = etcd_client_call(c, ctx, "/v3/kv/deleterange", body, true, &resp, err);
    json_decref(body);
    if (rc)
        return rc;
    rc = etcd_json_int(resp, "deleted", &d);
    if (!rc)
        rc = etcd_json_int(json_object_get(resp, "header"), "revision", &rev);
    json_decref(resp);
    if (rc)
        return hp_err_set(err, HP_ERR_UNKNOWN_OUTCOME, "etcd delete answer is malformed");
    if (deleted)
        *deleted = d;
    if (revision)
        *revision = rev;
    return HP_OK;
}

hp_rc etcd_lease_grant(struct etcd_client *c, struct hp_ctx *ctx, int64_t ttl_s, int64_t *id,
                       struct hp_err *err)
{
    json_t *body = json_pack("{s:I}", "TTL", (json_int_t)ttl_s), *resp = NULL;
    hp_rc rc;

    if (ttl_s < 1) {
        json_decref(body);
        return hp_err_field(err, HP_ERR_INVALID, "ttl",
                            "lease TTL must be at least 1 s, not %" PRId64, ttl_s);
    }
    if (c->grpc) {
        struct pb_writer w;
        struct grpc_result res;
        int64_t ttl = 0;

        json_decref(body);
        pb_writer_init(&w);
        rc = etcd_client_pb(c, ctx, "/etcdserverpb.Lease/LeaseGrant", &w,
                            etcd_pb_encode_lease_grant(&w, ttl_s, 0, err), true, &res, err);
        if (!rc)
            rc = etcd_pb_decode_lease_grant(res.msg, res.msg_len, id, &ttl, err);
        grpc_result_release(&res);
        if (rc == HP_ERR_PROTOCOL || (!rc && *id == 0))
            rc = hp_err_set(err, HP_ERR_UNKNOWN_OUTCOME, "etcd lease grant answered without an ID");
        return rc;
    }
    if (!body)
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory encoding a lease grant");
    rc = etcd_client_call(c, ctx, "/v3/lease/grant", body, true, &resp, err);
    json_decref(body);
    if (rc)
        return rc;
    rc = etcd_json_int(resp, "ID", id);
    json_decref(resp);
    if (rc || *id == 0)
        return hp_err_set(err, HP_ERR_UNKNOWN_OUTCOME, "etcd lease grant answered without an ID");
    return HP_OK;
}

hp_rc etcd_lease_revoke(struct etcd_client *c, struct hp_ctx *ctx, int64_t id, struct hp_err *err)
{
    json_t *body = json_pack("{s:I}", "ID", (json_int_t)id), *resp = NULL;
    hp_rc rc;

    if (c->grpc) {
        struct pb_writer w;
        struct grpc_result res;
        int64_t rev = 0;

        json_decref(body);
        pb_writer_init(&w);
        rc = etcd_client_pb(c, ctx, "/etcdserverpb.Lease/LeaseRevoke", &w,
                            etcd_pb_encode_lease_id(&w, id, err), true, &res, err);
        if (!rc && etcd_pb_decode_lease_revoke(res.msg, res.msg_len, &rev, err))
            rc = hp_err_set(err, HP_ERR_UNKNOWN_OUTCOME, "etcd lease revoke answer is malformed");
        grpc_result_release(&res);
        return rc;
    }
    if (!body)
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory encoding a lease revoke");
    rc = etcd_client_call(c, ctx, "/v3/lease/revoke", body, true, &resp, err);
    json_decref(body);
    json_decref(resp);
    return rc;
}

hp_rc etcd_lease_keepalive(struct etcd_client *c, struct hp_ctx *ctx, int64_t id, int64_t *ttl_s,
                           struct hp_err *err)
{
    json_t *body = json_pack("{s:I}", "ID", (json_int_t)id), *resp = NULL, *res;
    hp_rc rc;

    *ttl_s = 0;
    if (c->grpc) {
        /* LeaseKeepAlive is a stream: one request, the client's half closed, one answer */
        struct pb_writer w;
        struct grpc_result gr;
        int64_t got = 0;

        json_decref(body);
        pb_writer_init(&w);
        rc = etcd_client_pb(c, ctx, "/etcdserverpb.Lease/LeaseKeepAlive", &w,
                            etcd_pb_encode_lease_id(&w, id, err), false, &gr, err);
        if (!rc)
            rc = etcd_pb_decode_lease_ttl(gr.msg, gr.msg_len, &got, ttl_s, err);
        grpc_result_release(&gr);
        if (!rc && *ttl_s <= 0)
            rc = hp_err_set(err, HP_ERR_NOTFOUND, "etcd lease %" PRId64 " no longer exists", id);
        return rc;
    }
    if (!body)
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory encoding a lease keepalive");
    /* a streaming call: one request, one {"result": ...} message, then the stream ends */
    rc = etcd_client_call(c, ctx, "/v3/lease/keepalive", body, false, &resp, err);
    json_decref(body);
    if (rc)
        return rc;
    res = json_object_get(resp, "result");
    if (!res) {
        json_decref(resp);
        return hp_err_set(err, HP_ERR_PROTOCOL, "etcd lease keepalive answered without a result");
    }
    rc = etcd_json_int(res, "TTL", ttl_s);
    json_decref(resp);
    if (rc)
        return hp_err_set(err, HP_ERR_PROTOCOL, "etcd lease keepalive TTL is malformed");
    if (*ttl_s <= 0)
        return hp_err_set(err, HP_ERR_NOTFOUND, "etcd lease %" PRId64 " no longer exists", id);
    return HP_OK;
}

hp_rc etcd_status(struct etcd_client *c, struct hp_ctx *ctx, struct etcd_status *out,
                  struct hp_err *err)
{
    json_t *body = json_object(), *resp = NULL;
    const char *v;
    hp_rc rc;

    memset(out, 0, sizeof(*out));
    if (c->grpc) {
        struct pb_writer w;
        struct grpc_result res;

        json_decref(body);
        pb_writer_init(&w); /* StatusRequest has no fields */
        rc =
            etcd_client_pb(c, ctx, "/etcdserverpb.Maintenance/Status", &w, HP_OK, false, &res, err);
        if (!rc)
            rc = etcd_pb_decode_status(res.msg, res.msg_len, out, err);
        grpc_result_release(&res);
        return rc;
    }
    if (!body)
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory");
    rc = etcd_client_call(c, ctx, "/v3/maintenance/status", body, false, &resp, err);
    json_decref(body);
    if (rc)
        return rc;
    v = json_string_value(json_object_get(resp, "version"));
    snprintf(out->version, sizeof(out->version), "%s", v ? v : "");
    rc = etcd_json_int(json_object_get(resp, "header"), "revision", &out->revision);
    if (!rc)
        rc = etcd_json_int(json_object_get(resp, "header"), "member_id", &out->member_id);
    if (!rc)
        rc = etcd_json_int(json_object_get(resp, "header"), "raft_term", &out->raft_term);
    if (!rc)
        rc = etcd_json_int(resp, "leader", &out->leader);
    json_decref(resp);
    return rc ? hp_err_set(err, HP_ERR_PROTOCOL, "etcd status answer is malformed") : HP_OK;
}
