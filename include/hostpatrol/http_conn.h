/*
 * http_conn.h - hostpatrol's one HTTP transport (libcurl): keep-alive connections, every wait
 * bounded by a context, TLS from files or in-memory PEM, optional streaming of the body. The
 * etcd client and the Kubernetes client are built on it.
 *
 * A struct http_conn is one easy handle driven by its own multi handle, so its keep-alive
 * connection is reused across requests and a wait can include the context's eventfd (a cancel
 * wakes a transfer at once). A struct http_pool hands out connections to many threads.
 *
 * Ownership: request fields are borrowed for the call. The result's body is borrowed from the
 * connection and valid until its next use. Thread-safety: a connection belongs to one thread at
 * a time; the pool is thread-safe (one mutex around its free list).
 */
#ifndef HOSTPATROL_HTTP_CONN_H
#define HOSTPATROL_HTTP_CONN_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/ctx.h"

struct http_tls {
    const char *ca_file;
    const void *ca_pem; /* in-memory CA bundle (PEM), instead of ca_file */
    size_t ca_pem_len;
    const char *cert_file, *key_file;
    const void *cert_pem, *key_pem; /* in-memory client certificate and key (PEM) */
    size_t cert_pem_len, key_pem_len;
    bool insecure;          /* skip verification (insecure-skip-tls-verify) */
    const char *connect_to; /* "name:port:host:port" to verify a name other than the host */
};

struct http_request {
    const char *method; /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *url;
    const char *body; /* NULL: none */
    size_t body_len;
    const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
    int64_t timeout_ms;         /* whole transfer; 0: none (streams) */
    int64_t connect_timeout_ms; /* 0: 2000 */
    const struct http_tls *tls; /* NULL: system defaults */
    size_t max_body;            /* the body and its NUL fit in it (overflow 1); 0: 256 MiB */
    int64_t stall_ms;           /* streams: end the transfer after this long without a byte
                                 * (cc == CURLE_OPERATION_TIMEDOUT); 0: no check */
    /* streaming: when set, each received chunk goes to on_data instead of the buffer; return
     * false to end the transfer (reported as cc == CURLE_WRITE_ERROR, stopped = true) */
    bool (*on_data)(void *arg, const char *p, size_t n);
    void *arg;
};

struct http_result {
    CURLcode cc;
    long status;      /* HTTP status, 0 if none arrived */
    bool sent;        /* the request may have reached the server (CURLINFO_REQUEST_SIZE > 0) */
    bool stopped;     /* on_data asked to stop */
    hp_rc ctx_rc;     /* the context ended the transfer (TIMEOUT / CANCELED), else HP_OK */
    int overflow;     /* 1: body above max_body; 2: out of memory for it */
    const char *body; /* borrowed (buffered mode): NUL-terminated */
    size_t body_len;
    char errbuf[CURL_ERROR_SIZE]; /* libcurl's detail, "" if none */
};

struct http_conn;

/* http_tls_apply: set t's options (borrowed, may be NULL) on easy handle e; *connect_to (owned:
 * curl_slist_free_all once e no longer uses it) holds the CONNECT_TO list, NULL if none. */
void http_tls_apply(CURL *e, const struct http_tls *t, struct curl_slist **connect_to);

/* http_tls_refused: a failed transfer's libcurl code and detail (borrowed) name a TLS refusal
 * (a certificate, a name, a protocol or cipher no side accepts, the peer's TLS alert): an
 * identity or configuration problem that a retry does not fix. A handshake the network cut (the
 * connection reset, closed or timed out before TLS could decide) is an outage, not a refusal:
 * libcurl reports it as CURLE_SSL_CONNECT_ERROR too, with the socket's error as its detail. */
bool http_tls_refused(CURLcode cc, const char *errbuf);

/* http_tls_alert: the transfer failed on the peer's TLS alert (errbuf borrowed, may be NULL):
 * OpenSSL's reason names it. Caveat: libcurl keeps the first error text of a transfer, so after
 * one of its own re-dials the text may be the earlier connection's. */
bool http_tls_alert(CURLcode cc, const char *errbuf);

hp_rc http_conn_new(struct http_conn **out) HP_WUR;
void http_conn_free(struct http_conn *c); /* NULL allowed */

/* http_conn_perform: one exchange; never fails to fill *out. Waits are bounded by ctx and
 * req->timeout_ms; a cancel of ctx ends the transfer at once. */
void http_conn_perform(struct http_conn *c, struct hp_ctx *ctx, const struct http_request *req,
                       struct http_result *out);

struct http_pool;
hp_rc http_pool_new(struct http_pool **out) HP_WUR;
void http_pool_free(struct http_pool *p);                     /* frees idle connections */
struct http_conn *http_pool_get(struct http_pool *p);         /* NULL on NOMEM */
void http_pool_put(struct http_pool *p, struct http_conn *c); /* c taken */

#endif
