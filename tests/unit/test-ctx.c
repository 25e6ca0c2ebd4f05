/* test-ctx.c - unit tests of controller/util/ctx.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/ctx.h"

static void null_context_never_ends(void **state)
{
    (void)state;
    assert_int_equal(hp_ctx_err(NULL), HP_OK);
    assert_true(hp_ctx_remaining_ms(NULL) == INT64_MAX);
    assert_int_equal(hp_ctx_poll_timeout(NULL), -1);
    assert_int_equal(hp_ctx_fd(NULL), -1);
    hp_ctx_cancel(NULL);
    hp_ctx_free(NULL);
}

static void deadline_passes(void **state)
{
    struct hp_ctx *c;

    (void)state;
    assert_int_equal(hp_ctx_new(NULL, 30, &c), HP_OK);
    assert_int_equal(hp_ctx_err(c), HP_OK);
    assert_true(hp_ctx_remaining_ms(c) <= 30 && hp_ctx_remaining_ms(c) > 0);
    /* sleeping longer than the deadline ends at the deadline with TIMEOUT */
    assert_int_equal(hp_ctx_sleep(c, 10000), HP_ERR_TIMEOUT);
    assert_int_equal(hp_ctx_err(c), HP_ERR_TIMEOUT);
    assert_true(hp_now_ns() >= hp_ctx_deadline_ns(c));
    assert_int_equal(hp_ctx_remaining_ms(c), 0);
    assert_int_equal(hp_ctx_call_timeout_ms(c, 0, 0), -1);
    hp_ctx_free(c);
}

/* hp_ctx_err_at: the same answer as hp_ctx_err at the instant given; cancellation wins */
static void err_at_uses_the_instant_given(void **state)
{
    struct hp_ctx *c, *none;
    int64_t d;

    (void)state;
    assert_int_equal(hp_ctx_new(NULL, 60000, &c), HP_OK);
    assert_int_equal(hp_ctx_new(NULL, HP_CTX_NO_TIMEOUT, &none), HP_OK);
    d = hp_ctx_deadline_ns(c);
    assert_int_equal(hp_ctx_err_at(NULL, INT64_MAX), HP_OK);
    assert_int_equal(hp_ctx_err_at(c, d - 1), HP_OK);
    assert_int_equal(hp_ctx_err_at(c, d), HP_ERR_TIMEOUT);
    assert_int_equal(hp_ctx_err(c), HP_OK); /* the clock itself is a minute before it */
    assert_int_equal(hp_ctx_err_at(none, INT64_MAX), HP_OK);
    hp_ctx_cancel(c);
    assert_int_equal(hp_ctx_err_at(c, d - 1), HP_ERR_CANCELED);
    assert_int_equal(hp_ctx_err_at(c, d), HP_ERR_CANCELED);
    hp_ctx_free(c);
    hp_ctx_free(none);
}

static void child_deadline_is_the_earlier(void **state)
{
    struct hp_ctx *p, *shorter, *longer, *none;

    (void)state;
    assert_int_equal(hp_ctx_new(NULL, 5000, &p), HP_OK);
    assert_int_equal(hp_ctx_new(p, 1000, &shorter), HP_OK);
    assert_int_equal(hp_ctx_new(p, 60000, &longer), HP_OK);
    assert_int_equal(hp_ctx_new(p, HP_CTX_NO_TIMEOUT, &none), HP_OK);
    assert_true(hp_ctx_deadline_ns(shorter) < hp_ctx_deadline_ns(p));
    assert_true(hp_ctx_deadline_ns(longer) == hp_ctx_deadline_ns(p));
    assert_true(hp_ctx_deadline_ns(none) == hp_ctx_deadline_ns(p));
    hp_ctx_free(shorter);
    hp_ctx_free(longer);
    hp_ctx_free(none);
    hp_ctx_free(p);
}

static void cancel_reaches_all_descendants_not_ancestors(void **state)
{
    struct hp_ctx *root, *mid, *leaf, *sibling;

    (void)state;
    assert_int_equal(hp_ctx_new(NULL, HP_CTX_NO_TIMEOUT, &root), HP_OK);
    assert_int_equal(hp_ctx_new(root, HP_CTX_NO_TIMEOUT, &mid), HP_OK);
    assert_int_equal(hp_ctx_new(mid, HP_CTX_NO_TIMEOUT, &leaf), HP_OK);
    assert_int_equal(hp_ctx_new(root, HP_CTX_NO_TIMEOUT, &sibling), HP_OK);
    hp_ctx_cancel(mid);
    assert_int_equal(hp_ctx_err(mid), HP_ERR_CANCELED);
    assert_int_equal(hp_ctx_err(leaf), HP_ERR_CANCELED);
    assert_int_equal(hp_ctx_err(root), HP_OK);
    assert_int_equal(hp_ctx_err(sibling), HP_OK);
    hp_ctx_cancel(mid); /* idempotent */
    hp_ctx_free(leaf);
    hp_ctx_free(mid);
    hp_ctx_free(sibling);
    hp_ctx_free(root);
}

