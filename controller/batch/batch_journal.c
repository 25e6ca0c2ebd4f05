/* batch_journal.c - journal of unresolved batches (see batch_journal.h). */
#include "batch/batch_journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/b64.h"

/* writer_dir: <dir>/<writer with '/' replaced by '_'> into buf. */
static void writer_dir(const char *dir, const char *writer, char *buf, size_t n)
{
    size_t i, len = (size_t)snprintf(buf, n, "%s/", dir);

    for (i = 0; writer[i] && len + 1 < n; i++)
        buf[len++] = writer[i] == '/' ? '_' : writer[i];
    buf[len < n ? len : n - 1] = '\0';
}

static int mkdirs(const char *path)
{
    char tmp[4096];
    size_t i;

    snprintf(tmp, sizeof(tmp), "%s", path);
    for (i = 1; tmp[i]; i++) {
        if (tmp[i] != '/')
            continue;
        tmp[i] = '\0';
        if (mkdir(tmp, 0700) && errno != EEXIST)
            return -1;
        tmp[i] = '/';
    }
    return mkdir(tmp, 0700) && errno != EEXIST ? -1 : 0;
}

hp_rc batch_journal_write(const char *dir, const char *writer, const char *batch_id, int64_t epoch,
                          const struct batch_write *const *ops, size_t n)
{
    char wdir[4096], path[4200], tmp[4300];
    json_t *keys = json_array(), *doc;
    char *text = NULL;
    size_t i;
    int fd, ok = 0;

    for (i = 0; keys && i < n; i++) {
        char *b = hp_malloc(hp_b64_encoded_len(ops[i]->key_len) + 1);

        if (!b || json_array_append_new(
                      keys, json_string((hp_b64_encode(ops[i]->key, ops[i]->key_len, b), b)))) {
            hp_free(b);
            json_decref(keys);
            return HP_ERR_NOMEM;
        }
        hp_free(b);
    }
    doc = keys ? json_pack("{s:s, s:s, s:I, s:o}", "writer", writer, "batch", batch_id, "epoch",
                           (json_int_t)epoch, "keys", keys)
               : NULL;
    if (!doc)
        return HP_ERR_NOMEM;
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text)
        return HP_ERR_NOMEM;
    writer_dir(dir, writer, wdir, sizeof(wdir));
    snprintf(path, sizeof(path), "%s/%s.json", wdir, batch_id);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (!mkdirs(wdir)) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            size_t len = strlen(text);

            ok = write(fd, text, len) == (ssize_t)len && !fsync(fd);
            ok = !close(fd) && ok;
            ok = ok && !rename(tmp, path);
            if (ok) {
                int dfd = open(wdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                if (dfd >= 0) {
                    ok = !fsync(dfd);
                    close(dfd);
                }
            } else {
                unlink(tmp);
            }
        }
    }
    hp_free(text);
    return ok ? HP_OK : HP_ERR_IO;
}

void batch_journal_remove(const char *dir, const char *writer, const char *batch_id)
{
    char wdir[4096], path[4200];

    writer_dir(dir, writer, wdir, sizeof(wdir));
    snprintf(path, sizeof(path), "%s/%s.json", wdir, batch_id);
    unlink(path);
}

void batch_journal_entries_free(struct batch_journal_entry *e, size_t n)
{
    size_t i, k;

    for (i = 0; e && i < n; i++) {
        for (k = 0; k < e[i].n; k++)
            hp_free((void *)e[i].writes[k].key);
        hp_free(e[i].writes);
    }
    hp_free(e);
}

static hp_rc load_one(const char *path, struct batch_journal_entry *e, struct hp_err *err)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr), *keys, *k;
    const char *id;
    json_int_t epoch = 0;
    size_t i;
    hp_rc rc = HP_OK;

    if (!doc || json_unpack(doc, "{s:s, s:I, s:o}", "batch", &id, "epoch", &epoch, "keys", &keys) ||
        !json_is_array(keys)) {
        json_decref(doc);
        return hp_err_field(err, HP_ERR_INVALID, "state_dir",
                            "journal file %s is not a batch journal entry%s%s", path,
                            doc ? "" : ": ", doc ? "" : jerr.text);
    }
    snprintf(e->batch_id, sizeof(e->batch_id), "%s", id);
    e->epoch = epoch;
    e->writes = hp_calloc(json_array_size(keys) ? json_array_size(keys) : 1, sizeof(*e->writes));
    if (!e->writes)
        rc = HP_ERR_NOMEM;
    json_array_foreach(keys, i, k)
    {
        char *key;
        size_t len;

        if (rc)
            break;
        if (!json_is_string(k) ||
            hp_b64_decode(json_string_value(k), json_string_length(k), &key, &len)) {
            rc = hp_err_field(err, HP_ERR_INVALID, "state_dir",
                              "journal file %s has a bad key at index %zu", path, i);
            break;
        }
        e->writes[e->n].key = key;
        e->writes[e->n].key_len = len;
        e->writes[e->n].is_delete = true;
        e->n++;
    }
    json_decref(doc);
    return rc;
}

hp_rc batch_journal_load(const char *dir, const char *writer, struct batch_journal_entry **out,
                         size_t *n, struct hp_err *err)
{
    char wdir[4096], path[4400];
    struct batch_journal_entry *e = NULL;
    size_t cap = 0;
    struct dirent *d;
    DIR *dh;
    hp_rc rc = HP_OK;

    *out = NULL;
    *n = 0;
    writer_dir(dir, writer, wdir, sizeof(wdir));
    dh = opendir(wdir);
    if (!dh)
        return errno == ENOENT ? HP_OK
                               : hp_err_field(err, HP_ERR_IO, "state_dir", "cannot read %s: %s",
                                              wdir, strerror(errno));
    while ((d = readdir(dh))) {
        size_t len = strlen(d->d_name);

        if (len < 6 || strcmp(d->d_name + len - 5, ".json"))
            continue;
        if (*n == cap) {
            struct batch_journal_entry *ne = hp_realloc(e, (cap ? cap * 2 : 8) * sizeof(*e));

            if (!ne) {
                rc = HP_ERR_NOMEM;
                break;
            }
            e = ne;
            cap = cap ? cap * 2 : 8;
        }
        memset(&e[*n], 0, sizeof(e[*n]));
        snprintf(path, sizeof(path), "%s/%s", wdir, d->d_name);
        rc = load_one(path, &e[*n], err);
        (*n)++;
        if (rc)
            break;
    }
    closedir(dh);
    if (rc) {
        batch_journal_entries_free(e, *n);
        *n = 0;
        return rc;
    }
    *out = e;
    return HP_OK;
}
