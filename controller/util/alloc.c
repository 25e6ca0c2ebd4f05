/* alloc.c - allocation wrapper with fault injection (see include/hostpatrol/alloc.h). */
#include "hostpatrol/alloc.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Remaining successful allocations before failures start; -1 = disarmed. */
static atomic_long fail_countdown = -1;
static atomic_long fail_count = 0;

static int should_fail(void)
{
    long left = atomic_load(&fail_countdown);

    if (left < 0)
        return 0;
    if (left == 0) {
        atomic_fetch_add(&fail_count, 1);
        return 1;
    }
    atomic_fetch_sub(&fail_countdown, 1);
    return 0;
}

void *hp_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *hp_calloc(size_t nmemb, size_t n)
{
    if (n && nmemb > SIZE_MAX / n)
        return NULL;
    if (should_fail())
        return NULL;
    return calloc(nmemb ? nmemb : 1, n ? n : 1);
}

void *hp_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

char *hp_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = hp_malloc(len + 1);

    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *hp_strdup(const char *s)
{
    return hp_strndup(s, SIZE_MAX);
}

void hp_free(void *p)
{
    free(p);
}

void hp_alloc_install(void)
{
    json_set_alloc_funcs(hp_malloc, hp_free);
}

void hp_alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n < 0 ? -1 : n);
}

void hp_alloc_fail_reset(void)
{
    atomic_store(&fail_countdown, -1);
    atomic_store(&fail_count, 0);
}

long hp_alloc_failures(void)
{
    return atomic_load(&fail_count);
}
