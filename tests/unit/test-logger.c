/* test-logger.c - unit tests of controller/util/logger.c: the JSON and text forms of a line,
 * escaping, ids left out when absent, the level filter, bad level and format names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hostpatrol/logger.h"

/* capture: what the logger wrote on a memory stream; *text owned (free) */
struct capture {
    char *text;
    size_t len;
    FILE *f;
};

static void cap_open(struct capture *c)
{
    c->text = NULL;
    c->len = 0;
    c->f = open_memstream(&c->text, &c->len);
    assert_non_null(c->f);
}

static const char *cap_text(struct capture *c)
{
    fflush(c->f);
    return c->text;
}

static void cap_close(struct capture *c)
{
    fclose(c->f);
    free(c->text);
}

static void json_line_has_ids_and_escapes(void **state)
{
    struct hp_logger l;
    struct capture c;
    const struct hp_log_ids ids = {"ns/a\"b", 7, "run-1", "b-2"};
    const char *t, *tail;

    (void)state;
    cap_open(&c);
    hp_logger_init(&l, "controller", c.f);
    hp_logger_line(&l, HP_LOG_WARN, &ids, "say \"hi\"\\\n");
    t = cap_text(&c);
    assert_memory_equal(t, "{\"time\":\"", 9);
    assert_non_null(strstr(t, "Z\",\"level\":\"warn\",\"module\":\"controller\""));
    tail = ",\"key\":\"ns/a\\\"b\",\"reconcile\":7,\"run\":\"run-1\",\"batch\":\"b-2\","
           "\"msg\":\"say \\\"hi\\\"\\\\\\u000a\"}\n";
    assert_non_null(strstr(t, tail));
    assert_string_equal(t + strlen(t) - strlen(tail), tail);
    hp_logger_release(&l);
    cap_close(&c);
}

static void json_line_leaves_out_absent_ids(void **state)
{
    struct hp_logger l;
    struct capture c;
    const char *t;

    (void)state;
    cap_open(&c);
    hp_logger_init(&l, "agent", c.f);
    hp_logger_printf(&l, HP_LOG_INFO, "n=%d", 3);
    t = cap_text(&c);
    assert_non_null(strstr(t, "\"level\":\"info\",\"module\":\"agent\",\"msg\":\"n=3\"}\n"));
    assert_null(strstr(t, "\"key\""));
    assert_null(strstr(t, "\"reconcile\""));
    hp_logger_release(&l);
    cap_close(&c);
}

static void text_line(void **state)
{
    struct hp_logger l;
    struct capture c;
    const struct hp_log_ids ids = {"ns/x", 0, "r1", NULL};
    const char *t;

    (void)state;
    cap_open(&c);
    hp_logger_init(&l, "controller", c.f);
    assert_int_equal(hp_logger_set_format(&l, "text"), HP_OK);
    hp_logger_line(&l, HP_LOG_ERROR, &ids, "boom");
    t = cap_text(&c);
    assert_non_null(strstr(t, "Z error controller ns/x run=r1 boom\n"));
    assert_int_equal(t[4], '-');
    hp_logger_release(&l);
    cap_close(&c);
}

static void level_filters(void **state)
{
    struct hp_logger l;
    struct capture c;

    (void)state;
    cap_open(&c);
    hp_logger_init(&l, "controller", c.f);
    hp_logger_printf(&l, HP_LOG_DEBUG, "hidden");
    assert_true(!cap_text(&c) || !strstr(cap_text(&c), "hidden"));
    assert_int_equal(hp_logger_set_level(&l, "debug"), HP_OK);
    hp_logger_printf(&l, HP_LOG_DEBUG, "shown");
    assert_non_null(strstr(cap_text(&c), "\"level\":\"debug\""));
    assert_int_equal(hp_logger_set_level(&l, "error"), HP_OK);
    hp_logger_printf(&l, HP_LOG_WARN, "dropped");
    assert_null(strstr(cap_text(&c), "dropped"));
    hp_logger_release(&l);
    cap_close(&c);
}

static void bad_names_change_nothing(void **state)
{
    struct hp_logger l;

    (void)state;
    hp_logger_init(&l, "controller", stderr);
    assert_int_equal(hp_logger_set_level(&l, "verbose"), HP_ERR_INVALID);
    assert_int_equal(atomic_load(&l.min_level), HP_LOG_INFO);
    assert_int_equal(hp_logger_set_format(&l, "yaml"), HP_ERR_INVALID);
    assert_false(l.text);
    assert_int_equal(hp_logger_set_level(&l, "warn"), HP_OK);
    assert_int_equal(atomic_load(&l.min_level), HP_LOG_WARN);
    hp_logger_release(&l);
    hp_logger_release(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_line_has_ids_and_escapes),
        cmocka_unit_test(json_line_leaves_out_absent_ids),
        cmocka_unit_test(text_line),
        cmocka_unit_test(level_filters),
        cmocka_unit_test(bad_names_change_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
