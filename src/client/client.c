/* codepane client: the Emscripten glue that puts the portable core (src/core) on the
 * browser's two transports, XMLHttpRequest (Emscripten fetch) for the HTTP routes and
 * WebSocket (Emscripten's websocket API) for streaming, and reports back to the JS API
 * through the hooks of hooks.js, keyed by ids the JS side allocated (no JS function
 * pointers in C).
 *
 * What lives here and not in JS: the wire (request bodies, frames, replies, the
 * final result), the connection's state machine (open, ping every 20 s, reconnect with
 * backoff, in-flight runs failed on loss), and the workarounds for Emscripten 3.1.6's
 * fetch and websocket defects (shared/notes/emscripten.md §1.4, §2.4). What lives in
 * JS: ids, timers, Promises, user callbacks (called later, never inside a C call).
 *
 * Ownership: every string handed to a hook is borrowed for the duration of the hook (JS
 * copies it). Strings the JS side passes in are borrowed for the duration of the call.
 * cp_client_unsupported and cp_client_failure return heap strings JS frees with _free. */
#include <emscripten/emmalloc.h>
#include <emscripten/emscripten.h>
#include <emscripten/fetch.h>
#include <emscripten/websocket.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_limits.h"
#include "frame.h"
#include "lang.h"
#include "payload.h"
#include "request.h"
#include "result.h"
#include "stream.h"

/* ---- hooks into JS (hooks.js) ------------------------------------------------------ */

extern void cp_js_run_done(int run_id, const char *json, size_t len);
extern void cp_js_stream(int conn_id, int kind, const char *invocation_id, const char *data,
                         size_t len, int extra);
extern void cp_js_conn_state(int conn_id, int state);
extern void cp_js_timer(int conn_id, int ms);
extern void cp_js_xhr_detach_abort(unsigned fetch_id);
extern void cp_js_ws_forget(int socket);
extern double cp_js_random(void);

/* ---- results ------------------------------------------------------------------------ */

/* Hand r to JS as its JSON and free it. */
static void run_done(int run_id, cp_result *r)
{
    char *json = cp_result_to_json(r);
    cp_result_free(r);
    if (json)
        cp_js_run_done(run_id, json, strlen(json));
    else
        cp_js_run_done(run_id, NULL, 0); /* out of memory: JS says so */
    free(json);
}

static char *failure_json(const char *msg)
{
    cp_result r;
    cp_result_init(&r);
    cp_result_fail(&r, msg);
    char *json = cp_result_to_json(&r);
    cp_result_free(&r);
    return json;
}

/* The canonical language (cp_lang) for what the caller typed, 0 when unsupported. */
EMSCRIPTEN_KEEPALIVE int cp_client_lang(const char *raw)
{
    return (int)cp_lang_parse(raw, strlen(raw));
}

/* The SDK's refusal of an unsupported language, as a result (spec §7). */
EMSCRIPTEN_KEEPALIVE char *cp_client_unsupported(const char *raw)
{
    char msg[256];
    cp_lang_unsupported_message(raw, strlen(raw), msg, sizeof msg);
    return failure_json(msg);
}

/* A run that failed before it reached the network, as a result. */
EMSCRIPTEN_KEEPALIVE char *cp_client_failure(const char *msg)
{
    return failure_json(msg);
}

/* The tool server of run_code in a session's toolList (spec §1.3), or NULL; JS frees. */
EMSCRIPTEN_KEEPALIVE char *cp_client_tool_server(const char *tool_list)
{
    return cp_tool_server(tool_list, strlen(tool_list), "run_code");
}

/* Bytes of the heap in use (emmalloc's own accounting): the leak check of the tests. */
EMSCRIPTEN_KEEPALIVE size_t cp_client_heap_in_use(void)
{
    return emmalloc_dynamic_heap_size() - emmalloc_free_dynamic_memory();
}

/* ---- non-streaming runs over HTTP (spec §3, §4) ------------------------------------- */

typedef struct http_run {
    int run_id;
    bool gateway;
    char *request_id; /* LinkUrl: the client's link-... id */
    char *body;       /* kept alive until the fetch completes */
    emscripten_fetch_t *fetch;
    double started_ms, timeout_ms;
    struct http_run *next;
} http_run;

static http_run *g_runs;
/* The fetch being closed by cp_client_http_abort: its onerror, which Emscripten calls
 * from inside emscripten_fetch_close, must neither report nor close again (emscripten
 * #21005: that recursion never ends). */
