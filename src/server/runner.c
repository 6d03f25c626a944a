/* codepane-server: runs. Admission, and the supervisor thread that owns every child
 * process. See runner.h for the contract.
 *
 * One thread, one epoll set. Other threads only touch the shared part of cp_runner
 * under its mutex (the waiting FIFO, the slot table, per-run cancel requests, the
 * stop flag) and wake the supervisor through an eventfd; everything else (the pipes,
 * the UTF-8 state, the deadlines, the sink calls) belongs to the supervisor alone, so
 * no sink is ever called with the mutex held and a sink may call back into
 * cp_runner_submit / cp_runner_cancel.
 *
 * The supervisor is also the thread that forks the sandboxes (bwrap's --die-with-parent
 * follows the forking *thread*), which is why it lives as long as the runner.
 *
 * Life of a run: submit (queued) → a free slot → cp_sandbox_spawn → pipes read as they
 * become readable → the bwrap process exits (its pidfd turns readable) → the pipes are
 * drained → cp_sandbox_release → sink->end. Timeouts, the output cap, cancel and stop
 * all go through kill_run, and then through that same ending: there is one way out.
 *
 * Kernels (kernels/README.md) are the other way to run: a session's runs of a language go
 * to one long-lived sandboxed process, cell after cell, and the run ends with the cell's
 * `done` (and both sync markers) instead of a process exit. A kernel holds a slot for its
 * life. A timeout, the output cap or a cancel first interrupt the cell (the kernel keeps
 * its state); a cell that does not stop within the grace period, a kernel that dies, and
 * a session that ends kill the kernel, and its running cell ends saying the state was
 * lost. Life of a kernel run: submit (kwait) → dispatch to the session's kernel (adopted
 * from the pool, or spawned) → its queue → exec request → events → done → end. */
#define _GNU_SOURCE
#include "runner.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "java_wrap.h"
#include "json.h"
#include "utf8.h"

/* ---- limits ------------------------------------------------------------------------- */

/* Largest chunk handed to a sink when the configuration leaves chunk_max at 0, and the
 * bounds a configured value is clamped to (a chunk must hold a few code points). */
#define CP_RUNNER_CHUNK_DEFAULT (16u * 1024)
#define CP_RUNNER_CHUNK_MIN     64u
#define CP_RUNNER_CHUNK_MAX     (1024u * 1024)
/* Longest event line (one rich result, e.g. a base64 PNG). Longer lines are dropped with
 * a visible note; event bytes also count toward max_output. */
#define CP_RUNNER_EVENT_LINE_MAX (8u * 1024 * 1024)
/* Output is handed on promptly but not write by write: bytes that arrive within this
 * many milliseconds of the first unsent byte go out as one chunk. Runtimes write in
 * tiny pieces (python -u: print("x") is two writes, "x" and "\n"; Rscript: one write per
 * vector element, so print(1:3) is five and a data frame thousands), and each chunk
 * becomes a frame on the wire. 0 restores one chunk per read. */
#define CP_RUNNER_COALESCE_MS 5
/* Java has no event pipe: its errors are read back from the last bytes of stderr. */
#define CP_RUNNER_JAVA_STDERR_KEEP (64u * 1024)
/* Before handling an event line, stdout and stderr are read first (so output printed
 * before the event comes before it), at most this many bytes each time. */
#define CP_RUNNER_DRAIN_BEFORE_EVENT (1024u * 1024)
/* After the process exited: bytes read per pipe at most (the writers are dead, so this
 * only bounds a pathological case). */
#define CP_RUNNER_FINAL_DRAIN_MAX (8u * 1024 * 1024)
/* A run that was killed but has not exited after this long is killed again (its ns init
 * may have become known since, or the cgroup caught up). */
#define CP_RUNNER_KILL_RETRY_S 2.0
/* Longest wall timeout accepted (a day); shorter limits are the front's business. */
#define CP_RUNNER_TIMEOUT_MAX_S 86400.0
/* epoll events handled per wakeup. */
#define CP_RUNNER_EPOLL_BATCH 64
/* Room for execution_error texts and the truncation marker. */
#define CP_RUNNER_TEXT_MAX 256
/* A session id as the runner keeps it (codepane ids are 26 characters). */
#define CP_RUNNER_SESSION_MAX 64
/* A kernel that has not said `ready` this long after its spawn is killed. */
#define CP_KERNEL_START_TIMEOUT_S 60.0
/* After a cell's `done`, how long to wait for its sync markers on fd 1/2 (a cell that
 * closed its own stdout never writes one). */
#define CP_KERNEL_SYNC_WAIT_S 0.5
/* Sessions whose kernel was stopped while idle (reaped or evicted) are remembered, so that
 * their next run of that language says the state is gone; at most this many. */
#define CP_KERNEL_LOST_MAX 256
static const char MSG_KERNEL_LOST[] =
    "[codepane: this session's %s kernel was stopped while idle (%s); this run starts a new "
    "one, so earlier variables, definitions and imports are gone]\n";
/* The sync marker a kernel writes to fd 1 and fd 2 before `done`: RS, the text, the id. */
#define CP_KERNEL_SYNC                                                                             \
    "\x1e"                                                                                         \
    "codepane-sync "
#define CP_KERNEL_SYNC_LINE_MAX 48

static const char MSG_TRUNCATED[] =
    "\n[codepane: output limit of %zu bytes reached; the run was stopped]\n";
static const char MSG_EVENT_DROPPED[] = "\n[codepane: a result larger than %u bytes was dropped]\n";

/* ---- types -------------------------------------------------------------------------- */

enum { CANCEL_NONE = 0, CANCEL_CANCELLED, CANCEL_KILLED };

/* What an epoll event is about; stored with the slot in epoll_event.data.u64. The KFD_
 * kinds are a kernel's fds (its stdout, stderr, events, requests, status, pidfd). */
enum { FD_OUT, FD_ERR, FD_EV, FD_STATUS, FD_PID, FD_KINDS };
enum { KFD_OUT = 16, KFD_ERR, KFD_EV, KFD_REQ, KFD_STATUS, KFD_PID, KFD_END };
enum { K_STARTING, K_READY };
#define WAKE_TAG UINT64_MAX

typedef struct run run;
typedef struct kernel kernel;

/* Lines arriving in pieces (an event pipe). */
typedef struct {
    char *buf;
    size_t len, cap;
    bool skip; /* dropping an over-long line up to its newline */
} linebuf;

typedef struct {
    int fd; /* -1 once closed or not watched */
    bool eof;
    cp_utf8 utf8;
    char *pend; /* cleaned text not yet handed on (chunk_max bytes, allocated lazily) */
    size_t plen;
    double pend_at; /* when its first byte arrived */
} stream;

struct run {
    run *next; /* in the waiting FIFO */
    uint64_t id;
    cp_lang lang;
    char *code;
    size_t code_len;
    double timeout_s;
    long long count;
    cp_run_sink sink;
    void *ud;
    int cancel_req; /* CANCEL_*: set by any thread under the mutex */

    /* Supervisor-only from here on. */
    int cancel; /* the request the supervisor has acted on */
    bool spawned;
    cp_proc proc;
    unsigned slot;
    stream out, err;
    int ev_fd, status_fd, pid_fd; /* as watched; -1 when not (any more) */
    bool exited;
    double t_spawn, t_exit, deadline, kill_retry_at;
    bool killed, timed_out, limit_hit;
    size_t used; /* stdout + stderr + event bytes so far */

    linebuf ev; /* the event line being assembled */

    bool error_seen;
    char *error_text; /* "<name>: <value>" of the first error */

    char *jerr; /* Java: the last CP_RUNNER_JAVA_STDERR_KEEP bytes of stderr (cleaned) */
    size_t jerr_len;

    /* Kernel runs only. */
    char session[CP_RUNNER_SESSION_MAX]; /* "" for a run in a sandbox of its own */
    run *reg_prev, *reg_next;            /* in the registry of kernel runs (under mu) */
    kernel *k;                           /* the kernel it is queued on or running in (supervisor) */
    run *kq_next;                        /* in that kernel's queue */
    bool in_kernel;                      /* its cell was sent */
    bool interrupted;                    /* an interrupt was sent for it */
    double grace_at;                     /* when an interrupted cell that did not stop is killed */
    bool done_seen;
    bool done_ok, done_interrupted;
    bool has_done_count;
    long long done_count;
    double done_at;
    unsigned syncs; /* bit 0: the stdout marker of this cell seen, bit 1: stderr's */
};

struct kernel {
    kernel *next;
    char session[CP_RUNNER_SESSION_MAX]; /* "" while in the pool */
    cp_lang lang;
    unsigned slot;
    int state;
    cp_proc proc;
    int out_fd, err_fd, ev_fd, req_fd, status_fd, pid_fd; /* as watched; -1 when not */
    linebuf ev;
    char mark[2][CP_KERNEL_SYNC_LINE_MAX]; /* a marker cut by a read, per stream */
    size_t markl[2];
    char *req; /* request bytes not yet written */
    size_t reqlen, reqoff;
    run *cur, *q_head, *q_tail;
    double started, last_used;
    bool killed;
    double kill_retry_at;
    int end_cancel;       /* CANCEL_KILLED when the session is gone: its queue ends too */
    const char *idle_why; /* stopped while idle ("idle for too long", "its slot was needed") */
};

struct cp_runner {
    cp_runner_config cfg;
    cp_sandbox *sb;
    pthread_t thread;
    int epfd, wakefd;

    pthread_mutex_t mu; /* guards the fields down to `drops`, and run.cancel_req */
    run *wait_head, *wait_tail;
    unsigned nwaiting, nrunning;
    run **slots;     /* cfg.max_running entries; written by the supervisor under mu */
    kernel **kslots; /* the same slots held by kernels; written by the supervisor under mu */
    uint64_t next_id;
    bool cancel_pending, stopping;
    run *kwait_head, *kwait_tail;         /* kernel runs not yet dispatched to a kernel */
    run *registry;                        /* every kernel run from submit to end */
    unsigned kwaiting, krunning;          /* kernel runs queued (anywhere) and executing */
    char (*drops)[CP_RUNNER_SESSION_MAX]; /* sessions whose kernels must go */
    size_t ndrops, capdrops;

