/* test-http_server.c - unit tests of controller/server/http_server.c: bind parsing, routing,
 * statuses, a multi-MB body sent byte-exact, keep-alive, bodies freed on aborted connections,
 * a prompt stop, and the websocket stream (filters, a bounded queue per slow client with its
 * drop notice, clients freed on close and on stop). The client is libcurl (plus raw sockets for
 * idle and stalled clients, and a minimal RFC 6455 client reading the server's unmasked
 * frames). Access checks: requests parked until an (in-test) verdict, others answered
 * meanwhile, the deadline, refused upgrades, websocket messages filtered per namespace; HTTPS
 * with a self-signed serving_cert. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <curl/curl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/http_server.h"
#include "hostpatrol/serving_cert.h"

#define BIG_LEN      (3u * 1024 * 1024 + 17) /* not a multiple of any chunk size */
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

static int healthz(void *arg, char **body, size_t *len, const char **content_type)
{
    (void)arg;
    (void)content_type;
    *body = hp_strdup("ok");
    *len = *body ? 2 : 0;
    return 200;
}

static int readyz(void *arg, char **body, size_t *len, const char **content_type)
{
    (void)arg;
    (void)content_type;
    *body = hp_strdup("not ready");
    *len = *body ? strlen(*body) : 0;
    return 503;
}

static int empty(void *arg, char **body, size_t *len, const char **content_type)
{
    (void)arg;
    (void)content_type;
    *body = NULL;
    *len = 0;
    return 200;
}

static char big_byte(size_t i)
{
    return (char)('a' + (i * 31 + i / 4099) % 26);
}

static int metrics(void *arg, char **body, size_t *len, const char **content_type)
{
    char *b = hp_malloc(BIG_LEN);

    (void)arg;
    if (!b)
        return 500;
    for (size_t i = 0; i < BIG_LEN; i++)
        b[i] = big_byte(i);
    *body = b;
    *len = BIG_LEN;
    *content_type = METRICS_TYPE;
    return 200;
}

static const struct http_route routes[] = {
    {.path = "/healthz", .handle = healthz},
    {.path = "/readyz", .handle = readyz},
    {.path = "/empty", .handle = empty},
    {.path = "/metrics", .handle = metrics},
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

static struct http_server *start_ok(const char *bind)
{
    struct http_server *s = NULL;
    struct hp_err err = {0};

    if (http_server_start(bind, routes, N_ROUTES, &s, &err) != HP_OK)
        fail_msg("http_server_start(%s): %s", bind, err.msg);
    assert_non_null(s);
    assert_true(http_server_port(s) > 0);
    return s;
}

/* One client answer. */
struct reply {
    long status;
    char *body; /* owned (hp_malloc) */
    size_t len, cap;
    size_t abort_after; /* stop reading after this many bytes, 0 = never */
    char ctype[128];
    long connects;
};

static size_t on_data(char *p, size_t sz, size_t nm, void *ud)
{
    struct reply *r = ud;
    size_t n = sz * nm;

    if (r->len + n + 1 > r->cap) {
        size_t cap = (r->len + n + 1) * 2;
        char *b = hp_realloc(r->body, cap);

        if (!b)
            return 0;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, p, n);
    r->len += n;
    r->body[r->len] = '\0';
    if (r->abort_after && r->len >= r->abort_after)
        return 0;
    return n;
}

static void reply_release(struct reply *r)
{
    hp_free(r->body);
    *r = (struct reply){0};
}

/* request: method (NULL = GET) path on 127.0.0.1:port through handle h into *r. */
static CURLcode request(CURL *h, int port, const char *method, const char *path, struct reply *r)
{
    char url[256];
    char *ct = NULL;
    CURLcode cc;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    if (method && strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "x=1");
    } else if (method && strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
        snprintf(r->ctype, sizeof(r->ctype), "%s", ct);
    return cc;
}

/* get_once: one request on a fresh connection; returns the status, body in *r. */
static long get_once(int port, const char *method, const char *path, struct reply *r)
{
    CURL *h = curl_easy_init();
    CURLcode cc;

    assert_non_null(h);
    cc = request(h, port, method, path, r);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK)
        fail_msg("%s %s: %s", method ? method : "GET", path, curl_easy_strerror(cc));
    return r->status;
}

static void expect_answer(int port, const char *method, const char *path, long status,
                          const char *body)
{
    struct reply r = {0};

    assert_int_equal(get_once(port, method, path, &r), status);
    if (body) {
        assert_int_equal(r.len, strlen(body));
        assert_memory_equal(r.body, body, r.len);
    }
    reply_release(&r);
}

