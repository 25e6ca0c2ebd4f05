/* fuzz-host_check.c - the node-local checks' readers of host files (host_check_run on a fixture
 * root the input fills): /proc/loadavg, /proc/stat (cpuN lines), sys/.../cpu/online ("0-3,6"),
 * /proc/meminfo, /proc/uptime, and one process's comm and cmdline (NULs, cmdlineRegex).
 * Every result must have a status, and a reason when it is not OK.
 * Input: the files' contents in that order, separated by lines "----" (missing ones are absent,
 * which the checks report as UNKNOWN). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_peer.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/check_result.h"
#include "hostpatrol/host_check.h"
#include "hostpatrol/inspection_spec.h"

#define N_CHECKS 4

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const files[] = {
    "proc/loadavg",     "proc/stat",   "sys/devices/system/cpu/online",
    "proc/meminfo",     "proc/uptime", "proc/4242/comm",
    "proc/4242/cmdline"};
#define N_FILES (sizeof(files) / sizeof(files[0]))

static char root[64];
static struct inspection_spec spec;

static void remove_root(void)
{
    char p[256];

    for (size_t i = 0; i < N_FILES; i++) {
        snprintf(p, sizeof(p), "%s/%s", root, files[i]);
        unlink(p);
    }
    static const char *const dirs[] = {
        "proc/4242", "proc", "sys/devices/system/cpu", "sys/devices/system", "sys/devices", "sys"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", root, dirs[i]);
        rmdir(p);
    }
    rmdir(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char text[] =
        "{\"checks\":["
        "{\"name\":\"load\",\"load\":{\"window\":\"5m\",\"warnPerCPU\":\"2\",\"critPerCPU\":\"4\"}}"
        ","
        "{\"name\":\"mem\",\"memory\":{\"warnAvailablePercent\":10,\"critAvailablePercent\":5}},"
        "{\"name\":\"sshd\",\"process\":{\"name\":\"sshd\",\"maxCount\":1}},"
        "{\"name\":\"agent\",\"process\":{\"cmdlineRegex\":\"^/usr/bin/agent --x(=| )[0-9]+\","
        "\"minCount\":1}}]}";
    struct hp_err err = {0};
    json_t *j;
    char p[256];

    (void)argc;
    (void)argv;
    hp_alloc_install();
    snprintf(root, sizeof(root), "/tmp/hp-fuzz-host-XXXXXX");
    if (!mkdtemp(root))
        abort();
    atexit(remove_root);
    snprintf(p, sizeof(p), "%s/proc", root);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/proc/4242", root);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/sys", root);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/sys/devices", root);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/sys/devices/system", root);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/sys/devices/system/cpu", root);
    mkdir(p, 0700);
    j = json_loads(text, 0, NULL);
    if (!j || inspection_spec_parse(j, &spec, &err) || spec.n_checks != N_CHECKS) {
        fprintf(stderr, "fuzz-host_check: %s\n", err.msg);
        abort();
    }
    json_decref(j);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *part[N_FILES];
    size_t len[N_FILES], n = fuzz_split(data, size, part, len, N_FILES), i;
    const struct check_spec *checks[N_CHECKS];
    struct check_result out[N_CHECKS];
    struct hp_err err = {0};
    char p[256];

    for (i = 0; i < N_FILES; i++) {
        FILE *f;

        snprintf(p, sizeof(p), "%s/%s", root, files[i]);
        if (i >= n) {
            unlink(p);
            continue;
        }
        f = fopen(p, "w");
        if (!f || fwrite(part[i], 1, len[i], f) != len[i] || fclose(f))
            abort();
    }
    for (i = 0; i < N_CHECKS; i++)
        checks[i] = &spec.checks[i];
    if (!host_check_run(root, "node", checks, N_CHECKS, NULL, out, &err))
        for (i = 0; i < N_CHECKS; i++)
            if (out[i].status != CHECK_OK && (!out[i].reason || !out[i].reason[0]))
                abort(); /* a result that is not OK says why */
    for (i = 0; i < N_CHECKS; i++)
        check_result_release(&out[i]);
    return 0;
}
