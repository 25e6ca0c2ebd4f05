/* json_text.h - for the unit tests that start from a Kubernetes object or a selector written as
 * JSON text (status, nodes): the text loaded, or the test fails naming the error.
 * Include after <cmocka.h>. */
#ifndef HOSTPATROL_TEST_JSON_TEXT_H
#define HOSTPATROL_TEST_JSON_TEXT_H

#include <jansson.h>

/* json_text: text as JSON (new reference); the test fails if it does not load. */
static inline json_t *json_text(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);

    if (!j)
        fail_msg("bad test JSON: %s: %s", je.text, text);
    return j;
}

#endif
