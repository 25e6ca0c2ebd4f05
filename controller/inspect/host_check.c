/* host_check.c - node-local checks read below a host root (see include/hostpatrol/host_check.h).
 *
 * One run = one struct run: the host root (opened once, O_PATH, for openat2 RESOLVE_IN_ROOT),
 * and a cmdline buffer shared by the process checks. Each check fills a verdict (worst status,
 * findings joined with "; ") and its values; the reason goes into the result through
 * check_result_judge at the end.
 */
#include "hostpatrol/host_check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/check_verdict.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/safe_regex.h"

#define PROC_SCAN_MAX         100000      /* process directories examined at most */
#define CMDLINE_MAX           (64u << 10) /* cmdline bytes read per process */
#define SMALL_FILE_MAX        (16u << 10) /* meminfo, loadavg, uptime, cpu/online */
#define COMM_MAX              64
#define COMM_KERNEL           15          /* TASK_COMM_LEN - 1: the kernel cuts comm there */
#define STAT_READ_MAX         (16u << 20) /* proc/stat: bytes read at most looking for cpuN lines */
#define PROC_MATCH_TOO_COSTLY (-2)        /* proc_match: cmdlineRegex stopped at its limits */
#define OPENAT2_TRIES         4 /* RESOLVE_IN_ROOT may say EAGAIN on a concurrent rename */

struct run {
    const char *root;   /* borrowed: host_root as given */
    int root_len;       /* bytes of root used when joining (trailing '/' dropped) */
    int root_fd;        /* O_PATH of root, -1 until opened */
    int root_errno;     /* why root could not be opened, 0 if it could (or was not tried) */
    bool no_openat2;    /* the kernel refused openat2: joined paths are used as they are */
    char *cmdline;      /* owned: CMDLINE_MAX + 1 bytes, allocated by the first cmdline scan */
    struct hp_ctx *ctx; /* borrowed, may be NULL: the run's deadline */
};

/* late: has the run's deadline passed (or the run been cancelled)? */
static bool late(const struct run *h)
{
    return h->ctx && hp_ctx_err(h->ctx);
}

/* ---- small helpers ---- */

static const char *errno_str(int e, char *buf, size_t cap)
{
    const char *m = strerror_r(e, buf, cap); /* GNU variant (_GNU_SOURCE) */

    return m == buf ? check_result_trim_utf8(buf) : m;
}

static int64_t now_unix_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* bytes: n blocks of size each, saturated at INT64_MAX (jansson integers are signed) */
static json_int_t bytes(unsigned long long n, unsigned long long size)
{
    if (size && n > (unsigned long long)INT64_MAX / size)
        return INT64_MAX;
    return (json_int_t)(n * size);
}

static hp_rc set_value(struct check_result *r, const char *key, json_t *value)
{
    return json_object_set_new(r->values, key, value) ? HP_ERR_NOMEM : HP_OK;
}

/* host_path: root + suffix (suffix starts with '/') into buf; false if it does not fit */
static bool host_path(const struct run *h, char *buf, size_t cap, const char *suffix)
{
    int k = snprintf(buf, cap, "%.*s%s", h->root_len, h->root, suffix);

    return k >= 0 && (size_t)k < cap;
}

/* join_spec_path: root + spec path ("/" + "/var/log" = "/var/log", "/host" + "/" = "/host/") */
static bool join_spec_path(const struct run *h, char *buf, size_t cap, const char *path)
{
    int k = snprintf(buf, cap, "%.*s%s%s", h->root_len, h->root, *path == '/' ? "" : "/", path);

    return k >= 0 && (size_t)k < cap;
}

