/* probe_dns.c - the dns probe: getaddrinfo_a (GAI_NOWAIT) polled from the run's loop, the
 * judgement of the addresses, and the requests glibc could not cancel (parked on a process-wide
 * list until glibc is done with them). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "hostpatrol/alloc.h"
#include "inspect/probe_internal.h"

#define DNS_POLL_MAX_MS 10 /* gai_error polling interval, at most */

/* One getaddrinfo_a request; glibc reads name and hints and writes cb while it runs. */
struct dns_req {
    struct gaicb cb;
    struct addrinfo hints;
    struct dns_req *next; /* orphan list */
    char name[];
};

/* ---- dns requests glibc could not cancel: freed once glibc is done with them ---- */

static pthread_mutex_t orphan_lock = PTHREAD_MUTEX_INITIALIZER; /* guards orphans */
static struct dns_req *orphans;

static void dns_req_free(struct dns_req *q)
{
    if (!q)
        return;
    if (q->cb.ar_result)
        freeaddrinfo(q->cb.ar_result);
    hp_free(q);
}

void probe_dns_reap(void)
{
    struct dns_req **pp, *q;

    pthread_mutex_lock(&orphan_lock);
    for (pp = &orphans; (q = *pp);) {
        if (gai_error(&q->cb) == EAI_INPROGRESS) {
            pp = &q->next;
            continue;
        }
        *pp = q->next;
        dns_req_free(q);
    }
    pthread_mutex_unlock(&orphan_lock);
}

/* probe_dns_abandon: the probe no longer wants q. Cancel it; if glibc is running it, park it. */
void probe_dns_abandon(struct dns_req *q)
{
    if (gai_cancel(&q->cb) == EAI_NOTCANCELED && gai_error(&q->cb) == EAI_INPROGRESS) {
        pthread_mutex_lock(&orphan_lock);
        q->next = orphans;
        orphans = q;
        pthread_mutex_unlock(&orphan_lock);
        return;
    }
    dns_req_free(q);
}

/* ---- dns ---- */

hp_rc probe_dns_start(struct run *r, struct probe *p)
{
    const char *name = p->check->u.dns.name;
    size_t len = strlen(name);
    struct dns_req *q = hp_calloc(1, sizeof(*q) + len + 1);
    struct gaicb *list[1];
    struct check_verdict v = {CHECK_OK, 0, ""};
    int g;

    if (!q)
        return HP_ERR_NOMEM;
    memcpy(q->name, name, len + 1);
    q->hints.ai_family = AF_UNSPEC;
    q->hints.ai_socktype = SOCK_STREAM; /* one entry per address */
    q->cb.ar_name = q->name;
    q->cb.ar_request = &q->hints;
    list[0] = &q->cb;
    g = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
    if (g) {
        hp_free(q);
        if (g == EAI_MEMORY)
            return HP_ERR_NOMEM;
        check_verdict_add(&v, CHECK_UNKNOWN, "cannot start resolving %s: %s", name,
                          gai_strerror(g));
        return probe_finish(r, p, &v);
    }
    p->dns = q;
    p->phase = PH_DNS;
    r->n_dns++;
    return HP_OK;
}

static bool array_has(const json_t *a, const char *s)
{
    size_t i;

    for (i = 0; i < json_array_size(a); i++)
        if (!strcmp(json_string_value(json_array_get(a, i)), s))
            return true;
    return false;
}

/* canon_addr: an IP literal in inet_ntop's form (so "::0001" equals "::1"); else s. */
static const char *canon_addr(const char *s, char *buf, size_t cap)
{
    unsigned char a[sizeof(struct in6_addr)];

    if (inet_pton(AF_INET, s, a) == 1 && inet_ntop(AF_INET, a, buf, (socklen_t)cap))
        return buf;
    if (inet_pton(AF_INET6, s, a) == 1 && inet_ntop(AF_INET6, a, buf, (socklen_t)cap))
        return buf;
    return s;
}

static void append_word(char *buf, size_t cap, const char *w)
{
    size_t o = strlen(buf);

    if (o + 1 < cap) {
        snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", w);
        check_result_trim_utf8(buf + o); /* cut at cap: never inside a character */
    }
}

