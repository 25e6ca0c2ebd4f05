/* test-probe.c - unit tests of controller/inspect/probe.c against loopback servers run by the
 * test itself: plain HTTP (per path: 200, 503, slow, redirect, delayed), a TCP banner server,
 * a PING/PONG server, a closed port, and TLS servers whose certificates are generated here with
 * OpenSSL (a test CA; leaves valid, expired, expiring in 5 days, for the wrong host,
 * self-signed; and a chain whose intermediate expires in 3 days under a 60-day leaf).
 *
 * Test servers run a thread per connection and allocate with plain malloc (never hp_malloc),
 * so the allocation-failure test only fails the prober's own allocations.
 *
 * getaddrinfo_a and gai_error are replaced in this executable (see "a resolver that answers
 * with no address"): one reserved name gets an empty answer, every other goes to glibc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/probe.h"
#include "hostpatrol/safe_regex.h"
#include "value_text.h"

#define DAY (24L * 3600L)

/* ---- servers ---- */

struct server;
typedef void (*conn_fn)(struct server *s, int fd, SSL *ssl);

struct server {
    int fd, port, stop[2];
    pthread_t thread;
    conn_fn handle;
    SSL_CTX *tls; /* NULL: plain TCP */
    atomic_int active, accepted;
};

struct conn_arg {
    struct server *s;
    int fd;
};

/* wait_readable: poll fd and the stop pipe; true if fd (or ssl's buffer) has data. */

/* regex_of: pattern compiled (owned: safe_regex_free), or the test fails */
static struct safe_regex *regex_of(const char *pattern)
{
    struct safe_regex *re = NULL;
    char why[128];

    assert_int_equal(safe_regex_compile(pattern, &re, why, sizeof(why)), HP_OK);
    return re;
}
static bool wait_readable(struct server *s, int fd, SSL *ssl, int ms)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = s->stop[0], .events = POLLIN}};

    if (ssl && SSL_pending(ssl) > 0)
        return true;
    return poll(p, 2, ms) > 0 && !p[1].revents && p[0].revents;
}

static ssize_t conn_read(int fd, SSL *ssl, char *buf, size_t n)
{
    if (ssl) {
        int k = SSL_read(ssl, buf, (int)n);

        return k > 0 ? k : (SSL_get_error(ssl, k) == SSL_ERROR_ZERO_RETURN ? 0 : -1);
    }
    return read(fd, buf, n);
}

static void conn_write(int fd, SSL *ssl, const char *buf, size_t n)
{
    if (ssl) {
        if (SSL_write(ssl, buf, (int)n) <= 0) {
        }
    } else if (write(fd, buf, n) < 0) {
    }
}

/* drain_until_closed: read and discard until the peer closes, the server stops or 10 s. */
static void drain_until_closed(struct server *s, int fd, SSL *ssl)
{
    char buf[512];

    while (wait_readable(s, fd, ssl, 10000) && conn_read(fd, ssl, buf, sizeof(buf)) > 0)
        ;
}

static void *conn_main(void *arg)
{
    struct conn_arg *a = arg;
    struct server *s = a->s;
    struct timeval tv = {.tv_sec = 3};
    SSL *ssl = NULL;
    int fd = a->fd;

    free(a);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (s->tls) {
        ssl = SSL_new(s->tls);
        if (ssl && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1)
            s->handle(s, fd, ssl);
        if (ssl)
            SSL_shutdown(ssl);
        SSL_free(ssl);
    } else {
        s->handle(s, fd, NULL);
    }
    close(fd);
    atomic_fetch_sub(&s->active, 1);
    return NULL;
}

static void *accept_main(void *arg)
{
    struct server *s = arg;

    for (;;) {
        struct pollfd p[2] = {{.fd = s->fd, .events = POLLIN},
                              {.fd = s->stop[0], .events = POLLIN}};
        struct conn_arg *a;
        pthread_attr_t at;
        pthread_t t;
        int c;

        if (poll(p, 2, -1) < 0 || p[1].revents)
            return NULL;
        c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        atomic_fetch_add(&s->accepted, 1);
        a = malloc(sizeof(*a));
        if (!a) {
            close(c);
            continue;
        }
        a->s = s;
        a->fd = c;
        atomic_fetch_add(&s->active, 1);
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, conn_main, a)) {
            atomic_fetch_sub(&s->active, 1);
            close(c);
            free(a);
        }
        pthread_attr_destroy(&at);
    }
}

static int server_start(struct server *s, conn_fn handle, SSL_CTX *tls)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);

    memset(s, 0, sizeof(*s));
    s->handle = handle;
    s->tls = tls;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) || listen(s->fd, 512) ||
        getsockname(s->fd, (struct sockaddr *)&a, &len) || pipe(s->stop))
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->thread, NULL, accept_main, s);
}

static void server_stop(struct server *s)
{
    int i;

    if (write(s->stop[1], "x", 1) < 0) {
    }
    pthread_join(s->thread, NULL);
    for (i = 0; i < 1000 && atomic_load(&s->active) > 0; i++)
        poll(NULL, 0, 10);
    close(s->fd);
    close(s->stop[0]);
    close(s->stop[1]);
    SSL_CTX_free(s->tls);
}

/* http_conn: one request, answered by path. */
static void http_conn(struct server *s, int fd, SSL *ssl)
{
    char req[8192] = "", resp[1024], path[256] = "", away[128];
    const char *status = "404 Not Found", *body = "not found", *extra = "";
    size_t len = 0;
    int n;

    while (len + 1 < sizeof(req) && wait_readable(s, fd, ssl, 3000)) {
        ssize_t k = conn_read(fd, ssl, req + len, sizeof(req) - 1 - len);

        if (k <= 0)
            return;
        len += (size_t)k;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    if (!strstr(req, "\r\n\r\n") || sscanf(req, "%*s %255s", path) != 1)
        return;
    if (!strcmp(path, "/ok")) {
        status = "200 OK";
        body = "hello from hostpatrol test";
    } else if (!strcmp(path, "/503")) {
        status = "503 Service Unavailable";
        body = "unavailable";
    } else if (!strcmp(path, "/redirect")) {
        status = "302 Found";
        body = "";
        extra = "Location: /ok\r\n";
    } else if (!strcmp(path, "/redirect-away")) { /* to another address, same port */
        snprintf(away, sizeof(away), "Location: http://127.0.0.2:%d/ok\r\n", s->port);
        status = "302 Found";
        body = "";
        extra = away;
    } else if (!strcmp(path, "/delay")) {
        poll(NULL, 0, 100);
        status = "200 OK";
        body = "delayed";
    } else if (!strcmp(path, "/slow")) {
        drain_until_closed(s, fd, ssl); /* never answers; ends when the client gives up */
        return;
    }
    n = snprintf(resp, sizeof(resp),
                 "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s", status,
                 strlen(body), extra, body);
    conn_write(fd, ssl, resp, (size_t)n);
}

static void banner_conn(struct server *s, int fd, SSL *ssl)
{
    conn_write(fd, ssl, "SSH-2.0-test\r\n", 14);
    drain_until_closed(s, fd, ssl);
}

static void ping_conn(struct server *s, int fd, SSL *ssl)
{
    char buf[256];
    size_t len = 0;

    while (len + 1 < sizeof(buf) && wait_readable(s, fd, ssl, 3000)) {
        ssize_t k = conn_read(fd, ssl, buf + len, sizeof(buf) - 1 - len);

        if (k <= 0)
            return;
        len += (size_t)k;
        buf[len] = '\0';
        if (strstr(buf, "PING\r\n")) {
            conn_write(fd, ssl, "PONG\r\n", 6);
            break;
        }
    }
    drain_until_closed(s, fd, ssl);
}

static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 1;

    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
        !getsockname(fd, (struct sockaddr *)&a, &len))
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* ---- a resolver that answers with no address ----
 * A request for NOADDR_NAME completes at once, successfully, with an empty list (what a
 * resolver can report for a name with records of other families only); glibc does the rest. */