static emscripten_fetch_t *g_closing;

static void http_unlink(http_run *run)
{
    for (http_run **p = &g_runs; *p; p = &(*p)->next)
        if (*p == run) {
            *p = run->next;
            break;
        }
    free(run->request_id);
    free(run->body);
    free(run);
}

/* The value of response header `name` (lower-case), from the raw header block, or NULL. */
static char *response_header(emscripten_fetch_t *f, const char *name)
{
    size_t n = emscripten_fetch_get_response_headers_length(f);
    if (!n) return NULL;
    char *block = malloc(n + 1);
    if (!block) return NULL;
    emscripten_fetch_get_response_headers(f, block, n + 1);
    char **kv = emscripten_fetch_unpack_response_headers(block);
    free(block);
    char *value = NULL;
    for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2) {
        if (value || strcmp(kv[i], name) != 0) continue;
        /* Emscripten 3.1.6 leaves the space after the colon and the line's CRLF on it. */
        const char *v = kv[i + 1], *end = v + strlen(v);
        while (*v == ' ' || *v == '\t')
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
            end--;
        value = cp_strndup(v, (size_t)(end - v));
    }
    emscripten_fetch_free_unpacked_response_headers(kv);
    return value;
}

static void http_finished(emscripten_fetch_t *f)
{
    if (f == g_closing) return; /* aborted: cp_client_http_abort reports */
    http_run *run = f->userData;
    /* readyState 4 with status 0: no HTTP answer at all (refused, DNS, CORS, timeout). */
    const char *transport = NULL;
    if (f->status == 0)
        transport = emscripten_get_now() - run->started_ms >= run->timeout_ms
                        ? "timed out waiting for the server's reply"
                        : "network error (server unreachable, or the request was refused by CORS)";
    cp_result r;
    cp_result_init(&r);
    int status = transport ? 0 : f->status;
    size_t len = (size_t)f->numBytes;
    if (run->gateway) {
        char *rid = response_header(f, "x-request-id");
        cp_payload_from_gateway(status, f->data, len, transport, rid, &r);
        free(rid);
    } else {
        cp_payload_from_linkurl(status, f->data, len, transport, run->request_id, &r);
    }
    int id = run->run_id;
    emscripten_fetch_close(f); /* completed: close frees it, no callbacks follow */
    http_unlink(run);
    run_done(id, &r);
}

/* Start a non-streaming run. gateway = 0: POST {base}/callTool with the session token
 * (`auth`) and tool server `target`; gateway = 1: POST {base}/mcp?autoGenSession=false
 * with the API key (`auth`) and the session id in `target`. The outcome arrives once
 * through cp_js_run_done(run_id, result JSON). Returns 0, or -1 when nothing was started
 * (out of memory; no hook is called). */
EMSCRIPTEN_KEEPALIVE int cp_client_http_run(int run_id, int gateway, const char *base,
                                            const char *auth, const char *target,
                                            const char *request_id, int lang, int timeout_s,
                                            const char *code, size_t code_len)
{
    http_run *run = calloc(1, sizeof *run);
    if (!run) return -1;
    run->run_id = run_id;
    run->gateway = gateway != 0;
    run->request_id = cp_strndup(request_id, strlen(request_id));
    run->body = gateway ? cp_request_gateway_body(code, code_len, (cp_lang)lang, timeout_s, target)
                        : cp_request_linkurl_body(code, code_len, (cp_lang)lang, timeout_s, target,
                                                  request_id, auth);
    /* The URL: linkUrl minus one trailing '/', plus the route. */
    size_t blen = strlen(base);
    if (blen && base[blen - 1] == '/') blen--;
    const char *route = gateway ? "/mcp?autoGenSession=false" : "/callTool";
    char *url = malloc(blen + strlen(route) + 1);
    char *bearer = gateway ? malloc(strlen(auth) + sizeof "Bearer ") : NULL;
    if (!run->request_id || !run->body || !url || (gateway && !bearer)) {
        free(url);
        free(bearer);
        http_unlink(run);
        return -1;
    }
    memcpy(url, base, blen);
    strcpy(url + blen, route);
    if (bearer) strcat(strcpy(bearer, "Bearer "), auth);
    const char *headers[] = {"Content-Type", "application/json",
                             gateway ? "authorization" : "X-Access-Token", gateway ? bearer : auth,
                             NULL};

    emscripten_fetch_attr_t attr;
    emscripten_fetch_attr_init(&attr);
    strcpy(attr.requestMethod, "POST");
    attr.userData = run;
    attr.onsuccess = http_finished;
    attr.onerror = http_finished;
    attr.attributes = EMSCRIPTEN_FETCH_LOAD_TO_MEMORY;
    /* The server ends the run at timeout_s; past that plus a grace period, stop waiting
     * for an answer that is not coming. */
    run->timeout_ms = ((double)timeout_s + CP_CLIENT_HTTP_GRACE_S) * 1000.0;
    attr.timeoutMSecs = (unsigned long)run->timeout_ms;
    attr.requestHeaders = headers; /* copied by emscripten_fetch */
    attr.requestData = run->body;
    attr.requestDataSize = strlen(run->body);
    run->started_ms = emscripten_get_now();
    run->next = g_runs;
    g_runs = run;
    run->fetch = emscripten_fetch(&attr, url);
    free(url);
    free(bearer);
    return 0;
}

