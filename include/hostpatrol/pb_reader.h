/*
 * pb_reader.h - a cursor over one protobuf message in borrowed bytes.
 *
 * pb_reader_next() reads one field at a time: its number, wire type, and its value (a varint,
 * a fixed32/fixed64 as a number, or a view of a length-delimited payload). It never reads
 * outside [buf, buf + len): every varint, fixed width and length is checked against the bytes
 * left before it is used. Refused with HP_ERR_PROTOCOL (and a message naming the message, the
 * byte offset from the start of the outermost buffer and what was wrong): a varint longer than
 * 10 bytes or overflowing 64 bits, a tag over 32 bits, field number 0, wire types 3/4 (groups)
 * and 6/7, a length or fixed width beyond the bytes left.
 *
 * Unknown fields: every field is consumed whole, whatever its number, so a decoder skips a field
 * it does not know simply by not looking at it (wire types 0, 1, 2 and 5).
 *
 * Typed accessors (pb_reader_int64, pb_reader_bool, pb_reader_bytes) check the wire type of a
 * known field: a known field with another wire type is HP_ERR_PROTOCOL, never reinterpreted.
 *
 * Nested messages: pb_reader_sub() opens a length-delimited field as a message with depth + 1;
 * beyond PB_DEPTH_MAX levels it refuses (HP_ERR_PROTOCOL), which bounds a recursive decoder.
 *
 * Ownership: a reader and its fields borrow the caller's bytes; nothing here allocates.
 * Thread-safety: a reader belongs to one thread at a time.
 */
#ifndef HOSTPATROL_PB_READER_H
#define HOSTPATROL_PB_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/pb_writer.h"
#include "hostpatrol/rc.h"

#define PB_DEPTH_MAX 64

struct pb_reader {
    const unsigned char *base; /* the outermost buffer (for offsets in messages) */
    const unsigned char *p;    /* the next byte to read */
    const unsigned char *end;  /* one past the message's last byte */
    const char *name;          /* the message's name in messages (borrowed, static) */
    unsigned depth;            /* 0 for the outermost message */
};

struct pb_field {
    uint32_t num;      /* 1..PB_FIELD_MAX; 0: the message has ended */
    enum pb_wire type; /* PB_WIRE_VARINT, _FIXED64, _LEN or _FIXED32 */
    uint64_t value;    /* VARINT, FIXED64, FIXED32: the value */
    const void *data;  /* LEN: the payload (borrowed from the reader's buffer) */
    size_t len;        /* LEN: its length */
    size_t offset;     /* the tag's offset from the start of the outermost buffer */
};

/* pb_reader_init: a reader over the message in buf[0..len) (borrowed; NULL when len == 0),
 * named `name` (borrowed; a static string such as "RangeResponse") in error messages. */
void pb_reader_init(struct pb_reader *r, const void *buf, size_t len, const char *name);

/* pb_reader_next: read the next field into *f. HP_OK with f->num == 0 at the end of the
 * message; HP_ERR_PROTOCOL (err filled, f->num == 0) when the bytes are malformed; the reader
 * then stays at the bad field. */
hp_rc pb_reader_next(struct pb_reader *r, struct pb_field *f, struct hp_err *err) HP_WUR;

/* pb_reader_sub: open field f (read from r, wire type LEN) as a nested message named `name`
 * (borrowed, static). HP_ERR_PROTOCOL when f is not length-delimited or the nesting is deeper
 * than PB_DEPTH_MAX. */
hp_rc pb_reader_sub(const struct pb_reader *r, const struct pb_field *f, const char *name,
                    struct pb_reader *sub, struct hp_err *err) HP_WUR;

/* pb_reader_int64 / pb_reader_bool: the varint field f of message r named `field` (for messages).
 * An int64 / uint64 takes the varint's 64 bits as they are (a uint64 member ID keeps its bit
 * pattern); a bool is any non-zero value. HP_ERR_PROTOCOL when f is not a varint. */
hp_rc pb_reader_int64(const struct pb_reader *r, const struct pb_field *f, const char *field,
                      int64_t *out, struct hp_err *err) HP_WUR;
hp_rc pb_reader_bool(const struct pb_reader *r, const struct pb_field *f, const char *field,
                     bool *out, struct hp_err *err) HP_WUR;

/* pb_reader_bytes: the payload of the length-delimited field f (*p borrowed from r's buffer).
 * HP_ERR_PROTOCOL when f is not length-delimited. */
hp_rc pb_reader_bytes(const struct pb_reader *r, const struct pb_field *f, const char *field,
                      const void **p, size_t *len, struct hp_err *err) HP_WUR;

#endif
