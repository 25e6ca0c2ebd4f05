/* test-etcd_pb.c - unit tests of controller/etcd/etcd_pb.c against protoc, the reference
 * encoder: tests/data/etcd/pb/NAME.hex is protoc's encoding of NAME.txtpb with our own
 * etcd-subset.proto (tests/tools/gen-pb-vectors.sh regenerates them; protoc is not needed
 * here). Requests: the C encoding must equal protoc's bytes. Responses: protoc's bytes (some
 * with fields of every wire type the decoder does not know, before and after the known ones)
 * decode to the expected fields. Then every truncation of every response with every decoder,
 * malformed and wrongly typed fields, nesting limits, invalid txn descriptions, and every
 * allocation failing in turn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "etcd/etcd_pb.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/pb_writer.h"
#include "pb_vectors.h"

#define LEASE_ID 7587869214716474383
#define MEMBER   ((int64_t)10276657743932975437ull)
#define CLUSTER  ((int64_t)14841639068965178418ull)

/* ---- requests: C encoding == protoc encoding ---- */

static void range_requests(void **state)
{
    struct etcd_range_req key = {.key = "/hostpatrol/results/default/web/http/a", .key_len = 38};
    struct etcd_range_req prefix = {.key = "/hp/",
                                    .key_len = 4,
                                    .prefix = true,
                                    .limit = 10,
                                    .revision = 42,
                                    .serializable = true,
                                    .keys_only = true,
                                    .count_only = true,
                                    .min_mod_revision = 4242};
    struct etcd_range_req ff = {
        .key = "a\377\377", .key_len = 3, .prefix = true, .revision = 1234567890123};
    struct etcd_range_req all = {.key = "\377", .key_len = 1, .prefix = true};
    struct etcd_range_req end = {
        .key = "a", .key_len = 1, .range_end = "z\0", .range_end_len = 2, .limit = 300};
    struct pb_writer w;

    (void)state;
    pb_writer_init(&w);
    assert_int_equal(etcd_pb_encode_range(&w, &key, NULL), HP_OK);
    pb_vec_same_as_protoc(&w, "req-range-key");
    assert_int_equal(etcd_pb_encode_range(&w, &prefix, NULL), HP_OK);
    pb_vec_same_as_protoc(&w, "req-range-prefix");
    assert_int_equal(etcd_pb_encode_range(&w, &ff, NULL), HP_OK);
    pb_vec_same_as_protoc(&w, "req-range-prefix-ff");
    assert_int_equal(etcd_pb_encode_range(&w, &all, NULL), HP_OK);
    pb_vec_same_as_protoc(&w, "req-range-prefix-all");
    assert_int_equal(etcd_pb_encode_range(&w, &end, NULL), HP_OK);
    pb_vec_same_as_protoc(&w, "req-range-end");
}

static void put_and_delete_requests(void **state)
{
    static const char value[] = "\0\1\377{\"status\":\"OK\"}";
    char big[280];
    struct pb_writer w;

    (void)state;
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('0' + i % 10);
    pb_writer_init(&w);
    assert_int_equal(etcd_pb_encode_put(&w, "/k\0\1", 4, value, sizeof(value) - 1, LEASE_ID, NULL),
                     HP_OK);
    pb_vec_same_as_protoc(&w, "req-put");
    assert_int_equal(etcd_pb_encode_put(&w, "/k", 2, NULL, 0, -5, NULL), HP_OK);
    pb_vec_same_as_protoc(&w, "req-put-negative-lease");
    assert_int_equal(etcd_pb_encode_put(&w, "/big", 4, big, sizeof(big), 0, NULL), HP_OK);
    pb_vec_same_as_protoc(&w, "req-put-large");
    assert_int_equal(etcd_pb_encode_delete(&w, "/hostpatrol/batch/7", 19, false, NULL), HP_OK);
    pb_vec_same_as_protoc(&w, "req-delete");
    assert_int_equal(etcd_pb_encode_delete(&w, "/hostpatrol/results/default/web/", 32, true, NULL),
                     HP_OK);
    pb_vec_same_as_protoc(&w, "req-delete-prefix");
}

