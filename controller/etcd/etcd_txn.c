/* etcd_txn.c - txn builder and response parser (see include/hostpatrol/etcd_txn.h).
 *
 * The builder keeps the txn as data (an etcd_txn_desc over arrays of compares and ops that own
 * copies of their keys and values, or borrow them: etcd_txn_new_borrowed), so one txn can be sent
 * as the gateway's JSON (rendered here) or as protobuf (etcd_pb_encode_txn on etcd_txn_describe).
 * The JSON size is kept up to date as items are added, by the same renderer run in counting mode:
 * etcd_txn_bytes is exact. */
#include "hostpatrol/etcd_txn.h"

#include <inttypes.h>
#include <string.h>

#include "etcd/etcd_internal.h"
#include "etcd/etcd_pb.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/buf.h"
#include "hostpatrol/b64.h"

struct etcd_txn {
    struct etcd_txn_desc desc; /* first member: a nested op's txn points here (see owner_of) */
    struct etcd_txn_cmp *cmp;  /* desc.cmp, writable */
    struct etcd_txn_op *ops[2];
    size_t cap_cmp, cap_ops[2];
    size_t json;  /* the JSON body's size */
    int failed;   /* an add ran out of memory: commit refuses */
    bool borrows; /* keys and values are the caller's (etcd_txn_new_borrowed), not copies */
};

/* The request as JSON text: into text, or (count) only its length into counted. */
struct tbuf {
    struct hp_buf text;
    size_t counted;
    bool count;
};

