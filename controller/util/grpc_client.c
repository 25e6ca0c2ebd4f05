/* grpc_client.c - unary gRPC over libcurl HTTP/2 (see include/hostpatrol/grpc_client.h). */
#include "hostpatrol/grpc_client.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/buf.h"

#define MSG_MAX_DEFAULT (256u << 20)
#define IDLE_MAX        32 /* easy handles kept for reuse */
#define ATTEMPTS        3  /* a call answered over HTTP/1.1 (see the header) is sent again */

/* what the client knows of one endpoint's h2c connection (libcurl < 8.0 only) */
struct endpoint {
    struct endpoint *next;
    char *url;
    bool primed;  /* a prior-knowledge request succeeded on the current connection */
    bool priming; /* one is under way; others wait for it */
};

enum call_state { QUEUED, RUNNING, DONE };

/* one call handed to the driver; the caller's stack holds it */
struct pending {
    struct pending *next;
    int64_t *last_rx_ns; /* the client's (written by the driver thread only) */
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
    int64_t start_ns;    /* handed to the driver */
};

struct grpc_client {
    pthread_mutex_t mu;           /* guards: submit, running, eps, idle, n_idle, stop, st, and each
                                   * pending's state and cancel */
    pthread_cond_t cv;            /* a prime ended */
    pthread_condattr_t monotonic; /* for cv and each pending's done */
    CURLM *multi;                 /* the driver thread's only */
    pthread_t driver;
    bool started, stop;
    struct pending *submit, *running;
    struct endpoint *eps;
    CURL *idle[IDLE_MAX];
    size_t n_idle;
    bool old_curl; /* < 8.0.0: the h2c reuse bug */
    struct grpc_client_stats st;
    int64_t stall_ns;   /* a connection silent this long with calls waiting is dropped */
    int64_t last_rx_ns; /* the last byte any transfer received (driver thread only) */
    int64_t busy_ns;    /* since when calls have been in flight without a pause (under mu) */
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

    *p->last_rx_ns = hp_now_ns();
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