static void txn_requests(void **state)
{
    static const struct etcd_txn_cmp inner_cmp[] = {
        {.target = ETCD_CMP_MOD_REVISION,
         .op = ETCD_CMP_GREATER,
         .key = "/n",
         .key_len = 2,
         .v = 1},
    };
    static const struct etcd_txn_op inner_ok[] = {
        {.type = ETCD_OP_PUT, .key = "/n", .key_len = 2, .value = "v", .value_len = 1},
    };
    static const struct etcd_txn_op inner_fail[] = {
        {.type = ETCD_OP_RANGE, .key = "/n", .key_len = 2},
    };
    static const struct etcd_txn_desc inner = {inner_cmp, 1, {inner_ok, inner_fail}, {1, 1}};
    static const struct etcd_txn_desc empty = {0};
    static const struct etcd_txn_cmp cmp[] = {
        {.target = ETCD_CMP_CREATE_REVISION, .op = ETCD_CMP_EQUAL, .key = "/fence", .key_len = 6},
        {.target = ETCD_CMP_VERSION, .op = ETCD_CMP_GREATER, .key = "/v", .key_len = 2, .v = 3},
        {.target = ETCD_CMP_MOD_REVISION, .op = ETCD_CMP_LESS, .key = "/m", .key_len = 2, .v = 100},
        {.target = ETCD_CMP_VALUE,
         .op = ETCD_CMP_NOT_EQUAL,
         .key = "/x",
         .key_len = 2,
         .value = "old\0",
         .value_len = 4},
        {.target = ETCD_CMP_VALUE, .op = ETCD_CMP_EQUAL, .key = "/e", .key_len = 2},
        {.target = ETCD_CMP_LEASE, .op = ETCD_CMP_EQUAL, .key = "/l", .key_len = 2, .v = -1},
    };
    static const struct etcd_txn_op ok[] = {
        {.type = ETCD_OP_PUT, .key = "/a", .key_len = 2, .value = "1", .value_len = 1, .lease = 99},
        {.type = ETCD_OP_DELETE, .key = "/p/", .key_len = 3, .prefix = true},
        {.type = ETCD_OP_RANGE, .key = "/r", .key_len = 2, .revision = 5},
        {.type = ETCD_OP_TXN, .txn = &inner},
    };
    static const struct etcd_txn_op fail[] = {
        {.type = ETCD_OP_RANGE, .key = "/q/", .key_len = 3, .prefix = true},
        {.type = ETCD_OP_PUT, .key = "/empty", .key_len = 6},
        {.type = ETCD_OP_DELETE, .key = "/d", .key_len = 2},
        {.type = ETCD_OP_TXN, .txn = &empty},
    };
    static const struct etcd_txn_desc txn = {cmp, 6, {ok, fail}, {4, 4}};
    static const char *const values[2] = {
        "{\"check\":\"http\",\"target\":\"https://example.com\",\"status\":\"OK\",\"reason\":\"\","
        "\"duration_ms\":12,\"values\":{\"http_status\":200}}",
        "{\"check\":\"http\",\"target\":\"https://example.org\",\"status\":\"FAILED\",\"reason\":"
        "\"connection refused\",\"duration_ms\":3,\"values\":{}}"};
    struct etcd_txn_op puts[2] = {
        {.type = ETCD_OP_PUT, .key = "/hostpatrol/results/default/web/http/a", .key_len = 38},
        {.type = ETCD_OP_PUT, .key = "/hostpatrol/results/default/web/http/b", .key_len = 38},
    };
    struct etcd_txn_desc batch = {NULL, 0, {puts, NULL}, {2, 0}};
    struct etcd_txn_op nest = {.type = ETCD_OP_TXN, .txn = &batch};
    struct etcd_txn_cmp fence = {
        .target = ETCD_CMP_CREATE_REVISION, .key = "/hostpatrol/fence/epoch", .key_len = 23};
    struct etcd_txn_desc large = {&fence, 1, {&nest, NULL}, {1, 0}};
    struct pb_writer w;

    (void)state;
    for (int i = 0; i < 2; i++) {
        puts[i].value = values[i];
        puts[i].value_len = strlen(values[i]);
    }
    pb_writer_init(&w);
    assert_int_equal(etcd_pb_encode_txn(&w, &txn, NULL), HP_OK);
    pb_vec_same_as_protoc(&w, "req-txn");
    assert_int_equal(etcd_pb_encode_txn(&w, &large, NULL), HP_OK); /* 2-byte nested lengths */
    pb_vec_same_as_protoc(&w, "req-txn-large");
    assert_int_equal(etcd_pb_encode_txn(&w, &empty, NULL), HP_OK);
    pb_vec_same_as_protoc(&w, "req-txn-empty");
}

