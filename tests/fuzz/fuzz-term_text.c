/* fuzz-term_text.c - term_text_escape on any bytes (names, reasons and answers of probed hosts
 * printed by inspect, results and watch) into a buffer of any size: never a byte a terminal acts
 * on, always NUL-terminated, and the length it returns is what it wrote when that fits.
 * Input: byte 0 the buffer size (1..256), the rest the text (cut at a NUL, as C strings are). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hostpatrol/term_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s, *buf;
    size_t cap, n, len;

    if (!size)
        return 0;
    cap = (size_t)data[0] + 1;
    s = malloc(size);
    buf = malloc(cap);
    if (!s || !buf)
        abort();
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    n = term_text_escape(s, buf, cap);
    len = strlen(buf); /* ASan: NUL-terminated within cap */
    if (len > cap - 1 || (n <= cap - 1 && len != n) || len > n)
        abort();
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];

        if (c < 0x20 || c == 0x7f)
            abort(); /* a C0 control or DEL reached the terminal */
        if (c == 0xc2 && i + 1 < len && (unsigned char)buf[i + 1] >= 0x80 &&
            (unsigned char)buf[i + 1] <= 0x9f)
            abort(); /* a C1 control (U+0080..U+009F) */
    }
    free(s);
    free(buf);
    return 0;
}
