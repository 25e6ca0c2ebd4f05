/* http_server.c - the small HTTP server on libwebsockets (see include/hostpatrol/http_server.h).
 *
 * One lws context with one plain-HTTP vhost, serviced by one thread. A request runs the route's
 * handler inside LWS_CALLBACK_HTTP, the headers go out at once and the body follows in chunks of
 * HTTP_CHUNK bytes, one per LWS_CALLBACK_HTTP_WRITEABLE, so a multi-MB /metrics answer never
 * sits twice in memory. The body is owned by the connection's session and freed when it is sent
 * or when the connection goes away, whichever comes first.
 *
 * Websocket: publishers (any thread) put a refcounted copy of the text into the queue of every
 * matching client under ws_mu and wake the service thread with lws_cancel_service; the service
 * thread asks for a writeable callback for each client with something queued and sends one
 * message per callback, so at most one message per client sits in lws's own send buffer. */
#include "hostpatrol/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"

#define HTTP_CHUNK       16384 /* body bytes per lws_write */
#define HTTP_HDR_MAX     1024  /* response header bytes */
#define HTTP_BIND_MAX    256   /* longest accepted bind string */
#define HTTP_TEXT_PLAIN  "text/plain; charset=utf-8"
#define HTTP_KEEPALIVE_S 30 /* idle keep-alive connections are closed after this */
#define HTTP_SERVER_NAME "hostpatrol"
#define WS_ARG_MAX       256 /* longest namespace or name filter */

/* One route, copied from the caller's. */
struct route {
    char *path; /* owned */
    size_t path_len;
    http_handler_fn handle;
    void *arg;
};

/* The parsed bind address. */
struct bind_addr {
    char host[INET6_ADDRSTRLEN]; /* numeric address; "" = all interfaces */
    int family;                  /* AF_INET, AF_INET6, or AF_UNSPEC for all interfaces */
    int port;
};

/* One published message, shared by the clients it is queued for. */
struct ws_msg {
    atomic_size_t refs; /* one per queue slot holding it, plus one while being sent */
    size_t len;
    unsigned char buf[]; /* LWS_PRE bytes for lws, then len bytes of text */
};

/* One websocket client (owned by its session, listed in http_server.clients). */
struct ws_client {
    struct ws_client *next;
    struct lws *wsi; /* borrowed; the service thread's */
    char *ns, *name; /* owned filters, NULL = any */
    size_t head, count;
    uint64_t dropped;                /* dropped since the last notice */
    struct ws_msg *q[HTTP_WS_QUEUE]; /* ring, each a reference */
};

struct http_server {
    struct lws_context *ctx; /* owned; the service thread's until joined (lws_cancel_service
                              * is the one call made on it from another thread) */
    struct lws_vhost *vhost; /* borrowed from ctx */
    struct route *routes;    /* owned, n_routes entries; read-only after start */
    size_t n_routes;
    int port;            /* the bound port; read-only after start */
    atomic_int stopping; /* set by http_server_stop, read by the service thread */
    pthread_t thread;
    char *ws_path; /* owned; NULL: no websocket */
    /* ws_mu guards clients (the list and every client's queue and counters) and the totals */
    pthread_mutex_t ws_mu;
    struct ws_client *clients;
    uint64_t ws_dropped, ws_sent;
};

/* Per-connection state (lws per_session_data, zeroed by lws when the protocol is bound). Only
 * the service thread touches it. */
struct session {
    char *owned;      /* the handler's body (owned), or NULL */
    const char *data; /* the body being sent: owned, or a static string */
    size_t len, sent;
    int close_after;      /* close the connection once the answer is out */
    struct ws_client *ws; /* a websocket connection's client (owned), or NULL */
};

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void quiet_lws(void)
{
    /* A library module never prints: lws logs nothing, errors come back as hp_rc. */
    lws_set_log_level(0, NULL);
}

static void session_clear(struct session *ss)
{
    if (!ss)
        return;
    hp_free(ss->owned);
    *ss = (struct session){0};
}

static const struct route *route_find(const struct http_server *s, const char *path, size_t len)
{
    for (size_t i = 0; i < s->n_routes; i++)
        if (s->routes[i].path_len == len && memcmp(s->routes[i].path, path, len) == 0)
            return &s->routes[i];
    return NULL;
}

