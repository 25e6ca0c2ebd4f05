/*
 * inspection_spec.h - a HostInspection's spec, parsed and checked once, for the three callers
 * of the inspection engine (controller, agent, `hostpatrol inspect`).
 *
 * The apiserver's schema and CEL rules already hold for objects read from the API; the parser
 * re-checks what the engine relies on (so a file given to `hostpatrol inspect` gets the same
 * messages) and catches what CEL cannot: a body regex that does not compile, a tcp/tls check
 * with no target to probe, a duration out of range. Every error names the field, e.g.
 * "spec.checks[2].http.bodyRegex".
 *
 * Where checks run:
 *   http, dns            - once per run, from the controller (target "-");
 *   tcp, tls             - once per spec.targets entry, from the controller;
 *   nodeCondition        - once per node matching nodeSelector, from the controller (the API);
 *   disk, load, memory, process, file - node-local, by the agent on each matching node.
 *
 * Ownership: inspection_spec_parse copies everything it keeps; the source JSON is borrowed for
 * the call. inspection_spec_release frees what parse allocated (NULL allowed).
 */
#ifndef HOSTPATROL_INSPECTION_SPEC_H
#define HOSTPATROL_INSPECTION_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/rc.h"
#include "hostpatrol/safe_regex.h"

enum check_kind {
    CHECK_HTTP,
    CHECK_TCP,
    CHECK_TLS,
    CHECK_DNS,
    CHECK_NODE_CONDITION,
    CHECK_DISK,
    CHECK_LOAD,
    CHECK_MEMORY,
    CHECK_PROCESS,
    CHECK_FILE,
    CHECK_KIND__COUNT
};
/* "http" "tcp" "tls" "dns" "nodeCondition" "disk" ...; static */
const char *check_kind_name(enum check_kind k);
/* check_kind_is_endpoint: http/tcp/tls/dns (run by the controller's prober) */
bool check_kind_is_endpoint(enum check_kind k);
/* check_kind_is_node_local: disk/load/memory/process/file (run by the agent) */
bool check_kind_is_node_local(enum check_kind k);

struct target_spec {
    char *name;    /* owned */
    char *address; /* owned: host name or IP literal */
};

struct http_check {
    char *url;           /* owned */
    char *method;        /* owned; default "GET" */
    char **headers;      /* owned NULL-terminated "Name: value" list (NULL if none) */
    long *expect_status; /* owned; n_expect_status == 0: any 2xx or 3xx */
    size_t n_expect_status;
    bool has_body_regex;
    struct safe_regex *body_regex; /* owned; compiled (safe_regex.h) when has_body_regex */
    bool follow_redirects;
};

struct tcp_check {
    int port;
    char *send;   /* owned or NULL */
    char *expect; /* owned or NULL: a substring the answer must contain */
};

struct tls_check {
    int port;
    char *server_name; /* owned or NULL: the target's address */
};

struct dns_check {
    char *name;          /* owned */
    char **expect_addrs; /* owned NULL-terminated list (NULL if none) */
};

struct node_condition_check {
    char *type;   /* owned: Ready, MemoryPressure, ... */
    char *expect; /* owned: "True"/"False"; default "True" for Ready, else "False" */
};

struct disk_check {
    char *path;
    int warn_percent, crit_percent;
    bool inodes;
};

struct load_check {
    int window_min; /* 1, 5 or 15 */
    double warn_per_cpu, crit_per_cpu;
};

struct memory_check {
    int warn_available_percent, crit_available_percent;
};

struct process_check {
    char *name; /* owned or NULL (comm name) */
    bool has_cmdline_regex;
    struct safe_regex *cmdline_regex; /* owned; compiled (safe_regex.h) when has_cmdline_regex */
    int64_t min_count, max_count;     /* max_count < 0: no maximum */
};

struct file_check {
    char *path;
    int64_t max_age_ms;     /* < 0: none */
    int64_t max_size_bytes; /* < 0: none */
};

struct check_spec {
    char *name; /* owned */
    enum check_kind kind;
    int tls_min_days_left; /* http (https) and tls; < 0: not set */
    union {
        struct http_check http;
        struct tcp_check tcp;
        struct tls_check tls;
        struct dns_check dns;
        struct node_condition_check node_condition;
        struct disk_check disk;
        struct load_check load;
        struct memory_check memory;
        struct process_check process;
        struct file_check file;
    } u;
};

struct inspection_spec {
    int64_t interval_ms, timeout_ms;
    bool suspend;
    json_t *node_selector; /* owned reference (json_deep_copy), or NULL: every node */
    struct target_spec *targets;
    size_t n_targets;
    struct check_spec *checks;
    size_t n_checks;
};

/* inspection_spec_parse: parse spec (borrowed JSON object: the CR's .spec) into *out (which
 * the caller releases whatever the result). HP_ERR_INVALID with err->field naming the field. */
hp_rc inspection_spec_parse(const json_t *spec, struct inspection_spec *out,
                            struct hp_err *err) HP_WUR;
void inspection_spec_release(struct inspection_spec *s);

#endif
