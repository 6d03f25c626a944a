/* codepane-server: one sandboxed process, built as shared/spec/sandbox.md §3 prescribes.
 *
 * The caller (the supervisor thread: it must be long-lived, because bwrap's
 * --die-with-parent fires when the *thread* that forked it exits) asks for a process
 * running one language's runner on some code; this module forks, confines the child
 * (per-slot uid, rlimits, cgroups, fds), execs bwrap with an empty environment and
 * the seccomp filter, and hands back the pipes. Kill, reap and accounting live here
 * too, so every way a run ends goes through one kill path.
 *
 * Threads: spawn, read_status, kill and release are called from that one thread; the
 * self-test runs before it starts.
 *
 * Ownership: cp_sandbox is owned by the caller (cp_sandbox_free). A cp_proc's fds and
 * cgroups are owned by it until cp_sandbox_release(). */
#ifndef CP_SANDBOX_H
#define CP_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lang.h"

typedef struct {
    unsigned uid_base;      /* slot n runs as uid/gid uid_base + n (when the server is root) */
    unsigned slots;         /* number of slots (= max concurrent runs) */
    size_t memory_bytes;    /* memory cgroup limit per run (also sizes -Xmx, V8 heap) */
    unsigned pids_max;      /* pids cgroup limit per run */
    size_t tmp_bytes;       /* size of the sandbox's /tmp tmpfs */
    double cpu_quota;       /* CPUs per run (cgroup cpu quota), e.g. 1.0 */
    const char *runner_dir; /* host directory holding the language runners (bound read-only) */
    const char *kernel_dir; /* host directory holding the kernels (kernels/README.md), or
                               NULL: every language runs one process per run */
} cp_sandbox_config;

typedef struct cp_sandbox cp_sandbox;

/* Check cfg (every limit in range, 0 never meaning "unlimited"; the ranges are the
 * CP_SANDBOX_MIN_ / MAX_ constants in sandbox.c) and prepare shared state: the seccomp
 * BPF (built once with libseccomp), the cgroup parent directories (v1 or v2, where the
 * host offers them; their absence is reported by cp_sandbox_has_cgroups, not an
 * error), stale run cgroups swept. -1 with err.
 * Process-wide effects: as root, processes left under the slot uids by a previous
 * server are killed (spec D18), and the cgroups go under "codepane-<uid_base>" in the
 * server's own cgroup (v2: the server moves into a leaf beside it); in every case the
 * server becomes a child subreaper (PR_SET_CHILD_SUBREAPER), so that each run's
 * namespace init, orphaned when bwrap exits first, is reaped by cp_sandbox_release
 * instead of lingering as a zombie of the slot uid (also an init whose pid bwrap never
 * reported, found among the server's children: see cp_sandbox_release). */
int cp_sandbox_init(cp_sandbox **out, const cp_sandbox_config *cfg, char *err, size_t errcap);
void cp_sandbox_free(cp_sandbox *sb);
bool cp_sandbox_has_cgroups(const cp_sandbox *sb);

/* Whether `lang` can run here: its interpreter and runner file exist (checked at init)
 * and its self-test hello world passed (when the self-test ran). cp_sandbox_spawn
 * refuses an unavailable language with an error. */
bool cp_sandbox_lang_available(const cp_sandbox *sb, cp_lang lang);

typedef struct {
    pid_t pid;          /* the bwrap process the server forked */
    pid_t init_pid;     /* the pid-namespace init as the host sees it (0 until known) */
    int init_pidfd;     /* pidfd of init_pid (-1 until known): kills never hit a reused pid */
    int pidfd;          /* pidfd of `pid` (pollable: readable when it exits) */
    int out_fd, err_fd; /* read ends of the child's stdout and stderr, O_NONBLOCK */
    int ev_fd;          /* read end of the event pipe (fd 3 inside a runner, fd 4 inside a
                           kernel), O_NONBLOCK */
    int req_fd;         /* kernel only: write end of its request pipe (fd 3 inside),
                           O_NONBLOCK; -1 for a runner */
    int status_fd;      /* read end of bwrap's --json-status-fd, O_NONBLOCK */
    unsigned slot;
    char cgroup[64]; /* run cgroup name, "" without cgroups */
} cp_proc;

