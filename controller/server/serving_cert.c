/* serving_cert.c - the metrics server's TLS pair (see include/hostpatrol/serving_cert.h). */
#include "hostpatrol/serving_cert.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/ctx.h"

#define CERT_FILE_MAX (1u << 20) /* a longer tls.crt or tls.key is refused */

/* One loaded pair: its parsed form and its PEM. */
struct pair {
    X509 *leaf;
    STACK_OF(X509) * chain; /* intermediates after the leaf, may be empty */
    EVP_PKEY *key;
    char *cert_pem, *key_pem; /* owned */
    size_t cert_len, key_len;
};

struct serving_cert {
    char *crt_path, *key_path; /* owned; NULL when self-signed */
    /* mu guards cur, the change times, last_check_ns and the counters */
    pthread_mutex_t mu;
    struct pair cur;
    struct timespec crt_mtime, key_mtime;
    int64_t last_check_ns;
    uint64_t reloads, failed;
};

static void pair_release(struct pair *p)
{
    X509_free(p->leaf);
    sk_X509_pop_free(p->chain, X509_free);
    EVP_PKEY_free(p->key);
    hp_free(p->cert_pem);
    if (p->key_pem) {
        OPENSSL_cleanse(p->key_pem, p->key_len);
        hp_free(p->key_pem);
    }
    *p = (struct pair){0};
}

/* bio_take: the contents of a memory BIO as an owned NUL-terminated string. */
static char *bio_take(BIO *b, size_t *len)
{
    char *data = NULL, *s;
    long n = BIO_get_mem_data(b, &data);

    if (n < 0 || !(s = hp_malloc((size_t)n + 1)))
        return NULL;
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    *len = (size_t)n;
    return s;
}

/* pair_parse: cert and key PEM (borrowed) into *p (parsed, with copies of the PEM). */
static hp_rc pair_parse(const char *cert, size_t cert_len, const char *key, size_t key_len,
                        struct pair *p, struct hp_err *err)
{
    BIO *b = NULL;
    X509 *x;
    hp_rc rc = HP_OK;

    *p = (struct pair){0};
    b = BIO_new_mem_buf(cert, (int)cert_len);
    if (!b || !(p->leaf = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        rc = hp_err_set(err, HP_ERR_INVALID, "no PEM certificate in tls.crt");
        goto out;
    }
    if (!(p->chain = sk_X509_new_null())) {
        rc = hp_err_set(err, HP_ERR_NOMEM, "out of memory reading tls.crt");
        goto out;
    }
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
        if (!sk_X509_push(p->chain, x)) {
            X509_free(x);
            rc = hp_err_set(err, HP_ERR_NOMEM, "out of memory reading tls.crt");
            goto out;
        }
    ERR_clear_error(); /* the end of the chain is reported as an error */
    BIO_free(b);
    b = BIO_new_mem_buf(key, (int)key_len);
    if (!b || !(p->key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL))) {
        rc = hp_err_set(err, HP_ERR_INVALID, "no PEM private key in tls.key");
        goto out;
    }
    if (X509_check_private_key(p->leaf, p->key) != 1) {
        rc = hp_err_set(err, HP_ERR_INVALID, "tls.key does not match the certificate in tls.crt");
        goto out;
    }
    p->cert_pem = hp_strndup(cert, cert_len);
    p->key_pem = hp_strndup(key, key_len);
    if (!p->cert_pem || !p->key_pem) {
        rc = hp_err_set(err, HP_ERR_NOMEM, "out of memory keeping the certificate");
        goto out;
    }
    p->cert_len = cert_len;
    p->key_len = key_len;
out:
    BIO_free(b);
    ERR_clear_error();
    if (rc)
        pair_release(p);
    return rc;
}