    *p->last_rx_ns = hp_now_ns();
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

/* finish: the driver's end of a call (under mu): result filled, handle out of the multi */
static void finish(struct grpc_client *c, struct pending *p, CURLcode cc, hp_rc ctx_rc)
{
    struct grpc_result *x = p->res;
    struct pending **pp;
    long req_size = 0;

    for (pp = &c->running; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    curl_multi_remove_handle(c->multi, p->easy);
    x->cc = ctx_rc ? CURLE_ABORTED_BY_CALLBACK : cc;
    x->ctx_rc = ctx_rc;
    curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &x->http_status);
    curl_easy_getinfo(p->easy, CURLINFO_REQUEST_SIZE, &req_size);
    x->sent = req_size > 0;
    x->refused = cc != CURLE_OK && strstr(x->errbuf, "REFUSED_STREAM") != NULL;
    p->state = DONE;
    pthread_cond_signal(&p->done);
}

/* stalled: calls have been in flight without a pause, and nothing has arrived for stall_ns
 * since the later of the last byte and the start of that busy stretch (a link that drops every
 * byte leaves libcurl an HTTP/2 connection it still takes for alive: every later call would go
 * into the same silence, each replaced by the next when its deadline ends). Under mu. */
static bool stalled(struct grpc_client *c)
{
    int64_t since = c->last_rx_ns > c->busy_ns ? c->last_rx_ns : c->busy_ns;

    return hp_now_ns() - since > c->stall_ns;
}

/* drop_connections: end every call in flight (a send error: UNKNOWN for a write that may
 * have left, a read is retried) and start over with new connections: the only way to close a
 * connection libcurl still takes for alive is to clean up its multi handle. Under mu. */
static void drop_connections(struct grpc_client *c)
{
    CURLM *fresh = curl_multi_init();

    if (!fresh)
        return;
    curl_multi_setopt(fresh, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    while (c->running) {
        struct pending *p = c->running;

        snprintf(p->res->errbuf, sizeof(p->res->errbuf),
                 "the connection was silent for %lld s: dropped",
                 (long long)(c->stall_ns / 1000000000));
        finish(c, p, CURLE_RECV_ERROR, HP_OK);
    }
    curl_multi_cleanup(c->multi);
    c->multi = fresh;
    for (struct endpoint *e = c->eps; e; e = e->next)
        e->primed = false;
    c->st.stalls++;
    c->last_rx_ns = hp_now_ns();
}

static void *driver_main(void *arg)
{
    struct grpc_client *c = arg;

    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        struct pending *p, *next;
        CURLMsg *m;
        int running, left;

        while ((p = c->submit)) {
            c->submit = p->next;
            if (curl_multi_add_handle(c->multi, p->easy) != CURLM_OK) {
                p->next = NULL;
                p->res->cc = CURLE_OUT_OF_MEMORY;
                p->state = DONE;
                pthread_cond_signal(&p->done);
                continue;
            }
            p->state = RUNNING;
            p->start_ns = hp_now_ns();
            if (!c->running)
                c->busy_ns = p->start_ns; /* a busy stretch starts */
            p->next = c->running;
            c->running = p;
        }
        for (p = c->running; p; p = next) {
            next = p->next;
            if (p->cancel)
                finish(c, p, CURLE_ABORTED_BY_CALLBACK, HP_ERR_CANCELED);
        }
        if (c->running && stalled(c))
            drop_connections(c);
        pthread_mutex_unlock(&c->mu);
        curl_multi_perform(c->multi, &running);
        pthread_mutex_lock(&c->mu);
        while ((m = curl_multi_info_read(c->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            p = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&p);
            if (p)
                finish(c, p, m->data.result, HP_OK);
        }
        if (c->stop || c->submit)
            continue;
        pthread_mutex_unlock(&c->mu);
        curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
        pthread_mutex_lock(&c->mu);
    }
    /* stopping: every call still here ends CANCELED */
    while (c->running)
        finish(c, c->running, CURLE_ABORTED_BY_CALLBACK, HP_ERR_CANCELED);
    while (c->submit) {
        struct pending *p = c->submit;

        c->submit = p->next;
        p->res->cc = CURLE_ABORTED_BY_CALLBACK;
        p->res->ctx_rc = HP_ERR_CANCELED;
        p->state = DONE;
        pthread_cond_signal(&p->done);
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

hp_rc grpc_client_new(int64_t stall_ms, struct grpc_client **out, struct hp_err *err)
{
    struct grpc_client *c = hp_calloc(1, sizeof(*c));
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);

    *out = NULL;
    if (!c)
        return HP_ERR_NOMEM;
    if (!(vi->features & CURL_VERSION_HTTP2)) {
        hp_free(c);
        return hp_err_set(err, HP_ERR_INVALID,
                          "libcurl %s was built without HTTP/2: gRPC needs it (use the gateway "
                          "transport)",
                          vi->version);
    }
    c->old_curl = vi->version_num < 0x080000;
    c->stall_ns = (stall_ms > 0 ? stall_ms : 30000) * 1000000LL;
    c->last_rx_ns = hp_now_ns();
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_init(&c->monotonic);
    pthread_condattr_setclock(&c->monotonic, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &c->monotonic);
    c->multi = curl_multi_init();
    if (!c->multi) {
        grpc_client_free(c);
        return HP_ERR_NOMEM;
    }
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
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
        curl_multi_wakeup(c->multi);
        pthread_join(c->driver, NULL);
    }
    while (c->n_idle)
        curl_easy_cleanup(c->idle[--c->n_idle]);
    while (c->eps) {
        struct endpoint *e = c->eps;

        c->eps = e->next;
        hp_free(e->url);
        hp_free(e);
    }
    if (c->multi)
        curl_multi_cleanup(c->multi);
    pthread_cond_destroy(&c->cv);
    pthread_condattr_destroy(&c->monotonic);
    pthread_mutex_destroy(&c->mu);
    hp_free(c);
}

/* endpoint: the entry for url (under mu; NULL on NOMEM) */
static struct endpoint *endpoint(struct grpc_client *c, const char *url)
{
    struct endpoint *e;

    for (e = c->eps; e; e = e->next)
        if (!strcmp(e->url, url))
            return e;
    e = hp_calloc(1, sizeof(*e));
    if (e && !(e->url = hp_strdup(url))) {
        hp_free(e);
        return NULL;
    }
    if (e) {
        e->next = c->eps;
        c->eps = e;
    }
    return e;
}

/* wait_slice: a bounded wait on cv (under c->mu; c->cv unless given): until deadline_ns
 * (monotonic) or 50 ms, whichever is first, so the caller sees its context end */
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

static void wait_slice(struct grpc_client *c, int64_t deadline_ns)
{
    wait_slice_on(c, &c->cv, deadline_ns);
}

/* setup: the easy handle for one attempt */
static hp_rc setup(struct grpc_client *c, struct pending *p, const struct grpc_call *call,
                   long version, char *url, size_t url_size)
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
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)call->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(call->connect_timeout_ms > 0 ? call->connect_timeout_ms : 2000));
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    http_tls_apply(e, call->tls, &p->connect_to);
    /* a prime opens its own connection: a prior-knowledge request on a reused h2c connection
     * is what libcurl < 8 breaks (it would fail again and again on the cached one) */
    if (version == CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE && c->old_curl)
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
    struct endpoint *ep; /* h2c on libcurl < 8: the endpoint's priming state (borrowed) */
    bool prime;          /* this attempt opens the endpoint's h2c connection */
    long version;        /* CURLOPT_HTTP_VERSION */
};