static const char *const target_names[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
static const char *const target_fields[] = {"version", "create_revision", "mod_revision", "value",
                                            "lease"};
static const char *const op_names[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};

#define JSON_EMPTY "{\"compare\":[],\"success\":[],\"failure\":[]}"

hp_rc etcd_txn_new(struct etcd_txn **out)
{
    *out = hp_calloc(1, sizeof(**out));
    if (!*out)
        return HP_ERR_NOMEM;
    (*out)->json = sizeof(JSON_EMPTY) - 1;
    return HP_OK;
}

hp_rc etcd_txn_new_borrowed(struct etcd_txn **out)
{
    hp_rc rc = etcd_txn_new(out);

    if (!rc)
        (*out)->borrows = true;
    return rc;
}

/* owner_of: the builder whose desc d is (desc is its first member) */
static struct etcd_txn *owner_of(const struct etcd_txn_desc *d)
{
    return (struct etcd_txn *)(uintptr_t)d;
}

static void op_release(const struct etcd_txn *t, struct etcd_txn_op *op)
{
    if (!t->borrows) {
        hp_free((void *)(uintptr_t)op->key);
        hp_free((void *)(uintptr_t)op->value);
    }
    if (op->txn)
        etcd_txn_free(owner_of(op->txn));
}

void etcd_txn_free(struct etcd_txn *t)
{
    size_t i;
    int b;

    if (!t)
        return;
    for (i = 0; i < t->desc.n_cmp && !t->borrows; i++) {
        hp_free((void *)(uintptr_t)t->cmp[i].key);
        hp_free((void *)(uintptr_t)t->cmp[i].value);
    }
    hp_free(t->cmp);
    for (b = 0; b < 2; b++) {
        for (i = 0; i < t->desc.n_ops[b]; i++)
            op_release(t, &t->ops[b][i]);
        hp_free(t->ops[b]);
    }
    hp_free(t);
}

const struct etcd_txn_desc *etcd_txn_describe(const struct etcd_txn *t)
{
    return &t->desc;
}

/* ---- JSON rendering ---- */

static int tb_put(struct tbuf *b, const char *s, size_t n)
{
    if (b->count) {
        b->counted += n;
        return 0;
    }
    return hp_buf_add(&b->text, s, n) ? -1 : 0; /* s may be NULL for an empty list */
}

static int tb_str(struct tbuf *b, const char *s)
{
    return tb_put(b, s, strlen(s));
}

static int tb_b64(struct tbuf *b, const void *p, size_t n)
{
    size_t m = hp_b64_encoded_len(n);
    char *at;

    if (b->count) {
        b->counted += m + 2;
        return 0;
    }
    if (hp_buf_add_space(&b->text, m + 2, &at))
        return -1;
    at[0] = '"';
    hp_b64_encode(p, n, at + 1); /* its NUL lands where the closing quote goes */
    at[m + 1] = '"';
    return 0;
}

static int tb_int(struct tbuf *b, int64_t v)
{
    char num[32];

    return tb_put(b, num, (size_t)snprintf(num, sizeof(num), "%" PRId64, v));
}

/* tb_prefix_end: the range_end of every key with prefix key, base64 in quotes */
static int tb_prefix_end(struct tbuf *b, const void *key, size_t key_len)
{
    char *end = NULL;
    size_t end_len = 0;
    int bad;

    if (etcd_prefix_end(key, key_len, &end, &end_len))
        return -1;
    bad = tb_b64(b, end, end_len);
    hp_free(end);
    return bad;
}

static int render_cmp(struct tbuf *b, const struct etcd_txn_cmp *c)
{
    int bad = tb_str(b, "{\"key\":") || tb_b64(b, c->key, c->key_len) ||
              tb_str(b, ",\"target\":\"") || tb_str(b, target_names[c->target]) ||
              tb_str(b, "\",\"result\":\"") || tb_str(b, op_names[c->op]) || tb_str(b, "\",\"") ||
              tb_str(b, target_fields[c->target]) || tb_str(b, "\":");

    if (c->target == ETCD_CMP_VALUE)
        return bad || tb_b64(b, c->value, c->value_len) || tb_str(b, "}");
    return bad || tb_int(b, c->v) || tb_str(b, "}");
}

static int render_txn(struct tbuf *b, const struct etcd_txn_desc *t);

static int render_op(struct tbuf *b, const struct etcd_txn_op *op)
{
    switch (op->type) {
    case ETCD_OP_PUT:
        return tb_str(b, "{\"request_put\":{\"key\":") || tb_b64(b, op->key, op->key_len) ||
               tb_str(b, ",\"value\":") || tb_b64(b, op->value, op->value_len) ||
               (op->lease && (tb_str(b, ",\"lease\":") || tb_int(b, op->lease))) || tb_str(b, "}}");
    case ETCD_OP_DELETE:
        return tb_str(b, "{\"request_delete_range\":{\"key\":") ||
               tb_b64(b, op->key, op->key_len) ||
               (op->prefix &&
                (tb_str(b, ",\"range_end\":") || tb_prefix_end(b, op->key, op->key_len))) ||
               tb_str(b, "}}");
    case ETCD_OP_RANGE:
        return tb_str(b, "{\"request_range\":{\"key\":") || tb_b64(b, op->key, op->key_len) ||
               (op->prefix &&
                (tb_str(b, ",\"range_end\":") || tb_prefix_end(b, op->key, op->key_len))) ||
               (op->revision && (tb_str(b, ",\"revision\":") || tb_int(b, op->revision))) ||
               tb_str(b, "}}");
    case ETCD_OP_TXN:
        return tb_str(b, "{\"request_txn\":") || render_txn(b, op->txn) || tb_str(b, "}");
    }
    return -1;
}

/* render_txn: the whole request */
static int render_txn(struct tbuf *b, const struct etcd_txn_desc *t)
{
    static const char *const lists[2] = {"],\"success\":[", "],\"failure\":["};
    size_t i;
    int br;

    if (tb_str(b, "{\"compare\":["))
        return -1;
    for (i = 0; i < t->n_cmp; i++)
        if ((i && tb_put(b, ",", 1)) || render_cmp(b, &t->cmp[i]))
            return -1;
    for (br = 0; br < 2; br++) {
        if (tb_str(b, lists[br]))
            return -1;
        for (i = 0; i < t->n_ops[br]; i++)
            if ((i && tb_put(b, ",", 1)) || render_op(b, &t->ops[br][i]))
                return -1;
    }
    return tb_str(b, "]}");
}

/* json_size: the bytes an item adds to the JSON body (with its comma when not the first) */
static size_t json_size_cmp(const struct etcd_txn_cmp *c, size_t n_before)
{
    struct tbuf b = {.count = true};

    render_cmp(&b, c);
    return b.counted + (n_before > 0);
}

static int json_size_op(const struct etcd_txn_op *op, size_t n_before, size_t *size)
{
    struct tbuf b = {.count = true};

    if (render_op(&b, op)) /* a prefix end's copy ran out of memory */
        return -1;
    *size = b.counted + (n_before > 0);
    return 0;
}

/* ---- building ---- */

static hp_rc done(struct etcd_txn *t, int bad)
{
    if (bad)
        t->failed = 1;
    return bad ? HP_ERR_NOMEM : HP_OK;
}

/* dup: an owned copy of p[0..n) (1 byte when n == 0, so a copy is never NULL); p itself when t
 * borrows (a non-NULL stand-in for an empty one) */
static void *dup(const struct etcd_txn *t, const void *p, size_t n)
{
    void *d;

    if (t->borrows)
        return (void *)(uintptr_t)(p ? p : "");
    d = hp_malloc(n ? n : 1);

    if (d && n)
        memcpy(d, p, n);
    return d;
}

/* grow: arr (an array of n `size`-byte items, *cap of room) with room for one more: the array
 * to use from now on (arr itself when it had room), or NULL (arr kept) when out of memory */
static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
    size_t c;
    void *p;

    if (n < *cap)
        return arr;
    c = *cap ? *cap * 2 : 8;
    p = hp_realloc(arr, c * size);
    if (p)
        *cap = c;
    return p;
}

