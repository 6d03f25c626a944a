/* codepane-server: per-run cgroups for the sandbox (shared/spec/sandbox.md §3.5).
 *
 * One parent directory per hierarchy, named by the caller (e.g. "codepane-60000"),
 * is created *under the server's own cgroup* (so limits the host puts on the server
 * still bound its runs), and one run directory per spawn below it. Both layouts are
 * handled:
 *   - cgroup v1 (Debian 12 hybrid): memory, pids, cpu, cpuacct and freezer, each
 *     wherever its hierarchy is mounted (co-mounted controllers share a directory);
 *   - cgroup v2 (/sys/fs/cgroup is cgroup2): memory, pids and cpu in one tree. A v2
 *     cgroup that holds processes cannot hand controllers to children ("no internal
 *     processes"), so when the server's own cgroup is not the root, cp_cgroups_open
 *     moves the server into a leaf "<parent>-server" beside the parent first (the
 *     pattern systemd documents for Delegate=yes services).
 * memory and pids are required; cpu, cpuacct and freezer are used when present.
 *
 * Not thread-safe: one thread (the sandbox's caller) drives all of it.
 * Ownership: cp_cgroups is owned by the caller (cp_cgroups_close). */
#ifndef CP_CGROUP_H
#define CP_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Most cgroup.procs files a run joins: one per v1 hierarchy in use. */
#define CP_CGROUP_MAX_HIER 5

typedef struct cp_cgroups cp_cgroups;

typedef struct {
    size_t memory_bytes; /* memory limit (and memory+swap limit: no swap) */
    unsigned pids_max;   /* tasks, threads included */
    double cpu_quota;    /* CPUs, e.g. 1.0 */
} cp_cgroup_limits;

typedef struct {
    bool oom_killed;   /* the OOM killer killed something in the run */
    bool pids_hit;     /* a fork or clone was refused by pids.max */
    bool has_cpu;      /* cpu_s is known */
    bool has_peak;     /* peak_bytes is known */
    double cpu_s;      /* CPU time of the whole tree */
    size_t peak_bytes; /* peak memory of the whole tree */
} cp_cgroup_stats;

/* Read up to cap-1 bytes of a small file (cgroup and /proc files), NUL-terminated;
 * the length, or -1 when it cannot be opened. */
ssize_t cp_read_small(const char *path, char *buf, size_t cap);

/* Find the cgroup layout, create `parent` in every hierarchy used, and sweep run
 * directories a previous server left behind (freeze-kill, rmdir; spec D18). Returns 0
 * with *out set; *out is NULL when the host offers no usable cgroups, with the reason
 * in err (not an error: the sandbox then runs without them). -1 with err on failure. */
int cp_cgroups_open(cp_cgroups **out, const char *parent, char *err, size_t errcap);

/* Remove the parent directories (when empty) and free. NULL is fine. */
void cp_cgroups_close(cp_cgroups *cg);

/* "v1" or "v2". */
const char *cp_cgroups_version(const cp_cgroups *cg);

/* Create run directory `name` with limits, and open the cgroup.procs files a child
 * must write "0" into to join it (before it execs). *nfds ≤ CP_CGROUP_MAX_HIER fds are
 * stored in procs_fds, O_CLOEXEC, owned by the caller. On failure nothing is left
 * behind: -1 with err. */
int cp_cgroup_create(cp_cgroups *cg, const char *name, const cp_cgroup_limits *lim,
                     int procs_fds[CP_CGROUP_MAX_HIER], size_t *nfds, char *err, size_t errcap);

/* Kill every task of run `name`: v1 freeze, SIGKILL each task, thaw; v2 cgroup.kill.
 * Then wait (bounded) until it is empty. Returns true when it is empty. */
bool cp_cgroup_kill(cp_cgroups *cg, const char *name);

/* True when no task is left in run `name` (in any hierarchy). */
bool cp_cgroup_is_empty(cp_cgroups *cg, const char *name);

/* Accounting of run `name`; fields the host does not offer stay false/0. */
void cp_cgroup_read_stats(cp_cgroups *cg, const char *name, cp_cgroup_stats *st);

/* Kill what is left, then rmdir run `name` everywhere. -1 when a directory stayed. */
int cp_cgroup_remove(cp_cgroups *cg, const char *name);

#endif