/* start_answer: run the route for this request and send the headers; the body follows from
 * send_chunk. Returns nonzero when the connection must close. */
static int start_answer(struct lws *wsi, struct session *ss, const char *uri, size_t uri_len)
{
    struct http_server *s = lws_context_user(lws_get_context(wsi));
    unsigned char buf[LWS_PRE + HTTP_HDR_MAX];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
    const char *ctype = NULL;
    char *uri_ptr = NULL;
    const struct route *r;
    int uri_ptr_len = 0;
    int method, status, close_after;

    session_clear(ss);
    method = lws_http_get_uri_and_method(wsi, &uri_ptr, &uri_ptr_len);
    if (method != LWSHUMETH_GET) {
        /* The request body (if any) is not read: answer and close. */
        status = HTTP_STATUS_METHOD_NOT_ALLOWED;
        ss->data = "method not allowed\n";
        ss->close_after = 1;
    } else if (!(r = route_find(s, uri, uri_len))) {
        status = HTTP_STATUS_NOT_FOUND;
        ss->data = "not found\n";
    } else {
        char *body = NULL;
        size_t len = 0;

        status = r->handle(r->arg, &body, &len, &ctype);
        ss->owned = body;
        ss->data = body;
        ss->len = body ? len : 0;
        if (status < 100 || status > 599) {
            session_clear(ss);
            status = HTTP_STATUS_INTERNAL_SERVER_ERROR;
            ss->data = "handler returned no valid status\n";
            ctype = NULL;
        }
    }
    if (!ss->owned && ss->data)
        ss->len = strlen(ss->data);
    if (lws_add_http_common_headers(wsi, (unsigned int)status, ctype ? ctype : HTTP_TEXT_PLAIN,
                                    (lws_filepos_t)ss->len, &p, end))
        return 1;
    if (status == HTTP_STATUS_METHOD_NOT_ALLOWED &&
        lws_add_http_header_by_name(
            wsi, (const unsigned char *)"allow:", (const unsigned char *)"GET", 3, &p, end))
        return 1;
    if (ss->close_after && lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                                        (const unsigned char *)"close", 5, &p, end))
        return 1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    if (ss->len && method != LWSHUMETH_HEAD) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    close_after = ss->close_after;
    session_clear(ss);
    if (close_after)
        return 1;
    return lws_http_transaction_completed(wsi) ? 1 : 0;
}

/* send_chunk: write the next body chunk; after the last, free the body and end the
 * transaction. Returns nonzero when the connection must close. */
static int send_chunk(struct lws *wsi, struct session *ss)
{
    unsigned char buf[LWS_PRE + HTTP_CHUNK];
    size_t n = ss->len - ss->sent;
    int close_after = ss->close_after;
    enum lws_write_protocol wp = LWS_WRITE_HTTP;

    if (!ss->data || ss->sent >= ss->len)
        return 0; /* a spurious writeable callback: nothing pending */
    if (n > HTTP_CHUNK)
        n = HTTP_CHUNK;
    else
        wp = LWS_WRITE_HTTP_FINAL;
    memcpy(buf + LWS_PRE, ss->data + ss->sent, n); /* lws may use LWS_PRE bytes before data */
    if (lws_write(wsi, buf + LWS_PRE, n, wp) != (int)n)
        return 1;
    ss->sent += n;
    if (wp != LWS_WRITE_HTTP_FINAL) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    session_clear(ss);
    if (close_after)
        return 1;
    return lws_http_transaction_completed(wsi) ? 1 : 0;
}

static void msg_unref(struct ws_msg *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1)
        hp_free(m);
}

static void client_free(struct ws_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->count; i++)
        msg_unref(c->q[(c->head + i) % HTTP_WS_QUEUE]);
    hp_free(c->ns);
    hp_free(c->name);
    hp_free(c);
}

/* client_push: queue a reference to m on c, dropping c's oldest when full. Under ws_mu. */
static void client_push(struct http_server *s, struct ws_client *c, struct ws_msg *m)
{
    if (c->count == HTTP_WS_QUEUE) {
        msg_unref(c->q[c->head]);
        c->head = (c->head + 1) % HTTP_WS_QUEUE;
        c->count--;
        c->dropped++;
        s->ws_dropped++;
    }
    atomic_fetch_add(&m->refs, 1);
    c->q[(c->head + c->count) % HTTP_WS_QUEUE] = m;
    c->count++;
}

