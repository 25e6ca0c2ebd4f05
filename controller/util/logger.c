/* logger.c - JSON or text log lines (see include/hostpatrol/logger.h). */
#include "hostpatrol/logger.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

void hp_logger_init(struct hp_logger *l, const char *module, FILE *out)
{
    atomic_init(&l->min_level, HP_LOG_INFO);
    l->text = false;
    l->module = module;
    l->out = out;
    pthread_mutex_init(&l->mu, NULL);
}

void hp_logger_release(struct hp_logger *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
}

hp_rc hp_logger_set_level(struct hp_logger *l, const char *name)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};

    for (int i = HP_LOG_DEBUG; i <= HP_LOG_ERROR; i++) {
        if (!strcmp(name, names[i])) {
            atomic_store(&l->min_level, i);
            return HP_OK;
        }
    }
    return HP_ERR_INVALID;
}

hp_rc hp_logger_set_format(struct hp_logger *l, const char *name)
{
    if (strcmp(name, "json") && strcmp(name, "text"))
        return HP_ERR_INVALID;
    l->text = !strcmp(name, "text");
    return HP_OK;
}

/* json_str: s as a JSON string on f */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* json_line: the JSON form; when: the time to the second, ms: its milliseconds */
static void json_line(struct hp_logger *l, const char *when, long ms, const char *level,
                      const struct hp_log_ids *ids, const char *msg)
{
    FILE *f = l->out;

    fprintf(f, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"module\":\"%s\"", when, ms, level,
            l->module);
    if (ids && ids->key) {
        fprintf(f, ",\"key\":");
        json_str(f, ids->key);
    }
    if (ids && ids->reconcile)
        fprintf(f, ",\"reconcile\":%llu", ids->reconcile);
    if (ids && ids->run) {
        fprintf(f, ",\"run\":");
        json_str(f, ids->run);
    }
    if (ids && ids->batch) {
        fprintf(f, ",\"batch\":");
        json_str(f, ids->batch);
    }
    fprintf(f, ",\"msg\":");
    json_str(f, msg);
    fprintf(f, "}\n");
}

void hp_logger_line(struct hp_logger *l, enum hp_log_level level, const struct hp_log_ids *ids,
                    const char *msg)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    const char *key = ids ? ids->key : NULL, *run = ids ? ids->run : NULL,
               *batch = ids ? ids->batch : NULL;
    struct timespec ts;
    struct tm tm;
    char when[40];

    if ((int)level < atomic_load(&l->min_level) || (int)level > HP_LOG_ERROR)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_mutex_lock(&l->mu);
    if (l->text) /* for terminals: time level module [key] [run=] [batch=] message */
        fprintf(l->out, "%s.%03ldZ %-5s %s%s%s%s%s%s%s %s\n", when, ts.tv_nsec / 1000000,
                names[level], l->module, key ? " " : "", key ? key : "", run ? " run=" : "",
                run ? run : "", batch ? " batch=" : "", batch ? batch : "", msg);
    else
        json_line(l, when, ts.tv_nsec / 1000000, names[level], ids, msg);
    pthread_mutex_unlock(&l->mu);
}

void hp_logger_printf(struct hp_logger *l, enum hp_log_level level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    hp_logger_line(l, level, NULL, msg);
}
