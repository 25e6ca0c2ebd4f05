/* version.c - `hostpatrol version [-o text|json]`. */
#include <getopt.h>
#include <string.h>

#include "cli/cmd.h"
#include "hostpatrol/buildinfo.h"

static void version_usage(FILE *f)
{
    fprintf(f, "Usage: hostpatrol version [-o text|json]\n"
               "Print hostpatrol's version and the versions of the libraries it runs with.\n");
}

int hp_cmd_version(int argc, char **argv, FILE *out, FILE *errout)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *format = "text";
    struct hp_buildinfo bi;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, HP_OPTSTRING("o:h"), opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            format = optarg;
            break;
        case 'h':
            version_usage(out);
            return HP_EXIT_OK;
        default:
            hp_cli_bad_flag(errout, "version", c, argv);
            version_usage(errout);
            return HP_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(errout, "hostpatrol version: unexpected argument '%s'\n", argv[optind]);
        return HP_EXIT_USAGE;
    }
    hp_buildinfo_get(&bi);
    if (strcmp(format, "json") == 0) {
        json_t *j = hp_buildinfo_json(&bi);
        int rc = j ? json_dumpf(j, out, JSON_INDENT(2) | JSON_SORT_KEYS) : -1;

        json_decref(j);
        if (rc) {
            fprintf(errout, "hostpatrol version: cannot write JSON\n");
            return HP_EXIT_FAIL;
        }
        fputc('\n', out);
    } else if (strcmp(format, "text") == 0) {
        fprintf(out,
                "hostpatrol %s (commit %s, %s)\n"
                "  libcurl %s, jansson %s, libyaml %s, libwebsockets %s, %s\n",
                bi.version, bi.commit, bi.compiler, bi.curl, bi.jansson, bi.yaml, bi.lws,
                bi.openssl);
    } else {
        fprintf(errout, "hostpatrol version: --output '%s' is not one of text, json\n", format);
        return HP_EXIT_USAGE;
    }
    return HP_EXIT_OK;
}