static void lease_auth_and_status_requests(void **state)
{
    struct pb_writer w;

    (void)state;
    pb_writer_init(&w);
    assert_int_equal(etcd_pb_encode_lease_grant(&w, 10, 0, NULL), HP_OK);
    pb_vec_same_as_protoc(&w, "req-lease-grant");
    assert_int_equal(etcd_pb_encode_lease_grant(&w, 60, 42, NULL), HP_OK);
    pb_vec_same_as_protoc(&w, "req-lease-grant-id");
    assert_int_equal(etcd_pb_encode_lease_id(&w, LEASE_ID, NULL), HP_OK);
    pb_vec_same_as_protoc(&w, "req-lease-id");
    assert_int_equal(etcd_pb_encode_auth(&w, "root", "s3cr\303\251t", NULL), HP_OK);
    pb_vec_same_as_protoc(&w, "req-auth");
    pb_vec_same_as_protoc(&w, "req-status"); /* StatusRequest: nothing written */
}

static void invalid_txn_descriptions_are_refused(void **state)
{
    struct etcd_txn_cmp bad_cmp = {.target = (enum etcd_cmp_target)9, .key = "/k", .key_len = 2};
    struct etcd_txn_op bad_op = {.type = (enum etcd_op_type)7};
    struct etcd_txn_op no_txn = {.type = ETCD_OP_TXN};
    struct etcd_txn_desc inner = {NULL, 0, {NULL, &no_txn}, {0, 1}};
    struct etcd_txn_op nest = {.type = ETCD_OP_TXN, .txn = &inner};
    struct etcd_txn_desc t1 = {&bad_cmp, 1, {NULL, NULL}, {0, 0}};
    struct etcd_txn_desc t2 = {NULL, 0, {&bad_op, NULL}, {1, 0}};
    struct etcd_txn_desc t3 = {NULL, 0, {&nest, NULL}, {1, 0}};
    struct etcd_txn_desc loop = {NULL, 0, {NULL, NULL}, {1, 0}};
    struct etcd_txn_op self = {.type = ETCD_OP_TXN, .txn = &loop};
    struct hp_err err = {0};
    struct pb_writer w;

    (void)state;
    loop.ops[0] = &self; /* a txn nested in itself: refused at the depth limit */
    pb_writer_init(&w);
    assert_int_equal(etcd_pb_encode_txn(&w, &t1, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "compare[0]");
    assert_int_equal(etcd_pb_encode_txn(&w, &t2, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "success[0]");
    assert_int_equal(etcd_pb_encode_txn(&w, &t3, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "success[0].txn.failure[0]");
    assert_int_equal(etcd_pb_encode_txn(&w, &loop, &err), HP_ERR_INVALID);
    assert_non_null(strstr(err.msg, "nested deeper than 16"));
    pb_writer_release(&w);
}

/* ---- responses: protoc's bytes decode to the expected fields ---- */

static void kv_is(const struct etcd_kv *kv, const char *key, size_t key_len, const char *value,
                  size_t value_len, int64_t create, int64_t mod, int64_t version, int64_t lease)
{
    assert_int_equal(kv->key_len, key_len);
    assert_memory_equal(kv->key, key, key_len + 1); /* with the NUL */
    assert_int_equal(kv->value_len, value_len);
    assert_memory_equal(kv->value, value, value_len + 1);
    assert_int_equal(kv->create_revision, create);
    assert_int_equal(kv->mod_revision, mod);
    assert_int_equal(kv->version, version);
    assert_int_equal(kv->lease, lease);
}

static void range_responses(void **state)
{
    struct etcd_range_resp r;
    struct hp_err err = {0};
    struct pb_vec v;

    (void)state;
    v = pb_vec_load("resp-range");
    assert_int_equal(etcd_pb_decode_range(v.p, v.n, &r, &err), HP_OK);
    assert_int_equal(r.revision, 1234);
    assert_int_equal(r.count, 5);
    assert_true(r.more);
    assert_int_equal(r.n, 2);
    kv_is(&r.kvs[0], "\0k\377", 3, "v\0alue", 6, 10, 20, 3, LEASE_ID);
    kv_is(&r.kvs[1], "/b", 2, "", 0, 11, 11, 1, 0); /* no value: "" */
    etcd_range_resp_release(&r);
    assert_null(r.kvs);
    hp_free(v.p);

    v = pb_vec_load("resp-range-empty");
    assert_int_equal(etcd_pb_decode_range(v.p, v.n, &r, &err), HP_OK);
    assert_int_equal(r.revision, 9);
    assert_int_equal(r.n, 0);
    assert_null(r.kvs);
    assert_false(r.more);
    etcd_range_resp_release(&r);
    hp_free(v.p);

    v = pb_vec_load("resp-range-nothing"); /* 0 bytes: every field its default */
    assert_int_equal(v.n, 0);
    assert_int_equal(etcd_pb_decode_range(NULL, 0, &r, &err), HP_OK);
    assert_int_equal(r.revision, 0);
    assert_int_equal(r.n, 0);
    hp_free(v.p);

    /* unknown fields of every wire type, before and after the known ones, in the message, its
     * header and its kvs; the second header and the kvs of three parts merge */
    v = pb_vec_load("resp-range-unknown");
    assert_int_equal(etcd_pb_decode_range(v.p, v.n, &r, &err), HP_OK);
    assert_int_equal(r.revision, 77);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.n, 2);
    kv_is(&r.kvs[0], "/a", 2, "1", 1, 0, 0, 1, 0);
    kv_is(&r.kvs[1], "/b", 2, "2", 1, 0, 0, 2, 0);
    etcd_range_resp_release(&r);
    hp_free(v.p);
}

static void put_delete_lease_auth_status_responses(void **state)
{
    int64_t rev = -1, deleted = -1, id = -1, ttl = -1;
    struct hp_err err = {0};
    struct etcd_status st;
    char *token = NULL;
    struct pb_vec v;

    (void)state;
    v = pb_vec_load("resp-put"); /* prev_kv: skipped */
    assert_int_equal(etcd_pb_decode_put(v.p, v.n, &rev, &err), HP_OK);
    assert_int_equal(rev, 501);
    hp_free(v.p);

    v = pb_vec_load("resp-delete");
    assert_int_equal(etcd_pb_decode_delete(v.p, v.n, &deleted, &rev, &err), HP_OK);
    assert_int_equal(deleted, 3);
    assert_int_equal(rev, 502);
    hp_free(v.p);

    v = pb_vec_load("resp-lease-grant");
    assert_int_equal(etcd_pb_decode_lease_grant(v.p, v.n, &id, &ttl, &err), HP_OK);
    assert_int_equal(id, LEASE_ID);
    assert_int_equal(ttl, 10);
    hp_free(v.p);

    v = pb_vec_load("resp-lease-grant-error");
    assert_int_equal(etcd_pb_decode_lease_grant(v.p, v.n, &id, &ttl, &err), HP_ERR_INVALID);
    assert_string_equal(err.msg, "etcd lease grant refused: lease already?exists");
    assert_int_equal(id, 0);
    hp_free(v.p);

    v = pb_vec_load("resp-lease-revoke");
    assert_int_equal(etcd_pb_decode_lease_revoke(v.p, v.n, &rev, &err), HP_OK);
    assert_int_equal(rev, 812);
    hp_free(v.p);

    v = pb_vec_load("resp-lease-keepalive");
    assert_int_equal(etcd_pb_decode_lease_ttl(v.p, v.n, &id, &ttl, &err), HP_OK);
    assert_int_equal(id, LEASE_ID);
    assert_int_equal(ttl, 30);
    hp_free(v.p);

    v = pb_vec_load("resp-lease-ttl"); /* TimeToLive: grantedTTL and keys skipped */
    assert_int_equal(etcd_pb_decode_lease_ttl(v.p, v.n, &id, &ttl, &err), HP_OK);
    assert_int_equal(id, 42);
    assert_int_equal(ttl, 17);
    hp_free(v.p);

    v = pb_vec_load("resp-lease-ttl-expired");
    assert_int_equal(etcd_pb_decode_lease_ttl(v.p, v.n, &id, &ttl, &err), HP_OK);
    assert_int_equal(ttl, -1);
    hp_free(v.p);

    v = pb_vec_load("resp-auth");
    assert_int_equal(etcd_pb_decode_auth(v.p, v.n, &token, &err), HP_OK);
    assert_string_equal(token, "SOJRBbCVLsgZjKhj.59");
    hp_free(token);
    hp_free(v.p);

    v = pb_vec_load("resp-auth-bad-token"); /* CR LF would end up in a header */
    assert_int_equal(etcd_pb_decode_auth(v.p, v.n, &token, &err), HP_ERR_PROTOCOL);
    assert_null(token);
    assert_non_null(strstr(err.msg, "byte 0x0d at 3"));
    assert_int_equal(etcd_pb_decode_auth(NULL, 0, &token, &err), HP_ERR_PROTOCOL);
    assert_string_equal(err.msg, "etcd authentication answered without a token");
    hp_free(v.p);

    v = pb_vec_load("resp-status");
    assert_int_equal(etcd_pb_decode_status(v.p, v.n, &st, &err), HP_OK);
    assert_string_equal(st.version, "3.6.16");
    assert_int_equal(st.revision, 1500);
    assert_int_equal(st.member_id, MEMBER); /* a uint64 keeps its bit pattern */
    assert_int_equal(st.leader, MEMBER);
    assert_int_equal(st.raft_term, 8);
    hp_free(v.p);

    v = pb_vec_load("resp-status-long-version");
    assert_int_equal(etcd_pb_decode_status(v.p, v.n, &st, &err), HP_OK);
    assert_string_equal(st.version, "3.6.16-with-a-very-long-suffix-");
    assert_int_equal(st.leader, 1);
    hp_free(v.p);
}

static void txn_responses(void **state)
{
    struct etcd_txn_resp t;
    struct hp_err err = {0};
    struct etcd_txn_resp *in;
    struct pb_vec v;

    (void)state;
    v = pb_vec_load("resp-txn");
    assert_int_equal(etcd_pb_decode_txn(v.p, v.n, &t, &err), HP_OK);
    assert_true(t.succeeded);
    assert_int_equal(t.revision, 100);
    assert_int_equal(t.n, 4);
    assert_int_equal(t.ops[0].type, ETCD_OP_RANGE);
    assert_int_equal(t.ops[0].range.revision, 100);
    assert_int_equal(t.ops[0].range.count, 1);
    assert_int_equal(t.ops[0].range.n, 1);
    kv_is(&t.ops[0].range.kvs[0], "/r", 2, "x", 1, 90, 95, 2, 0);
    assert_int_equal(t.ops[1].type, ETCD_OP_PUT);
    assert_int_equal(t.ops[2].type, ETCD_OP_DELETE);
    assert_int_equal(t.ops[2].deleted, 2);
    assert_int_equal(t.ops[3].type, ETCD_OP_TXN);
    in = t.ops[3].txn;
    assert_non_null(in);
    assert_false(in->succeeded);
    assert_int_equal(in->revision, 100);
    assert_int_equal(in->n, 2);
    assert_int_equal(in->ops[0].type, ETCD_OP_RANGE);
    assert_int_equal(in->ops[0].range.n, 0);
    assert_int_equal(in->ops[1].type, ETCD_OP_PUT);
    etcd_txn_resp_release(&t);
    assert_null(t.ops);
    hp_free(v.p);

    v = pb_vec_load("resp-txn-failed");
    assert_int_equal(etcd_pb_decode_txn(v.p, v.n, &t, &err), HP_OK);
    assert_false(t.succeeded);
    assert_int_equal(t.revision, 33);
    assert_int_equal(t.n, 1);
    kv_is(&t.ops[0].range.kvs[0], "/fence", 6, "7", 1, 3, 30, 4, 0);
    etcd_txn_resp_release(&t);
    hp_free(v.p);

    v = pb_vec_load("resp-txn-unknown");
    assert_int_equal(etcd_pb_decode_txn(v.p, v.n, &t, &err), HP_OK);
    assert_true(t.succeeded);
    assert_int_equal(t.revision, 61);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.ops[0].type, ETCD_OP_RANGE);
    kv_is(&t.ops[0].range.kvs[0], "/u", 2, "", 0, 0, 0, 0, 0);
    assert_int_equal(t.ops[1].type, ETCD_OP_TXN);
    assert_true(t.ops[1].txn->succeeded);
    assert_int_equal(t.ops[1].txn->n, 1);
    assert_int_equal(t.ops[1].txn->ops[0].type, ETCD_OP_PUT);
    etcd_txn_resp_release(&t);
    hp_free(v.p);
}

/* ---- malformed input ---- */

static const char *const responses[] = {
    "resp-range",         "resp-range-empty",
    "resp-range-unknown", "resp-put",
    "resp-delete",        "resp-txn",
    "resp-txn-failed",    "resp-txn-unknown",
    "resp-lease-grant",   "resp-lease-grant-error",
    "resp-lease-revoke",  "resp-lease-keepalive",
    "resp-lease-ttl",     "resp-auth",
    "resp-status",
};

/* decode_all: every decoder on p[0..n); each gives OK or the error classes a decoder may give,
 * and zeroed outputs on error; returns how many refused with HP_ERR_PROTOCOL */
static int decode_all(const unsigned char *p, size_t n)
{
    struct etcd_range_resp r;
    struct etcd_txn_resp t;
    struct etcd_status st;
    int64_t a, b;
    char *token;
    struct hp_err err;
    int refused = 0;
    hp_rc rc;

#define CHECK(call, zero)                                                                          \
    do {                                                                                           \
        hp_err_clear(&err);                                                                        \
        rc = (call);                                                                               \
        if (rc != HP_OK && rc != HP_ERR_PROTOCOL && rc != HP_ERR_INVALID)                          \
            fail_msg("%s gave %s", #call, hp_rc_name(rc));                                         \
        if (rc) {                                                                                  \
            assert_true(zero);                                                                     \
            assert_true(err.msg[0] != '\0');                                                       \
            refused += rc == HP_ERR_PROTOCOL;                                                      \
        }                                                                                          \
    } while (0)

    CHECK(etcd_pb_decode_range(p, n, &r, &err), r.kvs == NULL && r.n == 0);
    etcd_range_resp_release(&r);
    CHECK(etcd_pb_decode_txn(p, n, &t, &err), t.ops == NULL && t.n == 0);
    etcd_txn_resp_release(&t);
    CHECK(etcd_pb_decode_put(p, n, &a, &err), a == 0);
    CHECK(etcd_pb_decode_delete(p, n, &a, &b, &err), a == 0 && b == 0);
    CHECK(etcd_pb_decode_lease_grant(p, n, &a, &b, &err), a == 0 && b == 0);
    CHECK(etcd_pb_decode_lease_revoke(p, n, &a, &err), a == 0);
    CHECK(etcd_pb_decode_lease_ttl(p, n, &a, &b, &err), a == 0 && b == 0);
    token = NULL;
    CHECK(etcd_pb_decode_auth(p, n, &token, &err), token == NULL);
    hp_free(token);
    CHECK(etcd_pb_decode_status(p, n, &st, &err), st.version[0] == '\0' && st.leader == 0);
#undef CHECK
    return refused;
}

static void every_truncation_with_every_decoder(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(responses) / sizeof(responses[0]); i++) {
        struct pb_vec v = pb_vec_load(responses[i]);

        decode_all(v.p, v.n); /* whole, with each decoder: the wrong type too */
        for (size_t n = 0; n < v.n; n++) {
            /* a copy of exactly n bytes: ASan sees any read past it */
            unsigned char *cut = malloc(n ? n : 1);

            assert_non_null(cut);
            memcpy(cut, v.p, n);
            decode_all(cut, n);
            free(cut);
        }
        /* cut inside the first field (past its tag): every decoder refuses */
        if (v.n > 2) {
            unsigned char *cut = malloc(2);

            memcpy(cut, v.p, 2);
            if (v.p[1] > 1 && (v.p[0] & 7) == PB_WIRE_LEN)
                assert_int_equal(decode_all(cut, 2), 9);
            free(cut);
        }
        hp_free(v.p);
    }
}

static void known_fields_with_the_wrong_wire_type_are_refused(void **state)
{
    struct etcd_range_resp r;
    struct etcd_txn_resp t;
    struct hp_err err = {0};
    int64_t rev;

    (void)state;
    /* RangeResponse.count as bytes */
    assert_int_equal(etcd_pb_decode_range("\x22\x00", 2, &r, &err), HP_ERR_PROTOCOL);
    assert_string_equal(err.msg, "protobuf RangeResponse at byte 0: field 4 (count) has wire "
                                 "type 2, not a varint");
    /* header as a varint */
    assert_int_equal(etcd_pb_decode_put("\x08\x01", 2, &rev, &err), HP_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "(ResponseHeader) has wire type 0, not a message"));
    /* KeyValue.key as a varint, inside kvs[0], after a good field */
    assert_int_equal(etcd_pb_decode_range("\x12\x04\x20\x01\x08\x01", 6, &r, &err),
                     HP_ERR_PROTOCOL);
    assert_string_equal(err.msg, "protobuf KeyValue at byte 4: field 1 (key) has wire type 0, "
                                 "not length-delimited");
    assert_null(r.kvs);
    /* a ResponseOp with no member */
    assert_int_equal(etcd_pb_decode_txn("\x10\x01\x1a\x02\x28\x01", 6, &t, &err), HP_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "ResponseOp at byte 2: no response_range"));
    assert_null(t.ops);
    /* TxnResponse.succeeded as fixed32 */
    assert_int_equal(etcd_pb_decode_txn("\x15\x01\x00\x00\x00", 5, &t, &err), HP_ERR_PROTOCOL);
    assert_non_null(strstr(err.msg, "field 2 (succeeded) has wire type 5"));
}

