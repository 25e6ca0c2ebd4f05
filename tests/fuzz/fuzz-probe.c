/* fuzz-probe.c - what a probed host answers, through the real probes (probe_run): an http check
 * (status against expectStatus, bodyRegex over the body, the reason built from what the server
 * sent) and a tcp check with send/expect, both to a scripted peer on loopback (fuzz_peer.h)
 * that answers the input's bytes as they are (HTTP status line and headers included) and
 * closes. Every result that is not OK must say why, in valid UTF-8 (probe.h).
 * Input: byte 0 picks the checks (bit 0: http, bit 1: tcp; neither: both), the rest is the
 * answer. */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_peer.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/check_result.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/inspection_spec.h"
#include "hostpatrol/probe.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the current answer (borrowed from libFuzzer for one input); lock keeps a late connection from
 * reading it after the input ended */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const uint8_t *answer_data;
static size_t answer_len;

static struct fuzz_peer *peer;
static struct inspection_spec spec;

static enum fuzz_peer_next answer(void *arg, const char *head, int fd)
{
    (void)arg;
    (void)head;
    pthread_mutex_lock(&lock);
    if (answer_data)
        (void)fuzz_peer_write(fd, answer_data, answer_len);
    pthread_mutex_unlock(&lock);
    return FUZZ_PEER_CLOSE;
}

/* utf8_ok: s is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF) */
static bool utf8_ok(const unsigned char *s)
{
    while (*s) {
        size_t n = *s < 0x80                  ? 0
                   : *s >= 0xc2 && *s <= 0xdf ? 1
                   : (*s & 0xf0) == 0xe0      ? 2
                   : *s >= 0xf0 && *s <= 0xf4 ? 3
                                              : 9;
        unsigned cp = n == 0 ? *s : n == 1 ? *s & 0x1f : n == 2 ? *s & 0x0f : *s & 0x07;

        if (n == 9)
            return false;
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i] & 0x3f);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        s += n + 1;
    }
    return true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char text[1024];
    struct hp_err err = {0};
    json_t *j;
    int port;

    (void)argc;
    (void)argv;
    hp_alloc_install();
    if (curl_global_init(CURL_GLOBAL_DEFAULT))
        abort();
    peer = fuzz_peer_new(answer, NULL);
    port = fuzz_peer_port(peer);
    /* the tcp probe's "send" ends with an empty line, so the peer takes it for a request */
    snprintf(text, sizeof(text),
             "{\"interval\":\"30s\",\"timeout\":\"5s\","
             "\"targets\":[{\"name\":\"peer\",\"address\":\"127.0.0.1\"}],\"checks\":["
             "{\"name\":\"h\",\"http\":{\"url\":\"http://127.0.0.1:%d/healthz\","
             "\"expectStatus\":[200,204],\"bodyRegex\":\"\\\"status\\\": *\\\"ok\\\"|(a+)+$\"}},"
             "{\"name\":\"t\",\"tcp\":{\"port\":%d,\"send\":\"PING\\r\\n\\r\\n\","
             "\"expect\":\"PONG\"}}]}",
             port, port);
    j = json_loads(text, 0, NULL);
    if (!j || inspection_spec_parse(j, &spec, &err)) {
        fprintf(stderr, "fuzz-probe: %s\n", err.msg);
        abort();
    }
    json_decref(j);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct probe_item items[2];
    struct check_result out[2];
    struct hp_ctx *ctx = NULL;
    struct hp_err err = {0};
    size_t n = 0;
    uint8_t sel;

    if (!size)
        return 0;
    sel = data[0] & 3 ? data[0] & 3 : 3;
    if (sel & 1)
        items[n++] = (struct probe_item){.check = &spec.checks[0]};
    if (sel & 2)
        items[n++] = (struct probe_item){.check = &spec.checks[1], .target = &spec.targets[0]};
    pthread_mutex_lock(&lock);
    answer_data = data + 1;
    answer_len = size - 1;
    pthread_mutex_unlock(&lock);
    if (hp_ctx_new(NULL, 3000, &ctx))
        abort();
    if (!probe_run(items, n, ctx, out, &err))
        for (size_t i = 0; i < n; i++)
            if ((out[i].status != CHECK_OK && (!out[i].reason || !out[i].reason[0])) ||
                (out[i].reason && !utf8_ok((const unsigned char *)out[i].reason)))
                abort(); /* a result that is not OK says why, in valid UTF-8 */
    for (size_t i = 0; i < n; i++)
        check_result_release(&out[i]); /* whatever probe_run returned */
    hp_ctx_free(ctx);
    pthread_mutex_lock(&lock);
    answer_data = NULL;
    pthread_mutex_unlock(&lock);
    fuzz_peer_drop(peer);
    return 0;
}