#define NOADDR_NAME "no-address.hostpatrol.test"

typedef int (*gai_a_fn)(int, struct gaicb *[], int, struct sigevent *);
typedef int (*gai_error_fn)(struct gaicb *);
static gai_a_fn real_getaddrinfo_a; /* set in main, before any test */
static gai_error_fn real_gai_error;

static bool noaddr_req(const struct gaicb *cb)
{
    return cb && cb->ar_name && !strcmp(cb->ar_name, NOADDR_NAME);
}

int getaddrinfo_a(int mode, struct gaicb *list[], int n, struct sigevent *sev)
{
    if (n == 1 && noaddr_req(list[0])) {
        list[0]->ar_result = NULL;
        return 0;
    }
    return real_getaddrinfo_a(mode, list, n, sev);
}

int gai_error(struct gaicb *req)
{
    return noaddr_req(req) ? 0 : real_gai_error(req);
}

/* ---- certificates ---- */

static long serial_no = 1;

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&v, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v, nid, value);
    if (!ext)
        return 0;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* cert_new: a certificate for cn valid from now+from_s to now+to_s, signed by issuer (NULL:
 * self-signed). san: subjectAltName value or NULL. */
static X509 *cert_new(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                      long from_s, long to_s, bool ca, const char *san)
{
    X509 *x = X509_new();
    X509_NAME *nm = X509_NAME_new();

    assert_non_null(x);
    assert_non_null(nm);
    assert_int_equal(X509_set_version(x, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial_no++);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), from_s));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), to_s));
    assert_int_equal(X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC,
                                                (const unsigned char *)"hostpatrol", -1, -1, 0),
                     1);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_subject_name(x, nm), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : nm), 1);
    X509_NAME_free(nm);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    assert_int_equal(add_ext(x, issuer ? issuer : x, NID_basic_constraints,
                             ca ? "critical,CA:TRUE" : "CA:FALSE"),
                     1);
    if (ca)
        assert_int_equal(
            add_ext(x, issuer ? issuer : x, NID_key_usage, "critical,keyCertSign,cRLSign"), 1);
    if (san)
        assert_int_equal(add_ext(x, issuer ? issuer : x, NID_subject_alt_name, san), 1);
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static SSL_CTX *tls_ctx(X509 *leaf, EVP_PKEY *key, X509 *intermediate)
{
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());

    assert_non_null(c);
    assert_int_equal(SSL_CTX_use_certificate(c, leaf), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(c, key), 1);
    if (intermediate)
        assert_int_equal(SSL_CTX_add1_chain_cert(c, intermediate), 1);
    return c;
}

enum tls_kind {
    TLS_GOOD,
    TLS_EXPIRED,
    TLS_SOON,
    TLS_WRONG_HOST,
    TLS_SELF_SIGNED,
    TLS_CHAIN,
    TLS_N
};

static struct server http_srv, banner_srv, ping_srv, tls_srv[TLS_N];
static char ca_file[64] = "";

#define LOCAL_SAN "DNS:localhost,IP:127.0.0.1"

static int start_servers(void **state)
{
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256");
    EVP_PKEY *im_key = EVP_EC_gen("P-256");
    X509 *ca, *im, *leaf[TLS_N];
    FILE *f;
    int fd, i;

    (void)state;
    assert_non_null(ca_key);
    assert_non_null(key);
    assert_non_null(im_key);
    ca = cert_new("hostpatrol test CA", ca_key, NULL, NULL, -DAY, 3650 * DAY, true, NULL);
    im = cert_new("hostpatrol test intermediate", im_key, ca, ca_key, -DAY, 3 * DAY, true, NULL);
    leaf[TLS_GOOD] = cert_new("localhost", key, ca, ca_key, -DAY, 30 * DAY, false, LOCAL_SAN);
    leaf[TLS_EXPIRED] = cert_new("localhost", key, ca, ca_key, -10 * DAY, -DAY, false, LOCAL_SAN);
    leaf[TLS_SOON] = cert_new("localhost", key, ca, ca_key, -DAY, 5 * DAY, false, LOCAL_SAN);
    leaf[TLS_WRONG_HOST] =
        cert_new("other.example", key, ca, ca_key, -DAY, 30 * DAY, false, "DNS:other.example");
    leaf[TLS_SELF_SIGNED] =
        cert_new("localhost", key, NULL, NULL, -DAY, 30 * DAY, false, LOCAL_SAN);
    leaf[TLS_CHAIN] = cert_new("localhost", key, im, im_key, -DAY, 60 * DAY, false, LOCAL_SAN);

    snprintf(ca_file, sizeof(ca_file), "/tmp/hp-test-probe-ca-XXXXXX");
    fd = mkstemp(ca_file);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, ca), 1);
    fclose(f);

    assert_int_equal(server_start(&http_srv, http_conn, NULL), 0);
    assert_int_equal(server_start(&banner_srv, banner_conn, NULL), 0);
    assert_int_equal(server_start(&ping_srv, ping_conn, NULL), 0);
    for (i = 0; i < TLS_N; i++) {
        SSL_CTX *c = tls_ctx(leaf[i], key, i == TLS_CHAIN ? im : NULL);

        assert_int_equal(server_start(&tls_srv[i], http_conn, c), 0);
        X509_free(leaf[i]);
    }
    X509_free(ca);
    X509_free(im);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    EVP_PKEY_free(im_key);
    return 0;
}

static int stop_servers(void **state)
{
    int i;

    (void)state;
    server_stop(&http_srv);
    server_stop(&banner_srv);
    server_stop(&ping_srv);
    for (i = 0; i < TLS_N; i++)
        server_stop(&tls_srv[i]);
    unlink(ca_file);
    return 0;
}

/* ---- helpers ---- */

static struct check_spec spec(enum check_kind kind, const char *name)
{
    struct check_spec c;

    memset(&c, 0, sizeof(c));
    c.name = (char *)name;
    c.kind = kind;
    c.tls_min_days_left = -1;
    return c;
}

static struct target_spec local_target = {.name = (char *)"local", .address = (char *)"127.0.0.1"};

static hp_rc run_n(const struct probe_item *items, size_t n, int64_t timeout_ms, bool use_ca,
                   struct check_result *out)
{
    struct probe_options o = {.ca_file = use_ca ? ca_file : NULL};
    struct hp_err err = {0};
    struct hp_ctx *ctx;
    hp_rc rc;

    assert_int_equal(hp_ctx_new(NULL, timeout_ms, &ctx), HP_OK);
    rc = probe_run_opts(items, n, ctx, &o, out, &err);
    hp_ctx_free(ctx);
    return rc;
}

/* run1: one probe with a 5 s deadline; the result is the caller's to release. */
static void run1(const struct check_spec *c, const struct target_spec *t, bool use_ca,
                 struct check_result *out)
{
    struct probe_item it = {.check = c, .target = t};

    assert_int_equal(run_n(&it, 1, 5000, use_ca, out), HP_OK);
}

static void contains(const char *s, const char *sub)
{
    if (!s || !strstr(s, sub))
        fail_msg("\"%s\" does not contain \"%s\"", s ? s : "(null)", sub);
}

static double num(const struct check_result *r, const char *key)
{
    json_t *v = json_object_get(r->values, key);

    if (!json_is_number(v))
        fail_msg("values.%s missing or not a number", key);
    return json_number_value(v);
}

