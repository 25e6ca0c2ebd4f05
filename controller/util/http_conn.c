/* http_conn.c - the libcurl transport (see include/hostpatrol/http_conn.h). */
#include "hostpatrol/http_conn.h"

#include <pthread.h>
#include <string.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/buf.h"

#define BODY_MAX_DEFAULT (256u << 20)

struct http_conn {
    CURL *easy;
    CURLM *multi;
    struct hp_buf body; /* buffered body, below max_body (kept for the next request) */
    int overflow;
    bool stopped;
    const struct http_request *req; /* during a perform */
    struct http_conn *next;         /* pool free list */
};

struct http_pool {
    pthread_mutex_t lock; /* guards idle */
    struct http_conn *idle;
};

hp_rc http_conn_new(struct http_conn **out)
{
    struct http_conn *c = hp_calloc(1, sizeof(*c));

    *out = NULL;
    if (!c)
        return HP_ERR_NOMEM;
    hp_buf_init(&c->body, 0);
    c->easy = curl_easy_init();
    c->multi = curl_multi_init();
    if (!c->easy || !c->multi) {
        http_conn_free(c);
        return HP_ERR_NOMEM;
    }
    *out = c;
    return HP_OK;
}

void http_conn_free(struct http_conn *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->easy);
    curl_multi_cleanup(c->multi);
    hp_buf_release(&c->body);
    hp_free(c);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct http_conn *c = arg;
    size_t n = size * nmemb;

    if (c->req->on_data) {
        if (!c->req->on_data(c->req->arg, data, n)) {
            c->stopped = true;
            return 0;
        }
        return n;
    }
    switch (hp_buf_add(&c->body, data, n)) {
    case HP_OK:
        return n;
    case HP_ERR_FULL:
        c->overflow = 1;
        return 0; /* aborts the transfer */
    default:
        c->overflow = 2;
        return 0;
    }
}

bool http_tls_alert(CURLcode cc, const char *errbuf)
{
    /* OpenSSL's reason text, e.g. "error:0A00045C:SSL routines::tlsv13 alert certificate
     * required" (not a host name that holds "alert") */
    return (cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR || cc == CURLE_SSL_CONNECT_ERROR) &&
           errbuf && strstr(errbuf, "SSL routines") && strstr(errbuf, " alert ");
}

bool http_tls_refused(CURLcode cc, const char *errbuf)
{
    /* libcurl's OpenSSL backend on a handshake cut by the network: "Recv failure: Connection
     * reset by peer" (7.88, 8.14, toxiproxy's reset_peer), "OpenSSL SSL_connect:
     * SSL_ERROR_SYSCALL in connection to ..." (7.88), "TLS connect error: error:0A000126:SSL
     * routines::unexpected eof while reading" (8.14) */
    static const char *const cut[] = {"SSL_ERROR_SYSCALL",   "Connection reset", "Recv failure",
                                      "Send failure",        "unexpected eof",   "Broken pipe",
                                      "Connection timed out"};

    if (http_tls_alert(cc, errbuf))
        return true;
    if (cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR)
        return false;
    if (cc == CURLE_SSL_CONNECT_ERROR && errbuf)
        for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++)
            if (strstr(errbuf, cut[i]))
                return false;
    return cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CONNECT_ERROR ||
           cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_CACERT_BADFILE ||
           cc == CURLE_SSL_CIPHER || cc == CURLE_SSL_ISSUER_ERROR || cc == CURLE_SSL_CRL_BADFILE ||
           cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH || cc == CURLE_SSL_CLIENTCERT;
}

void http_tls_apply(CURL *e, const struct http_tls *t, struct curl_slist **connect_to)
{
    struct curl_blob blob;

    if (!t)
        return;
    if (t->ca_pem) {
        blob = (struct curl_blob){(void *)t->ca_pem, t->ca_pem_len, CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
    } else if (t->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
    }
    if (t->cert_pem) {
        blob = (struct curl_blob){(void *)t->cert_pem, t->cert_pem_len, CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    } else if (t->cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert_file);
    }
    if (t->key_pem) {
        blob = (struct curl_blob){(void *)t->key_pem, t->key_pem_len, CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    } else if (t->key_file) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, t->key_file);
    }
    if (t->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (t->connect_to) {
        *connect_to = curl_slist_append(NULL, t->connect_to);
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, *connect_to);
    }
}