    /* Supervisor-only: the live kernels, and the languages whose pooled kernel died
     * before it was ready (their pool is not refilled: it would only die again). */
    kernel *kernels;
    bool pool_broken[CP_LANG_R + 1];
    struct {
        char session[CP_RUNNER_SESSION_MAX];
        cp_lang lang;
        const char *why;
    } lost[CP_KERNEL_LOST_MAX]; /* a ring */
    size_t nlost;

    /* Supervisor-only scratch buffers. */
    char *rbuf; /* one read: chunk_max bytes */
    char *cbuf; /* its cleaned form: CP_UTF8_OUT_MAX(chunk_max) */
};

/* ---- small helpers -------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_err(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errcap, const char *fmt, ...)
{
    if (!err || errcap == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
}

static void wake(cp_runner *r)
{
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(r->wakefd, &one, sizeof one);
    } while (n < 0 && errno == EINTR);
    /* EAGAIN means the counter is already non-zero: the supervisor will wake anyway. */
}

static void unwatch(cp_runner *r, int *fd)
{
    if (*fd >= 0) epoll_ctl(r->epfd, EPOLL_CTL_DEL, *fd, NULL);
    *fd = -1;
}

static int watch(cp_runner *r, int fd, unsigned slot, int kind)
{
    if (fd < 0) return 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ((uint64_t)slot << 8) | (uint64_t)kind};
    return epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void free_run(run *u)
{
    if (!u) return;
    free(u->code);
    free(u->ev.buf);
    free(u->error_text);
    free(u->jerr);
    free(u->out.pend);
    free(u->err.pend);
    free(u);
}

/* ---- output ------------------------------------------------------------------------------ */

/* Hand cleaned text to the sink in pieces of at most chunk_max bytes, cut at code point
 * boundaries (cleaning can make text longer than the read it came from). */
static void emit_text(cp_runner *r, run *u, bool is_err, const char *s, size_t n)
{
    size_t max = r->cfg.chunk_max;
    while (n > 0) {
        size_t piece = n;
        if (piece > max) {
            piece = max;
            while (piece > 0 && ((unsigned char)s[piece] & 0xC0) == 0x80)
                piece--;
            if (piece == 0) piece = max; /* cannot happen with valid UTF-8 and max ≥ 4 */
        }
        if (u->sink.chunk) u->sink.chunk(u->ud, is_err, s, piece);
        s += piece;
        n -= piece;
    }
}

static void flush_pending(cp_runner *r, run *u, bool is_err)
{
    stream *st = is_err ? &u->err : &u->out;
    if (!st->plen) return;
    size_t n = st->plen;
    st->plen = 0;
    emit_text(r, u, is_err, st->pend, n);
}

/* When the run's held-back output is due (the earlier stream's), or -1 when none is held. */
static double pending_due(const run *u)
{
    double due = -1;
    for (int k = 0; k < 2; k++) {
        const stream *st = k ? &u->err : &u->out;
        double at = st->pend_at + CP_RUNNER_COALESCE_MS / 1000.0;
        if (st->plen && (due < 0 || at < due)) due = at;
    }
    return due;
}

/* Hand on held-back output whose coalescing time is over. */
static void flush_due(cp_runner *r, run *u, double now)
{
    for (int k = 0; k < 2; k++) {
        const stream *st = k ? &u->err : &u->out;
        if (st->plen && now >= st->pend_at + CP_RUNNER_COALESCE_MS / 1000.0)
            flush_pending(r, u, k == 1);
    }
}

static void flush_all_pending(cp_runner *r, run *u)
{
    flush_pending(r, u, false);
    flush_pending(r, u, true);
}

/* Cleaned output on its way to the sink: held for up to CP_RUNNER_COALESCE_MS so that
 * a burst of small writes becomes one chunk. Order across the two streams is kept: text
 * for one stream first sends what the other one holds. */
static void queue_text(cp_runner *r, run *u, bool is_err, const char *s, size_t n)
{
    stream *st = is_err ? &u->err : &u->out;
    flush_pending(r, u, !is_err);
    if (st->plen + n > r->cfg.chunk_max) flush_pending(r, u, is_err);
    if (CP_RUNNER_COALESCE_MS == 0 || n >= r->cfg.chunk_max) {
        emit_text(r, u, is_err, s, n);
        return;
    }
    if (!st->pend) {
        st->pend = malloc(r->cfg.chunk_max);
        if (!st->pend) {
            emit_text(r, u, is_err, s, n);
            return;
        }
    }
    if (!st->plen) st->pend_at = now_s();
    memcpy(st->pend + st->plen, s, n);
    st->plen += n;
}

/* Keep the tail of a Java run's stderr for cp_java_parse_error. */
static void keep_java_stderr(run *u, const char *s, size_t n)
{
    const size_t keep = CP_RUNNER_JAVA_STDERR_KEEP;
    if (!u->jerr) {
        u->jerr = malloc(2 * keep);
        if (!u->jerr) return;
    }
    if (n >= keep) {
        memcpy(u->jerr, s + n - keep, keep);
        u->jerr_len = keep;
        return;
    }
    if (u->jerr_len + n > 2 * keep) {
        size_t drop = u->jerr_len + n - keep;
        memmove(u->jerr, u->jerr + drop, u->jerr_len - drop);
        u->jerr_len -= drop;
    }
    memcpy(u->jerr + u->jerr_len, s, n);
    u->jerr_len += n;
}

static void kill_run(cp_runner *r, run *u);

/* The output cap was passed: say so where the user will see it, and stop the run. */
static void hit_limit(cp_runner *r, run *u)
{
    if (u->limit_hit) return;
    u->limit_hit = true;
    flush_all_pending(r, u);
    char msg[CP_RUNNER_TEXT_MAX];
    int n = snprintf(msg, sizeof msg, MSG_TRUNCATED, r->cfg.max_output);
    emit_text(r, u, true, msg, (size_t)n);
    kill_run(r, u);
}

/* Bytes of a run's stdout or stderr: count them against the cap, clean, deliver. */
static void deliver(cp_runner *r, run *u, bool is_err, const char *raw, size_t n)
{
    if (u->limit_hit) return;
    size_t room = r->cfg.max_output - u->used;
    bool over = n > room;
    if (over) n = room;
    u->used += n;
    stream *st = is_err ? &u->err : &u->out;
    size_t m = cp_utf8_feed(&st->utf8, raw, n, r->cbuf);
    if (m) {
        if (is_err && u->lang == CP_LANG_JAVA) keep_java_stderr(u, r->cbuf, m);
        queue_text(r, u, is_err, r->cbuf, m);
    }
    if (over) {
        cp_utf8_init(&st->utf8); /* a code point cut by the cap is dropped, not replaced */
        hit_limit(r, u);
    }
}

/* One read from stdout or stderr. Returns the bytes read, 0 at EOF (the stream is then
 * closed off), -1 when nothing was available. */
static ssize_t read_stream(cp_runner *r, run *u, bool is_err)
{
    stream *st = is_err ? &u->err : &u->out;
    if (st->fd < 0) return 0;
    ssize_t n;
    do {
        n = read(st->fd, r->rbuf, r->cfg.chunk_max);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        deliver(r, u, is_err, r->rbuf, (size_t)n);
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -1;
    /* EOF (or a read error, treated the same): flush a held-back partial code point. */
    unwatch(r, &st->fd);
    st->eof = true;
    if (!u->limit_hit) {
        char tail[4];
        size_t m = cp_utf8_finish(&st->utf8, tail);
        if (m) {
            if (is_err && u->lang == CP_LANG_JAVA) keep_java_stderr(u, tail, m);
            queue_text(r, u, is_err, tail, m);
        }
    }
    flush_pending(r, u, is_err);
    return 0;
}

/* Read a stream until it has nothing more right now (or `max` bytes were read). */
static void drain_stream(cp_runner *r, run *u, bool is_err, size_t max)
{
    size_t total = 0;
    while (total < max) {
        ssize_t n = read_stream(r, u, is_err);
        if (n <= 0) break;
        total += (size_t)n;
    }
}

/* ---- events ------------------------------------------------------------------------------- */

/* {"type":"result","mime":{…},"isMainResult":b}: the runners write text MIME values as
 * strings, and the core maps the bundle to an item (the one MIME table, result.h). A
 * bundle with nothing the protocol carries is dropped. */
static void on_result_event(run *u, const cJSON *ev)
{
    cp_result_item item;
    memset(&item, 0, sizeof item);
    cp_item_from_bundle(&item, cJSON_GetObjectItemCaseSensitive(ev, "mime"), false);
    bool any = item.text || item.html || item.markdown || item.png || item.jpeg || item.svg ||
               item.json || item.latex || item.chart;
    item.is_main_result = cp_json_truthy(cJSON_GetObjectItemCaseSensitive(ev, "isMainResult")) ||
                          cp_json_truthy(cJSON_GetObjectItemCaseSensitive(ev, "is_main_result"));
    if (any && u->sink.result) u->sink.result(u->ud, &item);
    cp_item_free(&item);
}

/* Report an error (an event, or Java's stderr read back); the first one names the run's
 * execution_error. */
static void report_error(run *u, const char *name, const char *value, const char *traceback)
{
    if (!u->error_seen) {
        u->error_seen = true;
        size_t len = strlen(name) + strlen(value) + 3;
        u->error_text = malloc(len);
        if (u->error_text) {
            if (*value)
                snprintf(u->error_text, len, "%s: %s", name, value);
            else
                snprintf(u->error_text, len, "%s", name);
        }
    }
    if (u->sink.error) u->sink.error(u->ud, name, value, traceback);
}

static void on_event_line(cp_runner *r, run *u, const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (len == 0) return;
    cJSON *ev = cp_json_parse(line, len, NULL, 0);
    if (!ev) return;         /* not ours to show: the runner writes valid JSON lines only */
    flush_all_pending(r, u); /* output printed before the event goes first */
    const char *type = cp_json_get_string(ev, "type");
    if (type && strcmp(type, "result") == 0) {
        on_result_event(u, ev);
    } else if (type && strcmp(type, "error") == 0) {
        const char *name = cp_json_get_string(ev, "name");
        const char *value = cp_json_get_string(ev, "value");
        const char *tb = cp_json_get_string(ev, "traceback");
        report_error(u, name ? name : "Error", value ? value : "", tb ? tb : "");
    }
    cJSON_Delete(ev);
}

static void event_dropped(cp_runner *r, run *u)
{
    flush_all_pending(r, u);
    char msg[CP_RUNNER_TEXT_MAX];
    int n = snprintf(msg, sizeof msg, MSG_EVENT_DROPPED, CP_RUNNER_EVENT_LINE_MAX);
    emit_text(r, u, true, msg, (size_t)n);
}

/* Bytes of an event pipe: split into lines and hand each complete one to on_line; a line
 * longer than CP_RUNNER_EVENT_LINE_MAX (or one memory ran out for) goes to on_drop
 * instead, once. */
typedef void (*line_fn)(cp_runner *r, void *ctx, const char *line, size_t len);
typedef void (*drop_fn)(cp_runner *r, void *ctx);

static void feed_lines(cp_runner *r, linebuf *lb, const char *p, size_t n, line_fn on_line,
                       drop_fn on_drop, void *ctx)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (!lb->skip) {
            if (lb->len + take > CP_RUNNER_EVENT_LINE_MAX) {
                lb->skip = true;
                lb->len = 0;
                on_drop(r, ctx);
            } else {
                if (lb->len + take > lb->cap) {
                    size_t cap = lb->cap ? lb->cap : 4096;
                    while (cap < lb->len + take)
                        cap *= 2;
                    char *b = realloc(lb->buf, cap);
                    if (!b) {
                        lb->skip = true;
                        lb->len = 0;
                        on_drop(r, ctx);
                        goto next;
                    }
                    lb->buf = b;
                    lb->cap = cap;
                }
                memcpy(lb->buf + lb->len, p, take);
                lb->len += take;
            }
        }
    next:
        if (!nl) return;
        if (!lb->skip) on_line(r, ctx, lb->buf, lb->len);
        lb->skip = false;
        lb->len = 0;
        p += take + 1;
        n -= take + 1;
    }
}

