/* rc.c - names of hp_rc values and the hp_err helpers (see include/hostpatrol/rc.h). */
#include "hostpatrol/rc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const rc_names[HP_RC__COUNT] = {
    [HP_OK] = "ok",
    [HP_ERR_NOMEM] = "nomem",
    [HP_ERR_INVALID] = "invalid",
    [HP_ERR_NOTFOUND] = "notfound",
    [HP_ERR_CONFLICT] = "conflict",
    [HP_ERR_GONE] = "gone",
    [HP_ERR_TIMEOUT] = "timeout",
    [HP_ERR_CANCELED] = "canceled",
    [HP_ERR_UNAVAILABLE] = "unavailable",
    [HP_ERR_UNKNOWN_OUTCOME] = "unknown_outcome",
    [HP_ERR_AUTH] = "auth",
    [HP_ERR_PROTOCOL] = "protocol",
    [HP_ERR_IO] = "io",
    [HP_ERR_FULL] = "full",
    [HP_ERR_FENCED] = "fenced",
    [HP_ERR_INTERNAL] = "internal",
};

const char *hp_rc_name(hp_rc rc)
{
    if ((unsigned)rc >= HP_RC__COUNT || !rc_names[rc])
        return "unknown";
    return rc_names[rc];
}

void hp_err_clear(struct hp_err *e)
{
    if (e)
        memset(e, 0, sizeof(*e));
}

static void err_vset(struct hp_err *e, hp_rc rc, const char *fmt, va_list ap)
{
    e->rc = rc;
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

hp_rc hp_err_set(struct hp_err *e, hp_rc rc, const char *fmt, ...)
{
    va_list ap;

    if (!e)
        return rc;
    va_start(ap, fmt);
    err_vset(e, rc, fmt, ap);
    va_end(ap);
    return rc;
}

hp_rc hp_err_field(struct hp_err *e, hp_rc rc, const char *field, const char *fmt, ...)
{
    va_list ap;

    if (!e)
        return rc;
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    va_start(ap, fmt);
    err_vset(e, rc, fmt, ap);
    va_end(ap);
    return rc;
}
