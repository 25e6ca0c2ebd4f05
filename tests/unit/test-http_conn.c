/* test-http_conn.c - unit tests of controller/util/http_conn.c: which failed TLS handshakes are
 * refusals (an identity or configuration problem, never retried) and which the network cut (an
 * outage, retried). The texts are libcurl's own, recorded on 4 December from curl 7.88.1
 * (Debian 12) and 8.14.1 (Debian's backport) against a local server that reset the connection
 * (SO_LINGER 0), closed it (FIN) or answered plain HTTP, and from the tests' etcd with mTLS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hostpatrol/http_conn.h"

struct tls_case {
    CURLcode cc;
    const char *errbuf;
    bool refused;
};

static const struct tls_case cases[] = {
    /* the network cut the handshake (toxiproxy's reset_peer, a server restarting): outages */
    {CURLE_SSL_CONNECT_ERROR, "Recv failure: Connection reset by peer", false},
    {CURLE_SSL_CONNECT_ERROR,
     "OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to "
     "127.0.0.1:36619 ",
     false},
    {CURLE_SSL_CONNECT_ERROR,
     "TLS connect error: error:0A000126:SSL routines::unexpected eof "
     "while reading",
     false},
    {CURLE_RECV_ERROR, "Recv failure: Connection reset by peer", false},
    {CURLE_SEND_ERROR, "Send failure: Broken pipe", false},
    {CURLE_COULDNT_CONNECT, "Failed to connect to 127.0.0.1 port 1: Connection refused", false},
    {CURLE_OPERATION_TIMEDOUT, "SSL connection timeout", false},
    /* refusals: no retry fixes them */
    {CURLE_SSL_CONNECT_ERROR, "OpenSSL/3.0.19: error:0A00010B:SSL routines::wrong version number",
     true},
    {CURLE_SSL_CONNECT_ERROR,
     "TLS connect error: error:0A00010B:SSL routines::wrong version "
     "number",
     true},
    {CURLE_SSL_CONNECT_ERROR,
     "OpenSSL/3.0.19: error:0A000410:SSL routines::sslv3 alert "
     "handshake failure",
     true},
    {CURLE_RECV_ERROR,
     "OpenSSL SSL_read: OpenSSL/3.0.19: error:0A00045C:SSL routines::tlsv13 "
     "alert certificate required, errno 0",
     true},
    {CURLE_PEER_FAILED_VERIFICATION,
     "SSL certificate problem: unable to get local issuer "
     "certificate",
     true},
    {CURLE_SSL_CACERT_BADFILE, "error setting certificate file: /nonexistent/ca.pem", true},
    {CURLE_SSL_CERTPROBLEM, "could not load PEM client certificate", true},
    /* a host name that holds "alert" is no alert (7.88's text names the host) */
    {CURLE_SSL_CONNECT_ERROR,
     "OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to alertmanager-etcd:2379 ", false},
    /* TLS 1.3's "certificate required" during libcurl's handshake */
    {CURLE_SSL_CLIENTCERT,
     "TLS connect error: error:0A00045C:SSL routines::tlsv13 alert "
     "certificate required",
     true},
    /* no detail: the code decides */
    {CURLE_SSL_CONNECT_ERROR, "", true},
    {CURLE_SSL_CONNECT_ERROR, NULL, true},
    {CURLE_RECV_ERROR, NULL, false},
};

static void handshake_cut_by_the_network_is_not_a_refusal(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct tls_case *t = &cases[i];

        if (http_tls_refused(t->cc, t->errbuf) != t->refused)
            fail_msg("code %d, \"%s\": expected %s", (int)t->cc, t->errbuf ? t->errbuf : "(null)",
                     t->refused ? "a refusal" : "an outage");
    }
}

static void alert_is_named_by_openssl(void **state)
{
    (void)state;
    assert_true(http_tls_alert(CURLE_RECV_ERROR,
                               "OpenSSL SSL_read: OpenSSL/3.0.19: error:0A00045C:SSL "
                               "routines::tlsv13 alert certificate required, errno 0"));
    assert_false(http_tls_alert(CURLE_RECV_ERROR, "Recv failure: Connection reset by peer"));
    assert_false(http_tls_alert(CURLE_RECV_ERROR, "connection to alert.example: SSL routines"));
    assert_false(http_tls_alert(CURLE_OK, NULL));
    assert_false(http_tls_alert(CURLE_RECV_ERROR, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake_cut_by_the_network_is_not_a_refusal),
        cmocka_unit_test(alert_is_named_by_openssl),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
