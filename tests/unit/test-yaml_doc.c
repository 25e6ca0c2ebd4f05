/* test-yaml_doc.c - unit tests of controller/util/yaml_doc.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/yaml_doc.h"

static json_t *load1(const char *text)
{
    struct hp_err err = {0};
    json_t *docs = NULL, *d;

    if (yaml_doc_load(text, strlen(text), "t.yaml", &docs, &err))
        fail_msg("load: %s", err.msg);
    d = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return d;
}

static void scalars_are_typed_like_kubernetes(void **state)
{
    json_t *d = load1("s: hello\ni: 42\nn: -7\nf: 1.5\nt: true\nF: false\nz: null\ntilde: ~\n"
                      "q: \"true\"\nsq: '42'\nver: 1.2.3\nport: \"8080\"\nempty:\n"
                      "y1: yes\nn1: n\noff: Off\nqn: 'n'\nword: nope\n");

    (void)state;
    assert_string_equal(json_string_value(json_object_get(d, "s")), "hello");
    assert_int_equal(json_integer_value(json_object_get(d, "i")), 42);
    assert_int_equal(json_integer_value(json_object_get(d, "n")), -7);
    assert_true(json_is_real(json_object_get(d, "f")));
    assert_true(json_is_true(json_object_get(d, "t")));
    assert_true(json_is_false(json_object_get(d, "F")));
    assert_true(json_is_null(json_object_get(d, "z")));
    assert_true(json_is_null(json_object_get(d, "tilde")));
    assert_true(json_is_null(json_object_get(d, "empty")));
    assert_string_equal(json_string_value(json_object_get(d, "q")), "true");
    assert_string_equal(json_string_value(json_object_get(d, "sq")), "42");
    assert_string_equal(json_string_value(json_object_get(d, "ver")), "1.2.3");
    assert_string_equal(json_string_value(json_object_get(d, "port")), "8080");
    /* YAML 1.1 booleans, as kubectl reads them */
    assert_true(json_is_true(json_object_get(d, "y1")));
    assert_true(json_is_false(json_object_get(d, "n1")));
    assert_true(json_is_false(json_object_get(d, "off")));
    assert_string_equal(json_string_value(json_object_get(d, "qn")), "n");
    assert_string_equal(json_string_value(json_object_get(d, "word")), "nope");
    json_decref(d);
}

static void structures_documents_and_aliases(void **state)
{
    const char *text =
        "---\na: &x {k: [1, 2, {z: why}]}\nb: *x\nlist:\n- one\n- two\n---\nsecond: 2\n";
    struct hp_err err = {0};
    json_t *docs = NULL, *a, *b;

    (void)state;
    assert_int_equal(yaml_doc_load(text, strlen(text), NULL, &docs, &err), HP_OK);
    assert_int_equal(json_array_size(docs), 2);
    a = json_object_get(json_array_get(docs, 0), "a");
    b = json_object_get(json_array_get(docs, 0), "b");
    assert_true(json_equal(a, b));
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(a, "k"), 2), "z")), "why");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(json_array_get(docs, 0), "list"), 1)),
        "two");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(docs, 1), "second")), 2);
    json_decref(docs);
}

/* An anchor defined again names its new node from there on; the old value is not leaked
 * (LeakSanitizer checks). */
static void anchor_defined_again_names_the_new_node(void **state)
{
    const char *text = "a: &x [1]\nb: &x [2]\nc: *x\n";
    struct hp_err err = {0};
    json_t *docs = NULL, *c;

    (void)state;
    assert_int_equal(yaml_doc_load(text, strlen(text), NULL, &docs, &err), HP_OK);
    c = json_object_get(json_array_get(docs, 0), "c");
    assert_int_equal(json_integer_value(json_array_get(c, 0)), 2);
    json_decref(docs);
}

/* laughs: "l0" holds ten scalars, each level "lN" ten aliases of the one before; returns the
 * text's length */
static size_t laughs(char *text, size_t cap, int levels)
{
    size_t off = (size_t)snprintf(text, cap, "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");

    for (int level = 1; level <= levels; level++) {
        off += (size_t)snprintf(text + off, cap - off, "l%d: &l%d [", level, level);
        for (int i = 0; i < 10; i++)
            off += (size_t)snprintf(text + off, cap - off, "%s*l%d", i ? ", " : "", level - 1);
        off += (size_t)snprintf(text + off, cap - off, "]\n");
    }
    assert_true(off < cap);
    return off;
}

/* "Billion laughs": shared in memory, but six levels are 10^6 nodes to whoever walks or prints
 * the document: refused, naming the limit. Three levels (1,110 nodes by aliases) load. */
