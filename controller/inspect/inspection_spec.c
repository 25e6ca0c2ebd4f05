/* inspection_spec.c - parse and check a HostInspection spec (see inspection_spec.h). */
#include "hostpatrol/inspection_spec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/duration.h"
#include "hostpatrol/probe.h"

static const char *const kind_names[CHECK_KIND__COUNT] = {
    "http", "tcp", "tls", "dns", "nodeCondition", "disk", "load", "memory", "process", "file",
};

const char *check_kind_name(enum check_kind k)
{
    return (unsigned)k < CHECK_KIND__COUNT ? kind_names[k] : "unknown";
}

bool check_kind_is_endpoint(enum check_kind k)
{
    return k == CHECK_HTTP || k == CHECK_TCP || k == CHECK_TLS || k == CHECK_DNS;
}

bool check_kind_is_node_local(enum check_kind k)
{
    return k >= CHECK_DISK && k < CHECK_KIND__COUNT;
}

/* A parse position: the JSON path of the object being read, for error messages. */
struct at {
    char path[HP_ERR_FIELD_MAX];
    struct hp_err *err;
};

/* set_path: printf into a parse path (truncated silently: paths are for messages) */
static void set_path(char *dst, size_t size, const char *fmt, ...) HP_PRINTF(3, 4);
static void set_path(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(dst, size, fmt, ap);
    va_end(ap);
}

/* decimal_text: s is digits, optionally a '.' and more digits (the CRD's load thresholds) */
static bool decimal_text(const char *s)
{
    size_t n = strspn(s, "0123456789");

    if (!n)
        return false;
    if (s[n] == '.') {
        size_t m = strspn(s + n + 1, "0123456789");

        if (!m)
            return false;
        n += 1 + m;
    }
    return s[n] == '\0';
}

static hp_rc bad(struct at *a, const char *key, const char *fmt, const char *detail)
{
    char field[HP_ERR_FIELD_MAX];

    set_path(field, sizeof(field), "%s%s%s", a->path, key && *key ? "." : "", key ? key : "");
    return hp_err_field(a->err, HP_ERR_INVALID, field, "%s: %s%s", field, fmt,
                        detail ? detail : "");
}

/* get_string: an optional string member; *out owned (NULL when absent and no default). */
static hp_rc get_string(struct at *a, const json_t *o, const char *key, const char *dflt,
                        size_t max_len, char **out)
{
    const json_t *v = json_object_get(o, key);
    const char *s = dflt;

    *out = NULL;
    if (v) {
        if (!json_is_string(v))
            return bad(a, key, "must be a string", NULL);
        s = json_string_value(v);
        if (strlen(s) > max_len)
            return bad(a, key, "is too long", NULL);
    }
    if (!s)
        return HP_OK;
    *out = hp_strdup(s);
    return *out ? HP_OK : HP_ERR_NOMEM;
}

static hp_rc get_required_string(struct at *a, const json_t *o, const char *key, size_t max_len,
                                 char **out)
{
    hp_rc rc = get_string(a, o, key, NULL, max_len, out);

    if (!rc && (!*out || !**out))
        rc = bad(a, key, "is required", NULL);
    return rc;
}

static hp_rc get_int(struct at *a, const json_t *o, const char *key, int64_t dflt, int64_t min,
                     int64_t max, int64_t *out)
{
    const json_t *v = json_object_get(o, key);
    char detail[64];

    *out = dflt;
    if (!v)
        return HP_OK;
    if (!json_is_integer(v))
        return bad(a, key, "must be an integer", NULL);
    *out = json_integer_value(v);
    if (*out < min || *out > max) {
        snprintf(detail, sizeof(detail), " (%lld..%lld)", (long long)min, (long long)max);
        return bad(a, key, "is out of range", detail);
    }
    return HP_OK;
}

static hp_rc get_bool(struct at *a, const json_t *o, const char *key, bool dflt, bool *out)
{
    const json_t *v = json_object_get(o, key);

    *out = dflt;
    if (!v)
        return HP_OK;
    if (!json_is_boolean(v))
        return bad(a, key, "must be true or false", NULL);
    *out = json_is_true(v);
    return HP_OK;
}

