/* etcd_txn.c - txn builder and response parser (see include/hostpatrol/etcd_txn.h). */
#include "hostpatrol/etcd_txn.h"

#include <string.h>

#include "etcd/etcd_internal.h"
#include "hostpatrol/alloc.h"

struct etcd_txn {
    json_t *compare, *branch[2]; /* arrays; the builder owns one reference each */
    size_t bytes;                /* running size of the encoded body */
};

static const char *const target_names[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
static const char *const target_fields[] = {"version", "create_revision", "mod_revision", "value",
                                            "lease"};
static const char *const op_names[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};

hp_rc etcd_txn_new(struct etcd_txn **out)
{
    struct etcd_txn *t = hp_calloc(1, sizeof(*t));

    *out = NULL;
    if (!t)
        return HP_ERR_NOMEM;
    t->compare = json_array();
    t->branch[0] = json_array();
    t->branch[1] = json_array();
    if (!t->compare || !t->branch[0] || !t->branch[1]) {
        etcd_txn_free(t);
        return HP_ERR_NOMEM;
    }
    t->bytes = sizeof("{\"compare\":[],\"success\":[],\"failure\":[]}") - 1;
    *out = t;
    return HP_OK;
}

void etcd_txn_free(struct etcd_txn *t)
{
    if (!t)
        return;
    json_decref(t->compare);
    json_decref(t->branch[0]);
    json_decref(t->branch[1]);
    hp_free(t);
}

/* append: add item (taken) to arr, counting its encoded size. */
static hp_rc append(struct etcd_txn *t, json_t *arr, json_t *item)
{
    size_t n;

    if (!item)
        return HP_ERR_NOMEM;
    n = json_dumpb(item, NULL, 0, JSON_COMPACT);
    if (json_array_append_new(arr, item))
        return HP_ERR_NOMEM;
    t->bytes += n + (json_array_size(arr) > 1 ? 1 : 0);
    return HP_OK;
}

/* obj_bytes: {"key": b64(key)} plus one more field; NULL on NOMEM. */
static json_t *key_obj(const void *key, size_t key_len)
{
    json_t *o = json_object();

    if (!o || json_object_set_new(o, "key", etcd_json_bytes(key, key_len))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

hp_rc etcd_txn_compare_int(struct etcd_txn *t, const void *key, size_t key_len,
                           enum etcd_cmp_target target, enum etcd_cmp_op op, int64_t v)
{
    json_t *c;

    if (target == ETCD_CMP_VALUE || (unsigned)target > ETCD_CMP_LEASE || (unsigned)op > 3)
        return HP_ERR_INVALID;
    c = key_obj(key, key_len);
    if (!c || json_object_set_new(c, "target", json_string(target_names[target])) ||
        json_object_set_new(c, "result", json_string(op_names[op])) ||
        json_object_set_new(c, target_fields[target], json_integer(v))) {
        json_decref(c);
        return HP_ERR_NOMEM;
    }
    return append(t, t->compare, c);
}

hp_rc etcd_txn_compare_value(struct etcd_txn *t, const void *key, size_t key_len,
                             enum etcd_cmp_op op, const void *v, size_t v_len)
{
    json_t *c;

    if ((unsigned)op > 3)
        return HP_ERR_INVALID;
    c = key_obj(key, key_len);
    if (!c || json_object_set_new(c, "target", json_string("VALUE")) ||
        json_object_set_new(c, "result", json_string(op_names[op])) ||
        json_object_set_new(c, "value", etcd_json_bytes(v, v_len))) {
        json_decref(c);
        return HP_ERR_NOMEM;
    }
    return append(t, t->compare, c);
}

/* wrap: {"<name>": inner} with inner taken. */
static json_t *wrap(const char *name, json_t *inner)
{
    json_t *o;

    if (!inner)
        return NULL;
    o = json_object();
    if (!o || json_object_set_new(o, name, inner)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

hp_rc etcd_txn_put(struct etcd_txn *t, enum etcd_branch b, const void *key, size_t key_len,
                   const void *value, size_t value_len, int64_t lease)
{
    json_t *p = key_obj(key, key_len);

    if (!p || json_object_set_new(p, "value", etcd_json_bytes(value, value_len)) ||
        (lease && json_object_set_new(p, "lease", json_integer(lease)))) {
        json_decref(p);
        return HP_ERR_NOMEM;
    }
    return append(t, t->branch[b != ETCD_SUCCESS], wrap("request_put", p));
}

hp_rc etcd_txn_delete(struct etcd_txn *t, enum etcd_branch b, const void *key, size_t key_len,
                      bool prefix)
{
    struct etcd_range_req r = {.key = key, .key_len = key_len, .prefix = prefix};

    return append(t, t->branch[b != ETCD_SUCCESS],
                  wrap("request_delete_range", etcd_range_json(&r)));
}

hp_rc etcd_txn_get(struct etcd_txn *t, enum etcd_branch b, const void *key, size_t key_len,
                   int64_t revision)
{
    struct etcd_range_req r = {.key = key, .key_len = key_len, .revision = revision};

    return append(t, t->branch[b != ETCD_SUCCESS], wrap("request_range", etcd_range_json(&r)));
}

static json_t *txn_json(const struct etcd_txn *t)
{
    return json_pack("{s:O, s:O, s:O}", "compare", t->compare, "success", t->branch[0], "failure",
                     t->branch[1]);
}

hp_rc etcd_txn_nest(struct etcd_txn *t, enum etcd_branch b, struct etcd_txn *sub)
{
    hp_rc rc = append(t, t->branch[b != ETCD_SUCCESS], wrap("request_txn", txn_json(sub)));

    etcd_txn_free(sub);
    return rc;
}

size_t etcd_txn_compares(const struct etcd_txn *t)
{
    return json_array_size(t->compare);
}

size_t etcd_txn_ops(const struct etcd_txn *t, enum etcd_branch b)
{
    return json_array_size(t->branch[b != ETCD_SUCCESS]);
}

size_t etcd_txn_bytes(const struct etcd_txn *t)
{
    return t->bytes;
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

hp_rc etcd_txn_commit(struct etcd_client *c, struct hp_ctx *ctx, const struct etcd_txn *t,
                      struct etcd_txn_resp *out, struct hp_err *err)
{
    json_t *body = txn_json(t), *resp = NULL;
    hp_rc rc;

    if (!body)
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory encoding an etcd txn");
    rc = etcd_client_call(c, ctx, "/v3/kv/txn", body, true, &resp, err);
    json_decref(body);
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
