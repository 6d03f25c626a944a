/* codepane-server: start-up and shutdown.
 *
 * Order: configuration → the session secret (read or created; a bad secret file is a
 * refusal to start) → sandbox (seccomp filter, cgroups) → sessions → civetweb
 * listening (handlers answer 503 until ready) → the sandbox self-test, run against the
 * real listening port so "the sandbox cannot reach the server" is tested for real →
 * the runner → ready, and one line on stdout. The self-test cannot be skipped: if
 * confinement does not hold, the server refuses to start (exit 1).
 *
 * SIGINT/SIGTERM: not ready → release every session (cancelling runs, closing their
 * WebSockets) → take the runner away from the handlers and stop it (every run ends) →
 * stop civetweb (joins its threads) → free. Exit 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>

#include "config.h"
#include "http.h"
#include "runner.h"
#include "sandbox.h"
#include "secret.h"
#include "session.h"
#include "ws.h"

#define PROG "codepane-server"

static sem_t stop_sem;

static void on_signal(int sig)
{
    (void)sig;
    sem_post(&stop_sem); /* async-signal-safe */
}

static int log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    fprintf(stderr, PROG ": civetweb: %s\n", message);
    return 1;
}

static int install_signals(void)
{
    if (sem_init(&stop_sem, 0, 0) != 0) return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL)) return -1;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static struct mg_context *start_civetweb(const cp_config *cfg, cp_server *srv, char *err,
                                         size_t errcap)
{
    char ports[96], threads[16], req_to[16], ka_to[16];
    if (cfg->listen_v6)
        snprintf(ports, sizeof ports, "[%s]:%u", cfg->listen_addr, cfg->port);
    else
        snprintf(ports, sizeof ports, "%s:%u", cfg->listen_addr, cfg->port);
    snprintf(threads, sizeof threads, "%u", cfg->threads);
    snprintf(req_to, sizeof req_to, "%d", CP_SRV_REQUEST_TIMEOUT_MS);
    snprintf(ka_to, sizeof ka_to, "%d", CP_SRV_KEEPALIVE_MS);
    /* clang-format off */
    const char *options[] = {
        "listening_ports", ports,
        "num_threads", threads,
        "tcp_nodelay", "1",
        "request_timeout_ms", req_to,
        "enable_keep_alive", "yes",
        "keep_alive_timeout_ms", ka_to,
        /* We route and decode paths ourselves (static.c decodes exactly once). */
        "decode_url", "no",
        "enable_directory_listing", "no",
        /* civetweb's own CORS answers "*": switch it off, http.c answers instead. */
        "access_control_allow_origin", "",
        "access_control_allow_methods", "",
        "access_control_allow_headers", "",
        NULL,
    };
    /* clang-format on */
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.log_message = log_message;
    /* /ws/ is served by ws.c from begin_request, not by civetweb's WebSocket code. */
    cb.begin_request = cp_ws_begin_request;
    struct mg_context *ctx = mg_start(&cb, srv, options);
    if (!ctx)
        snprintf(err, errcap, "cannot listen on %s (address in use or not available?)", ports);
    return ctx;
}

