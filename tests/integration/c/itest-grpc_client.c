/* itest-grpc_client.c - unary gRPC over libcurl HTTP/2 against a REAL etcd (started by
 * tests/integration/test-batch-queue.sh). Environment:
 *   HP_ETCD_URL        the etcd under test (direct; the first endpoint is used)
 *   HP_ETCD_SLOW_URL   the same etcd behind toxiproxy with a 1500 ms latency on responses
 *   HP_TOXI_API, HP_TOXI_PROXY, HP_ETCD_PROXY_URL   a toxiproxy proxy the test controls
 * Messages are written by hand here (a few bytes): this tests the transport, not the codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "hostpatrol/grpc_client.h"
#include "itest_util.h"

static struct grpc_client *gc;
static char base[256];

static int setup(void **state)
{
    struct hp_err err = {0};
    const char *u = getenv("HP_ETCD_URL");

    (void)state;
    snprintf(base, sizeof(base), "%.*s", (int)strcspn(u, ","), u);
    if (grpc_client_new(0, &gc, &err))
        fail_msg("grpc_client_new: %s", err.msg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    grpc_client_free(gc);
    return 0;
}

static void call(const char *url, const char *path, const void *msg, size_t len, int64_t ms,
                 struct hp_ctx *ctx, struct grpc_result *out)
{
    struct grpc_call c = {
        .base_url = url, .path = path, .msg = msg, .msg_len = len, .timeout_ms = ms};

    grpc_client_call(gc, ctx, &c, out);
}

/* Maintenance/Status (an empty request) answers OK with a message; so does KV/Range of an absent
 * key (RangeRequest{key=1: "hp-grpc/none"}) */
static void unary_calls_answer_ok_with_a_message(void **state)
{
    static const char range[] = "\x0a\x0chp-grpc/none";
    struct grpc_result r;

    (void)state;
    call(base, "/etcdserverpb.Maintenance/Status", NULL, 0, 5000, NULL, &r);
    if (r.cc != CURLE_OK || r.grpc_status != 0)
        fail_msg("Status: cc %d (%s) grpc-status %d %s", r.cc, r.errbuf, r.grpc_status,
                 r.grpc_message);
    assert_false(r.malformed);
    assert_true(r.msg_len > 0);
    assert_int_equal(r.http_status, 200);
    grpc_result_release(&r);
    call(base, "/etcdserverpb.KV/Range", range, sizeof(range) - 1, 5000, NULL, &r);
    assert_int_equal(r.cc, CURLE_OK);
    assert_int_equal(r.grpc_status, 0);
    assert_true(r.msg_len > 0); /* the header at least */
    grpc_result_release(&r);
}

/* errors come with their status and message: a put without a key is INVALID_ARGUMENT (3) "key
 * is not provided"; a range at a future revision is OUT_OF_RANGE (11) */
static void errors_carry_status_and_message(void **state)
{
    static const char put[] = "\x12\x01x";                      /* PutRequest{value=2: "x"} */
    static const char range[] = "\x0a\x01\x61\x20\xc0\x84\x3d"; /* {key "a", revision 1e6} */
    struct grpc_result r;

    (void)state;
    call(base, "/etcdserverpb.KV/Put", put, sizeof(put) - 1, 5000, NULL, &r);
    assert_int_equal(r.cc, CURLE_OK);
    assert_int_equal(r.grpc_status, 3);
    if (!strstr(r.grpc_message, "key is not provided"))
        fail_msg("message: %s", r.grpc_message);
    grpc_result_release(&r);
    call(base, "/etcdserverpb.KV/Range", range, sizeof(range) - 1, 5000, NULL, &r);
    if (r.grpc_status != 11 || !strstr(r.grpc_message, "future revision"))
        fail_msg("future revision: cc %d (%s) grpc-status %d %s", r.cc, r.errbuf, r.grpc_status,
                 r.grpc_message);
    grpc_result_release(&r);
}

#define THREADS 8
#define ROUNDS  40

static void *hammer(void *arg)
{
    int *ok = arg;

    for (int i = 0; i < ROUNDS; i++) {
        struct grpc_result r;

        call(base, "/etcdserverpb.Maintenance/Status", NULL, 0, 5000, NULL, &r);
        *ok += r.cc == CURLE_OK && r.grpc_status == 0 && r.msg_len > 0;
        grpc_result_release(&r);
    }
    return NULL;
}

/* 8 threads x 40 calls at once, multiplexed: every one answers (on libcurl 7.88 this is the case
 * the h2c reuse bug breaks with prior knowledge) */
