/* ws_client.c - a libwebsockets client following one stream (see include/hostpatrol/ws_client.h).
 */
#include "hostpatrol/ws_client.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostpatrol/alloc.h"

struct ws_client_conn {
    lws_sorted_usec_list_t tick; /* wakes the service loop */
    struct lws_context *ctx;
    struct lws_protocols protos[2]; /* live as long as ctx */
};

void ws_client_init(struct ws_client *c, const struct ws_client_config *cfg)
{
    memset(c, 0, sizeof(*c));
    c->cfg = *cfg;
    hp_buf_init(&c->msg, cfg->max_message);
}

void ws_client_release(struct ws_client *c)
{
    if (!c)
        return;
    if (c->conn) {
        lws_sul_cancel(&c->conn->tick);
        if (c->conn->ctx)
            lws_context_destroy(c->conn->ctx);
        hp_free(c->conn);
        c->conn = NULL;
    }
    hp_buf_release(&c->msg);
}

/* on_data: a piece of a message; whole messages go to on_message. Returns nonzero to close. */
static int on_data(struct ws_client *c, struct lws *wsi, const void *in, size_t len)
{
    switch (hp_buf_add(&c->msg, in, len)) {
    case HP_OK:
        break;
    case HP_ERR_FULL:
        snprintf(c->why, sizeof(c->why), "a message longer than %zu bytes", c->cfg.max_message);
        c->failed = true;
        return 1;
    default:
        snprintf(c->why, sizeof(c->why), "out of memory");
        c->failed = true;
        return 1;
    }
    if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
        c->cfg.on_message(c->cfg.arg, hp_buf_data(&c->msg), hp_buf_len(&c->msg));
        hp_buf_reset(&c->msg);
    }
    return 0;
}

static int on_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct ws_client *c = lws_context_user(lws_get_context(wsi));

    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = in, *end = *p + len;

        if (c->cfg.auth && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                                        (const unsigned char *)c->cfg.auth,
                                                        (int)strlen(c->cfg.auth), p, end))
            return -1;
        return 0;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        c->http_status = wsi ? (int)lws_http_client_http_response(wsi) : 0;
        snprintf(c->why, sizeof(c->why), "%s", in ? (const char *)in : "connection failed");
        c->failed = true;
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* 2 bytes of close code, then the reason ("403 Forbidden: ...") */
        if (in && len > 2)
            snprintf(c->close_why, sizeof(c->close_why), "%.*s", (int)(len - 2),
                     (const char *)in + 2);
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->established = true;
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return on_data(c, wsi, in, len) ? -1 : 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        c->closed = true;
        return 0;
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS:
        return 0; /* the CA comes from cfg.ca_file or the system's store */
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* on_tick: wakes the service loop every WS_CLIENT_TICK_MS so it sees the stop flag. */
static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct ws_client_conn *k = lws_container_of(sul, struct ws_client_conn, tick);

    lws_sul_schedule(k->ctx, 0, &k->tick, on_tick, WS_CLIENT_TICK_MS * LWS_US_PER_MS);
}

hp_rc ws_client_connect(struct ws_client *c, struct hp_err *err)
{
    struct lws_context_creation_info info;
    struct lws_client_connect_info ci;

    c->conn = hp_calloc(1, sizeof(*c->conn));
    if (!c->conn)
        return hp_err_set(err, HP_ERR_NOMEM, "cannot create the websocket client");
    c->conn->protos[0].name = c->cfg.protocol;
    c->conn->protos[0].callback = on_event;
    lws_set_log_level(0, NULL);
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = c->conn->protos;
    info.user = c;
    if (c->cfg.tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.client_ssl_ca_filepath = c->cfg.ca_file;
    }
    c->conn->ctx = lws_create_context(&info);
    if (!c->conn->ctx)
        return hp_err_set(err, HP_ERR_NOMEM, "cannot create the websocket client");
    memset(&ci, 0, sizeof(ci));
    ci.context = c->conn->ctx;
    ci.address = c->cfg.host;
    ci.port = c->cfg.port;
    ci.path = c->cfg.path;
    ci.host = c->cfg.host;
    ci.origin = c->cfg.host;
    ci.local_protocol_name = c->cfg.protocol;
    if (c->cfg.tls) {
        ci.ssl_connection = LCCSCF_USE_SSL;
        if (c->cfg.insecure)
            ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                                 LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
        ci.alpn = "http/1.1";
    }
    if (!lws_client_connect_via_info(&ci))
        return hp_err_set(err, HP_ERR_UNAVAILABLE, "cannot connect");
    return HP_OK;
}

void ws_client_run(struct ws_client *c)
{
    if (!c->conn || !c->conn->ctx)
        return;
    lws_sul_schedule(c->conn->ctx, 0, &c->conn->tick, on_tick, WS_CLIENT_TICK_MS * LWS_US_PER_MS);
    while (!(c->cfg.stop && *c->cfg.stop) && !c->failed && !c->closed)
        if (lws_service(c->conn->ctx, 0) < 0)
            break;
}

bool ws_client_parse_url(const char *url, char *host, size_t host_size, int *port, bool *tls)
{
    const char *h, *colon, *end;
    char *endp = NULL;
    size_t n;
    long p;

    *tls = !strncmp(url, "wss://", 6);
    if (!*tls && strncmp(url, "ws://", 5))
        return false;
    h = url + (*tls ? 6 : 5);
    p = *tls ? 443 : 80;
    end = h + strcspn(h, "/");
    if (end[0] && strcmp(end, "/"))
        return false; /* a path: the stream's path is fixed */
    if (h[0] == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));

        if (!close)
            return false;
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        if (!colon && close + 1 != end)
            return false;
        n = (size_t)(close - h - 1);
        h++;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        n = (size_t)((colon ? colon : end) - h);
    }
    if (!n || n >= host_size)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    if (colon) {
        errno = 0;
        p = strtol(colon + 1, &endp, 10);
        if (errno || endp != end || colon + 1 == end || p < 1 || p > 65535)
            return false;
    }
    *port = (int)p;
    return true;
}

bool ws_client_add_query(char *path, size_t size, const char *key, const char *value)
{
    size_t n = strlen(path);
    int w = snprintf(path + n, size - n, "%s%s=", strchr(path, '?') ? "&" : "?", key);

    if (w < 0 || (size_t)w >= size - n)
        return false;
    n += (size_t)w;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || strchr("-._~", *p);

        w = snprintf(path + n, size - n, plain ? "%c" : "%%%02X", *p);
        if (w < 0 || (size_t)w >= size - n)
            return false;
        n += (size_t)w;
    }
    return true;
}
