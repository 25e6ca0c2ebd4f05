/* policy_flags.c - the cluster admin's inspection policy and probe budgets: flags shared by
 * `controller` and `agent` (declared in cli/cmd.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"

void hp_cli_policy_defaults(struct hp_cli_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->flags.max_probes = INSPECT_POLICY_MAX_PROBES;
    p->max_in_flight = HP_CLI_MAX_PROBES_IN_FLIGHT;
    p->max_in_flight_per_ns = HP_CLI_MAX_IN_FLIGHT_PER_NS;
    p->max_sockets_per_run = HP_CLI_MAX_SOCKETS_PER_RUN;
}

/* count: a whole number from min to max into *dst; false (and a message) if not */
static bool count(const char *cmd, const char *flag, const char *arg, long min, long max,
                  size_t *dst, FILE *errout)
{
    char *end = NULL;
    long n;

    errno = 0;
    n = strtol(arg, &end, 10);
    if (errno || end == arg || *end || n < min || n > max || arg[0] < '0' || arg[0] > '9') {
        fprintf(errout, "hostpatrol %s: %s '%s' is not a whole number from %ld to %ld\n", cmd, flag,
                arg, min, max);
        return false;
    }
    *dst = (size_t)n;
    return true;
}

int hp_cli_policy_option(int c, const char *arg, struct hp_cli_policy *p, const char *cmd,
                         FILE *errout)
{
    switch (c) {
    case HP_OPT_POLICY_NODE_NS:
        p->flags.node_namespaces = arg;
        p->namespaces_set = true;
        return 1;
    case HP_OPT_POLICY_CMDLINE:
        p->flags.allow_cmdline_regex = true;
        return 1;
    case HP_OPT_POLICY_ALLOW:
        p->flags.probe_allow = arg;
        return 1;
    case HP_OPT_POLICY_DENY:
        p->flags.probe_deny = arg;
        return 1;
    case HP_OPT_POLICY_MAX_PROBES:
        return count(cmd, "--max-probes-per-inspection", arg, 0, 1000000, &p->flags.max_probes,
                     errout)
                   ? 1
                   : -1;
    case HP_OPT_BUDGET_IN_FLIGHT:
        return count(cmd, "--max-probes-in-flight", arg, 1, 1000000, &p->max_in_flight, errout)
                   ? 1
                   : -1;
    case HP_OPT_BUDGET_PER_NS:
        return count(cmd, "--max-probes-in-flight-per-namespace", arg, 1, 1000000,
                     &p->max_in_flight_per_ns, errout)
                   ? 1
                   : -1;
    case HP_OPT_BUDGET_SOCKETS:
        return count(cmd, "--max-sockets-per-run", arg, 1, 1000000, &p->max_sockets_per_run, errout)
                   ? 1
                   : -1;
    default:
        return 0;
    }
}
