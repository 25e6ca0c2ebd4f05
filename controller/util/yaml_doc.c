/* yaml_doc.c - YAML to jansson (see include/hostpatrol/yaml_doc.h). */
#include "hostpatrol/yaml_doc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/buf.h"

#define MAX_DEPTH   128
#define MAX_ANCHORS 1024

struct anchor {
    char *name;
    json_t *value; /* one reference held */
    size_t nodes;  /* nodes of value with its aliases expanded */
};

struct loader {
    yaml_parser_t parser;
    const char *name;
    struct anchor anchors[MAX_ANCHORS];
    size_t n_anchors;
    size_t
        alias_nodes; /* nodes that aliases add to the stream, expanded (YAML_DOC_MAX_ALIAS_NODES) */
    struct hp_err *err;
};

static hp_rc located(struct loader *l, const yaml_mark_t *m, const char *what)
{
    return hp_err_set(l->err, HP_ERR_INVALID, "%s:%zu:%zu: %s", l->name, m->line + 1, m->column + 1,
                      what);
}

static int all_digits(const char *s, int allow_sign)
{
    if (allow_sign && (*s == '-' || *s == '+'))
        s++;
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* plain_scalar: YAML 1.2 core schema resolution of an unquoted scalar */
static json_t *plain_scalar(const char *s)
{
    char *end;

    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
        return json_null();
    /* YAML 1.1 booleans, as kubectl (sigs.k8s.io/yaml) reads them: "name: n" is false there */
    static const char *const yes[] = {"true", "True", "TRUE", "y",  "Y", "yes",
                                      "Yes",  "YES",  "on",   "On", "ON"};
    static const char *const no[] = {"false", "False", "FALSE", "n",   "N",  "no",
                                     "No",    "NO",    "off",   "Off", "OFF"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (!strcmp(s, yes[i]))
            return json_true();
        if (!strcmp(s, no[i]))
            return json_false();
    }
    if (all_digits(s, 1)) {
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (!errno && !*end)
            return json_integer(v);
        return json_string(s); /* out of range: keep the text */
    }
    if (strpbrk(s, "0123456789") && strspn(s, "+-0123456789.eE") == strlen(s)) {
        double d;

        errno = 0;
        d = strtod(s, &end);
        if (!errno && !*end && end != s)
            return json_real(d);
    }
    return json_string(s);
}

static hp_rc parse_node(struct loader *l, yaml_event_t *ev, int depth, json_t **out, size_t *nodes);

/* find: the anchor named name, or NULL */
static struct anchor *find(struct loader *l, const char *name)
{
    for (size_t i = 0; i < l->n_anchors; i++)
        if (!strcmp(l->anchors[i].name, name))
            return &l->anchors[i];
    return NULL;
}

/* remember: anchor (may be NULL) names v from now on; a name defined again names the new node,
 * as YAML says (the old value's reference is dropped) */
static hp_rc remember(struct loader *l, const yaml_char_t *anchor, json_t *v, size_t nodes,
                      const yaml_mark_t *m)
{
    struct anchor *a;

    if (!anchor)
        return HP_OK;
    a = find(l, (const char *)anchor);
    if (a) {
        json_decref(a->value);
    } else {
        if (l->n_anchors == MAX_ANCHORS)
            return located(l, m, "too many anchors");
        a = &l->anchors[l->n_anchors];
        a->name = hp_strdup((const char *)anchor);
        if (!a->name)
            return HP_ERR_NOMEM;
        l->n_anchors++;
    }
    a->value = json_incref(v);
    a->nodes = nodes;
    return HP_OK;
}

static hp_rc next(struct loader *l, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&l->parser, ev)) {
        yaml_mark_t m = l->parser.problem_mark;

        return hp_err_set(l->err, HP_ERR_INVALID, "%s:%zu:%zu: %s", l->name, m.line + 1,
                          m.column + 1, l->parser.problem ? l->parser.problem : "invalid YAML");
    }
    return HP_OK;
}

/* parse_node: build the node that starts with ev (consumed); *out is a new reference, *nodes
 * its node count with aliases expanded */
