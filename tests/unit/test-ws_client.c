/* test-ws_client.c - unit tests of controller/util/ws_client.c: the server URL and query
 * grammar, and a connection refused by a closed port ends failed, never established. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "hostpatrol/ws_client.h"

static void urls(void **state)
{
    static const struct {
        const char *url, *host;
        int port;
        bool tls;
    } good[] = {{"wss://127.0.0.1:8443", "127.0.0.1", 8443, true},
                {"ws://localhost", "localhost", 80, false},
                {"wss://example.org/", "example.org", 443, true},
                {"ws://[::1]:9000", "::1", 9000, false},
                {"wss://[fe80::1]", "fe80::1", 443, true}};
    static const char *const bad[] = {"http://a:1",   "wss://",      "wss://:80", "ws://a:0",
                                      "ws://a:65536", "ws://a:1/ws", "ws://[::1", "ws://[::1]x",
                                      "ws://a:",      "ws://a:1x"};
    char host[64];
    int port;
    bool tls;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!ws_client_parse_url(good[i].url, host, sizeof(host), &port, &tls))
            fail_msg("'%s' refused", good[i].url);
        assert_string_equal(host, good[i].host);
        assert_int_equal(port, good[i].port);
        assert_int_equal(tls, good[i].tls);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ws_client_parse_url(bad[i], host, sizeof(host), &port, &tls))
            fail_msg("'%s' accepted", bad[i]);
    assert_false(ws_client_parse_url("ws://a-rather-long-name:1", host, 8, &port, &tls));
}

static void queries(void **state)
{
    char path[64] = "/ws", small[12] = "/ws";

    (void)state;
    assert_true(ws_client_add_query(path, sizeof(path), "namespace", "a b/c"));
    assert_string_equal(path, "/ws?namespace=a%20b%2Fc");
    assert_true(ws_client_add_query(path, sizeof(path), "name", "x-y_z.~"));
    assert_string_equal(path, "/ws?namespace=a%20b%2Fc&name=x-y_z.~");
    assert_false(ws_client_add_query(small, sizeof(small), "name", "abcdef"));
}

static void message(void *arg, const char *data, size_t len)
{
    (void)data;
    (void)len;
    (*(int *)arg)++;
}

static void refused_connection_fails(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    volatile sig_atomic_t stop = 0;
    int fd, messages = 0;
    struct ws_client_config cfg = {.host = "127.0.0.1",
                                   .path = "/ws",
                                   .protocol = "test",
                                   .max_message = 1024,
                                   .on_message = message,
                                   .arg = &messages,
                                   .stop = &stop};
    struct ws_client c;
    struct hp_err err = {0};

    (void)state;
    /* a port that was just free: bound, then closed */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    cfg.port = ntohs(sa.sin_port);
    ws_client_init(&c, &cfg);
    if (ws_client_connect(&c, &err) == HP_OK)
        ws_client_run(&c);
    else
        assert_int_equal(err.rc, HP_ERR_UNAVAILABLE);
    assert_true(c.failed || err.rc == HP_ERR_UNAVAILABLE);
    assert_false(c.established);
    assert_int_equal(messages, 0);
    ws_client_release(&c);
    ws_client_release(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(urls),
        cmocka_unit_test(queries),
        cmocka_unit_test(refused_connection_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