/* attempt_version: for h2c on libcurl < 8, wait for another attempt's prime or become the prime,
 * and choose the HTTP version (under mu) */
static void attempt_version(struct grpc_client *c, struct hp_ctx *ctx, const char *base_url,
                            int64_t end_ns, struct attempt *a)
{
    a->ep = endpoint(c, base_url);
    while (a->ep && !a->ep->primed && a->ep->priming && !hp_ctx_err(ctx) && hp_now_ns() < end_ns)
        wait_slice(c, end_ns);
    if (a->ep && !a->ep->primed && !a->ep->priming) {
        a->ep->priming = true;
        a->prime = true;
    }
    if (a->ep && !a->prime && a->ep->primed)
        a->version = CURL_HTTP_VERSION_2_0; /* reuse: never prior knowledge (curl 10634) */
}

/* attempt_prepare: a pending call with its easy handle and framed body; HP_ERR_NOMEM sets
 * out->cc, a deadline reached first sets it to a timeout (both: nothing to send) */
static hp_rc attempt_prepare(struct grpc_client *c, struct hp_ctx *ctx,
                             const struct grpc_call *call, int64_t end_ns, struct grpc_result *out,
                             struct attempt *a)
{
    bool h2c = !strncmp(call->base_url, "http://", 7), old_h2c = h2c && c->old_curl;
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
    p->last_rx_ns = &c->last_rx_ns;
    hp_buf_init(&p->in, call->max_msg ? call->max_msg : MSG_MAX_DEFAULT);
    pthread_mutex_lock(&c->mu);
    if (old_h2c)
        attempt_version(c, ctx, call->base_url, end_ns, a);
    p->easy = c->n_idle ? c->idle[--c->n_idle] : NULL;
    pthread_mutex_unlock(&c->mu);
    if (!p->easy)
        p->easy = curl_easy_init();
    if (!p->easy || (old_h2c && !a->ep) || setup(c, p, call, a->version, url, sizeof(url))) {
        out->cc = CURLE_OUT_OF_MEMORY;
        return HP_ERR_NOMEM;
    }
    if (hp_ctx_err(ctx) || hp_now_ns() >= end_ns || (old_h2c && !a->prime && !a->ep->primed)) {
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
        curl_multi_wakeup(c->multi);
        while (p->state != DONE) {
            if (!p->cancel && hp_ctx_err(ctx)) {
                p->cancel = true;
                curl_multi_wakeup(c->multi);
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
    if (a->ep && dead)
        a->ep->primed = false;
    c->st.dead_connections += dead;
    if (a->ep && (a->prime || h1)) {
        /* a prime that got an HTTP/2 answer primes the endpoint; an HTTP/1.1 answer means
         * the connection is gone */
        a->ep->primed = a->prime && out->cc == CURLE_OK && !h1;
        if (a->prime)
            a->ep->priming = false;
        c->st.primes += a->prime;
        c->st.http1_answers += h1;
        pthread_cond_broadcast(&c->cv);
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

        h1 = dead = false;
        grpc_result_release(out);
        if (attempt_prepare(c, ctx, call, end_ns, out, &a) == HP_OK) {
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