/* parse_scalar: a scalar's value into *v (a new reference), its weight into *n */
static hp_rc parse_scalar(struct loader *l, yaml_event_t *ev, json_t **v, size_t *n)
{
    const char *s = (const char *)ev->data.scalar.value;

    *v = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag
             ? plain_scalar(s)
             : json_stringn(s, ev->data.scalar.length);
    if (!*v) /* libyaml has already rejected invalid UTF-8: this is out of memory */
        return HP_ERR_NOMEM;
    *n = 1 + ev->data.scalar.length / 64; /* a long string weighs as much as its bytes */
    return remember(l, ev->data.scalar.anchor, *v, *n, &ev->start_mark);
}

/* parse_alias: the anchored value (a new reference) into *v, its weight into *n */
static hp_rc parse_alias(struct loader *l, yaml_event_t *ev, json_t **v, size_t *n)
{
    const struct anchor *a = find(l, (const char *)ev->data.alias.anchor);

    if (!a)
        return located(l, &ev->start_mark, "alias to an unknown anchor");
    /* aliases share the value here, but whoever walks or prints the document sees it
     * expanded: "billion laughs" must stop at the parser */
    if (a->nodes > YAML_DOC_MAX_ALIAS_NODES - l->alias_nodes)
        return hp_err_set(
            l->err, HP_ERR_INVALID, "%s:%zu:%zu: aliases expand the document by more than %d nodes",
            l->name, ev->start_mark.line + 1, ev->start_mark.column + 1, YAML_DOC_MAX_ALIAS_NODES);
    l->alias_nodes += a->nodes;
    *n = a->nodes;
    *v = json_incref(a->value);
    return HP_OK;
}

/* parse_sequence: the items up to the sequence's end into the array *v (a new reference, set
 * even on error), their weight added to *n */
static hp_rc parse_sequence(struct loader *l, yaml_event_t *ev, int depth, json_t **v, size_t *n)
{
    yaml_char_t *anchor = ev->data.sequence_start.anchor;
    yaml_mark_t m = ev->start_mark;
    size_t sub;
    hp_rc rc;

    *v = json_array();
    if (!*v)
        return HP_ERR_NOMEM;
    for (;;) {
        yaml_event_t e;
        json_t *item;

        rc = next(l, &e);
        if (rc)
            return rc;
        if (e.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&e);
            break;
        }
        rc = parse_node(l, &e, depth + 1, &item, &sub);
        yaml_event_delete(&e);
        if (rc)
            return rc;
        *n += sub;
        if (json_array_append_new(*v, item))
            return HP_ERR_NOMEM;
    }
    return remember(l, anchor, *v, *n, &m);
}

/* mapping_key: the key event ke (consumed) as a new string reference in *key, refused when it
 * is not a scalar, a merge key, or already in map */
static hp_rc mapping_key(struct loader *l, yaml_event_t *ke, const json_t *map, json_t **key)
{
    hp_rc rc = HP_OK;

    *key = NULL;
    if (ke->type != YAML_SCALAR_EVENT) {
        rc = located(l, &ke->start_mark, "mapping keys must be scalars");
    } else if (!strcmp((const char *)ke->data.scalar.value, "<<") &&
               ke->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        rc = located(l, &ke->start_mark, "merge keys (<<) are not supported");
    } else {
        *key = json_stringn((const char *)ke->data.scalar.value, ke->data.scalar.length);
        if (!*key) {
            rc = HP_ERR_NOMEM;
        } else if (json_object_get(map, json_string_value(*key))) {
            rc = hp_err_set(l->err, HP_ERR_INVALID, "%s:%zu:%zu: duplicate key '%s'", l->name,
                            ke->start_mark.line + 1, ke->start_mark.column + 1,
                            json_string_value(*key));
            json_decref(*key);
            *key = NULL;
        }
    }
    yaml_event_delete(ke);
    return rc;
}

/* parse_mapping: the pairs up to the mapping's end into the object *v (a new reference, set
 * even on error), their weight added to *n */