static hp_rc get_duration(struct at *a, const json_t *o, const char *key, const char *dflt,
                          int64_t *ms)
{
    const json_t *v = json_object_get(o, key);
    char field[HP_ERR_FIELD_MAX];

    *ms = -1;
    if (!v && !dflt)
        return HP_OK;
    if (v && !json_is_string(v))
        return bad(a, key, "must be a duration string like 30s", NULL);
    set_path(field, sizeof(field), "%s.%s", a->path, key);
    return hp_duration_parse(v ? json_string_value(v) : dflt, field, ms, a->err);
}

static hp_rc compile_regex(struct at *a, const char *key, const char *pattern,
                           struct safe_regex **re)
{
    char why[200], detail[sizeof(why) + 16];
    const char *p;
    hp_rc rc;

    /* RE2 (Prometheus, blackbox_exporter) has neither back-references nor recursion; refused
     * here too, in every PCRE2 spelling (the time budget bounds them anyway) */
    for (p = pattern; *p; p++) {
        if (*p == '\\' && ((p[1] >= '1' && p[1] <= '9') || p[1] == 'g' || p[1] == 'k'))
            return bad(a, key, "must not use back-references (\\1, \\g, \\k)", NULL);
        if (*p == '(' && p[1] == '?' &&
            (!strncmp(p + 2, "P=", 2) || !strncmp(p + 2, "P>", 2) || p[2] == '&' || p[2] == 'R' ||
             (p[2] >= '0' && p[2] <= '9') ||
             ((p[2] == '+' || p[2] == '-') && p[3] >= '0' && p[3] <= '9')))
            return bad(a, key, "must not use back-references or recursion ((?P=, (?&, (?R, (?1)",
                       NULL);
        if (*p == '\\' && p[1])
            p++;
    }
    rc = safe_regex_compile(pattern, re, why, sizeof(why));

    if (rc == HP_ERR_INVALID) {
        snprintf(detail, sizeof(detail), " (%s)", why);
        return bad(a, key, "is not a valid regular expression (PCRE2 syntax, bounded)", detail);
    }
    return rc;
}

/* dns_label: a Kubernetes-style name: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 (no '/': result
 * keys are split on it) */
static bool dns_label(const char *s)
{
    size_t n = strlen(s), i;

    if (!n || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static hp_rc get_name(struct at *a, const json_t *o, char **out)
{
    hp_rc rc = get_required_string(a, o, "name", 63, out);

    if (!rc && !dns_label(*out))
        rc = bad(a, "name",
                 "must be lower-case letters, digits and '-', starting and ending "
                 "with a letter or digit: ",
                 *out);
    return rc;
}

/* string_list: a JSON array of strings -> owned NULL-terminated list (NULL when absent) */
static hp_rc string_list(struct at *a, const json_t *o, const char *key, char ***out)
{
    const json_t *arr = json_object_get(o, key), *v;
    size_t i;

    *out = NULL;
    if (!arr)
        return HP_OK;
    if (!json_is_array(arr))
        return bad(a, key, "must be a list of strings", NULL);
    *out = hp_calloc(json_array_size(arr) + 1, sizeof(char *));
    if (!*out)
        return HP_ERR_NOMEM;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v))
            return bad(a, key, "must be a list of strings", NULL);
        (*out)[i] = hp_strdup(json_string_value(v));
        if (!(*out)[i])
            return HP_ERR_NOMEM;
    }
    return HP_OK;
}

static void free_list(char **l)
{
    size_t i;

    for (i = 0; l && l[i]; i++)
        hp_free(l[i]);
    hp_free(l);
}

static bool header_ok(const char *name, const char *value)
{
    const char *p;

    if (!*name)
        return false;
    for (p = name; *p; p++)
        if (*p <= ' ' || *p == ':' || *p >= 127)
            return false;
    for (p = value; *p; p++)
        if (*p == '\r' || *p == '\n')
            return false;
    return true;
}