static hp_rc add_cmp(struct etcd_txn *t, const struct etcd_txn_cmp *c)
{
    struct etcd_txn_cmp copy = *c;
    void *arr;

    arr = grow(t->cmp, &t->cap_cmp, t->desc.n_cmp, sizeof(*t->cmp));
    if (!arr)
        return done(t, 1);
    t->cmp = arr;
    t->desc.cmp = arr;
    copy.key = dup(t, c->key, c->key_len);
    copy.value = c->target == ETCD_CMP_VALUE ? dup(t, c->value, c->value_len) : NULL;
    if (!copy.key || (c->target == ETCD_CMP_VALUE && !copy.value)) {
        if (!t->borrows) {
            hp_free((void *)(uintptr_t)copy.key);
            hp_free((void *)(uintptr_t)copy.value);
        }
        return done(t, 1);
    }
    t->json += json_size_cmp(&copy, t->desc.n_cmp);
    t->cmp[t->desc.n_cmp++] = copy;
    return HP_OK;
}

/* add_op: append op (its key and value copied; its txn, if any, taken) to branch br */
static hp_rc add_op(struct etcd_txn *t, enum etcd_branch br, const struct etcd_txn_op *op)
{
    int b = br != ETCD_SUCCESS;
    struct etcd_txn_op copy = *op;
    size_t size;
    void *arr;

    copy.key = copy.value = NULL;
    if (op->type != ETCD_OP_TXN) {
        copy.key = dup(t, op->key, op->key_len);
        copy.value = op->type == ETCD_OP_PUT ? dup(t, op->value, op->value_len) : NULL;
    }
    arr = grow(t->ops[b], &t->cap_ops[b], t->desc.n_ops[b], sizeof(*t->ops[b]));
    if (arr) {
        t->ops[b] = arr;
        t->desc.ops[b] = arr;
    }
    if ((op->type != ETCD_OP_TXN && !copy.key) || (op->type == ETCD_OP_PUT && !copy.value) ||
        !arr || json_size_op(&copy, t->desc.n_ops[b], &size)) {
        op_release(t, &copy);
        return done(t, 1);
    }
    t->json += size;
    t->ops[b][t->desc.n_ops[b]++] = copy;
    return HP_OK;
}

