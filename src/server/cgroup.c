/* codepane-server: per-run cgroups (see cgroup.h; shared/spec/sandbox.md §3.5, §3.7).
 *
 * Everything here is plain file I/O on cgroupfs. Files that a given kernel may lack
 * (memory.memsw.* without swap accounting, memory.peak before 5.19, cgroup.kill
 * before 5.14) are optional; the required limits (memory, pids) are not. */
#define _GNU_SOURCE

#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

/* Where the cgroup file systems live. */
#define CP_CGROUP_ROOT "/sys/fs/cgroup"
/* CFS period for the cpu quota: the kernel default, 100 ms. */
#define CP_CGROUP_CPU_PERIOD_US 100000
/* How long to wait for a freeze to take effect before killing anyway (a task stuck in
 * an uninterruptible sleep can hold FREEZING for a while; SIGKILL still lands). */
#define CP_CGROUP_FREEZE_WAIT_MS 200
/* How long a kill may take to empty the cgroup (spec §3.7: "up to about 1 s"). */
#define CP_CGROUP_EMPTY_WAIT_MS 1000
/* Poll interval while waiting for the kernel to freeze or empty a cgroup. */
#define CP_CGROUP_POLL_US 500
/* Name prefix of run directories; the startup sweep removes every one it finds. */
#define CP_CGROUP_RUN_PREFIX "run-"
/* Bytes read at a time from cgroup.procs and the small stat files. */
#define CP_CGROUP_READ_CHUNK 4096

enum { C_MEMORY, C_PIDS, C_CPU, C_CPUACCT, C_FREEZER, C_COUNT };
static const char *const k_ctrl[C_COUNT] = {"memory", "pids", "cpu", "cpuacct", "freezer"};

struct cp_cgroups {
    int version;                             /* 1 or 2 */
    size_t nhier;                            /* hierarchies in use (v2: 1) */
    char hier[CP_CGROUP_MAX_HIER][PATH_MAX]; /* the parent directory in each */
    int role[C_COUNT];                       /* controller → index into hier, or -1 */
};

/* ---- small file helpers ------------------------------------------------------------ */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap(void)
{
    struct timespec ts = {0, CP_CGROUP_POLL_US * 1000L};
    nanosleep(&ts, NULL);
}

/* Write a whole string to a cgroup file; 0 or an errno value. */
static int write_str(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    size_t len = strlen(s);
    ssize_t n = write(fd, s, len);
    int rc = n == (ssize_t)len ? 0 : (n < 0 ? errno : EIO);
    close(fd);
    return rc;
}

ssize_t cp_read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

/* Find "key <number>" at the start of a line of a flat-keyed file. */
static bool read_keyed(const char *path, const char *key, unsigned long long *val)
{
    char buf[CP_CGROUP_READ_CHUNK];
    if (cp_read_small(path, buf, sizeof buf) < 0) return false;
    size_t klen = strlen(key);
    for (char *line = buf; *line;) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
            *val = strtoull(line + klen + 1, NULL, 10);
            return true;
        }
        char *nl = strchr(line, '\n');
        if (!nl) break;
        line = nl + 1;
    }
    return false;
}

static bool read_ull(const char *path, unsigned long long *val)
{
    char buf[64];
    if (cp_read_small(path, buf, sizeof buf) <= 0) return false;
    char *end;
    errno = 0;
    *val = strtoull(buf, &end, 10);
    return errno == 0 && end != buf;
}

/* path = hier[h]/name/file (name or file may be NULL). false when it does not fit. */
static bool mkpath(char *out, const cp_cgroups *cg, size_t h, const char *name, const char *file)
{
    int n = snprintf(out, PATH_MAX, "%s%s%s%s%s", cg->hier[h], name ? "/" : "", name ? name : "",
                     file ? "/" : "", file ? file : "");
    return n > 0 && n < PATH_MAX;
}

/* Path of `file` in the hierarchy that holds controller `c`; false when absent. */
static bool role_path(char *out, const cp_cgroups *cg, int c, const char *name, const char *file)
{
    return cg->role[c] >= 0 && mkpath(out, cg, (size_t)cg->role[c], name, file);
}

