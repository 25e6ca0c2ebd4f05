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
 * message per callback, so at most one message per client sits in lws's own send buffer.
 *
 * TLS (a serving_cert): lws's vhost gets the PEM pair at start, and OpenSSL's certificate
 * callback hands every handshake the current pair, so a rotated one is served without restart.
 *
 * Access checks (http_auth_fn): the check never blocks. A request whose verdict is pending is
 * parked (http_server.parked, service thread only) and answered from its writeable callback
 * once http_server_wake (lws_cancel_service) reports a verdict, or with 503 once auth_wait_ms
 * has passed (a timer looks every AUTH_TICK_MS while anything is parked). A websocket client
 * keeps its token; before each message the service thread asks about the message's namespace:
 * allowed -> sent, refused -> skipped (counted), pending -> the stream waits for the wake. */
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
#include "hostpatrol/ctx.h"
#include "hostpatrol/prom_writer.h"
#include "hostpatrol/serving_cert.h"

#define HTTP_CHUNK       16384 /* body bytes per lws_write */
#define HTTP_HDR_MAX     2048  /* response header bytes */
#define HTTP_BIND_MAX    256   /* longest accepted bind string */
#define HTTP_TEXT_PLAIN  "text/plain; charset=utf-8"
#define HTTP_KEEPALIVE_S 30 /* idle keep-alive connections are closed after this */
#define HTTP_SERVER_NAME "hostpatrol"
#define WS_ARG_MAX       256  /* longest namespace or name filter */
#define AUTH_HDR_MAX     8192 /* longest Authorization header (a ServiceAccount JWT is ~1 KiB) */
#define AUTH_MSG_MAX     256
#define AUTH_TICK_MS     250 /* parked requests are looked at this often (their deadline) */
/* what a static asset may do: nothing from elsewhere, no inline script or style, no framing */
#define ASSET_CSP                                                                                  \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src "        \
    "'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

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
    char *ns;           /* the namespace it is about (points into buf after the text), or NULL */
    bool public_;       /* about no namespace but sent to every admitted client ("synced") */
    size_t len;
    unsigned char buf[]; /* LWS_PRE bytes for lws, then len bytes of text */
};

/* One websocket client (owned by its session, listed in http_server.clients). */
struct ws_client {
    struct ws_client *next;
    struct lws *wsi; /* borrowed; the service thread's */
    char *ns, *name; /* owned filters, NULL = any */
    char *token;     /* owned bearer token (wiped when freed); only the service thread reads it */
    bool authed;     /* access checks on: the token (and the ns filter) passed; service thread */
    size_t head, count;
    uint64_t dropped;                /* dropped since the last notice */
    bool dash;                       /* asked for ws_protocol: gets kept and every slot */
    bool await_token;                /* a ws_protocol client whose token is its 1st message */
    struct ws_msg **snap;            /* owned: the kept messages (references) sent first */
    size_t snap_n, snap_pos;         /* snap[snap_pos..snap_n) still to send */
    struct ws_msg *q[HTTP_WS_QUEUE]; /* ring, each a reference */
};

/* One kept message: the latest of (slot, ns, name). */
struct kept {
    unsigned slot;
    char *ns, *name;  /* owned */
    struct ws_msg *m; /* a reference */
    uint64_t seq;     /* when it was last replaced: oldest first in a snapshot, evicted first */
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
    uint64_t ws_dropped, ws_sent, ws_denied, auth_refused;
    /* access checks (read-only after start); the parked list is the service thread's */
    struct serving_cert *tls; /* borrowed */
    http_auth_fn auth;
    void *auth_arg;
    int64_t auth_wait_ms;
    struct session *parked; /* requests waiting for a verdict, through session.next */
    lws_sorted_usec_list_t tick;
    const struct http_asset *assets; /* borrowed */
    size_t n_assets;
    char *ws_protocol;                 /* owned; NULL: no kept messages */
    struct lws_protocols protocols[3]; /* "http", ws_protocol, terminator */
    /* under ws_mu: the kept messages (HTTP_KEEP_MAX entries when ws_protocol is set) */
    struct kept *kept;
    size_t n_kept, kept_bytes;
    uint64_t kept_seq;
    struct ws_msg *notice; /* under ws_mu: http_server_set_notice's (public_), or NULL */
};

/* Per-connection state (lws per_session_data, zeroed by lws when the protocol is bound). Only
 * the service thread touches it. */