hp_rc etcd_txn_compare_int(struct etcd_txn *t, const void *key, size_t key_len,
                           enum etcd_cmp_target target, enum etcd_cmp_op op, int64_t v)
{
    struct etcd_txn_cmp c = {.target = target, .op = op, .key = key, .key_len = key_len, .v = v};

    if (target == ETCD_CMP_VALUE || (unsigned)target > ETCD_CMP_LEASE || (unsigned)op > 3)
        return HP_ERR_INVALID;
    return add_cmp(t, &c);
}

hp_rc etcd_txn_compare_value(struct etcd_txn *t, const void *key, size_t key_len,
                             enum etcd_cmp_op op, const void *v, size_t v_len)
{
    struct etcd_txn_cmp c = {.target = ETCD_CMP_VALUE,
                             .op = op,
                             .key = key,
                             .key_len = key_len,
                             .value = v,
                             .value_len = v_len};

    if ((unsigned)op > 3)
        return HP_ERR_INVALID;
    return add_cmp(t, &c);
}

hp_rc etcd_txn_put(struct etcd_txn *t, enum etcd_branch br, const void *key, size_t key_len,
                   const void *value, size_t value_len, int64_t lease)
{
    struct etcd_txn_op op = {.type = ETCD_OP_PUT,
                             .key = key,
                             .key_len = key_len,
                             .value = value,
                             .value_len = value_len,
                             .lease = lease};

    return add_op(t, br, &op);
}

hp_rc etcd_txn_delete(struct etcd_txn *t, enum etcd_branch br, const void *key, size_t key_len,
                      bool prefix)
{
    struct etcd_txn_op op = {
        .type = ETCD_OP_DELETE, .key = key, .key_len = key_len, .prefix = prefix};

    return add_op(t, br, &op);
}

hp_rc etcd_txn_get(struct etcd_txn *t, enum etcd_branch br, const void *key, size_t key_len,
                   int64_t revision)
{
    struct etcd_txn_op op = {
        .type = ETCD_OP_RANGE, .key = key, .key_len = key_len, .revision = revision};

    return add_op(t, br, &op);
}

hp_rc etcd_txn_nest(struct etcd_txn *t, enum etcd_branch br, struct etcd_txn *sub)
{
    struct etcd_txn_op op = {.type = ETCD_OP_TXN, .txn = &sub->desc};

    if (sub->failed) {
        etcd_txn_free(sub);
        return done(t, 1);
    }
    return add_op(t, br, &op); /* sub taken: freed by t, or by add_op on error */
}

size_t etcd_txn_compares(const struct etcd_txn *t)
{
    return t->desc.n_cmp;
}

size_t etcd_txn_ops(const struct etcd_txn *t, enum etcd_branch b)
{
    return t->desc.n_ops[b != ETCD_SUCCESS];
}

size_t etcd_txn_bytes(const struct etcd_txn *t)
{
    return t->json;
}

hp_rc etcd_txn_json(const struct etcd_txn *t, char **out, size_t *len)
{
    struct tbuf body = {.count = false};

    *out = NULL;
    *len = 0;
    hp_buf_init(&body.text, 0);
    /* etcd_txn_bytes is exact: one allocation */
    if (t->failed || hp_buf_reserve(&body.text, t->json) || render_txn(&body, &t->desc)) {
        hp_buf_release(&body.text);
        return HP_ERR_NOMEM;
    }
    *out = hp_buf_detach(&body.text, len);
    return *out ? HP_OK : HP_ERR_NOMEM;
}

/* ---- the response ---- */

