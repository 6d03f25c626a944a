/* codepane-server: the session WebSocket (see ws.h).
 *
 * Why the upgrade is taken by hand: civetweb 1.15's WebSocket layer reads each frame
 * whole into memory before any handler sees it (D1), answers malformed frames and bad
 * handshakes loosely (D4, D5), and offers no way to read the raw byte stream of a
 * connection (mg_read returns nothing for a request without a body). So this module
 * answers /ws/ requests itself from begin_request, writes the 101, and reads and writes
 * the connection's socket directly (cp_http_socket_fd), feeding the bytes to the sans-IO
 * parser of wsproto.h. civetweb closes the socket once begin_request returns.
 *
 * Lifetime of a connection object (ws_conn), refcounted:
 *   upgrade          creates it (one reference for the connection thread) and hooks it
 *                    to the session;
 *   connection loop  reads frames, starts and cancels runs (each run holds a reference),
 *                    writes the queue;
 *   teardown         marks it stopped (after which nothing is queued and nothing woken),
 *                    cancels its runs, closes the eventfd, drops the thread's reference.
 * Locks: `mu` guards the queue, the state flags and the run list. Lock order: session
 * table → mu (the session hook takes mu). The socket, the parser and everything in
 * `io` belong to the connection thread alone. */
#define _GNU_SOURCE
#include "ws.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "request.h"
#include "utf8.h"
#include "wsproto.h"

#define SERVER_NAME           CP_DEFAULT_TARGET
#define SUBPROTOCOL           "codepane.v1"
#define TOKEN_PROTOCOL_PREFIX "codepane.token."
#define MSG_EMPTY_CODE        "Code must not be empty"
#define WS_PREFIX             "/ws/"

/* Poll at least this often, to notice the server stopping. */
#define LOOP_TICK_MS 1000

typedef struct wq_item {
    struct wq_item *next;
    unsigned opcode;
    char *data;
    size_t len;
} wq_item;

typedef struct ws_run ws_run;

typedef struct ws_conn {
    atomic_int refs;
    cp_server *srv;
    cp_session *session;
    cp_session_hook hook;
    char ip[48];
    int efd; /* eventfd: written under mu while !stop */

    pthread_mutex_t mu;
    wq_item *head, *tail;
    size_t queued;
    bool closing; /* a close frame is queued or sent: no more data frames */
    bool stop;    /* the connection thread has finished: queue nothing, wake nothing */
    ws_run *runs; /* in flight */
    unsigned nruns;

    /* connection thread only */
    int fd;
    cp_wsp parser;
    unsigned garbage;
    /* Here, not on the stack: civetweb's workers have small stacks (100 KiB in Debian's
     * build), and message handling goes on below the read. */
    uint8_t rbuf[CP_SRV_WS_READ_CHUNK];
} ws_conn;

struct ws_run {
    atomic_int refs;
    ws_conn *wc;
    ws_run *prev, *next; /* wc->runs, under wc->mu */
    bool listed;
    char *inv_id;
    long seq; /* supervisor thread only */
    cp_run_rec rec;
};

