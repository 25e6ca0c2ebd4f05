/* test-http_server.c - unit tests of controller/server/http_server.c: bind parsing, routing,
 * statuses, a multi-MB body sent byte-exact, keep-alive, bodies freed on aborted connections,
 * and a prompt stop. The client is libcurl (plus raw sockets for idle and stalled clients). */
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
#include <time.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/http_server.h"

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
    };
    int rc;

    hp_alloc_install();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