static bool client_matches(const struct ws_client *c, const char *ns, const char *name)
{
    return (!c->ns || (ns && !strcmp(c->ns, ns))) && (!c->name || (name && !strcmp(c->name, name)));
}

/* url_arg: the decoded value of query argument key ("namespace="), copied into buf; NULL if
 * absent. */
static const char *url_arg(struct lws *wsi, const char *key, char *buf, int len)
{
    const char *v = lws_get_urlarg_by_name(wsi, key, buf, len);

    return v && *v ? v : NULL;
}

/* ws_filter: whether this upgrade request may become a client: the websocket path, and no
 * name without a namespace. */
static int ws_filter(struct lws *wsi)
{
    struct http_server *s = lws_context_user(lws_get_context(wsi));
    char path[HTTP_BIND_MAX], buf[WS_ARG_MAX + 16];

    if (!s->ws_path || lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0 ||
        strcmp(path, s->ws_path))
        return -1;
    if (url_arg(wsi, "name=", buf, sizeof(buf)) && !url_arg(wsi, "namespace=", buf, sizeof(buf)))
        return -1;
    return 0;
}

/* ws_open: make and list the client of a new websocket connection. */
static int ws_open(struct lws *wsi, struct session *ss)
{
    struct http_server *s = lws_context_user(lws_get_context(wsi));
    struct ws_client *c;
    char buf[WS_ARG_MAX + 16];
    const char *v;

    if (!ss)
        return -1;
    c = hp_calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->wsi = wsi;
    if ((v = url_arg(wsi, "namespace=", buf, sizeof(buf))) && !(c->ns = hp_strdup(v)))
        goto nomem;
    if ((v = url_arg(wsi, "name=", buf, sizeof(buf))) && !(c->name = hp_strdup(v)))
        goto nomem;
    ss->ws = c;
    pthread_mutex_lock(&s->ws_mu);
    c->next = s->clients;
    s->clients = c;
    pthread_mutex_unlock(&s->ws_mu);
    return 0;
nomem:
    client_free(c);
    return -1;
}

/* ws_close: unlist and free the connection's client. */
static void ws_close(struct lws *wsi, struct session *ss)
{
    struct http_server *s = lws_context_user(lws_get_context(wsi));
    struct ws_client **pp;

    if (!ss || !ss->ws)
        return;
    pthread_mutex_lock(&s->ws_mu);
    for (pp = &s->clients; *pp; pp = &(*pp)->next)
        if (*pp == ss->ws) {
            *pp = ss->ws->next;
            break;
        }
    pthread_mutex_unlock(&s->ws_mu);
    client_free(ss->ws);
    ss->ws = NULL;
}

/* ws_wake: (service thread, after lws_cancel_service) ask to write to every client with
 * something to send. */
static void ws_wake(struct lws *wsi)
{
    struct http_server *s = lws_context_user(lws_get_context(wsi));

    if (!s || !s->ws_path)
        return;
    pthread_mutex_lock(&s->ws_mu);
    for (struct ws_client *c = s->clients; c; c = c->next)
        if (c->count || c->dropped)
            lws_callback_on_writable(c->wsi);
    pthread_mutex_unlock(&s->ws_mu);
}

/* ws_send: send the client's drop notice or its next message. Returns nonzero to close. */
static int ws_send(struct lws *wsi, struct session *ss)
{
    struct http_server *s = lws_context_user(lws_get_context(wsi));
    unsigned char notice[LWS_PRE + 64];
    struct ws_msg *m = NULL;
    struct ws_client *c = ss ? ss->ws : NULL;
    uint64_t dropped = 0;
    bool more;
    int n, ok;

    if (!c)
        return 0;
    pthread_mutex_lock(&s->ws_mu);
    if (c->dropped) {
        dropped = c->dropped;
        c->dropped = 0;
    } else if (c->count) {
        m = c->q[c->head]; /* its queue reference is now ours */
        c->head = (c->head + 1) % HTTP_WS_QUEUE;
        c->count--;
        s->ws_sent++;
    }
    more = c->count || c->dropped;
    pthread_mutex_unlock(&s->ws_mu);
    if (dropped) {
        n = snprintf((char *)notice + LWS_PRE, sizeof(notice) - LWS_PRE,
                     "{\"dropped\":%" PRIu64 "}", dropped);
        ok = lws_write(wsi, notice + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) >= n;
    } else if (m) {
        ok = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT) >= (int)m->len;
        msg_unref(m);
    } else {
        return 0;
    }
    if (!ok)
        return 1;
    if (more)
        lws_callback_on_writable(wsi);
    return 0;
}

