/* runner_probe: drives the real runner (runner.c) over a sandbox (sandbox.c, or the
 * unconfined test double tests/server/fake_sandbox.c) with every language's runner, and
 * checks what the sinks see: streaming, UTF-8, results, errors, limits, cancel, stop and
 * admission. Prints one line per check and ends with "N passed, N failed" (exit status 1
 * on any failure).
 *
 *   build/r/probe [runners-dir]     (default: src/server/runners; run as root for bwrap)
 *
 * Timings printed with "ms" are measurements, not assertions, except where a check says
 * so (the streaming gap, the timeout, the cancel latency). */
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <linux/limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"
#include "sandbox.h"

#define PROBE_MAX_RUNNING 2
#define PROBE_MAX_QUEUED  12
#define PROBE_MAX_OUTPUT  (256u * 1024)
#define PROBE_CHUNK_MAX   (16u * 1024)
#define PROBE_WAIT_S      60.0 /* longest any single run may take before the probe gives up */
#define PROBE_MAX_ITEMS   16

static const char HELLO[] = "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80"; /* héllo ✓ 😀 */

static int passed, failed;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(bool ok, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void check(bool ok, const char *name, const char *fmt, ...)
{
    char detail[1024] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
    }
    if (ok)
        passed++;
    else
        failed++;
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", name, *detail ? ": " : "", detail);
    fflush(stdout);
}

/* ---- a recording sink ---------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    double t_submit;
    size_t nchunks, nout_chunks;
    double t_first_out, t_out[PROBE_MAX_ITEMS];
    double rt_out[PROBE_MAX_ITEMS]; /* CLOCK_REALTIME at each stdout chunk */
    char *out_at[PROBE_MAX_ITEMS];  /* and the chunk itself */
    size_t max_chunk;
    char *out, *err;
    size_t outlen, errlen;
    char *results[PROBE_MAX_ITEMS];
    bool result_main[PROBE_MAX_ITEMS];
    int nresults;
    char *ename, *evalue, *etb;
    int nerrors, nends;
    bool ended;
    char status[32], reason[32], xerr[1024];
    bool has_xerr, has_count;
    long long count;
    double time_s, t_end;
    char order[64]; /* one letter per callback: o stdout, e stderr, r result, x error, E end */
    size_t norder;
} rec;

static void note(rec *c, char what)
{
    if (c->norder + 1 < sizeof c->order) c->order[c->norder++] = what;
}

static void append(char **buf, size_t *len, const char *s, size_t n)
{
    char *p = realloc(*buf, *len + n + 1);
    if (!p) abort();
    memcpy(p + *len, s, n);
    *len += n;
    p[*len] = '\0';
    *buf = p;
}

static void on_chunk(void *ud, bool is_stderr, const char *s, size_t n)
{
    rec *c = ud;
    pthread_mutex_lock(&c->mu);
    double t = now_s();
    c->nchunks++;
    note(c, is_stderr ? 'e' : 'o');
    if (n > c->max_chunk) c->max_chunk = n;
    if (is_stderr) {
        append(&c->err, &c->errlen, s, n);
    } else {
        if (c->nout_chunks == 0) c->t_first_out = t;
        if (c->nout_chunks < PROBE_MAX_ITEMS) {
            struct timespec rt;
            clock_gettime(CLOCK_REALTIME, &rt);
            c->t_out[c->nout_chunks] = t;
            c->rt_out[c->nout_chunks] = (double)rt.tv_sec + (double)rt.tv_nsec / 1e9;
            c->out_at[c->nout_chunks] = strndup(s, n);
        }
        c->nout_chunks++;
        append(&c->out, &c->outlen, s, n);
    }
    pthread_mutex_unlock(&c->mu);
}

static void on_result(void *ud, const cp_result_item *item)
{
    rec *c = ud;
    pthread_mutex_lock(&c->mu);
    note(c, 'r');
    if (c->nresults < PROBE_MAX_ITEMS) {
        c->results[c->nresults] = strdup(item->text ? item->text : "");
        c->result_main[c->nresults] = item->is_main_result;
        c->nresults++;
    }
    pthread_mutex_unlock(&c->mu);
}

static void on_error(void *ud, const char *name, const char *value, const char *tb)
{
    rec *c = ud;
    pthread_mutex_lock(&c->mu);
    note(c, 'x');
    if (c->nerrors++ == 0) {
        c->ename = strdup(name);
        c->evalue = strdup(value);
        c->etb = strdup(tb);
    }
    pthread_mutex_unlock(&c->mu);
}