/* ---- connection object ---------------------------------------------------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void free_items(wq_item *it)
{
    while (it) {
        wq_item *n = it->next;
        free(it->data);
        free(it);
        it = n;
    }
}

static void wc_unref(ws_conn *wc)
{
    if (atomic_fetch_sub(&wc->refs, 1) != 1) return;
    free_items(wc->head);
    cp_session_put(wc->session);
    pthread_mutex_destroy(&wc->mu);
    free(wc);
}

static void run_unref(ws_run *run)
{
    if (atomic_fetch_sub(&run->refs, 1) != 1) return;
    ws_conn *wc = run->wc;
    free(run->inv_id);
    free(run);
    wc_unref(wc);
}

/* Wake the connection thread. mu held. */
static void wake(ws_conn *wc)
{
    if (wc->stop) return;
    uint64_t one = 1;
    ssize_t r = write(wc->efd, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is already non-zero, it is awake anyway */
}

/* Drop queued frames. mu held. */
static void drop_queue(ws_conn *wc)
{
    free_items(wc->head);
    wc->head = wc->tail = NULL;
    wc->queued = 0;
}

static void push_item(ws_conn *wc, wq_item *it, bool front)
{
    if (front) {
        it->next = wc->head;
        wc->head = it;
        if (!wc->tail) wc->tail = it;
    } else {
        it->next = NULL;
        if (wc->tail)
            wc->tail->next = it;
        else
            wc->head = it;
        wc->tail = it;
    }
    wc->queued += it->len;
    wake(wc);
}

static wq_item *new_item(unsigned opcode, const void *data, size_t len)
{
    wq_item *it = calloc(1, sizeof *it);
    if (!it) return NULL;
    it->opcode = opcode;
    it->len = len;
    if (len) {
        if (!(it->data = malloc(len))) {
            free(it);
            return NULL;
        }
        memcpy(it->data, data, len);
    }
    return it;
}

/* Stop sending data and queue a close frame behind nothing (a frame being written
 * finishes first). code 0: a close frame without a body. mu held. */
static void begin_close(ws_conn *wc, unsigned code, const char *reason)
{
    if (wc->closing || wc->stop) return;
    wc->closing = true;
    drop_queue(wc);
    uint8_t body[CP_WS_CONTROL_MAX];
    size_t n = code ? cp_wsp_close_payload(body, code, reason) : 0;
    wq_item *it = new_item(CP_WS_OP_CLOSE, body, n);
    if (it)
        push_item(wc, it, false);
    else
        wake(wc); /* no memory for the frame: the thread sees `closing` and hangs up */
}

static void close_conn(ws_conn *wc, unsigned code, const char *reason)
{
    pthread_mutex_lock(&wc->mu);
    begin_close(wc, code, reason);
    pthread_mutex_unlock(&wc->mu);
}

/* Queue one text frame (consumed). Past the byte cap the connection is closed (1008;
 * the connection thread then cancels its runs). Any thread. */
static void enqueue(ws_conn *wc, char *text)
{
    if (!text) return;
    wq_item *it = calloc(1, sizeof *it);
    if (!it) {
        free(text);
        return;
    }
    it->opcode = CP_WS_OP_TEXT;
    it->data = text;
    it->len = strlen(text);
    pthread_mutex_lock(&wc->mu);
    if (wc->closing || wc->stop) {
        free_items(it);
    } else if (wc->queued + it->len > CP_SRV_WS_QUEUE_MAX) {
        free_items(it);
        begin_close(wc, CP_WS_CLOSE_POLICY, "send queue overflow: the client reads too slowly");
    } else {
        push_item(wc, it, false);
    }
    pthread_mutex_unlock(&wc->mu);
}

/* Queue a ping or pong ahead of the data frames. Connection thread. */
static void enqueue_control(ws_conn *wc, unsigned opcode, const void *data, size_t len)
{
    wq_item *it = new_item(opcode, data, len);
    if (!it) return;
    pthread_mutex_lock(&wc->mu);
    if (wc->closing || wc->stop)
        free_items(it);
    else
        push_item(wc, it, true);
    pthread_mutex_unlock(&wc->mu);
}

/* Session released or expired (table lock held: only queue the close). */
static void session_ended(cp_session_hook *hook)
{
    ws_conn *wc = (ws_conn *)((char *)hook - offsetof(ws_conn, hook));
    close_conn(wc, CP_WS_CLOSE_GOING_AWAY, "session released");
}

/* ---- run sinks (supervisor thread) ------------------------------------------------------ */

static void sink_chunk(void *ud, bool is_stderr, const char *utf8, size_t len)
{
    ws_run *run = ud;
    enqueue(run->wc, cp_frame_chunk(run->inv_id, SERVER_NAME, ++run->seq, is_stderr, utf8, len));
}

static void sink_result(void *ud, const cp_result_item *item)
{
    ws_run *run = ud;
    enqueue(run->wc, cp_frame_result(run->inv_id, SERVER_NAME, ++run->seq, item));
}

static void sink_error(void *ud, const char *name, const char *value, const char *traceback)
{
    ws_run *run = ud;
    enqueue(run->wc,
            cp_frame_error_event(run->inv_id, SERVER_NAME, ++run->seq, name, value, traceback));
}

static void unlist(ws_conn *wc, ws_run *run)
{
    pthread_mutex_lock(&wc->mu);
    if (run->listed) {
        if (run->prev)
            run->prev->next = run->next;
        else
            wc->runs = run->next;
        if (run->next) run->next->prev = run->prev;
        run->listed = false;
        wc->nruns--;
    }
    pthread_mutex_unlock(&wc->mu);
}

static void sink_end(void *ud, const cp_run_outcome *o)
{
    ws_run *run = ud;
    ws_conn *wc = run->wc;
    enqueue(wc, cp_frame_end(run->inv_id, SERVER_NAME, ++run->seq, o->status, o->has_count,
                             o->count, o->time_s, o->execution_error, o->reason));
    unlist(wc, run);
    cp_session_run_end(wc->session, &run->rec);
    run_unref(run);
}

static const cp_run_sink WS_SINK = {sink_chunk, sink_result, sink_error, sink_end};

/* ---- messages (connection thread) ------------------------------------------------------ */

static void send_error(ws_conn *wc, const char *inv_id, const char *message)
{
    enqueue(wc, cp_frame_error(inv_id, SERVER_NAME, message));
}

static ws_run *find_run(ws_conn *wc, const char *inv_id)
{
    for (ws_run *r = wc->runs; r; r = r->next)
        if (strcmp(r->inv_id, inv_id) == 0) return r;
    return NULL;
}

static void start_run(ws_conn *wc, const cp_run_request *req)
{
    cp_server *srv = wc->srv;
    char msg[512];
    if (req->server && strcmp(req->server, SERVER_NAME) != 0) {
        snprintf(msg, sizeof msg, "unknown target \"%.64s\": this server is \"%s\"", req->server,
                 SERVER_NAME);
        send_error(wc, req->request_id, msg);
        return;
    }
    if (req->code_len == 0) {
        send_error(wc, req->request_id, MSG_EMPTY_CODE);
        return;
    }
    if (req->code_len > srv->cfg->max_code_bytes) {
        snprintf(msg, sizeof msg, "code too large: %zu bytes; the limit is %zu bytes",
                 req->code_len, srv->cfg->max_code_bytes);
        send_error(wc, req->request_id, msg);
        return;
    }
    ws_run *run = calloc(1, sizeof *run);
    if (!run || !(run->inv_id = strdup(req->request_id))) {
        free(run);
        send_error(wc, req->request_id, "out of memory");
        return;
    }
    run->wc = wc;
    atomic_init(&run->refs, 2); /* this function's and the sink's */

    pthread_mutex_lock(&wc->mu);
    const char *refuse = NULL;
    if (find_run(wc, run->inv_id))
        refuse = "invocationId is already in use by a running invocation";
    else if (wc->nruns >= CP_SRV_WS_MAX_INFLIGHT)
        refuse = "too many runs in flight on this connection";
    if (!refuse) {
        run->next = wc->runs;
        if (wc->runs) wc->runs->prev = run;
        wc->runs = run;
        run->listed = true;
        wc->nruns++;
        atomic_fetch_add(&wc->refs, 1); /* the run's reference to wc */
    }
    pthread_mutex_unlock(&wc->mu);
    if (refuse) {
        send_error(wc, req->request_id, refuse);
        free(run->inv_id);
        free(run);
        return;
    }

    long long count;
    if (cp_session_run_begin(wc->session, &run->rec, wc, req->lang, &count, msg, sizeof msg)) {
        send_error(wc, req->request_id, msg);
        unlist(wc, run);
        atomic_store(&run->refs, 1);
        run_unref(run);
        return;
    }
    uint64_t id;
    if (cp_server_submit(srv, cp_session_id(wc->session), req->lang, req->code, req->code_len,
                         req->timeout_s, count, &WS_SINK, run, &id, msg, sizeof msg)) {
        cp_session_run_failed(wc->session, &run->rec, req->lang, count);
        send_error(wc, req->request_id, msg);
        unlist(wc, run);
        atomic_store(&run->refs, 1);
        run_unref(run);
        return;
    }
    cp_session_run_started(wc->session, &run->rec, id);
    run_unref(run);
}

static void cancel_run(ws_conn *wc, const char *inv_id)
{
    pthread_mutex_lock(&wc->mu);
    ws_run *run = find_run(wc, inv_id);
    if (run) atomic_fetch_add(&run->refs, 1);
    pthread_mutex_unlock(&wc->mu);
    if (!run) return; /* finished already, or never ours: nothing to do */
    cp_session_cancel_run(wc->session, &run->rec);
    run_unref(run);
}

/* One complete message (text, or binary that must carry UTF-8 text too). */
static void on_message(ws_conn *wc, const char *text, size_t len)
{
    if (!cp_utf8_valid(text, len)) {
        close_conn(wc, CP_WS_CLOSE_BAD_DATA, "message is not UTF-8");
        return;
    }
    cp_server *srv = wc->srv;
    cp_run_request req;
    char err[512];
    cp_client_frame_kind kind = cp_frame_read_client(text, len, srv->cfg->timeout_default,
                                                     srv->cfg->timeout_max, &req, err, sizeof err);
    if (kind == CP_CLIENT_GARBAGE) {
        if (++wc->garbage >= CP_SRV_WS_GARBAGE_MAX)
            close_conn(wc, CP_WS_CLOSE_UNSUPPORTED, "too many malformed messages");
        cp_run_request_free(&req);
        return;
    }
    wc->garbage = 0;
    cp_session_touch(wc->session);
    switch (kind) {
    case CP_CLIENT_RUN:
        start_run(wc, &req);
        break;
    case CP_CLIENT_CANCEL:
        cancel_run(wc, req.request_id);
        break;
    case CP_CLIENT_INVALID:
        send_error(wc, req.request_id, err);
        break;
    default:
        break; /* IGNORE: JSON pings and other id-less frames */
    }
    cp_run_request_free(&req);
}

/* ---- the connection loop ------------------------------------------------------------------ */

/* The connection thread's I/O state. */
typedef struct {
    wq_item *out; /* the frame being written */
    uint8_t hdr[CP_WS_HEADER_MAX];
    size_t hdr_len, sent;
    double out_since;

    double last_rx;      /* when a byte last arrived */
    double ping_at;      /* when our idle ping went out (0: none pending) */
    double close_sent;   /* when our close frame was written (0: not yet) */
    bool peer_closed;    /* the client's close frame has arrived */
    bool runs_cancelled; /* closing: the connection's runs have been cancelled */
} io;

/* Write as much of the current frame as the socket takes. 1: frame complete, 0: not
 * yet, -1: the socket failed. */
static int write_some(ws_conn *wc, io *st)
{
    wq_item *it = st->out;
    size_t total = st->hdr_len + it->len;
    while (st->sent < total) {
        struct iovec iov[2];
        int n = 0;
        if (st->sent < st->hdr_len) {
            iov[n].iov_base = st->hdr + st->sent;
            iov[n++].iov_len = st->hdr_len - st->sent;
        }
        size_t poff = st->sent > st->hdr_len ? st->sent - st->hdr_len : 0;
        if (it->len > poff) {
            iov[n].iov_base = it->data + poff;
            iov[n++].iov_len = it->len - poff;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(wc->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        st->sent += (size_t)w;
    }
    return 1;
}

/* Take the next queued frame, if any, as the one being written. */
static void next_frame(ws_conn *wc, io *st, double now)
{
    pthread_mutex_lock(&wc->mu);
    wq_item *it = wc->head;
    if (it) {
        wc->head = it->next;
        if (!wc->head) wc->tail = NULL;
        wc->queued -= it->len;
        it->next = NULL; /* it is the thread's alone now */
    }
    pthread_mutex_unlock(&wc->mu);
    if (!it) return;
    st->out = it;
    st->hdr_len = cp_wsp_frame_header(st->hdr, it->opcode, it->len);
    st->sent = 0;
    st->out_since = now;
}

/* One parser event. */
static void on_event(ws_conn *wc, io *st, const cp_wsp_event *ev, bool closing)
{
    switch (ev->kind) {
    case CP_WSP_MESSAGE:
        if (!closing) on_message(wc, (const char *)ev->data, ev->len);
        break;
    case CP_WSP_PING:
        enqueue_control(wc, CP_WS_OP_PONG, ev->data, ev->len);
        break;
    case CP_WSP_CLOSE:
        /* Answer with the client's code (RFC 6455 §5.5.1), or an empty close frame. */
        st->peer_closed = true;
        close_conn(wc, ev->code, "");
        break;
    case CP_WSP_FAIL:
        st->peer_closed = cp_wsp_peer_closed(&wc->parser);
        close_conn(wc, ev->code, ev->reason);
        break;
    default:
        break;
    }
}

/* Read what the socket has and feed it to the parser. false: the client hung up (or
 * the socket failed). */
static bool read_some(ws_conn *wc, io *st, double now)
{
    uint8_t *buf = wc->rbuf;
    ssize_t n = recv(wc->fd, buf, sizeof wc->rbuf, MSG_DONTWAIT);
    if (n == 0) return false;
    if (n < 0) return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
    st->last_rx = now;
    st->ping_at = 0;
    size_t off = 0;
    for (;;) {
        pthread_mutex_lock(&wc->mu);
        bool closing = wc->closing;
        pthread_mutex_unlock(&wc->mu);
        cp_wsp_event ev;
        off += cp_wsp_feed(&wc->parser, buf + off, (size_t)n - off, &ev);
        if (ev.kind == CP_WSP_NEED_MORE) break;
        on_event(wc, st, &ev, closing);
    }
    return true;
}

static double min_d(double a, double b)
{
    return a < b ? a : b;
}

/* Serve the upgraded connection until it ends. */
static void conn_loop(ws_conn *wc)
{
    cp_server *srv = wc->srv;
    io st;
    memset(&st, 0, sizeof st);
    st.last_rx = now_ms();
    for (;;) {
        double now = now_ms();
        bool stopping = !atomic_load(&srv->ready);
        double write_timeout = stopping ? CP_SRV_WS_STOP_GRACE_MS : CP_SRV_REQUEST_TIMEOUT_MS;
        double grace = stopping ? CP_SRV_WS_STOP_GRACE_MS : CP_SRV_WS_CLOSE_GRACE_MS;

        /* Write: the current frame, then the next ones, as far as the socket takes. */
        for (;;) {
            if (!st.out) next_frame(wc, &st, now);
            if (!st.out) break;
            int w = write_some(wc, &st);
            if (w < 0) goto out; /* the client is gone */
            if (w == 0) break;
            if (st.out->opcode == CP_WS_OP_CLOSE) {
                st.close_sent = now;
                cp_wsp_drain(&wc->parser);
            }
            free_items(st.out);
            st.out = NULL;
            if (st.close_sent) break; /* nothing goes after the close frame */
        }
        if (st.out && now - st.out_since >= write_timeout)
            goto out; /* the client stopped reading */

        pthread_mutex_lock(&wc->mu);
        bool closing = wc->closing;
        bool close_queued = wc->head != NULL || st.out != NULL;
        pthread_mutex_unlock(&wc->mu);

        /* Closing, for whatever reason: the connection's runs stop now. */
        if (closing && !st.runs_cancelled) {
            st.runs_cancelled = true;
            cp_session_cancel_owner(wc->session, wc);
        }
        if (closing && !st.close_sent && !close_queued) goto out; /* no memory for the frame */

        /* After our close frame: hang up once the client has answered, has gone quiet, or
         * the grace period is over. */
        if (st.close_sent) {
            if (st.peer_closed) goto out;
            double quiet_since = st.last_rx > st.close_sent ? st.last_rx : st.close_sent;
            if (now - st.close_sent >= grace || now - quiet_since >= CP_SRV_WS_CLOSE_QUIET_MS)
                goto out;
        }

        /* Read-side deadlines. */
        double deadline = now + LOOP_TICK_MS;
        if (!closing) {
            bool mid = cp_wsp_mid_frame(&wc->parser);
            if (mid && now - st.last_rx >= CP_SRV_WS_FRAME_STALL_MS) {
                close_conn(wc, CP_WS_CLOSE_POLICY, "frame not completed in time");
                continue;
            }
            if (!mid && !st.ping_at && now - st.last_rx >= CP_SRV_WS_IDLE_TIMEOUT_MS) {
                enqueue_control(wc, CP_WS_OP_PING, "", 0);
                st.ping_at = now;
                continue;
            }
            if (st.ping_at && now - st.ping_at >= CP_SRV_WS_PONG_TIMEOUT_MS) {
                close_conn(wc, CP_WS_CLOSE_GOING_AWAY, "idle timeout");
                continue;
            }
            if (mid)
                deadline = min_d(deadline, st.last_rx + CP_SRV_WS_FRAME_STALL_MS);
            else if (st.ping_at)
                deadline = min_d(deadline, st.ping_at + CP_SRV_WS_PONG_TIMEOUT_MS);
            else
                deadline = min_d(deadline, st.last_rx + CP_SRV_WS_IDLE_TIMEOUT_MS);
        }
        if (st.out) deadline = min_d(deadline, st.out_since + write_timeout);
        if (st.close_sent) {
            double quiet_since = st.last_rx > st.close_sent ? st.last_rx : st.close_sent;
            deadline = min_d(deadline, st.close_sent + grace);
            deadline = min_d(deadline, quiet_since + CP_SRV_WS_CLOSE_QUIET_MS);
        }

        struct pollfd pfd[2] = {
            {.fd = wc->fd, .events = (short)(POLLIN | (st.out ? POLLOUT : 0))},
            {.fd = wc->efd, .events = POLLIN},
        };
        double wait = deadline - now;
        int timeout = wait <= 0 ? 0 : (int)wait + 1;
        int r = poll(pfd, 2, timeout);
        if (r < 0) {
            if (errno == EINTR) continue;
            goto out;
        }
        now = now_ms();
        if (pfd[1].revents & POLLIN) {
            uint64_t v;
            ssize_t rr = read(wc->efd, &v, sizeof v);
            (void)rr;
        }
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (!read_some(wc, &st, now)) goto out;
        }
    }
out:
    free_items(st.out);
}

/* ---- the handshake -------------------------------------------------------------------------- */

/* Write an HTTP error reply (with extra header lines, each ending in CRLF) and close. */
static int refuse(struct mg_connection *conn, int status, const char *extra, const char *msg)
{
    cp_http_refuse(conn, status, extra, msg);
    return status;
}

static int refuse_version(struct mg_connection *conn, const char *msg)
{
    return refuse(conn, 426, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n", msg);
}

/* Every Sec-WebSocket-Protocol element the client offered (all header lines): whether
 * it offered codepane.v1, and the token of a "codepane.token.<token>" element. */
static void scan_protocols(const struct mg_request_info *ri, bool *v1, char *tok, size_t cap)
{
    const size_t plen = sizeof TOKEN_PROTOCOL_PREFIX - 1;
    *v1 = false;
    tok[0] = '\0';
    for (int i = 0; i < ri->num_headers; i++) {
        if (strcasecmp(ri->http_headers[i].name, "Sec-WebSocket-Protocol") != 0) continue;
        const char *h = ri->http_headers[i].value;
        if (!h) continue;
        const char *p = h, *e;
        size_t n;
        while (cp_wsp_list_next(&p, &e, &n)) {
            if (n == sizeof SUBPROTOCOL - 1 && strncmp(e, SUBPROTOCOL, n) == 0) *v1 = true;
            if (!tok[0] && n > plen && strncmp(e, TOKEN_PROTOCOL_PREFIX, plen) == 0 &&
                n - plen < cap) {
                memcpy(tok, e + plen, n - plen);
                tok[n - plen] = '\0';
            }
        }
    }
}

/* The shape of the upgrade request (RFC 6455 §4.2.1). 0 when it is a well-formed
 * WebSocket upgrade, else the status of the reply sent. */
static int check_shape(struct mg_connection *conn, const struct mg_request_info *ri)
{
    /* civetweb refuses a head past its buffer (16 KiB) with 400 before we see it; the
     * upgrade is held to 8 KiB of header fields (sandbox.md D5). */
    size_t head = 0;
    for (int i = 0; i < ri->num_headers; i++)
        head += strlen(ri->http_headers[i].name) + strlen(ri->http_headers[i].value) + 4;
    if (head > CP_SRV_WS_HEAD_MAX)
        return refuse(conn, 431, NULL, "request header fields too large for a WebSocket upgrade");
    if (!cp_wsp_list_has(mg_get_header(conn, "Upgrade"), "websocket"))
        return refuse_version(conn, "this endpoint is a WebSocket: send a WebSocket upgrade");
    if (!ri->request_method || strcmp(ri->request_method, "GET") != 0)
        return refuse(conn, 400, NULL, "a WebSocket upgrade must be a GET request");
    if (!ri->http_version || strcmp(ri->http_version, "1.1") != 0)
        return refuse(conn, 400, NULL, "a WebSocket upgrade needs HTTP/1.1");
    if (!cp_wsp_list_has(mg_get_header(conn, "Connection"), "upgrade"))
        return refuse(conn, 400, NULL, "a WebSocket upgrade needs \"Connection: Upgrade\"");
    if (ri->content_length > 0 || mg_get_header(conn, "Transfer-Encoding"))
        return refuse(conn, 400, NULL, "a WebSocket upgrade carries no body");
    const char *version = mg_get_header(conn, "Sec-WebSocket-Version");
    if (!version || strcmp(version, "13") != 0)
        return refuse_version(conn, "unsupported Sec-WebSocket-Version: this server speaks 13");
    if (!cp_wsp_key_valid(mg_get_header(conn, "Sec-WebSocket-Key")))
        return refuse(conn, 400, NULL, "Sec-WebSocket-Key must be the base64 encoding of 16 bytes");
    return 0;
}

/* Undo what admission took. */
static void release_admission(cp_server *srv, const char *ip)
{
    cp_http_ip_release(srv, ip);
    atomic_fetch_sub(&srv->ws_conns, 1);
}

/* Admission and authentication. 0 with *out (a session reference) or the status sent. */
static int admit(cp_server *srv, struct mg_connection *conn, const struct mg_request_info *ri,
                 const char *sid, const char *proto_token, cp_session **out)
{
    const char *ip = ri->remote_addr;
    *out = NULL;
    if (!atomic_load(&srv->ready))
        return refuse(conn, 503, NULL, "the server is starting or stopping");
    if (!cp_http_host_ok(srv, conn))
        return refuse(conn, 421, NULL, "unexpected Host header; use one of the server's own names");
    if (cp_http_origin(srv, conn, NULL) < 0)
        return refuse(conn, 403, NULL, "origin not allowed (see --allow-origin)");
    if (atomic_fetch_add(&srv->ws_conns, 1) >= srv->cfg->ws_max_conns) {
        atomic_fetch_sub(&srv->ws_conns, 1);
        return refuse(conn, 503, NULL, "too many WebSocket connections");
    }
    if (cp_http_ip_acquire(srv, ip)) {
        atomic_fetch_sub(&srv->ws_conns, 1);
        return refuse(conn, 429, NULL, "too many connections from this address");
    }
    char qtok[128];
    const char *token = mg_get_header(conn, "X-Access-Token");
    if (!token && proto_token[0]) token = proto_token;
    const char *q = ri->query_string;
    if (!token && q && mg_get_var(q, strlen(q), "token", qtok, sizeof qtok) > 0) token = qtok;
    cp_session_state st;
    cp_session *s = cp_sessions_get(srv->sessions, sid, &st);
    if (!s) {
        /* A descriptor from before a restart (or an expired session): revived when its
         * token is the one this server derives for the id; otherwise the answer is the
         * one an unknown session always got. */
        char err[256];
        cp_revive rv = cp_sessions_revive(srv->sessions, sid, token, token ? strlen(token) : 0,
                                          "the WebSocket", &s, &st, err, sizeof err);
        if (rv != CP_REVIVE_OK) {
            release_admission(srv, ip);
            if (rv == CP_REVIVE_FAILED) return refuse(conn, 503, NULL, err);
            return refuse(conn, 404, NULL,
                          st == CP_SESSION_FINISHED ? "session has been released"
                                                    : "session not found");
        }
    }
    if (!token || !cp_session_token_ok(s, token, strlen(token))) {
        int status = cp_http_auth_failed(srv, ip);
        cp_session_put(s);
        release_admission(srv, ip);
        return refuse(conn, status, NULL,
                      status == 429 ? "too many failed authentications from this address"
                      : token       ? "invalid access token"
                                    : "missing access token (X-Access-Token header, "
                                      "Sec-WebSocket-Protocol codepane.token.<token>, or ?token=)");
    }
    *out = s;
    return 0;
}

static ws_conn *new_conn(cp_server *srv, cp_session *s, const char *ip, int fd)
{
    ws_conn *wc = calloc(1, sizeof *wc);
    if (!wc) return NULL;
    wc->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wc->efd < 0) {
        free(wc);
        return NULL;
    }
    atomic_init(&wc->refs, 1);
    wc->srv = srv;
    wc->session = s;
    wc->hook.fn = session_ended;
    wc->fd = fd;
    snprintf(wc->ip, sizeof wc->ip, "%s", ip);
    pthread_mutex_init(&wc->mu, NULL);
    cp_wsp_init(&wc->parser, srv->cfg->max_body_bytes);
    return wc;
}

/* The connection is over: nothing is queued or woken from here on; runs are cancelled;
 * the thread's reference goes (late sinks may still hold the object). */
static void teardown(ws_conn *wc)
{
    pthread_mutex_lock(&wc->mu);
    wc->stop = true;
    wc->closing = true;
    drop_queue(wc);
    pthread_mutex_unlock(&wc->mu);
    cp_session_hook_remove(wc->session, &wc->hook);
    cp_session_cancel_owner(wc->session, wc);
    close(wc->efd);
    wc->efd = -1;
    cp_wsp_free(&wc->parser);
    release_admission(wc->srv, wc->ip);
    wc_unref(wc);
}

int cp_ws_begin_request(struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *path = ri->local_uri_raw ? ri->local_uri_raw : ri->local_uri;
    if (!path || strncmp(path, WS_PREFIX, sizeof WS_PREFIX - 1) != 0) return 0;
    cp_server *srv = mg_get_user_data(mg_get_context(conn));

    /* Whatever the answer, this connection ends with it. */
    mg_disable_connection_keep_alive(conn);
    const char *sid = path + sizeof WS_PREFIX - 1;
    if (!*sid || strchr(sid, '/')) return refuse(conn, 404, NULL, "no such WebSocket endpoint");
    int status = check_shape(conn, ri);
    if (status) return status;

    bool v1;
    char ptok[128];
    scan_protocols(ri, &v1, ptok, sizeof ptok);
    cp_session *s;
    if ((status = admit(srv, conn, ri, sid, ptok, &s))) return status;

    int fd = cp_http_socket_fd(conn);
    ws_conn *wc = fd >= 0 ? new_conn(srv, s, ri->remote_addr, fd) : NULL;
    if (!wc) {
        cp_session_put(s);
        release_admission(srv, ri->remote_addr);
        return refuse(conn, fd < 0 ? 500 : 503, NULL,
                      fd < 0 ? "cannot find the connection's socket" : "out of resources");
    }
    char accept[CP_WS_ACCEPT_SIZE];
    cp_wsp_accept(mg_get_header(conn, "Sec-WebSocket-Key"), accept);
    int w = mg_printf(conn,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                      accept, v1 ? "Sec-WebSocket-Protocol: " SUBPROTOCOL "\r\n" : "");
    if (w > 0) {
        cp_session_touch(s);
        /* Non-blocking from here on: the loop polls (civetweb's sockets already are). */
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        if (cp_session_hook_add(s, &wc->hook) != 0)
            close_conn(wc, CP_WS_CLOSE_GOING_AWAY, "session released");
        conn_loop(wc);
    }
    teardown(wc);
    return 101;
}
