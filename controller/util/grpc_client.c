/* grpc_client.c - unary gRPC over libcurl HTTP/2 (see include/hostpatrol/grpc_client.h). */
/* curl_multi_socket_all (below, the driver's kick) is marked deprecated since 7.19.5 but is
 * libcurl's one call that runs every transfer of a socket-API multi handle and updates its
 * sockets; the mark would break -Werror */
#define CURL_DISABLE_DEPRECATION
#include "hostpatrol/grpc_client.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/buf.h"

#define MSG_MAX_DEFAULT (256u << 20)
#define IDLE_MAX        32 /* easy handles kept for reuse */
#define ATTEMPTS        3  /* a call answered over HTTP/1.1 (see the header) is sent again */
#define LANES           GRPC_CLIENT_LANES
#define LANE_CALLS      GRPC_CLIENT_LANE_CALLS
#define WAKE_TAG        ((uint64_t)LANES << 32) /* the eventfd's epoll tag */
#define KICK_MS         250 /* a lane with calls runs all its transfers at least this often */

/* what the client knows of one lane's h2c connection to an endpoint: it is reused (primed)
 * only once a call on a connection of its own got an HTTP/2 answer on it, on every libcurl
 * (grpc_client.h: the 10634 workaround on < 8; on >= 8 it keeps calls off connections that never
 * answered) */
struct endpoint {
    struct endpoint *next;
    char *url;
    bool primed;      /* a call on a connection of its own got an HTTP/2 answer on it */
    unsigned priming; /* prime requests under way (a call that finds none primed opens its own
                       * connection rather than wait for another's prime) */
};

enum call_state { QUEUED, RUNNING, DONE };

/* one multi handle and its connections. The driver thread alone touches multi, timer_ns and
 * last_rx_ns (libcurl's callbacks run there); running, eps, load and busy_ns are under the
 * client's mu. */
struct lane {
    CURLM *multi;
    unsigned idx;            /* in the client's lanes */
    int epfd;                /* the client's (borrowed) */
    struct pending *running; /* handed to multi */
    struct endpoint *eps;    /* its h2c connections' priming state */
    size_t load;             /* calls that chose this lane and have not ended */
    int64_t timer_ns;        /* when libcurl wants its timeout action; -1: none */
    int64_t last_rx_ns;      /* the last byte any of its transfers received */
    int64_t busy_ns;         /* since when calls have been in flight without a pause */
    int64_t rtt_ns;          /* a moving average of its answered calls' times (driver thread) */
    int64_t kick_ns;         /* when its transfers were last all run (driver thread) */
    bool retire;             /* its connection is taken for silent (judge_lane): its
                              * connections are closed once its calls ended, and no new call
                              * takes it meanwhile */
    uint64_t gen;            /* lane_reset count: a prime that ended after a reset of its lane
                              * primes nothing (its connection went with the reset) */
};

/* one call handed to the driver; the caller's stack holds it */
struct pending {
    struct pending *next;
    struct lane *lane; /* borrowed: the lane it runs on */
    CURL *easy;
    struct curl_slist *hdrs, *connect_to;
    struct grpc_result *res;
    unsigned char prefix[5]; /* the gRPC frame's: uncompressed, the message's length */
    const char *msg;         /* the message (borrowed from the caller, who waits): sent after
                              * prefix by on_read, never copied here */
    size_t msg_len, off;     /* off: how much of prefix + msg libcurl has read */
    struct hp_buf in;        /* the answer's raw body (owned), at most max_msg bytes */
    enum call_state state;
    pthread_cond_t done; /* state became DONE: only its caller waits here (one condition for
                          * every call woke all 16 of a batch queue's senders per answer) */
    bool cancel;         /* the caller's context ended: the driver removes it */
    bool reuse;          /* h2c, meant for its lane's primed connection */
    bool rx;             /* a byte of the answer (header or body) arrived */
    int64_t start_ns;    /* handed to the driver */
};

struct grpc_client {
    pthread_mutex_t mu;           /* guards: submit, the lanes' running, eps, load and busy_ns,
                                   * idle, n_idle, stop, asleep, st, and each pending's state and
                                   * cancel */
    pthread_condattr_t monotonic; /* for each pending's done */
    struct lane lanes[LANES];
    int epfd, wakefd; /* the driver's epoll set; an eventfd callers write to wake it */
    pthread_t driver;
    bool started, stop;
    bool asleep; /* the driver is in, or about to enter, a wait of a timeout > 0: whoever hands
                  * it work writes the eventfd once and clears this (a write per call, while it
                  * was awake anyway, was a syscall and an extra epoll wake-up per txn) */
    struct pending *submit;
    CURL *idle[IDLE_MAX];
    size_t n_idle;
    bool old_curl; /* < 8.0.0: the h2c reuse bug */
    struct grpc_client_stats st;
    int64_t stall_ns; /* a connection silent this long with calls waiting is dropped */
};