static void on_end(void *ud, const cp_run_outcome *o)
{
    rec *c = ud;
    pthread_mutex_lock(&c->mu);
    c->nends++;
    note(c, 'E');
    c->ended = true;
    c->t_end = now_s();
    snprintf(c->status, sizeof c->status, "%s", o->status);
    snprintf(c->reason, sizeof c->reason, "%s", o->reason);
    c->has_xerr = o->execution_error != NULL;
    snprintf(c->xerr, sizeof c->xerr, "%s", o->execution_error ? o->execution_error : "");
    c->has_count = o->has_count;
    c->count = o->count;
    c->time_s = o->time_s;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static const cp_run_sink SINK = {on_chunk, on_result, on_error, on_end};

static rec *rec_new(void)
{
    rec *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->out = strdup("");
    c->err = strdup("");
    return c;
}

static void rec_free(rec *c)
{
    if (!c) return;
    free(c->out);
    free(c->err);
    for (int i = 0; i < c->nresults; i++)
        free(c->results[i]);
    for (size_t i = 0; i < c->nout_chunks && i < PROBE_MAX_ITEMS; i++)
        free(c->out_at[i]);
    free(c->ename);
    free(c->evalue);
    free(c->etb);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

static bool wait_end(rec *c, double secs)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    double t = (double)dl.tv_sec + (double)dl.tv_nsec / 1e9 + secs;
    dl.tv_sec = (time_t)t;
    dl.tv_nsec = (long)((t - (double)dl.tv_sec) * 1e9);
    pthread_mutex_lock(&c->mu);
    while (!c->ended) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) != 0) break;
    }
    bool ended = c->ended;
    pthread_mutex_unlock(&c->mu);
    return ended;
}

/* Wait until the run has written at least one stdout chunk (or ended). */
static void wait_first_out(rec *c, double secs)
{
    double until = now_s() + secs;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        bool done = c->nout_chunks > 0 || c->ended;
        pthread_mutex_unlock(&c->mu);
        if (done || now_s() > until) return;
        usleep(2000);
    }
}

static cp_runner *R;
static long long next_count = 1;

static rec *submit(cp_lang lang, const char *code, double timeout_s, uint64_t *id)
{
    rec *c = rec_new();
    char err[256];
    uint64_t rid = 0;
    c->t_submit = now_s();
    if (cp_runner_submit(R, NULL, lang, code, strlen(code), timeout_s, next_count++, &SINK, c, &rid,
                         err, sizeof err) != 0) {
        check(false, "submit", "%s", err);
        rec_free(c);
        return NULL;
    }
    if (id) *id = rid;
    return c;
}

/* Run to the end and return the record (NULL when it did not end in time). */
static rec *run(cp_lang lang, const char *code, double timeout_s)
{
    rec *c = submit(lang, code, timeout_s, NULL);
    if (!c) return NULL;
    if (!wait_end(c, PROBE_WAIT_S)) {
        check(false, "run ends", "%s run did not end within %.0f s", cp_lang_name(lang),
              PROBE_WAIT_S);
        return NULL; /* leaked on purpose: the runner may still call it */
    }
    return c;
}

/* s with control characters escaped, for one-line reports (a static buffer). */
static const char *esc(const char *s)
{
    static char bufs[4][512]; /* rotating, so one report may use several */
    static unsigned next;
    char *out = bufs[next++ % 4];
    size_t o = 0;
    for (; s && *s && o + 5 < sizeof bufs[0]; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\n')
            o += (size_t)snprintf(out + o, sizeof bufs[0] - o, "\\n");
        else if (ch < 0x20)
            o += (size_t)snprintf(out + o, sizeof bufs[0] - o, "\\x%02x", ch);
        else
            out[o++] = (char)ch;
    }
    out[o] = '\0';
    return out;
}

static bool streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* ---- the checks --------------------------------------------------------------------------- */

static void probe_hello(cp_lang lang, const char *code, const char *want_out)
{
    char name[64];
    snprintf(name, sizeof name, "%s_utf8_hello", cp_lang_name(lang));
    rec *c = run(lang, code, 30);
    if (!c) return;
    check(streq(c->out, want_out) && streq(c->status, "finished") && streq(c->reason, "exit") &&
              !c->has_xerr && c->nends == 1 && c->has_count,
          name,
          "first chunk %.0f ms after submit, end %.0f ms (run %.0f ms); stdout=\"%s\" status=%s/%s "
          "stderr=\"%s\"",
          (c->t_first_out - c->t_submit) * 1e3, (c->t_end - c->t_submit) * 1e3, c->time_s * 1e3,
          esc(c->out), c->status, c->reason, esc(c->err));
    rec_free(c);
}

static void probe_error(cp_lang lang, const char *label, const char *code, const char *want_name,
                        const char *want_value, const char *want_tb_part)
{
    char name[96];
    snprintf(name, sizeof name, "%s_error_%s", cp_lang_name(lang), label);
    rec *c = run(lang, code, 30);
    if (!c) return;
    char want_x[512];
    if (*want_value)
        snprintf(want_x, sizeof want_x, "%s: %s", want_name, want_value);
    else
        snprintf(want_x, sizeof want_x, "%s", want_name);
    bool ok = c->nerrors == 1 && streq(c->ename, want_name) && streq(c->evalue, want_value) &&
              (!want_tb_part || (c->etb && strstr(c->etb, want_tb_part))) &&
              streq(c->status, "failed") && streq(c->reason, "error") && streq(c->xerr, want_x);
    check(ok, name, "error=%s / %s, execution_error=\"%s\" status=%s/%s traceback=\"%.400s\"",
          c->ename ? c->ename : "(none)", c->evalue ? c->evalue : "", c->xerr, c->status, c->reason,
          esc(c->etb));
    rec_free(c);
}

