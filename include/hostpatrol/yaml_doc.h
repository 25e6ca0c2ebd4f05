/*
 * yaml_doc.h - load YAML (libyaml) into jansson values, the way kubectl reads YAML: mappings
 * become objects, sequences arrays, and plain scalars are typed: null/~/empty, booleans with
 * YAML 1.1's spellings as kubectl accepts them (true/false, yes/no, y/n, on/off in their usual
 * cases: "name: n" is the boolean false, as admission will see it), integers, floats;
 * everything else is a string. Quoted scalars are always strings. Anchors and aliases are resolved;
 * merge keys ("<<") are not supported and are an error rather than a silent surprise. An anchor
 * defined again names its new node from there on. Aliases share their value in memory, but a
 * reader walking the document sees it expanded: a stream whose aliases would add more than
 * YAML_DOC_MAX_ALIAS_NODES nodes when expanded ("billion laughs") is an error.
 *
 * Errors name the file (or "<input>"), line and column. Thread-safe (no shared state).
 */
#ifndef HOSTPATROL_YAML_DOC_H
#define HOSTPATROL_YAML_DOC_H

#include <jansson.h>
#include <stddef.h>

#include "hostpatrol/rc.h"

/* Nodes (scalars, sequences, mappings, keys) that aliases may add to a stream, expanded; a
 * scalar counts one node per 64 bytes, so aliases add at most about 6 MiB of text. */
#define YAML_DOC_MAX_ALIAS_NODES 100000

/* yaml_doc_load: every document of the stream as a new JSON array (owned; json_decref).
 * name labels errors (borrowed). Returns HP_ERR_INVALID with a located message, or NOMEM. */
hp_rc yaml_doc_load(const char *text, size_t len, const char *name, json_t **docs,
                    struct hp_err *err) HP_WUR;

/* yaml_doc_load_file: the same from a file (HP_ERR_IO naming the path if unreadable). */
hp_rc yaml_doc_load_file(const char *path, json_t **docs, struct hp_err *err) HP_WUR;

#endif
