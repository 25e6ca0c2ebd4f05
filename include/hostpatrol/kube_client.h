/*
 * kube_client.h - requests to the Kubernetes API server (on http_conn: keep-alive connections,
 * every call bounded by a context).
 *
 * Authentication, from the kube_config: client certificate (file or data), a bearer token, a
 * token file re-read whenever it changes (projected ServiceAccount tokens rotate), or an exec
 * credential plugin (client.authentication.k8s.io/v1: its token or client certificate is cached
 * until its expirationTimestamp, and the plugin is run again after a 401).
 *
 * A failed request returns the HTTP status and the server's Status object (reason, message,
 * field causes) to the caller, through struct kube_status and hp_err (err->field is the first
 * cause's field). Codes: 404 NOTFOUND, 409 CONFLICT, 410 GONE, 401/403 AUTH, 400/422 INVALID,
 * 429 FULL, 5xx and transport errors UNAVAILABLE, the context's TIMEOUT / CANCELED.
 *
 * Ownership: kube_client_new copies what it needs from the config. Thread-safety: a client may
 * be used from many threads; its credential cache sits behind one mutex.
 */
#ifndef HOSTPATROL_KUBE_CLIENT_H
#define HOSTPATROL_KUBE_CLIENT_H

#include <jansson.h>

#include "hostpatrol/ctx.h"
#include "hostpatrol/kube_config.h"

#define KUBE_MAX_CAUSES 8

struct kube_status {
    long code;       /* HTTP status */
    char reason[64]; /* e.g. "NotFound", "AlreadyExists", "Invalid", "Forbidden" */
    char message[1024];
    struct {
        char field[256];
        char reason[64];
        char message[512];
    } causes[KUBE_MAX_CAUSES];
    size_t n_causes;
};

struct kube_client;

hp_rc kube_client_new(const struct kube_config *cfg, struct kube_client **out,
                      struct hp_err *err) HP_WUR;
void kube_client_free(struct kube_client *c); /* NULL allowed */

/* kube_request: METHOD path (e.g. "/api/v1/namespaces") with an optional JSON body (borrowed)
 * and content type (NULL: application/json; merge patches: application/merge-patch+json).
 * On 2xx, *out (may be NULL as an argument) gets the parsed answer (owned; NULL for an empty
 * body). On failure, st (may be NULL) and err describe the server's answer. */
hp_rc kube_request(struct kube_client *c, struct hp_ctx *ctx, const char *method, const char *path,
                   json_t *body, const char *content_type, json_t **out, struct kube_status *st,
                   struct hp_err *err) HP_WUR;

/* kube_stream: GET path as a stream of newline-delimited JSON objects (a watch). on_object is
 * called for each complete object in order (obj borrowed for the call); an object may span
 * reads and one read may hold several. Returning false from on_object ends the stream (HP_OK).
 * stall_ms > 0 ends a stream silent for that long with HP_ERR_TIMEOUT. Returns HP_OK when the
 * server ends the stream, else as kube_request (a 410 answer is HP_ERR_GONE). */
hp_rc kube_stream(struct kube_client *c, struct hp_ctx *ctx, const char *path, int64_t stall_ms,
                  bool (*on_object)(void *arg, json_t *obj), void *arg, struct kube_status *st,
                  struct hp_err *err) HP_WUR;

/* kube_client_namespace: the namespace of the config's context (borrowed). */
const char *kube_client_namespace(const struct kube_client *c);

#endif
