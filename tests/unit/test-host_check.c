/* test-host_check.c - unit tests of controller/inspect/host_check.c: each node-local check
 * judged against a host root built by the test under a mkdtemp directory (crafted procfs
 * files, real files for disk and file checks), then against this machine's real "/". */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <linux/openat2.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hostpatrol/alloc.h"
#include "hostpatrol/check_result.h"
#include "hostpatrol/host_check.h"
#include "hostpatrol/inspection_spec.h"
#include "value_text.h"

#define MEMINFO_FMT                                                                                \
    "MemTotal:        1000000 kB\nMemFree:          100000 kB\n%s"                                 \
    "Buffers:           10000 kB\nSwapCached:            0 kB\nSwapTotal:        200000 kB\n"      \
    "SwapFree:         150000 kB\n"

/* ---- fixture: a host root under a mkdtemp directory ---- */

static char root[64];

/* put: write len bytes (or strlen) to root/rel, creating the directories on the way */
static void put_n(const char *rel, const char *data, size_t len)
{
    char path[PATH_MAX];
    char *p;
    int fd;

    assert_true(snprintf(path, sizeof(path), "%s/%s", root, rel) < (int)sizeof(path));
    for (p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(path, 0755) && errno != EEXIST)
            fail_msg("mkdir %s: %s", path, strerror(errno));
        *p = '/';
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void put(const char *rel, const char *text)
{
    put_n(rel, text, strlen(text));
}

static void mkdir_in(const char *rel)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    if (mkdir(path, 0755) && errno != EEXIST)
        fail_msg("mkdir %s: %s", path, strerror(errno));
}

static void symlink_in(const char *target, const char *rel)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    if (symlink(target, path))
        fail_msg("symlink %s: %s", path, strerror(errno));
}