static void probe_streaming(void)
{
    rec *c = run(CP_LANG_PYTHON, "import time\nprint('hello')\ntime.sleep(1)\nprint(2)\n", 30);
    if (!c) return;
    double gap = c->nout_chunks >= 2 ? c->t_out[1] - c->t_out[0] : 0;
    check(c->nout_chunks == 2 && streq(c->out, "hello\n2\n") && gap >= 0.8 && gap < 3.0,
          "python_print_sleep_print_streams_two_chunks",
          "%zu chunks, out=\"%s\", gap %.0f ms, first chunk %.0f ms after submit", c->nout_chunks,
          esc(c->out), gap * 1e3, (c->t_first_out - c->t_submit) * 1e3);
    rec_free(c);

    /* The same for each language: how long after submit the first line shows, and that
     * the second comes about a second later (not at the end). */
    static const struct {
        cp_lang lang;
        const char *code;
    } SLEEPERS[] = {
        {CP_LANG_JAVASCRIPT, "console.log('a');\nsetTimeout(() => console.log('b'), 1000);\n"},
        {CP_LANG_JAVA,
         "System.out.println(\"a\");\nThread.sleep(1000);\nSystem.out.println(\"b\");\n"},
        {CP_LANG_R, "cat('a\\n')\nSys.sleep(1)\ncat('b\\n')\n"},
        {CP_LANG_R,
         "for (i in 1:2) { cat(c('a','b')[i], '\\n', sep=''); if (i == 1) Sys.sleep(1) }\n"},
    };
    for (size_t i = 0; i < sizeof SLEEPERS / sizeof SLEEPERS[0]; i++) {
        c = run(SLEEPERS[i].lang, SLEEPERS[i].code, 30);
        if (!c) continue;
        gap = c->nout_chunks >= 2 ? c->t_out[1] - c->t_out[0] : 0;
        char name[96];
        snprintf(name, sizeof name, "%s_streams_output_as_it_is_written%s",
                 cp_lang_name(SLEEPERS[i].lang), i == 3 ? "_inside_one_expression" : "");
        check(c->nout_chunks == 2 && streq(c->out, "a\nb\n") && gap >= 0.8 && gap < 3.0, name,
              "%zu chunks, gap %.0f ms, first chunk %.0f ms after submit, stderr=\"%s\"",
              c->nout_chunks, gap * 1e3, (c->t_first_out - c->t_submit) * 1e3, esc(c->err));
        rec_free(c);
    }
}

/* How long from the program's write to the sink's chunk: python prints its wall clock
 * (the sandbox shares CLOCK_REALTIME with the host) and the sink compares. */
static void probe_write_to_chunk_latency(void)
{
    rec *c = run(
        CP_LANG_PYTHON,
        "import time\nfor i in range(8):\n    print(repr(time.time()))\n    time.sleep(0.1)\n", 30);
    if (!c) return;
    double worst = 0, sum = 0;
    size_t n = 0;
    for (size_t i = 0; i < c->nout_chunks && i < PROBE_MAX_ITEMS; i++) {
        double wrote = atof(c->out_at[i]);
        double lat = c->rt_out[i] - wrote;
        if (lat > worst) worst = lat;
        sum += lat;
        n++;
    }
    check(n == 8 && worst < 0.050, "write_to_chunk_latency_under_50ms",
          "%zu chunks, mean %.1f ms, worst %.1f ms", n, n ? sum / (double)n * 1e3 : 0, worst * 1e3);
    rec_free(c);
}

