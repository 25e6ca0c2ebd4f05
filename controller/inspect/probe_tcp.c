/* probe_tcp.c - the tcp probe: connect through libcurl (CONNECT_ONLY), then send and read for
 * expect on our own non-blocking copy of the socket, driven by the run's poll loop. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "hostpatrol/alloc.h"
#include "inspect/probe_internal.h"

#define TCP_READ_MAX (64u << 10) /* bytes read looking for expect */

hp_rc probe_tcp_start(struct run *r, struct probe *p)
{
    hp_rc rc = probe_easy_start_host(r, p, "http", p->target->address, p->check->u.tcp.port);

    if (rc)
        return rc;
    /* no FORBID_REUSE: the socket must outlive CURLMSG_DONE to be taken over */
    return probe_easy_add(r, p);
}

hp_rc probe_tcp_connected(struct run *r, struct probe *p, CURLcode res)
{
    const struct tcp_check *t = &p->check->u.tcp;
    struct check_verdict v = {CHECK_OK, 0, ""};
    curl_socket_t s = CURL_SOCKET_BAD;
    char where[300], buf[128];
    hp_rc rc;
    int fl;

    rc = probe_put_times(p, TIMES_TCP);
    if (rc)
        return rc;
    snprintf(where, sizeof(where), "%s:%d", p->target->address, t->port);
    check_result_trim_utf8(where);
    if (res != CURLE_OK) {
        probe_transport_fail(p, res, where, &v);
        goto done;
    }
    if (curl_easy_getinfo(p->easy, CURLINFO_ACTIVESOCKET, &s) != CURLE_OK || s == CURL_SOCKET_BAD) {
        check_verdict_add(&v, CHECK_UNKNOWN, "connected to %s, but the socket was lost", where);
        goto done;
    }
    p->fd = fcntl(s, F_DUPFD_CLOEXEC, 0);
    fl = p->fd >= 0 ? fcntl(p->fd, F_GETFL) : -1;
    if (fl < 0 || fcntl(p->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        check_verdict_add(&v, CHECK_UNKNOWN, "connected to %s, but: %s", where,
                          probe_errno_str(errno, buf, sizeof(buf)));
        goto done;
    }
    if (!t->send && !t->expect)
        goto done;
    p->phase = t->send ? PH_TCP_SEND : PH_TCP_RECV;
    r->n_io++;
    return probe_tcp_io(r, p);
done:
    rc = probe_put_ms(p, "total_ms", probe_elapsed_us(p));
    return rc ? rc : probe_finish(r, p, &v);
}

/* probe_tcp_io: send, then read for expect, as far as the socket allows without blocking. */
hp_rc probe_tcp_io(struct run *r, struct probe *p)
{
    const struct tcp_check *t = &p->check->u.tcp;
    struct check_verdict v = {CHECK_OK, 0, ""};
    char q[QUOTE_MAX], buf[128];
    size_t len, elen;
    hp_rc rc;

    if (p->phase == PH_TCP_SEND) {
        len = strlen(t->send);
        while (p->sent < len) {
            ssize_t k = send(p->fd, t->send + p->sent, len - p->sent, MSG_NOSIGNAL);

            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return HP_OK;
            if (k < 0) {
                check_verdict_add(&v, CHECK_CRIT, "send to %s:%d: %s", p->target->address, t->port,
                                  probe_errno_str(errno, buf, sizeof(buf)));
                goto done;
            }
            p->sent += (size_t)k;
        }
        if (!t->expect)
            goto done;
        p->phase = PH_TCP_RECV;
    }
    elen = strlen(t->expect);
    if (!p->rbuf) {
        p->rbuf = hp_malloc(TCP_READ_MAX + 1);
        if (!p->rbuf)
            return HP_ERR_NOMEM;
    }
    for (;;) {
        size_t from = p->rlen >= elen ? p->rlen - elen + 1 : 0;
        ssize_t k;

        if (elen == 0)
            goto done;
        if (p->rlen >= TCP_READ_MAX) {
            check_verdict_add(&v, CHECK_CRIT, "expected \"%s\" not in the first %u bytes",
                              probe_quote(t->expect, q, sizeof(q)), TCP_READ_MAX);
            goto done;
        }
        k = recv(p->fd, p->rbuf + p->rlen, TCP_READ_MAX - p->rlen, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return HP_OK;
        if (k < 0) {
            check_verdict_add(&v, CHECK_CRIT, "read from %s:%d: %s (got %zu bytes)",
                              p->target->address, t->port, probe_errno_str(errno, buf, sizeof(buf)),
                              p->rlen);
            goto done;
        }
        if (k == 0) {
            check_verdict_add(&v, CHECK_CRIT,
                              "expected \"%s\" not received: connection closed after %zu bytes",
                              probe_quote(t->expect, q, sizeof(q)), p->rlen);
            goto done;
        }
        p->rlen += (size_t)k;
        if (memmem(p->rbuf + from, p->rlen - from, t->expect, elen))
            goto done;
    }
done:
    r->n_io--;
    rc = probe_put_ms(p, "total_ms", probe_elapsed_us(p));
    return rc ? rc : probe_finish(r, p, &v);
}
