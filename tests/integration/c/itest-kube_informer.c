/* itest-kube_informer.c - the informer against the REAL kube-apiserver (started by
 * tests/integration/test-kube-client.sh). Environment: HP_KUBECONFIG (direct), HP_KC_PROXY (the
 * same apiserver through toxiproxy proxy HP_TOXI_PROXY at HP_TOXI_API). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <pthread.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/kube_informer.h"
#include "itest_util.h"

#define HI_PATH "/apis/hostpatrol.io/v1alpha1/namespaces/default/hostinspections"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char seen_log[4096][80]; /* "TYPE key" per event */
static int n_seen;

static void on_event(void *arg, enum kube_event type, const char *key, json_t *obj)
{
    (void)arg;
    (void)obj;
    pthread_mutex_lock(&mu);
    if (n_seen < 4096)
        snprintf(seen_log[n_seen++], sizeof(seen_log[0]), "%s %s", kube_event_name(type), key);
    pthread_mutex_unlock(&mu);
}

/* count: events whose text is exactly s */
static int count(const char *s)
{
    int n = 0;

    pthread_mutex_lock(&mu);
    for (int i = 0; i < n_seen; i++)
        n += !strcmp(seen_log[i], s);
    pthread_mutex_unlock(&mu);
    return n;
}

static bool eventually_count(const char *s, int want, int seconds)
{
    for (int i = 0; i < seconds * 10; i++) {
        if (count(s) == want)
            return true;
        usleep(100 * 1000);
    }
    return false;
}

static void hi(struct kube_client *c, const char *method, const char *name, const char *body)
{
    char path[256], doc[1024];
    struct hp_err err = {0};
    json_t *j = NULL;
    hp_rc rc;

    if (!strcmp(method, "POST")) {
        snprintf(path, sizeof(path), "%s", HI_PATH);
        snprintf(doc, sizeof(doc),
                 "{\"apiVersion\":\"hostpatrol.io/v1alpha1\",\"kind\":\"HostInspection\","
                 "\"metadata\":{\"name\":\"%s\"},\"spec\":{\"checks\":[{\"name\":\"ssh\","
                 "\"tcp\":{\"port\":22}}]}}",
                 name);
        j = json_loads(doc, 0, NULL);
    } else {
        snprintf(path, sizeof(path), "%s/%s", HI_PATH, name);
        j = body ? json_loads(body, 0, NULL) : NULL;
    }
    rc = kube_request(c, NULL, method, path, j,
                      !strcmp(method, "PATCH") ? "application/merge-patch+json" : NULL, NULL, NULL,
                      &err);
    json_decref(j);
    if (rc)
        fail_msg("%s %s: %s", method, name, err.msg);
}

static struct kube_informer *start(struct kube_client *c, int64_t stall_ms, int64_t watch_s)
{
    struct kube_informer_config cfg = {.client = c,
                                       .path = HI_PATH,
                                       .page_size = 2, /* several pages */
                                       .stall_ms = stall_ms,
                                       .watch_timeout_s = watch_s,
                                       .on_event = on_event};
    struct kube_informer *inf = NULL;
    struct hp_err err = {0};

    assert_int_equal(kube_informer_start(&cfg, &inf, &err), HP_OK);
    for (int i = 0; i < 100 && !kube_informer_ready(inf, 10000); i++)
        usleep(100 * 1000);
    assert_true(kube_informer_ready(inf, 10000));
    return inf;
}

/* same_as_server: the cache holds exactly what a LIST returns, at the same resourceVersions */
static bool same_as_server(struct kube_informer *inf, struct kube_client *c)
{
    struct hp_err err = {0};
    json_t *list = NULL, *item;
    size_t i, n;
    bool same;

    if (kube_request(c, NULL, "GET", HI_PATH, NULL, NULL, &list, NULL, &err))
        return false;
    n = json_array_size(json_object_get(list, "items"));
    same = n == kube_informer_size(inf);
    json_array_foreach(json_object_get(list, "items"), i, item)
    {
        const json_t *md = json_object_get(item, "metadata");
        char key[300];
        json_t *mine;

        snprintf(key, sizeof(key), "default/%s", json_string_value(json_object_get(md, "name")));
        mine = kube_informer_get(inf, key);
        same = same && mine &&
               !strcmp(json_string_value(
                           json_object_get(json_object_get(mine, "metadata"), "resourceVersion")),
                       json_string_value(json_object_get(md, "resourceVersion")));
        json_decref(mine);
    }
    json_decref(list);
    return same;
}

