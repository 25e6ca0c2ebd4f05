/*
 * etcd_txn.h - build an etcd v3 transaction (compare / success / failure) and run it.
 *
 * A txn is applied atomically: if every compare holds, the success ops run, else the failure
 * ops; either way in one revision. Ops are put, delete (key or prefix), range (one key, or a
 * key at a past revision) and a nested txn (etcd >= 3.3).
 *
 * Limits enforced by the server, which a caller must respect (see docs/etcd-sync.md): at most
 * --max-txn-ops (default 128) entries in each of compare / success / failure; the same key may
 * not be written twice in one branch; the request must fit --max-request-bytes (1.5 MiB of
 * protobuf). etcd_txn_ops() and etcd_txn_bytes() let a caller plan before sending.
 *
 * Ownership: the builder owns copies of every key and value given (arguments are borrowed);
 * a builder made by etcd_txn_new_borrowed keeps the caller's keys and values instead (no copy:
 * they must stay valid and unchanged until etcd_txn_free).
 * A nested txn passed to etcd_txn_nest is taken (freed by the parent, also on error).
 * Thread-safety: a builder belongs to one thread at a time; etcd_txn_commit may run several
 * builders on one client concurrently.
 */
#ifndef HOSTPATROL_ETCD_TXN_H
#define HOSTPATROL_ETCD_TXN_H

#include "hostpatrol/etcd_client.h"

enum etcd_cmp_target {
    ETCD_CMP_VERSION,
    ETCD_CMP_CREATE_REVISION,
    ETCD_CMP_MOD_REVISION,
    ETCD_CMP_VALUE,
    ETCD_CMP_LEASE
};
enum etcd_cmp_op { ETCD_CMP_EQUAL, ETCD_CMP_GREATER, ETCD_CMP_LESS, ETCD_CMP_NOT_EQUAL };
enum etcd_branch { ETCD_SUCCESS, ETCD_FAILURE };

struct etcd_txn;

hp_rc etcd_txn_new(struct etcd_txn **out) HP_WUR; /* owned: etcd_txn_free */
void etcd_txn_free(struct etcd_txn *t);           /* NULL allowed */
/* etcd_txn_new_borrowed: a builder that borrows every key and value given (see Ownership); a
 * txn nested into it keeps its own mode. Owned: etcd_txn_free. */
hp_rc etcd_txn_new_borrowed(struct etcd_txn **out) HP_WUR;

/* Compares. target must not be ETCD_CMP_VALUE for _int, and must be for _value. */
hp_rc etcd_txn_compare_int(struct etcd_txn *t, const void *key, size_t key_len,
                           enum etcd_cmp_target target, enum etcd_cmp_op op, int64_t v) HP_WUR;
hp_rc etcd_txn_compare_value(struct etcd_txn *t, const void *key, size_t key_len,
                             enum etcd_cmp_op op, const void *v, size_t v_len) HP_WUR;

/* Ops in a branch. */
hp_rc etcd_txn_put(struct etcd_txn *t, enum etcd_branch b, const void *key, size_t key_len,
                   const void *value, size_t value_len, int64_t lease) HP_WUR;
hp_rc etcd_txn_delete(struct etcd_txn *t, enum etcd_branch b, const void *key, size_t key_len,
                      bool prefix) HP_WUR;
hp_rc etcd_txn_get(struct etcd_txn *t, enum etcd_branch b, const void *key, size_t key_len,
                   int64_t revision) HP_WUR;
hp_rc etcd_txn_nest(struct etcd_txn *t, enum etcd_branch b, struct etcd_txn *sub) HP_WUR;

size_t etcd_txn_compares(const struct etcd_txn *t);
size_t etcd_txn_ops(const struct etcd_txn *t, enum etcd_branch b);
/* etcd_txn_bytes: the size of the JSON request body so far (exact; the protobuf request of the
 * same txn is smaller). */
size_t etcd_txn_bytes(const struct etcd_txn *t);

enum etcd_op_type { ETCD_OP_PUT, ETCD_OP_DELETE, ETCD_OP_RANGE, ETCD_OP_TXN };

struct etcd_txn_resp;
struct etcd_op_resp {
    enum etcd_op_type type;
    int64_t deleted;              /* ETCD_OP_DELETE */
    struct etcd_range_resp range; /* ETCD_OP_RANGE */
    struct etcd_txn_resp *txn;    /* ETCD_OP_TXN (owned by the response) */
};
struct etcd_txn_resp {
    bool succeeded;
    int64_t revision; /* the store's revision after the txn */
    struct etcd_op_resp *ops;
    size_t n;
};
void etcd_txn_resp_release(struct etcd_txn_resp *r); /* NULL allowed; r zeroed */

/* etcd_txn_commit: send t (borrowed) and fill *out on HP_OK (release it). A txn is a write:
 * see etcd_client.h for the OK / FAILED / UNKNOWN outcomes. A failed compare is HP_OK with
 * out->succeeded == false. */
hp_rc etcd_txn_commit(struct etcd_client *c, struct hp_ctx *ctx, const struct etcd_txn *t,
                      struct etcd_txn_resp *out, struct hp_err *err) HP_WUR;

#endif
