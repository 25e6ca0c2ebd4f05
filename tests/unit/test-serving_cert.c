/* test-serving_cert.c - unit tests of controller/server/serving_cert.c: a self-signed pair (key
 * matches, SANs, validity), a pair from a directory, errors naming the flag, a rotation picked up
 * on refresh, and a broken rotation keeping the old pair. Certificates are made here with
 * OpenSSL, in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/serving_cert.h"

/* cn_of: the subject CN of the first certificate in pem, into buf. */
static void cn_of(const char *pem, size_t len, char *buf, size_t n)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

    assert_non_null(x);
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)n) >
                0);
    X509_free(x);
    BIO_free(b);
}

static void self_signed_pair_is_usable(void **state)
{
    struct serving_cert *c = NULL;
    struct serving_cert_stats st;
    struct hp_err err = {0};
    const char *cert, *key;
    size_t cl, kl;
    BIO *b;
    X509 *x;
    EVP_PKEY *k;
    GENERAL_NAMES *san;
    char cn[64];

    (void)state;
    assert_int_equal(serving_cert_new(NULL, &c, &err), HP_OK);
    serving_cert_pem(c, &cert, &cl, &key, &kl);
    assert_non_null(strstr(cert, "BEGIN CERTIFICATE"));
    assert_non_null(strstr(key, "PRIVATE KEY"));
    cn_of(cert, cl, cn, sizeof(cn));
    assert_string_equal(cn, "hostpatrol-metrics");
    b = BIO_new_mem_buf(cert, (int)cl);
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    b = BIO_new_mem_buf(key, (int)kl);
    k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_int_equal(X509_check_private_key(x, k), 1);
    /* valid now and for months; names localhost and 127.0.0.1 */
    assert_true(X509_cmp_current_time(X509_get0_notBefore(x)) < 0);
    {
        time_t later = time(NULL) + 300L * 24 * 3600;

        assert_true(X509_cmp_time(X509_get0_notAfter(x), &later) > 0);
    }
    san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(san);
    assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    GENERAL_NAMES_free(san);
    X509_free(x);
    EVP_PKEY_free(k);
    /* nothing to re-read */
    assert_int_equal(serving_cert_refresh(c, &err), HP_OK);
    serving_cert_stats(c, &st);
    assert_int_equal(st.self_signed, 1);
    assert_int_equal(st.reloads, 0);
    serving_cert_free(c);
    serving_cert_free(NULL);
}

/* write_pair: a self-signed pair with subject CN cn into dir/tls.crt and dir/tls.key. */
static void write_pair(const char *dir, const char *cn)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    char path[512];
    FILE *f;

    assert_non_null(k);
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, k);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    snprintf(path, sizeof(path), "%s/tls.key.tmp", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    snprintf(path, sizeof(path), "%s/tls.crt.tmp", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    {
        char from[512], to[512];

        snprintf(from, sizeof(from), "%s/tls.key.tmp", dir);
        snprintf(to, sizeof(to), "%s/tls.key", dir);
        assert_int_equal(rename(from, to), 0);
        snprintf(from, sizeof(from), "%s/tls.crt.tmp", dir);
        snprintf(to, sizeof(to), "%s/tls.crt", dir);
        assert_int_equal(rename(from, to), 0);
    }
    X509_free(x);
    EVP_PKEY_free(k);
}

static void current_cn(struct serving_cert *c, char *cn, size_t n)
{
    const char *cert, *key;
    size_t cl, kl;

    serving_cert_pem(c, &cert, &cl, &key, &kl);
    cn_of(cert, cl, cn, n);
}

static void files_load_rotate_and_refuse(void **state)
{
    char dir[] = "/tmp/hp-serving-cert-XXXXXX", path[512], cn[64];
    struct serving_cert *c = NULL;
    struct serving_cert_stats st;
    struct hp_err err = {0};
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    /* missing files: an error naming the flag and the file */
    assert_int_equal(serving_cert_new(dir, &c, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "metrics-cert-dir");
    assert_non_null(strstr(err.msg, "tls.crt"));
    write_pair(dir, "one");
    hp_err_clear(&err);
    assert_int_equal(serving_cert_new(dir, &c, &err), HP_OK);
    current_cn(c, cn, sizeof(cn));
    assert_string_equal(cn, "one");
    /* rotated: a newer pair on refresh */
    usleep(20000); /* a different modification time */
    write_pair(dir, "two");
    assert_int_equal(serving_cert_refresh(c, &err), HP_OK);
    current_cn(c, cn, sizeof(cn));
    assert_string_equal(cn, "two");
    /* a key that does not match the certificate: refused, the old pair kept */
    usleep(20000);
    {
        char keep[512];

        snprintf(keep, sizeof(keep), "%s/tls.key", dir);
        snprintf(path, sizeof(path), "%s/saved.key", dir);
        assert_int_equal(rename(keep, path), 0);
        write_pair(dir, "three");
        assert_int_equal(rename(path, keep), 0); /* three's certificate, two's key */
    }
    hp_err_clear(&err);
    assert_int_equal(serving_cert_refresh(c, &err), HP_ERR_INVALID);
    assert_non_null(strstr(err.msg, "does not match"));
    current_cn(c, cn, sizeof(cn));
    assert_string_equal(cn, "two");
    /* garbage: refused too; not retried until the files change again */
    usleep(20000);
    snprintf(path, sizeof(path), "%s/tls.crt", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("garbage\n", f);
    fclose(f);
    assert_int_equal(serving_cert_refresh(c, &err), HP_ERR_INVALID);
    assert_int_equal(serving_cert_refresh(c, &err), HP_OK);
    serving_cert_stats(c, &st);
    assert_int_equal(st.reloads, 1);
    assert_int_equal(st.failed, 2);
    assert_int_equal(st.self_signed, 0);
    serving_cert_free(c);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    assert_int_equal(system(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(self_signed_pair_is_usable),
        cmocka_unit_test(files_load_rotate_and_refuse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