static void probe_results(void)
{
    rec *c = run(CP_LANG_PYTHON, "x = 6\nx * 7\n", 30);
    if (c) {
        check(c->nresults == 1 && streq(c->results[0], "42") && c->result_main[0] &&
                  streq(c->status, "finished"),
              "python_last_expression_is_main_result", "%d results, first \"%s\"", c->nresults,
              c->nresults ? c->results[0] : "");
        rec_free(c);
    }
    c = run(CP_LANG_JAVASCRIPT, "const x = await Promise.resolve(6);\nconsole.log(x * 7);\n", 30);
    if (c) {
        check(streq(c->out, "42\n") && streq(c->status, "finished"), "javascript_top_level_await",
              "out=\"%s\" err=\"%s\" status=%s", esc(c->out), esc(c->err), c->status);
        rec_free(c);
    }
    c = run(CP_LANG_JAVASCRIPT, "const o = {a: [1, 2]};\no\n", 30);
    if (c) {
        check(c->nresults == 1 && streq(c->results[0], "{ a: [ 1, 2 ] }") && c->result_main[0],
              "javascript_completion_value_is_main_result", "%d results, first \"%s\"", c->nresults,
              c->nresults ? c->results[0] : "");
        rec_free(c);
    }
    c = run(CP_LANG_R, "x <- 1:3\nx * 2\ninvisible(7)\n", 30);
    if (c) {
        check(streq(c->out, "[1] 2 4 6\n") && streq(c->status, "finished"),
              "r_auto_prints_visible_values", "out=\"%s\"", esc(c->out));
        rec_free(c);
    }
    c = run(CP_LANG_JAVA,
            "import java.util.*;\nint sq(int x) { return x * x; }\nList<Integer> l = new "
            "ArrayList<>();\n"
            "for (int i = 1; i <= 3; i++) l.add(sq(i));\nSystem.out.println(l);\n",
            30);
    if (c) {
        check(streq(c->out, "[1, 4, 9]\n") && streq(c->status, "finished"),
              "java_snippet_with_method_and_imports", "out=\"%s\" err=\"%s\"", esc(c->out),
              esc(c->err));
        rec_free(c);
    }
}

static void probe_order(void)
{
    rec *c = run(CP_LANG_PYTHON, "print('a')\n1 + 1\n", 30);
    if (c) {
        check(streq(c->order, "orE"), "python_output_before_result_before_end", "callbacks \"%s\"",
              c->order);
        rec_free(c);
    }
    c = run(CP_LANG_JAVASCRIPT, "console.log('a');\nconsole.error('b');\nthrow new Error('c');\n",
            30);
    if (c) {
        check(streq(c->order, "oexE"), "javascript_stdout_stderr_error_end_in_order",
              "callbacks \"%s\"", c->order);
        rec_free(c);
    }
    c = run(CP_LANG_R, "cat('a\\n')\nmessage('b')\nstop('c')\n", 30);
    if (c) {
        check(streq(c->order, "oexE"), "r_stdout_stderr_error_end_in_order", "callbacks \"%s\"",
              c->order);
        rec_free(c);
    }
}

static void probe_memory(const cp_sandbox *sb)
{
    if (!cp_sandbox_has_cgroups(sb)) {
        printf("skip memory_bomb_ends_with_memory_reason: no memory cgroup here\n");
        return;
    }
    /* A3: touch memory until something gives. With the memory cgroup the run must end
     * with reason "memory" (or the runtime's own MemoryError first, via RLIMIT_DATA). */
    rec *c = run(CP_LANG_PYTHON,
                 "l = []\nwhile True:\n    l.append(bytearray(b'x' * 64_000_000))\n", 30);
    if (!c) return;
    bool oom = streq(c->reason, "memory") &&
               streq(c->xerr, "MemoryError: the run exceeded its memory limit");
    bool py = streq(c->reason, "error") && streq(c->ename, "MemoryError");
    check(oom || py, "memory_bomb_ends_with_memory_reason", "status=%s/%s \"%s\" time %.0f ms",
          c->status, c->reason, c->xerr, c->time_s * 1e3);
    rec_free(c);
}