void grpc_timeout_header(int64_t ms, char *out, size_t size)
{
    int64_t slack = ms / 10 < 100 ? ms / 10 : 100;

    snprintf(out, size, "grpc-timeout: %" PRId64 "m", ms > 50 ? ms - slack : (ms > 0 ? ms : 1));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void grpc_percent_decode(const char *s, size_t n, char *out, size_t size)
{
    size_t i, o = 0;

    if (!size)
        return;
    for (i = 0; i < n && o + 1 < size; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '%' && i + 2 < n + 0 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            ch = (unsigned char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        out[o++] = ch < 0x20 || ch > 0x7e ? '?' : (char)ch;
    }
    out[o] = '\0';
}

void grpc_result_release(struct grpc_result *r)
{
    if (!r)
        return;
    hp_free(r->msg);
    memset(r, 0, sizeof(*r));
    r->grpc_status = -1;
}

/* ---- callbacks (driver thread) ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct pending *p = arg;
    size_t n = size * nmemb;

    p->lane->last_rx_ns = hp_now_ns();
    p->rx = true;
    switch (hp_buf_add(&p->in, data, n)) {
    case HP_OK:
        return n;
    case HP_ERR_FULL:
        p->res->overflow = 1;
        return 0;
    default:
        p->res->overflow = 2;
        return 0;
    }
}

/* on_read: the request body, the 5-byte prefix then the caller's message, as libcurl asks */
static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
    struct pending *p = arg;
    size_t room = size * nitems, n = 0;

    if (p->off < sizeof(p->prefix)) {
        n = sizeof(p->prefix) - p->off < room ? sizeof(p->prefix) - p->off : room;
        memcpy(buf, p->prefix + p->off, n);
        p->off += n;
    }
    if (n < room && p->off >= sizeof(p->prefix)) {
        size_t at = p->off - sizeof(p->prefix), k = p->msg_len - at;

        if (k > room - n)
            k = room - n;
        if (k)
            memcpy(buf + n, p->msg + at, k);
        n += k;
        p->off += k;
    }
    return n;
}

/* on_seek: libcurl rewinds the body to send it again (a stream refused or a connection found
 * dead before the request left) */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
    struct pending *p = arg;

    if (origin != SEEK_SET || offset < 0 || (size_t)offset > sizeof(p->prefix) + p->msg_len)
        return CURL_SEEKFUNC_CANTSEEK;
    p->off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

/* on_header: headers and trailers alike (libcurl hands trailers here after the body) */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct pending *p = arg;
    size_t n = size * nmemb, vl;
    const char *v;

    p->lane->last_rx_ns = hp_now_ns();
    p->rx = true;
    while (n && (data[n - 1] == '\r' || data[n - 1] == '\n'))
        n--;
    if (n > 12 && !strncasecmp(data, "grpc-status:", 12)) {
        int code = 0;

        for (v = data + 12, vl = n - 12; vl && *v == ' '; v++, vl--)
            ;
        if (!vl)
            return size * nmemb;
        for (; vl && *v >= '0' && *v <= '9' && code < 1000; v++, vl--)
            code = code * 10 + (*v - '0');
        p->res->grpc_status = vl ? 2 /* UNKNOWN: not a number */ : code;
    } else if (n > 13 && !strncasecmp(data, "grpc-message:", 13)) {
        for (v = data + 13, vl = n - 13; vl && *v == ' '; v++, vl--)
            ;
        grpc_percent_decode(v, vl, p->res->grpc_message, sizeof(p->res->grpc_message));
    }
    return size * nmemb;
}