static bool has_dotdot(const char *path)
{
    const char *p = path;

    while (*p) {
        size_t len = strcspn(p, "/");

        if (len == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p += len;
        p += strspn(p, "/");
    }
    return false;
}

/* read_file: at most cap - 1 bytes of path into buf, NUL-terminated, *len bytes read.
 * Returns 0 or an errno. */
static int read_file(const char *path, char *buf, size_t cap, size_t *len)
{
    size_t got = 0;
    int e = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    *len = 0;
    buf[0] = '\0';
    if (fd < 0)
        return errno;
    while (got + 1 < cap) {
        ssize_t k = read(fd, buf + got, cap - 1 - got);

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            e = errno;
            break;
        }
        if (!k)
            break;
        got += (size_t)k;
    }
    close(fd);
    buf[got] = '\0';
    *len = got;
    return e;
}

/* read_host_file: rel (e.g. "/proc/meminfo") below the host root into buf, as read_file; the
 * full path goes to path (path_cap bytes) for later reasons. A failure is an UNKNOWN finding in
 * v naming the file, and false. */
static bool read_host_file(const struct run *h, const char *rel, char *path, size_t path_cap,
                           char *buf, size_t cap, size_t *len, struct check_verdict *v)
{
    char eb[128];
    int e;

    if (!host_path(h, path, path_cap, rel)) {
        check_verdict_add(v, CHECK_UNKNOWN, "path too long below %s", h->root);
        return false;
    }
    e = read_file(path, buf, cap, len);
    if (e)
        check_verdict_add(v, CHECK_UNKNOWN, "cannot read %s: %s", path,
                          errno_str(e, eb, sizeof(eb)));
    return e == 0;
}

/* open_in_root: an O_PATH descriptor of spec_path (a final symlink followed) resolved below the
 * host root, or -1 with *e the errno and *root_failed telling whether the root itself could not
 * be opened. joined: root + spec_path, used where openat2 is refused. */
static int open_in_root(struct run *h, const char *spec_path, const char *joined, int *e,
                        bool *root_failed)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    int fd = -1, i;

    *root_failed = false;
    if (h->root_fd < 0 && !h->root_errno) {
        h->root_fd = open(h->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (h->root_fd < 0)
            h->root_errno = errno ? errno : EIO;
    }
    if (h->root_fd < 0) {
        *e = h->root_errno;
        *root_failed = true;
        return -1;
    }
    for (i = 0; !h->no_openat2 && i < OPENAT2_TRIES; i++) {
        fd = (int)syscall(SYS_openat2, h->root_fd, *spec_path ? spec_path : "/", &how, sizeof(how));
        if (fd >= 0)
            return fd;
        if (errno == ENOSYS || errno == EPERM)
            h->no_openat2 = true;
        else if (errno != EAGAIN) {
            *e = errno;
            return -1;
        }
    }
    if (!h->no_openat2) {
        *e = EAGAIN;
        return -1;
    }
    fd = open(joined, O_PATH | O_CLOEXEC);
    if (fd < 0)
        *e = errno;
    return fd;
}

/* resolve: the common start of disk and file checks. Returns an O_PATH fd, or -1 when the
 * verdict is settled (UNKNOWN added) or when *missing (the path does not exist). */
static int resolve(struct run *h, const char *spec_path, char *joined, size_t cap,
                   struct check_verdict *v, bool *missing)
{
    char eb[128];
    bool root_failed;
    int e = 0, fd;

    *missing = false;
    if (has_dotdot(spec_path)) {
        check_verdict_add(v, CHECK_UNKNOWN, "path must not contain ..");
        return -1;
    }
    if (!join_spec_path(h, joined, cap, spec_path)) {
        check_verdict_add(v, CHECK_UNKNOWN, "path too long below %s", h->root);
        return -1;
    }
    fd = open_in_root(h, spec_path, joined, &e, &root_failed);
    if (fd >= 0)
        return fd;
    if (root_failed)
        check_verdict_add(v, CHECK_UNKNOWN, "cannot open the host root %s: %s", h->root,
                          errno_str(e, eb, sizeof(eb)));
    else if (e == ENOENT || e == ENOTDIR)
        *missing = true;
    else
        check_verdict_add(v, CHECK_UNKNOWN, "cannot open %s: %s", joined,
                          errno_str(e, eb, sizeof(eb)));
    return -1;
}

/* ---- disk ---- */