static int connect_raw(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void routes_answer_with_status_and_type(void **state)
{
    struct http_server *s = start_ok("127.0.0.1:0");
    int port = http_server_port(s);
    struct reply r = {0};

    (void)state;
    assert_int_equal(get_once(port, NULL, "/healthz", &r), 200);
    assert_int_equal(r.len, 2);
    assert_memory_equal(r.body, "ok", 2);
    assert_string_equal(r.ctype, "text/plain; charset=utf-8");
    reply_release(&r);
    expect_answer(port, NULL, "/healthz?verbose=1&x=2", 200, "ok");
    expect_answer(port, NULL, "/readyz", 503, "not ready");
    expect_answer(port, NULL, "/empty", 200, "");
    expect_answer(port, NULL, "/nope", 404, NULL);
    expect_answer(port, NULL, "/healthz/", 404, NULL);
    expect_answer(port, NULL, "/", 404, NULL);
    expect_answer(port, "POST", "/healthz", 405, NULL);
    expect_answer(port, "DELETE", "/healthz", 405, NULL);
    expect_answer(port, "HEAD", "/healthz", 405, "");
    expect_answer(port, "POST", "/nope", 405, NULL);
    expect_answer(port, NULL, "/healthz", 200, "ok"); /* still serving */
    http_server_stop(s);
}

static void big_body_arrives_byte_exact(void **state)
{
    struct http_server *s = start_ok("127.0.0.1:0");
    CURL *h = curl_easy_init();

    (void)state;
    assert_non_null(h);
    for (int round = 0; round < 2; round++) { /* twice: keep-alive after a big body */
        struct reply r = {0};

        assert_int_equal(request(h, http_server_port(s), NULL, "/metrics", &r), CURLE_OK);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.ctype, METRICS_TYPE);
        assert_int_equal(r.len, BIG_LEN);
        for (size_t i = 0; i < BIG_LEN; i++)
            if (r.body[i] != big_byte(i))
                fail_msg("byte %zu differs", i);
        reply_release(&r);
    }
    curl_easy_cleanup(h);
    http_server_stop(s);
}

static void keep_alive_serves_50_requests_on_one_connection(void **state)
{
    struct http_server *s = start_ok("127.0.0.1:0");
    CURL *h = curl_easy_init();
    long connects = 0;

    (void)state;
    assert_non_null(h);
    for (int i = 0; i < 50; i++) {
        struct reply r = {0};

        assert_int_equal(request(h, http_server_port(s), NULL, i % 2 ? "/healthz" : "/nope", &r),
                         CURLE_OK);
        assert_int_equal(r.status, i % 2 ? 200 : 404);
        connects += r.connects;
        reply_release(&r);
    }
    assert_int_equal(connects, 1);
    curl_easy_cleanup(h);
    http_server_stop(s);
}

static void aborted_clients_do_not_leak_bodies(void **state)
{
    struct http_server *s = start_ok("127.0.0.1:0");
    int port = http_server_port(s);
    struct reply r = {.abort_after = 65536};
    CURL *h = curl_easy_init();
    char buf[256];
    int fd;

    (void)state;
    /* A client that goes away mid-body: the server frees the body and keeps serving. */
    assert_non_null(h);
    assert_int_equal(request(h, port, NULL, "/metrics", &r), CURLE_WRITE_ERROR);
    curl_easy_cleanup(h);
    reply_release(&r);
    expect_answer(port, NULL, "/healthz", 200, "ok");
    /* A client that stops reading mid-body, then the server stops: the body is freed too
     * (ASan's leak check fails this test otherwise). */
    fd = connect_raw(port);
    {
        static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

        assert_int_equal(send(fd, req, sizeof(req) - 1, 0), (ssize_t)(sizeof(req) - 1));
    }
    assert_true(recv(fd, buf, sizeof(buf), 0) > 0);
    usleep(100 * 1000);
    http_server_stop(s);
    close(fd);
}

static void stop_is_prompt_with_idle_clients(void **state)
{
    struct http_server *s = start_ok("127.0.0.1:0");
    int port = http_server_port(s);
    CURL *h = curl_easy_init();
    struct reply r = {0};
    int64_t t0, took;
    int fd;

    (void)state;
    assert_non_null(h);
    assert_int_equal(request(h, port, NULL, "/healthz", &r), CURLE_OK); /* kept alive, idle */
    reply_release(&r);
    fd = connect_raw(port); /* connected, never sends */
    usleep(100 * 1000);
    t0 = now_ms();
    http_server_stop(s);
    took = now_ms() - t0;
    if (took > 2000)
        fail_msg("http_server_stop took %lld ms with idle clients", (long long)took);
    close(fd);
    curl_easy_cleanup(h);
}

static void disabled_and_null(void **state)
{
    const char *off[] = {"0", "", NULL};
    struct hp_err err = {0};

    (void)state;
    for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
        struct http_server *s = (struct http_server *)&err;

        assert_int_equal(http_server_start(off[i], routes, N_ROUTES, &s, &err), HP_OK);
        assert_null(s);
    }
    assert_int_equal(http_server_port(NULL), 0);
    http_server_stop(NULL);
}

static void bad_binds_are_named(void **state)
{
    const char *bad[] = {"nohost",    "1.2.3.4:99999",  ":abc",          "[::1",  "[::1]8080",
                         "1.2.3.4:",  "example.com:80", "::1:8080",      ":-1",   "1.2.3:80",
                         "[nope]:80", ":80x",           "localhost:+80", "[]:80", ":"};

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct http_server *s = (struct http_server *)bad;
        struct hp_err err = {0};

        assert_int_equal(http_server_start(bad[i], routes, N_ROUTES, &s, &err), HP_ERR_INVALID);
        assert_null(s);
        assert_string_equal(err.field, "bind");
        if (!strstr(err.msg, bad[i]))
            fail_msg("message '%s' does not name '%s'", err.msg, bad[i]);
    }
}