static hp_rc parse_mapping(struct loader *l, yaml_event_t *ev, int depth, json_t **v, size_t *n)
{
    yaml_char_t *anchor = ev->data.mapping_start.anchor;
    yaml_mark_t m = ev->start_mark;
    size_t sub;
    hp_rc rc;

    *v = json_object();
    if (!*v)
        return HP_ERR_NOMEM;
    for (;;) {
        yaml_event_t ke, ve;
        json_t *key = NULL, *val = NULL;

        rc = next(l, &ke);
        if (rc)
            return rc;
        if (ke.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ke);
            break;
        }
        rc = mapping_key(l, &ke, *v, &key);
        if (rc)
            return rc;
        rc = next(l, &ve);
        if (!rc) {
            rc = parse_node(l, &ve, depth + 1, &val, &sub);
            yaml_event_delete(&ve);
            *n += 1 + sub; /* the key and the value */
        }
        if (!rc && json_object_set_new(*v, json_string_value(key), val))
            rc = HP_ERR_NOMEM;
        json_decref(key);
        if (rc)
            return rc;
    }
    return remember(l, anchor, *v, *n, &m);
}

static hp_rc parse_node(struct loader *l, yaml_event_t *ev, int depth, json_t **out, size_t *nodes)
{
    hp_rc rc;
    json_t *v = NULL;
    size_t n = 1;

    *out = NULL;
    *nodes = 0;
    if (depth > MAX_DEPTH)
        return located(l, &ev->start_mark, "nesting too deep");
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        rc = parse_scalar(l, ev, &v, &n);
        break;
    case YAML_ALIAS_EVENT:
        rc = parse_alias(l, ev, &v, &n);
        break;
    case YAML_SEQUENCE_START_EVENT:
        rc = parse_sequence(l, ev, depth, &v, &n);
        break;
    case YAML_MAPPING_START_EVENT:
        rc = parse_mapping(l, ev, depth, &v, &n);
        break;
    default:
        return located(l, &ev->start_mark, "unexpected YAML event");
    }
    if (rc) {
        json_decref(v);
        return rc;
    }
    *out = v;
    *nodes = n;
    return HP_OK;
}

hp_rc yaml_doc_load(const char *text, size_t len, const char *name, json_t **docs,
                    struct hp_err *err)
{
    struct loader l = {.name = name ? name : "<input>", .err = err};
    json_t *all = json_array();
    hp_rc rc = HP_OK;
    size_t i;

    *docs = NULL;
    if (!all || !yaml_parser_initialize(&l.parser)) {
        json_decref(all);
        return HP_ERR_NOMEM;
    }
    yaml_parser_set_input_string(&l.parser, (const unsigned char *)text, len);
    for (;;) {
        yaml_event_t ev, root;
        json_t *doc = NULL;
        size_t nodes;

        rc = next(&l, &ev);
        if (rc)
            break;
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type != YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&ev);
            continue; /* STREAM_START */
        }
        yaml_event_delete(&ev);
        rc = next(&l, &root);
        if (rc)
            break;
        rc = parse_node(&l, &root, 0, &doc, &nodes);
        yaml_event_delete(&root);
        if (!rc && json_array_append_new(all, doc))
            rc = HP_ERR_NOMEM;
        if (!rc)
            rc = next(&l, &ev); /* DOCUMENT_END */
        if (rc)
            break;
        yaml_event_delete(&ev);
    }
    for (i = 0; i < l.n_anchors; i++) {
        hp_free(l.anchors[i].name);
        json_decref(l.anchors[i].value);
    }
    yaml_parser_delete(&l.parser);
    if (rc) {
        json_decref(all);
        return rc;
    }
    *docs = all;
    return HP_OK;
}

hp_rc yaml_doc_load_file(const char *path, json_t **docs, struct hp_err *err)
{
    FILE *f = fopen(path, "rb");
    struct hp_buf text;
    hp_rc rc = HP_OK;

    *docs = NULL;
    if (!f)
        return hp_err_set(err, HP_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    hp_buf_init(&text, 0);
    for (;;) {
        size_t len = hp_buf_len(&text), n;
        char *at;

        rc = hp_buf_add_space(&text, 4096, &at);
        if (rc)
            break;
        n = fread(at, 1, 4096, f);
        hp_buf_truncate(&text, len + n);
        if (n == 0)
            break;
        if (len + n > (64u << 20)) {
            rc = hp_err_set(err, HP_ERR_INVALID, "%s is larger than 64 MiB", path);
            break;
        }
    }
    fclose(f);
    if (!rc)
        rc = yaml_doc_load(hp_buf_data(&text), hp_buf_len(&text), path, docs, err);
    hp_buf_release(&text);
    return rc;
}