/* wake: the driver leaves its wait (any thread) */
static void wake(struct grpc_client *c)
{
    uint64_t one = 1;

    if (write(c->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
        /* full counter (EAGAIN) is already a wake-up; nothing else can fail on an eventfd */
    }
}

/* nudge: the driver sees new work (under mu): it is awake and looks at submit and cancel before
 * its next wait, or it waits and is woken now */
static void nudge(struct grpc_client *c)
{
    if (c->asleep) {
        c->asleep = false;
        wake(c);
    }
}

/* judge_lane: what a call's end tells of its lane (driver thread, under mu; opened: libcurl
 * opened a connection for it). An answer updates the lane's round-trip average. A call that
 * ended by its deadline (or its context) after at least twice that average (and 20 ms) without
 * one byte arriving on the lane since it started retires the lane: a connection a reset or a
 * proxy left accepted but silent looks alive to libcurl, and every later call on it would wait
 * its whole time too (found under toxiproxy's reset_peer: results took up to 127 s to become
 * final). So does an h2c call meant for the lane's primed connection for which libcurl opened a
 * new one (the primed one was gone; libcurl >= 8 dials with prior knowledge unseen, < 8 with an
 * upgrade request) and that failed before one byte of an answer came: that connection never
 * answered, and later calls would be put on it (reset_peer on libcurl 8.14: slowest result 16 s
 * without this rule, 6 s with it). */
static void judge_lane(struct lane *l, const struct pending *p, CURLcode cc, hp_rc ctx_rc,
                       bool opened)
{
    int64_t took = hp_now_ns() - p->start_ns; /* finish runs only for calls in a lane */

    if (cc == CURLE_OK && !ctx_rc) {
        l->rtt_ns = l->rtt_ns ? (7 * l->rtt_ns + took) / 8 : took;
        return;
    }
    if ((ctx_rc || cc == CURLE_OPERATION_TIMEDOUT) && l->last_rx_ns < p->start_ns &&
        took >= 2 * l->rtt_ns && took >= 20 * 1000000LL)
        l->retire = true;
    if (opened && p->reuse && !p->rx)
        l->retire = true;
}

/* finish: the driver's end of a call (under mu): result filled, handle out of its multi */
static void finish(struct grpc_client *c, struct pending *p, CURLcode cc, hp_rc ctx_rc)
{
    struct grpc_result *x = p->res;
    struct pending **pp;
    long req_size = 0, connects = 0;

    for (pp = &p->lane->running; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    curl_multi_remove_handle(p->lane->multi, p->easy);
    x->cc = ctx_rc ? CURLE_ABORTED_BY_CALLBACK : cc;
    x->ctx_rc = ctx_rc;
    curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &x->http_status);
    curl_easy_getinfo(p->easy, CURLINFO_REQUEST_SIZE, &req_size);
    curl_easy_getinfo(p->easy, CURLINFO_NUM_CONNECTS, &connects);
    c->st.connects += connects > 0 ? (uint64_t)connects : 0;
    x->sent = req_size > 0;
    x->refused = cc != CURLE_OK && strstr(x->errbuf, "REFUSED_STREAM") != NULL;
    judge_lane(p->lane, p, cc, ctx_rc, connects > 0);
    p->state = DONE;
    pthread_cond_signal(&p->done);
}

/* on_socket: libcurl's wish for one socket of lane l, kept in the epoll set (driver thread) */
static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct lane *l = userp;
    struct epoll_event ev = {0};

    (void)e;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    ev.data.u64 = (uint64_t)l->idx << 32 | (uint32_t)s;
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, s, &ev) && errno == ENOENT &&
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, s, &ev))
        return -1;
    return 0;
}

/* on_timer: when libcurl wants lane l's timeout action (driver thread) */
static int on_timer(CURLM *m, long ms, void *userp)
{
    struct lane *l = userp;

    (void)m;
    l->timer_ns = ms < 0 ? -1 : hp_now_ns() + (int64_t)ms * 1000000;
    return 0;
}

