/* fuzz-label_selector.c - label selectors (a HostInspection's spec.nodeSelector): the spec
 * parser's check, then what the reconciler makes of an accepted selector: the labelSelector
 * query of the node LIST and the agent's match against its node's labels.
 * Input: the selector as JSON, optionally a line "----" and the node's labels as a JSON object. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_peer.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/inspection_spec.h"
#include "reconcile/nodes.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hp_alloc_install();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *part[2];
    size_t len[2], n = fuzz_split(data, size, part, len, 2);
    json_t *sel = json_loadb((const char *)part[0], len[0], JSON_DECODE_ANY, NULL);
    json_t *labels = n > 1 ? json_loadb((const char *)part[1], len[1], 0, NULL) : NULL;
    json_t *spec = json_object();
    struct inspection_spec s;
    struct hp_err err = {0};
    char *query = NULL;

    if (!sel || !spec || json_object_set(spec, "nodeSelector", sel))
        goto out;
    if (inspection_spec_parse(spec, &s, &err)) {
        inspection_spec_release(&s);
        goto out;
    }
    if (nodes_selector_query(s.node_selector, &query))
        abort(); /* only out of memory, which a fuzz run does not see */
    for (const char *p = query; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~%", *p))
            abort(); /* the query value is percent-encoded */
    /* a node labelled exactly with matchLabels (and no expressions to meet) is selected */
    if (!json_array_size(json_object_get(s.node_selector, "matchExpressions"))) {
        json_t *own = json_object_get(s.node_selector, "matchLabels"), *none = json_object();

        if (none && !nodes_selector_matches(s.node_selector, own ? own : none))
            abort();
        json_decref(none);
    }
    if (labels)
        (void)nodes_selector_matches(s.node_selector, labels);
    inspection_spec_release(&s);
out:
    hp_free(query);
    json_decref(spec);
    json_decref(labels);
    json_decref(sel);
    return 0;
}
