/* probe.c - endpoint probes on one libcurl multi handle (see include/hostpatrol/probe.h).
 *
 * One run = one CURLM. Every probe is a small state machine driven from one poll loop
 * (curl_multi_poll, with the context's fd, the sockets of tcp probes past their connect, and a
 * short timeout while dns requests are in flight as extra wake-ups):
 *   http  PH_CURL (the whole transfer) -> done
 *   tcp   PH_CURL (CONNECT_ONLY: resolve + connect) -> PH_TCP_SEND -> PH_TCP_RECV -> done;
 *         after the connect the socket is dup()ed and the easy handle dropped, so send/expect
 *         run on our own non-blocking fd and libcurl's connection cache never sees it again
 *   tls   PH_CURL (CONNECT_ONLY over https, verification off) -> judged here -> done
 *   dns   PH_DNS (getaddrinfo_a) -> done
 * Certificates come from an SSL info callback at handshake completion (SSL_CTX_FUNCTION sets
 * it on each connection's SSL_CTX): the peer chain and the protocol version.
 */
#include "hostpatrol/probe.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/buf.h"
#include "hostpatrol/safe_regex.h"
#include "hostpatrol/check_verdict.h"

#define BODY_MAX        (1u << 20)  /* http: body bytes read (and kept for bodyRegex) */
#define TCP_READ_MAX    (64u << 10) /* tcp: bytes read looking for expect */
#define MAX_REDIRS      10L
#define DNS_POLL_MAX_MS 10   /* gai_error polling interval, at most */
#define IDLE_POLL_MS    1000 /* re-check the context at least this often */
#define NOFD_POLL_MS    100  /* ... and this often without a context fd */
#define BUDGET_POLL_MS  10   /* retry the shared budget this often when it had no units */
#define QUOTE_MAX       160

enum phase { PH_IDLE, PH_CURL, PH_TCP_SEND, PH_TCP_RECV, PH_DNS, PH_DONE };

/* One getaddrinfo_a request; glibc reads name and hints and writes cb while it runs. */
struct dns_req {
    struct gaicb cb;
    struct addrinfo hints;
    struct dns_req *next; /* orphan list */
    char name[];
};

struct probe {
    const struct check_spec *check;
    const struct target_spec *target;
    struct check_result *out;            /* borrowed: the caller's slot */
    const struct inspect_policy *policy; /* borrowed, may be NULL */
    enum phase phase;
    int64_t start_ns;
    /* PH_CURL */
    CURL *easy;
    struct curl_slist *headers, *connect_to;
    char errbuf[CURL_ERROR_SIZE];
    /* http body: what bodyRegex is matched on (the first BODY_MAX bytes) */
    struct hp_buf body;
    size_t body_seen;
    bool body_full;
    /* set by the SSL info callback: the peer chain (owned, up-ref'd) and version (static) */
    STACK_OF(X509) * chain;
    const char *tls_version;
    /* tcp after connect */
    int fd;
    size_t sent, rlen;
    char *rbuf;
    /* dns */
    struct dns_req *dns;
    /* budgets and policy */
    size_t units;       /* budget units held while in flight */
    bool in_flight;     /* started, no result yet */
    char denied[256];   /* why the policy refused an address of this hop */
    char hop_host[256]; /* the host being connected to (a redirect changes it) */
    bool opened;        /* an address of this hop was allowed */
};

struct run {
    CURLM *multi;
    struct hp_ctx *ctx;
    const struct probe_options *opts;
    struct probe *p;
    size_t n, left, n_dns, n_io;
    int64_t start_ns;
    X509_STORE *store; /* tls verification, loaded on first use */
    bool store_ok;
    struct curl_waitfd *wfds; /* n + 1 */
    size_t *wfd_probe;        /* probe index of wfds[k] */
    size_t next;              /* the first probe not started yet */
    size_t in_flight;         /* probes started, without a result */
    enum {
        HELD_NONE,
        HELD_CAP,
        HELD_BUDGET,
        HELD_SHARE
    } held; /* what keeps the next one waiting */
};

/* ---- dns requests glibc could not cancel: freed once glibc is done with them ---- */

static pthread_mutex_t orphan_lock = PTHREAD_MUTEX_INITIALIZER; /* guards orphans */
static struct dns_req *orphans;

static void dns_req_free(struct dns_req *q)
{
    if (!q)
        return;
    if (q->cb.ar_result)
        freeaddrinfo(q->cb.ar_result);
    hp_free(q);
}

static void orphans_reap(void)
{
    struct dns_req **pp, *q;

    pthread_mutex_lock(&orphan_lock);
    for (pp = &orphans; (q = *pp);) {
        if (gai_error(&q->cb) == EAI_INPROGRESS) {
            pp = &q->next;
            continue;
        }
        *pp = q->next;
        dns_req_free(q);
    }
    pthread_mutex_unlock(&orphan_lock);
}

/* dns_abandon: the probe no longer wants q. Cancel it; if glibc is running it, park it. */
static void dns_abandon(struct dns_req *q)
{
    if (gai_cancel(&q->cb) == EAI_NOTCANCELED && gai_error(&q->cb) == EAI_INPROGRESS) {
        pthread_mutex_lock(&orphan_lock);
        q->next = orphans;
        orphans = q;
        pthread_mutex_unlock(&orphan_lock);
        return;
    }
    dns_req_free(q);
}

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

/* fmt_alloc: a formatted string, owned (hp_free); NULL on NOMEM. */
static char *fmt_alloc(const char *fmt, ...) HP_PRINTF(1, 2);

static char *fmt_alloc(const char *fmt, ...)
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

/* quote: s with quotes, backslashes and control bytes escaped, cut at QUOTE_MAX; into buf. */
static const char *quote(const char *s, char *buf, size_t cap)
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

