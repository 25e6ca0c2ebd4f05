/* fuzz-kube_watch.c - what the apiserver sends an informer: a real kube_informer (LIST, then
 * WATCH, relist after 410 Gone) through a real kube_client over loopback to a scripted peer
 * (fuzz_peer.h). Reached: the client's splitting of the chunked watch stream into JSON lines
 * (an object across chunks, several in one), Status bodies of failed requests, the informer's
 * event handling (ADDED / MODIFIED / DELETED / BOOKMARK / ERROR with code 410), the cache and
 * the relist's diff with the old cache.
 * Input: one answer per request in order, separated by lines "----": a byte (bits 0-3: status,
 * see statuses[]; bits 4-7: HTTP chunk size, 0 = one chunk, k = 7k bytes) and the body. The
 * informer's first request beyond the answers, or its first error (it would back off), ends the
 * input. */
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_peer.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/kube_client.h"
#include "hostpatrol/kube_informer.h"

#define MAX_ANSWERS 6
#define MAX_KEYS    16
#define DEADLINE_MS 4000

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int statuses[16] = {200, 200, 200, 200, 200, 200, 200, 200,
                                 410, 500, 429, 401, 403, 404, 200, 200};

/* the current input's answers (borrowed from libFuzzer for one input) and the keys the handler
 * saw; lock also keeps a late request from reading the answers after the input ended */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct {
    const uint8_t *part[MAX_ANSWERS];
    size_t len[MAX_ANSWERS], n, next;
    bool done; /* a request came beyond the answers */
    char keys[MAX_KEYS][512];
    size_t n_keys;
} in;

static struct fuzz_peer *peer;
static struct kube_client *client;

static enum fuzz_peer_next answer(void *arg, const char *head, int fd)
{
    const uint8_t *body;
    size_t len;
    uint8_t cut;
    char hdr[256];
    int h;
    bool ok;

    (void)arg;
    (void)head;
    pthread_mutex_lock(&lock);
    if (in.next >= in.n) {
        in.done = true;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        return FUZZ_PEER_HOLD; /* no answer: the informer waits until it is stopped */
    }
    body = in.part[in.next];
    len = in.len[in.next++];
    cut = len ? (uint8_t)((body[0] >> 4) * 7 - 1) : 0;
    h = snprintf(hdr, sizeof(hdr),
                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n",
                 len ? statuses[body[0] & 15] : 200);
    ok = fuzz_peer_write(fd, hdr, (size_t)h) &&
         fuzz_peer_chunked(fd, len ? body + 1 : body, len ? len - 1 : 0, &cut,
                           len && body[0] >> 4 ? 1 : 0);
    (void)ok;
    pthread_mutex_unlock(&lock);
    return FUZZ_PEER_CLOSE; /* the end of a watch: the server ended it */
}

static void on_event(void *arg, enum kube_event type, const char *key, json_t *obj)
{
    (void)arg;
    if (!key || !obj || !kube_event_name(type))
        abort();
    pthread_mutex_lock(&lock);
    if (in.n_keys < MAX_KEYS)
        snprintf(in.keys[in.n_keys++], sizeof(in.keys[0]), "%s", key);
    pthread_mutex_unlock(&lock);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char server[64];
    struct kube_config cfg = {.source = "fuzz", .namespace_ = "default"};
    struct hp_err err = {0};

    (void)argc;
    (void)argv;
    hp_alloc_install();
    peer = fuzz_peer_new(answer, NULL);
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", fuzz_peer_port(peer));
    cfg.server = server;
    if (kube_client_new(&cfg, &client, &err))
        abort();
    return 0;
}

/* finished: the informer asked beyond the answers, or met an error it would back off from */
static bool finished(struct kube_informer *inf)
{
    struct kube_informer_stats st;

    kube_informer_stats(inf, &st);
    return in.done || st.errors > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kube_informer_config cfg = {.client = client,
                                       .path = "/apis/hostpatrol.io/v1alpha1/hostinspections",
                                       .page_size = 2,
                                       .stall_ms = 3000,
                                       .watch_timeout_s = 60,
                                       .on_event = on_event};
    struct kube_informer *inf = NULL;
    struct hp_err err = {0};
    int64_t end = hp_now_ns() + DEADLINE_MS * 1000000LL;

    pthread_mutex_lock(&lock);
    in.n = fuzz_split(data, size, in.part, in.len, MAX_ANSWERS);
    in.next = 0;
    in.done = false;
    in.n_keys = 0;
    pthread_mutex_unlock(&lock);
    if (kube_informer_start(&cfg, &inf, &err))
        abort();
    pthread_mutex_lock(&lock);
    while (!finished(inf) && hp_now_ns() < end) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 1000000; /* errors are counted without a signal: look every ms */
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&cond, &lock, &ts);
    }
    for (size_t i = 0; i < in.n_keys; i++) {
        char key[512];
        json_t *obj;

        memcpy(key, in.keys[i], sizeof(key));
        pthread_mutex_unlock(&lock);
        obj = kube_informer_get(inf, key);
        json_decref(obj);
        pthread_mutex_lock(&lock);
    }
    in.n = 0;
    pthread_mutex_unlock(&lock);
    (void)kube_informer_size(inf);
    (void)kube_informer_ready(inf, 1000);
    kube_informer_stop(inf);
    fuzz_peer_drop(peer);
    return 0;
}
