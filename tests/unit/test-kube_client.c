/* test-kube_client.c - unit tests of controller/kube/kube_client.c that need no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tls_server_name_with_bracket_outside_host),
        cmocka_unit_test(tls_server_name_with_ipv6_host),
        cmocka_unit_test(server_must_be_http_url),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
