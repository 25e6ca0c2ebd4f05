/*
 * etcd_internal.h - shared by the etcd client's files (not a public API).
 */
#ifndef HOSTPATROL_ETCD_INTERNAL_H
#define HOSTPATROL_ETCD_INTERNAL_H

#include <jansson.h>

#include "hostpatrol/etcd_client.h"
#include "hostpatrol/grpc_client.h"

/* etcd_client_call: POST body (borrowed) to path on the cluster; *resp (owned) is the parsed
 * answer on HP_OK. `write` selects the UNKNOWN classification for indeterminate failures. */
hp_rc etcd_client_call(struct etcd_client *c, struct hp_ctx *ctx, const char *path, json_t *body,
                       bool write, json_t **resp, struct hp_err *err) HP_WUR;

/* etcd_client_call_text: the same with a ready JSON body (borrowed, len bytes). */
hp_rc etcd_client_call_text(struct etcd_client *c, struct hp_ctx *ctx, const char *path,
                            const char *body, size_t len, bool write, json_t **resp,
                            struct hp_err *err) HP_WUR;

/* etcd_answer_rc: the class of an etcd error answer, for a write or a read, by its message
 * (borrowed) first, then its gRPC code (-1: none) and HTTP status (200 for gRPC): the rules of
 * tests/data/etcd/errors.tsv and grpc-errors.tsv. Never HP_OK. */
hp_rc etcd_answer_rc(int code, long http_status, const char *msg, bool write);

/* etcd_client_grpc: one unary gRPC call (method like "/etcdserverpb.KV/Range", msg borrowed)
 * with the gateway path's rules: failover while it provably never left, one re-authentication
 * when the token is refused, reads retried after a transport failure. *out (release it) holds
 * the answer's message on HP_OK. The client must use ETCD_TRANSPORT_GRPC. */
hp_rc etcd_client_grpc(struct etcd_client *c, struct hp_ctx *ctx, const char *method,
                       const void *msg, size_t len, bool write, struct grpc_result *out,
                       struct hp_err *err) HP_WUR;

struct pb_writer;
/* etcd_client_is_grpc: does c speak gRPC (ETCD_TRANSPORT_GRPC)? */
bool etcd_client_is_grpc(const struct etcd_client *c);

/* etcd_client_pb: etcd_client_grpc with the message in w (taken: released here) once its
 * encoder returned `encoded` (an error is returned as it is; NOMEM named). *out zeroed first. */
hp_rc etcd_client_pb(struct etcd_client *c, struct hp_ctx *ctx, const char *method,
                     struct pb_writer *w, hp_rc encoded, bool write, struct grpc_result *out,
                     struct hp_err *err) HP_WUR;

/* etcd_grpc_classify: HP_OK when x (borrowed) is a whole answer with status 0 and a message;
 * else the rc of the failure, err naming ep and method: the server's status by
 * etcd_answer_rc (also when the stream was reset after it); an answer that is not whole (no
 * status, cut, malformed, too large) is UNKNOWN for a write, PROTOCOL for a read; a transport
 * failure once the request may have left is UNKNOWN for a write (TIMEOUT / CANCELED /
 * UNAVAILABLE for a read); *next_endpoint is set when it provably never left (or the stream
 * was refused), so another endpoint may take it. */
hp_rc etcd_grpc_classify(const struct grpc_result *x, bool write, const char *ep,
                         const char *method, bool *next_endpoint, struct hp_err *err) HP_WUR;

/* etcd_json_bytes: n bytes as a base64 JSON string (new reference; NULL on NOMEM). */
json_t *etcd_json_bytes(const void *p, size_t n);

/* etcd_json_int: an int64 field sent as a string or a number; absent -> 0 (the gateway omits
 * defaults). HP_ERR_PROTOCOL when present but not a number. */
hp_rc etcd_json_int(const json_t *obj, const char *field, int64_t *out) HP_WUR;

/* etcd_range_json: the RangeRequest for req (new reference; NULL on NOMEM). */
json_t *etcd_range_json(const struct etcd_range_req *req);

/* etcd_range_parse: fill out from a RangeResponse (borrowed). out zeroed on error. */
hp_rc etcd_range_parse(const json_t *j, struct etcd_range_resp *out) HP_WUR;

struct etcd_txn;
struct etcd_txn_desc;

/* etcd_txn_describe: t as data (etcd_pb.h), for etcd_pb_encode_txn. Borrowed from t: valid
 * until t is changed or freed. */
const struct etcd_txn_desc *etcd_txn_describe(const struct etcd_txn *t);

/* etcd_txn_json: t (borrowed) as the gateway's TxnRequest body: *out owned (hp_free),
 * NUL-terminated, *len bytes (== etcd_txn_bytes(t)). HP_ERR_NOMEM when t or this ran out of
 * memory. */
hp_rc etcd_txn_json(const struct etcd_txn *t, char **out, size_t *len) HP_WUR;

#endif
