/*
 * http_server.h - hostpatrol's small HTTP server (libwebsockets) for /metrics, /healthz and
 * /readyz and /ws: one service thread, GET only, exact-path routes answered by caller
 * callbacks. Anything else: 404 (unknown path) or 405 (not GET).
 *
 * Websocket (optional, http_server_start_ws): a websocket upgrade on ws_path streams the text
 * messages given to http_server_publish. A client filters with the query string
 * "?namespace=NS&name=NAME" (both optional; name needs namespace; an upgrade on another path or
 * with name alone is refused). Each client has a queue of HTTP_WS_QUEUE messages: when a slow
 * client's queue is full its oldest message is dropped and counted, and before its next message
 * it gets the text message {"dropped":N} (N dropped since the last notice).
 *
 * Kept messages and the dashboard protocol (http_server_opts.ws_protocol): the server keeps the
 * latest message of each (slot, namespace, name) given to http_server_keep, at most
 * HTTP_KEEP_MAX of them and HTTP_KEEP_BYTES in all (the least recently updated go first). A
 * client whose upgrade asks for the websocket subprotocol ws_protocol gets, before anything
 * else, every kept message its filter matches (oldest first; taken when its token is admitted,
 * superseding what it had queued), then {"type":"synced"}, then the live messages of every
 * slot; other clients get only HTTP_KEEP_ALL messages, as before.
 * Messages from the client are ignored, but a ws_protocol client's token (below).
 *
 * Static assets (http_server_opts.assets): exact paths answered to anyone (no token: an asset
 * holds no data) with Cache-Control: no-cache, X-Content-Type-Options: nosniff, and a strict
 * Content-Security-Policy (scripts, styles, images and connections from the same origin only,
 * no framing).
 *
 * Ownership: routes (and their strings) are copied by http_server_start; a handler's *body is
 * taken by the server (allocated with hp_malloc; NULL with *len 0 for an empty body).
 * Thread-safety: handlers run on the service thread, one at a time; they must not block for
 * long (they read counters). http_server_stop may be called from any other thread.
 */
#ifndef HOSTPATROL_HTTP_SERVER_H
#define HOSTPATROL_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/rc.h"

/* A handler sets *body (hp_malloc'ed, taken by the server; NULL for an empty body) and *len, may
 * set *content_type (a static string; left NULL: "text/plain; charset=utf-8"), and returns the
 * HTTP status (100-599; anything else answers 500). */
typedef int (*http_handler_fn)(void *arg, char **body, size_t *len, const char **content_type);

struct http_route {
    const char *path; /* exact, e.g. "/metrics" */
    http_handler_fn handle;
    void *arg;
};

struct http_server;

/* http_server_start: listen on bind ("HOST:PORT", ":PORT" = all interfaces, "0" or "" = do not
 * serve: *out NULL and HP_OK) and serve routes on a new thread. Bad bind -> HP_ERR_INVALID
 * naming field "bind"; a port in use -> HP_ERR_IO with the address. *out owned. */
hp_rc http_server_start(const char *bind, const struct http_route *routes, size_t n,
                        struct http_server **out, struct hp_err *err) HP_WUR;

#define HTTP_WS_QUEUE 256 /* messages queued per websocket client */

/* An access check (see metrics_auth_check, which fits): the verdict for token (borrowed; NULL
 * when the request sent none) on path (a route's path; NULL for a websocket) and ns (the
 * namespace of a websocket message or filter; NULL: none). Returns 0 while the verdict is
 * pending (the server asks again after http_server_wake), else an HTTP status: 200 allowed,
 * anything else is answered with msg (filled by the check). Called on the service thread:
 * must not block. */
typedef int (*http_auth_fn)(void *arg, const char *token, const char *path, const char *ns,
                            char *msg, size_t msg_len);

struct serving_cert;

/* A static asset: data (borrowed, outlives the server) served at path with content_type. */
struct http_asset {
    const char *path; /* exact, e.g. "/" */
    const char *content_type;
    const unsigned char *data;
    size_t len;
};

struct http_server_opts {
    const char *ws_path;      /* websocket path, or NULL (see http_server_start_ws) */
    struct serving_cert *tls; /* borrowed, outlives the server: serve HTTPS with it; NULL: HTTP */
    http_auth_fn auth;        /* NULL: no access checks */
    void *auth_arg;
    int64_t auth_wait_ms;            /* a request still pending after this gets 503; 0: 10000 */
    const struct http_asset *assets; /* borrowed (with their strings) for the server's life */
    size_t n_assets;
    const char *ws_protocol; /* subprotocol of the clients that get kept messages; NULL: none */
};

/* http_server_start_ws: http_server_start, plus websocket streaming on ws_path (exact path,
 * starting with '/'; NULL: none, same as http_server_start). ws_path copied. */