struct session {
    struct session *next; /* in http_server.parked while waiting for a verdict */
    struct lws *wsi;      /* borrowed, while parked */
    char *token;          /* owned, wiped; while parked */
    char *uri;            /* owned; while parked */
    int64_t parked_ns;    /* when it was parked (0: not parked) */
    char *owned;          /* the handler's body (owned), or NULL */
    const char *data;     /* the body being sent: owned, or a static string */
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

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        hp_free(s);
    }
}

static void session_clear(struct session *ss)
{
    if (!ss)
        return;
    hp_free(ss->owned);
    wipe_free(ss->token);
    hp_free(ss->uri);
    *ss = (struct session){0};
}

/* unpark: take ss off the parked list (service thread). */
static void unpark(struct http_server *s, struct session *ss)
{
    for (struct session **pp = &s->parked; *pp; pp = &(*pp)->next)
        if (*pp == ss) {
            *pp = ss->next;
            break;
        }
    ss->next = NULL;
    ss->parked_ns = 0;
}

/* bearer: the token of "Authorization: Bearer TOKEN" (owned), or NULL when there is none. */
static char *bearer(struct lws *wsi)
{
    char *buf, *tok = NULL, *p;
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);

    if (n <= 0 || n >= AUTH_HDR_MAX || !(buf = hp_malloc((size_t)n + 1)))
        return NULL;
    if (lws_hdr_copy(wsi, buf, n + 1, WSI_TOKEN_HTTP_AUTHORIZATION) == n &&
        !strncasecmp(buf, "bearer ", 7)) {
        for (p = buf + 7; *p == ' '; p++)
            ;
        if (*p)
            tok = hp_strdup(p);
    }
    explicit_bzero(buf, (size_t)n);
    hp_free(buf);
    return tok;
}

static const struct http_asset *asset_find(const struct http_server *s, const char *path,
                                           size_t len)
{
    for (size_t i = 0; i < s->n_assets; i++)
        if (strlen(s->assets[i].path) == len && memcmp(s->assets[i].path, path, len) == 0)
            return &s->assets[i];
    return NULL;
}