static void concurrent_calls_all_succeed(void **state)
{
    pthread_t t[THREADS];
    int ok[THREADS] = {0}, total = 0;

    (void)state;
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &ok[i]), 0);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        total += ok[i];
    }
    assert_int_equal(total, THREADS * ROUNDS);
}

/* a deadline shorter than the answer's latency: the call ends at the deadline, marked sent */
static void a_slow_answer_ends_at_the_deadline(void **state)
{
    const char *slow = getenv("HP_ETCD_SLOW_URL");
    struct grpc_result r;
    struct hp_ctx *ctx = NULL;
    int64_t t0;

    (void)state;
    if (!slow)
        skip();
    assert_int_equal(hp_ctx_new(NULL, 400, &ctx), HP_OK);
    t0 = hp_now_ns();
    call(slow, "/etcdserverpb.Maintenance/Status", NULL, 0, 10000, ctx, &r);
    assert_true(r.cc != CURLE_OK);
    assert_int_equal(r.ctx_rc, HP_ERR_TIMEOUT);
    assert_true(r.sent);
    assert_true(r.grpc_status == -1);
    assert_true(hp_now_ns() - t0 < 1000LL * 1000000); /* 400 ms and a 50 ms wait slice */
    grpc_result_release(&r);
    hp_ctx_free(ctx);
}

/* the connection is cut between calls (toxiproxy disables the proxy, then enables it): the
 * first call after the cut may fail (libcurl finds the reused connection dead only when it
 * writes; the request may count as sent), never with a status, and the next ones succeed on a
 * new connection (primed again on libcurl < 8; on >= 8 libcurl replaces the connection itself,
 * a call that found it gone is answered on the new one) */
static void calls_succeed_after_the_connection_is_cut(void **state)
{
    const char *url = getenv("HP_ETCD_PROXY_URL"), *px = getenv("HP_TOXI_PROXY");
    struct grpc_client_stats s0, s1;
    struct grpc_result r;
    char path[256];
    int first_failed = 0;

    (void)state;
    if (!url || !px || !getenv("HP_TOXI_API"))
        skip();
    grpc_client_stats(gc, &s0);
    snprintf(path, sizeof(path), "/proxies/%s", px);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 3; i++) {
            call(url, "/etcdserverpb.Maintenance/Status", NULL, 0, 5000, NULL, &r);
            if (round && !i && r.cc != CURLE_OK) {
                assert_int_equal(r.grpc_status, -1); /* a failure, never an answer */
                first_failed++;
                grpc_result_release(&r);
                continue;
            }
            if (r.cc != CURLE_OK || r.grpc_status != 0)
                fail_msg("round %d call %d: cc %d (%s) sent %d grpc-status %d", round, i, r.cc,
                         r.errbuf, r.sent, r.grpc_status);
            grpc_result_release(&r);
        }
        itest_toxi("POST", path, "{\"enabled\":false}");
        itest_toxi("POST", path, "{\"enabled\":true}");
    }
    grpc_client_stats(gc, &s1);
    print_message("# after 2 cuts: %d first calls failed; primes %llu, calls answered over "
                  "HTTP/1.1 and sent again %llu, calls that found a dead connection and were sent "
                  "again %llu\n",
                  first_failed, (unsigned long long)(s1.primes - s0.primes),
                  (unsigned long long)(s1.http1_answers - s0.http1_answers),
                  (unsigned long long)(s1.dead_connections - s0.dead_connections));
    if (curl_version_info(CURLVERSION_NOW)->version_num < 0x080000)
        assert_true(s1.primes - s0.primes >= 3); /* one per new connection */
}

/* the connections are reset (toxiproxy reset_peer: TCP RST), on and off, while 8 threads call
 * at once, then the link is good again: every thread's calls succeed again within a few
 * attempts. (The stuck client that flapping resets once caused, every later call failing on a
 * cached connection, is reproduced end to end by test-etcd-faults.sh's reset_peer runs; this
 * shorter form did not reproduce it.) */
struct resetter {
    const char *url;
    volatile int phase; /* 0: faults, 1: the link is good: count */
    int ok, tries;
};

static void *reset_caller(void *arg)
{
    struct resetter *rs = arg;
    int ok = 0, tries = 0;

    while (ok < 20 && tries < 60) {
        struct grpc_result r;
        int counting = rs->phase;

        call(rs->url, "/etcdserverpb.Maintenance/Status", NULL, 0, 1000, NULL, &r);
        if (counting) {
            tries++;
            ok += r.grpc_status == 0;
        }
        grpc_result_release(&r);
        if (!counting)
            usleep(20 * 1000);
    }
    __atomic_add_fetch(&rs->ok, ok, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&rs->tries, tries, __ATOMIC_SEQ_CST);
    return NULL;
}