static void run_line(cp_runner *r, void *ctx, const char *line, size_t len)
{
    on_event_line(r, ctx, line, len);
}

static void run_line_dropped(cp_runner *r, void *ctx)
{
    event_dropped(r, ctx);
}

static void feed_events(cp_runner *r, run *u, const char *p, size_t n)
{
    feed_lines(r, &u->ev, p, n, run_line, run_line_dropped, u);
}

/* One read from the event pipe. Returns bytes read, 0 at EOF, -1 when none available. */
static ssize_t read_events(cp_runner *r, run *u)
{
    if (u->ev_fd < 0) return 0;
    ssize_t n;
    do {
        n = read(u->ev_fd, r->rbuf, r->cfg.chunk_max);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        if (u->limit_hit) return n; /* the run is being stopped: discard */
        size_t room = r->cfg.max_output - u->used;
        size_t take = (size_t)n > room ? room : (size_t)n;
        u->used += take;
        feed_events(r, u, r->rbuf, take);
        if (take < (size_t)n) {
            u->ev.len = 0; /* the line cut by the cap is not parsed */
            hit_limit(r, u);
        }
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -1;
    unwatch(r, &u->ev_fd);
    /* A last line without its newline still counts. */
    if (!u->ev.skip && u->ev.len && !u->limit_hit) on_event_line(r, u, u->ev.buf, u->ev.len);
    u->ev.len = 0;
    return 0;
}

/* ---- kill and end --------------------------------------------------------------------------- */

static void kernel_interrupt(cp_runner *r, kernel *k, run *u);

/* Stop a run: a sandbox of its own is killed; a kernel cell is interrupted (the kernel is
 * killed only if the cell does not stop within the grace period). */
static void kill_run(cp_runner *r, run *u)
{
    if (u->k) {
        if (u->in_kernel && u->k->cur == u) kernel_interrupt(r, u->k, u);
        return;
    }
    if (!u->spawned || u->exited) return;
    (void)cp_sandbox_read_status(&u->proc); /* the ns init may have become known just now */
    cp_sandbox_kill(r->sb, &u->proc);
    u->killed = true;
    u->kill_retry_at = now_s() + CP_RUNNER_KILL_RETRY_S;
}

static void fill_outcome(const cp_runner *r, const run *u, const cp_proc_status *st,
                         cp_run_outcome *o, char *text, size_t textcap)
{
    memset(o, 0, sizeof *o);
    o->has_count = true;
    o->count = u->count;
    o->time_s = u->spawned ? u->t_exit - u->t_spawn : 0.0;
    o->status = "failed";
    if (u->limit_hit) {
        o->reason = "output_limit";
        snprintf(text, textcap, "OutputLimitError: the run wrote more than %zu bytes of output",
                 r->cfg.max_output);
    } else if (st && st->oom_killed) {
        o->reason = "memory";
        snprintf(text, textcap, "MemoryError: the run exceeded its memory limit");
    } else if (u->timed_out) {
        o->reason = "timeout";
        snprintf(text, textcap, "TimeoutError: the run exceeded its time limit of %g s",
                 u->timeout_s);
    } else if (u->cancel == CANCEL_CANCELLED) {
        o->status = "cancelled";
        o->reason = "cancelled";
        snprintf(text, textcap, "cancelled");
    } else if (u->cancel == CANCEL_KILLED) {
        o->reason = "killed";
        snprintf(text, textcap, "killed: the run was stopped by the server");
    } else if (u->error_seen) {
        o->reason = "error";
        snprintf(text, textcap, "%s", u->error_text ? u->error_text : "error");
    } else if (st && st->signal != 0) {
        o->reason = "exit";
        snprintf(text, textcap, "killed by signal %d", st->signal);
    } else if (st && st->exit_code != 0) {
        o->reason = "exit";
        snprintf(text, textcap, "exit code %d", st->exit_code);
    } else {
        o->status = "finished";
        o->reason = "exit";
        text = NULL;
    }
    o->execution_error = text;
}

/* End a run that never reached a sandbox (cancelled or killed while queued, or the
 * spawn failed). The caller has already taken it out of the queue. */
static void end_unspawned(run *u, int cancel, const char *spawn_error)
{
    cp_run_outcome o;
    char text[CP_RUNNER_TEXT_MAX];
    memset(&o, 0, sizeof o);
    o.has_count = true;
    o.count = u->count;
    if (spawn_error) {
        o.status = "failed";
        o.reason = "spawn";
        snprintf(text, sizeof text, "%s", spawn_error);
    } else if (cancel == CANCEL_CANCELLED) {
        o.status = "cancelled";
        o.reason = "cancelled";
        snprintf(text, sizeof text, "cancelled");
    } else {
        o.status = "failed";
        o.reason = "killed";
        snprintf(text, sizeof text, "killed: the run was stopped by the server");
    }
    o.execution_error = text;
    if (u->sink.end) u->sink.end(u->ud, &o);
    free_run(u);
}

static void give_back_slot(cp_runner *r, run *u)
{
    pthread_mutex_lock(&r->mu);
    if (r->slots[u->slot] == u) r->slots[u->slot] = NULL;
    r->nrunning--;
    pthread_mutex_unlock(&r->mu);
}

/* The bwrap process has exited: take everything left in the pipes, release the sandbox
 * and report. */
static void finish_run(cp_runner *r, run *u)
{
    u->exited = true;
    u->t_exit = now_s();
    unwatch(r, &u->pid_fd);
    unwatch(r, &u->status_fd);
    /* The ns init is gone, so the kernel is killing whatever else ran in the sandbox;
     * everything the program wrote before it ended is in the pipes now. Read until they
     * are empty (not until EOF: a dying process may still hold a write end), and do not
     * kill by pid any more (the pids may already belong to someone else); release does
     * the cgroup sweep. */
    drain_stream(r, u, false, CP_RUNNER_FINAL_DRAIN_MAX);
    drain_stream(r, u, true, CP_RUNNER_FINAL_DRAIN_MAX);
    for (size_t total = 0; total < CP_RUNNER_FINAL_DRAIN_MAX;) {
        ssize_t n = read_events(r, u);
        if (n <= 0) break;
        total += (size_t)n;
    }
    /* Streams that are still open (a writer that outlived the kill by a moment): flush
     * their held-back bytes as if they had ended. */
    for (int k = 0; k < 2; k++) {
        stream *st = k ? &u->err : &u->out;
        if (!st->eof && !u->limit_hit) {
            char tail[4];
            size_t m = cp_utf8_finish(&st->utf8, tail);
            if (m) queue_text(r, u, k == 1, tail, m);
        }
        unwatch(r, &st->fd);
    }
    flush_all_pending(r, u);
    if (!u->ev.skip && u->ev.len && !u->limit_hit) on_event_line(r, u, u->ev.buf, u->ev.len);
    unwatch(r, &u->ev_fd);

    cp_proc_status st;
    memset(&st, 0, sizeof st);
    cp_sandbox_release(r->sb, &u->proc, &st);

    bool failed_exit = st.exit_code != 0 || st.signal != 0;
    if (u->lang == CP_LANG_JAVA && failed_exit && !u->error_seen && !u->killed && u->jerr_len) {
        char *name = NULL, *value = NULL, *tb = NULL;
        if (cp_java_parse_error(u->jerr, u->jerr_len, &name, &value, &tb) == 1)
            report_error(u, name, value, tb);
        free(name);
        free(value);
        free(tb);
    }

    give_back_slot(r, u);
    cp_run_outcome o;
    char text[CP_RUNNER_TEXT_MAX];
    fill_outcome(r, u, &st, &o, text, sizeof text);
    if (u->sink.end) u->sink.end(u->ud, &o);
    free_run(u);
}

/* ---- start ------------------------------------------------------------------------------------
 */

static void start_run(cp_runner *r, run *u)
{
    char err[CP_RUNNER_TEXT_MAX];
    u->out.fd = u->err.fd = u->ev_fd = u->status_fd = u->pid_fd = -1;
    cp_utf8_init(&u->out.utf8);
    cp_utf8_init(&u->err.utf8);
    memset(&u->proc, 0, sizeof u->proc);
    u->proc.pidfd = u->proc.init_pidfd = -1;
    u->proc.out_fd = u->proc.err_fd = u->proc.ev_fd = u->proc.status_fd = -1;
    err[0] = '\0';
    u->t_spawn = now_s();
    unsigned slot = u->slot;
    if (cp_sandbox_spawn(r->sb, u->lang, u->code, u->code_len, slot, &u->proc, err, sizeof err) !=
        0) {
        give_back_slot(r, u);
        end_unspawned(u, CANCEL_NONE, err[0] ? err : "could not start the sandbox");
        return;
    }
    u->spawned = true;
    u->deadline = u->t_spawn + u->timeout_s;
    free(u->code); /* the sandbox has its copy */
    u->code = NULL;
    u->out.fd = u->proc.out_fd;
    u->err.fd = u->proc.err_fd;
    u->ev_fd = u->proc.ev_fd;
    u->status_fd = u->proc.status_fd;
    u->pid_fd = u->proc.pidfd;
    if (watch(r, u->out.fd, slot, FD_OUT) || watch(r, u->err.fd, slot, FD_ERR) ||
        watch(r, u->ev_fd, slot, FD_EV) || watch(r, u->status_fd, slot, FD_STATUS) ||
        watch(r, u->pid_fd, slot, FD_PID) || u->pid_fd < 0) {
        /* Without the pidfd in the set the run could never end: stop it at once. The
         * release below reaps (the kill makes it exit promptly). */
        snprintf(err, sizeof err, "could not watch the sandbox: %s",
                 strerror(errno ? errno : EINVAL));
        kill_run(r, u);
        u->exited = true;
        unwatch(r, &u->out.fd);
        unwatch(r, &u->err.fd);
        unwatch(r, &u->ev_fd);
        unwatch(r, &u->status_fd);
        unwatch(r, &u->pid_fd);
        cp_proc_status st;
        cp_sandbox_release(r->sb, &u->proc, &st);
        give_back_slot(r, u);
        u->spawned = false;
        end_unspawned(u, CANCEL_NONE, err);
    }
}

/* ---- kernels -------------------------------------------------------------------------------- */

static bool kernel_lang(const cp_runner *r, cp_lang lang)
{
    return (r->cfg.kernel_langs & (1u << lang)) && cp_sandbox_kernel_available(r->sb, lang);
}

static void registry_remove(cp_runner *r, run *u)
{
    /* mu held */
    if (u->reg_prev)
        u->reg_prev->reg_next = u->reg_next;
    else if (r->registry == u)
        r->registry = u->reg_next;
    if (u->reg_next) u->reg_next->reg_prev = u->reg_prev;
    u->reg_prev = u->reg_next = NULL;
}

/* A kernel run leaves the runner: out of the registry and the counts. */
static void kernel_run_gone(cp_runner *r, run *u)
{
    pthread_mutex_lock(&r->mu);
    registry_remove(r, u);
    if (u->in_kernel)
        r->krunning--;
    else
        r->kwaiting--;
    pthread_mutex_unlock(&r->mu);
}

/* End a kernel run whose cell never ran (cancelled or killed while queued, or no kernel
 * could be started for it). */
static void end_kernel_unsent(cp_runner *r, run *u, int cancel, const char *error)
{
    kernel_run_gone(r, u);
    end_unspawned(u, cancel, error);
}

/* Queue bytes for the kernel's request pipe and write what fits now; the rest goes out
 * when the pipe has room (KFD_REQ). */
static void kernel_flush_req(cp_runner *r, kernel *k);

static void kernel_send(cp_runner *r, kernel *k, const char *line, size_t len)
{
    if (k->req_fd < 0) return;
    size_t have = k->reqlen - k->reqoff;
    char *b = malloc(have + len);
    if (!b) return; /* the cell's deadline still ends it */
    if (have) memcpy(b, k->req + k->reqoff, have);
    memcpy(b + have, line, len);
    free(k->req);
    k->req = b;
    k->reqlen = have + len;
    k->reqoff = 0;
    kernel_flush_req(r, k);
}

static void kernel_flush_req(cp_runner *r, kernel *k)
{
    while (k->req_fd >= 0 && k->reqoff < k->reqlen) {
        ssize_t n = write(k->req_fd, k->req + k->reqoff, k->reqlen - k->reqoff);
        if (n > 0) {
            k->reqoff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct epoll_event ev = {.events = EPOLLOUT,
                                     .data.u64 = ((uint64_t)k->slot << 8) | KFD_REQ};
            epoll_ctl(r->epfd, EPOLL_CTL_ADD, k->req_fd, &ev);
            return;
        } else {
            break; /* the kernel is gone: its pidfd will say so */
        }
    }
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, k->req_fd, NULL);
    free(k->req);
    k->req = NULL;
    k->reqlen = k->reqoff = 0;
}