static void born_under_a_cancelled_parent_is_cancelled(void **state)
{
    struct hp_ctx *p, *c;
    struct pollfd pfd;

    (void)state;
    assert_int_equal(hp_ctx_new(NULL, HP_CTX_NO_TIMEOUT, &p), HP_OK);
    hp_ctx_cancel(p);
    assert_int_equal(hp_ctx_new(p, 1000, &c), HP_OK);
    assert_int_equal(hp_ctx_err(c), HP_ERR_CANCELED);
    /* its fd, created after the cancel, is readable */
    pfd = (struct pollfd){.fd = hp_ctx_fd(c), .events = POLLIN};
    assert_true(pfd.fd >= 0);
    assert_int_equal(poll(&pfd, 1, 0), 1);
    hp_ctx_free(c);
    hp_ctx_free(p);
}

struct canceller {
    struct hp_ctx *c;
    int delay_ms;
};

static void *cancel_later(void *arg)
{
    struct canceller *k = arg;

    usleep((useconds_t)k->delay_ms * 1000);
    hp_ctx_cancel(k->c);
    return NULL;
}

/* A wait with a far deadline returns CANCELED when another thread cancels an ancestor. */
static void wait_wakes_on_cancel_from_another_thread(void **state)
{
    struct hp_ctx *root, *child;
    struct canceller k;
    pthread_t t;
    int fds[2], n;
    struct pollfd pfd;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(hp_ctx_new(NULL, HP_CTX_NO_TIMEOUT, &root), HP_OK);
    assert_int_equal(hp_ctx_new(root, 600000, &child), HP_OK);
    k = (struct canceller){.c = root, .delay_ms = 50};
    assert_int_equal(pthread_create(&t, NULL, cancel_later, &k), 0);
    pfd = (struct pollfd){.fd = fds[0], .events = POLLIN};
    assert_int_equal(hp_ctx_poll(child, &pfd, 1, &n), HP_ERR_CANCELED);
    pthread_join(t, NULL);
    assert_int_equal(hp_ctx_sleep(child, 600000), HP_ERR_CANCELED);
    hp_ctx_free(child);
    hp_ctx_free(root);
    close(fds[0]);
    close(fds[1]);
}

static void poll_reports_ready_fds(void **state)
{
    struct hp_ctx *c;
    int fds[2], n;
    struct pollfd pfd;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(hp_ctx_new(NULL, 5000, &c), HP_OK);
    pfd = (struct pollfd){.fd = fds[0], .events = POLLIN};
    assert_int_equal(hp_ctx_poll(c, &pfd, 1, &n), HP_OK);
    assert_int_equal(n, 1);
    assert_true(pfd.revents & POLLIN);
    hp_ctx_free(c);
    close(fds[0]);
    close(fds[1]);
}

static void child_outlives_a_freed_parent_reference(void **state)
{
    struct hp_ctx *p, *c;

    (void)state;
    assert_int_equal(hp_ctx_new(NULL, 10000, &p), HP_OK);
    assert_int_equal(hp_ctx_new(p, HP_CTX_NO_TIMEOUT, &c), HP_OK);
    hp_ctx_free(p); /* the child's reference keeps the parent alive */
    assert_true(hp_ctx_deadline_ns(c) != INT64_MAX);
    assert_int_equal(hp_ctx_err(c), HP_OK);
    hp_ctx_free(c); /* frees both: ASan reports a leak otherwise */
}

static void call_timeout_leaves_headroom(void **state)
{
    struct hp_ctx *c;
    int64_t t;

    (void)state;
    assert_int_equal(hp_ctx_new(NULL, 1000, &c), HP_OK);
    t = hp_ctx_call_timeout_ms(c, 100, 0);
    assert_true(t > 800 && t <= 900);
    assert_int_equal(hp_ctx_call_timeout_ms(c, 100, 250), 250);
    assert_int_equal(hp_ctx_call_timeout_ms(c, 5000, 0), -1);
    assert_int_equal(hp_ctx_call_timeout_ms(NULL, 100, 0), 0);
    assert_int_equal(hp_ctx_call_timeout_ms(NULL, 100, 300), 300);
    hp_ctx_free(c);
}

static void new_fails_cleanly_without_memory(void **state)
{
    struct hp_ctx *p, *c = (struct hp_ctx *)1;

    (void)state;
    assert_int_equal(hp_ctx_new(NULL, 1000, &p), HP_OK);
    hp_alloc_fail_after(0);
    assert_int_equal(hp_ctx_new(p, 1000, &c), HP_ERR_NOMEM);
    hp_alloc_fail_reset();
    assert_null(c);
    hp_ctx_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(null_context_never_ends),
        cmocka_unit_test(deadline_passes),
        cmocka_unit_test(err_at_uses_the_instant_given),
        cmocka_unit_test(child_deadline_is_the_earlier),
        cmocka_unit_test(cancel_reaches_all_descendants_not_ancestors),
        cmocka_unit_test(born_under_a_cancelled_parent_is_cancelled),
        cmocka_unit_test(wait_wakes_on_cancel_from_another_thread),
        cmocka_unit_test(poll_reports_ready_fds),
        cmocka_unit_test(child_outlives_a_freed_parent_reference),
        cmocka_unit_test(call_timeout_leaves_headroom),
        cmocka_unit_test(new_fails_cleanly_without_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