static void bad_routes_are_refused(void **state)
{
    const struct http_route no_slash[] = {{.path = "healthz", .handle = healthz}};
    const struct http_route no_handler[] = {{.path = "/healthz"}};
    struct http_server *s = NULL;
    struct hp_err err = {0};

    (void)state;
    assert_int_equal(http_server_start("127.0.0.1:0", no_slash, 1, &s, &err), HP_ERR_INVALID);
    assert_null(s);
    assert_int_equal(http_server_start("127.0.0.1:0", no_handler, 1, &s, &err), HP_ERR_INVALID);
    assert_null(s);
    assert_int_equal(http_server_start("127.0.0.1:0", NULL, 1, &s, &err), HP_ERR_INVALID);
    assert_null(s);
    /* no routes at all: everything is 404 */
    assert_int_equal(http_server_start("127.0.0.1:0", NULL, 0, &s, &err), HP_OK);
    expect_answer(http_server_port(s), NULL, "/healthz", 404, NULL);
    http_server_stop(s);
}

static void port_in_use_is_io_error(void **state)
{
    struct http_server *a = start_ok("127.0.0.1:0");
    struct http_server *b = (struct http_server *)a;
    struct hp_err err = {0};
    char bind[64], where[64];

    (void)state;
    snprintf(bind, sizeof(bind), "127.0.0.1:%d", http_server_port(a));
    snprintf(where, sizeof(where), "cannot listen on 127.0.0.1:%d", http_server_port(a));
    assert_int_equal(http_server_start(bind, routes, N_ROUTES, &b, &err), HP_ERR_IO);
    assert_null(b);
    if (!strstr(err.msg, where))
        fail_msg("message '%s' does not name the address", err.msg);
    expect_answer(http_server_port(a), NULL, "/healthz", 200, "ok"); /* first one unharmed */
    http_server_stop(a);
}

