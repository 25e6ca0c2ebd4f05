/*
 * etcd_client.h - an etcd v3 client over the JSON gateway (libcurl + jansson).
 *
 * What it speaks: POST /v3/kv/{range,put,deleterange,txn}, /v3/lease/{grant,revoke,keepalive},
 * /v3/auth/authenticate, /v3/maintenance/status. Keys and values are raw bytes (base64 on the
 * wire); 64-bit numbers are parsed from the strings the gateway sends.
 *
 * Outcomes. Every call returns an hp_rc, and etcd_outcome_of() classifies it the way etcd's own
 * client and Jepsen do:
 *   OK       the call was applied (HP_OK);
 *   FAILED   the call was certainly NOT applied: refused before sending (bad input, no endpoint
 *            reachable, TLS failure, deadline already passed), or refused by the server
 *            ("duplicate key", "too many requests", compacted, auth, no leader, compare on a
 *            txn is not a failure: it is OK with succeeded = false);
 *   UNKNOWN  a WRITE that may or may not have been applied: HP_ERR_UNKNOWN_OUTCOME after a
 *            timeout, cancel, connection reset or "request timed out"/"leader changed" once the
 *            request may have left. Reads never return UNKNOWN (they have no effect): a read
 *            that times out returns HP_ERR_TIMEOUT.
 * A write is never re-sent by this client once it may have left. The one case libcurl itself
 * re-sends (a reused keep-alive connection found dead before any answer byte) is harmless for
 * hostpatrol's writes: batch txns carry a create_revision == 0 guard on their fence key, so a
 * second copy cannot apply; plain puts are idempotent.
 *
 * Failover: endpoints are tried in order from the last one that answered; a request moves to the
 * next endpoint only when it provably never left (connect refused, DNS, TLS handshake). A READ
 * that failed in transport (HP_ERR_UNAVAILABLE) is retried up to 8 times (50 ms doubling to
 * 1 s apart) while its deadline allows; a write never is.
 *
 * Deadlines: every call takes a context (NULL = none; then request_cap_ms bounds it). The HTTP
 * timeout is the context's remaining time (capped), the gateway gets the same deadline minus a
 * little headroom in a Grpc-Timeout header, and a cancel wakes the transfer at once.
 *
 * Auth: with a username, the client authenticates (/v3/auth/authenticate), sends the token in
 * the Authorization header, and re-authenticates once when the server says the token is
 * invalid (a refused request was not applied, so that retry is safe). Secrets never appear in
 * hp_err messages.
 *
 * Thread-safety: an etcd_client may be used from any number of threads at once. Each call
 * borrows a connection slot (an easy handle with its own keep-alive connection) from a pool
 * guarded by the client's mutex; the token and the current endpoint index share that mutex.
 */
#ifndef HOSTPATROL_ETCD_CLIENT_H
#define HOSTPATROL_ETCD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/ctx.h"
#include "hostpatrol/grpc_client.h"
#include "hostpatrol/rc.h"

/* How the client speaks to etcd: native gRPC (the default: unary calls over HTTP/2, many
 * multiplexed on few connections per endpoint; see grpc_client.h) or the v3 JSON gateway
 * (HTTP/1.1), for deployments that expose only that. */
enum etcd_transport { ETCD_TRANSPORT_GRPC, ETCD_TRANSPORT_GATEWAY, ETCD_TRANSPORT__INVALID };

struct etcd_config {
    const char *endpoints;         /* "http://h:2379,https://h2:2379"; required */
    enum etcd_transport transport; /* 0: gRPC */
    const char *ca_file;           /* PEM CA bundle for https endpoints; NULL: system default */
    const char *cert_file;         /* client certificate (PEM) for mTLS; NULL: none */
    const char *key_file;          /* its private key (PEM) */
    const char *server_name;       /* TLS name to verify when it differs from the endpoint host */
    const char *username;          /* etcd auth; NULL: auth off */
    const char *password;
    int64_t connect_timeout_ms; /* 0: 2000 */
    int64_t request_cap_ms;     /* upper bound of one request; 0: 30000 */
};

enum etcd_outcome { ETCD_OUTCOME_OK, ETCD_OUTCOME_FAILED, ETCD_OUTCOME_UNKNOWN };