static void probe_exit_codes(void)
{
    rec *c = run(CP_LANG_PYTHON, "import sys\nprint('bye')\nsys.exit(3)\n", 30);
    if (c) {
        check(streq(c->status, "failed") && streq(c->reason, "exit") &&
                  streq(c->xerr, "exit code 3") && c->nerrors == 0 && streq(c->out, "bye\n"),
              "python_sys_exit_3_is_exit_code_3", "status=%s/%s \"%s\"", c->status, c->reason,
              c->xerr);
        rec_free(c);
    }
    c = run(CP_LANG_PYTHON, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", 30);
    if (c) {
        check(streq(c->status, "failed") && streq(c->reason, "exit") &&
                  strstr(c->xerr, "9") != NULL,
              "python_killed_by_signal_reported", "status=%s/%s \"%s\"", c->status, c->reason,
              c->xerr);
        rec_free(c);
    }
}

static void probe_encoding(void)
{
    /* C2 + C1 + C3: an emoji split across two writes 200 ms apart, then an invalid byte,
     * then an incomplete sequence at EOF. */
    rec *c = run(CP_LANG_PYTHON,
                 "import sys, time\nb = sys.stdout.buffer\nb.write(b'\\xf0\\x9f'); b.flush(); "
                 "time.sleep(0.2)\n"
                 "b.write(b'\\x98\\x80|\\xff|'); b.flush(); b.write(b'\\xe2\\x9c'); b.flush()\n",
                 30);
    if (c) {
        const char *want = "\xf0\x9f\x98\x80|\xef\xbf\xbd|\xef\xbf\xbd";
        check(streq(c->out, want), "split_emoji_invalid_byte_and_cut_tail_are_clean_utf8",
              "out=%zu bytes%s", c->outlen, streq(c->out, want) ? "" : " (mismatch)");
        rec_free(c);
    }
    /* C4: NUL, ANSI and \r pass through. */
    c = run(CP_LANG_PYTHON, "import sys\nsys.stdout.write('a\\x00b\\x1b[31mr\\x1b[0m\\r\\n')\n",
            30);
    if (c) {
        check(c->outlen == 15 && memcmp(c->out, "a\0b\x1b[31mr\x1b[0m\r\n", 15) == 0,
              "nul_ansi_cr_pass_through", "%zu bytes", c->outlen);
        rec_free(c);
    }
}

static void probe_timeout(void)
{
    rec *c =
        run(CP_LANG_PYTHON, "import time\nprint('start')\ntime.sleep(30)\nprint('never')\n", 1.0);
    if (!c) return;
    check(streq(c->status, "failed") && streq(c->reason, "timeout") && streq(c->out, "start\n") &&
              streq(c->xerr, "TimeoutError: the run exceeded its time limit of 1 s") &&
              c->time_s >= 1.0 && c->time_s < 2.5,
          "timeout_kills_and_keeps_partial_output", "status=%s/%s out=\"%s\" \"%s\" time %.0f ms",
          c->status, c->reason, esc(c->out), c->xerr, c->time_s * 1e3);
    rec_free(c);

    c = run(CP_LANG_PYTHON, "while True:\n    pass\n", 1.0);
    if (!c) return;
    check(streq(c->reason, "timeout") && c->time_s < 2.5, "timeout_busy_loop", "%s, time %.0f ms",
          c->reason, c->time_s * 1e3);
    rec_free(c);

    /* A7: a background child outliving the main program does not hold the run open. */
    c = run(CP_LANG_PYTHON,
            "import subprocess\nsubprocess.Popen(['sh', '-c', 'sleep 30'])\nprint('bye')\n", 20);
    if (!c) return;
    check(streq(c->status, "finished") && c->time_s < 3.0,
          "background_child_does_not_keep_run_alive", "status=%s/%s time %.0f ms", c->status,
          c->reason, c->time_s * 1e3);
    rec_free(c);
}

static void probe_output_limit(void)
{
    char want_marker[160];
    snprintf(want_marker, sizeof want_marker,
             "\n[codepane: output limit of %u bytes reached; the run was stopped]\n",
             PROBE_MAX_OUTPUT);
    rec *c = run(CP_LANG_PYTHON, "while True:\n    print('x' * 999)\n", 30);
    if (c) {
        check(streq(c->reason, "output_limit") && streq(c->status, "failed") &&
                  c->outlen == PROBE_MAX_OUTPUT && streq(c->err, want_marker) &&
                  c->max_chunk <= PROBE_CHUNK_MAX &&
                  strncmp(c->xerr, "OutputLimitError: ", 18) == 0,
              "output_flood_stops_at_cap_with_one_marker",
              "reason=%s stdout=%zu bytes (cap %u), stderr=\"%s\", largest chunk %zu, time %.0f ms",
              c->reason, c->outlen, PROBE_MAX_OUTPUT, esc(c->err), c->max_chunk, c->time_s * 1e3);
        rec_free(c);
    }
    /* A10: one huge line without a newline is chunked by size. */
    c = run(CP_LANG_PYTHON, "import sys\nsys.stdout.write('a' * 50_000_000)\n", 30);
    if (c) {
        check(streq(c->reason, "output_limit") && c->outlen == PROBE_MAX_OUTPUT &&
                  c->max_chunk <= PROBE_CHUNK_MAX &&
                  c->nchunks >= PROBE_MAX_OUTPUT / PROBE_CHUNK_MAX,
              "huge_line_is_chunked_and_capped", "%zu chunks, largest %zu, stdout %zu", c->nchunks,
              c->max_chunk, c->outlen);
        rec_free(c);
    }
    /* Output exactly at the cap is not a limit. */
    char code[128];
    snprintf(code, sizeof code, "import sys\n_ = sys.stdout.write('y' * %u)\n", PROBE_MAX_OUTPUT);
    c = run(CP_LANG_PYTHON, code, 30);
    if (c) {
        check(streq(c->status, "finished") && c->outlen == PROBE_MAX_OUTPUT,
              "output_exactly_at_cap_is_fine", "status=%s/%s stdout=%zu", c->status, c->reason,
              c->outlen);
        rec_free(c);
    }
}

static void probe_cancel(void)
{
    uint64_t id = 0;
    rec *c = submit(CP_LANG_PYTHON, "import time\nprint('started')\ntime.sleep(30)\n", 30, &id);
    if (!c) return;
    wait_first_out(c, 20);
    double t = now_s();
    cp_runner_cancel(R, id);
    if (!wait_end(c, 10)) {
        check(false, "cancel_running_run", "did not end within 10 s");
        return;
    }
    double lat = c->t_end - t;
    check(streq(c->status, "cancelled") && streq(c->reason, "cancelled") &&
              streq(c->xerr, "cancelled") && streq(c->out, "started\n") && lat < 2.0,
          "cancel_running_run_keeps_output", "status=%s/%s out=\"%s\", ended %.0f ms after cancel",
          c->status, c->reason, esc(c->out), lat * 1e3);
    cp_runner_cancel(R, id); /* finished id: ignored */
    rec_free(c);

    /* A queued run: fill both slots, queue a third, cancel it. */
    uint64_t ids[3];
    rec *cs[3];
    for (int i = 0; i < 3; i++)
        cs[i] = submit(CP_LANG_PYTHON, "import time\ntime.sleep(30)\n", 30, &ids[i]);
    if (!cs[0] || !cs[1] || !cs[2]) return;
    usleep(200000);
    unsigned running = 0, queued = 0;
    cp_runner_counts(R, &running, &queued);
    t = now_s();
    cp_runner_cancel(R, ids[2]);
    bool ended = wait_end(cs[2], 5);
    check(ended && running == 2 && queued == 1 && streq(cs[2]->status, "cancelled") &&
              cs[2]->time_s == 0 && cs[2]->t_end - t < 0.5,
          "cancel_queued_run_ends_without_spawning",
          "counts before %u running / %u queued; ended in %.1f ms", running, queued,
          (cs[2]->t_end - t) * 1e3);
    cp_runner_kill(R, ids[0]);
    cp_runner_cancel(R, ids[1]);
    wait_end(cs[0], 10);
    wait_end(cs[1], 10);
    check(streq(cs[0]->status, "failed") && streq(cs[0]->reason, "killed") &&
              streq(cs[1]->status, "cancelled"),
          "kill_reports_killed", "%s/%s and %s/%s", cs[0]->status, cs[0]->reason, cs[1]->status,
          cs[1]->reason);
    for (int i = 0; i < 3; i++)
        rec_free(cs[i]);
}

static void probe_admission(void)
{
    /* 10 concurrent runs with max_running 2: all end, never more than 2 at once. */
    enum { N = 10 };
    rec *cs[N];
    for (int i = 0; i < N; i++) {
        char code[64];
        snprintf(code, sizeof code, "import time\ntime.sleep(0.2)\nprint(%d)\n", i);
        cs[i] = submit(CP_LANG_PYTHON, code, 30, NULL);
    }
    unsigned max_running = 0;
    double t0 = now_s();
    bool all = false;
    while (now_s() - t0 < PROBE_WAIT_S) {
        unsigned running, queued;
        cp_runner_counts(R, &running, &queued);
        if (running > max_running) max_running = running;
        all = true;
        for (int i = 0; i < N; i++) {
            if (!cs[i]) continue;
            pthread_mutex_lock(&cs[i]->mu);
            if (!cs[i]->ended) all = false;
            pthread_mutex_unlock(&cs[i]->mu);
        }
        if (all) break;
        usleep(3000);
    }
    int good = 0;
    for (int i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof want, "%d\n", i);
        if (cs[i] && cs[i]->ended && streq(cs[i]->status, "finished") && streq(cs[i]->out, want) &&
            cs[i]->nends == 1)
            good++;
    }
    check(all && good == N && max_running <= PROBE_MAX_RUNNING && max_running >= 1,
          "ten_concurrent_runs_all_end_within_slots",
          "%d/%d finished, at most %u running, %.0f ms total", good, N, max_running,
          (now_s() - t0) * 1e3);
    for (int i = 0; i < N; i++)
        rec_free(cs[i]);

    /* Beyond running + queued: busy. */
    rec *fill[PROBE_MAX_RUNNING + PROBE_MAX_QUEUED];
    uint64_t ids[PROBE_MAX_RUNNING + PROBE_MAX_QUEUED];
    int n = 0;
    for (; n < PROBE_MAX_RUNNING + PROBE_MAX_QUEUED; n++) {
        fill[n] = submit(CP_LANG_PYTHON, "import time\ntime.sleep(30)\n", 30, &ids[n]);
        if (!fill[n]) break;
    }
    char err[256] = "";
    rec *extra = rec_new();
    uint64_t xid;
    int rc = cp_runner_submit(R, NULL, CP_LANG_PYTHON, "print(1)", 8, 30, 1, &SINK, extra, &xid,
                              err, sizeof err);
    check(rc == -1 && strncmp(err, "busy: ", 6) == 0 && extra->nends == 0,
          "submit_beyond_queue_is_busy", "rc=%d \"%s\"", rc, err);
    if (rc == 0) {
        cp_runner_cancel(R, xid);
        wait_end(extra, 10);
    }
    rec_free(extra);
    for (int i = 0; i < n; i++)
        cp_runner_cancel(R, ids[i]);
    int ended = 0;
    for (int i = 0; i < n; i++)
        if (wait_end(fill[i], 10) && streq(fill[i]->status, "cancelled")) ended++;
    check(ended == n, "cancel_all_queued_and_running", "%d/%d cancelled", ended, n);
    for (int i = 0; i < n; i++)
        rec_free(fill[i]);
}

