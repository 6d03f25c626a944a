/* codepane core: the run_code call as a request, in the two HTTP forms of the AGB
 * protocol (spec §3 LinkUrl body, §4 gateway body): built by the client, parsed and
 * validated by the server. The WebSocket form is in frame.h and shares cp_run_request.
 *
 * Ownership: builders return heap strings the caller frees; cp_run_request owns its
 * strings until cp_run_request_free(). */
#ifndef CP_REQUEST_H
#define CP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "lang.h"

typedef struct {
    char *code;          /* may hold NUL bytes only if the JSON escaped them; see code_len */
    size_t code_len;
    char *language_raw;  /* as sent, for the unsupported-language message */
    cp_lang lang;        /* CP_LANG_NONE when unsupported */
    double timeout_s;    /* validated by cp_timeout_from_json */
    char *server;        /* LinkUrl "server", gateway absent, WS "target" */
    char *request_id;    /* LinkUrl "requestId" / WS "invocationId" */
    char *token;         /* LinkUrl body "token"; NULL when absent */
    char *session_id;    /* gateway "sessionId" */
} cp_run_request;

void cp_run_request_init(cp_run_request *req);
void cp_run_request_free(cp_run_request *req);

/* Client: POST {linkUrl}/callTool body: {"args":{"code","language","timeout_s"},
 * "server","requestId","tool":"run_code","token"}. timeout_s is an integer number of
 * seconds on the wire, as the SDKs send it. */
char *cp_request_linkurl_body(const char *code, size_t code_len, cp_lang lang, long timeout_s,
                              const char *server, const char *request_id, const char *token);

/* Client: POST {base}/mcp?autoGenSession=false body: {"args":"<args as JSON text>",
 * "sessionId","name":"run_code"}. */
char *cp_request_gateway_body(const char *code, size_t code_len, cp_lang lang, long timeout_s,
                              const char *session_id);

/* Client: the server name of tool `name` (e.g. "run_code") in a session's toolList (spec
 * §1.3). tool_list is the JSON text of an array of tool descriptors, or of a JSON string
 * holding that text (toolList is a JSON string in the createSession reply). Per entry the
 * name is `name`, else `Name`; the server `server`, else `serverName`, else `Server`. The
 * first entry whose name matches wins; its server is used when non-empty. Returns a heap
 * copy, or NULL when there is none (unparseable list, no such tool, empty server) or on
 * OOM: the caller then uses CP_DEFAULT_TARGET for streaming and the gateway route for
 * HTTP (spec §2). */
char *cp_tool_server(const char *tool_list, size_t len, const char *name);

/* The validated wall timeout: a missing or null value gives `dflt`; anything that is
 * not a finite JSON number, or is ≤ 0 (also -0), is refused with a message in err; a
 * value above `max` is clamped to `max` (0 never means unlimited). Returns 0 or -1. */
int cp_timeout_from_json(const cJSON *value, double dflt, double max, double *out,
                         char *err, size_t errcap);

/* Server: parse a LinkUrl body (args is an object) or a gateway body (args is a JSON
 * string, sessionId and name instead of server and tool). Checks tool/name is
 * "run_code", code is a string, the timeout as above (key timeout_s). An unsupported
 * language is NOT an error here (req->lang == CP_LANG_NONE): the server answers it with
 * a tool-level failure. Returns 0, or -1 with a message in err. */
int cp_request_parse_linkurl(const char *body, size_t len, double dflt_timeout, double max_timeout,
                             cp_run_request *req, char *err, size_t errcap);
int cp_request_parse_gateway(const char *body, size_t len, double dflt_timeout, double max_timeout,
                             cp_run_request *req, char *err, size_t errcap);

#endif