/* self_signed: a new ECDSA P-256 key and a certificate for it, valid for a year. */
static hp_rc self_signed(struct pair *p, struct hp_err *err)
{
    EVP_PKEY *pk = NULL;
    X509 *x = NULL;
    X509_EXTENSION *ext = NULL;
    X509V3_CTX v3;
    BIGNUM *bn = NULL;
    BIO *cb = NULL, *kb = NULL;
    char host[256] = "", san[512];
    char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    unsigned char serial[16];
    hp_rc rc = HP_ERR_INTERNAL;

    if (gethostname(host, sizeof(host) - 1))
        host[0] = '\0';
    host[sizeof(host) - 1] = '\0';
    snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1%s%s", host[0] ? ",DNS:" : "",
             host);
    if (!(pk = EVP_EC_gen("P-256")) || !(x = X509_new()) || RAND_bytes(serial, sizeof(serial)) != 1)
        goto out;
    serial[0] &= 0x7f; /* a positive serial */
    if (!(bn = BN_bin2bn(serial, sizeof(serial), NULL)) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) || !X509_set_version(x, 2) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600) ||
        !X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                    (const unsigned char *)"hostpatrol-metrics", -1, -1, 0) ||
        !X509_set_issuer_name(x, X509_get_subject_name(x)) || !X509_set_pubkey(x, pk))
        goto out;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    if (!(ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san)) ||
        !X509_add_ext(x, ext, -1) || !X509_sign(x, pk, EVP_sha256()))
        goto out;
    if (!(cb = BIO_new(BIO_s_mem())) || !(kb = BIO_new(BIO_s_mem())) ||
        !PEM_write_bio_X509(cb, x) || !PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL))
        goto out;
    if (!(cert = bio_take(cb, &cert_len)) || !(key = bio_take(kb, &key_len))) {
        rc = HP_ERR_NOMEM;
        goto out;
    }
    rc = pair_parse(cert, cert_len, key, key_len, p, err);
    goto done;
out:
    hp_err_set(err, rc, "cannot generate a self-signed serving certificate");
done:
    ERR_clear_error();
    hp_free(cert);
    if (key) {
        OPENSSL_cleanse(key, key_len);
        hp_free(key);
    }
    BIO_free(cb);
    BIO_free(kb);
    BN_free(bn);
    X509_EXTENSION_free(ext);
    X509_free(x);
    EVP_PKEY_free(pk);
    return rc;
}

/* read_file: a whole small file (owned, NUL-terminated) and its change time. */
static hp_rc read_file(const char *path, char **out, size_t *len, struct timespec *mtime,
                       struct hp_err *err)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *buf = NULL;
    size_t n;
    char ebuf[128];

    *out = NULL;
    if (!f)
        return hp_err_set(err, HP_ERR_INVALID, "cannot read %s: %s", path,
                          strerror_r(errno, ebuf, sizeof(ebuf)));
    if (fstat(fileno(f), &st) || st.st_size < 0 || (size_t)st.st_size > CERT_FILE_MAX) {
        fclose(f);
        return hp_err_set(err, HP_ERR_INVALID, "%s is not a file of at most %u bytes", path,
                          CERT_FILE_MAX);
    }
    buf = hp_malloc((size_t)st.st_size + 1);
    if (!buf) {
        fclose(f);
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory reading %s", path);
    }
    n = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    *mtime = st.st_mtim;
    return HP_OK;
}

/* load_files: parse the two files into *p, with their change times. */
static hp_rc load_files(struct serving_cert *c, struct pair *p, struct timespec *crt_mtime,
                        struct timespec *key_mtime, struct hp_err *err)
{
    char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    hp_rc rc;

    rc = read_file(c->crt_path, &cert, &cert_len, crt_mtime, err);
    if (!rc)
        rc = read_file(c->key_path, &key, &key_len, key_mtime, err);
    if (!rc)
        rc = pair_parse(cert, cert_len, key, key_len, p, err);
    hp_free(cert);
    if (key) {
        OPENSSL_cleanse(key, key_len);
        hp_free(key);
    }
    return rc;
}

