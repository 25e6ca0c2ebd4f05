/* etcd_grpc.c - what an etcd gRPC answer means (see etcd_grpc_classify in etcd_internal.h). */
#include <stdio.h>
#include <string.h>

#include "etcd/etcd_internal.h"

hp_rc etcd_grpc_classify(const struct grpc_result *x, bool write, const char *ep,
                         const char *method, bool *next_endpoint, struct hp_err *err)
{
    const char *why;
    hp_rc rc;

    *next_endpoint = false;
    if (x->grpc_status > 0) {
        /* the server's decision, also when it reset the stream after a trailers-only answer */
        rc = etcd_answer_rc(x->grpc_status, 200, x->grpc_message, write);
        hp_err_set(err, rc, "etcd %s %s: gRPC status %d: %s", ep, method, x->grpc_status,
                   x->grpc_message[0] ? x->grpc_message : "no message");
        return rc;
    }
    if (x->grpc_status == 0 && x->cc == CURLE_OK && !x->malformed && !x->overflow && x->msg)
        return HP_OK;
    if (x->grpc_status == 0 || (x->cc == CURLE_OK && !x->ctx_rc)) {
        /* an answer, but not a whole one: no status (the stream or the member went away
         * before its trailers: libcurl 7.88 may call a reset body complete), a cut body, a bad
         * frame, too large. A read without a status is a transport failure (retried); one with
         * status OK and a bad message is the server's fault */
        why = x->overflow == 2     ? "out of memory for the answer"
              : x->overflow        ? "answer too large"
              : x->grpc_status < 0 ? "answer without a gRPC status"
              : x->malformed       ? "answer is not one gRPC message"
              : x->cc == CURLE_OK  ? "status OK without a message"
                                   : "status OK, then the stream failed";
        rc = write                                ? HP_ERR_UNKNOWN_OUTCOME
             : x->overflow == 2                   ? HP_ERR_NOMEM
             : x->grpc_status < 0 && !x->overflow ? HP_ERR_UNAVAILABLE
                                                  : HP_ERR_PROTOCOL;
        hp_err_set(err, rc, "etcd %s %s: %s%s", ep, method, why, write ? " (outcome unknown)" : "");
        return rc;
    }
    if (x->refused) {
        /* HTTP/2 REFUSED_STREAM: the server processed nothing */
        *next_endpoint = true;
        return hp_err_set(err, HP_ERR_UNAVAILABLE, "etcd %s %s: stream refused", ep, method);
    }
    if (x->sent || x->ctx_rc) {
        /* it may have reached the server: never re-sent */
        if (write && x->sent)
            rc = HP_ERR_UNKNOWN_OUTCOME;
        else if (x->ctx_rc)
            rc = x->ctx_rc;
        else if (x->cc == CURLE_OPERATION_TIMEDOUT)
            rc = HP_ERR_TIMEOUT;
        else
            rc = HP_ERR_UNAVAILABLE;
        hp_err_set(err, rc, "etcd %s %s: %s%s", ep, method,
                   x->ctx_rc == HP_ERR_CANCELED ? "cancelled"
                   : x->ctx_rc                  ? "deadline passed"
                   : x->errbuf[0]               ? x->errbuf
                                                : curl_easy_strerror(x->cc),
                   rc == HP_ERR_UNKNOWN_OUTCOME ? " after the request was sent (outcome unknown)"
                                                : "");
        return rc;
    }
    /* provably never left: the next endpoint may take it */
    *next_endpoint = true;
    return hp_err_set(err, HP_ERR_UNAVAILABLE, "etcd %s %s: %s", ep, method,
                      x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->cc));
}