/* lane_multi: a new multi handle for l (NULL on NOMEM) */
static CURLM *lane_multi(struct lane *l)
{
    /* no CURLMOPT_MAX_HOST_CONNECTIONS / MAX_TOTAL_CONNECTIONS: at a limit libcurl parks a call
     * (PENDING), unsent and unseen until its deadline (see setup's PIPEWAIT) */
    CURLM *m = curl_multi_init();

    if (!m)
        return NULL;
    curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(m, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(m, CURLMOPT_TIMERDATA, l);
    return m;
}

/* stalled: calls have been in flight on l without a pause, and nothing has arrived for stall_ns
 * since the later of the last byte and the start of that busy stretch (a link that drops every
 * byte leaves libcurl an HTTP/2 connection it still takes for alive: every later call would go
 * into the same silence, each replaced by the next when its deadline ends). Under mu. */
static bool stalled(const struct grpc_client *c, const struct lane *l)
{
    int64_t since = l->last_rx_ns > l->busy_ns ? l->last_rx_ns : l->busy_ns;

    return hp_now_ns() - since > c->stall_ns;
}

/* lane_reset: l's multi handle, and with it its connections, replaced by a new one (under mu,
 * no call running on l). False: out of memory, l unchanged. */
static bool lane_reset(struct lane *l)
{
    CURLM *fresh = lane_multi(l);

    if (!fresh)
        return false;
    curl_multi_cleanup(l->multi);
    l->multi = fresh;
    l->timer_ns = -1;
    l->retire = false;
    l->gen++;
    for (struct endpoint *e = l->eps; e; e = e->next)
        e->primed = false;
    l->last_rx_ns = hp_now_ns();
    return true;
}

/* drop_connections: end every call in flight on l (a send error: UNKNOWN for a write that may
 * have left, a read is retried) and start over with new connections: the only way to close a
 * connection libcurl still takes for alive is to clean up its multi handle. Under mu. */
static void drop_connections(struct grpc_client *c, struct lane *l)
{
    while (l->running) {
        struct pending *p = l->running;

        snprintf(p->res->errbuf, sizeof(p->res->errbuf),
                 "the connection was silent for %lld s: dropped",
                 (long long)(c->stall_ns / 1000000000));
        finish(c, p, CURLE_RECV_ERROR, HP_OK);
    }
    if (lane_reset(l))
        c->st.stalls++;
}

/* take_submitted: the calls handed over, into their lanes' multi handles; calls whose context
 * ended, out; silent lanes dropped (under mu) */
static void take_submitted(struct grpc_client *c)
{
    struct pending *p, *next;

    while ((p = c->submit)) {
        struct lane *l = p->lane;

        c->submit = p->next;
        if (curl_multi_add_handle(l->multi, p->easy) != CURLM_OK) {
            p->next = NULL;
            p->res->cc = CURLE_OUT_OF_MEMORY;
            p->state = DONE;
            pthread_cond_signal(&p->done);
            continue;
        }
        p->state = RUNNING;
        p->start_ns = hp_now_ns();
        if (!l->running)
            l->busy_ns = p->start_ns; /* a busy stretch starts */
        p->next = l->running;
        l->running = p;
    }
    for (unsigned i = 0; i < LANES; i++) {
        struct lane *l = &c->lanes[i];

        for (p = l->running; p; p = next) {
            next = p->next;
            if (p->cancel)
                finish(c, p, CURLE_ABORTED_BY_CALLBACK, HP_ERR_CANCELED);
        }
        if (l->running && stalled(c, l))
            drop_connections(c, l);
        if (l->retire && !l->running && lane_reset(l))
            c->st.retired++;
    }
}

/* wait_ms: how long the driver may wait for a socket: until the first lane timer or kick, at
 * most 1 s (a call's cancel and the stall check wake it sooner or are seen then). Under mu. */
static int wait_ms(const struct grpc_client *c)
{
    int64_t now = hp_now_ns(), ms = 1000;

    for (unsigned i = 0; i < LANES; i++) {
        int64_t t = c->lanes[i].timer_ns;

        if (c->lanes[i].running) {
            int64_t k = c->lanes[i].kick_ns + KICK_MS * 1000000LL;

            t = t < 0 || k < t ? k : t;
        }
        if (t >= 0 && (t - now + 999999) / 1000000 < ms)
            ms = t <= now ? 0 : (t - now + 999999) / 1000000;
    }
    return (int)ms;
}

/* drive: wait for sockets or timers and let libcurl act on them; busy[i]: lane i had calls
 * when the driver last looked (without mu) */
static void drive(struct grpc_client *c, int timeout_ms, const bool *busy)
{
    struct epoll_event ev[32];
    int n = epoll_wait(c->epfd, ev, 32, timeout_ms), running;
    int64_t now;

    for (int i = 0; i < n; i++) {
        uint64_t tag = ev[i].data.u64, count;
        int bits = 0;

        if (tag == WAKE_TAG) {
            if (read(c->wakefd, &count, sizeof(count)) < 0 && errno != EAGAIN) {
                /* nonblocking: nothing to read is EAGAIN */
            }
            continue;
        }
        bits |= ev[i].events & EPOLLIN ? CURL_CSELECT_IN : 0;
        bits |= ev[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0;
        bits |= ev[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR | CURL_CSELECT_IN : 0;
        curl_multi_socket_action(c->lanes[tag >> 32].multi, (curl_socket_t)(uint32_t)tag, bits,
                                 &running);
    }
    now = hp_now_ns();
    for (unsigned i = 0; i < LANES; i++) {
        struct lane *l = &c->lanes[i];

        if (l->timer_ns >= 0 && l->timer_ns <= now) {
            l->timer_ns = -1;
            curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        /* the kick: libcurl 7.88 can hold an HTTP/2 answer's data it has read from the socket
         * without asking to be run again (seen: a Range answer stopped at 82 KB for 30 s behind
         * a proxy that delays responses; the kernel had nothing more to signal) */
        if (now - l->kick_ns >= KICK_MS * 1000000LL) {
            l->kick_ns = now;
            if (busy[i])
                curl_multi_socket_all(l->multi, &running);
        }
    }
}

static void *driver_main(void *arg)
{
    struct grpc_client *c = arg;

    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        bool busy[LANES];
        int timeout;

        take_submitted(c);
        timeout = c->submit ? 0 : wait_ms(c);
        for (unsigned i = 0; i < LANES; i++)
            busy[i] = c->lanes[i].running != NULL;
        c->asleep = timeout != 0;
        pthread_mutex_unlock(&c->mu);
        drive(c, timeout, busy);
        pthread_mutex_lock(&c->mu);
        c->asleep = false;
        for (unsigned i = 0; i < LANES; i++) {
            CURLMsg *m;
            int left;

            while ((m = curl_multi_info_read(c->lanes[i].multi, &left))) {
                struct pending *p = NULL;

                if (m->msg != CURLMSG_DONE)
                    continue;
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&p);
                if (p)
                    finish(c, p, m->data.result, HP_OK);
            }
        }
    }
    /* stopping: every call still here ends CANCELED */
    for (unsigned i = 0; i < LANES; i++)
        while (c->lanes[i].running)
            finish(c, c->lanes[i].running, CURLE_ABORTED_BY_CALLBACK, HP_ERR_CANCELED);
    while (c->submit) {
        struct pending *p = c->submit;

        c->submit = p->next;
        p->res->cc = CURLE_ABORTED_BY_CALLBACK;
        p->res->ctx_rc = HP_ERR_CANCELED;
        p->state = DONE;
        pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* events_init: the epoll set, the wake-up eventfd in it, and every lane's multi handle */
static hp_rc events_init(struct grpc_client *c, struct hp_err *err)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TAG};

    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    c->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->epfd < 0 || c->wakefd < 0 || epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->wakefd, &ev))
        return hp_err_set(err, HP_ERR_INTERNAL, "gRPC driver: epoll/eventfd: %s", strerror(errno));
    for (unsigned i = 0; i < LANES; i++) {
        struct lane *l = &c->lanes[i];

        l->idx = i;
        l->epfd = c->epfd;
        l->timer_ns = -1;
        l->last_rx_ns = hp_now_ns();
        if (!(l->multi = lane_multi(l)))
            return HP_ERR_NOMEM;
    }
    return HP_OK;
}

