/* fuzz-etcd_pb.c - what an etcd member answers over gRPC, as protobuf: every decoder of
 * controller/etcd/etcd_pb.c (range, txn with nested ops, put, delete, leases, auth, status) on
 * the same bytes, and a round trip through the encoders.
 * Input: any bytes, one response message (no gRPC frame). Properties besides the sanitizers:
 * a decoder answers OK, PROTOCOL or (lease grant's error field) INVALID, never anything else;
 * on an error its outputs are empty; every key and value decoded is NUL-terminated and every
 * nested txn has its result; a put encoded from the input's two halves reads back with
 * pb_reader as exactly those bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd/etcd_pb.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/pb_reader.h"
#include "hostpatrol/pb_writer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rc(hp_rc rc, const struct hp_err *err)
{
    if (rc != HP_OK && rc != HP_ERR_PROTOCOL && rc != HP_ERR_INVALID && rc != HP_ERR_NOMEM)
        abort();
    if (rc && !err->msg[0])
        abort(); /* a refusal says why */
}

static void check_range(const struct etcd_range_resp *r)
{
    for (size_t i = 0; i < r->n; i++)
        if (!r->kvs[i].key || !r->kvs[i].value || r->kvs[i].key[r->kvs[i].key_len] ||
            r->kvs[i].value[r->kvs[i].value_len])
            abort();
}

static void check_txn(const struct etcd_txn_resp *t)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->ops[i].type == ETCD_OP_TXN && !t->ops[i].txn)
            abort();
        if (t->ops[i].type == ETCD_OP_TXN)
            check_txn(t->ops[i].txn);
        check_range(&t->ops[i].range);
    }
}

static void decode_all(const uint8_t *data, size_t size)
{
    struct etcd_range_resp r;
    struct etcd_txn_resp t;
    struct etcd_status st;
    struct hp_err err = {0};
    int64_t a, b;
    char *token = NULL;
    hp_rc rc;

    rc = etcd_pb_decode_range(data, size, &r, &err);
    check_rc(rc, &err);
    if (rc && (r.kvs || r.n))
        abort();
    check_range(&r);
    etcd_range_resp_release(&r);

    rc = etcd_pb_decode_txn(data, size, &t, &err);
    check_rc(rc, &err);
    if (rc && (t.ops || t.n))
        abort();
    check_txn(&t);
    etcd_txn_resp_release(&t);

    check_rc(etcd_pb_decode_put(data, size, &a, &err), &err);
    check_rc(etcd_pb_decode_delete(data, size, &a, &b, &err), &err);
    check_rc(etcd_pb_decode_lease_grant(data, size, &a, &b, &err), &err);
    check_rc(etcd_pb_decode_lease_revoke(data, size, &a, &err), &err);
    check_rc(etcd_pb_decode_lease_ttl(data, size, &a, &b, &err), &err);
    rc = etcd_pb_decode_auth(data, size, &token, &err);
    check_rc(rc, &err);
    if (rc ? token != NULL : (!token || !*token))
        abort();
    hp_free(token);
    rc = etcd_pb_decode_status(data, size, &st, &err);
    check_rc(rc, &err);
    if (memchr(st.version, '\0', sizeof(st.version)) == NULL)
        abort();
}

/* round_trip: PutRequest{key: first half, value: second half} reads back field by field */
static void round_trip(const uint8_t *data, size_t size)
{
    size_t half = size / 2;
    struct pb_writer w;
    struct pb_reader r;
    struct pb_field f;
    const uint8_t *want[3] = {NULL, data, data + half};
    size_t want_len[3] = {0, half, size - half};
    int seen = 0;

    pb_writer_init(&w);
    if (etcd_pb_encode_put(&w, data, half, data + half, size - half, (int64_t)size - 3, NULL)) {
        pb_writer_release(&w);
        return;
    }
    pb_reader_init(&r, pb_writer_data(&w), pb_writer_len(&w), "PutRequest");
    for (;;) {
        if (pb_reader_next(&r, &f, NULL))
            abort();
        if (!f.num)
            break;
        if (f.num == 1 || f.num == 2) {
            if (f.type != PB_WIRE_LEN || f.len != want_len[f.num] ||
                memcmp(f.data, want[f.num], f.len))
                abort();
        } else if (f.num != 3 || f.type != PB_WIRE_VARINT ||
                   (int64_t)f.value != (int64_t)size - 3) {
            abort();
        }
        seen |= 1 << f.num;
    }
    /* proto3: an empty field or a zero lease is not written */
    if (!!(seen & 2) != (half > 0) || !!(seen & 4) != (size - half > 0) ||
        !!(seen & 8) != (size != 3))
        abort();
    pb_writer_release(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_all(data, size);
    round_trip(data, size);
    return 0;
}