/* Processes left behind: children of this process (zombies included: /proc/<pid>/stat's
 * ppid) and processes of the slot uids. Returns how many; the first few are described in
 * desc as "pid:comm:state:uid". */
static int leftovers(unsigned uid_base, unsigned slots, char *desc, size_t cap)
{
    int n = 0;
    size_t o = 0;
    desc[0] = '\0';
    DIR *d = opendir("/proc");
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 1) continue;
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "re");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
        char state = '?';
        int ppid = 0;
        if (!lp || !rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2) continue;
        *rp = '\0';
        snprintf(path, sizeof path, "/proc/%ld/status", pid);
        f = fopen(path, "re");
        unsigned long uid = 0;
        bool have_uid = false;
        if (f) {
            char line[256];
            while (!have_uid && fgets(line, sizeof line, f))
                have_uid = sscanf(line, "Uid: %lu", &uid) == 1;
            fclose(f);
        }
        bool slot_uid = have_uid && uid >= uid_base && uid < (unsigned long)uid_base + slots;
        if (ppid != (int)getpid() && !slot_uid) continue;
        n++;
        if (o + 64 < cap)
            o += (size_t)snprintf(desc + o, cap - o, "%s%ld:%.16s:%c:%lu", o ? " " : "", pid,
                                  lp + 1, state, uid);
    }
    closedir(d);
    return n;
}

