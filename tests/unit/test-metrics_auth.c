/* test-metrics_auth.c - unit tests of controller/server/metrics_auth.c against recorded API
 * server answers (tests/unit/replay_server.h; the real apiserver is in
 * tests/integration/test-metrics-auth.sh): what a TokenReview and a SubjectAccessReview answer
 * means (200, 401 with the server's reason, 403 naming user and path or namespace), the
 * controller's own RBAC missing (500), a silent server (503 at the deadline), a check never
 * blocking (0 while pending, then the notify), verdicts served from the cache without a new
 * request, no token in any message. One recorded body serves both reviews: each reads its own
 * fields of "status". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <stdatomic.h>
#include <time.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/kube_client.h"
#include "hostpatrol/metrics_auth.h"
#include "replay_server.h"

static struct replay_server srv;
static atomic_int notified;

static void on_notify(void *arg)
{
    (void)arg;
    atomic_fetch_add(&notified, 1);
}

static int start_server(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof(srv));
    srv.mode = REPLAY_ANSWER;
    srv.status = 201;
    return replay_start(&srv);
}

static int stop_server(void **state)
{
    (void)state;
    replay_stop(&srv);
    return 0;
}

struct fixture {
    struct kube_client *kube;
    struct metrics_auth *auth;
};

static void fixture_start(struct fixture *f, int64_t timeout_ms)
{
    char server[64];
    struct kube_config kc = {.source = "test", .namespace_ = "default"};
    struct metrics_auth_config ac = {.timeout_ms = timeout_ms};
    struct hp_err err = {0};

    snprintf(server, sizeof(server), "http://127.0.0.1:%d", srv.port);
    kc.server = server;
    assert_int_equal(kube_client_new(&kc, &f->kube, &err), HP_OK);
    ac.kube = f->kube;
    assert_int_equal(metrics_auth_new(&ac, &f->auth, &err), HP_OK);
    atomic_store(&notified, 0);
    metrics_auth_set_notify(f->auth, on_notify, NULL);
}

static void fixture_stop(struct fixture *f)
{
    metrics_auth_set_notify(f->auth, NULL, NULL);
    metrics_auth_free(f->auth);
    kube_client_free(f->kube);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* verdict: ask until the check answers (5 s at most); the status, msg filled. */
static int verdict(struct fixture *f, const char *token, const char *path, const char *ns,
                   char *msg, size_t n)
{
    int64_t until = now_ms() + 5000;
    int v;

    while (!(v = metrics_auth_check(f->auth, token, path, ns, msg, n)) && now_ms() < until)
        usleep(5000);
    return v;
}

#define ALLOWED                                                                                    \
    "{\"status\":{\"authenticated\":true,\"user\":{\"username\":\"alice\",\"groups\":[\"g\"]},"    \
    "\"allowed\":true}}"
#define DENIED                                                                                     \
    "{\"status\":{\"authenticated\":true,\"user\":{\"username\":\"alice\"},\"allowed\":false}}"

static void allowed_then_served_from_the_cache(void **state)
{
    struct fixture f;
    struct metrics_auth_stats st;
    char msg[256];

    (void)state;
    snprintf(srv.body, sizeof(srv.body), ALLOWED);
    srv.requests = 0;
    fixture_start(&f, 2000);
    /* never blocks: the first answer is "pending" */
    assert_int_equal(metrics_auth_check(f.auth, "tok-1", "/metrics", NULL, msg, sizeof(msg)), 0);
    assert_int_equal(verdict(&f, "tok-1", "/metrics", NULL, msg, sizeof(msg)), 200);
    /* the worker notifies after it has cached the verdict: the check may see it first */
    for (int64_t until = now_ms() + 2000; !atomic_load(&notified) && now_ms() < until;)
        usleep(1000);
    assert_true(atomic_load(&notified) >= 1);
    assert_int_equal(srv.requests, 2); /* a TokenReview, a SubjectAccessReview */
    /* cached: no new request, for the path and for authentication alone */
    for (int i = 0; i < 10; i++)
        assert_int_equal(metrics_auth_check(f.auth, "tok-1", "/metrics", NULL, msg, sizeof(msg)),
                         200);
    assert_int_equal(metrics_auth_check(f.auth, "tok-1", NULL, NULL, msg, sizeof(msg)), 200);
    assert_int_equal(srv.requests, 2);
    /* a namespace is another question: one more SubjectAccessReview, no TokenReview */
    assert_int_equal(verdict(&f, "tok-1", NULL, "ns-a", msg, sizeof(msg)), 200);
    assert_int_equal(srv.requests, 3);
    metrics_auth_stats(f.auth, &st);
    assert_int_equal(st.token_reviews, 1);
    assert_int_equal(st.access_reviews, 2);
    assert_true(st.hits >= 11);
    assert_int_equal(st.review_errors, 0);
    fixture_stop(&f);
}