static void dns_compare(const json_t *got, char *const *expect, struct check_verdict *v)
{
    char missing[400] = "", unexpected[400] = "", a[INET6_ADDRSTRLEN + 1];
    size_t i, k;

    for (k = 0; expect[k]; k++)
        if (!array_has(got, canon_addr(expect[k], a, sizeof(a))))
            append_word(missing, sizeof(missing), expect[k]);
    for (i = 0; i < json_array_size(got); i++) {
        const char *g = json_string_value(json_array_get(got, i));
        bool found = false;

        for (k = 0; expect[k] && !found; k++)
            found = !strcmp(canon_addr(expect[k], a, sizeof(a)), g);
        if (!found)
            append_word(unexpected, sizeof(unexpected), g);
    }
    if (missing[0] || unexpected[0])
        check_verdict_add(v, CHECK_CRIT, "addresses differ from expectAddresses:%s%s%s%s%s",
                          missing[0] ? " missing " : "", missing,
                          missing[0] && unexpected[0] ? ";" : "",
                          unexpected[0] ? " unexpected " : "", unexpected);
}

static hp_rc dns_done(struct run *r, struct probe *p, int g)
{
    const struct dns_check *d = &p->check->u.dns;
    struct check_verdict v = {CHECK_OK, 0, ""};
    struct dns_req *q = p->dns;
    const struct addrinfo *ai;
    json_t *addrs = NULL;
    hp_rc rc;

    p->dns = NULL;
    r->n_dns--;
    rc = probe_put_ms(p, "resolve_ms", probe_elapsed_us(p));
    if (rc)
        goto out;
    if (g == EAI_NONAME || g == EAI_NODATA) {
        check_verdict_add(&v, CHECK_CRIT, "name does not resolve: %s (%s)", d->name,
                          gai_strerror(g));
    } else if (g) {
        check_verdict_add(&v, CHECK_CRIT, "resolving %s failed: %s", d->name, gai_strerror(g));
    } else {
        addrs = json_array();
        if (!addrs) {
            rc = HP_ERR_NOMEM;
            goto out;
        }
        for (ai = q->cb.ar_result; ai; ai = ai->ai_next) {
            char a[INET6_ADDRSTRLEN + 1];
            const void *src = NULL;

            if (ai->ai_family == AF_INET)
                src = &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
            else if (ai->ai_family == AF_INET6)
                src = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
            if (!src || !inet_ntop(ai->ai_family, src, a, sizeof(a)) || array_has(addrs, a))
                continue;
            if (json_array_append_new(addrs, json_string(a))) {
                rc = HP_ERR_NOMEM;
                goto out;
            }
        }
        if (d->expect_addrs && d->expect_addrs[0])
            dns_compare(addrs, d->expect_addrs, &v);
        else if (!json_array_size(addrs)) /* e.g. only records of another family */
            check_verdict_add(&v, CHECK_CRIT, "name resolves to no address");
        rc = probe_put(p, "addresses", addrs);
        addrs = NULL;
        if (rc)
            goto out;
    }
    rc = probe_finish(r, p, &v);
out:
    json_decref(addrs);
    dns_req_free(q);
    return rc;
}

/* probe_dns_poll: judge finished requests; *pending: some are still running. */
hp_rc probe_dns_poll(struct run *r, bool *pending)
{
    size_t i;
    hp_rc rc;

    *pending = false;
    for (i = 0; r->n_dns && i < r->n; i++) {
        struct probe *p = &r->p[i];
        int g;

        if (p->phase != PH_DNS)
            continue;
        g = gai_error(&p->dns->cb);
        if (g == EAI_INPROGRESS) {
            *pending = true;
            continue;
        }
        rc = dns_done(r, p, g);
        if (rc)
            return rc;
    }
    return HP_OK;
}

/* probe_dns_interval: how long to sleep between gai_error polls: short at first (fast answers
 * get a precise resolve_ms), then up to DNS_POLL_MAX_MS. */
int probe_dns_interval(const struct run *r)
{
    int64_t ms = (hp_now_ns() - r->start_ns) / 1000000 / 20;

    return ms < 1 ? 1 : ms > DNS_POLL_MAX_MS ? DNS_POLL_MAX_MS : (int)ms;
}
