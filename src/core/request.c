/* codepane core: the run_code request in its two HTTP forms (see request.h).
 *
 * Builders write what the SDKs send, compactly, in the SDKs' key order. Parsers are the
 * server's gate: they refuse anything the run cannot honestly execute (a code string cut
 * at a NUL, a timeout that is not a positive finite number) with a sentence that names
 * the field, and leave the language judgement to the caller (an unsupported language is
 * a tool-level failure in the AGB protocol, not a bad request). */
#include "request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_limits.h"
#include "json.h"
#include "result.h"

#define TOOL_NAME "run_code"

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errcap, const char *fmt,
                                                          ...)
{
    if (!err || !errcap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
}

void cp_run_request_init(cp_run_request *req)
{
    memset(req, 0, sizeof *req);
}

void cp_run_request_free(cp_run_request *req)
{
    free(req->code);
    free(req->language_raw);
    free(req->server);
    free(req->request_id);
    free(req->token);
    free(req->session_id);
    cp_run_request_init(req);
}

/* ---- builders --------------------------------------------------------------------- */

/* {"code":…,"language":…,"timeout_s":n} — code goes in through cp_json_quote so that any
 * byte, NUL included, reaches the wire escaped. */
static cJSON *args_object(const char *code, size_t code_len, cp_lang lang, long timeout_s)
{
    const char *language = cp_lang_name(lang);
    if (!language || (!code && code_len)) return NULL;
    cJSON *args = cJSON_CreateObject();
    char *quoted = cp_json_quote(code ? code : "", code ? code_len : 0);
    cJSON *raw = quoted ? cJSON_CreateRaw(quoted) : NULL;
    free(quoted);
    if (!args || !raw || !cJSON_AddItemToObject(args, "code", raw)) {
        cJSON_Delete(raw);
        cJSON_Delete(args);
        return NULL;
    }
    if (!cJSON_AddStringToObject(args, "language", language) ||
        !cJSON_AddNumberToObject(args, "timeout_s", (double)timeout_s)) {
        cJSON_Delete(args);
        return NULL;
    }
    return args;
}

static char *print_and_delete(cJSON *root)
{
    char *text = root ? cp_json_print(root) : NULL;
    cJSON_Delete(root);
    return text;
}

char *cp_request_linkurl_body(const char *code, size_t code_len, cp_lang lang, long timeout_s,
                              const char *server, const char *request_id, const char *token)
{
    cJSON *args = args_object(code, code_len, lang, timeout_s);
    if (!args) return NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root || !cJSON_AddItemToObject(root, "args", args)) {
        cJSON_Delete(args);
        cJSON_Delete(root);
        return NULL;
    }
    if (!cJSON_AddStringToObject(root, "server", server ? server : "") ||
        !cJSON_AddStringToObject(root, "requestId", request_id ? request_id : "") ||
        !cJSON_AddStringToObject(root, "tool", TOOL_NAME) ||
        !cJSON_AddStringToObject(root, "token", token ? token : "")) {
        cJSON_Delete(root);
        return NULL;
    }
    return print_and_delete(root);
}

char *cp_request_gateway_body(const char *code, size_t code_len, cp_lang lang, long timeout_s,
                              const char *session_id)
{
    /* args travels as a JSON string of the compact args object (the TS SDK's
     * JSON.stringify). Its text holds no NUL byte: a NUL in code is escaped in it. */
    char *args_text = print_and_delete(args_object(code, code_len, lang, timeout_s));
    if (!args_text) return NULL;
    cJSON *root = cJSON_CreateObject();
    bool ok = root && cJSON_AddStringToObject(root, "args", args_text) &&
              cJSON_AddStringToObject(root, "sessionId", session_id ? session_id : "") &&
              cJSON_AddStringToObject(root, "name", TOOL_NAME);
    free(args_text);
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return print_and_delete(root);
}

/* ---- timeout ---------------------------------------------------------------------- */

static const char *json_kind(const cJSON *v)
{
    if (cJSON_IsString(v) || cJSON_IsRaw(v)) return "a string";
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? "true" : "false";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "not a number";
}