static const char *errno_str(int e, char *buf, size_t cap)
{
    const char *m = strerror_r(e, buf, cap); /* GNU variant (_GNU_SOURCE) */

    return m == buf ? check_result_trim_utf8(buf) : m; /* buf: maybe cut (a translation) */
}

static int64_t elapsed_ms(const struct probe *p)
{
    return (hp_now_ns() - p->start_ns) / 1000000;
}

static int64_t elapsed_us(const struct probe *p)
{
    return (hp_now_ns() - p->start_ns) / 1000;
}

static bool is_ip_literal(const char *s)
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
    if (is_ip_literal(host))
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

static hp_rc put(struct probe *p, const char *key, json_t *v)
{
    return json_object_set_new(p->out->values, key, v) ? HP_ERR_NOMEM : HP_OK;
}

/* put_ms: a duration measured in microseconds, as milliseconds (0.001 ms) */
static hp_rc put_ms(struct probe *p, const char *key, int64_t us)
{
    return check_result_set_real(p->out, key, CHECK_UNIT_MS, (double)(us > 0 ? us : 0) / 1000.0);
}

/* put_text: a string value from text the server chose (certificate names): kept valid UTF-8
 * (anything else escaped), so that one odd certificate never fails the run. */
static hp_rc put_text(struct probe *p, const char *key, const char *s)
{
    char buf[CHECK_VERDICT_MAX];
    json_t *j = json_string(text_clean(s, buf, sizeof(buf)));

    if (!j) /* only NOMEM is left, but an ASCII copy costs nothing to try */
        j = json_string(quote(s, buf, sizeof(buf)));
    return put(p, key, j);
}

static hp_rc finish(struct run *r, struct probe *p, const struct check_verdict *v)
{
    char clean[CHECK_VERDICT_MAX];
    struct timespec ts;
    hp_rc rc;

    /* reasons quote what servers and resolvers said: stored only as valid UTF-8 */
    rc = check_result_judge(p->out, v->status, "%s", text_clean(v->reason, clean, sizeof(clean)));
    clock_gettime(CLOCK_REALTIME, &ts);
    p->out->observed_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    p->out->duration_ms = elapsed_ms(p);
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

/* ---- TLS: certificates from the handshake ---- */

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_ex_index = -1;

static void tls_index_init(void)
{
    tls_ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* on_tls_info: at each handshake completion keep the peer chain and the version. */
static void on_tls_info(const SSL *ssl, int where, int ret)
{
    struct probe *p;
    STACK_OF(X509) * chain, *copy;

    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_DONE) || tls_ex_index < 0)
        return;
    p = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_ex_index);
    if (!p)
        return;
    p->tls_version = SSL_get_version(ssl);
    chain = SSL_get_peer_cert_chain(ssl);
    copy = chain ? X509_chain_up_ref(chain) : NULL;
    if (copy) {
        sk_X509_pop_free(p->chain, X509_free);
        p->chain = copy;
    }
}

static CURLcode on_ssl_ctx(CURL *e, void *sslctx, void *arg)
{
    (void)e;
    if (tls_ex_index >= 0 && SSL_CTX_set_ex_data(sslctx, tls_ex_index, arg))
        SSL_CTX_set_info_callback(sslctx, on_tls_info);
    return CURLE_OK;
}

/* secs_left: seconds from now to c's notAfter (negative once expired). */
static bool secs_left(const X509 *c, int64_t *out)
{
    int day = 0, sec = 0;

    if (!ASN1_TIME_diff(&day, &sec, NULL, X509_get0_notAfter(c)))
        return false;
    *out = (int64_t)day * 86400 + sec;
    return true;
}

/* days_text: "expires in N days" / "expired N days ago" (whole days) into buf. */
static const char *days_text(int64_t secs, char *buf, size_t cap)
{
    int64_t d;

    if (secs >= 0) {
        d = secs / 86400;
        snprintf(buf, cap, "expires in %lld day%s", (long long)d, d == 1 ? "" : "s");
    } else {
        d = (-secs + 86399) / 86400;
        snprintf(buf, cap, "expired %lld day%s ago", (long long)d, d == 1 ? "" : "s");
    }
    return buf;
}

static const char *name_text(const X509_NAME *nm, char *buf, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    int k = 0;

    buf[0] = '\0';
    if (!b)
        return buf;
    if (X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253) >= 0) {
        k = BIO_read(b, buf, (int)cap - 1); /* cut at cap */
        buf[k > 0 ? k : 0] = '\0';
        check_result_trim_utf8(buf);
    }
    BIO_free(b);
    return buf;
}

/* cert_values: days-left values of the captured chain and their judgement (WARN). */
static hp_rc cert_values(struct probe *p, struct check_verdict *v)
{
    int n = p->chain ? sk_X509_num(p->chain) : 0, i;
    int64_t leaf, s, min_secs = INT64_MAX, limit;
    int min = p->check->tls_min_days_left;
    char days[64], subj[256];
    hp_rc rc;

    if (n <= 0 || !secs_left(sk_X509_value(p->chain, 0), &leaf))
        return HP_OK;
    for (i = 1; i < n; i++)
        if (secs_left(sk_X509_value(p->chain, i), &s) && s < min_secs)
            min_secs = s;
    if (min_secs == INT64_MAX)
        min_secs = leaf;
    rc = check_result_set_days_left(p->out, "tls_leaf_days_left", leaf);
    if (!rc)
        rc = check_result_set_days_left(p->out, "tls_chain_min_days_left", min_secs);
    if (rc || min < 0)
        return rc;
    limit = (int64_t)min * 86400;
    if (leaf < limit)
        check_verdict_add(v, CHECK_WARN, "TLS leaf certificate %s (minimum %d)",
                          days_text(leaf, days, sizeof(days)), min);
    for (i = 1; i < n; i++) {
        X509 *c = sk_X509_value(p->chain, i);

        if (secs_left(c, &s) && s < limit)
            check_verdict_add(v, CHECK_WARN, "TLS chain certificate %s %s (minimum %d)",
                              name_text(X509_get_subject_name(c), subj, sizeof(subj)),
                              days_text(s, days, sizeof(days)), min);
    }
    return HP_OK;
}

