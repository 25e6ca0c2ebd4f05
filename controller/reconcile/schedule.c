/* schedule.c - the memo of runs, the jitter PRNG and RFC 3339 times (see schedule.h). */
#include "reconcile/schedule.h"

#include <string.h>
#include <time.h>

#include "hostpatrol/alloc.h"

void schedule_init(struct schedule *s, uint64_t seed, void (*free_late)(struct late_outcome *))
{
    memset(s, 0, sizeof(*s));
    s->seed = seed ? seed : 0x9e3779b97f4a7c15ULL;
    s->free_late = free_late;
}

static void memo_free(const struct schedule *s, struct memo *m)
{
    if (m->late && s->free_late)
        s->free_late(m->late);
    hp_free(m->key);
    hp_free(m->run_now);
    json_decref(m->pending);
    hp_free(m);
}

void schedule_release(struct schedule *s)
{
    size_t b;

    if (!s)
        return;
    for (b = 0; b < SCHEDULE_BUCKETS; b++) {
        while (s->memo[b]) {
            struct memo *m = s->memo[b];

            s->memo[b] = m->next;
            memo_free(s, m);
        }
    }
}

static size_t memo_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *key; key++)
        h = (h ^ (unsigned char)*key) * 1099511628211ULL;
    return (size_t)(h % SCHEDULE_BUCKETS);
}

struct memo *schedule_memo_get(struct schedule *s, const char *key, bool create)
{
    struct memo **slot = &s->memo[memo_hash(key)], *m;

    for (m = *slot; m; m = m->next)
        if (!strcmp(m->key, key))
            return m;
    if (!create)
        return NULL;
    m = hp_calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->key = hp_strdup(key);
    if (!m->key) {
        hp_free(m);
        return NULL;
    }
    m->next = *slot;
    *slot = m;
    return m;
}

void schedule_memo_drop(struct schedule *s, const char *key)
{
    struct memo **p, *m;

    for (p = &s->memo[memo_hash(key)]; (m = *p); p = &m->next) {
        if (!strcmp(m->key, key)) {
            *p = m->next;
            memo_free(s, m);
            return;
        }
    }
}

uint64_t schedule_next_random(struct schedule *s)
{
    uint64_t x = s->seed;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->seed = x;
    return x;
}

int64_t schedule_ran(struct schedule *s, const char *key, int64_t now, int64_t gen,
                     const char *run_now, int64_t interval_ms)
{
    int64_t due =
        now + interval_ms + (int64_t)(schedule_next_random(s) % (uint64_t)(interval_ms / 10 + 1));
    struct memo *m = schedule_memo_get(s, key, true);

    if (m) {
        m->last_run_ms = now;
        m->generation = gen;
        m->next_run_ms = due;
        hp_free(m->run_now);
        m->run_now = run_now ? hp_strdup(run_now) : NULL;
    }
    return due;
}

int64_t schedule_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void schedule_rfc3339(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t schedule_parse_rfc3339(const char *s)
{
    struct tm tm;
    const char *end;

    if (!s)
        return 0;
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}
