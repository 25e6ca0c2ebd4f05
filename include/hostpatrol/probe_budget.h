/*
 * probe_budget.h - a process-wide cap on probes in flight, shared by every run (flag
 * --max-probes-in-flight). A probe holds units from the moment it starts until its result is
 * final: 1 unit for tcp, tls, dns and http, PROBE_BUDGET_BODY_UNITS for an http probe with
 * bodyRegex (it may keep up to 1 MiB of body). So the memory probes hold is bounded by about
 * 64 KiB per unit, whatever the HostInspections ask for: a run that finds the budget used up
 * starts its remaining probes as units come back, and what has not started by its deadline is
 * UNKNOWN ("not started: ...").
 *
 * A probe abandoned while libcurl was still resolving its name leaves a resolver thread behind
 * (libcurl detaches it; it ends when glibc's resolver gives up, after its timeouts): its units
 * stay taken PROBE_BUDGET_RESOLVER_GRACE_MS longer (probe_budget_park), so names that never
 * answer cannot pile up threads and sockets faster than the budget allows.
 *
 * Shares: each owner (the reconciler passes the HostInspection's namespace) may hold at most
 * owner_limit units (--max-probes-in-flight-per-namespace), so one namespace's probes waiting out
 * their timeouts cannot take the whole budget from the others.
 *
 * Thread-safety: every function may be called from any thread; one mutex guards the counters.
 */
#ifndef HOSTPATROL_PROBE_BUDGET_H
#define HOSTPATROL_PROBE_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostpatrol/rc.h"

#define PROBE_BUDGET_BODY_UNITS        16    /* 1 MiB of body / 64 KiB per unit */
#define PROBE_BUDGET_RESOLVER_GRACE_MS 60000 /* units of an abandoned name resolution */

struct probe_budget;

struct probe_budget_stats {
    size_t limit, owner_limit;
    size_t in_use;    /* parked included */
    size_t parked;    /* units kept for abandoned name resolutions */
    size_t owners;    /* owners holding units */
    uint64_t refused; /* take calls that found too few units (in all, or in the owner's share) */
};

/* probe_budget_new: limit units (>= 1), at most owner_limit of them per owner (0 or more than
 * limit: limit). *out owned: probe_budget_free. */
hp_rc probe_budget_new(size_t limit, size_t owner_limit, struct probe_budget **out) HP_WUR;
void probe_budget_free(struct probe_budget *b);

/* probe_budget_take: take units for owner (borrowed; NULL: ""), never waiting: a request above
 * the owner limit takes the whole owner limit. Returns the units taken, 0 when too few are free
 * (*owner_full, if not NULL, says the owner's share was the limit); b NULL: units, no cap. */
size_t probe_budget_take(struct probe_budget *b, const char *owner, size_t units, bool *owner_full);

/* probe_budget_give: give back what probe_budget_take returned, for the same owner. */
void probe_budget_give(struct probe_budget *b, const char *owner, size_t units);

/* probe_budget_park: give units back only after ms (their probe ended, something it started
 * may still run). NULL allowed. */
void probe_budget_park(struct probe_budget *b, const char *owner, size_t units, int64_t ms);

void probe_budget_stats(struct probe_budget *b, struct probe_budget_stats *out);

struct prom_writer;
/* probe_budget_metrics: hostpatrol_probes_in_flight, _in_flight_limit, hostpatrol_probe_budget_
 * waits_total, hostpatrol_probes_parked (zeros for NULL). Thread-safe. */
void probe_budget_metrics(struct probe_budget *b, struct prom_writer *w);

#endif