static const struct route *route_find(const struct http_server *s, const char *path, size_t len)
{
    for (size_t i = 0; i < s->n_routes; i++)
        if (s->routes[i].path_len == len && memcmp(s->routes[i].path, path, len) == 0)
            return &s->routes[i];
    return NULL;
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

/* start_answer: run the route for this request and send the headers; the body follows from
 * send_chunk. Returns nonzero when the connection must close. */
static int start_answer(struct lws *wsi, struct session *ss, int method, const char *uri,
                        size_t uri_len, int refuse, const char *why)
{
    struct http_server *s = lws_context_user(lws_get_context(wsi));
    unsigned char buf[LWS_PRE + HTTP_HDR_MAX];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
    const char *ctype = NULL;
    const struct route *r;
    const struct http_asset *a = NULL;
    int status, close_after;

    session_clear(ss);
    if (refuse) {
        /* the access check said no (or could not say): its message, not the route */
        char *body = hp_malloc(strlen(why) + 2);

        status = refuse;
        if (body) {
            snprintf(body, strlen(why) + 2, "%s\n", why);
            ss->owned = body;
            ss->data = body;
            ss->len = strlen(body);
        } else {
            ss->data = "access refused\n";
        }
    } else if (method != LWSHUMETH_GET) {
        /* The request body (if any) is not read: answer and close. */
        status = HTTP_STATUS_METHOD_NOT_ALLOWED;
        ss->data = "method not allowed\n";
        ss->close_after = 1;
    } else if ((a = asset_find(s, uri, uri_len))) {
        status = HTTP_STATUS_OK;
        ss->data = (const char *)a->data;
        ss->len = a->len;
        ctype = a->content_type;
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
    if (!ss->owned && ss->data && !a)
        ss->len = strlen(ss->data);
    if (lws_add_http_common_headers(wsi, (unsigned int)status, ctype ? ctype : HTTP_TEXT_PLAIN,
                                    (lws_filepos_t)ss->len, &p, end))
        return 1;
    if (a && (add_header(wsi, "cache-control:", "no-cache", &p, end) ||
              add_header(wsi, "x-content-type-options:", "nosniff", &p, end) ||
              add_header(wsi, "content-security-policy:", ASSET_CSP, &p, end) ||
              add_header(wsi, "referrer-policy:", "no-referrer", &p, end)))
        return 1;
    if (status == HTTP_STATUS_UNAUTHORIZED &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"www-authenticate:",
                                    (const unsigned char *)"Bearer", 6, &p, end))
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
    for (size_t i = c->snap_pos; i < c->snap_n; i++)
        msg_unref(c->snap[i]);
    hp_free(c->snap);
    hp_free(c->ns);
    hp_free(c->name);
    wipe_free(c->token);
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

static int kept_by_seq(const void *a, const void *b)
{
    uint64_t x = (*(struct kept *const *)a)->seq, y = (*(struct kept *const *)b)->seq;

    return x < y ? -1 : x > y;
}

/* msg_new: a message of text (len bytes) about ns (may be NULL), one reference (the caller's);
 * NULL when out of memory. */
static struct ws_msg *msg_new(const char *ns, const char *text, size_t len)
{
    size_t ns_len = ns ? strlen(ns) + 1 : 0;
    struct ws_msg *m = hp_malloc(sizeof(*m) + LWS_PRE + len + ns_len);

    if (!m)
        return NULL;
    atomic_init(&m->refs, 1);
    m->public_ = false;
    m->len = len;
    memcpy(m->buf + LWS_PRE, text, len);
    m->ns = ns ? (char *)m->buf + LWS_PRE + len : NULL;
    if (ns)
        memcpy(m->ns, ns, ns_len);
    return m;
}

/* snapshot: (under ws_mu) a ws_protocol client's first messages, once it may read: the notice,
 * the kept messages its filter matches, oldest first, then {"type":"synced"}. What it had
 * queued before is older than that state: dropped. Nonzero when out of memory. */
static int snapshot(struct http_server *s, struct ws_client *c)
{
    static const char synced[] = "{\"type\":\"synced\"}";
    struct kept **k = hp_calloc(s->n_kept + 1, sizeof(*k));
    size_t n = 0, first = s->notice ? 1 : 0;

    c->snap = hp_calloc(s->n_kept + 2, sizeof(*c->snap));
    if (!k || !c->snap) {
        hp_free(k);
        return -1;
    }
    while (c->count) {
        msg_unref(c->q[c->head]);
        c->head = (c->head + 1) % HTTP_WS_QUEUE;
        c->count--;
    }
    c->dropped = 0;
    if (s->notice) {
        atomic_fetch_add(&s->notice->refs, 1);
        c->snap[0] = s->notice;
    }
    for (size_t i = 0; i < s->n_kept; i++)
        if (client_matches(c, s->kept[i].ns, s->kept[i].name))
            k[n++] = &s->kept[i];
    qsort(k, n, sizeof(*k), kept_by_seq);
    for (size_t i = 0; i < n; i++) {
        atomic_fetch_add(&k[i]->m->refs, 1);
        c->snap[first + i] = k[i]->m;
    }
    hp_free(k);
    n += first;
    c->snap_n = n;
    c->snap[n] = msg_new(NULL, synced, sizeof(synced) - 1);
    if (!c->snap[n])
        return -1;
    c->snap[n]->public_ = true;
    c->snap_n++;
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
    c->dash = s->ws_protocol && lws_get_protocol(wsi) &&
              !strcmp(lws_get_protocol(wsi)->name, s->ws_protocol);
    if (s->auth && !(c->token = bearer(wsi))) {
        if (!c->dash)
            goto nomem; /* checked at the upgrade: a token is there */
        /* its first message must bring the token, within the review's own wait */
        c->await_token = true;
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, (int)(s->auth_wait_ms / 1000) + 1);
    }
    c->authed = !s->auth;
    ss->ws = c;
    pthread_mutex_lock(&s->ws_mu);
    /* with access checks, the snapshot waits for the token's admission (ws_send) */
    if (c->dash && !s->auth && snapshot(s, c)) {
        pthread_mutex_unlock(&s->ws_mu);
        ss->ws = NULL;
        goto nomem;
    }
    c->next = s->clients;
    s->clients = c;
    pthread_mutex_unlock(&s->ws_mu);
    if (c->snap_n)
        lws_callback_on_writable(wsi);
    if (!c->authed && !c->await_token)
        lws_callback_on_writable(wsi); /* ask for the verdict (it may be cached already) */
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

    if (!s)
        return;
    for (struct session *p = s->parked; p; p = p->next)
        lws_callback_on_writable(p->wsi);
    if (!s->ws_path)
        return;
    pthread_mutex_lock(&s->ws_mu);
    for (struct ws_client *c = s->clients; c; c = c->next)
        if (c->count || c->dropped || !c->authed || c->snap_pos < c->snap_n)
            lws_callback_on_writable(c->wsi);
    pthread_mutex_unlock(&s->ws_mu);
}

/* ws_refuse: close a websocket whose access was refused, saying why (1008, "403 ..."). */
static int ws_refuse(struct http_server *s, struct lws *wsi, int status, const char *why)
{
    char reason[124];
    int n = snprintf(reason, sizeof(reason), "%d %s", status, why);

    pthread_mutex_lock(&s->ws_mu);
    s->auth_refused++;
    pthread_mutex_unlock(&s->ws_mu);
    lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)reason,
                     n < 0                         ? 0
                     : (size_t)n >= sizeof(reason) ? sizeof(reason) - 1
                                                   : (size_t)n);
    return 1;
}

