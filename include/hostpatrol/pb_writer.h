/*
 * pb_writer.h - protobuf wire-format encoding into a growable byte buffer.
 *
 * What it writes: field tags (field number << 3 | wire type), varints (an int64 is written as its
 * two's-complement uint64: a negative one takes 10 bytes, as protobuf's int64 does; no zigzag),
 * length-delimited bytes, and nested messages whose length is back-patched when they end. It
 * writes exactly what it is told, in the order it is told: proto3's "omit the default value" is
 * the caller's decision (etcd_pb.c makes it field by field), and so is field order (protoc
 * writes fields in field-number order; a caller that wants the same bytes does the same).
 *
 * Errors: the only failure is running out of memory (or a message over 2^32 - 1 bytes, which a
 * varint length could carry but no gRPC frame can). It is recorded once; every later call is a
 * no-op, and pb_writer_error() reports it at the end, so an encoder needs no check per field.
 *
 * Invariants: the bytes (an hp_buf limited to PB_MESSAGE_MAX) only grow, except by
 * pb_writer_release and pb_writer_take. A writer belongs to one thread at a time.
 */
#ifndef HOSTPATROL_PB_WRITER_H
#define HOSTPATROL_PB_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/buf.h"
#include "hostpatrol/rc.h"

enum pb_wire {
    PB_WIRE_VARINT = 0,
    PB_WIRE_FIXED64 = 1,
    PB_WIRE_LEN = 2,
    PB_WIRE_SGROUP = 3, /* groups (deprecated): never written, refused when read */
    PB_WIRE_EGROUP = 4,
    PB_WIRE_FIXED32 = 5
};

#define PB_FIELD_MAX   ((1u << 29) - 1) /* the largest field number protobuf allows */
#define PB_MESSAGE_MAX 0xffffffffu      /* the largest message a gRPC frame can carry */

struct pb_writer {
    struct hp_buf out; /* the bytes (owned by the writer): read them with pb_writer_data */
    bool failed;       /* a caller's bug (a bad field number or mark): every later call is a
                        * no-op, as after out's own failure (no memory, over PB_MESSAGE_MAX) */
};

/* pb_writer_init: an empty writer (no allocation). */
void pb_writer_init(struct pb_writer *w);
/* pb_writer_release: free the buffer; w is empty again. NULL allowed. */
void pb_writer_release(struct pb_writer *w);

/* pb_writer_error: HP_ERR_NOMEM when any earlier call failed, else HP_OK. */
hp_rc pb_writer_error(const struct pb_writer *w) HP_WUR;

/* pb_writer_data / pb_writer_len: the bytes written so far (borrowed, valid until the next call
 * on w; never NULL) and how many. */
const unsigned char *pb_writer_data(const struct pb_writer *w);
size_t pb_writer_len(const struct pb_writer *w);

/* pb_writer_take: hand the bytes over: *out (owned by the caller, hp_free; NULL when nothing was
 * written) and *len; w is empty again. HP_ERR_NOMEM (and w released, *out NULL) when the writer
 * failed. */
hp_rc pb_writer_take(struct pb_writer *w, unsigned char **out, size_t *len) HP_WUR;

/* pb_writer_reserve: room for about n more bytes, allocated at once (a hint: a message written
 * after it is not moved again as it grows). Above PB_MESSAGE_MAX, or out of memory, it does
 * nothing: the writes themselves then fail as they would have. */
void pb_writer_reserve(struct pb_writer *w, size_t n);

/* pb_writer_raw: append n bytes (borrowed) as they are, no tag: e.g. a gRPC frame's 5-byte
 * prefix, patched once the message after it is written. */
void pb_writer_raw(struct pb_writer *w, const void *p, size_t n);

/* pb_writer_varint: field `field` (1..PB_FIELD_MAX) as a varint with value v, always written
 * (also when v == 0). An int64 or bool is passed as (uint64_t)v. */
void pb_writer_varint(struct pb_writer *w, uint32_t field, uint64_t v);

/* pb_writer_bytes: field `field` length-delimited with the n bytes at p (borrowed; p may be NULL
 * when n == 0), always written (also when n == 0). */
void pb_writer_bytes(struct pb_writer *w, uint32_t field, const void *p, size_t n);

/* pb_writer_bytes_space: like pb_writer_bytes, but the n bytes are left for the caller to fill:
 * returns where they go (borrowed, valid until the next call on w), or NULL when the writer has
 * failed. */
unsigned char *pb_writer_bytes_space(struct pb_writer *w, uint32_t field, size_t n);

/* pb_writer_begin / pb_writer_end: a nested message as field `field`. begin writes the tag and
 * returns a mark; the message's fields follow; end (with that mark) writes its length in front
 * of them. Nesting is a stack: end the inner message before the outer one. */
size_t pb_writer_begin(struct pb_writer *w, uint32_t field);
void pb_writer_end(struct pb_writer *w, size_t mark);

/* pb_varint_size: the bytes a varint of value v takes (1..10). */
size_t pb_varint_size(uint64_t v);

#endif