static int ipv6_loopback_works(void)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    int ok;

    if (fd < 0)
        return 0;
    ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static void other_bind_forms_listen(void **state)
{
    struct http_server *s;

    (void)state;
    s = start_ok("localhost:0");
    expect_answer(http_server_port(s), NULL, "/healthz", 200, "ok");
    http_server_stop(s);
    s = start_ok(":0"); /* all interfaces, reachable on 127.0.0.1 */
    expect_answer(http_server_port(s), NULL, "/healthz", 200, "ok");
    http_server_stop(s);
    if (ipv6_loopback_works()) {
        char url[64];
        struct reply r = {0};
        CURL *h = curl_easy_init();

        s = start_ok("[::1]:0");
        snprintf(url, sizeof(url), "http://[::1]:%d/healthz", http_server_port(s));
        assert_non_null(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
        assert_int_equal(r.status, 200);
        curl_easy_cleanup(h);
        reply_release(&r);
        http_server_stop(s);
    }
}

static void allocation_failures_are_clean(void **state)
{
    struct http_server *s = NULL;
    hp_rc rc = HP_ERR_NOMEM;
    long n;

    (void)state;
    for (n = 0; n < 100 && rc == HP_ERR_NOMEM; n++) {
        struct hp_err err = {0};

        hp_alloc_fail_after(n);
        rc = http_server_start("127.0.0.1:0", routes, N_ROUTES, &s, &err);
        hp_alloc_fail_reset();
        if (rc != HP_OK) {
            assert_int_equal(rc, HP_ERR_NOMEM);
            assert_null(s);
        }
    }
    assert_int_equal(rc, HP_OK);
    assert_true(n > 1); /* at least one failure was injected and survived */
    expect_answer(http_server_port(s), NULL, "/healthz", 200, "ok");
    http_server_stop(s);
}

/* ---------- websocket ---------- */

static struct http_server *start_ws(void)
{
    struct http_server *s = NULL;
    struct hp_err err = {0};

    if (http_server_start_ws("127.0.0.1:0", routes, N_ROUTES, "/ws", &s, &err) != HP_OK)
        fail_msg("http_server_start_ws: %s", err.msg);
    assert_non_null(s);
    return s;
}

static void set_rcv_timeout(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

/* ws_connect: a websocket handshake on target ("/ws?namespace=a"); the socket, or -1 when the
 * server refuses the upgrade. rcvbuf > 0: a small receive buffer (set before connecting). */
static const char *ws_auth_header = ""; /* "Authorization: Bearer T\r\n" for the next connects */
static char ws_last_resp[1024];         /* the last handshake's answer */

static int ws_connect(int port, const char *target, int rcvbuf)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[2048], resp[1024];
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int n;

    assert_true(fd >= 0);
    if (rcvbuf > 0)
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    set_rcv_timeout(fd, 5000);
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n%s\r\n",
                 target, ws_auth_header);
    assert_int_equal(send(fd, req, (size_t)n, 0), n);
    /* read the answer byte by byte, so no frame after it is consumed */
    while (got < sizeof(resp) - 1) {
        if (recv(fd, resp + got, 1, 0) != 1)
            break;
        got++;
        resp[got] = '\0';
        if (got >= 4 && !memcmp(resp + got - 4, "\r\n\r\n", 4))
            break;
    }
    resp[got] = '\0';
    memcpy(ws_last_resp, resp, got + 1);
    if (strncmp(resp, "HTTP/1.1 101", 12)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int recv_all(int fd, void *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = recv(fd, (char *)buf + got, n - got, 0);

        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* ws_read: the next text message's payload (continuation frames joined; hp_malloc'ed,
 * NUL-terminated) or NULL on timeout or close. */
static char *ws_read(int fd)
{
    unsigned char h[8];
    uint64_t len;
    char *msg = NULL;
    size_t have = 0;

    for (;;) {
        char *p;
        int op;

        if (recv_all(fd, h, 2))
            goto fail;
        assert_int_equal(h[1] & 0x80, 0); /* server frames are not masked */
        op = h[0] & 0x0f;
        len = h[1] & 0x7f;
        if (len == 126) {
            if (recv_all(fd, h + 2, 2))
                goto fail;
            len = (uint64_t)h[2] << 8 | h[3];
        } else if (len == 127) {
            unsigned char l[8];

            if (recv_all(fd, l, 8))
                goto fail;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | l[i];
        }
        assert_true(len < 16 * 1024 * 1024);
        if (op >= 8) { /* control: skip (close: the end) */
            char skip[128];

            assert_true(len <= sizeof(skip));
            if (len && recv_all(fd, skip, (size_t)len))
                goto fail;
            if (op == 8)
                goto fail;
            continue;
        }
        assert_int_equal(op, msg ? 0 : 1); /* text, then continuations */
        p = hp_realloc(msg, have + (size_t)len + 1);
        assert_non_null(p);
        msg = p;
        if (len && recv_all(fd, msg + have, (size_t)len))
            goto fail;
        have += (size_t)len;
        msg[have] = '\0';
        if (h[0] & 0x80)
            return msg;
    }
fail:
    hp_free(msg);
    return NULL;
}

static void expect_msg(int fd, const char *want)
{
    char *got = ws_read(fd);

    if (!got)
        fail_msg("expected message '%s', got none", want);
    assert_string_equal(got, want);
    hp_free(got);
}

static void expect_no_msg(int fd)
{
    char *got;

    set_rcv_timeout(fd, 300);
    got = ws_read(fd);
    if (got)
        fail_msg("expected no message, got '%s'", got);
    set_rcv_timeout(fd, 5000);
}

static void wait_clients(struct http_server *s, size_t n)
{
    struct http_ws_stats st;
    int64_t until = now_ms() + 5000;

    do {
        http_server_ws_stats(s, &st);
        if (st.clients == n)
            return;
        usleep(10000);
    } while (now_ms() < until);
    fail_msg("%zu websocket clients, expected %zu", st.clients, n);
}

static void ws_filters_by_namespace_and_name(void **state)
{
    struct http_server *s = start_ws();
    int port = http_server_port(s);
    int all, ns_a, a_x, ns_b;

    (void)state;
    all = ws_connect(port, "/ws", 0);
    ns_a = ws_connect(port, "/ws?namespace=a", 0);
    a_x = ws_connect(port, "/ws?namespace=a&name=x", 0);
    ns_b = ws_connect(port, "/ws?namespace=b&name=", 0); /* an empty name: any */
    assert_true(all >= 0 && ns_a >= 0 && a_x >= 0 && ns_b >= 0);
    /* refused: name without namespace, another path */
    assert_int_equal(ws_connect(port, "/ws?name=x", 0), -1);
    assert_int_equal(ws_connect(port, "/metrics", 0), -1);
    wait_clients(s, 4);

    http_server_publish(s, "a", "x", "{\"m\":1}");
    http_server_publish(s, "a", "y", "{\"m\":2}");
    http_server_publish(s, "b", "x", "{\"m\":3}");
    http_server_publish(s, "c", "x", "");
    expect_msg(all, "{\"m\":1}");
    expect_msg(all, "{\"m\":2}");
    expect_msg(all, "{\"m\":3}");
    expect_msg(all, "");
    expect_msg(ns_a, "{\"m\":1}");
    expect_msg(ns_a, "{\"m\":2}");
    expect_msg(a_x, "{\"m\":1}");
    expect_msg(ns_b, "{\"m\":3}");
    expect_no_msg(ns_a);
    expect_no_msg(a_x);
    expect_no_msg(ns_b);
    /* GET routes are unchanged on the same server */
    expect_answer(port, NULL, "/healthz", 200, "ok");
    expect_answer(port, NULL, "/ws", 404, "not found\n");

    /* a closed client is unlisted and freed; the others keep receiving */
    close(a_x);
    wait_clients(s, 3);
    http_server_publish(s, "a", "x", "{\"m\":4}");
    expect_msg(ns_a, "{\"m\":4}");
    close(ns_a);
    close(ns_b);
    wait_clients(s, 1);
    http_server_stop(s); /* with a client still connected: freed by stop (leak check) */
    close(all);
}

static void ws_slow_client_is_bounded_and_told(void **state)
{
    enum { N = 10000 };
    struct http_server *s = start_ws();
    struct http_ws_stats st;
    char pad[1001], text[1100];
    long next = 0, dropped = 0, received = 0;
    int fd;
    char *m;

    (void)state;
    memset(pad, 'p', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    fd = ws_connect(http_server_port(s), "/ws?namespace=a", 4096);
    assert_true(fd >= 0);
    wait_clients(s, 1);
    /* 10,000 messages of 1 KB to a client that does not read */
    for (long i = 0; i < N; i++) {
        snprintf(text, sizeof(text), "{\"i\":%ld,\"pad\":\"%s\"}", i, pad);
        http_server_publish(s, "a", "x", text);
    }
    http_server_ws_stats(s, &st);
    assert_true(st.queued <= HTTP_WS_QUEUE);
    assert_true(st.dropped > 0);
    /* now read everything: messages in order, gaps announced by {"dropped":N} before the next */
    while ((m = ws_read(fd))) {
        long v;

        if (sscanf(m, "{\"dropped\":%ld}", &v) == 1) {
            assert_true(v > 0);
            dropped += v;
            next += v; /* the next message skips exactly the dropped ones */
        } else {
            assert_int_equal(sscanf(m, "{\"i\":%ld,", &v), 1);
            assert_int_equal(v, next);
            next++;
            received++;
        }
        hp_free(m);
        if (next == N)
            break;
    }
    assert_int_equal(next, N);
    assert_true(dropped > 0);
    assert_int_equal(received + dropped, N);
    http_server_ws_stats(s, &st);
    assert_int_equal(st.queued, 0);
    assert_int_equal((long)st.dropped, dropped);
    close(fd);
    wait_clients(s, 0);
    http_server_stop(s);
}

static void ws_publish_without_ws_or_clients(void **state)
{
    struct http_server *s = start_ok("127.0.0.1:0"); /* no websocket path */
    struct http_server *w = start_ws();
    struct http_ws_stats st;
    struct hp_err err = {0};
    struct http_server *bad = NULL;

    (void)state;
    http_server_publish(NULL, "a", "b", "{}");
    http_server_publish(s, "a", "b", "{}");
    http_server_publish(w, "a", "b", "{}"); /* nobody listens: nothing kept */
    http_server_publish(w, "a", "b", NULL);
    http_server_ws_stats(w, &st);
    assert_int_equal(st.clients + st.queued + st.dropped, 0);
    assert_int_equal(ws_connect(http_server_port(s), "/ws", 0), -1);
    assert_int_equal(http_server_start_ws("127.0.0.1:0", routes, N_ROUTES, "ws", &bad, &err),
                     HP_ERR_INVALID);
    assert_null(bad);
    assert_string_equal(err.field, "ws_path");
    http_server_ws_stats(NULL, &st);
    assert_int_equal(st.clients, 0);
    http_server_stop(s);
    http_server_stop(w);
}

/* The in-test access check: token "ok" may do anything; "ns-a" may read namespace a only;
 * "slow" is pending until slow_ready is set; "never" stays pending; other tokens are 401,
 * no token 401. checks counts calls. */
static atomic_int slow_ready, checks;

static int fake_auth(void *arg, const char *token, const char *path, const char *ns, char *msg,
                     size_t n)
{
    (void)arg;
    atomic_fetch_add(&checks, 1);
    if (!token) {
        snprintf(msg, n, "no token");
        return 401;
    }
    if (!strcmp(token, "ok"))
        return 200;
    if (!strcmp(token, "slow"))
        return atomic_load(&slow_ready) ? 200 : 0;
    if (!strcmp(token, "never"))
        return 0;
    if (!strcmp(token, "ns-a")) {
        if (path) {
            snprintf(msg, n, "no path for ns-a");
            return 403;
        }
        if (ns && strcmp(ns, "a")) {
            snprintf(msg, n, "not namespace %s", ns);
            return 403;
        }
        return 200;
    }
    snprintf(msg, n, "bad token");
    return 401;
}

static struct http_server *start_auth(struct serving_cert *tls)
{
    const struct http_server_opts o = {
        .ws_path = "/ws", .tls = tls, .auth = fake_auth, .auth_wait_ms = 600};
    struct http_server *s = NULL;
    struct hp_err err = {0};

    if (http_server_start_opts("127.0.0.1:0", routes, N_ROUTES, &o, &s, &err) != HP_OK)
        fail_msg("http_server_start_opts: %s", err.msg);
    return s;
}

/* get_token: GET path with "Authorization: Bearer token" (NULL: none) over http or https
 * (certificate not verified); the status, the body in *r. */
static long get_token(int port, bool tls, const char *path, const char *token, struct reply *r)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = NULL;
    char url[256], auth[128];
    CURLcode cc;

    assert_non_null(h);
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d%s", tls ? "https" : "http", port, path);
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdr = curl_slist_append(NULL, auth);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    if (cc != CURLE_OK)
        fail_msg("GET %s: %s", url, curl_easy_strerror(cc));
    return r->status;
}

struct bg_get {
    pthread_t t;
    int port;
    const char *token;
    struct reply r;
    long status;
    atomic_llong done_ms; /* when the answer arrived (0: not yet) */
};

static void *bg_get_main(void *arg)
{
    struct bg_get *g = arg;

    g->status = get_token(g->port, false, "/healthz", g->token, &g->r);
    atomic_store(&g->done_ms, now_ms());
    return NULL;
}

static void auth_parks_requests_until_their_verdict(void **state)
{
    struct http_server *s = start_auth(NULL);
    int port = http_server_port(s);
    struct bg_get g = {.port = port, .token = "slow"};
    struct reply r = {0};
    int64_t t0, ready_ms;

    (void)state;
    atomic_store(&slow_ready, 0);
    atomic_init(&g.done_ms, 0);
    /* no token, a bad one: 401 with the check's message */
    assert_int_equal(get_token(port, false, "/healthz", NULL, &r), 401);
    assert_string_equal(r.body, "no token\n");
    reply_release(&r);
    assert_int_equal(get_token(port, false, "/healthz", "bad", &r), 401);
    reply_release(&r);
    assert_int_equal(get_token(port, false, "/healthz", "ns-a", &r), 403);
    assert_string_equal(r.body, "no path for ns-a\n");
    reply_release(&r);
    /* not a route, not GET: no check needed */
    assert_int_equal(get_token(port, false, "/nope", NULL, &r), 404);
    reply_release(&r);

    /* a pending verdict parks the request; others are answered meanwhile */
    assert_int_equal(pthread_create(&g.t, NULL, bg_get_main, &g), 0);
    usleep(200000);
    t0 = now_ms();
    assert_int_equal(get_token(port, false, "/healthz", "ok", &r), 200);
    assert_true(now_ms() - t0 < 2000); /* answered while the other is parked (it waits for us) */
    assert_string_equal(r.body, "ok");
    reply_release(&r);
    /* still parked: no answer before the verdict */
    assert_int_equal(atomic_load(&g.done_ms), 0);
    ready_ms = now_ms();
    atomic_store(&slow_ready, 1);
    http_server_wake(s);
    pthread_join(g.t, NULL);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.r.body, "ok");
    assert_true(atomic_load(&g.done_ms) >= ready_ms);
    reply_release(&g.r);

    /* never decided: 503 after auth_wait_ms (600), without a wake */
    t0 = now_ms();
    assert_int_equal(get_token(port, false, "/healthz", "never", &r), 503);
    assert_true(now_ms() - t0 >= 550);
    assert_non_null(strstr(r.body, "did not finish within 600 ms"));
    reply_release(&r);

    /* a client that goes away while parked is unparked and freed (ASan) */
    {
        int fd = connect_raw(port);
        const char req[] =
            "GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer never\r\n\r\n";

        assert_int_equal(send(fd, req, sizeof(req) - 1, 0), (ssize_t)(sizeof(req) - 1));
        usleep(100000);
        close(fd);
        usleep(100000);
    }
    http_server_stop(s);
}

static void auth_filters_websocket_messages_per_namespace(void **state)
{
    struct http_server *s = start_auth(NULL);
    int port = http_server_port(s);
    int all, a_only;

    (void)state;
    /* no token: the upgrade is refused (401); a known refusal for the filter too */
    ws_auth_header = "";
    assert_int_equal(ws_connect(port, "/ws", 0), -1);
    ws_auth_header = "Authorization: Bearer ns-a\r\n";
    assert_int_equal(ws_connect(port, "/ws?namespace=b", 0), -1);
    a_only = ws_connect(port, "/ws", 0);
    ws_auth_header = "Authorization: Bearer ok\r\n";
    all = ws_connect(port, "/ws", 0);
    ws_auth_header = "";
    assert_true(all >= 0 && a_only >= 0);
    wait_clients(s, 2);
    http_server_publish(s, "b", "x", "{\"b\":1}");
    http_server_publish(s, "a", "x", "{\"a\":1}");
    http_server_publish(s, "b", "y", "{\"b\":2}");
    expect_msg(all, "{\"b\":1}");
    expect_msg(all, "{\"a\":1}");
    expect_msg(all, "{\"b\":2}");
    expect_msg(a_only, "{\"a\":1}");
    expect_no_msg(a_only);
    {
        struct http_ws_stats st;

        http_server_ws_stats(s, &st);
        assert_int_equal(st.denied, 2);
        assert_true(st.auth_refused >= 2);
    }
    close(all);
    close(a_only);
    http_server_stop(s);
}

/* ws_send_text: one masked text frame (mask key 0: the payload as is) of text (< 126 bytes or
 * < 64 KiB) */
static void ws_send_text(int fd, const char *text)
{
    unsigned char f[8 + 4096];
    size_t n = strlen(text), h = 0;

    assert_true(n < 4096);
    f[h++] = 0x81;
    if (n < 126) {
        f[h++] = (unsigned char)(0x80 | n);
    } else {
        f[h++] = 0x80 | 126;
        f[h++] = (unsigned char)(n >> 8);
        f[h++] = (unsigned char)n;
    }
    memset(f + h, 0, 4);
    h += 4;
    memcpy(f + h, text, n);
    assert_int_equal(send(fd, f, h + n, 0), (ssize_t)(h + n));
}

static const unsigned char page[] = "<!doctype html><p>hi</p>";
static const struct http_asset assets[] = {
    {"/", "text/html; charset=utf-8", page, sizeof(page) - 1},
    {"/app.js", "text/javascript; charset=utf-8", (const unsigned char *)"x", 1},
};

static struct http_server *start_dash(void)
{
    const struct http_server_opts o = {.ws_path = "/ws",
                                       .auth = fake_auth,
                                       .auth_wait_ms = 600,
                                       .assets = assets,
                                       .n_assets = 2,
                                       .ws_protocol = "dash.v1"};
    struct http_server *s = NULL;
    struct hp_err err = {0};

    if (http_server_start_opts("127.0.0.1:0", routes, N_ROUTES, &o, &s, &err) != HP_OK)
        fail_msg("http_server_start_opts: %s", err.msg);
    return s;
}

/* on_header: append a response header line to the char[4096] ud */
static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    size_t have = strlen(ud), n = sz * nm;

    if (have + n < 4096) {
        memcpy((char *)ud + have, p, n);
        ((char *)ud)[have + n] = '\0';
    }
    return n;
}

