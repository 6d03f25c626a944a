/* codepane-server: runs. Admission (a slot per concurrent run, a bounded queue, then
 * "busy"), and the supervisor thread that owns every child process: it spawns the
 * sandboxes (sandbox.h), reads their pipes with epoll, cleans output into UTF-8
 * chunks, enforces the wall timeout and the output cap, kills, reaps, and reports each
 * run through its sink. civetweb threads never block on a child: they submit and are
 * called back.
 *
 * Threads: every sink callback runs on the supervisor thread, in the run's order:
 * any number of chunk / result / error calls, then exactly one end. After end the run
 * is gone and its sink is never called again. Sinks must not block for long (queue the
 * bytes, do not write to a slow socket from here).
 *
 * Ownership: cp_runner_submit copies what it needs from the request; pointers handed
 * to sink callbacks are valid only during the call. */
#ifndef CP_RUNNER_H
#define CP_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lang.h"
#include "result.h"
#include "sandbox.h"

typedef struct {
    const char *status; /* "finished", "failed" or "cancelled" */
    const char *reason; /* why it stopped: "exit", "error", "timeout", "memory",
                           "output_limit", "cancelled", "killed" (server shutdown
                           or session released), "spawn" (could not start) */
    bool has_count;
    long long count;             /* execution count (per session and language) */
    double time_s;               /* wall time of the run */
    const char *execution_error; /* NULL when status is "finished" */
} cp_run_outcome;

typedef struct {
    void (*chunk)(void *ud, bool is_stderr, const char *utf8, size_t len);
    void (*result)(void *ud, const cp_result_item *item);
    void (*error)(void *ud, const char *name, const char *value, const char *traceback);
    void (*end)(void *ud, const cp_run_outcome *outcome);
} cp_run_sink;

typedef struct {
    unsigned max_running; /* concurrent sandboxes (= sandbox slots) */
    unsigned max_queued;  /* runs waiting for a slot before submit says busy */
    size_t max_output;    /* stdout + stderr bytes per run before output_limit */
    size_t chunk_max;     /* largest chunk handed to a sink */

    /* Kernels (kernels/README.md): a session's runs of a language in `kernel_langs`
     * (bit 1 << lang; the sandbox must have that kernel) go to one long-lived kernel
     * per session and language, which holds a slot while it lives. */
    unsigned kernel_langs;
    unsigned pool[CP_LANG_R + 1]; /* idle kernels kept started per language */
    double kernel_idle_s;         /* a session's kernel idle this long is stopped */
    unsigned kernels_per_session; /* live kernels per session (the LRU idle one goes) */
    double interrupt_grace_s;     /* after an interrupt, how long before the kill */
} cp_runner_config;

typedef struct cp_runner cp_runner;

/* Starts the supervisor thread. The runner borrows sb for its lifetime. */
int cp_runner_start(cp_runner **out, const cp_runner_config *cfg, cp_sandbox *sb, char *err,
                    size_t errcap);
/* Kills every run (each ends with reason "killed"), stops the thread, frees. Must not
 * be called from a sink callback (it waits for the supervisor thread). */
void cp_runner_stop(cp_runner *r);

/* Queue a run of `code` in `lang` with a wall timeout of timeout_s seconds (> 0, counted
 * from the sandbox's start, or for a kernel from the cell's start, never from queueing).
 * With a `session` (its id) and a language that runs in kernels, the run goes to the
 * session's kernel for that language (started when there is none), after the runs
 * queued there before it; its end reports the kernel's execution count. Otherwise (NULL
 * session) it runs in a sandbox of its own and reports `count`.
 * On success *id identifies the run for cancel and the sink will see exactly one end.
 * Returns -1 with a message (queue full: "busy: N runs are running and M waiting; try
 * again shortly") and then the sink is never called.
 *
 * Java: the code is first made into a complete Main.java (java_wrap.h); that source is
 * what reaches cp_sandbox_spawn. Output: stdout and stderr are delivered as read (one
 * chunk per read, at most chunk_max bytes, valid UTF-8); stdout + stderr + event bytes
 * past max_output end the run with reason "output_limit" after a visible marker chunk on
 * stderr. */
int cp_runner_submit(cp_runner *r, const char *session, cp_lang lang, const char *code,
                     size_t code_len, double timeout_s, long long count, const cp_run_sink *sink,
                     void *ud, uint64_t *id, char *err, size_t errcap);

/* Cancel a queued or running run: it ends with status "cancelled", reason "cancelled",
 * keeping the output produced so far. Unknown or finished ids are ignored. Safe from
 * any thread, also from inside a sink callback. */
void cp_runner_cancel(cp_runner *r, uint64_t id);

/* Like cp_runner_cancel, but the run ends with status "failed", reason "killed" (for a
 * session that is being released). Safe from any thread. */
void cp_runner_kill(cp_runner *r, uint64_t id);

/* The session is gone: stop its kernels (their running cells end "killed"). Safe from
 * any thread. */
void cp_runner_drop_session(cp_runner *r, const char *session);

/* Runs currently in a sandbox, and waiting. */
void cp_runner_counts(cp_runner *r, unsigned *running, unsigned *queued);

#endif