static void calls_succeed_after_connections_are_reset(void **state)
{
    const char *url = getenv("HP_ETCD_PROXY_URL"), *px = getenv("HP_TOXI_PROXY");
    struct resetter rs = {.url = url};
    pthread_t t[THREADS];
    char path[256], tox[256];

    (void)state;
    if (!url || !px || !getenv("HP_TOXI_API"))
        skip();
    snprintf(path, sizeof(path), "/proxies/%s/toxics", px);
    snprintf(tox, sizeof(tox), "/proxies/%s/toxics/rst", px);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reset_caller, &rs), 0);
    for (int flap = 0; flap < 4; flap++) {
        usleep(400 * 1000);
        itest_toxi("POST", path,
                   "{\"name\":\"rst\",\"type\":\"reset_peer\",\"stream\":\"downstream\","
                   "\"attributes\":{\"timeout\":0}}");
        usleep(400 * 1000);
        itest_toxi("DELETE", tox, NULL);
    }
    rs.phase = 1;
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    print_message("# after the resets: %d calls for %d answers (of %d)\n", rs.tries, rs.ok,
                  THREADS * 20);
    assert_int_equal(rs.ok, THREADS * 20);
    assert_true(rs.tries <= THREADS * 20 + 2 * THREADS);
}

struct spread {
    struct grpc_client *c;
    int ok;
};

static void *spread_caller(void *arg)
{
    struct spread *s = arg;

    for (int i = 0; i < 20; i++) {
        struct grpc_call call = {
            .base_url = base, .path = "/etcdserverpb.Maintenance/Status", .timeout_ms = 5000};
        struct grpc_result r;

        grpc_client_call(s->c, NULL, &call, &r);
        s->ok += r.cc == CURLE_OK && r.grpc_status == 0;
        grpc_result_release(&r);
    }
    return NULL;
}

/* calls one at a time share one connection; 16 callers at once use at most GRPC_CLIENT_LANES
 * (one per lane), and calls one at a time after them open none */
static void calls_one_at_a_time_share_one_connection(void **state)
{
    struct hp_err err = {0};
    struct spread s[16];
    pthread_t t[16];
    struct grpc_client_stats st;
    uint64_t after_burst;
    int ok = 0;

    (void)state;
    if (grpc_client_new(0, &s[0].c, &err))
        fail_msg("grpc_client_new: %s", err.msg);
    s[0].ok = 0;
    spread_caller(&s[0]);
    grpc_client_stats(s[0].c, &st);
    assert_int_equal(s[0].ok, 20);
    assert_int_equal(st.connects, 1);
    /* that connection was opened by a prime, on every libcurl (h2c: a connection is reused only
     * once it answered) */
    if (!strncmp(getenv("HP_ETCD_URL"), "http://", 7))
        assert_int_equal(st.primes, 1);
    for (int i = 0; i < 16; i++) {
        s[i] = (struct spread){.c = s[0].c};
        assert_int_equal(pthread_create(&t[i], NULL, spread_caller, &s[i]), 0);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(t[i], NULL);
        ok += s[i].ok;
    }
    grpc_client_stats(s[0].c, &st);
    after_burst = st.connects;
    print_message("# 16 callers x 20 calls: %llu connections\n", (unsigned long long)st.connects);
    assert_int_equal(ok, 16 * 20);
    assert_true(st.connects >= 1 && st.connects <= GRPC_CLIENT_LANES);
    spread_caller(&s[0]);
    grpc_client_stats(s[0].c, &st);
    assert_int_equal(st.connects, after_burst);
    grpc_client_free(s[0].c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unary_calls_answer_ok_with_a_message),
        cmocka_unit_test(errors_carry_status_and_message),
        cmocka_unit_test(concurrent_calls_all_succeed),
        cmocka_unit_test(a_slow_answer_ends_at_the_deadline),
        cmocka_unit_test(calls_succeed_after_the_connection_is_cut),
        cmocka_unit_test(calls_succeed_after_connections_are_reset),
        cmocka_unit_test(calls_one_at_a_time_share_one_connection),
    };

    if (!getenv("HP_ETCD_URL")) {
        fprintf(stderr,
                "HP_ETCD_URL is not set (run through tests/integration/test-batch-queue.sh)\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