static void assets_are_served_to_anyone_with_a_strict_policy(void **state)
{
    struct http_server *s = start_dash();
    int port = http_server_port(s);
    struct reply r = {0};
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char *ct = NULL, hbuf[4096] = "";
    long code = 0;

    (void)state;
    /* no token: the page (it holds no data); a route still needs one */
    assert_int_equal(get_token(port, false, "/", NULL, &r), 200);
    assert_string_equal(r.body, (const char *)page);
    reply_release(&r);
    assert_int_equal(get_token(port, false, "/metrics", NULL, &r), 401);
    reply_release(&r);
    assert_int_equal(get_token(port, false, "/nope", NULL, &r), 404);
    reply_release(&r);
    /* the headers */
    assert_non_null(h);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, hbuf);
    assert_int_equal(request(h, port, "GET", "/app.js", &r), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    assert_int_equal(code, 200);
    assert_string_equal(ct, "text/javascript; charset=utf-8");
    assert_string_equal(r.body, "x");
    assert_non_null(strstr(hbuf, "content-security-policy: default-src 'none'; script-src "
                                 "'self';"));
    assert_non_null(strstr(hbuf, "frame-ancestors 'none'"));
    assert_non_null(strstr(hbuf, "x-content-type-options: nosniff"));
    assert_non_null(strstr(hbuf, "cache-control: no-cache"));
    reply_release(&r);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    http_server_stop(s);
}

