/* etcd_pb.c - etcd v3 gRPC messages in protobuf (see etcd_pb.h). Field numbers from the shared
 * NOTES-grpc.md; the message and field names in comments and errors are etcd's. */
#include "etcd/etcd_pb.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/pb_reader.h"

/* ---- encoding ---- */

/* proto3: a scalar or bytes field equal to its default is not written */
static void put_int(struct pb_writer *w, uint32_t field, int64_t v)
{
    if (v)
        pb_writer_varint(w, field, (uint64_t)v);
}

static void put_bool(struct pb_writer *w, uint32_t field, bool v)
{
    if (v)
        pb_writer_varint(w, field, 1);
}

static void put_bytes(struct pb_writer *w, uint32_t field, const void *p, size_t n)
{
    if (n)
        pb_writer_bytes(w, field, p, n);
}

/* put_prefix_end: the range_end selecting every key with prefix key (etcd_prefix_end's rule:
 * trailing 0xff bytes dropped, the last byte left incremented; "\0" when none is left),
 * written in place without a copy */
static void put_prefix_end(struct pb_writer *w, uint32_t field, const void *key, size_t n)
{
    const unsigned char *k = key;
    unsigned char *dst;

    while (n > 0 && k[n - 1] == 0xff)
        n--;
    if (n == 0) {
        pb_writer_bytes(w, field, "", 1);
        return;
    }
    dst = pb_writer_bytes_space(w, field, n);
    if (!dst)
        return;
    memcpy(dst, k, n);
    dst[n - 1]++;
}

static hp_rc written(const struct pb_writer *w, const char *what, struct hp_err *err)
{
    if (pb_writer_error(w))
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory encoding an etcd %s", what);
    return HP_OK;
}

/* RangeRequest: key=1 range_end=2 limit=3 revision=4 serializable=7 keys_only=8 count_only=9
 * min_mod_revision=10 */
static void range_fields(struct pb_writer *w, const struct etcd_range_req *req)
{
    put_bytes(w, 1, req->key, req->key_len);
    if (req->prefix)
        put_prefix_end(w, 2, req->key, req->key_len);
    else if (req->range_end)
        put_bytes(w, 2, req->range_end, req->range_end_len);
    put_int(w, 3, req->limit);
    put_int(w, 4, req->revision);
    put_bool(w, 7, req->serializable);
    put_bool(w, 8, req->keys_only);
    put_bool(w, 9, req->count_only);
    put_int(w, 10, req->min_mod_revision);
}

/* PutRequest: key=1 value=2 lease=3 */
static void put_fields(struct pb_writer *w, const void *key, size_t key_len, const void *value,
                       size_t value_len, int64_t lease)
{
    put_bytes(w, 1, key, key_len);
    put_bytes(w, 2, value, value_len);
    put_int(w, 3, lease);
}

/* DeleteRangeRequest: key=1 range_end=2 */
static void delete_fields(struct pb_writer *w, const void *key, size_t key_len, bool prefix)
{
    put_bytes(w, 1, key, key_len);
    if (prefix)
        put_prefix_end(w, 2, key, key_len);
}

hp_rc etcd_pb_encode_range(struct pb_writer *w, const struct etcd_range_req *req,
                           struct hp_err *err)
{
    range_fields(w, req);
    return written(w, "range", err);
}

hp_rc etcd_pb_encode_put(struct pb_writer *w, const void *key, size_t key_len, const void *value,
                         size_t value_len, int64_t lease, struct hp_err *err)
{
    put_fields(w, key, key_len, value, value_len, lease);
    return written(w, "put", err);
}

hp_rc etcd_pb_encode_delete(struct pb_writer *w, const void *key, size_t key_len, bool prefix,
                            struct hp_err *err)
{
    delete_fields(w, key, key_len, prefix);
    return written(w, "delete", err);
}

/* Compare.result: EQUAL 0, GREATER 1, LESS 2, NOT_EQUAL 3 */
static const uint8_t cmp_result[] = {
    [ETCD_CMP_EQUAL] = 0, [ETCD_CMP_GREATER] = 1, [ETCD_CMP_LESS] = 2, [ETCD_CMP_NOT_EQUAL] = 3};
/* Compare.target: VERSION 0, CREATE 1, MOD 2, VALUE 3, LEASE 4; and the field of the
 * target_union member each compares with */