/* etcd_outcome_of: classify a call's return code (see above). */
enum etcd_outcome etcd_outcome_of(hp_rc rc);
const char *etcd_outcome_name(enum etcd_outcome o); /* "ok" "failed" "unknown"; static */

struct etcd_client;

/* etcd_client_new: validate cfg (strings borrowed, copied) and create a client. Connects
 * lazily: no I/O here. Bad input -> HP_ERR_INVALID with err->field naming the setting
 * ("endpoints", "ca_file", ...). *out owned: etcd_client_free. */
hp_rc etcd_client_new(const struct etcd_config *cfg, struct etcd_client **out,
                      struct hp_err *err) HP_WUR;
void etcd_client_free(struct etcd_client *c);
/* etcd_client_grpc_stats: the gRPC transport's counters (grpc_client.h); all 0 on the gateway. */
void etcd_client_grpc_stats(struct etcd_client *c, struct grpc_client_stats *out);

/* A key-value pair as read. key/value are NUL-terminated copies (the NUL is not counted). */
struct etcd_kv {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int64_t create_revision, mod_revision, version, lease;
};

struct etcd_range_req {
    const void *key; /* borrowed */
    size_t key_len;
    bool prefix;           /* every key starting with key */
    const void *range_end; /* explicit [key, range_end) when !prefix; NULL: key alone */
    size_t range_end_len;
    int64_t revision; /* 0: latest */
    int64_t limit;    /* 0: no limit */
    bool keys_only;
    bool count_only;
    bool serializable;        /* read from the member's local state (no quorum) */
    int64_t min_mod_revision; /* 0: any; else only keys last modified at or after it (a
                               * poll for what changed since a revision) */
};

struct etcd_range_resp {
    int64_t revision; /* the store's revision when read */
    int64_t count;    /* keys in the range (not only those returned) */
    bool more;        /* limit cut the answer */
    struct etcd_kv *kvs;
    size_t n;
};
void etcd_range_resp_release(struct etcd_range_resp *r); /* NULL allowed; r zeroed */

/* etcd_range: read. *out is filled on HP_OK (release it); untouched otherwise. */
hp_rc etcd_range(struct etcd_client *c, struct hp_ctx *ctx, const struct etcd_range_req *req,
                 struct etcd_range_resp *out, struct hp_err *err) HP_WUR;

/* etcd_put: write key=value (lease 0: none). *revision (may be NULL) gets the revision. */
hp_rc etcd_put(struct etcd_client *c, struct hp_ctx *ctx, const void *key, size_t key_len,
               const void *value, size_t value_len, int64_t lease, int64_t *revision,
               struct hp_err *err) HP_WUR;

/* etcd_delete: delete key, or every key with that prefix. *deleted may be NULL. */
hp_rc etcd_delete(struct etcd_client *c, struct hp_ctx *ctx, const void *key, size_t key_len,
                  bool prefix, int64_t *deleted, int64_t *revision, struct hp_err *err) HP_WUR;

/* Leases: grant (ttl seconds) -> *id; revoke deletes every key attached; keepalive renews once
 * and gives the new ttl (0 when the lease no longer exists: then HP_ERR_NOTFOUND). */
hp_rc etcd_lease_grant(struct etcd_client *c, struct hp_ctx *ctx, int64_t ttl_s, int64_t *id,
                       struct hp_err *err) HP_WUR;
hp_rc etcd_lease_revoke(struct etcd_client *c, struct hp_ctx *ctx, int64_t id,
                        struct hp_err *err) HP_WUR;
hp_rc etcd_lease_keepalive(struct etcd_client *c, struct hp_ctx *ctx, int64_t id, int64_t *ttl_s,
                           struct hp_err *err) HP_WUR;

struct etcd_status {
    char version[32]; /* server version, e.g. "3.6.16" */
    int64_t revision, leader, member_id, raft_term;
};
/* etcd_status: /v3/maintenance/status of the first endpoint that answers. */
hp_rc etcd_status(struct etcd_client *c, struct hp_ctx *ctx, struct etcd_status *out,
                  struct hp_err *err) HP_WUR;

/* etcd_prefix_end: the range_end that selects every key with prefix p (etcd's rule: the
 * prefix with its last byte below 0xff incremented; "\0" for all keys). *out owned. */
hp_rc etcd_prefix_end(const void *p, size_t n, char **out, size_t *out_len) HP_WUR;

#endif
