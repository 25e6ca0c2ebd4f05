/* inspect_policy.c - the admin's policy on what a HostInspection may inspect (see
 * include/hostpatrol/inspect_policy.h). */
#include "hostpatrol/inspect_policy.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hostpatrol/alloc.h"

#define HOST_MAX 256

enum rule_kind { RULE_NET, RULE_NAME, RULE_DOMAIN };

struct inspect_policy_rule {
    enum rule_kind kind;
    int family;              /* RULE_NET: AF_INET or AF_INET6 */
    unsigned char addr[16];  /* RULE_NET: network address */
    int bits;                /* RULE_NET: prefix length */
    char name[HOST_MAX];     /* RULE_NAME / RULE_DOMAIN: lower case, no trailing dot */
    char text[HOST_MAX + 8]; /* as given */
};

/* lower_name: host in lower case without a trailing dot into buf; false if it does not fit */
static bool lower_name(const char *host, char *buf, size_t cap)
{
    size_t n = strlen(host), i;

    if (n && host[n - 1] == '.')
        n--;
    if (n >= cap)
        return false;
    for (i = 0; i < n; i++)
        buf[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] - 'A' + 'a' : host[i]);
    buf[n] = '\0';
    return true;
}

/* parse_addr: an IPv4 or IPv6 literal (IPv6 possibly in brackets) into family and 16 bytes */
static bool parse_addr(const char *s, int *family, unsigned char out[16])
{
    char buf[64];
    size_t n = strlen(s);

    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        if (n - 2 >= sizeof(buf))
            return false;
        memcpy(buf, s + 1, n - 2);
        buf[n - 2] = '\0';
        s = buf;
    }
    memset(out, 0, 16);
    if (inet_pton(AF_INET, s, out) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, out) == 1) {
        *family = AF_INET6;
        return true;
    }
    return false;
}