hp_rc grpc_client_new(int64_t stall_ms, struct grpc_client **out, struct hp_err *err)
{
    struct grpc_client *c = hp_calloc(1, sizeof(*c));
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    hp_rc rc;

    *out = NULL;
    if (!c)
        return HP_ERR_NOMEM;
    c->epfd = c->wakefd = -1;
    if (!(vi->features & CURL_VERSION_HTTP2)) {
        hp_free(c);
        return hp_err_set(err, HP_ERR_INVALID,
                          "libcurl %s was built without HTTP/2: gRPC needs it (use the gateway "
                          "transport)",
                          vi->version);
    }
    c->old_curl = vi->version_num < 0x080000;
    c->stall_ns = (stall_ms > 0 ? stall_ms : 30000) * 1000000LL;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_init(&c->monotonic);
    pthread_condattr_setclock(&c->monotonic, CLOCK_MONOTONIC);
    rc = events_init(c, err);
    if (rc) {
        grpc_client_free(c);
        return rc;
    }
    if (pthread_create(&c->driver, NULL, driver_main, c)) {
        grpc_client_free(c);
        return hp_err_set(err, HP_ERR_INTERNAL, "cannot start the gRPC driver thread");
    }
    c->started = true;
    *out = c;
    return HP_OK;
}

void grpc_client_free(struct grpc_client *c)
{
    if (!c)
        return;
    if (c->started) {
        pthread_mutex_lock(&c->mu);
        c->stop = true;
        pthread_mutex_unlock(&c->mu);
        wake(c);
        pthread_join(c->driver, NULL);
    }
    while (c->n_idle)
        curl_easy_cleanup(c->idle[--c->n_idle]);
    for (unsigned i = 0; i < LANES; i++) {
        struct lane *l = &c->lanes[i];

        while (l->eps) {
            struct endpoint *e = l->eps;

            l->eps = e->next;
            hp_free(e->url);
            hp_free(e);
        }
        if (l->multi)
            curl_multi_cleanup(l->multi);
    }
    if (c->wakefd >= 0)
        close(c->wakefd);
    if (c->epfd >= 0)
        close(c->epfd);
    pthread_condattr_destroy(&c->monotonic);
    pthread_mutex_destroy(&c->mu);
    hp_free(c);
}

/* endpoint: lane l's entry for url (under mu; NULL on NOMEM) */
static struct endpoint *endpoint(struct lane *l, const char *url)
{
    struct endpoint *e;

    for (e = l->eps; e; e = e->next)
        if (!strcmp(e->url, url))
            return e;
    e = hp_calloc(1, sizeof(*e));
    if (e && !(e->url = hp_strdup(url))) {
        hp_free(e);
        return NULL;
    }
    if (e) {
        e->next = l->eps;
        l->eps = e;
    }
    return e;
}

/* pick_lane: the lane for a call to url (under mu), its endpoint entry in *ep when gated
 * (h2c, where a connection is ready only once primed; otherwise every lane is ready). Retiring
 * lanes are passed over. The first ready lane with fewer than LANE_CALLS calls; else the first lane
 * no one is priming (this call primes it); else the least loaded ready lane (multiplexed); else the
 * least loaded priming one (this call is one more prime there, on a connection of its own); else
 * (every lane retiring) the least loaded. NULL: out of memory. */
