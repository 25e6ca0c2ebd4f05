/* itest-etcd_client.c - the etcd client against a REAL etcd (started by
 * tests/integration/test-etcd-client.sh). Environment:
 *   HP_ETCD_URL      client URL(s) of the etcd under test
 *   HP_ETCD_SLOW_URL optional: the same etcd behind a toxiproxy latency toxic (2 s, responses)
 *   HP_ETCD_DEAD_URL a URL where nothing listens (failover) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/etcd_txn.h"
#include "itest_util.h"

static struct etcd_client *cli;
static char prefix[128];

static struct etcd_client *connect_to(const char *eps)
{
    struct etcd_config cfg = {.endpoints = eps,
                              .transport = itest_etcd_transport(),
                              .username = getenv("HP_ETCD_USER"),
                              .password = getenv("HP_ETCD_PASSWORD")};
    struct etcd_client *c = NULL;
    struct hp_err err = {0};

    if (etcd_client_new(&cfg, &c, &err))
        fail_msg("client for %s: %s", eps, err.msg);
    return c;
}

static int setup(void **state)
{
    (void)state;
    snprintf(prefix, sizeof(prefix), "/hp-itest/%ld-%d/", (long)time(NULL), getpid());
    cli = connect_to(getenv("HP_ETCD_URL"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    etcd_client_free(cli);
    return 0;
}

/* k(name): prefix + name in a static rotating buffer */
static const char *k(const char *name)
{
    static char buf[8][256];
    static int i;

    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%s%s", prefix, name);
    return buf[i];
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        struct hp_err e_ = {0};                                                                    \
        hp_rc r_ = (call);                                                                         \
        (void)e_;                                                                                  \
        if (r_)                                                                                    \
            fail_msg("%s -> %s", #call, hp_rc_name(r_));                                           \
    } while (0)

static void status_reports_the_server(void **state)
{
    struct etcd_status st;
    struct hp_err err = {0};

    (void)state;
    OK(etcd_status(cli, NULL, &st, &err));
    assert_true(st.version[0] == '3');
    assert_true(st.revision > 0);
    assert_true(st.leader != 0);
    if (getenv("HP_ETCD_EXPECT_VERSION"))
        assert_true(!strncmp(st.version, getenv("HP_ETCD_EXPECT_VERSION"),
                             strlen(getenv("HP_ETCD_EXPECT_VERSION"))));
}

static void put_range_delete_with_binary_keys_and_values(void **state)
{
    struct hp_err err = {0};
    struct etcd_range_resp r;
    int64_t rev1 = 0, rev2 = 0, deleted = 0;
    const char bin[] = {'a', 0, (char)0xff, '\n', 'z'};
    char key[300];
    size_t kl;

    (void)state;
    kl = (size_t)snprintf(key, sizeof(key), "%sbin-", prefix);
    memcpy(key + kl, bin, sizeof(bin));
    kl += sizeof(bin);
    OK(etcd_put(cli, NULL, key, kl, bin, sizeof(bin), 0, &rev1, &err));
    OK(etcd_put(cli, NULL, k("plain"), strlen(k("plain")), "v2", 2, 0, &rev2, &err));
    assert_true(rev2 > rev1);
    struct etcd_range_req q = {.key = key, .key_len = kl};
    OK(etcd_range(cli, NULL, &q, &r, &err));
    assert_int_equal(r.n, 1);
    assert_int_equal(r.kvs[0].key_len, kl);
    assert_memory_equal(r.kvs[0].key, key, kl);
    assert_int_equal(r.kvs[0].value_len, sizeof(bin));
    assert_memory_equal(r.kvs[0].value, bin, sizeof(bin));
    assert_int_equal(r.kvs[0].mod_revision, rev1);
    assert_int_equal(r.kvs[0].version, 1);
    etcd_range_resp_release(&r);
    OK(etcd_delete(cli, NULL, key, kl, false, &deleted, NULL, &err));
    assert_int_equal(deleted, 1);
    OK(etcd_range(cli, NULL, &q, &r, &err));
    assert_int_equal(r.n, 0);
    etcd_range_resp_release(&r);
}

static void prefix_limit_count_keys_only_and_past_revision(void **state)
{
    struct hp_err err = {0};
    struct etcd_range_resp r;
    int64_t first = 0, rev = 0;
    char name[32];

    (void)state;
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "list/%d", i);
        OK(etcd_put(cli, NULL, k(name), strlen(k(name)), "x", 1, 0, i ? &rev : &first, &err));
    }
    struct etcd_range_req q = {.key = k("list/"),
                               .key_len = strlen(k("list/")),
                               .prefix = true,
                               .limit = 2,
                               .keys_only = true};
    OK(etcd_range(cli, NULL, &q, &r, &err));
    assert_int_equal(r.count, 5);
    assert_int_equal(r.n, 2);
    assert_true(r.more);
    assert_int_equal(r.kvs[0].value_len, 0);
    etcd_range_resp_release(&r);
    q = (struct etcd_range_req){
        .key = k("list/"), .key_len = strlen(k("list/")), .prefix = true, .count_only = true};
    OK(etcd_range(cli, NULL, &q, &r, &err));
    assert_int_equal(r.count, 5);
    assert_int_equal(r.n, 0);
    etcd_range_resp_release(&r);
    /* at the revision of the first put, only one key existed */
    q = (struct etcd_range_req){
        .key = k("list/"), .key_len = strlen(k("list/")), .prefix = true, .revision = first};
    OK(etcd_range(cli, NULL, &q, &r, &err));
    assert_int_equal(r.n, 1);
    etcd_range_resp_release(&r);
    int64_t deleted = 0;
    OK(etcd_delete(cli, NULL, k("list/"), strlen(k("list/")), true, &deleted, NULL, &err));
    assert_int_equal(deleted, 5);
}

