/* etcd_flags.c - the etcd connection flags shared by `controller`, `agent` and `results`
 * (declared in cli/cmd.h). */
#include <string.h>

#include "cli/cmd.h"

bool hp_cli_etcd_option(int c, const char *arg, struct etcd_config *cfg)
{
    switch (c) {
    case HP_OPT_ETCD_ENDPOINTS:
        cfg->endpoints = arg;
        return true;
    case HP_OPT_ETCD_CA:
        cfg->ca_file = arg;
        return true;
    case HP_OPT_ETCD_CERT:
        cfg->cert_file = arg;
        return true;
    case HP_OPT_ETCD_KEY:
        cfg->key_file = arg;
        return true;
    case HP_OPT_ETCD_SNI:
        cfg->server_name = arg;
        return true;
    case HP_OPT_ETCD_USER:
        cfg->username = arg;
        return true;
    case HP_OPT_ETCD_TRANSPORT: /* a bad value is named by etcd_client_new */
        cfg->transport = !strcmp(arg, "grpc")      ? ETCD_TRANSPORT_GRPC
                         : !strcmp(arg, "gateway") ? ETCD_TRANSPORT_GATEWAY
                                                   : ETCD_TRANSPORT__INVALID;
        return true;
    default:
        return false;
    }
}

const char *hp_cli_etcd_flag(const char *field)
{
    static const char *const map[][2] = {
        {"endpoints", "--etcd-endpoints"},         {"ca_file", "--etcd-ca-file"},
        {"cert_file", "--etcd-cert-file"},         {"key_file", "--etcd-key-file"},
        {"server_name", "--etcd-server-name"},     {"username", "--etcd-user"},
        {"password", "$HOSTPATROL_ETCD_PASSWORD"}, {"transport", "--etcd-transport"}};
    size_t i;

    for (i = 0; field && i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(field, map[i][0]))
            return map[i][1];
    return "etcd";
}