void etcd_txn_resp_release(struct etcd_txn_resp *r)
{
    size_t i;

    if (!r)
        return;
    for (i = 0; i < r->n; i++) {
        etcd_range_resp_release(&r->ops[i].range);
        if (r->ops[i].txn) {
            etcd_txn_resp_release(r->ops[i].txn);
            hp_free(r->ops[i].txn);
        }
    }
    hp_free(r->ops);
    memset(r, 0, sizeof(*r));
}

static hp_rc parse_txn(const json_t *j, struct etcd_txn_resp *out)
{
    const json_t *resps = json_object_get(j, "responses"), *op;
    hp_rc rc;
    size_t i;

    memset(out, 0, sizeof(*out));
    out->succeeded = json_is_true(json_object_get(j, "succeeded"));
    rc = etcd_json_int(json_object_get(j, "header"), "revision", &out->revision);
    if (rc || !resps)
        return rc;
    if (!json_is_array(resps))
        return HP_ERR_PROTOCOL;
    out->ops = hp_calloc(json_array_size(resps) ? json_array_size(resps) : 1, sizeof(*out->ops));
    if (!out->ops)
        return HP_ERR_NOMEM;
    json_array_foreach(resps, i, op)
    {
        struct etcd_op_resp *d = &out->ops[i];
        const json_t *v;

        out->n = i + 1;
        if ((v = json_object_get(op, "response_put"))) {
            d->type = ETCD_OP_PUT;
        } else if ((v = json_object_get(op, "response_delete_range"))) {
            d->type = ETCD_OP_DELETE;
            rc = etcd_json_int(v, "deleted", &d->deleted);
        } else if ((v = json_object_get(op, "response_range"))) {
            d->type = ETCD_OP_RANGE;
            rc = etcd_range_parse(v, &d->range);
        } else if ((v = json_object_get(op, "response_txn"))) {
            d->type = ETCD_OP_TXN;
            d->txn = hp_calloc(1, sizeof(*d->txn));
            rc = d->txn ? parse_txn(v, d->txn) : HP_ERR_NOMEM;
        } else {
            rc = HP_ERR_PROTOCOL;
        }
        if (rc)
            break;
    }
    if (rc)
        etcd_txn_resp_release(out);
    return rc;
}

hp_rc etcd_txn_commit(struct etcd_client *c, struct hp_ctx *ctx, const struct etcd_txn *t,
                      struct etcd_txn_resp *out, struct hp_err *err)
{
    json_t *resp = NULL;
    char *body;
    size_t len;
    hp_rc rc;

    if (etcd_client_is_grpc(c)) {
        struct pb_writer w;
        struct grpc_result res;

        pb_writer_init(&w);
        rc = etcd_client_pb(c, ctx, "/etcdserverpb.KV/Txn", &w,
                            etcd_pb_encode_txn(&w, etcd_txn_describe(t), err), true, &res, err);
        if (!rc && etcd_pb_decode_txn(res.msg, res.msg_len, out, err))
            /* processed, but we cannot tell whether the compares held: indeterminate */
            rc = hp_err_set(err, HP_ERR_UNKNOWN_OUTCOME,
                            "etcd txn answer could not be read: outcome unknown");
        grpc_result_release(&res);
        return rc;
    }
    if (etcd_txn_json(t, &body, &len))
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory encoding an etcd txn");
    rc = etcd_client_call_text(c, ctx, "/v3/kv/txn", body, len, true, &resp, err);
    hp_free(body);
    if (rc)
        return rc;
    rc = parse_txn(resp, out);
    json_decref(resp);
    if (rc) /* processed, but we cannot tell whether the compares held: indeterminate */
        return hp_err_set(err, HP_ERR_UNKNOWN_OUTCOME,
                          "etcd txn answer could not be read (%s): outcome unknown",
                          hp_rc_name(rc));
    return HP_OK;
}
