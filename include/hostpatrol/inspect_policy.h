/*
 * inspect_policy.h - the cluster admin's policy on what a HostInspection may inspect. Anyone who
 * may create a HostInspection in some namespace must not be able to read the nodes or reach
 * what the controller can reach; the admin sets the policy with flags of the controller and the
 * agent (chart values policy.*):
 *
 *   --node-checks-namespaces=NS,...   namespaces whose HostInspections may have node-local
 *                                     checks (disk, load, memory, process, file) and
 *                                     nodeCondition checks; "*": every namespace. The chart
 *                                     passes the release namespace by default.
 *   --allow-cmdline-regex             process checks may match command lines (cmdlineRegex);
 *                                     without it only `name` (the comm name) may be used: a
 *                                     regex guessed character by character would reveal any
 *                                     process's command line, passwords in it included.
 *   --probe-allow=RULE,...            probe targets (http url hosts, tcp/tls addresses, dns
 *   --probe-deny=RULE,...             names) allowed / denied. A RULE is a CIDR (10.0.0.0/8,
 *                                     fd00::/8), an address (10.1.2.3), a host name
 *                                     (db.example.com) or a domain and its subdomains
 *                                     (.example.com). Deny wins; an empty allow list allows
 *                                     what is not denied. Default deny: INSPECT_POLICY_DENY
 *                                     (link-local, where cloud metadata services live, AWS's
 *                                     fd00:ec2::/32, Alibaba's and Azure's metadata addresses
 *                                     and the metadata names); --probe-deny= (empty) clears it.
 *                                     Addresses are judged as what they reach: ::ffff:a.b.c.d
 *                                     and 64:ff9b::a.b.c.d as a.b.c.d, 0.0.0.0/8 and :: as
 *                                     loopback.
 *   --max-probes-per-inspection=N     endpoint probes one run of one HostInspection may start
 *                                     (tcp/tls checks x targets, + http and dns checks); 0: no
 *                                     limit.
 *
 * Where each rule holds:
 *   - inspect_policy_admit, on the parsed spec, before anything runs: namespaces, cmdlineRegex,
 *     the probe count, and every host written in the spec (a literal address is checked against
 *     the CIDR rules, a name against the name rules). A refusal is HP_ERR_AUTH (the reconciler
 *     reports InvalidSpec with reason Forbidden) naming the field and the flag.
 *   - inspect_policy_addr_ok, on every address a probe connects to (after name resolution and
 *     on every redirect), so a name that resolves to a denied address is refused too.
 *     With a proxy from the environment (http_proxy), the address checked is the proxy's.
 *
 * Thread-safety: immutable after inspect_policy_init; read from any thread.
 */
#ifndef HOSTPATROL_INSPECT_POLICY_H
#define HOSTPATROL_INSPECT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "hostpatrol/inspection_spec.h"
#include "hostpatrol/rc.h"

#define INSPECT_POLICY_DENY                                                                        \
    "169.254.0.0/16,fe80::/10,fd00:ec2::/32,100.100.100.200/32,168.63.129.16/32,"                  \
    "metadata.google.internal,metadata.goog"
#define INSPECT_POLICY_MAX_PROBES 1024

/* What the flags say (strings borrowed for inspect_policy_init). */
struct inspect_policy_flags {
    const char *node_namespaces; /* comma list, "*" every namespace; NULL or "": none */
    bool allow_cmdline_regex;
    const char *probe_allow; /* comma list of rules; NULL or "": allow what is not denied */
    const char *probe_deny;  /* comma list of rules; NULL: INSPECT_POLICY_DENY; "": none */
    size_t max_probes;       /* per run of one HostInspection; 0: no limit */
};

struct inspect_policy_rule; /* one CIDR or host name rule */

struct inspect_policy {
    char **node_namespaces; /* owned NULL-terminated list; NULL with all_namespaces */
    bool all_namespaces;
    bool allow_cmdline_regex;
    struct inspect_policy_rule *allow, *deny; /* owned arrays */
    size_t n_allow, n_deny;
    size_t max_probes;
    char *node_namespaces_text, *allow_text, *deny_text; /* owned: as given, for messages */
};

/* inspect_policy_init: parse flags into *p (released by the caller whatever the result).
 * HP_ERR_INVALID with err->field the flag ("--probe-deny") naming the bad rule. */
hp_rc inspect_policy_init(struct inspect_policy *p, const struct inspect_policy_flags *flags,
                          struct hp_err *err) HP_WUR;
void inspect_policy_release(struct inspect_policy *p);

/* inspect_policy_probes: endpoint probes one run of s starts. */
size_t inspect_policy_probes(const struct inspection_spec *s);

/* inspect_policy_admit: may the HostInspection in namespace ns (borrowed) run spec s? HP_OK, or
 * HP_ERR_AUTH (a rule of the policy refuses it) / HP_ERR_INVALID (more probes than
 * max_probes) with err->field the spec field and err->msg naming the policy flag. */
hp_rc inspect_policy_admit(const struct inspect_policy *p, const char *ns,
                           const struct inspection_spec *s, struct hp_err *err) HP_WUR;

/* inspect_policy_host_ok: may a probe be sent to host (an address literal or a name, borrowed)?
 * false with why (caller's, cap bytes) saying which rule refuses it. A name the allow list does
 * not name is allowed here when the allow list has CIDR rules: its addresses decide. */
bool inspect_policy_host_ok(const struct inspect_policy *p, const char *host, char *why,
                            size_t cap);

/* inspect_policy_url_host: the host of url (borrowed) into buf (cap bytes; "" when it has none
 * or cannot be parsed; an IPv6 literal keeps its brackets). */
void inspect_policy_url_host(const char *url, char *buf, size_t cap);

/* inspect_policy_url_ok: inspect_policy_host_ok of url's host (borrowed; a URL without a host
 * passes: there is nothing to connect to). */
bool inspect_policy_url_ok(const struct inspect_policy *p, const char *url, char *why, size_t cap);

/* inspect_policy_addr_ok: may a probe connect to sa (an AF_INET or AF_INET6 address)? host
 * (borrowed, may be NULL) is the name it was resolved from: a name the allow list names
 * allows its addresses. false with why as above. */
bool inspect_policy_addr_ok(const struct inspect_policy *p, const struct sockaddr *sa,
                            const char *host, char *why, size_t cap);

#endif