void http_conn_perform(struct http_conn *c, struct hp_ctx *ctx, const struct http_request *req,
                       struct http_result *x)
{
    struct curl_slist *hdrs = NULL, *connect_to = NULL;
    int ctx_fd = hp_ctx_fd(ctx), running = 1;
    long req_size = 0;
    size_t max;
    CURL *e = c->easy;
    CURLMsg *m;
    int left;

    memset(x, 0, sizeof(*x));
    max = req->max_body ? req->max_body : BODY_MAX_DEFAULT;
    hp_buf_reset(&c->body);
    c->body.max = max > 1 ? max - 1 : 1; /* the body and its NUL fit in max_body bytes */
    c->overflow = 0;
    c->stopped = false;
    c->req = req;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    if (req->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    if (req->method && strcmp(req->method, req->body ? "POST" : "GET"))
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 2000));
    if (req->timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    if (req->stall_ms > 0) { /* less than 1 byte/s for the whole window: stalled */
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)((req->stall_ms + 999) / 1000));
    }
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    http_tls_apply(e, req->tls, &connect_to);
    for (size_t i = 0; req->headers && req->headers[i]; i++)
        hdrs = curl_slist_append(hdrs, req->headers[i]);
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_multi_add_handle(c->multi, e);
    while (running) {
        struct curl_waitfd wfd = {.fd = ctx_fd, .events = CURL_WAIT_POLLIN};
        int timeout = hp_ctx_poll_timeout(ctx), nfds;

        if (curl_multi_perform(c->multi, &running) != CURLM_OK || !running)
            break;
        x->ctx_rc = hp_ctx_err(ctx);
        if (x->ctx_rc)
            break;
        if (timeout < 0 || timeout > 1000)
            timeout = 1000;
        curl_multi_poll(c->multi, ctx_fd >= 0 ? &wfd : NULL, ctx_fd >= 0 ? 1 : 0, timeout, &nfds);
        x->ctx_rc = hp_ctx_err(ctx);
        if (x->ctx_rc)
            break;
    }
    while ((m = curl_multi_info_read(c->multi, &left)))
        if (m->msg == CURLMSG_DONE)
            x->cc = m->data.result;
    if (x->ctx_rc)
        x->cc = CURLE_ABORTED_BY_CALLBACK;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &x->status);
    curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &req_size);
    x->sent = req_size > 0;
    x->stopped = c->stopped;
    x->overflow = c->overflow;
    x->body = hp_buf_data(&c->body);
    x->body_len = hp_buf_len(&c->body);
    curl_multi_remove_handle(c->multi, e);
    /* the lists are freed below: make sure the handle no longer points at them */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e, CURLOPT_CONNECT_TO, NULL);
    curl_slist_free_all(hdrs);
    curl_slist_free_all(connect_to);
    c->req = NULL;
}

hp_rc http_pool_new(struct http_pool **out)
{
    struct http_pool *p = hp_calloc(1, sizeof(*p));

    *out = p;
    if (!p)
        return HP_ERR_NOMEM;
    pthread_mutex_init(&p->lock, NULL);
    return HP_OK;
}

void http_pool_free(struct http_pool *p)
{
    if (!p)
        return;
    while (p->idle) {
        struct http_conn *c = p->idle;

        p->idle = c->next;
        http_conn_free(c);
    }
    pthread_mutex_destroy(&p->lock);
    hp_free(p);
}

struct http_conn *http_pool_get(struct http_pool *p)
{
    struct http_conn *c;

    pthread_mutex_lock(&p->lock);
    c = p->idle;
    if (c)
        p->idle = c->next;
    pthread_mutex_unlock(&p->lock);
    if (!c && http_conn_new(&c))
        return NULL;
    c->next = NULL;
    return c;
}

void http_pool_put(struct http_pool *p, struct http_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&p->lock);
    c->next = p->idle;
    p->idle = c;
    pthread_mutex_unlock(&p->lock);
}
