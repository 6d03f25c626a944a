/* codepane core: WebSocket frames of the streaming run_code protocol (spec §6), both
 * directions. A frame here is one JSON text message, not an RFC 6455 frame.
 *
 * Ownership: encoders return heap strings the caller frees; decoders fill structs that
 * own their members until the matching *_free. */
#ifndef CP_FRAME_H
#define CP_FRAME_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "request.h"
#include "result.h"

#define CP_DEFAULT_TARGET "wuying_codespace"

/* ---- client → server ---------------------------------------------------------- */

/* {"invocationId","source":"SDK","target","data":{"method":"run_code","mode":"stream",
 * "params":{"language","timeoutS","code"}}} (spec §6.2). A NULL target means
 * CP_DEFAULT_TARGET; code is code_len bytes (NUL allowed, sent as \u0000). NULL on OOM or
 * when lang is CP_LANG_NONE. */
char *cp_frame_run(const char *invocation_id, const char *target, cp_lang lang, long timeout_s,
                   const char *code, size_t code_len);

/* codepane extension: {"invocationId","source":"SDK","target","data":{"method":"cancel"}}.
 * An AGB server answers an unknown method for an id the client has already dropped, so
 * sending it there is harmless. */
char *cp_frame_cancel(const char *invocation_id, const char *target);

/* The TypeScript SDK's heartbeat text frame. */
#define CP_FRAME_PING "{\"type\":\"ping\"}"

/* ---- server → client, as the client reads them --------------------------------- */

typedef struct {
    cJSON *root;               /* the whole frame */
    const char *invocation_id; /* borrowed from root; NULL when no id could be read */
    const char *source;        /* borrowed; NULL when absent */
    const char *target;        /* borrowed; NULL when absent */
    cJSON *data;               /* an object: borrowed from root, or owned (string form) */
    bool data_owned;
} cp_frame;

/* cJSON strings are C strings, so a \u0000 escape would cut a string (a chunk of program
 * output, say) at the NUL. cp_frame_decode parses with cp_json_parse_keep_nul (json.h),
 * also the text of data in its string form: a string holding NUL is a raw item holding
 * its JSON literal, which cp_json_bytes reads back byte-exact and cp_json_print prints
 * with NUL as \u0000. The id, source and target are plain strings cut at their first NUL,
 * as cJSON would cut them. */

/* Validate and decode one server frame (spec §6.3): a JSON object with a non-empty
 * string invocationId (alias requestId) and data as an object or a JSON string of an
 * object; ids longer than CP_ID_MAX bytes are refused. Reasons are the SDKs' messages
 * ("invocationId is required and must be a non-empty string", "data is required and must
 * be an object", ...). Returns 0; or -1 with a reason in err, and then f->invocation_id is set
 * when an id could be read (so the caller can fail that invocation). Always call
 * cp_frame_free afterwards. */
int cp_frame_decode(const char *text, size_t len, cp_frame *f, char *err, size_t errcap);
void cp_frame_free(cp_frame *f);

/* ---- server side: reading client frames ---------------------------------------- */

typedef enum {
    CP_CLIENT_IGNORE,  /* no invocationId (e.g. {"type":"ping"}): ignore silently (§12.8) */
    CP_CLIENT_RUN,     /* a valid run_code stream request in req */
    CP_CLIENT_CANCEL,  /* codepane cancel for req.request_id */
    CP_CLIENT_INVALID, /* answer with cp_frame_error(req.request_id, err) */
    CP_CLIENT_GARBAGE, /* not JSON / not an object / bad id: no id to answer to */
} cp_client_frame_kind;

/* Decode one client frame. For RUN, req holds request_id (invocationId), server
 * (target, default CP_DEFAULT_TARGET), language, timeout (params.timeoutS validated as
 * cp_timeout_from_json), code. An unsupported language is INVALID with the SDK message.
 * CANCEL and INVALID fill request_id and server. A frame that escapes NUL (\u0000)
 * anywhere is INVALID: it is refused rather than run cut. The call initialises req; free
 * it with cp_run_request_free whatever the outcome. err gets a reason for INVALID and
 * GARBAGE (and "" otherwise). */
cp_client_frame_kind cp_frame_read_client(const char *text, size_t len, double dflt_timeout,
                                          double max_timeout, cp_run_request *req, char *err,
                                          size_t errcap);

/* ---- server side: writing server frames ---------------------------------------- */
/* Every server frame is {"invocationId","source":<source>,"target":"SDK","data":{…}}
 * with data.seq increasing from 1 per invocation (the caller counts). A NULL source means
 * CP_DEFAULT_TARGET. Every function returns NULL on OOM. */

/* data: {"method":"run_code","mode":"stream","phase":"event","seq","eventType":
 * "stdout"|"stderr","chunk"} — chunk is len bytes of valid UTF-8, NUL allowed. */
char *cp_frame_chunk(const char *invocation_id, const char *source, long seq, bool is_stderr,
                     const char *chunk, size_t len);

/* eventType "result": "result":{"mime":{<mime type>: value…},"isMainResult"}, the MIME
 * keys of spec §5.5 in its order for the fields that are set. json and chart are JSON
 * text embedded as it is; text that is not valid JSON goes in as a JSON string. */
char *cp_frame_result(const char *invocation_id, const char *source, long seq,
                      const cp_result_item *item);

/* eventType "error": "error":{"code":name,"message":value,"traceback":traceback}.
 * `traceback` is a codepane extension, omitted when NULL or empty; AGB clients read code
 * and message. NULL name → "ExecutionError", NULL value → "". */
char *cp_frame_error_event(const char *invocation_id, const char *source, long seq,
                           const char *name, const char *value, const char *traceback);

/* phase "end": status ("finished", "failed", "cancelled"), executionCount (omitted when
 * has_count is false), executionTime, executionError (omitted when NULL), and the
 * codepane extension "reason" (why the run stopped: "timeout", "memory",
 * "output_limit", "cancelled", ...; omitted when NULL). */
char *cp_frame_end(const char *invocation_id, const char *source, long seq, const char *status,
                   bool has_count, long long count, double time_s, const char *execution_error,
                   const char *reason);

/* A request the server refuses: data {"phase":"error","error":message} (NULL → ""). */
char *cp_frame_error(const char *invocation_id, const char *source, const char *message);

#endif
