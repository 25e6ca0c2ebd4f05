/* probe_tls.c - the tls probe and the X.509 handling the https probes share: the peer chain
 * captured at the handshake, days left on the leaf and the chain, subject, issuer and SANs,
 * verification against the trust store and the host name (see probe.h). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "hostpatrol/alloc.h"
#include "inspect/probe_internal.h"

/* ---- TLS: certificates from the handshake ---- */

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_ex_index = -1;

static void tls_index_init(void)
{
    tls_ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

void probe_tls_init(void)
{
    pthread_once(&tls_once, tls_index_init);
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

CURLcode probe_tls_on_ssl_ctx(CURL *e, void *sslctx, void *arg)
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

/* probe_tls_cert_values: days-left values of the captured chain and their judgement (WARN). */
hp_rc probe_tls_cert_values(struct probe *p, struct check_verdict *v)
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

static int tls_port(const struct probe *p)
{
    return p->check->u.tls.port > 0 ? p->check->u.tls.port : 443;
}

hp_rc probe_tls_start(struct run *r, struct probe *p)
{
    const struct tls_check *t = &p->check->u.tls;
    const char *a = p->target->address;
    const char *host = t->server_name ? t->server_name : a;
    bool br = probe_needs_brackets(host), abr = probe_needs_brackets(a);
    int port = tls_port(p);
    char *ct = NULL;
    hp_rc rc;

    rc = probe_easy_start_host(r, p, "https", host, port);
    if (rc)
        return rc;
    if (t->server_name) { /* SNI and name: server_name; the connection: the address */
        struct curl_slist *l;

        ct = probe_fmt_alloc("%s%s%s:%d:%s%s%s:%d", br ? "[" : "", host, br ? "]" : "", port,
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
    return probe_easy_add(r, p);
}

hp_rc probe_tls_done(struct run *r, struct probe *p, CURLcode res)
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
    rc = probe_put_times(p, TIMES_TLS);
    if (rc)
        return rc;
    if (res != CURLE_OK) {
        probe_transport_fail(p, res, where, &v);
        return probe_finish(r, p, &v);
    }
    if (!p->chain || sk_X509_num(p->chain) < 1) {
        check_verdict_add(&v, CHECK_CRIT, "no certificate received from %s", where);
        return probe_finish(r, p, &v);
    }
    leaf = sk_X509_value(p->chain, 0);
    rc = probe_put(p, "tls_version", json_string(p->tls_version ? p->tls_version : "unknown"));
    if (!rc)
        rc = probe_put_text(p, "subject", name_text(X509_get_subject_name(leaf), buf, sizeof(buf)));
    if (!rc)
        rc = probe_put_text(p, "issuer", name_text(X509_get_issuer_name(leaf), buf, sizeof(buf)));
    if (!rc)
        rc = sans_json(leaf, &sans);
    if (!rc)
        rc = probe_put(p, "sans", sans);
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
    if ((probe_is_ip_literal(name) ? X509_check_ip_asc(leaf, name, 0)
                                   : X509_check_host(leaf, name, namelen, 0, NULL)) != 1)
        check_verdict_add(&v, CHECK_CRIT, "certificate does not match host name %s", name);
    rc = probe_tls_cert_values(p, &v);
    if (rc)
        return rc;
    return probe_finish(r, p, &v);
}
