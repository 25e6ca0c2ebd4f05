/* test-kube_config.c - unit tests of controller/kube/kube_config.c with fixture files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hostpatrol/kube_config.h"

static char dir[256];

static void put(const char *name, const char *text)
{
    char p[512];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *at(const char *name)
{
    static char p[4][512];
    static int i;

    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
    return p[i];
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s/kc-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    /* "Zm9v" = base64("foo") */
    put("a.yaml", "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
                  "clusters:\n- name: c1\n  cluster: {server: 'https://1.2.3.4:6443', "
                  "certificate-authority: certs/ca.pem}\n"
                  "- name: c2\n  cluster: {server: 'https://h2:443', certificate-authority-data: "
                  "Zm9v, insecure-skip-tls-verify: true, tls-server-name: api.local}\n"
                  "users:\n- name: u1\n  user: {client-certificate: u1.crt, client-key: u1.key}\n"
                  "contexts:\n- name: dev\n  context: {cluster: c1, user: u1, namespace: team}\n"
                  "- name: prod\n  context: {cluster: c2, user: u2}\n");
    put("b.yaml",
        "current-context: ignored-because-a-sets-it\n"
        "users:\n- name: u2\n  user: {token: t0k3n, tokenFile: tok}\n"
        "- name: u1\n  user: {token: shadowed}\n"
        "- name: ex\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
        "      command: ./bin/cred\n      args: [get, --x]\n"
        "      env: [{name: A, value: b}]\n"
        "clusters:\n- name: c3\n  cluster: {server: 'https://h3'}\n"
        "contexts:\n- name: execctx\n  context: {cluster: c3, user: ex}\n"
        "- name: nokey\n  context: {cluster: c3, user: half}\n"
        "- name: ghost\n  context: {cluster: nowhere, user: u2}\n");
    put("half.yaml", "users:\n- name: half\n  user: {client-certificate-data: Zm9v}\n");
    mkdir(at("sa"), 0700);
    put("sa/token", "satoken\n");
    put("sa/ca.crt", "-----BEGIN CERTIFICATE-----\n");
    put("sa/namespace", "hostpatrol-system\n");
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static void explicit_file_with_current_context(void **state)
{
    struct kube_config_opts o = {.kubeconfig = at("a.yaml"), .env_kubeconfig = "", .home = "/x"};
    struct kube_config c;
    struct hp_err err = {0};

    (void)state;
    assert_int_equal(kube_config_load(&o, &c, &err), HP_OK);
    assert_string_equal(c.context, "dev");
    assert_string_equal(c.server, "https://1.2.3.4:6443");
    assert_string_equal(c.namespace_, "team");
    assert_string_equal(c.ca_file, at("certs/ca.pem")); /* relative to the kubeconfig */
    assert_string_equal(c.cert_file, at("u1.crt"));
    assert_string_equal(c.key_file, at("u1.key"));
    assert_false(c.insecure);
    kube_config_release(&c);
}

static void merged_list_first_wins_and_data_decodes(void **state)
{
    char list[1200];
    struct kube_config_opts o = {.context = "prod", .home = "/x"};
    struct kube_config c;
    struct hp_err err = {0};

    (void)state;
    snprintf(list, sizeof(list), "%s:%s:%s", at("missing.yaml"), at("a.yaml"), at("b.yaml"));
    o.env_kubeconfig = list;
    assert_int_equal(kube_config_load(&o, &c, &err), HP_OK);
    assert_string_equal(c.server, "https://h2:443");
    assert_int_equal(c.ca_pem_len, 3);
    assert_memory_equal(c.ca_pem, "foo", 3);
    assert_true(c.insecure);
    assert_string_equal(c.tls_server_name, "api.local");
    assert_string_equal(c.token, "t0k3n"); /* u2 comes from the second file */
    assert_string_equal(c.token_file, at("tok"));
    assert_string_equal(c.namespace_, "default");
    kube_config_release(&c);
    /* dev's user u1 is defined in both files: the first one (a.yaml) wins */
    o.context = NULL;
    assert_int_equal(kube_config_load(&o, &c, &err), HP_OK);
    assert_string_equal(c.context, "dev");
    assert_null(c.token);
    assert_non_null(c.cert_file);
    kube_config_release(&c);
}

