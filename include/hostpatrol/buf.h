/*
 * buf.h - the one growable byte buffer of hostpatrol (git's strbuf, curl's dynbuf).
 *
 * What it is for: text or bytes assembled piece by piece (a request body, an answer read from
 * a socket, a Prometheus page, a selector), with the growth, its overflow checks and an
 * optional hard limit written once. Callers that bound what an untrusted peer may make them
 * hold give that bound as `max`.
 *
 * Invariants:
 *   - len <= the limit (max, or SIZE_MAX - 1 when max is 0);
 *   - data is NULL until the first allocation; after it, len < cap and data[len] == '\0',
 *     so the bytes are always a C string too (they may hold NULs of their own);
 *   - the first failure sticks: it is kept in err, and every later call that would add bytes
 *     is a no-op returning it, until hp_buf_reset or hp_buf_release. A failed call leaves the
 *     bytes as they were. So a caller may check each call, or append freely and ask
 *     hp_buf_error() once at the end (the appenders are not HP_WUR for that reason).
 *
 * Errors: HP_ERR_FULL when the bytes would pass the limit, HP_ERR_NOMEM when an allocation
 * fails; nothing else.
 *
 * Ownership: the bytes belong to the buffer; hp_buf_data lends them (valid until the next call
 * that changes the buffer); hp_buf_detach is the one way to take them over.
 *
 * Thread-safety: none inside; a buffer belongs to one thread at a time. Nothing here blocks.
 */
#ifndef HOSTPATROL_BUF_H
#define HOSTPATROL_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "hostpatrol/rc.h"

struct hp_buf {
    char *data; /* owned; NULL until the first allocation (read it with hp_buf_data) */
    size_t len; /* bytes held, the NUL after them excluded */
    size_t cap; /* bytes allocated */
    size_t max; /* the most len may reach; 0: no limit but memory */
    hp_rc err;  /* the first failure, HP_OK when none */
};

/* hp_buf_init: an empty buffer (no allocation) whose len may never pass max (0: no limit). */
void hp_buf_init(struct hp_buf *b, size_t max);
/* hp_buf_release: free the bytes; b is empty again, its error cleared, its limit kept. NULL
 * allowed. */
void hp_buf_release(struct hp_buf *b);
/* hp_buf_reset: empty b (len 0) and clear its error, keeping the allocation for reuse. */
void hp_buf_reset(struct hp_buf *b);

/* hp_buf_reserve: room for `more` bytes after len without another allocation. HP_ERR_FULL when
 * len + more would pass the limit, HP_ERR_NOMEM; b unchanged on error (and the error kept). */
hp_rc hp_buf_reserve(struct hp_buf *b, size_t more);
/* hp_buf_add: append n bytes of p (borrowed; may be NULL when n is 0). */
hp_rc hp_buf_add(struct hp_buf *b, const void *p, size_t n);
/* hp_buf_addstr: append the C string s (borrowed). */
hp_rc hp_buf_addstr(struct hp_buf *b, const char *s);
/* hp_buf_addch: append one byte. */
hp_rc hp_buf_addch(struct hp_buf *b, char c);
/* hp_buf_addf / hp_buf_vaddf: append printf-style text. A format error (vsnprintf < 0) is
 * reported as HP_ERR_NOMEM, the only cause glibc has for it with valid formats. */
hp_rc hp_buf_addf(struct hp_buf *b, const char *fmt, ...) HP_PRINTF(2, 3);
hp_rc hp_buf_vaddf(struct hp_buf *b, const char *fmt, va_list ap) HP_PRINTF(2, 0);
/* hp_buf_add_space: append n bytes left for the caller to write: *at (borrowed, valid until the
 * next call that changes b) points at them; len grows by n and data[len] is '\0'. Give back what
 * was not written with hp_buf_truncate. *at is NULL on error. */
hp_rc hp_buf_add_space(struct hp_buf *b, size_t n, char **at);

/* hp_buf_truncate: keep the first len bytes (a larger len changes nothing). */
void hp_buf_truncate(struct hp_buf *b, size_t len);
/* hp_buf_consume: drop the first n bytes (all of them when n >= len), moving the rest to the
 * front. */
void hp_buf_consume(struct hp_buf *b, size_t n);

/* hp_buf_data: the bytes, NUL-terminated (borrowed, see above). Never NULL: a buffer without an
 * allocation gives a static "" that must not be written. */
char *hp_buf_data(const struct hp_buf *b);
/* hp_buf_len: the bytes held. */
size_t hp_buf_len(const struct hp_buf *b);
/* hp_buf_error: the failure that stuck (HP_ERR_NOMEM or HP_ERR_FULL), HP_OK when none. */
hp_rc hp_buf_error(const struct hp_buf *b);

/* hp_buf_detach: take the bytes over: returns them NUL-terminated (owned by the caller: hp_free;
 * an empty buffer gives an allocated "") and their length in *len (may be NULL); b is empty
 * again, its limit kept. Returns NULL (*len 0, b released) when b holds a failure or "" cannot
 * be allocated. */
char *hp_buf_detach(struct hp_buf *b, size_t *len);

#endif