static void txn_compares_branches_and_nesting(void **state)
{
    struct etcd_txn *t, *sub;
    struct etcd_txn_resp resp;
    struct hp_err err = {0};
    int64_t rev = 0;

    (void)state;
    OK(etcd_put(cli, NULL, k("t/a"), strlen(k("t/a")), "1", 1, 0, &rev, &err));
    /* compare holds: success branch with a put, a nested txn and a range */
    OK(etcd_txn_new(&t));
    OK(etcd_txn_compare_int(t, k("t/a"), strlen(k("t/a")), ETCD_CMP_MOD_REVISION, ETCD_CMP_EQUAL,
                            rev));
    OK(etcd_txn_compare_int(t, k("t/fence"), strlen(k("t/fence")), ETCD_CMP_CREATE_REVISION,
                            ETCD_CMP_EQUAL, 0));
    OK(etcd_txn_compare_value(t, k("t/a"), strlen(k("t/a")), ETCD_CMP_EQUAL, "1", 1));
    OK(etcd_txn_put(t, ETCD_SUCCESS, k("t/b"), strlen(k("t/b")), "2", 1, 0));
    OK(etcd_txn_new(&sub));
    OK(etcd_txn_compare_int(sub, k("t/a"), strlen(k("t/a")), ETCD_CMP_VERSION, ETCD_CMP_GREATER,
                            0));
    OK(etcd_txn_put(sub, ETCD_SUCCESS, k("t/c"), strlen(k("t/c")), "3", 1, 0));
    OK(etcd_txn_nest(t, ETCD_SUCCESS, sub));
    OK(etcd_txn_get(t, ETCD_SUCCESS, k("t/a"), strlen(k("t/a")), 0));
    OK(etcd_txn_get(t, ETCD_FAILURE, k("t/a"), strlen(k("t/a")), 0));
    assert_int_equal(etcd_txn_ops(t, ETCD_SUCCESS), 3);
    assert_int_equal(etcd_txn_compares(t), 3);
    OK(etcd_txn_commit(cli, NULL, t, &resp, &err));
    assert_true(resp.succeeded);
    assert_int_equal(resp.n, 3);
    assert_int_equal(resp.ops[0].type, ETCD_OP_PUT);
    assert_int_equal(resp.ops[1].type, ETCD_OP_TXN);
    assert_true(resp.ops[1].txn->succeeded);
    assert_int_equal(resp.ops[2].type, ETCD_OP_RANGE);
    assert_string_equal(resp.ops[2].range.kvs[0].value, "1");
    int64_t applied = resp.revision;
    etcd_txn_resp_release(&resp);
    /* the same txn again: mod_revision moved? no - t/a unchanged, but now compare on the nested
     * key proves atomicity: both writes carry the txn's one revision */
    struct etcd_range_req q = {.key = k("t/"), .key_len = strlen(k("t/")), .prefix = true};
    struct etcd_range_resp r;
    OK(etcd_range(cli, NULL, &q, &r, &err));
    assert_int_equal(r.n, 3);
    for (size_t i = 0; i < r.n; i++)
        if (strcmp(r.kvs[i].value, "1"))
            assert_int_equal(r.kvs[i].mod_revision, applied);
    etcd_range_resp_release(&r);
    /* compare fails now (t/a was not at rev? it still is - so break it with a new put) */
    OK(etcd_put(cli, NULL, k("t/a"), strlen(k("t/a")), "9", 1, 0, NULL, &err));
    OK(etcd_txn_commit(cli, NULL, t, &resp, &err));
    assert_false(resp.succeeded);
    assert_int_equal(resp.n, 1);
    assert_string_equal(resp.ops[0].range.kvs[0].value, "9");
    etcd_txn_resp_release(&resp);
    etcd_txn_free(t);
}

