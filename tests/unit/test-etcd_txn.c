/* test-etcd_txn.c - unit tests of controller/etcd/etcd_txn.c: the builder's request as the
 * gateway's JSON (byte for byte: the text etcd_txn.c has always sent), etcd_txn_bytes exact,
 * counts, invalid compares refused without spoiling the txn, and every allocation failing in
 * turn; and the same txn as protobuf (etcd_txn_describe + etcd_pb_encode_txn) byte for byte
 * as protoc encodes it (tests/data/etcd/pb/req-txn-builder.txtpb). The txn against a real etcd:
 * tests/integration/test-etcd-client.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "etcd/etcd_internal.h"
#include "etcd/etcd_pb.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/etcd_txn.h"
#include "pb_vectors.h"

/* build: every kind of compare and op, a nested txn in each branch (one of them empty) */
static hp_rc build(struct etcd_txn **out)
{
    struct etcd_txn *t = NULL, *sub = NULL, *empty = NULL;
    hp_rc rc;

    *out = NULL;
    rc = etcd_txn_new(&t);
    if (!rc)
        rc = etcd_txn_compare_int(t, "/fence", 6, ETCD_CMP_CREATE_REVISION, ETCD_CMP_EQUAL, 0);
    if (!rc)
        rc = etcd_txn_compare_int(t, "/v", 2, ETCD_CMP_VERSION, ETCD_CMP_GREATER, 3);
    if (!rc)
        rc = etcd_txn_compare_int(t, "/m", 2, ETCD_CMP_MOD_REVISION, ETCD_CMP_LESS, 100);
    if (!rc)
        rc = etcd_txn_compare_value(t, "/x", 2, ETCD_CMP_NOT_EQUAL, "old\0", 4);
    if (!rc)
        rc = etcd_txn_compare_int(t, "/l", 2, ETCD_CMP_LEASE, ETCD_CMP_EQUAL, -1);
    if (!rc)
        rc = etcd_txn_put(t, ETCD_SUCCESS, "/a", 2, "1", 1, 99);
    if (!rc)
        rc = etcd_txn_put(t, ETCD_SUCCESS, "/b\377", 3, "", 0, 0);
    if (!rc)
        rc = etcd_txn_delete(t, ETCD_SUCCESS, "/p/", 3, true);
    if (!rc)
        rc = etcd_txn_delete(t, ETCD_SUCCESS, "/d", 2, false);
    if (!rc)
        rc = etcd_txn_get(t, ETCD_FAILURE, "/r", 2, 5);
    if (!rc)
        rc = etcd_txn_get(t, ETCD_FAILURE, "/r0", 3, 0);
    if (!rc)
        rc = etcd_txn_new(&sub);
    if (!rc)
        rc = etcd_txn_compare_int(sub, "/n", 2, ETCD_CMP_MOD_REVISION, ETCD_CMP_GREATER, 1);
    if (!rc)
        rc = etcd_txn_put(sub, ETCD_SUCCESS, "/n", 2, "v", 1, 0);
    if (!rc)
        rc = etcd_txn_get(sub, ETCD_FAILURE, "/n", 2, 0);
    if (!rc) {
        rc = etcd_txn_nest(t, ETCD_SUCCESS, sub); /* sub taken, also on error */
        sub = NULL;
    }
    if (!rc)
        rc = etcd_txn_new(&empty);
    if (!rc) {
        rc = etcd_txn_nest(t, ETCD_FAILURE, empty);
        empty = NULL;
    }
    etcd_txn_free(sub);
    etcd_txn_free(empty);
    if (rc) {
        etcd_txn_free(t);
        return rc;
    }
    *out = t;
    return HP_OK;
}

