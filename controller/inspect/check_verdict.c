/* check_verdict.c - worst status and joined reasons (see include/hostpatrol/check_verdict.h). */
#include "hostpatrol/check_verdict.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int severity(enum check_status s)
{
    return s == CHECK_CRIT ? 3 : s == CHECK_UNKNOWN ? 2 : s == CHECK_WARN ? 1 : 0;
}

void check_verdict_add(struct check_verdict *v, enum check_status s, const char *fmt, ...)
{
    va_list ap;
    int k;

    if (severity(s) > severity(v->status))
        v->status = s;
    if (v->len && v->len + 3 < sizeof(v->reason)) {
        memcpy(v->reason + v->len, "; ", 3);
        v->len += 2;
    }
    if (v->len + 1 >= sizeof(v->reason))
        return;
    va_start(ap, fmt);
    k = vsnprintf(v->reason + v->len, sizeof(v->reason) - v->len, fmt, ap);
    va_end(ap);
    if (k < 0) {
        v->reason[v->len] = '\0';
        return;
    }
    if ((size_t)k >= sizeof(v->reason) - v->len) /* cut: never inside a character */
        check_result_trim_utf8(v->reason + v->len);
    v->len += strlen(v->reason + v->len);
}
