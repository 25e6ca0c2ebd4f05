/* batch_journal.c - journal of unresolved batches (see batch_journal.h). */
#include "batch/batch_journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
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

/* entry_text: the JSON text of one batch (owned), NULL when out of memory */
static char *entry_text(const char *writer, const struct batch_journal_item *it)
{
    json_t *keys = json_array(), *doc;
    char *text;
    size_t i;

    for (i = 0; keys && i < it->n; i++) {
        const struct batch_write *w = it->ops[i];
        char *b = hp_malloc(hp_b64_encoded_len(w->key_len) + 1);

        if (!b ||
            json_array_append_new(keys, json_string((hp_b64_encode(w->key, w->key_len, b), b)))) {
            hp_free(b);
            json_decref(keys);
            return NULL;
        }
        hp_free(b);
    }
    doc = keys ? json_pack("{s:s, s:s, s:I, s:o}", "writer", writer, "batch", it->batch_id, "epoch",
                           (json_int_t)it->epoch, "keys", keys)
               : NULL;
    text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return text;
}

/* One file on its way: written to tmp, not yet synced. */
struct pending_file {
    int fd;
    size_t item;
};

/* The files of one pass held open at once (each pass: write all, sync all, rename, sync dir). */
#define JOURNAL_PASS 64

/* write_pass: items [from, to) into wdir with one directory sync; written[i] set per item */
static void write_pass(const char *wdir, const char *writer, const struct batch_journal_item *items,
                       size_t from, size_t to, bool *written)
{
    struct pending_file f[JOURNAL_PASS];
    char path[4200], tmp[4300];
    size_t i, nf = 0;
    bool renamed = false;

    for (i = from; i < to; i++) { /* 1: every file written, none synced yet */
        char *text = entry_text(writer, &items[i]);
        size_t len = text ? strlen(text) : 0;
        int fd;

        written[i] = false;
        snprintf(tmp, sizeof(tmp), "%s/%s.json.tmp", wdir, items[i].batch_id);
        fd = text ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
        if (fd >= 0 && write(fd, text, len) == (ssize_t)len) {
            f[nf].fd = fd;
            f[nf++].item = i;
        } else if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        hp_free(text);
    }
    /* 2: each synced, then renamed: the first sync commits the disk's journal for all of them,
     * so a pass pays about one commit, not one per batch */
    for (i = 0; i < nf; i++) {
        const char *id = items[f[i].item].batch_id;
        bool ok = !fsync(f[i].fd);

        ok = !close(f[i].fd) && ok;
        snprintf(path, sizeof(path), "%s/%s.json", wdir, id);
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        if (ok && !rename(tmp, path)) {
            written[f[i].item] = true;
            renamed = true;
        } else {
            unlink(tmp);
        }
    }
    if (renamed) { /* 3: the new names, once for the pass */
        int dfd = open(wdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (dfd < 0 || fsync(dfd))
            for (i = 0; i < nf; i++)
                written[f[i].item] = false;
        if (dfd >= 0)
            close(dfd);
    }
}

hp_rc batch_journal_write_all(const char *dir, const char *writer,
                              const struct batch_journal_item *items, size_t n, bool *written)
{
    char wdir[4096];
    size_t i, from;

    for (i = 0; i < n; i++)
        written[i] = false;
    writer_dir(dir, writer, wdir, sizeof(wdir));
    if (n && mkdirs(wdir))
        return HP_ERR_IO;
    for (from = 0; from < n; from += JOURNAL_PASS)
        write_pass(wdir, writer, items, from, from + JOURNAL_PASS < n ? from + JOURNAL_PASS : n,
                   written);
    for (i = 0; i < n; i++)
        if (!written[i])
            return HP_ERR_IO;
    return HP_OK;
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