/* ws_receive: a message from the client: a ws_protocol client's first is its token
 * ("Bearer TOKEN", one frame); the rest are ignored. Returns nonzero to close. */
static int ws_receive(struct lws *wsi, struct session *ss, const void *in, size_t len)
{
    struct http_server *s = lws_context_user(lws_get_context(wsi));
    struct ws_client *c = ss ? ss->ws : NULL;
    const char *p = in;
    size_t i;

    if (!c || !c->await_token)
        return 0;
    if (!lws_is_first_fragment(wsi) || !lws_is_final_fragment(wsi) || len < 6 ||
        len >= AUTH_HDR_MAX || strncasecmp(p, "bearer", 6) || (len > 6 && p[6] != ' '))
        return ws_refuse(s, wsi, 401, "the first message must be 'Bearer TOKEN'");
    for (i = 6; i < len && p[i] == ' '; i++)
        ;
    if (i == len)
        return ws_refuse(s, wsi, 401, "no bearer token sent");
    if (!(c->token = hp_strndup(p + i, len - i)))
        return ws_refuse(s, wsi, 503, "out of memory");
    explicit_bzero((void *)(uintptr_t)in, len); /* lws's receive buffer */
    c->await_token = false;
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    lws_callback_on_writable(wsi); /* ask for the verdict */
    return 0;
}

/* ws_admit: (access checks on) may c read at all, and its ?namespace= filter? Returns 0 to wait
 * (pending), 200 when admitted, else the refusal's status with why filled. */
static int ws_admit(struct http_server *s, struct ws_client *c, char *why, size_t n)
{
    int v;

    if (c->authed)
        return 200;
    v = s->auth(s->auth_arg, c->token, NULL, c->ns, why, n);
    if (v == 200)
        c->authed = true;
    return v;
}

/* ws_next: (access checks on) the next message c may read, taken off its queue (the caller's
 * reference), skipping those of namespaces it may not read. NULL: nothing to send now (empty,
 * or the verdict for the head's namespace is pending: a wake comes when it lands). */
static struct ws_msg *ws_next(struct http_server *s, struct ws_client *c)
{
    char why[AUTH_MSG_MAX];

    for (;;) {
        struct ws_msg *m;
        int v = 200;

        pthread_mutex_lock(&s->ws_mu);
        m = c->snap_pos < c->snap_n ? c->snap[c->snap_pos] : c->count ? c->q[c->head] : NULL;
        if (m)
            atomic_fetch_add(&m->refs, 1); /* ours while we ask, even if dropped meanwhile */
        pthread_mutex_unlock(&s->ws_mu);
        if (!m)
            return NULL;
        /* with access checks, a message about no namespace goes to no one (none is published)
         * but the snapshot's end marker */
        v = m->public_ ? 200
            : m->ns    ? s->auth(s->auth_arg, c->token, NULL, m->ns, why, sizeof(why))
                       : 403;
        if (v == 0) {
            msg_unref(m);
            return NULL;
        }
        pthread_mutex_lock(&s->ws_mu);
        if (c->snap_pos < c->snap_n) {
            /* the snapshot is the service thread's alone: m is still its head */
            c->snap_pos++;
            msg_unref(m);
            if (v == 200)
                s->ws_sent++;
            else
                s->ws_denied++;
        } else if (c->count && c->q[c->head] == m) {
            c->head = (c->head + 1) % HTTP_WS_QUEUE;
            c->count--;
            msg_unref(m); /* the queue's reference; ours remains */
            if (v == 200)
                s->ws_sent++;
            else
                s->ws_denied++;
        } else {
            v = -1; /* dropped by a publisher while we asked: look again */
        }
        pthread_mutex_unlock(&s->ws_mu);
        if (v == 200)
            return m;
        msg_unref(m);
    }
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