static struct lane *pick_lane(struct grpc_client *c, const char *url, bool gated,
                              struct endpoint **ep)
{
    struct lane *ready = NULL, *fresh = NULL, *priming = NULL, *any = NULL, *l;

    for (unsigned i = 0; i < LANES; i++) {
        struct endpoint *e = gated ? endpoint(&c->lanes[i], url) : NULL;

        l = &c->lanes[i];
        if (gated && !e)
            return NULL;
        if (!any || l->load < any->load)
            any = l;
        if (l->retire)
            continue;
        if (!gated || e->primed) {
            if (l->load < LANE_CALLS)
                return *ep = e, l;
            if (!ready || l->load < ready->load)
                ready = l;
        } else if (!e->priming) {
            fresh = fresh ? fresh : l;
        } else if (!priming || l->load < priming->load) {
            priming = l;
        }
    }
    l = fresh ? fresh : ready ? ready : priming ? priming : any;
    *ep = gated ? endpoint(l, url) : NULL;
    return l;
}

/* wait_slice_on: a bounded wait on cv (under c->mu): until deadline_ns (monotonic) or 50 ms,
 * whichever is first, so the caller sees its context end */
static void wait_slice_on(struct grpc_client *c, pthread_cond_t *cv, int64_t deadline_ns)
{
    int64_t until = hp_now_ns() + 50 * 1000000LL;
    struct timespec ts;

    if (deadline_ns < until)
        until = deadline_ns;
    ts.tv_sec = until / 1000000000;
    ts.tv_nsec = until % 1000000000;
    pthread_cond_timedwait(cv, &c->mu, &ts);
}

/* setup: the easy handle for one attempt */
static hp_rc setup(struct pending *p, const struct grpc_call *call, long version, bool own,
                   char *url, size_t url_size)
{
    char timeout[64];
    CURL *e = p->easy;

    snprintf(url, url_size, "%s%s", call->base_url, call->path);
    grpc_timeout_header(call->timeout_ms, timeout, sizeof(timeout));
    p->hdrs = curl_slist_append(NULL, "content-type: application/grpc");
    if (p->hdrs)
        p->hdrs = curl_slist_append(p->hdrs, "te: trailers");
    if (p->hdrs)
        p->hdrs = curl_slist_append(p->hdrs, timeout);
    for (size_t i = 0; p->hdrs && call->headers && call->headers[i]; i++)
        p->hdrs = curl_slist_append(p->hdrs, call->headers[i]);
    if (p->hdrs)
        p->hdrs = curl_slist_append(p->hdrs, "Expect:");
    if (!p->hdrs)
        return HP_ERR_NOMEM;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, version);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, p);
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, p);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(call->msg_len + 5));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, p);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)p);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->res->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* PIPEWAIT (wait for a connection being opened rather than open another): for https lanes
     * (calls wait for the first connection's ALPN rather than each open its own); a prime or a
     * fresh call opens its own connection anyway. Not for a call meant for its lane's primed h2c
     * connection: libcurl 8.14 makes such a call wait, without a word to us, on any other
     * connection to the same host in its multi that has not answered yet (a prime's, one a
     * deadline cut), stopping its search there even when the primed connection is further in
     * its pool; parked, the call reached its deadline unsent (slowproxy, 30% of the responses
     * 2.5 s late, 300 ms deadlines: 41 and 69 of 1,300 results failed; none with this). 7.88
     * waits only while no connection to the host is known to multiplex, or when it finds nothing
     * else but one still connecting: a primed endpoint's call never waited there. Without
     * PIPEWAIT nothing parks a call: lane_multi sets no connection limit (which would). */
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, p->reuse ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)call->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(call->connect_timeout_ms > 0 ? call->connect_timeout_ms : 2000));
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    http_tls_apply(e, call->tls, &p->connect_to);
    /* own: a prime (its connection is trusted only once it answered; and a prior-knowledge
     * request on a reused h2c connection is what libcurl < 8 breaks), a call on a retiring lane
     * or after its connection was found gone opens a connection of its own */
    if (own)
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    return HP_OK;
}

/* frame: the answer's body as one uncompressed gRPC message into x->msg */
static void frame(struct pending *p, struct grpc_result *x)
{
    const char *in = hp_buf_data(&p->in);
    size_t in_len = hp_buf_len(&p->in);
    uint32_t len;

    if (!in_len)
        return; /* no message: an error answer, or a success without one (never OK) */
    if (in_len < 5 || in[0] != 0) {
        x->malformed = true;
        return;
    }
    len = (uint32_t)(unsigned char)in[1] << 24 | (uint32_t)(unsigned char)in[2] << 16 |
          (uint32_t)(unsigned char)in[3] << 8 | (uint32_t)(unsigned char)in[4];
    if ((size_t)len + 5 != in_len) {
        x->malformed = true;
        return;
    }
    x->msg = hp_malloc(len ? len : 1);
    if (!x->msg) {
        x->overflow = 2;
        return;
    }
    memcpy(x->msg, in + 5, len);
    x->msg_len = len;
}

