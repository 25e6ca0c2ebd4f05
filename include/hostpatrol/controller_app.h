/*
 * controller_app.h - the process behind `hostpatrol controller` and `hostpatrol agent`: from
 * its configuration (the subcommand's flags) to the etcd and kube clients, the admin's policy
 * and probe budget, the servers of /metrics, /ws, /healthz and /readyz (app_status.h), leader
 * election (controller), and, while this replica leads, the batch queue and the reconciler
 * (the agent runs it in agent mode). The supervision loop turns every 200 ms until SIGTERM or
 * SIGINT, a lost leadership or a fenced etcd writer epoch; then runs drain, batches not final
 * are journaled and the Lease is released, within --shutdown-timeout.
 *
 * Periodic work of the supervision loop (one place): every turn (200 ms) the liveness stamp of
 * /healthz, the leadership and fencing checks, the watch's log lines; every 5 s an etcd status
 * check (for /readyz); every 10 s malloc_trim.
 */
#ifndef HOSTPATROL_CONTROLLER_APP_H
#define HOSTPATROL_CONTROLLER_APP_H

#include <stdbool.h>
#include <stdint.h>

#include "hostpatrol/etcd_client.h"
#include "hostpatrol/inspect_policy.h"
#include "hostpatrol/kube_config.h"
#include "hostpatrol/logger.h"
#include "hostpatrol/rc.h"
#include "hostpatrol/reconciler.h"

/* SIGTERM to exit: runs finish until CONTROLLER_APP_SHUTDOWN_RESERVE_MS before the shutdown
 * timeout, then are cancelled; the reserve covers the journal of batches not final, the Lease
 * release (2 s at most) and the servers' stop. */
#define CONTROLLER_APP_SHUTDOWN_DEFAULT_MS 15000
#define CONTROLLER_APP_SHUTDOWN_MIN_MS     2000
#define CONTROLLER_APP_SHUTDOWN_RESERVE_MS 3000

/* Every string is borrowed and must outlive controller_app_run. */
struct controller_app_config {
    bool agent; /* `hostpatrol agent` (node_name, host_root) rather than the controller */
    struct kube_config_opts kube;
    struct etcd_config etcd;
    /* the reconciler's; kube, etcd, batch, prefix, identity, log, policy, budget and the
     * publishing hooks are set by the app */
    struct reconciler_config rec;
    const char *lease_ns, *lease_name, *identity, *state_dir, *prefix;
    const char *metrics_bind, *health_bind; /* "0" or "": that server is off */
    const char *metrics_cert_dir;           /* NULL: a self-signed certificate */
    int64_t auth_ttl_ms, auth_timeout_ms;
    bool metrics_secure;               /* HTTPS and access reviews on the metrics server */
    bool dashboard;                    /* the dashboard at / of the metrics server */
    const char *node_name, *host_root; /* agent */
    /* the admin's policy and the probe budget */
    struct inspect_policy_flags policy;
    bool policy_namespaces_set; /* else: this pod's namespace in a cluster, all outside one */
    size_t max_in_flight, max_in_flight_per_ns, max_sockets_per_run;
    int64_t lease_ms, renew_ms, retry_ms;
    int64_t shutdown_ms; /* SIGTERM to exit, at most (about) */
    bool leader_elect;
    /* etcd_flag: the flag behind an etcd_config field an error names (err.field), for the
     * message; static string */
    const char *(*etcd_flag)(const char *field);
};

enum controller_app_exit {
    CONTROLLER_APP_STOPPED = 0, /* stopped by SIGTERM or SIGINT */
    CONTROLLER_APP_FAILED = 1,  /* could not start, or stopped by a failure */
    CONTROLLER_APP_BAD_FLAG = 2 /* a flag's value was refused when used at start */
};

/* controller_app_run: run until stopped (blocks the calling thread, which must be the only one:
 * it blocks SIGTERM and SIGINT for every thread it starts and waits for them). cfg->rec is
 * filled in (cfg borrowed). Lines go to log (borrowed). Returns how it ended; when it could not
 * start, err->msg says why (to be printed after "hostpatrol controller: "), else err->msg stays
 * empty (the log said it). */
enum controller_app_exit controller_app_run(struct controller_app_config *cfg,
                                            struct hp_logger *log, struct hp_err *err);

#endif
