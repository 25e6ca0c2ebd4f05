/*
 * fuzz_peer.h - a scripted HTTP/1.1 peer on 127.0.0.1 for the fuzz targets whose untrusted
 * input arrives over a socket (etcd's answers, the apiserver's watch stream, the controller's
 * websocket stream): the product's own client (libcurl through http_conn, libwebsockets) talks
 * to it exactly as it talks to the real server, and the fuzz input decides what it hears back.
 *
 * One thread serves every connection (poll). For each complete request (head and a
 * Content-Length body) it calls the target's handler, which writes its answer on the socket and
 * says what becomes of the connection. Handlers run on the peer thread, one at a time.
 *
 * Ownership: the handler's arg is borrowed for the peer's life. Thread-safety: fuzz_peer_drop
 * may be called from any thread; fuzz_peer_free from the thread that made the peer.
 */
#ifndef HOSTPATROL_FUZZ_PEER_H
#define HOSTPATROL_FUZZ_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fuzz_peer_next {
    FUZZ_PEER_KEEP,  /* keep-alive: wait for the next request on this connection */
    FUZZ_PEER_CLOSE, /* close the connection now */
    FUZZ_PEER_HOLD,  /* answer nothing more: keep the connection open, unread, until dropped */
};

/* head: the request line and headers, NUL-terminated (borrowed for the call); fd: the
 * connection, to write the answer on (fuzz_peer_write) */
typedef enum fuzz_peer_next (*fuzz_peer_fn)(void *arg, const char *head, int fd);

struct fuzz_peer;

/* fuzz_peer_new: listen on 127.0.0.1 (a free port) and serve on a new thread. NULL on failure
 * (the reason printed: fuzz targets abort on it). */
struct fuzz_peer *fuzz_peer_new(fuzz_peer_fn handle, void *arg);
int fuzz_peer_port(const struct fuzz_peer *p);
/* fuzz_peer_drop: close every connection (between two inputs, so none carries state over). */
void fuzz_peer_drop(struct fuzz_peer *p);
void fuzz_peer_free(struct fuzz_peer *p); /* NULL allowed */

/* fuzz_peer_write: all n bytes of buf to fd (a peer that stopped reading makes it give up
 * after 2 s). false when the connection failed. */
bool fuzz_peer_write(int fd, const void *buf, size_t n);

/* fuzz_peer_chunked: body as HTTP chunks whose sizes come from cuts (n_cuts bytes; each
 * 1..256, cycled; none: one chunk), then the last chunk. */
bool fuzz_peer_chunked(int fd, const uint8_t *body, size_t len, const uint8_t *cuts, size_t n_cuts);

/* fuzz_split: the input's parts separated by the line "\n----\n" (none: one part). Up to max
 * parts go to part/part_len (borrowed from data); returns how many. */
size_t fuzz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *part_len,
                  size_t max);

#endif