static void dashboard_clients_get_the_kept_state_first(void **state)
{
    struct http_server *s = start_dash();
    int port = http_server_port(s);
    int dash, plain, denied;

    (void)state;
    http_server_keep(s, HTTP_KEEP_ALL, "a", "x", "{\"run\":1}", NULL);
    http_server_keep(s, 1, "a", "x", "{\"state\":1}", NULL);
    http_server_keep(s, 1, "b", "y", "{\"state\":\"b\"}", NULL);
    http_server_keep(s, HTTP_KEEP_ALL, "a", "x", "{\"run\":2}", NULL); /* replaces run 1 */
    http_server_keep(s, 1, "a", "gone", "{\"state\":\"gone\"}", NULL);
    http_server_keep(s, 1, "a", "gone", NULL, "{\"deleted\":1}"); /* forgotten */
    http_server_set_notice(s, "{\"leading\":false}");
    /* the dashboard protocol: upgraded without a token, nothing sent until its first message
     * brings one (ns-a: namespace a only) */
    ws_auth_header = "Sec-WebSocket-Protocol: dash.v1\r\n";
    dash = ws_connect(port, "/ws", 0);
    assert_true(dash >= 0);
    assert_non_null(strcasestr(ws_last_resp, "sec-websocket-protocol: dash.v1\r\n"));
    expect_no_msg(dash);
    /* published while it waits: in the snapshot, once (not again from its queue) */
    http_server_keep(s, 1, "a", "y", "{\"y\":1}", NULL);
    ws_send_text(dash, "Bearer ns-a");
    expect_msg(dash, "{\"leading\":false}"); /* the notice first, whatever the namespaces */
    expect_msg(dash, "{\"state\":1}");
    expect_msg(dash, "{\"run\":2}");
    expect_msg(dash, "{\"y\":1}");
    expect_msg(dash, "{\"type\":\"synced\"}");
    /* a refused token, no token, or something else first: closed, nothing of the state */
    ws_send_text(denied = ws_connect(port, "/ws", 0), "Bearer bad");
    assert_null(ws_read(denied));
    close(denied);
    ws_send_text(denied = ws_connect(port, "/ws", 0), "Bearer ");
    assert_null(ws_read(denied));
    close(denied);
    ws_send_text(denied = ws_connect(port, "/ws", 0), "hello");
    assert_null(ws_read(denied));
    close(denied);
    /* silence: closed after the wait (auth_wait_ms 600: lws's timeout, 1 s) */
    denied = ws_connect(port, "/ws", 0);
    assert_true(denied >= 0);
    assert_null(ws_read(denied));
    close(denied);
    /* without the protocol no token is still refused at the upgrade */
    ws_auth_header = "";
    assert_int_equal(ws_connect(port, "/ws", 0), -1);
    assert_non_null(strstr(ws_last_resp, " 401 "));
    /* a client without the protocol: no kept state, and only HTTP_KEEP_ALL messages */
    ws_auth_header = "Authorization: Bearer ok\r\n";
    plain = ws_connect(port, "/ws", 0);
    ws_auth_header = "";
    assert_true(plain >= 0);
    wait_clients(s, 2);
    http_server_keep(s, 1, "a", "x", "{\"state\":1}", NULL); /* unchanged: not sent again */
    http_server_keep(s, 1, "a", "x", "{\"state\":2}", NULL);
    http_server_keep(s, 1, "b", "y", "{\"state\":\"b2\"}", NULL);
    http_server_keep(s, HTTP_KEEP_ALL, "a", "x", "{\"run\":3}", NULL);
    http_server_keep(s, 1, "a", "x", NULL, "{\"deleted\":\"a/x\"}");
    http_server_set_notice(s, "{\"leading\":false}"); /* unchanged: not sent again */
    http_server_set_notice(s, "{\"leading\":true}");
    expect_msg(dash, "{\"state\":2}");
    expect_msg(dash, "{\"run\":3}");
    expect_msg(dash, "{\"deleted\":\"a/x\"}");
    expect_msg(dash, "{\"leading\":true}");
    expect_no_msg(dash);
    expect_msg(plain, "{\"run\":3}");
    expect_no_msg(plain);
    close(dash);
    close(plain);
    /* after the delete a/y and b/y are kept: a new client of namespace a gets a/y alone */
    ws_auth_header = "Sec-WebSocket-Protocol: dash.v1\r\n";
    dash = ws_connect(port, "/ws", 0);
    ws_auth_header = "";
    assert_true(dash >= 0);
    ws_send_text(dash, "Bearer ns-a");
    expect_msg(dash, "{\"leading\":true}");
    expect_msg(dash, "{\"y\":1}");
    expect_msg(dash, "{\"type\":\"synced\"}");
    close(dash);
    http_server_stop(s);
}