hp_rc http_server_start_ws(const char *bind, const struct http_route *routes, size_t n,
                           const char *ws_path, struct http_server **out,
                           struct hp_err *err) HP_WUR;

/* http_server_start_opts: http_server_start_ws with TLS and access checks (o may be NULL).
 *
 * With o->auth, every request on a route sends "Authorization: Bearer TOKEN" and is answered
 * only after auth(token, route path, NULL) says 200: 401 (with WWW-Authenticate: Bearer) and
 * 403 and 5xx answers carry the check's message. The service thread never waits for a verdict:
 * the request is parked and answered when http_server_wake reports a new verdict (or with 503
 * after auth_wait_ms). A websocket upgrade without a token, or whose verdict is already known
 * to be a refusal, is answered with that status; one whose verdict is pending is accepted, gets
 * nothing until the verdict comes, and is closed (code 1008, reason "401 ..." / "403 ...")
 * if refused. Each websocket message of namespace NS is sent only if auth(token, NULL, NS) is
 * 200 (refused: skipped; pending: the stream waits). A ?namespace= filter is checked too.
 * A browser cannot send an Authorization header with a websocket: an upgrade without one that
 * asks for the subprotocol ws_protocol is accepted, gets nothing, and must send its token as
 * its first message, "Bearer TOKEN" (one frame), checked the same way from then on; anything
 * else first is closed with 1008 "401 ...", and nothing within auth_wait_ms closes it. (Not the
 * token as a subprotocol, as kube-apiserver allows: lws refuses a protocol list over 127 bytes,
 * and a ServiceAccount token is ~1 KiB.) */
hp_rc http_server_start_opts(const char *bind, const struct http_route *routes, size_t n,
                             const struct http_server_opts *o, struct http_server **out,
                             struct hp_err *err) HP_WUR;

#define HTTP_KEEP_MAX   8192                /* kept messages, all slots */
#define HTTP_KEEP_BYTES (32u * 1024 * 1024) /* their text, in all */
#define HTTP_KEEP_ALL   0 /* slot whose messages also go to every matching client */
#define HTTP_KEEP_SLOTS 2 /* slots 1..: only to the ws_protocol clients */

/* http_server_keep: keep json_text (copied) as the latest message of (slot, ns, name), and
 * publish it like http_server_publish: to every matching client for HTTP_KEEP_ALL, only to the
 * ws_protocol clients for another slot. A text equal to the one kept is not published again.
 * NULL json_text forgets every slot of (ns, name) (a deleted resource) and publishes gone_text
 * (may be NULL) to the ws_protocol clients. Thread-safe; NULL s or ns: nothing. */
void http_server_keep(struct http_server *s, unsigned slot, const char *ns, const char *name,
                      const char *json_text, const char *gone_text);

/* http_server_set_notice: the one message about no namespace (json_text copied) that every
 * ws_protocol client gets once admitted: first in its snapshot, and live when it changes (an
 * equal text is not sent again). For what is true of the server, not of a namespace (this
 * replica leads or stands by). Thread-safe; NULL s or json_text, or no ws_protocol: nothing. */
void http_server_set_notice(struct http_server *s, const char *json_text);

/* http_server_wake: a verdict changed: look at the parked requests and streams again. Any
 * thread; must not race with http_server_stop. NULL allowed. */
void http_server_wake(struct http_server *s);

/* http_server_publish: queue json_text (copied; borrowed) for every websocket client whose
 * filter matches ns and name (borrowed), and wake the service thread to send it. Thread-safe;
 * must not race with http_server_stop. NULL s, NULL text or no websocket path: nothing. A
 * message that cannot be allocated counts as dropped for the clients it was for. */
void http_server_publish(struct http_server *s, const char *ns, const char *name,
                         const char *json_text);

struct http_ws_stats {
    size_t clients;         /* connected websocket clients */
    uint64_t denied;        /* messages not sent: the client may not read their namespace */
    uint64_t auth_refused;  /* requests and upgrades answered 401/403 */
    size_t queued;          /* messages queued over all clients (at most clients * HTTP_WS_QUEUE) */
    uint64_t dropped, sent; /* totals since start (dropped: per client) */
    size_t kept, kept_bytes; /* http_server_keep's messages now, and their text's bytes */
};

/* http_server_ws_stats: the websocket counters (zeros for NULL). Thread-safe. */
void http_server_ws_stats(struct http_server *s, struct http_ws_stats *out);

struct prom_writer;
/* http_server_ws_metrics: hostpatrol_ws_clients, hostpatrol_dashboard_kept_messages and
 * _kept_bytes of s. Thread-safe. */
void http_server_ws_metrics(struct http_server *s, struct prom_writer *w);

/* http_server_port: the bound port (the real one for "HOST:0"); 0 for NULL. */
int http_server_port(const struct http_server *s);

/* http_server_stop: stop serving, join, free. NULL allowed. */
void http_server_stop(struct http_server *s);

#endif
