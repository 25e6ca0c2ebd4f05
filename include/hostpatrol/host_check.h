/*
 * host_check.h - node-local checks (disk, load, memory, process, file), run by the agent on
 * its own node, reading everything below a host root: "/" for this machine, "/host" in the
 * agent's pod (the host's / mounted read-only, recursively, so /host/proc is the host's procfs),
 * a fixture directory in tests. Nothing is read from the calling process's own view of the
 * machine (no sysconf, no sysinfo): with a fixture root the results describe the fixture.
 *
 * Judgement (a check that cannot read what it needs is UNKNOWN, the reason naming the file and
 * the errno text; never OK). Reasons are "" when OK; several findings are joined with "; ", the
 * status being the worst of them. Percentages are rounded to 0.1 and judged as rounded, so the
 * reason, the values and the status always agree.
 *   disk    - statvfs of host_root + path. used % = (blocks - bfree) / (blocks - bfree + bavail)
 *             (as df computes it; 0 for a file system with no blocks), or with inodes
 *             (files - ffree) / files (UNKNOWN when the file system reports no inodes, as
 *             btrfs does). >= critPercent CRIT, >= warnPercent WARN ("/ 93.1% used (crit at
 *             90%)", "/ 85.0% of inodes used (warn at 80%)"). Values: used_percent, used_bytes,
 *             size_bytes, avail_bytes; with inodes: inodes_used_percent, inodes_used,
 *             inodes_total. A path that does not exist is UNKNOWN.
 *   load    - host_root/proc/loadavg (1, 5, 15 minutes); CPUs = the "cpuN" lines of
 *             host_root/proc/stat, else host_root/sys/devices/system/cpu/online ("0-3,6").
 *             per CPU = load of the window / CPUs (rounded to 0.01); >= critPerCPU CRIT,
 *             >= warnPerCPU WARN ("load 12.40 (5m) on 4 CPUs = 3.10 per CPU (crit at 3)").
 *             Values: load1, load5, load15, cpus, load_per_cpu.
 *   memory  - host_root/proc/meminfo: available % = MemAvailable / MemTotal; <= critAvailable
 *             CRIT, <= warnAvailable WARN ("memory 3.2% available (crit at 5%)"). A missing
 *             MemTotal or MemAvailable (kernels before 3.14) is UNKNOWN naming the field.
 *             Values: mem_total_bytes, mem_available_bytes, mem_available_percent, and when
 *             meminfo has them swap_total_bytes, swap_used_bytes; plus uptime_seconds from
 *             host_root/proc/uptime when it can be read (informational: never judged, an
 *             unreadable uptime leaves the value out and the status alone).
 *   process - host_root/proc/<digits>/: by name, the trimmed comm (/proc/<pid>/comm) equals
 *             name (the kernel cuts comm to 15 bytes: a longer name matches a 15-byte comm
 *             that is its prefix, as pgrep does); by cmdlineRegex (safe_regex.h), a search in
 *             /proc/<pid>/cmdline with its NULs turned into spaces (at most 64 KiB read;
 *             kernel threads and zombies have no cmdline and never match). count < minCount
 *             CRIT ("found 0 processes named sshd, want at least 1"); maxCount >= 0 and
 *             count > maxCount CRIT ("found 3 processes named sshd, want at most 1"); a
 *             cmdlineRegex that reaches its match limit on a process: UNKNOWN.
 *             Processes that end during the scan are skipped silently; processes that cannot
 *             be read for another reason are skipped and, when the count is then too low,
 *             named in the reason ("(2 processes could not be read: Permission denied)").
 *             At most 100000 process directories are examined: a /proc with more is UNKNOWN.
 *             host_root/proc itself unreadable: UNKNOWN. Values: count.
 *   file    - stat of host_root + path (a final symlink is followed): missing CRIT
 *             ("/var/run/app.pid missing"); now - mtime > maxAge CRIT ("... is 7200 s old
 *             (max 3600 s)"); size > maxSizeBytes CRIT. Another stat error (EACCES...) is
 *             UNKNOWN. Values: exists (bool), and when it exists size_bytes, age_seconds
 *             (0.001 precision; negative for an mtime in the future).
 *
 * Paths (disk and file): the spec path is joined to host_root ("/" + "/var/log" = "/var/log",
 * "/host" + "/" = "/host/"). A spec path with a ".." component is UNKNOWN ("path must not
 * contain ..") without being looked at. The path is resolved with openat2(RESOLVE_IN_ROOT)
 * below host_root, so symlinks on the host resolve as they do on the host (an absolute link
 * /var/run -> /run stays below /host) and no link can lead outside host_root; where the kernel
 * has no openat2 (before 5.6, or a seccomp filter refusing it: ENOSYS/EPERM) the joined path
 * is used as is, symlinks then resolving in the caller's mount namespace.
 *
 * Each result gets observed_ms (unix ms when the check finished) and duration_ms.
 * Thread-safety: reentrant; no shared state. Blocking: only local file reads (procfs, sysfs,
 * statvfs); a statvfs of a hung network file system can block, as df does.
 */
#ifndef HOSTPATROL_HOST_CHECK_H
#define HOSTPATROL_HOST_CHECK_H

#include <stddef.h>

#include "hostpatrol/check_result.h"
#include "hostpatrol/ctx.h"
#include "hostpatrol/inspection_spec.h"
#include "hostpatrol/rc.h"

/* host_check_run: run the n node-local checks (checks: borrowed array of borrowed specs of kind
 * disk, load, memory, process or file) on this host, reading below host_root (borrowed; "/",
 * "/host", a fixture directory). target (borrowed) is the node name written into each result
 * ("-" when NULL). out is the caller's array of n results, each initialised here; the caller
 * releases them whatever the return. ctx (borrowed, may be NULL: no deadline) bounds the work:
 * once its deadline passes (or it is cancelled) a process scan stops (UNKNOWN "process scan
 * stopped at the run's timeout ...", a cmdlineRegex search stops with it) and checks not yet
 * started are UNKNOWN ("not run: the run's timeout had passed").
 * A failed check is a result, not an error: the return is HP_OK unless an allocation failed
 * (HP_ERR_NOMEM) or the arguments are a programming error: HP_ERR_INVALID with err->field
 * "checks[i]" for a NULL check or one that is not node-local, "host_root" for a NULL or empty
 * root (nothing is run then, the results are zeroed). */
hp_rc host_check_run(const char *host_root, const char *target,
                     const struct check_spec *const *checks, size_t n, struct hp_ctx *ctx,
                     struct check_result *out, struct hp_err *err) HP_WUR;

#endif