static void status_is(const struct check_result *r, enum check_status s)
{
    if (r->status != s)
        fail_msg("status %s, expected %s (reason: %s)", check_status_name(r->status),
                 check_status_name(s), r->reason);
}

/* to_json_ok: r can be stored (check_result_to_json refuses text that is not UTF-8). */
static void to_json_ok(const struct check_result *r)
{
    json_t *j = check_result_to_json(r, "controller", "run-1");

    if (!j)
        fail_msg("check_result_to_json failed; reason: %s", r->reason);
    json_decref(j);
}

static char url_buf[8][128];

static char *url(int slot, const char *scheme, const char *host, int port, const char *path)
{
    snprintf(url_buf[slot], sizeof(url_buf[slot]), "%s://%s:%d%s", scheme, host, port, path);
    return url_buf[slot];
}

/* ---- http ---- */

static void http_200_is_ok_with_values(void **state)
{
    struct check_spec c = spec(CHECK_HTTP, "web");
    struct check_result r;

    (void)state;
    c.u.http.url = url(0, "http", "127.0.0.1", http_srv.port, "/ok");
    c.u.http.body_regex = regex_of("hello.*test");
    c.u.http.has_body_regex = true;
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_OK);
    assert_string_equal(r.reason, "");
    assert_string_equal(r.check, "web");
    assert_string_equal(r.target, "-");
    assert_int_equal(r.kind, CHECK_HTTP);
    assert_int_equal((int)num(&r, "status_code"), 200);
    assert_true(num(&r, "dns_ms") >= 0);
    assert_true(num(&r, "connect_ms") >= 0);
    assert_true(num(&r, "tls_ms") == 0);
    assert_true(num(&r, "first_byte_ms") >= 0);
    assert_true(num(&r, "total_ms") > 0);
    assert_true(num(&r, "total_ms") >= num(&r, "first_byte_ms"));
    assert_null(json_object_get(r.values, "tls_leaf_days_left"));
    assert_true(r.observed_ms > 1600000000000LL);
    assert_true(r.duration_ms >= 0 && r.duration_ms < 5000);
    check_result_release(&r);
    safe_regex_free(c.u.http.body_regex);
}

/* as stored: durations in ms to the microsecond (at most 3 decimals), the status an integer */
static void http_values_print_at_their_precision(void **state)
{
    static const char *const ms[] = {"dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "total_ms"};
    struct check_spec c = spec(CHECK_HTTP, "web");
    struct check_result r;
    char buf[64];
    size_t i;

    (void)state;
    c.u.http.url = url(0, "http", "127.0.0.1", http_srv.port, "/ok");
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_OK);
    assert_string_equal(value_text(&r, "status_code", buf, sizeof(buf)), "200");
    assert_string_equal(value_text(&r, "tls_ms", buf, sizeof(buf)), "0.0");
    for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
        assert_value_digits(&r, ms[i], 3);
    check_result_release(&r);
}

static void http_503_is_crit(void **state)
{
    struct check_spec c = spec(CHECK_HTTP, "web");
    struct check_result r;

    (void)state;
    c.u.http.url = url(0, "http", "127.0.0.1", http_srv.port, "/503");
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "status 503");
    assert_int_equal((int)num(&r, "status_code"), 503);
    check_result_release(&r);
}

static void http_expect_status_and_redirects(void **state)
{
    struct check_spec c = spec(CHECK_HTTP, "web");
    long want[] = {200, 204};
    struct check_result r;

    (void)state;
    c.u.http.url = url(0, "http", "127.0.0.1", http_srv.port, "/redirect");
    run1(&c, NULL, false, &r); /* 3xx is fine by default */
    status_is(&r, CHECK_OK);
    assert_int_equal((int)num(&r, "status_code"), 302);
    check_result_release(&r);

    c.u.http.expect_status = want;
    c.u.http.n_expect_status = 2;
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "status 302, expected 200 or 204");
    check_result_release(&r);

    c.u.http.follow_redirects = true;
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_OK);
    assert_int_equal((int)num(&r, "status_code"), 200);
    check_result_release(&r);
}

static void http_body_regex_mismatch_is_crit(void **state)
{
    struct check_spec c = spec(CHECK_HTTP, "web");
    struct check_result r;

    (void)state;
    c.u.http.url = url(0, "http", "127.0.0.1", http_srv.port, "/ok");
    c.u.http.method = (char *)"GET";
    c.u.http.body_regex = regex_of("^status: green$");
    c.u.http.has_body_regex = true;
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "body does not match bodyRegex");
    check_result_release(&r);
    safe_regex_free(c.u.http.body_regex);
}

static void http_headers_and_head_method(void **state)
{
    struct check_spec c = spec(CHECK_HTTP, "web");
    char *headers[] = {(char *)"X-Probe: 1", (char *)"Accept: text/plain", NULL};
    struct check_result r;

    (void)state;
    c.u.http.url = url(0, "http", "127.0.0.1", http_srv.port, "/ok");
    c.u.http.headers = headers;
    c.u.http.method = (char *)"HEAD";
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_OK);
    assert_int_equal((int)num(&r, "status_code"), 200);
    check_result_release(&r);
}

static void http_connect_refused_is_crit(void **state)
{
    struct check_spec c = spec(CHECK_HTTP, "web");
    struct check_result r;

    (void)state;
    c.u.http.url = url(0, "http", "127.0.0.1", closed_port(), "/");
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "Connection refused");
    assert_null(json_object_get(r.values, "status_code"));
    check_result_release(&r);
}

static void http_deadline_bounds_a_slow_server(void **state)
{
    struct check_spec c = spec(CHECK_HTTP, "web");
    struct probe_item it = {.check = &c};
    struct check_result r;
    int64_t t0, ms;

    (void)state;
    c.u.http.url = url(0, "http", "127.0.0.1", http_srv.port, "/slow");
    t0 = hp_now_ns();
    assert_int_equal(run_n(&it, 1, 300, false, &r), HP_OK);
    ms = (hp_now_ns() - t0) / 1000000;
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "timed out after");
    contains(r.reason, "(waiting for response)");
    assert_true(ms >= 290);
    if (ms > 500)
        fail_msg("probe_run returned after %lld ms, deadline 300 ms", (long long)ms);
    assert_true(r.duration_ms >= 290 && r.duration_ms <= 500);
    check_result_release(&r);
}

struct canceller {
    struct hp_ctx *ctx;
    int after_ms;
};

static void *cancel_later(void *arg)
{
    struct canceller *c = arg;

    poll(NULL, 0, c->after_ms);
    hp_ctx_cancel(c->ctx);
    return NULL;
}

static void cancel_ends_every_probe(void **state)
{
    struct check_spec h = spec(CHECK_HTTP, "web"), t = spec(CHECK_TCP, "ssh");
    struct probe_item items[2] = {{.check = &h}, {.check = &t, .target = &local_target}};
    struct canceller cc = {.after_ms = 200};
    struct check_result r[2];
    struct hp_err err = {0};
    pthread_t th;
    int64_t t0, ms;

    (void)state;
    h.u.http.url = url(0, "http", "127.0.0.1", http_srv.port, "/slow");
    t.u.tcp.port = banner_srv.port;
    t.u.tcp.expect = (char *)"never sent";
    assert_int_equal(hp_ctx_new(NULL, 10000, &cc.ctx), HP_OK);
    assert_int_equal(pthread_create(&th, NULL, cancel_later, &cc), 0);
    t0 = hp_now_ns();
    assert_int_equal(probe_run(items, 2, cc.ctx, r, &err), HP_OK);
    ms = (hp_now_ns() - t0) / 1000000;
    pthread_join(th, NULL);
    hp_ctx_free(cc.ctx);
    if (ms > 1500)
        fail_msg("cancel took %lld ms to end the run", (long long)ms);
    status_is(&r[0], CHECK_UNKNOWN);
    contains(r[0].reason, "cancelled");
    status_is(&r[1], CHECK_UNKNOWN);
    contains(r[1].reason, "cancelled");
    check_result_release(&r[0]);
    check_result_release(&r[1]);
}