static void kernel_request(cp_runner *r, kernel *k, const char *op, const run *u)
{
    cJSON *o = cJSON_CreateObject();
    char *line = NULL;
    if (o && cJSON_AddStringToObject(o, "op", op) &&
        cJSON_AddNumberToObject(o, "id", (double)u->id) &&
        (strcmp(op, "exec") != 0 || cJSON_AddStringToObject(o, "code", u->code)))
        line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!line) return;
    size_t n = strlen(line);
    line[n] = '\n'; /* replaces the NUL: send n + 1 bytes */
    kernel_send(r, k, line, n + 1);
    free(line);
}

/* Interrupt the running cell (a timeout, the output cap, a cancel): the request for the
 * kernels that read it (Node), SIGINT for those that act on the signal (kernels/README).
 * If it has not ended by grace_at, check_deadlines kills the kernel. */
static void kernel_interrupt(cp_runner *r, kernel *k, run *u)
{
    if (u->interrupted || k->killed) return;
    u->interrupted = true;
    u->grace_at = now_s() + r->cfg.interrupt_grace_s;
    kernel_request(r, k, "interrupt", u);
    (void)cp_sandbox_read_status(&k->proc);
    /* A stopped kernel (the cell sent itself SIGSTOP) cannot act on SIGINT: it gets the
     * SIGINT first, pending, then SIGCONT, so that it acts on it before the cell's next
     * statement runs (the other order lets a loaded machine run some of the cell first). */
    cp_sandbox_signal_main(&k->proc, SIGINT);
    cp_sandbox_signal_main(&k->proc, SIGCONT);
}

static void kernel_kill(cp_runner *r, kernel *k)
{
    if (k->killed) {
        if (now_s() < k->kill_retry_at) return;
    }
    (void)cp_sandbox_read_status(&k->proc);
    cp_sandbox_kill(r->sb, &k->proc);
    k->killed = true;
    k->kill_retry_at = now_s() + CP_RUNNER_KILL_RETRY_S;
}

/* Start the next queued cell when the kernel is ready and free. */
static void kernel_next(cp_runner *r, kernel *k)
{
    while (k->state == K_READY && !k->cur && !k->killed && k->q_head) {
        run *u = k->q_head;
        k->q_head = u->kq_next;
        if (!k->q_head) k->q_tail = NULL;
        u->kq_next = NULL;
        if (u->cancel != CANCEL_NONE) {
            end_kernel_unsent(r, u, u->cancel, NULL);
            continue;
        }
        pthread_mutex_lock(&r->mu);
        r->kwaiting--;
        r->krunning++;
        u->in_kernel = true;
        pthread_mutex_unlock(&r->mu);
        k->cur = u;
        /* A leading byte order mark: Python and R read a file with one as their one-process
         * runners do (utf-8-sig), but a kernel gets the cell as a string. */
        if ((u->lang == CP_LANG_PYTHON || u->lang == CP_LANG_R) &&
            strncmp(u->code, "\xEF\xBB\xBF", 3) == 0)
            memmove(u->code, u->code + 3, strlen(u->code + 3) + 1);
        cp_utf8_init(&u->out.utf8);
        cp_utf8_init(&u->err.utf8);
        size_t kept = r->nlost < CP_KERNEL_LOST_MAX ? r->nlost : CP_KERNEL_LOST_MAX;
        for (size_t i = 0; i < kept; i++) {
            if (r->lost[i].session[0] && r->lost[i].lang == u->lang &&
                strcmp(r->lost[i].session, u->session) == 0) {
                char msg[CP_RUNNER_TEXT_MAX];
                int n = snprintf(msg, sizeof msg, MSG_KERNEL_LOST, cp_lang_name(u->lang),
                                 r->lost[i].why);
                emit_text(r, u, true, msg, (size_t)n);
                r->lost[i].session[0] = '\0';
            }
        }
        u->t_spawn = now_s();
        u->deadline = u->t_spawn + u->timeout_s;
        kernel_request(r, k, "exec", u);
        free(u->code); /* the kernel has its copy (or the request buffer has) */
        u->code = NULL;
    }
}

static void kernel_end_cell(cp_runner *r, kernel *k, bool lost, const cp_proc_status *st);

/* The cell is over when its done and both sync markers are in (or the markers are late:
 * a cell that closed its own stdout writes none). */
static void kernel_try_complete(cp_runner *r, kernel *k)
{
    run *u = k->cur;
    if (!u || !u->done_seen) return;
    if (u->syncs != 3 && now_s() < u->done_at + CP_KERNEL_SYNC_WAIT_S) return;
    kernel_end_cell(r, k, false, NULL);
    kernel_next(r, k);
}

