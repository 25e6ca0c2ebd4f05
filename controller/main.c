/* main.c - hostpatrol's entry point: global set-up and subcommand dispatch, nothing else. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"
#include "hostpatrol/alloc.h"

struct subcommand {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv, FILE *out, FILE *errout);
};

static const struct subcommand subcommands[] = {
    {"controller", "run the HostInspection reconcile loop (operator)", hp_cmd_controller},
    {"agent", "run node-local checks on this node (DaemonSet)", hp_cmd_agent},
    {"inspect", "run a HostInspection's checks on this host, no cluster needed ('-f FILE')",
     hp_cmd_inspect},
    {
        "bench",
        "measure etcd write capacity through the batch queue ('bench etcd')",
        hp_cmd_bench,
    },
    {"results", "print the latest results from etcd", hp_cmd_results},
    {"watch", "follow the results the controller commits (its /ws stream)", hp_cmd_watch},
    {"version", "print the version and linked library versions", hp_cmd_version},
};

static void usage(FILE *f)
{
    size_t i;

    fprintf(f, "Usage: hostpatrol <command> [flags]\n\n"
               "hostpatrol inspects hosts on the schedule of HostInspection resources\n"
               "(hostpatrol.io/v1alpha1) and writes the results into etcd.\n\nCommands:\n");
    for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        fprintf(f, "  %-12s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(f, "\nRun 'hostpatrol <command> --help' for the flags of a command.\n");
}

int main(int argc, char **argv)
{
    const struct subcommand *cmd = NULL;
    int status;
    size_t i;

    if (argc < 2) {
        usage(stderr);
        return HP_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return HP_EXIT_OK;
    }
    for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        if (!strcmp(argv[1], subcommands[i].name))
            cmd = &subcommands[i];
    if (!cmd) {
        fprintf(stderr, "hostpatrol: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return HP_EXIT_USAGE;
    }
    hp_alloc_install();
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
        fprintf(stderr, "hostpatrol: libcurl failed to initialise\n");
        return HP_EXIT_FAIL;
    }
    status = cmd->run(argc - 1, argv + 1, stdout, stderr);
    curl_global_cleanup();
    return status;
}