static void many_probes_run_concurrently(void **state)
{
    enum { N = 200 };
    struct check_spec c = spec(CHECK_HTTP, "web");
    struct probe_item items[N];
    struct check_result *r = calloc(N, sizeof(*r));
    int before = atomic_load(&http_srv.accepted), i, ok = 0;

    (void)state;
    assert_non_null(r);
    /* each answer takes 100 ms: one after the other, 200 would need 20 s, the deadline is 5 s */
    c.u.http.url = url(0, "http", "127.0.0.1", http_srv.port, "/delay");
    for (i = 0; i < N; i++)
        items[i] = (struct probe_item){.check = &c};
    assert_int_equal(run_n(items, N, 5000, false, r), HP_OK);
    for (i = 0; i < N; i++) {
        ok += r[i].status == CHECK_OK;
        if (r[i].status != CHECK_OK)
            print_message("probe %d: %s %s\n", i, check_status_name(r[i].status), r[i].reason);
        check_result_release(&r[i]);
    }
    assert_int_equal(ok, N);
    assert_int_equal(atomic_load(&http_srv.accepted) - before, N); /* a connection each */
    free(r);
}

/* ---- tcp ---- */

static void tcp_closed_port_is_refused(void **state)
{
    struct check_spec c = spec(CHECK_TCP, "db");
    struct check_result r;
    char want[64];

    (void)state;
    c.u.tcp.port = closed_port();
    run1(&c, &local_target, false, &r);
    status_is(&r, CHECK_CRIT);
    snprintf(want, sizeof(want), "connect to 127.0.0.1:%d: Connection refused", c.u.tcp.port);
    contains(r.reason, want);
    assert_string_equal(r.target, "local");
    check_result_release(&r);
}

static void tcp_connect_and_expect_banner(void **state)
{
    struct check_spec c = spec(CHECK_TCP, "ssh");
    struct check_result r;

    (void)state;
    c.u.tcp.port = banner_srv.port;
    run1(&c, &local_target, false, &r); /* connect only */
    status_is(&r, CHECK_OK);
    assert_true(num(&r, "connect_ms") >= 0);
    assert_true(num(&r, "total_ms") >= num(&r, "connect_ms"));
    check_result_release(&r);

    c.u.tcp.expect = (char *)"SSH-";
    run1(&c, &local_target, false, &r);
    status_is(&r, CHECK_OK);
    assert_true(num(&r, "total_ms") >= 0);
    check_result_release(&r);
}

static void tcp_values_print_at_their_precision(void **state)
{
    struct check_spec c = spec(CHECK_TCP, "ssh");
    struct check_result r;

    (void)state;
    c.u.tcp.port = banner_srv.port;
    c.u.tcp.expect = (char *)"SSH-";
    run1(&c, &local_target, false, &r);
    status_is(&r, CHECK_OK);
    assert_value_digits(&r, "dns_ms", 3);
    assert_value_digits(&r, "connect_ms", 3);
    assert_value_digits(&r, "total_ms", 3);
    check_result_release(&r);
}

static void tcp_send_then_expect(void **state)
{
    struct check_spec c = spec(CHECK_TCP, "pinger");
    struct check_result r;

    (void)state;
    c.u.tcp.port = ping_srv.port;
    c.u.tcp.send = (char *)"PING\r\n";
    c.u.tcp.expect = (char *)"PONG";
    run1(&c, &local_target, false, &r);
    status_is(&r, CHECK_OK);
    check_result_release(&r);
}

static void tcp_expect_mismatch_is_crit(void **state)
{
    struct check_spec c = spec(CHECK_TCP, "ssh");
    struct probe_item it = {.check = &c, .target = &local_target};
    struct check_result r;

    (void)state;
    c.u.tcp.port = banner_srv.port;
    c.u.tcp.expect = (char *)"HELLO\r\n";
    assert_int_equal(run_n(&it, 1, 400, false, &r), HP_OK);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "expected \"HELLO\\r\\n\" not received within");
    contains(r.reason, "(got 14 bytes)");
    check_result_release(&r);
}

/* ---- tls ---- */

static void tls_probe(enum tls_kind k, const char *server_name, int min_days, bool use_ca,
                      struct check_result *r)
{
    struct check_spec c = spec(CHECK_TLS, "cert");

    c.u.tls.port = tls_srv[k].port;
    c.u.tls.server_name = (char *)server_name;
    c.tls_min_days_left = min_days;
    run1(&c, &local_target, use_ca, r);
}

static void tls_valid_certificate_is_ok(void **state)
{
    struct check_result r;
    json_t *sans;

    (void)state;
    tls_probe(TLS_GOOD, "localhost", 14, true, &r);
    status_is(&r, CHECK_OK);
    assert_true(num(&r, "tls_leaf_days_left") > 29.9 && num(&r, "tls_leaf_days_left") <= 30);
    assert_true(num(&r, "tls_chain_min_days_left") == num(&r, "tls_leaf_days_left"));
    assert_true(num(&r, "tls_ms") >= 0);
    assert_non_null(json_string_value(json_object_get(r.values, "tls_version")));
    contains(json_string_value(json_object_get(r.values, "tls_version")), "TLSv1.");
    contains(json_string_value(json_object_get(r.values, "subject")), "CN=localhost");
    contains(json_string_value(json_object_get(r.values, "issuer")), "CN=hostpatrol test CA");
    sans = json_object_get(r.values, "sans");
    assert_int_equal(json_array_size(sans), 2);
    assert_string_equal(json_string_value(json_array_get(sans, 0)), "localhost");
    assert_string_equal(json_string_value(json_array_get(sans, 1)), "127.0.0.1");
    check_result_release(&r);

    tls_probe(TLS_GOOD, NULL, -1, true, &r); /* the address is the name: the IP SAN matches */
    status_is(&r, CHECK_OK);
    check_result_release(&r);
}

static void tls_expired_is_crit(void **state)
{
    struct check_result r;

    (void)state;
    tls_probe(TLS_EXPIRED, "localhost", -1, true, &r);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "certificate verify failed: certificate has expired");
    assert_true(num(&r, "tls_leaf_days_left") < 0);
    check_result_release(&r);
}

static void tls_expiring_leaf_warns(void **state)
{
    struct check_result r;
    double d;

    (void)state;
    tls_probe(TLS_SOON, "localhost", 14, true, &r);
    status_is(&r, CHECK_WARN);
    d = num(&r, "tls_leaf_days_left");
    assert_true(d >= 4 && d <= 5);
    contains(r.reason, "TLS leaf certificate expires in 4 days (minimum 14)");
    check_result_release(&r);

    tls_probe(TLS_SOON, "localhost", 3, true, &r); /* 5 days left, minimum 3: fine */
    status_is(&r, CHECK_OK);
    check_result_release(&r);
}

static void tls_expiring_intermediate_warns_apart(void **state)
{
    struct check_result r;
    double leaf, chain;

    (void)state;
    tls_probe(TLS_CHAIN, "localhost", 14, true, &r);
    status_is(&r, CHECK_WARN);
    leaf = num(&r, "tls_leaf_days_left");
    chain = num(&r, "tls_chain_min_days_left");
    assert_true(leaf >= 59 && leaf <= 60);
    assert_true(chain >= 2 && chain <= 3);
    contains(r.reason, "TLS chain certificate CN=hostpatrol test intermediate,O=hostpatrol "
                       "expires in 2 days (minimum 14)");
    assert_null(strstr(r.reason, "leaf"));
    check_result_release(&r);
}

