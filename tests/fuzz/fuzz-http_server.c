/* fuzz-http_server.c - the controller's HTTP server (/metrics, /healthz, /readyz, and the /ws
 * websocket stream) on any request bytes: the server runs on loopback as in the controller,
 * each input is sent raw on a new connection (then the write side is shut), and the answer is
 * read until the server closes, stays silent for FUZZ_HTTP_IDLE_MS once everything was sent
 * (lws keeps a connection with a partial request open after the client's half-close), or
 * FUZZ_HTTP_DEADLINE_MS passes. Each input also publishes one
 * message, so a websocket client that got through the upgrade is sent something. The server
 * also has static assets (/, /app.js) and the dashboard's protocol (kept messages, a token as
 * the first message) behind an access check that admits no token and "ok" and refuses the rest.
 * FUZZ_HTTP_ECHO=1 in the environment copies the answers to stderr (to look at a reproducer). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/http_server.h"

#define FUZZ_HTTP_DEADLINE_MS 1000
#define FUZZ_HTTP_IDLE_MS     3

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct http_server *server;
static struct sockaddr_in addr;
static bool echo;

static int metrics(void *arg, char **body, size_t *len, const char **content_type)
{
    size_t n = 40000; /* more than one HTTP_CHUNK */

    (void)arg;
    *body = hp_malloc(n);
    if (!*body)
        return 500;
    memset(*body, '#', n);
    *len = n;
    *content_type = "text/plain; version=0.0.4";
    return 200;
}

static int healthz(void *arg, char **body, size_t *len, const char **content_type)
{
    (void)arg;
    (void)content_type;
    *body = hp_strdup("ok\n");
    *len = *body ? 3 : 0;
    return 200;
}

static int readyz(void *arg, char **body, size_t *len, const char **content_type)
{
    (void)arg;
    (void)content_type;
    *body = NULL;
    *len = 0;
    return 503;
}

/* the access check: no token (what the routes and plain websocket clients send here) and "ok"
 * are admitted, for every namespace but "secret"; anything else is 401 */
static int check(void *arg, const char *token, const char *path, const char *ns, char *msg,
                 size_t n)
{
    (void)arg;
    (void)path;
    if (token && strcmp(token, "ok")) {
        snprintf(msg, n, "bad token");
        return 401;
    }
    if (ns && !strcmp(ns, "secret")) {
        snprintf(msg, n, "not that namespace");
        return 403;
    }
    return 200;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const struct http_route routes[] = {
        {"/metrics", metrics, NULL}, {"/healthz", healthz, NULL}, {"/readyz", readyz, NULL}};
    static const unsigned char page[] = "<!doctype html><p>page</p>";
    static const struct http_asset assets[] = {
        {"/", "text/html; charset=utf-8", page, sizeof(page) - 1},
        {"/app.js", "text/javascript; charset=utf-8", (const unsigned char *)"1;", 2}};
    const struct http_server_opts o = {.ws_path = "/ws",
                                       .auth = check,
                                       .auth_wait_ms = 500,
                                       .assets = assets,
                                       .n_assets = 2,
                                       .ws_protocol = "hostpatrol.dashboard.v1"};
    struct hp_err err = {0};

    (void)argc;
    (void)argv;
    hp_alloc_install();
    echo = getenv("FUZZ_HTTP_ECHO") != NULL;
    if (http_server_start_opts("127.0.0.1:0", routes, 3, &o, &server, &err)) {
        fprintf(stderr, "fuzz-http_server: %s\n", err.msg);
        abort();
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)http_server_port(server));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    http_server_keep(server, 1, "default", "web", "{\"type\":\"inspection\"}", NULL);
    http_server_keep(server, 1, "secret", "x", "{\"type\":\"inspection\"}", NULL);
    http_server_set_notice(server, "{\"type\":\"replica\",\"leading\":true}");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* non-blocking: libFuzzer's SIGALRM (its -timeout clock) interrupts blocking calls */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int64_t end = hp_now_ns() + FUZZ_HTTP_DEADLINE_MS * 1000000LL;
    size_t off = 0;
    char buf[65536];
    bool published = false;

    if (fd < 0 || (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) && errno != EINPROGRESS)) {
        perror("fuzz-http_server: connect");
        abort();
    }
    /* send while reading (a pipelined request may be answered before it is all sent) */
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (off < size ? POLLOUT : 0)};
        int64_t left = (end - hp_now_ns()) / 1000000;
        ssize_t n;
        int k;

        if (off == size && left > FUZZ_HTTP_IDLE_MS)
            left = FUZZ_HTTP_IDLE_MS;
        if (left <= 0)
            break;
        k = poll(&p, 1, (int)left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        if (p.revents & POLLOUT) {
            n = send(fd, data + off, size - off, MSG_NOSIGNAL);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0)
                off = size;
            else
                off += (size_t)n;
            if (off == size)
                shutdown(fd, SHUT_WR);
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            n = recv(fd, buf, sizeof(buf), 0);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0)
                break;
            if (echo)
                fwrite(buf, 1, (size_t)n, stderr);
            if (!published && memmem(buf, (size_t)n, "101 Switching", 13)) {
                http_server_keep(server, HTTP_KEEP_ALL, "default", "web", "{\"results\":[]}", NULL);
                published = true;
            }
        }
        if (off == size && size == 0)
            shutdown(fd, SHUT_WR);
    }
    if (!published)
        http_server_publish(server, "default", "web", "{\"results\":[]}");
    close(fd);
    return 0;
}
