/* Standalone driver for src/server/sandbox.c: runs the self-test and real snippets
 * through the public spawn / read_status / kill / release path and asserts exact
 * outcomes. Run it as root to exercise per-slot uids and cgroups (as CI does); as
 * another user it still runs, without the uid and cgroup checks.
 *
 *   gcc -std=c11 -Wall -Wextra -Wshadow -Werror -O1 -g -fsanitize=address,undefined \
 *       -Isrc/core -Isrc/server src/core/lang.c src/server/sandbox.c src/server/syscall_filter.c \
 *       src/server/cgroup.c tests/server/sandbox_probe.c -lseccomp -lcjson -o build/s/probe
 *
 * Environment: CP_PROBE_UID_BASE (default 61000, away from the 60000 a server uses, so
 * the probe's start-up sweep cannot touch another instance's runs). */
#define _GNU_SOURCE

#include "cgroup.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROBE_UID_BASE           61000
#define PROBE_SLOTS              4
#define PROBE_MEMORY             (256u << 20)
#define PROBE_PIDS               64
#define PROBE_TMP                (64u << 20)
#define PROBE_OUT_MAX            (1u << 20)
#define PROBE_RUN_TIMEOUT_MS     20000
#define PROBE_SELFTEST_BUDGET_MS 2000
#define PROBE_TIMING_RUNS        7

static int g_passed, g_failed; /* test tallies: the driver is single-threaded */

static void check(bool ok, const char *name, const char *detail)
{
    if (ok)
        g_passed++;
    else
        g_failed++;
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", name, detail && *detail ? ": " : "",
           detail ? detail : "");
    fflush(stdout);
}

/* vsnprintf: a cut detail message is fine here. */
static void fmt(char *buf, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, cap, f, ap);
    va_end(ap);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

typedef struct {
    char *out, *err, *ev; /* NUL-terminated, PROBE_OUT_MAX each */
    size_t out_len, err_len, ev_len;
    double first_out_ms; /* spawn call → first stdout byte, -1 if none */
    double kill_to_exit_ms;
    unsigned uid; /* the slot's host uid */
    bool spawned;
    char spawn_err[256];
    cp_proc_status st;
} result;

static void result_free(result *r)
{
    free(r->out);
    free(r->err);
    free(r->ev);
}

static bool drain(int fd, char *buf, size_t *len)
{
    char tmp[8192];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno != EAGAIN;
        if (n == 0) return true;
        size_t k = (size_t)n;
        if (*len + k >= PROBE_OUT_MAX) k = PROBE_OUT_MAX - 1 - *len;
        memcpy(buf + *len, tmp, k);
        *len += k;
        buf[*len] = '\0';
    }
}

/* Spawn, stream until the sandbox is gone, release. kill_after_ms < 0: never kill
 * (except at the run timeout). */
static void run(cp_sandbox *sb, cp_lang lang, const char *code, size_t code_len, unsigned slot,
                double kill_after_ms, result *r)
{
    memset(r, 0, sizeof *r);
    r->out = calloc(1, PROBE_OUT_MAX);
    r->err = calloc(1, PROBE_OUT_MAX);
    r->ev = calloc(1, PROBE_OUT_MAX);
    r->first_out_ms = r->kill_to_exit_ms = -1;
    cp_proc p;
    double t0 = now_ms();
    if (cp_sandbox_spawn(sb, lang, code, code_len, slot, &p, r->spawn_err, sizeof r->spawn_err) < 0)
        return;
    r->spawned = true;
    r->uid = (unsigned)(getuid() == 0 ? PROBE_UID_BASE + slot : getuid());
    const char *ub = getenv("CP_PROBE_UID_BASE");
    if (ub && getuid() == 0) r->uid = (unsigned)atoi(ub) + slot;
    bool out_eof = false, err_eof = false, ev_eof = false, st_eof = false, exited = false;
    double killed_at = -1;
    while (!(exited && out_eof && err_eof)) {
        struct pollfd pf[5] = {
            {out_eof ? -1 : p.out_fd, POLLIN, 0}, {err_eof ? -1 : p.err_fd, POLLIN, 0},
            {ev_eof ? -1 : p.ev_fd, POLLIN, 0},   {st_eof ? -1 : p.status_fd, POLLIN, 0},
            {exited ? -1 : p.pidfd, POLLIN, 0},
        };
        poll(pf, 5, 10);
        double t = now_ms() - t0;
        if (pf[0].revents) {
            size_t before = r->out_len;
            out_eof = drain(p.out_fd, r->out, &r->out_len);
            if (before == 0 && r->out_len > 0) r->first_out_ms = t;
        }
        if (pf[1].revents) err_eof = drain(p.err_fd, r->err, &r->err_len);
        if (pf[2].revents) ev_eof = drain(p.ev_fd, r->ev, &r->ev_len);
        if (pf[3].revents) st_eof = cp_sandbox_read_status(&p) < 0;
        if (pf[4].revents) {
            exited = true;
            if (killed_at >= 0) r->kill_to_exit_ms = t - killed_at;
        }
        bool want_kill = (kill_after_ms >= 0 && t >= kill_after_ms) || t >= PROBE_RUN_TIMEOUT_MS;
        if (want_kill && killed_at < 0 && !exited) {
            killed_at = t;
            cp_sandbox_kill(sb, &p);
        }
    }
    cp_sandbox_release(sb, &p, &r->st);
}

