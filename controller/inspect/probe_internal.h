/*
 * probe_internal.h - shared by the probe's files (not a public API; see hostpatrol/probe.h).
 *
 * The files: probe.c (the API, the run and its poll loop, the result helpers), probe_curl.c
 * (what the libcurl probes share), probe_http.c, probe_tcp.c, probe_tls.c (the tls probe and
 * the X.509 handling https shares), probe_dns.c (the resolver and its orphan list).
 *
 * Every function here runs on the thread of the run that owns p and r (probe_dns_reap and
 * probe_dns_abandon take the orphan list's own lock); none blocks: the poll loop is the only
 * place a run waits, bounded by its context.
 */
#ifndef HOSTPATROL_PROBE_INTERNAL_H
#define HOSTPATROL_PROBE_INTERNAL_H

#include <curl/curl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "hostpatrol/buf.h"
#include "hostpatrol/check_verdict.h"
#include "hostpatrol/probe.h"

#define QUOTE_MAX 160 /* room for probe_quote's text */

enum phase { PH_IDLE, PH_CURL, PH_TCP_SEND, PH_TCP_RECV, PH_DNS, PH_DONE };

struct dns_req; /* probe_dns.c */

/* One probe of a run: its item, its state machine and what it holds while in flight. */
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

/* One call of probe_run_opts: its multi handle, its probes and its counters. */
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

/* ---- probe.c: results ---- */

/* probe_finish: p's result: v's status and reason (kept valid UTF-8), observed_ms and
 * duration_ms; p leaves the run's counts (once) and gives its budget units back. */
hp_rc probe_finish(struct run *r, struct probe *p, const struct check_verdict *v) HP_WUR;
/* probe_put: set value key of p's result to v (taken). probe_put_ms: a duration measured in
 * microseconds, as milliseconds. probe_put_text: a string the server chose, kept valid UTF-8. */
hp_rc probe_put(struct probe *p, const char *key, json_t *v) HP_WUR;
hp_rc probe_put_ms(struct probe *p, const char *key, int64_t us) HP_WUR;
hp_rc probe_put_text(struct probe *p, const char *key, const char *s) HP_WUR;
/* probe_fmt_alloc: a formatted string, owned (hp_free); NULL on NOMEM. */
char *probe_fmt_alloc(const char *fmt, ...) HP_PRINTF(1, 2);
/* probe_quote: s with quotes, backslashes and control bytes escaped, cut to fit; into buf
 * (returned). probe_errno_str: strerror of e (maybe into buf; borrowed). */
const char *probe_quote(const char *s, char *buf, size_t cap);
const char *probe_errno_str(int e, char *buf, size_t cap);
/* probe_elapsed_ms / _us: time since p started. */
int64_t probe_elapsed_ms(const struct probe *p);
int64_t probe_elapsed_us(const struct probe *p);
/* probe_is_ip_literal: s is an IPv4 or IPv6 address literal (no brackets). */
bool probe_is_ip_literal(const char *s);

/* ---- probe_curl.c: the libcurl transfers ---- */

/* probe_easy_start: p's easy handle for url (borrowed) with the options every probe shares
 * (deadline, CA file, policy hook, TLS capture, CONNECT_ONLY for tcp and tls); the caller adds
 * its own and then probe_easy_add. probe_easy_drop: the handle and lists gone (p may have
 * none). */
hp_rc probe_easy_start(struct run *r, struct probe *p, const char *url) HP_WUR;
/* probe_easy_start_host: probe_easy_start for scheme://host:port/ (an IPv6 host bracketed). */
hp_rc probe_easy_start_host(struct run *r, struct probe *p, const char *scheme, const char *host,
                            int port) HP_WUR;
hp_rc probe_easy_add(struct run *r, struct probe *p) HP_WUR;
void probe_easy_drop(struct run *r, struct probe *p);
/* probe_needs_brackets: an IPv6 literal goes in brackets in URLs and CONNECT_TO entries. */
bool probe_needs_brackets(const char *host);

enum times { TIMES_TCP, TIMES_TLS, TIMES_HTTP };
/* probe_put_times: the phase durations libcurl measured (see probe.h for their meaning). */
hp_rc probe_put_times(struct probe *p, enum times which) HP_WUR;
/* probe_phase_of: where an unfinished (or timed-out) transfer is (static text). */
const char *probe_phase_of(const struct probe *p);
/* probe_resolving_a_name: is libcurl still resolving a host name (not a literal) for p? */
bool probe_resolving_a_name(const struct probe *p);
/* probe_transport_fail: the reason of a failed transfer into v. where: "host:port" or NULL. */
void probe_transport_fail(struct probe *p, CURLcode res, const char *where,
                          struct check_verdict *v);

/* ---- the protocols: start a probe; judge a finished transfer ---- */

hp_rc probe_http_start(struct run *r, struct probe *p) HP_WUR;
hp_rc probe_http_done(struct run *r, struct probe *p, CURLcode res) HP_WUR;

hp_rc probe_tcp_start(struct run *r, struct probe *p) HP_WUR;
hp_rc probe_tcp_connected(struct run *r, struct probe *p, CURLcode res) HP_WUR;
/* probe_tcp_io: send, then read for expect, as far as the socket allows without blocking. */
hp_rc probe_tcp_io(struct run *r, struct probe *p) HP_WUR;

/* probe_tls_init: once per process, before the first handshake (the SSL_CTX slot for p). */
void probe_tls_init(void);
/* probe_tls_on_ssl_ctx: libcurl's SSL_CTX_FUNCTION: captures the peer chain into arg (p). */
CURLcode probe_tls_on_ssl_ctx(CURL *e, void *sslctx, void *arg);
hp_rc probe_tls_start(struct run *r, struct probe *p) HP_WUR;
hp_rc probe_tls_done(struct run *r, struct probe *p, CURLcode res) HP_WUR;
/* probe_tls_cert_values: days-left values of the captured chain and their judgement (WARN). */
hp_rc probe_tls_cert_values(struct probe *p, struct check_verdict *v) HP_WUR;

hp_rc probe_dns_start(struct run *r, struct probe *p) HP_WUR;
/* probe_dns_poll: judge finished requests; *pending: some are still running. */
hp_rc probe_dns_poll(struct run *r, bool *pending) HP_WUR;
/* probe_dns_interval: how long to sleep between polls (ms). */
int probe_dns_interval(const struct run *r);
/* probe_dns_abandon: the probe no longer wants q (taken): cancelled, or parked until glibc is
 * done with it. probe_dns_reap: free the parked requests glibc is done with. */
void probe_dns_abandon(struct dns_req *q);
void probe_dns_reap(void);

#endif
