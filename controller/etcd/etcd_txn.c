/* etcd_txn.c - txn builder and response parser (see include/hostpatrol/etcd_txn.h). */
#include "hostpatrol/etcd_txn.h"

#include <inttypes.h>
#include <string.h>

#include "etcd/etcd_internal.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/b64.h"

/* The request is built as JSON text directly (no jansson tree): one growing buffer per list,
 * items comma-separated; etcd_txn_bytes is then exact. */
struct tbuf {
    char *p;
    size_t len, cap, items;
};

struct etcd_txn {
    struct tbuf compare, branch[2];
    int failed; /* an append ran out of memory: commit refuses */
};

static const char *const target_names[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
static const char *const target_fields[] = {"version", "create_revision", "mod_revision", "value",
                                            "lease"};
static const char *const op_names[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};

hp_rc etcd_txn_new(struct etcd_txn **out)
{
    *out = hp_calloc(1, sizeof(**out));
    return *out ? HP_OK : HP_ERR_NOMEM;
}

void etcd_txn_free(struct etcd_txn *t)
{
    if (!t)
        return;
    hp_free(t->compare.p);
    hp_free(t->branch[0].p);
    hp_free(t->branch[1].p);
    hp_free(t);
}

static int tb_reserve(struct tbuf *b, size_t more)
{
    size_t cap;
    char *p;

    if (b->len + more + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    p = hp_realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int tb_put(struct tbuf *b, const char *s, size_t n)
{
    if (tb_reserve(b, n))
        return -1;
    if (!n) /* s may be NULL for an empty list */
        return 0;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int tb_str(struct tbuf *b, const char *s)
{
    return tb_put(b, s, strlen(s));
}

static int tb_b64(struct tbuf *b, const void *p, size_t n)
{
    size_t m = hp_b64_encoded_len(n);

    if (tb_reserve(b, m + 2))
        return -1;
    b->p[b->len++] = '"';
    b->len += hp_b64_encode(p, n, b->p + b->len);
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
    return 0;
}

static int tb_int(struct tbuf *b, int64_t v)
{
    char num[32];

    return tb_put(b, num, (size_t)snprintf(num, sizeof(num), "%" PRId64, v));
}

/* item_begin: the separator before a new item of list b */
static int item_begin(struct tbuf *b)
{
    return b->items++ ? tb_put(b, ",", 1) : 0;
}

static hp_rc done(struct etcd_txn *t, int bad)
{
    if (bad)
        t->failed = 1;
    return bad ? HP_ERR_NOMEM : HP_OK;
}

hp_rc etcd_txn_compare_int(struct etcd_txn *t, const void *key, size_t key_len,
                           enum etcd_cmp_target target, enum etcd_cmp_op op, int64_t v)
{
    struct tbuf *b = &t->compare;
    int bad;

    if (target == ETCD_CMP_VALUE || (unsigned)target > ETCD_CMP_LEASE || (unsigned)op > 3)
        return HP_ERR_INVALID;
    bad = item_begin(b) || tb_str(b, "{\"key\":") || tb_b64(b, key, key_len) ||
          tb_str(b, ",\"target\":\"") || tb_str(b, target_names[target]) ||
          tb_str(b, "\",\"result\":\"") || tb_str(b, op_names[op]) || tb_str(b, "\",\"") ||
          tb_str(b, target_fields[target]) || tb_str(b, "\":") || tb_int(b, v) || tb_str(b, "}");
    return done(t, bad);
}

hp_rc etcd_txn_compare_value(struct etcd_txn *t, const void *key, size_t key_len,
                             enum etcd_cmp_op op, const void *v, size_t v_len)
{
    struct tbuf *b = &t->compare;
    int bad;

    if ((unsigned)op > 3)
        return HP_ERR_INVALID;
    bad = item_begin(b) || tb_str(b, "{\"key\":") || tb_b64(b, key, key_len) ||
          tb_str(b, ",\"target\":\"VALUE\",\"result\":\"") || tb_str(b, op_names[op]) ||
          tb_str(b, "\",\"value\":") || tb_b64(b, v, v_len) || tb_str(b, "}");
    return done(t, bad);
}

static struct tbuf *branch(struct etcd_txn *t, enum etcd_branch b)
{
    return &t->branch[b != ETCD_SUCCESS];
}

hp_rc etcd_txn_put(struct etcd_txn *t, enum etcd_branch br, const void *key, size_t key_len,
                   const void *value, size_t value_len, int64_t lease)
{
    struct tbuf *b = branch(t, br);
    int bad;

    bad = item_begin(b) || tb_str(b, "{\"request_put\":{\"key\":") || tb_b64(b, key, key_len) ||
          tb_str(b, ",\"value\":") || tb_b64(b, value, value_len) ||
          (lease && (tb_str(b, ",\"lease\":") || tb_int(b, lease))) || tb_str(b, "}}");
    return done(t, bad);
}

hp_rc etcd_txn_delete(struct etcd_txn *t, enum etcd_branch br, const void *key, size_t key_len,
                      bool prefix)
{
    struct tbuf *b = branch(t, br);
    char *end = NULL;
    size_t end_len = 0;
    int bad;

    if (prefix && etcd_prefix_end(key, key_len, &end, &end_len))
        return done(t, 1);
    bad = item_begin(b) || tb_str(b, "{\"request_delete_range\":{\"key\":") ||
          tb_b64(b, key, key_len) ||
          (prefix && (tb_str(b, ",\"range_end\":") || tb_b64(b, end, end_len))) || tb_str(b, "}}");
    hp_free(end);
    return done(t, bad);
}

hp_rc etcd_txn_get(struct etcd_txn *t, enum etcd_branch br, const void *key, size_t key_len,
                   int64_t revision)
{
    struct tbuf *b = branch(t, br);
    int bad;

    bad = item_begin(b) || tb_str(b, "{\"request_range\":{\"key\":") || tb_b64(b, key, key_len) ||
          (revision && (tb_str(b, ",\"revision\":") || tb_int(b, revision))) || tb_str(b, "}}");
    return done(t, bad);
}

/* txn_text: the whole request into b */
static int txn_text(const struct etcd_txn *t, struct tbuf *b)
{
    return tb_str(b, "{\"compare\":[") || tb_put(b, t->compare.p, t->compare.len) ||
           tb_str(b, "],\"success\":[") || tb_put(b, t->branch[0].p, t->branch[0].len) ||
           tb_str(b, "],\"failure\":[") || tb_put(b, t->branch[1].p, t->branch[1].len) ||
           tb_str(b, "]}");
}

hp_rc etcd_txn_nest(struct etcd_txn *t, enum etcd_branch br, struct etcd_txn *sub)
{
    struct tbuf *b = branch(t, br);
    int bad = sub->failed;

    bad = bad || item_begin(b) || tb_str(b, "{\"request_txn\":") || txn_text(sub, b) ||
          tb_str(b, "}");
    etcd_txn_free(sub);
    return done(t, bad);
}

size_t etcd_txn_compares(const struct etcd_txn *t)
{
    return t->compare.items;
}

size_t etcd_txn_ops(const struct etcd_txn *t, enum etcd_branch b)
{
    return t->branch[b != ETCD_SUCCESS].items;
}

size_t etcd_txn_bytes(const struct etcd_txn *t)
{
    return sizeof("{\"compare\":[],\"success\":[],\"failure\":[]}") - 1 + t->compare.len +
           t->branch[0].len + t->branch[1].len;
}

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

hp_rc etcd_txn_json(const struct etcd_txn *t, char **out, size_t *len)
{
    struct tbuf body = {0};

    *out = NULL;
    *len = 0;
    if (t->failed || txn_text(t, &body)) {
        hp_free(body.p);
        return HP_ERR_NOMEM;
    }
    *out = body.p;
    *len = body.len;
    return HP_OK;
}

hp_rc etcd_txn_commit(struct etcd_client *c, struct hp_ctx *ctx, const struct etcd_txn *t,
                      struct etcd_txn_resp *out, struct hp_err *err)
{
    struct tbuf body = {0};
    json_t *resp = NULL;
    hp_rc rc;

    if (t->failed || txn_text(t, &body)) {
        hp_free(body.p);
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory encoding an etcd txn");
    }
    rc = etcd_client_call_text(c, ctx, "/v3/kv/txn", body.p, body.len, true, &resp, err);
    hp_free(body.p);
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