/* No process left under the slot uid (real or effective). */
static bool uid_clean(unsigned uid)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "pgrep -u %u >/dev/null || pgrep -U %u >/dev/null", uid, uid);
    int rc = system(cmd);
    return WIFEXITED(rc) && WEXITSTATUS(rc) == 1;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
    chmod(path, 0644);
}

static void remove_runner_dir(const char *dir)
{
    static const char *const files[] = {"python.py", "node.cjs", "runner.R"};
    char path[512];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* D18 set-up: what a crashed server leaves behind. `caged` is a root process inside a
 * stale run cgroup (only the cgroup sweep can find it); `loose` runs under a slot uid
 * outside any run cgroup (only the uid sweep can find it). *stale_dir gets the stale
 * run's pids-hierarchy directory. */
static bool plant_leftovers(unsigned uid_base, pid_t *caged, pid_t *loose, char *stale_dir,
                            size_t cap)
{
    char parent[64], err[256];
    snprintf(parent, sizeof parent, "codepane-%u", uid_base);
    cp_cgroups *cg = NULL;
    if (cp_cgroups_open(&cg, parent, err, sizeof err) < 0 || !cg) return false;
    int fds[CP_CGROUP_MAX_HIER];
    size_t nfds = 0;
    cp_cgroup_limits lim = {PROBE_MEMORY, PROBE_PIDS, 1.0};
    if (cp_cgroup_create(cg, "run-0-999999", &lim, fds, &nfds, err, sizeof err) < 0) {
        cp_cgroups_close(cg);
        return false;
    }
    *caged = fork();
    if (*caged == 0) {
        for (size_t i = 0; i < nfds; i++)
            if (write(fds[i], "0", 1) != 1) _exit(126);
        execl("/bin/sleep", "sleep", "1000", (char *)NULL);
        _exit(127);
    }
    for (size_t i = 0; i < nfds; i++)
        close(fds[i]);
    cp_cgroups_close(cg); /* leaves the run directory: it is not empty */
    *loose = fork();
    if (*loose == 0) {
        gid_t g = uid_base + 2;
        if (setgroups(0, NULL) < 0 || setresgid(g, g, g) < 0 || setresuid(g, g, g) < 0) _exit(126);
        execl("/bin/sleep", "sleep", "1000", (char *)NULL);
        _exit(127);
    }
    usleep(100 * 1000); /* let both exec */
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/cgroup", (int)*caged);
    FILE *f = fopen(path, "r");
    stale_dir[0] = '\0';
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *rest = strstr(line, ":pids:");
        if (rest)
            fmt(stale_dir, cap, "/sys/fs/cgroup/pids%s", rest + 6);
        else if (strncmp(line, "0::", 3) == 0 && !stale_dir[0])
            fmt(stale_dir, cap, "/sys/fs/cgroup%s", line + 3);
    }
    if (f) fclose(f);
    return strstr(stale_dir, "run-0-999999") != NULL;
}