static int on_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct session *ss = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (!ss)
            return -1;
        return start_answer(wsi, ss, in ? (const char *)in : "", in ? len : 0) ? -1 : 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!ss)
            return 0;
        return send_chunk(wsi, ss) ? -1 : 0;
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        /* A request body is ignored (the answer is already on its way and says 405, with
         * connection: close). lws's default would end the transaction here, mid-answer. */
        return 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        session_clear(ss); /* a body not (fully) sent goes with the connection */
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return ws_filter(wsi);
    case LWS_CALLBACK_ESTABLISHED:
        return ws_open(wsi, ss);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return ws_send(wsi, ss) ? -1 : 0;
    case LWS_CALLBACK_RECEIVE:
        return 0; /* the client's messages are ignored */
    case LWS_CALLBACK_CLOSED:
        ws_close(wsi, ss);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        ws_wake(wsi);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static void *service_main(void *arg)
{
    struct http_server *s = arg;

    while (!atomic_load(&s->stopping))
        if (lws_service(s->ctx, 0) < 0)
            break;
    return NULL;
}

static hp_rc bind_invalid(struct hp_err *err, const char *bind, const char *why)
{
    return hp_err_field(err, HP_ERR_INVALID, "bind", "bind '%s' %s", bind, why);
}

/* parse_bind: "HOST:PORT", ":PORT" or "[IPV6]:PORT" into *a. bind borrowed. */
static hp_rc parse_bind(const char *bind, struct bind_addr *a, struct hp_err *err)
{
    const char *host = bind, *colon, *port_s;
    size_t host_len;
    unsigned char tmp[sizeof(struct in6_addr)];
    char *endp = NULL;
    long port;

    *a = (struct bind_addr){.family = AF_UNSPEC};
    if (strlen(bind) > HTTP_BIND_MAX)
        return hp_err_field(err, HP_ERR_INVALID, "bind", "bind value is longer than %d bytes",
                            HTTP_BIND_MAX);
    if (bind[0] == '[') {
        const char *close = strchr(bind, ']');

        if (!close)
            return bind_invalid(err, bind, "has an unterminated IPv6 address (missing ']')");
        if (close[1] != ':')
            return bind_invalid(err, bind, "must be [IPV6]:PORT");
        host = bind + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
        a->family = AF_INET6;
    } else {
        colon = strrchr(bind, ':');
        if (!colon)
            return bind_invalid(err, bind, "must be HOST:PORT, :PORT, or 0 to disable");
        host_len = (size_t)(colon - bind);
        if (memchr(bind, ':', host_len))
            return bind_invalid(err, bind, "has an IPv6 address without brackets ([IPV6]:PORT)");
        if (host_len)
            a->family = AF_INET;
    }
    if (host_len >= sizeof(a->host))
        return bind_invalid(err, bind, "has a host that is not an IP address or localhost");
    memcpy(a->host, host, host_len);
    a->host[host_len] = '\0';
    if (a->family == AF_INET && strcmp(a->host, "localhost") == 0)
        snprintf(a->host, sizeof(a->host), "127.0.0.1");
    if (a->family != AF_UNSPEC && inet_pton(a->family, a->host, tmp) != 1)
        return bind_invalid(err, bind,
                            a->family == AF_INET6
                                ? "has an invalid IPv6 address"
                                : "has a host that is not an IPv4 address, localhost or [IPv6]");
    port_s = colon + 1;
    if (*port_s < '0' || *port_s > '9')
        return bind_invalid(err, bind, "has a port that is not a number 0-65535");
    errno = 0;
    port = strtol(port_s, &endp, 10);
    if (errno || *endp || port < 0 || port > 65535)
        return bind_invalid(err, bind, "has a port that is not a number 0-65535");
    a->port = (int)port;
    return HP_OK;
}