hp_rc serving_cert_new(const char *cert_dir, struct serving_cert **out, struct hp_err *err)
{
    struct serving_cert *c;
    char path[4096];
    hp_rc rc = HP_OK;

    *out = NULL;
    c = hp_calloc(1, sizeof(*c));
    if (!c)
        return hp_err_set(err, HP_ERR_NOMEM, "out of memory for the serving certificate");
    pthread_mutex_init(&c->mu, NULL);
    if (!cert_dir || !cert_dir[0]) {
        rc = self_signed(&c->cur, err);
        goto out;
    }
    snprintf(path, sizeof(path), "%s/tls.crt", cert_dir);
    c->crt_path = hp_strdup(path);
    snprintf(path, sizeof(path), "%s/tls.key", cert_dir);
    c->key_path = hp_strdup(path);
    if (!c->crt_path || !c->key_path) {
        rc = hp_err_set(err, HP_ERR_NOMEM, "out of memory for the serving certificate");
        goto out;
    }
    rc = load_files(c, &c->cur, &c->crt_mtime, &c->key_mtime, err);
    if (rc) {
        char msg[HP_ERR_MSG_MAX];

        snprintf(msg, sizeof(msg), "%s", err ? err->msg : "");
        rc = hp_err_field(err, rc == HP_ERR_NOMEM ? rc : HP_ERR_INVALID, "metrics-cert-dir",
                          "--metrics-cert-dir %s: %.400s", cert_dir, msg);
        goto out;
    }
    c->last_check_ns = hp_now_ns();
out:
    if (rc) {
        serving_cert_free(c);
        return rc;
    }
    *out = c;
    return HP_OK;
}

void serving_cert_free(struct serving_cert *c)
{
    if (!c)
        return;
    pair_release(&c->cur);
    hp_free(c->crt_path);
    hp_free(c->key_path);
    pthread_mutex_destroy(&c->mu);
    hp_free(c);
}

void serving_cert_pem(struct serving_cert *c, const char **cert, size_t *cert_len, const char **key,
                      size_t *key_len)
{
    pthread_mutex_lock(&c->mu);
    *cert = c->cur.cert_pem;
    *cert_len = c->cur.cert_len;
    *key = c->cur.key_pem;
    *key_len = c->cur.key_len;
    pthread_mutex_unlock(&c->mu);
}

static bool ts_eq(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* refresh_locked: the refresh, under mu. */
static hp_rc refresh_locked(struct serving_cert *c, struct hp_err *err)
{
    struct stat a, b;
    struct timespec cm, km;
    struct pair p;
    hp_rc rc;

    c->last_check_ns = hp_now_ns();
    if (!c->crt_path)
        return HP_OK;
    if (stat(c->crt_path, &a) || stat(c->key_path, &b))
        return HP_OK; /* mid-rotation (a Secret volume swaps a symlink): try again later */
    if (ts_eq(&a.st_mtim, &c->crt_mtime) && ts_eq(&b.st_mtim, &c->key_mtime))
        return HP_OK;
    rc = load_files(c, &p, &cm, &km, err);
    if (rc) {
        c->failed++;
        /* the same files are not tried again until they change once more */
        c->crt_mtime = a.st_mtim;
        c->key_mtime = b.st_mtim;
        return rc;
    }
    pair_release(&c->cur);
    c->cur = p;
    c->crt_mtime = cm;
    c->key_mtime = km;
    c->reloads++;
    return HP_OK;
}

hp_rc serving_cert_refresh(struct serving_cert *c, struct hp_err *err)
{
    hp_rc rc;

    pthread_mutex_lock(&c->mu);
    rc = refresh_locked(c, err);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* on_handshake: OpenSSL's certificate callback: hand this connection the current pair. */
static int on_handshake(SSL *ssl, void *arg)
{
    struct serving_cert *c = arg;
    int ok;

    pthread_mutex_lock(&c->mu);
    if (hp_now_ns() - c->last_check_ns > (int64_t)SERVING_CERT_CHECK_MS * 1000000) {
        struct hp_err e = {0};

        (void)refresh_locked(c, &e); /* counted in failed; the old pair stays */
    }
    ok = SSL_use_certificate(ssl, c->cur.leaf) == 1 && SSL_use_PrivateKey(ssl, c->cur.key) == 1 &&
         SSL_set1_chain(ssl, c->cur.chain) == 1;
    pthread_mutex_unlock(&c->mu);
    ERR_clear_error();
    return ok ? 1 : 0;
}

void serving_cert_attach(struct serving_cert *c, void *ssl_ctx)
{
    if (c && ssl_ctx)
        SSL_CTX_set_cert_cb(ssl_ctx, on_handshake, c);
}

void serving_cert_stats(struct serving_cert *c, struct serving_cert_stats *out)
{
    *out = (struct serving_cert_stats){0};
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    out->reloads = c->reloads;
    out->failed = c->failed;
    out->self_signed = c->crt_path == NULL;
    pthread_mutex_unlock(&c->mu);
}