static hp_rc sans_json(X509 *leaf, json_t **out)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    json_t *a = json_array();
    hp_rc rc = HP_OK;
    int i;

    *out = NULL;
    if (!a) {
        rc = HP_ERR_NOMEM;
        goto out;
    }
    for (i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char buf[INET6_ADDRSTRLEN + 1] = "";
        const unsigned char *d;
        int len, k;

        if (g->type == GEN_DNS) {
            d = ASN1_STRING_get0_data(g->d.dNSName);
            len = ASN1_STRING_length(g->d.dNSName);
            for (k = 0; k < len && d[k] >= 0x20 && d[k] < 0x7f; k++)
                ;
            if (k != len || len <= 0)
                continue; /* not a printable name: not reported */
            if (json_array_append_new(a, json_stringn((const char *)d, (size_t)len))) {
                rc = HP_ERR_NOMEM;
                goto out;
            }
        } else if (g->type == GEN_IPADD) {
            d = ASN1_STRING_get0_data(g->d.iPAddress);
            len = ASN1_STRING_length(g->d.iPAddress);
            if ((len != 4 && len != 16) ||
                !inet_ntop(len == 4 ? AF_INET : AF_INET6, d, buf, sizeof(buf)))
                continue;
            if (json_array_append_new(a, json_string(buf))) {
                rc = HP_ERR_NOMEM;
                goto out;
            }
        }
    }
    *out = a;
    a = NULL;
out:
    json_decref(a);
    GENERAL_NAMES_free(gens);
    return rc;
}

/* store_load: the trust store for tls probes: opts->ca_file, else libcurl's CA bundle/path,
 * else OpenSSL's default paths. */
static hp_rc store_load(struct run *r, CURL *e)
{
    const char *file = r->opts ? r->opts->ca_file : NULL, *path = NULL;

    if (r->store)
        return HP_OK;
    r->store = X509_STORE_new();
    if (!r->store)
        return HP_ERR_NOMEM;
#if LIBCURL_VERSION_NUM >= 0x075400
    if (!file) {
        char *cf = NULL, *cp = NULL;

        curl_easy_getinfo(e, CURLINFO_CAINFO, &cf);
        curl_easy_getinfo(e, CURLINFO_CAPATH, &cp);
        file = cf;
        path = cp;
    }
#else
    (void)e;
#endif
    if (file || path)
        r->store_ok = X509_STORE_load_locations(r->store, file, path) == 1;
    else
        r->store_ok = X509_STORE_set_default_paths(r->store) == 1;
    if (!r->store_ok)
        ERR_clear_error(); /* judged by the caller; nothing left for the next TLS call to see */
    return HP_OK;
}

/* verify_chain: X509_V_OK or the verifier's error code; -1 if it could not run. */
static long verify_chain(X509_STORE *store, X509 *leaf, STACK_OF(X509) * chain)
{
    X509_STORE_CTX *c = X509_STORE_CTX_new();
    long e = -1;

    if (!c)
        return -1;
    if (X509_STORE_CTX_init(c, store, leaf, chain) == 1) {
        X509_STORE_CTX_set_default(c, "ssl_server");
        if (X509_verify_cert(c) == 1)
            e = X509_V_OK;
        else if ((e = X509_STORE_CTX_get_error(c)) == X509_V_OK)
            e = X509_V_ERR_UNSPECIFIED;
    }
    X509_STORE_CTX_free(c);
    return e;
}

/* ---- libcurl probes ---- */

static void easy_drop(struct run *r, struct probe *p)
{
    if (p->easy) {
        curl_multi_remove_handle(r->multi, p->easy);
        curl_easy_cleanup(p->easy);
        p->easy = NULL;
    }
    curl_slist_free_all(p->headers);
    curl_slist_free_all(p->connect_to);
    p->headers = p->connect_to = NULL;
}

static int64_t info_us(CURL *e, CURLINFO what)
{
    curl_off_t v = 0;

    if (curl_easy_getinfo(e, what, &v) != CURLE_OK || v < 0)
        return 0;
    return (int64_t)v;
}

/* probe_phase_of: where an unfinished (or timed-out) transfer is. */
static const char *probe_phase_of(const struct probe *p)
{
    int64_t dns = info_us(p->easy, CURLINFO_NAMELOOKUP_TIME_T);
    int64_t conn = info_us(p->easy, CURLINFO_CONNECT_TIME_T);
    char *scheme = NULL;

    if (!conn)
        return dns ? "connect" : "resolve";
    if (p->check->kind == CHECK_TLS)
        return "tls handshake";
    if (p->check->kind == CHECK_TCP)
        return "connect";
    curl_easy_getinfo(p->easy, CURLINFO_SCHEME, &scheme);
    if (scheme && !strcasecmp(scheme, "https") && !info_us(p->easy, CURLINFO_APPCONNECT_TIME_T))
        return "tls handshake";
    if (!info_us(p->easy, CURLINFO_STARTTRANSFER_TIME_T))
        return "waiting for response";
    return "reading body";
}

/* resolving_a_name: is libcurl still resolving a host name (not an address literal) for p? */
/* current_host: the host p connects to now: the target's address (tcp, tls: whatever the SNI), or
 * the current URL's host (http, redirects included); "" when not known */