static hp_rc parse_http(struct at *a, const json_t *o, struct http_check *h)
{
    const json_t *hdrs = json_object_get(o, "headers"), *arr, *v;
    const char *name;
    char *pattern = NULL;
    size_t i = 0;
    hp_rc rc;

    rc = get_required_string(a, o, "url", 2048, &h->url);
    if (rc)
        return rc;
    if (strncmp(h->url, "http://", 7) && strncmp(h->url, "https://", 8))
        return bad(a, "url", "must start with http:// or https://", NULL);
    if (strpbrk(h->url, " \t\r\n"))
        return bad(a, "url", "must not contain white space", NULL);
    rc = get_string(a, o, "method", "GET", 16, &h->method);
    if (!rc && strcmp(h->method, "GET") && strcmp(h->method, "HEAD") && strcmp(h->method, "POST") &&
        strcmp(h->method, "PUT") && strcmp(h->method, "OPTIONS"))
        rc = bad(a, "method", "must be one of GET, HEAD, POST, PUT, OPTIONS", NULL);
    if (!rc)
        rc = get_bool(a, o, "followRedirects", false, &h->follow_redirects);
    if (rc)
        return rc;
    if (hdrs) {
        if (!json_is_object(hdrs))
            return bad(a, "headers", "must be a map of header names to values", NULL);
        h->headers = hp_calloc(json_object_size(hdrs) + 1, sizeof(char *));
        if (!h->headers)
            return HP_ERR_NOMEM;
        json_object_foreach((json_t *)hdrs, name, v)
        {
            size_t n;

            if (!json_is_string(v) || !header_ok(name, json_string_value(v)))
                return bad(a, "headers", "has an invalid header name or value: ", name);
            n = strlen(name) + strlen(json_string_value(v)) + 3;
            h->headers[i] = hp_malloc(n);
            if (!h->headers[i])
                return HP_ERR_NOMEM;
            snprintf(h->headers[i++], n, "%s: %s", name, json_string_value(v));
        }
    }
    arr = json_object_get(o, "expectStatus");
    if (arr) {
        if (!json_is_array(arr))
            return bad(a, "expectStatus", "must be a list of HTTP status codes", NULL);
        h->expect_status = hp_calloc(json_array_size(arr) + 1, sizeof(long));
        if (!h->expect_status)
            return HP_ERR_NOMEM;
        json_array_foreach(arr, i, v)
        {
            if (!json_is_integer(v) || json_integer_value(v) < 100 || json_integer_value(v) > 599)
                return bad(a, "expectStatus", "must hold HTTP status codes (100..599)", NULL);
            h->expect_status[h->n_expect_status++] = (long)json_integer_value(v);
        }
    }
    rc = get_string(a, o, "bodyRegex", NULL, 1024, &pattern);
    if (!rc && pattern) {
        rc = compile_regex(a, "bodyRegex", pattern, &h->body_regex);
        h->has_body_regex = rc == HP_OK;
    }
    hp_free(pattern);
    return rc;
}

static hp_rc parse_tcp(struct at *sub, const json_t *body, struct check_spec *c)
{
    int64_t v;
    hp_rc rc;

    rc = get_int(sub, body, "port", 0, 1, 65535, &v);
    c->u.tcp.port = (int)v;
    if (!rc && !v)
        rc = bad(sub, "port", "is required", NULL);
    if (!rc)
        rc = get_string(sub, body, "send", NULL, 1024, &c->u.tcp.send);
    if (!rc)
        rc = get_string(sub, body, "expect", NULL, 1024, &c->u.tcp.expect);
    return rc;
}

static hp_rc parse_tls(struct at *sub, const json_t *body, struct check_spec *c)
{
    int64_t v;
    hp_rc rc;

    rc = get_int(sub, body, "port", 0, 1, 65535, &v);
    c->u.tls.port = (int)v;
    if (!rc && !v)
        rc = bad(sub, "port", "is required", NULL);
    if (!rc)
        rc = get_string(sub, body, "serverName", NULL, 253, &c->u.tls.server_name);
    if (!rc && c->u.tls.server_name && !probe_host_ok(c->u.tls.server_name))
        rc = bad(sub, "serverName",
                 "must be a host name or an IP address, not: ", c->u.tls.server_name);
    return rc;
}

static hp_rc parse_dns(struct at *sub, const json_t *body, struct check_spec *c)
{
    hp_rc rc;
    size_t k;

    rc = get_required_string(sub, body, "name", 253, &c->u.dns.name);
    if (!rc)
        rc = string_list(sub, body, "expectAddresses", &c->u.dns.expect_addrs);
    for (k = 0; !rc && c->u.dns.expect_addrs && c->u.dns.expect_addrs[k]; k++) {
        unsigned char buf[sizeof(struct in6_addr)];

        if (inet_pton(AF_INET, c->u.dns.expect_addrs[k], buf) != 1 &&
            inet_pton(AF_INET6, c->u.dns.expect_addrs[k], buf) != 1)
            rc = bad(sub, "expectAddresses",
                     "must hold IP addresses, not: ", c->u.dns.expect_addrs[k]);
    }
    return rc;
}

