/*
 * replay_server.h - a tiny loopback HTTP server for parser unit tests: it answers every request
 * with one recorded response (status + body), or accepts and never answers (to test deadlines),
 * or closes at once. Not a substitute for a real etcd: integration tests use the real one.
 */
#ifndef HOSTPATROL_TEST_REPLAY_SERVER_H
#define HOSTPATROL_TEST_REPLAY_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum replay_mode { REPLAY_ANSWER, REPLAY_SILENT, REPLAY_CLOSE };

struct replay_server {
    int fd, port, stop_pipe[2];
    enum replay_mode mode;
    int status;
    char body[4096];
    int requests;
    pthread_t thread;
};

static void *replay_loop(void *arg)
{
    struct replay_server *s = arg;

    for (;;) {
        struct pollfd p[2] = {{.fd = s->fd, .events = POLLIN},
                              {.fd = s->stop_pipe[0], .events = POLLIN}};
        char req[65536], resp[8192];
        int c, n;

        if (poll(p, 2, -1) < 0 || p[1].revents)
            return NULL;
        c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        s->requests++;
        if (s->mode == REPLAY_CLOSE) {
            close(c);
            continue;
        }
        n = (int)read(c, req, sizeof(req)); /* one read holds our small requests */
        (void)n;
        if (s->mode == REPLAY_SILENT) {
            struct pollfd q[2] = {{.fd = c, .events = POLLIN},
                                  {.fd = s->stop_pipe[0], .events = POLLIN}};

            poll(q, 2, -1); /* until the client gives up or the test ends */
            close(c);
            continue;
        }
        n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     s->status, strlen(s->body), s->body);
        if (write(c, resp, (size_t)n) < 0) {
        }
        close(c);
    }
}

static int replay_start(struct replay_server *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);

    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) || listen(s->fd, 16) ||
        getsockname(s->fd, (struct sockaddr *)&a, &len) || pipe(s->stop_pipe))
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->thread, NULL, replay_loop, s);
}

static void replay_stop(struct replay_server *s)
{
    if (write(s->stop_pipe[1], "x", 1) < 0) {
    }
    pthread_join(s->thread, NULL);
    close(s->fd);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
}

#endif
