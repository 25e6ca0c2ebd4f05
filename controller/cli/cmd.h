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

#include <stdio.h>

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

#endif