static hp_rc check_disk(struct run *h, const struct disk_check *d, struct check_result *r,
                        struct check_verdict *v)
{
    char joined[PATH_MAX], eb[128];
    const char *path = d->path ? d->path : "/";
    unsigned long long used, total, frsize;
    struct statvfs st;
    bool missing;
    double pct;
    hp_rc rc;
    int fd = resolve(h, path, joined, sizeof(joined), v, &missing);

    if (fd < 0) {
        if (missing)
            check_verdict_add(v, CHECK_UNKNOWN, "cannot statvfs %s: %s", joined,
                              errno_str(ENOENT, eb, sizeof(eb)));
        return HP_OK;
    }
    if (fstatvfs(fd, &st)) {
        check_verdict_add(v, CHECK_UNKNOWN, "cannot statvfs %s: %s", joined,
                          errno_str(errno, eb, sizeof(eb)));
        close(fd);
        return HP_OK;
    }
    close(fd);
    if (d->inodes) {
        total = st.f_files;
        used = st.f_files > st.f_ffree ? st.f_files - st.f_ffree : 0;
        if (!total) {
            check_verdict_add(v, CHECK_UNKNOWN, "%s: the file system reports no inodes", path);
            return HP_OK;
        }
        pct = check_result_round(CHECK_UNIT_PERCENT, (double)used * 100.0 / (double)total);
        rc = check_result_set_real(r, "inodes_used_percent", CHECK_UNIT_PERCENT, pct);
        if (!rc)
            rc = check_result_set_int(r, "inodes_used", bytes(used, 1));
        if (!rc)
            rc = check_result_set_int(r, "inodes_total", bytes(total, 1));
    } else {
        frsize = st.f_frsize ? st.f_frsize : st.f_bsize;
        used = st.f_blocks > st.f_bfree ? st.f_blocks - st.f_bfree : 0;
        total = used + st.f_bavail; /* what df divides by: root's reserve left out */
        pct = total ? check_result_round(CHECK_UNIT_PERCENT, (double)used * 100.0 / (double)total)
                    : 0;
        rc = check_result_set_real(r, "used_percent", CHECK_UNIT_PERCENT, pct);
        if (!rc)
            rc = check_result_set_int(r, "used_bytes", bytes(used, frsize));
        if (!rc)
            rc = check_result_set_int(r, "size_bytes", bytes(st.f_blocks, frsize));
        if (!rc)
            rc = check_result_set_int(r, "avail_bytes", bytes(st.f_bavail, frsize));
    }
    if (rc)
        return rc;
    if (pct >= d->crit_percent)
        check_verdict_add(v, CHECK_CRIT, "%s %.1f%% %sused (crit at %d%%)", path, pct,
                          d->inodes ? "of inodes " : "", d->crit_percent);
    else if (pct >= d->warn_percent)
        check_verdict_add(v, CHECK_WARN, "%s %.1f%% %sused (warn at %d%%)", path, pct,
                          d->inodes ? "of inodes " : "", d->warn_percent);
    return HP_OK;
}

/* ---- load ---- */

/* count_stat_cpus: the "cpuN" lines of a /proc/stat, read in chunks (the intr line can be long).
 * Returns 0 or an errno. */
static int count_stat_cpus(const char *path, long *cpus)
{
    char buf[4096], head[4] = {0};
    size_t col = 0, total = 0;
    int e = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    *cpus = 0;
    if (fd < 0)
        return errno;
    while (total < STAT_READ_MAX) {
        ssize_t k = read(fd, buf, sizeof(buf));
        ssize_t i;

        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            e = errno;
            break;
        }
        if (!k)
            break;
        total += (size_t)k;
        for (i = 0; i < k; i++) {
            if (buf[i] == '\n') {
                col = 0;
                continue;
            }
            if (col < sizeof(head))
                head[col] = buf[i];
            if (col < sizeof(head) + 1)
                col++;
            if (col == sizeof(head) && !memcmp(head, "cpu", 3) && head[3] >= '0' && head[3] <= '9')
                (*cpus)++;
        }
    }
    close(fd);
    return e;
}