/* Call fn(pid) for every pid listed in a cgroup.procs file (read in chunks: a fork
 * bomb's list can be long). Returns how many pids were seen, -1 if unreadable. */
static long for_each_pid(const char *procs, void (*fn)(pid_t))
{
    int fd = open(procs, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[CP_CGROUP_READ_CHUNK];
    long count = 0;
    long long cur = -1;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] >= '0' && buf[i] <= '9') {
                cur = (cur < 0 ? 0 : cur * 10) + (buf[i] - '0');
            } else if (cur >= 0) {
                if (fn) fn((pid_t)cur);
                count++;
                cur = -1;
            }
        }
    }
    if (cur >= 0) {
        if (fn) fn((pid_t)cur);
        count++;
    }
    close(fd);
    return count;
}

static void sigkill_pid(pid_t pid)
{
    /* Safe against pid reuse only because the cgroup is frozen (v1) or because a
     * listed task cannot be reaped by anyone but its parent inside the run. */
    if (pid > 0) kill(pid, SIGKILL);
}

/* ---- detection ----------------------------------------------------------------------- */

/* True when `list` (comma-separated) contains `item`. */
static bool in_list(const char *list, const char *item)
{
    size_t len = strlen(item);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == len && strncmp(p, item, len) == 0) return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

/* The server's own cgroup path for v1 controller `ctrl`, or for v2 when ctrl is NULL. */
static bool own_cgroup(const char *ctrl, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) return false;
    char line[PATH_MAX + 128];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *path = c2 + 1;
        bool match = ctrl ? in_list(ctrls, ctrl) : (strcmp(line, "0") == 0 && *ctrls == '\0');
        if (match && strlen(path) < cap) {
            strcpy(out, path);
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* Mount point and mount root of the v1 hierarchy holding `ctrl`. */
static bool v1_mount(const char *ctrl, char *mnt, char *root)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) return false;
    char line[3 * PATH_MAX];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        /* id parent maj:min root mountpoint options [optional...] - fstype source super */
        char *fields[6] = {0};
        char *save = NULL, *tok = strtok_r(line, " \n", &save);
        for (int i = 0; tok && i < 6; i++, tok = strtok_r(NULL, " \n", &save))
            fields[i] = tok;
        while (tok && strcmp(tok, "-") != 0)
            tok = strtok_r(NULL, " \n", &save);
        char *fstype = tok ? strtok_r(NULL, " \n", &save) : NULL;
        char *source = fstype ? strtok_r(NULL, " \n", &save) : NULL;
        char *super = source ? strtok_r(NULL, " \n", &save) : NULL;
        if (!fields[4] || !super || strcmp(fstype, "cgroup") != 0) continue;
        if (!in_list(super, ctrl)) continue;
        if (strlen(fields[3]) >= PATH_MAX || strlen(fields[4]) >= PATH_MAX) continue;
        strcpy(root, fields[3]);
        strcpy(mnt, fields[4]);
        found = true;
    }
    fclose(f);
    return found;
}

/* mount + own path (made relative to the mount's root) + "/" + parent. */
static bool join_dir(char *out, const char *mnt, const char *root, const char *own,
                     const char *parent)
{
    size_t rlen = strlen(root);
    if (strcmp(root, "/") != 0 && strncmp(own, root, rlen) == 0) own += rlen;
    while (*own == '/')
        own++;
    int n = snprintf(out, PATH_MAX, "%s%s%s/%s", mnt, *own ? "/" : "", own, parent);
    return n > 0 && n < PATH_MAX;
}