/* Did `pid` (our child) die of SIGKILL within 2 s? */
static bool killed(pid_t pid)
{
    for (int i = 0; i < 200; i++) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        usleep(10 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return false;
}

static const char k_hello[] = "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\n";

/* Median spawn → first stdout byte of a UTF-8 hello, checking every output exactly. */
static void hello(cp_sandbox *sb, cp_lang lang, const char *code, int runs)
{
    double t[PROBE_TIMING_RUNS];
    int ok = 0;
    char detail[256] = "";
    for (int i = 0; i < runs; i++) {
        result r;
        run(sb, lang, code, strlen(code), (unsigned)i % PROBE_SLOTS, -1, &r);
        t[i] = r.first_out_ms;
        if (r.spawned && strcmp(r.out, k_hello) == 0 && r.st.exit_code == 0 && r.st.signal == 0)
            ok++;
        else
            fmt(detail, sizeof detail, "spawn=%s out=[%s] err=[%.150s] exit=%d sig=%d",
                r.spawned ? "ok" : r.spawn_err, r.out, r.err, r.st.exit_code, r.st.signal);
        result_free(&r);
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    char name[128];
    fmt(name, sizeof name,
        "%s hello prints exactly 'h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80' (%d runs)",
        cp_lang_name(lang), runs);
    check(ok == runs, name, detail);
    printf("     %s spawn -> first output: median %.1f ms, min %.1f ms, max %.1f ms\n",
           cp_lang_name(lang), t[runs / 2], t[0], t[runs - 1]);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* A server secret in the environment must never reach the sandbox (finding 2). */
    setenv("CODEPANE_PROBE_CANARY", "canary-7f3a91", 1);
    /* An fd without CLOEXEC that must not leak in (finding 7; the self-test lists fds). */
    int leak = open("/etc/hostname", O_RDONLY);

    char dir[] = "/tmp/cp-probe-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    chmod(dir, 0755); /* the slot uids must read the runner dir */
    write_file(dir, "python.py", "exec(open('/w/main.py').read())\n");
    write_file(dir, "node.cjs", "require('/w/main.js');\n");
    write_file(dir, "runner.R", "source('/w/main.R')\n");

    const char *ub = getenv("CP_PROBE_UID_BASE");
    cp_sandbox_config cfg = {
        .uid_base = ub ? (unsigned)atoi(ub) : PROBE_UID_BASE,
        .slots = PROBE_SLOTS,
        .memory_bytes = PROBE_MEMORY,
        .pids_max = PROBE_PIDS,
        .tmp_bytes = PROBE_TMP,
        .cpu_quota = 1.0,
        .runner_dir = dir,
    };
    bool root = getuid() == 0;
    char err[2048];
    pid_t caged = -1, loose = -1;
    char stale_dir[512] = "";
    bool planted =
        root && plant_leftovers(cfg.uid_base, &caged, &loose, stale_dir, sizeof stale_dir);
    if (root) check(planted, "leftovers of a crashed server planted", stale_dir);

    cp_sandbox *sb = NULL;
    double t0 = now_ms();
    int rc = cp_sandbox_init(&sb, &cfg, err, sizeof err);
    double init_ms = now_ms() - t0;
    check(rc == 0, "init", rc ? err : "");
    if (rc) {
        remove_runner_dir(dir);
        return 1;
    }
    if (planted) {
        struct stat sst;
        check(killed(caged), "init sweep: process in a stale run cgroup SIGKILLed", "");
        check(stat(stale_dir, &sst) < 0 && errno == ENOENT, "init sweep: stale run cgroup removed",
              stale_dir);
        check(killed(loose), "init sweep: process left under a slot uid SIGKILLed", "");
    }
    printf("     init %.1f ms; root=%d cgroups=%d\n", init_ms, root, cp_sandbox_has_cgroups(sb));
    if (root) check(cp_sandbox_has_cgroups(sb), "cgroups available as root", "");

    t0 = now_ms();
    rc = cp_sandbox_selftest(sb, 0, err, sizeof err);
    double st_ms = now_ms() - t0;
    check(rc == 0, "selftest passes", rc ? err : "");
    char d[64];
    fmt(d, sizeof d, "%.0f ms", st_ms);
    check(st_ms < PROBE_SELFTEST_BUDGET_MS, "selftest takes well under 2 s", d);
    for (int l = CP_LANG_PYTHON; l <= CP_LANG_R; l++)
        printf("     %s available: %d\n", cp_lang_name((cp_lang)l),
               cp_sandbox_lang_available(sb, (cp_lang)l));

    /* Exact UTF-8 round trip and spawn latency. */
    hello(sb, CP_LANG_PYTHON, "print('h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80')\n",
          PROBE_TIMING_RUNS);
    if (cp_sandbox_lang_available(sb, CP_LANG_JAVASCRIPT))
        hello(sb, CP_LANG_JAVASCRIPT,
              "console.log('h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80');\n", PROBE_TIMING_RUNS);
    if (cp_sandbox_lang_available(sb, CP_LANG_JAVA))
        hello(sb, CP_LANG_JAVA,
              "public class Main { public static void main(String[] a) {\n"
              "  System.out.println(\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\"); } }\n",
              3);
    if (cp_sandbox_lang_available(sb, CP_LANG_R))
        hello(sb, CP_LANG_R, "cat('h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\\n')\n", 3);

    result r;
    char detail[512];

    /* stderr, the event pipe (fd 3) and the exit code each arrive where they belong. */
    const char *streams =
        "import os, sys\nsys.stderr.write('to-err\\n')\nos.write(3, b'{\"e\":1}\\n')\n"
        "print('to-out')\nsys.exit(3)\n";
    run(sb, CP_LANG_PYTHON, streams, strlen(streams), 0, -1, &r);
    fmt(detail, sizeof detail, "out=[%s] err=[%s] ev=[%s] exit=%d sig=%d", r.out, r.err, r.ev,
        r.st.exit_code, r.st.signal);
    check(strcmp(r.out, "to-out\n") == 0 && strcmp(r.err, "to-err\n") == 0 &&
              strcmp(r.ev, "{\"e\":1}\n") == 0 && r.st.exit_code == 3 && r.st.signal == 0,
          "stdout, stderr, event fd 3 and exit code 3 are kept apart", detail);
    result_free(&r);

    /* The server's environment is invisible: own environ, and bwrap's pid 1. */
    const char *env = "import "
                      "os\nprint(open('/proc/1/environ','rb').read())\nprint(open('/proc/self/"
                      "environ','rb').read())\n"
                      "print(dict(os.environ))\nprint(open('/proc/1/cmdline','rb').read())\n";
    run(sb, CP_LANG_PYTHON, env, strlen(env), 1, -1, &r);
    check(r.st.exit_code == 0 && r.out_len > 0 && !strstr(r.out, "canary-7f3a91") &&
              strncmp(r.out, "b''\n", 4) == 0,
          "server env canary absent from /proc/1/environ, environ, cmdline", r.err);
    result_free(&r);

    /* Code goes through a memfd, never argv: 200 KB and NUL bytes are fine. */
    size_t big_len = 200000;
    char *big = malloc(big_len + 64);
    int n = snprintf(big, 64, "x = '");
    memset(big + n, 'a', big_len);
    n += (int)big_len;
    n += snprintf(big + n, 64, "'\nprint(len(x))\n#\x01");
    big[n++] = '\0'; /* a NUL inside the source: Python rejects it, but it reaches Python */
    run(sb, CP_LANG_PYTHON, big, (size_t)n - 1, 2, -1, &r);
    fmt(detail, sizeof detail, "out=[%s] exit=%d", r.out, r.st.exit_code);
    check(strcmp(r.out, "200000\n") == 0 && r.st.exit_code == 0, "200 KB of code arrives intact",
          detail);
    result_free(&r);
    free(big);

    /* A busy loop killed after 0.3 s: the whole tree goes, nothing of the uid remains. */
    const char *spin = "while True: pass\n";
    run(sb, CP_LANG_PYTHON, spin, strlen(spin), 0, 300, &r);
    fmt(detail, sizeof detail, "signal=%d exit=%d kill->exit %.1f ms cpu=%.2fs", r.st.signal,
        r.st.exit_code, r.kill_to_exit_ms, r.st.cpu_s);
    check(r.spawned && r.st.signal == SIGKILL, "busy loop killed at 0.3 s ends by SIGKILL", detail);
    if (root)
        check(uid_clean(r.uid), "no process of the slot uid remains after kill (pgrep -u/-U)", "");
    if (root && cp_sandbox_has_cgroups(sb))
        check(r.st.cpu_s > 0.1 && r.st.cpu_s < 1.0,
              "cgroup CPU time of the killed loop is about 0.3 s", detail);
    result_free(&r);

    /* Background processes (setsid, double fork) do not outlive the run. */
    const char *bg =
        "import os, subprocess\nsubprocess.Popen(['sleep', '30'], start_new_session=True)\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        import time; "
        "time.sleep(30)\n    os._exit(0)\n"
        "print('parent exits')\n";
    run(sb, CP_LANG_PYTHON, bg, strlen(bg), 1, -1, &r);
    fmt(detail, sizeof detail, "out=[%s] exit=%d sig=%d", r.out, r.st.exit_code, r.st.signal);
    check(strstr(r.out, "parent exits") != NULL, "daemonising snippet runs", detail);
    if (root)
        check(uid_clean(r.uid), "setsid'd and double-forked children are gone after the run", "");
    result_free(&r);

    /* Memory bomb: the cgroup OOM-kills it and says so. */
    const char *bomb = "a = []\nwhile True:\n    a.append(b'\\x01' * (16 << 20))\n";
    run(sb, CP_LANG_PYTHON, bomb, strlen(bomb), 2, -1, &r);
    fmt(detail, sizeof detail, "oom=%d signal=%d exit=%d peak=%zu MiB err=[%.120s]",
        r.st.oom_killed, r.st.signal, r.st.exit_code, r.st.peak_bytes >> 20, r.err);
    if (cp_sandbox_has_cgroups(sb)) {
        check(r.st.oom_killed && r.st.signal == SIGKILL, "memory bomb: oom_killed, SIGKILL",
              detail);
        check(r.st.peak_bytes <= PROBE_MEMORY && r.st.peak_bytes > PROBE_MEMORY / 2,
              "memory bomb: peak memory at the limit", detail);
    } else {
        check(r.st.exit_code != 0, "memory bomb fails (RLIMIT_DATA)", detail);
    }
    if (root) check(uid_clean(r.uid), "no process of the slot uid remains after the OOM kill", "");
    result_free(&r);

    /* Fork bomb: pids.max refuses forks and reports it; killed after 1 s. */
    const char *forks =
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n";
    run(sb, CP_LANG_PYTHON, forks, strlen(forks), 3, 1000, &r);
    fmt(detail, sizeof detail, "pids_hit=%d signal=%d kill->exit %.1f ms", r.st.pids_hit,
        r.st.signal, r.kill_to_exit_ms);
    if (cp_sandbox_has_cgroups(sb)) check(r.st.pids_hit, "fork bomb: pids_hit", detail);
    check(r.spawned && r.st.signal == SIGKILL, "fork bomb killed", detail);
    if (root) check(uid_clean(r.uid), "no process of the slot uid remains after the fork bomb", "");
    result_free(&r);

    /* A slot out of range and an unknown language are refused before anything runs. */
    cp_proc p;
    check(cp_sandbox_spawn(sb, CP_LANG_PYTHON, "1", 1, PROBE_SLOTS, &p, err, sizeof err) < 0,
          "slot out of range refused", err);
    check(cp_sandbox_spawn(sb, CP_LANG_NONE, "1", 1, 0, &p, err, sizeof err) < 0,
          "CP_LANG_NONE refused", err);

    /* 0 never means unlimited: bad configs are rejected. */
    cp_sandbox *bad = NULL;
    cp_sandbox_config c0 = cfg;
    c0.memory_bytes = 0;
    check(cp_sandbox_init(&bad, &c0, err, sizeof err) < 0 && !bad, "memory_bytes 0 rejected", err);
    c0 = cfg;
    c0.uid_base = 0;
    check(cp_sandbox_init(&bad, &c0, err, sizeof err) < 0 && !bad, "uid_base 0 rejected", err);

    cp_sandbox_free(sb);
    remove_runner_dir(dir);
    if (leak >= 0) close(leak);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