/* cp_timeout_from_json with the field's wire name in its messages. */
static int timeout_check(const cJSON *value, const char *field, double dflt, double max,
                         double *out, char *err, size_t errcap)
{
    if (!value || cJSON_IsNull(value)) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(value)) {
        set_err(err, errcap, "%s must be a positive number of seconds, not %s", field,
                json_kind(value));
        return -1;
    }
    double v = value->valuedouble;
    if (!isfinite(v)) {
        /* cJSON reads an out-of-range literal such as 1e309 as infinity. */
        set_err(err, errcap, "%s must be a finite number of seconds", field);
        return -1;
    }
    if (v <= 0) { /* -0 compares equal to 0 and is refused with it */
        set_err(err, errcap, "%s must be a positive number of seconds, got %g", field, v);
        return -1;
    }
    *out = v > max ? max : v;
    return 0;
}

int cp_timeout_from_json(const cJSON *value, double dflt, double max, double *out, char *err,
                         size_t errcap)
{
    return timeout_check(value, "timeout", dflt, max, out, err, errcap);
}

/* ---- parsers ---------------------------------------------------------------------- */

/* Read an optional string member into *dst (a heap copy; left NULL when the member is
 * absent or null). A value that is not a string, or a string holding NUL, is refused. */
static int opt_string(const cJSON *obj, const char *key, const char *field, char **dst, char *err,
                      size_t errcap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsRaw(v)) {
        set_err(err, errcap, "%s must not contain NUL characters (\\u0000)", field);
        return -1;
    }
    if (!cJSON_IsString(v)) {
        set_err(err, errcap, "%s must be a string", field);
        return -1;
    }
    size_t n = strlen(v->valuestring);
    if (!(*dst = malloc(n + 1))) {
        set_err(err, errcap, "out of memory");
        return -1;
    }
    memcpy(*dst, v->valuestring, n + 1);
    return 0;
}

static int check_tool(const cJSON *root, const char *key, char *err, size_t errcap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsString(v)) {
        set_err(err, errcap, "%s is required and must be \"" TOOL_NAME "\"", key);
        return -1;
    }
    if (strcmp(v->valuestring, TOOL_NAME) != 0) {
        set_err(err, errcap, "unknown %s \"%.*s%s\": only \"" TOOL_NAME "\" is supported", key,
                CP_ECHO_MAX, v->valuestring, strlen(v->valuestring) > CP_ECHO_MAX ? "..." : "");
        return -1;
    }
    return 0;
}

/* The fields every form carries inside args: code, language, timeout_s. */
static int read_args(const cJSON *args, double dflt, double max, cp_run_request *req, char *err,
                     size_t errcap)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(args, "code");
    if (cJSON_IsRaw(code)) {
        /* cJSON would cut the code at the NUL; running a cut copy would be a lie. */
        set_err(err, errcap, "code must not contain NUL characters (\\u0000)");
        return -1;
    }
    if (!code || cJSON_IsNull(code)) {
        set_err(err, errcap, "code is required and must be a string");
        return -1;
    }
    if (!cJSON_IsString(code)) {
        set_err(err, errcap, "code must be a string");
        return -1;
    }
    size_t n = strlen(code->valuestring);
    if (!(req->code = malloc(n + 1))) {
        set_err(err, errcap, "out of memory");
        return -1;
    }
    memcpy(req->code, code->valuestring, n + 1);
    req->code_len = n;

    /* A missing language reads as "" (the SDKs turn null into ""), which the caller
     * answers with the unsupported-language message. */
    if (opt_string(args, "language", "language", &req->language_raw, err, errcap)) return -1;
    if (!req->language_raw && !(req->language_raw = calloc(1, 1))) {
        set_err(err, errcap, "out of memory");
        return -1;
    }
    req->lang = cp_lang_parse(req->language_raw, strlen(req->language_raw));

    return timeout_check(cJSON_GetObjectItemCaseSensitive(args, "timeout_s"), "timeout_s", dflt,
                         max, &req->timeout_s, err, errcap);
}

/* Parse the body as an object; a string holding NUL stays visible (as a raw item) so
 * that the field it is in can be named. */
