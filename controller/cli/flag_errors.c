/* flag_errors.c - the one message for a flag getopt_long could not take (declared in cli/cmd.h). */
#include <getopt.h>

#include "cli/cmd.h"

void hp_cli_bad_flag(FILE *errout, const char *cmd, int c, char *const argv[])
{
    const char *flag = optind > 0 ? argv[optind - 1] : "?";

    if (c == ':')
        fprintf(errout, "hostpatrol %s: %s needs a value\n", cmd, flag);
    else
        fprintf(errout, "hostpatrol %s: unknown flag '%s'\n", cmd, flag);
}