static const uint8_t cmp_target[] = {[ETCD_CMP_VERSION] = 0,
                                     [ETCD_CMP_CREATE_REVISION] = 1,
                                     [ETCD_CMP_MOD_REVISION] = 2,
                                     [ETCD_CMP_VALUE] = 3,
                                     [ETCD_CMP_LEASE] = 4};
static const uint8_t cmp_union_field[] = {[ETCD_CMP_VERSION] = 4,
                                          [ETCD_CMP_CREATE_REVISION] = 5,
                                          [ETCD_CMP_MOD_REVISION] = 6,
                                          [ETCD_CMP_VALUE] = 7,
                                          [ETCD_CMP_LEASE] = 8};
/* RequestOp members: request_range=1 request_put=2 request_delete_range=3 request_txn=4 */
static const uint8_t op_field[] = {
    [ETCD_OP_RANGE] = 1, [ETCD_OP_PUT] = 2, [ETCD_OP_DELETE] = 3, [ETCD_OP_TXN] = 4};

/* Compare: result=1 target=2 key=3, then one of version=4 create_revision=5 mod_revision=6
 * value=7 lease=8. The oneof member is written even when 0 or empty (it is set). */
static hp_rc compare_fields(struct pb_writer *w, const struct etcd_txn_cmp *c, const char *path,
                            struct hp_err *err)
{
    if ((unsigned)c->target > ETCD_CMP_LEASE || (unsigned)c->op > ETCD_CMP_NOT_EQUAL)
        return hp_err_field(err, HP_ERR_INVALID, path, "etcd txn %s: target %d or op %d unknown",
                            path, (int)c->target, (int)c->op);
    put_int(w, 1, cmp_result[c->op]);
    put_int(w, 2, cmp_target[c->target]);
    put_bytes(w, 3, c->key, c->key_len);
    if (c->target == ETCD_CMP_VALUE)
        pb_writer_bytes(w, cmp_union_field[c->target], c->value, c->value_len);
    else
        pb_writer_varint(w, cmp_union_field[c->target], (uint64_t)c->v);
    return HP_OK;
}

static hp_rc txn_fields(struct pb_writer *w, const struct etcd_txn_desc *t, unsigned depth,
                        const char *path, struct hp_err *err);

/* The size of a put written with put_fields, so a txn's puts can be written with their lengths
 * known ahead: a value (a result, often over 127 bytes) is then written once, not moved again
 * by pb_writer_end at each level of nesting to make room for a longer length */
static size_t len_field_size(uint32_t field, size_t n)
{
    return pb_varint_size(((uint64_t)field << 3) | 2) + pb_varint_size(n) + n;
}

static size_t put_size(const struct etcd_txn_op *op)
{
    return (op->key_len ? len_field_size(1, op->key_len) : 0) +
           (op->value_len ? len_field_size(2, op->value_len) : 0) +
           (op->lease ? pb_varint_size(3u << 3) + pb_varint_size((uint64_t)op->lease) : 0);
}

/* put_len: the tag of length-delimited field and the length n; the n bytes follow */
static void put_len(struct pb_writer *w, uint32_t field, size_t n)
{
    unsigned char b[20];
    uint64_t v[2] = {((uint64_t)field << 3) | 2, n};
    size_t k = 0;

    for (int i = 0; i < 2; i++) {
        while (v[i] >= 0x80) {
            b[k++] = (unsigned char)(v[i] | 0x80);
            v[i] >>= 7;
        }
        b[k++] = (unsigned char)v[i];
    }
    pb_writer_raw(w, b, k);
}

/* txn_put: a put as one RequestOp of branch field (2 success, 3 failure), lengths first */
static void txn_put(struct pb_writer *w, uint32_t field, const struct etcd_txn_op *op)
{
    size_t inner = put_size(op);

    put_len(w, field, len_field_size(op_field[ETCD_OP_PUT], inner));
    put_len(w, op_field[ETCD_OP_PUT], inner);
    put_fields(w, op->key, op->key_len, op->value, op->value_len, op->lease);
}