/* Settle a non-streaming run now with errorMessage `why` and drop its request (the
 * server, which has no cancel on the HTTP routes, runs it to its end). No-op when the run
 * already finished. */
EMSCRIPTEN_KEEPALIVE void cp_client_http_abort(int run_id, const char *why)
{
    http_run *run = g_runs;
    while (run && run->run_id != run_id)
        run = run->next;
    if (!run) return;
    /* emscripten_fetch_close alone leaves the XHR running and its late onload writes into
     * the freed fetch (emscripten #8234): detach and abort the XHR first. */
    cp_js_xhr_detach_abort(run->fetch->id);
    g_closing = run->fetch;
    emscripten_fetch_close(run->fetch);
    g_closing = NULL;
    http_unlink(run);
    cp_result r;
    cp_result_init(&r);
    cp_result_fail(&r, why);
    run_done(run_id, &r);
}

/* ---- the session WebSocket (spec §6) ------------------------------------------------- */

/* Connection states, as the JS side sees them (cp_js_conn_state). */
enum {
    CONN_IDLE,       /* no socket; the next run connects */
    CONN_CONNECTING, /* socket opening; frames wait in the queue */
    CONN_OPEN,
    CONN_WAITING, /* lost after being open: reconnecting after a backoff delay */
    CONN_CLOSED,  /* closed by the caller: final */
};

typedef struct queued {
    char *inv, *frame;
    struct queued *next;
} queued;

typedef struct {
    int id; /* the JS side's connection id */
    char *url, *protocols;
    int sock; /* Emscripten socket handle, 0 when none */
    int state;
    double delay_ms;      /* the next reconnect delay */
    bool lost;            /* lost after being open, not open since: keep reconnecting */
    cp_stream *stream;    /* in-flight invocations */
    queued *head, **tail; /* frames to send once the socket opens */
} cp_conn;

static void conn_set_state(cp_conn *c, int state)
{
    c->state = state;
    cp_js_conn_state(c->id, state);
}

/* Forward one event of the invocation table to JS. PUSH and INVALID frames are dropped,
 * as code.run in the SDKs drops them (spec §6.3, §6.10). */
static void on_stream_event(void *ud, const cp_event *ev)
{
    cp_conn *c = ud;
    char *json = NULL;
    const char *data = NULL;
    size_t len = 0;
    int extra = 0;
    switch (ev->kind) {
    case CP_EV_STDOUT:
    case CP_EV_STDERR:
        data = ev->chunk;
        len = ev->len;
        break;
    case CP_EV_RESULT:
        data = json = cp_item_to_json(ev->item);
        break;
    case CP_EV_ERROR:
        data = ev->payload_json;
        break;
    case CP_EV_FAILED:
        data = ev->message;
        extra = (int)ev->fail;
        break;
    case CP_EV_DONE:
        data = json = cp_result_to_json(ev->result);
        break;
    default:
        return;
    }
    if (data && ev->kind != CP_EV_STDOUT && ev->kind != CP_EV_STDERR) len = strlen(data);
    cp_js_stream(c->id, (int)ev->kind, ev->invocation_id, data, len, extra);
    free(json);
}

static void drop_socket(cp_conn *c)
{
    if (!c->sock) return;
    emscripten_websocket_close(c->sock, 1000, NULL);
    /* delete clears the handlers but, in 3.1.6, never releases the socket (it deletes by
     * the wrong key): forget it ourselves. */
    emscripten_websocket_delete(c->sock);
    cp_js_ws_forget(c->sock);
    c->sock = 0;
}

