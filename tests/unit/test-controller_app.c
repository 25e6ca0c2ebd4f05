/* test-controller_app.c - unit tests of controller/app/controller_app.c that need no cluster:
 * a start that fails says why in err (in the user's terms: the flag behind an etcd field), ends
 * with the right exit, logs nothing it should not, and frees everything on the way out (ASan's
 * leak check). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/controller_app.h"

static const char *flag_of(const char *field)
{
    return !strcmp(field, "endpoints") ? "--etcd-endpoints" : "etcd";
}

/* run: controller_app_run on cfg; *log_text owned (free): what it logged */
static enum controller_app_exit run(struct controller_app_config *cfg, struct hp_err *err,
                                    char **log_text)
{
    struct hp_logger log;
    size_t len = 0;
    FILE *f = open_memstream(log_text, &len);
    enum controller_app_exit ex;

    assert_non_null(f);
    hp_logger_init(&log, cfg->agent ? "agent" : "controller", f);
    ex = controller_app_run(cfg, &log, err);
    hp_logger_release(&log);
    fclose(f);
    return ex;
}

static void bad_etcd_endpoint_is_a_bad_flag(void **state)
{
    struct controller_app_config cfg = {.etcd = {.endpoints = "ftp://etcd:2379"},
                                        .shutdown_ms = CONTROLLER_APP_SHUTDOWN_DEFAULT_MS,
                                        .metrics_bind = "0",
                                        .health_bind = "0",
                                        .etcd_flag = flag_of};
    struct hp_err err = {0};
    char *log_text = NULL;

    (void)state;
    assert_int_equal(run(&cfg, &err, &log_text), CONTROLLER_APP_BAD_FLAG);
    assert_string_equal(err.msg, "--etcd-endpoints: endpoint 'ftp://etcd:2379' is not an "
                                 "http:// or https:// URL");
    assert_true(!log_text || !strstr(log_text, "starting"));
    free(log_text);
}

static void missing_kubeconfig_fails(void **state)
{
    struct controller_app_config cfg = {.agent = true,
                                        .node_name = "n1",
                                        .etcd = {.endpoints = "http://127.0.0.1:1"},
                                        .kube = {.kubeconfig = "/nonexistent/kubeconfig"},
                                        .shutdown_ms = CONTROLLER_APP_SHUTDOWN_DEFAULT_MS,
                                        .metrics_bind = "0",
                                        .health_bind = "0",
                                        .etcd_flag = flag_of};
    struct hp_err err = {0};
    char *log_text = NULL;

    (void)state;
    assert_int_equal(run(&cfg, &err, &log_text), CONTROLLER_APP_FAILED);
    assert_non_null(strstr(err.msg, "/nonexistent/kubeconfig"));
    assert_true(!log_text || !strstr(log_text, "starting"));
    free(log_text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_etcd_endpoint_is_a_bad_flag),
        cmocka_unit_test(missing_kubeconfig_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