static void no_token_and_unauthenticated_are_401(void **state)
{
    struct fixture f;
    char msg[256];

    (void)state;
    snprintf(srv.body, sizeof(srv.body),
             "{\"status\":{\"authenticated\":false,\"error\":\"token has expired\"}}");
    srv.requests = 0;
    fixture_start(&f, 2000);
    assert_int_equal(metrics_auth_check(f.auth, NULL, "/metrics", NULL, msg, sizeof(msg)), 401);
    assert_int_equal(metrics_auth_check(f.auth, "", "/metrics", NULL, msg, sizeof(msg)), 401);
    assert_non_null(strstr(msg, "bearer token"));
    assert_int_equal(srv.requests, 0);
    assert_int_equal(verdict(&f, "secret-token-xyz", "/metrics", NULL, msg, sizeof(msg)), 401);
    assert_non_null(strstr(msg, "token has expired"));
    assert_null(strstr(msg, "secret-token-xyz"));
    assert_int_equal(srv.requests, 1); /* no SubjectAccessReview for an unknown user */
    fixture_stop(&f);
}

static void not_allowed_is_403_naming_user_and_object(void **state)
{
    struct fixture f;
    char msg[256];

    (void)state;
    snprintf(srv.body, sizeof(srv.body), DENIED);
    fixture_start(&f, 2000);
    assert_int_equal(verdict(&f, "tok-2", "/metrics", NULL, msg, sizeof(msg)), 403);
    assert_string_equal(msg, "Forbidden: user \"alice\" may not get path \"/metrics\"");
    assert_int_equal(verdict(&f, "tok-2", NULL, "team-b", msg, sizeof(msg)), 403);
    assert_string_equal(msg, "Forbidden: user \"alice\" may not get hostinspections.hostpatrol.io "
                             "in namespace \"team-b\"");
    /* authentication alone passes */
    assert_int_equal(verdict(&f, "tok-2", NULL, NULL, msg, sizeof(msg)), 200);
    fixture_stop(&f);
}

static void missing_rbac_is_500_and_silence_is_503(void **state)
{
    struct fixture f;
    char msg[256];
    int64_t t0;

    (void)state;
    srv.status = 403;
    snprintf(srv.body, sizeof(srv.body),
             "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Forbidden\",\"code\":403,"
             "\"message\":\"tokenreviews.authentication.k8s.io is forbidden\"}");
    fixture_start(&f, 2000);
    assert_int_equal(verdict(&f, "tok-3", "/metrics", NULL, msg, sizeof(msg)), 500);
    assert_non_null(strstr(msg, "may not create tokenreviews"));
    fixture_stop(&f);
    srv.status = 201;

    srv.mode = REPLAY_SILENT;
    fixture_start(&f, 300);
    t0 = now_ms();
    assert_int_equal(verdict(&f, "tok-4", "/metrics", NULL, msg, sizeof(msg)), 503);
    assert_true(now_ms() - t0 >= 250);
    assert_true(now_ms() - t0 < 3000);
    assert_non_null(strstr(msg, "tokenreviews failed"));
    fixture_stop(&f);
    srv.mode = REPLAY_ANSWER;
}

static void free_with_reviews_in_flight_is_prompt(void **state)
{
    struct fixture f;
    char msg[256], tok[32];
    int64_t t0;

    (void)state;
    srv.mode = REPLAY_SILENT;
    fixture_start(&f, 30000);
    for (int i = 0; i < 20; i++) {
        snprintf(tok, sizeof(tok), "tok-%d", i);
        assert_int_equal(metrics_auth_check(f.auth, tok, "/metrics", NULL, msg, sizeof(msg)), 0);
    }
    usleep(100000);
    t0 = now_ms();
    fixture_stop(&f); /* cancels the reviews: no 30 s wait; queued jobs freed (ASan) */
    assert_true(now_ms() - t0 < 2000);
    srv.mode = REPLAY_ANSWER;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allowed_then_served_from_the_cache),
        cmocka_unit_test(no_token_and_unauthenticated_are_401),
        cmocka_unit_test(not_allowed_is_403_naming_user_and_object),
        cmocka_unit_test(missing_rbac_is_500_and_silence_is_503),
        cmocka_unit_test(free_with_reviews_in_flight_is_prompt),
    };

    return cmocka_run_group_tests(tests, start_server, stop_server);
}