static hp_rc parse_node_condition(struct at *sub, const json_t *body, struct check_spec *c)
{
    hp_rc rc;

    rc = get_required_string(sub, body, "type", 64, &c->u.node_condition.type);
    if (rc)
        return rc;
    if (strcmp(c->u.node_condition.type, "Ready") &&
        strcmp(c->u.node_condition.type, "MemoryPressure") &&
        strcmp(c->u.node_condition.type, "DiskPressure") &&
        strcmp(c->u.node_condition.type, "PIDPressure") &&
        strcmp(c->u.node_condition.type, "NetworkUnavailable"))
        return bad(sub, "type",
                   "must be one of Ready, MemoryPressure, DiskPressure, PIDPressure, "
                   "NetworkUnavailable",
                   NULL);
    rc = get_string(sub, body, "expect",
                    strcmp(c->u.node_condition.type, "Ready") ? "False" : "True", 8,
                    &c->u.node_condition.expect);
    if (!rc && strcmp(c->u.node_condition.expect, "True") &&
        strcmp(c->u.node_condition.expect, "False"))
        rc = bad(sub, "expect", "must be \"True\" or \"False\"", NULL);
    return rc;
}

static hp_rc parse_disk(struct at *sub, const json_t *body, struct check_spec *c)
{
    int64_t v, w;
    hp_rc rc;

    rc = get_string(sub, body, "path", "/", 1024, &c->u.disk.path);
    if (!rc)
        rc = get_int(sub, body, "warnPercent", 80, 1, 100, &v);
    if (!rc)
        rc = get_int(sub, body, "critPercent", 90, 1, 100, &w);
    if (!rc)
        rc = get_bool(sub, body, "inodes", false, &c->u.disk.inodes);
    if (rc)
        return rc;
    c->u.disk.warn_percent = (int)v;
    c->u.disk.crit_percent = (int)w;
    if (v >= w)
        return bad(sub, "warnPercent", "must be below critPercent", NULL);
    return HP_OK;
}

/* load_threshold: warnPerCPU or critPerCPU (default def) into *out */
static hp_rc load_threshold(struct at *sub, const json_t *body, const char *key, const char *def,
                            double *out)
{
    char *s = NULL, *end;
    double d = 0;
    bool ok;
    hp_rc rc;

    rc = get_string(sub, body, key, def, 16, &s);
    if (rc)
        return rc;
    /* the CRD's pattern ^[0-9]+(\.[0-9]+)?$, which strtod alone would widen (0x10, inf, nan,
     * 1e9, leading blanks) */
    ok = decimal_text(s);
    if (ok) {
        errno = 0;
        d = strtod(s, &end);
        ok = !errno && !*end && d >= 0;
    }
    hp_free(s);
    if (!ok)
        return bad(sub, key, "must be a non-negative decimal number like \"1.5\"", NULL);
    *out = d;
    return HP_OK;
}

static hp_rc parse_load(struct at *sub, const json_t *body, struct check_spec *c)
{
    char *s = NULL;
    hp_rc rc;

    rc = get_string(sub, body, "window", "5m", 4, &s);
    if (!rc) {
        c->u.load.window_min = !strcmp(s, "1m")    ? 1
                               : !strcmp(s, "5m")  ? 5
                               : !strcmp(s, "15m") ? 15
                                                   : 0;
        if (!c->u.load.window_min)
            rc = bad(sub, "window", "must be one of 1m, 5m, 15m", NULL);
    }
    hp_free(s);
    if (!rc)
        rc = load_threshold(sub, body, "warnPerCPU", "1.5", &c->u.load.warn_per_cpu);
    if (!rc)
        rc = load_threshold(sub, body, "critPerCPU", "3", &c->u.load.crit_per_cpu);
    if (!rc && c->u.load.warn_per_cpu >= c->u.load.crit_per_cpu)
        rc = bad(sub, "warnPerCPU", "must be below critPerCPU", NULL);
    return rc;
}