void grpc_client_stats(struct grpc_client *c, struct grpc_client_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}

/* One attempt of a call: what grpc_client_call sets up, hands to the driver and cleans up */
struct attempt {
    struct pending *p;   /* owned, on the heap: the driver holds it while it runs */
    struct lane *lane;   /* borrowed: the lane it runs on (its load counts it) */
    struct endpoint *ep; /* h2c: the lane's endpoint priming state (borrowed) */
    bool prime;          /* this attempt opens the endpoint's h2c connection */
    bool fresh;          /* on a connection of its own (its lane retiring, or a retry) */
    long version;        /* CURLOPT_HTTP_VERSION */
    uint64_t gen;        /* its lane's gen when it was chosen */
};

/* attempt_version: for h2c: reuse the lane's primed connection (unless fresh), or be a prime
 * (a prior-knowledge request on a connection of its own); never wait for another's prime: under
 * latency beyond the callers' deadlines such waits ended with calls never sent (under mu). On
 * libcurl < 8 a reuse is never a prior-knowledge request (curl 10634). */
static void attempt_version(struct attempt *a, bool old_curl)
{
    if (a->ep->primed && !a->fresh) {
        if (old_curl)
            a->version = CURL_HTTP_VERSION_2_0;
        return;
    }
    a->ep->priming++;
    a->prime = true;
}

/* attempt_prepare: a pending call with its easy handle and framed body (retry: the previous
 * attempt found its connection gone, so this one opens its own); HP_ERR_NOMEM sets out->cc, a
 * deadline reached first sets it to a timeout (both: nothing to send) */
static hp_rc attempt_prepare(struct grpc_client *c, struct hp_ctx *ctx,
                             const struct grpc_call *call, int64_t end_ns, bool retry,
                             struct grpc_result *out, struct attempt *a)
{
    bool h2c = !strncmp(call->base_url, "http://", 7);
    struct pending *p = hp_calloc(1, sizeof(*p));
    char url[1024];

    *a = (struct attempt){
        .p = p, .version = h2c ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_2TLS};
    if (!p) {
        out->cc = CURLE_OUT_OF_MEMORY;
        return HP_ERR_NOMEM;
    }
    pthread_cond_init(&p->done, &c->monotonic);
    p->res = out;
    hp_buf_init(&p->in, call->max_msg ? call->max_msg : MSG_MAX_DEFAULT);
    pthread_mutex_lock(&c->mu);
    a->lane = pick_lane(c, call->base_url, h2c, &a->ep);
    if (a->lane) {
        a->lane->load++;
        a->fresh = retry || a->lane->retire; /* every lane retiring: not onto the silent one */
        p->lane = a->lane;
        a->gen = a->lane->gen;
        if (h2c)
            attempt_version(a, c->old_curl);
        p->reuse = h2c && !a->prime;
    }
    p->easy = c->n_idle ? c->idle[--c->n_idle] : NULL;
    pthread_mutex_unlock(&c->mu);
    if (!p->easy)
        p->easy = curl_easy_init();
    if (!p->easy || !a->lane ||
        setup(p, call, a->version, a->prime || a->fresh, url, sizeof(url))) {
        out->cc = CURLE_OUT_OF_MEMORY;
        return HP_ERR_NOMEM;
    }
    if (hp_ctx_err(ctx) || hp_now_ns() >= end_ns) {
        out->cc = CURLE_OPERATION_TIMEDOUT;
        out->ctx_rc = hp_ctx_err(ctx) ? hp_ctx_err(ctx) : HP_ERR_TIMEOUT;
        snprintf(out->errbuf, sizeof(out->errbuf), "%s",
                 "the connection was not ready before the deadline");
        return HP_ERR_TIMEOUT;
    }
    p->prefix[0] = 0;
    p->prefix[1] = (unsigned char)(call->msg_len >> 24);
    p->prefix[2] = (unsigned char)(call->msg_len >> 16);
    p->prefix[3] = (unsigned char)(call->msg_len >> 8);
    p->prefix[4] = (unsigned char)call->msg_len;
    p->msg = call->msg;
    p->msg_len = call->msg_len;
    p->off = 0;
    return HP_OK;
}

/* attempt_run: hand the call to the driver and wait for its end; the caller's context ending
 * cancels it */
static void attempt_run(struct grpc_client *c, struct hp_ctx *ctx, struct pending *p)
{
    struct grpc_result *out = p->res;

    pthread_mutex_lock(&c->mu);
    if (c->stop) {
        out->cc = CURLE_ABORTED_BY_CALLBACK;
        out->ctx_rc = HP_ERR_CANCELED;
    } else {
        p->next = c->submit;
        c->submit = p;
        nudge(c);
        while (p->state != DONE) {
            if (!p->cancel && hp_ctx_err(ctx)) {
                p->cancel = true;
                nudge(c);
            }
            wait_slice_on(c, &p->done, INT64_MAX);
        }
        if (p->cancel && out->ctx_rc)
            out->ctx_rc = hp_ctx_err(ctx) ? hp_ctx_err(ctx) : out->ctx_rc;
    }
    pthread_mutex_unlock(&c->mu);
}

