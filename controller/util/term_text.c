/* term_text.c - escaping for terminals (see include/hostpatrol/term_text.h). */
#include "hostpatrol/term_text.h"

#include <stdio.h>

/* utf8_len: the length of the valid UTF-8 sequence at s (1..4), or 0 if s starts no valid one
 * (stray continuation, overlong form, surrogate, above U+10FFFF, cut short) */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t n, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0; /* overlong */
    else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    else if (c == 0xF0)
        lo = 0x90; /* overlong */
    else if (c == 0xF4)
        hi = 0x8F; /* above U+10FFFF */
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

size_t term_text_escape(const char *s, char *buf, size_t cap)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t need = 0, used = 0, n, i;
    int cut = 0;

    while (*p) {
        char piece[16];
        size_t len;

        n = utf8_len(p);
        /* controls: C0, DEL, and C1 (U+0080..U+009F, encoded C2 80..C2 9F) */
        if (n == 1 && (*p < 0x20 || *p == 0x7F))
            n = 0;
        if (n == 2 && p[0] == 0xC2 && p[1] <= 0x9F) {
            len = (size_t)snprintf(piece, sizeof(piece), "\\x%02X\\x%02X", p[0], p[1]);
            n = 2;
        } else if (n == 0) {
            len = (size_t)snprintf(piece, sizeof(piece), "\\x%02X", *p);
            n = 1;
        } else {
            for (i = 0; i < n; i++)
                piece[i] = (char)p[i];
            len = n;
        }
        if (!cut && used + len < cap) {
            for (i = 0; i < len; i++)
                buf[used++] = piece[i];
        } else {
            cut = 1;
        }
        need += len;
        p += n;
    }
    buf[used] = '\0';
    return need;
}
