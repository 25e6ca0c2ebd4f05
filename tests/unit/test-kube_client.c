/* test-kube_client.c - unit tests of controller/kube/kube_client.c that need no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/ctx.h"
#include "hostpatrol/kube_client.h"

static hp_rc client_for(const char *server, const char *tls_server_name)
{
    struct kube_config cfg = {
        .source = "test", .server = (char *)server, .tls_server_name = (char *)tls_server_name};
    struct kube_client *c = NULL;
    struct hp_err err = {0};
    hp_rc rc = kube_client_new(&cfg, &c, &err);

    kube_client_free(c);
    return rc;
}

/* a kubeconfig server with tls-server-name: the host part is read between "://" and the path;
 * "https://[/]" once made the ']' search run past the path and the ':' search past the string
 * (found by tests/fuzz/fuzz-kube_config.c) */
static void tls_server_name_with_bracket_outside_host(void **state)
{
    (void)state;
    assert_int_equal(client_for("https://[/]", "api"), HP_OK);
    assert_int_equal(client_for("https://[/x]y", "api"), HP_OK);
    assert_int_equal(client_for("https://[", "api"), HP_OK);
}

static void tls_server_name_with_ipv6_host(void **state)
{
    (void)state;
    assert_int_equal(client_for("https://[::1]:6443/prefix", "api"), HP_OK);
    assert_int_equal(client_for("https://10.0.0.1", "api"), HP_OK);
}

static void server_must_be_http_url(void **state)
{
    (void)state;
    assert_int_equal(client_for("ftp://x", NULL), HP_ERR_INVALID);
    assert_int_equal(client_for("ftp://x", "api"), HP_ERR_INVALID);
}

/* exec_output: a request through a client whose exec plugin prints a valid ExecCredential
 * padded with blanks to `size` bytes, to a server that is not there (so nothing but the plugin
 * can fail it with anything but UNAVAILABLE) */
static hp_rc exec_output(size_t size, struct hp_err *err)
{
    static const char cred[] = "{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                               "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\"}}";
    char script[512], *args[] = {"-c", script, NULL};
    struct kube_config cfg = {.source = "test",
                              .server = "http://127.0.0.1:1",
                              .has_exec = true,
                              .exec = {.api_version = "client.authentication.k8s.io/v1",
                                       .command = "/bin/sh",
                                       .args = args}};
    struct kube_client *c = NULL;
    struct hp_ctx *ctx = NULL;
    hp_rc rc;

    snprintf(script, sizeof(script), "printf '%%s' '%s'; head -c %zu /dev/zero | tr '\\0' ' '",
             cred, size - strlen(cred));
    assert_int_equal(kube_client_new(&cfg, &c, err), HP_OK);
    assert_int_equal(hp_ctx_new(NULL, 20000, &ctx), HP_OK);
    rc = kube_request(c, ctx, "GET", "/version", NULL, NULL, NULL, NULL, err);
    hp_ctx_free(ctx);
    kube_client_free(c);
    return rc;
}

/* the plugin's output is bounded (EXEC_OUT_MAX, 1 MiB, less the 4096 bytes of room each read
 * needs): above it the request fails naming the plugin, at it the credential is used */
static void exec_plugin_output_is_bounded(void **state)
{
    struct hp_err err = {0};

    (void)state;
    assert_int_equal(exec_output((1u << 20) - 4096, &err), HP_ERR_UNAVAILABLE);
    hp_err_clear(&err);
    assert_int_equal(exec_output((1u << 20) - 4095, &err), HP_ERR_PROTOCOL);
    assert_string_equal(err.msg, "exec plugin /bin/sh: output too large");
    hp_err_clear(&err);
    assert_int_equal(exec_output(4u << 20, &err), HP_ERR_PROTOCOL);
    assert_string_equal(err.msg, "exec plugin /bin/sh: output too large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tls_server_name_with_bracket_outside_host),
        cmocka_unit_test(tls_server_name_with_ipv6_host),
        cmocka_unit_test(server_must_be_http_url),
        cmocka_unit_test(exec_plugin_output_is_bounded),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
