/* fuzz-duration.c - hp_duration_parse on any text (the CRD's interval and timeout fields). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hostpatrol/duration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hp_err err = {0};
    char s[512];
    int64_t ms = -1;
    hp_rc rc;

    if (size >= sizeof(s))
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    rc = hp_duration_parse(s, "spec.interval", &ms, &err);
    if (!rc && ms < 0)
        abort(); /* a duration has no sign */
    if (rc && (rc != HP_ERR_INVALID || !err.msg[0]))
        abort(); /* bad text is INVALID with a message */
    return 0;
}
