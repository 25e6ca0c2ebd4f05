/* probe_http.c - the http probe: the transfer, the body kept for bodyRegex (the first
 * BODY_MAX bytes), and its judgement: status, body, certificate days left (see probe.h). */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "hostpatrol/safe_regex.h"
#include "inspect/probe_internal.h"

#define BODY_MAX   (1u << 20) /* body bytes read (and kept for bodyRegex) */
#define MAX_REDIRS 10L

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct probe *p = arg;
    size_t n = size * nmemb, keep = n;

    if (p->body_seen + n > BODY_MAX) {
        keep = BODY_MAX - p->body_seen;
        p->body_full = true;
    }
    p->body_seen += keep;
    /* out of memory ends the transfer too: http_done reports it */
    if (p->check->u.http.has_body_regex && keep && hp_buf_add(&p->body, data, keep))
        return 0;
    return p->body_full ? 0 : n; /* 0 ends the transfer: enough was read */
}

hp_rc probe_http_start(struct run *r, struct probe *p)
{
    const struct http_check *h = &p->check->u.http;
    CURL *e;
    hp_rc rc;
    size_t i;

    hp_buf_init(&p->body, BODY_MAX);
    rc = probe_easy_start(r, p, h->url);
    if (rc)
        return rc;
    e = p->easy;
    /* the connection is closed once done: the next probe's times are real */
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "hostpatrol-probe");
    if (h->follow_redirects) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, MAX_REDIRS);
    }
    if (h->method && !strcmp(h->method, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (h->method && strcmp(h->method, "GET")) {
        if (curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, h->method) != CURLE_OK)
            return HP_ERR_NOMEM;
    }
    for (i = 0; h->headers && h->headers[i]; i++) {
        struct curl_slist *l = curl_slist_append(p->headers, h->headers[i]);

        if (!l)
            return HP_ERR_NOMEM;
        p->headers = l;
    }
    if (p->headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)p);
    return probe_easy_add(r, p);
}

hp_rc probe_http_done(struct run *r, struct probe *p, CURLcode res)
{
    const struct http_check *h = &p->check->u.http;
    struct check_verdict v = {CHECK_OK, 0, ""};
    long code = 0;
    hp_rc rc;

    if (hp_buf_error(&p->body))
        return HP_ERR_NOMEM;
    curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &code);
    rc = code > 0 ? check_result_set_int(p->out, "status_code", code) : HP_OK;
    if (!rc)
        rc = probe_put_times(p, TIMES_HTTP);
    if (rc)
        return rc;
    if (res == CURLE_WRITE_ERROR && p->body_full)
        res = CURLE_OK; /* we stopped reading at BODY_MAX */
    if (res != CURLE_OK) {
        probe_transport_fail(p, res, NULL, &v);
        return probe_finish(r, p, &v);
    }
    if (h->n_expect_status == 0) {
        if (code < 200 || code > 399)
            check_verdict_add(&v, CHECK_CRIT, "status %ld, expected 2xx or 3xx", code);
    } else {
        char list[256] = "";
        size_t i, o = 0;
        bool ok = false;

        for (i = 0; i < h->n_expect_status; i++) {
            ok = ok || h->expect_status[i] == code;
            if (o < sizeof(list))
                o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%ld",
                                      i == 0                        ? ""
                                      : i + 1 == h->n_expect_status ? " or "
                                                                    : ", ",
                                      h->expect_status[i]);
        }
        if (!ok)
            check_verdict_add(&v, CHECK_CRIT, "status %ld, expected %s", code, list);
    }
    if (h->has_body_regex) {
        switch (safe_regex_match_until(h->body_regex, hp_buf_data(&p->body), hp_buf_len(&p->body),
                                       hp_ctx_deadline_ns(r->ctx))) {
        case SAFE_REGEX_MATCH:
            break;
        case SAFE_REGEX_NO_MATCH:
            check_verdict_add(&v, CHECK_CRIT, "body does not match bodyRegex (%zu bytes read%s)",
                              hp_buf_len(&p->body), p->body_full ? ", the first 1 MiB" : "");
            break;
        case SAFE_REGEX_TOO_COSTLY:
            if (hp_ctx_err(r->ctx))
                check_verdict_add(&v, CHECK_UNKNOWN,
                                  "bodyRegex not matched on %zu bytes within the run's timeout",
                                  hp_buf_len(&p->body));
            else
                check_verdict_add(&v, CHECK_UNKNOWN,
                                  "bodyRegex too costly to match on %zu bytes (stopped at its "
                                  "match limit): simplify the pattern",
                                  hp_buf_len(&p->body));
            break;
        }
    }
    rc = probe_tls_cert_values(p, &v);
    if (rc)
        return rc;
    return probe_finish(r, p, &v);
}