static void current_host(const struct probe *p, char *buf, size_t cap)
{
    char *url = NULL;

    buf[0] = '\0';
    if (p->target)
        snprintf(buf, cap, "%s", p->target->address);
    else if (curl_easy_getinfo(p->easy, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url)
        inspect_policy_url_host(url, buf, cap);
}

static bool resolving_a_name(const struct probe *p)
{
    char host[256];

    if (strcmp(probe_phase_of(p), "resolve"))
        return false;
    current_host(p, host, sizeof(host));
    return !host[0] || (host[0] != '[' && !is_ip_literal(host)); /* not known: a name */
}

enum times { TIMES_TCP, TIMES_TLS, TIMES_HTTP };

/* put_times: the phase durations libcurl measured (see probe.h for their meaning). */
static hp_rc put_times(struct probe *p, enum times which)
{
    int64_t dns = info_us(p->easy, CURLINFO_NAMELOOKUP_TIME_T);
    int64_t conn = info_us(p->easy, CURLINFO_CONNECT_TIME_T);
    int64_t app = info_us(p->easy, CURLINFO_APPCONNECT_TIME_T);
    int64_t st = info_us(p->easy, CURLINFO_STARTTRANSFER_TIME_T);
    int64_t total = info_us(p->easy, CURLINFO_TOTAL_TIME_T);
    int64_t ready = app > conn ? app : conn;
    hp_rc rc;

    rc = put_ms(p, "dns_ms", dns);
    if (!rc && conn)
        rc = put_ms(p, "connect_ms", conn > dns ? conn - dns : 0);
    if (rc || which == TIMES_TCP)
        return rc;
    rc = put_ms(p, "tls_ms", app > conn && conn ? app - conn : 0);
    if (!rc && which == TIMES_HTTP)
        rc = put_ms(p, "first_byte_ms", st > ready && ready ? st - ready : 0);
    if (!rc)
        rc = put_ms(p, "total_ms", total ? total : elapsed_us(p));
    return rc;
}

/* probe_transport_fail: the reason of a failed transfer. where: "host:port" when known. */
static void probe_transport_fail(struct probe *p, CURLcode res, const char *where,
                                 struct check_verdict *v)
{
    const char *eb = p->errbuf[0] ? check_result_trim_utf8(p->errbuf) : curl_easy_strerror(res);
    char buf[128];
    long oserr = 0;

    curl_easy_getinfo(p->easy, CURLINFO_OS_ERRNO, &oserr);
    switch (res) {
    case CURLE_OPERATION_TIMEDOUT:
        check_verdict_add(v, CHECK_CRIT, "timed out after %lld ms (%s)", (long long)elapsed_ms(p),
                          probe_phase_of(p));
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        check_verdict_add(v, CHECK_CRIT, "name does not resolve: %s", eb);
        break;
    case CURLE_COULDNT_CONNECT:
        if (where && oserr)
            check_verdict_add(v, CHECK_CRIT, "connect to %s: %s", where,
                              errno_str((int)oserr, buf, sizeof(buf)));
        else if (oserr)
            check_verdict_add(v, CHECK_CRIT, "connect failed: %s (%s)",
                              errno_str((int)oserr, buf, sizeof(buf)), eb);
        else
            check_verdict_add(v, CHECK_CRIT, "connect failed: %s", eb);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
        check_verdict_add(v, CHECK_CRIT, "TLS verification failed: %s", eb);
        break;
    case CURLE_SSL_CONNECT_ERROR:
        check_verdict_add(v, CHECK_CRIT, "TLS handshake failed: %s", eb);
        break;
    case CURLE_SSL_CACERT_BADFILE: /* our configuration, not the endpoint */
        check_verdict_add(v, CHECK_UNKNOWN, "cannot load the CA certificates: %s", eb);
        break;
    default:
        check_verdict_add(v, CHECK_CRIT, "%s", eb);
        break;
    }
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct probe *p = arg;
    size_t n = size * nmemb, keep = n;

    if (p->body_seen + n > BODY_MAX) {
        keep = BODY_MAX - p->body_seen;
        p->body_full = true;
    }
    p->body_seen += keep;
    /* out of memory ends the transfer too: http_done reports it */
    if (p->check->u.http.has_body_regex && keep && hp_buf_add(&p->body, data, keep))
        return 0;
    return p->body_full ? 0 : n; /* 0 ends the transfer: enough was read */
}

/* on_open_socket: libcurl's socket opener: every address a probe connects to (each one
 * resolved, each redirect) passes the cluster policy first. The name checked against name rules
 * is the target's address for tcp/tls (the connection goes there, whatever the SNI) and the
 * current URL's host for http (redirects included). */
static curl_socket_t on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct probe *p = arg;
    const struct inspect_policy *pol = p->policy;
    char host[256];

    (void)purpose;
    current_host(p, host, sizeof(host));
    if (strcmp(host, p->hop_host)) { /* a new hop (a redirect): judged on its own */
        snprintf(p->hop_host, sizeof(p->hop_host), "%s", host);
        p->opened = false;
        p->denied[0] = '\0';
    }
    if (!inspect_policy_host_ok(pol, host[0] ? host : NULL, p->denied, sizeof(p->denied)) ||
        !inspect_policy_addr_ok(pol, &a->addr, host[0] ? host : NULL, p->denied, sizeof(p->denied)))
        return CURL_SOCKET_BAD;
    p->opened = true; /* a failure of this hop is the endpoint's, not the policy's */
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static hp_rc easy_start(struct run *r, struct probe *p, const char *url)
{
    int64_t left = hp_ctx_remaining_ms(r->ctx);
    CURL *e;

    e = p->easy = curl_easy_init();
    if (!e || curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK)
        return HP_ERR_NOMEM;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)p);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
    /* never wait for a resolver thread when a probe is dropped */
    curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
    if (left != INT64_MAX) {
        long ms = left > LONG_MAX ? LONG_MAX : (long)left;

        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms);
    }
    if (r->opts && r->opts->ca_file &&
        curl_easy_setopt(e, CURLOPT_CAINFO, r->opts->ca_file) != CURLE_OK)
        return HP_ERR_NOMEM;
    if (p->policy) {
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, (void *)p);
    }
    if (p->check->kind != CHECK_TCP) {
        curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, (void *)p);
    }
    if (p->check->kind != CHECK_HTTP) {
        curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
        curl_easy_setopt(e, CURLOPT_PROXY, ""); /* a direct connection, whatever the env */
    }
    return HP_OK;
}

