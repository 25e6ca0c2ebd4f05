/* pb_writer.c - protobuf wire-format encoding (see include/hostpatrol/pb_writer.h). */
#include "hostpatrol/pb_writer.h"

#include <string.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/buf.h"

void pb_writer_init(struct pb_writer *w)
{
    hp_buf_init(&w->out, PB_MESSAGE_MAX);
    w->failed = false;
}

void pb_writer_release(struct pb_writer *w)
{
    if (!w)
        return;
    hp_buf_release(&w->out);
    w->failed = false;
}

hp_rc pb_writer_error(const struct pb_writer *w)
{
    return w->failed || hp_buf_error(&w->out) ? HP_ERR_NOMEM : HP_OK;
}

const unsigned char *pb_writer_data(const struct pb_writer *w)
{
    return (const unsigned char *)hp_buf_data(&w->out);
}

size_t pb_writer_len(const struct pb_writer *w)
{
    return hp_buf_len(&w->out);
}

hp_rc pb_writer_take(struct pb_writer *w, unsigned char **out, size_t *len)
{
    hp_rc rc = pb_writer_error(w);

    *out = NULL;
    *len = 0;
    if (rc || !hp_buf_len(&w->out)) { /* failed, or nothing written: nothing to hand over */
        pb_writer_release(w);
        return rc;
    }
    *out = (unsigned char *)hp_buf_detach(&w->out, len); /* bytes are held: never NULL */
    return HP_OK;
}

size_t pb_varint_size(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* space: n more bytes at the end for the caller to write (*at); false (and the writer failed)
 * when there is no room for them (memory, or PB_MESSAGE_MAX) */
static bool space(struct pb_writer *w, size_t n, unsigned char **at)
{
    char *p = NULL;

    if (w->failed || hp_buf_add_space(&w->out, n, &p))
        return false;
    *at = (unsigned char *)p;
    return true;
}

/* put_varint: v at dst (room for pb_varint_size(v) bytes); returns the bytes written */
static size_t put_varint(unsigned char *dst, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        dst[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    dst[n++] = (unsigned char)v;
    return n;
}

static void append_varint(struct pb_writer *w, uint64_t v)
{
    size_t len = hp_buf_len(&w->out);
    unsigned char *at;

    if (space(w, 10, &at))
        hp_buf_truncate(&w->out, len + put_varint(at, v));
}

static void append_tag(struct pb_writer *w, uint32_t field, enum pb_wire type)
{
    if (field == 0 || field > PB_FIELD_MAX) { /* a caller's bug: never write a bad tag */
        w->failed = true;
        return;
    }
    append_varint(w, (uint64_t)field << 3 | (uint64_t)type);
}

void pb_writer_reserve(struct pb_writer *w, size_t n)
{
    struct hp_buf probe;

    if (w->failed || n > PB_MESSAGE_MAX || hp_buf_len(&w->out) > PB_MESSAGE_MAX - n)
        return;
    probe = w->out; /* a failed reserve must not mark the writer's buffer failed */
    if (hp_buf_reserve(&probe, n) == HP_OK)
        w->out = probe;
}

void pb_writer_raw(struct pb_writer *w, const void *p, size_t n)
{
    unsigned char *at;

    if (n && space(w, n, &at))
        memcpy(at, p, n);
}

void pb_writer_varint(struct pb_writer *w, uint32_t field, uint64_t v)
{
    append_tag(w, field, PB_WIRE_VARINT);
    append_varint(w, v);
}

unsigned char *pb_writer_bytes_space(struct pb_writer *w, uint32_t field, size_t n)
{
    unsigned char *dst;

    append_tag(w, field, PB_WIRE_LEN);
    append_varint(w, n);
    return space(w, n, &dst) ? dst : NULL;
}

void pb_writer_bytes(struct pb_writer *w, uint32_t field, const void *p, size_t n)
{
    unsigned char *dst = pb_writer_bytes_space(w, field, n);

    if (dst && n)
        memcpy(dst, p, n);
}

size_t pb_writer_begin(struct pb_writer *w, uint32_t field)
{
    size_t mark;
    unsigned char *at;

    append_tag(w, field, PB_WIRE_LEN);
    /* one byte for the length, the common case (a message under 128 bytes); pb_writer_end
     * makes room for more when it needs it */
    mark = hp_buf_len(&w->out);
    if (!space(w, 1, &at))
        return 0;
    *at = 0;
    return mark;
}

void pb_writer_end(struct pb_writer *w, size_t mark)
{
    size_t body, n;
    unsigned char *at, *msg;

    if (pb_writer_error(w))
        return;
    if (mark >= hp_buf_len(&w->out)) { /* not a mark of this writer: a caller's bug */
        w->failed = true;
        return;
    }
    body = hp_buf_len(&w->out) - mark - 1;
    n = pb_varint_size(body);
    if (n > 1 && !space(w, n - 1, &at))
        return;
    msg = (unsigned char *)hp_buf_data(&w->out) + mark;
    if (n > 1)
        memmove(msg + n, msg + 1, body);
    put_varint(msg, body);
}
