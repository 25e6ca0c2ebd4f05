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
    HP_OPT_ETCD_USER
};
#define HP_ETCD_LONG_OPTIONS                                                                       \
    {"etcd-endpoints", required_argument, NULL, HP_OPT_ETCD_ENDPOINTS},                            \
        {"etcd-ca-file", required_argument, NULL, HP_OPT_ETCD_CA},                                 \
        {"etcd-cert-file", required_argument, NULL, HP_OPT_ETCD_CERT},                             \
        {"etcd-key-file", required_argument, NULL, HP_OPT_ETCD_KEY},                               \
        {"etcd-server-name", required_argument, NULL, HP_OPT_ETCD_SNI},                            \
    {                                                                                              \
        "etcd-user", required_argument, NULL, HP_OPT_ETCD_USER                                     \
    }
bool hp_cli_etcd_option(int c, const char *arg, struct etcd_config *cfg);
const char *hp_cli_etcd_flag(const char *field); /* static string */

/* Every subcommand's getopt_long optstring starts with ':' (HP_OPTSTRING), so a flag missing
 * its value is told apart from an unknown one. hp_cli_bad_flag prints, for the c getopt_long
 * returned (':' or '?'), "hostpatrol CMD: FLAG needs a value" or "hostpatrol CMD: unknown flag
 * 'FLAG'", naming argv[optind - 1]; the caller prints its usage after it. */
#define HP_OPTSTRING(s) (":" s)
void hp_cli_bad_flag(FILE *errout, const char *cmd, int c, char *const argv[]);

#endif
