/* fuzz-inspection_spec-yaml.c - inspection_spec_parse on what yaml_doc_load makes of any YAML:
 * the files `hostpatrol inspect -f` reads (each document: an object with a .spec, or a spec). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/inspection_spec.h"
#include "hostpatrol/yaml_doc.h"

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
    struct hp_err err = {0};
    json_t *docs = NULL, *j;
    size_t k;

    if (yaml_doc_load((const char *)data, size, "<fuzz>", &docs, &err))
        return 0;
    json_array_foreach(docs, k, j)
    {
        const json_t *spec = json_object_get(j, "spec") ? json_object_get(j, "spec") : j;
        struct inspection_spec s;
        hp_rc rc;

        hp_err_clear(&err);
        rc = inspection_spec_parse(spec, &s, &err);
        if (rc == HP_ERR_INVALID && !err.field[0])
            abort(); /* a refused spec names the field at fault */
        for (size_t i = 0; !rc && i < s.n_checks; i++)
            if (!check_kind_name(s.checks[i].kind))
                abort();
        inspection_spec_release(&s);
    }
    json_decref(docs);
    return 0;
}
