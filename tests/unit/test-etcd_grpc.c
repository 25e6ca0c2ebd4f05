/* test-etcd_grpc.c - what an etcd gRPC answer means: the recorded (status, message) table
 * tests/data/etcd/grpc-errors.tsv and the transport cases (no status, cut streams, deadlines,
 * a request that never left). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "etcd/etcd_internal.h"

static hp_rc classify(const struct grpc_result *x, bool write, bool *next)
{
    struct hp_err err = {0};
    hp_rc rc = etcd_grpc_classify(x, write, "http://e:2379", "KV/Txn", next, &err);

    if (rc)
        assert_non_null(strstr(err.msg, "http://e:2379 KV/Txn"));
    return rc;
}

static void recorded_status_table(void **state)
{
    FILE *f = fopen("tests/data/etcd/grpc-errors.tsv", "r");
    char line[1024];
    int rows = 0;

    (void)state;
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        char *code, *msg, *wrc, *rrc, *save = NULL;
        struct grpc_result x = {.cc = CURLE_OK, .sent = true, .http_status = 200};
        bool next;

        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = '\0';
        code = strtok_r(line, "\t", &save);
        msg = strtok_r(NULL, "\t", &save);
        wrc = strtok_r(NULL, "\t", &save);
        rrc = strtok_r(NULL, "\t", &save);
        assert_non_null(rrc);
        x.grpc_status = (int)strtol(code, NULL, 10);
        snprintf(x.grpc_message, sizeof(x.grpc_message), "%s", msg);
        if (strcmp(hp_rc_name(classify(&x, true, &next)), wrc))
            fail_msg("write, %s %s: got %s, want %s", code, msg,
                     hp_rc_name(classify(&x, true, &next)), wrc);
        assert_false(next);
        if (strcmp(hp_rc_name(classify(&x, false, &next)), rrc))
            fail_msg("read, %s %s: got %s, want %s", code, msg,
                     hp_rc_name(classify(&x, false, &next)), rrc);
        /* the same status after a reset stream (trailers-only answer, then RST_STREAM) */
        x.cc = CURLE_HTTP2_STREAM;
        assert_string_equal(hp_rc_name(classify(&x, true, &next)), wrc);
        rows++;
    }
    fclose(f);
    assert_true(rows >= 20);
}

static void transport_cases(void **state)
{
    static char m[1] = {0};
    struct grpc_result ok = {
        .cc = CURLE_OK, .grpc_status = 0, .sent = true, .msg = m, .msg_len = 0};
    struct grpc_result x;
    bool next;

    (void)state;
    assert_int_equal(classify(&ok, true, &next), HP_OK);
    /* OK without a message, or a malformed / cut / oversized one: never success */
    x = ok;
    x.msg = NULL;
    assert_int_equal(classify(&x, true, &next), HP_ERR_UNKNOWN_OUTCOME);
    assert_int_equal(classify(&x, false, &next), HP_ERR_PROTOCOL);
    x = ok;
    x.malformed = true;
    assert_int_equal(classify(&x, true, &next), HP_ERR_UNKNOWN_OUTCOME);
    assert_int_equal(classify(&x, false, &next), HP_ERR_PROTOCOL); /* status OK, bad message */
    x = ok;
    x.cc = CURLE_HTTP2_STREAM; /* status 0 arrived, then the stream failed */
    assert_int_equal(classify(&x, true, &next), HP_ERR_UNKNOWN_OUTCOME);
    x = ok;
    x.overflow = 1;
    assert_int_equal(classify(&x, false, &next), HP_ERR_PROTOCOL);
    /* an exchange that ended without grpc-status (the member went away before its trailers):
     * never a success; a write's outcome is unknown, a read is retried as a transport failure */
    x = (struct grpc_result){.cc = CURLE_OK, .grpc_status = -1, .sent = true, .msg = m};
    assert_int_equal(classify(&x, true, &next), HP_ERR_UNKNOWN_OUTCOME);
    assert_int_equal(classify(&x, false, &next), HP_ERR_UNAVAILABLE);
    assert_false(next);
    x.malformed = true;
    assert_int_equal(classify(&x, false, &next), HP_ERR_UNAVAILABLE);
    /* a reset stream or a cut connection after sending */
    x = (struct grpc_result){.cc = CURLE_HTTP2_STREAM, .grpc_status = -1, .sent = true};
    assert_int_equal(classify(&x, true, &next), HP_ERR_UNKNOWN_OUTCOME);
    assert_int_equal(classify(&x, false, &next), HP_ERR_UNAVAILABLE);
    assert_false(next);
    x.cc = CURLE_RECV_ERROR;
    assert_int_equal(classify(&x, true, &next), HP_ERR_UNKNOWN_OUTCOME);
    /* the deadline, after sending and before */
    x = (struct grpc_result){
        .cc = CURLE_ABORTED_BY_CALLBACK, .grpc_status = -1, .sent = true, .ctx_rc = HP_ERR_TIMEOUT};
    assert_int_equal(classify(&x, true, &next), HP_ERR_UNKNOWN_OUTCOME);
    assert_int_equal(classify(&x, false, &next), HP_ERR_TIMEOUT);
    x.sent = false;
    assert_int_equal(classify(&x, true, &next), HP_ERR_TIMEOUT);
    assert_false(next);
    /* REFUSED_STREAM: nothing processed, another endpoint may take it */
    x = (struct grpc_result){
        .cc = CURLE_HTTP2_STREAM, .grpc_status = -1, .sent = true, .refused = true};
    assert_int_equal(classify(&x, true, &next), HP_ERR_UNAVAILABLE);
    assert_true(next);
    /* never left (connection refused) */
    x = (struct grpc_result){.cc = CURLE_COULDNT_CONNECT, .grpc_status = -1};
    assert_int_equal(classify(&x, true, &next), HP_ERR_UNAVAILABLE);
    assert_true(next);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(recorded_status_table),
        cmocka_unit_test(transport_cases),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