static int setup_v1(cp_cgroups *cg, const char *parent, char *err, size_t errcap)
{
    char mnts[CP_CGROUP_MAX_HIER][PATH_MAX];
    char mnt[PATH_MAX], root[PATH_MAX], own[PATH_MAX];
    for (int c = 0; c < C_COUNT; c++) {
        cg->role[c] = -1;
        if (!v1_mount(k_ctrl[c], mnt, root) || !own_cgroup(k_ctrl[c], own, sizeof own)) continue;
        size_t h = 0;
        while (h < cg->nhier && strcmp(mnts[h], mnt) != 0)
            h++;
        if (h == cg->nhier) { /* a hierarchy not seen yet (co-mounted ones are shared) */
            if (!join_dir(cg->hier[h], mnt, root, own, parent)) continue;
            strcpy(mnts[h], mnt);
            cg->nhier++;
        }
        cg->role[c] = (int)h;
    }
    if (cg->role[C_MEMORY] < 0 || cg->role[C_PIDS] < 0) {
        snprintf(err, errcap, "cgroup v1: the memory and pids controllers are not both mounted");
        return -1;
    }
    return 0;
}

/* v2: controllers must be enabled top-down. Our own cgroup holds the server, so unless
 * it is the root it cannot delegate; move the server into a leaf beside the parent. */
