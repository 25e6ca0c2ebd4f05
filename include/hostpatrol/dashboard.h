/*
 * dashboard.h - the live dashboard at / on the metrics server: its page (one HTML, one script,
 * one stylesheet, embedded into the binary at build time: no CDN, works offline) and the
 * messages it reads from /ws besides the committed runs.
 *
 * The page holds no data: it asks for a bearer token (kept in the tab's sessionStorage) and
 * opens /ws with the subprotocol DASHBOARD_PROTOCOL, the token riding as a second subprotocol
 * (http_server.h). Such a client gets first the kept state (every HostInspection it may read,
 * the latest committed run of each), then {"type":"synced"}, then live messages.
 *
 * Pure functions; thread-safe. Nothing here blocks.
 */
#ifndef HOSTPATROL_DASHBOARD_H
#define HOSTPATROL_DASHBOARD_H

#include <jansson.h>
#include <stddef.h>

#include "hostpatrol/http_server.h"

#define DASHBOARD_PROTOCOL "hostpatrol.dashboard.v1"
#define DASHBOARD_SLOT     1 /* http_server_keep slot of the inspections' state */
/* http_server_set_notice texts: whether this replica reconciles (a standby has nothing to show) */
#define DASHBOARD_LEADING "{\"type\":\"replica\",\"leading\":true}"
#define DASHBOARD_STANDBY "{\"type\":\"replica\",\"leading\":false}"

/* dashboard_assets: the page's files (static, never freed); *n set to their number. */
const struct http_asset *dashboard_assets(size_t *n);

/* dashboard_inspection_json: the dashboard's message about a HostInspection (obj borrowed):
 * {"type":"inspection","namespace","name","generation","observedGeneration","suspend",
 *  "lastRunTime","nextRunTime","summary":{...},"conditions":[{"type","status","reason",
 *  "message","lastTransitionTime"}]} (what is absent is left out; at most 16 conditions, each
 * string cut at 1024 bytes). Owned text (hp_free), or NULL without a namespace and name or when
 * out of memory. */
char *dashboard_inspection_json(const json_t *obj);

/* dashboard_deleted_json: {"type":"deleted","namespace":NS,"name":NAME} (owned), or NULL. */
char *dashboard_deleted_json(const char *ns, const char *name);

#endif
