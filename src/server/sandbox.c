/* codepane-server: one sandboxed process. See sandbox.h for the contract and
 * shared/spec/sandbox.md §3 for the design this implements step by step:
 *
 *   server thread ──fork──▶ child: join run cgroups, nice, rlimits, fds 0-8, close the
 *                                   rest, drop to the slot uid, NO_NEW_PRIVS,
 *                                   PDEATHSIG ──execve(bwrap, empty envp)──▶
 *   bwrap (monitor, slot uid) ──▶ ns init (pid 1, seccomp) ──▶ the runner (pid 2)
 *
 * Everything the child needs (argv, fds, cgroup.procs fds, rlimit values) is prepared
 * before fork, so the child runs only async-signal-safe calls: the server is
 * multithreaded and another thread may hold the malloc lock at fork time.
 *
 * fds inside bwrap's argv: 0 /dev/null, 1 stdout, 2 stderr, 3 events (the runner's),
 * 4 bwrap's --json-status-fd, 5 the seccomp BPF, 6 the code, 7 /etc/passwd, 8
 * /etc/group, 9 the language runner. bwrap closes 4-9 before the runner starts (the
 * self-test checks that the runner sees exactly 0-3).
 *
 * Not thread-safe: one thread (the supervisor) calls spawn, kill and release; the
 * only mutable state is the run counter, the orphan flag and the language availability
 * in cp_sandbox. */
#define _GNU_SOURCE

#include "sandbox.h"

#include "cgroup.h"
#include "syscall_filter.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- limits and fixed paths (every number the sandbox uses is here) --------------- */

#define CP_SANDBOX_BWRAP "/usr/bin/bwrap"
/* Largest runner file read into memory at init. */
#define CP_SANDBOX_RUNNER_MAX (1u << 20)
/* Where the runners appear inside the sandbox. */
#define CP_SANDBOX_RUNNER_MOUNT "/opt/codepane/runners"
/* Where a kernel file appears inside the sandbox. */
#define CP_SANDBOX_KERNEL_MOUNT "/opt/codepane/kernel"
/* The directory holding the code file inside. */
#define CP_SANDBOX_CODE_DIR "/w"
/* uid/gid the runner sees (mapped to the slot uid outside; a stable identity so
 * /etc/passwd can name it). */
#define CP_SANDBOX_INNER_ID_STR "1000"
#define CP_SANDBOX_HOSTNAME     "sandbox"
/* Size of the sandbox's /dev/shm tmpfs (Python multiprocessing needs a writable one;
 * bwrap's default has no size limit). */
#define CP_SANDBOX_SHM_BYTES (16u << 20)
/* Share of the memory limit given to the JVM / V8 heap, so that a heap overflow is a
 * clean OutOfMemoryError instead of a silent cgroup OOM kill (spec finding 9). */
#define CP_SANDBOX_HEAP_PERCENT 70
/* Smallest heap flag we pass, whatever the memory limit. */
#define CP_SANDBOX_HEAP_MIN_MIB 16

/* Config validation: 0 never means "unlimited" (spec finding 15). */
#define CP_SANDBOX_MIN_MEMORY    (32u << 20)
#define CP_SANDBOX_MAX_MEMORY    (1ull << 40)
#define CP_SANDBOX_MIN_PIDS      16 /* the JVM needs about 16 tasks to start */
#define CP_SANDBOX_MAX_PIDS      65536
#define CP_SANDBOX_MIN_TMP       (1u << 20)
#define CP_SANDBOX_MAX_TMP       (1ull << 40)
#define CP_SANDBOX_MAX_CPU_QUOTA 1024.0
#define CP_SANDBOX_MAX_SLOTS     4096
/* Slot uids below this would collide with system accounts (or be root). */
#define CP_SANDBOX_MIN_UID 1000
#define CP_SANDBOX_MAX_UID 0x7fffffffu

/* rlimits (spec §3.4), applied in the child and inherited by bwrap and the runner. */
/* Per-process CPU seconds: only a backstop behind the runner's wall timeout, which is
 * the real limit (per-run timeouts go up to several minutes). */
#define CP_SANDBOX_RLIMIT_CPU_S 3600
/* RLIMIT_DATA = memory limit + this grace: a per-process backstop JITs tolerate
 * (RLIMIT_AS breaks the JVM and V8, finding 8); the memory cgroup is the real limit. */
#define CP_SANDBOX_DATA_GRACE (512ull << 20)
/* Open files: the JVM opens dozens of jars (nsjail's 32 is too low). */
#define CP_SANDBOX_RLIMIT_NOFILE 256
/* Main-thread stack. Also glibc's default thread stack size, and thread stacks count
 * against RLIMIT_DATA, so bigger values starve threaded runtimes; Java gets -Xss. */
#define CP_SANDBOX_RLIMIT_STACK (8ull << 20)
/* RLIMIT_NPROC = pids_max + this, so the pids cgroup (which reports the hit in
 * pids.events) triggers first; NPROC is the backstop where cgroups are missing. */
#define CP_SANDBOX_NPROC_EXTRA 16
/* Scheduling: keep the server responsive under load (CE uses 19). */
#define CP_SANDBOX_NICE 10
/* Under host memory pressure the sandbox dies before the server. */
#define CP_SANDBOX_OOM_SCORE_ADJ "1000"

/* How long kill / release wait for the namespace init to finish dying (the kernel
 * kills and reaps every process of the namespace first; a fork bomb takes ~30 ms). */
#define CP_SANDBOX_INIT_WAIT_MS 1000

/* waitid() on a pidfd (Linux 5.4); glibc 2.36 does not name it yet. */
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* The child reports a setup failure with this exit code after writing the reason. */
#define CP_SANDBOX_CHILD_FAIL_EXIT 127
/* Room for bwrap's argv. */
#define CP_SANDBOX_ARGV_MAX    160
#define CP_SANDBOX_ARG_NUMS    24
#define CP_SANDBOX_ARG_NUM_LEN 40

/* Self-test: wall limit for all probes together (a cold page cache makes the first
 * JVM start take seconds; a warm run of every probe takes well under 1 s), and the
 * output kept per probe. */
#define CP_SANDBOX_SELFTEST_TIMEOUT_MS 20000
#define CP_SANDBOX_SELFTEST_OUT_MAX    8192
#define CP_SANDBOX_SELFTEST_POLL_MS    50
/* Self-test jobs: the confinement probe plus one hello world per language. */
#define CP_SANDBOX_SELFTEST_JOBS 5
/* fds watched per running job: stdout, stderr, events, status, pidfd. */
#define CP_SANDBOX_SELFTEST_FDS 5

/* fd numbers as bwrap receives them. Which ones the program inside gets: 0-2 always; a
 * runner 3 (its events); a kernel 3 (requests) and 4 (events) (kernels/README.md). bwrap
 * consumes the rest. */
enum {
    FD_STDIN,
    FD_STDOUT,
    FD_STDERR,
    FD_EVENTS,  /* runner: its events (write end); kernel: its requests (read end) */
    FD_KEVENTS, /* kernel: its events (write end); closed for a runner */
    FD_STATUS,
    FD_SECCOMP,
    FD_CODE,
    FD_PASSWD,
    FD_GROUP,
    FD_RUNNER,              /* the language runner or kernel (/dev/null when there is none) */
    FD_NTARGET,             /* fds 0..10 are handed to bwrap */
    FD_ERRPIPE = FD_NTARGET /* CLOEXEC: tells the parent why setup failed */
};

/* The synthetic /etc/passwd and /etc/group: one "sandbox" user with home /tmp, so
 * getpwuid() works (Python getpass, Java user.home). */
static const char k_passwd[] = "sandbox:x:" CP_SANDBOX_INNER_ID_STR ":" CP_SANDBOX_INNER_ID_STR
                               ":sandbox:/tmp:/usr/sbin/nologin\n";
static const char k_group[] = "sandbox:x:" CP_SANDBOX_INNER_ID_STR ":\n";

/* ---- languages (spec §3.3; kernels.md §2.1, §3.4, §4.1, §5.1) ------------------- */

typedef struct {
    const char *exe;        /* interpreter; the language is off when it is missing */
    const char *runner;     /* file in runner_dir (NULL: the code runs directly) */
    const char *kernel;     /* its kernel: a file in kernel_dir, or (Java) the jar */
    const char *code_path;  /* where --ro-bind-data puts the code */
    const char *const *etc; /* extra read-only binds (same path inside; skipped if absent) */
    bool mpl_env;           /* MPLBACKEND / MPLCONFIGDIR for matplotlib */
} lang_spec;

static const char *const k_etc_python[] = {"/etc/matplotlibrc", "/etc/fonts", NULL};
static const char *const k_etc_none[] = {NULL};
/* Java: JAVA_HOME/conf links into /etc/java-17-openjdk; AWT headless wants fonts. */
static const char *const k_etc_java[] = {"/etc/java-17-openjdk", "/etc/fonts", NULL};
/* R: R_HOME/etc links to /etc/R; graphics need fontconfig and its cache. */
static const char *const k_etc_r[] = {"/etc/R", "/etc/fonts", "/var/cache/fontconfig", NULL};

static const lang_spec k_langs[] = {
    [CP_LANG_PYTHON] = {"/usr/bin/python3", "python.py", "python_kernel.py",
                        CP_SANDBOX_CODE_DIR "/main.py", k_etc_python, true},
    [CP_LANG_JAVASCRIPT] = {"/usr/bin/node", "node.cjs", "node_kernel.cjs",
                            CP_SANDBOX_CODE_DIR "/main.js", k_etc_none, false},
    [CP_LANG_JAVA] = {"/usr/bin/java", NULL, "jkernel.jar", CP_SANDBOX_CODE_DIR "/Main.java",
                      k_etc_java, false},
    [CP_LANG_R] = {"/usr/bin/Rscript", "runner.R", "r_kernel.R", CP_SANDBOX_CODE_DIR "/main.R",
                   k_etc_r, false},
};
#define CP_SANDBOX_NLANG ((int)(sizeof k_langs / sizeof *k_langs))

