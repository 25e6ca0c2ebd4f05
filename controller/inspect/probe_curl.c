/* probe_curl.c - what the libcurl probes (http, tcp, tls) share: the easy handle and its options,
 * the cluster policy's check of every address connected to, the phase times libcurl measured,
 * where an unfinished transfer is, and the reason of a failed one (see probe_internal.h). */
#include <curl/curl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "hostpatrol/alloc.h"
#include "inspect/probe_internal.h"

void probe_easy_drop(struct run *r, struct probe *p)
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
const char *probe_phase_of(const struct probe *p)
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

/* probe_resolving_a_name: is libcurl still resolving a host name (not an address literal) for p? */
bool probe_resolving_a_name(const struct probe *p)
{
    char host[256];

    if (strcmp(probe_phase_of(p), "resolve"))
        return false;
    current_host(p, host, sizeof(host));
    return !host[0] || (host[0] != '[' && !probe_is_ip_literal(host)); /* not known: a name */
}

/* probe_put_times: the phase durations libcurl measured (see probe.h for their meaning). */
hp_rc probe_put_times(struct probe *p, enum times which)
{
    int64_t dns = info_us(p->easy, CURLINFO_NAMELOOKUP_TIME_T);
    int64_t conn = info_us(p->easy, CURLINFO_CONNECT_TIME_T);
    int64_t app = info_us(p->easy, CURLINFO_APPCONNECT_TIME_T);
    int64_t st = info_us(p->easy, CURLINFO_STARTTRANSFER_TIME_T);
    int64_t total = info_us(p->easy, CURLINFO_TOTAL_TIME_T);
    int64_t ready = app > conn ? app : conn;
    hp_rc rc;

    rc = probe_put_ms(p, "dns_ms", dns);
    if (!rc && conn)
        rc = probe_put_ms(p, "connect_ms", conn > dns ? conn - dns : 0);
    if (rc || which == TIMES_TCP)
        return rc;
    rc = probe_put_ms(p, "tls_ms", app > conn && conn ? app - conn : 0);
    if (!rc && which == TIMES_HTTP)
        rc = probe_put_ms(p, "first_byte_ms", st > ready && ready ? st - ready : 0);
    if (!rc)
        rc = probe_put_ms(p, "total_ms", total ? total : probe_elapsed_us(p));
    return rc;
}

/* probe_transport_fail: the reason of a failed transfer. where: "host:port" when known. */
void probe_transport_fail(struct probe *p, CURLcode res, const char *where, struct check_verdict *v)
{
    const char *eb = p->errbuf[0] ? check_result_trim_utf8(p->errbuf) : curl_easy_strerror(res);
    char buf[128];
    long oserr = 0;

    curl_easy_getinfo(p->easy, CURLINFO_OS_ERRNO, &oserr);
    switch (res) {
    case CURLE_OPERATION_TIMEDOUT:
        check_verdict_add(v, CHECK_CRIT, "timed out after %lld ms (%s)",
                          (long long)probe_elapsed_ms(p), probe_phase_of(p));
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        check_verdict_add(v, CHECK_CRIT, "name does not resolve: %s", eb);
        break;
    case CURLE_COULDNT_CONNECT:
        if (where && oserr)
            check_verdict_add(v, CHECK_CRIT, "connect to %s: %s", where,
                              probe_errno_str((int)oserr, buf, sizeof(buf)));
        else if (oserr)
            check_verdict_add(v, CHECK_CRIT, "connect failed: %s (%s)",
                              probe_errno_str((int)oserr, buf, sizeof(buf)), eb);
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

hp_rc probe_easy_start(struct run *r, struct probe *p, const char *url)
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
        curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, probe_tls_on_ssl_ctx);
        curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, (void *)p);
    }
    if (p->check->kind != CHECK_HTTP) {
        curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
        curl_easy_setopt(e, CURLOPT_PROXY, ""); /* a direct connection, whatever the env */
    }
    return HP_OK;
}

hp_rc probe_easy_add(struct run *r, struct probe *p)
{
    CURLMcode mc = curl_multi_add_handle(r->multi, p->easy);

    if (mc == CURLM_OUT_OF_MEMORY)
        return HP_ERR_NOMEM;
    if (mc != CURLM_OK)
        return HP_ERR_INTERNAL;
    p->phase = PH_CURL;
    return HP_OK;
}

hp_rc probe_easy_start_host(struct run *r, struct probe *p, const char *scheme, const char *host,
                            int port)
{
    bool br = probe_needs_brackets(host);
    char *url =
        probe_fmt_alloc("%s://%s%s%s:%d/", scheme, br ? "[" : "", host, br ? "]" : "", port);
    hp_rc rc;

    if (!url)
        return HP_ERR_NOMEM;
    rc = probe_easy_start(r, p, url);
    hp_free(url);
    return rc;
}

/* probe_needs_brackets: IPv6 literals go in brackets in URLs and CONNECT_TO entries. */
bool probe_needs_brackets(const char *host)
{
    return strchr(host, ':') != NULL;
}
