/*
 * pb_vectors.h - protobuf test vectors made by protoc, the reference encoder:
 * tests/data/etcd/pb/NAME.hex is protoc's encoding of NAME.txtpb with our own etcd-subset.proto
 * (tests/tools/gen-pb-vectors.sh regenerates them), so unit tests never need protoc.
 * Include after <cmocka.h>; tests run from the repository root.
 */
#ifndef HOSTPATROL_TEST_PB_VECTORS_H
#define HOSTPATROL_TEST_PB_VECTORS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/buf.h"
#include "hostpatrol/pb_writer.h"

struct pb_vec {
    unsigned char *p; /* owned: hp_free() */
    size_t n;
};

static int pb_vec_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* pb_vec_load: tests/data/etcd/pb/NAME.hex as bytes; fails the test when it cannot */
static struct pb_vec pb_vec_load(const char *name)
{
    char path[256];
    struct pb_vec v = {NULL, 0};
    struct hp_buf bytes;
    FILE *f;
    int c, hi = -1;

    snprintf(path, sizeof(path), "tests/data/etcd/pb/%s.hex", name);
    f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s (run from the repository root)", path);
    hp_buf_init(&bytes, 0);
    while ((c = fgetc(f)) != EOF) {
        int x = pb_vec_hexval(c);

        if (c == '\n' || c == ' ')
            continue;
        if (x < 0)
            fail_msg("%s: not hex: '%c'", path, c);
        if (hi < 0) {
            hi = x;
            continue;
        }
        assert_int_equal(hp_buf_addch(&bytes, (char)(hi << 4 | x)), HP_OK);
        hi = -1;
    }
    fclose(f);
    assert_int_equal(hi, -1);
    v.p = (unsigned char *)hp_buf_detach(&bytes, &v.n);
    assert_non_null(v.p);
    return v;
}

static void pb_vec_print(const char *what, const unsigned char *p, size_t n)
{
    fprintf(stderr, "# %s (%zu):", what, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%02x", p[i]);
    fprintf(stderr, "\n");
}

/* pb_vec_same_as_protoc: w's bytes equal NAME.hex (both printed when not); w released */
static void pb_vec_same_as_protoc(struct pb_writer *w, const char *name)
{
    struct pb_vec v = pb_vec_load(name);

    assert_int_equal(pb_writer_error(w), HP_OK);
    if (pb_writer_len(w) != v.n || (v.n && memcmp(pb_writer_data(w), v.p, v.n))) {
        pb_vec_print("C", pb_writer_data(w), pb_writer_len(w));
        pb_vec_print("protoc", v.p, v.n);
        fail_msg("%s: the C encoding differs from protoc's", name);
    }
    hp_free(v.p);
    pb_writer_release(w);
}

#endif