/* /etc pieces every language gets: the loader cache, the Debian alternatives symlinks
 * (java, BLAS/LAPACK) and the time zone. */
static const char *const k_etc_common[] = {"/etc/ld.so.cache", "/etc/alternatives",
                                           "/etc/localtime", NULL};

struct cp_sandbox {
    cp_sandbox_config cfg;
    char *runner_dir; /* owned copy of cfg.runner_dir */
    bool root;        /* per-slot uids (and cgroups) only when the server is root */
    uid_t uid;        /* without root: the server's own uid/gid */
    gid_t gid;
    int cap_last;            /* highest capability number (bounding-set drop) */
    int devnull_fd;          /* stdin of every run */
    int seccomp_fd;          /* sealed memfd with the BPF */
    int passwd_fd, group_fd; /* sealed memfds */
    /* Sealed memfds with each language's runner, read once at init: the runners reach
     * the sandbox like the code (--ro-bind-data), so no host path has to be readable by
     * the slot uids (a checkout under a 0700 directory works). -1: no runner. */
    int runner_fd[CP_SANDBOX_NLANG];
    /* The same for each language's kernel (-1: no kernel for it). */
    int kernel_fd[CP_SANDBOX_NLANG];
    cp_cgroups *cg;             /* NULL without cgroups */
    unsigned long long run_seq; /* names run cgroups uniquely */
    bool orphans_left;          /* a sweep left an orphaned init alive: sweep again */
    bool lang_ok[CP_SANDBOX_NLANG];
};

/* ---- small helpers ------------------------------------------------------------------ */

static int errf(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t errcap, const char *fmt, ...)
{
    if (err && errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sys_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int sys_pidfd_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* A sealed, read-only memfd holding data (code, passwd, group). */
static int memfd_with(const char *name, const char *data, size_t len)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) goto fail;
        off += (size_t)n;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0 ||
        lseek(fd, 0, SEEK_SET) < 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

/* bwrap reads a data fd from its current offset, and dup'd fds share one offset: give
 * each run its own open file description of a shared memfd. */
static int memfd_reopen(int memfd)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* A sealed memfd with the contents of a runner file (read as the server), or -1. */
static int runner_memfd(const char *path)
{
    FILE *f = fopen(path, "rbe");
    if (!f) return -1;
    char *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= CP_SANDBOX_RUNNER_MAX) break;
            char *more = realloc(data, cap = cap ? 2 * cap : 16384);
            if (!more) break;
            data = more;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    bool whole = feof(f) && !ferror(f);
    fclose(f);
    int fd = whole ? memfd_with("codepane-runner", data, len) : -1;
    free(data);
    return fd;
}

/* D18: kill processes a crashed server left running under the slot uids. The uids are
 * dedicated to this server (uid_base..uid_base+slots-1), so anything there is ours. */
static void sweep_slot_uids(const cp_sandbox_config *cfg)
{
    DIR *d = opendir("/proc");
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 1) continue;
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%ld/status", pid);
        FILE *f = fopen(path, "re");
        if (!f) continue;
        unsigned long uid = 0;
        bool have = false;
        while (!have && fgets(buf, sizeof buf, f))
            have = sscanf(buf, "Uid: %lu", &uid) == 1;
        fclose(f);
        if (have && uid >= cfg->uid_base && uid < (unsigned long)cfg->uid_base + cfg->slots)
            kill((pid_t)pid, SIGKILL);
    }
    closedir(d);
}

/* ---- init / free ----------------------------------------------------------------------- */

static int validate(const cp_sandbox_config *cfg, char *err, size_t errcap)
{
    if (cfg->slots == 0 || cfg->slots > CP_SANDBOX_MAX_SLOTS)
        return errf(err, errcap, "sandbox: slots must be 1..%d", CP_SANDBOX_MAX_SLOTS);
    if (cfg->uid_base < CP_SANDBOX_MIN_UID ||
        (unsigned long long)cfg->uid_base + cfg->slots - 1 > CP_SANDBOX_MAX_UID)
        return errf(err, errcap, "sandbox: uid_base must be >= %d and leave room for %u slots",
                    CP_SANDBOX_MIN_UID, cfg->slots);
    if (cfg->memory_bytes < CP_SANDBOX_MIN_MEMORY || cfg->memory_bytes > CP_SANDBOX_MAX_MEMORY)
        return errf(err, errcap, "sandbox: memory_bytes must be %u..%llu", CP_SANDBOX_MIN_MEMORY,
                    CP_SANDBOX_MAX_MEMORY);
    if (cfg->pids_max < CP_SANDBOX_MIN_PIDS || cfg->pids_max > CP_SANDBOX_MAX_PIDS)
        return errf(err, errcap, "sandbox: pids_max must be %d..%d", CP_SANDBOX_MIN_PIDS,
                    CP_SANDBOX_MAX_PIDS);
    if (cfg->tmp_bytes < CP_SANDBOX_MIN_TMP || cfg->tmp_bytes > CP_SANDBOX_MAX_TMP)
        return errf(err, errcap, "sandbox: tmp_bytes must be %u..%llu", CP_SANDBOX_MIN_TMP,
                    CP_SANDBOX_MAX_TMP);
    if (!(cfg->cpu_quota > 0 && cfg->cpu_quota <= CP_SANDBOX_MAX_CPU_QUOTA))
        return errf(err, errcap, "sandbox: cpu_quota must be in (0, %g]", CP_SANDBOX_MAX_CPU_QUOTA);
    if (!cfg->runner_dir || cfg->runner_dir[0] != '/')
        return errf(err, errcap, "sandbox: runner_dir must be an absolute path");
    return 0;
}

static int read_cap_last(void)
{
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
    int v = -1;
    if (f) {
        if (fscanf(f, "%d", &v) != 1) v = -1;
        fclose(f);
    }
    return v;
}