static hp_rc easy_add(struct run *r, struct probe *p)
{
    CURLMcode mc = curl_multi_add_handle(r->multi, p->easy);

    if (mc == CURLM_OUT_OF_MEMORY)
        return HP_ERR_NOMEM;
    if (mc != CURLM_OK)
        return HP_ERR_INTERNAL;
    p->phase = PH_CURL;
    return HP_OK;
}

static hp_rc http_start(struct run *r, struct probe *p)
{
    const struct http_check *h = &p->check->u.http;
    CURL *e;
    hp_rc rc;
    size_t i;

    rc = easy_start(r, p, h->url);
    if (rc)
        return rc;
    e = p->easy;
    /* the connection is closed once done: the next probe's times are real */
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "hostpatrol-probe");
    if (h->follow_redirects) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, MAX_REDIRS);
    }
    if (h->method && !strcmp(h->method, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (h->method && strcmp(h->method, "GET")) {
        if (curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, h->method) != CURLE_OK)
            return HP_ERR_NOMEM;
    }
    for (i = 0; h->headers && h->headers[i]; i++) {
        struct curl_slist *l = curl_slist_append(p->headers, h->headers[i]);

        if (!l)
            return HP_ERR_NOMEM;
        p->headers = l;
    }
    if (p->headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)p);
    return easy_add(r, p);
}

/* bracket: IPv6 literals go in brackets in URLs and CONNECT_TO entries. */
static bool needs_brackets(const char *host)
{
    return strchr(host, ':') != NULL;
}

static hp_rc tcp_start(struct run *r, struct probe *p)
{
    const char *a = p->target->address;
    bool br = needs_brackets(a);
    char *url =
        fmt_alloc("http://%s%s%s:%d/", br ? "[" : "", a, br ? "]" : "", p->check->u.tcp.port);
    hp_rc rc;

    if (!url)
        return HP_ERR_NOMEM;
    rc = easy_start(r, p, url);
    hp_free(url);
    if (rc)
        return rc;
    /* no FORBID_REUSE: the socket must outlive CURLMSG_DONE to be taken over */
    return easy_add(r, p);
}

static int tls_port(const struct probe *p)
{
    return p->check->u.tls.port > 0 ? p->check->u.tls.port : 443;
}

static hp_rc tls_start(struct run *r, struct probe *p)
{
    const struct tls_check *t = &p->check->u.tls;
    const char *a = p->target->address;
    const char *host = t->server_name ? t->server_name : a;
    bool br = needs_brackets(host), abr = needs_brackets(a);
    int port = tls_port(p);
    char *url = fmt_alloc("https://%s%s%s:%d/", br ? "[" : "", host, br ? "]" : "", port);
    char *ct = NULL;
    hp_rc rc;

    if (!url)
        return HP_ERR_NOMEM;
    rc = easy_start(r, p, url);
    hp_free(url);
    if (rc)
        return rc;
    if (t->server_name) { /* SNI and name: server_name; the connection: the address */
        struct curl_slist *l;

        ct = fmt_alloc("%s%s%s:%d:%s%s%s:%d", br ? "[" : "", host, br ? "]" : "", port,
                       abr ? "[" : "", a, abr ? "]" : "", port);
        if (!ct)
            return HP_ERR_NOMEM;
        l = curl_slist_append(NULL, ct);
        hp_free(ct);
        if (!l)
            return HP_ERR_NOMEM;
        p->connect_to = l;
        curl_easy_setopt(p->easy, CURLOPT_CONNECT_TO, p->connect_to);
    }
    /* verification is judged afterwards, so the certificates can always be read */
    curl_easy_setopt(p->easy, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(p->easy, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(p->easy, CURLOPT_FORBID_REUSE, 1L);
    return easy_add(r, p);
}

static hp_rc http_done(struct run *r, struct probe *p, CURLcode res)
{
    const struct http_check *h = &p->check->u.http;
    struct check_verdict v = {CHECK_OK, 0, ""};
    long code = 0;
    hp_rc rc;

    if (hp_buf_error(&p->body))
        return HP_ERR_NOMEM;
    curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &code);
    rc = code > 0 ? check_result_set_int(p->out, "status_code", code) : HP_OK;
    if (!rc)
        rc = put_times(p, TIMES_HTTP);
    if (rc)
        return rc;
    if (res == CURLE_WRITE_ERROR && p->body_full)
        res = CURLE_OK; /* we stopped reading at BODY_MAX */
    if (res != CURLE_OK) {
        probe_transport_fail(p, res, NULL, &v);
        return finish(r, p, &v);
    }
    if (h->n_expect_status == 0) {
        if (code < 200 || code > 399)
            check_verdict_add(&v, CHECK_CRIT, "status %ld, expected 2xx or 3xx", code);
    } else {
        char list[256] = "";
        size_t i, o = 0;
        bool ok = false;

        for (i = 0; i < h->n_expect_status; i++) {
            ok = ok || h->expect_status[i] == code;
            if (o < sizeof(list))
                o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%ld",
                                      i == 0                        ? ""
                                      : i + 1 == h->n_expect_status ? " or "
                                                                    : ", ",
                                      h->expect_status[i]);
        }
        if (!ok)
            check_verdict_add(&v, CHECK_CRIT, "status %ld, expected %s", code, list);
    }
    if (h->has_body_regex) {
        switch (safe_regex_match_until(h->body_regex, hp_buf_data(&p->body), hp_buf_len(&p->body),
                                       hp_ctx_deadline_ns(r->ctx))) {
        case SAFE_REGEX_MATCH:
            break;
        case SAFE_REGEX_NO_MATCH:
            check_verdict_add(&v, CHECK_CRIT, "body does not match bodyRegex (%zu bytes read%s)",
                              hp_buf_len(&p->body), p->body_full ? ", the first 1 MiB" : "");
            break;
        case SAFE_REGEX_TOO_COSTLY:
            if (hp_ctx_err(r->ctx))
                check_verdict_add(&v, CHECK_UNKNOWN,
                                  "bodyRegex not matched on %zu bytes within the run's timeout",
                                  hp_buf_len(&p->body));
            else
                check_verdict_add(&v, CHECK_UNKNOWN,
                                  "bodyRegex too costly to match on %zu bytes (stopped at its "
                                  "match limit): simplify the pattern",
                                  hp_buf_len(&p->body));
            break;
        }
    }
    rc = cert_values(p, &v);
    if (rc)
        return rc;
    return finish(r, p, &v);
}