/* ipv6_usable: whether this host can make IPv6 sockets (all-interfaces binds use one if so). */
static int ipv6_usable(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);

    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

/* bind_errno: why a listening socket on a cannot be made (0 if it can now), for the message. */
static int bind_errno(const struct bind_addr *a, int family)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    int fd, one = 1, e = 0;

    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)a->port);
        if (a->host[0] && inet_pton(AF_INET6, a->host, &s6->sin6_addr) != 1)
            return EINVAL;
        sl = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)a->port);
        if (a->host[0] && inet_pton(AF_INET, a->host, &s4->sin_addr) != 1)
            return EINVAL;
        sl = sizeof(*s4);
    }
    fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0)
        return errno;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 1))
        e = errno;
    close(fd);
    return e;
}

static void routes_free(struct route *routes, size_t n)
{
    if (!routes)
        return;
    for (size_t i = 0; i < n; i++)
        hp_free(routes[i].path);
    hp_free(routes);
}

/* routes_copy: deep copy of the caller's routes into *out (owned). */
static hp_rc routes_copy(const struct http_route *routes, size_t n, struct route **out,
                         struct hp_err *err)
{
    struct route *r = NULL;
    hp_rc rc = HP_OK;

    *out = NULL;
    if (n && !routes)
        return hp_err_set(err, HP_ERR_INVALID, "%zu routes given but no route array", n);
    if (n) {
        r = hp_calloc(n, sizeof(*r));
        if (!r) {
            rc = hp_err_set(err, HP_ERR_NOMEM, "out of memory copying HTTP routes");
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!routes[i].path || routes[i].path[0] != '/' || !routes[i].handle) {
            rc = hp_err_set(err, HP_ERR_INVALID,
                            "HTTP route %zu ('%s') needs a path starting "
                            "with '/' and a handler",
                            i, routes[i].path ? routes[i].path : "");
            goto out;
        }
        r[i].path = hp_strdup(routes[i].path);
        if (!r[i].path) {
            rc = hp_err_set(err, HP_ERR_NOMEM, "out of memory copying HTTP routes");
            goto out;
        }
        r[i].path_len = strlen(r[i].path);
        r[i].handle = routes[i].handle;
        r[i].arg = routes[i].arg;
    }
    *out = r;
    r = NULL;
out:
    routes_free(r, n);
    return rc;
}

static const struct lws_protocols protocols[] = {
    {.name = "http", .callback = on_event, .per_session_data_size = sizeof(struct session)},
    {0}, /* terminator */
};

/* listen_on: create the context and the vhost listening on a. */
static hp_rc listen_on(struct http_server *s, const char *bind, const struct bind_addr *a,
                       struct hp_err *err)
{
    struct lws_context_creation_info info;
    char where[INET6_ADDRSTRLEN + 16];
    char ebuf[128];
    int family = a->family;
    int e;

    if (family == AF_UNSPEC)
        family = ipv6_usable() ? AF_INET6 : AF_INET;
    if (a->family == AF_UNSPEC)
        snprintf(where, sizeof(where), "*:%d", a->port);
    else
        snprintf(where, sizeof(where), family == AF_INET6 ? "[%s]:%d" : "%s:%d", a->host, a->port);

    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    if (family == AF_INET)
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.user = s;
    info.server_string = HTTP_SERVER_NAME;
    s->ctx = lws_create_context(&info);
    if (!s->ctx)
        return hp_err_set(err, HP_ERR_IO, "cannot create the HTTP server for %s", where);

    info.options |= LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    info.port = a->port;
    info.iface = a->host[0] ? a->host : NULL;
    info.protocols = protocols;
    info.vhost_name = "hostpatrol";
    info.keepalive_timeout = HTTP_KEEPALIVE_S;
    s->vhost = lws_create_vhost(s->ctx, &info);
    if (s->vhost)
        s->port = lws_get_vhost_listen_port(s->vhost);
    if (!s->vhost || s->port <= 0) {
        e = bind_errno(a, family);
        return hp_err_field(
            err, HP_ERR_IO, "bind", "bind '%s': cannot listen on %s: %s", bind, where,
            e ? strerror_r(e, ebuf, sizeof(ebuf)) : "the HTTP listener could not be created");
    }
    return HP_OK;
}