/* D8 at the runner's level: runs cancelled at random moments right after submit — while
 * queued, while the supervisor is forking, while bwrap sets up (before and after it
 * reports its namespace init), once running — end as cancelled, and afterwards nothing
 * is left: no child of this process (not even a zombie: a namespace init orphaned by a
 * bwrap killed before it reported the init's pid is reparented to us, the subreaper) and
 * no process under a slot uid. */
static void probe_cancel_storm(unsigned uid_base, unsigned slots)
{
    enum { ROUNDS = 120, BURST = 4 };
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    srand(seed);
    int total = 0, cancelled = 0, ended = 0;
    char bad[256] = "";
    double t0 = now_s();
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t ids[BURST];
        rec *cs[BURST];
        for (int i = 0; i < BURST; i++)
            cs[i] = submit(CP_LANG_PYTHON, "import time\nprint('x', flush=True)\ntime.sleep(30)\n",
                           30, &ids[i]);
        for (int i = 0; i < BURST; i++) {
            if (!cs[i]) continue;
            /* A quarter at once (queued or mid-fork), a quarter within 3 ms (fork and
             * bwrap's setup), the rest within 30 ms (setup, then running). */
            int kind = rand() % 4;
            useconds_t us = kind == 0   ? 0
                            : kind == 1 ? (useconds_t)(rand() % 3000)
                                        : (useconds_t)(rand() % 30000);
            if (us) usleep(us);
            cp_runner_cancel(R, ids[i]);
        }
        for (int i = 0; i < BURST; i++) {
            if (!cs[i]) continue;
            total++;
            if (!wait_end(cs[i], 10)) continue; /* leaked on purpose, as in run() */
            ended++;
            if (streq(cs[i]->status, "cancelled") && cs[i]->nends == 1)
                cancelled++;
            else if (!bad[0])
                snprintf(bad, sizeof bad, "; one ended %.31s/%.31s \"%.160s\"", cs[i]->status,
                         cs[i]->reason, cs[i]->xerr);
            rec_free(cs[i]);
        }
    }
    double took = now_s() - t0;
    unsigned running = 1, queued = 1;
    cp_runner_counts(R, &running, &queued);
    /* Everything is released when the last end was called; allow the kernel a moment. */
    char desc[1024];
    int left = 0;
    for (double until = now_s() + 2.0;;) {
        left = leftovers(uid_base, slots, desc, sizeof desc);
        if (left == 0 || now_s() > until) break;
        usleep(20000);
    }
    check(total == ROUNDS * BURST && cancelled == total && running == 0 && queued == 0,
          "cancel_storm_every_run_ends_cancelled",
          "%d/%d ended, %d cancelled, counts %u/%u after, %.1f s, seed %u%s", ended, total,
          cancelled, running, queued, took, seed, bad);
    check(left == 0, "cancel_storm_leaves_no_child_no_zombie_no_slot_uid_process",
          "%d left%s%s (seed %u)", left, left ? ": " : "", desc, seed);
}

