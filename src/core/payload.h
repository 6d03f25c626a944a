/* codepane core: the run_code payload (what the tool returns, spec §5) and the two HTTP
 * reply envelopes around it (spec §3 LinkUrl, §4 gateway).
 *
 * Client side: turn an HTTP reply into a final cp_result with exactly the SDKs' outcomes
 * (spec §5.7). Server side: build the new-format payload and both envelopes.
 *
 * Where the Python and TypeScript SDKs differ on "first alternative" (spec §5.6) the core
 * follows the Python SDK: the first *truthy* alternative wins (an empty "text/plain"
 * falls through to "text", isMainResult:false falls through to is_main_result).
 *
 * Ownership: parse functions fill a caller-initialised cp_result (cp_result_init) that
 * the caller frees; builders return heap strings the caller frees. */
#ifndef CP_PAYLOAD_H
#define CP_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "result.h"

/* §5.1–§5.5: parse the tool text into r. data == NULL or len == 0 → "No data returned".
 * Never fails for bad input (bad input is an outcome); returns -1 only on OOM, after
 * which r reads "Failed to run code: out of memory". Does not touch r->request_id. */
int cp_payload_parse(const char *data, size_t len, cp_result *r);

/* §3: a LinkUrl reply. `transport_error` non-NULL means the request never got an HTTP
 * answer (network failure, its text). On success the tool text goes through
 * cp_payload_parse; on a route failure r is success=false with the SDK's message.
 * r->request_id is set to request_id (the client-generated link-... id) either way. */
int cp_payload_from_linkurl(int http_status, const char *body, size_t len,
                            const char *transport_error, const char *request_id, cp_result *r);

/* §4: a gateway reply; header_request_id is the x-request-id header (may be NULL), used
 * when the body carries no requestId. */
int cp_payload_from_gateway(int http_status, const char *body, size_t len,
                            const char *transport_error, const char *header_request_id,
                            cp_result *r);

/* Server: the new-format payload of r (spec §5.2, §12.5): {"result":[{<mime>:…,
 * "isMainResult":b}…], "stdout":[…], "stderr":[…], "executionError"?: "…",
 * "execution_count"?: n, "execution_time": s}. executionError is r->error_message when
 * r->success is false (or "ExecutionError" when that is empty). Chunks may hold NUL.
 * cp_payload_parse reads it back to the same logs, results, errorMessage, count and time,
 * except that an empty string field, or a json/chart value Python counts as falsy (0,
 * false, "", [], {}, null), reads back as absent (first-truthy rule). NULL on OOM. */
char *cp_payload_build(const cp_result *r);

/* Server: {"data":"<JSON text of {\"result\":{\"isError\":b,\"content\":[{\"type\":
 * \"text\",\"text\":<text>}]}}>"} — data as a JSON string, as spec §12.3 shows. */
char *cp_envelope_linkurl(const char *text, bool is_error);

/* Server: {"requestId","success":true,"code":"ok","message":"","httpStatusCode":200,
 * "data":{"isError":b,"content":[{"type":"text","text":<text>}]}}. */
char *cp_envelope_gateway(const char *request_id, const char *text, bool is_error);

/* Server: a control-plane failure in the gateway shape: {"requestId","success":false,
 * "code":<code>,"message":<message>,"httpStatusCode":<status>,"data":null}. */
char *cp_envelope_gateway_failure(const char *request_id, int http_status, const char *code,
                                  const char *message);

#endif