int cp_sandbox_init(cp_sandbox **out, const cp_sandbox_config *cfg, char *err, size_t errcap)
{
    *out = NULL;
    if (validate(cfg, err, errcap) < 0) return -1;
    cp_sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) return errf(err, errcap, "sandbox: out of memory");
    sb->cfg = *cfg;
    sb->devnull_fd = sb->seccomp_fd = sb->passwd_fd = sb->group_fd = -1;
    for (int l = 0; l < CP_SANDBOX_NLANG; l++)
        sb->runner_fd[l] = sb->kernel_fd[l] = -1;
    sb->runner_dir = strdup(cfg->runner_dir);
    sb->cfg.runner_dir = sb->runner_dir;
    if (!sb->runner_dir) {
        errf(err, errcap, "sandbox: out of memory");
        goto fail;
    }
    sb->root = geteuid() == 0;
    sb->uid = getuid();
    sb->gid = getgid();

    if (access(CP_SANDBOX_BWRAP, X_OK) < 0) {
        errf(err, errcap, "sandbox: %s: %s", CP_SANDBOX_BWRAP, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (stat(sb->runner_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        errf(err, errcap, "sandbox: runner_dir %s is not a directory", sb->runner_dir);
        goto fail;
    }
    sb->devnull_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (sb->devnull_fd < 0) {
        errf(err, errcap, "sandbox: /dev/null: %s", strerror(errno));
        goto fail;
    }
    sb->seccomp_fd = cp_syscall_filter_build(err, errcap);
    if (sb->seccomp_fd < 0) goto fail;
    sb->passwd_fd = memfd_with("codepane-passwd", k_passwd, sizeof k_passwd - 1);
    sb->group_fd = memfd_with("codepane-group", k_group, sizeof k_group - 1);
    if (sb->passwd_fd < 0 || sb->group_fd < 0) {
        errf(err, errcap, "sandbox: memfd: %s", strerror(errno));
        goto fail;
    }
    for (int l = 0; l < CP_SANDBOX_NLANG; l++) {
        const lang_spec *ls = &k_langs[l];
        if (!ls->exe || access(ls->exe, X_OK) < 0) continue;
        if (ls->runner) {
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", sb->runner_dir, ls->runner);
            if ((sb->runner_fd[l] = runner_memfd(path)) < 0) continue;
        }
        sb->lang_ok[l] = true;
        /* A missing kernel file only means that language runs one process per run. */
        if (cfg->kernel_dir && ls->kernel) {
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", cfg->kernel_dir, ls->kernel);
            sb->kernel_fd[l] = runner_memfd(path);
        }
    }
    /* bwrap's monitor exits as soon as the runner does, while the namespace init is
     * still tearing down; the orphaned init would become a zombie of the host's pid 1
     * (still listed under the slot uid). As a subreaper the server inherits it and
     * cp_sandbox_release reaps it. A process-wide attribute, set once; harmless to
     * the rest of the server, which starts no other processes. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        errf(err, errcap, "sandbox: PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
        goto fail;
    }
    if (sb->root) {
        sb->cap_last = read_cap_last();
        if (sb->cap_last < 0) {
            errf(err, errcap, "sandbox: cannot read /proc/sys/kernel/cap_last_cap");
            goto fail;
        }
        sweep_slot_uids(cfg);
        char parent[64];
        snprintf(parent, sizeof parent, "codepane-%u", cfg->uid_base);
        char note[256] = "";
        if (cp_cgroups_open(&sb->cg, parent, note, sizeof note) < 0) {
            errf(err, errcap, "sandbox: %s", note);
            goto fail;
        }
    }
    *out = sb;
    return 0;
fail:
    cp_sandbox_free(sb);
    return -1;
}

void cp_sandbox_free(cp_sandbox *sb)
{
    if (!sb) return;
    cp_cgroups_close(sb->cg);
    close_fd(&sb->devnull_fd);
    close_fd(&sb->seccomp_fd);
    close_fd(&sb->passwd_fd);
    for (int l = 0; l < CP_SANDBOX_NLANG; l++) {
        close_fd(&sb->runner_fd[l]);
        close_fd(&sb->kernel_fd[l]);
    }
    close_fd(&sb->group_fd);
    free(sb->runner_dir);
    free(sb);
}

bool cp_sandbox_has_cgroups(const cp_sandbox *sb)
{
    return sb->cg != NULL;
}

bool cp_sandbox_lang_available(const cp_sandbox *sb, cp_lang lang)
{
    return (int)lang > 0 && (int)lang < CP_SANDBOX_NLANG && sb->lang_ok[lang];
}

/* ---- bwrap's argv ------------------------------------------------------------------ */

typedef struct {
    const char *v[CP_SANDBOX_ARGV_MAX];
    size_t n;
    char nums[CP_SANDBOX_ARG_NUMS][CP_SANDBOX_ARG_NUM_LEN];
    size_t nnums;
    bool overflow;
} argv_b;

static void arg(argv_b *a, const char *s)
{
    if (a->n + 1 >= CP_SANDBOX_ARGV_MAX) {
        a->overflow = true;
        return;
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static void args2(argv_b *a, const char *x, const char *y)
{
    arg(a, x);
    arg(a, y);
}

static void args3(argv_b *a, const char *x, const char *y, const char *z)
{
    arg(a, x);
    arg(a, y);
    arg(a, z);
}

/* A formatted argument kept in the builder's own storage. */
static const char *argf(argv_b *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *argf(argv_b *a, const char *fmt, ...)
{
    if (a->nnums >= CP_SANDBOX_ARG_NUMS) {
        a->overflow = true;
        return "";
    }
    char *s = a->nums[a->nnums++];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s, CP_SANDBOX_ARG_NUM_LEN, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= CP_SANDBOX_ARG_NUM_LEN) a->overflow = true;
    return s;
}

static unsigned heap_mib(const cp_sandbox *sb)
{
    unsigned long long mib = (unsigned long long)sb->cfg.memory_bytes >> 20;
    unsigned long long heap = mib * CP_SANDBOX_HEAP_PERCENT / 100;
    return heap < CP_SANDBOX_HEAP_MIN_MIB ? CP_SANDBOX_HEAP_MIN_MIB : (unsigned)heap;
}

/* What a sandbox runs: a runner on one snippet, the interpreter directly on the code
 * (self-test only), or a kernel (no code; cells arrive on its request pipe). */
typedef enum { MODE_RUN, MODE_DIRECT, MODE_KERNEL } spawn_mode;

/* The JVM's flags, for the one-process launcher and the kernel alike: spec §3.3 (SerialGC,
 * C1 only, one CPU: fewer threads; no perf data in /tmp), a heap below the cgroup limit,
 * UTF-8 everywhere. */
static void java_flags(argv_b *a, const cp_sandbox *sb)
{
    args2(a, k_langs[CP_LANG_JAVA].exe, argf(a, "-Xmx%um", heap_mib(sb)));
    args3(a, "-Xss16m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1");
    /* The heap may shrink back (ergonomics would make the initial size 1/64 of the host's
     * memory, capped at -Xmx: no shrinking at all), and a full collection gives back
     * what it freed at once: a kernel that filled its heap once does not stay near the
     * memory limit (JKernel collects after such a cell). */
    args2(a, "-Xms32m", "-XX:-ShrinkHeapInSteps");
    args3(a, "-XX:-UsePerfData", "-XX:+DisableAttachMechanism", "-XX:ActiveProcessorCount=1");
    args3(a, "-Xshare:auto", "-Dfile.encoding=UTF-8", "-Dstdout.encoding=UTF-8");
    arg(a, "-Dstderr.encoding=UTF-8");
}

/* A kernel's command line (kernels/README.md). */
static void kernel_command(argv_b *a, const cp_sandbox *sb, cp_lang lang)
{
    const lang_spec *ls = &k_langs[lang];
    switch (lang) {
    case CP_LANG_PYTHON:
        /* No -u: the kernel reports its own output as events. */
        args3(a, ls->exe, "-I", "-B");
        arg(a, CP_SANDBOX_KERNEL_MOUNT "/python_kernel.py");
        break;
    case CP_LANG_JAVASCRIPT:
        /* Without the async-hooks checks, terminating a cell inside a callback does not
         * abort Node (kernels.md §3.3). */
        args3(a, ls->exe, argf(a, "--max-old-space-size=%u", heap_mib(sb)),
              "--no-force-async-hooks-checks");
        arg(a, CP_SANDBOX_KERNEL_MOUNT "/node_kernel.cjs");
        break;
    case CP_LANG_JAVA:
        /* The kernel wraps fds 3/4 in FileDescriptors by reflection (kernels.md §4.1). */
        java_flags(a, sb);
        args2(a, "--add-opens", "java.base/java.io=ALL-UNNAMED");
        args3(a, "-cp", CP_SANDBOX_KERNEL_MOUNT "/jkernel.jar", "codepane.kernel.JKernel");
        break;
    case CP_LANG_R:
        args2(a, ls->exe, "--vanilla");
        arg(a, CP_SANDBOX_KERNEL_MOUNT "/r_kernel.R");
        break;
    default:
        a->overflow = true;
        break;
    }
}

/* The command inside: the fixed per-language line, or (direct, self-test only) the
 * interpreter on the code file itself, with no runner in between. */
static void lang_command(argv_b *a, const cp_sandbox *sb, cp_lang lang, bool direct)
{
    const lang_spec *ls = &k_langs[lang];
    switch (lang) {
    case CP_LANG_PYTHON:
        /* -I: ignore PYTHON* and user site; -u: pipes are block-buffered otherwise;
         * -B: the file system is read-only. */
        args3(a, ls->exe, "-I", "-u");
        arg(a, "-B");
        arg(a, direct ? ls->code_path : CP_SANDBOX_RUNNER_MOUNT "/python.py");
        break;
    case CP_LANG_JAVASCRIPT:
        /* V8 sizes its heap from host RAM and cannot see the cgroup (finding 9). */
        args2(a, ls->exe, argf(a, "--max-old-space-size=%u", heap_mib(sb)));
        arg(a, direct ? ls->code_path : CP_SANDBOX_RUNNER_MOUNT "/node.cjs");
        break;
    case CP_LANG_JAVA:
        /* The single-file source launcher compiles Main.java in memory. */
        java_flags(a, sb);
        arg(a, ls->code_path);
        break;
    case CP_LANG_R:
        args2(a, ls->exe, "--vanilla");
        arg(a, direct ? ls->code_path : CP_SANDBOX_RUNNER_MOUNT "/runner.R");
        break;
    default:
        a->overflow = true;
        break;
    }
}

/* Spec §3.2, in its order; the mount operations end with --remount-ro /. */
static void build_argv(argv_b *a, const cp_sandbox *sb, cp_lang lang, spawn_mode mode)
{
    bool direct = mode == MODE_DIRECT, kernel = mode == MODE_KERNEL;
    const lang_spec *ls = &k_langs[lang];
    arg(a, CP_SANDBOX_BWRAP);
    /* Namespaces and identity. --disable-userns needs an explicit --unshare-user. */
    args3(a, "--unshare-all", "--unshare-user", "--disable-userns");
    args2(a, "--uid", CP_SANDBOX_INNER_ID_STR);
    args2(a, "--gid", CP_SANDBOX_INNER_ID_STR);
    args2(a, "--hostname", CP_SANDBOX_HOSTNAME);
    /* Lifetime: orphans die with the ns init; no controlling tty (TIOCSTI). */
    args2(a, "--die-with-parent", "--new-session");
    args2(a, "--json-status-fd", argf(a, "%d", FD_STATUS));
    /* Environment (bwrap itself was exec'd with an empty one, finding 2). */
    arg(a, "--clearenv");
    args3(a, "--setenv", "PATH", "/usr/bin:/bin");
    args3(a, "--setenv", "HOME", "/tmp");
    args3(a, "--setenv", "TMPDIR", "/tmp");
    args3(a, "--setenv", "LANG", "C.UTF-8");
    args3(a, "--setenv", "LC_ALL", "C.UTF-8");
    if (ls->mpl_env) {
        args3(a, "--setenv", "MPLBACKEND", "Agg");
        args3(a, "--setenv", "MPLCONFIGDIR", "/tmp/.mpl");
    }
    args2(a, "--chdir", "/tmp");
    /* File system: read-only /usr (merged-/usr symlinks), minimal /etc. */
    args3(a, "--ro-bind", "/usr", "/usr");
    args3(a, "--symlink", "usr/bin", "/bin");
    args3(a, "--symlink", "usr/sbin", "/sbin");
    args3(a, "--symlink", "usr/lib", "/lib");
    args3(a, "--symlink", "usr/lib64", "/lib64");
    args2(a, "--dir", "/etc");
    for (const char *const *p = k_etc_common; *p; p++)
        args3(a, "--ro-bind-try", *p, *p);
    for (const char *const *p = ls->etc; *p; p++)
        args3(a, "--ro-bind-try", *p, *p);
    args3(a, "--ro-bind-data", argf(a, "%d", FD_PASSWD), "/etc/passwd");
    args3(a, "--ro-bind-data", argf(a, "%d", FD_GROUP), "/etc/group");
    args2(a, "--proc", "/proc");
    /* /dev: the usual nodes, a sized /dev/shm, then /dev itself read-only. */
    args2(a, "--dev", "/dev");
    args2(a, "--size", argf(a, "%u", CP_SANDBOX_SHM_BYTES));
    args2(a, "--tmpfs", "/dev/shm");
    args2(a, "--remount-ro", "/dev");
    /* /tmp: the only writable place; its size is the disk quota. */
    args2(a, "--size", argf(a, "%zu", sb->cfg.tmp_bytes));
    args2(a, "--perms", "1777");
    args2(a, "--tmpfs", "/tmp");
    if (kernel) {
        args2(a, "--dir", CP_SANDBOX_KERNEL_MOUNT);
        args3(a, "--ro-bind-data", argf(a, "%d", FD_RUNNER),
              argf(a, "%s/%s", CP_SANDBOX_KERNEL_MOUNT, ls->kernel));
    } else if (!direct && ls->runner) {
        args2(a, "--dir", CP_SANDBOX_RUNNER_MOUNT);
        args3(a, "--ro-bind-data", argf(a, "%d", FD_RUNNER),
              argf(a, "%s/%s", CP_SANDBOX_RUNNER_MOUNT, ls->runner));
    }
    /* The code: copied by bwrap from an fd, read-only, no host file to race on. A kernel
     * has none: its cells arrive on its request pipe. */
    if (!kernel) {
        args2(a, "--dir", CP_SANDBOX_CODE_DIR);
        args3(a, "--ro-bind-data", argf(a, "%d", FD_CODE), ls->code_path);
    }
    args2(a, "--seccomp", argf(a, "%d", FD_SECCOMP));
    /* Last mount op: bwrap's root tmpfs is otherwise writable and unbounded. */
    args2(a, "--remount-ro", "/");
    arg(a, "--");
    if (kernel)
        kernel_command(a, sb, lang);
    else
        lang_command(a, sb, lang, direct);
}

/* ---- the child (async-signal-safe only) --------------------------------------------- */

enum child_step {
    STEP_CGROUP = 1,
    STEP_NICE,
    STEP_OOM_ADJ,
    STEP_FDS,
    STEP_RLIMIT,
    STEP_CHDIR,
    STEP_CAPBSET,
    STEP_SETGROUPS,
    STEP_SETGID,
    STEP_SETUID,
    STEP_REGAIN,
    STEP_NNP,
    STEP_PDEATHSIG,
    STEP_EXEC,
};

static const char *step_name(int step)
{
    static const char *const names[] = {
        [STEP_CGROUP] = "joining the run cgroup",
        [STEP_NICE] = "setpriority",
        [STEP_OOM_ADJ] = "oom_score_adj",
        [STEP_FDS] = "fd setup",
        [STEP_RLIMIT] = "setrlimit",
        [STEP_CHDIR] = "chdir",
        [STEP_CAPBSET] = "dropping the bounding set",
        [STEP_SETGROUPS] = "setgroups",
        [STEP_SETGID] = "setresgid",
        [STEP_SETUID] = "setresuid",
        [STEP_REGAIN] = "uid 0 could be regained",
        [STEP_NNP] = "PR_SET_NO_NEW_PRIVS",
        [STEP_PDEATHSIG] = "PR_SET_PDEATHSIG",
        [STEP_EXEC] = "execve " CP_SANDBOX_BWRAP,
    };
    return step > 0 && step < (int)(sizeof names / sizeof *names) && names[step] ? names[step]
                                                                                 : "setup";
}

struct child_report {
    int step;
    int err;
};

/* Room for the rlimits fill_rlimits sets. */
#define CP_SANDBOX_RLIMITS_MAX 16

typedef struct {
    char *const *argv;
    int src[FD_NTARGET]; /* what becomes fd 0..10 */
    unsigned unused;     /* bit per fd that is a placeholder nobody consumes: closed */
    int err_w;           /* the report pipe */
    int procs[CP_CGROUP_MAX_HIER];
    size_t nprocs;
    bool drop_uid;
    uid_t uid;
    gid_t gid;
    int cap_last;
    int rl_res[CP_SANDBOX_RLIMITS_MAX];
    struct rlimit rl[CP_SANDBOX_RLIMITS_MAX];
    size_t nrl;
    pid_t parent;
} child_ctx;

static _Noreturn void child_fail(int fd, int step)
{
    struct child_report r = {step, errno};
    ssize_t n = write(fd, &r, sizeof r);
    (void)n;
    _exit(CP_SANDBOX_CHILD_FAIL_EXIT);
}

static _Noreturn void run_child(const child_ctx *c)
{
    int report = c->err_w;
    /* Signals: the parent blocked all of them around fork; give bwrap default
     * dispositions (ignored ones would survive exec) and unblock just before exec. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL); /* EINVAL for libc-reserved ones */

    /* Join the run cgroups before anything can fork: bwrap, its init and the runner
     * are all accounted and killed together. */
    for (size_t i = 0; i < c->nprocs; i++)
        if (write(c->procs[i], "0", 1) != 1) child_fail(report, STEP_CGROUP);

    if (setpriority(PRIO_PROCESS, 0, CP_SANDBOX_NICE) < 0) child_fail(report, STEP_NICE);
    int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (oom < 0 || write(oom, CP_SANDBOX_OOM_SCORE_ADJ, sizeof CP_SANDBOX_OOM_SCORE_ADJ - 1) < 0)
        child_fail(report, STEP_OOM_ADJ);
    close(oom);

    /* fds: lift every source above the target range first (a source may sit on a
     * target number), then dup2 down (which clears CLOEXEC), then close the rest. */
    int tmp[FD_NTARGET];
    for (int i = 0; i < FD_NTARGET; i++) {
        tmp[i] = fcntl(c->src[i], F_DUPFD_CLOEXEC, FD_ERRPIPE + 1);
        if (tmp[i] < 0) child_fail(report, STEP_FDS);
    }
    if (dup3(report, FD_ERRPIPE, O_CLOEXEC) < 0) child_fail(report, STEP_FDS);
    report = FD_ERRPIPE;
    for (int i = 0; i < FD_NTARGET; i++)
        if (dup2(tmp[i], i) < 0) child_fail(report, STEP_FDS);
    if (syscall(SYS_close_range, FD_ERRPIPE + 1, ~0U, 0) < 0) child_fail(report, STEP_FDS);
    for (int i = 0; i < FD_NTARGET; i++)
        if (c->unused & (1u << i)) close(i);

    for (size_t i = 0; i < c->nrl; i++)
        if (setrlimit(c->rl_res[i], &c->rl[i]) < 0) child_fail(report, STEP_RLIMIT);
    if (chdir("/") < 0) child_fail(report, STEP_CHDIR);
    umask(022);

    if (c->drop_uid) {
        /* Never run bwrap as host root (finding 1): drop the bounding set while we
         * still may, then every uid and gid; raw syscalls, since glibc's set*id
         * wrappers broadcast to threads the child does not have. */
        for (int cap = 0; cap <= c->cap_last; cap++)
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                child_fail(report, STEP_CAPBSET);
        if (syscall(SYS_setgroups, 0, NULL) < 0) child_fail(report, STEP_SETGROUPS);
        if (syscall(SYS_setresgid, c->gid, c->gid, c->gid) < 0) child_fail(report, STEP_SETGID);
        if (syscall(SYS_setresuid, c->uid, c->uid, c->uid) < 0) child_fail(report, STEP_SETUID);
        if (syscall(SYS_setresuid, 0, 0, 0) == 0 || syscall(SYS_setresgid, 0, 0, 0) == 0) {
            errno = EPERM;
            child_fail(report, STEP_REGAIN);
        }
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail(report, STEP_NNP);
    /* After the uid change (which clears it): die with the spawning thread. bwrap's
     * --die-with-parent does the same for its own children. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) child_fail(report, STEP_PDEATHSIG);
    if (getppid() != c->parent) _exit(CP_SANDBOX_CHILD_FAIL_EXIT); /* parent already gone */

    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char *const empty_env[] = {NULL};
    execve(CP_SANDBOX_BWRAP, c->argv, empty_env);
    child_fail(report, STEP_EXEC);
}

/* ---- spawn -------------------------------------------------------------------------- */

static void set_rlimit(child_ctx *c, int res, rlim_t soft, rlim_t hard)
{
    if (c->nrl >= CP_SANDBOX_RLIMITS_MAX) return; /* cannot happen: fill_rlimits sets 11 */
    c->rl_res[c->nrl] = res;
    c->rl[c->nrl].rlim_cur = soft;
    c->rl[c->nrl].rlim_max = hard;
    c->nrl++;
}

/* Spec §3.4. RLIMIT_AS stays as inherited: it breaks the JVM and V8 at any useful
 * value, and WebAssembly reserves several GiB of address space per memory. */
static void fill_rlimits(child_ctx *c, const cp_sandbox *sb)
{
    const cp_sandbox_config *cfg = &sb->cfg;
    set_rlimit(c, RLIMIT_CPU, CP_SANDBOX_RLIMIT_CPU_S, CP_SANDBOX_RLIMIT_CPU_S + 1);
    rlim_t data = (rlim_t)cfg->memory_bytes + CP_SANDBOX_DATA_GRACE;
    set_rlimit(c, RLIMIT_DATA, data, data);
    set_rlimit(c, RLIMIT_FSIZE, cfg->tmp_bytes, cfg->tmp_bytes); /* pipes are not covered */
    set_rlimit(c, RLIMIT_NOFILE, CP_SANDBOX_RLIMIT_NOFILE, CP_SANDBOX_RLIMIT_NOFILE);
    /* NPROC counts every process of the real uid host-wide: right for a dedicated slot
     * uid, wrong for the server's own uid (it would count the server's processes). */
    if (sb->root) {
        rlim_t nproc = (rlim_t)cfg->pids_max + CP_SANDBOX_NPROC_EXTRA;
        set_rlimit(c, RLIMIT_NPROC, nproc, nproc);
    }
    set_rlimit(c, RLIMIT_STACK, CP_SANDBOX_RLIMIT_STACK, CP_SANDBOX_RLIMIT_STACK);
    set_rlimit(c, RLIMIT_CORE, 0, 0);
    set_rlimit(c, RLIMIT_MEMLOCK, 0, 0);
    set_rlimit(c, RLIMIT_MSGQUEUE, 0, 0);
    set_rlimit(c, RLIMIT_RTPRIO, 0, 0);
    set_rlimit(c, RLIMIT_NICE, 0, 0);
}

static void proc_reset(cp_proc *p)
{
    memset(p, 0, sizeof *p);
    p->pidfd = p->init_pidfd = p->out_fd = p->err_fd = p->ev_fd = p->status_fd = p->req_fd = -1;
}

static void proc_close(cp_proc *p)
{
    close_fd(&p->pidfd);
    close_fd(&p->init_pidfd);
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
    close_fd(&p->ev_fd);
    close_fd(&p->req_fd);
    close_fd(&p->status_fd);
}

/* A pipe between the server and a sandbox: the server's end (*ours) non-blocking, the
 * sandbox's end (*theirs) owned by the slot uid, since Java and R reopen /proc/self/fd/N,
 * which a root-owned pipe refuses (kernels.md §1.3). `inward`: the sandbox reads it (a
 * kernel's requests); otherwise the sandbox writes it. */
static int sandbox_pipe(const cp_sandbox *sb, uid_t uid, gid_t gid, bool inward, int *ours,
                        int *theirs)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return -1;
    int o = inward ? p[1] : p[0], t = inward ? p[0] : p[1];
    if (fcntl(o, F_SETFL, O_NONBLOCK) < 0 || (sb->root && fchown(t, uid, gid) < 0)) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        errno = e;
        return -1;
    }
    *ours = o;
    *theirs = t;
    return 0;
}

static int spawn_impl(cp_sandbox *sb, cp_lang lang, const char *code, size_t code_len,
                      unsigned slot, spawn_mode mode, cp_proc *proc, char *err, size_t errcap)
{
    bool kernel = mode == MODE_KERNEL;
    proc_reset(proc);
    if (slot >= sb->cfg.slots) return errf(err, errcap, "sandbox: slot %u out of range", slot);
    if ((int)lang <= 0 || (int)lang >= CP_SANDBOX_NLANG)
        return errf(err, errcap, "sandbox: unknown language");
    if (!sb->lang_ok[lang])
        return errf(err, errcap, "sandbox: %s is not available on this server", cp_lang_name(lang));
    if (kernel && sb->kernel_fd[lang] < 0)
        return errf(err, errcap, "sandbox: no %s kernel on this server", cp_lang_name(lang));
    proc->slot = slot;
    uid_t uid = sb->root ? (uid_t)(sb->cfg.uid_base + slot) : sb->uid;
    gid_t gid = sb->root ? (gid_t)(sb->cfg.uid_base + slot) : sb->gid;

    argv_b a;
    memset(&a, 0, sizeof a);
    build_argv(&a, sb, lang, mode);
    if (a.overflow) return errf(err, errcap, "sandbox: bwrap argv too long");

    child_ctx c;
    memset(&c, 0, sizeof c);
    c.argv = (char *const *)a.v;
    c.drop_uid = sb->root;
    c.uid = uid;
    c.gid = gid;
    c.cap_last = sb->cap_last;
    c.parent = getpid();
    fill_rlimits(&c, sb);
    for (int i = 0; i < FD_NTARGET; i++)
        c.src[i] = -1;
    int child_side[FD_NTARGET]; /* ours to close */
    for (int i = 0; i < FD_NTARGET; i++)
        child_side[i] = -1;
    int report_r = -1, report_w = -1;
    int rc = -1;

    if (sb->cg) {
        snprintf(proc->cgroup, sizeof proc->cgroup, "run-%u-%llu", slot, ++sb->run_seq);
        cp_cgroup_limits lim = {sb->cfg.memory_bytes, sb->cfg.pids_max, sb->cfg.cpu_quota};
        if (cp_cgroup_create(sb->cg, proc->cgroup, &lim, c.procs, &c.nprocs, err, errcap) < 0) {
            proc->cgroup[0] = '\0';
            return -1;
        }
    }
    /* A runner writes events on fd 3; a kernel reads requests there and writes events
     * on fd 4. Placeholders (/dev/null) fill the numbers a mode does not use; the child
     * closes them after the dup2s. */
    int events_ok = kernel
                        ? sandbox_pipe(sb, uid, gid, true, &proc->req_fd, &child_side[FD_EVENTS])
                        : sandbox_pipe(sb, uid, gid, false, &proc->ev_fd, &child_side[FD_EVENTS]);
    int kevents_ok =
        kernel ? sandbox_pipe(sb, uid, gid, false, &proc->ev_fd, &child_side[FD_KEVENTS]) : 0;
    if (sandbox_pipe(sb, uid, gid, false, &proc->out_fd, &child_side[FD_STDOUT]) < 0 ||
        events_ok < 0 || kevents_ok < 0 ||
        sandbox_pipe(sb, uid, gid, false, &proc->status_fd, &child_side[FD_STATUS]) < 0) {
        errf(err, errcap, "sandbox: pipe: %s", strerror(errno));
        goto out;
    }
    if (sandbox_pipe(sb, uid, gid, false, &proc->err_fd, &child_side[FD_STDERR]) < 0) {
        errf(err, errcap, "sandbox: pipe: %s", strerror(errno));
        goto out;
    }
    child_side[FD_SECCOMP] = memfd_reopen(sb->seccomp_fd);
    child_side[FD_PASSWD] = memfd_reopen(sb->passwd_fd);
    child_side[FD_GROUP] = memfd_reopen(sb->group_fd);
    int file_fd = kernel ? sb->kernel_fd[lang] : mode == MODE_DIRECT ? -1 : sb->runner_fd[lang];
    child_side[FD_CODE] = kernel ? fcntl(sb->devnull_fd, F_DUPFD_CLOEXEC, 0)
                                 : memfd_with("codepane-code", code, code_len);
    child_side[FD_RUNNER] =
        file_fd < 0 ? fcntl(sb->devnull_fd, F_DUPFD_CLOEXEC, 0) : memfd_reopen(file_fd);
    if (!kernel) child_side[FD_KEVENTS] = fcntl(sb->devnull_fd, F_DUPFD_CLOEXEC, 0);
    c.unused = (file_fd < 0 ? 1u << FD_RUNNER : 0) | (kernel ? 1u << FD_CODE : 1u << FD_KEVENTS);
    if (child_side[FD_SECCOMP] < 0 || child_side[FD_PASSWD] < 0 || child_side[FD_GROUP] < 0 ||
        child_side[FD_CODE] < 0 || child_side[FD_RUNNER] < 0 || child_side[FD_KEVENTS] < 0) {
        errf(err, errcap, "sandbox: memfd: %s", strerror(errno));
        goto out;
    }
    int rp[2];
    if (pipe2(rp, O_CLOEXEC) < 0) {
        errf(err, errcap, "sandbox: pipe: %s", strerror(errno));
        goto out;
    }
    report_r = rp[0];
    report_w = rp[1];
    c.src[FD_STDIN] = sb->devnull_fd;
    for (int i = 1; i < FD_NTARGET; i++)
        c.src[i] = child_side[i];
    c.err_w = report_w;

    /* No signal handler of the server may run in the child between fork and exec. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) run_child(&c);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        errf(err, errcap, "sandbox: fork: %s", strerror(fork_errno));
        goto out;
    }
    close_fd(&report_w);
    /* EOF means the exec happened (the report pipe is CLOEXEC); a record means the
     * child stopped at a setup step. */
    struct child_report r;
    ssize_t n;
    do
        n = read(report_r, &r, sizeof r);
    while (n < 0 && errno == EINTR);
    if (n != 0) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (n == (ssize_t)sizeof r)
            errf(err, errcap, "sandbox: %s failed: %s", step_name(r.step), strerror(r.err));
        else
            errf(err, errcap, "sandbox: child setup failed");
        goto out;
    }
    proc->pid = pid;
    proc->pidfd = sys_pidfd_open(pid);
    if (proc->pidfd < 0) {
        /* Our unreaped child: it cannot vanish, so this is resource exhaustion. */
        errf(err, errcap, "sandbox: pidfd_open: %s", strerror(errno));
        kill(pid, SIGKILL);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        proc->pid = 0;
        goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < FD_NTARGET; i++)
        close_fd(&child_side[i]);
    for (size_t i = 0; i < c.nprocs; i++)
        close(c.procs[i]);
    close_fd(&report_r);
    close_fd(&report_w);
    if (rc < 0) {
        if (proc->cgroup[0]) cp_cgroup_remove(sb->cg, proc->cgroup);
        proc_close(proc);
        unsigned s = proc->slot;
        proc_reset(proc);
        proc->slot = s;
    }
    return rc;
}

int cp_sandbox_spawn(cp_sandbox *sb, cp_lang lang, const char *code, size_t code_len, unsigned slot,
                     cp_proc *proc, char *err, size_t errcap)
{
    return spawn_impl(sb, lang, code, code_len, slot, MODE_RUN, proc, err, errcap);
}

int cp_sandbox_spawn_kernel(cp_sandbox *sb, cp_lang lang, unsigned slot, cp_proc *proc, char *err,
                            size_t errcap)
{
    return spawn_impl(sb, lang, NULL, 0, slot, MODE_KERNEL, proc, err, errcap);
}

bool cp_sandbox_kernel_available(const cp_sandbox *sb, cp_lang lang)
{
    return (int)lang > 0 && (int)lang < CP_SANDBOX_NLANG && sb->lang_ok[lang] &&
           sb->kernel_fd[lang] >= 0;
}

int cp_sandbox_signal_main(cp_proc *proc, int sig)
{
    if (proc->init_pid <= 0) return -1;
    char path[96], buf[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)proc->init_pid,
             (int)proc->init_pid);
    if (cp_read_small(path, buf, sizeof buf) <= 0) return -1;
    long pid = strtol(buf, NULL, 10);
    if (pid <= 0) return -1;
    /* Through a pidfd: if the kernel died and its pid was reused meanwhile, the open
     * finds another process's pid only in the instant between the read and here. */
    int pfd = sys_pidfd_open((pid_t)pid);
    if (pfd < 0) return -1;
    int rc = sys_pidfd_signal(pfd, sig);
    close(pfd);
    return rc;
}

/* ---- status, kill, release ------------------------------------------------------------ */

/* The parent pid of `pid` from /proc/<pid>/stat, or -1. */
static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (cp_read_small(path, buf, sizeof buf) <= 0) return -1;
    char *rp = strrchr(buf, ')'); /* the command name may contain anything */
    int ppid;
    if (!rp || sscanf(rp + 1, " %*c %d", &ppid) != 1) return -1;
    return ppid;
}

/* bwrap's status lines are written whole ({ "child-pid": N, ... } right after the
 * clone, { "exit-code": N } at the end); each fits one atomic pipe write. */
int cp_sandbox_read_status(cp_proc *proc)
{
    if (proc->status_fd < 0) return -1;
    char buf[1024];
    for (;;) {
        ssize_t n = read(proc->status_fd, buf, sizeof buf - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (n <= 0) return -1;
        buf[n] = '\0';
        const char *k = proc->init_pid ? NULL : strstr(buf, "\"child-pid\"");
        if (!k) continue;
        k = strchr(k + strlen("\"child-pid\""), ':');
        long v = k ? strtol(k + 1, NULL, 10) : 0;
        if (v <= 1) continue;
        proc->init_pid = (pid_t)v;
        /* Hold the init through a pidfd, so a kill can never hit a recycled pid: if
         * the process we opened is a child of our bwrap (or, once bwrap is gone, ours:
         * we are a subreaper), it is the init. */
        int fd = sys_pidfd_open(proc->init_pid);
        pid_t ppid = fd >= 0 ? parent_of(proc->init_pid) : -1;
        if (fd >= 0 && (ppid == proc->pid || ppid == getpid()))
            proc->init_pidfd = fd;
        else if (fd >= 0)
            close(fd);
    }
}

/* Wait until fd is readable (a pidfd: the process exited); false on timeout. */
static bool wait_readable(int fd, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        long long left = deadline - now_ms();
        int n = poll(&p, 1, left > 0 ? (int)left : 0);
        if (n > 0) return true;
        if (n == 0 || (n < 0 && errno != EINTR)) return false;
    }
}

/* The init is our child once bwrap has exited (subreaper): reap it. If bwrap reaped
 * it first, waitid says ECHILD, which is just as good. Returns true when the init is
 * accounted for; false when it was never identified (no pidfd) or is still alive. */
static bool reap_init(cp_proc *proc)
{
    if (proc->init_pid == 0 && proc->status_fd >= 0) cp_sandbox_read_status(proc);
    if (proc->init_pidfd < 0) return false;
    if (!wait_readable(proc->init_pidfd, CP_SANDBOX_INIT_WAIT_MS)) {
        sys_pidfd_signal(proc->init_pidfd, SIGKILL);
        wait_readable(proc->init_pidfd, CP_SANDBOX_INIT_WAIT_MS);
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc;
    while ((rc = waitid((idtype_t)P_PIDFD, (id_t)proc->init_pidfd, &si, WEXITED | WNOHANG)) < 0 &&
           errno == EINTR) {
    }
    return rc < 0 || si.si_pid != 0;
}

/* Whether our child `pid`, held by pidfd `fd`, is the namespace init of one of our
 * sandboxes: running under a sandbox uid (root: any slot uid; else our own) and pid 1
 * of a pid namespace of its own (NSpid ends in 1). bwrap monitors, our other children,
 * live in the host's namespace and never match, so their exit status stays for
 * cp_sandbox_release; a process some other part of the program forked and waits for
 * does not match either (no new pid namespace, not a slot uid). */
static bool is_sandbox_init(const cp_sandbox *sb, pid_t pid, int fd)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    int sfd = open(path, O_RDONLY | O_CLOEXEC);
    if (sfd < 0) return false;
    ssize_t n = read(sfd, buf, sizeof buf - 1);
    close(sfd);
    if (n <= 0) return false;
    buf[n] = '\0';
    const char *p = strstr(buf, "\nPPid:");
    if (!p || strtol(p + 6, NULL, 10) != (long)getpid()) return false;
    p = strstr(buf, "\nUid:");
    if (!p) return false;
    unsigned long uid = strtoul(p + 5, NULL, 10);
    bool uid_ok =
        sb->root ? uid >= sb->cfg.uid_base && uid < (unsigned long)sb->cfg.uid_base + sb->cfg.slots
                 : uid == (unsigned long)sb->uid;
    if (!uid_ok) return false;
    p = strstr(buf, "\nNSpid:");
    if (!p) return false;
    const char *q = p + 7;
    long last = 0;
    int levels = 0;
    for (;;) {
        char *end;
        long v = strtol(q, &end, 10);
        if (end == q) break;
        last = v;
        levels++;
        q = end;
        if (*q == '\n' || *q == '\0') break;
    }
    if (levels < 2 || last != 1) return false;
    /* Still the process we opened (an unreaped child keeps its pid): what we read was
     * about it, not about a reused pid. */
    return sys_pidfd_signal(fd, 0) == 0;
}

/* Reap the namespace inits orphaned to us that no cp_proc knows about. bwrap writes
 * the init's pid to the status fd only after clone(): a bwrap killed in between (a
 * cancel right after spawn: the cgroup kill takes the monitor and the init together)
 * leaves an init we cannot name, reparented to us (subreaper), dead or blocked for
 * ever on bwrap's eventfd. We find it as our child in /proc, kill it through a pidfd
 * and reap that pidfd: waitid(P_ALL) is not used, it would also reap the bwrap
 * monitors of other runs (their status is read by cp_sandbox_release). Returns true
 * when nothing was left alive. */
static bool reap_orphaned_inits(const cp_sandbox *sb)
{
    DIR *d = opendir("/proc");
    if (!d) return false;
    pid_t me = getpid();
    bool all = true;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (*end || v <= 1 || v == (long)me) continue;
        pid_t pid = (pid_t)v;
        if (parent_of(pid) != me) continue;
        int fd = sys_pidfd_open(pid);
        if (fd < 0) continue;
        if (is_sandbox_init(sb, pid, fd)) {
            sys_pidfd_signal(fd, SIGKILL); /* the kernel then empties its namespace */
            wait_readable(fd, CP_SANDBOX_INIT_WAIT_MS);
            siginfo_t si;
            memset(&si, 0, sizeof si);
            int rc;
            while ((rc = waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG)) < 0 &&
                   errno == EINTR) {
            }
            if (rc == 0 && si.si_pid == 0) all = false;
        }
        close(fd);
    }
    closedir(d);
    return all;
}