/* count_online_cpus: a cpu list like "0-3,6\n" (sysfs "online"). false if it is not one. */
static bool count_online_cpus(const char *s, long *cpus)
{
    *cpus = 0;
    while (*s && *s != '\n') {
        char *end;
        unsigned long a, b;

        errno = 0;
        a = strtoul(s, &end, 10);
        if (errno || end == s || *s < '0' || *s > '9')
            return false;
        b = a;
        s = end;
        if (*s == '-') {
            s++;
            b = strtoul(s, &end, 10);
            if (errno || end == s || *s < '0' || *s > '9' || b < a)
                return false;
            s = end;
        }
        if (b >= (1ul << 22))
            return false;
        *cpus += (long)(b - a + 1);
        if (*s == ',')
            s++;
        else if (*s && *s != '\n')
            return false;
    }
    return *cpus > 0;
}

static hp_rc check_load(struct run *h, const struct load_check *l, struct check_result *r,
                        struct check_verdict *v)
{
    char path[PATH_MAX], path2[PATH_MAX], buf[256], eb[128], eb2[128];
    double load[3], sel, per;
    const char *p;
    size_t len;
    long cpus = 0;
    int e, e2 = 0, i;
    hp_rc rc;

    if (!read_host_file(h, "/proc/loadavg", path, sizeof(path), buf, sizeof(buf), &len, v))
        return HP_OK;
    for (i = 0, p = buf; i < 3; i++) {
        char *end;

        errno = 0;
        load[i] = strtod(p, &end);
        if (errno || end == p || load[i] < 0 || !isfinite(load[i])) {
            check_verdict_add(v, CHECK_UNKNOWN, "cannot parse %s: not three load averages", path);
            return HP_OK;
        }
        p = end;
    }
    /* CPUs: the host's, from its procfs (or sysfs), never this process's sysconf */
    if (!host_path(h, path, sizeof(path), "/proc/stat") ||
        !host_path(h, path2, sizeof(path2), "/sys/devices/system/cpu/online")) {
        check_verdict_add(v, CHECK_UNKNOWN, "path too long below %s", h->root);
        return HP_OK;
    }
    e = count_stat_cpus(path, &cpus);
    if (e || !cpus) {
        e2 = read_file(path2, buf, sizeof(buf), &len);
        if (!e2 && !count_online_cpus(buf, &cpus))
            cpus = 0;
    }
    if (!cpus) {
        check_verdict_add(v, CHECK_UNKNOWN, "cannot count CPUs: %s: %s; %s: %s", path,
                          e ? errno_str(e, eb, sizeof(eb)) : "no cpuN lines", path2,
                          e2 ? errno_str(e2, eb2, sizeof(eb2)) : "not a CPU list");
        return HP_OK;
    }
    sel = l->window_min == 1 ? load[0] : l->window_min == 15 ? load[2] : load[1];
    per = check_result_round(CHECK_UNIT_LOAD, sel / (double)cpus);
    rc = check_result_set_real(r, "load1", CHECK_UNIT_LOAD, load[0]);
    if (!rc)
        rc = check_result_set_real(r, "load5", CHECK_UNIT_LOAD, load[1]);
    if (!rc)
        rc = check_result_set_real(r, "load15", CHECK_UNIT_LOAD, load[2]);
    if (!rc)
        rc = check_result_set_int(r, "cpus", cpus);
    if (!rc)
        rc = check_result_set_real(r, "load_per_cpu", CHECK_UNIT_LOAD, per);
    if (!rc) /* the window load_per_cpu is of (spec: load.windowMinutes) */
        rc = check_result_set_int(r, "load_per_cpu_minutes",
                                  l->window_min == 1    ? 1
                                  : l->window_min == 15 ? 15
                                                        : 5);
    if (rc)
        return rc;
    if (per >= l->crit_per_cpu)
        check_verdict_add(v, CHECK_CRIT, "load %.2f (%dm) on %ld CPU%s = %.2f per CPU (crit at %g)",
                          sel, l->window_min, cpus, cpus == 1 ? "" : "s", per, l->crit_per_cpu);
    else if (per >= l->warn_per_cpu)
        check_verdict_add(v, CHECK_WARN, "load %.2f (%dm) on %ld CPU%s = %.2f per CPU (warn at %g)",
                          sel, l->window_min, cpus, cpus == 1 ? "" : "s", per, l->warn_per_cpu);
    return HP_OK;
}

