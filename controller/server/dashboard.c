/* dashboard.c - the dashboard's assets and messages (see include/hostpatrol/dashboard.h).
 *
 * The assets are controller/server/dashboard/{index.html,dashboard.js,dashboard.css}, turned
 * into byte arrays in build/gen/dashboard_assets.h by the Makefile (xxd -i). */
#include "hostpatrol/dashboard.h"

#include <string.h>

#include "dashboard_assets.h"
#include "hostpatrol/alloc.h"

#define DASH_MAX_CONDITIONS 16
#define DASH_MAX_STR        1024

static const struct http_asset assets[] = {
    {"/", "text/html; charset=utf-8", controller_server_dashboard_index_html,
     sizeof(controller_server_dashboard_index_html)},
    {"/index.html", "text/html; charset=utf-8", controller_server_dashboard_index_html,
     sizeof(controller_server_dashboard_index_html)},
    {"/dashboard.js", "text/javascript; charset=utf-8", controller_server_dashboard_dashboard_js,
     sizeof(controller_server_dashboard_dashboard_js)},
    {"/dashboard.css", "text/css; charset=utf-8", controller_server_dashboard_dashboard_css,
     sizeof(controller_server_dashboard_dashboard_css)},
};

const struct http_asset *dashboard_assets(size_t *n)
{
    *n = sizeof(assets) / sizeof(assets[0]);
    return assets;
}

/* copy_str: out[key] = obj[key] when it is a string (cut at DASH_MAX_STR bytes, on a UTF-8
 * boundary). Returns nonzero when out of memory. */
static int copy_str(json_t *out, const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    size_t n;
    const char *s;

    if (!json_is_string(v))
        return 0;
    s = json_string_value(v);
    n = json_string_length(v);
    if (n > DASH_MAX_STR) {
        n = DASH_MAX_STR;
        while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    return json_object_set_new(out, key, json_stringn(s, n));
}

static int copy_int(json_t *out, const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    return json_is_integer(v) ? json_object_set_new(out, key, json_integer(json_integer_value(v)))
                              : 0;
}

char *dashboard_inspection_json(const json_t *obj)
{
    const json_t *md = json_object_get(obj, "metadata"), *st = json_object_get(obj, "status");
    const json_t *spec = json_object_get(obj, "spec"), *sum = json_object_get(st, "summary"), *c;
    const char *ns = json_string_value(json_object_get(md, "namespace")),
               *name = json_string_value(json_object_get(md, "name"));
    json_t *out = NULL, *conds = NULL, *o;
    char *text = NULL;
    size_t i;
    int bad = 0;

    if (!ns || !name)
        return NULL;
    out = json_pack("{s:s,s:s,s:s}", "type", "inspection", "namespace", ns, "name", name);
    conds = json_array();
    if (!out || !conds)
        goto out;
    bad |= copy_int(out, md, "generation");
    bad |= copy_int(out, st, "observedGeneration");
    bad |= copy_str(out, st, "lastRunTime");
    bad |= copy_str(out, st, "nextRunTime");
    if (json_is_true(json_object_get(spec, "suspend")))
        bad |= json_object_set_new(out, "suspend", json_true());
    if (json_is_object(sum)) {
        json_t *s = json_object();

        bad |= !s || json_object_set_new(out, "summary", s);
        for (i = 0; s && i < 4; i++)
            bad |= copy_int(s, sum, (const char *[]){"ok", "warn", "crit", "unknown"}[i]);
    }
    json_array_foreach(json_object_get(st, "conditions"), i, c)
    {
        if (i >= DASH_MAX_CONDITIONS || !json_is_object(c))
            break;
        o = json_object();
        bad |= !o || json_array_append_new(conds, o);
        if (!o)
            break;
        bad |= copy_str(o, c, "type");
        bad |= copy_str(o, c, "status");
        bad |= copy_str(o, c, "reason");
        bad |= copy_str(o, c, "message");
        bad |= copy_str(o, c, "lastTransitionTime");
    }
    bad |= json_object_set(out, "conditions", conds);
    if (!bad)
        text = json_dumps(out, JSON_COMPACT);
out:
    json_decref(conds);
    json_decref(out);
    return text;
}

char *dashboard_deleted_json(const char *ns, const char *name)
{
    json_t *out = json_pack("{s:s,s:s,s:s}", "type", "deleted", "namespace", ns, "name", name);
    char *text = out ? json_dumps(out, JSON_COMPACT) : NULL;

    json_decref(out);
    return text;
}
