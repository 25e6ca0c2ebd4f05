/*
 * probe.h - endpoint probes (http, tcp, tls, dns), all of one run concurrently on one libcurl
 * multi handle: no thread per probe, thousands in flight, every probe bounded by the run's
 * context (a cancel or the deadline ends every probe at once).
 *
 * Judgement (each result gets a reason whenever it is not OK; several findings are joined
 * with "; ", the status being the worst of them):
 *   http  - a transport error or timeout is CRIT with the phase that failed; a status code not in
 *           expectStatus (default: any 2xx/3xx) is CRIT; a body that does not match bodyRegex is
 *           CRIT (at most 1 MiB of body is read, and judged: the first 1 MiB of a longer body;
 *           see "bodyRegex cost" below); for https with tlsMinDaysLeft, a leaf closer to expiry
 *           than that is WARN, a chain certificate closer to expiry is WARN naming which one.
 *           Verification (system CA bundle, host name) is libcurl's: a failure is CRIT with its
 *           reason; a CA file that cannot be loaded is UNKNOWN ("cannot load the CA
 *           certificates: ..."). Values: status_code, dns_ms, connect_ms, tls_ms (0 without
 *           TLS), first_byte_ms, total_ms, and when a TLS handshake completed
 *           tls_leaf_days_left, tls_chain_min_days_left. Proxies from the environment
 *           (http_proxy, ...) apply as they do for curl.
 *   tcp   - connect to target.address:port; with send/expect, send then read until the expected
 *           substring arrives (at most 64 KiB are read). Refused, unreachable, timeout,
 *           mismatch: CRIT. Values: dns_ms, connect_ms (once connected), total_ms.
 *   tls   - TLS handshake to target.address:port (SNI and the name verified: serverName, or the
 *           address); the handshake itself does not verify, so the certificates can always be
 *           read; then the chain is verified against the CA bundle (X509_verify_cert, purpose
 *           ssl_server) and the leaf against the name (X509_check_host / X509_check_ip_asc):
 *           either failure is CRIT ("certificate verify failed: certificate has expired",
 *           "certificate does not match host name foo"). When the CA certificates cannot be
 *           loaded the chain is not verified (a local fault, not the endpoint's): UNKNOWN
 *           "cannot load the CA certificates (<file>)"; the name is still checked and the days
 *           left still reported and judged. Days left on the leaf and the earliest expiry in
 *           the rest of the chain, reported separately (tls_leaf_days_left,
 *           tls_chain_min_days_left; the latter equals the former when the server sends only the
 *           leaf) and judged against tlsMinDaysLeft (WARN). Values also: tls_version ("TLSv1.3"),
 *           subject, issuer (RFC 2253, at most 511 bytes, bytes that are not valid UTF-8 escaped
 *           as \xNN), sans (array of DNS names and IP addresses), dns_ms, connect_ms, tls_ms,
 *           total_ms.
 *   dns   - the name resolves within the deadline (getaddrinfo, AF_UNSPEC); with expectAddresses,
 *           to exactly that set (order-insensitive; a difference is CRIT naming the missing and
 *           unexpected addresses). A name that does not exist is CRIT ("name does not resolve");
 *           without expectAddresses, a name that resolves to no IPv4 or IPv6 address is CRIT
 *           ("name resolves to no address"). Values: addresses (array of unique strings, resolver
 *           order), resolve_ms.
 * An item whose address or tls serverName fails probe_host_ok, whose port is out of range, or
 * an http check without a url or a dns check without a name, is CRIT ("invalid address
 * \"...\"", "invalid port N", "invalid check: no url") without being probed; the others run.
 * Reasons are at most 1 KiB, cut on a character boundary, and always valid UTF-8 (bytes that
 * are not, e.g. from a resolver or a server, are escaped as \xNN).
 *
 * bodyRegex cost: the regex (safe_regex.h: PCRE2 with match, depth and heap limits) runs over
 * up to 1 MiB of body on the thread of the poll loop, so while it runs no other probe of the run
 * makes progress; the 1 MiB cap bounds the text and the match limit the work (about 0.1 s at
 * worst here): a pattern that reaches it makes the result UNKNOWN ("bodyRegex too costly to
 * match ...").
 *
 * Budgets (probe_options): a run starts at most max_in_flight probes at once, and each probe
 * first takes its units from the shared budget; the next probes start as earlier ones finish.
 * Probes not started when the deadline passes are UNKNOWN ("not started within the run's
 * timeout: ..."), naming the limit that held them back.
 *
 * When the run's context is CANCELLED, unfinished probes are UNKNOWN ("run cancelled"); when its
 * deadline passes, they are CRIT ("timed out after N ms (<phase>)", phase one of "resolve",
 * "connect", "tls handshake", "waiting for response", "reading body", "send"; a tcp probe
 * waiting for its expect string says "expected \"...\" not received within N ms (got B bytes)").
 *
 * Units: *_ms are milliseconds as JSON reals with 0.001 precision. The http phases are
 * durations of each phase, not cumulative times since the start: dns_ms = name resolution,
 * connect_ms = TCP connect, tls_ms = TLS handshake, first_byte_ms = from the connection being
 * ready (TCP or TLS) to the first response byte, total_ms = the whole transfer (with redirects
 * followed, the phases are those libcurl reports for the last request, total_ms covers all).
 * *_days_left are fractional days (0.001 precision, truncated) from now to the certificate's
 * notAfter, negative once expired; reasons print whole days (floor).
 *
 * Every probe uses a fresh connection, never reused, so connect and TLS times are real.
 * Resolution: http/tcp/tls through libcurl's asynchronous resolver, dns through glibc
 * getaddrinfo_a (GAI_NOWAIT) polled from the same loop. A dns request still running when its
 * probe ends is cancelled; if glibc cannot cancel it (already running), its memory is parked
 * on a process-wide list and freed by a later probe_run once glibc has finished with it (never
 * freed while glibc may still write to it, and never waited for past the deadline).
 *
 * Thread-safety: probe_run may be called from several threads at once (each call has its own
 * multi handle). It blocks the calling thread until every probe has a result, at most until
 * the context's deadline (plus a few ms) or its cancellation. The caller must have called
 * curl_global_init.
 */