    if (!c || c->await_token)
        return 0;
    if (s->auth) {
        char why[AUTH_MSG_MAX];
        int v = ws_admit(s, c, why, sizeof(why));

        if (v == 0)
            return 0; /* a wake comes with the verdict */
        if (v != 200)
            return ws_refuse(s, wsi, v, why);
        pthread_mutex_lock(&s->ws_mu);
        if (c->dash && !c->snap && snapshot(s, c)) {
            pthread_mutex_unlock(&s->ws_mu);
            return ws_refuse(s, wsi, 503, "out of memory");
        }
        dropped = c->dropped;
        c->dropped = 0;
        pthread_mutex_unlock(&s->ws_mu);
        if (!dropped)
            m = ws_next(s, c);
        pthread_mutex_lock(&s->ws_mu);
        more = c->count || c->dropped || c->snap_pos < c->snap_n;
        pthread_mutex_unlock(&s->ws_mu);
        if (!dropped && !m)
            return 0;
        goto write;
    }
    pthread_mutex_lock(&s->ws_mu);
    if (c->snap_pos < c->snap_n) {
        m = c->snap[c->snap_pos++]; /* its snapshot reference is now ours */
        s->ws_sent++;
    } else if (c->dropped) {
        dropped = c->dropped;
        c->dropped = 0;
    } else if (c->count) {
        m = c->q[c->head]; /* its queue reference is now ours */
        c->head = (c->head + 1) % HTTP_WS_QUEUE;
        c->count--;
        s->ws_sent++;
    }
    more = c->count || c->dropped || c->snap_pos < c->snap_n;
    pthread_mutex_unlock(&s->ws_mu);
write:
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

/* count_refusal: one more 401/403 answered. */
static void count_refusal(struct http_server *s, int status)
{
    if (status != 401 && status != 403)
        return;
    pthread_mutex_lock(&s->ws_mu);
    s->auth_refused++;
    pthread_mutex_unlock(&s->ws_mu);
}

static void on_tick(lws_sorted_usec_list_t *sul);

/* on_request: a new request. Without access checks, or for what needs none (not GET, no such
 * route), answered at once; else answered when the verdict is known, parked until then. */
static int on_request(struct lws *wsi, struct session *ss, const char *uri, size_t uri_len)
{
    struct http_server *s = lws_context_user(lws_get_context(wsi));
    char *uri_ptr = NULL, *token, why[AUTH_MSG_MAX] = "";
    int uri_ptr_len = 0, method, v;

    method = lws_http_get_uri_and_method(wsi, &uri_ptr, &uri_ptr_len);
    if (!s->auth || method != LWSHUMETH_GET || !route_find(s, uri, uri_len))
        return start_answer(wsi, ss, method, uri, uri_len, 0, NULL);
    session_clear(ss);
    token = bearer(wsi);
    ss->uri = hp_strndup(uri, uri_len);
    if (!ss->uri) {
        wipe_free(token);
        return start_answer(wsi, ss, method, uri, uri_len, 503, "out of memory");
    }
    v = s->auth(s->auth_arg, token, ss->uri, NULL, why, sizeof(why));
    if (v) {
        wipe_free(token);
        count_refusal(s, v);
        return start_answer(wsi, ss, method, uri, uri_len, v == 200 ? 0 : v, why);
    }
    /* pending: parked until a wake (the verdict) or the tick (the deadline) */
    ss->token = token;
    ss->wsi = wsi;
    ss->parked_ns = hp_now_ns();
    ss->next = s->parked;
    s->parked = ss;
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, (int)(s->auth_wait_ms / 1000) + 5);
    lws_sul_schedule(s->ctx, 0, &s->tick, on_tick, AUTH_TICK_MS * LWS_US_PER_MS);
    return 0;
}

/* on_parked_writeable: a parked request may have its verdict now (or be out of time). */
static int on_parked_writeable(struct lws *wsi, struct session *ss)
{
    struct http_server *s = lws_context_user(lws_get_context(wsi));
    char why[AUTH_MSG_MAX] = "", *uri;
    int v, rc;

    v = s->auth(s->auth_arg, ss->token, ss->uri, NULL, why, sizeof(why));
    if (!v && hp_now_ns() - ss->parked_ns < s->auth_wait_ms * 1000000)
        return 0;
    if (!v) {
        v = 503;
        snprintf(why, sizeof(why), "the access review did not finish within %lld ms; try again",
                 (long long)s->auth_wait_ms);
    }
    count_refusal(s, v);
    unpark(s, ss);
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    uri = ss->uri; /* start_answer clears the session: keep the path for it */
    ss->uri = NULL;
    rc = start_answer(wsi, ss, LWSHUMETH_GET, uri, strlen(uri), v == 200 ? 0 : v, why);
    hp_free(uri);
    return rc;
}

/* on_tick: (service thread, a timer) every AUTH_TICK_MS while requests are parked: let each look at
 * its verdict and deadline. */
static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct http_server *s = lws_container_of(sul, struct http_server, tick);

    for (struct session *p = s->parked; p; p = p->next)
        lws_callback_on_writable(p->wsi);
    if (s->parked)
        lws_sul_schedule(s->ctx, 0, &s->tick, on_tick, AUTH_TICK_MS * LWS_US_PER_MS);
}