/* what the JSON builder sent before the txn was kept as data (commit 4d39228) */
static const char golden[] =
    "{\"compare\":[{\"key\":\"L2ZlbmNl\",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_"
    "revision\":0},{\"key\":\"L3Y=\",\"target\":\"VERSION\",\"result\":\"GREATER\",\"version"
    "\":3},{\"key\":\"L20=\",\"target\":\"MOD\",\"result\":\"LESS\",\"mod_revision\":100},{\""
    "key\":\"L3g=\",\"target\":\"VALUE\",\"result\":\"NOT_EQUAL\",\"value\":\"b2xkAA==\"},{\""
    "key\":\"L2w=\",\"target\":\"LEASE\",\"result\":\"EQUAL\",\"lease\":-1}],\"success\":[{\""
    "request_put\":{\"key\":\"L2E=\",\"value\":\"MQ==\",\"lease\":99}},{\"request_put\":{\"ke"
    "y\":\"L2L/\",\"value\":\"\"}},{\"request_delete_range\":{\"key\":\"L3Av\",\"range_end\":"
    "\"L3Aw\"}},{\"request_delete_range\":{\"key\":\"L2Q=\"}},{\"request_txn\":{\"compare\":["
    "{\"key\":\"L24=\",\"target\":\"MOD\",\"result\":\"GREATER\",\"mod_revision\":1}],\"succe"
    "ss\":[{\"request_put\":{\"key\":\"L24=\",\"value\":\"dg==\"}}],\"failure\":[{\"request_r"
    "ange\":{\"key\":\"L24=\"}}]}}],\"failure\":[{\"request_range\":{\"key\":\"L3I=\",\"revis"
    "ion\":5}},{\"request_range\":{\"key\":\"L3Iw\"}},{\"request_txn\":{\"compare\":[],\"succ"
    "ess\":[],\"failure\":[]}}]}";

static void the_gateway_body_is_unchanged(void **state)
{
    struct etcd_txn *t;
    char *json;
    size_t len;

    (void)state;
    assert_int_equal(build(&t), HP_OK);
    assert_int_equal(etcd_txn_json(t, &json, &len), HP_OK);
    if (strcmp(json, golden))
        fail_msg("JSON body:\n%s\nexpected:\n%s", json, golden);
    assert_int_equal(len, strlen(golden));
    assert_int_equal(etcd_txn_bytes(t), len);
    assert_int_equal(etcd_txn_compares(t), 5);
    assert_int_equal(etcd_txn_ops(t, ETCD_SUCCESS), 5);
    assert_int_equal(etcd_txn_ops(t, ETCD_FAILURE), 3);
    hp_free(json);
    etcd_txn_free(t);
}

static void sizes_grow_exactly(void **state)
{
    struct etcd_txn *t;
    char *json;
    size_t len;

    (void)state;
    assert_int_equal(etcd_txn_new(&t), HP_OK);
    assert_int_equal(etcd_txn_json(t, &json, &len), HP_OK);
    assert_string_equal(json, "{\"compare\":[],\"success\":[],\"failure\":[]}");
    assert_int_equal(etcd_txn_bytes(t), len);
    hp_free(json);
    for (int i = 0; i < 50; i++) {
        char key[32], value[64];

        snprintf(key, sizeof(key), "/k/%d", i * 7919);
        memset(value, 'a' + i % 26, sizeof(value));
        assert_int_equal(etcd_txn_put(t, ETCD_SUCCESS, key, strlen(key), value, (size_t)i, i),
                         HP_OK);
        assert_int_equal(etcd_txn_json(t, &json, &len), HP_OK);
        assert_int_equal(etcd_txn_bytes(t), len);
        hp_free(json);
    }
    etcd_txn_free(t);
}