void cp_sandbox_kill(cp_sandbox *sb, cp_proc *proc)
{
    if (proc->pid <= 0) return;
    if (proc->init_pid == 0) cp_sandbox_read_status(proc);
    /* 1. The pid-namespace init: the kernel then kills everything in the namespace.
     *    Wait for that to finish, so that bwrap (still alive) reaps its init. */
    if (proc->init_pidfd >= 0 && sys_pidfd_signal(proc->init_pidfd, SIGKILL) == 0)
        wait_readable(proc->init_pidfd, CP_SANDBOX_INIT_WAIT_MS);
    /* 2. The cgroup, race-free (freezer / cgroup.kill): anything the namespace kill
     *    has not finished, and the bwrap monitor, which lives there too. */
    if (sb->cg && proc->cgroup[0]) cp_cgroup_kill(sb->cg, proc->cgroup);
    /* 3. The monitor itself (our child; without cgroups, its death takes the init
     *    down through PDEATHSIG when step 1 could not run yet). */
    if (proc->pidfd >= 0) sys_pidfd_signal(proc->pidfd, SIGKILL);
}

void cp_sandbox_release(cp_sandbox *sb, cp_proc *proc, cp_proc_status *st)
{
    memset(st, 0, sizeof *st);
    st->exit_code = -1;
    if (proc->pid > 0) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)proc->pid, &si, WEXITED | WNOHANG) == 0 && si.si_pid == 0) {
            /* Not exited: the contract says it must have; do not block forever. */
            cp_sandbox_kill(sb, proc);
            memset(&si, 0, sizeof si);
            while (waitid(P_PID, (id_t)proc->pid, &si, WEXITED) < 0 && errno == EINTR) {
            }
        }
        if (si.si_code == CLD_EXITED) {
            /* bwrap reports the runner's end as 128+N when signal N killed it (bash's
             * convention), so such codes are ambiguous; read them as signals. */
            int code = si.si_status;
            if (code > 128 && code < 128 + NSIG) {
                st->signal = code - 128;
            } else {
                st->exit_code = code;
            }
        } else if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED) {
            st->signal = si.si_status;
        }
    }
    /* bwrap is reaped, so whatever it left is ours now. An init we could not name
     * (or one an earlier sweep left dying) is found by a sweep of our children. */
    bool init_done = reap_init(proc);
    if (!init_done || sb->orphans_left) sb->orphans_left = !reap_orphaned_inits(sb);
    if (sb->cg && proc->cgroup[0]) {
        if (!cp_cgroup_is_empty(sb->cg, proc->cgroup)) cp_cgroup_kill(sb->cg, proc->cgroup);
        cp_cgroup_stats cs;
        cp_cgroup_read_stats(sb->cg, proc->cgroup, &cs);
        st->oom_killed = cs.oom_killed;
        st->pids_hit = cs.pids_hit;
        st->cpu_s = cs.cpu_s;
        st->peak_bytes = cs.peak_bytes;
        cp_cgroup_remove(sb->cg, proc->cgroup);
        proc->cgroup[0] = '\0';
    }
    proc_close(proc);
    proc->pid = 0;
    proc->init_pid = 0;
}

