/* test-etcd_client.c - unit tests of controller/etcd/etcd_client.c: configuration errors,
 * outcome classification of recorded gateway answers, failover, deadlines and cancel.
 * The client against a REAL etcd is tested in tests/integration/test-etcd-client.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/etcd_client.h"
#include "replay_server.h"

static struct replay_server srv;

static int start_server(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof(srv));
    srv.mode = REPLAY_ANSWER;
    srv.status = 200;
    snprintf(srv.body, sizeof(srv.body), "{\"header\":{\"revision\":\"7\"}}");
    return replay_start(&srv);
}

static int stop_server(void **state)
{
    (void)state;
    replay_stop(&srv);
    return 0;
}

static int closed_port(void)
{
    struct replay_server tmp = {0};
    int port;

    if (replay_start(&tmp))
        return 1;
    port = tmp.port;
    replay_stop(&tmp);
    return port;
}

static struct etcd_client *client_for(const char *endpoints)
{
    /* the recorded answers are the JSON gateway's (HTTP/1.1); gRPC: test-etcd_grpc, itests */
    struct etcd_config cfg = {
        .endpoints = endpoints, .transport = ETCD_TRANSPORT_GATEWAY, .connect_timeout_ms = 1000};
    struct etcd_client *c = NULL;
    struct hp_err err = {0};

    assert_int_equal(etcd_client_new(&cfg, &c, &err), HP_OK);
    return c;
}

static struct etcd_client *local_client(void)
{
    char ep[64];

    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", srv.port);
    return client_for(ep);
}

static void expect_config_error(const char *endpoints, const char *field, const char *text)
{
    struct etcd_config cfg = {.endpoints = endpoints};
    struct etcd_client *c = (struct etcd_client *)1;
    struct hp_err err = {0};

    assert_int_equal(etcd_client_new(&cfg, &c, &err), HP_ERR_INVALID);
    assert_null(c);
    assert_string_equal(err.field, field);
    if (!strstr(err.msg, text))
        fail_msg("message '%s' does not contain '%s'", err.msg, text);
}

static void bad_endpoints_are_named(void **state)
{
    (void)state;
    expect_config_error("", "endpoints", "no etcd endpoint");
    expect_config_error("ftp://h:2379", "endpoints", "'ftp://h:2379' is not an http");
    expect_config_error("127.0.0.1:2379", "endpoints", "not an http:// or https:// URL");
    expect_config_error("http://u:secret@h:2379", "endpoints", "no user, path or query");
    expect_config_error("http://h:2379/v3", "endpoints", "no user, path or query");
    expect_config_error("http://h:99999", "endpoints", "port must be 1-65535");
    expect_config_error("http://h:23x9", "endpoints", "port must be 1-65535");
    expect_config_error("http://h:2379,http://", "endpoints", "not an http");
    expect_config_error("http://[::1:2379", "endpoints", "unterminated IPv6");
}