static void dashboard_without_access_checks_needs_no_token(void **state)
{
    const struct http_server_opts o = {.ws_path = "/ws", .ws_protocol = "dash.v1"};
    struct http_server *s = NULL;
    struct hp_err err = {0};
    int dash;

    (void)state;
    assert_int_equal(http_server_start_opts("127.0.0.1:0", routes, N_ROUTES, &o, &s, &err), HP_OK);
    http_server_keep(s, 1, "a", "x", "{\"state\":1}", NULL);
    ws_auth_header = "Sec-WebSocket-Protocol: dash.v1\r\n";
    dash = ws_connect(http_server_port(s), "/ws", 0);
    ws_auth_header = "";
    assert_true(dash >= 0);
    expect_msg(dash, "{\"state\":1}");
    expect_msg(dash, "{\"type\":\"synced\"}");
    ws_send_text(dash, "Bearer "); /* the page's "no token": ignored here */
    http_server_keep(s, 1, "a", "x", "{\"state\":2}", NULL);
    expect_msg(dash, "{\"state\":2}");
    close(dash);
    http_server_stop(s);
}

static void kept_state_is_bounded(void **state)
{
    struct http_server *s = start_dash();
    int port = http_server_port(s);
    char name[32], text[64];
    int dash;

    (void)state;
    for (int i = 0; i < HTTP_KEEP_MAX + 10; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        snprintf(text, sizeof(text), "{\"i\":%d}", i);
        http_server_keep(s, 1, "a", name, text, NULL);
    }
    {
        struct http_ws_stats st;

        http_server_ws_stats(s, &st);
        assert_int_equal(st.kept, HTTP_KEEP_MAX);
        assert_true(st.kept_bytes >= (size_t)HTTP_KEEP_MAX * 7);
    }
    ws_auth_header = "Sec-WebSocket-Protocol: dash.v1\r\n";
    dash = ws_connect(port, "/ws", 0);
    ws_auth_header = "";
    assert_true(dash >= 0);
    ws_send_text(dash, "Bearer ok");
    /* the oldest 10 went; the rest arrive oldest first, then the marker */
    for (int i = 10; i < HTTP_KEEP_MAX + 10; i++) {
        snprintf(text, sizeof(text), "{\"i\":%d}", i);
        expect_msg(dash, text);
    }
    expect_msg(dash, "{\"type\":\"synced\"}");
    close(dash);
    /* and by bytes: three texts of 12 MiB do not fit in 32: the oldest goes */
    {
        size_t n = 12u * 1024 * 1024;
        char *big = hp_malloc(n + 1), *got;

        assert_non_null(big);
        for (int i = 0; i < 3; i++) {
            memset(big, 'a' + i, n);
            big[n] = '\0';
            snprintf(name, sizeof(name), "big%d", i);
            http_server_keep(s, HTTP_KEEP_ALL, "b", name, big, NULL);
        }
        ws_auth_header = "Sec-WebSocket-Protocol: dash.v1\r\n";
        dash = ws_connect(port, "/ws?namespace=b", 0);
        ws_auth_header = "";
        assert_true(dash >= 0);
        ws_send_text(dash, "Bearer ok");
        for (int i = 1; i < 3; i++) {
            got = ws_read(dash);
            assert_non_null(got);
            assert_int_equal(strlen(got), n);
            assert_int_equal(got[0], 'a' + i);
            hp_free(got);
        }
        expect_msg(dash, "{\"type\":\"synced\"}");
        close(dash);
        hp_free(big);
    }
    http_server_stop(s);
}

