/* codepane-server: the configuration (command-line flags and environment) and every
 * fixed limit of the HTTP/WebSocket front, in one place.
 *
 * Ownership: cp_config owns its strings and arrays until cp_config_free(). */
#ifndef CP_CONFIG_H
#define CP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lang.h"

/* ---- fixed limits (not configurable; change them here) ---------------------------- */

/* civetweb: a request's headers must all arrive within this time (slowloris, D6); it
 * is also the deadline of any single socket write (a WebSocket frame included), so a
 * client that stops reading cannot hold a connection for longer. */
#define CP_SRV_REQUEST_TIMEOUT_MS 10000
/* civetweb: keep-alive idle time between HTTP requests. */
#define CP_SRV_KEEPALIVE_MS 2000
/* Worker threads kept free for plain HTTP when sizing the WebSocket connection cap
 * (each WebSocket holds one civetweb worker for its whole life). */
#define CP_SRV_HTTP_SPARE_THREADS 8
/* The fewest WebSocket connections a configuration must leave room for. */
#define CP_SRV_WS_MIN_CONNS 4
/* Default worker threads on top of the HTTP reserve, when --threads is not given.
 * civetweb holds one worker per connection from the moment it accepts it, also while the
 * request head is still arriving, and its public API shows nothing of a connection (not
 * even its address) before the head is complete, so a per-address cap cannot apply
 * earlier. The defence against slow request heads (D6) is then a pool much larger than
 * honest use, so that hundreds of stalled sockets leave workers free until the request
 * deadline drops them. [measured] a worker costs about 15 KiB of resident memory
 * (1,024 workers: 19 MiB RSS in all), so the pool is cheap. */
#define CP_SRV_THREADS_DEFAULT 1024
/* A callTool run that has not ended after this long starts a chunked reply padded with
 * JSON white space, once per interval, so a client that went away is noticed (a failed
 * write) and its run cancelled. */
#define CP_SRV_HTTP_HEARTBEAT_MS 1000

/* On shutdown, how long stopped runs get to write their HTTP replies. */
#define CP_SRV_DRAIN_MS 3000

/* Bytes queued for one WebSocket beyond which it is closed (1008) and its runs
 * cancelled: the runner's per-run output cap bounds honest use well below this. */
#define CP_SRV_WS_QUEUE_MAX (16u * 1024 * 1024)
/* A WebSocket with no byte from the client for this long is pinged; one that then stays
 * silent for CP_SRV_WS_PONG_TIMEOUT_MS more is closed (1001). Clients ping every 20 s
 * (spec §6.7), browsers answer pings by themselves. */
#define CP_SRV_WS_IDLE_TIMEOUT_MS 60000
#define CP_SRV_WS_PONG_TIMEOUT_MS 30000
/* A frame whose header or payload has begun must make progress: no byte of it for this
 * long closes the connection (1008; a stalled frame, D6). */
#define CP_SRV_WS_FRAME_STALL_MS 10000
/* After the server's close frame, the client's close frame is awaited for at most this
 * long, and no longer than CP_SRV_WS_CLOSE_QUIET_MS after the client's last byte: then
 * the connection is dropped. (Hanging up at once, with the client's data unread, would
 * make the kernel reset the connection, and the client could miss the close frame.) */
#define CP_SRV_WS_CLOSE_GRACE_MS 2000
#define CP_SRV_WS_CLOSE_QUIET_MS 500
/* While the server stops, the longest a WebSocket may take to write and close. */
#define CP_SRV_WS_STOP_GRACE_MS 1000
/* Header fields of a WebSocket upgrade, in bytes, beyond which it is refused (431). */
#define CP_SRV_WS_HEAD_MAX (8u * 1024)
/* Bytes read from a WebSocket per system call. */
#define CP_SRV_WS_READ_CHUNK (16u * 1024)
/* Runs in flight on one WebSocket at a time. */
#define CP_SRV_WS_MAX_INFLIGHT 32
/* Consecutive frames that are not JSON objects before the connection is closed (1003). */
#define CP_SRV_WS_GARBAGE_MAX 16

/* Failed authentications (bad API key or token) per client IP and window before
 * further failures are answered 429 (a valid credential keeps working, D16). */
#define CP_SRV_AUTH_FAIL_MAX      20
#define CP_SRV_AUTH_FAIL_WINDOW_S 60
/* Distinct client IPs tracked at once (connection counts, failure counts). */
#define CP_SRV_IP_TABLE_SIZE 1024

/* A released or expired session answers getSessionInfo with FINISH for this long. */
#define CP_SRV_TOMBSTONE_S   900
#define CP_SRV_TOMBSTONE_MAX 4096
/* Released session ids the process remembers, so that their descriptors cannot revive
 * them (session.h); past this many releases the oldest is forgotten. A restart forgets
 * them all. 4096 ids are about 110 KiB. */
#define CP_SRV_RELEASED_REMEMBER 4096
/* Session reaper period. */
#define CP_SRV_REAPER_TICK_MS 1000

/* CPUs per run (cgroup cpu quota) and the runner's chunk size. */
#define CP_SRV_CPU_QUOTA 1.0
#define CP_SRV_CHUNK_MAX (16u * 1024)

/* Longest URL path the static file handler looks at. */
#define CP_SRV_PATH_MAX 1024

/* ---- configuration ----------------------------------------------------------------- */

typedef struct {
    char listen_addr[64]; /* "127.0.0.1" or "::1" (no brackets) */
    bool listen_v6;
    unsigned port;    /* 0 = pick a free port (updated once listening) */
    char *public_url; /* no trailing slash; NULL = derive from listen once known */
    char *api_key;    /* NULL = none (loopback-only control API) */
    char **origins;   /* extra allowed origins, normalised (lower case, no slash) */
    size_t norigins;
    char *web_root;                      /* absolute, or NULL */
    char *runners_dir;                   /* absolute */
    char *kernels_dir;                   /* absolute, or NULL: no kernels */
    unsigned kernel_langs;               /* bit 1 << cp_lang per language that runs in kernels */
    unsigned kernel_pool[CP_LANG_R + 1]; /* idle kernels kept started per language */
    double kernel_idle_s;                /* a session's idle kernel is stopped after this */
    unsigned kernels_per_session;
    double interrupt_grace_s;
    char *session_secret_file; /* as given, or NULL: a per-process secret */
    unsigned max_runs, max_queue;
    double timeout_default, timeout_max;
    size_t max_code_bytes, max_body_bytes, max_output_bytes;
    size_t memory_bytes, tmp_bytes;
    unsigned pids;
    double session_idle_s;
    unsigned max_sessions;
    unsigned max_conns_per_ip;
    unsigned uid_base;
    unsigned threads;      /* civetweb workers */
    unsigned ws_max_conns; /* derived: threads minus the HTTP reserve */
} cp_config;

/* Parse argv and the environment into cfg (which it initialises). Returns 0; 1 when
 * --help printed the usage (exit 0); -1 with a one-line message in err (exit 2). */
int cp_config_parse(cp_config *cfg, int argc, char **argv, char *err, size_t errcap);
void cp_config_free(cp_config *cfg);

/* The usage text: every flag, its environment variable and default. */
void cp_config_usage(FILE *out);

/* Once the real port is known: fill public_url if it was not given. -1 on OOM. */
int cp_config_finish(cp_config *cfg, unsigned port);

#endif