static void server_limits_are_definite_failures(void **state)
{
    struct etcd_txn *t;
    struct etcd_txn_resp resp;
    struct hp_err err = {0};
    char name[32];
    hp_rc rc;

    (void)state;
    /* the same key twice in one branch */
    OK(etcd_txn_new(&t));
    OK(etcd_txn_put(t, ETCD_SUCCESS, k("dup"), strlen(k("dup")), "1", 1, 0));
    OK(etcd_txn_put(t, ETCD_SUCCESS, k("dup"), strlen(k("dup")), "2", 1, 0));
    rc = etcd_txn_commit(cli, NULL, t, &resp, &err);
    assert_int_equal(rc, HP_ERR_INVALID);
    assert_int_equal(etcd_outcome_of(rc), ETCD_OUTCOME_FAILED);
    assert_non_null(strstr(err.msg, "duplicate key"));
    etcd_txn_free(t);
    /* 129 ops: over the default --max-txn-ops */
    OK(etcd_txn_new(&t));
    for (int i = 0; i < 129; i++) {
        snprintf(name, sizeof(name), "many/%d", i);
        OK(etcd_txn_put(t, ETCD_SUCCESS, k(name), strlen(k(name)), "x", 1, 0));
    }
    rc = etcd_txn_commit(cli, NULL, t, &resp, &err);
    assert_int_equal(rc, HP_ERR_INVALID);
    assert_non_null(strstr(err.msg, "too many operations"));
    etcd_txn_free(t);
    struct etcd_range_req q = {
        .key = k("many/"), .key_len = strlen(k("many/")), .prefix = true, .count_only = true};
    struct etcd_range_resp r;
    OK(etcd_range(cli, NULL, &q, &r, &err));
    assert_int_equal(r.count, 0); /* nothing of the refused txn landed */
    etcd_range_resp_release(&r);
}

static void leases_expire_keys_on_revoke(void **state)
{
    struct hp_err err = {0};
    struct etcd_range_resp r;
    int64_t id = 0, ttl = 0;
    hp_rc rc;

    (void)state;
    OK(etcd_lease_grant(cli, NULL, 60, &id, &err));
    OK(etcd_lease_keepalive(cli, NULL, id, &ttl, &err));
    assert_true(ttl > 0 && ttl <= 60);
    OK(etcd_put(cli, NULL, k("leased"), strlen(k("leased")), "x", 1, id, NULL, &err));
    struct etcd_range_req q = {.key = k("leased"), .key_len = strlen(k("leased"))};
    OK(etcd_range(cli, NULL, &q, &r, &err));
    assert_int_equal(r.n, 1);
    assert_int_equal(r.kvs[0].lease, id);
    etcd_range_resp_release(&r);
    OK(etcd_lease_revoke(cli, NULL, id, &err));
    OK(etcd_range(cli, NULL, &q, &r, &err));
    assert_int_equal(r.n, 0);
    etcd_range_resp_release(&r);
    rc = etcd_lease_keepalive(cli, NULL, id, &ttl, &err);
    assert_int_equal(rc, HP_ERR_NOTFOUND);
    /* a put on a revoked lease is refused: a definite failure */
    rc = etcd_put(cli, NULL, k("leased"), strlen(k("leased")), "x", 1, id, NULL, &err);
    assert_int_equal(etcd_outcome_of(rc), ETCD_OUTCOME_FAILED);
}

