/* fuzz-safe_regex.c - safe_regex_compile on any pattern (bodyRegex, cmdlineRegex come from
 * resources) and safe_regex_match of the pattern on any subject, within its limits.
 * Input: the pattern, a NUL byte, the subject (no NUL: the whole input is the pattern, matched
 * against itself). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hostpatrol/safe_regex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t plen = nul ? (size_t)(nul - data) : size;
    const char *subject = nul ? (const char *)nul + 1 : (const char *)data;
    size_t slen = nul ? size - plen - 1 : size;
    struct safe_regex *re = NULL;
    char pattern[SAFE_REGEX_MAX_PATTERN + 64], why[256];
    enum safe_regex_result r;

    if (plen >= sizeof(pattern))
        return 0;
    memcpy(pattern, data, plen);
    pattern[plen] = '\0';
    why[0] = '\0';
    if (safe_regex_compile(pattern, &re, why, sizeof(why))) {
        if (re || !why[0])
            abort(); /* a refused pattern says why and gives nothing */
        return 0;
    }
    r = safe_regex_match(re, subject, slen);
    if (r != SAFE_REGEX_MATCH && r != SAFE_REGEX_NO_MATCH && r != SAFE_REGEX_TOO_COSTLY)
        abort();
    safe_regex_free(re);
    return 0;
}