static hp_rc parse_memory(struct at *sub, const json_t *body, struct check_spec *c)
{
    int64_t v, w;
    hp_rc rc;

    rc = get_int(sub, body, "warnAvailablePercent", 15, 0, 100, &v);
    if (!rc)
        rc = get_int(sub, body, "critAvailablePercent", 5, 0, 100, &w);
    if (rc)
        return rc;
    c->u.memory.warn_available_percent = (int)v;
    c->u.memory.crit_available_percent = (int)w;
    if (w >= v)
        return bad(sub, "critAvailablePercent", "must be below warnAvailablePercent", NULL);
    return HP_OK;
}

static hp_rc parse_process(struct at *sub, const json_t *body, struct check_spec *c)
{
    char *s = NULL;
    hp_rc rc;

    rc = get_string(sub, body, "name", NULL, 64, &c->u.process.name);
    if (!rc)
        rc = get_string(sub, body, "cmdlineRegex", NULL, 1024, &s);
    if (!rc && !c->u.process.name == !s)
        rc = bad(sub, NULL, "set exactly one of name, cmdlineRegex", NULL);
    if (!rc && s) {
        rc = compile_regex(sub, "cmdlineRegex", s, &c->u.process.cmdline_regex);
        c->u.process.has_cmdline_regex = rc == HP_OK;
    }
    hp_free(s);
    if (!rc)
        rc = get_int(sub, body, "minCount", 1, 0, INT32_MAX, &c->u.process.min_count);
    if (!rc)
        rc = get_int(sub, body, "maxCount", -1, 0, INT32_MAX, &c->u.process.max_count);
    if (!rc && c->u.process.max_count >= 0 && c->u.process.min_count > c->u.process.max_count)
        rc = bad(sub, "minCount", "must not exceed maxCount", NULL);
    return rc;
}

static hp_rc parse_file(struct at *sub, const json_t *body, struct check_spec *c)
{
    hp_rc rc;

    rc = get_required_string(sub, body, "path", 1024, &c->u.file.path);
    if (!rc)
        rc = get_duration(sub, body, "maxAge", NULL, &c->u.file.max_age_ms);
    if (!rc)
        rc = get_int(sub, body, "maxSizeBytes", -1, 0, INT64_MAX, &c->u.file.max_size_bytes);
    return rc;
}

static hp_rc parse_http_check(struct at *sub, const json_t *body, struct check_spec *c)
{
    return parse_http(sub, body, &c->u.http);
}

/* the parser of each kind's body, by enum check_kind */
static hp_rc (*const parse_kind[CHECK_KIND__COUNT])(struct at *, const json_t *,
                                                    struct check_spec *) = {
    [CHECK_HTTP] = parse_http_check, [CHECK_TCP] = parse_tcp,
    [CHECK_TLS] = parse_tls,         [CHECK_DNS] = parse_dns,
    [CHECK_DISK] = parse_disk,       [CHECK_LOAD] = parse_load,
    [CHECK_MEMORY] = parse_memory,   [CHECK_PROCESS] = parse_process,
    [CHECK_FILE] = parse_file,       [CHECK_NODE_CONDITION] = parse_node_condition,
};

static hp_rc parse_check(struct at *parent, const json_t *o, size_t idx, struct check_spec *c)
{
    struct at a = {.err = parent->err};
    struct at sub = {.err = parent->err};
    const json_t *body = NULL;
    int64_t v;
    size_t k, found = 0;
    hp_rc rc;

    set_path(a.path, sizeof(a.path), "%s[%zu]", parent->path, idx);
    c->tls_min_days_left = -1;
    if (!json_is_object(o))
        return bad(&a, NULL, "must be an object", NULL);
    rc = get_name(&a, o, &c->name);
    if (rc)
        return rc;
    for (k = 0; k < CHECK_KIND__COUNT; k++) {
        if (json_object_get(o, kind_names[k])) {
            found++;
            c->kind = (enum check_kind)k;
            body = json_object_get(o, kind_names[k]);
        }
    }
    if (found != 1)
        return bad(&a, NULL,
                   "must set exactly one of http, tcp, tls, dns, disk, load, memory, process, "
                   "file, nodeCondition",
                   NULL);
    rc = get_int(&a, o, "tlsMinDaysLeft", -1, 0, 3650, &v);
    if (rc)
        return rc;
    c->tls_min_days_left = (int)v;
    if (v >= 0 && c->kind != CHECK_HTTP && c->kind != CHECK_TLS)
        return bad(&a, "tlsMinDaysLeft", "applies only to http and tls checks", NULL);
    set_path(sub.path, sizeof(sub.path), "%s.%s", a.path, kind_names[c->kind]);
    if (!json_is_object(body))
        return bad(&sub, NULL, "must be an object", NULL);
    if ((size_t)c->kind >= CHECK_KIND__COUNT || !parse_kind[c->kind])
        return HP_ERR_INTERNAL;
    return parse_kind[c->kind](&sub, body, c);
}