static void probe_stop(void)
{
    uint64_t id;
    rec *a = submit(CP_LANG_PYTHON, "import time\nprint('x')\ntime.sleep(30)\n", 30, &id);
    rec *b = submit(CP_LANG_PYTHON, "import time\ntime.sleep(30)\n", 30, &id);
    rec *q = submit(CP_LANG_PYTHON, "import time\ntime.sleep(30)\n", 30, &id);
    if (!a || !b || !q) return;
    wait_first_out(a, 20);
    double t = now_s();
    cp_runner_stop(R);
    R = NULL;
    double took = now_s() - t;
    check(a->ended && b->ended && q->ended && streq(a->reason, "killed") &&
              streq(b->reason, "killed") && streq(q->reason, "killed") &&
              streq(a->status, "failed") && took < 5,
          "stop_ends_every_run_killed", "%s/%s %s/%s %s/%s, stop took %.0f ms", a->status,
          a->reason, b->status, b->reason, q->status, q->reason, took * 1e3);
    rec_free(a);
    rec_free(b);
    rec_free(q);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char dir[PATH_MAX];
    if (!realpath(argc > 1 ? argv[1] : "src/server/runners", dir)) {
        fprintf(stderr, "runner_probe: runners directory not found\n");
        return 2;
    }
    /* Slot uids of its own (CP_PROBE_UID_BASE), so a server or another probe running on
     * the same host is never touched by this one's sweep. */
    const char *ub = getenv("CP_PROBE_UID_BASE");
    cp_sandbox_config scfg = {
        .uid_base = ub ? (unsigned)atoi(ub) : 63100,
        .slots = PROBE_MAX_RUNNING,
        .memory_bytes = 512u * 1024 * 1024,
        .pids_max = 128,
        .tmp_bytes = 64u * 1024 * 1024,
        .cpu_quota = 1.0,
        .runner_dir = dir,
    };
    char err[512];
    cp_sandbox *sb = NULL;
    if (cp_sandbox_init(&sb, &scfg, err, sizeof err) != 0) {
        fprintf(stderr, "runner_probe: sandbox: %s\n", err);
        return 2;
    }
    cp_runner_config rcfg = {
        .max_running = PROBE_MAX_RUNNING,
        .max_queued = PROBE_MAX_QUEUED,
        .max_output = PROBE_MAX_OUTPUT,
        .chunk_max = PROBE_CHUNK_MAX,
    };
    if (cp_runner_start(&R, &rcfg, sb, err, sizeof err) != 0) {
        fprintf(stderr, "runner_probe: runner: %s\n", err);
        return 2;
    }
    printf("runners: %s, cgroups: %s\n", dir, cp_sandbox_has_cgroups(sb) ? "yes" : "no");

    char want[64];
    snprintf(want, sizeof want, "%s\n", HELLO);
    char code[256];
    snprintf(code, sizeof code, "print(\"%s\")\n", HELLO);
    probe_hello(CP_LANG_PYTHON, code, want);
    snprintf(code, sizeof code, "console.log(\"%s\");\n", HELLO);
    probe_hello(CP_LANG_JAVASCRIPT, code, want);
    snprintf(code, sizeof code, "System.out.println(\"%s\");\n", HELLO);
    probe_hello(CP_LANG_JAVA, code, want);
    snprintf(code, sizeof code, "cat(\"%s\\n\")\n", HELLO);
    probe_hello(CP_LANG_R, code, want);

    probe_streaming();
    probe_write_to_chunk_latency();

    probe_error(CP_LANG_PYTHON, "zero_division",
                "def f():\n    return 1 / 0\nprint('before')\nf()\n", "ZeroDivisionError",
                "division by zero", "line 2, in f");
    probe_error(CP_LANG_PYTHON, "syntax", "def f(:\n", "SyntaxError",
                "invalid syntax (<code>, line 1)", NULL);
    probe_error(CP_LANG_JAVASCRIPT, "type_error", "function f() { null.x; }\nf();\n", "TypeError",
                "Cannot read properties of null (reading 'x')", "at f (<code>:1:");
    probe_error(CP_LANG_JAVASCRIPT, "unhandled_rejection",
                "Promise.reject(new RangeError('no'));\n", "RangeError", "no", NULL);
    probe_error(CP_LANG_JAVA, "arithmetic", "int a = 0;\nSystem.out.println(1 / a);\n",
                "java.lang.ArithmeticException", "/ by zero", "at Main.main(Main.java:2)");
    probe_error(CP_LANG_JAVA, "compile", "int x = \"s\";\n", "CompilationError",
                "Main.java:1: error: incompatible types: String cannot be converted to int",
                "compilation failed");
    probe_error(CP_LANG_R, "stop", "f <- function() stop(\"x\")\nf()\n", "simpleError", "x",
                "Error in f() : x");
    probe_error(CP_LANG_R, "stop_top_level", "stop(\"x\")\n", "simpleError", "x", NULL);

    probe_results();
    probe_order();
    probe_exit_codes();
    probe_memory(sb);
    probe_encoding();
    probe_timeout();
    probe_output_limit();
    probe_cancel();
    probe_admission();
    probe_cancel_storm(scfg.uid_base, scfg.slots);
    probe_stop();

    cp_sandbox_free(sb);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
