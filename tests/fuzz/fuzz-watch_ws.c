/* fuzz-watch_ws.c - what `hostpatrol watch` hears from the controller's /ws stream: the real
 * subcommand (hp_cmd_watch: libwebsockets' client, the message assembly across fragments, the
 * JSON of each message, the table) connects to a scripted peer (fuzz_peer.h) on loopback that
 * completes the websocket handshake, sends the input's frames and closes.
 * Input: byte 0: bit 0 = -o json (else the table), bit 1 = -n default web, bit 2 = the rest is
 * sent raw after the handshake; else the rest is frames, each a header byte (bit 7 FIN, bits
 * 0-3 the opcode), a 2-byte big-endian length and that many payload bytes.
 * FUZZ_WATCH_ECHO=1 in the environment shows watch's output (to look at a reproducer). */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "fuzz_peer.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/b64.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the current input (borrowed from libFuzzer for one input); lock keeps a late connection
 * from reading it after the input ended */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const uint8_t *in_data;
static size_t in_size;

static struct fuzz_peer *peer;
static FILE *devnull;
static char server[64];

/* accept_key: Sec-WebSocket-Accept for the request's key (RFC 6455 4.2.2) */
static bool accept_key(const char *head, char *out)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    const char *k = strcasestr(head, "\nSec-WebSocket-Key:");
    char buf[128];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    size_t n;

    if (!k)
        return false;
    k += 19;
    k += strspn(k, " \t");
    n = strcspn(k, "\r\n");
    if (n > 64)
        return false;
    memcpy(buf, k, n);
    memcpy(buf + n, guid, sizeof(guid) - 1);
    if (!EVP_Digest(buf, n + sizeof(guid) - 1, md, &md_len, EVP_sha1(), NULL))
        return false;
    hp_b64_encode(md, md_len, out);
    return true;
}

static bool frames(int fd, const uint8_t *p, size_t n)
{
    while (n >= 3) {
        size_t len = (size_t)p[1] << 8 | p[2], h = 2;
        uint8_t hdr[4] = {p[0] & 0x8f};

        p += 3;
        n -= 3;
        if (len > n)
            len = n;
        if (len < 126) {
            hdr[1] = (uint8_t)len;
        } else {
            hdr[1] = 126;
            hdr[2] = (uint8_t)(len >> 8);
            hdr[3] = (uint8_t)len;
            h = 4;
        }
        if (!fuzz_peer_write(fd, hdr, h) || !fuzz_peer_write(fd, p, len))
            return false;
        p += len;
        n -= len;
    }
    return true;
}

static enum fuzz_peer_next answer(void *arg, const char *head, int fd)
{
    char acc[64], hdr[256];
    int h;

    (void)arg;
    pthread_mutex_lock(&lock);
    if (in_data && accept_key(head, acc)) {
        h = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     acc);
        if (fuzz_peer_write(fd, hdr, (size_t)h)) {
            if (in_data[0] & 4)
                (void)fuzz_peer_write(fd, in_data + 1, in_size - 1);
            else
                (void)frames(fd, in_data + 1, in_size - 1);
        }
    }
    pthread_mutex_unlock(&lock);
    return FUZZ_PEER_CLOSE;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hp_alloc_install();
    devnull = getenv("FUZZ_WATCH_ECHO") ? stderr : fopen("/dev/null", "w");
    if (!devnull)
        abort();
    peer = fuzz_peer_new(answer, NULL);
    snprintf(server, sizeof(server), "ws://127.0.0.1:%d", fuzz_peer_port(peer));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[] = {"watch", "--server", server, "-o", "table", "-n", "default", "web", NULL};
    int argc = 5;

    if (!size)
        return 0;
    if (data[0] & 1)
        argv[4] = "json";
    if (data[0] & 2)
        argc = 8;
    pthread_mutex_lock(&lock);
    in_data = data;
    in_size = size;
    pthread_mutex_unlock(&lock);
    (void)hp_cmd_watch(argc, argv, devnull, devnull);
    pthread_mutex_lock(&lock);
    in_data = NULL;
    pthread_mutex_unlock(&lock);
    fuzz_peer_drop(peer);
    return 0;
}