static void exec_plugin_is_parsed(void **state)
{
    char list[1200];
    struct kube_config_opts o = {.context = "execctx", .home = "/x"};
    struct kube_config c;
    struct hp_err err = {0};

    (void)state;
    snprintf(list, sizeof(list), "%s:%s", at("a.yaml"), at("b.yaml"));
    o.env_kubeconfig = list;
    assert_int_equal(kube_config_load(&o, &c, &err), HP_OK);
    assert_true(c.has_exec);
    assert_string_equal(c.exec.command, at("./bin/cred"));
    assert_string_equal(c.exec.args[0], "get");
    assert_string_equal(c.exec.args[1], "--x");
    assert_null(c.exec.args[2]);
    assert_string_equal(c.exec.env[0], "A=b");
    assert_string_equal(c.exec.api_version, "client.authentication.k8s.io/v1");
    kube_config_release(&c);
}

static void expect_error(const char *list, const char *context, const char *field, const char *text)
{
    struct kube_config_opts o = {.env_kubeconfig = list, .context = context, .home = "/x"};
    struct kube_config c;
    struct hp_err err = {0};

    assert_int_not_equal(kube_config_load(&o, &c, &err), HP_OK);
    assert_string_equal(err.field, field);
    if (!strstr(err.msg, text))
        fail_msg("message '%s' lacks '%s'", err.msg, text);
    assert_null(c.server);
}

static void errors_name_file_and_entry(void **state)
{
    char list[1200];

    (void)state;
    snprintf(list, sizeof(list), "%s:%s:%s", at("a.yaml"), at("b.yaml"), at("half.yaml"));
    expect_error(list, "nope", "context", "context 'nope' not found");
    expect_error(list, "ghost", "cluster", "cluster 'nowhere' of context 'ghost' not found");
    expect_error(list, "nokey", "client-key", "user 'half' has a client certificate without a key");
    expect_error(at("none.yaml"), NULL, "kubeconfig", "no kubeconfig file found");
    {
        struct kube_config_opts o = {.kubeconfig = at("none.yaml")};
        struct kube_config c;
        struct hp_err err = {0};

        assert_int_equal(kube_config_load(&o, &c, &err), HP_ERR_INVALID);
        assert_non_null(strstr(err.msg, "none.yaml"));
    }
}

static void in_cluster(void **state)
{
    struct kube_config_opts o = {.env_kubeconfig = "",
                                 .in_cluster_dir = at("sa"),
                                 .service_host = "10.0.0.1",
                                 .service_port = "443"};
    struct kube_config c;
    struct hp_err err = {0};

    (void)state;
    assert_int_equal(kube_config_load(&o, &c, &err), HP_OK);
    assert_string_equal(c.server, "https://10.0.0.1:443");
    assert_string_equal(c.token_file, at("sa/token"));
    assert_string_equal(c.ca_file, at("sa/ca.crt"));
    assert_string_equal(c.namespace_, "hostpatrol-system");
    kube_config_release(&c);
    o.service_host = "fd00::1";
    assert_int_equal(kube_config_load(&o, &c, &err), HP_OK);
    assert_string_equal(c.server, "https://[fd00::1]:443");
    kube_config_release(&c);
    o.in_cluster_dir = at("nowhere");
    assert_int_equal(kube_config_load(&o, &c, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "token");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(explicit_file_with_current_context),
        cmocka_unit_test(merged_list_first_wins_and_data_decodes),
        cmocka_unit_test(exec_plugin_is_parsed),
        cmocka_unit_test(errors_name_file_and_entry),
        cmocka_unit_test(in_cluster),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
