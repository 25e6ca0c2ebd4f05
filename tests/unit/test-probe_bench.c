/* test-probe_bench.c - unit tests of controller/bench/probe_bench.c: a tcp target must be
 * host:port (the message names --target), a direct run against a local listener counts its
 * probes as ok, and the report's text and JSON forms. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "hostpatrol/probe_bench.h"

static void bad_tcp_targets_name_the_flag(void **state)
{
    static const struct {
        const char *target, *msg;
    } cases[] = {{"nocolon", "--target 'nocolon' is not host:port"},
                 {":80", "--target ':80' is not host:port"},
                 {"host:0", "--target 'host:0' has no valid port"},
                 {"host:http", "--target 'host:http' has no valid port"},
                 {"host:65536", "--target 'host:65536' has no valid port"}};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct probe_bench_config cfg = {
            .kind = CHECK_TCP, .target = cases[i].target, .concurrency = 1, .duration_ms = 1};
        struct probe_bench_report rep = {0};
        struct hp_err err = {0};

        assert_int_equal(probe_bench_run(&cfg, &rep, &err), HP_ERR_INVALID);
        assert_string_equal(err.field, "--target");
        assert_string_equal(err.msg, cases[i].msg);
        assert_int_equal(rep.probes, 0);
    }
}

static void direct_tcp_run_counts_ok_probes(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    char target[64];
    int fd;
    struct probe_bench_config cfg = {
        .kind = CHECK_TCP, .target = target, .concurrency = 2, .duration_ms = 50};
    struct probe_bench_report rep = {0};
    struct hp_err err = {0};

    (void)state;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 128), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(target, sizeof(target), "127.0.0.1:%d", ntohs(sa.sin_port));
    assert_int_equal(probe_bench_run(&cfg, &rep, &err), HP_OK);
    close(fd);
    assert_true(rep.probes >= 2);
    assert_int_equal(rep.probes % 2, 0); /* whole rounds of 2 */
    /* the listener never accepts: once its backlog is full, later connections may fail */
    assert_true(rep.ok >= 2 && rep.ok <= rep.probes);
    assert_true(rep.seconds >= 0.05);
}

static void report_forms(void **state)
{
    const struct probe_bench_config direct = {.kind = CHECK_HTTP, .target = "http://x"},
                                    bb = {
                                        .kind = CHECK_TCP, .target = "x:1", .blackbox = "http://b"};
    const struct probe_bench_report rep = {.probes = 100, .ok = 98, .seconds = 2, .cpu_s = 0.5};
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    (void)state;
    f = open_memstream(&text, &len);
    assert_non_null(f);
    probe_bench_print(&direct, &rep, true, f);
    probe_bench_print(&bb, &rep, false, f);
    fclose(f);
    assert_string_equal(text, "{\"mode\":\"direct\",\"kind\":\"http\",\"probes\":100,\"ok\":98,"
                              "\"seconds\":2.000,\"probes_per_s\":50.0,\"cpu_s\":0.500}\n"
                              "mode     kind     probes         ok  seconds     probes/s    cpu s\n"
                              "blackbox tcp         100         98     2.00         50.0     0.50 "
                              "(driver)\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_tcp_targets_name_the_flag),
        cmocka_unit_test(direct_tcp_run_counts_ok_probes),
        cmocka_unit_test(report_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
