/* probe.c - endpoint probes on one libcurl multi handle (see include/hostpatrol/probe.h).
 *
 * One run = one CURLM. Every probe is a small state machine driven from one poll loop
 * (curl_multi_poll, with the context's fd, the sockets of tcp probes past their connect, and a
 * short timeout while dns requests are in flight as extra wake-ups):
 *   http  PH_CURL (the whole transfer) -> done                               probe_http.c
 *   tcp   PH_CURL (CONNECT_ONLY: resolve + connect) -> PH_TCP_SEND -> PH_TCP_RECV -> done;
 *         after the connect the socket is dup()ed and the easy handle dropped, so send/expect
 *         run on our own non-blocking fd and libcurl's connection cache never sees it again
 *                                                                            probe_tcp.c
 *   tls   PH_CURL (CONNECT_ONLY over https, verification off) -> judged -> done
 *                                                                            probe_tls.c
 *   dns   PH_DNS (getaddrinfo_a) -> done                                     probe_dns.c
 * The libcurl transfers (http, tcp, tls) share probe_curl.c: the easy handle, the policy check
 * of every address, the phase times and the reason of a failed transfer.
 *
 * This file: the public API, the run (validation, the budget and the per-run cap, starting
 * probes in order, the poll loop, the judging of finished transfers, the expiry of what is left
 * at the deadline) and the helpers every protocol uses to write a result.
 */
#include "hostpatrol/probe.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "inspect/probe_internal.h"

#define IDLE_POLL_MS   1000 /* re-check the context at least this often */
#define NOFD_POLL_MS   100  /* ... and this often without a context fd */
#define BUDGET_POLL_MS 10   /* retry the shared budget this often when it had no units */

/* ---- small helpers ---- */

/* utf8_seq: the length of the valid UTF-8 sequence at s, 0 if there is none (RFC 3629, as
 * jansson checks it: no overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t utf8_seq(const unsigned char *s)
{
    uint32_t cp;
    size_t n, i;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2;
        cp = s[0] & 0x1Fu;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        cp = s[0] & 0x0Fu;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* text_clean: s as valid UTF-8 into buf: bytes that are not part of a valid sequence escaped
 * as \xNN, cut at cap on a character boundary. Returns buf (cap >= 1). */
static const char *text_clean(const char *s, char *buf, size_t cap)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;

    while (*u) {
        size_t k = utf8_seq(u);

        if (o + (k ? k : 4) >= cap)
            break;
        if (k) {
            memcpy(buf + o, u, k);
            o += k;
            u += k;
        } else {
            snprintf(buf + o, cap - o, "\\x%02x", *u++);
            o += 4;
        }
    }
    buf[o] = '\0';
    return buf;
}

/* probe_fmt_alloc: a formatted string, owned (hp_free); NULL on NOMEM. */
char *probe_fmt_alloc(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int k;

    va_start(ap, fmt);
    k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0)
        return NULL;
    s = hp_malloc((size_t)k + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)k + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* probe_quote: s with quotes, backslashes and control bytes escaped, cut at QUOTE_MAX; into buf. */
