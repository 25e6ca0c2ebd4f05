/* fuzz-inspection_spec-json.c - inspection_spec_parse on any JSON: the HostInspection objects
 * the controller and the agent read from the API (the .spec of an object, or a bare spec); a
 * spec that parses then goes through the cluster policy's admission (URL hosts, addresses,
 * names against allow/deny rules of every kind). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/inspect_policy.h"
#include "hostpatrol/inspection_spec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct inspect_policy policy; /* the default deny list, an allow list of each kind */
static const struct inspect_policy_flags flags = {
    "ops", false, "10.0.0.0/8,fd00::/8,api.example.com,.corp.example", NULL, 64};
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct hp_err perr = {0};

    hp_alloc_install();
    if (inspect_policy_init(&policy, &flags, &perr))
        abort();
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
    if (!rc) {
        struct hp_err aerr = {0};
        hp_rc arc = inspect_policy_admit(&policy, "team", &s, &aerr);

        if (arc && ((arc != HP_ERR_AUTH && arc != HP_ERR_INVALID) || !aerr.field[0]))
            abort(); /* a refusal names the field; nothing else can happen */
    }
    inspection_spec_release(&s);
    json_decref(j);
    return 0;
}
