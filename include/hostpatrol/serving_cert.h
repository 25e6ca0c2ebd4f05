/*
 * serving_cert.h - the TLS certificate of the metrics server: tls.crt / tls.key from a directory
 * (re-read when the files change, e.g. a cert-manager Secret rotated under a mounted volume), or
 * a self-signed one generated in memory at start (ECDSA P-256, valid one year, SANs localhost,
 * 127.0.0.1, ::1 and the host name) when no directory is given - kubebuilder's behaviour.
 *
 * Invariant: a serving_cert always holds a matching certificate and key; a rotation that cannot
 * be loaded (half-written files, a key that does not match) keeps the previous pair and is
 * counted in serving_cert_stats.failed.
 *
 * Ownership: strings passed in are copied. serving_cert_pem returns borrowed PEM valid until the
 * next serving_cert_refresh or serving_cert_free. Thread-safety: one mutex guards the current
 * pair; serving_cert_attach's callback runs on whichever thread performs TLS handshakes.
 * Blocking: file reads of two small local files; key generation takes a few milliseconds.
 */
#ifndef HOSTPATROL_SERVING_CERT_H
#define HOSTPATROL_SERVING_CERT_H

#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/rc.h"

#define SERVING_CERT_CHECK_MS 10000 /* how often the files' change times are looked at */

struct serving_cert;

/* serving_cert_new: from cert_dir/tls.crt and cert_dir/tls.key (cert_dir borrowed), or a
 * self-signed pair when cert_dir is NULL or "". Unreadable or mismatched files: HP_ERR_INVALID
 * naming field "metrics-cert-dir". *out owned. */
hp_rc serving_cert_new(const char *cert_dir, struct serving_cert **out, struct hp_err *err) HP_WUR;
void serving_cert_free(struct serving_cert *c); /* NULL allowed */

/* serving_cert_pem: the current certificate and key as PEM (borrowed, NUL-terminated). */
void serving_cert_pem(struct serving_cert *c, const char **cert, size_t *cert_len, const char **key,
                      size_t *key_len);

/* serving_cert_refresh: re-read the files if their change time moved (no-op for a self-signed
 * pair). Returns HP_OK when the pair in use is good (new or kept); an unloadable rotation is
 * HP_ERR_INVALID with the reason in err, and the old pair stays. */
hp_rc serving_cert_refresh(struct serving_cert *c, struct hp_err *err) HP_WUR;

/* serving_cert_attach: make every TLS handshake of ssl_ctx (an OpenSSL SSL_CTX *, borrowed; c
 * must outlive it) use the current pair, refreshed at most every SERVING_CERT_CHECK_MS. */
void serving_cert_attach(struct serving_cert *c, void *ssl_ctx);

struct serving_cert_stats {
    uint64_t reloads; /* rotations picked up */
    uint64_t failed;  /* rotations refused (old pair kept) */
    int self_signed;
};
void serving_cert_stats(struct serving_cert *c, struct serving_cert_stats *out);

#endif