const char *probe_quote(const char *s, char *buf, size_t cap)
{
    size_t o = 0;

    for (; *s && o + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c == '\r' || c == '\n' || c == '\t') {
            buf[o++] = '\\';
            buf[o++] = c == '\r' ? 'r' : c == '\n' ? 'n' : 't';
        } else if (c < 0x20 || c >= 0x7f) {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    if (*s && o + 4 <= cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

const char *probe_errno_str(int e, char *buf, size_t cap)
{
    const char *m = strerror_r(e, buf, cap); /* GNU variant (_GNU_SOURCE) */

    return m == buf ? check_result_trim_utf8(buf) : m; /* buf: maybe cut (a translation) */
}

int64_t probe_elapsed_ms(const struct probe *p)
{
    return (hp_now_ns() - p->start_ns) / 1000000;
}

int64_t probe_elapsed_us(const struct probe *p)
{
    return (hp_now_ns() - p->start_ns) / 1000;
}

bool probe_is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

bool probe_host_ok(const char *host)
{
    size_t len, label = 0, i;
    bool numeric = true; /* the current label is all digits */

    if (!host || !*host)
        return false;
    if (probe_is_ip_literal(host))
        return true;
    len = strlen(host);
    if (host[len - 1] == '.')
        len--; /* fully qualified */
    if (len == 0 || len > 253)
        return false;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)host[i];

        if (c == '.') {
            if (!label)
                return false;
            label = 0;
            numeric = true;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_') ||
            ++label > 63)
            return false;
        numeric = numeric && c >= '0' && c <= '9';
    }
    return label && !numeric; /* an all-digit last label: a mistyped IPv4 address */
}

/* ---- a probe's result ---- */

hp_rc probe_put(struct probe *p, const char *key, json_t *v)
{
    return json_object_set_new(p->out->values, key, v) ? HP_ERR_NOMEM : HP_OK;
}

/* probe_put_ms: a duration measured in microseconds, as milliseconds (0.001 ms) */
hp_rc probe_put_ms(struct probe *p, const char *key, int64_t us)
{
    return check_result_set_real(p->out, key, CHECK_UNIT_MS, (double)(us > 0 ? us : 0) / 1000.0);
}

/* probe_put_text: a string value from text the server chose (certificate names): kept valid UTF-8
 * (anything else escaped), so that one odd certificate never fails the run. */
hp_rc probe_put_text(struct probe *p, const char *key, const char *s)
{
    char buf[CHECK_VERDICT_MAX];
    json_t *j = json_string(text_clean(s, buf, sizeof(buf)));

    if (!j) /* only NOMEM is left, but an ASCII copy costs nothing to try */
        j = json_string(probe_quote(s, buf, sizeof(buf)));
    return probe_put(p, key, j);
}

hp_rc probe_finish(struct run *r, struct probe *p, const struct check_verdict *v)
{
    char clean[CHECK_VERDICT_MAX];
    struct timespec ts;
    hp_rc rc;

    /* reasons quote what servers and resolvers said: stored only as valid UTF-8 */
    rc = check_result_judge(p->out, v->status, "%s", text_clean(v->reason, clean, sizeof(clean)));
    clock_gettime(CLOCK_REALTIME, &ts);
    p->out->observed_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    p->out->duration_ms = probe_elapsed_ms(p);
    if (p->phase != PH_DONE) {
        p->phase = PH_DONE;
        r->left--;
    }
    if (p->in_flight) {
        p->in_flight = false;
        r->in_flight--;
    }
    probe_budget_give(r->opts ? r->opts->budget : NULL, r->opts ? r->opts->owner : NULL, p->units);
    p->units = 0;
    return rc;
}

/* ---- the run ---- */

/* drain: judge every transfer libcurl has finished and drop its easy handle. */
static hp_rc drain(struct run *r)
{
    CURLMsg *m;
    int queued;

    while ((m = curl_multi_info_read(r->multi, &queued))) {
        CURLcode res = m->data.result;
        char *priv = NULL;
        struct probe *p;
        hp_rc rc;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        p = (struct probe *)(void *)priv;
        if (res != CURLE_OK && p->denied[0] && !p->opened) { /* no address of the hop allowed */
            struct check_verdict v = {CHECK_OK, 0, ""};

            check_verdict_add(&v, CHECK_UNKNOWN, "refused by the cluster policy: %s", p->denied);
            rc = probe_finish(r, p, &v);
        } else if (p->check->kind == CHECK_HTTP)
            rc = probe_http_done(r, p, res);
        else if (p->check->kind == CHECK_TCP)
            rc = probe_tcp_connected(r, p, res);
        else
            rc = probe_tls_done(r, p, res);
        probe_easy_drop(r, p); /* m is invalid from here */
        if (rc)
            return rc;
    }
    return HP_OK;
}

/* validate: what only a programming error can cause (checked for every item before anything
 * is probed): no check, a check of another kind, a tcp or tls check without a target. */
static hp_rc validate(const struct probe_item *it, size_t i, struct hp_err *err)
{
    const struct check_spec *c = it->check;
    char f[48];

    snprintf(f, sizeof(f), "items[%zu]", i);
    if (!c)
        return hp_err_field(err, HP_ERR_INVALID, f, "%s: no check", f);
    switch (c->kind) {
    case CHECK_HTTP:
    case CHECK_DNS:
        return HP_OK;
    case CHECK_TCP:
    case CHECK_TLS:
        if (!it->target)
            return hp_err_field(err, HP_ERR_INVALID, f, "%s: a %s check without a target", f,
                                c->kind == CHECK_TCP ? "tcp" : "tls");
        return HP_OK;
    default:
        return hp_err_field(err, HP_ERR_INVALID, f,
                            "%s: a %s check is not an endpoint probe (http, tcp, tls, dns)", f,
                            check_kind_name(c->kind));
    }
}

/* item_problem: what makes one item unprobeable although it is well-formed (an address, a
 * server name or a port the spec should have refused): its CRIT reason into v; false if
 * none. Such an item gets that result and the others run. */
static bool item_problem(const struct probe *p, struct check_verdict *v)
{
    const struct check_spec *c = p->check;
    const char *a = p->target ? p->target->address : NULL;
    char q[QUOTE_MAX];
    int port;

    switch (c->kind) {
    case CHECK_HTTP:
        if (!c->u.http.url || !*c->u.http.url)
            check_verdict_add(v, CHECK_CRIT, "invalid check: no url");
        break;
    case CHECK_DNS:
        if (!c->u.dns.name || !*c->u.dns.name)
            check_verdict_add(v, CHECK_CRIT, "invalid check: no name");
        break;
    default: /* tcp, tls: validate() saw the target */
        port = c->kind == CHECK_TCP ? c->u.tcp.port : c->u.tls.port;
        if (!probe_host_ok(a))
            check_verdict_add(v, CHECK_CRIT, "invalid address \"%s\"",
                              probe_quote(a ? a : "", q, sizeof(q)));
        else if (c->kind == CHECK_TLS && c->u.tls.server_name &&
                 !probe_host_ok(c->u.tls.server_name))
            check_verdict_add(v, CHECK_CRIT, "invalid address \"%s\"",
                              probe_quote(c->u.tls.server_name, q, sizeof(q)));
        if (port > 65535 || port < (c->kind == CHECK_TCP ? 1 : 0))
            check_verdict_add(v, CHECK_CRIT, "invalid port %d", port);
        break;
    }
    if (v->status == CHECK_OK && p->policy) {
        char why[256];
        bool ok = c->kind == CHECK_HTTP
                      ? inspect_policy_url_ok(p->policy, c->u.http.url, why, sizeof(why))
                  : c->kind == CHECK_DNS
                      ? inspect_policy_host_ok(p->policy, c->u.dns.name, why, sizeof(why))
                      : inspect_policy_host_ok(p->policy, a, why, sizeof(why));

        if (!ok)
            check_verdict_add(v, CHECK_UNKNOWN, "refused by the cluster policy: %s", why);
    }
    return v->status != CHECK_OK;
}

static hp_rc start(struct run *r, struct probe *p)
{
    p->start_ns = hp_now_ns();
    switch (p->check->kind) {
    case CHECK_HTTP:
        return probe_http_start(r, p);
    case CHECK_TCP:
        return probe_tcp_start(r, p);
    case CHECK_TLS:
        return probe_tls_start(r, p);
    default:
        return probe_dns_start(r, p);
    }
}

/* units: what a probe takes from the shared budget */
static size_t units(const struct probe *p)
{
    return p->check->kind == CHECK_HTTP && p->check->u.http.has_body_regex ? PROBE_BUDGET_BODY_UNITS
                                                                           : 1;
}

/* start_more: start probes in order while the run's cap and the shared budget allow */
static hp_rc start_more(struct run *r)
{
    size_t cap = r->opts && r->opts->max_in_flight ? r->opts->max_in_flight : SIZE_MAX;
    struct probe_budget *b = r->opts ? r->opts->budget : NULL;
    bool owner_full = false;

    for (; r->next < r->n && !hp_ctx_err(r->ctx); r->next++) {
        struct probe *p = &r->p[r->next];
        hp_rc rc;

        if (p->phase == PH_DONE)
            continue;
        if (r->in_flight >= cap) {
            r->held = HELD_CAP;
            return HP_OK;
        }
        p->units = probe_budget_take(b, r->opts ? r->opts->owner : NULL, units(p), &owner_full);
        if (!p->units) {
            r->held = owner_full ? HELD_SHARE : HELD_BUDGET;
            return HP_OK;
        }
        r->held = HELD_NONE;
        p->in_flight = true;
        r->in_flight++;
        rc = start(r, p);
        if (rc)
            return rc;
    }
    return HP_OK;
}

static hp_rc multi_rc(CURLMcode mc)
{
    return mc == CURLM_OUT_OF_MEMORY ? HP_ERR_NOMEM : HP_ERR_IO;
}

static hp_rc loop(struct run *r)
{
    int cfd = hp_ctx_fd(r->ctx);
    hp_rc rc;

    for (;;) {
        int running = 0, timeout, cap = cfd >= 0 ? IDLE_POLL_MS : NOFD_POLL_MS, nfds = 0;
        unsigned nw = 0, k, first;
        bool dns_pending;
        CURLMcode mc;
        size_t i;

        mc = curl_multi_perform(r->multi, &running);
        if (mc != CURLM_OK)
            return multi_rc(mc);
        rc = drain(r);
        if (!rc)
            rc = probe_dns_poll(r, &dns_pending);
        if (!rc)
            rc = start_more(r);
        if (rc)
            return rc;
        if (!r->left || hp_ctx_err(r->ctx))
            return HP_OK;
        if (cfd >= 0)
            r->wfds[nw++] = (struct curl_waitfd){.fd = cfd, .events = CURL_WAIT_POLLIN};
        first = nw;
        for (i = 0; r->n_io && i < r->n; i++) {
            const struct probe *p = &r->p[i];

            if (p->phase != PH_TCP_SEND && p->phase != PH_TCP_RECV)
                continue;
            r->wfds[nw] = (struct curl_waitfd){
                .fd = p->fd,
                .events = p->phase == PH_TCP_SEND ? CURL_WAIT_POLLOUT : CURL_WAIT_POLLIN};
            r->wfd_probe[nw++] = i;
        }
        timeout = hp_ctx_poll_timeout(r->ctx);
        if (timeout < 0 || timeout > cap)
            timeout = cap;
        if (dns_pending && probe_dns_interval(r) < timeout)
            timeout = probe_dns_interval(r);
        if ((r->held == HELD_BUDGET || r->held == HELD_SHARE) &&
            timeout > BUDGET_POLL_MS) /* units come back from other runs */
            timeout = BUDGET_POLL_MS;
        mc = curl_multi_poll(r->multi, r->wfds, nw, timeout, &nfds);
        if (mc != CURLM_OK)
            return multi_rc(mc);
        for (k = first; k < nw; k++) {
            struct probe *p = &r->p[r->wfd_probe[k]];

            if (!r->wfds[k].revents || (p->phase != PH_TCP_SEND && p->phase != PH_TCP_RECV))
                continue;
            rc = probe_tcp_io(r, p);
            if (rc)
                return rc;
        }
    }
}

/* expire: every probe without a result gets one: cancelled or timed out. */
static hp_rc expire(struct run *r, hp_rc why)
{
    size_t i;
    hp_rc rc = HP_OK;

    for (i = 0; !rc && i < r->n; i++) {
        struct probe *p = &r->p[i];
        struct check_verdict v = {CHECK_OK, 0, ""};
        char q[QUOTE_MAX];

        if (p->phase == PH_DONE)
            continue;
        if (why == HP_ERR_CANCELED)
            check_verdict_add(&v, CHECK_UNKNOWN, "run cancelled");
        else if (p->phase == PH_IDLE && r->held != HELD_NONE)
            check_verdict_add(
                &v, CHECK_UNKNOWN, "not started within the run's timeout (%lld ms): %s",
                (long long)probe_elapsed_ms(p),
                r->held == HELD_BUDGET  ? "the process-wide budget of probes in flight was in use "
                                          "(--max-probes-in-flight)"
                : r->held == HELD_SHARE ? "this namespace's probes in flight used its share "
                                          "(--max-probes-in-flight-per-namespace)"
                                        : "this run's other probes held its sockets "
                                          "(--max-sockets-per-run)");
        else if (p->phase == PH_TCP_RECV)
            check_verdict_add(&v, CHECK_CRIT,
                              "expected \"%s\" not received within %lld ms (got %zu bytes)",
                              probe_quote(p->check->u.tcp.expect, q, sizeof(q)),
                              (long long)probe_elapsed_ms(p), p->rlen);
        else
            check_verdict_add(&v, CHECK_CRIT, "timed out after %lld ms (%s)",
                              (long long)probe_elapsed_ms(p),
                              p->phase == PH_CURL       ? probe_phase_of(p)
                              : p->phase == PH_TCP_SEND ? "send"
                              : p->phase == PH_DNS      ? "resolve"
                                                        : "start");
        if (p->phase == PH_CURL && probe_resolving_a_name(p)) {
            /* libcurl's resolver thread goes on without us: its units stay taken a while */
            probe_budget_park(r->opts ? r->opts->budget : NULL, r->opts ? r->opts->owner : NULL,
                              p->units, PROBE_BUDGET_RESOLVER_GRACE_MS);
            p->units = 0;
        }
        if (p->phase == PH_CURL)
            rc = probe_put_times(p, p->check->kind == CHECK_HTTP  ? TIMES_HTTP
                                    : p->check->kind == CHECK_TLS ? TIMES_TLS
                                                                  : TIMES_TCP);
        if (!rc && p->check->kind == CHECK_TCP)
            rc = probe_put_ms(p, "total_ms", probe_elapsed_us(p));
        if (!rc)
            rc = probe_finish(r, p, &v);
    }
    return rc;
}

static void run_release(struct run *r)
{
    size_t i;

    for (i = 0; r->p && i < r->n; i++) {
        struct probe *p = &r->p[i];

        probe_easy_drop(r, p);
        if (p->fd >= 0)
            close(p->fd);
        hp_buf_release(&p->body);
        hp_free(p->rbuf);
        sk_X509_pop_free(p->chain, X509_free);
        if (p->dns)
            probe_dns_abandon(p->dns);
        probe_budget_give(r->opts ? r->opts->budget : NULL, r->opts ? r->opts->owner : NULL,
                          p->units);
    }
    curl_multi_cleanup(r->multi);
    X509_STORE_free(r->store);
    hp_free(r->p);
    hp_free(r->wfds);
    hp_free(r->wfd_probe);
}

hp_rc probe_run_opts(const struct probe_item *items, size_t n, struct hp_ctx *ctx,
                     const struct probe_options *opts, struct check_result *out, struct hp_err *err)
{
    struct run r = {0};
    hp_rc rc = HP_OK;
    size_t i;

    if (n && (!items || !out))
        return hp_err_set(err, HP_ERR_INVALID, "probe_run: no items or no results array");
    for (i = 0; i < n; i++)
        memset(&out[i], 0, sizeof(out[i]));
    for (i = 0; i < n; i++) {
        rc = validate(&items[i], i, err);
        if (rc)
            return rc;
    }
    probe_dns_reap();
    for (i = 0; i < n; i++) {
        const struct probe_item *it = &items[i];

        rc = check_result_init(&out[i], it->check->name, it->target ? it->target->name : "-",
                               it->check->kind);
        if (rc)
            goto out;
    }
    if (!n)
        return HP_OK;
    probe_tls_init();
    r.ctx = ctx;
    r.opts = opts;
    r.n = r.left = n;
    r.start_ns = hp_now_ns();
    r.p = hp_calloc(n, sizeof(*r.p));
    r.wfds = hp_calloc(n + 1, sizeof(*r.wfds));
    r.wfd_probe = hp_calloc(n + 1, sizeof(*r.wfd_probe));
    r.multi = curl_multi_init();
    if (!r.p || !r.wfds || !r.wfd_probe || !r.multi) {
        rc = HP_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        r.p[i].check = items[i].check;
        r.p[i].target = items[i].target;
        r.p[i].out = &out[i];
        r.p[i].policy = opts ? opts->policy : NULL;
        r.p[i].fd = -1;
        r.p[i].start_ns = r.start_ns;
    }
    for (i = 0; i < n; i++) {
        struct check_verdict v = {CHECK_OK, 0, ""};

        if (!item_problem(&r.p[i], &v))
            continue;
        rc = probe_finish(&r, &r.p[i], &v);
        if (rc)
            goto out;
    }
    rc = start_more(&r);
    if (!rc)
        rc = loop(&r);
    if (!rc)
        rc = expire(&r, hp_ctx_err(ctx));
out:
    if (rc == HP_ERR_NOMEM)
        hp_err_set(err, rc, "probe_run: out of memory");
    else if (rc)
        hp_err_set(err, rc, "probe_run: libcurl multi interface failed (%s)", hp_rc_name(rc));
    run_release(&r);
    probe_dns_reap();
    return rc;
}

hp_rc probe_run(const struct probe_item *items, size_t n, struct hp_ctx *ctx,
                struct check_result *out, struct hp_err *err)
{
    return probe_run_opts(items, n, ctx, NULL, out, err);
}