static void unlink_in(const char *rel)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    assert_int_equal(unlink(path), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int fixture_setup(void **state)
{
    static const char stat_text[] =
        "cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 25 0 25 250 0 0 0 0 0 0\n"
        "cpu1 25 0 25 250 0 0 0 0 0 0\ncpu2 25 0 25 250 0 0 0 0 0 0\n"
        "cpu3 25 0 25 250 0 0 0 0 0 0\nintr 12345 0 1 2 3\nctxt 999\nbtime 1700000000\n"
        "processes 1234\nprocs_running 2\nprocs_blocked 0\nsoftirq 1 2 3\n";

    (void)state;
    snprintf(root, sizeof(root), "/tmp/hp-host_check-XXXXXX");
    assert_non_null(mkdtemp(root));
    put("proc/loadavg", "4.00 8.00 14.00 3/456 789\n");
    put("proc/stat", stat_text);
    put("proc/uptime", "12345.67 40000.00\n");
    put("proc/100/comm", "sshd\n");
    put_n("proc/100/cmdline", "/usr/sbin/sshd\0-D\0", 18);
    put("proc/101/comm", "sshd\n");
    put_n("proc/101/cmdline", "sshd: alice@pts/0\0", 18);
    put("proc/102/comm", "nginx\n");
    put_n("proc/102/cmdline", "nginx: master process /usr/sbin/nginx\0", 38);
    mkdir_in("proc/103");                      /* ended during the scan: no files */
    put("proc/104/comm", "averyveryverylo\n"); /* comm cut at 15 bytes by the kernel */
    put_n("proc/104/cmdline", "/opt/averyveryverylongname\0", 27);
    put("proc/105/comm", "kworker/0:1\n"); /* kernel thread: empty cmdline */
    put_n("proc/105/cmdline", "", 0);
    put("proc/acpi/wakeup", "not a process\n");
    return 0;
}

static int fixture_teardown(void **state)
{
    (void)state;
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- specs and running ---- */

static struct check_spec spec_of(enum check_kind kind)
{
    struct check_spec c;

    memset(&c, 0, sizeof(c));
    c.name = (char *)check_kind_name(kind);
    c.kind = kind;
    c.tls_min_days_left = -1;
    return c;
}

static struct check_spec memory_spec(int warn, int crit)
{
    struct check_spec c = spec_of(CHECK_MEMORY);

    c.u.memory.warn_available_percent = warn;
    c.u.memory.crit_available_percent = crit;
    return c;
}

static struct check_spec load_spec(int window, double warn, double crit)
{
    struct check_spec c = spec_of(CHECK_LOAD);

    c.u.load.window_min = window;
    c.u.load.warn_per_cpu = warn;
    c.u.load.crit_per_cpu = crit;
    return c;
}

static struct check_spec disk_spec(const char *path, int warn, int crit, bool inodes)
{
    struct check_spec c = spec_of(CHECK_DISK);

    c.u.disk.path = (char *)path;
    c.u.disk.warn_percent = warn;
    c.u.disk.crit_percent = crit;
    c.u.disk.inodes = inodes;
    return c;
}

static struct check_spec file_spec(const char *path, int64_t max_age_ms, int64_t max_size)
{
    struct check_spec c = spec_of(CHECK_FILE);

    c.u.file.path = (char *)path;
    c.u.file.max_age_ms = max_age_ms;
    c.u.file.max_size_bytes = max_size;
    return c;
}

static struct check_spec process_name_spec(const char *name, int64_t min, int64_t max)
{
    struct check_spec c = spec_of(CHECK_PROCESS);

    c.u.process.name = (char *)name;
    c.u.process.min_count = min;
    c.u.process.max_count = max;
    return c;
}

/* process_regex_spec: the caller safe_regex_free()s c.u.process.cmdline_regex */
static struct check_spec process_regex_spec(const char *re, int64_t min, int64_t max)
{
    struct check_spec c = spec_of(CHECK_PROCESS);
    char why[128];

    assert_int_equal(safe_regex_compile(re, &c.u.process.cmdline_regex, why, sizeof(why)), HP_OK);
    c.u.process.has_cmdline_regex = true;
    c.u.process.min_count = min;
    c.u.process.max_count = max;
    return c;
}

/* run1: one check below host_root; the caller releases *r */
static void run1(const char *host_root, const struct check_spec *c, struct check_result *r)
{
    const struct check_spec *list[1] = {c};
    struct hp_err err = {0};

    assert_int_equal(host_check_run(host_root, "node-1", list, 1, NULL, r, &err), HP_OK);
    assert_string_equal(r->target, "node-1");
    assert_int_equal(r->kind, c->kind);
    assert_true(r->observed_ms > 1600000000000LL);
    assert_true(r->duration_ms >= 0);
}

static json_int_t ival(const struct check_result *r, const char *key)
{
    json_t *v = json_object_get(r->values, key);

    if (!json_is_integer(v))
        fail_msg("values.%s is not an integer", key);
    return json_integer_value(v);
}

static double rval(const struct check_result *r, const char *key)
{
    json_t *v = json_object_get(r->values, key);

    if (!json_is_number(v))
        fail_msg("values.%s is not a number", key);
    return json_number_value(v);
}

static void assert_status(const struct check_result *r, enum check_status want)
{
    if (r->status != want)
        fail_msg("status %s (reason \"%s\"), want %s", check_status_name(r->status), r->reason,
                 check_status_name(want));
}

static void assert_reason_has(const struct check_result *r, const char *part)
{
    if (!strstr(r->reason, part))
        fail_msg("reason \"%s\" lacks \"%s\"", r->reason, part);
}

static void put_meminfo(const char *available_line)
{
    char text[1024];

    snprintf(text, sizeof(text), MEMINFO_FMT, available_line);
    put("proc/meminfo", text);
}

/* ---- memory ---- */

static void memory_thresholds(void **state)
{
    struct check_spec c = memory_spec(15, 5);
    struct check_result r;

    (void)state;
    put_meminfo("MemAvailable:     500000 kB\n");
    run1(root, &c, &r);
    assert_status(&r, CHECK_OK);
    assert_string_equal(r.reason, "");
    assert_int_equal(ival(&r, "mem_total_bytes"), 1000000LL * 1024);
    assert_int_equal(ival(&r, "mem_available_bytes"), 500000LL * 1024);
    assert_true(rval(&r, "mem_available_percent") == 50.0);
    assert_int_equal(ival(&r, "swap_total_bytes"), 200000LL * 1024);
    assert_int_equal(ival(&r, "swap_used_bytes"), 50000LL * 1024);
    assert_true(rval(&r, "uptime_seconds") == 12345.67);
    check_result_release(&r);

    put_meminfo("MemAvailable:     100000 kB\n");
    run1(root, &c, &r);
    assert_status(&r, CHECK_WARN);
    assert_string_equal(r.reason, "memory 10.0% available (warn at 15%)");
    check_result_release(&r);

    put_meminfo("MemAvailable:      50000 kB\n"); /* exactly at crit: <= is CRIT */
    run1(root, &c, &r);
    assert_status(&r, CHECK_CRIT);
    assert_string_equal(r.reason, "memory 5.0% available (crit at 5%)");
    check_result_release(&r);

    put_meminfo("MemAvailable:      32000 kB\n");
    run1(root, &c, &r);
    assert_status(&r, CHECK_CRIT);
    assert_true(rval(&r, "mem_available_percent") == 3.2);
    check_result_release(&r);
}

/* as stored: bytes as integers, the percentage to 0.1, seconds to 0.001 (33.3333 -> 33.3) */
static void memory_values_print_at_their_precision(void **state)
{
    struct check_spec c = memory_spec(15, 5);
    struct check_result r;
    char buf[512];

    (void)state;
    put_meminfo("MemAvailable:     333333 kB\n");
    put("proc/uptime", "12345.6789 40000.00\n");
    run1(root, &c, &r);
    assert_status(&r, CHECK_OK);
    assert_string_equal(values_text(&r, buf, sizeof(buf)),
                        "{\"uptime_seconds\":12345.679,\"swap_total_bytes\":204800000,"
                        "\"swap_used_bytes\":51200000,\"mem_total_bytes\":1024000000,"
                        "\"mem_available_bytes\":341332992,\"mem_available_percent\":33.3}");
    check_result_release(&r);

    put_meminfo("MemAvailable:     206000 kB\n"); /* 20.6, never 20.600000000000001 */
    run1(root, &c, &r);
    assert_string_equal(value_text(&r, "mem_available_percent", buf, sizeof(buf)), "20.6");
    check_result_release(&r);
}

static void memory_unknown_when_unreadable(void **state)
{
    struct check_spec c = memory_spec(15, 5);
    struct check_result r;

    (void)state;
    put_meminfo(""); /* a kernel before 3.14 */
    run1(root, &c, &r);
    assert_status(&r, CHECK_UNKNOWN);
    assert_reason_has(&r, "MemAvailable not found in ");
    assert_reason_has(&r, "/proc/meminfo");
    assert_int_equal(ival(&r, "mem_total_bytes"), 1000000LL * 1024);
    assert_null(json_object_get(r.values, "mem_available_percent"));
    check_result_release(&r);

    unlink_in("proc/meminfo");
    unlink_in("proc/uptime");
    run1(root, &c, &r);
    assert_status(&r, CHECK_UNKNOWN);
    assert_reason_has(&r, "cannot read ");
    assert_reason_has(&r, "/proc/meminfo: No such file or directory");
    assert_null(json_object_get(r.values, "uptime_seconds"));
    check_result_release(&r);
}

/* ---- load ---- */

static void load_per_cpu(void **state)
{
    struct check_spec c5 = load_spec(5, 1.5, 3), c15 = load_spec(15, 1.5, 3);
    struct check_spec c1 = load_spec(1, 1.5, 3);
    struct check_result r;

    (void)state;
    run1(root, &c5, &r); /* 8 / 4 = 2.0 */
    assert_status(&r, CHECK_WARN);
    assert_string_equal(r.reason, "load 8.00 (5m) on 4 CPUs = 2.00 per CPU (warn at 1.5)");
    assert_int_equal(ival(&r, "cpus"), 4);
    assert_true(rval(&r, "load1") == 4.0 && rval(&r, "load5") == 8.0);
    assert_true(rval(&r, "load15") == 14.0 && rval(&r, "load_per_cpu") == 2.0);
    check_result_release(&r);

    run1(root, &c15, &r); /* 14 / 4 = 3.5 */
    assert_status(&r, CHECK_CRIT);
    assert_string_equal(r.reason, "load 14.00 (15m) on 4 CPUs = 3.50 per CPU (crit at 3)");
    assert_int_equal(ival(&r, "load_per_cpu_minutes"), 15);
    check_result_release(&r);

    run1(root, &c1, &r); /* 4 / 4 = 1.0 */
    assert_status(&r, CHECK_OK);
    assert_true(rval(&r, "load_per_cpu") == 1.0);
    assert_int_equal(ival(&r, "load_per_cpu_minutes"), 1);
    check_result_release(&r);

    /* no /proc/stat: the CPUs from sysfs (0-1,3 = 3 CPUs); 4 / 3 = 1.33 */
    unlink_in("proc/stat");
    put("sys/devices/system/cpu/online", "0-1,3\n");
    run1(root, &c1, &r);
    assert_status(&r, CHECK_OK);
    assert_int_equal(ival(&r, "cpus"), 3);
    assert_true(rval(&r, "load_per_cpu") == 1.33);
    check_result_release(&r);

    /* neither: UNKNOWN naming both files, never this process's sysconf */
    unlink_in("sys/devices/system/cpu/online");
    run1(root, &c1, &r);
    assert_status(&r, CHECK_UNKNOWN);
    assert_reason_has(&r, "cannot count CPUs: ");
    assert_reason_has(&r, "/proc/stat: No such file or directory");
    assert_reason_has(&r, "/sys/devices/system/cpu/online: No such file or directory");
    check_result_release(&r);

    put("proc/stat", "cpu 1 2 3\n");
    put("proc/loadavg", "garbage\n");
    run1(root, &c1, &r);
    assert_status(&r, CHECK_UNKNOWN);
    assert_reason_has(&r, "cannot parse ");
    check_result_release(&r);
}

/* ---- process ---- */

/* as stored: load averages and load per CPU to 0.01 (0.89, never 0.89000000000000001) */
static void load_values_print_at_their_precision(void **state)
{
    struct check_spec c = load_spec(5, 1.5, 3), c1 = load_spec(1, 1.5, 3);
    struct check_result r;
    char buf[256];

    (void)state;
    put("proc/loadavg", "0.89 1.00 0.03 3/456 789\n");
    run1(root, &c, &r); /* 1.00 / 4 CPUs */
    assert_status(&r, CHECK_OK);
    assert_string_equal(values_text(&r, buf, sizeof(buf)),
                        "{\"load1\":0.89,\"load5\":1.0,\"load15\":0.03,\"cpus\":4,"
                        "\"load_per_cpu\":0.25,\"load_per_cpu_minutes\":5}");
    check_result_release(&r);

    unlink_in("proc/stat"); /* 3 CPUs from sysfs */
    put("sys/devices/system/cpu/online", "0-2\n");
    put("proc/loadavg", "2.03 1.00 0.03 3/456 789\n");
    run1(root, &c1, &r); /* 2.03 / 3 = 0.67666... */
    assert_int_equal(ival(&r, "cpus"), 3);
    assert_string_equal(value_text(&r, "load_per_cpu", buf, sizeof(buf)), "0.68");
    check_result_release(&r);

    /* no JSON number for an infinity: a load average that is not finite is not one */
    put("proc/loadavg", "inf 1.00 0.03 3/456 789\n");
    run1(root, &c, &r);
    assert_status(&r, CHECK_UNKNOWN);
    assert_reason_has(&r, "not three load averages");
    check_result_release(&r);
}

/* as stored: a count is an integer */
static void process_values_print_at_their_precision(void **state)
{
    struct check_spec c = process_name_spec("sshd", 1, -1);
    struct check_result r;
    char buf[64];

    (void)state;
    run1(root, &c, &r);
    assert_string_equal(values_text(&r, buf, sizeof(buf)), "{\"count\":2}");
    check_result_release(&r);
}

static void process_by_name(void **state)
{
    struct check_spec ok = process_name_spec("sshd", 1, -1);
    struct check_spec few = process_name_spec("sshd", 3, -1);
    struct check_spec many = process_name_spec("sshd", 0, 1);
    struct check_spec none = process_name_spec("postgres", 1, -1);
    struct check_spec longname = process_name_spec("averyveryverylongname", 1, 1);
    struct check_result r;

    (void)state;
    run1(root, &ok, &r);
    assert_status(&r, CHECK_OK);
    assert_int_equal(ival(&r, "count"), 2);
    check_result_release(&r);

    run1(root, &few, &r);
    assert_status(&r, CHECK_CRIT);
    assert_string_equal(r.reason, "found 2 processes named sshd, want at least 3");
    check_result_release(&r);

    run1(root, &many, &r);
    assert_status(&r, CHECK_CRIT);
    assert_string_equal(r.reason, "found 2 processes named sshd, want at most 1");
    check_result_release(&r);

    run1(root, &none, &r);
    assert_status(&r, CHECK_CRIT);
    assert_string_equal(r.reason, "found 0 processes named postgres, want at least 1");
    assert_int_equal(ival(&r, "count"), 0);
    check_result_release(&r);

    run1(root, &longname, &r);
    assert_status(&r, CHECK_OK);
    assert_int_equal(ival(&r, "count"), 1);
    check_result_release(&r);

    /* a process that cannot be read (comm is a directory here) is named when it may matter */
    mkdir_in("proc/106");
    mkdir_in("proc/106/comm");
    run1(root, &none, &r);
    assert_status(&r, CHECK_CRIT);
    assert_string_equal(r.reason, "found 0 processes named postgres, want at least 1; "
                                  "1 process could not be read: Is a directory");
    check_result_release(&r);
    run1(root, &ok, &r);
    assert_status(&r, CHECK_OK);
    check_result_release(&r);

    run1("/nonexistent-hostpatrol-root", &ok, &r);
    assert_status(&r, CHECK_UNKNOWN);
    assert_string_equal(r.reason, "cannot read /nonexistent-hostpatrol-root/proc: "
                                  "No such file or directory");
    check_result_release(&r);
}

static void process_by_cmdline_regex(void **state)
{
    struct check_spec exact = process_regex_spec("^/usr/sbin/sshd -D$", 1, 1);
    struct check_spec any_sshd = process_regex_spec("sshd", 1, -1);
    struct check_spec all = process_regex_spec(".*", 0, -1);
    struct check_spec none = process_regex_spec("^postgres", 1, -1);
    struct check_result r;

    (void)state;
    run1(root, &exact, &r); /* NULs read as spaces, the trailing one dropped */
    assert_status(&r, CHECK_OK);
    assert_int_equal(ival(&r, "count"), 1);
    check_result_release(&r);

    run1(root, &any_sshd, &r);
    assert_status(&r, CHECK_OK);
    assert_int_equal(ival(&r, "count"), 2);
    check_result_release(&r);

    run1(root, &all, &r); /* 100, 101, 102, 104; not the kernel thread, not 103 */
    assert_int_equal(ival(&r, "count"), 4);
    check_result_release(&r);

    run1(root, &none, &r);
    assert_status(&r, CHECK_CRIT);
    assert_string_equal(r.reason,
                        "found 0 processes with a cmdline matching cmdlineRegex, want at least 1");
    check_result_release(&r);

    safe_regex_free(exact.u.process.cmdline_regex);
    safe_regex_free(any_sshd.u.process.cmdline_regex);
    safe_regex_free(all.u.process.cmdline_regex);
    safe_regex_free(none.u.process.cmdline_regex);
}

/* ---- file ---- */

/* have_openat2: the kernel resolves paths in a root (5.6+, not refused by seccomp) */
static bool have_openat2(void)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));

    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static void set_mtime_ago(const char *rel, time_t secs)
{
    char path[PATH_MAX];
    struct timespec ts[2];

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= secs;
    ts[1] = ts[0];
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void file_checks(void **state)
{
    struct check_spec missing = file_spec("/var/run/app.pid", -1, -1);
    struct check_spec old = file_spec("/var/log/app.log", 3600000, -1);
    struct check_spec big = file_spec("/var/log/app.log", -1, 1024);
    struct check_spec both = file_spec("/var/log/app.log", 1500, 1000);
    struct check_spec fine = file_spec("var/log/app.log", 3600000, 4096);
    char data[2048];
    struct check_result r;

    (void)state;
    run1(root, &missing, &r);
    assert_status(&r, CHECK_CRIT);
    assert_string_equal(r.reason, "/var/run/app.pid missing");
    assert_true(json_is_false(json_object_get(r.values, "exists")));
    check_result_release(&r);

    memset(data, 'x', sizeof(data));
    put_n("var/log/app.log", data, sizeof(data));
    set_mtime_ago("var/log/app.log", 7200);
    run1(root, &old, &r);
    assert_status(&r, CHECK_CRIT);
    assert_reason_has(&r, "/var/log/app.log is 720");
    assert_reason_has(&r, " s old (max 3600 s)");
    assert_true(json_is_true(json_object_get(r.values, "exists")));
    assert_int_equal(ival(&r, "size_bytes"), 2048);
    assert_true(rval(&r, "age_seconds") >= 7199 && rval(&r, "age_seconds") < 7300);
    check_result_release(&r);

    run1(root, &big, &r);
    assert_status(&r, CHECK_CRIT);
    assert_string_equal(r.reason, "/var/log/app.log is 2048 bytes (max 1024 bytes)");
    check_result_release(&r);

    run1(root, &both, &r);
    assert_status(&r, CHECK_CRIT);
    assert_reason_has(&r, "(max 1.5 s); /var/log/app.log is 2048 bytes (max 1000 bytes)");
    check_result_release(&r);

    set_mtime_ago("var/log/app.log", 10);
    run1(root, &fine, &r);
    assert_status(&r, CHECK_OK);
    assert_string_equal(r.reason, "");
    check_result_release(&r);

    if (have_openat2()) {
        struct check_spec esc = file_spec("/var/escape", -1, -1);

        /* an absolute symlink on the host resolves below the host root (/var/run -> /run) */
        put("run/app.pid", "42\n");
        symlink_in("/run", "var/run");
        run1(root, &missing, &r);
        assert_status(&r, CHECK_OK);
        assert_int_equal(ival(&r, "size_bytes"), 3);
        check_result_release(&r);

        /* and a link cannot lead out of it: ../../.. stops at the host root */
        symlink_in("../../../../../../../../etc/hostname", "var/escape");
        run1(root, &esc, &r);
        assert_status(&r, CHECK_CRIT);
        assert_string_equal(r.reason, "/var/escape missing");
        check_result_release(&r);
    } else {
        print_message("openat2 unavailable: symlink resolution in the root not tested\n");
    }

    /* a missing host root is a local fault: UNKNOWN, not "missing" */
    run1("/nonexistent-hostpatrol-root", &fine, &r);
    assert_status(&r, CHECK_UNKNOWN);
    assert_string_equal(r.reason, "cannot open the host root /nonexistent-hostpatrol-root: "
                                  "No such file or directory");
    check_result_release(&r);
}

/* as stored: size in bytes an integer, age in seconds to the millisecond */
static void file_values_print_at_their_precision(void **state)
{
    struct check_spec c = file_spec("/var/log/app.log", -1, -1);
    struct check_result r;
    char buf[64];

    (void)state;
    put("var/log/app.log", "0123456789");
    set_mtime_ago("var/log/app.log", 90);
    run1(root, &c, &r);
    assert_status(&r, CHECK_OK);
    assert_string_equal(value_text(&r, "exists", buf, sizeof(buf)), "true");
    assert_string_equal(value_text(&r, "size_bytes", buf, sizeof(buf)), "10");
    assert_value_digits(&r, "age_seconds", 3);
    assert_true(rval(&r, "age_seconds") >= 90 && rval(&r, "age_seconds") < 190);
    check_result_release(&r);
}

static void dotdot_paths_unknown(void **state)
{
    struct check_spec d = disk_spec("/var/../etc", 80, 90, false);
    struct check_spec f = file_spec("/..", -1, -1);
    struct check_spec f2 = file_spec("../etc/passwd", -1, -1);
    struct check_spec not_dotdot = file_spec("/var/..hidden", -1, -1);
    struct check_result r;

    (void)state;
    run1(root, &d, &r);
    assert_status(&r, CHECK_UNKNOWN);
    assert_string_equal(r.reason, "path must not contain ..");
    check_result_release(&r);
    run1(root, &f, &r);
    assert_status(&r, CHECK_UNKNOWN);
    assert_string_equal(r.reason, "path must not contain ..");
    check_result_release(&r);
    run1(root, &f2, &r);
    assert_status(&r, CHECK_UNKNOWN);
    check_result_release(&r);
    run1(root, &not_dotdot, &r);
    assert_status(&r, CHECK_CRIT); /* "..hidden" is a name, not a parent */
    assert_string_equal(r.reason, "/var/..hidden missing");
    check_result_release(&r);
}

/* ---- disk ---- */

static void disk_on_fixture(void **state)
{
    struct check_spec c = disk_spec("/", 1, 2, false);
    struct check_spec ci = disk_spec("/proc", 1, 2, true);
    struct check_spec gone = disk_spec("/no/such/dir", 80, 90, false);
    struct statvfs st;
    unsigned long long used;
    double pct;
    struct check_result r;

    (void)state;
    assert_int_equal(statvfs(root, &st), 0);
    used = st.f_blocks - st.f_bfree;
    pct = used + st.f_bavail ? (double)used * 100.0 / (double)(used + st.f_bavail) : 0;
    run1(root, &c, &r);
    assert_true(ival(&r, "size_bytes") > 0);
    assert_true(ival(&r, "used_bytes") <= ival(&r, "size_bytes"));
    assert_true(ival(&r, "avail_bytes") <= ival(&r, "size_bytes"));
    assert_true(ival(&r, "used_bytes") > 0); /* the fixture itself is on it */
    assert_true(rval(&r, "used_percent") >= 0 && rval(&r, "used_percent") <= 100);
    assert_true(rval(&r, "used_percent") > pct - 0.2 && rval(&r, "used_percent") < pct + 0.2);
    if (rval(&r, "used_percent") >= 2) { /* a non-empty file system */
        assert_status(&r, CHECK_CRIT);
        assert_reason_has(&r, "% used (crit at 2%)");
        assert_true(!strncmp(r.reason, "/ ", 2));
    } else {
        assert_int_not_equal(r.status, CHECK_UNKNOWN);
    }
    check_result_release(&r);

    run1(root, &ci, &r);
    if (r.status != CHECK_UNKNOWN) { /* btrfs & co. report no inodes: UNKNOWN */
        assert_true(ival(&r, "inodes_total") > 0);
        assert_true(ival(&r, "inodes_used") > 0);
        assert_true(rval(&r, "inodes_used_percent") <= 100);
    } else {
        assert_reason_has(&r, "reports no inodes");
    }
    check_result_release(&r);

    run1(root, &gone, &r);
    assert_status(&r, CHECK_UNKNOWN);
    assert_reason_has(&r, "cannot statvfs ");
    assert_reason_has(&r, "/no/such/dir: No such file or directory");
    check_result_release(&r);

    /* the real root: values of a real file system */
    run1("/", &c, &r);
    assert_int_not_equal(r.status, CHECK_UNKNOWN);
    assert_true(ival(&r, "size_bytes") > 0);
    check_result_release(&r);
}

/* as stored: percentages to 0.1, bytes and inodes as integers */
static void disk_values_print_at_their_precision(void **state)
{
    struct check_spec c = disk_spec("/", 80, 90, false), ci = disk_spec("/", 80, 90, true);
    struct check_result r;

    (void)state;
    run1(root, &c, &r);
    assert_int_not_equal(r.status, CHECK_UNKNOWN);
    assert_value_digits(&r, "used_percent", 1);
    assert_value_digits(&r, "used_bytes", -1);
    assert_value_digits(&r, "size_bytes", -1);
    assert_value_digits(&r, "avail_bytes", -1);
    check_result_release(&r);

    run1(root, &ci, &r);
    if (r.status != CHECK_UNKNOWN) { /* btrfs & co. report no inodes */
        assert_value_digits(&r, "inodes_used_percent", 1);
        assert_value_digits(&r, "inodes_used", -1);
        assert_value_digits(&r, "inodes_total", -1);
    }
    check_result_release(&r);
}

/* ---- this machine ---- */

static void real_root(void **state)
{
    struct check_spec m = memory_spec(15, 5), l = load_spec(5, 1.5, 3);
    struct check_spec p;
    char comm[64] = "";
    struct check_result r;
    FILE *f;

    (void)state;
    run1("/", &m, &r);
    assert_int_not_equal(r.status, CHECK_UNKNOWN);
    assert_true(ival(&r, "mem_total_bytes") > 0);
    assert_true(ival(&r, "mem_available_bytes") > 0);
    assert_true(rval(&r, "uptime_seconds") > 0);
    check_result_release(&r);

    run1("/", &l, &r);
    assert_int_not_equal(r.status, CHECK_UNKNOWN);
    assert_true(ival(&r, "cpus") >= 1);
    check_result_release(&r);

    f = fopen("/proc/self/comm", "r");
    assert_non_null(f);
    assert_non_null(fgets(comm, sizeof(comm), f));
    fclose(f);
    comm[strcspn(comm, "\n")] = '\0';
    p = process_name_spec(comm, 1, -1);
    run1("/", &p, &r);
    assert_status(&r, CHECK_OK);
    assert_true(ival(&r, "count") >= 1);
    check_result_release(&r);
}

/* ---- errors and allocation failures ---- */

/* The run's deadline bounds the checks: once passed, a process scan does not start and the
 * checks not yet run are UNKNOWN saying so; a live deadline changes nothing. */
static void the_runs_deadline_bounds_the_checks(void **state)
{
    struct check_spec p = process_regex_spec("hostpatrol|test-host_check", 1, -1),
                      m = memory_spec(15, 5);
    const struct check_spec *list[2] = {&p, &m};
    struct check_result out[2];
    struct hp_err err = {0};
    struct hp_ctx *ctx = NULL;
    int i;

    (void)state;
    assert_int_equal(hp_ctx_new(NULL, 60000, &ctx), HP_OK);
    assert_int_equal(host_check_run("/", "n", list, 2, ctx, out, &err), HP_OK);
    assert_int_equal(out[0].status, CHECK_OK); /* this test program matches */
    for (i = 0; i < 2; i++)
        check_result_release(&out[i]);
    hp_ctx_cancel(ctx);
    assert_int_equal(host_check_run("/", "n", list, 2, ctx, out, &err), HP_OK);
    for (i = 0; i < 2; i++) {
        assert_int_equal(out[i].status, CHECK_UNKNOWN);
        assert_string_equal(out[i].reason, "not run: the run's timeout had passed");
        check_result_release(&out[i]);
    }
    hp_ctx_free(ctx);
    safe_regex_free(p.u.process.cmdline_regex);
}

static void bad_arguments(void **state)
{
    struct check_spec m = memory_spec(15, 5), h = spec_of(CHECK_HTTP);
    const struct check_spec *list[2] = {&m, &h};
    const struct check_spec *nul[1] = {NULL};
    struct check_result out[2];
    struct hp_err err = {0};

    (void)state;
    assert_int_equal(host_check_run(root, "n", list, 2, NULL, out, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "checks[1]");
    assert_non_null(strstr(err.msg, "http"));
    check_result_release(&out[0]);
    check_result_release(&out[1]);

    hp_err_clear(&err);
    assert_int_equal(host_check_run(root, "n", nul, 1, NULL, out, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "checks[0]");

    hp_err_clear(&err);
    assert_int_equal(host_check_run(NULL, "n", list, 1, NULL, out, &err), HP_ERR_INVALID);
    assert_string_equal(err.field, "host_root");
    assert_int_equal(host_check_run("", "n", list, 1, NULL, out, &err), HP_ERR_INVALID);

    assert_int_equal(host_check_run(root, "n", NULL, 0, NULL, NULL, &err), HP_OK);

    /* NULL target: "-" */
    assert_int_equal(host_check_run(root, NULL, list, 1, NULL, out, &err), HP_OK);
    assert_string_equal(out[0].target, "-");
    check_result_release(&out[0]);
}

static void every_allocation_failure_is_clean(void **state)
{
    struct check_spec c[7];
    const struct check_spec *list[7];
    long n, failures = 0;
    size_t i;

    (void)state;
    put_meminfo("MemAvailable:     100000 kB\n");
    put("var/log/app.log", "hello\n");
    c[0] = memory_spec(15, 5);
    c[1] = load_spec(5, 1.5, 3);
    c[2] = disk_spec("/", 80, 90, false);
    c[3] = process_name_spec("sshd", 3, -1);
    c[4] = process_regex_spec("sshd", 1, -1);
    c[5] = file_spec("/var/log/app.log", 1, 1);
    c[6] = file_spec("/missing", -1, -1);
    for (i = 0; i < 7; i++)
        list[i] = &c[i];
    for (n = 0; n < 1000; n++) {
        struct check_result out[7];
        struct hp_err err = {0};
        long injected;
        hp_rc rc;

        hp_alloc_fail_after(n);
        rc = host_check_run(root, "node-1", list, 7, NULL, out, &err);
        injected = hp_alloc_failures();
        hp_alloc_fail_reset();
        for (i = 0; i < 7; i++)
            check_result_release(&out[i]);
        if (rc) {
            assert_int_equal(rc, HP_ERR_NOMEM);
            assert_string_equal(err.msg, "host_check_run: out of memory");
            failures++;
        } else if (!injected) {
            break;
        }
    }
    assert_true(n < 1000);
    assert_true(failures > 10);
    safe_regex_free(c[4].u.process.cmdline_regex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(memory_thresholds, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(memory_unknown_when_unreadable, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(memory_values_print_at_their_precision, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(load_per_cpu, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(load_values_print_at_their_precision, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(process_values_print_at_their_precision, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(process_by_name, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(process_by_cmdline_regex, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(file_checks, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(file_values_print_at_their_precision, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(dotdot_paths_unknown, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(disk_on_fixture, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(disk_values_print_at_their_precision, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test(real_root),
        cmocka_unit_test_setup_teardown(the_runs_deadline_bounds_the_checks, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(bad_arguments, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(every_allocation_failure_is_clean, fixture_setup,
                                        fixture_teardown),
    };

    hp_alloc_install();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