static void kernel_outcome(const cp_runner *r, const run *u, bool lost, const cp_proc_status *st,
                           cp_run_outcome *o, char *text, size_t textcap)
{
    static const char LOST[] = "; the kernel was restarted and its state (variables, "
                               "definitions, imports) was lost";
    memset(o, 0, sizeof *o);
    o->has_count = !lost && u->has_done_count;
    o->count = u->done_count;
    o->time_s = (u->done_seen ? u->done_at : now_s()) - u->t_spawn;
    o->status = "failed";
    const char *tail = lost ? LOST : "";
    if (u->limit_hit) {
        o->reason = "output_limit";
        snprintf(text, textcap, "OutputLimitError: the run wrote more than %zu bytes of output%s",
                 r->cfg.max_output, tail);
    } else if (lost && st && st->oom_killed) {
        o->reason = "memory";
        snprintf(text, textcap, "MemoryError: the run exceeded its memory limit%s", tail);
    } else if (u->timed_out) {
        o->reason = "timeout";
        snprintf(text, textcap, "TimeoutError: the run exceeded its time limit of %g s%s",
                 u->timeout_s,
                 lost ? "; it did not stop when interrupted, so the kernel was restarted and "
                        "its state (variables, definitions, imports) was lost"
                      : "");
    } else if (u->cancel == CANCEL_CANCELLED) {
        o->status = "cancelled";
        o->reason = "cancelled";
        snprintf(text, textcap, "cancelled");
    } else if (u->cancel == CANCEL_KILLED) {
        o->reason = "killed";
        snprintf(text, textcap, "killed: the run was stopped by the server");
    } else if (lost) {
        o->reason = "exit";
        if (st && st->signal)
            snprintf(text, textcap, "KernelDied: the kernel was killed by signal %d%s", st->signal,
                     tail);
        else
            snprintf(text, textcap, "KernelDied: the kernel exited with code %d%s",
                     st ? st->exit_code : -1, tail);
    } else if (u->error_seen || !u->done_ok) {
        o->reason = "error";
        snprintf(text, textcap, "%s", u->error_text ? u->error_text : "error");
    } else {
        o->status = "finished";
        o->reason = "exit";
        text = NULL;
    }
    o->execution_error = text;
}

/* End the running cell: its output flushed, its sink told, the run freed. */
static void kernel_end_cell(cp_runner *r, kernel *k, bool lost, const cp_proc_status *st)
{
    run *u = k->cur;
    if (!u) return;
    k->cur = NULL;
    k->last_used = now_s();
    for (int s = 0; s < 2; s++) {
        stream *sm = s ? &u->err : &u->out;
        if (u->limit_hit) continue;
        char tail[4];
        size_t m = cp_utf8_finish(&sm->utf8, tail);
        if (m) queue_text(r, u, s == 1, tail, m);
    }
    flush_all_pending(r, u);
    cp_run_outcome o;
    char text[CP_RUNNER_TEXT_MAX];
    kernel_outcome(r, u, lost, st, &o, text, sizeof text);
    kernel_run_gone(r, u);
    if (u->sink.end) u->sink.end(u->ud, &o);
    free_run(u);
}

/* fd 1/2 bytes of the kernel: the sync markers come out (they count for the running
 * cell), the rest is the running cell's output (or dropped between cells). */
static void kernel_output(cp_runner *r, kernel *k, int s, const char *p, size_t n)
{
    static const char sync[] = CP_KERNEL_SYNC;
    const size_t slen = sizeof sync - 1;
    while (n > 0) {
        if (k->markl[s]) { /* completing a marker cut by the previous read */
            size_t room = CP_KERNEL_SYNC_LINE_MAX - k->markl[s];
            const char *nl = memchr(p, '\n', n < room ? n : room);
            size_t take = nl ? (size_t)(nl - p) + 1 : (n < room ? n : room);
            memcpy(k->mark[s] + k->markl[s], p, take);
            k->markl[s] += take;
            p += take;
            n -= take;
            bool complete = k->mark[s][k->markl[s] - 1] == '\n';
            bool prefix_ok = memcmp(k->mark[s], sync, k->markl[s] < slen ? k->markl[s] : slen) == 0;
            if (!prefix_ok || (!complete && k->markl[s] == CP_KERNEL_SYNC_LINE_MAX)) {
                /* Not a marker after all: it was output. */
                if (k->cur) deliver(r, k->cur, s == 1, k->mark[s], k->markl[s]);
                k->markl[s] = 0;
                continue;
            }
            if (!complete) return;
            uint64_t id = strtoull(k->mark[s] + slen, NULL, 10);
            if (k->cur && k->cur->id == id) k->cur->syncs |= 1u << s;
            k->markl[s] = 0;
            continue;
        }
        const char *rs = memchr(p, '\x1e', n);
        size_t plain = rs ? (size_t)(rs - p) : n;
        if (plain && k->cur) deliver(r, k->cur, s == 1, p, plain);
        p += plain;
        n -= plain;
        if (rs) {
            k->mark[s][0] = '\x1e';
            k->markl[s] = 1;
            p++;
            n--;
        }
    }
}

static ssize_t kernel_read_stream(cp_runner *r, kernel *k, int s)
{
    int *fd = s ? &k->err_fd : &k->out_fd;
    if (*fd < 0) return 0;
    ssize_t n;
    do
        n = read(*fd, r->rbuf, r->cfg.chunk_max);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        kernel_output(r, k, s, r->rbuf, (size_t)n);
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -1;
    unwatch(r, fd);
    return 0;
}

static void kernel_drain_streams(cp_runner *r, kernel *k, size_t max)
{
    for (int s = 0; s < 2; s++)
        for (size_t total = 0; total < max;) {
            ssize_t n = kernel_read_stream(r, k, s);
            if (n <= 0) break;
            total += (size_t)n;
        }
}

/* Event and display lines count against the running cell's output cap. */
static bool kernel_count(cp_runner *r, run *u, size_t len)
{
    if (u->limit_hit) return false;
    if (len > r->cfg.max_output - u->used) {
        u->used = r->cfg.max_output;
        hit_limit(r, u);
        return false;
    }
    u->used += len;
    return true;
}

static void kernel_line(cp_runner *r, void *ctx, const char *line, size_t len)
{
    kernel *k = ctx;
    cJSON *ev = cp_json_parse_keep_nul(line, len, NULL, 0);
    const char *type = cp_json_get_string(ev, "type");
    if (!type) {
        cJSON_Delete(ev);
        return;
    }
    if (strcmp(type, "ready") == 0) {
        if (k->state == K_STARTING) {
            k->state = K_READY;
            k->last_used = now_s();
            kernel_next(r, k);
        }
        cJSON_Delete(ev);
        return;
    }
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(ev, "id");
    run *u = k->cur;
    if (!u || !cJSON_IsNumber(idv) || (uint64_t)idv->valuedouble != u->id) {
        cJSON_Delete(ev); /* a late event of a cell that already ended */
        return;
    }
    if (strcmp(type, "stream") == 0) {
        const char *name = cp_json_get_string(ev, "name");
        char *text = NULL;
        size_t n = 0;
        if (cp_json_bytes(cJSON_GetObjectItemCaseSensitive(ev, "text"), &text, &n) == 1) {
            /* deliver() cleans into a buffer sized for one read: hand it read-sized pieces. */
            bool is_err = name && strcmp(name, "stderr") == 0;
            for (size_t at = 0; at < n && !u->limit_hit; at += r->cfg.chunk_max) {
                size_t piece = n - at < r->cfg.chunk_max ? n - at : r->cfg.chunk_max;
                deliver(r, u, is_err, text + at, piece);
            }
        }
        free(text);
    } else if (strcmp(type, "display") == 0) {
        flush_all_pending(r, u);
        if (kernel_count(r, u, len)) {
            cp_result_item item;
            memset(&item, 0, sizeof item);
            cp_item_from_bundle(&item, cJSON_GetObjectItemCaseSensitive(ev, "data"), false);
            item.is_main_result = cp_json_truthy(cJSON_GetObjectItemCaseSensitive(ev, "main"));
            bool any = item.text || item.html || item.markdown || item.png || item.jpeg ||
                       item.svg || item.json || item.latex || item.chart;
            if (any && u->sink.result) u->sink.result(u->ud, &item);
            cp_item_free(&item);
        }
    } else if (strcmp(type, "error") == 0) {
        flush_all_pending(r, u);
        if (kernel_count(r, u, len)) {
            const char *name = cp_json_get_string(ev, "ename");
            const char *value = cp_json_get_string(ev, "evalue");
            const char *tb = cp_json_get_string(ev, "traceback");
            report_error(u, name ? name : "Error", value ? value : "", tb ? tb : "");
        }
    } else if (strcmp(type, "done") == 0) {
        const char *status = cp_json_get_string(ev, "status");
        const cJSON *count = cJSON_GetObjectItemCaseSensitive(ev, "count");
        u->done_seen = true;
        u->done_at = now_s();
        u->done_ok = status && strcmp(status, "ok") == 0;
        u->done_interrupted = status && strcmp(status, "interrupted") == 0;
        if (cJSON_IsNumber(count)) {
            u->has_done_count = true;
            u->done_count = (long long)count->valuedouble;
        }
        cJSON_Delete(ev);
        kernel_try_complete(r, k);
        return;
    }
    cJSON_Delete(ev);
}

static void kernel_line_dropped(cp_runner *r, void *ctx)
{
    kernel *k = ctx;
    if (k->cur) event_dropped(r, k->cur);
}

static ssize_t kernel_read_events(cp_runner *r, kernel *k)
{
    if (k->ev_fd < 0) return 0;
    ssize_t n;
    do
        n = read(k->ev_fd, r->rbuf, r->cfg.chunk_max);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        feed_lines(r, &k->ev, r->rbuf, (size_t)n, kernel_line, kernel_line_dropped, k);
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -1;
    unwatch(r, &k->ev_fd);
    return 0;
}

static void kernel_free(kernel *k)
{
    free(k->ev.buf);
    free(k->req);
    free(k);
}

static int kernel_watch(cp_runner *r, kernel *k)
{
    return watch(r, k->out_fd, k->slot, KFD_OUT) || watch(r, k->err_fd, k->slot, KFD_ERR) ||
           watch(r, k->ev_fd, k->slot, KFD_EV) || watch(r, k->status_fd, k->slot, KFD_STATUS) ||
           watch(r, k->pid_fd, k->slot, KFD_PID) || k->pid_fd < 0;
}

/* The kernel's process has exited (or was killed): whatever it wrote is read, its
 * sandbox released, its slot given back; its running cell ends (the state was lost) and
 * its queue goes back to be dispatched to a new kernel (or ends, for a session that is
 * gone). */