static void bad_tls_and_auth_settings_are_named(void **state)
{
    struct etcd_client *c = NULL;
    struct hp_err err = {0};
    struct etcd_config cfg = {.endpoints = "https://h:2379", .cert_file = "/etc/hostname"};

    (void)state;
    assert_int_equal(etcd_client_new(&cfg, &c, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "key_file");
    cfg = (struct etcd_config){.endpoints = "https://h:2379", .ca_file = "/nonexistent/ca.pem"};
    assert_int_equal(etcd_client_new(&cfg, &c, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "ca_file");
    assert_non_null(strstr(err.msg, "/nonexistent/ca.pem"));
    cfg = (struct etcd_config){.endpoints = "http://h:2379", .server_name = "etcd.local"};
    assert_int_equal(etcd_client_new(&cfg, &c, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "server_name");
    cfg = (struct etcd_config){.endpoints = "http://h:2379", .username = "root"};
    assert_int_equal(etcd_client_new(&cfg, &c, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "password");
}

static void good_endpoint_lists_parse(void **state)
{
    (void)state;
    etcd_client_free(client_for("http://127.0.0.1:2379, https://[::1]:2379/,http://localhost"));
    etcd_client_free(NULL);
}

static void prefix_end_follows_etcd(void **state)
{
    char *e;
    size_t n;

    (void)state;
    assert_int_equal(etcd_prefix_end("a/", 2, &e, &n), HP_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(e, "a0", 2);
    hp_free(e);
    assert_int_equal(etcd_prefix_end("a\xff", 2, &e, &n), HP_OK);
    assert_int_equal(n, 1);
    assert_memory_equal(e, "b", 1);
    hp_free(e);
    assert_int_equal(etcd_prefix_end("\xff\xff", 2, &e, &n), HP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(e[0], 0);
    hp_free(e);
}

static void outcome_classes(void **state)
{
    (void)state;
    assert_int_equal(etcd_outcome_of(HP_OK), ETCD_OUTCOME_OK);
    assert_int_equal(etcd_outcome_of(HP_ERR_UNKNOWN_OUTCOME), ETCD_OUTCOME_UNKNOWN);
    assert_int_equal(etcd_outcome_of(HP_ERR_TIMEOUT), ETCD_OUTCOME_FAILED);
    assert_int_equal(etcd_outcome_of(HP_ERR_FULL), ETCD_OUTCOME_FAILED);
    assert_string_equal(etcd_outcome_name(ETCD_OUTCOME_UNKNOWN), "unknown");
}

/* Every recorded gateway error is classified as the table says, for a write and a read. */
static void recorded_errors_are_classified(void **state)
{
    FILE *f = fopen("tests/data/etcd/errors.tsv", "r");
    struct etcd_client *c = local_client();
    char line[4096];
    int rows = 0;

    (void)state;
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        char *status, *body, *wrc, *rrc, *save = NULL;
        struct etcd_range_resp rr;
        struct etcd_range_req req = {.key = "k", .key_len = 1};
        struct hp_err err = {0};
        hp_rc rc;

        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = '\0';
        status = strtok_r(line, "\t", &save);
        body = strtok_r(NULL, "\t", &save);
        wrc = strtok_r(NULL, "\t", &save);
        rrc = strtok_r(NULL, "\t", &save);
        assert_non_null(rrc);
        srv.status = (int)strtol(status, NULL, 10);
        snprintf(srv.body, sizeof(srv.body), "%s", body);
        rc = etcd_put(c, NULL, "k", 1, "v", 1, 0, NULL, &err);
        if (strcmp(hp_rc_name(rc), wrc))
            fail_msg("write, %s %s: got %s, want %s", status, body, hp_rc_name(rc), wrc);
        assert_int_equal(err.status, srv.status);
        {
            struct hp_ctx *ctx = NULL; /* bounds the read's transport retries */

            assert_int_equal(hp_ctx_new(NULL, 200, &ctx), HP_OK);
            rc = etcd_range(c, ctx, &req, &rr, &err);
            hp_ctx_free(ctx);
        }
        if (strcmp(hp_rc_name(rc), rrc))
            fail_msg("read, %s %s: got %s, want %s", status, body, hp_rc_name(rc), rrc);
        rows++;
    }
    fclose(f);
    assert_true(rows >= 10);
    etcd_client_free(c);
}

static void malformed_answers(void **state)
{
    struct etcd_client *c = local_client();
    struct etcd_range_req req = {.key = "k", .key_len = 1};
    struct etcd_range_resp rr;
    struct hp_err err = {0};

    (void)state;
    srv.status = 200;
    snprintf(srv.body, sizeof(srv.body), "not json");
    assert_int_equal(etcd_put(c, NULL, "k", 1, "v", 1, 0, NULL, &err), HP_ERR_UNKNOWN_OUTCOME);
    assert_int_equal(etcd_range(c, NULL, &req, &rr, &err), HP_ERR_PROTOCOL);
    snprintf(srv.body, sizeof(srv.body), "{\"kvs\":[{\"key\":\"!!\"}]}");
    assert_int_equal(etcd_range(c, NULL, &req, &rr, &err), HP_ERR_PROTOCOL);
    snprintf(
        srv.body, sizeof(srv.body),
        "{\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"aw==\",\"value\":\"dg==\","
        "\"mod_revision\":\"9\",\"create_revision\":\"18446744073709551615\"}],\"count\":\"1\"}");
    assert_int_equal(etcd_range(c, NULL, &req, &rr, &err), HP_OK);
    assert_int_equal(rr.n, 1);
    assert_string_equal(rr.kvs[0].key, "k");
    assert_string_equal(rr.kvs[0].value, "v");
    assert_int_equal(rr.kvs[0].mod_revision, 9);
    assert_int_equal(rr.kvs[0].version, 0); /* omitted default */
    etcd_range_resp_release(&rr);
    etcd_client_free(c);
}

static void unreachable_endpoint_fails_and_failover_works(void **state)
{
    char eps[128];
    struct etcd_client *c;
    struct hp_err err = {0};
    int64_t rev = 0;
    int dead = closed_port();

    (void)state;
    snprintf(eps, sizeof(eps), "http://127.0.0.1:%d", dead);
    c = client_for(eps);
    assert_int_equal(etcd_put(c, NULL, "k", 1, "v", 1, 0, NULL, &err), HP_ERR_UNAVAILABLE);
    assert_int_equal(etcd_outcome_of(HP_ERR_UNAVAILABLE), ETCD_OUTCOME_FAILED);
    assert_non_null(strstr(err.msg, eps));
    etcd_client_free(c);

    srv.mode = REPLAY_ANSWER;
    srv.status = 200;
    snprintf(srv.body, sizeof(srv.body), "{\"header\":{\"revision\":\"42\"}}");
    snprintf(eps, sizeof(eps), "http://127.0.0.1:%d,http://127.0.0.1:%d", dead, srv.port);
    c = client_for(eps);
    assert_int_equal(etcd_put(c, NULL, "k", 1, "v", 1, 0, &rev, &err), HP_OK);
    assert_int_equal(rev, 42);
    etcd_client_free(c);
}

/* G4: a call returns by its deadline plus a small slack (500 ms here; the client itself
 * adds no wait beyond the deadline). A write that timed out after sending is UNKNOWN. */
static void deadline_bounds_a_silent_server(void **state)
{
    struct etcd_client *c = local_client();
    struct etcd_range_req req = {.key = "k", .key_len = 1};
    struct etcd_range_resp rr;
    struct hp_err err = {0};
    struct hp_ctx *ctx;
    int64_t t0, ms;

    (void)state;
    srv.mode = REPLAY_SILENT;
    assert_int_equal(hp_ctx_new(NULL, 300, &ctx), HP_OK);
    t0 = hp_now_ns();
    assert_int_equal(etcd_put(c, ctx, "k", 1, "v", 1, 0, NULL, &err), HP_ERR_UNKNOWN_OUTCOME);
    ms = (hp_now_ns() - t0) / 1000000;
    assert_true(ms >= 250 && ms < 300 + 500);
    hp_ctx_free(ctx);
    assert_int_equal(hp_ctx_new(NULL, 300, &ctx), HP_OK);
    assert_int_equal(etcd_range(c, ctx, &req, &rr, &err), HP_ERR_TIMEOUT);
    hp_ctx_free(ctx);
    srv.mode = REPLAY_ANSWER;
    etcd_client_free(c);
}

/* A read that fails in transport is retried; a write is sent once, whatever happens. */
static void reads_are_retried_writes_never(void **state)
{
    struct etcd_client *c = local_client();
    struct etcd_range_req req = {.key = "k", .key_len = 1};
    struct etcd_range_resp rr;
    struct hp_err err = {0};
    struct hp_ctx *ctx;
    int before;

    (void)state;
    srv.mode = REPLAY_ANSWER;
    srv.status = 503;
    snprintf(srv.body, sizeof(srv.body), "{\"error\":\"etcdserver: no leader\",\"code\":14}");
    before = srv.requests;
    assert_int_equal(etcd_put(c, NULL, "k", 1, "v", 1, 0, NULL, &err), HP_ERR_UNAVAILABLE);
    assert_int_equal(srv.requests - before, 1);
    before = srv.requests;
    assert_int_equal(hp_ctx_new(NULL, 1000, &ctx), HP_OK);
    assert_int_equal(etcd_range(c, ctx, &req, &rr, &err), HP_ERR_UNAVAILABLE);
    hp_ctx_free(ctx);
    assert_true(srv.requests - before >= 3);
    srv.status = 200;
    etcd_client_free(c);
}

static void expired_deadline_sends_nothing(void **state)
{
    struct etcd_client *c = local_client();
    struct hp_err err = {0};
    struct hp_ctx *ctx;
    int before = srv.requests;

    (void)state;
    assert_int_equal(hp_ctx_new(NULL, 0, &ctx), HP_OK);
    assert_int_equal(etcd_put(c, ctx, "k", 1, "v", 1, 0, NULL, &err), HP_ERR_TIMEOUT);
    assert_int_equal(etcd_outcome_of(HP_ERR_TIMEOUT), ETCD_OUTCOME_FAILED);
    assert_int_equal(srv.requests, before);
    hp_ctx_free(ctx);
    etcd_client_free(c);
}

struct cancel_arg {
    struct hp_ctx *ctx;
};

static void *cancel_soon(void *arg)
{
    struct cancel_arg *a = arg;

    usleep(100 * 1000);
    hp_ctx_cancel(a->ctx);
    return NULL;
}

static void cancel_wakes_a_transfer(void **state)
{
    struct etcd_client *c = local_client();
    struct hp_err err = {0};
    struct cancel_arg a;
    pthread_t t;
    int64_t t0;

    (void)state;
    srv.mode = REPLAY_SILENT;
    assert_int_equal(hp_ctx_new(NULL, 60000, &a.ctx), HP_OK);
    assert_int_equal(pthread_create(&t, NULL, cancel_soon, &a), 0);
    t0 = hp_now_ns();
    assert_int_equal(etcd_put(c, a.ctx, "k", 1, "v", 1, 0, NULL, &err), HP_ERR_UNKNOWN_OUTCOME);
    assert_true((hp_now_ns() - t0) / 1000000 < 5000);
    assert_non_null(strstr(err.msg, "cancelled"));
    pthread_join(t, NULL);
    hp_ctx_free(a.ctx);
    srv.mode = REPLAY_ANSWER;
    etcd_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_endpoints_are_named),
        cmocka_unit_test(bad_tls_and_auth_settings_are_named),
        cmocka_unit_test(good_endpoint_lists_parse),
        cmocka_unit_test(prefix_end_follows_etcd),
        cmocka_unit_test(outcome_classes),
        cmocka_unit_test(recorded_errors_are_classified),
        cmocka_unit_test(malformed_answers),
        cmocka_unit_test(unreachable_endpoint_fails_and_failover_works),
        cmocka_unit_test(deadline_bounds_a_silent_server),
        cmocka_unit_test(reads_are_retried_writes_never),
        cmocka_unit_test(expired_deadline_sends_nothing),
        cmocka_unit_test(cancel_wakes_a_transfer),
    };
    int rc;

    hp_alloc_install();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, start_server, stop_server);
    curl_global_cleanup();
    return rc;
}
