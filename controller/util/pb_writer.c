/* pb_writer.c - protobuf wire-format encoding (see include/hostpatrol/pb_writer.h). */
#include "hostpatrol/pb_writer.h"

#include <string.h>

#include "hostpatrol/alloc.h"

void pb_writer_init(struct pb_writer *w)
{
    memset(w, 0, sizeof(*w));
}

void pb_writer_release(struct pb_writer *w)
{
    if (!w)
        return;
    hp_free(w->buf);
    memset(w, 0, sizeof(*w));
}

hp_rc pb_writer_error(const struct pb_writer *w)
{
    return w->failed ? HP_ERR_NOMEM : HP_OK;
}

hp_rc pb_writer_take(struct pb_writer *w, unsigned char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (w->failed) {
        pb_writer_release(w);
        return HP_ERR_NOMEM;
    }
    *out = w->buf;
    *len = w->len;
    memset(w, 0, sizeof(*w));
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

/* reserve: room for `more` bytes after len; false (and the writer failed) when there is none */
static bool reserve(struct pb_writer *w, size_t more)
{
    size_t cap;
    unsigned char *p;

    if (w->failed)
        return false;
    if (more > PB_MESSAGE_MAX || w->len + more > PB_MESSAGE_MAX) {
        w->failed = true;
        return false;
    }
    if (w->len + more <= w->cap)
        return true;
    cap = w->cap ? w->cap : 256;
    while (cap < w->len + more)
        cap *= 2;
    p = hp_realloc(w->buf, cap);
    if (!p) {
        w->failed = true;
        return false;
    }
    w->buf = p;
    w->cap = cap;
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
    if (reserve(w, 10))
        w->len += put_varint(w->buf + w->len, v);
}

static void append_tag(struct pb_writer *w, uint32_t field, enum pb_wire type)
{
    if (field == 0 || field > PB_FIELD_MAX) { /* a caller's bug: never write a bad tag */
        w->failed = true;
        return;
    }
    append_varint(w, (uint64_t)field << 3 | (uint64_t)type);
}

void pb_writer_raw(struct pb_writer *w, const void *p, size_t n)
{
    if (!n || !reserve(w, n))
        return;
    memcpy(w->buf + w->len, p, n);
    w->len += n;
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
    if (!reserve(w, n))
        return NULL;
    dst = w->buf + w->len;
    w->len += n;
    return dst;
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

    append_tag(w, field, PB_WIRE_LEN);
    if (!reserve(w, 1))
        return 0;
    /* one byte for the length, the common case (a message under 128 bytes); pb_writer_end
     * makes room for more when it needs it */
    mark = w->len;
    w->buf[w->len++] = 0;
    return mark;
}

void pb_writer_end(struct pb_writer *w, size_t mark)
{
    size_t body, n;

    if (w->failed)
        return;
    if (mark >= w->len) { /* not a mark of this writer: a caller's bug */
        w->failed = true;
        return;
    }
    body = w->len - mark - 1;
    n = pb_varint_size(body);
    if (n > 1) {
        if (!reserve(w, n - 1))
            return;
        memmove(w->buf + mark + n, w->buf + mark + 1, body);
        w->len += n - 1;
    }
    put_varint(w->buf + mark, body);
}