static void kernel_finish(cp_runner *r, kernel *k)
{
    unwatch(r, &k->pid_fd);
    unwatch(r, &k->status_fd);
    kernel_drain_streams(r, k, CP_RUNNER_FINAL_DRAIN_MAX);
    for (size_t total = 0; total < CP_RUNNER_FINAL_DRAIN_MAX;) {
        ssize_t n = kernel_read_events(r, k);
        if (n <= 0) break;
        total += (size_t)n;
    }
    unwatch(r, &k->out_fd);
    unwatch(r, &k->err_fd);
    unwatch(r, &k->ev_fd);
    if (k->req_fd >= 0) epoll_ctl(r->epfd, EPOLL_CTL_DEL, k->req_fd, NULL);
    k->req_fd = -1;
    cp_proc_status st;
    memset(&st, 0, sizeof st);
    cp_sandbox_release(r->sb, &k->proc, &st);
    if (k->cur && k->cur->done_seen)
        kernel_end_cell(r, k, false, NULL); /* it had finished: only its markers were late */
    kernel_end_cell(r, k, true, &st);

    pthread_mutex_lock(&r->mu);
    if (r->kslots[k->slot] == k) r->kslots[k->slot] = NULL;
    pthread_mutex_unlock(&r->mu);
    if (k->idle_why && k->session[0] && k->end_cancel == CANCEL_NONE) {
        size_t at = r->nlost++ % CP_KERNEL_LOST_MAX;
        snprintf(r->lost[at].session, sizeof r->lost[at].session, "%s", k->session);
        r->lost[at].lang = k->lang;
        r->lost[at].why = k->idle_why;
    }

    /* Its queue ends with it (a session that is gone, or a kernel that died before it was
     * ready: another would most likely do the same), or goes back to the front of kwait,
     * in order, for a new kernel. */
    run *q = k->q_head;
    k->q_head = k->q_tail = NULL;
    if (k->state == K_STARTING && !k->session[0] && !k->killed && !r->pool_broken[k->lang]) {
        r->pool_broken[k->lang] = true;
        fprintf(stderr,
                "codepane-server: the pooled %s kernel died before it was ready (%s %d); "
                "no more pooled %s kernels\n",
                cp_lang_name(k->lang), st.signal ? "signal" : "exit code",
                st.signal ? st.signal : st.exit_code, cp_lang_name(k->lang));
    }
    if (k->end_cancel != CANCEL_NONE || k->state == K_STARTING) {
        char why[CP_RUNNER_TEXT_MAX];
        snprintf(why, sizeof why, "the %s kernel did not start (%s %d)", cp_lang_name(k->lang),
                 st.signal ? "signal" : "exit code", st.signal ? st.signal : st.exit_code);
        while (q) {
            run *u = q;
            q = u->kq_next;
            u->kq_next = NULL;
            end_kernel_unsent(r, u, k->end_cancel, k->end_cancel != CANCEL_NONE ? NULL : why);
        }
    } else if (q) {
        run *last = q;
        for (run *u = q; u; u = u->kq_next) {
            u->k = NULL;
            u->next = u->kq_next;
            last = u;
        }
        for (run *u = q; u; u = u->next)
            u->kq_next = NULL;
        pthread_mutex_lock(&r->mu);
        last->next = r->kwait_head;
        if (!r->kwait_head) r->kwait_tail = last;
        r->kwait_head = q;
        pthread_mutex_unlock(&r->mu);
    }

    for (kernel **pp = &r->kernels; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    kernel_free(k);
}

static unsigned free_slot(cp_runner *r)
{
    /* mu held */
    for (unsigned s = 0; s < r->cfg.max_running; s++)
        if (!r->slots[s] && !r->kslots[s]) return s;
    return r->cfg.max_running;
}

/* Start a kernel for `session` ("" for the pool) in a free slot. NULL when there is no
 * free slot; on a spawn failure *err says why. */
static kernel *kernel_start(cp_runner *r, const char *session, cp_lang lang, char *err,
                            size_t errcap)
{
    err[0] = '\0';
    pthread_mutex_lock(&r->mu);
    unsigned slot = r->stopping ? r->cfg.max_running : free_slot(r);
    kernel *k = slot < r->cfg.max_running ? calloc(1, sizeof *k) : NULL;
    if (k) r->kslots[slot] = k;
    pthread_mutex_unlock(&r->mu);
    if (!k) return NULL;
    snprintf(k->session, sizeof k->session, "%s", session);
    k->lang = lang;
    k->slot = slot;
    k->state = K_STARTING;
    k->started = k->last_used = now_s();
    if (cp_sandbox_spawn_kernel(r->sb, lang, slot, &k->proc, err, errcap) != 0) {
        pthread_mutex_lock(&r->mu);
        r->kslots[slot] = NULL;
        pthread_mutex_unlock(&r->mu);
        free(k);
        if (!err[0]) snprintf(err, errcap, "could not start the %s kernel", cp_lang_name(lang));
        return NULL;
    }
    k->out_fd = k->proc.out_fd;
    k->err_fd = k->proc.err_fd;
    k->ev_fd = k->proc.ev_fd;
    k->req_fd = k->proc.req_fd;
    k->status_fd = k->proc.status_fd;
    k->pid_fd = k->proc.pidfd;
    k->next = r->kernels;
    r->kernels = k;
    if (kernel_watch(r, k)) {
        /* Without its pidfd watched it could never end: stop it; the release below
         * reaps. */
        kernel_kill(r, k);
        kernel_finish(r, k);
        snprintf(err, errcap, "could not watch the kernel's sandbox");
        return NULL;
    }
    return k;
}

static kernel *find_kernel(cp_runner *r, const char *session, cp_lang lang)
{
    for (kernel *k = r->kernels; k; k = k->next)
        if (k->lang == lang && !k->killed && strcmp(k->session, session) == 0) return k;
    return NULL;
}

/* The least recently used kernel that may go to make room: idle, and (when `session`
 * is not NULL) of that session; pooled ones go first. */
static kernel *evictable(cp_runner *r, const char *session)
{
    kernel *best = NULL;
    for (kernel *k = r->kernels; k; k = k->next) {
        if (k->killed || k->cur || k->q_head || k->state != K_READY) continue;
        if (session && strcmp(k->session, session) != 0) continue;
        bool pooled = !k->session[0], best_pooled = best && !best->session[0];
        if (!best || (pooled && !best_pooled) ||
            (pooled == best_pooled && k->last_used < best->last_used))
            best = k;
    }
    return best;
}

static unsigned session_kernels(cp_runner *r, const char *session)
{
    unsigned n = 0;
    for (kernel *k = r->kernels; k; k = k->next)
        if (!k->killed && strcmp(k->session, session) == 0) n++;
    return n;
}

/* Make room by stopping an idle kernel (synchronously: its slot is free afterwards). */
static bool evict(cp_runner *r, const char *session)
{
    kernel *k = evictable(r, session);
    if (!k) return false;
    k->idle_why = "its slot was needed for another run";
    kernel_kill(r, k);
    kernel_finish(r, k);
    return true;
}

/* A kernel for the run: the session's own, one adopted from the pool, or a new one
 * (making room when the slots are full). NULL: none now (the run waits), or *err set. */
static kernel *kernel_for(cp_runner *r, run *u, char *err, size_t errcap)
{
    err[0] = '\0';
    kernel *k = find_kernel(r, u->session, u->lang);
    if (k) return k;
    if (session_kernels(r, u->session) >= r->cfg.kernels_per_session && !evict(r, u->session))
        return NULL;
    k = find_kernel(r, "", u->lang);
    if (k) { /* from the pool */
        snprintf(k->session, sizeof k->session, "%s", u->session);
        return k;
    }
    k = kernel_start(r, u->session, u->lang, err, errcap);
    if (k || err[0]) return k;
    if (!evict(r, NULL)) return NULL;
    return kernel_start(r, u->session, u->lang, err, errcap);
}

/* Hand undispatched kernel runs to kernels, in order; stop at the first that has to
 * wait for a slot. */
static void dispatch(cp_runner *r)
{
    for (;;) {
        pthread_mutex_lock(&r->mu);
        run *u = r->stopping ? NULL : r->kwait_head;
        if (u) {
            r->kwait_head = u->next;
            if (!r->kwait_head) r->kwait_tail = NULL;
            u->next = NULL;
            u->cancel = u->cancel_req;
        }
        pthread_mutex_unlock(&r->mu);
        if (!u) return;
        if (u->cancel != CANCEL_NONE) {
            end_kernel_unsent(r, u, u->cancel, NULL);
            continue;
        }
        char err[CP_RUNNER_TEXT_MAX];
        kernel *k = kernel_for(r, u, err, sizeof err);
        if (!k && err[0]) {
            end_kernel_unsent(r, u, CANCEL_NONE, err);
            continue;
        }
        if (!k) { /* no room yet: back to the front */
            pthread_mutex_lock(&r->mu);
            u->next = r->kwait_head;
            r->kwait_head = u;
            if (!r->kwait_tail) r->kwait_tail = u;
            pthread_mutex_unlock(&r->mu);
            return;
        }
        u->k = k;
        if (k->q_tail)
            k->q_tail->kq_next = u;
        else
            k->q_head = u;
        k->q_tail = u;
        kernel_next(r, k);
    }
}

/* Keep cfg.pool[lang] idle kernels started per language, while slots are free. */
static void fill_pool(cp_runner *r)
{
    for (int l = CP_LANG_PYTHON; l <= CP_LANG_R; l++) {
        if (!r->cfg.pool[l] || r->pool_broken[l] || !kernel_lang(r, (cp_lang)l)) continue;
        unsigned have = 0;
        for (kernel *k = r->kernels; k; k = k->next)
            if (k->lang == (cp_lang)l && !k->session[0] && !k->killed) have++;
        pthread_mutex_lock(&r->mu);
        bool waiting = r->kwait_head != NULL || r->wait_head != NULL;
        pthread_mutex_unlock(&r->mu);
        if (waiting) return; /* runs first */
        while (have < r->cfg.pool[l]) {
            char err[CP_RUNNER_TEXT_MAX];
            if (!kernel_start(r, "", (cp_lang)l, err, sizeof err)) break;
            have++;
        }
    }
}

static void on_kernel_fd(cp_runner *r, kernel *k, int kind)
{
    switch (kind) {
    case KFD_OUT:
    case KFD_ERR:
        kernel_read_stream(r, k, kind == KFD_ERR);
        kernel_try_complete(r, k);
        break;
    case KFD_EV:
        kernel_drain_streams(r, k, CP_RUNNER_DRAIN_BEFORE_EVENT);
        kernel_read_events(r, k);
        break;
    case KFD_REQ:
        kernel_flush_req(r, k);
        break;
    case KFD_STATUS:
        if (cp_sandbox_read_status(&k->proc) != 0) unwatch(r, &k->status_fd);
        break;
    case KFD_PID:
        kernel_finish(r, k);
        break;
    default:
        break;
    }
}

/* Deadlines of kernels: the running cell's timeout (interrupt), its grace (kill), late
 * sync markers, a start that never became ready, and idleness. */
static void kernel_deadlines(cp_runner *r)
{
    double now = now_s();
    for (kernel *k = r->kernels, *next; k; k = next) {
        next = k->next;
        run *u = k->cur;
        if (u) flush_due(r, u, now);
        if (k->killed) {
            kernel_kill(r, k); /* again, once the retry time has come */
        } else if (u && u->interrupted && !u->done_seen && now >= u->grace_at) {
            kernel_kill(r, k);
        } else if (u && !u->interrupted && !u->done_seen && now >= u->deadline) {
            u->timed_out = true;
            kernel_interrupt(r, k, u);
        } else if (u && u->done_seen) {
            kernel_try_complete(r, k);
        } else if (k->state == K_STARTING && now >= k->started + CP_KERNEL_START_TIMEOUT_S) {
            kernel_kill(r, k);
        } else if (!u && !k->q_head && k->session[0] && r->cfg.kernel_idle_s > 0 &&
                   now >= k->last_used + r->cfg.kernel_idle_s) {
            k->idle_why = "idle for longer than the server keeps kernels";
            kernel_kill(r, k);
        }
    }
}

/* The earliest of the kernels' deadlines, or `best` (seconds, -1: none). */
static double kernel_next_deadline(cp_runner *r, double best)
{
#define EARLIER(t)                                                                                 \
    do {                                                                                           \
        double t_ = (t);                                                                           \
        if (best < 0 || t_ < best) best = t_;                                                      \
    } while (0)
    for (kernel *k = r->kernels; k; k = k->next) {
        run *u = k->cur;
        if (k->killed) EARLIER(k->kill_retry_at);
        if (k->state == K_STARTING) EARLIER(k->started + CP_KERNEL_START_TIMEOUT_S);
        if (u) {
            if (u->done_seen)
                EARLIER(u->done_at + CP_KERNEL_SYNC_WAIT_S);
            else
                EARLIER(u->interrupted ? u->grace_at : u->deadline);
            if (pending_due(u) >= 0) EARLIER(pending_due(u));
        } else if (k->session[0] && !k->q_head && r->cfg.kernel_idle_s > 0) {
            EARLIER(k->last_used + r->cfg.kernel_idle_s);
        }
    }
#undef EARLIER
    return best;
}

/* Cancels of kernel runs, sessions that are gone, and stop. */
static void kernel_cancels(cp_runner *r)
{
    pthread_mutex_lock(&r->mu);
    bool stopping = r->stopping;
    for (run *u = r->registry; u; u = u->reg_next) {
        if (stopping && u->cancel_req == CANCEL_NONE) u->cancel_req = CANCEL_KILLED;
        if (u->cancel == CANCEL_NONE) u->cancel = u->cancel_req;
    }
    size_t ndrops = r->ndrops;
    char(*drops)[CP_RUNNER_SESSION_MAX] = r->drops;
    r->drops = NULL;
    r->ndrops = r->capdrops = 0;
    /* Undispatched runs that were cancelled (or all of them, on stop) leave kwait. */
    run *gone = NULL, **gtail = &gone;
    for (run **pp = &r->kwait_head; *pp;) {
        run *u = *pp;
        if (u->cancel == CANCEL_NONE) {
            pp = &u->next;
            continue;
        }
        *pp = u->next;
        u->next = NULL;
        *gtail = u;
        gtail = &u->next;
    }
    r->kwait_tail = NULL;
    for (run *u = r->kwait_head; u; u = u->next)
        r->kwait_tail = u;
    pthread_mutex_unlock(&r->mu);
    while (gone) {
        run *u = gone;
        gone = u->next;
        u->next = NULL;
        end_kernel_unsent(r, u, u->cancel, NULL);
    }

    for (kernel *k = r->kernels, *next; k; k = next) {
        next = k->next;
        bool drop = stopping;
        for (size_t i = 0; i < ndrops && !drop; i++)
            drop = k->session[0] && strcmp(k->session, drops[i]) == 0;
        if (drop) {
            k->end_cancel = CANCEL_KILLED;
            if (k->cur && k->cur->cancel == CANCEL_NONE) k->cur->cancel = CANCEL_KILLED;
            kernel_kill(r, k);
            continue;
        }
        /* Queued runs that were cancelled leave the queue now. */
        for (run **pp = &k->q_head; *pp;) {
            run *u = *pp;
            if (u->cancel == CANCEL_NONE) {
                pp = &u->kq_next;
                continue;
            }
            *pp = u->kq_next;
            if (k->q_tail == u) {
                k->q_tail = NULL;
                for (run *t = k->q_head; t; t = t->kq_next)
                    k->q_tail = t;
            }
            end_kernel_unsent(r, u, u->cancel, NULL);
        }
        if (k->cur && k->cur->cancel != CANCEL_NONE) kernel_interrupt(r, k, k->cur);
    }
    free(drops);
}

/* ---- the supervisor ----------------------------------------------------------------------------
 */

static void on_fd_event(cp_runner *r, run *u, int kind)
{
    if (u->exited) return;
    switch (kind) {
    case FD_OUT:
    case FD_ERR:
        read_stream(r, u, kind == FD_ERR);
        break;
    case FD_EV:
        /* Output printed before the event was flushed before it: read that first. */
        drain_stream(r, u, false, CP_RUNNER_DRAIN_BEFORE_EVENT);
        drain_stream(r, u, true, CP_RUNNER_DRAIN_BEFORE_EVENT);
        read_events(r, u);
        break;
    case FD_STATUS:
        if (cp_sandbox_read_status(&u->proc) != 0) unwatch(r, &u->status_fd);
        break;
    case FD_PID:
        finish_run(r, u);
        break;
    default:
        break;
    }
}

/* Milliseconds until the nearest deadline of a running run, or -1. */
static int next_timeout_ms(cp_runner *r)
{
    double now = now_s(), best = -1;
    for (unsigned s = 0; s < r->cfg.max_running; s++) {
        run *u = r->slots[s];
        if (!u || !u->spawned || u->exited) continue;
        double t = u->killed ? u->kill_retry_at : u->deadline;
        if (best < 0 || t < best) best = t;
        double due = pending_due(u);
        if (due >= 0 && due < best) best = due;
    }
    best = kernel_next_deadline(r, best);
    if (best < 0) return -1;
    double ms = (best - now) * 1000.0;
    if (ms <= 0) return 0;
    if (ms > 60000) return 60000;
    return (int)ceil(ms);
}

static void check_deadlines(cp_runner *r)
{
    double now = now_s();
    for (unsigned s = 0; s < r->cfg.max_running; s++) {
        run *u = r->slots[s];
        if (!u || !u->spawned || u->exited) continue;
        flush_due(r, u, now);
        if (u->killed) {
            if (now >= u->kill_retry_at) kill_run(r, u);
        } else if (now >= u->deadline) {
            u->timed_out = true;
            kill_run(r, u);
        }
    }
}

/* Act on cancel requests and on stop: queued runs leave the queue and end here; running
 * runs are killed and end when their process has exited. */
static void handle_cancels(cp_runner *r)
{
    run *ended = NULL, **tail = &ended;
    pthread_mutex_lock(&r->mu);
    bool stopping = r->stopping;
    if (r->cancel_pending || stopping) {
        r->cancel_pending = false;
        for (run **pp = &r->wait_head; *pp;) {
            run *u = *pp;
            if (stopping && u->cancel_req == CANCEL_NONE) u->cancel_req = CANCEL_KILLED;
            if (u->cancel_req == CANCEL_NONE) {
                pp = &u->next;
                continue;
            }
            *pp = u->next;
            u->next = NULL;
            *tail = u;
            tail = &u->next;
            r->nwaiting--;
        }
        r->wait_tail = NULL;
        for (run *u = r->wait_head; u; u = u->next)
            r->wait_tail = u;
        for (unsigned s = 0; s < r->cfg.max_running; s++) {
            run *u = r->slots[s];
            if (!u) continue;
            if (stopping && u->cancel_req == CANCEL_NONE) u->cancel_req = CANCEL_KILLED;
            if (u->cancel == CANCEL_NONE && u->cancel_req != CANCEL_NONE) u->cancel = u->cancel_req;
        }
    }
    pthread_mutex_unlock(&r->mu);

    while (ended) {
        run *u = ended;
        ended = u->next;
        end_unspawned(u, u->cancel_req, NULL);
    }
    for (unsigned s = 0; s < r->cfg.max_running; s++) {
        run *u = r->slots[s];
        if (u && u->cancel != CANCEL_NONE && !u->killed) kill_run(r, u);
    }
}

/* Give free slots to waiting runs, in FIFO order. */
static void admit(cp_runner *r)
{
    for (;;) {
        pthread_mutex_lock(&r->mu);
        run *u = r->wait_head;
        unsigned slot = r->cfg.max_running;
        if (u && !r->stopping) slot = free_slot(r);
        if (slot == r->cfg.max_running) {
            pthread_mutex_unlock(&r->mu);
            /* Idle kernels (pooled ones first) make room for a run that needs a slot. */
            if (u && !r->stopping && evict(r, NULL)) continue;
            return;
        }
        r->wait_head = u->next;
        if (!r->wait_head) r->wait_tail = NULL;
        u->next = NULL;
        r->nwaiting--;
        r->nrunning++;
        r->slots[slot] = u;
        u->slot = slot;
        u->cancel = u->cancel_req;
        pthread_mutex_unlock(&r->mu);
        if (u->cancel != CANCEL_NONE) {
            /* Cancelled between the wakeup and now: never start it. */
            give_back_slot(r, u);
            end_unspawned(u, u->cancel, NULL);
            continue;
        }
        start_run(r, u);
    }
}

static void *supervise(void *arg)
{
    cp_runner *r = arg;
    struct epoll_event evs[CP_RUNNER_EPOLL_BATCH];
    for (;;) {
        int n = epoll_wait(r->epfd, evs, CP_RUNNER_EPOLL_BATCH, next_timeout_ms(r));
        if (n < 0 && errno != EINTR) n = 0; /* cannot happen with a valid set; go on */
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == WAKE_TAG) {
                uint64_t v;
                while (read(r->wakefd, &v, sizeof v) < 0 && errno == EINTR) {
                }
                continue;
            }
            unsigned slot = (unsigned)(tag >> 8);
            int kind = (int)(tag & 0xff);
            /* Slots are refilled only after the batch (admit, dispatch below), so a
             * slot's run or kernel here is the one the event was registered for, or NULL
             * if it just ended. */
            if (slot >= r->cfg.max_running) continue;
            if (kind >= KFD_OUT && kind < KFD_END) {
                kernel *k = r->kslots[slot];
                if (k) on_kernel_fd(r, k, kind);
                continue;
            }
            run *u = r->slots[slot];
            if (u && kind < FD_KINDS) on_fd_event(r, u, kind);
        }
        check_deadlines(r);
        kernel_deadlines(r);
        handle_cancels(r);
        kernel_cancels(r);
        admit(r);
        dispatch(r);
        fill_pool(r);

        pthread_mutex_lock(&r->mu);
        bool done = r->stopping && r->nrunning == 0 && r->nwaiting == 0 && r->krunning == 0 &&
                    r->kwaiting == 0;
        pthread_mutex_unlock(&r->mu);
        if (done && !r->kernels) return NULL;
    }
}

