/*
 * b64.h - standard base64 (RFC 4648, with padding), as the etcd v3 JSON gateway uses for keys
 * and values. Pure functions; thread-safe.
 */
#ifndef HOSTPATROL_B64_H
#define HOSTPATROL_B64_H

#include <stddef.h>

#include "hostpatrol/rc.h"

/* hp_b64_encoded_len: bytes hp_b64_encode writes for n input bytes, NUL excluded. */
size_t hp_b64_encoded_len(size_t n);

/* hp_b64_encode: encode n bytes of src into dst (hp_b64_encoded_len(n) + 1 bytes, borrowed),
 * NUL-terminated. Returns the length written (NUL excluded). */
size_t hp_b64_encode(const void *src, size_t n, char *dst);

/* hp_b64_decode: decode the n characters of src into a new buffer (*out owned: hp_free; always
 * NUL-terminated for convenience, *out_len excludes that NUL). Padding is optional; white
 * space is not accepted. Returns HP_ERR_INVALID for a character outside the alphabet or a
 * wrong length, HP_ERR_NOMEM; on error *out is NULL. */
hp_rc hp_b64_decode(const char *src, size_t n, char **out, size_t *out_len) HP_WUR;

#endif