static void a_response_op_sent_twice_keeps_the_last(void **state)
{
    /* ResponseOp { response_range { kvs { key "a" } } response_delete_range { deleted 4 } } */
    static const char msg[] = "\x1a\x0d\x0a\x05\x12\x03\x0a\x01\x61\x1a\x04\x10\x04\x10\x04";
    struct etcd_txn_resp t;
    struct hp_err err = {0};

    (void)state;
    assert_int_equal(etcd_pb_decode_txn(msg, 2 + 0x0d, &t, &err), HP_OK);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.ops[0].type, ETCD_OP_DELETE);
    assert_int_equal(t.ops[0].deleted, 4);
    assert_int_equal(t.ops[0].range.n, 0); /* the range's kvs were released */
    etcd_txn_resp_release(&t);
}

/* nested_txn: a TxnResponse with `levels` response_txn levels inside it, into w */
static void nested_txn(struct pb_writer *w, int levels)
{
    size_t op, txn;

    if (!levels)
        return;
    op = pb_writer_begin(w, 3);
    txn = pb_writer_begin(w, 4);
    pb_writer_varint(w, 2, 1);
    nested_txn(w, levels - 1);
    pb_writer_end(w, txn);
    pb_writer_end(w, op);
}

static void nested_txn_responses_are_bounded(void **state)
{
    struct etcd_txn_resp t;
    struct hp_err err = {0};
    struct pb_writer w;
    int levels;

    (void)state;
    /* each level is two messages (ResponseOp, TxnResponse): 32 levels reach depth 64 */
    for (levels = 31; levels <= 33; levels++) {
        pb_writer_init(&w);
        nested_txn(&w, levels);
        assert_int_equal(pb_writer_error(&w), HP_OK);
        if (levels <= 32) {
            assert_int_equal(etcd_pb_decode_txn(pb_writer_data(&w), pb_writer_len(&w), &t, &err),
                             HP_OK);
            etcd_txn_resp_release(&t);
        } else {
            assert_int_equal(etcd_pb_decode_txn(pb_writer_data(&w), pb_writer_len(&w), &t, &err),
                             HP_ERR_PROTOCOL);
            assert_non_null(strstr(err.msg, "nested deeper than 64"));
            assert_null(t.ops);
        }
        pb_writer_release(&w);
    }
}

