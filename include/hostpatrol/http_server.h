/*
 * http_server.h - hostpatrol's small HTTP server (libwebsockets) for /metrics, /healthz and
 * /readyz (and later /ws): one service thread, GET only, exact-path routes answered by caller
 * callbacks. Anything else: 404 (unknown path) or 405 (not GET).
 *
 * Ownership: routes (and their strings) are copied by http_server_start; a handler's *body is
 * taken by the server (allocated with hp_malloc; NULL with *len 0 for an empty body).
 * Thread-safety: handlers run on the service thread, one at a time; they must not block for
 * long (they read counters). http_server_stop may be called from any other thread.
 */
#ifndef HOSTPATROL_HTTP_SERVER_H
#define HOSTPATROL_HTTP_SERVER_H

#include <stddef.h>

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

/* http_server_port: the bound port (the real one for "HOST:0"); 0 for NULL. */
int http_server_port(const struct http_server *s);

/* http_server_stop: stop serving, join, free. NULL allowed. */
void http_server_stop(struct http_server *s);

#endif
