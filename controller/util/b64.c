/* b64.c - base64 encode/decode (see include/hostpatrol/b64.h). */
#include "hostpatrol/b64.h"

#include <stdint.h>

#include "hostpatrol/alloc.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t hp_b64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

size_t hp_b64_encode(const void *src, size_t n, char *dst)
{
    const unsigned char *s = src;
    size_t i, o = 0;

    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

        dst[o++] = alphabet[v >> 18];
        dst[o++] = alphabet[(v >> 12) & 63];
        dst[o++] = alphabet[(v >> 6) & 63];
        dst[o++] = alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);

        dst[o++] = alphabet[v >> 18];
        dst[o++] = alphabet[(v >> 12) & 63];
        dst[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        dst[o++] = '=';
    }
    dst[o] = '\0';
    return o;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

hp_rc hp_b64_decode(const char *src, size_t n, char **out, size_t *out_len)
{
    unsigned char *d;
    uint32_t acc = 0;
    size_t i, o = 0;
    int bits = 0;

    *out = NULL;
    *out_len = 0;
    while (n > 0 && src[n - 1] == '=' && n % 4 != 1)
        n--;
    if (n % 4 == 1)
        return HP_ERR_INVALID;
    d = hp_malloc(n / 4 * 3 + 3);
    if (!d)
        return HP_ERR_NOMEM;
    for (i = 0; i < n; i++) {
        int v = b64_value((unsigned char)src[i]);

        if (v < 0) {
            hp_free(d);
            return HP_ERR_INVALID;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    d[o] = '\0';
    *out = (char *)d;
    *out_len = o;
    return HP_OK;
}