static void drop_queue(cp_conn *c)
{
    while (c->head) {
        queued *q = c->head;
        c->head = q->next;
        free(q->inv);
        free(q->frame);
        free(q);
    }
    c->tail = &c->head;
}

static EM_BOOL on_open(int type, const EmscriptenWebSocketOpenEvent *e, void *ud)
{
    (void)type, (void)e;
    cp_conn *c = ud;
    c->delay_ms = CP_CLIENT_RECONNECT_FIRST_MS;
    c->lost = false;
    conn_set_state(c, CONN_OPEN);
    for (queued *q = c->head; q; q = q->next)
        emscripten_websocket_send_utf8_text(c->sock, q->frame);
    drop_queue(c);
    cp_js_timer(c->id, CP_CLIENT_PING_MS);
    return EM_TRUE;
}

static EM_BOOL on_message(int type, const EmscriptenWebSocketMessageEvent *e, void *ud)
{
    (void)type;
    cp_conn *c = ud;
    /* A text message arrives NUL-terminated with the NUL counted in numBytes. */
    size_t n = e->numBytes;
    if (e->isText && n) n--;
    cp_stream_feed(c->stream, (const char *)e->data, n, on_stream_event, c);
    return EM_TRUE;
}

static EM_BOOL on_close(int type, const EmscriptenWebSocketCloseEvent *e, void *ud)
{
    (void)type;
    cp_conn *c = ud;
    bool was_open = c->state == CONN_OPEN;
    drop_socket(c);
    drop_queue(c);
    char reason[sizeof e->reason + 80];
    if (was_open) {
        /* Spec §6.8: every in-flight run fails; reconnect in the background. */
        if (e->reason[0])
            snprintf(reason, sizeof reason, "connection closed: code=%d (%s)", (int)e->code,
                     e->reason);
        else
            snprintf(reason, sizeof reason, "connection closed: code=%d", (int)e->code);
    } else {
        /* The handshake failed (refused, rejected, unreachable): the runs that waited for
         * it fail; as in the SDKs, a failed first connect is not retried in the background.
         * The URL is named without its query, which may carry the token (wsAuth "query"). */
        int shown = (int)strcspn(c->url, "?");
        snprintf(reason, sizeof reason, "WS connection failed: %.*s could not be opened (code=%d)",
                 shown, c->url, (int)e->code);
    }
    c->lost = c->lost || was_open;
    if (c->lost) {
        double jitter = cp_js_random() * CP_CLIENT_RECONNECT_JITTER_MS;
        conn_set_state(c, CONN_WAITING);
        cp_js_timer(c->id, (int)(c->delay_ms + jitter));
        c->delay_ms *= CP_CLIENT_RECONNECT_FACTOR;
        if (c->delay_ms > CP_CLIENT_RECONNECT_MAX_MS) c->delay_ms = CP_CLIENT_RECONNECT_MAX_MS;
    } else {
        cp_js_timer(c->id, -1);
        conn_set_state(c, CONN_IDLE);
    }
    cp_stream_fail_all(c->stream, was_open ? CP_FAIL_CLOSED : CP_FAIL_HANDSHAKE, reason,
                       on_stream_event, c);
    return EM_TRUE;
}

/* Open the socket. On a failure to even create one, the waiting runs fail at once. */
static void conn_connect(cp_conn *c)
{
    EmscriptenWebSocketCreateAttributes attr;
    emscripten_websocket_init_create_attributes(&attr);
    attr.url = c->url;
    attr.protocols = c->protocols[0] ? c->protocols : NULL;
    attr.createOnMainThread = EM_TRUE;
    int sock = emscripten_websocket_new(&attr);
    if (sock <= 0) {
        drop_queue(c);
        conn_set_state(c, CONN_IDLE);
        cp_stream_fail_all(c->stream, CP_FAIL_HANDSHAKE, "WS is not supported in this environment",
                           on_stream_event, c);
        return;
    }
    c->sock = sock;
    conn_set_state(c, CONN_CONNECTING);
    emscripten_websocket_set_onopen_callback(sock, c, on_open);
    emscripten_websocket_set_onmessage_callback(sock, c, on_message);
    emscripten_websocket_set_onclose_callback(sock, c, on_close);
}

/* A connection to `url` (validated by the caller: a bad URL throws inside the WebSocket
 * constructor) offering `protocols` ("a,b", "" for none). Nothing is opened until the
 * first run. NULL on OOM. */