/* attempt_end: the endpoint's priming state after the attempt (h1: answered over HTTP/1.1;
 * dead: its connection was found dead before anything left), the easy handle kept for reuse,
 * the pending call freed */
static void attempt_end(struct grpc_client *c, struct attempt *a, bool h1, bool dead)
{
    struct pending *p = a->p;
    struct grpc_result *out = p->res;

    pthread_mutex_lock(&c->mu);
    if (a->lane)
        a->lane->load--;
    if (a->ep && dead)
        a->ep->primed = false;
    c->st.dead_connections += dead;
    if (a->ep && (a->prime || h1)) {
        /* a prime that got an HTTP/2 answer primes the endpoint (a failed one leaves it as
         * it is: another prime may have succeeded), unless its lane was reset meanwhile (its
         * connection went with the reset); an HTTP/1.1 answer means the connection is gone */
        if (h1)
            a->ep->primed = false;
        else if (a->prime && out->cc == CURLE_OK && a->lane->gen == a->gen)
            a->ep->primed = true;
        if (a->prime)
            a->ep->priming--;
        c->st.primes += a->prime;
        c->st.http1_answers += h1;
    }
    if (p->easy) {
        curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(p->easy, CURLOPT_CONNECT_TO, NULL);
        curl_easy_setopt(p->easy, CURLOPT_ERRORBUFFER, NULL);
        if (c->n_idle < IDLE_MAX) {
            c->idle[c->n_idle++] = p->easy;
            p->easy = NULL;
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (p->easy)
        curl_easy_cleanup(p->easy);
    curl_slist_free_all(p->hdrs);
    curl_slist_free_all(p->connect_to);
    hp_buf_release(&p->in);
    pthread_cond_destroy(&p->done);
    hp_free(p);
}

void grpc_client_call(struct grpc_client *c, struct hp_ctx *ctx, const struct grpc_call *call,
                      struct grpc_result *out)
{
    bool h2c = !strncmp(call->base_url, "http://", 7);
    int64_t end_ns = hp_now_ns() + call->timeout_ms * 1000000LL;
    bool h1 = false, dead = false;
    int attempt;

    memset(out, 0, sizeof(*out));
    out->grpc_status = -1;
    if (call->msg_len > 0x7fffffff || call->timeout_ms <= 0) {
        out->cc = CURLE_BAD_FUNCTION_ARGUMENT;
        snprintf(out->errbuf, sizeof(out->errbuf), "message of %zu bytes or timeout %lld ms",
                 call->msg_len, (long long)call->timeout_ms);
        return;
    }
    if (hp_ctx_deadline_ns(ctx) < end_ns)
        end_ns = hp_ctx_deadline_ns(ctx);
    for (attempt = 0; attempt < ATTEMPTS; attempt++) {
        struct attempt a;
        bool retry = h1 || dead;

        h1 = dead = false;
        grpc_result_release(out);
        if (attempt_prepare(c, ctx, call, end_ns, retry, out, &a) == HP_OK) {
            long got = 0;

            attempt_run(c, ctx, a.p);
            curl_easy_getinfo(a.p->easy, CURLINFO_HTTP_VERSION, &got);
            h1 = h2c && out->cc == CURLE_OK && got != CURL_HTTP_VERSION_2_0;
            if (!h1)
                frame(a.p, out);
        }
        if (!a.p)
            return; /* out of memory before anything */
        /* the connection was found dead before anything left (a reused connection the server
         * or a proxy had closed): nothing was processed; send again on a new one */
        dead =
            !out->sent && !out->ctx_rc &&
            (out->cc == CURLE_SEND_ERROR || out->cc == CURLE_RECV_ERROR || out->cc == CURLE_HTTP2 ||
             out->cc == CURLE_HTTP2_STREAM || out->cc == CURLE_GOT_NOTHING);
        attempt_end(c, &a, h1, dead);
        if (!h1 && !dead)
            return;
        /* the next attempt opens its own connection (a retry onto another lane's connection,
         * gone the same way, would use up the attempts: seen possible after a server restart) */
        /* answered over HTTP/1.1 by the gateway, or the connection was dead: nothing was
         * processed; send again */
        out->sent = false;
    }
    if (dead)
        return; /* the last attempt's error stands */
    out->cc = CURLE_HTTP2;
    out->sent = false;
    snprintf(out->errbuf, sizeof(out->errbuf), "%s",
             "the server answered over HTTP/1.1 each time: is it an etcd gRPC endpoint?");
}