hp_rc http_server_start(const char *bind, const struct http_route *routes, size_t n,
                        struct http_server **out, struct hp_err *err)
{
    return http_server_start_ws(bind, routes, n, NULL, out, err);
}

static void server_free(struct http_server *s)
{
    if (!s)
        return;
    if (s->ctx)
        lws_context_destroy(s->ctx); /* closes the connections: their clients go */
    while (s->clients) {
        struct ws_client *c = s->clients;

        s->clients = c->next;
        client_free(c);
    }
    pthread_mutex_destroy(&s->ws_mu);
    routes_free(s->routes, s->n_routes);
    hp_free(s->ws_path);
    hp_free(s);
}

hp_rc http_server_start_ws(const char *bind, const struct http_route *routes, size_t n,
                           const char *ws_path, struct http_server **out, struct hp_err *err)
{
    struct http_server *s = NULL;
    struct bind_addr a;
    char ebuf[128];
    hp_rc rc = HP_OK;
    int e;

    *out = NULL;
    if (!bind || !bind[0] || strcmp(bind, "0") == 0)
        return HP_OK;
    rc = parse_bind(bind, &a, err);
    if (rc)
        goto out;
    pthread_once(&log_once, quiet_lws);
    s = hp_calloc(1, sizeof(*s));
    if (!s) {
        rc = hp_err_set(err, HP_ERR_NOMEM, "out of memory starting the HTTP server");
        goto out;
    }
    atomic_init(&s->stopping, 0);
    pthread_mutex_init(&s->ws_mu, NULL);
    rc = routes_copy(routes, n, &s->routes, err);
    if (rc)
        goto out;
    s->n_routes = n;
    if (ws_path && ws_path[0] != '/') {
        rc = hp_err_field(err, HP_ERR_INVALID, "ws_path", "websocket path '%s' must start with '/'",
                          ws_path);
        goto out;
    }
    if (ws_path && !(s->ws_path = hp_strdup(ws_path))) {
        rc = hp_err_set(err, HP_ERR_NOMEM, "out of memory starting the HTTP server");
        goto out;
    }
    rc = listen_on(s, bind, &a, err);
    if (rc)
        goto out;
    e = pthread_create(&s->thread, NULL, service_main, s);
    if (e) {
        rc = hp_err_set(err, HP_ERR_INTERNAL, "cannot start the HTTP service thread: %s",
                        strerror_r(e, ebuf, sizeof(ebuf)));
        goto out;
    }
    *out = s;
    s = NULL;
out:
    server_free(s);
    return rc;
}

int http_server_port(const struct http_server *s)
{
    return s ? s->port : 0;
}

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, 1);
    lws_cancel_service(s->ctx);
    pthread_join(s->thread, NULL);
    server_free(s);
}

void http_server_publish(struct http_server *s, const char *ns, const char *name,
                         const char *json_text)
{
    struct ws_msg *m = NULL;
    size_t len;
    bool any = false;

    if (!s || !s->ws_path || !json_text)
        return;
    len = strlen(json_text);
    pthread_mutex_lock(&s->ws_mu);
    for (struct ws_client *c = s->clients; c; c = c->next) {
        if (!client_matches(c, ns, name))
            continue;
        if (!m) {
            /* copied only when someone listens; allocation failure: counted as dropped */
            m = hp_malloc(sizeof(*m) + LWS_PRE + len);
            if (m) {
                atomic_init(&m->refs, 1); /* ours until the loop ends */
                m->len = len;
                memcpy(m->buf + LWS_PRE, json_text, len);
            }
        }
        if (m) {
            client_push(s, c, m);
        } else {
            c->dropped++;
            s->ws_dropped++;
        }
        any = true;
    }
    pthread_mutex_unlock(&s->ws_mu);
    msg_unref(m);
    if (any)
        lws_cancel_service(s->ctx);
}

void http_server_ws_stats(struct http_server *s, struct http_ws_stats *out)
{
    *out = (struct http_ws_stats){0};
    if (!s)
        return;
    pthread_mutex_lock(&s->ws_mu);
    for (const struct ws_client *c = s->clients; c; c = c->next) {
        out->clients++;
        out->queued += c->count;
    }
    out->dropped = s->ws_dropped;
    out->sent = s->ws_sent;
    pthread_mutex_unlock(&s->ws_mu);
}