static void events_follow_changes_across_watches(void **state)
{
    struct kube_client *c = itest_kube_client("HP_KUBECONFIG");
    struct kube_informer_stats st;
    struct kube_informer *inf;
    char name[64], ev[128];
    int i;

    (void)state;
    for (i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "pre-%d-%d", getpid(), i);
        hi(c, "POST", name, NULL);
    }
    inf = start(c, 0, 2); /* the server ends every watch after 2 s */
    for (i = 0; i < 3; i++) {
        snprintf(ev, sizeof(ev), "ADDED default/pre-%d-%d", getpid(), i);
        assert_int_equal(count(ev), 1);
    }
    /* changes spread over several watches: each must be seen exactly once */
    for (i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "live-%d-%d", getpid(), i);
        hi(c, "POST", name, NULL);
        usleep(600 * 1000);
    }
    snprintf(name, sizeof(name), "pre-%d-0", getpid());
    hi(c, "PATCH", name, "{\"spec\":{\"suspend\":true}}");
    snprintf(name, sizeof(name), "pre-%d-1", getpid());
    hi(c, "DELETE", name, NULL);
    for (i = 0; i < 10; i++) {
        snprintf(ev, sizeof(ev), "ADDED default/live-%d-%d", getpid(), i);
        if (!eventually_count(ev, 1, 10))
            fail_msg("%s seen %d times", ev, count(ev));
    }
    snprintf(ev, sizeof(ev), "MODIFIED default/pre-%d-0", getpid());
    assert_true(eventually_count(ev, 1, 10));
    snprintf(ev, sizeof(ev), "DELETED default/pre-%d-1", getpid());
    assert_true(eventually_count(ev, 1, 10));
    kube_informer_stats(inf, &st);
    print_message("# informer: %llu lists, %llu watches, %llu events\n",
                  (unsigned long long)st.lists, (unsigned long long)st.watches,
                  (unsigned long long)st.events);
    assert_true(st.watches >= 3);
    assert_true(same_as_server(inf, c));
    kube_informer_stop(inf);
    kube_client_free(c);
}

/* The watch is cut (proxy down) while objects change; after the cut the cache equals the
 * server's state again, deletions made during the cut included. */
static void cut_watch_resumes_without_missing_a_change(void **state)
{
    struct kube_client *direct = itest_kube_client("HP_KUBECONFIG"),
                       *via = itest_kube_client("HP_KC_PROXY");
    struct kube_informer *inf = start(via, 0, 300);
    char path[256], name[64], ev[128];

    (void)state;
    snprintf(path, sizeof(path), "/proxies/%s", getenv("HP_TOXI_PROXY"));
    itest_toxi("POST", path, "{\"enabled\":false}");
    snprintf(name, sizeof(name), "cut-%d-a", getpid());
    hi(direct, "POST", name, NULL);
    snprintf(name, sizeof(name), "live-%d-3", getpid());
    hi(direct, "DELETE", name, NULL);
    snprintf(name, sizeof(name), "live-%d-4", getpid());
    hi(direct, "PATCH", name, "{\"spec\":{\"suspend\":true}}");
    sleep(2);
    itest_toxi("POST", path, "{\"enabled\":true}");
    for (int i = 0; i < 300 && !same_as_server(inf, direct); i++)
        usleep(100 * 1000);
    assert_true(same_as_server(inf, direct));
    snprintf(ev, sizeof(ev), "DELETED default/live-%d-3", getpid());
    assert_true(eventually_count(ev, 1, 5)); /* reported once, by the relist after the cut */
    kube_informer_stop(inf);
    kube_client_free(via);
    kube_client_free(direct);
}

/* A watch that goes silent (a stalled link) is cut by the stall detector and restarted. */
static void stalled_watch_is_detected_and_restarted(void **state)
{
    struct kube_client *direct = itest_kube_client("HP_KUBECONFIG"),
                       *via = itest_kube_client("HP_KC_PROXY");
    struct kube_informer *inf = start(via, 1500, 300);
    struct kube_informer_stats st;
    char path[256], name[64], ev[128];

    (void)state;
    snprintf(path, sizeof(path), "/proxies/%s/toxics", getenv("HP_TOXI_PROXY"));
    itest_toxi("POST", path,
               "{\"name\":\"stall\",\"type\":\"timeout\",\"stream\":\"downstream\","
               "\"attributes\":{\"timeout\":0}}");
    sleep(3);
    snprintf(path, sizeof(path), "/proxies/%s/toxics/stall", getenv("HP_TOXI_PROXY"));
    itest_toxi("DELETE", path, NULL);
    snprintf(name, sizeof(name), "stall-%d", getpid());
    hi(direct, "POST", name, NULL);
    snprintf(ev, sizeof(ev), "ADDED default/%s", name);
    assert_true(eventually_count(ev, 1, 20));
    kube_informer_stats(inf, &st);
    print_message("# stall: %llu stalls detected\n", (unsigned long long)st.stalls);
    assert_true(st.stalls >= 1);
    kube_informer_stop(inf);
    kube_client_free(via);
    kube_client_free(direct);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(events_follow_changes_across_watches),
        cmocka_unit_test(cut_watch_resumes_without_missing_a_change),
        cmocka_unit_test(stalled_watch_is_detected_and_restarted),
    };
    int rc;

    hp_alloc_install();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