static int setup_v2(cp_cgroups *cg, const char *parent, char *err, size_t errcap)
{
    char own[PATH_MAX], base[PATH_MAX], path[PATH_MAX + 64], avail[512];
    for (int c = 0; c < C_COUNT; c++)
        cg->role[c] = -1;
    if (!own_cgroup(NULL, own, sizeof own)) {
        snprintf(err, errcap, "cgroup v2: own cgroup not found in /proc/self/cgroup");
        return -1;
    }
    if (!join_dir(base, CP_CGROUP_ROOT, "/", own, "") ||
        strlen(base) + strlen(parent) + 1 >= PATH_MAX) {
        snprintf(err, errcap, "cgroup v2: path too long");
        return -1;
    }
    base[strlen(base) - 1] = '\0'; /* join_dir appended "/" + "" */
    /* Already moved into our leaf (an earlier cp_cgroups_open in this process): the
     * delegated base is the leaf's parent. */
    char leaf_name[NAME_MAX + 1];
    int ln = snprintf(leaf_name, sizeof leaf_name, "/%s-server", parent);
    if (ln < 0 || (size_t)ln >= sizeof leaf_name) {
        snprintf(err, errcap, "cgroup v2: parent name too long");
        return -1;
    }
    size_t blen = strlen(base), llen = strlen(leaf_name);
    if (blen > llen && strcmp(base + blen - llen, leaf_name) == 0) base[blen - llen] = '\0';
    snprintf(path, sizeof path, "%s/cgroup.controllers", base);
    if (cp_read_small(path, avail, sizeof avail) < 0) avail[0] = '\0';
    /* cgroup.controllers is space-separated; make it a comma list for in_list. */
    for (char *p = avail; *p; p++)
        if (*p == ' ' || *p == '\n') *p = ',';
    if (!in_list(avail, "memory") || !in_list(avail, "pids")) {
        snprintf(err, errcap, "cgroup v2: memory and pids controllers not available in %s", base);
        return -1;
    }
    bool cpu = in_list(avail, "cpu");
    const char *enable = cpu ? "+memory +pids +cpu" : "+memory +pids";
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", base);
    int rc = write_str(path, enable);
    if (rc == EBUSY) {
        char leaf[PATH_MAX + 64];
        snprintf(leaf, sizeof leaf, "%s/%s-server", base, parent);
        if (mkdir(leaf, 0755) < 0 && errno != EEXIST) {
            snprintf(err, errcap, "cgroup v2: mkdir %s: %s", leaf, strerror(errno));
            return -1;
        }
        snprintf(leaf + strlen(leaf), sizeof leaf - strlen(leaf), "/cgroup.procs");
        if ((rc = write_str(leaf, "0")) == 0) rc = write_str(path, enable);
    }
    if (rc != 0) {
        snprintf(err, errcap, "cgroup v2: enabling controllers in %s: %s", base, strerror(rc));
        return -1;
    }
    int n = snprintf(cg->hier[0], PATH_MAX, "%s/%s", base, parent);
    if (n < 0 || n >= PATH_MAX) {
        snprintf(err, errcap, "cgroup v2: path too long");
        return -1;
    }
    cg->nhier = 1;
    cg->role[C_MEMORY] = cg->role[C_PIDS] = 0;
    cg->role[C_CPUACCT] = 0; /* cpu.stat usage_usec exists without the cpu controller */
    cg->role[C_FREEZER] = 0; /* cgroup.freeze is core in v2 */
    if (cpu) cg->role[C_CPU] = 0;
    if (mkdir(cg->hier[0], 0755) < 0 && errno != EEXIST) {
        snprintf(err, errcap, "cgroup v2: mkdir %s: %s", cg->hier[0], strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", cg->hier[0]);
    if ((rc = write_str(path, enable)) != 0) {
        snprintf(err, errcap, "cgroup v2: enabling controllers in %s: %s", cg->hier[0],
                 strerror(rc));
        return -1;
    }
    return 0;
}

/* Name of the first run directory left in any hierarchy, or false. */
static bool first_run_dir(const cp_cgroups *cg, char *name, size_t cap)
{
    for (size_t h = 0; h < cg->nhier; h++) {
        DIR *d = opendir(cg->hier[h]);
        if (!d) continue;
        struct dirent *e;
        bool found = false;
        while (!found && (e = readdir(d))) {
            if (strncmp(e->d_name, CP_CGROUP_RUN_PREFIX, strlen(CP_CGROUP_RUN_PREFIX)) == 0 &&
                strlen(e->d_name) < cap) {
                strcpy(name, e->d_name);
                found = true;
            }
        }
        closedir(d);
        if (found) return true;
    }
    return false;
}

int cp_cgroups_open(cp_cgroups **out, const char *parent, char *err, size_t errcap)
{
    *out = NULL;
    cp_cgroups *cg = calloc(1, sizeof *cg);
    if (!cg) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    struct statfs sfs;
    bool v2 = statfs(CP_CGROUP_ROOT, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
    cg->version = v2 ? 2 : 1;
    if ((v2 ? setup_v2 : setup_v1)(cg, parent, err, errcap) < 0) {
        free(cg); /* unusable cgroups are not an error: run without them */
        return 0;
    }
    if (cg->version == 1) {
        for (size_t h = 0; h < cg->nhier; h++) {
            if (mkdir(cg->hier[h], 0755) < 0 && errno != EEXIST) {
                snprintf(err, errcap, "cgroup v1: mkdir %s: %s", cg->hier[h], strerror(errno));
                free(cg);
                return 0;
            }
        }
    }
    /* D18: runs of a server that died are still in their cgroups; kill and remove. */
    char name[NAME_MAX + 1];
    while (first_run_dir(cg, name, sizeof name)) {
        if (cp_cgroup_remove(cg, name) < 0) {
            snprintf(err, errcap, "cgroup: cannot remove stale run cgroup %s", name);
            cp_cgroups_close(cg);
            return -1;
        }
    }
    *out = cg;
    return 0;
}

void cp_cgroups_close(cp_cgroups *cg)
{
    if (!cg) return;
    for (size_t h = 0; h < cg->nhier; h++)
        rmdir(cg->hier[h]); /* only when empty */
    free(cg);
}

const char *cp_cgroups_version(const cp_cgroups *cg)
{
    return cg->version == 2 ? "v2" : "v1";
}

/* ---- per run ------------------------------------------------------------------------ */

static void rmdir_run(cp_cgroups *cg, const char *name)
{
    char path[PATH_MAX];
    for (size_t h = 0; h < cg->nhier; h++)
        if (mkpath(path, cg, h, name, NULL)) rmdir(path);
}

/* Write a limit; `optional` files may be missing on this kernel (ENOENT). */
static int set_limit(cp_cgroups *cg, int ctrl, const char *name, const char *file,
                     const char *value, bool optional, char *err, size_t errcap)
{
    char path[PATH_MAX];
    if (!role_path(path, cg, ctrl, name, file)) {
        if (optional) return 0;
        snprintf(err, errcap, "cgroup: no %s for %s", k_ctrl[ctrl], file);
        return -1;
    }
    int rc = write_str(path, value);
    if (rc == 0 || (optional && rc == ENOENT)) return 0;
    snprintf(err, errcap, "cgroup: writing %s to %s: %s", value, path, strerror(rc));
    return -1;
}

static int set_limits(cp_cgroups *cg, const char *name, const cp_cgroup_limits *lim, char *err,
                      size_t errcap)
{
    char mem[32], pids[32], quota[32], period[32], cpumax[64];
    snprintf(mem, sizeof mem, "%zu", lim->memory_bytes);
    snprintf(pids, sizeof pids, "%u", lim->pids_max);
    long long q = (long long)(lim->cpu_quota * CP_CGROUP_CPU_PERIOD_US + 0.5);
    snprintf(quota, sizeof quota, "%lld", q);
    snprintf(period, sizeof period, "%d", CP_CGROUP_CPU_PERIOD_US);
    snprintf(cpumax, sizeof cpumax, "%lld %d", q, CP_CGROUP_CPU_PERIOD_US);
    if (cg->version == 2) {
        if (set_limit(cg, C_MEMORY, name, "memory.max", mem, false, err, errcap) < 0 ||
            set_limit(cg, C_MEMORY, name, "memory.swap.max", "0", true, err, errcap) < 0 ||
            set_limit(cg, C_PIDS, name, "pids.max", pids, false, err, errcap) < 0 ||
            set_limit(cg, C_CPU, name, "cpu.max", cpumax, true, err, errcap) < 0)
            return -1;
        return 0;
    }
    /* v1: limit before memsw (memsw must stay ≥ limit); equal values mean no swap. The
     * OOM killer stays enabled: with it disabled, tasks hang at the limit instead. */
    if (set_limit(cg, C_MEMORY, name, "memory.limit_in_bytes", mem, false, err, errcap) < 0 ||
        set_limit(cg, C_MEMORY, name, "memory.memsw.limit_in_bytes", mem, true, err, errcap) < 0 ||
        set_limit(cg, C_MEMORY, name, "memory.swappiness", "0", true, err, errcap) < 0 ||
        set_limit(cg, C_PIDS, name, "pids.max", pids, false, err, errcap) < 0 ||
        set_limit(cg, C_CPU, name, "cpu.cfs_period_us", period, true, err, errcap) < 0 ||
        set_limit(cg, C_CPU, name, "cpu.cfs_quota_us", quota, true, err, errcap) < 0)
        return -1;
    return 0;
}

int cp_cgroup_create(cp_cgroups *cg, const char *name, const cp_cgroup_limits *lim,
                     int procs_fds[CP_CGROUP_MAX_HIER], size_t *nfds, char *err, size_t errcap)
{
    char path[PATH_MAX];
    *nfds = 0;
    for (size_t h = 0; h < cg->nhier; h++) {
        if (!mkpath(path, cg, h, name, NULL) || mkdir(path, 0755) < 0) {
            snprintf(err, errcap, "cgroup: mkdir %s: %s", path, strerror(errno));
            goto fail;
        }
    }
    if (set_limits(cg, name, lim, err, errcap) < 0) goto fail;
    for (size_t h = 0; h < cg->nhier; h++) {
        int fd = mkpath(path, cg, h, name, "cgroup.procs") ? open(path, O_WRONLY | O_CLOEXEC) : -1;
        if (fd < 0) {
            snprintf(err, errcap, "cgroup: open %s: %s", path, strerror(errno));
            goto fail;
        }
        procs_fds[(*nfds)++] = fd;
    }
    return 0;
fail:
    for (size_t i = 0; i < *nfds; i++)
        close(procs_fds[i]);
    *nfds = 0;
    rmdir_run(cg, name);
    return -1;
}

bool cp_cgroup_is_empty(cp_cgroups *cg, const char *name)
{
    char path[PATH_MAX];
    for (size_t h = 0; h < cg->nhier; h++)
        if (mkpath(path, cg, h, name, "cgroup.procs") && for_each_pid(path, NULL) > 0) return false;
    return true;
}

static void kill_listed(cp_cgroups *cg, const char *name)
{
    char path[PATH_MAX];
    for (size_t h = 0; h < cg->nhier; h++)
        if (mkpath(path, cg, h, name, "cgroup.procs")) for_each_pid(path, sigkill_pid);
}

/* Freeze the run so nothing can fork while we kill, kill every task, thaw so the
 * kills are delivered (frozen tasks die only once thawed). */
static void freeze_kill(cp_cgroups *cg, const char *name)
{
    char state[PATH_MAX], buf[64];
    const char *file = cg->version == 2 ? "cgroup.freeze" : "freezer.state";
    if (!role_path(state, cg, C_FREEZER, name, file) ||
        write_str(state, cg->version == 2 ? "1" : "FROZEN") != 0) {
        kill_listed(cg, name); /* no freezer: kill and let the caller retry */
        return;
    }
    char events[PATH_MAX];
    bool have_events = cg->version == 2 && role_path(events, cg, C_FREEZER, name, "cgroup.events");
    long long deadline = now_ms() + CP_CGROUP_FREEZE_WAIT_MS;
    for (;;) {
        unsigned long long frozen = 0;
        bool done = cg->version == 2
                        ? have_events && read_keyed(events, "frozen", &frozen) && frozen == 1
                        : cp_read_small(state, buf, sizeof buf) > 0 && strncmp(buf, "FROZEN", 6) == 0;
        if (done || now_ms() >= deadline) break;
        nap();
    }
    kill_listed(cg, name);
    write_str(state, cg->version == 2 ? "0" : "THAWED");
}

bool cp_cgroup_kill(cp_cgroups *cg, const char *name)
{
    char path[PATH_MAX];
    bool killed = cg->version == 2 && role_path(path, cg, C_MEMORY, name, "cgroup.kill") &&
                  write_str(path, "1") == 0;
    if (!killed) freeze_kill(cg, name);
    long long deadline = now_ms() + CP_CGROUP_EMPTY_WAIT_MS;
    for (;;) {
        if (cp_cgroup_is_empty(cg, name)) return true;
        if (now_ms() >= deadline) return false;
        /* Tasks that were mid-fork during the first pass, or a kernel still tearing
         * down: kill again rather than only wait. */
        kill_listed(cg, name);
        nap();
    }
}

void cp_cgroup_read_stats(cp_cgroups *cg, const char *name, cp_cgroup_stats *st)
{
    char path[PATH_MAX];
    unsigned long long v;
    memset(st, 0, sizeof *st);
    bool v2 = cg->version == 2;
    if (role_path(path, cg, C_MEMORY, name, v2 ? "memory.events" : "memory.oom_control") &&
        read_keyed(path, "oom_kill", &v))
        st->oom_killed = v > 0;
    if (role_path(path, cg, C_MEMORY, name, v2 ? "memory.peak" : "memory.max_usage_in_bytes") &&
        read_ull(path, &v)) {
        st->has_peak = true;
        st->peak_bytes = (size_t)v;
    }
    if (role_path(path, cg, C_PIDS, name, "pids.events") && read_keyed(path, "max", &v))
        st->pids_hit = v > 0;
    if (v2) {
        if (role_path(path, cg, C_CPUACCT, name, "cpu.stat") &&
            read_keyed(path, "usage_usec", &v)) {
            st->has_cpu = true;
            st->cpu_s = (double)v / 1e6;
        }
    } else if (role_path(path, cg, C_CPUACCT, name, "cpuacct.usage") && read_ull(path, &v)) {
        st->has_cpu = true;
        st->cpu_s = (double)v / 1e9;
    }
}

int cp_cgroup_remove(cp_cgroups *cg, const char *name)
{
    if (!cp_cgroup_is_empty(cg, name)) cp_cgroup_kill(cg, name);
    char path[PATH_MAX];
    int rc = 0;
    for (size_t h = 0; h < cg->nhier; h++) {
        if (!mkpath(path, cg, h, name, NULL)) continue;
        long long deadline = now_ms() + CP_CGROUP_EMPTY_WAIT_MS;
        /* rmdir can report EBUSY for a moment after the last task is gone. */
        while (rmdir(path) < 0 && errno == EBUSY && now_ms() < deadline)
            nap();
        struct stat sb;
        if (stat(path, &sb) == 0) rc = -1;
    }
    return rc;
}