static hp_rc tcp_io(struct run *r, struct probe *p);

static hp_rc tcp_connected(struct run *r, struct probe *p, CURLcode res)
{
    const struct tcp_check *t = &p->check->u.tcp;
    struct check_verdict v = {CHECK_OK, 0, ""};
    curl_socket_t s = CURL_SOCKET_BAD;
    char where[300], buf[128];
    hp_rc rc;
    int fl;

    rc = put_times(p, TIMES_TCP);
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
                          errno_str(errno, buf, sizeof(buf)));
        goto done;
    }
    if (!t->send && !t->expect)
        goto done;
    p->phase = t->send ? PH_TCP_SEND : PH_TCP_RECV;
    r->n_io++;
    return tcp_io(r, p);
done:
    rc = put_ms(p, "total_ms", elapsed_us(p));
    return rc ? rc : finish(r, p, &v);
}

/* tcp_io: send, then read for expect, as far as the socket allows without blocking. */
static hp_rc tcp_io(struct run *r, struct probe *p)
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
                                  errno_str(errno, buf, sizeof(buf)));
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
                              quote(t->expect, q, sizeof(q)), TCP_READ_MAX);
            goto done;
        }
        k = recv(p->fd, p->rbuf + p->rlen, TCP_READ_MAX - p->rlen, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return HP_OK;
        if (k < 0) {
            check_verdict_add(&v, CHECK_CRIT, "read from %s:%d: %s (got %zu bytes)",
                              p->target->address, t->port, errno_str(errno, buf, sizeof(buf)),
                              p->rlen);
            goto done;
        }
        if (k == 0) {
            check_verdict_add(&v, CHECK_CRIT,
                              "expected \"%s\" not received: connection closed after %zu bytes",
                              quote(t->expect, q, sizeof(q)), p->rlen);
            goto done;
        }
        p->rlen += (size_t)k;
        if (memmem(p->rbuf + from, p->rlen - from, t->expect, elen))
            goto done;
    }
done:
    r->n_io--;
    rc = put_ms(p, "total_ms", elapsed_us(p));
    return rc ? rc : finish(r, p, &v);
}

static hp_rc tls_done(struct run *r, struct probe *p, CURLcode res)
{
    const struct tls_check *t = &p->check->u.tls;
    const char *name = t->server_name ? t->server_name : p->target->address;
    struct check_verdict v = {CHECK_OK, 0, ""};
    char where[300], buf[512];
    json_t *sans = NULL;
    size_t namelen;
    X509 *leaf;
    hp_rc rc;
    long ve;

    snprintf(where, sizeof(where), "%s:%d", p->target->address, tls_port(p));
    check_result_trim_utf8(where);
    rc = put_times(p, TIMES_TLS);
    if (rc)
        return rc;
    if (res != CURLE_OK) {
        probe_transport_fail(p, res, where, &v);
        return finish(r, p, &v);
    }
    if (!p->chain || sk_X509_num(p->chain) < 1) {
        check_verdict_add(&v, CHECK_CRIT, "no certificate received from %s", where);
        return finish(r, p, &v);
    }
    leaf = sk_X509_value(p->chain, 0);
    rc = put(p, "tls_version", json_string(p->tls_version ? p->tls_version : "unknown"));
    if (!rc)
        rc = put_text(p, "subject", name_text(X509_get_subject_name(leaf), buf, sizeof(buf)));
    if (!rc)
        rc = put_text(p, "issuer", name_text(X509_get_issuer_name(leaf), buf, sizeof(buf)));
    if (!rc)
        rc = sans_json(leaf, &sans);
    if (!rc)
        rc = put(p, "sans", sans);
    if (!rc)
        rc = store_load(r, p->easy);
    if (rc)
        return rc;
    if (!r->store_ok) { /* our fault, not the endpoint's: the chain cannot be judged */
        check_verdict_add(&v, CHECK_UNKNOWN, "cannot load the CA certificates (%s)",
                          r->opts && r->opts->ca_file ? r->opts->ca_file : "system bundle");
    } else {
        ve = verify_chain(r->store, leaf, p->chain);
        if (ve < 0)
            return HP_ERR_NOMEM;
        if (ve != X509_V_OK)
            check_verdict_add(&v, CHECK_CRIT, "certificate verify failed: %s",
                              X509_verify_cert_error_string(ve));
    }
    namelen = strlen(name);
    if (namelen > 1 && name[namelen - 1] == '.')
        namelen--; /* "example.com." is example.com */
    if ((is_ip_literal(name) ? X509_check_ip_asc(leaf, name, 0)
                             : X509_check_host(leaf, name, namelen, 0, NULL)) != 1)
        check_verdict_add(&v, CHECK_CRIT, "certificate does not match host name %s", name);
    rc = cert_values(p, &v);
    if (rc)
        return rc;
    return finish(r, p, &v);
}

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
            rc = finish(r, p, &v);
        } else if (p->check->kind == CHECK_HTTP)
            rc = http_done(r, p, res);
        else if (p->check->kind == CHECK_TCP)
            rc = tcp_connected(r, p, res);
        else
            rc = tls_done(r, p, res);
        easy_drop(r, p); /* m is invalid from here */
        if (rc)
            return rc;
    }
    return HP_OK;
}

