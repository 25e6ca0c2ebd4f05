/*
 * etcd_pb.h - the protobuf messages of etcd's v3 gRPC API that the etcd client uses (internal to
 * controller/etcd/; not a public API).
 *
 * Written here from the field numbers (shared NOTES-grpc.md; no upstream .proto or generated
 * code): RangeRequest/Response (with KeyValue), PutRequest/Response,
 * DeleteRangeRequest/Response, TxnRequest (Compare, RequestOp of each kind, nested txns) /
 * TxnResponse (ResponseOp of each kind, nested), LeaseGrant, LeaseRevoke, LeaseKeepAlive and
 * LeaseTimeToLive requests and responses, AuthenticateRequest/Response, StatusResponse, and the
 * ResponseHeader in each. A StatusRequest has no fields: its encoding is 0 bytes.
 *
 * Encoders (etcd_pb_encode_*) append one message's fields (no length prefix, no gRPC frame) to a
 * pb_writer, in field-number order and omitting proto3 defaults, so the bytes equal protoc's.
 * They return HP_OK, HP_ERR_NOMEM (the writer failed, now or before) or, for a txn,
 * HP_ERR_INVALID (a bad compare or op, err names it). Inputs are borrowed.
 *
 * Decoders (etcd_pb_decode_*) read one whole message from borrowed bytes and fill the SAME
 * result structs the JSON gateway path fills (struct etcd_range_resp, etcd_txn_resp,
 * etcd_status), with the same ownership: keys and values are NUL-terminated copies (the NUL not
 * counted; an absent or empty one is "" and never NULL), released by etcd_range_resp_release /
 * etcd_txn_resp_release. Fields not listed are skipped, as are unknown fields of wire types 0,
 * 1, 2 and 5. Malformed bytes (see pb_reader.h) and a known field with the wrong wire type are
 * HP_ERR_PROTOCOL, the message naming the message, field and byte offset; out of memory is
 * HP_ERR_NOMEM. On any error the outputs are zeroed (nothing to release). A singular field sent
 * twice: the last one counts (for a ResponseOp, the last member sent), as in protobuf for
 * scalars. Every decoder is safe on any input of any length (fuzzed: tests/fuzz/fuzz-etcd_pb.c).
 *
 * Numbers: int64 fields are varints of 64 bits; uint64 IDs (cluster, member, leader) keep their
 * bit pattern in an int64, as etcd_json_int does for the gateway's strings.
 *
 * Thread-safety: no shared state; every call is reentrant.
 */
#ifndef HOSTPATROL_ETCD_PB_H
#define HOSTPATROL_ETCD_PB_H

#include "hostpatrol/etcd_client.h"
#include "hostpatrol/etcd_txn.h"
#include "hostpatrol/pb_writer.h"

/* ---- A txn described as data: what etcd_txn.c builds, renderable as JSON or protobuf. ---- */

/* One compare: target's value of key, compared with op to v (every target but VALUE) or to
 * value (VALUE). */
struct etcd_txn_cmp {
    enum etcd_cmp_target target;
    enum etcd_cmp_op op;
    const void *key; /* borrowed */
    size_t key_len;
    int64_t v;         /* VERSION, CREATE_REVISION, MOD_REVISION, LEASE */
    const void *value; /* VALUE (borrowed; NULL allowed when value_len == 0) */
    size_t value_len;
};

struct etcd_txn_desc;

/* One op of a branch; the fields used depend on type. */
struct etcd_txn_op {
    enum etcd_op_type type;
    const void *key; /* PUT, DELETE, RANGE (borrowed) */
    size_t key_len;
    const void *value; /* PUT (borrowed; NULL allowed when value_len == 0) */
    size_t value_len;
    int64_t lease;                   /* PUT: 0 none */
    bool prefix;                     /* DELETE, RANGE: every key with prefix key */
    int64_t revision;                /* RANGE: 0 latest */
    const struct etcd_txn_desc *txn; /* TXN (borrowed) */
};

/* A whole txn: compares, then the ops of each branch ([ETCD_SUCCESS], [ETCD_FAILURE]). */
struct etcd_txn_desc {
    const struct etcd_txn_cmp *cmp; /* borrowed array of n_cmp */
    size_t n_cmp;
    const struct etcd_txn_op *ops[2]; /* borrowed arrays of n_ops[b] */
    size_t n_ops[2];
};

#define ETCD_PB_TXN_DEPTH_MAX 16 /* nested txns in a request (etcd itself has no limit) */

/* ---- Encoders: append the request's fields to w. ---- */

/* RangeRequest: key, range_end (req->prefix: etcd_prefix_end's rule; else req->range_end),
 * limit, revision, serializable, keys_only, count_only. */
