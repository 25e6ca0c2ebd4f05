/* ctx.c - deadlines and cancellation (see include/hostpatrol/ctx.h). */
#include "hostpatrol/ctx.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"

struct hp_ctx {
    atomic_int refs;
    atomic_int state;           /* HP_OK or HP_ERR_CANCELED; written under tree_lock */
    int64_t deadline_ns;        /* immutable after hp_ctx_new; INT64_MAX = none */
    struct hp_ctx *parent;      /* strong reference; immutable */
    struct hp_ctx *child_head;  /* tree_lock */
    struct hp_ctx *next, *prev; /* siblings under parent; tree_lock */
    int efd;                    /* tree_lock; -1 until hp_ctx_fd */
};

/* Guards: every ctx's child_head/next/prev, efd creation, and the transition to CANCELED
 * (so a child linked concurrently with a cancel is either seen by it or born cancelled). */
static pthread_mutex_t tree_lock = PTHREAD_MUTEX_INITIALIZER;

int64_t hp_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t add_sat(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    return a + b;
}

hp_rc hp_ctx_new(struct hp_ctx *parent, int64_t timeout_ms, struct hp_ctx **out)
{
    struct hp_ctx *c = hp_calloc(1, sizeof(*c));
    int64_t own = INT64_MAX;

    *out = NULL;
    if (!c)
        return HP_ERR_NOMEM;
    if (timeout_ms >= 0)
        own = add_sat(hp_now_ns(),
                      timeout_ms > INT64_MAX / 1000000 ? INT64_MAX : timeout_ms * 1000000);
    atomic_init(&c->refs, 1);
    atomic_init(&c->state, HP_OK);
    c->efd = -1;
    c->deadline_ns = own;
    if (parent) {
        c->parent = hp_ctx_ref(parent);
        if (parent->deadline_ns < c->deadline_ns)
            c->deadline_ns = parent->deadline_ns;
        pthread_mutex_lock(&tree_lock);
        if (atomic_load(&parent->state) != HP_OK)
            atomic_store(&c->state, HP_ERR_CANCELED);
        c->next = parent->child_head;
        if (c->next)
            c->next->prev = c;
        parent->child_head = c;
        pthread_mutex_unlock(&tree_lock);
    }
    *out = c;
    return HP_OK;
}

struct hp_ctx *hp_ctx_ref(struct hp_ctx *c)
{
    if (c)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

void hp_ctx_free(struct hp_ctx *c)
{
    struct hp_ctx *parent;

    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    /* refs reached 0: no child can exist (each holds a reference to us). */
    parent = c->parent;
    if (parent) {
        pthread_mutex_lock(&tree_lock);
        if (c->prev)
            c->prev->next = c->next;
        else
            parent->child_head = c->next;
        if (c->next)
            c->next->prev = c->prev;
        pthread_mutex_unlock(&tree_lock);
    }
    if (c->efd >= 0)
        close(c->efd);
    hp_free(c);
    hp_ctx_free(parent);
}

static void signal_fd(int fd)
{
    uint64_t one = 1;

    /* An eventfd write of 1 cannot block until the counter nears 2^64; EAGAIN is harmless. */
    if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
        /* nothing else to do: pollers still see the state through their timeout */
    }
}

/* cancel_locked: mark c and its subtree cancelled. Recursion depth = tree depth (shallow:
 * root -> run -> batch item). Caller holds tree_lock. */
static void cancel_locked(struct hp_ctx *c)
{
    struct hp_ctx *k;

    if (atomic_load(&c->state) == HP_OK) {
        atomic_store(&c->state, HP_ERR_CANCELED);
        signal_fd(c->efd);
    }
    for (k = c->child_head; k; k = k->next)
        cancel_locked(k);
}

void hp_ctx_cancel(struct hp_ctx *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&tree_lock);
    cancel_locked(c);
    pthread_mutex_unlock(&tree_lock);
}

hp_rc hp_ctx_err(const struct hp_ctx *c)
{
    if (!c)
        return HP_OK;
    if (atomic_load(&c->state) != HP_OK)
        return HP_ERR_CANCELED;
    if (c->deadline_ns != INT64_MAX && hp_now_ns() >= c->deadline_ns)
        return HP_ERR_TIMEOUT;
    return HP_OK;
}