/* ---- self-test (spec §3.10) ---------------------------------------------------------- */

/* The confinement probe. Each check prints "PASS name" or "FAIL name detail"; "DONE"
 * at the end proves the script ran to completion. Parameters are prepended as Python
 * assignments (PORTS, ABSTRACT, TMP_BYTES, SHM_BYTES, PIDS_MAX, CGROUPS). */
static const char k_probe_py[] =
    "import os, sys, socket, ctypes, errno, threading, fcntl, termios\n"
    "def check(name, ok, detail=''):\n"
    "    print(('PASS ' if ok else 'FAIL ') + name + ('' if ok else ' ' + str(detail)), "
    "flush=True)\n"
    "def t(name, fn):\n"
    "    try:\n"
    "        r = fn()\n"
    "    except Exception as e:\n"
    "        check(name, False, repr(e))\n"
    "        return\n"
    "    ok, detail = r if isinstance(r, tuple) else (r, '')\n"
    "    check(name, ok, detail)\n"
    "def fails(name, fn, want=None):\n"
    "    try:\n"
    "        fn()\n"
    "    except OSError as e:\n"
    "        check(name, want is None or e.errno in want, 'errno %s' % e.errno)\n"
    "        return\n"
    "    except Exception as e:\n"
    "        check(name, False, repr(e))\n"
    "        return\n"
    "    check(name, False, 'succeeded')\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "def sys_fails(name, fn, want):\n"
    "    r = fn()\n"
    "    e = ctypes.get_errno()\n"
    "    check(name, r == -1 and e in want, 'ret %s errno %s' % (r, e))\n"
    "def rd(p):\n"
    "    with open(p, 'rb') as f: return f.read()\n"
    "def wr(p, data):\n"
    "    with open(p, 'w') as f: return f.write(data)\n"
    "def size(p):\n"
    "    v = os.statvfs(p)\n"
    "    return v.f_blocks * v.f_frsize\n"
    "# must work\n"
    "t('tmp_file', lambda: wr('/tmp/probe.txt', 'x' * 1000) == 1000 and rd('/tmp/probe.txt') == "
    "b'x' * 1000)\n"
    "out = []\n"
    "def thread():\n"
    "    th = threading.Thread(target=lambda: out.append(1)); th.start(); th.join()\n"
    "    return out == [1]\n"
    "t('thread', thread)\n"
    "t('dev_shm_writable', lambda: wr('/dev/shm/probe', 'x') == 1)\n"
    "t('reopen_event_pipe', lambda: wr('/proc/self/fd/3', '') == 0)\n"
    "t('tmp_size', lambda: (size('/tmp') == TMP_BYTES, size('/tmp')))\n"
    "t('shm_size', lambda: (size('/dev/shm') == SHM_BYTES, size('/dev/shm')))\n"
    "t('stdin_null', lambda: (os.readlink('/proc/self/fd/0') == '/dev/null', "
    "os.readlink('/proc/self/fd/0')))\n"
    "t('hostname', lambda: (socket.gethostname() == 'sandbox', socket.gethostname()))\n"
    "# must fail\n"
    "t('no_shadow', lambda: not os.path.exists('/etc/shadow'))\n"
    "fails('read_shadow', lambda: rd('/etc/shadow'))\n"
    "for p in ('/root', '/home', '/sys', '/run', '/var/lib', '/boot', '/etc/ssh'):\n"
    "    t('hidden ' + p, lambda: not os.path.exists(p))\n"
    "for p in ('/probe', '/usr/probe', '/etc/probe', '/w/probe', '/dev/probe'):\n"
    "    fails('write ' + p, lambda: wr(p, ''), (errno.EROFS, errno.EACCES, errno.EPERM))\n"
    "def connect(fam, addr):\n"
    "    s = socket.socket(fam, socket.SOCK_STREAM)\n"
    "    s.settimeout(1)\n"
    "    try: s.connect(addr)\n"
    "    finally: s.close()\n"
    "for port in PORTS:\n"
    "    fails('tcp_127.0.0.1:%d' % port, lambda: connect(socket.AF_INET, ('127.0.0.1', port)))\n"
    "fails('abstract_socket', lambda: connect(socket.AF_UNIX, ABSTRACT))\n"
    "fails('egress', lambda: connect(socket.AF_INET, ('1.1.1.1', 80)))\n"
    "for fam, typ, nm in ((16, 3, 'netlink'), (17, 3, 'packet'), (40, 1, 'vsock'), (38, 5, "
    "'alg')):\n"
    "    fails('socket_' + nm, lambda: socket.socket(fam, typ).close(), (errno.EAFNOSUPPORT,))\n"
    "t('pids', lambda: (lambda pids: (len(pids) <= 3, pids))([p for p in os.listdir('/proc') if "
    "p.isdigit()]))\n"
    "t('init_environ_empty', lambda: (rd('/proc/1/environ') == b'', len(rd('/proc/1/environ'))))\n"
    "allowed = {'PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL', 'MPLBACKEND', 'MPLCONFIGDIR', 'PWD'}\n"
    "t('environ', lambda: (set(os.environ) <= allowed, sorted(set(os.environ) - allowed)))\n"
    "def fds():\n"
    "    seen = {int(x) for x in os.listdir('/proc/self/fd')}\n"
    "    def gone(fd):\n"
    "        try: os.fstat(fd); return False\n"
    "        except OSError: return True\n"
    "    extra = sorted(fd for fd in seen - {0, 1, 2, 3} if not gone(fd))\n"
    "    return (extra == [] and {0, 1, 2, 3} <= seen, sorted(seen))\n"
    "t('fds', fds)\n"
    "st = dict(l.split(':', 1) for l in rd('/proc/self/status').decode().splitlines() if ':' in "
    "l)\n"
    "t('uid', lambda: (os.getuid() == 1000 and os.getgid() == 1000 and st['Uid'].split() == "
    "['1000'] * 4, st['Uid']))\n"
    "t('no_caps', lambda: (int(st['CapEff'], 16) == 0 and int(st['CapPrm'], 16) == 0, "
    "st['CapEff']))\n"
    "t('no_new_privs', lambda: st['NoNewPrivs'].strip() == '1')\n"
    "t('seccomp_on', lambda: st['Seccomp'].strip() == '2')\n"
    "sys_fails('unshare_user', lambda: libc.unshare(0x10000000), (errno.EPERM, errno.ENOSPC))\n"
    "sys_fails('unshare_mount', lambda: libc.unshare(0x00020000), (errno.EPERM,))\n"
    "sys_fails('ptrace', lambda: libc.ptrace(0, 0, None, None), (errno.EPERM,))\n"
    "sys_fails('mount', lambda: libc.mount(b'none', b'/tmp', b'tmpfs', 0, None), (errno.EPERM,))\n"
    "if os.uname().machine == 'x86_64':\n"
    "    sys_fails('keyctl', lambda: libc.syscall(250, 0, 0, 0, 0, 0), (errno.EPERM,))\n"
    "    sys_fails('bpf', lambda: libc.syscall(321, 0, 0, 0), (errno.EPERM,))\n"
    "    sys_fails('clone3', lambda: libc.syscall(435, 0, 0), (errno.ENOSYS,))\n"
    "    sys_fails('io_uring_setup', lambda: libc.syscall(425, 1, 0), (errno.ENOSYS,))\n"
    "    sys_fails('userfaultfd', lambda: libc.syscall(323, 0), (errno.EPERM,))\n"
    "    sys_fails('perf_event_open', lambda: libc.syscall(298, 0, 0, -1, -1, 0), (errno.EPERM,))\n"
    "fails('tiocsti', lambda: fcntl.ioctl(0, termios.TIOCSTI, b'x'), (errno.EPERM,))\n"
    "sys_fails('tiocsti_high_bits', lambda: libc.ioctl(0, ctypes.c_ulong(termios.TIOCSTI | (1 << "
    "32)), b'x'), (errno.EPERM,))\n"
    "if CGROUPS:\n"
    "    def forks():\n"
    "        r, w = os.pipe()\n"
    "        kids, hit = [], False\n"
    "        for i in range(PIDS_MAX + 1):\n"
    "            try:\n"
    "                pid = os.fork()\n"
    "            except BlockingIOError:\n"
    "                hit = True\n"
    "                break\n"
    "            if pid == 0:\n"
    "                os.close(w); os.read(r, 1); os._exit(0)\n"
    "            kids.append(pid)\n"
    "        os.close(w)\n"
    "        for k in kids: os.waitpid(k, 0)\n"
    "        return (hit, len(kids))\n"
    "    t('pids_max_forks', forks)\n"
    "print('DONE', flush=True)\n";

