/*
 * alloc.h - the one allocation wrapper of hostpatrol.
 *
 * All product code allocates through these functions (jansson too, via hp_alloc_install),
 * so a test build can fail the Nth allocation and check that every error path cleans up
 * (the method of curl's torture tests and SQLite's malloc-fault tests).
 *
 * Contract: hp_malloc/hp_calloc/hp_realloc/hp_strdup/hp_strndup return NULL on failure and
 * leave their inputs unaltered (hp_realloc keeps the old block). hp_free(NULL) is a no-op.
 * Fault injection state is process-global and guarded by an atomic counter: tests that arm it
 * must be single-threaded while armed.
 */
#ifndef HOSTPATROL_ALLOC_H
#define HOSTPATROL_ALLOC_H

#include <stddef.h>

void *hp_malloc(size_t n);                 /* owned by caller; hp_free */
void *hp_calloc(size_t nmemb, size_t n);   /* owned by caller; hp_free; overflow -> NULL */
void *hp_realloc(void *p, size_t n);       /* p taken on success, kept on failure */
char *hp_strdup(const char *s);            /* owned by caller; s borrowed */
char *hp_strndup(const char *s, size_t n); /* owned by caller; copies at most n bytes */
void hp_free(void *p);

/* hp_alloc_install: route jansson's allocations through hp_malloc/hp_free. Call once at
 * start-up, before any jansson object exists. */
void hp_alloc_install(void);

/* Fault injection (tests): after `n` more successful allocations, every allocation fails
 * until hp_alloc_fail_reset(). n < 0 disarms. hp_alloc_failures() counts injected failures. */
void hp_alloc_fail_after(long n);
void hp_alloc_fail_reset(void);
long hp_alloc_failures(void);

#endif
