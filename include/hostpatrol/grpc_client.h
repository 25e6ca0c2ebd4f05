/*
 * grpc_client.h - unary gRPC calls over libcurl's HTTP/2, many calls multiplexed on few
 * connections per endpoint. The etcd client's native transport is built on it (issue 13).
 *
 * A call POSTs <base_url><path> with content-type application/grpc, te: trailers and a
 * grpc-timeout from the call's time budget; the body is the 5-byte gRPC prefix (uncompressed,
 * big-endian length) and the message. The answer's status comes from the trailers (or from a
 * headers-only answer); a result WITHOUT a grpc-status never means success.
 *
 * h2c (http://): on libcurl before 8.0 (Debian 12 has 7.88) a request reused or multiplexed on
 * a prior-knowledge connection fails with "Error in the HTTP2 framing layer" (curl issue 10634).
 * The client therefore opens each h2c connection with one prior-knowledge request (the PRIME,
 * on a fresh connection; a call that finds no primed connection is a prime itself, it never
 * waits for another's), then sends with CURL_HTTP_VERSION_2_0, which reuses and
 * multiplexes that connection. Should the connection be gone, libcurl would dial again with an
 * HTTP/1.1 "Upgrade: h2c" request, which etcd hands to its JSON gateway: an HTTP/1.1 404 that
 * processed nothing. Such an answer is detected (HTTP version 1.1), the lane's endpoint is
 * marked unprimed and the call re-sent on a connection of its own (a prime): safe, since nothing
 * was processed. So is a call that found its reused connection dead before any byte left (sent
 * false: a send or receive error, nothing answered). At most 3 attempts. On libcurl >= 8.0
 * connections are primed the same way (a lane's connection is reused only once a call on a
 * connection of its own got an answer on it), and reused with prior knowledge; should the
 * connection be gone, libcurl opens a new one for that call unseen (on < 8: with the upgrade
 * request), and if that call fails before one byte of an answer its lane retires (see Silent
 * connections): a connection opened during a reset can be accepted and stay silent. A prime
 * that ends after its lane was reset primes nothing. Under toxiproxy's reset_peer on libcurl 8.14
 * the slowest result became final after 50 s with every call on any pooled connection, 16 s with
 * primes, 6 s with primes and that rule, as on 7.88 (tests/integration/test-libcurl8.sh). https://
 * uses ALPN h2 (CURL_HTTP_VERSION_2TLS), not primed.
 *
 * Lanes: the client has GRPC_CLIENT_LANES libcurl multi handles (lanes), each with its own
 * connection per endpoint. A call takes the first lane whose connection is ready and carries
 * fewer than GRPC_CLIENT_LANE_CALLS calls, else opens (primes) the next lane, else shares the
 * least loaded one: one connection while calls come one at a time, one per call in flight under
 * load up to the lane count, multiplexed beyond it. Why one call per connection: a connection
 * that falls silent then holds one call, not every call multiplexed on it (under toxiproxy's
 * reset_peer the slowest result took 5.9 s to become final, against 16 s with 4 lanes of 4
 * calls, whose resolution steps timed out on the silent connections); and libcurl 7.88 runs
 * every transfer of a connection whenever that connection has data (16 calls on one connection:
 * 16 transfer runs per answer).
 *
 * Silent connections: a call that waited its whole time (at least twice the lane's average
 * answer time, and 20 ms) with not one byte arriving on its lane RETIRES the lane: no new call
 * takes it (while every lane is retiring, a call opens a connection of its own), and once no
 * call runs on it its connections are closed (a reset or a proxy can
 * leave a connection accepted but silent, which libcurl takes for alive). So does an h2c call
 * meant for the lane's primed connection for which libcurl had to open a new one, when it fails
 * before one byte of an answer arrives. Since no call waits
 * for a prime, under latency beyond the callers' deadlines (or a link that drops every byte)
 * the retired lanes' new connections cost a connect and a prime, never a call left unsent.
 * Calls still on a silent lane are ended by the stall time (grpc_client_new).
 *
 * Threads: one driver thread owns the multi handles (libcurl's multi API is not thread-safe)
 * and runs every transfer through curl_multi_socket_action on an epoll set (libcurl's socket
 * and timer callbacks keep it), and every transfer of a lane with calls at least every 250 ms
 * (libcurl 7.88 may hold data it read without asking to run again); callers hand calls over
 * under the client's mutex, wake the driver through an eventfd and wait on their own condition
 * variable. The mutex guards the call queue, the lanes' calls, loads and endpoint tables, and
 * the idle easy handles. A call whose context ends is removed by the driver at once (ctx_rc
 * set). Ownership: call fields are borrowed for the call; the result's message is owned by the
 * result (grpc_result_release).
 */