static const char k_hello_expect[] = "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\n";
static const char *const k_hello_code[] = {
    [CP_LANG_PYTHON] = "print('h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80')\n",
    [CP_LANG_JAVASCRIPT] = "console.log('h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80');\n",
    [CP_LANG_JAVA] = "public class Main { public static void main(String[] a) {\n"
                     "  System.out.println(\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\"); } }\n",
    [CP_LANG_R] = "cat('h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\\n')\n",
};

typedef struct {
    cp_lang lang;
    char *code;       /* owned */
    bool confinement; /* the probe script (else a hello world) */
    cp_proc proc;
    bool started, finished, exited, out_eof, err_eof, ev_eof, st_eof;
    bool uid_checked, uid_ok;
    char out[CP_SANDBOX_SELFTEST_OUT_MAX];
    size_t out_len;
    char errout[CP_SANDBOX_SELFTEST_OUT_MAX];
    size_t err_len;
    cp_proc_status st;
    char spawn_err[160];
} st_job;

/* Drain a non-blocking pipe into buf (bytes beyond cap are dropped). */
static void drain(int fd, char *buf, size_t cap, size_t *len, bool *eof)
{
    char tmp[4096];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) *eof = true;
            return;
        }
        if (n == 0) {
            *eof = true;
            return;
        }
        if (buf && *len + 1 < cap) {
            size_t k = (size_t)n < cap - 1 - *len ? (size_t)n : cap - 1 - *len;
            memcpy(buf + *len, tmp, k);
            *len += k;
            buf[*len] = '\0';
        }
    }
}