/* days left: 0.01 day, rounded down. The certificates were made when the servers started,
 * seconds ago: 30 days -> 29.99 (30.0 within the same second), expired a day ago -> -1.01. */
static void tls_values_print_at_their_precision(void **state)
{
    static const char *const ms[] = {"dns_ms", "connect_ms", "tls_ms", "total_ms"};
    struct check_result r;
    const char *t;
    char buf[64];
    size_t i;

    (void)state;
    tls_probe(TLS_GOOD, "localhost", 14, true, &r);
    status_is(&r, CHECK_OK);
    t = value_text(&r, "tls_leaf_days_left", buf, sizeof(buf));
    if (strcmp(t, "29.99") && strcmp(t, "30.0"))
        fail_msg("tls_leaf_days_left of a 30-day certificate is %s", t);
    for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
        assert_value_digits(&r, ms[i], 3);
    check_result_release(&r);

    tls_probe(TLS_CHAIN, "localhost", 14, true, &r);
    t = value_text(&r, "tls_chain_min_days_left", buf, sizeof(buf));
    if (strcmp(t, "2.99") && strcmp(t, "3.0"))
        fail_msg("tls_chain_min_days_left of a 3-day intermediate is %s", t);
    t = value_text(&r, "tls_leaf_days_left", buf, sizeof(buf));
    if (strcmp(t, "59.99") && strcmp(t, "60.0"))
        fail_msg("tls_leaf_days_left of a 60-day certificate is %s", t);
    check_result_release(&r);

    tls_probe(TLS_EXPIRED, "localhost", -1, true, &r);
    t = value_text(&r, "tls_leaf_days_left", buf, sizeof(buf));
    if (strcmp(t, "-1.01") && strcmp(t, "-1.0"))
        fail_msg("tls_leaf_days_left of a certificate expired a day ago is %s", t);
    check_result_release(&r);
}

static void tls_wrong_host_is_crit(void **state)
{
    struct check_result r;

    (void)state;
    tls_probe(TLS_WRONG_HOST, "localhost", -1, true, &r);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "certificate does not match host name localhost");
    assert_null(strstr(r.reason, "verify failed"));
    check_result_release(&r);
}

static void tls_untrusted_is_crit_and_still_read(void **state)
{
    struct check_result r;

    (void)state;
    tls_probe(TLS_SELF_SIGNED, "localhost", 14, true, &r);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "certificate verify failed: self");
    assert_true(num(&r, "tls_leaf_days_left") > 29);
    check_result_release(&r);

    tls_probe(TLS_GOOD, "localhost", -1, false, &r); /* the system bundle knows no test CA */
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "certificate verify failed");
    assert_true(num(&r, "tls_leaf_days_left") > 29);
    check_result_release(&r);
}

static void tls_refused_is_crit(void **state)
{
    struct check_spec c = spec(CHECK_TLS, "cert");
    struct check_result r;

    (void)state;
    c.u.tls.port = closed_port();
    run1(&c, &local_target, false, &r);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "Connection refused");
    check_result_release(&r);
}

static void tls_server_name_forms(void **state)
{
    struct check_result r;

    (void)state;
    tls_probe(TLS_GOOD, "localhost.", 14, true, &r); /* fully qualified: the same name */
    status_is(&r, CHECK_OK);
    check_result_release(&r);

    /* an IPv6 literal as serverName: bracketed in the CONNECT_TO entry, so the connection
     * still goes to the target's address (the certificate is read), and the name is checked */
    tls_probe(TLS_GOOD, "::1", -1, true, &r);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "certificate does not match host name ::1");
    assert_true(num(&r, "tls_leaf_days_left") > 29);
    check_result_release(&r);
}

/* A CA file that cannot be loaded is our fault: UNKNOWN, the chain not judged against an empty
 * store (which would fail every endpoint), the certificate still read. */
static void unloadable_ca_file_is_unknown(void **state)
{
    struct check_spec t = spec(CHECK_TLS, "cert"), h = spec(CHECK_HTTP, "site");
    struct probe_item items[2] = {{.check = &t, .target = &local_target}, {.check = &h}};
    struct probe_options o = {.ca_file = "/nonexistent/hostpatrol-ca.pem"};
    struct check_result r[2];
    struct hp_err err = {0};
    struct hp_ctx *ctx;

    (void)state;
    t.u.tls.port = tls_srv[TLS_SELF_SIGNED].port;
    t.u.tls.server_name = (char *)"localhost";
    t.tls_min_days_left = 14;
    h.u.http.url = url(1, "https", "localhost", tls_srv[TLS_GOOD].port, "/ok");
    assert_int_equal(hp_ctx_new(NULL, 5000, &ctx), HP_OK);
    assert_int_equal(probe_run_opts(items, 2, ctx, &o, r, &err), HP_OK);
    hp_ctx_free(ctx);
    status_is(&r[0], CHECK_UNKNOWN);
    assert_string_equal(r[0].reason,
                        "cannot load the CA certificates (/nonexistent/hostpatrol-ca.pem)");
    assert_true(num(&r[0], "tls_leaf_days_left") > 29);
    contains(json_string_value(json_object_get(r[0].values, "subject")), "CN=localhost");
    status_is(&r[1], CHECK_UNKNOWN);
    contains(r[1].reason, "cannot load the CA certificates");
    check_result_release(&r[0]);
    check_result_release(&r[1]);
}

/* ---- https ---- */

static void https_probe(enum tls_kind k, int min_days, bool use_ca, struct check_result *r)
{
    struct check_spec c = spec(CHECK_HTTP, "site");

    c.u.http.url = url(1, "https", "localhost", tls_srv[k].port, "/ok");
    c.tls_min_days_left = min_days;
    run1(&c, NULL, use_ca, r);
}

static void https_verification_failure_is_crit(void **state)
{
    struct check_result r;

    (void)state;
    https_probe(TLS_SELF_SIGNED, 14, false, &r);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "TLS verification failed");
    contains(r.reason, "self");
    check_result_release(&r);

    https_probe(TLS_WRONG_HOST, 14, true, &r);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "TLS verification failed");
    check_result_release(&r);
}

static void https_days_left_are_judged(void **state)
{
    struct check_result r;

    (void)state;
    https_probe(TLS_GOOD, 14, true, &r);
    status_is(&r, CHECK_OK);
    assert_int_equal((int)num(&r, "status_code"), 200);
    assert_true(num(&r, "tls_ms") > 0);
    assert_true(num(&r, "tls_leaf_days_left") > 29.9);
    check_result_release(&r);

    https_probe(TLS_SOON, 14, true, &r);
    status_is(&r, CHECK_WARN);
    contains(r.reason, "TLS leaf certificate expires in 4 days (minimum 14)");
    check_result_release(&r);

    https_probe(TLS_CHAIN, 14, true, &r);
    status_is(&r, CHECK_WARN);
    contains(r.reason, "CN=hostpatrol test intermediate");
    assert_true(num(&r, "tls_chain_min_days_left") < 3);
    assert_true(num(&r, "tls_leaf_days_left") > 59);
    check_result_release(&r);
}

/* ---- dns ---- */