#ifndef HOSTPATROL_GRPC_CLIENT_H
#define HOSTPATROL_GRPC_CLIENT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/ctx.h"
#include "hostpatrol/http_conn.h"
#include "hostpatrol/rc.h"

#define GRPC_CLIENT_LANES      16 /* multi handles: the most connections per endpoint */
#define GRPC_CLIENT_LANE_CALLS 1  /* calls a lane carries before the next one is opened */

struct grpc_call {
    const char *base_url;       /* "http://host:port" or "https://host:port" */
    const char *path;           /* "/etcdserverpb.KV/Range" */
    const void *msg;            /* the protobuf message (without the 5-byte prefix) */
    size_t msg_len;             /* at most 2^31 - 1 */
    const char *const *headers; /* extra "name: value" lines (e.g. "token: ..."), or NULL */
    int64_t timeout_ms;         /* the whole call (and grpc-timeout); > 0 */
    int64_t connect_timeout_ms; /* 0: 2000 */
    const struct http_tls *tls; /* https: CA, client certificate, connect_to; or NULL */
    size_t max_msg;             /* refuse answers above this; 0: 256 MiB */
};

struct grpc_result {
    CURLcode cc;            /* CURLE_OK when the exchange completed */
    long http_status;       /* 0 if none arrived */
    int grpc_status;        /* -1: none arrived. May be set with cc != CURLE_OK: a server that
                             * answers before reading the whole request (trailers only) may reset
                             * the stream after its answer */
    char grpc_message[512]; /* percent-decoded, control characters replaced */
    bool sent;              /* the request may have reached the server */
    bool refused;           /* HTTP/2 REFUSED_STREAM: the server processed nothing */
    hp_rc ctx_rc;           /* the context ended the call (TIMEOUT / CANCELED), else HP_OK */
    int overflow;           /* 1: answer above max_msg; 2: out of memory */
    bool malformed;         /* the body is not one well-framed uncompressed message */
    void *msg;              /* owned: the answer's message (may be NULL with msg_len 0) */
    size_t msg_len;
    char errbuf[CURL_ERROR_SIZE]; /* libcurl's detail */
};

struct grpc_client;

/* grpc_client_new: start the driver thread. stall_ms (0: 30 s): when calls wait and no byte
 * has arrived for that long, the connections are taken for dead (a link that drops every byte
 * leaves libcurl an HTTP/2 connection it still believes alive, which would carry every later
 * call into the same silence): the calls in flight end (CURLE_RECV_ERROR, "silent ... dropped")
 * and new connections are opened. Choose it above the longest a healthy server may take to
 * answer. *out owned: grpc_client_free. */
hp_rc grpc_client_new(int64_t stall_ms, struct grpc_client **out, struct hp_err *err) HP_WUR;

/* grpc_client_free: ends calls in flight (CANCELED), stops the driver. NULL allowed. */
void grpc_client_free(struct grpc_client *c);

/* grpc_client_call: one unary call under ctx (borrowed; NULL: only call->timeout_ms bounds it).
 * Always fills *out (release it). Thread-safe. */
void grpc_client_call(struct grpc_client *c, struct hp_ctx *ctx, const struct grpc_call *call,
                      struct grpc_result *out);

struct grpc_client_stats {
    uint64_t primes;           /* prior-knowledge requests that opened an h2c connection */
    uint64_t http1_answers;    /* calls answered over HTTP/1.1 (connection gone), sent again */
    uint64_t dead_connections; /* calls that found their connection dead before sending */
    uint64_t stalls;           /* times a lane's connections were dropped as silent */
    uint64_t retired;          /* times a lane's connections were closed after a call found
                                * them silent (see Silent connections) */
    uint64_t connects;         /* connections opened (libcurl's CURLINFO_NUM_CONNECTS, summed) */
};
void grpc_client_stats(struct grpc_client *c, struct grpc_client_stats *out);

/* grpc_result_release: free the message; r zeroed. NULL allowed. */
void grpc_result_release(struct grpc_result *r);

/* grpc_timeout_header: "grpc-timeout: <n>m" for a budget of ms milliseconds, the server's
 * budget a little shorter than ours (10%, at most 100 ms) so its answer can still reach us. */
void grpc_timeout_header(int64_t ms, char *out, size_t size);

/* grpc_percent_decode: decode a grpc-message value (n bytes) into out (NUL-terminated,
 * truncated; control characters and bytes above 0x7e become '?'). */
void grpc_percent_decode(const char *s, size_t n, char *out, size_t size);

#endif