/* Host-side identity check: the namespace init runs as the slot uid (all four ids),
 * never host uid 0. */
static bool check_host_uid(const cp_sandbox *sb, const cp_proc *p)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)p->init_pid);
    FILE *f = fopen(path, "re");
    if (!f) return false;
    unsigned long r = 0, e = 0, s = 0, fs = 0;
    bool have = false;
    while (!have && fgets(line, sizeof line, f))
        have = sscanf(line, "Uid: %lu %lu %lu %lu", &r, &e, &s, &fs) == 4;
    fclose(f);
    unsigned long want = sb->root ? sb->cfg.uid_base + p->slot : sb->uid;
    return have && want != 0 && r == want && e == want && s == want && fs == want;
}

/* Run the jobs, at most `slots` at a time, until all finish or the deadline passes. */
static int run_jobs(cp_sandbox *sb, st_job *jobs, size_t njobs, char *err, size_t errcap)
{
    long long deadline = now_ms() + CP_SANDBOX_SELFTEST_TIMEOUT_MS;
    size_t next = 0, running = 0, done = 0;
    bool slot_busy[CP_SANDBOX_SELFTEST_JOBS] = {false};
    unsigned nslots =
        sb->cfg.slots < CP_SANDBOX_SELFTEST_JOBS ? sb->cfg.slots : CP_SANDBOX_SELFTEST_JOBS;
    int rc = 0;
    while (done < njobs) {
        while (next < njobs && running < nslots) {
            unsigned slot = 0;
            while (slot_busy[slot])
                slot++;
            st_job *j = &jobs[next++];
            if (spawn_impl(sb, j->lang, j->code, strlen(j->code), slot, MODE_DIRECT, &j->proc,
                           j->spawn_err, sizeof j->spawn_err) < 0) {
                j->finished = true;
                done++;
                continue;
            }
            j->started = true;
            slot_busy[slot] = true;
            running++;
        }
        if (done == njobs) break;
        struct pollfd pfd[CP_SANDBOX_SELFTEST_JOBS * CP_SANDBOX_SELFTEST_FDS];
        st_job *owner[CP_SANDBOX_SELFTEST_JOBS * CP_SANDBOX_SELFTEST_FDS];
        nfds_t n = 0;
        for (size_t i = 0; i < njobs; i++) {
            st_job *j = &jobs[i];
            if (!j->started || j->finished) continue;
            int fds[CP_SANDBOX_SELFTEST_FDS] = {
                j->out_eof ? -1 : j->proc.out_fd, j->err_eof ? -1 : j->proc.err_fd,
                j->ev_eof ? -1 : j->proc.ev_fd, j->st_eof ? -1 : j->proc.status_fd,
                j->exited ? -1 : j->proc.pidfd};
            for (int k = 0; k < CP_SANDBOX_SELFTEST_FDS; k++) {
                if (fds[k] < 0) continue;
                pfd[n].fd = fds[k];
                pfd[n].events = POLLIN;
                pfd[n].revents = 0;
                owner[n++] = j;
            }
        }
        long long left = deadline - now_ms();
        if (left <= 0) {
            rc = errf(err, errcap, "self-test: probes did not finish within %d ms",
                      CP_SANDBOX_SELFTEST_TIMEOUT_MS);
            break;
        }
        poll(pfd, n, left < CP_SANDBOX_SELFTEST_POLL_MS ? (int)left : CP_SANDBOX_SELFTEST_POLL_MS);
        for (nfds_t k = 0; k < n; k++) {
            st_job *j = owner[k];
            if (!pfd[k].revents) continue;
            int fd = pfd[k].fd;
            if (fd == j->proc.out_fd)
                drain(fd, j->out, sizeof j->out, &j->out_len, &j->out_eof);
            else if (fd == j->proc.err_fd)
                drain(fd, j->errout, sizeof j->errout, &j->err_len, &j->err_eof);
            else if (fd == j->proc.ev_fd)
                drain(fd, NULL, 0, NULL, &j->ev_eof);
            else if (fd == j->proc.status_fd) {
                if (cp_sandbox_read_status(&j->proc) < 0) j->st_eof = true;
                if (j->proc.init_pid && !j->uid_checked) {
                    j->uid_checked = true;
                    j->uid_ok = check_host_uid(sb, &j->proc);
                }
            } else if (fd == j->proc.pidfd) {
                j->exited = true;
            }
        }
        for (size_t i = 0; i < njobs; i++) {
            st_job *j = &jobs[i];
            if (!j->started || j->finished || !j->exited || !j->out_eof || !j->err_eof) continue;
            unsigned slot = j->proc.slot;
            cp_sandbox_release(sb, &j->proc, &j->st);
            j->finished = true;
            slot_busy[slot] = false;
            running--;
            done++;
        }
    }
    for (size_t i = 0; i < njobs; i++) { /* timeout: one kill path for all */
        st_job *j = &jobs[i];
        if (j->started && !j->finished) {
            cp_sandbox_kill(sb, &j->proc);
            cp_sandbox_release(sb, &j->proc, &j->st);
            j->finished = true;
        }
    }
    return rc;
}

