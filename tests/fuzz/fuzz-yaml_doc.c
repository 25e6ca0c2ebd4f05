/* fuzz-yaml_doc.c - yaml_doc_load (YAML -> JSON) on any bytes: every file `hostpatrol inspect`
 * and the kubeconfig loader read. A loaded stream must be an array that jansson can print. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "hostpatrol/alloc.h"
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
    json_t *docs = NULL;
    char *text;
    hp_rc rc = yaml_doc_load((const char *)data, size, "<fuzz>", &docs, &err);

    if (rc) {
        if (docs || (rc == HP_ERR_INVALID && !err.msg[0]))
            abort(); /* an error gives no value and a located message */
        return 0;
    }
    if (!json_is_array(docs))
        abort();
    text = json_dumps(docs, JSON_ENCODE_ANY | JSON_COMPACT);
    hp_free(text);
    json_decref(docs);
    return 0;
}