static cJSON *parse_object(const char *text, size_t len, const char *what, char *err, size_t errcap)
{
    char reason[64];
    cJSON *root = cp_json_parse_keep_nul(text, len, reason, sizeof reason);
    if (!root) {
        set_err(err, errcap, "%s is not valid JSON (%s)", what, reason);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        set_err(err, errcap, "%s must be a JSON object", what);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* Start from a clean request; on failure leave it clean again. */
static int finish(cp_run_request *req, int rc)
{
    if (rc) cp_run_request_free(req);
    return rc;
}

int cp_request_parse_linkurl(const char *body, size_t len, double dflt_timeout, double max_timeout,
                             cp_run_request *req, char *err, size_t errcap)
{
    cp_run_request_init(req);
    cJSON *root = parse_object(body, len, "the request body", err, errcap);
    if (!root) return -1;
    int rc = -1;
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(root, "args");
    if (check_tool(root, "tool", err, errcap)) goto out;
    if (!cJSON_IsObject(args)) {
        set_err(err, errcap, "args is required and must be a JSON object");
        goto out;
    }
    if (read_args(args, dflt_timeout, max_timeout, req, err, errcap) ||
        opt_string(root, "server", "server", &req->server, err, errcap) ||
        opt_string(root, "requestId", "requestId", &req->request_id, err, errcap) ||
        opt_string(root, "token", "token", &req->token, err, errcap))
        goto out;
    rc = 0;
out:
    cJSON_Delete(root);
    return finish(req, rc);
}

int cp_request_parse_gateway(const char *body, size_t len, double dflt_timeout, double max_timeout,
                             cp_run_request *req, char *err, size_t errcap)
{
    cp_run_request_init(req);
    cJSON *root = parse_object(body, len, "the request body", err, errcap);
    if (!root) return -1;
    int rc = -1;
    cJSON *args = NULL;
    const cJSON *args_text = cJSON_GetObjectItemCaseSensitive(root, "args");
    if (check_tool(root, "name", err, errcap)) goto out;
    if (cJSON_IsRaw(args_text)) {
        set_err(err, errcap, "args must not contain NUL characters (\\u0000)");
        goto out;
    }
    if (!cJSON_IsString(args_text)) {
        set_err(err, errcap, "args is required and must be a JSON string holding a JSON object");
        goto out;
    }
    args = parse_object(args_text->valuestring, strlen(args_text->valuestring),
                        "args (a JSON string)", err, errcap);
    if (!args) goto out;
    if (read_args(args, dflt_timeout, max_timeout, req, err, errcap) ||
        opt_string(root, "sessionId", "sessionId", &req->session_id, err, errcap))
        goto out;
    rc = 0;
out:
    cJSON_Delete(args);
    cJSON_Delete(root);
    return finish(req, rc);
}

/* ---- toolList (client) ------------------------------------------------------------------ */

/* The first member of obj among keys that is a non-empty string, or NULL. */
static const char *first_string(const cJSON *obj, const char *const *keys)
{
    for (; *keys; keys++) {
        const char *v = cp_json_get_string(obj, *keys);
        if (v && v[0]) return v;
    }
    return NULL;
}

char *cp_tool_server(const char *tool_list, size_t len, const char *name)
{
    static const char *const name_keys[] = {"name", "Name", NULL};
    static const char *const server_keys[] = {"server", "serverName", "Server", NULL};
    if (!tool_list || !len) return NULL;
    cJSON *root = cp_json_parse(tool_list, len, NULL, 0);
    if (cJSON_IsString(root)) { /* the createSession reply's form: a JSON string */
        cJSON *inner = cp_json_parse(root->valuestring, strlen(root->valuestring), NULL, 0);
        cJSON_Delete(root);
        root = inner;
    }
    char *server = NULL;
    const cJSON *list = cJSON_IsArray(root) ? root : NULL, *tool;
    cJSON_ArrayForEach(tool, list)
    {
        const char *n = first_string(tool, name_keys);
        if (!n || strcmp(n, name) != 0) continue;
        const char *s = first_string(tool, server_keys);
        if (s) server = cp_strndup(s, strlen(s));
        break;
    }
    cJSON_Delete(root);
    return server;
}
