/* fuzz-etcd_client.c - what the etcd v3 JSON gateway answers, through the real client: HTTP over
 * loopback from a scripted peer (fuzz_peer.h) to etcd_client's calls (range, put, delete, txn,
 * leases, status, authentication): status classification, error bodies, base64 keys and values,
 * 64-bit numbers as strings, nested txn responses.
 * Input: byte 0 picks the call (bits 0-3), a client with a user (bit 4) and chunked answers
 * (bit 5); the rest is one answer per request, separated by lines "----", each a status byte
 * (see statuses[]) and the body. A request beyond the last answer cancels the call. */
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_peer.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/etcd_client.h"
#include "hostpatrol/etcd_txn.h"

#define MAX_ANSWERS 8

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int statuses[16] = {200, 200, 200, 200, 200, 200, 200, 200,
                                 400, 401, 403, 404, 429, 500, 503, 302};

/* the answers of the current input (borrowed from libFuzzer's buffer for one input), read by
 * the peer thread; in_lock keeps a late request from reading them after the input ended */
static pthread_mutex_t in_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const uint8_t *part[MAX_ANSWERS];
    size_t len[MAX_ANSWERS], n, next;
    bool chunked;
    struct hp_ctx *ctx;
} in;

static struct fuzz_peer *peer;
static struct etcd_client *plain, *authed;

static enum fuzz_peer_next answer_locked(int fd);

static enum fuzz_peer_next answer(void *arg, const char *head, int fd)
{
    enum fuzz_peer_next next;

    (void)arg;
    (void)head;
    pthread_mutex_lock(&in_lock);
    next = answer_locked(fd);
    pthread_mutex_unlock(&in_lock);
    return next;
}

static enum fuzz_peer_next answer_locked(int fd)
{
    const uint8_t *body;
    size_t len;
    char hdr[256];
    int status, h;

    if (in.next >= in.n) {
        hp_ctx_cancel(in.ctx); /* the client gives up: no retry loop to wait out */
        return FUZZ_PEER_CLOSE;
    }
    body = in.part[in.next];
    len = in.len[in.next++];
    status = len ? statuses[body[0] & 15] : 200;
    if (len) {
        body++;
        len--;
    }
    if (in.chunked) {
        h = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n",
                     status);
        if (!fuzz_peer_write(fd, hdr, (size_t)h) || !fuzz_peer_chunked(fd, body, len, body, 1))
            return FUZZ_PEER_CLOSE;
    } else {
        h = snprintf(
            hdr, sizeof(hdr),
            "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
            status, len);
        if (!fuzz_peer_write(fd, hdr, (size_t)h) || !fuzz_peer_write(fd, body, len))
            return FUZZ_PEER_CLOSE;
    }
    return FUZZ_PEER_KEEP;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char endpoint[64];
    struct hp_err err = {0};

    (void)argc;
    (void)argv;
    hp_alloc_install();
    peer = fuzz_peer_new(answer, NULL);
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", fuzz_peer_port(peer));
    /* the fuzzed peer answers as the JSON gateway (HTTP/1.1) */
    if (etcd_client_new(&(struct etcd_config){.endpoints = endpoint,
                                              .transport = ETCD_TRANSPORT_GATEWAY,
                                              .request_cap_ms = 5000},
                        &plain, &err) ||
        etcd_client_new(&(struct etcd_config){.endpoints = endpoint,
                                              .transport = ETCD_TRANSPORT_GATEWAY,
                                              .request_cap_ms = 5000,
                                              .username = "fuzz",
                                              .password = "secret"},
                        &authed, &err))
        abort();
    return 0;
}

static void txn(struct etcd_client *c, struct hp_ctx *ctx, struct hp_err *err)
{
    struct etcd_txn *t = NULL, *sub = NULL;
    struct etcd_txn_resp r = {0};
    hp_rc rc = etcd_txn_new(&t);

    if (!rc)
        rc = etcd_txn_new(&sub);
    if (!rc)
        rc = etcd_txn_delete(sub, ETCD_SUCCESS, "p/", 2, true);
    if (!rc)
        rc = etcd_txn_nest(t, ETCD_FAILURE, sub); /* sub taken, also on error */
    sub = NULL;
    if (!rc)
        rc = etcd_txn_compare_int(t, "k", 1, ETCD_CMP_CREATE_REVISION, ETCD_CMP_EQUAL, 0);
    if (!rc)
        rc = etcd_txn_put(t, ETCD_SUCCESS, "k", 1, "v", 1, 0);
    if (!rc)
        rc = etcd_txn_get(t, ETCD_FAILURE, "k", 1, 0);
    if (!rc)
        rc = etcd_txn_commit(c, ctx, t, &r, err);
    if (!rc && r.n && r.ops[r.n - 1].type > ETCD_OP_TXN)
        abort();
    etcd_txn_resp_release(&r);
    etcd_txn_free(sub);
    etcd_txn_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct etcd_client *c;
    struct hp_err err = {0};
    struct etcd_range_resp rr = {0};
    struct etcd_status st;
    int64_t x = 0, y = 0;
    uint8_t sel;

    if (!size)
        return 0;
    sel = data[0];
    c = sel & 0x10 ? authed : plain;
    pthread_mutex_lock(&in_lock);
    in.n = fuzz_split(data + 1, size - 1, in.part, in.len, MAX_ANSWERS);
    in.next = 0;
    in.chunked = sel & 0x20;
    if (hp_ctx_new(NULL, 3000, &in.ctx))
        in.n = 0;
    pthread_mutex_unlock(&in_lock);
    switch (sel & 7) {
    case 0:
        if (!etcd_range(
                c, in.ctx,
                &(struct etcd_range_req){.key = "hostpatrol/", .key_len = 11, .prefix = true}, &rr,
                &err))
            for (size_t i = 0; i < rr.n; i++)
                if (rr.kvs[i].key[rr.kvs[i].key_len] || rr.kvs[i].value[rr.kvs[i].value_len])
                    abort(); /* keys and values are NUL-terminated */
        etcd_range_resp_release(&rr);
        break;
    case 1:
        (void)etcd_put(c, in.ctx, "k", 1, "v", 1, sel & 8 ? 7 : 0, &x, &err);
        break;
    case 2:
        (void)etcd_delete(c, in.ctx, "k", 1, sel & 8, &x, &y, &err);
        break;
    case 3:
        txn(c, in.ctx, &err);
        break;
    case 4:
        (void)etcd_lease_grant(c, in.ctx, 10, &x, &err);
        break;
    case 5:
        (void)etcd_lease_keepalive(c, in.ctx, 7, &x, &err);
        break;
    case 6:
        (void)etcd_lease_revoke(c, in.ctx, 7, &err);
        break;
    default:
        (void)etcd_status(c, in.ctx, &st, &err);
        break;
    }
    pthread_mutex_lock(&in_lock);
    hp_ctx_free(in.ctx);
    in.ctx = NULL;
    in.n = 0;
    pthread_mutex_unlock(&in_lock);
    return 0;
}