/* wants_ws_protocol: whether the upgrade asks for s->ws_protocol (Sec-WebSocket-Protocol, a
 * comma-separated list). */
static bool wants_ws_protocol(const struct http_server *s, struct lws *wsi)
{
    char buf[128];
    size_t n = s->ws_protocol ? strlen(s->ws_protocol) : 0;
    int len;

    if (!n || (len = lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_PROTOCOL)) <= 0)
        return false;
    for (const char *p = buf; (p = strstr(p, s->ws_protocol)); p += n)
        if ((p == buf || p[-1] == ',' || p[-1] == ' ') && (!p[n] || p[n] == ',' || p[n] == ' '))
            return true;
    return false;
}

/* confirm_upgrade: (access checks on) a websocket upgrade needs a token; a verdict already
 * known to refuse is answered here with its status (a pending one is decided after). Returns
 * 0 to go on, 1 when answered, -1 to hang up. */
static int confirm_upgrade(struct lws *wsi)
{
    struct http_server *s = lws_context_user(lws_get_context(wsi));
    unsigned char buf[LWS_PRE + HTTP_HDR_MAX + AUTH_MSG_MAX];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - AUTH_MSG_MAX;
    char why[AUTH_MSG_MAX] = "", nsbuf[WS_ARG_MAX + 16], *token;
    const char *ns;
    int v, n;

    if (!s->auth)
        return 0;
    token = bearer(wsi);
    if (!token && wants_ws_protocol(s, wsi))
        return 0; /* its token comes as its first message (a browser cannot send the header) */
    ns = url_arg(wsi, "namespace=", nsbuf, sizeof(nsbuf));
    v = s->auth(s->auth_arg, token, NULL, ns, why, sizeof(why));
    wipe_free(token);
    if (v == 0 || v == 200)
        return 0;
    count_refusal(s, v);
    n = (int)strlen(why);
    if (lws_add_http_common_headers(wsi, (unsigned int)v, HTTP_TEXT_PLAIN, (lws_filepos_t)n + 1, &p,
                                    end) ||
        (v == 401 && lws_add_http_header_by_name(wsi, (const unsigned char *)"www-authenticate:",
                                                 (const unsigned char *)"Bearer", 6, &p, end)) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                     &p, end) ||
        lws_finalize_http_header(wsi, &p, end))
        return -1;
    memcpy(p, why, (size_t)n);
    p[n] = '\n';
    p += n + 1;
    if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_FINAL) != (int)(p - start))
        return -1;
    return 1;
}

static int on_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct session *ss = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (!ss)
            return -1;
        return on_request(wsi, ss, in ? (const char *)in : "", in ? len : 0) ? -1 : 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!ss)
            return 0;
        if (ss->parked_ns)
            return on_parked_writeable(wsi, ss) ? -1 : 0;
        return send_chunk(wsi, ss) ? -1 : 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(wsi);
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS: {
        /* the vhost's SSL_CTX exists: every handshake takes the current (rotated) pair */
        struct http_server *s = lws_context_user(lws_get_context(wsi));

        if (s && s->tls)
            serving_cert_attach(s->tls, user);
        return 0;
    }
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        /* A request body is ignored (the answer is already on its way and says 405, with
         * connection: close). lws's default would end the transaction here, mid-answer. */
        return 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (ss && ss->parked_ns)
            unpark(lws_context_user(lws_get_context(wsi)), ss);
        session_clear(ss); /* a body not (fully) sent goes with the connection */
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return ws_filter(wsi);
    case LWS_CALLBACK_ESTABLISHED:
        return ws_open(wsi, ss);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return ws_send(wsi, ss) ? -1 : 0;
    case LWS_CALLBACK_RECEIVE:
        return ws_receive(wsi, ss, in, len) ? -1 : 0;
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
    if (s->tls)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
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
    s->protocols[0] = (struct lws_protocols){
        .name = "http", .callback = on_event, .per_session_data_size = sizeof(struct session)};
    if (s->ws_protocol)
        s->protocols[1] = (struct lws_protocols){.name = s->ws_protocol,
                                                 .callback = on_event,
                                                 .per_session_data_size = sizeof(struct session)};
    info.protocols = s->protocols;
    info.vhost_name = "hostpatrol";
    info.keepalive_timeout = HTTP_KEEPALIVE_S;
    if (s->tls) {
        const char *cert, *key;
        size_t cert_len, key_len;

        serving_cert_pem(s->tls, &cert, &cert_len, &key, &key_len);
        info.server_ssl_cert_mem = cert;
        info.server_ssl_cert_mem_len = (unsigned int)cert_len;
        info.server_ssl_private_key_mem = key;
        info.server_ssl_private_key_mem_len = (unsigned int)key_len;
        info.alpn = "http/1.1"; /* websockets and the parked answers are HTTP/1.1 */
        info.ssl_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
    }
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
    if (s->ctx) {
        lws_sul_cancel(&s->tick);
        lws_context_destroy(s->ctx); /* closes the connections: their clients go */
    }
    while (s->clients) {
        struct ws_client *c = s->clients;

        s->clients = c->next;
        client_free(c);
    }
    for (size_t i = 0; i < s->n_kept; i++) {
        hp_free(s->kept[i].ns);
        hp_free(s->kept[i].name);
        msg_unref(s->kept[i].m);
    }
    hp_free(s->kept);
    msg_unref(s->notice);
    pthread_mutex_destroy(&s->ws_mu);
    routes_free(s->routes, s->n_routes);
    hp_free(s->ws_path);
    hp_free(s->ws_protocol);
    hp_free(s);
}