/* ---- public API ---------------------------------------------------------------------------- */

int cp_runner_start(cp_runner **out, const cp_runner_config *cfg, cp_sandbox *sb, char *err,
                    size_t errcap)
{
    *out = NULL;
    if (!cfg || !sb || cfg->max_running == 0 || cfg->max_output == 0 ||
        cfg->max_running > (1u << 20)) {
        set_err(err, errcap,
                "runner: invalid configuration (max_running and max_output must be > 0)");
        return -1;
    }
    cp_runner *r = calloc(1, sizeof *r);
    if (!r) {
        set_err(err, errcap, "runner: out of memory");
        return -1;
    }
    r->cfg = *cfg;
    if (r->cfg.chunk_max == 0) r->cfg.chunk_max = CP_RUNNER_CHUNK_DEFAULT;
    if (r->cfg.chunk_max < CP_RUNNER_CHUNK_MIN) r->cfg.chunk_max = CP_RUNNER_CHUNK_MIN;
    if (r->cfg.chunk_max > CP_RUNNER_CHUNK_MAX) r->cfg.chunk_max = CP_RUNNER_CHUNK_MAX;
    r->sb = sb;
    r->epfd = r->wakefd = -1;
    r->next_id = 1;
    r->slots = calloc(r->cfg.max_running, sizeof *r->slots);
    r->kslots = calloc(r->cfg.max_running, sizeof *r->kslots);
    if (r->cfg.kernels_per_session == 0) r->cfg.kernels_per_session = CP_LANG_R;
    r->rbuf = malloc(r->cfg.chunk_max);
    r->cbuf = malloc(CP_UTF8_OUT_MAX(r->cfg.chunk_max));
    if (!r->slots || !r->kslots || !r->rbuf || !r->cbuf) {
        set_err(err, errcap, "runner: out of memory");
        goto fail;
    }
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->epfd < 0 || r->wakefd < 0) {
        set_err(err, errcap, "runner: epoll/eventfd: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TAG};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->wakefd, &ev) != 0) {
        set_err(err, errcap, "runner: epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    pthread_mutex_init(&r->mu, NULL);
    int rc = pthread_create(&r->thread, NULL, supervise, r);
    if (rc != 0) {
        pthread_mutex_destroy(&r->mu);
        set_err(err, errcap, "runner: cannot start the supervisor thread: %s", strerror(rc));
        goto fail;
    }
    *out = r;
    wake(r); /* a first turn of the loop fills the kernel pool */
    return 0;
fail:
    if (r->epfd >= 0) close(r->epfd);
    if (r->wakefd >= 0) close(r->wakefd);
    free(r->slots);
    free(r->kslots);
    free(r->rbuf);
    free(r->cbuf);
    free(r);
    return -1;
}

void cp_runner_stop(cp_runner *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_mutex_unlock(&r->mu);
    wake(r);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    close(r->epfd);
    close(r->wakefd);
    free(r->slots);
    free(r->kslots);
    free(r->drops);
    free(r->rbuf);
    free(r->cbuf);
    free(r);
}

int cp_runner_submit(cp_runner *r, const char *session, cp_lang lang, const char *code,
                     size_t code_len, double timeout_s, long long count, const cp_run_sink *sink,
                     void *ud, uint64_t *id, char *err, size_t errcap)
{
    if (!cp_lang_name(lang)) {
        set_err(err, errcap, "unsupported language");
        return -1;
    }
    if (!(timeout_s > 0) || !isfinite(timeout_s)) {
        set_err(err, errcap, "invalid timeout: it must be a positive number of seconds");
        return -1;
    }
    if (!cp_sandbox_lang_available(r->sb, lang)) {
        set_err(err, errcap, "%s is not available on this server", cp_lang_name(lang));
        return -1;
    }
    if (timeout_s > CP_RUNNER_TIMEOUT_MAX_S) timeout_s = CP_RUNNER_TIMEOUT_MAX_S;
    if (!sink || (!code && code_len)) {
        set_err(err, errcap, "invalid run request");
        return -1;
    }
    run *u = calloc(1, sizeof *u);
    if (!u) goto oom;
    bool in_kernel =
        session && session[0] && strlen(session) < CP_RUNNER_SESSION_MAX && kernel_lang(r, lang);
    if (in_kernel) snprintf(u->session, sizeof u->session, "%s", session);
    if (lang == CP_LANG_JAVA && !in_kernel) {
        u->code = cp_java_wrap(code ? code : "", code_len, &u->code_len);
    } else {
        u->code = malloc(code_len + 1);
        if (u->code) {
            if (code_len) memcpy(u->code, code, code_len);
            u->code[code_len] = '\0';
            u->code_len = code_len;
        }
    }
    if (!u->code) goto oom;
    u->lang = lang;
    u->timeout_s = timeout_s;
    u->count = count;
    u->sink = *sink;
    u->ud = ud;
    u->out.fd = u->err.fd = u->ev_fd = u->status_fd = u->pid_fd = -1;

    pthread_mutex_lock(&r->mu);
    if (r->stopping) {
        pthread_mutex_unlock(&r->mu);
        free_run(u);
        set_err(err, errcap, "the server is shutting down");
        return -1;
    }
    if (r->nrunning + r->nwaiting + r->krunning + r->kwaiting >=
        r->cfg.max_running + r->cfg.max_queued) {
        unsigned running = r->nrunning + r->krunning, waiting = r->nwaiting + r->kwaiting;
        pthread_mutex_unlock(&r->mu);
        free_run(u);
        set_err(err, errcap, "busy: %u runs are running and %u waiting; try again shortly", running,
                waiting);
        return -1;
    }
    u->id = r->next_id++;
    if (in_kernel) {
        if (r->kwait_tail)
            r->kwait_tail->next = u;
        else
            r->kwait_head = u;
        r->kwait_tail = u;
        r->kwaiting++;
        u->reg_next = r->registry;
        if (r->registry) r->registry->reg_prev = u;
        r->registry = u;
    } else {
        if (r->wait_tail)
            r->wait_tail->next = u;
        else
            r->wait_head = u;
        r->wait_tail = u;
        r->nwaiting++;
    }
    if (id) *id = u->id;
    pthread_mutex_unlock(&r->mu);
    wake(r);
    return 0;
oom:
    free_run(u);
    set_err(err, errcap, "out of memory");
    return -1;
}

/* Ask for a run to stop with `reason`; the supervisor acts on it. */
static void request_cancel(cp_runner *r, uint64_t id, int reason)
{
    bool found = false;
    pthread_mutex_lock(&r->mu);
    for (run *u = r->wait_head; u && !found; u = u->next) {
        if (u->id == id) {
            if (u->cancel_req == CANCEL_NONE) u->cancel_req = reason;
            found = true;
        }
    }
    for (unsigned s = 0; s < r->cfg.max_running && !found; s++) {
        run *u = r->slots[s];
        if (u && u->id == id) {
            if (u->cancel_req == CANCEL_NONE) u->cancel_req = reason;
            found = true;
        }
    }
    for (run *u = r->registry; u && !found; u = u->reg_next) {
        if (u->id == id) {
            if (u->cancel_req == CANCEL_NONE) u->cancel_req = reason;
            found = true;
        }
    }
    if (found) r->cancel_pending = true;
    pthread_mutex_unlock(&r->mu);
    if (found) wake(r);
}

void cp_runner_cancel(cp_runner *r, uint64_t id)
{
    request_cancel(r, id, CANCEL_CANCELLED);
}

void cp_runner_kill(cp_runner *r, uint64_t id)
{
    request_cancel(r, id, CANCEL_KILLED);
}

void cp_runner_drop_session(cp_runner *r, const char *session)
{
    if (!session || !session[0] || strlen(session) >= CP_RUNNER_SESSION_MAX) return;
    pthread_mutex_lock(&r->mu);
    if (r->ndrops == r->capdrops) {
        size_t cap = r->capdrops ? 2 * r->capdrops : 8;
        void *more = realloc(r->drops, cap * sizeof *r->drops);
        if (!more) {
            pthread_mutex_unlock(&r->mu);
            return; /* its kernels go when idle */
        }
        r->drops = more;
        r->capdrops = cap;
    }
    snprintf(r->drops[r->ndrops++], CP_RUNNER_SESSION_MAX, "%s", session);
    pthread_mutex_unlock(&r->mu);
    wake(r);
}

void cp_runner_counts(cp_runner *r, unsigned *running, unsigned *queued)
{
    pthread_mutex_lock(&r->mu);
    if (running) *running = r->nrunning + r->krunning;
    if (queued) *queued = r->nwaiting + r->kwaiting;
    pthread_mutex_unlock(&r->mu);
}