int main(int argc, char **argv)
{
    char err[1024];
    cp_config cfg;
    int rc = cp_config_parse(&cfg, argc, argv, err, sizeof err);
    if (rc == 1) return 0;
    if (rc != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        cp_config_free(&cfg);
        return 2;
    }
    if (install_signals() != 0) {
        fprintf(stderr, PROG ": cannot install signal handlers: %s\n", strerror(errno));
        return 1;
    }

    int status = 1;
    cp_sandbox *sb = NULL;
    cp_sessions *sessions = NULL;
    cp_runner *runner = NULL;
    struct mg_context *ctx = NULL;
    cp_server srv;
    memset(&srv, 0, sizeof srv);
    bool srv_ready = false;
    static cp_secret secret; /* static: 4 KiB is better off the stack */

    cp_sandbox_config sc = {
        .uid_base = cfg.uid_base,
        .slots = cfg.max_runs,
        .memory_bytes = cfg.memory_bytes,
        .pids_max = cfg.pids,
        .tmp_bytes = cfg.tmp_bytes,
        .cpu_quota = CP_SRV_CPU_QUOTA,
        .runner_dir = cfg.runners_dir,
        .kernel_dir = cfg.kernels_dir,
    };
    /* First: a secret file that is refused should stop the start before anything else
     * is set up. */
    bool created = false;
    if (cfg.session_secret_file
            ? cp_secret_load_file(&secret, cfg.session_secret_file, &created, err, sizeof err)
            : cp_secret_random(&secret, err, sizeof err)) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    if (created)
        fprintf(stderr,
                PROG ": created the session secret file %s (%d random bytes, mode 0600); "
                     "sessions survive restarts while it stays the same\n",
                cfg.session_secret_file, CP_SECRET_NEW_BYTES);
    if (cp_sandbox_init(&sb, &sc, err, sizeof err) != 0) {
        fprintf(stderr, PROG ": sandbox: %s\n", err);
        goto out;
    }
    rc = cp_sessions_new(&sessions, cfg.max_sessions, cfg.session_idle_s, &secret, err, sizeof err);
    cp_secret_wipe(&secret); /* the table has its copy */
    if (rc != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }

    mg_init_library(0);
    if (!(ctx = start_civetweb(&cfg, &srv, err, sizeof err))) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    struct mg_server_port sp[4];
    memset(sp, 0, sizeof sp);
    int nports = mg_get_server_ports(ctx, 4, sp);
    if (nports < 1 || sp[0].port <= 0) {
        fprintf(stderr, PROG ": cannot tell which port civetweb listens on\n");
        goto out;
    }
    if (cp_config_finish(&cfg, (unsigned)sp[0].port) != 0 ||
        cp_server_init(&srv, &cfg, sessions, err, sizeof err) != 0) {
        fprintf(stderr, PROG ": %s\n", cfg.public_url ? err : "out of memory");
        goto out;
    }
    srv_ready = true;
    srv.mg = ctx;
    cp_http_register(&srv);

    if (cp_sandbox_selftest(sb, (int)cfg.port, err, sizeof err) != 0) {
        fprintf(stderr, PROG ": sandbox self-test failed, refusing to start: %s\n", err);
        goto out;
    }
    cp_runner_config rcfg = {
        .max_running = cfg.max_runs,
        .max_queued = cfg.max_queue,
        .max_output = cfg.max_output_bytes,
        .chunk_max = CP_SRV_CHUNK_MAX,
        .kernel_langs = cfg.kernel_langs,
        .kernel_idle_s = cfg.kernel_idle_s,
        .kernels_per_session = cfg.kernels_per_session,
        .interrupt_grace_s = cfg.interrupt_grace_s,
    };
    memcpy(rcfg.pool, cfg.kernel_pool, sizeof rcfg.pool);
    if (cp_runner_start(&runner, &rcfg, sb, err, sizeof err) != 0) {
        fprintf(stderr, PROG ": runner: %s\n", err);
        goto out;
    }
    cp_sessions_set_runner(sessions, runner);
    cp_server_set_runner(&srv, runner);
    atomic_store(&srv.ready, true);

    char listen_url[128];
    if (cfg.listen_v6)
        snprintf(listen_url, sizeof listen_url, "http://[%s]:%u/", cfg.listen_addr, cfg.port);
    else
        snprintf(listen_url, sizeof listen_url, "http://%s:%u/", cfg.listen_addr, cfg.port);
    if (cfg.web_root)
        printf(PROG " listening on %s (playground: %s/)\n", listen_url, cfg.public_url);
    else
        printf(PROG " listening on %s (playground: none, no web root)\n", listen_url);
    fflush(stdout);

    while (sem_wait(&stop_sem) != 0 && errno == EINTR) {
    }
    status = 0;

out:
    if (srv_ready) atomic_store(&srv.ready, false);
    if (sessions) cp_sessions_shutdown(sessions);
    if (sessions) cp_sessions_set_runner(sessions, NULL);
    if (srv_ready) cp_server_set_runner(&srv, NULL);
    if (runner) cp_runner_stop(runner);
    if (srv_ready) cp_server_drain(&srv, CP_SRV_DRAIN_MS);
    if (ctx) mg_stop(ctx);
    if (srv_ready) cp_server_free(&srv);
    cp_sessions_free(sessions);
    if (sb) cp_sandbox_free(sb);
    mg_exit_library();
    cp_secret_wipe(&secret);
    cp_config_free(&cfg);
    return status;
}