/* check_selector: a label selector the apiserver will take: string labels, known operators,
 * values exactly where the operator wants them */
static hp_rc check_selector(const json_t *sel, struct hp_err *err)
{
    struct at a = {.path = "spec.nodeSelector", .err = err};
    const json_t *labels = json_object_get(sel, "matchLabels"),
                 *exprs = json_object_get(sel, "matchExpressions"), *v, *e;
    const char *k;
    size_t i, j;

    if (!json_is_object(sel))
        return bad(&a, NULL, "must be a label selector object", NULL);
    if (labels && !json_is_object(labels))
        return bad(&a, "matchLabels", "must be a map of label names to values", NULL);
    json_object_foreach((json_t *)labels, k, v)
    {
        if (!json_is_string(v) || strpbrk(k, ",=!() ") || strpbrk(json_string_value(v), ",=!() "))
            return bad(&a, "matchLabels", "has an invalid label or value: ", k);
    }
    if (exprs && !json_is_array(exprs))
        return bad(&a, "matchExpressions", "must be a list", NULL);
    json_array_foreach(exprs, i, e)
    {
        const char *key = json_string_value(json_object_get(e, "key")),
                   *op = json_string_value(json_object_get(e, "operator"));
        const json_t *vals = json_object_get(e, "values");
        bool set_op;

        set_path(a.path, sizeof(a.path), "spec.nodeSelector.matchExpressions[%zu]", i);
        if (!key || !*key || strpbrk(key, ",=!() "))
            return bad(&a, "key", "must be a label name", NULL);
        if (!op || (strcmp(op, "In") && strcmp(op, "NotIn") && strcmp(op, "Exists") &&
                    strcmp(op, "DoesNotExist")))
            return bad(&a, "operator", "must be one of In, NotIn, Exists, DoesNotExist", NULL);
        set_op = !strcmp(op, "In") || !strcmp(op, "NotIn");
        if (set_op != (json_array_size(vals) > 0))
            return bad(&a, "values",
                       set_op ? "must not be empty for In and NotIn"
                              : "must be empty for Exists and DoesNotExist",
                       NULL);
        json_array_foreach(vals, j, v)
        {
            if (!json_is_string(v) || strpbrk(json_string_value(v), ",=!() "))
                return bad(&a, "values", "has an invalid value", NULL);
        }
    }
    return HP_OK;
}