/* ---- dns ---- */

static hp_rc dns_start(struct run *r, struct probe *p)
{
    const char *name = p->check->u.dns.name;
    size_t len = strlen(name);
    struct dns_req *q = hp_calloc(1, sizeof(*q) + len + 1);
    struct gaicb *list[1];
    struct check_verdict v = {CHECK_OK, 0, ""};
    int g;

    if (!q)
        return HP_ERR_NOMEM;
    memcpy(q->name, name, len + 1);
    q->hints.ai_family = AF_UNSPEC;
    q->hints.ai_socktype = SOCK_STREAM; /* one entry per address */
    q->cb.ar_name = q->name;
    q->cb.ar_request = &q->hints;
    list[0] = &q->cb;
    g = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
    if (g) {
        hp_free(q);
        if (g == EAI_MEMORY)
            return HP_ERR_NOMEM;
        check_verdict_add(&v, CHECK_UNKNOWN, "cannot start resolving %s: %s", name,
                          gai_strerror(g));
        return finish(r, p, &v);
    }
    p->dns = q;
    p->phase = PH_DNS;
    r->n_dns++;
    return HP_OK;
}

static bool array_has(const json_t *a, const char *s)
{
    size_t i;

    for (i = 0; i < json_array_size(a); i++)
        if (!strcmp(json_string_value(json_array_get(a, i)), s))
            return true;
    return false;
}

/* canon_addr: an IP literal in inet_ntop's form (so "::0001" equals "::1"); else s. */
static const char *canon_addr(const char *s, char *buf, size_t cap)
{
    unsigned char a[sizeof(struct in6_addr)];

    if (inet_pton(AF_INET, s, a) == 1 && inet_ntop(AF_INET, a, buf, (socklen_t)cap))
        return buf;
    if (inet_pton(AF_INET6, s, a) == 1 && inet_ntop(AF_INET6, a, buf, (socklen_t)cap))
        return buf;
    return s;
}

static void append_word(char *buf, size_t cap, const char *w)
{
    size_t o = strlen(buf);

    if (o + 1 < cap) {
        snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", w);
        check_result_trim_utf8(buf + o); /* cut at cap: never inside a character */
    }
}

static void dns_compare(const json_t *got, char *const *expect, struct check_verdict *v)
{
    char missing[400] = "", unexpected[400] = "", a[INET6_ADDRSTRLEN + 1];
    size_t i, k;

    for (k = 0; expect[k]; k++)
        if (!array_has(got, canon_addr(expect[k], a, sizeof(a))))
            append_word(missing, sizeof(missing), expect[k]);
    for (i = 0; i < json_array_size(got); i++) {
        const char *g = json_string_value(json_array_get(got, i));
        bool found = false;

        for (k = 0; expect[k] && !found; k++)
            found = !strcmp(canon_addr(expect[k], a, sizeof(a)), g);
        if (!found)
            append_word(unexpected, sizeof(unexpected), g);
    }
    if (missing[0] || unexpected[0])
        check_verdict_add(v, CHECK_CRIT, "addresses differ from expectAddresses:%s%s%s%s%s",
                          missing[0] ? " missing " : "", missing,
                          missing[0] && unexpected[0] ? ";" : "",
                          unexpected[0] ? " unexpected " : "", unexpected);
}

static hp_rc dns_done(struct run *r, struct probe *p, int g)
{
    const struct dns_check *d = &p->check->u.dns;
    struct check_verdict v = {CHECK_OK, 0, ""};
    struct dns_req *q = p->dns;
    const struct addrinfo *ai;
    json_t *addrs = NULL;
    hp_rc rc;

    p->dns = NULL;
    r->n_dns--;
    rc = put_ms(p, "resolve_ms", elapsed_us(p));
    if (rc)
        goto out;
    if (g == EAI_NONAME || g == EAI_NODATA) {
        check_verdict_add(&v, CHECK_CRIT, "name does not resolve: %s (%s)", d->name,
                          gai_strerror(g));
    } else if (g) {
        check_verdict_add(&v, CHECK_CRIT, "resolving %s failed: %s", d->name, gai_strerror(g));
    } else {
        addrs = json_array();
        if (!addrs) {
            rc = HP_ERR_NOMEM;
            goto out;
        }
        for (ai = q->cb.ar_result; ai; ai = ai->ai_next) {
            char a[INET6_ADDRSTRLEN + 1];
            const void *src = NULL;

            if (ai->ai_family == AF_INET)
                src = &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
            else if (ai->ai_family == AF_INET6)
                src = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
            if (!src || !inet_ntop(ai->ai_family, src, a, sizeof(a)) || array_has(addrs, a))
                continue;
            if (json_array_append_new(addrs, json_string(a))) {
                rc = HP_ERR_NOMEM;
                goto out;
            }
        }
        if (d->expect_addrs && d->expect_addrs[0])
            dns_compare(addrs, d->expect_addrs, &v);
        else if (!json_array_size(addrs)) /* e.g. only records of another family */
            check_verdict_add(&v, CHECK_CRIT, "name resolves to no address");
        rc = put(p, "addresses", addrs);
        addrs = NULL;
        if (rc)
            goto out;
    }
    rc = finish(r, p, &v);
out:
    json_decref(addrs);
    dns_req_free(q);
    return rc;
}