static void dns_localhost_resolves(void **state)
{
    struct check_spec c = spec(CHECK_DNS, "lh");
    struct check_result r;
    json_t *a;
    size_t i;
    bool found = false;

    (void)state;
    c.u.dns.name = (char *)"localhost";
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_OK);
    a = json_object_get(r.values, "addresses");
    for (i = 0; i < json_array_size(a); i++)
        found = found || !strcmp(json_string_value(json_array_get(a, i)), "127.0.0.1");
    assert_true(found);
    assert_true(num(&r, "resolve_ms") >= 0);
    check_result_release(&r);
}

static void dns_values_print_at_their_precision(void **state)
{
    struct check_spec c = spec(CHECK_DNS, "lh");
    struct check_result r;

    (void)state;
    c.u.dns.name = (char *)"localhost";
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_OK);
    assert_value_digits(&r, "resolve_ms", 3);
    check_result_release(&r);
}

static void dns_unknown_name_is_crit(void **state)
{
    struct check_spec c = spec(CHECK_DNS, "nx");
    struct check_result r;

    (void)state;
    c.u.dns.name = (char *)"does-not-exist.invalid";
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_CRIT);
    if (!strstr(r.reason, "does not resolve") && !strstr(r.reason, "resolving"))
        fail_msg("unexpected reason: %s", r.reason);
    contains(r.reason, "does-not-exist.invalid");
    check_result_release(&r);
}

static void dns_expected_addresses(void **state)
{
    struct check_spec c = spec(CHECK_DNS, "lh");
    char *want_ok[] = {(char *)"127.0.0.1", NULL};
    char *want_bad[] = {(char *)"10.9.9.9", NULL};
    struct check_result r;
    bool only_v4;

    (void)state;
    c.u.dns.name = (char *)"localhost";
    run1(&c, NULL, false, &r);
    only_v4 = json_array_size(json_object_get(r.values, "addresses")) == 1;
    check_result_release(&r);
    if (only_v4) { /* where localhost is 127.0.0.1 alone (no ::1 in /etc/hosts) */
        c.u.dns.expect_addrs = want_ok;
        run1(&c, NULL, false, &r);
        status_is(&r, CHECK_OK);
        check_result_release(&r);
    }
    c.u.dns.expect_addrs = want_bad;
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "missing 10.9.9.9");
    contains(r.reason, "unexpected 127.0.0.1");
    check_result_release(&r);
}

static void dns_no_address_is_crit(void **state)
{
    struct check_spec c = spec(CHECK_DNS, "empty");
    char *none[] = {NULL};
    struct check_result r;

    (void)state;
    c.u.dns.name = (char *)NOADDR_NAME;
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_CRIT);
    assert_string_equal(r.reason, "name resolves to no address");
    assert_int_equal(json_array_size(json_object_get(r.values, "addresses")), 0);
    check_result_release(&r);

    c.u.dns.expect_addrs = none; /* an empty expectation is no expectation */
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_CRIT);
    assert_string_equal(r.reason, "name resolves to no address");
    check_result_release(&r);
}

/* Reasons cut by byte count (the 1 KiB reason, the 400-byte address lists) are cut between
 * characters, and bytes that are not UTF-8 are escaped: the result can always be stored. */
static void non_ascii_reasons_stay_valid_json(void **state)
{
    struct check_spec c = spec(CHECK_DNS, "idn");
    char name[1300], expect[700];
    char *want[] = {expect, NULL};
    struct check_result r;
    size_t o;
    int k, i;

    (void)state;
    /* "name does not resolve: <name> (...)", cut at 1 KiB: with 0 or 1 byte before the
     * 2-byte characters, one of the two cuts falls inside a character */
    for (k = 0; k < 2; k++) {
        o = 0;
        if (k)
            name[o++] = 'x';
        for (i = 0; i < 600; i++) {
            name[o++] = (char)0xC3;
            name[o++] = (char)0xA9;
        }
        name[o] = '\0';
        c.u.dns.name = name;
        run1(&c, NULL, false, &r);
        status_is(&r, CHECK_CRIT);
        assert_true(strlen(r.reason) >= 1000); /* it was cut */
        assert_null(strstr(r.reason, "\\x"));  /* ... between characters */
        to_json_ok(&r);
        check_result_release(&r);
    }

    /* the "missing" list is cut at 400 bytes inside the reason, "unexpected" follows */
    for (o = 0, i = 0; i < 300; i++) {
        expect[o++] = (char)0xC3;
        expect[o++] = (char)0xA9;
    }
    expect[o] = '\0';
    c.u.dns.name = (char *)"localhost";
    c.u.dns.expect_addrs = want;
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "missing \xC3\xA9");
    contains(r.reason, "; unexpected 127.0.0.1");
    assert_null(strstr(r.reason, "\\x"));
    to_json_ok(&r);
    check_result_release(&r);

    /* bytes that are not UTF-8 at all, in the middle of a reason: escaped */
    c.u.dns.expect_addrs = NULL;
    c.u.dns.name = (char *)"bad\xFF\xFEname.invalid";
    run1(&c, NULL, false, &r);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "bad\\xff\\xfename.invalid");
    to_json_ok(&r);
    check_result_release(&r);
}

static void dns_short_deadline_is_clean(void **state)
{
    struct check_spec c = spec(CHECK_DNS, "lh");
    struct probe_item it = {.check = &c};
    struct check_result r;
    int i;

    (void)state;
    c.u.dns.name = (char *)"localhost";
    for (i = 0; i < 20; i++) { /* abandons requests at every stage; leaks would show */
        assert_int_equal(run_n(&it, 1, i % 3, false, &r), HP_OK);
        assert_true(r.status == CHECK_OK || r.status == CHECK_CRIT);
        if (r.status == CHECK_CRIT)
            contains(r.reason, "timed out after");
        check_result_release(&r);
    }
}

/* ---- the run ---- */

static void expired_deadline_probes_nothing(void **state)
{
    struct check_spec c = spec(CHECK_HTTP, "web");
    struct probe_item it = {.check = &c};
    int before = atomic_load(&http_srv.accepted);
    struct check_result r;

    (void)state;
    c.u.http.url = url(0, "http", "127.0.0.1", http_srv.port, "/ok");
    assert_int_equal(run_n(&it, 1, 0, false, &r), HP_OK);
    status_is(&r, CHECK_CRIT);
    contains(r.reason, "timed out after");
    poll(NULL, 0, 50);
    assert_int_equal(atomic_load(&http_srv.accepted), before);
    check_result_release(&r);
}