/* ---- memory ---- */

/* meminfo_get: the value of key (e.g. "MemTotal") in a meminfo text, in bytes. */
static bool meminfo_get(const char *text, const char *key, unsigned long long *out)
{
    size_t klen = strlen(key);
    const char *p = text;

    while (p && *p) {
        if (!strncmp(p, key, klen) && p[klen] == ':') {
            const char *s = p + klen + 1;
            unsigned long long val;
            char *end;

            errno = 0;
            val = strtoull(s, &end, 10);
            if (errno || end == s)
                return false;
            while (*end == ' ' || *end == '\t')
                end++;
            if (!strncmp(end, "kB", 2)) {
                if (val > UINT64_MAX / 1024)
                    return false;
                val *= 1024;
            }
            *out = val;
            return true;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return false;
}

/* add_uptime: uptime_seconds from host_root/proc/uptime; informational, skipped if unreadable */
static hp_rc add_uptime(const struct run *h, struct check_result *r)
{
    char path[PATH_MAX], buf[128], *end;
    size_t len;
    double up;

    if (!host_path(h, path, sizeof(path), "/proc/uptime") ||
        read_file(path, buf, sizeof(buf), &len))
        return HP_OK;
    errno = 0;
    up = strtod(buf, &end);
    if (errno || end == buf || up < 0 || !isfinite(up))
        return HP_OK;
    return check_result_set_real(r, "uptime_seconds", CHECK_UNIT_SECONDS, up);
}

static hp_rc check_memory(struct run *h, const struct memory_check *m, struct check_result *r,
                          struct check_verdict *v)
{
    char path[PATH_MAX], buf[SMALL_FILE_MAX];
    unsigned long long total, avail, swap_total, swap_free;
    size_t len;
    double pct;
    hp_rc rc;

    rc = add_uptime(h, r);
    if (rc)
        return rc;
    if (!read_host_file(h, "/proc/meminfo", path, sizeof(path), buf, sizeof(buf), &len, v))
        return HP_OK;
    if (meminfo_get(buf, "SwapTotal", &swap_total) && meminfo_get(buf, "SwapFree", &swap_free)) {
        rc = check_result_set_int(r, "swap_total_bytes", bytes(swap_total, 1));
        if (!rc)
            rc =
                check_result_set_int(r, "swap_used_bytes",
                                     bytes(swap_total > swap_free ? swap_total - swap_free : 0, 1));
        if (rc)
            return rc;
    }
    if (!meminfo_get(buf, "MemTotal", &total) || !total) {
        check_verdict_add(v, CHECK_UNKNOWN, "MemTotal not found in %s", path);
        return HP_OK;
    }
    rc = check_result_set_int(r, "mem_total_bytes", bytes(total, 1));
    if (rc)
        return rc;
    if (!meminfo_get(buf, "MemAvailable", &avail)) {
        check_verdict_add(v, CHECK_UNKNOWN, "MemAvailable not found in %s", path);
        return HP_OK;
    }
    pct = check_result_round(CHECK_UNIT_PERCENT, (double)avail * 100.0 / (double)total);
    rc = check_result_set_int(r, "mem_available_bytes", bytes(avail, 1));
    if (!rc)
        rc = check_result_set_real(r, "mem_available_percent", CHECK_UNIT_PERCENT, pct);
    if (rc)
        return rc;
    if (pct <= m->crit_available_percent)
        check_verdict_add(v, CHECK_CRIT, "memory %.1f%% available (crit at %d%%)", pct,
                          m->crit_available_percent);
    else if (pct <= m->warn_available_percent)
        check_verdict_add(v, CHECK_WARN, "memory %.1f%% available (warn at %d%%)", pct,
                          m->warn_available_percent);
    return HP_OK;
}

/* ---- process ---- */

static bool all_digits(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (s[i] < '0' || s[i] > '9' || i >= 10)
            return false;
    return i > 0;
}

/* proc_match: does process pid match p? 1 yes, 0 no, -1 with *e the errno (could not read),
 * PROC_MATCH_TOO_COSTLY (cmdlineRegex reached its match limits) */
static int proc_match(struct run *h, const struct process_check *p, const char *pid, int *e)
{
    char path[PATH_MAX], comm[COMM_MAX];
    size_t len, i;

    if (p->name) {
        size_t nlen = strlen(p->name);

        if (snprintf(path, sizeof(path), "%.*s/proc/%s/comm", h->root_len, h->root, pid) >=
            (int)sizeof(path)) {
            *e = ENAMETOOLONG;
            return -1;
        }
        *e = read_file(path, comm, sizeof(comm), &len);
        if (*e)
            return -1;
        while (len && (comm[len - 1] == '\n' || comm[len - 1] == ' '))
            comm[--len] = '\0';
        if (!strcmp(comm, p->name))
            return 1;
        return len == COMM_KERNEL && nlen > COMM_KERNEL && !strncmp(p->name, comm, COMM_KERNEL);
    }
    if (!p->has_cmdline_regex)
        return 0;
    if (snprintf(path, sizeof(path), "%.*s/proc/%s/cmdline", h->root_len, h->root, pid) >=
        (int)sizeof(path)) {
        *e = ENAMETOOLONG;
        return -1;
    }
    *e = read_file(path, h->cmdline, CMDLINE_MAX + 1, &len);
    if (*e)
        return -1;
    while (len && h->cmdline[len - 1] == '\0')
        len--;
    if (!len)
        return 0; /* kernel thread or zombie */
    for (i = 0; i < len; i++)
        if (h->cmdline[i] == '\0')
            h->cmdline[i] = ' ';
    h->cmdline[len] = '\0';
    switch (safe_regex_match_until(p->cmdline_regex, h->cmdline, len,
                                   h->ctx ? hp_ctx_deadline_ns(h->ctx) : INT64_MAX)) {
    case SAFE_REGEX_MATCH:
        return 1;
    case SAFE_REGEX_NO_MATCH:
        return 0;
    case SAFE_REGEX_TOO_COSTLY:
        break;
    }
    return PROC_MATCH_TOO_COSTLY;
}

static hp_rc check_process(struct run *h, const struct process_check *p, struct check_result *r,
                           struct check_verdict *v)
{
    char path[PATH_MAX], eb[128], what[128];
    long long count = 0, unreadable = 0, costly = 0;
    long seen = 0;
    int first_err = 0, e = 0;
    struct dirent *de;
    DIR *d;
    hp_rc rc;

    if (!p->name && !p->has_cmdline_regex) {
        check_verdict_add(v, CHECK_UNKNOWN, "invalid check: neither name nor cmdlineRegex");
        return HP_OK;
    }
    if (!p->name && !h->cmdline) {
        h->cmdline = hp_malloc(CMDLINE_MAX + 1);
        if (!h->cmdline)
            return HP_ERR_NOMEM;
    }
    if (!host_path(h, path, sizeof(path), "/proc")) {
        check_verdict_add(v, CHECK_UNKNOWN, "path too long below %s", h->root);
        return HP_OK;
    }
    d = opendir(path);
    if (!d) {
        check_verdict_add(v, CHECK_UNKNOWN, "cannot read %s: %s", path,
                          errno_str(errno, eb, sizeof(eb)));
        return HP_OK;
    }
    for (;;) {
        int m;

        errno = 0;
        de = readdir(d);
        if (!de) {
            e = errno;
            break;
        }
        if (!all_digits(de->d_name))
            continue;
        if (++seen > PROC_SCAN_MAX || late(h)) {
            e = 0;
            break;
        }
        m = proc_match(h, p, de->d_name, &e);
        if (m > 0)
            count++;
        else if (m == PROC_MATCH_TOO_COSTLY)
            costly++;
        else if (m < 0 && e != ENOENT && e != ESRCH) { /* ENOENT, ESRCH: it ended meanwhile */
            if (!unreadable++)
                first_err = e;
        }
    }
    closedir(d);
    if (e) {
        check_verdict_add(v, CHECK_UNKNOWN, "cannot read %s: %s", path,
                          errno_str(e, eb, sizeof(eb)));
        return HP_OK;
    }
    if (late(h)) {
        check_verdict_add(v, CHECK_UNKNOWN,
                          "process scan stopped at the run's timeout after %ld processes", seen);
        return HP_OK;
    }
    if (seen > PROC_SCAN_MAX) {
        check_verdict_add(v, CHECK_UNKNOWN, "more than %d processes in %s: scan stopped",
                          PROC_SCAN_MAX, path);
        return HP_OK;
    }
    if (costly) {
        check_verdict_add(v, CHECK_UNKNOWN,
                          "cmdlineRegex too costly to match on %lld process%s (stopped at its "
                          "match limit): simplify the pattern",
                          costly, costly == 1 ? "" : "es");
        return HP_OK;
    }
    rc = check_result_set_int(r, "count", count);
    if (rc)
        return rc;
    if (p->name)
        snprintf(what, sizeof(what), "named %s", p->name);
    else
        snprintf(what, sizeof(what), "with a cmdline matching cmdlineRegex");
    if (count < p->min_count) {
        check_verdict_add(v, CHECK_CRIT, "found %lld process%s %s, want at least %lld", count,
                          count == 1 ? "" : "es", what, (long long)p->min_count);
        if (unreadable)
            check_verdict_add(v, CHECK_CRIT, "%lld process%s could not be read: %s", unreadable,
                              unreadable == 1 ? "" : "es", errno_str(first_err, eb, sizeof(eb)));
    } else if (p->max_count >= 0 && count > p->max_count) {
        check_verdict_add(v, CHECK_CRIT, "found %lld process%s %s, want at most %lld", count,
                          count == 1 ? "" : "es", what, (long long)p->max_count);
    }
    return HP_OK;
}

/* ---- file ---- */

/* secs_text: ms as seconds, "7200 s" or "1.5 s" */
static const char *secs_text(int64_t ms, char *buf, size_t cap)
{
    int64_t a = ms < 0 ? -ms : ms;
    int frac = (int)(a % 1000);
    int digits = 3;

    if (!frac) {
        snprintf(buf, cap, "%s%lld s", ms < 0 ? "-" : "", (long long)(a / 1000));
        return buf;
    }
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    snprintf(buf, cap, "%s%lld.%0*d s", ms < 0 ? "-" : "", (long long)(a / 1000), digits, frac);
    return buf;
}

static hp_rc check_file(struct run *h, const struct file_check *f, struct check_result *r,
                        struct check_verdict *v)
{
    char joined[PATH_MAX], eb[128], t1[48], t2[48];
    const char *path = f->path ? f->path : "";
    int64_t mtime_ms, age_ms;
    struct stat st;
    bool missing;
    hp_rc rc;
    int fd = resolve(h, path, joined, sizeof(joined), v, &missing);

    if (fd < 0) {
        if (!missing)
            return HP_OK;
        check_verdict_add(v, CHECK_CRIT, "%s missing", path);
        return set_value(r, "exists", json_false());
    }
    if (fstat(fd, &st)) {
        check_verdict_add(v, CHECK_UNKNOWN, "cannot stat %s: %s", joined,
                          errno_str(errno, eb, sizeof(eb)));
        close(fd);
        return HP_OK;
    }
    close(fd);
    mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    age_ms = now_unix_ms() - mtime_ms;
    rc = set_value(r, "exists", json_true());
    if (!rc)
        rc = check_result_set_int(r, "size_bytes", (int64_t)st.st_size);
    if (!rc)
        rc = check_result_set_real(r, "age_seconds", CHECK_UNIT_SECONDS, (double)age_ms / 1000.0);
    if (rc)
        return rc;
    if (f->max_age_ms >= 0 && age_ms > f->max_age_ms)
        check_verdict_add(v, CHECK_CRIT, "%s is %s old (max %s)", path,
                          secs_text(age_ms, t1, sizeof(t1)),
                          secs_text(f->max_age_ms, t2, sizeof(t2)));
    if (f->max_size_bytes >= 0 && st.st_size > f->max_size_bytes)
        check_verdict_add(v, CHECK_CRIT, "%s is %lld bytes (max %lld bytes)", path,
                          (long long)st.st_size, (long long)f->max_size_bytes);
    return HP_OK;
}

/* ---- run ---- */

static hp_rc run_one(struct run *h, const struct check_spec *c, struct check_result *r)
{
    struct check_verdict v = {.status = CHECK_OK};
    int64_t start_ns = hp_now_ns();
    hp_rc rc = HP_OK;

    if (late(h)) {
        check_verdict_add(&v, CHECK_UNKNOWN, "not run: the run's timeout had passed");
        goto judge;
    }
    switch (c->kind) {
    case CHECK_DISK:
        rc = check_disk(h, &c->u.disk, r, &v);
        break;
    case CHECK_LOAD:
        rc = check_load(h, &c->u.load, r, &v);
        break;
    case CHECK_MEMORY:
        rc = check_memory(h, &c->u.memory, r, &v);
        break;
    case CHECK_PROCESS:
        rc = check_process(h, &c->u.process, r, &v);
        break;
    case CHECK_FILE:
        rc = check_file(h, &c->u.file, r, &v);
        break;
    default:
        rc = HP_ERR_INTERNAL;
        break;
    }
judge:
    if (!rc)
        rc = check_result_judge(r, v.status, "%s", v.reason);
    r->observed_ms = now_unix_ms();
    r->duration_ms = (hp_now_ns() - start_ns) / 1000000;
    return rc;
}

hp_rc host_check_run(const char *host_root, const char *target,
                     const struct check_spec *const *checks, size_t n, struct hp_ctx *ctx,
                     struct check_result *out, struct hp_err *err)
{
    struct run h = {.root = host_root, .root_fd = -1, .ctx = ctx};
    char field[32];
    hp_rc rc = HP_OK;
    size_t i;

    if (n && (!checks || !out))
        return hp_err_set(err, HP_ERR_INVALID, "host_check_run: no checks or no results array");
    for (i = 0; i < n; i++)
        memset(&out[i], 0, sizeof(out[i]));
    if (!host_root || !*host_root)
        return hp_err_field(err, HP_ERR_INVALID, "host_root",
                            "host_check_run: the host root must not be empty");
    for (i = 0; i < n; i++) {
        if (checks[i] && check_kind_is_node_local(checks[i]->kind))
            continue;
        snprintf(field, sizeof(field), "checks[%zu]", i);
        return hp_err_field(err, HP_ERR_INVALID, field,
                            "host_check_run: checks[%zu] is %s, not a node-local check", i,
                            checks[i] ? check_kind_name(checks[i]->kind) : "NULL");
    }
    h.root_len = (int)strnlen(host_root, INT_MAX);
    while (h.root_len > 0 && host_root[h.root_len - 1] == '/')
        h.root_len--;
    for (i = 0; i < n; i++) {
        rc = check_result_init(&out[i], checks[i]->name, target ? target : "-", checks[i]->kind);
        if (rc)
            goto out;
    }
    for (i = 0; i < n; i++) {
        rc = run_one(&h, checks[i], &out[i]);
        if (rc)
            goto out;
    }
out:
    if (rc == HP_ERR_NOMEM)
        hp_err_set(err, rc, "host_check_run: out of memory");
    else if (rc)
        hp_err_set(err, rc, "host_check_run: %s", hp_rc_name(rc));
    if (h.root_fd >= 0)
        close(h.root_fd);
    hp_free(h.cmdline);
    return rc;
}
