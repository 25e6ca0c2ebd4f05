/*
 * kube_leader.h - leader election on a coordination.k8s.io/v1 Lease, as client-go does it:
 *   - every retry period: read the Lease; if nobody holds it, or its holder has not renewed it
 *     for a whole lease duration *as observed locally* (the time we last saw the record change,
 *     never the remote timestamps: clock skew cannot steal leadership), take it with an
 *     optimistic update (resourceVersion); a conflict means someone else won this round;
 *   - the leader renews every retry period; if it cannot renew within the renew deadline it
 *     stops leading (on_stopped) before anyone else can take over;
 *   - kube_leader_stop releases a held Lease (holderIdentity emptied), so a successor need not
 *     wait out the lease.
 * Leases are time-based, not fencing: callers fence their writes separately (on_started is
 * where the controller claims a new etcd epoch).
 * Threads: one elector thread; callbacks run on it. is_leader is an atomic read.
 */
#ifndef HOSTPATROL_KUBE_LEADER_H
#define HOSTPATROL_KUBE_LEADER_H

#include <stdbool.h>
#include <stdint.h>

#include "hostpatrol/kube_client.h"

struct kube_leader_config {
    struct kube_client *client; /* borrowed */
    const char *namespace_;
    const char *name;              /* the Lease */
    const char *identity;          /* this candidate, unique (e.g. pod name + random) */
    int64_t lease_ms;              /* 0: 15000 */
    int64_t renew_ms;              /* renew deadline; 0: 10000 */
    int64_t retry_ms;              /* 0: 2000 */
    void (*on_started)(void *arg); /* became leader */
    void (*on_stopped)(void *arg); /* lost leadership (or stopped while leading) */
    void *arg;
};

struct kube_leader;

hp_rc kube_leader_start(const struct kube_leader_config *cfg, struct kube_leader **out,
                        struct hp_err *err) HP_WUR;
bool kube_leader_is_leader(struct kube_leader *l);
/* kube_leader_stop: stop; release the Lease if held (release = false: leave it to expire, as a
 * crash would); joins and frees. */
void kube_leader_stop(struct kube_leader *l, bool release);

#endif