EMSCRIPTEN_KEEPALIVE cp_conn *cp_conn_new(int conn_id, const char *url, const char *protocols)
{
    cp_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->id = conn_id;
    c->url = cp_strndup(url, strlen(url));
    c->protocols = cp_strndup(protocols, strlen(protocols));
    c->stream = cp_stream_new();
    c->tail = &c->head;
    c->delay_ms = CP_CLIENT_RECONNECT_FIRST_MS;
    if (!c->url || !c->protocols || !c->stream) {
        free(c->url);
        free(c->protocols);
        cp_stream_free(c->stream);
        free(c);
        return NULL;
    }
    /* The JS side keeps every chunk and rich result from the events and puts them into
     * the final result: the table need not copy them again, nor DONE serialise them. */
    cp_stream_keep_output(c->stream, false);
    return c;
}

/* Start a streaming run under invocation id `inv` (spec §6.2). Its events and its final
 * result arrive through cp_js_stream. Returns 0, or -1 when the id could not be
 * registered or the frame built (no hook is called then). */
EMSCRIPTEN_KEEPALIVE int cp_conn_run(cp_conn *c, const char *inv, const char *target, int lang,
                                     int timeout_s, const char *code, size_t code_len)
{
    char *frame =
        cp_frame_run(inv, target[0] ? target : NULL, (cp_lang)lang, timeout_s, code, code_len);
    if (!frame || cp_stream_begin(c->stream, inv) != 0) {
        free(frame);
        return -1;
    }
    if (c->state == CONN_OPEN) {
        emscripten_websocket_send_utf8_text(c->sock, frame);
        free(frame);
        return 0;
    }
    queued *q = malloc(sizeof *q);
    char *id = cp_strndup(inv, strlen(inv));
    if (!q || !id) {
        free(q);
        free(id);
        free(frame);
        cp_stream_fail(c->stream, inv, CP_FAIL_CLOSED, "out of memory", on_stream_event, c);
        return 0;
    }
    q->inv = id;
    q->frame = frame;
    q->next = NULL;
    *c->tail = q;
    c->tail = &q->next;
    /* Not open: connect now (also when a reconnect is waiting out its delay). */
    if (c->state == CONN_IDLE || c->state == CONN_WAITING) {
        cp_js_timer(c->id, -1);
        conn_connect(c);
    }
    return 0;
}

/* Cancel one run: the codepane cancel frame to the server, addressed to the run's
 * `target` as its run frame was (an AGB server drops it), and the run settles now as
 * "Stream <id> was cancelled by caller" (spec §6.9). */
EMSCRIPTEN_KEEPALIVE void cp_conn_cancel(cp_conn *c, const char *inv, const char *target)
{
    if (c->state == CONN_OPEN) {
        char *frame = cp_frame_cancel(inv, target[0] ? target : NULL);
        if (frame) emscripten_websocket_send_utf8_text(c->sock, frame);
        free(frame);
    } else {
        /* Still queued: take its frame out so it is never sent. */
        for (queued **p = &c->head; *p; p = &(*p)->next) {
            if (strcmp((*p)->inv, inv) == 0) {
                queued *q = *p;
                *p = q->next;
                if (c->tail == &q->next) c->tail = p;
                free(q->inv);
                free(q->frame);
                free(q);
                break;
            }
        }
    }
    cp_stream_cancel(c->stream, inv, on_stream_event, c);
}

/* The timer JS set for this connection fired: a heartbeat when open, else the reconnect. */
EMSCRIPTEN_KEEPALIVE void cp_conn_on_timer(cp_conn *c)
{
    if (c->state == CONN_OPEN) {
        emscripten_websocket_send_utf8_text(c->sock, CP_FRAME_PING);
        cp_js_timer(c->id, CP_CLIENT_PING_MS);
    } else if (c->state == CONN_WAITING) {
        conn_connect(c);
    }
}

/* Close for good: every pending run settles with "WS client is closed" (unlike the SDKs,
 * whose pending runs hang), the socket closes, and c is freed. */
EMSCRIPTEN_KEEPALIVE void cp_conn_close(cp_conn *c)
{
    cp_js_timer(c->id, -1);
    drop_socket(c);
    drop_queue(c);
    conn_set_state(c, CONN_CLOSED);
    cp_stream_fail_all(c->stream, CP_FAIL_CLOSED, "WS client is closed", on_stream_event, c);
    cp_stream_free(c->stream);
    free(c->url);
    free(c->protocols);
    free(c);
}