/* ---- out of memory ---- */

static void every_allocation_failing_is_nomem_without_leaks(void **state)
{
    static const char *const names[] = {"resp-range", "resp-txn", "resp-txn-unknown", "resp-auth"};

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct pb_vec v = pb_vec_load(names[i]);
        long k;

        for (k = 0;; k++) {
            struct etcd_range_resp r;
            struct etcd_txn_resp t;
            struct hp_err err = {0};
            char *token = NULL;
            hp_rc rc;

            hp_alloc_fail_after(k);
            if (!strcmp(names[i], "resp-range"))
                rc = etcd_pb_decode_range(v.p, v.n, &r, &err);
            else if (!strcmp(names[i], "resp-auth"))
                rc = etcd_pb_decode_auth(v.p, v.n, &token, &err);
            else
                rc = etcd_pb_decode_txn(v.p, v.n, &t, &err);
            hp_alloc_fail_reset();
            if (rc == HP_OK) {
                if (!strcmp(names[i], "resp-range"))
                    etcd_range_resp_release(&r);
                else if (!strcmp(names[i], "resp-auth"))
                    hp_free(token);
                else
                    etcd_txn_resp_release(&t);
                break;
            }
            assert_int_equal(rc, HP_ERR_NOMEM);
            assert_non_null(strstr(err.msg, "out of memory decoding an etcd"));
        }
        assert_true(k > 0);
        hp_free(v.p);
    }
}

