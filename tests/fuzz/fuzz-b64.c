/* fuzz-b64.c - hp_b64_decode on any bytes (etcd keys and values, kubeconfig *-data fields), and
 * the round trips: encode(x) decodes to x; a decoded value encodes to something that decodes to
 * it again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/b64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out = NULL, *enc = NULL, *again = NULL;
    size_t out_len = 0, again_len = 0;

    if (!hp_b64_decode((const char *)data, size, &out, &out_len)) {
        enc = hp_malloc(hp_b64_encoded_len(out_len) + 1);
        if (enc) {
            size_t n = hp_b64_encode(out, out_len, enc);

            if (hp_b64_decode(enc, n, &again, &again_len) || again_len != out_len ||
                memcmp(again, out, out_len))
                abort(); /* a decoded value must survive encode + decode */
        }
    }
    hp_free(out);
    hp_free(enc);
    hp_free(again);

    enc = hp_malloc(hp_b64_encoded_len(size) + 1);
    if (enc) {
        size_t n = hp_b64_encode(data, size, enc);

        if (n != hp_b64_encoded_len(size) || hp_b64_decode(enc, n, &out, &out_len) ||
            out_len != size || memcmp(out, data, size) || out[out_len] != '\0')
            abort(); /* encode then decode must give the input back */
        hp_free(out);
    }
    hp_free(enc);
    return 0;
}
