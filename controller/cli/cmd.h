/*
 * cmd.h - entry points of hostpatrol's subcommands. main.c dispatches to them; each lives in
 * its own file under controller/cli/ and only parses its flags and wires modules.
 *
 * Contract for every hp_cmd_*: argv[0] is the subcommand name; the function returns the
 * process exit status (0 success, 1 runtime failure, 2 usage error) and prints its own
 * output and errors to `out`/`errout` (borrowed streams).
 */
#ifndef HOSTPATROL_CLI_CMD_H
#define HOSTPATROL_CLI_CMD_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "hostpatrol/etcd_client.h"
#include "hostpatrol/inspect_policy.h"

#define HP_EXIT_OK    0
#define HP_EXIT_FAIL  1
#define HP_EXIT_USAGE 2

int hp_cmd_version(int argc, char **argv, FILE *out, FILE *errout);
int hp_cmd_bench(int argc, char **argv, FILE *out, FILE *errout);
/* hp_cmd_bench_probes: `hostpatrol bench probes`, dispatched by hp_cmd_bench (argv[0] "probes") */
int hp_cmd_bench_probes(int argc, char **argv, FILE *out, FILE *errout);
int hp_cmd_controller(int argc, char **argv, FILE *out, FILE *errout);
int hp_cmd_inspect(int argc, char **argv, FILE *out, FILE *errout);
int hp_cmd_agent(int argc, char **argv, FILE *out, FILE *errout);
int hp_cmd_results(int argc, char **argv, FILE *out, FILE *errout);
int hp_cmd_watch(int argc, char **argv, FILE *out, FILE *errout);

/* The etcd connection flags of controller, agent and results (etcd_flags.c): put
 * HP_ETCD_LONG_OPTIONS in the getopt_long table; hp_cli_etcd_option sets cfg for one of them
 * (false: not an etcd flag); hp_cli_etcd_flag names the flag behind an etcd_config field that an
 * error names (err.field). */
enum {
    HP_OPT_ETCD_ENDPOINTS = 1000,
    HP_OPT_ETCD_CA,
    HP_OPT_ETCD_CERT,
    HP_OPT_ETCD_KEY,
    HP_OPT_ETCD_SNI,
    HP_OPT_ETCD_USER,
    HP_OPT_ETCD_TRANSPORT
};
#define HP_ETCD_LONG_OPTIONS                                                                       \
    {"etcd-endpoints", required_argument, NULL, HP_OPT_ETCD_ENDPOINTS},                            \
        {"etcd-ca-file", required_argument, NULL, HP_OPT_ETCD_CA},                                 \
        {"etcd-cert-file", required_argument, NULL, HP_OPT_ETCD_CERT},                             \
        {"etcd-key-file", required_argument, NULL, HP_OPT_ETCD_KEY},                               \
        {"etcd-server-name", required_argument, NULL, HP_OPT_ETCD_SNI},                            \
        {"etcd-transport", required_argument, NULL, HP_OPT_ETCD_TRANSPORT},                        \
    {                                                                                              \
        "etcd-user", required_argument, NULL, HP_OPT_ETCD_USER                                     \
    }
bool hp_cli_etcd_option(int c, const char *arg, struct etcd_config *cfg);
const char *hp_cli_etcd_flag(const char *field); /* static string */

/* The cluster admin's inspection policy and the probe budgets, flags of controller and agent
 * (policy_flags.c, inspect_policy.h, probe_budget.h): put HP_POLICY_LONG_OPTIONS in the
 * getopt_long table, call hp_cli_policy_defaults first; hp_cli_policy_option returns 1 for a
 * policy flag it took, 0 for another flag, -1 for a bad value (the message is on errout).
 * Strings stay borrowed from argv. */
#define HP_CLI_MAX_PROBES_IN_FLIGHT 512
#define HP_CLI_MAX_SOCKETS_PER_RUN  256
#define HP_CLI_MAX_IN_FLIGHT_PER_NS 256
struct hp_cli_policy {
    struct inspect_policy_flags flags;
    bool namespaces_set; /* --node-checks-namespaces was given */
    size_t max_in_flight, max_in_flight_per_ns, max_sockets_per_run;
};
enum {
    HP_OPT_POLICY_NODE_NS = 1100,
    HP_OPT_POLICY_CMDLINE,
    HP_OPT_POLICY_ALLOW,
    HP_OPT_POLICY_DENY,
    HP_OPT_POLICY_MAX_PROBES,
    HP_OPT_BUDGET_IN_FLIGHT,
    HP_OPT_BUDGET_SOCKETS,
    HP_OPT_BUDGET_PER_NS
};
#define HP_POLICY_LONG_OPTIONS                                                                     \
    {"node-checks-namespaces", required_argument, NULL, HP_OPT_POLICY_NODE_NS},                    \
        {"allow-cmdline-regex", no_argument, NULL, HP_OPT_POLICY_CMDLINE},                         \
        {"probe-allow", required_argument, NULL, HP_OPT_POLICY_ALLOW},                             \
        {"probe-deny", required_argument, NULL, HP_OPT_POLICY_DENY},                               \
        {"max-probes-per-inspection", required_argument, NULL, HP_OPT_POLICY_MAX_PROBES},          \
        {"max-probes-in-flight", required_argument, NULL, HP_OPT_BUDGET_IN_FLIGHT},                \
        {"max-probes-in-flight-per-namespace", required_argument, NULL, HP_OPT_BUDGET_PER_NS},     \
    {                                                                                              \
        "max-sockets-per-run", required_argument, NULL, HP_OPT_BUDGET_SOCKETS                      \
    }
#define HP_POLICY_USAGE                                                                            \
    "Cluster policy (the same flags for controller and agent):\n"                                  \
    "  --node-checks-namespaces NS,... namespaces whose HostInspections may run node-local\n"      \
    "                                  and nodeCondition checks; * for all (default: this pod's\n" \
    "                                  namespace in a cluster, else every namespace)\n"            \
    "  --allow-cmdline-regex           process checks may match command lines (default: by\n"      \
    "                                  name only)\n"                                               \
    "  --probe-allow RULES             CIDRs, addresses, host names, .domains probes may reach\n"  \
    "                                  (default: all that is not denied)\n"                        \
    "  --probe-deny RULES              never probed (default " INSPECT_POLICY_DENY ")\n"           \
    "  --max-probes-per-inspection N   probes one run may start, else InvalidSpec (default "       \
    "1024; 0: no limit)\n"                                                                         \
    "  --max-probes-in-flight N        probes in flight in the process (default 512; an http\n"    \
    "                                  probe with bodyRegex counts 16)\n"                          \
    "  --max-probes-in-flight-per-namespace N   of those, at most N for one namespace's\n"         \
    "                                  resources (default 256)\n"                                  \
    "  --max-sockets-per-run N         probes of one run in flight at once (default 256)\n"
void hp_cli_policy_defaults(struct hp_cli_policy *p);
int hp_cli_policy_option(int c, const char *arg, struct hp_cli_policy *p, const char *cmd,
                         FILE *errout);

/* Every subcommand's getopt_long optstring starts with ':' (HP_OPTSTRING), so a flag missing
 * its value is told apart from an unknown one. hp_cli_bad_flag prints, for the c getopt_long
 * returned (':' or '?'), "hostpatrol CMD: FLAG needs a value" or "hostpatrol CMD: unknown flag
 * 'FLAG'", naming argv[optind - 1]; the caller prints its usage after it. */
#define HP_OPTSTRING(s) (":" s)
void hp_cli_bad_flag(FILE *errout, const char *cmd, int c, char *const argv[]);

#endif
