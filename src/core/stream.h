/* codepane core: the client's table of in-flight streaming invocations (spec §6.4–§6.6,
 * §6.8–§6.10), sans-IO. The embedder moves frames; the table turns each decoded frame
 * into typed events and, per invocation, exactly one final cp_result.
 *
 * Ownership: the table owns its invocations. Everything an event points to is borrowed
 * and valid only during the callback; copy what you keep.
 *
 * Re-entrancy: a callback may call cp_stream_begin, _feed, _cancel, _fail and _fail_all
 * on the same table (never cp_stream_free); the event it is handling stays valid. An
 * invocation leaves the table before its FAILED/DONE events are emitted. cb may be NULL.
 *
 * Final results (CP_EV_DONE), as both SDKs build them (spec §6.6):
 * - after phase "end": request_id = the invocationId; execution_count only when
 *   executionCount is an integral number; execution_time = executionTime when a finite
 *   number, else 0; success and error_message as §6.6 (error_message "" on success).
 * - after a failure: success false, request_id "", error_message = the failure text,
 *   execution_time 0, no execution_count, logs and results kept, and error = {name
 *   "ExecutionError", value = the failure text, traceback ""}: the SDKs route the failure
 *   through the same handler as error events, so it replaces an earlier event's error.
 * - logs and results: every stdout/stderr chunk and rich result of the invocation, in
 *   order, unless cp_stream_keep_output(st, false) (they are in the events all the same). */
#ifndef CP_STREAM_H
#define CP_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "result.h"

typedef struct cp_stream cp_stream;

typedef enum {
    CP_EV_STDOUT,  /* chunk, len (NUL bytes kept, see cp_json_parse_keep_nul in json.h) */
    CP_EV_STDERR,  /* chunk, len */
    CP_EV_RESULT,  /* item */
    CP_EV_ERROR,   /* an eventType:"error" event: error (mapped), payload_json (what the
                      SDK hands on_error: the error object, or data when it has none) */
    CP_EV_FAILED,  /* the invocation failed (remote error, protocol error, connection
                      lost, cancel): message; a CP_EV_DONE follows at once */
    CP_EV_DONE,    /* the invocation's final result; the invocation is gone afterwards */
    CP_EV_PUSH,    /* frame for no in-flight invocation: push_key (routing key, §6.10),
                      invocation_id, payload_json (data) */
    CP_EV_INVALID, /* a frame that matched no invocation and was not valid: message.
                      The SDKs log and ignore these. */
} cp_event_kind;

typedef enum {
    CP_FAIL_REMOTE,    /* WsRemoteError */
    CP_FAIL_PROTOCOL,  /* WsProtocolError */
    CP_FAIL_CLOSED,    /* WsConnectionClosedError */
    CP_FAIL_CANCELLED, /* WsCancelledError */
    CP_FAIL_HANDSHAKE, /* WsHandshakeRejectedError: the socket never opened */
} cp_fail_kind;

typedef struct {
    cp_event_kind kind;
    const char *invocation_id;
    const char *chunk;
    size_t len;
    const cp_result_item *item;
    const cp_exec_error *error;
    const char *payload_json;
    cp_fail_kind fail;
    const char *message;
    const cp_result *result;
    const char *push_key;
} cp_event;

typedef void (*cp_stream_cb)(void *ud, const cp_event *ev);

/* NULL on OOM. */
cp_stream *cp_stream_new(void);
/* Frees every invocation without emitting events (use cp_stream_fail_all first to
 * settle them). */
void cp_stream_free(cp_stream *st);

/* Whether final results carry the logs and rich results (default true). An embedder that
 * collects them from the events turns this off, and its final results hold neither: the
 * WASM client does, so a run's output is not kept (and serialised) a second time. */
void cp_stream_keep_output(cp_stream *st, bool keep);

/* Register an in-flight invocation. -1 on OOM, when the id is already in flight, or when
 * it is empty or longer than CP_ID_MAX bytes. */
int cp_stream_begin(cp_stream *st, const char *invocation_id);
size_t cp_stream_inflight(const cp_stream *st);

/* Feed one received text message. Emits zero or more events through cb. */
void cp_stream_feed(cp_stream *st, const char *text, size_t len, cp_stream_cb cb, void *ud);

/* Local cancel (spec §6.9): FAILED (CANCELLED, "Stream <id> was cancelled by caller")
 * then DONE. Returns false (and emits nothing) when the id is not in flight. */
bool cp_stream_cancel(cp_stream *st, const char *invocation_id, cp_stream_cb cb, void *ud);

/* Fail one invocation that could not be sent (e.g. the socket is not open): FAILED with
 * `kind` and message, then DONE. Returns false when the id is not in flight. */
bool cp_stream_fail(cp_stream *st, const char *invocation_id, cp_fail_kind kind,
                    const char *message, cp_stream_cb cb, void *ud);

/* Connection lost (spec §6.8): every in-flight invocation gets FAILED (`kind`, reason)
 * then DONE, in the order they began. kind is CP_FAIL_CLOSED for a socket lost after it
 * opened, CP_FAIL_HANDSHAKE for one that never opened (spec §6.1). */
void cp_stream_fail_all(cp_stream *st, cp_fail_kind kind, const char *reason, cp_stream_cb cb,
                        void *ud);

#endif
