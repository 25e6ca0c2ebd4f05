/*
 * ws_client.h - a websocket client (libwebsockets) that follows one server stream: connect to
 * ws[s]://HOST:PORT/PATH (optionally with an Authorization header, a CA bundle, or without
 * verifying the server's certificate), assemble each message from its fragments (at most
 * max_message bytes, else the connection fails), hand every whole message to on_message, until
 * the stop flag is set, the server closes, or the connection fails.
 *
 * Lifecycle: ws_client_init, ws_client_connect, ws_client_run, then ws_client_release (also
 * after a failed connect). What happened is in the struct's outcome members after run.
 *
 * Thread-safety: one thread (the caller of ws_client_run) does everything; *stop may be set
 * from a signal handler: the loop looks at it every WS_CLIENT_TICK_MS.
 */
#ifndef HOSTPATROL_WS_CLIENT_H
#define HOSTPATROL_WS_CLIENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "hostpatrol/buf.h"
#include "hostpatrol/rc.h"

#define WS_CLIENT_TICK_MS 100 /* how often the loop looks at the stop flag */

/* Every pointer is borrowed and must outlive the client. */
struct ws_client_config {
    const char *host; /* also the Host and Origin headers */
    int port;
    bool tls;             /* wss:// */
    const char *path;     /* with its query, e.g. "/ws?namespace=a" */
    const char *auth;     /* the Authorization header's value, or NULL (never logged) */
    const char *ca_file;  /* CA bundle for the server's certificate; NULL: the system's */
    bool insecure;        /* do not verify the server's certificate */
    const char *protocol; /* the local protocol's name */
    size_t max_message;   /* a longer message fails the connection */
    /* on_message: one whole message (data borrowed for the call) */
    void (*on_message)(void *arg, const char *data, size_t len);
    void *arg;
    volatile sig_atomic_t *stop; /* nonzero: run returns */
};

struct ws_client_conn; /* private: the libwebsockets context, its timer and protocols */

struct ws_client {
    struct ws_client_config cfg;
    /* the outcome, once run returned */
    bool established;    /* the upgrade succeeded */
    bool closed;         /* the connection closed */
    bool failed;         /* it failed (why says how) */
    int http_status;     /* the server's answer to a refused upgrade, or 0 */
    char why[256];       /* connection error detail, "" if none */
    char close_why[128]; /* the server's close reason, "" if none */
    /* private */
    struct hp_buf msg;           /* the message being assembled */
    struct ws_client_conn *conn; /* owned */
};

/* ws_client_init: keep cfg (copied; its pointers borrowed); nothing is connected yet. */
void ws_client_init(struct ws_client *c, const struct ws_client_config *cfg);
/* ws_client_release: close and free (NULL allowed; also after a failed connect). */
void ws_client_release(struct ws_client *c);

/* ws_client_connect: start connecting. HP_ERR_NOMEM when the client cannot be created,
 * HP_ERR_UNAVAILABLE when the connection cannot even start; err->msg says which. Whether the
 * connection succeeds is known after ws_client_run. */
HP_WUR hp_rc ws_client_connect(struct ws_client *c, struct hp_err *err);

/* ws_client_run: serve the connection until *stop, a close or a failure. */
void ws_client_run(struct ws_client *c);

/* ws_client_parse_url: "ws[s]://HOST[:PORT][/]" (HOST a name, an IPv4 address or [IPv6]) ->
 * host (into host, host_size bytes), port (default 80 / 443), tls. false if it is not one
 * (a path other than "/" is refused: the stream's path is fixed). */
bool ws_client_parse_url(const char *url, char *host, size_t host_size, int *port, bool *tls);

/* ws_client_add_query: append "?key=value" or "&key=value" (value percent-encoded, RFC 3986
 * unreserved characters kept) to the string path of size bytes; false if it does not fit. */
bool ws_client_add_query(char *path, size_t size, const char *key, const char *value);

#endif