static bool valid_name(const char *s)
{
    size_t i;

    if (!*s)
        return false;
    for (i = 0; s[i]; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static hp_rc rule_parse(const char *flag, const char *text, struct inspect_policy_rule *r,
                        struct hp_err *err)
{
    char buf[HOST_MAX];
    const char *slash = strchr(text, '/');

    memset(r, 0, sizeof(*r));
    if (strlen(text) >= sizeof(buf))
        return hp_err_field(err, HP_ERR_INVALID, flag, "%s: rule \"%.64s...\" is too long", flag,
                            text);
    snprintf(r->text, sizeof(r->text), "%s", text);
    if (slash) {
        char *end = NULL;
        long bits;

        memcpy(buf, text, (size_t)(slash - text));
        buf[slash - text] = '\0';
        bits = strtol(slash + 1, &end, 10);
        if (!parse_addr(buf, &r->family, r->addr) || !slash[1] || *end || bits < 0 ||
            bits > (r->family == AF_INET ? 32 : 128))
            return hp_err_field(err, HP_ERR_INVALID, flag,
                                "%s: \"%s\" is not a CIDR (address/prefix length)", flag, text);
        r->kind = RULE_NET;
        r->bits = (int)bits;
        return HP_OK;
    }
    if (parse_addr(text, &r->family, r->addr)) {
        r->kind = RULE_NET;
        r->bits = r->family == AF_INET ? 32 : 128;
        return HP_OK;
    }
    r->kind = text[0] == '.' ? RULE_DOMAIN : RULE_NAME;
    if (!lower_name(text + (r->kind == RULE_DOMAIN), r->name, sizeof(r->name)) ||
        !valid_name(r->name))
        return hp_err_field(err, HP_ERR_INVALID, flag,
                            "%s: \"%s\" is neither a CIDR, an address, a host name nor a "
                            ".domain",
                            flag, text);
    return HP_OK;
}

/* list_next: the next item of a comma list at *s (blanks around it trimmed, empty items
 * skipped) as *item / *len; false at the end */
static bool list_next(const char **s, const char **item, size_t *len)
{
    for (;;) {
        const char *b = *s, *e = strchr(b, ',');

        if (!*b)
            return false;
        if (!e)
            e = b + strlen(b);
        *s = *e ? e + 1 : e;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > b) {
            *item = b;
            *len = (size_t)(e - b);
            return true;
        }
    }
}

/* list_size: items a comma list may hold, at most */
static size_t list_size(const char *list)
{
    size_t n = 1;

    for (; *list; list++)
        n += *list == ',';
    return n;
}

/* rules_parse: a comma list into *out (owned array), *n entries */
static hp_rc rules_parse(const char *flag, const char *list, struct inspect_policy_rule **out,
                         size_t *n, struct hp_err *err)
{
    char buf[HOST_MAX + 8];
    const char *item;
    size_t len;
    hp_rc rc;

    *out = NULL;
    *n = 0;
    if (!list || !*list)
        return HP_OK;
    *out = hp_calloc(list_size(list), sizeof(**out));
    if (!*out)
        return HP_ERR_NOMEM;
    while (list_next(&list, &item, &len)) {
        if (len >= sizeof(buf))
            return hp_err_field(err, HP_ERR_INVALID, flag, "%s: rule \"%.64s...\" is too long",
                                flag, item);
        memcpy(buf, item, len);
        buf[len] = '\0';
        rc = rule_parse(flag, buf, &(*out)[*n], err);
        if (rc)
            return rc;
        (*n)++;
    }
    return HP_OK;
}

static bool text_dup(const char *s, char **out)
{
    *out = hp_strdup(s ? s : "");
    return *out != NULL;
}

hp_rc inspect_policy_init(struct inspect_policy *p, const struct inspect_policy_flags *flags,
                          struct hp_err *err)
{
    const char *deny = flags->probe_deny ? flags->probe_deny : INSPECT_POLICY_DENY;
    const char *ns = flags->node_namespaces ? flags->node_namespaces : "", *list, *item;
    size_t n = 0, len, i;
    hp_rc rc;

    memset(p, 0, sizeof(*p));
    p->allow_cmdline_regex = flags->allow_cmdline_regex;
    p->max_probes = flags->max_probes;
    if (!text_dup(ns, &p->node_namespaces_text) || !text_dup(flags->probe_allow, &p->allow_text) ||
        !text_dup(deny, &p->deny_text))
        return HP_ERR_NOMEM;
    rc = rules_parse("--probe-allow", flags->probe_allow, &p->allow, &p->n_allow, err);
    if (!rc)
        rc = rules_parse("--probe-deny", deny, &p->deny, &p->n_deny, err);
    if (rc)
        return rc;
    if (!strcmp(ns, "*")) {
        p->all_namespaces = true;
        return HP_OK;
    }
    p->node_namespaces = hp_calloc(list_size(ns) + 1, sizeof(char *));
    if (!p->node_namespaces)
        return HP_ERR_NOMEM;
    for (list = ns; list_next(&list, &item, &len);) {
        for (i = 0; i < len; i++)
            if (!((item[i] >= 'a' && item[i] <= 'z') || (item[i] >= '0' && item[i] <= '9') ||
                  item[i] == '-') ||
                len > 63)
                return hp_err_field(err, HP_ERR_INVALID, "--node-checks-namespaces",
                                    "--node-checks-namespaces: \"%.*s\" is not a namespace name "
                                    "(lower case letters, digits, '-'; at most 63) nor \"*\"",
                                    (int)(len > 80 ? 80 : len), item);
        p->node_namespaces[n] = hp_strndup(item, len);
        if (!p->node_namespaces[n++])
            return HP_ERR_NOMEM;
    }
    return HP_OK;
}

void inspect_policy_release(struct inspect_policy *p)
{
    size_t i;

    if (!p)
        return;
    for (i = 0; p->node_namespaces && p->node_namespaces[i]; i++)
        hp_free(p->node_namespaces[i]);
    hp_free(p->node_namespaces);
    hp_free(p->allow);
    hp_free(p->deny);
    hp_free(p->node_namespaces_text);
    hp_free(p->allow_text);
    hp_free(p->deny_text);
    memset(p, 0, sizeof(*p));
}

size_t inspect_policy_probes(const struct inspection_spec *s)
{
    size_t n = 0, i;

    for (i = 0; i < s->n_checks; i++) {
        enum check_kind k = s->checks[i].kind;

        if (k == CHECK_TCP || k == CHECK_TLS)
            n += s->n_targets;
        else if (k == CHECK_HTTP || k == CHECK_DNS)
            n++;
    }
    return n;
}

static bool net_match(const struct inspect_policy_rule *r, int family, const unsigned char *a)
{
    int full = r->bits / 8, rest = r->bits % 8;

    if (r->kind != RULE_NET || r->family != family)
        return false;
    if (memcmp(r->addr, a, (size_t)full))
        return false;
    if (!rest)
        return true;
    return ((r->addr[full] ^ a[full]) & (0xff00 >> rest)) == 0;
}

static bool name_match(const struct inspect_policy_rule *r, const char *name)
{
    size_t n, m;

    if (r->kind == RULE_NAME)
        return !strcmp(r->name, name);
    if (r->kind != RULE_DOMAIN)
        return false;
    n = strlen(name);
    m = strlen(r->name);
    return !strcmp(r->name, name) ||
           (n > m && name[n - m - 1] == '.' && !strcmp(name + n - m, r->name));
}

/* match: the first rule of rules (n) that the address (family/a, or family 0) or the lower-case
 * name (or NULL) matches, NULL if none */
static const struct inspect_policy_rule *match(const struct inspect_policy_rule *rules, size_t n,
                                               int family, const unsigned char *a, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++)
        if ((family && net_match(&rules[i], family, a)) || (name && name_match(&rules[i], name)))
            return &rules[i];
    return NULL;
}

