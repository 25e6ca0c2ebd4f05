/* buf.c - the growable byte buffer (see include/hostpatrol/buf.h). */
#include "hostpatrol/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hostpatrol/alloc.h"

#define BUF_MIN 64 /* the first allocation */

static char empty[1]; /* what hp_buf_data gives before the first allocation: never written */

void hp_buf_init(struct hp_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void hp_buf_release(struct hp_buf *b)
{
    if (!b)
        return;
    hp_free(b->data);
    hp_buf_init(b, b->max);
}

void hp_buf_reset(struct hp_buf *b)
{
    b->len = 0;
    b->err = HP_OK;
    if (b->data)
        b->data[0] = '\0';
}

static size_t limit(const struct hp_buf *b)
{
    return b->max ? b->max : SIZE_MAX - 1;
}

static hp_rc fail(struct hp_buf *b, hp_rc rc)
{
    b->err = rc;
    return rc;
}

hp_rc hp_buf_reserve(struct hp_buf *b, size_t more)
{
    size_t need, cap, lim = limit(b);
    char *p;

    if (b->err)
        return b->err;
    if (more > lim - b->len) /* len <= lim always: no wrap */
        return fail(b, HP_ERR_FULL);
    need = b->len + more + 1; /* <= lim + 1 <= SIZE_MAX */
    if (need <= b->cap)
        return HP_OK;
    cap = b->cap < BUF_MIN ? BUF_MIN : b->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap - 1 > lim) /* never more than the limit can use */
        cap = lim + 1;
    p = hp_realloc(b->data, cap);
    if (!p)
        return fail(b, HP_ERR_NOMEM);
    if (!b->data)
        p[0] = '\0';
    b->data = p;
    b->cap = cap;
    return HP_OK;
}

hp_rc hp_buf_add_space(struct hp_buf *b, size_t n, char **at)
{
    hp_rc rc = hp_buf_reserve(b, n);

    *at = NULL;
    if (rc)
        return rc;
    *at = b->data + b->len;
    b->len += n;
    b->data[b->len] = '\0';
    return HP_OK;
}

hp_rc hp_buf_add(struct hp_buf *b, const void *p, size_t n)
{
    char *at;
    hp_rc rc = hp_buf_add_space(b, n, &at);

    if (!rc && n)
        memcpy(at, p, n);
    return rc;
}

hp_rc hp_buf_addstr(struct hp_buf *b, const char *s)
{
    return hp_buf_add(b, s, strlen(s));
}

hp_rc hp_buf_addch(struct hp_buf *b, char c)
{
    return hp_buf_add(b, &c, 1);
}

hp_rc hp_buf_vaddf(struct hp_buf *b, const char *fmt, va_list ap)
{
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    va_list again;
    int k;
    hp_rc rc;

    if (b->err)
        return b->err;
    va_copy(again, ap);
    /* first try the room there is; only a longer text grows the buffer and formats again */
    k = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    if (k < 0) {
        rc = fail(b, HP_ERR_NOMEM);
        goto out;
    }
    if ((size_t)k < room) {
        rc = hp_buf_reserve(b, (size_t)k); /* the limit, checked as for any append */
        if (!rc)
            b->len += (size_t)k;
        else if (b->data)
            b->data[b->len] = '\0'; /* the text written past the limit is not kept */
        goto out;
    }
    if (b->data)
        b->data[b->len] = '\0'; /* the cut text is not kept */
    rc = hp_buf_reserve(b, (size_t)k);
    if (!rc) {
        vsnprintf(b->data + b->len, (size_t)k + 1, fmt, again);
        b->len += (size_t)k;
    }
out:
    va_end(again);
    return rc;
}

hp_rc hp_buf_addf(struct hp_buf *b, const char *fmt, ...)
{
    va_list ap;
    hp_rc rc;

    va_start(ap, fmt);
    rc = hp_buf_vaddf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void hp_buf_truncate(struct hp_buf *b, size_t len)
{
    if (len >= b->len)
        return;
    b->len = len;
    b->data[len] = '\0';
}

void hp_buf_consume(struct hp_buf *b, size_t n)
{
    if (n >= b->len) {
        hp_buf_truncate(b, 0);
        return;
    }
    if (!n)
        return;
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *hp_buf_data(const struct hp_buf *b)
{
    return b->data ? b->data : empty;
}

size_t hp_buf_len(const struct hp_buf *b)
{
    return b->len;
}

hp_rc hp_buf_error(const struct hp_buf *b)
{
    return b->err;
}

char *hp_buf_detach(struct hp_buf *b, size_t *len)
{
    char *out = b->err ? NULL : b->data;
    size_t n = out ? b->len : 0;

    if (b->err)
        hp_free(b->data);
    else if (!out)
        out = hp_strdup("");
    hp_buf_init(b, b->max);
    if (len)
        *len = n;
    return out;
}