hp_rc http_server_start_ws(const char *bind, const struct http_route *routes, size_t n,
                           const char *ws_path, struct http_server **out, struct hp_err *err)
{
    const struct http_server_opts o = {.ws_path = ws_path};

    return http_server_start_opts(bind, routes, n, &o, out, err);
}

hp_rc http_server_start_opts(const char *bind, const struct http_route *routes, size_t n,
                             const struct http_server_opts *o, struct http_server **out,
                             struct hp_err *err)
{
    const char *ws_path = o ? o->ws_path : NULL;
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
    if (o && o->ws_protocol && ws_path) {
        s->ws_protocol = hp_strdup(o->ws_protocol);
        s->kept = hp_calloc(HTTP_KEEP_MAX, sizeof(*s->kept));
        if (!s->ws_protocol || !s->kept) {
            rc = hp_err_set(err, HP_ERR_NOMEM, "out of memory starting the HTTP server");
            goto out;
        }
    }
    for (size_t i = 0; o && i < o->n_assets; i++)
        if (!o->assets[i].path || o->assets[i].path[0] != '/' || !o->assets[i].content_type ||
            (!o->assets[i].data && o->assets[i].len)) {
            rc = hp_err_set(err, HP_ERR_INVALID,
                            "static asset %zu needs a path starting with '/', a content type "
                            "and its data",
                            i);
            goto out;
        }
    if (o) {
        s->assets = o->assets;
        s->n_assets = o->n_assets;
        s->tls = o->tls;
        s->auth = o->auth;
        s->auth_arg = o->auth_arg;
        s->auth_wait_ms = o->auth_wait_ms > 0 ? o->auth_wait_ms : 10000;
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

/* fan_out: (under ws_mu) queue m (or, when m is NULL, a copy of text made only when someone
 * listens; NULL then means out of memory: counted as dropped) for every matching client (only
 * the ws_protocol ones if dash_only). Returns whether any client matched; *made: the copy made
 * (the caller's reference). */
static bool fan_out(struct http_server *s, struct ws_msg *m, const char *ns, const char *name,
                    const char *text, bool dash_only, struct ws_msg **made)
{
    bool any = false;

    for (struct ws_client *c = s->clients; c; c = c->next) {
        if (!client_matches(c, ns, name) || (dash_only && !c->dash))
            continue;
        if (!m && !*made && text)
            m = *made = msg_new(ns, text, strlen(text));
        if (m) {
            client_push(s, c, m);
        } else {
            c->dropped++;
            s->ws_dropped++;
        }
        any = true;
    }
    return any;
}

void http_server_publish(struct http_server *s, const char *ns, const char *name,
                         const char *json_text)
{
    struct ws_msg *m = NULL;
    bool any;

    if (!s || !s->ws_path || !json_text)
        return;
    pthread_mutex_lock(&s->ws_mu);
    any = fan_out(s, NULL, ns, name, json_text, false, &m);
    pthread_mutex_unlock(&s->ws_mu);
    msg_unref(m);
    if (any)
        lws_cancel_service(s->ctx);
}

/* kept_drop: (under ws_mu) forget kept entry i. */
static void kept_drop(struct http_server *s, size_t i)
{
    struct kept *k = &s->kept[i];

    s->kept_bytes -= k->m->len;
    hp_free(k->ns);
    hp_free(k->name);
    msg_unref(k->m);
    s->kept[i] = s->kept[--s->n_kept];
}

/* kept_evict: (under ws_mu) drop the least recently updated entries until one more of len
 * bytes fits. */
static void kept_evict(struct http_server *s, size_t len)
{
    while (s->n_kept && (s->n_kept >= HTTP_KEEP_MAX || s->kept_bytes + len > HTTP_KEEP_BYTES)) {
        size_t old = 0;

        for (size_t i = 1; i < s->n_kept; i++)
            if (s->kept[i].seq < s->kept[old].seq)
                old = i;
        kept_drop(s, old);
    }
}

void http_server_keep(struct http_server *s, unsigned slot, const char *ns, const char *name,
                      const char *json_text, const char *gone_text)
{
    struct ws_msg *m = NULL;
    struct kept *k = NULL;
    bool any = false;
    size_t len;

    if (!s || !s->ws_path || !ns || !name || slot >= HTTP_KEEP_SLOTS)
        return;
    if (!s->kept) {
        http_server_publish(s, ns, name, slot == HTTP_KEEP_ALL ? json_text : NULL);
        return;
    }
    pthread_mutex_lock(&s->ws_mu);
    if (!json_text) {
        for (size_t i = s->n_kept; i-- > 0;)
            if (!strcmp(s->kept[i].ns, ns) && !strcmp(s->kept[i].name, name))
                kept_drop(s, i);
        if (gone_text)
            any = fan_out(s, NULL, ns, name, gone_text, true, &m);
        goto out;
    }
    len = strlen(json_text);
    for (size_t i = 0; i < s->n_kept && !k; i++)
        if (s->kept[i].slot == slot && !strcmp(s->kept[i].ns, ns) && !strcmp(s->kept[i].name, name))
            k = &s->kept[i];
    if (k && k->m->len == len && !memcmp(k->m->buf + LWS_PRE, json_text, len))
        goto out; /* unchanged (a relist, a status write that changed nothing shown) */
    m = msg_new(ns, json_text, len);
    if (k)
        kept_drop(s, (size_t)(k - s->kept)); /* the new one goes in as the most recent */
    if (m && len <= HTTP_KEEP_BYTES) {
        kept_evict(s, len);
        k = &s->kept[s->n_kept];
        *k = (struct kept){.slot = slot, .ns = hp_strdup(ns), .name = hp_strdup(name), .m = m};
        if (k->ns && k->name) {
            atomic_fetch_add(&m->refs, 1);
            k->seq = ++s->kept_seq;
            s->kept_bytes += len;
            s->n_kept++;
        } else {
            hp_free(k->ns);
            hp_free(k->name);
        }
    }
    any = fan_out(s, m, ns, name, json_text, slot != HTTP_KEEP_ALL, &m);
out:
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
    out->denied = s->ws_denied;
    out->auth_refused = s->auth_refused;
    out->kept = s->n_kept;
    out->kept_bytes = s->kept_bytes;
    pthread_mutex_unlock(&s->ws_mu);
}

void http_server_wake(struct http_server *s)
{
    if (s)
        lws_cancel_service(s->ctx);
}

void http_server_set_notice(struct http_server *s, const char *json_text)
{
    struct ws_msg *m;
    bool any = false;
    size_t len;

    if (!s || !s->kept || !json_text)
        return;
    len = strlen(json_text);
    pthread_mutex_lock(&s->ws_mu);
    if (s->notice && s->notice->len == len && !memcmp(s->notice->buf + LWS_PRE, json_text, len)) {
        pthread_mutex_unlock(&s->ws_mu);
        return;
    }
    m = msg_new(NULL, json_text, len);
    if (m) {
        m->public_ = true;
        for (struct ws_client *c = s->clients; c; c = c->next)
            if (c->dash) {
                client_push(s, c, m);
                any = true;
            }
    }
    msg_unref(s->notice);
    s->notice = m; /* the caller's reference becomes the server's */
    pthread_mutex_unlock(&s->ws_mu);
    if (any)
        lws_cancel_service(s->ctx);
}

void http_server_ws_metrics(struct http_server *s, struct prom_writer *w)
{
    struct http_ws_stats ws_st;

    http_server_ws_stats(s, &ws_st);
    prom_writer_gauge(w, "hostpatrol_ws_clients", "Clients of /ws (the dashboard's among them).",
                      (double)ws_st.clients);
    prom_writer_gauge(w, "hostpatrol_dashboard_kept_messages",
                      "Latest runs and HostInspection states kept in memory for the dashboard.",
                      (double)ws_st.kept);
    prom_writer_gauge(w, "hostpatrol_dashboard_kept_bytes", "Their text, in bytes.",
                      (double)ws_st.kept_bytes);
}