hp_rc etcd_pb_encode_range(struct pb_writer *w, const struct etcd_range_req *req,
                           struct hp_err *err) HP_WUR;
/* PutRequest: key, value, lease (0: none). */
hp_rc etcd_pb_encode_put(struct pb_writer *w, const void *key, size_t key_len, const void *value,
                         size_t value_len, int64_t lease, struct hp_err *err) HP_WUR;
/* DeleteRangeRequest: key, or (prefix) every key with that prefix. */
hp_rc etcd_pb_encode_delete(struct pb_writer *w, const void *key, size_t key_len, bool prefix,
                            struct hp_err *err) HP_WUR;
/* TxnRequest: compare, success, failure; nested txns up to ETCD_PB_TXN_DEPTH_MAX levels.
 * HP_ERR_INVALID for a target / op / type out of range, a VALUE target in an integer compare's
 * place or a TXN op without txn (err->field "compare[i]" / "success[i]" / "failure[i]"). */
hp_rc etcd_pb_encode_txn(struct pb_writer *w, const struct etcd_txn_desc *t,
                         struct hp_err *err) HP_WUR;
/* LeaseGrantRequest: TTL (seconds), ID (0: the server picks one). */
hp_rc etcd_pb_encode_lease_grant(struct pb_writer *w, int64_t ttl_s, int64_t id,
                                 struct hp_err *err) HP_WUR;
/* LeaseRevokeRequest, LeaseKeepAliveRequest and LeaseTimeToLiveRequest (keys = false): ID. */
hp_rc etcd_pb_encode_lease_id(struct pb_writer *w, int64_t id, struct hp_err *err) HP_WUR;
/* AuthenticateRequest: name, password (borrowed NUL-terminated strings). */
hp_rc etcd_pb_encode_auth(struct pb_writer *w, const char *name, const char *password,
                          struct hp_err *err) HP_WUR;

/* ---- Decoders: one whole response message in buf[0..len) (borrowed). ---- */

/* RangeResponse -> *out (release it; zeroed on error): header.revision, kvs, more, count. */
hp_rc etcd_pb_decode_range(const void *buf, size_t len, struct etcd_range_resp *out,
                           struct hp_err *err) HP_WUR;
/* PutResponse -> header.revision (prev_kv skipped). */
hp_rc etcd_pb_decode_put(const void *buf, size_t len, int64_t *revision, struct hp_err *err) HP_WUR;
/* DeleteRangeResponse -> deleted, header.revision (prev_kvs skipped). */
hp_rc etcd_pb_decode_delete(const void *buf, size_t len, int64_t *deleted, int64_t *revision,
                            struct hp_err *err) HP_WUR;
/* TxnResponse -> *out (release it; zeroed on error): succeeded, header.revision, one op per
 * ResponseOp (PUT; DELETE with deleted; RANGE with its etcd_range_resp; TXN nested). A
 * ResponseOp with no member is HP_ERR_PROTOCOL, as on the gateway path. */
hp_rc etcd_pb_decode_txn(const void *buf, size_t len, struct etcd_txn_resp *out,
                         struct hp_err *err) HP_WUR;
/* LeaseGrantResponse -> ID, TTL. A non-empty `error` field is HP_ERR_INVALID with its text. */
hp_rc etcd_pb_decode_lease_grant(const void *buf, size_t len, int64_t *id, int64_t *ttl_s,
                                 struct hp_err *err) HP_WUR;
/* LeaseRevokeResponse -> header.revision. */
hp_rc etcd_pb_decode_lease_revoke(const void *buf, size_t len, int64_t *revision,
                                  struct hp_err *err) HP_WUR;
/* LeaseKeepAliveResponse and LeaseTimeToLiveResponse (same numbers) -> ID, TTL (grantedTTL and
 * keys skipped). TTL <= 0: the lease no longer exists (the caller decides what that means). */
hp_rc etcd_pb_decode_lease_ttl(const void *buf, size_t len, int64_t *id, int64_t *ttl_s,
                               struct hp_err *err) HP_WUR;
/* AuthenticateResponse -> *token (owned, hp_free; explicit_bzero it first). An empty token, or
 * one with a byte outside 0x21..0x7e (it goes into a header), is HP_ERR_PROTOCOL. */
hp_rc etcd_pb_decode_auth(const void *buf, size_t len, char **token, struct hp_err *err) HP_WUR;
/* StatusResponse -> *out: version (truncated to fit), header.revision, header.member_id,
 * header.raft_term, leader (the fields the gateway path reads). */
hp_rc etcd_pb_decode_status(const void *buf, size_t len, struct etcd_status *out,
                            struct hp_err *err) HP_WUR;

#endif