/* dns_poll: judge finished requests; *pending: some are still running. */
static hp_rc dns_poll(struct run *r, bool *pending)
{
    size_t i;
    hp_rc rc;

    *pending = false;
    for (i = 0; r->n_dns && i < r->n; i++) {
        struct probe *p = &r->p[i];
        int g;

        if (p->phase != PH_DNS)
            continue;
        g = gai_error(&p->dns->cb);
        if (g == EAI_INPROGRESS) {
            *pending = true;
            continue;
        }
        rc = dns_done(r, p, g);
        if (rc)
            return rc;
    }
    return HP_OK;
}

/* dns_interval: how long to sleep between gai_error polls: short at first (fast answers
 * get a precise resolve_ms), then up to DNS_POLL_MAX_MS. */
static int dns_interval(const struct run *r)
{
    int64_t ms = (hp_now_ns() - r->start_ns) / 1000000 / 20;

    return ms < 1 ? 1 : ms > DNS_POLL_MAX_MS ? DNS_POLL_MAX_MS : (int)ms;
}

/* ---- the run ---- */

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
                              quote(a ? a : "", q, sizeof(q)));
        else if (c->kind == CHECK_TLS && c->u.tls.server_name &&
                 !probe_host_ok(c->u.tls.server_name))
            check_verdict_add(v, CHECK_CRIT, "invalid address \"%s\"",
                              quote(c->u.tls.server_name, q, sizeof(q)));
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
        return http_start(r, p);
    case CHECK_TCP:
        return tcp_start(r, p);
    case CHECK_TLS:
        return tls_start(r, p);
    default:
        return dns_start(r, p);
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
            rc = dns_poll(r, &dns_pending);
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
        if (dns_pending && dns_interval(r) < timeout)
            timeout = dns_interval(r);
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
            rc = tcp_io(r, p);
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
                (long long)elapsed_ms(p),
                r->held == HELD_BUDGET  ? "the process-wide budget of probes in flight was in use "
                                          "(--max-probes-in-flight)"
                : r->held == HELD_SHARE ? "this namespace's probes in flight used its share "
                                          "(--max-probes-in-flight-per-namespace)"
                                        : "this run's other probes held its sockets "
                                          "(--max-sockets-per-run)");
        else if (p->phase == PH_TCP_RECV)
            check_verdict_add(
                &v, CHECK_CRIT, "expected \"%s\" not received within %lld ms (got %zu bytes)",
                quote(p->check->u.tcp.expect, q, sizeof(q)), (long long)elapsed_ms(p), p->rlen);
        else
            check_verdict_add(&v, CHECK_CRIT, "timed out after %lld ms (%s)",
                              (long long)elapsed_ms(p),
                              p->phase == PH_CURL       ? probe_phase_of(p)
                              : p->phase == PH_TCP_SEND ? "send"
                              : p->phase == PH_DNS      ? "resolve"
                                                        : "start");
        if (p->phase == PH_CURL && resolving_a_name(p)) {
            /* libcurl's resolver thread goes on without us: its units stay taken a while */
            probe_budget_park(r->opts ? r->opts->budget : NULL, r->opts ? r->opts->owner : NULL,
                              p->units, PROBE_BUDGET_RESOLVER_GRACE_MS);
            p->units = 0;
        }
        if (p->phase == PH_CURL)
            rc = put_times(p, p->check->kind == CHECK_HTTP  ? TIMES_HTTP
                              : p->check->kind == CHECK_TLS ? TIMES_TLS
                                                            : TIMES_TCP);
        if (!rc && p->check->kind == CHECK_TCP)
            rc = put_ms(p, "total_ms", elapsed_us(p));
        if (!rc)
            rc = finish(r, p, &v);
    }
    return rc;
}

static void run_release(struct run *r)
{
    size_t i;

    for (i = 0; r->p && i < r->n; i++) {
        struct probe *p = &r->p[i];

        easy_drop(r, p);
        if (p->fd >= 0)
            close(p->fd);
        hp_buf_release(&p->body);
        hp_free(p->rbuf);
        sk_X509_pop_free(p->chain, X509_free);
        if (p->dns)
            dns_abandon(p->dns);
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
    orphans_reap();
    for (i = 0; i < n; i++) {
        const struct probe_item *it = &items[i];

        rc = check_result_init(&out[i], it->check->name, it->target ? it->target->name : "-",
                               it->check->kind);
        if (rc)
            goto out;
    }
    if (!n)
        return HP_OK;
    pthread_once(&tls_once, tls_index_init);
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
        hp_buf_init(&r.p[i].body, BODY_MAX);
    }
    for (i = 0; i < n; i++) {
        struct check_verdict v = {CHECK_OK, 0, ""};

        if (!item_problem(&r.p[i], &v))
            continue;
        rc = finish(&r, &r.p[i], &v);
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
    orphans_reap();
    return rc;
}

hp_rc probe_run(const struct probe_item *items, size_t n, struct hp_ctx *ctx,
                struct check_result *out, struct hp_err *err)
{
    return probe_run_opts(items, n, ctx, NULL, out, err);
}
