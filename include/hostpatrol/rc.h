/*
 * rc.h - the one return-code type of hostpatrol, and the caller-owned error detail.
 *
 * Every fallible function returns an hp_rc: 0 (HP_OK) is success, anything else is an error
 * class. Detail (HTTP status, server message, the field that was wrong) goes into a
 * struct hp_err that the CALLER owns and passes down; library modules never print and never
 * keep error detail in shared state.
 *
 * Pattern:
 *     hp_rc rc = f(..., &err);
 *     if (rc)
 *         goto out;
 *
 * Thread-safety: all functions here are reentrant; an hp_err must not be shared between
 * threads without the caller's own lock.
 */
#ifndef HOSTPATROL_RC_H
#define HOSTPATROL_RC_H

#include <stddef.h>

#define HP_WUR          __attribute__((warn_unused_result))
#define HP_PRINTF(f, a) __attribute__((format(printf, f, a)))

typedef enum hp_rc {
    HP_OK = 0,
    HP_ERR_NOMEM,           /* an allocation failed */
    HP_ERR_INVALID,         /* bad input: a flag, a field, a value (hp_err.field names it) */
    HP_ERR_NOTFOUND,        /* the object or key does not exist */
    HP_ERR_CONFLICT,        /* optimistic-concurrency conflict, compare failed */
    HP_ERR_GONE,            /* a resourceVersion or revision is too old (410, compacted) */
    HP_ERR_TIMEOUT,         /* a deadline passed before a definite answer */
    HP_ERR_CANCELED,        /* the context was cancelled */
    HP_ERR_UNAVAILABLE,     /* the peer could not be reached; nothing was sent */
    HP_ERR_UNKNOWN_OUTCOME, /* a write may or may not have been applied */
    HP_ERR_AUTH,            /* authentication or authorisation refused */
    HP_ERR_PROTOCOL,        /* the peer answered something we cannot parse */
    HP_ERR_IO,              /* a local file or socket error */
    HP_ERR_FULL,            /* a bounded queue or buffer is full */
    HP_ERR_FENCED,          /* a newer fencing epoch exists */
    HP_ERR_INTERNAL,        /* a broken invariant: a bug */
    HP_RC__COUNT
} hp_rc;

/* hp_rc_name: stable lower-case name of rc ("ok", "nomem", "invalid", ...). Never NULL;
 * an out-of-range value gives "unknown". Returned string is static (borrowed). */
const char *hp_rc_name(hp_rc rc);

#define HP_ERR_FIELD_MAX 128
#define HP_ERR_MSG_MAX   512

/* Caller-owned error detail. Zero-initialise (or hp_err_clear) before use. */
struct hp_err {
    hp_rc rc;                     /* the class of the first error recorded */
    long status;                  /* protocol status (HTTP code) when there is one, else 0 */
    char field[HP_ERR_FIELD_MAX]; /* the input field or flag at fault, "" when none */
    char msg[HP_ERR_MSG_MAX];     /* a human-readable sentence, truncated to fit */
};

/* hp_err_clear: reset e to "no error". e may be NULL. */
void hp_err_clear(struct hp_err *e);

/* hp_err_set: record rc and a printf-style message in e (e may be NULL) and return rc, so a
 * caller can write `return hp_err_set(err, HP_ERR_INVALID, "...")`. The message is truncated
 * to HP_ERR_MSG_MAX-1 bytes. An existing field and status are kept. */
hp_rc hp_err_set(struct hp_err *e, hp_rc rc, const char *fmt, ...) HP_PRINTF(3, 4);

/* hp_err_field: like hp_err_set, and names the input field (flag, JSON path) at fault. */
hp_rc hp_err_field(struct hp_err *e, hp_rc rc, const char *field, const char *fmt, ...)
    HP_PRINTF(4, 5);

#endif