static void compacted_revision_is_gone(void **state)
{
    struct hp_err err = {0};
    struct etcd_range_resp r;
    int64_t old = 0, now = 0;
    CURL *h;
    char url[512], body[64];

    (void)state;
    if (getenv("HP_ETCD_USER"))
        skip(); /* compaction needs root; this run is a scoped user */
    OK(etcd_put(cli, NULL, k("c"), strlen(k("c")), "1", 1, 0, &old, &err));
    OK(etcd_put(cli, NULL, k("c"), strlen(k("c")), "2", 1, 0, &now, &err));
    /* compact through the gateway directly: the product never compacts */
    h = curl_easy_init();
    snprintf(url, sizeof(url), "%.*s/v3/kv/compaction", (int)strcspn(getenv("HP_ETCD_URL"), ","),
             getenv("HP_ETCD_URL"));
    snprintf(body, sizeof(body), "{\"revision\":\"%lld\"}", (long long)now);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, itest_discard);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    struct etcd_range_req q = {.key = k("c"), .key_len = strlen(k("c")), .revision = old};
    assert_int_equal(etcd_range(cli, NULL, &q, &r, &err), HP_ERR_GONE);
    assert_non_null(strstr(err.msg, "compacted"));
}

static void failover_skips_a_dead_endpoint(void **state)
{
    char eps[512];
    struct etcd_client *c;
    struct hp_err err = {0};
    int64_t rev = 0;

    (void)state;
    snprintf(eps, sizeof(eps), "%s,%s", getenv("HP_ETCD_DEAD_URL"), getenv("HP_ETCD_URL"));
    c = connect_to(eps);
    OK(etcd_put(c, NULL, k("fo"), strlen(k("fo")), "x", 1, 0, &rev, &err));
    assert_true(rev > 0);
    etcd_client_free(c);
}

/* The phantom case: the response is delayed beyond the deadline, the write commits anyway.
 * The client must say UNKNOWN, never FAILED, and return by the deadline plus slack. */
static void late_answer_is_unknown_and_may_have_applied(void **state)
{
    const char *slow = getenv("HP_ETCD_SLOW_URL");
    struct etcd_client *c;
    struct hp_err err = {0};
    struct etcd_range_resp r;
    struct hp_ctx *ctx;
    int64_t t0, ms;
    hp_rc rc;

    (void)state;
    if (!slow)
        skip();
    c = connect_to(slow);
    assert_int_equal(hp_ctx_new(NULL, 500, &ctx), HP_OK);
    t0 = hp_now_ns();
    rc = etcd_put(c, ctx, k("phantom"), strlen(k("phantom")), "late", 4, 0, NULL, &err);
    ms = (hp_now_ns() - t0) / 1000000;
    assert_int_equal(rc, HP_ERR_UNKNOWN_OUTCOME);
    assert_true(ms < 500 + 500);
    hp_ctx_free(ctx);
    etcd_client_free(c);
    /* read the truth from the fast path: the write did land */
    struct etcd_range_req q = {.key = k("phantom"), .key_len = strlen(k("phantom"))};
    for (int i = 0; i < 50; i++) {
        OK(etcd_range(cli, NULL, &q, &r, &err));
        if (r.n)
            break;
        etcd_range_resp_release(&r);
        usleep(100 * 1000);
    }
    assert_int_equal(r.n, 1);
    etcd_range_resp_release(&r);
}

/* With auth on and a short token TTL: an idle client's token expires; the next call is
 * refused as "invalid auth token", and the client re-authenticates and succeeds. */
static void expired_token_is_renewed(void **state)
{
    const char *ttl = getenv("HP_ETCD_TOKEN_TTL");
    struct hp_err err = {0};
    int64_t rev = 0;

    (void)state;
    if (!getenv("HP_ETCD_USER") || !ttl)
        skip();
    OK(etcd_put(cli, NULL, k("tok"), strlen(k("tok")), "1", 1, 0, &rev, &err));
    sleep((unsigned)strtoul(ttl, NULL, 10) + 2);
    OK(etcd_put(cli, NULL, k("tok"), strlen(k("tok")), "2", 1, 0, &rev, &err));
    assert_true(rev > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_reports_the_server),
        cmocka_unit_test(put_range_delete_with_binary_keys_and_values),
        cmocka_unit_test(prefix_limit_count_keys_only_and_past_revision),
        cmocka_unit_test(txn_compares_branches_and_nesting),
        cmocka_unit_test(server_limits_are_definite_failures),
        cmocka_unit_test(leases_expire_keys_on_revoke),
        cmocka_unit_test(failover_skips_a_dead_endpoint),
        cmocka_unit_test(late_answer_is_unknown_and_may_have_applied),
        cmocka_unit_test(compacted_revision_is_gone),
        cmocka_unit_test(expired_token_is_renewed),
    };
    int rc;

    if (!getenv("HP_ETCD_URL") || !getenv("HP_ETCD_DEAD_URL")) {
        fprintf(stderr, "itest-etcd_client: set HP_ETCD_URL and HP_ETCD_DEAD_URL\n");
        return 2;
    }
    hp_alloc_install();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