hp_rc inspection_spec_parse(const json_t *spec, struct inspection_spec *out, struct hp_err *err)
{
    struct at a = {.path = "spec", .err = err};
    const json_t *arr, *v;
    size_t i, j;
    hp_rc rc;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(spec))
        return bad(&a, NULL, "must be an object", NULL);
    rc = get_duration(&a, spec, "interval", "30s", &out->interval_ms);
    if (!rc && (out->interval_ms < 1000 || out->interval_ms > 24 * 3600 * 1000))
        rc = bad(&a, "interval", "must be between 1s and 24h", NULL);
    if (!rc)
        rc = get_duration(&a, spec, "timeout", "10s", &out->timeout_ms);
    if (!rc && out->timeout_ms < 100)
        rc = bad(&a, "timeout", "must be at least 100ms", NULL);
    if (!rc && out->timeout_ms >= out->interval_ms)
        rc = bad(&a, "timeout", "must be shorter than spec.interval", NULL);
    if (!rc)
        rc = get_bool(&a, spec, "suspend", false, &out->suspend);
    if (rc)
        return rc;
    v = json_object_get(spec, "nodeSelector");
    if (v) {
        rc = check_selector(v, err);
        if (rc)
            return rc;
        out->node_selector = json_deep_copy(v);
        if (!out->node_selector)
            return HP_ERR_NOMEM;
    }
    arr = json_object_get(spec, "targets");
    if (arr) {
        struct at t = {.err = err};

        if (!json_is_array(arr) || json_array_size(arr) > 256)
            return bad(&a, "targets", "must be a list of at most 256 targets", NULL);
        out->targets = hp_calloc(json_array_size(arr) + 1, sizeof(*out->targets));
        if (!out->targets)
            return HP_ERR_NOMEM;
        json_array_foreach(arr, i, v)
        {
            struct target_spec *ts = &out->targets[out->n_targets++];

            set_path(t.path, sizeof(t.path), "spec.targets[%zu]", i);
            if (!json_is_object(v))
                return bad(&t, NULL, "must be an object", NULL);
            rc = get_name(&t, v, &ts->name);
            if (!rc)
                rc = get_required_string(&t, v, "address", 253, &ts->address);
            if (!rc && !probe_host_ok(ts->address))
                rc = bad(&t, "address", "must be a host name or an IP address, not: ", ts->address);
            if (rc)
                return rc;
            for (j = 0; j < i; j++)
                if (!strcmp(out->targets[j].name, ts->name))
                    return bad(&t, "name", "duplicates another target's name: ", ts->name);
        }
    }
    arr = json_object_get(spec, "checks");
    if (!json_is_array(arr) || !json_array_size(arr) || json_array_size(arr) > 64)
        return bad(&a, "checks", "must be a list of 1 to 64 checks", NULL);
    out->checks = hp_calloc(json_array_size(arr), sizeof(*out->checks));
    if (!out->checks)
        return HP_ERR_NOMEM;
    set_path(a.path, sizeof(a.path), "spec.checks");
    json_array_foreach(arr, i, v)
    {
        struct check_spec *c = &out->checks[out->n_checks++];

        rc = parse_check(&a, v, i, c);
        if (rc)
            return rc;
        for (j = 0; j < i; j++)
            if (!strcmp(out->checks[j].name, c->name)) {
                struct at ca = {.err = err};

                set_path(ca.path, sizeof(ca.path), "spec.checks[%zu]", i);
                return bad(&ca, "name", "duplicates another check's name: ", c->name);
            }
        if ((c->kind == CHECK_TCP || c->kind == CHECK_TLS) && !out->n_targets) {
            struct at ca = {.err = err};

            set_path(ca.path, sizeof(ca.path), "spec.checks[%zu]", i);
            return bad(&ca, check_kind_name(c->kind),
                       "probes spec.targets, but spec.targets is empty", NULL);
        }
    }
    return HP_OK;
}

static void check_release(struct check_spec *c)
{
    switch (c->kind) {
    case CHECK_HTTP:
        hp_free(c->u.http.url);
        hp_free(c->u.http.method);
        free_list(c->u.http.headers);
        hp_free(c->u.http.expect_status);
        safe_regex_free(c->u.http.body_regex);
        break;
    case CHECK_TCP:
        hp_free(c->u.tcp.send);
        hp_free(c->u.tcp.expect);
        break;
    case CHECK_TLS:
        hp_free(c->u.tls.server_name);
        break;
    case CHECK_DNS:
        hp_free(c->u.dns.name);
        free_list(c->u.dns.expect_addrs);
        break;
    case CHECK_NODE_CONDITION:
        hp_free(c->u.node_condition.type);
        hp_free(c->u.node_condition.expect);
        break;
    case CHECK_DISK:
        hp_free(c->u.disk.path);
        break;
    case CHECK_PROCESS:
        hp_free(c->u.process.name);
        safe_regex_free(c->u.process.cmdline_regex);
        break;
    case CHECK_FILE:
        hp_free(c->u.file.path);
        break;
    case CHECK_LOAD:
    case CHECK_MEMORY:
    case CHECK_KIND__COUNT:
        break;
    }
    hp_free(c->name);
}

void inspection_spec_release(struct inspection_spec *s)
{
    size_t i;

    if (!s)
        return;
    for (i = 0; i < s->n_targets; i++) {
        hp_free(s->targets[i].name);
        hp_free(s->targets[i].address);
    }
    hp_free(s->targets);
    for (i = 0; i < s->n_checks; i++)
        check_release(&s->checks[i]);
    hp_free(s->checks);
    json_decref(s->node_selector);
    memset(s, 0, sizeof(*s));
}