static void invalid_compares_are_refused_and_harmless(void **state)
{
    struct etcd_txn *t;
    char *json;
    size_t len;

    (void)state;
    assert_int_equal(etcd_txn_new(&t), HP_OK);
    assert_int_equal(etcd_txn_compare_int(t, "/k", 2, ETCD_CMP_VALUE, ETCD_CMP_EQUAL, 1),
                     HP_ERR_INVALID);
    assert_int_equal(etcd_txn_compare_int(t, "/k", 2, (enum etcd_cmp_target)9, ETCD_CMP_EQUAL, 1),
                     HP_ERR_INVALID);
    assert_int_equal(etcd_txn_compare_value(t, "/k", 2, (enum etcd_cmp_op)4, "v", 1),
                     HP_ERR_INVALID);
    assert_int_equal(etcd_txn_compares(t), 0);
    assert_int_equal(etcd_txn_json(t, &json, &len), HP_OK);
    assert_string_equal(json, "{\"compare\":[],\"success\":[],\"failure\":[]}");
    hp_free(json);
    etcd_txn_free(t);
    etcd_txn_free(NULL);
}

static void the_same_txn_as_protobuf_is_protocs(void **state)
{
    struct etcd_txn *t;
    struct pb_writer w;

    (void)state;
    assert_int_equal(build(&t), HP_OK);
    pb_writer_init(&w);
    assert_int_equal(etcd_pb_encode_txn(&w, etcd_txn_describe(t), NULL), HP_OK);
    assert_true(pb_writer_len(&w) <
                etcd_txn_bytes(t)); /* planning by the JSON size is conservative */
    pb_vec_same_as_protoc(&w, "req-txn-builder");
    etcd_txn_free(t);
}

static void every_allocation_failing_is_nomem_without_leaks(void **state)
{
    long k;

    (void)state;
    for (k = 0;; k++) {
        struct etcd_txn *t = NULL;
        char *json = NULL;
        size_t len;
        hp_rc rc;

        hp_alloc_fail_after(k);
        rc = build(&t);
        if (!rc)
            rc = etcd_txn_json(t, &json, &len);
        hp_alloc_fail_reset();
        etcd_txn_free(t);
        if (!rc) {
            assert_string_equal(json, golden);
            hp_free(json);
            break;
        }
        assert_int_equal(rc, HP_ERR_NOMEM);
        assert_null(json);
    }
    assert_true(k > 10);
}

/* build_puts: n puts of 300-byte values into a new builder (borrowed or copying) under the
 * allocation fault limit k (< 0: none); HP_OK when every add succeeded */
static hp_rc build_puts(bool borrowed, char (*vals)[300], size_t n, long k, struct etcd_txn **out)
{
    struct etcd_txn *t = NULL;
    hp_rc rc;

    hp_alloc_fail_after(k);
    rc = borrowed ? etcd_txn_new_borrowed(&t) : etcd_txn_new(&t);
    for (size_t i = 0; !rc && i < n; i++)
        rc = etcd_txn_put(t, ETCD_SUCCESS, vals[i], 10, vals[i], sizeof(vals[i]), 0);
    hp_alloc_fail_reset();
    if (rc) {
        etcd_txn_free(t);
        t = NULL;
    }
    *out = t;
    return rc;
}

/* allocs: the fewest allocations building the txn of build_puts() needs (the fault limit that first
 * lets it succeed): an allocation counter */
static long allocs(bool borrowed, char (*vals)[300], size_t n)
{
    struct etcd_txn *t = NULL;
    long k;

    for (k = 0; build_puts(borrowed, vals, n, k, &t); k++)
        ;
    etcd_txn_free(t);
    return k;
}

