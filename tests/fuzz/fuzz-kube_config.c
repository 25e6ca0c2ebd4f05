/* fuzz-kube_config.c - kubeconfig loading as `--kubeconfig` and $KUBECONFIG do it: YAML, the
 * merge of several files, contexts, clusters, users, base64 *-data fields, exec plugins; then
 * kube_client_new on what loaded (it parses the server URL). Nothing is connected to or run.
 * Input: up to 4 files separated by lines "----"; the first is also loaded alone as
 * --kubeconfig, then all of them as $KUBECONFIG. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_peer.h"
#include "hostpatrol/alloc.h"
#include "hostpatrol/kube_client.h"
#include "hostpatrol/kube_config.h"

#define MAX_FILES 4

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void remove_dir(void)
{
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hp_alloc_install();
    snprintf(dir, sizeof(dir), "/tmp/hp-fuzz-kubeconfig-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    atexit(remove_dir);
    return 0;
}

static void load(const struct kube_config_opts *o)
{
    struct kube_config c;
    struct hp_err err = {0};
    struct kube_client *kc = NULL;

    if (kube_config_load(o, &c, &err)) {
        if (c.server || c.source)
            abort(); /* a failed load leaves nothing to release */
        return;
    }
    if (!kube_client_new(&c, &kc, &err))
        kube_client_free(kc);
    kube_config_release(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *part[MAX_FILES];
    size_t len[MAX_FILES], n = fuzz_split(data, size, part, len, MAX_FILES), i;
    char path[MAX_FILES][96], list[MAX_FILES * 97] = "";

    for (i = 0; i < n; i++) {
        FILE *f;

        snprintf(path[i], sizeof(path[i]), "%s/config%zu", dir, i);
        f = fopen(path[i], "w");
        if (!f || fwrite(part[i], 1, len[i], f) != len[i] || fclose(f))
            abort();
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ":" : "", path[i]);
    }
    load(&(struct kube_config_opts){.kubeconfig = path[0]});
    if (n > 1)
        load(&(struct kube_config_opts){.env_kubeconfig = list, .context = "fuzz"});
    for (i = 0; i < n; i++)
        unlink(path[i]);
    return 0;
}