static void encoders_report_nomem(void **state)
{
    struct etcd_range_req req = {.key = "/k", .key_len = 2, .prefix = true};
    struct etcd_txn_op op = {.type = ETCD_OP_PUT, .key = "/k", .key_len = 2};
    struct etcd_txn_desc t = {NULL, 0, {&op, NULL}, {1, 0}};
    struct hp_err err = {0};
    struct pb_writer w;

    (void)state;
    hp_alloc_fail_after(0);
    pb_writer_init(&w);
    assert_int_equal(etcd_pb_encode_range(&w, &req, &err), HP_ERR_NOMEM);
    assert_string_equal(err.msg, "out of memory encoding an etcd range");
    assert_int_equal(etcd_pb_encode_txn(&w, &t, &err), HP_ERR_NOMEM);
    assert_int_equal(etcd_pb_encode_put(&w, "k", 1, "v", 1, 0, &err), HP_ERR_NOMEM);
    assert_int_equal(etcd_pb_encode_delete(&w, "k", 1, true, &err), HP_ERR_NOMEM);
    assert_int_equal(etcd_pb_encode_lease_grant(&w, 1, 0, &err), HP_ERR_NOMEM);
    assert_int_equal(etcd_pb_encode_lease_id(&w, 1, &err), HP_ERR_NOMEM);
    assert_int_equal(etcd_pb_encode_auth(&w, "u", "p", &err), HP_ERR_NOMEM);
    hp_alloc_fail_reset();
    pb_writer_release(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(range_requests),
        cmocka_unit_test(put_and_delete_requests),
        cmocka_unit_test(txn_requests),
        cmocka_unit_test(lease_auth_and_status_requests),
        cmocka_unit_test(invalid_txn_descriptions_are_refused),
        cmocka_unit_test(range_responses),
        cmocka_unit_test(put_delete_lease_auth_status_responses),
        cmocka_unit_test(txn_responses),
        cmocka_unit_test(every_truncation_with_every_decoder),
        cmocka_unit_test(known_fields_with_the_wrong_wire_type_are_refused),
        cmocka_unit_test(a_response_op_sent_twice_keeps_the_last),
        cmocka_unit_test(nested_txn_responses_are_bounded),
        cmocka_unit_test(every_allocation_failing_is_nomem_without_leaks),
        cmocka_unit_test(encoders_report_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
