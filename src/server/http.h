/* codepane-server: the HTTP front. One catch-all civetweb handler routes the control API
 * (spec §1, §12.1-2, §12.6), the LinkUrl route POST /link/<sid>/callTool (§3, §12.3),
 * the gateway POST /mcp (§4, §12.4), GET /health and static files; it applies the Host
 * allow-list (D14), the Origin allow-list and CORS (D15), body caps read only after
 * admission (D1), per-IP connection caps (D7) and the per-IP rate limit on failed
 * authentication (D16). The WebSocket front (ws.h) shares the server state and guards.
 *
 * Ownership: cp_server is the caller's (usually main's); cp_server_init fills the
 * derived fields it owns until cp_server_free. */
#ifndef CP_HTTP_H
#define CP_HTTP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <civetweb.h>

#include "config.h"
#include "runner.h"
#include "session.h"
#include "static.h"

typedef struct cp_ip_entry cp_ip_entry;

typedef struct cp_server {
    cp_config *cfg;
    cp_sessions *sessions;
    struct mg_context *mg;
    atomic_bool ready; /* false until the runner is up, and again while stopping */

    /* The runner, behind a lock so shutdown can take it away while handlers run. */
    pthread_rwlock_t runner_lock;
    cp_runner *runner;

    /* Derived from cfg once the port is known (cp_server_init). */
    char **hosts; /* allowed Host header values, lower case */
    size_t nhosts;
    char **origins; /* allowed Origin values: the server's own plus --allow-origin */
    size_t norigins;
    char *link_base; /* "<public>/link/" */
    char *ws_base;   /* "ws(s)://<public host>/ws/" */
    char *tool_list; /* the toolList JSON text */
    cp_static *web;  /* NULL without a web root */

    pthread_mutex_t ip_lock;
    cp_ip_entry *ips;
    atomic_uint ws_conns;
    atomic_uint api_active; /* API requests being handled (shutdown waits for them) */
} cp_server;

/* Derive hosts, origins and URLs from cfg (whose port and public_url are final), open
 * the web root. Call before cp_http_register. -1 with a message. */
int cp_server_init(cp_server *srv, cp_config *cfg, cp_sessions *sessions, char *err, size_t errcap);
void cp_server_free(cp_server *srv);

/* Install the HTTP and WebSocket handlers on srv->mg. */
void cp_http_register(cp_server *srv);

/* Hand the runner to the handlers (NULL takes it away; waits for calls in progress). */
void cp_server_set_runner(cp_server *srv, cp_runner *r);

/* Wait (at most timeout_ms) until no API request is being handled: after the runner
 * has stopped, every waiting request is writing its reply; let it finish before civetweb
 * stops (which fails every write in progress). */
void cp_server_drain(cp_server *srv, unsigned timeout_ms);

/* cp_runner_submit / cp_runner_cancel behind the runner lock; submit fails with
 * "the server is shutting down" once the runner is gone. */
int cp_server_submit(cp_server *srv, const char *session, cp_lang lang, const char *code,
                     size_t code_len, double timeout_s, long long count, const cp_run_sink *sink,
                     void *ud, uint64_t *id, char *err, size_t errcap);

/* ---- guards shared with the WebSocket front ---------------------------------------- */

/* The Host header is one of the server's own names (D14). */
/* Add "Keep-Alive: timeout=<s>" to a response being built: civetweb closes an idle
 * keep-alive connection after CP_SRV_KEEPALIVE_MS, and clients that assume a longer idle
 * time (Node's fetch 4 s, its http agent 5 s) would otherwise reuse a socket just as it
 * closes, which fails a POST. Both honour the hint, less a second. */
void cp_http_keepalive_hint(struct mg_connection *conn);

bool cp_http_host_ok(const cp_server *srv, const struct mg_connection *conn);
/* The Origin header: 0 when absent, 1 when allowed, -1 when present and not allowed.
 * *origin gets the header value when present. */
int cp_http_origin(const cp_server *srv, const struct mg_connection *conn, const char **origin);
/* Count a connection/request of this client IP; -1 when it is at --max-conns-per-ip. */
int cp_http_ip_acquire(cp_server *srv, const char *ip);
void cp_http_ip_release(cp_server *srv, const char *ip);
/* Record a failed authentication; returns the status to answer: 401, or 429 once the
 * IP is past CP_SRV_AUTH_FAIL_MAX failures in the current window. */
int cp_http_auth_failed(cp_server *srv, const char *ip);
/* Write a complete HTTP error response by hand (status line, `extra_headers` — header
 * lines each ending in CRLF, or NULL — and a text/plain body) and end the connection
 * after it. Used where civetweb's own reply helpers do not fit (the WebSocket route). */
void cp_http_refuse(struct mg_connection *conn, int status, const char *extra_headers,
                    const char *message);

/* ---- connections ------------------------------------------------------------------- */

/* The socket descriptor of a connection, found among the process's descriptors by its
 * two ends (civetweb 1.15 has no accessor for it); -1 if not found. Valid while the
 * connection's worker is in a civetweb callback for it. */
int cp_http_socket_fd(const struct mg_connection *conn);

#endif
