/* flag_errors.c - the one message for a flag getopt_long could not take (declared in cli/cmd.h). */
#include <getopt.h>
#include <string.h>

#include "cli/cmd.h"

void hp_cli_bad_flag(FILE *errout, const char *cmd, int c, char *const argv[])
{
    const char *word = optind > 0 ? argv[optind - 1] : "";
    char flag[64];

    /* a long option is the word itself; a short one is optopt, wherever getopt stood in a
     * cluster like -xA (argv[optind - 1] may then be the word before it) */
    if (!strncmp(word, "--", 2) || optopt <= 0 || optopt > 126)
        snprintf(flag, sizeof(flag), "%.62s", word);
    else
        snprintf(flag, sizeof(flag), "-%c", optopt);
    if (c == ':')
        fprintf(errout, "hostpatrol %s: %s needs a value\n", cmd, flag);
    else
        fprintf(errout, "hostpatrol %s: unknown flag '%s'\n", cmd, flag);
}