/* path_set: a field path for err->field ("success[2].txn.compare[0]"), truncated to fit */
static void path_set(char *dst, size_t n, const char *fmt, ...) HP_PRINTF(3, 4);
static void path_set(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

static hp_rc op_fields(struct pb_writer *w, const struct etcd_txn_op *op, unsigned depth,
                       const char *path, struct hp_err *err)
{
    struct etcd_range_req range = {
        .key = op->key, .key_len = op->key_len, .prefix = op->prefix, .revision = op->revision};
    char sub[HP_ERR_FIELD_MAX];
    size_t mark;
    hp_rc rc = HP_OK;

    if ((unsigned)op->type > ETCD_OP_TXN || (op->type == ETCD_OP_TXN && !op->txn))
        return hp_err_field(err, HP_ERR_INVALID, path, "etcd txn %s: op type %d unknown or no txn",
                            path, (int)op->type);
    mark = pb_writer_begin(w, op_field[op->type]);
    switch (op->type) {
    case ETCD_OP_RANGE:
        range_fields(w, &range);
        break;
    case ETCD_OP_PUT:
        put_fields(w, op->key, op->key_len, op->value, op->value_len, op->lease);
        break;
    case ETCD_OP_DELETE:
        delete_fields(w, op->key, op->key_len, op->prefix);
        break;
    case ETCD_OP_TXN:
        path_set(sub, sizeof(sub), "%s.txn.", path);
        rc = txn_fields(w, op->txn, depth + 1, sub, err);
        break;
    }
    pb_writer_end(w, mark);
    return rc;
}

/* TxnRequest: compare=1 (repeated Compare) success=2 failure=3 (repeated RequestOp) */
static hp_rc txn_fields(struct pb_writer *w, const struct etcd_txn_desc *t, unsigned depth,
                        const char *path, struct hp_err *err)
{
    static const char *const branch_name[2] = {"success", "failure"};
    char at[HP_ERR_FIELD_MAX];
    size_t i, mark;
    hp_rc rc;
    int b;

    if (depth > ETCD_PB_TXN_DEPTH_MAX)
        return hp_err_field(err, HP_ERR_INVALID, path, "etcd txn %s: txns nested deeper than %d",
                            path, ETCD_PB_TXN_DEPTH_MAX);
    for (i = 0; i < t->n_cmp; i++) {
        path_set(at, sizeof(at), "%scompare[%zu]", path, i);
        mark = pb_writer_begin(w, 1);
        rc = compare_fields(w, &t->cmp[i], at, err);
        pb_writer_end(w, mark);
        if (rc)
            return rc;
    }
    for (b = 0; b < 2; b++) {
        for (i = 0; i < t->n_ops[b]; i++) {
            if (t->ops[b][i].type == ETCD_OP_PUT) {
                txn_put(w, (uint32_t)(2 + b), &t->ops[b][i]);
                continue;
            }
            path_set(at, sizeof(at), "%s%s[%zu]", path, branch_name[b], i);
            mark = pb_writer_begin(w, (uint32_t)(2 + b));
            rc = op_fields(w, &t->ops[b][i], depth, at, err);
            pb_writer_end(w, mark);
            if (rc)
                return rc;
        }
    }
    return HP_OK;
}

/* txn_estimate: a little more than txn_fields writes for t's own compares and ops (a nested
 * txn counts as its op's key only: the buffer grows for it), so a txn of puts is written into
 * one allocation */
static size_t txn_estimate(const struct etcd_txn_desc *t)
{
    size_t n = 0;

    for (size_t i = 0; i < t->n_cmp; i++)
        n += t->cmp[i].key_len + t->cmp[i].value_len + 32;
    for (int b = 0; b < 2; b++)
        for (size_t i = 0; i < t->n_ops[b]; i++)
            n += t->ops[b][i].key_len + t->ops[b][i].value_len + 32;
    return n;
}

hp_rc etcd_pb_encode_txn(struct pb_writer *w, const struct etcd_txn_desc *t, struct hp_err *err)
{
    hp_rc rc;

    pb_writer_reserve(w, txn_estimate(t));
    rc = txn_fields(w, t, 0, "", err);

    return rc ? rc : written(w, "txn", err);
}

/* LeaseGrantRequest: TTL=1 ID=2 */
hp_rc etcd_pb_encode_lease_grant(struct pb_writer *w, int64_t ttl_s, int64_t id, struct hp_err *err)
{
    put_int(w, 1, ttl_s);
    put_int(w, 2, id);
    return written(w, "lease grant", err);
}

/* LeaseRevokeRequest, LeaseKeepAliveRequest, LeaseTimeToLiveRequest: ID=1 */
hp_rc etcd_pb_encode_lease_id(struct pb_writer *w, int64_t id, struct hp_err *err)
{
    put_int(w, 1, id);
    return written(w, "lease request", err);
}

/* AuthenticateRequest: name=1 password=2 */
hp_rc etcd_pb_encode_auth(struct pb_writer *w, const char *name, const char *password,
                          struct hp_err *err)
{
    put_bytes(w, 1, name, strlen(name));
    put_bytes(w, 2, password, strlen(password));
    return written(w, "authentication", err);
}

/* ---- decoding ---- */

static hp_rc nomem(const char *what, struct hp_err *err)
{
    return hp_err_set(err, HP_ERR_NOMEM, "out of memory decoding an etcd %s", what);
}

/* ResponseHeader: cluster_id=1 member_id=2 revision=3 raft_term=4 */
struct header {
    int64_t cluster_id, member_id, revision, raft_term;
};

static hp_rc header_decode(const struct pb_reader *parent, const struct pb_field *hf,
                           struct header *h, struct hp_err *err)
{
    static const char *const names[] = {"", "cluster_id", "member_id", "revision", "raft_term"};
    int64_t *slots[] = {NULL, &h->cluster_id, &h->member_id, &h->revision, &h->raft_term};
    struct pb_reader r;
    struct pb_field f;
    hp_rc rc;

    rc = pb_reader_sub(parent, hf, "ResponseHeader", &r, err);
    while (!rc) {
        rc = pb_reader_next(&r, &f, err);
        if (rc || !f.num)
            break;
        if (f.num <= 4)
            rc = pb_reader_int64(&r, &f, names[f.num], slots[f.num], err);
    }
    return rc;
}

/* A flat response: header=1 and the fields in slots (an int64, or a bytes view). */
struct slot {
    uint32_t num;
    const char *name;
    int64_t *i;     /* a varint field */
    const void **p; /* or a length-delimited one (borrowed view) */
    size_t *len;
};

static hp_rc flat_decode(struct pb_reader *r, struct header *h, const struct slot *slots, size_t n,
                         struct hp_err *err)
{
    struct pb_field f;
    hp_rc rc;
    size_t i;

    memset(h, 0, sizeof(*h));
    for (;;) {
        rc = pb_reader_next(r, &f, err);
        if (rc || !f.num)
            return rc;
        if (f.num == 1) {
            rc = header_decode(r, &f, h, err);
            if (rc)
                return rc;
            continue;
        }
        for (i = 0; i < n && slots[i].num != f.num; i++)
            ;
        if (i == n)
            continue; /* unknown, or known but not read: skipped */
        if (slots[i].i)
            rc = pb_reader_int64(r, &f, slots[i].name, slots[i].i, err);
        else
            rc = pb_reader_bytes(r, &f, slots[i].name, slots[i].p, slots[i].len, err);
        if (rc)
            return rc;
    }
}

static hp_rc flat_decode_buf(const void *buf, size_t len, const char *msg, struct header *h,
                             const struct slot *slots, size_t n, struct hp_err *err)
{
    struct pb_reader r;

    pb_reader_init(&r, buf, len, msg);
    return flat_decode(&r, h, slots, n, err);
}

/* dup_bytes: a NUL-terminated copy of p[0..n) into *out (owned), replacing (freeing) any
 * earlier one */
static hp_rc dup_bytes(const void *p, size_t n, char **out, size_t *out_len)
{
    char *s = hp_malloc(n + 1);

    if (!s)
        return HP_ERR_NOMEM;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    hp_free(*out);
    *out = s;
    *out_len = n;
    return HP_OK;
}

/* KeyValue: key=1 create_revision=2 mod_revision=3 version=4 value=5 lease=6 */
static hp_rc kv_decode(const struct pb_reader *parent, const struct pb_field *kf,
                       struct etcd_kv *kv, struct hp_err *err)
{
    static const char *const names[] = {
        "", "key", "create_revision", "mod_revision", "version", "value", "lease"};
    int64_t *ints[] = {NULL, NULL,      &kv->create_revision, &kv->mod_revision, &kv->version,
                       NULL, &kv->lease};
    struct pb_reader r;
    struct pb_field f;
    const void *p;
    size_t n;
    hp_rc rc;

    rc = pb_reader_sub(parent, kf, "KeyValue", &r, err);
    while (!rc) {
        rc = pb_reader_next(&r, &f, err);
        if (rc || !f.num)
            break;
        if (f.num == 1 || f.num == 5) {
            rc = pb_reader_bytes(&r, &f, names[f.num], &p, &n, err);
            if (!rc && dup_bytes(p, n, f.num == 1 ? &kv->key : &kv->value,
                                 f.num == 1 ? &kv->key_len : &kv->value_len))
                rc = nomem("KeyValue", err);
        } else if (f.num <= 6) {
            rc = pb_reader_int64(&r, &f, names[f.num], ints[f.num], err);
        }
    }
    /* an absent key or value is "" (never NULL), as on the gateway path */
    if (!rc && !kv->key && dup_bytes("", 0, &kv->key, &kv->key_len))
        rc = nomem("KeyValue", err);
    if (!rc && !kv->value && dup_bytes("", 0, &kv->value, &kv->value_len))
        rc = nomem("KeyValue", err);
    return rc;
}

/* repeated_alloc: *arr (owned; NULL when none) with room for every occurrence of the repeated
 * field num in the message r (a copy of the reader is read ahead), *count of them */
static hp_rc repeated_alloc(struct pb_reader r, uint32_t num, size_t size, void **arr,
                            size_t *count, const char *msg, struct hp_err *err)
{
    struct pb_field f;
    hp_rc rc;

    *arr = NULL;
    *count = 0;
    for (;;) {
        rc = pb_reader_next(&r, &f, err);
        if (rc)
            return rc;
        if (!f.num)
            break;
        *count += f.num == num;
    }
    if (*count && !(*arr = hp_calloc(*count, size)))
        return nomem(msg, err);
    return HP_OK;
}

/* RangeResponse: header=1 kvs=2 (repeated KeyValue) more=3 count=4 */
static hp_rc range_decode(struct pb_reader *r, struct etcd_range_resp *out, struct hp_err *err)
{
    struct header h = {0};
    struct pb_field f;
    void *arr;
    size_t kvs;
    hp_rc rc;

    memset(out, 0, sizeof(*out));
    rc = repeated_alloc(*r, 2, sizeof(*out->kvs), &arr, &kvs, "RangeResponse", err);
    if (rc)
        return rc;
    out->kvs = arr;
    for (;;) {
        rc = pb_reader_next(r, &f, err);
        if (rc || !f.num)
            break;
        if (f.num == 1)
            rc = header_decode(r, &f, &h, err);
        else if (f.num == 2 && out->n < kvs)
            rc = kv_decode(r, &f, &out->kvs[out->n++], err);
        else if (f.num == 3)
            rc = pb_reader_bool(r, &f, "more", &out->more, err);
        else if (f.num == 4)
            rc = pb_reader_int64(r, &f, "count", &out->count, err);
        if (rc)
            break;
    }
    out->revision = h.revision;
    if (rc)
        etcd_range_resp_release(out);
    return rc;
}

hp_rc etcd_pb_decode_range(const void *buf, size_t len, struct etcd_range_resp *out,
                           struct hp_err *err)
{
    struct pb_reader r;

    pb_reader_init(&r, buf, len, "RangeResponse");
    return range_decode(&r, out, err);
}

hp_rc etcd_pb_decode_put(const void *buf, size_t len, int64_t *revision, struct hp_err *err)
{
    struct header h;
    hp_rc rc = flat_decode_buf(buf, len, "PutResponse", &h, NULL, 0, err);

    *revision = rc ? 0 : h.revision;
    return rc;
}

/* DeleteRangeResponse: header=1 deleted=2 prev_kvs=3 */
hp_rc etcd_pb_decode_delete(const void *buf, size_t len, int64_t *deleted, int64_t *revision,
                            struct hp_err *err)
{
    struct slot slots[] = {{2, "deleted", deleted, NULL, NULL}};
    struct header h;
    hp_rc rc;

    *deleted = 0;
    rc = flat_decode_buf(buf, len, "DeleteRangeResponse", &h, slots, 1, err);
    if (rc)
        *deleted = 0;
    *revision = rc ? 0 : h.revision;
    return rc;
}

/* op_reset: empty one op of a txn response (its members released) */
static void op_reset(struct etcd_op_resp *d)
{
    etcd_range_resp_release(&d->range);
    if (d->txn) {
        etcd_txn_resp_release(d->txn);
        hp_free(d->txn);
    }
    memset(d, 0, sizeof(*d));
}

static hp_rc txn_decode(struct pb_reader *r, struct etcd_txn_resp *out, struct hp_err *err);

/* ResponseOp: one of response_range=1 response_put=2 response_delete_range=3 response_txn=4 */
static hp_rc op_decode(const struct pb_reader *parent, const struct pb_field *of,
                       struct etcd_op_resp *d, struct hp_err *err)
{
    struct slot deleted = {2, "deleted", &d->deleted, NULL, NULL};
    struct pb_reader r, m;
    struct pb_field f;
    struct header h;
    bool set = false;
    hp_rc rc;

    rc = pb_reader_sub(parent, of, "ResponseOp", &r, err);
    while (!rc) {
        rc = pb_reader_next(&r, &f, err);
        if (rc || !f.num)
            break;
        if (f.num > 4)
            continue;
        op_reset(d); /* a member sent again, or another one: the last one counts */
        set = true;
        switch (f.num) {
        case 1:
            d->type = ETCD_OP_RANGE;
            rc = pb_reader_sub(&r, &f, "RangeResponse", &m, err);
            if (!rc)
                rc = range_decode(&m, &d->range, err);
            break;
        case 2:
            d->type = ETCD_OP_PUT;
            rc = pb_reader_sub(&r, &f, "PutResponse", &m, err);
            if (!rc)
                rc = flat_decode(&m, &h, NULL, 0, err);
            break;
        case 3:
            d->type = ETCD_OP_DELETE;
            rc = pb_reader_sub(&r, &f, "DeleteRangeResponse", &m, err);
            if (!rc)
                rc = flat_decode(&m, &h, &deleted, 1, err);
            break;
        default:
            d->type = ETCD_OP_TXN;
            rc = pb_reader_sub(&r, &f, "TxnResponse", &m, err);
            if (rc)
                break;
            d->txn = hp_calloc(1, sizeof(*d->txn));
            rc = d->txn ? txn_decode(&m, d->txn, err) : nomem("TxnResponse", err);
            break;
        }
    }
    if (!rc && !set)
        rc = hp_err_set(err, HP_ERR_PROTOCOL,
                        "protobuf ResponseOp at byte %zu: no response_range, response_put, "
                        "response_delete_range or response_txn",
                        of->offset);
    return rc;
}

/* TxnResponse: header=1 succeeded=2 responses=3 (repeated ResponseOp) */
static hp_rc txn_decode(struct pb_reader *r, struct etcd_txn_resp *out, struct hp_err *err)
{
    struct header h = {0};
    struct pb_field f;
    void *arr;
    size_t ops;
    hp_rc rc;

    memset(out, 0, sizeof(*out));
    rc = repeated_alloc(*r, 3, sizeof(*out->ops), &arr, &ops, "TxnResponse", err);
    if (rc)
        return rc;
    out->ops = arr;
    for (;;) {
        rc = pb_reader_next(r, &f, err);
        if (rc || !f.num)
            break;
        if (f.num == 1)
            rc = header_decode(r, &f, &h, err);
        else if (f.num == 2)
            rc = pb_reader_bool(r, &f, "succeeded", &out->succeeded, err);
        else if (f.num == 3 && out->n < ops)
            rc = op_decode(r, &f, &out->ops[out->n++], err);
        if (rc)
            break;
    }
    out->revision = h.revision;
    if (rc)
        etcd_txn_resp_release(out);
    return rc;
}

hp_rc etcd_pb_decode_txn(const void *buf, size_t len, struct etcd_txn_resp *out, struct hp_err *err)
{
    struct pb_reader r;

    pb_reader_init(&r, buf, len, "TxnResponse");
    return txn_decode(&r, out, err);
}

/* LeaseGrantResponse: header=1 ID=2 TTL=3 error=4 */
hp_rc etcd_pb_decode_lease_grant(const void *buf, size_t len, int64_t *id, int64_t *ttl_s,
                                 struct hp_err *err)
{
    const void *msg = NULL;
    size_t msg_len = 0;
    struct slot slots[] = {{2, "ID", id, NULL, NULL},
                           {3, "TTL", ttl_s, NULL, NULL},
                           {4, "error", NULL, &msg, &msg_len}};
    struct header h;
    hp_rc rc;

    *id = *ttl_s = 0;
    rc = flat_decode_buf(buf, len, "LeaseGrantResponse", &h, slots, 3, err);
    if (!rc && msg_len) {
        char text[201];
        size_t i, n = msg_len < sizeof(text) - 1 ? msg_len : sizeof(text) - 1;

        for (i = 0; i < n; i++) { /* the server's text, printable */
            unsigned char c = ((const unsigned char *)msg)[i];

            text[i] = c < 0x20 || c > 0x7e ? '?' : (char)c;
        }
        text[n] = '\0';
        rc = hp_err_set(err, HP_ERR_INVALID, "etcd lease grant refused: %s", text);
    }
    if (rc)
        *id = *ttl_s = 0;
    return rc;
}

hp_rc etcd_pb_decode_lease_revoke(const void *buf, size_t len, int64_t *revision,
                                  struct hp_err *err)
{
    struct header h;
    hp_rc rc = flat_decode_buf(buf, len, "LeaseRevokeResponse", &h, NULL, 0, err);

    *revision = rc ? 0 : h.revision;
    return rc;
}

/* LeaseKeepAliveResponse / LeaseTimeToLiveResponse: header=1 ID=2 TTL=3 (grantedTTL=4 keys=5) */
hp_rc etcd_pb_decode_lease_ttl(const void *buf, size_t len, int64_t *id, int64_t *ttl_s,
                               struct hp_err *err)
{
    struct slot slots[] = {{2, "ID", id, NULL, NULL}, {3, "TTL", ttl_s, NULL, NULL}};
    struct header h;
    hp_rc rc;

    *id = *ttl_s = 0;
    rc = flat_decode_buf(buf, len, "LeaseKeepAliveResponse", &h, slots, 2, err);
    if (rc)
        *id = *ttl_s = 0;
    return rc;
}

/* AuthenticateResponse: header=1 token=2 */
hp_rc etcd_pb_decode_auth(const void *buf, size_t len, char **token, struct hp_err *err)
{
    const void *tok = NULL;
    size_t tok_len = 0, i, n;
    struct slot slots[] = {{2, "token", NULL, &tok, &tok_len}};
    struct header h;
    hp_rc rc;

    *token = NULL;
    rc = flat_decode_buf(buf, len, "AuthenticateResponse", &h, slots, 1, err);
    if (rc)
        return rc;
    if (!tok_len)
        return hp_err_set(err, HP_ERR_PROTOCOL, "etcd authentication answered without a token");
    for (i = 0; i < tok_len; i++) {
        unsigned char c = ((const unsigned char *)tok)[i];

        if (c < 0x21 || c > 0x7e) /* the token is sent back in a header: never quoted */
            return hp_err_set(err, HP_ERR_PROTOCOL,
                              "etcd authentication token has a byte 0x%02x at %zu", c, i);
    }
    if (dup_bytes(tok, tok_len, token, &n))
        return nomem("AuthenticateResponse", err);
    return HP_OK;
}

/* StatusResponse: header=1 version=2 leader=4 (dbSize=3, raftIndex=5, raftTerm=6 ... skipped:
 * the gateway path takes raft_term from the header) */
hp_rc etcd_pb_decode_status(const void *buf, size_t len, struct etcd_status *out,
                            struct hp_err *err)
{
    const void *v = NULL;
    size_t v_len = 0;
    struct slot slots[] = {{2, "version", NULL, &v, &v_len},
                           {4, "leader", &out->leader, NULL, NULL}};
    struct header h;
    hp_rc rc;

    memset(out, 0, sizeof(*out));
    rc = flat_decode_buf(buf, len, "StatusResponse", &h, slots, 2, err);
    if (rc) {
        memset(out, 0, sizeof(*out));
        return rc;
    }
    if (v_len > sizeof(out->version) - 1)
        v_len = sizeof(out->version) - 1;
    if (v_len)
        memcpy(out->version, v, v_len);
    out->version[v_len] = '\0';
    out->revision = h.revision;
    out->member_id = h.member_id;
    out->raft_term = h.raft_term;
    return HP_OK;
}
