/*
 * results_view.h - stored results as a person reads them: the rows of one read of the results
 * store (results_store_list), printed as a table, a wide table or JSON (docs/results.md), or
 * streamed one line per result as they land, each run followed by its summary line.
 *
 * Every text that came from a resource's author, a probed host or etcd is escaped for the
 * terminal (term_text.h). A key the schema cannot split shows "?" for its missing parts; a value
 * that is not a JSON object shows status "?" and reason "unreadable value".
 *
 * Ownership: a view owns its rows (parsed copies of the read's keys and values); the read it
 * was made from may be released at once. Thread-safety: a view and a stream belong to one thread.
 * Nothing here blocks but on the output stream.
 */
#ifndef HOSTPATROL_RESULTS_VIEW_H
#define HOSTPATROL_RESULTS_VIEW_H

#include <stdbool.h>
#include <stdio.h>

#include "hostpatrol/etcd_client.h"
#include "hostpatrol/rc.h"

/* The --watch output. Columns grow to the widest value seen so far (a stream cannot know the
 * widths ahead): keep one across the views streamed to the same output. */
struct results_view_stream {
    FILE *out; /* borrowed */
    bool json, wide, color;
    int w_where, w_check, w_target;
};

/* results_view_stream_init: a stream to out (borrowed) with the starting column widths */
void results_view_stream_init(struct results_view_stream *st, FILE *out, bool json, bool wide,
                              bool color);

struct results_view;

/* results_view_new: the rows of resp (borrowed: copied) whose keys were made with prefix
 * (borrowed). *out owned: results_view_free. HP_ERR_NOMEM. */
hp_rc results_view_new(const struct etcd_range_resp *resp, const char *prefix,
                       struct results_view **out) HP_WUR;
void results_view_free(struct results_view *v); /* NULL allowed */
size_t results_view_len(const struct results_view *v);

/* results_view_print: the rows, ordered by namespace, name, check and target, as a JSON array
 * (json) or a table (wide: with KIND, SOURCE, DURATION(ms), VALUES) to out. HP_ERR_NOMEM. The
 * caller checks out's errors (fflush, ferror). */
hp_rc results_view_print(struct results_view *v, bool json, bool wide, FILE *out) HP_WUR;

/* results_view_stream: the rows, ordered by the revision that wrote them, one line each, each
 * run's results followed by its summary line (none in JSON: one object a line); flushed.
 * HP_ERR_NOMEM, HP_ERR_IO when the output failed. */
hp_rc results_view_stream(struct results_view *v, struct results_view_stream *st) HP_WUR;

#endif
