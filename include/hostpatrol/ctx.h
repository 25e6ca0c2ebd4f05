/*
 * ctx.h - context-style deadlines and cancellation (Go's context.Context, in C).
 *
 * A context carries an optional deadline and a cancelled flag. Contexts form a tree:
 *   - a child's deadline is the earlier of its parent's and its own;
 *   - cancelling a context cancels all its descendants, at once;
 *   - a context born under a cancelled parent is born cancelled.
 * Deadlines are on CLOCK_MONOTONIC: wall-clock jumps do not move them.
 *
 * Waiting: every wait in hostpatrol is a poll() over file descriptors bounded by the context.
 * hp_ctx_fd() gives an eventfd that becomes readable when the context is cancelled (explicitly
 * or through an ancestor); the deadline is enforced by the poll timeout (hp_ctx_poll_timeout).
 * libcurl waits use the same fd through curl_multi_poll's extra fds. hp_ctx_poll() and
 * hp_ctx_sleep() package the pattern.
 *
 * Ownership: hp_ctx_new returns an owned reference; hp_ctx_ref adds one; hp_ctx_free drops one
 * (NULL allowed). A child holds a reference to its parent, so a parent lives at least as long
 * as its children. A NULL context means "no deadline, never cancelled" everywhere.
 *
 * Thread-safety: every function may be called from any thread. One process-wide mutex guards
 * the tree links (parent/children) and the lazily-created fds; the cancelled state is atomic,
 * so hp_ctx_err() takes no lock.
 */
#ifndef HOSTPATROL_CTX_H
#define HOSTPATROL_CTX_H

#include <poll.h>
#include <stdint.h>

#include "hostpatrol/rc.h"

struct hp_ctx;

#define HP_CTX_NO_TIMEOUT (-1)

/* hp_ctx_new: a context under parent (NULL: a root) with its own timeout (ms from now;
 * HP_CTX_NO_TIMEOUT for none). *out is owned. Returns HP_ERR_NOMEM (and *out = NULL). */
hp_rc hp_ctx_new(struct hp_ctx *parent, int64_t timeout_ms, struct hp_ctx **out) HP_WUR;

/* hp_ctx_ref: one more reference to c (returned, for chaining). c may be NULL. */
struct hp_ctx *hp_ctx_ref(struct hp_ctx *c);

/* hp_ctx_free: drop one reference; the last one unlinks c from its parent. NULL allowed.
 * Freeing does not cancel: cancel first if descendants should stop. */
void hp_ctx_free(struct hp_ctx *c);

/* hp_ctx_cancel: cancel c and all its descendants (idempotent). NULL is a no-op. */
void hp_ctx_cancel(struct hp_ctx *c);

/* hp_ctx_err: HP_OK while live, HP_ERR_CANCELED once cancelled, HP_ERR_TIMEOUT once the
 * deadline has passed (cancellation wins when both hold). */
hp_rc hp_ctx_err(const struct hp_ctx *c);

/* hp_ctx_err_at: hp_ctx_err with the clock read by the caller (now_ns, CLOCK_MONOTONIC as
 * hp_now_ns), for a loop that checks many contexts at one instant. */
hp_rc hp_ctx_err_at(const struct hp_ctx *c, int64_t now_ns);

/* hp_ctx_deadline_ns: the deadline on CLOCK_MONOTONIC in ns, INT64_MAX for none. */
int64_t hp_ctx_deadline_ns(const struct hp_ctx *c);

/* hp_ctx_remaining_ms: ms left before the deadline (0 if passed or cancelled), INT64_MAX for
 * none. Rounded up, so a positive remainder under 1 ms reads as 1. */
int64_t hp_ctx_remaining_ms(const struct hp_ctx *c);

/* hp_ctx_call_timeout_ms: a per-call timeout for an outgoing request: the remaining time less
 * headroom_ms (so the caller still has time to act on the outcome), capped at cap_ms (cap_ms
 * <= 0: no cap; with no deadline and no cap, returns 0 meaning "none"). Returns -1 when less
 * than 1 ms would be left: the call must not be started. */
int64_t hp_ctx_call_timeout_ms(const struct hp_ctx *c, int64_t headroom_ms, int64_t cap_ms);

/* hp_ctx_poll_timeout: the poll() timeout (ms) that ends at the deadline, or -1 for none;
 * capped to INT32_MAX. */
int hp_ctx_poll_timeout(const struct hp_ctx *c);

/* hp_ctx_fd: an fd that polls readable (POLLIN) once c is cancelled; never read it. Created on
 * first use and owned by c. Returns -1 if it cannot be created (then poll with a timeout). */
int hp_ctx_fd(struct hp_ctx *c);

/* hp_ctx_poll: poll(fds, n) until an fd is ready, c is cancelled or its deadline passes.
 * Returns HP_OK with *nready > 0, HP_ERR_CANCELED / HP_ERR_TIMEOUT, or HP_ERR_IO. EINTR is
 * retried. fds is borrowed; n may be 0 (a pure wait). */
hp_rc hp_ctx_poll(struct hp_ctx *c, struct pollfd *fds, unsigned n, int *nready) HP_WUR;

/* hp_ctx_sleep: wait ms, ending early if c is cancelled or its deadline passes.
 * Returns HP_OK after the full sleep, else hp_ctx_err(c). */
hp_rc hp_ctx_sleep(struct hp_ctx *c, int64_t ms);

/* hp_now_ns: CLOCK_MONOTONIC in ns (the clock of every deadline). */
int64_t hp_now_ns(void);

#endif