static bool has_net_rules(const struct inspect_policy_rule *rules, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (rules[i].kind == RULE_NET)
            return true;
    return false;
}

/* unmap: the address a connection really reaches, for the rules: an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) or a NAT64 one (64:ff9b::a.b.c.d) is the IPv4 address it embeds; 0.0.0.0/8
 * and :: reach this host's loopback on Linux (127.0.0.1, ::1). */
static void unmap(int *family, const unsigned char **a, unsigned char buf[16])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char zero[16] = {0};

    if (*family == AF_INET6 && (!memcmp(*a, mapped, 12) || !memcmp(*a, nat64, 12))) {
        memset(buf, 0, 16);
        memcpy(buf, *a + 12, 4);
        *family = AF_INET;
        *a = buf;
    }
    if (*family == AF_INET && (*a)[0] == 0) {
        memset(buf, 0, 16);
        buf[0] = 127;
        buf[3] = 1;
        *a = buf;
    } else if (*family == AF_INET6 && !memcmp(*a, zero, 16)) {
        memset(buf, 0, 16);
        buf[15] = 1;
        *a = buf;
    }
}

bool inspect_policy_host_ok(const struct inspect_policy *p, const char *host, char *why, size_t cap)
{
    unsigned char a[16], m[16];
    const unsigned char *ap = a;
    const struct inspect_policy_rule *r;
    char name[HOST_MAX];
    int family = 0;

    if (!p || !host)
        return true;
    if (parse_addr(host, &family, a)) {
        unmap(&family, &ap, m);
        r = match(p->deny, p->n_deny, family, ap, NULL);
        if (r) {
            snprintf(why, cap, "%s is denied by the cluster policy (--probe-deny %s)", host,
                     r->text);
            return false;
        }
        if (p->n_allow && !match(p->allow, p->n_allow, family, ap, NULL)) {
            snprintf(why, cap, "%s is not in the cluster policy's --probe-allow (%s)", host,
                     p->allow_text);
            return false;
        }
        return true;
    }
    if (!lower_name(host, name, sizeof(name)))
        name[0] = '\0';
    r = match(p->deny, p->n_deny, 0, NULL, name);
    if (r) {
        snprintf(why, cap, "%s is denied by the cluster policy (--probe-deny %s)", host, r->text);
        return false;
    }
    if (p->n_allow && !has_net_rules(p->allow, p->n_allow) &&
        !match(p->allow, p->n_allow, 0, NULL, name)) {
        snprintf(why, cap, "%s is not in the cluster policy's --probe-allow (%s)", host,
                 p->allow_text);
        return false;
    }
    return true;
}

bool inspect_policy_addr_ok(const struct inspect_policy *p, const struct sockaddr *sa,
                            const char *host, char *why, size_t cap)
{
    unsigned char m[16];
    const unsigned char *a;
    const struct inspect_policy_rule *r;
    char text[INET6_ADDRSTRLEN], name[HOST_MAX];
    int family;

    if (!p)
        return true;
    if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)) {
        snprintf(why, cap, "not an IP address: refused by the cluster policy");
        return false;
    }
    family = sa->sa_family;
    a = family == AF_INET ? (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr
                          : (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    unmap(&family, &a, m);
    inet_ntop(family, a, text, sizeof(text));
    r = match(p->deny, p->n_deny, family, a, NULL);
    if (r) {
        snprintf(why, cap, "%s%s%s is denied by the cluster policy (--probe-deny %s)", text,
                 host ? " of " : "", host ? host : "", r->text);
        return false;
    }
    if (!p->n_allow || match(p->allow, p->n_allow, family, a, NULL))
        return true;
    if (host && lower_name(host, name, sizeof(name)) && match(p->allow, p->n_allow, 0, NULL, name))
        return true;
    snprintf(why, cap, "%s%s%s is not in the cluster policy's --probe-allow (%s)", text,
             host ? " of " : "", host ? host : "", p->allow_text);
    return false;
}

void inspect_policy_url_host(const char *url, char *buf, size_t cap)
{
    CURLU *u = curl_url();
    char *h = NULL;

    buf[0] = '\0';
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK && h)
        snprintf(buf, cap, "%s", h);
    curl_free(h);
    curl_url_cleanup(u);
}

