/* fuzz_peer.c - a scripted HTTP/1.1 peer for fuzz targets (see fuzz_peer.h). */
#include "fuzz_peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64
#define HEAD_MAX  (64 * 1024)

struct conn {
    int fd; /* -1: free slot */
    bool held;
    char buf[HEAD_MAX + 1];
    size_t len;
};

struct fuzz_peer {
    int lfd, port;
    int wake[2]; /* a byte on wake[1] stops the thread */
    fuzz_peer_fn handle;
    void *arg;
    pthread_t thread;
    pthread_mutex_t lock; /* guards conns */
    struct conn *conns;
};

bool fuzz_peer_write(int fd, const void *buf, size_t n)
{
    const char *p = buf;

    while (n) {
        struct pollfd w = {.fd = fd, .events = POLLOUT};
        ssize_t k;
        int r = poll(&w, 1, 2000);

        if (r < 0 && errno == EINTR)
            continue; /* libFuzzer's SIGALRM */
        if (r != 1)
            return false;
        k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

bool fuzz_peer_chunked(int fd, const uint8_t *body, size_t len, const uint8_t *cuts, size_t n_cuts)
{
    size_t off = 0, i = 0;
    char hdr[32];

    while (off < len) {
        size_t n = n_cuts ? (size_t)cuts[i++ % n_cuts] + 1 : len - off;
        int h;

        if (n > len - off)
            n = len - off;
        h = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
        if (!fuzz_peer_write(fd, hdr, (size_t)h) || !fuzz_peer_write(fd, body + off, n) ||
            !fuzz_peer_write(fd, "\r\n", 2))
            return false;
        off += n;
    }
    return fuzz_peer_write(fd, "0\r\n\r\n", 5);
}

size_t fuzz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *part_len,
                  size_t max)
{
    static const char sep[] = "\n----\n";
    size_t n = 0, start = 0, i = 0;

    while (n + 1 < max && i + sizeof(sep) - 1 <= size) {
        if (!memcmp(data + i, sep, sizeof(sep) - 1)) {
            part[n] = data + start;
            part_len[n++] = i - start;
            i += sizeof(sep) - 1;
            start = i;
        } else {
            i++;
        }
    }
    part[n] = data + start;
    part_len[n++] = size - start;
    return n;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->held = false;
    c->len = 0;
}

/* request_end: the length of the first complete request in c->buf, 0 if not complete yet */
static size_t request_end(const struct conn *c)
{
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4), *p;
    size_t head = end ? (size_t)(end - c->buf) + 4 : 0, body = 0;

    if (!head)
        return 0;
    for (p = c->buf; p && p < end; p = memchr(p, '\n', (size_t)(end - p)), p = p ? p + 1 : p)
        if (!strncasecmp(p, "content-length:", 15))
            body = strtoul(p + 15, NULL, 10);
    return head + body <= c->len ? head + body : 0;
}

/* serve: read from c, answer every complete request (caller holds the lock) */
static void serve(struct fuzz_peer *p, struct conn *c)
{
    ssize_t k = recv(c->fd, c->buf + c->len, HEAD_MAX - c->len, MSG_DONTWAIT);
    size_t used;

    if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(c);
        return;
    }
    if (k < 0 || c->held)
        return;
    c->len += (size_t)k;
    while (c->fd >= 0 && !c->held && (used = request_end(c))) {
        enum fuzz_peer_next next;
        char *head_end = memmem(c->buf, used, "\r\n\r\n", 4);

        head_end[2] = '\0';
        next = p->handle(p->arg, c->buf, c->fd);
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        if (next == FUZZ_PEER_CLOSE)
            conn_close(c);
        else if (next == FUZZ_PEER_HOLD)
            c->held = true;
    }
    if (c->fd >= 0 && c->len == HEAD_MAX)
        conn_close(c); /* a request larger than we take */
}

static void *peer_main(void *arg)
{
    struct fuzz_peer *p = arg;

    for (;;) {
        struct pollfd fds[MAX_CONNS + 2];
        int idx[MAX_CONNS + 2];
        size_t n = 0, i;

        fds[n++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        pthread_mutex_lock(&p->lock);
        for (i = 0; i < MAX_CONNS; i++)
            if (p->conns[i].fd >= 0) {
                idx[n] = (int)i;
                fds[n++] = (struct pollfd){.fd = p->conns[i].fd, .events = POLLIN};
            }
        pthread_mutex_unlock(&p->lock);
        if (poll(fds, n, 200) < 0 && errno != EINTR)
            break;
        if (fds[0].revents)
            break;
        pthread_mutex_lock(&p->lock);
        for (i = 2; i < n; i++) {
            struct conn *c = &p->conns[idx[i]];

            if (fds[i].revents && c->fd == fds[i].fd)
                serve(p, c);
        }
        if (fds[1].revents & POLLIN) {
            int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC), one = 1;

            for (i = 0; fd >= 0 && i < MAX_CONNS && p->conns[i].fd >= 0; i++)
                ;
            if (fd >= 0 && i == MAX_CONNS) {
                close(fd);
            } else if (fd >= 0) {
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                p->conns[i].fd = fd;
                p->conns[i].len = 0;
                p->conns[i].held = false;
            }
        }
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

struct fuzz_peer *fuzz_peer_new(fuzz_peer_fn handle, void *arg)
{
    struct fuzz_peer *p = calloc(1, sizeof(*p));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    size_t i;

    if (!p || !(p->conns = calloc(MAX_CONNS, sizeof(*p->conns)))) {
        fprintf(stderr, "fuzz_peer: out of memory\n");
        abort();
    }
    for (i = 0; i < MAX_CONNS; i++)
        p->conns[i].fd = -1;
    p->handle = handle;
    p->arg = arg;
    pthread_mutex_init(&p->lock, NULL);
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(p->lfd, 64) ||
        getsockname(p->lfd, (struct sockaddr *)&a, &alen) || pipe2(p->wake, O_CLOEXEC) ||
        pthread_create(&p->thread, NULL, peer_main, p)) {
        fprintf(stderr, "fuzz_peer: cannot listen on 127.0.0.1: %s\n", strerror(errno));
        abort();
    }
    p->port = ntohs(a.sin_port);
    return p;
}

int fuzz_peer_port(const struct fuzz_peer *p)
{
    return p->port;
}

void fuzz_peer_drop(struct fuzz_peer *p)
{
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < MAX_CONNS; i++)
        conn_close(&p->conns[i]);
    pthread_mutex_unlock(&p->lock);
}

void fuzz_peer_free(struct fuzz_peer *p)
{
    if (!p)
        return;
    if (write(p->wake[1], "x", 1) == 1)
        pthread_join(p->thread, NULL);
    fuzz_peer_drop(p);
    close(p->lfd);
    close(p->wake[0]);
    close(p->wake[1]);
    pthread_mutex_destroy(&p->lock);
    free(p->conns);
    free(p);
}