static void a_borrowing_builder_copies_no_value(void **state)
{
    enum { N = 100 };
    static char vals[N][300];
    struct etcd_txn *b = NULL, *c = NULL;
    const struct etcd_txn_desc *d;
    char *jb = NULL, *jc = NULL;
    size_t lb, lc;

    (void)state;
    for (size_t i = 0; i < N; i++)
        memset(vals[i], 'a' + (int)(i % 26), sizeof(vals[i]));
    assert_int_equal(build_puts(true, vals, N, -1, &b), HP_OK);
    assert_int_equal(build_puts(false, vals, N, -1, &c), HP_OK);
    /* the ops point at the caller's buffers, not at copies */
    d = etcd_txn_describe(b);
    assert_int_equal(d->n_ops[0], N);
    for (size_t i = 0; i < N; i++) {
        assert_ptr_equal(d->ops[0][i].key, vals[i]);
        assert_ptr_equal(d->ops[0][i].value, vals[i]);
    }
    assert_ptr_not_equal(etcd_txn_describe(c)->ops[0][0].value, vals[0]);
    /* the same request, byte for byte, and the same size */
    assert_int_equal(etcd_txn_json(b, &jb, &lb), HP_OK);
    assert_int_equal(etcd_txn_json(c, &jc, &lc), HP_OK);
    assert_int_equal(lb, lc);
    assert_memory_equal(jb, jc, lb);
    assert_int_equal(etcd_txn_bytes(b), etcd_txn_bytes(c));
    hp_free(jb);
    hp_free(jc);
    etcd_txn_free(b);
    etcd_txn_free(c);
    /* counted: the copying builder allocates 2 per put (key and value) and the arrays; the
     * borrowing one only the arrays (8, 16, ... 128 ops: 5 growths, and the builder) */
    assert_true(allocs(false, vals, N) >= 2 * N);
    assert_true(allocs(true, vals, N) <= 8);
}

/* a put whose lengths take more than one byte, as protobuf (lengths known ahead) equals the
 * same put written with nested messages back-patched by pb_writer_end */
static void long_puts_as_protobuf(void **state)
{
    static char key[200], val[20000];
    struct pb_writer got, want;
    struct etcd_txn *t = NULL;
    size_t m1, m2;

    (void)state;
    memset(key, 'k', sizeof(key));
    memset(val, 'v', sizeof(val));
    assert_int_equal(etcd_txn_new_borrowed(&t), HP_OK);
    assert_int_equal(etcd_txn_put(t, ETCD_SUCCESS, key, sizeof(key), val, sizeof(val), 300), HP_OK);
    assert_int_equal(etcd_txn_put(t, ETCD_FAILURE, key, 1, "", 0, 0), HP_OK);
    pb_writer_init(&got);
    assert_int_equal(etcd_pb_encode_txn(&got, etcd_txn_describe(t), NULL), HP_OK);
    pb_writer_init(&want);
    m1 = pb_writer_begin(&want, 2); /* TxnRequest.success: RequestOp */
    m2 = pb_writer_begin(&want, 2); /* RequestOp.request_put: PutRequest */
    pb_writer_bytes(&want, 1, key, sizeof(key));
    pb_writer_bytes(&want, 2, val, sizeof(val));
    pb_writer_varint(&want, 3, 300);
    pb_writer_end(&want, m2);
    pb_writer_end(&want, m1);
    m1 = pb_writer_begin(&want, 3); /* failure */
    m2 = pb_writer_begin(&want, 2);
    pb_writer_bytes(&want, 1, key, 1);
    pb_writer_end(&want, m2);
    pb_writer_end(&want, m1);
    assert_int_equal(pb_writer_error(&want), HP_OK);
    assert_int_equal(pb_writer_len(&got), pb_writer_len(&want));
    assert_memory_equal(pb_writer_data(&got), pb_writer_data(&want), pb_writer_len(&want));
    pb_writer_release(&got);
    pb_writer_release(&want);
    etcd_txn_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_gateway_body_is_unchanged),
        cmocka_unit_test(sizes_grow_exactly),
        cmocka_unit_test(invalid_compares_are_refused_and_harmless),
        cmocka_unit_test(the_same_txn_as_protobuf_is_protocs),
        cmocka_unit_test(every_allocation_failing_is_nomem_without_leaks),
        cmocka_unit_test(a_borrowing_builder_copies_no_value),
        cmocka_unit_test(long_puts_as_protobuf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
