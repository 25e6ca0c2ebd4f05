/* itest-kube_client.c - the Kubernetes client against the REAL kube-apiserver (started by
 * tests/integration/test-kube-client.sh). Environment: HP_KUBECONFIG (admin, client cert),
 * HP_KC_TOKEN (a ServiceAccount token without RBAC), HP_KC_TOKENFILE (+ HP_TOKEN_FILE, the file
 * it names, and HP_GOOD_TOKEN), HP_KC_EXEC / HP_KC_EXEC_EXPIRED (+ HP_EXEC_COUNT, a file the
 * plugin appends a line to per run). */
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

#include "hostpatrol/alloc.h"
#include "hostpatrol/kube_client.h"
#include "itest_util.h"

static json_t *get(struct kube_client *c, const char *path, hp_rc want, struct kube_status *st)
{
    struct hp_err err = {0};
    json_t *out = NULL;
    hp_rc rc = kube_request(c, NULL, "GET", path, NULL, NULL, &out, st, &err);

    if (rc != want)
        fail_msg("GET %s: %s (%s), want %s", path, hp_rc_name(rc), err.msg, hp_rc_name(want));
    return out;
}

static void version_and_namespace(void **state)
{
    struct kube_client *c = itest_kube_client("HP_KUBECONFIG");
    json_t *v = get(c, "/version", HP_OK, NULL);

    (void)state;
    assert_non_null(strstr(json_string_value(json_object_get(v, "gitVersion")), "v1.34."));
    assert_string_equal(kube_client_namespace(c), "default");
    json_decref(v);
    kube_client_free(c);
}

static void create_conflict_patch_notfound(void **state)
{
    struct kube_client *c = itest_kube_client("HP_KUBECONFIG");
    struct kube_status st;
    struct hp_err err = {0};
    char name[64], path[128];
    json_t *ns, *out = NULL, *patch;

    (void)state;
    snprintf(name, sizeof(name), "hp-itest-%d", getpid());
    ns = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace", "metadata",
                   "name", name);
    assert_int_equal(kube_request(c, NULL, "POST", "/api/v1/namespaces", ns, NULL, &out, &st, &err),
                     HP_OK);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(out, "metadata"), "name")), name);
    json_decref(out);
    assert_int_equal(kube_request(c, NULL, "POST", "/api/v1/namespaces", ns, NULL, NULL, &st, &err),
                     HP_ERR_CONFLICT);
    assert_int_equal(st.code, 409);
    assert_string_equal(st.reason, "AlreadyExists");
    assert_int_equal(err.status, 409);
    json_decref(ns);
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s", name);
    patch = json_pack("{s:{s:{s:s}}}", "metadata", "labels", "hostpatrol.io/test", "yes");
    assert_int_equal(kube_request(c, NULL, "PATCH", path, patch, "application/merge-patch+json",
                                  &out, &st, &err),
                     HP_OK);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(out, "metadata"), "labels"), "hostpatrol.io/test")),
        "yes");
    json_decref(out);
    json_decref(patch);
    get(c, "/api/v1/namespaces/does-not-exist-hp", HP_ERR_NOTFOUND, &st);
    assert_string_equal(st.reason, "NotFound");
    kube_client_free(c);
}

/* A spec CEL rejects comes back as 422 with the field cause and the rule's message. */
static void invalid_object_names_the_field(void **state)
{
    struct kube_client *c = itest_kube_client("HP_KUBECONFIG");
    struct kube_status st;
    struct hp_err err = {0};
    json_t *hi =
        json_loads("{\"apiVersion\":\"hostpatrol.io/v1alpha1\",\"kind\":\"HostInspection\","
                   "\"metadata\":{\"name\":\"bad\"},\"spec\":{\"interval\":\"5s\","
                   "\"timeout\":\"10s\",\"checks\":[{\"name\":\"x\",\"tcp\":{\"port\":22}}]}}",
                   0, NULL);

    (void)state;
    assert_int_equal(kube_request(c, NULL, "POST",
                                  "/apis/hostpatrol.io/v1alpha1/namespaces/default/hostinspections",
                                  hi, NULL, NULL, &st, &err),
                     HP_ERR_INVALID);
    assert_int_equal(st.code, 422);
    assert_string_equal(st.reason, "Invalid");
    assert_true(st.n_causes >= 1);
    assert_string_equal(err.field, "spec");
    assert_non_null(strstr(err.msg, "spec.timeout must be shorter than spec.interval"));
    json_decref(hi);
    kube_client_free(c);
}

static void service_account_token_is_forbidden_by_rbac(void **state)
{
    struct kube_client *c = itest_kube_client("HP_KC_TOKEN");
    struct kube_status st;

    (void)state;
    get(c, "/api/v1/namespaces", HP_ERR_AUTH, &st);
    assert_int_equal(st.code, 403);
    assert_string_equal(st.reason, "Forbidden");
    assert_non_null(strstr(st.message, "system:serviceaccount:default:nobody"));
    kube_client_free(c);
}

static void rotated_token_file_is_reread(void **state)
{
    struct kube_client *c = itest_kube_client("HP_KC_TOKENFILE");
    struct kube_status st;
    FILE *f;

    (void)state;
    get(c, "/version", HP_ERR_AUTH, &st); /* the file holds a bad token: 401 */
    assert_int_equal(st.code, 401);
    sleep(1); /* a new mtime */
    f = fopen(getenv("HP_TOKEN_FILE"), "w");
    assert_non_null(f);
    fprintf(f, "%s\n", getenv("HP_GOOD_TOKEN"));
    fclose(f);
    json_decref(get(c, "/version", HP_OK, NULL));
    kube_client_free(c);
}

static int exec_runs(void)
{
    FILE *f = fopen(getenv("HP_EXEC_COUNT"), "r");
    int n = 0, ch;

    if (!f)
        return 0;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static void exec_plugin_credentials_are_cached_until_expiry(void **state)
{
    struct kube_client *c;
    int before;

    (void)state;
    before = exec_runs();
    c = itest_kube_client("HP_KC_EXEC");
    for (int i = 0; i < 3; i++)
        json_decref(get(c, "/api/v1/namespaces/default", HP_OK, NULL));
    assert_int_equal(exec_runs() - before, 1);
    kube_client_free(c);
    before = exec_runs();
    c = itest_kube_client("HP_KC_EXEC_EXPIRED");
    for (int i = 0; i < 3; i++)
        json_decref(get(c, "/api/v1/namespaces/default", HP_OK, NULL));
    assert_int_equal(exec_runs() - before, 3);
    kube_client_free(c);
}

static void expired_deadline_sends_nothing(void **state)
{
    struct kube_client *c = itest_kube_client("HP_KUBECONFIG");
    struct hp_err err = {0};
    struct hp_ctx *ctx;

    (void)state;
    assert_int_equal(hp_ctx_new(NULL, 0, &ctx), HP_OK);
    assert_int_equal(kube_request(c, ctx, "GET", "/version", NULL, NULL, NULL, NULL, &err),
                     HP_ERR_TIMEOUT);
    hp_ctx_free(ctx);
    kube_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(version_and_namespace),
        cmocka_unit_test(create_conflict_patch_notfound),
        cmocka_unit_test(invalid_object_names_the_field),
        cmocka_unit_test(service_account_token_is_forbidden_by_rbac),
        cmocka_unit_test(rotated_token_file_is_reread),
        cmocka_unit_test(exec_plugin_credentials_are_cached_until_expiry),
        cmocka_unit_test(expired_deadline_sends_nothing),
    };
    int rc;

    hp_alloc_install();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
