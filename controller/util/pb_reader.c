/* pb_reader.c - protobuf wire-format decoding (see include/hostpatrol/pb_reader.h). */
#include "hostpatrol/pb_reader.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const unsigned char empty[1];

void pb_reader_init(struct pb_reader *r, const void *buf, size_t len, const char *name)
{
    const unsigned char *b = buf && len ? buf : empty; /* never arithmetic on NULL */

    r->base = b;
    r->p = b;
    r->end = b + (buf && len ? len : 0);
    r->name = name ? name : "message";
    r->depth = 0;
}

static size_t offset_of(const struct pb_reader *r, const unsigned char *at)
{
    return (size_t)(at - r->base);
}

/* bad: HP_ERR_PROTOCOL with "protobuf <message> at byte <offset>: <what>" */
static hp_rc bad(const struct pb_reader *r, const unsigned char *at, struct hp_err *err,
                 const char *fmt, ...) HP_PRINTF(4, 5);
static hp_rc bad(const struct pb_reader *r, const unsigned char *at, struct hp_err *err,
                 const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return hp_err_set(err, HP_ERR_PROTOCOL, "protobuf %s at byte %zu: %s", r->name,
                      offset_of(r, at), what);
}

static size_t left(const struct pb_reader *r)
{
    return (size_t)(r->end - r->p);
}

/* read_varint: a varint at r->p (at most 10 bytes, at most 64 bits); r->p moves past it */
static hp_rc read_varint(struct pb_reader *r, const char *what, uint64_t *out, struct hp_err *err)
{
    const unsigned char *q = r->p;
    uint64_t v = 0;
    unsigned i;

    for (i = 0; i < 10; i++) {
        unsigned char b;

        if (q == r->end)
            return bad(r, r->p, err, "%s: varint cut off by the end of the message", what);
        b = *q++;
        if (i == 9 && (b & 0x80))
            return bad(r, r->p, err, "%s: varint longer than 10 bytes", what);
        if (i == 9 && b > 1)
            return bad(r, r->p, err, "%s: varint overflows 64 bits", what);
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80))
            break;
    }
    r->p = q;
    *out = v;
    return HP_OK;
}

static uint64_t load_le(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;

    while (n--)
        v = v << 8 | p[n];
    return v;
}

static hp_rc read_field(struct pb_reader *r, struct pb_field *f, struct hp_err *err)
{
    const unsigned char *start = r->p;
    uint64_t tag, n;
    hp_rc rc;

    rc = read_varint(r, "tag", &tag, err);
    if (rc)
        return rc;
    if (tag >> 3 > PB_FIELD_MAX)
        return bad(r, start, err, "field number %llu is beyond %u", (unsigned long long)(tag >> 3),
                   PB_FIELD_MAX);
    if (tag >> 3 == 0)
        return bad(r, start, err, "field number 0");
    f->num = (uint32_t)(tag >> 3);
    f->type = (enum pb_wire)(tag & 7);
    f->offset = offset_of(r, start);
    switch (tag & 7) {
    case PB_WIRE_VARINT:
        return read_varint(r, "varint field", &f->value, err);
    case PB_WIRE_FIXED64:
    case PB_WIRE_FIXED32:
        n = (tag & 7) == PB_WIRE_FIXED64 ? 8 : 4;
        if (left(r) < n)
            return bad(r, start, err, "field %u: a fixed%u needs %u bytes, %zu left", f->num,
                       (unsigned)n * 8, (unsigned)n, left(r));
        f->value = load_le(r->p, (unsigned)n);
        r->p += n;
        return HP_OK;
    case PB_WIRE_LEN:
        rc = read_varint(r, "length", &n, err);
        if (rc)
            return rc;
        if (n > left(r))
            return bad(r, start, err, "field %u: length %llu is beyond the %zu bytes left", f->num,
                       (unsigned long long)n, left(r));
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return HP_OK;
    case PB_WIRE_SGROUP:
    case PB_WIRE_EGROUP:
        return bad(r, start, err, "field %u: groups (wire type %u) are not supported", f->num,
                   (unsigned)(tag & 7));
    default:
        return bad(r, start, err, "field %u: invalid wire type %u", f->num, (unsigned)(tag & 7));
    }
}

hp_rc pb_reader_next(struct pb_reader *r, struct pb_field *f, struct hp_err *err)
{
    const unsigned char *start = r->p;
    hp_rc rc;

    memset(f, 0, sizeof(*f));
    if (r->p == r->end)
        return HP_OK;
    rc = read_field(r, f, err);
    if (rc) {
        r->p = start;
        memset(f, 0, sizeof(*f));
    }
    return rc;
}

static hp_rc wrong_type(const struct pb_reader *r, const struct pb_field *f, const char *field,
                        const char *want, struct hp_err *err)
{
    return bad(r, r->base + f->offset, err, "field %u (%s) has wire type %u, not %s", f->num, field,
               (unsigned)f->type, want);
}

hp_rc pb_reader_sub(const struct pb_reader *r, const struct pb_field *f, const char *name,
                    struct pb_reader *sub, struct hp_err *err)
{
    if (f->type != PB_WIRE_LEN)
        return wrong_type(r, f, name, "a message", err);
    if (r->depth + 1 > PB_DEPTH_MAX)
        return bad(r, r->base + f->offset, err, "field %u (%s): messages nested deeper than %d",
                   f->num, name, PB_DEPTH_MAX);
    sub->base = r->base;
    sub->p = f->len ? f->data : r->base + f->offset; /* an empty message: no bytes to read */
    sub->end = sub->p + f->len;
    sub->name = name;
    sub->depth = r->depth + 1;
    return HP_OK;
}

hp_rc pb_reader_int64(const struct pb_reader *r, const struct pb_field *f, const char *field,
                      int64_t *out, struct hp_err *err)
{
    if (f->type != PB_WIRE_VARINT)
        return wrong_type(r, f, field, "a varint", err);
    *out = (int64_t)f->value;
    return HP_OK;
}

hp_rc pb_reader_bool(const struct pb_reader *r, const struct pb_field *f, const char *field,
                     bool *out, struct hp_err *err)
{
    if (f->type != PB_WIRE_VARINT)
        return wrong_type(r, f, field, "a varint", err);
    *out = f->value != 0;
    return HP_OK;
}

hp_rc pb_reader_bytes(const struct pb_reader *r, const struct pb_field *f, const char *field,
                      const void **p, size_t *len, struct hp_err *err)
{
    if (f->type != PB_WIRE_LEN)
        return wrong_type(r, f, field, "length-delimited", err);
    *p = f->data;
    *len = f->len;
    return HP_OK;
}