#ifndef HOSTPATROL_PROBE_H
#define HOSTPATROL_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include "hostpatrol/check_result.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/inspect_policy.h"
#include "hostpatrol/inspection_spec.h"
#include "hostpatrol/probe_budget.h"

struct probe_item {
    const struct check_spec *check;   /* borrowed; kind http, tcp, tls or dns */
    const struct target_spec *target; /* borrowed; required for tcp and tls, NULL for http/dns */
};

/* Options of a run; a NULL struct (or a NULL / 0 field) means the default. */
struct probe_options {
    const char *ca_file; /* borrowed; PEM file of trusted CAs for https and tls instead of the
                          * system bundle (tests, private CAs) */
    /* borrowed: the admin's probe allow/deny rules. An item whose host the rules refuse is
     * UNKNOWN ("refused by the cluster policy: ...") without being probed; every address a
     * probe connects to (after resolution, on every redirect) is checked too, and a refused
     * one is not connected to (UNKNOWN when no allowed address is left). NULL: no rules. */
    const struct inspect_policy *policy;
    /* borrowed: the process-wide cap on probes in flight (probe_budget.h); NULL: none */
    struct probe_budget *budget;
    const char *owner; /* borrowed: whose share of the budget this run uses (the namespace) */
    /* at most this many probes of this run in flight at once (sockets per run); 0: all */
    size_t max_in_flight;
};

/* probe_host_ok: host (borrowed, may be NULL) is something probe_run can probe as a target
 * address or tls serverName: an IPv4 literal (dotted quad), an IPv6 literal without brackets
 * or zone id, or a DNS name (labels of 1-63 letters, digits, '-' or '_', at most 253 bytes,
 * a trailing dot allowed, the last label not all digits). For the spec parser to refuse a
 * bad address up front. */
bool probe_host_ok(const char *host);

/* probe_run: run n items concurrently under ctx; out is the caller's array of n results, each
 * initialised here (the caller releases them whatever the return). A probe's failure is a
 * result, not an error, and so is an item that cannot be probed (an invalid address, server
 * name or port: CRIT, the others still run): the return is HP_OK unless something local failed
 * (HP_ERR_NOMEM, an HP_ERR_ from libcurl's multi interface) or the items are a programming
 * error: HP_ERR_INVALID with err->field "items[i]" for an item without a check, with a check
 * that is not http, tcp, tls or dns, or a tcp/tls item without a target (nothing is probed
 * then). */
hp_rc probe_run(const struct probe_item *items, size_t n, struct hp_ctx *ctx,
                struct check_result *out, struct hp_err *err) HP_WUR;

/* probe_run_opts: probe_run with options (opts borrowed, may be NULL). */
hp_rc probe_run_opts(const struct probe_item *items, size_t n, struct hp_ctx *ctx,
                     const struct probe_options *opts, struct check_result *out,
                     struct hp_err *err) HP_WUR;

#endif