static void alias_expansion_is_bounded(void **state)
{
    char text[1024];
    size_t len;
    struct hp_err err = {0};
    json_t *docs = (json_t *)1;

    (void)state;
    len = laughs(text, sizeof(text), 6);
    assert_int_equal(yaml_doc_load(text, len, "laughs.yaml", &docs, &err), HP_ERR_INVALID);
    assert_null(docs);
    assert_non_null(strstr(err.msg, "aliases expand the document by more than 100000 nodes"));
    assert_non_null(strstr(err.msg, "laughs.yaml:"));
    /* long strings weigh by their bytes: 200 aliases of a 64 KiB string (12.8 MiB) refused */
    {
        size_t cap = (64u << 10) + 4096, off;
        char *big = malloc(cap);

        assert_non_null(big);
        off = (size_t)snprintf(big, cap, "s: &s ");
        memset(big + off, 'x', 64u << 10);
        off += 64u << 10;
        off += (size_t)snprintf(big + off, cap - off, "\nl: [");
        for (int i = 0; i < 200; i++)
            off += (size_t)snprintf(big + off, cap - off, "%s*s", i ? "," : "");
        off += (size_t)snprintf(big + off, cap - off, "]\n");
        assert_int_equal(yaml_doc_load(big, off, "strings.yaml", &docs, &err), HP_ERR_INVALID);
        assert_non_null(strstr(err.msg, "aliases expand the document"));
        free(big);
    }
    len = laughs(text, sizeof(text), 3);
    assert_int_equal(yaml_doc_load(text, len, "ok.yaml", &docs, &err), HP_OK);
    assert_int_equal(
        json_array_size(json_array_get(
            json_array_get(json_array_get(json_object_get(json_array_get(docs, 0), "l3"), 9), 9),
            9)),
        10);
    json_decref(docs);
}

static void expect_error(const char *text, const char *want)
{
    struct hp_err err = {0};
    json_t *docs = (json_t *)1;

    assert_int_equal(yaml_doc_load(text, strlen(text), "bad.yaml", &docs, &err), HP_ERR_INVALID);
    assert_null(docs);
    if (!strstr(err.msg, want))
        fail_msg("message '%s' lacks '%s'", err.msg, want);
}

static void errors_are_located(void **state)
{
    (void)state;
    expect_error("a: 1\na: 2\n", "bad.yaml:2:1: duplicate key 'a'");
    expect_error("a: [1, 2\n", "bad.yaml:");
    expect_error("a: *nope\n", "unknown anchor");
    expect_error("base: &b {x: 1}\nc:\n  <<: *b\n", "merge keys");
    expect_error("? [1]\n: x\n", "mapping keys must be scalars");
}

static void missing_file_is_named(void **state)
{
    struct hp_err err = {0};
    json_t *docs;

    (void)state;
    assert_int_equal(yaml_doc_load_file("/nonexistent/kubeconfig", &docs, &err), HP_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/kubeconfig"));
}

/* a file is read up to 64 MiB: one byte more is refused by its size, naming the file; at 64 MiB
 * it is parsed (here: a NUL after the first line is the parser's error) */
static void a_file_over_64_mib_is_refused(void **state)
{
    char path[] = "/tmp/test-yaml_doc-XXXXXX", want[128];
    struct hp_err err = {0};
    json_t *docs = NULL;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "a: 1\n", 5), 5);
    assert_int_equal(ftruncate(fd, (64 << 20) + 1), 0); /* sparse: reads as NULs */
    assert_int_equal(yaml_doc_load_file(path, &docs, &err), HP_ERR_INVALID);
    snprintf(want, sizeof(want), "%s is larger than 64 MiB", path);
    assert_string_equal(err.msg, want);
    assert_null(docs);
    hp_err_clear(&err);
    assert_int_equal(ftruncate(fd, 64 << 20), 0);
    assert_int_not_equal(yaml_doc_load_file(path, &docs, &err), HP_OK);
    assert_null(strstr(err.msg, "larger than"));
    assert_non_null(strstr(err.msg, path));
    close(fd);
    unlink(path);
}

static void every_allocation_failure_is_clean(void **state)
{
    const char *text = "a: &x {k: [1, 2, {z: y}]}\nb: *x\nc: [\"s\", 1.5, true]\n";
    int failures = 0;

    (void)state;
    hp_alloc_install();
    for (long n = 0; n < 200; n++) {
        struct hp_err err = {0};
        json_t *docs = NULL;
        hp_rc rc;

        hp_alloc_fail_after(n);
        rc = yaml_doc_load(text, strlen(text), NULL, &docs, &err);
        hp_alloc_fail_reset();
        if (rc) {
            assert_null(docs);
            failures++;
        } else {
            assert_int_equal(json_array_size(docs), 1);
            json_decref(docs);
        }
    }
    assert_true(failures > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scalars_are_typed_like_kubernetes),
        cmocka_unit_test(structures_documents_and_aliases),
        cmocka_unit_test(anchor_defined_again_names_the_new_node),
        cmocka_unit_test(alias_expansion_is_bounded),
        cmocka_unit_test(errors_are_located),
        cmocka_unit_test(missing_file_is_named),
        cmocka_unit_test(a_file_over_64_mib_is_refused),
        cmocka_unit_test(every_allocation_failure_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