static void https_with_a_self_signed_serving_cert(void **state)
{
    struct serving_cert *c = NULL;
    struct hp_err err = {0};
    struct http_server *s;
    struct reply r = {0};
    int port;

    (void)state;
    assert_int_equal(serving_cert_new(NULL, &c, &err), HP_OK);
    s = start_auth(c);
    port = http_server_port(s);
    assert_int_equal(get_token(port, true, "/healthz", "ok", &r), 200);
    assert_string_equal(r.body, "ok");
    reply_release(&r);
    assert_int_equal(get_token(port, true, "/healthz", NULL, &r), 401);
    reply_release(&r);
    http_server_stop(s);
    serving_cert_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routes_answer_with_status_and_type),
        cmocka_unit_test(big_body_arrives_byte_exact),
        cmocka_unit_test(keep_alive_serves_50_requests_on_one_connection),
        cmocka_unit_test(aborted_clients_do_not_leak_bodies),
        cmocka_unit_test(stop_is_prompt_with_idle_clients),
        cmocka_unit_test(disabled_and_null),
        cmocka_unit_test(bad_binds_are_named),
        cmocka_unit_test(bad_routes_are_refused),
        cmocka_unit_test(port_in_use_is_io_error),
        cmocka_unit_test(other_bind_forms_listen),
        cmocka_unit_test(allocation_failures_are_clean),
        cmocka_unit_test(ws_filters_by_namespace_and_name),
        cmocka_unit_test(ws_slow_client_is_bounded_and_told),
        cmocka_unit_test(ws_publish_without_ws_or_clients),
        cmocka_unit_test(auth_parks_requests_until_their_verdict),
        cmocka_unit_test(auth_filters_websocket_messages_per_namespace),
        cmocka_unit_test(https_with_a_self_signed_serving_cert),
        cmocka_unit_test(assets_are_served_to_anyone_with_a_strict_policy),
        cmocka_unit_test(dashboard_clients_get_the_kept_state_first),
        cmocka_unit_test(dashboard_without_access_checks_needs_no_token),
        cmocka_unit_test(kept_state_is_bounded),
    };
    int rc;

    hp_alloc_install();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