static void non_endpoint_item_is_invalid(void **state)
{
    struct check_spec h = spec(CHECK_HTTP, "web"), d = spec(CHECK_DISK, "disk");
    struct check_spec t = spec(CHECK_TCP, "db");
    struct probe_item items[2] = {{.check = &h}, {.check = &d}};
    struct probe_item no_target = {.check = &t};
    struct check_result r[2];
    struct hp_err err = {0};

    (void)state;
    h.u.http.url = url(0, "http", "127.0.0.1", http_srv.port, "/ok");
    assert_int_equal(probe_run(items, 2, NULL, r, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "items[1]");
    contains(err.msg, "disk");
    check_result_release(&r[0]);
    check_result_release(&r[1]);

    memset(&err, 0, sizeof(err));
    t.u.tcp.port = 22;
    assert_int_equal(probe_run(&no_target, 1, NULL, r, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "items[0]");
    contains(err.msg, "without a target");
    check_result_release(&r[0]);

    memset(&err, 0, sizeof(err));
    items[1].check = NULL;
    assert_int_equal(probe_run(items, 2, NULL, r, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "items[1]");
    check_result_release(&r[0]);
    check_result_release(&r[1]);

    assert_int_equal(probe_run(NULL, 0, NULL, NULL, &err), HP_OK);
}

static void host_syntax(void **state)
{
    static const char *good[] = {
        "localhost", "db.example.com", "db.example.com.", "my_host-1.svc", "10.0.0.1",
        "::1",       "2001:db8::5",    "::ffff:10.0.0.1", "1password.io",  "x.y1"};
    static const char *bad[] = {"",
                                ".",
                                "a..b",
                                ".a",
                                "a b",
                                "a/b",
                                "[::1]",
                                "fe80::1%eth0",
                                "10.0.0.1:80",
                                "host:443",
                                "1.2.3",
                                "300.1.1.1",
                                "010.0.0.1",
                                "d\xC3\xA9.example",
                                "http://x",
                                "a\"b",
                                "a\nb"};
    char name[300];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!probe_host_ok(good[i]))
            fail_msg("probe_host_ok(\"%s\") is false", good[i]);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (probe_host_ok(bad[i]))
            fail_msg("probe_host_ok(\"%s\") is true", bad[i]);
    assert_false(probe_host_ok(NULL));

    memset(name, 'a', 64); /* a label of 64 bytes */
    name[64] = '\0';
    assert_false(probe_host_ok(name));
    name[63] = '\0';
    assert_true(probe_host_ok(name));
    for (i = 0; i < 253; i++) /* 253 bytes: "aaa.aaa. ... .a" */
        name[i] = i % 4 == 3 ? '.' : 'a';
    name[253] = '\0';
    assert_true(probe_host_ok(name));
    name[253] = '.'; /* and its trailing dot */
    name[254] = '\0';
    assert_true(probe_host_ok(name));
    name[253] = 'a'; /* 254 bytes */
    assert_false(probe_host_ok(name));
}

/* An address the host check refuses is that item's CRIT result, never the run's error: the
 * other items run, and the refused ones are not connected to. */
static void invalid_address_is_a_crit_result(void **state)
{
    struct check_spec h = spec(CHECK_HTTP, "web"), t = spec(CHECK_TCP, "db");
    struct check_spec s = spec(CHECK_TLS, "cert"), z = spec(CHECK_TCP, "port0");
    struct target_spec slash = {.name = (char *)"slash", .address = (char *)"db.example/x"};
    struct target_spec utf = {.name = (char *)"utf", .address = (char *)"d\xC3\xA9.example"};
    struct target_spec none = {.name = (char *)"none", .address = NULL};
    struct probe_item items[6] = {
        {.check = &t, .target = &slash},        {.check = &h},
        {.check = &s, .target = &local_target}, {.check = &z, .target = &local_target},
        {.check = &t, .target = &none},         {.check = &t, .target = &utf}};
    int banner0 = atomic_load(&banner_srv.accepted);
    int tls0 = atomic_load(&tls_srv[TLS_GOOD].accepted);
    struct check_result r[6];
    struct hp_err err = {0};
    int i;

    (void)state;
    h.u.http.url = url(0, "http", "127.0.0.1", http_srv.port, "/ok");
    t.u.tcp.port = banner_srv.port;
    s.u.tls.port = tls_srv[TLS_GOOD].port;
    s.u.tls.server_name = (char *)"local host";
    z.u.tcp.port = 0;
    assert_int_equal(probe_run(items, 6, NULL, r, &err), HP_OK);
    status_is(&r[0], CHECK_CRIT);
    assert_string_equal(r[0].reason, "invalid address \"db.example/x\"");
    assert_string_equal(r[0].target, "slash");
    status_is(&r[1], CHECK_OK);
    status_is(&r[2], CHECK_CRIT);
    assert_string_equal(r[2].reason, "invalid address \"local host\"");
    status_is(&r[3], CHECK_CRIT);
    assert_string_equal(r[3].reason, "invalid port 0");
    status_is(&r[4], CHECK_CRIT);
    assert_string_equal(r[4].reason, "invalid address \"\"");
    status_is(&r[5], CHECK_CRIT);
    assert_string_equal(r[5].reason, "invalid address \"d\\xc3\\xa9.example\"");
    for (i = 0; i < 6; i++) {
        to_json_ok(&r[i]);
        check_result_release(&r[i]);
    }
    poll(NULL, 0, 50);
    assert_int_equal(atomic_load(&banner_srv.accepted), banner0);
    assert_int_equal(atomic_load(&tls_srv[TLS_GOOD].accepted), tls0);
}

static void every_allocation_failure_is_clean(void **state)
{
    struct check_spec h = spec(CHECK_HTTP, "web"), t = spec(CHECK_TCP, "ping");
    struct check_spec d = spec(CHECK_DNS, "lh"), s = spec(CHECK_TLS, "cert");
    struct probe_item items[4] = {{.check = &h},
                                  {.check = &t, .target = &local_target},
                                  {.check = &d},
                                  {.check = &s, .target = &local_target}};
    struct probe_options o = {.ca_file = ca_file};
    long n, nomem = 0, ok_runs = 0;

    (void)state;
    h.u.http.url = url(0, "http", "127.0.0.1", http_srv.port, "/ok");
    h.u.http.body_regex = regex_of("hello");
    h.u.http.has_body_regex = true;
    t.u.tcp.port = ping_srv.port;
    t.u.tcp.send = (char *)"PING\r\n";
    t.u.tcp.expect = (char *)"PONG";
    d.u.dns.name = (char *)"localhost";
    s.u.tls.port = tls_srv[TLS_CHAIN].port;
    s.u.tls.server_name = (char *)"localhost";
    s.tls_min_days_left = 14;
    for (n = 0; n < 1000; n++) {
        struct check_result r[4];
        struct hp_err err = {0};
        struct hp_ctx *ctx;
        long failures;
        hp_rc rc;
        int i;

        assert_int_equal(hp_ctx_new(NULL, 5000, &ctx), HP_OK);
        hp_alloc_fail_after(n);
        rc = probe_run_opts(items, 4, ctx, &o, r, &err);
        failures = hp_alloc_failures();
        hp_alloc_fail_reset();
        hp_ctx_free(ctx);
        if (rc == HP_ERR_NOMEM)
            nomem++;
        else
            assert_int_equal(rc, HP_OK);
        if (rc == HP_OK) {
            ok_runs++;
            for (i = 0; i < 4; i++)
                assert_non_null(r[i].values);
        }
        for (i = 0; i < 4; i++)
            check_result_release(&r[i]);
        if (!failures) { /* a run that no injected failure reached: all paths covered */
            assert_int_equal(rc, HP_OK);
            break;
        }
    }
    assert_true(n < 1000); /* a run past every allocation was reached */
    assert_true(nomem > 10);
    assert_true(ok_runs >= 1);
    print_message("%ld runs, %ld ended in HP_ERR_NOMEM\n", n + 1, nomem);
    safe_regex_free(h.u.http.body_regex);
}

/* ---- the admin's policy and the budgets ---- */

static hp_rc run_opts(const struct probe_item *items, size_t n, int64_t timeout_ms,
                      const struct probe_options *o, struct check_result *out)
{
    struct hp_err err = {0};
    struct hp_ctx *ctx;
    hp_rc rc;

    assert_int_equal(hp_ctx_new(NULL, timeout_ms, &ctx), HP_OK);
    rc = probe_run_opts(items, n, ctx, o, out, &err);
    hp_ctx_free(ctx);
    return rc;
}

/* A denied address is never connected to: written in the spec, behind a name, or behind a
 * redirect. */
static void policy_refuses_denied_addresses(void **state)
{
    struct inspect_policy pol;
    struct inspect_policy_flags f = {"*", false, NULL, "127.0.0.2/32,169.254.0.0/16", 0};
    struct check_spec h = spec(CHECK_HTTP, "web"), t = spec(CHECK_TCP, "db");
    struct target_spec md = {.name = (char *)"md", .address = (char *)"169.254.169.254"};
    struct probe_item items[3] = {{&h, NULL}, {&t, &md}, {&t, &local_target}};
    struct probe_options o = {0};
    struct check_result r[3];
    struct hp_err err = {0};
    int before = atomic_load(&http_srv.accepted), i;

    (void)state;
    assert_int_equal(inspect_policy_init(&pol, &f, &err), HP_OK);
    o.policy = &pol;
    h.u.http.url = url(0, "http", "127.0.0.1", http_srv.port, "/redirect-away");
    h.u.http.follow_redirects = true;
    t.u.tcp.port = banner_srv.port;
    assert_int_equal(run_opts(items, 3, 5000, &o, r), HP_OK);
    status_is(&r[0], CHECK_UNKNOWN);
    contains(r[0].reason, "refused by the cluster policy: 127.0.0.2 is denied");
    status_is(&r[1], CHECK_UNKNOWN);
    contains(r[1].reason, "169.254.169.254 is denied by the cluster policy (--probe-deny "
                          "169.254.0.0/16)");
    status_is(&r[2], CHECK_OK);                                    /* what is not denied runs */
    assert_int_equal(atomic_load(&http_srv.accepted) - before, 1); /* only the first hop */
    for (i = 0; i < 3; i++)
        check_result_release(&r[i]);
    inspect_policy_release(&pol);

    /* a name is judged by the addresses it resolves to */
    f.probe_deny = "127.0.0.0/8,::1"; /* localhost: both of its addresses */
    assert_int_equal(inspect_policy_init(&pol, &f, &err), HP_OK);
    h.u.http.url = url(0, "http", "localhost", http_srv.port, "/ok");
    assert_int_equal(run_opts(items, 1, 5000, &o, r), HP_OK);
    status_is(&r[0], CHECK_UNKNOWN);
    contains(r[0].reason, "refused by the cluster policy: ");
    contains(r[0].reason, " of localhost is denied by the cluster policy (--probe-deny ");
    check_result_release(&r[0]);
    inspect_policy_release(&pol);
}

/* One probe at a time per run still finishes them all; a budget in use elsewhere leaves the
 * run's probes unstarted, and UNKNOWN saying why, at its deadline. */
static void budgets_bound_probes_in_flight(void **state)
{
    enum { N = 5 };
    struct check_spec c = spec(CHECK_HTTP, "web");
    struct probe_item items[N];
    struct check_result r[N];
    struct probe_options o = {.max_in_flight = 1};
    struct probe_budget *b = NULL;
    struct probe_budget_stats st;
    int i;

    (void)state;
    c.u.http.url = url(0, "http", "127.0.0.1", http_srv.port, "/ok");
    for (i = 0; i < N; i++)
        items[i] = (struct probe_item){.check = &c};
    assert_int_equal(probe_budget_new(2, 0, &b), HP_OK);
    o.budget = b;
    assert_int_equal(run_opts(items, N, 5000, &o, r), HP_OK);
    for (i = 0; i < N; i++) {
        status_is(&r[i], CHECK_OK);
        check_result_release(&r[i]);
    }
    probe_budget_stats(b, &st);
    assert_int_equal(st.in_use, 0); /* every unit came back */
    /* another run holds the whole budget */
    assert_int_equal(probe_budget_take(b, NULL, 2, NULL), 2);
    o.max_in_flight = 0;
    assert_int_equal(run_opts(items, N, 300, &o, r), HP_OK);
    for (i = 0; i < N; i++) {
        status_is(&r[i], CHECK_UNKNOWN);
        contains(r[i].reason, "not started within the run's timeout");
        contains(r[i].reason, "--max-probes-in-flight");
        check_result_release(&r[i]);
    }
    probe_budget_give(b, NULL, 2);
    /* a bodyRegex probe weighs more than one unit: with 2 units it still runs, alone */
    c.u.http.body_regex = regex_of("hello");
    c.u.http.has_body_regex = true;
    assert_int_equal(run_opts(items, 2, 5000, &o, r), HP_OK);
    for (i = 0; i < 2; i++) {
        status_is(&r[i], CHECK_OK);
        check_result_release(&r[i]);
    }
    safe_regex_free(c.u.http.body_regex);
    probe_budget_stats(b, &st);
    assert_int_equal(st.in_use, 0);
    assert_true(st.refused > 0);
    probe_budget_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_200_is_ok_with_values),
        cmocka_unit_test(http_values_print_at_their_precision),
        cmocka_unit_test(http_503_is_crit),
        cmocka_unit_test(http_expect_status_and_redirects),
        cmocka_unit_test(http_body_regex_mismatch_is_crit),
        cmocka_unit_test(http_headers_and_head_method),
        cmocka_unit_test(http_connect_refused_is_crit),
        cmocka_unit_test(http_deadline_bounds_a_slow_server),
        cmocka_unit_test(cancel_ends_every_probe),
        cmocka_unit_test(many_probes_run_concurrently),
        cmocka_unit_test(tcp_closed_port_is_refused),
        cmocka_unit_test(tcp_connect_and_expect_banner),
        cmocka_unit_test(tcp_values_print_at_their_precision),
        cmocka_unit_test(tcp_send_then_expect),
        cmocka_unit_test(tcp_expect_mismatch_is_crit),
        cmocka_unit_test(tls_valid_certificate_is_ok),
        cmocka_unit_test(tls_expired_is_crit),
        cmocka_unit_test(tls_expiring_leaf_warns),
        cmocka_unit_test(tls_expiring_intermediate_warns_apart),
        cmocka_unit_test(tls_values_print_at_their_precision),
        cmocka_unit_test(tls_wrong_host_is_crit),
        cmocka_unit_test(tls_untrusted_is_crit_and_still_read),
        cmocka_unit_test(tls_refused_is_crit),
        cmocka_unit_test(tls_server_name_forms),
        cmocka_unit_test(unloadable_ca_file_is_unknown),
        cmocka_unit_test(https_verification_failure_is_crit),
        cmocka_unit_test(https_days_left_are_judged),
        cmocka_unit_test(dns_localhost_resolves),
        cmocka_unit_test(dns_values_print_at_their_precision),
        cmocka_unit_test(dns_unknown_name_is_crit),
        cmocka_unit_test(dns_expected_addresses),
        cmocka_unit_test(dns_no_address_is_crit),
        cmocka_unit_test(non_ascii_reasons_stay_valid_json),
        cmocka_unit_test(dns_short_deadline_is_clean),
        cmocka_unit_test(expired_deadline_probes_nothing),
        cmocka_unit_test(non_endpoint_item_is_invalid),
        cmocka_unit_test(host_syntax),
        cmocka_unit_test(invalid_address_is_a_crit_result),
        cmocka_unit_test(policy_refuses_denied_addresses),
        cmocka_unit_test(budgets_bound_probes_in_flight),
        cmocka_unit_test(every_allocation_failure_is_clean),
    };
    struct sigaction ign = {.sa_handler = SIG_IGN};
    int rc;

    sigaction(SIGPIPE, &ign, NULL); /* the test servers write to probes that hung up */
    real_getaddrinfo_a = (gai_a_fn)dlsym(RTLD_NEXT, "getaddrinfo_a");
    real_gai_error = (gai_error_fn)dlsym(RTLD_NEXT, "gai_error");
    if (!real_getaddrinfo_a || !real_gai_error) {
        fprintf(stderr, "cannot find glibc's getaddrinfo_a / gai_error\n");
        return 1;
    }
    hp_alloc_install();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, start_servers, stop_servers);
    curl_global_cleanup();
    return rc;
}