hp_rc hp_ctx_err_at(const struct hp_ctx *c, int64_t now_ns)
{
    if (!c)
        return HP_OK;
    if (atomic_load(&c->state) != HP_OK)
        return HP_ERR_CANCELED;
    return c->deadline_ns != INT64_MAX && now_ns >= c->deadline_ns ? HP_ERR_TIMEOUT : HP_OK;
}

int64_t hp_ctx_deadline_ns(const struct hp_ctx *c)
{
    return c ? c->deadline_ns : INT64_MAX;
}

int64_t hp_ctx_remaining_ms(const struct hp_ctx *c)
{
    int64_t left;

    if (!c)
        return INT64_MAX;
    if (atomic_load(&c->state) != HP_OK)
        return 0;
    if (c->deadline_ns == INT64_MAX)
        return INT64_MAX;
    left = c->deadline_ns - hp_now_ns();
    if (left <= 0)
        return 0;
    return (left + 999999) / 1000000;
}

int64_t hp_ctx_call_timeout_ms(const struct hp_ctx *c, int64_t headroom_ms, int64_t cap_ms)
{
    int64_t left = hp_ctx_remaining_ms(c);

    if (left == INT64_MAX)
        return cap_ms > 0 ? cap_ms : 0;
    left -= headroom_ms > 0 ? headroom_ms : 0;
    if (left < 1)
        return -1;
    if (cap_ms > 0 && left > cap_ms)
        left = cap_ms;
    return left;
}

int hp_ctx_poll_timeout(const struct hp_ctx *c)
{
    int64_t left = hp_ctx_remaining_ms(c);

    if (left == INT64_MAX)
        return -1;
    return left > INT_MAX ? INT_MAX : (int)left;
}

int hp_ctx_fd(struct hp_ctx *c)
{
    int fd;

    if (!c)
        return -1;
    pthread_mutex_lock(&tree_lock);
    if (c->efd < 0) {
        c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->efd >= 0 && atomic_load(&c->state) != HP_OK)
            signal_fd(c->efd);
    }
    fd = c->efd;
    pthread_mutex_unlock(&tree_lock);
    return fd;
}

#define POLL_STACK_FDS 8

hp_rc hp_ctx_poll(struct hp_ctx *c, struct pollfd *fds, unsigned n, int *nready)
{
    struct pollfd stack[POLL_STACK_FDS + 1], *all = stack;
    int cfd = hp_ctx_fd(c);
    hp_rc rc = HP_OK;
    unsigned i, total = n;

    *nready = 0;
    if (n + 1 > POLL_STACK_FDS + 1) {
        all = hp_calloc(n + 1, sizeof(*all));
        if (!all)
            return HP_ERR_NOMEM;
    }
    for (i = 0; i < n; i++)
        all[i] = fds[i];
    if (cfd >= 0)
        all[total++] = (struct pollfd){.fd = cfd, .events = POLLIN};
    for (;;) {
        int timeout, r;

        rc = hp_ctx_err(c);
        if (rc)
            break;
        timeout = hp_ctx_poll_timeout(c);
        /* without an fd to watch for cancel, bound each wait so cancel is still noticed */
        if (cfd < 0 && (timeout < 0 || timeout > 100))
            timeout = 100;
        r = poll(all, total, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = HP_ERR_IO;
            break;
        }
        if (r == 0)
            continue; /* re-check the deadline: poll rounds to ms */
        if (cfd >= 0 && all[total - 1].revents) {
            rc = HP_ERR_CANCELED;
            break;
        }
        for (i = 0; i < n; i++)
            fds[i].revents = all[i].revents;
        *nready = r;
        break;
    }
    if (all != stack)
        hp_free(all);
    return rc;
}

hp_rc hp_ctx_sleep(struct hp_ctx *c, int64_t ms)
{
    struct hp_ctx *t;
    hp_rc rc;
    int n;

    rc = hp_ctx_new(c, ms, &t);
    if (rc)
        return rc;
    rc = hp_ctx_poll(t, NULL, 0, &n);
    hp_ctx_free(t);
    if (rc == HP_ERR_TIMEOUT) /* our own timer ran out: a full sleep, unless c's did too */
        return hp_ctx_err(c);
    return rc;
}
