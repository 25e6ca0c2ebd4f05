/*
 * batch_journal.h - the on-disk journal of batches whose outcome the queue could not resolve
 * (etcd unreachable): <state_dir>/<writer>/<batch-id>.json = {"batch","epoch","keys":[b64]}.
 * Written atomically (temp file, fsync, rename, fsync of the directory). Only the keys are
 * kept: an undo reads the old values from etcd's history. Internal to controller/batch.
 */
#ifndef HOSTPATROL_BATCH_JOURNAL_H
#define HOSTPATROL_BATCH_JOURNAL_H

#include <stdbool.h>

#include "hostpatrol/batch_queue.h"

struct batch_journal_entry {
    char batch_id[64];
    int64_t epoch;
    struct batch_write *writes; /* owned; keys owned, values NULL */
    size_t n;
};

/* One batch to record; every field borrowed. */
struct batch_journal_item {
    const char *batch_id;
    int64_t epoch;
    const struct batch_write *const *ops;
    size_t n;
};

/* batch_journal_write_all: record n batches (items borrowed) in passes of up to 64: every file
 * of a pass written, then each synced and renamed, then the directory synced once, so the disk
 * commits once per pass rather than twice per batch. written[n] (caller's) says which are on
 * disk; HP_ERR_IO if any is not (the others stay written). Not HP_WUR: written[] is the
 * answer a caller needs. */
hp_rc batch_journal_write_all(const char *dir, const char *writer,
                              const struct batch_journal_item *items, size_t n, bool *written);
/* batch_journal_remove: forget a resolved batch (missing file is fine). */
void batch_journal_remove(const char *dir, const char *writer, const char *batch_id);
/* batch_journal_load: every journaled batch of writer; *out owned (entries_free). A file that
 * cannot be parsed is an error naming it (nothing is skipped silently). */
hp_rc batch_journal_load(const char *dir, const char *writer, struct batch_journal_entry **out,
                         size_t *n, struct hp_err *err) HP_WUR;
void batch_journal_entries_free(struct batch_journal_entry *e, size_t n);

#endif