/* Start `lang`'s runner on `code` in slot `slot`. The code reaches the sandbox through
 * --ro-bind-data (never argv, never a host file). Returns 0, or -1 with err. */
int cp_sandbox_spawn(cp_sandbox *sb, cp_lang lang, const char *code, size_t code_len, unsigned slot,
                     cp_proc *proc, char *err, size_t errcap);

/* Start `lang`'s kernel (kernels/README.md) in slot `slot`: a long-lived process that
 * reads cells from proc->req_fd and reports on proc->ev_fd. Same confinement as a run.
 * Returns 0, or -1 with err (also when the language has no kernel here). */
int cp_sandbox_spawn_kernel(cp_sandbox *sb, cp_lang lang, unsigned slot, cp_proc *proc, char *err,
                            size_t errcap);
/* Whether `lang` has a kernel here (its file was found at init, the language runs). */
bool cp_sandbox_kernel_available(const cp_sandbox *sb, cp_lang lang);
/* Send `sig` to the program the sandbox runs (the namespace init's child; needs
 * init_pid). 0, or -1 when it cannot be found. */
int cp_sandbox_signal_main(cp_proc *proc, int sig);

/* Read bwrap's status fd (call when it is readable) to learn init_pid. Non-blocking.
 * Returns 0 while more may come, -1 at EOF or error: stop watching status_fd then (it
 * stays open until cp_sandbox_release). */
int cp_sandbox_read_status(cp_proc *proc);

/* Kill everything the run started: SIGKILL to the namespace init (waiting for the
 * kernel to tear the namespace down), then a freeze-kill of the run's cgroup, then the
 * bwrap process. Safe to call more than once and after the process has exited. Blocks
 * until the tree is dead: a few ms normally, about 2 s at worst. */
void cp_sandbox_kill(cp_sandbox *sb, cp_proc *proc);

typedef struct {
    int exit_code;     /* of the runner, -1 when killed by a signal */
    int signal;        /* 0 when it exited */
    bool oom_killed;   /* the memory cgroup's oom_kill counter rose */
    bool pids_hit;     /* the pids cgroup refused a fork */
    double cpu_s;      /* CPU time of the whole tree, when cgroups tell */
    size_t peak_bytes; /* peak memory of the whole tree, when cgroups tell */
} cp_proc_status;

/* Reap the bwrap process (which should have exited: its pidfd was readable; if not,
 * it is killed first), reap the namespace init if it was left to us (when bwrap died
 * before reporting the init's pid, e.g. killed right after spawn, the init is found by
 * a scan of /proc for children of ours that are pid-namespace inits under a sandbox
 * uid, killed and reaped through a pidfd; the server's other children, such as other
 * runs' bwrap processes, are never waited for here), read the cgroup
 * accounting, remove the run cgroup (after making sure it is empty) and close every fd
 * of proc. Blocks at most about a second while the kernel finishes a kill.
 * exit_code/signal: bwrap reports "killed by signal N" as exit code 128+N, so an
 * exit(128+N) of the runner itself also reads as signal N. */
void cp_sandbox_release(cp_sandbox *sb, cp_proc *proc, cp_proc_status *st);

/* The startup self-test (sandbox.md §3.10): probes that must succeed (hello world and
 * UTF-8 per language, a temp file, a thread) and probes that must fail (reading
 * /etc/shadow, reaching 127.0.0.1:`server_port` (skipped when ≤ 0), a TCP port and an
 * abstract socket the test binds, seeing more than 3 pids, anything in
 * /proc/1/environ, writing to /, unshare -U, ptrace and other denied syscalls, extra
 * fds, running as host uid 0, pids.max + 1 forks when cgroups are on). The probes run
 * the interpreters directly on the code (no runner file involved), in parallel on
 * slots 0..4: call it before any run is started. A language whose hello world fails is
 * switched off (cp_sandbox_lang_available); python must pass, it runs the probes.
 * Returns 0 when confinement holds; else -1 with what failed in err. */
int cp_sandbox_selftest(cp_sandbox *sb, int server_port, char *err, size_t errcap);

#endif