bool inspect_policy_url_ok(const struct inspect_policy *p, const char *url, char *why, size_t cap)
{
    char host[HOST_MAX];

    inspect_policy_url_host(url ? url : "", host, sizeof(host));
    return !host[0] || inspect_policy_host_ok(p, host, why, cap);
}

static bool ns_allowed(const struct inspect_policy *p, const char *ns)
{
    size_t i;

    if (p->all_namespaces)
        return true;
    for (i = 0; ns && p->node_namespaces && p->node_namespaces[i]; i++)
        if (!strcmp(p->node_namespaces[i], ns))
            return true;
    return false;
}

hp_rc inspect_policy_admit(const struct inspect_policy *p, const char *ns,
                           const struct inspection_spec *s, struct hp_err *err)
{
    char field[HP_ERR_FIELD_MAX], why[400];
    size_t i, probes = inspect_policy_probes(s);

    if (!p)
        return HP_OK;
    if (p->max_probes && probes > p->max_probes)
        return hp_err_field(err, HP_ERR_INVALID, "spec.targets",
                            "spec.targets and spec.checks: one run would start %zu probes (tcp "
                            "and tls checks x %zu targets, + http and dns checks), above the "
                            "cluster's limit of %zu (--max-probes-per-inspection): split it "
                            "into several HostInspections",
                            probes, s->n_targets, p->max_probes);
    for (i = 0; i < s->n_checks; i++) {
        const struct check_spec *c = &s->checks[i];

        snprintf(field, sizeof(field), "spec.checks[%zu].%s", i, check_kind_name(c->kind));
        if ((check_kind_is_node_local(c->kind) || c->kind == CHECK_NODE_CONDITION) &&
            !ns_allowed(p, ns))
            return hp_err_field(err, HP_ERR_AUTH, field,
                                "%s: %s checks are not allowed in namespace \"%s\" by the "
                                "cluster policy (--node-checks-namespaces: %s)",
                                field, check_kind_name(c->kind), ns ? ns : "",
                                p->node_namespaces_text[0] ? p->node_namespaces_text : "none");
        if (c->kind == CHECK_PROCESS && c->u.process.has_cmdline_regex && !p->allow_cmdline_regex) {
            snprintf(field, sizeof(field), "spec.checks[%zu].process.cmdlineRegex", i);
            return hp_err_field(err, HP_ERR_AUTH, field,
                                "%s: matching command lines is not allowed by the cluster "
                                "policy (--allow-cmdline-regex is off): match by name",
                                field);
        }
        if (c->kind == CHECK_HTTP && !inspect_policy_url_ok(p, c->u.http.url, why, sizeof(why))) {
            snprintf(field, sizeof(field), "spec.checks[%zu].http.url", i);
            return hp_err_field(err, HP_ERR_AUTH, field, "%s: host %s", field, why);
        }
        if (c->kind == CHECK_DNS && !inspect_policy_host_ok(p, c->u.dns.name, why, sizeof(why))) {
            snprintf(field, sizeof(field), "spec.checks[%zu].dns.name", i);
            return hp_err_field(err, HP_ERR_AUTH, field, "%s: %s", field, why);
        }
    }
    for (i = 0; i < s->n_checks; i++)
        if (s->checks[i].kind == CHECK_TCP || s->checks[i].kind == CHECK_TLS)
            break;
    if (i == s->n_checks)
        return HP_OK; /* no check probes the targets */
    for (i = 0; i < s->n_targets; i++) {
        if (inspect_policy_host_ok(p, s->targets[i].address, why, sizeof(why)))
            continue;
        snprintf(field, sizeof(field), "spec.targets[%zu].address", i);
        return hp_err_field(err, HP_ERR_AUTH, field, "%s: %s", field, why);
    }
    return HP_OK;
}