/* A listening socket the probe must not reach: TCP on 127.0.0.1 (port 0 = any) or an
 * abstract UNIX name. */
static int listen_tcp(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof in;
    if (s < 0 || bind(s, (struct sockaddr *)&in, sizeof in) < 0 || listen(s, 1) < 0 ||
        getsockname(s, (struct sockaddr *)&in, &len) < 0) {
        if (s >= 0) close(s);
        return -1;
    }
    *port = ntohs(in.sin_port);
    return s;
}

static int listen_abstract(char *name, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(name, cap, "codepane-selftest-%d-%ld", (int)getpid(), (long)ts.tv_nsec);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    if (s < 0 || len + 1 > sizeof un.sun_path) {
        if (s >= 0) close(s);
        return -1;
    }
    memcpy(un.sun_path + 1, name, len); /* sun_path[0] = '\0': abstract namespace */
    if (bind(s, (struct sockaddr *)&un,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len)) < 0 ||
        listen(s, 1) < 0) {
        close(s);
        return -1;
    }
    return s;
}

/* The probe's first lines: its parameters, as Python literals. */
static char *probe_script(const cp_sandbox *sb, int server_port, int own_port, const char *abstract)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "PORTS = [p for p in (%d, %d) if p > 0]\nABSTRACT = '\\0%s'\nTMP_BYTES = %zu\n"
                     "SHM_BYTES = %u\nPIDS_MAX = %u\nCGROUPS = %s\n",
                     server_port, own_port, abstract, sb->cfg.tmp_bytes, CP_SANDBOX_SHM_BYTES,
                     sb->cfg.pids_max, sb->cg ? "True" : "False");
    if (n < 0 || (size_t)n >= sizeof head) return NULL;
    char *s = malloc((size_t)n + sizeof k_probe_py);
    if (!s) return NULL;
    memcpy(s, head, (size_t)n);
    memcpy(s + n, k_probe_py, sizeof k_probe_py);
    return s;
}

/* Append "; what" to err (keeping it NUL-terminated and within errcap). */
static void err_add(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err_add(char *err, size_t errcap, const char *fmt, ...)
{
    size_t len = strlen(err);
    if (len + 3 >= errcap) return;
    if (len) {
        strcpy(err + len, "; ");
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + len, errcap - len, fmt, ap);
    va_end(ap);
}

/* The first line of s, cut to fit a message. */
static const char *first_line(const char *s, char *buf, size_t cap)
{
    size_t n = strcspn(s, "\n");
    if (n >= cap) n = cap - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

static void judge_probe(const cp_sandbox *sb, const st_job *j, char *err, size_t errcap)
{
    char line[160];
    if (!j->started) {
        err_add(err, errcap, "probe did not start: %s", j->spawn_err);
        return;
    }
    if (!j->uid_ok) err_add(err, errcap, "probe: sandbox does not run as the slot uid on the host");
    for (const char *p = j->out; *p;) {
        if (strncmp(p, "FAIL ", 5) == 0)
            err_add(err, errcap, "probe: %s", first_line(p + 5, line, sizeof line));
        const char *nl = strchr(p, '\n');
        if (!nl) break;
        p = nl + 1;
    }
    if (!strstr(j->out, "DONE\n"))
        err_add(err, errcap, "probe did not finish (exit %d, signal %d): %s", j->st.exit_code,
                j->st.signal, first_line(j->errout, line, sizeof line));
    else if (j->st.exit_code != 0)
        err_add(err, errcap, "probe exited with %d", j->st.exit_code);
    if (sb->cg && !j->st.pids_hit)
        err_add(err, errcap, "probe: pids.events did not count the refused fork");
}

int cp_sandbox_selftest(cp_sandbox *sb, int server_port, char *err, size_t errcap)
{
    if (errcap) err[0] = '\0';
    char abstract[96];
    int own_port = 0;
    int tcp = listen_tcp(&own_port);
    int unix_s = listen_abstract(abstract, sizeof abstract);
    if (tcp < 0 || unix_s < 0) {
        if (tcp >= 0) close(tcp);
        if (unix_s >= 0) close(unix_s);
        return errf(err, errcap, "self-test: cannot open the canary sockets: %s", strerror(errno));
    }
    _Static_assert(CP_SANDBOX_SELFTEST_JOBS == sizeof k_langs / sizeof *k_langs,
                   "one probe plus one hello per language (k_langs[0] is CP_LANG_NONE)");
    st_job *jobs = calloc(CP_SANDBOX_SELFTEST_JOBS, sizeof *jobs);
    size_t njobs = 0;
    int rc = -1;
    if (!jobs) {
        errf(err, errcap, "self-test: out of memory");
        goto out;
    }
    /* The confinement probe first (it is python), then a UTF-8 hello per language. */
    jobs[0].lang = CP_LANG_PYTHON;
    jobs[0].confinement = true;
    jobs[0].code = probe_script(sb, server_port, own_port, abstract);
    if (!jobs[0].code) {
        errf(err, errcap, "self-test: out of memory");
        goto out;
    }
    njobs = 1;
    for (int l = 1; l < CP_SANDBOX_NLANG; l++) {
        if (!sb->lang_ok[l]) continue;
        jobs[njobs].lang = (cp_lang)l;
        jobs[njobs].code = strdup(k_hello_code[l]);
        if (!jobs[njobs++].code) {
            errf(err, errcap, "self-test: out of memory");
            goto out;
        }
    }
    if (!sb->lang_ok[CP_LANG_PYTHON]) {
        errf(err, errcap, "self-test: python (needed for the probes) is not available");
        goto out;
    }
    if (run_jobs(sb, jobs, njobs, err, errcap) < 0) goto out;

    judge_probe(sb, &jobs[0], err, errcap);
    for (size_t i = 1; i < njobs; i++) {
        st_job *j = &jobs[i];
        bool ok = j->started && j->st.exit_code == 0 && strcmp(j->out, k_hello_expect) == 0;
        if (ok) continue;
        /* A language that cannot print its hello world is switched off (spec §3.10);
         * python is needed by the probe, so its failure fails the test. */
        sb->lang_ok[j->lang] = false;
        if (j->lang == CP_LANG_PYTHON) {
            char line[160];
            err_add(err, errcap, "python hello failed (exit %d): %s", j->st.exit_code,
                    first_line(j->started ? j->errout : j->spawn_err, line, sizeof line));
        }
    }
    rc = err[0] ? -1 : 0;
out:
    for (size_t i = 0; jobs && i < CP_SANDBOX_SELFTEST_JOBS; i++)
        free(jobs[i].code);
    free(jobs);
    close(tcp);
    close(unix_s);
    return rc;
}
