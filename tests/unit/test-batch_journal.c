/* test-batch_journal.c - unit tests of controller/batch/batch_journal.c: the grouped write puts
 * every batch on disk as the loader reads it back, says which did not make it, and leaves no
 * temp file behind */
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

#include "batch/batch_journal.h"
#include "hostpatrol/alloc.h"

#define N_BATCHES 150 /* more than two passes of 64 */
#define KEYS      3

struct fixture {
    char dir[64];
    char ids[N_BATCHES][64];
    char keys[N_BATCHES][KEYS][48];
    struct batch_write w[N_BATCHES][KEYS];
    const struct batch_write *ops[N_BATCHES][KEYS];
    struct batch_journal_item items[N_BATCHES];
    bool written[N_BATCHES];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/hp-journal-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    for (size_t i = 0; i < N_BATCHES; i++) {
        snprintf(f->ids[i], sizeof(f->ids[i]), "b-%03zu", i);
        for (size_t k = 0; k < KEYS; k++) {
            snprintf(f->keys[i][k], sizeof(f->keys[i][k]), "/r/ns/name/check-%zu/t\n%zu", k, i);
            f->w[i][k] = (struct batch_write){f->keys[i][k], strlen(f->keys[i][k]), NULL, 0, false};
            f->ops[i][k] = &f->w[i][k];
        }
        f->items[i] = (struct batch_journal_item){f->ids[i], (int64_t)(1000 + i), f->ops[i], KEYS};
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct batch_journal_entry *)a)->batch_id,
                  ((const struct batch_journal_entry *)b)->batch_id);
}

/* count_tmp: files named *.tmp left in the writer's directory */
static int count_tmp(const char *dir)
{
    char cmd[256];
    FILE *p;
    int n = -1;

    snprintf(cmd, sizeof(cmd), "find '%s' -name '*.tmp' | wc -l", dir);
    p = popen(cmd, "r");
    if (p && fscanf(p, "%d", &n) != 1)
        n = -1;
    if (p)
        pclose(p);
    return n;
}

static void every_batch_of_a_grouped_write_loads_back(void **state)
{
    struct fixture *f = *state;
    struct batch_journal_entry *e = NULL;
    struct hp_err err = {0};
    size_t n = 0;

    assert_int_equal(batch_journal_write_all(f->dir, "w/one", f->items, N_BATCHES, f->written),
                     HP_OK);
    for (size_t i = 0; i < N_BATCHES; i++)
        assert_true(f->written[i]);
    assert_int_equal(count_tmp(f->dir), 0);
    assert_int_equal(batch_journal_load(f->dir, "w/one", &e, &n, &err), HP_OK);
    assert_int_equal(n, N_BATCHES);
    qsort(e, n, sizeof(*e), by_id);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(e[i].batch_id, f->ids[i]);
        assert_int_equal(e[i].epoch, 1000 + (int64_t)i);
        assert_int_equal(e[i].n, KEYS);
        for (size_t k = 0; k < KEYS; k++) {
            assert_int_equal(e[i].writes[k].key_len, strlen(f->keys[i][k]));
            assert_memory_equal(e[i].writes[k].key, f->keys[i][k], e[i].writes[k].key_len);
        }
    }
    batch_journal_entries_free(e, n);
    /* another writer's journal is its own */
    assert_int_equal(batch_journal_load(f->dir, "w/two", &e, &n, &err), HP_OK);
    assert_int_equal(n, 0);
    batch_journal_entries_free(e, n);
    /* forgetting one leaves the others */
    batch_journal_remove(f->dir, "w/one", f->ids[7]);
    assert_int_equal(batch_journal_load(f->dir, "w/one", &e, &n, &err), HP_OK);
    assert_int_equal(n, N_BATCHES - 1);
    for (size_t i = 0; i < n; i++)
        assert_string_not_equal(e[i].batch_id, f->ids[7]);
    batch_journal_entries_free(e, n);
}

static void a_journal_that_cannot_be_written_says_so_per_batch(void **state)
{
    struct fixture *f = *state;
    char path[128];
    FILE *fp;

    /* the writer's directory is a file: nothing can be written, and each batch says so */
    snprintf(path, sizeof(path), "%s/w_blocked", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    memset(f->written, 1, sizeof(f->written));
    assert_int_equal(batch_journal_write_all(f->dir, "w/blocked", f->items, 3, f->written),
                     HP_ERR_IO);
    for (size_t i = 0; i < 3; i++)
        assert_false(f->written[i]);
    /* one batch alone answers the same */
    assert_int_equal(batch_journal_write_all(f->dir, "w/blocked", f->items, 1, f->written),
                     HP_ERR_IO);
    assert_false(f->written[0]);
}

static void out_of_memory_loses_no_batch_silently(void **state)
{
    struct fixture *f = *state;

    /* every allocation failing in turn: each batch is either on disk and loads back, or is
     * reported not written; nothing leaks (ASan) and no temp file stays */
    for (long fail = 0; fail < 400; fail++) {
        struct batch_journal_entry *e = NULL;
        struct hp_err err = {0};
        char writer[32];
        size_t n = 0, said = 0;
        hp_rc rc;

        snprintf(writer, sizeof(writer), "oom-%ld", fail);
        hp_alloc_fail_after(fail);
        rc = batch_journal_write_all(f->dir, writer, f->items, 70, f->written);
        hp_alloc_fail_reset();
        for (size_t i = 0; i < 70; i++)
            said += f->written[i];
        assert_int_equal(rc, said == 70 ? HP_OK : HP_ERR_IO);
        assert_int_equal(batch_journal_load(f->dir, writer, &e, &n, &err), HP_OK);
        assert_int_equal(n, said);
        batch_journal_entries_free(e, n);
    }
    assert_int_equal(count_tmp(f->dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(every_batch_of_a_grouped_write_loads_back, setup, teardown),
        cmocka_unit_test_setup_teardown(a_journal_that_cannot_be_written_says_so_per_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(out_of_memory_loses_no_batch_silently, setup, teardown),
    };

    hp_alloc_install();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
