/* fuzz-inspection_spec-json.c - inspection_spec_parse on any JSON: the HostInspection objects
 * the controller and the agent read from the API (the .spec of an object, or a bare spec). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/inspection_spec.h"

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
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    const json_t *spec = json_object_get(j, "spec") ? json_object_get(j, "spec") : j;
    struct inspection_spec s;
    struct hp_err err = {0};
    hp_rc rc;

    if (!j)
        return 0;
    rc = inspection_spec_parse(spec, &s, &err);
    if (rc == HP_ERR_INVALID && !err.field[0])
        abort(); /* a refused spec names the field at fault */
    for (size_t i = 0; !rc && i < s.n_checks; i++)
        if (!check_kind_name(s.checks[i].kind))
            abort();
    inspection_spec_release(&s);
    json_decref(j);
    return 0;
}
